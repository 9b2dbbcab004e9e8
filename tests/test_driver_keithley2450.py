"""Protocol tests for drivers.keithley2450 (native SCPI mode).

Exchanges follow the Model 2450 Interactive SourceMeter Reference Manual (2450-901-01 Rev. B), section 6
"SCPI command reference"; the sweep follows the example under ":SOURce[1]:LIST:<function>" (6-78):
SOUR:LIST:VOLT ..., SOUR:SWE:VOLT:LIST 1, 0.2, INIT, then TRAC:DATA? 1, n, "defbuffer1", SOUR, READ.
"""

from __future__ import annotations

import numpy as np
import pytest
from instrument_helpers import cell_world, failing_instrument, source_and_switch_on
from pymeasure.test import expected_protocol

from drivers.keithley2450 import Keithley2450
from labctl.clock import VirtualClock
from labctl.errors import InstrumentError, ParameterError
from labctl.roles import SourceMeter

NO_ERROR = ("SYST:ERR?", '0,"No error"')
IDN = "KEITHLEY INSTRUMENTS,MODEL 2450,04451117,1.6.7c"


def protocol(*pairs):
    return expected_protocol(Keithley2450, list(pairs), clock=VirtualClock())


def test_satisfies_the_source_meter_role():
    with protocol() as inst:
        assert isinstance(inst, SourceMeter)


def test_identify():
    with protocol(("*IDN?", IDN)) as inst:
        assert inst.identify() == IDN


def test_source_voltage():  # 6-72 :SOUR:FUNC, :SENSe[1]:FUNCtion, :SOURce[1]:<function>[:LEVel]
    with protocol((":SOUR:FUNC VOLT", None), (':SENS:FUNC "CURR"', None), (":SOUR:VOLT -0.25", None),
                  NO_ERROR) as inst:
        inst.source_voltage(-0.25)


def test_source_voltage_out_of_range():
    with protocol() as inst, pytest.raises(ParameterError):
        inst.source_voltage(-211)


def test_source_current():
    with protocol((":SOUR:FUNC CURR", None), (':SENS:FUNC "VOLT"', None), (":SOUR:CURR 1e-06", None),
                  NO_ERROR) as inst:
        inst.source_current(1e-6)


def test_set_compliance_current():  # :SOURce[1]:VOLTage:ILIMit
    with protocol((":SOUR:VOLT:ILIM 0.05", None), NO_ERROR) as inst:
        inst.set_compliance_current(0.05)


def test_set_compliance_current_rejected_by_instrument():
    with protocol((":SOUR:VOLT:ILIM 0.05", None), ("SYST:ERR?", '5076,"Limit exceeds range"'),
                  NO_ERROR) as inst, pytest.raises(InstrumentError, match="5076, Limit exceeds range"):
        inst.set_compliance_current(0.05)


@pytest.mark.parametrize("bad", [0, -1e-3, 2.0])
def test_set_compliance_current_rejects_bad_values(bad):
    with protocol() as inst, pytest.raises(ParameterError):
        inst.set_compliance_current(bad)


def test_set_compliance_voltage():  # :SOURce[1]:CURRent:VLIMit
    with protocol((":SOUR:CURR:VLIM 1.5", None), NO_ERROR) as inst:
        inst.set_compliance_voltage(1.5)


def test_set_compliance_voltage_below_minimum():
    with protocol() as inst, pytest.raises(ParameterError):
        inst.set_compliance_voltage(0.01)


def test_set_nplc():  # :SENSe[1]:<function>:NPLCycles
    with protocol((":SENS:CURR:NPLC 2", None), NO_ERROR, (":SENS:VOLT:NPLC 2", None), NO_ERROR) as inst:
        inst.set_nplc(2)


def test_set_nplc_out_of_range():
    with protocol() as inst, pytest.raises(ParameterError):
        inst.set_nplc(0.001)


def test_output_on():  # :OUTPut[1][:STATe]
    with protocol((":OUTP 1", None), NO_ERROR) as inst:
        inst.output_on()


def test_output_off():
    with protocol((":OUTP 0", None), NO_ERROR) as inst:
        inst.output_off()


