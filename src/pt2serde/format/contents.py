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
records, record names, size caps, payload configs (and their ``pt2serde_shares`` links),
tensor geometry and the zero-fill allowance live here once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator

from . import codec, extent

from .. import schema
from .archive import ArchiveReader
from ..errors import SerializeError
from .torchsave import TensorInfo, TorchSaveRecord, describe_torch_save, pickle_globals
from .tables import BY_NAME, DTYPES, device_text, sym_text

__all__ = [
    "Problem",
    "Pt2Archive",
    "ProgramRecords",
    "TensorEntry",
    "open_archive",
    "entry_globals",
    "storage_view",
    "element_chunks",
    "tensor_chunks",
    "byte_chunks",
    "tensor_problems",
    "PICKLE_KINDS",
    "SHARES_KEY",
]

#: extra key in a PayloadMeta entry (ignored by PyTorch's reader): the record that holds the
#: whole storage this entry views, when it is another record than its own (aliasing across
#: the weights and constants folders, or across dtypes). Anything but an existing record of
#: those folders is ignored (the entry reads its own record).
SHARES_KEY = "pt2serde_shares"
WEIGHTS_DIR = "data/weights/"
CONSTANTS_DIR = "data/constants/"
ARCHIVE_FORMAT = "pt2"  # the `archive_format` record
ARCHIVE_VERSION = "0"  # the `archive_version` record
BYTE_ORDER = "little"  # the optional `byteorder` record
MAX_CONFIG_BYTES = 256 << 20
MAX_DOCUMENT_BYTES = 2 << 30
CRC_MISMATCH = "CRC-32 does not match the stored checksum: the record is corrupt"
MAX_DIMS = 64
MAX_ZERO_FILL = 64 << 20  # empty records read as zeros, up to this much more than the file, for the archive in all
#: Device types ``torch.device`` accepts (PyTorch 2.13); others need a renamed private backend.
DEVICE_TYPES = frozenset({"cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga",
                          "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone"})
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


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an archive: ``message @ where``.

    ``where`` is a wire path (``$.graph_module.graph.nodes[3]``) inside ``record`` when the
    problem is inside a JSON document, else the name of the record itself. ``level`` is
    ``"error"`` (the archive is not valid) or ``"warning"`` (worth knowing; still valid).
    """

    message: str
    where: str
    record: str | None = None
    level: str = "error"
    #: the problem is that loading needs ``allow_pickle=True`` (a warning: the file is sound,
    #: but ``load`` with the default ``allow_pickle=False`` refuses it)
    needs_pickle: bool = False

    def __str__(self) -> str:
        return f"{self.message} @ {self.where}"

    def blocks_load(self, allow_pickle: bool = False) -> bool:
        """Whether ``load(allow_pickle=...)`` refuses the archive because of this problem."""
        return self.level == "error" or (self.needs_pickle and not allow_pickle)

    def error(self) -> SerializeError:
        """The problem as ``load`` raises it: ``record <name>: <message>``, and the wire path
        inside that record when there is one."""
        if self.where.startswith("$"):
            return SerializeError(f"record {self.record}: {self.message} - at `{self.where}`",
                                  record=self.record, path=self.where, problem=self.message)
        if self.message.startswith(("record '", f"record {self.where} ")):  # names its record already (zip layer)
            return SerializeError(self.message, record=self.where)
        return SerializeError(f"record {self.where}: {self.message}", record=self.where, problem=self.message)


def first_error(problems: list[Problem]) -> None:
    """Raise the first problem that makes ``load`` refuse the archive (see :meth:`Problem.error`)."""
    for p in problems:
        if p.level == "error":
            raise p.error()


def key_path(key: str) -> str:
    """A dict key as a wire-path segment, as the codec writes it (``.fc.weight``)."""
    return f".{key}"


# =============================================================================== entries


@dataclass
class TensorEntry:
    """One entry of a program's state dict or constants, as the archive describes it."""

    name: str
    folder: str  # "weights" | "constants"
    kind: str  # "tensor" | "pickled_tensor" | "custom_obj" | "opaque_obj"
    record: str | None  # the record holding the storage (full zip name)
    record_size: int = 0
    dtype: str | None = None
    sizes: list[int | str] = field(default_factory=list)
    strides: list[int | str] = field(default_factory=list)
    storage_offset: int | str = 0
    is_param: bool = False
    requires_grad: bool = False
    device: str = "cpu"
    own_record: str | None = None  # the entry's own record when ``record`` is a shared one
    inner: str | None = None  # torch.save storage: the record inside ``record``'s zip
    meta: schema.PayloadMeta | None = None  # raw configs: the decoded entry (what ``load`` builds from)

    @property
    def needs_pickle(self) -> bool:
        return self.kind != "tensor"

    @property
    def concrete(self) -> bool:
        return all(type(x) is int for x in (*self.sizes, *self.strides, self.storage_offset))

    @property
    def numel(self) -> int | None:
        if not all(type(x) is int for x in self.sizes):
            return None
        n = 1
        for s in self.sizes:
            n *= s
        return n

    @property
    def nbytes(self) -> int | None:
        dt = BY_NAME.get(self.dtype or "")
        n = self.numel
        return None if dt is None or n is None else n * dt.itemsize

    @property
    def storage_id(self) -> tuple[str | None, str | None]:
        return (self.record, self.inner)

    def span(self) -> int | None:
        """Bytes of storage this view reaches (0 for an empty tensor); None if not concrete."""
        dt = BY_NAME.get(self.dtype or "")
        if dt is None or not self.concrete:
            return None
        if 0 in self.sizes:
            return self.storage_offset * dt.itemsize
        return (self.storage_offset + sum((n - 1) * s for n, s in zip(self.sizes, self.strides)) + 1) * dt.itemsize

    def contiguous(self) -> bool:
        expected = 1
        for n, s in zip(reversed(self.sizes), reversed(self.strides)):
            if n != 1 and s != expected:
                return False
            expected *= n
        return True


