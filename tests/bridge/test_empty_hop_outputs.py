"""A higher-order op whose subgraph returns nothing: ``with torch.no_grad(): self.p.add_(x)``
in a module export keeps as a ``wrap_with_set_grad_enabled`` subgraph (the module defined in
a function, as in a factory or a test). The file stores the node without outputs; export's
value for it is ``()``, which the verifier requires. ``torch.export.load`` (2.13) refuses its
own file (``Node.meta wrap_with_set_grad_enabled is missing val field``); pt2serde loads it,
and the program updates the parameter as the exported one does.
"""

from __future__ import annotations

import io

import pytest
import torch

import pt2serde
from pt2serde.format.archive import ArchiveReader
from pt2serde.format.check import check_archive


def _program() -> torch.export.ExportedProgram:
    class UpdatesInPlace(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = torch.nn.Parameter(torch.ones(3))

        def forward(self, x):
            with torch.no_grad():
                self.p.add_(x)
            return x * 2

    return torch.export.export(UpdatesInPlace(), (torch.ones(3),))


@pytest.mark.parametrize("writer", ["pt2serde", "torch"])
def test_subgraph_returning_nothing_loads_and_runs(writer: str) -> None:
    ep = _program()
    hop = [n for n in ep.graph.nodes if n.target is torch.ops.higher_order.wrap_with_set_grad_enabled]
    assert hop and hop[0].meta["val"] == ()  # what export makes, and what the file must give back
    buf = io.BytesIO()
    (pt2serde.save if writer == "pt2serde" else torch.export.save)(ep, buf)
    data = buf.getvalue()
    assert not [p for p in check_archive(ArchiveReader(data)) if p.level == "error"]

    loaded = pt2serde.load(io.BytesIO(data))
    node = next(n for n in loaded.graph.nodes if n.target is torch.ops.higher_order.wrap_with_set_grad_enabled)
    assert node.meta["val"] == ()
    x = torch.arange(3.0)
    expected_module, got_module = ep.module(), loaded.module()
    assert torch.equal(got_module(x), expected_module(x))
    assert torch.equal(got_module.p, expected_module.p)  # the update ran: ones + x
    assert torch.equal(got_module.p, torch.ones(3) + x)
    # decomposing gives what decomposing a fresh export gives (torch's own behaviour after that)
    targets = [str(n.target) for n in loaded.run_decompositions().graph.nodes if n.op == "call_function"]
    assert targets == [str(n.target) for n in _program().run_decompositions().graph.nodes if n.op == "call_function"]
