"""The torch runtime objects behind the schema enums: one table per mapping.

Each mapping is written once (torch value -> schema enum); the inverse is derived.
"""

from __future__ import annotations

import torch

from .. import schema
from ..errors import SerializeError
from ..format import tables as wire_tables

__all__ = [
    "DTYPES",
    "LAYOUTS",
    "MEMORY_FORMATS",
    "dtype_to_wire",
    "dtype_from_wire",
    "layout_to_wire",
    "layout_from_wire",
    "memory_format_to_wire",
    "memory_format_from_wire",
    "device_to_wire",
    "device_from_wire",
]

DTYPES: dict[torch.dtype, schema.ScalarType] = {
    torch.uint8: schema.ScalarType.BYTE,
    torch.int8: schema.ScalarType.CHAR,
    torch.int16: schema.ScalarType.SHORT,
    torch.int32: schema.ScalarType.INT,
    torch.int64: schema.ScalarType.LONG,
    torch.float16: schema.ScalarType.HALF,
    torch.float32: schema.ScalarType.FLOAT,
    torch.float64: schema.ScalarType.DOUBLE,
    torch.complex32: schema.ScalarType.COMPLEXHALF,
    torch.complex64: schema.ScalarType.COMPLEXFLOAT,
    torch.complex128: schema.ScalarType.COMPLEXDOUBLE,
    torch.bool: schema.ScalarType.BOOL,
    torch.bfloat16: schema.ScalarType.BFLOAT16,
    torch.uint16: schema.ScalarType.UINT16,
    torch.float8_e4m3fn: schema.ScalarType.FLOAT8E4M3FN,
    torch.float8_e5m2: schema.ScalarType.FLOAT8E5M2,
    torch.float8_e4m3fnuz: schema.ScalarType.FLOAT8E4M3FNUZ,
    torch.float8_e5m2fnuz: schema.ScalarType.FLOAT8E5M2FNUZ,
    torch.float8_e8m0fnu: schema.ScalarType.FLOAT8E8M0FNU,
    torch.uint32: schema.ScalarType.UINT32,
    torch.uint64: schema.ScalarType.UINT64,
}

LAYOUTS: dict[torch.layout, schema.Layout] = {
    torch.sparse_coo: schema.Layout.SparseCoo,
    torch.sparse_csr: schema.Layout.SparseCsr,
    torch.sparse_csc: schema.Layout.SparseCsc,
    torch.sparse_bsr: schema.Layout.SparseBsr,
    torch.sparse_bsc: schema.Layout.SparseBsc,
    torch._mkldnn: schema.Layout._mkldnn,  # type: ignore[attr-defined]
    torch.strided: schema.Layout.Strided,
}

MEMORY_FORMATS: dict[torch.memory_format, schema.MemoryFormat] = {
    torch.contiguous_format: schema.MemoryFormat.ContiguousFormat,
    torch.channels_last: schema.MemoryFormat.ChannelsLast,
    torch.channels_last_3d: schema.MemoryFormat.ChannelsLast3d,
    torch.preserve_format: schema.MemoryFormat.PreserveFormat,
}


def _inverse(table: dict) -> dict:
    return {wire: value for value, wire in table.items()}


_DTYPES_IN = _inverse(DTYPES)
_LAYOUTS_IN = _inverse(LAYOUTS)
_MEMORY_FORMATS_IN = _inverse(MEMORY_FORMATS)


def _lookup(table: dict, key, what: str):
    try:
        return table[key]
    except (KeyError, TypeError):
        raise SerializeError(f"{what} {key!r} has no representation in schema 8.20") from None


def dtype_to_wire(dtype: torch.dtype) -> schema.ScalarType:
    return _lookup(DTYPES, dtype, "dtype")


def dtype_from_wire(st: int) -> torch.dtype:
    return _lookup(_DTYPES_IN, st, "ScalarType")


def layout_to_wire(layout: torch.layout) -> schema.Layout:
    return _lookup(LAYOUTS, layout, "layout")


def layout_from_wire(value: int) -> torch.layout:
    return _lookup(_LAYOUTS_IN, value, "Layout")


def memory_format_to_wire(fmt: torch.memory_format) -> schema.MemoryFormat:
    return _lookup(MEMORY_FORMATS, fmt, "memory format")


def memory_format_from_wire(value: int) -> torch.memory_format:
    return _lookup(_MEMORY_FORMATS_IN, value, "MemoryFormat")


def device_to_wire(device: torch.device) -> schema.Device:
    return schema.Device(type=device.type, index=device.index)


#: devices already built, by ``(type, index)`` (a program names one or two, on every tensor)
_DEVICES: dict[tuple, torch.device] = {}


def device_from_wire(device: schema.Device) -> torch.device:
    key = (device.type, device.index)
    found = _DEVICES.get(key) if type(key[0]) is str and type(key[1]) in (int, type(None)) else None
    if found is not None:
        return found
    try:
        made = torch.device(device.type) if device.index is None else torch.device(device.type, device.index)
    except (RuntimeError, ValueError, TypeError) as e:
        raise SerializeError(f"Invalid device {device.type!r}:{device.index!r}: {e}") from None
    if made.index is None and made.type in ("hpu", torch._C._get_privateuse1_backend_name()) \
            and not hasattr(torch, made.type):  # what fake tensors look up for its index
        raise SerializeError(wire_tables.unindexed_device_problem(made.type))
    if len(_DEVICES) < 64 and type(key[0]) is str and type(key[1]) in (int, type(None)):
        _DEVICES[key] = made  # torch.device is immutable; a device type registered later changes nothing made here
    return made
