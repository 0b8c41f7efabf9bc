"""The hostile archives of ``tests/hostile/cases_view.py`` drawn by ``pt2serde view`` and opened in
headless Chromium: after a click on every box and every tab, no script from the file ran
(``window.__pwned`` unset), no dialog opened, no handler or URL attribute exists, no request was
made, and the break-outs are on the page as text."""

from __future__ import annotations

from cases_view import BREAKOUTS, hostile_view_archives
from test_view_page import assert_ran_nothing, click_everything

from pt2serde.cli import main


def test_hostile_archives_run_no_script(open_page, tmp_path, capsys):
    drawn = 0
    loaded = None
    for path in hostile_view_archives(tmp_path / "archives"):
        out = tmp_path / (path.stem[:20].replace("|", "_") + f"-{drawn}.html")
        code = main(["view", str(path), "-o", str(out)])
        assert code in (0, 2), path
        if code == 2:  # the document does not decode: no page, one line saying why
            assert not out.exists() and capsys.readouterr().err.count("\n") == 1
            continue
        drawn += 1
        text = out.read_text(encoding="utf-8")
        loaded = loaded.load(text, out.name) if loaded else open_page(text, out.name)
        shown = click_everything(loaded.page)
        assert_ran_nothing(loaded)
        assert "window.__pwned=1" in shown + loaded.page.title(), path
        assert (loaded.requests, loaded.console_errors, loaded.violations()) == ([], [], []), path
        assert loaded.page.evaluate("document.body.dataset.error") is None, path
    assert drawn >= 10
