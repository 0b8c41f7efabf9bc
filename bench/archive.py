"""Save and load PT2 archives of GPT-2-sized programs with pt2serde and with PyTorch, in one run.

Programs: GPT-2 small (12 layers, d_model 768, vocabulary 50257, tied embeddings: 124M
parameters, 475 MiB of float32 weights) and a 1B-parameter GPT-2 (18 layers, d_model 2048:
3.8 GiB). For each, and for each library (``pt2serde.save/load`` and
``torch.export.save/load``), it measures:

* save: time and peak RSS growth of writing the archive (the program is built first);
* load: time and peak RSS growth of loading it;
* load + ``module()`` + first forward: the same for getting a first output;
* rewrite: how long another process's ``open`` of the loaded file for writing waits (pt2serde
  copies the mapping into memory first, see SECURITY.md) and what that adds to the loader's RSS;
* the archive size.

Every measurement runs in a fresh subprocess (so allocations of an earlier step cannot
hide growth), after a warm-up on a tiny program (so lazy imports are not timed). Peak RSS
growth is VmHWM after the step minus VmRSS before it (VmHWM reset through
/proc/self/clear_refs); "anon" is the growth of anonymous memory (RssAnon) at the end,
i.e. without the file pages a mapping brings in. Archives are written to ``--dir`` and
read back while in the page cache, for both libraries alike. Usage::

    .venv/bin/python bench/archive.py [--small] [--repeat 3] [--dir /tmp/pt2bench]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

from common import GPT2_SIZES, gpt2_program, proc_status, reset_peak_rss, table, weights_bytes

MiB = 1 << 20
AIMS = {  # model -> (load speed-up, save speed-up, RSS growth as a fraction of the weights)
    "gpt2-124M": (10.0, 2.0, 0.10),
    "gpt2-1B": (10.0, 4.0, 0.10),
}


# ===================================================================== worker side


def _quiet() -> None:
    import logging

    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)


def _libs(lib: str):
    import torch

    if lib == "pt2serde":
        import pt2serde

        return pt2serde.save, pt2serde.load
    return torch.export.save, torch.export.load


def _warm_up(lib: str, folder: str) -> None:
    """Save, load and run a tiny program once, so that lazy imports are not measured."""
    import torch

    save, load = _libs(lib)
    tiny = torch.export.export(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.GELU()), (torch.randn(2, 4),))
    path = os.path.join(folder, f"warmup-{lib}-{os.getpid()}.pt2")
    save(tiny, path)
    load(path).module()(torch.randn(2, 4))
    os.unlink(path)
    gc.collect()


def _measure(fn) -> dict:
    gc.collect()
    reset_peak_rss()
    before = proc_status()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    after = proc_status()
    return {
        "seconds": seconds,
        "peak_growth": after["VmHWM"] - before["VmRSS"],
        "anon_growth": after["RssAnon"] - before["RssAnon"],
        "result": result,
    }


def worker(step: str, lib: str, model: str, path: str, repeat: int = 1) -> dict:
    _quiet()
    import torch

    torch.manual_seed(0)
    save, load = _libs(lib)
    _warm_up(lib, os.path.dirname(path))
    if step == "save":
        ep = gpt2_program(model)
        runs = []
        for _ in range(repeat):  # the program is built once; each save starts with no dirty pages
            if os.path.exists(path):
                os.unlink(path)
            os.sync()
            runs.append(_measure(lambda: save(ep, path)))
        m = _best(runs)
        m["weights"] = weights_bytes(ep)
        m["params"] = sum(t.numel() for t in {id(t): t for t in ep.state_dict.values()}.values())
        m["archive_bytes"] = os.path.getsize(path)
    elif step == "load":
        m = _measure(lambda: load(path))  # the program stays alive until memory is read
        m["result"] = None
    elif step == "rewrite":  # a writer opens the loaded file in place: what the guarantee costs
        ep = load(path)
        before = proc_status()
        probe = ("import sys, time; t = time.perf_counter(); open(sys.argv[1], 'r+b').close(); "
                 "print(time.perf_counter() - t)")
        waited = subprocess.run([sys.executable, "-c", probe, path], capture_output=True, text=True, check=True)
        after = proc_status()
        m = {"seconds": float(waited.stdout), "peak_growth": after["VmRSS"] - before["VmRSS"],
             "anon_growth": after["RssAnon"] - before["RssAnon"], "result": None}
        del ep
    else:  # load, module(), first forward
        idx = torch.zeros(1, 8, dtype=torch.long)

        def first_output():
            with torch.no_grad():
                out = load(path).module()(idx)
            return float(out[0, -1, :4].sum())
        m = _measure(first_output)
    return m


# ===================================================================== driver side


def _run(step: str, lib: str, model: str, path: str, repeat: int = 1) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", step, "--lib", lib, "--model", model,
           "--path", path, "--repeat", str(repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _best(runs: list[dict]) -> dict:
    """The fastest run's time; the largest memory growth seen (the conservative reading)."""
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["peak_growth"] = max(r["peak_growth"] for r in runs)
    best["anon_growth"] = max(r["anon_growth"] for r in runs)
    return best


def _free_memory() -> int:
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    return info["MemAvailable"]


