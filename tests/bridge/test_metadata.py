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


def test_module_stack_entries_are_read_once_and_never_shared(monkeypatch):
    """Entries recur in the stacks of every submodule's nodes: each is split once (a bounded
    memo of short entries), each node gets its own stack, and a malformed entry is refused
    every time it is met."""
    import pytest

    from pt2serde.bridge import metadata
    from pt2serde.errors import SerializeError

    monkeypatch.setattr(metadata, "_ENTRIES", {})
    monkeypatch.setattr(metadata, "_ENTRIES_SIZE", 8)
    splits = []
    real = metadata.split_module_stack_entry
    monkeypatch.setattr(metadata, "split_module_stack_entry", lambda item: splits.append(item) or real(item))
    outer, inner = "L__self___enc,enc,m.Enc", "L__self___enc_lin,enc.lin,torch.nn.Linear"
    a = metadata.decode_metadata(None, {"nn_module_stack": outer})["nn_module_stack"]
    b = metadata.decode_metadata(None, {"nn_module_stack": f"{outer};{inner}"})["nn_module_stack"]
    assert a == {"L__self___enc": ("enc", "m.Enc")}
    assert b == {"L__self___enc": ("enc", "m.Enc"), "L__self___enc_lin": ("enc.lin", "torch.nn.Linear")}
    assert splits == [outer, inner] and a is not b
    for _ in range(2):
        with pytest.raises(SerializeError, match="comma-separated fields"):
            metadata.decode_metadata(None, {"nn_module_stack": f"{outer};no,commas"})
    for i in range(20):
        metadata.decode_metadata(None, {"nn_module_stack": f"k{i},p{i},T"})
    assert len(metadata._ENTRIES) <= 8
    long = f"k,{'p' * 2000},T"
    assert metadata.decode_metadata(None, {"nn_module_stack": long})["nn_module_stack"] == {"k": ("p" * 2000, "T")}
    assert long not in metadata._ENTRIES
