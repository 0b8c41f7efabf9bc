"""Records of opaque objects, read without unpickling (torch-free).

PyTorch 2.13 stores a constant whose class was registered with
``torch._library.opaque_object.register_opaque_type`` as ``data/constants/opaque_obj_<i>``
(``use_pickle`` set, no tensor metadata): the bytes of ``pickle.dumps(obj, protocol=pickle_protocol)``,
protocol 2 unless the caller chose another; ``pt2serde.serialize`` stores the same bytes as
an ``opaque`` payload entry. PyTorch reads them back with ``pickle.loads``. A plain object
pickles as::

    GLOBAL '<module> <qualname>'   EMPTY_TUPLE   NEWOBJ   <state>   BUILD   STOP

where the state is ``obj.__dict__`` (or ``__getstate__()``; ``(dict, slots)`` with
``__slots__``). Older protocols write ``copyreg._reconstructor(cls, object, None)`` instead
of ``NEWOBJ``; ``__getnewargs(_ex)__`` gives ``NEWOBJ(_EX)`` arguments. Plain data in the
state names ``builtins.set``, ``_codecs.encode`` (bytes) and the like under protocol 2.

:func:`read_opaque` interprets a record with the restricted pickle machine
(:mod:`.safepickle`) and returns an :class:`OpaqueRecipe`: which class (module and
qualified name, as the record names it), the arguments of ``cls.__new__(cls, *args,
**kwargs)`` and its state. Nothing is imported, looked up or called: the record may name

* exactly one class, made exactly once as the pickler makes plain objects (``NEWOBJ`` and a
  state), and that object is the record's value. A call of the class or of anything the
  record names (``REDUCE``, ``INST``, ``OBJ``: a class's own ``__reduce__``, a function, a
  method through a dotted name) is refused: without knowing the class, a torch-free reader
  cannot tell ``Config(3.0)`` from ``posix.system('...')``;
* the builders of plain data (:data:`.pickle_globals.PLAIN_GLOBALS`), and
  ``copyreg._reconstructor`` / ``__newobj__`` / ``__newobj_ex__`` / ``builtins.object`` only
  as the pickler writes them to make that one object;
* arguments and state of plain data only: None, bool, int, float, complex, str, bytes and
  lists, tuples, dicts and sets of them, within the machine's budgets (nesting depth, the
  tree expansion of memo references, memo and stack sizes) and :data:`MAX_RECORD_BYTES`.

A second class, a function, a tensor (``torch._utils._rebuild_tensor_v2``) or the object
inside its own state is refused, naming the global and the byte offset. The bridge
(``bridge/opaque.py``) then looks the class up among those registered in its process and
rebuilds it; ``load`` and ``validate`` both judge a record by this function
(:func:`pt2serde.format.tensor_entries.payload_entries`).
"""

from __future__ import annotations

from typing import Any

from ..errors import SerializeError
from . import safepickle
from .pickle_globals import PLAIN_GLOBALS, Global, GlobalRef
from .pickle_budget import printable, short

__all__ = ["MAX_RECORD_BYTES", "OpaqueRecipe", "read_opaque"]

MAX_RECORD_BYTES = 64 << 20  #: the largest opaque-object record read without unpickling

_HELPERS = {("copyreg", "_reconstructor"), ("copyreg", "__newobj__"), ("copyreg", "__newobj_ex__"),
            ("builtins", "object")}


class OpaqueRecipe(dict):
    """How to rebuild the one object of an opaque-object record: ``module``, ``qualname``,
    ``args`` and ``kwargs`` of ``cls.__new__``, ``has_state`` and ``state``.

    It is a ``dict`` with no items so that the machine's result walk
    (:func:`.pickle_budget.check_tree`) goes through its attributes with the budgets of the
    whole result, and finds the object inside its own state as a reference cycle.
    """

    def __init__(self, module: str, qualname: str, args: tuple, kwargs: dict) -> None:
        super().__init__()
        self.module = module
        self.qualname = qualname
        self.args = args
        self.kwargs = kwargs
        self.has_state = False
        self.state: Any = None

    @property
    def class_name(self) -> str:
        return f"{self.module}.{self.qualname}"

    def __repr__(self) -> str:
        return f"<OpaqueRecipe {self.class_name} args={len(self.args)} state={self.has_state}>"


#: top-level modules whose classes are never rebuilt from a file: torch registers some of its own
#: (C++-backed) classes as opaque types, and their ``__new__``/``__setstate__`` check nothing
#: (``Generator.__setstate__(())`` dies with SIGSEGV; ``ProcessGroup.__new__`` alone leaves an
#: object whose methods do); the standard library's (``enum``) are no user's opaque state
LIBRARY_MODULES = frozenset({"torch", "builtins", "enum", "copyreg", "functools", "collections", "abc"})


def _dotted(text: str, *, dunder_ok: bool) -> bool:
    parts = text.split(".")
    return all(p.isidentifier() and p.isascii() and (dunder_ok or not p.startswith("__")) for p in parts)


