"""The arguments of ``save``, ``load``, ``serialize`` and ``deserialize``, checked before any work.

Each common mistake gets one line that says what was passed and what to pass instead:
a module where an exported program belongs (``save(model, ...)``), bytes where the
artifact of ``serialize`` belongs, a folder that does not exist, an extra file that is not
text or bytes, a ``target_schema`` pt2serde cannot write. Wrong types raise
:class:`~pt2serde.errors.ArgumentError` (a ``SerializeError`` and a ``TypeError``), wrong
values :class:`~pt2serde.errors.ArgumentValueError` (a ``SerializeError`` and a
``ValueError``), a missing folder :class:`~pt2serde.errors.FolderNotFoundError` (also a
``FileNotFoundError``, as ``torch.export.save`` raises there), a folder that cannot be written
:class:`~pt2serde.errors.FolderNotWritableError` (also a ``PermissionError``).

torch is imported only inside the functions that look at torch objects.
"""

from __future__ import annotations

import io
import os
from typing import Any

from ..errors import ArgumentError, ArgumentValueError, FolderNotFoundError, FolderNotWritableError

__all__ = ["check_save", "check_program", "check_destination", "check_extra_files", "target_schema",
           "check_artifact", "check_load", "EXPORT_HINT"]

EXPORT_HINT = "export it first: ep = torch.export.export(model, example_inputs)"


def _a(value: Any) -> str:
    """``value``'s type with its article ("an int", "a Sequential"), or "None"."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _export_hint(call: str) -> str:
    then = "pt2serde.save(ep, path)" if call == "save" else f"pt2serde.{call}(ep)"
    return f"{EXPORT_HINT}, then {then}"


def _not_a_program(value: Any, call: str, what: str = "") -> str:
    """Why ``value`` is not an ExportedProgram, and the fix, for ``call`` (``"save"``, ...);
    ``what`` names an entry of a dict of programs (``"program 'a'"``)."""
    import torch

    def got(kind: str) -> str:
        return f"{what} is {kind}, not an ExportedProgram" if what else f"{call}() needs an ExportedProgram, got {kind}"

    hint = _export_hint(call)
    if isinstance(value, torch.fx.GraphModule):
        return (f"{got(f'a torch.fx.GraphModule ({type(value).__name__})')}; pass the ExportedProgram itself "
                f"(ep, not ep.module()), or {hint}")
    if isinstance(value, torch.nn.Module):
        return f"{got(f'a torch.nn.Module ({type(value).__name__})')}; {hint}"
    if value is None:
        return f"{got('None')}; pass the program torch.export.export returned ({hint})"
    if isinstance(value, torch.Tensor):
        return f"{got('a tensor')}; torch.save stores tensors; to store a program, {hint}"
    if isinstance(value, dict) and call == "serialize":
        return (f"{got('a dict')}; serialize takes one program (pt2serde.serialize(ep)); "
                "pt2serde.save(dict_of_programs, path) writes several to one archive")
    return f"{got(_a(value))}; {hint}"


def check_program(ep: Any, call: str = "serialize") -> None:
    """Refuse anything but a ``torch.export.ExportedProgram`` (see :func:`_not_a_program`)."""
    from torch.export import ExportedProgram

    if not isinstance(ep, ExportedProgram):
        raise ArgumentError(_not_a_program(ep, call))


def _programs(programs: Any) -> dict:
    """``save``'s ``programs``: one ExportedProgram (named ``"model"``) or a non-empty dict of them."""
    import torch
    from torch.export import ExportedProgram

    if isinstance(programs, ExportedProgram):
        return {"model": programs}
    if not isinstance(programs, dict):
        raise ArgumentError(_not_a_program(programs, "save"))
    if not programs:
        raise ArgumentValueError("save() needs an ExportedProgram or a non-empty dict of them, got an empty dict; "
                                 "pass them by name ({'model': ep})")
    values = list(programs.values())
    if all(isinstance(v, torch.Tensor) for v in values):
        raise ArgumentError("save() needs an ExportedProgram, got a dict of tensors (a state dict?); "
                            "torch.save(state_dict, f) "
                            f"stores weights alone; to store a program, {_export_hint('save')}")
    for name, ep in programs.items():
        if not isinstance(name, str):
            raise ArgumentError(f"program names must be strings, got {name!r} ({type(name).__name__}); "
                                "name them like {'model': ep}")
        if not name or "/" in name or name in (".", ".."):
            raise ArgumentValueError(f"invalid program name {name!r}: use a non-empty name without '/', "
                                     "like 'model'")
        if not isinstance(ep, ExportedProgram):
            raise ArgumentError(_not_a_program(ep, "save", f"program {name!r}"))
    return programs


