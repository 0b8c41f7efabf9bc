"""The PT2 archive container: a zip file of stored records with 64-byte aligned data.

Writing follows the layout PyTorch's own writer produces (``torch.export.load`` reads it):
uncompressed records under one root folder, each record's data starting at a 64-byte
aligned offset (padding goes into a local-header extra field with id ``FB``), a data
descriptor after each non-empty record, a ZIP64 end-of-central-directory record always
present and, on request, PyTorch's ``.data/serialization_id`` record (:mod:`pt2serde.format.serialid`).
Output is deterministic: fixed timestamps, fixed attributes, records in call order; for
the same records it is PyTorch's writer's output byte for byte.

Reading trusts nothing: every offset and size is checked against the real file size,
names with ``..``, absolute paths, backslashes or NUL bytes are refused, as are duplicate
names, overlapping records, encrypted records and local headers that disagree with the
central directory. Records are exposed as ``memoryview`` slices of one mapping of the
file (or of the caller's buffer), so nothing is read twice and large payloads are not
copied.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import threading
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterable, Iterator

from . import mapguard, serialid
from ..errors import NotAZipError, SerializeError

__all__ = [
    "ALIGNMENT",
    "Entry",
    "ArchiveReader",
    "ArchiveWriter",
    "MAX_ENTRIES",
]

ALIGNMENT = 64
MAX_ENTRIES = 1 << 20
MAX_NAME = 4096
MAX_INFLATED = 1 << 30  # deflated records (never written by us) inflate to at most 1 GiB
#: ... and all the deflated records of an archive together to at most this many bytes, or
#: INFLATE_RATIO times the whole archive, whichever is more: a small file cannot make the
#: reader allocate gigabytes (a deflate stream of zeros shrinks about 1000 times). PyTorch
#: never writes deflated records.
MAX_INFLATED_FLOOR = 64 << 20
INFLATE_RATIO = 8

_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # signature .. extra length (30 bytes)
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # 46 bytes
_EOCD = struct.Struct("<4sHHHHIIH")  # 22 bytes
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")  # 56 bytes
_LOCATOR64 = struct.Struct("<4sIQI")  # 20 bytes
_DESCRIPTOR = struct.Struct("<4sIII")
_DESCRIPTOR64 = struct.Struct("<4sIQQ")

_SIG_LOCAL = b"PK\x03\x04"
_SIG_CENTRAL = b"PK\x01\x02"
_SIG_EOCD = b"PK\x05\x06"
_SIG_EOCD64 = b"PK\x06\x06"
_SIG_LOCATOR64 = b"PK\x06\x07"
_SIG_DESCRIPTOR = b"PK\x07\x08"

_FLAGS = 0x0808  # data descriptor follows the data; names are UTF-8
_FLAGS_EMPTY = 0x0800  # an empty record, written whole (PyTorch writes no descriptor for it)
_FB = 0x4246  # "FB": the padding extra field PyTorch uses
_ZIP64 = 0x0001
_U32 = 0xFFFFFFFF


def check_name(name: str) -> str:
    """Refuse record names that could escape a folder or be ambiguous."""
    if not name or len(name) > MAX_NAME:
        raise SerializeError(f"invalid record name {name[:80]!r}: empty or over {MAX_NAME} characters")
    if "\0" in name or "\\" in name:
        raise SerializeError(f"invalid record name {name!r}: contains NUL or a backslash")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise SerializeError(f"invalid record name {name!r}: absolute path")
    if any(part in ("..", ".") or part == "" for part in name.rstrip("/").split("/")):
        raise SerializeError(f"invalid record name {name!r}: empty, '.' or '..' path segment")
    return name


@dataclass(frozen=True)
class Entry:
    """One record of the archive as the central directory and local header describe it."""

    name: str
    header_offset: int
    data_offset: int
    size: int  # uncompressed
    compressed_size: int
    crc: int
    method: int  # 0 stored, 8 deflate

    def __repr__(self) -> str:
        return f"Entry({self.name!r}, {self.size} bytes at {self.data_offset})"


# =============================================================================== reader


class ArchiveReader:
    """Random access to the records of a zip archive (see the module docstring).

    ``source``: a path, a binary file object (read from its start; mapped when it is a
    real file), or a bytes-like object. ``mmap``: map a file instead of reading it
    (copy-on-write, so views may be written without changing the file).
    """

    def __init__(self, source, *, mmap: bool | None = None) -> None:
        self._file = None
        self._map = None
        self.mapping: mapguard.MappedFile | None = None  # how a mapped file is protected
        self.path: str | None = None
        self.buffer = self._open(source, mmap)
        self.size = self.buffer.nbytes
        self.entries: dict[str, Entry] = {}
        self._inflated: dict[str, int] = {}  # deflated records handed out so far -> their sizes
        self._read_directory()

    def __repr__(self) -> str:
        where = self.path or "<buffer>"
        return f"<ArchiveReader {where}: {len(self.entries)} records, {self.size} bytes>"

    # ---------------------------------------------------------------- opening

    def _open(self, source, use_mmap: bool | None) -> memoryview:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return memoryview(source).cast("B")
        if isinstance(source, (str, os.PathLike)):
            self.path = os.fspath(source)
            try:
                f = open(self.path, "rb")
            except OSError as e:
                raise SerializeError(f"cannot open {self.path}: {e.strerror}") from None
            self._file = f
            return self._map_or_read(f, use_mmap)
        if hasattr(source, "getbuffer"):
            # BytesIO: one private copy. Views of its own buffer would let loaded tensors
            # write into the caller's object (and into every other load of it), and would
            # keep it from growing while they live.
            with source.getbuffer() as shared:
                return memoryview(bytearray(shared))
        if hasattr(source, "read"):
            try:
                source.seek(0)
            except (OSError, AttributeError, io.UnsupportedOperation):
                pass
            if use_mmap is not False and _has_fileno(source):
                return self._map_or_read(source, use_mmap)
            return memoryview(_read_all(source))
        raise SerializeError(f"cannot read an archive from {type(source).__name__}")

    def _map_or_read(self, f: BinaryIO, use_mmap: bool | None) -> memoryview:
        """``use_mmap`` None: map only where a lease protects the mapping from writers of the
        file (:mod:`mapguard`), else read; True: map in any case; False: read."""
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise NotAZipError("archive is empty (0 bytes)")
        if use_mmap is not False:
            mapped, self.mapping = mapguard.map_file(f.fileno(), self.path, protect_only=use_mmap is None)
            if mapped is not None:
                self._map = mapped
                return memoryview(mapped)
            # no lease (auto), or not mappable (pipe, special file): read it once instead
        f.seek(0)
        return memoryview(_read_all(f))

    def close(self) -> None:
        """Release the file; views handed out earlier stay valid while referenced."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "ArchiveReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --------------------------------------------------------------- directory

    def _read_directory(self) -> None:
        buf, size = self.buffer, self.size
        if size < _EOCD.size:
            raise NotAZipError(f"not a zip archive: {size} bytes is too short")
        tail_start = max(0, size - _EOCD.size - 0xFFFF)
        pos = bytes(buf[tail_start:]).rfind(_SIG_EOCD)
        if pos < 0:
            raise NotAZipError("not a zip archive: no end-of-central-directory record")
        eocd_at = tail_start + pos
        if eocd_at + _EOCD.size > size:
            raise NotAZipError("truncated end-of-central-directory record")
        _, disk, cd_disk, n_disk, count, cd_size, cd_offset, comment_len = _EOCD.unpack_from(buf, eocd_at)
        if disk != 0 or cd_disk != 0 or n_disk != count:
            raise SerializeError("multi-disk zip archives are not supported")
        if count == 0xFFFF or cd_size == _U32 or cd_offset == _U32:
            count, cd_size, cd_offset = self._zip64_directory(eocd_at)
        if count > MAX_ENTRIES:
            raise SerializeError(f"archive declares {count} records, over the limit of {MAX_ENTRIES}")
        if cd_offset > eocd_at or cd_size > eocd_at - cd_offset:
            raise SerializeError(
                f"central directory ({cd_size} bytes at {cd_offset}) lies outside the archive ({size} bytes)"
            )
        spans: list[tuple[int, int, str]] = []
        at = cd_offset
        end = cd_offset + cd_size
        for i in range(count):
            if at + _CENTRAL.size > end:
                raise SerializeError(f"central directory is truncated at record {i} of {count}")
            entry = self._central_entry(at, end, i)
            at = entry[1]
            e: Entry = entry[0]
            if e.name in self.entries:
                raise SerializeError(f"duplicate record name {e.name!r}")
            self.entries[e.name] = e
            spans.append((e.header_offset, e.data_offset + e.compressed_size, e.name))
        if at != end:
            raise SerializeError(f"central directory size {cd_size} does not match its {count} records")
        spans.sort()
        for (s1, e1, n1), (s2, _, n2) in zip(spans, spans[1:]):
            if s2 < e1:
                raise SerializeError(f"records {n1!r} and {n2!r} overlap")
        if spans and spans[-1][1] > cd_offset:
            raise SerializeError(f"record {spans[-1][2]!r} overlaps the central directory", record=spans[-1][2])

    def _zip64_directory(self, eocd_at: int) -> tuple[int, int, int]:
        loc_at = eocd_at - _LOCATOR64.size
        if loc_at < 0 or bytes(self.buffer[loc_at:loc_at + 4]) != _SIG_LOCATOR64:
            raise SerializeError("zip64 archive without a zip64 locator")
        _, _, eocd64_at, _ = _LOCATOR64.unpack_from(self.buffer, loc_at)
        if eocd64_at + _EOCD64.size > loc_at:
            raise SerializeError("zip64 end-of-central-directory record lies outside the archive")
        sig, _, _, _, _, _, n_disk, count, cd_size, cd_offset = _EOCD64.unpack_from(self.buffer, eocd64_at)
        if sig != _SIG_EOCD64 or n_disk != count:
            raise SerializeError("invalid zip64 end-of-central-directory record")
        return count, cd_size, cd_offset

    def _central_entry(self, at: int, end: int, index: int) -> tuple[Entry, int]:
        buf = self.buffer
        (sig, _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len, comment_len,
         _, _, _, header_offset) = _CENTRAL.unpack_from(buf, at)
        if sig != _SIG_CENTRAL:
            raise SerializeError(f"central directory record {index} has a bad signature")
        name_at = at + _CENTRAL.size
        next_at = name_at + name_len + extra_len + comment_len
        if next_at > end:
            raise SerializeError(f"central directory record {index} runs past the directory")
        try:
            name = bytes(buf[name_at:name_at + name_len]).decode("utf-8")
        except UnicodeDecodeError:
            raise SerializeError(f"record {index}: name is not valid UTF-8") from None
        check_name(name)
        if flags & 0x1:
            raise SerializeError(f"record {name!r} is encrypted", record=name)
        if method not in (0, 8):
            raise SerializeError(f"record {name!r} uses unsupported compression method {method}", record=name)
        if usize == _U32 or csize == _U32 or header_offset == _U32:
            usize, csize, header_offset = self._zip64_extra(
                buf[name_at + name_len:name_at + name_len + extra_len], usize, csize, header_offset, name
            )
        if method == 0 and csize != usize:
            raise SerializeError(f"stored record {name!r} declares {csize} stored but {usize} real bytes")
        data_offset = self._local_header(header_offset, name)
        if data_offset + csize > self.size:
            raise SerializeError(
                f"record {name!r} ({csize} bytes at {data_offset}) runs past the end of the archive ({self.size} bytes)",
                record=name,
            )
        return Entry(name, header_offset, data_offset, usize, csize, crc, method), next_at

    @staticmethod
    def _zip64_extra(extra, usize: int, csize: int, offset: int, name: str) -> tuple[int, int, int]:
        extra = bytes(extra)
        i = 0
        while i + 4 <= len(extra):
            tag, length = struct.unpack_from("<HH", extra, i)
            body = extra[i + 4:i + 4 + length]
            if tag == _ZIP64:
                values = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
                if usize == _U32:
                    usize = values.pop(0) if values else -1
                if csize == _U32:
                    csize = values.pop(0) if values else -1
                if offset == _U32:
                    offset = values.pop(0) if values else -1
                if min(usize, csize, offset) < 0:
                    break
                return usize, csize, offset
            i += 4 + length
        raise SerializeError(f"record {name!r}: zip64 sizes are missing from its extra field", record=name)

    def _local_header(self, offset: int, name: str) -> int:
        if offset + _LOCAL.size > self.size:
            raise SerializeError(f"record {name!r}: local header at {offset} lies outside the archive", record=name)
        sig, _, flags, _, _, _, _, _, _, name_len, extra_len = _LOCAL.unpack_from(self.buffer, offset)
        if sig != _SIG_LOCAL:
            raise SerializeError(f"record {name!r}: bad local header signature at {offset}", record=name)
        name_at = offset + _LOCAL.size
        if bytes(self.buffer[name_at:name_at + name_len]) != name.encode("utf-8"):
            raise SerializeError(f"record {name!r}: local header names a different record", record=name)
        return name_at + name_len + extra_len

    # ------------------------------------------------------------------ records

    def names(self) -> list[str]:
        return list(self.entries)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def entry(self, name: str) -> Entry:
        try:
            return self.entries[name]
        except KeyError:
            raise SerializeError(f"record {name!r} not found in the archive", record=name) from None

    def view(self, name: str, *, max_size: int | None = None) -> memoryview:
        """The bytes of a record: a zero-copy view for stored records."""
        e = self.entry(name)
        if max_size is not None and e.size > max_size:
            raise SerializeError(f"record {name!r} is {e.size} bytes, over the limit of {max_size}", record=name)
        raw = self.buffer[e.data_offset:e.data_offset + e.compressed_size]
        if e.method == 0:
            return raw
        self.admit(name)
        limit = min(e.size, MAX_INFLATED if max_size is None else max_size)
        inflater = zlib.decompressobj(-15)
        try:
            out = inflater.decompress(raw, limit + 1)
        except zlib.error as err:
            raise SerializeError(f"record {name!r} is not valid deflate data: {err}", record=name) from None
        if len(out) != e.size:
            raise SerializeError(f"record {name!r} inflates to {len(out)} bytes, not the declared {e.size}",
                                 record=name)
        return memoryview(out)

    def admit(self, name: str) -> None:
        """Charge a deflated record to the archive's inflation allowance (once per record), or
        refuse it: what :meth:`view` checks before inflating. Readers that will not inflate a
        record (``validate``) call it to refuse exactly what a reading ``load`` refuses."""
        e = self.entry(name)
        if e.method == 0 or name in self._inflated:
            return
        allowed = max(MAX_INFLATED_FLOOR, INFLATE_RATIO * self.size)
        if e.size > allowed:
            raise SerializeError(
                f"deflated record {name!r} declares {e.size} bytes from {e.compressed_size}, over the limit of "
                f"{allowed} bytes for a {self.size}-byte archive"
            )
        before = sum(self._inflated.values())
        if before + e.size > allowed:
            raise SerializeError(
                f"deflated record {name!r} declares {e.size} bytes; with the {before} bytes its other deflated "
                f"records inflate to, that is over the limit of {allowed} bytes for a {self.size}-byte archive"
            )
        self._inflated[name] = e.size

    def read(self, name: str, *, max_size: int | None = None) -> bytes:
        return bytes(self.view(name, max_size=max_size))

    def verify_crc(self, name: str) -> bool:
        return zlib.crc32(self.view(name)) & _U32 == self.entry(name).crc

    def root_folder(self) -> str:
        """The single top-level folder every record lives under (PyTorch archives have one)."""
        roots = {n.split("/", 1)[0] for n in self.entries if "/" in n}
        if len(roots) != 1 or any("/" not in n for n in self.entries):
            raise SerializeError(
                f"archive records must all live under one top-level folder (found {sorted(roots)[:5]})"
            )
        return next(iter(roots))


