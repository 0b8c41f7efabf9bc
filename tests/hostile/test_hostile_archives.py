"""Hostile PT2 archives: every one is refused with a ``SerializeError`` that says what is wrong.

Each file is built here, from a real archive pt2serde wrote (records replaced, headers
patched) or from raw zip bytes. What must hold for all of them: nothing from the file
runs (payloads that would run code create a marker file if unpickled, and the marker
never appears), no other exception type escapes, nothing is read out of bounds, and the
memory a load takes stays far below what the file's lies would need.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import struct
import time
import warnings
import zlib
from unittest import mock

import pytest
import torch

import pt2serde
from memory import PeakGrowth
from pt2serde.format import archive as archive_mod
from pt2serde.format import contents as contents_mod
from pt2serde.format import tensor_entries as tensor_entries_mod
from pt2serde.bridge import package as package_mod
from pt2serde.format.archive import ArchiveReader
from pt2serde.format.archive_write import ArchiveWriter
from pt2serde.bridge.torchsave import load_torch_save

# =========================================================================== builders


class _Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.arange(12.0).reshape(3, 4))
        self.register_buffer("b", torch.ones(4))
        self.c = torch.tensor([1.0, 2.0, 3.0, 4.0])

    def forward(self, x):
        return x @ self.w.t() + self.b.sum() + self.c.sum()


@pytest.fixture(scope="module")
def base() -> bytes:
    ep = torch.export.export(_Small(), (torch.ones(2, 4),))
    buf = io.BytesIO()
    pt2serde.save(ep, buf)
    return buf.getvalue()


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "code from the file ran"


class _Call:
    """Pickles as a call of ``fn(*args)``: what a hostile file would put in a pickle."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def marker_pickle(marker) -> bytes:
    return pickle.dumps(_Call(os.system, f"touch {marker}"), protocol=2)


def torch_save_with_pickle(pkl: bytes) -> bytes:
    """A torch.save file (zip) whose ``data.pkl`` is ``pkl``."""
    buf = io.BytesIO()
    torch.save([torch.zeros(2)], buf)
    return rewrite(buf.getvalue(), replace={"data.pkl": pkl})


def rewrite(data: bytes, replace: dict[str, bytes] | None = None, drop: tuple[str, ...] = (),
            add: dict[str, bytes] | None = None) -> bytes:
    """The archive with records replaced, dropped or added (names relative to the root)."""
    reader = ArchiveReader(data)
    root = reader.root_folder()
    out = io.BytesIO()
    with ArchiveWriter(out) as writer:
        for name in reader.names():
            rel = name[len(root) + 1:]
            if rel not in drop:
                writer.add(name, (replace or {}).get(rel, reader.view(name)))
        for rel, value in (add or {}).items():
            writer.add(f"{root}/{rel}", value)
    return out.getvalue()


def read_json(data: bytes, rel: str):
    reader = ArchiveReader(data)
    return json.loads(reader.read(f"{reader.root_folder()}/{rel}"))


WEIGHTS = "data/weights/model_weights_config.json"
CONSTANTS = "data/constants/model_constants_config.json"


def with_config(data: bytes, rel: str, change) -> bytes:
    cfg = read_json(data, rel)
    change(cfg["config"])
    return rewrite(data, replace={rel: json.dumps(cfg).encode()})


def with_meta(data: bytes, fqn: str, **fields) -> bytes:
    rel = WEIGHTS if fqn in ("w", "b") else CONSTANTS

    def change(cfg):
        cfg[fqn]["tensor_meta"].update(fields)
    return with_config(data, rel, change)


def ints(*values):
    return [{"as_int": v} for v in values]


def raw_zip(entries, *, method: int = 0, flags: int = 0) -> bytes:
    """A plain zip of ``(name bytes, data[, declared size])`` records, no checks at all."""
    out = bytearray()
    central = bytearray()
    for entry in entries:
        name, data = entry[0], entry[1]
        body = zlib.compress(data)[2:-4] if method == 8 else data
        usize = entry[2] if len(entry) > 2 else len(data)
        crc = zlib.crc32(data)
        offset = len(out)
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, method, 0, 0, crc, len(body), usize,
                           len(name), 0) + name + body
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, method, 0, 0, crc,
                               len(body), usize, len(name), 0, 0, 0, 0, 0, offset) + name
    cd_offset = len(out)
    out += central
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), cd_offset, 0)
    return bytes(out)


def pt2_zip(extra_entries=(), root=b"archive/") -> list:
    return [(root + b"archive_format", b"pt2"), (root + b"archive_version", b"0"), *extra_entries]


