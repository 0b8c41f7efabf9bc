"""Strings of a program document that torch writes into generated code (issue 10, findings 1, 3, 4, 12b).

Each case was first run on the code before the gate (``pt2serde.format.codegen_fields``) and ran
code from the file (the marker appeared, or the oracle saw module-level statements); now
each is refused by ``load`` and ``validate`` alike, naming the field and its ``$.path``.
"""

from __future__ import annotations

import json
from typing import Callable

from everywhere import Case, doc_case, exec_code


def _tail_function(code: str) -> str:
    """``\\r`` + code + a ``def`` that swallows the rest of fx's line and body: compile() ends a
    line at ``\\r`` while fx indents by splitting on ``\\n``, so ``code`` lands at module level."""
    return "\r" + code + "\rdef g(self):\r    return (f\""


# ---- finding 1: NamedArgument.name of a target without a schema (a pre-dispatch helper)


def _grad_node_breakout(doc: dict, marker: str) -> None:
    name = "a=1)\r" + exec_code(marker) + "\rdef g():\r    z=dict(y"
    doc["graph_module"]["graph"]["nodes"].insert(0, {
        "target": "torch._C._set_grad_enabled",
        "inputs": [{"name": name, "arg": {"as_bool": True}, "kind": 2}],
        "outputs": [{"as_none": True}], "metadata": {}, "is_hop_single_tensor_return": None,
        "name": "_set_grad_enabled"})


def _grad_node_keyword(doc: dict, marker: str) -> None:
    doc["graph_module"]["graph"]["nodes"].insert(0, {
        "target": "torch._C._set_grad_enabled",
        "inputs": [{"name": "from", "arg": {"as_bool": True}, "kind": 2}],
        "outputs": [{"as_none": True}], "metadata": {}, "is_hop_single_tensor_return": None,
        "name": "_set_grad_enabled"})


# ---- finding 3: module-call-graph names in the pytree code of ep.module()


def _no_inputs_default_injection(doc: dict, marker: str) -> None:
    """``small`` without its user input (matmul reads ``t`` twice), and a forward_arg_names entry
    that fx writes as ``def forward(self, a=<code>)``: with no placeholders left there is no
    binding line to break the syntax, so the default runs when module() builds forward."""
    gm = doc["graph_module"]
    gm["graph"]["inputs"] = gm["graph"]["inputs"][:2]
    gm["signature"]["input_specs"] = gm["signature"]["input_specs"][:2]
    for node in gm["graph"]["nodes"]:
        for inp in node["inputs"]:
            if inp["arg"] == {"as_tensor": {"name": "x"}}:
                inp["arg"] = {"as_tensor": {"name": "t"}}
    del gm["graph"]["tensor_values"]["x"]
    root = gm["module_call_graph"][0]["signature"]
    root["in_spec"] = json.dumps([1, {"type": "builtins.tuple", "context": "null", "children_spec": [
        {"type": "builtins.tuple", "context": "null", "children_spec": []},
        {"type": "builtins.dict", "context": "[]", "children_spec": []}]}])
    root["forward_arg_names"] = ["a=" + exec_code(marker)]


_LEAF = {"type": None, "context": None, "children_spec": []}


def _with_kwarg_key(spec_text: str, key: str) -> str:
    """A treespec ``(args, kwargs)`` with one more keyword argument, named ``key``."""
    protocol, root = json.loads(spec_text)
    kwargs = root["children_spec"][1]
    kwargs["context"] = json.dumps(json.loads(kwargs["context"]) + [key])
    kwargs["children_spec"].append(dict(_LEAF))
    return json.dumps([protocol, root])


def _root_in_spec_key(doc: dict, marker: str) -> None:
    """fx writes the root kwargs keys as ``{'<key>':<arg>}`` in forward's binding line."""
    root = doc["graph_module"]["module_call_graph"][0]["signature"]
    key = "a':k2}), self._in_spec)\r" + exec_code(marker) + "\rdef g(k2):\r    return (({'b"
    root["in_spec"] = _with_kwarg_key(root["in_spec"], key)
    root["forward_arg_names"] = root["forward_arg_names"] + ["k2"]


# ---- finding 4: module paths and keys that unflatten turns into call_module / placeholder targets


