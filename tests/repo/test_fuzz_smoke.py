"""The fuzz harnesses of ``fuzz/`` in CI: each runs for a few seconds, and the oracle itself is tested.

For every harness one subprocess runs atheris (coverage-guided) on a fresh corpus folder
filled with the harness' seeds (the compat corpus' archives, archives pt2serde saves, hostile
inputs), plus ``fuzz/regressions/<name>/`` (inputs that once broke a reader): every seed
and regression input is executed once, then mutants for the rest of the time. Any
exception other than ``SerializeError``, a hang, a big allocation or anything the input
makes run fails the test with libFuzzer's report. Without atheris the harness' own random
mutator does the same job (no coverage feedback).

The long runs (30 minutes and more per harness) are ``fuzz/run.py``'s job; their log is
``fuzz/RESULTS.md``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "fuzz"
HARNESSES = ("codec", "archive", "payload", "torchsave")
SECONDS = int(os.environ.get("PT2SERDE_FUZZ_SMOKE_SECONDS", "6"))


def _env(marker=None) -> dict:
    env = dict(os.environ)
    env.pop("PT2SERDE_FUZZ_TOLERATE_KNOWN", None)  # CI tolerates nothing
    env.pop("PT2SERDE_FUZZ_GAPS_FATAL", None)
    # fuzz_archive: run_decompositions (~0.6 s a program) on every 50th loaded program, not every
    # 10th as in long runs: 5 of the ~250 seeds (archive smoke: 20 s of CPU instead of 26; 10 before
    # module()/unflatten were fuzzed)
    env["PT2SERDE_FUZZ_DECOMPOSE_EVERY"] = "50"
    if marker is not None:  # never the default path a long run on this machine may be watching
        env["PT2SERDE_FUZZ_MARKER"] = str(marker)
        env["PT2SERDE_FUZZ_GAPS"] = str(Path(marker).parent / "gaps")  # nor its gap folder
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def _atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_runs_clean(name, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    regressions = FUZZ / "regressions" / name
    if _atheris():
        # libFuzzer watches getrusage's peak RSS, which a child inherits from this process
        # (pytest may have peaked at gigabytes): allow 6 GiB above that. The harness' own
        # oracle checks every input's peak separately.
        inherited_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        cmd = [sys.executable, str(FUZZ / f"fuzz_{name}.py"), f"-max_total_time={SECONDS}",
               f"-rss_limit_mb={inherited_mb + 6144}",
               f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", str(corpus)]
        if regressions.is_dir():
            cmd.append(str(regressions))
    else:
        cmd = [sys.executable, str(FUZZ / f"fuzz_{name}.py"), "--no-atheris", "--seconds", str(SECONDS)]
    proc = subprocess.run(cmd, env=_env(tmp_path / "marker"), cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    tail = "\n".join(line for line in out.splitlines() if not line.startswith("INFO: Instrumenting"))[-6000:]
    assert proc.returncode == 0, f"fuzz_{name} failed:\n{tail}"
    if _atheris():
        assert "INITED" in out and "DONE" in out, tail
        seeded = len(list(corpus.iterdir()))
        assert seeded >= 10, f"fuzz_{name} started from only {seeded} inputs"


# ------------------------------------------------------------------ the oracle catches what it must

_ORACLE_SELFTEST = textwrap.dedent(r"""
    import os, sys, time
    sys.path.insert(0, sys.argv[1])
    import _common
    from pt2serde import SerializeError

    oracle = _common.Oracle(forbid_code=True, input_timeout=1.0)
    results = {}

    def check(label, target, data=b"x"):
        try:
            oracle.run_one(target, data)
            results[label] = "passed"
        except BaseException as e:
            results[label] = type(e).__name__

    def refuse(data):
        raise SerializeError("refused")

    def key_error(data):
        {}["missing"]

    def system(data):
        os.system("true")

    def marker(data):
        _common.MARKER.touch()

    def evaluate(data):
        eval(data.decode())

    def swallowed_system(data):
        try:
            os.system("true")
        except Exception:
            raise SerializeError("the reader turned it into an error")

    def spin(data):
        while True:
            pass

    def allocate(data):
        block = bytearray(512 << 20)
        block[::4096] = b"\x01" * len(block[::4096])

    # code generation: judged by _codegen_oracle by the module that compiles (its __name__)
    def compiler(module):
        space = {"__name__": module}
        exec("def gen(source):\n    return compile(source, '<eval_with_key>.0', 'exec')", space)
        return space["gen"]

    fx_codegen, sympy_parser, torch_template = (
        compiler(m) for m in ("torch.fx.graph_module", "sympy.parsing.sympy_parser", "torch._ops"))
    clean = "import torch\ndef forward(self, x):\n    add = torch.ops.aten.add.Tensor(x, x);  x = None\n    return (add,)\n"
    injected = "def forward(self, x):\n    return x\nimport os\nos.getpid()\n"
    default = "def forward(self, x=__import__('os').getpid()):\n    return x\n"

    import torch  # before the oracle is armed: sympy and mpmath compile templates as they are imported

    def real_fx(data):
        torch.fx.symbolic_trace(torch.nn.Linear(2, 2))

    def gap(data):
        _common.entry_point("module", lambda: [][0])

    def deep(data):
        def down(n):
            return down(n + 1)
        _common.entry_point("module", lambda: down(0))

    check("refuse", refuse)
    check("key_error", key_error)
    check("system", system)
    check("swallowed_system", swallowed_system)
    check("marker", marker)
    check("eval", evaluate, b"1 + 1")
    check("spin", spin)
    check("allocate", allocate)
    check("fx_clean", lambda data: fx_codegen(clean))
    check("fx_injected", lambda data: fx_codegen(injected))
    check("fx_default", lambda data: fx_codegen(default))
    check("sympy_parse", lambda data: sympy_parser("x + 1"))
    check("torch_template", lambda data: torch_template("def f(): pass"))
    check("real_fx", real_fx)
    check("gap", gap, b"gap input")
    check("recursion", deep)
    results["gaps kept"] = sorted(p.name.split("-")[0] for p in (_common.GAPS / "selftest").iterdir())
    print(results)
