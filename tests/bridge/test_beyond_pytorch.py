"""Programs PyTorch 2.13's serializer cannot serialize, and what pt2serde writes for them.

These corpus programs carry ``Program.oracle_unsupported`` and are left out of the oracle
comparison (tests/bridge/test_oracle_documents.py). Here we check, for each of them:

* that PyTorch 2.13 really fails on it (so the exclusion stays honest: once PyTorch can
  serialize one, this fails and the program belongs back in the oracle comparison);
* the exact JSON pt2serde writes for the part PyTorch cannot handle;
* where PyTorch can serialize an equivalent program (the failing piece written the way its
  serializer accepts), that pt2serde's whole document equals PyTorch's for it;
* that PyTorch 2.13's *deserializer* reads pt2serde's document back to the same values.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch._export.serde import serialize as torch_serde

import pt2serde
from programs import CORPUS, TORCH_RELEASE, corpus_ids, exported

BEYOND = corpus_ids(oracle=False)


def _ours(name: str, form: str) -> dict:
    return json.loads(pt2serde.serialize(exported(name, form)).exported_program)


def _nodes(doc: dict, target: str) -> list[dict]:
    return [n for n in doc["graph_module"]["graph"]["nodes"] if n["target"] == target]


def _torch_load(name: str, form: str) -> torch.export.ExportedProgram:
    """PyTorch 2.13's deserializer applied to pt2serde's document (payloads pickled by torch)."""
    ep = exported(name, form)
    artifact = torch_serde.SerializedArtifact(
        pt2serde.serialize(ep).exported_program,
        torch_serde.serialize_torch_artifact(ep.state_dict),
        torch_serde.serialize_torch_artifact(ep.constants),
        torch_serde.serialize_torch_artifact(ep.example_inputs),
    )
    return torch_serde.deserialize(artifact)


def _call_args(ep: torch.export.ExportedProgram, op) -> list[tuple]:
    return [n.args for n in ep.graph.nodes if n.op == "call_function" and n.target == op]


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


# ------------------------------------------------------------------ int[][]

INT_LISTS = "torch.ops.pt2serde_test.with_int_lists.default"
FLOAT_LISTS = "torch.ops.pt2serde_test.with_float_lists.default"


@pytest.mark.parametrize("form", ["export", "decomposed"])
def test_int_lists_fragment(form):
    (node,) = _nodes(_ours("custom_int_lists", form), INT_LISTS)
    assert node["inputs"] == [
        {"name": "x", "arg": {"as_tensor": {"name": "x"}}, "kind": 1},
        {"name": "groups", "arg": {"as_int_lists": [[0, 1], [2], [3, 4, 5]]}, "kind": 1},
    ]
    assert node["outputs"] == [{"as_tensor": {"name": "with_int_lists"}}]


@pytest.mark.parametrize("form", ["export", "decomposed"])
def test_int_lists_document_equals_pytorch_on_int_tuples(form):
    # PyTorch 2.13 writes as_int_lists only for *tuples* of ints. Give it the same program
    # with the inner lists turned into tuples: its document must equal ours.
    ep = copy.deepcopy(exported("custom_int_lists", form))
    (node,) = [n for n in ep.graph.nodes if n.op == "call_function" and str(n.target) == "pt2serde_test.with_int_lists.default"]
    node.args = (node.args[0], [tuple(g) for g in node.args[1]])
    theirs = json.loads(torch_serde.serialize(ep).exported_program)
    assert _ours("custom_int_lists", form) == theirs


@pytest.mark.parametrize("form", ["export", "decomposed"])
def test_pytorch_reads_our_int_lists(form):
    loaded = _torch_load("custom_int_lists", form)
    ((x, groups),) = _call_args(loaded, torch.ops.pt2serde_test.with_int_lists.default)
    assert [list(g) for g in groups] == [[0, 1], [2], [3, 4, 5]]


# ------------------------------------------------- empty int[][] / float[][]


@pytest.mark.parametrize("form", ["export", "decomposed"])
def test_empty_nested_lists_fragment(form):
    doc = _ours("custom_empty_nested_lists", form)
    (ints,) = _nodes(doc, INT_LISTS)
    (floats,) = _nodes(doc, FLOAT_LISTS)
    assert ints["inputs"] == [
        {"name": "x", "arg": {"as_tensor": {"name": "x"}}, "kind": 1},
        {"name": "groups", "arg": {"as_int_lists": []}, "kind": 1},
    ]
    assert floats["inputs"] == [
        {"name": "x", "arg": {"as_tensor": {"name": "with_int_lists"}}, "kind": 1},
        {"name": "weights", "arg": {"as_float_lists": []}, "kind": 1},
    ]


@pytest.mark.parametrize("form", ["export", "decomposed"])
def test_pytorch_reads_our_empty_nested_lists(form):
    loaded = _torch_load("custom_empty_nested_lists", form)
    ((_, groups),) = _call_args(loaded, torch.ops.pt2serde_test.with_int_lists.default)
    ((_, weights),) = _call_args(loaded, torch.ops.pt2serde_test.with_float_lists.default)
    assert list(groups) == [] and list(weights) == []


# ---------------------------------------------------------- rational ranges


def test_rational_range_fragment():
    ep = exported("rational_range", "export")
    (symbol,) = ep.range_constraints
    assert str(ep.range_constraints[symbol].lower) == "5/2"
    assert str(ep.range_constraints[symbol].upper) == "43/6"
    doc = _ours("rational_range", "export")
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
    assert _ours("rational_range", "export") == theirs


def test_pytorch_reads_our_rational_range():
    loaded = _torch_load("rational_range", "export")
    ((lower, upper),) = [(int(r.lower), int(r.upper)) for r in loaded.range_constraints.values()]
    assert (lower, upper) == (3, 7)


# ------------------------------------------------------ SymBool user outputs


@pytest.mark.parametrize("form", ["export", "decomposed"])
def test_symbool_user_output_fragment(form):
    doc = _ours("symbool_user_output", form)
    gm = doc["graph_module"]
    graph = gm["graph"]
    tensor_out, eq_out, not_out = graph["outputs"]
    assert tensor_out == {"as_tensor": {"name": "add"}}
    eq_name, not_name = eq_out["as_sym_bool"]["as_name"], not_out["as_sym_bool"]["as_name"]
    assert gm["signature"]["output_specs"] == [
        {"user_output": {"arg": {"as_tensor": {"name": "add"}}}},
        {"user_output": {"arg": {"as_sym_bool": {"as_name": eq_name}}}},
        {"user_output": {"arg": {"as_sym_bool": {"as_name": not_name}}}},
    ]
    producers = {n["outputs"][0]["as_sym_bool"]["as_name"]: n for n in graph["nodes"]
                 if n["outputs"] and "as_sym_bool" in n["outputs"][0]}
    assert producers[eq_name]["target"] == "_operator.eq"
    assert [i["name"] for i in producers[eq_name]["inputs"]] == ["a", "b"]
    assert producers[not_name]["target"] == "torch.sym_not"
    eq = graph["sym_bool_values"][eq_name]
    assert eq == {"as_expr": {"expr_str": eq["as_expr"]["expr_str"], "hint": None}}
    assert eq["as_expr"]["expr_str"].startswith("Equality(Symbol(")