def _breakout_path(marker: str) -> str:
    """A module path that closes fx's ``getattr(self, "<path>")``; no dot, comma or semicolon."""
    return 'a")' + _tail_function(exec_code(marker))


def _module_stack_path(doc: dict, marker: str) -> None:
    path = _breakout_path(marker)
    for node in doc["graph_module"]["graph"]["nodes"]:
        stack = node["metadata"].get("nn_module_stack")
        if stack:
            node["metadata"]["nn_module_stack"] = stack.replace(",inner,", f",{path},").replace(
                ",inner.lin,", f",{path}.lin,")


def _module_stack_comma_path(doc: dict, marker: str) -> None:
    """A break-out in a path holding a comma, its key holding one too (non-strict export's
    form for a module named ``"x,..."``): the path read between the middle comma and the last."""
    path = "x," + _breakout_path(marker)
    for node in doc["graph_module"]["graph"]["nodes"]:
        stack = node["metadata"].get("nn_module_stack")
        if stack:
            node["metadata"]["nn_module_stack"] = stack.replace("L__self__inner,inner,", f"L__self__inner,x,{path},")


def _module_stack_dunder_path(doc: dict, marker: str) -> None:
    """A path ending in a dunder (``inner.__class__``): validate and load passed it, then
    ``torch.export.unflatten`` raised a raw KeyError (the issue 15 red team)."""
    for node in doc["graph_module"]["graph"]["nodes"]:
        stack = node["metadata"].get("nn_module_stack")
        if stack:
            node["metadata"]["nn_module_stack"] = stack.replace(",inner,", ",inner.__class__,")


def _call_graph_fqn(doc: dict, marker: str) -> None:
    path = _breakout_path(marker)
    _module_stack_path(doc, marker)
    for entry in doc["graph_module"]["module_call_graph"]:
        if entry["fqn"].startswith("inner"):
            entry["fqn"] = path + entry["fqn"][len("inner"):]


def _submodule_in_spec_key(doc: dict, marker: str) -> None:
    """unflatten makes each kwargs key of a submodule's in_spec a placeholder: ``def forward(self,
    ..., <key>)``, so ``k=<code>`` is a default value that runs when the submodule is built."""
    inner = doc["graph_module"]["module_call_graph"][1]
    assert inner["fqn"] == "inner"
    inner["signature"]["in_spec"] = _with_kwarg_key(inner["signature"]["in_spec"], "k=" + exec_code(marker))


# ---- finding 12b: a torch.ops lookup of a dunder


def _dunder_namespace(doc: dict, marker: str) -> None:
    doc["graph_module"]["graph"]["nodes"][0]["target"] = "torch.ops.__path__.t.default"


def _dunder_overload_of_aten_bitwise_op(doc: dict, marker: str) -> None:
    """``torch.ops.aten.__and__.Tensor`` is a real operator (allowed); a dunder in any other
    place of such a name is still a Python attribute walk."""
    doc["graph_module"]["graph"]["nodes"][0]["target"] = "torch.ops.aten.__and__.__class__"


# ---- values and dict keys that torch pastes into the guards of ep.module()


def _string_input_breakout(doc: dict, marker: str) -> None:
    """torch's input guards write a str placeholder's value as ``L['s'] == '<value>'``."""
    doc["graph_module"]["graph"]["inputs"][1]["as_string"] = "mul' == " + exec_code(marker) + " or '"


def _dict_key(marker: str) -> str:
    return 'k"+' + exec_code(marker) + '+"'


def _dict_key_quote(doc: dict, marker: str) -> None:
    """A dict input's key becomes ``L['d']['<key>']`` in the guards and ``d['<key>']`` inside their
    ``"Guard failed: ..."`` literal: a key holding a double quote breaks out of it."""
    spec = doc["graph_module"]["module_call_graph"][0]["signature"]
    text = spec["in_spec"]
    spec["in_spec"] = text.replace(json.dumps(json.dumps(["k"]))[1:-1], json.dumps(json.dumps([_dict_key(marker)]))[1:-1])
    assert spec["in_spec"] != text


