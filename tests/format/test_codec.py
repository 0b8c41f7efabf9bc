"""The JSON codec: strict encoding as PyTorch writes it, strict decoding with $.paths."""

import json
import math

import pytest

from pt2serde import SerializeError, canonicalize, from_dict, schema, to_json_bytes
from pt2serde.format import strict_json
from pt2serde.format.codec import from_json_bytes, loads_json, to_dict
from pt2serde.format.schema_decoder import collect_problems, strict_decoder


def _node(**overrides):
    node = {
        "target": "torch.ops.aten.add.Tensor",
        "inputs": [{"name": "self", "arg": {"as_tensor": {"name": "x"}}, "kind": 1}],
        "outputs": [{"as_tensor": {"name": "add"}}],
        "metadata": {},
        "is_hop_single_tensor_return": None,
        "name": "add",
    }
    node.update(overrides)
    return node


def _program(nodes):
    meta = {
        "dtype": 7, "sizes": [{"as_int": 2}], "requires_grad": False,
        "device": {"type": "cpu", "index": None}, "strides": [{"as_int": 1}],
        "storage_offset": {"as_int": 0}, "layout": 7,
    }
    return {
        "graph_module": {
            "graph": {
                "inputs": [{"as_tensor": {"name": "x"}}],
                "outputs": [{"as_tensor": {"name": "add"}}],
                "nodes": nodes,
                "tensor_values": {"x": meta, "add": meta},
                "sym_int_values": {},
                "sym_bool_values": {},
                "is_single_tensor_return": False,
                "custom_obj_values": {},
                "sym_float_values": {},
            },
            "signature": {
                "input_specs": [{"user_input": {"arg": {"as_tensor": {"name": "x"}}}}],
                "output_specs": [{"user_output": {"arg": {"as_tensor": {"name": "add"}}}}],
            },
            "module_call_graph": [],
            "metadata": {},
            "treespec_namedtuple_fields": {},
        },
        "opset_version": {"aten": 10},
        "range_constraints": {},
        "schema_version": {"major": 8, "minor": 20},
        "verifiers": [],
        "torch_version": "2.13.0+cpu",
        "guards_code": [],
    }


def _error(cls, data) -> str:
    with pytest.raises(SerializeError) as info:
        from_dict(cls, data)
    return str(info.value)


# ----------------------------------------------------------------- round trips


def test_valid_program_round_trips_byte_identically():
    doc = _program([_node()])
    text = json.dumps(doc).encode()
    assert to_json_bytes(from_json_bytes(schema.ExportedProgram, text)) == text


def test_decoded_values_have_schema_types():
    program = from_dict(schema.ExportedProgram, _program([_node()]))
    node = program.graph_module.graph.nodes[0]
    assert isinstance(node, schema.Node)
    assert node.inputs[0].kind is schema.ArgumentKind.POSITIONAL
    assert node.inputs[0].arg.type == "as_tensor"
    meta = program.graph_module.graph.tensor_values["x"]
    assert meta.dtype is schema.ScalarType.FLOAT
    assert meta.layout is schema.Layout.Strided


def test_nonfinite_floats_are_strings_and_come_back():
    arg = schema.Argument.create(as_floats=[math.inf, -math.inf, math.nan, 1.5])
    text = to_json_bytes(arg)
    assert text == b'{"as_floats": ["Infinity", "-Infinity", "NaN", 1.5]}'
    json.loads(text, parse_constant=lambda tok: pytest.fail(f"bare {tok} token"))
    back = from_dict(schema.Argument, json.loads(text))
    assert back.as_floats[0] == math.inf and back.as_floats[1] == -math.inf
    assert math.isnan(back.as_floats[2]) and back.as_floats[3] == 1.5


def test_every_field_is_written_including_nulls_in_declaration_order():
    d = to_dict(schema.Node(target="t", inputs=[], outputs=[], metadata={}))
    assert list(d) == ["target", "inputs", "outputs", "metadata", "is_hop_single_tensor_return", "name"]
    assert d["name"] is None and d["is_hop_single_tensor_return"] is None


