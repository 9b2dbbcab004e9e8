"""Reading parts of a block without loading it: row ranges, time windows, min/max/mean per time bin.

A :class:`BlockSource` is one block as a reader sees it: compressed (or, in version 1, plain) column
datasets holding the compacted rows, the rows after them from the journal (in memory), and the pyramid.
Decimation reads pyramid entries where the window is long and rows where it is short, so its cost depends
on the number of bins, not on the block's length.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import h5py
import numpy as np

from labctl.errors import DataFileError
from labctl.store import pyramid

#: A level is used when the window holds at most this many of its entries per bin (else a coarser one).
MAX_ENTRIES_PER_BIN = 16
#: Rows read at once where a whole range is walked (export, raw decimation): 8 MiB per column.
READ_ROWS = 1 << 20


@dataclass
class Decimated:
    """A block reduced to bins of time: ``edges_s`` (bins + 1), rows per bin, and per column the minimum,
    maximum and mean of the rows in each bin (NaN for an empty bin). Spikes survive as min or max."""

    edges_s: np.ndarray
    count: np.ndarray
    min: dict[str, np.ndarray]
    max: dict[str, np.ndarray]
    mean: dict[str, np.ndarray]

    @property
    def centers_s(self) -> np.ndarray:
        return 0.5 * (self.edges_s[1:] + self.edges_s[:-1])


class BlockSource:
    """Rows ``0 .. n_compacted`` in ``dsets`` and ``n_compacted ..`` in ``tail`` (columns x rows)."""

    def __init__(self, columns: Sequence[str], dsets: Sequence[h5py.Dataset], n_compacted: int,
                 tail: np.ndarray, levels: Sequence[h5py.Dataset]) -> None:
        self.columns = list(columns)
        self.dsets = list(dsets)
        self.n_compacted = n_compacted
        self.tail = tail
        self.n_rows = n_compacted + tail.shape[1]
        # complete pyramid entries over compacted rows only, and only those whose chunks are on disk
        self.levels: list[tuple[int, h5py.Dataset, int]] = []
        for k, ds in enumerate(levels, start=1):
            f = pyramid.factor(k)
            m = min(pyramid.stored_entries(ds), n_compacted // f)
            self.levels.append((f, ds, m))

    def index(self, column: str) -> int:
        try:
            return self.columns.index(column)
        except ValueError:
            raise KeyError(f"no column {column!r}; columns: {self.columns}") from None

    def rows(self, start: int, stop: int, cols: Sequence[int] | None = None) -> np.ndarray:
        """Rows ``start:stop`` (columns x rows) of the given column indices (all by default)."""
        cols = list(range(len(self.columns))) if cols is None else list(cols)
        start, stop = max(0, start), min(self.n_rows, stop)
        if stop <= start:
            return np.empty((len(cols), 0))
        out = np.empty((len(cols), stop - start))
        split = min(max(start, self.n_compacted), stop)
        for i, c in enumerate(cols):
            if split > start:
                out[i, :split - start] = self.dsets[c][start:split]
            if stop > split:
                out[i, split - start:] = self.tail[c, split - self.n_compacted:stop - self.n_compacted]
        return out

    def iter_rows(self, start: int = 0, stop: int | None = None, step: int = READ_ROWS,
                  cols: Sequence[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) in slices of at most ``step`` rows: bounded memory for any block length."""
        stop = self.n_rows if stop is None else min(stop, self.n_rows)
        for a in range(max(0, start), stop, step):
            yield a, self.rows(a, min(a + step, stop), cols)

    # -------------------------------------------------------------------------------- searching
    def search(self, col: int, value: float) -> int:
        """First row whose ``col`` is >= ``value`` (the column must not decrease: a time)."""
        n_c = self.n_compacted
        if n_c and self.dsets[col][n_c - 1] >= value:
            ds = self.dsets[col]
            chunk = ds.chunks[0] if ds.chunks else READ_ROWS
            lo, hi = 0, (n_c - 1) // chunk  # first chunk whose last row is >= value, by bisection
            while lo < hi:
                mid = (lo + hi) // 2
                if ds[min(n_c, (mid + 1) * chunk) - 1] >= value:
                    hi = mid
                else:
                    lo = mid + 1
            a = lo * chunk
            block = ds[a:min(n_c, a + chunk)]
            return a + int(np.searchsorted(block, value, side="left"))
        return n_c + int(np.searchsorted(self.tail[col], value, side="left"))

    def window_rows(self, col: int, start_s: float | None, stop_s: float | None) -> tuple[int, int]:
        """Rows with ``start_s <= t < stop_s`` on the time column ``col``."""
        a = 0 if start_s is None else self.search(col, start_s)
        b = self.n_rows if stop_s is None else self.search(col, stop_s)
        return a, max(a, b)

    # ------------------------------------------------------------------------------- decimation
    def decimate(self, time_col: int, cols: Sequence[int], bins: int, start_s: float | None,
                 stop_s: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(edges, count, min, max, mean) with min/max/mean of shape (len(cols), bins)."""
        if not isinstance(bins, int) or bins < 1:
            raise DataFileError(f"bins must be a whole number >= 1, got {bins!r}")
        a, b = self.window_rows(time_col, start_s, stop_s)
        if start_s is None or stop_s is None:
            ends = self.rows(a, a + 1, [time_col]), self.rows(b - 1, b, [time_col])
            lo = float(ends[0][0, 0]) if ends[0].size else 0.0
            hi = float(ends[1][0, 0]) if ends[1].size else 1.0
            start_s = lo if start_s is None else start_s
            stop_s = math.nextafter(hi, math.inf) if stop_s is None else stop_s
        edges = np.linspace(start_s, stop_s, bins + 1)
        acc = _Bins(edges, len(cols))
        budget = MAX_ENTRIES_PER_BIN * bins
        level = 0  # rows themselves for a short window, else the finest level that fits the budget
        if b - a > budget:
            level = len(self.levels)
            for k, (f, _, _) in enumerate(self.levels, start=1):
                if (b - a) / f <= budget:
                    level = k
                    break
        self._cover(level, a, b, time_col, list(cols), acc)
        return edges, acc.count, acc.min, acc.max, acc.mean()

    def _cover(self, level: int, a: int, b: int, time_col: int, cols: list[int], acc: _Bins) -> None:
        if b <= a:
            return
        if level == 0:
            for first, rows in self.iter_rows(a, b, cols=[time_col, *cols]):
                del first
                t = rows[0]
                acc.add(t, t, rows[1:], rows[1:], rows[1:], np.ones(len(t)))
            return
        f, ds, m = self.levels[level - 1]
        e0, e1 = -(-a // f), min(b // f, m)
        if e1 <= e0:
            self._cover(level - 1, a, b, time_col, cols, acc)
            return
        self._cover(level - 1, a, e0 * f, time_col, cols, acc)
        entries = ds[e0:e1]  # (n, 3, columns)
        acc.add(entries[:, 0, time_col], entries[:, 1, time_col], entries[:, 0, cols].T, entries[:, 1, cols].T,
                entries[:, 2, cols].T, np.full(len(entries), float(f)))
        self._cover(level - 1, e1 * f, b, time_col, cols, acc)


class _Bins:
    """Accumulates pieces (a row, or a pyramid entry) into time bins by the middle of their time span."""

    def __init__(self, edges: np.ndarray, n_cols: int) -> None:
        self.edges = edges
        bins = len(edges) - 1
        self.count = np.zeros(bins)
        self.min = np.full((n_cols, bins), np.nan)
        self.max = np.full((n_cols, bins), np.nan)
        self._sum = np.zeros((n_cols, bins))
        self._weight = np.zeros((n_cols, bins))

    def add(self, t_lo: np.ndarray, t_hi: np.ndarray, vmin: np.ndarray, vmax: np.ndarray, vmean: np.ndarray,
            count: np.ndarray) -> None:
        mid = 0.5 * (t_lo + t_hi)
        inside = (mid >= self.edges[0]) & (mid < self.edges[-1])
        idx = np.searchsorted(self.edges, mid[inside], side="right") - 1
        if not len(idx):
            return
        count = count[inside]
        vmin, vmax, vmean = vmin[:, inside], vmax[:, inside], vmean[:, inside]
        if np.any(idx[1:] < idx[:-1]):  # a time column that goes back: one piece at a time
            order = np.argsort(idx, kind="stable")
            idx, count, vmin, vmax, vmean = idx[order], count[order], vmin[:, order], vmax[:, order], \
                vmean[:, order]
        # pieces in time order: reduce each run of pieces that falls in one bin, then merge into the bins
        starts = np.flatnonzero(np.append(True, idx[1:] != idx[:-1]))
        bins = idx[starts]
        self.count[bins] += np.add.reduceat(count, starts)
        ok = ~np.isnan(vmean)
        weights = np.where(ok, count, 0.0)
        self.min[:, bins] = np.fmin(self.min[:, bins], np.fmin.reduceat(vmin, starts, axis=1))
        self.max[:, bins] = np.fmax(self.max[:, bins], np.fmax.reduceat(vmax, starts, axis=1))
        self._sum[:, bins] += np.add.reduceat(np.where(ok, vmean, 0.0) * weights, starts, axis=1)
        self._weight[:, bins] += np.add.reduceat(weights, starts, axis=1)

    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self._weight > 0, self._sum / np.where(self._weight > 0, self._weight, 1), np.nan)
