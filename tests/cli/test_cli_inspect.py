"""`pt2serde inspect`, run as a torch-free subprocess, against archives we build and the compat corpus."""

from __future__ import annotations

import json
import os
import re

import pytest
import torch

import pt2serde
from cli_support import (CORPUS, corpus_reports, edit_json, records, rewrite, run_batch, run_cli, run_cli_json,
                         zip_bytes)


class Rich(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)
        self.tied = torch.nn.Linear(4, 4, bias=False)
        self.tied2 = self.tied  # one Linear under two names: one storage, two state-dict entries
        self.register_buffer("running", torch.ones(4))
        self.register_buffer("scratch", torch.arange(4.0), persistent=False)
        self.h16 = torch.nn.Parameter(torch.ones(2, 3, dtype=torch.float16))

    def forward(self, x):
        h = self.fc(x) + self.running
        h = self.tied(h) * self.scratch
        return self.tied2(h).relu(), self.h16.sum()


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    torch.manual_seed(0)
    model = Rich().eval()
    batch = torch.export.Dim("batch", min=2, max=32)
    ep = torch.export.export(model, (torch.randn(4, 8),), dynamic_shapes={"x": {0: batch}})
    path = str(tmp_path_factory.mktemp("inspect") / "rich.pt2")
    pt2serde.save(ep, path, extra_files={"notes.txt": "hello", "blob.bin": b"\x00" * 2000})
    return ep, path


@pytest.fixture(scope="module")
def rich_report(rich):
    code, report = run_cli_json("inspect", rich[1])
    assert code == 0
    return report


def test_json_report_describes_the_program(rich, rich_report):
    ep, path = rich
    r = rich_report
    assert r["format_version"] == 1
    assert r["file"] == {"path": path, "bytes": os.path.getsize(path)}
    assert r["archive"]["layout"] == "pt2" and r["archive"]["root"] == "rich"
    assert (r["archive"]["archive_format"], r["archive"]["archive_version"], r["archive"]["byteorder"]) == \
        ("pt2", "0", "little")
    (p,) = r["programs"]
    assert p["name"] == "model"
    assert p["schema_version"] == {"major": 8, "minor": 20}
    assert p["torch_version"] == torch.__version__
    assert p["opset_version"] == {"aten": 10}
    assert p["verifiers"] == ["TRAINING"]
    assert p["forward_arg_names"] == ["x"]
    (x,) = p["inputs"]
    sym = str(ep.graph_signature and next(n for n in ep.graph.nodes if n.name == "x").meta["val"].shape[0])
    assert x == {"name": "x", "kind": "tensor", "dtype": "float32", "shape": [sym, 8], "device": "cpu",
                 "requires_grad": False}
    assert [o["kind"] for o in p["outputs"]] == ["tensor", "tensor"]
    assert p["outputs"][0]["dtype"] == "float32" and p["outputs"][0]["shape"] == [sym, 4]
    assert p["outputs"][1]["dtype"] == "float16" and p["outputs"][1]["shape"] == []
    assert p["symbols"] == [{"name": sym, "min": 2, "max": 32}]
    assert p["derived_ranges"] == []
    assert p["mutations"] == []
    assert p["lifted_inputs"] == {"parameter": 5, "buffer": 2, "tensor_constant": 0, "custom_obj": 0, "token": 0}


def test_json_report_operators(rich_report):
    g = rich_report["programs"][0]["graph"]
    ops = {o["target"]: o["count"] for o in g["operators"]}
    assert ops == {"torch.ops.aten.linear.default": 3, "torch.ops.aten.add.Tensor": 1,
                   "torch.ops.aten.mul.Tensor": 1, "torch.ops.aten.relu.default": 1,
                   "torch.ops.aten.sum.default": 1}
    assert g["nodes"] == 7 and g["subgraphs"] == 0
    assert g["operators"][0] == {"target": "torch.ops.aten.linear.default", "count": 3}  # most frequent first