def central_entries(data: bytes) -> list[tuple[int, str]]:
    """(offset of the central-directory entry, name) of every record."""
    reader = ArchiveReader(data)
    eocd = data.rfind(b"PK\x05\x06")
    cd_offset = struct.unpack_from("<I", data, eocd + 16)[0]
    if cd_offset == 0xFFFFFFFF:
        cd_offset = struct.unpack_from("<Q", data, data.rfind(b"PK\x06\x06") + 48)[0]
    out, at = [], cd_offset
    for _ in reader.names():
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, at + 28)
        out.append((at, data[at + 46:at + 46 + name_len].decode()))
        at += 46 + name_len + extra_len + comment_len
    return out


def cd_offset_of(data: bytes, rel: str) -> int:
    return next(at for at, name in central_entries(data) if name.endswith("/" + rel))


def patched(data: bytes, at: int, fmt: str, *values) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, *values)
    return bytes(out)


def load(data, **kw):
    return pt2serde.load(io.BytesIO(data), **kw)


# ======================================================================= the catalogue
# id -> (builder(base, marker) -> bytes, regex the SerializeError message must match)


def _pickled_entry(folder_cfg, fqn, record, payload):
    def build(base, marker):
        rel = WEIGHTS if folder_cfg == "weights" else CONSTANTS
        folder = "data/weights/" if folder_cfg == "weights" else "data/constants/"

        def change(cfg):
            cfg[fqn]["path_name"] = record
            cfg[fqn]["use_pickle"] = True
        data = with_config(base, rel, change)
        reader = ArchiveReader(data)
        name = f"{folder}{record}"
        if f"archive/{name}" in reader:
            return rewrite(data, replace={name: payload(marker)})
        return rewrite(data, add={name: payload(marker)})
    return build


def _opaque_without_flag(base, marker):
    def change(cfg):
        cfg["c"].update(path_name="opaque_obj_0", use_pickle=False, tensor_meta=None)
    return rewrite(with_config(base, CONSTANTS, change), add={"data/constants/opaque_obj_0": marker_pickle(marker)})


def _legacy(rel):
    def build(base, marker):
        return rewrite(base, add={rel: torch_save_with_pickle(marker_pickle(marker))})
    return build


def _eocd_at(data):
    return data.rfind(b"PK\x05\x06")


def _force_zip64(data):
    """The classic end record points to the zip64 one (as for > 65535 records)."""
    return patched(data, _eocd_at(data) + 8, "<HHII", 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)


def _zip64_locator_outside(base, marker):
    data = _force_zip64(base)
    return patched(data, _eocd_at(data) - 20 + 8, "<Q", 1 << 60)


def _zip64_count_lie(base, marker):
    data = _force_zip64(base)
    eocd64 = data.rfind(b"PK\x06\x06")
    return patched(data, eocd64 + 24, "<QQ", 1 << 40, 1 << 40)


def _zip64_count_mismatch(base, marker):
    data = _force_zip64(base)
    eocd64 = data.rfind(b"PK\x06\x06")
    return patched(data, eocd64 + 24, "<Q", 3)


def _zip64_sizes_missing(base, marker):
    at = cd_offset_of(base, "data/weights/weight_0")
    return patched(base, at + 20, "<II", 0xFFFFFFFF, 0xFFFFFFFF)


def _zip64_huge_size(base, marker):
    """A central entry that claims (through a real zip64 extra field) 2**62 bytes."""
    reader = ArchiveReader(base)
    out = io.BytesIO()
    with ArchiveWriter(out) as writer:
        for name in reader.names():
            writer.add(name, reader.view(name))
        records = writer._records
        i = next(i for i, r in enumerate(records) if r[0].endswith("weight_0"))
        name, offset, size, crc = records[i]
        records[i] = (name, offset, (1 << 62), crc)  # the central directory will say 2**62
    return out.getvalue()


def _size_past_end(base, marker):
    at = cd_offset_of(base, "byteorder")
    return patched(base, at + 20, "<II", 1 << 30, 1 << 30)


def _overlap(base, marker):
    at = cd_offset_of(base, "data/weights/weight_0")
    size = struct.unpack_from("<I", base, at + 24)[0]
    return patched(base, at + 20, "<II", size + 100, size + 100)


def _overlap_directory(base, marker):
    at = cd_offset_of(base, ".data/serialization_id")  # the last record, as PyTorch writes it
    return patched(base, at + 20, "<II", 200, 200)


def _local_name_mismatch(base, marker):
    reader = ArchiveReader(base)
    header = reader.entry("archive/data/weights/weight_0").header_offset
    out = bytearray(base)
    out[header + 30 + len("archive/data/weights/weight_")] = ord("7")
    return bytes(out)


def _local_bad_signature(base, marker):
    header = ArchiveReader(base).entry("archive/models/model.json").header_offset
    return patched(base, header, "<4s", b"PK\x09\x09")


def _header_offset_outside(base, marker):
    return patched(base, cd_offset_of(base, "archive_format") + 42, "<I", 0xFFFFFFF0 - 1)


def _bad_central_signature(base, marker):
    return patched(base, cd_offset_of(base, "archive_format"), "<4s", b"XX\x01\x02")


