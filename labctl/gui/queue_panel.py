"""The engine's queue: the running run (state, progress, ETA; pause, resume, abort), the waiting items (add
from the procedure panel; edit, reorder, remove; start or stop the queue; what to do when a run fails) and the
history of runs with their end states. All of it mirrors the engine (its ``queue`` events and replies): the
panel holds no queue of its own, so another front end's changes show here too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labctl.gui.bridge import EngineBridge
from labctl.gui.formatting import STATE_COLOURS, changed_parameters, duration, local_time

QUEUE_COLUMNS = ["#", "item", "procedure", "state", "operator", "added", "parameters"]
HISTORY_COLUMNS = ["ended", "item", "procedure", "end state", "file", "reason"]
HISTORY_LIMIT = 200


def _table(columns: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)  # type: ignore[union-attr]
    header = table.horizontalHeader()
    assert header is not None
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return table


def _fill_row(table: QTableWidget, row: int, cells: list[str], state: str, uid: str) -> None:
    colour = QColor(STATE_COLOURS.get(state, "#ffffff"))
    for column, text in enumerate(cells):
        item = QTableWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, uid)
        item.setToolTip(text)
        item.setBackground(colour)
        table.setItem(row, column, item)


class CurrentRun(QGroupBox):
    """The running run: what, where it stands, when it should end; its controls."""

    def __init__(self, bridge: EngineBridge) -> None:
        super().__init__("Running")
        self.bridge = bridge
        self.uid: str | None = None
        self.what = QLabel("nothing is running")
        self.what.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setFormat("")
        self.eta = QLabel()
        self.pause_button, self.resume_button = QPushButton("Pause"), QPushButton("Resume")
        self.abort_button = QPushButton("Abort…")
        self.pause_button.setToolTip("Hold the run in its safe state (it waits; resume to go on)")
        self.abort_button.setToolTip("Stop the run through its safe state; the file ends as aborted")
        self.pause_button.clicked.connect(lambda: self.bridge.call("pause", uid=self.uid))
        self.resume_button.clicked.connect(lambda: self.bridge.call("resume", uid=self.uid))
        self.abort_button.clicked.connect(self._ask_abort)
        top = QHBoxLayout()
        top.addWidget(self.what, 1)
        top.addWidget(self.state)
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.eta)
        for button in (self.pause_button, self.resume_button, self.abort_button):
            row.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(row)
        self.show_run(None)

    def show_run(self, run: dict[str, Any] | None) -> None:
        """From the engine's status (``run``) or a watch snapshot."""
        if not run:
            self.uid = None
            self.what.setText("nothing is running")
            self.set_state("")
            self.set_progress(None)
            return
        self.uid = str(run.get("item") or "") or None
        self.what.setText(f"<b>{run.get('procedure', '')}</b> · item {self.uid} · {run.get('file') or ''}")
        self.set_state(str(run.get("status") or "running"))
        self.set_progress(run.get("progress"))

    def set_state(self, state: str) -> None:
        self.state.setText(state)
        self.state.setStyleSheet(f"background: {STATE_COLOURS.get(state, 'transparent')}; padding: 2px 8px;"
                                 "border-radius: 4px; font-weight: bold;")
        running = bool(self.uid) and state not in {"completed", "aborted", "failed", "interrupted"}
        self.pause_button.setEnabled(running and state != "paused")
        self.resume_button.setEnabled(running and state == "paused")
        self.abort_button.setEnabled(running)

    def set_progress(self, progress: dict[str, Any] | None) -> None:
        fraction = float((progress or {}).get("fraction") or 0.0)
        self.bar.setValue(round(1000 * min(max(fraction, 0.0), 1.0)))
        message = str((progress or {}).get("message") or "")
        self.bar.setFormat(f"{100 * fraction:.0f} %  {message}" if progress else "")
        eta = (progress or {}).get("eta_s")
        self.eta.setText(f"ETA {duration(eta)}" if progress else "")

    def _ask_abort(self) -> None:
        reason, ok = QInputDialog.getText(self, "Abort the run", f"Abort item {self.uid}? Reason (recorded):")
        if ok:
            self.abort(reason)

    def abort(self, reason: str = "") -> None:
        self.bridge.call("abort", uid=self.uid, reason=reason or "aborted from the window")


