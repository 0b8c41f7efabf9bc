"""The globals a safe pickle may name, and what each may do (torch-free).

A pickle names globals (``GLOBAL``, ``STACK_GLOBAL``) and calls them (``REDUCE``, ``NEWOBJ``,
``BUILD``). :class:`Global` says how one allowlisted global may be used; :data:`PLAIN_GLOBALS`
holds the standard-library builders that pickles of plain containers name, each accepting
only the argument shapes the pickler writes; :func:`with_namedtuples` adds namedtuple classes
of already imported modules that :func:`namedtuple_problem` finds inert.
"""

from __future__ import annotations

import collections
import sys
import types
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from ..errors import SerializeError
from .pickle_budget import Internal, check_tree, printable

__all__ = ["Global", "GlobalRef", "PLAIN_GLOBALS", "namedtuple_class", "namedtuple_problem", "with_namedtuples"]

_NOTHING = object()


@dataclass(frozen=True)
class Global:
    """How one allowlisted global may be used.

    ``call``: what ``REDUCE``/``INST``/``OBJ`` call with the pickled arguments.
    ``new``: what ``NEWOBJ``/``NEWOBJ_EX`` call (``cls.__new__`` replacement).
    ``setstate``: ``setstate(obj, state)`` for ``BUILD`` on an object this global made.
    ``value``: when set, ``GLOBAL`` pushes this value itself (constants such as dtypes).
    ``keys``: for a builder that hashes values (``set``, ``OrderedDict``), ``keys(args)`` gives
    them; the machine holds each to the dict-key size limit before the call.
    """

    call: Callable[..., Any] | None = None
    new: Callable[..., Any] | None = None
    setstate: Callable[[Any, Any], None] | None = None
    value: Any = _NOTHING
    keys: Callable[[tuple], Iterable[Any]] | None = None

    @property
    def is_value(self) -> bool:
        return self.value is not _NOTHING


class GlobalRef(Internal):
    """What ``GLOBAL`` pushes for an allowlisted global that is not a plain value."""

    __slots__ = ("module", "name", "spec")

    def __init__(self, module: str, name: str, spec: Global) -> None:
        self.module = module
        self.name = name
        self.spec = spec

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    def describe(self) -> str:
        return f"global {self.qualname}"

    def __repr__(self) -> str:
        return f"<GlobalRef {self.qualname}>"


# ------------------------------------------------------------------ plain builders
# Standard-library globals that pickles of plain containers name. Each accepts only
# the argument shapes the pickler writes, so none can be turned into an allocation or
# a call the data chose.


def _iterable(value: Any, what: str) -> Any:
    if type(value) not in (list, tuple, set, frozenset):
        raise SerializeError(f"{what} expects a list, tuple or set, got {type(value).__name__}")
    return value


def _ordered_dict(items: Any = ()) -> OrderedDict:
    out: OrderedDict = OrderedDict()
    for pair in _iterable(items, "OrderedDict"):
        if type(pair) not in (list, tuple) or len(pair) != 2:
            raise SerializeError("OrderedDict expects (key, value) pairs")
        out[pair[0]] = pair[1]
    return out


def _counter(mapping: Any = None) -> Counter:
    if mapping is None:
        return Counter()
    if type(mapping) not in (dict, OrderedDict):
        raise SerializeError(f"Counter expects a dict, got {type(mapping).__name__}")
    return Counter(mapping)


def _set(items: Any = ()) -> set:
    return set(_iterable(items, "set"))


def _frozenset(items: Any = ()) -> frozenset:
    return frozenset(_iterable(items, "frozenset"))


def _members(args: tuple) -> Iterable[Any]:
    """What ``set(items)`` / ``frozenset(items)`` will hash."""
    return args[0] if len(args) == 1 and type(args[0]) in (list, tuple, set, frozenset) else ()


def _pair_keys(args: tuple) -> Iterable[Any]:
    """What ``OrderedDict(pairs)`` will hash."""
    return (p[0] for p in _members(args) if type(p) in (list, tuple) and len(p) == 2)


def _complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
    if type(real) not in (int, float) or type(imag) not in (int, float):
        raise SerializeError("complex expects two numbers")
    return complex(real, imag)


def _slice(*args: Any) -> slice:
    if not 1 <= len(args) <= 3 or any(a is not None and type(a) is not int for a in args):
        raise SerializeError("slice expects one to three ints or None")
    return slice(*args)


