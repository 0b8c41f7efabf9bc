"""Attack classes beyond ``tests/hostile/test_hostile_archives.py`` (see ``tests/hostile/README.md``).

Each case is a file an attacker could hand to ``pt2serde.load`` (or ``deserialize``): it
must be refused with a ``SerializeError`` that says what is wrong, nothing from the file
may run (payloads that would run code create a marker file, which must never appear), and
refusing it must not cost memory the file cannot justify. Where the safe outcome is to
load (a symlink-looking record, a zero-stride view), the test says so and checks that
nothing unsafe happened.

The builders reuse the helpers of ``tests/hostile/test_hostile_archives.py``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

import pt2serde
import test_hostile_archives as H
from compat import CORPUS
from memory import PeakGrowth
from test_hostile_archives import base, marker  # noqa: F401 - pytest fixtures: the archive to corrupt, the marker path
from pt2serde.format import payload as payload_mod
from pt2serde.format.archive import ArchiveReader



def _load(data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pt2serde.load(io.BytesIO(data), **kw)


def _document(data: bytes) -> dict:
    return H.read_json(data, "models/model.json")


def _with_document(data: bytes, change) -> bytes:
    doc = _document(data)
    change(doc)
    return H.rewrite(data, replace={"models/model.json": json.dumps(doc).encode()})


def _with_document_text(data: bytes, change) -> bytes:
    text = json.dumps(_document(data))
    return H.rewrite(data, replace={"models/model.json": change(text).encode()})


def _rename_value(data: bytes, old: str, new: str) -> bytes:
    """Every occurrence of the graph value ``old`` (a JSON string) renamed to ``new``."""
    return _with_document_text(data, lambda text: text.replace(json.dumps(old), json.dumps(new)))


def _exec_bytes(marker) -> str:
    """Python source that creates the marker, written without dots or quotes: ``exec(bytes([...]))``."""
    code = f"import os; os.system('touch {marker}')".encode()
    return "exec(bytes([" + ",".join(str(b) for b in code) + "]))"


def _rename_parameter(data: bytes, new: str) -> bytes:
    """The parameter ``w`` renamed to ``new`` consistently (document and weights config)."""
    doc = _document(data)
    spec = doc["graph_module"]["signature"]["input_specs"][0]["parameter"]
    assert spec["parameter_name"] == "w"
    spec["parameter_name"] = new
    cfg = H.read_json(data, H.WEIGHTS)
    cfg["config"][new] = cfg["config"].pop("w")
    return H.rewrite(data, replace={"models/model.json": json.dumps(doc).encode(), H.WEIGHTS: json.dumps(cfg).encode()})


class _Cond(torch.nn.Module):
    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda x: x + 1, lambda x: x - 1, (x,))


_COND: list[bytes] = []


def _cond_archive() -> bytes:
    """A program with a ``torch.cond`` (two subgraphs, ``true_graph_0`` and ``false_graph_0``)."""
    if not _COND:
        buf = io.BytesIO()
        pt2serde.save(torch.export.export(_Cond(), (torch.ones(3),)), buf)
        _COND.append(buf.getvalue())
    return _COND[0]


def _legacy_archive() -> tuple[list[tuple[str, bytes]], str]:
    """The records of a PyTorch 2.5.1 archive (the plain-zip layout of 2.5-2.7)."""
    path = sorted((CORPUS / "2.5.1").glob("*.pt2"), key=lambda p: p.stat().st_size)[0]
    reader = ArchiveReader(path.read_bytes())
    return [(n, reader.read(n)) for n in reader.names()], path.name


def _legacy_with(record: str, value: bytes) -> bytes:
    records, _ = _legacy_archive()
    assert any(n == record for n, _ in records), record
    return H.raw_zip([(n.encode(), value if n == record else v) for n, v in records])


def _deflated(entries_raw: list[tuple[bytes, bytes]], deflate: str) -> bytes:
    stored = H.raw_zip([e for e in entries_raw if not e[0].endswith(deflate.encode())])
    packed = H.raw_zip([e for e in entries_raw if e[0].endswith(deflate.encode())], method=8)
    return H._merge(stored, packed)


def _weight_bomb(base: bytes) -> bytes:
    """weight_0 deflated from 600 MiB of zeros (about 600 KiB in the file)."""
    reader = ArchiveReader(base)
    entries = [(n.encode(), bytes(600 << 20) if n.endswith("weight_0") else reader.read(n)) for n in reader.names()]
    return _deflated(entries, "weight_0")


def _many_bombs(base: bytes, count: int = 20) -> bytes:
    """``count`` constants, each on its own deflated record of 64 MiB of zeros (just under the
    per-record limit): 1.3 MB of file, 1.3 GiB once inflated."""
    cfg = H.read_json(base, H.CONSTANTS)
    for i in range(count):
        entry = json.loads(json.dumps(cfg["config"]["c"]))
        entry["path_name"] = f"tensor_{100 + i}"
        entry["tensor_meta"].update(sizes=H.ints(16 << 20), strides=H.ints(1))
        cfg["config"][f"z{i}"] = entry
    data = H.rewrite(base, replace={H.CONSTANTS: json.dumps(cfg).encode()})
    reader = ArchiveReader(data)
    stored = H.raw_zip([(n.encode(), reader.read(n)) for n in reader.names()])
    bombs = H.raw_zip([(f"archive/data/constants/tensor_{100 + i}".encode(), bytes(64 << 20)) for i in range(count)],
                      method=8)
    return H._merge(stored, bombs)


def _sample_inputs_bomb(base: bytes) -> bytes:
    """Sample inputs whose (nested) torch.save zip inflates a 150 MiB storage from 150 KiB."""
    buf = io.BytesIO()
    torch.save(((torch.zeros(150 << 20, dtype=torch.uint8),), {}), buf)
    reader = ArchiveReader(buf.getvalue())
    nested = _deflated([(n.encode(), reader.read(n)) for n in reader.names()], "/data/0")
    return H.rewrite(base, replace={"data/sample_inputs/model.pt": nested})


def _count_lie() -> bytes:
    z = H.raw_zip(H.pt2_zip())
    return H.patched(z, z.rfind(b"PK\x05\x06") + 8, "<HH", 3, 3)


def _many_zero_filled(base: bytes, count: int = 40) -> bytes:
    """``count`` constants of 64 MiB each, all on one empty record: a 22 KiB file asking for
    2.5 GiB of zeros (PyTorch reads fake tensors, written as empty records, back as zeros)."""
    cfg = H.read_json(base, H.CONSTANTS)
    for i in range(count):
        entry = json.loads(json.dumps(cfg["config"]["c"]))
        entry["path_name"] = "tensor_9"
        entry["tensor_meta"].update(sizes=H.ints(16 << 20), strides=H.ints(1))
        cfg["config"][f"z{i}"] = entry
    return H.rewrite(base, replace={H.CONSTANTS: json.dumps(cfg).encode()}, add={"data/constants/tensor_9": b""})


def _artifact_with(kind: str, entry: dict, blob: bytes) -> pt2serde.SerializedArtifact:
    ep = torch.export.export(H._Small(), (torch.ones(2, 4),))
    artifact = pt2serde.serialize(ep)
    header = {"kind": kind, "byteorder": "little", "entries": {"x": {**entry, "blob": 0}},
              "first_storage_blob": 1, "storage_devices": []}
    field = "state_dict" if kind == "state_dict" else "constants"
    return dataclasses.replace(artifact, **{field: payload_mod.pack(header, [blob])})


_META = {"dtype": 7, "sizes": [{"as_int": 2}], "requires_grad": False, "device": {"type": "cpu", "index": None},
         "strides": [{"as_int": 1}], "storage_offset": {"as_int": 0}, "layout": 7}


# ============================================================================ the catalogue
# id -> (builder(base, marker) -> bytes, regex the SerializeError message must match)

CASES = {
    # ---- code execution: every pickle site of the 2.5-2.7 plain-zip layout
    "legacy layout state dict pickle": (
        lambda b, m: _legacy_with("serialized_state_dict.pt", H.torch_save_with_pickle(H.marker_pickle(m))),
        r"GLOBAL (posix|os)\.system is not an allowed global at byte \d+ of archive/data\.pkl in record "
        r"serialized_state_dict\.pt"),
    "legacy layout constants pickle": (
        lambda b, m: _legacy_with("serialized_constants.pt", H.torch_save_with_pickle(H.marker_pickle(m))),
        r"GLOBAL (posix|os)\.system is not an allowed global .* in record serialized_constants\.pt"),
    "legacy layout example inputs pickle": (
        lambda b, m: _legacy_with("serialized_example_inputs.pt", H.torch_save_with_pickle(H.marker_pickle(m))),
        r"GLOBAL (posix|os)\.system is not an allowed global .* in record serialized_example_inputs\.pt.*"
        r"Pass allow_pickle=True if you trust"),
    # ---- code execution through the FX code torch generates from names in the file
    "input name injected into forward()'s signature": (
        lambda b, m: _rename_value(b, "x", f"x={_exec_bytes(m)}"),
        r"exec\(bytes\("),
    "parameter name breaking out of getattr(self, \"...\")": (
        lambda b, m: _rename_parameter(b, f'w.x", {_exec_bytes(m)} or "y'),
        r"exec\(bytes\("),
    "subgraph name breaking out of getattr(self, \"...\")": (
        lambda b, m: _rename_value(_cond_archive(), "true_graph_0", f'g", {_exec_bytes(m)} or "g'),
        r"exec\(bytes\("),
    # ---- code execution through the other strings a document holds
    "expression string that is Python": (
        lambda b, m: _with_document(b, lambda d: d["graph_module"]["graph"]["tensor_values"]["x"]["sizes"].__setitem__(
            0, {"as_expr": {"expr_str": f"__import__('os').system('touch {m}')", "hint": {"as_int": 2}}})),
        r"invalid symbolic expression: .*__import__"),
    "call target os.system": (
        lambda b, m: _with_document(b, lambda d: d["graph_module"]["graph"]["nodes"][0].update(target="os.system")),
        r"Call target 'os\.system' is not an operator or a known symbolic function; refusing to resolve it"),
    "call target walking attributes": (
        lambda b, m: _with_document(b, lambda d: d["graph_module"]["graph"]["nodes"][0].update(
            target="torch.ops.aten.t.default.__class__.__init__.__globals__")),
        r"call target 'torch\.ops\.aten\.t\.default\.__class__\.__init__\.__globals__' is not an operator name"
        r" - at `\$\.graph_module\.graph\.nodes\[0\]\.target`"),
    "unregistered custom op": (
        lambda b, m: _with_document(b, lambda d: d["graph_module"]["graph"]["nodes"][0].update(
            target="torch.ops.evil_ns.payload.default")),
        r"failed to resolve torch\.ops\.evil_ns\.payload\.default to an operator.*import the module that registers it"),
    "treespec defaultdict factory os.system": (
        lambda b, m: _with_document(b, lambda d: d["graph_module"]["module_call_graph"][0]["signature"].update(
            in_spec=json.dumps([1, {"type": "collections.defaultdict", "context": {
                "default_factory_module": "os", "default_factory_name": "system", "dict_context": []},
                "children_spec": []}]))),
        r"treespec defaultdict factory os\.system is not an allowed container type"),
    "treespec with duplicate keys": (
        lambda b, m: _with_document(b, lambda d: d["graph_module"]["module_call_graph"][0]["signature"].update(
            in_spec='[1, {"type": null, "type": "builtins.tuple", "context": "null", "children_spec": []}]')),
        r"treespec is not valid JSON: duplicate key 'type' in one object - at "
        r"`\$\.graph_module\.module_call_graph\[0\]\.signature\.in_spec`"),
    # ---- zip tricks
    "deflate bomb within its declared size": (
        lambda b, m: _weight_bomb(b),
        r"deflated record 'archive/data/weights/weight_0' declares 629145600 bytes from \d+, over the limit of "
        r"67108864 bytes"),
    "many deflate bombs, each within the limit": (
        lambda b, m: _many_bombs(b),
        r"deflated record 'archive/data/constants/tensor_1\d\d' declares 67108864 bytes; with the 67108864 bytes its "
        r"other deflated records inflate to, that is over the limit of 67108864 bytes"),
    "nested deflate bomb in the sample inputs": (
        lambda b, m: _sample_inputs_bomb(b),
        r"deflated record 'archive/data/0' declares 157286400 bytes from \d+, over the limit of 67108864 bytes"),
    "empty path segment": (lambda b, m: H.raw_zip(H.pt2_zip([(b"archive/extra//x", b"x")])),
                           r"^invalid record name 'archive/extra//x': empty, '\.' or '\.\.' path segment$"),
    "dot path segment": (lambda b, m: H.raw_zip(H.pt2_zip([(b"archive/./models/model.json", b"{}")])),
                         r"^invalid record name 'archive/\./models/model\.json': empty, '\.' or '\.\.' path segment$"),
    "junk before the first record": (lambda b, m: b"MZ" + b"\0" * 62 + b,
                                     r"^central directory record 0 has a bad signature$"),
    "central directory count lie": (lambda b, m: _count_lie(), r"^central directory is truncated at record 2 of 3$"),
    "local header extra field lie": (
        lambda b, m: H.patched(b, ArchiveReader(b).entry("archive/byteorder").header_offset + 28, "<H", 0xFFFF),
        r"record 'archive/byteorder' \(\d+ bytes at \d+\) runs past the end of the archive|overlap"),
    # ---- JSON tricks
    "document nested deeply": (lambda b, m: H.rewrite(b, replace={"models/model.json": b"[" * 100_000 + b"]" * 100_000}),
                               r"^record archive/models/model\.json: ExportedProgram document is nested too deeply to parse$"),
    "document in UTF-16": (lambda b, m: H.rewrite(b, replace={"models/model.json": json.dumps(_document(b)).encode("utf-16")}),
                           r"^record archive/models/model\.json: ExportedProgram document is not valid UTF-8 \(byte 0\)$"),
    "document with a BOM": (lambda b, m: H.rewrite(b, replace={"models/model.json": b"\xef\xbb\xbf" + json.dumps(_document(b)).encode()}),
                            r"^record archive/models/model\.json: ExportedProgram document is not valid JSON: Unexpected UTF-8 BOM"),
    "document with a NaN token": (lambda b, m: _with_document_text(b, lambda t: t.replace('"requires_grad": false', '"requires_grad": NaN', 1)),
                                  r"^record archive/models/model\.json: ExportedProgram document contains the non-standard token NaN$"),
    "version as 1e999": (lambda b, m: _with_document_text(b, lambda t: t.replace('"major": 8', '"major": 1e999')),
                         r"schema_version must hold integer `major` and `minor` - at `\$\.schema_version`"),
    "giant integer in the document": (
        lambda b, m: _with_document_text(b, lambda t: t.replace('"minor": 20', '"minor": ' + "9" * 5000)),
        r"^record archive/models/model\.json: .*4300 digits"),
    "giant integer in a weights config": (
        lambda b, m: H.rewrite(b, replace={H.WEIGHTS: json.dumps(H.read_json(b, H.WEIGHTS)).replace(
            '"dtype": 7', '"dtype": ' + "7" * 4400, 1).encode()}),
        r"^record archive/data/weights/model_weights_config\.json.*4300 digits"),
    "duplicate key in the document": (
        lambda b, m: _with_document_text(b, lambda t: t[:-1] + ', "schema_version": {"major": 8, "minor": 20}}'),
        r"^record archive/models/model\.json: .*duplicate key 'schema_version'"),
    "duplicate key in a weights config": (
        lambda b, m: H.rewrite(b, replace={H.WEIGHTS: json.dumps(H.read_json(b, H.WEIGHTS)).replace(
            '"is_param": true', '"is_param": true, "is_param": false', 1).encode()}),
        r"^record archive/data/weights/model_weights_config\.json.*duplicate key 'is_param'"),
    # the config is read by counting colons first (tensor_entries.payload_entries): an entry named
    # twice, the second with a colon in a string, must still fail that proof and be named
    "duplicate entry in a weights config": (
        lambda b, m: H.rewrite(b, replace={H.WEIGHTS: json.dumps(H.read_json(b, H.WEIGHTS)).replace(
            '{"config": {', '{"config": {"w": {"path_name": "a:b", "is_param": true, "use_pickle": false}, ', 1)
            .encode()}),
        r"^record archive/data/weights/model_weights_config\.json.*duplicate key 'w'"),
    # ---- tensor tricks
    "integer parameter that requires gradients": (
        lambda b, m: H.with_meta(b, "w", dtype=5, sizes=H.ints(6), strides=H.ints(1), requires_grad=True),
        r"a torch\.int64 parameter cannot require gradients"),
    "many tensors zero-filled from empty records": (
        lambda b, m: _many_zero_filled(b),
        r"^record archive/data/constants/tensor_9: the record is empty and the empty records of this archive "
        r"already stand for 67108864 bytes of zeros; 67108864 more is over the limit of \d+$"),
    "expression size with a huge power": (
        lambda b, m: _with_document(b, lambda d: d["graph_module"]["graph"]["tensor_values"]["x"]["sizes"].__setitem__(
            0, {"as_expr": {"expr_str": "Pow(Integer(10), Integer(100000000))", "hint": {"as_int": 2}}})),
        r"invalid symbolic expression: Pow of a number would exceed 4300 digits"),
}


def test_the_catalogue_and_the_older_one_hold_enough_cases():
    assert len(CASES) + len(H.CASES) + len(H.SAMPLE_CASES) >= 100


@pytest.mark.parametrize("case", list(CASES))
def test_attack_is_refused(case, base, marker):
    build, message = CASES[case]
    data = build(base, marker)
    with PeakGrowth() as m, pytest.raises(pt2serde.SerializeError, match=message):
        _load(data)
    grown = m.bytes
    # the lies below ask for gigabytes; what may be spent before refusing is the inflation
    # allowance (64 MiB), a private copy of it and slack
    assert grown < 256 << 20, f"refusing it raised the peak RSS by {grown >> 20} MiB"
    assert not marker.exists()


# ================================================ the injections are live: PyTorch runs them


def test_pytorch_runs_the_input_name_injection_at_load(base, marker):
    """What the FX-codegen cases guard against is real: ``torch.export.load`` builds the
    GraphModule, whose generated ``def forward(self, ..., x=<code>)`` runs the code."""
    data = CASES["input name injected into forward()'s signature"][0](base, marker)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.export.load(io.BytesIO(data))
        except Exception:
            pass  # the signature is also a syntax error further down; the default ran first
    assert marker.exists()
    marker.unlink()


def test_pytorch_runs_the_parameter_name_injection_when_the_program_runs(base, marker):
    data = CASES['parameter name breaking out of getattr(self, "...")'][0](base, marker)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.load(io.BytesIO(data))
        try:
            ep.module()(torch.ones(2, 4))
        except Exception:
            pass  # getattr's default was the code; the program then fails on a str
    assert marker.exists()
    marker.unlink()


def test_pytorch_runs_the_subgraph_name_injection_when_the_program_runs(marker):
    data = _rename_value(_cond_archive(), "true_graph_0", f'g", {_exec_bytes(marker)} or "g')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.load(io.BytesIO(data))
        try:
            ep.module()(torch.ones(3))
        except Exception:
            pass  # getattr's default was the code; cond then gets a str
    assert marker.exists()
    marker.unlink()


# ====================================================== SerializedArtifact payloads


@pytest.mark.parametrize("kind,entry,message", [
    ("state_dict", {"type": "pickled_tensor", "meta": _META, "is_param": False},
     r"^state_dict entry 'x': a pickled tensor subclass needs allow_pickle=True$"),
    ("constants", {"type": "script_object", "class_fqn": "__torch__.torch.classes.evil.Obj"},
     r"^constants entry 'x': not a zip archive: .*; only unpickling \(which can run code from the file\) could "
     r"rebuild this torchbind object\. Pass allow_pickle=True if you trust it\.$"),
    ("constants", {"type": "opaque", "class_fqn": "os.system"},
     # read by the safe reader of opaque objects (issue 15), which refuses a call
     r"^posix\.system: an opaque object's class is only instantiated as the pickler makes plain objects "
     r"\(NEWOBJ and a state\), never called .* at byte \d+ of constants entry 'x'$"),
])
def test_artifact_payload_pickles_are_refused(kind, entry, message, marker, monkeypatch):
    """``deserialize`` of a ``SerializedArtifact`` whose payload holds pickles: refused,
    and no unpickler is even called."""
    blob = H.torch_save_with_pickle(H.marker_pickle(marker)) if entry["type"] == "pickled_tensor" \
        else H.marker_pickle(marker)
    artifact = _artifact_with(kind, entry, blob)

    def explode(*args, **kwargs):
        raise AssertionError("an unpickler was called")

    import pickle
    monkeypatch.setattr(pickle, "loads", explode)
    monkeypatch.setattr(torch, "load", explode)
    monkeypatch.setattr(torch._C, "_pickle_load_obj", explode)
    with pytest.raises(pt2serde.SerializeError, match=message):
        pt2serde.deserialize(artifact)


def test_artifact_payload_with_a_giant_integer():
    """A payload header (JSON) holding an integer over CPython's 4300-digit limit."""
    ep = torch.export.export(H._Small(), (torch.ones(2, 4),))
    artifact = pt2serde.serialize(ep)
    header = b'{"kind": ' + b"7" * 4401 + b', "blobs": []}'
    blob = struct.pack("<8sQ", payload_mod.MAGIC, len(header)) + header
    with pytest.raises(pt2serde.SerializeError, match=r"4300 digits"):
        pt2serde.deserialize(dataclasses.replace(artifact, state_dict=blob))


