"""A restricted pickle virtual machine that never imports or calls anything on its own.

:func:`load` interprets pickle opcodes (protocols 0-5) itself. It never uses the standard
library's unpickler: a global named by the data (``GLOBAL``, ``STACK_GLOBAL``, ``INST``,
``OBJ``) is looked up in the caller's ``globals`` table, which maps ``(module, name)`` to a
:class:`Global` holding the caller's *own* builder functions, never to the real object of
that name. Anything not in the table is refused, naming the global and the byte offset.

What the machine does with values:

* ``REDUCE``/``INST``/``OBJ`` call ``Global.call``; ``NEWOBJ``/``NEWOBJ_EX`` call
  ``Global.new``. Nothing else can be called: not a value from the stack, not a method.
* ``BUILD`` only reaches objects that a global declaring ``setstate`` made during this
  load (tracked by identity), and hands the state to that function.
* ``APPEND(S)`` only target plain lists, ``SETITEM(S)`` plain dicts and ``OrderedDict``,
  ``ADDITEMS`` plain sets.
* Values a builder may receive but the result must not contain (a global used as a value,
  a storage handle) derive from :class:`Internal`; :func:`check_tree` refuses them.

Refused outright: extension codes (``EXT1/2/4``, they name globals through a process-wide
registry), out-of-band buffers (``NEXT_BUFFER``, ``READONLY_BUFFER``), protocols above 5,
unknown opcodes, trailing bytes after ``STOP``.

Limits, so that hostile input cannot exhaust memory, recursion or time:

* every length is checked against the bytes that remain before anything is allocated;
* the machine is a loop over opcodes (no recursion); ``MARK`` nesting, memo size and
  stack size are capped;
* tuples and frozensets (the hashable containers, which CPython hashes recursively) get
  their nesting depth checked when they are made; the finished result is walked once,
  iteratively, refusing cycles and nesting deeper than ``max_depth``;
* **work budget.** The memo lets a few bytes build a graph whose *tree expansion* is
  exponential (``T(i) = (T(i-1), T(i-1))``: 64 levels in 530 bytes). Hashing, comparing,
  ``repr``, ``copy`` and pytree flattening all walk that expansion, not the graph. So every
  value hashed here (a dict key, a set or frozenset member, handed to the machine or to a
  builder) must expand to at most :data:`MAX_KEY_NODES` objects (sizes are tracked as
  tuples are made, so the check is cheap), and the whole result to at most ``max_nodes``
  (:func:`work_budget`: :data:`NODES_PER_BYTE` per pickle byte, at least :data:`MIN_NODES`),
  counting every shared reference again;
* builders that copy their arguments could multiply a memoised value (``set(x)`` a
  thousand times): each call is charged the length of its string and container
  arguments against ``max_items``, which defaults to a small multiple of the input size;
* text integers longer than 4300 digits are refused (CPython's own conversion limit).

Namedtuples (:func:`with_namedtuples`): a class of an already imported module is rebuilt
(``tuple.__new__``, none of its code runs) only when it is a *plain* namedtuple, made by
``collections.namedtuple`` or ``typing.NamedTuple`` without overrides (:func:`namedtuple_problem`):
every dunder any reader may call on the value (iteration, ``len``, indexing, ``repr``, hash,
``==``, ``copy``/``deepcopy`` through ``__reduce_ex__``/``__getnewargs__``, attribute access,
pytree's ``list(d)``, ``cls(*values)``, ``_fields``, ``getattr(d, field)``, ``_make``,
``_asdict``, ``_replace``) is then ``tuple``'s own or the one ``collections.namedtuple``
generates. ``platform.uname_result`` (its ``__iter__`` runs ``uname -p``) is refused.

Every failure is a :class:`~pt2serde.errors.SerializeError` whose message ends in
``at byte <offset> of <where>``; no ``IndexError``/``struct.error``/``RecursionError``
leaves :func:`load`.

This module is in the format layer: it imports neither torch nor sympy.
"""

from __future__ import annotations

import codecs
import collections
import reprlib
import struct
import sys
import types
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

from ..errors import SerializeError

__all__ = [
    "Global",
    "GlobalRef",
    "Internal",
    "PLAIN_GLOBALS",
    "HIGHEST_PROTOCOL",
    "MAX_DEPTH",
    "check_tree",
    "expanded_size",
    "load",
    "namedtuple_problem",
    "with_namedtuples",
    "work_budget",
]

HIGHEST_PROTOCOL = 5
MAX_DEPTH = 256  # containers nested deeper than this are refused
MAX_MEMO = 1 << 22
MAX_STACK = 1 << 22
MAX_LINE = 1 << 16  # longest text argument (protocol 0 opcodes, GLOBAL names)
MAX_INT_DIGITS = 4300
MAX_KEY_NODES = 64  # objects a dict key / set member may expand to (hashing and == walk them all)
MIN_NODES = 1 << 16  # the result may always expand to this many objects ...
NODES_PER_BYTE = 2  # ... or to this many per pickle byte, whichever is more
_MAX_MESSAGE_VALUE = 120

