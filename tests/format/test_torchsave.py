"""``torch.save`` records read without pickle: compared with ``torch.load(weights_only=True)``.

The oracle is PyTorch's own restricted loader (tests only). Every value must come back
with the same types, dtypes, shapes, strides, storage offsets, requires_grad, Parameter-
ness, Python attributes, container order and the same storage aliasing. Hostile records
(the second half) must be refused with a ``SerializeError`` and run nothing.
"""

from __future__ import annotations

import collections
import glob
import io
import math
import os
import pickle
import random
import struct
import sys
import time
import warnings
import zipfile

import pytest
import torch
from torch._export.serde.serialize import serialize_torch_artifact

from compat import CORPUS
from pt2serde.format import codec
from pt2serde import schema
from pt2serde.bridge import tables
from pt2serde.errors import SerializeError
from pt2serde.bridge.torchsave import TORCH_SAVE_GLOBALS, load_torch_save



def saved(obj, protocol: int = 2) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_protocol=protocol)
    return buf.getvalue()


def oracle(data: bytes):
    return torch.load(io.BytesIO(data), weights_only=True)


def ours(data, **kw):
    return load_torch_save(data, what=kw.pop("what", "test.pt"), **kw)


# ----------------------------------------------------------------------- comparison


def _storage_bytes(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(0, dtype=torch.uint8).set_(t.untyped_storage())


def assert_same(a, b, path: str = "$") -> None:
    """Deep equality including tensor geometry, storage bytes, attributes and container order."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, torch.Tensor):
        assert (a.dtype, a.shape, a.stride(), a.storage_offset(), a.device) == \
            (b.dtype, b.shape, b.stride(), b.storage_offset(), b.device), path
        assert (a.requires_grad, a.is_conj(), a.is_neg()) == (b.requires_grad, b.is_conj(), b.is_neg()), path
        if a.device.type != "meta":
            assert a.untyped_storage().nbytes() == b.untyped_storage().nbytes(), path
            assert torch.equal(_storage_bytes(a), _storage_bytes(b)), f"{path}: storage bytes differ"
        assert_same(dict(vars(a)), dict(vars(b)), path + ".__dict__")
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
        if type(a) is not dict:
            assert_same(dict(vars(a)), dict(vars(b)), path + ".__dict__")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _tensors(obj, out: list) -> list:
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _tensors(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _tensors(v, out)
    return out


def aliasing(obj) -> list[int]:
    """For each tensor in traversal order, the index of the first tensor sharing its storage."""
    firsts: dict[int, int] = {}
    groups = []
    for i, t in enumerate(_tensors(obj, [])):
        ptr = t.untyped_storage().data_ptr() if t.device.type != "meta" else 0
        groups.append(firsts.setdefault(ptr, i) if ptr else -1)
    return groups


def assert_matches_oracle(data: bytes):
    mine, theirs = ours(data), oracle(data)
    assert_same(mine, theirs)
    assert aliasing(mine) == aliasing(theirs)
    return mine


# ----------------------------------------------------------------------- values

DTYPES = [
    torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.complex64, torch.complex128,
    torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.uint16, torch.uint32, torch.uint64,
    torch.bool, torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e8m0fnu,
]


def sample(dtype: torch.dtype, shape=(3, 4), seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype.is_complex:
        return torch.randn(shape, dtype=dtype, generator=g)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    if dtype.is_floating_point:
        return (torch.rand(shape, generator=g) * 4 + 0.25).to(dtype)
    return torch.randint(0, 100, shape, generator=g).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_dtype_and_geometry_matches_torch_load(dtype):
    base = sample(dtype, (4, 6))
    obj = {
        "plain": sample(dtype, (3, 4), seed=1),
        "base": base,
        "offset_view": base[1:, 2:5],  # shares storage, offset 8
        "transposed": base.t(),
        "row": base[2],
        "expanded": sample(dtype, (1, 3), seed=2).expand(4, 3),
        "scalar": sample(dtype, (), seed=3),
        "empty": torch.empty(0, 5, dtype=dtype),
        "empty_view": base[4:],
    }
    mine = assert_matches_oracle(saved(obj))
    assert mine["offset_view"].untyped_storage().data_ptr() == mine["base"].untyped_storage().data_ptr()
    assert mine["offset_view"].storage_offset() == 8


@pytest.mark.parametrize("protocol", [1, 2, 3, 4, 5])  # protocol 0 writes persistent ids as text: unreadable
def test_pickle_protocols(protocol):
    t = torch.arange(12.0).reshape(3, 4)
    obj = {"t": t, "v": t[1:], "p": torch.nn.Parameter(torch.ones(2)), "s": {1, 2}, "b": b"\x00\x01",
           "size": torch.Size([2, 3]), "dev": torch.device("cpu"), "dt": torch.float16, "u": "é"}
    mine = ours(saved(obj, protocol))
    theirs = oracle(saved(obj, 2))  # torch.load reads protocol 2 only reliably (no text opcodes)
    assert_same(mine, theirs)
    assert aliasing(mine) == aliasing(theirs) == [0, 0, 2]


def test_state_dicts_with_parameters_buffers_and_metadata():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    )
    sd = model.state_dict()
    mine = assert_matches_oracle(saved(sd))
    assert type(mine) is collections.OrderedDict and mine._metadata == sd._metadata
    assert mine["1.num_batches_tracked"].dtype == torch.int64
    kept = assert_matches_oracle(saved(model.state_dict(keep_vars=True)))
    assert type(kept["0.weight"]) is torch.nn.Parameter and kept["0.weight"].requires_grad
    frozen = torch.nn.Parameter(torch.tensor([1, 2], dtype=torch.int8), requires_grad=False)
    assert_matches_oracle(saved({"q": frozen, "f": torch.nn.Parameter(torch.ones(3), requires_grad=False)}))


def test_shared_storage_aliasing_and_in_place_writes():
    a = torch.arange(20.0)
    obj = [a, a[5:], a.view(4, 5), a.view(4, 5).t(), torch.arange(3), a[::2]]
    mine = assert_matches_oracle(saved(obj))
    assert aliasing(mine) == [0, 0, 0, 0, 4, 0]
    mine[0][6] = -1.0
    assert mine[1][1] == -1.0 and mine[2][1, 1] == -1.0


def test_example_input_tuples():
    x = torch.randn(2, 3)
    args = (x, 3, 2.5, None, "text", [1, 2.0, "s"], (x[0], True), {"k": x.t(), 7: None})
    kwargs = {"z": 3, "w": None, "nested": {"a": [torch.ones(1), {"b": torch.zeros(2, dtype=torch.int32)}]}}
    mine = assert_matches_oracle(saved((args, kwargs)))
    assert aliasing(mine)[:3] == [0, 0, 0]


def test_exported_example_inputs_as_the_archive_writer_pickles_them():
    class M(torch.nn.Module):
        def forward(self, x, y, *, scale=1.0):
            return (x + y) * scale

    ep = torch.export.export(M(), (torch.randn(2, 3), torch.randn(2, 3)), {"scale": 2.0})
    data = serialize_torch_artifact(ep.example_inputs)
    assert_matches_oracle(data)


def test_plain_python_values():
    obj = [1 + 2j, 2**80, -7, float("inf"), float("nan"), {3, 4}, frozenset({5}), b"", bytearray(b"ab"),
           collections.OrderedDict(b=1, a=2), collections.Counter("aab"), torch.device("cuda", 1),
           torch.Size([]), torch.bfloat16, torch.float8_e5m2, torch.uint64, slice(1, 5)]
    mine = ours(saved(obj))
    assert_same(mine[:4], obj[:4])
    assert math.isnan(mine[4]) and mine[5:] == obj[5:]


def test_tensor_attributes_and_parameter_state():
    t = torch.randn(3)
    t._dynamo_weak_dynamic_indices = {0}
    t.note = "hi"
    p = torch.nn.Parameter(torch.randn(2))
    p._is_sharded = True
    mine = assert_matches_oracle(saved({"t": t, "p": p}))
    assert mine["t"].note == "hi" and mine["p"]._is_sharded is True


def test_conj_neg_and_requires_grad():
    z, w = torch.randn(3, dtype=torch.complex64), torch.randn(3, dtype=torch.complex64)
    obj = {"conj": z.conj(), "neg": w.conj().imag, "grad": torch.randn(2, requires_grad=True)}
    mine = assert_matches_oracle(saved(obj))
    assert mine["conj"].is_conj() and mine["grad"].requires_grad


def test_meta_tensors():
    obj = {"m": torch.empty(3, 4, device="meta").t(), "g": torch.empty(2, device="meta", requires_grad=True)}
    mine = assert_matches_oracle(saved(obj))
    assert mine["m"].device.type == "meta"


def _fake_from_meta(meta: schema.TensorMeta) -> torch.Tensor:
    t = torch.empty_strided([s.as_int for s in meta.sizes], [s.as_int for s in meta.strides],
                            dtype=tables.dtype_from_wire(meta.dtype), device="meta")
    return t.requires_grad_(meta.requires_grad)


def test_fake_tensor_example_inputs():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, x, *, bias):
            return self.lin(x) + bias

    ep = torch.export.export(M(), (torch.randn(4, 3),), {"bias": torch.randn(2)})
    fakes = [n.meta["val"] for n in ep.graph.nodes if n.op == "placeholder"]
    from torch._subclasses.fake_tensor import FakeTensor

    assert all(isinstance(f, FakeTensor) for f in fakes)
    param = torch.nn.Parameter(fakes[0])
    data = serialize_torch_artifact(((fakes[2], fakes[0].t(), param), {"bias": fakes[3]}))
    seen: list[schema.TensorMeta] = []

    def callback(meta):
        seen.append(meta)
        return _fake_from_meta(meta)

    (x, w_t, p), kw = ours(data, fake_tensor=callback)
    assert [tuple(m.sizes[i].as_int for i in range(len(m.sizes))) for m in seen] == [(4, 3), (3, 2), (2, 3), (2,)]
    assert (x.shape, x.dtype, w_t.stride()) == ((4, 3), torch.float32, (1, 3))
    assert type(p) is torch.nn.Parameter and p.requires_grad and p.shape == (2, 3)
    assert seen[0] == codec.from_dict(schema.TensorMeta, codec.to_dict(seen[0]))
    with pytest.raises(SerializeError, match="a FakeTensor example input needs a fake_tensor callback"):
        ours(data)


def test_zero_copy_from_a_writable_buffer():
    data = bytearray(saved({"a": torch.arange(1000, dtype=torch.float32), "b": torch.ones(3)}))
    out = ours(data)
    base = memoryview(data)
    import ctypes

    start = ctypes.addressof(ctypes.c_char.from_buffer(data))
    ptr = out["a"].data_ptr()
    assert start <= ptr < start + len(data)
    out["a"][0] = 123.0
    assert struct.pack("<f", 123.0) in bytes(base)
    # a read-only source is copied once: writes never reach it
    ro = bytes(data)
    out = ours(ro)
    out["b"][0] = 5.0
    assert ro == bytes(data)


def _rebuild(data: bytes, *, pickle_bytes: bytes | None = None, records: dict[str, bytes] | None = None,
             drop: tuple[str, ...] = (), transform=None) -> bytes:
    """A copy of a torch.save zip with some records replaced, added, dropped or transformed."""
    src = zipfile.ZipFile(io.BytesIO(data))
    root = src.namelist()[0].split("/", 1)[0]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for name in src.namelist():
            rel = name.split("/", 1)[1]
            if rel in drop:
                continue
            body = src.read(name)
            if rel == "data.pkl" and pickle_bytes is not None:
                body = pickle_bytes
            if transform is not None:
                body = transform(rel, body)
            if records and rel in records:
                body = records.pop(rel)
            dst.writestr(name, body)
        for rel, body in (records or {}).items():
            dst.writestr(f"{root}/{rel}", body)
    return out.getvalue()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int16, torch.complex64, torch.bfloat16,
                                   torch.uint16, torch.uint32, torch.float8_e5m2, torch.bool], ids=str)
def test_big_endian_records_are_byte_swapped(dtype):
    t = sample(dtype, (3, 5), seed=4)
    obj = {"t": t, "v": t[1:, 1:]}
    little = saved(obj)
    swap_size = dtype.itemsize // (2 if dtype.is_complex else 1)

    def to_big(rel, body):
        if rel == "byteorder":
            return b"big"
        if rel.startswith("data/") and swap_size > 1:
            return b"".join(body[i:i + swap_size][::-1] for i in range(0, len(body), swap_size))
        return body

    big = _rebuild(little, transform=to_big)
    mine = ours(big)
    assert_same(mine, ours(little))
    assert aliasing(mine) == [0, 0]
    if dtype not in (torch.uint16, torch.uint32, torch.float8_e5m2):  # torch.load does not swap these
        assert_same(mine, oracle(big))


def test_storages_on_other_devices_are_loaded_on_cpu_with_a_warning():
    data = saved({"t": torch.arange(4.0)})
    pkl = zipfile.ZipFile(io.BytesIO(data)).read("archive/data.pkl")
    cpu = b"X\x03\x00\x00\x00cpu"
    assert pkl.count(cpu) == 1
    moved = _rebuild(data, pickle_bytes=pkl.replace(cpu, b"X\x06\x00\x00\x00cuda:0"))
    with pytest.warns(UserWarning, match="test.pt: storages saved on cuda:0 were loaded on the CPU"):
        out = ours(moved)
    assert out["t"].device.type == "cpu" and out["t"].tolist() == [0, 1, 2, 3]


# ----------------------------------------------------------------------- the corpus


def _corpus_members():
    for path in sorted(glob.glob(os.path.join(CORPUS, "*", "*.pt2"))):
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith(".pt"):
                    yield f"{os.path.basename(os.path.dirname(path))}/{os.path.basename(path)}:{name}", z.read(name)


def test_every_torch_save_record_of_the_compat_corpus():
    found = loaded = equal = 0
    torch_failed = []
    for label, data in _corpus_members():
        found += 1
        mine = ours(data, what=label)
        loaded += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = oracle(data)
        except Exception as e:  # noqa: BLE001 - torch cannot load it: nothing to compare
            torch_failed.append(f"{label}: {type(e).__name__}")
            continue
        assert_same(mine, theirs, label)
        assert aliasing(mine) == aliasing(theirs), label
        equal += 1
    print(f"compat corpus: {found} torch.save records, {loaded} loaded, {equal} equal to torch.load; "
          f"torch.load failed on {len(torch_failed)}")
    assert found >= 500 and loaded == found and equal + len(torch_failed) == found


# =========================================================================== hostile


class Call:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class Pid:
    """Pickled as a persistent id (what torch.save writes for storages)."""

    def __init__(self, *pid):
        self.pid = pid


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, Pid) else None


def dumps(obj, protocol: int = 2) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol).dump(obj)
    return buf.getvalue()


def record(obj, **records: bytes) -> bytes:
    """A torch.save-shaped zip holding ``obj`` pickled with the test pickler, and ``data/<k>`` records."""
    base = saved(None)
    return _rebuild(base, pickle_bytes=dumps(obj), records={f"data/{k}": v for k, v in records.items()})


V2 = torch._utils._rebuild_tensor_v2
HOOKS = collections.OrderedDict()


def float_tensor(size, stride, offset=0, numel=4, key="0", **kw):
    storage = Pid("storage", torch.FloatStorage, key, "cpu", numel)
    return Call(V2, storage, offset, size, stride, kw.get("requires_grad", False), kw.get("hooks", HOOKS))


FOUR_FLOATS = struct.pack("<4f", 1, 2, 3, 4)


def test_hand_built_record_loads():
    out = ours(record([float_tensor((2, 2), (2, 1)), float_tensor((3,), (1,), offset=1)], **{"0": FOUR_FLOATS}))
    assert out[0].tolist() == [[1, 2], [3, 4]] and out[1].tolist() == [2, 3, 4]


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "a payload ran"


def test_code_execution_payloads_are_refused(marker):
    cmd = f"touch {marker}"
    payloads = [
        Call(os.system, cmd),
        Call(eval, f"open({str(marker)!r}, 'w')"),
        Call(exec, f"open({str(marker)!r}, 'w')"),
        Call(torch.load, str(marker)),
        Call(torch._C._pickle_load_obj, b"x"),
        Call(torch.serialization._get_layout, "torch.strided"),
        {"state": Call(os.system, cmd)},
        float_tensor((1,), (1,), hooks=collections.OrderedDict(h=Call(os.system, cmd))),
    ]
    for payload in payloads:
        with pytest.raises(SerializeError, match=r"is not an allowed global at byte \d+ of archive/data.pkl in t"):
            ours(record(payload, **{"0": FOUR_FLOATS}), what="t")
    numpy_global = b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n)R."
    with pytest.raises(SerializeError, match="numpy.core.multiarray._reconstruct is not an allowed global"):
        ours(_rebuild(saved(None), pickle_bytes=numpy_global))


def test_every_allowed_global_is_ours():
    for (module, name), spec in TORCH_SAVE_GLOBALS.items():
        for fn in (spec.call, spec.new, spec.setstate):
            if fn is not None:
                assert fn.__module__.startswith("pt2serde."), (module, name)


HOSTILE = {
    "missing record": (
        lambda: record(float_tensor((2,), (1,), key="7"), **{"0": FOUR_FLOATS}),
        "storage '7' refers to record 'archive/data/7', which is missing",
    ),
    "storage smaller than the tensor": (
        lambda: record(float_tensor((3, 2), (2, 1)), **{"0": FOUR_FLOATS}),
        r"a torch.float32 tensor of size \[3, 2\], stride \[2, 1\] and storage offset 0 needs 24 bytes "
        "but storage '0' holds 16",
    ),
    "offset past the end": (
        lambda: record(float_tensor((2,), (1,), offset=3), **{"0": FOUR_FLOATS}),
        "needs 20 bytes but storage '0' holds 16",
    ),
    "negative stride": (
        lambda: record(float_tensor((2,), (-1,), offset=1), **{"0": FOUR_FLOATS}),
        r"stride must be an int in \[0, 2\*\*63\), got -1",
    ),
    "negative offset": (
        lambda: record(float_tensor((2,), (1,), offset=-1), **{"0": FOUR_FLOATS}),
        r"storage offset must be an int in \[0, 2\*\*63\), got -1",
    ),
    "overflowing size x stride": (
        lambda: record(float_tensor((2**40, 2**40), (2**40, 1)), **{"0": FOUR_FLOATS}),
        "needs 4835703278458516698824704 bytes but storage '0' holds 16",
    ),
    "offset x itemsize overflows int64": (
        lambda: record(float_tensor((1,), (1,), offset=2**62), **{"0": FOUR_FLOATS}),
        "needs 18446744073709551620 bytes",
    ),
    "size past int64": (
        lambda: record(float_tensor((2**63,), (1,)), **{"0": FOUR_FLOATS}),
        r"size must be an int in \[0, 2\*\*63\)",
    ),
    "empty tensor far past the storage": (
        lambda: record(float_tensor((0, 2**50), (2**50, 1), offset=2**40), **{"0": FOUR_FLOATS}),
        "needs 4398046511104 bytes",
    ),
    "too many dimensions": (
        lambda: record(float_tensor((1,) * 65, (1,) * 65), **{"0": FOUR_FLOATS}),
        "size has 65 dimensions, over the limit of 64",
    ),
    "record size disagrees with numel": (
        lambda: record(float_tensor((2,), (1,), numel=8), **{"0": FOUR_FLOATS}),
        r"record 'archive/data/0' holds 16 bytes but its persistent id declares 8 x torch.float32 = 32 bytes",
    ),
    "persistent id of another kind": (
        lambda: record(Pid("module", "os", "system"), **{"0": FOUR_FLOATS}),
        r"persistent id \('module', 'os', 'system'\) is not \('storage', type, key, location, numel\)",
    ),
    "persistent id with a path key": (
        lambda: record(Call(V2, Pid("storage", torch.FloatStorage, "../byteorder", "cpu", 1), 0, (1,), (1,),
                            False, HOOKS)),
        "storage key '../byteorder' is invalid",
    ),
    "persistent id without a storage type": (
        lambda: record(Pid("storage", "FloatStorage", "0", "cpu", 4), **{"0": FOUR_FLOATS}),
        "persistent id names 'FloatStorage', not a storage type",
    ),
    "one key, two dtypes": (
        lambda: record([float_tensor((1,), (1,)),
                        Call(V2, Pid("storage", torch.IntStorage, "0", "cpu", 4), 0, (1,), (1,), False, HOOKS)],
                       **{"0": FOUR_FLOATS}),
        "storage '0' is named as both torch.float32 and torch.int32",
    ),
    "bare storage as the result": (
        lambda: record({"s": Pid("storage", torch.FloatStorage, "0", "cpu", 4)}, **{"0": FOUR_FLOATS}),
        r"storage '0' \(a bare storage, not a tensor\) cannot be part of the result",
    ),
    "non-empty backward hooks": (
        lambda: record(float_tensor((1,), (1,), hooks=collections.OrderedDict(h=1)), **{"0": FOUR_FLOATS}),
        "backward hooks must be an empty dict",
    ),
    "storage location that is not a device": (
        lambda: record(Call(V2, Pid("storage", torch.FloatStorage, "0", "evil", 4), 0, (1,), (1,), False, HOOKS),
                       **{"0": FOUR_FLOATS}),
        "storage location 'evil' is not a device",
    ),
    "integer tensor requiring grad": (
        lambda: record(Call(V2, Pid("storage", torch.IntStorage, "0", "cpu", 4), 0, (1,), (1,), True, HOOKS),
                       **{"0": FOUR_FLOATS}),
        r"a torch\.int32 tensor cannot require gradients \(requires_grad is true\)",  # torch's requires_grad_ would raise
    ),
    "tensor state replacing .data": (
        lambda: record(Call(torch._tensor._rebuild_from_type_v2, V2, torch.Tensor,
                            (Pid("storage", torch.FloatStorage, "0", "cpu", 4), 0, (4,), (1,), False, HOOKS),
                            {"data": 1}), **{"0": FOUR_FLOATS}),
        "tensor state may not set attribute 'data'",
    ),
    "tensor state setting __class__": (
        lambda: record(Call(torch._utils._rebuild_parameter_with_state, float_tensor((4,), (1,)), True, HOOKS,
                            {"__class__": 1}), **{"0": FOUR_FLOATS}),
        "tensor state may not set attribute '__class__'",
    ),
    "rebuild_from_type_v2 calling a non-tensor builder": (
        lambda: record(Call(torch._tensor._rebuild_from_type_v2, set, torch.Tensor, ([1],), {})),
        "_rebuild_from_type_v2 needs a tensor rebuild function, got global builtins.set",
    ),
    "tensor metadata other than conj/neg": (
        lambda: record(Call(V2, Pid("storage", torch.FloatStorage, "0", "cpu", 4), 0, (1,), (1,), False, HOOKS,
                            {"evil": True}), **{"0": FOUR_FLOATS}),
        "tensor metadata may only hold bool 'conj'/'neg'",
    ),
    "quantized tensor": (
        lambda: saved(torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.quint8)),
        "GLOBAL torch.QUInt8Storage is not an allowed global",
    ),
    "sparse tensor": (
        lambda: saved(torch.ones(2, 2).to_sparse()),
        "GLOBAL torch.serialization._get_layout is not an allowed global",
    ),
    "fake tensor with bad metadata": (
        lambda: record(Call(__import__("torch._export.serde.serialize", fromlist=["x"])._reconstruct_fake_tensor,
                            b'{"dtype": 7', False)),
        "fake tensor metadata is not valid JSON",
    ),
}


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_records_are_refused(case, marker):
    make, message = HOSTILE[case]
    data = make()
    kw = {"fake_tensor": _fake_from_meta} if case.startswith("fake") else {}
    with pytest.raises(SerializeError, match=message) as info:
        ours(data, what="m.pt", **kw)
    assert "m.pt" in str(info.value)


def test_error_message_names_builder_offset_and_record():
    data = record(float_tensor((3, 2), (2, 1)), **{"0": FOUR_FLOATS})
    with pytest.raises(SerializeError) as info:
        ours(data, what="data/sample_inputs/model.pt")
    assert str(info.value) == (
        "torch._utils._rebuild_tensor_v2: a torch.float32 tensor of size [3, 2], stride [2, 1] and storage offset 0 "
        "needs 24 bytes but storage '0' holds 16 at byte 150 of archive/data.pkl in data/sample_inputs/model.pt"
    )


def test_broken_containers_are_refused():
    good = saved({"t": torch.arange(4.0)})
    cases = {
        b"not a zip at all": "test.pt: not a zip archive",
        good[: len(good) // 2]: "test.pt: not a zip archive",
        b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19" + b"\0" * 64: "legacy .pre-zip. torch.save format",
        _rebuild(good, records={"byteorder": b"middle"}): "byteorder record holds b'middle'",
        _rebuild(good, drop=("data.pkl",)): "record 'archive/data.pkl' is missing",
        _rebuild(good, drop=("data/0",)): "storage '0' refers to record 'archive/data/0', which is missing",
    }
    for data, message in cases.items():
        with pytest.raises(SerializeError, match=message):
            ours(data)


def test_truncated_and_bit_flipped_records_never_escape(marker):
    data = saved({"w": torch.randn(3, 2), "v": torch.arange(5), "p": torch.nn.Parameter(torch.ones(2)),
                  "x": [1, "a", {"k": (2.5, None)}]})
    pkl_at = data.find(b"\x80\x02")
    rng = random.Random(7)
    outcomes = collections.Counter()
    for _ in range(600):
        mutated = bytearray(data)
        # mostly inside data.pkl, sometimes anywhere in the zip
        i = rng.randrange(pkl_at, pkl_at + 300) if rng.random() < 0.8 else rng.randrange(len(data))
        mutated[i] ^= 1 << rng.randrange(8)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a flipped location may name another device
                ours(bytes(mutated))
            outcomes["loaded"] += 1
        except SerializeError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0
    for end in range(0, len(data), 7):
        with pytest.raises(SerializeError):
            ours(data[:end])


# --------------------------------------------------------------- one rule for both readers: DAGs, namedtuples


def _dag_pickle(depth: int, tail: bytes) -> bytes:
    """``T(i) = (T(i-1), T(i-1))`` through the memo, then ``tail`` (``h<depth>`` fetches the top)."""
    out = b"\x80\x02)q\x000"
    for i in range(depth):
        out += b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86q" + bytes([i + 1]) + b"0"
    return out + tail


#: ((), {T(64): 1}) and ((T(64),), {}): 2**64 objects to hash / to flatten, in about 530 bytes
DAG_RECORDS = {
    "DAG as a dict key": (b")}h\x40K\x01s\x86.", r"a dict key \(tuple\) expands to more than 64 objects"),
    "DAG as an input": (b"h\x40\x85}\x86.", r"the result expands to more than 65536 objects"),
}


def _walk(data: bytes, what: str):
    from pt2serde.format.torchsave import describe_torch_save

    return describe_torch_save(memoryview(data), what).value


@pytest.mark.parametrize("case", list(DAG_RECORDS))
def test_pickle_dags_are_refused_by_both_readers(case):
    """The bridge reader (``load``) and the torch-free walker (the CLI) refuse the same record
    with the same message, in microseconds (before: a hang, 2**64 hash steps)."""
    tail, message = DAG_RECORDS[case]
    data = _rebuild(saved(None), pickle_bytes=_dag_pickle(64, tail))
    for read in (lambda: ours(data, what="m.pt"), lambda: _walk(data, "m.pt")):
        start = time.process_time()  # CPU time: the work, not a busy machine
        with pytest.raises(SerializeError, match=message + r".* at byte \d+ of archive/data\.pkl in m\.pt"):
            read()
        assert time.process_time() - start < 0.5
    small = _rebuild(saved(None), pickle_bytes=_dag_pickle(5, tail.replace(b"h\x40", b"h\x05")))
    assert ours(small) is not None and _walk(small, "m.pt") is not None


_SPAWNS: list[str] = []
sys.addaudithook(lambda event, args: _SPAWNS.append(event) if event in (
    "subprocess.Popen", "os.posix_spawn", "os.exec", "os.system", "os.fork") else None)


def test_imported_tuple_classes_with_their_own_dunders_are_refused_and_spawn_nothing():
    """``platform.uname_result`` has ``_fields`` and an ``__iter__`` that runs ``uname -p``."""
    import platform  # noqa: F401

    pkl = (b"\x80\x02cplatform\nuname_result\n(" + b"".join(b"X\x01\x00\x00\x00" + c for c in (b"a", b"b", b"c", b"d",
                                                                                            b"e", b"f"))
           + b"tR\x85}\x86.")
    data = _rebuild(saved(None), pickle_bytes=pkl)
    _SPAWNS.clear()
    for read in (lambda: ours(data, what="m.pt"), lambda: _walk(data, "m.pt")):
        with pytest.raises(SerializeError, match=r"platform\.uname_result has its own __iter__: only plain"):
            read()
    assert _SPAWNS == []


Point = collections.namedtuple("Point", "x y")


def test_plain_namedtuples_are_read_by_both_readers():
    data = saved(((Point(torch.ones(2), 3),), {}))
    (got,), _ = ours(data)
    assert type(got) is Point and torch.equal(got.x, torch.ones(2)) and got.y == 3
    (walked,), _ = _walk(data, "m.pt")
    assert type(walked) is Point and walked.y == 3


#: views the shared extent rule (pt2serde.format.extent.view_problem) refuses in torch.save records too
EXTENT_RECORDS = {
    "expanded tensor standing for 128 MiB": (
        lambda: record(float_tensor((2**25,), (0,)), **{"0": FOUR_FLOATS}),
        r"a float32 tensor: sizes \[33554432\] and strides \[0\] overlap in storage: 4 stored bytes stand "
        r"for 134217728 bytes of tensor, over the limit of 67108864",
    ),
    "meta tensor reaching past 2**63": (
        lambda: record(Call(torch._utils._rebuild_meta_tensor_no_storage, torch.float32, (2, 2), (2**62, 1), False)),
        r"a float32 tensor: sizes \[2, 2\], strides \[4611686018427387904, 1\] and storage offset 0 reach "
        r"byte \d+, past 2\*\*63",
    ),
}


@pytest.mark.parametrize("case", list(EXTENT_RECORDS))
def test_the_extent_rule_holds_for_torch_save_records_in_both_readers(case):
    """Legacy (2.5-2.8) weights go through the same view rule as PT2 records: the bridge reader
    (load) and the torch-free walker (validate, inspect) refuse the same views."""
    make, message = EXTENT_RECORDS[case]
    data = make()
    for read in (lambda: ours(data, what="m.pt"), lambda: _walk(data, "m.pt")):
        with pytest.raises(SerializeError, match=message):
            read()


def test_the_same_tensor_as_a_key_of_two_dicts():
    """Keys are counted for chosen hash collisions (pickle_machine.MAX_SAME_HASH); a tensor key,
    hashed by identity, is the same key by identity, never compared elementwise (which raised)."""
    t = torch.ones(3)
    buf = io.BytesIO()
    torch.save([{t: 1}, {t: 2}, {(t, 1): 3}, {(t, 1): 4}], buf)
    first, second, third, fourth = load_torch_save(buf.getvalue(), what="rec")
    (k1,), (k2,) = first, second
    assert k1 is k2 and torch.equal(k1, t) and first[k1] == 1 and second[k2] == 2
    assert list(third.values()) == [3] and list(fourth.values()) == [4]
