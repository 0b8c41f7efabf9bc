"""Values of symbolic expressions at their hints (``pt2serde.format.expr_hints``): the same values
sympy and torch's functions compute, bounded work, and the failures torch would raise.

The hostile files these rules refuse (through every entry point, load and validate agreeing) are
the "values at the hints" cases of ``tests/hostile/cases_expressions.py``.
"""

from __future__ import annotations

import time
from fractions import Fraction

import pytest
import sympy

from pt2serde.bridge.expr import ExprParser
from pt2serde.format import expr
from pt2serde.format.expr_hints import HintError, value_at

S0, S1 = "Symbol('s0', positive=True, integer=True)", "Symbol('s1', positive=True, integer=True)"
HINTS = {"s0": 6, "s1": 4}

#: expressions whose value at HINTS sympy (with torch's functions) can compute
EXPRESSIONS = [
    f"Add({S0}, Mul(Integer(3), {S1}), Integer(-7))",
    f"Mul({S0}, {S1}, Rational(1, 2))",
    f"Pow({S0}, Integer(3))",
    f"Pow(Integer(2), {S1})",
    f"FloorDiv({S0}, {S1})",
    f"FloorDiv(Mul(Integer(-1), {S0}), {S1})",
    f"CeilDiv({S0}, {S1})",
    f"CleanDiv(Mul(Integer(2), {S0}), {S1})",
    f"Mod({S0}, {S1})",
    f"PythonMod({S0}, {S1})",
    f"ModularIndexing({S0}, Integer(2), {S1})",
    f"Max({S0}, {S1}, Integer(5))",
    f"Min({S0}, Add({S1}, Integer(1)))",
    f"PowByNatural({S1}, {S0})",
    f"LShift({S0}, {S1})",
    f"RShift(Mul(Integer(1000), {S0}), {S1})",
    f"TruncToInt(IntTrueDiv({S0}, {S1}))",
    f"Piecewise(ExprCondPair({S0}, StrictLessThan({S1}, Integer(3))), ExprCondPair({S1}, true))",
    f"Abs(Add({S1}, Mul(Integer(-1), {S0})))",
    f"BitwiseFn_bitwise_xor({S0}, {S1})",
]


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_values_at_the_hints_are_sympys(text):
    tree = expr.parse(text)
    parser = ExprParser()
    sym = parser.parse(text)
    expected = sym.xreplace({s: sympy.Integer(HINTS[s.name]) for s in sym.free_symbols})
    got = value_at(tree, HINTS)
    assert got == Fraction(int(expected.p), int(expected.q)), (text, got, expected)


@pytest.mark.parametrize("text,message", [
    (f"FloorDiv({S0}, Add({S1}, Integer(-4)))", "divides by zero"),
    (f"ModularIndexing({S0}, Add({S1}, Integer(-4)), Integer(3))", "divides by zero"),
    (f"PowByNatural({S0}, Add({S1}, Integer(-5)))", "negative exponent"),
    (f"LShift({S0}, Add({S1}, Integer(-5)))", "LShift by a negative amount"),
    (f"TruncToInt(OpaqueUnaryFn_sqrt(ToFloat(Add({S1}, Integer(-5)))))", "sqrt fails"),
    (f"Pow(Integer(7), Mul({S0}, {S0}, {S0}, {S0}, {S0}, {S0}))", r"Pow with the exponent 46656 at the hints"),
    (f"Pow(Integer(7), Mul({S0}, {S0}, {S0}, {S0}, {S0}))", "more than 4300 digits"),
    (f"Pow(Integer(2), Mul(Float('1.0'), {S0}, {S0}, {S0}, {S0}, {S0}, {S0}))", r"Pow with the exponent 46656\.0"),
    (f"Pow(Integer(2), Min({S0}, int_oo))", "symbolic exponent whose value at the hints is not known"),
    (f"Pow(Integer(2), RoundDecimal({S0}, Integer(1)))", "symbolic exponent whose value at the hints is not known"),
    (f"Mod({S0}, Mul(Integer(-1), {S1}))", "Mod of a negative value"),
    # torch hands PowByNatural of a non-integer base to sympy's Pow, which computes it exactly
    (f"PowByNatural(Rational(3, 2), Mul({S0}, {S0}, {S0}, {S0}, {S0}, {S0}))", "PowByNatural with the exponent 46656"),
    (f"PowByNatural(Rational(1, 2), Mul({S0}, {S0}, {S0}, {S0}, {S0}, {S0}))", "PowByNatural with the exponent 46656"),
    (f"PowByNatural(Integer(3), Min({S0}, int_oo))", "PowByNatural with a symbolic exponent whose value"),
    (f"TruncToInt(Pow(Integer(10), Mul(Integer(5), {S0}, {S0}, {S0})))", "past the floats"),
])
def test_what_torch_would_raise_is_a_hint_error(text, message):
    with pytest.raises(HintError, match=message):
        value_at(expr.parse(text), HINTS)


