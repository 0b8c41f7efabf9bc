"""The one grammar of symbolic expressions (sympy ``srepr`` text), torch-free.

Program documents store symbolic sizes as ``sympy.srepr`` text, e.g.
``Mul(Integer(2), Symbol('s17', positive=True, integer=True))``. This module is the single
judge of such a string: :func:`parse` reads it into a syntax tree of plain tuples and
refuses, with a :class:`SerializeError` naming the problem and its character offset,
everything outside the grammar, the allowlist of call names, the argument rules of each
call, and the work budgets (:mod:`pt2serde.format.expr_rules`). It never evaluates anything. ``load`` builds sympy
objects from this tree (:mod:`pt2serde.bridge.expr`); ``validate`` / ``inspect`` use the same
tree (``check.py`` calls :func:`parse`), so the two refuse exactly the same strings::

    value   := call | atom | '-' ('oo' | 'int_oo') | INT | FLOAT | STRING
             | 'True' | 'False' | 'None'
    call    := NAME '(' [arg (',' arg)*] ')'         NAME from :data:`CALLS`
    arg     := [NAME '='] value                       keywords after positionals

The call rules (allowlist, argument forms, ``Symbol`` assumptions and the work budgets of
each expression) are in :mod:`pt2serde.format.expr_rules`; this module reads the text
(:func:`tokenize`, shared with :mod:`pt2serde.format.legacy_expr`), builds the tree and
charges each document's :class:`ExprBudget`. :func:`render` (:mod:`pt2serde.format.expr_text`)
prints a tree the way ``str(sympy_expr)`` does.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator, Sequence

from ..errors import SerializeError
from .expr_rules import (
    ATOMS, CALLS, LEAF_BOUNDS, LITERALS, MAX_CHARS, MAX_DEGREE, MAX_DEPTH, MAX_DOCUMENT_WORK, MAX_EXPONENT,
    MAX_INT_DIGITS, MAX_LATTICE, MAX_LATTICE_TERMS, MAX_LATTICE_TOTAL, MAX_NODES, MAX_NUMBER_BITS,
    MAX_PRODUCT_TERMS, MAX_TERMS, NEGATABLE, LINEAR_DIVISOR, LINEAR_MIN_WORK, LINEAR_ORDER_DIVISOR,
    LINEAR_ORDER_WORK, PLAIN_MAX_BITS, PLAIN_MAX_WORK, PLAIN_PER_NODE, SIZE_FREE_TERMS, SIZE_TERM_WORK,
    SYMBOL_ASSUMPTIONS, Node, PartialCall,
    check_root, consistent_assumptions, expr_error, finish_call, int_bounds, kind_of, linear, plain,
)
from .expr_text import render, symbols

__all__ = [
    "parse", "render", "symbols", "pretty", "tokenize", "CALLS", "ATOMS", "SYMBOL_ASSUMPTIONS",
    "consistent_assumptions", "kind_of", "Node",
    "MAX_CHARS", "MAX_DEPTH", "MAX_NODES", "MAX_DEGREE", "MAX_TERMS", "MAX_EXPONENT", "MAX_LATTICE",
    "MAX_LATTICE_TOTAL", "MAX_LATTICE_TERMS", "MAX_PRODUCT_TERMS",
    "MAX_INT_DIGITS", "MAX_NUMBER_BITS", "MAX_DOCUMENT_WORK", "PLAIN_PER_NODE", "ExprBudget", "work",
]

# ------------------------------------------------------------------------------ tokens

# Token kinds; punctuation uses the character itself. ``symbol`` and ``integer`` match the
# two calls srepr writes most, whole; anything they do not match exactly is read by the
# general grammar instead, with the same checks. ``op`` is an operator character of sympy's
# printed form (read by :mod:`pt2serde.format.legacy_expr`; refused here like any ``bad`` one).
_NAME, _INT, _FLOAT, _STR, _END, _BAD, _SYMBOL, _INTEGER, _OP = (
    "name", "int", "float", "str", "end", "bad", "symbol", "integer", "op")
_REFUSED = (_BAD, _OP)  # characters srepr never writes
_STRING = r"""'(?:[^'\\\r\n]|\\['"\\])*'|"(?:[^"\\\r\n]|\\['"\\])*\""""
_TOKEN_RE = re.compile(
    r"""[ \t\r\n]*(?:
      (?P<symbol>Symbol\([ ]*(?:STRING)
                 (?:[ ]*,[ ]*[A-Za-z_][A-Za-z0-9_]*[ ]*=[ ]*(?:True|False))*[ ]*\))
    | (?P<integer>Integer\([ ]*[+-]?[0-9]+[ ]*\))
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<float>[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?[0-9]+[eE][+-]?[0-9]+)
    | (?P<int>[+-]?[0-9]+)
    | (?P<str>STRING)
    | (?P<punct>[(),=-])
    | (?P<op>[+*/<>&|~!])
    | (?P<end>\Z)
    | (?P<bad>.)
    )""".replace("STRING", _STRING),
    re.VERBOSE | re.ASCII | re.DOTALL,
)
_STRING_RE = re.compile(_STRING)
_KWARG_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ ]*=[ ]*(True|False)", re.ASCII)
_DIGITS_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_UNESCAPE_RE = re.compile(r"\\(['\"\\])")
_BAD_CHAR_HINTS = {
    ".": " (attribute access is not allowed)",
    "[": " (subscripts are not allowed)",
    ":": " (lambdas, slices and annotations are not allowed)",
    **{op: " (operators are not allowed: srepr writes calls)" for op in "+*/%<>&|~^@!"},
}

