"""Events and alarms from the engine, newest at the bottom: run status changes, log lines, the entries runs
write to their ``/events`` (light stable, channel suspended, link lost, ...), alarms fired by the engine's
rules, and what the window itself has to say (attaching, the link lost). Bounded: the oldest lines go."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

MAX_ROWS = 2000
COLUMNS = ["time", "item", "kind", "message"]
#: background per severity
COLOURS = {"alarm": "#ffcdd2", "error": "#ffcdd2", "warning": "#fff3c4", "engine": "#e1f5fe"}
_SHOWN = {"status", "log", "record", "alarm", "alarm_notify_failed", "engine", "run_started", "run_ended"}


def describe(message: dict[str, Any]) -> tuple[str, str, str] | None:
    """(kind, text, severity) of an engine event worth a line, or None (data rows, progress, queue)."""
    event = str(message.get("event"))
    if event not in _SHOWN:
        return None
    if event == "status":
        reason = f": {message['reason']}" if message.get("reason") else ""
        status = str(message.get("status"))
        return "status", f"{status}{reason}", "error" if status in {"failed", "aborted", "interrupted"} else ""
    if event == "log":
        level = str(message.get("level", "info"))
        return f"log {level}", str(message.get("message", "")), level if level in COLOURS else ""
    if event == "record":
        kind = str(message.get("kind", ""))
        severe = "alarm" if kind in {"alarm", "link_lost", "link_given_up", "channel_lost", "channel_failed"} \
            else "warning" if "suspend" in kind or kind == "reconnect_failed" else ""
        return kind, str(message.get("message", "")), severe
    if event == "alarm":
        held = f" ({message['held_back']} held back)" if message.get("held_back") else ""
        text = f"{message.get('subject', '')}: {message.get('message', '')}{held}"
        return f"ALARM {message.get('rule', '')}", text, "alarm"
    if event == "alarm_notify_failed":
        return "alarm notify failed", f"{message.get('rule', '')}: {message.get('error', '')}", "warning"
    if event == "engine":
        return "engine", f"{message.get('state', '')} {message.get('reason', '')}".strip(), "engine"
    if event == "run_started":
        return "run started", f"{message.get('procedure', '')} → {message.get('file', '')}", ""
    status = str(message.get("status"))
    return "run ended", f"{status}: {message.get('reason', '')}", "" if status == "completed" else "error"


class EventsPane(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.alarms = 0
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)  # type: ignore[union-attr]
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        assert header is not None
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.alarm_label = QLabel("no alarms")
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clear)
        top = QHBoxLayout()
        top.addWidget(self.alarm_label, 1)
        top.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)

    def add(self, kind: str, text: str, severity: str = "", item: str = "", when: datetime | None = None) -> None:
        if self.table.rowCount() >= MAX_ROWS:
            self.table.removeRow(0)
        row = self.table.rowCount()
        self.table.insertRow(row)
        colour = QColor(COLOURS.get(severity, "#ffffff"))
        for column, value in enumerate([(when or datetime.now()).strftime("%H:%M:%S"), item, kind, text]):
            cell = QTableWidgetItem(value)
            cell.setToolTip(value)
            cell.setBackground(colour)
            self.table.setItem(row, column, cell)
        if severity == "alarm":
            self.alarms += 1
            self.alarm_label.setText(f"<b style='color:#c62828'>{self.alarms} alarm(s)</b>")
        self.table.scrollToBottom()

    def on_events(self, batch: list[dict[str, Any]]) -> None:
        for message in batch:
            described = describe(message)
            if described is not None:
                kind, text, severity = described
                self.add(kind, text, severity, str(message.get("item") or ""))

    def clear(self) -> None:
        self.table.setRowCount(0)
        self.alarms = 0
        self.alarm_label.setText("no alarms")
