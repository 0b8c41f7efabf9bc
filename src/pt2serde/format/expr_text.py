"""Symbolic expression trees (:mod:`pt2serde.format.expr`) printed as text, torch-free.

:func:`render` prints a tree the way ``str(sympy_expr)`` prints the common cases (so that
a rendered size matches the keys of ``range_constraints``, which PyTorch writes with
``str``), in time linear in the tree; anything unusual is printed as ``Name(args)``.
:func:`symbols` lists the names of a tree's symbols.
"""

from __future__ import annotations

from .expr_rules import Node

__all__ = ["render", "symbols"]

_INFIX = {"StrictLessThan": "<", "LessThan": "<=", "StrictGreaterThan": ">", "GreaterThan": ">="}
_ATOM_TEXT = {"oo": "oo", "int_oo": "int_oo", "zoo": "zoo", "nan": "nan", "true": "True", "false": "False",
              "BooleanTrue": "True", "BooleanFalse": "False", "Infinity": "oo", "NegativeInfinity": "-oo",
              "IntInfinity": "int_oo", "NegativeIntInfinity": "-int_oo", "NaN": "nan", "Zero": "0",
              "One": "1", "NegativeOne": "-1", "Half": "1/2"}
_P_ADD, _P_MUL, _P_POW, _P_ATOM = 1, 2, 3, 4  # precedence: higher binds tighter


def _children(node: Node) -> tuple:
    if node[0] == "call":
        return node[2] + tuple(node[3].values())
    if node[0] == "neg":
        return (node[1],)
    return ()


def render(node: Node) -> str:
    """``node`` printed as ``str(sympy_expr)`` prints it; each node rendered once (linear)."""
    done: dict[int, tuple[str, int]] = {}
    stack = [(node, False)]
    while stack:  # post-order without recursion: children first
        current, ready = stack.pop()
        if ready:
            done[id(current)] = _render_one(current, done)
            continue
        stack.append((current, True))
        stack.extend((child, False) for child in _children(current) if id(child) not in done)
    return done[id(node)][0]


def _render_one(node: Node, done: dict[int, tuple[str, int]]) -> tuple[str, int]:
    """Text and precedence of one node, its children already rendered in ``done``."""
    kind = node[0]
    if kind == "num":
        return node[1], (_P_ADD if node[1].startswith("-") else _P_ATOM)
    if kind == "str":
        return node[1], _P_ATOM
    if kind == "name":
        return _ATOM_TEXT.get(node[1], node[1]), _P_ATOM
    if kind == "neg":
        text, prec = done[id(node[1])]
        return "-" + (text if prec >= _P_MUL else f"({text})"), _P_ADD
    _, name, args, kwargs, _offset = node
    r = [done[id(a)] for a in args]
    if name == "Symbol" and args and args[0][0] == "str":
        return args[0][1], _P_ATOM
    if name == "Integer" and len(args) == 1:
        return r[0]
    if name == "Float" and args:
        text = args[0][1]
        return text, (_P_ADD if text.startswith("-") else _P_ATOM)
    if name == "Rational" and len(args) == 2:
        return f"{r[0][0]}/{r[1][0]}", _P_MUL
    if name in _ATOM_TEXT and not args:
        return _ATOM_TEXT[name], _P_ATOM
    if name == "Add" and args:
        parts = [r[0][0]]
        for text, _ in r[1:]:
            parts.append(f" - {text[1:]}" if text.startswith("-") else f" + {text}")
        return "".join(parts), _P_ADD
    if name == "Mul" and args:
        return _render_mul(args, r, done)
    if name == "Pow" and len(args) == 2:
        (base, bprec), (exp, eprec) = r
        if exp == "-1":
            return f"1/{base if bprec >= _P_POW else '(' + base + ')'}", _P_MUL
        return (f"{base if bprec > _P_POW else '(' + base + ')'}**"
                f"{exp if eprec > _P_POW and not exp.startswith('-') else '(' + exp + ')'}"), _P_POW
    if name == "FloorDiv" and len(args) == 2:
        (a, ap), (b, bp) = r
        return f"({a if ap >= _P_ATOM else '(' + a + ')'}//{b if bp >= _P_ATOM else '(' + b + ')'})", _P_ATOM
    if name in _INFIX and len(args) == 2:
        return f"{r[0][0]} {_INFIX[name]} {r[1][0]}", 0
    inner = [text for text, _ in r] + [f"{k}={done[id(v)][0]}" for k, v in kwargs.items()]
    return f"{name}({', '.join(inner)})", _P_ATOM


def _render_mul(args: tuple, r: list[tuple[str, int]], done: dict[int, tuple[str, int]]) -> tuple[str, int]:
    negate = len(args) >= 2 and r[0][0] == "-1"
    if negate:
        args, r = args[1:], r[1:]
        if len(args) == 1:
            text, prec = r[0]
            return "-" + (text if prec >= _P_MUL else f"({text})"), _P_ADD
    num, den = [], []
    for a, (text, prec) in zip(args, r):
        if a[0] == "call" and a[1] == "Pow" and len(a[2]) == 2 and done[id(a[2][1])][0] == "-1":
            btext, bprec = done[id(a[2][0])]
            den.append(btext if bprec > _P_MUL else f"({btext})")
            continue
        num.append(text if prec >= _P_MUL and (not text.startswith("-") or not num) else f"({text})")
    out = "*".join(num) or "1"
    if den:
        out += "/" + (den[0] if len(den) == 1 else "(" + "*".join(den) + ")")
    return ("-" + out, _P_ADD) if negate else (out, _P_MUL)



def symbols(node: Node) -> list[str]:
    """Names of the ``Symbol``s in a tree, in order of first appearance."""
    found: dict[str, None] = {}
    stack = [node]
    while stack:
        n = stack.pop()
        if n[0] == "call" and n[1] == "Symbol" and n[2] and n[2][0][0] == "str":
            found.setdefault(n[2][0][1])
            continue
        stack.extend(reversed(_children(n)))
    return list(found)

