"""Torchbind records (``data/constants/custom_obj_<i>``) that lie (issue 15).

A torchbind record is the zip ``torch._C._pickle_save`` writes: ``archive/data.pkl`` (TorchScript's
pickle: ``GLOBAL __torch__.torch.classes.<ns> <Name>``, ``NEWOBJ``, the state, ``BUILD``) and a
record per tensor storage. pt2serde reads it with its safe torchbind reader
(:mod:`pt2serde.format.torchbind`, the walk ``load`` and ``validate`` share) and rebuilds the
object through its registered class's ``__setstate__`` (:mod:`pt2serde.bridge.torchbind`). Each case
adds a constant ``obj`` held by such a record to the small base program; the records are written
by hand here (the torchbind test library need not be present):

* a class this process has not registered (``load`` depends on the process: ``validate`` cannot know);
* a registered class whose state calls ``posix.system`` or ``builtins.eval`` (the marker would appear);
* a record naming two classes, and one making a second object of its class;
* a state nested 300 lists deep, and one that expands to 2**64 lists through the memo;
* a tensor in the state reaching past its storage, one with a backward hook, and a storage record
  shorter than its id says;
* data-less ``meta`` storages (how pt2serde writes a fake tensor in a torchbind state) that lie: one
  whose record holds bytes, one declaring 2**63 bytes, a tensor reaching past one.
"""

from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

from everywhere import Case, base_archive

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import test_hostile_archives as H  # noqa: E402
from pt2serde.format.archive_write import ArchiveWriter  # noqa: E402

RECORD = "data/constants/custom_obj_0"


