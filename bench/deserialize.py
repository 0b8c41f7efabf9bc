"""Deserialize documents of about 1k and 5k nodes with pt2serde and with PyTorch, in one run.

Each side decodes the document its own serializer wrote for the same program (the two
documents are identical JSON) into a runnable ExportedProgram. Prints both times (best
of N), nodes per second and the ratio, and the floor: the time pt2serde's deserialize spends
inside PyTorch calls any loader of the format makes (the ``ExportedProgram`` constructor, FX
node creation, fake tensors, symbolic ints: ``common.torch_work_timer``), with the ratio no
loader can pass (PyTorch's time / that floor). ``--profile`` adds where pt2serde's time goes.
Usage::

    .venv/bin/python bench/deserialize.py [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import warnings

from common import best_of, call_nodes, deep_program, table, torch_floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--profile", action="store_true", help="print where pt2serde spends its time")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    from torch._export.serde.serialize import deserialize as torch_deserialize  # the baseline
    from torch._export.serde.serialize import serialize as torch_serialize

    import pt2serde

    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for dynamic in (False, True):
            ep = deep_program(size, dynamic=dynamic)
            ours_art, theirs_art = pt2serde.serialize(ep), torch_serialize(ep)
            ours = best_of(lambda: pt2serde.deserialize(ours_art), args.repeat)
            theirs = best_of(lambda: torch_deserialize(theirs_art), max(1, args.repeat - 1), warmup=0)
            _, floor = torch_floor(lambda: pt2serde.deserialize(ours_art), args.repeat)
            n = call_nodes(ep)
            rows.append([
                f"{n} nodes{' (dynamic batch)' if dynamic else ''}",
                f"{ours * 1e3:.0f} ms ({n / ours:,.0f}/s)",
                f"{theirs * 1e3:.0f} ms ({n / theirs:,.0f}/s)",
                f"{theirs / ours:.1f}x",
                f"{floor * 1e3:.0f} ms ({floor / ours:.0%})",
                f"{theirs / floor:.1f}x",
            ])
            print(table(rows, ["program", "pt2serde", "PyTorch 2.13", "speed-up", "PyTorch work in pt2serde",
                               "bound"]), flush=True)
            print()
            if args.profile:
                prof = cProfile.Profile()
                prof.runcall(pt2serde.deserialize, ours_art)
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(18)
                print("\n".join(out.getvalue().splitlines()[:40]))


if __name__ == "__main__":
    main()
