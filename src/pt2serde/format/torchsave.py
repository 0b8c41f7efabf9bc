"""Describing ``torch.save`` records without unpickling them (torch-free).

PT2 archives hold ``torch.save`` zips: the sample inputs (``data/sample_inputs/<name>.pt``)
in every archive, and whole state dicts in those of PyTorch 2.8. :func:`describe_torch_save`
*walks* such a record's pickle with :mod:`pt2serde.format.safepickle` and builders that only record
what each tensor claims (:class:`TensorInfo`: dtype, sizes, strides, storage key); plain
containers are built as such, and any other global the pickle names is refused. No tensor
and no object of the file's choosing is ever made. :func:`pickle_globals` lists the globals
a pickle names by reading its opcodes, for the records that only ``allow_pickle`` can load.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from . import codec, extent, safepickle

from .. import schema
from .archive import ArchiveReader
from ..errors import SerializeError
from .safepickle import Global
from .tables import BY_NAME, DTYPES, device_text, grad_problem, sym_text

__all__ = ["META_LOCATION", "storage_size_problem", "TensorInfo", "DTypeValue", "TorchSaveRecord", "WALK_GLOBALS", "describe_torch_save", "pickle_globals",
           "summarize_value", "tensor_extras_problem"]

MAX_PICKLE_BYTES = 256 << 20
MAX_DIMS = 64

# torch.save names typed storages by class; derived from the names above where torch does.
_STORAGE_CLASSES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool", "BFloat16Storage": "bfloat16",
    "ComplexDoubleStorage": "complex128", "ComplexFloatStorage": "complex64",
}



class TensorInfo:
    """What a pickled tensor claims to be; built by the walker, never a real tensor."""

    __slots__ = ("dtype", "sizes", "strides", "offset", "storage", "requires_grad", "is_param", "fake", "device")

    def __init__(self, dtype: str, sizes: tuple, strides: tuple, offset: int, storage: "_StorageRef | None",
                 requires_grad: bool = False, is_param: bool = False, fake: bool = False, device: str = "cpu"):
        if problem := grad_problem(dtype, requires_grad, "parameter" if is_param else "tensor"):
            raise SerializeError(problem)
        self.dtype = dtype
        self.sizes = sizes
        self.strides = strides
        self.offset = offset
        self.storage = storage.key if storage is not None else None
        self.requires_grad = requires_grad
        self.is_param = is_param
        self.fake = fake
        self.device = storage.location if storage is not None else device

    def describe(self) -> str:
        dims = ", ".join(str(s) for s in self.sizes)
        return f"{'fake ' if self.fake else ''}{self.dtype}[{dims}]"

    def __repr__(self) -> str:
        return f"<{'Parameter' if self.is_param else 'Tensor'} {self.describe()}>"


class _StorageRef(safepickle.Internal):
    __slots__ = ("key", "dtype", "numel", "location", "record_size")

    def __init__(self, key: str, dtype: str, numel: int, location: str, record_size: int) -> None:
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.location = location
        self.record_size = record_size

    def describe(self) -> str:
        return f"storage {self.key!r} (a bare storage, not a tensor)"


class _StorageType(safepickle.Internal):
    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: str | None) -> None:
        self.name = name
        self.dtype = dtype

    def describe(self) -> str:
        return f"storage type torch.{self.name}"


class DTypeValue:
    """``torch.float32`` and friends as a pickle names them (a value, not torch's object)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"torch.{self.name}"


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if type(value) not in (tuple, list) or len(value) > MAX_DIMS:
        raise SerializeError(f"{what} must be a tuple of at most {MAX_DIMS} ints")
    if any(type(v) is not int or not 0 <= v < 1 << 63 for v in value):
        raise SerializeError(f"{what} must hold ints in [0, 2**63), got {safepickle.short(value)}")
    return tuple(value)


def _view(storage: Any, dtype: str, offset: Any, size: Any, stride: Any) -> TensorInfo:
    if not isinstance(storage, _StorageRef):
        raise SerializeError(f"expected a storage, got {safepickle.short(storage)}")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if type(offset) is not int or not 0 <= offset < 1 << 63:
        raise SerializeError(f"storage offset must be an int in [0, 2**63), got {offset!r}")
    if len(size) != len(stride):
        raise SerializeError(f"{len(size)} sizes but {len(stride)} strides")
    dt = BY_NAME[dtype]
    need = offset * dt.itemsize if 0 in size else \
        (offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1) * dt.itemsize
    if need > storage.record_size:
        raise SerializeError(
            f"a {dtype} tensor of size {list(size)}, stride {list(stride)} and storage offset {offset} "
            f"needs {need} bytes but storage {storage.key!r} holds {storage.record_size}"
        )
    _extent(dtype, size, stride, offset, dt.itemsize, True)
    return TensorInfo(dtype, size, stride, offset, storage)


def _extent(dtype: str, size: tuple, stride: tuple, offset: int, itemsize: int, has_data: bool) -> None:
    """The view rule load and validate share (:func:`pt2serde.format.extent.view_problem`): sizes past
    2**63, (meta) spans past 2**63, expanded tensors standing for too much."""
    problem = extent.view_problem(size, stride, offset, itemsize, None, has_data)
    if problem:
        raise SerializeError(f"a {dtype} tensor: {problem}")


def tensor_extras_problem(requires_grad: Any, hooks: Any, metadata: Any = None, dtype: str | None = None) -> str | None:
    """Why a pickled tensor's ``requires_grad`` (a bool; true only for a floating point or complex
    ``dtype``, a torch dtype name), backward hooks and metadata (the conj/neg bits of
    ``_rebuild_tensor_v2``/``v3``) are refused, or None: the rule this walker and the bridge's
    ``torch.save`` reader share."""
    if type(requires_grad) is not bool:
        return f"requires_grad must be a bool, got {safepickle.short(requires_grad)}"
    if dtype is not None and (problem := grad_problem(dtype, requires_grad)):
        return problem
    if not (type(hooks) in (dict, OrderedDict) and not hooks):
        return "backward hooks must be an empty dict"
    if metadata and (type(metadata) is not dict or not set(metadata) <= {"conj", "neg"}
                     or any(type(v) is not bool for v in metadata.values())):
        return f"tensor metadata may only hold bool 'conj'/'neg', got {safepickle.short(metadata)}"
    return None


def _finish(t: TensorInfo, requires_grad, hooks, metadata) -> TensorInfo:
    problem = tensor_extras_problem(requires_grad, hooks, metadata, t.dtype)
    if problem:
        raise SerializeError(problem)
    t.requires_grad = requires_grad
    return t


def _rebuild_tensor(storage, offset, size, stride):
    if not isinstance(storage, _StorageRef) or storage.dtype is None:
        raise SerializeError("_rebuild_tensor needs a typed storage")
    return _view(storage, storage.dtype, offset, size, stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, metadata=None):
    return _finish(_rebuild_tensor(storage, offset, size, stride), requires_grad, hooks, metadata)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
    if not isinstance(dtype, DTypeValue):
        raise SerializeError(f"expected a dtype, got {safepickle.short(dtype)}")
    return _finish(_view(storage, dtype.name, offset, size, stride), requires_grad, hooks, metadata)


def _meta_tensor(dtype, size, stride, requires_grad):
    if not isinstance(dtype, DTypeValue):
        raise SerializeError(f"expected a dtype, got {safepickle.short(dtype)}")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise SerializeError(f"{len(size)} sizes but {len(stride)} strides")
    _extent(dtype.name, size, stride, 0, BY_NAME[dtype.name].itemsize, False)
    return TensorInfo(dtype.name, size, stride, 0, None, requires_grad is True, device="meta")


def _parameter(data=None, requires_grad=True, *rest):
    if not isinstance(data, TensorInfo):
        raise SerializeError(f"a parameter needs a tensor, got {safepickle.short(data)}")
    param = TensorInfo(data.dtype, data.sizes, data.strides, data.offset, None, requires_grad is True,
                       True, data.fake, data.device)
    param.storage = data.storage
    return param


def _from_type_v2(func, new_type, args, state):
    if not (isinstance(func, safepickle.GlobalRef) and func.spec.call is not None and type(args) is tuple):
        raise SerializeError("_rebuild_from_type_v2 needs a tensor rebuild function and an argument tuple")
    if (func.module, func.name) not in _REBUILDERS:
        raise SerializeError(f"_rebuild_from_type_v2 may not call {func.qualname}")
    result = func.spec.call(*args)
    if isinstance(new_type, safepickle.GlobalRef) and (new_type.module, new_type.name) == _PARAMETER:
        return _parameter(result, result.requires_grad)
    return result


def _fake_tensor(meta_json, is_param):
    if type(meta_json) not in (bytes, bytearray, str):
        raise SerializeError("fake tensor metadata must be bytes")
    meta = codec.from_dict(schema.TensorMeta, codec.loads_json(meta_json, max_bytes=1 << 20,
                                                               what="fake tensor metadata"))
    dt = DTYPES.get(meta.dtype)
    return TensorInfo(dt.name if dt else str(int(meta.dtype)), tuple(sym_text(s) for s in meta.sizes),
                      tuple(sym_text(s) for s in meta.strides), sym_text(meta.storage_offset), None,
                      meta.requires_grad, is_param is True, fake=True, device=device_text(meta.device))


def _refuse(kind: str) -> Callable[..., Any]:
    def refuse(*args: Any) -> Any:
        raise SerializeError(f"{kind} cannot be described without unpickling it")
    return refuse


def _device(kind, index=None):
    if type(kind) is not str or len(kind) > 64 or not (index is None or type(index) is int):
        raise SerializeError("torch.device expects a short string and an optional index")
    return kind if index is None else f"{kind}:{index}"


_PARAMETER = ("torch.nn.parameter", "Parameter")
_REBUILDERS = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _parameter,
    ("torch._utils", "_rebuild_meta_tensor_no_storage"): _meta_tensor,
}