# ============================================================================== archive


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


Problems = list  # of Problem


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

    def entries(self, folder: str, problems: Problems) -> list[TensorEntry]:
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
            problems.append(Problem(str(e), record, record))
            return []

    # ------------------------------------------------------------- torch.save configs

    def _torch_save_entries(self, folder: str, record: str, problems: Problems) -> list[TensorEntry]:
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


# ========================================================================= raw configs


PICKLE_KINDS = {"custom_obj": "a custom object (TorchScript pickle)", "opaque_obj": "an opaque object (pickle)",
                "pickled_tensor": "a tensor stored with torch.save (pickle)"}


def payload_entries(archive: Pt2Archive, folder: str, record: str, problems: Problems) -> list[TensorEntry]:
    """The entries of a raw payload config (``<name>_weights_config.json`` / ``_constants_config.json``).

    Every problem is appended to ``problems``, in the order of the entries: the config's size
    and JSON, each entry's ``PayloadMeta``, its record name and record, its ``pt2serde_shares``
    link, its tensor metadata against its storage (:func:`tensor_problems`), and, as a
    ``needs_pickle`` warning, an entry that only unpickling can rebuild. ``load`` raises the
    first that blocks it; each entry it builds from carries the decoded ``meta`` and the record
    that holds its storage.
    """
    try:
        view = archive.reader.view(record, max_size=MAX_CONFIG_BYTES)
        raw = codec.loads_json(view, max_bytes=MAX_CONFIG_BYTES, what=f"record {record}")
    except SerializeError as e:
        problems.append(Problem(str(e), record, record))
        return []
    config = raw.get("config") if isinstance(raw, dict) else None
    if not isinstance(config, dict):
        if not isinstance(raw, dict):
            problems.append(Problem(f"Expected `object` (PayloadConfig), got `{codec.json_type_name(raw)}`", "$", record))
        elif "config" not in raw:
            problems.append(Problem("Object missing required field `config`", "$", record))
        else:
            problems.append(Problem(f"Expected `object`, got `{codec.json_type_name(config)}`", "$.config", record))
        return []
    base = WEIGHTS_DIR if folder == "weights" else CONSTANTS_DIR
    out: list[TensorEntry] = []
    for fqn, item in config.items():
        where = f"$.config{key_path(fqn)}"
        try:
            meta = codec.from_dict(schema.PayloadMeta, item)
        except SerializeError as e:
            inner = getattr(e, "path", None) or "$"
            problems.append(Problem(e.problem, where + inner[1:], record))
            continue
        path = meta.path_name
        if not path or "/" in path or "\\" in path or path in (".", ".."):
            problems.append(Problem(f"entry {fqn!r} names an invalid record {path!r}", f"{where}.path_name", record))
            continue
        own = archive.name(f"{base}{path}")
        kind = "tensor"
        if path.startswith("custom_obj_"):
            kind = "custom_obj"
        elif path.startswith("opaque_obj_"):
            kind = "opaque_obj"
        elif meta.use_pickle:
            kind = "pickled_tensor"
        entry = TensorEntry(fqn, folder, kind, own, is_param=meta.is_param, meta=meta)
        if own not in archive.reader:
            problems.append(Problem(f"entry {fqn!r} names record {path!r}, which is missing",
                                    f"{where}.path_name", record))
            entry.record = None
        else:
            entry.record_size = archive.reader.entry(own).size
        if entry.needs_pickle:
            problems.append(Problem(f"record {own} ({fqn!r}) is stored as a pickle; loading it "
                                    "can run code from the file. Pass allow_pickle=True if you trust this archive.",
                                    own, record, level="warning", needs_pickle=True))
        shares = item.get(SHARES_KEY) if isinstance(item, dict) else None
        if shares is not None and kind == "tensor":
            target = archive.name(shares) if isinstance(shares, str) else None
            if target is None or not shares.startswith((WEIGHTS_DIR, CONSTANTS_DIR)) or target not in archive.reader:
                problems.append(Problem(f"`{SHARES_KEY}` names {shares!r}, which is not a tensor record of this "
                                        "archive; ignored (the entry reads its own record)", f"{where}.{SHARES_KEY}",
                                        record, level="warning"))
            elif entry.record is not None:
                entry.own_record, entry.record = entry.record, target
                entry.record_size = archive.reader.entry(target).size
        tm = meta.tensor_meta
        if tm is not None:
            dt = DTYPES.get(tm.dtype)
            entry.dtype = dt.name if dt else f"ScalarType({int(tm.dtype)})"
            entry.sizes = [sym_text(s) for s in tm.sizes]
            entry.strides = [sym_text(s) for s in tm.strides]
            entry.storage_offset = sym_text(tm.storage_offset)
            entry.requires_grad = tm.requires_grad
            entry.device = device_text(tm.device)
            if kind == "tensor":
                problems.extend(tensor_problems(entry, tm, where, record, archive))
        elif kind == "tensor":
            problems.append(Problem(f"entry {fqn!r} has no tensor metadata", f"{where}.tensor_meta", record))
        out.append(entry)
    return out


