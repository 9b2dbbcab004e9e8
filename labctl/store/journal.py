"""The journal: recent rows of every block in one uncompressed ring dataset, ``/journal/ring``.

Why: a flush that writes one dataset costs the same whatever the number of blocks, while one dataset per
column costs ~0.3 ms each (64 channels x 5 columns = ~100 ms per flush). Rows reach the journal in every
flush cycle and move to their block's compressed datasets in whole chunks later ("compaction"); readers
merge the two.

Layout: ``ring`` is float64, shape ``(capacity + 1, RECORD_WIDTH)``. Row 0 is the header
``[MAGIC, head, oldest, capacity, 0..., head]``; record ``seq`` lives at row ``1 + seq % capacity`` and is
``[seq, block_index, row, first_column, v0 ... v6, seq]`` (NaN where a block has fewer columns; a block
with more than :data:`VALUES_PER_RECORD` columns uses consecutive records for one row). ``head`` is the
next sequence number, ``oldest`` the oldest record a reader may still need.

Crash safety: records are only ever written over records that are no longer needed, i.e. older than the
``oldest`` of a header that a completed flush cycle wrote (the compacted rows reached the disk in that
cycle or before); the header is written after the records of its cycle. A record carries its sequence
number at both ends, so a record torn by a kill (the kernel copies a write page by page) or left over
from an earlier lap is recognised and ignored. Overwriting chunks that exist changes no HDF5 metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

RECORD_WIDTH = 12
VALUES_PER_RECORD = RECORD_WIDTH - 5
#: Identifies a header row (an arbitrary float64 that no sequence number reaches).
MAGIC = 7.0e15 + 13.0
#: Records in the ring. Chunks are written only when used, so a short run stores only what it journaled;
#: a long one stores ``capacity`` x 96 bytes (~100 MB) once, whatever its length.
DEFAULT_CAPACITY = 1 << 20
CHUNK_RECORDS = 1024
RING = "ring"


def records_per_row(n_columns: int) -> int:
    return -(-n_columns // VALUES_PER_RECORD)


def encode_many(blocks: np.ndarray, rows: np.ndarray, values: np.ndarray, first_seq: int) -> np.ndarray:
    """Records for rows of several blocks of the same width at once: ``blocks`` and ``rows`` give each
    row's block index and row number, ``values`` is columns x rows."""
    n_cols, n = values.shape
    per_row = records_per_row(n_cols)
    out = np.full((n * per_row, RECORD_WIDTH), np.nan)
    seq = first_seq + np.arange(n * per_row, dtype=np.float64)
    out[:, 0] = seq
    out[:, -1] = seq
    out[:, 1] = np.repeat(blocks, per_row)
    out[:, 2] = np.repeat(rows, per_row)
    for part in range(per_row):
        lo = part * VALUES_PER_RECORD
        hi = min(n_cols, lo + VALUES_PER_RECORD)
        out[part::per_row, 3] = lo
        out[part::per_row, 4:4 + hi - lo] = values[lo:hi].T
    return out


def encode(block_index: int, first_row: int, values: np.ndarray, first_seq: int) -> np.ndarray:
    """Records for the rows of one block (columns x rows), numbered from ``first_seq``."""
    n = values.shape[1]
    return encode_many(np.full(n, float(block_index)), np.arange(first_row, first_row + n, dtype=np.float64),
                       values, first_seq)


