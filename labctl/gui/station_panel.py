"""The station panel: the engine the window is attached to, and every instrument of the station with its
model, address, connection state and identification.

The engine owns the instruments, so the window never talks to one: the state comes from the engine (the
session's connected instruments, and the link events its runs record: lost, retrying, given up, restored),
the identification (``*IDN?``) from the newest run file, where the runner records it when it connects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labctl.gui.tasks import run_in_thread

if TYPE_CHECKING:
    from labctl.station import Station

COLUMNS = ["instrument", "model", "address", "state", "IDN (asked, or as last recorded)"]
#: state -> (text, background); a lost instrument is red whatever the engine does about it
STATES = {
    "connected": ("connected", "#c8e6c9"),
    "idle": ("not connected", "#eeeeee"),
    "lost": ("LOST — retrying", "#ef9a9a"),
    "suspended": ("LOST — retrying, its channels suspended", "#ef9a9a"),
    "given_up": ("LOST — given up", "#e57373"),
    "no_answer": ("NO ANSWER to identify", "#e57373"),
}
#: run-file event kinds that change an instrument's state
LINK_EVENTS = {"link_lost": "lost", "reconnect_failed": "lost", "link_given_up": "given_up",
               "link_restored": "connected", "channel_suspended": "suspended", "channel_resumed": "connected"}


def read_identities(path: str) -> dict[str, str]:
    """``*IDN?`` of each instrument as recorded in a run file (runs in a worker thread)."""
    from labctl.store import RunReader

    with RunReader(path) as reader:
        return {name: str(info.get("idn", "")) for name, info in reader.instruments().items()}


class StationPanel(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Station", parent)
        self.station: Station | None = None
        self.states: dict[str, str] = {}
        self.identities: dict[str, str] = {}
        self.engine = QLabel("not attached")
        self.engine.setWordWrap(True)
        self.engine.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)  # type: ignore[union-attr]
        header = self.table.horizontalHeader()
        assert header is not None
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.identify_button = QPushButton("Connect and identify")
        self.identify_button.setToolTip("The engine connects every instrument of the station in its session and "
                                        "asks each for its identification (*IDN?); a run under way is not "
                                        "disturbed.")
        self.identify_button.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(self.engine, 1)
        top.addWidget(self.identify_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)

    def set_station(self, station: Station) -> None:
        self.station = station
        self.identify_button.setEnabled(True)
        self.states = {name: "idle" for name in station.instruments}
        self.identities = {}
        self._redraw()

    def show_status(self, status: dict[str, Any]) -> None:
        """The engine's status: who it is, and which instruments its session holds connected."""
        session = status.get("session") or {}
        clock = session.get("clock") or status.get("clock") or ""
        speed = status.get("speed") or 1.0
        clock_text = f"{clock} clock" + (f" ×{speed:g}" if clock == "real" and speed != 1 else "")
        self.engine.setText(
            f"<b>{status.get('station', '')}</b> · engine pid {status.get('pid', '?')} at {status.get('address', '')}"
            f" · {clock_text} · session {session.get('id', '')} ({session.get('runs', 0)} runs)<br>"
            f"data: {status.get('data_dir', '')}")
        connected = set(session.get("connected") or [])
        for name in self.states:
            if self.states[name] in {"idle", "connected"}:
                self.states[name] = "connected" if name in connected else "idle"
        self._redraw()

    def on_events(self, batch: list[dict[str, Any]]) -> None:
        changed = False
        for message in batch:
            if message.get("event") == "record" and message.get("kind") in LINK_EVENTS:
                name = str((message.get("data") or {}).get("instrument", ""))
                state = LINK_EVENTS[str(message["kind"])]
                # a channel suspended says more than "lost" but does not undo "given up"
                if name in self.states and not (state == "suspended" and self.states[name] == "given_up"):
                    self.states[name] = state
                    changed = True
            elif message.get("event") == "record" and message.get("kind") == "start":
                for name in (message.get("data") or {}).get("instruments", []):
                    if self.states.get(name) == "idle":
                        self.states[name] = "connected"
                        changed = True
            elif message.get("event") == "run_ended" and message.get("file"):
                self.identify(str(message["file"]))
        if changed:
            self._redraw()

    def show_identified(self, rows: dict[str, Any]) -> None:
        """The engine's answer to ``identify``: identities, and instruments that did not answer as lost."""
        for name, row in rows.items():
            if row.get("status") == "ok":
                self.identities[name] = str(row.get("identity", ""))
                if self.states.get(name) in {"idle", "no_answer"}:
                    self.states[name] = "connected"
            else:
                self.identities[name] = str(row.get("status", ""))
                if self.states.get(name) in {"idle", "connected", "no_answer"}:  # a run's own state says more
                    self.states[name] = "no_answer"
        self.identify_button.setEnabled(True)
        self._redraw()

    def identify(self, path: str) -> None:
        """Read the instruments' identification from a run file, off the GUI thread."""
        def done(identities: dict[str, str]) -> None:
            self.identities.update(identities)
            self._redraw()

        # an unreadable file leaves the identification as it was: it is shown as recorded, not required
        run_in_thread(lambda: read_identities(path), done, lambda _exc: None, self)

    def _redraw(self) -> None:
        if self.station is None:
            return
        self.table.setRowCount(len(self.station.instruments))
        for row, (name, spec) in enumerate(self.station.instruments.items()):
            text, colour = STATES[self.states.get(name, "idle")]
            cells = [name, spec.driver, spec.address, text, self.identities.get(name, "")]
            for column, value in enumerate(cells):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                if column == 3:
                    item.setBackground(QColor(colour))
                self.table.setItem(row, column, item)
