"""The ``.data/serialization_id`` record, computed the way PyTorch's zip writer computes it.

PyTorch's archive writer (``caffe2::serialize::PyTorchStreamWriter``, used by
``torch.export.save`` and ``torch.save``) ends every archive with a 40-digit record:
20 decimal digits of a hash over the record names it wrote, then 20 of a hash over their
CRC-32s. Nothing in it is random, so pt2serde writes the same id for the same records and
an archive can be compared with PyTorch's byte for byte.

Facts this module reproduces (PyTorch 2.13's writer, as built for Linux with libstdc++):

- both halves fold 64-bit values with ``c10::hash_combine``:
  ``seed ^ (value + 0x9e3779b9 + (seed << 6) + (seed >> 2))``;
- the CRC half folds, in writing order, the CRC-32 of each record's data descriptor (empty
  records have none: PyTorch writes them without a descriptor and without flag bit 3). The
  writer recognises a descriptor as any single write of 8 bytes or more that starts with
  ``PK\\x07\\x08``, so the data of a record that itself starts so is folded too (its bytes
  4..7 as the value) just before the record's own CRC;
- the name half folds ``std::hash<std::string>`` of every record name (relative to the
  archive's root folder, marker records included) in the iteration order of the
  ``std::unordered_set`` that holds them: libstdc++'s hash table (prime bucket counts,
  new nodes at the front of their bucket, full rehash on growth).

PyTorch built against another C++ library (macOS's libc++, MSVC) hashes and orders names
differently, so its ids differ from these; no reader checks the id (PyTorch only logs it).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterable, Sequence

__all__ = ["serialization_id", "descriptor_values", "SERIALIZATION_ID_RECORD"]

SERIALIZATION_ID_RECORD = ".data/serialization_id"

_M64 = (1 << 64) - 1
_MUL = (0xC6A4A793 << 32) + 0x5BD1E995  # libstdc++'s _Hash_bytes multiplier (64-bit size_t)
_SEED = 0xC70F6907  # std::hash<std::string>'s seed
_DESCRIPTOR_SIG = b"PK\x07\x08"

# libstdc++'s bucket counts: a table for small requests, then its prime list (the entries a
# table of at most 2**20 records can reach are far below its end).
_FAST_BUCKETS = (2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13)
_PRIMES = (
    17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 103, 109, 113, 127,
    137, 139, 149, 157, 167, 179, 193, 199, 211, 227, 241, 257, 277, 293, 313, 337, 359, 383, 409,
    439, 467, 503, 541, 577, 619, 661, 709, 761, 823, 887, 953, 1031, 1109, 1193, 1289, 1381, 1493,
    1613, 1741, 1879, 2029, 2179, 2357, 2549, 2753, 2971, 3209, 3469, 3739, 4027, 4349, 4703, 5087,
    5503, 5953, 6427, 6949, 7517, 8123, 8783, 9497, 10273, 11113, 12011, 12983, 14033, 15173,
    16411, 17749, 19183, 20753, 22447, 24281, 26267, 28411, 30727, 33223, 35933, 38873, 42043,
    45481, 49201, 53201, 57557, 62233, 67307, 72817, 78779, 85229, 92203, 99733, 107897, 116731,
    126271, 136607, 147793, 159871, 172933, 187091, 202409, 218971, 236897, 256279, 277261,
    299951, 324503, 351061, 379787, 410857, 444487, 480881, 520241, 562841, 608903, 658753,
    712697, 771049, 834181, 902483, 976369, 1056323, 1142821, 1236397, 1337629, 1447153, 1565659,
    1693859, 1832561, 1982627, 2144977, 2320627, 2510653, 2716249, 2938679, 3179303, 3439651,
    3721303, 4026031, 4355707, 4712381, 5098259, 5515729, 5967347, 6456007, 6984629, 7556579,
    8175383, 8844859, 9569143, 10352717, 11200489, 12117689, 13109983, 14183539, 15345007,
    16601593, 17961079, 19431899, 21023161, 22744717, 24607243, 26622317, 28802401, 31160981,
    33712729,
)


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def string_hash(data: bytes) -> int:
    """``std::hash<std::string>`` of libstdc++ on a 64-bit platform (``_Hash_bytes``)."""
    n = len(data)
    whole = n & ~7
    h = (_SEED ^ (n * _MUL)) & _M64
    for i in range(0, whole, 8):
        word = int.from_bytes(data[i:i + 8], "little")
        h ^= (_shift_mix((word * _MUL) & _M64) * _MUL) & _M64
        h = (h * _MUL) & _M64
    if n & 7:
        h ^= int.from_bytes(data[whole:], "little")
        h = (h * _MUL) & _M64
    h = (_shift_mix(h) * _MUL) & _M64
    return _shift_mix(h)


def hash_combine(seed: int, value: int) -> int:
    """``c10::hash_combine`` on 64-bit values."""
    return (seed ^ ((value + 0x9E3779B9 + (seed << 6) + (seed >> 2)) & _M64)) & _M64


def _next_bucket_count(n: int) -> int:
    if n < len(_FAST_BUCKETS):
        return 1 if n == 0 else _FAST_BUCKETS[n]
    i = bisect_left(_PRIMES, n)
    if i == len(_PRIMES):  # beyond 2**24 names: not reachable under the archive's record cap
        raise ValueError(f"{n} buckets is beyond the emulated table")
    return _PRIMES[i]


def unordered_set_order(codes: Sequence[int]) -> list[int]:
    """The iteration order (indices into ``codes``) of a libstdc++ ``std::unordered_set``
    into which elements with these hash codes were inserted in this order (all distinct).

    The table is a singly linked list; ``buckets[b]`` holds the node *before* bucket ``b``'s
    first node (``-1``: the list head), or ``None`` for an empty bucket.
    """
    nxt: list[int | None] = [None] * len(codes)
    head: int | None = None
    count, resize_at = 1, 0  # a default-constructed table: one bucket, nothing allocated
    buckets: list[int | None] = [None]

    def rehash(n: int) -> None:
        nonlocal head, buckets, count
        new: list[int | None] = [None] * n
        p, head, begin_bucket = head, None, 0
        while p is not None:
            following, b = nxt[p], codes[p] % n
            if new[b] is None:
                nxt[p], head = head, p
                new[b] = -1
                if nxt[p] is not None:
                    new[begin_bucket] = p
                begin_bucket = b
            else:
                prev = new[b]
                if prev == -1:
                    nxt[p], head = head, p
                else:
                    nxt[p], nxt[prev] = nxt[prev], p
            p = following
        buckets, count = new, n

    for node, code in enumerate(codes):
        if node + 1 > resize_at:  # the prime rehash policy, max load factor 1
            wanted = max(node + 1, 0 if resize_at else 11)
            if wanted >= count:
                n = _next_bucket_count(max(wanted + 1, count * 2))
                resize_at = n
                rehash(n)
            else:
                resize_at = count
        b = code % count
        prev = buckets[b]
        if prev is not None:  # at the front of its bucket's run
            if prev == -1:
                nxt[node], head = head, node
            else:
                nxt[node], nxt[prev] = nxt[prev], node
        else:  # an empty bucket: at the front of the list
            nxt[node], head = head, node
            if nxt[node] is not None:
                buckets[codes[nxt[node]] % count] = node
            buckets[b] = -1
    order = []
    p = head
    while p is not None:
        order.append(p)
        p = nxt[p]
    return order


def descriptor_values(lead: bytes, size: int, crc: int, descriptor: bool = True) -> list[int]:
    """The values one record adds to the CRC half: its data's bytes 4..7 when the data itself
    looks like a data descriptor to PyTorch's writer, then the CRC-32 of its descriptor
    (``descriptor=False``: the record has none, as PyTorch writes empty records)."""
    out = [int.from_bytes(lead[4:8], "little")] if size >= 8 and lead[:4] == _DESCRIPTOR_SIG else []
    return out + [crc] if descriptor else out


def serialization_id(names: Sequence[str], crc_values: Iterable[int]) -> str:
    """The 40-digit id PyTorch's writer records for an archive whose records (relative names,
    in writing order) are ``names`` and whose descriptor values are ``crc_values``."""
    codes = [string_hash(n.encode("utf-8")) for n in names]
    name_hash = 0
    for i in unordered_set_order(codes):
        name_hash = hash_combine(name_hash, codes[i])
    crc_hash = 0
    for value in crc_values:
        crc_hash = hash_combine(crc_hash, value)
    return f"{name_hash:020d}{crc_hash:020d}"
