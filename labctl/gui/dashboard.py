"""The aging dashboard: one tile per channel, laid out like the sample holder.

Each tile shows the channel's state as a colour (tracking, suspended, lost, done), its PCE now, its retention
(PCE over PCE₀, the value of a robust line through the first hour of tracking, as `labctl analyze` defines
it), a sparkline of the whole run and T80 so far ("> 412 h" while it has not been reached). Clicking a tile
asks for that channel's detail plots (:attr:`AgingDashboard.channel_clicked`).

States follow the run's events as the engine relays them: ``channel_suspended`` → suspended,
``channel_resumed`` → tracking, ``channel_lost``/``channel_failed`` → lost, ``channel_completed`` → done.
Points arrive in batches and go into bounded :class:`~labctl.gui.live_series.LiveSeries`; the tiles redraw
on a timer (1 Hz), and T80 is recomputed every few seconds from the overview, never from every point, in a
worker process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, QPointF, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QCloseEvent, QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PyQt6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from labctl.gui.live_series import LiveSeries

STATE_COLOURS = {"waiting": "#9e9e9e", "tracking": "#2e7d32", "suspended": "#f9a825", "lost": "#c62828",
                 "done": "#1565c0"}
EVENT_STATES = {"channel_suspended": "suspended", "channel_resumed": "tracking", "channel_lost": "lost",
                "channel_failed": "lost", "channel_completed": "done"}
HOUR_S = 3600.0
TILE_MIN_WIDTH_PX, TILE_MIN_HEIGHT_PX = 124, 118
#: The tiles are repainted in this many slices per second.
REFRESH_SLICES = 4
#: Tiles per row when the channels are only known as their data arrive.
DYNAMIC_COLUMNS = 6
#: How often T80 so far is recomputed (s of real time): it needs the whole overview, not each batch.
METRICS_INTERVAL_S = 5.0


def channel_metrics(hours: np.ndarray, pce: np.ndarray) -> tuple[float, float | None, bool] | None:
    """(PCE₀, T80 so far in h, censored) by the analysis' definitions, on the overview's binned means; None
    when the data cannot say yet. ~40 ms for a few hundred bins: never on the GUI thread for 64 channels."""
    from labctl.analysis.stability import StabilityAnalysisError, reference_value, stability_metrics

    try:
        pce0 = reference_value(hours, pce)
        metrics = stability_metrics(hours, pce)
    except StabilityAnalysisError:
        return None
    return pce0, metrics.t80_h, metrics.t80_censored


class _MetricsCarrier(QObject):
    ready = pyqtSignal(object)  # {channel: result}


def all_channel_metrics(inputs: dict[str, tuple[np.ndarray, np.ndarray]]
                        ) -> dict[str, tuple[float, float | None, bool] | None]:
    return {name: channel_metrics(*args) for name, args in inputs.items()}


class Sparkline(QWidget):
    """The whole run of one channel in a few dozen pixels: the overview's mean per bin."""

    def __init__(self, series: LiveSeries, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series = series
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def paintEvent(self, event: QPaintEvent | None) -> None:
        centres, _, _, means = self.series.overview()
        if centres.size < 2:
            return
        width, height = self.width() - 4, self.height() - 4
        if centres.size > width:  # one point per pixel is all a sparkline shows
            pick = np.linspace(0, centres.size - 1, width).astype(int)
            centres, means = centres[pick], means[pick]
        low, high = float(np.nanmin(means)), float(np.nanmax(means))
        span_t = float(centres[-1] - centres[0]) or 1.0
        span_v = (high - low) or 1.0
        points = [QPointF(2 + width * (t - centres[0]) / span_t, 2 + height * (1 - (v - low) / span_v))
                  for t, v in zip(centres, means, strict=True) if math.isfinite(v)]
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor("#37474f"), 1.3))
        painter.drawPolyline(QPolygonF(points))
        painter.end()


