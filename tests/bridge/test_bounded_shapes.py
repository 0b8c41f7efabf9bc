"""The ShapeEnv a loaded program keeps bounds the sympy expansions torch asks of it.

``run_decompositions`` retraces a loaded program in its ShapeEnv and compares the strides of
every tensor it recomputes; torch expands those products with every symbol shifted (2**k terms
for k symbolic sizes). The hostile cases (``tests/hostile/cases_expressions.py``, base
``broadcast``) show the attack end to end; these tests pin the pieces.
"""

from __future__ import annotations

import time

import pytest
import sympy
import torch
from torch.fx.experimental.symbolic_shapes import ShapeEnv
from torch.utils._sympy.numbers import int_oo
from torch.utils._sympy.value_ranges import ValueRanges

import pt2serde
from pt2serde import SerializeError
from pt2serde.bridge.bounded_shapes import MAX_EVALUATED_TERMS, MAX_EXPANSION_TERMS, BoundedShapeEnv, expansion_terms

SYMS = sympy.symbols("s0:24", positive=True, integer=True)


def _env(cls):
    env = cls()
    for i, s in enumerate(SYMS):
        env.var_to_range[s] = ValueRanges(2, int_oo)
        env.add_backed_var_to_val(s, 2 + i)
    return env


def test_expansion_terms_counts_shifted_products_without_expanding():
    a, b, c = SYMS[:3]
    assert expansion_terms(a) == 2  # a -> a' + 1
    assert expansion_terms(sympy.Integer(7)) == 1
    assert expansion_terms(a * b * c) == 8
    assert expansion_terms((a + b) * c) == 8  # (2 + 2) * 2
    assert expansion_terms(sympy.Ge(a * b, c)) == 6  # a relation: one side minus the other
    assert expansion_terms((a + 1) ** 3) == 27  # an upper bound (the expansion has 8 terms)
    assert expansion_terms(sympy.Mul(*SYMS)) == 2 ** 24
    # a function counts as its largest argument (torch may reduce Max(1, u) to u); the worst part inside counts
    from torch.utils._sympy.functions import FloorDiv
    assert expansion_terms(FloorDiv(sympy.Mul(*SYMS[:10]), 7) + a) == 1026
    assert expansion_terms(sympy.Mul(*(sympy.Max(1, s) for s in SYMS[:10]))) == 1024  # 0.7 s of sympy before
    # a huge power is capped, not computed
    assert expansion_terms((a + b) ** 10 ** 6) >= 2 ** 62


def test_expansion_terms_walks_deep_expressions_without_recursion():
    import inspect
    import sys

    e = SYMS[0]
    for i in range(400):  # Max(Max(...), s1 + i): nested 400 deep
        e = sympy.Max(e, SYMS[1] + i, evaluate=False)
    hash(e)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 50)  # far fewer frames than the nesting
    try:
        assert expansion_terms(e) == 3  # s1 + i: the shifted s1 and a constant
    finally:
        sys.setrecursionlimit(limit)


def test_large_comparisons_are_not_evaluated_statically():
    big = sympy.Ge(sympy.Mul(*SYMS[:12]), sympy.Mul(*SYMS[1:13]))  # 4096 + 4096 terms: over 2 s of sympy
    env = _env(BoundedShapeEnv)
    t = time.process_time()
    assert env._maybe_evaluate_static(big) is None
    assert env._maybe_evaluate_static(big, unbacked_only=True) is big  # torch needs an expression back there
    assert time.process_time() - t < 0.1
    # torch still decides it, from the hints, as it does any expression it cannot decide statically
    assert env.size_hint(sympy.Mul(*SYMS[:12])) == sympy.prod(range(2, 14))


def test_small_comparisons_are_evaluated_as_torch_does():
    a, b, c = SYMS[:3]
    ours, theirs = _env(BoundedShapeEnv), _env(ShapeEnv)
    for expr in (sympy.Ge(a * b, a), sympy.Gt(a * b * c, b * c), sympy.Eq(a, b), sympy.Lt(a + b, a * b * c)):
        assert expansion_terms(expr) <= MAX_EXPANSION_TERMS
        assert ours._maybe_evaluate_static(expr) == theirs._maybe_evaluate_static(expr)
    # torch clears its evaluation cache through the method when it learns something
    ours._maybe_evaluate_static.cache_clear()
    assert ours._maybe_evaluate_static.cache_info() is not None


def test_evaluated_expressions_are_metered_by_their_terms():
    """Each distinct expression of 3 symbols or more that torch evaluates counts its terms once
    (at most 4096); past MAX_EVALUATED_TERMS the ShapeEnv refuses, with a SerializeError that says why."""
    env = _env(BoundedShapeEnv)
    a, b, c = SYMS[:3]
    for _ in range(3):  # the same expression again (a program run again) is not counted again
        assert env.evaluate_expr(sympy.Ge(a * b * c, a)) == sympy.true
    assert env.evaluated_terms == 8 + 2
    env.evaluate_expr(sympy.Ge(a * b, a))  # fewer than 3 symbols (an MoE's fresh ``u80 >= 0``): not counted
    assert env.evaluated_terms == 10
    per = sympy.Mul(*SYMS)  # 2**24 terms: counted 4096
    with pytest.raises(SerializeError, match=rf"distinct expressions of more than {MAX_EVALUATED_TERMS} "
                                             r"terms in all .* stored sizes may understate"):
        for k in range(MAX_EVALUATED_TERMS // 4096 + 1):
            env.evaluate_expr(sympy.Eq(per, k + 1000))
    assert env.evaluated_terms <= MAX_EVALUATED_TERMS
    assert env.evaluate_expr(sympy.Ge(a * b * c, a)) == sympy.true  # what it evaluated before it still evaluates


def test_a_loaded_program_keeps_a_bounded_shape_env(tmp_path):
    class M(torch.nn.Module):
        def forward(self, x):
            return (x * 2).sum(0)

    ep = torch.export.export(M(), (torch.ones(4, 3),), dynamic_shapes=({0: torch.export.Dim("n", min=2)},))
    path = tmp_path / "m.pt2"
    pt2serde.save(ep, path)
    loaded = pt2serde.load(path)
    vals = [n.meta["val"] for n in loaded.graph.nodes if n.op == "placeholder"]
    assert type(vals[0].fake_mode.shape_env) is BoundedShapeEnv
    x = torch.randn(7, 3)
    torch.testing.assert_close(loaded.run_decompositions().module()(x), M()(x))


@pytest.mark.parametrize("method", ["_maybe_evaluate_static", "size_hint", "evaluate_expr"])
def test_the_methods_bounded_are_torchs(method):
    """The bound overrides these by name: a torch that renamed them would lose it silently."""
    assert callable(getattr(ShapeEnv, method))
    assert getattr(BoundedShapeEnv, method) is not getattr(ShapeEnv, method)