# ====================================================== outcomes that are "load, safely"


def test_symlink_looking_record_is_only_bytes(base, tmp_path):
    """A record whose zip attributes say "symbolic link" is never followed: pt2serde never
    extracts to the file system, so the record is just the bytes it holds."""
    data = H.rewrite(base, add={"extra/link": b"/etc/shadow"})
    at = H.cd_offset_of(data, "extra/link")
    data = H.patched(data, at + 4, "<H", 0x031E)  # made by: unix
    data = H.patched(data, at + 38, "<I", 0o120777 << 16)  # external attributes: S_IFLNK | 0777
    extra: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pt2serde.load(io.BytesIO(data), extra_files=extra)
    assert extra["link"] == "/etc/shadow"


def test_local_header_sizes_are_ignored_the_central_directory_wins(base):
    """The sizes a local header states (zero here: a data descriptor follows) are never used;
    PyTorch's reader also goes by the central directory, so the two agree on every record."""
    reader = ArchiveReader(base)
    header = reader.entry("archive/data/weights/weight_0").header_offset
    data = H.patched(base, header + 18, "<II", 0xFFFFFFF0, 7)
    loaded = _load(data)
    assert torch.equal(loaded.state_dict["w"], torch.arange(12.0).reshape(3, 4))


def test_zero_stride_view_of_four_bytes_is_memory_safe(base):
    """Sizes [2**40] with stride 0 view 4 bytes: every element is in bounds (PyTorch's loader
    takes it), but the tensor stands for 4 TiB, which a copy, a device move or a comparison
    would allocate. An expanded tensor may stand for at most ``extent.MAX_OVERLAPPING_BYTES``
    (64 MiB): refused, without allocating anything (tests/format/test_tensor_extents.py has the rule)."""
    data = H.with_meta(base, "c", sizes=H.ints(1 << 40), strides=H.ints(0))
    with PeakGrowth() as m, pytest.raises(pt2serde.SerializeError, match=r"sizes \[1099511627776\] and strides \[0\] "
                                          r"overlap in storage: 4 stored bytes stand for 4398046511104 bytes of tensor"):
        _load(data)
    assert m.bytes < 64 << 20