def test_int_in_float_field_decodes_as_float():
    assert from_dict(schema.ComplexValue, {"real": 1, "imag": "NaN"}).real == 1.0


def test_unknown_keys_are_ignored_forward_compatibility():
    data = {"name": "x", "added_in_a_later_minor": [1, 2]}
    assert from_dict(schema.TensorArgument, data) == schema.TensorArgument(name="x")
    assert collect_problems(schema.TensorArgument, data, unknown_fields=True).unknown_fields == ["$.added_in_a_later_minor"]


def test_collect_all_mode_reports_every_problem_as_the_strict_decoder_words_it():
    doc = _program([_node(inputs=[{"name": "self", "arg": {"as_int": "3"}, "kind": 9}]), _node(target=7)])
    del doc["graph_module"]["graph"]["nodes"][1]["outputs"]
    doc["graph_module"]["graph"]["nodes"][0]["future"] = {"x": 1}  # an unknown key: reported only when asked
    doc["graph_module"]["graph"]["nodes"].append(_node(inputs=[{"name": "a", "arg": {"as_float": 10**400}, "kind": 1}]))
    found = collect_problems(schema.ExportedProgram, doc)
    node = "$.graph_module.graph.nodes"
    assert found.value is None and found.unknown_fields == []
    assert found.problems == [
        ("Expected `int`, got `str`", f"{node}[0].inputs[0].arg.as_int"),
        ("Invalid enum value 9 for `ArgumentKind` (expected one of 0, 1, 2)", f"{node}[0].inputs[0].kind"),
        ("Expected `str`, got `int`", f"{node}[1].target"),
        ("Object missing required field `outputs`", f"{node}[1]"),
        ("Integer of 1329 bits is out of range for a `float`", f"{node}[2].inputs[0].arg.as_float"),
    ]
    assert str(pytest.raises(SerializeError, from_dict, schema.ExportedProgram, doc).value) == (
        f"Expected `int`, got `str` - at `{node}[0].inputs[0].arg.as_int`")  # the first of them
    assert collect_problems(schema.ExportedProgram, doc, unknown_fields=True).unknown_fields == [f"{node}[0].future"]


def test_collect_all_mode_stops_at_its_limit_and_decodes_what_is_sound():
    from pt2serde.format.schema_decoder import MAX_PROBLEMS

    found = collect_problems(schema.Argument, {"as_ints": ["x"] * (MAX_PROBLEMS + 5)})
    assert len(found.problems) == MAX_PROBLEMS
    assert found.problems[-1] == ("Expected `int`, got `str`", f"$.as_ints[{MAX_PROBLEMS - 1}]")
    sound = collect_problems(schema.ExportedProgram, _program([_node()]))
    assert sound.problems == [] and sound.value == from_dict(schema.ExportedProgram, _program([_node()]))


def test_as_none_accepts_legacy_empty_list():
    assert from_dict(schema.Argument, {"as_none": []}).type == "as_none"


# ------------------------------------------------------------------ error paths


def test_wrong_type_names_path():
    doc = _program([_node(inputs=[{"name": "self", "arg": {"as_int": "3"}, "kind": 1}])])
    assert _error(schema.ExportedProgram, doc) == (
        "Expected `int`, got `str` - at `$.graph_module.graph.nodes[0].inputs[0].arg.as_int`"
    )


def test_bool_is_not_an_int():
    assert _error(schema.SymInt, {"as_int": True}) == "Expected `int`, got `bool` - at `$.as_int`"


def test_missing_required_field_names_path():
    node = _node()
    del node["target"]
    assert _error(schema.ExportedProgram, _program([node])) == (
        "Object missing required field `target` - at `$.graph_module.graph.nodes[0]`"
    )