#: what a folder stores, by name: (dtype name, sizes, whether the entry has a ``$.config`` path), or None
Stored = dict[str, "tuple[str | None, list | None, bool] | None"]


def signature_problems(doc: schema.ExportedProgram, stored: dict[str, Stored], records: dict[str, str]) -> list[Problem]:
    """Every lifted parameter, buffer, constant and object of the signature has a stored entry
    in its folder (``stored["weights"]`` / ``stored["constants"]``) whose dtype and sizes match
    the graph's placeholder. ``records``: the config record of each folder (where problems are).
    ``validate`` passes the model's entries, ``load`` what it read."""
    out: list[Problem] = []
    gm = doc.graph_module
    for i, spec in enumerate(gm.signature.input_specs):
        body = spec.value
        if spec.type == "parameter":
            name, folder = body.parameter_name, "weights"
        elif spec.type == "buffer":
            name, folder = body.buffer_name, "weights" if body.persistent else "constants"
        elif spec.type == "tensor_constant":
            name, folder = body.tensor_constant_name, "constants"
        elif spec.type == "custom_obj":
            name, folder = body.custom_obj_name, "constants"
        else:
            continue
        record = records[folder]
        if name not in stored[folder]:
            other = "constants" if folder == "weights" else "weights"
            hint = f" (it is in the {other} config instead)" if name in stored[other] else ""
            out.append(Problem(f"{spec.type.replace('_', ' ')} `{name}` (input spec {i}) is not stored in the "
                               f"{folder} config{hint}", record, record))
            continue
        value = stored[folder][name]
        if value is None or spec.type == "custom_obj" or not isinstance(body.arg, schema.TensorArgument):
            continue
        dtype, sizes, at_path = value
        tm = gm.graph.tensor_values.get(body.arg.name)
        if tm is None or dtype is None:
            continue
        want_dtype = DTYPES[tm.dtype].name if tm.dtype in DTYPES else None
        want_sizes = [sym_text(s) for s in tm.sizes]
        if want_dtype != dtype or want_sizes != sizes:
            out.append(Problem(f"`{name}` is stored as {dtype}{sizes} but the graph input `{body.arg.name}` is "
                               f"{want_dtype}{want_sizes}", f"$.config{key_path(name)}" if at_path else record, record))
    return out


