"""Protocol tests for drivers.keysight_b2900 (B2902A, channels 1 and 2).

Exchanges follow the Agilent/Keysight B2900 SCPI Command Reference (B2910-90030), chapter 4 "Subsystem
Commands" (SOURce, SENSe, TRIGger, TRACe, FETCh, MEASure, OUTPut, SYSTem:ERRor subsystems named per test)
and the trigger system of the B2900 User's Guide, chapter 6 "Trigger System" (ARM-TRIGger model, AINT and
TIMer trigger sources). Array replies are comma-separated NR3 values; 9.91E+37 means "no data".
"""

from __future__ import annotations

import numpy as np
import pytest
from instrument_helpers import failing_instrument
from pymeasure.test import expected_protocol

from drivers.keysight_b2900 import KeysightB2900, KeysightB2900Channel
from labctl.clock import VirtualClock
from labctl.errors import InstrumentError, ParameterError
from labctl.roles import Instrument, SourceMeter

NO_ERROR = ("SYST:ERR?", '+0,"No error"')
IDN = "Agilent Technologies,B2902A,MY51140123,3.4.2011.5100"


def protocol(*pairs):
    return expected_protocol(KeysightB2900, list(pairs), clock=VirtualClock())


def test_channels_satisfy_the_source_meter_role():
    with protocol() as inst:
        assert isinstance(inst, Instrument)
        assert isinstance(inst.channel("1"), SourceMeter)
        assert inst.channel(2) is inst.ch2
        assert inst.channel("CH1") is inst.ch1
        assert inst.channel("2").lock is inst.lock


def test_unknown_channel():
    with protocol() as inst, pytest.raises(ValueError, match="'3'"):
        inst.channel("3")


def test_identify():  # *IDN? (IEEE 488.2 common commands)
    with protocol(("*IDN?", IDN)) as inst:
        assert inst.channel("2").identify() == IDN


def test_source_voltage():  # :SOUR:FUNC:MODE, :SOUR:VOLT:MODE, :SENS:FUNC, :SOUR:VOLT
    with protocol((":SOUR1:FUNC:MODE VOLT", None), (":SOUR1:VOLT:MODE FIX", None),
                  (':SENS1:FUNC "VOLT","CURR"', None), (":SOUR1:VOLT 0.65", None), NO_ERROR) as inst:
        inst.channel("1").source_voltage(0.65)


def test_source_current_on_channel_2():
    with protocol((":SOUR2:FUNC:MODE CURR", None), (":SOUR2:CURR:MODE FIX", None),
                  (':SENS2:FUNC "VOLT","CURR"', None), (":SOUR2:CURR -2e-05", None), NO_ERROR) as inst:
        inst.channel("2").source_current(-2e-5)


def test_source_voltage_out_of_range():
    with protocol() as inst, pytest.raises(ParameterError):
        inst.channel("1").source_voltage(-215)


def test_set_compliance_current():  # :SENS:CURR:PROT
    with protocol((":SENS1:CURR:PROT 0.02", None), NO_ERROR) as inst:
        inst.channel("1").set_compliance_current(0.02)


def test_set_compliance_current_rejected_by_instrument():  # :SYST:ERR?
    with protocol((":SENS1:CURR:PROT 3", None), ("SYST:ERR?", '+114,"Compliance out of range"'),
                  NO_ERROR) as inst, pytest.raises(InstrumentError, match="114, Compliance out of range"):
        inst.channel("1").set_compliance_current(3)


@pytest.mark.parametrize("bad", [0.0, -1e-3, 4.0])
def test_set_compliance_current_rejects_bad_values(bad):
    with protocol() as inst, pytest.raises(ParameterError):
        inst.channel("1").set_compliance_current(bad)


def test_set_compliance_voltage():  # :SENS:VOLT:PROT
    with protocol((":SENS2:VOLT:PROT 2.5", None), NO_ERROR) as inst:
        inst.channel("2").set_compliance_voltage(2.5)


def test_set_nplc():  # :SENS:CURR:NPLC
    with protocol((":SENS1:CURR:NPLC 0.5", None), NO_ERROR) as inst:
        inst.channel("1").set_nplc(0.5)


def test_set_nplc_out_of_range():
    with protocol() as inst, pytest.raises(ParameterError):
        inst.channel("1").set_nplc(200)


def test_output_on():  # :OUTP
    with protocol((":OUTP1 1", None), NO_ERROR) as inst:
        inst.channel("1").output_on()


