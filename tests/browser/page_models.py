"""View models written by hand (the contract of ``pt2serde.cli.view_page``): a small program with a
``cond``, a diff, a flat and a nested 20k-node program, and one with hostile strings in every field."""

from __future__ import annotations

import copy
import itertools

# strings that would run script, break out of an attribute or the JSON block, or bend the text
HOSTILE = [
    "<script>window.__pwned=1</script>",
    "</script><script>window.__pwned=2</script>",
    "<img src=x onerror=\"window.__pwned=3\">",
    "\" onmouseover=\"window.__pwned=4\" x=\"",
    "' onclick='window.__pwned=5' '",
    "javascript:window.__pwned=6",
    "<!--",
    "]]><svg onload=window.__pwned=7>",
    "<a href=\"javascript:window.__pwned=8\">x</a>",
    "__proto__",
    "constructor",
    "&lt;b&gt;&amp;\u2028\u2029\x00",
    "{{MODEL}}",
]


def _node(nid, name, kind, op="", target="", module=(), args=(), meta=None, subgraphs=(), status=None, change=None):
    return {
        "id": nid, "name": name, "kind": kind, "op": op or kind, "target": target,
        "module": list(module), "module_types": [f"torch.nn.{m.split('.')[-1].capitalize() or 'M'}" for m in module],
        "args": [{"name": a, "text": t} for a, t in args],
        "meta": meta or {"stack_trace": None, "source_fn": [], "torch_fn": None, "other": {}},
        "subgraphs": list(subgraphs), "status": status, "change": change,
    }


def _base(title="small.pt2", kind="program"):
    return {
        "format": 2, "kind": kind, "title": title, "generator": "pt2serde 0.1.0", "program": "model",
        "programs": ["model"],
        "verdict": {"valid": True, "readable_by": ["2.13", "2.14"], "text": "valid: loads with pt2serde.load"},
        "notes": [],
        "signature": {
            "inputs": [
                {"kind": "parameter", "name": "p_fc_weight", "target": "fc.weight", "persistent": None},
                {"kind": "buffer", "name": "b_running_mean", "target": "running_mean", "persistent": True},
                {"kind": "constant", "name": "c_lifted", "target": "lifted", "persistent": None},
                {"kind": "user_input", "name": "x", "target": None, "persistent": None},
            ],
            "outputs": [{"kind": "user_output", "name": "cond", "target": None}],
        },
        "symbols": [{"name": "s0", "min": "2", "max": "1024"}, {"name": "s1", "min": "1", "max": None}],
        "weights": [
            {"name": "fc.weight", "section": "weights", "dtype": "float32", "shape": ["4", "3"], "nbytes": "48",
             "storage": "weight_0", "shared": 0},
            {"name": "running_mean", "section": "weights", "dtype": "float32", "shape": ["4"], "nbytes": "16",
             "storage": "weight_1", "shared": None},
            {"name": "lifted", "section": "constants", "dtype": "int64", "shape": [], "nbytes": "8",
             "storage": "constant_0", "shared": None},
        ],
        "storages": [{"record": "weight_0", "names": ["fc.weight", "fc2.weight"]}],
        "extra_files": [{"name": "notes.txt", "size": "12"}],
        "diff": None,
    }


def _values(graphs: list[dict]) -> list[dict]:
    """``graphs`` as the model holds them: each edge's label moved to its graph's ``values``."""
    for g in graphs:
        g["values"] = {}
        for e in g["edges"]:
            label = e.pop("label")
            assert g["values"].setdefault(e["value"], label) == label, (g["id"], e)
    return graphs


