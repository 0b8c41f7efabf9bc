"""Custom objects among a program's constants to the bytes of their records: the one place
``save`` and ``serialize`` write them.

* :func:`object_record` gives ``(prefix, bytes)`` for one constant: a torchbind object
  (``torch._C.ScriptObject``) in TorchScript's own pickle format (``custom_obj_``, what
  ``torch.export.load`` reads with ``torch._C._pickle_load_obj``), an opaque object as a
  Python pickle (``opaque_obj_``). Every failure of a pickler becomes a :class:`SerializeError`
  naming the constant and its class (:func:`writing`).
* A torchbind object whose state holds a fake tensor (built under ``FakeTensorMode``)
  cannot go through TorchScript's pickler: it copies every storage's bytes, and a fake
  tensor has none. :func:`torchscript_bytes` then writes the record itself, from the state
  ``__getstate__`` returns and the type its schema declares, in the pickler's format: each
  fake tensor becomes a storage at location ``"meta"`` with an empty data record, keeping
  dtype, sizes, strides, storage offset and ``requires_grad``. TorchScript's reader (and so
  ``torch.export.load``) rebuilds such a record as a meta tensor; :func:`fake_objects` turns
  those back into fake tensors when pt2serde loads the program. The device of a fake tensor
  is not kept (TorchScript's format has no tensor without data on another device).
"""

from __future__ import annotations

import contextlib
import io
import pickle
import struct
import sys
from typing import Any, Callable, Iterator

import torch

from ..errors import SerializeError
from ..format.archive_write import ArchiveWriter

__all__ = ["object_record", "writing", "constant_text", "class_name", "torchscript_bytes", "torch_save_bytes",
           "fake_objects", "META_LOCATION"]

#: The storage location that marks a tensor without data (a fake tensor when written)
META_LOCATION = "meta"
_TS_ROOT = "archive"  # the root folder of TorchScript's pickle_save records
_TS_VERSION = b"3\n"  # the record version torch._C._pickle_save writes
_SPECIALIZED_LISTS = {"IntType": "build_intlist", "FloatType": "build_doublelist",
                      "BoolType": "build_boollist", "TensorType": "build_tensorlist"}


@contextlib.contextmanager
def writing(what: str) -> Iterator[None]:
    """Turns any failure of a pickler inside into a :class:`SerializeError` saying that
    ``what`` (:func:`constant_text`) cannot be written and why (pickle's, TorchScript's and
    torch.save's failures are ``RuntimeError``, ``TypeError``, ``PicklingError``,
    ``AttributeError``... by class: each named here, once)."""
    try:
        yield
    except SerializeError:
        raise
    except Exception as e:  # noqa: BLE001 - every pickler failure, named once here
        reason = (str(e).strip().splitlines() or [""])[0]
        raise SerializeError(f"cannot write {what}: {type(e).__name__}: {reason}".rstrip(": ")) from e


def constant_text(fqn: str, value: Any, kind: str = "constant") -> str:
    """``constant 'fqn' of class C``: how errors name a value being written (``kind``:
    ``"constant"`` or ``"state dict entry"``)."""
    return f"{kind} {fqn!r} of class {class_name(value)}"


def class_name(value: Any) -> str:
    """The class a user knows ``value`` by: a torchbind object's TorchScript name, else Python's."""
    if isinstance(value, torch._C.ScriptObject):
        with contextlib.suppress(Exception):
            return value._type().qualified_name()
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def object_record(fqn: str, value: Any, protocol: int) -> tuple[str, bytes]:
    """``(record prefix, bytes)`` of custom object ``value`` stored as constant ``fqn``:
    ``"custom_obj_"`` and TorchScript's format for a torchbind object, ``"opaque_obj_"`` and a
    pickle of ``protocol`` for an opaque object (PyTorch's choice of records)."""
    with writing(constant_text(fqn, value)):
        if isinstance(value, torch._C.ScriptObject):
            return "custom_obj_", torchscript_bytes(value)
        return "opaque_obj_", pickle.dumps(value, protocol=protocol)


def torch_save_bytes(value: Any, protocol: int) -> bytes:
    """``torch.save(value)`` with pickle ``protocol``: the record of a tensor subclass."""
    buf = io.BytesIO()
    torch.save(value, buf, pickle_protocol=protocol)
    return buf.getvalue()