class _Big(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2 << 20))  # 8 MiB

    def forward(self, x):
        return x * self.w[:4]


def test_many_programs_naming_one_record_do_not_multiply_memory():
    """16 programs (a few KiB of JSON each) that all name the same 8 MiB weight record, loaded
    from a bytes object with ``load_all``: the record is one storage for all of them (as when
    the archive is mapped from a path), not a copy per program (which made the memory grow
    with the number of documents: 1000 programs would be 8 GiB from an 8 MiB file)."""
    buf = io.BytesIO()
    pt2serde.save(torch.export.export(_Big(), (torch.ones(4),)), buf)
    base = buf.getvalue()
    reader = ArchiveReader(base)
    add = {}
    for i in range(16):
        add[f"models/m{i}.json"] = reader.read("archive/models/model.json")
        add[f"data/weights/m{i}_weights_config.json"] = reader.read("archive/data/weights/model_weights_config.json")
        add[f"data/constants/m{i}_constants_config.json"] = reader.read(
            "archive/data/constants/model_constants_config.json")
        add[f"data/sample_inputs/m{i}.pt"] = reader.read("archive/data/sample_inputs/model.pt")
    data = H.rewrite(base, add=add)
    with PeakGrowth() as m, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        programs = pt2serde.load_all(data)
    grown = m.bytes
    assert len(programs) == 17
    assert all(torch.equal(p.state_dict["w"], torch.ones(2 << 20)) for p in programs.values())
    assert grown < 3 * len(data) + (64 << 20), f"{len(data) >> 20} MiB of file raised the peak RSS by {grown >> 20} MiB"


def test_treespec_enum_never_imports_the_module_it_names(tmp_path):
    """A treespec context naming ``torch:onnx.X`` must not import ``torch.onnx`` (torch's module
    ``__getattr__`` imports lazily): run in a fresh interpreter where it is not imported yet."""
    script = textwrap.dedent("""
        import json, sys
        import torch
        from pt2serde import SerializeError
        from pt2serde.bridge import treespec
        assert "torch.onnx" not in sys.modules
        spec = json.dumps([1, {"type": "builtins.tuple", "children_spec": [],
                               "context": json.dumps({"__enum__": True, "fqn": "torch:onnx.X", "name": "Y"})}])
        try:
            treespec.loads(spec)
        except SerializeError as e:
            print("refused:", e)
        print("imported:", "torch.onnx" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused: treespec names torch:onnx.X.Y, which is not an enum member" in proc.stdout
    assert "imported: False" in proc.stdout
