"""Parameters are declared once and validated with messages that name parameter, value, unit and range."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers_procedures import CountingProcedure

from labctl.errors import ParameterError
from labctl.runner import BoolParameter, FloatListParameter, FloatParameter, Procedure, TextParameter
from labctl.runner.parameters import ChannelParameters, ChannelTable


class ScanLike(Procedure):
    name = "scanlike"
    rates_V_s = FloatListParameter("scan rates", unit="V/s", default=[0.1], minimum=1e-4, maximum=1e3)
    start_V = FloatParameter("start", unit="V", default=-0.1, minimum=-5.0, maximum=5.0)
    stop_V = FloatParameter("stop", unit="V", default=1.2, minimum=-5.0, maximum=5.0)
    order = TextParameter("order", default="RS+FS", choices=["RS", "FS", "RS+FS", "FS+RS"])
    dark = BoolParameter("dark", default=False)

    def check_consistency(self) -> None:
        if self.start_V >= self.stop_V:
            raise ParameterError(f"parameter 'start_V' = {self.start_V} V must be below stop_V = {self.stop_V} V")


def test_defaults_and_typed_values() -> None:
    proc = ScanLike(rates_V_s=[0.01, 1], dark=True)
    assert proc.rates_V_s == [0.01, 1.0]
    assert proc.start_V == -0.1
    assert proc.dark is True
    assert proc.values == {"rates_V_s": [0.01, 1.0], "start_V": -0.1, "stop_V": 1.2, "order": "RS+FS",
                           "dark": True}


def test_out_of_range_message_names_parameter_value_unit_and_range() -> None:
    with pytest.raises(ParameterError) as info:
        ScanLike(start_V=7.5)
    message = str(info.value)
    assert "'start_V'" in message and "7.5 V" in message and "-5 … 5 V" in message


def test_list_elements_are_each_checked() -> None:
    with pytest.raises(ParameterError, match=r"'rates_V_s' = -1 V/s .*0\.0001 … 1000 V/s"):
        ScanLike(rates_V_s=[0.1, -1.0])


def test_choices_are_listed() -> None:
    with pytest.raises(ParameterError, match="one of 'RS', 'FS', 'RS\\+FS', 'FS\\+RS'"):
        ScanLike(order="up")


def test_unknown_parameter_lists_known_ones() -> None:
    with pytest.raises(ParameterError, match=r"unknown parameter.*'rate'.*known: rates_V_s"):
        ScanLike(rate=1.0)


def test_cross_parameter_check() -> None:
    with pytest.raises(ParameterError, match="start_V"):
        ScanLike(start_V=1.0, stop_V=0.5)


def test_command_line_strings_and_comma_lists() -> None:
    proc = ScanLike.from_strings(["rates_V_s=0.01,0.1,1", "dark=yes", "stop_V=1.4"])
    assert proc.rates_V_s == [0.01, 0.1, 1.0]
    assert proc.dark is True
    assert proc.stop_V == 1.4


def test_not_a_number_is_reported() -> None:
    with pytest.raises(ParameterError, match="'stop_V' = 'abc' is invalid; not a number"):
        ScanLike.from_strings(["stop_V=abc"])


def test_nan_is_rejected() -> None:
    with pytest.raises(ParameterError, match="finite"):
        ScanLike.from_strings(["stop_V=nan"])


def test_params_file_then_overrides(tmp_path: Path) -> None:
    params = tmp_path / "p.toml"
    params.write_text('rates_V_s = [0.05, 0.5]\nstop_V = 1.3\n[ignored]\n', encoding="utf-8")
    params.write_text('[parameters]\nrates_V_s = [0.05, 0.5]\nstop_V = 1.3\n', encoding="utf-8")
    proc = ScanLike.from_strings(["stop_V=1.1"], params_file=params)
    assert proc.rates_V_s == [0.05, 0.5]
    assert proc.stop_V == 1.1


def test_integer_parameter_rejects_fractions() -> None:
    with pytest.raises(ParameterError, match=r"'n_points' = 2\.5 is invalid; expected a whole number"):
        CountingProcedure(n_points=2.5)


@pytest.mark.parametrize("text", ["inf", "-inf", "nan"])
def test_integer_parameter_from_a_params_file_rejects_infinity_and_nan(tmp_path: Path, text: str) -> None:
    params = tmp_path / "p.toml"
    params.write_text(f"[parameters]\nn_points = {text}\n", encoding="utf-8")  # TOML has inf and nan
    with pytest.raises(ParameterError, match=r"'n_points' = .*nan|'n_points' = .*inf") as info:
        CountingProcedure.from_strings([], params_file=params)
    assert "allowed: 1 … 1000000" in str(info.value)


def test_describe_feeds_forms() -> None:
    described = {k: p.describe() for k, p in ScanLike.parameters().items()}
    assert described["rates_V_s"]["unit"] == "V/s"
    assert described["order"]["choices"] == ["RS", "FS", "RS+FS", "FS+RS"]
    assert described["start_V"]["minimum"] == -5.0


class Tracking(ChannelParameters):
    hold_V = FloatParameter("hold voltage", unit="V", default=0.9, minimum=-1.0, maximum=2.0)
    tracker = TextParameter("tracker", default="po", choices=["po", "cv"])


class Aging(Procedure):
    name = "aging_like"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"ISOS-L-2": {"temperature_C": 65.0, "suns": 1.0},
                                                    "ISOS-D-1": {"suns": 0.0}}

    preset = TextParameter("ISOS protocol", default="", choices=["", *PRESETS])
    suns = FloatParameter("light", unit="suns", default=1.0, minimum=0.0, maximum=2.0)
    temperature_C = FloatParameter("stage temperature", unit="°C", default=25.0, minimum=-40.0, maximum=100.0)
    hold_V = FloatParameter("hold voltage", unit="V", default=0.9, minimum=-1.0, maximum=2.0)
    tracker = TextParameter("tracker", default="po", choices=["po", "cv"])
    channels = ChannelTable(Tracking)


def test_a_per_channel_error_names_the_channel_parameter_value_and_range() -> None:
    with pytest.raises(ParameterError) as info:
        Aging(channels={"ch01": {"hold_V": 1.0}, "ch03": {"hold_V": 5.0}})
    assert str(info.value) == "channel 'ch03': parameter 'hold_V' = 5 V is invalid; allowed: -1 … 2 V"
    with pytest.raises(ParameterError, match=r"channel 'ch02': parameter 'tracker' = 'x' is invalid; allowed: one of"):
        Aging.from_strings(["channels.ch02.tracker=x"])


def test_a_channel_takes_the_run_wide_value_unless_its_table_says_otherwise() -> None:
    proc = Aging.from_strings(["hold_V=0.8", "channels.ch03.hold_V=1.1", "channels.ch03.tracker=cv"])
    assert proc.channel_values("ch03")["hold_V"] == 1.1 and proc.channel_values("ch03")["tracker"] == "cv"
    assert proc.channel_values("ch01")["hold_V"] == 0.8 and proc.channel_values("ch01")["tracker"] == "po"


def test_a_per_channel_table_from_a_params_file(tmp_path: Path) -> None:
    params = tmp_path / "aging.toml"
    params.write_text("[parameters]\nsuns = 0.5\n[parameters.channels.ch07]\nhold_V = 1.2\n", encoding="utf-8")
    proc = Aging.from_strings([], params_file=params)
    assert proc.suns == 0.5 and proc.channel_values("ch07")["hold_V"] == 1.2


def test_a_preset_fills_parameters_and_explicit_values_win() -> None:
    proc = Aging(preset="ISOS-L-2", suns=0.8)
    assert proc.temperature_C == 65.0 and proc.suns == 0.8
    assert proc.preset_filled == ["temperature_C"]
    with pytest.raises(ParameterError, match="'preset' = 'ISOS-X' is invalid; allowed: one of"):
        Aging(preset="ISOS-X")


def test_a_parameter_given_twice_is_refused() -> None:
    with pytest.raises(ParameterError, match=r"parameter 'suns' is given twice .*give it once"):
        Aging.from_strings(["suns=1", "suns=0.5"])


def test_the_json_schema_carries_units_ranges_choices_and_presets() -> None:
    schema = Aging.json_schema()
    hold = schema["properties"]["hold_V"]
    assert hold["unit"] == "V" and hold["minimum"] == -1.0 and hold["maximum"] == 2.0
    assert schema["properties"]["tracker"]["enum"] == ["po", "cv"]
    assert set(schema["presets"]) == {"ISOS-L-2", "ISOS-D-1"}
    channel = schema["$defs"]["TrackingModel"]["properties"]["hold_V"]
    assert channel["unit"] == "V"
