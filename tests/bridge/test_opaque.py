"""Opaque objects load without ``allow_pickle`` (issue 15): ``format/opaque_pickle`` reads the
record with the restricted pickle machine, ``bridge/opaque`` rebuilds it from the classes
registered in this process. Archives of PyTorch 2.13 load with pt2serde by default and ours
with ``torch.export.load``; ``allow_pickle=True`` still unpickles. Hostile records:
``tests/hostile/cases_opaque.py`` (every entry point); their payloads are proven live here."""

from __future__ import annotations

import io
import os
import pickle
import re

import pytest
import torch
import torch._opaque_base
from torch._library.opaque_object import get_opaque_type_name, is_opaque_type, register_opaque_type

import cases_opaque as HC
import pt2serde
from pt2serde import cli
from pt2serde.bridge.opaque import load_opaque, rebuild, registered_classes
from pt2serde.format.archive import ArchiveReader
from pt2serde.format.check import check_archive
from pt2serde.format.opaque_pickle import MAX_RECORD_BYTES, read_opaque


class Config(torch._opaque_base.OpaqueBase):
    """A value-type opaque object (compared by value, inlined into the graph) with a few fields."""

    def __init__(self, scale: float, mode: str = "mul", dims: tuple = (0,)):
        self.scale, self.mode, self.dims = scale, mode, dims

    def _key(self) -> tuple:
        return (self.scale, self.mode, self.dims)

    def __eq__(self, other):
        return type(other) is type(self) and other._key() == self._key()

    def __hash__(self):
        return hash(self._key())

    def __fx_repr__(self):
        return f"Config{self._key()!r}", {"Config": Config}


class Engine(torch._opaque_base.OpaqueBase):
    """A reference-type opaque object with state of every plain kind."""

    def __init__(self, offset: float):
        self.offset = offset
        self.tags = {"a", "b"}
        self.raw = b"\x00\xff"
        self.table = {"k": [1, (2.5, None, True)], 3: frozenset({4})}
        self.z = 1 + 2j


class Slotted(torch._opaque_base.OpaqueBase):
    __slots__ = ("a", "b")

    def __init__(self):
        self.a, self.b = 1, [2, 3]


class Stateful(torch._opaque_base.OpaqueBase):
    """State through its own ``__getstate__``/``__setstate__``; ``__new__`` arguments too."""

    calls: list = []

    def __new__(cls, size=0):
        obj = super().__new__(cls)
        obj.size = size
        return obj

    def __init__(self, size: int):
        self.items = list(range(size))

    def __getnewargs__(self):
        return (self.size,)

    def __getstate__(self):
        return ("v1", self.items)

    def __setstate__(self, state):
        Stateful.calls.append(state)
        self.items = list(state[1])


class Sub(Engine):
    """A subclass of a registered class: not registered itself."""


for _cls, _typ in ((Config, "value"), (Engine, "reference"), (Slotted, "reference"), (Stateful, "reference")):
    if not is_opaque_type(_cls):
        register_opaque_type(_cls, typ=_typ)


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    slots = getattr(type(a), "__slots__", ())
    return vars(a) == vars(b) and all(getattr(a, s) == getattr(b, s) for s in slots)


# ----------------------------------------------------------------------- the reader


_MAKERS = {"dict": lambda: Engine(2.0), "slots": Slotted, "setstate": lambda: Stateful(3), "value": lambda: Config(1.5)}


@pytest.mark.parametrize("kind, protocol", [
    (kind, protocol) for kind in _MAKERS for protocol in range(pickle.HIGHEST_PROTOCOL + 1)
    if protocol >= 2 or kind in ("dict", "value")  # __slots__ and __getnewargs__ need protocol 2
])
def test_every_protocol_rebuilds_what_pickle_does(kind, protocol):
    obj = _MAKERS[kind]()
    data = pickle.dumps(obj, protocol=protocol)
    got = load_opaque(data, where="rec")
    assert _same(got, pickle.loads(data)) and _same(got, obj)


