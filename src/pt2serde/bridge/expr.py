"""Sympy objects from the sympy ``srepr`` strings that store symbolic shapes.

Serialized exported programs write every symbolic expression as ``sympy.srepr(expr)``,
e.g. ``Mul(Integer(2), Symbol('s0', positive=True, integer=True))``. PyTorch reads them
back with ``sympy.sympify(text, locals=...)``, which is ``eval``: a doctored file runs
arbitrary Python. pt2serde reads them with its own grammar, :mod:`pt2serde.format.expr`
(torch-free, the one judge of an expression: syntax, allowlist, argument rules and the
work budgets on exponent, degree, expansion, numbers and size). This module only turns
the checked tree into sympy objects, calling for each call name the constructor
PyTorch's table would resolve it to: sympy's own classes (``Add``, ``Mul``, ``Pow``,
relations, ``And`` ...) and torch's (``torch.utils._sympy.functions``). Literals are
converted as ``sympify`` converts them (``3`` becomes ``Integer(3)``, ``1.5`` becomes
``Float('1.5')``). Since ``validate`` runs the same grammar, whatever it calls valid is
refused here only when a constructor itself refuses its arguments (e.g. inconsistent
``Symbol`` assumptions), which is reported as ``cannot build Name(...)``.
"""

from __future__ import annotations

from typing import Any, Callable

import sympy
import torch.utils._sympy.functions as _tf
from sympy.functions.elementary.piecewise import ExprCondPair
from torch.utils._sympy.numbers import int_oo

from ..format import expr as grammar
from ..format.expr import MAX_INT_DIGITS, SYMBOL_ASSUMPTIONS, Node, kind_of
from ..errors import SerializeError

__all__ = ["ExprParser", "ALLOWED_CALLS", "ALLOWED_ATOMS", "SYMBOL_ASSUMPTIONS", "MAX_INT_DIGITS"]

_EXPR_ERROR_CHARS = 200  # how much of a constructor's own error message to quote

# ------------------------------------------------------------------ the constructors

# Names of the grammar whose arguments are expressions, mapped to the class PyTorch's
# deserializer resolves them to (its table of torch functions over sympy's namespace:
# ``Mod`` is torch's, ``Max``/``Min`` are sympy's). ``Eq``/``Ne``/... are aliases.
_CLASSES: dict[str, Callable[..., sympy.Basic]] = {
    "Add": sympy.Add, "Mul": sympy.Mul, "Pow": sympy.Pow, "Max": sympy.Max, "Min": sympy.Min,
    "Abs": sympy.Abs, "floor": sympy.floor, "ceiling": sympy.ceiling, "Piecewise": sympy.Piecewise,
    "ExprCondPair": ExprCondPair,
    "Equality": sympy.Eq, "Eq": sympy.Eq, "Unequality": sympy.Ne, "Ne": sympy.Ne,
    "StrictLessThan": sympy.Lt, "Lt": sympy.Lt, "LessThan": sympy.Le, "Le": sympy.Le,
    "StrictGreaterThan": sympy.Gt, "Gt": sympy.Gt, "GreaterThan": sympy.Ge, "Ge": sympy.Ge,
    "And": sympy.And, "Or": sympy.Or, "Not": sympy.Not,
    # torch.utils._sympy.functions (the table PyTorch's deserializer uses)
    "FloorDiv": _tf.FloorDiv, "ModularIndexing": _tf.ModularIndexing, "Where": _tf.Where,
    "PythonMod": _tf.PythonMod, "Mod": _tf.Mod, "CleanDiv": _tf.CleanDiv, "CeilToInt": _tf.CeilToInt,
    "FloorToInt": _tf.FloorToInt, "CeilDiv": _tf.CeilDiv, "LShift": _tf.LShift, "RShift": _tf.RShift,
    "PowByNatural": _tf.PowByNatural, "FloatPow": _tf.FloatPow, "FloatTrueDiv": _tf.FloatTrueDiv,
    "IntTrueDiv": _tf.IntTrueDiv, "IsNonOverlappingAndDenseIndicator": _tf.IsNonOverlappingAndDenseIndicator,
    "TruncToFloat": _tf.TruncToFloat, "TruncToInt": _tf.TruncToInt, "RoundToInt": _tf.RoundToInt,
    "RoundDecimal": _tf.RoundDecimal, "ToFloat": _tf.ToFloat, "Identity": _tf.Identity,
    # torch's opaque math and bitwise functions: written by srepr under these names, but
    # missing from PyTorch's table (there ``sympify`` makes undefined functions).
    **{cls.__name__: cls for cls in (
        _tf.OpaqueUnaryFn_sqrt, _tf.OpaqueUnaryFn_cos, _tf.OpaqueUnaryFn_cosh, _tf.OpaqueUnaryFn_sin,
        _tf.OpaqueUnaryFn_sinh, _tf.OpaqueUnaryFn_tan, _tf.OpaqueUnaryFn_tanh, _tf.OpaqueUnaryFn_asin,
        _tf.OpaqueUnaryFn_acos, _tf.OpaqueUnaryFn_atan, _tf.OpaqueUnaryFn_exp, _tf.OpaqueUnaryFn_log,
        _tf.OpaqueUnaryFn_asinh, _tf.OpaqueUnaryFn_log2, _tf.BitwiseFn_bitwise_and, _tf.BitwiseFn_bitwise_or,
        _tf.BitwiseFn_bitwise_xor,
    )},
}
_LITERAL_CALLS = {"Symbol", "Integer", "Rational", "Float", "BooleanTrue", "BooleanFalse"}
if set(_CLASSES) | _LITERAL_CALLS != set(grammar.CALLS):  # pragma: no cover - a table out of step
    raise ImportError(f"exprparse and _srepr disagree on names: {set(_CLASSES) ^ (set(grammar.CALLS) - _LITERAL_CALLS)}")

