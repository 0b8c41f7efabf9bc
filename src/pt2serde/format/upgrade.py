"""Version rules and upgraders for program documents, on plain JSON values (torch-free).

* Documents of older versions are upgraded to the current schema one step at a time by
  the functions in :data:`STEPS` (one per version step, each a small function on plain
  dicts), then decoded.
* A document of a major version no step leads from is refused, naming both versions,
  except the legacy "0.0" which means "unknown".
* A document of a newer minor version loads when it uses only what this reader knows:
  new fields left at their empty default are fine; a new field with a value, or an unknown
  union tag, is an error naming it and its ``$.path``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from . import codec

from .. import schema
from ..errors import SerializeError
from .legacy_expr import printed_to_srepr
from .releases import releases_reading
from .fastcodec import fast_counting_decoder
from .schema_decoder import collect_problems
from .strict_json import ColonCount, loads_json_counted

__all__ = [
    "document_version", "check_version", "decode_program", "program_from_json", "program_from_json_counted",
    "upgrade", "STEPS", "Step",
    "downgrade", "WRITABLE_TARGETS", "READERS", "pytorch_reader_gap", "writable_text", "unknown_field_text",
]


def document_version(raw: Any) -> tuple[int, int]:
    """The ``schema_version`` of a JSON-decoded program document."""
    if not isinstance(raw, dict):
        problem = f"Expected `object` (ExportedProgram), got `{codec.json_type_name(raw)}`"
        raise SerializeError(f"{problem} - at `$`", path="$", problem=problem)
    version = raw.get("schema_version")
    if not isinstance(version, dict):
        raise SerializeError("Object missing required field `schema_version` - at `$`", path="$",
                             problem="Object missing required field `schema_version`")
    major, minor = version.get("major"), version.get("minor")
    if type(major) is not int or type(minor) is not int:
        raise SerializeError("schema_version must hold integer `major` and `minor` - at `$.schema_version`",
                             path="$.schema_version", problem="schema_version must hold integer `major` and `minor`")
    return major, minor


def check_version(major: int, minor: int) -> None:
    """Refuse a version this reader can neither read directly nor upgrade."""
    current = schema.SCHEMA_VERSION
    if major != current[0] and (major, minor) != (0, 0):
        oldest = STEPS[0].source
        raise SerializeError(
            f"Serialized schema version {major}.{minor} does not match our current schema version "
            f"{current[0]}.{current[1]}: this reader reads versions {oldest[0]}.{oldest[1]} to "
            f"{current[0]}.{current[1]} (and newer minor versions of {current[0]})"
        )


# ============================================================================ upgraders

_MAX_WALK_DEPTH = 512


def _walk(value: Any, depth: int = 0) -> Iterator[dict]:
    """Every JSON object inside ``value`` (depth first), with a depth limit."""
    if depth > _MAX_WALK_DEPTH:
        raise SerializeError("document is nested too deeply to upgrade")
    if isinstance(value, dict):
        yield value
        for v in value.values():
            if isinstance(v, (dict, list)):
                yield from _walk(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)):
                yield from _walk(v, depth + 1)


def _indexed_nodes(doc: dict) -> Iterator[tuple[str, dict]]:
    """Every node with its ``$.path`` (subgraphs included)."""
    for path, obj in _paths(doc, "$"):
        if "target" in obj and "inputs" in obj and "outputs" in obj and isinstance(obj.get("target"), str):
            yield path, obj


def _printed_expressions_to_srepr(doc: dict) -> None:
    for obj in _walk(doc):
        text = obj.get("expr_str")
        if isinstance(text, str) and not text.startswith(_SREPR_HEADS):
            try:
                obj["expr_str"] = printed_to_srepr(text)
            except SerializeError as e:
                shown = text if len(text) <= 80 else text[:77] + "..."
                raise SerializeError(f"cannot upgrade expression {shown!r}: {e}") from None


_SREPR_HEADS = ("Symbol(", "Integer(", "Float(", "Rational(", "Add(", "Mul(", "Pow(")


def _finite_int_bounds(doc: dict) -> None:
    ranges = doc.get("range_constraints")
    if not isinstance(ranges, dict):
        return
    for rc in ranges.values():
        if not isinstance(rc, dict):
            continue
        for key in ("min_val", "max_val"):
            v = rc.get(key)
            if isinstance(v, float):
                rc[key] = None if v != v or v in (float("inf"), float("-inf")) else int(v)
            elif isinstance(v, str) and v in ("Infinity", "-Infinity", "NaN"):
                rc[key] = None


def _v7_to_v8(doc: dict) -> None:
    """Schema 7 -> 8.2: expressions were sympy's printed form, not ``srepr``; range bounds
    could be non-finite floats (written as bare ``Infinity`` tokens)."""
    _printed_expressions_to_srepr(doc)
    _finite_int_bounds(doc)


def _v8_2_to_v8_7(doc: dict) -> None:
    """8.2 -> 8.7: a higher-order op returning a tuple wrote its elements as one
    ``as_tensors`` output (``is_hop_single_tensor_return`` did not exist yet); ``scan`` took
    two more positional arguments (``dim``, ``reverse``), which later releases fold into
    the scanned inputs."""
    for index, node in _indexed_nodes(doc):
        target = node["target"]
        if not target.startswith("torch.ops.higher_order."):
            continue
        outputs = node.get("outputs")
        if ("is_hop_single_tensor_return" not in node and isinstance(outputs, list) and len(outputs) == 1
                and isinstance(outputs[0], dict) and isinstance(outputs[0].get("as_tensors"), list)):
            node["outputs"] = [{"as_tensor": t} for t in outputs[0]["as_tensors"]]
            node["is_hop_single_tensor_return"] = False
        if target == "torch.ops.higher_order.scan":
            inputs = node.get("inputs")
            if isinstance(inputs, list) and len(inputs) == 6:
                dim, reverse = (i.get("arg") if isinstance(i, dict) else None for i in inputs[3:5])
                if dim != {"as_int": 0} or reverse != {"as_bool": False}:
                    problem = (f"scan node scans along dim {dim} with reverse={reverse}; only dim 0 forward "
                               "scans can be upgraded")
                    raise SerializeError(f"{problem} - at `{index}`", path=index, problem=problem)
                del inputs[3:5]


def _no_wire_change(doc: dict) -> None:
    """A version step that only added fields with defaults or new union members."""


@dataclass(frozen=True)
class Step:
    """Upgrade documents of versions ``[source, target)`` to ``target``."""

    source: tuple[int, int]
    target: tuple[int, int]
    apply: Callable[[dict], None]

    def __repr__(self) -> str:
        return f"Step({self.source[0]}.{self.source[1]} -> {self.target[0]}.{self.target[1]}: {self.apply.__name__})"


#: One step per schema version the releases we read have written: 7.3 (PyTorch 2.5),
#: 8.2 (2.6), 8.7 (2.7), 8.8 (2.8), 8.14 (2.9) and 8.20 (2.13, 2.14).
STEPS: tuple[Step, ...] = (
    Step((7, 0), (8, 2), _v7_to_v8),
    Step((8, 0), (8, 7), _v8_2_to_v8_7),
    Step((8, 7), (8, 8), _no_wire_change),
    Step((8, 8), (8, 14), _no_wire_change),
    Step((8, 14), schema.SCHEMA_VERSION, _no_wire_change),
)


def upgrade(raw: dict) -> tuple[int, int]:
    """Upgrade a JSON-decoded document in place to the current schema; its original version."""
    original = version = document_version(raw)
    for step in STEPS:
        if step.source <= version < step.target:
            step.apply(raw)
            version = step.target
            raw["schema_version"] = {"major": version[0], "minor": version[1]}
    return original


def unknown_field_text(major: int, minor: int, path: str) -> str:
    """What is wrong with a field at ``path`` that a newer document (schema ``major.minor``) uses
    and the current schema does not know: one wording for ``load`` and ``validate``."""
    return (f"Document of schema version {major}.{minor} uses field `{path.rsplit('.', 1)[-1]}`, "
            f"unknown to schema {schema.SCHEMA_VERSION[0]}.{schema.SCHEMA_VERSION[1]}")


def decode_program(raw: Any) -> schema.ExportedProgram:
    """A JSON-decoded ``models/*.json`` document as ``schema.ExportedProgram`` (upgraded)."""
    major, minor = document_version(raw)
    if STEPS[0].source <= (major, minor) < schema.SCHEMA_VERSION:
        upgrade(raw)
    else:
        check_version(major, minor)
    if (major, minor) > schema.SCHEMA_VERSION:
        unknown = collect_problems(schema.ExportedProgram, raw, unknown_fields=True).unknown_fields
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            problem = unknown_field_text(major, minor, unknown[0]) + more
            raise SerializeError(f"{problem} - at `{unknown[0]}`", path=unknown[0], problem=problem)
    return codec.from_dict(schema.ExportedProgram, raw)


def _decode_current(raw: Any, count: ColonCount) -> schema.ExportedProgram:
    """``decode_program`` of a document of the current schema version, counting for
    :func:`loads_json_counted` (it raises for any other version: that takes the careful path)."""
    if document_version(raw) != schema.SCHEMA_VERSION:
        raise ValueError("not the current schema version")
    return fast_counting_decoder(schema.ExportedProgram)(raw, count)


_VERSION_TEXT = re.compile(r'"schema_version"\s*:\s*\{\s*"major"\s*:\s*(\d{1,9})\s*,\s*"minor"\s*:\s*(\d{1,9})\s*\}')


def _looks_current(text: str) -> bool:
    """The text's last ``schema_version`` reads as the current version (as writers put it:
    major, then minor). Only a guess to skip the counted parse for older documents, whose
    upgrade takes the careful path anyway; the parsed document is what is checked."""
    m = _VERSION_TEXT.match(text, max(text.rfind('"schema_version"'), 0))
    return m is not None and (int(m[1]), int(m[2])) == schema.SCHEMA_VERSION


def program_from_json_counted(data: bytes | bytearray | memoryview | str, *, max_bytes: int = codec.MAX_JSON_BYTES,
                              ) -> tuple[Any, schema.ExportedProgram] | None:
    """``(raw, program)``: what :func:`program_from_json` reads, for a document of the current
    schema version that :func:`loads_json_counted` proves free of duplicate keys and the fast
    decoder accepts (``raw`` is the parsed JSON, not changed); ``None`` for anything else, which
    :func:`program_from_json` (or ``ProgramRecords.raw_document`` then ``decode``) reads
    carefully and explains."""
    return loads_json_counted(data, _decode_current, max_bytes=max_bytes, what="ExportedProgram document",
                              worth_trying=_looks_current)


def program_from_json(data: bytes | bytearray | memoryview | str, *, max_bytes: int = codec.MAX_JSON_BYTES) -> schema.ExportedProgram:
    """Parse and decode a program document (see :func:`decode_program`).

    Schema 7 writers let bare ``Infinity``/``NaN`` tokens into their JSON; they are accepted
    in documents of major version 7 only.
    """
    fast = program_from_json_counted(data, max_bytes=max_bytes)
    if fast is not None:
        return fast[1]
    seen: list[str] = []
    raw = codec.loads_json(data, max_bytes=max_bytes, what="ExportedProgram document", nonfinite=seen)
    if seen and document_version(raw)[0] >= 8:
        raise SerializeError(f"ExportedProgram document contains the non-standard token {seen[0]}")
    return decode_program(raw)


# ========================================================================== downgraders

#: What each older schema version lacks, relative to the next one (taken from the schema
#: definitions of the releases that wrote them). Writing for an older reader removes the
#: optional fields it does not know (PyTorch 2.8 even refuses unknown fields outright) and
#: refuses, naming it, anything it could not read.
@dataclass(frozen=True)
class Lacks:
    target: tuple[int, int]
    argument_members: frozenset[str] = frozenset()
    output_spec_members: frozenset[str] = frozenset()
    scalar_types: frozenset[int] = frozenset()
    dropped_node_fields: frozenset[str] = frozenset()
    dropped_program_fields: frozenset[str] = frozenset()
    user_output_members: frozenset[str] = frozenset()
    tuple_output_members: frozenset[str] = frozenset()


DOWN_STEPS: tuple[Lacks, ...] = (
    Lacks((8, 14),
          argument_members=frozenset({"as_nested_tensors", "as_int_lists", "as_string_to_argument", "as_float_lists"}),
          scalar_types=frozenset({33, 34, 35}),
          dropped_node_fields=frozenset({"name"}),
          # no release before 2.13 reads a SymBool user output, or a SymBool element of an
          # operator's tuple of outputs (2.13 cannot either)
          user_output_members=frozenset({"as_sym_bool"}),
          tuple_output_members=frozenset({"as_sym_bool"})),
    Lacks((8, 8),
          argument_members=frozenset({"as_complex"}),
          output_spec_members=frozenset({"parameter_mutation"}),
          scalar_types=frozenset({31, 32}),
          dropped_program_fields=frozenset({"guards_code"})),
)

#: The schema versions pt2serde can write (the current one and each step down), and the
#: PyTorch releases that read each (from :data:`pt2serde.format.releases.RELEASES`).
READERS: dict[tuple[int, int], tuple[str, ...]] = {
    target: releases_reading(target) for target in (schema.SCHEMA_VERSION, *(s.target for s in DOWN_STEPS))
}
WRITABLE_TARGETS = tuple(READERS)
_SCALAR_TYPE_NAMES = {int(v): v.name for v in schema.ScalarType}


def _paths(value: Any, path: str, depth: int = 0) -> Iterator[tuple[str, dict]]:
    """Every JSON object with its ``$.path``."""
    if depth > _MAX_WALK_DEPTH:
        raise SerializeError("document is nested too deeply")
    if isinstance(value, dict):
        yield path, value
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                yield from _paths(v, f"{path}.{k}", depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, (dict, list)):
                yield from _paths(v, f"{path}[{i}]", depth + 1)


def _refuse(what: str, path: str, lacks: Lacks, target: tuple[int, int], added: bool = True) -> SerializeError:
    release = ", ".join(READERS[target])
    since = f" (added after schema {lacks.target[0]}.{lacks.target[1]})" if added else ""
    problem = (f"{what}{since} is not readable by PyTorch {release} (schema {target[0]}.{target[1]}): "
               "the program cannot be written for that release")
    return SerializeError(f"{problem} - at `{path}`", path=path, problem=problem, feature=f"{what}{since}")


def _downgrade_step(raw: dict, lacks: Lacks, target: tuple[int, int]) -> None:
    for path, obj in _paths(raw, "$"):
        for member in lacks.argument_members & obj.keys():
            if len(obj) == 1:  # a union object: {member: payload}
                raise _refuse(f"argument kind `{member}`", f"{path}.{member}", lacks, target)
        for member in lacks.output_spec_members & obj.keys():
            if len(obj) == 1:
                raise _refuse(f"output spec `{member}`", f"{path}.{member}", lacks, target)
        if "dtype" in obj and obj["dtype"] in lacks.scalar_types:
            raise _refuse(f"dtype {_SCALAR_TYPE_NAMES.get(obj['dtype'])}", f"{path}.dtype", lacks, target)
        if "as_scalar_type" in obj and obj["as_scalar_type"] in lacks.scalar_types:
            raise _refuse(f"dtype {_SCALAR_TYPE_NAMES.get(obj['as_scalar_type'])}", f"{path}.as_scalar_type",
                          lacks, target)
        if "target" in obj and "inputs" in obj and "outputs" in obj:
            for field in lacks.dropped_node_fields:
                obj.pop(field, None)
            outputs = obj["outputs"] if isinstance(obj["outputs"], list) else []
            if len(outputs) > 1:
                for i, out in enumerate(outputs):
                    for member in lacks.tuple_output_members & (out.keys() if isinstance(out, dict) else set()):
                        raise _refuse(f"an operator output of kind `{member}` in a tuple of outputs",
                                      f"{path}.outputs[{i}].{member}", lacks, target, added=False)
    specs = raw.get("graph_module", {}).get("signature", {}).get("output_specs", [])
    for i, spec in enumerate(specs if isinstance(specs, list) else []):
        arg = spec.get("user_output", {}).get("arg", {}) if isinstance(spec, dict) else {}
        for member in lacks.user_output_members & (arg.keys() if isinstance(arg, dict) else set()):
            raise _refuse(f"a user output of kind `{member}`",
                          f"$.graph_module.signature.output_specs[{i}].user_output.arg.{member}", lacks, target,
                          added=False)
    for field in lacks.dropped_program_fields:
        raw.pop(field, None)


def downgrade(raw: dict, target: tuple[int, int]) -> None:
    """Rewrite a current JSON document in place for the reader of schema ``target``.

    Raises :class:`SerializeError` naming the first thing that reader lacks (with its path).
    """
    target = tuple(target)
    if target not in READERS:
        raise SerializeError(f"cannot write schema {target[0]}.{target[1]}; pt2serde writes {writable_text()}")
    for lacks in DOWN_STEPS:
        if lacks.target < target:
            break
        _downgrade_step(raw, lacks, target)
    raw["schema_version"] = {"major": target[0], "minor": target[1]}


def writable_text() -> str:
    """The schemas pt2serde writes with their readers, for messages: ``8.20 (PyTorch 2.13, 2.14), ...``."""
    return ", ".join(f"{t[0]}.{t[1]} (PyTorch {', '.join(r)})" for t, r in READERS.items())


def pytorch_reader_gap(raw: dict) -> str | None:
    """Why no PyTorch release could load this current-schema document, or None.

    pt2serde writes some forms no PyTorch reader handles yet (SymBool user outputs and
    SymBool elements of operator output tuples); saving still works, with a warning.
    """
    lacks = next(step for step in DOWN_STEPS if step.target == (8, 14))
    probe = Lacks(schema.SCHEMA_VERSION, user_output_members=lacks.user_output_members,
                  tuple_output_members=lacks.tuple_output_members)
    try:
        _downgrade_step(raw, probe, (8, 14))
    except SerializeError as e:
        return f"{e.feature} - at `{e.path}`"
    return None
