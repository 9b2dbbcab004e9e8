"""The alarms view: the engine's alarm rules, editable, and the alarms that fired, to acknowledge.

Rules are edited as TOML (one ``[[alarms]]`` table per rule, the keys of the station file's
``[[engine.alarms]]``), because the rule kinds take different keys and a lab will copy them between the window
and station files. Apply sends them to the engine, which checks each exactly as it checks a station file and
changes nothing if one is wrong; its message appears under the editor. Fired alarms are listed newest first
with their time, rule, channel (or block, instrument, disk) and message; unacknowledged ones in bold red until
someone acknowledges them (the engine keeps who and when, across restarts).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

#: ``call(op, on_done, on_error, **arguments)``: an engine request answered on the GUI thread (EngineBridge.call).
EngineCall = Callable[..., None]
COLUMNS = ("time", "rule", "channel / subject", "message", "acknowledged")


def rules_to_toml(rules: list[dict[str, Any]]) -> str:
    """The rules as ``[[alarms]]`` tables (strings quoted, numbers and booleans as TOML writes them)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    blocks = ["[[alarms]]\n" + "".join(f"{key} = {value(v)}\n" for key, v in rule.items()) for rule in rules]
    return "\n".join(blocks)


def rules_from_toml(text: str) -> list[dict[str, Any]]:
    """The ``[[alarms]]`` tables of ``text``; ValueError with the parser's message when it is not TOML."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"alarms"})
    if unknown:
        raise ValueError(f"unknown table(s) {', '.join(unknown)}; write each rule as an [[alarms]] table")
    rules = data.get("alarms", [])
    return [dict(rule) for rule in rules]


class AlarmsView(QWidget):
    """See the module docstring. ``call`` reaches the engine; feed it engine messages with
    :meth:`on_engine_events` (alarms, acknowledgements and rule changes from other windows)."""

    changed = pyqtSignal(int)  # unacknowledged alarms

    def __init__(self, call: EngineCall, operator: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._call = call
        self.operator = operator
        self.fired: list[dict[str, Any]] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        assert header is not None
        header.setStretchLastSection(False)
        header.setSectionResizeMode(3, header.ResizeMode.Stretch)
        self.ack_selected = QPushButton("Acknowledge selected")
        self.ack_all = QPushButton("Acknowledge all")
        self.ack_selected.clicked.connect(self._acknowledge_selected)
        self.ack_all.clicked.connect(lambda: self.acknowledge(None))
        self.summary = QLabel("no alarms")
        self.editor = QPlainTextEdit()
        self.editor.setFont(QFont("monospace"))
        self.editor.setPlaceholderText('[[alarms]]\nkind = "channel"\n\n[[alarms]]\nkind = "power_drop"\n'
                                       "max_drop_per_h = 2.0")
        self.apply = QPushButton("Apply rules")
        self.apply.clicked.connect(self.apply_rules)
        self.rules_message = QLabel("")
        self.rules_message.setWordWrap(True)

        fired_box = QWidget()
        fired_layout = QVBoxLayout(fired_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.summary, 1)
        buttons.addWidget(self.ack_selected)
        buttons.addWidget(self.ack_all)
        fired_layout.addLayout(buttons)
        fired_layout.addWidget(self.table)
        rules_box = QWidget()
        rules_layout = QVBoxLayout(rules_box)
        rules_layout.addWidget(QLabel("<b>Rules</b> (the engine checks them as in a station file's "
                                      "[[engine.alarms]])"))
        rules_layout.addWidget(self.editor)
        row = QHBoxLayout()
        row.addWidget(self.rules_message, 1)
        row.addWidget(self.apply)
        rules_layout.addLayout(row)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(fired_box)
        splitter.addWidget(rules_box)
        splitter.setSizes([700, 400])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    # ------------------------------------------------------------------------------------ engine
    def refresh(self) -> None:
        """Ask the engine for the rules and the fired alarms."""
        self._call("alarms", on_done=self._listed, on_error=self._failed)

    def _listed(self, result: dict[str, Any]) -> None:
        self.editor.setPlainText(rules_to_toml(result.get("rules", [])))
        self.fired = list(result.get("fired", []))
        self._show()

    def _failed(self, error: Any) -> None:
        self.rules_message.setText(f"<span style='color:#c62828'>{error}</span>")

    def on_engine_events(self, batch: list[dict[str, Any]]) -> None:
        for message in batch:
            kind = message.get("event")
            if kind == "alarm" and "id" in message:
                self.fired.append({**message, "acknowledged": False, "acknowledged_by": ""})
            elif kind == "alarm_ack":
                for entry in self.fired:
                    if entry.get("id") in message.get("ids", []):
                        entry["acknowledged"], entry["acknowledged_by"] = True, message.get("by", "")
            elif kind == "alarm_rules":
                self.editor.setPlainText(rules_to_toml(message.get("rules", [])))
            else:
                continue
            self._show()

    def apply_rules(self) -> None:
        try:
            rules = rules_from_toml(self.editor.toPlainText())
        except ValueError as exc:
            self._failed(exc)
            return
        self.rules_message.setText("applying…")
        self._call("alarms_set", on_done=self._applied, on_error=self._failed, rules=rules)

    def _applied(self, result: dict[str, Any]) -> None:
        rules = result.get("rules", [])
        self.editor.setPlainText(rules_to_toml(rules))
        self.rules_message.setText(f"<span style='color:#2e7d32'>{len(rules)} rule(s) in force</span>")

    def acknowledge(self, ids: list[int] | None) -> None:
        self._call("alarm_ack", on_done=lambda _result: None, on_error=self._failed, ids=ids,
                   by=self.operator or None)

    def _acknowledge_selected(self) -> None:
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        ordered = list(reversed(self.fired))
        ids = [ordered[r]["id"] for r in rows if r < len(ordered)]
        if ids:
            self.acknowledge(ids)

    # ------------------------------------------------------------------------------------ table
    def unacknowledged(self) -> int:
        return sum(not entry.get("acknowledged") for entry in self.fired)

    def _show(self) -> None:
        rows = list(reversed(self.fired))  # newest first
        self.table.setRowCount(len(rows))
        for r, entry in enumerate(rows):
            when = entry.get("time_s")
            stamp = (dt.datetime.fromtimestamp(float(when)).strftime("%Y-%m-%d %H:%M:%S") if when else "")
            ack = "yes" + (f" ({entry['acknowledged_by']})" if entry.get("acknowledged_by") else "") \
                if entry.get("acknowledged") else "no"
            cells = (stamp, str(entry.get("rule", "")), str(entry.get("subject", "")), str(entry.get("message", "")),
                     ack)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if not entry.get("acknowledged"):
                    item.setForeground(QBrush(QColor("#c62828")))
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        open_count = self.unacknowledged()
        self.summary.setText(f"{len(rows)} alarm(s), {open_count} not acknowledged" if rows else "no alarms")
        self.changed.emit(open_count)
