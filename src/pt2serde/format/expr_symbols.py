"""Which ``Symbol`` assumptions the expression grammar (:mod:`pt2serde.format.expr_rules`) accepts, torch-free."""

from __future__ import annotations

__all__ = ["SYMBOL_ASSUMPTIONS", "consistent_assumptions"]

#: The boolean assumptions a ``Symbol`` may carry: PyTorch writes ``integer``, ``positive``
#: and ``real``; these are the facts about a number's kind and sign that sympy derives them
#: from. Any other (``commutative``, ``prime``, ``polar`` ...) is refused.
SYMBOL_ASSUMPTIONS = (
    "integer", "rational", "real", "finite", "positive", "negative", "nonnegative", "nonpositive",
    "nonzero", "zero", "even", "odd",
)  # fmt: skip
# sympy refuses a Symbol whose assumptions contradict each other (InconsistentAssumptions).
# A set of assumptions is consistent when some number satisfies them all: one of these
# witnesses, which between them take every combination of the facts above that sympy allows
# (bits in the order of SYMBOL_ASSUMPTIONS; tests/bridge/test_exprparse.py checks every set of up
# to four facts against sympy).
_WITNESSES = {
    "-3": "111101011001", "-2": "111101011010", "-1/2": "011101011000", "-sqrt(2)": "001101011000",
    "0": "111100110110", "1/2": "011110101000", "sqrt(2)": "001110101000", "2": "111110101010",
    "3": "111110101001", "I": "000100000000", "oo": "000000000000",
}  # fmt: skip
_WITNESS_FACTS = [{key: bit == "1" for key, bit in zip(SYMBOL_ASSUMPTIONS, bits)} for bits in _WITNESSES.values()]


def consistent_assumptions(facts: dict[str, bool]) -> bool:
    """Whether sympy accepts a ``Symbol`` with these assumptions (some number satisfies them)."""
    return any(all(w[k] == v for k, v in facts.items()) for w in _WITNESS_FACTS)
