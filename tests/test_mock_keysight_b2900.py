"""The Keysight B2902A mock driven by raw SCPI as in the B2900 SCPI Command Reference (B2910-90030) and the
trigger system of the User's Guide (list sweep on the trigger timer, values scaled to a solar cell), then by
the real driver in-process and over TCP, with injected faults."""

from __future__ import annotations

import numpy as np
import pytest
from instrument_helpers import (
    RawBench,
    cell_world,
    check_isc_then_voc,
    check_no_step_back_after_sweep,
    check_short_sweep,
    check_smu_recovers,
    driver_over_tcp,
    sim_driver,
    source_and_switch_on,
)

from drivers.keysight_b2900 import KeysightB2900
from mock_instruments.keysight_b2900 import MockKeysightB2900
from mock_instruments.registry import mock_class

ADDRESS = "sim://keysight_b2900/smu"


class Bench(RawBench):
    def __init__(self) -> None:
        self.world = cell_world(6, dark_cell=True)
        self.world.wire("smu:1", "cell")
        self.world.wire("smu:2", "dark")
        self.smu = MockKeysightB2900(self.world, "smu")
        self.conn = self.smu.connect()

    def driver(self) -> KeysightB2900:
        return sim_driver(KeysightB2900, self.smu, ADDRESS, self.world.clock)


# ------------------------------------------------------------------------------------- raw SCPI
def test_spot_measurements_on_both_channels(bench: Bench) -> None:
    assert bench.ask("*IDN?").startswith("Keysight Technologies,B2902A,")
    assert bench.ask(":SYST:ERR?") == '+0,"No error"'
    bench.write("*RST", ":SOUR1:FUNC:MODE VOLT", ":SOUR1:VOLT 0", ":SENS1:CURR:PROT 0.01", ":OUTP1 ON",
                ":SOUR2:VOLT 0.5", ":OUTP2 ON")
    voltage, current, resistance, _stamp, status, source = bench.values(":MEAS? (@1)")
    assert abs(voltage) < 1e-4 and current == pytest.approx(-1.726e-3, rel=0.05) and source == 0.0
    assert abs(resistance) < 1 and int(status) & 1
    bench.write(":FORM:ELEM:SENS CURR")
    currents = bench.values(":MEAS? (@1,2)")
    assert currents[0] < -1e-3 and 0 < currents[1] < 1e-4  # channel 2: the dark cell at 0.5 V
    assert float(bench.ask(":MEAS:VOLT? (@2)")) == pytest.approx(0.5, abs=1e-4)
    bench.write(":SENS1:CURR:NPLC 2")
    assert bench.ask(":SYST:LFR?") == "60"
    assert float(bench.ask(":SENS1:CURR:APER?")) == pytest.approx(2 / 60)  # 60 Hz line by default
    start = bench.world.clock.now()
    bench.ask(":MEAS:CURR? (@1)")
    assert bench.world.clock.now() - start == pytest.approx(2 / 60 + 5e-4, abs=1e-6)
    assert bench.errors() == []


def test_list_sweep_paced_by_the_trigger_timer(bench: Bench) -> None:
    bench.write("*RST", ":SOUR:FUNC:MODE VOLT", ":SOUR:VOLT:MODE LIST", ":SOUR:LIST:VOLT 0,0.2,0.4,0.6,0.8",
                ':SENS:FUNC "CURR"', ":SENS:CURR:NPLC 0.1", ":SENS:CURR:PROT 0.1", ":TRIG:SOUR TIM",
                ":TRIG:TIM 4E-3", ":TRIG:COUN 5", ":TRIG:ACQ:DEL 1.5E-3", ":TRAC:FEED SENS", ":TRAC:POIN 5",
                ":TRAC:FEED:CONT NEXT", ":OUTP ON")
    start = bench.world.clock.now()
    bench.write(":INIT (@1)")
    assert bench.ask(":TRAC:POIN:ACT?") == "0"
    bench.write("*WAI")
    assert bench.world.clock.now() - start == pytest.approx(4 * 4e-3 + 1.5e-3 + 0.1 / 60, abs=1e-6)
    assert bench.ask(":TRAC:POIN:ACT?") == "5"
    stamps = bench.values(":FETC:ARR:TIME? (@1)")
    np.testing.assert_allclose(np.diff(stamps), 4e-3, rtol=1e-4)  # the timer period exactly
    np.testing.assert_allclose(bench.values(":FETC:ARR:SOUR? (@1)"), [0, 0.2, 0.4, 0.6, 0.8])
    currents = bench.values(":FETC:ARR:CURR? (@1)")
    assert currents[0] < 0 and np.all(np.diff(currents) > 0)
    assert bench.values(":TRAC:DATA?").size == 5 * 6
    assert bench.errors() == []


