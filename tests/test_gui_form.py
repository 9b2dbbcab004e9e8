"""The procedure form generated from a procedure's JSON Schema: fields with units and ranges, inline
validation with the CLI's own messages, a per-channel table, an ISOS preset, parameter files."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import LabctlError
from labctl.gui.channel_table import ChannelTableEditor
from labctl.gui.form import ProcedureForm
from labctl.gui.schema_fields import FieldEditor
from labctl.station import Station
from procedures.jv_hysteresis import JVHysteresis
from procedures.mppt_aging import MPPTAging


@pytest.fixture
def station() -> Station:
    return Station.load("sim")


def _cli_message(cls: type, pairs: list[str], station: Station) -> str:
    """What `labctl run` says for these --param pairs (a ParameterError, or a StationError for the wiring)."""
    with pytest.raises(LabctlError) as caught:
        cls.from_strings(pairs).check_station(station)
    return str(caught.value)


def _set(form: ProcedureForm, key: str, text: str) -> None:
    editor = form.editors[key]
    assert isinstance(editor, FieldEditor)
    if editor.line is not None:
        editor.line.setText(text)
    else:
        editor.set_value(text)


def test_the_form_has_a_field_per_parameter_with_unit_range_and_help(qtbot, station: Station) -> None:
    form = ProcedureForm()
    qtbot.addWidget(form)
    form.set_procedure(JVHysteresis, station)
    assert list(form.editors) == list(JVHysteresis.parameters())
    assert form.labels["scan_rates_V_s"].text() == "scan rates [V/s]"
    assert form.labels["sample"].text().endswith("*")  # required
    assert "0.0001 … 1000 V/s" in form.editors["scan_rates_V_s"].toolTip()
    assert "Ignored when n_points > 0." in form.editors["step_V"].toolTip()
    direction = form.editors["direction"]
    assert isinstance(direction, FieldEditor) and direction.combo is not None
    assert [direction.combo.itemData(i) for i in range(direction.combo.count())] == \
        JVHysteresis.parameters()["direction"].choices
    assert form.editors["shutter_only_while_measuring"].check is not None  # type: ignore[union-attr]
    # the station's first sample is offered, so the defaults are a valid run
    assert form.valid and form.pairs() == [f"sample={next(iter(station.samples))}"]


@pytest.mark.parametrize(("key", "text"), [("v_max_V", "abc"), ("step_V", "5"), ("scan_rates_V_s", "0.1, -1"),
                                           ("v_min_V", "1.6"), ("sample", "no_such_pixel")])
def test_validation_gives_the_cli_message_and_marks_the_field(qtbot, station: Station, key: str, text: str) -> None:
    form = ProcedureForm()
    qtbot.addWidget(form)
    form.set_procedure(JVHysteresis, station)
    _set(form, key, text)
    with qtbot.waitSignal(form.validated, timeout=2000) as signal:
        pass  # validation follows the edit after a short delay, without a click
    assert signal.args[0] is False
    expected = _cli_message(JVHysteresis, ["sample=wbg_ref", f"{key}={text}"] if key != "sample" else
                            [f"sample={text}"], station)
    assert form.message == expected
    marked = "v_min_V" if key == "v_min_V" else key
    assert "d32f2f" in form.editors[marked].styleSheet()
    _set(form, key, "wbg_ref" if key == "sample" else str(JVHysteresis.parameters()[key].default).strip("[]"))
    assert form.validate() and form.message == ""


def test_a_per_channel_table_validates_and_becomes_dotted_pairs(qtbot, station: Station) -> None:
    form = ProcedureForm()
    qtbot.addWidget(form)
    form.set_procedure(MPPTAging, station)
    table = form.editors["channels"]
    assert isinstance(table, ChannelTableEditor)
    assert list(table.columns) == ["tracker", "step_fraction", "hold_V", "dwell_s"]
    table.add_channel("wbg_ref", {"hold_V": 9})
    assert not form.validate()
    assert form.message == _cli_message(MPPTAging, ["samples=wbg_ref", "channels.wbg_ref.hold_V=9"], station)
    assert form.message.startswith("channel 'wbg_ref': parameter 'hold_V' = 9 V is invalid")
    assert "d32f2f" in table.table.styleSheet()
    table.set_value({"wbg_ref": {"hold_V": 0.9, "tracker": "constant_voltage"}})
    assert form.validate(), form.message
    assert "channels.wbg_ref.hold_V=0.9" in form.pairs()
    assert form.build().values["channels"] == {"wbg_ref": {"tracker": "constant_voltage", "hold_V": 0.9}}


def test_a_preset_fills_its_values_and_explicit_values_win(qtbot, station: Station) -> None:
    form = ProcedureForm()
    qtbot.addWidget(form)
    form.set_procedure(MPPTAging, station)
    form.editors["preset"].set_value("ISOS-L-2")  # as a user picking it from the list
    assert form.editors["temperature_C"].text() == "65"  # type: ignore[union-attr]
    assert "preset" in form.labels["temperature_C"].toolTip()
    values = form.build().values
    assert values["temperature_C"] == 65.0 and values["preset"] == "ISOS-L-2"
    assert "preset=ISOS-L-2" in form.pairs() and not any(p.startswith("temperature_C") for p in form.pairs())
    _set(form, "temperature_C", "50")
    assert form.build().values["temperature_C"] == 50.0
    form.editors["preset"].set_value("")
    assert form.build().values["temperature_C"] == 50.0  # still the user's own value
    _set(form, "temperature_C", "0")
    assert form.build().values["temperature_C"] == 0.0


def test_parameter_sets_are_saved_and_loaded_as_toml(qtbot, station: Station, tmp_path: Path) -> None:
    form = ProcedureForm()
    qtbot.addWidget(form)
    form.set_procedure(JVHysteresis, station)
    form.set_values({"sample": ["wbg_5avai"], "scan_rates_V_s": [0.05, 0.5], "light_soak_s": 30.0})
    path = tmp_path / "jv.toml"
    form.save_toml(path)
    expected = form.build().values
    assert JVHysteresis.from_strings(params_file=path).values == expected  # what `labctl run --params` reads
    other = ProcedureForm()
    qtbot.addWidget(other)
    other.set_procedure(JVHysteresis, station)
    other.load_toml(path)
    assert other.build().values == expected


def test_a_channel_column_with_choices_is_edited_from_a_list(qtbot, station: Station) -> None:
    form = ProcedureForm()
    qtbot.addWidget(form)
    form.set_procedure(MPPTAging, station)
    table = form.editors["channels"]
    assert isinstance(table, ChannelTableEditor)
    table.add_channel("wbg_ref")
    column = list(table.columns).index("tracker") + 1
    index = table.table.model().index(0, column)  # type: ignore[union-attr]
    delegate = table.table.itemDelegateForColumn(column)
    editor = delegate.createEditor(table.table, None, index)  # type: ignore[union-attr,arg-type]
    assert [editor.itemText(i) for i in range(editor.count())] == \
        ["", *MPPTAging.parameters()["channels"].group.parameters()["tracker"].choices]  # type: ignore[attr-defined]
    editor.setCurrentText("gradient")
    delegate.setModelData(editor, table.table.model(), index)  # type: ignore[union-attr]
    assert form.validate(), form.message
    assert form.build().values["channels"] == {"wbg_ref": {"tracker": "gradient"}}