WALK_GLOBALS: dict[tuple[str, str], Global] = {
    **safepickle.PLAIN_GLOBALS,
    **{key: Global(call=fn) for key, fn in _REBUILDERS.items()},
    ("torch._tensor", "_rebuild_from_type_v2"): Global(call=_from_type_v2),
    ("torch", "Tensor"): Global(value=None),
    _PARAMETER: Global(new=_parameter),
    ("torch", "device"): Global(call=_device),
    ("torch", "Size"): Global(call=lambda dims=(): _ints(dims, "torch.Size")),
    ("torch._export.serde.serialize", "_reconstruct_fake_tensor"): Global(call=_fake_tensor),
    **{("torch", d.name): Global(value=DTypeValue(d.name)) for d in DTYPES.values()},
    **{("torch", cls): Global(value=_StorageType(cls, dt)) for cls, dt in _STORAGE_CLASSES.items()},
    ("torch.storage", "UntypedStorage"): Global(value=_StorageType("UntypedStorage", None)),
    **{("torch._utils", name): Global(call=_refuse(kind)) for name, kind in (
        ("_rebuild_qtensor", "a quantized tensor"), ("_rebuild_sparse_tensor", "a sparse tensor"),
        ("_rebuild_nested_tensor", "a nested tensor"), ("_rebuild_wrapper_subclass", "a tensor subclass"),
    )},
}
"""The globals a ``torch.save`` record may name, each mapped to a describing builder."""


