"""Which wire-union members name graph values, and where those names live (torch-free).

One table per wire union that can refer to a named value of a graph (the ``Graph``'s
``tensor_values``, ``sym_int_values``, ``sym_float_values``, ``sym_bool_values`` or
``custom_obj_values``): a row per tag saying which value table its names belong to (or
``None``) and how many references its payload holds (:data:`ONE`, :data:`OPTIONAL`,
:data:`LIST`, :data:`OPTIONAL_LIST`, :data:`NESTED`, :data:`MAPPING` or ``None``).

* :data:`ARGUMENT_ROWS` for ``schema.Argument``;
* :data:`ELEMENT_ROWS` for the unions an argument's payload is made of
  (``SymIntArgument``, ``SymFloatArgument``, ``SymBoolArgument``,
  ``OptionalTensorArgument``): which of their tags is a reference and which a literal or
  ``None``.

:func:`argument_refs` walks an argument with these tables and yields a :class:`ValueRef`
per name (value table, name, ``$.path`` and how to rename it); ``validate``
(:mod:`pt2serde.format.check`), :func:`pt2serde.canonicalize`, ``diff`` and ``inspect`` all
read references through it. :data:`SPEC_TARGETS` says, per ``InputSpec`` / ``OutputSpec``
tag, which field names the parameter, buffer, ... or user input a spec is about.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from typing import Any, Collection, Iterator, Sequence

from .. import schema

__all__ = ["ONE", "OPTIONAL", "LIST", "OPTIONAL_LIST", "NESTED", "MAPPING", "SYM_TABLES", "UnionRow",
           "ARGUMENT_ROWS", "ELEMENT_ROWS", "ValueRef", "argument_refs", "argument_elements", "element_ref",
           "single_ref_name", "SPEC_TARGETS", "spec_target", "CONSTANT_INPUTS", "constant_input_name",
           "graph_input_problem", "builtin_name_clashes"]

#: the payload is one reference element (a struct, or a union that may hold a literal)
ONE = "one"
#: one ``OptionalTensorArgument`` (a tensor or None)
OPTIONAL = "optional"
#: a list of reference elements
LIST = "list"
#: a list of ``OptionalTensorArgument``
OPTIONAL_LIST = "optional_list"
#: a list of lists of reference elements
NESTED = "nested"
#: a ``str -> Argument`` dict (each value is an argument of its own)
MAPPING = "mapping"

#: the value tables of symbolic values (their arguments may hold literals instead of names)
SYM_TABLES = ("sym_int_values", "sym_float_values", "sym_bool_values")


@dataclass(frozen=True)
class UnionRow:
    """One tag of a wire union: the value table its names belong to (``None``: it names no
    value) and the shape of its payload (``None`` when it holds no reference)."""

    tag: str
    table: str | None = None
    cardinality: str | None = None


def _rows(*rows: UnionRow) -> dict[str, UnionRow]:
    return {row.tag: row for row in rows}


ARGUMENT_ROWS: dict[str, UnionRow] = _rows(
    UnionRow("as_tensor", "tensor_values", ONE),
    UnionRow("as_tensors", "tensor_values", LIST),
    UnionRow("as_nested_tensors", "tensor_values", NESTED),
    UnionRow("as_optional_tensor", "tensor_values", OPTIONAL),
    UnionRow("as_optional_tensors", "tensor_values", OPTIONAL_LIST),
    *(UnionRow(f"as_sym_{kind}{plural}", f"sym_{kind}_values", how)
      for kind in ("int", "float", "bool") for plural, how in (("", ONE), ("s", LIST))),
    UnionRow("as_custom_obj", "custom_obj_values", ONE),
    UnionRow("as_string_to_argument", None, MAPPING),
    *(UnionRow(tag) for tag in (
        "as_none", "as_int", "as_ints", "as_float", "as_floats", "as_string", "as_strings", "as_scalar_type",
        "as_memory_format", "as_layout", "as_device", "as_bool", "as_bools", "as_graph", "as_operator",
        "as_complex", "as_int_lists", "as_float_lists")),
)

#: The unions inside an argument's payload: the tag that names a value, and the others.
ELEMENT_ROWS: dict[type, dict[str, UnionRow]] = {
    schema.SymIntArgument: _rows(UnionRow("as_name", "sym_int_values", ONE), UnionRow("as_int")),
    schema.SymFloatArgument: _rows(UnionRow("as_name", "sym_float_values", ONE), UnionRow("as_float")),
    schema.SymBoolArgument: _rows(UnionRow("as_name", "sym_bool_values", ONE), UnionRow("as_bool")),
    schema.OptionalTensorArgument: _rows(UnionRow("as_tensor", "tensor_values", ONE), UnionRow("as_none")),
}


@dataclass(frozen=True)
class ValueRef:
    """One name an argument holds: its value ``table``, the ``name``, the ``path`` of the
    element that holds it, and ``owner``/``field``, the object and attribute holding it
    (:meth:`rename` sets it). ``element`` is that element (``TensorArgument``,
    ``SymIntArgument``, ``OptionalTensorArgument``, ``CustomObjArgument``...)."""

    table: str
    name: str
    path: str
    element: Any
    owner: Any
    field: str

    def rename(self, new: str) -> None:
        """Point the argument at ``new`` instead of :attr:`name` (in place)."""
        setattr(self.owner, self.field, new)


def element_ref(element: Any, table: str, path: str = "") -> ValueRef | None:
    """The reference one payload element holds (``None`` for a literal or an absent tensor)."""
    rows = ELEMENT_ROWS.get(type(element))
    if rows is None:  # a struct: TensorArgument, CustomObjArgument
        return ValueRef(table, element.name, path, element, element, "name")
    if rows[element.type].table is None:
        return None
    inner = element.value
    if isinstance(inner, str):  # as_name
        return ValueRef(table, inner, path, element, element, element.type)
    return ValueRef(table, inner.name, path, element, inner, "name")  # as_tensor


def argument_elements(arg: schema.Argument, path: str = "") -> Iterator[tuple[Any, ValueRef | None]]:
    """``(element, reference)`` of every element of an argument's own payload that may name a
    value, in order; the reference is ``None`` for a literal or an absent tensor. Mapping
    values are arguments of their own: not entered."""
    row = ARGUMENT_ROWS[arg.type]
    how, table, value = row.cardinality, row.table, arg.value
    if table is None:
        return
    if how in (ONE, OPTIONAL):
        yield value, element_ref(value, table, path)
    elif how in (LIST, OPTIONAL_LIST):
        for i, x in enumerate(value):
            yield x, element_ref(x, table, f"{path}[{i}]")
    elif how == NESTED:
        for i, inner in enumerate(value):
            for j, x in enumerate(inner):
                yield x, element_ref(x, table, f"{path}[{i}][{j}]")


def argument_refs(arg: schema.Argument, path: str = "", *, mappings: bool = True) -> Iterator[ValueRef]:
    """Every value an argument names, in order; subgraphs are not entered, ``str -> Argument``
    dicts only when ``mappings`` (their paths: ``{path}.as_string_to_argument.{key}``)."""
    if ARGUMENT_ROWS[arg.type].cardinality == MAPPING:
        if mappings:
            for key, x in arg.value.items():
                yield from argument_refs(x, f"{path}.as_string_to_argument.{key}")
        return
    for _, ref in argument_elements(arg, path):
        if ref is not None:
            yield ref


def single_ref_name(arg: schema.Argument) -> str | None:
    """The name an argument refers to when it refers to exactly one value, else ``None``."""
    refs = list(argument_refs(arg))
    return refs[0].name if len(refs) == 1 else None


#: Per signature spec union and tag: the field of the spec naming the parameter, buffer,
#: constant, custom object or user input it is about (``None``: it names none).
SPEC_TARGETS: dict[type, dict[str, str | None]] = {
    schema.InputSpec: {"user_input": None, "parameter": "parameter_name", "buffer": "buffer_name",
                       "tensor_constant": "tensor_constant_name", "custom_obj": "custom_obj_name", "token": None,
                       "constant_input": "name"},
    schema.OutputSpec: {"user_output": None, "loss_output": None, "buffer_mutation": "buffer_name",
                        "parameter_mutation": "parameter_name", "gradient_to_parameter": "parameter_name",
                        "gradient_to_user_input": "user_input_name", "user_input_mutation": "user_input_name",
                        "token": None},
}


def spec_target(spec: schema.InputSpec | schema.OutputSpec) -> str | None:
    """The name a signature spec is about (a parameter, buffer, ... or user input), if any."""
    field = SPEC_TARGETS[type(spec)][spec.type]
    return None if field is None else getattr(spec.value, field)


#: graph input tags whose value is a literal: the placeholder holds the value, not a reference
CONSTANT_INPUTS = frozenset(("as_int", "as_float", "as_bool", "as_none", "as_string"))


def constant_input_name(specs: Sequence[schema.InputSpec], index: int) -> str:
    """The placeholder name of graph input ``index`` when it is a literal (:data:`CONSTANT_INPUTS`).

    fx writes it as a parameter of ``def forward(self, ...)``, so it must differ from every other
    name of its graph (``validate``'s graph walk and the loader both hold it to that). It is the
    name of the input spec at ``index`` (the top graph's signature; a subgraph passes ``[]``),
    else ``arg<index>``, as PyTorch's loader names it.
    """
    spec = specs[index] if index < len(specs) else None
    name = ""
    if spec is not None:
        v = spec.value
        if spec.type == "constant_input":
            name = v.name
        elif spec.type == "user_input":
            a = v.arg
            if a.type in ("as_tensor", "as_custom_obj"):
                name = a.value.name
            elif a.type in ("as_sym_int", "as_sym_float", "as_sym_bool") and a.value.type == "as_name":
                name = a.value.as_name
        else:
            name = v.arg.name
    return name or f"arg{index}"


def graph_input_problem(arg: schema.Argument) -> str | None:
    """Why ``arg`` cannot be a graph input (a placeholder), or ``None``: a placeholder holds a
    tensor, a custom object or a symbolic value by name, or a literal (:data:`CONSTANT_INPUTS`)."""
    t = arg.type
    if t in ("as_tensor", "as_custom_obj") or t in CONSTANT_INPUTS:
        return None
    if t in ("as_sym_int", "as_sym_float", "as_sym_bool"):
        return None if arg.value.type == "as_name" else f"a graph input `{t}` must name a value, not hold a literal"
    return f"a graph input cannot be `{t}` (placeholders hold tensors, custom objects, symbolic values or literals)"


#: the names fx's code generation renames (``input`` is written ``input_1``): Python's builtins
_BUILTIN_NAMES = frozenset(builtins.__dict__)


def builtin_name_clashes(names: Collection[str]) -> list[tuple[str, str]]:
    """``(builtin, other)`` for each value of one graph named after a Python builtin (real
    exports have an input ``input``) and each other value named ``<builtin>_<n>``.

    fx writes a value named ``input`` into ``forward`` as the variable ``input_1`` (builtins are
    never shadowed), right after the parameters: a parameter or value that is itself named
    ``input_1`` is overwritten, and the program silently computes with the wrong input (PyTorch's
    own export has the same flaw). ``load`` and ``validate`` refuse such a graph.
    """
    out = []
    for b in sorted(_BUILTIN_NAMES.intersection(names)):
        suffixed = re.compile(re.escape(b) + r"_[0-9]+\Z")
        out += [(b, n) for n in names if suffixed.match(n)]
    return out


def single_return_problem(g: schema.Graph) -> str | None:
    """Why a graph marked ``is_single_tensor_return`` cannot return its one value, or None."""
    if g.is_single_tensor_return and len(g.outputs) != 1:
        return f"a single-tensor return has {len(g.outputs)} outputs"
    return None


#: The control-flow and wrapper higher-order ops, as torch's serializer writes their nodes (all
#: inputs positional): op -> (what each input is, the subgraphs' output rule). An input is
#: ``graph`` (a subgraph), ``list`` (values the op passes on: each element is one value;
#: ``tensors``: a list of tensors, which the op slices),
#: ``pred`` (a tensor or bool, one value), ``bool`` (a literal bool), ``any`` (one non-graph
#: value), ``*`` (every further input, each passed on). Subgraph outputs: ``same`` (the
#: subgraphs agree), ``while`` (cond_fn returns one value, body_fn the carried ones), ``node``
#: (as many as the node's outputs), or None.
_HOP_LAYOUTS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "torch.ops.higher_order.cond": (("pred", "graph", "graph", "list"), "same"),
    "torch.ops.higher_order.while_loop": (("graph", "graph", "list", "list"), "while"),
    "torch.ops.higher_order.map_impl": (("graph", "tensors", "list"), "node"),  # (f, xs, pos_args)
    "torch.ops.higher_order.scan": (("graph", "list", "tensors", "list"), "node"),  # (combine, init, xs, additional)
    "torch.ops.higher_order.wrap_with_set_grad_enabled": (("bool", "graph", "*"), "node"),
    "torch.ops.higher_order.wrap_with_autocast": (("str", "dtype?", "bool", "bool?", "graph", "*"), "node"),
    "torch.ops.higher_order.invoke_subgraph": (("graph", "any", "*"), None),
}
_PRED = frozenset(("as_tensor", "as_sym_bool", "as_bool"))
#: the literal slots: the argument kinds each takes
_LITERAL_SLOTS = {"bool": ("as_bool",), "bool?": ("as_bool", "as_none"), "str": ("as_string",),
                  "dtype?": ("as_scalar_type", "as_none")}


def _passed_twice(inputs: Sequence[schema.NamedArgument]) -> tuple[str, int] | None:
    """``(name, input index)`` of the first tensor the lists of ``inputs`` pass a second time."""
    seen: set[str] = set()
    for j, inp in enumerate(inputs, 1):
        for v in inp.arg.value:
            if type(v) is schema.TensorArgument:
                if v.name in seen:
                    return v.name, j
                seen.add(v.name)
    return None


def _one_element(meta: schema.TensorMeta | None) -> bool:
    """Whether a tensor of ``meta`` may hold one element (what a branch predicate needs): False
    only where its concrete sizes prove more (or none)."""
    return meta is None or all(s.type != "as_int" or s.value == 1 for s in meta.sizes)


def hop_call_problem(target: str, inputs: Sequence[schema.NamedArgument], outputs: Sequence[schema.Argument],
                     tensor_values: dict[str, schema.TensorMeta]) -> tuple[str, str] | None:
    """``(message, path below the node)`` when a node of an op of :data:`_HOP_LAYOUTS` is not laid
    out as torch's serializer writes it, passes its subgraphs another number of values than they
    have inputs, or its subgraphs return another number of values than the op needs, or a
    predicate (cond's, while_loop's ``cond_fn`` result) that cannot be one element, or map_impl
    passing a tensor twice; else None.
    ``tensor_values``: the metadata of the node's graph. torch fails on such a node only when it
    runs it (``run_decompositions()``, a call), with a raw ``TypeError``, ``RuntimeError`` or
    ``IndexError``."""
    layout = _HOP_LAYOUTS.get(target)
    if layout is None:
        return None
    slots, returns = layout
    op = target.rsplit(".", 1)[1]
    fixed = slots[:-1] if slots[-1] == "*" else slots
    for j, inp in enumerate(inputs):
        if inp.kind == schema.ArgumentKind.KEYWORD:
            return f"{op} takes no keyword argument, got {inp.name!r}"[:300], f"inputs[{j}]"
    if len(inputs) < len(fixed) or (len(inputs) > len(fixed) and slots[-1] != "*"):
        wanted = f"at least {len(fixed)}" if slots[-1] == "*" else str(len(fixed))
        return f"{op} takes {wanted} inputs, got {len(inputs)}", "inputs"
    passed, graphs = 0, []
    for j, inp in enumerate(inputs):
        slot, a = (slots[j] if j < len(fixed) else "*"), inp.arg
        if slot == "graph":
            if a.type != "as_graph":
                return f"{op} input {j} must be a subgraph, got `{a.type}`", f"inputs[{j}].arg"
            graphs.append(j)
            continue
        if a.type == "as_graph":
            return f"{op} input {j} must not be a subgraph", f"inputs[{j}].arg"
        if slot == "tensors" and a.type != "as_tensors":
            return f"{op} input {j} must be a list of tensors, got `{a.type}`", f"inputs[{j}].arg"
        if slot in ("list", "tensors"):
            if not isinstance(a.value, list):
                return f"{op} input {j} must be a list of values, got `{a.type}`", f"inputs[{j}].arg"
            passed += len(a.value)
        elif slot == "pred":
            if a.type not in _PRED:
                return f"{op} input {j} must be a tensor or a bool, got `{a.type}`", f"inputs[{j}].arg"
            if a.type == "as_tensor" and not _one_element(tensor_values.get(a.value.name)):
                return f"{op} input {j} must be a one-element tensor", f"inputs[{j}].arg"
        elif slot in _LITERAL_SLOTS and a.type not in _LITERAL_SLOTS[slot]:
            kinds = " or ".join(f"`{k}`" for k in _LITERAL_SLOTS[slot])
            return f"{op} input {j} must be {kinds}, got `{a.type}`", f"inputs[{j}].arg"
        elif slot == "*":
            passed += 1
    if op == "map_impl" and (twice := _passed_twice(inputs[1:3])):
        # export never writes one: tracing refuses aliased map operands. A file's made torch's
        # retrace (run_decompositions) fail with `SyntaxError: duplicate argument`
        return f"map_impl passes value {twice[0]!r} twice"[:300], f"inputs[{twice[1]}].arg"
    subgraphs = [inputs[j].arg.value.graph for j in graphs]
    for j, g in zip(graphs, subgraphs):
        if len(g.inputs) != passed:
            return (f"{op} calls its subgraph with {passed} values but the subgraph has {len(g.inputs)} inputs",
                    f"inputs[{j}].arg.as_graph.graph.inputs")
    counts = [len(g.outputs) for g in subgraphs]
    if returns == "same":
        wanted = [counts[0]] * len(counts)
    elif returns == "node":
        wanted = [len(outputs)] * len(counts)
    elif returns == "while":  # cond_fn: one value; body_fn: the carried ones
        wanted = [1, len(inputs[2].arg.value)]
    else:
        wanted = counts
    for j, have, want in zip(graphs, counts, wanted):
        if have != want:
            return (f"{op}'s subgraph returns {have} values but {want} are needed",
                    f"inputs[{j}].arg.as_graph.graph.outputs")
    if returns == "while":  # cond_fn's one value decides: a bool, one element
        (result,), g = subgraphs[0].outputs, subgraphs[0]
        meta = g.tensor_values.get(result.value.name) if result.type == "as_tensor" else None
        if result.type not in _PRED or meta is not None and (meta.dtype != schema.ScalarType.BOOL
                                                              or not _one_element(meta)):
            return f"{op}'s cond_fn must return a one-element bool", f"inputs[{graphs[0]}].arg.as_graph.graph.outputs"
        carried = inputs[2].arg
        if carried.type == "as_tensors":  # body_fn's values become the carried ones: the same kind
            body = subgraphs[1]
            for k, (before, after) in enumerate(zip(carried.value, body.outputs)):
                if after.type != "as_tensor":
                    continue
                if not _same_kind(tensor_values.get(before.name), body.tensor_values.get(after.value.name)):
                    return (f"{op}'s body_fn returns value {k} with another dtype or sizes than the carried one",
                            f"inputs[{graphs[1]}].arg.as_graph.graph.outputs[{k}]")
    return None


def _same_kind(a: schema.TensorMeta | None, b: schema.TensorMeta | None) -> bool:
    """Whether two tensors may have the same dtype and sizes: False only where the metadata (the
    dtype, the number of sizes, two concrete sizes) proves otherwise."""
    if a is None or b is None:
        return True
    if a.dtype != b.dtype or len(a.sizes) != len(b.sizes):
        return False
    return all(x == y or x.type != "as_int" or y.type != "as_int" for x, y in zip(a.sizes, b.sizes))
