"""The package as a user installs it: no torch pin, the supported range in an extra, the
command line without torch, ``python -m pt2serde``, and the one-line errors of the bridge
when torch is absent or outside the supported range.

"Without torch" is simulated cheaply: a fresh interpreter with ``sys.modules['torch'] = None``
(every ``import torch`` then fails), as a machine where only ``pip install pt2serde`` ran.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tomllib

import pytest
import torch

import pt2serde
from cli_support import ROOT, _env
from pt2serde.bridge import torch_check

PYPROJECT = os.path.join(ROOT, "pyproject.toml")
NO_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['sympy'] = None\n"
# runs pt2serde/__main__.py exactly as `python -m pt2serde ARGS` does
AS_MAIN = NO_TORCH + "import runpy; sys.argv[0] = 'pt2serde'; runpy.run_module('pt2serde', run_name='__main__', alter_sys=True)"
NO_TORCH_LEFT = ("import sys; bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'sympy') "
                 "and sys.modules[m] is not None]; assert not bad, bad\n")


def _python(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=_env(env), timeout=120)


def _main_without_torch(*args: str) -> subprocess.CompletedProcess:
    return _python(AS_MAIN, *args)


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """Two small archives that differ in one weight."""
    class M(torch.nn.Module):
        def __init__(self, w):
            super().__init__()
            self.w = torch.nn.Parameter(w)

        def forward(self, x):
            return (x @ self.w).relu()

    d = tmp_path_factory.mktemp("packaging")
    a, b = d / "a.pt2", d / "b.pt2"
    x = (torch.ones(2, 3),)
    pt2serde.save(torch.export.export(M(torch.ones(3, 4)), x), a, extra_files={"notes.txt": "v1"})
    pt2serde.save(torch.export.export(M(torch.zeros(3, 4)), x), b)
    return str(a), str(b)


# ----------------------------------------------------------------------------- metadata


def _project() -> dict:
    with open(PYPROJECT, "rb") as f:
        return tomllib.load(f)["project"]


def test_dependencies_never_install_or_replace_torch():
    """`pip install pt2serde` next to a user's torch 2.14 must not pull or replace torch."""
    project = _project()
    assert not [d for d in project.get("dependencies", []) if d.lower().startswith("torch")]
    # the test extra must not carry a torch requirement either (the Makefile installs torch==X itself)
    assert not [d for d in project["optional-dependencies"]["test"] if d.lower().startswith("torch")]


def test_torch_extra_declares_the_range_the_bridge_checks():
    assert project_torch_extra() == [torch_check.SUPPORTED] == ["torch>=2.13,<2.15"]


def project_torch_extra() -> list[str]:
    return _project()["optional-dependencies"]["torch"]