Token = tuple  # (kind, text, offset)


def tokenize(text: str, start: int = 0) -> Iterator[Token]:
    """Tokens ``(kind, text, offset)`` of ``text`` from offset ``start``, ending with an ``end``
    token or at the first ``bad`` character; punctuation (``( ) , = -``) has itself as kind."""
    for m in _TOKEN_RE.finditer(text, start):
        kind = m.lastgroup
        token = m.group(kind)
        yield (token if kind == "punct" else kind, token, m.start(kind))
        if kind == _END or kind == _BAD:
            return


def _unexpected(token: Token, expected: str) -> SerializeError:
    kind, text, offset = token
    if kind in _REFUSED:
        if text in "'\"":
            return expr_error("unterminated string or unsupported escape sequence", offset)
        return expr_error(f"unexpected character {text!r}{_BAD_CHAR_HINTS.get(text, '')}", offset)
    if kind == _END:
        return expr_error(f"expected {expected}, found end of input", offset)
    return expr_error(f"expected {expected}, found {text if len(text) <= 40 else text[:40] + '...'!r}", offset)


def _string_literal(text: str) -> str:
    body = text[1:-1]
    return _UNESCAPE_RE.sub(r"\1", body) if "\\" in body else body


def parse(text: str, *, max_chars: int = MAX_CHARS, max_depth: int = MAX_DEPTH,
          budget: ExprBudget | None = None, path: str | None = None) -> Node:
    """The checked syntax tree of one srepr string; ``SerializeError`` naming the offset if not.

    With ``budget`` (the :class:`ExprBudget` of the document the string comes from), the
    expression's :func:`work` is charged to it (once per distinct string), and the error
    names ``path`` (where the string is in the document) when the budget is spent.
    """
    if budget is not None:
        return budget.parse(text, path, max_chars=max_chars, max_depth=max_depth)
    return _parse_with_info(text, max_chars, max_depth)[0]


def _parse_with_info(text: str, max_chars: int, max_depth: int,
                     symbols: dict[str, tuple] | None = None) -> tuple[Node, tuple]:
    """The checked tree of ``text`` and its bounds; ``symbols``: the bounds of symbols that
    stand for an expression (:meth:`ExprBudget.assert_condition`), used for those symbols'
    leaves, so that the caps and the charge see the expression as written out."""
    if not isinstance(text, str):
        raise SerializeError(f"invalid symbolic expression: expected a string, got {type(text).__name__}")
    if len(text) > max_chars:
        raise SerializeError(
            f"invalid symbolic expression: {len(text)} characters long, the limit is {max_chars}")
    node, info = _parse_tokens(list(tokenize(text)), max_depth, symbols or None)
    check_root(node)
    return node, info


_EQUALITIES = ("Eq", "Equality")


def _children(node: Node, text: str, end: int) -> list[tuple[Node, str, int]]:
    """``(child, its text, where its text ends)`` of a call node whose text ends at ``end`` (its
    closing parenthesis): a child runs from its offset to the next child's (or the parenthesis)."""
    args = node[2]
    out = []
    for j, arg in enumerate(args):
        stop = args[j + 1][-1] if j + 1 < len(args) else end
        piece = text[arg[-1]:stop].rstrip()
        if j + 1 < len(args):
            piece = piece.rstrip(",").rstrip()
        out.append((arg, piece, arg[-1] + len(piece) - 1))
    return out


