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
    """Serialize ``header`` plus the raw ``blobs`` (written straight from their buffers)."""
    table = []
    offset = 0
    for blob in blobs:
        n = memoryview(blob).nbytes
        table.append({"offset": offset, "nbytes": n})
        offset += n + _pad(n)
    head = json.dumps({**header, "blobs": table}, allow_nan=False, separators=(",", ":")).encode("utf-8")
    start = _PREFIX.size + len(head)
    out = bytearray(_PREFIX.pack(MAGIC, len(head)))
    out += head
    out += b"\0" * _pad(start)
    for blob in blobs:
        mv = memoryview(blob).cast("B")
        out += mv
        out += b"\0" * _pad(mv.nbytes)
    return bytes(out)


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