def _text(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _object(state: bytes, ns: str = "_TorchScriptTesting", name: str = "_Foo") -> bytes:
    """TorchScript's pickle of one object of ``ns.name`` whose state the bytes ``state`` push."""
    return b"\x80\x02" + _global(f"__torch__.torch.classes.{ns}", name) + b")\x81" + state + b"b"


def _intlist(*values: int) -> bytes:
    return _global("torch.jit._pickle", "build_intlist") + b"(]" + b"(" + b"".join(
        b"K" + bytes([v]) for v in values) + b"et" + b"R"


def _call(module: str, name: str, arg: str) -> bytes:
    return _global(module, name) + b"(" + _text(arg) + b"tR"


def _int(v: int) -> bytes:
    return b"K" + bytes([v]) if v < 256 else b"\x8a\x09" + v.to_bytes(9, "little", signed=True)


def _tensor(size: int, numel: int = 6, hooks: bytes = b")", location: str = "cpu") -> bytes:
    """``_rebuild_tensor_v2`` of float storage ``0`` at ``location`` (``numel`` floats declared),
    size ``[size]``, backward hooks ``OrderedDict(*hooks)``."""
    pid = b"(" + _text("storage") + _global("torch", "FloatStorage") + _text("0") + _text(location) + \
        _int(numel) + b"tQ"
    return _global("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + b"K\x00(K" + bytes([size]) + \
        b"t(K\x01t\x89" + _global("collections", "OrderedDict") + hooks + b"Rt" + b"R"


def _deep_lists(depth: int) -> bytes:
    return b"]" * depth + b"a" * (depth - 1)


def _list_dag(levels: int) -> bytes:
    """``L(i) = [L(i-1), L(i-1)]`` through the memo: 2**levels lists when expanded."""
    out = b"]q\x000"
    for i in range(levels):
        out += b"]h" + bytes([i]) + b"ah" + bytes([i]) + b"aq" + bytes([i + 1]) + b"0"
    return out + b"h" + bytes([levels])


def _record(pkl: bytes, storage: bytes | None = None) -> bytes:
    out = io.BytesIO()
    with ArchiveWriter(out) as w:
        w.add("archive/data.pkl", pkl + b".")
        w.add("archive/byteorder", b"little")
        w.add("archive/version", b"3\n")
        if storage is not None:
            w.add("archive/data/0", storage)
    return out.getvalue()


_REFUSED = (r"record archive/data/constants/custom_obj_0 \('obj'\) is stored as a pickle that the safe "
            r"torchbind reader refuses \(")


def _case(name: str, pkl_of, refused: str, storage: bytes | None = None, validate: str | None = None) -> Case:
    """The small base program with a constant ``obj`` in the record ``pkl_of(marker)`` makes;
    ``refused`` follows the walk's prefix unless ``validate`` says load depends on the process."""
    def build(marker: str) -> bytes:
        def change(cfg):
            cfg["obj"] = {"path_name": "custom_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None}
        data = H.with_config(base_archive(), H.CONSTANTS, change)
        return H.rewrite(data, add={RECORD: _record(pkl_of(marker), storage)})

    return Case(name, build, refused if validate else _REFUSED + refused, validate=validate)


_FLOATS = struct.pack("<6f", *range(6))

CASES = [
    _case("torchbind: a class this process has not registered",
          lambda m: _object(_intlist(1, 2), "pt2serde_nowhere", "_Missing"),
          r"record archive/data/constants/custom_obj_0: torchbind class __torch__\.torch\.classes\.pt2serde_nowhere\."
          r"_Missing is not registered in this process; load the library that defines it", validate="environment"),
    _case("torchbind: registered class, state calling posix.system",
          lambda m: _object(_call("posix", "system", f"touch {m}")),
          r"GLOBAL posix\.system is not an allowed global at byte 54 of archive/data\.pkl in the record\)"),
    _case("torchbind: registered class, state calling builtins.eval",
          lambda m: _object(_call("builtins", "eval", f"__import__('os').system('touch {m}')")),
          r"GLOBAL builtins\.eval is not an allowed global at byte 54 of archive/data\.pkl in the record\)"),
    _case("torchbind: a record naming two classes",
          lambda m: _object(_global("__torch__.torch.classes._TorchScriptTesting", "_Bar") + b")\x81" + _intlist(1)
                            + b"b"),
          r"the record names two classes, __torch__\.torch\.classes\._TorchScriptTesting\._Foo and "
          r"__torch__\.torch\.classes\._TorchScriptTesting\._Bar: a torchbind record holds one object of one class"),
    _case("torchbind: a second object of the class in its state",
          lambda m: _object(_global("__torch__.torch.classes._TorchScriptTesting", "_Foo") + b")\x81" + _intlist(1)
                            + b"b"),
          r"__torch__\.torch\.classes\._TorchScriptTesting\._Foo: the record makes a second object of class _Foo: "
          r"a torchbind record holds one object, its state only plain data at byte 105 of archive/data\.pkl"),
    _case("torchbind: state nested 300 lists deep", lambda m: _object(_deep_lists(300)),
          r"the state of _TorchScriptTesting\._Foo is nested deeper than 256 levels\)"),
    _case("torchbind: state expanding to 2**64 lists", lambda m: _object(_list_dag(64)),
          r"the state of _TorchScriptTesting\._Foo expands to more than 65536 objects"),
    _case("torchbind: a tensor reaching past its storage", lambda m: _object(_tensor(100)),
          r"torch\._utils\._rebuild_tensor_v2: a float32 tensor of size \[100\], stride \[1\] and storage offset 0 needs 400 bytes but storage '0' "
          r"holds 24", storage=_FLOATS),
    _case("torchbind: a tensor with a backward hook", lambda m: _object(_tensor(6, hooks=b"((" + _text("h") + b"K\x01tlt")),
          r"torch\._utils\._rebuild_tensor_v2: backward hooks must be an empty dict at byte \d+ of archive/data\.pkl",
          storage=_FLOATS),
    _case("torchbind: a storage shorter than its persistent id says", lambda m: _object(_tensor(6, numel=200)),
          r"persistent id: record 'archive/data/0' holds 24 bytes but its persistent id declares 200 x float32 = 800 bytes",
          storage=_FLOATS),
    _case("torchbind: libtorch's own sparse.LinearPackedParamsBase (a lying row pointer died with SIGSEGV)",
          lambda m: _object(_intlist(1, 2), "sparse", "LinearPackedParamsBase"),
          r"sparse\.LinearPackedParamsBase is one of libtorch's own torchbind classes, whose __setstate__ trusts "
          r"its state .* read only with allow_pickle=True"),
    _case("torchbind: a storage named on cpu and on meta", lambda m: _object(
          b"(" + _tensor(6) + _tensor(6, location="meta") + b"t"),
          r"persistent id: storage '0' is named as both float32 on cpu and float32 on meta", storage=_FLOATS),
    _case("torchbind: a meta storage whose record holds bytes", lambda m: _object(_tensor(6, location="meta")),
          r"persistent id: record 'archive/data/0' holds 24 bytes, but a meta storage holds none", storage=_FLOATS),
    _case("torchbind: a meta storage of 2**63 bytes", lambda m: _object(_tensor(6, numel=1 << 61, location="meta")),
          r"persistent id: record 'archive/data/0' declares a meta storage of 9223372036854775808 bytes, past 2\*\*63",
          storage=b""),
    _case("torchbind: a tensor reaching past a meta storage", lambda m: _object(_tensor(100, location="meta")),
          r"torch\._utils\._rebuild_tensor_v2: a float32 tensor of size \[100\], stride \[1\] and storage offset 0 "
          r"needs 400 bytes but storage '0' holds 24", storage=b""),
]

