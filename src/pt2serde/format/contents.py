"""What a PT2 archive holds, read without torch and without running anything from it.

The torch-free commands (``pt2serde inspect``, ``validate``, ``diff``) share this view of
an archive: its layout, root folder and marker records, its programs, and for each
program the entries of its state dict and constants as
:class:`TensorEntry` (name, dtype, sizes, strides, offset, the record that holds the
storage). Only JSON records and pickle *opcodes* are read; tensor bytes are touched only
by :func:`storage_view`, which ``diff`` calls for the tensors it compares.

Two ways of storing tensors are understood (see ``package.py`` and the compat corpus):

* raw records (PyTorch 2.9+ and pt2serde): ``data/weights/<name>_weights_config.json``
  maps each FQN to a ``schema.PayloadMeta``; the storage is ``data/weights/<path_name>``
  (or the record named by the entry's ``pt2serde_shares`` key);
* ``torch.save`` records (PyTorch 2.8, and pt2serde writing for 2.8/2.9):
  ``data/weights/<name>.pt``, a zip holding a pickled dict, *walked* (never unpickled) by
  :mod:`pt2serde.format.torchsave`.

Two layouts are understood (``RECORDS``, also used by ``package``):

* ``"pt2"``: the PT2 archive (PyTorch 2.8+, pt2serde): one root folder, ``archive_format``,
  ``models/<name>.json``, ``data/...``, ``extra/<file>``;
* ``"legacy"``: the plain zip of PyTorch 2.5-2.7: no root folder, one program ``model``
  (``serialized_exported_program.json``), the schema version as text in ``version``, the
  state dict and constants as whole-dict ``torch.save`` records (``serialized_state_dict.pt``,
  ``serialized_constants.pt``), ``serialized_example_inputs.pt``, ``extra_files/<file>``.

Problems found while reading (a missing record, a tensor that does not fit its storage)
are collected as :class:`Problem` objects instead of raised, so that ``validate`` can
report all of them and ``inspect`` can show what it could read.

This is the one checked model of an archive: ``package`` (``load``/``load_all``) reads
through it too, and raises the first problem (:meth:`Problem.error`) where ``validate``
(:func:`pt2serde.format.check.check_archive`) lists all of them. Layout detection, the marker
records, record names and size caps live here once; the entries of the payload configs (and
their ``pt2serde_shares`` links), tensor geometry and the zero-fill allowance in
:mod:`pt2serde.format.tensor_entries`; :class:`Problem` in :mod:`pt2serde.format.problem`; the
tensor bytes ``diff`` reads in :mod:`pt2serde.format.tensor_bytes`.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

from . import codec

from .. import schema
from .archive import ArchiveReader
from ..errors import SerializeError
from .problem import Problem
from .tensor_entries import MAX_ZERO_FILL, TensorEntry, payload_entries
from .torchsave import TensorInfo, TorchSaveRecord, describe_torch_save

__all__ = [
    "Pt2Archive",
    "ProgramRecords",
    "open_archive",
]

ARCHIVE_FORMAT = "pt2"  # the `archive_format` record
ARCHIVE_VERSION = "0"  # the `archive_version` record
BYTE_ORDER = "little"  # the optional `byteorder` record
MAX_DOCUMENT_BYTES = 2 << 30
CRC_MISMATCH = "CRC-32 does not match the stored checksum: the record is corrupt"
LEGACY_MARKER = "serialized_exported_program.json"
LEGACY_VERSION = "version"

#: Record names by layout and role ({m}: the program name); None: the layout has no such record.
RECORDS: dict[str, dict[str, str | None]] = {
    "pt2": {
        "document": "models/{m}.json",
        "weights_dict": "data/weights/{m}.pt",
        "weights_config": "data/weights/{m}_weights_config.json",
        "constants_dict": "data/constants/{m}.pt",
        "constants_config": "data/constants/{m}_constants_config.json",
        "sample_inputs": "data/sample_inputs/{m}.pt",
        "extra": "extra/",
    },
    "legacy": {
        "document": LEGACY_MARKER,
        "weights_dict": "serialized_state_dict.pt",
        "weights_config": None,
        "constants_dict": "serialized_constants.pt",
        "constants_config": None,
        "sample_inputs": "serialized_example_inputs.pt",
        "extra": "extra_files/",
    },
}
LAYOUT_TEXT = {"pt2": "PT2 archive", "legacy": "plain zip of PyTorch 2.5-2.7"}


class Pt2Archive:
    """A program archive opened for the torch-free commands (see the module docstring):
    ``layout`` is ``"pt2"`` or ``"legacy"``; ``root`` the root folder ("" for the plain zip)."""

    def __init__(self, reader: ArchiveReader, path: str | None = None) -> None:
        self.reader = reader
        self.path = path
        if LEGACY_MARKER in reader:  # the plain zip of 2.5-2.7 (a missing `version` is a problem, not another layout)
            self.layout, self.root = "legacy", ""
        else:
            self.layout = "pt2"
            self.root = reader.root_folder()  # raises: neither layout
        self._torch_saves: dict[str, TorchSaveRecord] = {}
        self._fd_cache: int | None = None
        self.zero_filled = 0  # bytes of zeros the empty records read so far stand for (see zero_fill_problem)

    # ------------------------------------------------------------ the container

    def _marker(self, rel: str) -> bytes | None:
        """A marker record's bytes (at most 64 and one more, to see that it is longer); None if absent."""
        name = self.name(rel)
        if name not in self.reader:
            return None
        return bytes(self.reader.view(name)[:65])

    def container_problems(self) -> list[Problem]:
        """What is wrong with the archive as a whole: its marker records (``archive_format``,
        ``archive_version``, ``byteorder``; the plain zip's ``version``) and whether it holds a
        program. ``load`` refuses at the first, ``validate`` lists them all."""
        out: list[Problem] = []

        def add(rel: str, message: str) -> None:
            out.append(Problem(message, self.name(rel), self.name(rel)))

        if self.layout == "legacy":
            text = self.version_record()
            if text is None:
                add(LEGACY_VERSION, "missing: the plain zip of PyTorch 2.5-2.7 records its schema version here; no "
                                    "reader loads the archive without it")
            elif legacy_version(text) is None:
                add(LEGACY_VERSION, f"{text.strip()[:16]!r} is not a schema version 'major.minor'")
            return out
        fmt = self._marker("archive_format")
        if fmt is None:
            add("archive_format", "missing; not a PT2 archive")
        elif fmt != ARCHIVE_FORMAT.encode():
            add("archive_format", f"{fmt[:16]!r} is not {ARCHIVE_FORMAT!r}")
        version = self._marker("archive_version")
        if version is None:
            add("archive_version", f"saved archive version missing does not match our current archive version "
                                   f"{ARCHIVE_VERSION}")
        elif version.strip() != ARCHIVE_VERSION.encode():
            text = version[:16].decode("utf-8", "replace")  # PyTorch's wording (its load_pt2's ValueError)
            add("archive_version", f"Saved archive version {text if text.isprintable() else repr(text)} does not "
                                   f"match our current archive version {ARCHIVE_VERSION}.")
        order = self._marker("byteorder")
        if order is not None and order != BYTE_ORDER.encode():
            add("byteorder", f"byte order {order[:16]!r} is not supported (only {BYTE_ORDER!r})")
        if not self.models():
            add("models/", "the archive holds no program (no models/<name>.json record)")
        return out

    def crc_problems(self, name: str, view: memoryview | None = None) -> list[Problem]:
        """The record's CRC-32 against the zip directory (``[]`` when it matches). ``validate``
        checks every record; ``load`` the records it parses (documents, payload configs), not the
        tensor bytes it only maps."""
        import zlib

        data = self.reader.view(name) if view is None else view
        if zlib.crc32(data) & 0xFFFFFFFF == self.reader.entry(name).crc:
            return []
        return [Problem(CRC_MISMATCH, name, name)]

    def zero_fill_problem(self, need: int, where: str, record: str | None) -> Problem | None:
        """An empty record read as ``need`` bytes of zeros (PyTorch writes fake tensors so): at
        most :data:`MAX_ZERO_FILL` more than the archive's size, for all its empty records
        together. Counts ``need`` against that allowance when it fits."""
        budget = MAX_ZERO_FILL + self.reader.size
        if need > budget:
            return Problem(f"the record is empty but the tensor needs {need} bytes", where, record)
        if self.zero_filled + need > budget:
            return Problem(f"the record is empty and the empty records of this archive already stand for "
                           f"{self.zero_filled} bytes of zeros; {need} more is over the limit of {budget}", where, record)
        self.zero_filled += need
        return None

    def name(self, rel: str) -> str:
        """The full record name of ``rel`` (a name relative to the root folder)."""
        return f"{self.root}/{rel}" if self.root else rel

    def rel(self, name: str) -> str:
        """A full record name relative to the root folder."""
        return name[len(self.root) + 1:] if self.root and name.startswith(self.root + "/") else name

    def record(self, role: str, model: str = "model") -> str | None:
        """The full name of a record of ``model`` by role (:data:`RECORDS`); None if the layout has none."""
        template = RECORDS[self.layout][role]
        return None if template is None else self.name(template.format(m=model))

    def version_record(self) -> str | None:
        """The plain zip's ``version`` record (the writer's schema version, "8.7"); None otherwise."""
        if self.layout != "legacy" or LEGACY_VERSION not in self.reader:
            return None
        return bytes(self.reader.view(LEGACY_VERSION)[:64]).decode("utf-8", "replace")

    def version_problems(self, raw: Any) -> list[Problem]:
        """The plain zip's ``version`` record against the document's ``schema_version``: another
        major version is an error (no reader loads it), another minor a warning."""
        text = self.version_record()
        stated = legacy_version(text) if text is not None else None
        if stated is None:
            return []  # missing or malformed: a container problem
        from .upgrade import document_version

        try:
            major, minor = document_version(raw)
        except SerializeError:
            return []  # an unreadable document: reported with the document
        if stated == (major, minor):
            return []
        return [Problem(f"says schema {text.strip()} but the document's schema_version is {major}.{minor}",
                        LEGACY_VERSION, LEGACY_VERSION, level="warning" if stated[0] == major else "error")]

    def payload_records(self) -> list[str]:
        """Records that hold tensor data (what ``diff`` may read)."""
        if self.layout == "legacy":
            return [n for n in (RECORDS["legacy"]["weights_dict"], RECORDS["legacy"]["constants_dict"])
                    if n in self.reader]
        return [n for n in self.reader.names() if n.startswith(self.name("data/"))]

    def has(self, rel: str) -> bool:
        return self.name(rel) in self.reader

    def small(self, rel: str, limit: int = 64) -> str | None:
        """A short text record (``archive_format``), or None if absent (always, in the plain zip)."""
        if self.layout != "pt2" or not self.has(rel):
            return None
        data = self.reader.view(self.name(rel))
        return bytes(data[:limit]).decode("utf-8", "replace")

    def models(self) -> list[str]:
        if self.layout == "legacy":
            return ["model"]
        prefix = self.name("models/")
        return sorted(n[len(prefix):-5] for n in self.reader.names()
                      if n.startswith(prefix) and n.endswith(".json") and "/" not in n[len(prefix):])

    def extra_record(self, name: str) -> str:
        return self.name(RECORDS[self.layout]["extra"] + name)

    def extra_files(self) -> list[tuple[str, int]]:
        prefix = self.name(RECORDS[self.layout]["extra"])
        return [(n[len(prefix):], self.reader.entry(n).size) for n in self.reader.names()
                if n.startswith(prefix) and not n.endswith("/")]

    def program(self, model: str) -> "ProgramRecords":
        return ProgramRecords(self, model)

    def torch_save(self, record: str) -> TorchSaveRecord:
        cached = self._torch_saves.get(record)
        if cached is None:
            cached = describe_torch_save(self.record_view(record), record)
            self._torch_saves[record] = cached
        return cached

    def record_view(self, record: str, inner: str | None = None) -> memoryview:
        """The bytes of ``record`` (or of ``inner``, a record inside the ``torch.save`` zip
        ``record``): a view of the mapped file when stored, and when deflated inflated at most
        once per opened archive and kept for later calls. What is kept is bounded by the
        archive's inflation allowance (:class:`ArchiveReader` refuses past it), so a file
        whose entries all name one deflated record costs one inflation, not one per entry."""
        reader = self.reader if inner is None else self.torch_save(record).reader
        name = record if inner is None else inner
        if reader.entry(name).method == 0:
            return reader.view(name)
        cache = self.__dict__.setdefault("_inflated_views", {})
        view = cache.get((record, inner))
        if view is None:
            view = cache[(record, inner)] = reader.view(name)
        return view

    # ------------------------------------------------------------ streaming reads
    # Whole-record passes (CRCs, tensor comparisons) read with pread in chunks instead of
    # through the mapping: pages touched through a mapping stay in this process's resident
    # set until it ends, pages read with pread only in the page cache.

    def _fd(self) -> int | None:
        if self._fd_cache is None and self.path is not None:
            try:
                self._fd_cache = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            except OSError:
                self._fd_cache = -1
        return self._fd_cache if self._fd_cache is not None and self._fd_cache >= 0 else None

    def span(self, record: str, inner: str | None = None) -> tuple[int, int] | None:
        """(file offset, size) of a stored (uncompressed) record, or of a record inside a
        stored ``torch.save`` record; None when it cannot be read straight from the file."""
        e = self.reader.entry(record)
        if e.method != 0 or self._fd() is None:
            return None
        if inner is None:
            return e.data_offset, e.size
        ie = self.torch_save(record).reader.entry(inner)
        return None if ie.method != 0 else (e.data_offset + ie.data_offset, ie.size)

    def chunks(self, offset: int, length: int, chunk: int = 16 << 20) -> Iterator[memoryview]:
        """``length`` bytes of the file from ``offset`` (see :meth:`span`), in pieces."""
        fd = self._fd()
        end = offset + length
        while offset < end:
            data = os.pread(fd, min(chunk, end - offset), offset)
            if not data:
                raise SerializeError(f"{self.path}: the file ended at byte {offset} (it changed while being read?)")
            offset += len(data)
            yield memoryview(data)

    def record_chunks(self, record: str, chunk: int = 16 << 20) -> Iterator[memoryview]:
        span = self.span(record)
        if span is None:
            view = self.reader.view(record)
            for i in range(0, view.nbytes, chunk):
                yield view[i:i + chunk]
        else:
            yield from self.chunks(span[0], span[1], chunk)

    def close(self) -> None:
        if self._fd_cache is not None and self._fd_cache >= 0:
            os.close(self._fd_cache)
        self._fd_cache = None
        self.reader.close()