def test_unknown_union_tag_names_tag_and_path():
    doc = _program([_node(inputs=[{"name": "self", "arg": {"as_quaternion": [1, 2, 3, 4]}, "kind": 1}])])
    message = _error(schema.ExportedProgram, doc)
    assert message.startswith("Unknown tag `as_quaternion` for union `Argument` (known: as_none, as_tensor,")
    assert message.endswith(" - at `$.graph_module.graph.nodes[0].inputs[0].arg`")


def test_union_with_two_members_is_refused():
    assert _error(schema.SymInt, {"as_int": 1, "as_expr": {"expr_str": "s0"}}) == (
        "Expected exactly one member for union `SymInt`, got 2 - at `$`"
    )


def test_enum_out_of_range_names_path():
    doc = _program([_node()])
    doc["graph_module"]["graph"]["tensor_values"]["x"]["dtype"] = 99
    assert _error(schema.ExportedProgram, doc) == (
        "Invalid enum value 99 for `ScalarType` (expected one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, "
        "13, 28, 29, 30, 31, 32, 33, 34, 35) - at `$.graph_module.graph.tensor_values.x.dtype`"
    )


def test_enum_wrong_type():
    assert _error(schema.NamedArgument, {"name": "a", "arg": {"as_none": True}, "kind": "POSITIONAL"}) == (
        "Expected `int` (ArgumentKind), got `str` - at `$.kind`"
    )


def test_list_expected():
    assert _error(schema.Graph, {**_program([])["graph_module"]["graph"], "nodes": {}}) == (
        "Expected `array`, got `object` - at `$.nodes`"
    )


def test_object_expected_inside_list():
    doc = _program([_node(), 7])
    assert _error(schema.ExportedProgram, doc) == (
        "Expected `object` (Node), got `int` - at `$.graph_module.graph.nodes[1]`"
    )


def test_deep_subgraph_nesting_is_refused_with_path():
    graph = _program([])["graph_module"]["graph"]
    inner = graph
    for _ in range(80):
        inner = {**graph, "nodes": [_node(inputs=[{"name": "", "arg": {"as_graph": {"name": "g", "graph": inner}}}])]}
    message = _error(schema.Graph, inner)
    assert message.startswith(
        "Subgraphs and dict arguments are nested deeper than the limit of 64 levels - at "
        "`$.nodes[0].inputs[0].arg.as_graph.graph.nodes[0].inputs[0].arg.as_graph"
    )


def test_deep_dict_argument_nesting_is_refused():
    arg = {"as_int": 1}
    for _ in range(200):
        arg = {"as_string_to_argument": {"k": arg}}
    message = _error(schema.Argument, arg)
    assert message.startswith(
        "Subgraphs and dict arguments are nested deeper than the limit of 64 levels - at `$.as_string_to_argument.k."
    )
    assert message.count("as_string_to_argument") == 65


def test_json_level_errors():
    with pytest.raises(SerializeError, match=r"not valid JSON: Expecting value \(line 1, column 1\)"):
        loads_json(b"]")
    with pytest.raises(SerializeError, match="not valid UTF-8"):
        loads_json(b'{"a": "\xff"}')
    with pytest.raises(SerializeError, match="non-standard token NaN"):
        loads_json(b'{"a": NaN}')
    with pytest.raises(SerializeError, match="over the limit of 10 bytes"):
        loads_json(b"[" * 11, max_bytes=10)
    with pytest.raises(SerializeError, match="nested too deeply"):
        loads_json(b"[" * 100000 + b"]" * 100000)


# ------------------------------------------------------------------- encoding


def test_encoder_refuses_wrong_types_with_path():
    node = schema.Node(target="t", inputs=[schema.NamedArgument(name="a", arg=schema.Argument.create(as_int="3"))],
                       outputs=[], metadata={})
    with pytest.raises(SerializeError) as info:
        to_json_bytes(node)
    assert str(info.value) == "Expected `int`, got `str` - at `$.inputs[0].arg.as_int`"


