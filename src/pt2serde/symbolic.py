"""Symbolic values (SymInt / SymFloat / SymBool, sympy expressions, ranges) to the wire.

Expressions are written as sympy ``srepr`` strings, with the example value as a hint
for backed symbols, exactly as PyTorch writes them. Range bounds are integers, with
``None`` for an infinite side; rational bounds are rounded inwards.
"""

from __future__ import annotations

import logging
import math

import sympy
import torch
from torch.utils._sympy.numbers import int_oo

from . import schema
from .errors import SerializeError

_SymInt_of = schema.SymInt._of

__all__ = [
    "sym_int_to_wire",
    "sym_float_to_wire",
    "sym_bool_to_wire",
    "srepr",
    "range_constraints_to_wire",
]

log = logging.getLogger(__name__)

_srepr_cache: dict[sympy.Basic, str] = {}


def srepr(expr: sympy.Basic) -> str:
    """sympy's ``srepr`` of ``expr``, memoised (the same few symbols recur in every shape)."""
    try:
        return _srepr_cache[expr]
    except KeyError:
        text = _srepr_cache[expr] = sympy.srepr(expr)
        if len(_srepr_cache) > 65536:
            _srepr_cache.clear()
        return text
    except TypeError:  # unhashable: never expected, but never fatal
        return sympy.srepr(expr)


def sym_int_to_wire(s) -> schema.SymInt:
    if type(s) is int:
        return _SymInt_of("as_int", s)
    if isinstance(s, torch.SymInt):
        expr = s.node.expr
        if isinstance(expr, sympy.Integer):
            return schema.SymInt(as_int=int(expr))
        hint = s.node.hint
        return schema.SymInt(
            as_expr=schema.SymExpr(
                expr_str=srepr(expr),
                hint=None if hint is None else schema.SymExprHint(as_int=int(hint)),
            )
        )
    if isinstance(s, int):  # bool and other int subclasses
        return schema.SymInt(as_int=int(s))
    raise SerializeError(f"SymInt should be either symbol or int, got `{s}` of type `{type(s)}`")


def sym_float_to_wire(s) -> schema.SymFloat:
    if type(s) is float:
        return schema.SymFloat(as_float=s)
    if isinstance(s, torch.SymFloat):
        expr = s.node.expr
        if isinstance(expr, sympy.Float):
            return schema.SymFloat(as_float=float(expr))
        hint = s.node.hint
        return schema.SymFloat(
            as_expr=schema.SymExpr(
                expr_str=srepr(expr),
                hint=None if hint is None else schema.SymExprHint(as_float=float(hint)),
            )
        )
    raise SerializeError(f"SymFloat should be either symbol or float, got `{s}` of type `{type(s)}`")


def sym_bool_to_wire(s) -> schema.SymBool:
    if type(s) is bool:
        return schema.SymBool(as_bool=s)
    if isinstance(s, torch.SymBool):
        expr = s.node.expr
        if expr is sympy.true or expr is sympy.false:
            return schema.SymBool(as_bool=bool(expr))
        return schema.SymBool(as_expr=schema.SymExpr(expr_str=srepr(expr)))
    raise SerializeError(f"SymBool should be either symbol or bool, got `{s}` of type `{type(s)}`")


_INFINITE = (sympy.oo, -sympy.oo, int_oo, -int_oo)


def _bound(value, rounding, side: str, symbol) -> int | None:
    if value in _INFINITE:
        return None
    if isinstance(value, sympy.Integer):
        return int(value)
    if isinstance(value, (int, float)) and math.isinf(value):
        return None
    log.warning(
        "range of %s: %s bound %s is not an integer; rounding it %s",
        symbol, side, value, "up" if rounding is math.ceil else "down",
    )
    return int(rounding(value))


def range_constraints_to_wire(range_constraints) -> dict[str, schema.RangeConstraint]:
    """``{symbol: ValueRanges}`` to ``{str(symbol): RangeConstraint}`` (rational bounds rounded inwards)."""
    return {
        str(sym): schema.RangeConstraint(
            min_val=_bound(vr.lower, math.ceil, "lower", sym),
            max_val=_bound(vr.upper, math.floor, "upper", sym),
        )
        for sym, vr in range_constraints.items()
    }
