"""pt2serde.bridge.tensors: state written once per storage, views and aliases kept, empty
tensors, every dtype of the schema bit for bit; compared with ``torch.export.save`` / ``load``."""

import io

import pytest
import torch

import pt2serde
from artifacts import config, record_names, saved, torch_loaded, torch_saved
from pt2serde import SerializeError, schema
from pt2serde.bridge import tables


def test_aliased_state_is_written_once_per_storage():
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Parameter(torch.randn(10, 4))
            self.register_buffer("first_rows", self.emb.detach()[:3])
            self.register_buffer("cols", self.emb.detach()[:, 1])
            self.other = torch.nn.Parameter(torch.randn(4))

        def forward(self, x):
            return x @ self.emb.t() + self.first_rows.sum() + self.cols.sum() + self.other.sum()

    ep = torch.export.export(Tied(), (torch.randn(2, 4),))
    data = saved(ep)
    weights = [n for n in record_names(data) if "/weight_" in n]
    assert weights == ["archive/data/weights/weight_0", "archive/data/weights/weight_1"]
    assert len(weights) == len([n for n in record_names(torch_saved(ep)) if "/weight_" in n])
    cfg = config(data, "data/weights/model_weights_config.json")["config"]
    assert {k: (v["path_name"], [s["as_int"] for s in v["tensor_meta"]["strides"]], v["tensor_meta"]["storage_offset"]["as_int"])
            for k, v in cfg.items()} == {
        "emb": ("weight_0", [4, 1], 0), "first_rows": ("weight_0", [4, 1], 0), "cols": ("weight_0", [4], 1),
        "other": ("weight_1", [1], 0),
    }
    loaded = pt2serde.load(io.BytesIO(data))
    sd = loaded.state_dict
    with torch.no_grad():
        sd["emb"][1, 1] = 123.0
    assert sd["first_rows"][1, 1].item() == 123.0 and sd["cols"][1].item() == 123.0
    assert sd["cols"].stride() == (4,) and sd["cols"].storage_offset() == 1


def test_multiple_empty_tensors_share_records_per_dtype():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("a", torch.empty(0, dtype=torch.uint8))
            self.register_buffer("b", torch.empty(0, dtype=torch.uint8))
            self.register_buffer("c", torch.empty(0, dtype=torch.float32))

        def forward(self, x):
            return x + self.a.numel() + self.b.numel() + self.c.sum()

    ep = torch.export.export(M(), (torch.randn(2),))
    data = saved(ep)
    weights = [n for n in record_names(data) if "/weight_" in n]
    assert weights == ["archive/data/weights/weight_0", "archive/data/weights/weight_1"]
    assert weights == [n for n in record_names(torch_saved(ep)) if "/weight_" in n]
    for loaded in (pt2serde.load(io.BytesIO(data)), torch_loaded(data)):
        unflat = torch.export.unflatten(loaded)
        assert (unflat.a.dtype, unflat.b.dtype, unflat.c.dtype) == (torch.uint8, torch.uint8, torch.float32)
        assert unflat.a.shape == unflat.b.shape == unflat.c.shape == (0,)


def test_empty_tensors_of_every_shape():
    class M(torch.nn.Module):
        def __init__(self, with_end_view: bool):
            super().__init__()
            self.register_buffer("e0", torch.empty(3, 0, 2))
            if with_end_view:
                self.register_buffer("e1", torch.arange(6.0)[6:])  # empty view at the end of a storage
            self.p = torch.nn.Parameter(torch.empty(0, 5))

        def forward(self, x):
            return x + self.e0.sum() + self.p.sum() + sum(b.sum() for n, b in self.named_buffers() if n == "e1")

    def check(loaded, ep):
        for k, v in ep.state_dict.items():
            got = loaded.state_dict[k]
            assert (got.shape, got.dtype) == (v.shape, v.dtype), k
        x = torch.randn(2)
        torch.testing.assert_close(loaded.module()(x), ep.module()(x))

    ep = torch.export.export(M(True), (torch.randn(2),))
    loaded = pt2serde.load(io.BytesIO(saved(ep)))
    check(loaded, ep)
    assert loaded.state_dict["e1"].storage_offset() == 6
    check(torch_loaded(saved(ep)), ep)
    with pytest.raises(RuntimeError, match="numel: integer multiplication overflow"):
        torch_saved(ep)  # PyTorch 2.13 cannot save the empty view at the end of a storage
    ep = torch.export.export(M(False), (torch.randn(2),))
    check(pt2serde.load(io.BytesIO(torch_saved(ep))), ep)