def test_waits_hold_back_steps_and_acquisitions_on_low_currents(bench: Bench) -> None:
    """:SENS:WAIT / :SOUR:WAIT ON with AUTO (*RST): on the dark cell's (channel 2) 100 nA range the assumed
    initial wait (50 ms) delays each acquisition after its step and each step after the previous one, whatever
    the timer and acquire delay say; with both waits off the timer paces the points exactly."""
    bench.write(":SOUR2:VOLT:MODE LIST", ":SOUR2:LIST:VOLT 0,1e-3,2e-3,3e-3", ":SENS2:CURR:NPLC 0.01",
                ":SENS2:CURR:PROT 0.01", ":TRIG2:SOUR TIM", ":TRIG2:TIM 0.02", ":TRIG2:COUN 4",
                ":TRIG2:ACQ:DEL 0.015", ":FORM:ELEM:SENS TIME", ":OUTP2 ON")
    assert np.all(np.diff(bench.values(":READ:ARR? (@2)")) > 0.04)
    bench.write(":SENS2:WAIT OFF", ":SOUR2:WAIT OFF")
    np.testing.assert_allclose(np.diff(bench.values(":READ:ARR? (@2)")), 0.02, rtol=1e-4)
    assert bench.ask(":SENS2:WAIT?") == "0" and bench.ask(":SOUR2:WAIT:AUTO?") == "1"
    assert bench.errors() == []


def test_output_after_a_sweep_is_the_dc_level_or_the_last_value(bench: Bench) -> None:
    """User's Guide, "Output after Sweep": START VALUE (default) returns to the DC level programmed before
    the sweep, END VALUE (:SOUR:FUNC:TRIG:CONT ON) keeps the last sweep value."""
    bench.write(":SENS:CURR:PROT 0.01", ":SOUR:VOLT 0.1", ":OUTP ON", ":SOUR:VOLT:MODE LIST",
                ":SOUR:LIST:VOLT 0.1,0.3,0.5", ":TRIG:COUN 3", ":INIT", "*WAI")
    assert bench.world.voltage_V("smu:1") == pytest.approx(0.1)
    assert bench.ask(":SOUR:FUNC:TRIG:CONT?") == "0"
    bench.write(":SOUR:FUNC:TRIG:CONT ON", ":INIT", "*WAI")
    assert bench.world.voltage_V("smu:1") == pytest.approx(0.5)
    bench.write(":SOUR:VOLT:MODE FIX")
    assert bench.world.voltage_V("smu:1") == pytest.approx(0.5)  # kept until a level command
    bench.write(":SOUR:VOLT 0.2")
    assert bench.world.voltage_V("smu:1") == pytest.approx(0.2)
    assert bench.errors() == []


def test_automatic_internal_trigger_runs_points_back_to_back(bench: Bench) -> None:
    bench.write(":SOUR:VOLT:MODE LIST", ":SOUR:LIST:VOLT 0,0.1,0.2", ":TRIG:SOUR AINT", ":TRIG:COUN 3",
                ":SENS:CURR:NPLC 1", ":SENS:CURR:PROT 0.01", ":FORM:ELEM:SENS TIME", ":OUTP ON")
    stamps = bench.values(":READ:ARR? (@1)")  # measurement wait on (*RST): 1 ms after each step on mA ranges
    np.testing.assert_allclose(np.diff(stamps), 1 / 60 + 1e-3, rtol=1e-4)
    bench.write(":SENS:WAIT OFF")
    stamps = bench.values(":READ:ARR? (@1)")
    np.testing.assert_allclose(np.diff(stamps), 1 / 60 + 1e-4, rtol=1e-4)  # aperture + settling
    bench.write(":TRIG:SOUR BUS")
    with pytest.raises(TimeoutError):
        bench.ask(":READ:ARR? (@1)")
    assert bench.errors() == [-214]


@pytest.mark.parametrize(("command", "code"), [
    (":SOUR3:VOLT 1", -114), (":SOUR:VOLT:ILIM 0.1", -113), (":SOUR:VOLT 300", -222),
    (":SENS:CURR:NPLC 1000", -222), (":SOUR:VOLT:MODE STEP", -224), (":INIT (@3)", -224),
    (":FORM REAL,32", -221), (":SOUR:VOLT:MODE LIST;:INIT", -221),  # an empty list
])
def test_bad_commands_are_reported_like_the_instrument(bench: Bench, command: str, code: int) -> None:
    bench.write(command)
    assert bench.errors() == [code]


