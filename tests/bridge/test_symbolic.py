"""pt2serde.bridge.symbolic: range constraints with rational bounds are rounded inwards and
written as integers; PyTorch reads them back."""

import json

from torch._export.serde import serialize as torch_serde

from artifacts import document, torch_deserialized
from programs import exported


def test_rational_range_fragment():
    ep = exported("rational_range", "export")
    (symbol,) = ep.range_constraints
    assert str(ep.range_constraints[symbol].lower) == "5/2"
    assert str(ep.range_constraints[symbol].upper) == "43/6"
    doc = document("rational_range", "export")
    # lower bound rounded up, upper bound rounded down, written as JSON integers
    assert doc["range_constraints"] == {str(symbol): {"min_val": 3, "max_val": 7}}


def test_rational_range_document_equals_pytorch_dataclass():
    # PyTorch 2.13 builds the right document but json.dumps fails on the sympy Integers
    # its ceil/floor produce; convert those to int and compare the JSON.
    ep = exported("rational_range", "export")
    serialized = torch_serde.ExportedProgramSerializer().serialize(ep).exported_program
    for rc in serialized.range_constraints.values():
        rc.min_val = None if rc.min_val is None else int(rc.min_val)
        rc.max_val = None if rc.max_val is None else int(rc.max_val)
    theirs = json.loads(torch_serde._to_json_bytes(serialized))
    assert document("rational_range", "export") == theirs


def test_pytorch_reads_our_rational_range():
    loaded = torch_deserialized("rational_range", "export")
    ((lower, upper),) = [(int(r.lower), int(r.upper)) for r in loaded.range_constraints.values()]
    assert (lower, upper) == (3, 7)


def _unbacked_size_program():
    import torch

    class M(torch.nn.Module):
        def forward(self, x):
            n = x.sum().to(torch.int64).item()
            torch._check_is_size(n)
            return torch.zeros(n)

    return torch.export.export(M(), (torch.ones(3),))


def test_unbacked_symbol_without_range_is_refined_by_its_assert():
    # a symbol the document gives no range, refined later by a runtime assert: the ShapeEnv
    # must hold a source location for its range (it raised KeyError: u0 before)
    import torch

    import pt2serde

    art = pt2serde.serialize(_unbacked_size_program())
    doc = json.loads(art.exported_program)
    assert doc["range_constraints"] == {"u0": {"min_val": 0, "max_val": None}}
    doc["range_constraints"] = {}
    loaded = pt2serde.deserialize(type(art)(json.dumps(doc).encode(), art.state_dict, art.constants,
                                            art.example_inputs))
    assert loaded.module()(torch.full((3,), 2.0)).shape == (6,)


def test_loading_symbols_does_not_import_the_export_tracer(tmp_path):
    # left to find a range's source location, the ShapeEnv imports torch.export._trace (and
    # aot_autograd, inductor's code cache) on the first symbol: half a second of a cold start
    import subprocess
    import sys

    import torch

    import pt2serde

    dims = {"input": {0: torch.export.Dim("batch", min=2, max=64)}}
    ep = torch.export.export(torch.nn.Linear(4, 2), (torch.ones(3, 4),), dynamic_shapes=dims)
    pt2serde.save(ep, tmp_path / "dynamic.pt2")
    code = ("import sys, pt2serde; ep = pt2serde.load(sys.argv[1]); ep.module(); "
            "print(sorted(m for m in ('torch.export._trace', 'torch._functorch.aot_autograd') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "dynamic.pt2")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_static_geometries_are_contiguous_exactly_when_torch_makes_those_strides():
    """The int rule of ``_is_contiguous`` (static programs: no sympy numbers) says what
    ``torch.empty(sizes).stride()`` says, zero and one sizes included, and refuses other strides."""
    import itertools

    import torch

    from pt2serde.bridge.symbolic import _is_contiguous

    for sizes in [(), (0,), (1,), (3,), (2, 3), (3, 0, 2), (1, 4, 1), (2, 1, 3, 4), (0, 0)]:
        strides = torch.empty(sizes).stride()
        assert _is_contiguous(list(sizes), list(strides)), (sizes, strides)
        for i, bump in itertools.product(range(len(sizes)), (1, -1)):
            other = list(strides)
            other[i] += bump
            assert not _is_contiguous(list(sizes), other), (sizes, other)


def test_geometry_keys_keep_expressions_apart():
    """``SymbolicContext._geometry`` keys a static geometry by its ints and relies on a SymExpr
    being unhashable to give every geometry with an expression the key of its texts and hints
    (so ``[s0]`` and ``[3]`` never share FakeTensor sizes)."""
    import pytest

    from pt2serde import schema

    with pytest.raises(TypeError):
        hash(schema.SymExpr(expr_str="Symbol('s0', positive=True, integer=True)"))
    with pytest.raises(TypeError):
        hash((tuple(s.value for s in [schema.SymInt.create(as_int=3),
                                      schema.SymInt.create(as_expr=schema.SymExpr(expr_str="x"))]),))
