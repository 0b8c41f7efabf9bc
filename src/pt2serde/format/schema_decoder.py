"""The one careful walk from JSON values to the schema types of :mod:`pt2serde.schema` (torch-free).

A decoder is built once per schema type (and mode) from the type annotations, as closures
(dispatched by :func:`~pt2serde.format.annotations.kind_of`, one builder per kind). Decoding is strict where
PyTorch is lax: a wrong type, an out-of-range enum value, a missing required field, an
unknown union tag or over-deep nesting is a problem named with the ``$.path`` of the bad
value, e.g. ``Expected `int`, got `str` - at `$.graph_module.graph.nodes[3].inputs[0].arg```.
Unknown object keys are ignored (forward compatibility within a major version).

The walk has two modes, one code:

* **strict** (:func:`strict_decoder`, behind ``codec.from_dict``): the first problem raises
  :class:`~pt2serde.errors.WireError`; its path is built only then, as it travels up.
* **collect-all** (:func:`collect_problems`, behind ``pt2serde validate``): every problem is
  recorded and the walk carries on past it (at most :data:`MAX_PROBLEMS`); with
  ``unknown_fields=True`` it also records each object key that a struct does not declare
  and that carries a value (documents of a newer minor version).

The generated fast path (:mod:`pt2serde.format.fastcodec`) runs first in ``from_dict``; it
accepts exactly what this decoder accepts (tests/format/test_codec_fast_agrees.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable

from .annotations import cached_codec, struct_fields, type_hints
from .fastcodec import MAX_INT_DIGITS, MAX_NESTING, RECURSIVE_MEMBERS, ints_in_range, nesting_guard
from .strict_json import NONFINITE_FLOATS
from ..wire import Union
from ..errors import WireError

__all__ = ["strict_decoder", "collect_problems", "Collected", "json_type_name", "decode_float", "checked_int_digits",
           "exact_type_check", "MAX_INT_DIGITS", "MAX_PROBLEMS",
           "STOPPED_TEXT"]

_INT_BOUND = 10**MAX_INT_DIGITS
_INT_FLOOR = -_INT_BOUND  # kept: negating the bound on every check would allocate

#: The collect-all mode stops walking once it has found this many problems; so does
#: ``validate`` for each program (:class:`pt2serde.format.problem.CappedProblems`).
MAX_PROBLEMS = 1000
#: The last problem listed when a walk stopped at :data:`MAX_PROBLEMS`.
STOPPED_TEXT = f"... and more problems: stopped after {MAX_PROBLEMS}"

Decoder = Callable[[Any], Any]

_JSON_TYPES = {type(None): "null", bool: "bool", int: "int", float: "float", str: "str", list: "array",
               dict: "object"}


def json_type_name(v: Any) -> str:
    """The JSON name of a decoded value's type (``null``, ``array``, ``object``, ...), as decode
    errors name it; the Python type name for anything JSON does not make."""
    for t in type(v).__mro__:
        if t in _JSON_TYPES:
            return _JSON_TYPES[t]
    return type(v).__name__


# ----------------------------------------------------------------- the two modes


class _Found(WireError):
    """Collect-all mode: the problems found below one value, travelling up together; each
    enclosing level pushes its path segment onto all of them."""

    def __init__(self, errors: list[WireError]) -> None:
        WireError.__init__(self, errors[0].message)
        self.errors = errors

    def push(self, segment: str | int) -> "_Found":
        for e in self.errors:
            e.push(segment)
        return self


class _UnknownField(WireError):
    """Collect-all mode with ``unknown_fields``: a key its struct does not declare."""


def _raise_first(found: _Found | None, error: WireError) -> _Found:
    """Strict mode: the first problem ends the walk."""
    raise error from None


def _collect(found: _Found | None, error: WireError) -> _Found:
    """Collect-all mode: add ``error`` to what this level found, and carry on (up to the limit)."""
    if found is None:
        found = error if isinstance(error, _Found) else _Found([error])
    else:
        found.errors.extend(error.errors if isinstance(error, _Found) else [error])
    if len(found.errors) >= MAX_PROBLEMS:
        raise found
    return found


@dataclass(frozen=True)
class _Mode:
    fail: Callable[[_Found | None, WireError], _Found]  # what a level does with a problem below it
    unknown_fields: bool  # record undeclared keys that carry a value
    decoders: dict[Any, Decoder] = field(default_factory=dict)  # built closures, by annotation


_STRICT = _Mode(_raise_first, False)
_COLLECT = _Mode(_collect, False)
_COLLECT_UNKNOWN = _Mode(_collect, True)


def _decoder(tp: Any, mode: _Mode) -> Decoder:
    return cached_codec(tp, mode.decoders, _BUILDERS, mode)


# ------------------------------------------------------------------ primitives


def checked_int_digits(v: int) -> int:
    """``v``, or a :class:`WireError` when it has more than :data:`MAX_INT_DIGITS` digits."""
    if _INT_FLOOR < v < _INT_BOUND:
        return v
    raise WireError(f"Integer of {v.bit_length()} bits has more than {MAX_INT_DIGITS} digits")


def exact_type_check(tp: type, name_of: Callable[[Any], str] = json_type_name) -> Decoder:
    """A function that returns its argument when its type is exactly ``tp``, and raises
    ``Expected `tp`, got `<name_of(value)>``` otherwise."""
    expected = f"Expected `{tp.__name__}`, got `{{}}`"

    def check(v: Any) -> Any:
        if type(v) is tp:
            return v
        raise WireError(expected.format(name_of(v)))

    return check


def _dec_int(v: Any) -> int:
    if type(v) is int:
        return checked_int_digits(v)
    raise WireError(f"Expected `int`, got `{json_type_name(v)}`")


def decode_float(v: Any) -> float:
    """A wire float: a JSON number, or ``"Infinity"``/``"-Infinity"``/``"NaN"``; raises
    :class:`WireError` for anything else (and for an int too large for a float)."""
    t = type(v)
    if t is float:
        return v
    if t is int:
        try:
            return float(v)
        except OverflowError:
            raise WireError(f"Integer of {v.bit_length()} bits is out of range for a `float`") from None
    if t is str and v in NONFINITE_FLOATS:
        return NONFINITE_FLOATS[v]
    raise WireError(f"Expected `float`, got `{json_type_name(v)}`")


def _dec_any_as_true(v: Any) -> bool:
    # `as_none` members carry no information; old writers stored `[]` instead of `true`.
    return True


_PRIMITIVES: dict[Any, Decoder] = {int: _dec_int, str: exact_type_check(str), bool: exact_type_check(bool),
                                   float: decode_float}


# ------------------------------------------------------------------ containers


def _optional_decoder(inner: Any, mode: _Mode) -> Decoder:
    dec_inner = _decoder(inner, mode)

    def dec_optional(v: Any) -> Any:
        return None if v is None else dec_inner(v)

    return dec_optional


def _list_decoder(elem: Any, mode: _Mode) -> Decoder:
    fail = mode.fail
    if elem in (int, str, bool):
        exact = elem
        dec_prim = _PRIMITIVES[exact]

        def dec_list_prim(v: Any) -> list:
            if type(v) is not list:
                raise WireError(f"Expected `array`, got `{json_type_name(v)}`")
            for x in v:
                if type(x) is not exact:
                    break
            else:
                if exact is not int or ints_in_range(v):
                    return v
            found = None
            for i, y in enumerate(v):
                try:
                    dec_prim(y)
                except WireError as e:
                    found = fail(found, e.push(i))
            if found is not None:
                raise found
            return v

        return dec_list_prim

    holder: list[Decoder] = []

    def dec_list(v: Any) -> list:
        if type(v) is not list:
            raise WireError(f"Expected `array`, got `{json_type_name(v)}`")
        dec_elem = holder[0]
        out = []
        append = out.append
        found = None
        for i, x in enumerate(v):
            try:
                append(dec_elem(x))
            except WireError as e:
                found = fail(found, e.push(i))
        if found is not None:
            raise found
        return out

    holder.append(_decoder(elem, mode))
    return dec_list


def _dict_decoder(val: Any, mode: _Mode) -> Decoder:
    fail = mode.fail
    holder: list[Decoder] = []
    prim = val is str or val is int

    def dec_dict(v: Any) -> dict:
        if type(v) is not dict:
            raise WireError(f"Expected `object`, got `{json_type_name(v)}`")
        for k in v:  # always so from JSON; a Python caller may pass other keys
            if type(k) is not str:
                raise WireError(f"Expected `str` key, got `{json_type_name(k)}`")
        dec_val = holder[0]
        out = v if prim else {}
        found = None
        for k, x in v.items():
            if prim and type(x) is val and val is not int:
                continue
            try:
                y = dec_val(x)
            except WireError as e:
                found = fail(found, e.push(k))
                continue
            if not prim:
                out[k] = y
        if found is not None:
            raise found
        return out

    holder.append(_PRIMITIVES[val] if prim else _decoder(val, mode))
    return dec_dict


def _enum_decoder(enum_cls: type[IntEnum], mode: _Mode) -> Decoder:
    members = {int(m): m for m in enum_cls}
    allowed = ", ".join(str(k) for k in members)

    def dec_enum(v: Any) -> IntEnum:
        if type(v) is int:
            if v in members:
                return members[v]
            checked_int_digits(v)
            raise WireError(f"Invalid enum value {v} for `{enum_cls.__name__}` (expected one of {allowed})")
        raise WireError(f"Expected `int` ({enum_cls.__name__}), got `{json_type_name(v)}`")

    return dec_enum


def _nesting_error() -> WireError:
    return WireError(f"Subgraphs and dict arguments are nested deeper than the limit of {MAX_NESTING} levels")


def _union_decoder(cls: type[Union], mode: _Mode) -> Decoder:
    members: dict[str, Decoder] = {}
    name = cls.__name__
    known = ", ".join(cls.MEMBERS)

    def dec_union(v: Any) -> Union:
        if type(v) is not dict:
            raise WireError(f"Expected `object` ({name}), got `{json_type_name(v)}`")
        if len(v) != 1:
            raise WireError(f"Expected exactly one member for union `{name}`, got {len(v)}")
        ((tag, payload),) = v.items()
        try:
            dec = members[tag]
        except KeyError:
            raise WireError(f"Unknown tag `{tag}` for union `{name}` (known: {known})") from None
        try:
            value = dec(payload)
        except WireError as e:
            raise e.push(tag)
        obj = object.__new__(cls)
        object.__setattr__(obj, "type", tag)
        object.__setattr__(obj, "value", value)
        return obj

    mode.decoders[cls] = dec_union  # before the members: the schema recurses through unions
    for member, tp in type_hints(cls).items():
        members[member] = _dec_any_as_true if member == "as_none" else _decoder(tp, mode)
        if (name, member) in RECURSIVE_MEMBERS:
            members[member] = nesting_guard(members[member], _nesting_error)
    return dec_union


_EMPTY = (None, False, 0, "", [], {})  # values of an unknown key that change nothing


def _struct_decoder(cls: type, mode: _Mode) -> Decoder:
    plan: list[tuple[str, Decoder, bool]] = []
    name = cls.__name__
    fail = mode.fail
    declared = frozenset(f for f, _, _ in struct_fields(cls)) if mode.unknown_fields else None

    def dec_struct(v: Any) -> Any:
        if type(v) is not dict:
            raise WireError(f"Expected `object` ({name}), got `{json_type_name(v)}`")
        kwargs = {}
        found = None
        for field_name, dec, required in plan:
            try:
                raw = v[field_name]
            except KeyError:
                if required:
                    found = fail(found, WireError(f"Object missing required field `{field_name}`"))
                continue
            try:
                kwargs[field_name] = dec(raw)
            except WireError as e:
                found = fail(found, e.push(field_name))
        if declared is not None:
            for k, x in v.items():
                if k not in declared and x not in _EMPTY:
                    found = fail(found, _UnknownField(k).push(k))
        if found is not None:
            raise found
        return cls(**kwargs)

    mode.decoders[cls] = dec_struct  # before the fields: the schema recurses through structs
    plan.extend((f, _decoder(tp, mode), required) for f, tp, required in struct_fields(cls))
    return dec_struct


_BUILDERS: dict[str, Callable[[Any, _Mode], Decoder]] = {
    "primitive": lambda tp, mode: _PRIMITIVES[tp],
    "optional": _optional_decoder,
    "list": _list_decoder,
    "dict": _dict_decoder,
    "enum": _enum_decoder,
    "union": _union_decoder,
    "struct": _struct_decoder,
}


# ------------------------------------------------------------------------- API


def strict_decoder(tp: Any) -> Decoder:
    """The careful decoder of schema type ``tp``: returns the decoded value, or raises
    :class:`WireError` (with its ``$.path``) at the first problem."""
    return _decoder(tp, _STRICT)


@dataclass
class Collected:
    """What :func:`collect_problems` found. ``value``: the decoded object when nothing was
    found, else ``None``; ``problems``: ``(message, $.path)``
    of every problem in walk order (struct fields in declaration order); ``unknown_fields``: the ``$.path`` of every undeclared
    key that carries a value (when asked for); ``stopped``: the walk stopped at
    :data:`MAX_PROBLEMS` (there may be more)."""

    value: Any
    problems: list[tuple[str, str]]
    unknown_fields: list[str]
    stopped: bool = False


def collect_problems(cls: type, raw: Any, *, unknown_fields: bool = False) -> Collected:
    """Decode ``raw`` (JSON-decoded) as schema type ``cls`` in collect-all mode: every place
    where it does not fit (at most :data:`MAX_PROBLEMS`), the same messages and paths the
    strict decoder raises. With ``unknown_fields``, also every object key that a struct does
    not declare and that carries a value other than ``null``, ``false``, ``0``, ``""``,
    ``[]`` or ``{}`` (a new field left at its empty default changes nothing)."""
    try:
        value = _decoder(cls, _COLLECT_UNKNOWN if unknown_fields else _COLLECT)(raw)
    except _Found as found:
        errors = found.errors[:MAX_PROBLEMS]
        stopped = len(found.errors) >= MAX_PROBLEMS
    except WireError as e:
        errors, stopped = [e], False
    except RecursionError:
        return Collected(None, [("Document is nested too deeply to check", "$")], [])
    else:
        return Collected(value, [], [])
    return Collected(None, [(e.message, e.path) for e in errors if not isinstance(e, _UnknownField)],
                     [e.path for e in errors if isinstance(e, _UnknownField)], stopped)
