"""PT2 archives: ``pt2serde.save`` / ``load`` / ``load_all`` against PyTorch's own archive code.

The oracle is ``torch.export.save`` / ``torch.export.load`` of PyTorch 2.13: every corpus
program saved by pt2serde loads in PyTorch with the original's outputs, and every archive
PyTorch writes loads in pt2serde. Around that: the layout promises (stored, 64-byte aligned,
zip64, deterministic), where tensors live after a load (views of a copy-on-write mapping),
what is kept (categories, requires_grad, fake tensors; aliasing, dtypes and empty tensors in
``test_tensors.py``, node metadata in ``test_metadata.py``), how
sources and targets are handled (paths, file objects, buffers, several programs, extra
files) and that a failed save leaves the old file alone.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import struct
import warnings
import zipfile
from unittest import mock

import pytest
import torch

import pt2serde
from artifacts import config, record_names, saved, torch_loaded, torch_saved
from checks import outputs_close, program_inputs, run
from memory import PeakGrowth
from programs import CORPUS, corpus_ids, exported
from pt2serde.format import archive_write as archive_write_mod
from pt2serde.bridge import package as package_mod
from pt2serde.bridge import samples as samples_mod
from pt2serde import schema
from pt2serde.format.archive import ArchiveReader
from pt2serde.format.archive_write import ArchiveWriter

# ============================================================================ helpers


def rewrite(data: bytes, replace: dict[str, bytes] | None = None, drop: tuple[str, ...] = ()) -> bytes:
    """The archive with some records replaced or dropped (names relative to the root folder)."""
    reader = ArchiveReader(data)
    root = reader.root_folder()
    replace = {f"{root}/{k}": v for k, v in (replace or {}).items()}
    out = io.BytesIO()
    with ArchiveWriter(out) as writer:
        for name in reader.names():
            if name[len(root) + 1:] in drop:
                continue
            writer.add(name, replace.get(name, reader.view(name)))
    return out.getvalue()


class _Categories(torch.nn.Module):
    """One of each kind of state: trainable and frozen parameters, persistent and
    non-persistent buffers, a plain tensor attribute (a constant), and a constant and a
    buffer that view the parameter's storage."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.arange(12.0).reshape(3, 4))
        self.frozen = torch.nn.Parameter(torch.full((4,), 0.5), requires_grad=False)
        self.register_buffer("buf", torch.tensor([1.0, 2.0, 3.0, 4.0]))
        self.register_buffer("scratch", torch.tensor([10.0, 20.0, 30.0, 40.0]), persistent=False)
        self.const = torch.tensor([7.0, 8.0, 9.0, 10.0])
        self.row = self.w.detach()[1]  # a constant viewing the parameter (offset 4)
        self.register_buffer("wt", self.w.detach().t())  # a buffer viewing it, transposed

    def forward(self, x):
        y = x @ self.w.t() + self.frozen.sum() + self.buf.sum()
        return y + self.scratch.sum() + self.const.sum() + self.row.sum() + self.wt.sum()


EXAMPLE = torch.arange(8.0).reshape(2, 4) / 8


@pytest.fixture(scope="module")
def categories():
    return torch.export.export(_Categories(), (EXAMPLE.clone(),))


def _inputs_of(name):
    args, kwargs = program_inputs(name)
    return args, kwargs


def outputs_of(ep, name):
    """What a program computes on its example inputs: ``module()``, or for programs whose
    ``module()`` cannot be compared (joint graphs, rational bounds) the graph itself."""
    if CORPUS[name].compare_outputs:
        return run(ep, name)
    args, kwargs = _inputs_of(name)
    # rational_range: the runtime check of module() refuses the program's own rational bounds
    with torch.no_grad(), mock.patch.object(type(ep), "_check_input_constraints", lambda *a: None):
        return ep.graph_module(*ep._graph_module_flat_inputs(args, kwargs))


def same_outputs(name, a, b):
    outputs_close(a, b, **CORPUS[name].extra.get("tolerance", {}))


# ============================================================ interop over the corpus

# Programs whose archive one side cannot handle, with the reason. Each exclusion is
# checked below to still be real, so none outlives the limitation it works around.
TORCH_CANNOT_SAVE = {name: CORPUS[name].oracle_unsupported for name, _ in corpus_ids(("export",), oracle=False)}
TORCH_CANNOT_LOAD = {
    "symbool_user_output": "PyTorch 2.13's loader cannot rebuild a SymBool user output (KeyError 'eq')",
    "custom_scalar_returns": "PyTorch 2.13's loader has no getitem for a SymBool node output "
                             "(NotImplementedError: Unimplemented node output type as_sym_bool)",
}
# Programs whose constants hold a torchbind object: PyTorch stores it pickled by TorchScript
# (data/constants/custom_obj_0), which pt2serde reads with its safe torchbind reader, by default.
TORCHBIND = {name for name, p in CORPUS.items() if "custom_obj" in p.features}

EXPORT_IDS = [name for name, _ in corpus_ids(("export",))]


def _load_ours(data, name):
    return pt2serde.load(io.BytesIO(data))


