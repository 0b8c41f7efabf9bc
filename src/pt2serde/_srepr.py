"""Reading symbolic-shape strings (sympy ``srepr``) for display and checks, without sympy.

Program documents store symbolic sizes as ``sympy.srepr`` text, e.g.
``Mul(Integer(2), Symbol('s17', positive=True, integer=True))``. The loader builds sympy
objects from it (:mod:`pt2serde.exprparse`); the torch-free commands only need to show
it (``2*s17``), list its symbols and tell whether it is well formed. This module parses
the same grammar into plain tuples and never evaluates anything::

    value := NAME '(' [arg (',' arg)*] ')' | NAME | ['-'] NUMBER | STRING
    arg   := [NAME '='] value

:func:`render` prints the way ``str(sympy_expr)`` prints the common cases (so that a
rendered size matches the keys of ``range_constraints``, which PyTorch writes with
``str``); anything unusual is printed as ``Name(args)``.
"""

from __future__ import annotations

import re

from .errors import SerializeError

__all__ = ["parse", "render", "symbols", "pretty", "MAX_CHARS"]

MAX_CHARS = 100_000
MAX_DEPTH = 200

_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
    r"|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(?P<punct>[(),=-]))"
)

# A parsed node: ("call", name, args, kwargs) | ("name", text) | ("num", text) | ("str", text)
Node = tuple


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise SerializeError(f"unexpected character {text[pos]!r} at offset {pos} of a symbolic expression")
        kind = m.lastgroup
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


