"""JSON expansion and tensor arithmetic (issue 10, findings 10 and 12a/12c/12d).

* nested ``[]`` / ``{}`` spending the archive's inflation allowance: refused by the JSON
  expansion budget (``codec.check_json_expansion``) before anything is parsed;
* a meta-device weight whose strides reach past 2**63 (it used to load with a negative
  storage ``nbytes``), and one whose size in bytes does;
* a legal zero-stride ``[2**40]`` weight over 4 bytes: refused (an expanded tensor stands for
  at most ``extent.MAX_OVERLAPPING_BYTES``), while a small expanded weight loads, zero stride
  kept (on the meta device the same ``[2**40]`` loads: ``tests/format/test_tensor_extents.py``);
* an integer of 5000 digits in the document (the JSON reader refuses it);
* 5000 graph outputs naming undefined values of 300 characters: ``validate`` lists at most
  ``schema_decoder.MAX_PROBLEMS`` problems per program, names shortened (red team F4);
* a tensor value of dtype ``UNKNOWN``, device index -1, 128 or 2**63 (refused by the format
  layer, ``$.path`` named, by load and validate alike) and of device type ``cp_`` (a warning:
  another process may register that backend) (red team F5), or ``hpu`` or ``privateuseone``
  without an index (the same: torch asks the backend's module for the index); a device type with
  an index written into it (``cpu:200``, on a graph value and a buffer: refused);
* an integer or bool graph value, or buffer, that requires gradients (torch's ``requires_grad_``
  raises ``RuntimeError``; ``validate`` said valid).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

from everywhere import MODEL, Case, base_archive, doc_case, document_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import test_hostile_archives as H  # noqa: E402
from pt2serde.format.archive import ArchiveReader  # noqa: E402

META = {"type": "meta", "index": None}


def _deflated_document(extra: bytes, size: int = 60 << 20) -> Callable:
    """The base archive with ``model.json`` deflated and padded, inside an ignored field, with
    ``extra`` repeated to about ``size`` bytes (a few hundred KB in the file)."""

    def build(marker: str) -> bytes:
        reader = ArchiveReader(base_archive())
        root = reader.root_folder()
        doc = reader.read(f"{root}/{MODEL}")
        assert doc.endswith(b"}")
        padded = doc[:-1] + b', "pad": [' + extra * (size // (len(extra) + 1)) + extra[:-1] + b"]}"
        records = [(n.encode(), padded if n.endswith(MODEL) else reader.read(n)) for n in reader.names()]
        stored = H.raw_zip([r for r in records if not r[0].endswith(MODEL.encode())])
        packed = H.raw_zip([r for r in records if r[0].endswith(MODEL.encode())], method=8)
        return H._merge(stored, packed)

    return build


def _tensor_values(doc: dict, name: str, **fields) -> None:
    """Give the graph's tensor ``name`` the stored geometry (so the document agrees with the
    weight, and the only question left is the weight itself)."""
    doc["graph_module"]["graph"]["tensor_values"][name].update(fields)


def _weight_case(name: str, fqn: str, graph_name: str, refused: str | None, **meta) -> Case:
    def build(marker: str) -> bytes:
        data = H.with_meta(base_archive(), fqn, **meta)
        doc = document_of(data)
        _tensor_values(doc, graph_name, **{k: v for k, v in meta.items() if k in ("sizes", "strides", "device")})
        return H.rewrite(data, replace={MODEL: json.dumps(doc).encode()})

    return Case(name, build, refused)


def _giant_int(digits: int) -> Callable:
    """An integer of ``digits`` digits where an int belongs: the first size of the input ``x``
    (written as text: ``json.dumps`` refuses such an int)."""

    def build(marker: str) -> bytes:
        data = base_archive()
        doc = document_of(data)
        doc["graph_module"]["graph"]["tensor_values"]["x"]["sizes"][0] = {"as_int": 123456789123456789}
        text = json.dumps(doc).replace("123456789123456789", "9" * digits)
        return H.rewrite(data, replace={MODEL: text.encode()})

    return build

def _undefined_outputs(doc: dict, marker: str) -> None:
    doc["graph_module"]["graph"]["outputs"] = [{"as_tensor": {"name": f"v{i:0299d}"}} for i in range(5000)]


def _meta_of_x(**fields) -> Callable[[dict, str], None]:
    def mutate(doc: dict, marker: str) -> None:
        meta = doc["graph_module"]["graph"]["tensor_values"]["x"]
        for key, value in fields.items():
            meta[key] = {**meta[key], **value} if isinstance(value, dict) else value

    return mutate


_X = r" - at `\$\.graph_module\.graph\.tensor_values\.x\."


def _custom_metadata(where: str) -> Callable[[dict, str], None]:
    """Metadata kept as JSON text (json.loads'd by the loader) naming a key twice (red team)."""

    def mutate(doc: dict, marker: str) -> None:
        text = '{"a": 1, "a": 2}'
        if where == "node":
            doc["graph_module"]["graph"]["nodes"][0]["metadata"]["custom"] = text
        else:
            doc["graph_module"]["metadata"]["custom"] = text

    return mutate


CASES = [
    Case("JSON expansion: 60 MiB of nested [] deflated", _deflated_document(b"[[[[]]]],"),
         r"ExportedProgram document would expand to about \d+ bytes of Python objects, over the limit"),
    Case("JSON expansion: 60 MiB of {} deflated", _deflated_document(b"{},"),
         r"ExportedProgram document would expand to about \d+ bytes of Python objects, over the limit"),
    _weight_case("meta weight with strides near 2**63", "w", "p_w",
                 r"strides \[4611686018427387904, 4611686018427387903\] and storage offset 0 reach byte \d+, past 2\*\*63",
                 device=META, strides=H.ints(2**62, 2**62 - 1)),
    _weight_case("meta weight of 2**64 bytes", "w", "p_w",
                 r"sizes \[2147483648, 2147483648\] of 4-byte elements hold 18446744073709551616 bytes, past 2\*\*63",
                 device=META, sizes=H.ints(2**31, 2**31), strides=H.ints(0, 0)),
    _weight_case("zero-stride [2**40] weight over 4 bytes", "b", "b_b",
                 r"sizes \[1099511627776\] and strides \[0\] overlap in storage: 4 stored bytes stand for "
                 r"4398046511104 bytes of tensor, over the limit of 67108864",
                 sizes=H.ints(2**40), strides=H.ints(0)),
    _weight_case("zero-stride [1000] weight loads", "b", "b_b", None, sizes=H.ints(1000), strides=H.ints(0)),
    Case("400-digit integer as a tensor size", _giant_int(400),
         r"size out of int64 9{400} - at `\$\.graph_module\.graph\.tensor_values\.x\.sizes\[0\]`"),
    Case("5000-digit integer in the document", _giant_int(5000),
         r"ExportedProgram document cannot be read: Exceeds the limit \(4300 digits\)"),
    doc_case("5000 graph outputs naming undefined 300-character values", _undefined_outputs,
             r"value 'v0{299}'"),
    doc_case("tensor value of dtype UNKNOWN", _meta_of_x(dtype=0), r"dtype 0 \(UNKNOWN\) is not a tensor dtype" + _X + "dtype`"),
    doc_case("device index -1", _meta_of_x(device={"index": -1}), r"device index -1 is not in \[0, 127\]" + _X),
    doc_case("device index 128 (torch would wrap it to -128)", _meta_of_x(device={"index": 128}),
             r"device index 128 is not in \[0, 127\]" + _X + r"device\.index`"),
    doc_case("device index 2**63", _meta_of_x(device={"index": 2**63}), r"device index 9223372036854775808 is not in \[0, 127\]" + _X),
    doc_case("device type cp_", _meta_of_x(device={"type": "cp_"}), r"Invalid device 'cp_'", validate="environment"),
    # an index written into the type: torch.device("cpu:200") wraps it to cpu:-56, PyTorch's reader refuses any
    doc_case("device type cpu:200 (an index in the type)", _meta_of_x(device={"type": "cpu:200", "index": None}),
             r"device type 'cpu:200' holds ':': the type is a name \(cpu, cuda, \.\.\.\) and the index is the "
             r"device's own field" + _X + r"device\.type`"),
    _weight_case("buffer on device type cpu:0 with index 0", "b", "b_b", r"device type 'cpu:0' holds ':'",
                 device={"type": "cpu:0", "index": 0}),
    # fake tensors ask torch.hpu / torch.privateuseone for the missing index: a registered backend's module
    *(doc_case(f"device type {t} without an index", _meta_of_x(device={"type": t, "index": None}),
               rf"device type '{t}' without an index: loading needs the {t} backend registered", validate="environment")
      for t in ("hpu", "privateuseone")),
    # torch raises RuntimeError in requires_grad_ on an integer tensor: validate said valid, load failed
    doc_case("int64 graph value that requires gradients", _meta_of_x(dtype=5, requires_grad=True),
             r"a torch\.int64 tensor cannot require gradients \(requires_grad is true\)" + _X + "requires_grad`"),
    doc_case("bool graph value that requires gradients", _meta_of_x(dtype=12, requires_grad=True),
             r"a torch\.bool tensor cannot require gradients \(requires_grad is true\)" + _X + "requires_grad`"),
    _weight_case("int32 buffer that requires gradients", "b", "b_b",
                 r"a torch\.int32 tensor cannot require gradients \(requires_grad is true\)", dtype=4, requires_grad=True),
    doc_case("duplicate key in a node's custom metadata", _custom_metadata("node"),
             r"custom metadata is not valid JSON: duplicate key 'a' in one object - at "
             r"`\$\.graph_module\.graph\.nodes\[0\]\.metadata\.custom`"),
    doc_case("duplicate key in the graph module's custom metadata", _custom_metadata("graph_module"),
             r"custom metadata is not valid JSON: duplicate key 'a' in one object - at `\$\.graph_module\.metadata\.custom`"),
]
