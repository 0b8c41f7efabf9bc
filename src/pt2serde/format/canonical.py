"""The canonical form of a ``schema.ExportedProgram`` (torch-free).

Two programs with the same meaning written in a different order get the same canonical
form: inputs and outputs are sorted by kind and name, nodes are put in a deterministic
topological order, every defined value is renamed ``_0``, ``_1``, ... in definition
order, subgraphs are renamed ``_g0``, ``_g1``, ... per level, node metadata is dropped
and every table is sorted. The result equals what PyTorch 2.13's ``canonicalize``
returns, except that programs without outputs work here (PyTorch raises).
"""

from __future__ import annotations

import copy
import heapq
from typing import Any, Iterator

from .. import schema
from ..errors import SerializeError
from .value_refs import ARGUMENT_ROWS, ONE, SPEC_TARGETS, ValueRef, argument_elements, argument_refs

__all__ = ["canonicalize"]

# Rank of each input / output spec kind; the second key is the spec's name field (if any).
_INPUT_RANK: dict[str, tuple[int, str | None]] = {
    "token": (0, None),
    "parameter": (1, "parameter_name"),
    "buffer": (2, "buffer_name"),
    "tensor_constant": (3, "tensor_constant_name"),
    "custom_obj": (4, "custom_obj_name"),
    "user_input": (5, None),
    "constant_input": (6, "name"),
}
_OUTPUT_RANK: dict[str, tuple[int, str | None]] = {
    "token": (0, None),
    "parameter_mutation": (1, "parameter_name"),
    "buffer_mutation": (2, "buffer_name"),
    "user_input_mutation": (3, None),
    "user_output": (4, None),
    "loss_output": (4, None),
    "gradient_to_parameter": (5, "parameter_name"),
    "gradient_to_user_input": (6, None),
}



def _refs(arg: schema.Argument) -> Iterator[ValueRef]:
    """The values an argument names (``str -> Argument`` dicts are not entered, as in PyTorch)."""
    return argument_refs(arg, mappings=False)


def _sort_nodes(inputs: list[schema.Argument], nodes: list[schema.Node], constants: set[str]) -> list[schema.Node]:
    graph_inputs = {r.name for a in inputs for r in _refs(a) if r.name}
    defined_by: dict[str, int] = {}
    for idx, node in enumerate(nodes):
        for out in node.outputs:
            for r in _refs(out):
                if (n := r.name):
                    if n in defined_by:
                        raise SerializeError(f"value {n!r} is defined by two nodes")
                    defined_by[n] = idx
    users: list[list[int]] = [[] for _ in nodes]
    pending = [0] * len(nodes)
    for idx, node in enumerate(nodes):
        for inp in node.inputs:
            for r in _refs(inp.arg):
                n = r.name
                if not n or n in constants:
                    continue
                if n not in defined_by:
                    if n not in graph_inputs:
                        raise SerializeError(f"node {node.name or node.target} uses {n!r}, which is never defined")
                    continue
                users[defined_by[n]].append(idx)
                pending[idx] += 1

    rank: dict[str, int] = {}

    def add_ranks(arg: schema.Argument) -> None:
        for r in _refs(arg):
            if (n := r.name):
                rank[n] = len(rank)

    def rank_of(r: ValueRef | None) -> int:  # None: a literal or an absent tensor
        n = None if r is None else r.name
        return rank[n] if n and n not in constants else -1

    for a in inputs:
        add_ranks(a)
    heap: list = []

    def push(idx: int) -> None:
        node = nodes[idx]
        key = [(i.name, [rank_of(r) for _, r in argument_elements(i.arg)]) for i in node.inputs]
        heapq.heappush(heap, (node.target, key, idx))

    for idx in range(len(nodes)):
        if pending[idx] == 0:
            push(idx)
    ordered = []
    while heap:
        _, _, idx = heapq.heappop(heap)
        node = nodes[idx]
        for out in node.outputs:
            add_ranks(out)
        ordered.append(node)
        for user in users[idx]:
            pending[user] -= 1
            if pending[user] == 0:
                push(user)
    if len(ordered) != len(nodes):
        raise SerializeError("graph has a cycle: nodes cannot be ordered")
    return ordered