def _bytes(*args: Any) -> bytes:
    if args:  # bytes(n) would allocate n bytes: protocol <3 writes only the empty form
        raise SerializeError("bytes takes no arguments here (protocol 2 writes b'' as bytes())")
    return b""


def _bytearray(data: Any = b"") -> bytearray:
    if type(data) not in (bytes, bytearray):
        raise SerializeError(f"bytearray expects bytes, got {type(data).__name__}")
    return bytearray(data)


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    # protocol <3 writes bytes as _codecs.encode(str, 'latin1')
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise SerializeError("_codecs.encode is only accepted as encode(str, 'latin1')")
    try:
        return text.encode("latin1")
    except UnicodeEncodeError:
        raise SerializeError("_codecs.encode: text is not latin-1") from None


def _set_instance_dict(obj: Any, state: Any) -> None:
    """BUILD for ``OrderedDict``: attributes such as a state dict's ``_metadata``."""
    if isinstance(state, tuple) and len(state) == 2 and state[1] is None:
        state = state[0]
    if state is None:
        return
    if type(state) is not dict:
        raise SerializeError(f"state for {type(obj).__name__} must be a dict, got {type(state).__name__}")
    for key in state:
        if type(key) is not str or not key.isidentifier() or key.startswith("__") or hasattr(type(obj), key):
            raise SerializeError(f"state may not set attribute {key!r} on {type(obj).__name__}")
    for key, value in state.items():
        check_tree(value, what=f"attribute {key!r}")
    obj.__dict__.update(state)


PLAIN_GLOBALS: dict[tuple[str, str], Global] = {
    ("collections", "OrderedDict"): Global(call=_ordered_dict, setstate=_set_instance_dict, keys=_pair_keys),
    ("collections", "Counter"): Global(call=_counter),  # its keys come from a dict: already checked
    ("builtins", "set"): Global(call=_set, keys=_members),
    ("builtins", "frozenset"): Global(call=_frozenset, keys=_members),
    ("builtins", "complex"): Global(call=_complex),
    ("builtins", "slice"): Global(call=_slice),
    ("builtins", "bytes"): Global(call=_bytes),
    ("builtins", "bytearray"): Global(call=_bytearray),
    ("_codecs", "encode"): Global(call=_encode),
}
"""Builders for the standard-library globals that pickles of plain data name."""


# ------------------------------------------------------------------ namedtuples

_REFERENCE = collections.namedtuple("_REFERENCE", "x")
_GETTER = type(vars(_REFERENCE)["x"])  # collections._tuplegetter (or property, without _collections)
#: what ``collections.namedtuple`` generates, by name: the function whose code each must share
_GENERATED = {name: vars(_REFERENCE)[name] for name in ("__repr__", "_replace", "_asdict", "__getnewargs__", "_make")}
#: plain data a namedtuple class body holds, by name: the types its value may have
_INERT: dict[str, tuple[type, ...]] = {
    "__module__": (str,), "__doc__": (str, type(None)), "__qualname__": (str,), "__slots__": (tuple, list, str),
    "__annotations__": (dict,), "__orig_bases__": (tuple,), "_fields": (tuple,), "_field_defaults": (dict,),
    "__match_args__": (tuple,), "__dict__": (types.GetSetDescriptorType,),
    "__weakref__": (types.GetSetDescriptorType,), "__slotnames__": (list,),  # copyreg caches this
}


def _function_of(value: Any) -> Any:
    return value.__func__ if type(value) in (classmethod, staticmethod) else value


def _generated_new(value: Any, nfields: int) -> bool:
    """``__new__`` as ``collections.namedtuple`` makes it: ``lambda _cls, a, b: _tuple_new(_cls, (a, b))``
    evaluated with ``tuple.__new__`` as its only global and no builtins."""
    fn = _function_of(value)
    if type(value) is not staticmethod or type(fn) is not types.FunctionType or fn.__closure__:
        return False
    env = fn.__globals__
    return (fn.__code__.co_names == ("_tuple_new",) and fn.__code__.co_argcount == nfields + 1
            and set(env) == {"_tuple_new", "__builtins__", "__name__"}
            and env["_tuple_new"] is tuple.__new__ and env["__builtins__"] == {})


