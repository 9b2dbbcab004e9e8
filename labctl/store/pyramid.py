"""The min/max/mean pyramid of a block: ``/blocks/<block>/summary/L1, L2, ...``, written as rows are compacted.

Level k holds one entry per ``FIRST_FACTOR * RATIO**(k-1)`` consecutive rows (128, 512, 2048, ...):
float64 ``(entries, 3, columns)`` with ``[:, 0]`` the minimum, ``[:, 1]`` the maximum and ``[:, 2]`` the
mean of every column over those rows (NaN rows ignored). Only complete entries are stored, so the levels
are append-only (uncompressed: an append never rewrites a chunk, see the journal's crash rules); a reader
computes the rows after the last complete entry from the level below or the rows themselves.

A reader draws 1000 h x 64 channels at screen resolution from a level with a few thousand entries per
channel instead of 3.6 M rows, and a spike survives as the maximum of its entry.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import h5py
import numpy as np

FIRST_FACTOR = 128
RATIO = 4
STATS = ("min", "max", "mean")
CHUNK_ENTRIES = 256


def level_name(level: int) -> str:
    return f"L{level}"


def factor(level: int) -> int:
    """Rows per entry of ``level`` (1-based)."""
    return FIRST_FACTOR * RATIO ** (level - 1)


def reduce_rows(values: np.ndarray, per_entry: int) -> np.ndarray:
    """Complete entries ``(m, 3, columns)`` of ``values`` (columns x rows), ``per_entry`` rows each."""
    n_cols, n = values.shape
    m = n // per_entry
    groups = values[:, :m * per_entry].reshape(n_cols, m, per_entry)
    out = np.empty((m, 3, n_cols))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN entries are NaN, as they should be
        out[:, 0] = np.nanmin(groups, axis=2).T
        out[:, 1] = np.nanmax(groups, axis=2).T
        out[:, 2] = np.nanmean(groups, axis=2).T
    return out


def reduce_entries(entries: np.ndarray, ratio: int = RATIO) -> np.ndarray:
    """Complete entries of the next level from ``entries`` (m, 3, columns) of this one."""
    m = len(entries) // ratio
    groups = entries[:m * ratio].reshape(m, ratio, 3, entries.shape[2])
    out = np.empty((m, 3, entries.shape[2]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out[:, 0] = np.nanmin(groups[:, :, 0], axis=1)
        out[:, 1] = np.nanmax(groups[:, :, 1], axis=1)
        out[:, 2] = np.nanmean(groups[:, :, 2], axis=1)
    return out


def stored_entries(ds: h5py.Dataset) -> int:
    """Entries of a level whose chunks are on disk (a kill can leave a length whose chunk never landed)."""
    n = ds.shape[0]
    chunk = ds.chunks[0] if ds.chunks else n
    k = (n - 1) // chunk if n else -1
    try:
        while k >= 0 and ds.id.get_chunk_info_by_coord((k * chunk, 0, 0)).byte_offset is None:
            k -= 1
    except (RuntimeError, OSError):  # an index a kill tore (see schema.stored_rows): trust the length
        return n
    return min(n, (k + 1) * chunk)


class PyramidWriter:
    """Appends the entries that compacted rows complete, at every level (the writer's lock held)."""

    def __init__(self, parent: h5py.Group, name: str, columns: list[str],
                 link: Callable[[h5py.Group, str, h5py.HLObject], None]) -> None:
        self._parent = parent
        self._name = name
        self._link = link  # links a new object in the next cycle, once it is whole on disk
        self._group: h5py.Group | None = parent.get(name)
        self._columns = columns
        self._n_cols = n_columns = len(columns)
        self._levels: list[h5py.Dataset] = []
        self._rows_carry = np.empty((n_columns, 0))  # compacted rows after the last complete L1 entry
        self._carry: list[np.ndarray] = []  # per level: entries not yet in a complete entry of the next

    @classmethod
    def attach(cls, parent: h5py.Group, name: str, names: list[str], columns: list[h5py.Dataset],
               n_rows: int, link: Callable[[h5py.Group, str, h5py.HLObject], None]) -> PyramidWriter:
        """Continue a block's pyramid after a reopen: drop entries beyond the rows, rebuild the carries."""
        pyr = cls(parent, name, names, link)
        group = parent.get(name)
        counts: list[int] = []
        if isinstance(group, h5py.Group):
            level = 1
            while level_name(level) in group:
                ds = group[level_name(level)]
                limit = n_rows // factor(level) if level == 1 else counts[-1] // RATIO
                m = min(stored_entries(ds), limit)
                if m < ds.shape[0]:
                    ds.resize((m, 3, len(columns)))
                pyr._levels.append(ds)
                counts.append(m)
                level += 1
        for k, ds in enumerate(pyr._levels):
            used = counts[k + 1] * RATIO if k + 1 < len(counts) else counts[k]
            pyr._carry.append(np.asarray(ds[used:counts[k]]) if used < counts[k] else
                              np.empty((0, 3, len(columns))))
        start = counts[0] * FIRST_FACTOR if counts else 0
        if start < n_rows:
            pyr.add(np.stack([np.asarray(c[start:n_rows], dtype=np.float64) for c in columns]))
        return pyr

    def add(self, values: np.ndarray) -> None:
        """``values`` (columns x rows): rows compacted after those already added."""
        rows = np.concatenate([self._rows_carry, values], axis=1) if self._rows_carry.shape[1] else values
        entries = reduce_rows(rows, FIRST_FACTOR)
        used = len(entries) * FIRST_FACTOR
        self._rows_carry = np.array(rows[:, used:])
        level = 1
        while len(entries):
            ds = self._level(level)
            m = ds.shape[0]
            ds.resize((m + len(entries), 3, self._n_cols))
            ds[m:] = entries
            while len(self._carry) < level:
                self._carry.append(np.empty((0, 3, self._n_cols)))
            pending = np.concatenate([self._carry[level - 1], entries])
            entries = reduce_entries(pending)
            self._carry[level - 1] = pending[len(entries) * RATIO:]
            level += 1

    def _level(self, level: int) -> h5py.Dataset:
        while len(self._levels) < level:
            if self._group is None:
                # created unlinked; the writer links it in its next cycle, when it is whole on disk (a kill
                # in the middle of a flush could otherwise leave a link to an object header never written)
                self._group = h5py.Group(h5py.h5g.create(self._parent.file.id, None))
                self._group.attrs["columns"] = np.array(self._columns, dtype=h5py.string_dtype("utf-8"))
                self._link(self._parent, self._name, self._group)
            group = self._group
            k = len(self._levels) + 1
            ds = group.create_dataset(None, shape=(0, 3, self._n_cols), maxshape=(None, 3, self._n_cols),
                                      chunks=(CHUNK_ENTRIES, 3, self._n_cols), dtype="f8", fillvalue=np.nan)
            self._link(group, level_name(k), ds)
            ds.attrs["rows_per_entry"] = factor(k)
            ds.attrs["stats"] = np.array(STATS, dtype=h5py.string_dtype("utf-8"))
            self._levels.append(ds)
        return self._levels[level - 1]

    def alloc_bytes(self, n_rows: int) -> int:
        """Generous estimate of the file space adding ``n_rows`` allocates (for the writer's reserve)."""
        entries = n_rows // FIRST_FACTOR + 2
        return 2 * (entries * 24 * self._n_cols + 8 * CHUNK_ENTRIES * 24 * self._n_cols) + (64 << 10)