def test_output_off():
    with protocol((":OUTP2 0", None), NO_ERROR) as inst:
        inst.channel("2").output_off()


def test_measure():  # :FORM:ELEM:SENS, :MEAS? (@1)
    with protocol((":FORM:ELEM:SENS VOLT,CURR", None),
                  (":MEAS? (@1)", "+6.000000E-01,-1.850000E-02")) as inst:
        assert inst.channel("1").measure() == (0.6, -0.0185)


def test_properties_are_strict():
    with protocol() as inst:
        with pytest.raises(ValueError):
            inst.channel("1").current_range = 5
        with pytest.raises(ValueError):
            inst.channel("1").source_mode = "power"


def waits(ch: str, measure: str = "1", source: str = "1") -> list:
    """The measurement and source wait states the sweep reads to put them back (SCPI reference,
    :SENSe:WAIT / :SOURce:WAIT; both ON at *RST)."""
    return [(f":SENS{ch}:WAIT?", measure), (f":SOUR{ch}:WAIT?", source)]


def sweep_commands(ch: str, lists: list[str], n: int, timer: str | None, acq_delay: str) -> list:
    """List sweep: waits off, output after sweep END (:SOUR:FUNC:TRIG:CONT ON), :SOUR:VOLT:MODE LIST,
    :SOUR:LIST:VOLT[:APP], TRIGger TIM/AINT, TRACe buffer, :INIT."""
    trigger = [(f":TRIG{ch}:SOUR TIM", None), (f":TRIG{ch}:TIM {timer}", None)] if timer else \
        [(f":TRIG{ch}:SOUR AINT", None)]
    return [
        (f":SOUR{ch}:FUNC:MODE VOLT", None), (f':SENS{ch}:FUNC "VOLT","CURR"', None),
        (f":SENS{ch}:WAIT OFF", None), (f":SOUR{ch}:WAIT OFF", None), (f":SOUR{ch}:FUNC:TRIG:CONT ON", None),
        (f":SOUR{ch}:VOLT:MODE FIX", None), (f":SOUR{ch}:VOLT {lists[0].split(',')[0]}", None),
        (f":SOUR{ch}:LIST:VOLT {lists[0]}", None),
        *[(f":SOUR{ch}:LIST:VOLT:APP {chunk}", None) for chunk in lists[1:]],
        (f":SOUR{ch}:VOLT:MODE LIST", None), *trigger, (f":TRIG{ch}:COUN {n}", None),
        (f":TRIG{ch}:TRAN:DEL 0", None), (f":TRIG{ch}:ACQ:DEL {acq_delay}", None),
        (f":TRAC{ch}:FEED:CONT NEV", None), (f":TRAC{ch}:CLE", None), (f":TRAC{ch}:POIN {n}", None),
        (f":TRAC{ch}:FEED SENS", None), (f":TRAC{ch}:FEED:CONT NEXT", None), NO_ERROR,
        (f":OUTP{ch} 1", None), (f":INIT (@{ch})", None),
    ]


def sweep_finish(ch: str, last: str, measure_wait: str = "1", source_wait: str = "1") -> list:
    return [(f":TRAC{ch}:FEED:CONT NEV", None), (f":SOUR{ch}:VOLT:MODE FIX", None),
            (f":SOUR{ch}:VOLT {last}", None), (f":TRIG{ch}:SOUR AINT", None), (f":TRIG{ch}:COUN 1", None),
            (f":TRIG{ch}:ACQ:DEL 0", None), (f":SENS{ch}:WAIT {measure_wait}", None),
            (f":SOUR{ch}:WAIT {source_wait}", None), NO_ERROR]


def recovery(ch: str) -> list:
    """Sent best effort after a failed sweep: abort, trace off, fixed mode, AINT x 1, no acquire delay."""
    return [(f":ABOR (@{ch})", None), (f":TRAC{ch}:FEED:CONT NEV", None), (f":SOUR{ch}:VOLT:MODE FIX", None),
            (f":TRIG{ch}:SOUR AINT", None), (f":TRIG{ch}:COUN 1", None), (f":TRIG{ch}:ACQ:DEL 0", None)]