def _dict_key_quote_archive(marker: str) -> bytes:
    """The document change plus sample inputs with the same key (torch flattens them with the
    in_spec before it writes the guards): with PyTorch 2.13 this ran code at the first call."""
    import torch

    import test_hostile_archives as H
    from everywhere import base_archive, document_of, with_document
    from pt2serde.bridge.samples import dumps_sample_inputs

    data = base_archive("nested")
    doc = document_of(data)
    _dict_key_quote(doc, marker)
    samples = dumps_sample_inputs(((torch.ones(2, 4), {_dict_key(marker): torch.ones(4)}), {}))
    return H.rewrite(with_document(data, doc), replace={"data/sample_inputs/model.pt": samples})


# ---- call indices unflatten reads with int() (found by fuzz_archive's unflatten entry point)


def _stack_key_call_index(doc: dict, marker: str) -> None:
    for node in doc["graph_module"]["graph"]["nodes"]:
        stack = node["metadata"].get("nn_module_stack")
        if stack:
            node["metadata"]["nn_module_stack"] = stack.replace("L__self__inner,", "L@__self__inner,")


def _fqn_call_index(doc: dict, marker: str) -> None:
    for entry in doc["graph_module"]["module_call_graph"]:
        if entry["fqn"] == "inner":
            entry["fqn"] = "inner@1@2"


# ---- the module call graph's root entry (ep.module(), call_spec and unflatten read entry 0)


def _root_not_first(doc: dict, marker: str) -> None:
    doc["graph_module"]["module_call_graph"][0]["fqn"] = " "


def _no_call_graph(doc: dict, marker: str) -> None:
    doc["graph_module"]["module_call_graph"] = []


# ---- names of literal inputs (red team of the deferred code generation): fx writes every
# placeholder as a parameter, `def forward(self, x, x)` is a SyntaxError in module() and co.


def _literal_input_named_like_an_input(doc: dict, marker: str) -> None:
    doc["graph_module"]["signature"]["input_specs"][1]["constant_input"]["name"] = "x"


def _literal_input_named_like_a_node(doc: dict, marker: str) -> None:
    doc["graph_module"]["signature"]["input_specs"][1]["constant_input"]["name"] = "mul"


def _subgraph_literal_input_named_like_an_input(doc: dict, marker: str) -> None:
    """A subgraph's literal input ``i`` is named ``arg<i>``: here also the name of its tensor input."""
    for node in doc["graph_module"]["graph"]["nodes"]:
        for inp in node["inputs"]:
            if "as_graph" in inp["arg"]:
                sub = inp["arg"]["as_graph"]["graph"]
                renamed = json.loads(json.dumps(sub).replace('"name": "x"', '"name": "arg1"'))
                renamed["tensor_values"]["arg1"] = renamed["tensor_values"].pop("x")
                renamed["inputs"].append({"as_int": 3})
                inp["arg"]["as_graph"]["graph"] = renamed
                return


def _renamed(doc: dict, old: str, new: str) -> None:
    """Rename the value ``old`` everywhere in the graph and the signature (its table key too)."""
    for key in ("graph", "signature"):
        text = json.dumps(doc["graph_module"][key]).replace(f'"{old}"', f'"{new}"')
        doc["graph_module"][key] = json.loads(text)


def _tensor_input_and_literal_builtin_suffix(doc: dict, marker: str) -> None:
    """fx writes the value `input` as the variable `input_1` right after the parameters, so the
    literal parameter `input_1` is overwritten: the program silently reads the wrong input."""
    _renamed(doc, "x", "input")
    doc["graph_module"]["signature"]["input_specs"][1]["constant_input"]["name"] = "input_1"


def _literal_builtin_and_node_suffix(doc: dict, marker: str) -> None:
    _renamed(doc, "mul", "sum_1")
    doc["graph_module"]["signature"]["input_specs"][1]["constant_input"]["name"] = "sum"


def _graph_input(tag: str, value) -> Callable[[dict, str], None]:
    def mutate(doc: dict, marker: str) -> None:
        doc["graph_module"]["graph"]["inputs"][1] = {tag: value}
    return mutate


def _first_subgraph_input(arg: dict) -> Callable[[dict, str], None]:
    """One more input ``arg`` of the first subgraph (a cond branch: cond passes it nothing)."""
    def mutate(doc: dict, marker: str) -> None:
        for node in doc["graph_module"]["graph"]["nodes"]:
            for inp in node["inputs"]:
                if "as_graph" in inp["arg"]:
                    inp["arg"]["as_graph"]["graph"]["inputs"].append(arg)
                    return
    return mutate


