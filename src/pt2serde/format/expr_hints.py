"""Symbolic values at their hints, torch-free: what torch computes from a document's hints.

A document stores, beside each symbolic size, its *hint*: the value the symbol had in the
example inputs. Loading, torch gives every symbolic value without a stored hint the value of
its expression at the hints (``SymNode``'s ``compute_hint``), and later steps (guards of
``module()``, ``run_decompositions()``) evaluate expressions there again. sympy does that
exactly, whatever the numbers: a stored hint of ``10**15`` under ``Pow(Integer(2), s77)``
makes it compute a number of 10**15 bits (minutes, gigabytes), and a divisor that is zero at
the hints, a negative shift or exponent, a logarithm of zero or a value that is not an
integer where a size must be one make torch raise.

:func:`hint_problems` is the one rule ``load`` and ``validate`` apply to this: the hints
themselves (their kind, one value per symbol, inside the symbol's range; torch also keeps a
hint stored on a whole expression and swaps it in wherever the expression appears, so such a
hint must be the expression's value at its symbols' hints) and the value of every expression
at them, computed here exactly, with torch's own arithmetic (``CeilDiv``, ``safe_pow``'s
``int_oo``, ``Mod``'s assertion, conversions through floats) and every number bounded by
:data:`~pt2serde.format.expr_rules.MAX_NUMBER_BITS` (the grammar's number budget), so the work
is bounded by the expression's size. Where the value cannot be known exactly (a symbol
without a hint, floats sympy keeps symbolic, irrational powers, functions not modelled) it is
left unknown and the rule says nothing, except under ``Pow`` and ``PowByNatural``: sympy raises
to an exponent's value however big, so a symbolic exponent this rule cannot bound is refused.
"""

from __future__ import annotations

import math
import re
import sys
from fractions import Fraction
from typing import Any, Iterator

from .. import schema
from .expr_rules import MAX_INT_DIGITS, MAX_NUMBER_BITS, MAX_POW_ROOT, MAX_ROOT_BASE_BITS, Node
from .expr_text import symbols
from .problem import key_path

__all__ = ["hint_problems", "value_at", "HintError"]

#: torch's ``safe_pow`` (``PowByNatural``, ``LShift``) gives ``int_oo`` past this
_SAFE_POW_MAX = sys.maxsize


class HintError(ValueError):
    """What torch would raise evaluating an expression at the hints (the message says it)."""


#: A SymInt's hint: torch's sizes are int64, and so is every hint torch.export writes. A bigger
#: one only feeds sympy huge numbers (roots, powers) where the rule cannot follow it.
MAX_HINT = 1 << 63


class HintUse:
    """Which stored hints ``load`` gives torch, so that torch evaluates every expression with
    the hints :func:`hint_problems` checked and with no other (filled by it, read by
    :meth:`pt2serde.bridge.symbolic.SymbolicContext.sym_int` and ``sym_float``).

    torch keeps the first hint it is given for whatever expression sympy builds from a text,
    and swaps it in wherever that expression appears. So: a symbol's hint comes from its bare
    ``Symbol`` SymInt only (a SymFloat of it gets that value as a float, and sets nothing); a
    hint stored on an expression is given to torch where this rule checked it against the
    symbols' hints, or where some symbol of it has no hint (derived sizes: it is all torch
    has), and is dropped where every symbol has a hint but the rule cannot compute the value
    (``Min(s5, oo)``, a function it does not model): torch computes it from the symbols. The
    bridge also never sets a hint for an expression sympy folds to a symbol or a number."""

    __slots__ = ("symbols", "bare", "dropped")

    def __init__(self) -> None:
        self.symbols: dict[str, int] = {}  # symbol -> its hint (from its bare SymInt)
        self.bare: dict[str, str] = {}  # text of a bare Symbol (SymInt or SymFloat) -> the symbol
        self.dropped: set[str] = set()  # texts whose stored hint torch is not given

    def __repr__(self) -> str:
        return f"<HintUse symbols={len(self.symbols)} bare={len(self.bare)} dropped={len(self.dropped)}>"

    def hint(self, text: str, stored: int | float | None, is_float: bool = False) -> tuple[Any, bool]:
        """``(hint for the value, whether torch may keep it for the expression)`` of a SymInt
        (SymFloat: ``is_float``) stored as ``text`` with hint ``stored``."""
        if stored is None or text in self.dropped:
            return None, False
        name = self.bare.get(text)
        if name is not None and is_float and name in self.symbols:
            return float(self.symbols[name]), False
        return stored, True


