"""Tensor values for ``pt2serde diff``: compared lazily, within a budget (torch-free).

Raw bytes first, chunk by chunk straight from the mapped files; only the 64 KiB blocks
whose bytes differ are decoded to compute differences (with numpy when it can be imported,
else with ``memoryview`` casts; bfloat16 is widened into float32; float8 formats are
compared as bytes and reported as "values differ"). :class:`Comparer` holds one run's
budget and caches; :func:`value_detail` says what it found in words.
"""

from __future__ import annotations

import math
import struct
from dataclasses import replace
from typing import Any, Callable, Iterator

from ..format.contents import Pt2Archive
from ..format.tensor_bytes import byte_chunks, tensor_chunks
from ..format.tensor_entries import TensorEntry
from ..format.tables import BY_NAME

__all__ = ["BLOCK", "CHUNK", "COMPARE_RATIO", "COMPARE_ALLOWANCE", "NOT_COMPARED", "Comparer", "compare_tensors",
           "total_bytes", "value_detail", "entry_fits"]

BLOCK = 64 << 10
CHUNK = 16 << 20
#: tensor bytes one diff run may read: this many times the payload records of both archives...
COMPARE_RATIO = 4
#: ... plus this much
COMPARE_ALLOWANCE = 64 << 20

try:  # optional: vectorised decoding of differing blocks
    import numpy as _np
except ImportError:  # pragma: no cover - exercised by a test that hides numpy
    _np = None


def _np_dtype(fmt: str):
    return _np.dtype("?" if fmt == "?" else "<" + fmt)  # records are little-endian


def _decode_np(block: memoryview, fmt: str):
    if fmt == "bf16":
        return (_np.frombuffer(block, _np.uint16).astype(_np.uint32) << 16).view(_np.float32)
    if fmt.startswith("c:"):
        flat = _np.frombuffer(block, _np_dtype(fmt[2:])).astype(_np.float64)
        return flat[0::2] + 1j * flat[1::2]
    return _np.frombuffer(block, _np_dtype(fmt))


def _unpack(block: memoryview, fmt: str) -> tuple:
    # struct, not memoryview.cast: cast refuses 'e' (float16); '<' also fixes the byte order
    return struct.unpack(f"<{block.nbytes // struct.calcsize(fmt)}{fmt}", block)


def _decode_py(block: memoryview, fmt: str) -> list:
    if fmt == "bf16":  # the upper half of a float32: widen by shifting into place
        widened = struct.pack(f"<{block.nbytes // 2}I", *(x << 16 for x in _unpack(block, "H")))
        return list(_unpack(memoryview(widened), "f"))
    if fmt.startswith("c:"):
        flat = _unpack(block, fmt[2:])
        return [complex(r, i) for r, i in zip(flat[0::2], flat[1::2])]
    return list(_unpack(block, fmt))


def _same_value(x: Any, y: Any) -> bool:
    return x == y or (x != x and y != y)  # NaN equals NaN here: same "value"


def _block_stats(a: memoryview, b: memoryview, fmt: str | None, keep=None) -> tuple[int, float | int | None]:
    """(elements that differ, max |a - b|) of two equal-length blocks; max is None if not decodable.
    ``keep``: one bool per element, the elements to count (default: all)."""
    if fmt is None:
        return sum(1 for i, (x, y) in enumerate(zip(bytes(a), bytes(b))) if x != y and (keep is None or keep[i])), None
    if _np is not None:
        va, vb = _decode_np(a, fmt), _decode_np(b, fmt)
        if va.dtype.kind in "fc":
            differ = ~((va == vb) | (_np.isnan(va) & _np.isnan(vb)))
        else:
            differ = va != vb
        if keep is not None:
            differ &= _np.asarray(keep, bool)
        count = int(differ.sum())
        if not count:
            return 0, 0
        xa, xb = va[differ], vb[differ]
        if va.dtype.kind == "b":
            return count, 1
        if va.dtype.kind in "iu":
            return count, max(abs(int(x) - int(y)) for x, y in zip(xa.tolist(), xb.tolist()))
        with _np.errstate(invalid="ignore", over="ignore"):
            diffs = _np.abs(xa.astype(_np.complex128 if va.dtype.kind == "c" else _np.float64) - xb)
        return count, float(_np.nan if _np.isnan(diffs).any() else diffs.max())
    va, vb = _decode_py(a, fmt), _decode_py(b, fmt)
    count = 0
    worst: float | int = 0
    for i, (x, y) in enumerate(zip(va, vb)):
        if _same_value(x, y) or (keep is not None and not keep[i]):
            continue
        count += 1
        try:
            d = abs(x - y)
        except OverflowError:
            d = math.inf
        if d != d or worst != worst:
            worst = math.nan
        elif d > worst:
            worst = d
    if fmt == "?" and count:
        worst = 1
    return count, worst


