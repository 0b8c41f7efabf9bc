"""pt2serde.bridge.signature: SymBool user outputs in the graph signature (PyTorch 2.13
cannot serialize them)."""

import pytest

from artifacts import document


@pytest.mark.parametrize("form", ["export", "decomposed"])
def test_symbool_user_output_fragment(form):
    doc = document("symbool_user_output", form)
    gm = doc["graph_module"]
    graph = gm["graph"]
    tensor_out, eq_out, not_out = graph["outputs"]
    assert tensor_out == {"as_tensor": {"name": "add"}}
    eq_name, not_name = eq_out["as_sym_bool"]["as_name"], not_out["as_sym_bool"]["as_name"]
    assert gm["signature"]["output_specs"] == [
        {"user_output": {"arg": {"as_tensor": {"name": "add"}}}},
        {"user_output": {"arg": {"as_sym_bool": {"as_name": eq_name}}}},
        {"user_output": {"arg": {"as_sym_bool": {"as_name": not_name}}}},
    ]
    producers = {n["outputs"][0]["as_sym_bool"]["as_name"]: n for n in graph["nodes"]
                 if n["outputs"] and "as_sym_bool" in n["outputs"][0]}
    assert producers[eq_name]["target"] == "_operator.eq"
    assert [i["name"] for i in producers[eq_name]["inputs"]] == ["a", "b"]
    assert producers[not_name]["target"] == "torch.sym_not"
    eq = graph["sym_bool_values"][eq_name]
    assert eq == {"as_expr": {"expr_str": eq["as_expr"]["expr_str"], "hint": None}}
    assert eq["as_expr"]["expr_str"].startswith("Equality(Symbol(")