def test_json_report_weights_and_constants(rich, rich_report):
    ep, _ = rich
    p = rich_report["programs"][0]
    w, c = p["weights"], p["constants"]
    assert w["storage"] == "raw" and w["config_record"] == "rich/data/weights/model_weights_config.json"
    assert w["count"] == w["tensors"] == len(ep.state_dict) == 6  # fc.weight/bias, tied.weight, tied2.weight, running, half
    assert w["parameters"] == 5 and w["objects"] == 0
    expected = sum(t.numel() * t.element_size() for t in ep.state_dict.values())
    assert w["tensor_bytes"] == expected == 4 * (32 + 4 + 16 + 16 + 4) + 2 * 6
    assert w["stored_bytes"] == expected - 64  # tied2.weight shares tied.weight's storage
    assert w["by_dtype"] == [{"dtype": "float32", "count": 5, "bytes": 288}, {"dtype": "float16", "count": 1, "bytes": 12}]
    assert w["largest"][0] == {"name": "fc.weight", "dtype": "float32", "shape": [4, 8], "bytes": 128}
    assert [x["name"] for x in w["largest"]] == ["fc.weight", "tied.weight", "tied2.weight", "fc.bias", "running"]
    assert c["count"] == c["tensors"] == 1 and c["tensor_bytes"] == 16 and c["parameters"] == 0
    assert c["largest"] == [{"name": "scratch", "dtype": "float32", "shape": [4], "bytes": 16}]
    (shared,) = p["shared_storages"]
    assert sorted(shared["names"]) == ["tied.weight", "tied2.weight"]
    assert re.fullmatch(r"data/weights/weight_\d+", shared["record"])
    assert p["needs_allow_pickle"] == []
    assert p["sample_inputs"]["summary"] == "args=(float32[4, 8],), kwargs={}"
    assert p["sample_inputs"]["record"] == "rich/data/sample_inputs/model.pt" and p["sample_inputs"]["bytes"] > 0
    assert p["notes"] == []
    assert rich_report["extra_files"] == [{"name": "notes.txt", "bytes": 5}, {"name": "blob.bin", "bytes": 2000}]


def test_json_report_has_every_documented_key(rich_report):
    program_keys = ["name", "document", "schema_version", "torch_version", "opset_version", "verifiers",
                    "forward_arg_names", "inputs", "outputs", "mutations", "lifted_inputs", "symbols",
                    "derived_ranges", "graph", "weights", "constants", "shared_storages", "needs_allow_pickle",
                    "sample_inputs", "notes", "upgraded_to"]
    assert list(rich_report) == ["format_version", "file", "archive", "programs", "extra_files", "readers"]
    assert list(rich_report["archive"]) == ["layout", "root", "archive_format", "archive_version", "byteorder",
                                            "records", "version_record"]
    assert list(rich_report["programs"][0]) == program_keys
    assert [list(r) for r in rich_report["readers"]] == [["reader", "readable", "fails_at", "reason", "where"]] * 8
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "inspect-json.md")).read()
    for key in (program_keys + list(rich_report["programs"][0]["weights"]) + list(rich_report["archive"])
                + list(rich_report) + list(rich_report["readers"][0])):
        assert f"`{key}`" in doc, key


def test_human_output_is_aligned_and_plain_when_piped(rich, rich_report):
    proc = run_cli("inspect", rich[1])
    assert proc.returncode == 0 and proc.stderr == ""
    out = proc.stdout
    assert "\x1b[" not in out  # not a terminal: no colour
    sym = rich_report["programs"][0]["symbols"][0]["name"]
    lines = out.splitlines()
    assert lines[0].startswith("rich.pt2  ") and "PT2 archive (format pt2, version 0)" in lines[0]
    assert "program model  schema 8.20, written by torch " + torch.__version__ in out
    assert f"    x  float32[{sym}, 8]  cpu" in lines
    assert f"    {sym}  2..32" in lines
    assert "  graph  7 nodes, 5 operators" in lines
    assert "    aten.linear.default  3" in lines  # counts right-aligned in their column
    assert "  weights  6 tensors (5 parameters, 1 buffer), 300 B (236 B stored)  [float32 5, float16 1]" in lines
    row = next(ln for ln in lines if ln.strip().startswith("fc.weight"))
    assert row.split() == ["fc.weight", "float32[4,", "8]", "128", "B"]
    assert "  sample inputs  args=(float32[4, 8],), kwargs={} (" in out
    assert "extra files" in lines and "  blob.bin   1.95 KiB" in lines


