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
