"""The bytes behind a stored tensor, read piece by piece.

``diff`` compares tensors through these: :func:`storage_view` (the whole storage, mapped),
:func:`byte_chunks` (a byte range, read from the file when the record is stored) and
:func:`tensor_chunks` / :func:`element_chunks` (the elements in logical order, gathered a
chunk at a time whatever the view claims). :func:`entry_globals` lists what the pickle of a
pickled entry names, without unpickling it.
"""

from __future__ import annotations

from typing import Iterator

from ..errors import SerializeError
from .contents import Pt2Archive
from .tables import BY_NAME
from .tensor_entries import TensorEntry
from .torchsave import pickle_globals

__all__ = ["entry_globals", "storage_view", "byte_chunks", "tensor_chunks", "element_chunks"]


def entry_globals(archive: Pt2Archive, entry: TensorEntry) -> list[str] | None:
    """What the pickle of a pickled entry names (see :func:`pickle_globals`)."""
    record = entry.own_record or entry.record
    if record is None or record not in archive.reader:
        return None
    try:
        return pickle_globals(archive.reader.view(record))
    except SerializeError:
        return None


def storage_view(archive: Pt2Archive, entry: TensorEntry) -> memoryview:
    """The bytes of the storage behind ``entry``: a view of the mapped file, or the archive's
    one inflated copy of a deflated record (:meth:`Pt2Archive.record_view`)."""
    if entry.record is None:
        raise SerializeError(f"entry {entry.name!r} has no storage record")
    return archive.record_view(entry.record, entry.inner)


def byte_chunks(archive: Pt2Archive, entry: TensorEntry, start: int, length: int,
                chunk: int = 16 << 20) -> Iterator[memoryview]:
    """``length`` bytes of ``entry``'s storage from byte ``start``, in pieces of at most
    ``chunk``: read from the file when the record is stored, else sliced from its one
    inflated copy. The caller has checked ``start + length`` against the record size."""
    span = archive.span(entry.record, entry.inner)
    if span is not None:
        yield from archive.chunks(span[0] + start, length, chunk)
        return
    view = storage_view(archive, entry)
    for i in range(start, start + length, chunk):
        yield view[i:min(i + chunk, start + length)]


def tensor_chunks(archive: Pt2Archive, entry: TensorEntry, chunk: int = 16 << 20) -> Iterator[memoryview]:
    """The tensor's elements in logical order (see :func:`element_chunks`); contiguous tensors
    are read as one byte range (:func:`byte_chunks`)."""
    if entry.contiguous() and entry.numel:
        item = BY_NAME[entry.dtype].itemsize
        yield from byte_chunks(archive, entry, entry.storage_offset * item, entry.numel * item,
                               max(item, chunk - chunk % item))
        return
    yield from element_chunks(storage_view(archive, entry), entry, chunk)


_LANES = {8: "Q", 4: "I", 2: "H", 1: "B"}


def _gather(data: memoryview, first: int, count: int, stride: int, item: int) -> bytes | memoryview:
    """``count`` elements of ``item`` bytes from element ``first`` of ``data``, ``stride`` apart."""
    if stride == 1 or count == 1:
        return data[first * item:(first + count) * item]
    if stride == 0:
        return bytes(data[first * item:(first + 1) * item]) * count
    width = next(w for w in (8, 4, 2, 1) if item % w == 0)
    lanes = item // width  # an element is `lanes` words of `width` bytes (complex128: 2 x 8)
    src = data[first * item:(first + (count - 1) * stride + 1) * item].cast(_LANES[width])
    out = bytearray(count * item)
    dst = memoryview(out).cast(_LANES[width])
    for lane in range(lanes):
        dst[lane::lanes] = src[lane::stride * lanes]
    return out


def _row_starts(sizes: list[int], strides: list[int], offset: int) -> Iterator[int]:
    """The storage offset of each row (the last dimension) of a view, in row-major order."""
    index = [0] * len(sizes)
    base = offset
    while True:
        yield base
        k = len(sizes) - 1
        while k >= 0:
            index[k] += 1
            base += strides[k]
            if index[k] < sizes[k]:
                break
            base -= strides[k] * index[k]
            index[k] = 0
            k -= 1
        if k < 0:
            return


def element_chunks(data: memoryview, entry: TensorEntry, chunk: int = 16 << 20) -> Iterator[memoryview]:
    """The tensor's elements in logical (row-major) order, as byte chunks of about ``chunk`` bytes.

    Contiguous tensors are sliced without copying; other layouts are gathered piece by piece
    (a row longer than a chunk too), so memory stays at about one chunk whatever the view
    claims: a zero-stride ``[2**40]`` view yields forever, one chunk at a time, and the caller
    decides how much to read. The caller has checked the geometry (``tensor_problems``).
    """
    item = BY_NAME[entry.dtype].itemsize
    n = entry.numel
    if n == 0:
        return
    step = max(item, chunk - chunk % item)
    if entry.contiguous():
        start = entry.storage_offset * item
        total = n * item
        for i in range(0, total, step):
            yield data[start + i:start + min(i + step, total)]
        return
    inner_n, inner_s = entry.sizes[-1], entry.strides[-1]
    per = step // item
    buf = bytearray()
    for base in _row_starts(entry.sizes[:-1], entry.strides[:-1], entry.storage_offset):
        for j in range(0, inner_n, per):
            buf += _gather(data, base + j * inner_s, min(per, inner_n - j), inner_s, item)
            if len(buf) >= step:
                yield memoryview(bytes(buf))
                buf = bytearray()
    if buf:
        yield memoryview(bytes(buf))
