"""Mapped archives that survive their file changing.

``load`` maps an archive copy-on-write (``MAP_PRIVATE``) and tensors view the mapping: no copy,
and pages are shared with the page cache. On Linux such a mapping is not a snapshot: every
page the process has not written shows the file as it is *now*, and a page past a truncated
end raises SIGBUS when touched. ``torch.export.save`` rewrites a file in place (same inode), so
saving over a loaded archive, from this process or another, would crash or silently change the
loaded program.

This module keeps a mapping tied to the file only while nobody writes the file:

* **A read lease** (``fcntl(F_SETLEASE, F_RDLCK)``) is taken on the file before it is mapped.
  Any later ``open`` for writing or ``truncate`` of the file, by any process, is held by the
  kernel until the lease holder lets go (for at most ``/proc/sys/fs/lease-break-time``
  seconds, 45 by default). The kernel signals a watcher thread, which **copies the mapping
  into private memory at the same addresses** (``mremap`` of a filled anonymous mapping over
  it: tensors keep their pointers, pages written by the program keep their contents) and only
  then releases the lease. The writer proceeds; the program no longer depends on the file.
  Renaming over the file and deleting it need nothing: the mapping holds the old inode.
* **The main thread is interrupted** as well (a second lease whose signal, SIGURG, goes to it). A
  writer that opens the file from the main thread while holding the GIL, as PyTorch's C++
  archive writer does (``torch.export.save``, ``torch.save``), would otherwise keep the
  watcher from running until the lease break times out and the file is gone under the
  mapping; interrupted, its ``open`` fails with "Interrupted system call" before the file is
  touched, the watcher copies, and the same call run again succeeds. Python's own ``open``
  retries by itself (PEP 475).
* **Where no lease can be taken** (not Linux; a file owned by another user without
  ``CAP_LEASE``; a file system without leases, such as NFS; a file already open for writing
  somewhere; leases disabled), :func:`map_file` says so and ``load`` reads the archive into
  private memory instead, unless the caller asked for a mapping explicitly (``mmap=True``),
  which is then unprotected.

Limits (also in SECURITY.md): a writer on a thread other than the main thread that holds the
GIL while opening (PyTorch's C++ writer on a worker thread) blocks the watcher until the lease
break times out; the file then changes under the mapping, which the watcher detects
(size, mtime, ctime) and reports with a :class:`RuntimeWarning` (pages past the new end read
as zeros instead of raising SIGBUS). The same happens if the process holds the GIL in one C
call for longer than the break time. A child created by ``fork`` shares the parent's lease
for inherited programs: the parent copies its own pages only. Writes to a loaded tensor made
while the watcher copies its pages may be lost. ``O_RDONLY | O_TRUNC`` truncates without
breaking leases (a kernel gap). SECURITY.md lists the rest.

Torch-free; Linux-specific code runs only where ``fcntl`` leases exist.
"""

from __future__ import annotations

import ctypes
import logging
import mmap as _mmap
import os
import signal
import struct
import sys
import threading
import warnings
import weakref
from dataclasses import dataclass, field

__all__ = ["MappedFile", "map_file", "guards", "lease_break_time"]

_F_SETSIG = 10
_F_SETOWN_EX = 15
_F_OWNER_TID = 0
_F_SETLEASE = 1024
_F_GETLEASE = 1025
_F_RDLCK, _F_UNLCK = 0, 2
_MREMAP_MAYMOVE, _MREMAP_FIXED = 1, 2
_MAP_FAILED = ctypes.c_void_p(-1).value

_LINUX = sys.platform.startswith("linux")


def lease_break_time() -> int:
    """Seconds the kernel holds a writer for a lease holder (``/proc/sys/fs/lease-break-time``)."""
    try:
        with open("/proc/sys/fs/lease-break-time") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 45


# ============================================================================= libc


