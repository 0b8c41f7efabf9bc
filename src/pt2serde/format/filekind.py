"""What a file is when it is not a PT2 archive, said in one line with what to do (torch-free).

``pt2serde.load`` and the CLI are often handed the wrong file: a ``torch.save`` checkpoint,
a safetensors file, a TorchScript archive, an empty or cut-short file. The zip reader only
knows that the file is not the archive it expects ("not a zip archive: no
end-of-central-directory record", "``archive_format`` missing"); :func:`open_reader` opens
the archive as :class:`pt2serde.format.archive.ArchiveReader` does and, when the file is one of
those others, raises a :class:`SerializeError` that says what the file is, which reader
reads it, and how to make a PT2 archive instead.

Only the first bytes of the file (a non-zip) or the record names of the zip directory are
looked at; nothing is unpickled or parsed beyond that. Files pt2serde refuses anyway are
the only ones whose message changes: a file this module recognises is never a PT2 archive.
"""

from __future__ import annotations

import io
import os
import struct
from typing import Any, Callable

from .archive import ArchiveReader
from ..errors import NotAZipError, SerializeError

__all__ = ["open_reader", "subject_of", "describe_head", "describe_records", "SAVE_HINT", "ARCHIVE_HINT"]

#: how to get a PT2 archive from a model
SAVE_HINT = ("to save a model as a program, export it first: ep = torch.export.export(model, example_inputs); "
             "pt2serde.save(ep, path)")
#: what to pass instead of a file that is not a PT2 archive
ARCHIVE_HINT = "pass the .pt2 file that pt2serde.save or torch.export.save wrote"
_HEAD = 64
#: what the legacy (non-zip) torch.save format starts with: a pickled magic number
_TORCH_LEGACY_MAGIC = bytes.fromhex("8a0a6cfc9c46f9206aa85019")
#: other files people mistake for an archive: leading bytes -> (what it is, what reads it)
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x93NUMPY", "a NumPy .npy file", "numpy.load reads it"),
    (b"GGUF", "a GGUF model file", "llama.cpp / the gguf package read it"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras .h5?)", "h5py reads it"),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first"),
)


