"""The ``ShapeEnv`` a loaded program's symbolic values live in: torch's, with its sympy work bounded.

A loaded program keeps its ``ShapeEnv`` for life: ``run_decompositions()`` (and any other retrace
of the program) runs torch's meta functions on the program's fake inputs, in that ``ShapeEnv``,
and recomputes every intermediate tensor's sizes and strides. Comparing two strides asks
``ShapeEnv._maybe_evaluate_static``, which shifts each symbol onto ``s' + lower - 1`` and expands
the products: a stride of ``k`` symbolic sizes becomes ``2**k`` terms, at about 0.25 ms a term.

Load charges every size tuple the file stores (:meth:`pt2serde.format.expr.ExprBudget.charge_sizes`),
but the retrace computes sizes the file never states: an op's stored output sizes can understate
what the op computes (nothing checks them against the op), and decompositions broadcast inputs
into tensors no node stores. Such a file made ``run_decompositions`` take 140 s (four inputs of
six symbolic sizes each, added together under stored sizes of six).

:class:`BoundedShapeEnv` bounds both costs torch's retrace can be made to pay:

* it refuses to evaluate statically any expression whose expansion would exceed
  :data:`MAX_EXPANSION_TERMS` terms (the exponential cost);
* it meters the distinct expressions torch evaluates in it by their terms
  (:data:`MAX_EVALUATED_TERMS`), and past the meter raises ``SerializeError``: the retrace
  builds and compares expressions over every size it recomputes, so understated sizes of many
  dimensions cost it seconds per node (48 adds over 48 symbolic sizes: 22 s; now refused
  within about 2 s).

On the first, torch does what it does for any expression it
cannot decide statically: it decides from the symbols' hints and records a guard; an assertion
on unbacked symbols becomes a runtime assert, and a decision that needs their values raises
torch's data-dependent error. Real programs stay below the bound: the most any of
``bench/models.py``'s dynamic programs asks for is 32 terms (BERT, Llama, T5, the MoE), and with
a bound of 4 BERT's and Llama's decomposed programs still compute the same outputs.
"""

from __future__ import annotations

from functools import lru_cache

import sympy
from torch.fx.experimental.symbolic_shapes import ShapeEnv

from ..errors import SerializeError

__all__ = ["BoundedShapeEnv", "MAX_EXPANSION_TERMS", "MAX_EVALUATED_TERMS", "expansion_terms"]

#: The most terms an expression torch evaluates statically may expand into: a comparison of two
#: products of five shifted symbols (32 + 32 terms, about 15 ms of sympy). Beyond it torch decides
#: from hints instead.
MAX_EXPANSION_TERMS = 64

#: The most symbolic work torch may ask of a loaded program's ShapeEnv, in all, for as long as the
#: program lives: each distinct expression of 3 symbols or more that it evaluates (a guard, a size
#: comparison) counts the terms it expands into (:func:`expansion_terms`, at most
#: ``_METERED_MOST``), once. The retrace of ``run_decompositions`` builds and evaluates
#: expressions over the sizes it recomputes, which stored sizes can understate (48 adds over 48
#: symbolic sizes: 22 s; 12 over 24: 408k terms in 2 s). Real programs count at most 4474 (a split
#: into 64 pieces by ``tolist()``, its sums of 64 symbols; bench's dynamic programs none), and no
#: more when run again.
MAX_EVALUATED_TERMS = 1 << 16
#: expressions of fewer symbols are not metered: each costs little, and the unbacked symbols a
#: retrace creates afresh (an MoE's token counts, ``u80 >= 0``) make new ones at every retrace
_METERED_FROM = 3
_METERED_MOST = 4096

_CAP = 1 << 62