def _read_all(f) -> bytearray:
    """Every byte of a file object, read once into one private (writable) buffer."""
    out = bytearray()
    while True:
        chunk = f.read(_CHUNK)
        if not chunk:
            return out
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise SerializeError("file object must be opened in binary mode")
        out += chunk


def _has_fileno(f) -> bool:
    try:
        f.fileno()
        return True
    except (OSError, AttributeError, io.UnsupportedOperation):
        return False


# =============================================================================== writer


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
        fixed = _LOCAL.size + len(encoded)
        pad = -(self._start + header_at + fixed + 4) % ALIGNMENT
        extra = struct.pack("<HH", _FB, pad) + b"Z" * pad
        flags = _FLAGS_EMPTY if whole else _FLAGS
        self._write(_LOCAL.pack(_SIG_LOCAL, 0, flags, 0, 0, 0, 0, 0, 0, len(encoded), len(extra)))
        self._write(encoded)
        self._write(extra)
        self._lead = bytearray()
        if whole:
            self._whole.add(name)
        return header_at

    def _end(self, name: str, header_at: int, crc: int, size: int) -> None:
        if name not in self._whole:
            descriptor = _DESCRIPTOR64 if size >= _U32 else _DESCRIPTOR
            self._write(descriptor.pack(_SIG_DESCRIPTOR, crc, size, size))
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
        self._end(name, header_at, out.crc & _U32, out.size)

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
            big = size >= _U32 or offset >= _U32
            extra = b""
            if big:
                extra = struct.pack("<HHQQQ", _ZIP64, 24, size, size, offset)
            flags = _FLAGS_EMPTY if name in self._whole else _FLAGS
            self._write(_CENTRAL.pack(
                _SIG_CENTRAL, 0, 45 if big else 0, flags, 0, 0, 0, crc,
                _U32 if big else size, _U32 if big else size,
                len(encoded), len(extra), 0, 0, 0, 0, _U32 if big else offset,
            ))
            self._write(encoded)
            self._write(extra)
        cd_size = self._pos - cd_start
        eocd64_at = self._pos
        n = len(self._records)
        self._write(_EOCD64.pack(_SIG_EOCD64, 44, 0x031E, 45, 0, 0, n, n, cd_size, cd_start))
        self._write(_LOCATOR64.pack(_SIG_LOCATOR64, 0, eocd64_at, 1))
        self._write(_EOCD.pack(
            _SIG_EOCD, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
            min(cd_size, _U32), min(cd_start, _U32), 0,
        ))
        self._out.flush()
        self._closed = True
        if self._final_path is not None:
            # No fsync: like torch.save and torch.export.save, durability is left to the OS
            # (an fsync doubles the time of a multi-GiB save). The rename still guarantees
            # that a save that fails never replaces the old file.
            self._out.close()
            try:  # replacing a file keeps its permission bits, as writing it in place would
                os.chmod(self._tmp_path, stat.S_IMODE(os.stat(self._final_path).st_mode))
            except OSError:
                pass  # a new file: the umask's mode stays
            os.replace(self._tmp_path, self._final_path)
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


_CHUNK = 16 << 20
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
    return crc & _U32, size