def test_exclusions_name_corpus_programs():
    assert set(TORCH_CANNOT_LOAD) <= set(EXPORT_IDS)
    assert set(TORCH_CANNOT_SAVE) <= set(EXPORT_IDS)
    assert TORCHBIND and TORCHBIND <= set(EXPORT_IDS)
    assert len(EXPORT_IDS) >= 100  # the whole corpus, ExportDB included


@pytest.mark.parametrize("name", EXPORT_IDS)
def test_pt2serde_archive_loads_in_pytorch_and_pt2serde(name):
    ep = exported(name, "export")
    data = saved(ep)  # before running it: programs that mutate their state change it
    expected = outputs_of(ep, name)
    same_outputs(name, expected, outputs_of(_load_ours(data, name), name))
    if name in TORCH_CANNOT_LOAD:
        return  # see test_pytorch_really_cannot_load_these
    same_outputs(name, expected, outputs_of(torch_loaded(data), name))


@pytest.mark.parametrize("name", [n for n in EXPORT_IDS if n not in TORCH_CANNOT_SAVE])
def test_pytorch_archive_loads_in_pt2serde(name):
    ep = exported(name, "export")
    data = torch_saved(ep)
    same_outputs(name, outputs_of(ep, name), outputs_of(_load_ours(data, name), name))


@pytest.mark.parametrize("name", sorted(TORCH_CANNOT_LOAD))
def test_pytorch_really_cannot_load_these(name):
    ep = exported(name, "export")
    pytorch_archive = None if name in TORCH_CANNOT_SAVE else torch_saved(ep)
    for data in filter(None, (saved(ep), pytorch_archive)):
        with pytest.raises(Exception):
            torch_loaded(data)


@pytest.mark.parametrize("name", sorted(TORCH_CANNOT_SAVE))
def test_pytorch_really_cannot_save_these(name):
    with pytest.raises(Exception):
        torch_saved(exported(name, "export"))


@pytest.mark.torchbind_test_lib  # needs libtorchbind_test.so (tests/conftest.py)
def test_torchbind_constants_load_by_default():
    """A torchbind constant loads without allow_pickle (the safe torchbind reader), with the
    state PyTorch's own loader gives it, from our archive and from PyTorch's."""
    for name in sorted(TORCHBIND):
        ep = exported(name, "export")
        for data in (saved(ep), torch_saved(ep)):
            ours, theirs = pt2serde.load(io.BytesIO(data)).constants, torch_loaded(data).constants
            objects = [k for k, v in theirs.items() if isinstance(v, torch.ScriptObject)]
            assert objects, name
            for k in objects:
                assert isinstance(ours[k], torch.ScriptObject), (name, k)
                assert ours[k].__getstate__() == theirs[k].__getstate__(), (name, k)


def test_pytorch_and_pt2serde_write_the_same_records(categories):
    """Same record names in the same order (PyTorch's serialization id included), the same
    payload configs in PyTorch's order apart from pt2serde's extra aliasing key, and every
    other record the same bytes; the id follows the constants config, so it differs too.
    (tests/bridge/test_dropin.py compares whole archives byte for byte.)"""
    ours, theirs = saved(categories), torch_saved(categories)
    assert record_names(ours) == record_names(theirs)
    assert record_names(ours)[-1] == "archive/.data/serialization_id"
    assert config(ours, "data/weights/model_weights_config.json") == \
        config(theirs, "data/weights/model_weights_config.json")
    mine = config(ours, "data/constants/model_constants_config.json")
    for entry in mine["config"].values():
        entry.pop(package_mod.SHARES_KEY, None)
    pytorch = config(theirs, "data/constants/model_constants_config.json")
    assert list(mine["config"].items()) == list(pytorch["config"].items())
    with zipfile.ZipFile(io.BytesIO(ours)) as a, zipfile.ZipFile(io.BytesIO(theirs)) as b:
        for n in a.namelist():
            if n.endswith(("_constants_config.json", "serialization_id")):
                continue  # compared above / follows the constants config
            assert a.read(n) == b.read(n), n


# ===================================================================== sources, targets


def test_save_and_load_with_a_path_string(categories, tmp_path):
    path = str(tmp_path / "my_model.pt2")
    pt2serde.save(categories, path)
    with zipfile.ZipFile(path) as z:
        assert {n.split("/")[0] for n in z.namelist()} == {"my_model"}  # root folder from the file name
    x = torch.randn(2, 4)
    torch.testing.assert_close(pt2serde.load(path).module()(x), categories.module()(x))
    torch.testing.assert_close(torch.export.load(path).module()(x), categories.module()(x))


def test_save_and_load_with_a_pathlib_path(categories, tmp_path):
    path = tmp_path / "model.pt2"
    pt2serde.save(categories, path)
    x = torch.randn(2, 4)
    torch.testing.assert_close(pt2serde.load(path).module()(x), categories.module()(x))
    torch.testing.assert_close(pt2serde.load_all(path)["model"].module()(x), categories.module()(x))