@lru_cache(maxsize=4096)
def expansion_terms(expr: sympy.Basic) -> int:
    """The most terms any part of ``expr`` expands into once every symbol is shifted
    (``s -> s' + c``: two terms), functions are reduced to an argument and products of sums are
    multiplied out, as ``ShapeEnv._maybe_evaluate_static`` does. An upper bound, computed without
    expanding (one walk over the distinct subexpressions, no recursion)."""
    memo: dict[sympy.Basic, int] = {}
    worst = 1
    stack: list[tuple[sympy.Basic, bool]] = [(expr, False)]
    while stack:
        e, ready = stack.pop()
        if e in memo:
            continue
        if not ready:
            stack.append((e, True))
            stack.extend((a, False) for a in e.args if a not in memo)
            continue
        if e.is_Symbol:
            n = 2
        elif not e.args:
            n = 1
        elif e.is_Add or e.is_Relational:  # a relation is expanded as one side minus the other
            n = min(sum(memo[a] for a in e.args), _CAP)
        elif e.is_Mul:
            n = 1
            for a in e.args:
                n = min(n * memo[a], _CAP)
        elif e.is_Pow and e.exp.is_Integer and e.exp > 0:
            base = memo[e.base]
            n = _CAP if base > 1 and int(e.exp) >= 62 else min(base ** int(e.exp), _CAP)
        else:  # a function (Max, FloorDiv, ...): as many terms as its largest argument, as torch may
            n = max(memo[a] for a in e.args)  # reduce it to one (Max(1, u) is u for u >= 1)
        memo[e] = n
        worst = max(worst, n)
    return worst


@lru_cache(maxsize=4096)
def _metered_terms(expr: sympy.Basic) -> int:
    """What the meter counts for ``expr``: its terms, at most ``_METERED_MOST``, or 0 for fewer
    than ``_METERED_FROM`` symbols (memoized: torch evaluates the same expressions again and again)."""
    if len(expr.free_symbols) < _METERED_FROM:
        return 0
    return min(expansion_terms(expr), _METERED_MOST)


_evaluate_static = ShapeEnv._maybe_evaluate_static


class BoundedShapeEnv(ShapeEnv):
    """``ShapeEnv`` whose static evaluation refuses expressions that expand into more than
    :data:`MAX_EXPANSION_TERMS` terms, and that evaluates distinct expressions of at most
    :data:`MAX_EVALUATED_TERMS` terms in all (see the module's text)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.evaluated: set = set()  # distinct expressions evaluated, each counted once
        self.evaluated_terms = 0

    def evaluate_expr(self, orig_expr, *args, **kwargs):  # type: ignore[override]
        if orig_expr not in self.evaluated and isinstance(orig_expr, sympy.Basic):
            terms = _metered_terms(orig_expr)
            if terms:
                if self.evaluated_terms + terms > MAX_EVALUATED_TERMS:
                    raise SerializeError(
                        f"symbolic shapes: torch asked this program's ShapeEnv to evaluate distinct expressions "
                        f"of more than {MAX_EVALUATED_TERMS} terms in all (real programs: a few thousand at "
                        f"most); its stored sizes may understate what its ops compute")
                self.evaluated_terms += terms
                self.evaluated.add(orig_expr)
        return super().evaluate_expr(orig_expr, *args, **kwargs)

    def _maybe_evaluate_static(self, expr, *args, **kwargs):  # type: ignore[override]
        if isinstance(expr, sympy.Basic) and expansion_terms(expr) > MAX_EXPANSION_TERMS:
            # "not decidable statically": torch decides from the hints. Asked only to eliminate
            # unbacked symbols, torch expects an expression back: the same one, unsimplified
            return expr if kwargs.get("unbacked_only") else None
        return _evaluate_static(self, expr, *args, **kwargs)

    # torch clears the evaluation cache through the method (``self._maybe_evaluate_static.cache_clear()``)
    _maybe_evaluate_static.cache_clear = _evaluate_static.cache_clear  # type: ignore[attr-defined]
    _maybe_evaluate_static.cache_info = _evaluate_static.cache_info  # type: ignore[attr-defined]

    def size_hint(self, expr, *args, **kwargs):  # type: ignore[override]
        # torch expands the expression before substituting the hints; a large one is evaluated
        # by substituting directly (the same number)
        if isinstance(expr, sympy.Basic) and expansion_terms(expr) > MAX_EXPANSION_TERMS:
            value = expr.xreplace(self.backed_var_to_val)
            if value.is_number:
                return value
        return super().size_hint(expr, *args, **kwargs)
