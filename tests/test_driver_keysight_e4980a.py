"""Protocol tests for the Keysight E4980A driver.

Exchanges follow the E4980A/AL User's Guide: chapter "SCPI Command Reference" (FREQuency, VOLTage, BIAS,
FUNCtion:IMPedance, APERture, TRIGger, INITiate, FETCh, LIST, DISPlay:PAGE, MEMory, FORMat:DATA, *OPT?,
SYSTem:ERRor?) and chapter 8 "Overview of Remote Control" (data buffer memory: ASCII output of
:MEM:READ? DBUF is <DATA A>,<DATA B>,<STATUS>,<BIN No.> per record; status 0 = valid, +1 = overload with
data 9.9E37, -1 = no data).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from instrument_helpers import failing_instrument
from pymeasure.test import expected_protocol

from drivers.keysight_e4980a import KeysightE4980A, log_spaced_indices
from labctl.clock import VirtualClock
from labctl.errors import ConnectionLost, InstrumentError, ParameterError
from labctl.roles import LCRMeter

NO_ERROR = ("SYST:ERR?", '+0,"No error"')
SPOT_SETUP = [(":FORM:DATA ASC", None), (":FUNC:IMP:TYPE CPG", None), (":DISP:PAGE MEAS", None),
              (":TRIG:SOUR BUS", None), (":INIT:CONT ON", None), NO_ERROR]


def record(c: float, g: float, status: int = 0) -> str:
    if status == 1:
        c = g = 9.9e37
    return f"{c:+.5E},{g:+.5E},{status:+d},+0"


def test_satisfies_lcr_role():
    with expected_protocol(KeysightE4980A, []) as inst:
        assert isinstance(inst, LCRMeter)


# --- IEEE 488.2 common commands (*IDN?, *OPT?) ---------------------------------------------------------
def test_identify():
    idn = "Keysight Technologies,E4980A,MY46618801,B.07.05"
    with expected_protocol(KeysightE4980A, [("*IDN?", idn)]) as inst:
        assert inst.identify() == idn


def test_option_001_is_asked_once():
    with expected_protocol(KeysightE4980A, [("*OPT?", "001,710")]) as inst:
        assert inst.has_option_001()
        assert inst.has_option_001()


# --- :FREQuency[:CW] ----------------------------------------------------------------------------------
def test_frequency_get():
    with expected_protocol(KeysightE4980A, [(":FREQ:CW?", "+1.00000E+03")]) as inst:
        assert inst.frequency == 1000.0


def test_frequency_set_checks_error_queue():
    with expected_protocol(KeysightE4980A, [(":FREQ:CW 1000000", None), NO_ERROR]) as inst:
        inst.frequency = 1e6


def test_frequency_out_of_range_is_never_sent():
    with expected_protocol(KeysightE4980A, []) as inst:
        with pytest.raises(ValueError):
            inst.frequency = 3e6
        with pytest.raises(ParameterError, match="frequency"):
            inst.set_frequency(10)


def test_set_frequency():
    with expected_protocol(KeysightE4980A, [(":FREQ:CW 10000", None), NO_ERROR]) as inst:
        inst.set_frequency(1e4)


def test_rejected_setting_raises_with_the_instruments_message():
    # SYSTem:ERRor? returns <code>,"<message>"; the queue is read until +0
    with expected_protocol(KeysightE4980A, [(":FREQ:CW 2000000", None),
                                            ("SYST:ERR?", '-222,"Data out of range"'), NO_ERROR]) as inst:
        with pytest.raises(InstrumentError, match="Data out of range"):
            inst.set_frequency(2e6)


# --- :VOLTage[:LEVel] -----------------------------------------------------------------------------------
def test_ac_voltage_get():
    with expected_protocol(KeysightE4980A, [(":VOLT:LEV?", "+2.00000E-02")]) as inst:
        assert inst.ac_voltage == pytest.approx(0.02)


def test_set_ac_level():
    with expected_protocol(KeysightE4980A, [(":VOLT:LEV 0.02", None), NO_ERROR]) as inst:
        inst.set_ac_level(0.02)


def test_set_ac_level_above_2V_needs_option_001():
    with expected_protocol(KeysightE4980A, [("*OPT?", "0")]) as inst:
        with pytest.raises(ParameterError, match="option 001"):
            inst.set_ac_level(5.0)


def test_set_ac_level_above_2V_with_option_001():
    with expected_protocol(KeysightE4980A, [("*OPT?", "001"), (":VOLT:LEV 5", None), NO_ERROR]) as inst:
        inst.set_ac_level(5.0)


# --- :BIAS:VOLTage[:LEVel], :BIAS:STATe -------------------------------------------------------------------
def test_dc_bias_voltage_get():
    with expected_protocol(KeysightE4980A, [(":BIAS:VOLT:LEV?", "-5.00000E-01")]) as inst:
        assert inst.dc_bias_voltage == -0.5


def test_set_dc_bias_standard_level_needs_no_option_check():
    with expected_protocol(KeysightE4980A, [(":BIAS:VOLT:LEV 1.5", None), NO_ERROR]) as inst:
        inst.set_dc_bias(1.5)


def test_set_dc_bias_with_option_001():
    with expected_protocol(KeysightE4980A, [("*OPT?", "001,710"), (":BIAS:VOLT:LEV -0.5", None),
                                            NO_ERROR]) as inst:
        inst.set_dc_bias(-0.5)


def test_set_dc_bias_without_option_001():
    with expected_protocol(KeysightE4980A, [("*OPT?", "0")]) as inst:
        with pytest.raises(ParameterError, match=r"0, 1\.5 or 2 V"):
            inst.set_dc_bias(0.7)


def test_dc_bias_out_of_range():
    with expected_protocol(KeysightE4980A, []) as inst, pytest.raises(ParameterError, match="DC bias"):
        inst.set_dc_bias(41)


def test_dc_bias_on():
    with expected_protocol(KeysightE4980A, [(":BIAS:STAT 1", None), NO_ERROR]) as inst:
        inst.dc_bias_on()


def test_dc_bias_off():
    with expected_protocol(KeysightE4980A, [(":BIAS:STAT 0", None), NO_ERROR]) as inst:
        inst.dc_bias_off()


def test_dc_bias_enabled_get():
    with expected_protocol(KeysightE4980A, [(":BIAS:STAT?", "1")]) as inst:
        assert inst.dc_bias_enabled is True


# --- :FUNCtion:IMPedance[:TYPE], :APERture, :TRIGger, :INITiate, :LIST:MODE, :DISPlay:PAGE -----------------
def test_impedance_function_get():
    with expected_protocol(KeysightE4980A, [(":FUNC:IMP:TYPE?", "CPG")]) as inst:
        assert inst.impedance_function == "CPG"


def test_impedance_function_set():
    with expected_protocol(KeysightE4980A, [(":FUNC:IMP:TYPE CPD", None), NO_ERROR]) as inst:
        inst.impedance_function = "CPD"


def test_aperture_get():
    with expected_protocol(KeysightE4980A, [(":APER?", "MED,4")]) as inst:
        assert inst.aperture == ("MED", 4)


def test_aperture_set_accepts_long_names():
    with expected_protocol(KeysightE4980A, [(":APER SHOR,1", None), NO_ERROR]) as inst:
        inst.aperture = ("short", 1)


def test_aperture_set_rejects_bad_averaging():
    with expected_protocol(KeysightE4980A, []) as inst, pytest.raises(ValueError, match="1–256"):
        inst.aperture = ("LONG", 300)


def test_trigger_source_set():
    with expected_protocol(KeysightE4980A, [(":TRIG:SOUR BUS", None), NO_ERROR]) as inst:
        inst.trigger_source = "BUS"


def test_trigger_source_get():
    with expected_protocol(KeysightE4980A, [(":TRIG:SOUR?", "HOLD")]) as inst:
        assert inst.trigger_source == "HOLD"


def test_continuous_initiation_set():
    with expected_protocol(KeysightE4980A, [(":INIT:CONT 1", None), NO_ERROR]) as inst:
        inst.continuous_initiation = True


def test_trigger_delay_set():
    with expected_protocol(KeysightE4980A, [(":TRIG:DEL 0.5", None), NO_ERROR]) as inst:
        inst.trigger_delay = 0.5


def test_step_delay_get():
    with expected_protocol(KeysightE4980A, [(":TRIG:TDEL?", "+1.00000E-02")]) as inst:
        assert inst.step_delay == 0.01


def test_list_mode_set():
    with expected_protocol(KeysightE4980A, [(":LIST:MODE SEQ", None), NO_ERROR]) as inst:
        inst.list_mode = "SEQ"


def test_display_page_set():
    with expected_protocol(KeysightE4980A, [(":DISP:PAGE LIST", None), NO_ERROR]) as inst:
        inst.display_page = "LIST"


# --- measure(): :TRIGger[:IMMediate] + :FETCh? --------------------------------------------------------------
def test_measure_first_call_configures_cp_g_and_bus_trigger():
    with expected_protocol(KeysightE4980A, [*SPOT_SETUP, (":TRIG:IMM", None),
                                            (":FETC?", "+1.23450E-08,+2.50000E-06,+0")]) as inst:
        assert inst.measure() == (pytest.approx(1.2345e-8), pytest.approx(2.5e-6))


def test_measure_again_only_triggers_and_fetches():
    with expected_protocol(KeysightE4980A, [*SPOT_SETUP, (":TRIG:IMM", None), (":FETC?", "+1E-08,+1E-06,+0"),
                                            (":TRIG:IMM", None), (":FETC?", "+2E-08,+3E-06,+0")]) as inst:
        inst.measure()
        assert inst.measure() == (pytest.approx(2e-8), pytest.approx(3e-6))


def test_measure_overload_raises():
    with expected_protocol(KeysightE4980A, [*SPOT_SETUP, (":TRIG:IMM", None),
                                            (":FETC?", "+9.90000E+37,+9.90000E+37,+1")]) as inst:
        with pytest.raises(InstrumentError, match="overload"):
            inst.measure()


def test_measure_alc_warning_keeps_the_data():
    with expected_protocol(KeysightE4980A, [*SPOT_SETUP, (":TRIG:IMM", None),
                                            (":FETC?", "+1E-08,+1E-06,+4")]) as inst:
        assert inst.measure()[0] == pytest.approx(1e-8)


def test_measure_garbage_reply_raises():
    with expected_protocol(KeysightE4980A, [*SPOT_SETUP, (":TRIG:IMM", None), (":FETC?", "OK")]) as inst:
        with pytest.raises(InstrumentError, match="unreadable"):
            inst.measure()


# --- capture_transient(): list sweep SEQ into the data buffer memory (:MEM:DIM/FILL/READ?/CLE) --------------
def capture_setup(count: int, step: str, frequency: str = "100000") -> list[tuple[str, str | None]]:
    return [(":FORM:DATA ASC", None), (":FUNC:IMP:TYPE CPG", None), (":APER SHOR,1", None),
            (":TRIG:SOUR BUS", None), (":INIT:CONT ON", None), (":TRIG:DEL 0", None),
            (f":TRIG:TDEL {step}", None), (":LIST:MODE SEQ", None),
            (":LIST:FREQ " + ",".join([frequency] * count), None), (":DISP:PAGE LIST", None),
            (f":MEM:DIM DBUF,{count}", None), (":MEM:FILL DBUF", None), NO_ERROR, (":TRIG:IMM", None)]


CAPTURE_END = [(":MEM:CLE DBUF", None), (":DISP:PAGE MEAS", None), (":APER MED,1", None), NO_ERROR]


def test_capture_transient_short_runs_back_to_back_and_thins_log_spaced():
    # 50 ms at 100 kHz: 9 points 5.6 ms apart (SHORT), step delay 0; 5 kept: indices 0, 1, 2, 4, 8
    capacitances = [10e-9 - k * 1e-10 for k in range(9)]
    buffer = ",".join(record(c, 1e-6) for c in capacitances)
    clock = VirtualClock()
    start = clock.now()
    with expected_protocol(KeysightE4980A, [(":FREQ:CW?", "+1.00000E+05"), (":APER?", "MED,1"),
                                            *capture_setup(9, "0"), (":MEM:READ? DBUF", buffer),
                                            *CAPTURE_END], clock=clock) as inst:
        result = inst.capture_transient(0.05, 5)
    assert result.frequency_Hz == 1e5
    np.testing.assert_allclose(result.time_s, np.array([0, 1, 2, 4, 8]) * 5.6e-3 + 2.8e-3)
    np.testing.assert_allclose(result.capacitance_F, [capacitances[i] for i in (0, 1, 2, 4, 8)])
    np.testing.assert_allclose(result.conductance_S, 1e-6)
    assert clock.now() - start == pytest.approx(9 * 5.6e-3)
    # buffer commands are actions, never replayed after a reconnect; the restored aperture is
    assert not [key for key in inst._settings_log if key.startswith(":MEM")]
    assert inst._settings_log[":APER"] == ":APER MED,1"


def test_capture_transient_long_is_dense_first_then_spread_by_the_step_delay():
    # 10 s at 1 kHz: 100 points back to back (5.6 ms apart: the early transient), then, once that sweep is
    # done (*OPC?), 101 points over the remaining 9.44 s: step delay 9.44/101 - 5.6 ms = 87.9 ms
    setup = capture_setup(100, "0", "1000")[:-1]
    setup[-3] = (":MEM:DIM DBUF,201", None)
    second = ":TRIG:TDEL 0.0879;:LIST:FREQ " + ",".join(["1000"] * 101) + ";:TRIG:IMM"
    buffer = ",".join(record(1e-8, 1e-6) for _ in range(201))
    with expected_protocol(KeysightE4980A, [(":FREQ:CW?", "+1.00000E+03"), (":APER?", "MED,1"), *setup,
                                            (":TRIG:IMM", None), ("*OPC?", "1"), (second, None),
                                            (":MEM:READ? DBUF", buffer), *CAPTURE_END],
                           clock=VirtualClock()) as inst:
        result = inst.capture_transient(10.0, 201)
    assert len(result.time_s) == 201
    np.testing.assert_allclose(result.time_s[:100], 2.8e-3 + np.arange(100) * 5.6e-3)
    # the second sweep starts when the driver triggered it: after waiting out the first (0.56 s)
    np.testing.assert_allclose(result.time_s[100:], 2.8e-3 + 0.56 + np.arange(101) * 0.0935, atol=1e-9)
    assert inst.last_capture["segments"] == 2


def test_capture_plan():
    plan = KeysightE4980A.capture_plan
    assert plan(0.05, 5.6e-3) == [(9, 0.0)]
    assert plan(1.12, 5.6e-3) == [(201, 0.0)]  # 201 back to back fit exactly
    assert plan(60.0, 5.6e-3) == [(100, 0.0), (101, 0.5829)]


def test_capture_transient_overloaded_points_are_nan():
    buffer = ",".join([record(1e-8, 1e-6), record(0, 0, status=1), record(1e-8, 1e-6)])
    with expected_protocol(KeysightE4980A, [(":FREQ:CW?", "+1.00000E+05"), (":APER?", "MED,1"),
                                            *capture_setup(3, "0"), (":MEM:READ? DBUF", buffer),
                                            *CAPTURE_END], clock=VirtualClock()) as inst:
        result = inst.capture_transient(0.012, 3)
    assert math.isnan(result.capacitance_F[1]) and math.isnan(result.conductance_S[1])
    assert result.capacitance_F[2] == pytest.approx(1e-8)


def test_capture_transient_rereads_while_records_are_empty():
    partial = ",".join([record(1e-8, 1e-6), record(9.9e37, 9.9e37, status=-1)])
    full = ",".join([record(1e-8, 1e-6), record(2e-8, 1e-6)])
    with expected_protocol(KeysightE4980A, [(":FREQ:CW?", "+1.00000E+05"), (":APER?", "MED,1"),
                                            *capture_setup(2, "0"), (":MEM:READ? DBUF", partial),
                                            (":MEM:READ? DBUF", full), *CAPTURE_END],
                           clock=VirtualClock()) as inst:
        result = inst.capture_transient(0.006, 2)
    assert result.capacitance_F[1] == pytest.approx(2e-8)


def test_capture_transient_restores_the_meter_when_the_setup_fails():
    setup = capture_setup(2, "0")[:-2]  # up to :MEM:FILL DBUF, then the error queue reports a conflict
    with expected_protocol(KeysightE4980A, [(":FREQ:CW?", "+1.00000E+05"), (":APER?", "MED,1"), *setup,
                                            ("SYST:ERR?", '-221,"Settings conflict"'), NO_ERROR,
                                            (":MEM:CLE DBUF", None), (":DISP:PAGE MEAS", None),
                                            (":APER MED,1", None)], clock=VirtualClock()) as inst:
        with pytest.raises(InstrumentError, match="Settings conflict"):
            inst.capture_transient(0.006, 2)


def test_capture_transient_rejects_bad_parameters():
    with expected_protocol(KeysightE4980A, []) as inst:
        with pytest.raises(ParameterError):
            inst.capture_transient(0, 10)
        with pytest.raises(ParameterError):
            inst.capture_transient(1.0, 0)
        with pytest.raises(ParameterError, match="bias_V"):
            inst.capture_transient(1.0, 10, bias_V=45.0)


def test_capture_transient_without_a_step_has_no_dead_time():
    buffer = ",".join([record(1e-8, 1e-6), record(1e-8, 1e-6)])
    with expected_protocol(KeysightE4980A, [(":FREQ:CW?", "+1.00000E+05"), (":APER?", "MED,1"),
                                            *capture_setup(2, "0"), (":MEM:READ? DBUF", buffer),
                                            *CAPTURE_END], clock=VirtualClock()) as inst:
        result = inst.capture_transient(0.006, 2)
    assert math.isnan(result.dead_time_s)
    np.testing.assert_allclose(result.time_s, [2.8e-3, 8.4e-3])  # from the trigger


def test_capture_transient_steps_the_bias_in_the_trigger_message_after_the_set_up():
    # TID: the bias still holds the filling pulse while the meter is configured; one message then steps the
    # bias to 0 V and triggers, so the first point follows the step by one command and half a measurement
    buffer = ",".join([record(1.2e-8, 1e-6), record(1.1e-8, 1e-6), record(1.0e-8, 1e-6)])
    setup = capture_setup(3, "0")[:-1]
    with expected_protocol(KeysightE4980A, [(":FREQ:CW?", "+1.00000E+05"), (":APER?", "MED,1"),
                                            (":BIAS:STAT?", "1"), *setup,
                                            (":BIAS:VOLT:LEV 0;:TRIG:IMM", None), (":MEM:READ? DBUF", buffer),
                                            *CAPTURE_END], clock=VirtualClock()) as inst:
        result = inst.capture_transient(0.012, 3, bias_V=0.0)
    assert result.dead_time_s == pytest.approx(1e-3 + 2.8e-3)
    np.testing.assert_allclose(result.time_s, 3.8e-3 + np.arange(3) * 5.6e-3)  # from the bias step
    assert inst._settings_log[":BIAS:VOLT:LEV"] == ":BIAS:VOLT:LEV 0"  # restored after a reconnect
    assert inst.last_capture["dead_time_s"] == result.dead_time_s


def test_a_link_lost_at_the_step_is_reported_and_the_step_not_repeated():
    step = ":BIAS:VOLT:LEV 0;:TRIG:IMM"
    pairs = [(":FREQ:CW?", "+1.00000E+05"), (":APER?", "MED,1"), (":BIAS:STAT?", "1"),
             *capture_setup(2, "0")[:-1], *CAPTURE_END[:-1]]
    adapter, inst = failing_instrument(KeysightE4980A, pairs, fail_on=step)
    with pytest.raises(ConnectionLost, match="not repeated"):
        inst.capture_transient(0.006, 2, bias_V=0.0)
    assert adapter._index == len(pairs)  # after the lost step only the meter's restoration was sent


def test_capture_transient_switches_a_bias_that_was_off_on_at_the_step():
    buffer = ",".join([record(1e-8, 1e-6)] * 2)
    with expected_protocol(KeysightE4980A, [("*OPT?", "001"), (":FREQ:CW?", "+1.00000E+05"), (":APER?", "MED,1"),
                                            (":BIAS:STAT?", "0"), *capture_setup(2, "0")[:-1],
                                            (":BIAS:VOLT:LEV -0.5;:BIAS:STAT 1;:TRIG:IMM", None),
                                            (":MEM:READ? DBUF", buffer), *CAPTURE_END],
                           clock=VirtualClock()) as inst:
        assert inst.capture_transient(0.006, 2, bias_V=-0.5).dead_time_s == pytest.approx(3.8e-3)


def test_measurement_time_model():
    assert KeysightE4980A.measurement_time_s(1e6) == pytest.approx(5.6e-3)
    assert KeysightE4980A.measurement_time_s(1e3) == pytest.approx(5.6e-3)
    assert KeysightE4980A.measurement_time_s(100) == pytest.approx(56e-3)


def test_log_spaced_indices_keep_first_and_last():
    indices = log_spaced_indices(201, 20)
    assert len(indices) == 20 and indices[0] == 0 and indices[-1] == 200
    assert np.all(np.diff(indices) > 0)


# --- snapshot and safe state ------------------------------------------------------------------------------
def test_settings_snapshot():
    with expected_protocol(KeysightE4980A, [(":APER?", "SHOR,1"), (":FREQ:CW?", "+1.00000E+04"),
                                            (":VOLT:LEV?", "+2.00000E-02"),
                                            (":BIAS:VOLT:LEV?", "+0.00000E+00"), (":BIAS:STAT?", "0"),
                                            (":FUNC:IMP:TYPE?", "CPG")]) as inst:
        assert inst.settings_snapshot() == {"frequency_Hz": 1e4, "ac_level_V": 0.02, "dc_bias_V": 0.0,
                                            "dc_bias_on": False, "function": "CPG", "aperture": "SHOR",
                                            "averaging": 1.0}


def test_safe_state():
    with expected_protocol(KeysightE4980A, [(":BIAS:STAT 0", None), NO_ERROR, (":BIAS:VOLT:LEV 0", None),
                                            NO_ERROR, (":MEM:CLE DBUF", None), NO_ERROR]) as inst:
        inst.safe_state()


def test_safe_state_tries_every_step_when_one_fails():
    with expected_protocol(KeysightE4980A, [(":BIAS:STAT 0", None), ("SYST:ERR?", '-200,"Execution error"'),
                                            NO_ERROR, (":BIAS:VOLT:LEV 0", None), NO_ERROR,
                                            (":MEM:CLE DBUF", None), NO_ERROR]) as inst:
        with pytest.raises(InstrumentError, match=r"DC bias off.*Execution error"):
            inst.safe_state()
