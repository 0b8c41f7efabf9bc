#!/usr/bin/env python
"""Regenerate the cross-release compat corpus (``compat-corpus/``) with real PyTorch releases.

For each release (default: 2.5.1 2.6.0 2.7.1 2.8.0 2.9.1 2.13.0 2.14.1) this makes a throwaway
venv (``pip install torch==<release> numpy safetensors``), then, with that venv's Python:

1. **writer**: runs the corpus' own ``make_corpus.py``, which exports every corpus program with
   that release, saves it with that release's ``torch.export.save`` (``package_pt2`` for the
   multi-program archive) and records the example inputs, the eager outputs and
   ``<release>/manifest.json`` (the layout is described in ``compat-corpus/README.md``);
2. **reader**: runs ``check_torch.py``, which loads every archive of every writer folder with that
   release's ``torch.export.load`` and writes ``results/reader-<release>.json`` (its stock loader
   matrix row);

and finally rebuilds the matrix block of the corpus README from every ``results/reader-*.json``
(``check_torch.py --matrix-only``; no torch needed).

The program definitions live in ``compat-corpus/make_corpus.py`` (and its custom ops in
``corpus_ops.py``): those scripts run *from the output folder* (they are copied there when it is
not the repository's corpus), so the stack traces kept in the archives name them relative to the
corpus (``File "make_corpus.py", line N``) whatever folder the corpus is built in.

Examples::

    # everything, into the repository's corpus (needs the network; CPU wheels are enough)
    python tools/make_compat_corpus.py --cpu

    # only the installed release, with an existing interpreter, into a scratch folder: the other
    # releases' folders and results are copied from the repository so the reader sees every writer
    python tools/make_compat_corpus.py --release current --python .venv/bin/python --out /tmp/corpus-check

    # add a release: one more writer, and every reader again (old readers must read the new archives)
    python tools/make_compat_corpus.py --releases 2.5.1,2.6.0,2.7.1,2.8.0,2.9.1,2.13.0,2.14.1,2.15.0

Archives are not byte-reproducible (``.data/serialization_id``, ``torch_version``, ids inside
``from_node`` metadata); inputs are (seeded by the program name) and so are the manifests,
up to archive sizes and the Python version recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "compat-corpus")
RELEASES = ("2.5.1", "2.6.0", "2.7.1", "2.8.0", "2.9.1", "2.13.0", "2.14.1")
#: the corpus folder's own files, copied into an --out folder elsewhere
CORPUS_FILES = ("make_corpus.py", "corpus_ops.py", "check_torch.py", "README.md", ".gitattributes")
#: the object-constant archives (``objects/<release>/``, written by ``objects/make_objects.py``)
OBJECTS = "objects"
OBJECTS_FILES = ("make_objects.py", "corpus_objects.py")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: what make_corpus.py and check_torch.py import besides torch
DEPENDENCIES = ("numpy", "safetensors")


class ToolError(Exception):
    """A step that cannot go on; the message says what to do."""


def release_of(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0`` (the folder name the writer uses)."""
    return version.split("+")[0]


def torch_version(python: str) -> str | None:
    """``torch.__version__`` of an interpreter, or None when it has no (working) torch."""
    try:
        proc = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                              text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _run(cmd: list[str], what: str, cwd: str | None = None) -> None:
    print("+ " + " ".join(cmd), flush=True)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")  # no __pycache__ inside the corpus
    env.pop("PYTHONPATH", None)  # the release's own torch, nothing of this checkout
    if subprocess.run(cmd, cwd=cwd, env=env).returncode != 0:
        raise ToolError(f"{what} failed (command above); fix that and run again")


def make_venv(release: str, venvs: str, base_python: str, index_url: str | None) -> str:
    """A venv holding torch==release (reused when it already has it); returns its Python."""
    folder = os.path.join(venvs, f"torch-{release}")
    python = os.path.join(folder, "bin", "python")
    if os.path.exists(python) and release_of(torch_version(python) or "") == release:
        print(f"== reusing {folder} (torch {release})", flush=True)
        return python
    _run([base_python, "-m", "venv", "--clear", folder], f"creating the venv for torch {release}")
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run(pip + [f"torch=={release}"] + (["--index-url", index_url] if index_url else []),
         f"pip install torch=={release}" + (f" from {index_url}" if index_url else ""))
    _run(pip + list(DEPENDENCIES), "pip install " + " ".join(DEPENDENCIES))
    return python


