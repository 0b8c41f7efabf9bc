"""The corpus covers the serializer's scope, checked on the wire.

* the ``features`` tags of the corpus include every feature of the checklist below;
* every corpus program, serialized by pt2serde in both forms, is summarised from the
  document itself (decoded with the wire schema); the union over the corpus must contain
  every ``Argument`` member PyTorch 2.13 can produce, every ``InputSpec`` / ``OutputSpec``
  member, the listed higher-order ops, range-constraint kinds and dtypes;
* each program's own feature tags that are visible on the wire really are there, so a
  program that stops producing what it claims (a PyTorch upgrade changing what export
  emits, or a serializer change) fails here by name.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import pytest

import pt2serde
from pt2serde import schema
from programs import CORPUS, FORMS, exported

# ------------------------------------------------------------------ checklist

NODE_KINDS = {
    "placeholder_tensor", "placeholder_symint", "placeholder_constant", "placeholder_custom_obj",
    "get_attr_subgraph", "output_single", "output_multiple",
}
ARGUMENT_FEATURES = {
    "as_tensor", "as_tensors", "as_optional_tensors", "as_int", "as_ints", "as_float", "as_floats",
    "as_string", "as_strings", "as_bool", "as_bools", "as_none", "as_sym_int", "as_sym_ints",
    "as_sym_float", "as_sym_floats", "as_sym_bool", "as_sym_bools", "as_scalar_type",
    "as_memory_format", "as_layout", "as_device", "as_graph", "as_custom_obj", "as_operator",
    "as_complex", "as_nested_tensors", "as_string_to_argument", "as_int_lists", "as_float_lists",
    "inf", "-inf", "nan",
}
OUTPUT_FEATURES = {
    "single_output", "multi_output", "unused_outputs", "list_output", "none_output", "token_output",
    "sym_output", "duplicate_getitem",
}
SCHEMA_FEATURES = {"defaulted_kwargs", "kwarg_only", "positional_default"}
METADATA_FEATURES = {"stack_trace", "nn_module_stack", "source_fn_stack", "torch_fn", "custom_meta", "from_node"}
HOP_FEATURES = {
    "cond", "map", "while_loop", "scan", "auto_functionalized", "auto_functionalized_v2",
    "with_effects", "invoke_subgraph", "wrap_with_set_grad_enabled", "wrap_with_autocast",
    "hints_wrapper", "associative_scan",
}
PROGRAM_FEATURES = {
    "user_input", "parameter", "buffer", "non_persistent_buffer", "tensor_constant", "custom_obj",
    "token", "constant_input",
    "user_output", "loss_output", "buffer_mutation", "gradient_to_parameter", "gradient_to_user_input",
    "user_input_mutation", "token_output_spec", "parameter_mutation",
    "infinite_range", "bounded_range", "derived_dim", "unbacked_symint", "rational_range",
    "module_call_graph_preserved", "namedtuple_io", "dict_io", "custom_verifier", "dtypes",
}
REQUIRED_FEATURES = (
    NODE_KINDS | ARGUMENT_FEATURES | OUTPUT_FEATURES | SCHEMA_FEATURES | METADATA_FEATURES
    | HOP_FEATURES | PROGRAM_FEATURES
)

# Argument members no corpus program can make PyTorch 2.13 (or pt2serde, which writes
# what 2.13 writes) produce, with the reason.
UNPRODUCIBLE_ARGUMENT_TAGS = {
    "as_optional_tensor": "declared in the schema (id 250) but PyTorch 2.13's serializer never "
    "emits it (a single Tensor? is written as as_tensor / as_none) and its deserializer has no case for it",
}

# torch.ops.higher_order.<name> targets the corpus must contain (map -> map_impl).
REQUIRED_HOPS = {
    "cond", "map_impl", "while_loop", "scan", "associative_scan", "auto_functionalized",
    "auto_functionalized_v2", "with_effects", "invoke_subgraph", "wrap_with_set_grad_enabled",
    "wrap_with_autocast", "hints_wrapper", "call_torchbind",
}

# ScalarType values the corpus must carry in some TensorMeta.
REQUIRED_DTYPES = {
    schema.ScalarType.HALF, schema.ScalarType.BFLOAT16, schema.ScalarType.CHAR, schema.ScalarType.BYTE,
    schema.ScalarType.SHORT, schema.ScalarType.INT, schema.ScalarType.LONG, schema.ScalarType.FLOAT,
    schema.ScalarType.DOUBLE, schema.ScalarType.BOOL, schema.ScalarType.COMPLEXFLOAT,
    schema.ScalarType.COMPLEXDOUBLE, schema.ScalarType.FLOAT8E4M3FN, schema.ScalarType.FLOAT8E5M2,
    schema.ScalarType.FLOAT8E8M0FNU, schema.ScalarType.UINT16, schema.ScalarType.UINT32,
    schema.ScalarType.UINT64,
}


# --------------------------------------------------------------- wire summary


@dataclasses.dataclass
class Wire:
    """What a set of documents shows on the wire (accumulated over graphs and subgraphs)."""

    arg_tags: set = dataclasses.field(default_factory=set)
    input_specs: set = dataclasses.field(default_factory=set)
    output_specs: set = dataclasses.field(default_factory=set)
    hops: set = dataclasses.field(default_factory=set)
    targets: set = dataclasses.field(default_factory=set)
    meta_keys: set = dataclasses.field(default_factory=set)
    module_meta_keys: set = dataclasses.field(default_factory=set)
    graph_input_tags: set = dataclasses.field(default_factory=set)
    top_input_tags: set = dataclasses.field(default_factory=set)
    top_output_counts: set = dataclasses.field(default_factory=set)
    single_tensor_return: bool = False
    node_output_counts: set = dataclasses.field(default_factory=set)
    node_output_tags: set = dataclasses.field(default_factory=set)
    node_output_names: set = dataclasses.field(default_factory=set)
    floats: list = dataclasses.field(default_factory=list)
    keyword_op_inputs: bool = False
    linear_positional_bias: bool = False
    user_output_tags: set = dataclasses.field(default_factory=set)
    non_persistent_buffer: bool = False
    ranges: list = dataclasses.field(default_factory=list)
    size_exprs: set = dataclasses.field(default_factory=set)
    namedtuple_types: set = dataclasses.field(default_factory=set)
    preserved_fqns: set = dataclasses.field(default_factory=set)
    root_in_specs: set = dataclasses.field(default_factory=set)
    verifiers: set = dataclasses.field(default_factory=set)
    dtypes: set = dataclasses.field(default_factory=set)

    def update(self, other: "Wire") -> None:
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, set):
                mine |= theirs
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:
                setattr(self, f.name, mine or theirs)


_HOP_PREFIX = "torch.ops.higher_order."


def _walk_argument(arg: schema.Argument, w: Wire) -> None:
    w.arg_tags.add(arg.type)
    if arg.type == "as_graph":
        _walk_graph(arg.value.graph, w, top=False)
    elif arg.type == "as_string_to_argument":
        for value in arg.value.values():
            _walk_argument(value, w)
    elif arg.type == "as_float":
        w.floats.append(arg.value)
    elif arg.type in ("as_floats",):
        w.floats.extend(arg.value)
    elif arg.type == "as_float_lists":
        w.floats.extend(f for inner in arg.value for f in inner)


def _output_names(arg: schema.Argument) -> list[str]:
    if arg.type == "as_tensor":
        return [arg.value.name]
    if arg.type == "as_tensors":
        return [t.name for t in arg.value]
    if arg.type in ("as_sym_int", "as_sym_float", "as_sym_bool") and arg.value.type == "as_name":
        return [arg.value.value]
    return []


def _walk_graph(g: schema.Graph, w: Wire, *, top: bool) -> None:
    for a in g.inputs:
        _walk_argument(a, w)
        w.graph_input_tags.add(a.type)
        if top:
            w.top_input_tags.add(a.type)
    for a in g.outputs:
        _walk_argument(a, w)
    if top:
        w.top_output_counts.add(len(g.outputs))
    w.single_tensor_return |= bool(g.is_single_tensor_return)
    for meta in g.tensor_values.values():
        w.dtypes.add(meta.dtype)
        for s in meta.sizes:
            if s.type == "as_expr":
                w.size_exprs.add(s.value.expr_str)
    for node in g.nodes:
        w.targets.add(node.target)
        if node.target.startswith(_HOP_PREFIX):
            w.hops.add(node.target[len(_HOP_PREFIX):])
        w.meta_keys |= set(node.metadata)
        is_op = node.target.startswith("torch.ops.") and not node.target.startswith(_HOP_PREFIX)
        for named in node.inputs:
            _walk_argument(named.arg, w)
            if is_op and named.kind == schema.ArgumentKind.KEYWORD:
                w.keyword_op_inputs = True
        if node.target == "torch.ops.aten.linear.default":
            kinds = [(i.name, i.kind) for i in node.inputs]
            w.linear_positional_bias |= ("bias", schema.ArgumentKind.POSITIONAL) in kinds
        w.node_output_counts.add(len(node.outputs))
        for out in node.outputs:
            _walk_argument(out, w)
            w.node_output_tags.add(out.type)
            w.node_output_names.update(_output_names(out))


def summarize(doc: schema.ExportedProgram) -> Wire:
    w = Wire()
    gm = doc.graph_module
    _walk_graph(gm.graph, w, top=True)
    w.module_meta_keys |= set(gm.metadata)
    for spec in gm.signature.input_specs:
        w.input_specs.add(spec.type)
        if spec.type == "user_input":
            _walk_argument(spec.value.arg, w)
        if spec.type == "buffer" and not spec.value.persistent:
            w.non_persistent_buffer = True
    for spec in gm.signature.output_specs:
        w.output_specs.add(spec.type)
        if spec.type == "user_output":
            _walk_argument(spec.value.arg, w)
            w.user_output_tags.add(spec.value.arg.type)
    for entry in gm.module_call_graph:
        if entry.signature is None:
            continue
        if entry.fqn == "":
            w.root_in_specs.add(entry.signature.in_spec)
        else:
            w.preserved_fqns.add(entry.fqn)
        for a in [*entry.signature.inputs, *entry.signature.outputs]:
            _walk_argument(a, w)
    w.namedtuple_types |= set(gm.treespec_namedtuple_fields)
    w.ranges.extend((k, r.min_val, r.max_val) for k, r in doc.range_constraints.items())
    w.verifiers |= set(doc.verifiers)
    return w


@functools.cache
def document(name: str, form: str) -> schema.ExportedProgram:
    """pt2serde's document for a corpus program, decoded with the wire schema."""
    data = pt2serde.serialize(exported(name, form)).exported_program
    return pt2serde.from_dict(schema.ExportedProgram, json.loads(data))