def test_bytesio_loads_right_after_save_without_seek(categories):
    buf = io.BytesIO()
    pt2serde.save(categories, buf)
    x = torch.randn(2, 4)
    torch.testing.assert_close(pt2serde.load(buf).module()(x), categories.module()(x))
    buf.seek(0, io.SEEK_END)  # wherever the position is, the archive is read from its start
    torch.testing.assert_close(pt2serde.load(buf).module()(x), categories.module()(x))
    buf.seek(0)
    torch.testing.assert_close(torch.export.load(buf).module()(x), categories.module()(x))


def test_bytesio_loads_do_not_alias_the_buffer_or_each_other(categories):
    buf = io.BytesIO(saved(categories))
    before = buf.getvalue()
    a, b = pt2serde.load(buf), pt2serde.load(buf)
    with torch.no_grad():
        a.state_dict["w"].add_(100)
    assert buf.getvalue() == before
    assert torch.equal(b.state_dict["w"], categories.state_dict["w"])
    buf.seek(0, io.SEEK_END)
    buf.write(b"the caller's buffer can still grow")


def test_save_to_an_open_file_and_load_from_one(categories, tmp_path):
    path = tmp_path / "f.pt2"
    with open(path, "wb") as f:
        pt2serde.save(categories, f)
    with open(path, "rb") as f:
        f.seek(17)  # read from the beginning regardless
        loaded = pt2serde.load(f)
    x = torch.randn(2, 4)
    torch.testing.assert_close(loaded.module()(x), categories.module()(x))


class CountingFile:
    """A binary file object that counts what is read from it (optionally without fileno)."""

    def __init__(self, f, fileno: bool) -> None:
        self._f = f
        self._fileno = fileno
        self.reads = 0
        self.bytes_read = 0
        self.seeks = 0

    def read(self, n=-1):
        data = self._f.read(n)
        self.reads += 1
        self.bytes_read += len(data)
        return data

    def seek(self, pos, whence=0):
        self.seeks += 1
        return self._f.seek(pos, whence)

    def tell(self):
        return self._f.tell()

    def fileno(self):
        if not self._fileno:
            raise io.UnsupportedOperation("fileno")
        return self._f.fileno()


def _mappings_of(path) -> list[tuple[int, int]]:
    real = os.path.realpath(path)
    spans = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].strip() == real:
                lo, hi = (int(v, 16) for v in parts[0].split("-"))
                spans.append((lo, hi))
    return spans


def _inside(t: torch.Tensor, spans) -> bool:
    ptr = t.untyped_storage().data_ptr()
    return any(lo <= ptr and ptr + t.untyped_storage().nbytes() <= hi for lo, hi in spans)


def test_real_file_object_is_mapped_not_read(categories, tmp_path):
    path = tmp_path / "m.pt2"
    pt2serde.save(categories, path)
    with open(path, "rb") as raw:
        f = CountingFile(raw, fileno=True)
        loaded = pt2serde.load(f)
        assert f.bytes_read == 0  # mapped: nothing copied through read()
        spans = _mappings_of(path)
        assert spans and all(_inside(t, spans) for t in loaded.state_dict.values())
    x = torch.randn(2, 4)
    torch.testing.assert_close(loaded.module()(x), categories.module()(x))


def test_stream_without_fileno_is_read_exactly_once(categories, tmp_path):
    data = saved(categories)
    f = CountingFile(io.BytesIO(data), fileno=False)
    loaded = pt2serde.load(f)
    assert f.bytes_read == len(data)  # every byte once, no second pass
    assert f.seeks <= 1
    x = torch.randn(2, 4)
    torch.testing.assert_close(loaded.module()(x), categories.module()(x))


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_load_from_a_bytes_like_object(categories, kind):
    data = kind(bytearray(saved(categories)))
    before = bytes(data)
    loaded = pt2serde.load(data)
    with torch.no_grad():
        loaded.state_dict["w"].zero_()  # a private copy: the caller's buffer never changes
    assert bytes(data) == before
    assert torch.equal(pt2serde.load(data).state_dict["w"], categories.state_dict["w"])


# ========================================================================== extra files


def test_extra_files_str_and_bytes_and_every_one_is_returned(categories):
    data = saved(categories, extra_files={"notes.txt": "moo ☃", "blob.bin": b"\x00\xffraw", "a/b.json": "{}"})
    got = {"notes.txt": ""}  # asking for one key fills in every stored extra file
    pt2serde.load(io.BytesIO(data), extra_files=got)
    assert got == {"notes.txt": "moo ☃", "blob.bin": b"\x00\xffraw", "a/b.json": "{}"}
    got_all = {}
    pt2serde.load_all(io.BytesIO(data), extra_files=got_all)
    assert got_all == got
    theirs = {"notes.txt": ""}
    torch_loaded(rewrite(data, drop=("extra/blob.bin",)), extra_files=theirs)
    assert theirs == {"notes.txt": "moo ☃", "a/b.json": "{}"}


def test_extra_files_written_by_pytorch(categories):
    got = {}
    pt2serde.load(io.BytesIO(torch_saved(categories, extra_files={"extra.txt": "moo"})), extra_files=got)
    assert got == {"extra.txt": "moo"}


