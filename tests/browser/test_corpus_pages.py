"""The page of every compat-corpus archive of the oldest and the newest writer (PyTorch 2.5 and
2.14; the view model itself is tested on every writer's, tests/cli/test_view_model.py) in headless
Chromium: drawn without an error, a console message or a request, every node counted."""

from __future__ import annotations

import os

import pytest
from compat import CORPUS, WRITERS

from pt2serde.cli.view_model import program_view
from pt2serde.cli.view_page import render_page
from pt2serde.format.contents import Pt2Archive
from pt2serde.format.filekind import open_reader


def _model(path) -> dict:
    reader = open_reader(str(path), subject="it")
    try:
        return program_view(Pt2Archive(reader, str(path)))
    finally:
        reader.close()


@pytest.mark.parametrize("writer", [WRITERS[0], WRITERS[-1]])
def test_every_corpus_archive_draws(open_page, writer):
    archives = sorted((CORPUS / writer).glob("*.pt2"))
    assert len(archives) > 20
    loaded = None
    for path in archives:
        model = _model(path)
        page_text, name = render_page(model), os.path.basename(path) + ".html"
        loaded = loaded.load(page_text, name) if loaded else open_page(page_text, name)
        page = loaded.page
        nodes = len({n["id"] for g in model["graphs"] for n in g["nodes"]})
        status = page.text_content("#status")
        assert f"{nodes} nodes in {len(model['graphs'])} graph(s)" in status, (path, status)
        assert 1 <= page.locator("#viewport .node").count() <= 300, path
        if any(g["edges"] for g in model["graphs"]):
            assert page.locator("#viewport .elabel").count() >= 1, path
        assert (loaded.requests, loaded.console_errors, loaded.violations(), loaded.dialogs) == ([], [], [], []), path
        assert page.evaluate("document.body.dataset.error") is None, path
