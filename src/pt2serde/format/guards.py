"""Guards (``ExportedProgram._guards_code``) rebuilt from our own expression grammar (torch-free).

PyTorch pastes each guard string into Python source and ``exec``s it when ``ep.module()``
builds the guard function of a program that has example inputs (``torch/export/_unlift.py``,
``_convert_guards_code_to_fn``)::

    def _(*args):
      torch._assert(<guard, L-paths replaced by args[i]>, "Guard failed: <guard>")

The text goes in raw: a ``\\r`` ends the line for ``compile()`` and puts the rest at module
level, and even a plain expression such as ``exec(...)`` runs on every call. So a guard from
a file is never passed on as written. :func:`canonical_guard` parses it (``ast.parse`` in
``eval`` mode runs nothing), checks the tree against the small grammar that torch's guard
printer (``ShapeGuardPythonPrinter`` / ``PythonPrinter``) emits, and returns
``ast.unparse`` of the checked tree: what torch compiles is exactly that tree, one line,
no statements.

The grammar:

* comparisons (``== != < <= > >=``), ``and`` / ``or`` / ``not``, conditional expressions
  (``a if c else b``, printed for ``Piecewise``);
* arithmetic ``+ - * / // %`` and ``& | ^``; ``**`` only with a constant exponent of at
  most :data:`MAX_EXPONENT`; unary ``-`` / ``+``;
* constants: ``int`` of at most 2**63, finite ``float``, ``True`` / ``False`` / ``None``;
  strings only as an operand of a comparison, and only text that
  :func:`pt2serde.format.names.quoted_text` accepts (the text is also pasted inside torch's
  double-quoted ``"Guard failed: ..."`` literal);
* inputs: the name ``L`` subscripted by string or non-negative int constants
  (``L['x']``, ``L['d']['k']``, ``L['flat_args'][0]``), and on such a path the methods
  ``.size()[i]``, ``.stride()[i]``, ``.storage_offset()``, ``.numel()``, ``.dim()``;
* ``math.inf`` and ``math.nan``, and calls of the functions the printer emits
  (:data:`FUNCTIONS`), positional arguments only.

Caps: :data:`MAX_GUARD_LENGTH` characters, :data:`MAX_NODES` syntax nodes,
:data:`MAX_DEPTH` levels, and an upper bound of :data:`MAX_BITS` on the size of any
integer the expression can compute (so ``L['x'].size()[0] ** 10**9`` or a tower of
powers cannot make a call of the module run for minutes).
"""

from __future__ import annotations

import ast
import math

from ..errors import SerializeError
from .names import MAX_NAME_LENGTH, quoted_text

__all__ = [
    "MAX_GUARD_LENGTH",
    "MAX_NODES",
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_EXPONENT",
    "MAX_BITS",
    "MAX_DOCUMENT_NODES",
    "GuardBudget",
    "FUNCTIONS",
    "canonical_guard",
]

#: longest guard text accepted (torch's guards are one short line each)
MAX_GUARD_LENGTH = 16384
#: most syntax nodes in one guard
MAX_NODES = 4096
#: deepest nesting of syntax nodes (a sum of n terms nests n deep)
MAX_DEPTH = 128
#: largest integer constant
MAX_INT = 2**63
#: largest constant exponent of ``**``
MAX_EXPONENT = 64
#: syntax nodes of all the guards of one document together (real programs: a few dozen)
MAX_DOCUMENT_NODES = 16384
#: most bits any integer computed by a guard can have (runtime sizes count as 64 bits)
MAX_BITS = 1 << 12

#: functions the guard printer emits, with the numbers of positional arguments they take
#: (None: any number, at least one). ``math.*``, ``torch.*``, ``abs``/``min``/``max``/``round``
#: come from ``torch.utils._sympy.printers.PythonPrinter`` (``math.sqrt`` from its releases
#: before ``torch._sym_sqrt``), ``math.isnan`` from the input guards ``_unlift`` writes; the
#: last two are ``SYMPY_INTERP`` helpers that sympy prints by their names.
FUNCTIONS: dict[str, tuple[int, ...] | None] = {
    **{f"math.{f}": (1,) for f in (
        "floor", "ceil", "trunc", "isnan", "sqrt", "log2", "cos", "cosh", "acos",
        "sin", "sinh", "asin", "tan", "tanh", "atan")},
    "torch.sym_float": (1,),
    "torch._sym_sqrt": (1,),
    "abs": (1,),
    "round": (1, 2),
    "min": None,
    "max": None,
    "IsNonOverlappingAndDenseIndicator": None,
    "cast_symbool_to_symint_guardless": (1,),
}

