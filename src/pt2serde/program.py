"""``torch.export.ExportedProgram`` to ``schema.ExportedProgram`` plus payloads, and back."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch.export import ExportedProgram

from . import codec, schema, symbolic, tensors
from ._util import gc_paused
from .errors import SerializeError
from .graph import GraphModuleSerializer

__all__ = [
    "SerializedArtifact",
    "ExportedProgramSerializer",
    "serialize",
    "default_opset_version",
]

log = logging.getLogger(__name__)


@dataclass
class SerializedArtifact:
    """An exported program in memory: the JSON document and three pickle-free payloads."""

    exported_program: bytes
    state_dict: bytes
    constants: bytes
    example_inputs: bytes

    def __repr__(self) -> str:
        sizes = ", ".join(
            f"{name}={len(getattr(self, name))}B"
            for name in ("exported_program", "state_dict", "constants", "example_inputs")
        )
        return f"SerializedArtifact({sizes})"


@dataclass
class SerializedProgram:
    """What :meth:`ExportedProgramSerializer.serialize` returns: the document as a dataclass."""

    exported_program: schema.ExportedProgram
    state_dict: bytes
    constants: bytes
    example_inputs: bytes

    def __repr__(self) -> str:
        g = self.exported_program.graph_module.graph
        return (
            f"SerializedProgram(nodes={len(g.nodes)}, state_dict={len(self.state_dict)}B, "
            f"constants={len(self.constants)}B, example_inputs={len(self.example_inputs)}B)"
        )


def default_opset_version(opset_version: dict[str, int] | None) -> dict[str, int]:
    out = dict(opset_version or {})
    out.setdefault("aten", torch._C._get_max_operator_version())
    return out


def _module_inputs_context(example_inputs):
    # Example inputs may hold nn.Modules (modules passed as graph inputs); pytree must
    # treat them as leaves while their treespecs are written.
    from torch._export.non_strict_utils import _enable_graph_inputs_of_type_nn_module

    return _enable_graph_inputs_of_type_nn_module(example_inputs)


class ExportedProgramSerializer:
    """Serializes an ``ExportedProgram``: ``.serialize(ep)`` returns a :class:`SerializedProgram`."""

    def __init__(self, opset_version: dict[str, int] | None = None) -> None:
        self.opset_version = default_opset_version(opset_version)

    def __repr__(self) -> str:
        return f"ExportedProgramSerializer(opset_version={self.opset_version})"

    def serialize(self, ep: ExportedProgram) -> SerializedProgram:
        with gc_paused():
            return self._serialize(ep)

    def _serialize(self, ep: ExportedProgram) -> SerializedProgram:
        if not isinstance(ep, ExportedProgram):
            raise SerializeError(f"expected a torch.export.ExportedProgram, got {type(ep).__name__}")
        gm_serializer = GraphModuleSerializer(ep.graph_signature, ep.module_call_graph)
        with _module_inputs_context(ep.example_inputs):
            graph_module = gm_serializer.serialize(ep.graph_module)
        document = schema.ExportedProgram(
            graph_module=graph_module,
            opset_version=dict(self.opset_version),
            range_constraints=symbolic.range_constraints_to_wire(ep.range_constraints),
            schema_version=schema.SchemaVersion(major=schema.SCHEMA_VERSION[0], minor=schema.SCHEMA_VERSION[1]),
            verifiers=[v.dialect for v in ep.verifiers],
            torch_version=str(torch.__version__),
            guards_code=list(getattr(ep, "_guards_code", None) or []),
        )
        constants: dict[str, Any] = dict(gm_serializer.custom_objs)
        for name, value in ep.constants.items():
            if name in constants:
                raise SerializeError(f"constant name {name!r} is used twice")
            constants[name] = value
        state_table = tensors.StorageTable()
        state_dict = tensors.encode_payload("state_dict", dict(ep.state_dict), table_out=state_table)
        constants_bytes = tensors.encode_payload("constants", constants, shared=state_table)
        example_inputs = b""
        if ep.example_inputs is not None:
            try:
                example_inputs = tensors.encode_payload("example_inputs", tree=ep.example_inputs)
            except SerializeError as e:
                log.warning("example inputs are not stored: %s", e)
        return SerializedProgram(document, state_dict, constants_bytes, example_inputs)


def serialize(ep: ExportedProgram, opset_version: dict[str, int] | None = None) -> SerializedArtifact:
    """An exported program as a :class:`SerializedArtifact` (JSON document + payloads)."""
    with gc_paused():
        program = ExportedProgramSerializer(opset_version).serialize(ep)
        return SerializedArtifact(
            exported_program=codec.to_json_bytes(program.exported_program),
            state_dict=program.state_dict,
            constants=program.constants,
            example_inputs=program.example_inputs,
        )
