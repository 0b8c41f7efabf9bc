"""Tensor extents: no size arithmetic past 2**63 on any device, bounded expanded tensors,
device moves that keep the stored geometry (issue 10, findings 12a and 12d).

The rule is :func:`pt2serde.format.extent.view_problem` (torch-free); ``load``/``deserialize``
(``tensors.check_view_bounds``) and ``validate`` (``tensor_entries.view_problem``) both call it.
Whole archives through every entry point: ``tests/hostile/cases_json_tensors.py``.
"""

from __future__ import annotations

import io
import json

import pytest
import torch

import pt2serde
from pt2serde.format import extent, tensor_entries
from pt2serde import schema
from pt2serde.bridge import tensors
from pt2serde.errors import SerializeError

LIMIT = extent.MAX_OVERLAPPING_BYTES


@pytest.mark.parametrize("sizes,strides,offset,itemsize,has_data,message", [
    ([3, 4], [2**62, 2**62 - 1], 0, 4, False, r"reach byte 92233720368547758072, past 2\*\*63"),
    ([2], [2**62], 0, 2, False, r"reach byte 9223372036854775810, past 2\*\*63"),
    ([1], [1], 2**61, 4, False, r"storage offset 2305843009213693952 reach byte 9223372036854775812, past 2\*\*63"),
    ([1], [1], 2**61, 4, True, None),  # with data: the storage bound refuses it (below)
    ([2**31, 2**31], [0, 0], 0, 2, False, r"of 2-byte elements hold 9223372036854775808 bytes, past 2\*\*63"),
    ([2**32, 2**31], [0, 0], 0, 2, True, r"^sizes \[4294967296, 2147483648\] hold more than 2\*\*63 elements$"),
    ([2**40], [0], 0, 4, True, r"4 stored bytes stand for 4398046511104 bytes of tensor, over the limit of 67108864"),
    ([LIMIT // 4 + 1], [0], 0, 4, True, r"over the limit of 67108864"),
    ([2, 2], [1, 1], 0, 4, True, None),  # overlapping, tiny
    ([LIMIT // 4], [0], 0, 4, True, None),  # exactly the limit
    ([2**40], [0], 0, 4, False, None),  # meta: no data
    ([2**40], [1], 0, 4, False, None),  # meta: a huge dense weight (a meta model of a large net)
    ([0, 5], [2**62, 2**62], 3, 4, True, None),  # empty: reaches its offset only
    ([3, 4], [-4, 1], 0, 4, True, r"negative size, stride or offset \(\[3, 4\], \[-4, 1\], 0\)"),
])
def test_view_problem(sizes, strides, offset, itemsize, has_data, message):
    found = extent.view_problem(sizes, strides, offset, itemsize, None, has_data)
    if message is None:
        assert found is None
    else:
        assert found is not None and __import__("re").search(message, found), found


def test_bounds_against_the_storage():
    assert extent.view_problem([3, 4], [4, 1], 0, 4, 48) is None
    assert extent.view_problem([3, 4], [4, 1], 1, 4, 48) == (
        "sizes [3, 4], strides [4, 1] and offset 1 need 52 bytes but the storage holds 48")
    assert extent.view_problem([0], [1], 13, 4, 48) == "storage offset 13 lies past the end of the storage (48 bytes)"
    assert extent.view_problem([1], [1], 2**61, 4, 48) == (
        "sizes [1], strides [1] and offset 2305843009213693952 need 9223372036854775812 bytes but the storage holds 48")


def test_validate_and_load_share_the_rule():
    assert tensor_entries.view_problem([2**40], [0], 0, 4, None) == extent.view_problem([2**40], [0], 0, 4, None)


def _meta(sizes, strides, offset=0, device="cpu") -> schema.TensorMeta:
    return pt2serde.from_dict(schema.TensorMeta, {
        "dtype": 7, "sizes": [{"as_int": s} for s in sizes], "strides": [{"as_int": s} for s in strides],
        "storage_offset": {"as_int": offset}, "requires_grad": False, "layout": 7,
        "device": {"type": device, "index": None}})


def test_meta_tensor_with_strides_past_2_63_is_refused():
    """It used to load with a negative storage nbytes."""
    with pytest.raises(SerializeError, match=r"^w: sizes \[3, 4\], strides \[4611686018427387904, 4611686018427387903\] "
                                             r"and storage offset 0 reach byte \d+, past 2\*\*63$"):
        tensors.meta_tensor(_meta([3, 4], [2**62, 2**62 - 1], device="meta"), False, "w")


def test_meta_tensor_may_describe_a_huge_expanded_weight():
    t = tensors.meta_tensor(_meta([2**40], [0], device="meta"), False, "w")
    assert t.shape == (2**40,) and t.stride() == (0,) and t.untyped_storage().nbytes() == 4


def test_payload_with_a_huge_expanded_tensor_is_refused():
    data = tensors.encode_payload("state_dict", {"w": torch.zeros(1).expand(2**40)})
    with pytest.raises(SerializeError, match=r"state_dict entry 'w': sizes \[1099511627776\] and strides \[0\] overlap "
                                             r"in storage: 4 stored bytes stand for 4398046511104 bytes"):
        tensors.decode_payload(data, what="state_dict")


def test_small_expanded_tensor_round_trips_with_its_zero_stride():
    data = tensors.encode_payload("state_dict", {"w": torch.arange(3.0).expand(1000, 3)})
    w = tensors.decode_payload(data, what="state_dict").values["w"]
    assert w.stride() == (0, 1) and w.untyped_storage().nbytes() == 12
    assert torch.equal(w, torch.arange(3.0).expand(1000, 3))


def test_to_device_copies_what_the_view_reaches_not_the_dense_tensor():
    """``t.to(device)`` of an expanded tensor allocates it densely; ``to_device`` moves the
    bytes the view reaches and views them again (the meta device stands in for an accelerator)."""
    base = torch.arange(10.0)
    for t in (base.expand(2**30, 10), base[2:8:2], base.as_strided((3, 3), (1, 2), 1), base[:0]):
        moved = tensors.to_device(t, torch.device("meta"))
        assert moved.device.type == "meta" and moved.shape == t.shape and moved.stride() == t.stride()
        assert moved.untyped_storage().nbytes() <= base.untyped_storage().nbytes()
    assert torch.equal(tensors.to_device(base[2:8:2], torch.device("cpu")), base[2:8:2])
    assert torch.equal(tensors.to_device(base.as_strided((3, 3), (1, 2), 1), torch.device("cpu")),
                       base.as_strided((3, 3), (1, 2), 1))


class _Expanded(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("e", torch.arange(4.0).expand(256, 4))

    def forward(self, x):
        return x + self.e.sum(0)


def test_program_with_an_expanded_buffer_round_trips_and_validates(tmp_path):
    ep = torch.export.export(_Expanded(), (torch.ones(4),))
    path = tmp_path / "e.pt2"
    pt2serde.save(ep, path)
    back = pt2serde.load(path)
    assert back.state_dict["e"].stride() == (0, 1)
    assert torch.equal(back.module()(torch.ones(4)), ep.module()(torch.ones(4)))
    from pt2serde import cli

    assert cli.main(["validate", str(path)]) in (0, None)
