"""Opaque-object records that try to make the safe reader run or build more than one plain object.

Issue 15: an opaque object (a class registered with ``register_opaque_type``) loads without
``allow_pickle`` (``format/opaque_pickle`` reads the record, ``bridge/opaque`` rebuilds it from
the registered class). The base program lifts a registered reference-type object
(:class:`HostileEngine`) as a constant, stored as ``data/constants/opaque_obj_0``; each case
replaces that record. Every refusal names the record and the reason; a real unpickler would
create the marker for the cases that say so (``tests/bridge/test_opaque.py`` proves it).

This module registers its classes and the custom operator when imported: the child process of
``everywhere.py`` imports it (``Case.imports``), as a user imports the library that registers
them.
"""

from __future__ import annotations

import io
import os
import pickle

import torch
import torch._opaque_base
from torch._library.opaque_object import get_opaque_type_name, is_opaque_type, register_opaque_type

from everywhere import Case

RECORD = "data/constants/opaque_obj_0"
_WHERE = r"record archive/data/constants/opaque_obj_0 \('lifted_custom_0'\) is stored as a pickle that the safe " \
         r"reader of opaque objects refuses \("


class HostileEngine(torch._opaque_base.OpaqueBase):
    """A registered reference-type opaque class."""

    def __init__(self, offset: float):
        self.offset = offset

    @staticmethod
    def dump(path: str) -> None:
        """A method a record might try to reach through a dotted name (it writes a file)."""
        with open(path, "w") as f:
            f.write("ran")


class OtherEngine(torch._opaque_base.OpaqueBase):
    """A second registered class."""

    def __init__(self, offset: float):
        self.offset = offset


class Unregistered:
    """Never registered: rebuilding it runs its ``__setstate__``, which creates the marker."""

    def __init__(self, marker: str):
        self.marker = marker

    def __setstate__(self, state):
        with open(state["marker"], "w") as f:
            f.write("ran")


for _cls in (HostileEngine, OtherEngine):
    if not is_opaque_type(_cls):
        register_opaque_type(_cls, typ="reference")

_LIB = torch.library.Library("pt2serde_hostile_opq", "FRAGMENT")
_LIB.define(f"run(Tensor x, {get_opaque_type_name(HostileEngine)} e) -> Tensor")
torch.library.impl("pt2serde_hostile_opq::run", "CompositeExplicitAutograd", lib=_LIB)(lambda x, e: x + e.offset)
torch.library.register_fake("pt2serde_hostile_opq::run", lib=_LIB)(lambda x, e: torch.empty_like(x))


class _Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.engine = HostileEngine(2.0)

    def forward(self, x):
        return torch.ops.pt2serde_hostile_opq.run(x, self.engine)


