"""One channel's series as a live plot holds it: bounded memory whatever the run's length.

A 1000 h aging run at one point per 10 s per channel is 360,000 points per channel; a plot has ~2,000 pixels
across. Two structures keep what the plot needs and no more:

- an **overview**: at most ``overview_bins`` time bins of min, max, sum and count over the whole run. Bins
  have one width; when the run outgrows them, neighbouring pairs merge and the width doubles (so the memory
  stays fixed and every bin still holds the true extremes of its points: a spike is never averaged away);
- a **tail**: the newest ``tail_points`` points themselves, so zooming into the last hours shows the raw
  points.

:meth:`LiveSeries.view` answers what fits a window of ``width_px`` pixels: the raw points where they are few
enough, else a min/max envelope per pixel; ``None`` when neither holds enough detail (an old hour zoomed into
long after it left the tail): the caller then asks the run file, whose own multi-resolution summary answers
in milliseconds (:meth:`labctl.store.RunReader.decimate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Raw points per pixel above which a window is drawn as an envelope rather than as points.
RAW_POINTS_PER_PIXEL = 2.0
#: Overview bins per pixel below which the overview is too coarse for a window (ask the file instead).
MIN_BINS_PER_PIXEL = 0.5


@dataclass(frozen=True)
class SeriesView:
    """What to draw: ``low == high`` are the points themselves when ``raw``; otherwise the min and max of
    the points in each bin centred at ``time_s``."""

    time_s: np.ndarray
    low: np.ndarray
    high: np.ndarray
    raw: bool

    @property
    def size(self) -> int:
        return int(self.time_s.size)

    def polyline(self) -> tuple[np.ndarray, np.ndarray]:
        """x, y of one line that draws the view: the points, or a vertical stroke from min to max per bin
        (the min/max-per-pixel drawing that keeps every extreme visible)."""
        if self.raw:
            return self.time_s, self.low
        x = np.repeat(self.time_s, 2)
        y = np.empty(2 * self.size)
        y[0::2], y[1::2] = self.low, self.high
        return x, y


def envelope(time_s: np.ndarray, values: np.ndarray, start_s: float, stop_s: float, bins: int) -> SeriesView:
    """Min/max of ``values`` in ``bins`` equal time bins over [start_s, stop_s); empty bins left out.
    ``time_s`` must be in increasing order (a channel's points are): each bin is then one run of points, and
    ``reduceat`` takes its extremes in one pass (``ufunc.at`` would be ~20× slower)."""
    index = np.floor((time_s - start_s) / (stop_s - start_s) * bins).astype(np.int64)
    keep = (index >= 0) & (index < bins) & np.isfinite(values)
    index, v = index[keep], values[keep]
    if index.size == 0:
        return SeriesView(np.empty(0), np.empty(0), np.empty(0), raw=False)
    starts, used = _runs(index)
    centres = start_s + (used + 0.5) * (stop_s - start_s) / bins
    return SeriesView(centres, np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts), raw=False)


def _runs(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each run of equal bin indices starts in ``index`` (sorted), and the bin of each run."""
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    return starts, index[starts]


class LiveSeries:
    """A channel's values for display (see the module docstring). Not thread-safe: one owner (the GUI
    thread) extends and reads it."""

    def __init__(self, overview_bins: int = 4096, tail_points: int = 20_000, first_bin_s: float = 1.0) -> None:
        if overview_bins < 2 or overview_bins % 2:
            raise ValueError(f"overview_bins = {overview_bins}; allowed: an even number ≥ 2")
        if tail_points < 1:
            raise ValueError(f"tail_points = {tail_points}; allowed: ≥ 1")
        if not first_bin_s > 0:
            raise ValueError(f"first_bin_s = {first_bin_s}; allowed: > 0")
        self._n_bins = overview_bins
        self.bin_s = float(first_bin_s)
        self.origin_s: float | None = None
        self._min = np.full(overview_bins, np.inf)
        self._max = np.full(overview_bins, -np.inf)
        self._sum = np.zeros(overview_bins)
        self._count = np.zeros(overview_bins, dtype=np.int64)
        self._tail_t = np.empty(tail_points)
        self._tail_v = np.empty(tail_points)
        self._tail_next = 0  # where the next tail point goes (a ring)
        self._tail_filled = 0
        self.n_points = 0
        self.last_time_s = -math.inf
        self.last_value = math.nan
        #: Before this time the series holds only a summary (seeded from the run file), never raw points.
        self.raw_from_s = -math.inf

    # ------------------------------------------------------------------------------------ feeding
    def extend(self, time_s: np.ndarray | list[float], values: np.ndarray | list[float]) -> None:
        """Append points in time order (a batch as the engine delivers it). Points at or before the newest one
        held are skipped as already held; a batch out of order is refused."""
        t = np.asarray(time_s, dtype=float).ravel()
        v = np.asarray(values, dtype=float).ravel()
        if t.size != v.size:
            raise ValueError(f"{t.size} times for {v.size} values")
        if t.size == 0:
            return
        if t.size > 1 and np.any(np.diff(t) < 0):
            raise ValueError("points must come in time order within a batch")
        if t[0] <= self.last_time_s:  # already held: a window attached mid-run gets some rows from the file
            newer = t > self.last_time_s  # and again from the engine's events
            t, v = t[newer], v[newer]
            if t.size == 0:
                return
        if self.origin_s is None:
            self.origin_s = float(t[0])
        self._add_to_overview(t, v)
        self._add_to_tail(t, v)
        self.n_points += int(t.size)
        self.last_time_s = float(t[-1])
        self.last_value = float(v[-1])

    def seed(self, time_s: np.ndarray, low: np.ndarray, high: np.ndarray, last_value: float) -> None:
        """History from the run file's summary (a window opened on a run that has been going for weeks): the
        min and max of each of its bins go into the overview, none into the tail, so a zoom into that
        history asks the file (``view`` returns None there) rather than showing summary values as points."""
        t = np.asarray(time_s, dtype=float)
        if t.size == 0 or self.n_points:
            return
        times = np.repeat(t, 2)
        values = np.empty(2 * t.size)
        values[0::2], values[1::2] = low, high
        self.origin_s = float(t[0])
        self._add_to_overview(times, values)
        self.last_time_s = float(t[-1])
        self.last_value = float(last_value)
        self.raw_from_s = float(t[-1])
        self.n_points = 0

    def _add_to_overview(self, t: np.ndarray, v: np.ndarray) -> None:
        assert self.origin_s is not None
        index = np.floor((t - self.origin_s) / self.bin_s).astype(np.int64)
        while index.size and index.max() >= self._n_bins:
            self._coarsen()
            index = np.floor((t - self.origin_s) / self.bin_s).astype(np.int64)
        ok = (index >= 0) & np.isfinite(v)
        index, v = index[ok], v[ok]
        if index.size == 0:
            return
        # a batch is in time order, so each bin it touches is one run of points (see envelope)
        starts, used = _runs(index)
        self._min[used] = np.minimum(self._min[used], np.minimum.reduceat(v, starts))
        self._max[used] = np.maximum(self._max[used], np.maximum.reduceat(v, starts))
        self._sum[used] += np.add.reduceat(v, starts)
        self._count[used] += np.diff(np.r_[starts, index.size])

    def _coarsen(self) -> None:
        """Merge neighbouring bins: half as many bins of twice the width; the upper half is free again."""
        half = self._n_bins // 2
        self._min[:half] = self._min.reshape(half, 2).min(axis=1)
        self._max[:half] = self._max.reshape(half, 2).max(axis=1)
        self._sum[:half] = self._sum.reshape(half, 2).sum(axis=1)
        self._count[:half] = self._count.reshape(half, 2).sum(axis=1)
        self._min[half:], self._max[half:], self._sum[half:], self._count[half:] = np.inf, -np.inf, 0.0, 0
        self.bin_s *= 2

    def _add_to_tail(self, t: np.ndarray, v: np.ndarray) -> None:
        size = self._tail_t.size
        if t.size >= size:
            t, v = t[-size:], v[-size:]
        first = min(t.size, size - self._tail_next)
        self._tail_t[self._tail_next:self._tail_next + first] = t[:first]
        self._tail_v[self._tail_next:self._tail_next + first] = v[:first]
        rest = t.size - first
        if rest:
            self._tail_t[:rest] = t[first:]
            self._tail_v[:rest] = v[first:]
        self._tail_next = (self._tail_next + t.size) % size
        self._tail_filled = min(size, self._tail_filled + t.size)

    # ------------------------------------------------------------------------------------ reading
    def tail(self) -> tuple[np.ndarray, np.ndarray]:
        """The newest points, oldest first."""
        if self._tail_filled < self._tail_t.size:
            return self._tail_t[:self._tail_filled].copy(), self._tail_v[:self._tail_filled].copy()
        order = np.r_[self._tail_next:self._tail_t.size, 0:self._tail_next]
        return self._tail_t[order], self._tail_v[order]

    def overview(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(bin centres, min, max, mean) of the filled overview bins."""
        filled = self._count > 0
        if self.origin_s is None or not filled.any():
            empty = np.empty(0)
            return empty, empty, empty, empty
        centres = self.origin_s + (np.nonzero(filled)[0] + 0.5) * self.bin_s
        return centres, self._min[filled], self._max[filled], self._sum[filled] / self._count[filled]

    @property
    def span_s(self) -> tuple[float, float] | None:
        return None if self.origin_s is None else (self.origin_s, self.last_time_s)

    def view(self, start_s: float, stop_s: float, width_px: int) -> SeriesView | None:
        """What to draw of [start_s, stop_s] on ``width_px`` pixels; None when only the file can say."""
        if self.origin_s is None or not stop_s > start_s or width_px < 1:
            return SeriesView(np.empty(0), np.empty(0), np.empty(0), raw=True)
        t, v = self.tail()
        tail_covers = start_s >= self.raw_from_s and (self._tail_filled == self.n_points or
                                                      (t.size and t[0] <= start_s))
        if tail_covers:
            inside = (t >= start_s) & (t <= stop_s)
            if inside.sum() <= RAW_POINTS_PER_PIXEL * width_px:
                return SeriesView(t[inside], v[inside], v[inside], raw=True)
            return envelope(t[inside], v[inside], start_s, stop_s, width_px)
        low_s, high_s = max(start_s, self.origin_s), min(stop_s, self.last_time_s)
        bins_in_window = (high_s - low_s) / self.bin_s
        if bins_in_window < MIN_BINS_PER_PIXEL * width_px * (high_s - low_s) / (stop_s - start_s):
            return None
        centres, lows, highs, _ = self.overview()
        inside = (centres >= start_s - self.bin_s) & (centres <= stop_s + self.bin_s)
        centres, lows, highs = centres[inside], lows[inside], highs[inside]
        if centres.size <= width_px:
            return SeriesView(centres, lows, highs, raw=False)
        coarse_low = envelope(centres, lows, start_s, stop_s, width_px)
        coarse_high = envelope(centres, highs, start_s, stop_s, width_px)
        return SeriesView(coarse_low.time_s, coarse_low.low, coarse_high.high, raw=False)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self._min, self._max, self._sum, self._count, self._tail_t, self._tail_v))