def _encrypted(base, marker):
    return patched(base, cd_offset_of(base, "data/weights/weight_0") + 8, "<H", 0x0809)


def _unsupported_method(base, marker):
    return patched(base, cd_offset_of(base, "data/weights/weight_0") + 10, "<H", 12)


def _stored_size_mismatch(base, marker):
    at = cd_offset_of(base, "data/weights/weight_0")
    return patched(base, at + 20, "<I", 4)


def _bad_name_utf8(base, marker):
    at = cd_offset_of(base, "byteorder")
    return patched(base, at + 46, "<2s", b"\xff\xfe")


def _deflate_larger_than_declared(base, marker):
    reader = ArchiveReader(base)
    entries = [(n.encode(), reader.read(n)) for n in reader.names()]
    data = raw_zip([e for e in entries if not e[0].endswith(b"_weights_config.json")])
    # the weights config inflates to far more than the 100 bytes its entry declares
    cfg = reader.read("archive/data/weights/model_weights_config.json") + b" " * 5_000_000
    bomb = raw_zip([(b"archive/data/weights/model_weights_config.json", cfg, 100)], method=8)
    return _merge(data, bomb)


def _merge(a: bytes, b: bytes) -> bytes:
    """The records of two raw zips in one (recomputing offsets)."""
    def records(z):
        eocd = z.rfind(b"PK\x05\x06")
        count, cd_size, cd_offset = struct.unpack_from("<HII", z, eocd + 10)
        at, out = cd_offset, []
        for _ in range(count):
            csize, usize, name_len, extra_len, comment_len = struct.unpack_from("<IIHHH", z, at + 20)
            method = struct.unpack_from("<H", z, at + 10)[0]
            offset = struct.unpack_from("<I", z, at + 42)[0]
            name = z[at + 46:at + 46 + name_len]
            lname, lextra = struct.unpack_from("<HH", z, offset + 26)
            body = z[offset + 30 + lname + lextra:offset + 30 + lname + lextra + csize]
            out.append((name, body, usize, method, struct.unpack_from("<I", z, at + 16)[0]))
            at += 46 + name_len + extra_len + comment_len
        return out
    out, central = bytearray(), bytearray()
    items = records(a) + records(b)
    for name, body, usize, method, crc in items:
        offset = len(out)
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(body), usize,
                           len(name), 0) + name + body
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc,
                               len(body), usize, len(name), 0, 0, 0, 0, 0, offset) + name
    cd_offset = len(out)
    out += central + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(items), len(items), len(central),
                                 cd_offset, 0)
    return bytes(out)


def _nested(depth):
    def build(base, marker):
        doc = "[" * depth + "]" * depth
        return rewrite(base, replace={WEIGHTS: ('{"config": {"w": ' + doc + "}}").encode()})
    return build


