"""Serialize graphs of about 1k and 5k nodes with pt2serde and with PyTorch, in one run.

Prints both times (best of N) and the ratio. Both produce the same JSON document
(checked here too). Usage::

    .venv/bin/python bench/serialize.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import warnings

from common import best_of, call_nodes, deep_program, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="1000,5000")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    from torch._export.serde.serialize import serialize as torch_serialize  # the baseline

    import pt2serde

    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for dynamic in (False, True):
            ep = deep_program(size, dynamic=dynamic)
            ours = best_of(lambda: pt2serde.serialize(ep), args.repeat)
            theirs = best_of(lambda: torch_serialize(ep), max(2, args.repeat // 2))
            same = json.loads(pt2serde.serialize(ep).exported_program) == json.loads(
                torch_serialize(ep).exported_program
            )
            rows.append([
                f"{call_nodes(ep)} nodes{' (dynamic batch)' if dynamic else ''}",
                f"{ours * 1e3:.1f} ms", f"{theirs * 1e3:.1f} ms", f"{theirs / ours:.1f}x",
                "yes" if same else "NO",
            ])
            print(table(rows, ["program", "pt2serde", "PyTorch 2.13", "speed-up", "same document"]), flush=True)
            print()


if __name__ == "__main__":
    main()
