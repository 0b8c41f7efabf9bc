"""Symbolic expressions that make sympy work without bound, and the schema-7 upgrade of long ones.

Base "dynamic" has one symbolic dimension ``s77`` (the size of ``x`` and of ``mul``). Each case
puts an expression there; the grammar (:mod:`pt2serde.format.expr`, shared by ``load`` and
``validate``) refuses it by its budgets before sympy sees it, or it loads quickly.
The schema-7 cases start from a PyTorch 2.5.1 archive of the compat corpus, whose expressions
are sympy's printed form and go through the upgrader.
"""

from __future__ import annotations

import json

from compat import CORPUS
from everywhere import Case, doc_case

import test_hostile_archives as H

S = "Symbol('s77', positive=True, integer=True)"
PROGRAM_V7 = "serialized_exported_program.json"


def _size(expr: str):
    """A mutation putting ``expr`` as the symbolic size of ``x`` and ``mul``."""

    def mutate(doc: dict, marker: str) -> None:
        for name in ("x", "mul"):
            doc["graph_module"]["graph"]["tensor_values"][name]["sizes"][0]["as_expr"]["expr_str"] = expr

    return mutate


def _legacy(expr: str, deflate: bool = True) -> Case:
    """dyn_batch of PyTorch 2.5.1 (schema 7) with every symbolic size printed as ``expr``."""

    def build(marker: str) -> bytes:
        from pt2serde.format.archive import ArchiveReader

        reader = ArchiveReader((CORPUS / "2.5.1" / "dyn_batch.pt2").read_bytes())
        records = [(n, reader.read(n)) for n in reader.names()]
        doc = json.loads(dict(records)[PROGRAM_V7])
        for meta in doc["graph_module"]["graph"]["tensor_values"].values():
            for size in meta["sizes"]:
                if "as_expr" in size:
                    size["as_expr"]["expr_str"] = expr
        stored = H.raw_zip([(n.encode(), v) for n, v in records if n != PROGRAM_V7])
        program = H.raw_zip([(PROGRAM_V7.encode(), json.dumps(doc).encode())], method=8 if deflate else 0)
        return H._merge(stored, program)

    return build


_SUMS = [f"Add({S}, Integer({i + 1}))" for i in range(64)]


def _sym(i: int) -> str:
    return f"Symbol('s{i}', positive=True, integer=True)"


def _many(expression, count: int):
    """A mutation adding ``count`` nodes ``e<i> = aten.sym_size.int(x, 0)``, each a SymInt whose
    stored expression is ``expression(i)`` (hint-less: torch evaluates it statically), with
    ranges for the symbols they use (as PyTorch writes them)."""

    def mutate(doc: dict, marker: str) -> None:
        g = doc["graph_module"]["graph"]
        for j in range(600):
            doc["range_constraints"].setdefault(f"s{j}", {"min_val": 2, "max_val": 64})
        for i in range(count):
            _sym_size_node(g, f"e{i}", expression(i), None)

    return mutate


def _sym_size_node(g: dict, name: str, expression: str, hint: dict | None) -> None:
    """Append ``name = aten.sym_size.int(x, 0)`` to graph ``g``, its SymInt stored as ``expression``
    with ``hint`` (a SymExprHint object or None)."""
    g["nodes"].append({
        "target": "torch.ops.aten.sym_size.int", "name": name, "metadata": {},
        "inputs": [{"name": "self", "arg": {"as_tensor": {"name": "x"}}, "kind": 1},
                   {"name": "dim", "arg": {"as_int": 0}, "kind": 1}],
        "outputs": [{"as_sym_int": {"as_name": name}}], "is_hop_single_tensor_return": None})
    g["sym_int_values"][name] = {"as_expr": {"expr_str": expression, "hint": hint}}


def _linear_sum(terms: int, first: int) -> str:
    """``s<first> + ... + s<first + terms - 1>``: a linear sum (the budget's cheapest unit)."""
    return "Add(" + ", ".join(_sym(first + j) for j in range(terms)) + ")"


def _input_sizes(dims: int, terms: int = 1):
    """A mutation giving ``x`` (and ``mul = x * 2``) ``dims`` symbolic sizes, each a sum of
    ``terms`` fresh symbols (strides 1): ``run_decompositions`` runs the mul on a fake ``x``, and
    torch multiplies the sizes and expands the product with every symbol shifted (second
    red team of the linear pricing)."""

    def mutate(doc: dict, marker: str) -> None:
        names = [f"s{1000 + d * terms + j}" for d in range(dims) for j in range(terms)]
        sizes = [{"as_expr": {"expr_str": _linear_sum(terms, 1000 + d * terms) if terms > 1 else _sym(1000 + d),
                              "hint": {"as_int": 2 * terms}}} for d in range(dims)]
        for name in ("x", "mul"):
            doc["graph_module"]["graph"]["tensor_values"][name]["sizes"] = sizes
            doc["graph_module"]["graph"]["tensor_values"][name]["strides"] = [{"as_int": 1}] * dims
        for name in names:
            doc["range_constraints"][name] = {"min_val": 2, "max_val": None}

    return mutate


def _without_hints(doc: dict, marker: str) -> None:
    """Every expression's hint removed (``"hint": null``): torch then decides comparisons of
    sizes by expanding their products (one ``dist`` of two inputs of 7 symbolic sizes each made
    ``run_decompositions`` take 10.9 s; 0.4 s with the hints; second red team)."""
    import re

    stripped = json.loads(re.sub(r'"hint": \{"as_(int|float|bool)": [^}]*\}', '"hint": null', json.dumps(doc)))
    doc.clear()
    doc.update(stripped)


def _symbolic_inputs(lie: str):
    """A mutation of the ``broadcast`` base (``x0 + x1 + ... + x7`` over 8 inputs of 16
    dimensions, each of size 2 in its own 2; ``broadcast12``: 12 inputs of 24): every size 2 of
    an input becomes a fresh symbol (hint 2), so that the sum has 16 (24) symbolic sizes. ``lie`` is what the adds' stored sizes say:
    ``"truth"`` what they are, ``"static"`` the ints 2 and 1 (what the hints give), ``"first"``
    ``x0``'s sizes. Nothing checks an op's stored sizes against the op, and each add's inputs
    broadcast to at most 4 symbolic sizes as stored (free): ``run_decompositions`` recomputes
    the sizes and compares strides that are products of up to 16 shifted symbols (11 s; four
    inputs of 6 symbolic sizes, 140 s: third red team of the expression budget)."""

    def mutate(doc: dict, marker: str) -> None:
        graph = doc["graph_module"]["graph"]
        values = graph["tensor_values"]
        inputs = [a["as_tensor"]["name"] for a in graph["inputs"]]
        size = lambda i: {"as_expr": {"expr_str": _sym(1000 + i), "hint": {"as_int": 2}}}  # noqa: E731
        dims = 2 * len(inputs)
        for j, name in enumerate(inputs):
            values[name]["sizes"] = [size(i) if 2 * j <= i < 2 * (j + 1) else {"as_int": 1} for i in range(dims)]
            for i in range(2 * j, 2 * (j + 1)):
                doc["range_constraints"][f"s{1000 + i}"] = {"min_val": 2, "max_val": None}
        adds = [n["outputs"][0]["as_tensor"]["name"] for n in graph["nodes"] if n["target"] == "torch.ops.aten.add.Tensor"]
        for k, name in enumerate(adds):
            if lie == "truth":
                values[name]["sizes"] = [size(i) if i < 2 * (k + 2) else {"as_int": 1} for i in range(dims)]
            elif lie == "first":
                values[name] = json.loads(json.dumps(values[inputs[0]]))

    return mutate


