"""Shared assertions: two exported programs have the same graph, metadata and outputs."""

from __future__ import annotations

import copy
import operator

import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch.fx.experimental.symbolic_shapes import is_concrete_int

from programs import CORPUS


def program_inputs(name: str) -> tuple[tuple, dict]:
    """Fresh example inputs of a corpus program."""
    p = CORPUS[name]
    torch.manual_seed(0)  # builders draw random inputs: make every call draw the same ones
    if "case" in p.extra:
        case = p.extra["case"]
        return copy.deepcopy(case.example_args), copy.deepcopy(case.example_kwargs or {})
    _, args, kwargs = p.inputs()
    return args, kwargs


def _same_dims(a, b) -> None:
    assert len(a) == len(b), (a, b)
    for x, y in zip(a, b):
        if isinstance(x, int) and isinstance(y, int):
            assert x == y, (a, b)
        elif is_concrete_int(x) and is_concrete_int(y):
            assert int(x) == int(y), (a, b)
        else:
            assert str(x) == str(y), (a, b)


def same_val(v1, v2) -> None:
    if v1 is None or v2 is None:
        assert v1 is None and v2 is None, (v1, v2)
    elif isinstance(v1, torch.Tensor):
        assert isinstance(v2, torch.Tensor), (v1, v2)
        _same_dims(v1.shape, v2.shape)
        _same_dims(v1.stride(), v2.stride())
        assert v1.dtype == v2.dtype and v1.device == v2.device, (v1, v2)
    elif isinstance(v1, (list, tuple)):
        assert isinstance(v2, (list, tuple)) and len(v1) == len(v2), (v1, v2)
        for a, b in zip(v1, v2):
            same_val(a, b)
    elif type(v1).__name__ == "CustomObjArgument":
        assert (v1.name, v1.class_fqn) == (v2.name, v2.class_fqn), (v1, v2)
    else:
        assert str(v1) == str(v2), (v1, v2)