class _Globals(dict):
    """The globals one record may name: plain builders and helpers (the dict's items), plus the
    first other name, taken to be the object's class; a second one is refused."""

    def __init__(self) -> None:
        super().__init__(PLAIN_GLOBALS)
        self.update({
            ("copyreg", "_reconstructor"): Global(call=self._reconstructor, setstate=self._set_state),
            ("copyreg", "__newobj__"): Global(call=self._newobj, setstate=self._set_state),
            ("copyreg", "__newobj_ex__"): Global(call=self._newobj_ex, setstate=self._set_state),
            ("builtins", "object"): Global(),  # only an argument of _reconstructor
        })
        self.key: tuple[str, str] | None = None
        self.recipe: OpaqueRecipe | None = None

    def get(self, key: Any, default: Any = None) -> Any:  # type: ignore[override]
        found = super().get(key)
        if found is not None:
            return found
        module, name = key
        if self.key is not None:
            hint = ("; tensors and other torch objects in an opaque object's state are read only with "
                    "allow_pickle=True") if module == "torch" or module.startswith("torch.") else ""
            raise SerializeError(
                f"names {printable(module + '.' + name)} besides the object's class {self.class_name}: an opaque "
                f"object is rebuilt only from its one class and plain data{hint}")
        if not _dotted(module, dunder_ok=True) or not _dotted(name, dunder_ok=False):
            raise SerializeError(f"{printable(module + '.' + name)} cannot name a class (a dotted name without "
                                 "dunder parts)")
        if module.split(".")[0] in LIBRARY_MODULES:
            raise SerializeError(
                f"{printable(module + '.' + name)} is a class of torch or Python itself, which registers some as "
                "opaque types (torch._C.Generator, ProcessGroup, enum.Enum): their constructors and __setstate__ "
                "trust their state (a wrong one crashes the process), so they are read only with allow_pickle=True")
        self.key = (module, name)
        return Global(call=self._refuse_call, new=self._new, setstate=self._set_state)

    @property
    def class_name(self) -> str:
        return printable(".".join(self.key)) if self.key else "(none)"

    # ------------------------------------------------------------ builders

    def _make(self, args: tuple, kwargs: dict | None = None) -> OpaqueRecipe:
        if self.recipe is not None:
            raise SerializeError(f"makes a second object of {self.class_name}: an opaque-object record holds one object")
        self.recipe = OpaqueRecipe(self.key[0], self.key[1], args, dict(kwargs or {}))
        return self.recipe

    def _new(self, *args: Any, **kwargs: Any) -> OpaqueRecipe:
        return self._make(args, kwargs)

    def _refuse_call(self, *args: Any) -> OpaqueRecipe:
        raise SerializeError("an opaque object's class is only instantiated as the pickler makes plain objects "
                             "(NEWOBJ and a state), never called (a class's own __reduce__, a function or a method "
                             "is read only with allow_pickle=True)")

    def _is_class(self, value: Any) -> bool:
        return isinstance(value, GlobalRef) and self.key is not None and (value.module, value.name) == self.key

    def _reconstructor(self, cls: Any = None, base: Any = None, state: Any = 0) -> OpaqueRecipe:
        if not (self._is_class(cls) and isinstance(base, GlobalRef) and (base.module, base.name) == ("builtins", "object")
                and state is None):
            raise SerializeError("copyreg._reconstructor is accepted only as _reconstructor(<the class>, object, None)")
        return self._make(())

    def _newobj(self, cls: Any = None, *args: Any) -> OpaqueRecipe:
        if not self._is_class(cls):
            raise SerializeError(f"copyreg.__newobj__ is accepted only for the object's class, got {short(cls)}")
        return self._make(args)

    def _newobj_ex(self, cls: Any = None, args: Any = (), kwargs: Any = None) -> OpaqueRecipe:
        if not self._is_class(cls) or type(args) is not tuple or type(kwargs) is not dict \
                or any(type(k) is not str for k in kwargs):
            raise SerializeError("copyreg.__newobj_ex__ is accepted only as __newobj_ex__(<the class>, tuple, dict)")
        return self._make(args, kwargs)

    def _set_state(self, obj: OpaqueRecipe, state: Any) -> None:
        if obj.has_state:
            raise SerializeError(f"sets the state of {self.class_name} twice")
        obj.has_state, obj.state = True, state


def read_opaque(data: bytes | bytearray | memoryview, *, where: str) -> OpaqueRecipe:
    """The recipe of the opaque-object record ``data`` (see the module docstring); refusals are
    :class:`SerializeError` ending in ``at byte <n> of <where>``."""
    size = memoryview(data).nbytes
    if size > MAX_RECORD_BYTES:
        raise SerializeError(f"{where}: an opaque-object record of {size} bytes is over the limit of "
                             f"{MAX_RECORD_BYTES} bytes for reading without unpickling")
    table = _Globals()
    value = safepickle.load(data, globals=table, where=where)
    if type(value) is not OpaqueRecipe:
        raise SerializeError(f"{where} holds a {type(value).__name__}, not an object of a registered opaque class")
    return value
