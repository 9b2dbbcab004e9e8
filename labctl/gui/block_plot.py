"""A pyqtgraph plot of one or more blocks of a run file: choose the x and y columns (the block's NeXus axes
and signal by default), axis labels with units, one colour per block and a legend."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from labctl.gui.run_file import BlockRows

pg.setConfigOptions(antialias=True, background="w", foreground="k")

#: Distinguishable on white (Okabe–Ito, without yellow), in order.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#000000"]


def axis_label(column: str, unit: str) -> str:
    return f"{column} ({unit})" if unit else column


class BlockPlot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.blocks: list[BlockRows] = []
        self.plot = pg.PlotWidget()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.addLegend(offset=(10, -10))  # bottom left: empty on a J–V in the power quadrant
        self.x_choice, self.y_choice = QComboBox(), QComboBox()
        for choice in (self.x_choice, self.y_choice):
            choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.x_choice.currentIndexChanged.connect(lambda _i: self.redraw())
        self.y_choice.currentIndexChanged.connect(lambda _i: self.redraw())
        self.note = QLabel()
        row = QHBoxLayout()
        row.addWidget(QLabel("x"))
        row.addWidget(self.x_choice)
        row.addWidget(QLabel("y"))
        row.addWidget(self.y_choice)
        row.addWidget(self.note, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.plot, 1)

    def show_blocks(self, blocks: list[BlockRows], x: str = "", y: str = "") -> None:
        """Plot these blocks with columns ``x`` and ``y`` (kept from before when the blocks have them)."""
        self.blocks = blocks
        columns = list(dict.fromkeys(c for b in blocks for c in b.columns))
        x = x if x in columns else self.x_choice.currentText() if self.x_choice.currentText() in columns else ""
        y = y if y in columns else self.y_choice.currentText() if self.y_choice.currentText() in columns else ""
        for choice, value, fallback in ((self.x_choice, x, 0), (self.y_choice, y, 1)):
            choice.blockSignals(True)
            choice.clear()
            choice.addItems(columns)
            choice.setCurrentIndex(columns.index(value) if value else min(fallback, len(columns) - 1))
            choice.blockSignals(False)
        self.redraw()

    def redraw(self) -> None:
        self.plot.clear()
        x, y = self.x_choice.currentText(), self.y_choice.currentText()
        if not (x and y):
            return
        units = next((b.units for b in self.blocks if x in b.columns), {})
        y_units = next((b.units for b in self.blocks if y in b.columns), {})
        self.plot.setLabel("bottom", axis_label(x, units.get(x, "")))
        self.plot.setLabel("left", axis_label(y, y_units.get(y, "")))
        points = 0
        for index, block in enumerate(self.blocks):
            if x not in block.columns or y not in block.columns:
                continue
            pen = pg.mkPen(PALETTE[index % len(PALETTE)], width=2)
            xs, ys = np.asarray(block.columns[x], float), np.asarray(block.columns[y], float)
            self.plot.plot(xs, ys, pen=pen, name=block.label + (" (binned)" if block.decimated else ""))
            points += len(xs)
        self.note.setText(f"{len(self.blocks)} block(s), {points} points")