def view_problem(sizes: list[int], strides: list[int], offset: int, itemsize: int, nbytes: int | None,
                 has_data: bool = True) -> str | None:
    """What is wrong with a strided view of ``nbytes`` bytes (None: unbounded, as on the meta
    device): :func:`pt2serde.format.extent.view_problem`, the rule ``load`` applies too."""
    return extent.view_problem(sizes, strides, offset, itemsize, nbytes, has_data)


def tensor_problems(entry: TensorEntry, tm: schema.TensorMeta, where: str, record: str,
                    archive: Pt2Archive | None = None) -> list[Problem]:
    """Geometry of a raw tensor entry against its dtype and storage record; an empty record
    counts against the archive's zero-fill allowance (:meth:`Pt2Archive.zero_fill_problem`).
    Problems of the storage itself are reported at the storage record, as ``load`` raises them."""
    out: list[Problem] = []
    P = lambda message, at: Problem(message, at, record)  # noqa: E731
    if tm.dtype not in DTYPES:
        out.append(P(f"dtype {int(tm.dtype)} ({tm.dtype.name}) has no storage format", f"{where}.tensor_meta.dtype"))
        return out
    if tm.layout != schema.Layout.Strided:
        out.append(P(f"layout {tm.layout.name} is not a strided tensor", f"{where}.tensor_meta.layout"))
    storage = entry.record or entry.own_record or record
    if not entry.concrete:
        out.append(Problem("stored tensors need concrete sizes, strides and offset", storage, record))
        return out
    if len(entry.sizes) > MAX_DIMS:
        out.append(P(f"{len(entry.sizes)} dimensions, over the limit of {MAX_DIMS}", f"{where}.tensor_meta.sizes"))
        return out
    if entry.is_param and tm.requires_grad and not DTYPES[tm.dtype].name.startswith(("float", "complex", "bfloat")):
        out.append(P(f"a torch.{entry.dtype} parameter cannot require gradients (requires_grad is true)",
                     f"{where}.tensor_meta.requires_grad"))
    itemsize = DTYPES[tm.dtype].itemsize
    has_data = entry.device.split(":")[0] != "meta"
    # one pass of the view rule: against the record's bytes when the entry reads a non-empty one
    bounded = entry.record is not None and has_data and entry.record_size != 0
    shape_problem = view_problem(entry.sizes, entry.strides, entry.storage_offset, itemsize,
                                 entry.record_size if bounded else None, has_data=has_data)
    if shape_problem is not None:
        out.append(Problem(shape_problem, storage, record))
        return out
    if out or entry.record is None:
        return out
    if entry.device.split(":")[0] not in DEVICE_TYPES:
        out.append(Problem(f"device type {tm.device.type!r} is not one PyTorch knows; loading needs a backend "
                           "registered under that name", f"{where}.tensor_meta.device", record, level="warning"))
    if entry.device == "meta":
        return out
    if entry.record_size == 0:  # fake tensors: PyTorch writes an empty record and reads zeros back
        span = entry.span()
        if archive is None:
            budget = MAX_ZERO_FILL
            found = None if span <= budget else Problem(f"the record is empty but the tensor needs {span} bytes",
                                                        entry.record, record)
        else:
            found = archive.zero_fill_problem(span, entry.record, record)
        if found is not None:
            out.append(found)
        return out
    if entry.record_size % itemsize:
        out.append(Problem(f"record holds {entry.record_size} bytes, not a whole number of {itemsize}-byte "
                           f"{entry.dtype} elements", entry.record, record))
    return out


def entry_globals(archive: Pt2Archive, entry: TensorEntry) -> list[str] | None:
    """What the pickle of a pickled entry names (see :func:`pickle_globals`)."""
    record = entry.own_record or entry.record
    if record is None or record not in archive.reader:
        return None
    try:
        return pickle_globals(archive.reader.view(record))
    except SerializeError:
        return None


