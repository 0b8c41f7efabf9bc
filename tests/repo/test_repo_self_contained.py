"""A clone tests itself: nothing the tests read lies outside the repository.

The compat corpus used to live beside the repository (``../shared/compat-corpus``), so a fresh
``git clone`` failed at collection. It now lives in ``compat-corpus/`` and every test names it
through ``tests/compat.py``'s ``CORPUS_DIR``. These tests keep it that way:

* every text file under ``tests/`` (and the Python of ``fuzz/``, ``tools/``, ``bench/`` and the
  corpus' own scripts) is searched for names of places outside the repository (``../shared``,
  ``/work/``, a home folder ...);
* every Python file there is read as a syntax tree and each path built from ``__file__``
  (``os.path.dirname``/``os.path.join(.., "..")``, ``Path.parent``/``parents[n]``, ``/``,
  through module-level names and names imported from sibling test modules) is followed: one
  that climbs above the repository root is reported with its file and line;
* the corpus the tests read is inside the repository and, in a git checkout, committed.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest

from compat import CORPUS_DIR, REPO_ROOT, WRITERS

REPO = Path(REPO_ROOT).resolve()
THIS_FILE = Path(__file__).resolve()
#: (folder, which files): every file of tests/, the Python and Markdown of the other trees
SCANNED = (("tests", None), ("fuzz", (".py", ".md")), ("tools", (".py", ".md")), ("bench", (".py", ".md")),
           ("compat-corpus", (".py", ".md")))
#: text that names a place outside the repository (the old corpus location, machine folders)
FORBIDDEN_TEXT = ("../shared", "shared/compat-corpus", "/shared/", "/work/", "/home/", "/root/", "/Users/",
                  "/mnt/", "expanduser(", "Path.home(")
TEXT_SUFFIXES = {".py", ".md", ".json", ".txt", ".toml", ".cfg", ".ini", ".yaml", ".yml"}


class _Outside:
    """The value of a path expression that has left the repository."""


OUTSIDE = _Outside()
_IDENTITY = {"Path", "PurePath", "PosixPath", "str", "abspath", "realpath", "normpath", "fspath"}
_IDENTITY_METHODS = {"resolve", "absolute", "with_suffix"}


def _callee(func: ast.expr) -> str | None:
    """``os.path.dirname`` -> ``dirname``, ``pathlib.Path`` -> ``Path``; None for other shapes."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _walk_parts(base, parts):
    """``base`` (repo-relative parts) after joining ``parts``; OUTSIDE when ``..`` climbs above the root."""
    out = list(base)
    for part in parts:
        for seg in part.split("/"):
            if seg in ("", "."):
                continue
            if seg == "..":
                if not out:
                    return OUTSIDE
                out.pop()
            else:
                out.append(seg)
    return tuple(out)


def _parent(value, levels: int = 1):
    if not isinstance(value, tuple):
        return value
    if levels > len(value):
        return OUTSIDE
    return value[: len(value) - levels]


class _PathFlow:
    """Follows the paths one module builds from ``__file__``; ``found`` lists those that leave the repo.

    A value is a tuple of path parts relative to the repository root, ``OUTSIDE``, or None (not a
    path this analysis can follow: a variable, an argument, a temporary folder ...).
    """

    def __init__(self, tree: ast.Module, rel: tuple[str, ...], resolve_import=None):
        self.rel = rel
        self.env: dict[str, object] = {}
        self.found: list[int] = []
        self.resolve_import = resolve_import or (lambda module, name: None)
        for node in _in_order(tree):  # names first (source order), then every expression
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    value = self.resolve_import(node.module, alias.name)
                    if value is not None:
                        self.env[alias.asname or alias.name] = value
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = self.eval(node.value)
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.env[target.id] = value
        for node in ast.walk(tree):
            if isinstance(node, (ast.Call, ast.Attribute, ast.Subscript, ast.BinOp)) and self.eval(node) is OUTSIDE:
                self.found.append(node.lineno)

    def eval(self, node: ast.expr):
        if isinstance(node, ast.Name):
            return self.rel if node.id == "__file__" else self.env.get(node.id)
        if isinstance(node, ast.Attribute):
            if node.attr == "parent":
                return _parent(self.eval(node.value))
            return None
        if isinstance(node, ast.Subscript):
            if (isinstance(node.value, ast.Attribute) and node.value.attr == "parents"
                    and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int)):
                return _parent(self.eval(node.value.value), node.slice.value + 1)
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return self._join(self.eval(node.left), [node.right])
        if isinstance(node, ast.Call):
            return self._call(node)
        return None

    def _join(self, base, rest: list[ast.expr]):
        if not isinstance(base, tuple):
            return base
        parts = []
        for arg in rest:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not arg.value.startswith("/"):
                parts.append(arg.value)
            else:
                return None
        return _walk_parts(base, parts)

    def _call(self, node: ast.Call):
        name = _callee(node.func)
        args = node.args
        if name in ("expanduser", "home"):
            return OUTSIDE  # a home folder is never part of the repository
        if isinstance(node.func, ast.Attribute) and name in _IDENTITY_METHODS | {"joinpath", "with_name"}:
            target = self.eval(node.func.value)
            if name == "joinpath":
                return self._join(target, list(args))
            if name == "with_name":
                if isinstance(target, tuple) and args and isinstance(args[0], ast.Constant):
                    return _walk_parts(_parent(target), [str(args[0].value)]) if target else OUTSIDE
                return None if isinstance(target, tuple) else target
            return target
        if name in _IDENTITY and len(args) == 1:
            return self.eval(args[0])
        if name == "dirname" and len(args) == 1:
            return _parent(self.eval(args[0]))
        if name == "join" and args:
            return self._join(self.eval(args[0]), list(args[1:]))
        return None


