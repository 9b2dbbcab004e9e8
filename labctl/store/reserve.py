"""The end-of-file reserve that keeps a killed flush from leaving metadata that points past the end of file.

At the end of every flush cycle an anonymous, unwritten dataset is allocated just before ``H5Fflush`` and
freed right after it. The superblock on disk therefore always claims more file than is in use, so the next
cycle's new chunks and index nodes land inside the claimed region; a kill in the middle of that cycle's
flush cannot leave metadata that points beyond the end of the file ("addr overflow"), and the file never
shrinks below what the superblock claims ("truncated file"). The reserve costs no disk (a sparse hole) and
is cut off when the file is closed. It relies on ``fs_strategy="none"`` (freed space is never reused) and
on no chunk cache (chunks get their address while being written, before the reserve is placed).
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py

#: Smallest end-of-file reserve. It costs no disk (the file is extended sparsely) and is cut off at close.
MIN_RESERVE_BYTES = 4 << 20


def round_up(nbytes: int, step: int = 1 << 20) -> int:
    return max(MIN_RESERVE_BYTES, -(-int(nbytes) // step) * step)


class EndOfFileReserve:
    def __init__(self, h5: h5py.File, path: Path) -> None:
        self._h5 = h5
        self._path = path
        self.reserve_bytes = MIN_RESERVE_BYTES
        self._free_start = -1  # where the last reserve started, i.e. the end of the space in use
        self._covered_end = 0  # end of file claimed by the superblock on disk
        self._dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        self._dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        self._dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
        # Diagnostics for tests and the benchmark: cycles that allocated more than the reserve covered, and
        # reserves left behind as holes. Both stay 0 with this package's layout.
        self.uncovered_cycles = 0
        self.reserve_holes = 0

    def ensure(self, need_bytes: int) -> None:
        """Before allocating up to ``need_bytes``: claim enough file in a flush of its own if needed."""
        if self._free_start >= 0 and need_bytes > self._covered_end - self._free_start:
            self.reserve_bytes = max(self.reserve_bytes, round_up(2 * need_bytes))
            self.flush()

    def _make(self, nbytes: int) -> h5py.h5d.DatasetID:
        space = h5py.h5s.create_simple((nbytes,))
        return h5py.h5d.create(self._h5.id, None, h5py.h5t.NATIVE_UINT8, space, dcpl=self._dcpl)

    def flush(self) -> None:
        """``H5Fflush`` with the reserve in place."""
        size = self.reserve_bytes
        reserve = self._make(size)
        offset = reserve.get_offset()
        if offset + size < self._covered_end:
            # Space was freed at the end of the file (an analysis replaced): keep claiming at least as much
            # as before, because a flush that shrinks the file writes the superblock only afterwards.
            reserve.close()
            size = round_up(self._covered_end - offset + MIN_RESERVE_BYTES)
            reserve = self._make(size)
            offset = reserve.get_offset()
        if self._free_start >= 0:
            used = offset - self._free_start
            if used > self._covered_end - self._free_start:
                self.uncovered_cycles += 1
            # Grow the reserve with the data rate so a cycle's allocations stay well inside it.
            self.reserve_bytes = max(self.reserve_bytes, round_up(4 * used))
        self._h5.flush()
        if os.path.getsize(self._path) > offset + size:
            # HDF5 gave some metadata its address only during the flush, behind the reserve (fractal heaps
            # do; the layout avoids them). Freeing the reserve would not move the end of the file back,
            # so claim again behind that metadata; the first reserve stays an unused, sparse hole.
            self.reserve_holes += 1
            first, reserve = reserve, self._make(size)
            offset = reserve.get_offset()
            self._h5.flush()
            first.close()
        reserve.close()  # freed: the next allocations start at ``offset`` again, inside the claimed file
        self._free_start = offset
        self._covered_end = offset + size