def _canonical_graph(inputs, outputs, graph: schema.Graph, constants: set[str]) -> tuple[schema.Graph, dict[str, str]]:
    nodes = _sort_nodes(inputs, graph.nodes, constants)
    renames: dict[str, str] = {}

    def define(ref: ValueRef) -> None:
        old = ref.name
        if type(ref.element) is schema.OptionalTensorArgument:  # defines nothing (as in PyTorch)
            raise SerializeError(f"unexpected definition {ref.element!r}")
        table_name = ref.table
        if old in renames:
            raise SerializeError(f"value {old!r} is defined twice")
        new = renames[old] = f"_{len(renames)}"
        table = getattr(graph, table_name)
        if old not in table:
            raise SerializeError(f"value {old!r} has no entry in {table_name}")
        table[new] = table.pop(old)
        ref.rename(new)

    def use(ref: ValueRef) -> None:
        ref.rename(renames.get(ref.name, ref.name))

    for a in inputs:
        for r in _refs(a):
            define(r)
    for node in nodes:
        for out in node.outputs:
            for r in _refs(out):
                define(r)
    for node in nodes:
        for inp in node.inputs:
            for r in _refs(inp.arg):
                use(r)
    for a in outputs:
        for r in _refs(a):
            use(r)
    for node in nodes:
        node.metadata.clear()

    counter = 0
    for node in nodes:
        for inp in node.inputs:
            if inp.arg.type == "as_graph":
                sub = inp.arg.as_graph
                sub.graph, _ = _canonical_graph(sub.graph.inputs, sub.graph.outputs, sub.graph, constants)
                sub.name = f"_g{counter}"
                counter += 1

    def by_key(d: dict) -> dict:
        return dict(sorted(d.items(), key=lambda kv: kv[0]))

    return schema.Graph(
        inputs=list(inputs),
        outputs=list(outputs),
        nodes=nodes,
        tensor_values=by_key(graph.tensor_values),
        sym_int_values=by_key(graph.sym_int_values),
        sym_bool_values=by_key(graph.sym_bool_values),
        is_single_tensor_return=graph.is_single_tensor_return,
        custom_obj_values=by_key(graph.custom_obj_values),
        sym_float_values=by_key(graph.sym_float_values),
    ), renames


def _sorted_pairs(args: list, specs: list, ranks: dict[str, tuple[int, str | None]]) -> tuple[list, list]:
    def key(item):
        idx, (_, spec) = item
        rank, name_field = ranks[spec.type]
        return rank, getattr(spec.value, name_field) if name_field else None, idx

    ordered = sorted(enumerate(zip(args, specs)), key=key)
    return [a for _, (a, _) in ordered], [s for _, (_, s) in ordered]


def _rename_spec(spec: Any, renames: dict[str, str]) -> None:
    """Point a signature spec at the renamed values."""
    def renamed(old: str) -> str:
        if old not in renames:
            raise SerializeError(f"signature refers to {old!r}, which the graph never defines")
        return renames[old]

    body = spec.value
    arg = getattr(body, "arg", None)  # constant inputs have none
    if isinstance(arg, schema.Argument):  # user inputs and outputs
        # Literals and custom objects keep their names here (as PyTorch does).
        row = ARGUMENT_ROWS[arg.type]
        if row.cardinality == ONE and row.table != "custom_obj_values":
            for ref in argument_refs(arg):
                ref.rename(renamed(ref.name))
    elif arg is not None:  # TensorArgument, CustomObjArgument, TokenArgument
        arg.name = renamed(arg.name)
        if SPEC_TARGETS[type(spec)][spec.type] == "user_input_name":  # gradients to and mutations of them
            body.user_input_name = renamed(body.user_input_name)


def _copy(program: schema.ExportedProgram) -> schema.ExportedProgram:
    """A deep copy; through the codec (several times faster than ``copy.deepcopy``)."""
    from . import codec

    try:
        return codec.from_dict(schema.ExportedProgram, codec.to_dict(program))
    except SerializeError:
        return copy.deepcopy(program)  # not encodable as is: copy it the slow way


def canonicalize(program: schema.ExportedProgram, constants: set[str] | None = None) -> schema.ExportedProgram:
    """The canonical form of ``program`` (a new object; ``program`` is not modified).

    ``constants``: names of lifted constants that are not graph edges (optional).
    """
    program = _copy(program)
    constants = set(constants or ())
    gm = program.graph_module
    graph, sig = gm.graph, gm.signature
    if len(graph.inputs) != len(sig.input_specs):
        raise SerializeError(
            f"graph has {len(graph.inputs)} inputs but the signature has {len(sig.input_specs)} input specs"
        )
    if len(graph.outputs) != len(sig.output_specs):
        raise SerializeError(
            f"graph has {len(graph.outputs)} outputs but the signature has {len(sig.output_specs)} output specs"
        )
    inputs, input_specs = _sorted_pairs(graph.inputs, sig.input_specs, _INPUT_RANK)
    outputs, output_specs = _sorted_pairs(graph.outputs, sig.output_specs, _OUTPUT_RANK)
    new_graph, renames = _canonical_graph(inputs, outputs, graph, constants)
    for spec in input_specs + output_specs:
        _rename_spec(spec, renames)
    return schema.ExportedProgram(
        graph_module=schema.GraphModule(
            graph=new_graph,
            signature=schema.GraphSignature(input_specs=input_specs, output_specs=output_specs),
            module_call_graph=sorted(gm.module_call_graph, key=lambda e: e.fqn),
        ),
        opset_version=dict(sorted(program.opset_version.items())),
        range_constraints=dict(sorted(program.range_constraints.items())),
        schema_version=program.schema_version,
        verifiers=program.verifiers,
        torch_version=program.torch_version,
        guards_code=sorted(program.guards_code),
    )
