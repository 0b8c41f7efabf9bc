"""The entries of a program's state dict and constants, and the rules they must follow.

A :class:`TensorEntry` is one stored tensor or object as the archive describes it (name,
dtype, sizes, strides, offset, the record that holds the storage), read without torch and
without running anything from the file. :func:`payload_entries` reads the raw payload
configs (``data/weights/<name>_weights_config.json``, PyTorch 2.9+ and pt2serde), which map
each FQN to a ``schema.PayloadMeta``; the storage is ``data/weights/<path_name>`` (or the
record named by the entry's :data:`SHARES_KEY` key). The rules for an entry's geometry
(:func:`tensor_problems`) and for the signature against the stored entries
(:func:`signature_problems`) live here once: ``load`` raises the first problem they find,
``validate`` lists all of them.

The ``archive`` these functions read from is a :class:`pt2serde.format.contents.Pt2Archive`,
which builds on this module (so it is not imported here, not even for type checkers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import codec, extent

from .. import schema
from ..errors import SerializeError
from .opaque_pickle import MAX_RECORD_BYTES, OpaqueRecipe, read_opaque
from .problem import Problem, key_path
from .tables import BY_NAME, DTYPES, device_problem, device_text, grad_problem, sym_text, unknown_device_type
from .torchbind import describe_torchbind
from .torchsave import MAX_DIMS
from .fastcodec import fast_counting_decoder
from .strict_json import loads_json_counted

__all__ = [
    "TensorEntry",
    "payload_entries",
    "signature_problems",
    "tensor_problems",
    "view_problem",
    "SHARES_KEY",
]

#: extra key in a PayloadMeta entry (ignored by PyTorch's reader): the record that holds the
#: whole storage this entry views, when it is another record than its own (aliasing across
#: the weights and constants folders, or across dtypes). Anything but an existing record of
#: those folders is ignored (the entry reads its own record).
SHARES_KEY = "pt2serde_shares"
WEIGHTS_DIR = "data/weights/"
CONSTANTS_DIR = "data/constants/"
MAX_CONFIG_BYTES = 256 << 20
MAX_ZERO_FILL = 64 << 20  # empty records read as zeros, up to this much more than the file, for the archive in all


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
    recipe: OpaqueRecipe | None = None  # an opaque object the safe reader read (``opaque_pickle``)
    safe_reader: str | None = None  # an object entry the safe reader rebuilds ("torchbind"); else unpickling

    @property
    def needs_pickle(self) -> bool:
        return self.kind != "tensor" and self.recipe is None and self.safe_reader is None

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


def payload_entries(archive, folder: str, record: str, problems: list[Problem]) -> list[TensorEntry]:
    """The entries of a raw payload config (``<name>_weights_config.json`` / ``_constants_config.json``).

    Every problem is appended to ``problems``, in the order of the entries: the config's size
    and JSON, each entry's ``PayloadMeta``, its record name and record, its ``pt2serde_shares``
    link, its tensor metadata against its storage (:func:`tensor_problems`), and, as a
    ``needs_pickle`` warning, an entry that only unpickling can rebuild. ``load`` raises the
    first that blocks it; each entry it builds from carries the decoded ``meta`` and the record
    that holds its storage.
    """
    metas: dict[str, schema.PayloadMeta] | None = None  # every entry, decoded in one pass when that works
    try:
        view = archive.reader.view(record, max_size=MAX_CONFIG_BYTES)
        try:
            counted = loads_json_counted(view, fast_counting_decoder(schema.PayloadConfig),
                                         max_bytes=MAX_CONFIG_BYTES)
        except SerializeError:  # over a cap, not UTF-8: the careful parse below says it with the record
            counted = None
        if counted is not None:
            raw, metas = counted[0], counted[1].config
        else:  # the careful parse names what is wrong (or the duplicate key)
            raw = codec.loads_json(view, max_bytes=MAX_CONFIG_BYTES, record=record)
    except SerializeError as e:
        problems.append(Problem.from_error(e, record, record))
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
    prefix = archive.name(WEIGHTS_DIR if folder == "weights" else CONSTANTS_DIR)  # + path_name: the record
    records = archive.reader.entries  # record name -> its directory entry
    out: list[TensorEntry] = []
    for fqn, item in config.items():
        where = f"$.config{key_path(fqn)}"
        if metas is not None:
            meta = metas[fqn]
        else:
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
        own = f"{prefix}{path}"
        kind = "tensor"
        if path.startswith(("custom_obj_", "opaque_obj_")):
            if folder != "constants":
                problems.append(Problem(f"weight {fqn!r} names the object record {path!r}: weights are tensors, "
                                        "only constants hold objects", f"{where}.path_name", record))
                continue
            kind = "custom_obj" if path.startswith("custom_obj_") else "opaque_obj"
        elif meta.use_pickle:
            kind = "pickled_tensor"
        entry = TensorEntry(fqn, folder, kind, own, is_param=meta.is_param, meta=meta)
        found = records.get(own)
        if found is None:
            problems.append(Problem(f"entry {fqn!r} names record {path!r}, which is missing",
                                    f"{where}.path_name", record))
            entry.record = None
        else:
            entry.record_size = found.size
        refused = _read_opaque(archive, entry) if kind == "opaque_obj" else ""
        if entry.recipe is not None:  # whether its class is registered is the loading process's matter
            problems.append(Problem(f"record {own} ({fqn!r}) holds an object of class {entry.recipe.class_name}, read "
                                    "without unpickling; load rebuilds it where that class is registered as an "
                                    "opaque type", own, record, level="warning", names_record=True))
        if kind == "custom_obj" and entry.record is not None:  # the rule load and validate share
            try:
                describe_torchbind(archive.reader.view(own), "the record")
                entry.safe_reader = "torchbind"
            except SerializeError as e:
                refused = f" that the safe torchbind reader refuses ({str(e).removeprefix('the record: ')})"
        if entry.needs_pickle:
            problems.append(Problem(f"record {own} ({fqn!r}) is stored as a pickle{refused}; loading it "
                                    "can run code from the file. Pass allow_pickle=True if you trust this archive.",
                                    own, record, level="warning", needs_pickle=True, names_record=True))
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
            entry.sizes = [s.value if s.type == "as_int" else sym_text(s) for s in tm.sizes]
            entry.strides = [s.value if s.type == "as_int" else sym_text(s) for s in tm.strides]
            entry.storage_offset = sym_text(tm.storage_offset)
            entry.requires_grad = tm.requires_grad
            entry.device = device_text(tm.device)
            if kind == "tensor":
                problems.extend(tensor_problems(entry, tm, where, record, archive))
        elif kind == "tensor":
            problems.append(Problem(f"entry {fqn!r} has no tensor metadata", f"{where}.tensor_meta", record))
        out.append(entry)
    return out


def _read_opaque(archive, entry: TensorEntry) -> str:
    """Read an opaque object's record into ``entry.recipe`` without unpickling; why not, if not."""
    if entry.record is None:
        return ""
    try:
        view = archive.reader.view(entry.record, max_size=MAX_RECORD_BYTES)
        entry.recipe = read_opaque(view, where=entry.record)
    except SerializeError as e:
        return f" that the safe reader of opaque objects refuses ({e})"
    return ""


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
                    archive=None) -> list[Problem]:
    """Geometry of a raw tensor entry against its dtype and storage record; an empty record
    counts against the archive's zero-fill allowance (:meth:`Pt2Archive.zero_fill_problem`).
    Problems of the storage itself are reported at the storage record, as ``load`` raises them."""
    out: list[Problem] = []
    P = lambda message, at: Problem(message, at, record)  # noqa: E731
    if tm.dtype not in DTYPES:
        out.append(P(f"dtype {int(tm.dtype)} ({tm.dtype.name}) has no storage format", f"{where}.tensor_meta.dtype"))
        return out
    if (bad_device := device_problem(tm.device)) is not None:
        out.append(P(bad_device[0], f"{where}.tensor_meta.device.{bad_device[1]}"))
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
    if bad := grad_problem(tm.dtype, tm.requires_grad, "parameter" if entry.is_param else "tensor"):
        out.append(P(bad, f"{where}.tensor_meta.requires_grad"))
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
    unknown = unknown_device_type(tm.device)
    if unknown is not None:
        out.append(Problem(unknown, f"{where}.tensor_meta.device", record, level="warning"))
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