def test_huge_hints_cost_nothing():
    """2**(10**15) and its kin are refused from the sizes of their operands, never computed."""
    start = time.process_time()
    for text in (f"Pow(Integer(2), {S0})", f"Mul({S1}, Pow(Integer(3), {S0}))", f"Mod(Pow(Integer(2), {S0}), Integer(7))"):
        with pytest.raises(HintError, match="Pow with the exponent 1000000000000000 at the hints"):
            value_at(expr.parse(text), {"s0": 10**15, "s1": 4})
    assert value_at(expr.parse(f"PowByNatural(Integer(3), {S0})"), {"s0": 10**15}).text == "int_oo"
    assert value_at(expr.parse(f"PowByNatural(Integer(1), {S0})"), {"s0": 10**15}) == 1
    assert value_at(expr.parse(f"PowByNatural(Rational(3, 2), {S0})"), {"s0": 3}) == Fraction(27, 8)
    assert value_at(expr.parse(f"LShift(Integer(1), {S0})"), {"s0": 10**15}).text == "int_oo"
    assert value_at(expr.parse(f"RShift(Integer(1000), {S0})"), {"s0": 10**15}) == 0
    assert time.process_time() - start < 0.5


def test_values_without_every_hint_are_unknown():
    assert value_at(expr.parse(f"FloorDiv({S0}, {S1})"), {"s0": 6}) is None
    assert value_at(expr.parse("Symbol('u0', integer=True)"), HINTS) is None
    assert value_at(expr.parse(f"floor(Max({S0}, Float('1e309')))"), HINTS) is None  # sympy keeps the Float


def test_torchs_own_arithmetic():
    """Where torch's functions differ from Python's: CeilDiv is FloorDiv(a + b - 1, b); a shift
    past the word is int_oo (RShift then 0, LShift of 0 nan); FloorDiv of non-integers stays
    unevaluated, and torch then fails taking the hint (refused here)."""
    v = lambda text, **h: value_at(expr.parse(text), {**HINTS, **h})  # noqa: E731
    assert v(f"CeilDiv({S0}, Mul(Integer(-1), {S1}))", s1=5) == 0  # floor((6 - 5 - 1) / -5), not ceil(6 / -5)
    assert v(f"RShift(Mul(Integer(-3), {S0}), {S1})", s1=100) == 0
    assert v(f"LShift(Integer(0), {S1})", s1=100).text == "nan"
    with pytest.raises(HintError, match="FloorDiv of a value that is not an integer at the hints"):
        v(f"FloorDiv(Rational(1, 2), {S0})")


_RATIONALS = [Fraction(n) for n in (0, 1, 7, -3, 2, -1, 6, -4)] + \
    [Fraction(7, 2), Fraction(1, 3), Fraction(-5, 2), Fraction(3, 2), Fraction(5, 3), Fraction(-1, 2)]


def _scaled(value: Fraction, symbol: str) -> str:
    """``value`` at the hints (every symbol 1): ``Mul(Rational(value), symbol)``."""
    return f"Mul(Rational({value.numerator}, {value.denominator}), {symbol})"


def _torch_number(result) -> Fraction | None:
    return Fraction(str(result)) if isinstance(result, sympy.Number) else None


@pytest.mark.parametrize("name", ["FloorDiv", "CleanDiv", "CeilDiv"])
def test_integer_divisions_of_rationals_against_torch(name):
    """At the hints torch evaluates its function on the numbers sympy substitutes: where that
    leaves it unevaluated (a non-integer operand; the hint then fails), the rule refuses; where
    it is a number, the rule computes the same. CeilDiv becomes CleanDiv or FloorDiv when
    parsed, by a gcd of its symbolic arguments: any non-integer operand is refused."""
    import torch.utils._sympy.functions as F

    ones = {"s0": 1, "s1": 1}
    for a in _RATIONALS:
        for b in _RATIONALS:
            if b == 0:
                continue
            text = f"{name}({_scaled(a, S0)}, {_scaled(b, S1)})"
            want = _torch_number(getattr(F, name)(sympy.Rational(a.numerator, a.denominator),
                                                  sympy.Rational(b.numerator, b.denominator)))
            integers = a.denominator == b.denominator == 1
            if want is None or (name == "CeilDiv" and not integers):
                with pytest.raises(HintError, match="not an integer at the hints"):
                    value_at(expr.parse(text), ones)
            else:
                assert value_at(expr.parse(text), ones) == want, text


