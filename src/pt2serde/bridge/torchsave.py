"""Reads ``torch.save`` records (tensors and plain containers) without running code from them.

PT2 archives hold ``torch.save`` output: ``data/sample_inputs/<model>.pt`` (the example
inputs, possibly FakeTensors) and, from writers 2.5-2.8, whole state dicts and constants.
PyTorch reads them with its restricted unpickler and, on any failure, retries with the
unrestricted one. :func:`load_torch_save` never does: it reads the zip with
:class:`~pt2serde.format.archive.ArchiveReader` and interprets ``data.pkl`` with
:mod:`pt2serde.format.safepickle`, allowing exactly the globals ``torch.save`` writes for dense
tensors, parameters and plain containers (see ``_GLOBALS``), each mapped to a builder here
that checks its arguments before touching torch.

Decisions worth knowing:

* **Zero copy.** Storages view the caller's buffer (``torch.frombuffer`` on the record's
  ``memoryview``), so pass a writable buffer (a copy-on-write mapping, a ``bytearray``).
  A read-only buffer (``bytes``, a read-only mapping) is copied once, whole, so tensors
  never alias memory that must not be written.
* **Bounds.** Every tensor's sizes, strides and storage offset are checked (as Python
  integers, so nothing overflows) to lie inside its storage before the view is made;
  negative strides or offsets, more than 64 dimensions and values of 2**63 or more are
  refused. A storage record must hold exactly the bytes its persistent id declares.
* **Byte order.** A ``byteorder`` record of ``big`` is honoured by byte-swapping a private
  copy of each storage (as PyTorch does), using the storage's dtype; for untyped storages
  (the dtypes PyTorch pickles with ``_rebuild_tensor_v3``) the swap uses the dtype of the
  first tensor that views it, and a storage viewed with two element sizes is refused.
  Anything but ``little``/``big`` is refused; no record means little-endian.
* **Devices.** Storages are always built on the CPU. Storages saved on another device
  (``cuda:0``...) are loaded on the CPU with one warning naming the devices.
* **Tensor state.** Python attributes on tensors and parameters (``_rebuild_from_type_v2``,
  ``_rebuild_parameter_with_state``) are set only for identifier names that are not
  dunders and do not shadow an attribute of the tensor type (``data``, ``grad``...).
  Backward hooks must be empty. ``_backward_hooks`` is not set on the result.
* **Namedtuples** of already imported modules are rebuilt only when plain (made by
  ``collections.namedtuple``/``typing.NamedTuple`` without overrides):
  :func:`pt2serde.format.safepickle.with_namedtuples`, the rule the torch-free walker uses too.
* **Work budget**: the result may not expand (shared references counted again) past
  :func:`pt2serde.format.safepickle.work_budget`, nor a dict key or set member past
  ``safepickle.MAX_KEY_NODES``; see :mod:`pt2serde.format.safepickle`.
* **FakeTensors** (``_reconstruct_fake_tensor``) need the ``fake_tensor`` callback, which
  gets the decoded ``schema.TensorMeta``; a fake parameter is wrapped in
  ``nn.Parameter`` with the metadata's ``requires_grad`` (PyTorch always uses ``True``).
* **Refused**: quantized, sparse, nested, wrapper-subclass and device-from-CPU tensors,
  bare storages in the result, legacy (pre-zip) ``torch.save`` files.
"""

from __future__ import annotations

import functools
import warnings
from collections import OrderedDict
from typing import Any, Callable, Mapping

import torch

from ..format import codec, extent, safepickle

from .. import schema

from . import tables
from ..format.archive import ArchiveReader
from ..errors import SerializeError
from ..format.safepickle import Global
from ..format.torchsave import (  # the torch-free reader's limits and rules
    MAX_DIMS, MAX_PICKLE_BYTES, META_LOCATION, storage_size_problem, tensor_extras_problem,
)
from .tensors import storage_from_buffer

__all__ = ["load_torch_save", "TORCH_SAVE_GLOBALS"]

MAX_FAKE_META_BYTES = 1 << 20
MAX_KEY = 128
_INT64_LIMIT = 1 << 63
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # pre-1.6 torch.save

