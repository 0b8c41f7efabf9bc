"""Torchbind objects (``torch._C.ScriptObject``) load by default, through the safe torchbind reader (issue 15).

PyTorch writes a torchbind constant as ``torch._C._pickle_save(obj)``: a ``torch.save``-like zip
whose ``data.pkl`` TorchScript's pickler wrote. pt2serde reads it with
:mod:`pt2serde.format.torchbind` (the rule ``load`` and ``validate`` share) and rebuilds the object
through its registered class's ``__setstate__`` (:mod:`pt2serde.bridge.torchbind`). Here: the
format facts, objects equal to PyTorch's own loader's, PyTorch's torchbind serialization tests
(``TestDeserialize.test_custom_obj*``, ``TestSerializeCustomClass.test_custom_class``) ported in
our own code over archives in both directions, and the refusals that depend on the process
(classes not registered, states ``__setstate__`` rejects). Hostile records of every kind are in
``tests/hostile/cases_torchbind.py`` (every entry point).
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import warnings
from pathlib import Path

import pytest
import torch

import pt2serde
from artifacts import saved, torch_saved
from pt2serde.bridge.torchbind import load_torchbind
from pt2serde.format.torchbind import describe_torchbind
from pt2serde.format.torchsave import pickle_globals

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hostile"))
import cases_torchbind as T  # noqa: E402

pytestmark = pytest.mark.torchbind_test_lib  # needs libtorchbind_test.so (tests/conftest.py)


@pytest.fixture(autouse=True)
def _classes():
    from torch.testing._internal.torchbind_impls import init_torchbind_implementations

    init_torchbind_implementations()


def _c():
    return torch.classes._TorchScriptTesting


def _objects():
    queue = _c()._TensorQueue(torch.zeros(2))
    queue.push(torch.ones(3))
    queue.push(torch.arange(4.0).reshape(2, 2))
    return {
        "_Foo": _c()._Foo(10, 20),  # build_intlist
        "_StackString": _c()._StackString(["a", "b"]),  # restore_type_tag(list, "List[str]")
        "_PickleTester": _c()._PickleTester([1, 2]),
        "_ContainsTensor": _c()._ContainsTensor(torch.arange(6.0).reshape(2, 3)[:, 1:]),  # a strided view
        "_TensorQueue": queue,  # tensors in a tuple of tuples, build_tensorlist
        "_ElementwiseInterpreter": _c()._ElementwiseInterpreter(),  # an empty list, None and a dict
    }


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.stride() == b.stride() and torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# ============================================================= what PyTorch writes


def test_what_pytorch_writes_for_a_torchbind_object():
    """A zip laid out like torch.save's (data.pkl, byteorder, version, a record per storage) whose
    pickle names the class, then only TorchScript's list builders and torch.save's tensor globals."""
    from pt2serde.format.archive import ArchiveReader

    data = bytes(torch._C._pickle_save(_c()._Foo(10, 20)))
    reader = ArchiveReader(memoryview(data))
    assert sorted(reader.names()) == ["archive/.data/serialization_id", "archive/byteorder", "archive/data.pkl",
                                      "archive/version"]
    pkl = reader.read("archive/data.pkl")
    assert pkl.startswith(b"\x80\x02c__torch__.torch.classes._TorchScriptTesting\n_Foo\n") and pkl.endswith(b"bq\x03.")
    assert pickle_globals(data) == ["__torch__.torch.classes._TorchScriptTesting._Foo", "torch.jit._pickle.build_intlist"]
    data = bytes(torch._C._pickle_save(_objects()["_TensorQueue"]))
    reader = ArchiveReader(memoryview(data))
    assert {"archive/data/0", "archive/data/1", "archive/data/2"} <= set(reader.names())
    assert pickle_globals(data) == ["__torch__.torch.classes._TorchScriptTesting._TensorQueue",
                                    "torch._utils._rebuild_tensor_v2", "torch.FloatStorage", "collections.OrderedDict",
                                    "torch.jit._pickle.build_tensorlist"]


@pytest.mark.parametrize("name", ["_ContainsTensor", "_ElementwiseInterpreter", "_Foo", "_PickleTester",
                                  "_StackString", "_TensorQueue"])
def test_rebuilt_objects_equal_pytorchs(name):
    """The torch-free walk names the class; the rebuilt object has the state TorchScript's own
    unpickler gives (tensors equal, strides kept), and so does the same object read again."""
    obj = _objects()[name]
    data = bytes(torch._C._pickle_save(obj))
    described = describe_torchbind(memoryview(data), "record")
    assert described.qualified_name == obj._type().qualified_name()
    ours = load_torchbind(memoryview(data), what="record")
    theirs = torch._C._pickle_load_obj(data)
    assert isinstance(ours, torch.ScriptObject) and ours._type() == theirs._type()
    assert _same(ours.__getstate__(), theirs.__getstate__())
    again = load_torchbind(memoryview(bytes(torch._C._pickle_save(ours))), what="record")
    assert _same(again.__getstate__(), theirs.__getstate__())


# ============================================================= programs, both directions


class _Lifted(torch.nn.Module):
    """TestDeserialize.test_custom_obj: one lifted object used twice."""

    def __init__(self):
        super().__init__()
        self.attr = _c()._Foo(10, 20)

    def forward(self, x):
        a = torch.ops._TorchScriptTesting.takes_foo(self.attr, x)
        b = torch.ops._TorchScriptTesting.takes_foo(self.attr, a)
        return x + b


class _TupleOut(_Lifted):
    """TestDeserialize.test_custom_obj_tuple_out: an op returning a tuple."""

    def forward(self, x):
        a = torch.ops._TorchScriptTesting.takes_foo_tuple_return(self.attr, x)
        return torch.ops._TorchScriptTesting.takes_foo(self.attr, a[0] + a[1])


class _ListOut(_Lifted):
    """TestDeserialize.test_custom_obj_list_out: an op returning a list."""

    def forward(self, x):
        a = torch.ops._TorchScriptTesting.takes_foo_list_return(self.attr, x)
        return x + torch.ops._TorchScriptTesting.takes_foo(self.attr, a[0] + a[1] + a[2])


class _WithTensors(torch.nn.Module):
    """Two objects whose states hold tensors (a strided view, a list of tensors)."""

    def __init__(self):
        super().__init__()
        self.holder = _c()._ContainsTensor(torch.arange(6.0).reshape(2, 3)[:, 1:])
        self.queue = _objects()["_TensorQueue"]

    def forward(self, x):
        # (not self.queue.size(): a call_torchbind node returning an int loads neither in PyTorch
        # 2.13 nor in pt2serde, "Node redefined name call_torchbind": a graph gap, not the record's)
        return x + self.holder.get().sum() + torch.ops._TorchScriptTesting.queue_size(self.queue)


def _torch_load(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.export.load(io.BytesIO(data))


@pytest.mark.parametrize("module", [_Lifted, _TupleOut, _ListOut, _WithTensors], ids=lambda m: m.__name__)
def test_archives_load_by_default_in_both_directions(module):
    """PyTorch's archive loads with pt2serde by default and ours with PyTorch: the same objects
    (states equal to PyTorch's own load) and the same outputs as the exported program."""
    m = module()
    x = torch.ones(2, 2) if module is _WithTensors else torch.ones(2, 3)
    ep = torch.export.export(m, (x,), strict=False)
    expected = ep.module()(x)
    for data in (torch_saved(ep), saved(ep)):
        ours, theirs = pt2serde.load(io.BytesIO(data)), _torch_load(data)
        objects = {k: v for k, v in theirs.constants.items() if isinstance(v, torch.ScriptObject)}
        assert objects and objects.keys() == {k for k, v in ours.constants.items() if isinstance(v, torch.ScriptObject)}
        for k, v in objects.items():
            assert ours.constants[k]._type() == v._type()
            assert _same(ours.constants[k].__getstate__(), v.__getstate__()), k
        torch.testing.assert_close(ours.module()(x), expected)
        torch.testing.assert_close(theirs.module()(x), expected)


def test_serialize_deserialize_by_default():
    """The in-memory pair: a ``script_object`` payload entry is the same TorchScript record."""
    ep = torch.export.export(_WithTensors(), (torch.ones(2, 2),), strict=False)
    loaded = pt2serde.deserialize(pt2serde.serialize(ep))
    for k in ("holder", "queue"):
        assert _same(loaded.constants[k].__getstate__(), ep.constants[k].__getstate__())
    torch.testing.assert_close(loaded.module()(torch.ones(2, 2)), ep.module()(torch.ones(2, 2)))


# ============================================================= refusals


def _archive_with(record: bytes) -> bytes:
    ep = torch.export.export(_Lifted(), (torch.ones(2, 3),), strict=False)
    data = saved(ep)
    return T.H.rewrite(data, replace={T.RECORD: record})


def test_a_class_this_process_has_not_registered():
    data = T._record(T._object(T._intlist(1, 2), "pt2serde_nowhere", "_Missing"))
    with pytest.raises(pt2serde.SerializeError, match=(
            r"^record archive/data/constants/custom_obj_0: torchbind class __torch__\.torch\.classes\.pt2serde_nowhere"
            r"\._Missing is not registered in this process; load the library that defines it \(torch\.ops\."
            r"load_library\) before loading this program$")):
        pt2serde.load(io.BytesIO(_archive_with(data)))


def test_a_state_the_class_rejects():
    """The class's own ``__setstate__`` converts the state to the types it declares: a list of
    strings for ``_Foo`` (which takes a list of ints) is refused, naming the record."""
    data = T._record(T._object(T._global("torch.jit._pickle", "restore_type_tag") + b"(](" + T._text("a")
                               + b"e" + T._text("List[str]") + b"tR"))
    with pytest.raises(pt2serde.SerializeError, match=(
            r"^record archive/data/constants/custom_obj_0: __torch__\.torch\.classes\._TorchScriptTesting\._Foo\."
            r"__setstate__ refused the state: ")):
        pt2serde.load(io.BytesIO(_archive_with(data)))


def test_a_payload_entry_naming_another_class():
    ep = torch.export.export(_Lifted(), (torch.ones(2, 3),), strict=False)
    record = bytes(torch._C._pickle_save(_c()._PickleTester([1])))
    with pytest.raises(pt2serde.SerializeError, match=(
            r"^constants entry 'attr': the entry says class '__torch__\.torch\.classes\._TorchScriptTesting\._Foo' "
            r"but its record holds __torch__\.torch\.classes\._TorchScriptTesting\._PickleTester$")):
        load_torchbind(record, what="constants entry 'attr'", class_fqn=ep.constants["attr"]._type().qualified_name())


@pytest.mark.parametrize("case", [c for c in T.CASES if c.validate is None], ids=lambda c: c.name)
def test_hostile_records_with_the_class_registered(case, tmp_path, monkeypatch):
    """The hostile records, refused the same with ``_Foo`` registered in this process, and
    TorchScript's unpickler never called (it runs only with allow_pickle=True)."""
    def explode(*args, **kwargs):
        raise AssertionError("an unpickler was called")

    monkeypatch.setattr(torch._C, "_pickle_load_obj", explode)
    monkeypatch.setattr(pickle, "loads", explode)
    marker = tmp_path / "pwned"
    with pytest.raises(pt2serde.SerializeError, match=case.refused):
        pt2serde.load(io.BytesIO(case.build(str(marker))))
    assert not marker.exists()


def test_allow_pickle_keeps_the_old_path_only_for_refused_forms(tmp_path, monkeypatch):
    """With allow_pickle=True a record the safe reader accepts is still read by it; only one it
    refuses goes to TorchScript's own (C++) unpickler. That unpickler resolves names itself and
    does not call Python globals: it refuses ``posix.system`` too (a fact, pinned here)."""
    calls = []
    real = torch._C._pickle_load_obj
    monkeypatch.setattr(torch._C, "_pickle_load_obj", lambda data: calls.append(1) or real(data))
    ep = torch.export.export(_Lifted(), (torch.ones(2, 3),), strict=False)
    loaded = pt2serde.load(io.BytesIO(saved(ep)), allow_pickle=True)
    assert calls == [] and loaded.constants["attr"].__getstate__() == ep.constants["attr"].__getstate__()
    marker = tmp_path / "pwned"
    hostile = T._record(T._object(T._call("posix", "system", f"touch {marker}")))
    with pytest.raises(pt2serde.SerializeError, match=(
            r"(?s)^record archive/data/constants/custom_obj_0: unpickling failed: RuntimeError: .*"
            r"Unknown type name 'posix\.system'")):
        pt2serde.load(io.BytesIO(_archive_with(hostile)), allow_pickle=True)
    assert calls == [1] and not marker.exists()
    with pytest.raises(pt2serde.SerializeError, match=r"(?s)^constants entry 'x': unpickling failed: RuntimeError: "):
        load_torchbind(hostile, what="constants entry 'x'", allow_pickle=True)  # a payload entry: the same
    assert calls == [1, 1] and not marker.exists()


class _QueueSize(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q = _c()._TensorQueue(torch.zeros(2))

    def forward(self, x):
        self.q.push(x)
        return x + self.q.size()


def test_a_method_call_returning_an_int_loads():
    """A ``call_torchbind`` node whose single output is a symbolic int named like the node itself
    (``self.q.size()``): that node is the value, no ``getitem`` is added. PyTorch 2.13's reader adds
    one under the same name and fails ("Node redefined name call_torchbind_1")."""
    from torch._higher_order_ops.torchbind import enable_torchbind_tracing

    with enable_torchbind_tracing():
        ep = torch.export.export(_QueueSize(), (torch.ones(2),), strict=False)
    for loaded in (pt2serde.deserialize(pt2serde.serialize(ep)), pt2serde.load(io.BytesIO(saved(ep)))):
        nodes = {n.name: n for n in loaded.graph.nodes}
        assert [n.op for n in loaded.graph.nodes].count("call_function") == 3  # no getitem added
        assert nodes["call_torchbind_1"].meta["val"] == 1
    with pytest.raises(RuntimeError, match="error when deserializing the saved file"):  # from the lint error
        torch.export.load(io.BytesIO(saved(ep)))


def test_every_class_libtorch_registers_is_one_of_its_own():
    """``LIBTORCH_NAMESPACES`` (refused without allow_pickle: their ``__setstate__`` trust their
    state) covers every torchbind class a bare process of this torch has: a release that adds
    a namespace fails here."""
    import subprocess

    code = ("import re, torch\n"
            "print(sorted({m.group(1) for s in torch._C._jit_get_custom_class_schemas()\n"
            "              for m in [re.search(r'__torch__\\.torch\\.classes\\.(\\w+)\\.', str(s))] if m}))")
    found = eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: S307 - a list of names we print
                                check=True).stdout)
    from pt2serde.format.torchbind import LIBTORCH_NAMESPACES

    assert found and set(found) <= LIBTORCH_NAMESPACES


def test_the_bridge_reader_runs_the_walk_first():
    """``deserialize`` reaches ``load_torchbind`` without ``payload_entries``: it runs the same walk,
    so a big-endian record (which the walk does not describe) is refused there too."""
    out = io.BytesIO()
    with T.ArchiveWriter(out) as w:
        w.add("archive/data.pkl", T._object(T._tensor(6)) + b".")
        w.add("archive/byteorder", b"big")
        w.add("archive/data/0", T._FLOATS)
    big = out.getvalue()
    with pytest.raises(pt2serde.SerializeError, match=r"^rec: big-endian torch\.save records are not described"):
        load_torchbind(big, what="rec")
