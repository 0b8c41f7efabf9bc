"""What the type annotations of :mod:`pt2serde.schema` say, in the terms the codecs use (torch-free).

Every walk over the schema's types (the careful decoder and its collect-all mode in
:mod:`pt2serde.format.schema_decoder`, the encoder in :mod:`pt2serde.format.codec`, the
generated fast paths of :mod:`pt2serde.format.fastcodec`) asks :func:`kind_of` what an
annotation is and dispatches on the answer through a table, so the one classification
of the schema's types is written here once.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from enum import IntEnum
from typing import Any, Callable

from ..wire import Union

__all__ = ["PRIMITIVES", "kind_of", "cached_codec", "optional_of", "type_hints", "struct_fields"]

#: The JSON scalar types of the schema.
PRIMITIVES = (int, str, bool, float)


def optional_of(tp: Any) -> Any:
    """``X`` for an annotation ``X | None`` (``Optional[X]``); ``None`` for anything else."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if len(args) == 2 and type(None) in args:
            return args[0] if args[1] is type(None) else args[1]
    return None


def kind_of(tp: Any) -> tuple[str, Any]:
    """``(kind, argument)`` of a schema annotation, one of: ``("primitive", int|str|bool|float)``,
    ``("optional", X)``, ``("list", element)``, ``("dict", value)`` (keys are always ``str``),
    ``("enum", cls)``, ``("union", cls)``, ``("struct", cls)``. Raises ``TypeError`` for
    anything else (a schema type no codec knows: a bug, never input data)."""
    if tp in PRIMITIVES:
        return "primitive", tp
    inner = optional_of(tp)
    if inner is not None:
        return "optional", inner
    origin = typing.get_origin(tp)
    if origin is list:
        return "list", typing.get_args(tp)[0]
    if origin is dict:
        key, val = typing.get_args(tp)
        if key is not str:
            raise TypeError(f"unsupported dict key type {key}")
        return "dict", val
    if isinstance(tp, type):
        if issubclass(tp, IntEnum):
            return "enum", tp
        if issubclass(tp, Union):
            return "union", tp
        if dataclasses.is_dataclass(tp):
            return "struct", tp
    raise TypeError(f"no codec for {tp!r}")


def cached_codec(tp: Any, cache: dict[Any, Callable], builders: dict[str, Callable], *args: Any) -> Callable:
    """``cache[tp]``, built on first use by ``builders[kind](argument, *args)`` for the
    :func:`kind_of` of ``tp``. A union or struct builder puts its function into ``cache``
    itself before it builds its members' (the schema recurses through them)."""
    try:
        return cache[tp]
    except KeyError:
        pass
    kind, arg = kind_of(tp)
    fn = cache[tp] = builders[kind](arg, *args)
    return fn


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """The resolved annotation of each member of a union, or each field of a struct, in
    declaration order."""
    hints = typing.get_type_hints(cls)
    if issubclass(cls, Union):
        return {name: hints[name] for name in cls.MEMBERS}
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


@functools.cache
def struct_fields(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """``(name, annotation, required)`` of a struct's fields, in declaration order; a field is
    required when it has neither a default nor a default factory."""
    hints = type_hints(cls)
    return tuple((f.name, hints[f.name],
                  f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
                 for f in dataclasses.fields(cls))
