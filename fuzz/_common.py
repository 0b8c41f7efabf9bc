"""The driver and oracles shared by pt2serde's fuzz harnesses (``fuzz/fuzz_*.py``).

A harness module defines ``NAME``, ``target(data: bytes) -> None`` (the reader under test,
fed untrusted bytes), ``seeds() -> Iterable[bytes]`` and optionally ``mutate(data, rng,
max_size, mutate_bytes) -> bytes`` (a structure-aware mutator), then calls :func:`main`.

The oracle, checked for every input by :func:`run_one`:

* only ``pt2serde.SerializeError`` may escape the target (anything else is a crash, and
  so is a segfault, which kills the process);
* no hang: each input gets ``INPUT_TIMEOUT`` seconds of CPU time (an interval timer raises
  :class:`Hang`, a ``BaseException`` no ``except Exception`` in the reader can swallow;
  libFuzzer's own ``-timeout`` is the backstop for time spent inside C code);
* no allocation far beyond the input: the peak RSS of the input (``VmHWM`` reset through
  ``/proc/self/clear_refs`` before it) may grow by at most ``MEM_FIXED + MEM_FACTOR *
  len(data)`` bytes;
* nothing from the input runs: an audit hook records process creation, ``os.system``,
  ``pickle.find_class`` (the real unpickler resolving a global) and ``ctypes`` calls made
  while the target runs, and seeds hold pickles that would create :data:`MARKER`, which
  must never appear;
* generated code is what it should be: every ``compile``/``exec`` of source text is judged
  by the oracle shared with ``tests/hostile/everywhere.py`` (``_codegen_oracle.py``): torch's
  code generators (fx, ``export._unlift``) may compile, but their source must be function
  definitions only, with constant defaults, no calls of ``exec``/``eval``/..., no dunder
  attributes; torch's fixed templates pass; any other compile of source text is a finding.

Entry points after a successful load (``fuzz_archive``: ``ep.module()`` and its call,
``torch.export.unflatten`` and its call, ``run_decompositions``) go through :func:`entry_point`:
an exception other than ``SerializeError`` there does not stop the search but is counted as
a *gap* (pt2serde loaded a program torch cannot use: ``validate`` would call it valid), its
first input per kind kept under :data:`GAPS` (``summary.json`` lists them);
PT2SERDE_FUZZ_GAPS_FATAL=1 makes gaps crashes instead.

Standalone: ``python fuzz/fuzz_codec.py [-max_total_time=SECONDS] [libFuzzer flags]``
runs atheris (coverage-guided, pt2serde's modules instrumented) on ``fuzz/corpus/<name>/``
(filled with the seeds on first use). Without atheris, or with ``--no-atheris``, a plain
random mutator runs instead (``--seconds N``); ``--replay`` runs every seed, corpus and
regression input once. ``fuzz/run.py`` runs harnesses in turn and keeps the log.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import random
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable, Iterable

import _codegen_oracle

FUZZ_DIR = Path(__file__).resolve().parent
ROOT = FUZZ_DIR.parent
sys.path.append(str(ROOT / "tests"))
from compat import CORPUS as COMPAT_CORPUS  # noqa: E402  the tests' one name for the compat corpus (in the repository)

#: the file seed pickles would create if unpickled for real (PT2SERDE_FUZZ_MARKER: another path,
#: so that runs side by side, e.g. CI's smoke tests next to a long run, never see each other's)
MARKER = Path(os.environ.get("PT2SERDE_FUZZ_MARKER") or Path(tempfile.gettempdir()) / "pt2serde-fuzz-marker")
MEM_FIXED = 128 << 20  # headroom: interpreter caches, torch's first use of an op, the zero-fill cap (64 MiB)
MEM_FACTOR = 32

# audit events that mean "the input made us run something"
_ALWAYS_FORBIDDEN = {
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
    "pickle.find_class", "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function",
    "socket.connect", "os.startfile", "webbrowser.open", "os.kill", "os.remove", "os.unlink", "os.rename",
    "shutil.rmtree",
}
_CODE_EVENTS = {"exec", "compile"}
#: where the first input of each kind of gap is kept (see the module docstring)
GAPS = Path(os.environ.get("PT2SERDE_FUZZ_GAPS") or FUZZ_DIR / "crashes" / "gaps")
GAPS_FATAL = os.environ.get("PT2SERDE_FUZZ_GAPS_FATAL") == "1"
#: entry-point steps whose failure is a gap; any other step's (a call of the program on the
#: file's own sample inputs) may fail with torch's error: the inputs need not fit the program
GAP_STEPS = {"module", "unflatten", "run_decompositions"}


#: Long runs (``fuzz/run.py``) set PT2SERDE_FUZZ_TOLERATE_KNOWN=1 so that a bug already
#: reported (listed in KNOWN_BUGS, each with a regression test that fails until it is fixed)
#: does not stop the search for new ones. CI and ``--replay`` never tolerate anything.
TOLERATE_KNOWN = os.environ.get("PT2SERDE_FUZZ_TOLERATE_KNOWN") == "1"
KNOWN_BUGS: list[tuple[type, str]] = [
    # (exception type, text in its message), e.g. while a reported fix is pending elsewhere.
    # Was: codec.loads_json let the ValueError of CPython's int-string limit escape (fixed in f89bc7c).
]


def known_bug(e: BaseException) -> bool:
    return any(type(e) is kind and text in str(e) for kind, text in KNOWN_BUGS)


class Hang(BaseException):
    """Raised by the interval timer when one input runs past its time limit."""


class OracleFailure(AssertionError):
    """An input broke a promise other than "only SerializeError escapes"."""


def _instrumented_imports():
    """Context in which pt2serde's modules are imported with atheris' coverage instrumentation."""
    try:
        import atheris
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return atheris.instrument_imports(include=["pt2serde"])


def import_pt2serde(with_torch: bool = True) -> None:
    """Import every pt2serde module (instrumented when atheris is present)."""
    import importlib
    import pkgutil

    with _instrumented_imports():
        import pt2serde

        for info in pkgutil.iter_modules(pt2serde.__path__):
            if not with_torch and info.name in _TORCH_MODULES:
                continue
            importlib.import_module(f"pt2serde.{info.name}")


_TORCH_MODULES = {
    "arguments", "graph", "graph_load", "metadata", "package", "program", "samples", "signature", "symbolic",
    "tables", "targets", "tensors", "torchsave", "treespec", "triton", "exprparse", "extensions", "cli",
}


# ================================================================== the oracle


class Oracle:
    def __init__(self, *, forbid_code: bool, input_timeout: float, name: str = "selftest") -> None:
        self.forbid = set(_ALWAYS_FORBIDDEN) | (_CODE_EVENTS if forbid_code else set())
        self.input_timeout = input_timeout
        self.name = name
        self.armed = False
        self.events: list[str] = []
        self.can_reset_peak = _reset_peak()
        self.slowest = 0.0
        self.peak_growth = 0
        self.known_hits = 0
        self.data = b""
        self.gaps: dict[str, dict] = {}
        self.gaps_written = 0.0
        sys.addaudithook(self._audit)
        global _ORACLE
        _ORACLE = self
        signal.signal(signal.SIGVTALRM, self._alarm)  # SIGALRM stays libFuzzer's (-timeout)

    def _audit(self, event: str, args) -> None:
        if not (self.armed and event in self.forbid):
            return
        caller = sys._getframe(1).f_globals.get("__name__") or ""
        if event == "compile":  # (the oracle's own ast.parse comes back here from "ast": trusted)
            whats = _codegen_oracle.compile_violations(caller, args[0], args[1])
            if not whats:
                return
            self.events.append(f"compile by {caller} of {_short(args[0])}: {'; '.join(whats)}")
        elif event == "exec" and _codegen_oracle.exec_allowed(caller, args[0]):
            return  # its source passed the compile check (or came from a module's file)
        else:
            self.events.append(f"{event}{_short(args)} (called from {caller})")
        raise OracleFailure(f"the input made the reader run {self.events[-1]}")

    def _alarm(self, signum, frame) -> None:
        if self.armed:
            raise Hang(f"one input ran past {self.input_timeout} s")

    def run_one(self, target: Callable[[bytes], None], data: bytes) -> None:
        from pt2serde import SerializeError

        if MARKER.exists():
            MARKER.unlink()
        self.data = data
        base = _rss()
        if self.can_reset_peak:
            _reset_peak()
        self.events.clear()
        t0 = time.perf_counter()
        self.armed = True
        signal.setitimer(signal.ITIMER_VIRTUAL, self.input_timeout)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                target(data)
        except SerializeError as e:
            if not str(e):
                raise OracleFailure("a SerializeError without a message") from e
        except Exception as e:
            if not (TOLERATE_KNOWN and known_bug(e)):
                raise
            self.known_hits += 1
        finally:
            signal.setitimer(signal.ITIMER_VIRTUAL, 0)
            self.armed = False
        took = time.perf_counter() - t0
        self.slowest = max(self.slowest, took)
        if self.events:
            raise OracleFailure(f"the input made the reader run {self.events[0]}")
        if MARKER.exists():
            raise OracleFailure(f"code from the input ran: {MARKER} was created")
        if self.can_reset_peak:
            grown = _peak() - base
            self.peak_growth = max(self.peak_growth, grown)
            if grown > MEM_FIXED + MEM_FACTOR * len(data):
                raise OracleFailure(f"a {len(data)}-byte input raised the peak RSS by {grown >> 20} MiB")


    def gap(self, step: str, error: Exception) -> None:
        """Count ``error``, raised by entry point ``step`` after a successful load, as a gap;
        keep the first input of each kind (step, exception type, where torch raised it)."""
        frames = traceback.extract_tb(error.__traceback__)
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        key = f"{step}: {type(error).__name__} at {where}"
        entry = self.gaps.get(key)
        if entry is None:
            entry = self.gaps[key] = {"count": 0, "message": str(error)[:300], "gap": step in GAP_STEPS}
            if entry["gap"]:
                folder = GAPS / self.name
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"{step}-{type(error).__name__}-{hashlib.sha1(self.data).hexdigest()[:12]}"
                path.write_bytes(self.data)
                entry["input"] = str(path)
        entry["count"] += 1
        if entry["count"] == 1 or time.monotonic() - self.gaps_written > 5:
            self.write_gaps()

    def write_gaps(self) -> None:
        """Write the gap counters to ``GAPS/<name>/summary.json`` (libFuzzer exits without
        running Python's exit handlers, so this happens as they change)."""
        import json

        if not self.gaps:
            return
        folder = GAPS / self.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "summary.json").write_text(json.dumps(self.gaps, indent=1, sort_keys=True))
        self.gaps_written = time.monotonic()

    def gap_totals(self) -> str:
        gaps = sum(e["count"] for e in self.gaps.values() if e["gap"])
        calls = sum(e["count"] for e in self.gaps.values() if not e["gap"])
        kinds = sum(1 for e in self.gaps.values() if e["gap"])
        return f"gaps {gaps} ({kinds} kinds), call errors {calls}"


