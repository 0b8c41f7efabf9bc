"""Torch-free names for wire values: the dtype table, sizes and devices as text.

Used by the commands that work without torch (``inspect``, ``validate``, ``diff``); the
bridge layer has its own torch-facing table (:mod:`pt2serde.bridge.tables`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import schema
from .expr import parse as parse_expr, render as render_expr
from ..errors import SerializeError

__all__ = ["DType", "DTYPES", "BY_NAME", "sym_text", "device_text", "DEVICE_TYPES", "MAX_DEVICE_INDEX",
           "device_problem", "unknown_device_type", "BACKEND_INDEXED_TYPES", "unindexed_device_problem", "dtype_problem", "GRAD_DTYPES", "GRAD_DTYPE_NAMES", "grad_problem"]


@dataclass(frozen=True)
class DType:
    """A wire dtype: its torch name, element size and ``struct`` format (None: compared as bytes only)."""

    name: str
    itemsize: int
    fmt: str | None  # 'f', 'e', ... ; "bf16" for bfloat16; "c:<fmt>" for complex pairs

    @property
    def short(self) -> str:
        """The short name graph pictures label values with: ``f32``, ``bf16``, ``i64``, ``u8``,
        ``c64``, ``f8e4m3fn``, ``bool``."""
        for long, short in _SHORT_PREFIXES:
            if self.name.startswith(long):
                return short + self.name[len(long):].replace("_", "")
        return self.name


_SHORT_PREFIXES = (("bfloat", "bf"), ("float", "f"), ("complex", "c"), ("uint", "u"), ("int", "i"))


_S = schema.ScalarType
DTYPES: dict[schema.ScalarType, DType] = {
    _S.BYTE: DType("uint8", 1, "B"),
    _S.CHAR: DType("int8", 1, "b"),
    _S.SHORT: DType("int16", 2, "h"),
    _S.INT: DType("int32", 4, "i"),
    _S.LONG: DType("int64", 8, "q"),
    _S.HALF: DType("float16", 2, "e"),
    _S.FLOAT: DType("float32", 4, "f"),
    _S.DOUBLE: DType("float64", 8, "d"),
    _S.COMPLEXHALF: DType("complex32", 4, "c:e"),
    _S.COMPLEXFLOAT: DType("complex64", 8, "c:f"),
    _S.COMPLEXDOUBLE: DType("complex128", 16, "c:d"),
    _S.BOOL: DType("bool", 1, "?"),
    _S.BFLOAT16: DType("bfloat16", 2, "bf16"),
    _S.UINT16: DType("uint16", 2, "H"),
    _S.FLOAT8E4M3FN: DType("float8_e4m3fn", 1, None),
    _S.FLOAT8E5M2: DType("float8_e5m2", 1, None),
    _S.FLOAT8E4M3FNUZ: DType("float8_e4m3fnuz", 1, None),
    _S.FLOAT8E5M2FNUZ: DType("float8_e5m2fnuz", 1, None),
    _S.FLOAT8E8M0FNU: DType("float8_e8m0fnu", 1, None),
    _S.UINT32: DType("uint32", 4, "I"),
    _S.UINT64: DType("uint64", 8, "Q"),
}
"""The one table of wire dtypes for the torch-free commands; :data:`BY_NAME` is derived."""

BY_NAME: dict[str, DType] = {d.name: d for d in DTYPES.values()}

def sym_text(value: schema.SymInt) -> int | str:
    """A size/stride as an int or as the text of its expression (``2*s17``)."""
    if value.type == "as_int":
        return value.as_int
    try:
        return render_expr(parse_expr(value.as_expr.expr_str))
    except (SerializeError, RecursionError):
        return value.as_expr.expr_str


def device_text(device: schema.Device) -> str:
    return device.type if device.index is None else f"{device.type}:{device.index}"


#: Device types ``torch.device`` accepts (PyTorch 2.13); others need a renamed private backend.
DEVICE_TYPES = frozenset({"cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga",
                          "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone"})
#: torch keeps a device index in an int8: a larger one wraps around, a negative one is refused.
MAX_DEVICE_INDEX = 127


def device_problem(device: schema.Device) -> tuple[str, str] | None:
    """``(message, field)``: why no process's ``torch.device`` can stand for ``device``, and which
    of its fields (``type``, ``index``) is at fault; or None. An index written into the type
    (``cpu:0``, ``cpu:200``, ``hpu:``) would bypass the index's rule, and PyTorch's reader
    refuses it; torch keeps the index in an int8. Whether the type is registered is
    :func:`unknown_device_type`'s (a warning: another process may register it)."""
    if ":" in device.type:
        return (f"device type {device.type[:80]!r} holds ':': the type is a name (cpu, cuda, ...) and the index "
                "is the device's own field", "type")
    if device.index is not None and not 0 <= device.index <= MAX_DEVICE_INDEX:
        return f"device index {device.index} is not in [0, {MAX_DEVICE_INDEX}]", "index"
    return None


#: Device types whose missing index PyTorch's fake tensors ask the backend's module for
#: (``torch.hpu.current_device()``): a module only a registered backend adds to ``torch``.
#: (cuda, xpu, mtia and mps have theirs, or need none, in every build.)
BACKEND_INDEXED_TYPES = frozenset({"hpu", "privateuseone"})


def unknown_device_type(device: schema.Device) -> str | None:
    """The warning for a device that only a process with a backend registered can load, or None:
    a type not in :data:`DEVICE_TYPES`, or one of :data:`BACKEND_INDEXED_TYPES` without an index."""
    if device.index is None and device.type in BACKEND_INDEXED_TYPES:
        return unindexed_device_problem(device.type)
    if device.type in DEVICE_TYPES or ":" in device.type:  # (a ':' is device_problem's error)
        return None
    return (f"device type {device.type!r} is not one PyTorch knows; loading needs a backend registered "
            "under that name")


def unindexed_device_problem(device_type: str) -> str:
    """What loading a tensor on ``device_type`` (one of :data:`BACKEND_INDEXED_TYPES`) without an
    index needs."""
    return (f"device type {device_type!r} without an index: loading needs the {device_type} backend registered "
            f"(PyTorch asks torch.{device_type} for the current device)")


def dtype_problem(dtype: schema.ScalarType) -> str | None:
    """Why ``dtype`` stands for no tensor dtype (``UNKNOWN``), or None."""
    return None if dtype in DTYPES else f"dtype {int(dtype)} ({dtype.name}) is not a tensor dtype"


#: The dtypes whose tensors may require gradients in torch: floating point (float8 included) and
#: complex (``requires_grad_(True)`` raises ``RuntimeError`` on any other).
GRAD_DTYPES: frozenset[schema.ScalarType] = frozenset(
    d for d, t in DTYPES.items() if t.name.startswith(("float", "bfloat", "complex")))


#: the same dtypes by torch name (as pickles name them)
GRAD_DTYPE_NAMES: frozenset[str] = frozenset(DTYPES[d].name for d in GRAD_DTYPES)


def grad_problem(dtype: schema.ScalarType | str, requires_grad: object, what: str = "tensor") -> str | None:
    """Why a ``what`` of ``dtype`` (a wire dtype, or a torch dtype's name as pickles give it)
    cannot have ``requires_grad`` (torch refuses gradients on integer and bool tensors), or None."""
    name = dtype if isinstance(dtype, str) else DTYPES[dtype].name if dtype in DTYPES else None
    if requires_grad is not True or name is None or name not in BY_NAME or name in GRAD_DTYPE_NAMES:
        return None
    return f"a torch.{name} {what} cannot require gradients (requires_grad is true)"