@functools.cache
def program_wire(name: str) -> Wire:
    w = Wire()
    for form in FORMS:
        if form in CORPUS[name].forms:
            w.update(summarize(document(name, form)))
    return w


@functools.cache
def corpus_wire() -> Wire:
    w = Wire()
    for name in CORPUS:
        w.update(program_wire(name))
    return w


# ------------------------------------------- feature tags visible on the wire

_SPEC_INPUTS = {"user_input", "parameter", "buffer", "tensor_constant", "custom_obj", "token", "constant_input"}
_SPEC_OUTPUTS = {
    "user_output": "user_output", "loss_output": "loss_output", "buffer_mutation": "buffer_mutation",
    "gradient_to_parameter": "gradient_to_parameter", "gradient_to_user_input": "gradient_to_user_input",
    "user_input_mutation": "user_input_mutation", "token_output_spec": "token",
    "parameter_mutation": "parameter_mutation",
}
_LITERAL_TAGS = {"as_int", "as_float", "as_bool", "as_string", "as_none"}
_HOP_OF_FEATURE = {f: f for f in HOP_FEATURES} | {"map": "map_impl", "call_torchbind": "call_torchbind"}
_METADATA_KEY = {
    "stack_trace": "stack_trace", "nn_module_stack": "nn_module_stack", "source_fn_stack": "source_fn_stack",
    "torch_fn": "torch_fn", "from_node": "from_node",
}
_FIXED_DIALECTS = {"", "TRAINING", "ATEN"}