def test_union_api():
    a = schema.Argument.create(as_tensor=schema.TensorArgument(name="x"))
    assert a.type == "as_tensor" and a._type == "as_tensor"
    assert a.value == schema.TensorArgument(name="x") == a.as_tensor
    with pytest.raises(AttributeError, match="Field as_int is not set"):
        a.as_int
    assert repr(a) == "Argument(as_tensor=TensorArgument(name='x'))"
    assert a == schema.Argument.create(as_tensor=schema.TensorArgument(name="x"))
    assert a != schema.Argument.create(as_tensor=schema.TensorArgument(name="y"))
    with pytest.raises(TypeError, match="exactly one member"):
        schema.Argument.create(as_int=1, as_float=2.0)
    with pytest.raises(TypeError, match="not a member of Argument"):
        schema.Argument.create(as_nothing=1)
    spec = schema.InputSpec.create(user_input=schema.UserInputSpec(arg=schema.Argument.create(as_none=True)))
    assert spec.user_input.arg.as_none is True


# ---------------------------------------------------------------- canonicalize


def test_canonicalize_program_without_outputs():
    doc = _program([_node()])
    doc["graph_module"]["graph"]["outputs"] = []
    doc["graph_module"]["signature"]["output_specs"] = []
    out = canonicalize(from_dict(schema.ExportedProgram, doc))
    assert out.graph_module.graph.outputs == []
    assert [n.outputs[0].as_tensor.name for n in out.graph_module.graph.nodes] == ["_1"]


def test_integer_past_the_digit_limit_is_a_serialize_error():
    with pytest.raises(SerializeError, match=r"JSON document cannot be read: Exceeds the limit \(4300 digits\)"):
        loads_json(b"[" + b"9" * 5000 + b"]")


# ------------------------------------------------- hostile values from Python callers

from pt2serde.format import codec as _codec  # noqa: E402
from pt2serde.format.fastcodec import fast_decoder  # noqa: E402

_GIANT = 10**4999


def _with(path, value):
    """The test program with ``value`` at ``path`` (a callable on the program dict)."""
    doc = _program([_node()])
    path(doc, value)
    return doc


def _graph(doc):
    return doc["graph_module"]["graph"]


#: (what, program dict, message of the careful decoder); every one is refused by both paths
BAD_PROGRAMS = [
    ("giant int size", _with(lambda d, v: _graph(d)["tensor_values"]["x"]["sizes"].__setitem__(0, {"as_int": v}), _GIANT),
     r"Integer of 16607 bits has more than 4300 digits - at `\$.graph_module.graph.tensor_values.x.sizes\[0\].as_int`"),
    ("giant negative int", _with(lambda d, v: _graph(d)["tensor_values"]["x"]["storage_offset"].__setitem__("as_int", v),
                                 -_GIANT), r"more than 4300 digits - at `\$.graph_module.graph.tensor_values.x"),
    ("giant int in a list of ints",
     _with(lambda d, v: d["graph_module"]["graph"]["nodes"][0]["inputs"][0].__setitem__("arg", {"as_ints": [1, v]}),
           _GIANT), r"more than 4300 digits - at `\$.graph_module.graph.nodes\[0\].inputs\[0\].arg.as_ints\[1\]`"),
    ("giant int in a dict of ints", _with(lambda d, v: d["opset_version"].__setitem__("aten", v), _GIANT),
     r"more than 4300 digits - at `\$.opset_version.aten`"),
    ("giant int as an enum", _with(lambda d, v: _graph(d)["tensor_values"]["x"].__setitem__("dtype", v), _GIANT),
     r"more than 4300 digits - at `\$.graph_module.graph.tensor_values.x.dtype`"),
    ("int too large for a float field",
     _with(lambda d, v: d["graph_module"]["graph"]["nodes"][0]["inputs"][0].__setitem__("arg", {"as_float": v}), 10**400),
     r"Integer of 1329 bits is out of range for a `float` - at `\$.graph_module.graph.nodes\[0\].inputs\[0\].arg.as_float`"),
    ("int key in a dict of structs", _with(lambda d, v: _graph(d)["tensor_values"].__setitem__(v, _graph(d)["tensor_values"]["x"]), 1),
     r"Expected `str` key, got `int` - at `\$.graph_module.graph.tensor_values`"),
    ("tuple key in a dict of ints", _with(lambda d, v: d["opset_version"].__setitem__(v, 1), ("a",)),
     r"Expected `str` key, got `tuple` - at `\$.opset_version`"),
    ("int key in an empty-valued dict", _with(lambda d, v: _graph(d)["sym_int_values"].__setitem__(v, {"as_int": 1}), 7),
     r"Expected `str` key, got `int` - at `\$.graph_module.graph.sym_int_values`"),
]


