"""Cold start: load, ``module()`` and the first forward in fresh processes, pt2serde against PyTorch.

For each program (a tiny static Linear+ReLU, a static CNN, a dynamic-batch MLP) the parent
writes one archive, then runs fresh child processes, alternating the two sides. Each child
imports ``torch`` and ``torch.export`` before the clock, then times ``load`` (``import pt2serde``
included for pt2serde), ``ep.module()`` and the first forward, and says which of the heavy
packages each step imported. Prints medians and PyTorch / pt2serde ratios.

Both sides import from bytecode caches, as an installed package does: the children write and
read ``.pyc`` files under a temporary ``PYTHONPYCACHEPREFIX`` (filled by one untimed child per
side and program), whatever ``PYTHONDONTWRITEBYTECODE`` says; ``--no-bytecode-cache`` compiles
pt2serde from source in every child instead (what a source checkout with that variable set pays).

``--floor`` creates one ``FakeTensorMode`` before the clock: its ``__init__`` imports
``torch._dynamo`` (and with it sympy, ``symbolic_shapes``, parts of inductor), which any
loader of fake tensors pays, so what remains is what each library adds on top. Usage::

    .venv/bin/python bench/cold_start.py [--rounds 5] [--programs tiny,cnn,dynamic] [--floor]
    .venv/bin/python bench/cold_start.py --chains      # who imports the heavy packages, per step
    .venv/bin/python bench/cold_start.py --importtime  # -X importtime, largest top-level imports per step
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "src")
STEPS = ("load", "module", "forward")
# the packages whose import dominates a cold start (each checked after every step)
HEAVY = (
    "sympy", "torch._dynamo", "torch.fx.experimental.symbolic_shapes", "torch._subclasses.fake_tensor",
    "torch._higher_order_ops", "torch._functorch.predispatch", "torch._export.verifier", "torch._inductor",
    "torch.export._trace", "torch._functorch.aot_autograd", "networkx",
)
MARK = "#cold_start step "


# --------------------------------------------------------------------------- child


def _watch_imports(names: tuple[str, ...], found: dict[str, str]) -> None:
    """Record, for each module in ``names``, the innermost non-import frames that first asked for it."""
    import traceback

    class Watch:
        def find_spec(self, name, path=None, target=None):
            if name in names and name not in found:
                frames = [f for f in traceback.extract_stack()[:-1] if "importlib" not in f.filename]
                found[name] = " <- ".join(
                    f"{_short(f.filename)}:{f.lineno} {f.name}" for f in reversed(frames[-4:]))
            return None

    sys.meta_path.insert(0, Watch())


def _short(filename: str) -> str:
    for marker in ("site-packages/", "src/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return os.path.basename(filename)


def child(side: str, path: str, inputs_path: str, chains: bool, floor: bool) -> None:
    import time
    import warnings

    import torch
    import torch.export  # noqa: F401  (both sides: before the clock)

    warnings.filterwarnings("ignore")
    inputs = torch.load(inputs_path)
    if floor:
        from torch._subclasses.fake_tensor import FakeTensorMode

        FakeTensorMode()  # imports torch._dynamo: the floor of any loader of fake tensors
    found: dict[str, str] = {}
    if chains:
        _watch_imports(HEAVY, found)
    times, imported = {}, {}

    def step(name, fn):
        before = set(sys.modules)
        print(MARK + name, file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - t0
        new = set(sys.modules) - before
        imported[name] = {"count": len(new), "heavy": sorted(h for h in HEAVY if h in new)}
        return out

    def load():
        if side == "pt2serde":
            import pt2serde

            return pt2serde.load(path)
        return torch.export.load(path)

    ep = step("load", load)
    module = step("module", ep.module)
    step("forward", lambda: module(*inputs))
    print(MARK + "end", file=sys.stderr, flush=True)
    print(json.dumps({"times": times, "imported": imported,
                      "chains": {name: where for name, where in found.items() if name in sys.modules}}))


# --------------------------------------------------------------------------- parent


def _programs(names: list[str], folder: str) -> dict[str, tuple[str, str]]:
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x):
            return torch.relu(self.fc(x))

    class CNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
                torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10),
            )

        def forward(self, x):
            return self.body(x)

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(16, 32), torch.nn.Linear(32, 4)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    batch = torch.export.Dim("batch", min=2, max=1024)
    made = {
        "tiny": (Tiny(), (torch.randn(2, 8),), None),
        "cnn": (CNN().eval(), (torch.randn(1, 3, 32, 32),), None),
        "dynamic": (MLP(), (torch.randn(4, 16),), {"x": {0: batch}}),
    }
    out = {}
    for name in names:
        model, args, dims = made[name]
        path, inputs = os.path.join(folder, f"{name}.pt2"), os.path.join(folder, f"{name}.inputs.pt")
        torch.export.save(torch.export.export(model, args, dynamic_shapes=dims), path)
        torch.save(args, inputs)
        out[name] = (path, inputs)
    return out


def _run(side: tuple[str, str, str], path: str, inputs: str, args, *, importtime: bool = False):
    """One fresh child for ``side`` (label, loader, pt2serde source folder)."""
    label, kind, src = side
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if args.pycache:
        env["PYTHONPYCACHEPREFIX"] = args.pycache
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), os.path.abspath(__file__),
           "--child", kind, path, inputs, *(["--chains"] if args.chains else []), *(["--floor"] if args.floor else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"{label} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _importtime_steps(stderr: str, top: int, min_ms: float) -> dict[str, list[str]]:
    """The largest top-level imports of each step, each with its heaviest nested chain."""
    steps, current, rows = {}, None, []
    for line in stderr.splitlines():
        if line.startswith(MARK):
            if current is not None:
                steps[current] = rows
            current, rows = line[len(MARK):], []
        elif current is not None and line.startswith("import time:") and "|" in line:
            _, cumul, name = (p for p in line[len("import time:"):].split("|"))
            if cumul.strip().isdigit():
                rows.append((int(cumul), len(name) - len(name.lstrip()), name.strip()))
    out = {}
    for step, rows in steps.items():
        if not rows:
            continue
        base = min(depth for _, depth, _ in rows)
        tops = sorted((r for r in rows if r[1] == base), reverse=True)[:top]
        out[step] = [f"{us / 1000:7.1f} ms  {name}" for us, _, name in tops if us / 1000 >= min_ms]
    return out


def _report(name: str, sides, path: str, inputs: str, args) -> None:
    """Median times per step of ``args.rounds`` fresh children per side (in rotating order), ratios
    against the first side (PyTorch / pt2serde, and before / pt2serde with ``--before``)."""
    labels = [side[0] for side in sides]
    samples = {label: {step: [] for step in STEPS} for label in labels}
    heavy = {}
    for i in range(args.rounds):
        for side in sides[i % len(sides):] + sides[:i % len(sides)]:
            result, _ = _run(side, path, inputs, args)
            for step in STEPS:
                samples[side[0]][step].append(result["times"][step])
            heavy[side[0]] = {step: result["imported"][step]["heavy"] for step in STEPS}
    print(f"\n{name} (median of {args.rounds} fresh processes per side"
          f"{', FakeTensorMode created before the clock' if args.floor else ''})")
    print("  " + f"{'step':24s}" + "".join(f"{label:>11s}" for label in labels)
          + "".join(f"{label + '/' + labels[0]:>18s}" for label in labels[1:]))
    for k, step in enumerate(STEPS):
        rows = [(step, {label: statistics.median(samples[label][step]) for label in labels})]
        if k:
            rows.append(("load + " + " + ".join(STEPS[1:k + 1]), {label: statistics.median(
                [sum(samples[label][t][r] for t in STEPS[:k + 1]) for r in range(args.rounds)]) for label in labels}))
        for title, med in rows:
            print("  " + f"{title:24s}" + "".join(f"{med[label] * 1000:9.1f}ms" for label in labels)
                  + "".join(f"{med[label] / med[labels[0]]:17.2f}x" for label in labels[1:]))
    for label in labels:
        print(f"  heavy imports, {label}: " + "; ".join(
            f"{step}: {', '.join(heavy[label][step]) or '-'}" for step in STEPS))


def _explain(name: str, sides, path: str, inputs: str, args) -> None:
    """One child per side: new modules per step, where each heavy package was first imported,
    and (``--importtime``) the largest top-level imports of each step."""
    for side in sides:
        result, stderr = _run(side, path, inputs, args, importtime=args.importtime)
        print(f"\n== {name} / {side[0]}")
        for step in STEPS:
            print(f"  {step:8s} {result['times'][step] * 1000:7.1f} ms  "
                  f"{result['imported'][step]['count']:4d} new modules  heavy: "
                  f"{', '.join(result['imported'][step]['heavy']) or '-'}")
        for module, where in result["chains"].items():
            print(f"  {module}: {where}")
        for step, rows in (_importtime_steps(stderr, 6, 5.0) if args.importtime else {}).items():
            print(f"  -- {step}: largest top-level imports")
            print("\n".join("     " + r for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per side and program")
    parser.add_argument("--programs", default="tiny,cnn,dynamic")
    parser.add_argument("--chains", action="store_true", help="where each heavy package is first imported")
    parser.add_argument("--importtime", action="store_true", help="largest top-level imports per step")
    parser.add_argument("--floor", action="store_true", help="create a FakeTensorMode before the clock")
    parser.add_argument("--no-bytecode-cache", action="store_true", help="compile pt2serde from source in each child")
    parser.add_argument("--before", metavar="SRC", help="a third side: the pt2serde under SRC (e.g. an older "
                        "commit's src/, from `git archive <commit> src | tar -x -C /tmp/base`)")
    parser.add_argument("--child", nargs=3, metavar=("SIDE", "PATH", "INPUTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child, chains=args.chains, floor=args.floor)

    import warnings

    warnings.filterwarnings("ignore")
    sides = [("pt2serde", "pt2serde", SRC), ("PyTorch", "torch", SRC)]
    if args.before:
        sides.append(("before", "pt2serde", os.path.abspath(args.before)))
    with tempfile.TemporaryDirectory() as folder:
        args.pycache = None if args.no_bytecode_cache else os.path.join(folder, "pyc")
        programs = _programs(args.programs.split(","), folder)
        for name, (path, inputs) in programs.items():
            for side in sides if args.pycache else ():
                _run(side, path, inputs, args)  # untimed: fills the bytecode cache
            (_explain if args.chains or args.importtime else _report)(name, sides, path, inputs, args)


if __name__ == "__main__":
    main()