ALL_DTYPES = sorted(tables.DTYPES, key=lambda d: int(tables.DTYPES[d]))


def test_every_dtype_of_the_schema_round_trips_bit_exact():
    assert {int(v) for v in tables.DTYPES.values()} == {int(v) for v in schema.ScalarType} - {0}

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            for i, dtype in enumerate(ALL_DTYPES):
                raw = torch.randint(0, 256, (5 * dtype.itemsize,), dtype=torch.uint8, generator=g)
                if dtype == torch.bool:
                    raw = raw % 2
                self.register_buffer(f"b{i}", raw.view(dtype))

        def forward(self, x):
            return x + 1

    ep = torch.export.export(M(), (torch.randn(2),))

    def bits(t):
        return torch.empty(0, dtype=torch.uint8).set_(t.untyped_storage()).clone()

    for name, loaded in (("ours->ours", pt2serde.load(io.BytesIO(saved(ep)))),
                         ("ours->torch", torch_loaded(saved(ep))),
                         ("torch->ours", pt2serde.load(io.BytesIO(torch_saved(ep))))):
        for key, t in ep.state_dict.items():
            got = loaded.state_dict[key]
            assert got.dtype == t.dtype and got.shape == t.shape, (name, key)
            assert torch.equal(bits(got), bits(t)), (name, key, t.dtype)


def test_multiple_dtypes_keep_their_dtype():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p32 = torch.nn.Parameter(torch.randn(3))
            self.p16 = torch.nn.Parameter(torch.randn(3, dtype=torch.float16))
            self.register_buffer("i8", torch.tensor([1, -2, 3], dtype=torch.int8))
            self.register_buffer("f64", torch.tensor([1.5, 2.5, 3.5], dtype=torch.float64))

        def forward(self, x):
            return x * self.p32 + self.p16.float() + self.i8 + self.f64.float()

    ep = torch.export.export(M(), (torch.randn(3),))
    for loaded in (pt2serde.load(io.BytesIO(saved(ep))), pt2serde.load(io.BytesIO(torch_saved(ep)))):
        assert {k: v.dtype for k, v in loaded.state_dict.items()} == \
            {"p32": torch.float32, "p16": torch.float16, "i8": torch.int8, "f64": torch.float64}
        x = torch.randn(3)
        torch.testing.assert_close(loaded.module()(x), ep.module()(x))


@pytest.mark.parametrize("wrap", [bytes, lambda b: memoryview(bytes(b))], ids=["bytes", "read-only memoryview"])
def test_payload_tensors_from_a_read_only_buffer_are_writable_and_leave_it_unchanged(wrap):
    from pt2serde.bridge import tensors

    w = torch.arange(6.0)
    data = wrap(tensors.encode_payload("state_dict", {"w": w, "v": w[2:]}))
    before = bytes(data)
    values = tensors.decode_payload(data, what="state_dict").values
    values["v"].add_(100)  # writable, and still sharing storage with w as when written
    assert torch.equal(values["w"], torch.tensor([0.0, 1, 102, 103, 104, 105]))
    assert bytes(data) == before
    again = tensors.decode_payload(data, what="state_dict").values["w"]
    assert torch.equal(again, w)


def test_devices_are_built_once_and_their_memo_is_bounded(monkeypatch):
    """``device_from_wire`` hands out one ``torch.device`` per stored device (every tensor names
    one); a refused device is refused at every ask, and a file naming many devices cannot grow
    the memo past its size."""
    from pt2serde.errors import SerializeError

    monkeypatch.setattr(tables, "_DEVICES", {})
    cpu = tables.device_from_wire(schema.Device(type="cpu", index=None))
    assert cpu == torch.device("cpu") and tables.device_from_wire(schema.Device(type="cpu", index=None)) is cpu
    assert tables.device_from_wire(schema.Device(type="meta", index=0)) == torch.device("meta", 0)
    for _ in range(2):
        with pytest.raises(SerializeError, match="Invalid device 'no-such-device'"):
            tables.device_from_wire(schema.Device(type="no-such-device", index=None))
    for i in range(100):
        assert tables.device_from_wire(schema.Device(type="cpu", index=i)) == torch.device("cpu", i)
    assert len(tables._DEVICES) == 64