def check_destination(f: Any) -> None:
    """``save``'s ``f``: a path whose folder exists and can be written, or a writable binary file."""
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        path = path if isinstance(path, str) else os.fsdecode(path)
        if not path:
            raise ArgumentValueError("save() got an empty path; pass a file path like 'model.pt2'")
        if os.path.isdir(path):
            raise ArgumentValueError(f"cannot save to {path}: it is a folder; pass a file path in it, like "
                                     f"{os.path.join(path, 'model.pt2')!r}")
        folder = os.path.dirname(path) or "."
        if not os.path.exists(folder):
            raise FolderNotFoundError(f"cannot save to {path}: the folder {folder} does not exist; create it first "
                                      f"(os.makedirs({folder!r}, exist_ok=True)) or save elsewhere", path=path)
        if not os.path.isdir(folder):
            raise FolderNotFoundError(f"cannot save to {path}: {folder} is a file, not a folder; save elsewhere",
                                      path=path)
        # the file is written next to where it ends up (then renamed into place)
        real = os.path.dirname(os.path.realpath(path)) or "."
        if not os.access(real, os.W_OK | os.X_OK):
            raise FolderNotWritableError(f"cannot save to {path}: the folder {real} is not writable (permission denied); "
                                         "save elsewhere or change its permissions", path=path)
        return
    if isinstance(f, io.TextIOBase):
        raise ArgumentError(f"save() needs a binary file object, got a text file ({type(f).__name__}); open it with "
                            "open(path, 'wb')")
    if not callable(getattr(f, "write", None)):
        raise ArgumentError(f"save() writes to a path or a writable binary file object, got {_a(f)}; "
                            "pass a path like 'model.pt2' or a file opened with open(path, 'wb')")
    if _says_no(f, "writable"):
        raise ArgumentError(f"save() needs a file object open for writing, got {_a(f)} opened read-only; open it "
                            "with open(path, 'wb')")


def _says_no(f: Any, ability: str) -> bool:
    """Whether file object ``f`` says it cannot do ``ability`` (``"readable"``, ``"writable"``)."""
    try:
        return getattr(f, ability)() is False
    except Exception:  # noqa: BLE001 - no such method, or a closed file: let the read or write say so
        return False


def check_extra_files(extra_files: Any, call: str = "save") -> None:
    """``save``'s ``extra_files``: ``None`` or a dict of string names to ``str`` or ``bytes``."""
    if extra_files is None:
        return
    if not isinstance(extra_files, dict):
        raise ArgumentError(f"{call}() extra_files must be a dict of file name -> str or bytes, got "
                            f"{_a(extra_files)}")
    for name, content in extra_files.items():
        if not isinstance(name, str):
            raise ArgumentError(f"extra file name {name!r} must be a string ({type(name).__name__} given)")
        if not isinstance(content, (str, bytes, bytearray, memoryview)):
            raise ArgumentError(f"extra_files[{name!r}] is {_a(content)}: extra file values must be str "
                                "or bytes; convert it first (str(value), json.dumps(value) or bytes)")


def _accepted() -> str:
    from ..format.upgrade import READERS

    return ", ".join(f"({t[0]}, {t[1]}) or {' / '.join(repr(r) for r in releases)}" for t, releases in READERS.items())


def target_schema(value: Any) -> tuple[int, int]:
    """``save``'s ``target_schema`` as a schema version: a ``(major, minor)`` tuple of ints
    that pt2serde writes, or a PyTorch release (``"2.9"``, ``"2.9.1"``, ``"2.13.0+cpu"``)
    mapped to the schema it reads. ``None``: the current schema."""
    from .. import schema
    from ..format.upgrade import READERS, writable_text

    if value is None:
        return schema.SCHEMA_VERSION
    if isinstance(value, str):
        parts = value.strip().split("+", 1)[0].split(".")
        release = ".".join(parts[:2]) if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]) else None
        for target, releases in READERS.items():
            if release in releases:
                return target
        raise ArgumentValueError(f"target_schema={value!r} is not a PyTorch release pt2serde writes for; pass one "
                                 f"of {_accepted()}")
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(type(x) is int for x in value):
        target = (value[0], value[1])
        if target in READERS:
            return target
        raise ArgumentValueError(f"cannot write schema {target[0]}.{target[1]}; pt2serde writes "
                                 f"{writable_text()}: pass "
                                 f"target_schema as one of {_accepted()}")
    raise ArgumentError(f"target_schema must be a (major, minor) tuple of ints or a PyTorch release string, got "
                        f"{value!r}; pass one of {_accepted()}")


