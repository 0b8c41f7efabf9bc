"""The call rules of the expression grammar (:mod:`pt2serde.format.expr`), torch-free.

Every acceptance decision about a call is made here, once, for ``validate`` and ``load``
alike: the allowlist of names (:data:`CALLS`, :data:`ATOMS`), the argument count and form of
each call, literal forms, ``Symbol`` assumptions, and the work budgets below.
:func:`finish_call` checks a finished call and returns its node and bounds.

**Budgets** (checked before sympy sees anything). sympy evaluates while it builds: a
product of sums may be expanded, ``Mod``/``FloorDiv`` take polynomial gcds, the assumption
system factors, and a size hint is substituted into every size. Each expression value
carries four bounds, computed bottom-up from the tree:

* *nodes* (values in the tree): at most :data:`MAX_NODES`;
* *degree* (polynomial degree; ``Symbol`` and any non-arithmetic call over symbols count
  1, ``Add`` takes the max, ``Mul`` the sum, ``Pow`` multiplies): at most
  :data:`MAX_DEGREE`. With 64-bit symbol values that keeps every substituted size below
  CPython's 4300-digit integer limit;
* *terms* (monomials after full expansion: ``Add`` sums, ``Mul`` multiplies,
  ``Pow(b, n)`` gives ``C(t + n - 1, n)``): at most :data:`MAX_TERMS`, and at most
  :data:`MAX_PRODUCT_TERMS` made by one product of sums or power of a sum;
* *bits* (size of the numbers sympy may compute: ``Mul`` adds bits, ``Pow`` multiplies
  them, ``LShift`` adds its shift): at most :data:`MAX_NUMBER_BITS` (4300 digits).

Besides, a ``Pow`` (``PowByNatural``, ``FloatPow``) of a symbolic base takes an integer
exponent of at most :data:`MAX_EXPONENT` in magnitude, numbers inside a symbolic exponent
are bounded the same way, and the lattice/logic calls whose evaluation is quadratic in
their arity (``Max``, ``Min``, ``And``, ``Or``, ``Piecewise``) take a bounded number of
arguments (``Max``/``Min`` counted after sympy merges nested ones: :data:`MAX_LATTICE`).
See ``tests/bridge/test_exprparse.py::test_budget_costs`` for the measurements behind the numbers.

**The document's budget.** Each expression's :func:`pt2serde.format.expr.work` is charged to the
:class:`pt2serde.format.expr.ExprBudget` of its document (at most :data:`MAX_DOCUMENT_WORK` for all its distinct
expressions together), shared by ``validate`` and ``load``.

**Rules sympy and torch would enforce by raising**, checked here so that ``validate`` refuses
what ``load`` refuses: ``Symbol`` assumptions from a fixed set, consistent with each other
(:func:`consistent_assumptions`); conditions (relations, ``And``...) never used as numbers nor
numbers as conditions; no ``nan``/``zoo`` argument (nor ``Rational(p, 0)``, ``0**-n``, ``0*oo``);
no division by zero; torch's functions never of numbers only nor of an infinity. Numbers-only
subtrees are decided on their exact values (:mod:`pt2serde.format.expr_values`), exponents too.

"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import NamedTuple

from ..errors import SerializeError
from .expr_symbols import SYMBOL_ASSUMPTIONS, consistent_assumptions
from .expr_values import NumberTooBig, call_value, magnitude_bound

__all__ = [
    "CALLS", "ATOMS", "LITERALS", "NEGATABLE", "SYMPY_CALLS", "TORCH_FUNCTIONS", "TORCH_ATOMS", "Spec",
    "SYMBOL_ASSUMPTIONS", "consistent_assumptions", "Node", "kind_of", "expr_error", "int_bounds",
    "LEAF_BOUNDS", "PartialCall", "finish_call", "check_root",
    "MAX_CHARS", "MAX_DEPTH", "MAX_NODES", "MAX_DEGREE", "MAX_TERMS", "MAX_EXPONENT", "MAX_LATTICE",
    "MAX_LATTICE_TOTAL", "MAX_LATTICE_TERMS", "MAX_PRODUCT_TERMS",
    "MAX_INT_DIGITS", "MAX_NUMBER_BITS", "MAX_DOCUMENT_WORK", "PLAIN_PER_NODE", "PLAIN_MAX_WORK", "PLAIN_MAX_BITS", "plain",
    "LINEAR_DIVISOR", "LINEAR_MIN_WORK", "LINEAR_ORDER_DIVISOR", "LINEAR_ORDER_WORK", "linear",
    "SIZE_FREE_TERMS", "SIZE_TERM_WORK",
]

#: Longest expression text, in characters.
MAX_CHARS = 1_000_000
#: Deepest nesting of calls.
MAX_DEPTH = 200
#: Most values (calls, literals, atoms) in one expression.
MAX_NODES = 10_000
#: Highest polynomial degree of an expression (see the module docstring).
MAX_DEGREE = 64
#: Most monomials an expression can expand to, and most made by multiplying sums (a
#: product of sums, or a power of one), which sympy expands inside ``Mod``/``FloorDiv``/``Max``.
MAX_TERMS = 256
MAX_PRODUCT_TERMS = 64
#: Most arguments of a ``Max`` / ``Min`` once nested ones are merged (as sympy merges them):
#: sympy compares every pair, each comparison an assumption query.
MAX_LATTICE = 4
#: Most arguments of all the ``Max`` / ``Min`` calls of one expression together: sympy's
#: comparisons of nested ``Max``/``Min`` grow faster than their count.
MAX_LATTICE_TOTAL = 16
#: Most terms of the arguments of all ``Max`` / ``Min`` calls of one expression together.
MAX_LATTICE_TERMS = 64
#: Largest integer exponent of a symbolic base, and largest number inside a symbolic exponent.
MAX_EXPONENT = 64
#: CPython's default limit on the digits of an ``int`` converted from or to text. Integer
#: literals, and every number sympy may build, have at most this many digits.
MAX_INT_DIGITS = 4300
#: The same bound in bits (``2**MAX_NUMBER_BITS < 10**MAX_INT_DIGITS``).
MAX_NUMBER_BITS = int(MAX_INT_DIGITS * math.log2(10))
#: Most work units (:func:`pt2serde.format.expr.work`) the distinct expressions of one document
#: may need together (:class:`pt2serde.format.expr.ExprBudget`), beyond its plain allowance:
#: about 0.9 s of sympy (cold) at the costliest measured rate on the 2-core dev box, so that a
#: slow spell (a CI run once took 1.8x as long) stays within the 2 s a step may take.
MAX_DOCUMENT_WORK = 1500
#: Plain expressions (:func:`plain`) a document may hold beyond :data:`MAX_DOCUMENT_WORK`, per
#: node of its graphs. Data-dependent programs make a few per node: an MoE layer's routing
#: makes ``u0``, ``u0 >= 0`` and ``u0 < n`` for every expert, which a fixed budget refused from
#: about 70 experts on (29 units each). Each costs sympy up to about 1.2 ms (measured on the
#: dev box: ``Eq(s0, 5)``; 0.07 ms a symbol), an asserted comparison of fresh symbols ~2.7 ms
#: with the two nodes it needs: the allowance adds work linear in the graph, ~2.4 ms a node at most.
PLAIN_PER_NODE = 2
#: Most work units, and bits of its numbers, of an expression counted as plain (with :func:`plain`).
PLAIN_MAX_WORK = 16
PLAIN_MAX_BITS = 64
#: Linear expressions (:func:`linear`: sums of symbols times integers) beyond the plain
#: allowance are charged their work units divided by this. Measured on the dev box (cold), they
#: cost sympy and torch 0.016-0.037 ms a unit (the most: sums of fresh symbols as tensor sizes),
#: against up to 0.58 ms for the costliest forms: at 16, documents filling the budget with them
#: load in 0.5-0.75 s (``tests/hostile/cases_expressions.py``). Real programs make many: ``torch.split`` by
#: ``tensor.tolist()`` into N pieces offsets piece k by ``u0 + ... + u(k-1)`` (N = 64: 17k units).
LINEAR_DIVISOR = 16
#: The least a linear expression is charged: each distinct one costs 0.4-0.9 ms whatever its
#: length (a SymNode, its symbols registered with the ShapeEnv; measured with fresh symbols).
LINEAR_MIN_WORK = 2
#: An order comparison of linear expressions (``u0 + u1 <= 96``: what ``narrow`` asserts for
#: each slice of a data-dependent split) is charged :data:`LINEAR_ORDER_WORK` plus its units
#: divided by :data:`LINEAR_ORDER_DIVISOR`: asserted, torch's ShapeEnv refines the ranges of its
#: symbols, about 5 ms for a short one over fresh symbols, and 0.06-0.15 ms a unit beyond.
LINEAR_ORDER_DIVISOR = 4
LINEAR_ORDER_WORK = 6
#: A tensor's symbolic sizes multiply (``ExprBudget.charge_sizes``) to this many terms, once every
#: symbol is shifted, for free (real programs: at most 16, four symbolic dimensions); each term
#: beyond costs :data:`SIZE_TERM_WORK` units (measured: 1.3-3 ms a term in ``run_decompositions``).
SIZE_FREE_TERMS = 16
SIZE_TERM_WORK = 4
#: Largest ``precision=`` (bits) of a ``Float``; largest decimal exponent and length of its text.
MAX_FLOAT_PRECISION = 4096
MAX_FLOAT_EXPONENT = 4000
MAX_FLOAT_CHARS = 1400
#: Largest denominator of a rational exponent applied to a number, and the most bits the
#: number's numerator or denominator may have: sympy takes a root by factoring the number
#: (``factorint`` and a ``Pow`` per prime factor), which took 8 s for a 32-bit ``Rational``
#: under ``Rational(-3, 4095)`` and minutes for 128 bits under ``Rational(1, 4096)``; up to 8
#: and 256 bits, at most 7 ms (fuzzed). A number's own root in a real program is a ``sqrt``.
MAX_POW_ROOT = 8
MAX_ROOT_BASE_BITS = 256
#: A ``Symbol``'s name: an ASCII identifier of at most 64 characters.
SYMBOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

class Spec(NamedTuple):
    """The rules of one call name: argument count, argument form and cost rule."""

    low: int
    high: int
    form: str = "expr"  # expr | symbol | integer | rational | float | const | piecewise | pair | dense
    cost: str = "call"  # call | add | mul | pow | lshift | lattice | number | symbol


def _fn(low: int, high: int = -1, cost: str = "call") -> Spec:
    return Spec(low, low if high == -1 else high, "expr", cost)


_OPAQUE_UNARY = ("sqrt", "cos", "cosh", "sin", "sinh", "tan", "tanh", "asin", "acos", "atan", "exp", "log",
                 "asinh", "log2")
_RELATIONS = ("Equality", "Eq", "Unequality", "Ne", "StrictLessThan", "Lt", "LessThan", "Le",
              "StrictGreaterThan", "Gt", "GreaterThan", "Ge")

#: The allowlist: every name that may be called, with its rules. Names follow sympy's
#: ``srepr`` output and PyTorch's table of ``torch.utils._sympy.functions`` (the bridge maps
#: each name to its class; a test checks the two tables hold the same names).
CALLS: dict[str, Spec] = {
    "Symbol": Spec(1, 1, "symbol", "symbol"),
    "Integer": Spec(1, 1, "integer", "number"),
    "Rational": Spec(2, 2, "rational", "number"),
    "Float": Spec(1, 1, "float", "number"),
    "BooleanTrue": Spec(0, 0, "const", "number"),
    "BooleanFalse": Spec(0, 0, "const", "number"),
    "Add": _fn(1, 100_000, "add"),
    "Mul": _fn(1, 100_000, "mul"),
    "Pow": _fn(2, 2, "pow"),
    "Max": _fn(1, MAX_LATTICE, "lattice"),
    "Min": _fn(1, MAX_LATTICE, "lattice"),
    "Abs": _fn(1),
    "floor": _fn(1),
    "ceiling": _fn(1),
    "Piecewise": Spec(1, 256, "piecewise"),
    "ExprCondPair": Spec(2, 2, "pair"),
    **{name: _fn(2) for name in _RELATIONS},
    "And": _fn(1, 256),
    "Or": _fn(1, 256),
    "Not": _fn(1),
    "FloorDiv": _fn(2),
    "ModularIndexing": _fn(3),
    "Where": _fn(3),
    "PythonMod": _fn(2),
    "Mod": _fn(2),
    "CleanDiv": _fn(2),
    "CeilToInt": _fn(1),
    "FloorToInt": _fn(1),
    "CeilDiv": _fn(2),
    "LShift": _fn(2, 2, "lshift"),
    "RShift": _fn(2),
    "PowByNatural": _fn(2, 2, "pow"),
    "FloatPow": _fn(2, 2, "pow"),
    "FloatTrueDiv": _fn(2),
    "IntTrueDiv": _fn(2),
    "IsNonOverlappingAndDenseIndicator": Spec(2, 512, "dense"),
    "TruncToFloat": _fn(1),
    "TruncToInt": _fn(1),
    "RoundToInt": _fn(1),
    "RoundDecimal": _fn(2),
    "ToFloat": _fn(1),
    "Identity": _fn(1),
    **{f"OpaqueUnaryFn_{name}": _fn(1) for name in _OPAQUE_UNARY},
    **{f"BitwiseFn_bitwise_{name}": _fn(2) for name in ("and", "or", "xor")},
}
#: Bare names srepr writes for singletons; ``-oo`` and ``-int_oo`` take a leading minus.
ATOMS = frozenset({"oo", "zoo", "nan", "true", "false", "int_oo"})
NEGATABLE = frozenset({"oo", "int_oo"})
#: Python literals, allowed as keyword values (``integer=True``) and refused elsewhere.
LITERALS = {"True": "bool", "False": "bool", "None": "none"}
#: Calls whose class is sympy's; every other call is one of torch's functions
#: (``torch.utils._sympy.functions``). Of the atoms, ``int_oo`` is torch's, the rest sympy's.
SYMPY_CALLS = frozenset({
    "Symbol", "Integer", "Rational", "Float", "BooleanTrue", "BooleanFalse", "Add", "Mul", "Pow", "Max", "Min",
    "Abs", "floor", "ceiling", "Piecewise", "ExprCondPair", "And", "Or", "Not", *_RELATIONS})
#: torch's functions: sympy evaluates those of numbers only while PyTorch traces, so a
#: document never holds one, and their ``eval`` raises on many numbers (domain errors,
#: infinities, negative moduli); the grammar refuses them all.
TORCH_FUNCTIONS = frozenset(CALLS) - SYMPY_CALLS
TORCH_ATOMS = frozenset({"int_oo"})
_ASSUMPTION_SET = frozenset(SYMBOL_ASSUMPTIONS)

_DIGITS_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT_TEXT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE](?P<exp>[+-]?[0-9]+))?\Z", re.ASCII)


def expr_error(message: str, offset: int) -> SerializeError:
    """The error for an expression refused at character ``offset``."""
    return SerializeError(f"invalid symbolic expression: {message} at offset {offset}")


# Nodes (tuples, the offset last):
#   ("call", name, args: tuple[node], kwargs: dict[str, node], offset)
#   ("num", text, offset)   an int or float literal    ("str", value, offset)  unescaped
#   ("name", text, offset)  an atom, True, False, None  ("neg", ("name", ...), offset)
Node = tuple

# The bounds of a value: (nodes, degree, terms, bits, merged Max/Min arguments, Max/Min
# arguments in all, terms of Max/Min arguments in all, shifted terms, work below, exact value
# of numbers only or None: :mod:`pt2serde.format.expr_values`); see the module docstring and
# :func:`pt2serde.format.expr.work`.
LEAF_BOUNDS = (1, 0, 1, 0, 1, 0, 0, 1, 0, None)
_SYMBOL_INFO = (1, 1, 1, 0, 1, 0, 0, 2, 0, None)  # a symbol: s = s' + offset, two shifted terms
_WORK_CEILING = 1 << 40  # shifted terms and work saturate here (they only meet caps far below)
_KINDS = {"expr": "an expression", "int": "an integer literal", "float": "a float literal",
          "str": "a string", "bool": "a boolean literal", "none": "None"}


#: equalities are not plain: torch solves an asserted one for a symbol (3-10 ms each, measured)
_PLAIN_CALLS = frozenset({"Symbol", "Integer", "Add", "Mul", *_RELATIONS}) - {"Eq", "Equality"}


def plain(node: Node) -> bool:
    """Whether a checked tree is a symbol, or sums, products and comparisons (no equality) of
    symbols and integers only: what sympy builds and compares in linear time (no function it
    re-evaluates, no power, no lattice, nothing torch solves for a symbol). With
    :data:`PLAIN_MAX_WORK` it picks the expressions :data:`PLAIN_PER_NODE` lets a document hold
    beyond its work budget."""
    return _made_of(node, _PLAIN_CALLS)


def _made_of(node: Node, calls: frozenset) -> bool:
    """Whether a checked tree holds only calls named in ``calls`` (with no keyword arguments but
    ``Symbol``'s assumptions) down to its symbols and integers."""
    if node[0] != "call" or node[1] not in calls:
        return False
    if node[1] in ("Symbol", "Integer"):
        return True
    return not node[3] and all(_made_of(arg, calls) for arg in node[2])


_LINEAR_CALLS = frozenset({"Symbol", "Integer", "Add", "Mul"})
_ORDERS = frozenset({"StrictLessThan", "Lt", "LessThan", "Le", "StrictGreaterThan", "Gt", "GreaterThan", "Ge"})


def linear(node: Node) -> str | None:
    """``"sum"`` when a checked tree is made of symbols, integers, sums and products only (no
    comparison, function, power), ``"order"`` when it is an order comparison (``<``, ``<=``,
    ``>``, ``>=``; no equality) of two such trees, else None. With degree at most 1 (the caller's
    bounds) that is a sum of symbols times integers, which sympy builds and torch bounds in time
    linear in its terms, or a comparison of two."""
    if node[0] != "call":
        return None
    if node[1] in _ORDERS:
        return "order" if not node[3] and all(_made_of(arg, _LINEAR_CALLS) for arg in node[2]) else None
    return "sum" if _made_of(node, _LINEAR_CALLS) else None


def kind_of(node: Node) -> str:
    """``expr``, ``int``, ``float``, ``str``, ``bool`` or ``none``."""
    tag = node[0]
    if tag == "num":
        return "int" if _DIGITS_RE.fullmatch(node[1]) else "float"
    if tag == "str":
        return "str"
    if tag == "name" and node[1] in LITERALS:
        return LITERALS[node[1]]
    return "expr"


def _int_literal(text: str, offset: int) -> int:
    digits = text.lstrip("+-")
    if len(digits) > MAX_INT_DIGITS:
        raise expr_error(f"integer literal with {len(digits)} digits (limit {MAX_INT_DIGITS})", offset)
    if len(digits) > 1 and digits[0] == "0":
        raise expr_error(f"integer literal {text[:40]!r} has leading zeros", offset)
    return int(text)


def int_bounds(text: str, offset: int) -> tuple:
    """The bounds of an integer literal (refused if too long or with leading zeros)."""
    value = _int_literal(text, offset)
    return (1, 0, 1, _bits(value), 1, 0, 0, 1, 0, Fraction(value))


def _float_text(text: str, offset: int) -> int:
    """Check a float's text; its size in bits (for the number budget)."""
    if len(text) > MAX_FLOAT_CHARS:
        raise expr_error(f"float literal of {len(text)} characters (limit {MAX_FLOAT_CHARS})", offset)
    m = _FLOAT_TEXT_RE.match(text)
    if m is None:
        raise expr_error(f"malformed float literal {text[:40]!r}", offset)
    exponent = m.group("exp")
    if exponent is not None and (len(exponent) > 6 or abs(int(exponent)) > MAX_FLOAT_EXPONENT):
        raise expr_error(f"float exponent beyond +-{MAX_FLOAT_EXPONENT}", offset)
    mantissa = text[: m.start("exp") - 1] if exponent is not None else text
    whole = len(mantissa.lstrip("+-").split(".")[0].lstrip("0"))
    return max(1, math.ceil((whole + int(exponent or 0)) * 3.33))


def check_root(node: Node) -> None:
    """Refuse a whole expression that is not one (a literal, a bare ``ExprCondPair``)."""
    if node[0] == "call" and node[1] == "ExprCondPair":
        raise expr_error("ExprCondPair is only allowed inside Piecewise", 0)
    if kind_of(node) != "expr":
        raise expr_error(f"expected an expression, found {_KINDS[kind_of(node)]}", node[-1])


class PartialCall:
    """A call whose arguments are still being read (the parser adds them; :func:`finish_call` checks it)."""

    __slots__ = ("name", "offset", "args", "kwargs", "pending")

    def __init__(self, name: str, offset: int) -> None:
        self.name = name
        self.offset = offset
        self.args: list[tuple[Node, tuple]] = []
        self.kwargs: dict[str, tuple[Node, tuple, int]] = {}
        self.pending: tuple[str, int] | None = None

    def add(self, node: Node, info: tuple) -> None:
        """Add the next argument (a keyword one when :attr:`pending` names it)."""
        if self.pending is not None:
            key, at = self.pending
            self.pending = None
            if key in self.kwargs:
                raise expr_error(f"repeated keyword argument {key!r} to {self.name}", at)
            self.kwargs[key] = (node, info, at)
        elif self.kwargs:
            raise expr_error(f"positional argument after keyword arguments in {self.name}", node[-1])
        else:
            self.args.append((node, info))


def _bits(value: int) -> int:
    """Bits of an integer for the number budget (0, 1 and -1 never grow)."""
    return 0 if -1 <= value <= 1 else abs(value).bit_length()


def finish_call(call: PartialCall) -> tuple[Node, tuple]:
    """Check a finished call against its rules and budgets; its node and bounds."""
    name, offset, args = call.name, call.offset, call.args
    spec = CALLS[name]
    n = len(args)
    if not spec.low <= n <= spec.high:
        if spec.low == spec.high:
            wanted = f"{spec.low} argument{'s' if spec.low != 1 else ''}"
        elif n < spec.low:
            wanted = f"at least {spec.low} argument{'s' if spec.low != 1 else ''}"
        else:
            wanted = f"at most {spec.high} arguments"
        raise expr_error(f"{name} takes {wanted}, got {n}", offset)
    form = spec.form
    if form == "symbol":
        info = _check_symbol(call)
    elif form == "float":
        info = _check_float(call)
    else:
        if call.kwargs:
            key = next(iter(call.kwargs))
            raise expr_error(f"{name} takes no keyword argument {key!r}", call.kwargs[key][0][-1])
        if form in ("integer", "rational"):
            for arg, _ in args:
                if kind_of(arg) != "int":
                    raise expr_error(f"{name} expects {'an integer literal' if form == 'integer' else 'integer literals'}"
                                 f", got {_KINDS[kind_of(arg)]}", arg[-1])
            values = [int(arg[1]) for arg, _ in args]
            if len(values) == 2 and values[1] == 0:  # sympy: Rational(0, 0) is nan, Rational(1, 0) zoo
                raise expr_error("Rational with a zero denominator", args[1][0][-1])
            info = (1, 0, 1, max(map(_bits, values)), 1, 0, 0, 1, 0, Fraction(*values))
        elif form == "piecewise":
            for arg, _ in args:
                if not (arg[0] == "call" and arg[1] == "ExprCondPair"):
                    raise expr_error("Piecewise arguments must be ExprCondPair(expr, cond)", arg[-1])
            info = _cost(call, "call")
        else:
            if form == "dense" and n % 2:
                raise expr_error(f"IsNonOverlappingAndDenseIndicator takes sizes and strides (an even count), "
                             f"got {n} arguments", offset)
            for arg, _ in args:
                kind = kind_of(arg)
                if kind == "expr":
                    if arg[0] == "call" and arg[1] == "ExprCondPair":
                        raise expr_error(f"ExprCondPair is only allowed inside Piecewise, not {name}", arg[-1])
                elif kind == "float":
                    _float_text(arg[1], arg[-1])
                elif kind != "int":
                    raise expr_error(f"{name} expects an expression, got {_KINDS[kind]}", arg[-1])
            _check_kinds(call)
            _check_values(call)
            info = _cost(call, spec.cost)
            _check_torch_function(call)
    kwargs = {key: value[0] for key, value in call.kwargs.items()}
    return ("call", name, tuple(arg for arg, _ in args), kwargs, offset), info


# Value rules sympy/torch would enforce by raising: checked here so validate refuses them too.
_DIVISOR_ARGS = {"FloorDiv": (1,), "Mod": (1,), "PythonMod": (1,), "CleanDiv": (1,), "CeilDiv": (1,),
                 "IntTrueDiv": (1,), "FloatTrueDiv": (1,), "ModularIndexing": (1, 2)}
_FLOAT_CALLS = frozenset({"ToFloat", "IntTrueDiv", "FloatTrueDiv", "FloatPow", "TruncToFloat", "RoundDecimal",
                          *(f"OpaqueUnaryFn_{name}" for name in _OPAQUE_UNARY)})
_MAX_FLOAT_BITS = 1023  # beyond, converting to a float overflows


# Conditions and numbers: sympy refuses a condition where it computes with numbers
# (``Add(x < 3, 1)``, ``Mod(True, 2)``) and a number where it expects a condition (``And(3)``).
_LOGIC = frozenset({"And", "Or", "Not"})
_CONDITION_CALLS = frozenset({"BooleanTrue", "BooleanFalse", *_RELATIONS, *_LOGIC})
_EITHER_CALLS = frozenset({"Equality", "Eq", "Unequality", "Ne"})  # compare conditions too
_NUMBER_NAMES = frozenset({"oo", "zoo", "nan", "int_oo"})


def _is_condition(node: Node) -> bool:
    return (node[0] == "name" and node[1] in ("true", "false")) or (node[0] == "call" and node[1] in _CONDITION_CALLS)


def _is_number(node: Node) -> bool:
    """A value that is surely a number (a symbol or a Piecewise/Where may be either)."""
    if node[0] in ("num", "neg"):
        return True
    if node[0] == "name":
        return node[1] in _NUMBER_NAMES
    return node[0] == "call" and node[1] not in _CONDITION_CALLS and node[1] not in ("Symbol", "Piecewise", "Where")


def _check_kinds(call: PartialCall) -> None:
    name = call.name
    if name in _EITHER_CALLS:
        return
    if name in _LOGIC:
        for arg, _ in call.args:
            if _is_number(arg):
                raise expr_error(f"{name} expects a condition, got a number", arg[-1])
        return
    for index, (arg, _) in enumerate(call.args):
        if name == "ExprCondPair" and index == 1:
            if _is_number(arg):
                raise expr_error("ExprCondPair expects a condition, got a number", arg[-1])
        elif _is_condition(arg) and not (name == "Where" and index == 0):
            raise expr_error(f"{name} expects a number, got a condition", arg[-1])


_UNDEFINED = frozenset({"nan", "zoo"})
_INFINITE = frozenset({"oo", "int_oo"})


def _check_torch_function(call: PartialCall) -> None:
    """After the value rules and budgets (their messages are more precise)."""
    name = call.name
    if name in TORCH_FUNCTIONS:
        if not any(info[1] for _, info in call.args):
            raise expr_error(f"{name} of numbers only (sympy evaluates those: a document never holds one)", call.offset)
        for arg, _ in call.args:
            if (arg[0] == "name" and arg[1] in _INFINITE) or arg[0] == "neg":
                raise expr_error(f"{name} of an infinity", arg[-1])


def _float_literal(node: Node) -> str | None:
    """The text of a float literal (``1.5``, ``Float('1.5')``, ``Float(2)``), else None."""
    if node[0] == "num":
        return node[1] if kind_of(node) == "float" else None
    if node[0] == "call" and node[1] == "Float" and node[2][0][0] in ("num", "str"):
        return node[2][0][1]
    return None


def _sign(node: Node, info: tuple) -> float | None:
    """The value of a numbers-only argument where known (exact, or a float literal's)."""
    if info[9] is not None:
        return info[9]
    text = _float_literal(node)
    return None if text is None else float(text)


def _is_zero(node: Node, info: tuple) -> bool:
    return _sign(node, info) == 0


def _check_values(call: PartialCall) -> None:
    name = call.name
    for arg, _ in call.args:
        if arg[0] == "name" and arg[1] in _UNDEFINED:
            raise expr_error(f"{arg[1]} is not allowed as an argument of {name}", arg[-1])
    for index in _DIVISOR_ARGS.get(name, ()):
        if index < len(call.args) and _is_zero(*call.args[index]):
            raise expr_error(f"{name} divides by zero", call.args[index][0][-1])
    if name in ("LShift", "RShift") and not call.args[1][1][1]:
        shift, info = call.args[1]
        value = _sign(shift, info)
        if value is not None and value < 0:
            raise expr_error(f"{name} by a negative count", shift[-1])
        if magnitude_bound(info[9], _float_literal(shift), info[3]) > MAX_NUMBER_BITS:  # torch computes 2**shift
            raise expr_error(f"{name} by more than {MAX_NUMBER_BITS} bits", shift[-1])
    if name == "Mul" and any(_is_zero(*arg) for arg in call.args):
        for arg, _ in call.args:
            if (arg[0] == "name" and arg[1] in _INFINITE) or arg[0] == "neg":
                raise expr_error("Mul of zero and an infinity (sympy makes nan of it)", arg[-1])
    if name == "Pow" and _is_zero(*call.args[0]):
        exponent = _sign(*call.args[1])
        if exponent is not None and exponent < 0:
            raise expr_error("Pow of zero to a negative power (sympy makes zoo of it)", call.args[1][0][-1])
    if name in _FLOAT_CALLS:
        for arg, info in call.args:
            if info[3] > _MAX_FLOAT_BITS:
                raise expr_error(f"{name} of a number beyond the range of a float", arg[-1])


def _check_symbol(call: PartialCall) -> tuple:
    arg = call.args[0][0]
    if kind_of(arg) != "str":
        raise expr_error(f"Symbol expects a name string, got {_KINDS[kind_of(arg)]}", arg[-1])
    if not SYMBOL_NAME.fullmatch(arg[1]):
        # torch's symbols are s0, u1, zf2...; a name like "s6 + s77" or "5" is what torch's
        # loader (and a cache keyed by printed expressions) takes for another expression
        raise expr_error(f"Symbol name {arg[1][:40]!r} is not an identifier of at most 64 characters", arg[-1])
    for key, (value, _, at) in call.kwargs.items():
        if key not in _ASSUMPTION_SET:
            raise expr_error(f"unknown Symbol assumption {key!r}", at)
        if kind_of(value) != "bool":
            raise expr_error(f"Symbol assumption {key!r} must be True or False", value[-1])
    facts = {key: value[0][1] == "True" for key, value in call.kwargs.items()}
    if not consistent_assumptions(facts):
        given = ", ".join(f"{k}={v}" for k, v in facts.items())
        raise expr_error(f"Symbol assumptions {given} contradict each other", call.offset)
    return _SYMBOL_INFO


def _check_float(call: PartialCall) -> tuple:
    for key, (value, _, _at) in call.kwargs.items():
        if key != "precision":
            raise expr_error(f"Float takes no keyword argument {key!r}", value[-1])
        if kind_of(value) != "int":
            raise expr_error(f"Float expects an integer precision, got {_KINDS[kind_of(value)]}", value[-1])
        if not 1 <= int(value[1]) <= MAX_FLOAT_PRECISION:
            raise expr_error(f"Float precision {int(value[1])} outside 1..{MAX_FLOAT_PRECISION}", value[-1])
    arg = call.args[0][0]
    kind = kind_of(arg)
    if kind in ("str", "float"):
        return (1, 0, 1, _float_text(arg[1], arg[-1]), 1, 0, 0, 1, 0, None)
    if kind == "int":
        return (1, 0, 1, max(1, _bits(int(arg[1]))), 1, 0, 0, 1, 0, None)
    raise expr_error(f"Float expects a number or a numeric string, got {_KINDS[kind]}", arg[-1])


def _cost(call: PartialCall, rule: str) -> tuple:
    """The bounds of a call from those of its arguments; refuses one over a budget."""
    infos = [info for _, info in call.args]
    nodes = 1 + sum(i[0] for i in infos) + sum(v[1][0] for v in call.kwargs.values())
    below = sum(i[8] for i in infos)
    if rule == "add":
        degree = max(i[1] for i in infos)
        terms = sum(i[2] for i in infos)
        bits = max(i[3] for i in infos) + (len(infos) - 1).bit_length()
        shifted = min(sum(i[7] for i in infos), _WORK_CEILING)
    elif rule == "mul":
        degree = sum(i[1] for i in infos)
        terms, shifted = 1, 1
        for i in infos:
            terms = min(terms * i[2], MAX_TERMS + 1)
            shifted = min(shifted * i[7], _WORK_CEILING)
        if sum(1 for i in infos if i[2] > 1) > 1 and terms > MAX_PRODUCT_TERMS:
            raise expr_error(f"Mul(...) of sums expands to more than {MAX_PRODUCT_TERMS} terms", call.offset)
        bits = sum(i[3] for i in infos)
    elif rule == "pow":
        (base, binfo), (exp, einfo) = call.args
        degree, terms, bits, shifted, own, value = _pow_cost(call, base, binfo, exp, einfo)
        below += own
    else:  # a function: an atom to the expansion around it, re-evaluated on its expanded arguments
        symbolic = any(i[1] for i in infos)
        degree, terms = (1 if symbolic else 0), 1
        bits = max(i[3] for i in infos) if infos else 0
        shifted = 1
        if symbolic:  # sympy re-evaluates it on the expanded arguments: polynomial division, comparisons
            width = len(infos) if rule == "lattice" else 1
            below += width * sum(i[7] * max(1, i[1]) ** 2 for i in infos)
            if rule == "lattice":  # it compares its arguments pairwise, each comparison querying both
                # whole trees, the functions in them again (Min of 4 padded window counts: 0.2 s)
                below += 2 * (width - 1) * sum(i[0] for i in infos)
        if rule == "lshift":
            shift = infos[1][9]
            if shift is not None and shift > 0:
                bits += math.ceil(shift)
    if rule != "pow":
        try:
            value = call_value(call.name, [i[9] for i in infos], MAX_NUMBER_BITS)
        except NumberTooBig:
            raise expr_error(f"{call.name} would build a number of more than {MAX_INT_DIGITS} digits",
                             call.offset) from None
    if value is not None:
        bits = max(bits, _bits(value.numerator), _bits(value.denominator))
    merged = 1
    lattice = sum(i[5] for i in infos)
    weight = sum(i[6] for i in infos)
    if rule == "lattice":  # Max(a, Max(b, c)) is Max(a, b, c) to sympy
        merged = sum(info[4] if arg[0] == "call" and arg[1] == call.name else 1 for arg, info in call.args)
        lattice += len(infos)
        weight += sum(i[2] for i in infos)
    offset = call.offset
    if merged > MAX_LATTICE:
        raise expr_error(f"{call.name} of more than {MAX_LATTICE} arguments once nested {call.name} calls "
                     f"are merged", offset)
    if lattice > MAX_LATTICE_TOTAL:
        raise expr_error(f"{call.name}(...) holds Max/Min calls of more than {MAX_LATTICE_TOTAL} arguments in all",
                     offset)
    if weight > MAX_LATTICE_TERMS:
        raise expr_error(f"{call.name}(...) holds Max/Min calls of arguments of more than {MAX_LATTICE_TERMS} terms "
                     f"in all", offset)
    if nodes > MAX_NODES:
        raise expr_error(f"expression of more than {MAX_NODES} values", offset)
    if degree > MAX_DEGREE:
        raise expr_error(f"{call.name}(...) has degree {degree}, over the limit of {MAX_DEGREE}", offset)
    if terms > MAX_TERMS:
        raise expr_error(f"{call.name}(...) expands to more than {MAX_TERMS} terms", offset)
    if bits > MAX_NUMBER_BITS:
        raise expr_error(f"{call.name} would build a number of more than {MAX_INT_DIGITS} digits", offset)
    return nodes, degree, terms, bits, merged, lattice, weight, shifted, min(below, _WORK_CEILING), value


def _pow_cost(call: PartialCall, base: Node, binfo: tuple, exp: Node, einfo: tuple) -> tuple:
    """Degree, terms, bits, shifted terms, own work and value of ``Pow(base, exp)``; refuses
    big exponents of symbols and of numbers (a numbers-only exponent is bounded by its value)."""
    constant = einfo[9]
    if constant is None:  # a symbolic, float or irrational exponent: not expanded, an atom
        if einfo[1] and einfo[3] > MAX_EXPONENT.bit_length():
            raise expr_error(f"a number in the exponent of {call.name} is over the limit of {MAX_EXPONENT}",
                         exp[-1])
        if not einfo[1]:  # numbers only: as big as its magnitude (sympy/mpmath compute with it)
            bound = magnitude_bound(None, _float_literal(exp), einfo[3])
            if binfo[3] and binfo[3] * bound > MAX_NUMBER_BITS:
                raise expr_error(f"Pow of a number would exceed {MAX_INT_DIGITS} digits", exp[-1])
            if bound > MAX_EXPONENT:
                raise expr_error(f"{call.name} with an exponent of numbers only over the limit of {MAX_EXPONENT}",
                                 exp[-1])
        symbolic = binfo[1] or einfo[1]
        return (1 if symbolic else 0), 1, max(binfo[3], einfo[3]), 1, (
            binfo[7] * max(1, binfo[1]) ** 2 + einfo[7] * max(1, einfo[1]) ** 2 if symbolic else 0), None
    p, q = abs(constant.numerator), constant.denominator
    if binfo[3] and q > 1 and (q > MAX_POW_ROOT or binfo[3] > MAX_ROOT_BASE_BITS):
        raise expr_error(f"a root (exponent {constant}) of a number: over the limit of root {MAX_POW_ROOT} of "
                         f"{MAX_ROOT_BASE_BITS}-bit numbers (sympy factors the number)", exp[-1])
    if binfo[3] and binfo[3] * p > MAX_NUMBER_BITS:
        raise expr_error(f"Pow of a number would exceed {MAX_INT_DIGITS} digits", exp[-1])
    if binfo[1] and p > MAX_EXPONENT:
        raise expr_error(f"{call.name} of a symbolic base with exponent {constant.numerator}, "
                     f"over the limit of {MAX_EXPONENT}", exp[-1])
    terms = math.comb(binfo[2] + p - 1, p) if binfo[2] > 1 else 1
    if p > 1 and terms > MAX_PRODUCT_TERMS:
        raise expr_error(f"{call.name} of a sum expands to more than {MAX_PRODUCT_TERMS} terms", exp[-1])
    if q == 1 and binfo[7] > 1:  # (a + b)**p expanded: a multinomial's terms
        shifted = _WORK_CEILING if binfo[7] > _WORK_CEILING else min(math.comb(binfo[7] + p - 1, p), _WORK_CEILING)
    else:  # a number, or a root of a symbolic base (an atom)
        shifted = 1
    own = 0 if call.name == "Pow" and (q == 1 or not binfo[1]) else binfo[7] * max(1, binfo[1]) ** 2
    value = binfo[9] ** constant.numerator if q == 1 and binfo[9] is not None and call.name == "Pow" else None
    return binfo[1] * p, min(terms, MAX_TERMS + 1), binfo[3] * p, shifted, own, value
