"""Upgraders: every version step starts from a real document written by that release."""

import copy
import json
import os
import zipfile

import pytest
import sympy

import pt2serde
from compat import CORPUS_DIR
from pt2serde import SerializeError, schema
from pt2serde.bridge.expr import ExprParser
from pt2serde.format.legacy_expr import printed_to_srepr
from pt2serde.format.upgrade import STEPS, decode_program, program_from_json, upgrade

# the release whose documents each step starts from
SOURCE_RELEASE = {(7, 0): "2.5.1", (8, 0): "2.6.0", (8, 7): "2.7.1", (8, 8): "2.8.0", (8, 14): "2.9.1"}


def _document(release: str, program: str) -> dict:
    with zipfile.ZipFile(os.path.join(CORPUS_DIR, release, f"{program}.pt2")) as z:
        name = next(n for n in z.namelist()
                    if n == "serialized_exported_program.json" or n.endswith("models/model.json"))
        return json.loads(z.read(name))


def _expressions(doc) -> list[str]:
    out = []

    def walk(v):
        if isinstance(v, dict):
            if isinstance(v.get("expr_str"), str):
                out.append(v["expr_str"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(doc)
    return out


def test_steps_chain_every_release_version_to_the_current_schema():
    assert [s.source for s in STEPS] == [(7, 0), (8, 0), (8, 7), (8, 8), (8, 14)]
    for a, b in zip(STEPS, STEPS[1:]):
        assert b.source <= a.target < b.target  # each step lands where the next one starts
    assert STEPS[-1].target == schema.SCHEMA_VERSION
    written = {}
    for release in SOURCE_RELEASE.values():
        v = _document(release, "mlp")["schema_version"]
        written[release] = (v["major"], v["minor"])
    assert written == {"2.5.1": (7, 3), "2.6.0": (8, 2), "2.7.1": (8, 7), "2.8.0": (8, 8), "2.9.1": (8, 14)}
    for step in STEPS:
        assert step.source <= written[SOURCE_RELEASE[step.source]] < step.target


def test_step_7_to_8_rewrites_printed_expressions_and_bounds():
    doc = _document("2.5.1", "dyn_derived")
    before = _expressions(doc)
    assert "2*s1" in before or any("*" in e for e in before)  # sympy's printed form
    STEPS[0].apply(doc)
    after = _expressions(doc)
    assert len(after) == len(before)
    parser = ExprParser()
    for printed, srepr in zip(before, after):
        assert srepr.startswith(("Symbol(", "Mul(", "Add(", "Integer(", "FloorDiv("))
        ours = parser.parse(srepr)
        theirs = sympy.sympify(printed)  # trusted test input: what PyTorch 2.5 itself would do
        values = {sym.name: 3 + i for i, sym in enumerate(sorted(theirs.free_symbols, key=str))}
        sub = lambda e: e.subs({sym: values[sym.name] for sym in e.free_symbols})  # noqa: E731
        assert sub(ours) == sub(theirs), (printed, srepr)
    decode_program(doc | {"schema_version": {"major": 8, "minor": 2}})


def test_step_7_to_8_reads_bare_infinity_tokens_only_in_schema_7():
    with zipfile.ZipFile(os.path.join(CORPUS_DIR, "2.5.1", "dyn_auto.pt2")) as z:
        raw = z.read("serialized_exported_program.json")
    assert b"Infinity" in raw
    program = program_from_json(raw)
    assert all(rc.max_val is None or isinstance(rc.max_val, int) for rc in program.range_constraints.values())
    newer = raw.replace(b'"major": 7, "minor": 3', b'"major": 8, "minor": 20')
    with pytest.raises(SerializeError, match="non-standard token Infinity"):
        program_from_json(newer)


def test_step_8_2_to_8_7_splits_tuple_outputs_of_higher_order_ops():
    doc = _document("2.6.0", "cond")
    cond = next(n for n in doc["graph_module"]["graph"]["nodes"] if n["target"] == "torch.ops.higher_order.cond")
    assert "is_hop_single_tensor_return" not in cond
    assert list(cond["outputs"][0]) == ["as_tensors"]
    names = [t["name"] for t in cond["outputs"][0]["as_tensors"]]
    STEPS[1].apply(doc)
    assert cond["outputs"] == [{"as_tensor": {"name": n}} for n in names]
    assert cond["is_hop_single_tensor_return"] is False


def test_step_8_2_to_8_7_drops_default_scan_arguments():
    doc = _document("2.6.0", "scan")
    scan = next(n for n in doc["graph_module"]["graph"]["nodes"] if n["target"] == "torch.ops.higher_order.scan")
    assert len(scan["inputs"]) == 6
    assert [i["arg"] for i in scan["inputs"][3:5]] == [{"as_int": 0}, {"as_bool": False}]
    STEPS[1].apply(doc)
    assert len(scan["inputs"]) == 4


def test_step_8_2_to_8_7_refuses_scans_it_cannot_express():
    doc = _document("2.6.0", "scan")
    scan = next(n for n in doc["graph_module"]["graph"]["nodes"] if n["target"] == "torch.ops.higher_order.scan")
    scan["inputs"][4]["arg"] = {"as_bool": True}
    with pytest.raises(SerializeError, match=r"scans along dim .* with reverse=.*only dim 0 forward scans"):
        STEPS[1].apply(doc)


@pytest.mark.parametrize("source", [(8, 7), (8, 8), (8, 14)])
def test_steps_without_wire_changes_keep_documents_as_they_are(source):
    release = SOURCE_RELEASE[source]
    for program in ("mlp", "cond", "dyn_derived", "custom_op_functionalized"):
        doc = _document(release, program)
        before = copy.deepcopy(doc)
        step = next(s for s in STEPS if s.source == source)
        step.apply(doc)
        assert doc == before
        upgraded = copy.deepcopy(doc)
        assert upgrade(upgraded) == (doc["schema_version"]["major"], doc["schema_version"]["minor"])
        assert upgraded["schema_version"] == {"major": 8, "minor": 20}
        decode_program(upgraded)


@pytest.mark.parametrize("release", ["2.5.1", "2.6.0", "2.7.1", "2.8.0", "2.9.1"])
def test_whole_chain_decodes_every_document_of_a_release(release):
    folder = os.path.join(CORPUS_DIR, release)
    count = 0
    for file in sorted(os.listdir(folder)):
        if file.endswith(".pt2"):
            with zipfile.ZipFile(os.path.join(folder, file)) as z:
                for n in z.namelist():
                    if n == "serialized_exported_program.json" or "/models/" in n:
                        program = program_from_json(z.read(n))
                        assert program.schema_version == schema.SchemaVersion(major=8, minor=20)
                        count += 1
    assert count >= 28


def test_major_versions_without_a_step_are_refused():
    doc = _document("2.5.1", "mlp")
    doc["schema_version"] = {"major": 6, "minor": 9}
    with pytest.raises(SerializeError, match=r"schema version 6\.9 does not match our current schema version "
                                             r"8\.20: this reader reads versions 7\.0 to 8\.20"):
        decode_program(doc)


@pytest.mark.parametrize("printed,expected", [
    ("s0", "Symbol('s0', positive=True, integer=True)"),
    ("u1 >= 1", "GreaterThan(Symbol('u1', integer=True), Integer(1))"),
    ("2*s2", "Mul(Integer(2), Symbol('s2', positive=True, integer=True))"),
    ("(s0//2) + 1", "Add(FloorDiv(Symbol('s0', positive=True, integer=True), Integer(2)), Integer(1))"),
    ("s0 - s1", "Add(Symbol('s0', positive=True, integer=True), Mul(Integer(-1), Symbol('s1', positive=True, integer=True)))"),
    ("-s0**2 + 3", "Add(Mul(Integer(-1), Pow(Symbol('s0', positive=True, integer=True), Integer(2))), Integer(3))"),
    ("Max(1, s0)", "Max(Integer(1), Symbol('s0', positive=True, integer=True))"),
    ("(s0 > 2) & (u0 < 5)", "And(StrictGreaterThan(Symbol('s0', positive=True, integer=True), Integer(2)), "
                            "StrictLessThan(Symbol('u0', integer=True), Integer(5)))"),
    ("0.5*zf0", "Mul(Float('0.5', precision=53), Symbol('zf0', real=True))"),
    ("-oo", "-oo"),
])
def test_printed_expressions(printed, expected):
    assert printed_to_srepr(printed) == expected
    ours = ExprParser().parse(expected)
    theirs = sympy.sympify(printed)  # trusted test input: how PyTorch 2.5 read its own documents
    for values in ({"s0": 3, "s1": 5, "s2": 2, "u0": 4, "u1": 7, "zf0": 1.5},
                   {"s0": 8, "s1": 1, "s2": 9, "u0": -2, "u1": 0, "zf0": -0.25}):
        def at(expr):
            return expr.subs({sym: values[sym.name] for sym in expr.free_symbols}) if hasattr(expr, "subs") else expr
        assert at(ours) == at(theirs), (printed, values)


@pytest.mark.parametrize("text,message", [
    ("__import__('os')", r"unexpected character \"'\""),
    ("s0.__class__", r"unexpected character '\.'"),
    ("s0 +", "ends too early"),
    ("(" * 300 + "s0" + ")" * 300, "nested too deeply"),
    ("s0 s1", "unexpected 's1'"),
])
def test_printed_expression_errors(text, message):
    with pytest.raises(SerializeError, match=message):
        printed_to_srepr(text)


# ------------------------------------------------- schema-7 expressions: flat, linear, bounded

_S = "Symbol('s{}', positive=True, integer=True)"


def test_printed_chains_become_one_call():
    """``a + b + c`` is one ``Add`` (as sympy writes it), not nested once per operator."""
    s0, s1, s2 = (_S.format(i) for i in range(3))
    assert printed_to_srepr("s0 + s1 + s2") == f"Add({s0}, {s1}, {s2})"
    assert printed_to_srepr("s0*s1/s2") == f"Mul({s0}, {s1}, Pow({s2}, Integer(-1)))"
    assert printed_to_srepr("s0 - s1 - s2") == f"Add({s0}, Mul(Integer(-1), {s1}), Mul(Integer(-1), {s2}))"
    assert printed_to_srepr("(s0 + s1)*s2") == f"Mul(Add({s0}, {s1}), {s2})"
    long_sum = printed_to_srepr(" + ".join(f"s{i}" for i in range(250)))
    assert ExprParser().parse(long_sum) == sympy.Add(*(sympy.Symbol(f"s{i}", positive=True, integer=True)
                                                        for i in range(250)))


def _seconds(text: str) -> float:
    import time
    import timeit

    # CPU time of this process, best of 5: other processes on a busy machine don't count
    return min(timeit.repeat(lambda: printed_to_srepr(text), number=1, repeat=5, timer=time.process_time))


def test_printed_expression_upgrade_is_linear():
    """The schema-7 upgrade used to rebuild the string per operator: 100 KB cost 35 s."""
    small, large = " - ".join(["s0"] * 900), " - ".join(["s0"] * 9000)
    ratio = _seconds(large) / _seconds(small)
    assert ratio < 30, ratio  # linear: ~10; the quadratic upgrader measured ~100


def test_printed_expression_with_too_many_operands_is_refused_early():
    with pytest.raises(SerializeError, match=r"expression of more than 10000 values at offset 50000"):
        printed_to_srepr(" - ".join(["s0"] * 20_000))


def test_long_schema_7_expressions_in_a_document():
    """A 2.5.1 document whose sizes are a 201-term printed sum decodes; 100 KB ones are refused."""
    doc = _document("2.5.1", "dyn_batch")

    def with_sizes(text):
        d = copy.deepcopy(doc)
        for meta in d["graph_module"]["graph"]["tensor_values"].values():
            for size in meta["sizes"]:
                if "as_expr" in size:
                    size["as_expr"]["expr_str"] = text
        return d

    program = decode_program(with_sizes("s0" + " + s0 - s0" * 100))
    texts = [s.as_expr.expr_str for t in program.graph_module.graph.tensor_values.values()
             for s in t.sizes if s.type == "as_expr"]
    assert texts and ExprParser().parse(texts[0]) == sympy.Symbol("s0", positive=True, integer=True)
    with pytest.raises(SerializeError, match="expression of more than 10000 values"):
        decode_program(with_sizes(" - ".join(["s0"] * 20_000)))
