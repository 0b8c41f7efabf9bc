"""The wire types of the torch.export serialization format, schema version 8.20.

Class names, field names, field ids and enum values are those of PyTorch 2.13's schema,
so documents written here and there are interchangeable. Structs are slotted
dataclasses; unions are built with ``Cls.create(member=value)`` and expose ``.type`` and
``.value`` (see :mod:`pt2serde.wire`). This module holds data definitions only; encoding
and decoding live in :mod:`pt2serde.format.codec`.
"""

from __future__ import annotations

from enum import IntEnum

from .wire import Union, struct, wire

SCHEMA_VERSION: tuple[int, int] = (8, 20)
TREESPEC_VERSION: int = 1


# --------------------------------------------------------------------------- enums


class ScalarType(IntEnum):
    UNKNOWN = 0
    BYTE = 1
    CHAR = 2
    SHORT = 3
    INT = 4
    LONG = 5
    HALF = 6
    FLOAT = 7
    DOUBLE = 8
    COMPLEXHALF = 9
    COMPLEXFLOAT = 10
    COMPLEXDOUBLE = 11
    BOOL = 12
    BFLOAT16 = 13
    UINT16 = 28
    FLOAT8E4M3FN = 29
    FLOAT8E5M2 = 30
    FLOAT8E4M3FNUZ = 31
    FLOAT8E5M2FNUZ = 32
    FLOAT8E8M0FNU = 33
    UINT32 = 34
    UINT64 = 35


class Layout(IntEnum):
    Unknown = 0
    SparseCoo = 1
    SparseCsr = 2
    SparseCsc = 3
    SparseBsr = 4
    SparseBsc = 5
    _mkldnn = 6
    Strided = 7


class MemoryFormat(IntEnum):
    Unknown = 0
    ContiguousFormat = 1
    ChannelsLast = 2
    ChannelsLast3d = 3
    PreserveFormat = 4


class ArgumentKind(IntEnum):
    UNKNOWN = 0
    POSITIONAL = 1
    KEYWORD = 2


# ------------------------------------------------------------- symbolic values


@struct
class Device:
    type: str = wire(10)
    index: int | None = wire(20, None)


class SymExprHint(Union):
    as_int: int = wire(10)
    as_bool: bool = wire(20)
    as_float: float = wire(30)


@struct
class SymExpr:
    """A sympy expression in ``srepr`` form, e.g. ``Symbol('s0', positive=True, integer=True)``."""

    expr_str: str = wire(10)
    hint: SymExprHint | None = wire(20, None)


class SymInt(Union):
    as_expr: SymExpr = wire(10)
    as_int: int = wire(20)


class SymFloat(Union):
    as_expr: SymExpr = wire(10)
    as_float: float = wire(20)


class SymBool(Union):
    as_expr: SymExpr = wire(10)
    as_bool: bool = wire(20)


@struct
class TensorMeta:
    dtype: ScalarType = wire(10)
    sizes: list[SymInt] = wire(20)
    requires_grad: bool = wire(30)
    device: Device = wire(40)
    strides: list[SymInt] = wire(50)
    storage_offset: SymInt = wire(60)
    layout: Layout = wire(70)


# ------------------------------------------------------------------- arguments


class SymIntArgument(Union):
    """``as_name`` refers to a named sym value; ``as_int`` is a literal inside a mixed list."""

    as_name: str = wire(10)
    as_int: int = wire(20)


class SymFloatArgument(Union):
    as_name: str = wire(10)
    as_float: float = wire(20)


class SymBoolArgument(Union):
    as_name: str = wire(10)
    as_bool: bool = wire(20)


@struct
class TensorArgument:
    name: str = wire(10)


@struct
class TokenArgument:
    name: str = wire(10)


class OptionalTensorArgument(Union):
    as_tensor: TensorArgument = wire(20)
    as_none: bool = wire(10)


@struct
class GraphArgument:
    name: str = wire(10)
    graph: Graph = wire(20)


@struct
class CustomObjArgument:
    name: str = wire(10)
    class_fqn: str = wire(20)


@struct
class ComplexValue:
    real: float = wire(10)
    imag: float = wire(20)


