"""The oracle over source code compiled while a file is handled (shared by ``fuzz/`` and ``tests/hostile/``).

torch compiles Python source that it generates from a program: fx's ``forward`` of every
GraphModule (``load``, ``module()``, ``unflatten``, ``run_decompositions``) and the guards
function of ``module()`` (``torch.export._unlift``). Names from the file end up in that
source, so a name that breaks out of its place runs code. The oracle judges every
``compile`` audit event by who made it:

* :data:`TRUSTED_COMPILERS` compile source of their own, never text from a file (type
  annotations, generated dataclass/namedtuple methods, syntax trees, pt2serde's
  schema-generated decoders): accepted;
* a source whose filename is an existing file is a module being imported: accepted;
* :data:`CODEGEN`, torch's code generators, put strings from the program into source: the
  source must pass :func:`code_violations` (function definitions only, constant defaults,
  no calls of builtins that run or load code, no dunder attributes);
* :data:`TORCH_TEMPLATES` compile fixed templates of torch's own (TorchScript, lazily
  imported modules, decompositions): accepted;
* anything else (sympy parsing a string, ``eval`` in some reader...) is a violation.

``tests/hostile/everywhere.py`` applies it to what it records during each entry point;
``fuzz/_common.py``'s audit hook applies it to every input of every harness. Torch-free
(``ast`` only), so the torch-free harnesses and the CLI checks can use it too.
"""

from __future__ import annotations

import ast
import os

#: modules that compile source of their own, never text from a file (matched exactly or by top package)
TRUSTED_COMPILERS = frozenset({"typing", "dataclasses", "collections", "ast", "pt2serde.format.fastcodec"})
#: torch's code generators that put strings from a program into source: their source is checked
CODEGEN = frozenset({"torch.fx.graph_module", "torch.fx.graph", "torch.export._unlift", "torch.fx._symbolic_trace"})
#: torch modules that compile fixed templates of their own (TorchScript, decompositions, lazy imports;
#: fx.operator_schemas evaluates the type annotations of a registered operator's schema, which a
#: file can name but not define)
TORCH_TEMPLATES = ("torch.jit", "torch._jit_internal", "torch._ops", "torch._decomp", "torch._prims",
                   "torch._refs", "torch.distributed", "torch._library", "torch._higher_order_ops",
                   "torch._inductor", "torch.fx.experimental.proxy_tensor", "torch.fx.operator_schemas")
#: builtins whose call in generated code would run or load code (or print to a terminal)
CODE_BUILTINS = frozenset({"exec", "eval", "compile", "__import__", "open", "breakpoint", "input", "globals",
                           "locals", "vars", "setattr", "delattr", "memoryview", "help", "exit", "quit", "print"})
#: what generated code may import at module level (fx's prelude)
_IMPORTABLE = ("torch", "math", "operator", "builtins", "typing")
_IMPORTABLE_FROM = ("torch", "math", "operator", "typing", "__future__")
#: syntax fx never generates from checked names
_FOREIGN_NODES = (ast.Lambda, ast.ClassDef, ast.Global, ast.Nonlocal, ast.With, ast.Try, ast.While, ast.For,
                  ast.AsyncFunctionDef, ast.Await, ast.Yield)


def code_violations(source: str) -> list[str]:
    """What is wrong with ``source``, compiled by torch's code generation (empty: fine)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        return [f"does not parse: {e}"]
    out = []
    for stmt in tree.body:
        if _allowed_import(stmt):
            continue
        if not isinstance(stmt, ast.FunctionDef):
            out.append(f"statement at module level: {ast.unparse(stmt)[:200]!r}")
            continue
        if stmt.decorator_list:
            out.append(f"decorated function {stmt.name}")
        for d in (*stmt.args.defaults, *[d for d in stmt.args.kw_defaults if d is not None]):
            if not isinstance(d, ast.Constant):
                out.append(f"default value that runs code: {ast.unparse(d)[:200]!r}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CODE_BUILTINS:
            out.append(f"call of {node.func.id}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr.endswith("__"):
            out.append(f"dunder attribute {node.attr}")
        elif isinstance(node, _FOREIGN_NODES):
            out.append(f"{type(node).__name__} in generated code")
    return out


def _allowed_import(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Import):
        return all(a.name.split(".")[0] in _IMPORTABLE for a in stmt.names)
    if isinstance(stmt, ast.ImportFrom):
        return (stmt.module or "").split(".")[0] in _IMPORTABLE_FROM
    return False


def trusted(caller: str) -> bool:
    """Whether module ``caller`` compiles only source of its own (never checked)."""
    return caller in TRUSTED_COMPILERS or caller.split(".")[0] in TRUSTED_COMPILERS


def is_codegen(caller: str) -> bool:
    return caller in CODEGEN


def is_torch_template(caller: str) -> bool:
    return caller.startswith(TORCH_TEMPLATES) and caller not in CODEGEN


def compile_violations(caller: str, source: object, filename: object) -> list[str]:
    """What is wrong with one ``compile`` audit event (``source``, ``filename``) made by module
    ``caller`` while a file was being handled (empty: fine). See the module docstring."""
    if trusted(caller) or is_torch_template(caller):
        return []
    if isinstance(filename, (str, bytes)) and os.path.isfile(filename):
        return []  # a module being imported: its code comes from its file
    if isinstance(source, ast.AST):
        try:
            source = ast.unparse(source)
        except Exception:  # noqa: BLE001 - a tree that cannot be printed cannot be judged
            return [f"syntax tree compiled by {caller or '?'}"]
    if isinstance(source, (bytes, bytearray, memoryview)):
        try:
            source = bytes(source).decode("utf-8")
        except UnicodeDecodeError:
            return [f"undecodable source compiled by {caller or '?'}"]
    if not isinstance(source, str):
        return [f"{type(source).__name__} compiled by {caller or '?'}"]
    if is_codegen(caller):
        return code_violations(source)
    return [f"source compiled by {caller or '?'}: {source[:120]!r}"]


def exec_allowed(caller: str, code: object) -> bool:
    """Whether an ``exec`` audit event of ``code`` made by module ``caller`` is accounted for:
    code compiled from a file (imports), or by a compiler whose ``compile`` the oracle judged
    (every string reaches ``exec`` through a ``compile`` event first)."""
    filename = getattr(code, "co_filename", None)
    if isinstance(filename, str) and os.path.isfile(filename):
        return True
    return trusted(caller) or is_codegen(caller) or is_torch_template(caller)