@dataclass
class TorchSaveRecord:
    """A ``torch.save`` zip inside the archive: its walked value and its storage records."""

    value: Any
    reader: ArchiveReader
    root: str


#: the location of a data-less storage (a fake tensor's, in a torchbind record pt2serde wrote:
#: :mod:`pt2serde.bridge.object_records`): its record is empty, its persistent id gives its size
META_LOCATION = "meta"


def storage_size_problem(location: str, record_bytes: int, numel: int, dtype: str, itemsize: int,
                         meta_storages: bool) -> str | None:
    """Why a storage record of ``record_bytes`` cannot hold the ``numel`` elements of ``dtype``
    its persistent id declares, or None: the one rule of both ``torch.save`` readers. A
    storage at location ``meta`` (accepted where ``meta_storages``: torchbind records) has
    no data: an empty record, any size below 2**63."""
    declared = numel * itemsize
    if meta_storages and location == META_LOCATION:
        if record_bytes:
            return f"holds {record_bytes} bytes, but a meta storage holds none"
        return None if declared < 1 << 63 else f"declares a meta storage of {declared} bytes, past 2**63"
    if record_bytes != declared:
        return f"holds {record_bytes} bytes but its persistent id declares {numel} x {dtype} = {declared} bytes"
    return None


def describe_torch_save(data: memoryview, what: str,
                        table: Callable[[Mapping], Mapping] = safepickle.with_namedtuples,
                        meta_storages: bool = False) -> TorchSaveRecord:
    """Walk a ``torch.save`` record's pickle with ``table(WALK_GLOBALS)`` (nothing is unpickled).
    ``meta_storages``: storages at location ``meta`` with empty records are accepted
    (:func:`storage_size_problem`)."""
    try:
        reader = ArchiveReader(data)
        root = reader.root_folder()
        pkl = f"{root}/data.pkl"
        if pkl not in reader:
            raise SerializeError(f"record {pkl!r} is missing (not a torch.save file?)", record=pkl)
        if f"{root}/byteorder" in reader and reader.read(f"{root}/byteorder", max_size=16) != b"little":
            raise SerializeError("big-endian torch.save records are not described")
        pickled = reader.view(pkl, max_size=MAX_PICKLE_BYTES)
    except SerializeError as e:
        raise SerializeError(f"{what}: {e}") from None

    seen: dict[str, tuple] = {}  # storage key -> (dtype, location): one storage is one thing

    def persistent_load(pid: Any) -> _StorageRef:
        if not (type(pid) is tuple and len(pid) == 5 and pid[0] in ("storage", b"storage")):
            raise SerializeError(f"persistent id {safepickle.short(pid)} is not ('storage', type, key, location, numel)")
        _, stype, key, location, numel = pid
        key = key.decode("ascii", "replace") if type(key) is bytes else key
        location = location.decode("ascii", "replace") if type(location) is bytes else location
        if not isinstance(stype, _StorageType):
            raise SerializeError(f"persistent id names {safepickle.short(stype)}, not a storage type")
        if not (type(key) is str and 0 < len(key) <= 128 and "/" not in key and key not in (".", "..")):
            raise SerializeError(f"storage key {key!r} is invalid")
        if type(numel) is not int or numel < 0 or type(location) is not str:
            raise SerializeError(f"storage {key!r}: invalid size or location")
        if seen.setdefault(key, (stype.dtype, location)) != (stype.dtype, location):
            raise SerializeError(f"storage {key!r} is named as both {seen[key][0]} on {seen[key][1]} and "
                                 f"{stype.dtype} on {location}")
        name = f"{root}/data/{key}"
        if name not in reader:
            raise SerializeError(f"storage {key!r} refers to record {name!r}, which is missing")
        reader.admit(name)  # the inflation allowance load's reader meets when it reads the storage
        itemsize = BY_NAME[stype.dtype].itemsize if stype.dtype else 1
        size = reader.entry(name).size
        problem = storage_size_problem(location, size, numel, stype.dtype or "byte", itemsize, meta_storages)
        if problem:
            raise SerializeError(f"record {name!r} {problem}", record=name)
        return _StorageRef(key, stype.dtype, numel, location, numel * itemsize)  # a meta storage: its size

    value = safepickle.load(pickled, globals=table(WALK_GLOBALS),
                            persistent_load=persistent_load,
                            where=f"{root}/data.pkl in {what}")
    return TorchSaveRecord(value, reader, root)