class JournalWriter:
    """The writer's side of the ring: sequence numbers, free space, record and header writes."""

    def __init__(self, ring: h5py.Dataset, head: int, oldest: int) -> None:
        self.ring = ring
        self.capacity = ring.shape[0] - 1
        self.head = head
        #: Oldest record that the header of the last completed cycle still needs (nothing older is read).
        self.safe_oldest = oldest

    @classmethod
    def create(cls, parent: h5py.Group, capacity: int = DEFAULT_CAPACITY) -> JournalWriter:
        ring = parent.create_dataset(RING, shape=(capacity + 1, RECORD_WIDTH), dtype="f8",
                                     chunks=(min(CHUNK_RECORDS, capacity + 1), RECORD_WIDTH),
                                     fillvalue=np.nan)
        journal = cls(ring, 0, 0)
        journal.write_header(0)
        return journal

    @classmethod
    def attach(cls, parent: h5py.Group, n_columns: dict[int, int]) -> tuple[JournalWriter, list[Segment]]:
        ring = parent[RING]
        head, oldest, segments = read_ring(ring, n_columns)
        return cls(ring, head, oldest), segments

    def free(self) -> int:
        """Records that can be written now without touching one a reader may still need."""
        return self.capacity - (self.head - self.safe_oldest)

    def append(self, records: np.ndarray) -> None:
        """Write records numbered ``head, head + 1, ...`` (their sequence numbers must say so)."""
        n = len(records)
        if n == 0:
            return
        if n > self.free():
            raise RuntimeError(f"journal overrun: {n} records, {self.free()} free")  # the writer prevents it
        start = 1 + self.head % self.capacity
        first = min(n, self.capacity + 1 - start)
        self._write(start, records[:first])
        if first < n:
            self._write(1, records[first:])
        self.head += n

    def write_header(self, oldest: int) -> None:
        header = np.zeros(RECORD_WIDTH)
        header[:4] = (MAGIC, self.head, oldest, self.capacity)
        header[-1] = self.head
        self._write(0, header[None, :])

    def _write(self, row: int, records: np.ndarray) -> None:
        """``ring[row:row + len(records)] = records`` through HDF5's own call (h5py's slicing is slower)."""
        records = np.ascontiguousarray(records, dtype=np.float64)
        file_space = self.ring.id.get_space()
        file_space.select_hyperslab((row, 0), records.shape)
        self.ring.id.write(h5py.h5s.create_simple(records.shape), file_space, records)

    def committed(self, oldest: int) -> None:
        """The cycle whose header said ``oldest`` reached the file: older records may be overwritten."""
        self.safe_oldest = oldest


@dataclass
class Segment:
    """The whole rows of one block found in the journal, in row order (there may be gaps: rows already
    compacted sit before rows journaled later)."""

    block_index: int
    rows: np.ndarray  #: row numbers, increasing
    values: np.ndarray  #: columns x rows
    seqs: np.ndarray  #: journal number of each row's first record

    def run_from(self, first_row: int) -> tuple[np.ndarray, np.ndarray]:
        """(values, seqs) of the consecutive rows starting at ``first_row`` (empty if it is not there)."""
        i = int(np.searchsorted(self.rows, first_row))
        if i == len(self.rows) or self.rows[i] != first_row:
            return self.values[:, :0], self.seqs[:0]
        step = self.rows[i:] - first_row != np.arange(len(self.rows) - i)
        j = len(self.rows) if not step.any() else i + int(np.argmax(step))
        return self.values[:, i:j], self.seqs[i:j]


class RingView:
    """The valid records a reader may need, with each block's rows assembled when first asked for (a
    reader looking at one channel of 64 does not sort the other 63)."""

    def __init__(self, records: np.ndarray) -> None:
        self.records = records
        self._order: np.ndarray | None = None  # records sorted by block, when a second block is asked for
        self._cache: dict[int, Segment | None] = {}

    def segment(self, block_index: int, n_columns: int) -> Segment | None:
        if block_index not in self._cache:
            if not self._cache:  # the first block: one pass over the records
                mine = self.records[self.records[:, 1] == block_index]
            else:  # more: sort once by block (stable, so sequence order stays), then slice
                if self._order is None:
                    self._order = np.argsort(self.records[:, 1], kind="stable")
                    self._sorted_blocks = self.records[self._order, 1]
                lo, hi = np.searchsorted(self._sorted_blocks, [block_index, block_index + 1])
                mine = self.records[self._order[lo:hi]]
            found = _segments(mine, {block_index: n_columns})
            self._cache[block_index] = found[0] if found else None
        return self._cache[block_index]


