"""One aging channel in detail: what a click on its dashboard tile opens.

PCE, power, voltage and current against hours since the channel's first point (min/max band and mean per
bin, from the run file's summary, so 1000 h cost what 1 h does), the channel's periodic J–V scans coloured
by age, and its events (suspensions, losses, gaps) as marks on the time axes. Read from the run file on a
worker thread — the file the engine is writing, opened read-only — and read again every
:data:`REFRESH_S` seconds while the window is open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from labctl.gui.tasks import run_in_thread

#: Bins of the time plots (about one per pixel column of a large window).
DETAIL_BINS = 1500
#: J–V scans drawn (the first and the newest ones).
SCANS_SHOWN = 12
#: Seconds between re-reads while the window is open.
REFRESH_S = 30.0
#: Columns of a channel's MPPT block that get a plot, top to bottom.
DETAIL_COLUMNS = ("pce_pct", "power_mW_cm2", "voltage_V", "current_A")
AXIS_NAMES = {"pce_pct": "PCE", "power_mW_cm2": "power density", "voltage_V": "voltage", "current_A": "current"}
#: Events marked on the time axes.
MARKED_EVENTS = {"channel_suspended", "channel_resumed", "channel_lost", "channel_failed", "channel_gap",
                 "channel_completed"}
HOUR_S = 3600.0


@dataclass
class ChannelDetailData:
    """What the window shows of one channel; times in hours since the channel's first point."""

    channel: str
    start_s: float | None = None
    hours: np.ndarray = field(default_factory=lambda: np.empty(0))
    #: column -> (min, max, mean) per bin
    columns: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    #: (block, hours of aging when taken, direction, voltage_V, current density mA/cm²), oldest first
    scans: list[tuple[str, float, str, np.ndarray, np.ndarray]] = field(default_factory=list)
    #: (hours, kind, message)
    events: list[tuple[float, str, str]] = field(default_factory=list)


def read_channel_detail(path: Path, channel: str, bins: int = DETAIL_BINS,
                        scans_shown: int = SCANS_SHOWN) -> ChannelDetailData:
    """The channel's detail from a run file (finished or being written)."""
    from labctl.store import RunReader

    out = ChannelDetailData(channel)
    with RunReader(path) as reader:
        names = reader.block_names()
        block = f"mppt_{channel}"
        if block in names and reader.info(block).n_rows:
            info = reader.info(block)
            wanted = [c for c in DETAIL_COLUMNS if c in info.columns]
            found = reader.decimate(block, bins=bins, columns=wanted, time_column="time_s")
            filled = np.asarray(found.count) > 0
            centres = found.centers_s[filled]
            out.start_s = float(found.edges_s[0])
            out.hours = (centres - out.start_s) / HOUR_S
            out.columns = {c: (found.min[c][filled], found.max[c][filled], found.mean[c][filled]) for c in wanted}
            out.units = {c: info.units[c] for c in wanted}
        pattern = re.compile(rf"^jv_{re.escape(channel)}_(\d+)_(RS|FS)")
        scan_names = [n for n in names if pattern.match(n)]
        if len(scan_names) > scans_shown:  # the first scan pair and the newest ones
            scan_names = scan_names[:2] + scan_names[-(scans_shown - 2):]
        for name in scan_names:
            scan = reader.block(name)
            if "voltage_V" in scan.columns and "current_density_mA_cm2" in scan.columns:
                out.scans.append((name, float(scan.attrs.get("elapsed_h", np.nan)),
                                  str(scan.attrs.get("direction", "")), scan["voltage_V"],
                                  scan["current_density_mA_cm2"]))
        if out.start_s is not None:
            out.events = [((e.time_s - out.start_s) / HOUR_S, e.kind, e.message) for e in reader.events()
                          if e.channel == channel and e.kind in MARKED_EVENTS]
    return out


