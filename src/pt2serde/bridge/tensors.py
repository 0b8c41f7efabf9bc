"""Tensors to raw storage bytes and back, keeping aliasing, without pickle.

* :class:`StorageTable` deduplicates tensors by their underlying storage, so views and
  aliases are written once and come back sharing memory.
* :func:`storage_bytes` exposes a CPU storage's memory as a ``memoryview`` without
  copying it; :func:`storage_from_buffer` is the reverse (a storage over a buffer, copied
  only when the buffer's address is misaligned); :func:`view_from_buffer` makes a tensor
  that views a storage after checking that sizes, strides and offset stay inside it.
* :func:`encode_payload` / :func:`decode_payload` implement the pickle-free payloads of
  ``SerializedArtifact`` (container layout in :mod:`pt2serde.format.payload`).
"""

from __future__ import annotations

import ctypes
import io
import sys
import warnings
from typing import Any, Callable

import torch

from ..format import codec, extent, payload

from .. import schema

from . import symbolic, tables
from .opaque import load_opaque
from ..errors import SerializeError

__all__ = [
    "StorageTable",
    "storage_bytes",
    "storage_from_buffer",
    "STORAGE_ALIGNMENT",
    "check_view_bounds",
    "view_from_buffer",
    "encode_payload",
    "decode_payload",
    "is_fake",
    "is_plain_tensor",
    "finish_tensor",
    "tensor_meta_to_wire",
    "meta_tensor",
    "to_device",
]


def is_fake(t: torch.Tensor) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(t, FakeTensor)


def is_plain_tensor(t: torch.Tensor) -> bool:
    """A dense tensor whose data we can write raw (parameters count as plain)."""
    return type(t) in (torch.Tensor, torch.nn.Parameter) or (
        isinstance(t, torch.nn.Parameter) and type(t.data) is torch.Tensor
    )


def storage_bytes(storage: torch.UntypedStorage) -> memoryview:
    """The bytes of a storage, as a zero-copy view for CPU storages (a copy otherwise)."""
    n = storage.nbytes()
    if storage.device.type == "meta" or n == 0:
        return memoryview(b"")
    if storage.device.type != "cpu":
        storage = storage.cpu()
        # keep the copy alive as long as the view
        return memoryview(bytearray((ctypes.c_char * n).from_address(storage.data_ptr())))
    return memoryview((ctypes.c_char * n).from_address(storage.data_ptr())).cast("B")


class StorageTable:
    """Assigns one index per distinct storage; tensors sharing a storage share the index."""

    def __init__(self) -> None:
        self.storages: list[torch.UntypedStorage] = []
        self._index: dict[tuple, int] = {}

    def __len__(self) -> int:
        return len(self.storages)

    def __repr__(self) -> str:
        total = sum(s.nbytes() for s in self.storages)
        return f"<StorageTable storages={len(self.storages)} bytes={total}>"

    @staticmethod
    def key(t: torch.Tensor) -> tuple | None:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr == 0:  # meta / empty storages are never shared
            return None
        return (storage.device.type, storage.device.index, ptr)

    def lookup(self, t: torch.Tensor) -> int | None:
        key = self.key(t)
        return None if key is None else self._index.get(key)

    def add(self, t: torch.Tensor) -> int:
        key = self.key(t)
        if key is not None and key in self._index:
            idx = self._index[key]
            if t.untyped_storage().nbytes() > self.storages[idx].nbytes():
                self.storages[idx] = t.untyped_storage()
            return idx
        self.storages.append(t.untyped_storage())
        if key is not None:
            self._index[key] = len(self.storages) - 1
        return len(self.storages) - 1


def check_view_bounds(meta: schema.TensorMeta, nbytes: int | None, where: str) -> tuple:
    """Concrete (sizes, strides, offset) of ``meta``, checked by :func:`pt2serde.format.extent.view_problem`
    to lie within ``nbytes`` (None: a meta tensor, no storage), whatever the device: nothing
    it reaches or stands for passes 2**63 bytes, and an expanded (zero-stride) tensor
    stands for a bounded dense size."""
    try:
        sizes = [s.as_int for s in meta.sizes]
        strides = [s.as_int for s in meta.strides]
        offset = meta.storage_offset.as_int
    except AttributeError:
        raise SerializeError(f"{where}: stored tensors need concrete sizes, strides and offset") from None
    itemsize = tables.dtype_from_wire(meta.dtype).itemsize
    problem = extent.view_problem(sizes, strides, offset, itemsize, nbytes, has_data=meta.device.type != "meta")
    if problem is not None:
        raise SerializeError(f"{where}: {problem}")
    return sizes, strides, offset


