"""The Keithley 2450 mock, driven by raw SCPI as in the 2450 Reference Manual (2450-901-01, section 6).

Command sequences follow the manual's examples; voltages are scaled to a solar cell (the manual sweeps a
resistor to 10 V).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from instrument_helpers import AREA_CM2, RawBench, cell_world

from labctl.errors import StationError
from mock_instruments.keithley2450 import MockKeithley2450
from mock_instruments.registry import MOCKS, mock_class


class Bench(RawBench):
    error_query = ":SYSTem:ERRor?"

    def __init__(self, seed: int = 11, **options: object) -> None:
        self.world = cell_world(seed, lit=False)
        self.light = self.world.light()
        self.world.wire("smu", "cell")
        self.smu = MockKeithley2450(self.world, "smu", **options)
        self.conn = self.smu.connect()


def test_identification_source_voltage_and_read_current(bench: Bench) -> None:
    assert re.fullmatch(r"KEITHLEY INSTRUMENTS,MODEL 2450,04\d{6},1\.7\.3c", bench.ask("*IDN?"))
    bench.write("*RST", ":SOURce:FUNCtion VOLT", ":SOURce:VOLTage:RANGe 2", ":SOURce:VOLTage:ILIMit 0.1",
                ':SENSe:FUNCtion "CURR"', ":SENSe:CURRent:RANGe:AUTO ON", ":SENSe:CURRent:NPLCycles 1",
                ":SOURce:VOLTage 0.5", ":OUTPut ON")
    assert bench.ask(":OUTPut?") == "1"
    assert float(bench.ask(":SOURce:VOLTage?")) == 0.5
    assert bench.ask(":SENS:FUNC?") == '"CURR:DC"'
    current = float(bench.ask(":READ?"))
    assert current == pytest.approx(bench.world.current_at_voltage_A("smu", 0.5), abs=1e-8)
    assert float(bench.ask(":MEASure:VOLTage?")) == pytest.approx(0.5, abs=1e-4)
    assert bench.errors() == []


def test_lit_cell_reads_negative_current_at_zero_volts(bench: Bench) -> None:
    bench.write(":SOUR:FUNC VOLT", ":SOUR:VOLT 0", ":SOUR:VOLT:ILIM 0.01", ":OUTP ON")
    dark = float(bench.ask(":READ?"))
    assert abs(dark) < 1e-8
    bench.light.open_shutter()
    lit = float(bench.ask(":READ?"))
    assert lit < 0
    assert -lit / (AREA_CM2 * 1e-3) == pytest.approx(17.26, rel=0.1)  # Jsc of wbg_ref, mA/cm²


def test_timed_linear_sweep_into_the_buffer(bench: Bench) -> None:
    bench.light.open_shutter()
    bench.write("*RST", ':SENS:FUNC "CURR"', ":SENS:CURR:RANG:AUTO ON", ":SENS:CURR:NPLC 1",
                ":SOUR:FUNC VOLT", ":SOUR:VOLT:RANG 2", ":SOUR:VOLT:ILIM 0.1", ":TRAC:CLE")
    bench.write(":SOUR:SWE:VOLT:LIN 0, 1, 11, 0.05")
    start = bench.world.clock.now()
    bench.write(":INIT", "*WAI")
    # *RST: auto source delay (1 ms on the mA ranges), then the 50 ms delay block added to it (6-85), source
    # readback on (a second 1 PLC integration at 60 Hz), trigger-model overhead
    period = 1e-3 + 0.05 + 2 / 60 + 0.2e-3
    assert bench.world.clock.now() - start == pytest.approx(11 * period, rel=0.02)
    assert bench.ask(":TRAC:ACT?") == "11"
    data = np.array(bench.ask(':TRAC:DATA? 1, 11, "defbuffer1", SOUR, READ, REL').split(","), float)
    source, current, rel = data.reshape(-1, 3).T
    np.testing.assert_allclose(source, np.linspace(0, 1, 11), atol=1e-4)
    assert rel[0] == 0.0
    np.testing.assert_allclose(np.diff(rel), period, rtol=1e-5)
    assert np.all(current[:8] < 0)  # photocurrent below the maximum power point
    assert bench.ask(":TRIG:STAT?").startswith("IDLE")
    assert bench.ask(":OUTP?") == "1"  # the output stays on at the last level
    assert bench.errors() == []


def test_list_sweep_with_the_manual_example_sequence(bench: Bench) -> None:
    bench.write(':SENS:FUNC "CURR"', "SENS:CURR:RANG:AUTO ON", "SENS:CURR:RSEN OFF", "SOUR:FUNC VOLT",
                "SOUR:VOLT:RANG 2", "SOUR:VOLT:ILIM 1", "SOUR:LIST:VOLT 0.1, 0.5, 0.1, 0.5, 0.1, 0.5",
                "SOUR:LIST:VOLT:APP 0.1, 0.5, 0.1, 0.5, 0.1, 0.5", "SOUR:SWE:VOLT:LIST 1, 0.2", "INIT",
                "*WAI")
    assert bench.ask("SOUR:LIST:VOLT:POIN?") == "12"
    reply = bench.ask('TRAC:DATA? 1, 12, "defbuffer1", SOUR, READ')
    source = np.array(reply.split(","), float)[::2]
    np.testing.assert_allclose(source, [0.1, 0.5] * 6, atol=1e-4)
    assert bench.errors() == []


def test_user_buffer_fetch_and_elements(bench: Bench) -> None:
    bench.write(':TRAC:MAKE "jv", 1000', ":SOUR:VOLT 0.2", ":OUTP ON",
                ':SOUR:SWE:VOLT:LIN 0, 0.4, 5, 0, 1, BEST, ON, ON, "jv"')
    bench.write(":INIT", "*WAI")
    assert bench.ask(':TRAC:ACT? "jv"') == "10"  # dual sweep: there and back
    assert bench.ask(":TRAC:ACT?") == "0"
    units = bench.ask(':TRAC:DATA? 1, 1, "jv", UNIT, SOURUNIT')
    assert units == "Amp DC,Volt DC"
    last = bench.ask(':FETC? "jv", SOUR')
    assert float(last) == pytest.approx(0.0, abs=1e-4)
    assert bench.ask(':READ? "defbuffer1", SOUR, READ').count(",") == 1
    bench.write(':TRAC:DEL "jv"', ':TRAC:ACT? "jv"')
    assert bench.errors()[-1] in (-224, -420)


@pytest.mark.parametrize(
    ("command", "query"),
    [(":SOUR:VOLT 211", ":SOUR:VOLT?"), (":SOUR:CURR -1.1", ":SOUR:CURR?"),
     (":SOUR:VOLT:ILIM 2", ":SOUR:VOLT:ILIM?"), (":SENS:CURR:NPLC 20", ":SENS:CURR:NPLC?")],
)
def test_out_of_range_values_are_refused_with_222(bench: Bench, command: str, query: str) -> None:
    before = bench.ask(query)
    bench.write(command)
    assert bench.errors() == [-222]
    assert bench.ask(query) == before


def test_fixed_source_range_limits_the_level(bench: Bench) -> None:
    bench.write(":SOUR:VOLT:RANG 2", ":SOUR:VOLT 5")
    assert bench.errors() == [-222]
    assert bench.ask(":SOUR:VOLT:RANG?") == "2.000000E+00"
    bench.write(":SOUR:SWE:VOLT:LIN 0, 300, 10")
    assert bench.errors() == [-222]


@pytest.mark.parametrize(
    "command",
    [":SOUR:VOLT:BOGUS 1", ":SENS:CURR:PROT 0.1",  # 2400 compliance syntax: not a 2450 command
     ":TRAC:FEED SENS", ":SOUR2:VOLT 1", ":SOURCE:VOLTAGE:LEVEL:IMMEDIATE:AMPLITUDE:X 1"],
)
def test_wrong_commands_fail_like_on_the_instrument(bench: Bench, command: str) -> None:
    bench.write(command)
    assert bench.errors() in ([-113], [-114])


def test_integration_time_is_charged_to_the_clock(bench: Bench) -> None:
    bench.write(":OUTP ON", ":SENS:CURR:NPLC 1", ":SOUR:VOLT:READ:BACK OFF")
    clock = bench.world.clock
    start = clock.now()
    bench.ask(":READ?")
    one = clock.now() - start
    bench.write(":SENS:CURR:NPLC 10")
    start = clock.now()
    bench.ask(":READ?")
    ten = clock.now() - start
    assert one == pytest.approx(1 / 60, abs=1e-3)
    assert ten == pytest.approx(10 / 60, abs=1e-3)
    assert bench.ask(":SYST:LFR?") == "60"
    fifty = Bench(line_frequency_Hz=50)
    fifty.write(":SOUR:VOLT:READ:BACK OFF")
    start = fifty.world.clock.now()
    fifty.ask(":READ?")
    assert fifty.world.clock.now() - start == pytest.approx(1 / 50, abs=1e-3)


def test_source_readback_costs_a_second_integration(bench: Bench) -> None:
    """6-77: with readback on (*RST) the source is measured before every reading, which slows it down."""
    bench.write(":OUTP ON", ":SENS:CURR:NPLC 1")
    assert bench.ask(":SOUR:VOLT:READ:BACK?") == "1"
    clock = bench.world.clock
    start = clock.now()
    bench.ask(":READ?")
    assert clock.now() - start == pytest.approx(2 / 60, abs=1e-3)


def test_compliance_clamps_current_and_current_sourcing_finds_voc(bench: Bench) -> None:
    bench.light.open_shutter()
    bench.write(":SOUR:VOLT 0.5", ":SOUR:VOLT:ILIM 1e-3", ":OUTP ON")
    reading, source, status = bench.ask(':READ? "defbuffer1", READ, SOUR, SOURSTAT').split(",")
    assert float(reading) == pytest.approx(-1e-3, rel=1e-3)  # held at the limit
    assert float(source) > 0.5 and status == "1"  # the cell pushed the voltage up
    bench.write(":SOUR:FUNC CURR", ":SOUR:CURR 0", ":SOUR:CURR:VLIM 5", ':SENS:FUNC "VOLT"')
    voc = float(bench.ask(":READ?"))
    assert 1.0 < voc < 1.4
    bench.write(":SOUR:CURR:VLIM 0.5")
    assert float(bench.ask(":READ?")) == pytest.approx(0.5, abs=1e-3)


def test_output_off_leaves_the_cell_open(bench: Bench) -> None:
    bench.light.open_shutter()
    bench.write(":SOUR:VOLT 0", ":OUTP ON")
    assert bench.world.voltage_V("smu") > 1.0  # *RST limit 105 µA: the photocurrent drives it to compliance
    bench.write(":SOUR:VOLT:ILIM 0.01")
    assert bench.world.voltage_V("smu") == 0.0
    bench.write(":OUTP OFF")
    assert bench.world.voltage_V("smu") > 1.0  # open circuit: Voc
    assert abs(float(bench.ask(":READ?"))) < 1e-8


def test_abort_stops_a_running_sweep(bench: Bench) -> None:
    bench.write(":SOUR:SWE:VOLT:LIN 0, 1, 101, 1", ":INIT")
    assert bench.ask(":TRIG:STAT?").startswith("RUNNING")
    bench.write(":SOUR:FUNC CURR")
    assert bench.errors() == [-221]  # settings conflict while the trigger model runs
    bench.world.clock.sleep(10.0)
    bench.write(":ABOR")
    assert bench.ask(":TRIG:STAT?").startswith("IDLE")
    assert 5 <= int(bench.ask(":TRAC:ACT?")) <= 12


def _sweep(bench: Bench, start_V: float, stop_V: float, rate_V_s: float, step_V: float = 0.01
           ) -> tuple[np.ndarray, np.ndarray, float]:
    points = round(abs(stop_V - start_V) / step_V) + 1
    delay_s = step_V / rate_V_s - 1 / 60 - 0.2e-3
    # the configuration list made by the sweep command keeps the active source delay and readback: both off
    bench.write(":SOUR:VOLT:DEL 0", ":SOUR:VOLT:READ:BACK OFF", ":TRAC:CLE",
                f":SOUR:SWE:VOLT:LIN {start_V}, {stop_V}, {points}, {delay_s}", ":INIT", "*WAI")
    data = np.array(bench.ask(f':TRAC:DATA? 1, {points}, "defbuffer1", SOUR, READ, REL').split(","), float)
    voltage, current, rel = data.reshape(-1, 3).T
    j_mA_cm2 = -current / (AREA_CM2 * 1e-3)
    return voltage, j_mA_cm2, abs(voltage[-1] - voltage[0]) / (rel[-1] - rel[0])


def test_timed_sweep_shows_hysteresis_on_wbg_ref(bench: Bench) -> None:
    bench.light.open_shutter()
    bench.write(":SOUR:VOLT:ILIM 0.1", ":SOUR:VOLT 1.4", ":OUTP ON")
    bench.world.clock.sleep(10.0)  # pre-bias above Voc, as before a reverse scan
    v_rs, j_rs, rate_rs = _sweep(bench, 1.4, -0.1, 0.1)
    v_fs, j_fs, rate_fs = _sweep(bench, -0.1, 1.4, 0.1)
    assert rate_rs == pytest.approx(0.1, rel=0.01) and rate_fs == pytest.approx(0.1, rel=0.01)
    p_rs, p_fs = np.max(v_rs * j_rs), np.max(v_fs * j_fs)
    assert (p_rs - p_fs) / p_rs > 0.05  # normal hysteresis: the reverse scan looks better
    j_rs_08 = np.interp(1.0, v_rs[::-1], j_rs[::-1])
    assert j_rs_08 - np.interp(1.0, v_fs, j_fs) > 0.5  # mA/cm² apart at ~0.8 Voc


def test_the_registry_finds_the_mock_by_its_station_key() -> None:
    assert mock_class("keithley2450") is MockKeithley2450
    assert MockKeithley2450.model == "keithley2450" and "keithley2450" in MOCKS
    with pytest.raises(StationError, match="keithley9999"):
        mock_class("keithley9999")


def _point_period(bench: Bench, *setup: str, lit: bool = True) -> float:
    """The time per point of a 5-point list sweep (20 ms delay block) after ``setup``, on the lit cell (mA,
    1 ms auto delay) or the dark one."""
    if lit:
        bench.light.open_shutter()
    bench.write(":SOUR:VOLT:ILIM 0.1", ":OUTP ON", ":SENS:CURR:NPLC 1", *setup, ":TRAC:CLE",
                ":SOUR:SWE:VOLT:LIST 1, 0.02", ":INIT",
                "*WAI")
    rel = np.array(bench.ask(':TRAC:DATA? 1, 5, "defbuffer1", REL').split(","), float)
    return float(np.mean(np.diff(rel)))


def test_configuration_list_points_keep_the_settings_active_when_the_list_was_sent(bench: Bench) -> None:
    """3-38 / 6-66, 6-67, 6-77 "Where saved: source configuration list": delay, auto delay and readback set
    *after* :SOUR:LIST:VOLT do not reach the points; the sweep recalls what each point stored."""
    late = _point_period(bench, ":SOUR:LIST:VOLT 0, 0.1, 0.2, 0.3, 0.4", ":SOUR:VOLT:DEL 0",
                         ":SOUR:VOLT:READ:BACK OFF")
    assert late == pytest.approx(1e-3 + 0.02 + 2 / 60 + 0.2e-3, rel=1e-3)  # auto delay and readback recalled
    assert bench.ask(":SOUR:VOLT:DEL:AUTO?") == "1"  # the last point's recall made them active again
    early = _point_period(bench, ":SOUR:VOLT:DEL 0", ":SOUR:VOLT:READ:BACK OFF",
                          ":SOUR:LIST:VOLT 0, 0.1, 0.2, 0.3, 0.4")
    assert early == pytest.approx(0.02 + 1 / 60 + 0.2e-3, rel=1e-3)


def test_the_sweep_delay_block_adds_to_the_source_delay(bench: Bench) -> None:  # 6-85
    period = _point_period(bench, ":SOUR:VOLT:DEL 0.01", ":SOUR:VOLT:READ:BACK OFF",
                           ":SOUR:LIST:VOLT 0, 0.1, 0.2, 0.3, 0.4")
    assert period == pytest.approx(0.01 + 0.02 + 1 / 60 + 0.2e-3, rel=1e-3)


def test_auto_delay_is_long_on_the_lowest_current_ranges(bench: Bench) -> None:
    """The dark cell within 2 mV of 0 V draws tens of nA: the 10 nA / 100 nA ranges, 50 ms auto delay."""
    period = _point_period(bench, ":SOUR:VOLT:READ:BACK OFF", ":SOUR:LIST:VOLT 0, 5e-4, 1e-3, 1.5e-3, 2e-3",
                           lit=False)
    assert period == pytest.approx(0.05 + 0.02 + 1 / 60 + 0.2e-3, rel=1e-3)


def test_a_delay_block_below_50_us_is_refused(bench: Bench) -> None:  # 6-85: 0, or 50 µs to 10 ks
    bench.write(":SOUR:LIST:VOLT 0, 0.1", ":SOUR:SWE:VOLT:LIST 1, 2e-5")
    assert bench.errors() == [-222]


def test_simple_loop_has_no_source_block(bench: Bench) -> None:  # 3-104 Simple Loop: delay, measure, count
    """The SimpleLoop template measures ``count`` times after a constant delay and leaves the source alone:
    no source delay (the *RST auto delay of 1 ms would otherwise add to every point) and no output switched
    on. Readings end delay + NPLC / 60 Hz + 0.2 ms apart (the previous mock recalled a source point each time)."""
    bench.light.open_shutter()
    bench.write(':SENS:FUNC "CURR"', ":SENS:CURR:NPLC 1", ":SOUR:VOLT:READ:BACK OFF", ":SOUR:VOLT:ILIM 0.01",
                ":SOUR:VOLT 0.5", ':TRIG:LOAD "SimpleLoop", 5, 0.05, "defbuffer1"', ":INIT", "*WAI")
    assert bench.ask(":OUTP?") == "0"
    bench.write(":OUTP ON", ':TRIG:LOAD "SimpleLoop", 5, 0.05, "defbuffer1"', ":INIT", "*WAI")
    times = bench.values(':TRAC:DATA? 6, 10, "defbuffer1", REL')
    np.testing.assert_allclose(np.diff(times), 0.05 + 1 / 60 + 2e-4, atol=1e-6)
    assert np.all(bench.values(':TRAC:DATA? 6, 10, "defbuffer1", READ') < -1e-3)
    assert bench.errors() == []
