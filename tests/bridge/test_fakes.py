"""pt2serde.bridge.fakes: the FakeTensors of a loaded program are what torch's constructor makes
(checked against torch.export.load and against the constructor itself), and the constructor is
used wherever the fast path cannot be trusted."""

import warnings

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorConfig, FakeTensorMode
from torch.fx.experimental.symbolic_shapes import ShapeEnv
from torch.multiprocessing.reductions import StorageWeakRef

import pt2serde
from pt2serde.bridge import fakes
from pt2serde.bridge.fakes import FakeMaker

CPU = torch.device("cpu")


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.register_buffer("scale", torch.ones(3, dtype=torch.float64))

    def forward(self, x, idx):
        y = self.lin(x).relu()
        return y.t().contiguous()[..., :2] * self.scale[0], idx.to(torch.int8) + 1


def _state(t: torch.Tensor) -> tuple:
    """Everything a user or torch can read off a FakeTensor's own state."""
    return (type(t), t.shape, t.stride(), t.storage_offset(), t.dtype, t.device, t.requires_grad, t.is_leaf,
            torch._C._dispatch_keys(t), {k: v for k, v in t.__dict__.items() if k != "fake_mode"})


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_loaded_values_match_torch_load(tmp_path, dynamic):
    shapes = {"x": {0: torch.export.Dim("b", min=3)}, "idx": {0: torch.export.Dim("b", min=3)}} if dynamic else None
    ep = torch.export.export(_Net(), (torch.randn(5, 4), torch.arange(5)), dynamic_shapes=shapes)
    path = tmp_path / "net.pt2"
    torch.export.save(ep, path)
    ours, theirs = pt2serde.load(path), torch.export.load(path)
    pairs = [(a.meta.get("val"), b.meta.get("val")) for a, b in zip(ours.graph.nodes, theirs.graph.nodes, strict=True)]
    tensors = [(a, b) for a, b in pairs if isinstance(b, torch.Tensor)]
    assert len(tensors) >= 8
    for a, b in tensors:
        if dynamic:  # SymInt sizes: compared as expressions
            assert [str(s) for s in a.shape] == [str(s) for s in b.shape]
            assert _state(a)[3:] == _state(b)[3:]
        else:
            assert _state(a) == _state(b)
    assert len({id(a.fake_mode) for a, _ in tensors}) == 1
    # every value has its own storage, as torch's loader gives it (no value aliases another)
    storages = {StorageWeakRef(a.untyped_storage()) for a, _ in tensors}
    assert len(storages) == len(tensors) == len({StorageWeakRef(b.untyped_storage()) for _, b in tensors})
    got = ours.module()(torch.randn(4, 4), torch.arange(4)) if dynamic else ours.module()(torch.randn(5, 4), torch.arange(5))
    assert got[0].shape[-1] == 2


def _mode(**kw) -> FakeTensorMode:
    return FakeTensorMode(allow_non_fake_inputs=True, **kw)


@pytest.mark.parametrize("unsafe_ptr", [True, False], ids=["ptr-warns", "ptr-raises"])
def test_fast_tensors_equal_the_constructors(unsafe_ptr):
    mode = _mode()
    mode._allow_unsafe_data_ptr_access = unsafe_ptr
    maker = FakeMaker(mode)
    cases = [((2, 3), torch.float32, False), ((7,), torch.int64, False), ((1, 4, 4), torch.bfloat16, True),
             ((0, 5), torch.bool, False), ((), torch.float64, True)]
    for device in (CPU, torch.device("meta")):
        for sizes, dtype, grad in cases:
            elem = torch.empty(sizes, dtype=dtype, device="meta")
            fast = maker.make(elem, device, grad)
            slow = FakeTensor(mode, torch.empty(sizes, dtype=dtype, device="meta"), device)
            if grad:
                slow.requires_grad_(True)
            assert _state(fast) == _state(slow)
            assert fast.fake_mode is mode
            assert StorageWeakRef(fast.untyped_storage()) != StorageWeakRef(maker.make(elem.clone(), device, grad).untyped_storage())
        assert maker._templates[device] is not None  # the probe trusted the fast path
    # data-pointer access behaves as the constructor's tensors do: a warning or an error
    fast = maker.make(torch.empty(3, device="meta"), CPU, False)
    slow = FakeTensor(mode, torch.empty(3, device="meta"), CPU)
    always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # torch warns once per process otherwise
    for t in (fast, slow):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            try:
                t.untyped_storage().data_ptr()
                outcome = "ok"
            except RuntimeError:
                outcome = "raised"
        t.outcome = (outcome, bool(seen))
    torch.set_warn_always(always)
    assert fast.outcome == slow.outcome == (("ok", True) if unsafe_ptr else ("raised", False))
    # and the tensors compute in the mode like the constructor's
    with mode:
        assert _state(fast @ fast.unsqueeze(1)) == _state(slow @ slow.unsqueeze(1))


def test_symbolic_sizes():
    shape_env = ShapeEnv()
    mode = _mode(shape_env=shape_env)
    s = shape_env.create_unbacked_symint()
    maker = FakeMaker(mode)
    maker.make(torch.empty(2, device="meta"), CPU, False)  # the probe
    fast = maker.make(torch.empty((s, 3), device="meta"), CPU, False)
    slow = FakeTensor(mode, torch.empty((s, 3), device="meta"), CPU)
    assert str(fast.shape) == str(slow.shape) and _state(fast)[3:] == _state(slow)[3:]


def test_the_constructor_is_used_where_the_fast_path_is_not_trusted(monkeypatch):
    # a torch whose constructor stores something that depends on the tensor: the probe sees the
    # two constructor-made tensors differ and leaves every tensor to the constructor
    construct = FakeMaker._construct

    def constructor_with_more(self, elem, device, requires_grad):
        fake = construct(self, elem, device, requires_grad)
        fake.elem_dtype = elem.dtype
        return fake

    monkeypatch.setattr(FakeMaker, "_construct", constructor_with_more)
    maker = FakeMaker(_mode())
    for dtype in (torch.float32, torch.int32, torch.float16):
        t = maker.make(torch.empty(2, dtype=dtype, device="meta"), CPU, False)
        assert t.elem_dtype == dtype
    assert maker._templates == {CPU: None}
    assert "no device yet" in repr(maker)


def test_debug_and_exporting_use_the_constructor(monkeypatch):
    maker = FakeMaker(_mode())
    maker.make(torch.empty(2, device="meta"), CPU, False)
    assert maker._templates[CPU] is not None
    monkeypatch.setattr(FakeTensorConfig, "debug", True)
    assert hasattr(maker.make(torch.empty(2, device="meta"), CPU, False), "_debug_trace")
    monkeypatch.setattr(FakeTensorConfig, "debug", False)
    called = []
    construct = FakeMaker._construct
    monkeypatch.setattr(FakeMaker, "_construct", lambda self, *a: called.append(1) or construct(self, *a))
    maker._exporting = lambda: True
    maker.make(torch.empty(2, device="meta"), CPU, False)
    assert called == [1]
    # a maker first used while exporting trusts nothing, even afterwards
    later = FakeMaker(_mode())
    later._exporting = lambda: True
    later.make(torch.empty(2, device="meta"), CPU, False)
    assert later._templates == {CPU: None}
    assert fakes.__all__ == ["FakeMaker"]
