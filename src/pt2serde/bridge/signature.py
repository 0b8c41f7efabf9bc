"""Graph signatures and module call graphs, both directions, driven by tables.

Every ``schema.InputSpec`` / ``schema.OutputSpec`` member has one row saying which
``torch.export`` kind it stands for and how its fields map to the runtime spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch.export.graph_signature as gs

from .. import schema

from . import treespec
from .arguments import decode_argument, encode_argument
from ..errors import SerializeError

__all__ = [
    "SpecRow",
    "INPUT_ROWS",
    "OUTPUT_ROWS",
    "signature_to_wire",
    "signature_from_wire",
    "argument_spec_to_wire",
    "argument_spec_from_wire",
    "module_call_graph_to_wire",
    "module_call_graph_from_wire",
]


@dataclass(frozen=True)
class SpecRow:
    """One spec member: ``kind`` in torch.export, ``encode(enc, spec) -> payload``,
    ``decode(dec, payload) -> (arg, target, persistent)``, ``match(spec)`` to pick among
    several rows of one kind."""

    tag: str
    kind: Any
    encode: Callable[[Any, Any], Any]
    decode: Callable[[Any, Any], tuple]
    match: Callable[[Any], bool] | None = None


def _tensor_arg(spec) -> schema.TensorArgument:
    if not isinstance(spec.arg, gs.TensorArgument):
        raise SerializeError(f"expected a tensor argument for {spec.kind.name}, got {type(spec.arg).__name__}")
    return schema.TensorArgument(name=spec.arg.name)


def _target(spec) -> str:
    if spec.target is None:
        raise SerializeError(f"{spec.kind.name} spec for {spec.arg.name} has no target")
    return spec.target


def _named_tensor_row(tag: str, kind, cls: type, target_field: str) -> SpecRow:
    """Rows whose struct is ``(arg: TensorArgument, <target_field>: str)``."""
    return SpecRow(
        tag,
        kind,
        lambda enc, spec: cls(**{"arg": _tensor_arg(spec), target_field: _target(spec)}),
        lambda dec, p: (gs.TensorArgument(name=p.arg.name), getattr(p, target_field), None),
    )


# ------------------------------------------------------------ argument specs


def argument_spec_to_wire(enc, arg) -> schema.Argument:
    if isinstance(arg, gs.TensorArgument):
        return schema.Argument(as_tensor=schema.TensorArgument(name=arg.name))
    if isinstance(arg, gs.SymIntArgument):
        return schema.Argument(as_sym_int=schema.SymIntArgument(as_name=arg.name))
    if isinstance(arg, gs.SymFloatArgument):
        return schema.Argument(as_sym_float=schema.SymFloatArgument(as_name=arg.name))
    if isinstance(arg, gs.SymBoolArgument):  # PyTorch 2.13 fails here ("TODO"); the wire form is clear
        return schema.Argument(as_sym_bool=schema.SymBoolArgument(as_name=arg.name))
    if isinstance(arg, gs.ConstantArgument):
        return encode_argument(enc, arg.value)
    if isinstance(arg, gs.CustomObjArgument):
        return schema.Argument(as_custom_obj=schema.CustomObjArgument(name=arg.name, class_fqn=arg.class_fqn))
    raise SerializeError(f"Unsupported argument spec {arg!r}")


_SYM_SPEC = {
    "as_sym_int": gs.SymIntArgument,
    "as_sym_float": gs.SymFloatArgument,
    "as_sym_bool": gs.SymBoolArgument,
}


def argument_spec_from_wire(dec, arg: schema.Argument):
    tag = arg.type
    if tag == "as_tensor":
        return gs.TensorArgument(name=arg.as_tensor.name)
    if tag in _SYM_SPEC and arg.value.type == "as_name":
        return _SYM_SPEC[tag](name=arg.value.as_name)
    if tag == "as_custom_obj":
        return gs.ConstantArgument(name=arg.as_custom_obj.name, value=decode_argument(dec, arg))
    return gs.ConstantArgument(name="", value=decode_argument(dec, arg))


# ------------------------------------------------------------ constant inputs

_CONSTANT_TAGS: tuple[tuple[type, str], ...] = (
    (bool, "as_bool"), (int, "as_int"), (str, "as_string"), (float, "as_float"), (type(None), "as_none"),
)


def _constant_input_to_wire(enc, spec) -> schema.InputToConstantInputSpec:
    value = spec.arg.value
    for py_type, tag in _CONSTANT_TAGS:
        if type(value) is py_type:
            wire = schema.ConstantValue(**{tag: True if tag == "as_none" else value})
            return schema.InputToConstantInputSpec(name=spec.arg.name, value=wire)
    raise SerializeError(f"Unhandled constant input {value!r} to serialize")


def _constant_input_from_wire(dec, p: schema.InputToConstantInputSpec):
    value = None if p.value.type == "as_none" else p.value.value
    return gs.ConstantArgument(name=p.name, value=value), None, None


# ------------------------------------------------------------------- tables

K, O = gs.InputKind, gs.OutputKind

INPUT_ROWS: tuple[SpecRow, ...] = (
    SpecRow("constant_input", K.USER_INPUT, _constant_input_to_wire, _constant_input_from_wire,
            lambda spec: isinstance(spec.arg, gs.ConstantArgument)),
    SpecRow("user_input", K.USER_INPUT,
            lambda enc, spec: schema.UserInputSpec(arg=argument_spec_to_wire(enc, spec.arg)),
            lambda dec, p: (argument_spec_from_wire(dec, p.arg), None, None)),
    _named_tensor_row("parameter", K.PARAMETER, schema.InputToParameterSpec, "parameter_name"),
    SpecRow("buffer", K.BUFFER,
            lambda enc, spec: schema.InputToBufferSpec(
                arg=_tensor_arg(spec), buffer_name=_target(spec), persistent=bool(spec.persistent)),
            lambda dec, p: (gs.TensorArgument(name=p.arg.name), p.buffer_name, p.persistent)),
    _named_tensor_row("tensor_constant", K.CONSTANT_TENSOR, schema.InputToTensorConstantSpec,
                      "tensor_constant_name"),
    SpecRow("custom_obj", K.CUSTOM_OBJ,
            lambda enc, spec: schema.InputToCustomObjSpec(
                arg=schema.CustomObjArgument(name=spec.arg.name, class_fqn=spec.arg.class_fqn),
                custom_obj_name=_target(spec)),
            lambda dec, p: (gs.CustomObjArgument(name=p.arg.name, class_fqn=p.arg.class_fqn),
                            p.custom_obj_name, None)),
    SpecRow("token", K.TOKEN,
            lambda enc, spec: schema.InputTokenSpec(arg=schema.TokenArgument(name=spec.arg.name)),
            lambda dec, p: (gs.TokenArgument(name=p.arg.name), None, None)),
)

OUTPUT_ROWS: tuple[SpecRow, ...] = (
    SpecRow("user_output", O.USER_OUTPUT,
            lambda enc, spec: schema.UserOutputSpec(arg=argument_spec_to_wire(enc, spec.arg)),
            lambda dec, p: (argument_spec_from_wire(dec, p.arg), None, None)),
    SpecRow("loss_output", O.LOSS_OUTPUT,
            lambda enc, spec: schema.LossOutputSpec(arg=_tensor_arg(spec)),
            lambda dec, p: (gs.TensorArgument(name=p.arg.name), None, None)),
    _named_tensor_row("buffer_mutation", O.BUFFER_MUTATION, schema.BufferMutationSpec, "buffer_name"),
    _named_tensor_row("gradient_to_parameter", O.GRADIENT_TO_PARAMETER, schema.GradientToParameterSpec,
                      "parameter_name"),
    _named_tensor_row("gradient_to_user_input", O.GRADIENT_TO_USER_INPUT, schema.GradientToUserInputSpec,
                      "user_input_name"),
    _named_tensor_row("user_input_mutation", O.USER_INPUT_MUTATION, schema.UserInputMutationSpec,
                      "user_input_name"),
    SpecRow("token", O.TOKEN,
            lambda enc, spec: schema.OutputTokenSpec(arg=schema.TokenArgument(name=spec.arg.name)),
            lambda dec, p: (gs.TokenArgument(name=p.arg.name), None, None)),
    _named_tensor_row("parameter_mutation", O.PARAMETER_MUTATION, schema.ParameterMutationSpec,
                      "parameter_name"),
)


def _encoder_index(rows):
    index: dict[Any, list[SpecRow]] = {}
    for row in rows:
        index.setdefault(row.kind, []).append(row)
    return index


_IN_BY_KIND = _encoder_index(INPUT_ROWS)
_OUT_BY_KIND = _encoder_index(OUTPUT_ROWS)
_IN_BY_TAG = {row.tag: row for row in INPUT_ROWS}
_OUT_BY_TAG = {row.tag: row for row in OUTPUT_ROWS}


def _spec_to_wire(enc, spec, by_kind, union_cls):
    for row in by_kind.get(spec.kind, ()):
        if row.match is None or row.match(spec):
            return union_cls(**{row.tag: row.encode(enc, spec)})
    raise SerializeError(f"Unknown argument kind: {spec}")


def signature_to_wire(enc, sig: gs.ExportGraphSignature) -> schema.GraphSignature:
    return schema.GraphSignature(
        input_specs=[_spec_to_wire(enc, s, _IN_BY_KIND, schema.InputSpec) for s in sig.input_specs],
        output_specs=[_spec_to_wire(enc, s, _OUT_BY_KIND, schema.OutputSpec) for s in sig.output_specs],
    )


def signature_from_wire(dec, sig: schema.GraphSignature) -> gs.ExportGraphSignature:
    inputs = []
    for spec in sig.input_specs:
        row = _IN_BY_TAG[spec.type]
        arg, target, persistent = row.decode(dec, spec.value)
        inputs.append(gs.InputSpec(kind=row.kind, arg=arg, target=target, persistent=persistent))
    outputs = []
    for spec in sig.output_specs:
        row = _OUT_BY_TAG[spec.type]
        arg, target, _ = row.decode(dec, spec.value)
        outputs.append(gs.OutputSpec(kind=row.kind, arg=arg, target=target))
    return gs.ExportGraphSignature(input_specs=inputs, output_specs=outputs)


# --------------------------------------------------------- module call graph


def module_call_graph_to_wire(enc, entries) -> list[schema.ModuleCallEntry]:
    out = []
    for entry in entries or ():
        sig = entry.signature
        wire_sig = None
        if sig is not None:
            wire_sig = schema.ModuleCallSignature(
                inputs=[argument_spec_to_wire(enc, a) for a in sig.inputs],
                outputs=[argument_spec_to_wire(enc, a) for a in sig.outputs],
                in_spec=treespec.dumps(sig.in_spec, enc.treespec_namedtuple_fields),
                out_spec=treespec.dumps(sig.out_spec, enc.treespec_namedtuple_fields),
                forward_arg_names=list(sig.forward_arg_names) if sig.forward_arg_names else None,
            )
        out.append(schema.ModuleCallEntry(fqn=entry.fqn, signature=wire_sig))
    return out


def module_call_graph_from_wire(dec, entries: list[schema.ModuleCallEntry]):
    from torch.export.exported_program import ModuleCallEntry, ModuleCallSignature

    out = []
    for entry in entries:  # the structure is checked by codegen_fields (load and validate)
        sig = entry.signature
        runtime_sig = None
        if sig is not None:
            runtime_sig = ModuleCallSignature(
                inputs=[argument_spec_from_wire(dec, a) for a in sig.inputs],
                outputs=[argument_spec_from_wire(dec, a) for a in sig.outputs],
                in_spec=treespec.loads(sig.in_spec),
                out_spec=treespec.loads(sig.out_spec),
                forward_arg_names=sig.forward_arg_names or None,
            )
        out.append(ModuleCallEntry(fqn=entry.fqn, signature=runtime_sig))
    return out
