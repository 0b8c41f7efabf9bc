"""``pt2serde diff``: what differs between two program archives (torch-free).

Either side may be a PT2 archive or the plain zip of PyTorch 2.5-2.7: older documents are
upgraded before they are compared (their schema versions as written are compared as
metadata), and tensors stored as raw records and as ``torch.save`` records are compared
by value all the same. Programs are matched by name; for each pair the report lists

* **archive**: the layout (PT2 archive or plain zip), when it differs;
* **metadata**: schema (as written) and torch versions, opsets, verifiers;
* **signature**: user inputs and outputs by position (name, kind, dtype, shape), what the
  program mutates, and the ranges of its dynamic dimensions;
* **graph**: both graphs are put in canonical form (:func:`pt2serde.canonicalize`), so
  value names, node order among independent nodes and node metadata (stack traces) are
  not differences. What remains is shown as an operator count delta and a node diff;
* **weights** / **constants**: entries added or removed, changed dtype or shape, and
  changed values with the number of elements that differ and the largest absolute
  difference;
* **sample inputs** (their summary) and **extra files**.

Values are compared lazily: raw bytes first, chunk by chunk straight from the mapped
files; only the 64 KiB blocks whose bytes differ are decoded to compute differences
(with numpy when it can be imported, else with ``memoryview`` casts; bfloat16 is widened
into float32; float8 formats are compared as bytes and reported as "values differ").
"""

from __future__ import annotations

import difflib
import math
import struct
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

from .. import schema
from ..format.canonical import canonicalize
from ..format.contents import LAYOUT_TEXT, Pt2Archive
from ..format.problem import Problem
from ..format.tensor_bytes import byte_chunks, tensor_chunks
from ..format.tensor_entries import TensorEntry
from ..format.tables import BY_NAME, DTYPES, device_text, sym_text
from ..errors import SerializeError
from .term import safe
from .inspection import describe_value, sample_inputs_info

__all__ = ["Change", "Comparer", "diff_archives", "compare_tensors", "render"]

BLOCK = 64 << 10
CHUNK = 16 << 20
#: tensor bytes one diff run may read: this many times the payload records of both archives...
COMPARE_RATIO = 4
#: ... plus this much
COMPARE_ALLOWANCE = 64 << 20
MAX_NODE_LINES = 40

try:  # optional: vectorised decoding of differing blocks
    import numpy as _np
except ImportError:  # pragma: no cover - exercised by a test that hides numpy
    _np = None


@dataclass
class Change:
    """One difference. ``section``: archive, metadata, signature, graph, weights, constants,
    sample_inputs, extra_files or programs; ``kind``: added, removed or changed."""

    section: str
    kind: str
    subject: str
    detail: str = ""
    program: str | None = None
    data: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"section": self.section, "kind": self.kind, "subject": self.subject, "detail": self.detail,
                "program": self.program, **({"data": self.data} if self.data else {})}


# ====================================================================== values


def _np_dtype(fmt: str):
    return _np.dtype("?" if fmt == "?" else "<" + fmt)  # records are little-endian


def _decode_np(block: memoryview, fmt: str):
    if fmt == "bf16":
        return (_np.frombuffer(block, _np.uint16).astype(_np.uint32) << 16).view(_np.float32)
    if fmt.startswith("c:"):
        flat = _np.frombuffer(block, _np_dtype(fmt[2:])).astype(_np.float64)
        return flat[0::2] + 1j * flat[1::2]
    return _np.frombuffer(block, _np_dtype(fmt))


def _unpack(block: memoryview, fmt: str) -> tuple:
    # struct, not memoryview.cast: cast refuses 'e' (float16); '<' also fixes the byte order
    return struct.unpack(f"<{block.nbytes // struct.calcsize(fmt)}{fmt}", block)


def _decode_py(block: memoryview, fmt: str) -> list:
    if fmt == "bf16":  # the upper half of a float32: widen by shifting into place
        widened = struct.pack(f"<{block.nbytes // 2}I", *(x << 16 for x in _unpack(block, "H")))
        return list(_unpack(memoryview(widened), "f"))
    if fmt.startswith("c:"):
        flat = _unpack(block, fmt[2:])
        return [complex(r, i) for r, i in zip(flat[0::2], flat[1::2])]
    return list(_unpack(block, fmt))


def _same_value(x: Any, y: Any) -> bool:
    return x == y or (x != x and y != y)  # NaN equals NaN here: same "value"


