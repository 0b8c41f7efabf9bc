"""Common mistakes get one line that says what is wrong and what to do (issue 12).

Each test reproduces a mistake users make with the API or the CLI and asserts the answer:
the exception type (a ``SerializeError``, and ``TypeError``/``ValueError`` for a wrong Python
argument, ``FileNotFoundError`` for a missing folder as ``torch.export.save`` raises), one
line, and the key words that name the problem and the fix. Files are refused before anything
is written; the CLI answers the same files with exit code 2 and the same explanation.
"""

from __future__ import annotations

import io
import json
import os
import re

import pytest
import torch

import pt2serde
from cli_support import edit_json, records, run_batch


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x).relu()


@pytest.fixture(scope="module")
def ep():
    torch.manual_seed(0)
    return torch.export.export(_Net(), (torch.randn(2, 4),))


@pytest.fixture(scope="module")
def saved(ep, tmp_path_factory):
    path = tmp_path_factory.mktemp("mistakes") / "model.pt2"
    pt2serde.save(ep, path)
    return str(path)


def refused(types, pattern: str, fn, *args, **kwargs) -> str:
    """``fn(*args, **kwargs)`` raises every one of ``types`` at once, with a one-line message
    matching ``pattern``; the message."""
    with pytest.raises(pt2serde.SerializeError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    for t in types:
        assert isinstance(info.value, t), (type(info.value).__mro__, message)
    assert "\n" not in message, message
    assert re.search(pattern, message), message
    return message


# ============================================================================= save


def test_save_into_a_folder_that_does_not_exist_names_the_folder(ep, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = refused((FileNotFoundError,), r"^cannot save to no/such/dir/m\.pt2: the folder no/such/dir does not "
                                            r"exist; create it first \(os\.makedirs\('no/such/dir', exist_ok=True\)\)",
                      pt2serde.save, ep, "no/such/dir/m.pt2")
    assert ".tmp" not in message  # not the hidden temporary file the writer would have used
    assert os.listdir(tmp_path) == []
    os.makedirs("no/such/dir")
    pt2serde.save(ep, "no/such/dir/m.pt2")  # the fix the message gives works
    assert os.listdir("no/such/dir") == ["m.pt2"]


def test_save_onto_a_folder_or_under_a_file(ep, tmp_path):
    refused((ValueError,), r"cannot save to .*: it is a folder; pass a file path in it, like '.*model\.pt2'",
            pt2serde.save, ep, tmp_path)
    (tmp_path / "plain").write_text("x")
    refused((FileNotFoundError,), r"cannot save to .*plain/m\.pt2: .*plain is a file, not a folder",
            pt2serde.save, ep, tmp_path / "plain" / "m.pt2")
    assert sorted(os.listdir(tmp_path)) == ["plain"]


def test_save_to_something_that_is_no_file(ep):
    refused((TypeError,), r"save\(\) writes to a path or a writable binary file object, got an int; pass a path like "
                          r"'model\.pt2' or a file opened with open\(path, 'wb'\)", pt2serde.save, ep, 3)
    refused((TypeError,), r"save\(\) needs a binary file object, got a text file \(StringIO\); open it with "
                          r"open\(path, 'wb'\)", pt2serde.save, ep, io.StringIO())
    refused((TypeError,), r"^save\(\) takes the program first and then where to write it, got a str and an "
                          r"ExportedProgram; call pt2serde\.save\(ep, path\)$", pt2serde.save, "m.pt2", ep)


def test_files_opened_the_wrong_way(ep, saved, tmp_path):
    with open(saved, "rb") as f:
        refused((TypeError,), r"^save\(\) needs a file object open for writing, got a BufferedReader opened read-only; "
                              r"open it with open\(path, 'wb'\)$", pt2serde.save, ep, f)
    with open(tmp_path / "w.pt2", "wb") as f:
        refused((TypeError,), r"^load\(\) needs a file object open for reading, got a BufferedWriter opened "
                              r"write-only; open it with open\(path, 'rb'\)$", pt2serde.load, f)


def test_extra_file_values_must_be_text_or_bytes(ep, tmp_path):
    path = tmp_path / "m.pt2"
    refused((TypeError,), r"^extra_files\['a'\] is an int: extra file values must be str or bytes; convert it first",
            pt2serde.save, ep, path, extra_files={"a": 3})
    refused((TypeError,), r"extra_files\['cfg'\] is a dict: extra file values must be str or bytes.*json\.dumps",
            pt2serde.save, ep, path, extra_files={"cfg": {"lr": 0.1}})
    refused((TypeError,), r"extra file name 7 must be a string", pt2serde.save, ep, path, extra_files={7: "x"})
    refused((TypeError,), r"extra_files must be a dict of file name -> str or bytes, got a list",
            pt2serde.save, ep, path, extra_files=["a.txt"])
    assert os.listdir(tmp_path) == []  # refused before anything was written
    pt2serde.save(ep, path, extra_files={"a.txt": "3", "b.bin": b"\x03", "c.bin": bytearray(b"\x04")})
    extra: dict = {}
    pt2serde.load(path, extra_files=extra)
    assert extra == {"a.txt": "3", "b.bin": "\x03", "c.bin": "\x04"}  # text decoded as UTF-8, as PyTorch does


def test_target_schema_takes_a_version_tuple_or_a_release(ep):
    def written(target) -> bytes:
        buf = io.BytesIO()
        pt2serde.save(ep, buf, target_schema=target)
        return buf.getvalue()

    # a release string means the schema that release reads
    assert written("2.9") == written("2.9.1") == written((8, 14))
    assert written("2.8") == written((8, 8))
    assert written("2.13") == written("2.14.0+cpu") == written(None) == written((8, 20))
    accepted = r"\(8, 20\) or '2\.13' / '2\.14', \(8, 14\) or '2\.9', \(8, 8\) or '2\.8'"
    refused((ValueError,), rf"^target_schema='2\.10' is not a PyTorch release pt2serde writes for; pass one of {accepted}$",
            written, "2.10")
    refused((ValueError,), r"^target_schema='latest' is not a PyTorch release", written, "latest")
    refused((TypeError,), rf"^target_schema must be a \(major, minor\) tuple of ints or a PyTorch release string, got "
                          rf"2\.9; pass one of {accepted}$", written, 2.9)
    refused((TypeError,), r"got \(8, 14, 0\)", written, (8, 14, 0))
    refused((TypeError,), r"got \('8', '14'\)", written, ("8", "14"))
    refused((ValueError,), rf"^cannot write schema 9\.1; pt2serde writes 8\.20 \(PyTorch 2\.13, 2\.14\), 8\.14 \(PyTorch "
                           rf"2\.9\), 8\.8 \(PyTorch 2\.8\): pass target_schema as one of {accepted}$", written, (9, 1))


# ============================================================ not an exported program


@pytest.mark.parametrize("call", ["save", "serialize"])
def test_a_module_or_other_object_instead_of_an_exported_program(ep, call, tmp_path):
    fn = (lambda x: pt2serde.save(x, tmp_path / "m.pt2")) if call == "save" else pt2serde.serialize
    then = r"pt2serde\.save\(ep, path\)" if call == "save" else r"pt2serde\.serialize\(ep\)"
    export = r"export it first: ep = torch\.export\.export\(model, example_inputs\), then " + then
    refused((TypeError,), rf"^{call}\(\) needs an ExportedProgram, got a torch\.nn\.Module \(_Net\); {export}$", fn, _Net())
    refused((TypeError,), rf"^{call}\(\) needs an ExportedProgram, got a torch\.fx\.GraphModule \(GraphModule\); pass the "
                          rf"ExportedProgram itself \(ep, not ep\.module\(\)\), or {export}$", fn, ep.module())
    refused((TypeError,), rf"^{call}\(\) needs an ExportedProgram, got None; pass the program torch\.export\.export "
                          rf"returned \({export}\)$", fn, None)
    refused((TypeError,), rf"^{call}\(\) needs an ExportedProgram, got a tensor; torch\.save stores tensors", fn,
            torch.ones(2))
    if call == "save":
        refused((TypeError,), rf"^save\(\) needs an ExportedProgram, got a dict of tensors \(a state dict\?\); "
                              rf"torch\.save\(state_dict, f\) stores weights alone; to store a program, {export}$",
                fn, _Net().state_dict())
        refused((TypeError,), rf"^program 'a' is a torch\.nn\.Module \(_Net\), not an ExportedProgram; {export}$",
                fn, {"a": _Net()})
        refused((ValueError,), r"^save\(\) needs an ExportedProgram or a non-empty dict of them, got an empty dict",
                fn, {})
        refused((ValueError,), r"^invalid program name 'a/b': use a non-empty name without '/'", fn, {"a/b": ep})
        assert os.listdir(tmp_path) == []
    else:
        refused((TypeError,), r"^serialize\(\) needs an ExportedProgram, got a dict; serialize takes one program",
                fn, {"model": ep})
        refused((TypeError,), r"^serialize\(\) needs an ExportedProgram, got a torch\.nn\.Module",
                pt2serde.ExportedProgramSerializer().serialize, _Net())


def test_deserialize_takes_what_serialize_returned(ep, saved):
    what = r"^deserialize\(\) takes the SerializedArtifact that pt2serde\.serialize\(\) returned, got "
    refused((TypeError,), what + r"the bytes of a JSON document; pass the whole artifact \(SerializedArtifact\("
                                 r"exported_program, state_dict, constants, example_inputs\)\), or decode the document "
                                 r"alone with pt2serde\.from_dict", pt2serde.deserialize, b"{}")
    with open(saved, "rb") as f:
        archive = f.read()
    refused((TypeError,), what + r"the bytes of a zip archive; read a PT2 archive with "
                                 r"pt2serde\.load\(io\.BytesIO\(data\)\)$", pt2serde.deserialize, archive)
    refused((TypeError,), what + r"bytes; pass that artifact, or read a PT2 archive with pt2serde\.load\(f\)$",
            pt2serde.deserialize, b"\x00\x01")
    refused((TypeError,), what + r"a path \(str\); read a \.pt2 file with pt2serde\.load\(path\)$",
            pt2serde.deserialize, saved)
    refused((TypeError,), what + r"None; pass that artifact \(artifact = pt2serde\.serialize\(ep\)\)$",
            pt2serde.deserialize, None)
    refused((TypeError,), what + r"an ExportedProgram; pass that artifact", pt2serde.deserialize, ep)
    # the artifact itself still round-trips
    back = pt2serde.deserialize(pt2serde.serialize(ep))
    x = torch.randn(2, 4)
    assert torch.equal(back.module()(x), ep.module()(x))


# ============================================================ load: wrong arguments


def test_load_of_something_that_is_no_file(saved, tmp_path):
    refused((TypeError,), r"^load\(\) reads a path, bytes or a readable binary file object, got None; pass a path "
                          r"like 'model\.pt2' or a file opened with open\(path, 'rb'\)$", pt2serde.load, None)
    refused((TypeError,), r"^load_all\(\) reads a path, bytes or a readable binary file object, got a _Net",
            pt2serde.load_all, _Net())
    with open(saved, encoding="latin-1") as text:
        refused((TypeError,), r"^load\(\) needs a binary file object, got a text file \(TextIOWrapper\); open it with "
                              r"open\(path, 'rb'\)$", pt2serde.load, text)
    refused((ValueError,), r"is a folder, not a PT2 archive; pass the \.pt2 file in it$", pt2serde.load, tmp_path)
    refused((TypeError,), r"^load\(\) fills extra_files in place: pass a dict \(files = \{\}; load\(f, "
                          r"extra_files=files\)\), got a list$", pt2serde.load, saved, extra_files=[])
    refused((TypeError,), r"^load\(\) name must be the program's name as a string", pt2serde.load, saved, name=0)


# ============================================================ load: not a PT2 archive


def _other_files(tmp_path, saved) -> dict[str, str]:
    """Files people hand to load/inspect by mistake, by what they are."""
    from safetensors.torch import save_file

    state = _Net().state_dict()
    out = {}
    out["torch.save"] = str(tmp_path / "ckpt.pt")
    torch.save(state, out["torch.save"])
    out["legacy torch.save"] = str(tmp_path / "legacy.pt")
    torch.save(state, out["legacy torch.save"], _use_new_zipfile_serialization=False)
    out["torchscript"] = str(tmp_path / "scripted.pt")
    torch.jit.save(torch.jit.script(_Net()), out["torchscript"])
    out["safetensors"] = str(tmp_path / "weights.safetensors")
    save_file({k: v.contiguous() for k, v in state.items()}, out["safetensors"])
    out["empty"] = str(tmp_path / "empty.pt2")
    open(out["empty"], "wb").close()
    out["text"] = str(tmp_path / "notes.txt")
    with open(out["text"], "w") as f:
        f.write("hello world\n")
    out["cut short"] = str(tmp_path / "cut.pt2")
    with open(saved, "rb") as f:
        data = f.read()
    with open(out["cut short"], "wb") as f:
        f.write(data[: len(data) // 2])
    out["document"] = str(tmp_path / "model.json")
    with open(out["document"], "wb") as f:
        f.write(records(saved)["models/model.json"])
    return out


EXPORT = r"export it first: ep = torch\.export\.export\(model, example_inputs\); pt2serde\.save\(ep, path\)"
ARCHIVE = r"pass the \.pt2 file that pt2serde\.save or torch\.export\.save wrote"
#: what load and the CLI say of each file (after its name, or "it" in the CLI)
SAID = {
    "torch.save": r"is a torch\.save checkpoint \(a pickled object, e\.g\. a state dict\), not a torch\.export archive: "
                  r"torch\.load reads it; to save a model as a program, " + EXPORT,
    "legacy torch.save": r"is a torch\.save checkpoint \(legacy format\), not a torch\.export archive: torch\.load "
                         r"reads it; to save a model as a program, " + EXPORT,
    "torchscript": r"is a TorchScript archive \(torch\.jit\.save\), not a torch\.export archive: torch\.jit\.load "
                   r"reads it; to save a model as a program, " + EXPORT,
    "safetensors": r"is a safetensors file \(tensors only, no program\), not a PT2 archive: "
                   r"safetensors\.torch\.load_file reads it; to save a model as a program, " + EXPORT,
    "empty": r"is empty \(0 bytes\), not a PT2 archive: whatever should have written it failed or never ran; save "
             r"the program again with pt2serde\.save\(ep, path\)",
    "text": r"is a text file \(starting 'hello world'\), not a PT2 archive; " + ARCHIVE,
    "cut short": r"is a cut-short or damaged zip archive \(\d+ bytes, its zip directory is missing or broken\): the "
                 r"save or copy that wrote it did not finish; write it again",
    "document": r"is a program document \(JSON\), not a PT2 archive: pass the \.pt2 archive it came from, or decode "
                r"it with pt2serde\.from_dict\(pt2serde\.schema\.ExportedProgram, json\.loads\(text\)\)",
}


def test_load_says_what_the_file_is_instead(saved, tmp_path):
    files = _other_files(tmp_path, saved)
    assert sorted(files) == sorted(SAID)
    for kind, path in files.items():
        refused((), rf"^{re.escape(path)} {SAID[kind]}$", pt2serde.load, path)
        refused((), rf"^{re.escape(path)} {SAID[kind]}$", pt2serde.load_all, path)
        with open(path, "rb") as f:  # a file object is named by its name
            refused((), rf"^{re.escape(path)} {SAID[kind]}$", pt2serde.load, f)
        with open(path, "rb") as f:
            data = f.read()
        refused((), rf"^the data {SAID[kind]}$", pt2serde.load, io.BytesIO(data))
    assert torch.load(files["torch.save"]).keys() == _Net().state_dict().keys()  # what the message says works


def test_inspect_and_validate_say_what_the_file_is(saved, tmp_path):
    files = _other_files(tmp_path, saved)
    argvs = [[command, path] for path in files.values() for command in ("inspect", "validate")]
    results = run_batch(argvs + [["inspect", "--json", files["torch.save"]], ["diff", saved, files["torch.save"]]])
    for (command, path), (code, out, err) in zip(argvs, results):  # torch-free
        kind = next(k for k, p in files.items() if p == path)
        assert (code, out) == (2, ""), (command, path, err)
        assert re.fullmatch(rf"pt2serde {command}: cannot read {re.escape(path)}: it {SAID[kind]}\n", err), err
    assert results[-2][:2] == (2, "") and "it is a torch.save checkpoint" in results[-2][2]
    assert results[-1][:2] == (2, "") and "it is a torch.save checkpoint" in results[-1][2]


# ================================================= inspect agrees with validate


def _damaged(saved: str, tmp_path) -> dict[str, tuple[str, str]]:
    """Archives whose graph module is damaged: (path, the problem validate reports)."""
    def missing_value(doc):
        node = doc["graph_module"]["graph"]["nodes"][-1]
        node["inputs"][0]["arg"] = {"as_tensor": {"name": "no_such_value"}}

    def bad_type(doc):
        doc["graph_module"]["graph"]["nodes"][0]["inputs"][0]["arg"] = {"as_tensor": {"name": 5}}

    def signature(doc):
        doc["graph_module"]["signature"]["input_specs"][0]["parameter"]["arg"]["name"] = "nope"

    out = {}
    for name, fn, problem in (
        ("missing value", missing_value, "`no_such_value` is used but never defined @ $.graph_module.graph.nodes[1]"
                                         ".inputs[0].arg"),
        ("bad field type", bad_type, "Expected `str`, got `int` @ $.graph_module.graph.nodes[0].inputs[0].arg"
                                     ".as_tensor.name"),
        ("signature", signature, "input spec 0 (parameter) names `nope` but graph input 0 is `p_fc_weight` @ "
                                 "$.graph_module.signature.input_specs[0].parameter.arg"),
    ):
        out[name] = (edit_json(saved, str(tmp_path / f"{name.replace(' ', '_')}.pt2"), "models/model.json", fn),
                     problem)
    return out


def test_inspect_says_no_release_reads_what_validate_refuses(saved, tmp_path):
    damaged = _damaged(saved, tmp_path)
    argvs = [["inspect", "--json", saved]]
    for path, _ in damaged.values():
        argvs += [["inspect", "--json", path], ["validate", "--json", path], ["inspect", path]]
    results = run_batch(argvs)
    good = {r["reader"]: r["readable"] for r in json.loads(results[0][1])["readers"]}
    assert [r for r, ok in good.items() if ok] == ["2.9", "2.13", "2.14", "pt2serde"]  # the control
    for i, (name, (path, problem)) in enumerate(damaged.items()):
        (ci, inspected, _), (cv, validated, _), (_, human, _) = results[1 + 3 * i: 4 + 3 * i]
        v = json.loads(validated)
        assert cv == 1 and not v["valid"], name
        assert [f"{p['message']} @ {p['where']}" for p in v["problems"]] == [problem], name
        readers = json.loads(inspected)["readers"]
        assert [r["reader"] for r in readers if r["readable"]] == [], (name, readers)
        for r in readers:
            if r["reader"] in ("2.9", "2.13", "2.14"):  # these read the intact archive: now the problem is why not
                assert r["reason"] == f"fails validation (pt2serde validate): {problem}", (name, r)
                assert r["fails_at"] == "load" and r["where"].startswith("model/models/model.json $.graph_module")
        assert "readable by  none" in human, human
        with pytest.raises(Exception):  # the oracle: PyTorch's loader refuses each of them too
            torch.export.load(path)
        with pytest.raises(pt2serde.SerializeError):
            pt2serde.load(path)
