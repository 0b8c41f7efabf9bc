"""The vendored layout library of ``pt2serde view`` is what ``static/VENDORED.md`` says it is
(``tools/refresh_dagre.sh`` writes both), and the wheel carries the page's static files."""

from __future__ import annotations

import hashlib
import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "pt2serde" / "cli" / "static"
PAGE_FILES = ["template.html", "view.js", "view_groups.js", "view.css", "dagre.min.js", "LICENSE-dagre", "LICENSE-graphlib",
              "VENDORED.md"]


def _recorded() -> dict:
    rows = re.findall(r"^\| (\S+) \| [^|]+ \| ([0-9a-f]{64}) \|$", (STATIC / "VENDORED.md").read_text(), re.M)
    return dict(rows)


def test_vendored_files_match_their_recorded_sha256():
    recorded = _recorded()
    assert sorted(recorded) == ["LICENSE-dagre", "LICENSE-graphlib", "dagre.min.js"]
    for name, digest in recorded.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name


def test_vendored_md_names_the_registry_tarballs():
    text = (STATIC / "VENDORED.md").read_text()
    for package in ("dagre", "graphlib"):
        url = rf"https://registry\.npmjs\.org/@dagrejs/{package}/-/{package}-[0-9.]+\.tgz"
        assert re.search(rf"\| @dagrejs/{package} \| [0-9.]+ \| MIT \| {url} \| [0-9a-f]{{64}} \|", text), package


def test_package_data_carries_every_static_file():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["pt2serde.cli"]
    on_disk = sorted(p.name for p in STATIC.iterdir())
    assert on_disk == sorted(PAGE_FILES)
    for name in PAGE_FILES:
        assert any(pathlib.PurePath("static", name).match(p) for p in patterns), name