def test_extra_file_names_are_checked_on_save(categories):
    with pytest.raises(pt2serde.SerializeError, match=r"^invalid record name '\.\./x': empty, '\.' or '\.\.' path segment$"):
        saved(categories, extra_files={"../x": "no"})


# ===================================================================== several programs


class _Enc(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(x).relu()


class _Dec(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 4)
        self.register_buffer("bias2", torch.ones(4))

    def forward(self, z):
        return self.lin(z) + self.bias2


def test_several_programs_in_one_archive():
    enc = torch.export.export(_Enc(), (torch.randn(2, 4),))
    dec = torch.export.export(_Dec(), (torch.randn(2, 3),))
    data = saved({"encoder": enc, "decoder": dec})
    names = record_names(data)
    # record indexes continue across programs, so nothing collides
    assert [n for n in names if "/weight_" in n] == [f"archive/data/weights/weight_{i}" for i in range(5)]
    got = pt2serde.load_all(io.BytesIO(data))
    assert sorted(got) == ["decoder", "encoder"]
    x, z = torch.randn(2, 4), torch.randn(2, 3)
    torch.testing.assert_close(got["encoder"].module()(x), enc.module()(x))
    torch.testing.assert_close(pt2serde.load(io.BytesIO(data), name="decoder").module()(z), dec.module()(z))
    from torch.export.pt2_archive._package import load_pt2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = load_pt2(io.BytesIO(data)).exported_programs
    torch.testing.assert_close(theirs["decoder"].module()(z), dec.module()(z))
    with pytest.raises(pt2serde.SerializeError,
                       match=r"^program 'model' is not in the archive; it holds \['decoder', 'encoder'\]$"):
        pt2serde.load(io.BytesIO(data))


def test_program_names_are_checked_on_save(categories):
    for bad in ("", "a/b", ".."):
        with pytest.raises(pt2serde.SerializeError, match="invalid program name"):
            saved({bad: categories})


# ========================================================================= layout


def _walk_local_headers(data: bytes):
    """(name, data offset, extra field) of each record, walking the central directory."""
    eocd = data.rfind(b"PK\x05\x06")
    count, _, cd_offset = struct.unpack_from("<HII", data, eocd + 10)
    at = cd_offset
    out = []
    for _ in range(count):
        (method, name_len, extra_len, comment_len, header_offset) = (
            struct.unpack_from("<H", data, at + 10)[0],
            *struct.unpack_from("<HHH", data, at + 28),
            struct.unpack_from("<I", data, at + 42)[0],
        )
        name = data[at + 46:at + 46 + name_len].decode()
        lname_len, lextra_len = struct.unpack_from("<HH", data, header_offset + 26)
        extra = data[header_offset + 30 + lname_len:header_offset + 30 + lname_len + lextra_len]
        out.append((name, method, header_offset + 30 + lname_len + lextra_len, extra))
        at += 46 + name_len + extra_len + comment_len
    return out


def test_records_are_stored_and_64_byte_aligned_with_zip64_end_records(categories):
    data = saved(categories, extra_files={"odd name length.txt": "x"})
    records = _walk_local_headers(data)
    assert len(records) == len(record_names(data))
    for name, method, data_offset, extra in records:
        assert method == 0, name
        assert data_offset % 64 == 0, name
        assert extra[:2] in (b"FB", b""), name  # padding lives in PyTorch's FB extra field
    assert data.rfind(b"PK\x06\x06") > 0 and data.rfind(b"PK\x06\x07") > 0  # zip64 EOCD + locator
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None  # CRCs and sizes agree with the data
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())


def test_same_program_same_bytes(categories, tmp_path):
    first = saved(categories)
    assert saved(categories) == first
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pt2serde.save(categories, tmp_path / "a" / "m.pt2")
    pt2serde.save(categories, tmp_path / "b" / "m.pt2")
    assert (tmp_path / "a" / "m.pt2").read_bytes() == (tmp_path / "b" / "m.pt2").read_bytes()
    again = torch.export.export(_Categories(), (EXAMPLE.clone(),))
    assert saved(again) == first  # a fresh export of the same module: the same archive


def test_saved_file_gets_the_usual_permissions(categories, tmp_path):
    path = tmp_path / "m.pt2"
    pt2serde.save(categories, path)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


# ========================================================================== tensors
# (storages, views, empty tensors and dtypes: tests/bridge/test_tensors.py)