class _Libc:
    """``mmap`` and ``mremap`` from the C library (ctypes releases the GIL around each call)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.mmap = libc.mmap
        self.mmap.restype = ctypes.c_void_p
        self.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_long]
        self.munmap = libc.munmap
        self.munmap.restype = ctypes.c_int
        self.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.mremap = libc.mremap
        self.mremap.restype = ctypes.c_void_p
        self.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p]

    def anonymous(self, length: int) -> int:
        addr = self.mmap(None, length, _mmap.PROT_READ | _mmap.PROT_WRITE,
                         _mmap.MAP_PRIVATE | _mmap.MAP_ANONYMOUS, -1, 0)
        if addr in (None, _MAP_FAILED):
            raise OSError(ctypes.get_errno(), "mmap of private memory failed")
        return addr

    def move_over(self, src: int, dst: int, length: int) -> None:
        """Put the pages at ``src`` at ``dst`` in one step, replacing what ``dst`` mapped."""
        got = self.mremap(src, length, length, _MREMAP_MAYMOVE | _MREMAP_FIXED, dst)
        if got in (None, _MAP_FAILED) or got != dst:
            err = ctypes.get_errno()
            self.munmap(src, length)
            raise OSError(err, "mremap failed")


# ============================================================================ guards


@dataclass(eq=False)
class MappedFile:
    """One mapping of an archive and what protects it.

    ``state``: ``"leased"`` (mapped from the file, which nobody may write without the
    mapping being copied first), ``"copied"`` (copied into private memory because a writer
    came; the file no longer matters), ``"changed"`` (the file changed before the copy could
    be made: contents may differ from what was loaded), ``"unprotected"`` (mapped without a
    lease: ``mmap=True`` where none could be taken)."""

    path: str
    length: int  # bytes of the file mapped
    state: str
    reason: str = ""  # why unprotected
    _ref: weakref.ref | None = field(default=None, repr=False)
    _addr: int = field(default=0, repr=False)
    _fds: list[int] = field(default_factory=list, repr=False)
    _stat: tuple = field(default=(), repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _copying: bool = field(default=False, repr=False)
    _pid: int = field(default_factory=os.getpid, repr=False)  # leases are shared with forked children

    def __repr__(self) -> str:
        why = f", {self.reason}" if self.reason else ""
        return f"<MappedFile {self.path}: {self.length} bytes, {self.state}{why}>"

    # ------------------------------------------------------------------- copying

    def copy_out(self) -> None:
        """Copy the mapping into private memory at the same addresses and let the file go.
        Idempotent; called by the watcher when a writer comes (and by the main thread's
        interrupt handler, which may run inside this very method: it then returns at once)."""
        with self._lock:
            if self.state != "leased" or self._copying:
                return
            self._copying = True
            try:
                self._copy_locked()
            finally:
                self._copying = False
        if self.state == "copied":
            _warn(f"pt2serde: {self.path} is being written while a program loaded from it maps it: its "
                  f"{self.length / 2**20:.1f} MiB were copied into memory first, and the file no longer matters "
                  "to it. A torch.export.save, torch.save or os.truncate of it from the main thread stops with "
                  "'Interrupted system call' while this happens, leaving the file as it was: run it again.")
        elif self.state == "changed":
            _warn(f"pt2serde: {self.path} changed before the program loaded from it could be copied into "
                  f"memory (a writer held the GIL past the {lease_break_time()} s lease break time); its "
                  "weights may differ from the file that was loaded: load it again")

    def _copy_locked(self) -> None:
        mapped = self._ref() if self._ref is not None else None
        if mapped is None:  # the mapping is gone already: only the lease is left
            self._release()
            self.state = "unmapped"
            return
        try:
            intact = self._file_unchanged()
            valid = self.length if intact else min(self.length, os.fstat(self._fds[0]).st_size)
            page = _mmap.PAGESIZE
            span = -(-self.length // page) * page
            libc = _libc()
            fresh = libc.anonymous(span)
            ctypes.memmove(fresh, self._addr, valid)  # bytes past the file's end are not read
            libc.move_over(fresh, self._addr, span)
            self.state = "copied" if intact and self._file_unchanged() else "changed"
        except OSError as e:  # no memory for the copy: the mapping (and the lease) stay as they are
            _warn(f"pt2serde: {self.path} is being written, but the program loaded from it could not be copied "
                  f"into memory ({e}); the writer waits up to {lease_break_time()} s, then the program may fault")
            return
        finally:
            del mapped
        self._release()

    def _file_unchanged(self) -> bool:
        """Same file, same size and modification time as when mapped (the ctime is not
        compared: chmod, link and rename change it without touching the contents)."""
        return _identity(os.fstat(self._fds[0])) == self._stat

    def _release(self) -> None:
        mine = os.getpid() == self._pid  # a forked child closes its copies, never the parent's lease
        for fd in self._fds:
            try:
                if mine:
                    fcntl_lease(fd, _F_UNLCK)
            except OSError:
                pass
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    def _forget(self) -> None:
        """The mapping was unmapped: release the lease (the watcher may be copying: wait)."""
        with self._lock:
            if self.state == "leased":
                self.state = "unmapped"
            self._release()


def _identity(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _warn(message: str) -> None:
    """Warn without ever raising: this runs in the watcher thread and in a signal handler,
    where an exception (``-W error``) would kill the watcher or surface in unrelated code."""
    try:
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    except Exception:  # warnings turned into errors: say it on the log instead
        logging.getLogger("pt2serde").warning(message)


def fcntl_lease(fd: int, kind: int) -> None:
    import fcntl

    fcntl.fcntl(fd, _F_SETLEASE, kind)


# ============================================================================ watcher


class _Watcher:
    """A daemon thread that waits for lease-break signals (blocked in it, taken with
    ``sigwaitinfo``: no process-wide handler) and copies the mappings whose file a writer
    is opening. Its real-time signal is sent to this thread only; when the kernel cannot
    queue one more (``RLIMIT_SIGPENDING``) it sends SIGIO instead, to the same thread, so
    that is waited for too (never delivered: its default action would end the process)."""

    def __init__(self) -> None:
        self.signum = _free_signal()
        self.guards: dict[int, MappedFile] = {}
        self.lock = threading.RLock()
        ready = threading.Event()
        self.tid = 0
        waited = {self.signum, signal.SIGIO}

        def run() -> None:
            try:
                signal.pthread_sigmask(signal.SIG_BLOCK, waited)
                self.tid = threading.get_native_id()
            finally:
                ready.set()
            while True:
                try:
                    signal.sigwaitinfo(waited)
                    self.service()
                except Exception as e:  # never let the watcher die: writers would wait the full break time
                    _warn(f"pt2serde: lease watcher: {e!r}")

        self.thread = threading.Thread(target=run, name="pt2serde-lease-watcher", daemon=True)
        self.thread.start()
        ready.wait()
        if not self.tid:
            raise OSError("the lease watcher could not block its signal")

    def service(self) -> None:
        """Copy every mapping whose lease a writer is breaking (several may share one signal)."""
        with self.lock:
            candidates = list(self.guards.values())
        for g in candidates:
            if g.state == "leased" and _breaking(g):
                g.copy_out()
        with self.lock:
            for key in [k for k, g in self.guards.items() if g.state != "leased"]:
                del self.guards[key]

    def add(self, guard: MappedFile) -> None:
        with self.lock:
            self.guards[id(guard)] = guard


def _breaking(g: MappedFile) -> bool:
    import fcntl

    try:
        return any(fcntl.fcntl(fd, _F_GETLEASE) != _F_RDLCK for fd in g._fds)
    except OSError:
        return True


def _free_signal() -> int:
    """A real-time signal nobody handles (highest first). Only ``SIG_DFL`` counts as free:
    ``None`` is a handler installed from C."""
    for s in range(signal.SIGRTMAX - 2, signal.SIGRTMIN + 2, -1):
        if signal.getsignal(s) is signal.SIG_DFL:
            return s
    raise OSError("no free real-time signal for file leases")


_state_lock = threading.Lock()
_watcher: _Watcher | None = None
_lib: _Libc | None = None

#: The main thread's interrupt: SIGURG, whose default action is to do nothing, so a program
#: that later resets it (or a C library that takes it) loses the interrupt, never the process.
_INTERRUPT = signal.SIGURG if _LINUX else None
_main_tid: int | None = None  # the main thread's kernel id, once its handler is installed


def _libc() -> _Libc:
    global _lib
    if _lib is None:
        _lib = _Libc()
    return _lib


def _get_watcher() -> _Watcher:
    global _watcher
    with _state_lock:
        if _watcher is None:
            _libc()  # fail here (no mremap) rather than when a writer comes
            _watcher = _Watcher()
        return _watcher


_servicing = threading.local()


def _interrupted(signum, frame) -> None:
    """Python handler of the main-thread interrupt. The signal made a blocked ``open`` in the
    main thread return; this copies the mappings now, before the main thread runs on (the
    watcher may still be waiting for the GIL), so that running the interrupted write again
    works. It may run inside the main thread's own copy: then it does nothing."""
    if _watcher is not None and not getattr(_servicing, "active", False):
        _servicing.active = True
        try:
            _watcher.service()
        except Exception as e:  # a signal handler must not raise into whatever the main thread runs
            logging.getLogger("pt2serde").warning("pt2serde: lease interrupt: %r", e)
        finally:
            _servicing.active = False


