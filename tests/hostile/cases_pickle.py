"""Pickle records that make a reader work without bound or run an imported class's code.

* **Tuple DAGs** (issue 10, finding 6): ``T(i) = (T(i-1), T(i-1))`` through the memo, 64
  levels in about 530 bytes. Used as a dict key, hashing it walks 2**64 tuples (``load``,
  ``load_all``, ``inspect``, ``validate`` and ``diff`` used to hang); as an input value,
  pytree, ``repr`` and ``==`` walk the same expansion. Refused by the work budget of
  :mod:`pt2serde.format.safepickle`, in the bridge reader and the torch-free walker alike.
* **Tuple subclasses with ``_fields``** (finding 5): ``platform.uname_result`` passed for a
  namedtuple; iterating it runs ``uname -p`` in a subprocess. Only plain namedtuples are
  rebuilt now.

Each case puts the pickle in ``data/sample_inputs/model.pt`` of the small base program, or in
``serialized_example_inputs.pt`` / ``serialized_state_dict.pt`` of a PyTorch 2.5.1 archive
(the plain-zip layout).
"""

from __future__ import annotations

import sys
from pathlib import Path

from compat import CORPUS_DIR
from everywhere import TESTS, Case, base_archive

SAMPLE = "data/sample_inputs/model.pt"


def _h():
    sys.path.insert(0, str(TESTS))
    import test_hostile_archives as H

    return H


def dag_pickle(tail: bytes, depth: int = 64) -> bytes:
    """Memo entry ``i`` holds ``T(i)``; ``tail`` builds the result (``h@`` fetches ``T(64)``)."""
    out = b"\x80\x02)q\x000"
    for i in range(depth):
        out += b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86q" + bytes([i + 1]) + b"0"
    return out + tail


#: ((), {T(64): 1}): a 64-level DAG as a keyword-argument key
DAG_KEY = dag_pickle(b")}h@K\x01s\x86.")
#: ((T(64),), {}): the DAG as the program's input
DAG_VALUE = dag_pickle(b"h@\x85}\x86.")
#: {"w": tensor, T(64): 1}: a state dict with the DAG as a key
DAG_STATE_KEY = dag_pickle(b"}h@K\x01s.")
#: ((platform.uname_result('a', ..., 'f'),), {}): its __iter__ spawns `uname -p`
UNAME = (b"\x80\x02cplatform\nuname_result\n(" + b"".join(b"X\x01\x00\x00\x00" + bytes([c]) for c in b"abcdef")
         + b"tR\x85}\x86.")


def _sample(pkl: bytes):
    def build(marker: str) -> bytes:
        H = _h()
        return H.rewrite(base_archive(), replace={SAMPLE: H.torch_save_with_pickle(pkl)})

    return build


def _legacy(record: str, pkl: bytes):
    def build(marker: str) -> bytes:
        from pt2serde.format.archive import ArchiveReader

        H = _h()
        path = sorted((Path(CORPUS_DIR) / "2.5.1").glob("*.pt2"), key=lambda p: p.stat().st_size)[0]
        reader = ArchiveReader(Path(path).read_bytes())
        records = [(n.encode(), H.torch_save_with_pickle(pkl) if n == record else reader.read(n))
                   for n in reader.names()]
        return H.raw_zip(records)

    return build


_KEY = r"a dict key \(tuple\) expands to more than 64 objects when shared references are counted"
_VALUE = r"the result expands to more than 65536 objects when shared references are counted"

CASES = [
    Case("sample inputs: tuple DAG as a dict key", _sample(DAG_KEY), _KEY + r".* in record archive/" + SAMPLE),
    Case("sample inputs: tuple DAG as an input", _sample(DAG_VALUE), _VALUE + r".* in record archive/" + SAMPLE),
    Case("sample inputs: platform.uname_result", _sample(UNAME),
         r"platform\.uname_result has its own __iter__: only plain namedtuples"),
    Case("2.5.1 example inputs: tuple DAG as a dict key", _legacy("serialized_example_inputs.pt", DAG_KEY),
         _KEY + r".* in record serialized_example_inputs\.pt"),
    Case("2.5.1 state dict: tuple DAG as a dict key", _legacy("serialized_state_dict.pt", DAG_STATE_KEY),
         _KEY + r".* in record serialized_state_dict\.pt"),
]