def _unbacked_adds(marker: str) -> bytes:
    """10 sizes from ``v.tolist()``; 10 ``ones`` of 10 dimensions, each sized by its own, added in
    a chain, every add stored with the sizes of the first ``ones`` (one unbacked size where the
    adds have up to 12; the true sizes are refused at load). The retrace compares strides that
    are products of ``Max(1, u<i>)``, which torch reduces to ``u<i>`` and expands: 4.3 s while a
    function counted as one term (16 sizes: 97 s; fourth red team of the expression budget)."""
    import io

    import torch

    import pt2serde

    class UnbackedOnes(torch.nn.Module):
        def forward(self, v):
            xs = v.tolist()
            for x in xs:
                torch._check(x >= 2)
            n = len(xs)
            t = torch.ones(*[xs[0] if i == 0 else 1 for i in range(n)])
            for j in range(1, n):
                t = t + torch.ones(*[xs[j] if i == j else 1 for i in range(n)])
            return t.sum()

    buf = io.BytesIO()
    pt2serde.save(torch.export.export(UnbackedOnes(), (torch.full((10,), 2, dtype=torch.int64),)), buf)
    data = buf.getvalue()
    doc = H.read_json(data, "models/model.json")
    graph = doc["graph_module"]["graph"]
    values = graph["tensor_values"]
    ones = [n["outputs"][0]["as_tensor"]["name"] for n in graph["nodes"] if n["target"].endswith("ones.default")]
    for n in graph["nodes"]:
        if n["target"] == "torch.ops.aten.add.Tensor":
            values[n["outputs"][0]["as_tensor"]["name"]] = json.loads(json.dumps(values[ones[0]]))
    return H.rewrite(data, replace={"models/model.json": json.dumps(doc).encode()})


def _mod_of_sum(i: int) -> str:
    """Mod of a sum of 256 symbols: within every per-expression cap (0.2-0.5 s of sympy each)."""
    return "Mod(Add(" + ", ".join(_sym(j + i) for j in range(256)) + f"), Integer({7 + i}))"


def _lattice_chain(i: int) -> str:
    """Min/Max nested 8 deep (392 units, 65 ms: 3 fill the budget; 104 units before each Max/Min
    was charged the comparisons of its arguments' trees, when 14 loaded in 0.85 s)."""
    return __import__("functools").reduce(
        lambda e, j: ("Max(" if j % 2 else "Min(") + e + f", Add({_sym(i + j + 1)}, Integer({j})))", range(8), _sym(i))

def _padded_windows(i: int, windows: int = 4) -> str:
    """Min of ``windows`` products ``8*max(1, (s + pad) // 7)`` (a Swin-style padded window count)
    of fresh symbols: sympy compares the arguments pairwise, each comparison querying the
    FloorDiv and Mod inside both (0.22 s each, 146 units before the comparisons were charged)."""
    def win(s: str) -> str:
        pad = f"Mod(Add(Integer(7), Mul(Integer(-1), Mod({s}, Integer(7)))), Integer(7))"
        return f"Mul(Integer(8), Max(Integer(1), FloorDiv(Add({s}, {pad}), Integer(7))))"
    return "Min(" + ", ".join(win(_sym(1000 + windows * i + j)) for j in range(windows)) + ")"


def _wide_values(nodes: int, dims: int, alias: bool = False):
    """A mutation adding ``nodes`` nodes ``w<i> = aten.view.default(x, ...)`` (``aten.alias.default(x)``
    with ``alias``), each a tensor of ``dims`` distinct plain sizes ``k * s77``: far more plain
    expressions per node than the allowance of 2 per node (expression_budget) lets go uncharged."""

    def mutate(doc: dict, marker: str) -> None:
        g = doc["graph_module"]["graph"]
        for i in range(nodes):
            name = f"w{i}"
            inputs = [{"name": "self", "arg": {"as_tensor": {"name": "x"}}, "kind": 1}]
            if not alias:  # (alias: a node run_decompositions can trace again, whatever its stored sizes)
                inputs.append({"name": "size", "arg": {"as_ints": [1] * dims}, "kind": 1})
            g["nodes"].append({
                "target": f"torch.ops.aten.{'alias' if alias else 'view'}.default", "name": name, "metadata": {},
                "inputs": inputs, "outputs": [{"as_tensor": {"name": name}}], "is_hop_single_tensor_return": None})
            meta = json.loads(json.dumps(g["tensor_values"]["x"]))
            meta["sizes"] = [{"as_expr": {"expr_str": f"Mul(Integer({2 + i * dims + d}), {S})", "hint": None}}
                             for d in range(dims)]
            meta["strides"] = [{"as_int": 1}] * dims
            g["tensor_values"][name] = meta

    return mutate


def _asserted(conditions: list[str], symbols: int):
    """A mutation asserting each condition: a node ``c<i>`` (a SymBool: ``e0 == 4`` by its
    inputs, the condition by its stored value, which load gives torch) and
    ``aten._assert_scalar(c<i>)``, which load hands to torch's ShapeEnv as a runtime assert;
    symbols ``s0`` .. ``s<symbols>`` get the range [2, oo)."""

    def mutate(doc: dict, marker: str) -> None:
        g = doc["graph_module"]["graph"]
        for j in range(symbols + 1):
            doc["range_constraints"][f"s{j}"] = {"min_val": 2, "max_val": None}
        stack = {"nn_module_stack": g["nodes"][0]["metadata"]["nn_module_stack"]}  # the root module's
        _many(lambda i: S, 1)(doc, marker)  # e0 = sym_size(x, 0)
        g["nodes"][-1]["metadata"] = dict(stack)
        for i, condition in enumerate(conditions):
            g["nodes"].append({
                "target": "_operator.eq", "name": f"c{i}", "metadata": dict(stack),
                "inputs": [{"name": "a", "arg": {"as_sym_int": {"as_name": "e0"}}, "kind": 1},
                           {"name": "b", "arg": {"as_int": 4}, "kind": 1}],
                "outputs": [{"as_sym_bool": {"as_name": f"c{i}"}}], "is_hop_single_tensor_return": None})
            g["sym_bool_values"][f"c{i}"] = {"as_expr": {"expr_str": condition, "hint": None}}
            g["nodes"].append({
                "target": "torch.ops.aten._assert_scalar.default", "name": f"a{i}", "metadata": dict(stack),
                "inputs": [{"name": "self", "arg": {"as_sym_bool": {"as_name": f"c{i}"}}, "kind": 1},
                           {"name": "assert_msg", "arg": {"as_string": "m"}, "kind": 1}],
                "outputs": [], "is_hop_single_tensor_return": None})

    return mutate


