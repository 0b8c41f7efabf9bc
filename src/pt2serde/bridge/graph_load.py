"""``schema.Graph`` back to an FX graph, with fake-tensor ``val`` metadata.

The inverse of :mod:`pt2serde.bridge.graph_save`: placeholders for the inputs, one ``call_function``
node per serialized node (plus ``getitem`` nodes for multi-output nodes), ``get_attr``
nodes and submodules for subgraphs, and the output node. Values are created when the
node defining them is created, so symbolic shapes appear in program order, after the
runtime asserts that refine them.
"""

from __future__ import annotations

import keyword
import logging
import operator
from contextlib import contextmanager
from typing import Any

import torch
import torch.fx

from .. import schema
from .arguments import decode_argument
from ..errors import SerializeError
from ..format.value_refs import (CONSTANT_INPUTS, builtin_name_clashes, constant_input_name, graph_input_problem,
                                 hop_call_problem, single_return_problem)
from .graph_save import SYM_OPS
from .metadata import decode_metadata
from .symbolic import SymbolicContext
from .targets import resolve_meta_function, resolve_target

__all__ = ["GraphDeserializer"]

log = logging.getLogger(__name__)

_SYM_ARGS = (schema.SymIntArgument, schema.SymFloatArgument, schema.SymBoolArgument)
_LIST_OUTPUTS = ("as_tensors", "as_sym_ints", "as_sym_floats", "as_ints", "as_floats",
                 "as_strings", "as_bools", "as_sym_bools")


class _Scope:
    """The names of one graph level (the top graph or a subgraph)."""

    def __init__(self, graph: schema.Graph) -> None:
        self.graph = torch.fx.Graph()
        self.module = torch.nn.Module()
        self.nodes: dict[str, torch.fx.Node] = {}
        #: names of the placeholders of literal inputs (not values: nothing refers to them)
        self.constant_inputs: set[str] = set()
        self.wire = graph
        self._used: set[str] | None = None

    @property
    def used(self) -> set[str]:
        """Every value name an argument of this level refers to (walked on first need)."""
        if self._used is None:
            self._used = _used_names(self.wire)
        return self._used


