"""``pt2serde inspect``: what a program archive holds, from its JSON records alone (torch-free).

:func:`inspect_archive` builds the report as plain JSON-able data (the ``--json`` output,
documented field by field in ``docs/inspect-json.md``; ``format_version`` 1);
:func:`render` prints the same report for a terminal. Both layouts are read: the PT2
archive and the plain zip of PyTorch 2.5-2.7 (whose state dict and constants are
``torch.save`` records, summarised by walking their pickles like the sample inputs). The
report ends with which releases can read the archive (:mod:`pt2serde.format.compat_readers`), after
the checks of ``pt2serde validate`` (:func:`validation_errors`): an archive that fails them is
readable by none.
Nothing here reads tensor bytes:
the archive is mapped and only the program documents, payload configs and the pickle
opcodes of the sample-inputs record are read, so inspecting a multi-GiB archive costs
what inspecting a small one does.

Sample inputs are summarised by walking their pickle with :mod:`pt2serde.format.safepickle` and
builders that only record what each tensor claims (see :mod:`pt2serde.format.contents`);
anything else in them (a user class, a call the file asks for) is not built: the report
then gives the record's size and the reason.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from .. import schema
from ..format.expr import parse as parse_expr, render as render_expr
from .term import Style, human_bytes, plural, safe, table
from ..format.compat_readers import ProgramFacts, document_features, program_facts, readable_by
from ..format.contents import LAYOUT_TEXT, ProgramRecords, Pt2Archive
from ..format.problem import Problem
from ..format.tensor_bytes import entry_globals
from ..format.tensor_entries import TensorEntry
from ..format.torchsave import describe_torch_save, summarize_value
from ..format.tables import DTYPES, device_text, sym_text
from ..format.value_refs import (ARGUMENT_ROWS, LIST, ONE, OPTIONAL, OPTIONAL_LIST, SYM_TABLES, ValueRef,
                                 argument_elements)
from ..errors import SerializeError

__all__ = ["FORMAT_VERSION", "inspect_archive", "render", "has_errors", "describe_value", "sample_inputs_info",
           "validation_errors", "symbol_ranges", "shared_storages"]

FORMAT_VERSION = 1
LARGEST = 5


# ================================================================ values


def _range(program: schema.ExportedProgram, text: str) -> dict | None:
    rc = program.range_constraints.get(text)
    return None if rc is None else {"min": rc.min_val, "max": rc.max_val}


def _sym_value(table: dict, name: str) -> tuple[str | None, int | float | bool | None]:
    sym = table.get(name)
    if sym is None:
        return None, None
    if sym.type == "as_expr":
        try:
            return render_expr(parse_expr(sym.as_expr.expr_str)), None
        except SerializeError:
            return sym.as_expr.expr_str, None
    return None, sym.value


_LITERAL_TAGS = frozenset({"as_int", "as_float", "as_bool", "as_string", "as_ints", "as_floats", "as_bools",
                           "as_strings"})


def _describe_tensor(ref: ValueRef | None, g: schema.Graph) -> dict:
    if ref is None:  # an absent optional tensor
        return {"name": None, "kind": "none"}
    return {"name": ref.name, "kind": "tensor", **_tensor_fields(g.tensor_values.get(ref.name))}


def describe_value(arg: schema.Argument, g: schema.Graph, program: schema.ExportedProgram) -> dict:
    """An input or output argument as a report entry."""
    t, v = arg.type, arg.value
    row = ARGUMENT_ROWS[t]
    out: dict[str, Any] = {"name": None, "kind": t[3:] if t.startswith("as_") else t}
    if row.table == "tensor_values" and row.cardinality in (ONE, OPTIONAL):
        ((_, ref),) = argument_elements(arg)
        return _describe_tensor(ref, g) if ref is not None else {"name": None, "kind": "none", "value": None}
    if row.table == "tensor_values" and row.cardinality in (LIST, OPTIONAL_LIST):
        out["items"] = [_describe_tensor(ref, g) for _, ref in argument_elements(arg)]
    elif row.table in SYM_TABLES and row.cardinality == ONE:
        ((_, ref),) = argument_elements(arg)
        if ref is not None:
            out["name"] = ref.name
            expr, literal = _sym_value(getattr(g, row.table), ref.name)
            out["expr"] = expr
            if expr is not None:
                out["range"] = _range(program, expr)
            elif literal is not None:
                out["value"] = literal
        else:
            out["value"] = v.value
    elif row.table == "custom_obj_values":
        out.update(name=v.name, class_fqn=v.class_fqn)
    elif t == "as_none":
        out["value"] = None
    elif t in _LITERAL_TAGS:
        out["value"] = v
    return out


def _tensor_fields(tm: schema.TensorMeta | None) -> dict:
    if tm is None:
        return {"dtype": None, "shape": None, "device": None}
    dt = DTYPES.get(tm.dtype)
    return {"dtype": dt.name if dt else f"ScalarType({int(tm.dtype)})", "shape": [sym_text(s) for s in tm.sizes],
            "device": device_text(tm.device), "requires_grad": tm.requires_grad}


# ================================================================ graph


def _walk_graphs(g: schema.Graph):
    stack = [g]
    while stack:
        graph = stack.pop()
        yield graph
        for node in graph.nodes:
            for inp in node.inputs:
                if inp.arg.type == "as_graph":
                    stack.append(inp.arg.as_graph.graph)


def _graph_summary(g: schema.Graph) -> dict:
    ops: Counter = Counter()
    graphs = 0
    for graph in _walk_graphs(g):
        graphs += 1
        for node in graph.nodes:
            ops[node.target] += 1
    return {
        "nodes": sum(ops.values()),
        "subgraphs": graphs - 1,
        "operators": [{"target": t, "count": n} for t, n in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))],
    }


def symbol_ranges(program: schema.ExportedProgram) -> tuple[list[dict], list[dict]]:
    """The range constraints: ``({name, min, max}`` of each symbol, ``{expr, min, max}`` of each
    derived expression), sorted by key; ``None`` is unbounded."""
    symbols, derived = [], []
    for key, rc in sorted(program.range_constraints.items()):
        item = {"min": rc.min_val, "max": rc.max_val}
        if key.isidentifier():
            symbols.append({"name": key, **item})
        else:
            derived.append({"expr": key, **item})
    return symbols, derived


# ================================================================ payloads


def _payload_summary(pr: ProgramRecords, folder: str, entries: list[TensorEntry]) -> dict:
    tensors = [e for e in entries if e.kind in ("tensor", "pickled_tensor")]
    by_dtype: dict[str, list[int]] = {}
    tensor_bytes = 0
    for e in tensors:
        n = e.nbytes or 0
        tensor_bytes += n
        slot = by_dtype.setdefault(e.dtype or "unknown", [0, 0])
        slot[0] += 1
        slot[1] += n
    stored = {e.storage_id: e.record_size for e in entries if e.record is not None}
    largest = sorted(tensors, key=lambda e: (-(e.nbytes or 0), e.name))[:LARGEST]
    return {
        "storage": pr.storage_format(folder),
        "config_record": pr.config_record(folder),
        "count": len(entries),
        "tensors": len(tensors),
        "parameters": sum(1 for e in tensors if e.is_param),
        "objects": sum(1 for e in entries if e.kind in ("custom_obj", "opaque_obj")),
        "tensor_bytes": tensor_bytes,
        "stored_bytes": sum(stored.values()),
        "by_dtype": [{"dtype": d, "count": c, "bytes": b}
                     for d, (c, b) in sorted(by_dtype.items(), key=lambda kv: (-kv[1][1], kv[0]))],
        "largest": [{"name": e.name, "dtype": e.dtype, "shape": e.sizes, "bytes": e.nbytes or 0} for e in largest],
    }


def shared_storages(archive: Pt2Archive, entries: list[TensorEntry]) -> list[dict]:
    """The storages several entries view: ``{record, names}`` per stored record (``record:inner``
    inside a ``torch.save`` record) that more than one entry reads."""
    groups: dict[tuple, list[str]] = {}
    for e in entries:
        if e.kind == "tensor" and e.record is not None and e.record_size:
            groups.setdefault(e.storage_id, []).append(e.name)
    out = []
    for (record, inner), names in groups.items():
        if len(names) > 1:
            rel = archive.rel(record)
            out.append({"record": rel if inner is None else f"{rel}:{inner}", "names": names})
    return out


def sample_inputs_info(pr: ProgramRecords) -> dict:
    reader = pr.archive.reader
    info: dict[str, Any] = {"record": pr.sample_record, "bytes": None, "summary": None, "note": None}
    if pr.sample_record not in reader:
        info["note"] = "none stored" if pr.archive.layout == "legacy" else "record is missing"
        return info
    size = reader.entry(pr.sample_record).size
    info["bytes"] = size
    if size == 0:
        info["summary"] = "none"
        return info
    try:
        value = describe_torch_save(reader.view(pr.sample_record), pr.sample_record).value
    except SerializeError as e:
        info["note"] = f"not summarised: reading it would need unpickling ({e})"
        return info
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict):
        info["summary"] = f"args={summarize_value(value[0])}, kwargs={summarize_value(value[1])}"
    else:
        info["summary"] = summarize_value(value)
    return info


# ================================================================ programs


def _note(level: str, message: str, where: str | None) -> dict:
    return {"level": level, "message": message, "where": where}


_PROGRAM_KEYS = ("name", "document", "schema_version", "torch_version", "opset_version", "verifiers",
                 "forward_arg_names", "inputs", "outputs", "mutations", "lifted_inputs", "symbols",
                 "derived_ranges", "graph", "weights", "constants", "shared_storages", "needs_allow_pickle",
                 "sample_inputs", "notes", "upgraded_to")


def _version(v: tuple[int, int] | None) -> dict | None:
    return None if v is None else {"major": v[0], "minor": v[1]}


def _program(archive: Pt2Archive, model: str, pickle_only: set | None = None,
             documents: dict | None = None) -> tuple[dict, ProgramFacts]:
    """The report of one program and its facts for the readers' verdicts. ``pickle_only``
    collects the torch.save records the restricted walk refuses: only unpickling (PyTorch,
    ``allow_pickle=True``) reads them, so nothing the checks say about them is conclusive."""
    pr = archive.program(model)
    reader = archive.reader
    info: dict[str, Any] = dict.fromkeys(_PROGRAM_KEYS)
    info["name"] = model
    info["notes"] = []
    info["document"] = {"record": pr.document_record, "bytes": reader.entry(pr.document_record).size}
    doc = features = None
    document_error = decode_error = None
    try:
        raw = pr.raw_document()
    except SerializeError as e:
        document_error = str(e)
        info["notes"].append(_note("error", f"document cannot be read: {e}", pr.document_record))
    else:
        features = document_features(raw)  # before decoding, which upgrades raw in place
        try:
            doc = pr.decode(raw)
            if documents is not None:
                documents[model] = doc
        except SerializeError as e:
            decode_error = str(e)
            info["notes"].append(_note("error", f"document cannot be read: {e}", pr.document_record))
    if doc is not None:
        gm = doc.graph_module
        g, sig = gm.graph, gm.signature
        info["schema_version"] = _version(pr.original_version)
        if pr.original_version < schema.SCHEMA_VERSION:
            info["upgraded_to"] = _version(schema.SCHEMA_VERSION)
        info["torch_version"] = doc.torch_version
        info["opset_version"] = dict(sorted(doc.opset_version.items()))
        info["verifiers"] = list(doc.verifiers)
        top = next((e for e in gm.module_call_graph if e.fqn == "" and e.signature is not None), None)
        info["forward_arg_names"] = top.signature.forward_arg_names if top is not None else None
        inputs, outputs, mutations = [], [], []
        lifted = Counter()
        for spec, arg in zip(sig.input_specs, g.inputs):
            if spec.type == "user_input":
                inputs.append(describe_value(arg, g, doc))
            elif spec.type == "constant_input":
                inputs.append({"name": spec.value.name, "kind": "constant", "value": spec.value.value.value})
            else:
                lifted[spec.type] += 1
        for spec, arg in zip(sig.output_specs, g.outputs):
            if spec.type in ("user_output", "loss_output"):
                item = describe_value(arg if spec.type == "user_output" else schema.Argument._of("as_tensor", spec.value.arg),
                              g, doc)
                if spec.type == "loss_output":
                    item["loss"] = True
                outputs.append(item)
            elif spec.type != "token":
                target = next((getattr(spec.value, f) for f in ("buffer_name", "parameter_name", "user_input_name")
                               if hasattr(spec.value, f)), None)
                mutations.append({"kind": spec.type, "target": target})
        info["inputs"] = inputs
        info["outputs"] = outputs
        info["mutations"] = mutations
        info["lifted_inputs"] = {k: lifted.get(k, 0) for k in ("parameter", "buffer", "tensor_constant",
                                                                "custom_obj", "token")}
        info["symbols"], info["derived_ranges"] = symbol_ranges(doc)
        info["graph"] = _graph_summary(g)
    problems: list[Problem] = []
    weights = pr.entries("weights", problems)
    constants = pr.entries("constants", problems)
    for p in problems:
        where = p.where if p.record in (None, p.where) else f"{p.record} {p.where}"
        info["notes"].append(_note(p.level, p.message, where))
    info["weights"] = _payload_summary(pr, "weights", weights)
    info["constants"] = _payload_summary(pr, "constants", constants)
    info["shared_storages"] = shared_storages(archive, weights + constants)
    info["needs_allow_pickle"] = [
        {"name": e.name, "kind": e.kind, "record": e.own_record or e.record, "globals": entry_globals(archive, e)}
        for e in weights + constants if e.needs_pickle
    ]
    info["sample_inputs"] = sample_inputs_info(pr)
    # what pt2serde's loader reads only with allow_pickle=True: pickled entries, and torch.save
    # records the restricted walk refuses (its loader uses the same kind of restricted unpickler)
    pickled = [f"`{x['name']}`" for x in info["needs_allow_pickle"]]
    walked = {pr.config_record(f) for f in ("weights", "constants") if pr.storage_format(f) == "torch_save"}
    pickled += sorted({archive.rel(p.record) for p in problems if p.record in walked})
    if pickle_only is not None:
        pickle_only.update(p.record for p in problems if p.record in walked)
    if (info["sample_inputs"]["note"] or "").startswith("not summarised"):
        pickled.append(archive.rel(pr.sample_record))
    facts = program_facts(
        model, pr.document_record, features, document_error=document_error, decode_error=decode_error,
        storages={f: pr.storage_format(f) for f in ("weights", "constants")},
        payload_records={f: pr.config_record(f) for f in ("weights", "constants")}, entries=weights + constants,
        pickled=pickled)
    return info, facts


def inspect_archive(archive: Pt2Archive, errors: list[Problem] | None = None,
                    documents: dict | None = None) -> dict:
    """The report of an opened archive (see ``docs/inspect-json.md``). ``errors``: its
    :func:`validation_errors` when the caller has them already; ``documents``, when given,
    receives each program's decoded document by name (those that decode)."""
    reader = archive.reader
    path = archive.path
    programs, facts = [], []
    pickle_only: set[str] = set()
    for m in archive.models():
        info, f = _program(archive, m, pickle_only, documents)
        programs.append(info)
        facts.append(f)
    markers = {k: archive.small(k) for k in ("archive_format", "archive_version")}
    invalid = [p for p in (validation_errors(archive) if errors is None else errors) if p.record not in pickle_only]
    readers = readable_by(archive.layout, facts, version_record=archive.version_record(), markers=markers,
                          invalid=invalid)
    return {
        "format_version": FORMAT_VERSION,
        "file": {"path": path, "bytes": reader.size},
        "archive": {
            "layout": archive.layout,
            "root": archive.root,
            "archive_format": archive.small("archive_format"),
            "archive_version": archive.small("archive_version"),
            "byteorder": archive.small("byteorder"),
            "records": len(reader.entries),
            "version_record": None if archive.version_record() is None else archive.version_record().strip(),
        },
        "programs": programs,
        "extra_files": [{"name": n, "bytes": size} for n, size in archive.extra_files()],
        "readers": [v.as_dict() for v in readers],
    }


