"""The page of every compat-corpus archive of every writer (PyTorch 2.5 to 2.14), and the diff
pages of the oldest and newest writers' archives, in headless Chromium: drawn without an error,
a console message or a request, every node counted."""

from __future__ import annotations

import os

import pytest
from compat import CORPUS, WRITERS

from pt2serde.cli.view_diff import diff_view
from pt2serde.cli.view_model import program_view
from pt2serde.cli.view_page import render_page
from pt2serde.format.contents import Pt2Archive
from pt2serde.format.filekind import open_reader


def _model(*paths) -> dict:
    readers = [open_reader(str(path), subject="it") for path in paths]
    try:
        archives = [Pt2Archive(reader, str(path)) for reader, path in zip(readers, paths)]
        return program_view(*archives) if len(archives) == 1 else diff_view(*archives)
    finally:
        for reader in readers:
            reader.close()


def _check(loaded, model, path) -> None:
    page = loaded.page
    nodes = len({n["id"] for g in model["graphs"] for n in g["nodes"]})
    status = page.text_content("#status")
    assert f"{nodes} nodes in {len(model['graphs'])} graph(s)" in status, (path, status)
    assert 1 <= page.locator("#viewport .node").count() <= 200, path
    if any(g["edges"] for g in model["graphs"]):
        assert page.locator("#viewport .elabel").count() >= 1, path
    assert (loaded.requests, loaded.console_errors, loaded.violations(), loaded.dialogs) == ([], [], [], []), path
    assert page.evaluate("document.body.dataset.error") is None, path


@pytest.mark.parametrize("writer", WRITERS)
def test_every_corpus_archive_draws(open_page, writer):
    archives = sorted((CORPUS / writer).glob("*.pt2"))
    assert len(archives) > 20
    loaded = None
    for path in archives:
        model = _model(path)
        page_text, name = render_page(model), os.path.basename(path) + ".html"
        loaded = loaded.load(page_text, name) if loaded else open_page(page_text, name)
        _check(loaded, model, path)


def test_diff_pages_of_the_oldest_and_newest_writers_archives(open_page):
    old, new = CORPUS / WRITERS[0], CORPUS / WRITERS[-1]
    names = sorted({p.name for p in old.glob("*.pt2")} & {p.name for p in new.glob("*.pt2")})
    assert len(names) > 20
    loaded, statuses = None, set()
    for name in names:
        model = _model(old / name, new / name)
        assert model["kind"] == "diff"
        page_text = render_page(model)
        loaded = loaded.load(page_text, name + ".html") if loaded else open_page(page_text, name + ".html")
        _check(loaded, model, name)
        statuses |= set(loaded.page.eval_on_selector_all(
            "#viewport .node", "(es) => es.flatMap((e) => [...e.classList].filter((c) => c.startsWith('st-')))"))
        assert str(len(model["diff"]["changes"])) + " change(s)" in loaded.page.text_content("#diffbar")
    assert statuses  # some node changed between 2.5 and 2.14, and it is coloured
