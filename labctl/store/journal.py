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


def read_ring(ring: h5py.Dataset, n_columns: dict[int, int] | None = None) -> tuple[int, int, list[Segment]]:
    """(head, oldest, rows per block) of a ring: every whole, valid record a reader may need.

    ``n_columns`` (block index -> columns) decides how many records make a row; without it, rows are
    assembled from whatever records are there (the writer passes it after it knows its blocks).
    """
    capacity = ring.shape[0] - 1
    header = ring[0]
    if header[0] == MAGIC and header[1] == header[-1] and header[3] == capacity:
        head, oldest = int(header[1]), int(header[2])
        oldest = max(oldest, head - capacity)
        records = _read_range(ring, oldest, head)
        position = oldest + np.arange(len(records))  # records were read in sequence order from oldest
    else:  # a kill tore the header: take every valid record of the newest lap
        records = ring[1:]
        seq = records[:, 0]
        ok = (seq == records[:, -1]) & (seq >= 0)
        head = int(np.max(seq[ok])) + 1 if ok.any() else 0
        oldest = max(0, head - capacity)
        position = np.arange(capacity)
    seq = records[:, 0]
    # A record is valid where its number is the one that belongs there in this lap, at both of its ends
    # (a stale record from the lap before, a torn one or a never-written one fails this).
    valid = (seq == records[:, -1]) & (seq >= oldest) & (seq < head) & (np.mod(seq, capacity) ==
                                                                         np.mod(position, capacity))
    return head, oldest, _segments(records[valid], n_columns)


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
    out: list[Segment] = []
    if len(records) == 0:
        return out
    block = records[:, 1].astype(np.int64)
    for b in np.unique(block):
        mine = records[block == b]
        # newest copy of each (row, part) wins: a row re-journaled later carries the same values
        order = np.lexsort((mine[:, 0], mine[:, 3], mine[:, 2]))
        mine = mine[order]
        key = mine[:, 2] * 1e6 + mine[:, 3]  # rows < 2**53 / 1e6 (9e9): far beyond any block
        last = np.append(key[1:] != key[:-1], True)
        mine = mine[last]
        width = n_columns.get(int(b)) if n_columns else None
        if width is None:
            width = int(np.max(mine[:, 3])) + VALUES_PER_RECORD
        per_row = records_per_row(width)
        # whole rows only: a row missing one of its records (torn by a kill) is left out
        rows = mine[:, 2].astype(np.int64)
        uniq, _first_index, counts = np.unique(rows, return_index=True, return_counts=True)
        whole = counts == per_row
        if not whole.any():
            continue
        keep = np.repeat(whole, counts)
        mine = mine[keep]
        values = np.empty((width, int(whole.sum())))
        for part in range(per_row):
            lo = part * VALUES_PER_RECORD
            hi = min(width, lo + VALUES_PER_RECORD)
            values[lo:hi] = mine[part::per_row, 4:4 + hi - lo].T
        out.append(Segment(int(b), uniq[whole], values, mine[0::per_row, 0].astype(np.int64)))
    return out
