"""The PT2 archive container, written: the records of a program as PyTorch's writer lays them out.

Writing follows the layout PyTorch's own writer produces (``torch.export.load`` reads it):
uncompressed records under one root folder, each record's data starting at a 64-byte
aligned offset (padding goes into a local-header extra field with id ``FB``), a data
descriptor after each non-empty record, a ZIP64 end-of-central-directory record always
present and, on request, PyTorch's ``.data/serialization_id`` record (:mod:`pt2serde.format.serialid`).
Output is deterministic: fixed timestamps, fixed attributes, records in call order; for
the same records it is PyTorch's writer's output byte for byte.

Record names go through the reader's rule (:func:`pt2serde.format.archive.check_name`), and
the zip records are the reader's layouts (:mod:`pt2serde.format.archive`).
"""

from __future__ import annotations

import io
import os
import stat
import struct
import threading
import zlib
from contextlib import contextmanager
from typing import Any, BinaryIO, Iterable, Iterator

from . import serialid
from ..errors import SerializeError
from .archive import (ALIGNMENT, CENTRAL, DESCRIPTOR, DESCRIPTOR64, EOCD, EOCD64, FB, FLAGS, FLAGS_EMPTY, LOCAL,
                      LOCATOR64, SIG_CENTRAL, SIG_DESCRIPTOR, SIG_EOCD, SIG_EOCD64, SIG_LOCAL, SIG_LOCATOR64, U32,
                      ZIP64, check_name)

__all__ = ["ArchiveWriter", "write_file_atomically"]

