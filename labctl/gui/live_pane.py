"""The live view of the running run: what each procedure's user wants to watch while it measures.

- **J–V**: every scan as it is measured (current density against voltage, one colour per scan, named by its
  block; the run browser shows a finished file with directions and rates);
- **MPPT**: the PCE of every channel against hours since the start, or normalised by each channel's PCE₀ (a
  :class:`LivePlot`: min/max per pixel, raw points when zoomed in, old hours from the run file);
- **Dashboard**: one tile per channel (:class:`AgingDashboard`), whose state follows the channel events
  (a click opens the channel's detail window, :mod:`labctl.gui.channel_detail`);
- **TID**: each temperature's capacitance transient on a log time axis, as it arrives, and the Arrhenius plot of
  their fitted time constants as it grows (:mod:`labctl.gui.live_tid`);
- **Conditions**: temperature and irradiance logs (blocks with ``temperature_K`` or ``irradiance_mW_cm2``)
  against hours since the start.

Engine messages reach :meth:`LivePane.on_engine_events` in batches on the GUI thread; rows only go into a
:class:`LiveFeed` there, which hands them back gathered four times a second, so a run with 64 channels never
makes the window redraw more often than that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6 import sip
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget

from labctl.gui.channel_detail import ChannelDetail
from labctl.gui.dashboard import EVENT_STATES, AgingDashboard
from labctl.gui.live_feed import LiveFeed
from labctl.gui.live_plot import PALETTE, LivePlot
from labctl.gui.live_tid import TIDLive
from labctl.gui.tasks import run_in_thread, run_in_thread_retrying
from labctl.reports.mppt import TRACKED_PHASES

#: Scans kept on the live J–V plot (older ones stay in the file and the run browser).
JV_SCANS_SHOWN = 24
#: What the MPPT plot shows.
NORMALISED = "PCE / PCE₀ (normalised)"
MPPT_QUANTITIES = ("PCE (%)", NORMALISED)
#: Bins of history read from the run file per channel when a window attaches mid-run.
HISTORY_BINS = 2048
#: Channel states of the status file beside the data, as the dashboard names them.
STATUS_STATES = {"tracking": "tracking", "done": "done", "suspended": "suspended", "lost": "lost"}


def tracked(columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The readings that count as tracked PCE, as `labctl analyze` takes them (phases explore, dwell and
    settle, with power delivered): the check-up scans and dark phases would draw spikes to zero."""
    t, pce = columns["time_s"], columns["pce_pct"]
    keep = np.ones(t.size, dtype=bool)
    if "phase" in columns and columns["phase"].size == t.size:
        keep &= np.isin(columns["phase"], TRACKED_PHASES)
    if "power_mW_cm2" in columns and columns["power_mW_cm2"].size == t.size:
        keep &= columns["power_mW_cm2"] > 0
    return t[keep], pce[keep]


def read_mppt_history(path: Path) -> dict[str, Any]:
    """Per MPPT channel, (bin centres, min, max, mean) of its PCE from the file's summary, and the status
    file's channel entries (what each channel was doing at the last write)."""
    import json

    from labctl.store import RunReader

    channels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    with RunReader(path) as reader:
        for name in reader.block_names():
            if not name.startswith("mppt_"):
                continue
            if reader.info(name).n_rows == 0:
                continue
            found = reader.decimate(name, bins=HISTORY_BINS, columns=["pce_pct"], time_column="time_s")
            filled = np.asarray(found.count) > 0
            channels[name.removeprefix("mppt_")] = (found.centers_s[filled], found.min["pce_pct"][filled],
                                                    found.max["pce_pct"][filled], found.mean["pce_pct"][filled])
    status: dict[str, Any] = {}
    status_path = path.with_suffix(".status.json")
    try:
        status = dict(json.loads(status_path.read_text("utf-8")).get("channels", {}))
    except (OSError, ValueError, AttributeError):
        pass
    return {"channels": channels, "status": status}


def read_scan_attrs(path: Path, block: str) -> dict[str, Any]:
    """A J–V block's attributes (direction, scan rate, pixel); KeyError while the file has no such block."""
    from labctl.store import RunReader

    with RunReader(path) as reader:
        if block not in reader.block_names():
            raise KeyError(block)
        return dict(reader.info(block).attrs)


