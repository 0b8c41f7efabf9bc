"""The PT2 archive container, read: a zip file of stored records with 64-byte aligned data.

Reading trusts nothing: every offset and size is checked against the real file size,
names with ``..``, absolute paths, backslashes or NUL bytes are refused, as are duplicate
names, overlapping records, encrypted records and local headers that disagree with the
central directory. Records are exposed as ``memoryview`` slices of one mapping of the
file (or of the caller's buffer), so nothing is read twice and large payloads are not
copied.

The zip record layouts and the record-name rule (:func:`check_name`) live here once; the
writer (:mod:`pt2serde.format.archive_write`) builds its records from them, so it never
writes a name the reader would refuse.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from typing import BinaryIO, NamedTuple

from . import mapguard
from ..errors import NotAZipError, SerializeError

__all__ = [
    "ALIGNMENT",
    "Entry",
    "ArchiveReader",
    "MAX_ENTRIES",
    "check_name",
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
_CHUNK = 16 << 20  # read unit of a file object that cannot be mapped

# The zip records (APPNOTE 4.3), shared with the writer.
LOCAL = struct.Struct("<4sHHHHHIIIHH")  # signature .. extra length (30 bytes)
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # 46 bytes
EOCD = struct.Struct("<4sHHHHIIH")  # 22 bytes
EOCD64 = struct.Struct("<4sQHHIIQQQQ")  # 56 bytes
LOCATOR64 = struct.Struct("<4sIQI")  # 20 bytes
DESCRIPTOR = struct.Struct("<4sIII")
DESCRIPTOR64 = struct.Struct("<4sIQQ")

SIG_LOCAL = b"PK\x03\x04"
SIG_CENTRAL = b"PK\x01\x02"
SIG_EOCD = b"PK\x05\x06"
SIG_EOCD64 = b"PK\x06\x06"
SIG_LOCATOR64 = b"PK\x06\x07"
SIG_DESCRIPTOR = b"PK\x07\x08"

FLAGS = 0x0808  # data descriptor follows the data; names are UTF-8
FLAGS_EMPTY = 0x0800  # an empty record, written whole (PyTorch writes no descriptor for it)
FB = 0x4246  # "FB": the padding extra field PyTorch uses
ZIP64 = 0x0001
U32 = 0xFFFFFFFF


def check_name(name: str) -> str:
    """Refuse record names that could escape a folder or be ambiguous."""
    if not name or len(name) > MAX_NAME:
        raise SerializeError(f"invalid record name {name[:80]!r}: empty or over {MAX_NAME} characters")
    if "\0" in name or "\\" in name:
        raise SerializeError(f"invalid record name {name!r}: contains NUL or a backslash")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise SerializeError(f"invalid record name {name!r}: absolute path")
    walled = f"/{name.rstrip('/')}/"  # each segment between slashes: found at C speed
    if "//" in walled or "/./" in walled or "/../" in walled:
        raise SerializeError(f"invalid record name {name!r}: empty, '.' or '..' path segment")
    return name


class Entry(NamedTuple):
    """One record of the archive as the central directory and local header describe it
    (immutable; a named tuple: an archive of weights has hundreds, read on every load)."""

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
        if size < EOCD.size:
            raise NotAZipError(f"not a zip archive: {size} bytes is too short")
        tail_start = max(0, size - EOCD.size - 0xFFFF)
        pos = bytes(buf[tail_start:]).rfind(SIG_EOCD)
        if pos < 0:
            raise NotAZipError("not a zip archive: no end-of-central-directory record")
        eocd_at = tail_start + pos
        if eocd_at + EOCD.size > size:
            raise NotAZipError("truncated end-of-central-directory record")
        _, disk, cd_disk, n_disk, count, cd_size, cd_offset, comment_len = EOCD.unpack_from(buf, eocd_at)
        if disk != 0 or cd_disk != 0 or n_disk != count:
            raise SerializeError("multi-disk zip archives are not supported")
        if count == 0xFFFF or cd_size == U32 or cd_offset == U32:
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
            if at + CENTRAL.size > end:
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
        loc_at = eocd_at - LOCATOR64.size
        if loc_at < 0 or bytes(self.buffer[loc_at:loc_at + 4]) != SIG_LOCATOR64:
            raise SerializeError("zip64 archive without a zip64 locator")
        _, _, eocd64_at, _ = LOCATOR64.unpack_from(self.buffer, loc_at)
        if eocd64_at + EOCD64.size > loc_at:
            raise SerializeError("zip64 end-of-central-directory record lies outside the archive")
        sig, _, _, _, _, _, n_disk, count, cd_size, cd_offset = EOCD64.unpack_from(self.buffer, eocd64_at)
        if sig != SIG_EOCD64 or n_disk != count:
            raise SerializeError("invalid zip64 end-of-central-directory record")
        return count, cd_size, cd_offset

    def _central_entry(self, at: int, end: int, index: int) -> tuple[Entry, int]:
        buf = self.buffer
        (sig, _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len, comment_len,
         _, _, _, header_offset) = CENTRAL.unpack_from(buf, at)
        if sig != SIG_CENTRAL:
            raise SerializeError(f"central directory record {index} has a bad signature")
        name_at = at + CENTRAL.size
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
        if usize == U32 or csize == U32 or header_offset == U32:
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
            if tag == ZIP64:
                values = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
                if usize == U32:
                    usize = values.pop(0) if values else -1
                if csize == U32:
                    csize = values.pop(0) if values else -1
                if offset == U32:
                    offset = values.pop(0) if values else -1
                if min(usize, csize, offset) < 0:
                    break
                return usize, csize, offset
            i += 4 + length
        raise SerializeError(f"record {name!r}: zip64 sizes are missing from its extra field", record=name)

    def _local_header(self, offset: int, name: str) -> int:
        if offset + LOCAL.size > self.size:
            raise SerializeError(f"record {name!r}: local header at {offset} lies outside the archive", record=name)
        sig, _, flags, _, _, _, _, _, _, name_len, extra_len = LOCAL.unpack_from(self.buffer, offset)
        if sig != SIG_LOCAL:
            raise SerializeError(f"record {name!r}: bad local header signature at {offset}", record=name)
        name_at = offset + LOCAL.size
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
        return zlib.crc32(self.view(name)) & U32 == self.entry(name).crc

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