class _Inf:
    """An infinity (``oo``, ``int_oo``, ``zoo``) or ``nan``: never a size."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_UNKNOWN = None
Value = Any  # int | Fraction (exact) | float | bool | _Inf | None (unknown)
_EXACT = (int, Fraction)


def _bits(value: int | Fraction) -> int:
    if type(value) is int:
        return value.bit_length()
    return max(value.numerator.bit_length(), value.denominator.bit_length())


def _checked(value: int | Fraction) -> int | Fraction:
    if type(value) is Fraction and value.denominator == 1:
        value = value.numerator
    if _bits(value) > MAX_NUMBER_BITS:
        raise HintError(f"its value at the hints has more than {MAX_INT_DIGITS} digits")
    return value


def _exact(v: Value) -> bool:
    return type(v) in _EXACT


def _int(v: Value) -> int | None:
    """``v`` as an int when it is an exact integer."""
    if type(v) is int:
        return v
    return v.numerator if type(v) is Fraction and v.denominator == 1 else None


def _number(v: Value) -> bool:
    return type(v) in (int, Fraction, float)


def _divisor(v: Value) -> Value:
    if _number(v) and v == 0:
        raise HintError("it divides by zero at the hints")
    return v


def _modular_indexing_evaluates(x: Fraction, d: Fraction, m: Fraction) -> bool:
    """Whether torch's ``ModularIndexing(x, d, m)`` of these numbers (``x`` not 0, ``m`` not 1)
    is a number: with all three integers, or once ``x`` and ``d`` are divided by their gcd (a
    rational's: of the numerators over the lcm of the denominators), which torch takes when
    ``d`` is not 1. Its value is then ``floor(x / d) mod m`` either way."""
    if x.denominator == d.denominator == m.denominator == 1:
        return True
    if d == 1:
        return False
    g = Fraction(math.gcd(x.numerator, d.numerator), math.lcm(x.denominator, d.denominator))
    if g == 1:
        return False
    x, d = x / g, d / g  # now coprime integers: one step is all torch's recursion can take
    return x.denominator == d.denominator == m.denominator == 1


def _pow(base: Value, exp: Value, name: str) -> Value:
    """``Pow``/``PowByNatural``/``FloatPow`` of known numbers; unknown where sympy keeps a root.
    sympy's ``Pow`` computes an integer or float power exactly, however big: an exponent past
    the number budget is refused whatever the base (unless 0, 1 or -1)."""
    if name == "FloatPow":
        if not (_number(base) and _number(exp)):
            return _UNKNOWN
        try:
            return math.pow(float(base), float(exp))
        except (OverflowError, ValueError) as e:
            raise HintError(f"FloatPow fails at the hints ({e})") from None
    if name == "PowByNatural" and _number(exp) and exp < 0:
        raise HintError("PowByNatural has a negative exponent at the hints")
    b = _int(base)
    # sympy's Pow (and torch's PowByNatural of any base but an integer, which it hands to
    # sympy's Pow) computes the power exactly: an exponent past the budget is refused
    exact_pow = name == "Pow" or b is None
    if exact_pow and _number(exp) and abs(exp) > MAX_NUMBER_BITS and b not in (0, 1, -1):
        raise HintError(f"{name} with the exponent {_num(int(exp)) if _exact(exp) else exp} at the hints "
                        f"(over {MAX_NUMBER_BITS})")
    e = _int(exp)
    if e is None and _exact(exp) and _exact(base) and abs(base) not in (0, 1):
        # a root: sympy factors the number, as the grammar bounds it for a number's own root
        if exp.denominator > MAX_POW_ROOT or _bits(base) > MAX_ROOT_BASE_BITS \
                or abs(exp.numerator) * _bits(base) > MAX_NUMBER_BITS:
            raise HintError(f"{name} takes the root {exp} of a {_bits(base)}-bit number at the hints (over the "
                            f"limit of root {MAX_POW_ROOT} of {MAX_ROOT_BASE_BITS}-bit numbers: sympy factors it)")
    if e is None or not _exact(base):
        return _UNKNOWN
    if name == "PowByNatural" and b is not None:  # torch's safe_pow: int_oo past sys.maxsize
        if abs(b) > 1 and e * (abs(b).bit_length() - 1) > 64:
            return _Inf("int_oo")
        result = b ** e
        return _Inf("int_oo") if abs(result) > _SAFE_POW_MAX else result
    if base == 0 and e < 0:
        return _Inf("zoo")
    if abs(e) * _bits(base) > MAX_NUMBER_BITS and abs(base) != 1:
        raise HintError(f"its value at the hints has more than {MAX_INT_DIGITS} digits")
    return _checked(Fraction(base) ** e if e < 0 else base ** e)


def _shift(value: Value, shift: Value, left: bool) -> Value:
    """torch's ``LShift`` (``a * 2**s``) and ``RShift`` (``FloorDiv(a, 2**s)``), with ``2**s``
    past ``sys.maxsize`` its ``int_oo``."""
    s = _int(shift)
    if _number(shift) and shift < 0:
        raise HintError(f"{'LShift' if left else 'RShift'} by a negative amount at the hints")
    a = _int(value)
    if a is None or s is None:
        return _UNKNOWN
    if s > 62:  # 2**s past sys.maxsize: int_oo
        if not left:
            return 0  # FloorDiv(a, int_oo)
        return _Inf("int_oo" if a > 0 else "-int_oo" if a < 0 else "nan")  # 0 * int_oo: nan
    return a << s if left else a >> s


def _float_fn(name: str, v: Value) -> Value:
    if not _number(v):
        return _UNKNOWN
    fn = getattr(math, name, None)
    if fn is None:
        return _UNKNOWN
    try:
        return fn(float(v))
    except (OverflowError, ValueError) as e:
        raise HintError(f"{name} fails at the hints ({e})") from None


def _compare(name: str, a: Value, b: Value) -> Value:
    if not (_number(a) and _number(b)):
        return _UNKNOWN
    if name in ("Equality", "Eq"):
        return a == b
    if name in ("Unequality", "Ne"):
        return a != b
    if name in ("StrictLessThan", "Lt"):
        return a < b
    if name in ("LessThan", "Le"):
        return a <= b
    if name in ("StrictGreaterThan", "Gt"):
        return a > b
    return a >= b  # GreaterThan, Ge


_RELATIONS = frozenset({"Equality", "Eq", "Unequality", "Ne", "StrictLessThan", "Lt", "LessThan", "Le",
                        "StrictGreaterThan", "Gt", "GreaterThan", "Ge"})
_TO_INT = {"TruncToInt": math.trunc, "FloorToInt": math.floor, "CeilToInt": math.ceil, "RoundToInt": round}


def _call(name: str, args: list[Value]) -> Value:
    """The value of one call of known (or unknown) argument values."""
    if name in ("Add", "Mul"):
        if name == "Mul" and any(_number(a) and a == 0 for a in args):
            return 0
        if not all(_number(a) for a in args):
            return _UNKNOWN
        if not all(_exact(a) for a in args):  # sympy: a Float anywhere makes the result a Float
            return math.fsum(map(float, args)) if name == "Add" else math.prod(map(float, args))
        total = args[0]
        for a in args[1:]:
            total = _checked(total + a if name == "Add" else total * a)
        return total
    if name in ("Pow", "PowByNatural", "FloatPow"):
        return _pow(args[0], args[1], name)
    if name in _RELATIONS:
        return _compare(name, args[0], args[1])
    if name in ("And", "Or"):
        if not all(type(a) is bool for a in args):
            return _UNKNOWN
        return all(args) if name == "And" else any(args)
    if name == "Not":
        return (not args[0]) if type(args[0]) is bool else _UNKNOWN
    if name in ("FloorDiv", "CleanDiv", "CeilDiv", "Mod", "PythonMod", "IntTrueDiv", "FloatTrueDiv"):
        a, b = args[0], _divisor(args[1])
        if not (_exact(a) and _exact(b)):
            return _UNKNOWN
        if name in ("FloorDiv", "CleanDiv", "CeilDiv") and not (_int(a) is not None and _int(b) is not None):
            # torch leaves them unevaluated on non-integers (then int() of the hint fails), but for
            # FloorDiv(0, b) and FloorDiv(b, b); CeilDiv becomes one of them when parsed, by a gcd
            # taken on its symbolic arguments, which this rule does not model: refused whole
            if name != "CeilDiv" and (a == 0 or a == b):
                return int(a == b)
            raise HintError(f"{name} of a value that is not an integer at the hints (torch cannot evaluate it)")
        if name in ("FloorDiv", "CleanDiv"):
            return _int(a) // _int(b)
        if name == "CeilDiv":  # torch's: FloorDiv(a + b - 1, b)
            return (_int(a) + _int(b) - 1) // _int(b)
        if name == "Mod" and (a < 0 or b < 0):
            raise HintError("Mod of a negative value at the hints (torch's Mod asserts both are not negative)")
        if name in ("Mod", "PythonMod"):
            if type(a) is int and type(b) is int:
                return a % b
            return _checked(a - b * math.floor(Fraction(a) / b))
        q = Fraction(a) / b
        return float(q) if q.numerator.bit_length() - q.denominator.bit_length() < 1000 else _UNKNOWN
    if name == "ModularIndexing":
        x, d, m = args[0], _divisor(args[1]), _divisor(args[2])
        if not (_exact(x) and _exact(d) and _exact(m)):
            return _UNKNOWN
        if x == 0 or m == 1:
            return 0
        if not _modular_indexing_evaluates(Fraction(x), Fraction(d), Fraction(m)):
            raise HintError("ModularIndexing of values that are not integers at the hints (torch cannot evaluate it)")
        q = math.floor(Fraction(x) / d)
        return _checked(q - m * math.floor(Fraction(q) / m))
    if name in ("LShift", "RShift"):
        return _shift(args[0], args[1], name == "LShift")
    if name in _TO_INT:
        v = args[0]
        if isinstance(v, _Inf) or (type(v) is float and not math.isfinite(v)):
            raise HintError(f"{name} of {v} at the hints")
        if not _number(v):
            return _UNKNOWN
        try:  # torch goes through a float (an int past the floats overflows)
            return _TO_INT[name](float(v))
        except OverflowError:
            raise HintError(f"{name} of a value past the floats at the hints") from None
    if name in ("Max", "Min"):
        if not all(_number(a) for a in args):
            return _UNKNOWN
        return max(args) if name == "Max" else min(args)
    if name == "Abs":
        return abs(args[0]) if _number(args[0]) else _UNKNOWN
    if name in ("floor", "ceiling"):
        v = args[0]
        if not _number(v) or (type(v) is float and not math.isfinite(v)):
            return _UNKNOWN
        return (math.floor if name == "floor" else math.ceil)(v)
    if name in ("Identity",):
        return args[0]
    if name in ("ToFloat", "TruncToFloat"):
        v = args[0]
        if not _number(v):
            return _UNKNOWN
        try:
            return float(math.trunc(v)) if name == "TruncToFloat" else float(v)
        except OverflowError as e:
            raise HintError(f"{name} fails at the hints ({e})") from None
    if name.startswith("OpaqueUnaryFn_"):
        return _float_fn(name.removeprefix("OpaqueUnaryFn_"), args[0])
    if name.startswith("BitwiseFn_bitwise_"):
        a, b = _int(args[0]), _int(args[1])
        if a is None or b is None:
            return _UNKNOWN
        op = name.removeprefix("BitwiseFn_bitwise_")
        return a & b if op == "and" else a | b if op == "or" else a ^ b
    if name == "Where":
        c = args[0]
        return (args[1] if c else args[2]) if type(c) is bool else _UNKNOWN
    if name == "Piecewise":  # args: (value, condition) pairs
        for value, cond in args:
            if cond is True:
                return value
            if cond is not False:
                return _UNKNOWN
        return _UNKNOWN
    if name == "ExprCondPair":
        return (args[0], args[1])
    return _UNKNOWN  # IsNonOverlappingAndDenseIndicator, RoundDecimal, ...: not needed exactly


def _leaf(node: Node, hints: dict[str, int]) -> Value:
    tag = node[0]
    if tag == "num":
        try:
            return int(node[1])
        except ValueError:
            v = float(node[1])
            return v if math.isfinite(v) else _UNKNOWN  # past the floats: sympy keeps it exactly
    if tag == "name":
        if node[1] in ("true", "True"):
            return True
        if node[1] in ("false", "False"):
            return False
        return _Inf(node[1]) if node[1] in ("oo", "int_oo", "zoo", "nan") else _UNKNOWN
    if tag == "neg":
        return _Inf(f"-{node[1][1]}")
    return _UNKNOWN  # str


def value_at(tree: Node, hints: dict[str, int]) -> Value:
    """The value of a checked tree with each symbol at its hint (``hints``); ``None`` where not
    known exactly. Raises :class:`HintError` where torch would fail or work without bound."""
    if tree[0] != "call":
        return _leaf(tree, hints)
    name, args = tree[1], tree[2]
    if name == "Symbol":
        hint = hints.get(args[0][1]) if args and args[0][0] == "str" else None
        return hint  # None: unknown
    if name == "Integer":
        return int(args[0][1])
    if name == "Rational":
        p, q = int(args[0][1]), int(args[1][1])
        return _checked(Fraction(p, q)) if q else _Inf("zoo")
    if name == "Float":  # Float(1.5) or Float('1.5'); past the floats sympy keeps it, unknown here
        try:
            v = float(args[0][1]) if args[0][0] in ("num", "str") else _UNKNOWN
        except (ValueError, OverflowError):
            return _UNKNOWN
        return v if v is _UNKNOWN or math.isfinite(v) else _UNKNOWN
    if name in ("BooleanTrue", "BooleanFalse"):
        return name == "BooleanTrue"
    values = [value_at(a, hints) for a in args]  # every argument, as sympy substitutes into all
    if name in ("Pow", "PowByNatural") and values[1] is _UNKNOWN and symbols(args[1]):
        # sympy raises to the exponent's value exactly, however big: one this rule cannot bound
        # (a float, a function it does not compute, a hint stored elsewhere) is refused
        raise HintError(f"{name} with a symbolic exponent whose value at the hints is not known")
    if any(isinstance(v, _Inf) for v in values) and name not in ("ExprCondPair", "Piecewise"):
        if name in ("Add", "Mul", "Abs", "Identity"):
            return next(v for v in values if isinstance(v, _Inf))
        return _UNKNOWN if name not in _TO_INT else _call(name, values)
    try:
        return _call(name, values)
    except HintError:
        raise
    except (ArithmeticError, ValueError, TypeError):  # a value this rule does not model: unknown
        return _UNKNOWN


def _bare_symbol(tree: Node) -> str | None:
    if tree[0] == "call" and tree[1] == "Symbol" and tree[2] and tree[2][0][0] == "str":
        return tree[2][0][1]
    return None


def _sym_ints(graph: schema.Graph, path: str) -> Iterator[tuple[tuple, schema.SymInt, str]]:
    """``(where, SymInt, role)`` of every symbolic int of a graph: tensor sizes, strides and
    offsets, and the SymInt value table (``where``: what :func:`_path` makes the ``$.path`` of)."""
    for name, tm in graph.tensor_values.items():
        for field in ("sizes", "strides"):
            for i, s in enumerate(getattr(tm, field)):
                if s.type == "as_expr":
                    yield (path, "tensor_values", name, field, i), s, field
        if tm.storage_offset.type == "as_expr":
            yield (path, "tensor_values", name, "storage_offset", None), tm.storage_offset, "offset"
    for name, s in graph.sym_int_values.items():
        if s.type == "as_expr":
            yield (path, "sym_int_values", name, None, None), s, "symint"


def _path(where: tuple, leaf: str) -> str:
    path, table, name, field, i = where
    at = f"{path}.{table}{key_path(name)}"
    if field is not None:
        at += f".{field}" if i is None else f".{field}[{i}]"
    return f"{at}.as_expr.{leaf}"


def hint_problems(doc: schema.ExportedProgram, parse, graphs, use: HintUse | None = None) -> Iterator[tuple[str, str]]:
    """``(message, $.path)`` for the hints of ``doc`` and its expressions' values at them.

    ``parse(text, path)``: the document's checked tree of an expression (``ExprBudget.parse``:
    every expression was parsed and charged before, so most are asked with ``path`` None);
    ``graphs``: ``(graph, $.path)`` of the graph and its subgraphs. The
    hints: a SymInt's is an int, a SymFloat's a finite number; a symbol has one (a bare
    ``Symbol`` SymInt stores it), inside the symbol's range constraint. The values: every
    SymInt is an integer at the hints (a tensor size not negative), equal to its stored hint
    when it has no symbol, and no expression divides by zero, shifts or raises to a negative
    power, leaves a function's domain or exceeds the number budget there. ``use``, if given, is
    filled with which stored hints ``load`` may give torch (:class:`HintUse`)."""
    use = HintUse() if use is None else use
    sym_ints = [row for g, p in graphs for row in _sym_ints(g, p)]
    hints = use.symbols
    where: dict[str, tuple] = {}
    compound: list[tuple[tuple, Node, int, str]] = []  # hinted SymInts that are not a bare symbol
    for at, s, _ in sym_ints:
        h = s.value.hint  # (s.value: the SymExpr, as_expr)
        if h is None:
            continue
        if h.type != "as_int":
            yield f"SymInt hint must be an int, got {h.type.removeprefix('as_')}", _path(at, "hint")
            continue
        if not -MAX_HINT <= h.value < MAX_HINT:
            yield f"SymInt hint {_num(h.value)} is out of int64", _path(at, "hint")
            continue
        tree = _checked_tree(parse, s.value.expr_str)
        if tree is None:
            continue
        name = _bare_symbol(tree)
        if name is None:  # torch keeps this hint for the whole expression (xreplace swaps it in)
            if symbols(tree):
                compound.append((at, tree, h.value, s.value.expr_str))
            continue
        use.bare[s.value.expr_str] = name
        if name in hints and hints[name] != h.value:
            yield (f"symbol {name} has two hints, {_num(hints[name])} (at {_path(where[name], 'hint')}) "
                   f"and {_num(h.value)}", _path(at, "hint"))
            continue
        hints[name] = h.value
        where[name] = at
        rc = doc.range_constraints.get(name)
        if rc is not None and rc.min_val is not None and rc.max_val is not None and rc.min_val > rc.max_val:
            continue  # an empty range: check_program's own problem
        if rc is not None and ((rc.min_val is not None and h.value < rc.min_val)
                               or (rc.max_val is not None and h.value > rc.max_val)):
            yield (f"the hint {_num(h.value)} of symbol {name} is outside its range "
                   f"[{_num(rc.min_val)}, {_num(rc.max_val)}]", _path(at, "hint"))
    # an expression's stored hint is its value at its symbols' hints, as torch.export writes it:
    # torch substitutes it for the expression wherever it appears, before the symbols' own
    known: dict[str, Value] = {}  # text -> its value at the hints (None: unknown or failing)
    for at, tree, hint, text in compound:
        value = known.get(text, _UNKNOWN) if text in known else _UNKNOWN
        if text not in known:
            try:
                value = known[text] = value_at(tree, hints)
            except HintError:
                known[text] = _UNKNOWN
                continue  # said by the walk of the values below
        if not _exact(value) and all(name in hints for name in symbols(tree)):
            use.dropped.add(text)  # not checked, and not needed: torch computes it from the symbols
        if _exact(value) and value != hint:
            yield (f"the hint {_num(hint)} of {_short(text)} is not its value {value} at its symbols' hints",
                   _path(at, "hint"))
    for g, p in graphs:
        for name, s in g.sym_float_values.items():
            h = s.as_expr.hint if s.type == "as_expr" else None
            if h is None:
                continue
            ok = (h.type == "as_float" and math.isfinite(h.value)) or \
                 (h.type == "as_int" and abs(h.value).bit_length() <= 1023)
            path = f"{p}.sym_float_values{key_path(name)}.as_expr.hint"
            if not ok:
                yield f"SymFloat hint must be a finite number, got {h.value!r}", path
                continue
            tree = _checked_tree(parse, s.value.expr_str)  # a symbol's hint stored as a SymFloat: torch keeps it
            if tree is None:
                continue
            symbol = _bare_symbol(tree)
            if symbol is None:  # an expression's: torch computes it where every symbol has a hint
                if all(name in hints for name in symbols(tree)):
                    use.dropped.add(s.value.expr_str)
                continue
            use.bare[s.value.expr_str] = symbol
            if symbol in hints and hints[symbol] != h.value:
                yield (f"symbol {symbol} has two hints, {_num(hints[symbol])} (at {_path(where[symbol], 'hint')}) "
                       f"and {h.value!r}", path)
    seen: dict[str, tuple[Value, str | None, bool]] = {}
    for at, s, role in sym_ints:
        text = s.value.expr_str
        if text in seen:
            value, symbol, constant = seen[text]
        else:
            tree = _checked_tree(parse, text)
            if tree is None:
                continue
            symbol = _bare_symbol(tree)
            constant = not symbols(tree)
            try:
                value = value_at(tree, hints)
            except HintError as e:
                seen[text] = (_UNKNOWN, symbol, constant)
                yield f"symbolic value {_short(text)}: {e}", _path(at, "expr_str")
                continue
            seen[text] = (value, symbol, constant)
        if role == "sizes" and symbol is not None:  # torch knows a size negative from its range alone
            rc = doc.range_constraints.get(symbol)
            if rc is not None and rc.max_val is not None and rc.max_val < 0:
                yield (f"tensor size {symbol} is negative: its range is [{_num(rc.min_val)}, {_num(rc.max_val)}]",
                       _path(at, "expr_str"))
                continue
        if value is _UNKNOWN:
            continue
        if type(value) is bool or isinstance(value, _Inf) or (type(value) is float and not math.isfinite(value)):
            yield f"symbolic value {_short(text)} is {value} at the hints, not an integer", _path(at, "expr_str")
        elif role == "sizes" and value < 0:
            yield f"tensor size {_short(text)} is {value} at the hints, a negative size", _path(at, "expr_str")
        elif (h := s.value.hint) is not None and h.type == "as_int" and constant and value != h.value:
            yield (f"symbolic value {_short(text)} is {value} but its hint says {_num(h.value)}",
                   _path(at, "hint"))
    for g, p in graphs:
        for table in ("sym_float_values", "sym_bool_values"):
            for name, s in getattr(g, table).items():
                if s.type != "as_expr":
                    continue
                path = f"{p}.{table}{key_path(name)}.as_expr.expr_str"
                tree = _checked_tree(parse, s.as_expr.expr_str)
                if tree is None:
                    continue
                try:
                    value = value_at(tree, hints)
                except HintError as e:
                    yield f"symbolic value {_short(s.as_expr.expr_str)}: {e}", path
                    continue
                if table == "sym_float_values" and type(value) is bool:
                    yield f"SymFloat {_short(s.as_expr.expr_str)} is a condition, not a number", path
    yield from sym_op_problems(graphs, parse, hints)


#: the symbolic functions a node may call on SymInt/SymFloat/SymBool values, as Python computes
#: them on the hints (torch's SymNode does: ``out_hint = op(a.hint, b.hint)``)
_SYM_FUNCTIONS: dict[str, Any] = {
    "_operator.add": lambda a, b: a + b, "_operator.sub": lambda a, b: a - b, "_operator.mul": lambda a, b: a * b,
    "_operator.floordiv": lambda a, b: a // b, "_operator.mod": lambda a, b: a % b,
    "_operator.truediv": lambda a, b: a / b, "_operator.neg": lambda a: -a, "_operator.pos": lambda a: +a,
    "_operator.pow": None, "_operator.lshift": None, "_operator.rshift": None,  # bounded below
    "torch.sym_max": max, "torch.sym_min": min, "math.trunc": math.trunc,
    "torch.sym_int": math.trunc, "torch.sym_float": float,
}
#: the functions of conditions (and ``sqrt``), computed on the hints as well
_SYM_LOGIC_FUNCTIONS: dict[str, Any] = {
    "_operator.eq": lambda a, b: a == b, "_operator.ne": lambda a, b: a != b, "_operator.lt": lambda a, b: a < b,
    "_operator.le": lambda a, b: a <= b, "_operator.gt": lambda a, b: a > b, "_operator.ge": lambda a, b: a >= b,
    "_operator.and_": lambda a, b: a & b, "_operator.or_": lambda a, b: a | b, "torch.sym_not": lambda a: not a,
    "torch.sym_ite": lambda c, a, b: a if c else b, "torch._sym_sqrt": math.sqrt,
}


def sym_op_problems(graphs, parse, hints: dict[str, int]) -> Iterator[tuple[str, str]]:
    """``(message, $.path)`` for the symbolic-function nodes (``_operator.pow``, ``mul``,
    ``lshift`` ...) whose value at the hints is past the number budget, divides by zero or
    leaves the floats. ``run_decompositions()`` runs every such node on the inputs' hints (a
    SymNode computes ``op(a.hint, b.hint)`` in Python), whatever the file stores as the
    node's output: ``2 ** size`` at a size hint of 2**40, or 40 nodes each squaring the last,
    would run without end. Values flow from node to node as torch computes them; a
    ``sym_size``/``sym_stride`` node's value is its tensor's stored size at the hints, any
    other value the value of its stored expression (unknown for unbacked ones). The bits each
    node can reach are also bounded whatever the stored sizes (:func:`_bits_bound`), and a
    ``sym_ite`` of two kinds, or a node storing its value as an unbacked symbol its inputs do
    not have, is refused (torch asserts on both in a retrace)."""
    for g, path in graphs:
        computed: dict[str, Value] = {}
        stored: dict[str, Value] = {}
        bounds: dict[str, int] = {}  # bits a node's value can have in a retrace, whatever the sizes stored
        tables = {"as_sym_int": g.sym_int_values, "as_sym_float": g.sym_float_values, "as_sym_bool": g.sym_bool_values}

        def value_of(arg) -> Value:
            t = arg.type
            if t in ("as_int", "as_float", "as_bool"):
                return arg.value
            if t not in ("as_sym_int", "as_sym_float", "as_sym_bool"):
                return _UNKNOWN
            ref = arg.value
            if ref.type != "as_name":
                return ref.value
            name = ref.as_name
            if name in computed:
                return computed[name]
            if name not in stored:
                stored[name] = _stored_value(tables[t].get(name), parse, hints)
            return stored[name]

        for i, node in enumerate(g.nodes):
            target = node.target
            if target not in _SYM_FUNCTIONS and target not in _SYM_LOGIC and target not in _SIZE_TARGETS:
                continue  # (most nodes: checked first, a static program walks every node here)
            if len(node.outputs) != 1 or node.outputs[0].type not in ("as_sym_int", "as_sym_float", "as_sym_bool") \
                    or node.outputs[0].value.type != "as_name":
                continue
            out = node.outputs[0].value.as_name
            if target in _SYM_FUNCTIONS or target in _SYM_LOGIC:
                literal = [a.arg.value if a.arg.type == "as_int" else None for a in node.inputs]
                bound = _bits_bound(target, [_arg_bound(a.arg, bounds) for a in node.inputs], literal)
                bounds[out] = bound
                if bound > MAX_NUMBER_BITS:
                    yield (f"node {node.name or out} ({target}) can compute a number of more than {MAX_INT_DIGITS} "
                           "digits from the sizes torch computes in a retrace (run_decompositions), whatever the sizes "
                           "stored", f"{path}.nodes[{i}]")
                    continue
            if target in _SIZE_TARGETS:
                computed[out] = _tensor_dim(g, node, parse, hints, "sizes" if target.endswith("size.int") else "strides")
                continue
            given: set[str] = set()
            for a in node.inputs:
                if a.arg.type in tables and a.arg.value.type == "as_name":
                    given.update(_symbols_of(tables[a.arg.type].get(a.arg.value.as_name), parse))
            fresh = sorted(n for n in _symbols_of(tables[node.outputs[0].type].get(out), parse)
                           if n not in given and _UNBACKED.fullmatch(n))
            if fresh:  # torch binds the node to its stored symbol, then a retrace asserts it is a constant
                yield (f"node {node.name or out} ({target}) stores its value as the unbacked symbol {fresh[0]}, "
                       "which none of its inputs has (a function of its inputs cannot make one)", f"{path}.nodes[{i}]")
                continue
            if target == "torch.sym_ite" and len(node.inputs) == 3 \
                    and _kind(node.inputs[1].arg) != _kind(node.inputs[2].arg):
                # torch asserts both branches have one type (an int and a SymInt: AssertionError in a retrace)
                yield (f"node {node.name or out} (torch.sym_ite) chooses between a {_kind(node.inputs[1].arg)} and "
                       f"a {_kind(node.inputs[2].arg)}", f"{path}.nodes[{i}]")
                continue
            args = [value_of(a.arg) for a in node.inputs]
            if any(v is _UNKNOWN or isinstance(v, _Inf) for v in args) \
                    or not all(_number(v) or type(v) is bool for v in args):
                computed[out] = _UNKNOWN
                continue
            try:
                computed[out] = _sym_call(target, args)
            except HintError as e:
                computed[out] = _UNKNOWN
                yield f"node {node.name or out} ({target}): {e}", f"{path}.nodes[{i}]"


#: symbolic functions of conditions or numbers whose result is a bool or a choice among its arguments
_SYM_LOGIC = frozenset({"_operator.eq", "_operator.ne", "_operator.lt", "_operator.le", "_operator.gt", "_operator.ge",
                        "_operator.and_", "_operator.or_", "torch.sym_not", "torch.sym_ite", "torch._sym_sqrt"})
#: bits of any value a retrace computes that the walk cannot follow: a size, a stride, ``item()``
#: (torch's sizes are int64; an intermediate tensor's true size may differ from the stored one)
_SIZE_BITS = 64
_SIZE_TARGETS = frozenset({"torch.ops.aten.sym_size.int", "torch.ops.aten.sym_stride.int"})
_FLOAT_INT_BITS = 1025  # int(a float): below 2**1024


def _kind(arg) -> str:
    """What an argument of a symbolic function is, as torch's types go: a literal or a symbolic value."""
    return {"as_int": "int", "as_float": "float", "as_bool": "bool", "as_sym_int": "SymInt",
            "as_sym_float": "SymFloat", "as_sym_bool": "SymBool"}.get(arg.type, arg.type)


