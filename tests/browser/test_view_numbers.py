"""What the page prints from the model as given, in headless Chromium: integers past 2**53 and
1e308 (they travel as text), a storage many weights share (a few names per row, then "and N
more"), and both verdicts of a diff (issue 16's red team: findings 2, 8 and 10)."""

from __future__ import annotations

import os

from cases_view import LARGE_BOUNDS, large_bounds, shared_storage_archive
from everywhere import base_archive, document_of, with_document
from test_view_page import _clean

from pt2serde.cli.view_diff import diff_view
from pt2serde.cli.view_model import program_view
from pt2serde.cli.view_page import render_page
from pt2serde.format.contents import open_archive


def _archive(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return open_archive(str(path))


def _panel(page, tab: str) -> str:
    page.click(f"#tabs button[data-tab='{tab}']")
    return page.text_content("#panel-body")


def test_large_integers_are_printed_exactly(open_page, tmp_path):
    data = base_archive("dynamic")
    doc = document_of(data)
    large_bounds(doc, os.devnull)
    loaded = open_page(render_page(program_view(_archive(tmp_path, "bounds.pt2", with_document(data, doc)))))
    low, high = (str(n) for n in LARGE_BOUNDS)
    assert f"s77 in [{low}, {high}]" in _panel(loaded.page, "ranges")
    assert f"s77 in [{low}, {high}]" in loaded.page.text_content("#legend")
    _clean(loaded)


def test_a_shared_storage_shows_a_few_names_per_row(open_page, tmp_path):
    model = program_view(_archive(tmp_path, "shared.pt2", shared_storage_archive(40)))
    loaded = open_page(render_page(model))
    _panel(loaded.page, "weights")
    rows = loaded.page.eval_on_selector_all(
        "#panel-body tr", "(rs) => rs.slice(1).map((r) => [r.cells[0].textContent, r.cells[6].textContent])")
    shared = dict(rows)
    names = model["storages"][0]["names"]
    assert len(rows) == 42 and shared["b"] == ""  # b shares nothing
    assert shared["w"] == ", ".join(names[1:6]) + ", and 35 more"  # the first five of the 40 others
    assert shared[names[1]] == ", ".join([names[0]] + names[2:6]) + ", and 35 more"
    assert shared[names[-1]] == ", ".join(names[:5]) + ", and 35 more"
    _clean(loaded)


def test_a_diff_shows_both_verdicts(open_page, tmp_path):
    data = base_archive("small")
    doc = document_of(data)
    doc["graph_module"]["graph"]["nodes"][0]["name"] = "not a value name"
    a = _archive(tmp_path, "a.pt2", with_document(data, doc))
    b = _archive(tmp_path, "b.pt2", data)
    loaded = open_page(render_page(diff_view(a, b)))
    panel = _panel(loaded.page, "verdict")
    assert "verdict of B (b.pt2)" in panel and "verdict of A (a.pt2)" in panel
    assert panel.index("verdict of B") < panel.index("valid; readable by") < panel.index("verdict of A")
    assert "invalid (1 error); readable by none" in panel[panel.index("verdict of A"):]
    _clean(loaded)
