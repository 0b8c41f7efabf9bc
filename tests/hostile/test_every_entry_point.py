"""Every hostile case of ``cases_*.py`` through every entry point (see ``everywhere.py``).

Each case ends in a ``SerializeError`` matching what it lies about, or loads harmlessly;
either way within 2 s of CPU (a case over it alone is run once more: a busy spell of a shared
machine) and 512 MiB per step, with no marker file, no generated code the
oracle rejects, no control character printed by the command line, and ``validate``
agreeing with ``load``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import everywhere  # noqa: E402


def _cases():
    out = []
    for path in sorted(HERE.glob("cases_*.py")):
        module = importlib.import_module(path.stem)
        out += [pytest.param(c, id=f"{path.stem[6:]}:{c.name}") for c in module.CASES]
    return out


CASES = _cases()


@pytest.mark.parametrize("case", CASES)
def test_hostile_case_everywhere(case, tmp_path):
    report = everywhere.run_case(case, tmp_path)
    problems = everywhere.problems_of(case, report)
    if problems and all(" s of CPU (limit " in p for p in problems):
        # only over the CPU limit: once more, in a fresh folder, to tell a busy spell of a shared
        # machine (seen: 2.5 s in a CI run for a step that takes 1.6 s alone) from work a file causes
        # (unbounded work is over the limit every time; a hang is caught by the step timeout)
        report = everywhere.run_case(case, tmp_path / "again")
        problems = everywhere.problems_of(case, report)
    assert not problems, "\n".join(problems) + "\n\nsteps: " + "\n".join(
        f"  {k}: {v['outcome'][:300]}" for k, v in report["steps"].items())


def test_the_oracle_sees_an_injection():
    """The code oracle rejects what an injection makes fx generate."""
    src = "\ndef forward(self, x):\n    y = x\n    return y\nimport os\nos.system('touch p')\n"
    assert any("module level" in v for v in everywhere.code_violations(src))
    src = "\ndef forward(self, x=exec(bytes([1]))):\n    return x\n"
    assert everywhere.code_violations(src)
    src = "\ndef forward(self, x):\n    f = torch.ops.aten.add.Tensor(x, y=exec('1'))\n    return f\n"
    assert everywhere.code_violations(src)
    clean = "\n\n\ndef forward(self, x):\n    add = torch.ops.aten.add.Tensor(x, x);  x = None\n    return (add,)\n"
    assert everywhere.code_violations(clean) == []
