"""The ``pt2serde`` command line (``inspect``, ``validate``, ``diff``, ``demo``): torch-free.

Built on :mod:`pt2serde.format` alone; ``demo`` is the one command that needs torch, and
imports it from the separate ``pt2serde_demo`` package.
"""

from .commands import main

__all__ = ["main"]