def _squares(k: int, form: str = "Equality({a}, {b})") -> list[str]:
    """``s<i+1> == s<i>*s<i>``, written in ``form``: torch solves every one of them for ``s<i+1>``."""
    return [form.format(a=_sym(i + 1), b=f"Mul({_sym(i)}, {_sym(i)})") for i in range(k)]


def _message_first(mutate):
    """``mutate``, then every ``_assert_scalar`` node lists its message before its condition
    (load binds the inputs by name: the same call)."""

    def reordered(doc: dict, marker: str) -> None:
        mutate(doc, marker)
        for node in doc["graph_module"]["graph"]["nodes"]:
            if node["target"] == "torch.ops.aten._assert_scalar.default":
                node["inputs"].reverse()

    return reordered


_COMPOSED = r"the asserted equality, with the replacements asserted before it written out, is refused"


CASES = [
    doc_case("3*s0**(10**8) as an input size", _size(f"Mul(Integer(3), Pow({S}, Integer(100000000)))"),
             r"Pow of a symbolic base with exponent 100000000, over the limit of 64", base="dynamic"),
    doc_case("Mod(s0**(10**8), 7) as an input size", _size(f"Mod(Pow({S}, Integer(100000000)), Integer(7))"),
             r"Pow of a symbolic base with exponent 100000000, over the limit of 64", base="dynamic"),
    doc_case("Mod((s0 + 1)**1024, 7) as an input size",
             _size(f"Mod(Pow(Add({S}, Integer(1)), Integer(1024)), Integer(7))"),
             r"exponent 1024, over the limit of 64", base="dynamic"),
    doc_case("Mod of a product of 64 sums (degree blow-up)", _size(f"Mod(Mul({', '.join(_SUMS)}), Integer(7))"),
             r"Mul\(\.\.\.\) of sums expands to more than 64 terms", base="dynamic"),
    doc_case("FloorDiv of a product of 16 sums of distinct symbols",
             _size("FloorDiv(Mul(" + ", ".join(f"Add(Symbol('s{i + 100}', positive=True, integer=True), Integer(1))"
                                                 for i in range(16)) + f"), Add({S}, Integer(1)))"),
             r"Mul\(\.\.\.\) of sums expands to more than 64 terms", base="dynamic"),
    doc_case("degree 128 by products of powers",
             _size("Mul(" + ", ".join([f"Pow({S}, Integer(64))"] * 2) + ")"),
             r"Mul\(\.\.\.\) has degree 128, over the limit of 64", base="dynamic"),
    doc_case("Min/Max nested 50 deep (sympy compares nested lattices pairwise)",
             _size(__import__("functools").reduce(
                 lambda e, j: ("Max(" if j % 2 else "Min(") + e + f", Add({S}, Integer({j})))", range(50), S)),
             r"holds Max/Min calls of more than 16 arguments in all", base="dynamic"),
    doc_case("Max of 33 arguments", _size("Max(" + ", ".join(_SUMS[:33]) + ")"),
             r"Max takes at most 4 arguments, got 33", base="dynamic"),
    # expressions within the budgets load; they are equal to s77, so the sample input still fits
    doc_case("Max(1, (6*s0)//6) + 2*s0**64 - 2*s0**64 loads", _size(
        f"Add(Max(Integer(1), FloorDiv(Mul(Integer(6), {S}), Integer(6))), Mul(Integer(2), Pow({S}, Integer(64))), "
        f"Mul(Integer(-2), Pow({S}, Integer(64))))"), None, base="dynamic"),
    # the document's budget: before it, 50 of these took load 11 s (validate called the file valid)
    doc_case("50 distinct near-cap expressions in one document (Mod of a 256-symbol sum each)",
             _many(_mod_of_sum, 50), r"need more work than the expression budget of 1500 units .* - at "
             r"`\$\.graph_module\.graph\.sym_int_values\.e1\.as_expr\.expr_str`", base="dynamic"),
    doc_case("a product of 64 distinct symbols (2**64 terms once torch shifts each symbol)",
             _many(lambda i: "Mul(" + ", ".join(_sym(j) for j in range(64)) + ")", 1),
             r"expression budget of 1500 units", base="dynamic"),
    doc_case("3 Min/Max chains 8 deep: at the document's budget, loads", _many(_lattice_chain, 3), None,
             base="dynamic"),
    doc_case("10 Min of 4 padded window counts (load took 2.0 s: 146 units each)", _many(_padded_windows, 10),
             r"expression budget of 1500 units \(this one 666, 1332 before it", base="dynamic"),
    doc_case("2 Min of 4 padded window counts: at the document's budget, loads", _many(_padded_windows, 2), None,
             base="dynamic"),
    doc_case("a graph input's symbolic size without a hint", _without_hints,
             r"graph input `x` has a symbolic size without a hint .* - at "
             r"`\$\.graph_module\.graph\.tensor_values\.x\.sizes\[0\]\.as_expr\.hint`", base="dynamic"),
    # a tensor's symbolic sizes multiply: past 16 terms (shifted), each term costs 4 units
    doc_case("an input of 10 symbolic dimensions (run_decompositions took 1.6 s; 16 of them, over 40 s)",
             _input_sizes(10), r"expression budget of 1500 units \(sizes whose product torch expands to 1024 "
             r"terms: 4032, .* - at `\$\.graph_module\.graph\.tensor_values\.x\.sizes`", base="dynamic"),
    doc_case("an input of 2 sizes, each a sum of 64 symbols (run_decompositions took 9.5 s)", _input_sizes(2, 64),
             r"sizes whose product torch expands to 16384 terms", base="dynamic"),
    doc_case("an input of 8 symbolic dimensions: 256 terms, charged, loads", _input_sizes(8), None, base="dynamic"),
    # an op's stored sizes are not checked against what the op computes: the ShapeEnv a loaded
    # program keeps bounds the expansions run_decompositions asks of it (bridge/bounded_shapes.py)
    doc_case("adds stored as static over inputs of 16 symbolic sizes in all (run_decompositions took 11 s)",
             _symbolic_inputs("static"), None, base="broadcast"),
    doc_case("adds stored with the first input's sizes over inputs of 16 symbolic sizes in all",
             _symbolic_inputs("first"), None, base="broadcast"),
    # ... and meters the distinct expressions torch evaluates in it (bounded_shapes.MAX_EVALUATED_TERMS):
    # 48 such adds over 48 symbolic sizes took run_decompositions 22 s (third red team); refused now
    doc_case("adds stored as static over 12 inputs of 24 symbolic sizes in all: run_decompositions refused",
             _symbolic_inputs("static"), None, base="broadcast12"),
    # 10 sizes: 12 took run_decompositions 1.3-2.2 s of CPU, across the step limit of 2 s by machine state
    Case("adds over 10 unbacked sizes (tolist()) stored with one", _unbacked_adds, None),
    doc_case("adds stored with their true sizes, up to 16 symbolic: charged, refused", _symbolic_inputs("truth"),
             r"expression budget of 1500 units \((its tensor inputs' )?sizes( broadcast,)? whose product torch "
             r"expands to \d+ terms", base="broadcast"),
    # plain expressions (symbols, sums, products, comparisons) go to an allowance of 2 per graph
    # node, not the units: a data-dependent MoE makes 3 per expert (tests/bridge/test_many_experts.py)
    doc_case("600 distinct plain expressions on 600 nodes: within the allowance, loads",
             _many(lambda i: f"Add(Mul(Integer({i + 2}), {S}), {_sym(i)})", 600), None, base="dynamic"),
    doc_case("1000 plain expressions on 250 nodes: past the allowance, 2 units each (linear): loads",
             _wide_values(250, 4, alias=True), None, base="dynamic"),
    doc_case("1024 plain expressions on 32 nodes: past the allowance they charge units",
             _wide_values(32, 32), r"expression budget of 1500 units .* plain ones went to the allowance of "
             r"\d+, 2 per graph node\)", base="dynamic"),
    # linear sums (symbols times integers) are charged units / 16, at least 2, and order
    # comparisons of them 6 + units / 4 (torch.split and narrow by tolist() make many,
    # tests/bridge/test_data_dependent_splits.py): at the budget, each of these loads in 0.5-0.8 s
    doc_case("39 sums of 200 fresh symbols: at the document's budget, loads",
             _many(lambda i: _linear_sum(200, 1000 + 200 * i), 39), None, base="dynamic"),
    doc_case("40 sums of 200 fresh symbols: past the budget, refused", _many(lambda i: _linear_sum(200, 1000 + 200 * i), 40),
             r"expression budget of 1500 units \(this one 38, ", base="dynamic"),
    doc_case("130 asserted comparisons of sums of 3 fresh symbols (6 + units / 4 each): at the budget, loads",
             _asserted([f"LessThan({_linear_sum(3, 3 * i)}, Integer({10 ** 6 + i}))" for i in range(130)], 390),
             None, base="dynamic"),
    doc_case("8 asserted comparisons of sums of 200 fresh symbols: at the budget, loads",
             _asserted([f"LessThan({_linear_sum(200, 200 * i)}, Integer({10 ** 6 + i}))" for i in range(8)], 1600),
             None, base="dynamic"),
    doc_case("10 asserted comparisons of sums of 200 fresh symbols: past the budget, refused",
             _asserted([f"LessThan({_linear_sum(200, 200 * i)}, Integer({10 ** 6 + i}))" for i in range(10)], 2000),
             r"expression budget of 1500 units", base="dynamic"),
    # asserted equalities compose: torch replaces the symbol and substitutes it everywhere after
    doc_case("11 asserted squarings (s1 == s0*s0, s2 == s1*s1, ...: s0**2048; load took 9 s)",
             _asserted(_squares(11), 12), r"the asserted equality, with the replacements asserted before it written "
             r"out, is refused: Mul\(\.\.\.\) of sums expands to more than 64 terms .* - at "
             r"`\$\.graph_module\.graph\.sym_bool_values\.c3\.as_expr\.expr_str`", base="dynamic"),
    doc_case("200 asserted Fibonacci sums (s2 == s1 + s0, ...: 10 ms each in torch; load took 2.2 s)",
             _asserted([f"Equality({_sym(i + 2)}, Add({_sym(i + 1)}, {_sym(i)}))" for i in range(200)], 202),
             r"expression budget of 1500 units", base="dynamic"),  # equalities are not plain: they charge units
    doc_case("5 asserted squarings, then 400 comparisons of s5 (each expands s0**32; load took 7 s)",
             _asserted(_squares(5) + [f"GreaterThan({_sym(5)}, {_sym(6 + j)})" for j in range(400)], 406),
             r"the asserted equality, with the replacements asserted before it written out, is refused",
             base="dynamic"),
    doc_case("6 asserted squarings, then a sum compared (torch's range code: NaN; validate said valid)",
             _asserted(_squares(6) + [f"GreaterThan(Add({_sym(6)}, {_sym(7)}), {_sym(8)})"], 8),
             r"the asserted equality, with the replacements asserted before it written out, is refused",
             base="dynamic"),
    # the same, as torch rewrites and solves it (second red team: each took load about 10 s)
    doc_case("11 asserted squarings as 1*s1 == s0*s0", _asserted(_squares(11, "Equality(Mul(Integer(1), {a}), {b})"), 12),
             _COMPOSED, base="dynamic"),
    doc_case("11 asserted squarings as s1 - s0*s0 == 0",
             _asserted(_squares(11, "Equality(Add({a}, Mul(Integer(-1), {b})), Integer(0))"), 12), _COMPOSED,
             base="dynamic"),
    doc_case("11 asserted squarings inside And(...)",
             _asserted(_squares(11, "And(Equality({a}, {b}), GreaterThan({a}, Integer(2)))"), 12), _COMPOSED,
             base="dynamic"),
    doc_case("squarings alternating with s_a == s_b (a replaced symbol's equality replaces the other; load took 19 s)",
             _asserted([c for i in range(11) for c in (f"Equality({_sym(2 * i + 1)}, Mul({_sym(2 * i)}, {_sym(2 * i)}))",
                                                       f"Equality({_sym(2 * i + 1)}, {_sym(2 * i + 2)})")], 24),
             _COMPOSED, base="dynamic"),
    doc_case("11 asserted squarings, each assert's message listed before its condition",
             _message_first(_asserted(_squares(11), 12)), _COMPOSED, base="dynamic"),
    doc_case("asserted linear equalities (s1 == 2*s0, s2 == s1 + 1, s3 == s2): load",
             _asserted([f"Equality({_sym(1)}, Mul(Integer(2), {_sym(0)}))",
                        f"Equality({_sym(2)}, Add({_sym(1)}, Integer(1)))", f"Equality({_sym(3)}, {_sym(2)})"], 3),
             None, base="dynamic"),
    # sympy alone used to find these while building (validate said valid, load refused)
    doc_case("Symbol with contradictory assumptions (positive and negative)",
             _size("Symbol('s77', positive=True, negative=True)"),
             r"Symbol assumptions positive=True, negative=True contradict each other", base="dynamic"),
    doc_case("Symbol with an assumption PyTorch never writes (commutative=False)",
             _size("Symbol('s77', commutative=False)"), r"unknown Symbol assumption 'commutative'", base="dynamic"),
    doc_case("torch function of numbers only (Mod(1, -3): an AssertionError in torch)",
             _size(f"Add({S}, Mod(Integer(1), Integer(-3)))"), r"Mod of numbers only", base="dynamic"),
    doc_case("a condition as a number (Add(s0 < 3, s0))",
             _size(f"Add(StrictLessThan({S}, Integer(3)), {S})"), r"Add expects a number, got a condition",
             base="dynamic"),
    # numbers-only subtrees (red team F1-F3): decided on their values, before sympy computes them
    doc_case("2**(2**31) as a factor of a size (a computed exponent)",
             _size(f"Mul({S}, Pow(Integer(2), Pow(Integer(2), Integer(31))))"),
             r"Pow of a number would exceed 4300 digits at offset 64 - at `\$\.graph_module", base="dynamic"),
    doc_case("10**1e4000 as a factor of a size (a float exponent: 34 s of mpmath)",
             _size(f"Mul({S}, Pow(Integer(10), Float('1e4000')))"),
             r"Pow of a number would exceed 4300 digits at offset 65 - at `\$\.graph_module", base="dynamic"),
    doc_case("FloorDiv by Add(1, -1) (a divisor of zero, not a literal)",
             _size(f"FloorDiv({S}, Add(Integer(1), Integer(-1)))"), r"FloorDiv divides by zero .* - at `\$\.graph_module",
             base="dynamic"),
    doc_case("nan smuggled as Rational(0, 0) into Max", _size(f"Max({S}, Rational(0, 0))"),
             r"Rational with a zero denominator .* - at `\$\.graph_module", base="dynamic"),
    Case("schema 7: 100 KB printed expressions, deflated (quadratic upgrade)",
         _legacy(" - ".join(["s0"] * 20_000)), r"invalid symbolic expression: .*(values|characters)",
         base="dynamic"),
    Case("schema 7: a sum of 201 printed terms loads (upgraded flat, not nested 200 deep)",
         _legacy("s0" + " + s0 - s0" * 100), None, base="dynamic"),
]


