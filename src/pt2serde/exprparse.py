"""A safe parser for the sympy ``srepr`` strings that store symbolic shapes.

Serialized exported programs write every symbolic expression as ``sympy.srepr(expr)``,
e.g. ``Mul(Integer(2), Symbol('s0', positive=True, integer=True))``. PyTorch reads them
back with ``sympy.sympify(text, locals=...)``, which is ``eval``: a doctored file runs
arbitrary Python. :class:`ExprParser` reads the same strings with a small grammar of its
own and never evaluates the text::

    value   := call | atom | ['-'] ('oo' | 'int_oo') | INT | FLOAT | STRING
             | 'True' | 'False' | 'None'
    call    := NAME '(' [arg (',' arg)*] ')'         NAME from an explicit allowlist
    arg     := [NAME '='] value                       keywords after positionals
    atom    := 'oo' | 'zoo' | 'nan' | 'true' | 'false' | 'int_oo'

Every call is checked against a fixed table (name -> constructor, argument count and
kinds, accepted keywords) and then built by calling that constructor: sympy's own
classes (``Add``, ``Mul``, ``Pow``, relations, ``And`` ...) and torch's
(``torch.utils._sympy.functions``), the same objects ``sympify`` would build with
PyTorch's table of locals. Literals are converted as ``sympify`` converts them (``3``
becomes ``Integer(3)``, ``1.5`` becomes ``Float('1.5')``). Anything else, including
malformed, oversized or too deeply nested input, raises :class:`SerializeError` naming
the problem and its character offset.

Besides refusing code, the parser bounds the work sympy can be made to do: integer
literals and every number built along the way have at most 4300 digits (so ``str()``
of a result works), ``Pow`` on numbers is refused when its result would exceed that,
Float precision and exponents are capped, and the lattice/logic operators whose
evaluation is quadratic or worse in their argument count (``Max``, ``Min``, ``And``,
``Or``, ``Piecewise``) take a bounded number of arguments.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable

import sympy
import torch.utils._sympy.functions as _tf
from sympy.functions.elementary.piecewise import ExprCondPair
from torch.utils._sympy.numbers import int_oo

from .errors import SerializeError

__all__ = ["ExprParser", "ALLOWED_CALLS", "ALLOWED_ATOMS", "SYMBOL_ASSUMPTIONS"]

#: CPython's default limit on the digits of an ``int`` converted from or to text. Integer
#: literals, and every number built along the way, have at most this many digits, so
#: ``str()`` of a result always works.
MAX_INT_DIGITS = 4300
#: The same bound in bits (``2**MAX_NUMBER_BITS < 10**MAX_INT_DIGITS``), for Floats and
#: for estimating ``Pow``.
MAX_NUMBER_BITS = int(MAX_INT_DIGITS * math.log2(10))
#: Largest ``precision=`` (bits) accepted for a ``Float``.
MAX_FLOAT_PRECISION = 4096
#: Largest decimal exponent and number of characters of a ``Float`` literal.
MAX_FLOAT_EXPONENT = 4000
MAX_FLOAT_CHARS = 1400
#: Largest denominator of a rational exponent applied to a number by ``Pow``.
MAX_POW_ROOT = 1 << 12
#: Cap on the positional arguments of variadic calls (Add, Mul).
MAX_ARGS = 100_000

#: The boolean assumptions a ``Symbol`` may carry (sympy's full set of defined facts).
SYMBOL_ASSUMPTIONS = frozenset(
    {
        "algebraic", "antihermitian", "commutative", "complex", "composite", "even",
        "extended_negative", "extended_nonnegative", "extended_nonpositive",
        "extended_nonzero", "extended_positive", "extended_real", "finite", "hermitian",
        "imaginary", "infinite", "integer", "irrational", "negative", "noninteger",
        "nonnegative", "nonpositive", "nonzero", "odd", "polar", "positive", "prime",
        "rational", "real", "transcendental", "zero",
    }
)  # fmt: skip

_EXPR_ERROR_CHARS = 200  # how much of a constructor's own error message to quote

# --------------------------------------------------------------------------- tokens

# Token kinds. Punctuation tokens use the character itself as their kind. ``symbol`` and
# ``integer`` are fast paths for the two calls srepr writes most, matched whole
# (``Symbol('s0', positive=True, integer=True)``, ``Integer(-3)``); anything they do not
# match exactly is read by the general grammar instead, with the same checks.
_NAME, _INT, _FLOAT, _STR, _END, _BAD = "name", "int", "float", "str", "end", "bad"
_SYMBOL, _INTEGER = "symbol", "integer"

_STRING_PATTERN = r"""'(?:[^'\\\r\n]|\\['"\\])*'|"(?:[^"\\\r\n]|\\['"\\])*\""""
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
    | (?P<end>\Z)
    | (?P<bad>.)
    )""".replace("STRING", _STRING_PATTERN),
    re.VERBOSE | re.ASCII | re.DOTALL,
)
_STRING_RE = re.compile(_STRING_PATTERN)
_KWARG_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ ]*=[ ]*(True|False)", re.ASCII)
_DIGITS_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_UNESCAPE_RE = re.compile(r"\\(['\"\\])")
_FLOAT_TEXT_RE = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE](?P<exp>[+-]?[0-9]+))?\Z", re.ASCII
)

# A token: (kind, text, offset of its first character).
_Token = tuple[str, str, int]


def _tokenize(text: str) -> list[_Token]:
    """Split ``text`` into tokens, ending with an ``end`` token or at the first ``bad``
    character (the parser reports it when it gets there, so errors come in text order).
    """
    tokens: list[_Token] = []
    append = tokens.append
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup
        token = m.group(kind)
        offset = m.start(kind)
        if kind == "punct":
            kind = token
        append((kind, token, offset))
        if kind == _END or kind == _BAD:
            break
    return tokens


_BAD_CHAR_HINTS = {
    ".": " (attribute access is not allowed)",
    "[": " (subscripts are not allowed)",
    ":": " (lambdas, slices and annotations are not allowed)",
    **{op: " (operators are not allowed: srepr writes calls)" for op in "+*/%<>&|~^@!"},
}


def _unexpected(token: _Token, expected: str) -> SerializeError:
    """The error for ``token`` where ``expected`` was due."""
    kind, text, offset = token
    if kind == _BAD:
        if text in "'\"":
            return _error("unterminated string or unsupported escape sequence", offset)
        return _error(f"unexpected character {text!r}{_BAD_CHAR_HINTS.get(text, '')}", offset)
    return _error(f"expected {expected}, found {_describe(token)}", offset)


def _describe(token: _Token) -> str:
    if token[0] == _END:
        return "end of input"
    text = token[1] if len(token[1]) <= 40 else token[1][:40] + "..."
    return repr(text)


def _error(message: str, offset: int) -> SerializeError:
    return SerializeError(f"invalid symbolic expression: {message} at offset {offset}")


def _int_literal(text: str, offset: int) -> int:
    digits = text.lstrip("+-")
    if len(digits) > MAX_INT_DIGITS:
        raise _error(f"integer literal with {len(digits)} digits (limit {MAX_INT_DIGITS})", offset)
    if len(digits) > 1 and digits[0] == "0":
        raise _error(f"integer literal {text[:40]!r} has leading zeros", offset)
    return int(text)


def _string_literal(text: str) -> str:
    body = text[1:-1]
    return _UNESCAPE_RE.sub(r"\1", body) if "\\" in body else body


# --------------------------------------------------------------------------- values

# A parsed argument: (kind, value, offset). Kinds: "expr" (a built sympy object), "int"
# (Python int), "float" (the literal's text), "str", "bool", "none".
_Arg = tuple[str, Any, int]


class _Call:
    """A call whose arguments are still being read."""

    __slots__ = ("name", "offset", "args", "kwargs", "pending_kw")

    def __init__(self, name: str, offset: int) -> None:
        self.name = name
        self.offset = offset
        self.args: list[_Arg] = []
        self.kwargs: dict[str, _Arg] = {}
        self.pending_kw: tuple[str, int] | None = None

    def add(self, arg: _Arg) -> None:
        if self.pending_kw is not None:
            key, offset = self.pending_kw
            self.pending_kw = None
            if key in self.kwargs:
                raise _error(f"repeated keyword argument {key!r} to {self.name}", offset)
            self.kwargs[key] = arg
        elif self.kwargs:
            raise _error(f"positional argument after keyword arguments in {self.name}", arg[2])
        else:
            self.args.append(arg)


_KIND_NAMES = {
    "expr": "an expression",
    "int": "an integer literal",
    "float": "a float literal",
    "str": "a string",
    "bool": "a boolean literal",
    "none": "None",
}


def _kind_error(call: _Call, arg: _Arg, wanted: str) -> SerializeError:
    return _error(f"{call.name} expects {wanted}, got {_KIND_NAMES[arg[0]]}", arg[2])


# ----------------------------------------------------------------------- builders

# A builder turns a finished call into a sympy object; it may use the parser (symbols).
_Builder = Callable[["ExprParser", _Call], sympy.Basic]


def _check_arity(call: _Call, low: int, high: int) -> None:
    n = len(call.args)
    if low <= n <= high:
        return
    if low == high:
        wanted = f"{low} argument{'s' if low != 1 else ''}"
    elif n < low:
        wanted = f"at least {low} argument{'s' if low != 1 else ''}"
    else:
        wanted = f"at most {high} arguments"
    raise _error(f"{call.name} takes {wanted}, got {n}", call.offset)


def _no_kwargs(call: _Call) -> None:
    if call.kwargs:
        key = next(iter(call.kwargs))
        raise _error(f"{call.name} takes no keyword argument {key!r}", call.kwargs[key][2])


def _as_expr(call: _Call, arg: _Arg) -> sympy.Basic:
    """An argument of a sympy function: a built expression, or a number as sympify reads it."""
    kind, value, offset = arg
    if kind == "expr":
        if isinstance(value, ExprCondPair):
            raise _error(f"ExprCondPair is only allowed inside Piecewise, not {call.name}", offset)
        return value
    if kind == "int":
        return sympy.Integer(value)
    if kind == "float":
        return _float_from_text(value, offset)
    raise _kind_error(call, arg, "an expression")


def _float_from_text(text: str, offset: int, precision: int | None = None) -> sympy.Float:
    if len(text) > MAX_FLOAT_CHARS:
        raise _error(f"float literal of {len(text)} characters (limit {MAX_FLOAT_CHARS})", offset)
    m = _FLOAT_TEXT_RE.match(text)
    if m is None:
        raise _error(f"malformed float literal {text[:40]!r}", offset)
    exponent = m.group("exp")
    if exponent is not None and (len(exponent) > 6 or abs(int(exponent)) > MAX_FLOAT_EXPONENT):
        raise _error(f"float exponent beyond +-{MAX_FLOAT_EXPONENT}", offset)
    if precision is None:
        return sympy.Float(text)
    return sympy.Float(text, precision=precision)


def _function(cls: Callable[..., sympy.Basic], low: int, high: int = -1) -> _Builder:
    """A builder for ``cls(*exprs)`` taking ``low`` to ``high`` expression arguments."""
    high = low if high == -1 else high

    def build(parser: "ExprParser", call: _Call) -> sympy.Basic:
        _check_arity(call, low, high)
        _no_kwargs(call)
        return cls(*[_as_expr(call, arg) for arg in call.args])

    return build


def _constant(value: sympy.Basic) -> _Builder:
    """A builder for a zero-argument call naming a singleton (``BooleanTrue()``)."""

    def build(parser: "ExprParser", call: _Call) -> sympy.Basic:
        _check_arity(call, 0, 0)
        _no_kwargs(call)
        return value

    return build


def _build_integer(parser: "ExprParser", call: _Call) -> sympy.Basic:
    _check_arity(call, 1, 1)
    _no_kwargs(call)
    arg = call.args[0]
    if arg[0] != "int":
        raise _kind_error(call, arg, "an integer literal")
    return sympy.Integer(arg[1])


def _build_rational(parser: "ExprParser", call: _Call) -> sympy.Basic:
    _check_arity(call, 2, 2)
    _no_kwargs(call)
    for arg in call.args:
        if arg[0] != "int":
            raise _kind_error(call, arg, "integer literals")
    return sympy.Rational(call.args[0][1], call.args[1][1])


def _build_float(parser: "ExprParser", call: _Call) -> sympy.Basic:
    _check_arity(call, 1, 1)
    precision: int | None = None
    for key, arg in call.kwargs.items():
        if key != "precision":
            raise _error(f"Float takes no keyword argument {key!r}", arg[2])
        if arg[0] != "int":
            raise _kind_error(call, arg, "an integer precision")
        if not 1 <= arg[1] <= MAX_FLOAT_PRECISION:
            raise _error(f"Float precision {arg[1]} outside 1..{MAX_FLOAT_PRECISION}", arg[2])
        precision = arg[1]
    kind, value, offset = call.args[0]
    if kind == "str":  # what srepr writes: Float('0.1', precision=53)
        return _float_from_text(value, offset, precision)
    if kind in ("int", "float"):  # a number literal: first converted as sympify does
        number = _as_expr(call, call.args[0])
        if precision is None:
            return sympy.Float(number)
        return sympy.Float(number, precision=precision)
    raise _kind_error(call, call.args[0], "a number or a numeric string")


def _build_symbol(parser: "ExprParser", call: _Call) -> sympy.Basic:
    _check_arity(call, 1, 1)
    kind, name, _offset = call.args[0]
    if kind != "str":
        raise _kind_error(call, call.args[0], "a name string")
    for key, arg in call.kwargs.items():
        if arg[0] != "bool":
            raise _error(f"Symbol assumption {key!r} must be True or False", arg[2])
    assumptions = _symbol_assumptions((key, arg[1], arg[2]) for key, arg in call.kwargs.items())
    return parser._symbol(name, assumptions)


def _symbol_assumptions(items: Iterable[tuple[str, bool, int]]) -> tuple[tuple[str, bool], ...]:
    """Check ``(key, value, offset)`` assumptions; they are returned in their order."""
    seen: dict[str, bool] = {}
    for key, value, offset in items:
        if key not in SYMBOL_ASSUMPTIONS:
            raise _error(f"unknown Symbol assumption {key!r}", offset)
        if key in seen:
            raise _error(f"repeated keyword argument {key!r} to Symbol", offset)
        seen[key] = value
    return tuple(seen.items())


def _symbol_text(text: str, offset: int) -> tuple[str, tuple[tuple[str, bool], ...]]:
    """Name and assumptions of a whole ``Symbol(...)`` token (the fast path)."""
    m = _STRING_RE.search(text)
    assert m is not None  # the token pattern guarantees one
    items = (
        (kw.group(1), kw.group(2) == "True", offset + kw.start())
        for kw in _KWARG_RE.finditer(text, m.end())
    )
    return _string_literal(m.group()), _symbol_assumptions(items)


def _build_piecewise(parser: "ExprParser", call: _Call) -> sympy.Basic:
    _check_arity(call, 1, 256)
    _no_kwargs(call)
    pairs = []
    for arg in call.args:
        if arg[0] != "expr" or not isinstance(arg[1], ExprCondPair):
            raise _error("Piecewise arguments must be ExprCondPair(expr, cond)", arg[2])
        pairs.append(arg[1])
    return sympy.Piecewise(*pairs)


def _build_pow(parser: "ExprParser", call: _Call) -> sympy.Basic:
    _check_arity(call, 2, 2)
    _no_kwargs(call)
    base, exp = (_as_expr(call, arg) for arg in call.args)
    _check_pow_cost(base, exp, call.args[1][2])
    return sympy.Pow(base, exp)


def _check_pow_cost(base: sympy.Basic, exp: sympy.Basic, offset: int) -> None:
    """Refuse a ``Pow`` whose evaluation on numbers would be huge.

    sympy evaluates ``Pow(n, p/q)`` exactly for a number ``n``, also when ``n`` is a
    number inside the base (the coefficient of a product is raised separately): bound
    ``bits(n) * |p|`` and ``q`` for every number other than 0 and +-1 in the base.
    """
    if not isinstance(exp, sympy.Rational):
        return
    p, q = abs(int(exp.p)), int(exp.q)
    for number in base.atoms(sympy.Number):
        bits = _number_bits(number)
        if bits == 0 or number in (sympy.S.One, sympy.S.NegativeOne):
            continue
        if q > MAX_POW_ROOT or bits * p > MAX_NUMBER_BITS:
            raise _error(f"Pow of a number would exceed {MAX_INT_DIGITS} digits", offset)


def _number_bits(number: sympy.Basic) -> int:
    """Rough size in bits of a finite number (0 for zero, infinities and nan)."""
    if isinstance(number, sympy.Rational):
        if number.p == 0:
            return 0
        return max(int(number.p).bit_length(), int(number.q).bit_length())
    if isinstance(number, sympy.Float):
        _sign, man, exp, bc = number._mpf_
        return max(1, abs(exp + bc)) if man else 0
    return 0


_NUMBER_LIMIT = 10**MAX_INT_DIGITS


def _check_number_size(value: sympy.Basic, name: str, offset: int) -> None:
    """Refuse numbers of more than ``MAX_INT_DIGITS`` digits as soon as a call makes one."""
    if isinstance(value, sympy.Rational):
        too_big = abs(int(value.p)) >= _NUMBER_LIMIT or int(value.q) >= _NUMBER_LIMIT
    elif isinstance(value, sympy.Float):
        too_big = _number_bits(value) > MAX_NUMBER_BITS
    else:
        return
    if too_big:
        raise _error(f"{name} built a number of more than {MAX_INT_DIGITS} digits", offset)


def _relation(cls: type) -> _Builder:
    return _function(cls, 2)


def _calls_table() -> dict[str, _Builder]:
    """The allowlist: every callable name, mapped to its builder.

    Names follow sympy's ``srepr`` output, resolved the way PyTorch's deserializer
    resolves them (its table of torch functions over sympy's namespace: ``Mod`` is
    torch's, ``Max``/``Min`` are sympy's); ``Eq``/``Ne``/``Lt``/``Le``/``Gt``/``Ge`` and
    ``BooleanTrue()``/``BooleanFalse()`` are accepted as aliases.
    """
    table: dict[str, _Builder] = {
        # numbers and symbols
        "Symbol": _build_symbol,
        "Integer": _build_integer,
        "Rational": _build_rational,
        "Float": _build_float,
        "BooleanTrue": _constant(sympy.true),
        "BooleanFalse": _constant(sympy.false),
        # arithmetic
        "Add": _function(sympy.Add, 1, MAX_ARGS),
        "Mul": _function(sympy.Mul, 1, MAX_ARGS),
        "Pow": _build_pow,
        "Max": _function(sympy.Max, 1, 32),
        "Min": _function(sympy.Min, 1, 32),
        "Abs": _function(sympy.Abs, 1),
        "floor": _function(sympy.floor, 1),
        "ceiling": _function(sympy.ceiling, 1),
        "Piecewise": _build_piecewise,
        "ExprCondPair": _function(ExprCondPair, 2),
        # relations and logic
        "Equality": _relation(sympy.Eq),
        "Eq": _relation(sympy.Eq),
        "Unequality": _relation(sympy.Ne),
        "Ne": _relation(sympy.Ne),
        "StrictLessThan": _relation(sympy.Lt),
        "Lt": _relation(sympy.Lt),
        "LessThan": _relation(sympy.Le),
        "Le": _relation(sympy.Le),
        "StrictGreaterThan": _relation(sympy.Gt),
        "Gt": _relation(sympy.Gt),
        "GreaterThan": _relation(sympy.Ge),
        "Ge": _relation(sympy.Ge),
        "And": _function(sympy.And, 1, 256),
        "Or": _function(sympy.Or, 1, 256),
        "Not": _function(sympy.Not, 1),
        # torch.utils._sympy.functions (the table PyTorch's deserializer uses)
        "FloorDiv": _function(_tf.FloorDiv, 2),
        "ModularIndexing": _function(_tf.ModularIndexing, 3),
        "Where": _function(_tf.Where, 3),
        "PythonMod": _function(_tf.PythonMod, 2),
        "Mod": _function(_tf.Mod, 2),
        "CleanDiv": _function(_tf.CleanDiv, 2),
        "CeilToInt": _function(_tf.CeilToInt, 1),
        "FloorToInt": _function(_tf.FloorToInt, 1),
        "CeilDiv": _function(_tf.CeilDiv, 2),
        "LShift": _function(_tf.LShift, 2),
        "RShift": _function(_tf.RShift, 2),
        "PowByNatural": _function(_tf.PowByNatural, 2),
        "FloatPow": _function(_tf.FloatPow, 2),
        "FloatTrueDiv": _function(_tf.FloatTrueDiv, 2),
        "IntTrueDiv": _function(_tf.IntTrueDiv, 2),
        "IsNonOverlappingAndDenseIndicator": _build_dense_indicator,
        "TruncToFloat": _function(_tf.TruncToFloat, 1),
        "TruncToInt": _function(_tf.TruncToInt, 1),
        "RoundToInt": _function(_tf.RoundToInt, 1),
        "RoundDecimal": _function(_tf.RoundDecimal, 2),
        "ToFloat": _function(_tf.ToFloat, 1),
        "Identity": _function(_tf.Identity, 1),
    }
    # torch's opaque math and bitwise functions: written by srepr under these names,
    # but missing from PyTorch's table (there ``sympify`` makes undefined functions).
    opaque_unary = (
        _tf.OpaqueUnaryFn_sqrt, _tf.OpaqueUnaryFn_cos, _tf.OpaqueUnaryFn_cosh,
        _tf.OpaqueUnaryFn_sin, _tf.OpaqueUnaryFn_sinh, _tf.OpaqueUnaryFn_tan,
        _tf.OpaqueUnaryFn_tanh, _tf.OpaqueUnaryFn_asin, _tf.OpaqueUnaryFn_acos,
        _tf.OpaqueUnaryFn_atan, _tf.OpaqueUnaryFn_exp, _tf.OpaqueUnaryFn_log,
        _tf.OpaqueUnaryFn_asinh, _tf.OpaqueUnaryFn_log2,
    )  # fmt: skip
    bitwise = (_tf.BitwiseFn_bitwise_and, _tf.BitwiseFn_bitwise_or, _tf.BitwiseFn_bitwise_xor)
    table.update({cls.__name__: _function(cls, 1) for cls in opaque_unary})
    table.update({cls.__name__: _function(cls, 2) for cls in bitwise})
    return table


def _build_dense_indicator(parser: "ExprParser", call: _Call) -> sympy.Basic:
    _check_arity(call, 2, 512)
    if len(call.args) % 2:
        raise _error(
            f"IsNonOverlappingAndDenseIndicator takes sizes and strides (an even count), "
            f"got {len(call.args)} arguments",
            call.offset,
        )
    return _build_dense_indicator_args(parser, call)


_build_dense_indicator_args = _function(_tf.IsNonOverlappingAndDenseIndicator, 2, 512)


_CALLS: dict[str, _Builder] = _calls_table()

#: Bare names srepr writes for singletons; ``-oo`` and ``-int_oo`` take a leading minus.
_ATOMS: dict[str, sympy.Basic] = {
    "oo": sympy.oo,
    "zoo": sympy.zoo,
    "nan": sympy.nan,
    "true": sympy.true,
    "false": sympy.false,
    "int_oo": int_oo,
}
_NEGATABLE_ATOMS = {"oo": -sympy.oo, "int_oo": -int_oo}
#: Python literals allowed as argument values (``Symbol('x', integer=True)``).
_LITERAL_NAMES: dict[str, tuple[str, Any]] = {
    "True": ("bool", True),
    "False": ("bool", False),
    "None": ("none", None),
}

ALLOWED_CALLS = frozenset(_CALLS)
ALLOWED_ATOMS = frozenset(_ATOMS)


# ------------------------------------------------------------------------- parser


class ExprParser:
    """Parses ``srepr`` strings of symbolic expressions without evaluating them.

    ``symbols`` maps names to symbols the caller wants shared: a ``Symbol('s0', ...)``
    whose name is in it parses to that exact object (its assumptions win). Symbols the
    parser creates itself are reused by later occurrences with the same name and
    assumptions, within one :meth:`parse` and across calls; :attr:`symbols` lists them.
    The caller's dict is read, never modified.

    ``max_length`` bounds the input in characters, ``max_depth`` the nesting of calls.
    The parser is not thread-safe (it keeps the symbols it made); use one per thread.
    """

    def __init__(
        self,
        symbols: dict[str, sympy.Symbol] | None = None,
        max_length: int = 1_000_000,
        max_depth: int = 200,
    ) -> None:
        self._shared: dict[str, sympy.Symbol] = symbols if symbols is not None else {}
        self._created: dict[str, sympy.Symbol] = {}
        self._declared: dict[tuple[str, tuple[tuple[str, bool], ...]], sympy.Symbol] = {}
        self._symbol_tokens: dict[str, tuple[str, tuple[tuple[str, bool], ...]]] = {}
        self.max_length = max_length
        self.max_depth = max_depth

    @property
    def symbols(self) -> dict[str, sympy.Symbol]:
        """Every symbol this parser can hand out by name: the caller's, then its own."""
        return {**self._created, **self._shared}

    def parse(self, text: str) -> sympy.Basic:
        """The sympy object ``text`` (an ``srepr`` string) describes.

        Raises :class:`SerializeError` for anything outside the grammar or the
        allowlist, for oversized input and for arguments a constructor refuses.
        """
        if not isinstance(text, str):
            raise SerializeError(
                f"invalid symbolic expression: expected a string, got {type(text).__name__}"
            )
        if len(text) > self.max_length:
            raise SerializeError(
                f"invalid symbolic expression: {len(text)} characters long, "
                f"the limit is {self.max_length}"
            )
        result = self._parse_tokens(_tokenize(text))
        if isinstance(result, ExprCondPair):
            raise _error("ExprCondPair is only allowed inside Piecewise", 0)
        return result

    # The parser is iterative (an explicit stack of open calls), so nesting never
    # costs Python stack frames and cannot raise RecursionError here. Each value is
    # read once, built once, and handed to the innermost open call.
    def _parse_tokens(self, tokens: list[_Token]) -> sympy.Basic:
        stack: list[_Call] = []
        i = 0
        while True:
            kind, text, offset = tokens[i]
            if kind == _NAME and stack and tokens[i + 1][0] == "=":
                stack[-1].pending_kw = (text, offset)
                i += 2
                kind, text, offset = tokens[i]
            i += 1
            if kind == _SYMBOL or kind == _INTEGER:
                if len(stack) >= self.max_depth:
                    raise self._too_deep(offset)
                value: _Arg = ("expr", self._fast_call(kind, text, offset), offset)
            elif kind == _NAME:
                if tokens[i][0] == "(":
                    if text not in _CALLS:
                        raise _error(_unknown_call(text), offset)
                    if len(stack) >= self.max_depth:
                        raise self._too_deep(offset)
                    stack.append(_Call(text, offset))
                    i += 1
                    if tokens[i][0] != ")":
                        continue
                    i += 1
                    value = ("expr", self._build(stack.pop()), offset)
                else:
                    value = _bare_name(text, offset, tokens[i])
            elif kind == _INT:
                value = ("int", _int_literal(text, offset), offset)
            elif kind == _FLOAT:
                value = ("float", text, offset)
            elif kind == _STR:
                value = ("str", _string_literal(text), offset)
            elif kind == "-":
                value = ("expr", _negated_atom(tokens[i]), offset)
                i += 1
            else:
                raise _unexpected(tokens[i - 1], "a value")
            # hand the value to the open call; each ')' closes and builds one call
            while True:
                if not stack:
                    if tokens[i][0] != _END:
                        raise _unexpected(tokens[i], "end of input")
                    if value[0] != "expr":
                        found = _KIND_NAMES[value[0]]
                        raise _error(f"expected an expression, found {found}", value[2])
                    return value[1]
                call = stack[-1]
                call.add(value)
                kind = tokens[i][0]
                i += 1
                if kind == ",":
                    break
                if kind != ")":
                    raise _unexpected(tokens[i - 1], f"',' or ')' in {call.name}(...)")
                stack.pop()
                value = ("expr", self._build(call), call.offset)

    def _too_deep(self, offset: int) -> SerializeError:
        return _error(f"expression nested deeper than {self.max_depth} calls", offset)

    def _fast_call(self, kind: str, text: str, offset: int) -> sympy.Basic:
        """Build a whole ``Symbol(...)`` or ``Integer(...)`` token."""
        if kind == _INTEGER:
            m = _DIGITS_RE.search(text)
            assert m is not None  # the token pattern guarantees digits
            return sympy.Integer(_int_literal(m.group(), offset + m.start()))
        declared = self._symbol_tokens.get(text)
        if declared is None:
            declared = self._symbol_tokens[text] = _symbol_text(text, offset)
        try:
            return self._symbol(*declared)
        except SerializeError:
            raise
        except Exception as exc:  # e.g. InconsistentAssumptions
            raise _constructor_error("Symbol", exc, offset) from None

    def _build(self, call: _Call) -> sympy.Basic:
        """Run the builder for a finished call, turning any failure into SerializeError."""
        try:
            result = _CALLS[call.name](self, call)
        except SerializeError:
            raise
        except Exception as exc:  # sympy / torch constructors refusing their arguments
            raise _constructor_error(call.name, exc, call.offset) from None
        if not isinstance(result, sympy.Basic):
            built = type(result).__name__
            raise _error(f"{call.name}(...) built a {built}, not a sympy object", call.offset)
        _check_number_size(result, call.name, call.offset)
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