""")


def test_the_oracle_catches_every_broken_promise(tmp_path):
    """Each kind of failure the harnesses look for is really caught (a target that merely
    refuses with SerializeError passes)."""
    proc = subprocess.run([sys.executable, "-c", _ORACLE_SELFTEST, str(FUZZ)], env=_env(tmp_path / "marker"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = eval(proc.stdout.strip().splitlines()[-1])  # our own subprocess' dict literal
    assert results == {
        "refuse": "passed",
        "key_error": "KeyError",
        "system": "OracleFailure",
        "swallowed_system": "OracleFailure",
        "marker": "OracleFailure",
        "eval": "OracleFailure",
        "spin": "Hang",
        "allocate": "OracleFailure",
        "fx_clean": "passed",
        "fx_injected": "OracleFailure",
        "fx_default": "OracleFailure",
        "sympy_parse": "OracleFailure",
        "torch_template": "passed",
        "real_fx": "passed",
        "gap": "passed",  # counted and kept, not a crash
        "recursion": "RecursionError",
        "gaps kept": ["module", "summary.json"],
    }


def test_guarded_buffers_fault_one_byte_past_the_end(tmp_path):
    """The buffers the payload and torch.save harnesses read from end at an unreadable page:
    a view one element too long crashes the process instead of reading silently."""
    script = textwrap.dedent(r"""
        import ctypes, sys
        sys.path.insert(0, sys.argv[1])
        import torch, _common
        view = _common.guarded(bytes(range(16)))
        t = torch.frombuffer(view, dtype=torch.uint8)
        assert t.sum().item() == sum(range(16))
        assert ctypes.string_at(t.data_ptr(), 16) == bytes(range(16))
        print("inside ok", flush=True)
        ctypes.string_at(t.data_ptr(), 17)
        print("read past the end without a fault")
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(FUZZ)], env=_env(tmp_path / "marker"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert "inside ok" in proc.stdout
    assert "without a fault" not in proc.stdout
    assert proc.returncode == -11  # SIGSEGV