def namedtuple_problem(cls: Any) -> str | None:
    """Why ``cls`` is not a plain namedtuple (None when it is one).

    Plain: its metaclass is ``type``; its bases lead straight to ``tuple``; every class body
    in between holds only what ``collections.namedtuple`` generates (``__new__``, ``__repr__``,
    ``__getnewargs__``, ``_make``, ``_replace``, ``_asdict``, a ``_tuplegetter`` per field),
    plain data (``_fields``, ``__slots__``, annotations...) and, at most, methods with ordinary
    names that shadow nothing of ``tuple`` (no reader calls those). Any other dunder (``__iter__``,
    ``__len__``, ``__getitem__``, ``__eq__``, ``__hash__``, ``__reduce__``, ``__getattr__``,
    ``__del__``...) or a property standing in for a field refuses the class.
    """
    if type(cls) is not type or not issubclass(cls, tuple) or cls.__mro__[-2:] != (tuple, object):
        return "is not a tuple subclass of metaclass type"
    fields = None
    for c in cls.__mro__[:-2]:
        if type(c) is not type:
            return f"has base {c.__qualname__} with a metaclass"
        body = vars(c)
        if fields is None and "_fields" in body:
            fields = body["_fields"]
            if type(fields) is not tuple or not all(type(f) is str and f.isidentifier() for f in fields):
                return "has _fields that are not a tuple of names"
    if fields is None:
        return "has no _fields"
    for c in cls.__mro__[:-2]:
        for name, value in sorted(vars(c).items(), key=lambda item: not item[0].startswith("__")):
            if name in _INERT:
                if type(value) not in _INERT[name]:
                    return f"has {name} of type {type(value).__name__}"
            elif name == "__new__":
                if not _generated_new(value, len(fields)):
                    return "has its own __new__"
            elif name in _GENERATED:
                ref = _function_of(_GENERATED[name])
                fn = _function_of(value)
                if not (type(value) is type(_GENERATED[name]) and getattr(fn, "__code__", None) is ref.__code__
                        and fn.__globals__ is ref.__globals__):
                    return f"has its own {name}"
            elif name in fields:
                if type(value) is not _GETTER:
                    return f"has field {name} as a {type(value).__name__}, not a tuple item"
            elif name.startswith("_") or hasattr(tuple, name):
                return f"has its own {name}"
    for i, name in enumerate(fields):
        getter = next((vars(c)[name] for c in cls.__mro__[:-2] if name in vars(c)), None)
        if type(getter) is not _GETTER or getter.__reduce__()[1][0] != i:
            return f"has field {name} that is not item {i} of the tuple"
    return None


def _namespace(obj: Any) -> Any:
    """The attribute dict of a module or a plain class, read without attribute lookups."""
    if types.ModuleType in type(obj).__mro__ or type(obj) is type:
        return object.__getattribute__(obj, "__dict__")
    return None


def namedtuple_class(module: str, name: str) -> type | None:
    """The class ``module.name`` of an already imported module when it is a tuple subclass with
    ``_fields`` (never imports, never looks an attribute up through code); else None."""
    target: Any = sys.modules.get(module)
    for part in name.split("."):
        space = _namespace(target) if target is not None else None
        if space is None or not part.isidentifier() or part.startswith("__"):
            return None
        target = space.get(part)
    if type(target) is type and issubclass(target, tuple) and any("_fields" in vars(c) for c in target.__mro__):
        return target
    return None


def _namedtuple_global(cls: type) -> Global:
    fields = cls._fields

    def new(*values: Any) -> tuple:
        if len(values) != len(fields):
            raise SerializeError(f"{cls.__qualname__} has {len(fields)} fields, got {len(values)} values")
        return tuple.__new__(cls, values)  # the C tuple constructor: no code of the class runs

    return Global(new=new, call=new)


class _WithNamedTuples(dict):
    """An allowlist that also rebuilds plain namedtuple classes of already imported modules."""

    def get(self, key: Any, default: Any = None) -> Any:  # type: ignore[override]
        found = super().get(key)
        if found is None and type(key) is tuple and len(key) == 2:
            cls = namedtuple_class(*key)
            if cls is not None:
                problem = namedtuple_problem(cls)
                if problem is not None:
                    raise SerializeError(
                        f"{printable(key[0] + '.' + key[1])} {problem}: only plain namedtuples (made by "
                        "collections.namedtuple or typing.NamedTuple, without overrides) are rebuilt"
                    )
                return _namedtuple_global(cls)
        return found if found is not None else default


def with_namedtuples(table: Mapping[tuple[str, str], Global]) -> Mapping[tuple[str, str], Global]:
    """``table`` plus the plain namedtuple classes of modules this process has already imported
    (example inputs often are namedtuples; one is rebuilt as a tuple with its class set).
    The one rule for namedtuples, used by the ``torch.save`` reader and the torch-free walker."""
    return _WithNamedTuples(table)


# ------------------------------------------------------------------ result checks

