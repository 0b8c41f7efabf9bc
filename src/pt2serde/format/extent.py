"""How far a stored tensor reaches, and how much it may stand for: one rule for load and validate.

Torch-free. A strided tensor of ``sizes``, ``strides`` and ``storage_offset`` (in elements)
reads the storage bytes ``[offset * itemsize, span)`` where, for a non-empty tensor,
``span = (offset + sum((size - 1) * stride) + 1) * itemsize``. Its *dense size* is
``numel * itemsize``: what a copy (``.contiguous()``, ``.clone()``, a comparison element by
element) allocates.

:func:`view_problem` says what is wrong with a view, on every device (meta included),
or returns None:

* the span and the dense size are below 2**63 bytes: torch computes both in int64, and past
  that they wrap (a meta tensor with strides near 2**63 had a negative ``nbytes``);
* a tensor whose elements overlap in storage (dense size over the span: a zero stride from
  ``expand``, a broadcast) stands for at most :data:`MAX_OVERLAPPING_BYTES` of dense data.
  Every other tensor's dense size is at most its span, which the caller checks against the
  bytes its record holds, so no stored tensor stands for much more than the file. Real
  programs keep their expanded buffers small (``position_ids``-style buffers of a few KB;
  none of the 620 tensors of the compat corpus overlaps at all), while a legal zero-stride
  ``[2**40]`` float weight over 4 bytes would stand for 4 TiB. Meta tensors hold no data
  and are exempt from this rule (a meta model may legitimately describe huge weights);
* the span fits the storage.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["MAX_BYTES", "MAX_OVERLAPPING_BYTES", "span_bytes", "dense_bytes", "view_problem"]

#: torch's sizes, offsets and byte counts are int64: nothing a tensor reaches may pass this
MAX_BYTES = 1 << 63
#: the dense size an overlapping (zero-stride) stored tensor may stand for
MAX_OVERLAPPING_BYTES = 64 << 20


def span_bytes(sizes: Sequence[int], strides: Sequence[int], offset: int, itemsize: int) -> int:
    """Bytes of storage the view reaches, from the storage's start (exact, in Python ints).
    An empty tensor reaches its offset only. Sizes, strides and offset are non-negative."""
    if 0 in sizes:
        return offset * itemsize
    return (offset + sum((n - 1) * s for n, s in zip(sizes, strides)) + 1) * itemsize


def dense_bytes(sizes: Sequence[int], itemsize: int) -> int:
    """``numel * itemsize`` (exact, in Python ints)."""
    n = itemsize
    for s in sizes:
        n *= s
    return n


def view_problem(sizes: Sequence[int], strides: Sequence[int], offset: int, itemsize: int,
                 nbytes: int | None, has_data: bool = True) -> str | None:
    """What is wrong with a strided view of a storage of ``nbytes`` bytes, or None.

    ``nbytes`` None: the storage is not known yet or unbounded (meta). ``has_data`` False: a
    meta tensor, exempt from the overlap rule. In order: lengths, negative values, bytes past
    the end of the storage, dense size past 2**63, span past 2**63 (meta: for a tensor with
    data, the caller checks the storage, which is always smaller), an overlapping view over
    :data:`MAX_OVERLAPPING_BYTES`. ``load`` (``tensors.check_view_bounds``) and ``validate``
    (``tensor_entries.view_problem``) both call this, so they refuse the same views with the
    same words.
    """
    if len(sizes) != len(strides):
        return f"{len(sizes)} sizes but {len(strides)} strides"
    if any(s < 0 for s in sizes) or any(s < 0 for s in strides) or offset < 0:
        return f"negative size, stride or offset ({list(sizes)}, {list(strides)}, {offset})"
    span = span_bytes(sizes, strides, offset, itemsize)
    if nbytes is not None and span > nbytes:
        if 0 in sizes:
            return f"storage offset {offset} lies past the end of the storage ({nbytes} bytes)"
        return (f"sizes {list(sizes)}, strides {list(strides)} and offset {offset} need {span} bytes "
                f"but the storage holds {nbytes}")
    dense = dense_bytes(sizes, itemsize)
    if dense >= MAX_BYTES:
        if dense // itemsize >= MAX_BYTES:
            return f"sizes {list(sizes)} hold more than 2**63 elements"
        return f"sizes {list(sizes)} of {itemsize}-byte elements hold {dense} bytes, past 2**63"
    if span >= MAX_BYTES and not has_data:  # with data, the storage bound above says it (no storage is that big)
        return (f"sizes {list(sizes)}, strides {list(strides)} and storage offset {offset} reach byte {span}, "
                "past 2**63")
    if has_data and dense > span and dense > MAX_OVERLAPPING_BYTES:
        return (f"sizes {list(sizes)} and strides {list(strides)} overlap in storage: {span} stored bytes stand "
                f"for {dense} bytes of tensor, over the limit of {MAX_OVERLAPPING_BYTES} for an expanded "
                "(zero-stride) tensor")
    return None
