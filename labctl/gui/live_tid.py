"""The live TID view: each temperature's capacitance transient as it arrives, and the Arrhenius plot as it grows.

A transient's rows come from the engine; its temperature (the mean reading during the capture) and its
integration window are block attributes, in the run file within a flush cycle. Once a transient is complete,
a worker thread reads those from the file and fits it as `labctl analyze` does
(:func:`labctl.analysis.tid.fit_transient`), and each resolved component becomes a point of the Arrhenius plot:
ln(T/τ) against 1000/T — the convention of the TID report, where a straight line's slope is −Ea/k
(T in K, τ in s; faster ions at higher T sit higher). Anions and cations get their own colours.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from labctl.gui.live_plot import PALETTE
from labctl.gui.tasks import run_in_thread_retrying

#: Transients kept on the live TID plot.
TRANSIENTS_SHOWN = 16
#: Seconds after a transient's last rows before its fit is asked (the file has it within a flush cycle).
FIT_AFTER_MS = 1500
SPECIES_COLOURS = {"anion": "#1565c0", "cation": "#c62828"}


def fit_block(path: Path, block: str) -> dict[str, Any]:
    """(temperature, resolved time constants) of one TID block of a run file; KeyError while it is not there."""
    from labctl.analysis.tid import fit_transient
    from labctl.store import RunReader

    with RunReader(path) as reader:
        if block not in reader.block_names():
            raise KeyError(block)
        data = reader.block(block)
        attrs = data.attrs
        temperature_K = float(attrs.get("temperature_K", attrs.get("setpoint_K", math.nan)))
        fit = fit_transient(data["time_s"], data["capacitance_F"],
                            integration_s=float(attrs.get("integration_s", 0.0) or 0.0))
    return {"temperature_K": temperature_K,
            "components": [(c.species, c.tau_s) for c in fit.components if c.resolved and c.tau_s > 0]}


class TIDLive(QWidget):
    """Transients on a log time axis beside the Arrhenius plot of their fitted time constants."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_file: Path | None = None
        self.transients = pg.PlotWidget(background="w")
        self.transients.setLogMode(x=True, y=False)
        self.transients.setLabel("bottom", "time after the pulse (s)")
        self.transients.setLabel("left", "capacitance (F)")
        self.transients.showGrid(x=True, y=True, alpha=0.2)
        self.transients.addLegend(offset=(-10, 10), labelTextColor="k")
        self.arrhenius = pg.PlotWidget(background="w")
        self.arrhenius.setLabel("bottom", "1000/T (1/K)")
        self.arrhenius.setLabel("left", "ln(T/τ) (T in K, τ in s)")
        self.arrhenius.showGrid(x=True, y=True, alpha=0.2)
        self.arrhenius.addLegend(offset=(-10, 10), labelTextColor="k")
        self.points: dict[str, list[tuple[float, float, str]]] = {}  # block -> (1000/T, ln(T/τ), species)
        self._scatter: dict[str, pg.ScatterPlotItem] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._data: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self._timers: dict[str, QTimer] = {}
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.transients)
        splitter.addWidget(self.arrhenius)
        splitter.setSizes([600, 400])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    def clear(self) -> None:
        self.transients.clear()
        self.arrhenius.clear()
        for timer in self._timers.values():
            timer.stop()
        self._timers.clear()
        self._curves.clear()
        self._data.clear()
        self._scatter.clear()
        self.points.clear()

    def add_rows(self, block: str, time_s: np.ndarray, capacitance_F: np.ndarray) -> None:
        parts = self._data.setdefault(block, ([], []))
        parts[0].append(np.asarray(time_s, dtype=float))
        parts[1].append(np.asarray(capacitance_F, dtype=float))
        if block not in self._curves:
            if len(self._curves) >= TRANSIENTS_SHOWN:
                oldest = next(iter(self._curves))
                self.transients.removeItem(self._curves.pop(oldest))
                self._data.pop(oldest, None)
            colour = PALETTE[len(self.points) % len(PALETTE)]
            self._curves[block] = self.transients.plot([], [], pen=pg.mkPen(colour, width=1), name=block)
        t, c = np.concatenate(parts[0]), np.concatenate(parts[1])
        shown = t > 0  # a log axis
        self._curves[block].setData(t[shown], c[shown])
        if self.run_file is not None and block not in self.points:
            timer = self._timers.get(block)
            if timer is None:  # fit once the transient's rows stop coming (restarted by each batch)
                timer = self._timers[block] = QTimer(self)
                timer.setSingleShot(True)
                timer.timeout.connect(lambda b=block: self._ask_fit(b))
            timer.start(FIT_AFTER_MS)

    def _ask_fit(self, block: str) -> None:
        path = self.run_file
        if path is None:
            return
        run_in_thread_retrying(lambda: fit_block(path, block), lambda found: self._fitted(block, found), tries=3,
                               delay_ms=FIT_AFTER_MS, wanted=lambda: self.run_file == path, owner=self)

    def _fitted(self, block: str, found: dict[str, Any]) -> None:
        temperature_K = float(found["temperature_K"])
        if not temperature_K > 0:
            return
        self.points[block] = [(1000.0 / temperature_K, math.log(temperature_K / tau), species)
                              for species, tau in found["components"]]
        for species in SPECIES_COLOURS:
            xy = [(x, y) for points in self.points.values() for x, y, s in points if s == species]
            if not xy:
                continue
            scatter = self._scatter.get(species)
            if scatter is None:
                scatter = self._scatter[species] = pg.ScatterPlotItem(
                    size=9, brush=pg.mkBrush(SPECIES_COLOURS[species]), pen=None, name=f"{species}s")
                self.arrhenius.addItem(scatter)
            scatter.setData([x for x, _ in xy], [y for _, y in xy])
