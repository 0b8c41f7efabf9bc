"""`pt2serde inspect`'s "readable by" (torch-free subprocess): which releases read an archive.

The predictions are checked against what the real releases did: the compat corpus's
measured matrix (every release 2.5 ... 2.14 loading and running every release's archives,
``compat-corpus/results/reader-<release>.json``), cell by cell.
"""

from __future__ import annotations

import collections
import json
import os

import pytest
import torch

import pt2serde
from cli_support import CORPUS, corpus_reports, edit_json, rewrite, run_batch, run_cli

RELEASES = ["2.5", "2.6", "2.7", "2.8", "2.9", "2.13", "2.14"]

#: Measured cells no prediction can match, with the reason. There are none: every failure the
#: releases showed on the corpus is a rule of pt2serde.format.compat_readers, including the releases'
#: own bugs (2.5/2.6 not resolving `auto_functionalized` and `wrap_with_set_grad_enabled`, 2.5's
#: float outputs and while_loop, 2.9's integer Parameters), and `mismatch` cells (symint_arith of
#: 2.5-2.7) are a writer's bug that no reader can see: the format reads, the outputs are wrong.
EXCEPTIONS: dict[tuple[str, str, str], str] = {}


def _measured() -> dict[tuple[str, str, str], str]:
    """(reader release "2.9", writer "2.13.0", program) -> cell ("ok", "load:KeyError", ...)."""
    cells = {}
    for name in os.listdir(os.path.join(CORPUS, "results")):
        with open(os.path.join(CORPUS, "results", name)) as f:
            data = json.load(f)
        release = ".".join(data["reader"].split(".")[:2])
        for writer, programs in data["writers"].items():
            for program, result in programs.items():
                cells[(release, writer, program)] = result["cell"]
    return cells


def _expected(cell: str) -> tuple[bool, str | None]:
    """(readable, fails_at) a measured cell means: `run:*` loaded (the format was readable) but
    calling the program failed; `mismatch` loaded and ran (wrong outputs: the writer's bug)."""
    if cell in ("ok", "mismatch", "extra_files"):
        return True, None
    stage = cell.split(":")[0]
    assert stage in ("load", "run"), cell
    return False, stage


def _reports() -> dict[tuple[str, str], dict]:
    out = {}
    for path, _, (code, text, err) in corpus_reports():
        assert code == 0 and err == "", (path, err)
        writer, name = os.path.relpath(path, CORPUS).split(os.sep)
        out[(writer, name[:-4])] = json.loads(text)
    return out


def test_predictions_agree_with_the_measured_matrix():
    measured = _measured()
    reports = _reports()
    agree: collections.Counter = collections.Counter()
    disagree = []
    for (writer, program), report in reports.items():
        readers = {r["reader"]: r for r in report["readers"]}
        assert list(readers) == RELEASES + ["pt2serde"]
        assert readers["pt2serde"] == {"reader": "pt2serde", "readable": True, "fails_at": None, "reason": None,
                                       "where": None}, (writer, program)  # pt2serde reads every corpus archive
        for release in RELEASES:
            cell = measured[(release, writer, program)]
            v = readers[release]
            assert (v["readable"], v["fails_at"] is None) in ((True, True), (False, False)), v
            ok = (v["readable"], v["fails_at"]) == _expected(cell)
            if (release, writer, program) in EXCEPTIONS:
                assert not ok, f"exception {release} <- {writer} {program} no longer needed"
                continue
            agree[release, ok] += 1
            if not ok:
                disagree.append((release, writer, program, cell, v))
    assert disagree == []
    cells = sum(agree.values())
    assert cells == sum(1 for (r, w, p), c in measured.items() if c != "n/a") == 1687
    # per reader: the archives of the 7 writers it was given (241 archives written)
    assert {r: agree[r, True] for r in RELEASES} == {r: 241 for r in RELEASES}
    # the corpus README's summary, from the predictions: 2.13 reads 26 of 2.6's 31 archives, plus
    # symint_arith (a mismatch: the writer's bug), and loads scan, which then fails when run
    readable = collections.Counter((w, r["reader"]) for (w, _), rep in reports.items() for r in rep["readers"]
                                   if r["readable"])
    loads = collections.Counter((w, r["reader"]) for (w, _), rep in reports.items() for r in rep["readers"]
                                if r["readable"] or r["fails_at"] == "run")
    assert (readable["2.6.0", "2.13"], loads["2.6.0", "2.13"]) == (26 + 1, 26 + 1 + 1)
    assert (readable["2.6.0", "2.7"], loads["2.6.0", "2.7"]) == (29 + 1, 29 + 1 + 1)
    assert [readable["2.13.0", r] for r in RELEASES] == [0, 0, 0, 0, 35, 39, 39]