def test_sweep_voltage_timer_paced():  # :SENS:CURR:APER?, :TRAC:POIN:ACT?, :FETC:ARR:VOLT|CURR|TIME?
    pairs = [(":SENS1:CURR:APER?", "+2.000000E-02"), *waits("1"),
             *sweep_commands("1", ["0,0.5,1"], 3, timer="0.1", acq_delay="0.0798"),
             (":TRAC1:POIN:ACT?", "2"), (":TRAC1:POIN:ACT?", "3"),
             (":FETC:ARR:VOLT? (@1)", "+0.000000E+00,+5.000010E-01,+9.999990E-01"),
             (":FETC:ARR:CURR? (@1)", "-2.000000E-02,-1.900000E-02,+1.000000E-03"),
             (":FETC:ARR:TIME? (@1)", "+1.234080E+01,+1.244080E+01,+1.254080E+01"),
             *sweep_finish("1", "1")]
    with protocol(*pairs) as inst:
        result = inst.channel("1").sweep_voltage(np.array([0.0, 0.5, 1.0]), 0.1)
    np.testing.assert_allclose(result.time_s, [0, 0.1, 0.2], atol=1e-9)
    np.testing.assert_allclose(result.voltage_V, [0, 0.500001, 0.999999])
    np.testing.assert_allclose(result.current_A, [-0.02, -0.019, 0.001])
    assert result.achieved_rate_V_s == pytest.approx(0.999999 / 0.2)
    assert result.settings["acquire_delay_s"] == pytest.approx(0.0798)
    assert result.settings["measure_wait_s"] == 0 and result.settings["source_wait_s"] == 0
    assert result.settings["output_after_sweep"] == "END"


def test_sweep_puts_back_waits_that_were_off():
    pairs = [(":SENS1:CURR:APER?", "+2.000000E-02"), *waits("1", "0", "0"),
             *sweep_commands("1", ["0,0.5"], 2, timer="0.1", acq_delay="0.0798"), (":TRAC1:POIN:ACT?", "2"),
             (":FETC:ARR:VOLT? (@1)", "0,0.5"), (":FETC:ARR:CURR? (@1)", "-2e-2,-1.9e-2"),
             (":FETC:ARR:TIME? (@1)", "0,0.1"), *sweep_finish("1", "0.5", "0", "0")]
    with protocol(*pairs) as inst:
        inst.channel("1").sweep_voltage(np.array([0.0, 0.5]), 0.1)


def test_sweep_voltage_back_to_back_on_channel_2_with_append():
    voltages = np.round(np.linspace(1.0, 0.0, 101), 2)
    lists = [",".join(f"{v:.7g}" for v in voltages[:100]), "0"]
    times = ",".join(f"{k * 0.003:.3f}" for k in range(101))
    pairs = [*waits("2"), *sweep_commands("2", lists, 101, timer=None, acq_delay="0"), (":TRAC2:POIN:ACT?", "101"),
             (":FETC:ARR:VOLT? (@2)", ",".join(f"{v:.7g}" for v in voltages)),
             (":FETC:ARR:CURR? (@2)", ",".join(["1e-3"] * 101)), (":FETC:ARR:TIME? (@2)", times),
             *sweep_finish("2", "0")]
    with protocol(*pairs) as inst:
        result = inst.channel("2").sweep_voltage(voltages, 0)
    assert result.achieved_rate_V_s == pytest.approx(1.0 / 0.3)
    assert "automatic internal trigger" in str(result.settings["timing"])


def test_sweep_voltage_dwell_shorter_than_the_aperture_sends_nothing_else():
    with protocol((":SENS1:CURR:APER?", "+2.000000E-02"), *waits("1")) as inst, \
            pytest.raises(ParameterError, match="shorter than the measurement"):
        inst.channel("1").sweep_voltage(np.array([0.0, 0.1]), 0.01)


def test_sweep_voltage_set_up_error_is_raised():
    setup = [*waits("1"), *sweep_commands("1", ["0,0.1"], 2, timer=None, acq_delay="0")]
    at = setup.index(NO_ERROR)
    pairs = [*setup[:at], ("SYST:ERR?", '-222,"Data out of range"'), NO_ERROR, *recovery("1")]
    with protocol(*pairs) as inst, pytest.raises(InstrumentError, match="-222, Data out of range"):
        inst.channel("1").sweep_voltage(np.array([0.0, 0.1]), 0)