CASES = {
    # ---- pickles that would run code
    "use_pickle weight": (_pickled_entry("weights", "w", "weight_0", lambda m: torch_save_with_pickle(marker_pickle(m))),
                          r"^record archive/data/weights/weight_0 \('w'\) is stored as a pickle; loading it can run "
                          r"code from the file\. Pass allow_pickle=True if you trust this archive\.$"),
    "use_pickle constant": (_pickled_entry("constants", "c", "tensor_0", lambda m: torch_save_with_pickle(marker_pickle(m))),
                            r"^record archive/data/constants/tensor_0 \('c'\) is stored as a pickle"),
    "custom_obj": (_pickled_entry("constants", "c", "custom_obj_0", marker_pickle),
                   r"^record archive/data/constants/custom_obj_0 \('c'\) is stored as a pickle"),
    "opaque_obj": (_pickled_entry("constants", "c", "opaque_obj_0", marker_pickle),
                   r"^record archive/data/constants/opaque_obj_0 \('c'\) is stored as a pickle"),
    "opaque_obj without use_pickle": (_opaque_without_flag,
                                      r"^record archive/data/constants/opaque_obj_0 \('c'\) is stored as a pickle"),
    "legacy weights pickle": (_legacy("data/weights/model.pt"),
                              r"GLOBAL (posix|os)\.system is not an allowed global at byte \d+ of archive/data\.pkl "
                              r"in record archive/data/weights/model\.pt; this record holds objects that only unpickling "
                              r"\(which can run code from the file\) could rebuild\. Pass allow_pickle=True if you "
                              r"trust this archive\.$"),
    "legacy constants pickle": (_legacy("data/constants/model.pt"),
                                r"GLOBAL (posix|os)\.system is not an allowed global at byte \d+ of archive/data\.pkl "
                              r"in record archive/data/constants/model\.pt; this record holds objects that only unpickling "
                              r"\(which can run code from the file\) could rebuild\. Pass allow_pickle=True if you "
                              r"trust this archive\.$"),
    # ---- zip structure lies
    "size past the end": (_size_past_end, r"^record 'archive/byteorder' \(1073741824 bytes at \d+\) runs past the end of the archive"),
    "overlapping records": (_overlap, r"^records 'archive/data/weights/weight_0' and 'archive/data/weights/weight_1' overlap$"),
    "record over the central directory": (_overlap_directory,
                                          r"^record 'archive/\.data/serialization_id' overlaps the central directory$"),
    "local header names another record": (_local_name_mismatch,
                                          r"^record 'archive/data/weights/weight_0': local header names a different record$"),
    "bad local header signature": (_local_bad_signature, r"^record 'archive/models/model\.json': bad local header signature at \d+$"),
    "header offset outside": (_header_offset_outside, r"^record 'archive/archive_format': local header at \d+ lies outside the archive$"),
    "bad central signature": (_bad_central_signature, r"^central directory record \d+ has a bad signature$"),
    "zip64 locator outside": (_zip64_locator_outside, r"^zip64 end-of-central-directory record lies outside the archive$"),
    "zip64 count lie": (_zip64_count_lie, r"^archive declares 1099511627776 records, over the limit of 1048576$"),
    "zip64 count mismatch": (_zip64_count_mismatch, r"^invalid zip64 end-of-central-directory record$"),
    "zip64 sizes missing": (_zip64_sizes_missing,
                            r"^record 'archive/data/weights/weight_0': zip64 sizes are missing from its extra field$"),
    "zip64 huge size": (_zip64_huge_size, r"^record 'archive/data/weights/weight_\d' \(4611686018427387904 bytes at \d+\) "
                                          r"runs past the end of the archive"),
    "encrypted": (_encrypted, r"^record 'archive/data/weights/weight_0' is encrypted$"),
    "unsupported compression": (_unsupported_method,
                                r"^record 'archive/data/weights/weight_0' uses unsupported compression method 12$"),
    "stored size mismatch": (_stored_size_mismatch,
                             r"^stored record 'archive/data/weights/weight_0' declares 4 stored but 48 real bytes$"),
    "name not utf-8": (_bad_name_utf8, r"^record \d+: name is not valid UTF-8$"),
    "inflates past its declared size": (_deflate_larger_than_declared,
                                        r"^record 'archive/data/weights/model_weights_config\.json' inflates to 101 bytes, "
                                        r"not the declared 100$"),
    "not a zip": (lambda b, m: b"hello, this is not a zip archive at all" * 10,
                  r"^the data is a text file \(starting 'hello, this is not a zip'\), not a PT2 archive; pass the "
                  r"\.pt2 file that pt2serde\.save or torch\.export\.save wrote$"),
    "too short": (lambda b, m: b"PK\x05\x06", r"^the data is a cut-short or damaged zip archive \(4 bytes, its zip "
                                            r"directory is missing or broken\): the save or copy that wrote it did "
                                            r"not finish; write it again$"),
    # ---- names
    "duplicate names": (lambda b, m: raw_zip(pt2_zip([(b"archive/x", b"1"), (b"archive/x", b"2")])),
                        r"^duplicate record name 'archive/x'$"),
    "dot-dot name": (lambda b, m: raw_zip(pt2_zip([(b"archive/../../etc/passwd", b"x")])),
                     r"^invalid record name 'archive/\.\./\.\./etc/passwd': empty, '\.' or '\.\.' path segment$"),
    "absolute name": (lambda b, m: raw_zip(pt2_zip([(b"/etc/passwd", b"x")])),
                      r"^invalid record name '/etc/passwd': absolute path$"),
    "drive name": (lambda b, m: raw_zip(pt2_zip([(b"C:/Windows/x", b"x")])), r"^invalid record name 'C:/Windows/x': absolute path$"),
    "backslash name": (lambda b, m: raw_zip(pt2_zip([(b"archive\\..\\x", b"x")])),
                       r"^invalid record name 'archive\\\\\.\.\\\\x': contains NUL or a backslash$"),
    "NUL in name": (lambda b, m: raw_zip(pt2_zip([(b"archive/x\x00.txt", b"x")])),
                    r"^invalid record name 'archive/x\\x00\.txt': contains NUL or a backslash$"),
    "two root folders": (lambda b, m: raw_zip(pt2_zip([(b"other/x", b"x")])),
                         r"^archive records must all live under one top-level folder \(found \['archive', 'other'\]\)$"),
    "record outside any folder": (lambda b, m: raw_zip(pt2_zip([(b"toplevel", b"x")])),
                                  r"^archive records must all live under one top-level folder"),
    # ---- the PT2 layer
    "archive_version wrong": (lambda b, m: rewrite(b, replace={"archive_version": b"1"}),
                              r"^record archive/archive_version: Saved archive version 1 does not match our current "
                              r"archive version 0\.$"),
    "archive_version missing": (lambda b, m: rewrite(b, drop=("archive_version",)),
                                r"^record archive/archive_version: saved archive version missing does not match"),
    "archive_format wrong": (lambda b, m: rewrite(b, replace={"archive_format": b"zip"}),
                             r"^record archive/archive_format: b'zip' is not 'pt2'$"),
    "archive_format missing": (lambda b, m: rewrite(b, drop=("archive_format",)),
                               r"^record archive/archive_format: missing; not a PT2 archive$"),
    "no program": (lambda b, m: rewrite(b, drop=("models/model.json",)),
                   r"^(program 'model' is not in the archive; it holds no program"  # load
                   r"|record archive/models/: the archive holds no program \(no models/<name>\.json record\))$"),
    "weights config missing": (lambda b, m: rewrite(b, drop=(WEIGHTS,)),
                               r"^record archive/data/weights/model_weights_config\.json: the program has no weights config "
                               r"\(record missing\)$"),
    "weight record missing": (lambda b, m: rewrite(b, drop=("data/weights/weight_0",)),
                              r"^record archive/data/weights/model_weights_config\.json: entry 'w' names record 'weight_0', "
                              r"which is missing - at `\$\.config\.w\.path_name`$"),
    "sample inputs missing": (lambda b, m: rewrite(b, drop=("data/sample_inputs/model.pt",)),
                              r"^record archive/data/sample_inputs/model\.pt: sample inputs record is missing$"),
    "config not UTF-8": (lambda b, m: rewrite(b, replace={WEIGHTS: b'{"config": {"\xff\xfe": 1}}'}),
                         r"^record archive/data/weights/model_weights_config\.json is not valid UTF-8 \(byte 13\)$"),
    "config not JSON": (lambda b, m: rewrite(b, replace={WEIGHTS: b'{"config": {'}),
                        r"^record archive/data/weights/model_weights_config\.json is not valid JSON"),
    "config NaN token": (lambda b, m: rewrite(b, replace={WEIGHTS: b'{"config": NaN}'}),
                         r"non-standard token NaN"),
    "config deeply nested": (_nested(100_000), r"^record archive/data/weights/model_weights_config\.json is nested too deeply to parse$"),
    "config nested wrongly": (_nested(50), r"^record archive/data/weights/model_weights_config\.json: .*- at `\$\.config\.w`$"),
    "model document not JSON": (lambda b, m: rewrite(b, replace={"models/model.json": b"\x00" * 10}),
                                r"^record archive/models/model\.json: ExportedProgram document is not valid JSON"),
    # ---- payload metadata that would view memory it must not
    "sizes beyond the record": (lambda b, m: with_meta(b, "w", sizes=ints(3, 40), strides=ints(40, 1)),
                                r"^record archive/data/weights/weight_0: sizes \[3, 40\], strides \[40, 1\] and offset 0 "
                                r"need 480 bytes but the storage holds 48$"),
    "negative stride": (lambda b, m: with_meta(b, "w", strides=ints(-4, 1)),
                        r"^record archive/data/weights/weight_0: negative size, stride or offset \(\[3, 4\], \[-4, 1\], 0\)$"),
    "negative size": (lambda b, m: with_meta(b, "w", sizes=ints(-3, 4)), r"negative size, stride or offset"),
    "negative offset": (lambda b, m: with_meta(b, "w", storage_offset={"as_int": -1}), r"negative size, stride or offset"),
    "overflowing stride": (lambda b, m: with_meta(b, "w", strides=ints(1 << 62, 1)),
                           r"^record archive/data/weights/weight_0: sizes \[3, 4\], strides \[4611686018427387904, 1\] "
                           r"and offset 0 need \d+ bytes but the storage holds 48$"),
    "overflowing sizes": (lambda b, m: with_meta(b, "w", sizes=ints(1 << 40, 1 << 40), strides=ints(0, 0)),
                          r"^record archive/data/weights/weight_0: sizes \[1099511627776, 1099511627776\] hold "
                          r"more than 2\*\*63 elements$"),
    "offset past the end": (lambda b, m: with_meta(b, "w", storage_offset={"as_int": 10}),
                            r"offset 10 need 88 bytes but the storage holds 48$"),
    "empty view past the end": (lambda b, m: with_meta(b, "w", sizes=ints(0), strides=ints(1), storage_offset={"as_int": 1000}),
                                r"^record archive/data/weights/weight_0: storage offset 1000 lies past the end of the "
                                r"storage \(48 bytes\)$"),
    "dtype wider than the record": (lambda b, m: with_meta(b, "w", dtype=8),
                                    r"^record archive/data/weights/weight_0: sizes \[3, 4\], strides \[4, 1\] and offset 0 "
                                    r"need 96 bytes but the storage holds 48$"),
    "unknown dtype": (lambda b, m: with_meta(b, "w", dtype=99), r"\$\.config\.w\.tensor_meta\.dtype"),
    "symbolic size": (lambda b, m: with_meta(b, "w", sizes=[{"as_expr": {"expr_str": "s0"}}, {"as_int": 4}]),
                      r"^record archive/data/weights/weight_0: stored tensors need concrete sizes, strides and offset$"),
    "sizes and strides disagree": (lambda b, m: with_meta(b, "w", strides=ints(1)),
                                   r"^record archive/data/weights/weight_0: 2 sizes but 1 strides$"),
    "path_name escapes the folder": (lambda b, m: with_config(b, WEIGHTS, lambda c: c["w"].update(path_name="../../archive_format")),
                                     r"^record archive/data/weights/model_weights_config\.json: entry 'w' names an invalid "
                                     r"record '\.\./\.\./archive_format' - at `\$\.config\.w\.path_name`$"),
    "path_name absolute": (lambda b, m: with_config(b, WEIGHTS, lambda c: c["w"].update(path_name="/etc/passwd")),
                           r"entry 'w' names an invalid record '/etc/passwd' - at `\$\.config\.w\.path_name`$"),
    "path_name empty": (lambda b, m: with_config(b, WEIGHTS, lambda c: c["w"].update(path_name="")),
                        r"entry 'w' names an invalid record '' - at `\$\.config\.w\.path_name`$"),
    "path_name missing record": (lambda b, m: with_config(b, WEIGHTS, lambda c: c["w"].update(path_name="weight_99")),
                                 r"^record archive/data/weights/model_weights_config\.json: entry 'w' names record "
                                 r"'weight_99', which is missing - at `\$\.config\.w\.path_name`$"),
    "empty record, huge tensor": (lambda b, m: rewrite(with_meta(b, "w", sizes=ints(1 << 20, 1 << 20), strides=ints(1 << 20, 1)),
                                                       replace={"data/weights/weight_0": b""}),
                                  r"^record archive/data/weights/weight_0: the record is empty but the tensor needs "
                                  r"4398046511104 bytes$"),
    "no tensor metadata": (lambda b, m: with_config(b, WEIGHTS, lambda c: c["w"].update(tensor_meta=None)),
                           r"^record archive/data/weights/model_weights_config\.json: entry 'w' has no tensor metadata "
                           r"- at `\$\.config\.w\.tensor_meta`$"),
    "config of the wrong shape": (lambda b, m: rewrite(b, replace={WEIGHTS: b'{"config": [1, 2]}'}),
                                  r"^record archive/data/weights/model_weights_config\.json: .* - at `\$\.config`$"),
    "unknown device": (lambda b, m: with_meta(b, "w", device={"type": "warp_drive", "index": None}), r"warp_drive"),
}