def test_grad_dtypes_are_the_ones_torch_lets_require_gradients():
    # format/tables.GRAD_DTYPES (torch-free) is what load and validate refuse requires_grad outside of
    from pt2serde.format.tables import DTYPES, GRAD_DTYPES, grad_problem

    allowed = set()
    for wire in DTYPES:
        try:
            torch.empty(2, dtype=tables.dtype_from_wire(wire), device="meta").requires_grad_(True)
        except RuntimeError:
            continue
        allowed.add(wire)
    assert allowed == set(GRAD_DTYPES) and len(allowed) >= 7
    assert grad_problem(schema.ScalarType.LONG, True) == "a torch.int64 tensor cannot require gradients (requires_grad is true)"
    assert grad_problem(schema.ScalarType.LONG, False) is None
    assert grad_problem(schema.ScalarType.FLOAT, True) is None


def test_unindexed_backend_devices_need_their_backend(monkeypatch):
    """A tensor on ``hpu`` (or ``privateuseone``) without an index: torch's fake tensors ask
    ``torch.hpu`` for the current device, which only a registered backend provides. load says
    so where torch would raise AttributeError; validate warns (the environment decides)."""
    import types

    from pt2serde.bridge import tables as bridge_tables
    from pt2serde.format import tables as wire_tables

    monkeypatch.setattr(bridge_tables, "_DEVICES", {})
    for t in ("hpu", "privateuseone"):
        with pytest.raises(SerializeError, match=rf"device type '{t}' without an index: loading needs the {t} backend"):
            bridge_tables.device_from_wire(schema.Device(type=t, index=None))
        assert wire_tables.unknown_device_type(schema.Device(type=t, index=None)).startswith(f"device type '{t}' without")
        assert bridge_tables.device_from_wire(schema.Device(type=t, index=0)) == torch.device(t, 0)
        assert wire_tables.unknown_device_type(schema.Device(type=t, index=0)) is None
    monkeypatch.setattr(torch, "hpu", types.SimpleNamespace(), raising=False)  # a registered backend's module
    assert bridge_tables.device_from_wire(schema.Device(type="hpu", index=None)) == torch.device("hpu")
    for indexless in ("cuda", "xpu", "mtia", "mps", "cpu"):  # torch has their modules or asks none
        assert wire_tables.unknown_device_type(schema.Device(type=indexless, index=None)) is None


@pytest.mark.parametrize("device, message", [
    ({"type": "cpu", "index": 200}, r"device index 200 is not in \[0, 127\]"),
    ({"type": "cpu:200", "index": None}, r"device type 'cpu:200' holds ':'"),
    ({"type": "cpu:0", "index": 0}, r"device type 'cpu:0' holds ':'"),
])
def test_device_literals_follow_the_tensor_device_rules(device, message):
    """A device argument (``torch.ones(..., device=...)``) obeys the rules of tensor devices:
    torch.device wraps an index past 127 (``cpu:200`` becomes ``cpu:-56``) wherever it is
    written. validate and load both refuse it, at the argument's path."""
    import json

    from artifacts import artifact_with
    from pt2serde.format.check import check_document

    class M(torch.nn.Module):
        def forward(self, x):
            return x + torch.ones(3, device="cpu")

    art = pt2serde.serialize(torch.export.export(M(), (torch.randn(3),)))
    pt2serde.deserialize(art)  # as written it loads

    def edit(doc):
        (node,) = [n for n in doc["graph_module"]["graph"]["nodes"] if n["target"] == "torch.ops.aten.ones.default"]
        (arg,) = [i["arg"] for i in node["inputs"] if "as_device" in i["arg"]]
        arg["as_device"] = device

    bad = artifact_with(art, edit)
    _, problems = check_document(json.loads(bad.exported_program))
    errors = [p for p in problems if p.level == "error"]
    assert errors and __import__("re").search(message, errors[0].message), problems
    assert ".as_device." in errors[0].where
    with pytest.raises(SerializeError, match=message):
        pt2serde.deserialize(bad)