def test_python_dash_m_runs_the_command_line():
    """Really `python -m pt2serde` (the module's __main__), torch importable or not."""
    proc = subprocess.run([sys.executable, "-m", "pt2serde", "--help"], capture_output=True, text=True,
                          env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: pt2serde ") and "inspect" in proc.stdout and "demo" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "pt2serde", "--version"], capture_output=True, text=True,
                          env=_env(), timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"pt2serde {pt2serde.__version__}", proc.stderr


# ----------------------------------------------------------------------------- without torch


def test_cli_inspect_validate_diff_run_without_torch(archives):
    a, b = archives
    proc = _main_without_torch("inspect", a)
    assert proc.returncode == 0, proc.stderr
    assert "notes.txt" in proc.stdout and "model" in proc.stdout
    proc = _main_without_torch("validate", a)
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout and "invalid" not in proc.stdout
    proc = _main_without_torch("diff", a, b)
    assert proc.returncode == 1, proc.stderr  # 1: the weights differ
    assert "w" in proc.stdout
    assert _main_without_torch("diff", a, a).returncode == 0
    # and nothing of torch or sympy was imported on the way
    proc = _python(NO_TORCH + "from pt2serde.cli import main\nmain(['validate', sys.argv[1]])\n" + NO_TORCH_LEFT, a)
    assert proc.returncode == 0, proc.stderr


def test_demo_without_torch_says_what_to_install_in_one_line():
    proc = _main_without_torch("demo")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("pt2serde demo: ")
    assert torch_check.INSTALL_HINT in lines[0] and "torch>=2.13,<2.15" in lines[0]


@pytest.mark.parametrize("name", ["save", "load", "load_all", "serialize", "deserialize"])
def test_torch_needing_api_without_torch_is_one_line_install_hint(name):
    proc = _python(NO_TORCH + f"import pt2serde\ntry:\n    pt2serde.{name}\n"
                   "except ModuleNotFoundError as e:\n    print(e.name, e, sep='|')\n")
    assert proc.returncode == 0, proc.stderr
    got_name, message = proc.stdout.rstrip("\n").split("|")
    assert got_name == "torch" and "\n" not in message
    assert message.endswith(f"install torch: {torch_check.INSTALL_HINT}")


def test_format_layer_still_works_without_torch():
    code = NO_TORCH + ("import pt2serde\nfrom pt2serde import schema\n"
                       "doc = pt2serde.from_dict(schema.RangeConstraint, {'min_val': 1, 'max_val': 8})\n"
                       "assert pt2serde.to_json_bytes(doc) == b'{\"min_val\": 1, \"max_val\": 8}', pt2serde.to_json_bytes(doc)\n"
                       ) + NO_TORCH_LEFT
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr


# ----------------------------------------------------------------------------- torch versions


@pytest.mark.parametrize("version", ["2.13.0", "2.13.0+cpu", "2.14.1", "2.14.0rc1"])
def test_supported_torch_versions(version):
    assert torch_check.check_version(version) is None


@pytest.mark.parametrize("version", ["2.12.1", "2.5.0+cu121", "2.15.0", "2.15.0a0+git1234", "3.0.0", "unknown"])
def test_unsupported_torch_versions_name_the_range(version):
    message = torch_check.check_version(version)
    assert message is not None and "\n" not in message
    assert f"supports torch>=2.13,<2.15, but torch {version} is installed" in message
    assert "pip install 'pt2serde[torch]'" in message and "PT2SERDE_ANY_TORCH=1" in message


FAKE_TORCH = ("import sys, types\nfake = types.ModuleType('torch'); fake.__version__ = sys.argv[1]\n"
              "sys.modules['torch'] = fake\nimport pt2serde\n"
              "try:\n    pt2serde.save\nexcept ImportError as e:\n    print(type(e).__name__, e, sep='|')\n"
              "else:\n    print('imported')\n")


def test_running_torch_outside_the_range_is_refused_at_first_use():
    proc = _python(FAKE_TORCH, "2.12.1")
    assert proc.returncode == 0, proc.stderr
    kind, message = proc.stdout.rstrip("\n").split("|")
    assert kind == "ImportError" and message.startswith(f"pt2serde {pt2serde.__version__} supports torch>=2.13,<2.15")


def test_override_lets_an_unsupported_torch_through():
    """PT2SERDE_ANY_TORCH=1: the check steps aside (here the fake torch then fails further in)."""
    proc = _python(FAKE_TORCH, "2.15.0", env={torch_check.OVERRIDE_ENV: "1"})
    assert "supports torch>=2.13" not in proc.stdout + proc.stderr


def test_running_torch_passes_the_check():
    assert torch_check.require_torch() is torch
    buf = io.BytesIO()
    pt2serde.save(torch.export.export(torch.nn.ReLU(), (torch.ones(2),)), buf)
    assert pt2serde.load(buf).module()(torch.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]


def test_torch_check_imports_no_torch():
    proc = _python(NO_TORCH + "import pt2serde.bridge.torch_check\n" + NO_TORCH_LEFT)
    assert proc.returncode == 0, proc.stderr