def _symbol_without_range(doc: dict, marker: str) -> None:
    """A symbolic value over a symbol the file gives no range: torch's ShapeEnv asserted "vr must
    not be None" while load built the node (validate said valid); now the symbol gets an
    unbounded range and the program loads."""
    g = doc["graph_module"]["graph"]
    x = g["inputs"][0]["as_tensor"]["name"]
    g["nodes"].insert(0, {"target": "torch.ops.aten.sym_size.int", "inputs": [
        {"name": "self", "arg": {"as_tensor": {"name": x}}, "kind": 1}, {"name": "dim", "arg": {"as_int": 0}, "kind": 1}],
        "outputs": [{"as_sym_int": {"as_name": "e0"}}], "metadata": {}, "is_hop_single_tensor_return": None,
        "name": "e0"})
    g["sym_int_values"]["e0"] = {"as_expr": {
        "expr_str": "Mod(Symbol('q9', positive=True, integer=True), Integer(7))", "hint": None}}


CASES.append(doc_case("a symbol without a range constraint loads", _symbol_without_range, None, base="dynamic"))


# ---------------------------------------------------------- values at the hints (fifth red team)
# torch gives every symbolic value without a stored hint its expression's value at the hints
# (sympy, exactly, whatever the numbers), and raises where that value fails; validate said
# valid to all of these (format/expr_hints.py now computes the values, bounded, for both).