def test_there_are_enough_hostile_files():
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_archive_is_refused(case, base, marker):
    build, message = CASES[case]
    data = build(base, marker)
    with pytest.raises(pt2serde.SerializeError, match=message):
        load(data)
    with pytest.raises(pt2serde.SerializeError, match=message):
        pt2serde.load_all(io.BytesIO(data))


def test_the_marker_pickles_would_really_run_code(marker):
    """The payloads above are live: unpickled for real, they do create the marker."""
    pickle.loads(marker_pickle(marker))
    assert marker.exists()
    marker.unlink()
    torch.load(io.BytesIO(torch_save_with_pickle(marker_pickle(marker))), weights_only=False)
    assert marker.exists()
    marker.unlink()


def test_pytorch_runs_the_code_that_pt2serde_refuses(base, marker):
    """Where we deliberately differ: PyTorch unpickles a ``use_pickle`` record for real."""
    build, message = CASES["use_pickle weight"]
    data = build(base, marker)
    with pytest.raises(pt2serde.SerializeError, match=message):
        load(data)
    assert not marker.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.export.load(io.BytesIO(data))
        except Exception:
            pass  # the pickle returns os.system's exit status, not a tensor
    assert marker.exists()
    marker.unlink()


def test_hostile_pickles_load_only_with_allow_pickle(base, marker):
    build, message = CASES["opaque_obj"]
    data = build(base, marker)
    with pytest.raises(pt2serde.SerializeError, match=message):
        load(data)
    assert not marker.exists()
    try:
        load(data, allow_pickle=True)  # the caller said the file is trusted: it runs
    except Exception:
        pass
    assert marker.exists()
    marker.unlink()


