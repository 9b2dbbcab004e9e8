"""Atomic flushes for the run file: HDF5 writes through a write-ahead log, so a kill never tears the file.

HDF5 updates its metadata in place (B-tree nodes, object headers, heap collections). A process killed while
``H5Fflush`` is writing them leaves some pieces new and some old, and no ordering of HDF5's own writes
avoids that for every structure. So the writer does not let HDF5 touch the run file directly: h5py's
``fileobj`` driver sends every read and write through :class:`WriteAheadFile`, which keeps the writes in
memory until HDF5 flushes (the end of every flush cycle, when the file HDF5 describes is whole), and then

1. writes them all as one record, with its length and CRC-32, to ``<file>-wal`` next to the run file
   (and, when ``durable``, ``fdatasync``s it);
2. copies them into the run file (``fdatasync`` when ``durable``);
3. marks the record done (its first 8 bytes zeroed).

A kill during 1 leaves a record that fails its check: the run file still holds the previous flush, whole.
A kill during 2 leaves a valid record: whoever opens the file next with labctl (the writer on
``open_existing``, :class:`~labctl.store.reader.RunReader`, ``labctl resume``/``analyze``) copies it again
(:func:`recover`), which is harmless because the record holds final bytes, not changes. A kill during 3 or
between flushes leaves nothing to do. Only the copy in 2 — a few hundred kB at most, once per cycle — is a
window in which plain h5py would meet a torn file; the ``-wal`` file then sits next to it and the first
labctl open repairs it.

The writer holds an exclusive ``flock`` on ``<file>-wal`` while the file is open, which also keeps a second
writer process out (HDF5's own file lock does not apply to the ``fileobj`` driver). A reader only repairs a
record when it can take that lock, i.e. when no writer is alive. A clean close removes ``<file>-wal``.
"""

from __future__ import annotations

import bisect
import os
import struct
import sys
import zlib
from pathlib import Path

from labctl.errors import DataFileError

#: POSIX only (``flock``, ``pread``/``pwrite``); on Windows the writer uses HDF5's own driver without a log.
SUPPORTED = sys.platform != "win32"
if SUPPORTED:
    import fcntl

MAGIC = b"LCWAL\x00\x01\x00"
_HEAD = struct.Struct("<8sQQII")  # magic, new file size, payload bytes, extents, CRC-32 of the rest
_EXTENT = struct.Struct("<QI")  # offset, length (followed by the bytes)


def wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


