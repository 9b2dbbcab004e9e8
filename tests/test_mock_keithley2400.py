"""The Keithley 2400 mock driven by raw SCPI as in the 2400 Series SourceMeter User's Manual (2400S-900-01,
section 18 and the programming examples of sections 9 "Data Store" and 10 "Sweep Operation", scaled to a
solar cell), then by the real driver in-process and over TCP, with injected faults."""

from __future__ import annotations

import numpy as np
import pytest
from instrument_helpers import (
    RawBench,
    cell_world,
    check_no_step_back_after_sweep,
    check_short_sweep,
    check_smu_recovers,
    driver_over_tcp,
    sim_driver,
    source_and_switch_on,
)

from drivers.keithley2400 import Keithley2400
from mock_instruments.keithley2400 import MockKeithley2400
from mock_instruments.registry import mock_class

ADDRESS = "sim://keithley2400/smu"


class Bench(RawBench):
    def __init__(self, seed: int = 3, lit: bool = True, **options: object) -> None:
        self.world = cell_world(seed, lit=lit)
        self.world.wire("smu", "cell")
        self.smu = MockKeithley2400(self.world, "smu", **options)
        self.conn = self.smu.connect()

    def driver(self) -> Keithley2400:
        return sim_driver(Keithley2400, self.smu, ADDRESS, self.world.clock)


# ------------------------------------------------------------------------------ raw SCPI (manual)
def test_identity_and_a_single_reading_with_the_five_elements(bench: Bench) -> None:
    assert bench.ask("*IDN?").startswith("KEITHLEY INSTRUMENTS INC.,MODEL 2400,")
    bench.write("*RST", ":SOUR:FUNC VOLT", ":SOUR:VOLT 0", ":SENS:CURR:PROT 0.01", ":OUTP ON")
    assert bench.ask(":FORM:ELEM?") == "VOLT,CURR,RES,TIME,STAT"
    voltage, current, resistance, stamp, status = bench.values(":READ?")
    assert voltage == 0.0 and resistance == 9.91e37  # V is the programmed source value, R not measured
    assert current == pytest.approx(-1.726e-3, rel=0.05)  # lit cell at 0 V: -Jsc x area (SMU sign)
    assert stamp > 0
    bits = int(status)
    assert bits & (1 << 14) and bits & (1 << 12) and bits & 4 and not bits & 8  # V-source, I-meas, front
    bench.write(":FORM:ELEM CURR")
    assert float(bench.ask(":READ?")) < 0
    assert bench.errors() == []


def test_linear_staircase_current_sweep_with_read(bench: Bench) -> None:  # section 10, remote sweep example
    bench.write("*RST", ":SENS:FUNC:CONC OFF", ":SOUR:FUNC CURR", ":SENS:FUNC 'VOLT:DC'", ":SENS:VOLT:PROT 2",
                ":SOUR:CURR:START 0", ":SOUR:CURR:STOP 1E-3", ":SOUR:CURR:STEP 1E-4", ":SOUR:CURR:MODE SWE",
                ":SOUR:SWE:RANG AUTO", ":SOUR:SWE:SPAC LIN", ":TRIG:COUN 11", ":SOUR:DEL 0.1",
                ":FORM:ELEM VOLT,CURR", ":OUTP ON")
    data = bench.values(":READ?").reshape(-1, 2)
    assert data.shape == (11, 2)
    np.testing.assert_allclose(data[:, 1], np.linspace(0, 1e-3, 11), atol=1e-12)  # I: the source values
    assert 1.0 < data[0, 0] < 1.4  # 0 A into the lit cell: Voc
    assert np.all(np.diff(data[:, 0]) > 0)  # forward injection raises V
    assert bench.errors() == []


