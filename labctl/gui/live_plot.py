"""A live plot of many channels against hours since the start, fast for 1000 h × 64 channels.

Data arrive in batches (:meth:`LivePlot.add_points`, called on the GUI thread from a Qt signal) and only go
into each channel's :class:`~labctl.gui.live_series.LiveSeries`; nothing is drawn then. A timer redraws at
most ``redraw_hz`` times a second, and only when something changed: each curve gets what fits the view —
raw points when zoomed in, a min/max stroke per pixel otherwise — so a redraw costs the same at 10 h and at
1000 h. The curves are rasterised into one image on a background thread (:mod:`labctl.gui.curve_raster`);
the GUI thread only shows that image. A window the series cannot answer (an old hour zoomed into after it
left the memory) is read from the run file's multi-resolution summary on a worker thread and drawn when it
arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, QRunnable, QThreadPool, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QImage
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from labctl.gui.curve_raster import CurveRaster, Frame, RasterWorker, render_curves
from labctl.gui.live_series import LiveSeries, SeriesView

HOUR_S = 3600.0
#: Min/max strokes per pixel column of the plot: one every other pixel looks the same on screen and halves the
#: vertices Qt strokes at each repaint (64 channels × 2 vertices per stroke).
STROKES_PER_PIXEL = 0.5
#: Above this many channels on one plot, a stroke every fourth pixel column: dozens of overlapping curves hide
#: the difference, and Qt's repaint cost follows the vertices.
CROWDED_CHANNELS = 16
#: Channels whose view is computed per turn of the event loop in a timed redraw.
SLICE_CHANNELS = 16
#: After a zoom or pan, the sharp image follows this soon (the previous one is stretched meanwhile).
ZOOM_REDRAW_MS = 120
#: Legend entries per column before the legend adds a column.
LEGEND_ROWS = 8
#: A printable qualitative palette (matplotlib's tab10) so neighbouring channels differ.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


class _FileWindow(QObject):
    """Carries a window read from the run file back to the GUI thread."""

    ready = pyqtSignal(str, object, object)  # channel, (start_s, stop_s, width), SeriesView


class _ReadWindow(QRunnable):
    def __init__(self, path: Path, block: str, column: str, key: tuple[float, float, int],
                 channel: str, carrier: _FileWindow) -> None:
        super().__init__()
        self.path, self.block, self.column, self.key = path, block, column, key
        self.channel, self.carrier = channel, carrier

    def run(self) -> None:
        from labctl.store import RunReader

        start_s, stop_s, width = self.key
        try:
            with RunReader(self.path) as reader:
                found = reader.decimate(self.block, bins=width, start_s=start_s, stop_s=stop_s,
                                        columns=[self.column])
        except Exception:  # a file being replaced or a block not there yet: the next view change asks again
            return
        filled = np.asarray(found.count) > 0
        view = SeriesView(found.centers_s[filled], np.asarray(found.min[self.column])[filled],
                          np.asarray(found.max[self.column])[filled], raw=False)
        self.carrier.ready.emit(self.channel, self.key, view)


class LivePlot(QWidget):
    """One quantity of many channels against time in hours (see the module docstring)."""

    redrawn = pyqtSignal(float)  # seconds the redraw took

    def __init__(self, title: str, y_label: str, unit: str, *, redraw_hz: float = 1.0,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, LiveSeries] = {}
        self.start_s: float | None = None
        self._colours: dict[str, QColor] = {}
        self._shown: list[tuple[str, SeriesView, float]] = []  # what the last redraw drew: channel, view, factor
        self._generation = 0
        #: Per-channel factor the values are drawn with (normalised PCE: 1/PCE₀); 1 when not set.
        self._scale: dict[str, float] = {}
        self._dirty = False
        self._slicing = False
        self._file: tuple[Path, Callable[[str], str], str] | None = None
        self._file_views: dict[str, tuple[tuple[float, float, int], SeriesView]] = {}
        self._asked: set[tuple[str, tuple[float, float, int]]] = set()
        self._carrier = _FileWindow()
        self._carrier.ready.connect(self._file_window_ready)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setTitle(title, color="k")
        self.plot.setLabel("bottom", "time since start", units="h")
        self.plot.setLabel("left", y_label, units=unit)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.getPlotItem().getAxis("left").enableAutoSIPrefix(False)
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextColor="k")
        self.raster = CurveRaster()
        self.plot.addItem(self.raster)
        self._worker = RasterWorker(self)
        self._worker.done.connect(self.raster.set_image)
        view_box = self.plot.getViewBox()
        view_box.sigXRangeChanged.connect(self._view_changed)
        # following the whole run, the plot sets its own range together with the data (one repaint); the
        # view box's auto-range would adjust it in a second pass and repaint again. Zooming or panning by
        # hand stops following; the view box's "A" button (auto-range) starts it again.
        self.following = True
        self._setting_range = False
        view_box.sigRangeChangedManually.connect(self._stop_following)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(int(1000 / redraw_hz))
        self.last_redraw_s = 0.0

    # ------------------------------------------------------------------------------------ feeding
    def use_run_file(self, path: Path, block_of: Callable[[str], str], column: str) -> None:
        """Where windows the memory cannot answer are read: ``block_of(channel)`` names the block."""
        self._file = (Path(path), block_of, column)

    def add_points(self, channel: str, time_s: Any, values: Any) -> None:
        """A batch of one channel (epoch seconds on the run's clock); drawn at the next redraw."""
        t = np.asarray(time_s, dtype=float).ravel()
        if t.size == 0:
            return
        self.series_for(channel).extend(t, values)
        self._dirty = True

    def clear(self) -> None:
        """Forget every channel (a new run)."""
        self.legend.clear()
        self.raster.clear()
        self.series.clear()
        self._colours.clear()
        self._shown = []
        self._file_views.clear()
        self.start_s = None
        self._dirty = True

    def series_for(self, channel: str) -> LiveSeries:
        """The channel's series, with its curve (created on first use)."""
        series = self.series.get(channel)
        if series is None:
            series = self.series[channel] = LiveSeries()
            colour = PALETTE[(len(self.series) - 1) % len(PALETTE)]
            self._colours[channel] = QColor(colour)
            # the legend's sample: an item that is never added to the plot (the raster draws the curve)
            self.legend.addItem(pg.PlotDataItem(pen=pg.mkPen(colour, width=1)), channel)
            self.legend.setColumnCount(1 + (len(self.series) - 1) // LEGEND_ROWS)  # 64 channels: 8 columns
            self._dirty = True
        return series

    # ------------------------------------------------------------------------------------ drawing
    def _view_changed(self, *_args: Any) -> None:
        if not self._setting_range:  # a zoom or pan, by hand or by code: show that window from now on
            self.following = self.plot.getViewBox().autoRangeEnabled()[0]
            if not self._dirty:
                QTimer.singleShot(ZOOM_REDRAW_MS, self._tick)
        self._dirty = True

    def _stop_following(self, *_args: Any) -> None:
        self.following = False
        self._dirty = True

    def _tick(self) -> None:
        if self._dirty:
            self._redraw_in_slices()

    def visible_window_s(self) -> tuple[float, float] | None:
        """The time window to draw: the view's, unless it follows the whole run (auto range)."""
        spans = [s.span_s for s in self.series.values() if s.span_s is not None]
        if not spans:
            return None
        if self.start_s is None:  # hours count from the first point of any channel (or of its history)
            self.start_s = min(a for a, _ in spans)
        whole = (min(a for a, _ in spans), max(b for _, b in spans))
        view_box = self.plot.getViewBox()
        if view_box.autoRangeEnabled()[0]:
            self.following = True
        if self.following:
            return whole
        x0, x1 = view_box.viewRange()[0]
        return self.start_s + x0 * HOUR_S, self.start_s + x1 * HOUR_S

    def redraw(self) -> float:
        """Compute every curve for the view and render the image now, on this thread (tests, benchmarks);
        returns the seconds it took. The timer's redraws render in the background instead."""
        began = time.perf_counter()
        plan = self._plan()
        if plan is not None:
            views = {channel: self._view(channel, plan) for channel in list(self.series)}
            self._apply(plan, views, now=True)
        self.last_redraw_s = time.perf_counter() - began
        self.redrawn.emit(self.last_redraw_s)
        return self.last_redraw_s

    def _plan(self) -> tuple[float, float, int] | None:
        self._dirty = False
        window = self.visible_window_s()
        if window is None or self.start_s is None:
            return None
        per_pixel = STROKES_PER_PIXEL if len(self.series) <= CROWDED_CHANNELS else STROKES_PER_PIXEL / 2
        width = max(100, int(per_pixel * (self.plot.getViewBox().width() or 2000)))
        return window[0], max(window[1], window[0] + 1.0), width

    def _view(self, channel: str, plan: tuple[float, float, int]) -> SeriesView | None:
        view = self.series[channel].view(*plan)
        return view if view is not None else self._from_file(channel, plan)

    def set_scale(self, factors: dict[str, float], y_label: str | None = None, unit: str = "") -> None:
        """Draw each channel's values times its factor (a channel without one is not drawn), e.g. PCE over
        PCE₀; an empty dict draws the values as they are. The stored series do not change."""
        self._scale = dict(factors)
        if y_label is not None:
            self.plot.setLabel("left", y_label, units=unit or None)
        self._dirty = True

    def drawn(self, channel: str) -> tuple[np.ndarray, np.ndarray]:
        """The polyline last drawn for a channel: hours since the start, values (empty before the first)."""
        for name, view, factor in self._shown:
            if name == channel and self.start_s is not None:
                x, y = view.polyline()
                return (x - self.start_s) / HOUR_S, y * factor
        return np.empty(0), np.empty(0)

    def _apply(self, plan: tuple[float, float, int], views: dict[str, SeriesView | None], *,
               now: bool = False) -> None:
        assert self.start_s is not None
        # Only the range is worked out here; the polylines are built where they are rasterised (off this
        # thread for a timed redraw): 64 of them cost ~15 ms of numpy.
        low, high = np.inf, -np.inf
        shown: list[tuple[str, SeriesView, float]] = []
        for channel, view in views.items():
            if view is not None and channel in self._colours and view.size:
                factor = self._scale.get(channel, np.nan) if self._scale else 1.0
                if not np.isfinite(factor):
                    continue
                shown.append((channel, view, factor))
                lo, hi = np.nanmin(view.low) * factor, np.nanmax(view.high) * factor
                if np.isfinite(lo) and np.isfinite(hi):
                    low, high = min(low, float(min(lo, hi))), max(high, float(max(lo, hi)))
        self._shown = shown
        view_box = self.plot.getViewBox()
        x_range = ((plan[0] - self.start_s) / HOUR_S, (plan[1] - self.start_s) / HOUR_S)
        if self.following and low <= high:
            pad = 0.05 * ((high - low) or abs(high) or 1.0)
            y_range = (low - pad, high + pad)
            self._setting_range = True
            try:
                view_box.setRange(xRange=x_range, yRange=y_range, padding=0.0, disableAutoRange=True)
            finally:
                self._setting_range = False
        else:
            (vx0, vx1), (vy0, vy1) = view_box.viewRange()
            x_range, y_range = (float(vx0), float(vx1)), (float(vy0), float(vy1))
        self._generation += 1
        start_s, colours = self.start_s, self._colours

        def curves() -> list[tuple[np.ndarray, np.ndarray, QColor]]:
            out = []
            for channel, view, factor in shown:
                x, y = view.polyline()
                out.append(((x - start_s) / HOUR_S, y * factor if factor != 1.0 else y, colours[channel]))
            return out

        frame = Frame(curves, x_range, y_range, (int(view_box.width()) or 1, int(view_box.height()) or 1),
                      pixel_ratio=float(self.plot.devicePixelRatioF() or 1.0), generation=self._generation,
                      bounds=(x_range[0], x_range[1], low, high) if low <= high else None)
        if now:
            self.raster.set_image(frame, render_curves(frame))
        else:
            self._worker.request(frame)

    @property
    def image(self) -> QImage | None:
        """The image on screen (the curves of the last rendered redraw)."""
        return self.raster.image

    def _redraw_in_slices(self) -> None:
        """The timer's redraw: the views are computed :data:`SLICE_CHANNELS` channels per turn of the event
        loop and handed to the curves together at the end (one repaint), so the GUI thread is never held for
        the whole of it at once."""
        if self._slicing:
            return
        plan = self._plan()
        if plan is None:
            return
        self._slicing = True
        began = time.perf_counter()
        channels = list(self.series)
        views: dict[str, SeriesView | None] = {}

        def step(start: int) -> None:
            for channel in channels[start:start + SLICE_CHANNELS]:
                if channel in self.series:
                    views[channel] = self._view(channel, plan)
            if start + SLICE_CHANNELS < len(channels):
                QTimer.singleShot(0, lambda: step(start + SLICE_CHANNELS))
                return
            self._apply(plan, views)
            self._slicing = False
            self.last_redraw_s = time.perf_counter() - began
            self.redrawn.emit(self.last_redraw_s)

        step(0)

    def _from_file(self, channel: str, key: tuple[float, float, int]) -> SeriesView | None:
        cached = self._file_views.get(channel)
        if cached is not None and _close(cached[0], key):
            return cached[1]
        if self._file is not None and (channel, key) not in self._asked:
            self._asked.add((channel, key))
            path, block_of, column = self._file
            pool = QThreadPool.globalInstance()
            assert pool is not None  # a QApplication exists whenever a widget does
            pool.start(_ReadWindow(path, block_of(channel), column, key, channel, self._carrier))
        return cached[1] if cached is not None else None

    def _file_window_ready(self, channel: str, key: tuple[float, float, int], view: SeriesView) -> None:
        self._file_views[channel] = (key, view)
        self._asked.discard((channel, key))
        self._dirty = True

    def stored_points(self) -> int:
        """Points held in memory over all channels (bounded: see LiveSeries)."""
        return sum(s.nbytes for s in self.series.values()) // 8


def _close(a: tuple[float, float, int], b: tuple[float, float, int]) -> bool:
    """Two windows that draw alike (within 1 % of their span, same width)."""
    span = max(b[1] - b[0], 1e-9)
    return a[2] == b[2] and abs(a[0] - b[0]) < 0.01 * span and abs(a[1] - b[1]) < 0.01 * span
