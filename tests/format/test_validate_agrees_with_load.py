"""``validate`` judges exactly what ``load`` refuses (issue 10, "What to build" 1).

Over every archive we have - (a) the compat corpus (``compat-corpus/<release>/*.pt2``),
(b) every hostile archive we build (``test_hostile_archives.CASES``,
``hostile/test_attack_classes.CASES`` and the ``hostile/cases_*.py`` files, imported when the
test runs so new ones are picked up), (c) the seeds of ``fuzz/fuzz_archive.py`` and the inputs
of ``fuzz/regressions/`` - this asserts:

    ``check.check_archive`` (what ``pt2serde validate`` runs) reports no problem that blocks
    loading  <=>  ``pt2serde.load_all`` (default ``allow_pickle=False``) succeeds and
    ``module()`` then builds for every program.

"Blocks loading" is :meth:`problem.Problem.blocks_load`: an error, or a warning that loading
needs ``allow_pickle=True`` (``validate`` calls such a file valid, with that warning: the file is
sound, and ``load`` refuses it only because the caller did not opt in).

Both sides read through one checked model of the archive (:mod:`pt2serde.format.contents`); where they
still disagree the test says why, in one of two explicit lists:

* :data:`ENVIRONMENT`: ``load`` depends on this process, not on the file (a custom op that is
  not registered, a device type torch does not know, a torchbind class not registered);
* :data:`KNOWN`: a check that lives in another area than the archive model (names, guards,
  pickles, expressions, JSON/tensors), to be moved into the format layer by its owner.

Anything else fails the test. Payload configs of ``fuzz/fuzz_payload.py`` (its seeds and
regressions) are checked one level down: the model's problems for the config against
``package._config`` + ``package._tensor_entries``.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib
import io
import os
import re
import sys
import warnings
from pathlib import Path

import pytest
import torch

import pt2serde
from compat import CORPUS
from pt2serde.format import check, contents, tensor_entries
from pt2serde import cli
from pt2serde.bridge import package
from pt2serde.format.archive import ArchiveReader
from pt2serde.errors import SerializeError

TESTS = Path(__file__).resolve().parents[1]
HOSTILE = TESTS / "hostile"
FUZZ = TESTS.parent / "fuzz"
for _p in (str(TESTS), str(HOSTILE), str(FUZZ)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# ------------------------------------------------------------------ the two verdicts


def validate_verdict(data: bytes | str) -> list[str]:
    """The problems ``validate`` reports that block loading (empty: it would load)."""
    try:
        archive = contents.Pt2Archive(ArchiveReader(data))
        problems = check.check_archive(archive)
    except SerializeError as e:  # not an archive at all: validate exits 2
        return [f"cannot read: {e}"]
    return [f"{p} [{p.level}]" for p in problems if p.blocks_load()]


def load_verdict(data: bytes | str) -> str | None:
    """None when ``load_all`` succeeds and ``module()`` builds every program; else what failed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            programs = pt2serde.load_all(io.BytesIO(data) if isinstance(data, bytes) else data)
            for name, ep in programs.items():
                try:
                    ep.module()
                except SerializeError as e:
                    return f"module() of {name!r}: {e}"
    except SerializeError as e:
        return str(e)
    return None


# --------------------------------------------------------------- the explicit lists

#: (regex on load's refusal, reason): load depends on this process, not on the file. Validate
#: reads the file alone; it may warn (an unknown device type) but cannot know.
ENVIRONMENT = [
    (r"failed to resolve torch\.ops\.[\w.]+ to an operator.*import the module that registers it",
     "a custom op is resolved in this process: registered or not, the file is the same"),
    (r"Invalid device '|device type .* is not one PyTorch knows",
     "a device type torch does not know may be a renamed private backend registered in another process"),
    (r"torchbind|torch\.classes|ScriptClass",
     "a torchbind class is registered (or not) by the process that loads"),
    (r"opaque class .* (is not registered as an opaque type in this process|could not be rebuilt)",
     "an opaque class is registered (or not) by the process that loads, and rebuilt by its own code"),
]

#: A deliberate difference of policy, not of checks: ``load`` maps tensor records without reading
#: their bytes (zero copy), so it checks the CRC-32 of the records it parses (documents, payload
#: configs) and not of tensor data, where ``validate`` reads every byte (``--no-crc`` skips it).
PAYLOAD_CRC = "payload CRC"


def _only_payload_crc(validate: list[str]) -> bool:
    return bool(validate) and all(v.startswith(contents.CRC_MISMATCH) and "/data/" in v or
                                  v.startswith(contents.CRC_MISMATCH) and v.split(" @ ")[1].startswith("serialized_")
                                  and ".pt" in v for v in validate)


