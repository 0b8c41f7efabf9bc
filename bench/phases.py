"""Where a warm ``load``/``deserialize`` spends its time, phase by phase, pt2serde's own work
apart from PyTorch's, beside PyTorch's time for the same program in the same run.

For each phase of the load path (archive, strict JSON, schema decode, code-field gate,
expression check, payload or weights, graph building, the ``ExportedProgram`` constructor
with PyTorch's code generation and verifier, the collector's walk when it is re-enabled) it
prints the best time over ``--repeat`` warm runs and the part of it spent inside PyTorch
calls any loader of the format makes (``common.torch_work_timer``). Times are inclusive:
a nested phase is shown indented under its parent, and ``(rest)`` is what the parent spent
outside its listed children. The last lines give PyTorch's time for the same program, the
ratio, and what pt2serde's total and own work would have to be for ``--target``.
Usage::

    .venv/bin/python bench/phases.py --nodes 5000 [--dynamic]      # in-memory deserialize
    .venv/bin/python bench/phases.py --model swin-t                  # load of a saved archive
    .venv/bin/python bench/phases.py --archive model.pt2 [--imports transformers.models.swin.modeling_swin]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import tempfile
import time
import warnings
from collections import defaultdict
from typing import Callable, Iterator

from common import best_of, deep_program, table, torch_work_timer


def _phases() -> list[tuple[object, str, str]]:
    """(owner, attribute, label) of every phase; owners are looked up where the load path
    looks them up at call time."""
    import torch
    import torch.export.exported_program as ep_module

    from pt2serde.bridge import graph_load, package, program, signature, tensors
    from pt2serde.format import check, codec, codegen_fields, upgrade

    return [
        (package, "_Archive", "open archive"),
        (upgrade, "loads_json_counted", "strict JSON, keys proven unique by counting"),
        (upgrade, "_decode_current", "schema decode (counting)"),
        (codec, "loads_json", "strict JSON"),
        (upgrade, "decode_program", "schema decode"),
        (codegen_fields, "check_code_fields", "code-field gate"),
        (check, "check_expressions", "expression check"),
        (tensors, "decode_payload", "payload (in-memory tensors)"),
        (package, "_config", "weights config"),
        (package, "_tensor_entries", "weights views"),
        (signature, "signature_from_wire", "signature"),
        (graph_load.GraphDeserializer, "deserialize", "graph building"),
        (program, "ExportedProgram", "ExportedProgram constructor"),
        (torch.fx.GraphModule, "recompile", "PyTorch: code generation"),
        (ep_module.ExportedProgram, "validate", "PyTorch: verifier"),
    ]


class _Recorder:
    """Inclusive seconds per label, and PyTorch's seconds inside each, for one run."""

    def __init__(self, spent: dict) -> None:
        self.spent = spent
        self.total: dict[str, float] = defaultdict(float)
        self.torch: dict[str, float] = defaultdict(float)
        self.parent: dict[str, str | None] = {}
        self.order: list[str] = []
        self.stack: list[str] = []

    def wrap(self, fn: Callable, label: str) -> Callable:
        def timed(*args, **kwargs):
            if label not in self.parent:
                self.parent[label] = self.stack[-1] if self.stack else None
                self.order.append(label)
            self.stack.append(label)
            t0, s0 = time.perf_counter(), self.spent["s"]
            try:
                return fn(*args, **kwargs)
            finally:
                t = time.perf_counter() - t0
                self.total[label] += t
                # the timer adds PyTorch's time when its outermost call returns: a phase inside
                # one (PyTorch's own steps) is PyTorch's time throughout
                self.torch[label] += t if label.startswith("PyTorch") else self.spent["s"] - s0
                self.stack.pop()
        return timed


