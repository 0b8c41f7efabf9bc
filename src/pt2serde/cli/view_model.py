"""``pt2serde view``: the view model of a program archive (torch-free).

:func:`program_view` turns an opened archive into the plain JSON-able dict that
:func:`pt2serde.cli.view_page.render_page` draws (:data:`FORMAT`, the contract of
``docs/view-model.md``): the graph and its higher-order-op subgraphs as nodes and labelled
edges, the signature, the range constraints, the weights with their shared storages, the
extra files and the verdict of ``validate`` and ``inspect``'s readable-by. Every string is
exactly as in the file: escaping is the page's job, done once.

The model is linear in the document (since format 2): each value's label is held once per graph
(``graph.values``), edges and node outputs name the value only; argument texts, value and signature labels
and notes are clipped at :data:`MAX_TEXT` (names, targets, stack traces and metadata are kept
whole: the document holds each as often as the model does); a storage several weights view is listed once (``storages``), each weight
row naming its group; integers (ranges, sizes, byte counts) travel as decimal strings, so a
page prints them exactly, however large.

The document is read as ``inspect`` reads it (the checked decode: a document that does not
decode is a ``SerializeError``); an archive that ``validate`` refuses is still shown, with
its problems as notes. Nothing here reads tensor bytes; the work is linear in the document
(labels and module stacks are computed once per distinct value).

What is reused, not rewritten: which argument members name graph values
(:mod:`pt2serde.format.value_refs`), argument texts (:func:`pt2serde.cli.diffing.argument_text`),
dtype names (:data:`pt2serde.format.tables.DTYPES`), ``nn_module_stack`` entries
(:func:`pt2serde.format.codegen_fields.split_module_stack_entry`), the readers' verdict,
symbols and shared storages (:mod:`pt2serde.cli.inspection`), validate's checks.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

from .. import __version__, schema
from ..errors import SerializeError
from ..format.codegen_fields import split_module_stack_entry
from ..format.contents import Pt2Archive
from ..format.gcpause import gc_paused
from ..format.problem import Problem
from ..format.tables import DTYPES, sym_text
from ..format.tensor_entries import TensorEntry
from ..format.value_refs import argument_refs, spec_target
from .diffing import argument_text
from .inspection import inspect_archive, shared_storages, symbol_ranges, validation_errors

__all__ = ["FORMAT", "GENERATOR", "program_view", "build_view", "build_graphs", "weights_table", "short_op",
           "choose_program", "read_program", "number_text", "clip_text", "joined_text", "MAX_TEXT", "MAX_NOTES"]

FORMAT = 2
GENERATOR = f"pt2serde {__version__}"
#: an argument's text, a value's label, a signature entry's label is cut at this many characters
#: (a list of a million ints is not read on a page)
MAX_TEXT = 2000
#: notes kept per model (a document with a problem on every node says so once per kind of problem)
MAX_NOTES = 200

#: the node kind of each input spec tag
INPUT_KINDS = {"parameter": "parameter", "buffer": "buffer", "tensor_constant": "constant",
               "constant_input": "constant", "custom_obj": "custom_obj", "token": "token",
               "user_input": "user_input"}
#: the metadata keys shown in their own fields (the rest go to ``meta.other``)
_OWN_META = ("stack_trace", "nn_module_stack", "source_fn_stack", "torch_fn")


def choose_program(archive: Pt2Archive, program: str | None) -> str:
    """``program``, or the archive's ``model`` (else its first program) when None; a
    ``SerializeError`` naming the programs there are when the archive has no such program."""
    models = archive.models()
    if program is None:
        if not models:
            raise SerializeError("the archive holds no program")
        return "model" if "model" in models else models[0]
    if program not in models:
        names = ", ".join(repr(m) for m in models) or "none"
        raise SerializeError(f"no program {program!r} in the archive; its programs: {names}")
    return program


def read_program(archive: Pt2Archive, program: str) -> schema.ExportedProgram:
    """The program's document as ``inspect`` reads it (``SerializeError`` when it does not decode:
    inspect then notes why)."""
    pr = archive.program(program)
    return pr.decode(pr.raw_document())


def short_op(target: str) -> str:
    """A node's short label: ``torch.ops.aten.add.Tensor`` -> ``add``,
    ``torch.ops.higher_order.cond`` -> ``cond``, ``#ns:op`` -> ``op``, ``_operator.getitem`` -> ``getitem``."""
    if target.startswith("#"):
        return target.rpartition(":")[2] or target
    parts = target.removeprefix("torch.ops.").split(".")
    if target.startswith("torch.ops.") and len(parts) >= 2:
        return parts[1]
    return parts[-1] or target