def _ref_names(value, out: set) -> None:
    """Collect the value names an argument payload refers to."""
    if isinstance(value, (schema.TensorArgument, schema.CustomObjArgument)):
        out.add(value.name)
    elif isinstance(value, (*_SYM_ARGS,)):
        if value.type == "as_name":
            out.add(value.as_name)
    elif isinstance(value, schema.OptionalTensorArgument):
        if value.type == "as_tensor":
            out.add(value.as_tensor.name)
    elif isinstance(value, schema.Argument):
        if value.type != "as_graph":  # a subgraph's names are its own
            _ref_names(value.value, out)
    elif isinstance(value, list):
        for v in value:
            _ref_names(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            _ref_names(v, out)


def _used_names(graph: schema.Graph) -> set[str]:
    used: set[str] = set()
    for node in graph.nodes:
        for inp in node.inputs:
            _ref_names(inp.arg, used)
    for out in graph.outputs:
        _ref_names(out, used)
    return used


def _call_node(g: torch.fx.Graph, target: Any, args: tuple, kwargs: dict | None, name: str | None) -> torch.fx.Node:
    """``g.create_node("call_function", ...)`` without fx's walk of every node's arguments.

    ``create_node`` walks the arguments with pytree (about 3% of a large load) only to warn
    about raw ``SymInt``/``SymFloat``/``SymBool`` values among them; a loaded graph has none
    (a symbolic argument is the node that computes it, a literal a plain number). The node is
    created without arguments and given them through fx's public ``args``/``kwargs`` setters.
    """
    node = g.create_node("call_function", target, None, None, name)
    if kwargs:
        node.kwargs = kwargs
    if args:
        node.args = args
    return node


class GraphDeserializer:
    """Builds FX graphs from ``schema.Graph`` documents of one program.

    ``constants`` (name -> object) resolves non-lifted custom objects; ``input_specs`` (the
    document's) name the top graph's literal inputs (``value_refs.constant_input_name``).
    """

    def __init__(self, symbols: SymbolicContext, *, constants: dict[str, Any],
                 input_specs: list[schema.InputSpec] | None = None) -> None:
        self.symbols = symbols
        self.constants = constants
        #: the document's input specs: they name the top graph's literal inputs
        self.input_specs: list[schema.InputSpec] = input_specs or []
        self.scope: _Scope | None = None
        self._top_scope: _Scope | None = None
        self._meta_cache: dict = {}
        #: per load: target name -> resolved callable (not extension ops: their handler
        #: resolves each node), operator -> argument plan (the dispatcher's registry is asked
        #: once per distinct target, not once per node)
        self._targets: dict[str, Any] = {}
        self._plans: dict[torch._ops.OpOverload, tuple] = {}

    def __repr__(self) -> str:
        n = 0 if self.scope is None else len(self.scope.nodes)
        return f"<GraphDeserializer nodes={n} {self.symbols!r}>"

    # ------------------------------------------------- surface used by the argument rows

    def node(self, name: str) -> torch.fx.Node:
        try:
            return self.scope.nodes[name]
        except KeyError:
            raise SerializeError(f"value {name!r} is used before it is defined") from None

    def subgraph(self, arg: schema.GraphArgument) -> torch.fx.Node:
        outer = self.scope
        with self._new_scope(arg.graph) as inner:
            self._build(arg.graph)
            gm = _graph_module(inner.module, inner.graph)
        outer.module.register_module(arg.name, gm)  # checked by codegen_fields
        return outer.graph.create_node("get_attr", arg.name, name=arg.name)

    def custom_obj(self, arg: schema.CustomObjArgument) -> Any:
        if self.scope is not None and arg.name in self.scope.nodes:  # lifted: a graph placeholder
            return self.scope.nodes[arg.name]
        try:
            return self.constants[arg.name]
        except KeyError:
            raise SerializeError(f"custom object {arg.name!r} ({arg.class_fqn}) is not among the constants") from None

    def operator(self, name: str) -> Any:
        return resolve_target(name)

    def meta_function(self, name: str) -> Any:
        return resolve_meta_function(name)

    # ------------------------------------------------------------------ building

    @contextmanager
    def _new_scope(self, graph: schema.Graph):
        # Unbacked symbols first seen in a scope must be bound by a node of that scope.
        saved = self.scope, self.symbols.unbacked
        self.scope, self.symbols.unbacked = _Scope(graph), set()
        try:
            yield self.scope
        finally:
            self.scope, self.symbols.unbacked = saved

    def deserialize(self, graph: schema.Graph) -> tuple[torch.nn.Module, torch.fx.Graph]:
        """The root module (holding subgraph submodules) and the FX graph."""
        with self._new_scope(graph) as scope:
            self._top_scope = scope
            self._build(graph)
            return scope.module, scope.graph

    def _value(self, name: str) -> Any:
        g = self.scope.wire
        if name in g.tensor_values:
            return self.symbols.fake_tensor(g.tensor_values[name])
        if name in g.sym_int_values:
            return self.symbols.sym_int(g.sym_int_values[name])
        if name in g.sym_float_values:
            return self.symbols.sym_float(g.sym_float_values[name])
        if name in g.sym_bool_values:
            return self.symbols.sym_bool(g.sym_bool_values[name])
        if name in g.custom_obj_values:
            from torch.export.graph_signature import CustomObjArgument

            c = g.custom_obj_values[name]
            return CustomObjArgument(name=c.name, class_fqn=c.class_fqn)
        raise SerializeError(f"value {name!r} has no entry in the graph's value tables")

    def _bind(self, name: str, fx_node: torch.fx.Node) -> None:
        """Give ``fx_node`` the serialized name and its value."""
        scope = self.scope
        if name in scope.nodes or name in scope.constant_inputs:
            raise SerializeError(f"Node {name} has already been deserialized before.")
        if fx_node.name != name:  # the namespace picked another (Node.__setattr__ is costly)
            fx_node.name = name
        scope.nodes[name] = fx_node
        fx_node.meta["val"] = self._value(name)

    def _build(self, graph: schema.Graph) -> None:
        for i, arg in enumerate(graph.inputs):
            self._placeholder(i, arg)
        for i, wire_node in enumerate(graph.nodes):
            try:
                self._node(wire_node)
            except SerializeError as e:
                label = wire_node.name or wire_node.target
                raise SerializeError(f"Failed deserializing node {label} ({wire_node.target}): {e}", node=label) from e
            except Exception as e:  # noqa: BLE001 - torch raised: report it with the node
                label = wire_node.name or wire_node.target
                raise SerializeError(
                    f"Failed deserializing node {label} ({wire_node.target}): {type(e).__name__}: {e}"
                ) from e
        self._outputs(graph)
        for builtin, other in builtin_name_clashes([*self.scope.nodes, *self.scope.constant_inputs])[:1]:
            raise SerializeError(f"value {other!r} clashes with value {builtin!r}: fx writes a value named after "
                                 f"a Python builtin as {builtin!r} + '_<n>'")
        self._bind_unbacked()
        if self.symbols.unbacked:
            names = ", ".join(sorted(str(s) for s in self.symbols.unbacked))
            # as torch.export.load: a symbol only an output's storage offset mentions (while_loop)
            log.debug("unbacked symbols %s are never bound by a node of the graph", names)

    def _placeholder(self, index: int, arg: schema.Argument) -> None:
        scope = self.scope
        tag = arg.type
        if problem := graph_input_problem(arg):  # the rule validate's graph walk applies
            raise SerializeError(problem)
        if tag in ("as_tensor", "as_custom_obj"):
            name = arg.value.name
        elif tag in CONSTANT_INPUTS:
            name = constant_input_name(self.input_specs if scope is self._top_scope else [], index)
            if name in scope.nodes or name in scope.constant_inputs:  # `def forward(self, x, x)`
                raise SerializeError(f"graph input name {name!r} is defined twice")
            scope.constant_inputs.add(name)
            node = scope.graph.placeholder(name)  # checked by codegen_fields
            if node.name != name:  # the namespace picked another: the node is named as its parameter
                node.name = name
            node.meta["val"] = decode_argument(self, arg)
            return
        else:  # a symbolic value by name
            name = arg.value.as_name
        node = scope.graph.placeholder(name)  # checked by codegen_fields
        self._bind(name, node)

    def _outputs(self, graph: schema.Graph) -> None:
        values = []
        for out in graph.outputs:
            tag = out.type
            if tag == "as_tensor":
                values.append(self.node(out.as_tensor.name))
            elif tag in ("as_sym_int", "as_sym_float", "as_sym_bool") and out.value.type == "as_name":
                values.append(self.node(out.value.as_name))
            elif tag in ("as_int", "as_float", "as_bool", "as_none", "as_string"):
                values.append(decode_argument(self, out))
            else:
                raise SerializeError(f"Unable to deserialize output node {out}")
        g = self.scope.graph
        if graph.is_single_tensor_return:
            if problem := single_return_problem(graph):  # the rule validate's graph walk applies
                raise SerializeError(problem)
            out_node = g.output(values[0])
            out_node.meta["val"] = values[0].meta["val"] if isinstance(values[0], torch.fx.Node) else values[0]
        else:
            out_node = g.output(tuple(values))
            out_node.meta["val"] = tuple(v.meta["val"] if isinstance(v, torch.fx.Node) else v for v in values)

    def _bind_unbacked(self) -> None:
        from torch.fx.experimental.symbolic_shapes import _free_unbacked_symbols_with_path

        pending = self.symbols.unbacked
        if not pending:
            return
        for node in self.scope.graph.nodes:
            val = node.meta.get("val")
            if val is None:
                continue
            bindings = _free_unbacked_symbols_with_path(
                val, (), shape_env=self.symbols.shape_env, pending=pending, simplify=True
            )
            if bindings:
                node.meta["unbacked_bindings"] = bindings
            if not pending:
                break

    # ------------------------------------------------------------------ nodes

    def _node(self, wire: schema.Node) -> None:
        target = self._targets.get(wire.target) if type(wire.target) is str else None
        if target is None:
            target = resolve_target(wire.target)
            if not wire.target.startswith("#"):  # extension handlers are asked for every node, as before
                self._targets[wire.target] = target
        g = self.scope.graph
        metadata = decode_metadata(self, wire.metadata, self._meta_cache)
        if target in SYM_OPS or target is torch.ops.aten.item.default:
            out = wire.outputs[0] if len(wire.outputs) == 1 else None
            if out is None or not isinstance(out.value, _SYM_ARGS):
                raise SerializeError(f"symbolic op {wire.target} must have one symbolic output")
            args = tuple(decode_argument(self, i.arg) for i in wire.inputs)
            fx_node = _call_node(g, target, args, None, wire.name or out.value.as_name)
            self._bind(out.value.as_name, fx_node)
        elif isinstance(target, torch._ops.HigherOrderOperator):
            from torch._higher_order_ops.triton_kernel_wrap import triton_kernel_wrapper_functional

            if target is triton_kernel_wrapper_functional:
                raise SerializeError(
                    "deserialize nyi for torch._higher_order_ops.triton_kernel_wrap.triton_kernel_wrapper_functional"
                )
            args, kwargs = self._unnamed_inputs(wire.inputs)  # builds the subgraphs (their refusals first)
            if hop := hop_call_problem(wire.target, wire.inputs, wire.outputs, self.scope.wire.tensor_values):  # the rule validate's walk applies
                raise SerializeError(hop[0])
            for a in (*args, *kwargs.values()):
                if isinstance(a, torch.fx.Node) and a.op == "get_attr":
                    a.meta.update(metadata)  # subgraph get_attr nodes share the HOP's metadata
            name = wire.name or (
                wire.outputs[0].as_tensor.name
                if len(wire.outputs) == 1 and wire.outputs[0].type == "as_tensor"
                and wire.is_hop_single_tensor_return is not False
                else None
            )
            fx_node = _call_node(g, target, args, kwargs, name)
            self._outputs_of(wire, fx_node, metadata)
        elif isinstance(target, torch._ops.OpOverload) or _has_schema(target):
            op_schema = _schema_of(target)
            name = wire.name or (
                wire.outputs[0].as_tensor.name
                if len(op_schema.returns) == 1 and isinstance(op_schema.returns[0].real_type, torch.TensorType)
                and wire.outputs and wire.outputs[0].type == "as_tensor"
                else None
            )
            args, kwargs = self._schema_inputs(target, op_schema, wire.inputs)
            fx_node = _call_node(g, target, args, kwargs, name)
            self._outputs_of(wire, fx_node, metadata)
        elif callable(target):  # pre-dispatch helpers
            args, kwargs = self._unnamed_inputs(wire.inputs)  # builds the subgraphs (their refusals first)
            if hop := hop_call_problem(wire.target, wire.inputs, wire.outputs, self.scope.wire.tensor_values):  # the rule validate's walk applies
                raise SerializeError(hop[0])
            fx_node = _call_node(g, target, args, kwargs, wire.name or None)
            self._outputs_of(wire, fx_node, metadata)
        else:
            raise SerializeError(f"Unsupported target type for node {wire.name}: {type(target)}")

        fx_node.meta.update(metadata)
        if target is torch.ops.aten._assert_scalar.default:
            cond = fx_node.args[0]
            if isinstance(cond, torch.fx.Node) and isinstance(cond.meta.get("val"), torch.SymBool):
                self.symbols.shape_env.guard_or_defer_runtime_assert(cond.meta["val"].node.expr, "", fx_node)
        elif target is torch.ops.aten.sym_constrain_range_for_size.default:
            sym = fx_node.args[0].meta.get("val") if isinstance(fx_node.args[0], torch.fx.Node) else None
            if isinstance(sym, torch.SymInt):
                self.symbols.shape_env._constrain_range_for_size(sym.node.expr)
        fx_node.meta.setdefault("nn_module_stack", {})

    def _unnamed_inputs(self, inputs: list[schema.NamedArgument]) -> tuple[tuple, dict]:
        args, kwargs = [], {}
        for inp in inputs:
            value = decode_argument(self, inp.arg)
            if inp.kind == schema.ArgumentKind.POSITIONAL or inp.name == "":
                args.append(value)
            else:
                kwargs[inp.name] = value
        return tuple(args), kwargs

    def _plan(self, target, op_schema) -> tuple[frozenset, tuple]:
        """The schema's argument names, and per argument ``(name, required, is_keyword)``
        (required: no default and not keyword-only): what :meth:`_schema_inputs` asks of it
        for every node, worked out once per operator (for an extension op, at each node)."""
        cached = isinstance(target, torch._ops.OpOverload)  # extension ops: their handler's schema, each time
        plan = self._plans.get(target) if cached else None
        if plan is None:
            rows = tuple(
                (a.name, not a.has_default_value() and not a.kwarg_only, keyword.iskeyword(a.name))
                for a in op_schema.arguments
            )
            plan = (frozenset(r[0] for r in rows), rows)
            if cached:
                self._plans[target] = plan
        return plan

    def _schema_inputs(self, target, op_schema, inputs: list[schema.NamedArgument]) -> tuple[tuple, dict]:
        known, rows = self._plan(target, op_schema)
        given = {inp.name: inp for inp in inputs}
        if not known.issuperset(given):
            unknown = [n for n in given if n not in known]
            raise SerializeError(f"arguments {unknown} are not in the schema {op_schema}")
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        positional, keyword_kind = schema.ArgumentKind.POSITIONAL, schema.ArgumentKind.KEYWORD
        for name, required, is_keyword in rows:
            inp = given.get(name)
            if inp is None:
                if required:
                    raise SerializeError(f"required argument {name!r} of {op_schema.name} is missing")
                continue
            value = decode_argument(self, inp.arg)
            kind = inp.kind
            if kind == positional:
                args.append(value)
            elif kind == keyword_kind and not is_keyword:
                kwargs[name] = value
            elif is_keyword:
                # cannot be passed by keyword: it and everything before it go positionally
                args.extend(kwargs.values())
                kwargs.clear()
                args.append(value)
            elif required:
                args.append(value)  # old documents without ArgumentKind
            else:
                kwargs[name] = value
        return tuple(args), kwargs

    # ---------------------------------------------------------------- outputs

    def _outputs_of(self, wire: schema.Node, fx_node: torch.fx.Node, metadata: dict) -> None:
        outputs = wire.outputs
        if not outputs:
            if isinstance(fx_node.target, torch._ops.HigherOrderOperator):
                # a subgraph returning nothing (a no_grad region that only updates a parameter):
                # export's value is the empty tuple, which the verifier requires of every HOP node
                # (torch.export.load leaves it out and refuses its own file)
                fx_node.meta["val"] = ()
            return
        if (
            len(outputs) == 1
            and wire.target.startswith("torch.ops.higher_order")
            and not wire.is_hop_single_tensor_return
            and outputs[0].type != "as_none"
        ):
            value = outputs[0].value
            if not isinstance(value, (schema.TensorArgument, *_SYM_ARGS)):
                raise SerializeError(f"unexpected single output {outputs[0]} of {wire.target}")
            if (value.name if isinstance(value, schema.TensorArgument) else value.as_name) == fx_node.name:
                # the node itself is the value (call_torchbind returning a scalar): no getitem
                self._bind(fx_node.name, fx_node)
                return
            vals: list = []
            self._getitem(vals, fx_node, value, 0, metadata)
            fx_node.meta["val"] = tuple(vals)
            return
        if len(outputs) == 1:
            tag = outputs[0].type
            if tag == "as_tensor":
                self._bind(outputs[0].as_tensor.name, fx_node)
                return
            if isinstance(outputs[0].value, _SYM_ARGS):
                self._bind(outputs[0].value.as_name, fx_node)
                return
            if tag == "as_none":
                fx_node.meta["val"] = None
                fx_node._rename(f"{self.scope.graph._target_to_str(fx_node.target)}_unused")
                return
        vals = []
        if len(outputs) == 1:
            if not isinstance(outputs[0].value, list):
                raise SerializeError(f"cannot read output {outputs[0]} of {wire.target}")
            self._getitems(vals, fx_node, outputs[0].value, metadata)
        else:
            self._getitems(vals, fx_node, outputs, metadata)
        fx_node.meta["val"] = tuple(vals)

    def _getitem(self, vals: list, parent: torch.fx.Node, ref, index: int, metadata: dict) -> None:
        name = ref.name if isinstance(ref, schema.TensorArgument) else ref.as_name
        if self._absent(name, parent):  # the original graph had no getitem for this output
            vals.append(self._value(name))
            return
        node = _call_node(self.scope.graph, operator.getitem, (parent, index), None, name)
        self._bind(name, node)
        vals.append(node.meta["val"])
        node.meta.update(metadata)

    def _absent(self, name: str, parent: torch.fx.Node) -> bool:
        """An output the writer named ``<node>_unused_<i>``: it had no getitem node and no reader."""
        return name.startswith(f"{parent.name}_unused_") and name not in self.scope.used

    def _getitems(self, vals: list, parent: torch.fx.Node, items: list, metadata: dict) -> None:
        g = self.scope.graph
        for index, item in enumerate(items):
            if isinstance(item, (schema.TensorArgument, *_SYM_ARGS)):
                self._getitem(vals, parent, item, index, metadata)
            elif not isinstance(item, schema.Argument):
                raise SerializeError(f"unexpected output element {item!r}")
            elif item.type in ("as_tensor", "as_sym_int", "as_sym_float", "as_sym_bool"):
                self._getitem(vals, parent, item.value, index, metadata)
            elif item.type in _LIST_OUTPUTS:
                refs: set = set()
                _ref_names(item.value, refs)
                if all(self._absent(r, parent) for r in refs):  # no getitem for the list in the original
                    vals.append([self._value(r.name if isinstance(r, schema.TensorArgument) else r.as_name)
                                 for r in item.value if isinstance(r, (schema.TensorArgument, *_SYM_ARGS))])
                    continue
                sub = _call_node(g, operator.getitem, (parent, index), None, None)
                inner: list = []
                self._getitems(inner, sub, item.value, metadata)
                sub.meta.update(metadata)
                sub.meta["val"] = inner
                vals.append(inner)
            elif item.type == "as_none":
                vals.append(None)  # nothing can read a None output: no getitem node for it
            else:
                raise SerializeError(f"Unimplemented node output type: {item}")


def _has_schema(target: Any) -> bool:
    from ..extensions import extension_handler_for

    return extension_handler_for(target) is not None


def _schema_of(target: Any):
    if isinstance(target, torch._ops.OpOverload):
        return target._schema
    from ..extensions import extension_handler_for

    return extension_handler_for(target).op_schema(target)


def _graph_module(root: torch.nn.Module, graph: torch.fx.Graph) -> torch.fx.GraphModule:
    from torch.export.exported_program import _create_graph_module_for_export

    return _create_graph_module_for_export(root, graph)