def _detector(feature: str):
    """A predicate over a program's Wire for ``feature``, or None if it is not visible there."""
    if feature in ARGUMENT_FEATURES and feature.startswith("as_"):
        return lambda w: feature in w.arg_tags
    if feature == "inf":
        return lambda w: any(isinstance(f, float) and f == math.inf for f in w.floats)
    if feature == "-inf":
        return lambda w: any(isinstance(f, float) and f == -math.inf for f in w.floats)
    if feature == "nan":
        return lambda w: any(isinstance(f, float) and math.isnan(f) for f in w.floats)
    if feature in _SPEC_INPUTS:
        return lambda w: feature in w.input_specs
    if feature in _SPEC_OUTPUTS:
        return lambda w: _SPEC_OUTPUTS[feature] in w.output_specs
    if feature in _HOP_OF_FEATURE:
        return lambda w: _HOP_OF_FEATURE[feature] in w.hops
    if feature in _METADATA_KEY:
        return lambda w: _METADATA_KEY[feature] in w.meta_keys
    return {
        "placeholder_tensor": lambda w: "as_tensor" in w.top_input_tags,
        "placeholder_symint": lambda w: "as_sym_int" in w.graph_input_tags,
        "placeholder_constant": lambda w: bool(_LITERAL_TAGS & w.top_input_tags),
        "placeholder_custom_obj": lambda w: "as_custom_obj" in w.graph_input_tags,
        "get_attr_subgraph": lambda w: "as_graph" in w.arg_tags,
        "output_single": lambda w: 1 in w.top_output_counts or w.single_tensor_return,
        "output_multiple": lambda w: any(n > 1 for n in w.top_output_counts),
        "single_output": lambda w: 1 in w.node_output_counts,
        "multi_output": lambda w: any(n > 1 for n in w.node_output_counts),
        "unused_outputs": lambda w: any("_unused_" in n for n in w.node_output_names),
        "list_output": lambda w: "as_tensors" in w.node_output_tags,
        "none_output": lambda w: "as_none" in w.node_output_tags,
        "token_output": lambda w: "with_effects" in w.hops and "token" in w.output_specs,
        "sym_output": lambda w: bool({"as_sym_int", "as_sym_float", "as_sym_bool"} & w.user_output_tags),
        "defaulted_kwargs": lambda w: w.keyword_op_inputs,
        "kwarg_only": lambda w: w.keyword_op_inputs,
        "positional_default": lambda w: w.linear_positional_bias,
        "custom_meta": lambda w: "custom" in w.meta_keys or "custom" in w.module_meta_keys,
        "non_persistent_buffer": lambda w: w.non_persistent_buffer,
        "infinite_range": lambda w: any(hi is None for _, _, hi in w.ranges),
        "bounded_range": lambda w: any(hi is not None for _, _, hi in w.ranges),
        "derived_dim": lambda w: any(e.startswith("Mul(Integer(2)") for e in w.size_exprs),
        "unbacked_symint": lambda w: any(k.startswith("u") for k, _, _ in w.ranges),
        "module_call_graph_preserved": lambda w: bool(w.preserved_fqns),
        "namedtuple_io": lambda w: bool(w.namedtuple_types),
        "dict_io": lambda w: any('"builtins.dict"' in s for s in w.root_in_specs),
        "custom_verifier": lambda w: bool(w.verifiers - _FIXED_DIALECTS),
        "dtypes": lambda w: bool(w.dtypes - {schema.ScalarType.FLOAT, schema.ScalarType.LONG}),
    }.get(feature)