# ========================================================== sample inputs (torch.save)


def _sample_torch_save(value) -> bytes:
    buf = io.BytesIO()
    torch.save(value, buf)
    return buf.getvalue()


def _nested_storage_size_lie() -> bytes:
    data = _sample_torch_save(((torch.arange(4.0),), {}))
    reader = ArchiveReader(data)
    root = reader.root_folder()
    return rewrite(data, replace={"data/0": bytes(8)}) if f"{root}/data/0" in reader else data


SAMPLE_CASES = {
    "marker pickle": (lambda m: torch_save_with_pickle(marker_pickle(m)),
                      r"GLOBAL (posix|os)\.system is not an allowed global"),
    "builtins.eval pickle": (lambda m: torch_save_with_pickle(pickle.dumps(_Call(eval, f"open({str(m)!r}, 'w')"), protocol=2)),
                             r"GLOBAL builtins\.eval is not an allowed global"),
    "storage size lie": (lambda m: _nested_storage_size_lie(),
                         r"holds 8 bytes but its persistent id declares 4 x torch\.float32 = 16 bytes"),
    "nested dot-dot name": (lambda m: raw_zip([(b"archive/data.pkl", pickle.dumps(1)), (b"archive/../x", b"")]),
                            r"invalid record name 'archive/\.\./x'"),
    "nested truncated": (lambda m: _sample_torch_save(((torch.ones(3),), {}))[:-30],
                         r"end-of-central-directory|truncated|outside|past the end"),
    "legacy torch.save format": (lambda m: pickle.dumps(1, protocol=2)[:2] + b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19" + b"rest",
                                 r"legacy \(pre-zip\) torch\.save format is not supported"),
}