def clip_text(text: str) -> str:
    """``text`` cut at :data:`MAX_TEXT` characters (then ``...``)."""
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 3] + "..."


def number_text(value: Any) -> str | None:
    """An integer the page shows, as decimal text (JSON numbers lose digits past 2**53 in a
    browser, and overflow to ``null`` past ~1e308); ``None`` stays ``None``."""
    return None if value is None else str(value)


class _Notes(list):
    """Notes, at most :data:`MAX_NOTES` (then one line saying how many more), each clipped."""

    dropped = 0

    def add(self, text: str) -> None:
        if len(self) < MAX_NOTES:
            self.append(clip_text(text))
        else:
            self.dropped += 1

    def done(self) -> list[str]:
        return list(self) + ([f"... and {self.dropped} more notes"] if self.dropped else [])


class _Labels:
    """Edge labels of a graph's values, each computed once: ``f32[s0, 3]``, ``sym_int s0``,
    ``obj <class>``; ``?`` for a name no value table holds."""

    def __init__(self, g: schema.Graph, dims: dict) -> None:
        self.g = g
        self.dims = dims  # expression text -> rendered (shared by all graphs of the program)
        self.cache: dict[tuple[str, str], str] = {}

    def dim(self, s: schema.SymInt) -> str:
        if s.type == "as_int":
            return str(s.as_int)
        text = s.as_expr.expr_str
        if text not in self.dims:
            self.dims[text] = str(sym_text(s))
        return self.dims[text]

    def label(self, table: str, name: str) -> str:
        key = (table, name)
        if key not in self.cache:
            self.cache[key] = clip_text(self._label(table, name))
        return self.cache[key]

    def _label(self, table: str, name: str) -> str:
        value = getattr(self.g, table).get(name)
        if value is None:
            return "?"
        if table == "tensor_values":
            dt = DTYPES.get(value.dtype)
            return f"{dt.short if dt else f'dtype{int(value.dtype)}'}[{', '.join(self.dim(s) for s in value.sizes)}]"
        if table == "custom_obj_values":
            return f"obj {value.class_fqn}"
        kind = table.removesuffix("_values")
        if value.type == "as_expr":
            return f"{kind} {self.dim(schema.SymInt._of('as_expr', value.as_expr))}"
        return f"{kind} {value.value!r}"


def _module_stack(text: str | None, cache: dict, notes: _Notes) -> tuple[list[str], list[str]]:
    """(paths, types) of an ``nn_module_stack``, outermost first, the root module (empty path) left out."""
    if not text:
        return [], []
    if text not in cache:
        paths, types = [], []
        for item in text.split(";"):
            try:
                _, path, ty = split_module_stack_entry(item)
            except SerializeError as e:
                notes.add(f"malformed nn_module_stack: {e}")
                continue
            if path:
                paths.append(path)
                types.append(ty)
        cache[text] = (paths, types)
    return cache[text]


def _meta(metadata: dict[str, str]) -> dict:
    source = metadata.get("source_fn_stack")
    torch_fn = metadata.get("torch_fn")
    return {"stack_trace": metadata.get("stack_trace"),
            "source_fn": source.split(";") if source else [],
            "torch_fn": torch_fn.split(";") if torch_fn else None,
            "other": {k: str(v) for k, v in metadata.items() if k not in _OWN_META}}


def _node(nid: str, name: str, kind: str, op: str, target: str) -> dict:
    return {"id": nid, "name": name, "kind": kind, "op": op, "target": target, "module": [], "module_types": [],
            "args": [], "meta": {"stack_trace": None, "source_fn": [], "torch_fn": None, "other": {}},
            "subgraphs": [], "outputs": [], "status": None, "change": None}


def _input_kind(spec: schema.InputSpec | None) -> str:
    return "user_input" if spec is None else INPUT_KINDS[spec.type]