def equalities(tree: Node, text: str) -> list[tuple[str, str]]:
    """``(left, right)`` texts of every equality in a checked condition, alone or under
    ``And``/``Or``/``Not``: what torch's ``ShapeEnv`` may solve for a symbol when the condition is
    asserted, and substitute into every later expression (it handles each ``And`` argument on its
    own, and rewrites an equality before solving it: ``Eq(2*s1, s0*s0)``, ``Eq(s1 - s0**2, 0)``)."""
    out: list[tuple[str, str]] = []
    stack = [(tree, len(text.rstrip()) - 1)]  # offsets are the text's: each node with where it ends
    while stack:
        node, end = stack.pop()
        if node[0] != "call" or node[3]:
            continue
        if node[1] in _EQUALITIES and len(node[2]) == 2:
            (_, left, _), (_, right, _) = _children(node, text, end)
            out.append((left, right))
        elif node[1] in ("And", "Or", "Not"):
            stack.extend((child, stop) for child, _, stop in reversed(_children(node, text, end)))
    return out


def symbol_names(tree: Node) -> set[str]:
    """The names of the symbols of a checked tree."""
    names, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if node[0] == "call":
            if node[1] == "Symbol":
                names.add(node[2][0][1])
            else:
                stack.extend(node[2])
    return names


_EXPR_WORK = 4  # what any distinct expression costs (a SymNode, its hint, its ranges)


def work(text: str) -> int:
    """The work units :class:`ExprBudget` charges for one expression string (refused: raises)."""
    return _work(_parse_with_info(text, MAX_CHARS, MAX_DEPTH)[1])


def _work(info: tuple) -> int:
    # a fixed charge, values built, terms of the whole once every symbol is shifted, and what
    # functions redo on theirs
    return _EXPR_WORK + info[0] + info[7] + info[8]


