"""SerializeError's typed fields: the context a message names is also kept as data
(``record``, ``path``, ``node``, ``problem``, ``offset``, ``feature``), set where the error is
raised, so no caller takes the message apart; the message itself is unchanged."""

from __future__ import annotations

import io
import json
import pickle

import pytest
import torch

import pt2serde
from pt2serde.errors import NotAZipError, SerializeError, WireError
from pt2serde.format import codec, safepickle, upgrade
from pt2serde.format.archive import ArchiveReader
from pt2serde.format.archive_write import ArchiveWriter

DOC = "archive/models/model.json"
WEIGHT = "archive/data/weights/weight_0"


class _Add(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3))

    def forward(self, x):
        return x + self.w


@pytest.fixture(scope="module")
def base() -> bytes:
    buf = io.BytesIO()
    pt2serde.save(torch.export.export(_Add(), (torch.ones(3),)), buf)
    return buf.getvalue()


def _rewrite(data: bytes, replace: dict[str, bytes]) -> bytes:
    reader = ArchiveReader(data)
    out = io.BytesIO()
    with ArchiveWriter(out) as writer:
        for name in reader.names():
            writer.add(name, replace.get(name, reader.view(name)))
    return out.getvalue()


def _load_error(data: bytes) -> SerializeError:
    with pytest.raises(SerializeError) as info:
        pt2serde.load(io.BytesIO(data))
    return info.value


def _with_document(base: bytes, change) -> bytes:
    doc = json.loads(ArchiveReader(base).read(DOC))
    change(doc)
    return _rewrite(base, {DOC: json.dumps(doc).encode()})


def test_a_bad_record_is_named_by_its_field(base):
    e = _load_error(_rewrite(base, {WEIGHT: b"xx"}))
    assert str(e) == f"record {WEIGHT}: sizes [3], strides [1] and offset 0 need 12 bytes but the storage holds 2"
    assert e.record == WEIGHT and e.path is None
    assert e.problem == "sizes [3], strides [1] and offset 0 need 12 bytes but the storage holds 2"


def test_a_document_that_is_not_json_names_its_record(base):
    e = _load_error(_rewrite(base, {DOC: b"{"}))
    assert str(e) == (f"record {DOC}: ExportedProgram document is not valid JSON: Expecting property name "
                      "enclosed in double quotes (line 1, column 2)")
    assert e.record == DOC and e.path is None


def test_a_decode_error_keeps_record_path_and_problem(base):
    def change(doc):
        doc["graph_module"]["graph"]["nodes"][0]["inputs"][0]["arg"] = {"as_int": "x"}

    e = _load_error(_with_document(base, change))
    path = "$.graph_module.graph.nodes[0].inputs[0].arg.as_int"
    assert str(e) == f"record {DOC}: Expected `int`, got `str` - at `{path}`"
    assert (e.record, e.path, e.problem) == (DOC, path, "Expected `int`, got `str`")
    back = pickle.loads(pickle.dumps(e))  # across processes: the text and the fields
    assert type(back) is SerializeError and str(back) == str(e)
    assert (back.record, back.path, back.problem) == (DOC, path, "Expected `int`, got `str`")


def test_a_failing_node_is_named_by_its_field(base):
    def change(doc):
        node = doc["graph_module"]["graph"]["nodes"][0]
        node["target"] = "torch.ops.aten.no_such_operator.default"

    e = _load_error(_with_document(base, change))
    assert str(e).startswith(f"program 'model' (record {DOC}): Failed deserializing node ")
    assert e.record == DOC
    name = json.loads(ArchiveReader(base).read(DOC))["graph_module"]["graph"]["nodes"][0]["outputs"][0]
    assert e.node is not None and f"Failed deserializing node {e.node} " in str(e)
    assert name == {"as_tensor": {"name": e.node}}


def test_wire_error_fields_and_pickling():
    with pytest.raises(WireError) as info:
        codec.from_dict(pt2serde.schema.TensorMeta, {"dtype": "x"})
    e = info.value
    assert str(e) == "Expected `int` (ScalarType), got `str` - at `$.dtype`"
    assert (e.path, e.problem, e.record, e.node) == ("$.dtype", "Expected `int` (ScalarType), got `str`", None, None)
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is SerializeError and str(back) == str(e)
    assert (back.path, back.problem) == (e.path, e.problem)


def test_a_pickle_error_keeps_its_byte_offset():
    with pytest.raises(SerializeError) as info:
        safepickle.load(b"\x80\x02cos\nsystem\n.", globals={}, where="x.pkl")
    e = info.value
    assert str(e) == "GLOBAL os.system is not an allowed global at byte 2 of x.pkl"
    assert (e.offset, e.problem) == (2, "GLOBAL os.system is not an allowed global")


def test_not_a_zip_is_its_own_type():
    with pytest.raises(NotAZipError, match=r"^not a zip archive: 0 bytes is too short$"):
        ArchiveReader(b"")
    with pytest.raises(SerializeError) as info:  # load says what the bytes are instead
        pt2serde.load(io.BytesIO(b"hello"))
    assert type(info.value) is SerializeError
    assert str(info.value).startswith("the data is a text file (starting 'hello'), not a PT2 archive")


def test_a_refused_downgrade_names_the_feature():
    raw = {"schema_version": {"major": 8, "minor": 20}, "x": [{"as_complex": {"real": 1.0, "imag": 0.0}}]}
    with pytest.raises(SerializeError) as info:
        upgrade.downgrade(raw, (8, 8))
    e = info.value
    assert str(e) == ("argument kind `as_complex` (added after schema 8.8) is not readable by PyTorch 2.8 "
                      "(schema 8.8): the program cannot be written for that release - at `$.x[0].as_complex`")
    assert (e.feature, e.path) == ("argument kind `as_complex` (added after schema 8.8)", "$.x[0].as_complex")


def test_plain_errors_have_empty_fields():
    e = SerializeError("something")
    assert (e.record, e.path, e.node, e.offset, e.feature, e.problem) == (None, None, None, None, None, "something")
    back = pickle.loads(pickle.dumps(SerializeError("m", record="r", path="$.a", problem="p")))
    assert (str(back), back.record, back.path, back.problem) == ("m", "r", "$.a", "p")