class _Call:
    """Pickles as a call of ``fn(*args)``."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


_CACHE: dict = {}


def exported() -> torch.export.ExportedProgram:
    return torch.export.export(_Model(), (torch.ones(3),), strict=False)


def base() -> bytes:
    """The archive pt2serde writes for the base program (its engine in ``opaque_obj_0``)."""
    if "base" not in _CACHE:
        import pt2serde

        buf = io.BytesIO()
        pt2serde.save(exported(), buf)
        _CACHE["base"] = buf.getvalue()
    return _CACHE["base"]


def engine_with(**attrs) -> HostileEngine:
    e = HostileEngine(2.0)
    e.__dict__.update(attrs)
    return e


class CollidingTable:
    """Pickled (by :func:`dumps_colliding`) as a dict of ``n`` int keys that all hash to 0,
    without building that dict here: building it takes n**2/2 key comparisons (over a minute
    for 100k keys), which is exactly what the reader must refuse to do."""

    def __init__(self, n: int) -> None:
        self.n = n


class _CollidingPickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table takes new types
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_table(self, obj: CollidingTable) -> None:  # what save_dict writes for the real dict
        self.write(pickle.EMPTY_DICT)
        self.memoize(obj)
        self._batch_setitems((k * ((1 << 61) - 1), 0) for k in range(1, obj.n + 1))

    dispatch[CollidingTable] = _save_table


def dumps_colliding(obj, protocol: int = 2) -> bytes:
    """``pickle.dumps(obj)`` where each :class:`CollidingTable` in it is written as its dict."""
    out = io.BytesIO()
    _CollidingPickler(out, protocol=protocol).dump(obj)
    return out.getvalue()


def nested_lists(depth: int) -> list:
    out: list = []
    for _ in range(depth):
        out = [out]
    return out


def list_dag(levels: int) -> list:
    """``L(i) = [L(i-1), L(i-1)]``: a few bytes through the memo, 2**levels lists as a tree."""
    out: list = []
    for _ in range(levels):
        out = [out, out]
    return out


def dotted_method(marker: str) -> bytes:
    """``HostileEngine.dump(marker)`` named through a dotted STACK_GLOBAL (protocol 4)."""
    def text(s: str) -> bytes:
        raw = s.encode()
        return b"\x8c" + bytes([len(raw)]) + raw

    return b"\x80\x04" + text(HostileEngine.__module__) + text("HostileEngine.dump") + b"\x93" + text(marker) \
        + b"\x85R."


def self_cycle() -> HostileEngine:
    e = HostileEngine(2.0)
    e.me = e
    return e


#: name -> (the record's pickle for ``marker``, the regex of load's refusal, validate's declared outcome)
PAYLOADS = {
    "a class not registered in this process": (
        lambda m: pickle.dumps(Unregistered(m), protocol=2),
        r"opaque class cases_opaque\.Unregistered is not registered as an opaque type in this process", "environment"),
    "os.system in a registered class's state": (
        lambda m: pickle.dumps(engine_with(x=_Call(os.system, f"touch {m}")), protocol=2),
        _WHERE + r"names posix\.system besides the object's class cases_opaque\.HostileEngine", None),
    "builtins.eval in a registered class's state": (
        lambda m: pickle.dumps(engine_with(x=_Call(eval, f"open({m!r}, 'w')")), protocol=2),
        _WHERE + r"names builtins\.eval besides the object's class", None),
    "copyreg._reconstructor of an unregistered class in the state": (
        lambda m: pickle.dumps(engine_with(x=Unregistered(m)), protocol=1),
        _WHERE + r"names cases_opaque\.Unregistered besides the object's class", None),
    "two registered classes in one record": (
        lambda m: pickle.dumps(engine_with(peer=OtherEngine(1.0)), protocol=2),
        _WHERE + r"names cases_opaque\.OtherEngine besides the object's class cases_opaque\.HostileEngine", None),
    "a second object of the registered class": (
        lambda m: pickle.dumps(engine_with(peer=HostileEngine(1.0)), protocol=2),
        _WHERE + r"cases_opaque\.HostileEngine: makes a second object of cases_opaque\.HostileEngine", None),
    "the object inside its own state": (
        lambda m: pickle.dumps(self_cycle(), protocol=2),
        _WHERE + r"the result contains a reference cycle", None),
    "state nested 300 deep": (
        lambda m: pickle.dumps(engine_with(deep=nested_lists(300)), protocol=2),
        _WHERE + r"the result is nested deeper than 256 levels", None),
    "state expanding to 2**40 lists through the memo": (
        lambda m: pickle.dumps(engine_with(dag=list_dag(40)), protocol=2),
        _WHERE + r"the result expands to more than 65536 objects", None),
    "a registered class's method through a dotted name": (
        dotted_method,
        _WHERE + r"cases_opaque\.HostileEngine\.dump: an opaque object's class is only instantiated as the pickler "
        r"makes plain objects \(NEWOBJ and a state\), never called", None),
    # the red team's finds (issue 15): torch registers some of its own C++ classes as opaque types
    "torch._C.Generator with an empty state (its __setstate__ died with SIGSEGV)": (
        lambda m: b"\x80\x02ctorch._C\nGenerator\n)\x81)b.",
        _WHERE + r"torch\._C\.Generator is a class of torch or Python itself, .* read only with allow_pickle=True",
        None),
    "ProcessGroup made without a state (its methods died with SIGSEGV)": (
        lambda m: b"\x80\x02ctorch._C._distributed_c10d\nProcessGroup\n)\x81.",
        _WHERE + r"torch\._C\._distributed_c10d\.ProcessGroup is a class of torch or Python itself", None),
    "a state of 100000 int keys that all hash to 0 (quadratic dict)": (
        lambda m: dumps_colliding(engine_with(table=CollidingTable(100_000))),
        _WHERE + r"65 distinct dict keys share one hash value .* quadratic time", None),
    "a tensor in the state": (
        lambda m: pickle.dumps(engine_with(t=torch.ones(2)), protocol=2),
        _WHERE + r"names torch\.\S+ besides the object's class .*tensors and other torch objects in an opaque "
        r"object's state are read only with allow_pickle=True", None),
}


def _case(name: str) -> Case:
    make, refused, validate = PAYLOADS[name]

    def build(marker: str) -> bytes:
        import test_hostile_archives as H

        return H.rewrite(base(), replace={RECORD: make(marker)})

    return Case(f"opaque object: {name}", build, refused, validate=validate, imports=("cases_opaque",))


# (the base itself is not a case: torch.export.unflatten refuses a program with an opaque constant, even the
# exported one; tests/bridge/test_opaque.py loads it and runs it)
CASES = [_case(name) for name in PAYLOADS]