def entry_point(step: str, fn: Callable[[], object]) -> object:
    """Run one entry point a user has on a program that loaded (``ep.module()``, a call...).

    Returns its result, or None when it failed acceptably: a ``SerializeError``, or any other
    ``Exception`` (counted as a gap, see the module docstring). What the oracle checks (code,
    marker, hang, memory) stays fatal, and so do ``RecursionError`` and ``MemoryError``
    (unbounded work)."""
    from pt2serde import SerializeError

    try:
        return fn()
    except SerializeError:
        return None
    except (RecursionError, MemoryError, OracleFailure):
        raise
    except Exception as e:  # noqa: BLE001 - torch's own error: a gap, counted and kept
        if GAPS_FATAL or _ORACLE is None:
            raise
        _ORACLE.gap(step, e)
        return None


def _short(args) -> str:
    text = repr(args)
    return text if len(text) < 200 else text[:200] + "..."


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status(key: str) -> int:
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def _peak() -> int:
    return _status(b"VmHWM:")


def _rss() -> int:
    return _status(b"VmRSS:")


# ============================================================== memory checks


def check_tensor_in_bounds(t, where: str = "tensor") -> None:
    """Every element of ``t`` lies inside its storage, and reading them all works."""
    import torch

    if t.device.type != "cpu" or t.layout != torch.strided:
        return
    if t.numel() == 0:
        return
    item = t.element_size()
    last = t.storage_offset() + sum((n - 1) * s for n, s in zip(t.shape, t.stride()))
    if min(t.stride(), default=0) < 0 or t.storage_offset() < 0:
        raise OracleFailure(f"{where}: negative stride or offset {t.stride()} {t.storage_offset()}")
    if (last + 1) * item > t.untyped_storage().nbytes():
        raise OracleFailure(f"{where}: views {(last + 1) * item} bytes of a {t.untyped_storage().nbytes()}-byte storage")
    if t.numel() <= 1 << 22:
        t.detach().clone()  # touches every element (a guard page after the buffer would fault)