@pytest.mark.parametrize("case", list(SAMPLE_CASES))
def test_hostile_sample_inputs_never_run_and_are_refused(case, base, marker):
    """The sample-inputs record is read by pt2serde's safe torch.save reader, which raises a
    SerializeError naming the record; ``load`` raises it too (saying allow_pickle=True is the
    way to load an archive one trusts), and nothing from the file ever runs."""
    build, message = SAMPLE_CASES[case]
    record = build(marker)
    with pytest.raises(pt2serde.SerializeError, match=message):
        load_torch_save(record, what="archive/data/sample_inputs/model.pt")
    data = rewrite(base, replace={"data/sample_inputs/model.pt": record})
    with pytest.raises(pt2serde.SerializeError, match=message + r".*Pass allow_pickle=True if you trust"):
        load(data)
    assert not marker.exists()


# ========================================================================= truncation


@pytest.mark.parametrize("cut", [0, 1, 4, 21, 22, 64, 100, 1000, 2000, 4000, -1, -2, -21, -22, -23, -42, -60, -98, -99,
                                 -150, -400])
def test_truncated_archive(cut, base, tmp_path):
    data = base[:cut] if cut >= 0 else base[:len(base) + cut]
    with pytest.raises(pt2serde.SerializeError) as info:
        load(data)
    assert str(info.value)
    path = tmp_path / "cut.pt2"
    path.write_bytes(data)
    with pytest.raises(pt2serde.SerializeError,
                       match=r"cut\.pt2 is empty \(0 bytes\), not a PT2 archive" if cut == 0 else r"\w"):
        pt2serde.load(path)


def test_truncation_sweep_never_escapes(base):
    """Every 97th cut point, through the whole file."""
    kinds = set()
    for cut in range(0, len(base), 97):
        with pytest.raises(pt2serde.SerializeError) as info:
            load(base[:cut])
        kinds.add(str(info.value).split(":")[0][:40])
    assert len(kinds) >= 2


# ============================================================================ bit flips