_NOTHING = object()

# Protocol <3 pickles name Python 2 modules; the standard unpickler maps them back.
_MODULE_ALIASES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class Internal:
    """A value builders may exchange but the result must never contain.

    Subclasses (a global used as a value, a storage handle, a type marker) override
    :meth:`describe` so that refusals say what was found.
    """

    __slots__ = ()

    def describe(self) -> str:
        return type(self).__name__


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
                        f"{_printable(key[0] + '.' + key[1])} {problem}: only plain namedtuples (made by "
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

_SEQUENCES = (list, tuple, set, frozenset)


def _children(obj: Any) -> Iterator[Any] | None:
    """The values inside a container, iterated with the base type's own methods (never a
    subclass's ``__iter__``); None for anything that is not a container."""
    if isinstance(obj, tuple):
        return tuple.__iter__(obj)
    if isinstance(obj, list):
        return list.__iter__(obj)
    if isinstance(obj, (set, frozenset)):
        return (set.__iter__ if isinstance(obj, set) else frozenset.__iter__)(obj)
    if isinstance(obj, dict):
        extra = getattr(obj, "__dict__", None) if type(obj) is not dict else None
        parts: list[Iterable[Any]] = [dict.keys(obj), dict.values(obj)]
        if extra:
            parts.append(extra.values())
        return (x for part in parts for x in part)
    if type(obj) is slice:
        return iter((obj.start, obj.stop, obj.step))
    return None


def _count(obj: Any) -> int:
    return len(obj) if type(obj) is not slice else 3


def expanded_size(value: Any, limit: int) -> int:
    """How many objects ``value`` holds when expanded as a tree (each shared reference counted
    again: what hashing, ``==``, ``repr`` or pytree walk), or ``limit + 1`` once it is more.

    Costs at most ``limit`` steps, whatever the value.
    """
    count = 0
    stack = [value]
    while stack:
        v = stack.pop()
        count += 1
        it = _children(v)
        if it is None:
            continue
        if count + _count(v) > limit:
            return limit + 1
        stack.extend(it)
    return count


def work_budget(nbytes: int) -> int:
    """How many objects the result of an ``nbytes`` pickle may expand to (see the module docstring).

    Without shared containers a pickle spends at least one byte per object, so a real file
    stays below one object per byte; only memo references to containers expand further.
    """
    return max(MIN_NODES, NODES_PER_BYTE * nbytes)


def check_tree(root: Any, *, max_depth: int = MAX_DEPTH, max_nodes: int | None = None,
               what: str = "result") -> None:
    """Refuse internal values, reference cycles, nesting deeper than ``max_depth`` and, when
    ``max_nodes`` is given, a tree expansion of more than ``max_nodes`` objects.

    Walks containers (lists, tuples, sets, dicts and their attribute dicts, slices)
    iteratively; each container is visited once (its height and expanded size are kept), so
    the walk is linear in the graph while the size counts every shared reference again.
    """
    if isinstance(root, Internal):
        raise SerializeError(f"{root.describe()} cannot be part of the {what}")
    it = _children(root)
    if it is None:
        return
    cap = max_nodes if max_nodes is not None else 1 << 62
    known_at: dict[int, tuple[int, int]] = {}  # id -> (height, expanded size) of finished containers
    on_path: set[int] = {id(root)}
    stack: list[list[Any]] = [[root, it, 0, 1]]  # value, its children, height below, expanded size
    while stack:
        frame = stack[-1]
        descended = False
        for child in frame[1]:
            if isinstance(child, Internal):
                raise SerializeError(f"{child.describe()} cannot be part of the {what}")
            child_it = _children(child)
            if child_it is None:
                frame[3] += 1
                continue
            cid = id(child)
            if cid in on_path:
                raise SerializeError(f"the {what} contains a reference cycle (a {type(child).__name__} inside itself)")
            known = known_at.get(cid)
            if known is not None:
                if len(stack) + known[0] > max_depth:
                    raise SerializeError(f"the {what} is nested deeper than {max_depth} levels")
                if known[0] > frame[2]:
                    frame[2] = known[0]
                frame[3] = min(frame[3] + known[1], cap + 1)
                continue
            if len(stack) >= max_depth:
                raise SerializeError(f"the {what} is nested deeper than {max_depth} levels")
            on_path.add(cid)
            stack.append([child, child_it, 0, 1])
            descended = True
            break
        if descended:
            continue
        stack.pop()
        on_path.discard(id(frame[0]))
        if max_nodes is not None and frame[3] > cap:
            raise SerializeError(
                f"the {what} expands to more than {cap} objects when shared references are counted "
                "(hashing, comparing, printing or flattening it would walk every one)"
            )
        height = frame[2] + 1
        known_at[id(frame[0])] = (height, frame[3])
        if stack:
            if height > stack[-1][2]:
                stack[-1][2] = height
            stack[-1][3] = min(stack[-1][3] + frame[3], cap + 1)


