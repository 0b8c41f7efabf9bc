"""The gate for document strings that can become code: its table, its classes, its walker
(``pt2serde.format.codegen_fields``, ``pt2serde.format.names``), and that its table of known
functions is the one ``pt2serde.bridge.targets`` resolves (the torch.ops lookups themselves:
``tests/bridge/test_targets.py``).

The hostile files that break out of torch's generated code through these fields are in
``tests/hostile/cases_codegen.py`` (run through every entry point).
"""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
import typing

import pytest
import torch

import pt2serde
from pt2serde.format import names, upgrade
from pt2serde import schema
from pt2serde.format.check import check_program
from pt2serde.format.codegen_fields import CHECKERS, CODE_FIELDS, NEVER_CODE, check_code_fields, code_field_problems
from pt2serde.errors import SerializeError

#: every character str.splitlines() ends a line at (compile() ends lines at \r and \n too)
LINE_BREAKS = [c for c in map(chr, range(0x110000)) if len(f"a{c}b".splitlines()) > 1]
NAME_CLASSES = ["identifier", "parameter_name", "value_name", "attribute_path", "quoted_text", "call_target"]


def test_the_line_breaks_are_the_ones_we_know():
    assert "".join(LINE_BREAKS) == "\n\x0b\x0c\r\x1c\x1d\x1e\x85\u2028\u2029"


# ------------------------------------------------------------------------ the classes


@pytest.mark.parametrize("kind,good,bad", [
    ("identifier", ["x", "arg0_1", "_x", "ß", "self"],
     ["", "from", "None", "a b", "a.b", "1x", "x=1", "a\rb", 3, None, "ｓｅｌｆ", "ｐ_w", "_＿debug＿＿", "__debug__"]),
    ("parameter_name", ["x", "input", "d"], ["self", "ｓｅｌｆ", "from", "a b"]),
    ("value_name", ["x", "arg0_1", "p_w", "true_graph_0", "input_1", "input", "sum"],
     ["self", "torch", "getattr", "slice", "inf", "pytree", "__debug__", "ß", "ｘ", "a-b", "from", ""]),
    ("attribute_path", ["w", "layers.0.weight", "a-b", "blocks[1:]", "a@1", "getattr(L['self'], 'a[(1)]')"],
     ["", "a..b", ".a", "a.", 'a"b', "a\\b", "a\x00b", "a\u202eb", b"w", "ｂ", "layers.ｗ"]),
    ("quoted_text", ["x", "a b", "a.b,c;d"], ['a"b', "a'b", "a\\b", "a\tb", "\x7f"]),
    ("comment_text", ["x", 'File "a.py", line 1, in f\n    y = x + 1\n', "a\tb"], ["a\rb", "a\x00b", "\u202e", 5]),
    ("call_target", ["torch.ops.aten.add.Tensor", "_operator.mul", "torch._C._set_grad_enabled",
                     "torch.ops._c10d_functional.all_reduce.default", "torch.ops.higher_order.cond", "#ns:op"],
     ["torch.ops.__path__.x.default", "torch.ops.aten.t.default.__class__", "os.system('x')", "a..b", "",
      "torch.ops.aten.add.Tensor\r", "torch.ops.аten.add.Tensor", "#ns:\rop", "os.system", "builtins.eval",
      "torch.ops.aten.add", "torch.load", "math.floor", "torch.ops.higher_order.cond.x"]),
])
def test_each_class_accepts_and_refuses(kind, good, bad):
    check = CHECKERS[kind]
    for value in good:
        assert check(value, "thing") == value
    for value in bad:
        with pytest.raises(SerializeError, match=r"^(thing|Call target) .* - at `\$\.p`$|^thing is \d+ characters long"):
            check(value, "thing", "$.p")


@pytest.mark.parametrize("kind", NAME_CLASSES + ["comment_text"])
@pytest.mark.parametrize("char", LINE_BREAKS, ids=[f"U+{ord(c):04X}" for c in LINE_BREAKS])
def test_every_line_break_is_refused(kind, char):
    if kind == "comment_text" and char == "\n":
        assert CHECKERS[kind](f"a{char}b", "text") == f"a{char}b"  # fx prefixes each \n-line with '#'
        return
    value = f"torch.ops.aten{char}.add" if kind == "call_target" else f"a{char}b"
    with pytest.raises(SerializeError, match=r"is not"):
        CHECKERS[kind](value, "thing", "$.p")


