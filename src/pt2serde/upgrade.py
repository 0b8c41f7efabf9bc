"""Version rules for program documents, applied to plain JSON values (torch-free).

* A document of another major version is refused, naming both versions (a major step
  breaks the wire format), except the legacy "0.0" which means "unknown".
* A document of a newer minor version loads when it uses only what this reader knows:
  new fields left at their empty default are fine; a new field with a value, or an unknown
  union tag, is an error naming it and its ``$.path``.
"""

from __future__ import annotations

from typing import Any

from . import codec, schema
from .errors import SerializeError

__all__ = ["document_version", "check_version", "decode_program", "program_from_json"]


def document_version(raw: Any) -> tuple[int, int]:
    """The ``schema_version`` of a JSON-decoded program document."""
    if not isinstance(raw, dict):
        raise SerializeError("Expected `object` (ExportedProgram), got " + codec._json_type(raw) + " - at `$`")
    version = raw.get("schema_version")
    if not isinstance(version, dict):
        raise SerializeError("Object missing required field `schema_version` - at `$`")
    major, minor = version.get("major"), version.get("minor")
    if type(major) is not int or type(minor) is not int:
        raise SerializeError("schema_version must hold integer `major` and `minor` - at `$.schema_version`")
    return major, minor


def check_version(major: int, minor: int) -> None:
    current = schema.SCHEMA_VERSION
    if major != current[0] and (major, minor) != (0, 0):
        raise SerializeError(
            f"Serialized schema version {major}.{minor} does not match our current schema version "
            f"{current[0]}.{current[1]}: documents of major version {major} cannot be read by this reader"
        )


def decode_program(raw: Any) -> schema.ExportedProgram:
    """A JSON-decoded ``models/*.json`` document as ``schema.ExportedProgram`` (version rules applied)."""
    major, minor = document_version(raw)
    check_version(major, minor)
    if (major, minor) > schema.SCHEMA_VERSION:
        unknown = codec.unknown_fields(schema.ExportedProgram, raw)
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise SerializeError(
                f"Document of schema version {major}.{minor} uses field `{unknown[0].rsplit('.', 1)[-1]}`, "
                f"unknown to schema {schema.SCHEMA_VERSION[0]}.{schema.SCHEMA_VERSION[1]}{more} - at `{unknown[0]}`"
            )
    return codec.from_dict(schema.ExportedProgram, raw)


def program_from_json(data: bytes | bytearray | memoryview | str, *, max_bytes: int = codec.MAX_JSON_BYTES) -> schema.ExportedProgram:
    """Parse and decode a program document (see :func:`decode_program`)."""
    return decode_program(codec.loads_json(data, max_bytes=max_bytes, what="ExportedProgram document"))
