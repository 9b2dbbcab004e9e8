"""The main window: the station and the procedure form on the left; the queue with the running run, the live
plots, the run browser, the alarms and the events on the right. It attaches to the station's engine through an
:class:`~labctl.gui.bridge.EngineBridge`; closing it lets go of the engine, which goes on with its runs."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QAction, QCloseEvent
from PyQt6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from labctl.gui.alarms_view import AlarmsView
from labctl.gui.bridge import EngineBridge, Target
from labctl.gui.browser import RunBrowser
from labctl.gui.events_pane import EventsPane
from labctl.gui.live_pane import LivePane
from labctl.gui.procedure_panel import ProcedurePanel
from labctl.gui.queue_panel import QueuePanel
from labctl.gui.settings import GuiSettings
from labctl.gui.station_panel import StationPanel
from labctl.gui.tasks import wait_for_tasks

STATUS_PERIOD_MS = 2000
DEFAULT_SIZE = (1600, 1000)


def _boxed(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(6, 6, 6, 6)
    layout.addWidget(widget)
    return box


class MainWindow(QMainWindow):
    def __init__(self, settings: GuiSettings, bridge: EngineBridge | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.bridge = bridge or EngineBridge(self)
        self.station: Any = None
        self.setWindowTitle("labctl")
        self.station_panel = StationPanel()
        self.procedure_panel = ProcedurePanel(self.bridge)
        self.queue_panel = QueuePanel(self.bridge)
        self.browser = RunBrowser()
        self.events_pane = EventsPane()
        self.live = LivePane()
        self.alarms = AlarmsView(self.bridge.call, operator=getpass.getuser())
        self.views = QTabWidget()
        self.views.addTab(self.live, "Live")
        self.views.addTab(self.browser, "Run browser")
        self.views.addTab(self.alarms, "Alarms")
        self.alarms.changed.connect(self._alarm_count)
        self.left = QSplitter(Qt.Orientation.Vertical)
        self.left.addWidget(self.station_panel)
        self.left.addWidget(_boxed("Procedure", self.procedure_panel))
        self.left.setSizes([300, 700])
        self.right = QSplitter(Qt.Orientation.Vertical)
        self.right.addWidget(self.queue_panel)
        self.right.addWidget(self.views)
        self.right.addWidget(_boxed("Events and alarms", self.events_pane))
        self.right.setSizes([330, 480, 190])
        self.main = QSplitter(Qt.Orientation.Horizontal)
        self.main.addWidget(self.left)
        self.main.addWidget(self.right)
        self.main.setSizes([600, 1000])
        self.setCentralWidget(self.main)
        self.link = QLabel()
        self.reconnect_button = QPushButton("Reconnect")
        self.reconnect_button.clicked.connect(self.reconnect)
        status_bar = self.statusBar()
        assert status_bar is not None
        status_bar.addPermanentWidget(self.link, 1)
        status_bar.addPermanentWidget(self.reconnect_button)
        self._menus()
        self._set_link("not attached", ok=None)
        self.bridge.attached.connect(self._attached)
        self.bridge.attach_failed.connect(self._attach_failed)
        self.bridge.detached.connect(self._detached)
        self.bridge.progress.connect(lambda text: self.events_pane.add("window", text, "engine"))
        self.bridge.request_failed.connect(
            lambda op, message: self.events_pane.add(f"refused: {op}", message, "error"))
        self.bridge.events.connect(self._on_events)
        self.station_panel.identify_button.clicked.connect(self.identify_instruments)
        self.queue_panel.edit_requested.connect(self.procedure_panel.begin_edit)
        self.queue_panel.open_file.connect(self.browser.open)
        self.queue_panel.history_loaded.connect(self._history_loaded)
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(STATUS_PERIOD_MS)
        self._status_timer.timeout.connect(self._poll_status)
        self._restore()

    def _menus(self) -> None:
        menu_bar = self.menuBar()
        assert menu_bar is not None
        file_menu = menu_bar.addMenu("&File")
        assert file_menu is not None
        for text, slot in (("Open run file…", self.browser.choose_file), ("Attach to station…", self.choose_station),
                           ("Quit (the engine goes on)", self.close)):
            action = QAction(text, self)
            action.triggered.connect(slot)
            file_menu.addAction(action)

    # ------------------------------------------------------------------------------- attaching
    def attach(self, target: Target) -> None:
        self._set_link(f"attaching to the engine of station {target.station} …", ok=None)
        self.bridge.attach(target)

    def reconnect(self) -> None:
        if self.bridge.target is not None:
            self.attach(self.bridge.target)

    def choose_station(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Station file", "", "station files (*.toml)")
        if path:
            self.attach(Target(path, self.settings.data_dir))

    def _attached(self, station: Any, snapshot: dict[str, Any]) -> None:
        status = dict(snapshot.get("status") or {})
        self.station = station
        assert self.bridge.target is not None
        self.settings.last_station = self.bridge.target.station
        self.setWindowTitle(f"labctl — station {station.name}")
        self._set_link(f"attached to the engine of station {station.name} (pid {status.get('pid')}, "
                       f"{status.get('address')})", ok=True)
        self.station_panel.set_station(station)
        self.station_panel.show_status(status)
        self.procedure_panel.set_station(station)
        self.browser.default_dir = str(status.get("data_dir") or "")
        self.queue_panel.current.show_run(status.get("run"))
        self.queue_panel.refresh()
        self.live.dashboard.set_order(list(station.samples))
        if station.holder_rows:
            self.live.dashboard.set_holder(station.holder_rows)
        self.live.attach_running(status.get("run"))
        self.alarms.refresh()
        self.events_pane.add("window", f"attached to engine pid {status.get('pid')} of station {station.name}",
                             "engine")
        for run in snapshot.get("runs") or []:  # what happened before this window attached
            self.events_pane.on_events(list(run.get("recent") or []))
        self._status_timer.start()

    def _attach_failed(self, message: str) -> None:
        self._set_link(f"cannot attach: {message}", ok=False)
        self.events_pane.add("window", f"cannot attach: {message}", "error")

    def _detached(self, reason: str) -> None:
        self._status_timer.stop()
        self._set_link(f"engine link lost: {reason}", ok=False)
        self.events_pane.add("window", f"engine link lost: {reason}", "error")

    def _set_link(self, text: str, ok: bool | None) -> None:
        colour = {True: "#2e7d32", False: "#c62828", None: "#555555"}[ok]
        self.link.setText(f"<span style='color:{colour}'>● {text}</span>")
        self.reconnect_button.setVisible(ok is False)

    def identify_instruments(self) -> None:
        """Ask the engine to connect every instrument and identify it (off the GUI thread, as every request)."""
        self.station_panel.identify_button.setEnabled(False)
        self.events_pane.add("window", "connecting and identifying the station's instruments …", "engine")

        def failed(exc: Any) -> None:
            self.station_panel.identify_button.setEnabled(True)
            self.events_pane.add("refused: identify", str(exc), "error")

        self.bridge.call("identify", on_done=self.station_panel.show_identified, on_error=failed)

    def _poll_status(self) -> None:
        self.bridge.call("status", on_done=self.station_panel.show_status, on_error=lambda _exc: None)

    # ---------------------------------------------------------------------------------- events
    def _alarm_count(self, open_alarms: int) -> None:
        index = self.views.indexOf(self.alarms)
        self.views.setTabText(index, f"Alarms ({open_alarms})" if open_alarms else "Alarms")

    def _on_events(self, batch: list[dict[str, Any]]) -> None:
        self.live.on_engine_events(batch)
        self.alarms.on_engine_events(batch)
        self.queue_panel.on_events(batch)
        self.station_panel.on_events(batch)
        self.events_pane.on_events(batch)
        for message in batch:
            if message.get("event") == "run_ended" and message.get("file") and self.browser.follow.isChecked():
                self.browser.open(str(message["file"]))  # the finished run, ready to look at

    def _history_loaded(self, entries: list[dict[str, Any]]) -> None:
        files = [e.get("file") for e in entries if e.get("file")]
        if files and not self.station_panel.identities:
            self.station_panel.identify(str(files[-1]))
        if files and self.browser.path is None and Path(str(files[-1])).is_file():
            self.browser.open(str(files[-1]))

    # ---------------------------------------------------------------------------------- settings
    def _restore(self) -> None:
        geometry = self.settings.bytes("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(*DEFAULT_SIZE)
        for name, splitter in (("main", self.main), ("left", self.left), ("right", self.right)):
            state = self.settings.bytes(f"window/{name}")
            if state is not None:
                splitter.restoreState(state)

    def save_settings(self) -> None:
        self.settings.set_bytes("window/geometry", self.saveGeometry())
        for name, splitter in (("main", self.main), ("left", self.left), ("right", self.right)):
            self.settings.set_bytes(f"window/{name}", splitter.saveState())
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent | None) -> None:
        """Remember the window, let go of the engine (its runs go on), finish the file reads under way."""
        self._status_timer.stop()
        self.save_settings()
        self.bridge.close()
        wait_for_tasks()
        if event is not None:
            event.accept()