class _BoundedRepr(reprlib.Repr):
    """``repr`` for error messages: a few levels and items only, whatever the value's size."""

    def repr1(self, x: Any, level: int) -> str:
        if isinstance(x, Internal):
            return x.describe()
        return super().repr1(x, level)


_REPR = _BoundedRepr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 6, 6, 6
_REPR.maxset = _REPR.maxfrozenset = 6
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 80


def _short(value: Any) -> str:
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a repr that fails must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _MAX_MESSAGE_VALUE else text[:_MAX_MESSAGE_VALUE] + "..."


def _printable(text: str) -> str:
    """``text`` as is when it is short and printable, else its (truncated) repr."""
    return text if text.isprintable() and len(text) <= _MAX_MESSAGE_VALUE else _short(text)


# ------------------------------------------------------------------ the machine

_STOP = object()
_HANDLERS: list[Callable[["_Machine"], Any] | None] = [None] * 256
_OPNAMES: dict[int, str] = {}


def _op(code: bytes, name: str):
    def register(fn: Callable[["_Machine"], Any]) -> Callable[["_Machine"], Any]:
        _HANDLERS[code[0]] = fn
        _OPNAMES[code[0]] = name
        return fn

    return register


_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_F64 = struct.Struct(">d")


class _Machine:
    def __init__(
        self,
        data: bytes,
        globals: Mapping[tuple[str, str], Global | Callable[..., Any]],
        persistent_load: Callable[[Any], Any] | None,
        where: str,
        max_memo: int,
        max_stack: int,
        max_items: int,
        max_depth: int,
    ) -> None:
        self.data = data
        self.end = len(data)
        self.at = 0
        self.op_at = 0
        self.globals = globals
        self.persistent_load = persistent_load
        self.where = where
        self.max_memo = max_memo
        self.max_stack = max_stack
        self.budget = max_items
        self.max_items = max_items
        self.max_depth = max_depth
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}
        self.refs: dict[tuple[str, str], Any] = {}
        self.made: dict[int, tuple[Any, GlobalRef]] = {}  # objects that may take BUILD
        self.depths: dict[int, int] = {}  # id -> nesting depth of tuples/frozensets deeper than 1
        self.sizes: dict[int, int] = {}  # id -> expanded size (capped) of tuples/frozensets seen
        self.pinned: list[Any] = []  # keeps the objects behind `depths` and `sizes` keys alive

    # ------------------------------------------------------------ errors, reads

    def fail(self, message: str) -> SerializeError:
        return SerializeError(f"{message} at byte {self.op_at} of {self.where}", path=self.where,
                              problem=message, offset=self.op_at)

    @property
    def opname(self) -> str:
        return _OPNAMES.get(self.data[self.op_at], "opcode") if self.op_at < self.end else "opcode"

    def take(self, n: int) -> bytes:
        if n > self.end - self.at:
            raise self.fail(
                f"{self.opname} needs {n} bytes but only {self.end - self.at} remain (truncated or corrupt pickle)"
            )
        start = self.at
        self.at += n
        return self.data[start:self.at]

    def unpack(self, fmt: struct.Struct) -> Any:
        if fmt.size > self.end - self.at:
            raise self.fail(f"{self.opname} argument is truncated")
        (value,) = fmt.unpack_from(self.data, self.at)
        self.at += fmt.size
        return value

    def length(self, fmt: struct.Struct) -> int:
        n = self.unpack(fmt)
        if n < 0:
            raise self.fail(f"{self.opname} declares a negative length {n}")
        if n > self.end - self.at:
            raise self.fail(
                f"{self.opname} declares {n} bytes but only {self.end - self.at} remain (truncated or corrupt pickle)"
            )
        return n

    def line(self) -> bytes:
        stop = self.data.find(b"\n", self.at, min(self.end, self.at + MAX_LINE + 1))
        if stop < 0:
            raise self.fail(f"{self.opname} argument is not terminated by a newline within {MAX_LINE} bytes")
        text = self.data[self.at:stop]
        self.at = stop + 1
        return text

    def text_int(self, text: bytes) -> int:
        body = text[1:] if text[:1] in (b"-", b"+") else text
        if not body or not body.isdigit():
            raise self.fail(f"{self.opname} argument {_short(text)} is not a decimal integer")
        if len(body) > MAX_INT_DIGITS:
            raise self.fail(f"{self.opname} integer has {len(body)} digits, over the limit of {MAX_INT_DIGITS}")
        return int(text)

    # ------------------------------------------------------------ stack

    @property
    def fence(self) -> int:
        return self.marks[-1] if self.marks else 0

    def push(self, value: Any) -> None:
        if len(self.stack) >= self.max_stack:
            raise self.fail(f"pickle stack grows over the limit of {self.max_stack} items")
        self.stack.append(value)

    def pop(self) -> Any:
        if len(self.stack) <= self.fence:
            raise self.fail(f"{self.opname} pops from an empty stack (corrupt pickle)")
        return self.stack.pop()

    def top(self) -> Any:
        if len(self.stack) <= self.fence:
            raise self.fail(f"{self.opname} needs a value on the stack (corrupt pickle)")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise self.fail(f"{self.opname} without a preceding MARK (corrupt pickle)")
        mark = self.marks.pop()
        items = self.stack[mark:]
        del self.stack[mark:]
        return items

    # ------------------------------------------------------------ values

    def depth_of(self, value: Any) -> int:
        if isinstance(value, (tuple, frozenset)):
            return self.depths.get(id(value), 1)
        return 0

    def track(self, value: Any, items: Iterable[Any], kind: str) -> None:
        """Record the nesting depth of a new tuple or frozenset; refuse it when too deep.

        CPython hashes and compares these recursively, so their depth must be known when
        they are made, before anything can use one as a dict key or set member.
        """
        self.record(value, items, self.depth_for(items, kind))

    def depth_for(self, items: Iterable[Any], kind: str) -> int:
        """The nesting depth of a tuple or frozenset of ``items``; refused when too deep."""
        depth = 1 + max((self.depth_of(x) for x in items), default=0)
        if depth > self.max_depth:
            raise self.fail(f"{kind}s are nested deeper than {self.max_depth} levels")
        return depth

    def record(self, value: Any, items: Iterable[Any], depth: int) -> None:
        """Remember the depth and expanded size of a nested tuple or frozenset."""
        if depth > 1:
            self.depths[id(value)] = depth
            self.sizes[id(value)] = min(1 + sum(self.size_of(x) for x in items), MAX_KEY_NODES + 1)
            self.pinned.append(value)

    def size_of(self, value: Any) -> int:
        """How many objects hashing ``value`` walks (capped at ``MAX_KEY_NODES + 1``).

        Known for the nested tuples this machine made (:meth:`track`); any other tuple is
        walked once, at most ``MAX_KEY_NODES`` steps, and remembered. Making a flat tuple
        costs an opcode per item, so the walks cost at most a step per byte in total.
        """
        if not isinstance(value, (tuple, frozenset)):
            return 1
        known = self.sizes.get(id(value))
        if known is None:
            known = expanded_size(value, MAX_KEY_NODES)
            self.sizes[id(value)] = known
            self.pinned.append(value)
        return known

    def key(self, value: Any, what: str = "dict key") -> None:
        """Refuse a value about to be hashed (a dict key, a set member) that expands to more
        than :data:`MAX_KEY_NODES` objects: hashing and comparing it would walk every one."""
        if self.size_of(value) > MAX_KEY_NODES:
            raise self.fail(
                f"a {what} ({type(value).__name__}) expands to more than {MAX_KEY_NODES} objects when shared "
                "references are counted; hashing it would walk every one"
            )

    def nested(self, kind: type, items: list[Any]) -> Any:
        """A tuple or frozenset of ``items``, refused when nested too deeply to hash safely."""
        depth = self.depth_for(items, kind.__name__)
        if kind is frozenset:
            for item in items:
                self.key(item, "frozenset member")
        try:
            value = kind(items)
        except TypeError as e:  # unhashable frozenset member
            raise self.fail(f"{self.opname}: {e}") from None
        self.record(value, items, depth)
        return value

    def memo_put(self, index: int, value: Any) -> None:
        if index not in self.memo and len(self.memo) >= self.max_memo:
            raise self.fail(f"memo grows over the limit of {self.max_memo} entries")
        self.memo[index] = value

    def memo_get(self, index: int) -> Any:
        try:
            return self.memo[index]
        except KeyError:
            raise self.fail(f"{self.opname} refers to memo entry {index}, which was never stored") from None

    def set_items(self, target: Any, items: list[Any]) -> None:
        if type(target) not in (dict, OrderedDict):
            raise self.fail(f"{self.opname} on a {type(target).__name__} is not allowed (only dict and OrderedDict)")
        if len(items) % 2:
            raise self.fail(f"{self.opname} has an odd number of items (a key without a value)")
        for i in range(0, len(items), 2):
            self.key(items[i])
        try:
            for i in range(0, len(items), 2):
                target[items[i]] = items[i + 1]
        except TypeError:
            raise self.fail(f"{self.opname}: dict key of type {type(items[i]).__name__} is unhashable") from None

    def charge(self, values: Iterable[Any]) -> None:
        cost = 0
        for v in values:
            if isinstance(v, (str, bytes, bytearray, list, tuple, dict, set, frozenset)):
                cost += len(v)
        self.budget -= cost
        if self.budget < 0:
            raise self.fail(
                f"builders were handed more than {self.max_items} items in total (amplification through the memo?)"
            )

    # ------------------------------------------------------------ globals and calls

    def resolve(self, module: Any, name: Any) -> Any:
        if type(module) is not str or type(name) is not str:
            raise self.fail(f"{self.opname} needs a module and a name as strings")
        module = _MODULE_ALIASES.get(module, module)
        key = (module, name)
        if key in self.refs:
            return self.refs[key]
        spec = self.globals.get(key)
        if spec is None:
            raise self.fail(f"{self.opname} {_printable(module + '.' + name)} is not an allowed global")
        if not isinstance(spec, Global):
            spec = Global(call=spec)
        value = spec.value if spec.is_value else GlobalRef(module, name, spec)
        self.refs[key] = value
        return value

    def callable_ref(self, value: Any, kind: str) -> GlobalRef:
        if not isinstance(value, GlobalRef):
            raise self.fail(f"{self.opname} needs an allowed global to {kind}, got {_short(value)}")
        fn = value.spec.call if kind == "call" else value.spec.new
        if fn is None:
            raise self.fail(f"{self.opname}: {value.qualname} may not be used to {kind} here")
        return value

    def invoke(self, label: str, fn: Callable[..., Any], args: tuple, kwargs: dict | None = None) -> Any:
        self.charge(args)
        if kwargs:
            self.charge(kwargs.values())
        try:
            result = fn(*args, **(kwargs or {}))
        except SerializeError as e:
            raise self.fail(f"{label}: {e}") from None
        except Exception as e:  # noqa: BLE001 - a builder's own failure, reported with the offset
            raise self.fail(f"{label}{_short(args)} failed: {type(e).__name__}: {_short(str(e))}") from None
        if isinstance(result, (tuple, frozenset)):  # e.g. frozenset(...) of deep tuples
            self.track(result, result, type(result).__name__)
        return result

    def construct(self, ref: GlobalRef, kind: str, args: Any, kwargs: dict | None = None) -> Any:
        if type(args) is not tuple:
            raise self.fail(f"{self.opname} arguments for {ref.qualname} must be a tuple, got {type(args).__name__}")
        fn = ref.spec.call if kind == "call" else ref.spec.new  # callable_ref checked it is set
        if ref.spec.keys is not None:
            self.charge(args)  # the keys are walked once more here: counted against the same budget
            for key in ref.spec.keys(args):
                self.key(key, f"{ref.qualname} key")
        result = self.invoke(ref.qualname, fn, args, kwargs)
        if ref.spec.setstate is not None:
            self.made[id(result)] = (result, ref)
        return result

    # ------------------------------------------------------------ main loop

    def run(self) -> Any:
        handlers = _HANDLERS
        data = self.data
        while True:
            if self.at >= self.end:
                self.op_at = self.at
                raise self.fail("pickle ends without a STOP opcode (truncated)")
            self.op_at = self.at
            code = data[self.at]
            self.at += 1
            handler = handlers[code]
            if handler is None:
                raise self.fail(f"unknown opcode 0x{code:02x} ({_short(bytes([code]))})")
            if handler(self) is _STOP:
                result = self.stack[0]
                self.stack.clear()
                self.memo.clear()
                return result


