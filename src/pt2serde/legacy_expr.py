"""Symbolic expressions of schema 7.x documents, rewritten in today's form (torch-free).

Documents of schema major 7 (PyTorch 2.5) store expressions as sympy's *printed* form,
``2*s0``, ``(s0//2) + 1``, ``u1 >= 1``; PyTorch read them back with ``sympy.sympify``
(``eval``). Schema 8 stores sympy's ``srepr`` form, which pt2serde reads with its own
grammar (:mod:`pt2serde.exprparse`). This module parses the printed form with a small
precedence-climbing parser (never ``eval``) and writes the equivalent ``srepr``-style text
for the upgrader. Symbols get the assumptions PyTorch gives their kind: ``s*`` sizes are
positive integers, ``u*`` unbacked integers, ``zf*`` floats are real.
"""

from __future__ import annotations

import re

from .errors import SerializeError

__all__ = ["printed_to_srepr", "MAX_LENGTH"]

MAX_LENGTH = 100_000
MAX_DEPTH = 200

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|//|<=|>=|==|!=|[-+*/()<>,&|~]))"
)
_SYMBOL_KINDS = (("zuf", ""), ("zf", ", real=True"), ("s", ", positive=True, integer=True"), ("u", ", integer=True"))
_ATOMS = {"oo": "oo", "zoo": "zoo", "nan": "nan", "int_oo": "int_oo", "True": "true", "False": "false"}
_RELATIONS = {"<": "StrictLessThan", "<=": "LessThan", ">": "StrictGreaterThan", ">=": "GreaterThan",
              "==": "Equality", "!=": "Unequality"}
# the srepr form of ``a <op> b`` for each binary operator
_COMBINE = {"+": "Add({a}, {b})", "-": "Add({a}, Mul(Integer(-1), {b}))", "*": "Mul({a}, {b})",
            "/": "Mul({a}, Pow({b}, Integer(-1)))", "//": "FloorDiv({a}, {b})", "**": "Pow({a}, {b})",
            "&": "And({a}, {b})", "|": "Or({a}, {b})",
            **{op: name + "({a}, {b})" for op, name in _RELATIONS.items()}}
# binding power of each binary operator (higher binds tighter)
_BINARY = {"|": 1, "&": 2, "<": 4, "<=": 4, ">": 4, ">=": 4, "==": 4, "!=": 4,
           "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "**": 8}


def _symbol(name: str) -> str:
    for prefix, assumptions in _SYMBOL_KINDS:
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return f"Symbol('{name}'{assumptions})"
    return f"Symbol('{name}')"


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_LENGTH:
            raise SerializeError(f"expression of {len(text)} characters is over the limit of {MAX_LENGTH}")
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        at = 0
        while at < len(text):
            m = _TOKEN.match(text, at)
            if m is None or m.end() == at:
                if text[at:].strip() == "":
                    break
                raise SerializeError(f"unexpected character {text[at]!r} at offset {at} in expression {text!r}")
            kind = m.lastgroup
            if kind is None:
                break
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            at = m.end()
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise SerializeError(f"expression {self.text!r} ends too early")
        self.i += 1
        return tok

    def expect(self, op: str) -> None:
        kind, value, at = self.take()
        if kind != "op" or value != op:
            raise SerializeError(f"expected {op!r} at offset {at} in expression {self.text!r}, got {value!r}")

    def parse(self) -> str:
        out = self.expr(0)
        if self.peek() is not None:
            raise SerializeError(f"unexpected {self.peek()[1]!r} at offset {self.peek()[2]} in {self.text!r}")
        return out

    def expr(self, min_power: int) -> str:
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
            left = self.combine(op, left, right)
        self.depth -= 1
        return left

    @staticmethod
    def combine(op: str, a: str, b: str) -> str:
        return _COMBINE[op].format(a=a, b=b)  # the operands go in as values: braces in them are inert

    def unary(self) -> str:
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in ("-", "~", "+"):
            self.take()
            operand = self.expr(7 if tok[1] != "~" else 3)  # -x**2 is -(x**2)
            if tok[1] == "+":
                return operand
            if tok[1] == "~":
                return f"Not({operand})"
            if operand in ("oo", "int_oo"):
                return f"-{operand}"
            return f"Mul(Integer(-1), {operand})"
        return self.atom()

    def atom(self) -> str:
        kind, value, at = self.take()
        if kind == "num":
            if "." in value or "e" in value.lower():
                return f"Float('{value}', precision=53)"
            return f"Integer({value})"
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
                return f"{value}({', '.join(args)})"
            return _ATOMS.get(value) or _symbol(value)
        if value == "(":
            inner = self.expr(0)
            self.expect(")")
            return inner
        raise SerializeError(f"unexpected {value!r} at offset {at} in expression {self.text!r}")


def printed_to_srepr(text: str) -> str:
    """``2*s0 + 1`` -> ``Add(Mul(Integer(2), Symbol('s0', positive=True, integer=True)), Integer(1))``.

    Function names are copied through; whether they are allowed is decided later by the
    expression reader, which knows the allowlist.
    """
    if not isinstance(text, str):
        raise SerializeError(f"expression must be a string, got {type(text).__name__}")
    return _Parser(text).parse()
