"""pt2serde.bridge.metadata: node metadata survives save and load (both writers, both readers).

stack_trace, nn_module_stack and source_fn_stack of every corpus program are compared node by
node in ``test_roundtrip.py`` (``checks.same_graph``)."""

import io

import torch

import pt2serde
from artifacts import saved, torch_loaded, torch_saved


def test_from_node_metadata_survives():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x):
            return torch.nn.functional.silu(self.lin(x)).softmax(-1)

    ep = torch.export.export(M(), (torch.randn(2, 4),)).run_decompositions()
    nodes = [n for n in ep.graph.nodes if n.op == "call_function"]
    assert any(n.meta.get("from_node") for n in nodes)

    def described(program):
        return [(n.name, n.op, str(n.target), [s.to_dict() for s in n.meta.get("from_node", [])])
                for n in program.graph.nodes if n.op == "call_function"]

    want = described(ep)
    assert described(pt2serde.load(io.BytesIO(saved(ep)))) == want
    assert described(pt2serde.load(io.BytesIO(torch_saved(ep)))) == want
    assert described(torch_loaded(saved(ep))) == want
