"""Worker of ``tests/bridge/test_file_changes.py``, run in a fresh process so a signal shows as its exit
status: load an archive, change its file one way (in this process or another one), then check
the loaded program still computes what it computed before.

Usage: ``python file_change_worker.py SPEC_JSON`` (prints one JSON line), or
``python file_change_worker.py --change OP PATH NEW`` (the other process: do only the change).
SPEC: ``{"path", "new", "op", "by": "same"|"other"|"thread", "forward_first": bool}``.
OPS: ``torch-self`` / ``ours-self`` save the loaded program back to its path with
torch.export.save / pt2serde.save; ``torch-new`` / ``ours-new`` save another program there;
``truncate``; ``rewrite`` (the new archive's bytes written over the file in place);
``rename`` (the new archive renamed over it); ``delete``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import warnings

import torch

import pt2serde

X = torch.ones(2, 256)


def change(op: str, path: str, new: str, loaded=None) -> None:
    """Do ``op`` to ``path``. ``loaded``: the program loaded from it (None in another process,
    which then loads its own copy to save back)."""
    if op in ("torch-self", "ours-self"):
        program = loaded if loaded is not None else torch.export.load(path)
        (torch.export.save if op == "torch-self" else pt2serde.save)(program, path)
    elif op in ("torch-new", "ours-new"):
        program = pt2serde.load(new, mmap=False)
        (torch.export.save if op == "torch-new" else pt2serde.save)(program, path)
    elif op == "truncate":
        os.truncate(path, 0)
    elif op == "rewrite":
        data = open(new, "rb").read()
        with open(path, "r+b") as f:
            f.write(data)
            f.truncate()
    elif op == "rename":
        shutil.copyfile(new, path + ".next")
        os.replace(path + ".next", path)
    elif op == "delete":
        os.unlink(path)
    else:
        raise ValueError(op)


def _interrupted(e: BaseException) -> bool:
    return isinstance(e, InterruptedError) or "Interrupted system call" in str(e)


def run(spec: dict) -> dict:
    path, new, op, by = spec["path"], spec["new"], spec["op"], spec["by"]
    before = open(path, "rb").read()
    loaded = pt2serde.load(path)
    want = pt2serde.load(path, mmap=False).module()(X)
    if spec["forward_first"]:
        assert torch.equal(loaded.module()(X), want)
    out: dict = {"interrupted": False, "intact_when_interrupted": None, "warnings": []}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if by == "other":
            subprocess.run([sys.executable, __file__, "--change", op, path, new], check=True, timeout=300)
        elif by == "thread":
            errors: list[BaseException] = []

            def target() -> None:
                try:
                    change(op, path, new, loaded)
                except BaseException as e:  # reported below
                    errors.append(e)

            t = threading.Thread(target=target)
            t.start()
            t.join()
            if errors:
                raise errors[0]
        else:
            try:
                change(op, path, new, loaded)
            except (RuntimeError, OSError) as e:
                # the main thread's writer is interrupted once while the mapping is copied
                if not _interrupted(e):
                    raise
                out["interrupted"] = True
                out["intact_when_interrupted"] = os.path.exists(path) and open(path, "rb").read() == before
                change(op, path, new, loaded)
    out["warnings"] = [str(w.message) for w in caught]
    out["outputs_ok"] = bool(torch.equal(loaded.module()(X), want))
    out["exists"] = os.path.exists(path)
    out["size"] = os.path.getsize(path) if out["exists"] else None
    if out["exists"] and out["size"]:
        now = pt2serde.load(path, mmap=False).module()(X)
        out["file_holds"] = "old" if torch.equal(now, want) else (
            "new" if torch.equal(now, pt2serde.load(new, mmap=False).module()(X)) else "other")
    return out


if __name__ == "__main__":
    warnings.filterwarnings("ignore", module="torch")
    if sys.argv[1] == "--change":
        change(*sys.argv[2:5])
    else:
        print(json.dumps(run(json.loads(sys.argv[1]))), flush=True)