def test_measure_while_sourcing_voltage():  # :READ? "defbuffer1", SOUR, READ
    with protocol((":SOUR:FUNC VOLT", None), (':SENS:FUNC "CURR"', None), (":SOUR:VOLT 0.5", None),
                  NO_ERROR, (':READ? "defbuffer1", SOUR, READ', "+5.000123E-01,-1.834000E-02")) as inst:
        inst.source_voltage(0.5)
        assert inst.measure() == (0.5000123, -0.01834)


def test_measure_while_sourcing_current_swaps_the_elements():
    with protocol((":SOUR:FUNC?", "CURR"), (':READ? "defbuffer1", SOUR, READ', "1.0E-03,6.5E-01")) as inst:
        assert inst.measure() == (0.65, 0.001)


def test_sense_mode_strips_the_dc_suffix():
    with protocol((":SENS:FUNC?", '"CURR:DC"')) as inst:
        assert inst.sense_mode == "current"


def test_current_range_is_strict():
    with protocol() as inst, pytest.raises(ValueError):
        inst.current_range = 2


def timing(nplc: str = "1.000000E+00", lfr: str = "60", readback: str = "1", auto_delay: str = "1",
           delay: str = "0.000000E+00") -> list[tuple[str, str]]:
    """What the sweep reads first: NPLC and line frequency (to turn the point period into a delay block), then
    the readback and source-delay states it puts back afterwards (6-77, 6-67, 6-66)."""
    return [(":SENS:CURR:NPLC?", nplc), (":SYST:LFR?", lfr), (":SOUR:VOLT:READ:BACK?", readback),
            (":SOUR:VOLT:DEL:AUTO?", auto_delay), (":SOUR:VOLT:DEL?", delay)]


def sweep_setup(lists: list[str], first: str, delay: str = "0.08313333", nplc: str = "1.000000E+00"
                ) -> list[tuple[str | None, str | None]]:
    """A list sweep; ``delay`` = period - NPLC / 60 Hz - 0.2 ms (0.1 s at 1 PLC by default). Auto delay off,
    source delay 0 and readback off come before the list: each configuration-list point stores them."""
    return [
        *timing(nplc), (":SOUR:FUNC VOLT", None), (':SENS:FUNC "CURR"', None), (":SOUR:VOLT:DEL:AUTO OFF", None),
        (":SOUR:VOLT:DEL 0", None), (":SOUR:VOLT:READ:BACK OFF", None), (f":SOUR:VOLT {first}", None),
        (f":SOUR:LIST:VOLT {lists[0]}", None),
        *[(f":SOUR:LIST:VOLT:APP {chunk}", None) for chunk in lists[1:]],
        (':TRAC:CLE "defbuffer1"', None),
        (f':SOUR:SWE:VOLT:LIST 1, {delay}, 1, OFF, "defbuffer1"', None),
        NO_ERROR, (":OUTP ON", None), (":INIT", None),
    ]


