"""Higher-order ops call their subgraphs with values of the node (``cond`` its operands,
``while_loop`` the carried and additional inputs, ...). A subgraph with another number of
inputs failed inside torch (``forward() missing 1 required positional argument``) in
``run_decompositions()`` or a call; ``load`` and ``validate`` now refuse it with one rule
(``format.value_refs.hop_call_problem``). Checked on PyTorch's own archives of the
compat corpus, each op's first subgraph given an input more, or the op a value fewer to pass.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys

import pytest

import pt2serde
from pt2serde.format.check import check_archive
from pt2serde.format.archive import ArchiveReader

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from compat import CORPUS_DIR  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_hostile_archives as H  # noqa: E402

#: corpus program -> the higher-order op in it
PROGRAMS = {"cond": "cond", "while_loop": "while_loop", "map": "map_impl", "scan": "scan"}
MODEL = "models/model.json"  # relative to the archive's root folder


def _archive(program: str) -> bytes:
    with open(os.path.join(CORPUS_DIR, "2.13.0", f"{program}.pt2"), "rb") as f:
        return f.read()


def _hop_node(doc: dict, op: str) -> dict:
    return next(n for n in doc["graph_module"]["graph"]["nodes"] if n["target"] == f"torch.ops.higher_order.{op}")


def _refused_by_load_and_validate(data: bytes, doc: dict, message: str) -> None:
    """The archive ``data`` with the document ``doc``: load raises ``message``, validate lists it."""
    bad = H.rewrite(data, replace={MODEL: json.dumps(doc).encode()})
    with pytest.raises(pt2serde.SerializeError, match=message):
        pt2serde.load(io.BytesIO(bad))
    problems = [p for p in check_archive(ArchiveReader(io.BytesIO(bad))) if p.level == "error"]
    assert any(re.search(message, p.message) for p in problems), problems


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("change", ["a subgraph input more", "a value fewer passed"])
def test_subgraph_with_another_number_of_inputs_is_refused(program: str, change: str) -> None:
    data = _archive(program)
    doc = H.read_json(data, MODEL)
    node = _hop_node(doc, PROGRAMS[program])
    if change == "a subgraph input more":
        next(i["arg"]["as_graph"]["graph"] for i in node["inputs"] if "as_graph" in i["arg"])["inputs"].append(
            {"as_int": 3})
    else:  # the last value of the op's last non-empty list of values
        next(v for i in reversed(node["inputs"]) for v in i["arg"].values() if isinstance(v, list) and v).pop()
    _refused_by_load_and_validate(data, doc, rf"{PROGRAMS[program]} calls its subgraph with \d+ values but the "
                                             r"subgraph has \d+ inputs")


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_pytorch_archives_pass_the_rule(program: str) -> None:
    data = _archive(program)
    assert not [p for p in check_archive(ArchiveReader(io.BytesIO(data))) if "calls its subgraph" in p.message]
    pt2serde.load(io.BytesIO(data))


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_subgraph_returning_a_value_more_is_refused(program: str) -> None:
    """cond's branches disagree, while_loop's cond_fn returns two values, map's and scan's
    subgraph return more values than the node has outputs: torch fails when it runs the op."""
    data = _archive(program)
    doc = H.read_json(data, MODEL)
    node = _hop_node(doc, PROGRAMS[program])
    sub = next(i["arg"]["as_graph"]["graph"] for i in node["inputs"] if "as_graph" in i["arg"])
    sub["outputs"].append(sub["outputs"][0])
    sub["is_single_tensor_return"] = False
    _refused_by_load_and_validate(data, doc, rf"{PROGRAMS[program]}'s subgraph returns \d+ values but \d+ are needed")


def test_map_over_something_else_than_tensors_is_refused() -> None:
    data = _archive("map")
    doc = H.read_json(data, MODEL)
    _hop_node(doc, "map_impl")["inputs"][1]["arg"] = {"as_ints": [1, 2]}
    _refused_by_load_and_validate(data, doc, r"map_impl input 1 must be a list of tensors, got `as_ints`")


@pytest.mark.parametrize("where", ["in xs and args", "twice in args"])
def test_map_passing_a_value_twice_is_refused(where: str) -> None:
    """torch's tracer refuses aliased map operands ("Encountered aliasing during higher order op
    tracing"), so no export writes one; a file's made ``run_decompositions()`` fail with
    ``SyntaxError: duplicate argument 'x' in function definition``, before."""
    data = _archive("map")
    doc = H.read_json(data, MODEL)
    node = _hop_node(doc, "map_impl")
    xs = node["inputs"][1]["arg"]["as_tensors"][0]
    args = node["inputs"][2]["arg"]
    listed = next(iter(args.values()))
    listed[:] = [xs, listed[0]] if where == "in xs and args" else [listed[0], listed[0]]
    body = node["inputs"][0]["arg"]["as_graph"]["graph"]
    assert len(body["inputs"]) == 1 + len(listed)  # only the repeat is wrong
    _refused_by_load_and_validate(data, doc, r"map_impl passes value '\w+' twice")


def test_cond_predicate_of_several_elements_is_refused() -> None:
    """``Boolean value of Tensor with more than one value is ambiguous`` in a call, before."""
    data = _archive("cond")
    doc = H.read_json(data, MODEL)
    pred = _hop_node(doc, "cond")["inputs"][0]["arg"]["as_tensor"]["name"]
    doc["graph_module"]["graph"]["tensor_values"][pred]["sizes"] = [{"as_int": 3}]
    doc["graph_module"]["graph"]["tensor_values"][pred]["strides"] = [{"as_int": 1}]
    _refused_by_load_and_validate(data, doc, r"cond input 0 must be a one-element tensor")


def test_while_loop_cond_fn_returning_no_bool_is_refused() -> None:
    """``cond_fn must return a boolean scalar tensor`` in a call, before."""
    data = _archive("while_loop")
    doc = H.read_json(data, MODEL)
    cond_fn = _hop_node(doc, "while_loop")["inputs"][0]["arg"]["as_graph"]["graph"]
    result = cond_fn["outputs"][0]["as_tensor"]["name"]
    cond_fn["tensor_values"][result]["dtype"] = 7  # float32
    _refused_by_load_and_validate(data, doc, r"while_loop's cond_fn must return a one-element bool")


@pytest.mark.parametrize("slot, arg, message", [
    (0, {"as_int": 5}, r"wrap_with_autocast input 0 must be `as_string`, got `as_int`"),
    (1, {"as_string": "float16"}, r"wrap_with_autocast input 1 must be `as_scalar_type` or `as_none`"),
    (2, {"as_tensor": {"name": "x"}}, r"wrap_with_autocast input 2 must be `as_bool`, got `as_tensor`"),
])
def test_autocast_arguments_of_other_kinds_are_refused(slot: int, arg: dict, message: str) -> None:
    """torch raised ``Expected device_type of type str``, ``set_autocast_dtype() ... must be
    torch.dtype`` or ``Boolean value of Tensor ... ambiguous`` when the program ran."""
    from pt2serde import schema
    from pt2serde.format.codec import from_dict
    from pt2serde.format.value_refs import hop_call_problem

    graph = {"inputs": [{"as_tensor": {"name": "a"}}], "nodes": [], "outputs": [{"as_tensor": {"name": "a"}}],
             "sym_int_values": {}, "sym_bool_values": {}, "tensor_values": {}, "is_single_tensor_return": True}
    inputs = [{"as_string": "cpu"}, {"as_scalar_type": 5}, {"as_bool": True}, {"as_none": True},
              {"as_graph": {"name": "wrap_body_0", "graph": graph}}, {"as_tensor": {"name": "x"}}]
    node = {"target": "torch.ops.higher_order.wrap_with_autocast", "outputs": [{"as_tensor": {"name": "y"}}],
            "inputs": [{"name": "", "arg": a, "kind": 1} for a in inputs], "metadata": {}}
    good = from_dict(schema.Node, node)
    assert hop_call_problem(good.target, good.inputs, good.outputs, {}) is None
    node["inputs"][slot]["arg"] = arg
    bad = from_dict(schema.Node, node)
    assert re.search(message, hop_call_problem(bad.target, bad.inputs, bad.outputs, {})[0])


def test_while_loop_body_returning_values_out_of_order_is_refused() -> None:
    """``Expected carried_inputs and body_output to have same metadata`` in run_decompositions."""
    data = _archive("while_loop")
    doc = H.read_json(data, MODEL)
    body = _hop_node(doc, "while_loop")["inputs"][1]["arg"]["as_graph"]["graph"]
    body["outputs"].reverse()
    _refused_by_load_and_validate(data, doc, r"while_loop's body_fn returns value 0 with another dtype or sizes")