def validation_errors(archive: Pt2Archive) -> list[Problem]:
    """The errors ``pt2serde validate`` reports for the archive (without the CRC pass, which
    reads every byte): :func:`pt2serde.format.check.check_archive`, the checks ``load`` applies. A
    record only unpickling can read is a warning there, not an error: PyTorch reads it."""
    from ..format.check import check_archive

    try:
        problems = check_archive(archive, crc=False)
    except SerializeError as e:  # not an archive at all: opening it would have failed first
        return [Problem.from_error(e, archive.path or "archive", None)]
    return [p for p in problems if p.level == "error"]


def has_errors(report: dict) -> bool:
    return any(n["level"] == "error" for p in report["programs"] for n in p["notes"]) or not report["programs"]


# ================================================================ rendering


def _shape(item: dict) -> str:
    if item.get("shape") is None:
        return "?"
    return f"{item['dtype']}[{', '.join(str(s) for s in item['shape'])}]"


def _range_text(lo: Any, hi: Any) -> str:
    return f"{'-inf' if lo is None else f'{lo:,}'}..{'inf' if hi is None else f'{hi:,}'}"


def _value_row(item: dict, index: int) -> list[str]:
    name = item.get("name") or f"[{index}]"
    kind = item["kind"]
    if kind == "tensor":
        return [name, _shape(item), item.get("device") or ""]
    if kind in ("tensors", "optional_tensors"):
        return [name, "(" + ", ".join(_shape(x) if x["kind"] == "tensor" else "None" for x in item["items"]) + ")", ""]
    if kind in ("sym_int", "sym_float", "sym_bool"):
        text = item.get("expr") or repr(item.get("value"))
        rng = item.get("range")
        extra = f"in {_range_text(rng['min'], rng['max'])}" if rng else ""
        return [name, f"{kind.replace('_', '')} {text}", extra]
    if kind == "custom_obj":
        return [name, f"object {item.get('class_fqn')}", ""]
    return [name, f"{kind} {item.get('value')!r}" if kind != "none" else "None", ""]


