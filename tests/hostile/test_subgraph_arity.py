"""Higher-order ops call their subgraphs with values of the node (``cond`` its operands,
``while_loop`` the carried and additional inputs, ...). A subgraph with another number of
inputs failed inside torch (``forward() missing 1 required positional argument``) in
``run_decompositions()`` or a call; ``load`` and ``validate`` now refuse it with one rule
(``format.value_refs.subgraph_arity_problem``). Checked on PyTorch's own archives of the
compat corpus, each op's first subgraph given an input more, or the op a value fewer to pass.
"""

from __future__ import annotations

import io
import json
import os
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
    bad = H.rewrite(data, replace={MODEL: json.dumps(doc).encode()})
    message = rf"{PROGRAMS[program]} calls its subgraph with \d+ values but the subgraph has \d+ inputs"
    with pytest.raises(pt2serde.SerializeError, match=message):
        pt2serde.load(io.BytesIO(bad))
    problems = [p for p in check_archive(ArchiveReader(io.BytesIO(bad))) if p.level == "error"]
    assert any(p.message.startswith(f"{PROGRAMS[program]} calls its subgraph") for p in problems), problems


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_pytorch_archives_pass_the_rule(program: str) -> None:
    data = _archive(program)
    assert not [p for p in check_archive(ArchiveReader(io.BytesIO(data))) if "calls its subgraph" in p.message]
    pt2serde.load(io.BytesIO(data))
