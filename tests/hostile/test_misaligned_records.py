"""Records at odd addresses: tensors must never hand torch a misaligned pointer.

torch's kernels for 16-byte elements (``complex128``) use aligned vector loads: a tensor
whose data starts at an address that is not a multiple of 16 kills the process with
SIGSEGV on its first ``clone()`` or arithmetic. Archives pt2serde and PyTorch write align
every record to 64 bytes, but a crafted zip may put a record anywhere, and a caller may pass
a ``memoryview`` slice. ``fuzz_payload`` found this (``fuzz/regressions/payload/
complex128-at-odd-address``): such storages must be copied to aligned memory, and only
those (aligned records stay zero-copy views of the file).

Each case loads and computes in a child process, so a regression shows as a failing test
with the signal, not as a dead test run.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

import pt2serde
import test_hostile_archives as H
from pt2serde.bridge import tensors
from pt2serde.format.archive import ArchiveReader
from test_hostile_archives import base  # noqa: F401 - pytest fixture: the small program's archive

ROOT = Path(__file__).resolve().parents[2]
COMPLEX128 = 11  # schema.ScalarType.COMPLEX128


def _run(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter; it must exit 0 (not die of a signal)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode} (negative: killed by that signal)\n{proc.stderr[-3000:]}"
    return proc.stdout


def _misaligned_zip(records: list[tuple[str, bytes]], target: str) -> bytes:
    """A plain zip of ``records`` (no alignment padding) whose ``target`` record's data
    starts at an odd offset."""
    for pad in range(1, 40):
        data = H.raw_zip([(b"archive/.pad", b"x" * pad)] + [(n.encode(), v) for n, v in records])
        if ArchiveReader(data).entry(target).data_offset % 2:
            return data
    raise AssertionError("no padding misaligns the record")


def _complex_weights_archive(base: bytes) -> bytes:
    """The small program of the hostile corpus, its weight record reinterpreted as three
    complex128 values, and a uint8 view of the same record listed first (so a storage
    cached for a 1-byte type would be reused for the 16-byte one)."""
    reader = ArchiveReader(base)
    records = [(n, reader.read(n)) for n in reader.names()]
    cfg_name = f"archive/{H.WEIGHTS}"
    cfg = json.loads(dict(records)[cfg_name])
    w = cfg["config"]["w"]
    w["tensor_meta"].update(dtype=COMPLEX128, sizes=H.ints(3), strides=H.ints(1))
    b = {**cfg["config"]["b"], "path_name": w["path_name"]}
    b["tensor_meta"] = {**w["tensor_meta"], "dtype": 1, "sizes": H.ints(48), "requires_grad": False}
    cfg["config"] = {"b": b, "w": w}
    doc_name = "archive/models/model.json"  # the graph's placeholders say what is stored (load checks them)
    doc = json.loads(dict(records)[doc_name])
    values = doc["graph_module"]["graph"]["tensor_values"]
    values["p_w"].update(dtype=COMPLEX128, sizes=H.ints(3), strides=H.ints(1))
    values["b_b"].update(dtype=1, sizes=H.ints(48), strides=H.ints(1))
    changed = {cfg_name: json.dumps(cfg).encode(), doc_name: json.dumps(doc).encode()}
    records = [(n, changed.get(n, v)) for n, v in records]
    return _misaligned_zip(records, f"archive/data/weights/{w['path_name']}")


def test_pt2_record_at_an_odd_offset_is_copied_to_aligned_memory(base, tmp_path):
    path = tmp_path / "odd.pt2"
    path.write_bytes(_complex_weights_archive(base))
    out = _run("""
        import sys, warnings
        import torch, pt2serde
        warnings.simplefilter("ignore")
        for source in (sys.argv[1], open(sys.argv[1], "rb"), open(sys.argv[1], "rb").read()):
            sd = pt2serde.load(source).state_dict
            w, b = sd["w"], sd["b"]
            assert w.dtype == torch.complex128 and b.dtype == torch.uint8, (w.dtype, b.dtype)
            assert w.untyped_storage().data_ptr() % 16 == 0
            assert w.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()  # still one storage
            expected = torch.arange(12.0).view(torch.complex128)
            assert torch.equal(w.detach().clone(), expected) and torch.equal((w * 2).detach(), expected * 2)
        print("ok")
    """, str(path))
    assert out.strip() == "ok"


def test_aligned_records_stay_views_of_the_file(base, tmp_path):
    """The copy is only for misaligned records: a normal archive's weights view the mapping."""
    path = tmp_path / "m.pt2"
    path.write_bytes(base)
    loaded = pt2serde.load(path)
    ptr = loaded.state_dict["w"].untyped_storage().data_ptr()
    with open("/proc/self/maps") as f:
        mapped = [line for line in f if line.rstrip().endswith(str(path))]
    spans = [tuple(int(x, 16) for x in line.split()[0].split("-")) for line in mapped]
    assert any(lo <= ptr < hi for lo, hi in spans), "the weight should view the mapped file"


def test_torch_save_record_at_an_odd_offset_is_copied_to_aligned_memory(tmp_path):
    value = torch.arange(8.0, dtype=torch.float64).view(torch.complex128)
    buf = io.BytesIO()
    torch.save({"z": value}, buf)
    reader = ArchiveReader(buf.getvalue())
    records = [(n, reader.read(n)) for n in reader.names()]
    storage = next(n for n in reader.names() if n.rsplit("/", 1)[-1].isdigit())
    path = tmp_path / "odd.pt"
    path.write_bytes(_misaligned_zip(records, storage))  # torch.save's records, repacked without alignment
    out = _run("""
        import sys
        import torch
        from pt2serde.bridge.torchsave import load_torch_save
        with open(sys.argv[1], "rb") as f:
            z = load_torch_save(memoryview(bytearray(f.read())), what="odd.pt")["z"]
        assert z.untyped_storage().data_ptr() % 16 == 0
        expected = torch.arange(8.0, dtype=torch.float64).view(torch.complex128)
        assert torch.equal(z.clone(), expected) and torch.equal(z + 1, expected + 1)
        print("ok")
    """, str(path))
    assert out.strip() == "ok"


def test_artifact_payload_in_a_misaligned_buffer_is_copied_to_aligned_memory():
    value = torch.arange(8.0, dtype=torch.float64).view(torch.complex128)
    blob = tensors.encode_payload("state_dict", {"z": value})
    shifted = memoryview(bytearray(b"\0" + bytes(blob)))[1:]
    z = tensors.decode_payload(shifted, what="state_dict").values["z"]
    assert z.untyped_storage().data_ptr() % 16 == 0
    assert torch.equal(z.clone(), value)
