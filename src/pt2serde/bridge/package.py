"""PT2 archives: ``save``, ``load`` and ``load_all``.

Layout (paths under the archive's root folder; the same records ``torch.export.save``
writes, so each side reads the other's files)::

    models/<name>.json                         the program document (schema 8.20)
    data/weights/weight_<i>                    raw storage bytes (one record per storage)
    data/weights/<name>_weights_config.json    PayloadConfig: fqn -> record + TensorMeta
    data/constants/tensor_<i>                  raw storage bytes of constants
    data/constants/custom_obj_<i> / opaque_obj_<i>   objects, read without unpickling (bridge/torchbind, bridge/opaque)
    data/constants/<name>_constants_config.json
    data/sample_inputs/<name>.pt               torch.save of (args, kwargs)
    extra/<file>                               user extra files
    archive_format ("pt2"), archive_version ("0"), .data/version ("6\\n"), byteorder,
    .data/serialization_id                     PyTorch's id of the records (deterministic)

Loading maps the archive and makes every tensor a view of the mapping (copy-on-write);
it never unpickles with code execution unless ``allow_pickle=True``.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import warnings
import weakref
from typing import Any, Callable

import torch
from torch.export import ExportedProgram

from . import argcheck, opaque, tables, tensors, torchbind

from ..format import codec, contents, extent, filekind, problem, tensor_entries

from .. import schema
from ..format.gcpause import gc_paused
from ..format.archive import ArchiveReader, check_name
from ..format.archive_write import ArchiveWriter
from ..errors import SerializeError
from ..format.payload import DEFAULT_PICKLE_PROTOCOL, check_pickle_protocol
from ..format.releases import RELEASES
from ..format.upgrade import downgrade, pytorch_reader_gap
from .object_records import constant_text, object_record, torch_save_bytes, writing
from .torchsave import load_torch_save
from .program import ExportedProgramDeserializer, ExportedProgramSerializer, default_opset_version

__all__ = ["save", "load", "load_all", "ARCHIVE_VERSION"]

# The layout's names and limits are the checked model's (contents), shared with the CLI.
ARCHIVE_FORMAT = contents.ARCHIVE_FORMAT
ARCHIVE_VERSION = contents.ARCHIVE_VERSION
SHARES_KEY = tensor_entries.SHARES_KEY
WEIGHTS_DIR = tensor_entries.WEIGHTS_DIR
CONSTANTS_DIR = tensor_entries.CONSTANTS_DIR
_MAY_GAP = re.compile(rb'"as_sym_bool"')  # cheap pre-check before looking for PyTorch reader gaps


# ================================================================================ save


class _StoragePlan:
    """Assigns records to storages, shared across the state dict and constants of a program."""

    def __init__(self) -> None:
        self.records: dict[tuple, str] = {}  # (storage key, dtype, folder) -> "data/weights/weight_3"
        self.by_storage: dict[tuple, str] = {}  # storage key -> first record holding it

    @staticmethod
    def group(t: torch.Tensor, folder: str) -> tuple:
        """The tensors of one record: PyTorch's grouping (storage and dtype), per folder. Tensors
        without memory share one 0-byte record per dtype: fake ones one, empty and meta ones
        another (PyTorch's key is the data pointer: none for fake tensors, 0 for the others)."""
        if tensors.is_fake(t):
            return ("fake", t.dtype, folder)
        key = tensors.StorageTable.key(t)
        return (key if key is not None else "no data", t.dtype, folder)

    def record_for(self, t: torch.Tensor, folder: str, prefix: str, counter: list[int],
                   writer: ArchiveWriter, root: str) -> tuple[str, str | None]:
        """(path_name, shared record) for tensor ``t``; writes the storage the first time."""
        group = self.group(t, folder)
        if group in self.records:
            return self.records[group].rsplit("/", 1)[1], None
        path_name = f"{prefix}{counter[0]}"
        counter[0] += 1
        record = f"{folder}{path_name}"
        writer.add(f"{root}/{record}", _storage_chunks(t))
        self.records[group] = record
        shared = None
        key = group[0] if isinstance(group[0], tuple) else None
        if key is not None:
            first = self.by_storage.setdefault(key, record)
            shared = first if first != record else None
        return path_name, shared


def _storage_chunks(t: torch.Tensor) -> list[memoryview]:
    if tensors.is_fake(t) or t.untyped_storage().data_ptr() == 0:
        return [memoryview(b"")]
    data = tensors.storage_bytes(t.untyped_storage())
    itemsize = t.element_size()
    usable = data.nbytes - data.nbytes % itemsize  # PyTorch's reader needs whole elements
    return [data[:usable]]


def _payload_config(
    values: dict[str, Any], folder: str, prefix: str, writer: ArchiveWriter, root: str,
    plan: _StoragePlan, counters: dict[str, list[int]], allow_objects: bool, protocol: int,
) -> dict:
    """Write the records of a state dict or constants dict; its payload config.

    Records and config entries come in PyTorch's order: tensors stored as pickles (subclasses)
    first, then one record per storage group (its tensors' entries together, groups in order of
    first appearance), then custom objects; so the archive can be compared with PyTorch's.
    """
    from .arguments import is_opaque_value

    pickled: list[tuple[str, torch.Tensor]] = []
    groups: dict[tuple, list[tuple[str, torch.Tensor]]] = {}
    objects: list[tuple[str, Any]] = []
    for fqn, value in values.items():
        if isinstance(value, torch.Tensor):
            if not tensors.is_plain_tensor(value) and not tensors.is_fake(value):
                pickled.append((fqn, value))
            else:
                groups.setdefault(plan.group(value, folder), []).append((fqn, value))
        elif allow_objects and (isinstance(value, torch._C.ScriptObject) or is_opaque_value(value)):
            objects.append((fqn, value))
        elif allow_objects:
            raise SerializeError(f"Unsupported constant type: {type(value)} ({fqn})")
        else:
            raise SerializeError(f"state dict entry {fqn!r} is a {type(value).__name__}, not a tensor")

    def entry(path_name: str, value: Any, use_pickle: bool) -> dict:
        tensor = isinstance(value, torch.Tensor)
        return codec.to_dict(schema.PayloadMeta(
            path_name=path_name, is_param=isinstance(value, torch.nn.Parameter), use_pickle=use_pickle,
            tensor_meta=tensors.tensor_meta_to_wire(value) if tensor else None,
        ))

    config: dict[str, Any] = {}
    for fqn, value in pickled:
        path_name = f"{prefix}{counters[prefix][0]}"
        counters[prefix][0] += 1
        with writing(constant_text(fqn, value, "constant" if allow_objects else "state dict entry")):
            data = torch_save_bytes(value, protocol)
        writer.add(f"{root}/{folder}{path_name}", data)
        config[fqn] = entry(path_name, value, True)
    for members in groups.values():
        for fqn, value in members:
            path_name, shared = plan.record_for(value, folder, prefix, counters[prefix], writer, root)
            config[fqn] = entry(path_name, value, False)
            if shared is not None:
                config[fqn][SHARES_KEY] = shared
    for fqn, value in objects:
        kind, data = object_record(fqn, value, protocol)
        path_name = f"{kind}{counters[kind][0]}"
        counters[kind][0] += 1
        writer.add(f"{root}/{folder}{path_name}", data)
        config[fqn] = entry(path_name, value, True)
    return {"config": config}


def _root_name(f) -> str:
    if isinstance(f, (str, os.PathLike)):
        base = os.path.splitext(os.path.basename(os.fspath(f)))[0]
        return base if base and base not in (".", "..") and "/" not in base else "archive"
    return "archive"


def save(
    programs: ExportedProgram | dict[str, ExportedProgram],
    f,
    *,
    extra_files: dict[str, str | bytes] | None = None,
    opset_version: dict[str, int] | None = None,
    pickle_protocol: int = DEFAULT_PICKLE_PROTOCOL,
    target_schema: tuple[int, int] | None = None,
) -> None:
    """Write ``programs`` to a PT2 archive at ``f`` (a path or a writable binary file object).

    A single program is stored under the name ``"model"``. The archive holds the records
    ``torch.export.save`` writes for the same program, in its order and, apart from the
    documented exceptions (README, "Where pt2serde deliberately differs"), with its bytes.

    For a path, the archive is written to a temporary file next to it and renamed into place
    only once complete, so a failed save never leaves a half-written file. Unlike
    ``torch.export.save`` (which truncates and rewrites the file in place), the path then
    names a new file: a handle the caller already holds on it (``f =
    tempfile.NamedTemporaryFile(suffix=".pt2")`` then ``save(ep, f.name)``) still reads the
    old, empty file; open the path again, or pass the file object itself (``save(ep, f)``
    writes into it and leaves it at position 0). A symbolic link is written through: the
    new file replaces the link's final target (created if the link dangles), the link stays.

    ``pickle_protocol`` (2 to ``pickle.HIGHEST_PROTOCOL``, default 2 as in PyTorch) applies
    only to the records PyTorch also stores as pickles: the sample inputs (``torch.save``),
    tensor subclasses and opaque objects among the weights and constants (and the whole
    state dict and constants of a ``target_schema`` below ``(8, 14)``). Plain tensors are raw
    bytes and the document is JSON whatever the protocol.

    ``target_schema``: write for an older reader: ``(8, 14)`` for PyTorch 2.9, ``(8, 8)`` for
    PyTorch 2.8 (default: the current ``(8, 20)``, read by 2.13 and later); the release itself
    (``"2.9"``, ``"2.8"``, ``"2.13"``) is accepted too. The document then
    uses only what that release knows (a :class:`SerializeError` names the first thing it
    lacks), and the archive uses the layout that release reads.
    """
    programs, target = argcheck.check_save(programs, f, extra_files, target_schema)  # each mistake in one line
    protocol = check_pickle_protocol(pickle_protocol)
    root = _root_name(f)
    check_name(root)
    opset = default_opset_version(opset_version)
    counters = {p: [0] for p in ("weight_", "tensor_", "custom_obj_", "opaque_obj_")}
    with gc_paused(), ArchiveWriter(f) as writer:
        for name, ep in programs.items():
            _save_program(writer, root, name, ep, opset, counters, target, protocol)
        for fname, content in (extra_files or {}).items():
            if not isinstance(fname, str):
                raise SerializeError(f"extra file name {fname!r} must be a string")
            data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
            writer.add(f"{root}/extra/{check_name(fname)}", data)
        writer.add(f"{root}/archive_format", ARCHIVE_FORMAT.encode())
        writer.add(f"{root}/archive_version", ARCHIVE_VERSION.encode())
        writer.add(f"{root}/.data/version", b"6\n")
        writer.add(f"{root}/byteorder", b"little")
        writer.add_serialization_id(root)  # PyTorch's writer ends every archive with it
    if hasattr(f, "seek") and not isinstance(f, (str, os.PathLike)):
        try:
            f.seek(0)
        except (OSError, ValueError):
            pass


def _document_bytes(document: schema.ExportedProgram, target: tuple[int, int]) -> bytes:
    if target == schema.SCHEMA_VERSION:
        data = codec.to_json_bytes(document)
        if _MAY_GAP.search(data):
            gap = pytorch_reader_gap(json.loads(data))
            if gap:
                warnings.warn(f"pt2serde reads this archive back, but torch.export.load cannot: {gap}", stacklevel=4)
        return data
    raw = codec.to_dict(document)
    downgrade(raw, target)
    return json.dumps(raw, allow_nan=False).encode("utf-8")


def _save_program(writer, root, name, ep, opset, counters, target, protocol) -> None:
    from .samples import dumps_sample_inputs

    program = ExportedProgramSerializer(opset).serialize_document(ep)
    document = _document_bytes(program.document, target)  # may refuse: before any record is written
    constants = dict(program.custom_objs)
    constants.update(ep.constants)
    state = dict(ep.state_dict)
    # what the target's readers lack (releases.RELEASES): raw records (2.8), raw non-floating Parameters (2.9)
    readers = [r for r in RELEASES if r.schema == target]
    reads_raw = all("raw" in r.pt2_storages for r in readers)
    whole_weights = not reads_raw or (not all(r.raw_int_params for r in readers) and any(
        isinstance(t, torch.nn.Parameter) and not (t.is_floating_point() or t.is_complex()) for t in state.values()
    ))
    if whole_weights:
        whole = f"the state dict of program {name!r} (one torch.save record)"
        with writing(whole), writer.stream(f"{root}/{WEIGHTS_DIR}{name}.pt") as out:
            torch.save(state, out, pickle_protocol=protocol)
    else:
        plan = _StoragePlan()
        weights = _payload_config(state, WEIGHTS_DIR, "weight_", writer, root, plan, counters, False, protocol)
        writer.add(f"{root}/{WEIGHTS_DIR}{name}_weights_config.json", json.dumps(weights).encode("utf-8"))
    if not reads_raw:
        whole = f"the constants of program {name!r} (one torch.save record)"
        with writing(whole), writer.stream(f"{root}/{CONSTANTS_DIR}{name}.pt") as out:
            torch.save(constants, out, pickle_protocol=protocol)
    else:
        plan = _StoragePlan() if whole_weights else plan
        consts = _payload_config(constants, CONSTANTS_DIR, "tensor_", writer, root, plan, counters, True, protocol)
        writer.add(f"{root}/{CONSTANTS_DIR}{name}_constants_config.json", json.dumps(consts).encode("utf-8"))
    writer.add(f"{root}/models/{name}.json", document)
    writer.add(f"{root}/data/sample_inputs/{name}.pt", dumps_sample_inputs(ep.example_inputs, protocol))


# ================================================================================ load


class _Archive:
    """A program archive opened for ``load``: a thin bridge over the checked, torch-free model
    of the archive (:class:`contents.Pt2Archive`: layout, root folder, marker records, record
    names, size caps, payload configs). The model's first problem is raised here, where
    ``validate`` lists all of them; this class adds only the torch storages that tensors view.
    Record names given to its methods are full names (as the model gives them)."""

    def __init__(self, f, use_mmap: bool | None) -> None:
        if isinstance(f, (bytes, bytearray, memoryview)):
            f = memoryview(f).toreadonly()  # the caller's buffer: tensors get their own copies
        self.reader = filekind.open_reader(f, use_mmap, opener=ArchiveReader)  # says what a wrong file is
        try:
            self.model = contents.Pt2Archive(self.reader)
            problem.first_error(self.model.container_problems())
        except SerializeError:
            self.reader.close()
            raise
        self.layout, self.root = self.model.layout, self.model.root
        # one storage per record for the whole archive: programs that name the same record share
        # it (as they do when a path is mapped) instead of each taking a copy
        self.storages = _Storages(self)

    @staticmethod
    def where(name: str) -> str:
        return f"record {name}"

    def optional(self, name: str) -> memoryview | None:
        return self.reader.view(name) if name in self.reader else None

    def require(self, name: str) -> memoryview:
        view = self.optional(name)
        if view is None:
            raise SerializeError(f"{self.where(name)} not found in the archive", record=name)
        return view

    def models(self) -> list[str]:
        return self.model.models()

    def extra_files(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for rel, _ in self.model.extra_files():
            data = self.reader.read(self.model.extra_record(rel))
            try:
                out[rel] = data.decode("utf-8")
            except UnicodeDecodeError:
                out[rel] = data
        return out


def _config(archive: _Archive, record: str, allow_pickle: bool = False) -> list[tensor_entries.TensorEntry]:
    """The entries of a raw payload config (full record name), as the model reads them; raises
    the first problem that blocks loading (an entry stored as a pickle, unless ``allow_pickle``)."""
    folder = "constants" if archive.model.rel(record).startswith(CONSTANTS_DIR) else "weights"
    problems = archive.model.crc_problems(record)
    entries = tensor_entries.payload_entries(archive.model, folder, record, problems)
    for p in problems:
        if p.blocks_load(allow_pickle):
            raise p.error()
    return entries


class _Storages:
    """One torch storage per archive record, viewing the mapped archive (no copy)."""

    def __init__(self, archive: _Archive) -> None:
        self.archive = weakref.proxy(archive)  # not a cycle: the load's archive is freed on return, not by the collector
        self.cache: dict[str, torch.UntypedStorage] = {}

    def get(self, name: str) -> torch.UntypedStorage:
        storage = self.cache.get(name)
        if storage is None:
            view = self.archive.require(name)
            entry = self.archive.reader.entry(name)
            if view.nbytes and (entry.method != 0 or view.readonly):
                view = memoryview(bytearray(view))  # inflated or read-only: own copy
            storage = tensors.storage_from_buffer(view)  # copied if misaligned (odd record offset)
            self.cache[name] = storage
        return storage


def _tensor_entries(archive: _Archive, folder: str, entries: list[tensor_entries.TensorEntry], storages: _Storages,
                    allow_pickle: bool, fake_tensor: Callable | None) -> dict[str, Any]:
    """Tensors, torchbind objects (and, with ``allow_pickle``, unpickled objects) of entries the model
    has checked (:func:`_config`): record names, geometry against the records, the zero-fill allowance."""
    out: dict[str, Any] = {}
    for e in entries:
        meta = e.meta
        where = archive.where(e.own_record or e.record)
        if e.recipe is not None and not allow_pickle:  # an opaque object read without unpickling
            out[e.name] = opaque.rebuild(e.recipe, where=where, record=e.record)
            continue
        if e.safe_reader == "torchbind":  # the model's walk accepted it: rebuilt by bridge/torchbind
            out[e.name] = torchbind.load_torchbind(archive.require(e.record), what=where, record=e.record)
            continue
        if e.kind != "tensor":
            if not allow_pickle:  # _config has refused already; kept next to the unpickling
                raise SerializeError(f"{where}: entry {e.name!r} is stored as a pickle; pass allow_pickle=True "
                                     "if you trust this archive", record=e.own_record or e.record)
            out[e.name] = _unpickle_record(archive, e.record, meta.path_name)  # allow_pickle=True only
            continue
        tm = meta.tensor_meta
        device = tables.device_from_wire(tm.device)
        if device.type == "meta":
            out[e.name] = tensors.meta_tensor(tm, meta.is_param)
            continue
        storage = storages.get(e.record)
        try:  # the geometry check (tensors.check_view_bounds) starts its message with `where`
            if storage.nbytes() == 0:  # PyTorch writes fake (data-less) tensors as empty records, read as zeros
                storage = _zero_storage(tm, where)
            view = tensors.view_from_buffer(storage, tm, where)
        except SerializeError as err:
            raise err.wrapped(str(err), record=e.own_record or e.record) from None
        out[e.name] = tensors.finish_tensor(view, tm, meta.is_param)
    return out


def _zero_storage(tm: schema.TensorMeta, where: str) -> torch.UntypedStorage:
    """Zeros for an empty record; the model has counted them against the archive's allowance
    (:meth:`contents.Pt2Archive.zero_fill_problem`)."""
    sizes, strides, offset = tensors.check_view_bounds(tm, 1 << 62, where)
    itemsize = tables.dtype_from_wire(tm.dtype).itemsize
    need = 0 if 0 in sizes else extent.span_bytes(sizes, strides, offset, itemsize)
    return torch.zeros(need, dtype=torch.uint8).untyped_storage()


def _unpickle_record(archive: _Archive, name: str, path: str) -> Any:
    try:
        return _unpickle(archive.reader.read(name), path)
    except SerializeError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the unpickler raised, with the record named
        raise SerializeError(f"{archive.where(name)}: unpickling failed: {type(e).__name__}: {e}",
                             record=name) from None


def _unpickle(data: bytes, path: str) -> Any:
    """Unpickle a record (runs code from the file). Reached only through ``_unpickle_record``,
    whose two callers raise SerializeError first unless the caller passed allow_pickle=True."""
    if path.startswith("custom_obj_"):
        return torch._C._pickle_load_obj(data)  # allow_pickle=True only: callers refuse otherwise
    if path.startswith("opaque_obj_"):
        return pickle.loads(data)  # allow_pickle=True only: callers refuse otherwise
    return torch.load(io.BytesIO(data), weights_only=False)  # allow_pickle=True only: callers refuse otherwise


def _torch_save_record(archive: _Archive, rel: str, data: memoryview, fake_tensor, allow_pickle: bool,
                       holds: str) -> Any:
    """A torch.save record, read by the safe reader; only with ``allow_pickle`` by unpickling."""
    try:
        return load_torch_save(data, what=archive.where(rel), record=rel, fake_tensor=fake_tensor)
    except SerializeError as e:
        if not allow_pickle:
            raise e.wrapped(
                f"{e}; {holds} objects that only unpickling (which can run code from the file) could "
                "rebuild. Pass allow_pickle=True if you trust this archive."
            ) from None
    return _unpickle_record(archive, rel, "torch_save")  # allow_pickle=True only


def _legacy_dict(archive: _Archive, rel: str, fake_tensor, allow_pickle: bool = False) -> dict:
    """A whole state dict or constants dict stored as one torch.save record (PyTorch 2.5 - 2.8)."""
    value = _torch_save_record(archive, rel, archive.require(rel), fake_tensor, allow_pickle, "this record holds")
    if not isinstance(value, dict):
        raise SerializeError(f"{archive.where(rel)}: expected a dict of tensors, got {type(value).__name__}",
                             record=rel)
    return dict(value)


def _load_program(archive: _Archive, name: str, expected_opset_version, allow_pickle: bool) -> ExportedProgram:
    records = archive.model.program(name)  # the model's records of this program
    doc_rel = records.document_record
    data = records.document_view()  # over the size cap: the reader's error names the record
    problem.first_error(archive.model.crc_problems(doc_rel, data))
    try:
        raw, document = records.read_document(data)
        problem.first_error(archive.model.version_problems(raw))  # the plain zip's `version` record
        document = records.decode(raw) if document is None else document
    except SerializeError as e:  # named after the document's record, unless it names a record already
        raise e if e.record is not None else e.wrapped(f"{archive.where(doc_rel)}: {e}", record=doc_rel) from None
    problem.first_error(records.sample_problems())
    storages = archive.storages
    read: dict[str, dict] = {}

    def payload(kind: str, folder: str):
        def build(fake_tensor):
            read[kind] = values = _payload(kind, folder, fake_tensor)
            if len(read) == 2:  # both folders read: the signature against them (as validate checks it)
                _check_signature_payloads(records, document, read)
            return values

        return build

    def _payload(kind: str, folder: str, fake_tensor) -> dict:
        fmt = records.storage_format(kind)
        if fmt == "torch_save":
            return _legacy_dict(archive, records.config_record(kind), fake_tensor, allow_pickle)
        if fmt is None and archive.layout == "legacy":  # the plain zip stores no record for an empty dict
            return {}
        if fmt is None:  # the model's problem: the program has no config
            problems: list[problem.Problem] = []
            records.entries(kind, problems)
            problem.first_error(problems)
        config = _config(archive, records.config_record(kind), allow_pickle)
        return _tensor_entries(archive, folder, config, storages, allow_pickle, fake_tensor)

    state_dict = payload("weights", WEIGHTS_DIR)
    constants = payload("constants", CONSTANTS_DIR)

    def example_inputs(fake_tensor):
        rel = records.sample_record
        data = archive.optional(rel)
        if data is None or data.nbytes == 0:
            return None
        value = _torch_save_record(archive, rel, data, fake_tensor, allow_pickle, "the example inputs hold")
        if not (type(value) is tuple and len(value) == 2 and isinstance(value[0], tuple)
                and isinstance(value[1], dict) and all(type(k) is str for k in value[1])):
            # module() binds them as (*args, **kwargs): anything else would fail there
            shown = type(value).__name__ if type(value) is not tuple else \
                f"({', '.join(type(v).__name__ for v in value[:3])})"
            warnings.warn(f"example inputs not loaded: {archive.where(rel)} holds a {shown}, "
                          "not a tuple (args, kwargs) with string keyword names", stacklevel=4)
            return None
        return value

    try:
        return ExportedProgramDeserializer(expected_opset_version).deserialize(
            document, state_dict, constants, example_inputs, allow_pickle=allow_pickle
        )
    except SerializeError as e:  # named after the program, unless it names a record already
        raise e if e.record is not None else e.wrapped(
            f"program {name!r} ({archive.where(doc_rel)}): {e}", record=doc_rel) from None


def _check_signature_payloads(records: contents.ProgramRecords, document: schema.ExportedProgram,
                              read: dict[str, dict]) -> None:
    """The model's rule (:func:`tensor_entries.signature_problems`) on the values ``load`` read."""
    def described(value: Any):
        if not isinstance(value, torch.Tensor):
            return None
        sizes = [s if isinstance(s, int) else str(s) for s in value.shape]
        return str(value.dtype).removeprefix("torch."), sizes, records.storage_format(folder) == "raw"

    stored = {}
    for folder in ("weights", "constants"):
        stored[folder] = {name: described(v) for name, v in read[folder].items()}
    configs = {f: records.config_record(f) for f in ("weights", "constants")}
    problem.first_error(tensor_entries.signature_problems(document, stored, configs))


def load_all(
    f,
    *,
    extra_files: dict[str, Any] | None = None,
    expected_opset_version: dict[str, int] | None = None,
    mmap: bool | None = None,
    allow_pickle: bool = False,
) -> dict[str, ExportedProgram]:
    """Every program in the archive, by name (see :func:`load` for the options)."""
    argcheck.check_load(f, "model", extra_files, "load_all")
    with gc_paused():
        archive = _Archive(f, mmap)
        names = archive.models()  # at least one: an archive without a program is a container problem
        programs = {n: _load_program(archive, n, expected_opset_version, allow_pickle) for n in sorted(names)}
        if extra_files is not None:
            extra_files.update(archive.extra_files())
        archive.reader.close()
        return programs


def load(
    f,
    *,
    name: str = "model",
    extra_files: dict[str, Any] | None = None,
    expected_opset_version: dict[str, int] | None = None,
    mmap: bool | None = None,
    allow_pickle: bool = False,
) -> ExportedProgram:
    """Read one program from a PT2 archive (a path or a readable binary file object).

    Tensors view a copy-on-write mapping of the file: loading costs almost no memory and
    writing to a loaded tensor never changes the file. The mapping survives the file
    changing: a read lease makes anyone who opens the file for writing or truncates it
    (``torch.export.save`` over it, another process) wait until the mapping has been copied
    into private memory (one copy, only then); renaming over it (``pt2serde.save``) or
    deleting it needs no copy. ``torch.export.save``/``torch.save`` to that path from the main
    thread stops once with "Interrupted system call" while the copy is made, leaving the file
    untouched: run it again. Not guaranteed: the same from a worker thread of this process
    (use ``pt2serde.save`` there), a forked child.

    ``mmap``: ``None`` (default) maps where a lease can be taken (Linux, the file's owner,
    a local file system, nobody writing it) and reads the file into memory otherwise;
    ``False`` always reads; ``True`` also maps without a lease, unprotected: the file must
    then not be truncated or rewritten in place while the program lives (SIGBUS or changed
    values). SECURITY.md has the details.

    ``extra_files``, if given, is filled with every stored extra file. Nothing is unpickled
    with code execution unless ``allow_pickle=True``.
    """
    argcheck.check_load(f, name, extra_files)
    with gc_paused():
        archive = _Archive(f, mmap)
        names = archive.models()
        if name not in names:
            raise SerializeError(f"program {name!r} is not in the archive; it holds {sorted(names) or 'no program'}")
        program = _load_program(archive, name, expected_opset_version, allow_pickle)
        if extra_files is not None:
            extra_files.update(archive.extra_files())
        archive.reader.close()
        return program
