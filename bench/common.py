"""Helpers shared by the benchmarks: model builders, timers, memory readings, tables."""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from typing import Callable

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))


class DeepMLP(torch.nn.Module):
    """``layers`` x (Linear -> ReLU -> + 1): three call nodes per layer in the export IR."""

    def __init__(self, layers: int, width: int = 16) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(layers))

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x)) + 1
        return x


def deep_program(nodes: int, *, dynamic: bool, decomposed: bool = False) -> torch.export.ExportedProgram:
    """An exported program with about ``nodes`` call nodes (dynamic batch dimension if asked)."""
    layers = max(1, nodes // 3)
    dims = {"x": {0: torch.export.Dim("batch", min=2, max=1024)}} if dynamic else None
    ep = torch.export.export(DeepMLP(layers), (torch.randn(4, 16),), dynamic_shapes=dims)
    return ep.run_decompositions() if decomposed else ep


def call_nodes(ep: torch.export.ExportedProgram) -> int:
    return sum(1 for n in ep.graph.nodes if n.op == "call_function")


def best_of(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """The fastest of ``repeat`` timed runs, in seconds (the least disturbed by the machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def median_of(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rss_bytes() -> int:
    """Resident set size of this process right now (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])