def test_sweep_voltage_fetch_with_missing_points_raises():
    pairs = [*waits("1"), *sweep_commands("1", ["0,0.1"], 2, timer=None, acq_delay="0"),
             (":TRAC1:POIN:ACT?", "2"), (":FETC:ARR:VOLT? (@1)", "0,0.1"), (":FETC:ARR:CURR? (@1)", "1e-3"),
             (":FETC:ARR:TIME? (@1)", "0,0.01"), *recovery("1")]
    with protocol(*pairs) as inst, pytest.raises(ValueError, match="2-point run"):
        inst.channel("1").sweep_voltage(np.array([0.0, 0.1]), 0)


@pytest.mark.parametrize(("voltages", "dwell"), [([0.0, 300.0], 0.1), ([0.0, 0.1], -1.0),
                                                 (np.zeros(2501), 0.1), ([], 0.1)])
def test_sweep_voltage_rejects_bad_parameters(voltages, dwell):
    with protocol() as inst, pytest.raises(ParameterError):
        inst.channel("1").sweep_voltage(np.asarray(voltages, dtype=float), dwell)


def test_error_queue_lists_every_entry():  # :SYST:ERR? until +0
    with protocol(("SYST:ERR?", '-113,"Undefined header"'), ("SYST:ERR?", '+301,"Interlock open"'),
                  NO_ERROR) as inst, pytest.raises(InstrumentError) as info:
        inst.raise_if_error()
    assert "-113, Undefined header" in str(info.value) and "301, Interlock open" in str(info.value)


def channel_snapshot(ch: str) -> list[tuple[str, str]]:
    return [(f":SOUR{ch}:FUNC:MODE?", "VOLT"), (f":SENS{ch}:CURR:PROT?", "+1.000000E-01"),
            (f":SENS{ch}:VOLT:PROT?", "+2.000000E+00"), (f":SENS{ch}:CURR:NPLC?", "+1.000000E+00"),
            (f":SENS{ch}:CURR:RANG:AUTO?", "1"), (f":SENS{ch}:CURR:RANG?", "+1.000000E-01"),
            (f":SENS{ch}:REM?", "1"), (f":OUTP{ch}?", "0")]


SNAPSHOT = {"source_function": "voltage", "compliance_current_A": 0.1, "compliance_voltage_V": 2.0,
            "nplc": 1.0, "current_range_auto": True, "current_range_A": 0.1, "four_wire": True,
            "output_on": False}


def test_channel_settings_snapshot():
    with protocol(*channel_snapshot("2")) as inst:
        assert inst.channel("2").settings_snapshot() == SNAPSHOT


def test_instrument_settings_snapshot_has_both_channels():
    with protocol(*channel_snapshot("1"), *channel_snapshot("2")) as inst:
        snapshot = inst.settings_snapshot()
    assert snapshot["ch1.four_wire"] is True and snapshot["ch2.nplc"] == 1.0
    assert len(snapshot) == 2 * len(SNAPSHOT)


def safe(ch: str) -> list[tuple[str, None]]:
    return [(f":ABOR (@{ch})", None), (f":OUTP{ch} 0", None), (f":SOUR{ch}:VOLT:MODE FIX", None),
            (f":SOUR{ch}:VOLT 0", None), (f":SOUR{ch}:CURR 0", None)]


def test_safe_state_covers_both_channels():  # :ABOR, :OUTP
    with protocol(*safe("1"), *safe("2")) as inst:
        inst.safe_state()


def test_channel_safe_state_only_touches_its_channel():
    with protocol(*safe("2")) as inst:
        inst.channel("2").safe_state()


def test_safe_state_tries_every_step_when_one_fails():
    steps = safe("1") + safe("2")
    adapter, inst = failing_instrument(KeysightB2900, [s for s in steps if s[0] != ":OUTP1 0"], fail_on=":OUTP1 0")
    with pytest.raises(InstrumentError, match="ch1 output off"):
        inst.safe_state()
    assert adapter._index == 9


def test_actions_and_lists_are_not_replayed():
    with protocol() as inst:
        assert not inst.replayable(":INIT")
        assert not inst.replayable(":SOUR2:LIST:VOLT")
        assert inst.replayable(":SENS1:CURR:PROT")


def test_class_limits_are_usable_before_connecting():
    assert KeysightB2900.voltage_range_V == (-210.0, 210.0)
    assert KeysightB2900Channel.nplc_range == (4.8e-4, 100.0)


