"""One block being written: rows buffered in memory, journaled, then compacted into compressed chunks.

A row goes through three places. ``append_row`` puts it in the block's *pending* buffer (any thread, under
the writer's buffer lock). The next flush cycle writes it to the journal and keeps it in the block's
*tail*, the rows not yet compacted. When the tail holds a whole chunk (or the block is finished, or idle),
a cycle writes it to the block's compressed column datasets and to its min/max/mean pyramid; its journal
records are then no longer needed. An array of at least a chunk goes straight to the compressed datasets.

A compressed chunk is written once: rewriting one would leave its old copy behind, since file space is
never reused (crash safety). Only a block that goes idle with a partial chunk has that chunk rewritten when
it gets more rows, and only once its tail has doubled since (so the wasted space stays below one chunk).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from labctl.clock import real_elapsed_s
from labctl.errors import DataFileError
from labctl.store import journal as jr
from labctl.store import nexus, pyramid, schema

if TYPE_CHECKING:
    from labctl.store.writer import RunWriter

#: Rows a block buffers before the appending thread runs a cycle itself (64 Ki rows = 512 KiB per column).
MAX_BUFFER_ROWS = 1 << 16
#: Chunk rows of a block without an ``expected_rows`` hint: 32 KiB per column, ~900 chunks per 1000 h at 1 Hz.
DEFAULT_CHUNK_ROWS = 4096
MIN_CHUNK_ROWS = pyramid.FIRST_FACTOR
#: gzip (deflate) with byte shuffling: built into every HDF5 (h5py, HDFView, MATLAB, silx, h5web).
COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
_FIRST_BUFFER_ROWS = 64


class ColumnError(DataFileError, ValueError):
    """Rows or arrays that do not match a block's columns (missing, unknown, not numbers, lengths)."""


def chunk_rows_for(expected_rows: int | None) -> int:
    """Rows per compressed chunk: the expected block length rounded up to a power of two, 128..4096."""
    if expected_rows is None:
        return DEFAULT_CHUNK_ROWS
    if not isinstance(expected_rows, int) or expected_rows < 1:
        raise DataFileError(f"expected_rows must be a whole number >= 1, got {expected_rows!r}")
    return int(min(DEFAULT_CHUNK_ROWS, max(MIN_CHUNK_ROWS, 1 << (expected_rows - 1).bit_length())))


