"""Hostile cases: values that torch pairs one to one, miscounted or mismatched.

``module()``, ``run_decompositions()``, ``unflatten`` and a call take a program apart by its
module call signatures (an ``in_spec`` of (args, kwargs), ``forward_arg_names``, each
submodule's ``inputs``/``outputs``), copy each mutated input back, pair effect tokens, and run
higher-order ops on their subgraphs. Each case below loaded and validated before, then failed
inside torch with a raw ``TypeError``, ``ValueError``, ``RuntimeError``, ``AssertionError``
or ``IndexError`` (found by a red-team pass). ``load`` and ``validate`` now refuse them with one
rule each (``format.check._check_call_spec``, ``_check_mutations``,
``format.value_refs.hop_call_problem``); a file whose sample inputs do not fit its ``in_spec``
loads without them (``module()`` bound them to its ``forward``).
"""

from __future__ import annotations

import json

from everywhere import doc_case

LEAF = {"type": None, "context": None, "children_spec": []}


def _spec(args: list, kwargs: dict | None = None, root: str = "builtins.tuple") -> str:
    kwargs = kwargs or {}
    return json.dumps([1, {"type": root, "context": "null", "children_spec": [
        {"type": "builtins.tuple", "context": "null", "children_spec": args},
        {"type": "builtins.dict", "context": json.dumps(list(kwargs)), "children_spec": list(kwargs.values())}]}])


def _entry(doc: dict, k: int) -> dict:
    return doc["graph_module"]["module_call_graph"][k]["signature"]


def _set(k: int, **fields):
    def mutate(doc: dict, marker: str) -> None:
        _entry(doc, k).update(fields)
    return mutate


def _root_in_spec_list(doc: dict, marker: str) -> None:
    _entry(doc, 0)["in_spec"] = json.dumps([1, {"type": "builtins.list", "context": "null", "children_spec": [LEAF]}])


def _input_by_keyword(doc: dict, marker: str) -> None:
    """x passed by keyword: consistent in itself, but not with the stored sample inputs (x, )."""
    _entry(doc, 0)["in_spec"] = _spec([], {"x": LEAF})


def _token_without_output(doc: dict, marker: str) -> None:
    gm = doc["graph_module"]
    gm["graph"]["inputs"].insert(0, {"as_tensor": {"name": "token"}})
    gm["graph"]["tensor_values"]["token"] = dict(gm["graph"]["tensor_values"]["b_b"])
    gm["signature"]["input_specs"].insert(0, {"token": {"arg": {"name": "token"}}})


def _buffer_mutation(value: str, times: int = 1):
    def mutate(doc: dict, marker: str) -> None:
        gm = doc["graph_module"]
        for _ in range(times):
            gm["graph"]["outputs"].insert(0, {"as_tensor": {"name": value}})
            gm["signature"]["output_specs"].insert(0, {"buffer_mutation": {"arg": {"name": value}, "buffer_name": "b"}})
    return mutate


def _cond_node(doc: dict) -> dict:
    return next(n for n in doc["graph_module"]["graph"]["nodes"] if n["target"].endswith(".cond"))


def _cond_extra_input(doc: dict, marker: str) -> None:
    _cond_node(doc)["inputs"].append({"name": "", "arg": {"as_tensors": []}, "kind": 1})


def _cond_operands_by_keyword(doc: dict, marker: str) -> None:
    operands = _cond_node(doc)["inputs"][3]
    operands.update(name="operands", kind=2)


def _cond_pred_is_a_branch(doc: dict, marker: str) -> None:
    inputs = _cond_node(doc)["inputs"]
    inputs[0], inputs[1] = inputs[1], inputs[0]


def _cond_branch_extra_output(doc: dict, marker: str) -> None:
    branch = _cond_node(doc)["inputs"][1]["arg"]["as_graph"]["graph"]
    branch["outputs"].append(branch["outputs"][0])


def _single_return_of_two(doc: dict, marker: str) -> None:
    g = doc["graph_module"]["graph"]
    g["outputs"].append({"as_tensor": {"name": "x"}})
    g["is_single_tensor_return"] = True


CASES = [
    doc_case("single-tensor return with two outputs", _single_return_of_two,
             r"a single-tensor return has 2 outputs"),
    doc_case("root in_spec a list, not (args, kwargs)", _root_in_spec_list,
             r"a call's in_spec must be a tuple of an args tuple and a kwargs dict, got builtins\.list"),
    doc_case("forward_arg_names shorter than the in_spec's arguments", _set(0, forward_arg_names=["x"]),
             r"forward_arg_names has 1 names but the in_spec passes 2 arguments - at "
             r"`\$\.graph_module\.module_call_graph\[0\]\.signature\.forward_arg_names`", base="nested"),
    doc_case("submodule in_spec with a value more than its inputs",
             _set(1, in_spec=_spec([LEAF, LEAF, LEAF])),
             r"module `inner`'s in_spec holds 3 values but the call signature has 2 inputs", base="nested"),
    doc_case("submodule out_spec with a value more than its outputs",
             _set(1, out_spec=json.dumps([1, {"type": "builtins.tuple", "context": "null",
                                              "children_spec": [LEAF, LEAF]}])),
             r"module `inner`'s out_spec holds 2 values but the call signature has 1 outputs", base="nested"),
    doc_case("submodule call signature naming no value of the graph",
             _set(1, inputs=[{"as_tensor": {"name": "x"}}, {"as_tensor": {"name": "nope"}}]),
             r"the call signature names `nope`, which is not a value of the graph", base="nested"),
    doc_case("input spec of an effect token with no token returned", _token_without_output,
             r"the program takes 1 effect tokens but returns 0"),
    doc_case("buffer mutation by a value of another shape", _buffer_mutation("x"),
             r"buffer_mutation writes `x` into `b`, whose sizes it does not broadcast to"),
    doc_case("buffer mutated twice", _buffer_mutation("b_b", times=2), r"buffer `b` is mutated twice"),
    doc_case("input passed by keyword in the in_spec, by position in the sample inputs", _input_by_keyword, None),
    doc_case("cond with a fifth input", _cond_extra_input, r"cond takes 4 inputs, got 5", base="cond"),
    doc_case("cond operands passed as a keyword argument", _cond_operands_by_keyword,
             r"cond takes no keyword argument, got 'operands'", base="cond"),
    doc_case("cond predicate and branch swapped", _cond_pred_is_a_branch,
             r"cond input 0 must not be a subgraph", base="cond"),
    doc_case("cond branches returning different numbers of values", _cond_branch_extra_output,
             r"cond's subgraph returns 1 values but 2 are needed", base="cond"),
]
