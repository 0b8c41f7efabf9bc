"""Symbolic expressions of schema 7.x documents, rewritten in today's form (torch-free).

Documents of schema major 7 (PyTorch 2.5) store expressions as sympy's *printed* form,
``2*s0``, ``(s0//2) + 1``, ``u1 >= 1``; PyTorch read them back with ``sympy.sympify``
(``eval``). Schema 8 stores sympy's ``srepr`` form, which pt2serde reads with its own
grammar (:mod:`pt2serde.format.expr`). This module parses the printed form with a small
precedence-climbing parser (never ``eval``) over the tokens of that grammar's tokenizer, and
writes the equivalent ``srepr``-style text for the upgrader, in time linear in the text:
operands are kept as small values and the text is written once at the end, and chains of
``+``, ``*``, ``&``, ``|`` become one call (as in sympy's own ``srepr``), so a long sum is not
nested one level per term. The result is then judged by the one expression grammar like any
other expression. Symbols get the assumptions PyTorch gives their kind: ``s*`` sizes are
positive integers, ``u*`` unbacked integers, ``zf*`` floats are real.
"""

from __future__ import annotations

from .expr import MAX_NODES, tokenize
from ..errors import SerializeError

__all__ = ["printed_to_srepr", "MAX_LENGTH"]

MAX_LENGTH = 100_000
MAX_DEPTH = 200

_SYMBOL_KINDS = (("zuf", ""), ("zf", ", real=True"), ("s", ", positive=True, integer=True"), ("u", ", integer=True"))
_ATOMS = {"oo": "oo", "zoo": "zoo", "nan": "nan", "int_oo": "int_oo", "True": "true", "False": "false"}
_RELATIONS = {"<": "StrictLessThan", "<=": "LessThan", ">": "StrictGreaterThan", ">=": "GreaterThan",
              "==": "Equality", "!=": "Unequality"}
# the srepr call for ``a <op> b`` of each binary operator; ``-`` and ``/`` wrap ``b``; the
# associative ones flatten chains (``a + b + c`` is one ``Add``), as sympy's own printing does
_COMBINE = {"+": "Add", "-": "Add", "*": "Mul", "/": "Mul", "//": "FloorDiv", "**": "Pow", "&": "And", "|": "Or",
            **_RELATIONS}
