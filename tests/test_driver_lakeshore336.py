"""Protocol tests for the Lake Shore 336 driver.

Exchanges follow the Model 336 User's Manual, chapter 6 "Computer Interface Operation", section 6.6
command descriptions: KRDG?, RDGST? (bit weights 1 invalid reading, 16 temp under range, 32 temp over
range, 64 sensor units zero, 128 sensor units over range), SETP/SETP?, RAMP/RAMP? (rate 0.1–100 K/min,
0 = infinite), RANGE/RANGE? (outputs 1/2: 0 off, 1 low, 2 medium, 3 high), HTR?, HTRST? (1 open load,
2 short), PID/PID?, OUTMODE/OUTMODE? (mode 0 off, 1 closed loop PID ...; input 0 none, 1 A ... 4 D),
INTYPE?, *IDN?. The instrument has no error queue; replies are terminated by CR LF.
"""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.lakeshore336 import LakeShore336
from drivers.temperature_common import wait_until_stable
from labctl.clock import VirtualClock
from labctl.errors import InstrumentError, ParameterError
from labctl.roles import TemperatureController


def test_satisfies_temperature_controller_role():
    with expected_protocol(LakeShore336, []) as inst:
        assert isinstance(inst, TemperatureController)


def test_identify():
    with expected_protocol(LakeShore336, [("*IDN?", "LSCI,MODEL336,LSA12AB/#######,2.9")]) as inst:
        assert inst.identify() == "LSCI,MODEL336,LSA12AB/#######,2.9"


def test_constructor_rejects_a_non_heater_output():
    with pytest.raises(ParameterError, match="heater output"):
        LakeShore336("unused", output=3)


# --- KRDG? / RDGST? ----------------------------------------------------------------------------------------
def test_read_temperature_checks_the_input_status():
    with expected_protocol(LakeShore336, [("KRDG? A", "+077.1234"), ("RDGST? A", "000")]) as inst:
        assert inst.read_temperature_K() == pytest.approx(77.1234)


def test_read_temperature_from_another_input():
    with expected_protocol(LakeShore336, [("KRDG? B", "+295.000"), ("RDGST? B", "000")],
                           input_channel="b") as inst:
        assert inst.read_temperature_K() == 295.0


def test_open_sensor_raises():
    # an open diode reads "sensor units over range" (128) plus "temp under range" (16)
    with expected_protocol(LakeShore336, [("KRDG? A", "+000.000"), ("RDGST? A", "144")]) as inst:
        with pytest.raises(InstrumentError, match="sensor units over range"):
            inst.read_temperature_K()


def test_invalid_reading_raises():
    with expected_protocol(LakeShore336, [("KRDG? A", "+000.000"), ("RDGST? A", "1")]) as inst:
        with pytest.raises(InstrumentError, match="invalid reading"):
            inst.read_temperature_K()


def test_unreadable_reply_raises():
    with expected_protocol(LakeShore336, [("KRDG? A", "garbage")]) as inst:
        with pytest.raises(InstrumentError, match="unreadable"):
            inst.read_temperature_K()


def test_pymeasure_input_channel_goes_through_our_lock():
    with expected_protocol(LakeShore336, [("KRDG? C", "+010.000")]) as inst:
        assert inst.input_C.kelvin == 10.0


# --- SETP ------------------------------------------------------------------------------------------------
#: The loop's control input (OUTMODE?) and its preferred units (INTYPE? field 5: 1 K, 2 °C, 3 sensor).
KELVIN_ON_A = [("OUTMODE? 1", "1,1,0"), ("INTYPE? A", "1,0,0,0,1")]


def test_set_setpoint_in_kelvin_when_the_control_sensor_reads_kelvin():
    with expected_protocol(LakeShore336, [*KELVIN_ON_A, ("SETP 1,300", None)]) as inst:
        inst.set_setpoint_K(300.0)