def render(report: dict, style: Style) -> str:
    """The report for a terminal. Every string in it is escaped first (:func:`_term.safe`):
    names, messages and record names come from the file."""
    s = style
    report = safe(report)
    lines: list[str] = []
    f = report["file"]
    a = report["archive"]
    title = os.path.basename(f["path"]) if f["path"] else "<archive>"
    if a["layout"] == "legacy":
        kind = f"{LAYOUT_TEXT['legacy']} (version record {a['version_record'] or 'missing'})"
    else:
        kind = f"PT2 archive (format {a['archive_format'] or '?'}, version {a['archive_version'] or '?'})"
    lines.append(f"{s.bold(title)}  {human_bytes(f['bytes'])}, {kind}, "
                 f"{plural(a['records'], 'record')}, {plural(len(report['programs']), 'program')}")
    for p in report["programs"]:
        lines.append("")
        lines += _render_program(p, s)
    if report["extra_files"]:
        lines.append("")
        lines.append(s.bold("extra files"))
        lines += table([[e["name"], human_bytes(e["bytes"])] for e in report["extra_files"]], align="lr")
    lines.append("")
    lines += _render_readers(report["readers"], s)
    return "\n".join(lines)


def _render_readers(readers: list[dict], s: Style) -> list[str]:
    ok = [r["reader"] for r in readers if r["readable"]]
    torch_ok = [r for r in ok if r != "pt2serde"]
    summary = ", ".join(["PyTorch " + ", ".join(torch_ok)] if torch_ok else []) + \
        ("; " if torch_ok and "pt2serde" in ok else "") + ("pt2serde" if "pt2serde" in ok else "")
    lines = [f"{s.bold('readable by')}  {summary or s.red('none')}"]
    rows = []
    for r in readers:
        if r["readable"]:
            verdict = s.green("yes") + (f": {r['reason']}" if r["reason"] else "")
        elif r["fails_at"] == "run":
            verdict = s.red("no") + f" (loads, fails when run): {r['reason']}"
        else:
            verdict = s.red("no") + f": {r['reason']}"
        rows.append([r["reader"], verdict])
    return lines + table(rows, indent=2)