def parse(text: str) -> Node:
    """The syntax tree of one srepr string; ``SerializeError`` (with the offset) if malformed."""
    if not isinstance(text, str):
        raise SerializeError("symbolic expression is not a string")
    if len(text) > MAX_CHARS:
        raise SerializeError(f"symbolic expression is {len(text)} characters, over the limit of {MAX_CHARS}")
    toks = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str, int] | None:
        return toks[pos] if pos < len(toks) else None

    def take(expected: str | None = None) -> tuple[str, str, int]:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise SerializeError("symbolic expression ends too early")
        if expected is not None and tok[1] != expected:
            raise SerializeError(f"expected {expected!r} at offset {tok[2]} of a symbolic expression, got {tok[1]!r}")
        pos += 1
        return tok

    def value(depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise SerializeError(f"symbolic expression is nested deeper than {MAX_DEPTH} levels")
        kind, text_, at = take()
        if kind == "num":
            return ("num", text_)
        if kind == "str":
            return ("str", text_[1:-1])
        if kind == "punct" and text_ == "-":
            inner = value(depth + 1)
            return ("neg", inner)
        if kind != "name":
            raise SerializeError(f"unexpected {text_!r} at offset {at} of a symbolic expression")
        nxt = peek()
        if nxt is None or nxt[1] != "(":
            return ("name", text_)
        take("(")
        args: list[Node] = []
        kwargs: dict[str, Node] = {}
        if peek() is not None and peek()[1] == ")":
            take(")")
            return ("call", text_, args, kwargs)
        while True:
            tok = peek()
            if tok is not None and tok[0] == "name" and pos + 1 < len(toks) and toks[pos + 1][1] == "=":
                take()
                take("=")
                kwargs[tok[1]] = value(depth + 1)
            else:
                if kwargs:
                    raise SerializeError(f"positional argument after a keyword at offset {tok[2] if tok else len(text)}")
                args.append(value(depth + 1))
            sep = take()
            if sep[1] == ")":
                return ("call", text_, args, kwargs)
            if sep[1] != ",":
                raise SerializeError(f"expected ',' or ')' at offset {sep[2]} of a symbolic expression, got {sep[1]!r}")

    tree = value(0)
    if pos != len(toks):
        raise SerializeError(f"unexpected {toks[pos][1]!r} at offset {toks[pos][2]} after the end of a symbolic expression")
    return tree


# ---------------------------------------------------------------- rendering

_INFIX = {"StrictLessThan": "<", "LessThan": "<=", "StrictGreaterThan": ">", "GreaterThan": ">="}
_ATOMS = {"oo": "oo", "int_oo": "int_oo", "zoo": "zoo", "nan": "nan", "true": "True", "false": "False",
          "BooleanTrue": "True", "BooleanFalse": "False", "Infinity": "oo", "NegativeInfinity": "-oo",
          "IntInfinity": "int_oo", "NegativeIntInfinity": "-int_oo", "NaN": "nan", "Zero": "0",
          "One": "1", "NegativeOne": "-1", "Half": "1/2"}
# precedence: higher binds tighter
_P_ADD, _P_MUL, _P_POW, _P_ATOM = 1, 2, 3, 4


def _r(node: Node) -> tuple[str, int]:
    kind = node[0]
    if kind == "num":
        return node[1], (_P_ADD if node[1].startswith("-") else _P_ATOM)
    if kind == "str":
        return node[1], _P_ATOM
    if kind == "name":
        return _ATOMS.get(node[1], node[1]), _P_ATOM
    if kind == "neg":
        text, prec = _r(node[1])
        return "-" + (text if prec >= _P_MUL else f"({text})"), _P_ADD
    _, name, args, kwargs = node
    if name == "Symbol" and args and args[0][0] == "str":
        return args[0][1], _P_ATOM
    if name == "Integer" and len(args) == 1:
        return _r(args[0])
    if name == "Float" and args:
        text = args[0][1]
        return text, (_P_ADD if text.startswith("-") else _P_ATOM)
    if name == "Rational" and len(args) == 2:
        return f"{_r(args[0])[0]}/{_r(args[1])[0]}", _P_MUL
    if name in _ATOMS and not args:
        return _ATOMS[name], _P_ATOM
    if name == "Add" and args:
        parts = []
        for i, a in enumerate(args):
            text, _ = _r(a)
            if i and text.startswith("-"):
                parts.append(f" - {text[1:]}")
            else:
                parts.append(text if not i else f" + {text}")
        return "".join(parts), _P_ADD
    if name == "Mul" and args:
        if len(args) >= 2 and _r(args[0])[0] == "-1":
            rest = _r(("call", "Mul", args[1:], {}) if len(args) > 2 else args[1])
            return "-" + (rest[0] if rest[1] >= _P_MUL else f"({rest[0]})"), _P_ADD
        num, den = [], []
        for a in args:
            if a[0] == "call" and a[1] == "Pow" and len(a[2]) == 2 and _r(a[2][1])[0] == "-1":
                text, prec = _r(a[2][0])
                den.append(text if prec > _P_MUL else f"({text})")
                continue
            text, prec = _r(a)
            num.append(text if prec >= _P_MUL and (not text.startswith("-") or not num) else f"({text})")
        out = "*".join(num) or "1"
        if den:
            out += "/" + (den[0] if len(den) == 1 else "(" + "*".join(den) + ")")
        return out, _P_MUL
    if name == "Pow" and len(args) == 2:
        base, bprec = _r(args[0])
        exp, eprec = _r(args[1])
        if exp == "-1":
            return f"1/{base if bprec >= _P_POW else '(' + base + ')'}", _P_MUL
        return (f"{base if bprec > _P_POW else '(' + base + ')'}**"
                f"{exp if eprec > _P_POW and not exp.startswith('-') else '(' + exp + ')'}"), _P_POW
    if name == "FloorDiv" and len(args) == 2:
        a, ap = _r(args[0])
        b, bp = _r(args[1])
        return f"({a if ap >= _P_ATOM else '(' + a + ')'}//{b if bp >= _P_ATOM else '(' + b + ')'})", _P_ATOM
    if name in _INFIX and len(args) == 2:
        return f"{_r(args[0])[0]} {_INFIX[name]} {_r(args[1])[0]}", 0
    inner = [_r(a)[0] for a in args] + [f"{k}={_r(v)[0]}" for k, v in kwargs.items()]
    return f"{name}({', '.join(inner)})", _P_ATOM


def render(node: Node) -> str:
    return _r(node)[0]


def pretty(text: str, limit: int = 200) -> str:
    """``text`` (an srepr string) as ``str(expr)`` would print it; the raw text if malformed."""
    try:
        out = render(parse(text))
    except (SerializeError, RecursionError):
        out = text
    return out if len(out) <= limit else out[:limit - 3] + "..."


def symbols(node: Node) -> list[str]:
    """Names of the ``Symbol``s in a tree, in order of first appearance."""
    found: list[str] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n[0] == "call":
            if n[1] == "Symbol" and n[2] and n[2][0][0] == "str":
                if n[2][0][1] not in found:
                    found.append(n[2][0][1])
                continue
            stack.extend(reversed(list(n[2]) + list(n[3].values())))
        elif n[0] == "neg":
            stack.append(n[1])
    return found