# ----------------------------------------------------------------------- tests


def test_feature_tags_cover_the_checklist():
    tagged = set().union(*(p.features for p in CORPUS.values()))
    missing = REQUIRED_FEATURES - tagged
    assert not missing, f"no corpus program is tagged with: {sorted(missing)}"


def test_every_checklist_feature_has_an_own_program():
    # The ExportDB cases only carry the "exportdb" tag; the checklist is covered by ours.
    ours = [p for name, p in CORPUS.items() if not name.startswith("exportdb_")]
    assert len(ours) >= 69
    tagged = set().union(*(p.features for p in ours))
    assert REQUIRED_FEATURES <= tagged, sorted(REQUIRED_FEATURES - tagged)


@pytest.mark.parametrize("name", [n for n, p in CORPUS.items() if p.features != ("exportdb",)])
def test_program_features_are_on_the_wire(name):
    wire = program_wire(name)
    absent = [f for f in CORPUS[name].features if (check := _detector(f)) is not None and not check(wire)]
    assert not absent, f"{name}: tagged but not on the wire: {absent}"


@pytest.mark.torchbind_test_lib  # needs libtorchbind_test.so (tests/conftest.py)
def test_argument_members_on_the_wire():
    expected = set(schema.Argument.MEMBERS) - set(UNPRODUCIBLE_ARGUMENT_TAGS)
    missing = expected - corpus_wire().arg_tags
    assert not missing, f"Argument members no corpus document contains: {sorted(missing)}"
    # The exclusions are members of the schema (a renamed member must not silently pass).
    assert set(UNPRODUCIBLE_ARGUMENT_TAGS) <= set(schema.Argument.MEMBERS)


