"""Drop-in behaviour found by running PyTorch's own serialization tests against pt2serde.

The oracle is PyTorch 2.13 itself: ``torch.export.save`` / ``load``, its ``serialize``
signature, ``package_pt2`` for several programs and its C++ zip writer
(``torch._C.PyTorchFileWriter``). Covered here:

- ``pickle_protocol`` where PyTorch's API has it, honoured in every record PyTorch also
  stores as a pickle, refused with ``TypeError``/``ValueError`` when it is not a protocol;
- saving to a path someone holds open, and to the open file object itself;
- saving through symbolic links (a link, a chain, a dangling link, a loop);
- PyTorch's wording for a wrong ``archive_version``;
- archives compared with PyTorch's byte for byte, record by record (names, order, bytes),
  including ``.data/serialization_id``; the records that may legitimately differ are listed
  in :data:`MAY_DIFFER`.
"""

from __future__ import annotations

import inspect
import io
import logging
import os
import pickle
import random
import tempfile
import warnings
import zipfile

import pytest
import torch

import pt2serde
from pt2serde.format import archive_write as archive_write_mod
from pt2serde.bridge import package as package_mod
from pt2serde.format import payload
from pt2serde.format.archive import ArchiveReader
from pt2serde.format.archive_write import ArchiveWriter
from programs import corpus_ids, exported

# Records of a pt2serde archive that may differ from PyTorch's for the same program, and why.
# Everything else is the same bytes at the same place.
MAY_DIFFER = {
    # pt2serde records a constant that views a weight's storage under the extra key
    # `pt2serde_shares` (PyTorch ignores it) so that load keeps the aliasing
    "data/constants/<name>_constants_config.json": "a constant viewing a weight: `pt2serde_shares` link",
    # derived from every record's name and CRC: differs exactly when another record differs, and
    # on PyTorch builds whose C++ library hashes strings otherwise (macOS, Windows)
    ".data/serialization_id": "follows the other records; libstdc++ string hash (Linux builds)",
    # example inputs pt2serde's safe reader could not read back are left out (with a warning)
    "data/sample_inputs/<name>.pt": "example inputs only unpickling could rebuild: left out",
}


def torch_bytes(ep, **kw) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns when no tensor covers a whole storage
        torch.export.save(ep, buf, **kw)
    return buf.getvalue()


def our_bytes(ep, **kw) -> bytes:
    buf = io.BytesIO()
    pt2serde.save(ep, buf, **kw)
    return buf.getvalue()


