"""inspect, validate and diff never unpickle or execute anything from the file.

The archive built here carries a pickle that runs ``touch MARKER`` when unpickled, in every
place a PT2 archive holds pickles: the sample inputs (a torch.save zip), a custom object,
an opaque object and a ``use_pickle`` tensor. The test first proves that the payload is
live (unpickling it in this process creates the marker), then runs the three commands
and checks that the marker never appears.
"""

from __future__ import annotations

import io
import json
import os
import pickle

import pytest
import torch

import pt2serde
from cli_support import CORPUS, records, rewrite, run_cli
from pt2serde.format.archive_write import ArchiveWriter

CCFG = "data/constants/model_constants_config.json"


class _Boom:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _torch_save_zip(pickled: bytes) -> bytes:
    buf = io.BytesIO()
    with ArchiveWriter(buf) as w:
        w.add("archive/data.pkl", pickled)
        w.add("archive/version", b"3\n")
        w.add("archive/byteorder", b"little")
    return buf.getvalue()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("safety")
    marker = folder / "MARKER"
    ep = torch.export.export(torch.nn.Linear(3, 2), (torch.randn(2, 3),))
    base = str(folder / "base.pt2")
    pt2serde.save(ep, base)

    def build(name: str, command: str) -> str:
        payload = pickle.dumps(_Boom(command), protocol=2)
        config = json.loads(records(base)[CCFG])
        meta = {"dtype": 7, "sizes": [{"as_int": 2}], "requires_grad": False, "device": {"type": "cpu", "index": None},
                "strides": [{"as_int": 1}], "storage_offset": {"as_int": 0}, "layout": 7}
        config["config"].update({
            "obj": {"path_name": "custom_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None},
            "opq": {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None},
            "pk": {"path_name": "tensor_9", "is_param": False, "use_pickle": True, "tensor_meta": meta},
        })
        return rewrite(base, str(folder / name), {
            CCFG: json.dumps(config).encode(),
            "data/sample_inputs/model.pt": _torch_save_zip(payload),
        }, add={
            "data/constants/custom_obj_0": payload,
            "data/constants/opaque_obj_0": payload,
            "data/constants/tensor_9": _torch_save_zip(payload),
        })

    a = build("a.pt2", f"touch {marker}")
    b = build("b.pt2", f"touch {marker} ")
    return marker, a, b


def test_the_payload_is_live(hostile):
    """Without this, the tests below could pass with a payload that does nothing."""
    marker, a, _ = hostile
    recs = records(a)
    pickle.loads(recs["data/constants/opaque_obj_0"])
    assert marker.exists()
    marker.unlink()
    torch.load(io.BytesIO(recs["data/sample_inputs/model.pt"]), weights_only=False)  # PyTorch's fallback path
    assert marker.exists()
    marker.unlink()


def test_inspect_runs_nothing(hostile):
    marker, a, _ = hostile
    proc = run_cli("inspect", "--json", a, cwd=str(marker.parent))
    assert not marker.exists()
    assert proc.returncode == 0, proc.stderr
    (p,) = json.loads(proc.stdout)["programs"]
    # what each pickle would call is read from its opcodes, not by running it
    assert p["needs_allow_pickle"] == [
        {"name": "obj", "kind": "custom_obj", "record": "base/data/constants/custom_obj_0", "globals": ["posix.system"]},
        {"name": "opq", "kind": "opaque_obj", "record": "base/data/constants/opaque_obj_0", "globals": ["posix.system"]},
        {"name": "pk", "kind": "pickled_tensor", "record": "base/data/constants/tensor_9", "globals": ["posix.system"]},
    ]
    si = p["sample_inputs"]
    assert si["summary"] is None
    assert si["note"].startswith("not summarised: reading it would need unpickling (GLOBAL posix.system is not "
                                 "an allowed global at byte ")
    human = run_cli("inspect", a, cwd=str(marker.parent))
    assert not marker.exists()
    assert ("  needs allow_pickle: obj (custom obj, base/data/constants/custom_obj_0); its pickle names posix.system"
            in human.stdout.splitlines())


def test_validate_runs_nothing(hostile):
    marker, a, _ = hostile
    proc = run_cli("validate", "--json", a, cwd=str(marker.parent))
    assert not marker.exists()
    report = json.loads(proc.stdout)
    # load(allow_pickle=False) refuses these records: so does validate, by default
    assert proc.returncode == 1 and report["valid"] is False and report["allow_pickle"] is False
    assert all(p["level"] == "error" for p in report["problems"])
    trusted = run_cli("validate", "--json", "--allow-pickle", a, cwd=str(marker.parent))
    assert not marker.exists()
    report = json.loads(trusted.stdout)
    assert trusted.returncode == 0 and report["valid"] is True  # loadable with allow_pickle=True
    messages = [p["message"] for p in report["problems"]]
    assert all(p["level"] == "warning" for p in report["problems"])
    # the words load says (one rule, one place: contents.Pt2Archive), with what each pickle names
    said = ("is stored as a pickle; loading it can run code from the file. Pass allow_pickle=True if you trust "
            "this archive. Its pickle names posix.system.")
    assert f"record base/data/constants/tensor_9 ('pk') {said}" in messages
    # an opaque object's record goes through the safe reader first (issue 15): it says why it refused
    refused = ("record base/data/constants/opaque_obj_0 ('opq') is stored as a pickle that the safe reader of opaque "
               "objects refuses (posix.system: an opaque object's class is only instantiated as the pickler makes "
               "plain objects (NEWOBJ and a state), never called")
    assert any(m.startswith(refused) and m.endswith(said[len("is stored as a pickle"):]) for m in messages)
    # a torchbind record says why the safe torchbind reader refuses it (issue 15)
    assert ("record base/data/constants/custom_obj_0 ('obj') is stored as a pickle that the safe torchbind reader "
            "refuses (not a zip archive: no end-of-central-directory record); loading it can run code "
            "from the file. Pass allow_pickle=True if you trust this archive. Its pickle names posix.system.") in messages
    assert any(m.startswith("sample inputs cannot be read without unpickling (GLOBAL posix.system") for m in messages)


def test_diff_runs_nothing(hostile):
    marker, a, b = hostile
    proc = run_cli("diff", "--json", a, b, cwd=str(marker.parent))
    assert not marker.exists()
    assert proc.returncode == 1, proc.stderr
    changes = {(c["section"], c["subject"]): c["detail"] for c in json.loads(proc.stdout)["changes"]}
    assert changes == {("constants", "obj"): "stored object bytes differ",
                       ("constants", "opq"): "stored object bytes differ",
                       ("constants", "pk"): "stored object bytes differ"}


def test_plain_zip_runs_nothing(hostile, tmp_path):
    """The plain zip of 2.5-2.7 keeps its state dict, constants and example inputs as torch.save
    pickles: hostile ones are walked and refused, never run, by all three commands."""
    marker = hostile[0]
    payload = _torch_save_zip(pickle.dumps(_Boom(f"touch {marker}"), protocol=2))
    src = os.path.join(CORPUS, "2.7.1", "mlp.pt2")
    path = rewrite(src, str(tmp_path / "legacy.pt2"), {"serialized_state_dict.pt": payload,
                                                       "serialized_constants.pt": payload,
                                                       "serialized_example_inputs.pt": payload})
    cwd = str(marker.parent)
    inspect, validate, diff = (run_cli(*args, cwd=cwd) for args in (
        ["inspect", "--json", path], ["validate", "--json", path], ["diff", "--json", src, path]))
    assert not marker.exists()
    assert inspect.returncode == 1, inspect.stderr  # the weights could not be read: error notes
    report = json.loads(inspect.stdout)
    (p,) = report["programs"]
    assert [(n["level"], n["where"]) for n in p["notes"]] == [("error", "serialized_state_dict.pt"),
                                                             ("error", "serialized_constants.pt")]
    assert all("GLOBAL posix.system is not an allowed global" in n["message"] for n in p["notes"])
    assert p["sample_inputs"]["note"].startswith("not summarised: reading it would need unpickling (GLOBAL posix.system")
    assert report["readers"][-1] == {
        "reader": "pt2serde", "readable": True, "fails_at": None, "where": None,
        "reason": "with allow_pickle=True (serialized_constants.pt, serialized_state_dict.pt, "
                  "serialized_example_inputs.pt only unpickling can load)"}
    assert validate.returncode == 1 and not json.loads(validate.stdout)["valid"]
    assert diff.returncode == 1
    changes = {(c["section"], c["kind"], c["subject"]) for c in json.loads(diff.stdout)["changes"]}
    assert ("weights", "changed", "archive B") in changes  # unreadable entry: the walk's refusal
    assert ("weights", "removed", "0.weight") in changes  # nothing of B's state dict could be described