# ------------------------------------------------------------------------------------------ dwells
def dwell_commands(ch: str, source: str, level: str, n: int, acq_delay: str) -> list:
    """A dwell: waits off, fixed source at the level, the trigger timer (period 0.1 s) and the trace buffer."""
    return [(command, None) for command in (
        f":SOUR{ch}:FUNC:MODE {source}", f':SENS{ch}:FUNC "VOLT","CURR"', f":SENS{ch}:WAIT OFF",
        f":SOUR{ch}:WAIT OFF", f":SOUR{ch}:{source}:MODE FIX", f":SOUR{ch}:{source} {level}", f":TRIG{ch}:SOUR TIM",
        f":TRIG{ch}:TIM 0.1", f":TRIG{ch}:COUN {n}", f":TRIG{ch}:TRAN:DEL 0", f":TRIG{ch}:ACQ:DEL {acq_delay}",
        f":TRAC{ch}:FEED:CONT NEV", f":TRAC{ch}:CLE", f":TRAC{ch}:POIN {n}", f":TRAC{ch}:FEED SENS",
        f":TRAC{ch}:FEED:CONT NEXT")] + [NO_ERROR, (f":OUTP{ch} 1", None), (f":INIT (@{ch})", None)]


def dwell_finish(ch: str) -> list:
    return [(f":TRAC{ch}:FEED:CONT NEV", None), (f":TRIG{ch}:SOUR AINT", None), (f":TRIG{ch}:COUN 1", None),
            (f":TRIG{ch}:ACQ:DEL 0", None), (f":SENS{ch}:WAIT 1", None), (f":SOUR{ch}:WAIT 1", None), NO_ERROR]


def test_dwell_voltage_on_the_trigger_timer():  # :TRIG:SOUR TIM, :TRIG:TIM, :TRIG:COUN; :FETC:ARR
    pairs = [(":SENS1:CURR:APER?", "+2.000000E-02"), *waits("1"), *dwell_commands("1", "VOLT", "0.85", 3, "0.0798"),
             (":TRAC1:POIN:ACT?", "3"), (":FETC:ARR:VOLT? (@1)", "+8.500010E-01,+8.500000E-01,+8.499990E-01"),
             (":FETC:ARR:CURR? (@1)", "-1.200000E-03,-1.210000E-03,-1.220000E-03"),
             (":FETC:ARR:TIME? (@1)", "+1.234080E+01,+1.244080E+01,+1.254080E+01"), *dwell_finish("1")]
    with protocol(*pairs) as inst:
        result = inst.channel("1").dwell_voltage(0.85, 3, 0.1)
    np.testing.assert_allclose(result.time_s, [0, 0.1, 0.2], atol=1e-9)
    np.testing.assert_allclose(result.current_A, [-1.2e-3, -1.21e-3, -1.22e-3])
    assert np.isnan(result.achieved_rate_V_s) and result.settings["acquire_delay_s"] == pytest.approx(0.0798)


def test_dwell_current_on_channel_2():  # :SOUR2:FUNC:MODE CURR
    pairs = [(":SENS2:CURR:APER?", "+2.000000E-02"), *waits("2"),
             *dwell_commands("2", "CURR", "-0.001", 2, "0.0798"), (":TRAC2:POIN:ACT?", "2"),
             (":FETC:ARR:VOLT? (@2)", "+1.150000E+00,+1.151000E+00"), (":FETC:ARR:CURR? (@2)", "-1E-03,-1E-03"),
             (":FETC:ARR:TIME? (@2)", "0,0.1"), *dwell_finish("2")]
    with protocol(*pairs) as inst:
        result = inst.channel("2").dwell_current(-1e-3, 2, 0.1)
    np.testing.assert_allclose(result.voltage_V, [1.15, 1.151])


def test_dwell_interval_shorter_than_the_aperture_is_refused():
    with protocol((":SENS1:CURR:APER?", "+2.000000E-02"), *waits("1")) as inst, \
            pytest.raises(ParameterError, match=r"interval_s = 0.02 s is shorter than the measurement"):
        inst.channel("1").dwell_voltage(0.5, 10, 0.02)


@pytest.mark.parametrize(("level", "n", "interval", "named"), [
    (0.5, 100_001, 0.1, "n_points = 100001 .* 1–100000"), (0.5, 0, 0.1, "n_points = 0"),
    (0.5, 10.5, 0.1, "n_points must be a whole number"), (0.5, 10, 0.0, "interval_s = 0.0"),
    (0.5, 10, 2e5, "interval_s = 200000.0")])
def test_dwell_rejects_bad_parameters(level, n, interval, named):
    with protocol() as inst, pytest.raises(ParameterError, match=named):
        inst.channel("1").dwell_voltage(level, n, interval)
