"""``torch.export.ExportedProgram`` to ``schema.ExportedProgram`` plus payloads, and back."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.export import ExportedProgram

from ..format import codec

from .. import schema

from . import symbolic, tensors
from .argcheck import check_artifact, check_program
from ..format.gcpause import gc_paused
from ..errors import SerializeError
from .graph_save import GraphModuleSerializer
from .lazy_code import deferred_codegen
from ..format.guards import canonical_guard
from ..format.payload import DEFAULT_PICKLE_PROTOCOL, check_pickle_protocol

__all__ = [
    "SerializedArtifact",
    "ExportedProgramSerializer",
    "ExportedProgramDeserializer",
    "serialize",
    "deserialize",
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


@contextmanager
def _errors_as_serialize_error(doing: str):
    """The API boundary: whatever torch raises on the way surfaces as a SerializeError."""
    try:
        yield
    except SerializeError:
        raise
    except Exception as e:  # noqa: BLE001 - reported with its type, chained for debugging
        raise SerializeError(f"{doing} failed: {type(e).__name__}: {e}") from e


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
    """Serializes an ``ExportedProgram``: ``.serialize(ep)`` returns a :class:`SerializedProgram`.

    ``pickle_protocol`` (2 to ``pickle.HIGHEST_PROTOCOL``, PyTorch's default 2) is used only
    for the payload entries PyTorch can store only as pickles (tensor subclasses, opaque
    objects); tensors are raw bytes and the document is JSON whatever it is.
    """

    def __init__(self, opset_version: dict[str, int] | None = None,
                 pickle_protocol: int = DEFAULT_PICKLE_PROTOCOL) -> None:
        self.opset_version = default_opset_version(opset_version)
        self.pickle_protocol = check_pickle_protocol(pickle_protocol)

    def __repr__(self) -> str:
        return (f"ExportedProgramSerializer(opset_version={self.opset_version}, "
                f"pickle_protocol={self.pickle_protocol})")

    def serialize(self, ep: ExportedProgram) -> SerializedProgram:
        with gc_paused():
            return self._serialize(ep)

    def _serialize(self, ep: ExportedProgram) -> SerializedProgram:
        doc = self.serialize_document(ep)
        state_table = tensors.StorageTable()
        protocol = self.pickle_protocol
        state_dict = tensors.encode_payload("state_dict", dict(ep.state_dict), table_out=state_table,
                                            pickle_protocol=protocol)
        constants = dict(doc.custom_objs)
        for name, value in ep.constants.items():
            if name in constants:
                raise SerializeError(f"constant name {name!r} is used twice")
            constants[name] = value
        constants_bytes = tensors.encode_payload("constants", constants, shared=state_table,
                                                 pickle_protocol=protocol)
        example_inputs = b""
        if ep.example_inputs is not None:
            try:
                example_inputs = tensors.encode_payload("example_inputs", tree=ep.example_inputs,
                                                        pickle_protocol=protocol)
            except SerializeError as e:
                log.warning("example inputs are not stored: %s", e)
        return SerializedProgram(doc.document, state_dict, constants_bytes, example_inputs)

    def serialize_document(self, ep: ExportedProgram) -> "SerializedDocument":
        """The program document alone, plus the custom objects its arguments refer to."""
        if not isinstance(ep, ExportedProgram):
            check_program(ep, "serialize")  # raises: what was passed, and how to export a model
        with gc_paused(), _errors_as_serialize_error("serializing the program"):
            gm_serializer = GraphModuleSerializer(ep.graph_signature, ep.module_call_graph)
            with _module_inputs_context(ep.example_inputs):
                graph_module = gm_serializer.serialize(ep.graph_module)
            document = schema.ExportedProgram(
                graph_module=graph_module,
                opset_version=dict(self.opset_version),
                range_constraints=symbolic.range_constraints_to_wire(ep.range_constraints),
                schema_version=schema.SchemaVersion(
                    major=schema.SCHEMA_VERSION[0], minor=schema.SCHEMA_VERSION[1]
                ),
                verifiers=[v.dialect for v in ep.verifiers],
                torch_version=str(torch.__version__),
                guards_code=list(getattr(ep, "_guards_code", None) or []),
            )
            return SerializedDocument(document, dict(gm_serializer.custom_objs))


@dataclass
class SerializedDocument:
    """A program document and the non-lifted custom objects (``_custom_obj_<n>``) it names."""

    document: schema.ExportedProgram
    custom_objs: dict[str, Any]


def serialize(ep: ExportedProgram, opset_version: dict[str, int] | None = None,
              pickle_protocol: int = DEFAULT_PICKLE_PROTOCOL) -> SerializedArtifact:
    """An exported program as a :class:`SerializedArtifact` (JSON document + payloads).

    ``pickle_protocol`` is accepted as in PyTorch's ``serialize`` and used only for payload
    entries that must stay pickles (see :class:`ExportedProgramSerializer`).
    """
    with gc_paused():  # the schema document is freed (in _artifact) before the collector is back
        return _artifact(ExportedProgramSerializer(opset_version, pickle_protocol).serialize(ep))


def _artifact(program: SerializedProgram) -> SerializedArtifact:
    return SerializedArtifact(
        exported_program=codec.to_json_bytes(program.exported_program),
        state_dict=program.state_dict,
        constants=program.constants,
        example_inputs=program.example_inputs,
    )


# =========================================================================== reading


def _check_opset(stored: dict[str, int], expected: dict[str, int] | None) -> None:
    import warnings

    if not expected:
        return
    for ns, version in expected.items():
        have = stored.get(ns)
        if have is not None and have != version:
            warnings.warn(
                f"The program was written with opset {ns}={have} but opset {ns}={version} was expected. "
                f"It is loaded as written; if operators of {ns!r} changed between these versions, "
                "re-export the program with the expected PyTorch release.",
                stacklevel=3,
            )


def _inputs_fitting_call_spec(inputs, module_call_graph):
    """The sample inputs, or ``None`` (with a warning) when they do not flatten to the root
    ``in_spec``: ``module()`` binds them to the ``forward`` it writes from that spec and fails
    inside torch (``TypeError: missing a required argument``) on a file whose two disagree."""
    import warnings

    if inputs is None or not module_call_graph or module_call_graph[0].signature is None:
        return inputs
    spec = module_call_graph[0].signature.in_spec
    try:
        fits = torch.utils._pytree.tree_structure(inputs) == spec
    except Exception:  # noqa: BLE001 - inputs of a shape pytree cannot even flatten
        fits = False
    if not fits:
        warnings.warn("The program's sample inputs do not fit its input spec (in_spec); they are left out "
                      "(ep.example_inputs is None).", stacklevel=4)
        return None
    return inputs


class ExportedProgramDeserializer:
    """Rebuilds an ``ExportedProgram`` from a ``schema.ExportedProgram`` and its payloads."""

    def __init__(self, expected_opset_version: dict[str, int] | None = None) -> None:
        self.expected_opset_version = dict(expected_opset_version or {})

    def __repr__(self) -> str:
        return f"ExportedProgramDeserializer(expected_opset_version={self.expected_opset_version})"

    def deserialize(
        self,
        exported_program: schema.ExportedProgram,
        state_dict: bytes | dict | None,
        constants: bytes | dict | None,
        example_inputs: bytes | tuple | None = None,
        *,
        allow_pickle: bool = False,
    ) -> ExportedProgram:
        if not isinstance(exported_program, schema.ExportedProgram):
            raise SerializeError(
                f"expected a pt2serde.schema.ExportedProgram, got {type(exported_program).__name__}"
            )
        with gc_paused(), _errors_as_serialize_error("rebuilding the program"):
            return self._deserialize(exported_program, state_dict, constants, example_inputs, allow_pickle)

    def _deserialize(self, doc, state_dict, constants, example_inputs, allow_pickle) -> ExportedProgram:
        from torch._export.verifier import load_verifier

        from . import signature as sig_mod
        from .graph_load import GraphDeserializer
        from .object_records import fake_objects
        from ..format.codegen_fields import check_code_fields
        from ..format.upgrade import check_version

        check_version(doc.schema_version.major, doc.schema_version.minor)
        check_code_fields(doc)  # every string that can become code, before torch sees any
        _check_opset(doc.opset_version, self.expected_opset_version)
        from ..format.check import check_expressions, check_signature  # validate's walks (one rule, one place)

        sym = symbolic.SymbolicContext(doc.range_constraints, budget=check_expressions(doc))

        def payload(data, what: str, shared=None):
            if callable(data):  # the archive reader: builds the values itself (may need fake tensors)
                data = data(sym.fake_tensor)
            if data is None or isinstance(data, dict):
                return tensors.DecodedPayload(dict(data or {}), None, [])
            return tensors.decode_payload(
                data, what=what, shared=shared, fake_tensor=sym.fake_tensor, allow_pickle=allow_pickle
            )

        state = payload(state_dict, "state_dict")
        consts = payload(constants, "constants", shared=state.storages)
        consts.values = fake_objects(consts.values, sym.fake_tensor)  # meta tensors in torchbind states
        gm_doc = doc.graph_module
        dec = GraphDeserializer(sym, constants=consts.values, input_specs=gm_doc.signature.input_specs)
        graph_signature = sig_mod.signature_from_wire(dec, gm_doc.signature)
        if callable(example_inputs):
            inputs = example_inputs(sym.fake_tensor)
        elif example_inputs is None or isinstance(example_inputs, tuple):
            inputs = example_inputs
        else:
            inputs = payload(example_inputs, "example_inputs").tree if example_inputs else None
        root, graph = dec.deserialize(gm_doc.graph)
        check_signature(gm_doc)  # after the graph's own refusals, which name the value
        with _module_inputs_context(inputs):
            module_call_graph = sig_mod.module_call_graph_from_wire(dec, gm_doc.module_call_graph)
            inputs = _inputs_fitting_call_spec(inputs, module_call_graph)
        meta: dict[str, Any] = {}
        if custom := gm_doc.metadata.get("custom"):
            meta["custom"] = json_loads_meta(custom)
        meta["treespec_namedtuple_fields"] = {
            name: list(d.field_names) for name, d in gm_doc.treespec_namedtuple_fields.items()
        }
        try:
            verifiers = [load_verifier(v) for v in doc.verifiers]
        except KeyError as e:
            raise SerializeError(
                f"verifier dialect {e.args[0]!r} is not registered: define its Verifier subclass before loading"
            ) from None
        # ExportedProgram builds the GraphModule from the root (which holds the subgraph
        # submodules) and the graph itself; building one here first would generate code twice.
        # Its Python code is generated when first used, not here (lazy_code: most loads never do).
        with deferred_codegen():
            program = ExportedProgram(
                root=root,
                graph=graph,
                graph_signature=graph_signature,
                state_dict=state.values,
                range_constraints=sym.range_constraints(),
                module_call_graph=module_call_graph,
                example_inputs=inputs,
                constants=consts.values,
                verifiers=verifiers,
            )
        program.graph_module.meta.update(meta)
        # rebuilt from our own grammar: torch execs guards inside module() (pt2serde.format.guards)
        program._guards_code = [canonical_guard(g, f"$.guards_code[{i}]") for i, g in enumerate(doc.guards_code)]
        return program


def json_loads_meta(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise SerializeError(f"graph module metadata `custom` is not valid JSON: {e}") from None


def deserialize(
    artifact: SerializedArtifact,
    expected_opset_version: dict[str, int] | None = None,
    *,
    allow_pickle: bool = False,
) -> ExportedProgram:
    """The inverse of :func:`serialize`.

    ``allow_pickle=True`` is needed only for payload entries that PyTorch itself stores as
    pickles (torchbind objects, tensor subclasses); opaque values of registered classes are
    read without unpickling (:mod:`.opaque`), and unpickled with ``allow_pickle=True``.
    """
    from ..format.upgrade import program_from_json

    check_artifact(artifact)  # raises for anything but what serialize() returns, saying what to pass
    if not isinstance(artifact.exported_program, (bytes, bytearray, memoryview)):
        raise SerializeError(f"expected bytes, got {type(artifact.exported_program).__name__}")
    with gc_paused():  # the document is freed before the collector, back on, looks at what is left
        return ExportedProgramDeserializer(expected_opset_version).deserialize(
            program_from_json(artifact.exported_program),
            artifact.state_dict, artifact.constants, artifact.example_inputs, allow_pickle=allow_pickle,
        )