# ---------------------------------------------------------------- opcode handlers
# Each handler reads its argument, checks it, and changes the stack. Codes and names
# are those of the standard library's pickletools documentation.


@_op(b"\x80", "PROTO")
def _proto(m: _Machine) -> None:
    version = m.unpack(_U8)
    if version > HIGHEST_PROTOCOL:
        raise m.fail(f"pickle protocol {version} is not supported (highest is {HIGHEST_PROTOCOL})")


@_op(b"\x95", "FRAME")
def _frame(m: _Machine) -> None:
    m.length(_U64)  # framing is only a read-ahead hint; its length must fit the data


@_op(b".", "STOP")
def _stop(m: _Machine) -> Any:
    if m.marks:
        raise m.fail(f"STOP with {len(m.marks)} unclosed MARK(s) (corrupt pickle)")
    if len(m.stack) != 1:
        raise m.fail(f"STOP with {len(m.stack)} values on the stack instead of one (corrupt pickle)")
    if m.at != m.end:
        raise m.fail(f"{m.end - m.at} bytes follow the STOP opcode")
    return _STOP


@_op(b"(", "MARK")
def _mark(m: _Machine) -> None:
    if len(m.marks) >= 2 * m.max_depth:
        raise m.fail(f"MARKs are nested deeper than {2 * m.max_depth} levels")
    m.marks.append(len(m.stack))


