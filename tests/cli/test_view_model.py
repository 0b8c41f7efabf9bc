"""``pt2serde view`` and ``diff --html``: the view model (``cli/view_model.py``, ``cli/view_diff.py``)
on the compat corpus and on real exported programs, and the commands (exit codes, output
names, atomic writes). The page itself (``render_page``) is tested in ``tests/browser``."""

from __future__ import annotations

import io
import json
import os
import sys
import threading

import pytest
import torch

from cli_support import CORPUS, edit_json, run_cli
from pt2serde import schema
from pt2serde.cli import main
from pt2serde.cli.view_diff import diff_view
from pt2serde.cli.view_model import FORMAT, MAX_TEXT, program_view, read_program
from pt2serde.cli.view_page import render_page
from pt2serde.format.archive import ArchiveReader
from pt2serde.format.check import document_graphs
from pt2serde.format.contents import open_archive
from pt2serde.format.tables import DTYPES, sym_text

CORPUS_ARCHIVES = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.pt2"))


def _tensor_label(tm: schema.TensorMeta) -> str:
    return f"{DTYPES[tm.dtype].short}[{', '.join(str(sym_text(s)) for s in tm.sizes)}]"


def _check_against_document(model: dict, doc: schema.ExportedProgram) -> None:
    """Node counts, edges and their labels of a view model against the document it shows."""
    graphs = [g for g, _ in document_graphs(doc.graph_module.graph)]
    assert len(model["graphs"]) == len(graphs)
    assert sum(len(g["nodes"]) for g in model["graphs"]) == sum(len(g.inputs) + len(g.nodes) + 1 for g in graphs)
    ids = [n["id"] for g in model["graphs"] for n in g["nodes"]]
    assert len(ids) == len(set(ids))
    tables = {}
    for g in graphs:
        for name, tm in g.tensor_values.items():
            tables.setdefault(name, set()).add(_tensor_label(tm))
    for g in model["graphs"]:
        own = {n["id"] for n in g["nodes"]}
        assert g["nodes"][-1]["kind"] == "output"
        for e in g["edges"]:
            assert e["from"] in own and e["to"] in own
            label = g["values"][e["value"]]
            if e["value"] in tables and not label.startswith(("sym_", "obj ")):
                assert label in tables[e["value"]], (e, label, tables[e["value"]])
        if g["owner"] is not None:
            owner = next(n for h in model["graphs"] for n in h["nodes"] if n["id"] == g["owner"])
            assert g["id"] in owner["subgraphs"]


@pytest.mark.parametrize("rel", CORPUS_ARCHIVES)
def test_model_of_every_corpus_archive(rel):
    archive = open_archive(str(CORPUS / rel))
    for program in archive.models():
        model = program_view(archive, program)
        json.dumps(model, allow_nan=False)
        assert model["format"] == FORMAT and model["kind"] == "program" and model["program"] == program
        assert model["programs"] == archive.models()
        assert model["title"] == os.path.basename(rel)
        assert model["verdict"]["valid"] is True, model["notes"]
        _check_against_document(model, read_program(archive, program))


# ------------------------------------------------------------------ a real program


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x):
        return torch.relu(self.lin(x))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = Block()
        self.dec = torch.nn.Linear(4, 4)
        self.dec.weight = self.enc.lin.weight  # tied: one storage
        self.register_buffer("scale", torch.ones(4))
        self.register_buffer("steps", torch.zeros(()), persistent=False)

    def forward(self, x, it):
        from torch._higher_order_ops.while_loop import while_loop

        h = self.enc(x) * self.scale
        h = torch.cond(h.sum() > 0, lambda h: h.sin(), lambda h: h.cos(), (h,))
        _, h = while_loop(lambda i, h: i < 3, lambda i, h: (i + 1, h * 2), (it, h))
        return self.dec(h) + self.steps