def test_set_setpoint_loop_2():
    with expected_protocol(LakeShore336, [("OUTMODE? 2", "1,2,0"), ("INTYPE? B", "1,0,0,0,1"),
                                          ("SETP 2,77.5", None)], output=2) as inst:
        inst.set_setpoint_K(77.5)


def test_setpoint_follows_the_control_sensor_preferred_units_celsius():
    # SETP is in the preferred units of the loop's control sensor (INTYPE <units>), not always kelvin
    with expected_protocol(LakeShore336, [("OUTMODE? 1", "1,2,0"), ("INTYPE? B", "1,0,0,0,2"),
                                          ("SETP 1,-173.1500", None)]) as inst:
        inst.set_setpoint_K(100.0)


def test_setpoint_in_sensor_units_is_refused_not_sent_as_kelvin():
    with expected_protocol(LakeShore336, [("OUTMODE? 1", "1,1,0"), ("INTYPE? A", "1,0,0,0,3")]) as inst:
        with pytest.raises(InstrumentError, match="sensor units"):
            inst.set_setpoint_K(100.0)


def test_a_loop_without_control_input_uses_the_reading_input_units():
    with expected_protocol(LakeShore336, [("OUTMODE? 1", "0,0,0"), ("INTYPE? A", "1,0,0,0,1"),
                                          ("SETP 1,50", None)]) as inst:
        inst.set_setpoint_K(50.0)


def test_setpoint_get_converts_celsius():
    with expected_protocol(LakeShore336, [("OUTMODE? 1", "1,1,0"), ("INTYPE? A", "1,0,0,0,2"),
                                          ("SETP? 1", "-196.000")]) as inst:
        assert inst.setpoint_K() == pytest.approx(77.15)


def test_sync_marker_is_a_three_digit_event_status_enable_value():
    with expected_protocol(LakeShore336, []) as inst:
        assert inst.sync_marker(1) == ("*ESE 100;*ESE?", "100")
        assert inst.sync_marker(155) == ("*ESE 254;*ESE?", "254")
        assert inst.sync_marker(156) == ("*ESE 255;*ESE?", "255")
        assert inst.sync_marker(157) == ("*ESE 100;*ESE?", "100")


def test_identify_refuses_another_model():
    with expected_protocol(LakeShore336, [("*IDN?", "LSCI,MODEL335,1234567/1234567,1.0")]) as inst:
        with pytest.raises(InstrumentError, match="not a Lake Shore 336"):
            inst.identify()


def test_link_defaults_are_the_usb_serial_port_and_ethernet_needs_no_pause():
    from drivers.link_settings import resolve

    serial = resolve(LakeShore336, "/dev/ttyUSB0")
    assert (serial["baudrate"], serial["bytesize"], serial["parity"], serial["stopbits"]) == (57600, 7, "odd", 1)
    assert serial["read_termination"] == serial["write_termination"] == "\r\n"
    assert serial["command_interval_s"] == 0.05
    assert resolve(LakeShore336, "TCPIP::10.0.0.7::7777::SOCKET")["command_interval_s"] == 0.0
    assert resolve(LakeShore336, "/dev/ttyUSB0", {"baudrate": 9600})["baudrate"] == 9600


def test_setpoint_out_of_range_is_never_sent():
    with expected_protocol(LakeShore336, []) as inst, pytest.raises(ParameterError, match="setpoint"):
        inst.set_setpoint_K(-1.0)


def test_setpoint_get():
    with expected_protocol(LakeShore336, [*KELVIN_ON_A, ("SETP? 1", "+300.000")]) as inst:
        assert inst.setpoint_K() == 300.0


# --- RAMP --------------------------------------------------------------------------------------------------
def test_set_ramp_rate_reads_back():
    with expected_protocol(LakeShore336, [("RAMP 1,1,2.5", None), ("RAMP? 1", "1,+2.50")]) as inst:
        inst.set_ramp_rate_K_min(2.5)