@pytest.mark.torchbind_test_lib  # needs libtorchbind_test.so (tests/conftest.py)
def test_input_spec_members_on_the_wire():
    missing = set(schema.InputSpec.MEMBERS) - corpus_wire().input_specs
    assert not missing, f"InputSpec members no corpus document contains: {sorted(missing)}"


@pytest.mark.torchbind_test_lib  # needs libtorchbind_test.so (tests/conftest.py)
def test_output_spec_members_on_the_wire():
    missing = set(schema.OutputSpec.MEMBERS) - corpus_wire().output_specs
    assert not missing, f"OutputSpec members no corpus document contains: {sorted(missing)}"


@pytest.mark.torchbind_test_lib  # needs libtorchbind_test.so (tests/conftest.py)
def test_higher_order_ops_on_the_wire():
    missing = REQUIRED_HOPS - corpus_wire().hops
    assert not missing, f"higher-order ops no corpus document contains: {sorted(missing)}"


@pytest.mark.torchbind_test_lib  # needs libtorchbind_test.so (tests/conftest.py)
def test_nonfinite_floats_on_the_wire():
    floats = corpus_wire().floats
    assert any(f == math.inf for f in floats)
    assert any(f == -math.inf for f in floats)
    assert any(isinstance(f, float) and math.isnan(f) for f in floats)


@pytest.mark.torchbind_test_lib  # needs libtorchbind_test.so (tests/conftest.py)
def test_dtypes_on_the_wire():
    missing = REQUIRED_DTYPES - corpus_wire().dtypes
    assert not missing, f"dtypes no corpus TensorMeta carries: {sorted(d.name for d in missing)}"


@pytest.mark.torchbind_test_lib  # needs libtorchbind_test.so (tests/conftest.py)
def test_range_constraint_kinds_on_the_wire():
    ranges = corpus_wire().ranges
    assert any(hi is None for _, _, hi in ranges), "no unbounded range"
    assert any(lo is not None and hi is not None and lo > 0 for _, lo, hi in ranges), "no bounded range"
    assert any(k.startswith("u") for k, _, _ in ranges), "no unbacked symbol"
    assert any(e.startswith("Mul(Integer(2)") for e in corpus_wire().size_exprs), "no derived dim"


@pytest.mark.torchbind_test_lib  # needs libtorchbind_test.so (tests/conftest.py)
def test_node_metadata_keys_on_the_wire():
    keys = corpus_wire().meta_keys
    missing = {"stack_trace", "nn_module_stack", "source_fn_stack", "torch_fn", "custom", "from_node"} - keys
    assert not missing, sorted(missing)
    assert "custom" in corpus_wire().module_meta_keys


def test_duplicate_getitem_is_folded_on_the_wire():
    # The program's graph reads output 0 of topk through two getitem nodes; on the wire the
    # second one must not exist: its users refer to the first getitem's name.
    import operator

    ep = exported("duplicate_getitem", "export")
    getitems = [(n.args[0].name, n.args[1], n.name) for n in ep.graph.nodes if n.target is operator.getitem]
    assert len(getitems) > len({(src, idx) for src, idx, _ in getitems}), "no duplicate getitem in the graph"
    graph = document("duplicate_getitem", "export").graph_module.graph
    (topk,) = [n for n in graph.nodes if n.target == "torch.ops.aten.topk.default"]
    first = topk.outputs[0].value.name
    duplicates = {name for _, idx, name in getitems if idx == 0 and name != first}
    assert duplicates
    referenced = {
        named.arg.value.name for n in graph.nodes for named in n.inputs if named.arg.type == "as_tensor"
    }
    assert not duplicates & referenced
    assert not duplicates & set(graph.tensor_values)
    (sub,) = [n for n in graph.nodes if n.target == "torch.ops.aten.sub.Tensor"]
    assert sub.inputs[0].arg.value.name == first
