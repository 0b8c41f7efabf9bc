"""``tools/make_compat_corpus.py`` regenerates the compat corpus as it is stored.

Old torch releases cannot be installed by the test suite, so this runs the tool the one way it
can here: for the installed release (``--release current --python <this interpreter>``, no venv)
into a scratch folder, where the other releases' folders and results are copied first. What comes
out must be the stored corpus again:

* the same files, the scripts and README copied, nothing of the machine's paths;
* the installed release's folder: the same manifest (every record, archive sizes included), the
  same inputs (seeded), the same expected outputs, and archives with the same records, equal byte
  for byte except the run-specific ids the README names (``graph_id`` in ``from_node``, object ids
  in the strict export's ``nn_module_stack`` and the ``.data/serialization_id`` that follows them);
* the same reader row (``results/reader-<release>.json``) and the same README matrix.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from compat import CORPUS, REPO_ROOT, mismatch

TOOL = os.path.join(REPO_ROOT, "tools", "make_compat_corpus.py")
RELEASE = torch.__version__.split("+")[0]
STORED = CORPUS  # the corpus as the repository stores it
#: run-specific values inside a program JSON: ids of Python objects and graphs, addresses
_RUN_IDS = re.compile(r'(\\"graph_id\\": )\d+|(;)\d+(,)|( at )0x[0-9a-f]+')

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    assert (STORED / RELEASE / "manifest.json").is_file(), (
        f"the corpus has no folder for the installed torch {torch.__version__}; install torch==2.13.0 (the project's pin)")
    out = tmp_path_factory.mktemp("corpus") / "compat-corpus"
    proc = subprocess.run([sys.executable, TOOL, "--release", "current", "--python", sys.executable, "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"{RELEASE}: 39/39 programs written" in proc.stdout
    return out


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_the_same_files_come_out(regenerated):
    assert _files(regenerated) == _files(STORED)
    for script in ("make_corpus.py", "corpus_ops.py", "check_torch.py"):
        assert (regenerated / script).read_bytes() == (STORED / script).read_bytes()


def test_the_manifest_is_the_stored_one(regenerated):
    new = json.loads((regenerated / RELEASE / "manifest.json").read_text())
    old = json.loads((STORED / RELEASE / "manifest.json").read_text())
    for doc in (new, old):  # the interpreter's patch version and the wheel's build tag may differ
        doc.pop("python")
        doc.pop("torch_version_full")
        for program in doc["programs"]:
            program.pop("torch_version")
            program.get("archive", {}).pop("json_torch_version", None)
            program.get("archive", {}).pop("bytes", None)
    assert new == old


def test_inputs_and_expected_outputs_are_the_stored_ones(regenerated):
    records = json.loads((STORED / RELEASE / "manifest.json").read_text())["programs"]
    for rec in records:
        for key in ("inputs_file", "expected_file"):
            new_path, old_path = regenerated / RELEASE / rec[key], STORED / RELEASE / rec[key]
            new, old = load_file(str(new_path)), load_file(str(old_path))
            assert sorted(new) == sorted(old), rec[key]
            for name in old:
                if key == "inputs_file":  # seeded by the program name: exactly the same numbers
                    assert new[name].dtype == old[name].dtype and torch.equal(new[name], old[name]), f"{rec[key]}:{name}"
                else:
                    tol = rec["tolerance"]
                    assert mismatch(new[name], old[name], tol["rtol"], tol["atol"], name) is None, rec[key]
            with safe_open(str(new_path), "pt") as a, safe_open(str(old_path), "pt") as b:
                assert a.metadata()["program"] == b.metadata()["program"] == rec["name"]


def _normalized(doc: bytes) -> bytes:
    return _RUN_IDS.sub(lambda m: (m.group(1) or m.group(2) or m.group(4) or "") + "ID" + (m.group(3) or ""),
                        doc.decode("utf-8")).encode("utf-8")


def test_archives_hold_the_same_records(regenerated):
    ids_differ, docs_differ = set(), set()
    for old_path in sorted((STORED / RELEASE).glob("*.pt2")):
        with zipfile.ZipFile(old_path) as old, zipfile.ZipFile(regenerated / RELEASE / old_path.name) as new:
            assert new.namelist() == old.namelist(), old_path.name
            for name in old.namelist():
                a, b = new.read(name), old.read(name)
                if a == b:
                    continue
                if name.endswith(".data/serialization_id"):
                    ids_differ.add(old_path.name)
                    continue
                assert name.endswith(".json"), f"{old_path.name}:{name} differs"
                docs_differ.add(old_path.name)
                doc_a, doc_b = json.loads(a), json.loads(b)
                doc_a.pop("torch_version", None)
                doc_b.pop("torch_version", None)
                assert _normalized(json.dumps(doc_a).encode()) == _normalized(json.dumps(doc_b).encode()), \
                    f"{old_path.name}:{name} differs beyond run-specific ids"
    assert ids_differ <= docs_differ, ids_differ - docs_differ  # the id follows the document


def test_the_reader_row_and_the_matrix_are_the_stored_ones(regenerated):
    new = json.loads((regenerated / "results" / f"reader-{RELEASE}.json").read_text())
    old = json.loads((STORED / "results" / f"reader-{RELEASE}.json").read_text())
    new.pop("reader_full")
    old.pop("reader_full")
    assert new == old
    matrix = re.compile(r"<!-- matrix:begin.*?<!-- matrix:end -->", re.S)
    readme_new, readme_old = (regenerated / "README.md").read_text(), (STORED / "README.md").read_text()
    build = lambda text: re.sub(re.escape(RELEASE) + r"\+\w+", RELEASE, text)  # noqa: E731  (+cpu, +cu128 ...)
    assert build(matrix.search(readme_new).group(0)) == build(matrix.search(readme_old).group(0))
    assert str(regenerated) not in readme_new


def test_wrong_use_is_refused_with_what_to_do(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, TOOL, *args, "--out", str(tmp_path / "c")], capture_output=True,
                              text=True, timeout=300)

    proc = run("--release", "current")
    assert proc.returncode == 1 and "--release current needs --python" in proc.stderr
    proc = run("--release", "2.5.1", "--python", sys.executable)
    assert proc.returncode == 1 and f"has torch {torch.__version__}, not 2.5.1; drop --python" in proc.stderr
    proc = run("--releases", "2.5.1,2.6.0", "--python", sys.executable)
    assert proc.returncode == 2 and "--python records one release" in proc.stderr
    assert not (tmp_path / "c").exists()
