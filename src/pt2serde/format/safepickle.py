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

This module holds the opcode handlers and :func:`load`; the machine's state is
:mod:`.pickle_machine`, the allowed globals :mod:`.pickle_globals`, the budgets and the
bounded ``repr`` of messages :mod:`.pickle_budget` (their public names are re-exported here).
It is in the format layer: none of them imports torch or sympy.
"""

from __future__ import annotations

import codecs
import struct
from typing import Any, Callable, Mapping

from ..errors import SerializeError
from .pickle_budget import (  # noqa: F401 - re-exported: the names of this module's API
    MAX_DEPTH, MAX_KEY_NODES, Internal, check_tree, expanded_size, short, work_budget,
)
from .pickle_globals import PLAIN_GLOBALS, Global, GlobalRef, namedtuple_problem, with_namedtuples  # noqa: F401
from .pickle_machine import MAX_MEMO, MAX_STACK, STOP, Machine, opcode

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
    "short",
    "with_namedtuples",
    "work_budget",
]


HIGHEST_PROTOCOL = 5

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_F64 = struct.Struct(">d")


# ---------------------------------------------------------------- opcode handlers
# Each handler reads its argument, checks it, and changes the stack. Codes and names
# are those of the standard library's pickletools documentation.


@opcode(b"\x80", "PROTO")
def _proto(m: Machine) -> None:
    version = m.unpack(_U8)
    if version > HIGHEST_PROTOCOL:
        raise m.fail(f"pickle protocol {version} is not supported (highest is {HIGHEST_PROTOCOL})")


@opcode(b"\x95", "FRAME")
def _frame(m: Machine) -> None:
    m.length(_U64)  # framing is only a read-ahead hint; its length must fit the data


@opcode(b".", "STOP")
def _stop(m: Machine) -> Any:
    if m.marks:
        raise m.fail(f"STOP with {len(m.marks)} unclosed MARK(s) (corrupt pickle)")
    if len(m.stack) != 1:
        raise m.fail(f"STOP with {len(m.stack)} values on the stack instead of one (corrupt pickle)")
    if m.at != m.end:
        raise m.fail(f"{m.end - m.at} bytes follow the STOP opcode")
    return STOP


@opcode(b"(", "MARK")
def _mark(m: Machine) -> None:
    if len(m.marks) >= 2 * m.max_depth:
        raise m.fail(f"MARKs are nested deeper than {2 * m.max_depth} levels")
    m.marks.append(len(m.stack))


@opcode(b"0", "POP")
def _pop(m: Machine) -> None:
    if len(m.stack) > m.fence:
        m.stack.pop()
    elif m.marks:
        m.marks.pop()
    else:
        raise m.fail("POP from an empty stack (corrupt pickle)")


@opcode(b"1", "POP_MARK")
def _pop_mark(m: Machine) -> None:
    m.pop_mark()


@opcode(b"2", "DUP")
def _dup(m: Machine) -> None:
    m.push(m.top())


# --- values pushed as they are read: one table row per opcode


def _pusher(read: Callable[[Machine], Any]) -> Callable[[Machine], None]:
    def handler(m: Machine) -> None:
        m.push(read(m))

    return handler


def _counted(fmt: struct.Struct, convert: Callable[[Machine, bytes], Any]) -> Callable[[Machine], Any]:
    """Read a length in ``fmt`` (checked against what remains), then that many bytes."""
    return lambda m: convert(m, m.take(m.length(fmt)))


def _utf8(m: Machine, raw: bytes) -> str:
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as e:
        raise m.fail(f"{m.opname} text is not valid UTF-8 (byte {e.start} of the string)") from None


def _signed(m: Machine, raw: bytes) -> int:
    return int.from_bytes(raw, "little", signed=True)


def _raw(m: Machine, raw: bytes) -> bytes:
    return raw


def _text_bool_or_int(m: Machine) -> int | bool:
    text = m.line()  # protocol 0 writes True/False as I01 / I00
    if text == b"00" or text == b"01":
        return text == b"01"
    return m.text_int(text)


def _text_long(m: Machine) -> int:
    text = m.line()
    return m.text_int(text[:-1] if text.endswith(b"L") else text)


def _text_float(m: Machine) -> float:
    text = m.line()
    try:
        return float(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise m.fail(f"FLOAT argument {short(text)} is not a number") from None


def _text_string(m: Machine) -> str:
    text = m.line()  # a quoted Python 2 str literal, decoded as UTF-8 as torch.load does
    if len(text) < 2 or text[:1] not in (b"'", b'"') or text[-1:] != text[:1]:
        raise m.fail("STRING argument is not a quoted string")
    try:
        raw = codecs.escape_decode(text[1:-1])[0]
    except (ValueError, UnicodeDecodeError):
        raise m.fail("STRING argument has an invalid escape") from None
    return _utf8(m, raw)


def _text_unicode(m: Machine) -> str:
    text = m.line()
    try:
        return text.decode("raw-unicode-escape")
    except UnicodeDecodeError:
        raise m.fail("UNICODE argument has an invalid escape") from None


_READERS: list[tuple[bytes, str, Callable[[Machine], Any]]] = [
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
    opcode(_code, _name)(_pusher(_read))


# --- memo

opcode(b"p", "PUT")(lambda m: m.memo_put(m.text_int(m.line()), m.top()))
opcode(b"q", "BINPUT")(lambda m: m.memo_put(m.unpack(_U8), m.top()))
opcode(b"r", "LONG_BINPUT")(lambda m: m.memo_put(m.unpack(_U32), m.top()))
opcode(b"\x94", "MEMOIZE")(lambda m: m.memo_put(len(m.memo), m.top()))


# --- containers


@opcode(b"t", "TUPLE")
def _tuple(m: Machine) -> None:
    items = m.pop_mark()
    m.push(m.nested(tuple, items))


def _tuple_n(n: int) -> Callable[[Machine], None]:
    def handler(m: Machine) -> None:
        if len(m.stack) - m.fence < n:
            raise m.fail(f"{m.opname} needs {n} values on the stack (corrupt pickle)")
        items = m.stack[-n:]
        del m.stack[-n:]
        m.push(m.nested(tuple, items))

    return handler


opcode(b"\x85", "TUPLE1")(_tuple_n(1))
opcode(b"\x86", "TUPLE2")(_tuple_n(2))
opcode(b"\x87", "TUPLE3")(_tuple_n(3))


@opcode(b"\x91", "FROZENSET")
def _frozenset_op(m: Machine) -> None:
    m.push(m.nested(frozenset, m.pop_mark()))


@opcode(b"l", "LIST")
def _list(m: Machine) -> None:
    m.push(m.pop_mark())


@opcode(b"d", "DICT")
def _dict(m: Machine) -> None:
    items = m.pop_mark()
    target: dict = {}
    m.set_items(target, items)
    m.push(target)


def _list_target(m: Machine) -> list:
    target = m.top()
    if type(target) is not list:
        raise m.fail(f"{m.opname} to a {type(target).__name__} is not allowed (only list)")
    return target


@opcode(b"a", "APPEND")
def _append(m: Machine) -> None:
    value = m.pop()
    _list_target(m).append(value)


@opcode(b"e", "APPENDS")
def _appends(m: Machine) -> None:
    items = m.pop_mark()
    _list_target(m).extend(items)


@opcode(b"s", "SETITEM")
def _setitem(m: Machine) -> None:
    value = m.pop()
    key = m.pop()
    m.set_items(m.top(), [key, value])


@opcode(b"u", "SETITEMS")
def _setitems(m: Machine) -> None:
    items = m.pop_mark()
    m.set_items(m.top(), items)


@opcode(b"\x90", "ADDITEMS")
def _additems(m: Machine) -> None:
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


def _text_name(m: Machine) -> str:
    raw = m.line()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise m.fail(f"{m.opname} name is not valid UTF-8") from None


@opcode(b"c", "GLOBAL")
def _global(m: Machine) -> None:
    module = _text_name(m)
    name = _text_name(m)
    m.push(m.resolve(module, name))


@opcode(b"\x93", "STACK_GLOBAL")
def _stack_global(m: Machine) -> None:
    name = m.pop()
    module = m.pop()
    m.push(m.resolve(module, name))


@opcode(b"R", "REDUCE")
def _reduce(m: Machine) -> None:
    args = m.pop()
    ref = m.callable_ref(m.pop(), "call")
    m.push(m.construct(ref, "call", args))


@opcode(b"\x81", "NEWOBJ")
def _newobj(m: Machine) -> None:
    args = m.pop()
    ref = m.callable_ref(m.pop(), "new")
    m.push(m.construct(ref, "new", args))


@opcode(b"\x92", "NEWOBJ_EX")
def _newobj_ex(m: Machine) -> None:
    kwargs = m.pop()
    args = m.pop()
    ref = m.callable_ref(m.pop(), "new")
    if type(kwargs) is not dict or any(type(k) is not str for k in kwargs):
        raise m.fail("NEWOBJ_EX keyword arguments must be a dict with string keys")
    m.push(m.construct(ref, "new", args, kwargs))


@opcode(b"i", "INST")
def _inst(m: Machine) -> None:
    module = _text_name(m)
    name = _text_name(m)
    ref = m.callable_ref(m.resolve(module, name), "call")
    m.push(m.construct(ref, "call", tuple(m.pop_mark())))


@opcode(b"o", "OBJ")
def _obj(m: Machine) -> None:
    items = m.pop_mark()
    if not items:
        raise m.fail("OBJ without a class (corrupt pickle)")
    ref = m.callable_ref(items[0], "call")
    m.push(m.construct(ref, "call", tuple(items[1:])))


@opcode(b"b", "BUILD")
def _build(m: Machine) -> None:
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


@opcode(b"P", "PERSID")
def _persid(m: Machine) -> None:
    raw = m.line()
    try:
        pid = raw.decode("ascii")
    except UnicodeDecodeError:
        raise m.fail("PERSID argument is not ASCII") from None
    _persistent(m, pid)


@opcode(b"Q", "BINPERSID")
def _binpersid(m: Machine) -> None:
    _persistent(m, m.pop())


def _persistent(m: Machine, pid: Any) -> None:
    if m.persistent_load is None:
        raise m.fail(f"persistent id {short(pid)} found, but this pickle may not refer to external records")
    m.push(m.invoke("persistent id", m.persistent_load, (pid,)))


# --- refused outright


def _refuse(message: str) -> Callable[[Machine], None]:
    def handler(m: Machine) -> None:
        raise m.fail(message)

    return handler


for _code, _name in ((b"\x82", "EXT1"), (b"\x83", "EXT2"), (b"\x84", "EXT4")):
    opcode(_code, _name)(_refuse(f"{_name}: extension-registry codes name globals indirectly and are not supported"))
opcode(b"\x97", "NEXT_BUFFER")(_refuse("NEXT_BUFFER: out-of-band buffers are not supported"))
opcode(b"\x98", "READONLY_BUFFER")(_refuse("READONLY_BUFFER: out-of-band buffers are not supported"))


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
    machine = Machine(raw, globals, persistent_load, where, max_memo, max_stack, max_items, max_depth)
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
        raise machine.fail(f"unexpected {type(e).__name__}: {short(str(e))}") from None
