"""Run one hostile file through every entry point a user has, in a process of its own, with limits.

A :class:`Case` is a file an attacker could hand over. :func:`run_case` writes it to disk and
runs it in a process of its own that takes it through

* ``pt2serde.load``, ``load_all`` and, for document cases, ``deserialize`` of the same
  document in a ``SerializedArtifact``;
* on what loaded: the code of ``ep.graph_module`` and ``str(ep)`` (code generated on first
  use), ``ep.module()`` and a call of it on the program's sample inputs,
  ``ep.run_decompositions()``, ``torch.export.unflatten(ep)`` and a call of it;
* the command line, in process: ``inspect``, ``inspect --json``, ``validate``, ``diff``
  against the unmodified base archive, ``view`` (the HTML page) and ``diff --html``; each
  ends in one of its own exit codes (``view`` 0 or 2, ``diff`` 0, 1 or 2), never a traceback.

It reports each step's outcome (``ok``, ``SerializeError: ...``, or anything else), its wall
time and its peak RSS growth, every ``compile``/``exec`` of source text made while the file
was being handled that the code oracle (:func:`code_violations`) rejects, whether the marker
file appeared, and whether the command line printed a control character from the file.

The oracle for generated code (``fuzz/_codegen_oracle.py``, shared with the fuzzers): torch
compiles source text that it generates (fx's ``forward``, the guards function of
``module()``). Each such source must be a module of function definitions only (nothing runs
at module level), with constant default values, no calls of builtins that run or load code,
and no dunder attribute access; any other compile of source text (sympy's, say) is flagged
unless it is torch's own fixed template.

Cases of the attack classes live in ``cases_*.py`` beside this file (each exports ``CASES``)
and are run by ``test_every_entry_point.py``.

That process is forked from a server (``python everywhere.py --serve <dir>``, one per base
program and set of imports) that has imported torch and pt2serde and warmed up on the base
archive once: each case still runs alone, in a copy of a process that has seen nothing but
the base, and the suite does not pay torch's import and the warm-up (about 4 s) per case. The
server runs single-threaded (a fork of a process with OpenMP threads may hang); each case's
process gets back the thread settings a fresh child had, ends as a fresh process does, and
is waited for with everything it started (see :func:`_serve`). Answers carry a nonce, and a
server that answers out of turn, dies or stalls is replaced (the case fails).
``python everywhere.py <dir>`` runs one prepared case in a fresh process instead (debugging).
"""

from __future__ import annotations

import atexit
import dataclasses
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
#: limits the issue sets for every entry point: within 2 s (of CPU time) and 512 MiB
STEP_SECONDS = 2.0
STEP_BYTES = 512 << 20
#: how long a step may run before the child gives up on it (a hang)
HANG_SECONDS = 20

MODEL = "models/model.json"


@dataclasses.dataclass(frozen=True)
class Case:
    """One hostile file.

    ``build(marker)`` returns the archive's bytes (``marker``: a path that code from the file
    would create). ``mutate(doc, marker)``, when given, is the change made to the base program's
    document (a JSON dict, changed in place); the runner also feeds the changed document to
    ``deserialize``. ``refused``: a regex the ``SerializeError`` of ``load`` must match, or
    None when the safe outcome is that the file loads (then every later step must also end
    in a ``SerializeError`` or succeed, without violations).
    """

    name: str
    build: Callable[[str], bytes]
    refused: str | None
    mutate: Callable[[dict, str], None] | None = None
    base: str = "small"
    #: what validate must say: None = exactly what load says (the agreement property);
    #: "environment" = load depends on this process (registered ops, devices), not the file
    validate: str | None = None
    #: modules the child imports first, as a user imports what registers their classes and ops
    imports: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Case({self.name!r}, refused={self.refused!r})"


# ----------------------------------------------------------------------------- bases