def test_parameter_and_constant_that_views_it_stay_linked(categories):
    data = saved(categories)
    consts = config(data, "data/constants/model_constants_config.json")["config"]
    assert consts["row"][package_mod.SHARES_KEY] == "data/weights/weight_0"
    assert consts["row"]["tensor_meta"]["storage_offset"] == {"as_int": 4}
    loaded = pt2serde.load(io.BytesIO(data))
    w, row, wt = loaded.state_dict["w"], loaded.constants["row"], loaded.state_dict["wt"]
    with torch.no_grad():
        w[1, 2] = -5.0  # write through the parameter...
    assert row[2].item() == -5.0 and wt[2, 1].item() == -5.0  # ...read through the constant and buffer
    row[0] = 42.0  # and the other way round
    assert w[1, 0].item() == 42.0
    # PyTorch ignores the extra key and loads its own (unlinked) copy
    theirs = torch_loaded(data)
    assert torch.equal(theirs.constants["row"], categories.constants["row"])
    # archives written by PyTorch have no link: the constant is its own storage
    plain = pt2serde.load(io.BytesIO(torch_saved(categories)))
    assert plain.constants["row"].untyped_storage().data_ptr() != plain.state_dict["w"].untyped_storage().data_ptr()
    assert torch.equal(plain.constants["row"], categories.constants["row"])


def test_categories_and_requires_grad_are_kept(categories):
    for data in (saved(categories), torch_saved(categories)):
        loaded = pt2serde.load(io.BytesIO(data))
        sd, consts = loaded.state_dict, loaded.constants
        assert sorted(sd) == ["buf", "frozen", "w", "wt"]
        assert sorted(consts) == ["const", "row", "scratch"]
        assert type(sd["w"]) is torch.nn.Parameter and sd["w"].requires_grad
        assert type(sd["frozen"]) is torch.nn.Parameter and not sd["frozen"].requires_grad
        for name in ("buf", "wt"):
            assert type(sd[name]) is torch.Tensor and not sd[name].requires_grad
        for name in consts:
            assert type(consts[name]) is torch.Tensor and not consts[name].requires_grad
        kinds = {s.target: (s.kind.name, s.persistent) for s in loaded.graph_signature.input_specs if s.target}
        assert kinds == {
            "w": ("PARAMETER", None), "frozen": ("PARAMETER", None), "buf": ("BUFFER", True),
            "wt": ("BUFFER", True), "scratch": ("BUFFER", False), "const": ("CONSTANT_TENSOR", None),
            "row": ("CONSTANT_TENSOR", None),
        }
        for name, t in {**categories.state_dict, **categories.constants}.items():
            got = {**sd, **consts}[name]
            assert (got.shape, got.stride(), got.storage_offset(), got.dtype) == \
                (t.shape, t.stride(), t.storage_offset(), t.dtype), name
            assert torch.equal(got, t), name
    # non-persistent buffers are constants on the wire, as PyTorch writes them
    cfg = config(saved(categories), "data/constants/model_constants_config.json")["config"]
    assert sorted(cfg) == ["const", "row", "scratch"]


def test_requires_grad_preserved_like_pytorch():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(3))
            self.frozen = torch.nn.Parameter(torch.randn(3), requires_grad=False)
            self.register_buffer("b", torch.randn(3))

        def forward(self, x):
            return x * self.w + self.frozen + self.b

    ep = torch.export.export(M(), (torch.randn(3),))
    for loaded in (pt2serde.load(io.BytesIO(saved(ep))), torch_loaded(saved(ep))):
        got = {k: v.requires_grad for k, v in loaded.state_dict.items()}
        assert got == {"w": True, "frozen": False, "b": False}
        assert got == {k: v.requires_grad for k, v in ep.state_dict.items()}


def test_constants_attribute_and_lifted_literals():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.tensor([[1.0, 2.0], [3.0, 4.0]])

        def forward(self, x):
            return x @ self.table + torch.tensor([10.0, 20.0]) + torch.tensor([1, 2]).sum()

    ep = torch.export.export(M(), (torch.randn(3, 2),))
    assert len(ep.constants) >= 2
    x = torch.randn(3, 2)
    for loaded in (pt2serde.load(io.BytesIO(saved(ep))), torch_loaded(saved(ep)),
                   pt2serde.load(io.BytesIO(torch_saved(ep)))):
        assert sorted(loaded.constants) == sorted(ep.constants)
        for k, v in ep.constants.items():
            assert torch.equal(loaded.constants[k], v), k
        torch.testing.assert_close(loaded.module()(x), ep.module()(x))


def test_large_tensor():
    ep = torch.export.export(torch.nn.Linear(1024, 1024), (torch.randn(4, 1024),))
    x = torch.randn(4, 1024)
    for loaded in (pt2serde.load(io.BytesIO(saved(ep))), torch_loaded(saved(ep))):
        torch.testing.assert_close(loaded.module()(x), ep.module()(x))
        assert torch.equal(loaded.state_dict["weight"], ep.state_dict["weight"])


def test_fake_tensor_programs_and_example_inputs():
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    with FakeTensorMode():
        ep = torch.export.export(torch.nn.Linear(4, 3), (torch.randn(2, 4),))
    assert isinstance(ep.example_inputs[0][0], FakeTensor)
    data = saved(ep)
    weights = [n for n in record_names(data) if "/weight_" in n]
    assert weights == ["archive/data/weights/weight_0"]  # no data: one empty record per dtype, as PyTorch
    assert weights == [n for n in record_names(torch_saved(ep)) if "/weight_" in n]
    for loaded in (pt2serde.load(io.BytesIO(data)), torch_loaded(data),
                   pt2serde.load(io.BytesIO(torch_saved(ep)))):
        (args, kwargs) = loaded.example_inputs
        assert isinstance(args[0], FakeTensor) and args[0].shape == (2, 4) and kwargs == {}
        # data-less weights come back as zeros (never uninitialised memory)
        assert torch.equal(loaded.state_dict["weight"], torch.zeros(3, 4))
        assert type(loaded.state_dict["weight"]) is torch.nn.Parameter


