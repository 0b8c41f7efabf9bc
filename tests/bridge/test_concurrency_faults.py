"""Concurrency and faults: many threads saving and loading at once, a save killed half-way,
a file replaced or truncated while its tensors are mapped, read-only files and folders.

What pt2serde promises here (SECURITY.md, "Files that change under a loaded program"):

* ``save`` to a path writes ``.<name>.<random>.tmp`` next to the target and renames it into
  place only when complete: a save that fails or is killed never damages the file that was
  there. A killed process (SIGKILL, power loss) can leave its ``.tmp`` file behind; nothing
  else.
* ``load`` of a path maps the file copy-on-write and never writes to it. Replacing the file
  by a rename (a new inode, what ``save`` does) while loaded tensors are alive is safe: they
  keep the old contents. Truncating or rewriting the file *in place* is not: pages not yet
  read come from the file as it is now, and past its new end the kernel raises SIGBUS.
  ``load(..., mmap=False)`` reads the file into private memory instead.
"""

from __future__ import annotations

import io
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import pt2serde

TMP_RE = re.compile(r"^\.(?P<base>.+)\.[0-9a-f]{12}\.tmp$")


class _Net(torch.nn.Module):
    def __init__(self, scale: float, n: int = 64):
        super().__init__()
        self.w = torch.nn.Parameter(torch.arange(n * n, dtype=torch.float32).reshape(n, n) * scale)
        self.register_buffer("b", torch.full((n,), scale))

    def forward(self, x):
        return x @ self.w + self.b


@pytest.fixture(scope="module")
def programs():
    return [torch.export.export(_Net(float(i + 1)), (torch.ones(2, 64),)) for i in range(3)]


@pytest.fixture(scope="module")
def golden(programs, tmp_path_factory):
    """Each program saved single-threaded to a path named ``model.pt2`` (the archive's root
    folder is named after the file, so every test saves to ``.../model.pt2``)."""
    out = []
    for i, ep in enumerate(programs):
        path = tmp_path_factory.mktemp(f"golden{i}") / "model.pt2"
        pt2serde.save(ep, path)
        out.append(path.read_bytes())
    return out


@pytest.fixture(scope="module")
def golden_buffers(programs):
    out = []
    for ep in programs:
        buf = io.BytesIO()
        pt2serde.save(ep, buf)
        out.append(buf.getvalue())
    return out


def _which(loaded) -> int:
    """Which of the programs a loaded one is (by its weights), checking it is whole."""
    w, b = loaded.state_dict["w"], loaded.state_dict["b"]
    scale = b[0].item()
    i = int(scale) - 1
    assert 0 <= i < 3 and torch.equal(b, torch.full((64,), scale))
    assert torch.equal(w, torch.arange(64 * 64, dtype=torch.float32).reshape(64, 64) * scale)
    return i


def _strays(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp"))


# ============================================================================ threads


def test_many_threads_save_and_load_different_and_identical_archives(programs, golden, golden_buffers, tmp_path):
    """12 threads, each saving its own archive and the shared one, then loading both and
    running the program, 4 rounds each: every save is byte-identical to the single-threaded
    one, every load is whole, nothing is left behind."""
    (tmp_path / "shared").mkdir()
    shared = tmp_path / "shared" / "model.pt2"
    errors: list[BaseException] = []
    x = torch.ones(2, 64)

    def worker(k: int) -> None:
        try:
            i = k % 3
            (tmp_path / f"own{k}").mkdir()
            own = tmp_path / f"own{k}" / "model.pt2"
            for _ in range(4):
                pt2serde.save(programs[i], own)
                assert own.read_bytes() == golden[i]
                pt2serde.save(programs[i], shared)
                mine = pt2serde.load(own)
                assert _which(mine) == i
                torch.testing.assert_close(mine.module()(x), programs[i].module()(x))
                other = pt2serde.load(shared)  # some thread's program, whole
                assert shared.read_bytes() in golden
                _which(other)
                buf = io.BytesIO()
                pt2serde.save(programs[i], buf)
                assert buf.getvalue() == golden_buffers[i]
                assert _which(pt2serde.load(io.BytesIO(golden_buffers[(i + 1) % 3]))) == (i + 1) % 3
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads)
    assert not errors, repr(errors[0])
    assert all(_strays(folder) == [] for folder in tmp_path.iterdir())


