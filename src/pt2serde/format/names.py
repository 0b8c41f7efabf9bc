"""The gate for strings from a file that can become code (torch-free).

Several strings of a program document end up in Python source that torch generates and
compiles: torch.fx writes graph input names into ``def forward(self, <name>, ...)``,
keyword argument names into ``target(<name> = ...)``, attribute paths into ``self.a.b`` or
``getattr(self, "<part>")``, comments from stack traces; pytree code generation writes
``forward_arg_names`` and dict keys; ``unflatten`` turns module paths into ``call_module``
targets. Each such field has exactly one of the classes below, and one checker per class:

* :func:`identifier` - a Python identifier that is not a keyword (``x``, ``arg0_1``);
* :func:`attribute_path` - a dotted attribute path (``layers.0.weight``): non-empty parts,
  no quotes, backslashes, control or line-break characters (fx writes a part that is not
  an identifier between double quotes, without escaping it);
* :func:`quoted_text` - free text that torch only ever prints inside a quoted literal
  (dict keys of a treespec, class names): no quotes, backslashes, control or line-break
  characters, so no quoting scheme can be broken out of;
* :func:`comment_text` - multi-line free text that torch prints as comments (stack
  traces): ``\\n`` and ``\\t`` are allowed, every other control or line-break character is
  not (``compile()`` ends a line at ``\\r``, and ``str.splitlines`` at ``\\x0b``, ``\\x0c``,
  ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028`` and ``\\u2029``; fx splits only on ``\\n``).

Bidirectional-override characters (Trojan Source) are refused in every class: generated
code is shown to people in error messages and ``print_readable``.

Each checker returns the value unchanged or raises :class:`SerializeError` naming what
the value is (``what``) and, when given, where it is (``path``). They are the only checks
of their kind: the document walker (:mod:`pt2serde.format.codegen_fields`) calls them for
``load`` and ``validate`` alike.
"""

from __future__ import annotations

import keyword
import re
import unicodedata

from ..errors import SerializeError

__all__ = [
    "MAX_NAME_LENGTH",
    "identifier",
    "parameter_name",
    "value_name",
    "attribute_path",
    "quoted_text",
    "comment_text",
    "is_identifier",
    "operator_name",
    "ATEN_DUNDER_OPS",
    "unsafe_character",
    "UNSAFE_CLASS",
]

#: longest name accepted in any class (torch's own names are far shorter; a megabyte of
#: identifier only makes generated code and error messages huge)
MAX_NAME_LENGTH = 4096
#: longest multi-line comment text (stack traces)
MAX_COMMENT_LENGTH = 1 << 20

# C0 and C1 control characters (this includes \t \n \r \x0b \x0c \x1c-\x1e \x85), the line
# and paragraph separators, and the bidi embedding/override/isolate characters.
_BIDI = "\u202a-\u202e\u2066-\u2069"
#: those characters as the body of a regex character class (the command line escapes them)
UNSAFE_CLASS = f"\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}"
_UNSAFE = re.compile(f"[{UNSAFE_CLASS}]")
_UNSAFE_IN_LITERAL = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}\"'\\\\]")
# fx writes a part of an attribute path that is not an identifier as getattr(x, "<part>"): between
# double quotes, unescaped. A single quote is safe there, and torch's strict export writes paths
# such as getattr(L['self'], 'a[(1)]') into nn_module_stack.
_UNSAFE_IN_PATH = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}\"\\\\]")
_UNSAFE_IN_COMMENT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")


def _fail(value: object, what: str, rule: str, path: str | None) -> SerializeError:
    shown = repr(value) if not isinstance(value, str) or len(value) <= 200 else repr(value[:200]) + "..."
    where = f" - at `{path}`" if path else ""
    return SerializeError(f"{what} {shown} is not {rule}{where}", path=path)


def _string(value: object, what: str, rule: str, path: str | None, limit: int = MAX_NAME_LENGTH) -> str:
    if type(value) is not str:
        raise _fail(value, what, rule, path)
    if len(value) > limit:
        raise SerializeError(f"{what} is {len(value)} characters long (at most {limit})"
                             + (f" - at `{path}`" if path else ""), path=path)
    return value


def is_identifier(value: object) -> bool:
    """``value`` is a ``str`` that Python accepts as a name: an identifier, not a keyword."""
    return type(value) is str and value.isidentifier() and not keyword.iskeyword(value) and len(value) <= MAX_NAME_LENGTH


def _folds(value: str) -> bool:
    """``compile()`` reads identifiers in NFKC form (``ｓｅｌｆ`` is ``self``): a name that is not
    already in that form names something other than what it says."""
    return not value.isascii() and unicodedata.normalize("NFKC", value) != value


def identifier(value: object, what: str, path: str | None = None) -> str:
    """A name written bare into generated code (a keyword argument): a Python identifier in
    NFKC form, not a keyword, not ``__debug__`` (which cannot be assigned)."""
    rule = "a Python identifier"
    value = _string(value, what, rule, path)
    if (not value.isidentifier() or keyword.iskeyword(value) or _UNSAFE.search(value) or _folds(value)
            or value == "__debug__"):
        raise _fail(value, what, rule, path)
    return value