_ORACLE: Oracle | None = None
_LIBC = None


def guarded(data: bytes) -> memoryview:
    """A writable copy of ``data`` that ends exactly at an unreadable page: reading one byte
    past the end faults (SIGSEGV), so a view that escapes the buffer is a crash, not a
    silent read of whatever memory follows."""
    import ctypes
    import mmap

    page = mmap.PAGESIZE
    n = len(data)
    body = -(-max(n, 1) // page) * page
    region = mmap.mmap(-1, body + page, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    start = body - n
    region[start:body] = data
    armed = _ORACLE is not None and _ORACLE.armed
    if armed:
        _ORACLE.armed = False  # the harness' own ctypes calls are not the input's doing
    try:
        global _LIBC
        if _LIBC is None:
            _LIBC = ctypes.CDLL(None, use_errno=True)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(region))
        if _LIBC.mprotect(ctypes.c_void_p(addr + body), ctypes.c_size_t(page), 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect failed")
    finally:
        if armed:
            _ORACLE.armed = True
    return memoryview(region)[start:body]


# ============================================================== seed material


def corpus_archives() -> list[Path]:
    """The real archives of the compat corpus (every writer release), smallest first."""
    if not COMPAT_CORPUS.is_dir():
        return []
    return sorted(COMPAT_CORPUS.glob("*/*.pt2"), key=lambda p: (p.stat().st_size, str(p)))


@functools.lru_cache(maxsize=1)
def saved_archives() -> list[bytes]:
    """Archives written by pt2serde itself (small programs with weights, constants, dynamic shapes)."""
    import torch

    import pt2serde

    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.arange(12.0).reshape(3, 4))
            self.register_buffer("b", torch.ones(4, dtype=torch.float64))
            self.c = torch.tensor([1, 2, 3], dtype=torch.int8)
            self.v = self.w[1:]  # a constant viewing the parameter (shared storage)

        def forward(self, x, y=None):
            out = x @ self.w.t() + self.b.sum().float() + self.c.sum() + self.v.sum()
            return (out, out.relu()) if y is None else {"a": out, "b": y * 2}

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for args, kwargs, dynamic in (((torch.ones(2, 4),), {}, None),
                                      ((torch.ones(3, 4),), {"y": torch.zeros(2)}, None),
                                      ((torch.ones(5, 4),), {}, ({0: torch.export.Dim("batch", min=2, max=64)},))):
            ep = torch.export.export(Small(), args, kwargs, dynamic_shapes=dynamic)
            buf = io.BytesIO()
            pt2serde.save(ep, buf, extra_files={"note.txt": "hello", "blob.bin": b"\xff\x00"})
            out.append(buf.getvalue())
    return out


def marker_pickle(protocol: int = 2) -> bytes:
    """A pickle that creates :data:`MARKER` when unpickled by the real unpickler."""
    import pickle

    class Run:
        def __reduce__(self):
            return os.system, (f"touch {MARKER}",)

    return pickle.dumps(Run(), protocol=protocol)


def zip_records(data: bytes) -> list[tuple[str, bytes]] | None:
    """(name, bytes) of every record, or None when the strict reader refuses ``data``."""
    from pt2serde import SerializeError
    from pt2serde.format.archive import ArchiveReader

    try:
        reader = ArchiveReader(data)
        return [(n, reader.read(n)) for n in reader.names()]
    except SerializeError:
        return None


def build_zip(records: Iterable[tuple[str, bytes]]) -> bytes | None:
    from pt2serde import SerializeError
    from pt2serde.format.archive_write import ArchiveWriter

    out = io.BytesIO()
    try:
        with ArchiveWriter(out) as writer:
            for name, value in records:
                writer.add(name, value)
    except SerializeError:
        return None
    return out.getvalue()


def zip_mutator(prefer: Callable[[str], float] = lambda name: 1.0):
    """A structure-aware mutator: with probability 0.6 mutate the bytes of one record of a
    valid zip (chosen with weights ``prefer(name)``) and write the zip again, so the
    mutation reaches the record's parser instead of the zip layer; otherwise (and for
    inputs that are not valid zips) mutate the raw bytes."""

    def mutate(data: bytes, rng: random.Random, max_size: int, mutate_bytes) -> bytes:
        if rng.random() < 0.6:
            records = zip_records(data)
            if records:
                weights = [prefer(n) for n, _ in records]
                if sum(weights) > 0:
                    i = rng.choices(range(len(records)), weights)[0]
                    name, value = records[i]
                    choice = rng.random()
                    if choice < 0.05 and len(records) > 1:
                        del records[i]
                    elif choice < 0.1:
                        j = rng.randrange(len(records))
                        records[i] = (name, records[j][1])
                    else:
                        new = mutate_bytes(value, max(2 * len(value), 64))
                        records[i] = (name, new)
                    built = build_zip(records)
                    if built is not None and len(built) <= max_size:
                        return built
        return mutate_bytes(data, max_size)

    return mutate


# ============================================================== the fallback mutator


def _random_mutate(data: bytes, max_size: int, rng: random.Random) -> bytes:
    """A small byte-level mutator (flips, interesting values, splices, deletions)."""
    buf = bytearray(data or b"\0")
    for _ in range(rng.choice((1, 1, 2, 3, 5))):
        op = rng.randrange(7)
        at = rng.randrange(len(buf)) if buf else 0
        if op == 0 and buf:
            buf[at] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[at] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, ord("9"), ord("-"), ord("["), ord("{"), ord('"')))
        elif op == 2 and len(buf) >= 4:
            at = rng.randrange(len(buf) - 3)
            struct.pack_into("<I", buf, at, rng.choice((0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, len(buf), 1 << 16)))
        elif op == 3:
            n = rng.randrange(1, 64)
            src = rng.randrange(len(buf)) if buf else 0
            buf[at:at] = buf[src:src + n]
        elif op == 4 and buf:
            del buf[at:at + rng.randrange(1, 64)]
        elif op == 5:
            buf[at:at] = rng.choice((b"9" * 50, b"1e999", b"-1", b"[" * 50, b'"\\ud800"', b"null", b"{}", b"\xff"))
        elif op == 6 and buf:
            buf[at:at + 8] = struct.pack("<q", rng.choice((-1, 1 << 62, 1 << 40, 2 ** 31)))
    return bytes(buf[:max_size])