def subject_of(source: Any) -> str:
    """How a message names the caller's ``source``: the path as given, a file object's name,
    else "the data" (bytes, a buffer) or "the file object"."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        return path if isinstance(path, str) else os.fsdecode(path)
    if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "getbuffer"):
        return "the data"
    name = getattr(source, "name", None)
    return name if isinstance(name, str) and name else "the file object"


# ================================================================== non-zip files


def describe_head(head: bytes, size: int, subject: str) -> str:
    """One line for a file of ``size`` bytes starting with ``head`` that is not a zip archive."""
    if size == 0:
        return (f"{subject} is empty (0 bytes), not a PT2 archive: whatever should have written it failed or "
                "never ran; save the program again with pt2serde.save(ep, path)")
    if head[:2] == b"PK":
        return (f"{subject} is a cut-short or damaged zip archive ({size} bytes, its zip directory is missing or "
                "broken): the save or copy that wrote it did not finish; write it again")
    if _is_safetensors(head, size):
        return (f"{subject} is a safetensors file (tensors only, no program), not a PT2 archive: "
                f"safetensors.torch.load_file reads it; {SAVE_HINT}")
    if head[:1] == b"\x80" and _TORCH_LEGACY_MAGIC in head[:16]:
        return (f"{subject} is a torch.save checkpoint (legacy format), not a torch.export archive: torch.load "
                f"reads it; {SAVE_HINT}")
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return (f"{subject} is a Python pickle, not a PT2 archive (pt2serde never unpickles a file to find "
                f"out more); {ARCHIVE_HINT}")
    for magic, what, reader in _MAGIC:
        if head.startswith(magic):
            return f"{subject} is {what}, not a PT2 archive: {reader}; {ARCHIVE_HINT}"
    text = _text(head)
    if text is not None and text.lstrip().startswith(("{", "[")):
        if '"graph_module"' in text or '"schema_version"' in text:
            return (f"{subject} is a program document (JSON), not a PT2 archive: pass the .pt2 archive it came from, "
                    "or decode it with pt2serde.from_dict(pt2serde.schema.ExportedProgram, json.loads(text))")
        return f"{subject} is a JSON file, not a PT2 archive; {ARCHIVE_HINT}"
    if text is not None:
        shown = text.strip()[:24]
        return f"{subject} is a text file (starting {shown!r}), not a PT2 archive; {ARCHIVE_HINT}"
    return f"{subject} is not a PT2 archive (not a zip file: it starts with {head[:8]!r}); {ARCHIVE_HINT}"


def _is_safetensors(head: bytes, size: int) -> bool:
    """8 bytes of little-endian header length, then the JSON header ``{"...``."""
    if len(head) < 10:
        return False
    (n,) = struct.unpack_from("<Q", head)
    return 2 <= n <= size - 8 and head[8:9] == b"{" and head[9:10] in b'"} \n\t\r'


def _text(head: bytes) -> str | None:
    """``head`` as text when it looks like text (UTF-8, no control characters but whitespace)."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    for cut in range(4):  # a multi-byte character may be cut at the end of the head
        try:
            text = head[:len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    else:
        return None
    if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text):
        return None
    return text


def _head(source: Any) -> tuple[bytes, int] | None:
    """The first bytes of ``source`` and its size; None when they cannot be read again."""
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                return f.read(_HEAD), os.fstat(f.fileno()).st_size
        if isinstance(source, (bytes, bytearray, memoryview)):
            view = memoryview(source).cast("B")
            return bytes(view[:_HEAD]), view.nbytes
        if hasattr(source, "getbuffer"):
            with source.getbuffer() as view:
                return bytes(view[:_HEAD]), view.nbytes
        if hasattr(source, "seek") and hasattr(source, "read"):
            end = source.seek(0, io.SEEK_END)
            source.seek(0)
            head = source.read(_HEAD)
            source.seek(0)
            return (bytes(head), end) if isinstance(head, (bytes, bytearray)) else None
    except (OSError, ValueError, TypeError, AttributeError, io.UnsupportedOperation):
        return None
    return None


# ==================================================================== zip files


def describe_records(names: list[str] | Any, subject: str) -> str | None:
    """One line for a zip archive (its record names) that is another kind of file than a
    program archive; None when it may be a PT2 archive or the plain zip of PyTorch 2.5-2.7."""
    names = list(names)
    if not names or "serialized_exported_program.json" in names:
        return None
    if all("/" not in n and n.endswith(".npy") for n in names):
        return f"{subject} is a NumPy .npz archive, not a PT2 archive: numpy.load reads it; {ARCHIVE_HINT}"
    roots = {n.split("/", 1)[0] for n in names}
    if len(roots) != 1 or any("/" not in n for n in names):
        return None
    (root,) = roots
    has = set(names).__contains__
    has_models = any(n.startswith(f"{root}/models/") and n.endswith(".json") for n in names)
    if has_models:
        return None
    if has(f"{root}/archive_format"):
        if any(n.startswith(f"{root}/data/aotinductor/") for n in names):
            return (f"{subject} is an AOTInductor package (compiled code, no program document), not a torch.export "
                    "archive: torch._inductor.aoti_load_package loads it; pt2serde.save the ExportedProgram "
                    "itself to keep the program")
        return None
    if not has(f"{root}/data.pkl"):
        return None
    if has(f"{root}/constants.pkl") or any(n.startswith(f"{root}/code/") for n in names):
        return (f"{subject} is a TorchScript archive (torch.jit.save), not a torch.export archive: torch.jit.load "
                f"reads it; {SAVE_HINT}")
    return (f"{subject} is a torch.save checkpoint (a pickled object, e.g. a state dict), not a torch.export "
            f"archive: torch.load reads it; {SAVE_HINT}")


# ==================================================================== opening


def open_reader(source: Any, mmap: bool | None = None, subject: str | None = None, *,
                opener: Callable[..., ArchiveReader] = ArchiveReader) -> ArchiveReader:
    """``opener(source, mmap=mmap)`` (an :class:`ArchiveReader`), refusing with one line that
    says what the file is when it is not a program archive (see the module docstring).
    ``subject`` names the file in messages (default: :func:`subject_of`)."""
    try:
        reader = opener(source, mmap=mmap)
    except NotAZipError:  # no (whole) zip archive at all: say what the file is instead
        head = _head(source)
        if head is None:
            raise
        raise SerializeError(describe_head(head[0], head[1], subject or subject_of(source))) from None
    problem = describe_records(reader.entries, subject or subject_of(source))
    if problem is not None:
        reader.close()
        raise SerializeError(problem)
    return reader