#: Every storage made over a buffer starts at a multiple of this many bytes. torch's
#: kernels for the widest element types (complex128: 16 bytes) use aligned vector loads
#: and die with SIGSEGV on a misaligned address, which a crafted archive (a record at an
#: odd offset) or a caller's buffer (a memoryview slice) would otherwise hand them.
STORAGE_ALIGNMENT = 16


def storage_from_buffer(view: memoryview) -> torch.UntypedStorage:
    """A byte storage over ``view``: no copy when the buffer's address is a multiple of
    :data:`STORAGE_ALIGNMENT` (a mapped archive, a ``bytes``/``bytearray``), a private,
    aligned copy otherwise. Read-only buffers are viewed as they are: callers that need
    writable tensors copy them first."""
    if view.nbytes == 0:
        return torch.UntypedStorage(0)
    if view.readonly:
        with warnings.catch_warnings():  # ~10 us each: only where frombuffer would warn
            warnings.simplefilter("ignore")  # frombuffer warns about read-only buffers
            storage = torch.frombuffer(view, dtype=torch.uint8).untyped_storage()
    else:
        storage = torch.frombuffer(view, dtype=torch.uint8).untyped_storage()
    if storage.data_ptr() % STORAGE_ALIGNMENT:
        storage = storage.clone()  # torch's allocator aligns to 64 bytes
    return storage


def view_from_buffer(storage: torch.UntypedStorage, meta: schema.TensorMeta, where: str) -> torch.Tensor:
    """A CPU tensor of ``meta``'s dtype and geometry viewing ``storage`` (bounds checked)."""
    sizes, strides, offset = check_view_bounds(meta, storage.nbytes(), where)
    dtype = tables.dtype_from_wire(meta.dtype)
    return torch.empty(0, dtype=dtype).set_(storage, offset, sizes, strides)


def meta_tensor(meta: schema.TensorMeta, is_param: bool, where: str = "tensor") -> torch.Tensor:
    """A tensor on the ``meta`` device (no data) with the stored geometry."""
    sizes, strides, _ = check_view_bounds(meta, None, where)
    t = torch.empty_strided(sizes, strides, dtype=tables.dtype_from_wire(meta.dtype), device="meta")
    return parameter(t, meta.requires_grad, where) if is_param else t