def test_custom_list_sweep_into_the_buffer_with_timestamps(bench: Bench) -> None:  # sections 9 and 10
    bench.write("*RST", ":SOUR:FUNC VOLT", ":SENS:CURR:PROT 0.01", ":SENS:CURR:RANG 0.01", ":SOUR:VOLT:MODE LIST",
                ":SOUR:LIST:VOLT 0.7,0.1,0.3,0.8,0.2", ":TRIG:COUN 5", ":SOUR:DEL 0.1", ":SYST:AZER OFF",
                ":SENS:CURR:NPLC 1", ":TRAC:POIN 5", ":TRAC:FEED SENS", ":TRAC:FEED:CONT NEXT", ":OUTP ON")
    start = bench.world.clock.now()
    bench.write(":INIT", "*WAI")
    period = 0.1 + 225e-6 + 50e-6 + (1 / 60 + 185e-6) + 0.3e-3  # appendix A, case III + source delay
    assert bench.world.clock.now() - start == pytest.approx(5 * period, rel=0.01)
    assert bench.ask(":TRAC:POIN:ACT?") == "5" and bench.ask(":TRAC:FEED:CONT?") == "NEV"
    data = bench.values(":TRAC:DATA?").reshape(-1, 5)
    np.testing.assert_allclose(data[:, 0], [0.7, 0.1, 0.3, 0.8, 0.2])
    np.testing.assert_allclose(np.diff(data[:, 3]), period, rtol=1e-4)  # ABS: from the first reading
    assert data[0, 3] == 0.0
    bench.write(":TRAC:TST:FORM DELT")
    np.testing.assert_allclose(bench.values(":TRAC:DATA?").reshape(-1, 5)[1:, 3], period, rtol=1e-4)
    assert int(bench.ask(":STAT:MEAS:COND?")) & 512  # buffer full
    assert bench.ask(":SOUR:LIST:VOLT:POIN?") == "5"
    assert bench.errors() == []


def test_integration_time_and_auto_zero_are_charged(bench: Bench) -> None:
    bench.write(":SOUR:VOLT 0.5", ":SENS:CURR:PROT 0.01", ":OUTP ON", ":SENS:CURR:NPLC 1")
    clock = bench.world.clock
    start = clock.now()
    bench.ask(":READ?")  # new level: latency, configuration, auto delay (1 ms), 3 A/D phases, firmware,
    first = clock.now() - start  # and the autorange from the 100 µA *RST range to 10 mA: 3 phases more
    assert first == pytest.approx(275e-6 + 1e-3 + 2 * 3 * (1 / 60 + 185e-6) + 1.8e-3, rel=1e-3)
    start = clock.now()
    bench.ask(":READ?")  # unchanged source: case V, no configuration or delay
    assert clock.now() - start == pytest.approx(500e-6 + 3 * (1 / 60 + 185e-6) + 1.8e-3, rel=1e-3)
    bench.write(":SYST:AZER OFF", ":SYST:LFR 50")
    start = clock.now()
    bench.ask(":READ?")
    assert clock.now() - start == pytest.approx(100e-6 + 1 / 50 + 185e-6 + 0.3e-3, rel=1e-3)


def test_a_measurement_range_change_repeats_the_conversion(bench: Bench) -> None:
    """Autorange on: a sweep whose current crosses ranges takes one more conversion per range change, which
    appendix A's cycle does not include; on a fixed range every point takes exactly the cycle."""
    setup = ["*RST", ":SOUR:FUNC VOLT", ":SENS:CURR:PROT 0.1", ":SOUR:VOLT:MODE LIST", ":SYST:AZER OFF",
             ":SENS:CURR:NPLC 1", ":SOUR:LIST:VOLT 0,1.2,0,1.2,0", ":TRIG:COUN 5", ":SOUR:DEL 0",
             ":TRAC:POIN 5", ":TRAC:FEED SENS", ":TRAC:FEED:CONT NEXT", ":OUTP ON"]
    cycle = 225e-6 + 50e-6 + (1 / 60 + 185e-6) + 0.3e-3
    fixed = Bench(lit=False)
    fixed.write(*setup, ":SENS:CURR:RANG 0.1", ":INIT", "*WAI")
    np.testing.assert_allclose(np.diff(fixed.values(":TRAC:DATA?").reshape(-1, 5)[:, 3]), cycle, rtol=1e-4)
    auto = Bench(lit=False)
    auto.write(*setup, ":INIT", "*WAI")
    steps = np.diff(auto.values(":TRAC:DATA?").reshape(-1, 5)[:, 3])
    assert np.all(steps > cycle * (1 + 1e-4))  # 1 µA <-> 1 mA range every point of this list
    assert bench.errors() == []