def _block_stats(a: memoryview, b: memoryview, fmt: str | None, keep=None) -> tuple[int, float | int | None]:
    """(elements that differ, max |a - b|) of two equal-length blocks; max is None if not decodable.
    ``keep``: one bool per element, the elements to count (default: all)."""
    if fmt is None:
        return sum(1 for i, (x, y) in enumerate(zip(bytes(a), bytes(b))) if x != y and (keep is None or keep[i])), None
    if _np is not None:
        va, vb = _decode_np(a, fmt), _decode_np(b, fmt)
        if va.dtype.kind in "fc":
            differ = ~((va == vb) | (_np.isnan(va) & _np.isnan(vb)))
        else:
            differ = va != vb
        if keep is not None:
            differ &= _np.asarray(keep, bool)
        count = int(differ.sum())
        if not count:
            return 0, 0
        xa, xb = va[differ], vb[differ]
        if va.dtype.kind == "b":
            return count, 1
        if va.dtype.kind in "iu":
            return count, max(abs(int(x) - int(y)) for x, y in zip(xa.tolist(), xb.tolist()))
        with _np.errstate(invalid="ignore", over="ignore"):
            diffs = _np.abs(xa.astype(_np.complex128 if va.dtype.kind == "c" else _np.float64) - xb)
        return count, float(_np.nan if _np.isnan(diffs).any() else diffs.max())
    va, vb = _decode_py(a, fmt), _decode_py(b, fmt)
    count = 0
    worst: float | int = 0
    for i, (x, y) in enumerate(zip(va, vb)):
        if _same_value(x, y) or (keep is not None and not keep[i]):
            continue
        count += 1
        try:
            d = abs(x - y)
        except OverflowError:
            d = math.inf
        if d != d or worst != worst:
            worst = math.nan
        elif d > worst:
            worst = d
    if fmt == "?" and count:
        worst = 1
    return count, worst


def _bytes_equal(a: memoryview, b: memoryview) -> bool:
    n = a.nbytes
    if n != b.nbytes:
        return False
    if n % 8 == 0 and n:
        return a.cast("Q") == b.cast("Q")
    return a == b


def _paired(ita: Iterator[memoryview], itb: Iterator[memoryview]) -> Iterator[tuple[memoryview, memoryview]]:
    """Two chunk streams of equal total length, re-cut into pairs of equal-length pieces."""
    a = b = memoryview(b"")
    while True:
        if not a.nbytes:
            a = next(ita, None)
            if a is None:
                return
        if not b.nbytes:
            b = next(itb, None)
            if b is None:
                return
        n = min(a.nbytes, b.nbytes)
        yield a[:n], b[:n]
        a, b = a[n:], b[n:]