def test_multi_program_archive(tmp_path):
    enc = torch.export.export(torch.nn.Linear(4, 2), (torch.randn(3, 4),))
    dec = torch.export.export(torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh()), (torch.randn(3, 2),))
    path = str(tmp_path / "two.pt2")
    pt2serde.save({"encoder": enc, "decoder": dec}, path)
    code, r = run_cli_json("inspect", path)
    assert code == 0
    assert [p["name"] for p in r["programs"]] == ["decoder", "encoder"]
    dec_r, enc_r = r["programs"]
    assert {o["target"] for o in dec_r["graph"]["operators"]} == {"torch.ops.aten.linear.default",
                                                                   "torch.ops.aten.tanh.default"}
    assert enc_r["inputs"][0]["shape"] == [3, 4] and dec_r["inputs"][0]["shape"] == [3, 2]
    assert enc_r["weights"]["tensor_bytes"] == 4 * (8 + 2)


def _summary(s: dict) -> str:
    kind = s["kind"]
    if kind == "tensor":
        return f"{s['dtype']}[{', '.join(str(x) for x in s['shape'])}]"
    if kind in ("tuple", "list"):
        items = [_summary(x) for x in s["items"]]
        if kind == "list":
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if kind == "dict":
        return "{" + ", ".join(f"{k!r}: {_summary(v)}" for k, v in zip(s["keys"], s["items"])) + "}"
    return "None" if kind == "none" else repr(s["value"])


def _range(text: str) -> tuple:
    lo, hi = text[3:-1].split(",")
    return tuple(None if v.strip() in ("int_oo", "-int_oo") else int(v) for v in (lo, hi))


def test_corpus_archives_match_their_manifests():
    """Every archive of every writer, both layouts: programs, versions, inputs, outputs, ranges,
    operators, entry counts and sample inputs as the writer's manifest records them."""
    reports = corpus_reports()
    assert len(reports) == 241
    legacy = 0
    for path, entry, (code, out, err) in reports:
        where = os.path.relpath(path, CORPUS)
        assert code == 0 and err == "", (where, err)
        r = json.loads(out)
        a = entry["archive"]
        assert r["archive"]["layout"] == {"legacy_zip": "legacy", "pt2_archive": "pt2"}[a["layout"]], where
        assert r["archive"]["version_record"] == a["version"], where  # the plain zip's `version`; else null
        legacy += r["archive"]["layout"] == "legacy"
        assert sorted(p["name"] for p in r["programs"]) == sorted(entry["models"]), where
        for p in r["programs"]:
            m = entry["models"][p["name"]]
            g = m["graph"]
            member = p["document"]["record"].removeprefix(r["archive"]["root"] + "/")
            assert p["schema_version"] == a["schema_version"][member], where  # as written, before upgrading
            written = (p["schema_version"]["major"], p["schema_version"]["minor"])
            assert p["upgraded_to"] == (None if written == (8, 20) else {"major": 8, "minor": 20}), where
            assert p["torch_version"] == a["json_torch_version"][member], where
            assert [x["name"] if x["kind"] != "constant" else str(x["value"]) for x in p["inputs"]] == \
                g["user_inputs"], where
            outs = [s for s in g["output_specs"] if s[0] in ("USER_OUTPUT", "LOSS_OUTPUT")]
            assert len(p["outputs"]) == len(outs), where
            ranges = {s["name"]: (s["min"], s["max"]) for s in p["symbols"]}
            ranges.update({s["expr"]: (s["min"], s["max"]) for s in p["derived_ranges"]})
            assert ranges == {k: _range(v) for k, v in g["range_constraints"].items()}, where
            ops = {o["target"].removeprefix("torch.ops.") for o in p["graph"]["operators"]}
            listed = {t.removeprefix("torch.ops.") for t in g["call_targets"]}
            # getitem nodes after multi-output calls exist in memory but not in documents
            assert ops - {"_operator.getitem"} == listed - {"_operator.getitem"}, where
            assert p["weights"]["count"] == len(g["state_dict_keys"]), where
            assert p["constants"]["count"] == len(g["constant_keys"]), where
            assert p["weights"]["storage"] == a["weights_format"].replace("raw_config", "raw"), where
            case = m["cases"][0]
            assert p["sample_inputs"]["summary"] == f"args={_summary(case['args'])}, kwargs={_summary(case['kwargs'])}", where
            assert p["notes"] == [], where
    assert legacy == 28 + 31 + 33