@pytest.mark.parametrize(("line_frequency", "nplc", "code"), [
    (50, 100, 0), (50, 110, -222), (50, 4e-4, 0),  # 50 Hz: 4e-4 to 100 PLC (aperture 8 µs to 2 s)
    (60, 120, 0), (60, 110, 0), (60, 4.5e-4, -222), (60, 4.8e-4, 0),  # 60 Hz: 4.8e-4 to 120 PLC
])
def test_nplc_limits_follow_the_line_frequency(line_frequency: int, nplc: float, code: int) -> None:
    bench = Bench()
    bench.write(f":SYST:LFR {line_frequency}", ":SENS1:CURR:NPLC 1", f":SENS1:CURR:NPLC {nplc:g}")
    assert bench.errors() == ([code] if code else [])
    assert float(bench.ask(":SENS1:CURR:NPLC?")) == pytest.approx(1.0 if code else nplc)


def test_nothing_changes_while_a_sweep_runs_and_abort_stops_it(bench: Bench) -> None:
    bench.write(":SOUR:VOLT:MODE LIST", ":SOUR:LIST:VOLT 0,0.1,0.2", ":TRIG:SOUR TIM", ":TRIG:TIM 1",
                ":TRIG:COUN 3", ":OUTP ON", ":INIT (@1)")
    bench.write(":SOUR:FUNC:MODE CURR")
    assert bench.errors() == [-221]
    bench.world.clock.sleep(1.5)
    bench.write(":ABOR (@1)")
    bench.world.clock.sleep(5)
    assert bench.values(":FETC:ARR:SOUR? (@1)").tolist() == [0.0, 0.1]


# ------------------------------------------------------------------------- the driver in-process
def test_driver_role_methods_against_the_mock(bench: Bench) -> None:
    inst = bench.driver()
    assert "B2902A" in inst.identify()
    check_isc_then_voc(inst.channel("1"))
    snapshot = inst.settings_snapshot()
    assert snapshot["ch1.nplc"] == 0.1 and snapshot["ch1.source_function"] == "current"
    assert snapshot["ch2.output_on"] is False
    inst.safe_state()
    assert bench.ask(":OUTP1?") == "0" and bench.errors() == []


def test_driver_sweep_hits_the_requested_scan_rate(bench: Bench) -> None:
    smu = bench.driver().channel("1")
    source_and_switch_on(smu, -0.1)
    voltages = np.round(np.arange(-0.1, 1.3 + 1e-9, 0.01), 4)  # 0.1 V/s with 10 mV steps
    result = smu.sweep_voltage(voltages, 0.1)
    assert result.achieved_rate_V_s == pytest.approx(0.1, rel=0.02)
    assert result.current_A[0] < -1e-3 and result.current_A[-1] > 0
    assert bench.ask(":SOUR1:VOLT:MODE?") == "FIX" and bench.errors() == []


def test_driver_recovers_from_a_timeout_and_a_dropped_connection(bench: Bench) -> None:
    smu = bench.driver().channel("1")
    check_smu_recovers(smu, bench.smu, smu.parent, ADDRESS)


def test_driver_over_tcp(bench: Bench) -> None:
    with driver_over_tcp(KeysightB2900, bench.smu, bench.world.clock) as inst:
        smu = inst.channel("1")
        source_and_switch_on(smu, 0.0)
        check_short_sweep(smu)
        inst.safe_state()


def test_registry_names_the_mock() -> None:
    assert mock_class("keysight_b2900") is MockKeysightB2900


def test_driver_sweep_on_the_dark_channel_is_paced_by_the_timer_alone(bench: Bench) -> None:
    """The driver switches the measurement and source waits off for the sweep (and back on after), so the
    50 ms the waits would take on the dark cell's nA ranges do not move the timer-paced points."""
    smu = bench.driver().channel("2")
    source_and_switch_on(smu, 0.0, nplc=0.01)
    result = smu.sweep_voltage(np.linspace(0.0, 0.003, 4), 0.02)
    np.testing.assert_allclose(np.diff(result.time_s), 0.02, rtol=1e-4)
    assert bench.ask(":SENS2:WAIT?") == "1" and bench.ask(":SOUR2:WAIT?") == "1"


def test_driver_sweep_ends_at_the_last_level_without_a_step_back(bench: Bench) -> None:
    """Output after sweep END: the output stays at the last list value while the driver reads the data."""
    smu = bench.driver().channel("1")
    source_and_switch_on(smu, 0.0)
    check_no_step_back_after_sweep(smu, bench.world, "smu:1")