#: case id -> (area, reason): a disagreement in a check outside the archive model. The owner of
#: the area moves the check into the format layer, where validate then calls it too; the entry
#: is then stale (the test prints it) and is removed.
KNOWN: dict[str, tuple[str, str]] = {
}


def classify(case_id: str, validate: list[str], load: str | None, declared: str | None = None) -> str:
    """"agree", "environment", "known:<area>" or "DISAGREE"."""
    if (not validate) == (load is None):
        return "agree"
    if declared == "environment" or (not validate and load is not None and any(
            re.search(rx, load) for rx, _ in ENVIRONMENT)):
        return "environment"
    if load is None and _only_payload_crc(validate):
        return f"policy:{PAYLOAD_CRC}"
    if case_id in KNOWN:
        return f"known:{KNOWN[case_id][0]}"
    return "DISAGREE"


# ------------------------------------------------------------------------ the corpora


def _corpus_files() -> list[str]:
    return sorted(glob.glob(str(CORPUS / "*" / "*.pt2")))


@pytest.fixture(scope="module", autouse=True)
def _corpus_ops():
    if (CORPUS / "corpus_ops.py").is_file():
        sys.path.insert(0, str(CORPUS))
        import corpus_ops  # noqa: F401 - the corpus' custom ops, so those programs load


def _hostile_cases(marker: str) -> list[tuple[str, bytes, str | None]]:
    """(id, archive bytes, declared validate outcome) of every hostile archive we build."""
    import test_attack_classes as A
    import test_hostile_archives as H

    ep = torch.export.export(H._Small(), (torch.ones(2, 4),))
    buf = io.BytesIO()
    pt2serde.save(ep, buf)
    base = buf.getvalue()
    out = [(f"H:{k}", build(base, marker), None) for k, (build, _) in H.CASES.items()]
    out += [(f"A:{k}", build(base, marker), None) for k, (build, _) in A.CASES.items()]
    for path in sorted(HOSTILE.glob("cases_*.py")):
        module = importlib.import_module(path.stem)
        for case in module.CASES:
            out.append((f"{path.stem}:{case.name}", case.build(marker), getattr(case, "validate", None)))
    return out