def _bases():
    import torch

    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3, 4))
            self.register_buffer("b", torch.ones(4))

        def forward(self, x):
            return x @ self.w.t() + self.b.sum()

    class Inner(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x, d):
            return self.lin(x) + d["k"]

    class Nested(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

        def forward(self, x, d):
            return self.inner(x, d).relu()

    class Cond(torch.nn.Module):
        def forward(self, x):
            return torch.cond(x.sum() > 0, lambda x: x + 1, lambda x: x - 1, (x,))

    class Dynamic(torch.nn.Module):
        def forward(self, x):
            return x * 2

    def small():
        return torch.export.export(Small(), (torch.ones(2, 4),))

    def nested():  # submodules (unflatten) and a dict input (pytree keys)
        return torch.export.export(Nested(), (torch.ones(2, 4), {"k": torch.ones(4)}),
                                   preserve_module_call_signature=("inner",))

    def cond():
        return torch.export.export(Cond(), (torch.ones(3),))

    def dynamic():
        x = torch.ones(4, 3)
        return torch.export.export(Dynamic(), (x,), dynamic_shapes=({0: torch.export.Dim("n", min=2, max=64)},))

    class Scalars(torch.nn.Module):
        def forward(self, x, s: str):
            return x * 2 if s == "mul" else x

    def string_input():  # a str user input: torch writes it into the guards of ep.module()
        return torch.export.export(Scalars(), (torch.ones(3), "mul"))

    class Broadcast(torch.nn.Module):
        def forward(self, *xs):
            t = xs[0]
            for x in xs[1:]:
                t = t + x
            return t.sum()

    class FloatSize(torch.nn.Module):
        def forward(self, x):
            return torch.ops.aten.mul.Scalar(x, x.shape[0] / 2)

    def symfloat():  # a SymFloat `truediv` = IntTrueDiv(s77, 2), hinted, beside the SymInt s77
        return torch.export.export(FloatSize(), (torch.ones(4, 3),),
                                   dynamic_shapes=({0: torch.export.Dim("n", min=2, max=64)},))

    def broadcast(inputs: int = 8):  # inputs of 2 * inputs dimensions, each of size 2 in 2 of them (its own)
        shape = lambda j: [2 if 2 * j <= i < 2 * (j + 1) else 1 for i in range(2 * inputs)]  # noqa: E731
        return torch.export.export(Broadcast(), tuple(torch.ones(*shape(j)) for j in range(inputs)))

    return {"small": small, "nested": nested, "cond": cond, "dynamic": dynamic, "string_input": string_input,

            "broadcast": broadcast, "broadcast12": lambda: broadcast(12), "symfloat": symfloat}


_CACHE: dict = {}


def base_archive(base: str = "small") -> bytes:
    """The archive pt2serde writes for the base program ``base``."""
    if base not in _CACHE:
        import pt2serde

        buf = io.BytesIO()
        pt2serde.save(_bases()[base](), buf)
        _CACHE[base] = buf.getvalue()
    return _CACHE[base]


def base_artifact(base: str = "small"):
    """``pt2serde.serialize`` of the base program ``base`` (a fresh copy each call)."""
    key = "artifact:" + base
    if key not in _CACHE:
        import pt2serde

        _CACHE[key] = pt2serde.serialize(_bases()[base]())
    return dataclasses.replace(_CACHE[key])


def document_of(data: bytes) -> dict:
    sys.path.insert(0, str(TESTS))
    import test_hostile_archives as H

    return H.read_json(data, MODEL)


def with_document(data: bytes, doc: dict) -> bytes:
    sys.path.insert(0, str(TESTS))
    import test_hostile_archives as H

    return H.rewrite(data, replace={MODEL: json.dumps(doc).encode()})


def doc_case(name: str, mutate: Callable[[dict, str], None], refused: str | None, base: str = "small",
             validate: str | None = None) -> Case:
    """A case that changes only the program document of ``base``."""

    def build(marker: str) -> bytes:
        data = base_archive(base)
        doc = document_of(data)
        mutate(doc, marker)
        return with_document(data, doc)

    return Case(name, build, refused, mutate, base, validate)


def exec_code(marker: str) -> str:
    """A Python expression that creates ``marker``, written without dots, quotes or spaces."""
    code = f"import os; os.system('touch {marker}')".encode()
    return "exec(bytes([" + ",".join(str(b) for b in code) + "]))"


# ----------------------------------------------------------------------------- oracle

# The oracle over generated code lives in one place, shared with the fuzzers: fuzz/_codegen_oracle.py
sys.path.append(str(TESTS.parent / "fuzz"))
from _codegen_oracle import code_violations, compile_violations  # noqa: E402,F401 - code_violations: API


# ----------------------------------------------------------------------------- parent side


def run_case(case: Case, workdir: Path, timeout: float = 240) -> dict:
    """Build ``case`` under ``workdir`` and run it through every entry point in a child."""
    workdir.mkdir(parents=True, exist_ok=True)
    marker = workdir / "pwned"
    (workdir / "case.pt2").write_bytes(case.build(str(marker)))
    (workdir / "base.pt2").write_bytes(base_archive(case.base))
    (workdir / "imports.json").write_text(json.dumps(list(case.imports)))
    if case.mutate is not None:
        art = base_artifact(case.base)
        doc = json.loads(art.exported_program)
        case.mutate(doc, str(marker))
        art.exported_program = json.dumps(doc).encode()
        for field in ("exported_program", "state_dict", "constants", "example_inputs"):
            (workdir / f"artifact.{field}").write_bytes(getattr(art, field))
    status = _server(case.base, case.imports).run(workdir, timeout)
    output = (workdir / "output.txt").read_text(errors="replace") if (workdir / "output.txt").exists() else ""
    report_file = workdir / "report.json"
    if not report_file.exists():
        raise AssertionError(f"child died ({status}):\n{output[-3000:]}")
    report = json.loads(report_file.read_text())
    report["marker"] = marker.exists()
    report["stderr"] = output[-2000:]
    return report


class _Server:
    """``python everywhere.py --serve <dir>``: imports, warms up on the base, then forks one
    process per case directory it is sent (a line on its stdin); answers each with a line,
    tagged with the request's nonce, saying how that process ended."""

    def __init__(self, base: str, imports: tuple[str, ...]) -> None:
        import tempfile

        import torch

        self.dir = Path(tempfile.mkdtemp(prefix=f"everywhere-{base}-"))
        (self.dir / "base.pt2").write_bytes(base_archive(base))
        (self.dir / "imports.json").write_text(json.dumps(list(imports)))
        # the server runs single-threaded (a fork of a process with OpenMP threads can hang); each
        # case's process gets back this process' thread settings, as a fresh child had them
        restore = {var: os.environ.get(var) for var in _THREAD_VARS}
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(HERE), os.environ.get("PYTHONPATH", "")]),
                   EVERYWHERE_RESTORE=json.dumps({"env": restore, "threads": torch.get_num_threads()}),
                   **{var: "1" for var in _THREAD_VARS})
        self.log = open(self.dir / "server.txt", "w")
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(self.dir)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, env=env)
        self.pending = b""

    def run(self, workdir: Path, timeout: float) -> str:
        """How the case's process ended (``exit 0``, ``signal 11``); raises when it (or what it
        started) ran past ``timeout``, or when the server dies, stalls or answers out of turn."""
        import secrets

        nonce = secrets.token_hex(8)
        self.proc.stdin.write(f"{workdir}\t{timeout}\t{nonce}\n".encode())
        self.proc.stdin.flush()
        line = self._line(time.monotonic() + timeout + 60)
        if line is None:
            log = self._log()
            self.close(kill=True)
            raise AssertionError(f"the case server died or stalled:\n{log[-3000:]}")
        tag, _, answer = line.partition(" ")
        if tag != nonce:  # a line the server did not write for this request: nothing it says can be trusted
            self.close(kill=True)
            raise AssertionError(f"the case server's answer is not its own: {line[:300]!r}")
        if answer.startswith("killed"):
            raise AssertionError(f"the case {answer}")
        return answer

    def _line(self, deadline: float) -> str | None:
        """The server's next line, or None if it ends or none comes before ``deadline``."""
        import select

        fd = self.proc.stdout.fileno()
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode(errors="replace").strip()

    def _log(self) -> str:
        self.log.flush()
        return (self.dir / "server.txt").read_text(errors="replace")

    def close(self, kill: bool = False) -> None:
        import shutil

        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.stdin.close()
            self.proc.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


