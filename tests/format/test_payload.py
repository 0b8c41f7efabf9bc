"""pt2serde.format.payload: the container's bytes, and ``pack`` writing each blob once into
one buffer of the final size (a memory bound, measured with tracemalloc; never a time)."""

import gc
import tracemalloc

import pytest

from pt2serde.errors import SerializeError
from pt2serde.format import payload


def test_pack_lays_out_header_and_aligned_blobs_with_zero_padding():
    blobs = [b"abc", memoryview(bytearray(b"\x01" * 70)), b""]
    out = payload.pack({"kind": "k"}, blobs)
    assert type(out) is bytes and out[:8] == payload.MAGIC
    header, views = payload.unpack(out)
    assert header["kind"] == "k"
    assert header["blobs"] == [{"offset": 0, "nbytes": 3}, {"offset": 64, "nbytes": 70}, {"offset": 192, "nbytes": 0}]
    assert [bytes(v) for v in views] == [b"abc", b"\x01" * 70, b""]
    start = len(out) - 192
    assert start % payload.ALIGN == 0 and len(out) % payload.ALIGN == 0
    assert out[start + 3:start + 64] == bytes(61) and out[start + 134:] == bytes(58)
    # an ordinary bytes object: equal to and hashing like a copy, stable when packed again
    assert out == bytes(bytearray(out)) and hash(out) == hash(bytes(bytearray(out)))
    assert payload.pack({"kind": "k"}, blobs) == out


def test_pack_writes_each_blob_once_into_one_preallocated_buffer():
    size = 64 << 20
    blob = bytearray(size)
    blob[::4096] = b"\x07" * len(range(0, size, 4096))
    gc.collect()
    tracemalloc.start()
    try:
        out = payload.pack({"kind": "k"}, [memoryview(blob), b"tail"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(out) >= size
    # growing a bytearray and copying it into bytes peaks at twice the payload or more
    assert peak <= 1.2 * len(out)
    _, views = payload.unpack(out)
    assert views[0] == blob and bytes(views[1]) == b"tail"


def test_unpack_refuses_a_blob_past_the_end():
    out = payload.pack({"kind": "k"}, [b"x" * 10])
    with pytest.raises(SerializeError, match=r"state_dict: blob 0 \(10 bytes at 0\) runs past the end of the payload"):
        payload.unpack(out[:-60], what="state_dict")