class WriteAheadFile:
    """The file object h5py's ``fileobj`` driver reads and writes; one per open run file."""

    def __init__(self, path: Path, *, create: bool, durable: bool = True) -> None:
        self.path = path
        self.durable = durable
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        self._fd = os.open(path, flags, 0o644)
        try:
            self._wal_fd = os.open(wal_path(path), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            os.close(self._fd)
            raise
        try:
            fcntl.flock(self._wal_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._wal_fd)
            os.close(self._fd)
            raise DataFileError(f"{path}: another labctl process is writing this file "
                                f"(it holds {wal_path(path).name})") from exc
        if create and durable:
            _sync_folder(path.parent)  # the new file's name survives a power cut too
        if not create:
            _replay(self._fd, self._wal_fd, durable)
        self._size = os.fstat(self._fd).st_size
        self._pos = 0
        self._starts: list[int] = []  # pending writes: sorted, non-overlapping, non-adjacent extents
        self._data: list[bytearray] = []
        self._dirty_size = False
        #: Diagnostics for the benchmark: flushes committed and bytes they copied.
        self.commits = 0
        self.committed_bytes = 0

    # ---------------------------------------------------------------------- file-object protocol for h5py
    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self._pos = offset
        elif whence == os.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._size + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = max(0, self._size - self._pos)
        buf = bytearray(n)
        self.readinto(buf)
        return bytes(buf)

    def readinto(self, buf: bytearray | memoryview) -> int:
        view = memoryview(buf).cast("B")
        n = len(view)
        start = self._pos
        got = os.preadv(self._fd, [view], start) if n else 0
        if got < n:
            view[got:] = bytes(n - got)  # beyond the end on disk: zeros, as HDF5's own driver reads them
        end = start + n
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        while i < len(self._starts) and self._starts[i] < end:
            s, data = self._starts[i], self._data[i]
            lo, hi = max(s, start), min(s + len(data), end)
            if lo < hi:
                view[lo - start:hi - start] = data[lo - s:hi - s]
            i += 1
        self._pos = end
        return n

    def write(self, data: bytes | bytearray | memoryview) -> int:
        chunk = bytes(data)
        n = len(chunk)
        if n:
            self._put(self._pos, chunk)
            self._pos += n
            self._size = max(self._size, self._pos)
        return n

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else int(size)
        if size != self._size:
            self._size = size
            self._dirty_size = True
            self._cut(size)
        return size

    def flush(self) -> None:
        """HDF5 flushed: the file it describes is whole. Commit the pending writes (see the module doc)."""
        if not self._starts and not self._dirty_size and os.fstat(self._fd).st_size == self._size:
            return
        extents = list(zip(self._starts, self._data, strict=True))
        payload = b"".join(_EXTENT.pack(s, len(d)) + bytes(d) for s, d in extents)
        head = _HEAD.pack(MAGIC, self._size, len(payload), len(extents), 0)
        crc = zlib.crc32(payload, zlib.crc32(head[:-4]))
        os.pwrite(self._wal_fd, head[:-4] + struct.pack("<I", crc) + payload, 0)
        if self.durable:
            os.fdatasync(self._wal_fd)
        _apply(self._fd, self._size, extents, self.durable)
        os.pwrite(self._wal_fd, bytes(8), 0)
        self.commits += 1
        self.committed_bytes += len(payload)
        self._starts, self._data, self._dirty_size = [], [], False

    def close(self, *, remove_log: bool = True) -> None:
        """Commit what is pending, then close both files (removing ``<file>-wal`` on a clean close)."""
        if self._fd < 0:
            return
        try:
            self.flush()
            if remove_log:
                wal_path(self.path).unlink(missing_ok=True)
        finally:
            os.close(self._wal_fd)  # releases the writer's lock
            os.close(self._fd)
            self._fd = self._wal_fd = -1

    @property
    def closed(self) -> bool:
        return self._fd < 0

    # ------------------------------------------------------------------------------ pending writes
    def _put(self, start: int, chunk: bytes) -> None:
        end = start + len(chunk)
        lo = bisect.bisect_left(self._starts, start)
        if lo > 0 and self._starts[lo - 1] + len(self._data[lo - 1]) >= start:
            lo -= 1  # the extent before overlaps or touches this write
        hi = lo
        while hi < len(self._starts) and self._starts[hi] <= end:
            hi += 1
        if lo == hi:
            self._starts.insert(lo, start)
            self._data.insert(lo, bytearray(chunk))
            return
        merged_start = min(start, self._starts[lo])
        merged_end = max(end, self._starts[hi - 1] + len(self._data[hi - 1]))
        if hi - lo == 1 and merged_start == self._starts[lo]:
            data = self._data[lo]  # the common case: rewrite inside, or append to, one extent
            if merged_end > merged_start + len(data):
                data.extend(bytes(merged_end - merged_start - len(data)))
            data[start - merged_start:end - merged_start] = chunk
            return
        data = bytearray(merged_end - merged_start)
        for s, d in zip(self._starts[lo:hi], self._data[lo:hi], strict=True):
            data[s - merged_start:s - merged_start + len(d)] = d
        data[start - merged_start:end - merged_start] = chunk
        self._starts[lo:hi] = [merged_start]
        self._data[lo:hi] = [data]

    def _cut(self, size: int) -> None:
        while self._starts and self._starts[-1] >= size:
            self._starts.pop()
            self._data.pop()
        if self._starts and self._starts[-1] + len(self._data[-1]) > size:
            del self._data[-1][size - self._starts[-1]:]


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to sync a folder; the data files themselves are synced
    finally:
        os.close(fd)


def _apply(fd: int, size: int, extents: list[tuple[int, bytearray]] | list[tuple[int, bytes]],
           durable: bool) -> None:
    for start, data in extents:
        os.pwrite(fd, data, start)
    if os.fstat(fd).st_size != size:
        os.ftruncate(fd, size)
    if durable:
        os.fdatasync(fd)


def _read_record(wal_fd: int) -> tuple[int, list[tuple[int, bytes]]] | None:
    """The committed record in the log, or None (none, done, or cut short by a kill)."""
    head = os.pread(wal_fd, _HEAD.size, 0)
    if len(head) < _HEAD.size:
        return None
    magic, size, nbytes, count, crc = _HEAD.unpack(head)
    if magic != MAGIC:
        return None
    payload = os.pread(wal_fd, nbytes, _HEAD.size)
    if len(payload) < nbytes or zlib.crc32(payload, zlib.crc32(head[:-4])) != crc:
        return None
    extents = []
    at = 0
    for _ in range(count):
        start, length = _EXTENT.unpack_from(payload, at)
        at += _EXTENT.size
        extents.append((start, payload[at:at + length]))
        at += length
    return size, extents


def _replay(fd: int, wal_fd: int, durable: bool) -> bool:
    record = _read_record(wal_fd)
    if record is not None:
        _apply(fd, record[0], record[1], durable)
    os.ftruncate(wal_fd, 0)
    return record is not None


def has_record(path: Path) -> bool:
    """A committed flush record waits in ``<file>-wal`` (a writer died copying it, or is copying it now)."""
    try:
        wal_fd = os.open(wal_path(path), os.O_RDONLY)
    except OSError:
        return False
    try:
        return _read_record(wal_fd) is not None
    finally:
        os.close(wal_fd)


def recover(path: Path) -> bool:
    """Finish a flush that a killed writer left half-copied (see the module doc); True if it did.

    Does nothing while a writer holds the file, when there is no log, or when the file cannot be written
    (read-only media: the reader then copes as with any file being written).
    """
    log = wal_path(path)
    if not SUPPORTED:
        return False
    try:
        if log.stat().st_size == 0:
            return False
        wal_fd = os.open(log, os.O_RDWR)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(wal_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a writer is alive: its flushes are its own business
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return False
        try:
            done = _replay(fd, wal_fd, durable=True)
        finally:
            os.close(fd)
        log.unlink(missing_ok=True)
        return done
    finally:
        os.close(wal_fd)
