"""One editor per property of a procedure's parameter JSON Schema: the widget follows the schema's type
(choices, yes/no, numbers, lists), its tooltip says the help text and what is allowed, with the unit.

Every editor gives its value as the text a ``--param name=text`` would carry, so the form validates with
exactly the CLI's parsing and messages (:meth:`labctl.runner.procedure.Procedure.from_strings`).
"""

from __future__ import annotations

from typing import Any

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLineEdit, QWidget


def format_value(value: Any) -> str:
    """A value as the text of its field (and of ``--param``): 0.1, "0.1, 1", yes/no as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value)
    return "" if value is None else str(value)


def _number(value: float) -> str:
    return f"{value:g}"


def allowed_text(prop: dict[str, Any]) -> str:
    """What a schema property allows, in the words of the CLI's messages (``0.0001 … 1000 V/s``)."""
    unit = f" {prop['unit']}" if prop.get("unit") else ""
    spec = prop.get("items", prop) if prop.get("type") == "array" else prop
    if "enum" in spec:
        return "one of " + ", ".join(repr(c) if isinstance(c, str) else str(c) for c in spec["enum"])
    low, high = spec.get("minimum"), spec.get("maximum")
    if low is not None and high is not None:
        return f"{_number(low)} … {_number(high)}{unit}"
    if low is not None:
        return f">= {_number(low)}{unit}"
    if high is not None:
        return f"<= {_number(high)}{unit}"
    return str(prop.get("kind") or prop.get("type") or "any value")


def tooltip(key: str, prop: dict[str, Any]) -> str:
    parts = [f"<b>{key}</b>"]
    if prop.get("description"):
        parts.append(str(prop["description"]))
    parts.append(f"allowed: {allowed_text(prop)}")
    if prop.get("type") == "array":
        parts.append("several values: separate them with commas")
    return "<br>".join(parts)


class FieldEditor(QWidget):
    """A property's editor: ``text()`` is what ``--param key=text`` would say; ``changed`` on any edit."""

    changed = pyqtSignal()

    def __init__(self, key: str, prop: dict[str, Any], suggestions: list[str] | None = None) -> None:
        super().__init__()
        self.key = key
        self.prop = prop
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combo: QComboBox | None = None
        self.check: QCheckBox | None = None
        self.line: QLineEdit | None = None
        if "enum" in prop:
            self.combo = QComboBox()
            for choice in prop["enum"]:
                self.combo.addItem("(none)" if choice == "" else str(choice), choice)
            self.combo.currentIndexChanged.connect(self.changed)
            layout.addWidget(self.combo)
        elif prop.get("type") == "boolean":
            self.check = QCheckBox()
            self.check.toggled.connect(self.changed)
            layout.addWidget(self.check)
        elif suggestions is not None:
            # names from the station (samples): pick one or type several, comma-separated
            self.combo = QComboBox()
            self.combo.setEditable(True)
            self.combo.addItems(suggestions)
            self.combo.setCurrentIndex(-1)
            self.combo.editTextChanged.connect(self.changed)
            layout.addWidget(self.combo)
        else:
            self.line = QLineEdit()
            self.line.setPlaceholderText(allowed_text(prop))
            self.line.textChanged.connect(self.changed)
            layout.addWidget(self.line)
        self.setToolTip(tooltip(key, prop))
        if "default" in prop:
            self.set_value(prop["default"])

    def text(self) -> str:
        if self.check is not None:
            return "true" if self.check.isChecked() else "false"
        if self.combo is not None and not self.combo.isEditable():
            return format_value(self.combo.currentData())
        if self.combo is not None:
            return self.combo.currentText().strip()
        assert self.line is not None
        return self.line.text().strip()

    def set_value(self, value: Any) -> None:
        if self.check is not None:
            self.check.setChecked(bool(value))
        elif self.combo is not None and not self.combo.isEditable():
            index = self.combo.findData(value)
            if index >= 0:
                self.combo.setCurrentIndex(index)
        elif self.combo is not None:
            self.combo.setEditText(format_value(value))
        else:
            assert self.line is not None
            self.line.setText(format_value(value))

    def set_invalid(self, invalid: bool) -> None:
        self.setStyleSheet("QLineEdit, QComboBox { border: 2px solid #d32f2f; }" if invalid else "")