def records(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def assert_same_archive(ours: bytes, theirs: bytes) -> None:
    """Record names, order and bytes, one record at a time (a readable failure), then the file."""
    a, b = records(ours), records(theirs)
    assert [n for n, _ in a] == [n for n, _ in b]
    for (name, mine), (_, pytorch) in zip(a, b):
        assert mine == pytorch, name
    assert ours == theirs  # the zip structure around the records too


def rewrite(data: bytes, replace: dict[str, bytes]) -> bytes:
    """The archive with some records (names relative to the root folder) replaced."""
    reader = ArchiveReader(data)
    root = reader.root_folder()
    out = io.BytesIO()
    with ArchiveWriter(out) as writer:
        for name in reader.names():
            writer.add(name, replace.get(name[len(root) + 1:], reader.view(name)))
    return out.getvalue()


class _State(torch.nn.Module):
    """Tied weights, a trainable and a frozen parameter, persistent and non-persistent buffers,
    a plain tensor constant, an integer buffer and an empty one."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Linear(4, 4)
        self.b = torch.nn.Linear(4, 4)
        self.b.weight = self.a.weight  # tied
        self.frozen = torch.nn.Parameter(torch.full((4,), 0.5), requires_grad=False)
        self.register_buffer("buf", torch.arange(4.0))
        self.register_buffer("scratch", torch.ones(4), persistent=False)
        self.register_buffer("steps", torch.tensor([3, 1, 2], dtype=torch.int64))
        self.register_buffer("nothing", torch.empty(0))
        self.const = torch.tensor([7.0, 8.0, 9.0, 10.0])

    def forward(self, x, *, scale):
        y = self.b(self.a(x)) + self.frozen + self.buf + self.scratch + self.const
        return y * scale + self.steps.sum() + self.nothing.sum()


@pytest.fixture(scope="module")
def state_program():
    return torch.export.export(_State(), (torch.randn(2, 4),), {"scale": torch.tensor(2.0)})


def _two_tensor_program(mixed: bool = True):
    """A program whose state dict holds a tensor subclass (PyTorch stores it as a pickle)."""
    from torch.testing._internal.two_tensor import TwoTensor

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.ones(3))
            self.register_buffer("sub", torch.zeros(3))
            self.register_buffer("plain", torch.full((3,), 2.0))

        def forward(self, x):
            return x + self.p + self.sub + self.plain

    ep = torch.export.export(M(), (torch.randn(3),))
    ep.state_dict["sub"] = TwoTensor(torch.zeros(3), torch.zeros(3))
    return ep


def _pickle_protocol_of(torch_save_bytes: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(torch_save_bytes)) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    assert data[0] == pickle.PROTO[0]
    return data[1]


# ======================================================================= pickle_protocol


def test_pickle_protocol_is_in_every_signature_pytorch_has_it():
    from torch._export.serde import serialize as torch_serde

    ours = inspect.signature(pt2serde.save).parameters["pickle_protocol"]
    theirs = inspect.signature(torch.export.save).parameters["pickle_protocol"]
    assert ours.kind is theirs.kind is inspect.Parameter.KEYWORD_ONLY and ours.default == theirs.default == 2
    for mine, pytorch in ((pt2serde.serialize, torch_serde.serialize),
                          (pt2serde.ExportedProgramSerializer, torch_serde.ExportedProgramSerializer)):
        names = list(inspect.signature(mine).parameters)
        expected = list(inspect.signature(pytorch).parameters)[:len(names)]
        # same positions (the program's own name is API.md's `ep`): serialize(ep, None, 4) means the same
        assert names[-2:] == expected[-2:] == ["opset_version", "pickle_protocol"] and len(names) == len(expected)
        assert inspect.signature(mine).parameters["pickle_protocol"].default == 2


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_save_writes_pickled_records_with_the_protocol_as_pytorch_does(state_program, protocol):
    data = our_bytes(state_program, pickle_protocol=protocol)
    assert_same_archive(data, torch_bytes(state_program, pickle_protocol=protocol))
    sample = dict(records(data))["archive/data/sample_inputs/model.pt"]
    assert _pickle_protocol_of(sample) == protocol
    loaded = pt2serde.load(io.BytesIO(data))  # the safe reader reads every protocol
    (args, kwargs) = loaded.example_inputs
    assert torch.equal(args[0], state_program.example_inputs[0][0]) and torch.equal(kwargs["scale"], torch.tensor(2.0))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_tensor_subclass_records_use_the_protocol(protocol):
    ep = _two_tensor_program()
    data = our_bytes(ep, pickle_protocol=protocol)
    assert_same_archive(data, torch_bytes(ep, pickle_protocol=protocol))  # subclasses first, as PyTorch
    weights = dict(records(data))
    assert _pickle_protocol_of(weights["archive/data/weights/weight_0"]) == protocol
    loaded = pt2serde.load(io.BytesIO(data), allow_pickle=True)
    assert type(loaded.state_dict["sub"]).__name__ == "TwoTensor"
    # serialize: the payload's pickled entries use the protocol too
    artifact = pt2serde.serialize(ep, None, protocol)
    header, blobs = payload.unpack(artifact.state_dict)
    blob = blobs[header["entries"]["sub"]["blob"]]
    assert _pickle_protocol_of(bytes(blob)) == protocol
    assert type(pt2serde.deserialize(artifact, allow_pickle=True).state_dict["sub"]).__name__ == "TwoTensor"


def test_pickle_protocol_that_is_not_a_protocol_is_refused(state_program, tmp_path):
    calls = {
        "save": lambda p: pt2serde.save(state_program, tmp_path / "m.pt2", pickle_protocol=p),
        "serialize": lambda p: pt2serde.serialize(state_program, None, p),
        "ExportedProgramSerializer": lambda p: pt2serde.ExportedProgramSerializer(None, p),
    }
    for what, call in calls.items():
        for bad, error in ((1, ValueError), (0, ValueError), (pickle.HIGHEST_PROTOCOL + 1, ValueError),
                           (-1, ValueError), ("2", TypeError), (2.0, TypeError), (True, TypeError),
                           (None, TypeError)):
            with pytest.raises(error, match=r"pickle_protocol must be .*from 2 to \d"):
                call(bad)
    assert not (tmp_path / "m.pt2").exists() and os.listdir(tmp_path) == []  # refused before writing


def test_serializer_keeps_the_protocol():
    assert pt2serde.ExportedProgramSerializer().pickle_protocol == 2
    assert pt2serde.ExportedProgramSerializer(pickle_protocol=4).pickle_protocol == 4


# ================================================================ open files, symlinks


def test_save_into_an_open_file_object_writes_into_it(state_program):
    with tempfile.NamedTemporaryFile(suffix=".pt2") as f:
        pt2serde.save(state_program, f)
        assert f.tell() == 0  # left at its start, as torch.export.save leaves it
        assert f.read() == our_bytes(state_program)
        x = torch.randn(2, 4)
        expected = state_program.module()(x, scale=torch.tensor(2.0))
        for loaded in (pt2serde.load(f), pt2serde.load(f.name), torch.export.load(f.name)):
            torch.testing.assert_close(loaded.module()(x, scale=torch.tensor(2.0)), expected)


def test_save_to_the_path_of_an_open_file_leaves_the_callers_handle_on_the_old_file(state_program):
    """The documented difference (README, save's docstring): pt2serde renames a new file into
    place, torch.export.save rewrites the file the handle is open on."""
    with tempfile.NamedTemporaryFile(suffix=".pt2") as f:
        pt2serde.save(state_program, f.name)
        assert f.read() == b""  # the old, empty file
        with open(f.name, "rb") as again:
            assert again.read()[:4] == b"PK\x03\x04"
        pt2serde.load(f.name)
    with tempfile.NamedTemporaryFile(suffix=".pt2") as f:
        torch_bytes(state_program)  # (PyTorch's warnings once, outside the handle's check)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.export.save(state_program, f.name)
        assert f.read()[:4] == b"PK\x03\x04"  # PyTorch: the same file, rewritten in place


def _record_temporaries(monkeypatch) -> list[str]:
    made: list[str] = []
    real = archive_write_mod._create_temporary

    def spy(final_path):
        made.append(final_path)
        return real(final_path)

    monkeypatch.setattr(archive_write_mod, "_create_temporary", spy)
    return made


def _saved_loads(path, ep) -> None:
    x = torch.randn(2, 4)
    torch.testing.assert_close(pt2serde.load(path).module()(x, scale=torch.tensor(2.0)),
                               ep.module()(x, scale=torch.tensor(2.0)))


def test_save_through_a_symlink_replaces_the_target_and_keeps_the_link(state_program, tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    (real / "model.pt2").write_bytes(b"old")
    link = tmp_path / "link.pt2"
    link.symlink_to("real/model.pt2")  # relative, as `ln -s` makes it
    made = _record_temporaries(monkeypatch)
    pt2serde.save(state_program, str(link))
    assert made == [str(real / "model.pt2")]  # the temporary file was made next to the target
    assert link.is_symlink() and os.readlink(link) == "real/model.pt2"
    (tmp_path / "plain").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(state_program, str(tmp_path / "plain" / "link.pt2"))  # root folder "link" too
    assert (real / "model.pt2").read_bytes() == (tmp_path / "plain" / "link.pt2").read_bytes()
    (tmp_path / "plain" / "link.pt2").unlink()
    (tmp_path / "plain").rmdir()
    assert sorted(os.listdir(real)) == ["model.pt2"] and sorted(os.listdir(tmp_path)) == ["link.pt2", "real"]
    _saved_loads(link, state_program)


def test_save_through_a_chain_of_links_with_an_absolute_one(state_program, tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    target = tmp_path / "b" / "final.pt2"
    target.write_bytes(b"old")
    (tmp_path / "a" / "middle.pt2").symlink_to(target)  # absolute
    (tmp_path / "first.pt2").symlink_to("a/middle.pt2")
    made = _record_temporaries(monkeypatch)
    pt2serde.save(state_program, tmp_path / "first.pt2")
    assert made == [str(target)]
    assert (tmp_path / "first.pt2").is_symlink() and (tmp_path / "a" / "middle.pt2").is_symlink()
    assert not target.is_symlink() and target.read_bytes()[:4] == b"PK\x03\x04"
    assert os.listdir(tmp_path / "b") == ["final.pt2"]
    _saved_loads(tmp_path / "first.pt2", state_program)


def test_save_through_a_dangling_link_creates_its_target(state_program, tmp_path):
    (tmp_path / "out").mkdir()
    link = tmp_path / "model.pt2"
    link.symlink_to("out/new.pt2")
    assert not link.exists()
    pt2serde.save(state_program, link)
    assert link.is_symlink() and (tmp_path / "out" / "new.pt2").is_file()
    _saved_loads(link, state_program)
    assert torch.export.load(str(link)) is not None


def test_save_through_a_link_loop_is_refused(state_program, tmp_path):
    (tmp_path / "a.pt2").symlink_to("b.pt2")
    (tmp_path / "b.pt2").symlink_to("a.pt2")
    with pytest.raises(pt2serde.SerializeError,
                       match=r"^cannot save to .*a\.pt2: too many levels of symbolic links \(a loop\?\); "
                             r"save to the real file's path instead$"):
        pt2serde.save(state_program, tmp_path / "a.pt2")
    assert sorted(os.listdir(tmp_path)) == ["a.pt2", "b.pt2"]


# ========================================================================= archive_version


@pytest.mark.parametrize("version", [b"1", b"-1", b"abc"])
def test_wrong_archive_version_gives_pytorchs_message(state_program, version):
    data = rewrite(our_bytes(state_program), {"archive_version": version})
    with pytest.raises(ValueError) as theirs:
        logging.disable(logging.CRITICAL)
        try:
            torch.export.load(io.BytesIO(data))
        finally:
            logging.disable(logging.NOTSET)
    expected = str(theirs.value)
    assert expected == f"Saved archive version {version.decode()} does not match our current archive version 0."
    with pytest.raises(pt2serde.SerializeError) as ours:
        pt2serde.load(io.BytesIO(data))
    assert str(ours.value) == f"record archive/archive_version: {expected}"


# ============================================================ byte for byte with PyTorch


def test_archive_equals_pytorchs_record_by_record(state_program):
    """Tied weights (one record, PyTorch's config order: the group's entries together),
    buffers, constants, an integer and an empty tensor, keyword example inputs."""
    ours = our_bytes(state_program)
    assert_same_archive(ours, torch_bytes(state_program))
    names = [n for n, _ in records(ours)]
    assert names[-5:] == ["archive/archive_format", "archive/archive_version", "archive/.data/version",
                          "archive/byteorder", "archive/.data/serialization_id"]
    config = json_record(ours, "archive/data/weights/model_weights_config.json")["config"]
    order = list(config)
    assert order.index("b.weight") == order.index("a.weight") + 1  # tied: one group, listed together
    assert order.index("a.bias") > order.index("b.weight")  # (the state dict has a.bias in between)
    assert config["a.weight"]["path_name"] == config["b.weight"]["path_name"]


def json_record(data: bytes, name: str) -> dict:
    import json

    return json.loads(dict(records(data))[name])


def test_archive_with_fake_tensors_equals_pytorchs():
    """Fake (data-less) weights are empty records, written whole without a data descriptor
    as PyTorch's writer writes empty records."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        ep = torch.export.export(torch.nn.Linear(4, 3), (torch.randn(2, 4),))
    assert_same_archive(our_bytes(ep), torch_bytes(ep))


def test_several_programs_and_extra_files_equal_pytorchs_package():
    from torch.export.pt2_archive._package import package_pt2

    class M(torch.nn.Module):
        def __init__(self, k):
            super().__init__()
            self.lin = torch.nn.Linear(3, k)
            self.register_buffer("b", torch.ones(k))

        def forward(self, x):
            return self.lin(x) + self.b

    programs = {name: torch.export.export(M(k), (torch.randn(1, 3),)) for name, k in (("first", 2), ("second", 4))}
    extra = {"notes.txt": "hello", "d/x.json": "{}"}
    theirs = io.BytesIO()
    package_pt2(theirs, exported_programs=programs, extra_files=extra)
    ours = io.BytesIO()
    pt2serde.save(programs, ours, extra_files=extra)
    assert_same_archive(ours.getvalue(), theirs.getvalue())


def test_a_constant_viewing_a_weight_differs_only_where_documented():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.arange(8.0).reshape(2, 4))
            self.row = self.w.detach()[1]  # a constant viewing the parameter

        def forward(self, x):
            return x @ self.w.t() + self.row.sum()

    ep = torch.export.export(M(), (torch.randn(1, 4),))
    ours, theirs = records(our_bytes(ep)), records(torch_bytes(ep))
    assert [n for n, _ in ours] == [n for n, _ in theirs]
    differ = {n.split("/", 1)[1] for (n, a), (_, b) in zip(ours, theirs) if a != b}
    assert differ == {"data/constants/model_constants_config.json", ".data/serialization_id"}
    assert {"data/constants/<name>_constants_config.json", ".data/serialization_id"} <= set(MAY_DIFFER)
    mine = json_record(our_bytes(ep), "archive/data/constants/model_constants_config.json")
    assert mine["config"]["row"].pop(package_mod.SHARES_KEY) == "data/weights/weight_0"
    assert mine == json_record(torch_bytes(ep), "archive/data/constants/model_constants_config.json")


@pytest.mark.parametrize("name,form", corpus_ids(("export",), oracle=True))
def test_corpus_archives_equal_pytorchs(name, form):
    ep = exported(name, form)
    assert_same_archive(our_bytes(ep), torch_bytes(ep))


def test_serialization_id_is_pytorchs_writers():
    """The id of PyTorch's C++ writer for record sets that exercise its hash table's growth
    (13, 29, 59, ... buckets), empty records (no data descriptor) and records whose data
    starts like a data descriptor; and the whole zip, byte for byte."""
    rng = random.Random(12)
    for count in (0, 1, 13, 14, 30, 131, 600):
        entries = []
        for k in range(count):
            data = bytes(rng.randrange(256) for _ in range(rng.choice((0, 3, 9, 70))))
            if k % 9 == 4:
                data = b"PK\x07\x08" + data + b"tail"
            entries.append((f"dir{k % 5}/rec_{k}_{rng.random():.6f}", data))
        theirs = io.BytesIO()
        writer = torch._C.PyTorchFileWriter(theirs)
        for name, data in entries:
            writer.write_record(name, data, len(data))
        writer.write_end_of_file()  # adds `version`, `byteorder` and the id
        ours = io.BytesIO()
        with ArchiveWriter(ours) as w:
            for name, data in entries + [("version", b"3\n"), ("byteorder", b"little")]:
                w.add(f"archive/{name}", data)
            w.add_serialization_id("archive")
        assert_same_archive(ours.getvalue(), theirs.getvalue())


def test_saving_over_a_file_keeps_its_permission_bits(tmp_path):
    """torch.export.save rewrites in place, so the file keeps its mode; our rename-based save
    gives the new file the old one's permission bits (a group-readable model stays so)."""
    ep = exported(*corpus_ids(("export",), oracle=True)[0])
    path = tmp_path / "model.pt2"
    pt2serde.save(ep, path)
    os.chmod(path, 0o640)
    pt2serde.save(ep, path)
    assert os.stat(path).st_mode & 0o777 == 0o640
    fresh = tmp_path / "fresh.pt2"
    pt2serde.save(ep, fresh)  # a new file: the umask decides, as for open()
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(fresh).st_mode & 0o777 == 0o666 & ~umask
