"""JSON bytes and plain values to and from the schema types of :mod:`pt2serde.schema`.

Encoding writes exactly what PyTorch 2.13 writes: every struct field in declaration
order (``null`` included), unions as one-key objects, enums as integers, and non-finite
floats as the strings ``"Infinity"``, ``"-Infinity"`` and ``"NaN"`` (so the output is
strict JSON), dumped with Python's default separators.

Decoding is strict where PyTorch is lax: a wrong type, an out-of-range enum value, a
missing required field, an unknown union tag or over-deep nesting raises
:class:`~pt2serde.errors.SerializeError` whose message ends with the wire path of the bad
value, e.g. ``Expected `int`, got `str` - at `$.graph_module.graph.nodes[3].inputs[0].arg```.
Unknown object keys are ignored (forward compatibility within a major version).

Both directions are driven by per-type closures built once from the type annotations
of the schema classes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from enum import IntEnum
from typing import Any, Callable, TypeVar

from .. import schema
from .fastcodec import MAX_NESTING, RECURSIVE_MEMBERS, fast_decoder, fast_encoder, nesting_guard
from .wire import Union
from ..errors import SerializeError, WireError

__all__ = [
    "to_dict",
    "to_json_bytes",
    "from_dict",
    "from_json_bytes",
    "loads_json",
    "unknown_fields",
    "MAX_JSON_BYTES",
    "MAX_NESTING",
    "MAX_INT_DIGITS",
    "JSON_EXPANSION",
    "JSON_EXPANSION_FLOOR",
    "check_json_expansion",
]

T = TypeVar("T")

MAX_JSON_BYTES = 1 << 31  # refuse documents over 2 GiB before parsing them

#: Integers of the wire format have at most this many decimal digits: CPython's default
#: ``int`` parsing limit, so ``from_dict`` refuses from a Python caller exactly what the JSON
#: reader refuses from a file (and :mod:`pt2serde.bridge.expr` from an expression string).
MAX_INT_DIGITS = 4300
_INT_BOUND = 10**MAX_INT_DIGITS
_INT_FLOOR = -_INT_BOUND  # kept: negating the bound on every check would allocate

#: JSON expansion budget: the Python objects one document may become, estimated from its
#: bytes before they are parsed, at most ``JSON_EXPANSION`` bytes per byte of JSON plus
#: ``JSON_EXPANSION_FLOOR``. The estimate charges what CPython 3.11 spends on each token
#: (strings included): a list 72 bytes (``[``), a dict 184 (``{``), an item 16 (``,``/``:``).
#: Real documents estimate at 5-11 bytes per byte (programs of 1k-5k nodes: 6.7-7.0,
#: payload headers: 9-11, every compat-corpus record: at most 9 above 1 KB); nested ``[]``
#: estimate at 40 and cost 36 (``[[[[]]]]``), so a 64 MiB document of them is refused
#: instead of becoming 2.3 GiB of lists.
JSON_EXPANSION = 16
JSON_EXPANSION_FLOOR = 8 << 20
_TOKEN_COST = ((b"[", 72), (b"{", 184), (b",", 16), (b":", 16))

_NONFINITE_IN = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}

Codec = Callable[[Any], Any]


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


# ------------------------------------------------------------- type resolution


def _hints(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    if issubclass(cls, Union):
        return {name: hints[name] for name in cls.MEMBERS}
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _optional_of(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if len(args) == 2 and type(None) in args:
            return args[0] if args[1] is type(None) else args[1]
    return None


# ------------------------------------------------------------------- decoding


def _dec_int(v: Any) -> int:
    if type(v) is int:
        if _INT_FLOOR < v < _INT_BOUND:
            return v
        raise WireError(_giant_int(v))
    raise WireError(f"Expected `int`, got `{_json_type(v)}`")


def _giant_int(v: int) -> str:
    return f"Integer of {v.bit_length()} bits has more than {MAX_INT_DIGITS} digits"


def _ints_in_range(values: Any) -> bool:
    """Every int of ``values`` (ints only) has at most MAX_INT_DIGITS digits."""
    return not values or (_INT_FLOOR < min(values) and max(values) < _INT_BOUND)


def _dec_str(v: Any) -> str:
    if type(v) is str:
        return v
    raise WireError(f"Expected `str`, got `{_json_type(v)}`")


def _dec_bool(v: Any) -> bool:
    if type(v) is bool:
        return v
    raise WireError(f"Expected `bool`, got `{_json_type(v)}`")


def _dec_float(v: Any) -> float:
    t = type(v)
    if t is float:
        return v
    if t is int:
        try:
            return float(v)
        except OverflowError:
            raise WireError(f"Integer of {v.bit_length()} bits is out of range for a `float`") from None
    if t is str and v in _NONFINITE_IN:
        return _NONFINITE_IN[v]
    raise WireError(f"Expected `float`, got `{_json_type(v)}`")


def _dec_any_as_true(v: Any) -> bool:
    # `as_none` members carry no information; old writers stored `[]` instead of `true`.
    return True


_DEC_PRIMITIVES: dict[Any, Codec] = {int: _dec_int, str: _dec_str, bool: _dec_bool, float: _dec_float}
_decoders: dict[Any, Codec] = {}


def _decoder(tp: Any) -> Codec:
    try:
        return _decoders[tp]
    except KeyError:
        return _build_decoder(tp)


def _build_decoder(tp: Any) -> Codec:
    if tp in _DEC_PRIMITIVES:
        return _DEC_PRIMITIVES[tp]
    inner = _optional_of(tp)
    if inner is not None:
        dec_inner = _decoder(inner)

        def dec_optional(v: Any) -> Any:
            return None if v is None else dec_inner(v)

        _decoders[tp] = dec_optional
        return dec_optional
    origin = typing.get_origin(tp)
    if origin is list:
        (elem,) = typing.get_args(tp)
        fn = _list_decoder(elem)
    elif origin is dict:
        key, val = typing.get_args(tp)
        if key is not str:
            raise TypeError(f"unsupported dict key type {key}")
        fn = _dict_decoder(val)
    elif isinstance(tp, type) and issubclass(tp, IntEnum):
        fn = _enum_decoder(tp)
    elif isinstance(tp, type) and issubclass(tp, Union):
        fn = _union_decoder(tp)
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        fn = _struct_decoder(tp)
    else:
        raise TypeError(f"no decoder for {tp!r}")
    _decoders[tp] = fn
    return fn


def _list_decoder(elem: Any) -> Codec:
    exact = elem if elem in (int, str, bool) else None
    expected = f"Expected `array`, got `{{}}`"

    if exact is not None:
        dec_elem = _DEC_PRIMITIVES[exact]

        def dec_list_prim(v: Any) -> list:
            if type(v) is not list:
                raise WireError(expected.format(_json_type(v)))
            for x in v:
                if type(x) is not exact:
                    break
            else:
                if exact is not int or _ints_in_range(v):
                    return v
            for i, y in enumerate(v):
                try:
                    dec_elem(y)
                except WireError as e:
                    raise e.push(i)
            return v

        return dec_list_prim

    holder: list[Codec] = []

    def dec_list(v: Any) -> list:
        if type(v) is not list:
            raise WireError(expected.format(_json_type(v)))
        dec_elem = holder[0]
        out = []
        append = out.append
        for i, x in enumerate(v):
            try:
                append(dec_elem(x))
            except WireError as e:
                raise e.push(i)
        return out

    holder.append(_decoder(elem))
    return dec_list


def _dict_decoder(val: Any) -> Codec:
    if val is str or val is int:
        dec_prim = _DEC_PRIMITIVES[val]

        def dec_dict_prim(v: Any) -> dict:
            if type(v) is not dict:
                raise WireError(f"Expected `object`, got `{_json_type(v)}`")
            _check_keys(v)
            for k, x in v.items():
                if type(x) is not val or val is int:
                    try:
                        dec_prim(x)
                    except WireError as e:
                        raise e.push(k)
            return v

        return dec_dict_prim

    holder: list[Codec] = []

    def dec_dict(v: Any) -> dict:
        if type(v) is not dict:
            raise WireError(f"Expected `object`, got `{_json_type(v)}`")
        _check_keys(v)
        dec_val = holder[0]
        out = {}
        for k, x in v.items():
            try:
                out[k] = dec_val(x)
            except WireError as e:
                raise e.push(k)
        return out

    holder.append(_decoder(val))
    return dec_dict


def _check_keys(v: dict) -> None:
    """Object keys are strings (always so from JSON; a Python caller may pass others)."""
    for k in v:
        if type(k) is not str:
            raise WireError(f"Expected `str` key, got `{_json_type(k)}`")


def _enum_decoder(enum_cls: type[IntEnum]) -> Codec:
    members = {int(m): m for m in enum_cls}
    allowed = ", ".join(str(k) for k in members)

    def dec_enum(v: Any) -> IntEnum:
        if type(v) is int:
            try:
                return members[v]
            except KeyError:
                if not _INT_FLOOR < v < _INT_BOUND:
                    raise WireError(_giant_int(v)) from None
                raise WireError(
                    f"Invalid enum value {v} for `{enum_cls.__name__}` (expected one of {allowed})"
                ) from None
        raise WireError(f"Expected `int` ({enum_cls.__name__}), got `{_json_type(v)}`")

    return dec_enum


def _nesting_error() -> WireError:
    return WireError(f"Subgraphs and dict arguments are nested deeper than the limit of {MAX_NESTING} levels")


def _union_decoder(cls: type[Union]) -> Codec:
    members: dict[str, Codec] = {}
    name = cls.__name__
    known = ", ".join(cls.MEMBERS)

    def dec_union(v: Any) -> Union:
        if type(v) is not dict:
            raise WireError(f"Expected `object` ({name}), got `{_json_type(v)}`")
        if len(v) != 1:
            raise WireError(f"Expected exactly one member for union `{name}`, got {len(v)}")
        ((tag, payload),) = v.items()
        try:
            dec = members[tag]
        except KeyError:
            raise WireError(
                f"Unknown tag `{tag}` for union `{name}` (known: {known})"
            ) from None
        try:
            value = dec(payload)
        except WireError as e:
            raise e.push(tag)
        obj = object.__new__(cls)
        object.__setattr__(obj, "type", tag)
        object.__setattr__(obj, "value", value)
        return obj

    _decoders[cls] = dec_union
    for member, tp in _hints(cls).items():
        members[member] = _dec_any_as_true if member == "as_none" else _decoder(tp)
        if (name, member) in RECURSIVE_MEMBERS:
            members[member] = nesting_guard(members[member], _nesting_error)
    return dec_union


def _struct_decoder(cls: type) -> Codec:
    plan: list[tuple[str, Codec, bool]] = []
    name = cls.__name__

    def dec_struct(v: Any) -> Any:
        if type(v) is not dict:
            raise WireError(f"Expected `object` ({name}), got `{_json_type(v)}`")
        kwargs = {}
        for field, dec, required in plan:
            try:
                raw = v[field]
            except KeyError:
                if required:
                    raise WireError(f"Object missing required field `{field}`") from None
                continue
            try:
                kwargs[field] = dec(raw)
            except WireError as e:
                raise e.push(field)
        return cls(**kwargs)

    _decoders[cls] = dec_struct
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        plan.append((f.name, _decoder(hints[f.name]), required))
    return dec_struct


def from_dict(cls: type[T], data: Any) -> T:
    """Decode a JSON-decoded value into the schema type ``cls``.

    Raises :class:`SerializeError` naming the ``$.path`` of the first bad value.
    """
    try:
        return fast_decoder(cls)(data)
    except Exception:  # noqa: BLE001 - the careful decoder below explains what is wrong
        pass
    try:
        return _decoder(cls)(data)
    except WireError:
        raise
    except RecursionError:
        raise SerializeError("Document is nested too deeply to decode") from None


def loads_json(
    data: bytes | bytearray | memoryview | str,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    what: str = "JSON document",
    nonfinite: list[str] | None = None,
) -> Any:
    """Parse strict JSON (UTF-8, no ``NaN``/``Infinity`` tokens) with a size cap.

    ``nonfinite``: when given, such tokens are read as floats and recorded in this list
    (for old documents whose writers produced them) instead of being refused.
    """
    if len(data) > max_bytes:
        raise SerializeError(f"{what} is {len(data)} bytes, over the limit of {max_bytes} bytes")
    if not isinstance(data, (str, bytes)):
        data = bytes(data)
    check_json_expansion(data, what)
    try:
        text = data if isinstance(data, str) else data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SerializeError(f"{what} is not valid UTF-8 (byte {e.start})") from None
    if nonfinite is None:
        parse_constant = _reject_constant
    else:
        def parse_constant(token: str) -> float:
            nonfinite.append(token)
            return _NONFINITE_IN[token]
    try:
        return json.loads(text, parse_constant=parse_constant, object_pairs_hook=_unique_keys)
    except _DuplicateKey as e:
        raise SerializeError(f"{what} is not valid JSON: duplicate key {e.key!r} in one object") from None
    except json.JSONDecodeError as e:
        raise SerializeError(f"{what} is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise SerializeError(f"{what} is nested too deeply to parse") from None
    except ValueError as e:  # e.g. an integer past CPython's digit limit
        raise SerializeError(f"{what} cannot be read: {e}") from None


def json_expansion(data: bytes | str) -> int:
    """Estimated bytes of the Python objects ``json.loads(data)`` makes (see :data:`JSON_EXPANSION`).

    Tokens are counted everywhere, strings included: an overestimate only for punctuation
    inside strings, and the JSON that real documents keep in strings (treespecs, custom
    metadata) is parsed again later anyway. Runs at the speed of ``bytes.count``.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return sum(cost * data.count(token) for token, cost in _TOKEN_COST)