@pytest.mark.parametrize("what,doc,message", BAD_PROGRAMS, ids=[c[0] for c in BAD_PROGRAMS])
def test_fast_and_careful_decoders_refuse_the_same_values(what, doc, message):
    """from_dict tries the generated fast path first and falls back to the careful decoder:
    the fast path must never accept what the careful one refuses."""
    with pytest.raises(Exception):  # noqa: B017 - the fast path raises anything, without a path
        fast_decoder(schema.ExportedProgram)(doc)
    with pytest.raises(SerializeError, match=message):
        strict_decoder(schema.ExportedProgram)(doc)
    with pytest.raises(SerializeError, match=message):
        from_dict(schema.ExportedProgram, doc)


def test_the_int_limits_are_the_same_everywhere():
    from pt2serde.format import fastcodec
    from pt2serde.bridge import expr as exprparse

    assert fastcodec._INT_BOUND == 10**_codec.MAX_INT_DIGITS
    assert exprparse.MAX_INT_DIGITS == _codec.MAX_INT_DIGITS
    # the largest accepted ints pass both paths
    big = 10**4300 - 1
    doc = _with(lambda d, v: d["opset_version"].__setitem__("aten", v), big)
    assert fast_decoder(schema.ExportedProgram)(doc).opset_version["aten"] == big
    assert from_dict(schema.ExportedProgram, doc).opset_version["aten"] == big


def test_the_encoder_refuses_what_the_decoder_refuses():
    program = from_dict(schema.ExportedProgram, _program([_node()]))
    program.opset_version["aten"] = _GIANT
    with pytest.raises(SerializeError, match=r"more than 4300 digits - at `\$.opset_version.aten`"):
        to_dict(program)


# ------------------------------------------------------------- JSON expansion budget


@pytest.mark.parametrize("unit", [b"[]", b"[[[[]]]]", b"{}", b'{"":0}', b'{"a":[]}'])
def test_json_of_mostly_brackets_is_refused_before_parsing(unit):
    data = b"[" + b",".join([unit] * ((4 << 20) // (len(unit) + 1))) + b"]"
    with pytest.raises(SerializeError, match=r"^payload header would expand to about \d+ bytes of Python objects, "
                                             r"over the limit of \d+ \(16 per byte of its \d+ bytes, plus 8388608\)"):
        loads_json(data, what="payload header")


@pytest.mark.parametrize("unit", [b"0", b"1.5", b'"ab"', b"null", b'{"name": "x", "value": 1}'])
def test_json_of_ordinary_values_is_parsed(unit):
    data = b"[" + b",".join([unit] * ((4 << 20) // (len(unit) + 1))) + b"]"
    assert len(loads_json(data)) > 100_000


def test_small_json_is_never_counted(monkeypatch):
    monkeypatch.setattr(strict_json, "json_expansion", lambda data: pytest.fail("counted a small document"))
    assert loads_json(b"[" + b",".join([b"[]"] * 10_000) + b"]")[0] == []


def test_a_real_program_is_far_under_the_budget():
    raw = to_json_bytes(from_dict(schema.ExportedProgram, _program([_node(name=f"add{i}") for i in range(20_000)])))
    assert len(raw) > 4 << 20
    assert strict_json.json_expansion(raw) < 10 * len(raw)
    assert loads_json(raw)["opset_version"] == {"aten": 10}