@pytest.fixture(scope="module")
def net_archive(tmp_path_factory):
    import pt2serde

    n = torch.export.Dim("n", min=2, max=64)
    ep = torch.export.export(Net(), (torch.randn(3, 4), torch.tensor(0)), dynamic_shapes=({0: n}, None))
    path = str(tmp_path_factory.mktemp("view") / "net.pt2")
    pt2serde.save(ep, path)
    return path


def _nodes(model: dict, graph: int = 0) -> list[dict]:
    return model["graphs"][graph]["nodes"]


def test_real_program(net_archive):
    archive = open_archive(net_archive)
    model = program_view(archive)
    doc = read_program(archive, "model")
    _check_against_document(model, doc)
    assert model["title"] == "net.pt2" and model["verdict"]["valid"] and "pt2serde" in model["verdict"]["readable_by"]
    nodes = _nodes(model)
    kinds = {n["target"]: n["kind"] for n in nodes if n["kind"] != "op"}
    assert kinds["enc.lin.weight"] == "parameter" and kinds["scale"] == "buffer" and kinds["steps"] == "buffer"
    assert [n["kind"] for n in nodes if n["kind"] == "user_input"] == ["user_input", "user_input"]
    inputs = {i["target"]: i for i in model["signature"]["inputs"]}
    assert inputs["scale"]["persistent"] is True and inputs["steps"]["persistent"] is False
    assert [o["kind"] for o in model["signature"]["outputs"]] == ["user_output"]
    # symbols by name, with their ranges; edge labels print them
    assert [s["name"] for s in model["symbols"]] == sorted(doc.range_constraints)
    (dim,) = [s["name"] for s in model["symbols"] if (s["min"], s["max"]) == ("2", "64")]  # integers as text
    assert dim.isidentifier()
    x = next(n for n in nodes if n["kind"] == "user_input" and n["name"] == "x")
    values = model["graphs"][0]["values"]
    assert {values[e["value"]] for e in model["graphs"][0]["edges"] if e["from"] == x["id"]} == {f"f32[{dim}, 4]"}
    it = next(n for n in nodes if n["kind"] == "user_input" and n["name"] == "it")
    assert values[it["outputs"][0]] == "i64[]"
    # module paths, outermost first, with their types
    linear = next(n for n in nodes if n["op"] == "linear" and n["module"][:1] == ["enc"])
    assert linear["module"] == ["enc", "enc.lin"]
    assert linear["module_types"][-1].endswith("Linear") and linear["meta"]["stack_trace"]
    assert linear["target"] == "torch.ops.aten.linear.default"
    assert [a["name"] for a in linear["args"]] == ["input", "weight", "bias"]
    # subgraphs owned by their HOP node
    for op in ("cond", "while_loop"):
        hop = next(n for n in nodes if n["op"] == op)
        assert len(hop["subgraphs"]) == 2
        for gid in hop["subgraphs"]:
            graph = next(g for g in model["graphs"] if g["id"] == gid)
            assert graph["owner"] == hop["id"] and graph["nodes"][-1]["kind"] == "output"
    # weights, with the tied storage shared
    weights = {w["name"]: w for w in model["weights"]}
    assert weights["enc.lin.weight"]["shape"] == ["4", "4"] and weights["enc.lin.weight"]["dtype"] == "float32"
    assert weights["enc.lin.weight"]["nbytes"] == "64"
    shared = [w for w in model["weights"] if w["shared"] is not None]
    assert shared, model["weights"]
    assert all(weights[o]["storage"] == w["storage"] for w in shared for o in model["storages"][w["shared"]]["names"])
    assert all(w["name"] in model["storages"][w["shared"]]["names"] for w in shared)


# ------------------------------------------------------------------ diff