def _at_hints(rows: list[tuple[str, object]], ranges: dict | None = None, input_hint=None, mul_size: str | None = None):
    """A mutation adding ``e<i> = aten.sym_size.int(x, 0)`` nodes whose SymInt stores
    ``(expression, hint)`` of ``rows`` (a hint: None, an int, or a raw hint object), with
    ``ranges`` set, the hint of the symbolic size of ``x`` and ``mul`` replaced by ``input_hint``
    and the expression of ``mul``'s by ``mul_size`` (without a hint) when given."""

    def mutate(doc: dict, marker: str) -> None:
        g = doc["graph_module"]["graph"]
        doc["range_constraints"].update(ranges or {})
        for name in ("x", "mul"):
            size = g["tensor_values"][name]["sizes"][0]["as_expr"]
            if input_hint is not None:
                size["hint"] = input_hint if isinstance(input_hint, dict) else {"as_int": input_hint}
            if mul_size is not None and name == "mul":
                size["expr_str"], size["hint"] = mul_size, None
        for i, (expression, hint) in enumerate(rows):
            _sym_size_node(g, f"e{i}", expression, hint if isinstance(hint, dict) or hint is None else {"as_int": hint})

    return mutate


_S5 = _sym(5)
_ZERO_AT_HINT = f"Add({S}, Integer(-4))"  # s77 - 4: zero at s77's hint (4)
_BIG_S5 = {"s5": {"min_val": 2, "max_val": 2 ** 62}}