def _in_order(tree: ast.AST):
    """Every node, in source order (a parent before its children)."""
    yield tree
    for child in ast.iter_child_nodes(tree):
        yield from _in_order(child)


_MODULE_CACHE: dict[Path, dict] = {}


def _module_env(path: Path, busy: frozenset = frozenset()) -> dict:
    """The module-level path values of one repository Python file (cached)."""
    if path not in _MODULE_CACHE:
        flow = _flow(path, busy | {path})
        _MODULE_CACHE[path] = flow.env
    return _MODULE_CACHE[path]


def _flow(path: Path, busy: frozenset = frozenset()) -> _PathFlow:
    rel = path.resolve().relative_to(REPO).parts

    def resolve_import(module: str, name: str):
        for folder in (path.parent, REPO / "tests"):  # sibling modules, then tests/ (conftest puts it first)
            candidate = folder / (module.replace(".", "/") + ".py")
            if candidate.is_file() and candidate.resolve() not in busy:
                return _module_env(candidate.resolve(), busy).get(name)
        return None

    return _PathFlow(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), rel, resolve_import)


def outside_paths(source: str, rel_path: str) -> list[int]:
    """Lines of ``source`` (a file at ``rel_path`` in the repository) whose paths leave the repository."""
    return sorted(set(_PathFlow(ast.parse(source), tuple(rel_path.split("/"))).found))