def _comparable_nodes(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
    """The graph's nodes minus what carries no meaning: getitems nobody reads and
    duplicate getitems of the same output (the wire keeps one)."""
    seen = set()
    out = []
    for n in gm.graph.nodes:
        if n.op == "call_function" and n.target is operator.getitem:
            key = (n.args[0], n.args[1])
            if not n.users or key in seen:
                continue
            seen.add(key)
        out.append(n)
    return out


def _label(n: torch.fx.Node) -> tuple:
    # get_attr nodes and list-valued getitems have no name on the wire
    anonymous = n.op == "get_attr" or (n.target is operator.getitem and isinstance(n.meta.get("val"), list))
    return (n.op, None if anonymous else n.name)


def same_graph(gm1: torch.fx.GraphModule, gm2: torch.fx.GraphModule, check_meta: bool = True) -> None:
    """Node by node: op, name, target, argument counts, kwarg names, values and metadata."""
    n1, n2 = _comparable_nodes(gm1), _comparable_nodes(gm2)
    assert [_label(n) for n in n1] == [_label(n) for n in n2]
    for a, b in zip(n1, n2):
        if a.op != "call_function":
            if a.op == "placeholder":
                same_val(a.meta.get("val"), b.meta.get("val"))
            continue
        assert a.target == b.target, (a.name, a.target, b.target)
        assert len(a.args) == len(b.args), (a.name, a.args, b.args)
        assert set(a.kwargs) == set(b.kwargs), (a.name, a.kwargs, b.kwargs)
        if a.meta.get("val") is not None:  # getitems of Python scalars may carry no value originally
            same_val(a.meta.get("val"), b.meta.get("val"))
        assert ("unbacked_bindings" in a.meta) == ("unbacked_bindings" in b.meta), a.name
        if a.target is operator.getitem:
            continue  # getitems are not on the wire: theirs copy the producer's metadata
        assert a.meta.get("stack_trace") == b.meta.get("stack_trace"), a.name
        if check_meta:
            assert (a.meta.get("nn_module_stack") or None) == (b.meta.get("nn_module_stack") or None), a.name
            assert _source_fns(a) == _source_fns(b), a.name
        for x, y in zip(a.args, b.args):
            if isinstance(x, torch.fx.Node) and x.op == "get_attr" and isinstance(
                getattr(gm1, x.target, None), torch.fx.GraphModule
            ):
                same_graph(getattr(gm1, x.target), getattr(gm2, y.target), check_meta)


def same_signature(sig1, sig2) -> None:
    """Equal graph signatures (``persistent`` only means something for buffers)."""
    def arg(a):
        if type(a).__name__ == "CustomObjArgument":  # the fake object is not part of the wire form
            return (a.name, a.class_fqn)
        value = getattr(a, "value", None)
        if isinstance(value, torch._C.ScriptObject):  # ScriptObjects only compare to their own class
            return (type(a).__name__, a.name, value._type().qualified_name())
        return a

    def norm(specs, inputs):
        return [(s.kind, arg(s.arg), s.target, s.persistent if inputs and s.kind.name == "BUFFER" else None)
                for s in specs]

    assert norm(sig1.input_specs, True) == norm(sig2.input_specs, True)
    assert norm(sig1.output_specs, False) == norm(sig2.output_specs, False)


def same_ranges(original: dict, loaded: dict) -> None:
    """Loaded ranges are the original's, with bounds as the wire stores them (integers,
    infinities as int_oo) and only for symbols the graph still uses."""
    import math

    import sympy

    def bound(v, rounding):
        if v in (sympy.oo, -sympy.oo) or str(v) in ("oo", "-oo", "int_oo", "-int_oo"):
            return str(v).replace("int_", "")
        return int(rounding(v))

    want = {str(s): (bound(r.lower, math.ceil), bound(r.upper, math.floor)) for s, r in original.items()}
    got = {str(s): (bound(r.lower, math.ceil), bound(r.upper, math.floor)) for s, r in loaded.items()}
    assert got.items() <= want.items(), (got, want)


def _source_fns(node):
    stack = node.meta.get("source_fn_stack")
    if stack is None:
        return None
    # callables compare by identity; strings stay strings
    return [(name, fn if isinstance(fn, str) else fn) for name, fn in stack]


def outputs_close(out1, out2, rtol=1e-5, atol=1e-6) -> None:
    l1 = torch.utils._pytree.tree_leaves(out1)
    l2 = torch.utils._pytree.tree_leaves(out2)
    assert len(l1) == len(l2), (out1, out2)
    for x, y in zip(l1, l2):
        assert type(x) is type(y) or (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)), (x, y)
        if isinstance(x, torch.Tensor):
            assert x.shape == y.shape and x.dtype == y.dtype, (x, y)
            if x.dtype in (torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e8m0fnu):
                x, y = x.float(), y.float()
            if x.is_floating_point() or x.is_complex():
                torch.testing.assert_close(x, y, rtol=rtol, atol=atol, equal_nan=True)
            else:
                assert torch.equal(x, y), (x, y)
        else:
            assert x == y or (x != x and y != y), (x, y)


def run(ep: torch.export.ExportedProgram, name: str):
    args, kwargs = program_inputs(name)
    if any(s.kind.name == "TOKEN" for s in ep.graph_signature.input_specs):
        # PyTorch 2.13's module() renames the user outputs of a program with effect tokens
        # in its graph signature, in place: keep the (cached) original intact.
        ep = copy.deepcopy(ep)
    with torch.no_grad():
        return ep.module()(*args, **kwargs)


def is_fake_program(ep) -> bool:
    return any(isinstance(v, FakeTensor) for v in ep.state_dict.values())


def outputs_equal(orig, loaded) -> None:
    """Exactly equal outputs, leaf by leaf (the specification's comparison): same types,
    shapes, dtypes and devices; float8 bit for bit; NaN equals NaN; meta tensors by
    geometry only."""
    flat1, flat2 = torch.utils._pytree.tree_leaves(orig), torch.utils._pytree.tree_leaves(loaded)
    assert len(flat1) == len(flat2), (orig, loaded)
    for a, b in zip(flat1, flat2):
        assert type(a) is type(b), (a, b)
        if isinstance(a, torch.Tensor):
            assert a.shape == b.shape and a.dtype == b.dtype and a.device == b.device, (a, b)
            if a.is_meta:
                continue
            if a.dtype in (torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e8m0fnu):
                assert torch.equal(a.view(torch.uint8), b.view(torch.uint8)), (a, b)
            elif a.dtype in (torch.uint32, torch.uint64):
                assert torch.equal(a.to(torch.float64), b.to(torch.float64)), (a, b)
            else:
                torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
        else:
            assert a == b, (a, b)