def _keep(cover: bytes, first: int, count: int):
    """Bits ``first .. first + count`` of the little-endian bitset ``cover`` (one per element)."""
    if _np is not None:
        bits = _np.unpackbits(_np.frombuffer(cover, _np.uint8, (first + count + 7) // 8 - first // 8, first // 8),
                              bitorder="little")
        return bits[first % 8:first % 8 + count].astype(bool)
    return [bool(cover[(first + i) >> 3] >> ((first + i) & 7) & 1) for i in range(count)]


def _reduce(a: TensorEntry, b: TensorEntry) -> tuple[list[int], list[int], list[int], int]:
    """(sizes, strides of a, strides of b, repeat): the views without the dimensions that add no
    values: size 1, or stride 0 on both sides (each value then repeats ``repeat`` times)."""
    sizes, sa, sb = [], [], []
    repeat = 1
    for n, x, y in zip(a.sizes, a.strides, b.strides):
        if n != 1 and (x or y):
            sizes.append(n)
            sa.append(x)
            sb.append(y)
        else:
            repeat *= n
    return sizes, sa, sb, repeat


def _one_to_one(sizes: list[int], strides: list[int]) -> bool:
    """Every element of the view has a storage element of its own (no two share one)."""
    reach = 0
    for n, s in sorted(zip(sizes, strides), key=lambda d: d[1]):
        if s <= reach:
            return False
        reach += (n - 1) * s
    return True


def _coverage(sizes: list[int], strides: list[int]) -> int:
    """The storage elements a view reaches, relative to its first, as a bitset. Each
    dimension is a union of shifted copies, built by doubling: O(log size) big-int
    operations on bits as wide as the view's span (bounded by the record, not by numel)."""
    cover = 1
    for n, s in zip(sizes, strides):
        total, block, have, shift = 0, cover, 1, 0
        while n:
            if n & 1:
                total |= block << shift
                shift += have * s
            block |= block << (have * s)
            have *= 2
            n >>= 1
        cover = total
    return cover


class _Spent(Exception):
    pass


_SPENT = "not compared: diff's budget for reading tensor data is spent"


class Comparer:
    """Compares tensor values for one ``diff`` run within a budget of bytes read.

    Work is bounded by the records, never by what views claim: two tensors with the same
    dtype, sizes, strides and offset are equal iff the storage elements their views reach
    are; a pair of storages whose bytes are all equal is found so once (cached), and then
    every view of it is equal without reading anything; otherwise a view reads only the span
    it reaches. Views whose layouts differ are compared element by element in logical order,
    up to the larger record's size (what a view that does not repeat elements can hold);
    past that the report says how many elements were compared. Every byte read counts
    toward :attr:`budget` (:data:`COMPARE_RATIO` x the payload records of both archives +
    :data:`COMPARE_ALLOWANCE`), so a file with many entries naming one record costs at most
    a few passes over its records.
    """

    def __init__(self, arch_a: Pt2Archive, arch_b: Pt2Archive,
                 progress: Callable[[int], None] | None = None) -> None:
        self.arch_a, self.arch_b = arch_a, arch_b
        self.progress = progress
        self.budget = COMPARE_RATIO * (total_bytes(arch_a) + total_bytes(arch_b)) + COMPARE_ALLOWANCE
        self._same: dict[tuple, bool] = {}
        self._results: dict[tuple, dict | None] = {}

    def _spend(self, n: int) -> None:
        if n > self.budget:
            raise _Spent()
        self.budget -= n
        if self.progress is not None:
            self.progress(n // 2)

    def compare(self, a: TensorEntry, b: TensorEntry) -> dict | None:
        """None when both tensors hold the same values, else ``{"differ", "elements",
        "max_abs_diff"}`` (and ``"note"`` when the counts are not whole-tensor counts).
        Both entries have the same dtype and sizes, and geometry checked against their storages."""
        if (a.record_size == 0) != (b.record_size == 0):
            return {"differ": None, "elements": a.numel, "max_abs_diff": None,
                    "note": "one side stores no data (loads as zeros)"}
        if a.record_size == 0 or a.numel == 0:
            return None
        dims = _reduce(a, b)
        key = (a.storage_id, b.storage_id, a.dtype, a.storage_offset, b.storage_offset,
               *map(tuple, dims[:3]), dims[3])
        if key not in self._results:
            try:
                if a.strides == b.strides and a.storage_offset == b.storage_offset:
                    result = None if self._storages_equal(a, b) else self._same_layout(a, b, dims)
                else:
                    result = self._logical(a, b, dims)
            except _Spent:
                result = {"differ": None, "elements": a.numel, "max_abs_diff": None,
                          "note": _SPENT}
            self._results[key] = result
        return self._results[key]

    def _storages_equal(self, a: TensorEntry, b: TensorEntry) -> bool:
        key = (a.storage_id, b.storage_id)
        if key not in self._same:
            same = a.record_size == b.record_size
            if same:
                self._spend(2 * a.record_size)
                same = all(_bytes_equal(pa, pb) for pa, pb in _paired(
                    byte_chunks(self.arch_a, a, 0, a.record_size, CHUNK),
                    byte_chunks(self.arch_b, b, 0, b.record_size, CHUNK)))
            self._same[key] = same
        return self._same[key]

    def objects_equal(self, a: TensorEntry, b: TensorEntry) -> bool | None:
        """Whether two stored objects (pickles) have the same bytes; None: over budget."""
        try:
            return self._storages_equal(a, b)
        except _Spent:
            return None

    def _same_layout(self, a: TensorEntry, b: TensorEntry, dims: tuple) -> dict | None:
        """Compare the storage elements the (common) view reaches, block by block."""
        sizes, strides, _, repeat = dims
        item = BY_NAME[a.dtype].itemsize
        reach = sum((n - 1) * s for n, s in zip(sizes, strides)) + 1  # elements from the first
        one_to_one = _one_to_one(sizes, strides)
        dense = one_to_one and math.prod(sizes) == reach
        cover = None if dense else _coverage(sizes, strides)
        cover_bytes = None if cover is None else cover.to_bytes((reach + 7) // 8, "little")
        self._spend(2 * reach * item)
        start = a.storage_offset * item
        stats = _Stats()
        at = 0  # element index of the current piece, relative to the first
        chunk = max(item, CHUNK - CHUNK % item)
        for pa, pb in _paired(byte_chunks(self.arch_a, a, start, reach * item, chunk),
                              byte_chunks(self.arch_b, b, start, reach * item, chunk)):
            if not _bytes_equal(pa, pb):
                step = max(item, BLOCK - BLOCK % item)
                for i in range(0, pa.nbytes, step):
                    ba, bb = pa[i:i + step], pb[i:i + step]
                    if ba != bb:
                        keep = None if cover_bytes is None else _keep(cover_bytes, at + i // item, ba.nbytes // item)
                        stats.add(*_block_stats(ba, bb, BY_NAME[a.dtype].fmt, keep))
            at += pa.nbytes // item
        if not stats.differ:
            return None
        if one_to_one:
            return {"differ": stats.differ * repeat, "elements": a.numel, "max_abs_diff": stats.worst}
        return {"differ": stats.differ, "elements": a.numel, "max_abs_diff": stats.worst, "stored": cover.bit_count(),
                "note": "the view repeats storage elements; counted in storage elements"}

    def _logical(self, a: TensorEntry, b: TensorEntry, dims: tuple) -> dict | None:
        """Element by element in logical order: the layouts differ."""
        sizes, sa, sb, repeat = dims
        ra = replace(a, sizes=sizes, strides=sa)
        rb = replace(b, sizes=sizes, strides=sb)
        item = BY_NAME[a.dtype].itemsize
        total = math.prod(sizes) * item
        limit = min(total, max(a.record_size, b.record_size, BLOCK))
        limit -= limit % item
        self._spend(2 * limit)
        fmt = BY_NAME[a.dtype].fmt
        stats = _Stats()
        done = 0
        step = max(item, BLOCK - BLOCK % item)
        chunk = max(item, min(CHUNK, limit))  # gather no more than the limit
        for pa, pb in _paired(tensor_chunks(self.arch_a, ra, chunk), tensor_chunks(self.arch_b, rb, chunk)):
            pa, pb = pa[:limit - done], pb[:limit - done]
            if not _bytes_equal(pa, pb):
                for i in range(0, pa.nbytes, step):
                    ba, bb = pa[i:i + step], pb[i:i + step]
                    if ba != bb:
                        stats.add(*_block_stats(ba, bb, fmt))
            done += pa.nbytes
            if done >= limit:
                break
        if done < total:
            compared = f"compared the first {done // item:,} of {a.numel:,} elements"
            return {"differ": stats.differ or None, "elements": a.numel, "max_abs_diff": stats.worst,
                    "compared": done // item,
                    "note": f"{compared}: their layouts differ, and the rest would read more than the records hold"}
        if not stats.differ:
            return None
        return {"differ": stats.differ * repeat, "elements": a.numel, "max_abs_diff": stats.worst}


class _Stats:
    """Differing elements and the largest absolute difference, over blocks."""

    def __init__(self) -> None:
        self.differ = 0
        self.worst: float | int | None = 0

    def add(self, count: int, d: float | int | None) -> None:
        self.differ += count
        if d is None or self.worst is None:
            self.worst = None
        elif d != d or self.worst != self.worst:
            self.worst = math.nan
        else:
            self.worst = max(self.worst, d)


def compare_tensors(arch_a: Pt2Archive, a: TensorEntry, arch_b: Pt2Archive, b: TensorEntry,
                    progress: Callable[[int], None] | None = None) -> dict | None:
    """None when both tensors hold the same values, else ``{"differ", "elements", "max_abs_diff"}``
    (one comparison; :func:`diff_archives` shares one :class:`Comparer` across entries)."""
    return Comparer(arch_a, arch_b, progress).compare(a, b)


# ==================================================================== sections


def _fmt_value(item: dict) -> str:
    kind = item["kind"]
    if kind == "tensor":
        shape = "?" if item.get("shape") is None else ", ".join(str(s) for s in item["shape"])
        return f"{item.get('dtype')}[{shape}]"
    if kind in ("sym_int", "sym_float", "sym_bool"):
        return f"{kind.replace('_', '')} {item.get('expr') or item.get('value')!r}"
    if kind in ("tensors", "optional_tensors"):
        return "(" + ", ".join(_fmt_value(x) if x["kind"] != "none" else "None" for x in item["items"]) + ")"
    return f"{kind} {item.get('value')!r}"


def _signature_side(doc: schema.ExportedProgram) -> tuple[list[dict], list[dict], list[tuple[str, str]]]:
    g, sig = doc.graph_module.graph, doc.graph_module.signature
    ins, outs, muts = [], [], []
    for spec, arg in zip(sig.input_specs, g.inputs):
        if spec.type == "user_input":
            ins.append(describe_value(arg, g, doc))
        elif spec.type == "constant_input":
            ins.append({"name": spec.value.name, "kind": "constant", "value": spec.value.value.value})
    for spec, arg in zip(sig.output_specs, g.outputs):
        if spec.type in ("user_output", "loss_output"):
            outs.append(describe_value(arg, g, doc))
        elif spec.type != "token":
            target = next((getattr(spec.value, f) for f in ("buffer_name", "parameter_name", "user_input_name")
                           if hasattr(spec.value, f)), "")
            muts.append((spec.type, target))
    return ins, outs, muts


def _diff_signature(da: schema.ExportedProgram, db: schema.ExportedProgram, prog: str) -> list[Change]:
    out: list[Change] = []
    ia, oa, ma = _signature_side(da)
    ib, ob, mb = _signature_side(db)
    for label, xs, ys in (("input", ia, ib), ("output", oa, ob)):
        for i in range(max(len(xs), len(ys))):
            x = xs[i] if i < len(xs) else None
            y = ys[i] if i < len(ys) else None
            name = (y or x).get("name") or f"[{i}]"
            subject = f"{label} {i} `{name}`" if name != f"[{i}]" else f"{label} {i}"
            if x is None:
                out.append(Change("signature", "added", subject, _fmt_value(y), prog))
            elif y is None:
                out.append(Change("signature", "removed", subject, _fmt_value(x), prog))
            else:
                fx, fy = _fmt_value(x), _fmt_value(y)
                if label == "input" and x.get("name") != y.get("name"):
                    fx, fy = f"`{x.get('name')}` {fx}", f"`{y.get('name')}` {fy}"
                if fx != fy:
                    out.append(Change("signature", "changed", subject, f"{fx} -> {fy}", prog))
    for kind, target in sorted(set(ma) - set(mb)):
        out.append(Change("signature", "removed", f"{kind.replace('_', ' ')} `{target}`", "", prog))
    for kind, target in sorted(set(mb) - set(ma)):
        out.append(Change("signature", "added", f"{kind.replace('_', ' ')} `{target}`", "", prog))
    ra, rb = da.range_constraints, db.range_constraints
    for key in sorted(set(ra) | set(rb)):
        x, y = ra.get(key), rb.get(key)
        fx = None if x is None else f"{x.min_val}..{x.max_val}"
        fy = None if y is None else f"{y.min_val}..{y.max_val}"
        if fx != fy:
            kind = "added" if x is None else "removed" if y is None else "changed"
            out.append(Change("signature", kind, f"range of `{key}`",
                              fy if x is None else fx if y is None else f"{fx} -> {fy}", prog))
    return out


def _diff_metadata(da: schema.ExportedProgram, db: schema.ExportedProgram, prog: str,
                   va: tuple[int, int], vb: tuple[int, int]) -> list[Change]:
    """``va``, ``vb``: the schema versions the documents were written with (before upgrading)."""
    out = []
    pairs = [
        ("schema version", f"{va[0]}.{va[1]}", f"{vb[0]}.{vb[1]}"),
        ("torch version", da.torch_version, db.torch_version),
        ("opset versions", str(dict(sorted(da.opset_version.items()))), str(dict(sorted(db.opset_version.items())))),
        ("verifiers", ", ".join(da.verifiers) or "-", ", ".join(db.verifiers) or "-"),
    ]
    for subject, x, y in pairs:
        if x != y:
            out.append(Change("metadata", "changed", subject, f"{x} -> {y}", prog))
    return out


def _short(target: str) -> str:
    return target.removeprefix("torch.ops.")


def _arg_text(arg: schema.Argument) -> str:
    t = arg.type
    if t in ("as_tensor", "as_tensors", "as_optional_tensor", "as_optional_tensors", "as_nested_tensors",
             "as_custom_obj"):
        return "%"
    if t in ("as_sym_int", "as_sym_float", "as_sym_bool"):
        return "%" if arg.value.type == "as_name" else repr(arg.value.value)
    if t in ("as_sym_ints", "as_sym_floats", "as_sym_bools"):
        return "[" + ", ".join("%" if x.type == "as_name" else repr(x.value) for x in arg.value) + "]"
    if t == "as_graph":
        return f"<graph of {len(arg.value.graph.nodes)} nodes>"
    if t == "as_none":
        return "None"
    if t == "as_string_to_argument":
        return "{" + ", ".join(f"{k}: {_arg_text(v)}" for k, v in arg.value.items()) + "}"
    value = arg.value
    return repr(value.name if hasattr(value, "name") and isinstance(value.name, str) else value)


def _node_labels(g: schema.Graph, indent: str = "") -> list[str]:
    """One line per node (subgraph nodes indented after their parent), names left out."""
    lines = []
    for node in g.nodes:
        args = [f"{i.name}={_arg_text(i.arg)}" if i.name else _arg_text(i.arg) for i in node.inputs]
        outs = []
        for o in node.outputs:
            if o.type == "as_tensor":
                tm = g.tensor_values.get(o.as_tensor.name)
                outs.append("?" if tm is None else
                            f"{_dtype(tm)}[{', '.join(str(sym_text(s)) for s in tm.sizes)}]")
            elif o.type == "as_tensors":
                outs.append(f"{len(o.as_tensors)} tensors")
            elif o.type != "as_none":
                outs.append(o.type[3:])
        text = f"{indent}{_short(node.target)}({', '.join(args)})" + (f" -> {', '.join(outs)}" if outs else "")
        lines.append(text if len(text) <= 240 else text[:237] + "...")
        for i in node.inputs:
            if i.arg.type == "as_graph":
                lines += _node_labels(i.arg.as_graph.graph, indent + "  | ")
    return lines


def _dtype(tm: schema.TensorMeta) -> str:
    dt = DTYPES.get(tm.dtype)
    return dt.name if dt else str(int(tm.dtype))


def _drop_node_names(g: schema.Graph, metadata: bool = False, kinds: bool = False) -> None:
    """Node names (schema 8.20) and metadata (stack traces) are labels, not meaning; so are
    argument kinds (positional or keyword, 8.7) when one side was written before they existed."""
    stack = [g]
    while stack:
        graph = stack.pop()
        for node in graph.nodes:
            node.name = None
            if metadata:
                node.metadata = {}
            if kinds:
                for i in node.inputs:
                    i.kind = None
            stack.extend(i.arg.as_graph.graph for i in node.inputs if i.arg.type == "as_graph")


def _op_counts(g: schema.Graph) -> Counter:
    counts: Counter = Counter()
    stack = [g]
    while stack:
        graph = stack.pop()
        for node in graph.nodes:
            counts[node.target] += 1
            stack.extend(i.arg.as_graph.graph for i in node.inputs if i.arg.type == "as_graph")
    return counts


def _diff_graph(da: schema.ExportedProgram, db: schema.ExportedProgram, prog: str,
                oldest: tuple[int, int] = schema.SCHEMA_VERSION) -> list[Change]:
    """``oldest``: the older of the two documents' schema versions as written."""
    # Fast path (and the common case): the same graph, node for node, once labels are dropped.
    # The documents are this module's own copies, so stripping them in place is fine.
    kinds = oldest < (8, 7)
    _drop_node_names(da.graph_module.graph, metadata=True, kinds=kinds)
    _drop_node_names(db.graph_module.graph, metadata=True, kinds=kinds)
    if da.graph_module.graph == db.graph_module.graph:
        return []
    try:
        ca, cb = canonicalize(da), canonicalize(db)
    except SerializeError as e:
        ca = cb = None
        note = f"(not in canonical form: {e})"
    else:
        note = ""
    ga = ca.graph_module if ca is not None else da.graph_module
    gb = cb.graph_module if cb is not None else db.graph_module
    if ca is not None:
        _drop_node_names(ga.graph)
        _drop_node_names(gb.graph)
        if ga.graph == gb.graph:
            return []
    out: list[Change] = []
    oa, ob = _op_counts(ga.graph), _op_counts(gb.graph)
    for target in sorted(set(oa) | set(ob)):
        if oa[target] != ob[target]:
            out.append(Change("graph", "changed" if oa[target] and ob[target] else
                              "added" if ob[target] else "removed",
                              _short(target), f"{oa[target]} -> {ob[target]} nodes", prog))
    la, lb = _node_labels(ga.graph), _node_labels(gb.graph)
    lines = [ln for ln in difflib.unified_diff(la, lb, lineterm="", n=1)][2:]
    if lines:
        shown = lines[:MAX_NODE_LINES]
        if len(lines) > len(shown):
            shown.append(f"... {len(lines) - len(shown)} more lines")
        out.append(Change("graph", "changed", "nodes",
                          f"{len(ga.graph.nodes)} -> {len(gb.graph.nodes)} nodes {note}".rstrip(), prog,
                          {"diff": shown}))
    elif not out:
        meta = _meta_changes(ga, gb)
        if meta:
            shown = meta[:MAX_NODE_LINES]
            out.append(Change("graph", "changed", "tensor metadata",
                              f"{len(meta)} value{'s' if len(meta) != 1 else ''} with different metadata "
                              f"{note}".rstrip(), prog,
                              {"diff": shown}))
        else:
            out.append(Change("graph", "changed", "wiring",
                              f"same nodes, connected differently {note}".rstrip(), prog))
    return out


_META_FIELDS = ("dtype", "sizes", "strides", "storage_offset", "requires_grad", "device", "layout")


def _meta_changes(ga: schema.GraphModule, gb: schema.GraphModule) -> list[str]:
    """Differences in the tensor metadata of graphs whose nodes are the same (canonical names,
    graph inputs labelled by their signature name)."""
    labels: dict[str, str] = {}
    for spec, arg in zip(ga.signature.input_specs, ga.graph.inputs):
        if arg.type == "as_tensor":
            body = spec.value
            name = next((getattr(body, f) for f in ("parameter_name", "buffer_name", "tensor_constant_name")
                         if hasattr(body, f)), None)
            labels[arg.as_tensor.name] = f"{spec.type.replace('_', ' ')} `{name}`" if name else "user input"
    ta, tb = ga.graph.tensor_values, gb.graph.tensor_values
    lines = []
    for key in sorted(set(ta) | set(tb), key=lambda k: (len(k), k)):
        x, y = ta.get(key), tb.get(key)
        if x == y:
            continue
        label = labels.get(key, f"value {key}")
        if x is None or y is None:
            lines.append(f"{label}: {'added' if x is None else 'removed'}")
            continue
        for f in _META_FIELDS:
            fx, fy = _meta_text(getattr(x, f)), _meta_text(getattr(y, f))
            if fx != fy:
                lines.append(f"{label}: {f} {fx} -> {fy}")
    return lines


def _meta_text(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(sym_text(v)) for v in value) + "]"
    if isinstance(value, schema.SymInt):
        return str(sym_text(value))
    if isinstance(value, schema.ScalarType):
        dt = DTYPES.get(value)
        return dt.name if dt else str(int(value))
    if isinstance(value, schema.Device):
        return device_text(value)
    if hasattr(value, "name") and not isinstance(value, str):
        return value.name
    return repr(value)


def _entry_text(e: TensorEntry) -> str:
    if e.kind in ("custom_obj", "opaque_obj"):
        return e.kind.replace("_", " ")
    return f"{e.dtype}[{', '.join(str(s) for s in e.sizes)}]"


def _diff_entries(ea: list[TensorEntry], eb: list[TensorEntry], section: str, prog: str,
                  comparer: Comparer) -> list[Change]:
    out: list[Change] = []
    ma, mb = {e.name: e for e in ea}, {e.name: e for e in eb}
    for name in ma.keys() - mb.keys():
        out.append(Change(section, "removed", name, _entry_text(ma[name]), prog))
    for name in mb.keys() - ma.keys():
        out.append(Change(section, "added", name, _entry_text(mb[name]), prog))
    for name in sorted(ma.keys() & mb.keys()):
        a, b = ma[name], mb[name]
        if a.kind != b.kind or a.dtype != b.dtype or a.sizes != b.sizes:
            out.append(Change(section, "changed", name, f"{_entry_text(a)} -> {_entry_text(b)}", prog))
            continue
        if a.record is None or b.record is None:
            out.append(Change(section, "changed", name, "cannot compare: a storage record is missing", prog))
            continue
        if a.kind != "tensor":
            same = comparer.objects_equal(a, b)
            if not same:
                out.append(Change(section, "changed", name, "stored object bytes differ" if same is False else
                                  f"stored objects {_SPENT}", prog))
            continue
        if not a.concrete or a.dtype not in BY_NAME or not (
                _fits(a) and _fits(b)):
            out.append(Change(section, "changed", name, "cannot compare: malformed tensor entry", prog))
            continue
        result = comparer.compare(a, b)
        if result is None:
            continue
        out.append(Change(section, "changed", name, _value_detail(result), prog, result))
    order = {"removed": 0, "added": 1, "changed": 2}
    out.sort(key=lambda c: (order[c.kind], c.subject))
    return out


def _value_detail(r: dict) -> str:
    """What :meth:`Comparer.compare` found, in words (counts say what they count)."""
    worst = "" if not r["differ"] or r["max_abs_diff"] is None else f", max abs diff {_num(r['max_abs_diff'])}"
    if "stored" in r:
        return (f"values differ in {r['differ']:,} of the {r['stored']:,} storage elements the view reaches "
                f"(its {r['elements']:,} elements repeat them){worst}")
    if "compared" in r:
        where = f"the first {r['compared']:,} of {r['elements']:,} elements"
        rest = "the layouts differ, and comparing the rest would read more than the records hold"
        if r["differ"]:
            return f"values differ in {r['differ']:,} of {where}{worst} ({rest})"
        return f"values not compared past {where} (equal there): {rest}"
    if r["differ"] is None:
        return f"values differ ({r['note']})" if r.get("note") != _SPENT else f"values {_SPENT}"
    return f"values differ in {r['differ']:,} of {r['elements']:,} elements{worst}"


def _fits(e: TensorEntry) -> bool:
    span = e.span()
    return span is not None and len(e.sizes) == len(e.strides) and min([*e.sizes, *e.strides, e.storage_offset,
                                                                       0]) >= 0 \
        and (e.record_size == 0 or span <= e.record_size)


def _num(x: float | int | complex) -> str:
    if isinstance(x, int):
        return f"{x:,}"
    if x != x:
        return "nan"
    return f"{x:.6g}"


# ==================================================================== archives


def _program_changes(arch_a: Pt2Archive, arch_b: Pt2Archive, name: str, comparer: Comparer) -> list[Change]:
    pa, pb = arch_a.program(name), arch_b.program(name)
    out: list[Change] = []
    da, db = pa.document(), pb.document()  # SerializeError: the CLI reports it (exit 2)
    out += _diff_metadata(da, db, name, pa.original_version, pb.original_version)
    out += _diff_signature(da, db, name)
    out += _diff_graph(da, db, name, min(pa.original_version, pb.original_version))
    for folder in ("weights", "constants"):
        pr_a: list[Problem] = []
        pr_b: list[Problem] = []
        ea, eb = pa.entries(folder, pr_a), pb.entries(folder, pr_b)
        for side, probs in (("A", pr_a), ("B", pr_b)):
            for p in probs:
                if not p.needs_pickle:  # a pickled entry is still compared, by its stored bytes
                    out.append(Change(folder, "changed", f"archive {side}", f"unreadable entry: {p}", name))
        out += _diff_entries(ea, eb, folder, name, comparer)
    sa, sb = sample_inputs_info(pa), sample_inputs_info(pb)
    if (sa["summary"], sa["note"] is None) != (sb["summary"], sb["note"] is None):
        out.append(Change("sample_inputs", "changed", "sample inputs",
                          f"{sa['summary'] or sa['note']} -> {sb['summary'] or sb['note']}", name))
    return out


def total_bytes(archive: Pt2Archive) -> int:
    return sum(archive.reader.entry(n).size for n in archive.payload_records())


def diff_archives(arch_a: Pt2Archive, arch_b: Pt2Archive,
                  progress: Callable[[int], None] | None = None) -> list[Change]:
    """Every difference between two archives (``[]`` when they hold the same programs)."""
    out: list[Change] = []
    if arch_a.layout != arch_b.layout:
        out.append(Change("archive", "changed", "layout",
                          f"{LAYOUT_TEXT[arch_a.layout]} -> {LAYOUT_TEXT[arch_b.layout]}"))
    ma, mb = set(arch_a.models()), set(arch_b.models())
    for name in sorted(ma - mb):
        out.append(Change("programs", "removed", name))
    for name in sorted(mb - ma):
        out.append(Change("programs", "added", name))
    comparer = Comparer(arch_a, arch_b, progress)
    for name in sorted(ma & mb):
        out += _program_changes(arch_a, arch_b, name, comparer)
    xa, xb = dict(arch_a.extra_files()), dict(arch_b.extra_files())
    for n in sorted(xa.keys() - xb.keys()):
        out.append(Change("extra_files", "removed", n))
    for n in sorted(xb.keys() - xa.keys()):
        out.append(Change("extra_files", "added", n))
    for n in sorted(xa.keys() & xb.keys()):
        if arch_a.reader.view(arch_a.extra_record(n)) != arch_b.reader.view(arch_b.extra_record(n)):
            out.append(Change("extra_files", "changed", n, "contents differ"))
    return out


# ==================================================================== rendering

_SECTIONS = ("archive", "programs", "metadata", "signature", "graph", "weights", "constants", "sample_inputs", "extra_files")


def render(changes: list[Change], style, name_a: str, name_b: str) -> str:
    """The changes for a terminal. Every string in them is escaped first (:func:`_term.safe`):
    entry, program and file names come from the files."""
    s = style
    changes, name_a, name_b = safe(changes), safe(name_a), safe(name_b)
    if not changes:
        return f"{name_a} and {name_b} hold the same programs, weights and extra files"
    mark = {"added": s.green("+"), "removed": s.red("-"), "changed": s.yellow("~")}
    lines = [f"{s.bold('diff')} {name_a} -> {name_b}: {len(changes)} difference{'s' if len(changes) != 1 else ''}"]
    groups: dict[tuple, list[Change]] = {}
    for c in changes:
        groups.setdefault((c.program or "", _SECTIONS.index(c.section)), []).append(c)
    current = None
    for (prog, _), items in sorted(groups.items(), key=lambda kv: (kv[0][0] == "", kv[0])):  # archive last
        if prog != current:
            current = prog
            lines.append("")
            lines.append(s.bold(f"program {s.cyan(prog)}") if prog else s.bold("archive"))
        pad = "  " if items[0].section == "archive" else "    "  # the group title already says "archive"
        if items[0].section != "archive":
            lines.append(f"  {s.bold(items[0].section.replace('_', ' '))}")
        for c in items:
            detail = f": {c.detail}" if c.detail else ""
            lines.append(f"{pad}{mark[c.kind]} {c.subject}{detail}")
            for ln in c.data.get("diff", ()) if c.section == "graph" else ():
                paint = s.green if ln.startswith("+") else s.red if ln.startswith("-") else s.dim
                lines.append(f"        {paint(ln)}")
    return "\n".join(lines)