class BlockWriter:
    """One block of a run being written. Get it from ``RunWriter.create_block`` or ``RunWriter.block``."""

    def __init__(self, writer: RunWriter, name: str, group: h5py.Group, columns: dict[str, str], index: int,
                 n_compacted: int, *, frozen: bool = False) -> None:
        self._writer = writer
        self._group = group
        self.name = name
        self.index = index
        self._columns = columns
        self._names = list(columns)
        self._frozen = frozen  # a version-1 block: readable, not appendable
        # pending: written by appending threads under the writer's buffer lock
        self._pend = np.empty((len(self._names), _FIRST_BUFFER_ROWS))
        self._n_pend = 0
        self._n_total = n_compacted
        self.last_append_s = real_elapsed_s()
        self.finish_requested = False
        # the rest is the cycle's (the writer's I/O lock)
        self._dsets = [group[c] for c in self._names]
        # float32 columns: rows are rounded to float32 before they are journaled, so the journal, the
        # compacted chunks and every reader hold the same values
        self._single = np.array([ds.dtype == np.float32 for ds in self._dsets], dtype=bool)
        self.chunk_rows = int(self._dsets[0].chunks[0]) if self._dsets and self._dsets[0].chunks else \
            DEFAULT_CHUNK_ROWS
        self.n_compacted = n_compacted
        # the tail: rows journaled, not yet compacted, in a buffer that grows by doubling
        self._tail = np.empty((len(self._names), _FIRST_BUFFER_ROWS))
        self._tail_seq = np.empty(_FIRST_BUFFER_ROWS, dtype=np.int64)  # journal number of each row's record
        self.n_tail = 0
        self._partial_rows = 0  # rows of the last chunk when it was last written partial (0: never)
        self._trim = False
        self.pyramid: pyramid.PyramidWriter | None = None

    # --------------------------------------------------------------------------------- creation
    @classmethod
    def create(cls, writer: RunWriter, h5: h5py.File, name: str, columns: dict[str, str],
               attrs: Mapping[str, Any], *, index: int, chunk_rows: int, signal: str, axis: str,
               kind: str, single_precision: frozenset[str] = frozenset()) -> BlockWriter:
        # Created unlinked and linked into /blocks by the next cycle, once its headers are on disk.
        group = h5py.Group(h5py.h5g.create(h5.id, None))
        group.attrs[schema.COLUMNS_ATTR] = np.array(list(columns), dtype=schema.STR_DTYPE)
        for col, unit in columns.items():
            # NaN fill: a row that never reached the disk reads as NaN, never as a plausible 0.0.
            ds = group.create_dataset(col, shape=(0,), maxshape=(None,), chunks=(chunk_rows,),
                                      dtype="f4" if col in single_precision else "f8", fillvalue=np.nan,
                                      **COMPRESSION)
            ds.attrs[schema.UNITS_ATTR] = unit
        nexus.annotate_block(group, columns, signal, axis, kind, nexus.time_column(list(columns), axis),
                             f"/{schema.BLOCKS}/{name}")
        schema.write_attrs(group.attrs, attrs)
        # the pyramid's group exists before the block is linked: adding it later would change a linked group
        summary = group.create_group(schema.SUMMARY)
        summary.attrs[schema.COLUMNS_ATTR] = np.array(list(columns), dtype=schema.STR_DTYPE)
        writer._link_later(h5[schema.BLOCKS], name, group)
        block = cls(writer, name, group, columns, index, 0)
        block.pyramid = pyramid.PyramidWriter(group, schema.SUMMARY, list(columns), writer._link_later)
        return block

    @classmethod
    def attach(cls, writer: RunWriter, h5: h5py.File, group: h5py.Group, version: int) -> BlockWriter:
        """An existing block; after a kill its columns may differ by one cycle: the shortest length wins."""
        columns = {c: str(schema.read_attrs(group[c].attrs).get(schema.UNITS_ATTR, ""))
                   for c in schema.column_order(group)}
        n = min((schema.stored_rows(group[c]) for c in columns), default=0)
        index = int(group.attrs.get(schema.BLOCK_INDEX_ATTR, -1))
        block = cls(writer, group.name.rsplit("/", 1)[-1], group, columns, index, n, frozen=version < 2)
        # Rows of an interrupted flush (a column longer than the others, or rows whose chunk never reached
        # the disk and read as NaN) are cut off in the first cycle; new rows continue after the whole ones.
        block._trim = any(group[c].shape[0] != n for c in columns)
        if version >= 2:
            block.pyramid = pyramid.PyramidWriter.attach(group, schema.SUMMARY, list(columns), block._dsets, n,
                                                         writer._link_later)
        return block

    # ----------------------------------------------------------------------------------- public
    @property
    def columns(self) -> dict[str, str]:
        """Column name -> unit, in creation order."""
        return dict(self._columns)

    @property
    def n_rows(self) -> int:
        """Rows appended so far, including those not yet on disk."""
        return self._n_total

    def append_row(self, values: Mapping[str, float] | None = None, /, **kw: float) -> None:
        """One row; every column is required (``values`` mapping and/or keywords). Thread-safe."""
        row: Mapping[str, Any] = kw if values is None else ({**values, **kw} if kw else values)
        try:
            vals = [row[c] for c in self._names]
        except KeyError:
            raise self._key_error(row) from None
        if len(row) != len(self._names):
            raise self._key_error(row)
        full = False
        with self._writer._buf_lock:
            self._check_open()
            n = self._n_pend
            if n == self._pend.shape[1]:
                self._grow(1)
            try:
                self._pend[:, n] = vals
            except (TypeError, ValueError):
                raise self._value_error(row) from None
            self._n_pend = n + 1
            self._n_total += 1
            self.last_append_s = real_elapsed_s()
            full = self._n_pend >= MAX_BUFFER_ROWS
        if full:
            self._writer.flush()

    def append_columns(self, values: Mapping[str, Any] | None = None, /, **kw: Any) -> None:
        """Equal-length 1-D arrays, one per column; same result as appending their rows one by one."""
        cols: Mapping[str, Any] = dict(values or {}, **kw)
        if set(cols) != set(self._names):
            raise self._key_error(cols)
        arrays = []
        for c in self._names:
            try:
                a = np.asarray(cols[c], dtype=np.float64)
            except (TypeError, ValueError):
                raise ColumnError(f"block {self.name!r}: column {c!r} holds values that are not numbers") \
                    from None
            if a.ndim > 1:
                raise ColumnError(f"block {self.name!r}: column {c!r} must be 1-D, got shape {a.shape}")
            arrays.append(a.reshape(-1))
        lengths = {c: len(a) for c, a in zip(self._names, arrays, strict=True)}
        if len(set(lengths.values())) > 1:
            raise ColumnError(f"block {self.name!r}: columns of different lengths {lengths}")
        k = len(arrays[0])
        if k == 0:
            return
        with self._writer._buf_lock:
            self._check_open()
            self._grow(k)
            n = self._n_pend
            for i, a in enumerate(arrays):
                self._pend[i, n:n + k] = a
            self._n_pend = n + k
            self._n_total += k
            self.last_append_s = real_elapsed_s()
            full = self._n_pend >= MAX_BUFFER_ROWS
        if full:
            self._writer.flush()

    def set_attrs(self, **attrs: Any) -> None:
        """Block attributes (direction, rate, setpoint, ...); dict/list values as JSON. Written at once."""
        self._writer._mutate(sum(len(repr(v)) + 4096 for v in attrs.values()),
                             lambda: schema.write_attrs(self._group.attrs, attrs))

    def finish(self) -> None:
        """The block is complete: the next cycle compresses its last, partial chunk and makes it the file's
        default plot if none has data yet. More rows may still follow (they cost that chunk once more)."""
        with self._writer._buf_lock:
            self.finish_requested = True

    def __repr__(self) -> str:
        return f"BlockWriter({self.name!r}, columns={self._columns}, n_rows={self.n_rows})"

    # ---------------------------------------------------------------- pending side (buffer lock)
    def _check_open(self) -> None:
        self._writer._check_usable()
        if self._frozen:
            raise DataFileError(f"{self._writer.path}: block {self.name!r} was written in format version 1; "
                                f"labctl {schema.FORMAT_VERSION} reads it but does not append to it")

    def _grow(self, k: int) -> None:
        if self._n_pend + k > self._pend.shape[1]:
            cap = max(2 * self._pend.shape[1], self._n_pend + k)
            grown = np.empty((len(self._names), cap))
            grown[:, :self._n_pend] = self._pend[:, :self._n_pend]
            self._pend = grown

    def take_pending(self) -> np.ndarray | None:
        """The rows appended since the last cycle (columns x rows), or None; the buffer is emptied."""
        if self._n_pend == 0:
            return None
        rows = self._pend[:, :self._n_pend].copy()
        if self._single.any():
            rows[self._single] = rows[self._single].astype(np.float32)
        self._n_pend = 0
        if self._pend.shape[1] > 4 * _FIRST_BUFFER_ROWS and rows.shape[1] < self._pend.shape[1] // 8:
            self._pend = np.empty((len(self._names), _FIRST_BUFFER_ROWS))  # give back a big array's buffer
        return rows

    # ----------------------------------------------------------------------- cycle side (I/O lock)
    def prepare(self) -> None:
        """First thing in a cycle after a reopen: cut columns to their common, stored length."""
        if self._trim:
            for ds in self._dsets:
                ds.resize((self.n_compacted,))
            self._trim = False

    @property
    def tail(self) -> np.ndarray:
        """The rows journaled but not compacted (columns x rows; a view)."""
        return self._tail[:, :self.n_tail]

    @property
    def tail_seq(self) -> np.ndarray:
        return self._tail_seq[:self.n_tail]

    def tail_append(self, rows: np.ndarray, seqs: np.ndarray) -> None:
        n, k = self.n_tail, rows.shape[1]
        if n + k > self._tail.shape[1]:
            cap = max(2 * self._tail.shape[1], n + k)
            grown = np.empty((len(self._names), cap))
            grown[:, :n] = self._tail[:, :n]
            grown_seq = np.empty(cap, dtype=np.int64)
            grown_seq[:n] = self._tail_seq[:n]
            self._tail, self._tail_seq = grown, grown_seq
        self._tail[:, n:n + k] = rows
        self._tail_seq[n:n + k] = seqs
        self.n_tail = n + k

    def _tail_drop(self, k: int) -> None:
        """Forget the first ``k`` tail rows (compacted)."""
        rest = self.n_tail - k
        if rest > 0:
            self._tail[:, :rest] = self._tail[:, k:self.n_tail].copy()
            self._tail_seq[:rest] = self._tail_seq[k:self.n_tail].copy()
        self.n_tail = max(0, rest)

    def restore_tail(self, segment: jr.Segment) -> None:
        """After a reopen: the rows the journal holds right after the compacted ones."""
        values, seqs = segment.run_from(self.n_compacted)
        self.n_tail = 0
        self.tail_append(values[:len(self._names)], seqs)
        self._n_total = self.n_compacted + self.n_tail

    def direct(self, rows: np.ndarray) -> np.ndarray:
        """Whole chunks of a large append go straight to the compressed datasets (with the tail before
        them); returns the rows that still need the journal."""
        c = self.chunk_rows
        if rows.shape[1] < c:
            return rows
        n_tail = self.n_tail
        joined = np.concatenate([self.tail, rows], axis=1) if n_tail else rows
        # whole chunks only: up to the last chunk boundary inside the joined rows (past the whole tail,
        # since the rows are at least a chunk)
        k = (self.n_compacted + joined.shape[1]) // c * c - self.n_compacted
        self._compact(joined[:, :k])
        self.n_tail = 0
        return rows[:, k - n_tail:]

    def first_row_to_journal(self) -> int:
        return self.n_compacted + self.n_tail

    def rejournal_records(self, first_seq: int) -> np.ndarray:
        """The whole tail journaled again at ``first_seq`` (its old records may then be overwritten)."""
        records = jr.encode(self.index, self.n_compacted, self.tail, first_seq)
        per_row = jr.records_per_row(len(self._names))
        self._tail_seq[:self.n_tail] = first_seq + per_row * np.arange(self.n_tail, dtype=np.int64)
        return records

    def records_for(self, n_rows: int) -> int:
        return n_rows * jr.records_per_row(len(self._names))

    def oldest_seq(self) -> int | None:
        return int(self._tail_seq[0]) if self.n_tail else None

    def whole_chunk_rows(self) -> int:
        """Tail rows that complete whole chunks (what a compaction may take without a partial chunk)."""
        c = self.chunk_rows
        return max(0, (self.n_compacted + self.n_tail) // c * c - self.n_compacted)

    def may_write_partial(self) -> bool:
        """The doubling rule for idle blocks: a partial chunk is rewritten only when its rows doubled."""
        c = self.chunk_rows
        end = self.n_compacted + self.n_tail
        if end // c > self.n_compacted // c:
            return True  # the old partial chunk is completed; the new one was never written
        return end - end // c * c >= 2 * self._partial_rows

    def compact(self, k: int) -> None:
        """Move the first ``k`` tail rows to the compressed datasets and the pyramid."""
        if k <= 0:
            return
        self._compact(self.tail[:, :k])
        self._tail_drop(k)

    def _compact(self, rows: np.ndarray) -> None:
        n0, k = self.n_compacted, rows.shape[1]
        for ds, values in zip(self._dsets, rows, strict=True):
            ds.resize((n0 + k,))
            ds[n0:n0 + k] = values
        if self.pyramid is not None:
            self.pyramid.add(rows)
        self.n_compacted = n0 + k
        c = self.chunk_rows
        self._partial_rows = self.n_compacted % c

    def alloc_bytes(self, new_rows: int) -> int:
        """Generous estimate of the file space a cycle with ``new_rows`` allocates for this block (for the
        reserve): journal records, and compressed chunks and pyramid entries if a chunk may complete."""
        n_cols = len(self._names)
        rows = self.n_tail + new_rows
        journal = (rows if new_rows < self.chunk_rows else 0) * n_cols * 16 + 1024
        if rows < self.chunk_rows and not (self.n_tail and self.finish_requested):
            return journal + 8 * n_cols * self.chunk_rows  # an idle block may compact its partial chunk
        chunks = rows // self.chunk_rows + 2
        return journal + chunks * (self.chunk_rows * 8 + 4096) * n_cols + (64 << 10) + rows * n_cols * 2

    # ------------------------------------------------------------------------------- messages
    def _key_error(self, row: Mapping[str, Any]) -> ColumnError:
        missing = [c for c in self._names if c not in row]
        unknown = [c for c in row if c not in self._columns]
        parts = ([f"missing column(s) {missing}"] if missing else []) + \
            ([f"unknown column(s) {unknown}"] if unknown else [])
        return ColumnError(f"block {self.name!r}: {'; '.join(parts)}; its columns are {self._names}")

    def _value_error(self, row: Mapping[str, Any]) -> ColumnError:
        for c in self._names:
            try:
                float(row[c])
            except (TypeError, ValueError):
                return ColumnError(f"block {self.name!r}: column {c!r} = {row[c]!r} is not a number")
        return ColumnError(f"block {self.name!r}: row {dict(row)!r} cannot be stored")
