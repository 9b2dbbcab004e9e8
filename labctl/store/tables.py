"""``/events`` and ``/checkpoints``: append-only tables, one extensible dataset per field, and their copy.

Rows are queued by any thread and written by the writer's next flush cycle, together with the rows of every
block: an event or a checkpoint costs no cycle of its own.

Their strings are variable-length, which HDF5 keeps in global heap collections: a collection takes the
strings of several cycles and is rewritten in place when one is added, so a kill during that rewrite can
leave strings of *earlier* cycles unreadable (the soak met it once in 1000 kills). Every row is therefore
also written, in the same cycle, as one JSON line to ``/journal/text``: a byte stream that is only ever
appended (raw chunk writes, never rewritten). Readers take rows they cannot read from it, and
``open_existing`` writes them into the table again.
"""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

from labctl.store import schema


class Table:
    """One table of the run file. ``queue`` is thread-safe under the writer's buffer lock; the rest runs
    inside a cycle."""

    def __init__(self, group: h5py.Group, fields: tuple[str, ...],
                 copies: dict[int, dict[str, Any]] | None = None) -> None:
        # A version-1 file has fewer event fields: write the ones it has.
        self.name = group.name.strip("/")
        self.fields = tuple(f for f in fields if f in group)
        self._dsets = [group[f] for f in self.fields]
        n = min(ds.shape[0] for ds in self._dsets)
        for ds in self._dsets:
            n = schema.readable_rows(ds, n)
        self.n_disk = n
        # After a kill the fields can differ in length, or string rows can be unreadable: cut every field to
        # the rows that are whole, in the first cycle, so plain h5py reads the table again; rows after them
        # that the text copy holds are written again.
        self._trim = any(ds.shape[0] != n for ds in self._dsets)
        self._queued: list[dict[str, Any]] = []
        copies = copies or {}
        while n in copies:
            self._queued.append(copies[n])
            n += 1
        self._trim = self._trim or bool(self._queued)

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

    def next_row(self) -> int:
        return self.n_disk

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


#: The byte stream holding a JSON-line copy of every table row (see the module docstring).
TEXT = "text"
TEXT_CHUNK_BYTES = 1 << 16


class TextLog:
    """``/journal/text``: append-only UTF-8 JSON lines ``{"table", "row", "values"}``."""

    def __init__(self, ds: h5py.Dataset) -> None:
        self._ds = ds
        n = ds.shape[0]
        # a kill may have cut the last line short: start the next one on a line of its own
        self._pending_newline = n > 0 and int(ds[n - 1]) != ord("\n")

    @staticmethod
    def create(parent: h5py.Group) -> h5py.Dataset:
        return parent.create_dataset(TEXT, shape=(0,), maxshape=(None,), chunks=(TEXT_CHUNK_BYTES,), dtype="u1")

    def append(self, table: str, first_row: int, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        lines = "".join(json.dumps({"table": table, "row": first_row + i, "values": row}, ensure_ascii=False,
                                   separators=(",", ":")) + "\n" for i, row in enumerate(rows))
        data = np.frombuffer((("\n" if self._pending_newline else "") + lines).encode("utf-8"), dtype=np.uint8)
        self._pending_newline = False
        n = self._ds.shape[0]
        self._ds.resize((n + len(data),))
        self._ds[n:] = data


def read_copies(parent: h5py.Group | None) -> dict[str, dict[int, dict[str, Any]]]:
    """Table -> row -> values from ``/journal/text`` (lines a kill cut short are left out)."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    ds = parent.get(TEXT) if parent is not None else None
    if not isinstance(ds, h5py.Dataset) or ds.shape[0] == 0:
        return out
    for line in ds[:].tobytes().split(b"\n"):
        try:
            entry = json.loads(line.strip(b"\0").decode("utf-8"))
            out.setdefault(str(entry["table"]), {})[int(entry["row"])] = dict(entry["values"])
        except (ValueError, KeyError, TypeError):
            continue
    return out
