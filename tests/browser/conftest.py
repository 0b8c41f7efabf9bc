"""Headless Chromium for the page of ``pt2serde view``: Debian's ``/usr/bin/chromium`` driven by
Playwright's Python API (no browser is ever downloaded). Where either is missing, every test that
needs the browser is skipped with a message naming what is missing (``make test`` installs both
when it can: Makefile, ``$(VENV)/.browser``)."""

from __future__ import annotations

import dataclasses
import os
import pathlib

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

# recorded in the page before any of its scripts runs (init scripts are not subject to the page's CSP)
RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));
"""


def missing_browser() -> list[str]:
    """What the browser tests lack here, as messages (empty when they can run)."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"no {CHROMIUM} (Debian: apt-get install chromium; `make test` does it as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("no playwright Python package (pip install -e '.[test]')")
    return missing


@pytest.fixture(scope="session")
def browser():
    missing = missing_browser()
    if missing:
        pytest.skip("browser tests skipped: " + "; ".join(missing))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclasses.dataclass
class Loaded:
    """A page loaded from a file, with what happened while it was open."""

    page: object
    folder: pathlib.Path
    own: set
    requests: list = dataclasses.field(default_factory=list)
    console_errors: list = dataclasses.field(default_factory=list)
    dialogs: list = dataclasses.field(default_factory=list)

    def violations(self) -> list:
        return self.page.evaluate("window.__cspViolations")

    def ready_ms(self) -> float:
        return float(self.page.evaluate("document.body.dataset.readyMs"))

    def load(self, text: str, name: str = "page.html", wait_ready: bool = True) -> "Loaded":
        """Write ``text`` to ``name`` and navigate this tab to it (what was recorded is kept)."""
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        self.own.add(path.as_uri())
        self.page.goto(path.as_uri())
        if wait_ready:
            self.page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        return self


@pytest.fixture
def open_page(browser, tmp_path):
    """``open_page(html_text)``: the document loaded from a file:// URL in a fresh context, ready."""
    contexts = []

    def _open(text: str, name: str = "page.html", wait_ready: bool = True) -> Loaded:
        context = browser.new_context(viewport={"width": 1400, "height": 900}, service_workers="block")
        contexts.append(context)
        page = context.new_page()
        loaded = Loaded(page, pathlib.Path(tmp_path), set())
        page.add_init_script(RECORDER)

        def route(r):
            if r.request.url in loaded.own:
                r.continue_()
            else:
                loaded.requests.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("console", lambda m: loaded.console_errors.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: loaded.console_errors.append(str(e)))
        page.on("dialog", lambda d: (loaded.dialogs.append(d.message), d.dismiss()))
        return loaded.load(text, name, wait_ready)

    yield _open
    for context in contexts:
        context.close()