def legacy_version(text: str) -> tuple[int, int] | None:
    """The plain zip's ``version`` record ("8.7") as (major, minor); None if it is not one."""
    parts = text.strip().split(".")
    if len(parts) != 2 or not all(p.isdigit() and p.isascii() and len(p) <= 9 for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def open_archive(path: str | os.PathLike) -> Pt2Archive:
    """Open ``path`` (mapped, nothing read but the zip directory); ``SerializeError`` if unreadable."""
    if os.path.isdir(path):
        raise SerializeError(f"{os.fspath(path)} is a folder, not an archive")
    reader = ArchiveReader(path)
    try:
        return Pt2Archive(reader, os.fspath(path))
    except SerializeError:
        reader.close()
        raise


class ProgramRecords:
    """The records of one program: its document, payload configs and sample inputs."""

    def __init__(self, archive: Pt2Archive, model: str) -> None:
        self.archive = archive
        self.model = model
        self.document_record = archive.record("document", model)
        self.sample_record = archive.record("sample_inputs", model)
        self.original_version: tuple[int, int] | None = None  # set by document()

    def document_view(self) -> memoryview:
        """The document's bytes, within :data:`MAX_DOCUMENT_BYTES` (``SerializeError`` if over)."""
        return self.archive.reader.view(self.document_record, max_size=MAX_DOCUMENT_BYTES)

    def raw_document(self, view: memoryview | None = None) -> Any:
        """The document as written (not upgraded), from ``view`` (default :meth:`document_view`).
        Bare ``Infinity``/``NaN`` tokens are accepted in documents of schema major 7 only, whose
        writer produced them."""
        from .upgrade import document_version

        view = self.document_view() if view is None else view
        seen: list[str] = []
        raw = codec.loads_json(view, max_bytes=MAX_DOCUMENT_BYTES, what="ExportedProgram document", nonfinite=seen)
        if seen and document_version(raw)[0] >= 8:
            raise SerializeError(f"ExportedProgram document contains the non-standard token {seen[0]}")
        return raw

    def read_document(self, view: memoryview | None = None) -> tuple[Any, schema.ExportedProgram | None]:
        """``(raw, program)`` when the fast read of a current-version document succeeds
        (``upgrade.program_from_json_counted``: the keys proven unique without a per-object
        hook), else ``(raw_document(view), None)``, for the caller to :meth:`decode`."""
        from .upgrade import program_from_json_counted

        view = self.document_view() if view is None else view
        fast = program_from_json_counted(view, max_bytes=MAX_DOCUMENT_BYTES)
        if fast is None:
            return self.raw_document(view), None
        self.original_version = schema.SCHEMA_VERSION
        return fast

    def decode(self, raw: Any) -> schema.ExportedProgram:
        """``raw`` (from :meth:`raw_document`, changed in place) upgraded and decoded;
        :attr:`original_version` is the version it was written with."""
        from .upgrade import decode_program, document_version

        self.original_version = document_version(raw)
        return decode_program(raw)

    def document(self) -> schema.ExportedProgram:
        return self.decode(self.raw_document())

    def storage_format(self, folder: str) -> str | None:
        if self.archive.record(f"{folder}_dict", self.model) in self.archive.reader:  # first, as the loader does
            return "torch_save"
        config = self.archive.record(f"{folder}_config", self.model)
        if config is not None and config in self.archive.reader:
            return "raw"
        return None

    def config_record(self, folder: str) -> str:
        config = self.archive.record(f"{folder}_config", self.model)
        if self.storage_format(folder) == "torch_save" or config is None:
            return self.archive.record(f"{folder}_dict", self.model)
        return config

    def sample_problems(self) -> list[Problem]:
        """The sample inputs record: required in a PT2 archive, optional in the plain zip."""
        rec = self.sample_record
        if rec in self.archive.reader or self.archive.layout == "legacy":
            return []
        return [Problem("sample inputs record is missing", rec, rec)]

    def entries(self, folder: str, problems: list[Problem]) -> list[TensorEntry]:
        """The entries of ``folder`` ("weights" or "constants"); problems are appended, not raised."""
        fmt = self.storage_format(folder)
        record = self.config_record(folder)
        if fmt is None:
            if self.archive.layout == "legacy":  # the loader reads a missing dict as an empty one
                return []
            problems.append(Problem(f"the program has no {folder} config (record missing)", record, record))
            return []
        if fmt == "raw":
            return payload_entries(self.archive, folder, record, problems)
        try:
            return self._torch_save_entries(folder, record, problems)
        except SerializeError as e:
            problems.append(Problem.from_error(e, record, record))
            return []

    # ------------------------------------------------------------- torch.save configs

    def _torch_save_entries(self, folder: str, record: str, problems: list[Problem]) -> list[TensorEntry]:
        ts = self.archive.torch_save(record)
        value = ts.value
        if not isinstance(value, dict):
            problems.append(Problem(f"expected a dict of tensors, got {type(value).__name__}", record, record))
            return []
        out = []
        for fqn, t in value.items():
            if not isinstance(t, TensorInfo):
                problems.append(Problem(f"entry {fqn!r} is a {type(t).__name__}, not a tensor", record, record))
                continue
            entry = TensorEntry(str(fqn), folder, "tensor", record, dtype=t.dtype, sizes=list(t.sizes),
                                strides=list(t.strides), storage_offset=t.offset, is_param=t.is_param,
                                requires_grad=t.requires_grad, device=t.device)
            if t.storage is not None:
                entry.inner = f"{ts.root}/data/{t.storage}"
                entry.record_size = ts.reader.entry(entry.inner).size
            out.append(entry)
        return out
