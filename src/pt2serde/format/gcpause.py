"""Pausing Python's garbage collector around the bulk object building of ``save``, ``load`` and ``pt2serde view`` (no torch)."""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building or walking large object graphs.

    Encoding or decoding a program allocates many small objects, which triggers full
    collections over torch's large heap again and again; pausing collection for the
    duration makes (de)serialization several times faster. Nested and concurrent uses
    are counted, so the collector is re-enabled only when the last one leaves, and only
    if it was enabled to begin with.
    """
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