def storage_view(archive: Pt2Archive, entry: TensorEntry) -> memoryview:
    """The bytes of the storage behind ``entry``: a view of the mapped file, or the archive's
    one inflated copy of a deflated record (:meth:`Pt2Archive.record_view`)."""
    if entry.record is None:
        raise SerializeError(f"entry {entry.name!r} has no storage record")
    return archive.record_view(entry.record, entry.inner)


def byte_chunks(archive: Pt2Archive, entry: TensorEntry, start: int, length: int,
                chunk: int = 16 << 20) -> Iterator[memoryview]:
    """``length`` bytes of ``entry``'s storage from byte ``start``, in pieces of at most
    ``chunk``: read from the file when the record is stored, else sliced from its one
    inflated copy. The caller has checked ``start + length`` against the record size."""
    span = archive.span(entry.record, entry.inner)
    if span is not None:
        yield from archive.chunks(span[0] + start, length, chunk)
        return
    view = storage_view(archive, entry)
    for i in range(start, start + length, chunk):
        yield view[i:min(i + chunk, start + length)]


def tensor_chunks(archive: Pt2Archive, entry: TensorEntry, chunk: int = 16 << 20) -> Iterator[memoryview]:
    """The tensor's elements in logical order (see :func:`element_chunks`); contiguous tensors
    are read as one byte range (:func:`byte_chunks`)."""
    if entry.contiguous() and entry.numel:
        item = BY_NAME[entry.dtype].itemsize
        yield from byte_chunks(archive, entry, entry.storage_offset * item, entry.numel * item,
                               max(item, chunk - chunk % item))
        return
    yield from element_chunks(storage_view(archive, entry), entry, chunk)


_LANES = {8: "Q", 4: "I", 2: "H", 1: "B"}


def _gather(data: memoryview, first: int, count: int, stride: int, item: int) -> bytes | memoryview:
    """``count`` elements of ``item`` bytes from element ``first`` of ``data``, ``stride`` apart."""
    if stride == 1 or count == 1:
        return data[first * item:(first + count) * item]
    if stride == 0:
        return bytes(data[first * item:(first + 1) * item]) * count
    width = next(w for w in (8, 4, 2, 1) if item % w == 0)
    lanes = item // width  # an element is `lanes` words of `width` bytes (complex128: 2 x 8)
    src = data[first * item:(first + (count - 1) * stride + 1) * item].cast(_LANES[width])
    out = bytearray(count * item)
    dst = memoryview(out).cast(_LANES[width])
    for lane in range(lanes):
        dst[lane::lanes] = src[lane::stride * lanes]
    return out


def _row_starts(sizes: list[int], strides: list[int], offset: int) -> Iterator[int]:
    """The storage offset of each row (the last dimension) of a view, in row-major order."""
    index = [0] * len(sizes)
    base = offset
    while True:
        yield base
        k = len(sizes) - 1
        while k >= 0:
            index[k] += 1
            base += strides[k]
            if index[k] < sizes[k]:
                break
            base -= strides[k] * index[k]
            index[k] = 0
            k -= 1
        if k < 0:
            return


def element_chunks(data: memoryview, entry: TensorEntry, chunk: int = 16 << 20) -> Iterator[memoryview]:
    """The tensor's elements in logical (row-major) order, as byte chunks of about ``chunk`` bytes.

    Contiguous tensors are sliced without copying; other layouts are gathered piece by piece
    (a row longer than a chunk too), so memory stays at about one chunk whatever the view
    claims: a zero-stride ``[2**40]`` view yields forever, one chunk at a time, and the caller
    decides how much to read. The caller has checked the geometry (``tensor_problems``).
    """
    item = BY_NAME[entry.dtype].itemsize
    n = entry.numel
    if n == 0:
        return
    step = max(item, chunk - chunk % item)
    if entry.contiguous():
        start = entry.storage_offset * item
        total = n * item
        for i in range(0, total, step):
            yield data[start + i:start + min(i + step, total)]
        return
    inner_n, inner_s = entry.sizes[-1], entry.strides[-1]
    per = step // item
    buf = bytearray()
    for base in _row_starts(entry.sizes[:-1], entry.strides[:-1], entry.storage_offset):
        for j in range(0, inner_n, per):
            buf += _gather(data, base + j * inner_s, min(per, inner_n - j), inner_s, item)
            if len(buf) >= step:
                yield memoryview(bytes(buf))
                buf = bytearray()
    if buf:
        yield memoryview(bytes(buf))
