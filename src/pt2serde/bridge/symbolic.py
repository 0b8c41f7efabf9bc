"""Symbolic values (SymInt / SymFloat / SymBool, sympy expressions, ranges) to the wire.

Expressions are written as sympy ``srepr`` strings, with the example value as a hint
for backed symbols, exactly as PyTorch writes them. Range bounds are integers, with
``None`` for an infinite side; rational bounds are rounded inwards.
"""

from __future__ import annotations

import logging
from typing import Any
import math
import operator

import sympy
import torch
from torch._guards import SLoc
from torch.utils._sympy.numbers import int_oo

from . import tables
from ..format.memo import remember
from .. import schema
from ..errors import SerializeError

_SymInt_of = schema.SymInt._of

__all__ = [
    "sym_int_to_wire",
    "sym_float_to_wire",
    "sym_bool_to_wire",
    "srepr",
    "range_constraints_to_wire",
    "SymbolicContext",
]

log = logging.getLogger(__name__)

#: where the ranges of a loaded program's symbols come from, as torch's messages name it
_RANGE_SLOC = SLoc("range_constraints of the loaded program", None)

_srepr_cache: dict[sympy.Basic, str] = {}


def srepr(expr: sympy.Basic) -> str:
    """sympy's ``srepr`` of ``expr``, memoised (the same few symbols recur in every shape)."""
    try:
        return _srepr_cache[expr]
    except KeyError:
        return remember(_srepr_cache, expr, sympy.srepr(expr), 65536)
    except TypeError:  # unhashable: never expected, but never fatal
        return sympy.srepr(expr)


def _symbolic_number_to_wire(s, wire_type, constant_type, field: str, convert):
    """A SymInt / SymFloat as ``wire_type``: its constant in ``field`` when its expression is a
    ``constant_type``, else the expression's srepr with its hint (``convert``-ed) if it has one."""
    expr = s.node.expr
    if isinstance(expr, constant_type):
        return wire_type(**{field: convert(expr)})
    hint = s.node.hint
    return wire_type(as_expr=schema.SymExpr(
        expr_str=srepr(expr), hint=None if hint is None else schema.SymExprHint(**{field: convert(hint)})))


def sym_int_to_wire(s) -> schema.SymInt:
    if type(s) is int:
        return _SymInt_of("as_int", s)
    if isinstance(s, torch.SymInt):
        return _symbolic_number_to_wire(s, schema.SymInt, sympy.Integer, "as_int", int)
    if isinstance(s, int):  # bool and other int subclasses
        return schema.SymInt(as_int=int(s))
    raise SerializeError(f"SymInt should be either symbol or int, got `{s}` of type `{type(s)}`")


def sym_float_to_wire(s) -> schema.SymFloat:
    if type(s) is float:
        return schema.SymFloat(as_float=s)
    if isinstance(s, torch.SymFloat):
        return _symbolic_number_to_wire(s, schema.SymFloat, sympy.Float, "as_float", float)
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


# =========================================================================== decoding