def test_sweep_voltage_reads_source_reading_and_relative_time():  # 6-78, 6-85, 6-107 :TRAC:ACT?, :TRAC:DATA?
    data = "1.000E-01,-2.0E-02,0.000,2.000E-01,-1.9E-02,0.125,3.000E-01,-1.5E-02,0.25"
    pairs = [*sweep_setup(["0.1,0.2,0.3"], "0.1"), (':TRAC:ACT? "defbuffer1"', "3"),
             (':TRAC:DATA? 1, 3, "defbuffer1", SOUR, READ, REL', data), *finish("0.3")]
    with protocol(*pairs) as inst:
        result = inst.sweep_voltage(np.array([0.1, 0.2, 0.3]), 0.1)
    assert result.settings["delay_s"] == pytest.approx(0.1 - 1 / 60 - 2e-4)
    assert result.settings["source_delay_s"] == 0 and result.settings["source_readback"] == 0
    np.testing.assert_allclose(result.voltage_V, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(result.current_A, [-0.02, -0.019, -0.015])
    np.testing.assert_allclose(result.time_s, [0, 0.125, 0.25])
    assert result.achieved_rate_V_s == pytest.approx(0.8)


def test_sweep_voltage_polls_until_done_and_appends_long_lists():  # 6-79 :SOUR:LIST:VOLT:APP
    voltages = np.round(np.linspace(-0.2, 1.2, 141), 3)
    lists = [",".join(f"{v:.7g}" for v in voltages[:100]), ",".join(f"{v:.7g}" for v in voltages[100:])]
    data = ",".join(f"{v:.7g},1e-3,{k * 0.02:.2f}" for k, v in enumerate(voltages))
    pairs = [*sweep_setup(lists, "-0.2", delay="0.008133333", nplc="0.1"), (':TRAC:ACT? "defbuffer1"', "40"),
             (':TRAC:ACT? "defbuffer1"', "141"), (':TRAC:DATA? 1, 141, "defbuffer1", SOUR, READ, REL', data),
             *finish("1.2")]
    with protocol(*pairs) as inst:
        result = inst.sweep_voltage(voltages, 0.01)
    assert result.time_s[-1] == pytest.approx(2.8)
    assert result.achieved_rate_V_s == pytest.approx(1.4 / 2.8)


def test_sweep_voltage_set_up_error_is_raised():
    setup = sweep_setup(["0,0.1"], "0")
    at = setup.index(NO_ERROR)
    pairs = [*setup[:at], ("SYST:ERR?", '-222,"Parameter data out of range"'), NO_ERROR, (":ABOR", None)]
    with protocol(*pairs) as inst, pytest.raises(InstrumentError, match="out of range"):
        inst.sweep_voltage(np.array([0.0, 0.1]), 0.1)


def test_sweep_period_shorter_than_integration_is_refused():
    with protocol(*timing()[:3]) as inst, \
            pytest.raises(ParameterError, match=r"dwell_s = 0.01 s .* 0.0168667 s.*readback off"):
        inst.sweep_voltage(np.array([0.0, 0.1]), 0.01)


@pytest.mark.parametrize(("dwell", "delay"), [(1 / 60 + 2e-4 + 20e-6, "0"), (1 / 60 + 2e-4 + 30e-6, "5e-05")])
def test_sweep_delay_below_50_us_is_rounded_to_0_or_50_us(dwell, delay):  # 6-85: 0, or 50 µs to 10 ks
    pairs = [*sweep_setup(["0,0.1"], "0", delay=delay), (':TRAC:ACT? "defbuffer1"', "2"),
             (':TRAC:DATA? 1, 2, "defbuffer1", SOUR, READ, REL', "0,-1e-3,0,0.1,-1e-3,0.017"), *finish("0.1")]
    with protocol(*pairs) as inst:
        inst.sweep_voltage(np.array([0.0, 0.1]), dwell)


def finish(last: str, readback: str = "1", delay: str = ":SOUR:VOLT:DEL:AUTO ON") -> list[tuple[str, str | None]]:
    """After the sweep: the last level, then readback and source delay as they were (here: *RST states)."""
    return [(f":SOUR:VOLT {last}", None), (f":SOUR:VOLT:READ:BACK {readback}", None), (delay, None), NO_ERROR]


@pytest.mark.parametrize(("voltages", "dwell"), [
    ([0.0, 250.0], 0.1), ([0.0, 0.1], -1e-3), ([0.0, 0.1], 2e4), (np.zeros(2501), 0.1), ([], 0.1),
])
def test_sweep_voltage_rejects_bad_parameters(voltages, dwell):
    with protocol() as inst, pytest.raises(ParameterError):
        inst.sweep_voltage(np.asarray(voltages, dtype=float), dwell)


def test_error_queue_lists_every_entry():
    with protocol(("SYST:ERR?", '-113,"Undefined header"'), ("SYST:ERR?", '-221,"Settings conflict"'),
                  NO_ERROR) as inst, pytest.raises(InstrumentError) as info:
        inst.raise_if_error()
    assert "-113, Undefined header" in str(info.value) and "-221, Settings conflict" in str(info.value)


def test_settings_snapshot():
    with protocol((":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT:ILIM?", "0.1"), (":SOUR:CURR:VLIM?", "21"),
                  (":SENS:CURR:NPLC?", "1"), (":SENS:CURR:RANG:AUTO?", "1"), (":SENS:CURR:RANG?", "0.1"),
                  (":SENS:CURR:RSEN?", "1"), (":SENS:FUNC?", '"CURR:DC"'), (":SOUR:VOLT:DEL:AUTO?", "1"),
                  (":SOUR:VOLT:READ:BACK?", "1"), (":ROUT:TERM?", "REAR"), (":OUTP?", "0")) as inst:
        assert inst.settings_snapshot() == {
            "source_function": "voltage", "compliance_current_A": 0.1, "compliance_voltage_V": 21.0,
            "nplc": 1.0, "current_range_auto": True, "current_range_A": 0.1, "four_wire": True,
            "sense_function": "current", "source_delay_auto": True, "source_readback": True,
            "front_terminals": False, "output_on": False,
        }


def test_source_readback_query():  # 6-77 :SOURce[1]:<function>:READ:BACK?
    with protocol((":SOUR:VOLT:READ:BACK?", "1")) as inst:
        assert inst.source_readback_enabled is True


def test_source_readback_off():
    with protocol((":SOUR:VOLT:READ:BACK 0", None)) as inst:
        inst.source_readback_enabled = False


def test_sweep_restores_a_manual_source_delay_and_readback_off():
    setup = sweep_setup(["0,0.1"], "0")
    setup[:5] = timing(readback="0", auto_delay="0", delay="5.000000E-03")
    pairs = [*setup, (':TRAC:ACT? "defbuffer1"', "2"),
             (':TRAC:DATA? 1, 2, "defbuffer1", SOUR, READ, REL', "0,-1e-3,0,0.1,-1e-3,0.1"),
             *finish("0.1", readback="0", delay=":SOUR:VOLT:DEL 0.005")]
    with protocol(*pairs) as inst:
        inst.sweep_voltage(np.array([0.0, 0.1]), 0.1)


SAFE = [(":ABOR", None), (":OUTP 0", None), (":SOUR:VOLT 0", None), (":SOUR:CURR 0", None)]


def test_safe_state():  # :ABORt, :OUTPut[1][:STATe]
    with protocol(*SAFE) as inst:
        inst.safe_state()


def test_safe_state_tries_every_step_when_one_fails():
    adapter, inst = failing_instrument(Keithley2450, [SAFE[0], *SAFE[2:]], fail_on=":OUTP 0")
    with pytest.raises(InstrumentError, match="output off"):
        inst.safe_state()
    assert adapter._index == 3


def test_shutdown_reaches_the_safe_state():
    with protocol(*SAFE) as inst:
        inst.shutdown()


def test_sweep_scan_rate_on_the_simulated_bench():
    """Integration with the 2450 mock: the point period is the requested one (0.1 V/s in 10 mV steps)."""
    from drivers.transport import SimAdapter
    from mock_instruments.keithley2450 import MockKeithley2450

    world = cell_world(7)
    world.wire("smu", "cell")
    smu = Keithley2450(SimAdapter(MockKeithley2450(world, "smu")), clock=world.clock)
    source_and_switch_on(smu, 1.3)
    voltages = np.round(np.arange(1.3, -0.1 - 1e-9, -0.01), 4)
    result = smu.sweep_voltage(voltages, 0.1)
    assert result.achieved_rate_V_s == pytest.approx(0.1, rel=0.02)
    assert result.current_A[-1] < -1e-3
    assert smu.source_delay_auto_enabled is True


def test_sweep_on_the_dark_cell_recalls_no_auto_delay_and_no_readback():
    """Integration with the 2450 mock, auto delay and readback on (*RST) when the sweep starts: no
    configuration-list point recalls them (50 ms auto delay on the nA ranges of a dark cell, a second
    integration for readback), so the point period is the requested one; both are on again afterwards."""
    from drivers.transport import SimAdapter
    from mock_instruments.keithley2450 import MockKeithley2450

    world = cell_world(7, lit=False)
    world.wire("smu", "cell")
    smu = Keithley2450(SimAdapter(MockKeithley2450(world, "smu")), clock=world.clock)
    source_and_switch_on(smu, 0.0)
    result = smu.sweep_voltage(np.linspace(0.0, 0.002, 11), 0.01)
    np.testing.assert_allclose(np.diff(result.time_s), 0.01, rtol=1e-3)
    assert result.achieved_rate_V_s == pytest.approx(0.02, rel=1e-3)
    assert smu.source_delay_auto_enabled is True and smu.source_readback_enabled is True


# ------------------------------------------------------------------------------------------ dwells
def dwell_setup(source: str, sense: str, level: str, n: int, delay: str, readback: str = "1") -> list:
    """A dwell up to :INIT: NPLC and line frequency (for the delay block) and the source readback to put back
    (6-77), then the level, readback off, the buffer cleared and the Simple Loop template (3-104) with ``n``
    readings, each after ``delay`` = interval - NPLC / 60 Hz - 0.2 ms."""
    return [(f":SENS:{sense}:NPLC?", "1.000000E+00"), (":SYST:LFR?", "60"), (f":SOUR:{source}:READ:BACK?", readback),
            (f":SOUR:FUNC {source}", None), (f':SENS:FUNC "{sense}"', None), (f":SOUR:{source}:READ:BACK OFF", None),
            (f":SOUR:{source} {level}", None), (':TRAC:CLE "defbuffer1"', None),
            (f':TRIG:LOAD "SimpleLoop", {n}, {delay}, "defbuffer1"', None), NO_ERROR, (":OUTP ON", None),
            (":INIT", None)]


def test_dwell_voltage_runs_the_simple_loop():  # 3-104 Simple Loop, 6-107 :TRAC:ACT?, :TRAC:DATA?
    data = "8.5E-01,-1.2E-03,0.000,8.5E-01,-1.21E-03,0.1,8.5E-01,-1.22E-03,0.2"
    pairs = [*dwell_setup("VOLT", "CURR", "0.85", 3, "0.08313333"), (':TRAC:ACT? "defbuffer1"', "3"),
             (':TRAC:DATA? 1, 3, "defbuffer1", SOUR, READ, REL', data), (":SOUR:VOLT:READ:BACK 1", None), NO_ERROR]
    with protocol(*pairs) as inst:
        result = inst.dwell_voltage(0.85, 3, 0.1)
    np.testing.assert_allclose(result.current_A, [-1.2e-3, -1.21e-3, -1.22e-3])
    np.testing.assert_allclose(result.voltage_V, 0.85)
    np.testing.assert_allclose(result.time_s, [0, 0.1, 0.2])
    assert np.isnan(result.achieved_rate_V_s) and result.settings["delay_s"] == pytest.approx(0.1 - 1 / 60 - 2e-4)


def test_dwell_current_reads_voltage_and_keeps_readback_off_if_it_was():
    data = "-1E-03,1.15,0.000,-1E-03,1.151,0.1"
    pairs = [*dwell_setup("CURR", "VOLT", "-0.001", 2, "0.08313333", readback="0"),
             (':TRAC:ACT? "defbuffer1"', "1"), (':TRAC:ACT? "defbuffer1"', "2"),
             (':TRAC:DATA? 1, 2, "defbuffer1", SOUR, READ, REL', data), (":SOUR:CURR:READ:BACK 0", None), NO_ERROR]
    with protocol(*pairs) as inst:
        result = inst.dwell_current(-1e-3, 2, 0.1)
    np.testing.assert_allclose(result.voltage_V, [1.15, 1.151])
    np.testing.assert_allclose(result.current_A, -1e-3)


def test_dwell_interval_shorter_than_integration_is_refused():
    with protocol((":SENS:CURR:NPLC?", "1.000000E+00"), (":SYST:LFR?", "60"), (":SOUR:VOLT:READ:BACK?", "1")) \
            as inst, pytest.raises(ParameterError, match=r"interval_s = 0.01 s .* 0.0168667 s"):
        inst.dwell_voltage(0.5, 10, 0.01)


@pytest.mark.parametrize(("level", "n", "interval", "named"), [
    (0.5, 100_001, 0.1, "n_points = 100001 .* 1–100000"), (0.5, 0, 0.1, "n_points = 0"),
    (0.5, "10", 0.1, "n_points must be a whole number"), (0.5, 10, -0.1, "interval_s = -0.1"),
    (0.5, 10, 2e4, "interval_s = 20000.0"), (-250.0, 10, 0.1, "voltage_V = -250.0")])
def test_dwell_rejects_bad_parameters(level, n, interval, named):
    with protocol() as inst, pytest.raises(ParameterError, match=named):
        inst.dwell_voltage(level, n, interval)


def test_dwell_current_out_of_range_is_refused():
    with protocol() as inst, pytest.raises(ParameterError, match="current_A = 2"):
        inst.dwell_current(2.0, 10, 0.1)