def test_corpus_details():
    """Facts worth pinning: view offsets and shared storages, float8 dtypes, derived dims, extra files."""
    results = run_batch([
        ["inspect", "--json", os.path.join(CORPUS, "2.8.0", "const_view_offset.pt2")],
        ["inspect", "--json", os.path.join(CORPUS, "2.13.0", "const_view_offset.pt2")],
        ["inspect", "--json", os.path.join(CORPUS, "2.13.0", "new_dtypes_8_20.pt2")],
        ["inspect", "--json", os.path.join(CORPUS, "2.14.1", "dyn_derived.pt2")],
        ["inspect", "--json", os.path.join(CORPUS, "2.9.1", "extra_files.pt2")],
        ["inspect", "--json", os.path.join(CORPUS, "2.13.0", "item_unbacked.pt2")],
    ])
    assert [c for c, _, _ in results] == [0] * 6
    old, new, dtypes, derived, extra, unbacked = (json.loads(o) for _, o, _ in results)
    for r, record in ((old, "data/weights/model.pt:archive/data/0"), (new, "data/weights/weight_0")):
        p = r["programs"][0]
        assert p["shared_storages"] == [{"record": record, "names": ["win", "win2"]}]
        assert p["weights"]["tensor_bytes"] == 4 * (8 + 6) and p["weights"]["stored_bytes"] == 96
        assert p["constants"]["tensors"] == 3
    assert old["programs"][0]["weights"]["storage"] == "torch_save"
    assert {d["dtype"] for d in dtypes["programs"][0]["weights"]["by_dtype"]} >= {"uint32", "uint64", "float8_e8m0fnu"}
    d = derived["programs"][0]
    assert d["derived_ranges"] == [{"expr": "2*s17", "min": 4, "max": 32}]
    assert d["inputs"][0]["shape"] == ["2*s17", "s27"]
    assert d["torch_version"].startswith("2.14.1")
    assert sorted(e["name"] for e in extra["extra_files"]) == ["config.json", "notes.txt"]
    u = unbacked["programs"][0]
    assert u["outputs"][1]["shape"] == ["u0"] and u["symbols"] == [{"name": "u0", "min": 1, "max": 8}]


def test_legacy_plain_zip_report():
    """The plain zip of 2.5-2.7: the writer's schema version (the `version` record), the document's
    version before upgrading, and weights/constants summarised from their torch.save records."""
    path = os.path.join(CORPUS, "2.5.1", "const_view_offset.pt2")
    (code, out, err), (hcode, human, herr) = run_batch([["inspect", "--json", path], ["inspect", path]])
    assert (code, err, hcode, herr) == (0, "", 0, "")
    r = json.loads(out)
    assert r["archive"] == {"layout": "legacy", "root": "", "archive_format": None, "archive_version": None,
                            "byteorder": None, "records": 5, "version_record": "7.3"}
    (p,) = r["programs"]
    assert p["document"]["record"] == "serialized_exported_program.json"
    assert (p["schema_version"], p["upgraded_to"]) == ({"major": 7, "minor": 3}, {"major": 8, "minor": 20})
    assert p["torch_version"] == "2.5.1+cu124"
    w, c = p["weights"], p["constants"]
    assert (w["storage"], w["config_record"], c["config_record"]) == \
        ("torch_save", "serialized_state_dict.pt", "serialized_constants.pt")
    # win (8 floats at offset 4) and win2 (2x3 at offset 10) view one 24-float storage
    assert (w["count"], w["tensors"], w["parameters"], w["tensor_bytes"], w["stored_bytes"]) == (2, 2, 0, 56, 96)
    assert w["by_dtype"] == [{"dtype": "float32", "count": 2, "bytes": 56}]
    assert w["largest"] == [{"name": "win", "dtype": "float32", "shape": [8], "bytes": 32},
                            {"name": "win2", "dtype": "float32", "shape": [2, 3], "bytes": 24}]
    assert (c["count"], c["tensor_bytes"], [x["name"] for x in c["largest"]]) == (3, 72, ["ct", "c", "np_view"])
    assert p["shared_storages"] == [{"record": "serialized_state_dict.pt:archive/data/0", "names": ["win", "win2"]}]
    assert p["sample_inputs"] == {"record": "serialized_example_inputs.pt", "bytes": 1180,
                                  "summary": "args=(float32[8],), kwargs={}", "note": None}
    assert (p["needs_allow_pickle"], p["notes"]) == ([], [])
    lines = human.splitlines()
    assert lines[0] == ("const_view_offset.pt2  13.5 KiB, plain zip of PyTorch 2.5-2.7 (version record 7.3), "
                        "5 records, 1 program")
    assert lines[2].startswith("program model  schema 7.3 (read as 8.20), written by torch 2.5.1+cu124, ")
    assert "  weights  2 tensors (0 parameters, 2 buffers), 56 B (96 B stored), stored with torch.save  [float32 2]" \
        in lines
    assert "    serialized_state_dict.pt:archive/data/0  win, win2" in lines