def _install_interrupt() -> None:
    """Install the interrupt's handler; Python allows it only on the main thread, so this runs
    when pt2serde is imported there (and again at each load there, if it was not)."""
    global _main_tid
    if _INTERRUPT is None or _main_tid is not None:
        return
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(_INTERRUPT) is not signal.SIG_DFL:
            return  # someone else's: leave it
        signal.signal(_INTERRUPT, _interrupted)
    except (ValueError, OSError):
        return
    _main_tid = threading.get_native_id()


def _interrupt_owner() -> int | None:
    """The main thread's kernel id when its interrupt handler is (still) ours."""
    _install_interrupt()
    if _main_tid is None or signal.getsignal(_INTERRUPT) is not _interrupted:
        return None
    return _main_tid


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's threads: its first load starts a watcher of its
    own; the thread that forked is the child's main thread (its kernel id is the child's pid)."""
    global _watcher, _main_tid, _state_lock
    _state_lock = threading.Lock()
    _watcher = None
    if _main_tid is not None:
        _main_tid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
_install_interrupt()


# ============================================================================ mapping


def map_file(fd: int, path: str | None, *, protect_only: bool) -> tuple[_mmap.mmap | None, MappedFile | None]:
    """Map the file open at ``fd`` copy-on-write, protected by a read lease when one can be
    taken. Returns ``(mapping, guard)``; with ``protect_only`` (the default policy of
    ``load``), ``(None, guard)`` when no lease could be taken: the caller reads the file
    instead. The mapping is ``None`` too when the file cannot be mapped at all."""
    where = path or f"<fd {fd}>"
    fds, reason = _leased_fds(fd)
    if not fds:
        if protect_only:
            return None, MappedFile(where, 0, "unprotected", reason)
        try:
            return _mmap.mmap(fd, 0, access=_mmap.ACCESS_COPY), MappedFile(where, 0, "unprotected", reason)
        except (OSError, ValueError):
            return None, None
    try:
        mapped = _mmap.mmap(fds[0], 0, access=_mmap.ACCESS_COPY)
    except (OSError, ValueError):
        for f in fds:
            os.close(f)
        return None, None
    st = os.fstat(fds[0])
    addr = ctypes.addressof(ctypes.c_char.from_buffer(mapped))
    guard = MappedFile(where, len(mapped), "leased", "", weakref.ref(mapped), addr, fds, _identity(st))
    weakref.finalize(mapped, guard._forget)
    _get_watcher().add(guard)
    return mapped, guard


def _leased_fds(fd: int) -> tuple[list[int], str]:
    """Fresh read-only descriptions of the file at ``fd`` holding read leases: the first one's
    break signals the watcher, the second's (when the main thread can take a handler)
    interrupts the main thread. ``([], reason)`` when no lease can be taken."""
    if not _LINUX:
        return [], "file leases need Linux"
    try:
        w = _get_watcher()
    except (OSError, AttributeError, ValueError, RuntimeError) as e:
        return [], f"no lease watcher: {e}"
    fds: list[int] = []
    owners = [(w.tid, w.signum)]
    main = _interrupt_owner()
    if main is not None:
        owners.append((main, _INTERRUPT))
    try:
        import fcntl

        target = os.fstat(fd)
        for owner, signum in owners:
            own = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
            fds.append(own)
            st = os.fstat(own)
            if (st.st_dev, st.st_ino) != (target.st_dev, target.st_ino):
                raise OSError(0, "the file was replaced while it was opened")
            fcntl.fcntl(own, _F_SETSIG, signum)
            fcntl.fcntl(own, _F_SETOWN_EX, struct.pack("ii", _F_OWNER_TID, owner))
            fcntl.fcntl(own, _F_SETLEASE, _F_RDLCK)
        return fds, ""
    except OSError as e:
        for f in fds:
            try:
                fcntl_lease(f, _F_UNLCK)
            except OSError:
                pass
            os.close(f)
        return [], _why(e)


def _why(e: OSError) -> str:
    import errno

    if e.errno == errno.EAGAIN:
        return "the file is open for writing elsewhere"
    if e.errno == errno.EACCES:
        return "the file belongs to another user (leases need its owner or CAP_LEASE)"
    if e.errno in (errno.EINVAL, errno.ENOSYS, errno.ENOLCK):
        return "the file system does not support leases"
    return e.strerror or str(e)


def guards() -> list[MappedFile]:
    """The mappings currently protected by a lease (for tests and diagnostics)."""
    if _watcher is None:
        return []
    with _watcher.lock:
        return [g for g in _watcher.guards.values() if g.state == "leased"]
