"""The reference tables of the wire unions (pt2serde.format.value_refs): a row per tag, and
the names each cardinality of argument yields, with their paths, in order."""

from pt2serde import schema
from pt2serde.format import value_refs as refs

A = schema.Argument
T = schema.TensorArgument


def test_every_union_tag_has_a_row():
    assert set(refs.ARGUMENT_ROWS) == set(A.MEMBERS)
    for cls in (schema.SymIntArgument, schema.SymFloatArgument, schema.SymBoolArgument,
                schema.OptionalTensorArgument):
        assert set(refs.ELEMENT_ROWS[cls]) == set(cls.MEMBERS)
        assert [r.tag for r in refs.ELEMENT_ROWS[cls].values() if r.table] == [
            "as_tensor" if cls is schema.OptionalTensorArgument else "as_name"]


def test_bridge_rows_cover_the_same_tags():
    from pt2serde.bridge.arguments import ROWS

    assert {row.tag for row in ROWS} == set(refs.ARGUMENT_ROWS)


def _refs(arg, **kw):
    return [(r.table, r.name, r.path) for r in refs.argument_refs(arg, "$", **kw)]


def test_one_and_list():
    assert _refs(A(as_tensor=T("x"))) == [("tensor_values", "x", "$")]
    assert _refs(A(as_tensors=[T("a"), T("b")])) == [("tensor_values", "a", "$[0]"), ("tensor_values", "b", "$[1]")]
    assert _refs(A(as_custom_obj=schema.CustomObjArgument("o", "cls"))) == [("custom_obj_values", "o", "$")]
    assert _refs(A(as_int=3)) == [] and _refs(A(as_ints=[1, 2])) == []


def test_sym_names_and_literals():
    si = schema.SymIntArgument
    assert _refs(A(as_sym_int=si(as_name="s"))) == [("sym_int_values", "s", "$")]
    assert _refs(A(as_sym_int=si(as_int=4))) == []
    assert _refs(A(as_sym_bools=[schema.SymBoolArgument(as_bool=True), schema.SymBoolArgument(as_name="b")])) == [
        ("sym_bool_values", "b", "$[1]")]
    elements = list(refs.argument_elements(A(as_sym_floats=[schema.SymFloatArgument(as_float=1.5)])))
    assert len(elements) == 1 and elements[0][1] is None


def test_optional_and_nested():
    ot = schema.OptionalTensorArgument
    assert _refs(A(as_optional_tensor=ot(as_tensor=T("x")))) == [("tensor_values", "x", "$")]
    assert _refs(A(as_optional_tensor=ot(as_none=True))) == []
    assert _refs(A(as_optional_tensors=[ot(as_none=True), ot(as_tensor=T("y"))])) == [("tensor_values", "y", "$[1]")]
    assert _refs(A(as_nested_tensors=[[T("a")], [T("b"), T("c")]])) == [
        ("tensor_values", "a", "$[0][0]"), ("tensor_values", "b", "$[1][0]"), ("tensor_values", "c", "$[1][1]")]


def test_mappings_entered_on_request():
    arg = A(as_string_to_argument={"k": A(as_tensor=T("x")), "n": A(as_int=1)})
    assert _refs(arg) == [("tensor_values", "x", "$.as_string_to_argument.k")]
    assert _refs(arg, mappings=False) == []


def test_rename_in_place():
    ot = schema.OptionalTensorArgument
    arg = A(as_optional_tensors=[ot(as_tensor=T("x"))])
    sym = A(as_sym_ints=[schema.SymIntArgument(as_name="s")])
    for a in (arg, sym):
        for r in refs.argument_refs(a):
            r.rename(r.name + "2")
    assert arg == A(as_optional_tensors=[ot(as_tensor=T("x2"))])
    assert sym == A(as_sym_ints=[schema.SymIntArgument(as_name="s2")])
    assert refs.single_ref_name(arg) == "x2" and refs.single_ref_name(A(as_tensors=[T("a"), T("b")])) is None


def test_spec_targets():
    for cls in (schema.InputSpec, schema.OutputSpec):
        assert set(refs.SPEC_TARGETS[cls]) == set(cls.MEMBERS)
    spec = schema.OutputSpec(buffer_mutation=schema.BufferMutationSpec(arg=T("x"), buffer_name="buf"))
    assert refs.spec_target(spec) == "buf"
    assert refs.spec_target(schema.OutputSpec(user_output=schema.UserOutputSpec(arg=A(as_none=True)))) is None
