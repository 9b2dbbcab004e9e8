"""The run browser: open any labctl run file (finished, still being written, or of format 1), see its
metadata, events and blocks, plot blocks, run the procedure's analysis and export CSV. Every file access runs
in a worker thread (:func:`labctl.gui.tasks.run_in_thread`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QVBoxLayout,
    QWidget,
)

from labctl.gui import run_file
from labctl.gui.block_plot import BlockPlot
from labctl.gui.formatting import local_time
from labctl.gui.metrics_view import MetricsView, fill_tree
from labctl.gui.tasks import run_in_thread

#: Blocks plotted together when a file is opened (all of a J–V's scans; the first few of a long run).
FIRST_PLOTTED = 8


class RunBrowser(QWidget):
    """``loaded`` after a file is read, ``plotted`` after blocks are drawn, ``failed(message)``."""

    loaded = pyqtSignal()
    plotted = pyqtSignal()
    analysed = pyqtSignal()
    exported = pyqtSignal(list)
    failed = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.summary: run_file.FileSummary | None = None
        self.default_dir = ""
        self.heading = QLabel("Open a run file (.h5) — or double-click a run in the history")
        self.heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.heading.setWordWrap(True)
        buttons = QHBoxLayout()
        for label, slot, tip in (
                ("Open…", self.choose_file, "Open a labctl HDF5 run file"),
                ("Reload", self.reload, "Read the file again (a run still writing it has added rows)"),
                ("Analyse", self.analyse, "Run the procedure's analysis (as labctl analyze)"),
                ("Export CSV…", self.choose_export, "One CSV per block, with units and metadata")):
            button = QPushButton(label)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        self.follow = QCheckBox("show finished runs")
        self.follow.setChecked(True)
        self.follow.setToolTip("Open each run that finishes while the window is open (untick to keep the file you "
                               "are looking at)")
        buttons.addWidget(self.follow)
        buttons.addWidget(self.heading, 1)
        self.blocks = QListWidget()
        self.blocks.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.blocks.itemSelectionChanged.connect(self._plot_selected)
        self.blocks.setToolTip("Select one or more blocks to plot them (Ctrl/Shift for several)")
        self.metadata = QTreeWidget()
        self.metadata.setHeaderLabels(["key", "value"])
        self.events = QTableWidget(0, 4)
        self.events.setHorizontalHeaderLabels(["time", "kind", "channel", "message"])
        self.events.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.events.verticalHeader().setVisible(False)  # type: ignore[union-attr]
        self.events.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # type: ignore[union-attr]
        self.events.horizontalHeader().setStretchLastSection(True)  # type: ignore[union-attr]
        self.metrics = MetricsView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.blocks, "Blocks")
        self.tabs.addTab(self.metrics, "Analysis")
        self.tabs.addTab(self.metadata, "Metadata")
        self.tabs.addTab(self.events, "Events")
        self.plot = BlockPlot()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tabs)
        split.addWidget(self.plot)
        split.setSizes([480, 520])
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(split, 1)

    # ------------------------------------------------------------------------------------ files
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a run file", self.default_dir,
                                              "labctl run files (*.h5 *.hdf5 *.nxs);;all files (*)")
        if path:
            self.open(path)

    def open(self, path: str | Path) -> None:
        """Read a run file (in a worker thread); ``loaded`` when it is shown."""
        self.path = Path(path)
        self.heading.setText(f"reading {self.path} …")
        run_in_thread(lambda: run_file.read_summary(path), self._show_summary, self._fail, self)

    def reload(self) -> None:
        if self.path is not None:
            self.open(self.path)

    def _fail(self, exc: Exception) -> None:
        self.heading.setText(f"<span style='color:#c62828'><b>{exc}</b></span>")
        self.failed.emit(str(exc))

    def _show_summary(self, summary: run_file.FileSummary) -> None:
        self.summary = summary
        self.heading.setText(f"<b>{summary.path.name}</b> · {summary.procedure} · {summary.status} · "
                             f"format {summary.format_version} · {len(summary.blocks)} blocks, "
                             f"{len(summary.events)} events")
        self.heading.setToolTip(str(summary.path))
        self.metadata.clear()
        fill_tree(self.metadata, summary.metadata)
        self.metadata.resizeColumnToContents(0)
        self.events.setRowCount(len(summary.events))
        for row, (time_s, kind, channel, message) in enumerate(summary.events):
            for column, text in enumerate([local_time(time_s), kind, channel, message]):
                self.events.setItem(row, column, QTableWidgetItem(text))
        if summary.analysis:
            procedure = summary.procedure
            self.metrics.show_metrics(dict(summary.analysis.get(procedure) or summary.analysis),
                                      f"stored analysis of {summary.path.name}")
        self.blocks.blockSignals(True)
        self.blocks.clear()
        for block in summary.blocks:
            item = QListWidgetItem(f"{block.label}   ({block.n_rows} rows, {block.kind})")
            item.setData(Qt.ItemDataRole.UserRole, block.name)
            self.blocks.addItem(item)
        data_rows = [i for i, b in enumerate(summary.blocks) if b.kind == "data"] or list(range(len(summary.blocks)))
        for index in data_rows[:FIRST_PLOTTED]:
            shown = self.blocks.item(index)
            if shown is not None:
                shown.setSelected(True)
        self.blocks.blockSignals(False)
        self.loaded.emit()
        self._plot_selected()

    # ------------------------------------------------------------------------------------ plots
    def selected_blocks(self) -> list[str]:
        return [str(item.data(Qt.ItemDataRole.UserRole)) for item in self.blocks.selectedItems()]

    def _plot_selected(self) -> None:
        names, path, summary = self.selected_blocks(), self.path, self.summary
        if not names or path is None or summary is None:
            return
        first = next(b for b in summary.blocks if b.name == names[0])

        def done(blocks: list[run_file.BlockRows]) -> None:
            self.plot.show_blocks(blocks, first.axes.split(",")[0].strip(), first.signal)
            self.plotted.emit()

        run_in_thread(lambda: run_file.read_blocks(path, names), done, self._fail, self)

    # --------------------------------------------------------------------------------- analysis
    def analyse(self) -> None:
        path = self.path
        if path is None:
            return
        self.metrics.title.setText(f"analysing {path.name} …")

        def done(result: dict[str, Any]) -> None:
            metrics = {k: v for k, v in result.items() if k not in {"summary"}}
            self.metrics.show_metrics(metrics, f"analysis of {path.name}" + (
                f" — {result['note']}" if result.get("note") else ""))
            self.tabs.setCurrentWidget(self.metrics)
            self.analysed.emit()

        run_in_thread(lambda: run_file.analyze(path), done, self._fail, self)

    def choose_export(self) -> None:
        if self.path is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Export the blocks as CSV into", str(self.path.parent))
        if folder:
            self.export(folder)

    def export(self, folder: str | Path) -> None:
        path = self.path
        if path is None:
            return

        def done(written: list[Path]) -> None:
            self.heading.setText(f"{len(written)} CSV file(s) written to {folder}")
            self.exported.emit([str(p) for p in written])

        run_in_thread(lambda: run_file.export_csv(path, folder), done, self._fail, self)