_SERVERS: dict[tuple, _Server] = {}


def _server(base: str, imports: tuple[str, ...]) -> _Server:
    key = (base, tuple(imports))
    server = _SERVERS.get(key)
    if server is None or server.proc.poll() is not None:
        server = _SERVERS[key] = _Server(base, tuple(imports))
    return server


@atexit.register
def _close_servers() -> None:
    for server in _SERVERS.values():
        server.close()


_FATAL = ("other: RecursionError", "other: MemoryError")
#: the exit codes the commands that write a page may end with (``view``: written or unreadable)
PAGE_EXITS = {"view": (0, 2), "diff_html": (0, 1, 2)}


def problems_of(case: Case, report: dict) -> list[str]:
    """Everything in ``report`` that breaks the promise for ``case`` (empty: the case passes)."""
    import re

    bad = []
    if report["marker"]:
        bad.append("the marker file appeared: code from the file ran")
    for v in report["violations"]:
        bad.append(f"generated code during {v['step']}: {v['what']}")
    for step, r in report["steps"].items():
        if r["outcome"].startswith("hang") or (r["outcome"].startswith("other:") and not (
                step.endswith("_call") and not r["outcome"].startswith(_FATAL))):
            # calling a loaded program may fail in torch (its own input checks: the file's sample
            # inputs need not fit); building it (module, unflatten, decompositions) may not
            bad.append(f"{step}: {r['outcome'][:400]}")
        # work is judged in CPU time (a busy machine stretches wall time; a hang is caught above)
        if r["cpu_seconds"] > STEP_SECONDS:
            bad.append(f"{step}: took {r['cpu_seconds']:.2f} s of CPU (limit {STEP_SECONDS} s)")
        if r["rss_growth"] > STEP_BYTES:
            bad.append(f"{step}: peak RSS grew {r['rss_growth'] >> 20} MiB (limit {STEP_BYTES >> 20} MiB)")
        if r.get("control_chars"):
            bad.append(f"{step}: printed control characters {r['control_chars']!r} from the file")
    for step, codes in PAGE_EXITS.items():
        exit_code = report["steps"].get(step, {}).get("exit")
        if exit_code not in codes:
            bad.append(f"{step}: exit {exit_code!r}, not one of {codes}")
    load = report["steps"].get("load", {}).get("outcome", "missing")
    if case.refused is None:
        if not load == "ok":
            bad.append(f"load should succeed, got {load[:300]}")
    elif not (load.startswith("SerializeError:") and re.search(case.refused, load)):
        bad.append(f"load should be refused matching {case.refused!r}, got {load[:300]}")
    for step in ("load_all", "deserialize"):
        other = report["steps"].get(step, {}).get("outcome")
        if other is not None and other.split(":")[0] != load.split(":")[0]:
            bad.append(f"{step} disagrees with load: {other[:200]} vs {load[:200]}")
    if case.validate != "environment":
        valid = report["steps"].get("validate", {}).get("exit")
        if valid is not None and (valid == 0) != (load == "ok" and report["steps"].get("module", {}).get(
                "outcome", "ok") == "ok"):
            bad.append(f"validate exit {valid} disagrees with load ({load[:200]})")
    return bad