def check_save(programs: Any, f: Any, extra_files: Any, target: Any) -> tuple[dict, tuple[int, int]]:
    """Every argument of ``save`` checked: (the programs by name, the schema version to write)."""
    from torch.export import ExportedProgram

    if isinstance(f, ExportedProgram) and not isinstance(programs, (ExportedProgram, dict)):
        raise ArgumentError(f"save() takes the program first and then where to write it, got {_a(programs)} and an "
                            "ExportedProgram; call pt2serde.save(ep, path)")
    named = _programs(programs)
    check_destination(f)
    check_extra_files(extra_files)
    return named, target_schema(target)


def check_artifact(artifact: Any) -> None:
    """``deserialize``'s ``artifact``: what ``serialize`` returned (a ``SerializedArtifact``)."""
    fields = ("exported_program", "state_dict", "constants", "example_inputs")  # a SerializedArtifact has them all
    if all(hasattr(artifact, f) for f in fields):
        return
    what = "deserialize() takes the SerializedArtifact that pt2serde.serialize() returned"
    if isinstance(artifact, (bytes, bytearray, memoryview)):
        head = bytes(memoryview(artifact)[:16]).lstrip()
        if head.startswith(b"PK"):
            raise ArgumentError(f"{what}, got the bytes of a zip archive; read a PT2 archive with "
                                "pt2serde.load(io.BytesIO(data))")
        if head.startswith(b"{"):
            raise ArgumentError(f"{what}, got the bytes of a JSON document; pass the whole artifact "
                                "(SerializedArtifact(exported_program, state_dict, constants, example_inputs)), or "
                                "decode the document alone with pt2serde.from_dict(pt2serde.schema.ExportedProgram, "
                                "json.loads(data))")
        raise ArgumentError(f"{what}, got {type(artifact).__name__}; pass that artifact, or read a PT2 archive with "
                            "pt2serde.load(f)")
    if isinstance(artifact, (str, os.PathLike)):
        raise ArgumentError(f"{what}, got a path ({type(artifact).__name__}); read a .pt2 file with pt2serde.load(path)")
    raise ArgumentError(f"{what}, got {_a(artifact)}; pass that artifact (artifact = pt2serde.serialize(ep))")


def check_load(f: Any, name: Any = "model", extra_files: Any = None, call: str = "load") -> None:
    """``load``'s ``f`` (a path, bytes, or a readable binary file object), ``name`` and
    ``extra_files`` (a dict that is filled in place)."""
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        if isinstance(path, str) and os.path.isdir(path):
            raise ArgumentValueError(f"{path} is a folder, not a PT2 archive; pass the .pt2 file in it")
    elif isinstance(f, io.TextIOBase):
        raise ArgumentError(f"{call}() needs a binary file object, got a text file ({type(f).__name__}); open it with "
                            "open(path, 'rb')")
    elif not isinstance(f, (bytes, bytearray, memoryview)) and not callable(getattr(f, "read", None)):
        raise ArgumentError(f"{call}() reads a path, bytes or a readable binary file object, got {_a(f)}; "
                            "pass a path like 'model.pt2' or a file opened with open(path, 'rb')")
    elif not isinstance(f, (bytes, bytearray, memoryview)) and _says_no(f, "readable"):
        raise ArgumentError(f"{call}() needs a file object open for reading, got {_a(f)} opened write-only; open it "
                            "with open(path, 'rb')")
    if not isinstance(name, str):
        raise ArgumentError(f"{call}() name must be the program's name as a string (default 'model'), got {name!r}")
    if extra_files is not None and not isinstance(extra_files, dict):
        raise ArgumentError(f"{call}() fills extra_files in place: pass a dict (files = {{}}; "
                            f"{call}(f, extra_files=files)), got {_a(extra_files)}")
