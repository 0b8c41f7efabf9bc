"""A stand-in for a library bug, for testing the harness itself (``test_harness.py``).

Imported by a case's process (``Case.imports``), it makes ``pt2serde.load`` of a case
directory holding ``probe.txt`` do what that file names, in the forms code from a file
could take that run late or reach the harness: at exit, in a finalizer, in a background
process, or by writing to the case server's answer pipe. Its code is compiled when it is
imported (before any step), so only the marker file tells that it ran.
"""

from __future__ import annotations

import atexit
import os

import pt2serde

_load = pt2serde.load
_kept: list = []


class _Finalized:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __del__(self) -> None:
        os.system(f"touch {self.marker}")


def _probe(path) -> None:
    folder = os.path.dirname(str(path))
    what = os.path.join(folder, "probe.txt")
    if os.path.basename(str(path)) != "case.pt2" or not os.path.exists(what):
        return
    marker = os.path.join(folder, "pwned")
    with open(what) as f:
        action = f.read().strip()
    if action == "atexit":
        atexit.register(os.system, f"touch {marker}")
    elif action == "finalizer":
        _kept.append(_Finalized(marker))  # freed only when the interpreter shuts down
    elif action == "background":
        os.system(f"(sleep 1; touch {marker}) &")
    elif action == "answer":
        with open(f"/proc/{os.getppid()}/fd/1", "w") as f:
            f.write("exit 0\n")


def load(f, *args, **kwargs):
    _probe(f)
    return _load(f, *args, **kwargs)


pt2serde.load = load
