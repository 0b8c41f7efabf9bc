"""Run the fuzz harnesses and keep the log (``fuzz/results.jsonl``, ``fuzz/RESULTS.md``).

    nice -n 10 python fuzz/run.py --minutes 30 --slice 10 [--jobs 4] [codec archive ...]

Each harness runs in slices of ``--slice`` minutes until it has had ``--minutes`` in this
invocation; every slice is one libFuzzer process (atheris) on the harness' growing corpus
(``fuzz/corpus/<name>/``), against a snapshot of the committed ``src/`` (``git archive
HEAD``) so that edits in progress in the working tree never break a long run. With
``--jobs 1`` (the default) the harnesses take turns, round robin; with ``--jobs N`` up to N
harnesses run side by side (each its own slices in turn; give each a core). Every harness
process has its own marker file, so that one never sees another's. Known, already reported
bugs (``_common.KNOWN_BUGS``) are tolerated so that the search goes on past them. After
each slice one line is appended to ``results.jsonl`` (time, executions, coverage, corpus,
crash, and the gaps ``_common.entry_point`` counted: torch errors from ``module()``,
``unflatten`` or ``run_decompositions`` of a program that loaded, their first inputs under
``fuzz/crashes/gaps/<name>/``) and ``RESULTS.md``'s table is rewritten.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
HARNESSES = ("codec", "archive", "payload", "torchsave")
LOG = FUZZ / "results.jsonl"
RESULTS = FUZZ / "RESULTS.md"
GAPS = FUZZ / "crashes" / "gaps"
_LOCK = threading.Lock()  # results.jsonl and RESULTS.md, when harnesses run side by side
_STATS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", re.M)


def snapshot() -> tuple[str, str]:
    folder = tempfile.mkdtemp(prefix="pt2serde-fuzz-src-")
    commit = subprocess.check_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], text=True).strip()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD", "src"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return os.path.join(folder, "src"), commit


def run_slice(name: str, seconds: int) -> dict:
    src, commit = snapshot()
    marker = Path(tempfile.gettempdir()) / f"pt2serde-fuzz-marker-{name}"
    env = dict(os.environ, PYTHONPATH=src, PT2SERDE_FUZZ_TOLERATE_KNOWN="1", PT2SERDE_FUZZ_MARKER=str(marker),
               PT2SERDE_FUZZ_GAPS=str(GAPS))
    summary = GAPS / name / "summary.json"
    if summary.exists():
        summary.unlink()  # each slice writes its own counts
    cmd = [sys.executable, str(FUZZ / f"fuzz_{name}.py"), f"-max_total_time={seconds}", "-print_final_stats=1"]
    t0 = time.time()
    log_path = FUZZ / "crashes" / f"{name}.last.log"
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    took = time.time() - t0
    text = log_path.read_text(errors="replace")
    stats = _STATS.findall(text)
    execs, cov, ft, corp, corp_size = (stats[-1] if stats else ("0", "0", "0", "0", "0"))
    crash = None
    if proc.returncode != 0:
        m = re.search(r"Test unit written to (\S+)", text)
        crash = m.group(1) if m else f"exit {proc.returncode}"
    gaps = json.loads(summary.read_text()) if summary.exists() else {}
    record = {"harness": name, "commit": commit, "start": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0)),
              "seconds": round(took), "execs": int(execs), "cov": int(cov), "ft": int(ft), "corpus": int(corp),
              "corpus_size": corp_size, "crash": crash, "returncode": proc.returncode,
              "gaps": sum(g["count"] for g in gaps.values() if g["gap"]),
              "gap_kinds": sorted(k for k, g in gaps.items() if g["gap"]),
              "call_errors": sum(g["count"] for g in gaps.values() if not g["gap"])}
    with _LOCK, open(LOG, "a") as f:
        f.write(json.dumps(record) + "\n")
    subprocess.run(["rm", "-rf", os.path.dirname(src)])
    return record


def summarize() -> None:
    if LOG != FUZZ / "results.jsonl":
        return  # a trial run: RESULTS.md tells the story of results.jsonl only
    rows = [json.loads(line) for line in LOG.read_text().splitlines() if line.strip()] if LOG.exists() else []
    totals: dict[str, dict] = {}
    for r in rows:
        t = totals.setdefault(r["harness"], {"seconds": 0, "execs": 0, "slices": 0, "crashes": 0, "gaps": 0,
                                             "kinds": set()})
        t["seconds"] += r["seconds"]
        t["execs"] += r["execs"]
        t["slices"] += 1
        t["crashes"] += r["crash"] is not None
        t["gaps"] += r.get("gaps", 0)
        t["kinds"].update(r.get("gap_kinds", ()))
        t["cov"], t["ft"], t["corpus"], t["corpus_size"] = r["cov"], r["ft"], r["corpus"], r["corpus_size"]
        t["commit"] = r["commit"]
    lines = RESULTS.read_text().split("<!-- table -->")[0] if RESULTS.exists() else "# Fuzzing results\n\n"
    table = ["<!-- table -->", "",
             "| harness | total time | executions | slices | crashes | gaps (kinds) | final coverage (cov / ft) "
             "| final corpus | last commit |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in HARNESSES:
        t = totals.get(name)
        if t:
            table.append(f"| `fuzz_{name}.py` | {t['seconds'] / 60:.1f} min | {t['execs']:,} | {t['slices']} | "
                         f"{t['crashes']} | {t['gaps']} ({len(t['kinds'])}) | {t['cov']} / {t['ft']} | "
                         f"{t['corpus']} inputs, {t['corpus_size']} | {t['commit']} |")
    table += ["", "Every slice is a line of `fuzz/results.jsonl`.", ""]
    RESULTS.write_text(lines + "\n".join(table))


def run_harness(name: str, minutes: float, slice_minutes: float) -> None:
    """Slices of one harness until it has had ``minutes``."""
    left = minutes * 60
    while left > 0:
        record = run_slice(name, int(min(slice_minutes * 60, left)))
        left -= max(record["seconds"], 1)
        with _LOCK:
            print(json.dumps(record), flush=True)
            summarize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--slice", type=float, default=10)
    parser.add_argument("--jobs", type=int, default=1, help="harnesses run side by side (default: in turn)")
    parser.add_argument("--log", type=Path, default=None,
                        help="the slices' log (default fuzz/results.jsonl; another log leaves RESULTS.md alone)")
    parser.add_argument("harnesses", nargs="*", default=list(HARNESSES))
    args = parser.parse_args()
    global LOG
    LOG = args.log.resolve() if args.log is not None else LOG
    unknown = set(args.harnesses) - set(HARNESSES)
    if unknown:
        parser.error(f"unknown harness {sorted(unknown)}: choose from {HARNESSES}")
    if args.jobs > 1:
        with ThreadPoolExecutor(args.jobs) as pool:
            for future in [pool.submit(run_harness, n, args.minutes, args.slice) for n in args.harnesses]:
                future.result()
        return
    left = {name: args.minutes * 60 for name in args.harnesses}
    while any(v > 0 for v in left.values()):
        for name in args.harnesses:
            if left[name] <= 0:
                continue
            record = run_slice(name, int(min(args.slice * 60, left[name])))
            left[name] -= max(record["seconds"], 1)
            print(json.dumps(record), flush=True)
            summarize()


if __name__ == "__main__":
    main()
