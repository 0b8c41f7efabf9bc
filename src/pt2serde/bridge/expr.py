"""Sympy objects from the sympy ``srepr`` strings that store symbolic shapes.

Serialized exported programs write every symbolic expression as ``sympy.srepr(expr)``,
e.g. ``Mul(Integer(2), Symbol('s0', positive=True, integer=True))``. PyTorch reads them
back with ``sympy.sympify(text, locals=...)``, which is ``eval``: a doctored file runs
arbitrary Python. pt2serde reads them with its own grammar, :mod:`pt2serde.format.expr`
(torch-free, the one judge of an expression: names, arity, literal forms, assumptions and
the work budgets). This module has no grammar of its own: it walks the checked tree and
turns each node into a value by its kind: literals through one table, :data:`_LITERALS`, and
any other call through the class of that name in the library the grammar assigns it to (sympy's own
classes, or torch's ``torch.utils._sympy.functions``: the classes PyTorch's table would
resolve it to). Literals are converted as ``sympify`` converts them (``3`` becomes
``Integer(3)``, ``1.5`` becomes ``Float('1.5')``). Since ``validate`` runs the same grammar,
whatever it calls valid is refused here only when a constructor itself refuses its
arguments, which is reported as ``cannot build Name(...)``.
"""

from __future__ import annotations

from typing import Any, Callable

import sympy
import torch.utils._sympy.functions as _tf
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import BooleanFalse, BooleanTrue
from torch.utils._sympy.numbers import int_oo

from ..errors import SerializeError
from ..format import expr as grammar
from ..format.expr import MAX_INT_DIGITS, SYMBOL_ASSUMPTIONS, Node, kind_of
from ..format.expr_rules import TORCH_ATOMS, TORCH_FUNCTIONS, expr_error

__all__ = ["ExprParser", "ALLOWED_CALLS", "ALLOWED_ATOMS", "SYMBOL_ASSUMPTIONS", "MAX_INT_DIGITS"]

_EXPR_ERROR_CHARS = 200  # how much of a constructor's own error message to quote
_NUMBER_LIMIT = 10**MAX_INT_DIGITS

# ------------------------------------------------------------------ the constructors

# Where the grammar's names live: torch's functions and ``int_oo`` in torch's namespace,
# every other name in sympy's (PyTorch's table of torch functions over sympy's namespace:
# ``Mod`` is torch's, ``Max``/``Min`` are sympy's; ``Eq``/``Ne``/... are sympy's aliases).
_SYMPY: dict[str, Any] = {**vars(sympy), "ExprCondPair": ExprCondPair, "BooleanTrue": BooleanTrue,
                          "BooleanFalse": BooleanFalse}
_TORCH: dict[str, Any] = {**vars(_tf), "int_oo": int_oo}
_TORCH_NAMES = TORCH_FUNCTIONS | TORCH_ATOMS


def _resolve(name: str) -> Any:
    """The object a name of the grammar stands for (a class, or an atom such as ``oo``)."""
    return (_TORCH if name in _TORCH_NAMES else _SYMPY)[name]


#: The class each call name of the grammar builds from its built arguments.
_CONSTRUCTORS: dict[str, Callable[..., Any]] = {name: _resolve(name) for name in grammar.CALLS}
#: The node kind of a call: its argument form in the grammar (``expr`` ... or a literal form).
_FORMS: dict[str, str] = {name: spec.form for name, spec in grammar.CALLS.items()}
_ATOM_VALUES: dict[str, Any] = {name: _resolve(name) for name in grammar.ATOMS}


def _number(node: Node) -> sympy.Number:
    """A number literal, converted as ``sympify`` converts it."""
    return sympy.Integer(int(node[1])) if kind_of(node) == "int" else sympy.Float(node[1])


def _float(node: Node) -> sympy.Float:
    """``Float('0.1', precision=53)`` (what srepr writes) or ``Float(<number literal>)``."""
    arg, precision = node[2][0], node[3].get("precision")
    value = _number(arg) if arg[0] == "num" else arg[1]
    return sympy.Float(value) if precision is None else sympy.Float(value, precision=int(precision[1]))


#: How each kind of node whose parts are all literals becomes a value: leaves by their tag,
#: literal calls by their form (``symbol`` is the parser's own, to share symbols). Any
#: other node is a call, built by :data:`_CONSTRUCTORS` from its built arguments.
_LITERALS: dict[str, Callable[[Node], Any]] = {
    "num": _number,
    "name": lambda node: _ATOM_VALUES[node[1]],
    "neg": lambda node: -_ATOM_VALUES[node[1][1]],
    "integer": lambda node: sympy.Integer(int(node[2][0][1])),
    "rational": lambda node: sympy.Rational(int(node[2][0][1]), int(node[2][1][1])),
    "float": _float,
    "const": lambda node: _CONSTRUCTORS[node[1]](),
}