def _constructor_error(name: str, exc: Exception, offset: int) -> SerializeError:
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    if len(detail) > _EXPR_ERROR_CHARS:
        detail = detail[:_EXPR_ERROR_CHARS] + "..."
    return _error(f"cannot build {name}(...): {detail}", offset)


def _bare_name(name: str, offset: int, follower: _Token) -> _Arg:
    """A name not followed by '(': an atom or a literal keyword."""
    if name in _ATOMS:
        return ("expr", _ATOMS[name], offset)
    if name in _LITERAL_NAMES:
        kind, value = _LITERAL_NAMES[name]
        return (kind, value, offset)
    if name in _CALLS:
        if follower[0] == _BAD:
            raise _unexpected(follower, "'('")
        raise _error(f"{name} must be called with arguments", offset)
    raise _error(f"unknown name {name!r}", offset)


def _negated_atom(token: _Token) -> sympy.Basic:
    if token[0] == _NAME and token[1] in _NEGATABLE_ATOMS:
        return _NEGATABLE_ATOMS[token[1]]
    raise _unexpected(token, "oo or int_oo after a unary minus")


def _unknown_call(name: str) -> str:
    if name in _ATOMS or name in _LITERAL_NAMES:
        return f"{name} is not callable"
    return f"unknown function {name!r}"
