"""Generated fast paths for :mod:`pt2serde.format.codec`.

For each schema type this module generates (with ``exec``, from the schema's own type
annotations only, never from input data) one Python function per struct and union that
encodes or decodes it with inlined type checks. The fast paths accept exactly what the
careful decoder in :mod:`pt2serde.format.schema_decoder` accepts, but they do not track where they are in
the document: on any failure the caller re-runs the careful decoder, which raises the
precise ``SerializeError`` with its ``$.path``.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from typing import Any, Callable

from .annotations import kind_of, type_hints
from .strict_json import NONFINITE_FLOATS

__all__ = ["fast_decoder", "fast_counting_decoder", "fast_encoder", "COLON_FIELDS", "SHARED_MEMBERS", "nesting_guard", "MAX_NESTING", "MAX_INT_DIGITS", "RECURSIVE_MEMBERS", "ints_in_range"]

MAX_NESTING = 64  # nested subgraphs and nested dict arguments, counted together
#: Union members through which the schema recurses; decoding them is depth-limited.
RECURSIVE_MEMBERS = frozenset({("Argument", "as_graph"), ("Argument", "as_string_to_argument")})


class _Depth(threading.local):
    level = 0


_depth = _Depth()


class NestingError(Exception):
    """Raised by :func:`nesting_guard` when the limit is exceeded."""


def nesting_guard(fn: Callable[[Any], Any], error: Callable[[], Exception] = NestingError) -> Callable[[Any], Any]:
    """Wrap a member decoder so that recursion through it is limited to MAX_NESTING levels."""

    def guarded(v: Any, *rest: Any) -> Any:
        level = _depth.level
        if level >= MAX_NESTING:
            raise error()
        _depth.level = level + 1
        try:
            return fn(v, *rest)
        finally:
            _depth.level = level

    return guarded


class _Bad(Exception):
    """Internal: the fast path met something it does not accept."""


def _bad(*_: Any) -> Any:
    raise _Bad


#: Integers of the wire format have at most this many decimal digits: CPython's default
#: ``int`` parsing limit, so ``from_dict`` refuses from a Python caller exactly what the JSON
#: reader refuses from a file (and :mod:`pt2serde.bridge.expr` from an expression string).
MAX_INT_DIGITS = 4300
_INT_BOUND = 10**MAX_INT_DIGITS
_INT_FLOOR = -_INT_BOUND


def ints_in_range(values: Any) -> bool:
    """No int of ``values`` (a list or dict view of ints) has more than MAX_INT_DIGITS digits."""
    return not values or (_INT_FLOOR < min(values) and max(values) < _INT_BOUND)


def _dfloat(v: Any) -> float:
    t = type(v)
    if t is float:
        return v
    if t is int:
        return float(v)
    return NONFINITE_FLOATS[v] if t is str else _bad()


def _efloat(v: Any) -> Any:
    t = type(v)
    if t is float:
        if v - v == 0.0:
            return v
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    return v if t is int and _INT_FLOOR < v < _INT_BOUND else _bad()


def _estr(v: Any) -> str:
    return str(v) if isinstance(v, str) else _bad()


def _eint(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and _INT_FLOOR < v < _INT_BOUND else _bad()


def _list(v: Any) -> list:
    return v if type(v) is list else _bad()


def _seq(v: Any) -> Any:
    return v if type(v) is list or type(v) is tuple else _bad()


def _dict(v: Any) -> dict:
    return v if type(v) is dict else _bad()


_ONLY_STR = {str}


def _strmap(v: Any) -> dict:
    """A ``dict[str, ...]`` value: a dict whose keys are all ``str`` (checked at C speed)."""
    return v if type(v) is dict and (not v or set(map(type, v)) == _ONLY_STR) else _bad()


def _strmap_counted(v: Any, n: Any) -> dict:
    """:func:`_strmap` that adds the dict's members and the colons of its keys to ``n``."""
    v = _strmap(v)
    n.members += len(v)
    n.colons += "".join(v).count(":")
    return v