@contextlib.contextmanager
def _instrumented(recorder: _Recorder) -> Iterator[None]:
    from pt2serde.format import gcpause

    saved = []
    for owner, name, label in _phases():
        fn = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        saved.append((owner, name, fn))
        setattr(owner, name, recorder.wrap(fn, label))

    class Collector:  # the first collection after gc_paused re-enables the collector
        def __getattr__(self, name):
            return getattr(gc, name)

        def enable(self) -> None:  # that collection, made here: it walks what the load made
            recorder.wrap(lambda: gc.collect(0), "collector walk at the end")()
            gc.enable()

    saved.append((gcpause, "gc", gcpause.gc))
    gcpause.gc = Collector()
    try:
        yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def profile(fn: Callable[[], object], label: str, repeat: int) -> tuple[dict, dict, list]:
    """Best inclusive time per phase over ``repeat`` warm runs (each phase's best run), with
    PyTorch's time inside it in that run; ``fn`` itself is the phase ``label``."""
    fn()  # warm-up
    best: dict[str, tuple[float, float]] = {}
    parent: dict = {}
    order: list[str] = []
    for _ in range(repeat):
        gc.collect()
        with torch_work_timer() as spent:
            recorder = _Recorder(spent)
            with _instrumented(recorder):
                recorder.wrap(fn, label)()
        for label, t in recorder.total.items():
            if label not in best or t < best[label][0]:
                best[label] = (t, recorder.torch[label])
        parent.update(recorder.parent)
        order = order or recorder.order
    return best, parent, order


def report(best: dict, parent: dict, order: list[str]) -> str:
    def depth(label: str) -> int:
        return 0 if parent.get(label) is None else 1 + depth(parent[label])

    rows = []
    for label in order:
        t, torch_t = best[label]
        rows.append([f"{'  ' * depth(label)}{label}", f"{t * 1e3:.1f}", f"{torch_t * 1e3:.1f}",
                     f"{(t - torch_t) * 1e3:.1f}"])
        children = [c for c in order if parent.get(c) == label]
        if children:
            rest = t - sum(best[c][0] for c in children)
            rest_torch = torch_t - sum(best[c][1] for c in children)
            rows.append([f"{'  ' * (depth(label) + 1)}(rest)", f"{rest * 1e3:.1f}", f"{rest_torch * 1e3:.1f}",
                         f"{(rest - rest_torch) * 1e3:.1f}"])
    return table(rows, ["phase (inclusive)", "ms", "of which PyTorch", "pt2serde's own"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--nodes", type=int, help="in-memory deserialize of a deep MLP of about this many nodes")
    what.add_argument("--model", help="a bench/models.py model, exported and saved with torch.export.save")
    what.add_argument("--archive", help="a saved .pt2 archive")
    parser.add_argument("--dynamic", action="store_true", help="with --nodes or --model: the dynamic-shape program")
    parser.add_argument("--imports", default="", help="modules to import first (output types of the archive)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--target", type=float, default=10.0, help="the ratio to state the budget for")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)

    import torch

    import pt2serde

    for name in filter(None, args.imports.split(",")):
        importlib.import_module(name)
    if args.nodes:
        from torch._export.serde.serialize import deserialize as torch_deserialize  # the baseline
        from torch._export.serde.serialize import serialize as torch_serialize

        ep = deep_program(args.nodes, dynamic=args.dynamic)
        ours_art, theirs_art = pt2serde.serialize(ep), torch_serialize(ep)
        ours, theirs = (lambda: pt2serde.deserialize(ours_art)), (lambda: torch_deserialize(theirs_art))
        label = "pt2serde.deserialize"
        title = f"deserialize, {args.nodes} nodes{' (dynamic batch)' if args.dynamic else ''}"
    else:
        path = args.archive
        if args.model:
            from models import export_both

            programs, modules = export_both(args.model)
            for name in modules.split(","):
                importlib.import_module(name)
            ep = programs[-1 if args.dynamic else 0][1]
            path = os.path.join(tempfile.mkdtemp(), "model.pt2")
            torch.export.save(ep, path)
        ours, theirs = (lambda: pt2serde.load(path)), (lambda: torch.export.load(path))
        label = "pt2serde.load"
        title = f"load of {args.model or path}{' (dynamic)' if args.model and args.dynamic else ''}"

    best, parent, order = profile(ours, label, args.repeat)
    print(f"{title}: best of {args.repeat} warm runs per phase, torch {torch.__version__}\n")
    print(report(best, parent, order))
    total, total_torch = best[order[0]]
    theirs_s = best_of(theirs, max(1, min(3, args.repeat)))
    budget = theirs_s / args.target
    print(f"\nPyTorch: {theirs_s * 1e3:.0f} ms; pt2serde {total * 1e3:.0f} ms: {theirs_s / total:.1f}x "
          f"(PyTorch's work alone would give {theirs_s / total_torch:.1f}x)")
    print(f"for {args.target:g}x: at most {budget * 1e3:.0f} ms in all, so pt2serde's own work at most "
          f"{(budget - total_torch) * 1e3:.0f} ms (now {(total - total_torch) * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()