def build_graphs(doc: schema.ExportedProgram, notes: _Notes) -> list[dict]:
    """The graphs of the view model: the top graph, then its subgraphs (breadth first), each
    with ``owner`` the id of the node that calls it."""
    graphs: list[dict] = []
    dims: dict[str, str] = {}
    stacks: dict[str, tuple] = {}
    queue = deque([(doc.graph_module.graph, "program", None, doc.graph_module.signature)])
    while queue:
        g, title, owner, sig = queue.popleft()
        gid = f"g{len(graphs)}"
        values: dict[str, str] = {}  # each value's label, once: edges and outputs name the value
        out = {"id": gid, "title": title, "owner": owner, "nodes": [], "edges": [], "values": values}
        graphs.append(out)
        labels = _Labels(g, dims)
        producer: dict[str, str] = {}
        nodes, edges = out["nodes"], out["edges"]

        def value(ref) -> str:
            if ref.name not in values:
                values[ref.name] = labels.label(ref.table, ref.name)
            return ref.name

        def uses(nid: str, arg: schema.Argument, seen: set) -> None:
            for ref in argument_refs(arg):
                src = producer.get(ref.name)
                if src is not None and (src, ref.name) not in seen:
                    seen.add((src, ref.name))
                    edges.append({"from": src, "to": nid, "value": value(ref)})

        specs = sig.input_specs if sig is not None else []
        for i, arg in enumerate(g.inputs):
            spec = specs[i] if i < len(specs) else None
            refs = list(argument_refs(arg))
            name = refs[0].name if refs else spec.value.name if spec is not None and spec.type == "constant_input" \
                else f"input_{i}"
            kind = _input_kind(spec)
            node = _node(f"{gid}/{len(nodes)}", name, kind, kind, (spec_target(spec) if spec else None) or name)
            node["args"] = [{"name": "value", "text": clip_text(argument_text(arg, names=True))}]
            node["outputs"] = [value(r) for r in refs]
            for r in refs:
                producer[r.name] = node["id"]
            nodes.append(node)
        for j, n in enumerate(g.nodes):
            nid = f"{gid}/{len(nodes)}"
            outs = [r for o in n.outputs for r in argument_refs(o)]
            target = n.target if isinstance(n.target, str) else str(n.target)
            name = n.name or (outs[0].name if len(outs) == 1 else f"{short_op(target)}_{j}")
            node = _node(nid, name, "op", short_op(target), target)
            node["module"], node["module_types"] = _module_stack(n.metadata.get("nn_module_stack"), stacks, notes)
            node["args"] = [{"name": a.name or f"[{k}]", "text": clip_text(argument_text(a.arg, names=True))}
                            for k, a in enumerate(n.inputs)]
            node["meta"] = _meta(n.metadata)
            seen: set = set()
            for a in n.inputs:
                uses(nid, a.arg, seen)
                if a.arg.type == "as_graph":
                    node["subgraphs"].append(f"g{len(graphs) + len(queue)}")
                    queue.append((a.arg.as_graph.graph, a.arg.as_graph.name, nid, None))
            node["outputs"] = [value(r) for r in outs]
            for r in outs:
                producer[r.name] = nid
            nodes.append(node)
        nid = f"{gid}/{len(nodes)}"
        node = _node(nid, "output", "output", "output", "output")
        out_specs = sig.output_specs if sig is not None else []
        node["args"] = [{"name": out_specs[k].type if k < len(out_specs) else f"[{k}]",
                         "text": clip_text(argument_text(a, names=True))} for k, a in enumerate(g.outputs)]
        seen = set()
        for a in g.outputs:
            uses(nid, a, seen)
        nodes.append(node)
    return graphs


def joined_text(texts) -> str:
    """``", ".join(texts)`` clipped at :data:`MAX_TEXT`, read no further than the clip (an output may list one value
    thousands of times)."""
    out, size = [], 0
    for t in texts:
        out.append(t)
        size += len(t) + 2
        if size > MAX_TEXT:
            break
    return clip_text(", ".join(out))


def _signature(doc: schema.ExportedProgram) -> dict:
    g, sig = doc.graph_module.graph, doc.graph_module.signature
    labels = _Labels(g, {})
    inputs = []
    for spec, arg in zip(sig.input_specs, g.inputs):
        refs = list(argument_refs(arg))
        name = refs[0].name if refs else spec_target(spec) or ""
        inputs.append({"kind": INPUT_KINDS[spec.type], "name": name, "target": spec_target(spec),
                       "persistent": spec.value.persistent if spec.type == "buffer" else None,
                       "label": joined_text(labels.label(r.table, r.name) for r in refs) or
                       clip_text(argument_text(arg, names=True))})
    outputs = []
    for spec, arg in zip(sig.output_specs, g.outputs):
        refs = list(argument_refs(arg))
        outputs.append({"kind": spec.type, "name": refs[0].name if refs else None, "target": spec_target(spec),
                        "label": joined_text(labels.label(r.table, r.name) for r in refs) or
                        clip_text(argument_text(arg, names=True))})
    return {"inputs": inputs, "outputs": outputs}


