"""Row storage of a run file: :class:`BlockWriter` (one block's float64 columns) and :class:`Table`
(``/events``, ``/checkpoints``).

Both are owned and driven by :class:`labctl.store.writer.RunWriter`, which keeps the crash-safety rules
(see that module): rows are only buffered here, and HDF5 is written only when the writer calls
``write_pending``/``write_arrays`` (or creates a block) inside one of its cycles, under its lock.
``pending_bytes``/``direct_bytes`` tell the cycle how much file space those writes may allocate, so that
its end-of-file reserve covers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from labctl.errors import DataFileError
from labctl.store import schema

if TYPE_CHECKING:
    from labctl.store.writer import RunWriter

#: Rows a block buffers before a cycle is forced (64 Ki rows = 512 KiB per column). Large batches amortise
#: the per-write cost of HDF5; the background flusher empties the buffers every flush_interval_s anyway.
MAX_BUFFER_ROWS = 1 << 16
_FIRST_BUFFER_ROWS = 256


class ColumnError(DataFileError, ValueError):
    """Rows or arrays that do not match a block's columns (missing, unknown, not numbers, lengths)."""


class BlockWriter:
    """One block being written: buffers rows in a (columns x rows) float64 array until the next cycle."""

    def __init__(self, writer: RunWriter, group: h5py.Group, columns: dict[str, str], n_disk: int) -> None:
        self._writer = writer
        self._lock = writer._lock
        self._group = group
        self.name: str = group.name.rsplit("/", 1)[-1]
        self._columns = columns
        self._names = list(columns)
        self._dsets = [group[c] for c in self._names]
        self._n_disk = n_disk
        self._buf = np.empty((len(self._names), _FIRST_BUFFER_ROWS))
        self._n_buf = 0
        self._trim = False

    @classmethod
    def create(cls, writer: RunWriter, parent: h5py.Group, name: str, columns: dict[str, str],
               attrs: Mapping[str, Any]) -> BlockWriter:
        group = parent.create_group(name)
        group.attrs[schema.COLUMNS_ATTR] = np.array(list(columns), dtype=schema.STR_DTYPE)
        for col, unit in columns.items():
            # NaN fill: a row that never reached the disk reads as NaN, never as a plausible 0.0.
            ds = group.create_dataset(col, shape=(0,), maxshape=(None,), chunks=(schema.CHUNK_ROWS,),
                                      dtype="f8", fillvalue=np.nan)
            ds.attrs[schema.UNITS_ATTR] = unit
        schema.write_attrs(group.attrs, attrs)
        return cls(writer, group, columns, 0)

    @classmethod
    def attach(cls, writer: RunWriter, group: h5py.Group) -> BlockWriter:
        """An existing block; after a kill its columns may differ by one cycle: the shortest length wins."""
        columns = {c: str(schema.read_attrs(group[c].attrs).get(schema.UNITS_ATTR, ""))
                   for c in schema.column_order(group)}
        n = min((schema.stored_rows(group[c]) for c in columns), default=0)
        block = cls(writer, group, columns, n)
        # Rows of an interrupted flush (a column longer than the others, or rows whose chunk never reached
        # the disk and read as NaN) are cut off in the first cycle; new rows continue after the whole ones.
        block._trim = any(group[c].shape[0] != n for c in columns)
        return block

    @property
    def columns(self) -> dict[str, str]:
        """Column name -> unit, in creation order."""
        return dict(self._columns)

    @property
    def n_rows(self) -> int:
        """Rows appended so far, including those still buffered."""
        return self._n_disk + self._n_buf

    def append_row(self, values: Mapping[str, float] | None = None, /, **kw: float) -> None:
        """One row; every column is required (``values`` mapping and/or keywords)."""
        row: Mapping[str, Any] = kw if values is None else ({**values, **kw} if kw else values)
        try:
            vals = [row[c] for c in self._names]
        except KeyError:
            raise self._key_error(row) from None
        if len(row) != len(self._names):
            raise self._key_error(row)
        with self._lock:
            if self._writer._closed or self._writer._failure is not None:
                self._writer._check_usable()
            n = self._n_buf
            if n == self._buf.shape[1]:
                self._make_room(1)
                n = self._n_buf
            try:
                self._buf[:, n] = vals
            except (TypeError, ValueError):
                raise self._value_error(row) from None
            self._n_buf = n + 1

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
        with self._lock:
            self._writer._check_usable()
            if self._n_buf + k > MAX_BUFFER_ROWS and k > MAX_BUFFER_ROWS // 4:
                # A big array goes straight to the file (after what is buffered): no copy, no huge buffer.
                self._writer._run_cycle(0, None, direct=(self, arrays))
                return
            self._make_room(k)
            n = self._n_buf
            for i, a in enumerate(arrays):
                self._buf[i, n:n + k] = a
            self._n_buf = n + k

    def set_attrs(self, **attrs: Any) -> None:
        """Block attributes (direction, rate, setpoint, ...); dict/list values as JSON. Written at once."""
        self._writer._mutate(attrs_bytes(attrs), lambda: schema.write_attrs(self._group.attrs, attrs))

    def __repr__(self) -> str:
        return f"BlockWriter({self.name!r}, columns={self._columns}, n_rows={self.n_rows})"

    # ------------------------------------------------------------------ used by RunWriter (lock held)
    def _make_room(self, k: int) -> None:
        if self._n_buf + k > MAX_BUFFER_ROWS:
            self._writer._run_cycle(0, None)  # empties every buffer, this one included
        if self._n_buf + k > self._buf.shape[1]:
            cap = max(min(2 * self._buf.shape[1], MAX_BUFFER_ROWS), self._n_buf + k)
            grown = np.empty((len(self._names), cap))
            grown[:, :self._n_buf] = self._buf[:, :self._n_buf]
            self._buf = grown

    def _alloc_bytes(self, k: int) -> int:
        if k == 0:
            return 0
        chunk = schema.CHUNK_ROWS
        new_chunks = -(-(self._n_disk + k) // chunk) - -(-self._n_disk // chunk)  # ceil - ceil
        return len(self._names) * (new_chunks * chunk * 8 + 4096)

    def pending_bytes(self) -> int:
        return self._alloc_bytes(self._n_buf) + int(self._trim)

    def direct_bytes(self, arrays: list[np.ndarray]) -> int:
        return self._alloc_bytes(self._n_buf + len(arrays[0])) - self.pending_bytes()

    def write_pending(self) -> None:
        if self._trim:
            for ds in self._dsets:
                ds.resize((self._n_disk,))
            self._trim = False
        if self._n_buf:
            k = self._n_buf
            self.write_arrays([self._buf[i, :k] for i in range(len(self._names))])
            self._n_buf = 0

    def write_arrays(self, arrays: list[np.ndarray]) -> None:
        n0, k = self._n_disk, len(arrays[0])
        for ds, a in zip(self._dsets, arrays, strict=True):
            ds.resize((n0 + k,))
            ds[n0:n0 + k] = a
        self._n_disk = n0 + k

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


class Table:
    """An append-only table stored as one extensible dataset per field (``/events``, ``/checkpoints``)."""

    def __init__(self, group: h5py.Group, fields: tuple[str, ...]) -> None:
        self._dsets = [group[f] for f in fields]
        n = min(ds.shape[0] for ds in self._dsets)
        for ds in self._dsets:
            n = schema.readable_rows(ds, n)
        self._n_disk = n
        # After a kill the fields can differ in length, or the newest string rows can be unreadable: cut
        # every field to the rows that are whole, in the first cycle, so plain h5py reads the table again.
        self._trim = any(ds.shape[0] != n for ds in self._dsets)
        self._rows: list[tuple[Any, ...]] = []

    @staticmethod
    def create(group: h5py.Group, fields: tuple[str, ...]) -> None:
        for f in fields:
            is_time = f.endswith("_s")
            ds = group.create_dataset(f, shape=(0,), maxshape=(None,), chunks=(schema.TABLE_CHUNK_ROWS,),
                                      dtype="f8" if is_time else schema.STR_DTYPE)
            if is_time:
                ds.attrs[schema.UNITS_ATTR] = "s"

    def append(self, row: tuple[Any, ...]) -> None:
        self._rows.append(row)

    def pending_bytes(self) -> int:
        return sum(len(str(v)) + 256 for row in self._rows for v in row) + (64 << 10 if self._rows else 0) \
            + int(self._trim)

    def write_pending(self) -> None:
        if self._trim:
            for ds in self._dsets:
                ds.resize((self._n_disk,))
            self._trim = False
        if not self._rows:
            return
        n0, k = self._n_disk, len(self._rows)
        for j, ds in enumerate(self._dsets):
            values = [row[j] for row in self._rows]
            ds.resize((n0 + k,))
            ds[n0:n0 + k] = np.array(values, dtype=ds.dtype if ds.dtype.kind == "f" else object)
        self._n_disk = n0 + k
        self._rows.clear()


def attrs_bytes(attrs: Mapping[str, Any]) -> int:
    """Generous estimate of the file space writing ``attrs`` allocates (for the writer's reserve)."""
    return sum(len(repr(v)) + 4096 for v in attrs.values())