def parameter(t: torch.Tensor, requires_grad: bool, where: str = "tensor") -> torch.nn.Parameter:
    """``nn.Parameter(t, requires_grad)``; a file asking for gradients of an integer or bool
    parameter (which torch cannot make) is refused with a SerializeError."""
    if requires_grad and not (t.is_floating_point() or t.is_complex()):
        raise SerializeError(f"{where}: a {t.dtype} parameter cannot require gradients (requires_grad is true)")
    return torch.nn.Parameter(t, requires_grad=requires_grad)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device`` with its sizes, strides and storage offset kept.

    Copies the bytes the view reaches and views them again, as ``torch.load`` restores a
    storage and its views: ``t.to(device)`` would materialize an expanded (zero-stride)
    tensor densely, so a few stored bytes could claim a huge device allocation.
    """
    if t.numel() == 0:
        return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=device)
    reach = 1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride()))
    flat = torch.as_strided(t, (reach,), (1,), t.storage_offset()).to(device)
    return torch.as_strided(flat, t.shape, t.stride(), flat.storage_offset())


def finish_tensor(t: torch.Tensor, meta: schema.TensorMeta, is_param: bool, where: str = "tensor") -> torch.Tensor:
    """A tensor rebuilt from its storage made what ``meta`` says: moved to its device (a
    ``SerializeError`` naming ``where`` when that device is not available here), a
    ``Parameter`` when ``is_param``, and requiring gradients when ``meta`` says so."""
    device = tables.device_from_wire(meta.device)
    if device.type != "cpu":
        try:
            t = to_device(t, device)
        except Exception as e:  # noqa: BLE001 - no such backend here (ipu, cuda without CUDA...), bad index
            raise SerializeError(f"{where}: cannot place the tensor on {device}: {type(e).__name__}: {e}") from None
    if is_param:
        return parameter(t, meta.requires_grad, where)
    if meta.requires_grad and (t.is_floating_point() or t.is_complex()):
        t.requires_grad_(True)
    return t


# --------------------------------------------------------------- value trees

_SCALARS: tuple[tuple[type, str], ...] = ((bool, "bool"), (int, "int"), (str, "str"))


def _tree_to_wire(value: Any, tensor_ref: Callable[[torch.Tensor], int]) -> Any:
    if isinstance(value, torch.Tensor):
        return {"tensor": tensor_ref(value)}
    for py_type, tag in _SCALARS:
        if type(value) is py_type:
            return {tag: value}
    if type(value) is float:
        return {"float": codec.encode_float(value)}
    if value is None:
        return {"none": True}
    if type(value) is complex:
        return {"complex": [codec.encode_float(value.real), codec.encode_float(value.imag)]}
    if isinstance(value, torch.dtype):
        return {"dtype": int(tables.dtype_to_wire(value))}
    if isinstance(value, torch.device):
        return {"device": [value.type, value.index]}
    if type(value) in (tuple, list):
        return {type(value).__name__: [_tree_to_wire(v, tensor_ref) for v in value]}
    if type(value) is dict:
        items = []
        for k, v in value.items():
            if type(k) not in (str, int):
                raise SerializeError(f"example input dict key of type {type(k).__name__} is not supported")
            items.append([k, _tree_to_wire(v, tensor_ref)])
        return {"dict": items}
    raise SerializeError(f"example input of type {type(value).__name__} cannot be stored without pickle")


def _tree_from_wire(node: Any, tensors: list, depth: int = 0) -> Any:
    if depth > 256:
        raise SerializeError("example inputs are nested too deeply")
    if not isinstance(node, dict) or len(node) != 1:
        raise SerializeError("malformed example-input tree")
    ((tag, v),) = node.items()
    if tag == "tensor":
        if type(v) is not int or not 0 <= v < len(tensors):
            raise SerializeError(f"example input refers to tensor {v!r}, which does not exist")
        return tensors[v]
    if tag in ("bool", "int", "str"):
        if type(v) is not {"bool": bool, "int": int, "str": str}[tag]:
            raise SerializeError(f"example input `{tag}` holds a {type(v).__name__}")
        return v
    if tag == "float":
        return codec.decode_float(v)
    if tag == "none":
        return None
    if tag == "complex" and isinstance(v, list) and len(v) == 2:
        return complex(codec.decode_float(v[0]), codec.decode_float(v[1]))
    if tag == "dtype":
        return tables.dtype_from_wire(v)
    if tag == "device" and isinstance(v, list) and len(v) == 2:
        return tables.device_from_wire(schema.Device(type=v[0], index=v[1]))
    if tag in ("tuple", "list") and isinstance(v, list):
        items = [_tree_from_wire(x, tensors, depth + 1) for x in v]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict" and isinstance(v, list):
        out = {}
        for item in v:
            if not (isinstance(item, list) and len(item) == 2 and type(item[0]) in (str, int)):
                raise SerializeError("malformed example-input dict entry")
            out[item[0]] = _tree_from_wire(item[1], tensors, depth + 1)
        return out
    raise SerializeError(f"unknown example-input tag {tag!r}")


# ------------------------------------------------------------------ payloads


def encode_payload(
    kind: str,
    values: dict[str, Any] | None = None,
    *,
    tree: Any = None,
    shared: StorageTable | None = None,
    table_out: StorageTable | None = None,
    pickle_protocol: int = 2,
) -> bytes:
    """A payload holding ``values`` (name -> tensor / custom object) or a value ``tree``.

    ``shared``: storages of another payload (the state dict) that tensors here may view
    instead of storing their bytes again. ``table_out``: receives this payload's storages.
    ``pickle_protocol``: for the entries stored as pickles (tensor subclasses, opaque objects).
    """
    table = table_out if table_out is not None else StorageTable()
    blobs: list[memoryview | bytes] = []
    entries: dict[str, Any] = {}
    tensor_list: list[dict] = []

    def tensor_entry(t: torch.Tensor) -> dict:
        meta = codec.to_dict(tensor_meta_to_wire(t))
        if is_fake(t):
            return {"type": "fake_tensor", "meta": meta}
        if not is_plain_tensor(t):
            blobs.append(torch_save_bytes(t, pickle_protocol))
            return {"type": "pickled_tensor", "blob": len(blobs) - 1, "meta": meta}
        if shared is not None and (idx := shared.lookup(t)) is not None:
            return {"type": "tensor", "shared_storage": idx, "meta": meta}
        return {"type": "tensor", "storage": table.add(t), "meta": meta}

    from .object_records import constant_text, object_record, torch_save_bytes, writing

    for name, value in (values or {}).items():
        if isinstance(value, torch.Tensor):
            with writing(constant_text(name, value, f"{kind} entry")):
                entry = tensor_entry(value)
            entry["is_param"] = isinstance(value, torch.nn.Parameter)
        else:
            from .arguments import get_opaque_type_name, is_opaque_value

            script = isinstance(value, torch._C.ScriptObject)
            if not script and not is_opaque_value(value):
                raise SerializeError(f"{kind} entry {name!r} of type {type(value).__name__} is not supported")
            blobs.append(object_record(name, value, pickle_protocol)[1])
            entry = {"type": "script_object" if script else "opaque", "blob": len(blobs) - 1,
                     "class_fqn": value._type().qualified_name() if script else get_opaque_type_name(type(value))}
        entries[name] = entry

    header: dict[str, Any] = {"kind": kind, "byteorder": sys.byteorder, "entries": entries}
    if tree is not None:
        def ref(t: torch.Tensor) -> int:
            tensor_list.append(tensor_entry(t))
            return len(tensor_list) - 1

        with writing(f"the {kind}"):
            header["tree"] = _tree_to_wire(tree, ref)
        header["tensors"] = tensor_list
    first_storage_blob = len(blobs)
    header["first_storage_blob"] = first_storage_blob
    blobs.extend(storage_bytes(s) for s in table.storages)
    header["storage_devices"] = [[s.device.type, s.device.index] for s in table.storages]
    return payload.pack(header, blobs)


def tensor_meta_to_wire(t: torch.Tensor) -> schema.TensorMeta:
    """A tensor's dtype, sizes, strides, offset, device and layout as ``schema.TensorMeta``
    (symbolic sizes as expressions): what the graph records for each tensor value, a
    payload for each stored tensor and a fake tensor's sample-input record."""
    sym = symbolic.sym_int_to_wire
    return schema.TensorMeta(
        dtype=tables.dtype_to_wire(t.dtype),
        sizes=[sym(s) for s in t.shape],
        requires_grad=t.requires_grad,
        device=tables.device_to_wire(t.device),
        strides=[sym(s) for s in t.stride()],
        storage_offset=sym(t.storage_offset()),
        layout=tables.layout_to_wire(t.layout),
    )