def _arg_bound(arg, bounds: dict[str, int]) -> int:
    """Bits of an argument's value in a retrace (0: a float or bool, which cannot grow past the floats)."""
    t = arg.type
    if t == "as_int":
        return max(1, abs(arg.value).bit_length())
    if t == "as_sym_int":
        ref = arg.value
        return max(1, abs(ref.value).bit_length()) if ref.type != "as_name" else bounds.get(ref.as_name, _SIZE_BITS)
    return 0


def _bits_bound(target: str, args: list[int], literal: list[int | None]) -> int:
    """At most how many bits ``target`` of values of ``args`` bits has (ints; 0 stands for a
    float), ``literal`` the int literals among the arguments (None: a value)."""
    if target in _SYM_LOGIC:
        return max(args, default=1) if target == "torch.sym_ite" else 1
    if target in ("_operator.truediv", "torch.sym_float", "torch._sym_sqrt"):
        return 0
    if not args:
        return 1
    if target in ("torch.sym_int", "math.trunc") and 0 in args:
        return _FLOAT_INT_BITS  # an int made from a float: up to the floats' range
    a = args[0]
    if target in ("_operator.add", "_operator.sub"):
        return max(args) + 1
    if target == "_operator.mul":
        return sum(args)
    if target in ("_operator.pow", "_operator.lshift") and len(args) == 2:
        e = literal[1]
        if e is None:  # a value: up to 2**bits of it (a size: any int64)
            e = (1 << args[1]) if args[1] <= 32 else MAX_NUMBER_BITS + 1
        if a == 0 or literal[0] == 0 or (target == "_operator.pow" and literal[0] in (1, -1)):
            return max(a, 1)  # a float, or a number whose powers (shifts) stay small
        return a * max(e, 1) if target == "_operator.pow" else a + max(e, 0)
    return max(args) + 1  # floordiv, mod, rshift, neg, max, min, trunc: no bigger than an argument (and its sign)


