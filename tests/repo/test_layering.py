"""Import rules: the package never leans on PyTorch's serializer, and the format layer is torch-free."""

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "src" / "pt2serde"

# The layers are folders (ARCHITECTURE.md). Every module is classified by where it lives, so a
# new module is covered the moment it is created.
TOP_LEVEL = ("__init__", "__main__", "schema", "wire", "errors", "extensions")  # the shared, torch-free vocabulary
TORCH_FREE_FOLDERS = ("format", "cli")
# what each place may import from pt2serde (besides itself): imports only go down
MAY_IMPORT = {
    "format": {"schema", "wire", "errors", "format"},
    "cli": {"schema", "wire", "errors", "format", "cli"},
    "bridge": {"schema", "wire", "errors", "extensions", "format", "bridge"},
    "top": {"schema", "wire", "errors", "extensions", "format", "cli", "bridge"},
}
VOCABULARY = {"schema", "wire", "errors"}  # what schema, wire, errors and extensions may import


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _place(path: pathlib.Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else "top"


ALL_MODULES = sorted(PACKAGE.rglob("*.py"))
TORCH_FREE = [p for p in ALL_MODULES if _place(p) in TORCH_FREE_FOLDERS or
              (_place(p) == "top" and p.stem in TOP_LEVEL)]


def test_every_module_lives_in_a_layer():
    stray = [str(p.relative_to(PACKAGE)) for p in ALL_MODULES
             if _place(p) == "top" and p.stem not in TOP_LEVEL or _place(p) not in MAY_IMPORT and _place(p) != "top"]
    assert stray == [], "a module outside format/, cli/, bridge/ and the shared top level"
    assert len(TORCH_FREE) > 30 and any(_place(p) == "bridge" for p in ALL_MODULES)


FORBIDDEN_MODULES = ("torch._export.serde", "torch.export.pt2_archive")
FORBIDDEN_NAMES = {("torch.export", "save"), ("torch.export", "load")}


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield node.lineno, node.module, alias.name


def test_package_never_imports_pytorchs_serializer():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for line, module, name in _imports(path):
            if module.startswith(FORBIDDEN_MODULES) or (module, name) in FORBIDDEN_NAMES:
                offenders.append(f"{path.name}:{line} imports {module}{'.' + name if name else ''}")
        text = path.read_text()
        for needle in ("torch.export.save(", "torch.export.load(", "weights_only=False"):
            for i, line in enumerate(text.splitlines(), 1):
                if needle in line and "allow_pickle=True only" not in line and not line.lstrip().startswith("#"):
                    offenders.append(f"{path.name}:{i} uses {needle}")
    assert offenders == []


def _pt2serde_imports(path: pathlib.Path):
    """(line, first part under pt2serde) of every import of a pt2serde module, absolute or relative."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            else:
                base = (node.module or "").split(".")
            if base[0] != "pt2serde":
                continue
            if len(base) > 1:
                yield node.lineno, base[1]
            else:  # from pt2serde import x, y
                for alias in node.names:
                    yield node.lineno, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "pt2serde" and len(parts) > 1:
                    yield node.lineno, parts[1]


@pytest.mark.parametrize("path", ALL_MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path):
    place = _place(path)
    allowed = MAY_IMPORT["top" if place == "top" else place]
    if place == "top" and path.stem in ("schema", "wire", "errors", "extensions"):
        allowed = VOCABULARY
    bad = [f"line {line}: pt2serde.{first}" for line, first in _pt2serde_imports(path)
           if first not in allowed and first != "__version__"]
    assert bad == [], f"{path.relative_to(PACKAGE)} may import only {sorted(allowed)}"


@pytest.mark.parametrize("path", TORCH_FREE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_torch_free_module_imports_without_torch(path):
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['sympy'] = None\n"
        f"import {_module_name(path)}\n"
        "import pt2serde\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None and m.split('.')[0] == 'torch']\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", TORCH_FREE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_torch_free_source_has_no_torch_import(path):
    """Also imports inside functions, which the import test above does not reach."""
    for line, imported, _ in _imports(path):
        assert imported.split(".")[0] not in ("torch", "sympy"), f"{path.name}:{line} imports {imported}"