def _fuzz_archives() -> list[tuple[str, bytes]]:
    """The seeds of fuzz/fuzz_archive.py that are not compat-corpus files, and its regressions."""
    import pkgutil

    for info in pkgutil.iter_modules(pt2serde.__path__):  # imported already: never instrumented by the fuzz import
        importlib.import_module(f"pt2serde.{info.name}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import fuzz_archive

        corpus = {hashlib.sha256(Path(p).read_bytes()).digest() for p in _corpus_files()}
        out = [(f"seed {i}", s) for i, s in enumerate(fuzz_archive.seeds())
               if hashlib.sha256(s).digest() not in corpus]
    out += [(f"regression {os.path.basename(p)}", Path(p).read_bytes())
            for p in sorted(glob.glob(str(FUZZ / "regressions" / "archive" / "*")))]
    return out


def _judge(items, counts: dict, failures: list) -> None:
    for case_id, data, declared in items:
        v, l = validate_verdict(data), load_verdict(data)
        verdict = classify(case_id, v, l, declared)
        counts[verdict] = counts.get(verdict, 0) + 1
        if case_id in KNOWN and (not v) == (l is None):
            print(f"\nstale KNOWN entry (validate and load now agree): {case_id}")
        if verdict == "DISAGREE":
            failures.append(f"{case_id}: load -> {(l or 'ok')[:300]!r}; validate -> {v[:3]!r}")


def _report(name: str, counts: dict, failures: list) -> None:
    print(f"\n{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    assert not failures, f"validate and load disagree on {len(failures)} {name} archives:\n" + "\n".join(failures)


def test_compat_corpus_agrees():
    files = _corpus_files()
    assert files, f"no archives under {CORPUS}: the compat corpus belongs in the repository (compat-corpus/)"
    counts: dict = {}
    failures: list = []
    _judge([(f"corpus:{os.path.relpath(p, CORPUS)}", p, None) for p in files], counts, failures)
    _report("compat corpus", counts, failures)
    assert counts.get("agree", 0) >= 240  # every archive of every release loads, and validates


def test_hostile_archives_agree(tmp_path):
    marker = str(tmp_path / "pwned")
    counts: dict = {}
    failures: list = []
    _judge(_hostile_cases(marker), counts, failures)
    assert not os.path.exists(marker), "code from a hostile file ran"
    _report("hostile", counts, failures)


def test_fuzz_seeds_and_regressions_agree():
    counts: dict = {}
    failures: list = []
    _judge([(i, d, None) for i, d in _fuzz_archives()], counts, failures)
    _report("fuzz seeds", counts, failures)


def test_payload_configs_agree():
    """fuzz_payload's config seeds and regressions: the model's verdict on one payload config
    against what ``load`` builds from it (``package._config`` + ``package._tensor_entries``)."""
    import fuzz_payload as F

    inputs = [s for s in F.seeds() if F.MODES[s[0] % len(F.MODES)] == "config"]
    inputs += [Path(p).read_bytes() for p in sorted(glob.glob(str(FUZZ / "regressions" / "payload" / "*")))]
    inputs = [s for s in inputs if len(s) >= 2 and F.MODES[s[0] % len(F.MODES)] == "config"]
    assert len(inputs) > 20
    counts: dict = {}
    failures: list = []
    for i, data in enumerate(inputs):
        rel = F.CONFIGS[data[1] & 1]
        folder = rel.rsplit("/", 1)[0] + "/"
        record = f"{F.ROOT}/{rel}"
        problems: list = []
        tensor_entries.payload_entries(F._archive_with(rel, data[2:]).model, "constants" if "constants" in rel else
                                 "weights", record, problems)
        v = [str(p) for p in problems if p.blocks_load()]
        archive = F._archive_with(rel, data[2:])
        try:
            package._tensor_entries(archive, folder, package._config(archive, record), archive.storages, False, None)
            l = None
        except SerializeError as e:
            l = str(e)
        verdict = classify(f"payload {i}", v, l)
        counts[verdict] = counts.get(verdict, 0) + 1
        if verdict == "DISAGREE":
            failures.append(f"payload input {i}: load -> {l!r}; model -> {v[:3]!r}")
    _report("payload configs", counts, failures)


def test_cli_validate_is_the_same_function(tmp_path):
    """``pt2serde validate`` exits 0 exactly when ``check_archive`` finds no error, on a sample:
    a good archive, one refused by the model, one refused for a pickle (invalid by default, valid
    with ``--allow-pickle``, as load with ``allow_pickle``)."""
    import test_hostile_archives as H

    ep = torch.export.export(H._Small(), (torch.ones(2, 4),))
    buf = io.BytesIO()
    pt2serde.save(ep, buf)
    base = buf.getvalue()
    marker = str(tmp_path / "pwned")
    samples = {"good": base, "no tensor metadata": H.CASES["no tensor metadata"][0](base, marker),
               "archive_version wrong": H.CASES["archive_version wrong"][0](base, marker),
               "use_pickle weight": H.CASES["use_pickle weight"][0](base, marker)}
    files = _corpus_files()
    for p in files[:: max(1, len(files) // 6)]:
        samples[os.path.relpath(p, CORPUS)] = Path(p).read_bytes()
    for name, data in samples.items():
        path = tmp_path / (name.replace("/", "_").replace(" ", "_") + ".pt2")
        path.write_bytes(data)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = cli.main(["validate", str(path)])
        problems = check.check_archive(contents.open_archive(path))
        blocking = any(p.blocks_load() for p in problems)
        assert code == (1 if blocking else 0), name  # the CLI's verdict is load's (allow_pickle=False)
        assert (load_verdict(str(path)) is None) == (not blocking), name
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            trusted = cli.main(["validate", "--allow-pickle", str(path)])
        assert trusted == (1 if any(p.blocks_load(allow_pickle=True) for p in problems) else 0), name
    assert not os.path.exists(marker)


def test_payload_crc_is_the_one_policy_difference(tmp_path):
    """A flipped byte in a tensor record: validate finds the CRC mismatch, load maps the record
    without reading it; a flipped byte in the document: both refuse."""
    import test_hostile_archives as H

    ep = torch.export.export(H._Small(), (torch.ones(2, 4),))
    buf = io.BytesIO()
    pt2serde.save(ep, buf)
    base = buf.getvalue()
    reader = ArchiveReader(base)
    for name, policy in (("archive/data/weights/weight_0", True), ("archive/models/model.json", False)):
        entry = reader.entry(name)
        data = bytearray(base)
        at = entry.data_offset + (5 if policy else data[entry.data_offset:].index(b'"major"') + 2)
        data[at] ^= 0x01  # weight: a bit of a float; document: a bit of the key "major"
        v, l = validate_verdict(bytes(data)), load_verdict(bytes(data))
        assert any(x.startswith(contents.CRC_MISMATCH) for x in v), v
        assert classify(name, v, l) == ("policy:payload CRC" if policy else "agree"), (v, l)
