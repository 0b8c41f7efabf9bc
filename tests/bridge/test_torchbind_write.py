"""Writing custom objects (issue 15): torchbind objects whose state holds fake tensors, in
TorchScript's format (readable by ``torch.export.load`` and by pt2serde), and a
``SerializeError`` naming the constant for every object ``save``/``serialize`` cannot write."""

import io
import pickletools
import zipfile

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

import pt2serde
from pt2serde.bridge import object_records

pytestmark = pytest.mark.torchbind_test_lib  # needs libtorchbind_test.so (tests/conftest.py)


@pytest.fixture(scope="module", autouse=True)
def _torchbind_classes():
    from torch.testing._internal.torchbind_impls import init_torchbind_implementations

    init_torchbind_implementations()


def _ns():
    return torch.classes._TorchScriptTesting


class HoldsObject(torch.nn.Module):
    def __init__(self, obj):
        super().__init__()
        self.custom_obj = obj

    def forward(self, x):
        return x + self.custom_obj.get()


def _fake_program():
    """PyTorch's spec program: a ``_ContainsTensor`` built under FakeTensorMode (its tensor a
    transposed, offset view, so strides and offset are not the defaults), torchbind tracing on."""
    from torch._higher_order_ops.torchbind import enable_torchbind_tracing

    with FakeTensorMode():
        m = HoldsObject(_ns()._ContainsTensor(torch.rand(4, 3).t()[1:]))
    with enable_torchbind_tracing():
        return torch.export.export(m, (torch.zeros(2, 4),), strict=False)


def _geometry(t):
    return t.dtype, tuple(t.shape), t.stride(), t.storage_offset(), t.requires_grad


def _saved(ep) -> bytes:
    buf = io.BytesIO()
    pt2serde.save(ep, buf)
    return buf.getvalue()


# ======================================================================= fake tensors


def test_pytorch_writes_fake_tensors_only_in_its_in_memory_format():
    """What PyTorch 2.13 writes: ``torch.export.save`` cannot (TorchScript's pickler copies
    every storage's bytes); ``serialize`` pickles the object with ``torch.save`` and each fake
    tensor as a call of ``torch._export.serde.serialize._reconstruct_fake_tensor`` on its
    TensorMeta JSON, which only an unpickler that runs code reads."""
    from torch._export.serde.serialize import serialize

    ep = _fake_program()
    with pytest.raises(RuntimeError, match="different device"):
        torch.export.save(ep, io.BytesIO())
    with zipfile.ZipFile(io.BytesIO(serialize(ep).constants)) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    globals_ = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert "torch._export.serde.serialize _reconstruct_fake_tensor" in globals_
    assert "torch ScriptObject" in globals_


def test_fake_tensor_state_written_as_a_meta_storage():
    """The record is TorchScript's format: the fake tensor a storage at location "meta" with
    an empty data record; ``torch._C._pickle_load_obj`` (what torch.export.load calls) rebuilds
    it as a meta tensor with the fake tensor's dtype, sizes, strides and offset."""
    with FakeTensorMode():
        obj = _ns()._ContainsTensor(torch.rand(4, 3).t()[1:])
    state, _ = obj.__getstate__()
    data = object_records.torchscript_bytes(obj)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.read("archive/data/0") == b""
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(z.read("archive/data.pkl"))]
    assert ("BINUNICODE", "meta") in ops
    back = torch._C._pickle_load_obj(data).__getstate__()[0]
    assert back.device.type == "meta"
    assert _geometry(back) == _geometry(state)
    assert back.untyped_storage().nbytes() == state.untyped_storage().nbytes()


@pytest.mark.parametrize("make", [
    lambda: _ns()._Foo(3, 4),
    lambda: _ns()._StackString(["a", "b"]),
    lambda: _ns()._TensorQueue(torch.arange(6.0).reshape(2, 3).t()),
    lambda: _ns()._ContainsTensor(torch.arange(12, dtype=torch.int32).reshape(3, 4)[1:]),
], ids=["int-list", "str-list", "nested-tuples", "int-tensor-view"])
def test_our_torchscript_writer_agrees_with_torchs_pickler(make):
    """Differential: on states TorchScript's pickler can write, the records our writer makes
    read back (through TorchScript's own reader) to the same state as the pickler's."""
    obj = make()
    state, name = obj.__getstate__()
    state_type = obj._get_method("__getstate__").schema.returns[0].type
    ours = object_records._TorchScriptPickle().dumps(obj._type().qualified_name(), state, state_type)
    theirs = bytes(torch._C._pickle_save(obj))
    a, b = (torch._C._pickle_load_obj(d).__getstate__() for d in (ours, theirs))
    assert a[1] == b[1] == name
    assert repr(a[0]) == repr(b[0])
    for x, y in zip(torch.utils._pytree.tree_leaves(a[0]), torch.utils._pytree.tree_leaves(b[0])):
        if isinstance(x, torch.Tensor):
            assert _geometry(x) == _geometry(y) and torch.equal(x, y)