class ChannelTile(QFrame):
    """One channel of the dashboard."""

    clicked = pyqtSignal(str)

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.state = "waiting"
        self.message = ""
        self.series = LiveSeries(overview_bins=512, tail_points=64)
        self.pce0_pct: float | None = None
        self.t80_text = "—"
        self._styled = ""
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumSize(TILE_MIN_WIDTH_PX, TILE_MIN_HEIGHT_PX)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.title = QLabel(f"<b>{name}</b>")
        self.badge = QLabel()
        self.pce = QLabel("PCE —")
        self.retention = QLabel("retention —")
        self.t80 = QLabel("T80 —")
        self.spark = Sparkline(self.series)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(1)
        for widget in (self.title, self.badge, self.pce, self.retention, self.t80, self.spark):
            layout.addWidget(widget)
        self.refresh()

    def mousePressEvent(self, event: QMouseEvent | None) -> None:
        self.clicked.emit(self.name)

    def set_state(self, state: str, message: str = "") -> None:
        self.state, self.message = state, message
        self.refresh()

    def retention_pct(self) -> float | None:
        if self.pce0_pct is None or not self.pce0_pct > 0 or not math.isfinite(self.series.last_value):
            return None
        return 100.0 * self.series.last_value / self.pce0_pct

    def metrics_input(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(hours, mean PCE) of the overview, copied for a computation off the GUI thread."""
        centres, _, _, means = self.series.overview()
        if self.series.origin_s is None or centres.size < 8:
            return None
        return (centres - self.series.origin_s) / HOUR_S, means.copy()

    def apply_metrics(self, result: tuple[float, float | None, bool] | None) -> None:
        if result is None:
            return
        self.pce0_pct, t80_h, censored = result
        if t80_h is not None and not censored:
            self.t80_text = f"{t80_h:.0f} h"
        elif censored and self.series.origin_s is not None:  # not reached yet: at least as long as the run
            self.t80_text = f"> {(self.series.last_time_s - self.series.origin_s) / HOUR_S:.0f} h"

    def update_metrics(self) -> None:
        """PCE₀ and T80 so far, computed here (the dashboard does it on a worker thread)."""
        found = self.metrics_input()
        if found is not None:
            self.apply_metrics(channel_metrics(*found))

    def refresh(self) -> None:
        colour = STATE_COLOURS.get(self.state, "#9e9e9e")
        if self._styled != colour:  # restyling re-polishes the widget: only when the state changed
            self._styled = colour
            self.setStyleSheet(f"ChannelTile {{ border: 2px solid {colour}; border-radius: 4px; }}")
        self.badge.setText(f"<span style='color:{colour}'>● {self.state}</span>")
        self.badge.setToolTip(self.message)
        last = self.series.last_value
        self.pce.setText(f"PCE {last:.2f} %" if math.isfinite(last) else "PCE —")
        retention = self.retention_pct()
        self.retention.setText(f"retention {retention:.1f} %" if retention is not None else "retention —")
        self.t80.setText(f"T80 {self.t80_text}")
        self.spark.update()


class AgingDashboard(QWidget):
    """Tiles for every channel of an aging run (see the module docstring)."""

    channel_clicked = pyqtSignal(str)
    metrics_updated = pyqtSignal()  # PCE₀ and T80 so far were recomputed

    def __init__(self, channels: Sequence[str], layout: Sequence[Sequence[str]] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tiles: dict[str, ChannelTile] = {}
        self.order: list[str] = []
        #: Grid places from the station's holder (empty: none described).
        self.positions: dict[str, tuple[int, int]] = {}
        self._holder_rows = 0
        self._grid = QGridLayout(self)
        self._grid.setSpacing(6)
        rows = [list(r) for r in layout] if layout else _square(list(channels))
        self._columns = max((len(r) for r in rows), default=0) or DYNAMIC_COLUMNS
        for r, row in enumerate(rows):
            for c, name in enumerate(row):
                self._place(name, r, c)
        self._dirty: set[str] = set()
        self._since_metrics_s = 0.0
        self._metrics_running = False
        self._carrier = _MetricsCarrier()
        self._carrier.ready.connect(self._metrics_ready)
        # T80 so far is ~40 ms of Python per channel: in a thread it would hold the interpreter lock in turns
        # with the GUI thread and stall every repaint, so it runs in a process of its own
        self._pool: ProcessPoolExecutor | None = None
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(1000)
        # tiles are repainted a slice at a time, spread over the second: 64 at once would hold the GUI
        # thread for one long stretch instead of four short ones
        self._slice_timer = QTimer(self)
        self._slice_timer.timeout.connect(self._refresh_slice)
        self._slice_timer.start(1000 // REFRESH_SLICES)

    def _place(self, name: str, row: int, column: int) -> ChannelTile:
        tile = ChannelTile(name)
        tile.clicked.connect(self.channel_clicked)
        self.tiles[name] = tile
        self._grid.addWidget(tile, row, column)
        return tile

    def clear(self) -> None:
        """Remove every tile (a new run)."""
        for tile in self.tiles.values():
            self._grid.removeWidget(tile)
            tile.deleteLater()
        self.tiles.clear()
        self._dirty.clear()

    def add_channel(self, name: str) -> ChannelTile:
        """A tile for a channel met only in the data (a run attached to while it runs): the next free place."""
        if name in self.tiles:
            return self.tiles[name]
        if self.positions:
            if name not in self.positions:
                taken = {rc for rc in self.positions.values()}
                index = 0
                while (self._holder_rows + index // self._columns, index % self._columns) in taken:
                    index += 1
                self.positions[name] = (self._holder_rows + index // self._columns, index % self._columns)
            return self._place(name, *self.positions[name])
        if name in self.order:  # the station's order: a tile keeps its place whichever channel speaks first
            index = self.order.index(name)
        else:
            index = len(self.order) + sum(n not in self.order for n in self.tiles)
        return self._place(name, index // self._columns, index % self._columns)

    def set_order(self, names: Sequence[str]) -> None:
        """Where tiles of channels met only in the data go: the station's samples in the order its file
        lists them (as the sample holder is usually written down)."""
        self.order = list(names)

    def set_holder(self, rows: Sequence[Sequence[str]]) -> None:
        """The station's ``[holder]``: a tile goes where its sample sits (rows as seen from the front;
        "" is an empty slot). Channels the holder does not list go below it. Moves tiles already shown."""
        self.positions = {name: (r, c) for r, row in enumerate(rows) for c, name in enumerate(row) if name}
        self._holder_rows = len(rows)
        self._columns = max((len(r) for r in rows), default=0) or DYNAMIC_COLUMNS
        extra = 0
        for name, tile in self.tiles.items():
            self._grid.removeWidget(tile)
            if name not in self.positions:
                self.positions[name] = (self._holder_rows + extra // self._columns, extra % self._columns)
                extra += 1
            self._grid.addWidget(tile, *self.positions[name])

    def add_points(self, channel: str, time_s: Any, pce_pct: Any) -> None:
        tile = self.tiles.get(channel) or self.add_channel(channel)
        tile.series.extend(time_s, pce_pct)
        if tile.state == "waiting":
            tile.state = "tracking"
        self._dirty.add(channel)

    def on_event(self, kind: str, channel: str, message: str = "") -> None:
        """A run event relayed by the engine; channel events change the tile's state."""
        state = EVENT_STATES.get(kind)
        if state is not None and channel:
            self.add_channel(channel).set_state(state, message)

    def _tick(self) -> None:
        self._since_metrics_s += 1.0
        if self._since_metrics_s >= METRICS_INTERVAL_S and not self._metrics_running:
            self._since_metrics_s = 0.0
            inputs = {name: found for name, tile in self.tiles.items() if (found := tile.metrics_input()) is not None}
            if inputs:
                self._metrics_running = True
                if self._pool is None:
                    self._pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
                future = self._pool.submit(all_channel_metrics, inputs)
                future.add_done_callback(self._metrics_done)

    def _refresh_slice(self) -> None:
        if not self._dirty:
            return
        take = max(1, -(-len(self.tiles) // REFRESH_SLICES))
        for name in sorted(self._dirty)[:take]:
            self._dirty.discard(name)
            if name in self.tiles:
                self.tiles[name].refresh()

    def _metrics_done(self, future: Future[dict[str, tuple[float, float | None, bool] | None]]) -> None:
        """On the pool's thread: hand the results to the GUI thread (a queued signal)."""
        try:
            results = future.result()
        except Exception:  # a broken worker (killed, out of memory): try again at the next interval
            results = {}
        self._carrier.ready.emit(results)

    def close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def closeEvent(self, event: QCloseEvent | None) -> None:
        self.close_pool()
        super().closeEvent(event)

    def _metrics_ready(self, results: dict[str, tuple[float, float | None, bool] | None]) -> None:
        self._metrics_running = False
        for name, result in results.items():
            if name in self.tiles:
                self.tiles[name].apply_metrics(result)
                self._dirty.add(name)
        self.metrics_updated.emit()


def _square(names: list[str]) -> list[list[str]]:
    columns = max(1, math.ceil(math.sqrt(len(names))))
    return [names[i:i + columns] for i in range(0, len(names), columns)]
