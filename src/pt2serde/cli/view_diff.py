"""``pt2serde diff --html``: the view model of a diff between two archives (torch-free).

:func:`diff_view` builds both programs' view models (:mod:`pt2serde.cli.view_model`) and
merges them into one (``kind`` "diff"): B's graphs, nodes and weights, plus A's removed ones,
each with a ``status`` (``added``, ``removed``, ``changed`` or ``None``) and, when changed,
what changed. Graphs are matched by position (the top graph, then subgraphs in the order the
model lists them) and nodes by name within a graph. What ``diff`` itself found
(:func:`pt2serde.cli.diffing.diff_archives`) is given as text, with the signature and range
changes apart, to be shown on top. A's verdict, and A's signature, range constraints and extra
files where they differ from B's, are kept beside B's (``verdict_a``, ``signature_a``, ...).
"""

from __future__ import annotations

import os

from ..errors import SerializeError
from ..format.contents import Pt2Archive
from ..format.gcpause import gc_paused
from .diffing import Change, diff_archives
from .view_model import FORMAT, GENERATOR, build_view, joined_text

__all__ = ["diff_view", "REMOVED_PREFIX"]

#: node and graph ids of what only A holds start with this (B's ids never do)
REMOVED_PREFIX = "a:"
#: what makes two nodes of the same name differ besides their arguments, and how each is told
#: (``values``: the labels of the node's graph)
_COMPARED = (("target", lambda n, values: n["target"]),
             ("outputs", lambda n, values: joined_text(values.get(o, "?") for o in n["outputs"])),
             ("module", lambda n, values: joined_text(n["module"])))
#: the parts of a program's page that a diff page shows for A too, where A's differ from B's
_A_SIDE = ("signature", "symbols", "extra_files")


def _pick(arch_a: Pt2Archive, arch_b: Pt2Archive, program: str | None) -> str:
    a, b = arch_a.models(), arch_b.models()
    if program is not None:
        if program not in a and program not in b:
            names = ", ".join(repr(m) for m in dict.fromkeys(a + b)) or "none"
            raise SerializeError(f"no program {program!r} in either archive; their programs: {names}")
        return program
    for names in (b, a):
        if "model" in names:
            return "model"
    if not (a or b):
        raise SerializeError("neither archive holds a program")
    return (b or a)[0]


def _node_change(x: dict, y: dict, vx: dict, vy: dict) -> str | None:
    """What differs between two nodes of the same name (``None``: nothing), argument by argument;
    ``vx``, ``vy``: the value labels of their graphs."""
    told = [(what, get(x, vx), get(y, vy)) for what, get in _COMPARED]
    parts = [f"{what}: {_short(a)} -> {_short(b)}" for what, a, b in told if a != b]
    ax, ay = ({a["name"]: a["text"] for a in n["args"]} for n in (x, y))
    for name in dict.fromkeys([*ax, *ay]):
        if ax.get(name) != ay.get(name):
            parts.append(f"{name}: {_short(ax.get(name, '-'))} -> {_short(ay.get(name, '-'))}")
    return "; ".join(parts) or None