def test_real_and_fake_tensors_in_one_state():
    """A fake tensor beside real ones, views sharing storages (a ``_TensorQueue`` state written
    as its ``__getstate__`` type declares): one record per storage, real bytes kept."""
    queue = _ns()._TensorQueue(torch.zeros(1))
    state_type = queue._get_method("__getstate__").schema.returns[0].type
    with FakeTensorMode():
        fake = torch.rand(4, 3)
    real = torch.arange(6.0).reshape(2, 3)
    state = (("init_tensor", fake), ("queue", [fake[1:].t(), real, real[1:]]))
    data = object_records._TorchScriptPickle().dumps(queue._type().qualified_name(), state, state_type)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert sorted(n for n in z.namelist() if n.startswith("archive/data/")) == ["archive/data/0", "archive/data/1"]
        assert z.read("archive/data/0") == b"" and z.read("archive/data/1") == real.numpy().tobytes()
    (_, init), (_, items) = torch._C._pickle_load_obj(data).__getstate__()[0]
    assert init.device.type == "meta" and _geometry(init) == _geometry(fake)
    # the class's own __setstate__ clones what it queues: only dtype and sizes survive it
    assert items[0].device.type == "meta" and _geometry(items[0])[:2] == _geometry(fake[1:].t())[:2]
    assert torch.equal(items[1], real) and torch.equal(items[2], real[1:])


def test_torch_export_load_reads_our_archive():
    ep = _fake_program()
    state = ep.constants["custom_obj"].__getstate__()[0]
    loaded = torch.export.load(io.BytesIO(_saved(ep)))
    back = loaded.constants["custom_obj"].__getstate__()[0]
    assert back.device.type == "meta"  # TorchScript's format keeps no device for a tensor without data
    assert _geometry(back) == _geometry(state)


@pytest.mark.parametrize("way", ["save/load", "serialize/deserialize"])
def test_pt2serde_reads_the_fake_tensor_back(way):
    """pt2serde rebuilds the object around a fake tensor of the loading program's fake mode,
    with the dtype, sizes, strides, offset of the one written (on device meta)."""
    ep = _fake_program()
    state = ep.constants["custom_obj"].__getstate__()[0]
    if way == "save/load":
        loaded = pt2serde.load(io.BytesIO(_saved(ep)))
    else:
        loaded = pt2serde.deserialize(pt2serde.serialize(ep))
    obj = loaded.constants["custom_obj"]
    assert obj._type().qualified_name() == ep.constants["custom_obj"]._type().qualified_name()
    back = obj.__getstate__()[0]
    assert isinstance(back, FakeTensor) and back.device.type == "meta"
    assert _geometry(back) == _geometry(state)
    assert isinstance(obj.get(), FakeTensor)


# ============================================================= only SerializeError


class _RefusesState(torch._opaque_base.OpaqueBase):
    def __init__(self):
        self.x = 1

    def __getstate__(self):
        raise ValueError("this object keeps its state to itself")


class _HoldsLambda(torch._opaque_base.OpaqueBase):
    def __init__(self):
        self.f = lambda: 1


def _opaque(cls):
    from torch._library.opaque_object import is_opaque_type, register_opaque_type

    if not is_opaque_type(cls):
        register_opaque_type(cls, typ="reference")
    return cls()


def _program_with_constant(value):
    ep = torch.export.export(torch.nn.ReLU(), (torch.ones(2),))
    ep.constants["bad"] = value
    return ep


@pytest.mark.parametrize("make, cls, reason", [
    (lambda: _opaque(_RefusesState), "test_torchbind_write._RefusesState",
     "ValueError: this object keeps its state to itself"),
    (lambda: _opaque(_HoldsLambda), "test_torchbind_write._HoldsLambda", "AttributeError: Can't pickle local object"),
    (lambda: _ns()._ContainsTensor(torch.empty(2, device="meta")),
     "__torch__.torch.classes._TorchScriptTesting._ContainsTensor", "NotImplementedError: Cannot copy out of meta tensor"),
], ids=["getstate-raises", "not-picklable", "torchscript-pickler-fails"])
@pytest.mark.parametrize("way", ["save", "serialize"])
def test_unwritable_constant_is_a_serialize_error(make, cls, reason, way):
    ep = _program_with_constant(make())
    with pytest.raises(pt2serde.SerializeError) as info:
        _saved(ep) if way == "save" else pt2serde.serialize(ep)
    assert str(info.value).startswith(f"cannot write constant 'bad' of class {cls}: {reason}")


def test_old_target_whole_constants_record_is_a_serialize_error():
    """For PyTorch 2.8 the constants are one ``torch.save`` record: its failure names the program."""
    ep = _program_with_constant(_opaque(_HoldsLambda))
    with pytest.raises(pt2serde.SerializeError, match=r"^cannot write the constants of program 'model' "
                                                       r"\(one torch.save record\): AttributeError: Can't pickle"):
        pt2serde.save(ep, io.BytesIO(), target_schema=(8, 8))


def test_validate_accepts_what_load_reads_by_default(tmp_path):
    """The archive with a fake tensor in a torchbind state: ``validate``'s walk (the rule load
    shares, format/torchbind) accepts its data-less meta storage, and ``load`` reads it by default."""
    from pt2serde.format import check, contents

    path = tmp_path / "fake.pt2"
    path.write_bytes(_saved(_fake_program()))
    problems = check.check_archive(contents.open_archive(str(path)))
    assert [p for p in problems if p.level == "error"] == []
    assert isinstance(pt2serde.load(str(path)).constants["custom_obj"].get(), FakeTensor)