def parameter_name(value: object, what: str, path: str | None = None) -> str:
    """A parameter of a generated ``def forward(self, ...)``: an :func:`identifier` other than
    ``self`` and the globals that code reads (``fx_pytree``, ``torch``...; shadowed, every call fails)."""
    if value == "self" or value in _FX_GLOBALS:
        raise _fail(value, what, "a parameter name other than self and the generated code's globals", path)
    return identifier(value, what, path)


#: names a value may not take: keywords, and the globals every forward fx generates reads (fx's
#: custom builtins ``torch``, ``inf``, ``pytree``..., ``getattr`` and ``slice`` it writes into
#: calls), ``self``, ``__debug__``. (Other builtins are legal: real exports have inputs named
#: ``input``; shadowing them inside ``forward`` is harmless, as fx's code never calls them.)
_FX_GLOBALS = frozenset({"inf", "nan", "NoneType", "torch", "device", "fx_pytree", "pytree", "getattr", "slice"})
_RESERVED_VALUE_NAMES = frozenset(keyword.kwlist) | _FX_GLOBALS | {"self", "__debug__"}
_VALUE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def value_name(value: object, what: str, path: str | None = None) -> str:
    """The name of a value of the graph (a placeholder, a node, a subgraph): ASCII letters, digits
    and ``_`` as torch.fx's namer makes them, not a keyword or a global of fx's generated code
    (``torch``, ``getattr``...) or ``self``. fx writes these names bare into ``forward``; one that
    shadows ``torch`` or repeats ``self`` broke every call."""
    rule = "a value name (an ASCII identifier, not a keyword, torch, getattr or self)"
    value = _string(value, what, rule, path)
    if not _VALUE_NAME.match(value) or value in _RESERVED_VALUE_NAMES:
        raise _fail(value, what, rule, path)
    return value


def attribute_path(value: object, what: str, path: str | None = None) -> str:
    """A dotted attribute path (``a.b.0.c``): fx writes identifier parts as ``.part`` and the
    others as ``getattr(x, "part")``, so no part may be empty, a dunder (``__class__``) or hold a double quote, a
    backslash, a control or line-break character (single quotes are safe between double quotes,
    and strict export writes them: ``getattr(L['self'], 'a[(1)]')``)."""
    rule = "a dotted attribute path"
    value = _string(value, what, rule, path)
    parts = value.split(".")
    if _UNSAFE_IN_PATH.search(value) or "" in parts or _folds(value):
        raise _fail(value, what, rule, path)
    if any(len(p) > 4 and p.startswith("__") and p.endswith("__") for p in parts):
        # a dunder part (`x.__class__`) names Python's own attributes: unflatten trips on it (KeyError)
        raise _fail(value, what, "a dotted attribute path without dunder parts", path)
    return value


def quoted_text(value: object, what: str, path: str | None = None) -> str:
    """Free text torch only prints inside a quoted literal: no quote, backslash, control or
    line-break character (whatever quote character the printer picks)."""
    rule = "text without quotes, backslashes or control characters"
    value = _string(value, what, rule, path)
    if _UNSAFE_IN_LITERAL.search(value):
        raise _fail(value, what, rule, path)
    return value


def comment_text(value: object, what: str, path: str | None = None) -> str:
    """Multi-line free text torch prints as comments: ``\\n`` and ``\\t`` only among the
    control and line-break characters."""
    rule = "text without control characters other than newline and tab"
    value = _string(value, what, rule, path, MAX_COMMENT_LENGTH)
    if _UNSAFE_IN_COMMENT.search(value):
        raise _fail(value, what, rule, path)
    return value


def operator_name(value: object, what: str, path: str | None = None) -> str:
    """A call target looked up by name (``torch.ops.aten.add.Tensor``, ``_operator.mul``):
    dotted identifiers, none of them a dunder (``torch.ops.__getattr__`` would create a
    process-global attribute for any name it is asked, ``__path__`` included). An extension
    op (``#namespace:name``) is read by the handler the user registered: only the unsafe
    characters are refused there."""
    rule = "an operator name"
    value = _string(value, what, rule, path)
    if value.startswith("#"):
        if _UNSAFE.search(value):
            raise _fail(value, what, rule, path)
        return value
    parts = value.split(".")
    if any(not part.isidentifier() or not part.isascii() or (part.startswith("__") and not _aten_dunder(parts, i))
           for i, part in enumerate(parts)):
        raise _fail(value, what, rule, path)
    return value


#: aten's operators named after Python's bitwise dunders: real graphs hold them
#: (``torch.ops.aten.__and__.Tensor`` from transformers' causal masks), and they are the only
#: dunder ``torch.ops.aten.<op>.<overload>`` lookups allowed
ATEN_DUNDER_OPS = frozenset(f"__{op}__" for op in (
    "and", "or", "xor", "lshift", "rshift", "iand", "ior", "ixor", "ilshift", "irshift"))


def _aten_dunder(parts: list[str], i: int) -> bool:
    return i == 3 and len(parts) == 5 and parts[:3] == ["torch", "ops", "aten"] and parts[3] in ATEN_DUNDER_OPS


def unsafe_character(value: str) -> str | None:
    """The first control, line-break or bidi-override character of ``value``, or None."""
    m = _UNSAFE.search(value)
    return m.group() if m else None