_FLAT = frozenset({"Add", "Mul", "And", "Or"})
_MINUS_ONE = ("raw", "Integer(-1)")
# binding power of each binary operator (higher binds tighter)
_BINARY = {"|": 1, "&": 2, "<": 4, "<=": 4, ">": 4, ">=": 4, "==": 4, "!=": 4,
           "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "**": 8}


def _symbol(name: str) -> str:
    for prefix, assumptions in _SYMBOL_KINDS:
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return f"Symbol('{name}'{assumptions})"
    return f"Symbol('{name}')"


# A converted value: ("raw", srepr text) or ("call", name, [values]); written out once, at
# the end (:func:`_write`), so the conversion is linear in the length of the text.
_Value = tuple


# Tokens ``(kind, text, offset)``, kind ``num``, ``name`` or ``op`` (operators and ``( ) ,``),
# read by the one expression tokenizer (:func:`pt2serde.format.expr.tokenize`), whose kinds
# are srepr's: a sign belongs to the number after it there, two-character operators are two
# tokens, and ``Integer(...)``/``Symbol(...)`` are whole tokens. ``_tokens`` regroups them.
_PUNCT = frozenset({"op", "(", ")", ",", "-", "="})  # kinds of the printed form's operators
_PAIRS = frozenset({"**", "//", "<=", ">=", "==", "!="})  # two-character operators, unspaced
_HALVES = frozenset({"=", "!"})  # operator characters never alone
_WHOLE_CALLS = {"integer": "Integer", "symbol": "Symbol"}  # srepr's whole-call tokens: read in parts


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """The printed form's tokens of ``text``, in one pass over the expression tokenizer's."""
    tokens: list[tuple[str, str, int]] = []
    append = tokens.append
    operands = 0
    last = ("", "", -1)  # the token before: two-character operators are joined to it
    start: int | None = 0
    while start is not None:
        source, start = tokenize(text, start), None
        for kind, value, at in source:
            if kind in _PUNCT:
                if last[0] == "op" and last[2] + len(last[1]) == at and last[1] + value in _PAIRS:
                    last = tokens[-1] = ("op", last[1] + value, last[2])
                    continue
            if last[1] in _HALVES:
                raise SerializeError(f"unexpected character {last[1]!r} at offset {last[2]} in expression "
                                     f"{_short(text)}")
            if kind in _PUNCT:
                last = ("op", value, at)
                append(last)
                continue
            if kind == "end":
                break
            name = _WHOLE_CALLS.get(kind)
            if name is not None:  # srepr's whole ``Integer(...)``: its name, then read on from its ``(``
                kind, value, start = "name", name, at + len(name)
            elif kind == "bad" and value.isspace():  # any whitespace separates tokens (form feed, Unicode spaces...)
                start = at + 1
                break
            elif kind == "int" or kind == "float":
                if value[0] in "+-":  # ``s0-1``: an operator, then a number
                    append(("op", value[0], at))
                    value, at = value[1:], at + 1
                kind = "num" if value[0] != "." else "bad"
            elif kind != "name":  # strings, characters of neither form
                kind = "bad"
            if kind == "bad":
                raise SerializeError(f"unexpected character {value[0]!r} at offset {at} in expression {_short(text)}")
            operands += 1
            if operands > MAX_NODES:  # each operand is at least one value of the srepr form
                raise SerializeError(f"invalid symbolic expression: expression of more than {MAX_NODES} values "
                                     f"at offset {at}")
            last = (kind, value, at)
            append(last)
            if start is not None:
                break
    return tokens


def _short(text: str) -> str:
    return repr(text) if len(text) <= 80 else repr(text[:77] + "...")


def _write(value: _Value) -> str:
    """The srepr text of a converted value (iterative: deep values cost no Python frames)."""
    out: list[str] = []
    stack: list[_Value | str] = [value]
    while stack:
        item = stack.pop()
        if type(item) is str:
            out.append(item)
        elif item[0] == "raw":
            out.append(item[1])
        else:
            out.append(item[1] + "(")
            stack.append(")")
            args = item[2]
            for k in range(len(args) - 1, -1, -1):
                stack.append(args[k])
                if k:
                    stack.append(", ")
    return "".join(out)


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_LENGTH:
            raise SerializeError(f"expression of {len(text)} characters is over the limit of {MAX_LENGTH}")
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise SerializeError(f"expression {_short(self.text)} ends too early")
        self.i += 1
        return tok

    def expect(self, op: str) -> None:
        kind, value, at = self.take()
        if kind != "op" or value != op:
            raise SerializeError(f"expected {op!r} at offset {at} in expression {_short(self.text)}, got {value!r}")

    def parse(self) -> str:
        out = self.expr(0)
        if self.peek() is not None:
            raise SerializeError(f"unexpected {self.peek()[1]!r} at offset {self.peek()[2]} in {_short(self.text)}")
        return _write(out)

    def expr(self, min_power: int) -> _Value:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SerializeError(f"expression {self.text[:60]!r}... is nested too deeply")
        left = self.unary()
        while (tok := self.peek()) is not None and tok[0] == "op" and tok[1] in _BINARY:
            op = tok[1]
            power = _BINARY[op]
            if power < min_power:
                break
            self.take()
            right = self.expr(power if op == "**" else power + 1)  # ** is right-associative
            left = _combine(op, left, right)
        self.depth -= 1
        return left

    def unary(self) -> _Value:
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in ("-", "~", "+"):
            self.take()
            operand = self.expr(7 if tok[1] != "~" else 3)  # -x**2 is -(x**2)
            if tok[1] == "+":
                return operand
            if tok[1] == "~":
                return ("call", "Not", [operand])
            if operand[0] == "raw" and operand[1] in ("oo", "int_oo"):
                return ("raw", "-" + operand[1])
            return ("call", "Mul", [_MINUS_ONE, operand])
        return self.atom()

    def atom(self) -> _Value:
        kind, value, at = self.take()
        if kind == "num":
            if "." in value or "e" in value.lower():
                return ("raw", f"Float('{value}', precision=53)")
            return ("raw", f"Integer({value})")
        if kind == "name":
            nxt = self.peek()
            if nxt is not None and nxt[0] == "op" and nxt[1] == "(":
                self.take()
                args = []
                if not (self.peek() and self.peek()[1] == ")"):
                    args.append(self.expr(0))
                    while self.peek() and self.peek()[1] == ",":
                        self.take()
                        args.append(self.expr(0))
                self.expect(")")
                return ("call", value, args)
            return ("raw", _ATOMS.get(value) or _symbol(value))
        if value == "(":
            inner = self.expr(0)
            self.expect(")")
            return inner
        raise SerializeError(f"unexpected {value!r} at offset {at} in expression {_short(self.text)}")


def _combine(op: str, a: _Value, b: _Value) -> _Value:
    """``a <op> b`` as a value, in constant time (a chain extends the call ``a`` already is)."""
    name = _COMBINE[op]
    if op == "-":
        b = ("call", "Mul", [_MINUS_ONE, b])
    elif op == "/":
        b = ("call", "Pow", [b, _MINUS_ONE])
    if name in _FLAT and a[0] == "call" and a[1] == name:
        a[2].append(b)  # values are never shared: extending in place is safe
        return a
    return ("call", name, [a, b])


def printed_to_srepr(text: str) -> str:
    """``2*s0 + 1`` -> ``Add(Mul(Integer(2), Symbol('s0', positive=True, integer=True)), Integer(1))``.

    Function names are copied through; whether they are allowed is decided later by the
    expression reader, which knows the allowlist.
    """
    if not isinstance(text, str):
        raise SerializeError(f"expression must be a string, got {type(text).__name__}")
    return _Parser(text).parse()