def _bytes_equal(a: memoryview, b: memoryview) -> bool:
    n = a.nbytes
    if n != b.nbytes:
        return False
    if n % 8 == 0 and n:
        return a.cast("Q") == b.cast("Q")
    return a == b


def _paired(ita: Iterator[memoryview], itb: Iterator[memoryview]) -> Iterator[tuple[memoryview, memoryview]]:
    """Two chunk streams of equal total length, re-cut into pairs of equal-length pieces."""
    a = b = memoryview(b"")
    while True:
        if not a.nbytes:
            a = next(ita, None)
            if a is None:
                return
        if not b.nbytes:
            b = next(itb, None)
            if b is None:
                return
        n = min(a.nbytes, b.nbytes)
        yield a[:n], b[:n]
        a, b = a[n:], b[n:]


def _keep(cover: bytes, first: int, count: int):
    """Bits ``first .. first + count`` of the little-endian bitset ``cover`` (one per element)."""
    if _np is not None:
        bits = _np.unpackbits(_np.frombuffer(cover, _np.uint8, (first + count + 7) // 8 - first // 8, first // 8),
                              bitorder="little")
        return bits[first % 8:first % 8 + count].astype(bool)
    return [bool(cover[(first + i) >> 3] >> ((first + i) & 7) & 1) for i in range(count)]


def _reduce(a: TensorEntry, b: TensorEntry) -> tuple[list[int], list[int], list[int], int]:
    """(sizes, strides of a, strides of b, repeat): the views without the dimensions that add no
    values: size 1, or stride 0 on both sides (each value then repeats ``repeat`` times)."""
    sizes, sa, sb = [], [], []
    repeat = 1
    for n, x, y in zip(a.sizes, a.strides, b.strides):
        if n != 1 and (x or y):
            sizes.append(n)
            sa.append(x)
            sb.append(y)
        else:
            repeat *= n
    return sizes, sa, sb, repeat


def _one_to_one(sizes: list[int], strides: list[int]) -> bool:
    """Every element of the view has a storage element of its own (no two share one)."""
    reach = 0
    for n, s in sorted(zip(sizes, strides), key=lambda d: d[1]):
        if s <= reach:
            return False
        reach += (n - 1) * s
    return True


def _coverage(sizes: list[int], strides: list[int]) -> int:
    """The storage elements a view reaches, relative to its first, as a bitset. Each
    dimension is a union of shifted copies, built by doubling: O(log size) big-int
    operations on bits as wide as the view's span (bounded by the record, not by numel)."""
    cover = 1
    for n, s in zip(sizes, strides):
        total, block, have, shift = 0, cover, 1, 0
        while n:
            if n & 1:
                total |= block << shift
                shift += have * s
            block |= block << (have * s)
            have *= 2
            n >>= 1
        cover = total
    return cover


class _Spent(Exception):
    pass


NOT_COMPARED = "not compared: diff's budget for reading tensor data is spent"


class Comparer:
    """Compares tensor values for one ``diff`` run within a budget of bytes read.

    Work is bounded by the records, never by what views claim: two tensors with the same
    dtype, sizes, strides and offset are equal iff the storage elements their views reach
    are; a pair of storages whose bytes are all equal is found so once (cached), and then
    every view of it is equal without reading anything; otherwise a view reads only the span
    it reaches. Views whose layouts differ are compared element by element in logical order,
    up to the larger record's size (what a view that does not repeat elements can hold);
    past that the report says how many elements were compared. Every byte read counts
    toward :attr:`budget` (:data:`COMPARE_RATIO` x the payload records of both archives +
    :data:`COMPARE_ALLOWANCE`), so a file with many entries naming one record costs at most
    a few passes over its records.
    """

    def __init__(self, arch_a: Pt2Archive, arch_b: Pt2Archive,
                 progress: Callable[[int], None] | None = None) -> None:
        self.arch_a, self.arch_b = arch_a, arch_b
        self.progress = progress
        self.budget = COMPARE_RATIO * (total_bytes(arch_a) + total_bytes(arch_b)) + COMPARE_ALLOWANCE
        self._same: dict[tuple, bool] = {}
        self._results: dict[tuple, dict | None] = {}

    def _spend(self, n: int) -> None:
        if n > self.budget:
            raise _Spent()
        self.budget -= n
        if self.progress is not None:
            self.progress(n // 2)

    def compare(self, a: TensorEntry, b: TensorEntry) -> dict | None:
        """None when both tensors hold the same values, else ``{"differ", "elements",
        "max_abs_diff"}`` (and ``"note"`` when the counts are not whole-tensor counts).
        Both entries have the same dtype and sizes, and geometry checked against their storages."""
        if (a.record_size == 0) != (b.record_size == 0):
            return {"differ": None, "elements": a.numel, "max_abs_diff": None,
                    "note": "one side stores no data (loads as zeros)"}
        if a.record_size == 0 or a.numel == 0:
            return None
        dims = _reduce(a, b)
        key = (a.storage_id, b.storage_id, a.dtype, a.storage_offset, b.storage_offset,
               *map(tuple, dims[:3]), dims[3])
        if key not in self._results:
            try:
                if a.strides == b.strides and a.storage_offset == b.storage_offset:
                    result = None if self._storages_equal(a, b) else self._same_layout(a, b, dims)
                else:
                    result = self._logical(a, b, dims)
            except _Spent:
                result = {"differ": None, "elements": a.numel, "max_abs_diff": None,
                          "note": NOT_COMPARED}
            self._results[key] = result
        return self._results[key]

    def _storages_equal(self, a: TensorEntry, b: TensorEntry) -> bool:
        key = (a.storage_id, b.storage_id)
        if key not in self._same:
            same = a.record_size == b.record_size
            if same:
                self._spend(2 * a.record_size)
                same = all(_bytes_equal(pa, pb) for pa, pb in _paired(
                    byte_chunks(self.arch_a, a, 0, a.record_size, CHUNK),
                    byte_chunks(self.arch_b, b, 0, b.record_size, CHUNK)))
            self._same[key] = same
        return self._same[key]

    def objects_equal(self, a: TensorEntry, b: TensorEntry) -> bool | None:
        """Whether two stored objects (pickles) have the same bytes; None: over budget."""
        try:
            return self._storages_equal(a, b)
        except _Spent:
            return None

    def _same_layout(self, a: TensorEntry, b: TensorEntry, dims: tuple) -> dict | None:
        """Compare the storage elements the (common) view reaches, block by block."""
        sizes, strides, _, repeat = dims
        item = BY_NAME[a.dtype].itemsize
        reach = sum((n - 1) * s for n, s in zip(sizes, strides)) + 1  # elements from the first
        one_to_one = _one_to_one(sizes, strides)
        dense = one_to_one and math.prod(sizes) == reach
        cover = None if dense else _coverage(sizes, strides)
        cover_bytes = None if cover is None else cover.to_bytes((reach + 7) // 8, "little")
        self._spend(2 * reach * item)
        start = a.storage_offset * item
        stats = _Stats()
        at = 0  # element index of the current piece, relative to the first
        chunk = max(item, CHUNK - CHUNK % item)
        for pa, pb in _paired(byte_chunks(self.arch_a, a, start, reach * item, chunk),
                              byte_chunks(self.arch_b, b, start, reach * item, chunk)):
            if not _bytes_equal(pa, pb):
                step = max(item, BLOCK - BLOCK % item)
                for i in range(0, pa.nbytes, step):
                    ba, bb = pa[i:i + step], pb[i:i + step]
                    if ba != bb:
                        keep = None if cover_bytes is None else _keep(cover_bytes, at + i // item, ba.nbytes // item)
                        stats.add(*_block_stats(ba, bb, BY_NAME[a.dtype].fmt, keep))
            at += pa.nbytes // item
        if not stats.differ:
            return None
        if one_to_one:
            return {"differ": stats.differ * repeat, "elements": a.numel, "max_abs_diff": stats.worst}
        return {"differ": stats.differ, "elements": a.numel, "max_abs_diff": stats.worst, "stored": cover.bit_count(),
                "note": "the view repeats storage elements; counted in storage elements"}

    def _logical(self, a: TensorEntry, b: TensorEntry, dims: tuple) -> dict | None:
        """Element by element in logical order: the layouts differ."""
        sizes, sa, sb, repeat = dims
        ra = replace(a, sizes=sizes, strides=sa)
        rb = replace(b, sizes=sizes, strides=sb)
        item = BY_NAME[a.dtype].itemsize
        total = math.prod(sizes) * item
        limit = min(total, max(a.record_size, b.record_size, BLOCK))
        limit -= limit % item
        self._spend(2 * limit)
        fmt = BY_NAME[a.dtype].fmt
        stats = _Stats()
        done = 0
        step = max(item, BLOCK - BLOCK % item)
        chunk = max(item, min(CHUNK, limit))  # gather no more than the limit
        for pa, pb in _paired(tensor_chunks(self.arch_a, ra, chunk), tensor_chunks(self.arch_b, rb, chunk)):
            pa, pb = pa[:limit - done], pb[:limit - done]
            if not _bytes_equal(pa, pb):
                for i in range(0, pa.nbytes, step):
                    ba, bb = pa[i:i + step], pb[i:i + step]
                    if ba != bb:
                        stats.add(*_block_stats(ba, bb, fmt))
            done += pa.nbytes
            if done >= limit:
                break
        if done < total:
            compared = f"compared the first {done // item:,} of {a.numel:,} elements"
            return {"differ": stats.differ or None, "elements": a.numel, "max_abs_diff": stats.worst,
                    "compared": done // item,
                    "note": f"{compared}: their layouts differ, and the rest would read more than the records hold"}
        if not stats.differ:
            return None
        return {"differ": stats.differ * repeat, "elements": a.numel, "max_abs_diff": stats.worst}


class _Stats:
    """Differing elements and the largest absolute difference, over blocks."""

    def __init__(self) -> None:
        self.differ = 0
        self.worst: float | int | None = 0

    def add(self, count: int, d: float | int | None) -> None:
        self.differ += count
        if d is None or self.worst is None:
            self.worst = None
        elif d != d or self.worst != self.worst:
            self.worst = math.nan
        else:
            self.worst = max(self.worst, d)


def compare_tensors(arch_a: Pt2Archive, a: TensorEntry, arch_b: Pt2Archive, b: TensorEntry,
                    progress: Callable[[int], None] | None = None) -> dict | None:
    """None when both tensors hold the same values, else ``{"differ", "elements", "max_abs_diff"}``
    (one comparison; :func:`diff_archives` shares one :class:`Comparer` across entries)."""
    return Comparer(arch_a, arch_b, progress).compare(a, b)


def total_bytes(archive: Pt2Archive) -> int:
    return sum(archive.reader.entry(n).size for n in archive.payload_records())


def value_detail(r: dict) -> str:
    """What :meth:`Comparer.compare` found, in words (counts say what they count)."""
    worst = "" if not r["differ"] or r["max_abs_diff"] is None else f", max abs diff {_num(r['max_abs_diff'])}"
    if "stored" in r:
        return (f"values differ in {r['differ']:,} of the {r['stored']:,} storage elements the view reaches "
                f"(its {r['elements']:,} elements repeat them){worst}")
    if "compared" in r:
        where = f"the first {r['compared']:,} of {r['elements']:,} elements"
        rest = "the layouts differ, and comparing the rest would read more than the records hold"
        if r["differ"]:
            return f"values differ in {r['differ']:,} of {where}{worst} ({rest})"
        return f"values not compared past {where} (equal there): {rest}"
    if r["differ"] is None:
        return f"values differ ({r['note']})" if r.get("note") != NOT_COMPARED else f"values {NOT_COMPARED}"
    return f"values differ in {r['differ']:,} of {r['elements']:,} elements{worst}"


def entry_fits(e: TensorEntry) -> bool:
    """Whether an entry's view fits its record (sizes, strides and offset non-negative, span inside)."""
    span = e.span()
    return span is not None and len(e.sizes) == len(e.strides) and min([*e.sizes, *e.strides, e.storage_offset,
                                                                       0]) >= 0 \
        and (e.record_size == 0 or span <= e.record_size)


def _num(x: float | int | complex) -> str:
    if isinstance(x, int):
        return f"{x:,}"
    if x != x:
        return "nan"
    return f"{x:.6g}"
