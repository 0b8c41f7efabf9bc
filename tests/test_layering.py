"""Import rules: the package never leans on PyTorch's serializer, and the format layer is torch-free."""

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "src" / "pt2serde"

FORMAT_LAYER = ["errors", "_wire", "schema", "_fastcodec", "codec", "canonical", "payload", "upgrade",
                "extensions", "_util", "archive", "safepickle",
                "_srepr", "_term", "wiretext", "picklewalk", "contents", "compat_readers", "check", "inspection",
                "diffing", "cli", "legacy_expr", "names", "codegen_fields", "guards", "extent", "treespec_text",
                "mapguard", "_serialid", "filekind"]

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


@pytest.mark.parametrize("module", FORMAT_LAYER)
def test_format_layer_imports_no_torch(module):
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['sympy'] = None\n"
        f"import pt2serde.{module}\n"
        "import pt2serde\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None and m.split('.')[0] == 'torch']\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_format_layer_sources_have_no_torch_import():
    for module in FORMAT_LAYER:
        for line, imported, _ in _imports(PACKAGE / f"{module}.py"):
            assert not imported.split(".")[0] in ("torch", "sympy"), f"{module}.py:{line} imports {imported}"