# ----------------------------------------------------------------------------- child side


def _prepare(imports: list[str], base: Path, scratch: Path) -> Callable[[Path], None]:  # noqa: C901
    """Import, hook and warm up on the ``base`` archive; return the function that takes one
    prepared case directory through every step and writes its ``report.json``."""
    import contextlib
    import signal
    import warnings

    import torch

    import pt2serde
    from pt2serde import cli

    memory_dir = str(TESTS)
    sys.path.insert(0, memory_dir)
    from memory import PeakGrowth

    report: dict = {"steps": {}, "violations": []}
    current = {"step": None}
    compiled: list[tuple[str, str, str, str]] = []

    def hook(event, args):
        if current["step"] is None or event != "compile":
            return
        caller = sys._getframe(1).f_globals.get("__name__") or ""
        compiled.append((current["step"], caller, args[0], args[1]))  # judged after the steps

    sys.addaudithook(hook)

    class Hang(BaseException):
        pass

    def alarm(signum, frame):
        raise Hang()

    signal.signal(signal.SIGALRM, alarm)
    text_chars = set("\n\t")

    def step(name, fn, cli_step=False):
        current["step"] = name
        out = io.StringIO()
        result = {}
        t0, cpu0 = time.perf_counter(), time.process_time()
        signal.alarm(HANG_SECONDS)
        value = None
        try:
            with PeakGrowth() as mem, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if cli_step:
                    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                        try:
                            result["exit"] = fn()
                        except SystemExit as e:
                            result["exit"] = e.code
                    outcome = "ok"
                else:
                    value = fn()
                    outcome = "ok"
        except Hang:
            outcome, mem = f"hang: more than {HANG_SECONDS} s", None
        except pt2serde.SerializeError as e:
            outcome = f"SerializeError: {e}"
        except Exception as e:  # noqa: BLE001 - reported, and judged by the test
            outcome = f"other: {type(e).__name__}: {e}"
        finally:
            signal.alarm(0)
            current["step"] = None
        result.update(outcome=outcome, seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - cpu0,
                      rss_growth=mem.bytes if mem is not None else 1 << 62)
        if cli_step:
            printed = out.getvalue()
            result["printed"] = printed[-4000:]
            bad = sorted({c for c in printed if (ord(c) < 32 or 0x7f <= ord(c) < 0xa0) and c not in text_chars})
            if bad:
                result["control_chars"] = "".join(bad)
        report["steps"][name] = result
        return value

    for module in imports:
        __import__(module)
    # warm up on the unmodified base: torch, sympy and mpmath import lazily and compile
    # templates of their own on first use; the case's steps then see only what it causes
    base_ep = pt2serde.load(str(base))
    base_inputs = base_ep.example_inputs or ((), {})
    base_ep.module()(*base_inputs[0], **base_inputs[1])
    base_ep.run_decompositions()
    torch.export.unflatten(base_ep)(*base_inputs[0], **base_inputs[1])
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(["inspect", str(base)])
        cli.main(["view", str(base), "-o", str(scratch / "base.html")])
    del base_ep
    return lambda workdir: _steps(workdir, step, report, compiled)


