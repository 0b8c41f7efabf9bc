"""The exact values of numbers-only expressions, for the call rules (:mod:`pt2serde.format.expr_rules`), torch-free.

sympy evaluates arithmetic on numbers while it builds: ``Add(Integer(1), Integer(-1))`` is
``0``, ``Mul(Integer(1000), Integer(1000))`` is ``1000000``. A rule that reads only literals
(a divisor of zero, a negative shift, the size of an exponent) would let such a value past
``validate`` that sympy or torch then refuses (or computes without bound) in ``load``. So
each value of the grammar carries its exact rational value where sympy would know it
(:func:`call_value`, bottom-up), ``None`` elsewhere (symbols, floats, irrational roots,
infinities), and the rules decide on values. Every value computed here is bounded by the
grammar's number budget (``max_bits``), checked after each step, so the work is too.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable

__all__ = ["Value", "NumberTooBig", "call_value", "too_big", "magnitude_bound"]

#: An exact rational value, or ``None`` when sympy would not reduce the value to one.
Value = Fraction | None


def too_big(value: Fraction, max_bits: int) -> bool:
    """Whether numerator or denominator of ``value`` has more than ``max_bits`` bits."""
    return value.numerator.bit_length() > max_bits or value.denominator.bit_length() > max_bits


def _fold(step: Callable[[Fraction, Fraction], Fraction]) -> Callable[[list[Fraction], int], Fraction | None]:
    def fold(values: list[Fraction], max_bits: int) -> Fraction | None:
        total = values[0]
        for value in values[1:]:
            total = step(total, value)
            if too_big(total, max_bits):
                return None
        return total

    return fold


#: How sympy reduces each call of numbers only (``None`` from a fold: past the number budget).
_REDUCE: dict[str, Callable[[list[Fraction], int], Fraction | None]] = {
    "Add": _fold(lambda a, b: a + b),
    "Mul": _fold(lambda a, b: a * b),
    "Max": lambda values, _: max(values),
    "Min": lambda values, _: min(values),
    "Abs": lambda values, _: abs(values[0]),
    "floor": lambda values, _: Fraction(math.floor(values[0])),
    "ceiling": lambda values, _: Fraction(math.ceil(values[0])),
}


class NumberTooBig(ValueError):
    """A value of numbers only past the number budget."""


def call_value(name: str, values: list[Value], max_bits: int) -> Value:
    """The exact value of the call ``name`` of arguments of these values; ``None`` when
    unknown. ``Mul`` with a zero factor is zero whatever the others (as in sympy, which
    makes ``0*x`` zero). Raises :class:`NumberTooBig` past ``max_bits``."""
    if name == "Mul" and any(v == 0 for v in values if v is not None):
        return Fraction(0)
    reduce = _REDUCE.get(name)
    if reduce is None or not values or any(v is None for v in values):
        return None
    result = reduce(values, max_bits)  # type: ignore[arg-type]
    if result is None:
        raise NumberTooBig(name)
    return result


def magnitude_bound(value: Value, float_text: str | None, bits: int) -> float:
    """An upper bound of the magnitude of a numbers-only value: exact where known, a float
    literal's own value, else ``2**bits`` (the number budget's bound); ``inf`` past floats."""
    if value is not None:
        return float(abs(value)) if value.numerator.bit_length() - value.denominator.bit_length() < 1000 else math.inf
    if float_text is not None:
        try:
            return abs(float(float_text))
        except (ValueError, OverflowError):
            return math.inf
    return math.inf if bits > 1000 else 2.0**bits