# ================================================================== the driver


def _corpus_dir(name: str) -> Path:
    return FUZZ_DIR / "corpus" / name


def regression_inputs(name: str) -> list[Path]:
    folder = FUZZ_DIR / "regressions" / name
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def fill_corpus(name: str, seeds: Callable[[], Iterable[bytes]]) -> Path:
    folder = _corpus_dir(name)
    if not folder.is_dir() or not any(folder.iterdir()):
        folder.mkdir(parents=True, exist_ok=True)
        for data in seeds():
            (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)
    return folder


def main(module) -> None:
    """Run the harness of ``module`` (see the module docstring for the command line)."""
    argv = list(sys.argv)
    use_atheris = "--no-atheris" not in argv
    argv = [a for a in argv if a != "--no-atheris"]
    replay = "--replay" in argv
    argv = [a for a in argv if a != "--replay"]
    seconds = 10.0
    if "--seconds" in argv:
        i = argv.index("--seconds")
        seconds = float(argv[i + 1])
        del argv[i:i + 2]
    input_timeout = float(getattr(module, "INPUT_TIMEOUT", 10.0))
    name = module.NAME
    oracle = Oracle(forbid_code=getattr(module, "FORBID_CODE", True), input_timeout=input_timeout, name=name)
    warm_up = getattr(module, "warm_up", None)
    if warm_up is not None:
        warm_up()  # unarmed: torch and sympy compile templates of their own on first use
    if replay:
        sys.exit(_replay(module, oracle))
    corpus = fill_corpus(name, module.seeds)
    try:
        if not use_atheris:
            raise ImportError
        import atheris
    except ImportError:
        sys.exit(_fallback(module, oracle, corpus, seconds))

    mutate = getattr(module, "mutate", None)

    def test_one(data: bytes) -> None:
        oracle.run_one(module.target, data)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        return mutate(data, random.Random(seed), max_size, atheris.Mutate)

    flags = [a for a in argv[1:] if a.startswith("-")]
    dirs = [a for a in argv[1:] if not a.startswith("-")] or [str(corpus)]
    first = Path(dirs[0])
    if first.is_dir() and not any(first.iterdir()):  # an empty corpus folder starts from the seeds
        for data in module.seeds():
            (first / hashlib.sha1(data).hexdigest()).write_bytes(data)
    defaults = {"-timeout": str(int(input_timeout) + 20), "-rss_limit_mb": "6144",
                "-max_len": str(getattr(module, "MAX_LEN", 1 << 16)),
                "-artifact_prefix": str(FUZZ_DIR / "crashes" / name) + "/"}
    (FUZZ_DIR / "crashes" / name).mkdir(parents=True, exist_ok=True)
    for key, value in defaults.items():
        if not any(f.startswith(key + "=") for f in flags):
            flags.append(f"{key}={value}")
    atheris.Setup([argv[0], *flags, *dirs], test_one, custom_mutator=custom_mutator if mutate else None)
    atheris.Fuzz()


