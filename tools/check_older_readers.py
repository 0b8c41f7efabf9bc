#!/usr/bin/env python
"""Do archives pt2serde writes for an older reader load in that real PyTorch release?

Writer mode (this project's venv): saves every corpus program (``tests/programs.py``,
export form) with ``pt2serde.save(..., target_schema=T)`` for each target, plus its inputs
and the original program's outputs (``torch.save``, read back with ``weights_only=True``).
Reader mode (run with the Python of a venv holding the old release): loads each archive
with that release's ``torch.export.load``, runs the recorded inputs and compares outputs.
Driver mode runs both and prints the matrix::

    .venv/bin/python tools/check_older_readers.py \\
        --reader 2.9.1=/path/to/venv-2.9.1/bin/python --reader 2.8.0=/path/to/venv-2.8.0/bin/python

Old releases are not installed by the project: make throwaway venvs, e.g.
``python3 -m venv /tmp/venv-2.9.1 && /tmp/venv-2.9.1/bin/pip install torch==2.9.1``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# the schema each release reads best
TARGET_OF_RELEASE = {"2.8.0": (8, 8), "2.9.1": (8, 14), "2.13.0": (8, 20), "2.14.1": (8, 20)}


def write(out_dir: str, targets: list[tuple[int, int]]) -> dict:
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    sys.path.insert(0, os.path.join(ROOT, "src"))
    import torch

    import pt2serde
    from checks import program_inputs
    from programs import CORPUS, exported

    report: dict = {}
    for name, program in CORPUS.items():
        if "export" not in program.forms or not program.compare_outputs:
            continue
        row = report[name] = {}
        try:
            ep = exported(name, "export")
            args, kwargs = program_inputs(name)
            with torch.no_grad():  # on a copy: stateful programs must be saved with their initial state
                expected = copy.deepcopy(ep).module()(*program_inputs(name)[0], **program_inputs(name)[1])
        except Exception as e:  # noqa: BLE001 - recorded in the report
            row["*"] = f"export failed: {type(e).__name__}: {e}"
            continue
        needs = "custom ops" if program.setup is not None else None
        for target in targets:
            key = f"{target[0]}.{target[1]}"
            folder = os.path.join(out_dir, key)
            os.makedirs(folder, exist_ok=True)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pt2serde.save(ep, os.path.join(folder, f"{name}.pt2"), target_schema=target)
                torch.save({"args": args, "kwargs": kwargs, "expected": expected, "setup": needs},
                           os.path.join(folder, f"{name}.io.pt"))
                row[key] = "written"
            except pt2serde.SerializeError as e:
                row[key] = f"refused: {str(e).split(' - at ')[0]}"
            except Exception as e:  # noqa: BLE001
                row[key] = f"write failed: {type(e).__name__}: {e}"
    return report


def read(folder: str) -> dict:
    """Reader mode: runs under the old release."""
    import torch

    results = {}
    for file in sorted(os.listdir(folder)):
        if not file.endswith(".pt2"):
            continue
        name = file[:-4]
        try:
            io_rec = torch.load(os.path.join(folder, f"{name}.io.pt"), weights_only=True)
        except Exception as e:  # noqa: BLE001
            results[name] = f"inputs unreadable: {type(e).__name__}"
            continue
        if io_rec.get("setup"):
            try:  # register the corpus' custom ops / test classes in this release too
                sys.path.insert(0, os.path.join(ROOT, "tests"))
                import programs

                programs.CORPUS[name].setup()
            except Exception as e:  # noqa: BLE001
                results[name] = f"not run: the test corpus' setup fails on this release ({type(e).__name__})"
                continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ep = torch.export.load(os.path.join(folder, file))
        except Exception as e:  # noqa: BLE001
            results[name] = f"load: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
            continue
        try:
            with torch.no_grad():
                got = ep.module()(*io_rec["args"], **io_rec["kwargs"])
        except Exception as e:  # noqa: BLE001
            results[name] = f"run: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
            continue
        try:
            results[name] = "ok" if _same(got, io_rec["expected"]) else "mismatch"
        except Exception as e:  # noqa: BLE001
            results[name] = f"compare: {type(e).__name__}"
    return {"torch": torch.__version__, "results": results}


def _same(got, expected) -> bool:
    import torch

    a = torch.utils._pytree.tree_leaves(got)
    b = torch.utils._pytree.tree_leaves(expected)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            if x.shape != y.shape or x.dtype != y.dtype:
                return False
            if x.is_meta or y.is_meta:
                continue
            if x.is_floating_point() or x.is_complex():
                if not torch.allclose(x, y, rtol=1e-4, atol=1e-5, equal_nan=True):
                    return False
            elif not torch.equal(x, y):
                return False
        elif not (x == y or (x != x and y != y)):
            return False
    return True




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/pt2serde-older-readers")
    parser.add_argument("--reader", action="append", default=[], help="RELEASE=PYTHON of a venv with that release")
    parser.add_argument("--read", help=argparse.SUPPRESS)  # reader mode (internal)
    args = parser.parse_args()
    if args.read:
        print(json.dumps(read(args.read)))
        return 0
    readers = dict(r.split("=", 1) for r in args.reader)
    targets = sorted({TARGET_OF_RELEASE[r] for r in readers}, reverse=True)
    written = write(args.out, targets)
    matrix: dict = {}
    for release, python in readers.items():
        key = "{}.{}".format(*TARGET_OF_RELEASE[release])
        proc = subprocess.run([python, __file__, "--read", os.path.join(args.out, key)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"reader {release} failed:\n{proc.stderr[-2000:]}")
            return 1
        matrix[release] = json.loads(proc.stdout.strip().splitlines()[-1])["results"]
    releases = list(readers)
    counts = {r: sum(v == "ok" for v in matrix[r].values()) for r in releases}
    print("program".ljust(32) + "".join(f"{r} (schema {'.'.join(map(str, TARGET_OF_RELEASE[r]))})".ljust(44) for r in releases))
    for name, row in written.items():
        cells = []
        for r in releases:
            key = "{}.{}".format(*TARGET_OF_RELEASE[r])
            state = row.get(key, row.get("*", "?"))
            cells.append((matrix[r].get(name, state) if state == "written" else state)[:42])
        print(name.ljust(32) + "".join(c.ljust(44) for c in cells))
    print()
    for r in releases:
        key = "{}.{}".format(*TARGET_OF_RELEASE[r])
        written_n = sum(row.get(key) == "written" for row in written.values())
        refused = sum(str(row.get(key, "")).startswith("refused") for row in written.values())
        print(f"PyTorch {r}: {counts[r]} ok of {written_n} written ({refused} refused: features the release lacks)")
    with open(os.path.join(args.out, "matrix.json"), "w") as f:
        json.dump({"written": written, "read": matrix}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