class QueuePanel(QWidget):
    """See the module docstring. ``edit_requested(item)`` asks the procedure panel to load a queued item;
    ``open_file(path)`` the browser to open a run's file."""

    edit_requested = pyqtSignal(object)
    open_file = pyqtSignal(str)
    history_loaded = pyqtSignal(list)

    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.items: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.active = False
        self.current = CurrentRun(bridge)
        self.queue_state = QLabel()
        self.start_button, self.stop_button = QPushButton("Start queue"), QPushButton("Stop queue")
        self.start_button.setToolTip("Run the waiting items in order")
        self.stop_button.setToolTip("Start no further item; the running run goes on")
        self.start_button.clicked.connect(lambda: self.bridge.call("queue_start", on_done=self.show_queue))
        self.stop_button.clicked.connect(lambda: self.bridge.call("queue_stop", on_done=self.show_queue))
        self.policy = QComboBox()
        self.policy.addItem("on failure: stop the queue", "stop")
        self.policy.addItem("on failure: go on", "continue")
        self.policy.activated.connect(lambda _i: self.bridge.call(
            "queue_policy", on_done=self.show_queue, on_failure=self.policy.currentData()))
        self.table = _table(QUEUE_COLUMNS)
        self.table.itemDoubleClicked.connect(lambda _item: self.edit_selected())
        self.history_table = _table(HISTORY_COLUMNS)
        self.history_table.itemDoubleClicked.connect(self._open_history_file)
        self.history_table.setToolTip("Double-click a run to open its file in the browser")
        buttons = QHBoxLayout()
        for label, slot, tip in (("Edit", self.edit_selected, "Load the item into the form to change it"),
                                 ("▲", lambda: self.move_selected(-1), "Run it earlier"),
                                 ("▼", lambda: self.move_selected(+1), "Run it later"),
                                 ("Remove", self.remove_selected, "Take the waiting item off the queue")):
            button = QPushButton(label)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.queue_state)
        controls = QHBoxLayout()
        controls.addWidget(self.policy, 1)
        controls.addWidget(self.start_button)
        controls.addWidget(self.stop_button)
        queue_box, history_box = QGroupBox("Queue"), QGroupBox("History (double-click: open the file)")
        queue_layout = QVBoxLayout(queue_box)
        queue_layout.addWidget(self.table, 1)
        queue_layout.addLayout(buttons)
        queue_layout.addLayout(controls)
        QVBoxLayout(history_box).addWidget(self.history_table)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(queue_box)
        split.addWidget(history_box)
        split.setSizes([560, 440])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.current)
        layout.addWidget(split, 1)

    # ------------------------------------------------------------------------------ from the engine
    def refresh(self) -> None:
        """Ask the engine for the queue and the history (on attaching; events keep them current)."""
        self.bridge.call("queue_list", on_done=self.show_queue)
        self.bridge.call("history", on_done=self.show_history, limit=HISTORY_LIMIT)

    def show_queue(self, queue: dict[str, Any]) -> None:
        self.items = list(queue.get("items") or [])
        self.active = bool(queue.get("active"))
        self.queue_state.setText("queue <b>running</b>" if self.active else "queue <b>stopped</b>")
        index = self.policy.findData(queue.get("on_failure", "stop"))
        if index >= 0:
            self.policy.setCurrentIndex(index)
        self.start_button.setEnabled(not self.active)
        self.stop_button.setEnabled(self.active)
        selected = self.selected_uid()
        self.table.setRowCount(len(self.items))
        waiting = 0
        for row, item in enumerate(self.items):
            if item.get("state") == "running":
                place = "▶"
            else:
                place, waiting = str(waiting), waiting + 1
            operator = str(item.get("operator") or "")
            parameters = "resume " + str(item.get("file")) if item.get("resume") else changed_parameters(
                str(item.get("procedure")), dict(item.get("parameters") or {}))
            _fill_row(self.table, row, [place, str(item["uid"]), str(item.get("procedure") or ""),
                                        str(item.get("state")), operator, local_time(item.get("added_s")),
                                        parameters], str(item.get("state")), str(item["uid"]))
            if item["uid"] == selected:
                self.table.selectRow(row)

    def show_history(self, entries: list[dict[str, Any]]) -> None:
        self.history = list(entries)
        self.history_table.setRowCount(len(self.history))
        for row, entry in enumerate(reversed(self.history)):  # newest first
            path = str(entry.get("file") or "")
            _fill_row(self.history_table, row, [local_time(entry.get("ended_s"))[5:], str(entry.get("uid")),
                                                str(entry.get("procedure") or ""), str(entry.get("status")),
                                                Path(path).name, str(entry.get("reason") or "")],
                      str(entry.get("status")), path)
        self.history_loaded.emit(self.history)

    def on_events(self, batch: list[dict[str, Any]]) -> None:
        for message in batch:
            kind = message.get("event")
            item = message.get("item")
            if kind == "queue":
                self.show_queue(message)
            elif kind == "run_started":
                self.current.show_run({"item": item, "procedure": message.get("procedure"),
                                       "file": message.get("file"), "status": "starting"})
            elif kind == "status" and item == self.current.uid:
                self.current.set_state(str(message.get("status")))
            elif kind == "progress" and item == self.current.uid:
                self.current.set_progress(message)
            elif kind == "run_ended":
                if item == self.current.uid:
                    self.current.show_run(None)
                self.bridge.call("history", on_done=self.show_history, limit=HISTORY_LIMIT)

    # --------------------------------------------------------------------------------- editing
    def selected_uid(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []  # type: ignore[union-attr]
        if not rows:
            return None
        cell = self.table.item(rows[0].row(), 1)
        return cell.text() if cell is not None else None

    def select_uid(self, uid: str) -> None:
        for row, item in enumerate(self.items):
            if item["uid"] == uid:
                self.table.selectRow(row)

    def _selected_item(self) -> dict[str, Any] | None:
        uid = self.selected_uid()
        return next((item for item in self.items if item["uid"] == uid), None)

    def edit_selected(self) -> None:
        item = self._selected_item()
        if item is not None and item.get("state") == "queued" and not item.get("resume"):
            self.edit_requested.emit(item)

    def move_selected(self, step: int) -> None:
        item = self._selected_item()
        if item is None:
            return
        # positions count the waiting items only (0 = next): a running item stays ahead of them all
        waiting = [i for i in self.items if i.get("state") != "running"]
        if item not in waiting:
            return
        position = waiting.index(item) + step
        if 0 <= position < len(waiting):
            self.bridge.call("queue_move", uid=item["uid"], position=position)

    def remove_selected(self) -> None:
        item = self._selected_item()
        if item is not None:
            self.bridge.call("queue_remove", uid=item["uid"])

    def _open_history_file(self, cell: QTableWidgetItem) -> None:
        path = cell.data(Qt.ItemDataRole.UserRole)
        if path:
            self.open_file.emit(str(path))
