"""``pt2serde demo``: a small real model through pt2serde and PyTorch, side by side.

This lives outside the ``pt2serde`` package on purpose: it calls PyTorch's own
serializer and loader to compare against them, which the library itself never does.
"""

from __future__ import annotations

import json
import time

__all__ = ["run_demo"]


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
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(100, 32)
            self.blocks = torch.nn.ModuleList([Block(32) for _ in range(2)])
            self.head = torch.nn.Linear(32, 10)

        def forward(self, tokens):
            h = self.embed(tokens)
            for block in self.blocks:
                h = block(h)
            return self.head(h).softmax(-1)

    torch.manual_seed(0)
    model = TinyNet().eval()
    tokens = torch.randint(0, 100, (2, 16))
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(model, (tokens,), dynamic_shapes={"tokens": {0: batch}})
    return model, tokens, ep


def _best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_demo() -> int:
    import torch
    from torch._export.serde.serialize import serialize as torch_serialize  # the oracle, for comparison only

    import pt2serde

    print("pt2serde demo: a 2-block transformer-style model with a dynamic batch dimension")
    model, tokens, ep = _build()
    nodes = sum(1 for n in ep.graph.nodes if n.op == "call_function")
    params = sum(p.numel() for p in model.parameters())
    print(f"  exported: {nodes} call nodes, {params:,} parameters, torch {torch.__version__}")

    ours = pt2serde.serialize(ep)
    theirs = torch_serialize(ep)
    same = json.loads(ours.exported_program) == json.loads(theirs.exported_program)
    print(f"  document: {len(ours.exported_program):,} bytes, schema {pt2serde.SCHEMA_VERSION[0]}.{pt2serde.SCHEMA_VERSION[1]}")
    print(f"  identical to PyTorch's serializer output: {'yes' if same else 'NO'}")

    t_ours = _best_of(lambda: pt2serde.serialize(ep))
    t_theirs = _best_of(lambda: torch_serialize(ep))
    print(f"  serialize: pt2serde {t_ours * 1e3:.1f} ms, PyTorch {t_theirs * 1e3:.1f} ms "
          f"(pt2serde is {t_theirs / t_ours:.1f}x faster)")
    return 0 if same else 1
