"""``pt2serde inspect`` on a ~1B-parameter archive: wall time and peak RSS, without torch.

(Not named ``inspect.py``: run as a script, that name would shadow the standard library's
``inspect`` module for everything this script imports.)

Builds the archive once (an embedding plus a stack of 4096x4096 linears, about 1.0e9
float32 parameters, ~3.7 GiB, saved with ``pt2serde.save``) unless it already exists,
then runs ``pt2serde inspect`` on it in a fresh subprocess with torch and sympy made
unimportable, several times, and reports the wall time and the peak resident set size of
each run, next to the same command on a tiny archive (the RSS baseline: interpreter plus
pt2serde). ``inspect`` reads only the JSON records of the mapped file, so both should be
about the same. Usage::

    .venv/bin/python bench/inspect_1b.py [PATH] [--params 1e9] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "src")
DEFAULT = os.path.join(tempfile.gettempdir(), "pt2serde-bench-1b.pt2")
NO_TORCH = ("import sys; sys.modules['torch'] = None; sys.modules['sympy'] = None; "
            "from pt2serde.cli import main; sys.exit(main())")


def build(path: str, params: float) -> None:
    import torch

    sys.path.insert(0, SRC)
    import pt2serde

    dim, vocab = 4096, 32000
    layers = max(1, round((params - vocab * dim) / (dim * dim)))

    class Big(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(vocab, dim)
            self.layers = torch.nn.ModuleList(torch.nn.Linear(dim, dim, bias=False) for _ in range(layers))
            self.norm = torch.nn.LayerNorm(dim)

        def forward(self, tokens):
            h = self.embed(tokens)
            for layer in self.layers:
                h = torch.relu(layer(h))
            return self.norm(h)

    t0 = time.perf_counter()
    with torch.device("meta"):
        model = Big()
    model = model.to_empty(device="cpu").eval()  # uninitialised memory: the values do not matter here
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.01)
    n = sum(p.numel() for p in model.parameters())
    batch = torch.export.Dim("batch", min=1, max=32)
    ep = torch.export.export(model, (torch.zeros(2, 8, dtype=torch.long),), dynamic_shapes={"tokens": {0: batch}})
    pt2serde.save(ep, path)
    print(f"built {path}: {n:,} parameters, {os.path.getsize(path) / 2**30:.2f} GiB "
          f"in {time.perf_counter() - t0:.0f} s")


def build_tiny(path: str) -> None:
    import torch

    sys.path.insert(0, SRC)
    import pt2serde

    ep = torch.export.export(torch.nn.Linear(4, 4), (torch.zeros(2, 4),))
    pt2serde.save(ep, path)


def run(args: list[str]) -> tuple[float, int, int, str]:
    """(wall seconds, peak RSS bytes, exit code, stdout) of one CLI run in a new process."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", NO_TORCH, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * 1024, proc.returncode, out.decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=DEFAULT)
    parser.add_argument("--params", type=float, default=1e9)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    tiny = os.path.join(tempfile.gettempdir(), "pt2serde-bench-tiny.pt2")
    if args.build_only:
        build(args.path, args.params) if args.path != tiny else build_tiny(tiny)
        return
    # Build in a child process: a child forked from a parent holding the 4 GiB model would
    # inherit its resident size, and ru_maxrss would report that instead of the CLI's own.
    for path in (args.path, tiny):
        if not os.path.exists(path):
            subprocess.run([sys.executable, os.path.abspath(__file__), path, "--params", str(args.params),
                            "--build-only"], check=True)

    size = os.path.getsize(args.path)
    print(f"archive: {args.path} ({size / 2**30:.2f} GiB); torch and sympy unimportable in the CLI process")
    rows = []
    for label, cmd in (("inspect (tiny archive, baseline)", ["inspect", tiny]),
                       ("inspect", ["inspect", args.path]),
                       ("inspect --json", ["inspect", "--json", args.path]),
                       ("validate --no-crc", ["validate", "--no-crc", args.path])):
        for i in range(args.repeat):
            wall, rss, code, out = run(cmd)
            rows.append((label, i + 1, wall, rss, code))
        if label == "inspect":
            print(out)
    base = min(r[3] for r in rows if r[0].startswith("inspect (tiny"))
    print(f"{'command':<34} {'run':>3} {'wall':>9} {'peak RSS':>10} {'vs tiny':>9} {'exit':>4}")
    for label, i, wall, rss, code in rows:
        print(f"{label:<34} {i:>3} {wall * 1e3:>7.0f} ms {rss / 2**20:>6.1f} MiB {(rss - base) / 2**20:>+7.1f} M "
              f"{code:>4}")


if __name__ == "__main__":
    main()
