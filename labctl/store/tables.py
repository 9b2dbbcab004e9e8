"""``/events`` and ``/checkpoints``: append-only tables, one extensible dataset per field.

Rows are queued by any thread and written by the writer's next flush cycle, together with the rows of every
block: an event or a checkpoint costs no cycle of its own.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from labctl.store import schema


class Table:
    """One table of the run file. ``queue`` is thread-safe under the writer's buffer lock; the rest runs
    inside a cycle."""

    def __init__(self, group: h5py.Group, fields: tuple[str, ...]) -> None:
        # A version-1 file has fewer event fields: write the ones it has.
        self.fields = tuple(f for f in fields if f in group)
        self._dsets = [group[f] for f in self.fields]
        n = min(ds.shape[0] for ds in self._dsets)
        for ds in self._dsets:
            n = schema.readable_rows(ds, n)
        self.n_disk = n
        # After a kill the fields can differ in length, or the newest string rows can be unreadable: cut
        # every field to the rows that are whole, in the first cycle, so plain h5py reads the table again.
        self._trim = any(ds.shape[0] != n for ds in self._dsets)
        self._queued: list[dict[str, Any]] = []

    @staticmethod
    def create(group: h5py.Group, fields: tuple[str, ...]) -> None:
        for f in fields:
            is_time = f.endswith("_s")
            ds = group.create_dataset(f, shape=(0,), maxshape=(None,), chunks=(schema.TABLE_CHUNK_ROWS,),
                                      dtype="f8" if is_time else schema.STR_DTYPE)
            if is_time:
                ds.attrs[schema.UNITS_ATTR] = "s"

    def queue(self, row: dict[str, Any]) -> None:
        self._queued.append(row)

    def take(self) -> list[dict[str, Any]]:
        rows, self._queued = self._queued, []
        return rows

    def pending(self) -> bool:
        return bool(self._queued) or self._trim

    @staticmethod
    def alloc_bytes(rows: list[dict[str, Any]]) -> int:
        return sum(len(str(v)) + 256 for row in rows for v in row.values()) + (64 << 10 if rows else 0)

    def write(self, rows: list[dict[str, Any]]) -> None:
        if self._trim:
            for ds in self._dsets:
                ds.resize((self.n_disk,))
            self._trim = False
        if not rows:
            return
        n0, k = self.n_disk, len(rows)
        for f, ds in zip(self.fields, self._dsets, strict=True):
            values = [row.get(f, "") for row in rows]
            ds.resize((n0 + k,))
            ds[n0:n0 + k] = np.array(values, dtype=ds.dtype if ds.dtype.kind == "f" else object)
        self.n_disk = n0 + k
