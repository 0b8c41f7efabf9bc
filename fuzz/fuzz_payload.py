"""Fuzz payload metadata -> tensor views, where a lie would read memory it must not.

Two readers, chosen by the first input byte:

* ``config`` (PT2 archives): the input is a ``*_weights_config.json`` / ``*_constants_config.json``
  document (``PayloadConfig``: record names, dtypes, sizes, strides, storage offsets,
  ``pt2serde_shares`` links). It is decoded and applied by ``package._config`` and
  ``package._tensor_entries`` to a fixed archive whose records have awkward sizes (0, 1, 7,
  48, 4096 bytes...), mapped zero-copy from a writable buffer.
* ``artifact`` (``SerializedArtifact`` payloads): the input is a pickle-free payload
  container (``payload.unpack`` + ``tensors.decode_payload``: header JSON, blob table,
  storage table, value tree).

Every tensor that comes back is checked to lie inside its storage and read in full, and the
buffers end at an unreadable page: a view that escaped its bytes faults.

Run: ``python fuzz/fuzz_payload.py -max_total_time=60`` (see ``fuzz/_common.py``).
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

NAME = "payload"
MAX_LEN = 1 << 15
INPUT_TIMEOUT = 10.0
FORBID_CODE = True

_common.import_pt2serde()

import struct  # noqa: E402

import torch  # noqa: E402

import pt2serde  # noqa: E402
from pt2serde.bridge import package, tensors  # noqa: E402

ROOT = "archive"
RECORDS = {
    "data/weights/weight_0": struct.pack("<12f", *range(12)),  # float32 0..11, no numpy needed
    "data/weights/weight_1": bytes(range(16)),
    "data/weights/weight_2": b"",
    "data/weights/weight_3": b"\x01" * 7,
    "data/weights/weight_4": bytes(4096),
    "data/constants/tensor_0": bytes(range(24)),
    "data/constants/tensor_1": b"\xff",
    "data/constants/tensor_2": b"\x00" * 63,
}
CONFIGS = ("data/weights/model_weights_config.json", "data/constants/model_constants_config.json")
MODES = ("config", "config", "artifact")


class _Guarded:
    """A source ``_Archive`` does not take for a caller's buffer (which it would make read-only)."""

    def __init__(self, view: memoryview) -> None:
        self.view = view


def _archive_with(config_rel: str, config: bytes) -> package._Archive:
    """``package._Archive`` over a writable guarded buffer, so tensors view it without a copy
    (as they view the copy-on-write mapping of a path)."""
    records = [(f"{ROOT}/{rel}", data) for rel, data in RECORDS.items()]
    records.append((f"{ROOT}/{config_rel}", config))
    records += [(f"{ROOT}/archive_format", b"pt2"), (f"{ROOT}/archive_version", b"0"),
                (f"{ROOT}/models/model.json", b"{}")]  # an archive holds a program (the document is not read)
    view = _common.guarded(_common.build_zip(records))
    real = package.ArchiveReader
    package.ArchiveReader = lambda source, mmap=None: real(source.view)
    try:
        return package._Archive(_Guarded(view), None)
    finally:
        package.ArchiveReader = real


def _check_values(values, what: str) -> None:
    for key, value in values.items():
        if isinstance(value, torch.Tensor):
            _common.check_tensor_in_bounds(value, f"{what} {key!r}")


def target(data: bytes) -> None:
    if len(data) < 2:
        return
    mode = MODES[data[0] % len(MODES)]
    body = data[2:]
    if mode == "config":
        rel = CONFIGS[data[1] & 1]
        folder = rel.rsplit("/", 1)[0] + "/"
        archive = _archive_with(rel, body)
        config = package._config(archive, f"{ROOT}/{rel}")
        storages = getattr(archive, "storages", None) or package._Storages(archive)
        values = package._tensor_entries(archive, folder, config, storages, False, None)
        _check_values(values, rel)
    else:
        decoded = tensors.decode_payload(_common.guarded(body), what="state_dict")
        _check_values(decoded.values, "payload entry")
        for t in torch.utils._pytree.tree_leaves(decoded.tree):
            if isinstance(t, torch.Tensor):
                _common.check_tensor_in_bounds(t, "payload tree")


def seeds():
    for archive in _common.saved_archives()[:2]:
        for name, value in _common.zip_records(archive):
            for i, rel in enumerate(CONFIGS):
                if name.endswith(rel.rsplit("/", 1)[1]):
                    yield bytes([0, i]) + value
    for path in _common.corpus_archives()[::4]:
        for name, value in _common.zip_records(path.read_bytes()) or []:
            if name.endswith("_config.json"):
                yield bytes([0, int("constants" in name)]) + value
    meta = {"dtype": 7, "sizes": [{"as_int": 3}, {"as_int": 4}], "requires_grad": False,
            "device": {"type": "cpu", "index": None}, "strides": [{"as_int": 4}, {"as_int": 1}],
            "storage_offset": {"as_int": 0}, "layout": 7}
    entry = {"path_name": "weight_0", "is_param": True, "use_pickle": False, "tensor_meta": meta}
    for change in ({}, {"path_name": "weight_3"}, {"path_name": "weight_2"}, {"pt2serde_shares": "data/weights/weight_4"},
                   {"tensor_meta": {**meta, "dtype": 1, "sizes": [{"as_int": 7}], "strides": [{"as_int": 1}]}},
                   {"tensor_meta": {**meta, "storage_offset": {"as_int": 2}, "strides": [{"as_int": 0}, {"as_int": 0}]}},
                   {"tensor_meta": {**meta, "device": {"type": "meta", "index": None}}},
                   {"path_name": "opaque_obj_0"}, {"use_pickle": True}):
        yield bytes([0, 0]) + json.dumps({"config": {"w": {**entry, **change}}}).encode()

    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.arange(12.0).reshape(3, 4))
            self.register_buffer("b", torch.ones(4, dtype=torch.float16))
            self.c = self.w[1:, ::2]

        def forward(self, x, *, k=None):
            return x @ self.w.t() + self.b.sum() + self.c.sum()

    ep = torch.export.export(Small(), (torch.ones(2, 4),), {"k": [1, 2.5, None, "s", torch.zeros(1)]})
    artifact = pt2serde.serialize(ep)
    for blob in (artifact.state_dict, artifact.constants, artifact.example_inputs):
        yield bytes([2, 0]) + blob


if __name__ == "__main__":
    _common.ignore_warnings()
    _common.main(sys.modules[__name__])
