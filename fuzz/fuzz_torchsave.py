"""Fuzz the ``torch.save`` reader: ``torchsave.load_torch_save`` (the zip of a torch.save
record, ``byteorder``, persistent ids and storages) and the restricted pickle machine
under it (``safepickle.load`` with the torch.save allowlist, FakeTensor metadata, namedtuples
of imported modules), as used for ``data/sample_inputs/<model>.pt`` and the whole-dict
weights and constants of PyTorch 2.5-2.8 archives.

The input is a torch.save zip. Seeds: every sample-inputs and legacy weights record of the
compat corpus, torch.save files of many value kinds, and records whose ``data.pkl`` would
run code (create the marker file) under a real unpickler. The mutator rewrites
``data.pkl`` (or another record) of a valid zip most of the time.

Every tensor in the result is checked to lie inside its storage and read in full; the
input buffer ends at an unreadable page.

Run: ``python fuzz/fuzz_torchsave.py -max_total_time=60`` (see ``fuzz/_common.py``).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

NAME = "torchsave"
MAX_LEN = 1 << 16
INPUT_TIMEOUT = 10.0
FORBID_CODE = True

_common.import_pt2serde()

import torch  # noqa: E402

from pt2serde.format import safepickle

from pt2serde import schema  # noqa: E402
from pt2serde.bridge.symbolic import SymbolicContext  # noqa: E402
from pt2serde.bridge.torchsave import load_torch_save  # noqa: E402

Point = collections.namedtuple("Point", "x y")  # an imported namedtuple: the reader may build it
_context = [None, 0]


def _fake_tensor(meta: schema.TensorMeta) -> torch.Tensor:
    if _context[0] is None or _context[1] > 500:  # a fresh shape env now and then (it grows)
        _context[:] = [SymbolicContext({}), 0]
    _context[1] += 1
    return _context[0].fake_tensor(meta)


def target(data: bytes) -> None:
    value = load_torch_save(_common.guarded(data), what="archive/data/sample_inputs/model.pt",
                            fake_tensor=_fake_tensor)
    safepickle.check_tree(value)
    for leaf in torch.utils._pytree.tree_leaves(value):
        if isinstance(leaf, torch.Tensor) and not _common.is_fake(leaf):
            _common.check_tensor_in_bounds(leaf, "loaded tensor")


def _prefer(name: str) -> float:
    return 6.0 if name.endswith("data.pkl") else 1.0


mutate = _common.zip_mutator(_prefer)


def _saved(value, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(value, buf, **kw)
    return buf.getvalue()


def seeds():
    seen = set()
    for path in _common.corpus_archives():
        for name, value in _common.zip_records(path.read_bytes()) or []:
            if name.endswith(".pt") and value not in seen and len(value) < MAX_LEN:
                seen.add(value)
                yield value
    t = torch.arange(6.0).reshape(2, 3)
    values = [
        ((t,), {}), ((t, t[1:], t.t()), {"k": torch.ones(2, dtype=torch.bfloat16)}),
        collections.OrderedDict(a=torch.nn.Parameter(t.clone()), b=torch.zeros(3, dtype=torch.int64)),
        ((Point(1, torch.ones(2)),), {}), [1, 2.5, None, True, "s", b"b", (1,), {1, 2}, frozenset({3}), 1 + 2j],
        ((torch.zeros(2, 2, dtype=torch.complex64), torch.tensor([True, False]), torch.empty(0)), {}),
        ((torch.ones(4, dtype=torch.float8_e4m3fn), torch.ones(2, dtype=torch.uint16)), {}),
        ((torch.ones(3, 4).to(memory_format=torch.channels_last) if False else torch.ones(2, 3, 4, 5).to(
            memory_format=torch.channels_last),), {}),
        torch.device("cpu"), torch.Size([2, 3]), torch.float16, slice(1, 2),
        ((torch.empty(2, 3, device="meta"),), {}),
    ]
    for value in values:
        yield _saved(value)
    yield _saved(((t,), {}), _use_new_zipfile_serialization=True, pickle_protocol=2)
    q = torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.qint8)
    yield _saved(((q,), {}))
    yield _saved(((torch.ones(3).to_sparse(),), {}))
    tagged = torch.ones(2)
    tagged.note = "attribute"
    yield _saved(((tagged,), {}))
    records = _common.zip_records(_saved(((t,), {})))
    yield _common.build_zip([(n, b"big" if n.endswith("byteorder") else v) for n, v in records])
    for protocol in range(6):
        yield _common.torch_save_with_pickle(_common.marker_pickle(protocol))
    yield _common.torch_save_with_pickle(pickle.dumps(((eval,), {}), protocol=2))


if __name__ == "__main__":
    _common.ignore_warnings()
    _common.main(sys.modules[__name__])