def small_model() -> dict:
    """x, three weights, linear in module ``fc``, a relu in ``act``, a ``cond`` with two branches."""
    m = _base()
    trace = 'File "model.py", line 12, in forward\n    y = self.fc(x)'
    g0 = [
        _node("g0/0", "p_fc_weight", "parameter"),
        _node("g0/1", "b_running_mean", "buffer"),
        _node("g0/2", "c_lifted", "constant"),
        _node("g0/3", "x", "user_input"),
        _node("g0/4", "linear", "op", "linear", "aten.linear.default", ["fc"],
              [("input", "x"), ("weight", "p_fc_weight")],
              {"stack_trace": trace, "source_fn": ["fc", "torch.nn.modules.linear.Linear"],
               "torch_fn": ["linear_1", "builtin_function_or_method.linear"], "other": {"seq_nr": "7"}}),
        _node("g0/5", "relu", "op", "relu", "aten.relu.default", ["act"], [("self", "linear")]),
        _node("g0/6", "sub", "op", "sub", "aten.sub.Tensor", [], [("self", "relu"), ("other", "b_running_mean")]),
        _node("g0/7", "cond", "op", "cond", "torch.ops.higher_order.cond", [],
              [("pred", "True"), ("true_fn", "true_graph_0"), ("false_fn", "false_graph_0")],
              subgraphs=["g1", "g2"]),
        _node("g0/8", "output", "output", "output", "output", [], [("0", "cond")]),
    ]
    e = lambda a, b, v, label: {"from": a, "to": b, "value": v, "label": label}  # noqa: E731
    g0_edges = [e("g0/3", "g0/4", "x", "f32[s0, 3]"), e("g0/0", "g0/4", "p_fc_weight", "f32[4, 3]"),
                e("g0/4", "g0/5", "linear", "f32[s0, 4]"), e("g0/5", "g0/6", "relu", "f32[s0, 4]"),
                e("g0/1", "g0/6", "b_running_mean", "f32[4]"), e("g0/6", "g0/7", "sub", "f32[s0, 4]"),
                e("g0/2", "g0/7", "c_lifted", "i64"), e("g0/7", "g0/8", "cond", "f32[s0, 4]")]
    branch = lambda gid, op: [  # noqa: E731
        _node(f"{gid}/0", "arg0_1", "user_input"),
        _node(f"{gid}/1", f"{op}_branch", "op", op, f"aten.{op}.default", [], [("self", "arg0_1")]),
        _node(f"{gid}/2", "output", "output", "output", "output", [], [("0", f"{op}_branch")]),
    ]
    m["graphs"] = _values([
        {"id": "g0", "title": "graph", "owner": None, "nodes": g0, "edges": g0_edges},
        {"id": "g1", "title": "true_graph_0", "owner": "g0/7", "nodes": branch("g1", "cos"),
         "edges": [e("g1/0", "g1/1", "arg0_1", "f32[s0, 4]"), e("g1/1", "g1/2", "cos_branch", "f32[s0, 4]")]},
        {"id": "g2", "title": "false_graph_0", "owner": "g0/7", "nodes": branch("g2", "sin"),
         "edges": [e("g2/0", "g2/1", "arg0_1", "f32[s0, 4]"), e("g2/1", "g2/2", "sin_branch", "f32[s0, 4]")]},
    ])
    return m


SMALL_NODE_COUNT = 15  # 9 in the top graph, 3 in each branch


def diff_model() -> dict:
    """The small program against itself with a relu replaced by a gelu and a weight added."""
    m = small_model()
    m.update(kind="diff", title="a.pt2 -> b.pt2")
    g0 = m["graphs"][0]["nodes"]
    g0[5].update(name="gelu", op="gelu", target="aten.gelu.default", status="added", change="new node")
    removed = _node("g0/9", "relu", "op", "relu", "aten.relu.default", ["act"], [("self", "linear")], status="removed")
    g0.append(removed)
    g0[4].update(status="changed", change="target aten.linear.default -> aten.linear.default; args changed")
    m["weights"].append({"name": "extra.bias", "section": "weights", "dtype": "float32", "shape": ["4"],
                         "nbytes": "16", "storage": "weight_2", "shared": None})
    m["diff"] = {"a": "a.pt2", "b": "b.pt2",
                 "changes": [{"section": "graph", "text": "node relu removed"},
                             {"section": "graph", "text": "node gelu added"},
                             {"section": "weights", "text": "extra.bias added"}],
                 "signature": ["input x: f32[s0, 3] -> f32[s0, 5]"], "ranges": ["s0: [2, 1024] -> [2, 2048]"],
                 "weights": {"extra.bias": "added", "fc.weight": "changed"}}
    return m