def test_reasons_name_the_feature_and_where():
    reports = _reports()

    def verdict(writer, program, release):
        (v,) = [r for r in reports[(writer, program)]["readers"] if r["reader"] == release]
        return v["readable"], v["fails_at"], v["reason"], v["where"]

    assert verdict("2.13.0", "custom_op_nested_args", "2.9") == (
        False, "load", "uses `as_nested_tensors`, `as_string_to_argument` (schema 8.20), unknown to schema 8.14",
        "custom_op_nested_args/models/model.json $.graph_module.graph.nodes[0].inputs[1].arg.as_nested_tensors")
    assert verdict("2.14.1", "new_dtypes_8_20", "2.9")[2] == \
        "uses dtype uint32, uint64, float8_e8m0fnu (schema 8.20), unknown to schema 8.14"
    assert verdict("2.13.0", "int8_param", "2.9") == (
        False, "load", "non-floating parameter `qw` stored as a raw record, which 2.9 rebuilds with "
                       "requires_grad=True and fails", "int8_param/data/weights/model_weights_config.json")
    assert verdict("2.8.0", "int8_param", "2.9") == (True, None, None, None)  # pickled with requires_grad=False
    assert verdict("2.9.1", "mlp", "2.8") == (
        False, "load", "weights stored as raw records (model_weights_config.json); 2.8 reads only whole-dict "
                       "torch.save records (data/weights/model.pt)", "mlp/data/weights/model_weights_config.json")
    assert verdict("2.14.1", "mlp", "2.7") == (
        False, "load", "a PT2 archive; 2.5, 2.6 and 2.7 read only their plain zip (PT2 archives need 2.8+)", None)
    assert verdict("2.6.0", "cond", "2.13") == (
        False, "load", "`cond` has its outputs as one `as_tensors` (written by schema 8.2), which 2.8 and later "
                       "refuse", "serialized_exported_program.json $.graph_module.graph.nodes[2].outputs[0].as_tensors")
    assert verdict("2.6.0", "cond", "2.7") == (True, None, None, None)
    assert verdict("2.6.0", "scan", "2.14")[:3] == (
        False, "run", "a `scan` node with the 6 inputs of schema 8.2 (dim, reverse); ScanOp takes 4 from 2.7 on "
                      "(`takes 5 positional arguments but 7 were given`)")
    assert verdict("2.7.1", "mlp", "2.6") == (
        False, "load", "has `GraphModule.treespec_namedtuple_fields`, `Node.is_hop_single_tensor_return`, "
                       "`NamedArgument.kind` (schema 8.7); 2.6 refuses fields its schema 8.2 lacks (`unexpected "
                       "keyword argument`)",
        "serialized_exported_program.json $.graph_module.treespec_namedtuple_fields")
    assert verdict("2.5.1", "mlp", "2.13") == (
        False, "load", "schema 7.3 (the `version` record); 2.13 reads schema 8.x only", "version")
    assert verdict("2.6.0", "mlp", "2.5") == (
        False, "load", "schema 8.2 (the `version` record); 2.5 reads schema 7.x only", "version")
    assert verdict("2.5.1", "multi_out", "2.5")[2] == \
        "a graph output of kind `as_float`; 2.5 reads only tensor, SymInt, SymBool, int and None outputs"
    assert verdict("2.6.0", "custom_op_functionalized", "2.6")[2] == (
        "uses the higher-order op `auto_functionalized`, which 2.6 does not resolve when loading "
        "(`Unsupported target type`)")
    assert verdict("2.5.1", "while_loop", "2.5")[:3] == (
        False, "run", "a `while_loop`, which 2.5 loads with a list of carried inputs (`carried_inputs must be a "
                      "tuple`)")
    assert verdict("2.8.0", "two_programs", "2.8") == (
        True, None, "with load_pt2: torch.export.load reads only a program named `model` (this archive holds "
                    "`decoder`, `encoder`)", None)
    assert verdict("2.14.1", "two_programs", "2.8")[2].startswith("program `decoder`: weights stored as raw records")


def test_human_section():
    proc = run_cli("inspect", os.path.join(CORPUS, "2.13.0", "int8_param.pt2"))
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    at = lines.index("readable by  PyTorch 2.13, 2.14; pt2serde")
    assert lines[at + 1:] == [
        "  2.5       no: a PT2 archive; 2.5, 2.6 and 2.7 read only their plain zip (PT2 archives need 2.8+)",
        "  2.6       no: a PT2 archive; 2.5, 2.6 and 2.7 read only their plain zip (PT2 archives need 2.8+)",
        "  2.7       no: a PT2 archive; 2.5, 2.6 and 2.7 read only their plain zip (PT2 archives need 2.8+)",
        "  2.8       no: weights stored as raw records (model_weights_config.json); 2.8 reads only whole-dict "
        "torch.save records (data/weights/model.pt)",
        "  2.9       no: non-floating parameter `qw` stored as a raw record, which 2.9 rebuilds with "
        "requires_grad=True and fails",
        "  2.13      yes",
        "  2.14      yes",
        "  pt2serde  yes",
    ]
    scan = run_cli("inspect", os.path.join(CORPUS, "2.6.0", "scan.pt2")).stdout.splitlines()
    assert "readable by  PyTorch 2.6; pt2serde" in scan
    assert "  2.7       no (loads, fails when run): a `scan` node with the 6 inputs of schema 8.2 (dim, reverse); " \
           "ScanOp takes 4 from 2.7 on (`takes 5 positional arguments but 7 were given`)" in scan