@_op(b"0", "POP")
def _pop(m: _Machine) -> None:
    if len(m.stack) > m.fence:
        m.stack.pop()
    elif m.marks:
        m.marks.pop()
    else:
        raise m.fail("POP from an empty stack (corrupt pickle)")


@_op(b"1", "POP_MARK")
def _pop_mark(m: _Machine) -> None:
    m.pop_mark()


@_op(b"2", "DUP")
def _dup(m: _Machine) -> None:
    m.push(m.top())


# --- values pushed as they are read: one table row per opcode


def _pusher(read: Callable[[_Machine], Any]) -> Callable[[_Machine], None]:
    def handler(m: _Machine) -> None:
        m.push(read(m))

    return handler


def _counted(fmt: struct.Struct, convert: Callable[[_Machine, bytes], Any]) -> Callable[[_Machine], Any]:
    """Read a length in ``fmt`` (checked against what remains), then that many bytes."""
    return lambda m: convert(m, m.take(m.length(fmt)))


def _utf8(m: _Machine, raw: bytes) -> str:
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as e:
        raise m.fail(f"{m.opname} text is not valid UTF-8 (byte {e.start} of the string)") from None


def _signed(m: _Machine, raw: bytes) -> int:
    return int.from_bytes(raw, "little", signed=True)