@pytest.mark.parametrize(("commands", "code"), [
    ([":SOUR:VOLT:ILIM 0.1"], -113),  # 2450 syntax
    ([":SOUR:DEL 1000"], -222),  # 18-82: 0 to 999.9999 s
    ([":SOUR2:VOLT 1"], -114),
    ([":SENS:CURR:NPLC 20"], -222),
    ([":SOUR:VOLT 300"], -222),
    ([":SOUR:VOLT:MODE STEP"], -224),
    ([":FORM:DATA REAL"], -221),  # binary formats are not simulated
    ([":TRAC:FEED:CONT NEXT", ":TRAC:POIN 10"], 800),
    ([":SOUR:LIST:VOLT " + ",".join(["0.1"] * 101)], -223),
])
def test_bad_commands_are_reported_like_the_instrument(bench: Bench, commands: list[str], code: int) -> None:
    bench.write(*commands)
    assert bench.errors() == [code]


def test_reading_with_the_output_off_or_without_triggers_gets_no_reply(bench: Bench) -> None:
    with pytest.raises(TimeoutError):
        bench.ask(":READ?")
    assert bench.ask(":SYST:ERR?") == '+803,"Not permitted with OUTPUT off"'
    bench.write(":OUTP ON", ":ARM:SOUR BUS")
    with pytest.raises(TimeoutError):
        bench.ask(":READ?")
    assert bench.errors() == [-214]
    bench.write(":INIT")  # waits for the bus trigger
    assert bench.ask(":TRAC:POIN:ACT?") == "0"
    bench.write(":TRAC:FEED:CONT NEXT", "*TRG", "*WAI")
    assert float(bench.ask(":FETC?").split(",")[1]) < 0
    bench.write(":ARM:SOUR IMM", ":ARM:COUN INF", ":READ?")
    assert bench.errors() == [830]


def test_compliance_clamps_and_sets_the_status_bit(bench: Bench) -> None:
    bench.write(":SOUR:VOLT 0", ":SENS:CURR:PROT 1e-3", ":OUTP ON")
    _, current, _, _, status = bench.values(":READ?")
    assert current == pytest.approx(-1e-3, rel=1e-3) and int(status) & 8
    assert bench.ask(":SENS:CURR:PROT:TRIP?") == "1"
    assert bench.world.voltage_V("smu") > 0.5  # the cell pushed the voltage up to carry 1 mA
    bench.write(":OUTP OFF")
    assert bench.world.voltage_V("smu") > 1.0  # open circuit: Voc


# ------------------------------------------------------------------------- the driver in-process
def test_driver_role_methods_against_the_mock(bench: Bench) -> None:
    smu = bench.driver()
    assert smu.identify().startswith("KEITHLEY INSTRUMENTS INC.,MODEL 2400")
    source_and_switch_on(smu, 0.0)
    voltage, current = smu.measure()
    assert voltage == 0.0 and current == pytest.approx(-1.726e-3, rel=0.05)
    smu.set_compliance_voltage(2.0)
    smu.source_current(0.0)
    voltage, current = smu.measure()
    assert 1.0 < voltage < 1.4 and abs(current) < 1e-9  # concurrent functions: I measured too
    snapshot = smu.settings_snapshot()
    assert snapshot["nplc"] == 0.1 and snapshot["source_function"] == "current" and snapshot["output_on"]
    smu.output_off()
    assert bench.world.voltage_V("smu") > 1.0
    smu.safe_state()
    assert bench.ask(":OUTP?") == "0" and bench.errors() == []