class IntParam(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.codes = torch.nn.Parameter(torch.arange(3, dtype=torch.int8), requires_grad=False)
        self.register_buffer("scale", torch.full((3,), 0.5), persistent=False)

    def forward(self, x):
        return self.lin(x) * self.scale + self.codes


def _readers(path: str) -> dict[str, tuple[bool, str | None]]:
    proc = run_cli("inspect", "--json", path)
    assert proc.returncode == 0, proc.stderr
    return {r["reader"]: (r["readable"], r["reason"]) for r in json.loads(proc.stdout)["readers"]}


@pytest.mark.parametrize("target", [(8, 8), (8, 14), (8, 20)], ids=lambda t: f"{t[0]}.{t[1]}")
def test_archives_pt2serde_writes_for_older_readers(tmp_path, target):
    """save(target_schema=...) picks the layout and document each release reads: the predictions
    say so (tools/check_older_readers.py checks the same archives with the real 2.8 and 2.9)."""
    ep = torch.export.export(IntParam().eval(), (torch.randn(2, 4),))
    path = str(tmp_path / "int_param.pt2")
    pt2serde.save(ep, path, target_schema=target)
    readers = _readers(path)
    yes = sorted((r for r, (ok, _) in readers.items() if ok), key=lambda r: (r == "pt2serde", RELEASES.index(r)
                                                                             if r in RELEASES else 0))
    # 8.8: whole-dict torch.save records for both folders; 8.14: the integer Parameter in a
    # torch.save record (2.9 cannot rebuild it from raw), constants raw; 8.20: everything raw
    assert yes == {(8, 8): ["2.8", "2.9", "2.13", "2.14", "pt2serde"], (8, 14): ["2.9", "2.13", "2.14", "pt2serde"],
                   (8, 20): ["2.13", "2.14", "pt2serde"]}[target]
    if target == (8, 14):
        assert readers["2.8"][1] == ("constants stored as raw records (model_constants_config.json); 2.8 reads "
                                     "only whole-dict torch.save records (data/constants/model.pt)")
    if target == (8, 20):
        assert readers["2.9"][1].startswith("non-floating parameter `codes` stored as a raw record")


def test_plain_zip_without_version_and_newer_major(tmp_path):
    legacy = rewrite(os.path.join(CORPUS, "2.7.1", "mlp.pt2"), str(tmp_path / "noversion.pt2"), {"version": None})
    major = edit_json(os.path.join(CORPUS, "2.13.0", "mlp.pt2"), str(tmp_path / "major9.pt2"), "models/model.json",
                      lambda d: d["schema_version"].update(major=9, minor=0))
    (c1, o1, _), (c2, o2, _) = run_batch([["inspect", "--json", legacy], ["inspect", "--json", major]])
    no_version = json.loads(o1)
    assert c1 == 0 and no_version["archive"]["version_record"] is None
    assert {(r["readable"], r["reason"], r["where"]) for r in no_version["readers"]} == {
        (False, "the plain zip has no `version` record", "version")}
    nine = {r["reader"]: r for r in json.loads(o2)["readers"]}
    assert c2 == 1  # pt2serde cannot decode it either: a note of level error
    assert (nine["2.13"]["readable"], nine["2.13"]["reason"], nine["2.13"]["where"]) == (
        False, "schema 9.0 (the document); 2.13 reads schema 8.x only", "mlp/models/model.json $.schema_version")
    assert not nine["pt2serde"]["readable"] and nine["pt2serde"]["reason"].startswith(
        "Serialized schema version 9.0 does not match our current schema version 8.20")


def test_only_the_release_that_wrote_it(tmp_path):
    """A 2.6 scan along dim 1: 2.6 reads it; pt2serde's upgrader refuses it (and says why), and
    validate reports the same refusal; every later release fails to run it."""
    def dim_one(doc):
        (node,) = [n for n in doc["graph_module"]["graph"]["nodes"] if n["target"].endswith(".scan")]
        node["inputs"][3]["arg"] = {"as_int": 1}

    path = edit_json(os.path.join(CORPUS, "2.6.0", "scan.pt2"), str(tmp_path / "scan_dim1.pt2"),
                     "serialized_exported_program.json", dim_one)
    (c1, o1, _), (c2, o2, _) = run_batch([["inspect", "--json", path], ["validate", "--json", path]])
    readers = {r["reader"]: r for r in json.loads(o1)["readers"]}
    assert c1 == 1 and [r for r in RELEASES + ["pt2serde"] if readers[r]["readable"]] == ["2.6"]
    refusal = ("scan node scans along dim {'as_int': 1} with reverse={'as_bool': False}; only dim 0 forward "
               "scans can be upgraded")  # (8.2 nodes have no names: the path says which node)
    assert readers["pt2serde"]["reason"] == f"{refusal} - at `$.graph_module.graph.nodes[4]`"
    assert readers["2.13"]["fails_at"] == "run"
    (problem,) = json.loads(o2)["problems"]
    assert c2 == 1 and (problem["message"], problem["where"]) == (
        f"cannot upgrade the document from schema 8.2: {refusal}", "$.graph_module.graph.nodes[4]")