def _raw(m: _Machine, raw: bytes) -> bytes:
    return raw


def _text_bool_or_int(m: _Machine) -> int | bool:
    text = m.line()  # protocol 0 writes True/False as I01 / I00
    if text == b"00" or text == b"01":
        return text == b"01"
    return m.text_int(text)


def _text_long(m: _Machine) -> int:
    text = m.line()
    return m.text_int(text[:-1] if text.endswith(b"L") else text)


def _text_float(m: _Machine) -> float:
    text = m.line()
    try:
        return float(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise m.fail(f"FLOAT argument {_short(text)} is not a number") from None


def _text_string(m: _Machine) -> str:
    text = m.line()  # a quoted Python 2 str literal, decoded as UTF-8 as torch.load does
    if len(text) < 2 or text[:1] not in (b"'", b'"') or text[-1:] != text[:1]:
        raise m.fail("STRING argument is not a quoted string")
    try:
        raw = codecs.escape_decode(text[1:-1])[0]
    except (ValueError, UnicodeDecodeError):
        raise m.fail("STRING argument has an invalid escape") from None
    return _utf8(m, raw)


def _text_unicode(m: _Machine) -> str:
    text = m.line()
    try:
        return text.decode("raw-unicode-escape")
    except UnicodeDecodeError:
        raise m.fail("UNICODE argument has an invalid escape") from None


_READERS: list[tuple[bytes, str, Callable[[_Machine], Any]]] = [
    (b"N", "NONE", lambda m: None),
    (b"\x88", "NEWTRUE", lambda m: True),
    (b"\x89", "NEWFALSE", lambda m: False),
    (b")", "EMPTY_TUPLE", lambda m: ()),
    (b"]", "EMPTY_LIST", lambda m: []),
    (b"}", "EMPTY_DICT", lambda m: {}),
    (b"\x8f", "EMPTY_SET", lambda m: set()),
    (b"I", "INT", _text_bool_or_int),
    (b"L", "LONG", _text_long),
    (b"F", "FLOAT", _text_float),
    (b"S", "STRING", _text_string),
    (b"V", "UNICODE", _text_unicode),
    (b"J", "BININT", lambda m: m.unpack(_I32)),
    (b"K", "BININT1", lambda m: m.unpack(_U8)),
    (b"M", "BININT2", lambda m: m.unpack(_U16)),
    (b"G", "BINFLOAT", lambda m: m.unpack(_F64)),
    (b"\x8a", "LONG1", _counted(_U8, _signed)),
    (b"\x8b", "LONG4", _counted(_I32, _signed)),
    (b"T", "BINSTRING", _counted(_I32, _utf8)),
    (b"U", "SHORT_BINSTRING", _counted(_U8, _utf8)),
    (b"X", "BINUNICODE", _counted(_U32, _utf8)),
    (b"\x8c", "SHORT_BINUNICODE", _counted(_U8, _utf8)),
    (b"\x8d", "BINUNICODE8", _counted(_U64, _utf8)),
    (b"C", "SHORT_BINBYTES", _counted(_U8, _raw)),
    (b"B", "BINBYTES", _counted(_U32, _raw)),
    (b"\x8e", "BINBYTES8", _counted(_U64, _raw)),
    (b"\x96", "BYTEARRAY8", _counted(_U64, lambda m, raw: bytearray(raw))),
    (b"g", "GET", lambda m: m.memo_get(m.text_int(m.line()))),
    (b"h", "BINGET", lambda m: m.memo_get(m.unpack(_U8))),
    (b"j", "LONG_BINGET", lambda m: m.memo_get(m.unpack(_U32))),
]
for _code, _name, _read in _READERS:
    _op(_code, _name)(_pusher(_read))


# --- memo

_op(b"p", "PUT")(lambda m: m.memo_put(m.text_int(m.line()), m.top()))
_op(b"q", "BINPUT")(lambda m: m.memo_put(m.unpack(_U8), m.top()))
_op(b"r", "LONG_BINPUT")(lambda m: m.memo_put(m.unpack(_U32), m.top()))
_op(b"\x94", "MEMOIZE")(lambda m: m.memo_put(len(m.memo), m.top()))


# --- containers


@_op(b"t", "TUPLE")
def _tuple(m: _Machine) -> None:
    items = m.pop_mark()
    m.push(m.nested(tuple, items))


def _tuple_n(n: int) -> Callable[[_Machine], None]:
    def handler(m: _Machine) -> None:
        if len(m.stack) - m.fence < n:
            raise m.fail(f"{m.opname} needs {n} values on the stack (corrupt pickle)")
        items = m.stack[-n:]
        del m.stack[-n:]
        m.push(m.nested(tuple, items))

    return handler


_op(b"\x85", "TUPLE1")(_tuple_n(1))
_op(b"\x86", "TUPLE2")(_tuple_n(2))
_op(b"\x87", "TUPLE3")(_tuple_n(3))


@_op(b"\x91", "FROZENSET")
def _frozenset_op(m: _Machine) -> None:
    m.push(m.nested(frozenset, m.pop_mark()))


@_op(b"l", "LIST")
def _list(m: _Machine) -> None:
    m.push(m.pop_mark())


@_op(b"d", "DICT")
def _dict(m: _Machine) -> None:
    items = m.pop_mark()
    target: dict = {}
    m.set_items(target, items)
    m.push(target)


def _list_target(m: _Machine) -> list:
    target = m.top()
    if type(target) is not list:
        raise m.fail(f"{m.opname} to a {type(target).__name__} is not allowed (only list)")
    return target


@_op(b"a", "APPEND")
def _append(m: _Machine) -> None:
    value = m.pop()
    _list_target(m).append(value)


@_op(b"e", "APPENDS")
def _appends(m: _Machine) -> None:
    items = m.pop_mark()
    _list_target(m).extend(items)


@_op(b"s", "SETITEM")
def _setitem(m: _Machine) -> None:
    value = m.pop()
    key = m.pop()
    m.set_items(m.top(), [key, value])


@_op(b"u", "SETITEMS")
def _setitems(m: _Machine) -> None:
    items = m.pop_mark()
    m.set_items(m.top(), items)


@_op(b"\x90", "ADDITEMS")
def _additems(m: _Machine) -> None:
    items = m.pop_mark()
    target = m.top()
    if type(target) is not set:
        raise m.fail(f"ADDITEMS to a {type(target).__name__} is not allowed (only set)")
    for item in items:
        m.key(item, "set member")
    try:
        target.update(items)
    except TypeError as e:
        raise m.fail(f"ADDITEMS: {e}") from None


# --- globals, calls, state


def _text_name(m: _Machine) -> str:
    raw = m.line()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise m.fail(f"{m.opname} name is not valid UTF-8") from None


@_op(b"c", "GLOBAL")
def _global(m: _Machine) -> None:
    module = _text_name(m)
    name = _text_name(m)
    m.push(m.resolve(module, name))


@_op(b"\x93", "STACK_GLOBAL")
def _stack_global(m: _Machine) -> None:
    name = m.pop()
    module = m.pop()
    m.push(m.resolve(module, name))


@_op(b"R", "REDUCE")
def _reduce(m: _Machine) -> None:
    args = m.pop()
    ref = m.callable_ref(m.pop(), "call")
    m.push(m.construct(ref, "call", args))


@_op(b"\x81", "NEWOBJ")
def _newobj(m: _Machine) -> None:
    args = m.pop()
    ref = m.callable_ref(m.pop(), "new")
    m.push(m.construct(ref, "new", args))


@_op(b"\x92", "NEWOBJ_EX")
def _newobj_ex(m: _Machine) -> None:
    kwargs = m.pop()
    args = m.pop()
    ref = m.callable_ref(m.pop(), "new")
    if type(kwargs) is not dict or any(type(k) is not str for k in kwargs):
        raise m.fail("NEWOBJ_EX keyword arguments must be a dict with string keys")
    m.push(m.construct(ref, "new", args, kwargs))


@_op(b"i", "INST")
def _inst(m: _Machine) -> None:
    module = _text_name(m)
    name = _text_name(m)
    ref = m.callable_ref(m.resolve(module, name), "call")
    m.push(m.construct(ref, "call", tuple(m.pop_mark())))


@_op(b"o", "OBJ")
def _obj(m: _Machine) -> None:
    items = m.pop_mark()
    if not items:
        raise m.fail("OBJ without a class (corrupt pickle)")
    ref = m.callable_ref(items[0], "call")
    m.push(m.construct(ref, "call", tuple(items[1:])))


@_op(b"b", "BUILD")
def _build(m: _Machine) -> None:
    state = m.pop()
    target = m.top()
    entry = m.made.get(id(target))
    if entry is None or entry[0] is not target:
        raise m.fail(
            f"BUILD on a {type(target).__name__} is not allowed: only objects made by an allowed global "
            "that accepts state can take it"
        )
    ref = entry[1]  # only globals with a setstate register what they make
    m.invoke(f"{ref.qualname} state", ref.spec.setstate, (target, state))


@_op(b"P", "PERSID")
def _persid(m: _Machine) -> None:
    raw = m.line()
    try:
        pid = raw.decode("ascii")
    except UnicodeDecodeError:
        raise m.fail("PERSID argument is not ASCII") from None
    _persistent(m, pid)


@_op(b"Q", "BINPERSID")
def _binpersid(m: _Machine) -> None:
    _persistent(m, m.pop())


def _persistent(m: _Machine, pid: Any) -> None:
    if m.persistent_load is None:
        raise m.fail(f"persistent id {_short(pid)} found, but this pickle may not refer to external records")
    m.push(m.invoke("persistent id", m.persistent_load, (pid,)))


# --- refused outright


def _refuse(message: str) -> Callable[[_Machine], None]:
    def handler(m: _Machine) -> None:
        raise m.fail(message)

    return handler


for _code, _name in ((b"\x82", "EXT1"), (b"\x83", "EXT2"), (b"\x84", "EXT4")):
    _op(_code, _name)(_refuse(f"{_name}: extension-registry codes name globals indirectly and are not supported"))
_op(b"\x97", "NEXT_BUFFER")(_refuse("NEXT_BUFFER: out-of-band buffers are not supported"))
_op(b"\x98", "READONLY_BUFFER")(_refuse("READONLY_BUFFER: out-of-band buffers are not supported"))


# ---------------------------------------------------------------- entry point


def load(
    data: bytes | bytearray | memoryview,
    *,
    globals: Mapping[tuple[str, str], Global | Callable[..., Any]],
    persistent_load: Callable[[Any], Any] | None = None,
    where: str = "pickle",
    max_memo: int = MAX_MEMO,
    max_stack: int = MAX_STACK,
    max_items: int | None = None,
    max_depth: int = MAX_DEPTH,
    max_nodes: int | None = None,
) -> Any:
    """Interpret the pickle ``data`` with only the builders in ``globals``.

    ``globals``: ``(module, name) -> Global`` (a bare callable means ``Global(call=...)``).
    Python 2 module names (``__builtin__``, ``copy_reg``) are looked up under their
    Python 3 names. ``persistent_load``: called with each persistent id; without it
    persistent ids are refused. ``where`` names the data in error messages
    (``... at byte 12 of archive/data.pkl in model.pt``). ``max_items`` bounds the total
    length of strings and containers handed to builders (default: four times the input
    size plus one million). ``max_nodes`` bounds the result's tree expansion (default:
    :func:`work_budget` of the input size); dict keys and set members are always bounded by
    :data:`MAX_KEY_NODES`.
    """
    raw = data if isinstance(data, bytes) else bytes(data)
    if max_items is None:
        max_items = 4 * len(raw) + (1 << 20)
    if max_nodes is None:
        max_nodes = work_budget(len(raw))
    machine = _Machine(raw, globals, persistent_load, where, max_memo, max_stack, max_items, max_depth)
    try:
        result = machine.run()
        check_tree(result, max_depth=max_depth, max_nodes=max_nodes)
        return result
    except SerializeError as e:
        if e.offset is not None:  # placed in the stream already
            raise
        raise machine.fail(str(e)) from None
    except (MemoryError, RecursionError) as e:
        raise machine.fail(f"{type(e).__name__} while unpickling") from None
    except Exception as e:  # noqa: BLE001 - a gap in the checks above must still not leak
        raise machine.fail(f"unexpected {type(e).__name__}: {_short(str(e))}") from None
