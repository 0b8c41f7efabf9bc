"""Programs PyTorch 2.13's serializer cannot serialize, and what pt2serde writes for them.

These corpus programs carry ``Program.oracle_unsupported`` and are left out of the oracle
comparison (tests/bridge/test_oracle_documents.py). For each of them we check:

* that PyTorch 2.13 really fails on it (so the exclusion stays honest: once PyTorch can
  serialize one, this fails and the program belongs back in the oracle comparison);
* the exact JSON pt2serde writes for the part PyTorch cannot handle;
* where PyTorch can serialize an equivalent program (the failing piece written the way its
  serializer accepts), that pt2serde's whole document equals PyTorch's for it;
* that PyTorch 2.13's *deserializer* reads pt2serde's document back to the same values.

The last three live with the module that writes the piece: ``test_arguments.py`` (int[][],
empty int[][] / float[][]), ``test_symbolic.py`` (rational ranges), ``test_signature.py``
(SymBool user outputs).
"""

from __future__ import annotations

import pytest
from torch._export.serde import serialize as torch_serde

from programs import CORPUS, TORCH_RELEASE, corpus_ids, exported

BEYOND = corpus_ids(oracle=False)


def test_there_are_programs_beyond_pytorch():
    # PyTorch 2.14's serializer handles int[][] / float[][] lists: there they are oracle programs
    newer = {"custom_int_lists", "custom_empty_nested_lists"} if TORCH_RELEASE >= (2, 14) else set()
    assert {name for name, _ in BEYOND} == {
        "custom_int_lists", "custom_empty_nested_lists", "rational_range", "symbool_user_output",
    } - newer
    assert all(CORPUS[name].oracle_unsupported and not CORPUS[name].oracle_can for name, _ in BEYOND)


@pytest.mark.parametrize("name,form", BEYOND, ids=lambda v: v)
def test_pytorch_cannot_serialize_it(name, form):
    with pytest.raises((torch_serde.SerializeError, TypeError, AssertionError)):
        torch_serde.serialize(exported(name, form))