ALLOWED_CALLS = frozenset(grammar.CALLS)
ALLOWED_ATOMS = frozenset(grammar.ATOMS)


class ExprParser:
    """Parses ``srepr`` strings of symbolic expressions without evaluating them.

    ``symbols`` maps names to symbols the caller wants shared: a ``Symbol('s0', ...)``
    whose name is in it parses to that exact object (its assumptions win). Symbols the
    parser creates itself are reused by later occurrences with the same name and
    assumptions, within one :meth:`parse` and across calls; :attr:`symbols` lists them.
    The caller's dict is read, never modified.

    ``max_length`` bounds the input in characters, ``max_depth`` the nesting of calls
    (both default to the grammar's limits, which ``validate`` applies). ``budget``, the
    document's :class:`pt2serde.format.expr.ExprBudget`, is charged for every distinct string
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
        self._shared: dict[str, sympy.Basic] = symbols if symbols is not None else {}
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
        constructor refuses (naming ``path`` where given: ``... - at `$.path```).
        """
        tree = grammar.parse(text, max_chars=self.max_length, max_depth=self.max_depth, budget=self.budget, path=path)
        try:
            return self._build_tree(tree)
        except SerializeError as e:  # a constructor's refusal: where the string is, as the grammar's errors say
            if path is None:
                raise
            raise SerializeError(f"{e} - at `{path}`", path=path, problem=str(e)) from None

    def _build_tree(self, root: Node) -> sympy.Basic:
        """Post-order over the tree with an explicit stack: nesting costs no Python frames."""
        done: dict[int, Any] = {}
        stack: list[tuple[Node, bool]] = [(root, False)]
        literals = {**_LITERALS, "symbol": self._symbol}  # per call: kept on self, it would be a cycle
        while stack:
            node, ready = stack.pop()
            if ready:
                done[id(node)] = self._build(_CONSTRUCTORS[node[1]], node, [done[id(arg)] for arg in node[2]])
                continue
            literal = literals.get(_FORMS[node[1]] if node[0] == "call" else node[0])
            if literal is None:
                stack.append((node, True))
                stack.extend((arg, False) for arg in node[2] if id(arg) not in done)
            elif node[0] == "call":
                done[id(node)] = self._build(literal, node, [node])
            else:
                done[id(node)] = literal(node)
        return done[id(root)]

    @staticmethod
    def _build(constructor: Callable[..., Any], node: Node, args: list) -> sympy.Basic:
        """``constructor(*args)`` for the call ``node``; a constructor's refusal names it."""
        name, offset = node[1], node[4]
        try:
            result = constructor(*args)
        except Exception as exc:  # sympy / torch constructors refusing their arguments
            raise _constructor_error(name, exc, offset) from None
        # the grammar decides every name and bounds every number beforehand; these only guard
        # that the constructors kept to it (a sympy or torch release that evaluates differently)
        if not isinstance(result, sympy.Basic):
            raise expr_error(f"{name}(...) built a {type(result).__name__}, not a sympy object", offset)
        if isinstance(result, sympy.Rational) and (abs(int(result.p)) >= _NUMBER_LIMIT
                                                   or int(result.q) >= _NUMBER_LIMIT):
            raise expr_error(f"{name} built a number of more than {MAX_INT_DIGITS} digits", offset)
        return result

    def _symbol(self, node: Node) -> sympy.Symbol:
        """The symbol of a ``Symbol(name, **assumptions)`` node: shared, reused or new."""
        name = node[2][0][1]
        shared = self._shared.get(name)
        if isinstance(shared, sympy.Symbol):  # (the table also holds expressions, by their printed form)
            return shared
        key = (name, tuple((key, value[1] == "True") for key, value in node[3].items()))
        symbol = self._declared.get(key)
        if symbol is not None:
            return symbol
        symbol = sympy.Symbol(name, **dict(key[1]))
        previous = self._created.get(name)
        if previous is None:
            self._created[name] = symbol
        elif previous == symbol:  # the same assumptions, written in another order
            symbol = previous
        self._declared[key] = symbol
        return symbol


def _constructor_error(name: str, exc: Exception, offset: int) -> SerializeError:
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    if len(detail) > _EXPR_ERROR_CHARS:
        detail = detail[:_EXPR_ERROR_CHARS] + "..."
    return expr_error(f"cannot build {name}(...): {detail}", offset)