def test_real_example_inputs_round_trip(categories):
    for data in (saved(categories), torch_saved(categories)):
        (args, kwargs) = pt2serde.load(io.BytesIO(data)).example_inputs
        assert torch.equal(args[0], categories.example_inputs[0][0]) and kwargs == {}


def test_legacy_whole_dict_payloads_load(categories):
    """Writers 2.5-2.8 stored the state dict and constants as whole torch.save dicts
    (data/weights/<model>.pt); pt2serde reads them with its safe torch.save reader."""
    def blob(d):
        buf = io.BytesIO()
        torch.save(dict(d), buf)
        return buf.getvalue()

    data = saved(categories)
    names = [n.split("/", 1)[1] for n in record_names(data)]
    legacy = rewrite(data, replace={}, drop=tuple(n for n in names if n.startswith(("data/weights/", "data/constants/"))))
    reader = ArchiveReader(legacy)
    out = io.BytesIO()
    with ArchiveWriter(out) as writer:
        for n in reader.names():
            writer.add(n, reader.view(n))
        writer.add("archive/data/weights/model.pt", blob(categories.state_dict))
        writer.add("archive/data/constants/model.pt", blob(categories.constants))
    loaded = pt2serde.load(io.BytesIO(out.getvalue()))
    for k, v in {**categories.state_dict, **categories.constants}.items():
        got = {**loaded.state_dict, **loaded.constants}[k]
        assert torch.equal(got, v) and type(got) is type(v), k
    x = torch.randn(2, 4)
    torch.testing.assert_close(loaded.module()(x), categories.module()(x))


def test_archive_version_error_names_the_record(categories):
    data = rewrite(saved(categories), replace={"archive_version": b"-1"})
    with pytest.raises(pt2serde.SerializeError,
                       match=r"^record archive/archive_version: Saved archive version -1 does not match "
                             r"our current archive version 0\.$"):
        pt2serde.load(io.BytesIO(data))


def test_opset_version_is_recorded(categories):
    data = saved(categories, opset_version={"aten": 10})
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert json.loads(z.read("archive/models/model.json"))["opset_version"]["aten"] == 10
    with pytest.warns(UserWarning):
        pt2serde.load(io.BytesIO(data), expected_opset_version={"aten": 11})


# ================================================================== zero copy, mapping


def test_loaded_tensors_view_the_mapped_file(categories, tmp_path):
    path = tmp_path / "m.pt2"
    pt2serde.save(categories, path)
    loaded = pt2serde.load(path)
    spans = _mappings_of(path)
    assert spans
    for t in [*loaded.state_dict.values(), *loaded.constants.values()]:
        assert _inside(t, spans)
    copied = pt2serde.load(path, mmap=False)
    assert not any(_inside(t, spans) for t in copied.state_dict.values())
    x = torch.randn(2, 4)
    torch.testing.assert_close(copied.module()(x), categories.module()(x))


