"""Opaque objects rebuilt without unpickling, from the classes registered in this process.

:func:`pt2serde.format.opaque_pickle.read_opaque` reads an ``opaque_obj_<i>`` record (or an
``opaque`` payload entry) into an :class:`~pt2serde.format.opaque_pickle.OpaqueRecipe`
without running anything. :func:`rebuild` then looks the class the record names up among the
classes this process registered with ``torch._library.opaque_object.register_opaque_type``,
by the exact ``(module, qualname)`` pair (never importing a module, never reading an
attribute the file names), and makes the object as ``pickle.loads`` would: ``cls.__new__(cls,
*args)``, then the class's own ``__setstate__(state)``, or, without one,
the state dict into the instance ``__dict__`` and slot values through the slots' own
descriptors. The class's code (``__new__``, ``__setstate__``) is the only code that runs,
with plain data: registering a class is the user's statement that it may be rebuilt.
"""

from __future__ import annotations

import inspect
import types
from typing import Any

from ..errors import SerializeError
from ..format.opaque_pickle import OpaqueRecipe, read_opaque

__all__ = ["load_opaque", "registered_classes", "rebuild"]


def registered_classes() -> dict[tuple[str, str], type]:
    """The classes registered as opaque types in this process, by ``(module, qualname)``."""
    try:
        from torch._library import opaque_object
    except ImportError:  # a torch without opaque objects
        return {}
    table = getattr(opaque_object, "_OPAQUE_TYPES", {})
    return {(c.__module__, c.__qualname__): c for c in list(table.keys()) if isinstance(c, type)}


def rebuild(recipe: OpaqueRecipe, *, where: str, record: str | None = None) -> Any:
    """The object ``recipe`` describes, made from its registered class (see the module docstring)."""
    name = recipe.class_name
    cls = registered_classes().get((recipe.module, recipe.qualname))
    if cls is None:
        raise SerializeError(
            f"{where}: opaque class {name} is not registered as an opaque type in this process; only classes "
            "passed to torch._library.opaque_object.register_opaque_type are rebuilt without allow_pickle "
            "(pt2serde never imports the module a record names)", record=record)
    try:
        obj = cls.__new__(cls, *recipe.args, **recipe.kwargs)
        if not isinstance(obj, cls):
            raise SerializeError(f"made a {type(obj).__name__}, not an instance of the class")
        if recipe.has_state:
            _set_state(obj, recipe.state)
    except SerializeError as e:
        raise SerializeError(f"{where}: opaque class {name} could not be rebuilt: {e}", record=record) from None
    except Exception as e:  # noqa: BLE001 - the class's own code failed on the file's data
        raise SerializeError(f"{where}: opaque class {name} could not be rebuilt: {type(e).__name__}: {e}",
                             record=record) from None
    return obj


def _set_state(obj: Any, state: Any) -> None:
    """``BUILD`` as ``pickle`` does it, on plain data: the class's ``__setstate__``, else a
    ``dict`` (or ``(dict, slots)``) of attributes; no dunder attribute, slots only by their
    descriptors (no ``__setattr__`` of the class, no property setter)."""
    if getattr(type(obj), "__setstate__", None) is not None:
        obj.__setstate__(state)
        return
    slots = None
    if type(state) is tuple and len(state) == 2:
        state, slots = state
    for part, what in ((state, "state"), (slots, "slot state")):
        if part is not None and type(part) is not dict:
            raise SerializeError(f"its {what} is a {type(part).__name__}, not a dict, and the class has no __setstate__")
        for key in part or ():
            if type(key) is not str or (key.startswith("__") and key.endswith("__")):
                raise SerializeError(f"its {what} may not set attribute {key!r}")
    if state:
        obj.__dict__.update(state)
    for key, value in (slots or {}).items():
        slot = inspect.getattr_static(type(obj), key, None)
        if type(slot) is not types.MemberDescriptorType:
            raise SerializeError(f"its slot state names {key!r}, which is not a slot of the class")
        slot.__set__(obj, value)


def load_opaque(data: bytes | bytearray | memoryview, *, where: str, record: str | None = None) -> Any:
    """An opaque object from its pickled bytes, read by :func:`read_opaque` and made by :func:`rebuild`."""
    return rebuild(read_opaque(data, where=where), where=where, record=record)