#: torch's unbacked symbols (``SymT.UNBACKED_INT``, ``UNBACKED_FLOAT``): from data, never from a function of sizes
_UNBACKED = re.compile(r"(u|zuf)[0-9]+")


def _checked_tree(parse, text: str) -> Node | None:
    """The budget's tree of ``text`` (every expression was parsed and charged before,
    ``check._expression_errors``: no path needed); None where the grammar refused it, which
    its own walk says."""
    try:
        return parse(text, None)
    except Exception:  # noqa: BLE001 - the grammar's problem
        return None


def _symbols_of(entry, parse) -> list[str]:
    """The symbols of a SymInt/SymFloat/SymBool table entry's stored expression (none for a literal)."""
    tree = _checked_tree(parse, entry.as_expr.expr_str) if entry is not None and entry.type == "as_expr" else None
    return [] if tree is None else symbols(tree)


def _stored_value(entry, parse, hints: dict[str, int]) -> Value:
    if entry is None or entry.type != "as_expr":
        return _UNKNOWN if entry is None else entry.value
    tree = _checked_tree(parse, entry.as_expr.expr_str)
    try:
        return _UNKNOWN if tree is None else value_at(tree, hints)
    except HintError:  # said by the walk of the values
        return _UNKNOWN


def _tensor_dim(g: schema.Graph, node: schema.Node, parse, hints: dict[str, int], field: str) -> Value:
    args = {a.name: a.arg for a in node.inputs}
    tensor, dim = args.get("self"), args.get("dim")
    if tensor is None or dim is None or tensor.type != "as_tensor" or dim.type != "as_int":
        return _UNKNOWN
    tm = g.tensor_values.get(tensor.as_tensor.name)
    values = getattr(tm, field, None) if tm is not None else None
    if values is None or not -len(values) <= dim.as_int < len(values):
        return _UNKNOWN
    s = values[dim.as_int]
    return s.as_int if s.type == "as_int" else _stored_value(s, parse, hints)