def test_writing_a_loaded_tensor_never_changes_the_file(categories, tmp_path):
    path = tmp_path / "m.pt2"
    pt2serde.save(categories, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = pt2serde.load(path)
    with torch.no_grad():
        for t in loaded.state_dict.values():
            t.fill_(-1)
        for t in loaded.constants.values():
            t.fill_(-2)
    assert (loaded.state_dict["w"][1] == -2).all()  # the linked constant wrote through
    del loaded
    gc.collect()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    again = pt2serde.load(path)
    for k, v in {**categories.state_dict, **categories.constants}.items():
        assert torch.equal({**again.state_dict, **again.constants}[k], v), k


class _Big(torch.nn.Module):
    def __init__(self, n_layers: int, numel: int):
        super().__init__()
        self.layers = torch.nn.ParameterList(
            torch.nn.Parameter(torch.full((numel,), float(i + 1))) for i in range(n_layers)
        )

    def forward(self, x):
        return x + sum(p[-1] for p in self.layers)


def test_loading_200mb_costs_far_less_memory_than_the_weights(tmp_path):
    path = tmp_path / "big.pt2"
    numel = 50 << 18  # 4 x 50 MiB of float32
    ep = torch.export.export(_Big(4, numel), (torch.randn(2),))
    pt2serde.save(ep, path)
    weights = sum(t.nbytes for t in ep.state_dict.values())
    assert weights == 200 << 20
    path.unlink()
    with PeakGrowth() as m:
        pt2serde.save(ep, path)  # straight from the tensors' memory: no copy of a storage or the archive
    grown = m.bytes
    assert grown < weights // 10, f"peak RSS grew {grown >> 20} MiB saving {weights >> 20} MiB of weights"
    del ep
    gc.collect()
    with PeakGrowth() as m:
        loaded = pt2serde.load(path)
    grown = m.bytes
    assert grown < weights // 10, f"RSS grew {grown >> 20} MiB loading {weights >> 20} MiB of weights"
    out = loaded.module()(torch.zeros(2))
    torch.testing.assert_close(out, torch.full((2,), 10.0))


# ================================================================ failed saves


def test_failed_save_keeps_the_existing_file_and_leaves_no_temp_files(categories, tmp_path, monkeypatch):
    path = tmp_path / "m.pt2"
    pt2serde.save(categories, path)
    before = path.read_bytes()
    written = []
    real_add = ArchiveWriter.add

    def spy(self, name, data):
        written.append(name)
        return real_add(self, name, data)

    def broken(example_inputs, pickle_protocol=2):
        raise pt2serde.SerializeError("sample inputs exploded")

    monkeypatch.setattr(ArchiveWriter, "add", spy)
    monkeypatch.setattr(samples_mod, "dumps_sample_inputs", broken)
    with pytest.raises(pt2serde.SerializeError, match="sample inputs exploded"):
        pt2serde.save(_big_enough(), path)
    assert len(written) >= 4  # weights, configs and the document were already written
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.pt2"]
    monkeypatch.undo()
    torch.testing.assert_close(pt2serde.load(path).state_dict["w"], categories.state_dict["w"])


def _big_enough():
    return torch.export.export(torch.nn.Linear(256, 256), (torch.randn(2, 256),))


def test_failed_save_midway_through_a_record(categories, tmp_path, monkeypatch):
    """The writer itself fails after some records (a full disk, say)."""
    path = tmp_path / "m.pt2"
    pt2serde.save(categories, path)
    before = path.read_bytes()
    real_add = ArchiveWriter.add
    calls = []

    def failing(self, name, data):
        calls.append(name)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_add(self, name, data)

    monkeypatch.setattr(ArchiveWriter, "add", failing)
    with pytest.raises(OSError, match="No space left"):
        pt2serde.save(categories, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.pt2"]


def test_failed_close_leaves_no_temp_file(categories, tmp_path, monkeypatch):
    path = tmp_path / "m.pt2"

    def failing_replace(src, dst):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(archive_write_mod.os, "replace", failing_replace)
    with pytest.raises(OSError, match="Permission denied"):
        pt2serde.save(categories, path)
    assert os.listdir(tmp_path) == []


def test_save_refuses_what_is_not_a_program(tmp_path):
    with pytest.raises(pt2serde.SerializeError, match="needs an ExportedProgram"):
        pt2serde.save(torch.nn.Linear(2, 2), tmp_path / "x.pt2")
    with pytest.raises(pt2serde.SerializeError, match="program 'a' is a dict, not an ExportedProgram"):
        pt2serde.save({"a": {}}, tmp_path / "x.pt2")
    assert os.listdir(tmp_path) == []


# ======================================================================= > 4 GiB


def _available_memory() -> int:
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    return info["MemAvailable"]


class _Huge(torch.nn.Module):
    def __init__(self, big: torch.Tensor):
        super().__init__()
        self.register_buffer("big", big)
        self.small = torch.nn.Parameter(torch.arange(16.0))

    def forward(self, x):
        return x + self.big[-1] + self.big[1 << 32] + self.small


@pytest.mark.slow
@pytest.mark.big  # deselected by default (pyproject addopts); `make test-big` runs it
def test_records_and_offsets_beyond_4gib(tmp_path):
    size = (1 << 32) + 4096  # one record over 4 GiB; every record after it sits beyond 4 GiB
    mem_needed, disk_needed = 3 * size, 2 * size + (64 << 20)
    available = _available_memory()
    disk = os.statvfs(tmp_path)
    free_disk = disk.f_bavail * disk.f_frsize
    # asked for explicitly (-m big): a machine without the room is a failure that says so, not a skip
    assert available > mem_needed and free_disk > disk_needed, (
        f"this test needs {mem_needed >> 30} GiB of free memory and {disk_needed >> 30} GiB of free disk "
        f"under {tmp_path.parent.parent}; found {available >> 30} GiB and {free_disk >> 30} GiB: run `make test-big` "
        f"on a larger machine, or point --basetemp at a bigger disk"
    )
    big = torch.empty(size, dtype=torch.uint8)  # untouched pages cost nothing until written
    marks = {0: 11, (1 << 32) - 1: 22, 1 << 32: 33, size - 1: 44}
    for i, v in marks.items():
        big[i] = v
    ep = torch.export.export(_Huge(big), (torch.zeros(16),))
    expected = torch.arange(16.0) + 44 + 33

    ours = tmp_path / "ours.pt2"
    pt2serde.save(ep, ours)
    with zipfile.ZipFile(ours) as z:  # an independent zip64 reader agrees on the layout
        info = {i.filename: i for i in z.infolist()}
        cfg = json.loads(z.read("ours/data/weights/model_weights_config.json"))["config"]
        big_record = info[f"ours/data/weights/{cfg['big']['path_name']}"]
        assert big_record.file_size == size and big_record.compress_type == zipfile.ZIP_STORED
        assert big_record.header_offset < 1 << 32 < big_record.header_offset + size
        assert info["ours/models/model.json"].header_offset > 1 << 32
        assert json.loads(z.read("ours/models/model.json"))["schema_version"]["major"] == schema.SCHEMA_VERSION[0]
    with ArchiveReader(ours) as reader:  # the CRC of the 4 GiB record (joined from parallel pieces)
        assert reader.verify_crc(f"ours/data/weights/{cfg['big']['path_name']}")
    loaded = pt2serde.load(ours)
    got = loaded.state_dict["big"]
    assert got.numel() == size and all(got[i].item() == v for i, v in marks.items())
    torch.testing.assert_close(loaded.module()(torch.zeros(16)), expected)
    del loaded, got
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs_loaded = torch.export.load(ours)
    torch.testing.assert_close(theirs_loaded.module()(torch.zeros(16)), expected)
    del theirs_loaded
    gc.collect()

    theirs = tmp_path / "theirs.pt2"
    torch.export.save(ep, theirs)
    del ep, big
    gc.collect()
    loaded = pt2serde.load(theirs)
    got = loaded.state_dict["big"]
    assert got.numel() == size and all(got[i].item() == v for i, v in marks.items())
    torch.testing.assert_close(loaded.module()(torch.zeros(16)), expected)


# ------------------------------------------------------- example inputs the safe reader cannot build

from collections import namedtuple as _namedtuple  # noqa: E402

Pair = _namedtuple("Pair", "a b")
torch.utils._pytree._register_namedtuple(Pair, serialized_type_name="test_archive.Pair")


class _Holder:
    """A user class PyTorch pickles by reference: only unpickling could rebuild it."""

    def __init__(self, t):
        self.t = t


class _PairModel(torch.nn.Module):
    def forward(self, p):
        return p.a + p.b


class _HolderModel(torch.nn.Module):
    def forward(self, x, scale):
        return x * 2


def test_unregistered_namedtuple_input_is_a_clear_error():
    Loose = _namedtuple("Loose", "a b")

    class M(torch.nn.Module):
        def forward(self, p):
            return p.a + p.b

    ep = torch.export.export(M(), (Loose(torch.ones(1), torch.ones(1)),))
    with pytest.raises(pt2serde.SerializeError, match=r"namedtuple .*Loose has no serialized type name: register it"):
        pt2serde.save(ep, io.BytesIO())


def test_namedtuple_example_inputs_are_rebuilt_without_unpickling():
    p = Pair(torch.ones(2), torch.arange(2.0))
    ep = torch.export.export(_PairModel(), (p,))
    buf = io.BytesIO()
    pt2serde.save(ep, buf)
    loaded = pt2serde.load(buf)
    (got,), kwargs = loaded.example_inputs
    assert type(got) is Pair and torch.equal(got.b, p.b) and kwargs == {}


def test_user_class_example_inputs(tmp_path):
    """PyTorch writes such inputs (and reads them back only by running the pickle); pt2serde
    leaves them out when it saves, refuses them on load by default, and reads them with
    allow_pickle=True."""
    ep = torch.export.export(_HolderModel(), (torch.ones(2), 3))
    ep._example_inputs = ((torch.ones(2), _Holder(torch.zeros(1))), {})
    ours = io.BytesIO()
    with pytest.warns(UserWarning, match=r"example inputs are not saved: reading them back would need unpickling"):
        pt2serde.save(ep, ours)
    assert pt2serde.load(ours).example_inputs is None
    theirs = tmp_path / "theirs.pt2"
    torch.export.save(ep, theirs)
    with pytest.raises(pt2serde.SerializeError,
                       match=r"_Holder is not an allowed global.*Pass allow_pickle=True if you trust this archive"):
        pt2serde.load(theirs)
    trusted = pt2serde.load(theirs, allow_pickle=True)
    assert isinstance(trusted.example_inputs[0][1], _Holder)


def test_record_name_segments_are_judged_as_split_segments_are():
    """check_name finds empty, ``.`` and ``..`` segments without splitting the name: it refuses
    exactly the names whose segments (split at ``/``, trailing slashes aside) include one."""
    import random

    from pt2serde.format.archive import check_name

    def split_says_bad(name: str) -> bool:
        return any(part in ("..", ".", "") for part in name.rstrip("/").split("/"))

    rng = random.Random(7)
    names = ["".join(rng.choice("a./") for _ in range(rng.randint(1, 9))) for _ in range(20000)]
    names += ["a", "a/", "a//", "./a", "a/.", "a/..", "a/.../b", "..a/b", "a/b..", ".hidden/x", "a/./b", "a//b"]
    for name in names:
        if name.startswith("/"):
            continue  # refused as an absolute path first
        try:
            check_name(name)
            refused = False
        except pt2serde.SerializeError as e:
            refused = "path segment" in str(e)
        assert refused == split_says_bad(name), name