class LivePane(QTabWidget):
    """See the module docstring."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.feed = LiveFeed()
        self.feed.delivered.connect(self._rows)
        self.item: str | None = None
        self.run_file: Path | None = None
        self._fresh: set[str] = set()
        self._scan_curves: dict[str, pg.PlotDataItem] = {}
        self._scan_data: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}

        self.jv = pg.PlotWidget(background="w")
        self.jv.setLabel("bottom", "voltage", units="V")
        self.jv.setLabel("left", "current density (mA/cm²)")
        self.jv.showGrid(x=True, y=True, alpha=0.2)
        self.jv.addLegend(offset=(-10, 10), labelTextColor="k")
        self.mppt = LivePlot("PCE of every channel", "PCE", "%")
        self.mppt_quantity = QComboBox()
        self.mppt_quantity.addItems(list(MPPT_QUANTITIES))
        self.mppt_quantity.setToolTip("PCE as measured, or over each channel's PCE₀ (the robust value over its "
                                      "first hour of tracking, as `labctl analyze` takes it)")
        self.mppt_quantity.currentTextChanged.connect(lambda _text: self._rescale_mppt())
        mppt_tab = QWidget()
        mppt_layout = QVBoxLayout(mppt_tab)
        mppt_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("show"))
        row.addWidget(self.mppt_quantity)
        row.addStretch(1)
        mppt_layout.addLayout(row)
        mppt_layout.addWidget(self.mppt, 1)
        self.mppt_tab = mppt_tab
        self.dashboard = AgingDashboard([])
        self.dashboard.channel_clicked.connect(self.show_channel)
        self.dashboard.metrics_updated.connect(self._rescale_mppt)
        self.details: dict[tuple[Path, str], ChannelDetail] = {}
        self.tid = TIDLive()
        self.temperature = LivePlot("Temperature", "temperature", "K")
        self.irradiance = LivePlot("Irradiance", "irradiance", "mW/cm²")
        self.conditions = QSplitter(Qt.Orientation.Vertical)
        self.conditions.addWidget(self.temperature)
        self.conditions.addWidget(self.irradiance)
        self.dashboard_tab = self._padded(self.dashboard)
        for widget, title in ((self.jv, "J–V"), (self.mppt_tab, "MPPT"), (self.dashboard_tab, "Dashboard"),
                              (self.tid, "TID"), (self.conditions, "Conditions")):
            self.addTab(widget, title)

    @staticmethod
    def _padded(widget: QWidget) -> QWidget:
        """The dashboard in a scroll area: 64 tiles keep a readable size and scroll."""
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.addWidget(widget)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(holder)
        return scroll

    # ------------------------------------------------------------------------------------ engine side
    def on_engine_events(self, batch: list[dict[str, Any]]) -> None:
        """A batch of engine messages (the bridge's ``events`` signal)."""
        for message in batch:
            kind = message.get("event")
            if kind == "run_started":
                self.start_run(str(message.get("item", "")), message.get("procedure", ""), message.get("file"))
            elif kind == "data" and message.get("item") == self.item:
                self.feed.put(str(message["block"]), message.get("columns") or {})
            elif kind == "record" and message.get("item") == self.item:
                data = message.get("data") or {}
                self.on_record(str(message.get("kind", "")), str(data.get("channel", "")),
                               str(message.get("message", "")), data)

    def start_run(self, item: str, procedure: str, file: str | None) -> None:
        """A new run: clear the plots and show the tab of its procedure."""
        self.feed.drain()
        self.item = item
        self.run_file = Path(file) if file else None
        self._fresh = {"jv", "tid", "mppt", "conditions"}  # the last run's curves stay until this run's rows come
        self.tid.run_file = self.run_file
        if self.run_file is not None:
            self.mppt.use_run_file(self.run_file, lambda channel: f"mppt_{channel}", "pce_pct")
        tab = {"jv": 0, "mppt": 1, "tid": 3}.get(procedure)
        if tab is not None:
            self.setCurrentIndex(tab)

    def attach_running(self, run: dict[str, Any] | None) -> None:
        """A window opened on a run already under way (the engine's status ``run``): follow it, and fill the
        MPPT plot and the dashboard with its history from the run file's summary, read off the GUI thread."""
        if not run or not run.get("item"):
            return
        self.start_run(str(run["item"]), str(run.get("procedure", "")), run.get("file"))
        if self.run_file is not None and run.get("procedure") == "mppt":
            self._clear_if_fresh("mppt")
            path = self.run_file
            run_in_thread(lambda: read_mppt_history(path), self._history, lambda _exc: None, owner=self)

    def _history(self, history: dict[str, Any]) -> None:
        for channel, (t, low, high, mean) in history.get("channels", {}).items():
            if t.size == 0:
                continue
            series = self.mppt.series_for(channel)
            series.seed(t, low, high, float(mean[-1]))
            tile = self.dashboard.add_channel(channel)
            tile.series.seed(t, mean, mean, float(mean[-1]))
            if tile.state == "waiting":
                tile.state = "tracking"
            tile.refresh()
        for channel, entry in history.get("status", {}).items():
            state = STATUS_STATES.get(str(entry.get("state", "")))
            if state is not None:
                self.dashboard.add_channel(channel).set_state(state)
        self.mppt.redraw()

    def show_channel(self, channel: str) -> ChannelDetail | None:
        """A channel's detail window (a click on its tile): its plots from the run file, read again while open."""
        if self.run_file is None:
            return None
        key = (self.run_file, channel)
        window = self.details.get(key)
        if window is None or sip.isdeleted(window) or not window.isVisible():
            window = self.details[key] = ChannelDetail(self.run_file, channel)
            window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            window.show()
        window.raise_()
        window.activateWindow()
        return window

    def on_record(self, kind: str, channel: str, message: str, data: dict[str, Any]) -> None:
        if channel and kind in EVENT_STATES:
            self._clear_if_fresh("mppt")  # a channel event of this run: the last run's tiles go
            self.dashboard.on_event(kind, channel, message)

    # ------------------------------------------------------------------------------------ rows
    def _rows(self, batch: dict[str, dict[str, np.ndarray]]) -> None:
        for block, columns in batch.items():
            if block.startswith("mppt_") and "pce_pct" in columns and "time_s" in columns:
                self._clear_if_fresh("mppt")
                channel = block.removeprefix("mppt_")
                t, pce = tracked(columns)
                self.mppt.add_points(channel, t, pce)
                self.dashboard.add_points(channel, t, pce)
            elif block.startswith("scan_") and "voltage_V" in columns and "current_density_mA_cm2" in columns:
                self._scan_rows(block, columns["voltage_V"], columns["current_density_mA_cm2"])
            elif "capacitance_F" in columns and "time_s" in columns:
                self._clear_if_fresh("tid")
                self.tid.add_rows(block, columns["time_s"], columns["capacitance_F"])
            elif "time_s" in columns and ({"temperature_K", "irradiance_mW_cm2"} & set(columns)):
                self._clear_if_fresh("conditions")
                for column, plot in (("temperature_K", self.temperature), ("irradiance_mW_cm2", self.irradiance)):
                    if column in columns and columns[column].size == columns["time_s"].size:
                        plot.add_points(block, columns["time_s"], columns[column])

    def _clear_if_fresh(self, plot: str) -> None:
        if plot not in self._fresh:
            return
        self._fresh.discard(plot)
        if plot == "mppt":
            self.mppt.clear()
            self.dashboard.clear()
        elif plot == "jv":
            self.jv.clear()
            self._scan_curves.clear()
            self._scan_data.clear()
        elif plot == "conditions":
            self.temperature.clear()
            self.irradiance.clear()
        else:
            self.tid.clear()

    def _rescale_mppt(self) -> None:
        """The MPPT plot in the chosen quantity: PCE, or PCE over each channel's PCE₀ (from the dashboard)."""
        if self.mppt_quantity.currentText() == NORMALISED:
            factors = {name: 1.0 / tile.pce0_pct for name, tile in self.dashboard.tiles.items()
                       if tile.pce0_pct is not None and tile.pce0_pct > 0}
            self.mppt.set_scale(factors, "PCE / PCE₀")
        else:
            self.mppt.set_scale({}, "PCE", "%")

    def _scan_rows(self, block: str, v: np.ndarray, j: np.ndarray) -> None:
        self._clear_if_fresh("jv")
        new = block not in self._scan_curves
        x, y = _grow(self._scan_data, self._scan_curves, self.jv, JV_SCANS_SHOWN, block, v, j)
        self._scan_curves[block].setData(x, y)
        if new and self.run_file is not None:
            # Named by pixel, direction and rate: its block's attributes, in the file within a flush cycle (the
            # engine's data messages carry rows only); asked again a second later if the block is not there yet.
            path = self.run_file
            run_in_thread_retrying(lambda: read_scan_attrs(path, block), lambda attrs: self._label_scan(block, attrs),
                                   tries=3, delay_ms=1000, wanted=lambda: block in self._scan_curves, owner=self)

    def _label_scan(self, block: str, attrs: dict[str, Any]) -> None:
        curve = self._scan_curves.get(block)
        legend = self.jv.getPlotItem().legend
        if curve is None or legend is None:
            return
        direction = str(attrs.get("direction", ""))
        rate = attrs.get("scan_rate_V_s")
        label = " ".join(part for part in (str(attrs.get("pixel", "")), direction,
                                           f"{float(rate):g} V/s" if isinstance(rate, int | float) else "") if part)
        # one colour per rate, the reverse scan solid and the forward one dashed, as the report draws them
        colour = PALETTE[int(attrs.get("rate_index", 0) or 0) % len(PALETTE)]
        style = Qt.PenStyle.DashLine if direction == "FS" else Qt.PenStyle.SolidLine
        curve.setPen(pg.mkPen(colour, width=1.5, style=style))
        found = legend.getLabel(curve)
        if found is not None and label:
            found.setText(f"{label} ({block})")


def _grow(data: dict[str, tuple[list[np.ndarray], list[np.ndarray]]], curves: dict[str, pg.PlotDataItem],
          plot: pg.PlotWidget, shown: int, block: str, x: np.ndarray, y: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """Add a block's rows to its curve's data (a new curve for a new block, the oldest dropped beyond
    ``shown``); the block's data so far."""
    parts = data.setdefault(block, ([], []))
    parts[0].append(x)
    parts[1].append(y)
    if block not in curves:
        if len(curves) >= shown:
            oldest = next(iter(curves))
            plot.removeItem(curves.pop(oldest))
            data.pop(oldest, None)
        colour = PALETTE[len(curves) % len(PALETTE)]
        curves[block] = plot.plot([], [], pen=pg.mkPen(colour, width=1), name=block)
    return np.concatenate(parts[0]), np.concatenate(parts[1])