class ChannelDetail(QWidget):
    """A window with one channel's plots (see the module docstring)."""

    def __init__(self, path: Path, channel: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.path, self.channel = Path(path), channel
        self.data: ChannelDetailData | None = None
        self.setWindowTitle(f"labctl — channel {channel} — {self.path.name}")
        self.resize(1100, 800)
        self.status = QLabel(f"reading {self.path.name} …")
        refresh = QPushButton("Read again")
        refresh.clicked.connect(self.reload)
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(refresh)
        self.graphs = pg.GraphicsLayoutWidget()
        self.graphs.setBackground("w")
        self.time_plots: dict[str, pg.PlotItem] = {}
        for row, column in enumerate(DETAIL_COLUMNS):
            plot = self.graphs.addPlot(row=row, col=0)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.getAxis("left").enableAutoSIPrefix(False)
            if self.time_plots:
                plot.setXLink(next(iter(self.time_plots.values())))
            self.time_plots[column] = plot
        list(self.time_plots.values())[-1].setLabel("bottom", "time since the channel's start", units="h")
        self.jv = self.graphs.addPlot(row=0, col=1, rowspan=len(DETAIL_COLUMNS))
        self.jv.setLabel("bottom", "voltage", units="V")
        self.jv.setLabel("left", "current density (mA/cm²)")
        self.jv.showGrid(x=True, y=True, alpha=0.2)
        self.jv.addLegend(offset=(-10, 10), labelTextColor="k")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.graphs, 1)
        self._reading = False
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.reload)
        self._timer.start(int(REFRESH_S * 1000))
        self.reload()

    def reload(self) -> None:
        if self._reading:
            return
        self._reading = True
        path, channel = self.path, self.channel
        run_in_thread(lambda: read_channel_detail(path, channel), self._show, self._failed, owner=self)

    def _failed(self, exc: BaseException) -> None:
        self._reading = False
        self.status.setText(f"cannot read {self.path.name}: {exc}")

    def _show(self, data: ChannelDetailData) -> None:
        self._reading = False
        self.data = data
        for column, plot in self.time_plots.items():
            plot.clear()
            if column not in data.columns:
                plot.setTitle(f"{column}: not recorded", color="#777")
                continue
            low, high, mean = data.columns[column]
            unit = data.units.get(column, "")
            plot.setTitle(None)
            plot.setLabel("left", AXIS_NAMES.get(column, column), units=unit)
            band_low = plot.plot(data.hours, low, pen=pg.mkPen("#90caf9", width=1))
            band_high = plot.plot(data.hours, high, pen=pg.mkPen("#90caf9", width=1))
            plot.addItem(pg.FillBetweenItem(band_low, band_high, brush=pg.mkBrush(144, 202, 249, 90)))
            plot.plot(data.hours, mean, pen=pg.mkPen("#0d47a1", width=1))
            for hours, kind, message in data.events:
                line = pg.InfiniteLine(hours, angle=90, pen=pg.mkPen(_EVENT_COLOURS.get(kind, "#777"),
                                                                     style=Qt.PenStyle.DashLine))
                line.setToolTip(f"{kind}: {message}")
                plot.addItem(line)
        self.jv.clear()
        if self.jv.legend is not None:
            self.jv.legend.clear()
        ages = [h for _, h, _, _, _ in data.scans if np.isfinite(h)]
        oldest, newest = (min(ages), max(ages)) if ages else (0.0, 1.0)
        colours = pg.colormap.get("viridis")
        for name, hours, direction, v, j in data.scans:
            share = 0.0 if newest <= oldest or not np.isfinite(hours) else (hours - oldest) / (newest - oldest)
            colour = colours.map(0.85 * share, mode="qcolor")
            style = Qt.PenStyle.SolidLine if direction == "RS" else Qt.PenStyle.DashLine
            self.jv.plot(v, j, pen=pg.mkPen(colour, width=1.5, style=style),
                         name=f"{hours:.0f} h {direction}" if np.isfinite(hours) else name)
        shown = data.hours[-1] if data.hours.size else 0.0
        self.status.setText(f"channel {data.channel}: {shown:.1f} h tracked, {len(data.scans)} J–V scans shown, "
                            f"{len(data.events)} events marked — read from {self.path.name}; again every "
                            f"{REFRESH_S:.0f} s")


_EVENT_COLOURS = {"channel_suspended": "#f9a825", "channel_resumed": "#2e7d32", "channel_lost": "#c62828",
                  "channel_failed": "#c62828", "channel_gap": "#6a1b9a", "channel_completed": "#1565c0"}