def test_legacy_documents_of_every_writer():
    """Schema 7.3 with bare Infinity bounds (2.5), 8.2 with tuple HOP outputs (2.6), an int8
    Parameter pickled with requires_grad=False (2.6), extra files (2.7)."""
    paths = [os.path.join(CORPUS, w, f"{n}.pt2") for w, n in (("2.5.1", "dyn_auto"), ("2.6.0", "cond"),
                                                               ("2.6.0", "int8_param"), ("2.7.1", "extra_files"))]
    results = run_batch([["inspect", "--json", p] for p in paths])
    assert [(c, e) for c, _, e in results] == [(0, "")] * 4
    auto, cond, int8, extra = (json.loads(o) for _, o, _ in results)
    assert [s["max"] for s in auto["programs"][0]["symbols"]] == [None, None]  # Infinity: unbounded
    assert cond["programs"][0]["schema_version"] == {"major": 8, "minor": 2}
    assert {"target": "torch.ops.higher_order.cond", "count": 1} in cond["programs"][0]["graph"]["operators"]
    w = int8["programs"][0]["weights"]
    assert (w["tensors"], w["parameters"], w["tensor_bytes"]) == (6, 1, 57)
    assert w["largest"][0] == {"name": "qw", "dtype": "int8", "shape": [4, 6], "bytes": 24}
    assert extra["archive"]["version_record"] == "8.7"
    assert sorted(e["name"] for e in extra["extra_files"]) == ["config.json", "notes.txt"]


def test_legacy_inspect_reads_no_tensor_bytes(tmp_path):
    """Storage bytes inside the torch.save records replaced by garbage: the same report."""
    path = os.path.join(CORPUS, "2.7.1", "conv_bn_eval.pt2")
    recs = records(path)
    state = records(recs["serialized_state_dict.pt"])
    garbage = {n: (b"\xff" * len(d) if "/data/" in n else d) for n, d in state.items() if n != "__root__"}
    garbage = {f"{state['__root__'].decode()}/{n}": d for n, d in garbage.items()}
    copy = rewrite(path, str(tmp_path / "garbage.pt2"), {"serialized_state_dict.pt": zip_bytes(garbage)})
    a = run_cli_json("inspect", path)[1]
    b = run_cli_json("inspect", copy)[1]
    assert a["programs"][0]["weights"]["tensors"] == 7  # conv + batchnorm, num_batches_tracked int64
    a["file"] = b["file"] = None
    assert a == b


def test_unreadable_files(tmp_path):
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"this is not a zip file at all" * 10)
    results = run_batch([["inspect", str(junk)], ["inspect", str(tmp_path / "missing.pt2")],
                         ["inspect", str(tmp_path)]])
    assert [r[0] for r in results] == [2, 2, 2]
    assert "it is a text file (starting 'this is not a zip file a'), not a PT2 archive; pass the .pt2 file" \
        in results[0][2]
    assert "cannot open" in results[1][2] and "No such file" in results[1][2]
    assert "is a folder" in results[2][2]
    assert all(r[1] == "" for r in results)


def test_unreadable_document_is_a_note_not_a_crash(rich, tmp_path):
    _, path = rich
    broken = edit_json(path, str(tmp_path / "broken.pt2"), "models/model.json",
                       lambda d: d["graph_module"]["graph"]["nodes"][0].update(target=7))
    code, r = run_cli_json("inspect", broken)
    assert code == 1
    p = r["programs"][0]
    assert p["inputs"] is None and p["graph"] is None and p["schema_version"] is None
    assert p["weights"]["count"] == 6  # the rest of the program is still reported
    (note,) = p["notes"]
    assert note["level"] == "error" and note["where"] == "rich/models/model.json"
    assert note["message"] == ("document cannot be read: Expected `str`, got `int` - at "
                               "`$.graph_module.graph.nodes[0].target`")
    human = run_cli("inspect", broken)
    assert human.returncode == 1
    assert "  error: document cannot be read: Expected `str`, got `int`" in human.stdout