@pytest.mark.parametrize("kind", NAME_CLASSES)
def test_every_other_control_character_is_refused_in_names(kind):
    for code in [*range(0x20), *range(0x7f, 0xa0)]:
        with pytest.raises(SerializeError):
            CHECKERS[kind](f"a{chr(code)}b", "thing")


def test_names_are_bounded():
    with pytest.raises(SerializeError, match=r"^thing is 4097 characters long \(at most 4096\)"):
        names.identifier("x" * (names.MAX_NAME_LENGTH + 1), "thing")


# ------------------------------------------------------------------------ the table


def _schema_types() -> list[type]:
    return [v for v in vars(schema).values() if isinstance(v, type) and dataclasses.is_dataclass(v)
            and v.__module__ == schema.__name__] + [
        v for v in vars(schema).values() if isinstance(v, type) and hasattr(v, "MEMBERS") and v.__module__ == schema.__name__]


def _string_fields() -> set[str]:
    out = set()
    for cls in _schema_types():
        for field, tp in typing.get_type_hints(cls).items():
            if field.startswith("_") or typing.get_origin(tp) is typing.ClassVar:
                continue
            if "str" in repr(tp) or tp is str:
                out.add(f"{cls.__name__}.{field}")
    return out


def test_every_string_field_of_the_schema_is_classified():
    """A new schema field holding a string must be put in CODE_FIELDS or NEVER_CODE."""
    classified = {key.split("[")[0] for key in CODE_FIELDS} | set(NEVER_CODE)
    missing = _string_fields() - classified
    assert not missing, f"classify these fields in pt2serde.format.codegen_fields: {sorted(missing)}"


def test_the_table_names_real_fields_and_known_classes():
    fields = _string_fields()
    for key, row in CODE_FIELDS.items():
        assert key.split("[")[0] in fields, key
        assert row.kind in CHECKERS and row.what and row.where, key
    assert not {k.split("[")[0] for k in CODE_FIELDS if "[" not in k} & set(NEVER_CODE)


def test_the_walkers_shortcuts_ask_the_right_classes():
    """The walker asks its memo of accepted values directly for node and value names (one
    class) and the three comment fields (one class): those fields must share those classes."""
    from pt2serde.format import codegen_fields as cf

    assert CODE_FIELDS["TensorArgument.name"].kind == CODE_FIELDS["Node.name"].kind == cf._VALUE_NAME
    assert CODE_FIELDS["Node.target"].kind == cf._CALL_TARGET
    assert {CODE_FIELDS[f"Node.metadata[{k}]"].kind for k in ("stack_trace", "torch_fn", "source_fn_stack")} \
        == {cf._COMMENT}


# ------------------------------------------------------------------------ the walker


class _Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x, *, scale):
        with torch.no_grad():
            y = x * 2
        return self.lin(y) * scale


@pytest.fixture(scope="module")
def doc() -> schema.ExportedProgram:
    ep = torch.export.export(_Small(), (torch.ones(2, 4),), {"scale": torch.ones(4)})
    return upgrade.program_from_json(pt2serde.serialize(ep).exported_program)


def _node(target: str, inputs: list[schema.NamedArgument]) -> schema.Node:
    return schema.Node(target=target, inputs=inputs, outputs=[schema.Argument.create(as_none=True)], metadata={})


def _kw(name: str) -> schema.NamedArgument:
    return schema.NamedArgument(name=name, arg=schema.Argument.create(as_bool=True), kind=schema.ArgumentKind.KEYWORD)


def test_an_exported_program_has_no_problems(doc):
    assert list(code_field_problems(doc)) == []
    check_code_fields(doc)


def test_keyword_names_of_targets_without_a_schema_are_identifiers(doc):
    d = copy.deepcopy(doc)
    nodes = d.graph_module.graph.nodes
    nodes.insert(0, _node("torch._C._set_grad_enabled", [_kw("from")]))
    nodes.insert(0, _node("torch.ops.higher_order.wrap_with_set_grad_enabled", [_kw("a\rb")]))
    nodes.insert(0, _node("torch.ops.aten.pow.Scalar", [_kw("from")]))  # an op schema's names: may be keywords
    assert list(code_field_problems(d)) == [
        ("keyword argument name 'a\\rb' is not a Python identifier", "$.graph_module.graph.nodes[1].inputs[0].name"),
        ("keyword argument name 'from' is not a Python identifier", "$.graph_module.graph.nodes[2].inputs[0].name"),
    ]


