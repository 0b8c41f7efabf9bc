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