#: functions whose value is one of their arguments or its magnitude (``max(1, s0 // 7)`` of a
#: padded window size): their bits are the arguments' (a float argument brings its own)
_SELECTS = frozenset({"min", "max", "abs"})
_CONSTANT_ATTRIBUTES = frozenset({"math.inf", "math.nan"})
#: methods of an input tensor: whether the result must be subscripted by an int (sizes and
#: strides are tuples; anything but an index of them could be repeated or concatenated)
_METHODS = {"size": True, "stride": True, "storage_offset": False, "numel": False, "dim": False}
_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_GROWS_BY_ONE = (ast.Add, ast.Sub, ast.BitOr, ast.BitXor, ast.BitAnd)
_SHRINKS = (ast.FloorDiv, ast.Mod, ast.Div)
_UNARY = (ast.USub, ast.UAdd, ast.Not)
_RUNTIME_BITS = 64
#: an int made from a float (``math.floor(1e308)``) has up to this many bits
_FLOAT_BITS = 1024


class _Refused(Exception):
    """What is not allowed, travelling up to :func:`canonical_guard`."""


def canonical_guard(text: str, path: str | None = None, budget: "GuardBudget | None" = None) -> str:
    """The canonical text of one guard, or :class:`SerializeError` saying what is not allowed.

    ``path`` is where the guard is (``$.guards_code[3]``). The result is ``ast.unparse``
    of the checked tree: one line, no statements, strings in single quotes.
    """
    where = f" - at `{path}`" if path else ""
    if type(text) is not str:
        raise SerializeError(f"guard {text!r:.200} is not a string{where}", path=path)
    if len(text) > MAX_GUARD_LENGTH:
        raise SerializeError(f"guard is {len(text)} characters long (at most {MAX_GUARD_LENGTH}){where}", path=path)
    shown = repr(text) if len(text) <= 200 else repr(text[:200]) + "..."
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        reason = e.msg if isinstance(e, SyntaxError) else type(e).__name__
        raise SerializeError(f"guard {shown} is not an expression ({reason}){where}", path=path) from None
    try:
        checker = _Checker()
        checker.expression(tree.body)
    except _Refused as e:
        raise SerializeError(f"guard {shown} is not allowed: {e}{where}", path=path) from None
    if budget is not None:
        budget.charge(checker.nodes, path)
    return ast.unparse(tree)