def _value_colons(v: dict, n: Any) -> bool:
    """Adds the colons of the values of ``v`` (all ``str``) to ``n``."""
    n.colons += "".join(v.values()).count(":")
    return True


def _str_colons(v: Any, n: Any) -> Any:
    if type(v) is str:
        n.colons += v.count(":")
    return v


#: Union members whose objects a counting decoder makes once per value in a document (a
#: program of 5k nodes has about 40k ``SymInt`` objects of a handful of values): its documents are
#: read, never changed (``load``, ``deserialize``).
SHARED_MEMBERS = frozenset({("SymInt", "as_int")})

#: The ``str`` fields whose colons a counting decoder counts (``dict[str, str]`` fields are
#: always counted): the ones real documents put colons in (treespecs; extension ops' targets,
#: ``#<ns>:<op>``). A colon anywhere else makes
#: :func:`~pt2serde.format.strict_json.loads_json_counted` fall back, which is only slower.
COLON_FIELDS = frozenset({("ModuleCallSignature", "in_spec"), ("ModuleCallSignature", "out_spec"),
                          ("Node", "target")})


def _strkeys(v: Any) -> dict:
    if isinstance(v, dict) and all(type(k) is str for k in v):
        return v
    return _bad()


class _Gen:
    """Generates the functions for one direction (``decode`` or ``encode``)."""

    _PRIM_EXACT = {int: "int", str: "str", bool: "bool"}

    def __init__(self, direction: str, counting: bool = False) -> None:
        self.direction = direction
        #: decoders that also count what they read for loads_json_counted: each function takes
        #: the ColonCount as a second argument, ``_n``
        self.counting = counting
        self.extra = ", _n" if counting else ""
        self.prefix = f"{direction}{'_counting' if counting else ''}"
        self.ns: dict[str, Any] = {
            "_strmap_n": _strmap_counted, "_vcolons": _value_colons, "_scolons": _str_colons,
            "_bad": _bad, "_dfloat": _dfloat, "_efloat": _efloat, "_estr": _estr, "_eint": _eint,
            "_list": _list, "_seq": _seq, "_dict": _dict, "_strkeys": _strkeys, "_ints_ok": ints_in_range, "_strmap": _strmap,
            "_B": _INT_BOUND, "_NB": _INT_FLOOR,
            "_new": object.__new__, "_set": object.__setattr__,
        }
        self.names: dict[Any, str] = {}
        self.counter = itertools.count()

    def var(self) -> str:
        return f"_v{next(self.counter)}"

    def const(self, value: Any) -> str:
        name = f"_c{next(self.counter)}"
        self.ns[name] = value
        return name

    # -- expressions ---------------------------------------------------------

    def expr(self, tp: Any, src: str) -> str:
        """An expression that decodes (or encodes) the value of expression ``src`` as ``tp``."""
        kind, arg = kind_of(tp)
        return getattr(self, f"_expr_{kind}")(arg, src, self.var(), self.direction == "decode")

    def _expr_primitive(self, tp: Any, src: str, x: str, dec: bool) -> str:
        if tp is int:
            fallback = "_bad()" if dec else f"_eint({x})"
            return f"({x} if type({x} := {src}) is int and _NB < {x} < _B else {fallback})"
        if tp is float:
            return f"{'_dfloat' if dec else '_efloat'}({src})"
        t = self._PRIM_EXACT[tp]
        fallback = "_bad()" if dec or tp is bool else f"_estr({x})"
        return f"({x} if type({x} := {src}) is {t} else {fallback})"

    def _expr_optional(self, inner: Any, src: str, x: str, dec: bool) -> str:
        return f"(None if ({x} := {src}) is None else {self.expr(inner, x)})"

    def _expr_list(self, elem: Any, src: str, x: str, dec: bool) -> str:
        e = self.var()
        if elem in self._PRIM_EXACT:
            t = self._PRIM_EXACT[elem]
            body, kinds = (x, "(list,)") if dec else (f"list({x})", "(list, tuple)")
            ok = f" and _ints_ok({x})" if elem is int else ""
            return (f"({body} if type({x} := {src}) in {kinds} "
                    f"and all(type({e}) is {t} for {e} in {x}){ok} else _bad())")
        return f"[{self.expr(elem, e)} for {e} in {'_list' if dec else '_seq'}({src})]"

    def _expr_dict(self, val: Any, src: str, x: str, dec: bool) -> str:
        k, e = self.var(), self.var()
        strmap = "_strmap_n" if self.counting else "_strmap"
        if dec and val in self._PRIM_EXACT:
            t = self._PRIM_EXACT[val]
            ok = f" and _ints_ok({x}.values())" if val is int else ""
            if self.counting and val is str:
                ok = f" and _vcolons({x}, _n)"
            return (f"({x} if {strmap}({x} := {src}{self.extra}) is {x} "
                    f"and all(type({e}) is {t} for {e} in {x}.values()){ok} else _bad())")
        return f"{{{k}: {self.expr(val, e)} for {k}, {e} in {strmap if dec else '_strkeys'}({src}{self.extra}).items()}}"

    def _expr_enum(self, tp: type, src: str, x: str, dec: bool) -> str:
        table = self.const({int(m): m for m in tp} if dec else frozenset(int(m) for m in tp))
        if dec:
            return f"({table}[{x}] if type({x} := {src}) is int else _bad())"
        return f"(int({x}) if ({x} := {src}) in {table} and type({x}) is not bool else _bad())"

    def _expr_union(self, cls: type, src: str, x: str, dec: bool) -> str:
        return f"{self.function(cls)}({src}{self.extra})"

    _expr_struct = _expr_union

    # -- functions -----------------------------------------------------------

    def function(self, cls: type) -> str:
        if cls in self.names:
            return self.names[cls]
        name = self.names[cls] = f"_{self.prefix}_{cls.__name__}"
        self.ns[self.const_name(cls)] = cls
        hints = type_hints(cls)
        src = (self._union_function if kind_of(cls)[0] == "union" else self._struct_function)(cls, name, hints)
        exec(compile(src, f"<pt2serde fast {self.prefix} {cls.__name__}>", "exec"), self.ns)
        return name

    @staticmethod
    def const_name(cls: type) -> str:
        return f"_T_{cls.__name__}"

    def _union_function(self, cls: type, name: str, hints: dict) -> str:
        members = {}
        for member in cls.MEMBERS:
            fn_name = f"{name}__{member}"
            if self.direction == "decode" and member == "as_none":
                body = "True"
            else:
                body = self.expr(hints[member], "p")
            exec(f"def {fn_name}(p{self.extra}):\n    return {body}\n", self.ns)
            members[member] = self.ns[fn_name]
            if self.direction == "decode" and (cls.__name__, member) in RECURSIVE_MEMBERS:
                members[member] = nesting_guard(members[member])
        table = self.const(members)
        T = self.const_name(cls)
        if self.direction == "decode":
            # the first member whose payload is a bare int/str/bool is read inline (SymInt's
            # `as_int`: most unions of a document); every other member through its function
            inline = next((m for m in cls.MEMBERS if hints[m] in self._PRIM_EXACT and m != "as_none"
                           and (cls.__name__, m) not in RECURSIVE_MEMBERS), None)
            first = (f"    if tag == {inline!r}:\n        p = {self.expr(hints[inline], 'p')}\n    else:\n"
                     f"        p = {table}[tag](p{self.extra})\n") if inline else f"    p = {table}[tag](p{self.extra})\n"
            if self.counting and (cls.__name__, inline) in SHARED_MEMBERS:  # one object per int value
                first = (f"    if tag == {inline!r}:\n        p = {self.expr(hints[inline], 'p')}\n"
                         f"        o = _n.shared.get(({T}, p))\n"  # (keyed by class too: 1 == 1.0 == True)
                         f"        if o is None:\n"
                         f"            o = _n.shared[{T}, p] = _new({T})\n"
                         f"            _set(o, 'type', tag)\n"
                         f"            _set(o, 'value', p)\n"
                         f"        return o\n"
                         f"    p = {table}[tag](p{self.extra})\n")
            return (
                f"def {name}(v{self.extra}):\n"
                f"    ((tag, p),) = (v if type(v) is dict else _bad()).items()\n"
                + ("    _n.members += 1\n" if self.counting else "")
                + first +
                f"    o = _new({T})\n"
                f"    _set(o, 'type', tag)\n"
                f"    _set(o, 'value', p)\n"
                f"    return o\n"
            )
        return (
            f"def {name}(v):\n"
            f"    if type(v) is not {T}: _bad()\n"
            f"    t = v.type\n"
            f"    return {{t: {table}[t](v.value)}}\n"
        )

    def _struct_function(self, cls: type, name: str, hints: dict) -> str:
        T = self.const_name(cls)
        lines = []
        if self.direction == "decode":
            # positional arguments in field order where every field takes one (wire.struct's
            # fields do): a third of the cost of the same call by keyword
            positional = all(f.init and not f.kw_only for f in dataclasses.fields(cls))
            for f in dataclasses.fields(cls):
                value = self.expr(hints[f.name], f"v[{f.name!r}]")
                if self.counting and (cls.__name__, f.name) in COLON_FIELDS:
                    value = f"_scolons({value}, _n)"
                if f.default is not dataclasses.MISSING:
                    value = f"({value} if {f.name!r} in v else {self.const(f.default)})"
                elif f.default_factory is not dataclasses.MISSING:
                    value = f"({value} if {f.name!r} in v else {self.const(f.default_factory)}())"
                lines.append(f"        {value},  # {f.name}" if positional else f"        {f.name}={value},")
            return (
                f"def {name}(v{self.extra}):\n"
                f"    if type(v) is not dict: _bad()\n"
                + ("    _n.members += len(v)\n" if self.counting else "") +
                f"    return {T}(\n" + "\n".join(lines) + "\n    )\n"
            )
        for f in dataclasses.fields(cls):
            lines.append(f"        {f.name!r}: {self.expr(hints[f.name], f'v.{f.name}')},")
        return (
            f"def {name}(v):\n"
            f"    if type(v) is not {T}: _bad()\n"
            f"    return {{\n" + "\n".join(lines) + "\n    }\n"
        )