def test_a_refused_value_is_reported_at_every_use(doc):
    """Accepted values are remembered (names recur at each use, module stacks on most nodes);
    refused ones are not: each node that repeats one gets its own problem."""
    d = copy.deepcopy(doc)
    nodes = d.graph_module.graph.nodes
    last = len(nodes) - 1
    stack = nodes[-1].metadata.get("nn_module_stack")
    for i in (0, last):
        nodes[i].metadata["stack_trace"] = "line\rexec('1')"
        nodes[i].metadata["nn_module_stack"] = 'L__self___lin,lin"),torch.nn.Linear'
    nodes[last - 1].metadata["nn_module_stack"] = stack  # accepted, then refused entries follow
    where = [w for _, w in code_field_problems(d)]
    assert where == [f"$.graph_module.graph.nodes[{i}].metadata.{k}" for i in (0, last)
                     for k in ("stack_trace", "nn_module_stack")], where


def test_accepted_values_are_remembered_across_walks_and_refused_ones_are_not(doc, monkeypatch):
    """The memo of accepted values is the process's: a second walk of the same program (or a
    sibling sharing its names, targets and module stacks) asks no checker again, while a
    refused value is refused at every walk."""
    from pt2serde.format import codegen_fields as cf

    calls: list[str] = []
    counted = {kind: (lambda f: lambda value, *a, **k: (calls.append(value), f(value, *a, **k))[1])(f)
               for kind, f in CHECKERS.items()}
    monkeypatch.setattr(cf, "CHECKERS", counted)
    monkeypatch.setattr(cf, "_ACCEPTED", set())
    d = copy.deepcopy(doc)
    d.graph_module.graph.nodes[0].metadata["stack_trace"] = "line\rexec('1')"
    first = list(code_field_problems(d))
    assert calls and len(first) == 1
    calls.clear()
    assert list(code_field_problems(d)) == first
    assert calls == ["line\rexec('1')"]  # only the refused value is asked again


def test_the_memo_of_accepted_values_is_bounded(doc, monkeypatch):
    """A file of many long names cannot make the memo hold more than its cap: it starts afresh."""
    from pt2serde.format import codegen_fields as cf

    monkeypatch.setattr(cf, "_ACCEPTED", set())
    monkeypatch.setattr(cf, "_accepted_chars", 0)
    monkeypatch.setattr(cf, "MAX_ACCEPTED_CHARS", 4000)
    d = copy.deepcopy(doc)
    for i, node in enumerate(d.graph_module.graph.nodes):
        node.metadata["stack_trace"] = f"File {i}\n" + "x" * 900
    assert list(code_field_problems(d)) == []
    assert 0 < cf._accepted_chars <= 4000
    assert not any(v.startswith("File 0\n") for _, v in cf._ACCEPTED)  # the cap was reached: started afresh
    assert sum(len(v) + 64 for _, v in cf._ACCEPTED) == cf._accepted_chars


@pytest.mark.parametrize("stack", [["L__self__,,M"], {"a": 1}, 3])
def test_a_module_stack_that_is_not_a_string_is_a_problem(doc, stack):
    """A document built in Python can hold anything: validate names it instead of raising."""
    d = copy.deepcopy(doc)
    d.graph_module.graph.nodes[0].metadata["nn_module_stack"] = stack
    assert list(code_field_problems(d)) == [
        (f"nn_module_stack metadata must be a string, got {type(stack).__name__}",
         "$.graph_module.graph.nodes[0].metadata.nn_module_stack")]