class ArchiveWriter:
    """Writes records one after another, straight from the caller's buffers.

    ``target``: a path (written to a temporary file next to it, renamed into place only
    when :meth:`close` succeeds, so a failed save never leaves a half-written file where a
    good one was) or a writable binary file object. A path that is a symbolic link (or a
    chain of them, or one whose target does not exist yet) is written through to the link's
    final target: the link itself stays a link.
    """

    def __init__(self, target) -> None:
        self._records: list[tuple[str, int, int, int]] = []  # name, header offset, size, crc
        self._leads: list[bytes] = []  # the first 8 data bytes of each record (serialization id)
        self._whole: set[str] = set()  # empty records written without a data descriptor
        self._names: set[str] = set()
        self._final_path: str | None = None
        self._tmp_path: str | None = None
        self._lead = bytearray()
        if isinstance(target, (str, os.PathLike)):
            self._final_path = _link_target(os.fspath(target))
            self._tmp_path, fd = _create_temporary(self._final_path)
            self._out: BinaryIO = os.fdopen(fd, "wb")
            self._start = 0
        else:
            if not hasattr(target, "write"):
                raise SerializeError(f"cannot write an archive to {type(target).__name__}")
            self._out = target
            try:
                self._start = target.tell()
            except (OSError, AttributeError, io.UnsupportedOperation):
                self._start = 0
        self._pos = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<ArchiveWriter {self._final_path or '<stream>'}: {len(self._records)} records, {self._pos} bytes>"

    def _write(self, data) -> None:
        n = self._out.write(data)
        self._pos += memoryview(data).nbytes if n is None else n

    def has(self, name: str) -> bool:
        return name in self._names

    def _data_write(self, data) -> None:
        """Write record data, keeping its first 8 bytes (the serialization id looks at them)."""
        if len(self._lead) < 8:
            self._lead += memoryview(data).cast("B")[:8 - len(self._lead)]
        self._write(data)

    def _begin(self, name: str, whole: bool = False) -> int:
        """Write the local header of a new record; its offset. ``whole``: an empty record,
        written without a data descriptor (as PyTorch writes one)."""
        check_name(name)
        if name in self._names:
            raise SerializeError(f"record {name!r} written twice", record=name)
        self._names.add(name)
        encoded = name.encode("utf-8")
        header_at = self._pos
        fixed = LOCAL.size + len(encoded)
        pad = -(self._start + header_at + fixed + 4) % ALIGNMENT
        extra = struct.pack("<HH", FB, pad) + b"Z" * pad
        flags = FLAGS_EMPTY if whole else FLAGS
        self._write(LOCAL.pack(SIG_LOCAL, 0, flags, 0, 0, 0, 0, 0, 0, len(encoded), len(extra)))
        self._write(encoded)
        self._write(extra)
        self._lead = bytearray()
        if whole:
            self._whole.add(name)
        return header_at

    def _end(self, name: str, header_at: int, crc: int, size: int) -> None:
        if name not in self._whole:
            descriptor = DESCRIPTOR64 if size >= U32 else DESCRIPTOR
            self._write(descriptor.pack(SIG_DESCRIPTOR, crc, size, size))
        self._records.append((name, header_at, size, crc))
        self._leads.append(bytes(self._lead))

    def add(self, name: str, data: bytes | bytearray | memoryview | Iterable[memoryview]) -> None:
        """Append one record; ``data`` is a buffer or an iterable of buffers (chunks)."""
        chunks = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
        empty = isinstance(chunks, (list, tuple)) and all(memoryview(c).nbytes == 0 for c in chunks)
        header_at = self._begin(name, whole=empty)
        crc, size = _stream_with_crc(self._data_write, chunks)
        self._end(name, header_at, crc, size)

    @contextmanager
    def stream(self, name: str) -> Iterator["_RecordStream"]:
        """A record written piece by piece through a file-like ``write`` (e.g. by ``torch.save``)."""
        header_at = self._begin(name)
        out = _RecordStream(self._data_write)
        yield out
        self._end(name, header_at, out.crc & U32, out.size)

    def add_serialization_id(self, root: str) -> str:
        """Append ``<root>/.data/serialization_id``, the id PyTorch's writer records for these
        records (see :mod:`pt2serde.format.serialid`); call it last, before :meth:`close`. Returns the id."""
        prefix = f"{root}/"
        names, values = [], []
        for (name, _, size, crc), lead in zip(self._records, self._leads):
            names.append(name[len(prefix):] if name.startswith(prefix) else name)
            values += serialid.descriptor_values(lead, size, crc, name not in self._whole)
        ident = serialid.serialization_id(names, values)
        self.add(prefix + serialid.SERIALIZATION_ID_RECORD, ident.encode("ascii"))
        return ident

    def close(self) -> None:
        """Write the central directory; for a path, move the finished file into place."""
        if self._closed:
            return
        try:
            self._finish()
        except BaseException:
            self.abort()
            raise

    def _finish(self) -> None:
        cd_start = self._pos
        for name, offset, size, crc in self._records:
            encoded = name.encode("utf-8")
            big = size >= U32 or offset >= U32
            extra = b""
            if big:
                extra = struct.pack("<HHQQQ", ZIP64, 24, size, size, offset)
            flags = FLAGS_EMPTY if name in self._whole else FLAGS
            self._write(CENTRAL.pack(
                SIG_CENTRAL, 0, 45 if big else 0, flags, 0, 0, 0, crc,
                U32 if big else size, U32 if big else size,
                len(encoded), len(extra), 0, 0, 0, 0, U32 if big else offset,
            ))
            self._write(encoded)
            self._write(extra)
        cd_size = self._pos - cd_start
        eocd64_at = self._pos
        n = len(self._records)
        self._write(EOCD64.pack(SIG_EOCD64, 44, 0x031E, 45, 0, 0, n, n, cd_size, cd_start))
        self._write(LOCATOR64.pack(SIG_LOCATOR64, 0, eocd64_at, 1))
        self._write(EOCD.pack(
            SIG_EOCD, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
            min(cd_size, U32), min(cd_start, U32), 0,
        ))
        self._out.flush()
        self._closed = True
        if self._final_path is not None:
            # No fsync: like torch.save and torch.export.save, durability is left to the OS
            # (an fsync doubles the time of a multi-GiB save). The rename still guarantees
            # that a save that fails never replaces the old file.
            self._out.close()
            _replace(self._tmp_path, self._final_path)
            self._tmp_path = None

    def abort(self) -> None:
        """Discard a failed write: the temporary file is removed, the target left as it was."""
        self._closed = True
        if self._tmp_path is not None:
            try:
                self._out.close()
            finally:
                try:
                    os.unlink(self._tmp_path)
                except OSError:
                    pass
                self._tmp_path = None

    def __enter__(self) -> "ArchiveWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _RecordStream:
    """The write end of :meth:`ArchiveWriter.stream`: counts bytes and keeps the CRC-32."""

    def __init__(self, write) -> None:
        self._sink = write
        self.crc = 0
        self.size = 0

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self.crc = zlib.crc32(view, self.crc)
        self._sink(view)
        self.size += view.nbytes
        return view.nbytes

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True


_MAX_LINKS = 40  # as the kernel's limit on symbolic links followed in one path