class Argument(Union):
    as_none: bool = wire(10)
    as_tensor: TensorArgument = wire(20)
    as_tensors: list[TensorArgument] = wire(30)
    as_int: int = wire(50)
    as_ints: list[int] = wire(70)
    as_float: float = wire(80)
    as_floats: list[float] = wire(90)
    as_string: str = wire(100)
    as_strings: list[str] = wire(101)
    as_sym_int: SymIntArgument = wire(110)
    as_sym_ints: list[SymIntArgument] = wire(120)
    as_scalar_type: ScalarType = wire(130)
    as_memory_format: MemoryFormat = wire(140)
    as_layout: Layout = wire(150)
    as_device: Device = wire(160)
    as_bool: bool = wire(170)
    as_bools: list[bool] = wire(180)
    as_sym_bool: SymBoolArgument = wire(182)
    as_sym_bools: list[SymBoolArgument] = wire(184)
    as_graph: GraphArgument = wire(200)
    as_optional_tensors: list[OptionalTensorArgument] = wire(190)
    as_custom_obj: CustomObjArgument = wire(210)
    as_operator: str = wire(220)
    as_sym_float: SymFloatArgument = wire(230)
    as_sym_floats: list[SymFloatArgument] = wire(240)
    as_optional_tensor: OptionalTensorArgument = wire(250)
    as_complex: ComplexValue = wire(260)
    as_nested_tensors: list[list[TensorArgument]] = wire(270)
    as_int_lists: list[list[int]] = wire(280)
    as_string_to_argument: dict[str, Argument] = wire(290)
    as_float_lists: list[list[float]] = wire(300)


@struct
class NamedArgument:
    name: str = wire(10)  # the op-schema argument name ("" for positional HOP arguments)
    arg: Argument = wire(20)
    kind: ArgumentKind | None = wire(30, None)


# ----------------------------------------------------------------------- graph


@struct
class Node:
    target: str = wire(10)
    inputs: list[NamedArgument] = wire(20)
    outputs: list[Argument] = wire(30)
    metadata: dict[str, str] = wire(40)
    is_hop_single_tensor_return: bool | None = wire(50, None)
    name: str | None = wire(60, None)  # absent in files written before it existed


@struct
class Graph:
    inputs: list[Argument] = wire(10)
    outputs: list[Argument] = wire(20)
    nodes: list[Node] = wire(30)
    tensor_values: dict[str, TensorMeta] = wire(40)
    sym_int_values: dict[str, SymInt] = wire(50)
    sym_bool_values: dict[str, SymBool] = wire(60)
    is_single_tensor_return: bool = wire(70, False)
    custom_obj_values: dict[str, CustomObjArgument] = wire(80, factory=dict)
    sym_float_values: dict[str, SymFloat] = wire(90, factory=dict)


# ------------------------------------------------------------------- signature


@struct
class UserInputSpec:
    arg: Argument = wire(10)


class ConstantValue(Union):
    as_none: bool = wire(10)
    as_int: int = wire(20)
    as_float: float = wire(30)
    as_string: str = wire(40)
    as_bool: bool = wire(50)


@struct
class InputToConstantInputSpec:
    name: str = wire(10)
    value: ConstantValue = wire(20)


@struct
class InputToParameterSpec:
    arg: TensorArgument = wire(10)
    parameter_name: str = wire(20)


@struct
class InputToBufferSpec:
    arg: TensorArgument = wire(10)
    buffer_name: str = wire(20)
    persistent: bool = wire(30)


@struct
class InputToTensorConstantSpec:
    arg: TensorArgument = wire(10)
    tensor_constant_name: str = wire(20)


@struct
class InputToCustomObjSpec:
    arg: CustomObjArgument = wire(10)
    custom_obj_name: str = wire(20)


@struct
class InputTokenSpec:
    arg: TokenArgument = wire(10)


class InputSpec(Union):
    user_input: UserInputSpec = wire(10)
    parameter: InputToParameterSpec = wire(20)
    buffer: InputToBufferSpec = wire(30)
    tensor_constant: InputToTensorConstantSpec = wire(40)
    custom_obj: InputToCustomObjSpec = wire(50)
    token: InputTokenSpec = wire(70)
    constant_input: InputToConstantInputSpec = wire(60)


@struct
class UserOutputSpec:
    arg: Argument = wire(10)