class ExprBudget:
    """The expression work budget of one document (one ``load``, one ``validate``).

    Each expression is bounded by the grammar's caps, but sympy works on every distinct
    expression of a document in turn, so a document of many near-cap expressions would
    still cost minutes. Everything that parses the expressions of one document (``load``'s
    :class:`pt2serde.bridge.symbolic.SymbolicContext`, ``validate``'s
    :func:`pt2serde.format.check.check_program`) charges this one object; identical strings are
    charged once (their checked trees are kept and handed out again). The first charge past
    :attr:`limit` raises a ``SerializeError`` naming the budget and the path; after it, the
    budget only checks the grammar (``validate`` goes on listing other problems).

    The charge of an expression, :func:`work`, is its values, plus the terms of its full
    expansion once every symbol ``s`` is replaced by ``s' + offset`` (what torch's
    ``ShapeEnv`` does to evaluate any expression without a hint: ``(s0*s1*...*s9)`` becomes
    1024 terms), plus, for every function call over symbols (``Mod``, ``FloorDiv``,
    ``Max`` ...), the shifted terms of its arguments times their degree (times the
    arity for ``Max``/``Min``), as sympy re-evaluates the function on them, and for ``Max``/``Min``
    twice the values of their arguments per other argument (sympy compares them pairwise, each
    comparison querying both trees and the functions in them). Measured cost on the 2-core dev
    box (shared): at most 0.58 ms of CPU a unit, cold, over the forms of
    ``tests/hostile/cases_expressions.py`` (``Min`` of padded window counts, Min/Max chains,
    lattices of sums), so a document at the cap loads in under 0.9 s. Real programs are charged
    at most 45 units (``tests/bridge/test_exprparse.py::test_real_documents_are_far_under_the_budget``).

    ``plain``: how many plain expressions (:func:`~pt2serde.format.expr_rules.plain`, of at
    most ``PLAIN_MAX_WORK`` units, numbers of at most ``PLAIN_MAX_BITS`` bits) are charged to
    an allowance instead of the units: the document's :data:`PLAIN_PER_NODE` per graph node
    (:func:`pt2serde.format.check.expression_budget`), or a function that counts it, called at
    the first plain expression. Symbols and their sums, products and comparisons cost sympy
    little, but data-dependent programs make a few per node (an MoE layer: ``u0``, ``u0 >= 0``,
    ``u0 < n`` per expert), which a fixed budget refused on real programs. Past the allowance
    they charge units again.

    Linear expressions (:func:`~pt2serde.format.expr_rules.linear`: sums of symbols times
    integers of degree 1, numbers of at most ``PLAIN_MAX_BITS`` bits) beyond the allowance are
    charged their units divided by :data:`LINEAR_DIVISOR` (at least :data:`LINEAR_MIN_WORK`),
    and order comparisons of two :data:`LINEAR_ORDER_WORK` plus their units divided by
    :data:`LINEAR_ORDER_DIVISOR`: what they cost sympy and torch per unit, measured, is far
    below the rate of the cap. ``torch.split``/``narrow`` by ``tolist()`` make sums of up to
    N symbols for N pieces, which the full price refused from about 24 pieces.
    """

    __slots__ = ("limit", "used", "exceeded", "plain", "plain_used", "replaced", "hint_use", "_trees", "_shifted",
                 "_sizes")

    def __init__(self, limit: int | None = None, plain: int | Callable[[], int] = 0) -> None:
        self.limit = MAX_DOCUMENT_WORK if limit is None else limit
        self.used = 0
        self.exceeded = False
        self.plain = plain  # or a function that counts it, called at the first plain expression
        self.plain_used = 0
        #: symbol -> bounds of the expression an asserted equality may replace it by (assert_condition)
        self.replaced: dict[str, tuple] = {}
        #: which stored hints load gives torch (an ``expr_hints.HintUse``; None: every stored one)
        self.hint_use = None
        self._trees: dict[str, Node] = {}
        self._shifted: dict[str, int] = {}  # text -> terms of its expansion once every symbol is shifted
        self._sizes: set[tuple[str, ...]] = set()  # the symbolic sizes of tensors charged already

    def __repr__(self) -> str:
        allowance = "?" if callable(self.plain) else self.plain  # not counted yet
        return (f"<ExprBudget used={self.used} limit={self.limit} plain={self.plain_used}/{allowance} "
                f"distinct={len(self._trees)}>")

    def parse(self, text: str, path: str | None = None, *, max_chars: int = MAX_CHARS,
              max_depth: int = MAX_DEPTH) -> Node:
        """The checked tree of ``text``, charged once to this budget."""
        tree = self._trees.get(text) if isinstance(text, str) else None
        if tree is not None:
            return tree
        tree, info = _parse_with_info(text, max_chars, max_depth)
        if not self.exceeded:
            if self.replaced:  # charged as written out: torch substitutes the replacements
                info = self._written_out(text, max_chars, max_depth, path)
            cost = _work(info)
            if cost <= PLAIN_MAX_WORK and info[3] <= PLAIN_MAX_BITS and plain(tree):
                if callable(self.plain):
                    self.plain = self.plain()
                if self.plain_used < self.plain:
                    self.plain_used += 1
                    cost = 0
            form = linear(tree) if cost and info[1] <= 1 and info[3] <= PLAIN_MAX_BITS else None
            if form == "sum":  # a sum of symbols times integers: cheap per term
                cost = max(LINEAR_MIN_WORK, -(-cost // LINEAR_DIVISOR))
            elif form == "order":  # a comparison of two: torch refines the ranges of its symbols
                cost = LINEAR_ORDER_WORK + -(-cost // LINEAR_ORDER_DIVISOR)
            self._charge(cost, path, "this one")
        self._trees[text] = tree
        self._shifted[text] = info[7]
        return tree

    @property
    def parsed(self) -> int:
        """How many distinct expressions this budget has parsed."""
        return len(self._trees)

    def _charge(self, cost: int, path: str | None, what: str) -> None:
        if self.used + cost > self.limit:
            self.exceeded = True
            where = f" - at `{path}`" if path else ""
            problem = (f"invalid symbolic expression: the document's expressions need more work than the "
                       f"expression budget of {self.limit} units ({what} {cost}, {self.used} before it; "
                       f"{len(self._trees)} distinct expressions"
                       + (f"; besides, {self.plain_used} plain ones went to the allowance of {self.plain}, "
                          f"{PLAIN_PER_NODE} per graph node" if self.plain_used else "") + ")")
            raise SerializeError(f"{problem}{where}", path=path, problem=problem)
        self.used += cost

    def charge_sizes(self, texts: Sequence[str | tuple[str, ...]], path: str | None = None,
                     what: str = "sizes") -> None:
        """Charge the symbolic sizes of one tensor, each parsed already (:meth:`parse`): torch
        multiplies them (its number of elements, its contiguous strides) and expands the
        product with every symbol shifted when it evaluates it (``run_decompositions``
        retracing the program), so a tensor of 12 symbolic dimensions makes 4096 terms (6 s), of
        2 sums of 64 symbols 4225 (9.5 s). Past :data:`SIZE_FREE_TERMS` terms, each costs
        :data:`SIZE_TERM_WORK` units; the same sizes on many tensors are charged once. A tuple
        of texts in place of one stands for a size that is any of them (their terms added):
        a dimension of a broadcast of several tensors."""
        key = tuple(texts)
        if self.exceeded or key in self._sizes:
            return
        self._sizes.add(key)
        terms = 1
        for text in texts:
            n = self._shifted.get(text, 1) if type(text) is str else sum(self._shifted.get(t, 1) for t in text)
            terms = min(terms * n, 1 << 20)
        if terms > SIZE_FREE_TERMS:
            self._charge((terms - SIZE_FREE_TERMS) * SIZE_TERM_WORK, path,
                         f"{what} whose product torch expands to {terms} terms:")

    def _written_out(self, text: str, max_chars: int, max_depth: int, path: str | None) -> tuple:
        try:
            return _parse_with_info(text, max_chars, max_depth, self.replaced)[1]
        except SerializeError as e:
            names = ", ".join(sorted(self.replaced)[:5]) + (", ..." if len(self.replaced) > 5 else "")
            problem = (f"invalid symbolic expression: with the symbols asserted equalities replace ({names}) "
                       f"written out, {str(e).removeprefix('invalid symbolic expression: ')}")
            raise SerializeError(problem + (f" - at `{path}`" if path else ""), path=path, problem=problem) from None

    def assert_condition(self, text: str, path: str | None = None) -> None:
        """Note the replacements an asserted condition may make: torch's ``ShapeEnv`` solves an
        asserted equality for one of its symbols and substitutes the solution into every later
        expression, so asserted equalities compose (``s1 == s0*s0``, ``s2 == s1*s1``, ... make
        ``s0**1024`` of ten short strings). Taken at its most: every symbol of each equality
        (:func:`equalities`) not replaced yet may stand for the whole equality, ``left - right``,
        with the replacements before it written out, where that is of degree 2 or more (a
        linear one, such as ``u0 + ... + u15 == s0`` of ``torch.split``, grows no degree).
        Every expression is then charged, and held to the caps, with those symbols written out
        (all of them, whatever the order). Raises when such a replacement is over a cap. Call
        it for every asserted condition, in the order of the graph, before charging."""
        if not isinstance(text, str) or "Eq" not in text:  # no Eq/Equality call (most asserts: u0 >= 0, u0 <= n): nothing to parse
            return
        try:
            tree, _ = _parse_with_info(text, MAX_CHARS, MAX_DEPTH)
        except SerializeError:
            return  # refused when the expression itself is charged
        for left, right in equalities(tree, text):
            whole = f"Add({left}, Mul(Integer(-1), {right}))"
            try:
                sides, info = _parse_with_info(whole, MAX_CHARS + 64, MAX_DEPTH + 2)
            except SerializeError:
                continue  # not arithmetic on both sides (a condition, a bool, oo): nothing torch solves
            try:
                if self.replaced:
                    info = _parse_with_info(whole, MAX_CHARS + 64, MAX_DEPTH + 2, self.replaced)[1]
            except SerializeError as e:
                problem = (f"invalid symbolic expression: the asserted equality, with the replacements asserted "
                           f"before it written out, is refused: {str(e).removeprefix('invalid symbolic expression: ')}")
                raise SerializeError(problem + (f" - at `{path}`" if path else ""), path=path,
                                     problem=problem) from None
            if info[1] >= 2:  # a linear one grows no degree: a sum in a symbol's place costs what it has terms
                for name in sorted(symbol_names(sides) - self.replaced.keys()):
                    self.replaced[name] = info


def _parse_tokens(tokens: list[Token], max_depth: int, symbols: dict[str, tuple] | None = None) -> tuple[Node, tuple]:
    """Iterative (an explicit stack of open calls): nesting never costs Python frames.
    ``symbols``: bounds that replace a symbol leaf's own (see :func:`_parse_with_info`)."""
    stack: list[PartialCall] = []
    i = 0
    while True:
        kind, text, offset = tokens[i]
        if kind == _NAME and stack and tokens[i + 1][0] == "=":
            stack[-1].pending = (text, offset)
            i += 2
            kind, text, offset = tokens[i]
        i += 1
        if kind == _SYMBOL or kind == _INTEGER:
            if len(stack) >= max_depth:
                raise expr_error(f"expression nested deeper than {max_depth} calls", offset)
            node, info = _fast_call(kind, text, offset)
        elif kind == _NAME:
            if tokens[i][0] == "(":
                if text not in CALLS:
                    raise expr_error(f"{text} is not callable" if text in ATOMS or text in LITERALS
                                 else f"unknown function {text!r}", offset)
                if len(stack) >= max_depth:
                    raise expr_error(f"expression nested deeper than {max_depth} calls", offset)
                stack.append(PartialCall(text, offset))
                i += 1
                if tokens[i][0] != ")":
                    continue
                i += 1
                node, info = finish_call(stack.pop())
            else:
                node, info = _bare_name(text, offset, tokens[i]), LEAF_BOUNDS
        elif kind == _INT:
            node, info = ("num", text, offset), int_bounds(text, offset)
        elif kind == _FLOAT:
            node, info = ("num", text, offset), LEAF_BOUNDS
        elif kind == _STR:
            node, info = ("str", _string_literal(text), offset), LEAF_BOUNDS
        elif kind == "-":
            follower = tokens[i]
            if not (follower[0] == _NAME and follower[1] in NEGATABLE):
                raise _unexpected(follower, "oo or int_oo after a unary minus")
            node, info = ("neg", ("name", follower[1], follower[2]), offset), LEAF_BOUNDS
            i += 1
        else:
            raise _unexpected(tokens[i - 1], "a value")
        # hand the value to the open call; each ')' closes and finishes one call
        while True:
            if symbols is not None and node[0] == "call" and node[1] == "Symbol":
                info = symbols.get(node[2][0][1], info)
            if not stack:
                if tokens[i][0] != _END:
                    raise _unexpected(tokens[i], "end of input")
                return node, info
            call = stack[-1]
            call.add(node, info)
            kind = tokens[i][0]
            i += 1
            if kind == ",":
                break
            if kind != ")":
                raise _unexpected(tokens[i - 1], f"',' or ')' in {call.name}(...)")
            stack.pop()
            node, info = finish_call(call)


_FAST: dict[str, tuple[Node, tuple]] = {}  # whole Symbol(...) tokens already checked


def _fast_call(kind: str, text: str, offset: int) -> tuple[Node, tuple]:
    """A whole ``Integer(...)`` or ``Symbol(...)`` token (the common case, read in one step)."""
    if kind == _INTEGER:
        m = _DIGITS_RE.search(text)
        at = offset + m.start()
        return ("call", "Integer", (("num", m.group(), at),), {}, offset), int_bounds(m.group(), at)
    cached = _FAST.get(text)
    if cached is not None:
        return ("call", "Symbol", cached[0][2], cached[0][3], offset), cached[1]
    m = _STRING_RE.search(text)
    call = PartialCall("Symbol", offset)
    call.add(("str", _string_literal(m.group()), offset + m.start()), LEAF_BOUNDS)
    for kw in _KWARG_RE.finditer(text, m.end()):
        call.pending = (kw.group(1), offset + kw.start())
        call.add(("name", kw.group(2), offset + kw.start(2)), LEAF_BOUNDS)
    result = finish_call(call)
    if len(_FAST) < 4096:
        _FAST[text] = result
    return result


def _bare_name(name: str, offset: int, follower: Token) -> Node:
    if name in ATOMS or name in LITERALS:
        return ("name", name, offset)
    if name in CALLS:
        if follower[0] in _REFUSED:
            raise _unexpected(follower, "'('")
        raise expr_error(f"{name} must be called with arguments", offset)
    raise expr_error(f"unknown name {name!r}", offset)



def pretty(text: str, limit: int = 200) -> str:
    """``text`` (an srepr string) as ``str(expr)`` would print it; the raw text if refused."""
    try:
        out = render(parse(text))
    except SerializeError:
        out = text
    return out if len(out) <= limit else out[:limit - 3] + "..."