CASES += [
    doc_case("Pow(2, s77) under a stored hint of 10**15 for s77 (load ran out of memory)",
             _at_hints([(f"Pow(Integer(2), {S})", None)], input_hint=10 ** 15),
             r"the hint 1000000000000000 of symbol s77 is outside its range \[2, 64\] - at `\$\.graph_module",
             base="dynamic"),
    doc_case("Pow(2, s5) with s5's hint 10**15 inside a range up to 2**62",
             _at_hints([(_S5, 10 ** 15), (f"Pow(Integer(2), {_S5})", None)], _BIG_S5),
             r"Pow with the exponent 1000000000000000 at the hints \(over 14284\) - at "
             r"`\$\.graph_module\.graph\.sym_int_values\.e1",
             base="dynamic"),
    doc_case("LShift(1, s5) with s5's hint 10**15: int_oo at the hints",
             _at_hints([(_S5, 10 ** 15), (f"LShift(Integer(1), {_S5})", None)], _BIG_S5),
             r"is int_oo at the hints, not an integer", base="dynamic"),
    doc_case("PowByNatural(s77, s77) of small hints loads",
             _at_hints([(f"PowByNatural({S}, {S})", None)]), None, base="dynamic"),
    *(doc_case(f"{fn} by a divisor that is zero at the hints", _at_hints([(f"{fn}({S}, {_ZERO_AT_HINT})", None)]),
               r"it divides by zero at the hints - at `\$\.graph_module\.graph\.sym_int_values\.e0", base="dynamic")
      for fn in ("FloorDiv", "Mod", "PythonMod", "CleanDiv", "CeilDiv")),
    doc_case("ModularIndexing by a modulus that is zero at the hints",
             _at_hints([(f"ModularIndexing({S}, Integer(1), {_ZERO_AT_HINT})", None)]),
             r"it divides by zero at the hints", base="dynamic"),
    doc_case("a division by zero at the hints on a Piecewise branch not taken (sympy evaluates every branch)",
             _at_hints([(f"Piecewise(ExprCondPair(FloorDiv({S}, {_ZERO_AT_HINT}), StrictLessThan({S}, Integer(0))), "
                         f"ExprCondPair({S}, true))", None)]), r"it divides by zero at the hints", base="dynamic"),
    doc_case("PowByNatural with an exponent negative at the hints",
             _at_hints([(f"PowByNatural({S}, Add({S}, Integer(-10)))", None)]),
             r"PowByNatural has a negative exponent at the hints", base="dynamic"),
    doc_case("RShift by an amount negative at the hints", _at_hints([(f"RShift({S}, Add({S}, Integer(-10)))", None)]),
             r"RShift by a negative amount at the hints", base="dynamic"),
    doc_case("log of zero at the hints", _at_hints([(f"TruncToInt(OpaqueUnaryFn_log(ToFloat({_ZERO_AT_HINT})))", None)]),
             r"log fails at the hints \(math domain error\)", base="dynamic"),
    doc_case("FloatPow past the floats at the hints", _at_hints([(f"TruncToInt(FloatPow(Float('1e300'), {S}))", None)]),
             r"FloatPow fails at the hints", base="dynamic"),
    *(doc_case(f"a SymInt whose expression is {text}", _at_hints([(text, None)]), r"at the hints, not an integer",
               base="dynamic")
      for text in ("oo", "-int_oo", "true", f"StrictLessThan({S}, Integer(3))", f"Add({S}, oo)")),
    doc_case("a tensor size negative at the hints", _at_hints([], mul_size=f"Add({S}, Integer(-10))"),
             r"is -6 at the hints, a negative size", base="dynamic"),
    doc_case("a number stored with another hint (Integer(5), hint 7)", _at_hints([("Integer(5)", 7)]),
             r"symbolic value Integer\(5\) is 5 but its hint says 7", base="dynamic"),
    doc_case("a SymInt hint stored as a float", _at_hints([(_S5, {"as_float": 4.0})], _BIG_S5),
             r"SymInt hint must be an int, got float", base="dynamic"),
    doc_case("an input size's hint stored as a bool", _at_hints([], input_hint={"as_bool": True}),
             r"SymInt hint must be an int, got bool", base="dynamic"),
    doc_case("one symbol stored with two hints", _at_hints([(S, 5)]), r"symbol s77 has two hints, 4 \(at .*\) and 5",
             base="dynamic"),
    doc_case("a positive symbol whose range is [0, 0] (run_decompositions failed a guard)",
             _at_hints([], {"s77": {"min_val": 0, "max_val": 0}}), r"the hint 4 of symbol s77 is outside its range \[0, 0\]",
             base="dynamic"),
]

# torch also keeps the hint stored on a whole expression, and sympy folds some to a bare
# symbol (sixth red team: these made load run past a minute while validate said valid)
CASES += [
    doc_case("a hint of 10**15 stored on Add(s77, 1), then Pow(2, Add(s77, 1))",
             _at_hints([(f"Add({S}, Integer(1))", 10 ** 15), (f"Pow(Integer(2), Add({S}, Integer(1)))", None)]),
             r"the hint 1000000000000000 of Add\(.*\) is not its value 5 at its symbols' hints", base="dynamic"),
    doc_case("a hint of 10**15 stored on Add(s5, 0) (sympy folds it to s5), then Pow(2, s5)",
             _at_hints([(f"Add({_S5}, Integer(0))", 10 ** 15), (f"Pow(Integer(2), {_S5})", None)], _BIG_S5),
             r"Pow with a symbolic exponent whose value at the hints is not known", base="dynamic"),
    doc_case("Pow(2, Min(s5, int_oo)) with s5's hint 10**15",
             _at_hints([(_S5, 10 ** 15), (f"Pow(Integer(2), Min({_S5}, int_oo))", None)], _BIG_S5),
             r"Pow with a symbolic exponent whose value at the hints is not known", base="dynamic"),
    doc_case("Pow(2, TruncToInt(1.0 * s5)) with s5's hint 10**15 (a float exponent)",
             _at_hints([(_S5, 10 ** 15), (f"Pow(Integer(2), TruncToInt(Mul(Float('1.0'), {_S5})))", None)], _BIG_S5),
             r"Pow with the exponent 1000000000000000 at the hints", base="dynamic"),
    doc_case("floor(Max(s77, 1e309)) loads (validate raised OverflowError: a float literal past the floats)",
             _at_hints([(f"floor(Max({S}, Float('1e309')))", None)]), None, base="dynamic"),
]

# torch hands PowByNatural of a non-integer base to sympy's Pow (seventh red team: load ran 14
# minutes, 711 MB and growing, on (3/2)**(2**40); validate said valid)
CASES += [
    doc_case("PowByNatural(3/2, s5) with s5's hint 2**40",
             _at_hints([(_S5, 2 ** 40), (f"PowByNatural(Rational(3, 2), {_S5})", None)], _BIG_S5),
             r"PowByNatural with the exponent 1099511627776 at the hints", base="dynamic"),
    doc_case("PowByNatural(3/2, Add(s9, 1)) with a hint of 2**40 stored on Add(s9, 1) only",
             _at_hints([(f"Add({_sym(9)}, Integer(1))", 2 ** 40),
                        (f"PowByNatural(Rational(3, 2), Add({_sym(9)}, Integer(1)))", None)], {"s9": {"min_val": 2, "max_val": 2 ** 62}}),
             r"PowByNatural with a symbolic exponent whose value at the hints is not known", base="dynamic"),
]


# torch keeps the first hint it is given for whatever expression sympy builds from a text, and
# swaps it in wherever that expression appears; load now gives torch only the hints the rule
# checked (format/expr_hints.HintUse). Eighth red team: each of these hung load (or ran it 84 s)
# while validate said valid.
_S6 = _sym(6)
_INT64_S = {"s5": {"min_val": 2, "max_val": 2 ** 63 - 1}, "s6": {"min_val": 2, "max_val": 2 ** 63 - 1}}


def _float_value(expression: str, hint: dict | None):
    """A mutation of the ``symfloat`` base storing its SymFloat ``truediv`` as ``expression``."""

    def mutate(doc: dict, marker: str) -> None:
        doc["graph_module"]["graph"]["sym_float_values"]["truediv"]["as_expr"] = {"expr_str": expression, "hint": hint}

    return mutate


def _both(*mutations):
    def mutate(doc: dict, marker: str) -> None:
        for m in mutations:
            m(doc, marker)

    return mutate