def _link_target(path: str) -> str:
    """The file a save to ``path`` must replace: ``path`` itself, or, when it is a symbolic
    link, the final target of the chain of links (which need not exist yet: a dangling link
    gets its target created). The rename then goes over the target and the links stay."""
    given, seen = path, 0
    while os.path.islink(path):
        seen += 1
        if seen > _MAX_LINKS:
            raise SerializeError(f"cannot save to {given}: too many levels of symbolic links (a loop?); "
                                 "save to the real file's path instead")
        try:
            target = os.readlink(path)
        except OSError as e:
            raise SerializeError(f"cannot save to {given}: reading the symbolic link {path} failed: "
                                 f"{e.strerror}") from None
        path = os.path.join(os.path.dirname(path), target)
    return path


def _create_temporary(final_path: str) -> tuple[str, int]:
    """A new file next to ``final_path`` (same file system, so the rename is atomic).

    Created with mode 0o666 like any new file, so the umask applies as usual
    (``tempfile.mkstemp`` would leave the finished archive readable only by its owner).
    """
    folder, base = os.path.split(os.path.abspath(final_path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{base[:200]}.{os.urandom(6).hex()}.tmp")
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
    raise SerializeError(f"cannot create a temporary file next to {final_path}")


def _replace(tmp: str, final: str) -> None:
    """Put the finished temporary file ``tmp`` in the place of ``final``."""
    try:  # replacing a file keeps its permission bits, as writing it in place would
        os.chmod(tmp, stat.S_IMODE(os.stat(final).st_mode))
    except OSError:
        pass  # a new file: the umask's mode stays
    os.replace(tmp, final)


def write_file_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` as a save writes an archive: to a temporary file next to it
    (next to the final target of a symbolic link), then renamed over it; a failure leaves
    any existing file as it was and no temporary file behind."""
    final = _link_target(path)
    tmp, fd = _create_temporary(final)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_PIECE = 4 << 20  # CRC work unit: pieces of this size are checksummed in parallel
_crc_pool = None
_crc_pool_lock = threading.Lock()


def _split(chunks: Iterable) -> Iterator[memoryview]:
    for chunk in chunks:
        mv = memoryview(chunk).cast("B")
        for i in range(0, mv.nbytes, _PIECE):
            yield mv[i:i + _PIECE]


def _pool():
    global _crc_pool
    with _crc_pool_lock:
        if _crc_pool is None:
            from concurrent.futures import ThreadPoolExecutor

            workers = max(2, min(8, os.cpu_count() or 2))
            _crc_pool = ThreadPoolExecutor(workers, thread_name_prefix="pt2serde-crc")
        return _crc_pool


def _gf2_times(matrix: list[int], vector: int) -> int:
    out, i = 0, 0
    while vector:
        if vector & 1:
            out ^= matrix[i]
        vector >>= 1
        i += 1
    return out


def _zeros_operator(nbytes: int) -> list[int]:
    """The GF(2) matrix that advances a CRC-32 over ``nbytes`` zero bytes (zlib's crc32_combine)."""
    op = [0xEDB88320] + [1 << k for k in range(31)]  # one zero bit
    for _ in range(3):
        op = [_gf2_times(op, col) for col in op]  # 2, 4, 8 bits: one byte
    result = None
    while nbytes:
        if nbytes & 1:
            result = op if result is None else [_gf2_times(op, col) for col in result]
        nbytes >>= 1
        if nbytes:
            op = [_gf2_times(op, col) for col in op]
    return result


_SHIFT_PIECE = _zeros_operator(_PIECE)


def _stream_with_crc(write, chunks: Iterable) -> tuple[int, int]:
    """Write the chunks while worker threads compute their CRC-32 (zlib releases the GIL).

    Pieces of ``_PIECE`` bytes are checksummed independently and joined with
    ``crc(a + b) = shift(crc(a), len(b)) ^ crc(b)``; the shift over a full piece is one
    precomputed matrix. A shorter piece after the first (the tail of a big record) is
    checksummed in order instead.
    """
    parts: list[tuple[Any, memoryview]] = []
    size = 0
    for piece in _split(chunks):
        if piece.nbytes == _PIECE or (not parts and piece.nbytes >= (1 << 20)):
            parts.append((_pool().submit(zlib.crc32, piece), piece))
        else:
            parts.append((None, piece))
        write(piece)
        size += piece.nbytes
    crc = 0
    for i, (future, piece) in enumerate(parts):
        if future is None:
            crc = zlib.crc32(piece, crc)
        elif i == 0:
            crc = future.result()
        else:  # a full piece
            crc = _gf2_times(_SHIFT_PIECE, crc) ^ future.result()
    return crc & U32, size