def read_ring(ring: h5py.Dataset, n_columns: dict[int, int] | None = None) -> tuple[int, int, list[Segment]]:
    """(head, oldest, rows per block) of a ring: every whole, valid record a reader may need.

    ``n_columns`` (block index -> columns) decides how many records make a row; without it, rows are
    assembled from whatever records are there (the writer passes it after it knows its blocks).
    """
    head, oldest, view = read_ring_view(ring)
    return head, oldest, _segments(view.records, n_columns)


def read_ring_view(ring: h5py.Dataset) -> tuple[int, int, RingView]:
    """(head, oldest, the valid records a reader may need)."""
    capacity = ring.shape[0] - 1
    header = ring[0]
    if header[0] == MAGIC and header[1] == header[-1] and header[3] == capacity:
        head, oldest = int(header[1]), int(header[2])
        oldest = max(oldest, head - capacity)
        records = _read_range(ring, oldest, head)
        position = oldest + np.arange(len(records), dtype=np.float64)  # read in sequence order from oldest
        in_order = True
    else:  # a kill tore the header: take every valid record of the newest lap
        records = ring[1:]
        seq = records[:, 0]
        ok = (seq == records[:, -1]) & (seq >= 0)
        head = int(np.max(seq[ok])) + 1 if ok.any() else 0
        oldest = max(0, head - capacity)
        position = np.arange(capacity)
        in_order = False
    seq = records[:, 0]
    # A record is valid where its number is the one that belongs there in this lap, at both of its ends
    # (a stale record from the lap before, a torn one or a never-written one fails this).
    if in_order:
        valid = (seq == records[:, -1]) & (seq == position)
    else:
        valid = (seq == records[:, -1]) & (seq >= oldest) & (seq < head) & \
            (np.mod(seq, capacity) == np.mod(position, capacity))
    return head, oldest, RingView(records[valid])


def _read_range(ring: h5py.Dataset, first: int, stop: int) -> np.ndarray:
    capacity = ring.shape[0] - 1
    if stop <= first:
        return np.empty((0, RECORD_WIDTH))
    start = 1 + first % capacity
    n = stop - first
    part = ring[start:min(capacity + 1, start + n)]
    if len(part) < n:
        part = np.concatenate([part, ring[1:1 + n - len(part)]])
    return part


def _segments(records: np.ndarray, n_columns: dict[int, int] | None) -> list[Segment]:
    """Whole rows per block: the newest copy of each record, rows with all their records.

    One stable sort on an integer key (block, row, part) for all blocks at once: records arrive in
    sequence order, so the last of equal keys is the newest copy.
    """
    out: list[Segment] = []
    if len(records) == 0:
        return out
    block = records[:, 1].astype(np.int64)
    part = (records[:, 3] // VALUES_PER_RECORD).astype(np.int64)
    keys = (block << 44) | (records[:, 2].astype(np.int64) << 4) | part
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    last = np.append(keys[1:] != keys[:-1], True)
    records, keys = records[order[last]], keys[last]
    row_keys = keys >> 4
    starts = np.flatnonzero(np.append(True, row_keys[1:] != row_keys[:-1]))
    counts = np.diff(np.append(starts, len(row_keys)))
    row_block = row_keys[starts] >> 40
    row_no = row_keys[starts] & ((1 << 40) - 1)
    first_part_ok = (keys[starts] & 15) == 0
    for b in np.unique(row_block):
        sel = row_block == b
        width = n_columns.get(int(b)) if n_columns else None
        if width is None:
            width = int(np.max(records[row_block.repeat(counts) == b, 3])) + VALUES_PER_RECORD
        per_row = records_per_row(width)
        whole = sel & (counts == per_row) & first_part_ok
        idx = starts[whole]
        if not len(idx):
            continue
        values = np.empty((width, len(idx)))
        for p in range(per_row):
            lo = p * VALUES_PER_RECORD
            hi = min(width, lo + VALUES_PER_RECORD)
            values[lo:hi] = records[idx + p, 4:4 + hi - lo].T
        out.append(Segment(int(b), row_no[whole], values, records[idx, 0].astype(np.int64)))
    return out