def _extra_literal_input(doc: dict, marker: str) -> None:
    """One more literal input, with its spec, that the root in_spec does not hold."""
    gm = doc["graph_module"]
    gm["graph"]["inputs"].append({"as_int": 3})
    gm["signature"]["input_specs"].append({"constant_input": {"name": "extra", "value": {"as_int": 3}}})


def _extra_user_output(doc: dict, marker: str) -> None:
    """One more user output, with its spec, that the root out_spec does not hold."""
    gm = doc["graph_module"]
    gm["graph"]["outputs"].append({"as_int": 7})
    gm["signature"]["output_specs"].append({"user_output": {"arg": {"as_int": 7}}})


def _user_input_spec_kind(doc: dict, marker: str) -> None:
    """The string input's spec says an int: the graph input is `as_string`."""
    specs = doc["graph_module"]["signature"]["input_specs"]
    specs[1] = {"user_input": {"arg": {"as_int": 3}}}


def _root_forward_args(*names: str) -> Callable[[dict, str], None]:
    def mutate(doc: dict, marker: str) -> None:
        doc["graph_module"]["module_call_graph"][0]["signature"]["forward_arg_names"] = list(names)
    return mutate


CASES = [
    doc_case("module call graph whose first entry is not the root", _root_not_first,
             r"module call graph: the first entry must be the root module \(fqn ''\), got ' ' - at "
             r"`\$\.graph_module\.module_call_graph\[0\]\.fqn`", base="nested"),
    doc_case("empty module call graph", _no_call_graph,
             r"module call graph: it is empty; its first entry must be the root module \(fqn ''\) - at "
             r"`\$\.graph_module\.module_call_graph`"),
    doc_case("nn_module_stack key whose call index is not a number", _stack_key_call_index,
             r"nn_module_stack key 'L@__self__inner' has a call index that is not one decimal number", base="nested"),
    doc_case("module path with two call indices", _fqn_call_index,
             r"module path 'inner@1@2' has a call index that is not one decimal number after '@' - at "
             r"`\$\.graph_module\.module_call_graph\[1\]\.fqn`", base="nested"),
    doc_case("literal input named like another graph input", _literal_input_named_like_an_input,
             r"graph input name 'x' is defined twice", base="string_input"),
    doc_case("literal input named like a node", _literal_input_named_like_a_node,
             r"Node mul has already been deserialized before", base="string_input"),
    doc_case("subgraph literal input named like its tensor input", _subgraph_literal_input_named_like_an_input,
             r"graph input name 'arg1' is defined twice", base="cond"),
    doc_case("tensor input named after a builtin, literal input named as fx renames it",
             _tensor_input_and_literal_builtin_suffix, r"value 'input_1' clashes with value 'input'",
             base="string_input"),
    doc_case("literal input named after a builtin, node named as fx renames it", _literal_builtin_and_node_suffix,
             r"value 'sum_1' clashes with value 'sum'", base="string_input"),
    doc_case("graph input holding a list of ints", _graph_input("as_ints", [1, 2]),
             r"a graph input cannot be `as_ints`", base="string_input"),
    doc_case("graph input SymInt holding a literal", _graph_input("as_sym_int", {"as_int": 3}),
             r"a graph input `as_sym_int` must name a value, not hold a literal", base="string_input"),
    doc_case("subgraph input of a kind no placeholder holds", _first_subgraph_input({"as_scalar_type": 6}),
             r"a graph input cannot be `as_scalar_type`", base="cond"),
    # inputs and outputs that torch pairs one to one (run_decompositions, module(), a call) and
    # failed inside it with a raw ValueError or TypeError
    doc_case("extra literal input that the root in_spec does not hold", _extra_literal_input,
             r"the root module's in_spec holds 2 values but the signature has 3 user inputs - at "
             r"`\$\.graph_module\.module_call_graph\[0\]\.signature\.in_spec`", base="string_input"),
    doc_case("extra user output that the root out_spec does not hold", _extra_user_output,
             r"the root module's out_spec holds 1 values but the signature has 2 user outputs", base="string_input"),
    doc_case("cond branch with an input more than its operands", _first_subgraph_input({"as_int": 3}),
             r"cond calls its subgraph with \d+ values but the subgraph has \d+ inputs", base="cond"),
    doc_case("user input spec of another kind than its graph input", _user_input_spec_kind,
             r"input spec 1 \(user_input\) names .* but graph input 1 is", base="string_input"),
    doc_case("repeated forward argument name", _root_forward_args("x", "x"),
             r"forward argument name 'x' is repeated - at "
             r"`\$\.graph_module\.module_call_graph\[0\]\.signature\.forward_arg_names\[1\]`", base="string_input"),
    doc_case("forward argument named like a global of the generated code", _root_forward_args("fx_pytree", "s"),
             r"forward argument name 'fx_pytree' is not a parameter name other than self and the generated code's "
             r"globals", base="string_input"),
    doc_case("string input value breaking out of the input guards", _string_input_breakout,
             r"graph input string value .* is not text without quotes.* - at "
             r"`\$\.graph_module\.graph\.inputs\[1\]\.as_string`", base="string_input"),
    Case("dict input key breaking out of a guard's message", _dict_key_quote_archive,
         r"dict key .* is not text without quotes.* - at "
         r"`\$\.graph_module\.module_call_graph\[0\]\.signature\.in_spec`", _dict_key_quote, "nested"),
    doc_case("keyword argument name breaking out of a schema-less call", _grad_node_breakout,
             r"keyword argument name 'a=1\).* is not a Python identifier - at "
             r"`\$\.graph_module\.graph\.nodes\[0\]\.inputs\[0\]\.name`"),
    doc_case("keyword argument name that is a Python keyword", _grad_node_keyword,
             r"keyword argument name 'from' is not a Python identifier - at "
             r"`\$\.graph_module\.graph\.nodes\[0\]\.inputs\[0\]\.name`"),
    doc_case("forward_arg_names default injection", _no_inputs_default_injection,
             r"forward argument name 'a=exec.* is not a Python identifier - at "
             r"`\$\.graph_module\.module_call_graph\[0\]\.signature\.forward_arg_names\[0\]`"),
    doc_case("root in_spec keyword key breaking out", _root_in_spec_key, r"keyword argument name \"a':k2.* is not a "
             r"Python identifier - at `\$\.graph_module\.module_call_graph\[0\]\.signature\.in_spec`", base="nested"),
    doc_case("nn_module_stack path breaking out of getattr", _module_stack_path,
             r"nn_module_stack path 'a\"\).* is not a dotted attribute path - at "
             r"`\$\.graph_module\.graph\.nodes\[0\]\.metadata\.nn_module_stack`", base="nested"),
    doc_case("nn_module_stack path with a comma breaking out of getattr", _module_stack_comma_path,
             r"nn_module_stack path 'x,a\"\).* is not a dotted attribute path - at "
             r"`\$\.graph_module\.graph\.nodes\[0\]\.metadata\.nn_module_stack`", base="nested"),
    doc_case("nn_module_stack path with a dunder part", _module_stack_dunder_path,
             r"nn_module_stack path 'inner\.__class__' is not a dotted attribute path without dunder parts - at "
             r"`\$\.graph_module\.graph\.nodes\[0\]\.metadata\.nn_module_stack`", base="nested"),
    doc_case("module call graph fqn breaking out of getattr", _call_graph_fqn,
             r"(module path|nn_module_stack path) 'a\"\).* is not a dotted attribute path", base="nested"),
    doc_case("submodule in_spec key injected as a placeholder", _submodule_in_spec_key,
             r"keyword argument name 'k=exec.* is not a Python identifier - at "
             r"`\$\.graph_module\.module_call_graph\[1\]\.signature\.in_spec`", base="nested"),
    doc_case("call target naming a dunder of torch.ops", _dunder_namespace,
             r"call target 'torch\.ops\.__path__\.t\.default' is not an operator name - at "
             r"`\$\.graph_module\.graph\.nodes\[0\]\.target`"),
    doc_case("dunder overload of an aten bitwise operator", _dunder_overload_of_aten_bitwise_op,
             r"call target 'torch\.ops\.aten\.__and__\.__class__' is not an operator name - at "
             r"`\$\.graph_module\.graph\.nodes\[0\]\.target`"),
]
