"""``python -m pt2serde ...``: the same command line as the ``pt2serde`` script."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
