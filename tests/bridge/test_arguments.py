"""pt2serde.bridge.arguments: call arguments and outputs PyTorch 2.13 cannot serialize
(``as_int_lists`` / ``as_float_lists``, empty ones included; string outputs), their documents,
and PyTorch reading them back."""

import copy
import json

import pytest
import torch
from torch._export.serde import serialize as torch_serde

import pt2serde
from artifacts import call_args, document, nodes_calling, torch_deserialized
from programs import exported


# ------------------------------------------------------------------------------- int[][]


INT_LISTS = "torch.ops.pt2serde_test.with_int_lists.default"


FLOAT_LISTS = "torch.ops.pt2serde_test.with_float_lists.default"


@pytest.mark.parametrize("form", ["export", "decomposed"])
def test_int_lists_fragment(form):
    (node,) = nodes_calling(document("custom_int_lists", form), INT_LISTS)
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
    assert document("custom_int_lists", form) == theirs


@pytest.mark.parametrize("form", ["export", "decomposed"])
def test_pytorch_reads_our_int_lists(form):
    loaded = torch_deserialized("custom_int_lists", form)
    ((x, groups),) = call_args(loaded, torch.ops.pt2serde_test.with_int_lists.default)
    assert [list(g) for g in groups] == [[0, 1], [2], [3, 4, 5]]


# ------------------------------------------------------------- empty int[][] / float[][]


@pytest.mark.parametrize("form", ["export", "decomposed"])
def test_empty_nested_lists_fragment(form):
    doc = document("custom_empty_nested_lists", form)
    (ints,) = nodes_calling(doc, INT_LISTS)
    (floats,) = nodes_calling(doc, FLOAT_LISTS)
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
    loaded = torch_deserialized("custom_empty_nested_lists", form)
    ((_, groups),) = call_args(loaded, torch.ops.pt2serde_test.with_int_lists.default)
    ((_, weights),) = call_args(loaded, torch.ops.pt2serde_test.with_float_lists.default)
    assert list(groups) == [] and list(weights) == []


# ------------------------------------------------------------------------ string outputs


def test_string_constant_output_round_trips():
    class M(torch.nn.Module):
        def forward(self, x):
            return x + 1, "done"

    x = torch.ones(2)
    ep = torch.export.export(M(), (x,))
    doc = json.loads(pt2serde.serialize(ep).exported_program)
    assert doc["graph_module"]["graph"]["outputs"][1] == {"as_string": "done"}
    loaded = pt2serde.deserialize(pt2serde.serialize(ep))
    out = loaded.module()(x)
    assert out[1] == "done" and torch.equal(out[0], x + 1)
