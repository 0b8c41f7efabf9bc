"""A program's artifacts in memory, as the tests build and read them: archives saved by
pt2serde or by PyTorch (bytes, their records, their JSON configs), JSON documents of corpus
programs, and PyTorch's own loaders applied to what pt2serde wrote."""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
import zipfile

import torch
from torch._export.serde import serialize as torch_serde

import pt2serde
from programs import exported


def save_load(ep: torch.export.ExportedProgram, **load_options) -> torch.export.ExportedProgram:
    """``pt2serde.save`` to memory, then ``pt2serde.load`` with ``load_options`` (no seek in
    between: the API promises that works)."""
    buf = io.BytesIO()
    pt2serde.save(ep, buf)
    return pt2serde.load(buf, **load_options)


def saved(programs, **kw) -> bytes:
    """The archive ``pt2serde.save`` writes for ``programs``."""
    buf = io.BytesIO()
    pt2serde.save(programs, buf, **kw)
    return buf.getvalue()


def torch_saved(ep, **kw) -> bytes:
    """The archive ``torch.export.save`` writes for ``ep``."""
    buf = io.BytesIO()
    torch.export.save(ep, buf, **kw)
    return buf.getvalue()


def torch_loaded(data, **kw):
    """``torch.export.load``; its fallback for pickled sample inputs logs with a broken
    format string, which pytest's log capture turns into an error, so logging is off."""
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.load(data if isinstance(data, (str, os.PathLike)) else io.BytesIO(data), **kw)
    finally:
        logging.disable(logging.NOTSET)


def config(data: bytes, rel: str) -> dict:
    """A JSON record of an archive, by its name under ``archive/``."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return json.loads(z.read(f"archive/{rel}"))


def record_names(data: bytes) -> list[str]:
    """The record names of an archive, in the order they are stored."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [i.filename for i in z.infolist()]


def artifact_with(art: pt2serde.SerializedArtifact, edit) -> pt2serde.SerializedArtifact:
    """The artifact with its JSON document changed in place by ``edit(doc)``."""
    doc = json.loads(art.exported_program)
    edit(doc)
    return pt2serde.SerializedArtifact(json.dumps(doc).encode(), art.state_dict, art.constants, art.example_inputs)


def document(name: str, form: str) -> dict:
    """The JSON document pt2serde writes for a corpus program (``form``: export or decomposed)."""
    return json.loads(pt2serde.serialize(exported(name, form)).exported_program)


def nodes_calling(doc: dict, target: str) -> list[dict]:
    """The nodes of a document's graph whose target is ``target``."""
    return [n for n in doc["graph_module"]["graph"]["nodes"] if n["target"] == target]


def torch_deserialized(name: str, form: str) -> torch.export.ExportedProgram:
    """PyTorch's deserializer applied to pt2serde's document of a corpus program (payloads
    pickled by torch)."""
    ep = exported(name, form)
    artifact = torch_serde.SerializedArtifact(
        pt2serde.serialize(ep).exported_program,
        torch_serde.serialize_torch_artifact(ep.state_dict),
        torch_serde.serialize_torch_artifact(ep.constants),
        torch_serde.serialize_torch_artifact(ep.example_inputs),
    )
    return torch_serde.deserialize(artifact)


def call_args(ep: torch.export.ExportedProgram, op) -> list[tuple]:
    """The arguments of every call of ``op`` in the program's graph."""
    return [n.args for n in ep.graph.nodes if n.op == "call_function" and n.target == op]