def _replay(module, oracle: Oracle) -> int:
    inputs = list(module.seeds())
    inputs += [p.read_bytes() for p in regression_inputs(module.NAME)]
    folder = _corpus_dir(module.NAME)
    if folder.is_dir():
        inputs += [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()]
    for data in inputs:
        try:
            oracle.run_one(module.target, data)
        except BaseException:
            print(f"input {data[:200]!r}... ({len(data)} bytes) failed:", file=sys.stderr)
            raise
    oracle.write_gaps()
    print(f"{module.NAME}: replayed {len(inputs)} inputs, slowest {oracle.slowest:.2f} s, "
          f"peak RSS growth {oracle.peak_growth >> 20} MiB, {oracle.gap_totals()}")
    return 0


def _fallback(module, oracle: Oracle, corpus: Path, seconds: float) -> int:
    """Random mutation without coverage feedback (when atheris is not installed)."""
    rng = random.Random(int(os.environ.get("PT2SERDE_FUZZ_SEED", "0")) or None)
    pool = [p.read_bytes() for p in sorted(corpus.iterdir()) if p.is_file()]
    pool += [p.read_bytes() for p in regression_inputs(module.NAME)]
    if not pool:
        pool = [b""]
    mutate = getattr(module, "mutate", None)
    max_size = getattr(module, "MAX_LEN", 1 << 16)
    deadline = time.monotonic() + seconds
    execs = 0
    replay = list(pool)  # every corpus and regression input once, unchanged, then mutants
    while replay or time.monotonic() < deadline:
        if replay:
            data = replay.pop()
        else:
            parent = rng.choice(pool)
            data = mutate(parent, rng, max_size, lambda d, m: _random_mutate(d, m, rng)) if mutate \
                else _random_mutate(parent, max_size, rng)
        try:
            oracle.run_one(module.target, data)
        except BaseException:
            crash = FUZZ_DIR / "crashes" / module.NAME
            crash.mkdir(parents=True, exist_ok=True)
            path = crash / f"crash-{hashlib.sha1(data).hexdigest()}"
            path.write_bytes(data)
            traceback.print_exc()
            print(f"==ERROR== input written to {path}", file=sys.stderr)
            return 1
        execs += 1
    oracle.write_gaps()
    print(f"#{execs} DONE (no atheris) corp: {len(pool)} slowest {oracle.slowest:.2f} s, {oracle.gap_totals()}",
          file=sys.stderr)
    return 0


def ignore_warnings() -> None:
    warnings.simplefilter("ignore")
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # crashes are reported, not dumped


def is_fake(t) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(t, FakeTensor)


def torch_save_with_pickle(pkl: bytes) -> bytes:
    """A torch.save file (zip) whose ``data.pkl`` is ``pkl``."""
    import torch

    buf = io.BytesIO()
    torch.save([torch.zeros(2)], buf)
    records = zip_records(buf.getvalue())
    return build_zip([(n, pkl if n.endswith("/data.pkl") else v) for n, v in records])