def _render_program(p: dict, s: Style) -> list[str]:
    lines = []
    head = f"program {s.cyan(p['name'])}"
    if p["schema_version"] is not None:
        v, up = p["schema_version"], p["upgraded_to"]
        read_as = f" (read as {up['major']}.{up['minor']})" if up else ""
        head += (f"  schema {v['major']}.{v['minor']}{read_as}, written by torch {p['torch_version']}"
                 f", opset {', '.join(f'{k} {n}' for k, n in p['opset_version'].items()) or 'none'}")
        if p["verifiers"]:
            head += f", {'/'.join(p['verifiers'])} IR"
    lines.append(s.bold(head) if not s.enabled else head)
    if p["inputs"] is not None:
        lines.append(f"  {s.bold('inputs')}" + ("  (none)" if not p["inputs"] else ""))
        lines += table([_value_row(x, i) for i, x in enumerate(p["inputs"])], indent=4)
        lines.append(f"  {s.bold('outputs')}" + ("  (none)" if not p["outputs"] else ""))
        lines += table([_value_row(x, i) for i, x in enumerate(p["outputs"])], indent=4)
        if p["mutations"]:
            lines.append(f"  {s.bold('mutates')}")
            lines += table([[m["kind"].replace("_", " "), m["target"] or ""] for m in p["mutations"]], indent=4)
        if p["symbols"] or p["derived_ranges"]:
            lines.append(f"  {s.bold('dynamic dims')}")
            rows = [[x["name"], _range_text(x["min"], x["max"])] for x in p["symbols"]]
            rows += [[x["expr"], _range_text(x["min"], x["max"])] for x in p["derived_ranges"]]
            lines += table(rows, indent=4)
        gr = p["graph"]
        sub = f" ({plural(gr['subgraphs'], 'subgraph')})" if gr["subgraphs"] else ""
        lines.append(f"  {s.bold('graph')}  {plural(gr['nodes'], 'node')}{sub}, "
                     f"{plural(len(gr['operators']), 'operator')}")
        rows = [[o["target"].removeprefix("torch.ops."), f"{o['count']:,}"] for o in gr["operators"]]
        lines += table(rows, align="lr", indent=4)
    for folder in ("weights", "constants"):
        lines += _render_payload(folder, p[folder], s)
    if p["shared_storages"]:
        lines.append(f"  {s.bold('shared storages')}")
        lines += table([[sh["record"].removeprefix("data/"), ", ".join(sh["names"])] for sh in p["shared_storages"]],
                       indent=4)
    si = p["sample_inputs"]
    size = f" ({human_bytes(si['bytes'])})" if si["bytes"] is not None else ""
    lines.append(f"  {s.bold('sample inputs')}  {si['summary'] or '-'}{size}")
    if si["note"]:
        lines.append(f"    {s.yellow(si['note'])}")
    for x in p["needs_allow_pickle"]:
        names = f"; its pickle names {', '.join(x['globals'])}" if x["globals"] else ""
        lines.append(f"  {s.yellow('needs allow_pickle')}: {x['name']} ({x['kind'].replace('_', ' ')}, "
                     f"{x['record']}){names}")
    for n in p["notes"]:
        paint = s.red if n["level"] == "error" else s.yellow
        lines.append(f"  {paint(n['level'])}: {n['message']}" + (f" @ {n['where']}" if n["where"] else ""))
    return lines