def weights_table(archive: Pt2Archive, entries: list[TensorEntry]) -> tuple[list[dict], list[dict]]:
    """The weights and constants of a program (name, section, dtype, shape, bytes, the record of
    its storage, ``shared``: the index of its storage group or ``None``) and the storage groups,
    each listed once: ``{record, names}`` of a storage several entries view (linear in the entries)."""
    groups = shared_storages(archive, entries)
    shared = {name: i for i, group in enumerate(groups) for name in group["names"]}
    out = []
    for e in entries:
        storage = None if e.record is None else archive.rel(e.record) + (f":{e.inner}" if e.inner else "")
        out.append({"name": e.name, "section": e.folder, "kind": e.kind,
                    "dtype": e.dtype if e.kind in ("tensor", "pickled_tensor") else e.kind.replace("_", " "),
                    "shape": [str(s) for s in e.sizes], "nbytes": number_text(e.nbytes), "storage": storage,
                    "shared": shared.get(e.name)})
    return out, groups


def _verdict(archive: Pt2Archive, program: str, notes: _Notes, documents: dict) -> dict:
    """Validate's verdict and inspect's readers; ``documents`` receives the decoded documents."""
    errors = validation_errors(archive)
    report = inspect_archive(archive, errors, documents)
    for p in report["programs"]:
        if p["name"] == program:
            for n in p["notes"]:
                notes.add(f"{n['level']}: {n['message']}" + (f" @ {n['where']}" if n["where"] else ""))
    for e in errors:
        notes.add(f"invalid: {e.message} @ {e.where}" + (f" ({e.record})" if e.record else ""))
    readers = [r["reader"] for r in report["readers"] if r["readable"]]
    text = ("valid" if not errors else f"invalid ({len(errors)} error{'s' if len(errors) != 1 else ''})") + \
        "; readable by " + (", ".join(readers) or "none")
    return {"valid": not errors, "readable_by": readers, "text": text}


def program_view(archive: Pt2Archive, program: str | None = None, title: str | None = None) -> dict:
    """The view model of one program of an opened archive (``kind`` "program"). ``program``:
    its name (default :func:`choose_program`'s); ``title``: default the file's base name.
    ``SerializeError`` when there is no such program or its document does not decode."""
    with gc_paused():  # many small objects: collections over them would cost more than the work
        return build_view(archive, choose_program(archive, program), title)


def build_view(archive: Pt2Archive, program: str, title: str | None = None) -> dict:
    """:func:`program_view` of a program the archive holds, the collector left as it is."""
    notes = _Notes()
    documents: dict = {}
    verdict = _verdict(archive, program, notes, documents)
    doc = documents.get(program) or read_program(archive, program)  # SerializeError: it does not decode
    symbols, derived = symbol_ranges(doc)
    pr = archive.program(program)
    problems: list[Problem] = []  # already notes (inspect's report)
    entries = pr.entries("weights", problems) + pr.entries("constants", problems)
    graphs = build_graphs(doc, notes)
    weights, storages = weights_table(archive, entries)
    return {
        "format": FORMAT,
        "kind": "program",
        "title": title if title is not None else os.path.basename(archive.path or "") or "archive",
        "generator": GENERATOR,
        "program": program,
        "programs": archive.models(),
        "torch_version": doc.torch_version,
        "verdict": verdict,
        "notes": notes.done(),
        "signature": _signature(doc),
        "symbols": [{"name": s["name"], "min": number_text(s["min"]), "max": number_text(s["max"])} for s in symbols] +
                   [{"name": d["expr"], "min": number_text(d["min"]), "max": number_text(d["max"]), "derived": True}
                    for d in derived],
        "weights": weights,
        "storages": storages,
        "extra_files": [{"name": n, "size": number_text(size)} for n, size in archive.extra_files()],
        "graphs": graphs,
        "diff": None,
    }