def test_readers_see_a_whole_archive_while_a_writer_replaces_it(programs, golden, tmp_path):
    """One thread saves program 0, 1, 2, 0... to one path; four threads load it meanwhile:
    each load is exactly one of the three programs (the rename is atomic), never a mix or
    a torn file."""
    path = tmp_path / "model.pt2"
    pt2serde.save(programs[0], path)
    stop = threading.Event()
    seen: set[int] = set()
    errors: list[BaseException] = []

    def writer():
        k = 0
        while not stop.is_set():
            pt2serde.save(programs[k % 3], path)
            k += 1

    def reader():
        try:
            for _ in range(25):
                seen.add(_which(pt2serde.load(path)))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    w = threading.Thread(target=writer)
    w.start()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: reader(), range(4)))
    stop.set()
    w.join()
    assert not errors, repr(errors[0])
    assert len(seen) >= 2
    assert path.read_bytes() in golden
    assert _strays(tmp_path) == []


# ========================================================================= killed saves

_SAVER = textwrap.dedent("""
    import sys, time
    import torch, pt2serde
    from pt2serde.format import archive_write as archive

    class Big(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(4 << 20))  # 16 MiB
        def forward(self, x):
            return x * self.w[:4]

    ep = torch.export.export(Big(), (torch.ones(4),))
    real_add = archive.ArchiveWriter.add

    def add(self, name, data):  # stop in the middle of the save, right after the weight
        real_add(self, name, data)
        if name.endswith("/weight_0"):
            self._out.flush()
            print("writing", flush=True)
            time.sleep(600)

    archive.ArchiveWriter.add = add
    pt2serde.save(ep, sys.argv[1])
    print("saved", flush=True)
""")


def test_a_save_killed_half_way_leaves_the_old_file_intact(programs, golden, tmp_path):
    """SIGKILL in the middle of ``save`` (after the 16 MiB weight is written, before the
    central directory): the old archive is intact and loads; the only thing left behind is
    the writer's own temporary file."""
    path = tmp_path / "model.pt2"
    pt2serde.save(programs[1], path)
    proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        names = _strays(tmp_path)
        assert len(names) == 1 and os.path.getsize(tmp_path / names[0]) > (16 << 20)
        tmp = names[0]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == golden[1]  # the old archive, untouched
    assert _which(pt2serde.load(path)) == 1
    # a killed process can leave its own temporary file: nothing else, and only that name
    leftovers = sorted(set(os.listdir(tmp_path)) - {"model.pt2"})
    assert leftovers == [tmp]
    match = TMP_RE.match(tmp)
    assert match and match.group("base") == "model.pt2"
    # which is not an archive anyone would load by mistake, and the next save is unaffected
    with pytest.raises(pt2serde.SerializeError):
        pt2serde.load(tmp_path / tmp)
    pt2serde.save(programs[2], path)
    assert path.read_bytes() == golden[2]