class Before(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.old = torch.nn.Parameter(torch.ones(4))

    def forward(self, x):
        return torch.relu(self.lin(x) + 1) * self.old


class After(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.new = torch.nn.Parameter(torch.ones(4))

    def forward(self, x):
        return torch.sigmoid(self.lin(x) + 2) * self.new


@pytest.fixture(scope="module")
def diff_pair(tmp_path_factory):
    import pt2serde

    folder = tmp_path_factory.mktemp("viewdiff")
    torch.manual_seed(0)
    a, b = Before(), After()
    with torch.no_grad():
        b.lin.weight.copy_(a.lin.weight)
        b.lin.bias.copy_(a.lin.bias + 1)  # same name and shape, other values
    paths = []
    for name, m in (("a.pt2", a), ("b.pt2", b)):
        paths.append(str(folder / name))
        pt2serde.save(torch.export.export(m, (torch.randn(2, 4),)), paths[-1])
    return paths


def test_diff_statuses(diff_pair):
    model = diff_view(open_archive(diff_pair[0]), open_archive(diff_pair[1]))
    json.dumps(model, allow_nan=False)
    assert model["kind"] == "diff" and model["title"] == "a.pt2 -> b.pt2"
    nodes = {n["name"]: n for n in _nodes(model)}
    assert nodes["sigmoid"]["status"] == "added"
    assert nodes["relu"]["status"] == "removed" and nodes["relu"]["id"].startswith("a:")
    assert nodes["add"]["status"] == "changed" and nodes["add"]["change"] == "other: 1 -> 2"
    assert nodes["linear"]["status"] is None
    edges = model["graphs"][0]["edges"]
    assert any(e["to"] == nodes["relu"]["id"] and e.get("status") == "removed" for e in edges)
    ids = [n["id"] for g in model["graphs"] for n in g["nodes"]]
    assert len(ids) == len(set(ids))
    assert all(e["from"] in ids and e["to"] in ids for g in model["graphs"] for e in g["edges"])
    weights = {w["name"]: w["status"] for w in model["weights"]}
    assert weights == {"lin.weight": None, "lin.bias": "changed", "new": "added", "old": "removed"}
    assert model["diff"]["weights"] == {"lin.bias": "changed", "new": "added", "old": "removed"}
    assert any("sigmoid" in c["text"] for c in model["diff"]["changes"] if c["section"] == "graph")


def test_diff_signature_and_ranges_on_top():
    a = open_archive(str(CORPUS / "2.14.1" / "dyn_batch.pt2"))
    b = open_archive(str(CORPUS / "2.14.1" / "dyn_derived.pt2"))
    model = diff_view(a, b)
    assert model["diff"]["signature"] and model["diff"]["ranges"]
    assert all(t.split()[0] in ("added", "removed", "changed") for t in model["diff"]["ranges"])


# ------------------------------------------------------------------ commands


def test_view_command_default_name_and_exit_codes(tmp_path):
    src = str(CORPUS / "2.14.1" / "two_programs.pt2")
    proc = run_cli("view", src, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wrote two_programs.html: program ") and proc.stdout.count("\n") == 1
    assert (tmp_path / "two_programs.html").stat().st_size > 0
    proc = run_cli("view", src, "--program", "nope", "-o", "x.html", cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "no program 'nope' in the archive; its programs: 'decoder', 'encoder'" in proc.stderr
    assert not (tmp_path / "x.html").exists()
    (tmp_path / "junk.pt2").write_bytes(b"not a zip at all")
    proc = run_cli("view", str(tmp_path / "junk.pt2"), cwd=str(tmp_path))
    assert proc.returncode == 2 and "pt2serde view: cannot read" in proc.stderr and not (tmp_path / "junk.html").exists()
    proc = run_cli("view", src, "--program", "encoder", "-o", "sub/enc.html", cwd=str(tmp_path))
    assert proc.returncode == 2 and "cannot write sub/enc.html" in proc.stderr


def test_failed_write_leaves_the_old_page(tmp_path, monkeypatch):
    out = tmp_path / "page.html"
    out.write_text("the old page")
    from pt2serde.format import archive_write

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(archive_write.os, "replace", fail)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["view", str(CORPUS / "2.14.1" / "cond.pt2"), "-o", str(out)]) == 2
    assert "No space left on device" in err.getvalue()
    assert out.read_text() == "the old page" and os.listdir(tmp_path) == ["page.html"]  # no temporary left
    monkeypatch.undo()
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert main(["view", str(CORPUS / "2.14.1" / "cond.pt2"), "-o", str(out)]) == 0
    assert out.read_text() != "the old page" and os.listdir(tmp_path) == ["page.html"]


def test_view_writes_to_stdout_and_streams_to_a_pipe(tmp_path, monkeypatch):
    """Round 2 of issue 16, finding 4: ``-o -`` and ``/dev/stdout`` are stdout, a fifo is written as a stream
    (no temporary file renamed over it), and the "wrote" line goes to stderr when stdout holds the page."""
    src = str(CORPUS / "2.14.1" / "cond.pt2")
    for out in ("-", "/dev/stdout"):
        proc = run_cli("view", src, "-o", out, cwd=str(tmp_path))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("<!DOCTYPE html>") and proc.stdout.rstrip().endswith("</html>")
        assert proc.stderr.startswith(f"wrote {out}: program model") and os.listdir(tmp_path) == []
    with open(tmp_path / "redirected.html", "w") as f:   # stdout redirected to the page's own path
        monkeypatch.setattr(sys, "stdout", f)
        monkeypatch.setattr(sys, "stderr", io.StringIO())
        assert main(["view", src, "-o", str(tmp_path / "redirected.html")]) == 0
        monkeypatch.undo()
    assert (tmp_path / "redirected.html").read_text().startswith("<!DOCTYPE html>")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert main(["view", src, "-o", str(fifo)]) == 0
    reader.join(30)
    assert got and got[0].startswith(b"<!DOCTYPE html>") and sorted(os.listdir(tmp_path)) == ["fifo", "redirected.html"]


def test_diff_refuses_a_page_on_stdout(tmp_path):
    same = str(CORPUS / "2.14.1" / "mlp.pt2")
    proc = run_cli("diff", same, same, "--html", "-", cwd=str(tmp_path))
    assert proc.returncode == 2 and "refusing to write the page to standard output (-)" in proc.stderr
    assert proc.stdout == "" and os.listdir(tmp_path) == []


def test_diff_html_keeps_the_exit_code(tmp_path):
    same = str(CORPUS / "2.14.1" / "mlp.pt2")
    other = str(CORPUS / "2.14.1" / "cond.pt2")
    proc = run_cli("diff", same, same, "--html", "same.html", cwd=str(tmp_path))
    assert proc.returncode == 0 and (tmp_path / "same.html").stat().st_size > 0, proc.stderr
    assert proc.stdout.rstrip().endswith("wrote same.html")
    proc = run_cli("diff", same, other, "--html", "d.html", "--json", cwd=str(tmp_path))
    assert proc.returncode == 1 and (tmp_path / "d.html").stat().st_size > 0, proc.stderr
    assert json.loads(proc.stdout)["equal"] is False and "wrote d.html" in proc.stderr
    proc = run_cli("diff", same, str(tmp_path / "missing.pt2"), "--html", "m.html",
                   cwd=str(tmp_path))
    assert proc.returncode == 2 and not (tmp_path / "m.html").exists()


def test_an_invalid_archive_is_shown_and_an_undecodable_one_is_not(tmp_path):
    src = str(CORPUS / "2.14.1" / "mlp.pt2")

    def rename_first_node(doc):
        doc["graph_module"]["graph"]["nodes"][0]["name"] = "not a value name"

    invalid = edit_json(src, str(tmp_path / "invalid.pt2"), "models/model.json", rename_first_node)
    model = program_view(open_archive(invalid))
    assert model["verdict"]["valid"] is False and model["verdict"]["text"].startswith("invalid (1 error)")
    assert any("node name 'not a value name' is not a value name" in n for n in model["notes"]), model["notes"]
    assert _nodes(model)[len(model["signature"]["inputs"])]["name"] == "not a value name"
    broken = edit_json(src, str(tmp_path / "broken.pt2"), "models/model.json",
                       lambda doc: doc["graph_module"]["graph"].update(nodes=7))
    proc = run_cli("view", invalid, cwd=str(tmp_path))
    assert proc.returncode == 0 and "(invalid (1 error); readable by none)" in proc.stdout, proc.stderr
    proc = run_cli("view", broken, cwd=str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.startswith(f"pt2serde view: cannot read {broken}: ")
    assert "$.graph_module.graph.nodes" in proc.stderr and not (tmp_path / "broken.html").exists()


# ------------------------------------------------------------------ the red team's findings (issue 16)


def _json_bytes(data: bytes) -> int:
    reader = ArchiveReader(data)
    return sum(len(reader.read(n)) for n in reader.names() if n.endswith(".json"))


def _page_of(tmp_path, name: str, data: bytes) -> tuple[dict, int]:
    path = tmp_path / f"{name}.pt2"
    path.write_bytes(data)
    model = program_view(open_archive(str(path)))
    return model, len(render_page(model).encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("amplifier,small,large", [
    ("shared_label_archive", (100, 100), (400, 400)),     # one 400-dim label read by 400 nodes
    ("repeated_output_archive", (100, 500), (400, 2000)),  # one value listed 2000 times as outputs
    ("shared_storage_archive", (200,), (800,)),            # 800 weights viewing one storage
])
def test_the_page_grows_linearly_with_the_archive(tmp_path, amplifier, small, large):
    import cases_view

    build = getattr(cases_view, amplifier)
    (_, page_small), (_, page_large) = (_page_of(tmp_path, f"{amplifier}{i}", build(*size))
                                        for i, size in enumerate((small, large)))
    json_small, json_large = _json_bytes(build(*small)), _json_bytes(build(*large))
    assert page_large - page_small <= 2 * (json_large - json_small), (page_small, page_large, json_small, json_large)
    assert page_large < 3_000_000


def test_a_label_is_held_once_and_clipped(tmp_path):
    from cases_view import shared_label_archive

    model, _ = _page_of(tmp_path, "long", shared_label_archive(3000, 3))
    g = model["graphs"][0]
    assert len(g["values"]["big"]) == MAX_TEXT and g["values"]["big"].startswith("f32[8, 1, 1")
    assert g["values"]["big"].endswith("...")
    readers = [e for e in g["edges"] if e["value"] == "big"]
    assert len(readers) == 3 and all(set(e) == {"from", "to", "value"} for e in readers)
    (big,) = [n for n in g["nodes"] if n["name"] == "big"]
    assert big["outputs"] == ["big"]


def test_a_shared_storage_is_listed_once(tmp_path):
    from cases_view import shared_storage_archive

    model, _ = _page_of(tmp_path, "shared", shared_storage_archive(50))
    (group,) = model["storages"]
    assert len(group["names"]) == 51 and group["names"][0] == "w"
    assert [w["shared"] for w in model["weights"] if w["name"] != "b"] == [0] * 51
    assert next(w for w in model["weights"] if w["name"] == "b")["shared"] is None
    assert all(w["storage"] == group["record"] for w in model["weights"] if w["shared"] == 0)


def test_integers_travel_as_text(tmp_path):
    from cases_view import LARGE_BOUNDS, large_bounds
    from everywhere import base_archive, document_of, with_document

    data = base_archive("dynamic")
    doc = document_of(data)
    large_bounds(doc, os.devnull)
    model, _ = _page_of(tmp_path, "bounds", with_document(data, doc))
    (s77,) = [s for s in model["symbols"] if s["name"] == "s77"]
    assert (s77["min"], s77["max"]) == tuple(str(n) for n in LARGE_BOUNDS)
    assert all(isinstance(w["nbytes"], str) for w in model["weights"])
    assert all(isinstance(f["size"], str) for f in model["extra_files"])


def test_a_page_is_never_written_over_an_input(tmp_path):
    src = tmp_path / "in.pt2"
    src.write_bytes((CORPUS / "2.14.1" / "mlp.pt2").read_bytes())
    other = str(CORPUS / "2.14.1" / "cond.pt2")
    (tmp_path / "link.html").symlink_to(src)
    (tmp_path / "model.html").write_bytes(src.read_bytes())  # an archive named .html: view's default output
    before = src.read_bytes()
    attempts = [(("view", str(src), "-o", str(src)), str(src)),
                (("view", "in.pt2", "-o", "./sub/../in.pt2"), "in.pt2"),
                (("view", str(src), "-o", "link.html"), str(src)),
                (("view", "model.html"), "model.html"),
                (("diff", other, str(src), "--html", "in.pt2"), str(src)),
                (("diff", str(src), other, "--html", "link.html"), str(src))]
    (tmp_path / "sub").mkdir()
    for argv, victim in attempts:
        proc = run_cli(*argv, cwd=str(tmp_path))
        assert proc.returncode == 2, (argv, proc.stdout, proc.stderr)
        out = argv[argv.index("-o") + 1] if "-o" in argv else argv[-1] if "--html" in argv else "model.html"
        assert proc.stderr == f"pt2serde {argv[0]}: refusing to write the page {out}: it is the input {victim}\n"
        assert proc.stdout == ""
    assert src.read_bytes() == before and (tmp_path / "model.html").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["in.pt2", "link.html", "model.html", "sub"]


@pytest.mark.parametrize("argv,where", [(["view"], "view_model.program_view"),
                                        (["diff", "A", "--html"], "view_diff.diff_view")])
def test_out_of_memory_is_one_line_and_exit_2(tmp_path, monkeypatch, argv, where):
    import importlib

    module, name = where.split(".")

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(importlib.import_module(f"pt2serde.cli.{module}"), name, exhausted)
    err, out = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdout", out)
    src = str(CORPUS / "2.14.1" / "mlp.pt2")
    argv = [src if a == "A" else a for a in argv]
    assert main([argv[0], src, *argv[1:], str(tmp_path / "page.html")] if argv[0] == "diff"
                else ["view", src, "-o", str(tmp_path / "page.html")]) == 2
    assert err.getvalue() == f"pt2serde {argv[0]}: out of memory\n" and out.getvalue() == ""
    assert os.listdir(tmp_path) == []


def test_a_diff_shows_both_verdicts_and_a_side_where_it_differs(tmp_path):
    src = str(CORPUS / "2.14.1" / "mlp.pt2")

    def rename_first_node(doc):
        doc["graph_module"]["graph"]["nodes"][0]["name"] = "not a value name"

    invalid = edit_json(src, str(tmp_path / "invalid.pt2"), "models/model.json", rename_first_node)
    model = diff_view(open_archive(invalid), open_archive(src))
    assert model["verdict"]["valid"] is True and model["verdict_a"]["valid"] is False
    assert model["verdict_a"]["text"].startswith("invalid (1 error)")
    assert model["signature_a"] is None and model["symbols_a"] is None and model["extra_files_a"] is None
    a = open_archive(str(CORPUS / "2.14.1" / "dyn_batch.pt2"))
    b = open_archive(str(CORPUS / "2.14.1" / "dyn_derived.pt2"))
    model = diff_view(a, b)
    assert model["signature_a"] == program_view(a)["signature"] != model["signature"]
    assert model["symbols_a"] == program_view(a)["symbols"] != model["symbols"]


def test_removed_edges_read_a_s_labels(diff_pair):
    model = diff_view(open_archive(diff_pair[0]), open_archive(diff_pair[1]))
    g = model["graphs"][0]
    removed = [e for e in g["edges"] if e.get("status") == "removed"]
    assert removed and all(g["values_a"][e["value"]].startswith("f32[") for e in removed)
    assert all(e["value"] in g["values"] for e in g["edges"] if e.get("status") != "removed")
    relu = next(n for n in g["nodes"] if n["name"] == "relu")
    assert [g["values_a"][v] for v in relu["outputs"]] == ["f32[2, 4]"]