def _mib(n: float) -> str:
    return f"{n / MiB:,.0f} MiB"


def _growth(m: dict, weights: int) -> str:
    return f"{_mib(m['peak_growth'])} ({100 * m['peak_growth'] / weights:.1f}%, anon {_mib(m['anon_growth'])})"


def bench_model(model: str, folder: str, repeat: int) -> tuple[list[list[str]], list[str]]:
    paths = {lib: os.path.join(folder, f"{model}-{lib}.pt2") for lib in ("pt2serde", "torch")}
    results: dict[str, dict[str, dict]] = {lib: {} for lib in paths}
    for lib, path in paths.items():
        print(f"  {model}: saving with {lib} ...", flush=True)
        results[lib]["save"] = _run("save", lib, model, path, repeat)
    for step in ("load", "forward", "rewrite"):
        for lib, path in paths.items():
            print(f"  {model}: {step} with {lib} ...", flush=True)
            results[lib][step] = _best([_run(step, lib, model, path) for _ in range(repeat)])
    ours, theirs = results["pt2serde"], results["torch"]
    weights = ours["save"]["weights"]
    assert abs(ours["forward"]["result"] - theirs["forward"]["result"]) < 1e-3, "the two loads disagree"

    rows = []
    verdicts = []
    load_aim, save_aim, rss_aim = AIMS[model]
    for step, label in (("save", "save"), ("load", "load"), ("forward", "load + module() + forward")):
        a, b = ours[step], theirs[step]
        speedup = b["seconds"] / a["seconds"]
        rows.append([f"{model} {label} time", f"{a['seconds']:.3f} s", f"{b['seconds']:.3f} s", f"{speedup:.1f}x faster"])
        rss_ratio = a["peak_growth"] / b["peak_growth"] if b["peak_growth"] > 0 else float("inf")
        rows.append([f"{model} {label} peak RSS growth", _growth(a, weights), _growth(b, weights),
                     f"{rss_ratio:.3f}x of PyTorch's"])
        if step in ("save", "load"):
            aim = save_aim if step == "save" else load_aim
            ok_time = speedup >= aim
            ok_rss = a["peak_growth"] < rss_aim * weights
            verdicts.append(f"{model} {step}: {speedup:.1f}x faster (aim >= {aim:g}x: {'met' if ok_time else 'MISSED'}), "
                            f"RSS growth {100 * a['peak_growth'] / weights:.1f}% of the weights "
                            f"(aim < {100 * rss_aim:g}%: {'met' if ok_rss else 'MISSED'})")
    a, b = ours["rewrite"], theirs["rewrite"]
    rows.append([f"{model} writer's open of the loaded file waits", f"{a['seconds']:.3f} s", f"{b['seconds']:.3f} s",
                 "(the copy that keeps the program)"])
    rows.append([f"{model} loader's RSS growth from that write", _mib(a["peak_growth"]), _mib(b["peak_growth"]), ""])
    total = ours["load"]["seconds"] + a["seconds"]
    rows.append([f"{model} load + the copy a writer causes", f"{total:.3f} s", f"{theirs['load']['seconds']:.3f} s",
                 f"{theirs['load']['seconds'] / total:.1f}x faster"])
    size_a, size_b = ours["save"]["archive_bytes"], theirs["save"]["archive_bytes"]
    rows.append([f"{model} archive size", _mib(size_a), _mib(size_b), f"{size_a / size_b:.4f}x"])
    rows.append([f"{model} parameters / weights", f"{ours['save']['params'] / 1e6:,.1f}M", _mib(weights), ""])
    return rows, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="only the GPT-2-small program (skip the 1B one)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="saves per process, fresh processes per load (best time; 2 at most for the 1B program)")
    parser.add_argument("--dir", default=None, help="where to write the archives (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the archives")
    parser.add_argument("--worker", choices=("save", "load", "forward", "rewrite"), help=argparse.SUPPRESS)
    parser.add_argument("--lib", choices=("pt2serde", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=sorted(GPT2_SIZES), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        m = worker(args.worker, args.lib, args.model, args.path, args.repeat)
        print(json.dumps(m))
        return

    models = ["gpt2-124M"] if args.small else ["gpt2-124M", "gpt2-1B"]
    folder = args.dir or tempfile.mkdtemp(prefix="pt2bench-")
    os.makedirs(folder, exist_ok=True)
    if "gpt2-1B" in models:
        need_mem, need_disk = 12 << 30, 9 << 30
        free_disk = shutil.disk_usage(folder).free
        if _free_memory() < need_mem or free_disk < need_disk:
            raise SystemExit(f"the 1B program needs ~{need_mem >> 30} GiB of free memory and ~{need_disk >> 30} GiB "
                             f"of disk in {folder}; found {_free_memory() >> 30} GiB and {free_disk >> 30} GiB "
                             "(use --small to skip it)")
    rows, verdicts = [], []
    try:
        for model in models:
            r, v = bench_model(model, folder, max(1, args.repeat if model == "gpt2-124M" else min(args.repeat, 2)))
            rows += r
            verdicts += v
            print()
            print(table(rows, ["measurement", "pt2serde", "PyTorch 2.13", "ratio"]), flush=True)
            print()
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