def _steps(workdir: Path, step: Callable, report: dict, compiled: list) -> None:
    """Every entry point on ``workdir/case.pt2`` (one case per process: ``report`` and
    ``compiled`` start empty)."""
    import torch

    import pt2serde
    from pt2serde import cli

    case = str(workdir / "case.pt2")
    ep = step("load", lambda: pt2serde.load(case))
    step("load_all", lambda: pt2serde.load_all(case))
    art_file = workdir / "artifact.exported_program"
    if art_file.exists():
        art = pt2serde.SerializedArtifact(*(
            (workdir / f"artifact.{f}").read_bytes()
            for f in ("exported_program", "state_dict", "constants", "example_inputs")))
        step("deserialize", lambda: pt2serde.deserialize(art))
    if ep is not None:
        inputs = ep.example_inputs or ((), {})
        # the loaded graph module writes and compiles its code on first use (bridge/lazy_code.py)
        step("graph_module_code", lambda: (ep.graph_module.code, str(ep)))
        module = step("module", lambda: ep.module())
        if module is not None:
            step("module_call", lambda: module(*inputs[0], **inputs[1]))
        step("run_decompositions", lambda: ep.run_decompositions())
        flat = step("unflatten", lambda: torch.export.unflatten(ep))
        if flat is not None:
            step("unflatten_call", lambda: flat(*inputs[0], **inputs[1]))
    step("inspect", lambda: cli.main(["inspect", case]), cli_step=True)
    step("inspect_json", lambda: cli.main(["inspect", "--json", case]), cli_step=True)
    step("validate", lambda: cli.main(["validate", case]), cli_step=True)
    step("diff", lambda: cli.main(["diff", str(workdir / "base.pt2"), case]), cli_step=True)
    step("view", lambda: cli.main(["view", case, "-o", str(workdir / "case.html")]), cli_step=True)
    step("diff_html", lambda: cli.main(["diff", str(workdir / "base.pt2"), case, "--html",
                                        str(workdir / "diff.html")]), cli_step=True)
    for name, caller, source, filename in compiled:
        for what in compile_violations(caller, source, filename):
            text = source.decode("utf-8", "replace") if isinstance(source, bytes) else str(source)
            report["violations"].append({"step": name, "what": what, "source": text[:2000]})
    report["threads"] = torch.get_num_threads()
    (workdir / "report.json").write_text(json.dumps(report))


