"""Archives written by real PyTorch releases load with pt2serde and reproduce the recorded outputs.

``compat-corpus/<release>/`` holds what ``torch.export.save`` (or ``package_pt2``)
of each release wrote, with example inputs and eager outputs. Every archive must load
with ``pt2serde.load`` / ``load_all`` and every recorded case must match, except where
the manifest records that the program was already wrong when it was written.
"""

import os

import pytest

import pt2serde
from compat import CORPUS_DIR, PT2_LAYOUT_WRITERS, WRITERS, check_cases, program_record, programs, register_corpus_ops, writer_self_check


@pytest.fixture(scope="module", autouse=True)
def _corpus_ops():
    register_corpus_ops()


def _load(path, model_name, extra):
    rec_loader_is_multi = model_name != "model"
    if rec_loader_is_multi:
        return pt2serde.load_all(path, extra_files=extra)[model_name]
    return pt2serde.load(path, extra_files=extra)


@pytest.mark.parametrize("writer,name", programs(WRITERS), ids=lambda v: v)
def test_archive_from_release_loads_and_matches(writer, name):
    """Every archive of every release: the PT2 layout (2.8+) and the plain zip of 2.5 - 2.7,
    schema 7.3 to 8.20 (older documents go through the upgraders)."""
    problems = check_cases(_load, writer, name)
    known_wrong = writer_self_check(writer, name)
    if known_wrong:
        # the writer's export was already wrong; loading must still work, and the
        # mismatches must be exactly the ones recorded at writing time
        assert problems, f"expected the recorded writer-side mismatches {known_wrong}"
    else:
        assert problems == []


def test_two_program_archive_loads_with_load_all():
    for writer in PT2_LAYOUT_WRITERS:
        if (writer, "two_programs") not in programs((writer,)):
            continue
        rec = program_record(writer, "two_programs")
        programs_loaded = pt2serde.load_all(os.path.join(CORPUS_DIR, writer, rec["file"]))
        assert sorted(programs_loaded) == sorted(rec["models"])
        with pytest.raises(pt2serde.SerializeError, match=r"program 'model' is not in the archive; it holds \['decoder', 'encoder'\]"):
            pt2serde.load(os.path.join(CORPUS_DIR, writer, rec["file"]))