def test_setstate_and_new_arguments_are_the_class_own():
    Stateful.calls.clear()
    got = load_opaque(pickle.dumps(Stateful(4), protocol=2), where="rec")
    assert got.size == 4 and got.items == [0, 1, 2, 3] and Stateful.calls == [("v1", [0, 1, 2, 3])]


def test_the_reader_imports_and_calls_nothing():
    """``read_opaque`` alone (what validate runs) builds a recipe; the class is not touched."""
    Stateful.calls.clear()
    recipe = read_opaque(pickle.dumps(Stateful(2), protocol=2), where="rec")
    assert (recipe.module, recipe.qualname, recipe.args, recipe.state) == (__name__, "Stateful", (2,), ("v1", [0, 1]))
    assert Stateful.calls == []


@pytest.mark.parametrize("data, message", [
    (pickle.dumps([1, 2], protocol=2), r"^rec holds a list, not an object of a registered opaque class$"),
    (b"\x80\x02c" + __name__.encode() + b"\nEngine.__init__\n)\x81.",
     r"Engine\.__init__ cannot name a class \(a dotted name without dunder parts\) at byte 2 of rec$"),
    (b"\x80\x02c" + __name__.encode() + b"\nEngine\n)\x81}b}b.", r"sets the state of .*Engine twice at byte \d+ of rec$"),
    (b"\x80\x02ccopyreg\n_reconstructor\nc" + __name__.encode() + b"\nEngine\ncbuiltins\nobject\nK\x05\x87R.",
     r"copyreg\._reconstructor is accepted only as _reconstructor\(<the class>, object, None\)"),
    (b"\x80\x02c" + __name__.encode() + b"\nEngine\nccopyreg\n__newobj__\ncbuiltins\nobject\n\x85R.",
     r"copyreg\.__newobj__ is accepted only for the object's class"),
    (b"(i" + __name__.encode() + b"\nEngine\n.", r"Engine: an opaque object's class is only instantiated .* never called .* at byte 1 of rec$"),
    (b"\x80\x02X\x01\x00\x00\x001Q.", r"persistent id '1' found, but this pickle may not refer to external records"),
])
def test_records_the_reader_refuses(data, message):
    with pytest.raises(pt2serde.SerializeError, match=message):
        read_opaque(data, where="rec")


def test_a_record_over_the_size_limit_is_refused():
    with pytest.raises(pt2serde.SerializeError, match=rf"^rec: an opaque-object record of {MAX_RECORD_BYTES + 1} "
                                                      "bytes is over the limit"):
        read_opaque(bytes(MAX_RECORD_BYTES + 1), where="rec")


# ----------------------------------------------------------------------- the rebuild


@pytest.mark.parametrize("obj, message", [
    (HC.Unregistered("x"), r"opaque class cases_opaque\.Unregistered is not registered as an opaque type in this process"),
    (Sub(1.0), r"opaque class .*\.Sub is not registered as an opaque type in this process"),
])
def test_only_registered_classes_are_rebuilt(obj, message):
    with pytest.raises(pt2serde.SerializeError, match="^rec: " + message):
        load_opaque(pickle.dumps(obj, protocol=2), where="rec")


@pytest.mark.parametrize("state, message", [
    ({"__class__": 1}, r"its state may not set attribute '__class__'"),
    ((None, {"c": 1}), r"its slot state names 'c', which is not a slot of the class"),
    ([1, 2], r"its state is a list, not a dict, and the class has no __setstate__"),
])
def test_state_the_rebuild_refuses(state, message):
    recipe = read_opaque(pickle.dumps(Slotted(), protocol=2), where="rec")
    recipe.state = state
    with pytest.raises(pt2serde.SerializeError, match=r"^rec: opaque class .*Slotted could not be rebuilt: " + message):
        rebuild(recipe, where="rec")


def test_a_failing_setstate_is_a_serialize_error():
    recipe = read_opaque(pickle.dumps(Stateful(1), protocol=2), where="rec")
    recipe.state = None  # Stateful.__setstate__ indexes it
    with pytest.raises(pt2serde.SerializeError, match=r"^rec: opaque class .*Stateful could not be rebuilt: TypeError"):
        rebuild(recipe, where="rec")


