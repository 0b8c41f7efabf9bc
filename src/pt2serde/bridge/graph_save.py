"""FX graphs to ``schema.Graph``: nodes, their outputs, and the named value tables.

The graph's values live in five tables (tensors, sym ints, sym floats, sym bools,
custom objects) keyed by name; node inputs and outputs refer to those names.
``operator.getitem`` nodes are not written: a multi-output node lists its outputs under
the names of its getitem users (``<node>_unused_<i>`` where there is none).
"""

from __future__ import annotations

import inspect
import json
import math
import operator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx
from torch.export.graph_signature import CustomObjArgument

from .. import schema

from . import signature, symbolic, tables
from .arguments import encode_argument, get_opaque_type_name, is_opaque_value
from ..errors import SerializeError
from ..extensions import extension_handler_for, registered_extension_types
from .metadata import encode_metadata
from .tensors import tensor_meta_to_wire

__all__ = ["GraphModuleSerializer", "SYM_OPS", "operator_name"]

#: Python-level symbolic operators that appear as call targets (sym nodes).
SYM_OPS = frozenset({
    operator.eq, operator.ne, operator.le, operator.ge, operator.lt, operator.gt,
    operator.neg, operator.pos, operator.mul, operator.add, operator.sub,
    operator.floordiv, operator.mod, operator.pow, operator.truediv,
    operator.and_, operator.or_, operator.lshift, operator.rshift,
    math.trunc, torch.sym_not, torch.sym_int, torch.sym_float, torch.sym_ite,
    torch.sym_max, torch.sym_min, torch.sym_sqrt,
})

_SYM_TYPES = (torch.SymInt, torch.SymFloat, torch.SymBool)
_param_names_cache: dict[Any, list[str]] = {}


def operator_name(target: Any) -> str:
    """The wire name of a call target: ``torch.ops.aten.add.Tensor``, ``_operator.mul``, ..."""
    if isinstance(target, str):
        return target
    module = target.__module__ or ""
    if module.startswith("torch._ops"):
        module = "torch.ops" + module[len("torch._ops"):]
    return f"{module}.{target.__name__}"


def _op_schema(target: Any):
    if isinstance(target, torch._ops.OpOverload):
        return target._schema
    handler = extension_handler_for(target)
    if handler is not None:
        return handler.op_schema(target)
    raise SerializeError(f"Cannot find schema for {type(target)}")


def _is_single_tensor_list_return(op_schema) -> bool:
    returns = op_schema.returns
    if len(returns) != 1:
        return False
    rt = returns[0].real_type
    return isinstance(rt, torch.ListType) and isinstance(rt.getElementType(), torch.TensorType)


def _param_names(op: Any) -> list[str]:
    try:
        return _param_names_cache[op]
    except KeyError:
        pass
    if isinstance(op, torch._ops.OpOverload):
        names = [a.name for a in op._schema.arguments]
    else:
        try:
            names = list(inspect.signature(op).parameters)
        except (TypeError, ValueError) as e:
            raise SerializeError(f"Cannot name the arguments of symbolic op {op}: {e}") from None
    _param_names_cache[op] = names
    return names


@dataclass
class _GraphState:
    inputs: list[schema.Argument] = field(default_factory=list)
    outputs: list[schema.Argument] = field(default_factory=list)
    nodes: list[schema.Node] = field(default_factory=list)
    tensor_values: dict[str, schema.TensorMeta] = field(default_factory=dict)
    sym_int_values: dict[str, schema.SymInt] = field(default_factory=dict)
    sym_bool_values: dict[str, schema.SymBool] = field(default_factory=dict)
    sym_float_values: dict[str, schema.SymFloat] = field(default_factory=dict)
    custom_obj_values: dict[str, schema.CustomObjArgument] = field(default_factory=dict)
    is_single_tensor_return: bool = False

    def to_graph(self) -> schema.Graph:
        return schema.Graph(
            inputs=self.inputs,
            outputs=self.outputs,
            nodes=self.nodes,
            tensor_values=self.tensor_values,
            sym_int_values=self.sym_int_values,
            sym_bool_values=self.sym_bool_values,
            is_single_tensor_return=self.is_single_tensor_return,
            custom_obj_values=self.custom_obj_values,
            sym_float_values=self.sym_float_values,
        )


