"""Which releases can read an archive: PyTorch 2.5 ... 2.14 and pt2serde (torch-free).

:func:`readable_by` decides, from the archive's layout and what each program document
uses, whether each release's stock loader (``torch.export.load``, or ``load_pt2`` for
archives of several programs) reads the archive, and if not, why. It reads nothing itself:
the caller describes each program with :func:`program_facts` (one pass over the raw JSON
document, as written, before any upgrade) and the payload records it found.

The rules are the measured behaviour of the real releases (the compat corpus,
``compat-corpus/`` in the repository: every release reading every other release's archives), each
release's row of :data:`pt2serde.format.releases.RELEASES` (its schema and loader limits) and
what each schema lacks (``pt2serde.format.upgrade.DOWN_STEPS``; the 2.8 and 2.9 schemas were
compared field by field with the installed releases):

* **Layout.** 2.5, 2.6 and 2.7 read only the plain zip they write
  (``serialized_exported_program.json`` at the zip root); 2.8 and later read the PT2
  archive and fall back to the plain zip. 2.8 reads a PT2 archive only when weights and
  constants are whole-dict ``torch.save`` records (``data/weights/<m>.pt``); 2.9 and later
  also read raw records (``<m>_weights_config.json``). ``torch.export.load`` reads only a
  program named ``model``; other archives need ``load_pt2`` (2.8+).
* **Schema major.** 2.5 reads schema 7 only, every later release schema 8 only.
* **What a schema version lacks.** Argument kinds, output-spec kinds and dtypes added
  after a release's schema make it fail (``KeyError``). Releases up to 2.8 also build every
  record with exactly the fields they know (``cls(**data)``), so a field added later fails
  too (``unexpected keyword argument``); 2.9 and later ignore unknown fields.
* **Content.** Documents of schema 8.2 (PyTorch 2.6) write the tuple output of a
  higher-order op as one ``as_tensors`` output, which 2.8 and later refuse; their ``scan``
  nodes carry 6 inputs (``dim``, ``reverse``), which loads but fails when run from 2.7
  on. 2.5 and 2.6 do not resolve the higher-order ops ``auto_functionalized`` and
  ``wrap_with_set_grad_enabled``; 2.5 reads only tensor, SymInt, SymBool, int and None
  graph outputs, and runs no ``while_loop`` it loads (``carried_inputs must be a tuple``).
  2.9 cannot rebuild a Parameter of a non-floating dtype from raw records (it forces
  ``requires_grad``).

**Validity.** An archive that ``pt2serde validate`` refuses is read by no release: the
checks are the ones ``load`` applies (:mod:`pt2serde.format.check`), and a document that breaks them
(a value used but never defined, a signature that disagrees with the graph, a field of the
wrong type) makes PyTorch's loader raise as well. Two kinds of error bind pt2serde alone:
its upgrade of an older document (the release that wrote it reads it), and records only
unpickling can read (PyTorch unpickles them).

PyTorch 2.10 - 2.12 are not listed: there are no measurements of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .. import schema
from .contents import LEGACY_VERSION
from ..errors import SerializeError
from .releases import RELEASES, Release
from .upgrade import DOWN_STEPS, document_version
from .tables import DTYPES, GRAD_DTYPE_NAMES

__all__ = ["Release", "RELEASES", "Verdict", "DocumentFeatures", "ProgramFacts", "document_features",
           "program_facts", "readable_by", "FLOATING_DTYPES"]

V = tuple[int, int]

PT2SERDE = "pt2serde"
#: for its payload rules: those of the newest release, at the current schema
_PT2SERDE_RELEASE = dataclasses.replace(RELEASES[-1], name=PT2SERDE, schema=schema.SCHEMA_VERSION)


def _versioned() -> tuple[dict[str, V], dict[int, V], dict[tuple[str, str], V]]:
    """(argument/output-spec member, dtype code, (record, field)) -> the schema version that added it.

    From ``upgrade.DOWN_STEPS`` (what 8.14 lacks relative to 8.20, what 8.8 lacks relative
    to 8.14), plus the fields 8.7 added, which no pt2serde target needs to drop (measured:
    2.6 fails on ``treespec_namedtuple_fields``; 2.6 documents carry none of these fields).
    """
    members: dict[str, V] = {}
    dtypes: dict[int, V] = {}
    fields: dict[tuple[str, str], V] = {
        ("GraphModule", "treespec_namedtuple_fields"): (8, 7),
        ("Node", "is_hop_single_tensor_return"): (8, 7),
        ("NamedArgument", "kind"): (8, 7),
    }
    added_in = schema.SCHEMA_VERSION
    for lacks in DOWN_STEPS:
        for m in lacks.argument_members | lacks.output_spec_members:
            members[m] = added_in
        for code in lacks.scalar_types:
            dtypes[code] = added_in
        for f in lacks.dropped_node_fields:
            fields[("Node", f)] = added_in
        for f in lacks.dropped_program_fields:
            fields[("ExportedProgram", f)] = added_in
        added_in = lacks.target
    return members, dtypes, fields


MEMBER_ADDED, DTYPE_ADDED, FIELD_ADDED = _versioned()
_DTYPE_NAMES = {int(code): dt.name for code, dt in DTYPES.items()}
#: higher-order ops 2.5 and 2.6 do not resolve when loading ("Unsupported target type")
UNRESOLVED_BEFORE_2_7 = ("torch.ops.higher_order.auto_functionalized",
                         "torch.ops.higher_order.wrap_with_set_grad_enabled")
#: graph output kinds PyTorch 2.5 reads back
OUTPUTS_2_5 = frozenset({"as_tensor", "as_sym_int", "as_sym_bool", "as_int", "as_none"})
#: dtypes a Parameter may have with requires_grad=True (floating and complex; float8 compares as bytes)
FLOATING_DTYPES = GRAD_DTYPE_NAMES


def _vtext(v: V) -> str:
    return f"{v[0]}.{v[1]}"


# ================================================================= document features


@dataclass
class DocumentFeatures:
    """What a raw program document uses that some release cannot read; each with its first ``$.path``."""

    version: V | None = None
    members: dict[str, str] = field(default_factory=dict)  # versioned union member -> path
    dtypes: dict[int, str] = field(default_factory=dict)  # versioned dtype code -> path
    fields: dict[tuple[str, str], str] = field(default_factory=dict)  # (record, field) -> path
    hop_tuple_output: tuple[str, str] | None = None  # (target, path): outputs [{"as_tensors": [...]}]
    old_scan: str | None = None  # path of a scan node with 6 inputs (dim, reverse)
    hops: dict[str, str] = field(default_factory=dict)  # higher-order target -> path of its first node
    graph_outputs: dict[str, str] = field(default_factory=dict)  # top-level graph output kind -> path


class _Path:
    """A ``$.path`` as a chain of segments, joined only when a feature is recorded."""

    __slots__ = ("parent", "seg")

    def __init__(self, parent: "_Path | None", seg: str) -> None:
        self.parent = parent
        self.seg = seg

    def __str__(self) -> str:
        segs = []
        p: _Path | None = self
        while p is not None:
            segs.append(p.seg)
            p = p.parent
        return "".join(reversed(segs))


def _is_node(obj: dict) -> bool:
    return isinstance(obj.get("target"), str) and isinstance(obj.get("inputs"), list) \
        and isinstance(obj.get("outputs"), list)


def document_features(raw: Any) -> DocumentFeatures:
    """One pass over a JSON-decoded document as written (call it before upgrading)."""
    feats = DocumentFeatures()
    if not isinstance(raw, dict):
        return feats
    try:
        feats.version = document_version(raw)
    except SerializeError:  # the caller reports the document's problems
        feats.version = None
    root = _Path(None, "$")
    for f in raw:
        if ("ExportedProgram", f) in FIELD_ADDED:
            feats.fields.setdefault(("ExportedProgram", f), f"$.{f}")
    gm = raw.get("graph_module")
    if isinstance(gm, dict):
        for f in gm:
            if ("GraphModule", f) in FIELD_ADDED:
                feats.fields.setdefault(("GraphModule", f), f"$.graph_module.{f}")
        graph = gm.get("graph")
        outputs = graph.get("outputs") if isinstance(graph, dict) else None
        if isinstance(outputs, list):
            for i, o in enumerate(outputs):
                if isinstance(o, dict) and len(o) == 1:
                    feats.graph_outputs.setdefault(next(iter(o)), f"$.graph_module.graph.outputs[{i}]")
    members, dtypes = MEMBER_ADDED, DTYPE_ADDED
    stack: list[tuple[Any, _Path]] = [(raw, root)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            if len(value) == 1:
                (key,) = value
                if key in members and key not in feats.members:
                    feats.members[key] = f"{path}.{key}"
            for key in ("dtype", "as_scalar_type"):
                code = value.get(key)
                if type(code) is int and code in dtypes and code not in feats.dtypes:
                    feats.dtypes[code] = f"{path}.{key}"
            if _is_node(value):
                _node_features(value, path, feats)
            for k, v in reversed(value.items()):  # reversed: popped in document order
                if isinstance(v, (dict, list)):
                    stack.append((v, _Path(path, f".{k}")))
        else:
            for i in range(len(value) - 1, -1, -1):
                v = value[i]
                if isinstance(v, (dict, list)):
                    stack.append((v, _Path(path, f"[{i}]")))
    return feats


def _node_features(node: dict, path: _Path, feats: DocumentFeatures) -> None:
    for f in ("is_hop_single_tensor_return", "name"):
        if f in node and ("Node", f) in FIELD_ADDED:
            feats.fields.setdefault(("Node", f), f"{path}.{f}")
    for i, inp in enumerate(node["inputs"]):
        if isinstance(inp, dict) and "kind" in inp:
            feats.fields.setdefault(("NamedArgument", "kind"), f"{path}.inputs[{i}].kind")
            break
    target = node["target"]
    if not target.startswith("torch.ops.higher_order."):
        return
    feats.hops.setdefault(target, str(path))
    outputs = node["outputs"]
    if (feats.hop_tuple_output is None and node.get("is_hop_single_tensor_return") is None and len(outputs) == 1
            and isinstance(outputs[0], dict) and isinstance(outputs[0].get("as_tensors"), list)):
        feats.hop_tuple_output = (target, f"{path}.outputs[0].as_tensors")
    if target == "torch.ops.higher_order.scan" and len(node["inputs"]) == 6 and feats.old_scan is None:
        feats.old_scan = f"{path}.inputs"


# ===================================================================== programs


@dataclass
class ProgramFacts:
    """One program as the rules need it (see :func:`program_facts`)."""

    name: str
    document_record: str
    features: DocumentFeatures | None  # None: the document could not be parsed
    document_error: str | None = None  # why it could not be parsed
    decode_error: str | None = None  # why pt2serde cannot decode it (after upgrading)
    storages: dict[str, str | None] = field(default_factory=dict)  # folder -> "raw" | "torch_save" | None
    payload_records: dict[str, str] = field(default_factory=dict)  # folder -> the record it was looked up as
    int_params: list[str] = field(default_factory=list)  # non-floating parameters stored as raw records
    pickled: list[str] = field(default_factory=list)  # entries or records only unpickling can load


def program_facts(name: str, document_record: str, features: DocumentFeatures | None, *,
                  document_error: str | None = None, decode_error: str | None = None,
                  storages: dict[str, str | None] | None = None, payload_records: dict[str, str] | None = None,
                  entries: list = (), pickled: list[str] = ()) -> ProgramFacts:
    """Facts of one program. ``features``: :func:`document_features` of the document as
    written (None when it could not be parsed: ``document_error`` says why); ``entries``:
    its weights and constants (:class:`pt2serde.format.tensor_entries.TensorEntry`)."""
    int_params = [e.name for e in entries
                  if e.is_param and e.inner is None and e.kind == "tensor" and e.dtype not in FLOATING_DTYPES]
    return ProgramFacts(name, document_record, features, document_error, decode_error, dict(storages or {}),
                        dict(payload_records or {}), int_params, list(pickled))


# ====================================================================== verdicts


@dataclass
class Verdict:
    """Whether ``reader`` reads the archive. ``fails_at``: ``"load"``, or ``"run"`` when it
    loads but the program fails when called; ``reason``: why not (for a yes, a caveat or None);
    ``where``: the record (and ``$.path``) the reason is about."""

    reader: str
    readable: bool
    reason: str | None = None
    fails_at: str | None = None
    where: str | None = None

    def as_dict(self) -> dict:
        return {"reader": self.reader, "readable": self.readable, "fails_at": self.fails_at,
                "reason": self.reason, "where": self.where}


@dataclass
class _Issue:
    reason: str
    where: str | None = None
    stage: str = "load"  # "load" | "run"


def _at(p: ProgramFacts, path: str | None) -> str:
    return p.document_record if path is None else f"{p.document_record} {path}"


def _major_issue(release: Release, version: str, what: str) -> str | None:
    major = version.split(".")[0]
    if major != str(release.schema[0]):
        return f"schema {version} ({what}); {release.name} reads schema {release.schema[0]}.x only"
    return None


def _names(items: list[str]) -> str:
    return ", ".join(f"`{x}`" for x in items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")


def _document_issues(release: Release, p: ProgramFacts) -> list[_Issue]:
    f = p.features
    if f is None or f.version is None:
        return [_Issue(f"the document cannot be read: {p.document_error or 'no schema_version'}", p.document_record)]
    out: list[_Issue] = []
    major = _major_issue(release, _vtext(f.version), "the document")
    if major:
        return [_Issue(major, _at(p, "$.schema_version"))]
    S = release.schema
    lacked = [(m, path) for m, path in f.members.items() if MEMBER_ADDED[m] > S]
    if lacked:
        added = max(MEMBER_ADDED[m] for m, _ in lacked)
        out.append(_Issue(f"uses {_names([m for m, _ in lacked])} (schema {_vtext(added)}), unknown to schema "
                          f"{_vtext(S)}", _at(p, lacked[0][1])))
    lacked_dt = [(c, path) for c, path in f.dtypes.items() if DTYPE_ADDED[c] > S]
    if lacked_dt:
        added = max(DTYPE_ADDED[c] for c, _ in lacked_dt)
        names = [f"{_DTYPE_NAMES.get(c, c)}" for c, _ in lacked_dt]
        out.append(_Issue(f"uses dtype {', '.join(names)} (schema {_vtext(added)}), unknown to schema {_vtext(S)}",
                          _at(p, lacked_dt[0][1])))
    if release.strict_fields:
        lacked_f = [(k, path) for k, path in f.fields.items() if FIELD_ADDED[k] > S]
        if lacked_f:
            added = max(FIELD_ADDED[k] for k, _ in lacked_f)
            out.append(_Issue(f"has {_names([f'{r}.{n}' for (r, n), _ in lacked_f])} (schema {_vtext(added)}); "
                              f"{release.name} refuses fields its schema {_vtext(S)} lacks (`unexpected keyword "
                              "argument`)", _at(p, lacked_f[0][1])))
    if S >= (8, 8) and f.hop_tuple_output is not None:
        target, path = f.hop_tuple_output
        out.append(_Issue(f"`{target.rsplit('.', 1)[1]}` has its outputs as one `as_tensors` (written by schema "
                          "8.2), which 2.8 and later refuse", _at(p, path)))
    if S >= (8, 7) and f.old_scan is not None:
        out.append(_Issue("a `scan` node with the 6 inputs of schema 8.2 (dim, reverse); ScanOp takes 4 from 2.7 "
                          "on (`takes 5 positional arguments but 7 were given`)", _at(p, f.old_scan), "run"))
    if S < (8, 7):
        for target in UNRESOLVED_BEFORE_2_7:
            if target in f.hops:
                out.append(_Issue(f"uses the higher-order op `{target.rsplit('.', 1)[1]}`, which {release.name} "
                                  "does not resolve when loading (`Unsupported target type`)", _at(p, f.hops[target])))
    if S < (8, 0):
        for kind, path in f.graph_outputs.items():
            if kind not in OUTPUTS_2_5:
                out.append(_Issue(f"a graph output of kind `{kind}`; 2.5 reads only tensor, SymInt, SymBool, int "
                                  "and None outputs", _at(p, path)))
        if "torch.ops.higher_order.while_loop" in f.hops:
            out.append(_Issue("a `while_loop`, which 2.5 loads with a list of carried inputs "
                              "(`carried_inputs must be a tuple`)", _at(p, f.hops["torch.ops.higher_order.while_loop"]),
                              "run"))
    return out


def _storage_issues(release: Release, p: ProgramFacts, layout: str) -> list[_Issue]:
    if layout != "pt2":
        return []
    out: list[_Issue] = []
    for folder in ("weights", "constants"):
        fmt = p.storages.get(folder)
        record = p.payload_records.get(folder)
        if fmt is None:
            out.append(_Issue(f"{folder} record {record} is missing", record))
        elif fmt not in release.pt2_storages:
            out.append(_Issue(f"{folder} stored as raw records ({p.name}_{folder}_config.json); {release.name} reads "
                              f"only whole-dict torch.save records (data/{folder}/{p.name}.pt)", record))
    if not release.raw_int_params and p.int_params:
        out.append(_Issue(f"non-floating parameter {_names(p.int_params)} stored as a raw record, which "
                          f"{release.name} rebuilds with requires_grad=True and fails",
                          p.payload_records.get("weights")))
    return out


def _version_record_issue(version_record: str | None) -> str | None:
    """Every reader of the plain zip reads its schema version from the ``version`` record."""
    if version_record is None:
        return "the plain zip has no `version` record"
    parts = version_record.strip().split(".")
    if len(parts) != 2 or not all(x.isdigit() for x in parts):
        return f"`version` record {version_record.strip()[:16]!r} is not 'major.minor'"
    return None


def _release_verdict(release: Release, layout: str, programs: list[ProgramFacts],
                     version_record: str | None) -> Verdict:
    issues: list[_Issue] = []
    if layout == "legacy":
        issue = _version_record_issue(version_record) or \
            _major_issue(release, version_record.strip(), "the `version` record")
        if issue:
            return Verdict(release.name, False, issue, "load", LEGACY_VERSION)
    elif not release.reads_pt2:
        return Verdict(release.name, False, "a PT2 archive; 2.5, 2.6 and 2.7 read only their plain zip "
                       "(PT2 archives need 2.8+)", "load", None)
    if not programs:
        return Verdict(release.name, False, "the archive holds no program", "load", None)
    several = len(programs) > 1
    for p in programs:
        for issue in _storage_issues(release, p, layout) + _document_issues(release, p):
            if several:
                issue.reason = f"program `{p.name}`: {issue.reason}"
            issues.append(issue)
    for stage in ("load", "run"):
        first = next((i for i in issues if i.stage == stage), None)
        if first is not None:
            return Verdict(release.name, False, first.reason, stage, first.where)
    if layout == "pt2" and [p.name for p in programs] != ["model"]:
        names = ", ".join(f"`{p.name}`" for p in programs)
        return Verdict(release.name, True, f"with load_pt2: torch.export.load reads only a program named `model` "
                                           f"(this archive holds {names})")
    return Verdict(release.name, True)


def _pt2serde_verdict(layout: str, programs: list[ProgramFacts], version_record: str | None,
                      markers: dict[str, str | None]) -> Verdict:
    if layout == "legacy":
        issue = _version_record_issue(version_record)
        if issue:
            return Verdict(PT2SERDE, False, issue, "load", LEGACY_VERSION)
    else:
        if markers.get("archive_format") != "pt2":
            return Verdict(PT2SERDE, False, "`archive_format` is not 'pt2'", "load", "archive_format")
        if (markers.get("archive_version") or "").strip() != "0":
            return Verdict(PT2SERDE, False, "`archive_version` is not '0'", "load", "archive_version")
        if not programs:
            return Verdict(PT2SERDE, False, "the archive holds no program", "load", None)
    several = len(programs) > 1
    caveats: list[str] = []
    for p in programs:
        prefix = f"program `{p.name}`: " if several else ""
        if p.features is None:
            return Verdict(PT2SERDE, False, f"{prefix}the document cannot be read: {p.document_error}", "load",
                           p.document_record)
        if p.decode_error is not None:
            return Verdict(PT2SERDE, False, f"{prefix}{p.decode_error}", "load", p.document_record)
        missing = _storage_issues(_PT2SERDE_RELEASE, p, layout)
        if missing:
            return Verdict(PT2SERDE, False, prefix + missing[0].reason, "load", missing[0].where)
        if p.pickled:
            shown = ", ".join(p.pickled[:3]) + (" ..." if len(p.pickled) > 3 else "")
            caveats.append(f"{prefix}with allow_pickle=True ({shown} only unpickling can load)")
    return Verdict(PT2SERDE, True, "; ".join(caveats) or None)


def readable_by(layout: str, programs: list[ProgramFacts], *, version_record: str | None = None,
                markers: dict[str, str | None] | None = None, invalid: list | tuple = ()) -> list[Verdict]:
    """One :class:`Verdict` per release of :data:`RELEASES`, then pt2serde's.

    ``layout``: ``"pt2"`` or ``"legacy"`` (the plain zip of 2.5-2.7); ``version_record``: the
    legacy ``version`` record's text; ``markers``: the PT2 ``archive_format`` and
    ``archive_version`` records' texts (pt2serde checks them); ``invalid``: the errors
    ``pt2serde validate`` finds (:class:`pt2serde.format.problem.Problem`, from
    :func:`pt2serde.format.check.check_archive`, less the records only unpickling reads). No reader
    is said to read an archive that fails validation: a reader that would otherwise read it
    (or load it and fail when run) is given the first error instead (a graph naming a value
    it never defines, a signature that disagrees with the graph: PyTorch's loader raises
    there too). Errors about pt2serde's upgrade of an older document bind pt2serde only.
    """
    out = [_release_verdict(r, layout, programs, version_record) for r in RELEASES]
    out.append(_pt2serde_verdict(layout, programs, version_record, markers or {}))
    for_torch = [p for p in invalid if not _pt2serde_reading_only(p)]
    return [_unless_invalid(v, invalid if v.reader == PT2SERDE else for_torch) for v in out]


def _pt2serde_reading_only(problem) -> bool:
    """A validation error about how pt2serde reads a document of another schema version (its
    upgrade, its version rules): each release's own version rules judge those
    (:func:`_document_issues`), so they say nothing about what that release reads."""
    return problem.where == "$.schema_version" or problem.upgrade_rule


def _unless_invalid(v: Verdict, invalid: list) -> Verdict:
    """``v``, or "no" with the first validation error when ``v`` says the reader loads the archive."""
    if not invalid or (not v.readable and v.fails_at == "load"):
        return v
    first = invalid[0]
    where = first.where if first.record in (None, first.where) else f"{first.record} {first.where}"
    return Verdict(v.reader, False, f"fails validation (pt2serde validate): {first.message} @ {first.where}", "load",
                   where)
