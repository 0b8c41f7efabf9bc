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

Values are compared by :mod:`pt2serde.cli.diff_values` (lazily, within a budget).
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import schema
from ..format.canonical import canonicalize
from ..format.contents import LAYOUT_TEXT, Pt2Archive
from ..format.problem import Problem
from ..format.tensor_entries import TensorEntry
from ..format.tables import BY_NAME, DTYPES, device_text, sym_text
from ..format.value_refs import (ARGUMENT_ROWS, NESTED, ONE, OPTIONAL, SYM_TABLES, argument_elements, element_ref,
                                 spec_target)
from ..errors import SerializeError
from .diff_values import NOT_COMPARED, Comparer, compare_tensors, entry_fits, total_bytes, value_detail
from .term import safe
from .inspection import describe_value, sample_inputs_info

__all__ = ["Change", "Comparer", "argument_text", "diff_archives", "compare_tensors", "render", "total_bytes"]

MAX_NODE_LINES = 40


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
            muts.append((spec.type, spec_target(spec) or ""))
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


# Arguments that name no value but have a text of their own (the rest: their repr).
_ARG_TEXT: dict[str, Callable[[Any, bool], str]] = {
    "as_graph": lambda v, names: f"<graph {v.name}>" if names else f"<graph of {len(v.graph.nodes)} nodes>",
    "as_none": lambda v, names: "None",
    "as_string_to_argument": lambda v, names: "{" + ", ".join(f"{k}: {argument_text(x, names)}"
                                                              for k, x in v.items()) + "}",
}


def argument_text(arg: schema.Argument, names: bool = False) -> str:
    """An argument as text. The values it names are written ``%`` (canonical names mean
    nothing to ``diff``), or by their names when ``names`` (``pt2serde view``); an absent
    optional tensor is ``None``, a subgraph ``<graph NAME>`` (``diff``: its node count)."""
    row = ARGUMENT_ROWS[arg.type]
    if row.table is not None and (names or row.table in SYM_TABLES):  # names or literals
        def text(x: Any, ref: Any) -> str:
            if ref is not None:
                return ref.name if names else "%"
            return "None" if isinstance(x, schema.OptionalTensorArgument) else repr(x.value)

        if row.cardinality == NESTED:
            return "[" + ", ".join("[" + ", ".join(text(x, element_ref(x, row.table)) for x in inner) + "]"
                                   for inner in arg.value) + "]"
        texts = [text(x, ref) for x, ref in argument_elements(arg)]
        return texts[0] if row.cardinality in (ONE, OPTIONAL) else "[" + ", ".join(texts) + "]"
    if row.table is not None:
        return "%"
    if arg.type in _ARG_TEXT:
        return _ARG_TEXT[arg.type](arg.value, names)
    value = arg.value
    return repr(value.name if hasattr(value, "name") and isinstance(value.name, str) else value)


def _node_labels(g: schema.Graph, indent: str = "") -> list[str]:
    """One line per node (subgraph nodes indented after their parent), names left out."""
    lines = []
    for node in g.nodes:
        args = [f"{i.name}={argument_text(i.arg)}" if i.name else argument_text(i.arg) for i in node.inputs]
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
            name = spec_target(spec) if spec.type in ("parameter", "buffer", "tensor_constant") else None
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
                                  f"stored objects {NOT_COMPARED}", prog))
            continue
        if not a.concrete or a.dtype not in BY_NAME or not (
                entry_fits(a) and entry_fits(b)):
            out.append(Change(section, "changed", name, "cannot compare: malformed tensor entry", prog))
            continue
        result = comparer.compare(a, b)
        if result is None:
            continue
        out.append(Change(section, "changed", name, value_detail(result), prog, result))
    order = {"removed": 0, "added": 1, "changed": 2}
    out.sort(key=lambda c: (order[c.kind], c.subject))
    return out


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