def _scanned_files() -> list[Path]:
    files = []
    for folder, suffixes in SCANNED:
        for path in sorted((REPO / folder).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            if suffixes is None and path.suffix not in TEXT_SUFFIXES:
                continue
            if suffixes is not None and path.suffix not in suffixes:
                continue
            if path.is_relative_to(REPO / "compat-corpus") and path.parent != REPO / "compat-corpus":
                continue  # the corpus' data (manifests, results) is checked below, not scanned as text
            files.append(path)
    return files


def test_no_file_names_a_place_outside_the_repository():
    found = []
    for path in _scanned_files():
        if path.resolve() == THIS_FILE:
            continue  # this file lists the forbidden text itself
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for text in FORBIDDEN_TEXT:
                if text in line:
                    found.append(f"{path.relative_to(REPO)}:{number}: {text!r} in {line.strip()[:120]}")
    assert found == [], ("files name places outside the repository; use tests/compat.py's CORPUS_DIR or "
                         "REPO_ROOT instead:\n" + "\n".join(found))


def test_no_path_built_from_file_climbs_out_of_the_repository():
    found = []
    for path in _scanned_files():
        if path.suffix == ".py":
            for line in sorted(set(_flow(path).found)):
                text = path.read_text(encoding="utf-8").splitlines()[line - 1].strip()
                found.append(f"{path.relative_to(REPO)}:{line}: {text[:120]}")
    assert found == [], ("paths built from __file__ leave the repository; a fresh clone has nothing there. "
                         "Point them inside the repository (tests/compat.py's CORPUS_DIR, REPO_ROOT):\n"
                         + "\n".join(found))


@pytest.mark.parametrize("rel, source", [
    ("tests/compat.py",
     'import os\nCORPUS_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "c"))\n'),
    ("tests/cli_support.py",
     'import os\nROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))\n'
     'CORPUS = os.path.abspath(os.path.join(ROOT, "..", "shared", "compat-corpus"))\n'),
    ("tests/test_exprparse.py",
     'from pathlib import Path\nCORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "compat-corpus"\n'),
    ("tests/hostile/cases_pickle.py",
     'from pathlib import Path\nHERE = Path(__file__).resolve().parent\nTESTS = HERE.parent\n'
     'CORPUS = TESTS.parent.parent / "shared" / "compat-corpus"\n'),
    ("tests/hostile/x.py", 'from pathlib import Path\nC = Path(__file__).resolve().parents[2].joinpath("..", "s")\n'),
    ("tests/x.py", 'import os\nC = os.path.expanduser("~/corpus")\n'),
])
def test_the_guard_catches_paths_that_leave_the_repository(rel, source):
    """The forms the tests used before the corpus moved in (and two more) are each reported."""
    lines = outside_paths(source, rel)
    assert lines == [len(source.splitlines())], lines


@pytest.mark.parametrize("rel, source", [
    ("tests/compat.py", 'import os\nREPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))\n'
                        'CORPUS_DIR = os.path.join(REPO_ROOT, "compat-corpus")\n'),
    ("tests/hostile/x.py", 'from pathlib import Path\nROOT = Path(__file__).resolve().parents[2]\n'
                           'DOCS = ROOT / "docs" / ".." / "src"\n'),
    ("tests/x.py", 'import os\nDOC = open(os.path.join(os.path.dirname(__file__), "..", "docs", "a.md"))\n'),
    ("bench/common.py", 'import os, sys\nsys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))\n'),
    ("tests/x.py", 'def f(tmp_path):\n    return tmp_path.parent.parent / "shared"\n'),  # not built from __file__
])
def test_the_guard_accepts_paths_inside_the_repository(rel, source):
    assert outside_paths(source, rel) == []


def test_imported_names_are_followed():
    """A module that builds a path from a name another test module exports is judged with its value."""
    flow = _flow(REPO / "tests" / "hostile" / "cases_pickle.py")
    assert flow.env["TESTS"] == ("tests",)  # from everywhere.py: Path(__file__).resolve().parent.parent
    assert flow.env["CORPUS_DIR"] == ("compat-corpus",)  # from tests/compat.py


def _needed_corpus_files() -> set[str]:
    """Every file of the corpus the tests read: manifests, the files they name, results, scripts."""
    corpus = Path(CORPUS_DIR)
    needed = {"README.md", "corpus_ops.py", "make_corpus.py", "check_torch.py"}
    for writer in WRITERS:
        needed |= {f"{writer}/manifest.json", f"results/reader-{writer}.json"}
        with open(corpus / writer / "manifest.json") as f:
            for program in json.load(f)["programs"]:
                if program["status"] == "ok":
                    needed |= {f"{writer}/{program[k]}" for k in ("file", "inputs_file", "expected_file")}
    return needed


def _assert_corpus_complete() -> None:
    corpus = Path(CORPUS_DIR).resolve()
    assert corpus == REPO / "compat-corpus", corpus
    needed = _needed_corpus_files()
    missing = sorted(n for n in needed if not (corpus / n).is_file())
    assert missing == [], f"compat-corpus/ lacks files its manifests name: {missing[:10]}"
    assert len([n for n in needed if n.endswith(".pt2")]) >= 240


def test_the_corpus_is_inside_the_repository_and_complete():
    _assert_corpus_complete()


def _git(*args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None


def test_a_clone_gets_the_corpus():
    """In a git checkout every corpus file the tests read is committed (a clone has exactly those)."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or top.returncode != 0 or Path(top.stdout.strip()).resolve() != REPO:
        # not a git checkout (an unpacked release): the files being present is all that matters
        _assert_corpus_complete()
        return
    tracked = _git("ls-files", "-z", "--", "compat-corpus").stdout.split("\0")
    tracked = {os.path.relpath(t, "compat-corpus") for t in tracked if t}
    untracked = sorted(_needed_corpus_files() - tracked)
    assert untracked == [], f"corpus files the tests read are not committed (git add compat-corpus): {untracked[:10]}"