_decode_gen = _Gen("decode")
_counting_gen = _Gen("decode", counting=True)
_encode_gen = _Gen("encode")
_cache: dict[tuple[str, type], Callable] = {}
#: generation names a function before its code exists (types refer to themselves): another
#: thread must not see the name until the code is there
_generating = threading.RLock()


def _cached(key: tuple[str, type], gen: _Gen) -> Callable:
    fn = _cache.get(key)
    if fn is None:
        with _generating:
            fn = _cache.get(key)
            if fn is None:
                fn = _cache[key] = gen.ns[gen.function(key[1])]
    return fn


def fast_decoder(cls: type) -> Callable[[Any], Any]:
    """A fast decoder for ``cls``; it raises (any exception) instead of explaining."""
    return _cached(("decode", cls), _decode_gen)


def fast_counting_decoder(cls: type) -> Callable[[Any, Any], Any]:
    """:func:`fast_decoder` that also counts, into its second argument (a
    :class:`~pt2serde.format.strict_json.ColonCount`), the members of every object it reads and
    the colons of the ``dict[str, str]`` and :data:`COLON_FIELDS` strings: what
    :func:`~pt2serde.format.strict_json.loads_json_counted` needs to prove keys unique. Equal
    values of :data:`SHARED_MEMBERS` are one object (memo: the count's ``shared``): the result
    is for reading only."""
    return _cached(("decode_counting", cls), _counting_gen)


def fast_encoder(cls: type) -> Callable[[Any], Any]:
    """A fast encoder for ``cls``; it raises (any exception) instead of explaining."""
    return _cached(("encode", cls), _encode_gen)