_FAKE = ("torch._export.serde.serialize", "_reconstruct_fake_tensor")
_PARAMETER = ("torch.nn.parameter", "Parameter")


# ------------------------------------------------------------------ internal values


class _TypeMarker(safepickle.Internal):
    """``torch.Tensor`` as ``_rebuild_from_type_v2`` names it."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def describe(self) -> str:
        return f"type {self.name}"


class _StorageType(safepickle.Internal):
    """A storage class named in a persistent id (``torch.FloatStorage``, ``UntypedStorage``)."""

    __slots__ = ("name", "dtype", "untyped")

    def __init__(self, name: str, dtype: torch.dtype, untyped: bool) -> None:
        self.name = name
        self.dtype = dtype
        self.untyped = untyped

    def describe(self) -> str:
        return f"storage type torch.{self.name}"


class _Storage(safepickle.Internal):
    """One ``data/<key>`` record as a CPU ``UntypedStorage`` plus what its persistent id said."""

    __slots__ = ("key", "dtype", "untyped", "storage", "swap_pending", "swapped_as")

    def __init__(self, key: str, dtype: torch.dtype, untyped: bool, storage: torch.UntypedStorage,
                 swap_pending: bool) -> None:
        self.key = key
        self.dtype = dtype
        self.untyped = untyped
        self.storage = storage
        self.swap_pending = swap_pending
        self.swapped_as: torch.dtype | None = None

    def describe(self) -> str:
        return f"storage {self.key!r} (a bare storage, not a tensor)"

    def for_dtype(self, dtype: torch.dtype) -> torch.UntypedStorage:
        """The storage, byte-swapped for ``dtype`` first if the file is big-endian."""
        if self.swap_pending and dtype.itemsize > 1:
            self.storage.byteswap(dtype)
            self.swap_pending = False
            self.swapped_as = dtype
        elif self.swapped_as is not None and dtype.itemsize not in (1, self.swapped_as.itemsize):
            raise SerializeError(
                f"storage {self.key!r} of a big-endian file is viewed as {self.swapped_as} and as {dtype}"
            )
        return self.storage


_TENSOR_TYPE = _TypeMarker("torch.Tensor")


# ------------------------------------------------------------------ argument checks


def _int(value: Any, what: str) -> int:
    if not (type(value) is int and 0 <= value < _INT64_LIMIT):
        raise SerializeError(f"{what} must be an int in [0, 2**63), got {value!r}")
    return value


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not (type(value) in (tuple, list) or isinstance(value, torch.Size)):
        raise SerializeError(f"{what} must be a tuple of ints, got {type(value).__name__}")
    if len(value) > MAX_DIMS:
        raise SerializeError(f"{what} has {len(value)} dimensions, over the limit of {MAX_DIMS}")
    return tuple(_int(v, what) for v in value)


def _dtype(value: Any) -> torch.dtype:
    if not (isinstance(value, torch.dtype) and value in _DTYPES):
        raise SerializeError(f"expected a supported dtype, got {value!r}")
    return value


def _bool(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise SerializeError(f"{what} must be a bool, got {value!r}")
    return value


def _storage(value: Any) -> _Storage:
    if not isinstance(value, _Storage):
        raise SerializeError(f"expected a storage, got {safepickle.short(value)}")
    return value


def _check_hooks(hooks: Any) -> None:
    if not (type(hooks) in (dict, OrderedDict) and not hooks):
        raise SerializeError("backward hooks must be an empty dict")


def _view(st: _Storage, dtype: torch.dtype, offset: Any, size: Any, stride: Any) -> torch.Tensor:
    """A tensor of ``dtype`` viewing ``st``; the geometry is checked to stay inside it."""
    size, stride, offset = _ints(size, "size"), _ints(stride, "stride"), _int(offset, "storage offset")
    if len(size) != len(stride):
        raise SerializeError(f"{len(size)} sizes but {len(stride)} strides")
    nbytes = st.storage.nbytes()
    item = dtype.itemsize
    if 0 in size:
        need = offset * item
    else:
        need = (offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1) * item
    if need > nbytes:
        raise SerializeError(
            f"a {dtype} tensor of size {list(size)}, stride {list(stride)} and storage offset {offset} "
            f"needs {need} bytes but storage {st.key!r} holds {nbytes}"
        )
    _extent(dtype, size, stride, offset, True)
    storage = st.for_dtype(dtype)
    return torch.empty(0, dtype=dtype, device=storage.device).set_(storage, offset, size, stride)


def _extent(dtype: torch.dtype, size: tuple, stride: tuple, offset: int, has_data: bool) -> None:
    """The view rule load and validate share (:func:`pt2serde.format.extent.view_problem`): sizes past
    2**63, (meta) spans past 2**63, expanded tensors standing for too much."""
    problem = extent.view_problem(size, stride, offset, dtype.itemsize, None, has_data)
    if problem:
        raise SerializeError(f"a {str(dtype).removeprefix('torch.')} tensor: {problem}")  # as picklewalk says it


def _finish(t: torch.Tensor, requires_grad: Any, hooks: Any, metadata: Any) -> torch.Tensor:
    problem = tensor_extras_problem(requires_grad, hooks, metadata, _dtype_name(t.dtype))  # the walker's rule
    if problem:
        raise SerializeError(problem)
    if requires_grad:
        t.requires_grad_(True)
    if metadata:  # conj / neg bits (get_tensor_metadata)
        torch._C._set_tensor_metadata(t, metadata)
    return t


def _set_state(obj: torch.Tensor, state: Any) -> None:
    """Python attributes of a tensor or parameter (``torch._utils._set_obj_state``), checked."""
    parts = state if isinstance(state, tuple) else (state,)
    if len(parts) not in (1, 2):
        raise SerializeError("tensor state must be a dict or a (dict, slots) pair")
    for part in parts:
        if part is None or (type(part) in (dict, OrderedDict) and not part):
            continue
        if type(part) not in (dict, OrderedDict):
            raise SerializeError(f"tensor state must be a dict, got {type(part).__name__}")
        for key, value in part.items():
            if type(key) is not str or not key.isidentifier() or key.startswith("__") or hasattr(type(obj), key):
                raise SerializeError(f"tensor state may not set attribute {key!r}")
            safepickle.check_tree(value, what=f"tensor attribute {key!r}")
            setattr(obj, key, value)


# ------------------------------------------------------------------ builders


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> torch.Tensor:
    st = _storage(storage)
    return _view(st, st.dtype, storage_offset, size, stride)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any,
                       backward_hooks: Any, metadata: Any = None) -> torch.Tensor:
    t = _rebuild_tensor(storage, storage_offset, size, stride)
    return _finish(t, requires_grad, backward_hooks, metadata)


def _rebuild_tensor_v3(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any,
                       backward_hooks: Any, dtype: Any, metadata: Any = None) -> torch.Tensor:
    t = _view(_storage(storage), _dtype(dtype), storage_offset, size, stride)
    return _finish(t, requires_grad, backward_hooks, metadata)


def _rebuild_meta_tensor_no_storage(dtype: Any, size: Any, stride: Any, requires_grad: Any) -> torch.Tensor:
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise SerializeError(f"{len(size)} sizes but {len(stride)} strides")
    dtype = _dtype(dtype)
    _extent(dtype, size, stride, 0, False)
    t = torch.empty_strided(size, stride, dtype=dtype, device="meta")
    return t.requires_grad_(True) if _bool(requires_grad, "requires_grad") else t


def _plain_tensor(data: Any) -> torch.Tensor:
    if not (isinstance(data, torch.Tensor) and not isinstance(data, torch.nn.Parameter)):
        raise SerializeError(f"a parameter needs a tensor, got {safepickle.short(data)}")
    return data


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any) -> torch.nn.Parameter:
    _check_hooks(backward_hooks)
    return torch.nn.Parameter(_plain_tensor(data), _bool(requires_grad, "requires_grad"))


def _rebuild_parameter_with_state(data: Any, requires_grad: Any, backward_hooks: Any,
                                  state: Any) -> torch.nn.Parameter:
    param = _rebuild_parameter(data, requires_grad, backward_hooks)
    _set_state(param, state)
    return param


def _new_parameter(data: Any = None, requires_grad: Any = True) -> torch.nn.Parameter:
    """``NEWOBJ torch.nn.Parameter`` (older writers)."""
    return torch.nn.Parameter(_plain_tensor(data), _bool(requires_grad, "requires_grad"))


_TENSOR_REBUILDERS = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("torch._utils", "_rebuild_meta_tensor_no_storage"): _rebuild_meta_tensor_no_storage,
}


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> torch.Tensor:
    """A tensor with Python attributes: ``func(*args)`` of type ``new_type``, then ``state``."""
    if not (isinstance(func, safepickle.GlobalRef) and (func.module, func.name) in _TENSOR_REBUILDERS):
        raise SerializeError(
            f"_rebuild_from_type_v2 needs a tensor rebuild function, got {safepickle.short(func)}"
        )
    if new_type is _TENSOR_TYPE:
        expected: type = torch.Tensor
    else:
        if not (isinstance(new_type, safepickle.GlobalRef) and (new_type.module, new_type.name) == _PARAMETER):
            raise SerializeError(
                f"_rebuild_from_type_v2 may only make torch.Tensor or Parameter, got {safepickle.short(new_type)}"
            )
        expected = torch.nn.Parameter
    if type(args) is not tuple:
        raise SerializeError("_rebuild_from_type_v2 arguments must be a tuple")
    result = _TENSOR_REBUILDERS[(func.module, func.name)](*args)
    if type(result) is not expected:
        raise SerializeError(f"{func.qualname} made a {type(result).__name__}, not a {expected.__name__}")
    _set_state(result, state)
    return result


def _unsupported(kind: str) -> Callable[..., Any]:
    def refuse(*args: Any) -> Any:
        raise SerializeError(f"{kind} cannot be loaded without pickle")

    return refuse


def _device(kind: Any, index: Any = None) -> torch.device:
    if not (type(kind) is str and 0 < len(kind) <= 64):
        raise SerializeError(f"device type must be a short string, got {kind!r}")
    if not (index is None or (type(index) is int and 0 <= index < 1 << 16)):
        raise SerializeError(f"device index {index!r} is invalid")
    return torch.device(kind) if index is None else torch.device(kind, index)


def _size(dims: Any = ()) -> torch.Size:
    if type(dims) not in (tuple, list) or any(type(d) is not int or not -_INT64_LIMIT <= d < _INT64_LIMIT
                                              for d in dims):
        raise SerializeError("torch.Size expects a tuple of ints")
    return torch.Size(dims)


def _reconstruct_fake_tensor(callback: Callable[[schema.TensorMeta], torch.Tensor] | None,
                             serialized: Any, is_parameter: Any) -> torch.Tensor:
    if callback is None:
        raise SerializeError("a FakeTensor example input needs a fake_tensor callback to be rebuilt")
    if type(serialized) not in (bytes, bytearray):
        raise SerializeError("fake tensor metadata must be bytes")
    _bool(is_parameter, "is_parameter")
    meta = codec.from_dict(
        schema.TensorMeta,
        codec.loads_json(serialized, max_bytes=MAX_FAKE_META_BYTES, what="fake tensor metadata"),
    )
    t = callback(meta)
    if not isinstance(t, torch.Tensor):
        raise SerializeError(f"fake_tensor callback returned a {type(t).__name__}, not a tensor")
    return torch.nn.Parameter(t, requires_grad=meta.requires_grad) if is_parameter else t


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).split(".", 1)[1]


# dtypes torch.save may name: the wire table plus the packed float4 PyTorch also pickles
_DTYPES: frozenset[torch.dtype] = frozenset(tables.DTYPES) | frozenset(
    d for d in (getattr(torch, "float4_e2m1fn_x2", None),) if d is not None
)

TORCH_SAVE_GLOBALS: dict[tuple[str, str], Global] = {
    **safepickle.PLAIN_GLOBALS,
    **{key: Global(call=fn, setstate=_set_state) for key, fn in _TENSOR_REBUILDERS.items()},
    ("torch._tensor", "_rebuild_from_type_v2"): Global(call=_rebuild_from_type_v2),
    ("torch", "Tensor"): Global(value=_TENSOR_TYPE),
    _PARAMETER: Global(new=_new_parameter),
    ("torch", "device"): Global(call=_device),
    ("torch", "Size"): Global(call=_size),
    **{("torch", _dtype_name(d)): Global(value=d) for d in _DTYPES},
    **{
        ("torch", name): Global(value=_StorageType(name, dtype, untyped=False))
        for dtype, name in torch.storage._dtype_to_storage_type_map().items()
        if dtype in _DTYPES
    },
    ("torch.storage", "UntypedStorage"): Global(value=_StorageType("UntypedStorage", torch.uint8, untyped=True)),
    **{
        ("torch._utils", name): Global(call=_unsupported(kind))
        for name, kind in (
            ("_rebuild_qtensor", "a quantized tensor"),
            ("_rebuild_sparse_tensor", "a sparse tensor"),
            ("_rebuild_nested_tensor", "a nested tensor"),
            ("_rebuild_wrapper_subclass", "a tensor subclass"),
            ("_rebuild_device_tensor_from_cpu_tensor", "a tensor of a storage-less device"),
            ("_rebuild_device_tensor_from_numpy", "a tensor of a storage-less device"),
        )
    },
}
"""Every global a ``torch.save`` record may name, each mapped to a checking builder here.