def test_a_save_that_fails_half_way_leaves_nothing(programs, golden, tmp_path, monkeypatch):
    """An exception in the middle of writing (here: the disk "fills up" after 1 MiB) removes
    the temporary file and keeps the old archive."""
    from pt2serde.format import archive_write as archive_mod

    path = tmp_path / "model.pt2"
    pt2serde.save(programs[0], path)
    real_fdopen = os.fdopen

    class Full(io.RawIOBase):
        def __init__(self, f):
            self.f, self.n = f, 0

        def write(self, data):
            self.n += memoryview(data).nbytes
            if self.n > 20_000:
                raise OSError(28, "No space left on device")
            return self.f.write(data)

        def flush(self):
            self.f.flush()

        def close(self):
            self.f.close()

    monkeypatch.setattr(archive_mod.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises((OSError, pt2serde.SerializeError), match="No space left"):
        pt2serde.save(programs[2], path)
    monkeypatch.undo()
    assert path.read_bytes() == golden[0]
    assert os.listdir(tmp_path) == ["model.pt2"]


# ======================================================= files that change under a load


def test_replacing_the_file_by_rename_keeps_loaded_tensors_intact(programs, golden, tmp_path):
    """save() replaces by rename (a new inode): tensors mapped from the old file keep its
    contents, even after the old file is gone and the new one is loaded too."""
    path = tmp_path / "model.pt2"
    path.write_bytes(golden[0])
    old = pt2serde.load(path)
    assert old.state_dict["w"].untyped_storage().data_ptr() != 0
    pt2serde.save(programs[1], path)  # rename over it
    (tmp_path / "other.pt2").write_bytes(golden[2])
    os.replace(tmp_path / "other.pt2", path)
    new = pt2serde.load(path)
    assert _which(old) == 0 and _which(new) == 2
    torch.testing.assert_close(old.module()(torch.ones(2, 64)), programs[0].module()(torch.ones(2, 64)))


def test_writing_to_a_loaded_tensor_never_changes_the_file(golden, tmp_path):
    path = tmp_path / "model.pt2"
    path.write_bytes(golden[0])
    loaded = pt2serde.load(path)
    with torch.no_grad():
        loaded.state_dict["w"].fill_(-1.0)
    assert path.read_bytes() == golden[0]
    assert _which(pt2serde.load(path)) == 0


# Truncating or rewriting the file in place under a loaded program: tests/bridge/test_file_changes.py


# ================================================================ read-only locations


def test_load_from_a_read_only_file_in_a_read_only_folder(golden, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "model.pt2"
    path.write_bytes(golden[0])
    os.chmod(path, 0o444)
    os.chmod(folder, 0o555)
    try:
        assert _which(pt2serde.load(path)) == 0
        assert _which(pt2serde.load(path, mmap=False)) == 0
        with open(path, "rb") as f:  # a file object opened read-only: mapped copy-on-write
            assert _which(pt2serde.load(f)) == 0
        fd = os.open(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as f:
            loaded = pt2serde.load(f)
        assert _which(loaded) == 0  # the tensors outlive the file object
        extra: dict = {}
        pt2serde.load_all(path, extra_files=extra)
        assert os.listdir(folder) == ["model.pt2"]
        if os.geteuid() != 0:  # permissions only bind non-root users: then saving there must fail cleanly
            with pytest.raises((pt2serde.SerializeError, PermissionError)):
                pt2serde.save(torch.export.export(_Net(1.0), (torch.ones(2, 64),)), folder / "new.pt2")
    finally:
        os.chmod(folder, 0o755)


_NO_WRITES = textwrap.dedent("""
    import os, sys
    import torch, pt2serde
    path = sys.argv[1]
    pt2serde.load(path)  # warm up lazy imports outside the watched region
    events = []
    watching = [False]

    def audit(event, args):
        if not watching[0]:
            return
        if event == "open":
            target, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \\
                (isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
            if writes:
                events.append(f"open {target!r} mode={mode!r} flags={flags!r}")
        elif event == "mmap.__new__":
            fileno, length, access, offset = args
            if access not in (1, 3):  # ACCESS_READ, ACCESS_COPY
                events.append(f"mmap access={access}")
        elif event in ("os.truncate", "os.chmod", "os.rename", "os.replace", "os.remove", "os.unlink",
                       "os.utime", "shutil.copyfile", "os.mkdir"):
            events.append(f"{event} {args!r}")

    sys.addaudithook(audit)
    watching[0] = True
    for kwargs in ({}, {"mmap": False}, {"mmap": True}):
        loaded = pt2serde.load(path, **kwargs)
        with torch.no_grad():
            loaded.state_dict["w"].add_(1)  # copy-on-write, never into the file
    with open(path, "rb") as f:
        pt2serde.load(f)
    pt2serde.load_all(path)
    watching[0] = False
    print("events:", events)
""")


def test_loading_never_opens_anything_for_writing(golden, tmp_path):
    """As root (CI) file permissions bind nothing, so this checks the promise directly: while
    loading, no file is opened with a write flag, no mapping is writable-shared, nothing is
    renamed, truncated or removed (audit hooks, in a fresh interpreter)."""
    path = tmp_path / "model.pt2"
    path.write_bytes(golden[0])
    os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    proc = subprocess.run([sys.executable, "-c", _NO_WRITES, str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "events: []"
    assert path.read_bytes() == golden[0]
