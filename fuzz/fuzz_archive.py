"""Fuzz the archive readers end to end: ``archive.ArchiveReader`` (the zip layer: every
record viewed and its CRC checked), ``check.check_archive`` (what ``pt2serde validate``
runs), ``inspection.inspect_archive`` (``pt2serde inspect --json``), and ``pt2serde.load_all``
(documents, payload configs, tensor views, sample inputs, the graph rebuild), on whole PT2
archives; then, for every program that loaded, what a user does next: ``ep.module()`` and a
call of it on the program's sample inputs, ``torch.export.unflatten(ep)`` and a call, and
``ep.run_decompositions()`` (on the first and then every :data:`DECOMPOSE_EVERY`-th program
that loads: it costs ~0.6 s, ten times a load). Code torch generates on the way is judged
by ``_codegen_oracle.py``; a torch exception from these steps is counted as a gap (see
``_common.entry_point``).

Seeds: every archive of the compat corpus (``compat-corpus/*/*.pt2``, written by
PyTorch 2.5-2.14) and archives saved by pt2serde, plus copies whose weights are pickles
that would create the marker file. The mutator rewrites one record of a valid zip most of
the time (so mutations reach the JSON and pickle readers), or the raw bytes.

Run: ``python fuzz/fuzz_archive.py -max_total_time=60`` (see ``fuzz/_common.py``).
"""

from __future__ import annotations

import io
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

NAME = "archive"
MAX_LEN = 1 << 16
INPUT_TIMEOUT = 20.0
# compile/exec are judged by the shared oracle: torch.fx and torch.export._unlift may compile
# the code they generate, if it passes _codegen_oracle.code_violations; torch's own templates pass
FORBID_CODE = True
#: run_decompositions on the 1st, (N+1)th, (2N+1)th... program that loads (PT2SERDE_FUZZ_DECOMPOSE_EVERY)
DECOMPOSE_EVERY = int(os.environ.get("PT2SERDE_FUZZ_DECOMPOSE_EVERY", "10"))

_common.import_pt2serde()

import torch  # noqa: E402

import pt2serde  # noqa: E402
from pt2serde.format import check
from pt2serde.cli import inspection  # noqa: E402
from pt2serde.format.archive import ArchiveReader  # noqa: E402
from pt2serde.format.contents import Pt2Archive  # noqa: E402


if (_common.COMPAT_CORPUS / "corpus_ops.py").is_file():  # the corpus' custom ops, so those programs load
    sys.path.insert(0, str(_common.COMPAT_CORPUS))
    import corpus_ops  # noqa: E402,F401


_loaded = [0]  # programs that loaded so far (the decomposition schedule)


def target(data: bytes) -> None:
    try:
        reader = ArchiveReader(data)
        for name in reader.names():
            reader.view(name, max_size=16 << 20)
            reader.verify_crc(name)
        check.check_archive(reader)
        json.dumps(inspection.inspect_archive(Pt2Archive(reader)))  # what `pt2serde inspect --json` prints
    except pt2serde.SerializeError:
        pass  # load_all reads the archive on its own (it accepts the legacy layout validate refuses)
    programs = pt2serde.load_all(io.BytesIO(data))
    for name, ep in programs.items():
        for fqn, t in [*ep.state_dict.items(), *ep.constants.items()]:
            if isinstance(t, torch.Tensor):
                _common.check_tensor_in_bounds(t, f"{name}: {fqn}")
        if ep.example_inputs is not None:
            for t in torch.utils._pytree.tree_leaves(ep.example_inputs):
                if isinstance(t, torch.Tensor) and not _common.is_fake(t):
                    _common.check_tensor_in_bounds(t, f"{name}: example input")
    for ep in programs.values():
        use(ep)


def use(ep) -> None:
    """What a user does with a program that loaded: every step must succeed, end in a
    SerializeError, or fail with a torch error that the oracle counts as a gap."""
    inputs = ep.example_inputs
    if inputs is not None and any(_common.is_fake(t) for t in torch.utils._pytree.tree_leaves(inputs)):
        inputs = None  # symbolic sample inputs: nothing to call with
    args, kwargs = inputs if inputs is not None else ((), {})
    module = _common.entry_point("module", ep.module)
    if module is not None and inputs is not None:
        _common.entry_point("module_call", lambda: module(*args, **kwargs))
    flat = _common.entry_point("unflatten", lambda: torch.export.unflatten(ep))
    if flat is not None and inputs is not None:
        _common.entry_point("unflatten_call", lambda: flat(*args, **kwargs))
    _loaded[0] += 1
    if DECOMPOSE_EVERY > 0 and _loaded[0] % DECOMPOSE_EVERY == 1 % DECOMPOSE_EVERY:
        _common.entry_point("run_decompositions", ep.run_decompositions)


def warm_up() -> None:
    """Every step once on archives pt2serde saves, before the oracle is armed: torch and
    sympy compile templates of their own on first use (lazy imports), not the input's doing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for data in _common.saved_archives():
            for ep in pt2serde.load_all(io.BytesIO(data)).values():
                _loaded[0] = 0  # each one decomposed
                use(ep)
    _loaded[0] = 0


def _prefer(name: str) -> float:
    if name.endswith(".json"):
        return 4.0
    if name.endswith(".pt") or "/data/" in name and name.rsplit("/", 1)[-1] in ("data.pkl",):
        return 2.0
    return 1.0


mutate = _common.zip_mutator(_prefer)


def seeds():
    archives = [p.read_bytes() for p in _common.corpus_archives()]
    saved = _common.saved_archives()
    yield from saved
    yield from archives
    base = saved[0]
    records = _common.zip_records(base)
    pickled = _common.torch_save_with_pickle(_common.marker_pickle())
    # a weight stored as a pickle (use_pickle) and as an opaque object: must be refused
    for record, flag in (("weight_0", True), ("opaque_obj_0", False)):
        out = []
        for name, value in records:
            if name.endswith("model_weights_config.json"):
                cfg = json.loads(value)
                first = next(iter(cfg["config"]))
                cfg["config"][first].update(path_name=record, use_pickle=flag)
                value = json.dumps(cfg).encode()
            elif name.endswith("data/weights/weight_0") and record == "weight_0":
                value = pickled
            out.append((name, value))
        if record != "weight_0":
            out.append(("archive/data/weights/" + record, _common.marker_pickle()))
        yield _common.build_zip(out)
    yield _common.build_zip([(n, pickled if n.endswith("sample_inputs/model.pt") else v) for n, v in records])


if __name__ == "__main__":
    _common.ignore_warnings()
    _common.main(sys.modules[__name__])