def _short(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."


def _merge_graphs(ga: list[dict], gb: list[dict]) -> list[dict]:
    """B's graphs with statuses, plus A's removed nodes and edges (and graphs only A holds); what
    is removed names values of A's graph, whose labels are the graph's ``values_a``."""
    def graph_id(i: int) -> str:
        return f"g{i}" if i < len(gb) else f"{REMOVED_PREFIX}g{i}"

    merged: list[dict] = []
    a_to_b: dict[str, str] = {}  # A's node id -> the id it is shown under
    for i in range(max(len(ga), len(gb))):
        a = ga[i] if i < len(ga) else None
        b = gb[i] if i < len(gb) else None
        if b is None:
            b = {"id": graph_id(i), "title": a["title"], "owner": None, "nodes": [], "edges": [], "values": {},
                 "status": "removed"}
        else:
            b = dict(b, status=None if a is not None else "added")
        b["values_a"] = a["values"] if a is not None else {}
        by_name = {n["name"]: n for n in (a["nodes"] if a is not None else [])}
        seen = set()
        for node in b["nodes"]:
            old = by_name.get(node["name"])
            if old is None or old["name"] in seen:
                node["status"] = "added"
                continue
            seen.add(old["name"])
            a_to_b[old["id"]] = node["id"]
            node["change"] = _node_change(old, node, a["values"], b["values"])
            node["status"] = "changed" if node["change"] else None
        if a is not None:
            for old in a["nodes"]:
                if old["id"] not in a_to_b:
                    a_to_b[old["id"]] = REMOVED_PREFIX + old["id"]
                    b["nodes"].append(dict(old, id=REMOVED_PREFIX + old["id"], status="removed", change=None,
                                           subgraphs=[graph_id(int(s[1:])) for s in old["subgraphs"]]))
        merged.append(b)
    for i, a in enumerate(ga):
        out = merged[i]
        if out["status"] == "removed":
            out["owner"] = a_to_b.get(a["owner"]) if a["owner"] else None
        known = {(e["from"], e["to"], e["value"]) for e in out["edges"]}
        for e in a["edges"]:
            src, dst = a_to_b[e["from"]], a_to_b[e["to"]]
            if src.startswith(REMOVED_PREFIX) or dst.startswith(REMOVED_PREFIX):
                if (src, dst, e["value"]) not in known:
                    out["edges"].append(dict(e, **{"from": src, "to": dst, "status": "removed"}))
    return merged


def _change_text(c: Change) -> str:
    return f"{c.kind} {c.subject}" + (f": {c.detail}" if c.detail else "")


def diff_view(arch_a: Pt2Archive, arch_b: Pt2Archive, program: str | None = None, title: str | None = None,
              changes: list[Change] | None = None) -> dict:
    """The view model of the diff of one program between two opened archives. ``changes``:
    :func:`diff_archives`' result when the caller has it (computed otherwise); ``title``:
    default ``"<a> -> <b>"`` (the files' base names). ``SerializeError`` when neither archive
    has the program or one of its documents does not decode."""
    if changes is None:
        changes = diff_archives(arch_a, arch_b)
    program = _pick(arch_a, arch_b, program)
    with gc_paused():
        va = build_view(arch_a, program) if program in arch_a.models() else None
        vb = build_view(arch_b, program) if program in arch_b.models() else None
    base = vb if vb is not None else va
    name_a = os.path.basename(arch_a.path or "") or "a"
    name_b = os.path.basename(arch_b.path or "") or "b"
    ours = [c for c in changes if c.program in (None, program)]
    weights = {c.subject: c.kind for c in ours if c.section in ("weights", "constants")}
    b_weights = vb["weights"] if vb is not None else []
    b_names = {w["name"] for w in b_weights}
    removed = [w for w in (va["weights"] if va is not None else []) if w["name"] not in b_names]
    b_storages = vb["storages"] if vb is not None else []
    weight_rows = [dict(w, status=weights.get(w["name"])) for w in b_weights]
    weight_rows += [dict(w, status="removed", shared=None if w["shared"] is None else len(b_storages) + w["shared"])
                    for w in removed]  # A's storage groups follow B's
    signature = [c for c in ours if c.section == "signature"]
    notes = (vb["notes"] if vb is not None else []) + [f"{name_a}: {n}" for n in (va["notes"] if va else [])]
    return {
        **base,
        "format": FORMAT,
        "kind": "diff",
        "title": title if title is not None else f"{name_a} -> {name_b}",
        "generator": GENERATOR,
        "program": program,
        "programs": list(dict.fromkeys(arch_b.models() + arch_a.models())),
        "notes": notes,
        "weights": weight_rows,
        "storages": b_storages + (va["storages"] if va is not None else []),
        "graphs": _merge_graphs(va["graphs"] if va else [], vb["graphs"] if vb else []),
        "verdict_a": va["verdict"] if va is not None else None,
        **{f"{part}_a": va[part] if va is not None and vb is not None and va[part] != vb[part] else None
           for part in _A_SIDE},
        "diff": {
            "a": name_a, "b": name_b,
            "changes": [{"section": c.section, "kind": c.kind, "subject": c.subject, "program": c.program,
                         "text": _change_text(c)} for c in changes],
            "signature": [_change_text(c) for c in signature if not c.subject.startswith("range of")],
            "ranges": [_change_text(c) for c in signature if c.subject.startswith("range of")],
            "weights": weights,
        },
    }