def torchscript_bytes(obj: torch._C.ScriptObject) -> bytes:
    """``obj`` in TorchScript's pickle format: ``torch._C._pickle_save``'s own bytes, or, when
    the state holds a fake tensor, the same format written here (fake tensors as meta storages)."""
    state, _ = obj.__getstate__()
    if not _holds_fake(state):
        return bytes(torch._C._pickle_save(obj))
    state_type = obj._get_method("__getstate__").schema.returns[0].type
    return _TorchScriptPickle().dumps(obj._type().qualified_name(), state, state_type)


def _leaves(value: Any) -> Iterator[Any]:
    """The values inside the lists, tuples and dicts (keys and values) of a state."""
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(k)
            yield from _leaves(v)
    else:
        yield value


def _holds_fake(state: Any) -> bool:
    from .tensors import is_fake

    return any(isinstance(v, torch.Tensor) and is_fake(v) for v in _leaves(state))


def _is_meta(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.device.type == META_LOCATION


class _TorchScriptPickle:
    """Protocol-2 opcodes in the forms TorchScript's pickler uses, for a state of plain data
    (tensors, numbers, strings, bools, None, and tuples, lists, dicts and optionals of them),
    each value written as the type ``__getstate__`` declares (TorchScript's reader needs the
    element types of lists and dicts). One dispatch row per type kind."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.storages: dict[int, str] = {}  # a storage (its StorageImpl's address) -> its record key
        self.records: list[tuple[str, memoryview | bytes]] = []
        self.rows: dict[str, Callable[[Any, Any], None]] = {
            "TensorType": self.tensor, "IntType": lambda v, t: self.int(v), "FloatType": self.float,
            "BoolType": lambda v, t: self.op(b"\x88" if v else b"\x89"), "StringType": self.str,
            "NoneType": lambda v, t: self.op(b"N"), "OptionalType": self.optional, "TupleType": self.tuple,
            "ListType": self.list, "DictType": self.dict,
        }

    def dumps(self, qualified_name: str, state: Any, state_type: Any) -> bytes:
        module, _, name = qualified_name.rpartition(".")
        self.op(b"\x80\x02")
        self.glob(module, name)
        self.op(b")\x81")  # EMPTY_TUPLE NEWOBJ
        self.value(state, state_type)
        self.op(b"b.")  # BUILD STOP
        buf = io.BytesIO()
        with ArchiveWriter(buf) as writer:
            for key, data in self.records:
                writer.add(f"{_TS_ROOT}/data/{key}", data)
            writer.add(f"{_TS_ROOT}/data.pkl", bytes(self.out))
            writer.add(f"{_TS_ROOT}/version", _TS_VERSION)
            writer.add(f"{_TS_ROOT}/byteorder", sys.byteorder.encode())
            writer.add_serialization_id(_TS_ROOT)
        return buf.getvalue()

    def op(self, data: bytes) -> None:
        self.out += data

    def glob(self, module: str, name: str) -> None:
        self.op(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def value(self, v: Any, t: Any) -> None:
        row = self.rows.get(t.kind())
        if row is None:
            raise TypeError(f"a state holding {t.annotation_str} has no form here")
        row(v, t)

    def int(self, v: int) -> None:
        if 0 <= v < 1 << 8:
            self.op(b"K" + bytes([v]))
        elif 0 <= v < 1 << 16:
            self.op(b"M" + v.to_bytes(2, "little"))
        elif -(1 << 31) <= v < 1 << 31:
            self.op(b"J" + v.to_bytes(4, "little", signed=True))
        else:
            self.op(b"\x8a\x08" + v.to_bytes(8, "little", signed=True))

    def float(self, v: float, t: Any = None) -> None:
        self.op(b"G" + struct.pack(">d", v))

    def str(self, v: str, t: Any = None) -> None:
        data = v.encode("utf-8")
        self.op(b"X" + len(data).to_bytes(4, "little") + data)

    def optional(self, v: Any, t: Any) -> None:
        self.value(v, t.getElementType()) if v is not None else self.op(b"N")

    def tuple(self, v: tuple, t: Any) -> None:
        types = t.elements()
        if len(v) != len(types):
            raise TypeError(f"a state of {len(v)} items declared {t.annotation_str}")
        self.op(b"(")
        for item, item_type in zip(v, types):
            self.value(item, item_type)
        self.op(b"t")

    def list(self, v: list, t: Any) -> None:
        element = t.getElementType()
        special = _SPECIALIZED_LISTS.get(element.kind())
        if special is not None:
            self.glob("torch.jit._pickle", special)
            self.op(b"(")
        else:
            self.glob("torch.jit._pickle", "restore_type_tag")
        self.op(b"](")
        for item in v:
            self.value(item, element)
        self.op(b"e")
        if special is not None:
            self.op(b"tR")
        else:
            self.str(t.annotation_str)
            self.op(b"\x86R")

    def dict(self, v: dict, t: Any) -> None:
        self.glob("torch.jit._pickle", "restore_type_tag")
        self.op(b"}(")
        for key, item in v.items():
            self.value(key, t.getKeyType())
            self.value(item, t.getValueType())
        self.op(b"u")
        self.str(t.annotation_str)
        self.op(b"\x86R")

    def tensor(self, v: torch.Tensor, t: Any = None) -> None:
        from torch._subclasses.fake_tensor import FakeTensor

        from .tensors import is_plain_tensor, storage_bytes

        fake = isinstance(v, FakeTensor)
        if not fake and not (is_plain_tensor(v) and v.device.type == "cpu"):
            raise TypeError(f"a {type(v).__name__} on {v.device} beside a fake tensor has no form here")
        storage = v.untyped_storage()
        names = torch.storage._dtype_to_storage_type_map()
        if v.dtype not in names:
            raise TypeError(f"a tensor of {v.dtype} has no TorchScript storage class")
        key = self.storages.get(storage._cdata)
        if key is None:
            key = self.storages[storage._cdata] = str(len(self.storages))
            self.records.append((key, b"" if fake else storage_bytes(storage)))
        self.glob("torch._utils", "_rebuild_tensor_v2")
        self.op(b"((")
        self.str("storage")
        self.glob("torch", names[v.dtype])
        self.str(key)
        self.str(META_LOCATION if fake else "cpu")
        self.int(storage.nbytes() // v.element_size())
        self.op(b"tQ")  # TUPLE BINPERSID
        self.int(v.storage_offset())
        for dims in (v.shape, v.stride()):
            self.op(b"(")
            for d in dims:
                self.int(int(d))
            self.op(b"t")
        self.op(b"\x88" if v.requires_grad else b"\x89")
        self.glob("collections", "OrderedDict")
        self.op(b")RtR")  # EMPTY_TUPLE REDUCE (the hooks), TUPLE REDUCE


def _swap_meta(v: Any, fake_tensor: Callable[[Any], torch.Tensor]) -> Any:
    """``v`` with every meta tensor in its lists, tuples and dicts replaced by a fake one (a plain
    recursive function: a closure calling itself would keep the loading context alive in a cycle)."""
    from .tensors import tensor_meta_to_wire

    if _is_meta(v):
        return fake_tensor(tensor_meta_to_wire(v))
    if isinstance(v, (list, tuple)):
        return type(v)(_swap_meta(x, fake_tensor) for x in v)
    if isinstance(v, dict):
        return {k: _swap_meta(x, fake_tensor) for k, x in v.items()}
    return v


def fake_objects(values: dict[str, Any], fake_tensor: Callable[[Any], torch.Tensor]) -> dict[str, Any]:
    """``values`` with each torchbind object whose state holds meta tensors (the form
    :func:`torchscript_bytes` gives fake tensors) rebuilt, through its class's own
    ``__setstate__``, around fake tensors of the same metadata made by ``fake_tensor``
    (``schema.TensorMeta`` -> fake tensor: the loading program's fake mode)."""
    out = dict(values)
    for name, value in values.items():
        if not isinstance(value, torch._C.ScriptObject):
            continue
        state, qualified_name = value.__getstate__()
        if not any(_is_meta(v) for v in _leaves(state)):
            continue
        rebuilt = torch._C.ScriptObject.__new__(torch._C.ScriptObject)
        rebuilt.__setstate__((_swap_meta(state, fake_tensor), qualified_name))
        out[name] = rebuilt
    return out