CASES += [
    doc_case("a Symbol named like an expression ('s6 + s77') with a hint of 10**15, then Pow(2, s6 + s77)",
             _at_hints([(_S6, 3), (f"Add({S}, {_S6})", None),
                        ("Symbol('s6 + s77', positive=True, integer=True)", 10 ** 15),
                        (f"Pow(Integer(2), Add({S}, {_S6}))", None)], {"s6": {"min_val": 2, "max_val": 64}}),
             r"Symbol name 's6 \+ s77' is not an identifier", base="dynamic"),
    doc_case("a Symbol named '5' (the number 5, as torch's table of printed expressions has it)",
             _at_hints([(f"Add({S}, Mul(Integer(-1), {S}), Integer(5))", 5),
                        ("Symbol('5', positive=True, integer=True)", 7)]),
             r"Symbol name '5' is not an identifier", base="dynamic"),
    *(doc_case(f"a hint of 10**15 stored first on {form} (sympy folds it to s5), s5's own hint 3, then Pow(2, s5)",
               _at_hints([(form, 10 ** 15), (_S5, 3), (f"Pow(Integer(2), {_S5})", None)], _BIG_S5), None,
               base="dynamic")
      for form in (f"Min({_S5}, oo)", f"Max({_S5}, -oo)",
                   f"Piecewise(ExprCondPair({_S5}, GreaterThan({_S5}, -oo)))")),
    doc_case("a SymInt hint past int64 (a root of it: sympy factors 4000 digits, 3.4 s each)",
             _at_hints([(_S5, 10 ** 4000 + 7), (f"Pow({_S5}, Rational(1, 3))", None)], {"s5": {"min_val": 2, "max_val": None}}),
             r"SymInt hint 1000000000000\.\.\. \(4001 digits\) is out of int64", base="dynamic"),
    doc_case("a hint past int64 stored on Add(s5, 0)",
             _at_hints([(f"Add({_S5}, Integer(0))", 10 ** 300),
                        (f"TruncToInt(FloatPow(Float('2.0', precision=53), {_S5}))", None)], {"s5": {"min_val": 2, "max_val": None}}),
             r"is out of int64", base="dynamic"),
    doc_case("a root with a denominator past 8 of a symbol's hint",
             _at_hints([(_S5, 2 ** 40), (f"Pow({_S5}, Rational(1, 4096))", None)], _BIG_S5),
             r"Pow takes the root 1/4096 of a 41-bit number at the hints", base="dynamic"),
    doc_case("a root of a 4000-digit number", _at_hints([(f"Add({S}, Pow(Integer({10 ** 4000 + 7}), Rational(1, 3)))",
                                                           None)]),
             r"a root \(exponent 1/3\) of a number: over the limit of root 8", base="dynamic"),
    doc_case("a SymFloat hint of s5 (an int past the floats' precision) stored before s5's own, then s5 - s6 divides",
             _both(_float_value(_S5, {"as_int": 2 ** 62 + 1}),
                   _at_hints([(_S5, 2 ** 62 + 1), (_S6, 2 ** 62), (f"FloorDiv({S}, Add({_S5}, Mul(Integer(-1), {_S6})))",
                                                                     None)], _INT64_S)),
             None, base="symfloat"),
    *(doc_case(f"a SymFloat hint of 1e15 on ToFloat(s5), s5's own hint 3, then Pow(2, {fn}(ToFloat(s5)))",
               _both(_float_value(f"ToFloat({_S5})", {"as_float": 1e15}),
                     _at_hints([(_S5, 3), (f"Pow(Integer(2), {fn}(ToFloat({_S5})))", None)], _BIG_S5)),
               None, base="symfloat")
      for fn in ("TruncToInt", "FloorToInt")),
]

# FloorDiv, CleanDiv, CeilDiv and ModularIndexing of a value that is not an integer at the hints:
# torch leaves them unevaluated and fails taking the hint (load refused, validate said valid)
CASES += [
    *(doc_case(f"{text} is not an integer at the hints", _at_hints([(text, None)]),
               r"(FloorDiv|CleanDiv|CeilDiv|ModularIndexing) of (a value|values) that (is|are) not (an )?integers? at the hints",
               base="dynamic")
      for text in (f"FloorDiv(Mul({S}, Rational(7, 8)), Integer(2))", f"FloorDiv({S}, Rational(3, 2))",
                   f"CleanDiv(Mul({S}, Rational(7, 8)), Integer(2))", f"CeilDiv(Mul({S}, Rational(7, 8)), Integer(2))",
                   f"ModularIndexing(Mul({S}, Rational(1, 3)), Integer(1), Integer(2))")),
    doc_case("Mod of a rational at the hints loads (torch computes it)",
             _at_hints([(f"Mod({S}, Rational(3, 2))", None), (f"PythonMod(Mul({S}, Rational(1, 3)), Integer(2))", None)]),
             None, base="dynamic"),
]

# run_decompositions() runs every symbolic-function node on its inputs' hints (SymNode computes
# op(a.hint, b.hint) in Python), whatever the file stores as the node's output: 2 ** size at a
# hint of 2**40, or 40 nodes each squaring the last, ran without end; validate said valid.


def _sym_op(g: dict, name: str, target: str, args: list, kind: str = "as_sym_int", stored: str = S) -> None:
    """Append ``name = target(*args)`` (an arg: a literal int or float, a SymInt's name, or
    ``(kind, name)`` for a SymFloat's or SymBool's), its output stored as ``stored`` without a
    hint (by default ``s77``: what the node computes is not what it stores)."""
    inputs = []
    for a in args:
        arg = {a[0]: {"as_name": a[1]}} if isinstance(a, tuple) else {"as_sym_int": {"as_name": a}} \
            if isinstance(a, str) else {"as_float": a} if isinstance(a, float) else {"as_int": a}
        inputs.append({"name": "", "arg": arg, "kind": 1})
    g["nodes"].append({"target": target, "name": name, "metadata": {}, "inputs": inputs,
                       "outputs": [{kind: {"as_name": name}}], "is_hop_single_tensor_return": None})
    table = {"as_sym_int": "sym_int_values", "as_sym_float": "sym_float_values", "as_sym_bool": "sym_bool_values"}[kind]
    g[table][name] = {"as_expr": {"expr_str": stored, "hint": None}}


def _sym_ops(rows: list[tuple], ranges: dict | None = None, input_hint: int | None = None):
    """A mutation adding ``e0 = sym_size(x, 0)`` and the symbolic-function nodes of ``rows``
    (``_sym_op`` arguments after the graph)."""

    def mutate(doc: dict, marker: str) -> None:
        _at_hints([(S, input_hint)], ranges, input_hint)(doc, marker)
        g = doc["graph_module"]["graph"]
        for row in rows:
            _sym_op(g, *row)

    return mutate


