"""The editor of a per-channel table parameter: one row per channel, one column per parameter a channel may
override; an empty cell keeps the run-wide value. Its ``--param`` pairs are ``table.channel.name=value``."""

from __future__ import annotations

from typing import Any

from PyQt6.QtCore import QAbstractItemModel, QModelIndex, Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labctl.gui.schema_fields import format_value, tooltip


def channel_properties(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-channel parameters of a table property, each as a plain (not nullable) schema."""
    ref = str(prop.get("additionalProperties", {}).get("$ref", ""))
    model = defs.get(ref.rsplit("/", 1)[-1], {})
    result: dict[str, dict[str, Any]] = {}
    for key, sub in model.get("properties", {}).items():
        plain: dict[str, Any] = next((s for s in sub.get("anyOf", [sub]) if s.get("type") != "null"), {})
        result[key] = {**plain, **{k: v for k, v in sub.items() if k not in {"anyOf", "default"}}}
    return result


class ChoiceDelegate(QStyledItemDelegate):
    """A cell of a parameter with choices is edited with a list of them (blank: the run-wide value)."""

    def __init__(self, choices: list[Any], parent: QWidget) -> None:
        super().__init__(parent)
        self.choices = ["", *(str(c) for c in choices if c is not None)]

    def createEditor(self, parent: QWidget | None, option: QStyleOptionViewItem,
                     index: QModelIndex) -> QWidget | None:
        combo = QComboBox(parent)
        combo.addItems(self.choices)
        return combo

    def setEditorData(self, editor: QWidget | None, index: QModelIndex) -> None:
        if isinstance(editor, QComboBox):
            editor.setCurrentText(str(index.data(Qt.ItemDataRole.EditRole) or ""))

    def setModelData(self, editor: QWidget | None, model: QAbstractItemModel | None, index: QModelIndex) -> None:
        if isinstance(editor, QComboBox) and model is not None:
            model.setData(index, editor.currentText(), Qt.ItemDataRole.EditRole)


class ChannelTableEditor(QWidget):
    changed = pyqtSignal()

    def __init__(self, key: str, prop: dict[str, Any], defs: dict[str, Any], channels: list[str]) -> None:
        super().__init__()
        self.key = key
        self.prop = prop
        self.columns = channel_properties(prop, defs)
        self.suggested = channels
        self.table = QTableWidget(0, 1 + len(self.columns))
        headers = ["channel", *(f"{k}{' [' + p['unit'] + ']' if p.get('unit') else ''}"
                                for k, p in self.columns.items())]
        self.table.setHorizontalHeaderLabels(headers)
        for column, (sub_key, sub) in enumerate(self.columns.items(), start=1):
            header = self.table.horizontalHeaderItem(column)
            if header is not None:
                header.setToolTip(tooltip(sub_key, sub) + "<br>empty: the run-wide value")
            if "enum" in sub:
                self.table.setItemDelegateForColumn(column, ChoiceDelegate(list(sub["enum"]), self.table))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # type: ignore[union-attr]
        self.table.verticalHeader().setVisible(False)  # type: ignore[union-attr]
        self.table.setMinimumHeight(90)
        self.table.itemChanged.connect(lambda _item: self.changed.emit())
        add = QPushButton("Add channel")
        add.clicked.connect(lambda: self.add_channel())
        remove = QPushButton("Remove")
        remove.clicked.connect(self._remove_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self.setToolTip(tooltip(key, prop))

    def add_channel(self, name: str = "", values: dict[str, Any] | None = None) -> None:
        taken = set(self.channels())
        if not name:
            name = next((c for c in self.suggested if c not in taken), f"ch{self.table.rowCount() + 1:02d}")
        row = self.table.rowCount()
        self.table.blockSignals(True)
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(name))
        for column, sub_key in enumerate(self.columns, start=1):
            value = (values or {}).get(sub_key)
            self.table.setItem(row, column, QTableWidgetItem(format_value(value)))
        self.table.blockSignals(False)
        self.changed.emit()

    def _remove_selected(self) -> None:
        rows = sorted({index.row() for index in self.table.selectedIndexes()}, reverse=True)
        for row in rows or ([self.table.rowCount() - 1] if self.table.rowCount() else []):
            self.table.removeRow(row)
        self.changed.emit()

    def _cell(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return item.text().strip() if item is not None else ""

    def channels(self) -> list[str]:
        return [self._cell(row, 0) for row in range(self.table.rowCount())]

    def pairs(self) -> list[str]:
        """``table.channel.name=value`` for every filled cell."""
        pairs = []
        for row in range(self.table.rowCount()):
            channel = self._cell(row, 0)
            for column, sub_key in enumerate(self.columns, start=1):
                text = self._cell(row, column)
                if text:
                    pairs.append(f"{self.key}.{channel}.{sub_key}={text}")
        return pairs

    def set_value(self, value: Any) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        self.table.blockSignals(False)
        for channel, values in dict(value or {}).items():
            self.add_channel(str(channel), dict(values))
        self.changed.emit()

    def set_invalid(self, invalid: bool) -> None:
        self.table.setStyleSheet("QTableWidget { border: 2px solid #d32f2f; }" if invalid else "")