def test_ramp_rate_zero_turns_ramping_off():
    with expected_protocol(LakeShore336, [("RAMP 1,0,0", None), ("RAMP? 1", "0,+0.00")]) as inst:
        inst.set_ramp_rate_K_min(0)


def test_ramp_rate_not_accepted_raises():
    with expected_protocol(LakeShore336, [("RAMP 1,1,2.5", None), ("RAMP? 1", "0,+10.0")]) as inst:
        with pytest.raises(InstrumentError, match="did not accept"):
            inst.set_ramp_rate_K_min(2.5)


def test_ramp_rate_below_minimum():
    with expected_protocol(LakeShore336, []) as inst, pytest.raises(ParameterError, match="minimum"):
        inst.set_ramp_rate_K_min(0.05)


def test_ramp_settings_get():
    with expected_protocol(LakeShore336, [("RAMP? 1", "1,+10.0")]) as inst:
        assert inst.ramp_settings() == (True, 10.0)


# --- RANGE / OUTMODE -------------------------------------------------------------------------------------
def test_set_heater_range_checks_the_output_mode_and_reads_back():
    with expected_protocol(LakeShore336, [("OUTMODE? 1", "1,1,0"), ("RANGE 1,2", None),
                                          ("RANGE? 1", "2")]) as inst:
        inst.set_heater_range("medium")


def test_set_heater_range_in_off_mode_raises():
    with expected_protocol(LakeShore336, [("OUTMODE? 1", "0,1,0")]) as inst:
        with pytest.raises(InstrumentError, match="Off mode"):
            inst.set_heater_range("high")


def test_set_heater_range_not_accepted_raises():
    with expected_protocol(LakeShore336, [("OUTMODE? 1", "1,1,0"), ("RANGE 1,3", None),
                                          ("RANGE? 1", "0")]) as inst:
        with pytest.raises(InstrumentError, match="did not accept"):
            inst.set_heater_range("HIGH")


def test_unknown_heater_range_name():
    with expected_protocol(LakeShore336, []) as inst, pytest.raises(ParameterError, match="heater_range"):
        inst.set_heater_range("max")


def test_heater_off():
    with expected_protocol(LakeShore336, [("RANGE 1,0", None), ("RANGE? 1", "0")]) as inst:
        inst.heater_off()


def test_heater_range_get():
    with expected_protocol(LakeShore336, [("RANGE? 1", "1")]) as inst:
        assert inst.heater_range() == "low"


def test_configure_control_loop():
    with expected_protocol(LakeShore336, [("OUTMODE 1,1,2,0", None), ("OUTMODE? 1", "1,2,0")]) as inst:
        inst.configure_control_loop("closed_loop", input_channel="B")


def test_control_loop_get():
    with expected_protocol(LakeShore336, [("OUTMODE? 2", "3,0,1")], output=2) as inst:
        assert inst.control_loop() == ("open_loop", "", True)


# --- HTR? / HTRST? / PID / INTYPE? -------------------------------------------------------------------------
def test_heater_output_percent():
    with expected_protocol(LakeShore336, [("HTRST? 1", "0"), ("HTR? 1", "+045.3")]) as inst:
        assert inst.heater_output_percent() == pytest.approx(45.3)


def test_heater_open_load_raises():
    with expected_protocol(LakeShore336, [("HTRST? 1", "1")]) as inst:
        with pytest.raises(InstrumentError, match="open load"):
            inst.heater_output_percent()


def test_set_pid():
    with expected_protocol(LakeShore336, [("PID 1,50,20,0", None)]) as inst:
        inst.set_pid(50, 20, 0)


def test_set_pid_out_of_range():
    with expected_protocol(LakeShore336, []) as inst, pytest.raises(ParameterError, match="D"):
        inst.set_pid(50, 20, 300)


def test_pid_get():
    with expected_protocol(LakeShore336, [("PID? 1", "+0050.0,+0020.0,+0000.0")]) as inst:
        assert inst.pid() == (50.0, 20.0, 0.0)


