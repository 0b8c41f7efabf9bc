"""`pt2serde diff` (torch-free subprocess) on pairs of archives with known differences."""

from __future__ import annotations

import json
import os
import struct

import pytest
import torch

import pt2serde
from cli_support import CORPUS, edit_json, records, rewrite, run_batch, run_cli, run_cli_json, zip_bytes

DOC = "models/model.json"


class Net(torch.nn.Module):
    def __init__(self, act: str = "relu", width: int = 4, extra: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.act = act
        self.fc = torch.nn.Linear(8, width)
        self.out = torch.nn.Linear(width, 2)
        self.register_buffer("bf16", torch.ones(3, 5, dtype=torch.bfloat16))
        self.register_buffer("f16", torch.linspace(0, 1, 7).half())
        self.register_buffer("f64", torch.linspace(0, 1, 3).double())
        self.register_buffer("i32", torch.arange(6, dtype=torch.int32))
        self.register_buffer("i64", torch.arange(2, dtype=torch.int64))
        self.register_buffer("flags", torch.tensor([True, False, True, False, True]))
        self.register_buffer("f8", torch.zeros(4).to(torch.float8_e4m3fn))
        self.tr = torch.arange(12.0).reshape(3, 4).t()  # a non-contiguous lifted constant
        if extra:
            self.register_buffer("extra", torch.zeros(2))

    def forward(self, x):
        h = self.fc(x)
        h = torch.relu(h) if self.act == "relu" else torch.nn.functional.gelu(h)
        return self.out(h) + self.tr.sum()


def _export(model: torch.nn.Module, dynamic: bool = True) -> torch.export.ExportedProgram:
    dims = {"x": {0: torch.export.Dim("batch", min=2, max=16)}} if dynamic else None
    return torch.export.export(model.eval(), (torch.randn(4, 8),), dynamic_shapes=dims)


def _changed_values(model: Net) -> None:
    with torch.no_grad():
        model.fc.weight[1, 2] += 0.5
        model.bf16[0, 0] = 2.0
        model.f16[3] += 0.25
        model.f64[1] += 1e-9
        model.i32[2] += 7
        model.i64[1] += 2**40
        model.flags[1] = True
        model.f8[2] = 1.0
        model.tr[3, 2] += 3.0  # storage element 2*4+3 of the transposed view


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diff")
    paths = {}

    def save(name: str, ep, **kw) -> None:
        paths[name] = str(folder / f"{name}.pt2")
        pt2serde.save(ep, paths[name], **kw)

    base = Net()
    save("a", _export(base), extra_files={"notes.txt": "v1"})
    save("a_again", _export(Net()), extra_files={"notes.txt": "v1"})
    changed = Net()
    _changed_values(changed)
    save("values", _export(changed), extra_files={"notes.txt": "v2", "new.txt": "x"})
    save("gelu", _export(Net(act="gelu")), extra_files={"notes.txt": "v1"})
    save("wider", _export(Net(width=5, extra=True)), extra_files={"notes.txt": "v1"})
    save("static", _export(Net(), dynamic=False), extra_files={"notes.txt": "v1"})
    return paths


def _rename_values(doc: dict) -> dict:
    """Every graph value and node renamed (v0, v1, ...), consistently: the same program."""
    text = json.dumps(doc)
    g = doc["graph_module"]["graph"]
    names = [n for n in g["tensor_values"] if not n.startswith(("p_", "b_", "c_")) and n != "x"]
    for i, name in enumerate(sorted(names, key=len, reverse=True)):
        text = text.replace(f'"{name}"', f'"renamed_{i}"')
    return json.loads(text)


def test_identical_programs(archives, tmp_path):
    renamed = edit_json(archives["a"], str(tmp_path / "renamed.pt2"), DOC, _rename_values)
    results = run_batch([["diff", archives["a"], archives["a_again"]], ["diff", archives["a"], renamed],
                         ["diff", archives["a"], archives["a"]]])
    for code, out, err in results:
        assert (code, err) == (0, "")
        assert out.endswith("hold the same programs, weights and extra files\n")


def test_renamed_document_really_differs(archives, tmp_path):
    """The rename above must change the document, or the test above proves nothing."""
    from cli_support import records

    renamed = edit_json(archives["a"], str(tmp_path / "renamed.pt2"), DOC, _rename_values)
    before, after = records(archives["a"])[DOC], records(renamed)[DOC]
    assert before != after and b'"renamed_0"' in after and b'"relu"' in before and b'"relu"' not in after


def test_changed_values(archives):
    code, report = run_cli_json("diff", archives["a"], archives["values"])
    assert code == 1 and report["equal"] is False
    changes = {(c["section"], c["kind"], c["subject"]): c["detail"] for c in report["changes"]}
    assert changes == {
        ("weights", "changed", "fc.weight"): "values differ in 1 of 32 elements, max abs diff 0.5",
        ("weights", "changed", "bf16"): "values differ in 1 of 15 elements, max abs diff 1",
        ("weights", "changed", "f16"): "values differ in 1 of 7 elements, max abs diff 0.25",
        ("weights", "changed", "f64"): "values differ in 1 of 3 elements, max abs diff 1e-09",
        ("weights", "changed", "i32"): "values differ in 1 of 6 elements, max abs diff 7",
        ("weights", "changed", "i64"): "values differ in 1 of 2 elements, max abs diff 1,099,511,627,776",
        ("weights", "changed", "flags"): "values differ in 1 of 5 elements, max abs diff 1",
        ("weights", "changed", "f8"): "values differ in 1 of 4 elements",
        ("constants", "changed", "tr"): "values differ in 1 of 12 elements, max abs diff 3",
        ("extra_files", "changed", "notes.txt"): "contents differ",
        ("extra_files", "added", "new.txt"): "",
    }
    i64 = next(c for c in report["changes"] if c["subject"] == "i64")
    assert i64["data"] == {"differ": 1, "elements": 2, "max_abs_diff": 2**40}


def test_changed_values_without_numpy(archives):
    """The pure-Python decoders give the same answers as numpy's."""
    with_np = run_cli("diff", archives["a"], archives["values"])
    without = run_cli("diff", archives["a"], archives["values"], prelude="import sys; sys.modules['numpy'] = None\n")
    assert with_np.returncode == without.returncode == 1
    assert without.stdout == with_np.stdout
    assert "    ~ bf16: values differ in 1 of 15 elements, max abs diff 1" in without.stdout.splitlines()


def test_human_output(archives):
    proc = run_cli("diff", archives["a"], archives["values"])
    lines = proc.stdout.splitlines()
    assert lines[0] == "diff a.pt2 -> values.pt2: 11 differences"
    assert "\x1b[" not in proc.stdout
    i = lines.index("program model")
    assert lines[i + 1] == "  weights"
    assert lines[i + 2] == "    ~ bf16: values differ in 1 of 15 elements, max abs diff 1"
    assert "  constants" in lines and "    ~ tr: values differ in 1 of 12 elements, max abs diff 3" in lines
    assert lines[-4:] == ["archive", "  extra files", "    + new.txt", "    ~ notes.txt: contents differ"]  # last


def test_graph_change_is_reported_by_operator_and_node(archives):
    code, report = run_cli_json("diff", archives["a"], archives["gelu"])
    assert code == 1
    graph = [c for c in report["changes"] if c["section"] == "graph"]
    assert [(c["kind"], c["subject"], c["detail"]) for c in graph[:2]] == [
        ("added", "aten.gelu.default", "0 -> 1 nodes"),
        ("removed", "aten.relu.default", "1 -> 0 nodes"),
    ]
    nodes = graph[2]
    assert nodes["subject"] == "nodes" and nodes["detail"] == "5 -> 5 nodes"
    diff = nodes["data"]["diff"]
    assert "-aten.relu.default(self=%) -> float32[s77, 4]" in [ln.replace(_sym(diff), "s77") for ln in diff]
    assert any(ln.startswith("+aten.gelu.default(self=%") for ln in diff)
    assert {c["section"] for c in report["changes"]} == {"graph"}  # weights, signature, metadata unchanged


def _sym(lines: list[str]) -> str:
    import re

    found = re.findall(r"\[(s\d+), ", " ".join(lines))
    return found[0] if found else "s77"


def test_shape_and_entry_changes(archives):
    code, report = run_cli_json("diff", archives["a"], archives["wider"])
    assert code == 1
    changes = {(c["section"], c["kind"], c["subject"]): c["detail"] for c in report["changes"]}
    assert changes[("weights", "changed", "fc.weight")] == "float32[4, 8] -> float32[5, 8]"
    assert changes[("weights", "changed", "fc.bias")] == "float32[4] -> float32[5]"
    assert changes[("weights", "changed", "out.weight")] == "float32[2, 4] -> float32[2, 5]"
    assert changes[("weights", "added", "extra")] == "float32[2]"
    assert not [c for c in report["changes"] if c["section"] == "signature"]  # x and the output keep their shapes
    assert any(c["section"] == "graph" and c["subject"] == "nodes" for c in report["changes"])


def test_signature_change(archives):
    code, report = run_cli_json("diff", archives["a"], archives["static"])
    assert code == 1
    sig = [(c["kind"], c["subject"], c["detail"]) for c in report["changes"] if c["section"] == "signature"]
    (sym,) = {d.split("[")[1].split(",")[0] for _, s, d in sig if s == "input 0 `x`"}
    assert sig == [
        ("changed", "input 0 `x`", f"float32[{sym}, 8] -> float32[4, 8]"),
        ("changed", "output 0 `add`", f"float32[{sym}, 2] -> float32[4, 2]"),
        ("removed", f"range of `{sym}`", "2..16"),
    ]
    assert not [c for c in report["changes"] if c["section"] in ("weights", "constants")]


def test_corpus_pairs():
    mlp = {w: os.path.join(CORPUS, w, "const_view_offset.pt2") for w in ("2.8.0", "2.13.0", "2.14.1")}
    results = run_batch([["diff", "--json", mlp["2.8.0"], mlp["2.13.0"]], ["diff", "--json", mlp["2.13.0"], mlp["2.14.1"]],
                         ["diff", mlp["2.14.1"], mlp["2.14.1"]]])
    (c1, o1, _), (c2, o2, _), (c3, _, _) = results
    old_new = json.loads(o1)["changes"]
    # torch.save storage (2.8.0) against raw records (2.13.0): the same values, views and offsets
    assert {c["section"] for c in old_new} <= {"metadata", "graph"}
    assert {(c["subject"], c["detail"]) for c in old_new if c["section"] == "metadata"} == {
        ("schema version", "8.8 -> 8.20"), ("torch version", "2.8.0+cu128 -> 2.13.0+cpu")}
    assert c1 == 1
    assert (c2, [(c["section"], c["subject"]) for c in json.loads(o2)["changes"]]) == (1, [("metadata", "torch version")])
    assert c3 == 0


def test_across_layouts():
    """The plain zip of 2.5/2.7 against the PT2 archive of 2.13: the documents are compared after
    upgrading (their schema versions as written), the weights by value whatever their storage."""
    pairs = [("2.7.1", "mlp", "2.13.0"), ("2.5.1", "const_view_offset", "2.14.1"), ("2.6.0", "cond", "2.13.0"),
             ("2.7.1", "conv_bn_eval", "2.8.0")]
    results = run_batch([["diff", "--json", os.path.join(CORPUS, a, f"{n}.pt2"), os.path.join(CORPUS, b, f"{n}.pt2")]
                         for a, n, b in pairs] + [["diff", os.path.join(CORPUS, "2.7.1", "mlp.pt2"),
                                                   os.path.join(CORPUS, "2.13.0", "mlp.pt2")]])
    assert [c for c, _, e in results] == [1] * 5 and all(e == "" for _, _, e in results)
    mlp, view, cond, conv = ([(c["section"], c["kind"], c["subject"], c["detail"]) for c in json.loads(o)["changes"]]
                             for _, o, _ in results[:4])
    layout = ("archive", "changed", "layout", "plain zip of PyTorch 2.5-2.7 -> PT2 archive")
    assert mlp == [layout, ("metadata", "changed", "schema version", "8.7 -> 8.20"),
                   ("metadata", "changed", "torch version", "2.7.1+cu126 -> 2.13.0+cpu")]
    # 2.5 recorded the lifted views with storage offset 0 in the graph; the stored tensors are the same
    assert {s for s, *_ in view} == {"metadata", "graph", "archive"}
    assert ("metadata", "changed", "schema version", "7.3 -> 8.20") in view
    assert {s for s, *_ in cond} == {"metadata", "archive"}  # 8.2's tuple output of cond upgraded: the same graph
    assert conv == [layout, ("metadata", "changed", "schema version", "8.7 -> 8.8"),
                    ("metadata", "changed", "torch version", "2.7.1+cu126 -> 2.8.0+cu128")]
    assert results[4][1].splitlines() == [
        "diff mlp.pt2 -> mlp.pt2: 3 differences", "", "program model", "  metadata",
        "    ~ schema version: 8.7 -> 8.20", "    ~ torch version: 2.7.1+cu126 -> 2.13.0+cpu", "", "archive",
        "  ~ layout: plain zip of PyTorch 2.5-2.7 -> PT2 archive"]


def test_changed_weights_in_a_plain_zip(tmp_path):
    """Values inside the torch.save record of a plain zip, against the raw records of 2.13."""
    src = os.path.join(CORPUS, "2.7.1", "mlp.pt2")
    recs = records(src)
    state = records(recs["serialized_state_dict.pt"])
    root = state.pop("__root__").decode()
    walked = json.loads(run_cli("inspect", "--json", src).stdout)["programs"][0]["weights"]
    assert walked["largest"][0]["name"] == "0.weight"  # storage data/0 (float32[16, 8]) by pickle order
    data = bytearray(state["data/0"])
    data[4 * 17:4 * 18] = struct.pack("<f", struct.unpack("<f", data[4 * 17:4 * 18])[0] + 2.5)
    state["data/0"] = bytes(data)
    changed = rewrite(src, str(tmp_path / "changed.pt2"),
                      {"serialized_state_dict.pt": zip_bytes({f"{root}/{n}": d for n, d in state.items()})})
    code, report = run_cli_json("diff", os.path.join(CORPUS, "2.13.0", "mlp.pt2"), changed)
    assert code == 1
    weights = [(c["subject"], c["detail"]) for c in report["changes"] if c["section"] == "weights"]
    assert weights == [("0.weight", "values differ in 1 of 128 elements, max abs diff 2.5")]


def test_unreadable_document_exits_2(archives, tmp_path):
    broken = edit_json(archives["a"], str(tmp_path / "broken.pt2"), DOC, lambda d: d.update(graph_module=3))
    proc = run_cli("diff", archives["a"], broken)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "cannot compare" in proc.stderr and "Expected `object` (GraphModule), got `int`" in proc.stderr


class _Layout(torch.nn.Module):
    def __init__(self, transposed: bool, bump: bool = False) -> None:
        super().__init__()
        w = torch.arange(1000.0).reshape(25, 40)
        if bump:
            w[24, 39] += 1.5
            w[3, 7] -= 0.25
        self.register_buffer("w", w.t().contiguous().t() if transposed else w)

    def forward(self, x):
        return x + self.w.sum()


def test_values_compared_across_layouts_and_chunks(tmp_path, monkeypatch):
    """Logical values are compared, whatever the strides, and chunk boundaries do not matter."""
    from pt2serde.cli import diff_values, diffing
    from pt2serde.format.contents import open_archive

    paths = {}
    for name, transposed, bump in (("plain", False, False), ("strided", True, False), ("bumped", True, True)):
        ep = torch.export.export(_Layout(transposed, bump), (torch.ones(1),))
        paths[name] = str(tmp_path / f"{name}.pt2")
        pt2serde.save(ep, paths[name])
    config = json.loads(__import__("cli_support").records(paths["strided"])["data/weights/model_weights_config.json"])
    assert [s["as_int"] for s in config["config"]["w"]["tensor_meta"]["strides"]] == [1, 25]  # really strided
    monkeypatch.setattr(diff_values, "CHUNK", 96)  # many chunks, cut differently on each side
    monkeypatch.setattr(diff_values, "BLOCK", 40)
    a, b, c = (open_archive(paths[n]) for n in ("plain", "strided", "bumped"))
    (meta,) = diffing.diff_archives(a, b)  # the same values; only the layout of the buffer differs
    assert (meta.section, meta.subject, meta.detail) == ("graph", "tensor metadata", "1 value with different metadata")
    assert meta.data == {"diff": ["buffer `w`: strides [40, 1] -> [1, 25]"]}
    (change,) = diffing.diff_archives(b, c)
    assert (change.section, change.subject, change.detail) == (
        "weights", "w", "values differ in 2 of 1,000 elements, max abs diff 1.5")
    for arch in (a, b, c):
        arch.close()


# ------------------------------------------------------------ bounded work (issue 10, finding 8)

import cases_cli  # noqa: E402
import test_hostile_archives as H  # noqa: E402
from memory import PeakGrowth  # noqa: E402


def _with_w(data: bytes, sizes=None, strides=None, offset=0, record=None, size=None) -> bytes:
    """The archive with weight ``w`` given another geometry and/or its record's bytes replaced
    (``record``: a function of the float32 values; ``size``: the record holds that many ones)."""
    cfg = H.read_json(data, H.WEIGHTS)
    meta = cfg["config"]["w"]["tensor_meta"]
    if sizes is not None:
        meta.update(sizes=H.ints(*sizes), strides=H.ints(*strides), storage_offset={"as_int": offset})
    replace = {H.WEIGHTS: json.dumps(cfg).encode()}
    name = f"data/weights/{cfg['config']['w']['path_name']}"
    values = list(struct.unpack(f"<{len(records_of(data)[name]) // 4}f", records_of(data)[name]))
    if size is not None:
        values = [1.0] * size
    if record is not None:
        record(values)
    replace[name] = struct.pack(f"<{len(values)}f", *values)
    return H.rewrite(data, replace=replace)


def records_of(data: bytes) -> dict[str, bytes]:
    from pt2serde.format.archive import ArchiveReader

    reader = ArchiveReader(data)
    root = reader.root_folder()
    return {n[len(root) + 1:]: reader.read(n) for n in reader.names()}


def _bump(*indices):
    def change(values):
        for i in indices:
            values[i] += 1.0
    return change


def _diff(tmp_path, a: bytes, b: bytes, **patch) -> tuple[list, float, int]:
    """diff_archives in this process: (changes, seconds, peak RSS growth)."""
    import time

    from pt2serde.cli import diff_values, diffing
    from pt2serde.format.contents import open_archive

    (tmp_path / "a.pt2").write_bytes(a)
    (tmp_path / "b.pt2").write_bytes(b)
    old = {k: getattr(diff_values, k) for k in patch}
    for k, v in patch.items():
        setattr(diff_values, k, v)
    arch_a, arch_b = open_archive(str(tmp_path / "a.pt2")), open_archive(str(tmp_path / "b.pt2"))
    try:
        t0 = time.process_time()  # CPU time: the work, not a busy machine
        with PeakGrowth() as mem:
            changes = diffing.diff_archives(arch_a, arch_b)
        return changes, time.process_time() - t0, mem.bytes
    finally:
        arch_a.close()
        arch_b.close()
        for k, v in old.items():
            setattr(diff_values, k, v)


def _values(changes) -> list[tuple[str, str]]:
    """The value changes of the weights (not the checker's problems with either archive: views
    it refuses to load are still compared, and must be compared within bounds)."""
    return [(c.subject, c.detail) for c in changes if c.section == "weights" and not c.subject.startswith("archive ")]


def test_zero_stride_weight_is_compared_by_the_storage_it_reaches(tmp_path):
    """A legal zero-stride float32[2**40] view of a 48-byte record: diff used to walk it element
    by element (6.5 GiB after 150 s); equal, changed and changed-where-it-does-not-reach are
    each answered exactly from the record."""
    z = cases_cli.zero_stride_weight()
    n = f"{2**40:,}"
    for other, expected in ((z, []), (_with_w(z, record=_bump(0)), [("w", f"values differ in {n} of {n} elements, "
                                                                           "max abs diff 1")]),
                            (_with_w(z, record=_bump(5)), [])):  # element 5 is not part of the view
        changes, seconds, grown = _diff(tmp_path, z, other)
        assert _values(changes) == expected
        assert seconds < 2 and grown < 64 << 20, (seconds, grown)


def test_views_that_repeat_or_skip_storage_elements(tmp_path):
    base = cases_cli.base_archive("small")
    overlap = _with_w(base, sizes=(3, 3), strides=(1, 1))  # reaches elements 0..4, element 2 three times
    changes, _, _ = _diff(tmp_path, overlap, _with_w(overlap, record=_bump(2)))
    assert _values(changes) == [("w", "values differ in 1 of the 5 storage elements the view reaches "
                                      "(its 9 elements repeat them), max abs diff 1")]
    assert _values(_diff(tmp_path, overlap, _with_w(overlap, record=_bump(7)))[0]) == []  # not reached
    gaps = _with_w(base, sizes=(3,), strides=(4,))  # elements 0, 4, 8
    assert _values(_diff(tmp_path, gaps, _with_w(gaps, record=_bump(1, 6)))[0]) == []
    changes, _, _ = _diff(tmp_path, gaps, _with_w(gaps, record=_bump(4, 6)))
    assert _values(changes) == [("w", "values differ in 1 of 3 elements, max abs diff 1")]
    stride0 = _with_w(base, sizes=(2**30, 3), strides=(0, 1))  # both sides repeat a row: compared once
    changes, seconds, _ = _diff(tmp_path, stride0, _with_w(stride0, sizes=(2**30, 3), strides=(0, 1), offset=3,
                                                        record=_bump(4)))
    assert _values(changes) == [("w", f"values differ in {2**30:,} of {3 * 2**30:,} elements, max abs diff 1")]


def test_layouts_that_differ_are_compared_up_to_what_the_records_hold(tmp_path):
    """Views whose layouts differ are compared in logical order, but no further than the larger
    record could hold without repeating elements; the report says how far."""
    base = _with_w(cases_cli.base_archive("small"), size=1024)
    a = _with_w(base, sizes=(2,) * 30, strides=(1,) * 30)  # 2**30 elements over 31 stored ones
    b = _with_w(base, sizes=(2,) * 30, strides=(1,) * 29 + (0,))
    changes, seconds, grown = _diff(tmp_path, a, b)
    assert _values(changes) == [("w", f"values not compared past the first 16,384 of {2**30:,} elements (equal "
                                      "there): the layouts differ, and comparing the rest would read more than "
                                      "the records hold")]
    assert seconds < 2 and grown < 64 << 20
    changes, _, _ = _diff(tmp_path, a, _with_w(b, record=_bump(1)))
    (detail,) = [d for _, d in _values(changes)]
    assert detail.startswith("values differ in ") and f"of the first 16,384 of {2**30:,} elements, max abs diff 1 (" \
        in detail


def test_each_deflated_record_is_inflated_once(tmp_path, monkeypatch):
    """A thousand entries naming one deflated 16 MiB record: diff inflated it once per entry
    and side (171 s for a 213 KB file); now once per archive, and compared once."""
    from pt2serde.format.archive import ArchiveReader

    inflated = []
    view = ArchiveReader.view

    def counting(self, name, **kw):
        if self.entry(name).method:
            inflated.append(name)
        return view(self, name, **kw)

    monkeypatch.setattr(ArchiveReader, "view", counting)
    many = cases_cli.one_deflated_record()
    changes, seconds, grown = _diff(tmp_path, many, many)
    assert _values(changes) == [] and inflated.count("archive/data/weights/big") == 2  # once per archive
    assert seconds < 5 and grown < 160 << 20, (seconds, grown)
    inflated.clear()
    small = cases_cli.one_deflated_record(count=50, size=1 << 20)
    changed = bytearray(1 << 20)
    changed[4 * 1000:4 * 1001] = struct.pack("<f", 2.5)
    changes, _, _ = _diff(tmp_path, small, cases_cli.one_deflated_record(count=50, size=1 << 20, data=bytes(changed)))
    assert {d for _, d in _values(changes)} == {"values differ in 1 of 262,144 elements, max abs diff 2.5"}
    assert len(_values(changes)) == 50 and inflated.count("archive/data/weights/big") == 2


def test_comparison_budget_bounds_many_views_of_a_differing_record(tmp_path):
    """Entries with distinct views of one record that differs: each reads only its span, and
    all of them together no more than the budget; the rest say they were not compared."""
    base = _with_w(cases_cli.base_archive("small"), size=1 << 16)
    cfg = H.read_json(base, H.WEIGHTS)
    for i in range(40):
        entry = json.loads(json.dumps(cfg["config"]["w"]))
        entry["tensor_meta"].update(sizes=H.ints((1 << 16) - i), strides=H.ints(1), storage_offset={"as_int": i})
        cfg["config"][f"v{i:02}"] = entry
    a = H.rewrite(base, replace={H.WEIGHTS: json.dumps(cfg).encode()})
    b = _with_w(a, record=_bump(60000))
    changes, _, _ = _diff(tmp_path, a, b, COMPARE_RATIO=2, COMPARE_ALLOWANCE=0)
    details = [d for _, d in _values(changes)]
    assert "values differ in 1 of 65,536 elements, max abs diff 1" in details
    assert "values not compared: diff's budget for reading tensor data is spent" in details
