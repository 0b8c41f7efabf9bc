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
  :mod:`pt2serde.picklewalk`.

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
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator

from . import codec, schema
from .archive import ArchiveReader
from .errors import SerializeError
from .picklewalk import TensorInfo, TorchSaveRecord, describe_torch_save, pickle_globals
from .wiretext import BY_NAME, DTYPES, device_text, sym_text

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

SHARES_KEY = "pt2serde_shares"  # same key as package.SHARES_KEY (package imports torch)
WEIGHTS_DIR = "data/weights/"
CONSTANTS_DIR = "data/constants/"
MAX_CONFIG_BYTES = 256 << 20
MAX_DOCUMENT_BYTES = 2 << 30
MAX_DIMS = 64
MAX_ZERO_FILL = 64 << 20  # an empty record reads as zeros, up to this much more than the file (package and validate)
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

    def __str__(self) -> str:
        return f"{self.message} @ {self.where}"


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
            try:
                self.root = reader.root_folder()
            except SerializeError as e:
                raise SerializeError(f"not a PT2 archive (nor the plain zip of PyTorch 2.5-2.7): {e}") from None
        self._torch_saves: dict[str, TorchSaveRecord] = {}
        self._fd_cache: int | None = None

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

    def raw_document(self) -> Any:
        """The document as written (not upgraded). Bare ``Infinity``/``NaN`` tokens are
        accepted in documents of schema major 7 only, whose writer produced them."""
        from .upgrade import document_version

        view = self.archive.reader.view(self.document_record, max_size=MAX_DOCUMENT_BYTES)
        seen: list[str] = []
        raw = codec.loads_json(view, max_bytes=MAX_DOCUMENT_BYTES, what="program document", nonfinite=seen)
        if seen and document_version(raw)[0] >= 8:
            raise SerializeError(f"program document is not valid JSON: it contains the non-standard token {seen[0]}")
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

    def entries(self, folder: str, problems: Problems) -> list[TensorEntry]:
        """The entries of ``folder`` ("weights" or "constants"); problems are appended, not raised."""
        fmt = self.storage_format(folder)
        record = self.config_record(folder)
        if fmt is None:
            if self.archive.layout == "legacy":  # the loader reads a missing dict as an empty one
                return []
            problems.append(Problem(f"the program has no {folder} config (record missing)", record, record))
            return []
        try:
            if fmt == "raw":
                return self._raw_entries(folder, record, problems)
            return self._torch_save_entries(folder, record, problems)
        except SerializeError as e:
            problems.append(Problem(str(e), record, record))
            return []

    # ------------------------------------------------------------------ raw configs

    def _raw_entries(self, folder: str, record: str, problems: Problems) -> list[TensorEntry]:
        raw = codec.loads_json(self.archive.reader.view(record, max_size=MAX_CONFIG_BYTES),
                               max_bytes=MAX_CONFIG_BYTES, what="payload config")
        config = raw.get("config") if isinstance(raw, dict) else None
        if not isinstance(config, dict):
            if not isinstance(raw, dict):
                problems.append(Problem(f"Expected `object` (PayloadConfig), got `{codec._json_type(raw)}`", "$", record))
            elif "config" not in raw:
                problems.append(Problem("Object missing required field `config`", "$", record))
            else:
                problems.append(Problem(f"Expected `object`, got `{codec._json_type(config)}`", "$.config", record))
            return []
        base = WEIGHTS_DIR if folder == "weights" else CONSTANTS_DIR
        out: list[TensorEntry] = []
        for fqn, item in config.items():
            where = f"$.config{key_path(fqn)}"
            try:
                meta = codec.from_dict(schema.PayloadMeta, item)
            except SerializeError as e:
                inner = getattr(e, "path", None) or "$"
                problems.append(Problem(getattr(e, "message", str(e)), where + inner[1:], record))
                continue
            path = meta.path_name
            if not path or "/" in path or "\\" in path or path in (".", ".."):
                problems.append(Problem(f"path_name {path!r} is not a record name", f"{where}.path_name", record))
                continue
            own = self.archive.name(f"{base}{path}")
            kind = "tensor"
            if path.startswith("custom_obj_"):
                kind = "custom_obj"
            elif path.startswith("opaque_obj_"):
                kind = "opaque_obj"
            elif meta.use_pickle:
                kind = "pickled_tensor"
            entry = TensorEntry(fqn, folder, kind, own, is_param=meta.is_param)
            if own not in self.archive.reader:
                problems.append(Problem(f"entry {fqn!r} names record {path!r}, which is missing",
                                        f"{where}.path_name", record))
                entry.record = None
            else:
                entry.record_size = self.archive.reader.entry(own).size
            shares = item.get(SHARES_KEY) if isinstance(item, dict) else None
            if shares is not None and kind == "tensor":
                target = self.archive.name(shares) if isinstance(shares, str) else None
                if target is None or not shares.startswith((WEIGHTS_DIR, CONSTANTS_DIR)) or target not in self.archive.reader:
                    problems.append(Problem(f"`{SHARES_KEY}` names {shares!r}, which is not a tensor record "
                                            "of this archive", f"{where}.{SHARES_KEY}", record))
                else:
                    entry.own_record, entry.record = entry.record, target
                    entry.record_size = self.archive.reader.entry(target).size
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
                    problems.extend(tensor_problems(entry, tm, where, record, self.archive.reader.size))
            elif kind in ("tensor", "pickled_tensor"):
                problems.append(Problem(f"tensor entry {fqn!r} has no tensor_meta", f"{where}.tensor_meta", record))
            out.append(entry)
        return out

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