def _render_payload(folder: str, w: dict, s: Style) -> list[str]:
    if not w["count"]:
        return [f"  {s.bold(folder)}  none"]
    parts = [plural(w["tensors"], "tensor")]
    if folder == "weights" and w["tensors"]:
        parts[0] += f" ({plural(w['parameters'], 'parameter')}, {plural(w['tensors'] - w['parameters'], 'buffer')})"
    if w["objects"]:
        parts.append(plural(w["objects"], "object"))
    head = f"  {s.bold(folder)}  {', '.join(parts)}, {human_bytes(w['tensor_bytes'])}"
    if w["stored_bytes"] != w["tensor_bytes"]:
        head += f" ({human_bytes(w['stored_bytes'])} stored)"
    if w["storage"] == "torch_save":
        head += ", stored with torch.save"
    dtypes = ", ".join(f"{d['dtype']} {d['count']:,}" for d in w["by_dtype"])
    lines = [head + (f"  [{dtypes}]" if dtypes else "")]
    if w["largest"]:
        rows = [[x["name"], f"{x['dtype']}[{', '.join(str(d) for d in x['shape'])}]", human_bytes(x["bytes"])]
                for x in w["largest"]]
        lines += table(rows, align="llr", indent=4)
        if w["tensors"] > len(w["largest"]):
            lines.append(f"    ... and {w['tensors'] - len(w['largest']):,} more")
    return lines