def test_registered_classes_are_looked_up_by_exact_name():
    table = registered_classes()
    assert table[(__name__, "Engine")] is Engine and (__name__, "Sub") not in table


# ----------------------------------------------------------------------- programs


def _engine_program():
    return HC.exported()


def _config_program(lib):
    name = get_opaque_type_name(Config)
    lib.define(f"scale(Tensor x, {name} c) -> Tensor")
    torch.library.impl(f"{lib.ns}::scale", "CompositeExplicitAutograd", lib=lib)(lambda x, c: x * c.scale)
    torch.library.register_fake(f"{lib.ns}::scale", lib=lib)(lambda x, c: torch.empty_like(x))
    op = getattr(torch.ops, lib.ns).scale

    class M(torch.nn.Module):
        def forward(self, x):
            return op(x, Config(3.0))

    return torch.export.export(M(), (torch.ones(3),), strict=False)


def _archive(saver, ep) -> bytes:
    buf = io.BytesIO()
    saver(ep, buf)
    return buf.getvalue()


@pytest.fixture
def no_unpickling(monkeypatch):
    """Any unpickler called while loading fails the test."""
    def explode(*args, **kwargs):
        raise AssertionError("an unpickler was called")

    monkeypatch.setattr(pickle, "loads", explode)
    monkeypatch.setattr(torch, "load", explode)


@pytest.mark.parametrize("saver", [torch.export.save, pt2serde.save], ids=["pytorch", "pt2serde"])
def test_reference_type_archives_load_by_default(saver, monkeypatch):
    ep = _engine_program()
    data = _archive(saver, ep)
    inp = torch.ones(3)
    theirs = torch.export.load(io.BytesIO(data))
    with monkeypatch.context() as m:
        m.setattr(pickle, "loads", lambda *a, **k: pytest.fail("an unpickler was called"))
        ours = pt2serde.load(io.BytesIO(data))
    (engine,) = ours.constants.values()
    assert type(engine) is HC.HostileEngine and engine.offset == 2.0
    torch.testing.assert_close(ours.module()(inp), theirs.module()(inp), rtol=0, atol=0)
    torch.testing.assert_close(ours.module()(inp), torch.full((3,), 3.0), rtol=0, atol=0)
    trusted = pt2serde.load(io.BytesIO(data), allow_pickle=True)  # still unpickles, same object
    assert _same(next(iter(trusted.constants.values())), engine)


def test_value_type_constants_round_trip_with_both_readers():
    """PyTorch 2.13 writes no record for a value-type constant (the graph names ``_custom_obj_0``),
    so neither reader can load its archive; pt2serde writes the record, and both read ours."""
    with torch.library._scoped_library("pt2serde_test_opq_v", "FRAGMENT") as lib:
        ep = _config_program(lib)
        inp = torch.ones(3)
        ours = _archive(pt2serde.save, ep)
        for loaded in (pt2serde.load(io.BytesIO(ours)), torch.export.load(io.BytesIO(ours))):
            torch.testing.assert_close(loaded.module()(inp), torch.full((3,), 3.0), rtol=0, atol=0)
        assert pt2serde.load(io.BytesIO(ours)).constants["_custom_obj_0"] == Config(3.0)
        theirs = _archive(torch.export.save, ep)
        with pytest.raises(pt2serde.SerializeError, match=r"custom object '_custom_obj_0' .* is not among the constants"):
            pt2serde.load(io.BytesIO(theirs))
        with pytest.raises(RuntimeError):
            torch.export.load(io.BytesIO(theirs))


def test_serialize_deserialize_by_default(no_unpickling):
    ep = _engine_program()
    loaded = pt2serde.deserialize(pt2serde.serialize(ep))
    (engine,) = loaded.constants.values()
    assert type(engine) is HC.HostileEngine and engine.offset == 2.0
    torch.testing.assert_close(loaded.module()(torch.ones(3)), torch.full((3,), 3.0))


