"""Call arguments: one row per ``schema.Argument`` member, holding its encoder and decoder.

Encoding picks the first row, in PyTorch's order, that accepts a value: rows are
grouped by the Python type they accept (an ``fx.Node``, a list or tuple, or a plain
value) and tried in table order within that group, with the candidate rows cached per
Python type. Decoding dispatches on the wire tag directly.

The encoder context (``enc``) is a :class:`pt2serde.bridge.graph_save.GraphModuleSerializer`; the
decoder context (``dec``) is the graph deserializer. Rows only touch the small surface
they document below.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.fx

from .. import schema

from . import tables
from ..errors import SerializeError

__all__ = ["ArgKind", "ROWS", "encode_argument", "decode_argument", "EMPTY_LIST_TAGS"]

log = logging.getLogger(__name__)

Node = torch.fx.Node
_Argument_of = schema.Argument._of

try:  # opaque values (torch._library.opaque_object) exist in 2.13
    from torch._library.opaque_object import get_opaque_type_name, is_opaque_value
except ImportError:  # pragma: no cover - older torch
    def is_opaque_value(_v: Any) -> bool:
        return False

    def get_opaque_type_name(cls: type) -> str:
        raise SerializeError(f"opaque values are not supported by this torch ({cls})")


@dataclass(frozen=True)
class ArgKind:
    """How one ``schema.Argument`` member is written and read.

    ``accepts``: the Python types the encoder may see (``()`` means it is never
    produced by the encoder, only read). ``match``: a finer test among values of those
    types. ``encode(enc, value)`` returns the member payload; ``decode(dec, payload)``
    returns the FX-side value.
    """

    tag: str
    accepts: tuple[type, ...]
    encode: Callable[[Any, Any], Any] | None
    decode: Callable[[Any, Any], Any]
    match: Callable[[Any, Any], bool] | None = None


# ----------------------------------------------------------------- predicates


def _is_get_attr(enc, v: Node) -> bool:
    return v.op == "get_attr"


def _names_sym(table: str):
    def match(enc, v) -> bool:
        return isinstance(v, Node) and v.name in getattr(enc.state, table)

    return match


def _is_custom_obj_node(enc, v) -> bool:
    if isinstance(v, Node):
        from torch.export.graph_signature import CustomObjArgument

        return isinstance(v.meta.get("val"), CustomObjArgument)
    return isinstance(v, torch._C.ScriptObject) or is_opaque_value(v)


def _all(pred):
    return lambda enc, v: all(pred(enc, a) for a in v)


def _sym_int_elem(enc, a) -> bool:
    return type(a) is int or isinstance(a, torch.SymInt) or (
        isinstance(a, Node) and a.name in enc.state.sym_int_values
    )


def _sym_float_elem(enc, a) -> bool:
    return isinstance(a, (float, torch.SymFloat)) or (
        isinstance(a, Node) and a.name in enc.state.sym_float_values
    )


def _sym_bool_elem(enc, a) -> bool:
    return isinstance(a, bool) or (isinstance(a, Node) and a.name in enc.state.sym_bool_values)


def _all_of_type(t: type):
    return lambda enc, v: all(type(a) is t for a in v)


def _inner_lists_of(elem_ok):
    return lambda enc, v: all(
        isinstance(a, (list, tuple)) and all(elem_ok(x) for x in a) for a in v
    )


# ------------------------------------------------------------------- encoders


def _tensor_name(enc, node: Node) -> str:
    if node.op == "get_attr":
        raise SerializeError("getattr nodes containing tensors should not appear in the graph")
    name = enc.duplicate_getitem_nodes.get(node.name, node.name)
    state = enc.state
    if not (name in state.tensor_values or name in state.sym_int_values or name in state.sym_float_values
            or name in state.sym_bool_values):  # (torch writes a HOP's list of tensors and SymInts as tensors)
        # a value the document cannot hold (the context object of a pre-dispatch autocast region):
        # written, it would name a value nothing defines, and no reader could load the file
        raise SerializeError(f"cannot save a use of `{name}` ({node.target}): its value, of type "
                             f"{type(node.meta.get('val')).__name__}, is not one a program document holds")
    return name


def _enc_get_attr(enc, node: Node):
    attr = getattr(node.graph.owning_module, node.target)
    if isinstance(attr, torch.Tensor):
        raise SerializeError("getattr nodes containing tensors should not appear in the graph")
    if isinstance(attr, torch.fx.GraphModule):
        return schema.GraphArgument(name=node.target, graph=enc.encode_subgraph(attr))
    if type(attr).__name__ == "LoweredBackendModule":  # executorch_call_delegate's first operand
        return _LOWERED_MODULE(f"{attr.module_name}-{attr.backend_id}")
    raise SerializeError(f"Unsupported getattr attribute {node.target} with type: {type(attr)}")


class _LOWERED_MODULE(str):
    """Marks a get_attr that PyTorch writes as a string rather than a subgraph."""


def _sym_arg(cls, literal_types: tuple[type, ...]):
    literal = next(m for m in cls.MEMBERS if m != "as_name")

    def enc_one(enc, a):
        if isinstance(a, Node):
            return cls(as_name=a.name)
        if isinstance(a, literal_types) and not isinstance(a, (torch.SymInt, torch.SymFloat, torch.SymBool)):
            return cls(**{literal: a})
        return cls(as_name=str(a))  # a raw SymInt/SymFloat (inductor extern kernels)

    return enc_one


_enc_sym_int = _sym_arg(schema.SymIntArgument, (int,))
_enc_sym_float = _sym_arg(schema.SymFloatArgument, (float,))
_enc_sym_bool = _sym_arg(schema.SymBoolArgument, (bool,))


def _enc_custom_obj(enc, v) -> schema.CustomObjArgument:
    if isinstance(v, Node):
        return schema.CustomObjArgument(name=v.name, class_fqn=v.meta["val"].class_fqn)
    return enc.register_custom_obj(v)


def _enc_optional_tensors(enc, v):
    return [
        schema.OptionalTensorArgument(as_none=True)
        if a is None
        else schema.OptionalTensorArgument(as_tensor=schema.TensorArgument(name=_tensor_name(enc, a)))
        for a in v
    ]


def _enc_dict(enc, v: dict):
    out = {}
    for key, value in v.items():
        if not isinstance(key, str):
            raise SerializeError(f"Dict keys must be strings, got {type(key)}")
        out[key] = encode_argument(enc, value)
    return out


# ------------------------------------------------------------------- decoders


def _dec_same(dec, p):
    return p


def _dec_list(dec, p):
    return list(p)


def _dec_sym(dec, p):
    return p.value if p.type != "as_name" else dec.node(p.as_name)


def _dec_optional_tensor(dec, p: schema.OptionalTensorArgument):
    return None if p.type == "as_none" else dec.node(p.as_tensor.name)


def _dec_dict(dec, p: dict):
    return {k: decode_argument(dec, v) for k, v in p.items()}


# ---------------------------------------------------------------------- table

_NODE = (Node,)
_SEQ = (list, tuple)

ROWS: tuple[ArgKind, ...] = (
    # -- values that are graph nodes (tried in this order)
    ArgKind("as_graph", _NODE, _enc_get_attr, lambda dec, p: dec.subgraph(p), _is_get_attr),
    ArgKind("as_sym_int", _NODE + (torch.SymInt,), _enc_sym_int, _dec_sym,
            lambda enc, v: not isinstance(v, Node) or v.name in enc.state.sym_int_values),
    ArgKind("as_sym_float", _NODE + (torch.SymFloat,), _enc_sym_float, _dec_sym,
            lambda enc, v: not isinstance(v, Node) or v.name in enc.state.sym_float_values),
    ArgKind("as_sym_bool", _NODE, _enc_sym_bool, _dec_sym, _names_sym("sym_bool_values")),
    ArgKind("as_custom_obj", _NODE + (object,), _enc_custom_obj,
            lambda dec, p: dec.custom_obj(p), _is_custom_obj_node),
    ArgKind("as_tensor", _NODE, lambda enc, v: schema.TensorArgument(name=_tensor_name(enc, v)),
            lambda dec, p: dec.node(p.name)),
    # -- plain values
    ArgKind("as_bool", (bool,), lambda enc, v: v, _dec_same),
    ArgKind("as_string", (str,), lambda enc, v: str(v), _dec_same),
    ArgKind("as_int", (int,), lambda enc, v: v, _dec_same, lambda enc, v: type(v) is int),
    ArgKind("as_float", (float,), lambda enc, v: v, _dec_same, lambda enc, v: type(v) is float),
    ArgKind("as_complex", (complex,), lambda enc, v: schema.ComplexValue(real=v.real, imag=v.imag),
            lambda dec, p: complex(p.real, p.imag)),
    ArgKind("as_none", (type(None),), lambda enc, v: True, lambda dec, p: None),
    ArgKind("as_string_to_argument", (dict,), _enc_dict, _dec_dict),
    # -- lists and tuples (tried in this order; empty ones are typed by the op schema)
    ArgKind("as_bools", _SEQ, lambda enc, v: list(v), _dec_list, _all_of_type(bool)),
    ArgKind("as_ints", _SEQ, lambda enc, v: list(v), _dec_list, _all_of_type(int)),
    ArgKind("as_floats", _SEQ, lambda enc, v: list(v), _dec_list, _all_of_type(float)),
    ArgKind("as_strings", _SEQ, lambda enc, v: list(v), _dec_list, _all_of_type(str)),
    ArgKind("as_sym_ints", _SEQ, lambda enc, v: [_enc_sym_int(enc, a) for a in v],
            lambda dec, p: [_dec_sym(dec, a) for a in p], _all(_sym_int_elem)),
    ArgKind("as_sym_floats", _SEQ, lambda enc, v: [_enc_sym_float(enc, a) for a in v],
            lambda dec, p: [_dec_sym(dec, a) for a in p], _all(_sym_float_elem)),
    ArgKind("as_sym_bools", _SEQ, lambda enc, v: [_enc_sym_bool(enc, a) for a in v],
            lambda dec, p: [_dec_sym(dec, a) for a in p], _all(_sym_bool_elem)),
    ArgKind("as_tensors", _SEQ,
            lambda enc, v: [schema.TensorArgument(name=_tensor_name(enc, a)) for a in v],
            lambda dec, p: [dec.node(a.name) for a in p],
            lambda enc, v: all(isinstance(a, Node) for a in v)),
    ArgKind("as_nested_tensors", _SEQ,
            lambda enc, v: [[schema.TensorArgument(name=_tensor_name(enc, t)) for t in inner] for inner in v],
            lambda dec, p: [[dec.node(a.name) for a in inner] for inner in p],
            _inner_lists_of(lambda x: isinstance(x, Node))),
    ArgKind("as_optional_tensors", _SEQ, _enc_optional_tensors,
            lambda dec, p: [_dec_optional_tensor(dec, a) for a in p],
            lambda enc, v: all(a is None or isinstance(a, Node) for a in v)),
    # PyTorch 2.13 only recognises tuples of ints here; lists of int lists (custom ops with
    # `int[][]` arguments) fail there, so we accept both (same wire form as PyTorch HEAD).
    ArgKind("as_int_lists", _SEQ, lambda enc, v: [list(t) for t in v],
            lambda dec, p: [tuple(t) for t in p], _inner_lists_of(lambda x: type(x) is int)),
    ArgKind("as_float_lists", _SEQ, lambda enc, v: [list(t) for t in v],
            lambda dec, p: [list(t) for t in p], _inner_lists_of(lambda x: isinstance(x, float))),
    # -- torch enums and objects
    ArgKind("as_scalar_type", (torch.dtype,), lambda enc, v: tables.dtype_to_wire(v),
            lambda dec, p: tables.dtype_from_wire(p)),
    ArgKind("as_device", (torch.device,), lambda enc, v: tables.device_to_wire(v),
            lambda dec, p: tables.device_from_wire(p)),
    ArgKind("as_memory_format", (torch.memory_format,), lambda enc, v: tables.memory_format_to_wire(v),
            lambda dec, p: tables.memory_format_from_wire(p)),
    ArgKind("as_layout", (torch.layout,), lambda enc, v: tables.layout_to_wire(v),
            lambda dec, p: tables.layout_from_wire(p)),
    ArgKind("as_operator", (torch._ops.OpOverload, torch._ops.HigherOrderOperator),
            lambda enc, v: enc.operator_name(v), lambda dec, p: dec.operator(p)),
    # Declared by the schema but never written by PyTorch; read for completeness.
    ArgKind("as_optional_tensor", (), None, _dec_optional_tensor),
)

_DECODERS: dict[str, Callable] = {row.tag: row.decode for row in ROWS}
_candidates_cache: dict[type, tuple[ArgKind, ...]] = {}

# How an empty list is written, by the element type of the op-schema argument.
EMPTY_LIST_TAGS: tuple[tuple[type, str], ...] = (
    (torch.BoolType, "as_bools"),
    (torch.IntType, "as_ints"),
    (torch.FloatType, "as_floats"),
    (torch.StringType, "as_strings"),
    (torch.TensorType, "as_tensors"),
)


def _candidates(t: type) -> tuple[ArgKind, ...]:
    try:
        return _candidates_cache[t]
    except KeyError:
        found = tuple(row for row in ROWS if row.accepts and issubclass(t, row.accepts))
        if t is not Node:  # `object` in as_custom_obj's accepts is only for opaque values
            found = tuple(r for r in found if r.tag != "as_custom_obj") + tuple(
                r for r in found if r.tag == "as_custom_obj"
            )
        _candidates_cache[t] = found
        return found


def _empty_list(arg_type) -> schema.Argument:
    if arg_type is None:
        # Higher-order ops carry no schema: PyTorch writes an empty tensor list.
        log.debug("empty list argument without a schema type: writing as_tensors=[]")
        return schema.Argument(as_tensors=[])
    if isinstance(arg_type, torch.OptionalType):
        arg_type = arg_type.getElementType()
    if not isinstance(arg_type, torch.ListType):
        raise SerializeError(f"Empty list for a non-list schema type {arg_type}")
    elem = arg_type.getElementType()
    if isinstance(elem, torch.OptionalType):
        elem = elem.getElementType()
    for torch_type, tag in EMPTY_LIST_TAGS:
        if isinstance(elem, torch_type):
            return schema.Argument(**{tag: []})
    if isinstance(elem, torch.ListType):  # int[][] / float[][]: PyTorch HEAD's form
        inner = elem.getElementType()
        if isinstance(inner, torch.IntType):
            return schema.Argument(as_int_lists=[])
        if isinstance(inner, torch.FloatType):
            return schema.Argument(as_float_lists=[])
    raise SerializeError(f"Empty list with type {elem} nyi.")


def encode_argument(enc, value: Any, arg_type=None) -> schema.Argument:
    """The ``schema.Argument`` for one call argument (``arg_type``: its op-schema type, if any)."""
    t = type(value)
    is_seq = isinstance(value, (list, tuple))
    if is_seq and not value:
        return _empty_list(arg_type)
    for row in _candidates(t):
        if row.match is None or row.match(enc, value):
            payload = row.encode(enc, value)
            if type(payload) is _LOWERED_MODULE:
                return schema.Argument(as_string=str(payload))
            return _Argument_of(row.tag, payload)
    if is_seq:
        raise SerializeError(f"Unsupported list/tuple argument type: {[type(a) for a in value]}")
    raise SerializeError(f"Unsupported argument type: {t} with schema arg_type {arg_type}")


def decode_argument(dec, arg: schema.Argument) -> Any:
    """The FX-side value of a ``schema.Argument`` (nodes, literals, dtypes, subgraphs...)."""
    try:
        fn = _DECODERS[arg.type]
    except KeyError:
        raise SerializeError(f"Unhandled argument {arg}") from None
    return fn(dec, arg.value)
