"""The pickle-free container behind ``SerializedArtifact.state_dict/constants/example_inputs``.

Layout (all integers little-endian)::

    offset 0   8 bytes   magic  b"PT2SPAY\\x01"
    offset 8   8 bytes   u64    header length H
    offset 16  H bytes   header: UTF-8 JSON object
    ...        padding to a multiple of 64
    data       blob i at data + blobs[i].offset, each 64-byte aligned, blobs[i].nbytes long

The header's ``blobs`` list gives ``{"offset", "nbytes"}`` per blob (offsets relative to
the data region); everything else in the header belongs to the caller (tensor metadata,
value trees). An empty byte string stands for "nothing stored". :func:`unpack` checks
every offset and length against the real size before handing out views.

Blobs are raw tensor bytes, except the entries PyTorch itself can only store as pickles
(tensor subclasses, opaque objects; TorchScript objects in TorchScript's own format):
those are written with the caller's pickle protocol (:func:`check_pickle_protocol`).
"""

from __future__ import annotations

import ctypes
import json
import pickle
import struct
from typing import Any, Sequence

from .codec import loads_json
from ..errors import SerializeError

__all__ = ["MAGIC", "ALIGN", "pack", "unpack", "MAX_HEADER_BYTES", "DEFAULT_PICKLE_PROTOCOL",
           "check_pickle_protocol"]

MAGIC = b"PT2SPAY\x01"
ALIGN = 64
MAX_HEADER_BYTES = 256 << 20
_PREFIX = struct.Struct("<8sQ")
#: PyTorch's default for ``torch.export.save`` and ``serialize`` (``pickle_protocol=2``)
DEFAULT_PICKLE_PROTOCOL = 2


def check_pickle_protocol(protocol: object) -> int:
    """``protocol`` if it is a pickle protocol ``torch.save`` can write (2 to
    ``pickle.HIGHEST_PROTOCOL``); ``TypeError``/``ValueError`` naming the accepted values."""
    if type(protocol) is not int:
        raise TypeError(f"pickle_protocol must be an int from 2 to {pickle.HIGHEST_PROTOCOL}, "
                        f"got {type(protocol).__name__} {protocol!r}")
    if not 2 <= protocol <= pickle.HIGHEST_PROTOCOL:
        raise ValueError(f"pickle_protocol must be from 2 to {pickle.HIGHEST_PROTOCOL} (pickle.HIGHEST_PROTOCOL), "
                         f"got {protocol}; PyTorch's default is {DEFAULT_PICKLE_PROTOCOL}")
    return protocol


def _pad(n: int) -> int:
    return -n % ALIGN


def pack(header: dict[str, Any], blobs: Sequence[memoryview | bytes]) -> bytes:
    """Serialize ``header`` plus the raw ``blobs``, each copied once, straight from its
    buffer, into one ``bytes`` object allocated at its final size (:func:`fresh_bytes`)."""
    views = [memoryview(blob).cast("B") for blob in blobs]
    table = []
    offset = 0
    for view in views:
        table.append({"offset": offset, "nbytes": view.nbytes})
        offset += view.nbytes + _pad(view.nbytes)
    head = json.dumps({**header, "blobs": table}, allow_nan=False, separators=(",", ":")).encode("utf-8")
    start = _PREFIX.size + len(head)
    start += _pad(start)
    out, fill = _fresh_bytes(start + offset)
    with fill:
        _PREFIX.pack_into(fill, 0, MAGIC, len(head))
        fill[_PREFIX.size:_PREFIX.size + len(head)] = head
        for view, entry in zip(views, table):
            at = start + entry["offset"]
            fill[at:at + view.nbytes] = view
    return out


def _fresh_bytes(n: int) -> tuple[bytes, memoryview]:
    """A new, zero-filled ``bytes`` object of ``n`` bytes and a writable view of its memory,
    for filling it in place before anyone else sees it.

    ``bytes(n)`` asks ``calloc`` for the memory, so large buffers come as untouched zero
    pages and each byte is written once, by the caller (``bytearray`` would be zeroed
    page by page first, then copied again into ``bytes``). This is what C code does with
    ``PyBytes_FromStringAndSize(NULL, n)``: the object is new, not shared, not hashed
    and not interned (``n`` > 1), so writing it is invisible to everything else. The
    caller releases the view (``with``) before handing the ``bytes`` out.
    """
    if n < 2:  # bytes(0) is a shared singleton; one byte is not worth the trick
        raise ValueError(f"fresh_bytes needs at least 2 bytes, got {n}")
    out = bytes(n)
    address = ctypes.cast(ctypes.c_char_p(out), ctypes.c_void_p).value
    return out, memoryview((ctypes.c_char * n).from_address(address)).cast("B")


def unpack(data: bytes | bytearray | memoryview, *, what: str = "payload") -> tuple[dict[str, Any], list[memoryview]]:
    """The header and one memoryview per blob; raises ``SerializeError`` on any inconsistency."""
    view = memoryview(data).cast("B")
    if view.nbytes < _PREFIX.size:
        raise SerializeError(f"{what}: {view.nbytes} bytes is too short for a pt2serde payload")
    magic, head_len = _PREFIX.unpack_from(view, 0)
    if magic != MAGIC:
        raise SerializeError(f"{what}: not a pt2serde payload (bad magic {bytes(magic)!r})")
    if head_len > min(MAX_HEADER_BYTES, view.nbytes - _PREFIX.size):
        raise SerializeError(f"{what}: header length {head_len} exceeds the payload size {view.nbytes}")
    header = loads_json(view[_PREFIX.size:_PREFIX.size + head_len], what=f"{what} header")
    if not isinstance(header, dict) or not isinstance(header.get("blobs"), list):
        raise SerializeError(f"{what}: header must be an object with a `blobs` list")
    start = _PREFIX.size + head_len
    start += _pad(start)
    blobs = []
    for i, entry in enumerate(header["blobs"]):
        off, n = (entry.get("offset"), entry.get("nbytes")) if isinstance(entry, dict) else (None, None)
        if type(off) is not int or type(n) is not int or off < 0 or n < 0 or off % ALIGN:
            raise SerializeError(f"{what}: blob {i} has an invalid offset/length ({off!r}, {n!r})")
        if start + off + n > view.nbytes:
            raise SerializeError(
                f"{what}: blob {i} ({n} bytes at {off}) runs past the end of the payload ({view.nbytes} bytes)"
            )
        blobs.append(view[start + off:start + off + n])
    return header, blobs