_ATOMS: dict[str, sympy.Basic] = {
    "oo": sympy.oo, "zoo": sympy.zoo, "nan": sympy.nan, "true": sympy.true, "false": sympy.false,
    "int_oo": int_oo,
}
_NEGATED = {"oo": -sympy.oo, "int_oo": -int_oo}

ALLOWED_CALLS = frozenset(grammar.CALLS)
ALLOWED_ATOMS = frozenset(grammar.ATOMS)
_NUMBER_LIMIT = 10**MAX_INT_DIGITS


class ExprParser:
    """Parses ``srepr`` strings of symbolic expressions without evaluating them.

    ``symbols`` maps names to symbols the caller wants shared: a ``Symbol('s0', ...)``
    whose name is in it parses to that exact object (its assumptions win). Symbols the
    parser creates itself are reused by later occurrences with the same name and
    assumptions, within one :meth:`parse` and across calls; :attr:`symbols` lists them.
    The caller's dict is read, never modified.

    ``max_length`` bounds the input in characters, ``max_depth`` the nesting of calls
    (both default to the grammar's limits, which ``validate`` applies). ``budget``, the
    document's :class:`pt2serde.grammar.ExprBudget`, is charged for every distinct string
    (none: each string is bounded by the grammar's per-expression caps only).
    The parser is not thread-safe (it keeps the symbols it made); use one per thread.
    """

    def __init__(
        self,
        symbols: dict[str, sympy.Symbol] | None = None,
        max_length: int = grammar.MAX_CHARS,
        max_depth: int = grammar.MAX_DEPTH,
        budget: grammar.ExprBudget | None = None,
    ) -> None:
        self._shared: dict[str, sympy.Symbol] = symbols if symbols is not None else {}
        self._created: dict[str, sympy.Symbol] = {}
        self._declared: dict[tuple[str, tuple[tuple[str, bool], ...]], sympy.Symbol] = {}
        self.max_length = max_length
        self.max_depth = max_depth
        self.budget = budget

    @property
    def symbols(self) -> dict[str, sympy.Symbol]:
        """Every symbol this parser can hand out by name: the caller's, then its own."""
        return {**self._created, **self._shared}

    def parse(self, text: str, path: str | None = None) -> sympy.Basic:
        """The sympy object ``text`` (an ``srepr`` string) describes.

        Raises :class:`SerializeError` for anything the grammar refuses (see
        :mod:`pt2serde.format.expr`), for an expression past the document's work budget (when the
        parser was given one; ``path`` names where the string is) and for arguments a
        constructor refuses.
        """
        tree = grammar.parse(text, max_chars=self.max_length, max_depth=self.max_depth, budget=self.budget, path=path)
        return self._build_tree(tree)

    def _build_tree(self, root: Node) -> sympy.Basic:
        """Post-order over the tree with an explicit stack: nesting costs no Python frames."""
        done: dict[int, Any] = {}
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if ready:
                done[id(node)] = self._call(node, [done[id(arg)] for arg in node[2]])
                continue
            if node[0] != "call" or node[1] in _LITERAL_CALLS:
                done[id(node)] = self._leaf(node)
                continue
            stack.append((node, True))
            stack.extend((arg, False) for arg in node[2] if id(arg) not in done)
        return done[id(root)]

    def _leaf(self, node: Node) -> sympy.Basic:
        """A literal, atom or literal call (``Symbol``, ``Integer``, ``Float`` ...)."""
        tag = node[0]
        if tag == "num":
            return sympy.Integer(int(node[1])) if kind_of(node) == "int" else sympy.Float(node[1])
        if tag == "name":
            return _ATOMS[node[1]]
        if tag == "neg":
            return _NEGATED[node[1][1]]
        _, name, args, kwargs, offset = node
        try:
            if name == "Symbol":
                assumptions = tuple((key, value[1] == "True") for key, value in kwargs.items())
                return self._symbol(args[0][1], assumptions)
            if name == "Integer":
                return sympy.Integer(int(args[0][1]))
            if name == "Rational":
                return sympy.Rational(int(args[0][1]), int(args[1][1]))
            if name == "Float":
                return _float(args[0], kwargs.get("precision"))
            return sympy.true if name == "BooleanTrue" else sympy.false
        except Exception as exc:  # e.g. InconsistentAssumptions
            raise _constructor_error(name, exc, offset) from None

    def _call(self, node: Node, args: list[sympy.Basic]) -> sympy.Basic:
        """Run the constructor of a call whose arguments are built."""
        name, offset = node[1], node[4]
        try:
            result = _CLASSES[name](*args)
        except Exception as exc:  # sympy / torch constructors refusing their arguments
            raise _constructor_error(name, exc, offset) from None
        if not isinstance(result, sympy.Basic):
            raise _error(f"{name}(...) built a {type(result).__name__}, not a sympy object", offset)
        # the grammar bounds every number beforehand; this only guards that bound
        if isinstance(result, sympy.Rational) and (abs(int(result.p)) >= _NUMBER_LIMIT
                                                   or int(result.q) >= _NUMBER_LIMIT):
            raise _error(f"{name} built a number of more than {MAX_INT_DIGITS} digits", offset)
        return result

    def _symbol(self, name: str, assumptions: tuple[tuple[str, bool], ...]) -> sympy.Symbol:
        """The symbol for ``Symbol(name, **assumptions)``: shared, reused or new."""
        shared = self._shared.get(name)
        if shared is not None:
            return shared
        key = (name, assumptions)
        symbol = self._declared.get(key)
        if symbol is not None:
            return symbol
        symbol = sympy.Symbol(name, **dict(assumptions))
        previous = self._created.get(name)
        if previous is None:
            self._created[name] = symbol
        elif previous == symbol:  # the same assumptions, written in another order
            symbol = previous
        self._declared[key] = symbol
        return symbol


def _float(arg: Node, precision: Node | None) -> sympy.Float:
    """``Float('0.1', precision=53)`` (what srepr writes) or ``Float(<number literal>)``."""
    bits = None if precision is None else int(precision[1])
    if arg[0] == "num":  # a number literal: first converted as sympify does
        value = sympy.Integer(int(arg[1])) if kind_of(arg) == "int" else sympy.Float(arg[1])
        return sympy.Float(value) if bits is None else sympy.Float(value, precision=bits)
    return sympy.Float(arg[1]) if bits is None else sympy.Float(arg[1], precision=bits)


def _error(message: str, offset: int) -> SerializeError:
    return SerializeError(f"invalid symbolic expression: {message} at offset {offset}")


def _constructor_error(name: str, exc: Exception, offset: int) -> SerializeError:
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    if len(detail) > _EXPR_ERROR_CHARS:
        detail = detail[:_EXPR_ERROR_CHARS] + "..."
    return _error(f"cannot build {name}(...): {detail}", offset)

