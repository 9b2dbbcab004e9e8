"""The procedure panel: pick a procedure, fill in its generated form, and queue it on the engine (or edit a
queued item); parameter sets are loaded from and saved to TOML files (the CLI's ``--params`` format)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from labctl.errors import LabctlError
from labctl.gui.form import ProcedureForm

if TYPE_CHECKING:
    from labctl.gui.bridge import EngineBridge
    from labctl.station import Station

OK_STYLE = "color: #2e7d32;"
ERROR_STYLE = "color: #c62828; font-weight: bold;"


class ProcedurePanel(QWidget):
    def __init__(self, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from labctl.runner.registry import known_procedures

        self.bridge = bridge
        self.station: Station | None = None
        self.editing_uid: str | None = None
        self.picker = QComboBox()
        for name, entry in sorted(known_procedures().items()):
            if entry.cls is not None:
                self.picker.addItem(f"{name} — {entry.cls.title}" if entry.cls.title else name, name)
                self.picker.setItemData(self.picker.count() - 1, entry.cls.title, Qt.ItemDataRole.ToolTipRole)
        self.picker.currentIndexChanged.connect(lambda _i: self._procedure_changed())
        self.operator = QLineEdit()
        self.operator.setPlaceholderText("operator (recorded in the run file)")
        self.form = ProcedureForm()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.form.validated.connect(self._show_validation)
        self.add_button = QPushButton("Add to queue")
        self.add_button.clicked.connect(lambda: self.submit("queue_add"))
        self.next_button = QPushButton("Run next")
        self.next_button.setToolTip("Runs as soon as the engine is free, even while the queue is stopped")
        self.next_button.clicked.connect(lambda: self.submit("submit"))
        self.update_button = QPushButton("Update queued item")
        self.update_button.clicked.connect(self._update_item)
        self.cancel_edit = QPushButton("Cancel edit")
        self.cancel_edit.clicked.connect(lambda: self.end_edit())
        load, save = QPushButton("Load…"), QPushButton("Save…")
        load.clicked.connect(self._load)
        save.clicked.connect(self._save)
        top = QHBoxLayout()
        top.addWidget(QLabel("Procedure"))
        top.addWidget(self.picker, 1)
        files = QHBoxLayout()
        files.addWidget(self.operator, 1)
        files.addWidget(load)
        files.addWidget(save)
        actions = QHBoxLayout()
        for button in (self.add_button, self.next_button, self.update_button, self.cancel_edit):
            actions.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(files)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.message)
        layout.addLayout(actions)
        self.end_edit()

    # ---------------------------------------------------------------------------------- station
    def set_station(self, station: Station | None) -> None:
        self.station = station
        self._procedure_changed()

    def procedure_name(self) -> str:
        return str(self.picker.currentData() or "")

    def select(self, name: str) -> None:
        index = self.picker.findData(name)
        if index < 0:
            raise LabctlError(f"unknown procedure {name!r}")
        if index == self.picker.currentIndex():
            self._procedure_changed()
        self.picker.setCurrentIndex(index)

    def _procedure_changed(self) -> None:
        from labctl.runner.registry import procedure_class

        name = self.procedure_name()
        if name:
            self.form.set_procedure(procedure_class(name), self.station)

    def _show_validation(self, ok: bool, message: str) -> None:
        self.message.setStyleSheet(OK_STYLE if ok else ERROR_STYLE)
        self.message.setText("parameters valid" if ok else message)
        for button in (self.add_button, self.next_button, self.update_button):
            button.setEnabled(ok)

    def show_error(self, message: str) -> None:
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.setText(message)

    # ---------------------------------------------------------------------------------- queueing
    def submit(self, op: str, on_done: Any = None) -> None:
        """Queue the form's run (``queue_add``) or run it next (``submit``) on the engine."""
        if not self.form.validate():
            return
        self.bridge.call(op, on_done=on_done, on_error=lambda exc: self.show_error(str(exc)),
                         procedure=self.procedure_name(), pairs=self.form.pairs(),
                         operator=self.operator.text().strip())

    def begin_edit(self, item: dict[str, Any]) -> None:
        """Load a queued item into the form, to change it and update it in place."""
        self.select(str(item["procedure"]))
        self.form.set_values(dict(item.get("parameters") or {}))
        self.operator.setText(str(item.get("operator") or ""))
        self.editing_uid = str(item["uid"])
        self.update_button.setText(f"Update item {self.editing_uid}")
        self.update_button.setVisible(True)
        self.cancel_edit.setVisible(True)
        self.picker.setEnabled(False)

    def end_edit(self) -> None:
        self.editing_uid = None
        self.update_button.setVisible(False)
        self.cancel_edit.setVisible(False)
        self.picker.setEnabled(True)

    def _update_item(self) -> None:
        if self.editing_uid is None or not self.form.validate():
            return
        # every value, not only those off their default: the engine lays the edit over the item's values
        self.bridge.call("queue_edit", on_done=lambda _item: self.end_edit(),
                         on_error=lambda exc: self.show_error(str(exc)), uid=self.editing_uid,
                         parameters=self.form.build().values, operator=self.operator.text().strip())

    # ------------------------------------------------------------------------------ parameter files
    def _load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load parameters", "", "TOML parameter files (*.toml)")
        if path:
            try:
                self.form.load_toml(Path(path))
            except LabctlError as exc:
                self.show_error(str(exc))

    def _save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save parameters", f"{self.procedure_name()}.toml",
                                              "TOML parameter files (*.toml)")
        if path:
            try:
                self.form.save_toml(Path(path))
            except LabctlError as exc:
                self.show_error(str(exc))
