"""Differential test: pt2serde writes the same document as PyTorch 2.13's serializer.

For every corpus program in both forms (``export()`` and ``run_decompositions()``), the
parsed JSON of ``pt2serde.serialize(ep).exported_program`` must equal the parsed JSON
PyTorch's own serializer writes for the same program.
"""

import json

import pytest
from torch._export.serde.serialize import serialize as torch_serialize

import pt2serde
from programs import corpus_ids, exported


def _first_difference(a, b, path="$"):
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{path}.{k}: present on one side only"
            d = _first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = _first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


# Programs PyTorch 2.13's own serializer raises on (Program.oracle_unsupported, with the
# reason there) have no oracle document; tests/bridge/test_beyond_pytorch.py covers them.
@pytest.mark.parametrize("name,form", corpus_ids(oracle=True), ids=lambda v: v)
def test_document_matches_pytorch(name, form):
    ep = exported(name, form)
    ours = json.loads(pt2serde.serialize(ep).exported_program)
    theirs = json.loads(torch_serialize(ep).exported_program)
    assert ours == theirs, _first_difference(ours, theirs)
