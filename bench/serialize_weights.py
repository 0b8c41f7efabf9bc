"""In-memory ``serialize``/``deserialize`` of GPT-2 124M with its weights, pt2serde and PyTorch in one run.

The model is ``transformers.GPT2LMHeadModel(GPT2Config())`` with random weights (seeded;
nothing is downloaded), exported with ``torch.export``. Each side round-trips through
its own in-memory artifact: ``pt2serde.serialize``/``deserialize`` against
``torch._export.serde.serialize.serialize``/``deserialize``. The two are timed
alternately (median of N) and the ratio printed (PyTorch / pt2serde: above 1 means
pt2serde is faster). A second pass, untimed, reports memory: the peak of Python's own
allocations (tracemalloc) while serializing, which is what the copies of the weight
bytes cost (the artifact itself included), and the peak RSS growth of each call.
Usage::

    .venv/bin/python bench/serialize_weights.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
import warnings
from typing import Callable

from common import proc_status, reset_peak_rss, table, weights_bytes


def gpt2_124m():
    """GPT-2 124M from ``transformers.GPT2Config()``, random weights, exported."""
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()
    ids = torch.zeros(1, 8, dtype=torch.long)
    return torch.export.export(model, (ids,), kwargs={"use_cache": False})


def alternate(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each function, the functions run in turn (after one warm-up each)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(repeat + 1):
        for name, fn in fns.items():
            gc.collect()
            t0 = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - t0
            del result
            if round_:
                times[name].append(elapsed)
    return {name: statistics.median(ts) for name, ts in times.items()}


def python_peak(fn: Callable[[], object]) -> int:
    """Peak bytes of Python allocations made while ``fn`` runs (its result included)."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak


def rss_growth(fn: Callable[[], object]) -> int | None:
    """Peak RSS growth while ``fn`` runs (its result included); None where Linux cannot tell."""
    gc.collect()
    if not reset_peak_rss():
        return None
    before = proc_status()["VmRSS"]
    result = fn()
    growth = proc_status()["VmHWM"] - before
    del result
    return growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    from torch._export.serde.serialize import deserialize as torch_deserialize  # the baseline
    from torch._export.serde.serialize import serialize as torch_serialize

    import pt2serde

    ep = gpt2_124m()
    weights = weights_bytes(ep)
    ours_art, theirs_art = pt2serde.serialize(ep), torch_serialize(ep)
    ours_size = sum(len(b) for b in (ours_art.state_dict, ours_art.constants, ours_art.example_inputs))
    theirs_size = sum(len(b) for b in (theirs_art.state_dict, theirs_art.constants, theirs_art.example_inputs))
    print(f"GPT-2 124M: {weights / 2**20:.0f} MiB of weights; payloads: pt2serde {ours_size / 2**20:.0f} MiB, "
          f"PyTorch {theirs_size / 2**20:.0f} MiB", flush=True)

    import torch

    ids = torch.arange(8).view(1, 8)
    logits = lambda program: program.module()(ids, use_cache=False)[0]  # noqa: E731
    same = torch.equal(logits(pt2serde.deserialize(ours_art)), logits(ep))
    print(f"same outputs after the round trip: {'yes' if same else 'NO'}", flush=True)
    ser = alternate({"ours": lambda: pt2serde.serialize(ep), "theirs": lambda: torch_serialize(ep)}, args.repeat)
    de = alternate({"ours": lambda: pt2serde.deserialize(ours_art),
                    "theirs": lambda: torch_deserialize(theirs_art)}, args.repeat)
    rows = [[what, f"{t['ours'] * 1e3:.0f} ms", f"{t['theirs'] * 1e3:.0f} ms", f"{t['theirs'] / t['ours']:.2f}x"]
            for what, t in (("serialize", ser), ("deserialize", de))]
    print(table(rows, ["in memory, with weights", "pt2serde", "PyTorch 2.13", "speed-up"]), flush=True)
    print()

    mib = lambda n: "n/a" if n is None else f"{n / 2**20:.0f} MiB ({n / weights:.2f}x weights)"  # noqa: E731
    rows = [
        ["serialize: Python heap peak", mib(python_peak(lambda: pt2serde.serialize(ep))),
         mib(python_peak(lambda: torch_serialize(ep)))],
        ["serialize: peak RSS growth", mib(rss_growth(lambda: pt2serde.serialize(ep))),
         mib(rss_growth(lambda: torch_serialize(ep)))],
        ["deserialize: peak RSS growth", mib(rss_growth(lambda: pt2serde.deserialize(ours_art))),
         mib(rss_growth(lambda: torch_deserialize(theirs_art)))],
    ]
    print(table(rows, ["memory (artifact / program included)", "pt2serde", "PyTorch 2.13"]))


if __name__ == "__main__":
    main()
