"""A red team's attacks on the issue 10 gates (a helper who had not seen the change, told to break
it). All got through before their fixes without running code: a guard ``round(x, -10**8)`` hung
every call; twelve guards of 65536-bit divisions took 5 s per call; names in NFKC-foldable
Unicode (``ｓｅｌｆ``) became Python SyntaxErrors inside torch while validate said valid. Each is
now refused by load and validate alike."""

from __future__ import annotations

import json

from everywhere import doc_case, exec_code


def _rename_value(doc: dict, old: str, new: str) -> None:
    """Rename the value ``old`` (graph input, node output, argument references) to ``new``."""
    gm = doc["graph_module"]

    def walk(obj):
        if isinstance(obj, dict):
            for k, v in list(obj.items()):
                if k in ("as_tensor", "arg") and isinstance(v, dict) and v.get("name") == old and len(v) == 1:
                    v["name"] = new
                elif k == "as_tensor" and isinstance(v, dict) and v.get("name") == old:
                    v["name"] = new
                else:
                    walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(gm["graph"]["inputs"]); walk(gm["graph"]["outputs"]); walk(gm["graph"]["nodes"]); walk(gm["signature"])
    tv = gm["graph"]["tensor_values"]
    tv[new] = tv.pop(old)
    for node in gm["graph"]["nodes"]:
        if node["name"] == old:
            node["name"] = new


def _guards(*guards):
    def mutate(doc, marker):
        doc["guards_code"] = list(guards)
    return mutate


def _input_named(name):
    return lambda doc, marker: _rename_value(doc, "x", name)


def _node_named(old, name):
    return lambda doc, marker: _rename_value(doc, old, name)


def _forward_arg_names(*names):
    def mutate(doc, marker):
        doc["graph_module"]["module_call_graph"][0]["signature"]["forward_arg_names"] = list(names)
    return mutate


def _submodule_key(key):
    def mutate(doc, marker):
        from cases_codegen import _with_kwarg_key
        inner = doc["graph_module"]["module_call_graph"][1]
        inner["signature"]["in_spec"] = _with_kwarg_key(inner["signature"]["in_spec"], key)
    return mutate


# ---- guards: round(int, -n) computes 10**n (no bit bound on round's second argument)
_ROUND = "round(L['x'].size()[0], -100000000) == 0"

# ---- guards: 65536-bit long divisions (quadratic), ~250 per guard, guards stacked
_X = "(9223372036854775807**64)**16//(9223372036854775807**64)**8"
_DIV_GUARD = "max(" + ",".join([_X] * 250) + ") != 1"


CASES = [
    doc_case("guard round() with a huge negative ndigits", _guards(_ROUND),
             r"guard .* is not allowed: `round` digits `-100000000` \(only a constant of at most 64 in size\)"),
    doc_case("input name NFKC-equal to self", _input_named("\uff53\uff45\uff4c\uff46"),
             r"graph input name '.*' is not a value name \(an ASCII identifier"),
    doc_case("input name NFKC-equal to another input", _input_named("\uff50_w"),
             r"graph input name '.*' is not a value name \(an ASCII identifier"),
    doc_case("input name NFKC-equal to __debug__", _input_named("_\uff3fdebug\uff3f\uff3f"),
             r"graph input name '.*' is not a value name \(an ASCII identifier"),
    # harmless when it loaded (fx renamed the node), now refused with every non-ASCII value name
    doc_case("node name NFKC-equal to torch", _node_named("t", "\uff54\uff4f\uff52\uff43\uff48"),
             r"node name '.*' is not a value name \(an ASCII identifier"),
    doc_case("forward_arg_names NFKC-equal to self", _forward_arg_names("\uff53\uff45\uff4c\uff46"),
             r"forward argument name '.*' is not a Python identifier - at "
             r"`\$\.graph_module\.module_call_graph\[0\]\.signature\.forward_arg_names\[0\]`"),
    doc_case("stacked guards of 65536-bit divisions", _guards(*[_DIV_GUARD] * 12),
             r"guard .* is not allowed: its value can grow to \d+ bits \(at most 4096\)"),
    doc_case("submodule in_spec kwargs key NFKC-equal to self", _submodule_key("\uff53\uff45\uff4c\uff46"),
             r"keyword argument name '.*' is not a Python identifier", base="nested"),
]
