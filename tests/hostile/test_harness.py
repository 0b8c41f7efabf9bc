"""The harness of ``test_every_entry_point.py`` sees what a fresh process per case saw.

Each case runs in a fork of a warmed-up server (``everywhere._serve``); these tests give it a
stand-in for a library bug (``harness_probe.py``) and check that what that bug does late, or
to the server, still fails the case: at exit, in a finalizer, in a background process that
outlives the case's process, or by writing to the server's answer pipe.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import everywhere  # noqa: E402


def _probe_case() -> everywhere.Case:
    return everywhere.Case("harness probe", lambda marker: everywhere.base_archive("small"), None,
                           imports=("harness_probe",))


@pytest.mark.parametrize("action", ["atexit", "finalizer", "background"])
def test_code_that_runs_late_leaves_its_marker(action, tmp_path):
    (tmp_path / "probe.txt").write_text(action)
    case = _probe_case()
    report = everywhere.run_case(case, tmp_path)
    assert "the marker file appeared: code from the file ran" in everywhere.problems_of(case, report)


def test_an_answer_written_into_the_servers_pipe_fails_the_case_and_the_server_is_replaced(tmp_path):
    case = _probe_case()
    (tmp_path / "forged").mkdir()
    (tmp_path / "forged" / "probe.txt").write_text("answer")
    with pytest.raises(AssertionError, match="answer is not its own"):
        everywhere.run_case(case, tmp_path / "forged")
    report = everywhere.run_case(case, tmp_path / "next")  # a fresh server: answers in turn again
    assert everywhere.problems_of(case, report) == []


def test_the_case_process_has_the_thread_settings_of_a_fresh_one(tmp_path):
    import torch

    report = everywhere.run_case(_probe_case(), tmp_path)
    assert report["steps"]["load"]["outcome"] == "ok"
    assert report["threads"] == torch.get_num_threads()