@struct
class LossOutputSpec:
    arg: TensorArgument = wire(10)


@struct
class BufferMutationSpec:
    arg: TensorArgument = wire(10)
    buffer_name: str = wire(20)


@struct
class ParameterMutationSpec:
    arg: TensorArgument = wire(10)
    parameter_name: str = wire(20)


@struct
class GradientToParameterSpec:
    arg: TensorArgument = wire(10)
    parameter_name: str = wire(20)


@struct
class GradientToUserInputSpec:
    arg: TensorArgument = wire(10)
    user_input_name: str = wire(20)


@struct
class UserInputMutationSpec:
    arg: TensorArgument = wire(10)
    user_input_name: str = wire(20)


@struct
class OutputTokenSpec:
    arg: TokenArgument = wire(10)


class OutputSpec(Union):
    user_output: UserOutputSpec = wire(10)
    loss_output: LossOutputSpec = wire(20)
    buffer_mutation: BufferMutationSpec = wire(30)
    gradient_to_parameter: GradientToParameterSpec = wire(40)
    gradient_to_user_input: GradientToUserInputSpec = wire(50)
    user_input_mutation: UserInputMutationSpec = wire(60)
    token: OutputTokenSpec = wire(70)
    parameter_mutation: ParameterMutationSpec = wire(80)


@struct
class GraphSignature:
    input_specs: list[InputSpec] = wire(10)
    output_specs: list[OutputSpec] = wire(20)


@struct
class RangeConstraint:
    """Inclusive bounds of a symbol; ``None`` means unbounded on that side."""

    min_val: int | None = wire(10)
    max_val: int | None = wire(20)


@struct
class ModuleCallSignature:
    inputs: list[Argument] = wire(10)
    outputs: list[Argument] = wire(20)
    in_spec: str = wire(30)  # a pytree treespec, JSON text (protocol TREESPEC_VERSION)
    out_spec: str = wire(40)
    forward_arg_names: list[str] | None = wire(50, None)


@struct
class ModuleCallEntry:
    fqn: str = wire(10)
    signature: ModuleCallSignature | None = wire(30, None)


@struct
class NamedTupleDef:
    field_names: list[str] = wire(10)


@struct
class GraphModule:
    graph: Graph = wire(10)
    signature: GraphSignature = wire(50)
    module_call_graph: list[ModuleCallEntry] = wire(60)
    metadata: dict[str, str] = wire(40, factory=dict)
    treespec_namedtuple_fields: dict[str, NamedTupleDef] = wire(70, factory=dict)


@struct
class SchemaVersion:
    major: int = wire(10)  # bumped on every breaking change
    minor: int = wire(20)  # bumped on every compatible change


@struct
class ExportedProgram:
    """The root of ``models/<name>.json``."""

    graph_module: GraphModule = wire(10)
    opset_version: dict[str, int] = wire(20)
    range_constraints: dict[str, RangeConstraint] = wire(30)
    schema_version: SchemaVersion = wire(60)
    verifiers: list[str] = wire(70, factory=list)
    torch_version: str = wire(80, "<=2.4")
    guards_code: list[str] = wire(90, factory=list)


# ------------------------------------------------------- archive payload configs


@struct
class PayloadMeta:
    path_name: str = wire(10)  # the record under data/weights or data/constants, e.g. "weight_0"
    is_param: bool = wire(20)
    use_pickle: bool = wire(30)
    tensor_meta: TensorMeta | None = wire(40)  # None for custom and opaque objects


@struct
class PayloadConfig:
    config: dict[str, PayloadMeta] = wire(10)


# ----------------------------------------- inductor / AOTI containers (not in programs)


@struct
class AOTInductorModelPickleData:
    library_basename: str = wire(1)
    input_names: list[str] = wire(2)
    output_names: list[str] = wire(3)
    floating_point_input_dtype: int | None = wire(4, None)
    floating_point_output_dtype: int | None = wire(5, None)
    aot_inductor_model_is_cpu: bool | None = wire(6, None)


@struct
class ExternKernelNode:
    name: str = wire(10)
    node: Node = wire(20)


@struct
class ExternKernelNodes:
    nodes: list[ExternKernelNode] = wire(10)