_HUGE_S77 = {"s77": {"min_val": 2, "max_val": 2 ** 62}}
CASES += [
    doc_case("_operator.pow(2, size) at a size hint of 2**40, its output stored as s77",
             _sym_ops([("pw", "_operator.pow", [2, "e0"])], _HUGE_S77, 2 ** 40),
             r"node pw \(_operator\.pow\) can compute a number of more than 4300 digits", base="dynamic"),
    doc_case("40 nodes each squaring the last (run_decompositions computes every product)",
             _sym_ops([(f"m{i}", "_operator.mul", ["e0" if i == 0 else f"m{i - 1}"] * 2) for i in range(40)]),
             r"node m7 \(_operator\.mul\) can compute a number of more than 4300 digits", base="dynamic"),
    doc_case("_operator.lshift(1, size * 10**17)",
             _sym_ops([("m0", "_operator.mul", ["e0", 10 ** 17]), ("l0", "_operator.lshift", [1, "m0"])]),
             r"node l0 \(_operator\.lshift\) can compute a number of more than 4300 digits", base="dynamic"),
    doc_case("_operator.floordiv by a value zero at the hints",
             _sym_ops([("z", "_operator.sub", ["e0", 4]), ("d", "_operator.floordiv", [8, "z"])]),
             r"node d \(_operator\.floordiv\): it divides by zero at the hints", base="dynamic"),
    doc_case("a SymFloat power past the floats",
             _sym_ops([("f", "_operator.pow", [10.0, "e0"], "as_sym_float", f"ToFloat({S})"),
                       ("f2", "_operator.pow", [("as_sym_float", "f"), 1000.0], "as_sym_float", f"ToFloat({S})")]),
             r"node f2 \(_operator\.pow\): its value at the hints is past the floats", base="dynamic"),
    doc_case("symbolic functions of honest values load",
             _sym_ops([("a", "_operator.mul", ["e0", 3], "as_sym_int", f"Mul(Integer(3), {S})"),
                       ("b", "_operator.pow", ["a", 2], "as_sym_int", f"Mul(Integer(9), Pow({S}, Integer(2)))"),
                       ("c", "_operator.floordiv", ["b", "e0"], "as_sym_int", f"Mul(Integer(9), {S})")]),
             None, base="dynamic"),
]

# An intermediate tensor's true size in a retrace may differ from the stored one, so the walk
# also bounds the bits each node can have whatever the sizes (a size: int64): a symbolic
# exponent or shift, or a chain of products past 4300 digits, is refused.
CASES += [
    doc_case("_operator.pow(2, size) whatever the size's hint (2**size: up to 2**(2**63))",
             _sym_ops([("pw", "_operator.pow", [2, "e0"])]),
             r"node pw \(_operator\.pow\) can compute a number of more than 4300 digits from the sizes torch "
             r"computes in a retrace", base="dynamic"),
    doc_case("_operator.lshift(1, size)", _sym_ops([("l0", "_operator.lshift", [1, "e0"])]),
             r"node l0 \(_operator\.lshift\) can compute a number of more than 4300 digits", base="dynamic"),
    doc_case("8 nodes each squaring the last, from a size of hint 4 (2**(64 * 2**8) bits from an int64 size)",
             _sym_ops([(f"m{i}", "_operator.mul", ["e0" if i == 0 else f"m{i - 1}"] * 2) for i in range(8)]),
             r"node m7 \(_operator\.mul\) can compute a number of more than 4300 digits", base="dynamic"),
    doc_case("a size to the power 4 and products of sizes load",
             _sym_ops([("p4", "_operator.pow", ["e0", 4], "as_sym_int", f"Pow({S}, Integer(4))"),
                       ("m", "_operator.mul", ["p4", "e0"], "as_sym_int", f"Pow({S}, Integer(5))")]),
             None, base="dynamic"),
]


def _static_pow(doc: dict, marker: str) -> None:
    g = doc["graph_module"]["graph"]
    _sym_op(g, "pw", "_operator.pow", [2, 2 ** 40])
    g["sym_int_values"]["pw"] = {"as_int": 0}  # no expression anywhere: a static program


CASES += [
    doc_case("_operator.pow(2, 2**40) of literals in a static program (module()'s code computes it at every call)",
             _static_pow, r"node pw \(_operator\.pow\) can compute a number of more than 4300 digits", base="small"),
]

# ninth red team: a float made an int was counted as 1 bit (sqrt of a size, times 5e7, made an
# int: 3 ** 1e8 hung run_decompositions and the call); sym_ite, sqrt and comparisons were read
# from their stored outputs; sym_ite of an int and a SymInt, and a function's output stored as a
# fresh unbacked symbol, made run_decompositions raise AssertionError
_F = "as_sym_float"
CASES += [
    doc_case("3 ** int(sqrt(float(size)) * 5e7): an int made from a float has up to 1025 bits",
             _sym_ops([("f0", "torch.sym_float", ["e0"], _F, f"ToFloat({S})"),
                       ("f1", "torch._sym_sqrt", [(_F, "f0")], _F, f"ToFloat({S})"),
                       ("f2", "_operator.mul", [(_F, "f1"), 5e7], _F, f"ToFloat({S})"),
                       ("i0", "torch.sym_int", [(_F, "f2")]), ("p0", "_operator.pow", [3, "i0"])]),
             r"node p0 \(_operator\.pow\) can compute a number of more than 4300 digits", base="dynamic"),
    doc_case("floordiv by sym_ite(size == 4, size - 4, size): zero at the hints",
             _sym_ops([("b0", "_operator.eq", ["e0", 4], "as_sym_bool", f"Eq({S}, Integer(4))"),
                       ("z0", "_operator.sub", ["e0", 4]),
                       ("t0", "torch.sym_ite", [("as_sym_bool", "b0"), "z0", "e0"]),
                       ("d0", "_operator.floordiv", [8, "t0"])]),
             r"node d0 \(_operator\.floordiv\): it divides by zero at the hints", base="dynamic"),
    doc_case("sqrt(float(size)) ** 2000.0: past the floats",
             _sym_ops([("f0", "torch.sym_float", ["e0"], _F, f"ToFloat({S})"),
                       ("f1", "torch._sym_sqrt", [(_F, "f0")], _F, f"ToFloat({S})"),
                       ("f2", "_operator.pow", [(_F, "f1"), 2000.0], _F, f"ToFloat({S})")]),
             r"node f2 \(_operator\.pow\): its value at the hints is past the floats", base="dynamic"),
    doc_case("sym_ite of a SymInt and an int literal",
             _sym_ops([("b0", "_operator.eq", ["e0", 4], "as_sym_bool", f"Eq({S}, Integer(4))"),
                       ("t0", "torch.sym_ite", [("as_sym_bool", "b0"), "e0", 0])]),
             r"node t0 \(torch\.sym_ite\) chooses between a SymInt and a int", base="dynamic"),
    doc_case("a product of sizes stored as a fresh unbacked symbol",
             _sym_ops([("m0", "_operator.mul", ["e0", 2], "as_sym_int", "Symbol('u9', integer=True)")]),
             r"node m0 \(_operator\.mul\) stores its value as the unbacked symbol u9, which none of its inputs has",
             base="dynamic"),
]