def check_json_expansion(data: bytes | str, what: str = "JSON document") -> None:
    """Refuse JSON text whose parse would make more Python objects than its size justifies:
    over ``JSON_EXPANSION`` bytes of objects per byte plus ``JSON_EXPANSION_FLOOR`` (estimated
    by :func:`json_expansion`, before anything is parsed). Every JSON reader of file data
    calls this, directly or through :func:`loads_json`."""
    budget = JSON_EXPANSION * len(data) + JSON_EXPANSION_FLOOR
    if len(data) * 184 <= budget:  # not even all-`{` could reach the budget
        return
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    # `,` and `:` that json.loads acts on are at most one byte in two (a value lies between
    # two of them), so two counts settle most documents (programs: about 13 per byte)
    if 72 * raw.count(b"[") + 184 * raw.count(b"{") + 8 * len(raw) <= budget:
        return
    cost = json_expansion(raw)
    if cost > budget:
        raise SerializeError(
            f"{what} would expand to about {cost} bytes of Python objects, over the limit of {budget} "
            f"({JSON_EXPANSION} per byte of its {len(data)} bytes, plus {JSON_EXPANSION_FLOOR}): "
            "it is mostly brackets, braces and separators"
        )


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list) -> dict:
    """``object_pairs_hook``: refuse an object that names a key twice (parsers disagree on
    which value wins)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return out


def _reject_constant(token: str) -> Any:
    raise SerializeError(f"JSON document contains the non-standard token {token}")


def from_json_bytes(cls: type[T], data: bytes | bytearray | memoryview | str, *, max_bytes: int = MAX_JSON_BYTES) -> T:
    """Parse JSON bytes and decode them into ``cls`` (see :func:`from_dict`)."""
    return from_dict(cls, loads_json(data, max_bytes=max_bytes, what=f"{cls.__name__} document"))


def unknown_fields(cls: type, data: Any) -> list[str]:
    """Paths of object keys in ``data`` that ``cls`` does not declare and that carry a value.

    Used for documents of a newer minor version: a new field left at its empty default
    (``null``, ``false``, ``0``, ``""``, ``[]``, ``{}``) changes nothing; any other value
    means the document uses something this reader does not know.
    """
    found: list[str] = []

    def walk(tp: Any, v: Any, path: str) -> None:
        inner = _optional_of(tp)
        if inner is not None:
            tp = inner
        origin = typing.get_origin(tp)
        if origin is list and isinstance(v, list):
            (elem,) = typing.get_args(tp)
            for i, x in enumerate(v):
                walk(elem, x, f"{path}[{i}]")
        elif origin is dict and isinstance(v, dict):
            val = typing.get_args(tp)[1]
            for k, x in v.items():
                walk(val, x, f"{path}.{k}")
        elif isinstance(tp, type) and issubclass(tp, Union) and isinstance(v, dict):
            hints = _hints(tp)
            for tag, x in v.items():
                if tag in hints:
                    walk(hints[tag], x, f"{path}.{tag}")
        elif isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(v, dict):
            hints = _hints(tp)
            for k, x in v.items():
                if k in hints:
                    walk(hints[k], x, f"{path}.{k}")
                elif x not in (None, False, 0, "", [], {}):
                    found.append(f"{path}.{k}")

    walk(cls, data, "$")
    return found


# ------------------------------------------------------------------- encoding


def _enc_int(v: Any) -> int:
    if type(v) is int or (isinstance(v, int) and not isinstance(v, bool)):
        if _INT_FLOOR < v < _INT_BOUND:
            return v
        raise WireError(_giant_int(v))
    raise WireError(f"Expected `int`, got `{type(v).__name__}`")


def _enc_str(v: Any) -> str:
    if type(v) is str:
        return v
    if isinstance(v, str):  # str subclasses (TorchVersion, str enums) are written as plain text
        return str(v)
    raise WireError(f"Expected `str`, got `{type(v).__name__}`")


def _enc_bool(v: Any) -> bool:
    if type(v) is bool:
        return v
    raise WireError(f"Expected `bool`, got `{type(v).__name__}`")


def _enc_float(v: Any) -> Any:
    t = type(v)
    if t is float:
        if v - v == 0.0:  # finite
            return v
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    if t is int:
        return _enc_int(v)
    raise WireError(f"Expected `float`, got `{t.__name__}`")


_ENC_PRIMITIVES: dict[Any, Codec] = {int: _enc_int, str: _enc_str, bool: _enc_bool, float: _enc_float}
_encoders: dict[Any, Codec] = {}


def _encoder(tp: Any) -> Codec:
    try:
        return _encoders[tp]
    except KeyError:
        return _build_encoder(tp)


def _build_encoder(tp: Any) -> Codec:
    if tp in _ENC_PRIMITIVES:
        return _ENC_PRIMITIVES[tp]
    inner = _optional_of(tp)
    if inner is not None:
        enc_inner = _encoder(inner)

        def enc_optional(v: Any) -> Any:
            return None if v is None else enc_inner(v)

        fn = enc_optional
    elif typing.get_origin(tp) is list:
        fn = _list_encoder(typing.get_args(tp)[0])
    elif typing.get_origin(tp) is dict:
        fn = _dict_encoder(typing.get_args(tp)[1])
    elif isinstance(tp, type) and issubclass(tp, IntEnum):
        fn = _enum_encoder(tp)
    elif isinstance(tp, type) and issubclass(tp, Union):
        fn = _union_encoder(tp)
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        fn = _struct_encoder(tp)
    else:
        raise TypeError(f"no encoder for {tp!r}")
    _encoders[tp] = fn
    return fn


def _list_encoder(elem: Any) -> Codec:
    holder: list[Codec] = []

    if elem in (int, str, bool):
        exact = elem
        enc_prim = _ENC_PRIMITIVES[elem]

        def enc_list_prim(v: Any) -> list:
            if type(v) is not list and type(v) is not tuple:
                raise WireError(f"Expected `list`, got `{type(v).__name__}`")
            for i, x in enumerate(v):
                if type(x) is not exact:
                    try:
                        enc_prim(x)
                    except WireError as e:
                        raise e.push(i)
            return list(v)

        return enc_list_prim

    def enc_list(v: Any) -> list:
        if type(v) is not list and type(v) is not tuple:
            raise WireError(f"Expected `list`, got `{type(v).__name__}`")
        enc = holder[0]
        out = []
        for i, x in enumerate(v):
            try:
                out.append(enc(x))
            except WireError as e:
                raise e.push(i)
        return out

    holder.append(_encoder(elem))
    return enc_list


def _dict_encoder(val: Any) -> Codec:
    holder: list[Codec] = []

    def enc_dict(v: Any) -> dict:
        if not isinstance(v, dict):
            raise WireError(f"Expected `dict`, got `{type(v).__name__}`")
        enc = holder[0]
        out = {}
        for k, x in v.items():
            if type(k) is not str:
                raise WireError(f"Expected `str` key, got `{type(k).__name__}`")
            try:
                out[k] = enc(x)
            except WireError as e:
                raise e.push(k)
        return out

    holder.append(_encoder(val))
    return enc_dict


def _enum_encoder(enum_cls: type[IntEnum]) -> Codec:
    values = frozenset(int(m) for m in enum_cls)

    def enc_enum(v: Any) -> int:
        if isinstance(v, int) and not isinstance(v, bool) and v in values:
            return int(v)
        raise WireError(f"Expected a `{enum_cls.__name__}` value, got {v!r}")

    return enc_enum


def _union_encoder(cls: type[Union]) -> Codec:
    members: dict[str, Codec] = {}
    name = cls.__name__

    def enc_union(v: Any) -> dict:
        if type(v) is not cls:
            raise WireError(f"Expected `{name}`, got `{type(v).__name__}`")
        tag = v.type
        try:
            return {tag: members[tag](v.value)}
        except WireError as e:
            raise e.push(tag)

    _encoders[cls] = enc_union
    for member, tp in _hints(cls).items():
        members[member] = _encoder(tp)
    return enc_union


def _struct_encoder(cls: type) -> Codec:
    plan: list[tuple[str, Codec]] = []
    name = cls.__name__

    def enc_struct(v: Any) -> dict:
        if type(v) is not cls:
            raise WireError(f"Expected `{name}`, got `{type(v).__name__}`")
        out = {}
        for field, enc in plan:
            try:
                out[field] = enc(getattr(v, field))
            except WireError as e:
                raise e.push(field)
        return out

    _encoders[cls] = enc_struct
    hints = _hints(cls)
    plan.extend((f.name, _encoder(hints[f.name])) for f in dataclasses.fields(cls))
    return enc_struct


def to_dict(obj: Any) -> Any:
    """The JSON-ready plain value of a schema object (struct or union)."""
    try:
        return fast_encoder(type(obj))(obj)
    except Exception:  # noqa: BLE001 - the careful encoder below explains what is wrong
        return _encoder(type(obj))(obj)


def to_json_bytes(obj: Any) -> bytes:
    """Strict JSON bytes of a schema object, exactly as PyTorch 2.13 writes them."""
    return json.dumps(to_dict(obj), allow_nan=False).encode("utf-8")
