"""``load`` leaves no garbage of its own for the cyclic collector: the decoded document, the
archive and the expression parser are freed by reference counting when ``load`` returns.

Reference cycles (an archive and its storages pointing at each other, a recursive closure
holding the loading context, a parser keeping its own bound method) kept the whole decoded
document (about 12k objects for EfficientNet-B0) alive until the next collection, which
``load`` then paid for when it re-enabled the collector, and which held the memory until then.
What remains in the collector's garbage after a load is PyTorch's own (its verifier's
recursive closures)."""

from __future__ import annotations

import gc
import types

import torch

import pt2serde
from pt2serde.bridge.expr import ExprParser


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.register_buffer("steps", torch.zeros(()))

    def forward(self, x):
        return self.lin(x).relu().reshape(-1) + self.steps


def _ours(obj: object) -> bool:
    """Whether ``obj`` is pt2serde's: an instance of one of its classes, its function or a
    method bound to its object, or a closure cell holding one of those."""
    if isinstance(obj, types.CellType):
        try:
            obj = obj.cell_contents
        except ValueError:
            return False
    if isinstance(obj, types.MethodType):
        obj = obj.__self__
    if isinstance(obj, types.FunctionType):
        return "pt2serde" in obj.__code__.co_filename
    return type(obj).__module__.startswith("pt2serde")


def _garbage_after(load) -> list:
    """The objects that only the cyclic collector frees, made by one call of ``load``."""
    gc.collect()
    enabled, flags = gc.isenabled(), gc.get_debug()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        ep = load()
        gc.collect()
        found = [o for o in gc.garbage if _ours(o)]
    finally:
        gc.set_debug(flags)
        gc.garbage.clear()
        if enabled:
            gc.enable()
    assert isinstance(ep, torch.export.ExportedProgram)
    return found


def test_load_leaves_no_cyclic_garbage(tmp_path):
    x = torch.randn(6, 4)
    ep = torch.export.export(_Net(), (x,), dynamic_shapes=({0: torch.export.Dim("n", min=2, max=64)},))
    path = tmp_path / "net.pt2"
    torch.export.save(ep, path)
    pt2serde.load(path)  # first use: lazy imports and generated decoders are not the load's
    found = _garbage_after(lambda: pt2serde.load(path))
    assert found == [], f"{len(found)} objects of pt2serde's left to the collector: {found[:5]}"
    # the check sees such garbage: one object of pt2serde's in a cycle with itself
    def with_cycle():
        parser = ExprParser()
        parser.me = parser
        return pt2serde.load(path)
    assert [type(o).__name__ for o in _garbage_after(with_cycle)] == ["ExprParser"]

def test_deserialize_leaves_no_cyclic_garbage(tmp_path):
    ep = torch.export.export(_Net(), (torch.randn(6, 4),))
    artifact = pt2serde.serialize(ep)
    pt2serde.deserialize(artifact)
    found = _garbage_after(lambda: pt2serde.deserialize(artifact))
    assert found == [], f"{len(found)} objects of pt2serde's left to the collector: {found[:5]}"