def test_sensor_type_get():
    with expected_protocol(LakeShore336, [("INTYPE? A", "1,0,0,0,1")]) as inst:
        assert inst.sensor_type() == [1, 0, 0, 0, 1]


# --- wait_until_stable (polls KRDG?/RDGST? on the clock) ----------------------------------------------------
def test_wait_until_stable_needs_the_whole_window():
    readings = ["+079.000", "+080.020", "+080.300", "+080.010", "+079.990", "+080.000"]
    pairs = [p for r in readings for p in (("KRDG? A", r), ("RDGST? A", "000"))]
    clock = VirtualClock()
    start = clock.now()
    with expected_protocol(LakeShore336, pairs, clock=clock) as inst:
        assert inst.wait_until_stable(80.0, 0.05, window_s=2.0, timeout_s=60.0, poll_s=1.0)
    assert clock.now() - start == pytest.approx(5.0)


def test_wait_until_stable_times_out():
    pairs = [p for _ in range(4) for p in (("KRDG? A", "+070.000"), ("RDGST? A", "000"))]
    with expected_protocol(LakeShore336, pairs, clock=VirtualClock()) as inst:
        assert not inst.wait_until_stable(80.0, 0.1, window_s=1.0, timeout_s=3.0, poll_s=1.0)


def test_wait_until_stable_raises_on_an_open_sensor():
    with expected_protocol(LakeShore336, [("KRDG? A", "+000.000"), ("RDGST? A", "128")],
                           clock=VirtualClock()) as inst:
        with pytest.raises(InstrumentError, match="over range"):
            inst.wait_until_stable(80.0, 0.1, window_s=1.0, timeout_s=3.0)


def test_wait_until_stable_rejects_bad_parameters():
    with pytest.raises(ParameterError, match="tolerance"):
        wait_until_stable(lambda: 1.0, VirtualClock(), 1.0, 0.0, 1.0, 1.0)


# --- snapshot, safe state, replay ---------------------------------------------------------------------------
def test_settings_snapshot():
    with expected_protocol(LakeShore336, [("RAMP? 1", "1,+2.00"), ("OUTMODE? 1", "1,1,0"),
                                          ("PID? 1", "+0050.0,+0020.0,+0000.0"), ("INTYPE? A", "1,0,0,0,1"),
                                          ("SETP? 1", "+080.000"), ("RANGE? 1", "3")]) as inst:
        assert inst.settings_snapshot() == {
            "output": 1.0, "input_channel": "A", "setpoint_units": "kelvin", "setpoint_K": 80.0,
            "ramp_enabled": True,
            "ramp_rate_K_min": 2.0, "heater_range": "high", "output_mode": "closed_loop",
            "control_input": "A", "powerup_enable": False, "P": 50.0, "I": 20.0, "D": 0.0}


def test_safe_state_turns_both_heater_outputs_off():
    with expected_protocol(LakeShore336, [("RANGE 1,0", None), ("RANGE? 1", "0"), ("RANGE 2,0", None),
                                          ("RANGE? 2", "0")]) as inst:
        inst.safe_state()


def test_safe_state_tries_output_2_when_output_1_fails():
    with expected_protocol(LakeShore336, [("RANGE 1,0", None), ("RANGE? 1", "3"), ("RANGE 2,0", None),
                                          ("RANGE? 2", "0")]) as inst:
        with pytest.raises(InstrumentError, match="heater output 1 off"):
            inst.safe_state()


def test_settings_are_remembered_per_channel_for_replay():
    with expected_protocol(LakeShore336, [("RANGE 1,0", None), ("RANGE? 1", "0"), ("RANGE 2,0", None),
                                          ("RANGE? 2", "0"), *KELVIN_ON_A, ("SETP 1,100", None)]) as inst:
        inst.safe_state()
        inst.set_setpoint_K(100)
        assert list(inst._settings_log.values()) == ["RANGE 1,0", "RANGE 2,0", "SETP 1,100"]