def _child(workdir: Path) -> None:
    """One prepared case in this fresh process."""
    run = _prepare(json.loads((workdir / "imports.json").read_text()), workdir / "base.pt2", workdir)
    run(workdir)


def _serve(folder: Path) -> None:
    """The case server: prepare once, then fork a process per ``<case dir>\t<timeout>\t<nonce>`` line.

    The case's process ends as a fresh one does (atexit handlers, finalizers, non-daemon
    threads); its output goes through a pipe that it and everything it starts inherit, and the
    server waits for that pipe to close, as ``subprocess.run`` waited on a fresh child's: code
    from the file that runs late (at exit, in a thread, in a background process) is still
    seen, and anything still running at the deadline is killed with the case's process group.
    """
    import contextlib
    import select
    import signal

    restore = json.loads(os.environ["EVERYWHERE_RESTORE"])
    run = _prepare(json.loads((folder / "imports.json").read_text()), folder / "base.pt2", folder)
    for line in sys.stdin:
        workdir, timeout, nonce = line.rstrip("\n").split("\t")
        deadline = time.monotonic() + float(timeout)
        sys.stdout.flush()
        sys.stderr.flush()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the case's process: its own group, its output into the pipe, nothing of the server's
            os.setpgid(0, 0)
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            os.close(w)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            for var, value in restore["env"].items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value
            import torch

            torch.set_num_threads(restore["threads"])  # the server never ran a thread pool: safe to start one
            code = 1
            try:
                run(Path(workdir))
                code = 0
            except BaseException:  # noqa: BLE001 - reported in the case's output, judged by the parent
                import traceback

                traceback.print_exc()
            raise SystemExit(code)  # out of the server's loop: this process shuts down as a fresh one would
        os.close(w)
        closed = False
        with open(os.path.join(workdir, "output.txt"), "wb") as out:
            while not closed:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([r], [], [], left)[0]:
                    break
                chunk = os.read(r, 1 << 16)
                closed = not chunk  # the case's process and everything it started have let go of it
                out.write(chunk)
        os.close(r)
        while True:  # the pipe closes as the process exits: reap it
            done, status = os.waitpid(pid, os.WNOHANG)
            if done or not closed or time.monotonic() > deadline:
                break
            time.sleep(0.002)
        if not (closed and done):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            if not done:
                os.waitpid(pid, 0)
            answer = f"killed after {timeout} s (still running: the case's process or what it started)"
        elif os.WIFSIGNALED(status):
            answer = f"signal {os.WTERMSIG(status)}"
        else:
            answer = f"exit {os.WEXITSTATUS(status)}"
        print(f"{nonce} {answer}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        _serve(Path(sys.argv[2]))
    else:
        _child(Path(sys.argv[1]))
