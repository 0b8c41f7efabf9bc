"""Torchbind objects (``torch._C.ScriptObject``) rebuilt from their records without unpickling.

A torchbind record (``data/constants/custom_obj_<i>``, a ``script_object`` payload blob) is the
zip ``torch._C._pickle_save`` writes; :mod:`pt2serde.format.torchbind` holds the rule for what
it may contain. :func:`load_torchbind` reads it with the safe ``torch.save`` reader
(:func:`pt2serde.bridge.torchsave.load_torch_save`: bounded, checked tensors) restricted to
:func:`~pt2serde.format.torchbind.record_globals`, holds the result to
:func:`~pt2serde.format.torchbind.finish`, then:

* checks that the class is registered in this process, looked up by its validated namespace
  and name in TorchScript's class registry (``torch._C._get_custom_class_python_wrapper``;
  no attribute lookup on a name from the file);
* rebuilds the object as Python's own ``copy``/``pickle`` of a ``ScriptObject`` does: an empty
  ``ScriptObject`` whose ``__setstate__((state, qualified_name))`` finds the class in the same
  registry and calls the class's registered ``__setstate__`` (its C++ ``def_pickle``
  deserializer) with the state, converted to the types that function declares. That function
  is the class author's code, in a library the user loaded; it is the only code that runs.
"""

from __future__ import annotations

import torch

from ..errors import SerializeError
from ..format import torchbind as rule
from .torchsave import load_torch_save

__all__ = ["load_torchbind"]


def _registered(obj: rule.TorchbindObject) -> bool:
    try:
        torch._C._get_custom_class_python_wrapper(obj.namespace, obj.name)  # names checked by the rule
    except RuntimeError:
        return False
    return True


def load_torchbind(data: memoryview | bytes, *, what: str, record: str | None = None,
                   class_fqn: str | None = None, allow_pickle: bool = False) -> torch.ScriptObject:
    """The torchbind object a record holds, rebuilt by its registered class's ``__setstate__``.

    ``what`` names the record in errors; ``record`` is the archive record it is, if any;
    ``class_fqn``, when given, is the class the caller's description says the object has (a
    payload entry's ``class_fqn``), which the record must agree with. Anything the rule refuses
    raises :class:`SerializeError` naming ``what`` and the reason, or with ``allow_pickle`` is
    unpickled by TorchScript (which can run code from the file); a class this process has not
    registered, or a state its ``__setstate__`` rejects, is refused either way.
    """
    try:
        rule.describe_torchbind(memoryview(data), what)  # the walk validate runs, whoever calls (a payload too)
        value = load_torch_save(data, what=what, record=record, table=rule.record_globals,
                                meta_storages=True)  # fake tensors written by object_records
        obj = rule.finish(value, lambda v: isinstance(v, torch.Tensor), memoryview(data).nbytes)
    except SerializeError as e:
        if allow_pickle:
            return _unpickle(data, what, record)  # allow_pickle=True only
        text = str(e) if what in str(e) else f"{what}: {e}"
        raise SerializeError(f"{text}; only unpickling (which can run code from the file) could rebuild this "
                             "torchbind object. Pass allow_pickle=True if you trust it.", record=record) from None
    name = obj.qualified_name
    if class_fqn is not None and class_fqn != name:
        raise SerializeError(f"{what}: the entry says class {class_fqn!r} but its record holds {name}", record=record)
    if not _registered(obj):
        raise SerializeError(
            f"{what}: torchbind class {name} is not registered in this process; load the library that "
            "defines it (torch.ops.load_library) before loading this program", record=record)
    out = torch.ScriptObject.__new__(torch.ScriptObject)
    try:
        out.__setstate__((obj.state, name))
    except Exception as e:  # noqa: BLE001 - the class's own deserializer refused the state
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SerializeError(f"{what}: {name}.__setstate__ refused the state: {first}", record=record) from None
    return out



def _unpickle(data: memoryview | bytes, what: str, record: str | None) -> torch.ScriptObject:
    """TorchScript's own unpickler (runs what the file says); reached only with allow_pickle=True."""
    try:
        return torch._C._pickle_load_obj(bytes(data))  # allow_pickle=True only: load_torchbind refuses otherwise
    except Exception as e:  # noqa: BLE001 - whatever the unpickler raised, with the record named
        raise SerializeError(f"{what}: unpickling failed: {type(e).__name__}: {e}", record=record) from None