def test_inspect_reads_no_tensor_bytes(rich, tmp_path):
    """Weight records replaced by garbage of the same size: inspect reports the same thing."""
    _, path = rich

    recs = records(path)
    garbage = {n: b"\xff" * len(d) for n, d in recs.items() if n.startswith("data/weights/weight_")}
    copy = rewrite(path, str(tmp_path / "garbage.pt2"), garbage)
    a = run_cli_json("inspect", path)[1]
    b = run_cli_json("inspect", copy)[1]
    a["file"] = b["file"] = None
    assert a == b


def test_dtype_table_agrees_with_torch():
    """The torch-free dtype table (names, sizes) against torch's own dtypes, for every wire dtype."""
    from pt2serde import schema
    from pt2serde.bridge import tables
    from pt2serde.format.tables import DTYPES

    assert set(DTYPES) == set(schema.ScalarType) - {schema.ScalarType.UNKNOWN}
    for dtype, code in tables.DTYPES.items():
        assert (DTYPES[code].name, DTYPES[code].itemsize) == (str(dtype).removeprefix("torch."), dtype.itemsize)


def test_symbolic_sizes_print_as_sympy_does():
    """Sizes are shown as ``str(expr)`` shows them (the form of range_constraints keys), without sympy."""
    import sympy
    from torch.utils._sympy.functions import FloorDiv, Mod

    from pt2serde.format.expr import pretty, symbols, parse

    s0, s1 = sympy.Symbol("s0", positive=True, integer=True), sympy.Symbol("s1", positive=True, integer=True)
    for expr in (s0, 2 * s0, s0 - 1, 3 - s0, FloorDiv(s0, 2), FloorDiv(s0 + 1, 2), 2 * s0 + 2, s0 * s1 + 2 * s0,
                 Mod(s0, 3), -s0, s0 / s1, (s0 - 1) * s1, 2 * s0 - 4, s0**2, sympy.Max(2, s0), -2 * s0):
        assert pretty(sympy.srepr(expr)) == str(expr)
    assert sorted(symbols(parse(sympy.srepr(s0 * s1 + 2 * s0)))) == ["s0", "s1"]
    assert pretty("Mul(Integer(2), ") == "Mul(Integer(2), "  # malformed: shown as stored


# ------------------------------------------------------- text from a file (issue 10, finding 11)


def test_inspect_escapes_what_the_file_says(tmp_path):
    """A torch version and extra-file names that would set the window title, clear the screen,
    print a forged `valid` line over the start of the line and reverse text: shown escaped;
    --json escapes them as \\u sequences and round-trips them exactly."""
    import cases_cli

    paths = cases_cli.hostile_archives(tmp_path)
    version, extra = paths["torch_version with terminal escapes"], paths["extra file names with terminal escapes"]
    results = run_batch([["inspect", version], ["inspect", "--json", version], ["inspect", extra],
                         ["inspect", "--json", extra]])
    for code, out, err in results:
        assert code == 0 and err == "" and cases_cli.unsafe_printed(out) == []
    text = results[0][1]
    assert ("written by torch 2.13.0\\x1b]0;pwned\\x07\\x1b[2J\\rcase.pt2: valid (1 program, 10 records, CRCs "
            "checked)\\u202e\\u2028, opset") in text
    assert results[1][1].isascii()
    assert json.loads(results[1][1])["programs"][0]["torch_version"] == "2.13.0" + cases_cli.HOSTILE
    lines = results[2][1].splitlines()
    assert "  \\x1b]0;pwned\\x07\\x1b[2J" in [ln[:len("  \\x1b]0;pwned\\x07\\x1b[2J")] for ln in lines]
    assert any(ln.startswith("  notes\\rcase.pt2: valid (1 program, 10 records, CRCs checked)\\u202e") for ln in lines)
    names = {e["name"] for e in json.loads(results[3][1])["extra_files"]}
    assert names == {cases_cli.TITLE + cases_cli.CLEAR, "notes" + cases_cli.FORGED + cases_cli.RLO}