def _sym_call(target: str, args: list) -> Value:
    """``target`` on numbers, as Python computes it, with the number budget held."""
    try:
        if target in ("_operator.pow", "_operator.lshift", "_operator.rshift"):
            a, b = args
            if target == "_operator.pow":
                if type(a) is int and type(b) is int and b >= 0:
                    if abs(a) > 1 and b * max(1, a.bit_length()) > MAX_NUMBER_BITS:
                        raise HintError(f"it raises a number to the power {_num(b)} at the hints")
                    return a ** b
                return math.pow(float(a), float(b))  # SymFloat pow: a float
            if type(a) is not int or type(b) is not int:
                return _UNKNOWN
            if b < 0:
                raise HintError("it shifts by a negative amount at the hints")
            if target == "_operator.rshift":
                return a >> b
            if a and a.bit_length() + b > MAX_NUMBER_BITS:
                raise HintError(f"it shifts by {_num(b)} at the hints")
            return a << b
        fn = _SYM_FUNCTIONS.get(target) or _SYM_LOGIC_FUNCTIONS[target]
        value = fn(*args)
    except HintError:
        raise
    except ZeroDivisionError:
        raise HintError("it divides by zero at the hints") from None
    except OverflowError:
        raise HintError("its value at the hints is past the floats") from None
    except ValueError as e:  # a negative shift count, a math domain error: what the retrace raises
        raise HintError(f"it fails at the hints ({e})") from None
    except TypeError:
        return _UNKNOWN
    if type(value) is int and value.bit_length() > MAX_NUMBER_BITS:
        raise HintError(f"its value at the hints has more than {MAX_INT_DIGITS} digits")
    if type(value) is float and not math.isfinite(value):
        raise HintError("its value at the hints is not a finite number")
    return value


def _num(n: int | None) -> str:
    """An int as a message shows it: its first digits and its length past 30 digits."""
    text = str(n)
    return text if len(text) <= 30 else f"{text[:13]}... ({len(text.lstrip('-'))} digits)"


def _short(text: str) -> str:
    return text if len(text) <= 120 else f"{text[:100]}... ({len(text)} characters)"