def tensor_problems(entry: TensorEntry, tm: schema.TensorMeta, where: str, record: str,
                    archive_size: int = 0) -> list[Problem]:
    """Geometry of a raw tensor entry against its dtype and storage record."""
    out: list[Problem] = []
    P = lambda message, at: Problem(message, at, record)  # noqa: E731
    if tm.dtype not in DTYPES:
        out.append(P(f"dtype {int(tm.dtype)} ({tm.dtype.name}) has no storage format", f"{where}.tensor_meta.dtype"))
        return out
    if tm.layout != schema.Layout.Strided:
        out.append(P(f"layout {tm.layout.name} is not a strided tensor", f"{where}.tensor_meta.layout"))
    if not entry.concrete:
        out.append(P("stored tensors need concrete sizes, strides and offset, found a symbolic one",
                    f"{where}.tensor_meta"))
        return out
    if len(entry.sizes) != len(entry.strides):
        out.append(P(f"{len(entry.sizes)} sizes but {len(entry.strides)} strides", f"{where}.tensor_meta.strides"))
        return out
    if len(entry.sizes) > MAX_DIMS:
        out.append(P(f"{len(entry.sizes)} dimensions, over the limit of {MAX_DIMS}", f"{where}.tensor_meta.sizes"))
        return out
    for field_, values in (("sizes", entry.sizes), ("strides", entry.strides)):
        for i, v in enumerate(values):
            if v < 0:
                out.append(P(f"negative value {v}", f"{where}.tensor_meta.{field_}[{i}]"))
    if entry.storage_offset < 0:
        out.append(P(f"negative storage offset {entry.storage_offset}", f"{where}.tensor_meta.storage_offset"))
    if out or entry.record is None:
        return out
    itemsize = DTYPES[tm.dtype].itemsize
    span = entry.span()
    if entry.device.split(":")[0] not in DEVICE_TYPES:
        out.append(Problem(f"device type {tm.device.type!r} is not one PyTorch knows; loading needs a backend "
                           "registered under that name", f"{where}.tensor_meta.device", record, level="warning"))
    if entry.device == "meta":
        return out
    if entry.record_size == 0:  # fake tensors: PyTorch writes an empty record and reads zeros back
        if span > MAX_ZERO_FILL + archive_size:
            out.append(P(f"the record is empty but the tensor needs {span} bytes", f"{where}.tensor_meta"))
        return out
    if span > entry.record_size:
        out.append(P(
            f"a {entry.dtype} tensor of size {entry.sizes}, stride {entry.strides} and storage offset "
            f"{entry.storage_offset} needs {span} bytes but record {entry.record.rsplit('/', 1)[1]!r} holds "
            f"{entry.record_size}", f"{where}.tensor_meta"))
    elif entry.record_size % itemsize:
        out.append(Problem(f"record holds {entry.record_size} bytes, not a whole number of {itemsize}-byte "
                           f"{entry.dtype} elements", entry.record, entry.record))
    return out


PICKLE_KINDS = {"custom_obj": "a custom object (TorchScript pickle)", "opaque_obj": "an opaque object (pickle)",
                "pickled_tensor": "a tensor stored with torch.save (pickle)"}


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
