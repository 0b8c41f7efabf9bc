"""Helpers shared by the benchmarks: model builders, timers, memory readings, tables."""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import math
import os
import resource
import statistics
import subprocess
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


def alternating_medians(fns: dict[str, Callable[[], object]], repeat: int = 5) -> dict[str, float]:
    """Median seconds of each function, run in turn (a, b, a, b, ...) so that a slow spell of a
    busy machine falls on every side alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def geomean(values: list[float]) -> float:
    """Geometric mean of positive ratios (nan for none)."""
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


def run_python(code: str, *args: str, timeout: float = 900) -> dict:
    """Run ``python -c code args...`` in a fresh process with this repository's ``src`` and
    ``bench`` importable; return the JSON object it prints on its last line of output."""
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [os.path.join(here, "..", "src"), here, os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"child process failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_start() -> dict[str, int]:
    """Start a peak-RSS reading: reset VmHWM where the kernel allows it; see ``peak_growth``."""
    reset = reset_peak_rss()
    return {"reset": reset, "rss": proc_status()["VmRSS"],
            "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def peak_growth(start: dict[str, int]) -> int:
    """Bytes the peak RSS rose above the RSS at ``peak_start``: from VmHWM when it could be reset,
    else the rise of getrusage's maxrss (which misses a peak below an earlier one)."""
    if start["reset"]:
        return proc_status()["VmHWM"] - start["rss"]
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - start["maxrss"]


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


# --------------------------------------------------------------- GPT-2 style models


class GPT2Block(torch.nn.Module):
    """A GPT-2 transformer block: pre-LayerNorm causal self-attention and a GELU MLP."""

    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.ln_1 = torch.nn.LayerNorm(d_model)
        self.c_attn = torch.nn.Linear(d_model, 3 * d_model)
        self.c_proj = torch.nn.Linear(d_model, d_model)
        self.ln_2 = torch.nn.LayerNorm(d_model)
        self.c_fc = torch.nn.Linear(d_model, 4 * d_model)
        self.mlp_proj = torch.nn.Linear(4 * d_model, d_model)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).reshape(b, t, c))
        h = torch.nn.functional.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")
        return x + self.mlp_proj(h)


class GPT2(torch.nn.Module):
    """The GPT-2 architecture (token and position embeddings, ``n_layer`` blocks, final
    LayerNorm, language-model head tied to the token embedding)."""

    def __init__(self, n_layer: int = 12, d_model: int = 768, n_head: int = 12,
                 vocab: int = 50257, n_ctx: int = 1024) -> None:
        super().__init__()
        self.wte = torch.nn.Embedding(vocab, d_model)
        self.wpe = torch.nn.Embedding(n_ctx, d_model)
        self.h = torch.nn.ModuleList(GPT2Block(d_model, n_head) for _ in range(n_layer))
        self.ln_f = torch.nn.LayerNorm(d_model)
        self.lm_head = torch.nn.Linear(d_model, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as in GPT-2

    def forward(self, idx):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


GPT2_SIZES = {
    # name: (n_layer, d_model, n_head) - the vocabulary and context are GPT-2's
    "gpt2-124M": (12, 768, 12),
    "gpt2-1B": (18, 2048, 16),
}


def gpt2_program(size: str, seq: int = 8) -> torch.export.ExportedProgram:
    """An exported GPT-2 of the given size, weights drawn cheaply (uniform, seeded)."""
    n_layer, d_model, n_head = GPT2_SIZES[size]
    with torch.device("meta"):
        model = GPT2(n_layer, d_model, n_head)
    model = model.to_empty(device="cpu")
    model.lm_head.weight = model.wte.weight  # to_empty keeps the tie, but make it explicit
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.02, 0.02, generator=gen)
    model.eval()
    return torch.export.export(model, (torch.zeros(1, seq, dtype=torch.long),))


def weights_bytes(ep: torch.export.ExportedProgram) -> int:
    """Bytes of distinct storages in the state dict and constants."""
    seen = {}
    for t in [*ep.state_dict.values(), *ep.constants.values()]:
        if isinstance(t, torch.Tensor):
            s = t.untyped_storage()
            seen[s.data_ptr()] = max(seen.get(s.data_ptr(), 0), s.nbytes())
    return sum(seen.values())


def proc_status() -> dict[str, int]:
    """Memory counters of this process from /proc/self/status, in bytes (VmRSS, VmHWM, RssAnon...)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def reset_peak_rss() -> bool:
    """Make VmHWM equal to the current RSS (Linux >= 4.0), so later peaks measure growth."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ------------------------------------------------------- PyTorch's own work inside a load


@contextlib.contextmanager
def torch_work_timer():
    """Time the PyTorch calls a ``load``/``deserialize`` cannot avoid, whoever drives them: the
    ``ExportedProgram`` constructor (code generation of the graph module, the verifier), FX graph
    building (``create_node``) and fake-tensor creation (``FakeTensor.__new__``, or pt2serde's
    ``FakeMaker.make``, which makes the same tensors more cheaply, and the meta
    ``torch.empty``/``empty_strided`` behind it), and the ``ShapeEnv``'s symbolic ints. Yields a
    dict whose ``"s"`` holds the seconds spent inside them (nested calls counted once). The
    floor of any PyTorch-format loader is that time: ``PyTorch's load / it`` bounds the ratio."""
    from torch._subclasses.fake_tensor import FakeTensor
    from torch.export.exported_program import ExportedProgram
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    from pt2serde.bridge.fakes import FakeMaker

    spent = {"s": 0.0}
    depth = [0]

    def timed(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            if depth[0]:
                return fn(*args, **kwargs)
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent["s"] += time.perf_counter() - t0
                depth[0] -= 1
        return inner

    patched = [
        (ExportedProgram, "__init__"), (torch.fx.Graph, "create_node"), (FakeTensor, "__new__"),
        (torch, "empty"), (torch, "empty_strided"), (ShapeEnv, "create_symintnode"),
        (ShapeEnv, "create_symfloatnode"), (ShapeEnv, "create_symboolnode"), (FakeMaker, "make"),
    ]
    saved = [(owner, name, owner.__dict__[name]) for owner, name in patched]
    try:
        for owner, name, fn in saved:
            wrapped = timed(fn.__func__ if isinstance(fn, staticmethod) else fn)
            setattr(owner, name, staticmethod(wrapped) if isinstance(fn, staticmethod) else wrapped)
        yield spent
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def torch_floor(fn: Callable[[], object], repeat: int = 3) -> tuple[float, float]:
    """``(seconds of fn, seconds of PyTorch's own work inside it)``, from its fastest run."""
    best = (math.inf, 0.0)
    for _ in range(repeat):
        gc.collect()
        with torch_work_timer() as spent:
            t0 = time.perf_counter()
            fn()
            total = time.perf_counter() - t0
        best = min(best, (total, spent["s"]))
    return best