class DecodedPayload:
    """What :func:`decode_payload` returns: named values, the value tree, and the storages."""

    def __init__(self, values: dict[str, Any], tree: Any, storages: list[torch.UntypedStorage]):
        self.values = values
        self.tree = tree
        self.storages = storages

    def __repr__(self) -> str:
        return f"<DecodedPayload values={len(self.values)} storages={len(self.storages)}>"


def decode_payload(
    data: bytes | bytearray | memoryview,
    *,
    what: str,
    shared: list[torch.UntypedStorage] | None = None,
    fake_tensor: Callable[[schema.TensorMeta], torch.Tensor] | None = None,
    allow_pickle: bool = False,
) -> DecodedPayload:
    """Rebuild the values of a payload made by :func:`encode_payload`.

    Tensors come back writable and sharing storage where they did when written. They
    view ``data`` itself when it is writable (a ``bytearray`` the caller hands over), and
    otherwise one private copy of it, made here in a single pass: a read-only buffer
    (``bytes``, as in ``SerializedArtifact``) must not change when a tensor is written.
    ``fake_tensor`` builds fake tensors from metadata (needs the program's shape env).
    Pickled entries (tensor subclasses, custom objects) need ``allow_pickle=True``; opaque objects of
    registered classes are read without unpickling (:mod:`.opaque`).
    """
    if not data:
        return DecodedPayload({}, None, [])
    if memoryview(data).readonly:  # tensors must be writable: take one private copy
        data = bytearray(data)
    header, blobs = payload.unpack(data, what=what)
    first = header.get("first_storage_blob")
    devices = header.get("storage_devices")
    if type(first) is not int or not 0 <= first <= len(blobs) or not isinstance(devices, list) \
            or len(devices) != len(blobs) - first:
        raise SerializeError(f"{what}: inconsistent storage table in the header")
    storages = [storage_from_buffer(b) for b in blobs[first:]]  # views stay copy-on-write

    def blob_at(entry: dict, where: str) -> memoryview:
        i = entry.get("blob")
        if type(i) is not int or not 0 <= i < first:
            raise SerializeError(f"{where}: invalid blob reference {i!r}")
        return blobs[i]

    def tensor_from(entry: dict, where: str) -> torch.Tensor:
        if not isinstance(entry, dict):
            raise SerializeError(f"{where}: malformed entry")
        try:
            meta = codec.from_dict(schema.TensorMeta, entry.get("meta"))
        except SerializeError as e:
            raise SerializeError(f"{where}: {e}") from None
        kind = entry.get("type")
        is_param = entry.get("is_param") is True
        if kind == "fake_tensor":
            if fake_tensor is None:
                raise SerializeError(f"{where}: a fake tensor cannot be rebuilt here")
            t = fake_tensor(meta)
            return parameter(t, meta.requires_grad, where) if is_param else t
        if kind == "pickled_tensor":
            if not allow_pickle:
                raise SerializeError(f"{where}: a pickled tensor subclass needs allow_pickle=True")
            return torch.load(io.BytesIO(bytes(blob_at(entry, where))), weights_only=False)  # allow_pickle=True only (refused just above)
        if kind != "tensor":
            raise SerializeError(f"{where}: unknown entry type {kind!r}")
        if "shared_storage" in entry:
            pool, idx = shared or [], entry["shared_storage"]
        else:
            pool, idx = storages, entry.get("storage")
        if type(idx) is not int or not 0 <= idx < len(pool):
            raise SerializeError(f"{where}: refers to storage {idx!r}, which does not exist")
        if tables.device_from_wire(meta.device).type == "meta":
            return meta_tensor(meta, is_param, where)
        return finish_tensor(view_from_buffer(pool[idx], meta, where), meta, is_param, where)

    values: dict[str, Any] = {}
    entries = header.get("entries", {})
    if not isinstance(entries, dict):
        raise SerializeError(f"{what}: `entries` must be an object")
    for name, entry in entries.items():
        where = f"{what} entry {name!r}"
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind == "script_object":
            from .torchbind import load_torchbind  # imports this module

            values[name] = load_torchbind(blob_at(entry, where), what=where, class_fqn=entry.get("class_fqn"),
                                          allow_pickle=allow_pickle)
        elif kind == "opaque" and not allow_pickle:  # read without unpickling, from a registered class
            values[name] = load_opaque(blob_at(entry, where), where=where)
        elif kind == "opaque":
            import pickle

            values[name] = pickle.loads(bytes(blob_at(entry, where)))  # allow_pickle=True only (checked just above)
        else:
            values[name] = tensor_from(entry, where)

    tree = None
    if "tree" in header:
        tensor_entries = header.get("tensors")
        if not isinstance(tensor_entries, list):
            raise SerializeError(f"{what}: `tensors` must be a list")
        tensors = [tensor_from(e, f"{what} tensor {i}") for i, e in enumerate(tensor_entries)]
        tree = _tree_from_wire(header["tree"], tensors)
    return DecodedPayload(values, tree, storages)