The fake-tensor global is added per load, bound to the caller's callback."""


# ------------------------------------------------------------------ the record


class _Loader:
    """Per-record state: the zip, its byte order, the storages loaded so far."""

    def __init__(self, reader: ArchiveReader, root: str, big_endian: bool, meta_storages: bool) -> None:
        self.reader = reader
        self.meta_storages = meta_storages
        self.root = root
        self.big_endian = big_endian
        self.storages: dict[str, _Storage] = {}
        self.locations: set[str] = set()

    def persistent_load(self, pid: Any) -> _Storage:
        if not (type(pid) is tuple and len(pid) == 5):
            raise SerializeError(
                f"persistent id {safepickle.short(pid)} is not ('storage', type, key, location, numel)"
            )
        tag, stype, key, location, numel = (_ascii(v) for v in pid)
        if tag != "storage":
            raise SerializeError(f"persistent id of kind {tag!r} is not supported (only 'storage')")
        if not isinstance(stype, _StorageType):
            raise SerializeError(f"persistent id names {safepickle.short(stype)}, not a storage type")
        if not (type(key) is str and 0 < len(key) <= MAX_KEY and key.isascii() and "/" not in key):
            raise SerializeError(f"storage key {key!r} is invalid")
        if not (type(location) is str and 0 < len(location) <= 64):
            raise SerializeError(f"storage location {location!r} is invalid")
        try:
            torch.device(location)
        except RuntimeError:
            raise SerializeError(f"storage location {location!r} is not a device") from None
        _int(numel, "storage size")
        cached = self.storages.get(key)
        if cached is not None:
            if not (cached.dtype == stype.dtype and cached.untyped == stype.untyped):
                raise SerializeError(f"storage {key!r} is named as both {cached.dtype} and {stype.dtype}")
            if (cached.storage.device.type == "meta") != (self.meta_storages and location == META_LOCATION):
                raise SerializeError(f"storage {key!r} is named both on {cached.storage.device.type} and on {location}")
            return cached
        name = f"{self.root}/data/{key}"
        if name not in self.reader:
            raise SerializeError(f"storage {key!r} refers to record {name!r}, which is missing")
        nbytes = numel * stype.dtype.itemsize
        size = self.reader.entry(name).size
        problem = storage_size_problem(location, size, numel, str(stype.dtype), stype.dtype.itemsize,
                                       self.meta_storages)
        if problem:
            raise SerializeError(f"record {name!r} {problem}", record=name)
        if self.meta_storages and location == META_LOCATION:  # no data: tensors on it are meta tensors
            st = _Storage(key, stype.dtype, stype.untyped, torch.UntypedStorage(nbytes, device="meta"), False)
            self.storages[key] = st
            return st
        view = self.reader.view(name)
        self.locations.add(location)
        swap = self.big_endian and nbytes > 0
        if nbytes and (swap or view.readonly):  # byte-swapped in place / inflated record: a private copy
            view = memoryview(bytearray(view))
        storage = storage_from_buffer(view)  # copied if misaligned (a record at an odd offset)
        # typed storages are swapped now; untyped ones by the first tensor that gives a dtype
        st = _Storage(key, stype.dtype, stype.untyped, storage, swap_pending=swap and stype.untyped)
        if swap and not stype.untyped and stype.dtype.itemsize > 1:
            storage.byteswap(stype.dtype)
            st.swapped_as = stype.dtype
        self.storages[key] = st
        return st