def prepare_out(out: str, releases: list[str], copy_others: bool) -> None:
    """Make ``out`` a corpus folder: the scripts, and (optionally) the other releases' data."""
    os.makedirs(os.path.join(out, "results"), exist_ok=True)
    if os.path.realpath(out) == os.path.realpath(CORPUS):
        return
    for name in CORPUS_FILES:
        shutil.copyfile(os.path.join(CORPUS, name), os.path.join(out, name))
    os.makedirs(os.path.join(out, OBJECTS), exist_ok=True)
    for name in OBJECTS_FILES:
        shutil.copyfile(os.path.join(CORPUS, OBJECTS, name), os.path.join(out, OBJECTS, name))
    if not copy_others:
        return
    for entry in sorted(os.listdir(os.path.join(CORPUS, OBJECTS))):  # the other releases' object archives
        src = os.path.join(CORPUS, OBJECTS, entry)
        if entry not in releases and os.path.isdir(src) and entry != "__pycache__" \
                and not os.path.exists(os.path.join(out, OBJECTS, entry)):
            shutil.copytree(src, os.path.join(out, OBJECTS, entry))
    for entry in sorted(os.listdir(CORPUS)):
        src = os.path.join(CORPUS, entry)
        if entry in releases or not os.path.isfile(os.path.join(src, "manifest.json")):
            continue
        if not os.path.exists(os.path.join(out, entry)):
            shutil.copytree(src, os.path.join(out, entry))
    for name in os.listdir(os.path.join(CORPUS, "results")):
        reader = name[len("reader-"):-len(".json")] if name.startswith("reader-") else None
        if reader and reader not in releases and not os.path.exists(os.path.join(out, "results", name)):
            shutil.copyfile(os.path.join(CORPUS, "results", name), os.path.join(out, "results", name))


def resolve_pythons(args, venvs: str) -> dict[str, str]:
    """release -> interpreter holding it, in the order given."""
    pythons: dict[str, str] = {}
    for release in args.releases:
        if args.python:
            found = torch_version(args.python)
            if found is None:
                raise ToolError(f"{args.python} cannot import torch; pass a Python with torch installed")
            if release not in ("current", release_of(found)):
                raise ToolError(f"{args.python} has torch {found}, not {release}; drop --python to build a venv")
            pythons[release_of(found)] = args.python
        elif release == "current":
            raise ToolError("--release current needs --python (the interpreter whose torch to record)")
        else:
            pythons[release] = make_venv(release, venvs, args.base_python, args.index_url)
    return pythons


def stale_readers(out: str, rerun: list[str]) -> list[str]:
    """Readers whose results were copied, not rerun: they never read the archives written now."""
    stale = []
    for name in sorted(os.listdir(os.path.join(out, "results"))):
        with open(os.path.join(out, "results", name)) as f:
            reader = json.load(f).get("reader", name)
        if reader not in rerun:
            stale.append(reader)
    return stale


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--releases", "--release", default=",".join(RELEASES),
                    help="comma-separated torch releases, or 'current' with --python (default: %(default)s)")
    ap.add_argument("--python", help="use this interpreter (its torch must be the one release asked for) "
                                     "instead of building a venv")
    ap.add_argument("--out", default=CORPUS, help="corpus folder to write (default: the repository's compat-corpus/)")
    ap.add_argument("--venvs", help="keep the venvs in this folder and reuse them (default: a temporary folder, "
                                    "removed at the end)")
    ap.add_argument("--base-python", default=shutil.which("python3.11") or sys.executable,
                    help="interpreter the venvs are made from (default: %(default)s)")
    ap.add_argument("--index-url", help="pip index for torch (e.g. %s)" % CPU_INDEX)
    ap.add_argument("--cpu", action="store_true", help=f"shorthand for --index-url {CPU_INDEX}")
    ap.add_argument("--only", default="", help="comma-separated program names to (re)write (make_corpus.py --only)")
    ap.add_argument("--no-copy-others", dest="copy_others", action="store_false",
                    help="with --out elsewhere: do not copy the other releases' folders and results")
    ap.add_argument("--no-readers", dest="readers", action="store_false", help="write archives only")
    ap.add_argument("--no-readme", dest="readme", action="store_false", help="leave the README matrix as it is")
    args = ap.parse_args(argv)
    args.releases = [r.strip() for r in args.releases.split(",") if r.strip()]
    if args.cpu:
        args.index_url = args.index_url or CPU_INDEX
    if not args.releases:
        ap.error("--releases is empty: name at least one torch release")
    if args.python and len(args.releases) != 1:
        ap.error("--python records one release: pass --release <that release> or --release current")
    out = os.path.abspath(args.out)
    temp = None if args.venvs else tempfile.mkdtemp(prefix="pt2serde-corpus-venvs-")
    try:
        pythons = resolve_pythons(args, args.venvs or temp)
        prepare_out(out, list(pythons), args.copy_others)
        for release, python in pythons.items():
            print(f"== writer {release}", flush=True)
            _run([python, os.path.join(out, "make_corpus.py"), "--out", out]
                 + (["--only", args.only] if args.only else []), f"make_corpus.py with torch {release}", cwd=out)
            _run([python, os.path.join(out, OBJECTS, "make_objects.py")], f"make_objects.py with torch {release}",
                 cwd=out)
        if args.readers:
            for release, python in pythons.items():
                print(f"== reader {release}", flush=True)
                _run([python, os.path.join(out, "check_torch.py"), "--corpus", out,
                      "--results", os.path.join(out, "results")], f"check_torch.py with torch {release}", cwd=out)
        if args.readme:
            _run([sys.executable, os.path.join(out, "check_torch.py"), "--corpus", out, "--results",
                  os.path.join(out, "results"), "--matrix-only", "--readme", os.path.join(out, "README.md")],
                 "rebuilding the README matrix", cwd=out)
        stale = stale_readers(out, list(pythons) if args.readers else [])
        if stale:
            print("note: the results of readers " + ", ".join(stale) + " predate the writers written now; "
                  "run those releases too (--releases) to refresh their rows", flush=True)
    except ToolError as e:
        print(f"make_compat_corpus: {e}", file=sys.stderr)
        return 1
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
