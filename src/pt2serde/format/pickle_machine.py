"""The pickle virtual machine's state: stack, marks, memo, input and limits (torch-free).

:class:`Machine` reads the opcode stream of one pickle and holds what the opcodes work on;
the opcodes themselves are registered in :data:`HANDLERS` (by :func:`opcode`) by
:mod:`pt2serde.format.safepickle`, which runs the machine. Every refusal is
:meth:`Machine.fail`: a :class:`~pt2serde.errors.SerializeError` naming the byte offset.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import Any, Callable, Iterable, Mapping

from ..errors import SerializeError
from .pickle_budget import MAX_KEY_NODES, expanded_size, printable, short
from .pickle_globals import Global, GlobalRef

__all__ = ["HANDLERS", "Machine", "OPNAMES", "STOP", "opcode"]

MAX_MEMO = 1 << 22
MAX_STACK = 1 << 22
MAX_LINE = 1 << 16  # longest text argument (protocol 0 opcodes, GLOBAL names)
MAX_INT_DIGITS = 4300
MAX_SAME_HASH = 64  # distinct dict keys / set members of one pickle that may share a hash value

# Protocol <3 pickles name Python 2 modules; the standard unpickler maps them back.
_MODULE_ALIASES = {"__builtin__": "builtins", "copy_reg": "copyreg"}

STOP = object()  #: what the STOP handler returns: the pickle is done
HANDLERS: list[Callable[["Machine"], Any] | None] = [None] * 256
OPNAMES: dict[int, str] = {}


def opcode(code: bytes, name: str):
    """Register the decorated function as the handler of opcode ``code`` (named ``name``)."""
    def register(fn: Callable[["Machine"], Any]) -> Callable[["Machine"], Any]:
        HANDLERS[code[0]] = fn
        OPNAMES[code[0]] = name
        return fn

    return register



_VALUE_KEYS = (int, float, complex, str, bytes, bool, tuple, frozenset, type(None))


def _same_key(a: Any, b: Any) -> bool:
    """Whether two hashed keys are the same key: plain values by value, anything else (a tensor
    or a builder's object, hashed by identity) by identity; a comparison that raises (a tuple
    holding tensors) counts as different keys, never as an error."""
    if a is b:
        return True
    if type(a) is not type(b) or type(a) not in _VALUE_KEYS:
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - e.g. elementwise == of tensors inside tuples
        return False

class Machine:
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
        self.hashes: dict[int, list[Any]] = {}  # hash -> the distinct keys seen with it (see `key`)

    # ------------------------------------------------------------ errors, reads

    def fail(self, message: str) -> SerializeError:
        return SerializeError(f"{message} at byte {self.op_at} of {self.where}", path=self.where,
                              problem=message, offset=self.op_at)

    @property
    def opname(self) -> str:
        return OPNAMES.get(self.data[self.op_at], "opcode") if self.op_at < self.end else "opcode"

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
            raise self.fail(f"{self.opname} argument {short(text)} is not a decimal integer")
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
        than :data:`MAX_KEY_NODES` objects (hashing and comparing it would walk every one), or
        that would be the ``MAX_SAME_HASH + 1``-th distinct key of the pickle with its hash:
        ints, floats and tuples have hashes a file can choose (``k * (2**61 - 1)`` all hash to
        0), and a dict or set of n colliding keys takes n**2 comparisons to build."""
        if self.size_of(value) > MAX_KEY_NODES:
            raise self.fail(
                f"a {what} ({type(value).__name__}) expands to more than {MAX_KEY_NODES} objects when shared "
                "references are counted; hashing it would walk every one"
            )
        try:
            h = hash(value)
        except TypeError:
            return  # unhashable: the dict or set refuses it
        same = self.hashes.setdefault(h, [])
        if any(_same_key(v, value) for v in same):
            return
        if len(same) < MAX_SAME_HASH:
            same.append(value)
            return
        raise self.fail(f"{MAX_SAME_HASH + 1} distinct {what}s share one hash value ({short(value)} and "
                        f"{short(same[0])}): building a dict or set of keys chosen to collide takes quadratic time")

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
            raise self.fail(f"{self.opname} {printable(module + '.' + name)} is not an allowed global")
        if not isinstance(spec, Global):
            spec = Global(call=spec)
        value = spec.value if spec.is_value else GlobalRef(module, name, spec)
        self.refs[key] = value
        return value

    def callable_ref(self, value: Any, kind: str) -> GlobalRef:
        if not isinstance(value, GlobalRef):
            raise self.fail(f"{self.opname} needs an allowed global to {kind}, got {short(value)}")
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
            raise self.fail(f"{label}{short(args)} failed: {type(e).__name__}: {short(str(e))}") from None
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
        handlers = HANDLERS
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
                raise self.fail(f"unknown opcode 0x{code:02x} ({short(bytes([code]))})")
            if handler(self) is STOP:
                result = self.stack[0]
                self.stack.clear()
                self.memo.clear()
                return result


# ---------------------------------------------------------------- opcode handlers
# Each handler reads its argument, checks it, and changes the stack. Codes and names
# are those of the standard library's pickletools documentation.