def test_driver_sweep_hits_the_requested_scan_rate_and_shows_hysteresis(bench: Bench) -> None:
    smu = bench.driver()
    source_and_switch_on(smu, 1.4)
    bench.world.clock.sleep(10.0)  # pre-bias above Voc
    down = np.round(np.arange(1.4, -0.1 - 1e-9, -0.01), 4)  # 10 mV steps at 0.1 V/s: 0.1 s per point
    reverse = smu.sweep_voltage(down, 0.1)
    forward = smu.sweep_voltage(down[::-1].copy(), 0.1)
    for result in (reverse, forward):
        assert result.achieved_rate_V_s == pytest.approx(0.1, rel=0.02)
        assert result.time_s[-1] == pytest.approx(0.1 * (down.size - 1), rel=0.02)
        assert result.settings["source_delay_s"] == pytest.approx(0.1 - 7.63e-3)
    p_reverse = np.max(-reverse.voltage_V * reverse.current_A)
    p_forward = np.max(-forward.voltage_V * forward.current_A)
    assert (p_reverse - p_forward) / p_reverse > 0.05  # normal hysteresis: reverse scan looks better
    assert bench.ask(":SOUR:VOLT:MODE?") == "FIX" and float(bench.ask(":SOUR:VOLT?")) == pytest.approx(1.4)
    assert bench.errors() == []


def test_driver_recovers_from_a_timeout_and_a_dropped_connection(bench: Bench) -> None:
    smu = bench.driver()
    smu.set_compliance_current(0.01)
    check_smu_recovers(smu, bench.smu, smu, ADDRESS)


def test_driver_over_tcp(bench: Bench) -> None:
    with driver_over_tcp(Keithley2400, bench.smu, bench.world.clock) as smu:
        assert "MODEL 2400" in smu.identify()
        source_and_switch_on(smu, 0.0)
        check_short_sweep(smu)
        smu.safe_state()


def test_registry_names_the_mock() -> None:
    assert mock_class("keithley2400") is MockKeithley2400


def test_driver_sweep_ends_at_the_last_level_without_a_step_back(bench: Bench) -> None:
    """Section 10: after a sweep the 2400 returns to the bias level; the driver programs the last list value
    as the bias (18-78: in list mode the amplitude command does not move the output), so the output never
    steps back to the first value between one scan and the next."""
    smu = bench.driver()
    source_and_switch_on(smu, 0.0)
    check_no_step_back_after_sweep(smu, bench.world, "smu")
    assert smu.source_voltage_level == pytest.approx(0.5)


def test_in_list_mode_the_amplitude_programs_the_bias_level(bench: Bench) -> None:  # 18-78, section 10
    bench.write(":SOUR:VOLT 0.2", ":SENS:CURR:PROT 0.01", ":OUTP ON", ":SOUR:VOLT:MODE LIST",
                ":SOUR:LIST:VOLT 0.1,0.3", ":TRIG:COUN 2", ":SOUR:VOLT 0.4")
    assert bench.world.voltage_V("smu") == pytest.approx(0.2)  # the output did not move
    bench.write(":INIT", "*WAI")
    assert bench.world.voltage_V("smu") == pytest.approx(0.4)  # back to the bias after the sweep
    assert bench.errors() == []


def test_driver_sweep_with_autorange_on_runs_on_a_fixed_range_at_the_requested_rate() -> None:
    """The dark cell from 0 to 1.2 V crosses the 1 µA ... 10 mA ranges: with autorange on (*RST) each range
    change would add a conversion the SDM cycle leaves out; the driver fixes the range for the sweep."""
    bench = Bench(lit=False)
    smu = bench.driver()
    source_and_switch_on(smu, 0.0, nplc=1)
    result = smu.sweep_voltage(np.linspace(0.0, 1.2, 13), 0.1)
    np.testing.assert_allclose(np.diff(result.time_s), 0.1, rtol=1e-4)
    assert smu.current_range_auto_enabled is True
