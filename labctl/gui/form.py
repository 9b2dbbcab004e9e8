"""A procedure's parameter form, generated from its JSON Schema (:meth:`Procedure.json_schema`): one row per
parameter with its label, unit, editor and tooltip; per-channel tables as tables; an ISOS preset fills in the
values it stands for. Validation runs as the user types, with the CLI's own parsing and one-line messages
(the same :class:`~labctl.errors.ParameterError` texts), and the parameter it names is outlined in red.

The form gives its values as ``--param`` pairs that differ from the defaults (or from the preset), which is
what the engine's queue takes and what ``labctl queue list`` shows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

from labctl.errors import LabctlError
from labctl.gui.channel_table import ChannelTableEditor
from labctl.gui.schema_fields import FieldEditor, format_value

if TYPE_CHECKING:
    from labctl.runner.procedure import Procedure
    from labctl.station import Station

SAMPLE_KEYS = {"sample", "samples"}
_NAMED = re.compile(r"parameters? '([A-Za-z_]\w*)'")
VALIDATE_DELAY_MS = 150


class ProcedureForm(QWidget):
    """See the module docstring. ``validated(ok, message)`` after each check."""

    validated = pyqtSignal(bool, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.procedure_cls: type[Procedure] | None = None
        self.station: Station | None = None
        self.schema: dict[str, Any] = {}
        self.editors: dict[str, FieldEditor | ChannelTableEditor] = {}
        self.labels: dict[str, QLabel] = {}
        self.base: dict[str, str] = {}  # the text of each field that needs no --param (default or preset)
        self.preset_keys: set[str] = set()
        self.message = ""
        self.valid = False
        self._rows = QFormLayout()
        self._rows.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self._rows.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        # a long label puts its field on the line below rather than being squeezed (wrapped labels get clipped)
        self._rows.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        layout = QVBoxLayout(self)
        layout.addLayout(self._rows)
        layout.addStretch(1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(VALIDATE_DELAY_MS)
        self._timer.timeout.connect(self.validate)

    # ------------------------------------------------------------------------------- building
    def set_procedure(self, procedure_cls: type[Procedure], station: Station | None) -> None:
        self.procedure_cls, self.station = procedure_cls, station
        self.schema = procedure_cls.json_schema()
        while self._rows.rowCount():
            self._rows.removeRow(0)
        self.editors.clear()
        self.labels.clear()
        self.preset_keys.clear()
        required = set(self.schema.get("required", []))
        samples = list(station.samples) if station is not None else []
        for key, prop in self.schema.get("properties", {}).items():
            editor: FieldEditor | ChannelTableEditor
            if prop.get("type") == "object" and "additionalProperties" in prop:
                editor = ChannelTableEditor(key, prop, self.schema.get("$defs", {}), samples)
            else:
                editor = FieldEditor(key, prop, samples if key in SAMPLE_KEYS else None)
            title = str(prop.get("title") or key)
            unit = f" [{prop['unit']}]" if prop.get("unit") else ""
            label = QLabel(f"{title}{unit}{' *' if key in required else ''}")
            label.setToolTip(editor.toolTip())
            editor.changed.connect(self._timer.start)
            self.editors[key], self.labels[key] = editor, label
            if isinstance(editor, ChannelTableEditor):  # a table gets the form's full width, under its label
                self._rows.addRow(label)
                self._rows.addRow(editor)
            else:
                self._rows.addRow(label, editor)
        self.base = {key: format_value(prop.get("default")) for key, prop in
                     self.schema.get("properties", {}).items()}
        preset = self.editors.get("preset")
        if isinstance(preset, FieldEditor) and self.schema.get("presets"):
            preset.changed.connect(lambda: self.apply_preset(preset.text()))
        if samples:
            for key in SAMPLE_KEYS & set(self.editors):
                self.editors[key].set_value(samples[0])
        self.validate()

    def apply_preset(self, name: str) -> None:
        """Fill in the values of an ISOS preset; the values it sets become the fields' base."""
        presets: dict[str, dict[str, Any]] = self.schema.get("presets", {})
        for key in self.preset_keys:
            self.base[key] = format_value(self.schema["properties"][key].get("default"))
            self.labels[key].setStyleSheet("")
        self.preset_keys = set()
        for key, value in presets.get(name, {}).items():
            if key in self.editors:
                self.editors[key].set_value(value)
                self.base[key] = format_value(value)
                self.preset_keys.add(key)
                self.labels[key].setStyleSheet("color: #1565c0; font-style: italic;")
                self.labels[key].setToolTip(f"set by the preset {name}; change it to override")
        self._timer.start()

    # -------------------------------------------------------------------------------- values
    def pairs(self) -> list[str]:
        """``name=value`` for every field that differs from its default (or preset), tables as
        ``table.channel.name=value``."""
        pairs: list[str] = []
        for key, editor in self.editors.items():
            if isinstance(editor, ChannelTableEditor):
                pairs += editor.pairs()
                continue
            text = editor.text()
            if text != self.base.get(key) or (key == "preset" and text):
                pairs.append(f"{key}={text}")
        return pairs

    def set_values(self, values: dict[str, Any]) -> None:
        """Fill the form from parameter values (a queue item's, a parameter file's); others keep theirs."""
        unknown = [key for key in values if key not in self.editors]
        if unknown:
            raise LabctlError(f"unknown parameter(s) {', '.join(unknown)} for procedure "
                              f"'{self.procedure_cls.name if self.procedure_cls else ''}'")
        if "preset" in values:
            self.editors["preset"].set_value(values["preset"])
            self.apply_preset(str(values["preset"]))
        for key, value in values.items():
            if key != "preset":
                self.editors[key].set_value(value)
        self.validate()

    def build(self) -> Procedure:
        """The procedure as the CLI would build it from these pairs, checked against the station."""
        assert self.procedure_cls is not None
        procedure = self.procedure_cls.from_strings(self.pairs())
        if self.station is not None:
            procedure.check_station(self.station)
        return procedure

    def validate(self) -> bool:
        """Check now; the message (empty when valid) is in ``self.message``."""
        self._timer.stop()
        for editor in self.editors.values():
            editor.set_invalid(False)
        if self.procedure_cls is None:
            return False
        try:
            self.build()
        except LabctlError as exc:
            self.valid, self.message = False, str(exc)
            named = _NAMED.search(self.message)
            tables = {k for k, e in self.editors.items() if isinstance(e, ChannelTableEditor)}
            keys = tables if self.message.startswith("channel ") else {named.group(1)} if named else \
                SAMPLE_KEYS if " sample" in self.message else set()
            for key in keys & set(self.editors):
                self.editors[key].set_invalid(True)
        else:
            self.valid, self.message = True, ""
        self.validated.emit(self.valid, self.message)
        return self.valid

    # ----------------------------------------------------------------------------- parameter files
    def save_toml(self, path: Path) -> None:
        """The validated values that differ from the defaults, as a ``--params`` file."""
        import tomli_w

        procedure = self.build()
        defaults = {key: prop.get("default") for key, prop in self.schema.get("properties", {}).items()}
        values = {key: value for key, value in procedure.values.items()
                  if value is not None and value != defaults.get(key)}
        assert self.procedure_cls is not None
        text = f"# labctl parameters of procedure {self.procedure_cls.name}\n"
        path.write_text(text + tomli_w.dumps({"parameters": values}), "utf-8")

    def load_toml(self, path: Path) -> None:
        from labctl.runner.procedure import read_params_file

        self.set_values(read_params_file(path))