def _header_spans(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of every zip structure: local headers, central directory, end records,
    plus the two payload configs (JSON)."""
    reader = ArchiveReader(data)
    spans = []
    for e in reader.entries.values():
        spans.append((e.header_offset, e.data_offset))
        if e.name.endswith("_config.json"):
            spans.append((e.data_offset, e.data_offset + e.size))
    cd_start = min(at for at, _ in central_entries(data))
    spans.append((cd_start, len(data)))
    return spans


def test_seeded_bit_flips_in_headers(base, marker):
    rng = random.Random(20240613)
    spans = _header_spans(base)
    positions = [i for lo, hi in spans for i in range(lo, hi)]
    outcomes = {"loaded": 0, "refused": 0}
    slowest = 0.0
    for _ in range(400):
        data = bytearray(base)
        at = rng.choice(positions)
        data[at] ^= 1 << rng.randrange(8)
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                load(bytes(data))
            outcomes["loaded"] += 1
        except pt2serde.SerializeError as e:
            assert str(e), at
            outcomes["refused"] += 1
        except Exception as e:  # pragma: no cover - the failure message names the flip
            pytest.fail(f"flip at byte {at} raised {type(e).__name__}: {e}")
        slowest = max(slowest, time.perf_counter() - t0)
    assert outcomes["refused"] > 100 and outcomes["loaded"] > 10, outcomes  # flips of unchecked fields are harmless
    assert slowest < 5.0


# ================================================================ limits and memory


def test_config_over_the_size_cap(base, monkeypatch):
    monkeypatch.setattr(tensor_entries_mod, "MAX_CONFIG_BYTES", 100)
    with pytest.raises(pt2serde.SerializeError,
                       match=r"^record 'archive/data/weights/model_weights_config\.json' is \d+ bytes, over the limit of 100$"):
        load(base)


def test_document_over_the_size_cap(base, monkeypatch):
    monkeypatch.setattr(contents_mod, "MAX_DOCUMENT_BYTES", 1000)
    with pytest.raises(pt2serde.SerializeError,
                       match=r"^record 'archive/models/model\.json' is \d+ bytes, over the limit of 1000$"):
        load(base)


def test_too_many_records(monkeypatch):
    monkeypatch.setattr(archive_mod, "MAX_ENTRIES", 3)
    data = raw_zip(pt2_zip([(b"archive/a", b""), (b"archive/b", b"")]))
    with pytest.raises(pt2serde.SerializeError, match=r"^archive declares 4 records, over the limit of 3$"):
        load(data)


def test_lies_about_sizes_allocate_nothing_big(base):
    """Files whose metadata claims terabytes: the peak memory of refusing them stays small."""
    lies = ["overflowing sizes", "overflowing stride", "empty record, huge tensor", "zip64 huge size",
            "size past the end", "zip64 count lie", "inflates past its declared size", "config deeply nested"]
    datas = [CASES[name][0](base, None) for name in lies]
    load(base)  # warm up caches and imports
    with PeakGrowth() as m:
        for data in datas:
            with pytest.raises(pt2serde.SerializeError):
                load(data)
    grown = m.bytes
    assert grown < 64 << 20, f"peak memory grew by {grown >> 20} MiB"


def test_unpickling_is_never_tried_without_allow_pickle(base, marker, monkeypatch):
    """Belt and braces: with the unpicklers patched to explode, no hostile file reaches them."""
    def explode(*args, **kwargs):
        raise AssertionError("an unpickler was called")

    monkeypatch.setattr(pickle, "loads", explode)
    monkeypatch.setattr(pickle, "load", explode)
    monkeypatch.setattr(torch, "load", explode)
    monkeypatch.setattr(torch._C, "_pickle_load_obj", explode)
    for case in ("use_pickle weight", "use_pickle constant", "custom_obj", "opaque_obj", "legacy weights pickle"):
        with pytest.raises(pt2serde.SerializeError):
            load(CASES[case][0](base, marker))
    data = rewrite(base, replace={"data/sample_inputs/model.pt": torch_save_with_pickle(marker_pickle(marker))})
    with pytest.raises(pt2serde.SerializeError, match="posix.system is not an allowed global.*allow_pickle=True"):
        load(data)
    assert not marker.exists()


def test_path_archive_files(base, tmp_path, marker):
    """The same refusals when the hostile archive is a file on disk (mapped, not read)."""
    for case in ("use_pickle weight", "sizes beyond the record", "overlapping records", "dot-dot name"):
        build, message = CASES[case]
        path = tmp_path / "hostile.pt2"
        path.write_bytes(build(base, marker))
        with pytest.raises(pt2serde.SerializeError, match=message):
            pt2serde.load(path)
    with pytest.raises(pt2serde.SerializeError, match=r"^cannot open .*missing\.pt2: No such file or directory$"):
        pt2serde.load(tmp_path / "missing.pt2")
    (tmp_path / "empty.pt2").write_bytes(b"")
    with pytest.raises(pt2serde.SerializeError, match=r"^\S*empty\.pt2 is empty \(0 bytes\), not a PT2 archive: "):
        pt2serde.load(tmp_path / "empty.pt2")


def test_linked_storage_cannot_point_outside_the_payload_folders(base):
    """``pt2serde_shares`` naming anything but a weights or constants record is ignored:
    the entry reads its own record."""
    for target in ("../../archive_format", "models/model.json", "data/weights/../../archive_format"):
        data = with_config(base, CONSTANTS, lambda c, t=target: c["c"].update({package_mod.SHARES_KEY: t}))
        loaded = load(data)
        assert torch.equal(loaded.constants["c"], torch.tensor([1.0, 2.0, 3.0, 4.0])), target


@pytest.mark.parametrize("value,shown", [
    (((1,), [2]), r"\(tuple, list\)"),
    ([1, 2], "list"),
    (((1,), {3: 4}), r"\(tuple, dict\)"),
    (((1,), {}, None), r"\(tuple, dict, NoneType\)"),
])
def test_sample_inputs_that_are_not_args_and_kwargs_are_dropped(value, shown, base):
    """``module()`` calls the program with ``*args, **kwargs`` of the example inputs: a
    record holding anything else would make it fail later, so it is dropped on load."""
    data = rewrite(base, replace={"data/sample_inputs/model.pt": _sample_torch_save(value)})
    with pytest.warns(UserWarning, match=r"^example inputs not loaded: record archive/data/sample_inputs/model\.pt "
                                         r"holds a " + shown + r", not a tuple \(args, kwargs\) with string keyword names$"):
        loaded = load(data)
    assert loaded.example_inputs is None
    torch.testing.assert_close(loaded.module()(torch.ones(2, 4)), _Small()(torch.ones(2, 4)))