class GraphModuleSerializer:
    """Writes one exported ``GraphModule`` (and its subgraphs) as ``schema.GraphModule``.

    ``GraphModuleSerializer(None, None).serialize_inputs(op, args, kwargs)`` encodes a
    single call against ``op``'s schema, which is what inductor's extern kernels use.
    """

    def __init__(self, graph_signature=None, module_call_graph=None) -> None:
        self.graph_signature = graph_signature
        self.module_call_graph = module_call_graph
        self.state = _GraphState()
        self.custom_objs: dict[str, Any] = {}
        self.duplicate_getitem_nodes: dict[str, str] = {}
        self.treespec_namedtuple_fields: dict[str, schema.NamedTupleDef] = {}

    def __repr__(self) -> str:
        return (
            f"<GraphModuleSerializer nodes={len(self.state.nodes)} "
            f"tensors={len(self.state.tensor_values)} custom_objs={len(self.custom_objs)}>"
        )

    # ------------------------------------------------------------- whole module

    def serialize(self, graph_module: torch.fx.GraphModule) -> schema.GraphModule:
        graph = self.serialize_graph(graph_module)
        metadata = {}
        if custom := graph_module.meta.get("custom"):
            try:
                metadata["custom"] = json.dumps(custom)
            except Exception as e:  # noqa: BLE001
                raise SerializeError(f"Failed to serialize custom metadata for graph with error {e}") from e
        return schema.GraphModule(
            graph=graph,
            signature=signature.signature_to_wire(self, self.graph_signature),
            module_call_graph=signature.module_call_graph_to_wire(self, self.module_call_graph),
            metadata=metadata,
            treespec_namedtuple_fields=self.treespec_namedtuple_fields,
        )

    def serialize_graph(self, graph_module: torch.fx.GraphModule) -> schema.Graph:
        if not isinstance(graph_module, torch.fx.GraphModule):
            raise SerializeError(f"expected a GraphModule, got {type(graph_module).__name__}")
        handlers = {
            "placeholder": self._placeholder,
            "call_function": self._call_function,
            "get_attr": lambda node: None,  # subgraphs are written where they are used
            "output": self._output,
        }
        for node in graph_module.graph.nodes:
            try:
                handler = handlers[node.op]
            except KeyError:
                raise SerializeError(f"Unsupported node kind {node.op!r} ({node.name})") from None
            try:
                handler(node)
            except SerializeError as e:
                raise SerializeError(f"Failed serializing node {node.name} ({node.format_node()}): {e}",
                                     node=node.name) from e
            except Exception as e:  # noqa: BLE001 - report any failure with the node it happened on
                raise SerializeError(
                    f"Failed serializing node {node.name} ({node.format_node()}): {type(e).__name__}: {e}"
                ) from e
        return self.state.to_graph()

    @contextmanager
    def _fresh_state(self):
        saved, self.state = self.state, _GraphState()
        try:
            yield
        finally:
            self.state = saved

    def encode_subgraph(self, gm: torch.fx.GraphModule) -> schema.Graph:
        with self._fresh_state():
            return self.serialize_graph(gm)

    # ------------------------------------------------------------- helpers used by rows

    def operator_name(self, target: Any) -> str:
        return operator_name(target)

    def register_custom_obj(self, obj: Any) -> schema.CustomObjArgument:
        """A torchbind object or opaque value passed directly as an argument (not lifted)."""
        if isinstance(obj, torch._C.ScriptObject):
            if not (obj._has_method("__getstate__") and obj._has_method("__setstate__")):
                raise SerializeError(
                    f"Unable to serialize custom class {obj}. Please define serialization methods via def_pickle()."
                )
            class_fqn = obj._type().qualified_name()
        elif is_opaque_value(obj):
            class_fqn = get_opaque_type_name(type(obj))
        else:
            raise SerializeError(f"Unsupported argument type: {type(obj)}")
        name = f"_custom_obj_{len(self.custom_objs)}"
        self.custom_objs[name] = obj
        return schema.CustomObjArgument(name=name, class_fqn=class_fqn)

    def serialize_input(self, value: Any, arg_type=None) -> schema.Argument:
        return encode_argument(self, value, arg_type)

    def serialize_inputs(self, target: Any, args, kwargs=None) -> list[schema.NamedArgument]:
        """Match ``args``/``kwargs`` to ``target``'s op schema; arguments left at their default are omitted."""
        from torch._higher_order_ops.torchbind import CallTorchBind

        if isinstance(target, CallTorchBind):
            op_schema = target.schema(args[0], args[1])
        elif isinstance(target, (torch._ops.OpOverload, *registered_extension_types())):
            op_schema = _op_schema(target)
        else:
            raise SerializeError(f"expected an OpOverload or a registered extension op, got {type(target).__name__}")
        kwargs = kwargs or {}
        out = []
        for i, arg in enumerate(op_schema.arguments):
            if arg.name in kwargs:
                out.append(schema.NamedArgument(
                    name=arg.name, arg=encode_argument(self, kwargs[arg.name], arg.type),
                    kind=schema.ArgumentKind.KEYWORD,
                ))
            elif not arg.kwarg_only and i < len(args):
                out.append(schema.NamedArgument(
                    name=arg.name, arg=encode_argument(self, args[i], arg.type),
                    kind=schema.ArgumentKind.POSITIONAL,
                ))
        return out

    def _hop_inputs(self, args, kwargs) -> list[schema.NamedArgument]:
        """Inputs of a call without an op schema: unnamed positionals, then keywords."""
        out = [
            schema.NamedArgument(name="", arg=encode_argument(self, a), kind=schema.ArgumentKind.POSITIONAL)
            for a in args
        ]
        out.extend(
            schema.NamedArgument(name=k, arg=encode_argument(self, a), kind=schema.ArgumentKind.KEYWORD)
            for k, a in kwargs.items()
        )
        return out

    # ------------------------------------------------------------- node kinds

    def _placeholder(self, node: torch.fx.Node) -> None:
        val = node.meta.get("val")
        st = self.state
        if isinstance(val, torch.Tensor):
            arg = schema.Argument(as_tensor=self._tensor_output(node.name, val))
        elif isinstance(val, torch.SymInt):
            arg = schema.Argument(as_sym_int=self._sym_output("sym_int_values", node.name, val))
        elif isinstance(val, torch.SymFloat):
            # PyTorch 2.13 cannot write these; the wire format can.
            arg = schema.Argument(as_sym_float=self._sym_output("sym_float_values", node.name, val))
        elif isinstance(val, (int, bool, str, float, type(None))):
            arg = encode_argument(self, val)
        elif isinstance(val, CustomObjArgument):
            arg = schema.Argument(as_custom_obj=schema.CustomObjArgument(name=node.name, class_fqn=val.class_fqn))
            st.custom_obj_values[node.name] = schema.CustomObjArgument(name=val.name, class_fqn=val.class_fqn)
        else:
            raise SerializeError(f"Unsupported graph input {node.name} of type {type(val).__name__}")
        st.inputs.append(arg)

    def _output(self, node: torch.fx.Node) -> None:
        (value,) = node.args
        if isinstance(value, torch.fx.Node):
            self.state.is_single_tensor_return = True
            self.state.outputs = [encode_argument(self, value)]
        elif isinstance(value, (tuple, list)):
            self.state.outputs = [encode_argument(self, a) for a in value]
        else:
            raise SerializeError(f"graph output must be a node, tuple or list, got {type(value).__name__}")

    def _call_function(self, node: torch.fx.Node) -> None:
        target = node.target
        if target is operator.getitem:
            return  # folded into the producer's outputs
        val = node.meta.get("val")
        common = dict(name=node.name, target=operator_name(target), metadata=encode_metadata(self, node))
        if target in SYM_OPS or isinstance(val, _SYM_TYPES):
            if node.kwargs:
                raise SerializeError(f"symbolic op {target} takes no keyword arguments")
            names = _param_names(target)
            inputs = [
                schema.NamedArgument(name=n, arg=encode_argument(self, a), kind=schema.ArgumentKind.POSITIONAL)
                for n, a in zip(names, node.args)
            ]
            ex = schema.Node(inputs=inputs, outputs=[self._single_output(node.name, val)], **common)
        elif isinstance(target, torch._ops.OpOverload):
            ex = schema.Node(
                inputs=self.serialize_inputs(target, node.args, node.kwargs),
                outputs=self._schema_outputs(node),
                **common,
            )
        elif isinstance(target, torch._ops.HigherOrderOperator):
            ex = self._hop_node(node, common)
        elif extension_handler_for(target) is not None:
            handler = extension_handler_for(target)
            ns, op_name = handler.namespace(), handler.to_op_name(target)
            if not isinstance(ns, str) or not isinstance(op_name, str) or ":" in ns or ":" in op_name:
                raise SerializeError(
                    f"extension namespace and op name must be strings without ':', got {ns!r} and {op_name!r}"
                )
            common["target"] = f"#{ns}:{op_name}"
            ex = schema.Node(
                inputs=self.serialize_inputs(target, node.args, node.kwargs),
                outputs=self._schema_outputs(node),
                **common,
            )
        elif callable(target):  # pre-dispatch wrappers (vmap / jvp nesting, grad mode)
            ex = schema.Node(
                inputs=self._hop_inputs(node.args, node.kwargs), outputs=self._hop_outputs(node), **common
            )
        else:
            raise SerializeError(f"Serializing {target} is not supported")
        self.state.nodes.append(ex)

    def _hop_node(self, node: torch.fx.Node, common: dict) -> schema.Node:
        from torch._higher_order_ops import aoti_call_delegate
        from torch._higher_order_ops.triton_kernel_wrap import triton_kernel_wrapper_functional

        target = node.target
        if target is aoti_call_delegate:
            return self._aoti_node(node, common)
        if target is triton_kernel_wrapper_functional:
            from .triton import triton_node

            return triton_node(self, node, common)
        return schema.Node(
            inputs=self._hop_inputs(node.args, node.kwargs),
            outputs=self._hop_outputs(node),
            is_hop_single_tensor_return=isinstance(node.meta.get("val"), torch.Tensor),
            **common,
        )

    def _aoti_node(self, node: torch.fx.Node, common: dict) -> schema.Node:
        args = list(node.args)
        lowered = getattr(node.graph.owning_module, args[0].name)
        args[0] = lowered.aoti_path  # the compiled module itself cannot be written
        args[1] = None  # nor its stateful original graph module
        if isinstance(args[2], (list, tuple)):
            args[2] = [
                w for w in args[2]
                if not (isinstance(w, torch.fx.Node) and isinstance(w.meta.get("val"), CustomObjArgument))
            ]
        outputs = [
            self._tensor_output(self._output_name(node, i), t) for i, t in enumerate(node.meta.get("val"))
        ]
        return schema.Node(
            inputs=self._hop_inputs(args, node.kwargs),
            outputs=[schema.Argument(as_tensors=outputs)],
            is_hop_single_tensor_return=False,
            **common,
        )

    # ------------------------------------------------------------- outputs

    def _tensor_output(self, name: str, val: torch.Tensor) -> schema.TensorArgument:
        if name in self.state.tensor_values:
            raise SerializeError(f"tensor value {name!r} is defined twice")
        self.state.tensor_values[name] = tensor_meta_to_wire(val)
        return schema.TensorArgument(name=name)

    _SYM_TABLES = {
        "sym_int_values": (symbolic.sym_int_to_wire, schema.SymIntArgument),
        "sym_float_values": (symbolic.sym_float_to_wire, schema.SymFloatArgument),
        "sym_bool_values": (symbolic.sym_bool_to_wire, schema.SymBoolArgument),
    }

    def _sym_output(self, table: str, name: str, val):
        values = getattr(self.state, table)
        if name in values:
            raise SerializeError(f"symbolic value {name!r} is defined twice")
        to_wire, arg_cls = self._SYM_TABLES[table]
        values[name] = to_wire(val)
        return arg_cls(as_name=name)

    def _single_output(self, name: str, val) -> schema.Argument:
        if val is None:
            return schema.Argument(as_none=True)
        if isinstance(val, torch.Tensor):
            return schema.Argument._of("as_tensor", self._tensor_output(name, val))
        if isinstance(val, (bool, torch.SymBool)):
            return schema.Argument(as_sym_bool=self._sym_output("sym_bool_values", name, val))
        if isinstance(val, (int, torch.SymInt)):
            return schema.Argument(as_sym_int=self._sym_output("sym_int_values", name, val))
        if isinstance(val, (float, torch.SymFloat)):
            return schema.Argument(as_sym_float=self._sym_output("sym_float_values", name, val))
        raise SerializeError(f"Unable to serialize output {val}")

    def _getitem_user(self, node: torch.fx.Node, index: int) -> torch.fx.Node | None:
        """The getitem user reading ``index`` of ``node``; later duplicates alias the first."""
        found = None
        for user in node.users:
            if user.target is not operator.getitem:
                raise SerializeError(f"{user} uses the multi-output node {node.name} without getitem")
            if user.args[1] == index:
                if found is None:
                    found = user
                else:
                    self.duplicate_getitem_nodes[user.name] = found.name
        return found

    def _output_name(self, node: torch.fx.Node, index: int) -> str:
        user = self._getitem_user(node, index)
        return f"{node.name}_unused_{index}" if user is None else user.name

    def _tensor_list(self, node: torch.fx.Node, index: int, vals) -> schema.Argument:
        """Element ``index`` of ``node`` is a list of tensors, read through nested getitems."""
        user = self._getitem_user(node, index)
        tensors = []
        for j, t in enumerate(vals):
            if t is None:
                continue
            if not isinstance(t, torch.Tensor):
                raise SerializeError(f"Serialize list output with type {type(t)} nyi")
            name = f"{node.name}_unused_{index}_{j}" if user is None else self._output_name(user, j)
            tensors.append(self._tensor_output(name, t))
        return schema.Argument(as_tensors=tensors)

    def _schema_outputs(self, node: torch.fx.Node) -> list[schema.Argument]:
        op_schema = _op_schema(node.target)
        returns = op_schema.returns
        if not returns:
            return []
        val = node.meta["val"]
        if _is_single_tensor_list_return(op_schema):
            return [schema.Argument(as_tensors=[
                self._tensor_output(self._output_name(node, i), t) for i, t in enumerate(val)
            ])]
        if len(returns) == 1:
            return [self._single_output(node.name, val)]
        outputs = []
        for i, (v, ret) in enumerate(zip(val, returns)):
            if v is None:
                outputs.append(schema.Argument(as_none=True))
            elif isinstance(v, torch.Tensor):
                outputs.append(self._single_output(self._output_name(node, i), v))
            elif isinstance(v, list):
                outputs.append(self._tensor_list(node, i, v))
            elif isinstance(v, (int, float, bool, *_SYM_TYPES)):
                outputs.append(self._single_output(self._output_name(node, i), v))
            else:
                raise SerializeError(f"Unhandled output type {type(v)} from node {node.format_node()}")
        return outputs

    def _hop_outputs(self, node: torch.fx.Node) -> list[schema.Argument]:
        val = node.meta["val"]
        if isinstance(val, tuple):
            outputs = []
            for i, v in enumerate(val):
                if isinstance(v, list):
                    outputs.append(self._tensor_list(node, i, v))
                else:
                    outputs.append(self._single_output(self._output_name(node, i), v))
            return outputs
        if isinstance(val, dict):  # triton: outputs keyed by argument index
            tensors = []
            for i, t in val.items():
                if not isinstance(t, torch.Tensor):
                    raise SerializeError(f"Serialize list output with type {type(t)} nyi")
                tensors.append(self._tensor_output(self._output_name(node, i), t))
            return [schema.Argument(as_tensors=tensors)]
        return [self._single_output(node.name, val)]