def test_modular_indexing_of_rationals_against_torch():
    """torch's ModularIndexing divides a rational ``x`` and ``d`` by their gcd first, so it is a
    number more often than FloorDiv: exactly where the rule computes one, and the same."""
    from torch.utils._sympy.functions import ModularIndexing

    ones = {"s0": 1, "s1": 1, "s2": 1}
    s2 = "Symbol('s2', positive=True, integer=True)"
    for x in _RATIONALS:
        for d in _RATIONALS:
            for m in _RATIONALS[1:]:
                if d == 0:
                    continue
                text = f"ModularIndexing({_scaled(x, S0)}, {_scaled(d, S1)}, {_scaled(m, s2)})"
                want = _torch_number(ModularIndexing(*(sympy.Rational(v.numerator, v.denominator) for v in (x, d, m))))
                if want is None:
                    with pytest.raises(HintError, match="ModularIndexing of values that are not integers"):
                        value_at(expr.parse(text), ones)
                else:
                    assert value_at(expr.parse(text), ones) == want, text


def test_roots_at_the_hints_are_bounded():
    """sympy takes a root of a number by factoring it: a hint under a root is held to the
    grammar's bound on a number's own root (MAX_POW_ROOT, MAX_ROOT_BASE_BITS); an allowed root
    is not computed here (unknown)."""
    root = lambda q, hint: value_at(expr.parse(f"Pow({S0}, Rational(1, {q}))"), {"s0": hint})  # noqa: E731
    assert root(3, 2 ** 62) is None
    assert root(8, 10) is None
    with pytest.raises(HintError, match=r"takes the root 1/3 of a 1329-bit number"):
        root(3, 10 ** 400)
    with pytest.raises(HintError, match=r"takes the root 1/16 of a 4-bit number"):
        root(16, 10)
    start = time.process_time()
    with pytest.raises(HintError):
        value_at(expr.parse(f"Pow({S0}, Rational(7, 3))"), {"s0": 10 ** 4000})
    assert time.process_time() - start < 0.5


def test_symbolic_function_nodes_are_bounded_whatever_the_stored_sizes():
    """run_decompositions() computes every symbolic-function node on the hints in Python: the
    bits a node can reach are bounded from int64 sizes (a stored size may understate the one
    a retrace computes), and its value at the hints is computed as Python does."""
    from pt2serde.format.expr_hints import MAX_NUMBER_BITS, _bits_bound, _sym_call

    size = 64
    assert _bits_bound("_operator.mul", [size, size], [None, None]) == 128
    assert _bits_bound("_operator.pow", [size, 2], [None, 2]) == 128  # size ** 2: the literal, not its bits
    assert _bits_bound("_operator.pow", [2, size], [2, None]) > MAX_NUMBER_BITS  # 2 ** size
    assert _bits_bound("_operator.pow", [1, size], [1, None]) == 1  # 1 ** size
    assert _bits_bound("_operator.lshift", [1, size], [1, None]) > MAX_NUMBER_BITS  # 1 << size
    assert _bits_bound("_operator.lshift", [size, 3], [None, 3]) == size + 3
    assert _bits_bound("_operator.floordiv", [size, 3], [None, 3]) <= size + 1
    assert _bits_bound("_operator.lt", [size, size], [None, None]) == 1
    assert _bits_bound("_operator.truediv", [size, size], [None, None]) == 0  # a float
    assert _sym_call("_operator.pow", [6, 3]) == 216
    assert _sym_call("_operator.truediv", [6, 4]) == 1.5
    for target, args, message in (("_operator.floordiv", [8, 0], "divides by zero"),
                                  ("_operator.mod", [8, 0], "divides by zero"),
                                  ("_operator.pow", [10.0, 1000.0], "past the floats"),
                                  ("_operator.lshift", [1, -1], "negative amount"),
                                  ("_operator.pow", [3, 10 ** 6], "to the power 1000000")):
        with pytest.raises(HintError, match=message):
            _sym_call(target, args)