class GuardBudget:
    """The syntax nodes of all the guards of one document: each guard runs on every call of
    ``ep.module()``, so their number and size together are capped (:data:`MAX_DOCUMENT_NODES`),
    not only each one's. ``load`` and ``validate`` pass one per document."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = MAX_DOCUMENT_NODES if limit is None else limit
        self.used = 0

    def charge(self, nodes: int, path: str | None) -> None:
        self.used += nodes
        if self.used > self.limit:
            where = f" - at `{path}`" if path else ""
            raise SerializeError(f"the document's guards hold more than {self.limit} syntax nodes together "
                                 f"(they run on every call of the module){where}", path=path)


class _Checker:
    """Walks one guard's tree; each visit returns an upper bound on the bits of its value."""

    def __init__(self) -> None:
        self.nodes = 0

    def _enter(self, node: ast.AST, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Refused(f"more than {MAX_NODES} syntax nodes")
        if depth > MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep")

    def expression(self, node: ast.AST, depth: int = 0) -> int:
        self._enter(node, depth)
        d = depth + 1
        if isinstance(node, ast.Compare):
            if not all(isinstance(op, _COMPARE) for op in node.ops):
                raise _Refused(f"comparison `{_op_name(node.ops)}` (only == != < <= > >=)")
            for operand in (node.left, *node.comparators):
                if isinstance(operand, ast.Constant) and type(operand.value) is str:
                    self._enter(operand, d)
                    _text(operand.value, "string constant")
                else:
                    self.expression(operand, d)
            return 1
        if isinstance(node, ast.BoolOp):
            return max(self.expression(v, d) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, _UNARY):
                raise _Refused(f"operator `{type(node.op).__name__}`")
            return self.expression(node.operand, d) + 1
        if isinstance(node, ast.BinOp):
            return self._binop(node, d)
        if isinstance(node, ast.IfExp):
            self.expression(node.test, d)
            return max(self.expression(node.body, d), self.expression(node.orelse, d))
        if isinstance(node, ast.Constant):
            return _number_bits(node.value)
        if isinstance(node, ast.Call):
            return self._call(node, d)
        if isinstance(node, ast.Attribute):
            if _dotted(node) in _CONSTANT_ATTRIBUTES:
                self._enter(node.value, d)
                return _FLOAT_BITS
            raise _Refused(f"attribute `.{node.attr}`")
        if isinstance(node, ast.Subscript):
            return self._subscript(node, d)
        if isinstance(node, ast.Name):
            raise _Refused(f"name `{node.id}` (only L[...] paths, math.inf and math.nan)")
        raise _Refused(f"{type(node).__name__} expression")

    def _binop(self, node: ast.BinOp, d: int) -> int:
        left = self.expression(node.left, d)
        op = node.op
        if isinstance(op, ast.Pow):
            exponent = _constant_exponent(node.right)
            self.expression(node.right, d)
            bits = left * max(1, math.ceil(abs(exponent)))
        else:
            right = self.expression(node.right, d)
            if isinstance(op, _GROWS_BY_ONE):
                bits = max(left, right) + 1
            elif isinstance(op, ast.Mult):
                bits = left + right
            elif isinstance(op, _SHRINKS):
                bits = max(left, right)
            else:
                raise _Refused(f"operator `{type(op).__name__}`")
        if bits > MAX_BITS:
            raise _Refused(f"its value can grow to {bits} bits (at most {MAX_BITS})")
        return bits

    def _call(self, node: ast.Call, d: int) -> int:
        if node.keywords:
            raise _Refused("keyword arguments")
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _METHODS and _is_input(func.value):
            if _METHODS[func.attr]:
                raise _Refused(f"`.{func.attr}()` that is not indexed by an int constant")
            if node.args:
                raise _Refused(f"arguments of `.{func.attr}()`")
            self._input(func.value, d + 1)
            return _RUNTIME_BITS
        name = _dotted(func)
        if name not in FUNCTIONS:
            raise _Refused(f"call of `{ast.unparse(func)[:100]}`")
        arity = FUNCTIONS[name]
        if any(isinstance(a, ast.Starred) for a in node.args) or (
            len(node.args) not in arity if arity is not None else not node.args
        ):
            raise _Refused(f"{len(node.args)} arguments for `{name}`")
        if name == "round" and len(node.args) == 2:
            # round(x, -n) computes 10**n: the digits must be a small constant
            digits = node.args[1]
            value = -digits.operand.value if (isinstance(digits, ast.UnaryOp) and isinstance(digits.op, ast.USub)
                                              and isinstance(digits.operand, ast.Constant)) else getattr(
                digits, "value", None) if isinstance(digits, ast.Constant) else None
            if type(value) is not int or abs(value) > MAX_EXPONENT:
                raise _Refused(f"`round` digits `{ast.unparse(digits)[:100]}` (only a constant of at most "
                               f"{MAX_EXPONENT} in size)")
        self._enter(func, d)
        bits = [self.expression(a, d) for a in node.args]
        if name in _SELECTS:  # one of its arguments (or its size): no bigger than the biggest
            return max(bits)
        return max(_FLOAT_BITS, *bits)

    def _subscript(self, node: ast.Subscript, d: int) -> int:
        value = node.value
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                and _METHODS.get(value.func.attr) and _is_input(value.func.value)):
            if value.args or value.keywords:
                raise _Refused(f"arguments of `.{value.func.attr}()`")
            _index(node.slice, int_only=True)
            self._enter(value, d)
            self._input(value.func.value, d + 1)
            return _RUNTIME_BITS
        self._input(node, d - 1)
        return _RUNTIME_BITS

    def _input(self, node: ast.AST, depth: int) -> None:
        """``L[k1][k2]...``: the keys are string or non-negative int constants."""
        while isinstance(node, ast.Subscript):
            self._enter(node, depth)
            _index(node.slice, int_only=False)
            node, depth = node.value, depth + 1
        if not (isinstance(node, ast.Name) and node.id == "L"):
            raise _Refused(f"subscript of `{ast.unparse(node)[:100]}` (only of L[...] inputs and their sizes and strides)")
        self._enter(node, depth)


def _is_input(node: ast.AST) -> bool:
    while isinstance(node, ast.Subscript):
        node = node.value
    return isinstance(node, ast.Name) and node.id == "L"


def _index(node: ast.AST, *, int_only: bool) -> None:
    if isinstance(node, ast.Constant):
        v = node.value
        if type(v) is int and 0 <= v <= MAX_INT:
            return
        if type(v) is str and not int_only:
            if len(v) > MAX_NAME_LENGTH:
                raise _Refused(f"input key of {len(v)} characters")
            _text(v, "input key")
            return
    raise _Refused(f"index `{ast.unparse(node)[:100]}` (only {'an int constant' if int_only else 'string or int constants'})")


def _text(value: str, what: str) -> None:
    try:
        quoted_text(value, what)
    except SerializeError as e:
        raise _Refused(str(e)) from None


def _constant_exponent(node: ast.AST) -> float:
    inner = node.operand if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) else node
    if isinstance(inner, ast.Constant) and type(inner.value) in (int, float):
        value = inner.value
        if math.isfinite(value) and abs(value) <= MAX_EXPONENT:
            return value
    raise _Refused(f"exponent `{ast.unparse(node)[:100]}` (only a constant of at most {MAX_EXPONENT})")


def _number_bits(value: object) -> int:
    if value is None or type(value) is bool:
        return 1
    if type(value) is int:
        if value > MAX_INT:
            raise _Refused(f"integer constant of {value.bit_length()} bits (at most 2**63)")
        return max(1, value.bit_length())
    if type(value) is float:
        if not math.isfinite(value):
            raise _Refused("float constant that is not finite (write math.inf)")
        return _FLOAT_BITS
    if type(value) is str:
        raise _Refused("string constant outside a comparison")
    raise _Refused(f"{type(value).__name__} constant")


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` of a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _op_name(ops: list[ast.cmpop]) -> str:
    return " ".join(type(op).__name__ for op in ops)
