"""``pt2serde demo``: a small real model through pt2serde and PyTorch, side by side.

This lives outside the ``pt2serde`` package on purpose: it calls PyTorch's own saver and
loader (``torch.export.save`` / ``torch.export.load``) to compare against them, which the
library itself never does.

What it does: exports a small transformer-style model with a dynamic batch dimension,
saves it with ``pt2serde.save``, loads it back with ``pt2serde.load`` *and* with
``torch.export.load``, checks that every loaded program computes what the eager model
computes (at the export batch size and another one), reads PyTorch's own archive with
``pt2serde.load`` too, prints what ``pt2serde inspect`` prints for the archive, and
times save and load against PyTorch (best of several runs, same process).

Without torch, or with a torch outside the supported range, it prints one line saying
what to install and returns 2 (no traceback).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

__all__ = ["run_demo"]

REPEAT = 5


def _build():
    import torch

    class Block(torch.nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.norm = torch.nn.LayerNorm(dim)
            self.fc1 = torch.nn.Linear(dim, 4 * dim)
            self.fc2 = torch.nn.Linear(4 * dim, dim)

        def forward(self, x):
            return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm(x))))

    class TinyNet(torch.nn.Module):
        def __init__(self, vocab: int = 1000, dim: int = 128, depth: int = 4) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(vocab, dim)
            self.blocks = torch.nn.ModuleList([Block(dim) for _ in range(depth)])
            self.head = torch.nn.Linear(dim, 10)

        def forward(self, tokens):
            h = self.embed(tokens)
            for block in self.blocks:
                h = block(h)
            return self.head(h).softmax(-1)

    torch.manual_seed(0)
    model = TinyNet().eval()
    tokens = torch.randint(0, 1000, (2, 16))
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(model, (tokens,), dynamic_shapes={"tokens": {0: batch}})
    return model, tokens, ep


def _best_of(fn, repeat: int = REPEAT) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def run_demo() -> int:
    """Run the demo; the exit code (0 passed, 1 outputs differ, 2 torch missing or unsupported)."""
    import warnings

    from pt2serde.bridge.torch_check import require_torch

    warnings.filterwarnings("ignore")  # before torch: it warns at import when numpy is absent
    try:
        torch = require_torch()
    except ImportError as e:
        print(f"pt2serde demo: {e}", file=sys.stderr)
        return 2

    import pt2serde
    from pt2serde.cli.term import Style, colour_wanted, human_bytes, table
    from pt2serde.format.contents import open_archive
    from pt2serde.cli.inspection import inspect_archive, render

    s = Style(colour_wanted(sys.stdout))
    print(s.bold("pt2serde demo") + ": a 4-block transformer-style model with a dynamic batch dimension")
    t0 = time.perf_counter()
    model, tokens, ep = _build()
    params = sum(p.numel() for p in model.parameters())
    nodes = sum(1 for n in ep.graph.nodes if n.op == "call_function")
    print(f"  exported in {time.perf_counter() - t0:.1f} s: {nodes} call nodes, {params:,} parameters, "
          f"torch {torch.__version__}")

    with tempfile.TemporaryDirectory(prefix="pt2serde-demo-") as tmp:
        ours = os.path.join(tmp, "tinynet.pt2")
        theirs = os.path.join(tmp, "tinynet_torch.pt2")
        pt2serde.save(ep, ours, extra_files={"README.txt": "saved by pt2serde demo"})
        torch.export.save(ep, theirs)
        print(f"  saved: {human_bytes(os.path.getsize(ours))} with pt2serde, "
              f"{human_bytes(os.path.getsize(theirs))} with torch.export.save")

        # ---------------------------------------------------------------- correctness
        loaded = {
            "pt2serde.load(pt2serde archive)": pt2serde.load(ours),
            "torch.export.load(pt2serde archive)": torch.export.load(ours),
            "pt2serde.load(PyTorch archive)": pt2serde.load(theirs),
        }
        ok = True
        rows = []
        with torch.no_grad():
            for batch in (2, 5):
                x = torch.randint(0, 1000, (batch, 16))
                expected = model(x)
                for label, program in loaded.items():
                    got = program.module()(x)
                    diff = (got - expected).abs().max().item()
                    good = torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
                    ok &= good
                    rows.append([label, f"batch {batch}", f"max abs diff {diff:.2g}",
                                 s.green("match") if good else s.red("MISMATCH")])
        print(s.bold("outputs against the eager model"))
        print("\n".join(table(rows)))

        # ---------------------------------------------------------------- inspect
        print()
        print(s.bold("pt2serde inspect tinynet.pt2") + s.dim("  (no torch needed; reads only the JSON records)"))
        archive = open_archive(ours)
        print(render(inspect_archive(archive), s))
        archive.close()

        # ---------------------------------------------------------------- timings
        # saves go to files no loaded program maps: the programs loaded above hold read leases on
        # theirs, and PyTorch's writer rewriting such a file on the main thread is interrupted
        # once (README: "When the file changes under a loaded program")
        save_ours, save_theirs = os.path.join(tmp, "timing.pt2"), os.path.join(tmp, "timing_torch.pt2")
        t_save_ours = _best_of(lambda: pt2serde.save(ep, save_ours))
        t_save_theirs = _best_of(lambda: torch.export.save(ep, save_theirs))
        t_load_ours = _best_of(lambda: pt2serde.load(ours))
        t_load_theirs = _best_of(lambda: torch.export.load(ours))
        print()
        print(s.bold("timings") + s.dim(f"  (best of {REPEAT}, this process, same program)"))
        rows = [["", "pt2serde", "PyTorch", ""]]
        for label, a, b in (("save", t_save_ours, t_save_theirs), ("load", t_load_ours, t_load_theirs)):
            rows.append([label, _ms(a), _ms(b), f"{b / a:.1f}x {'faster' if b >= a else 'slower'}"])
        print("\n".join(table(rows, align="lrrl")))
    print()
    print(s.green("demo passed: every loaded program matches the eager model") if ok
          else s.red("demo FAILED: outputs differ"))
    return 0 if ok else 1