MAX_SCANNED_PICKLE = 64 << 20


def pickle_globals(data: bytes | memoryview, limit: int = 32) -> list[str] | None:
    """The globals a pickle names (``posix.system``), read from its opcodes without running it.

    For a ``torch.save`` zip, the globals of its ``data.pkl``. Best effort: a malformed
    pickle yields the globals found before the damage; None for pickles over 64 MiB (not
    scanned: the opcode reader copies arguments).
    """
    import pickletools

    view = memoryview(data).cast("B")
    if view.nbytes > MAX_SCANNED_PICKLE and bytes(view[:4]) != b"PK\x03\x04":
        return None
    if bytes(view[:4]) == b"PK\x03\x04":
        try:
            reader = ArchiveReader(view)
            root = reader.root_folder()
            view = reader.view(f"{root}/data.pkl", max_size=MAX_SCANNED_PICKLE)
        except SerializeError:
            return []
    found: list[str] = []
    strings: list[str] = []  # strings pushed so far (STACK_GLOBAL takes the last two)
    memo: dict[int, str] = {}
    last: str | None = None  # the string the previous opcode left on top of the stack
    memoized = 0
    try:
        for op, arg, _ in pickletools.genops(bytes(view)):
            name = op.name
            if name in ("GLOBAL", "INST") or name == "STACK_GLOBAL" and len(strings) >= 2:
                text = arg.replace(" ", ".") if name != "STACK_GLOBAL" else f"{strings[-2]}.{strings[-1]}"
                if text not in found:
                    found.append(text)
                    if len(found) >= limit:
                        break
                last = None
            elif isinstance(arg, str) and ("UNICODE" in name or name.endswith("STRING")):
                strings.append(arg)
                last = arg
            elif name == "MEMOIZE":
                if last is not None:
                    memo[memoized] = last
                memoized += 1
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                if last is not None:
                    memo[arg] = last
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                last = memo.get(arg)
                if last is not None:
                    strings.append(last)
            else:
                last = None
    except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError):
        pass
    return found


def summarize_value(value: Any, limit: int = 300) -> str:
    """A short text of a walked value: ``(float32[3, 8], {'mask': bool[3]})``."""
    out: list[str] = []
    budget = [limit]

    def emit(text: str) -> None:
        budget[0] -= len(text)
        out.append(text)

    def walk(v: Any, depth: int) -> None:
        if budget[0] <= 0:
            return
        if depth > 20:
            emit("...")
        elif isinstance(v, TensorInfo):
            emit(("Parameter " if v.is_param else "") + v.describe())
        elif isinstance(v, (tuple, list)):
            emit("(" if isinstance(v, tuple) else "[")
            for i, x in enumerate(v):
                if i:
                    emit(", ")
                walk(x, depth + 1)
            emit(("," if isinstance(v, tuple) and len(v) == 1 else "") + (")" if isinstance(v, tuple) else "]"))
        elif isinstance(v, dict):
            emit("{")
            for i, (k, x) in enumerate(v.items()):
                emit((", " if i else "") + f"{k!r}: ")
                walk(x, depth + 1)
            emit("}")
        else:
            emit(safepickle.short(v))

    walk(value, 0)
    text = "".join(out)
    return text if len(text) <= limit else text[:limit - 3] + "..."
