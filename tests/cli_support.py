"""Helpers for the CLI tests: run ``pt2serde`` without torch, rewrite archives record by record."""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys

from compat import CORPUS
from pt2serde.format.archive import ArchiveReader
from pt2serde.format.archive_write import ArchiveWriter

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PT2_WRITERS = ("2.8.0", "2.9.1", "2.13.0", "2.14.1")
LEGACY_WRITERS = ("2.5.1", "2.6.0", "2.7.1")

# torch and sympy made unimportable: any import of them in the CLI's path fails loudly.
BLOCK = "import sys; sys.modules['torch'] = None; sys.modules['sympy'] = None\n"
MAIN = BLOCK + "from pt2serde.cli import main; sys.exit(main())"
BATCH = BLOCK + """\
import contextlib, io, json
from pt2serde.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, out.getvalue(), err.getvalue()])
assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'sympy') and sys.modules[m] is not None]
sys.stdout.write(json.dumps(results))
"""

def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    env["PYTHONPATH"] = os.path.join(ROOT, "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def run_cli(*args: str, env: dict | None = None, prelude: str = "", cwd: str | None = None) -> subprocess.CompletedProcess:
    """``pt2serde ARGS`` in a new interpreter where torch and sympy cannot be imported."""
    return subprocess.run([sys.executable, "-c", prelude + MAIN, *args], capture_output=True, text=True,
                          env=_env(env), cwd=cwd, timeout=120)


def run_cli_json(*args: str, **kw) -> tuple[int, dict]:
    proc = run_cli(*args, "--json", **kw)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def run_batch(argvs: list[list[str]]) -> list[tuple[int, str, str]]:
    """Many CLI runs in ONE torch-free interpreter (for corpus sweeps): (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-c", BATCH, json.dumps(argvs)], capture_output=True, text=True,
                          env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return [tuple(r) for r in json.loads(proc.stdout)]


LEGACY_MARKER = "serialized_exported_program.json"


def records(path: str | bytes) -> dict[str, bytes]:
    """Every record of an archive (or of a ``torch.save`` zip given as bytes), by name relative
    to its root folder; the plain zip of PyTorch 2.5-2.7 has none ("__root__" is then empty)."""
    reader = ArchiveReader(path if isinstance(path, str) else memoryview(path))
    root = "" if LEGACY_MARKER in reader else reader.root_folder()
    out = {(n.split("/", 1)[1] if root else n): reader.read(n) for n in reader.names()}
    reader.close()
    out["__root__"] = root.encode()
    return out


def zip_bytes(recs: dict[str, bytes]) -> bytes:
    """A zip of ``recs`` (full names) as bytes, e.g. a rewritten ``torch.save`` record."""
    buf = io.BytesIO()
    with ArchiveWriter(buf) as w:
        for name, data in recs.items():
            w.add(name, data)
    return buf.getvalue()


def rewrite(src: str, dst: str, replace: dict[str, bytes | None] | None = None,
            add: dict[str, bytes] | None = None) -> str:
    """Copy archive ``src`` to ``dst`` with records replaced (``None``: removed) or added.

    Names are relative to the root folder. The copy is a well-formed zip (CRCs recomputed),
    so only the changed contents are wrong.
    """
    recs = records(src)
    root = recs.pop("__root__").decode()
    prefix = f"{root}/" if root else ""
    replace = replace or {}
    with ArchiveWriter(dst) as w:
        for name, data in recs.items():
            if name in replace:
                if replace[name] is None:
                    continue
                data = replace[name]
            w.add(f"{prefix}{name}", data)
        for name, data in (add or {}).items():
            w.add(f"{prefix}{name}", data)
    return dst


def edit_json(src: str, dst: str, name: str, fn) -> str:
    """Copy ``src`` to ``dst`` with the JSON record ``name`` changed by ``fn(doc) -> doc``."""
    doc = json.loads(records(src)[name])
    result = fn(doc)
    doc = result if isinstance(result, dict) else doc  # fn may edit in place and return anything
    return rewrite(src, dst, {name: json.dumps(doc).encode()})


@functools.lru_cache(maxsize=None)
def corpus_reports() -> tuple[tuple[str, dict, tuple[int, str, str]], ...]:
    """``inspect --json`` of every archive of every writer, both layouts, in one torch-free
    interpreter (computed once per test session): (path, manifest entry, (code, stdout, stderr))."""
    archives = corpus_archives(PT2_WRITERS + LEGACY_WRITERS)
    results = run_batch([["inspect", "--json", path] for path, _ in archives])
    return tuple((path, entry, result) for (path, entry), result in zip(archives, results))


def corpus_archives(writers=PT2_WRITERS) -> list[tuple[str, dict]]:
    """(path, manifest entry) of every archive the given writers produced."""
    out = []
    for w in writers:
        with open(os.path.join(CORPUS, w, "manifest.json")) as f:
            manifest = json.load(f)
        for p in manifest["programs"]:
            if p.get("status") == "ok":
                out.append((os.path.join(CORPUS, w, p["file"]), p))
    return out