def big_model(n: int = 20_000, nested: bool = True) -> dict:
    """``n`` op nodes in a chain; nested: 100 modules ``layers.i`` of 4 submodules each (else no modules)."""
    m = _base("big.pt2")
    nodes = [_node("g0/x", "x", "user_input")]
    edges = []
    prev = "g0/x"
    per_layer = max(1, n // 100)
    for i in range(n):
        layer, rest = divmod(i, per_layer)
        module = [f"layers.{layer}", f"layers.{layer}.block{rest * 4 // per_layer}"] if nested else []
        nid = f"g0/{i}"
        nodes.append(_node(nid, f"op_{i}", "op", "add" if i % 2 else "mul", "aten.add.Tensor", module,
                           [("self", prev)]))
        edges.append({"from": prev, "to": nid, "value": prev, "label": "f32[s0, 64]"})
        prev = nid
    nodes.append(_node("g0/out", "output", "output", "output", "output", [], [("0", prev)]))
    edges.append({"from": prev, "to": "g0/out", "value": prev, "label": "f32[s0, 64]"})
    m["graphs"] = _values([{"id": "g0", "title": "graph", "owner": None, "nodes": nodes, "edges": edges}])
    return m


def _spread(value, strings, turn=itertools.count()):
    """``value`` with one of ``strings`` (in turn) put before every string it holds."""
    if isinstance(value, str):
        return strings[next(turn) % len(strings)] + value
    if isinstance(value, list):
        return [_spread(v, strings) for v in value]
    if isinstance(value, dict):
        return {(_spread(k, strings) if k not in _KEEP_KEYS else k): (v if k in _KEEP_VALUES else _spread(v, strings))
                for k, v in value.items()}
    return value


_KEEP_KEYS = set("format kind title generator program programs verdict notes signature inputs outputs symbols "
                 "weights extra_files graphs diff id owner nodes edges name op target module module_types args "
                 "meta stack_trace source_fn torch_fn other subgraphs status change from to value label text "
                 "valid readable_by min max section dtype shape nbytes storage shared storages record names size a b "
                 "changes ranges persistent values".split())
_KEEP_VALUES = {"format", "kind", "programs", "id", "owner", "subgraphs", "from", "to", "min", "max", "nbytes", "size",
                "persistent", "valid", "status", "shared"}


def hostile_model(base: dict | None = None) -> dict:
    """``base`` (the diff model) with a hostile string before every string it holds (ids and kinds
    kept, so the graph still connects), plus a node and a graph named only by hostile strings."""
    m = _spread(copy.deepcopy(base or diff_model()), HOSTILE)
    m["title"] = HOSTILE[1] + HOSTILE[0]
    m["notes"] = list(HOSTILE)
    g0 = m["graphs"][0]
    g0["nodes"].append(_node(HOSTILE[1], HOSTILE[1], HOSTILE[2], HOSTILE[3], HOSTILE[5], [HOSTILE[0], "__proto__"],
                             [(h, h) for h in HOSTILE],
                             {"stack_trace": "\n".join(HOSTILE), "source_fn": HOSTILE, "torch_fn": HOSTILE,
                              "other": {h: h for h in HOSTILE}}, subgraphs=[HOSTILE[7]], status=HOSTILE[4]))
    g0["edges"].append({"from": "g0/3", "to": HOSTILE[1], "value": HOSTILE[0]})
    g0["values"][HOSTILE[0]] = HOSTILE[2]
    m["graphs"].append({"id": HOSTILE[7], "title": HOSTILE[8], "owner": HOSTILE[1],
                        "nodes": [_node("__proto__", HOSTILE[6], "__proto__", HOSTILE[9], HOSTILE[10])], "edges": []})
    m["diff"]["weights"] = {h: "added" for h in HOSTILE} | {"__proto__": HOSTILE[3]}
    return m


def malformed_models() -> dict[str, dict]:
    """Models that break the contract in the ways a page must survive (it trusts nothing)."""
    def with_graphs(*graphs):
        m = small_model()
        m["graphs"] = list(graphs)
        return m

    node = lambda nid, **kw: dict(_node(nid, f"n{nid}", "op", "add", "aten.add.Tensor"), **kw)  # noqa: E731
    edge = lambda a, b: {"from": a, "to": b, "value": "v", "label": "f32[2]"}  # noqa: E731
    cases = {
        "owner cycle": with_graphs(
            {"id": "g0", "title": "top", "owner": None, "nodes": [node("a")], "edges": []},
            {"id": "g1", "title": "one", "owner": "c", "nodes": [node("b", subgraphs=["g2"])], "edges": []},
            {"id": "g2", "title": "two", "owner": "b", "nodes": [node("c", subgraphs=["g1"])], "edges": []}),
        "self owned": with_graphs(
            {"id": "g0", "title": "top", "owner": "a", "nodes": [node("a", subgraphs=["g0", "nowhere"])],
             "edges": [edge("a", "a"), edge("a", "missing")]}),
        "duplicate ids": with_graphs(
            {"id": "g0", "title": "top", "owner": None, "nodes": [node("a"), node("a"), node("b")],
             "edges": [edge("a", "b"), edge("a", "b")]},
            {"id": "g0", "title": "again", "owner": None, "nodes": [node("a")], "edges": []}),
        "wrong types": with_graphs(
            {"id": 7, "title": ["x"], "owner": {}, "nodes": [7, None, "s", node("a", module="layer", args={},
                                                                              meta=[], subgraphs=None)],
             "edges": [None, 3, {"from": None}]}, "graph", None),
        "deep modules": with_graphs(
            {"id": "g0", "title": "top", "owner": None,
             "nodes": [node(str(i), module=[f"m{j}" for j in range(200)]) for i in range(5)], "edges": []}),
        "empty subgraph": with_graphs(
            {"id": "g0", "title": "top", "owner": None, "nodes": [node("a", subgraphs=["g1"])], "edges": []},
            {"id": "g1", "title": "empty", "owner": "a", "nodes": [], "edges": []}),
        "no graphs": dict(small_model(), graphs=None, signature=None, weights="x", symbols=[None, 3],
                          verdict=None, diff=None, extra_files=[{}]),
        "diff without diff": dict(small_model(), kind="diff", diff=None),
    }
    return cases


def fanout_model(users: int = 10) -> dict:
    """x, a ``sym_size`` node that ``users`` additions use (and x too), an output."""
    m = _base("fanout.pt2")
    nodes = [_node("x", "x", "user_input"), _node("size", "sym_size_int", "op", "sym_size", "aten.sym_size.int")]
    edges = [{"from": "x", "to": "size", "value": "x", "label": "f32[s0, 4]"}]
    for i in range(users):
        nodes.append(_node(f"add{i}", f"add_{i}", "op", "add", "aten.add.Tensor"))
        edges.append({"from": "size", "to": f"add{i}", "value": "sym_size_int", "label": "sym_int s0"})
        edges.append({"from": "x" if i == 0 else f"add{i - 1}", "to": f"add{i}", "value": "v", "label": "f32[s0, 4]"})
    nodes.append(_node("out", "output", "output", "output", "output"))
    edges.append({"from": f"add{users - 1}", "to": "out", "value": "v", "label": "f32[s0, 4]"})
    m["graphs"] = _values([{"id": "g0", "title": "graph", "owner": None, "nodes": nodes, "edges": edges}])
    return m