def _ascii(value: Any) -> Any:
    """Python 2 pickles hold byte strings where Python 3 ones hold str (``_maybe_decode_ascii``)."""
    if type(value) is bytes:
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise SerializeError("persistent id holds non-ASCII bytes") from None
    return value


def load_torch_save(
    data: bytes | bytearray | memoryview,
    *,
    what: str,
    record: str | None = None,
    fake_tensor: Callable[[schema.TensorMeta], torch.Tensor] | None = None,
    table: Callable[[Mapping], Mapping] = safepickle.with_namedtuples,
    meta_storages: bool = False,
) -> Any:
    """The object a ``torch.save`` record holds, rebuilt with the builders of ``TORCH_SAVE_GLOBALS``.

    ``what`` names the record in error messages (``data/sample_inputs/model.pt``); ``record``,
    the archive record that ``what`` names, if any, is the ``record`` of those errors.
    ``fake_tensor`` rebuilds FakeTensor example inputs from their ``schema.TensorMeta``.
    ``table`` makes the globals the pickle may name from this reader's (a torchbind record's:
    :func:`pt2serde.format.torchbind.record_globals`). ``meta_storages``: storages at location
    ``meta`` with empty records give meta tensors (torchbind records: ``format.torchsave.storage_size_problem``).
    Raises :class:`SerializeError` for anything it does not read (see the module docstring).
    """
    try:
        buf = memoryview(data).cast("B")
    except (TypeError, ValueError):
        raise SerializeError(f"{what}: expected a contiguous bytes-like object, got {type(data).__name__}",
                             record=record) from None
    if buf.readonly:
        buf = memoryview(bytearray(buf))
    if bytes(buf[:len(_LEGACY_MAGIC)]) == _LEGACY_MAGIC:
        raise SerializeError(f"{what}: the legacy (pre-zip) torch.save format is not supported", record=record)
    try:
        reader = ArchiveReader(buf)
        root = reader.root_folder()
        pickle_name = f"{root}/data.pkl"
        if pickle_name not in reader:
            raise SerializeError(f"record {pickle_name!r} is missing (not a torch.save file?)", record=pickle_name)
        big_endian = False
        if f"{root}/byteorder" in reader:
            order = reader.read(f"{root}/byteorder", max_size=16)
            if order not in (b"little", b"big"):
                raise SerializeError(f"byteorder record holds {order!r}, expected b'little' or b'big'")
            big_endian = order == b"big"
        pickled = reader.view(pickle_name, max_size=MAX_PICKLE_BYTES)
    except SerializeError as e:
        raise SerializeError(f"{what}: {e}", path=what, record=record) from None
    loader = _Loader(reader, root, big_endian, meta_storages)
    builders = dict(TORCH_SAVE_GLOBALS)
    builders[_FAKE] = Global(call=functools.partial(_reconstruct_fake_tensor, fake_tensor))
    result = safepickle.load(pickled, globals=table(builders),
                             persistent_load=loader.persistent_load,
                             where=f"{pickle_name} in {what}")
    others = sorted(loc for loc in loader.locations if loc != "cpu")
    if others:
        warnings.warn(f"{what}: storages saved on {', '.join(others)} were loaded on the CPU", stacklevel=2)
    return result