def test_validate_calls_an_opaque_archive_valid(tmp_path):
    path = tmp_path / "a.pt2"
    path.write_bytes(_archive(torch.export.save, _engine_program()))
    problems = check_archive(ArchiveReader(path.read_bytes()))
    assert not [p for p in problems if p.blocks_load()]
    assert [p.message for p in problems] == [  # what validate cannot know: which classes the loader registers
        "record archive/data/constants/opaque_obj_0 ('lifted_custom_0') holds an object of class "
        "cases_opaque.HostileEngine, read without unpickling; load rebuilds it where that class is registered "
        "as an opaque type"]
    assert cli.main(["validate", str(path)]) == 0


# ----------------------------------------------------------------------- the hostile payloads are live

LIVE = ["a class not registered in this process", "os.system in a registered class's state",
        "builtins.eval in a registered class's state", "copyreg._reconstructor of an unregistered class in the state",
        "a registered class's method through a dotted name"]


@pytest.mark.parametrize("name", LIVE)
def test_the_hostile_payloads_would_really_run_code(name, tmp_path):
    """Without this, cases_opaque.py could pass with payloads that do nothing: unpickled for
    real, each creates the marker; pt2serde's reader refuses it and the marker stays absent."""
    marker = str(tmp_path / "pwned")
    data = HC.PAYLOADS[name][0](marker)
    with pytest.raises(pt2serde.SerializeError):
        load_opaque(data, where="rec")
    assert not os.path.exists(marker)
    pickle.loads(data)
    assert os.path.exists(marker)


# ----------------------------------------------------------- archives of each release in the corpus

OBJECTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "compat-corpus", "objects")


def _load_io(path: str) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    return _REAL_TORCH_LOAD(io.BytesIO(data), weights_only=True)  # before no_unpickling replaces torch.load


_REAL_TORCH_LOAD = torch.load


@pytest.mark.parametrize("release", ["2.13.0", "2.14.1"])
def test_release_archives_with_an_opaque_constant_load_by_default(release, no_unpickling):
    """``compat-corpus/objects/<release>/opaque_offset.pt2``, written by that release's own
    ``torch.export.save`` (``make_objects.py``): pt2serde loads it with the default
    ``allow_pickle=False`` (no unpickler runs) and reproduces the eager output exactly."""
    import sys

    sys.path.insert(0, OBJECTS)
    import corpus_objects

    folder = os.path.join(OBJECTS, release)
    io_ = _load_io(os.path.join(folder, "opaque_offset.io.pt"))
    ep = pt2serde.load(os.path.join(folder, "opaque_offset.pt2"))
    (offset,) = ep.constants.values()
    assert type(offset) is corpus_objects.Offset and (offset.offset, offset.name, offset.dims) == (2.5, "offset", (0, 1))
    assert offset.table == {"scale": [1, 2.5, None, True]}
    torch.testing.assert_close(ep.module()(io_["input"]), io_["expected"], rtol=0, atol=0)


def test_a_weight_naming_an_object_record_is_refused_alike(tmp_path):
    """Weights are tensors: a weights-config entry naming an ``opaque_obj_`` record is an error for
    ``validate`` and ``load`` alike (found by the red team: validate only warned, load failed later)."""
    import test_hostile_archives as H

    ours = _archive(pt2serde.save, _engine_program())
    extra = {"path_name": "opaque_obj_0", "is_param": True, "use_pickle": True, "tensor_meta": None}
    data = H.with_config(H.rewrite(ours, add={"data/weights/opaque_obj_0": pickle.dumps(HC.HostileEngine(1.0))}),
                         H.WEIGHTS, lambda cfg: cfg.__setitem__("w", extra))
    path = tmp_path / "w.pt2"
    path.write_bytes(data)
    message = r"weight 'w' names the object record 'opaque_obj_0': weights are tensors, only constants hold objects"
    with pytest.raises(pt2serde.SerializeError, match=message):
        pt2serde.load(str(path))
    problems = [p for p in check_archive(ArchiveReader(data)) if p.blocks_load()]
    assert any(re.search(message, p.message) for p in problems)