def test_validate_lists_every_problem_and_load_raises_the_first(doc):
    d = copy.deepcopy(doc)
    gm = d.graph_module
    gm.module_call_graph[0].signature.forward_arg_names = ["x", "a=exec('1')"]
    gm.module_call_graph.append(schema.ModuleCallEntry(fqn='lin")\rx', signature=None))
    gm.graph.inputs[-1].as_tensor.name = "x y"
    gm.graph.nodes[-1].metadata["stack_trace"] = "line\rexec('1')"
    gm.graph.nodes[-1].metadata["nn_module_stack"] = 'L__self__,,M;L__self___lin,lin"),torch.nn.Linear'
    gm.signature.input_specs[0].parameter.parameter_name = "lin..weight"
    problems = check_program(d)
    gate = [(p.message, p.where) for p in problems if "is not" in p.message]
    assert [w for _, w in gate] == [
        "$.graph_module.graph.inputs[3].as_tensor.name",
        f"$.graph_module.graph.nodes[{len(gm.graph.nodes) - 1}].metadata.stack_trace",
        f"$.graph_module.graph.nodes[{len(gm.graph.nodes) - 1}].metadata.nn_module_stack",
        "$.graph_module.signature.input_specs[0].parameter.parameter_name",
        "$.graph_module.module_call_graph[0].signature.forward_arg_names[1]",
        f"$.graph_module.module_call_graph[{len(gm.module_call_graph) - 1}].fqn",
    ], gate
    assert gate[0][0] == "graph input name 'x y' is not a value name (an ASCII identifier, not a keyword, torch, getattr or self)"
    with pytest.raises(SerializeError) as e:
        check_code_fields(d)
    assert str(e.value) == "graph input name 'x y' is not a value name (an ASCII identifier, not a keyword, torch, getattr or self) - at " \
                           "`$.graph_module.graph.inputs[3].as_tensor.name`"


def test_the_walk_stops_after_the_problem_cap(doc):
    """5000 refused keyword names: the gate's walk ends past validate's cap (1000) instead of
    listing them all, and validate says it stopped."""
    from pt2serde.format.schema_decoder import MAX_PROBLEMS, STOPPED_TEXT

    d = copy.deepcopy(doc)
    d.graph_module.graph.nodes.insert(0, _node("torch._C._set_grad_enabled", [_kw("from")] * 5000))
    found = list(code_field_problems(d))
    assert len(found) == MAX_PROBLEMS + 1
    assert found[-1] == ("keyword argument name 'from' is not a Python identifier",
                         f"$.graph_module.graph.nodes[0].inputs[{MAX_PROBLEMS}].name")
    problems = check_program(d)
    assert len(problems) == MAX_PROBLEMS + 1 and problems[-1].message == STOPPED_TEXT


def test_kwargs_keys_of_every_in_spec_are_identifiers(doc):
    import json

    d = copy.deepcopy(doc)
    sig = d.graph_module.module_call_graph[0].signature
    protocol, root = json.loads(sig.in_spec)
    assert json.loads(root["children_spec"][1]["context"]) == ["scale"]
    root["children_spec"][1]["context"] = json.dumps(["scale\r"])
    sig.in_spec = json.dumps([protocol, root])
    assert list(code_field_problems(d)) == [("keyword argument name 'scale\\r' is not a Python identifier",
                                             "$.graph_module.module_call_graph[0].signature.in_spec")]


def test_guards_are_checked_by_the_guard_grammar(doc):
    d = copy.deepcopy(doc)
    d.guards_code = ["L['x'].size()[0] == 2", "__import__('os').system('x')"]
    problems = list(code_field_problems(d))
    assert [p for _, p in problems] == ["$.guards_code[1]"]


def test_the_walker_module_is_torch_free():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['sympy'] = None\n"
            "import pt2serde.format.codegen_fields\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --------------------------------------------- call indices; the table of known functions
# (the torch.ops lookups of load: tests/bridge/test_targets.py)


@pytest.mark.parametrize("text,bad", [
    ("inner", False), ("inner@1", False), ("L__self__inner@12", False),
    ("inner@", True), ("inner@x", True), ("inner@1@2", True), ("L@__self__inner", True),
    ("inner@" + "9" * 10, True), ("inner@\u0661", True),  # non-ASCII digits: int() takes them, we do not
])
def test_call_index_after_at_is_one_decimal_number(text, bad):
    from pt2serde.format.codegen_fields import call_index_problem

    problem = call_index_problem(text, "module path")
    assert (problem is not None) == bad
    if bad:
        assert problem == f"module path {text!r} has a call index that is not one decimal number after '@'"


def test_the_known_function_table_is_what_targets_resolves():
    """validate's torch-free table of call targets that are not operators names exactly the
    functions load resolves (pt2serde.bridge.targets.KNOWN_FUNCTIONS, built from torch's objects)."""
    from pt2serde.format.codegen_fields import KNOWN_FUNCTION_NAMES
    from pt2serde.bridge.targets import KNOWN_FUNCTIONS

    assert set(KNOWN_FUNCTIONS) == KNOWN_FUNCTION_NAMES