class SymbolicContext:
    """Rebuilds symbolic values of one program in a fresh ``ShapeEnv`` and fake mode.

    * Range constraints are installed before anything is parsed, so every symbol gets
      its bounds the moment it first appears.
    * The ShapeEnv's unbacked counters are moved past every ``u<i>`` / ``zuf<i>`` in the
      ranges, so symbols created later never collide with the program's.
    * Expression strings are parsed by :class:`pt2serde.bridge.expr.ExprParser` (a grammar,
      never ``eval``), once per distinct string, each charged to the document's expression
      work budget (:class:`pt2serde.format.expr.ExprBudget`).
    """

    def __init__(self, range_constraints: dict[str, schema.RangeConstraint], budget=None) -> None:
        """``budget``: the document's :class:`pt2serde.format.expr.ExprBudget` (a fresh one if not
        given); every expression parsed here is charged to it, once per distinct string."""
        from torch._subclasses.fake_tensor import FakeTensorMode
        from torch.utils._sympy.symbol import SymT, prefix_str
        from torch.utils._sympy.value_ranges import ValueRanges

        from ..format.expr import ExprBudget
        from .bounded_shapes import BoundedShapeEnv
        from .expr import ExprParser

        from .fakes import FakeMaker

        # the program keeps it for life: run_decompositions() retraces in it (bounded_shapes.py)
        self.shape_env = BoundedShapeEnv(assume_static_by_default=True)
        self.fake_mode = FakeTensorMode(
            allow_fallback_kernels=False, allow_non_fake_inputs=True, shape_env=self.shape_env
        )
        self.symbols: dict[str, sympy.Basic] = {}
        self.unbacked: set[sympy.Symbol] = set()
        self.ranges: dict[str, ValueRanges] = {}
        self._parsed: dict[str, sympy.Basic] = {}
        self._seen_symbols: set[str] = set()
        self._geometries: dict[tuple, tuple] = {}
        self._make_fake = FakeMaker(self.fake_mode).make  # fake_tensor runs for every value
        self.budget = budget if budget is not None else ExprBudget()
        self._parser = ExprParser(self.symbols, budget=self.budget)

        counters = {prefix_str[SymT.UNBACKED_INT]: -1, prefix_str[SymT.UNBACKED_FLOAT]: -1}
        for name, rc in range_constraints.items():
            lower = -int_oo if rc.min_val is None else sympy.Integer(rc.min_val)
            upper = int_oo if rc.max_val is None else sympy.Integer(rc.max_val)
            self.ranges[name] = ValueRanges(lower, upper)
            # "zuf3" must not be read as prefix "u" (it does not start with "u"); check longest first
            for prefix in sorted(counters, key=len, reverse=True):
                if name.startswith(prefix) and name[len(prefix):].isdigit():
                    counters[prefix] = max(counters[prefix], int(name[len(prefix):]))
                    break
        self.shape_env.unbacked_symint_counter += counters[prefix_str[SymT.UNBACKED_INT]] + 1
        self.shape_env.unbacked_symfloat_counter += counters[prefix_str[SymT.UNBACKED_FLOAT]] + 1

    def __repr__(self) -> str:
        return f"<SymbolicContext symbols={len(self.symbols)} ranges={len(self.ranges)} unbacked={len(self.unbacked)}>"

    # ----------------------------------------------------------------- parsing

    def parse(self, expr_str: str, hint=None) -> sympy.Basic:
        """The sympy expression of ``expr_str``; registers new symbols with the ShapeEnv, and
        ``hint`` as the value of the expression (the first one given wins, as in torch's
        loader) unless sympy folded a longer text to a symbol or a number (``Add(s5, 0)``:
        a symbol's hint comes from its own ``Symbol`` text only, as :class:`HintUse` checks)."""
        expr = self._parsed.get(expr_str)
        if expr is None:
            expr = self._parsed[expr_str] = self._parser.parse(expr_str)
            for sym in sorted(expr.free_symbols, key=lambda sym: sym.name):
                self._register_symbol(sym)
            if not expr.is_Atom:  # an expression, for the range constraints keyed by its printed form
                self.symbols.setdefault(str(expr), expr)
        if hint is not None and expr not in self.shape_env.backed_var_to_val \
                and (not expr.is_Atom or (isinstance(expr, sympy.Symbol) and expr_str.startswith("Symbol("))):
            self.shape_env.add_backed_var_to_val(expr, hint)
        return expr

    def _register_symbol(self, sym: sympy.Symbol) -> None:
        from torch.fx.experimental.symbolic_shapes import ValueRangesSLoc
        from torch.utils._sympy.symbol import SymT, symbol_is_type
        from torch.utils._traceback import CapturedTraceback

        name = sym.name
        if name in self._seen_symbols:
            return
        self._seen_symbols.add(name)
        self.symbols.setdefault(name, sym)
        if symbol_is_type(sym, (SymT.UNBACKED_INT, SymT.UNBACKED_FLOAT)):
            self.unbacked.add(sym)
        vr = self.ranges.get(name)
        if vr is None:
            # a symbol the file gives no range: the ShapeEnv still needs one to reason about it
            # (its static evaluation asserts "vr must not be None"); an unbounded one adds nothing
            from torch.utils._sympy.value_ranges import ValueRanges

            vr = ValueRanges.unknown_int() if sym.is_integer else ValueRanges.unknown()
        # what ``constrain_symbol_range`` does, with the range's source location given: left to
        # find it, the ShapeEnv walks the stack through ``uninteresting_files()``, whose first
        # call imports torch.export._trace, aot_autograd and inductor (~0.5 s in a fresh process)
        self.shape_env._update_var_to_range(sym, vr, ValueRangesSLoc(_RANGE_SLOC, _RANGE_SLOC))
        self.shape_env.var_to_stack[sym] = CapturedTraceback.extract(skip=1)

    # ------------------------------------------------------------- values

    def sym_int(self, s: schema.SymInt):
        if s.type == "as_int":
            return s.as_int
        hint = None
        if s.as_expr.hint is not None:
            if s.as_expr.hint.type != "as_int":
                raise SerializeError(f"SymInt hint must be an int, got {s.as_expr.hint}")
            hint = s.as_expr.hint.value
        hint, keep = self._hint(s.as_expr.expr_str, hint, False)
        expr = self.parse(s.as_expr.expr_str, hint if keep else None)
        return self.shape_env.create_symintnode(expr, hint=hint)

    def sym_float(self, s: schema.SymFloat):
        if s.type == "as_float":
            return s.as_float
        h = s.as_expr.hint
        hint, keep = self._hint(s.as_expr.expr_str, None if h is None else float(h.value), True)
        expr = self.parse(s.as_expr.expr_str, hint if keep else None)
        return self.shape_env.create_symfloatnode(expr, hint=hint)

    def _hint(self, text: str, stored, is_float: bool) -> tuple[Any, bool]:
        """The hint torch is given for a value stored as ``text``, and whether it may keep it
        for the expression: as the document's check decided (:class:`HintUse`, filled by
        :func:`pt2serde.format.check.check_expressions`), else the stored one."""
        use = self.budget.hint_use
        if use is None:
            return stored, stored is not None
        return use.hint(text, stored, is_float)

    def sym_bool(self, s: schema.SymBool):
        if s.type == "as_bool":
            return s.as_bool
        return self.shape_env.create_symboolnode(self.parse(s.as_expr.expr_str))

    def _geometry(self, meta: schema.TensorMeta) -> tuple[tuple, tuple[list, list, Any, bool | None]]:
        """Sizes, strides and offset as ints/SymInts, and whether the strides are the
        contiguous ones; computed once per distinct geometry (SymInts are immutable, so the
        same objects can serve every tensor of that shape)."""
        try:  # static: the ints themselves (at C speed); a SymExpr is unhashable, so an
            # expression anywhere raises TypeError here and takes the key of texts and hints
            key = (tuple(map(_VALUE, meta.sizes)), tuple(map(_VALUE, meta.strides)), meta.storage_offset.value)
            cached = self._geometries.get(key)
        except TypeError:
            key = (
                tuple(_sym_key(s) for s in meta.sizes),
                tuple(_sym_key(s) for s in meta.strides),
                _sym_key(meta.storage_offset),
            )
            cached = self._geometries.get(key)
        if cached is None:
            if len(meta.sizes) != len(meta.strides):
                raise SerializeError(f"tensor has {len(meta.sizes)} sizes but {len(meta.strides)} strides")
            sizes = [self.sym_int(s) for s in meta.sizes]
            strides = [self.sym_int(s) for s in meta.strides]
            offset = self.sym_int(meta.storage_offset)
            contiguous = None if _is_contiguous(sizes, strides) else False  # None: not yet confirmed
            cached = self._geometries[key] = (sizes, strides, offset, contiguous)
        return key, cached

    def fake_tensor(self, meta: schema.TensorMeta):
        """A FakeTensor with the stored dtype, device, sizes, strides and storage offset."""
        key, (sizes, strides, offset, contiguous) = self._geometry(meta)
        dtype = tables.dtype_from_wire(meta.dtype)
        device = tables.device_from_wire(meta.device)
        elem = None
        if contiguous is not False:  # cheaper than empty_strided when sizes are symbolic
            elem = torch.empty(sizes, dtype=dtype, device="meta")
            if contiguous is None:  # first use of this geometry: check torch agrees
                same = all(a == b if type(a) is int and type(b) is int else _sym_expr(a) == _sym_expr(b)
                           for a, b in zip(elem.stride(), strides))
                self._geometries[key] = (sizes, strides, offset, same)
                if not same:
                    elem = None
        if elem is None:
            elem = torch.empty_strided(sizes, strides, dtype=dtype, device="meta")
        if not (type(offset) is int and offset == 0):
            elem = elem.as_strided(sizes, strides, offset)
        return self._make_fake(elem, device, meta.requires_grad)

    def range_constraints(self) -> dict:
        """``{symbol: ValueRanges}`` for the symbols the program actually uses."""
        out = {}
        for name, vr in self.ranges.items():
            sym = self.symbols.get(name)
            if sym is not None:
                out[sym] = vr
            else:
                log.debug("range constraint for %s: the symbol does not appear in the program", name)
        return out


_VALUE = operator.attrgetter("value")


def _sym_key(s: schema.SymInt):
    return s.value if s.type == "as_int" else (s.as_expr.expr_str, None if s.as_expr.hint is None else s.as_expr.hint.value)


def _sym_expr(v):
    return sympy.Integer(v) if type(v) is int else v.node.expr


def _is_contiguous(sizes: list, strides: list) -> bool:
    """Whether ``strides`` are exactly the row-major strides ``torch.empty(sizes)`` makes."""
    if all(type(v) is int for v in (*sizes, *strides)):  # a static geometry: no sympy numbers
        n = 1
        for size, stride in zip(reversed(sizes), reversed(strides)):
            if stride != n:
                return False
            n *= max(size, 1)
        return True
    expected = sympy.Integer(1)
    for size, stride in zip(reversed(sizes), reversed(strides)):
        if _sym_expr(stride) != expected:
            return False
        if type(size) is int:
            expected = expected * max(size, 1)
        else:  # sizes are positive in exported programs: skip sympy.Max, whose pairwise
            expr = _sym_expr(size)  # comparisons are costly on long sums
            expected = expected * (expr if expr.is_positive else sympy.Max(expr, 1))
    return True
