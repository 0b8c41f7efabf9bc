"""JSON bytes and plain values to and from the schema types of :mod:`pt2serde.schema`.

Encoding writes exactly what PyTorch 2.13 writes: every struct field in declaration
order (``null`` included), unions as one-key objects, enums as integers, and non-finite
floats as the strings ``"Infinity"``, ``"-Infinity"`` and ``"NaN"`` (so the output is
strict JSON), dumped with Python's default separators.

Decoding (:func:`from_dict`) tries the generated fast path of :mod:`pt2serde.format.fastcodec`
and, when it gives up, the careful decoder of :mod:`pt2serde.format.schema_decoder`, which
raises :class:`~pt2serde.errors.SerializeError` naming the ``$.path`` of the first bad value.
Parsing JSON text with its limits is :mod:`pt2serde.format.strict_json`.

The encoders are per-type closures built once from the type annotations of the schema
classes, dispatched by :func:`~pt2serde.format.annotations.kind_of` as the decoders are.
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any, Callable, TypeVar

from .annotations import cached_codec, type_hints
from .fastcodec import MAX_NESTING, fast_decoder, fast_encoder
from .schema_decoder import (MAX_INT_DIGITS, checked_int_digits, decode_float, exact_type_check, json_type_name,
                             strict_decoder)
from .strict_json import (JSON_EXPANSION, JSON_EXPANSION_FLOOR, MAX_JSON_BYTES, check_json_expansion,
                          json_expansion, loads_json)
from ..wire import Union
from ..errors import SerializeError, WireError

__all__ = [
    "to_dict",
    "to_json_bytes",
    "from_dict",
    "from_json_bytes",
    "encode_float",
    # re-exported from the modules that hold them, for callers that read and write documents
    "decode_float",
    "json_type_name",
    "loads_json",
    "json_expansion",
    "MAX_JSON_BYTES",
    "MAX_NESTING",
    "MAX_INT_DIGITS",
    "JSON_EXPANSION",
    "JSON_EXPANSION_FLOOR",
    "check_json_expansion",
]

T = TypeVar("T")

Codec = Callable[[Any], Any]


def from_dict(cls: type[T], data: Any) -> T:
    """Decode a JSON-decoded value into the schema type ``cls``.

    Raises :class:`SerializeError` naming the ``$.path`` of the first bad value.
    """
    try:
        return fast_decoder(cls)(data)
    except Exception:  # noqa: BLE001 - the careful decoder below explains what is wrong
        pass
    try:
        return strict_decoder(cls)(data)
    except WireError:
        raise
    except RecursionError:
        raise SerializeError("Document is nested too deeply to decode") from None


def from_json_bytes(cls: type[T], data: bytes | bytearray | memoryview | str, *, max_bytes: int = MAX_JSON_BYTES) -> T:
    """Parse JSON bytes and decode them into ``cls`` (see :func:`from_dict`)."""
    return from_dict(cls, loads_json(data, max_bytes=max_bytes, what=f"{cls.__name__} document"))


# ------------------------------------------------------------------- encoding


def _enc_int(v: Any) -> int:
    if type(v) is int or (isinstance(v, int) and not isinstance(v, bool)):
        return checked_int_digits(v)
    raise WireError(f"Expected `int`, got `{type(v).__name__}`")


def _enc_str(v: Any) -> str:
    if type(v) is str:
        return v
    if isinstance(v, str):  # str subclasses (TorchVersion, str enums) are written as plain text
        return str(v)
    raise WireError(f"Expected `str`, got `{type(v).__name__}`")


def _python_type_name(v: Any) -> str:
    return type(v).__name__


_enc_bool = exact_type_check(bool, _python_type_name)


def encode_float(v: Any) -> Any:
    """A float as the wire writes it: finite ones as numbers, others as ``"Infinity"``,
    ``"-Infinity"`` or ``"NaN"``; an int as itself."""
    t = type(v)
    if t is float:
        if v - v == 0.0:  # finite
            return v
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    if t is int:
        return _enc_int(v)
    raise WireError(f"Expected `float`, got `{t.__name__}`")


_encoders: dict[Any, Codec] = {}


def _encoder(tp: Any) -> Codec:
    return cached_codec(tp, _encoders, _BUILDERS)


def _optional_encoder(inner: Any) -> Codec:
    enc_inner = _encoder(inner)

    def enc_optional(v: Any) -> Any:
        return None if v is None else enc_inner(v)

    return enc_optional


def _list_encoder(elem: Any) -> Codec:
    holder: list[Codec] = []

    if elem in (int, str, bool):
        exact = elem
        enc_prim = _PRIMITIVES[elem]

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
    for member, tp in type_hints(cls).items():
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
    plan.extend((f, _encoder(tp)) for f, tp in type_hints(cls).items())
    return enc_struct


_PRIMITIVES: dict[Any, Codec] = {int: _enc_int, str: _enc_str, bool: _enc_bool, float: encode_float}
_BUILDERS: dict[str, Callable[[Any], Codec]] = {
    "primitive": _PRIMITIVES.__getitem__,
    "optional": _optional_encoder,
    "list": _list_encoder,
    "dict": _dict_encoder,
    "enum": _enum_encoder,
    "union": _union_encoder,
    "struct": _struct_encoder,
}


def to_dict(obj: Any) -> Any:
    """The JSON-ready plain value of a schema object (struct or union)."""
    try:
        return fast_encoder(type(obj))(obj)
    except Exception:  # noqa: BLE001 - the careful encoder below explains what is wrong
        return _encoder(type(obj))(obj)


def to_json_bytes(obj: Any) -> bytes:
    """Strict JSON bytes of a schema object, exactly as PyTorch 2.13 writes them."""
    return json.dumps(to_dict(obj), allow_nan=False).encode("utf-8")
