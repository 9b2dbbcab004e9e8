"""Protocol tests for the Oxford Instruments Mercury iTC driver.

Exchanges follow the Mercury iTC Handbook, chapter "Command reference guide": SCPI command messages
(READ/SET verbs answered by STAT; ``*IDN?`` -> ``IDN:OXFORD INSTRUMENTS:MERCURY dd:ss:ff``), "Addressing a
temperature sensor" (``DEV:<UID>:TEMP:SIG:TEMP``), "Addressing a heater controller" (``DEV:<UID>:HTR``:
VLIM, SIG:POWR), "Addressing a control loop" (``DEV:<UID>:TEMP:LOOP``: HTR, ENAB, HSET, TSET, RSET, RENA,
P/I/D) and "Invalid responses" (INVALID, NOT_FOUND, N/A, DENIED); the MercuryiTC Operator's Manual (2015) section 8.3
(``READ:SYS:CAT``, signal scales, HSET "in Manual"). Reply formats are those recorded from a real iTC in
pymeasure's tests (``STAT:DEV:MB0.H1:HTR:SIG:VOLT:-0.0481V``, ``...:HTR:VLIM:25``).
"""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.mercury_itc import MercuryITC, parse_quantity, reply_belongs, si_value
from labctl.clock import VirtualClock
from labctl.errors import InstrumentError, ParameterError
from labctl.roles import TemperatureController

LOOP = "DEV:MB1.T1:TEMP:LOOP"


def set_pair(path: str, value: str, verdict: str = "VALID") -> tuple[str, str]:
    return (f"SET:{path}:{value}", f"STAT:SET:{path}:{value}:{verdict}")


HEATER_OFF = [set_pair(f"{LOOP}:ENAB", "OFF"), set_pair(f"{LOOP}:HSET", "0")]
LOOP_HEATER = (f"READ:{LOOP}:HTR", f"STAT:{LOOP}:HTR:MB0.H1")


def test_satisfies_temperature_controller_role():
    with expected_protocol(MercuryITC, []) as inst:
        assert isinstance(inst, TemperatureController)


def test_identify():
    idn = "IDN:OXFORD INSTRUMENTS:MERCURY ITC:123456:2.5.09.000"
    with expected_protocol(MercuryITC, [("*IDN?", idn)]) as inst:
        assert inst.identify() == idn


def test_constructor_rejects_a_malformed_uid():
    with pytest.raises(ParameterError, match="UID"):
        MercuryITC("unused", sensor="T1")


def test_parse_quantity():
    assert parse_quantity("77.1234K") == (77.1234, "K")
    assert parse_quantity("12.345:mV") == (12.345, "mV")
    assert parse_quantity("infK/m") == (float("inf"), "K/m")


def test_signals_are_scaled_to_their_base_unit():
    assert si_value("174.3112mV", "V") == pytest.approx(0.1743112)
    assert si_value("-0.0481V", "V") == -0.0481
    assert si_value("10.0000uA", "A") == pytest.approx(1e-5)
    assert si_value("25", "V") == 25.0
    with pytest.raises(ValueError, match="not in V"):
        si_value("12.5W", "V")


@pytest.mark.parametrize(("command", "reply", "belongs"), [
    ("READ:DEV:MB1.T1:TEMP:SIG:TEMP", "STAT:DEV:MB1.T1:TEMP:SIG:TEMP:77.1K", True),
    ("READ:DEV:MB1.T1:TEMP:SIG:TEMP", "STAT:DEV:DB9.T1:TEMP:SIG:TEMP:NOT_FOUND", False),
    ("READ:DEV:DB9.T1:TEMP:SIG:TEMP", "STAT:DEV:DB9.T1:TEMP:SIG:TEMP:NOT_FOUND", True),
    ("READ:DEV:MB1.T1:TEMP:SIG:TEMP", "STAT:DEV:MB1.T1:TEMPERATURE:INVALID", True),
    ("READ:DEV:MB1.T1:TEMP:SIG:TEMP", "STAT:DEV:MB1.T1:TEMP:LOOP:TSET:80.0000K", False),  # a late reply
    ("READ:DEV:MB1.T1:TEMP:SIG:TEMP", "STAT:DEV:MB1.T1:TEMP:SIG:TEMP", False),  # no value
    ("READ:DEV:MB1.T1:TEMP:SIG:TEMP", "READ:INVALID", True),
    ("SET:DEV:MB1.T1:TEMP:LOOP:TSET:80", "STAT:SET:DEV:MB1.T1:TEMP:LOOP:TSET:80:VALID", True),
    ("SET:DEV:MB1.T1:TEMP:LOOP:TSET:80", "STAT:SET:DEV:MB1.T1:TEMP:LOOP:TSET:90:VALID", False),
    ("SET:DEV:MB1.T1:TEMP:LOOP:PSET:5", "STAT:SET:DEV:MB1.T1:TEMP:LOOP:PSET:INVALID", True),
    ("SET:DEV:MB1.T1:TEMP:LOOP:TSET:80", "STAT:DEV:MB1.T1:TEMP:LOOP:TSET:80.0000K", False),
    ("*IDN?", "IDN:OXFORD INSTRUMENTS:MERCURY ITC:1:2.6.04.000", True),
    ("*IDN?", "STAT:SYS:CAT:DEV:MB0.H1:HTR", False),
])
def test_reply_belongs_to_its_request(command, reply, belongs):
    assert reply_belongs(command, reply) is belongs


def test_a_late_reply_to_an_earlier_query_is_skipped():
    pairs = [("READ:DEV:MB1.T1:TEMP:SIG:TEMP", f"STAT:{LOOP}:TSET:80.0000K"),
             (None, "STAT:DEV:MB1.T1:TEMP:SIG:TEMP:77.1234K")]
    with expected_protocol(MercuryITC, pairs) as inst:
        assert inst.read_temperature_K() == pytest.approx(77.1234)


def test_sync_marker_is_the_identification_once_known():
    idn = "IDN:OXFORD INSTRUMENTS:MERCURY ITC:232150255:2.6.04.000"
    with expected_protocol(MercuryITC, [("*IDN?", idn)]) as inst:
        assert inst.sync_marker(7) is None
        inst.identify()
        assert inst.sync_marker(7) == ("*IDN?", idn)


def test_catalogue():
    reply = "STAT:SYS:CAT:DEV:MB0.H1:HTR:DEV:MB1.T1:TEMP:DEV:DB1.H1:HTR:DEV:DB6.T1:TEMP"
    with expected_protocol(MercuryITC, [("READ:SYS:CAT", reply)]) as inst:
        assert inst.catalogue() == {"MB0.H1": "HTR", "MB1.T1": "TEMP", "DB1.H1": "HTR", "DB6.T1": "TEMP"}


def test_loop_heater():
    with expected_protocol(MercuryITC, [LOOP_HEATER]) as inst:
        assert inst.loop_heater() == "MB0.H1"


def test_loop_without_a_heater_raises():
    with expected_protocol(MercuryITC, [(f"READ:{LOOP}:HTR", f"STAT:{LOOP}:HTR:None")]) as inst:
        with pytest.raises(InstrumentError, match="drives no heater"):
            inst.loop_heater()


# --- READ:DEV:<UID>:TEMP:SIG:TEMP ---------------------------------------------------------------------
def test_read_temperature():
    with expected_protocol(MercuryITC, [("READ:DEV:MB1.T1:TEMP:SIG:TEMP",
                                         "STAT:DEV:MB1.T1:TEMP:SIG:TEMP:77.1234K")]) as inst:
        assert inst.read_temperature_K() == pytest.approx(77.1234)


def test_read_temperature_other_sensor():
    with expected_protocol(MercuryITC, [("READ:DEV:DB6.T1:TEMP:SIG:TEMP",
                                         "STAT:DEV:DB6.T1:TEMP:SIG:TEMP:4.2000K")], sensor="DB6.T1") as inst:
        assert inst.read_temperature_K() == pytest.approx(4.2)


def test_unknown_board_raises():
    with expected_protocol(MercuryITC, [("READ:DEV:MB1.T1:TEMP:SIG:TEMP",
                                         "STAT:DEV:MB1.T1:TEMP:SIG:TEMP:NOT_FOUND")]) as inst:
        with pytest.raises(InstrumentError, match="NOT_FOUND"):
            inst.read_temperature_K()


def test_invalid_noun_raises():
    pairs = [("READ:DEV:MB1.T1:TEMP:SIG:TEMP", "STAT:DEV:MB1.T1:INVALID")]
    with expected_protocol(MercuryITC, pairs) as inst:
        with pytest.raises(InstrumentError, match="INVALID"):
            inst.read_temperature_K()


def test_reading_in_the_wrong_unit_raises():
    with expected_protocol(MercuryITC, [("READ:DEV:MB1.T1:TEMP:SIG:TEMP",
                                         "STAT:DEV:MB1.T1:TEMP:SIG:TEMP:1.234V")]) as inst:
        with pytest.raises(InstrumentError, match="expected a value in K"):
            inst.read_temperature_K()


# --- LOOP:TSET -------------------------------------------------------------------------------------------
def test_set_setpoint():
    with expected_protocol(MercuryITC, [set_pair(f"{LOOP}:TSET", "80")]) as inst:
        inst.set_setpoint_K(80.0)


def test_set_setpoint_refused_raises():
    with expected_protocol(MercuryITC, [set_pair(f"{LOOP}:TSET", "1900", "INVALID")]) as inst:
        with pytest.raises(InstrumentError, match="refused"):
            inst.set_setpoint_K(1900)


def test_setpoint_out_of_range_is_never_sent():
    with expected_protocol(MercuryITC, []) as inst, pytest.raises(ParameterError, match="setpoint"):
        inst.set_setpoint_K(-5)


def test_setpoint_get():
    with expected_protocol(MercuryITC, [(f"READ:{LOOP}:TSET", f"STAT:{LOOP}:TSET:80.0000K")]) as inst:
        assert inst.setpoint_K() == 80.0


# --- LOOP:RSET / LOOP:RENA -------------------------------------------------------------------------------
def test_set_ramp_rate():
    pairs = [set_pair(f"{LOOP}:RSET", "2.5"), set_pair(f"{LOOP}:RENA", "ON")]
    with expected_protocol(MercuryITC, pairs) as inst:
        inst.set_ramp_rate_K_min(2.5)


def test_ramp_rate_zero_disables_ramping():
    with expected_protocol(MercuryITC, [set_pair(f"{LOOP}:RENA", "OFF")]) as inst:
        inst.set_ramp_rate_K_min(0)


# --- heater: LOOP:HTR / LOOP:ENAB / LOOP:HSET / HTR:VLIM / HTR:SIG:VOLT / HTR:SIG:POWR -------------------
def test_set_heater_range_uses_the_loops_heater_and_enables_automatic_control():
    with expected_protocol(MercuryITC, [LOOP_HEATER, set_pair(f"{LOOP}:ENAB", "ON")]) as inst:
        inst.set_heater_range("medium")


def test_set_heater_range_with_configured_voltage_limits():
    with expected_protocol(MercuryITC, [LOOP_HEATER, set_pair("DEV:MB0.H1:HTR:VLIM", "4"),
                                        set_pair(f"{LOOP}:ENAB", "ON")],
                           heater_voltage_limits_V={"low": 4.0, "high": 40.0}) as inst:
        inst.set_heater_range("low")


def test_set_heater_range_assigns_the_station_heater():
    with expected_protocol(MercuryITC, [set_pair("DEV:DB6.T1:TEMP:LOOP:HTR", "DB1.H1"),
                                        set_pair("DEV:DB6.T1:TEMP:LOOP:ENAB", "ON")],
                           sensor="DB6.T1", heater="DB1.H1") as inst:
        inst.set_heater_range("high")


def test_set_heater_range_without_a_heater_switches_nothing_on():
    with expected_protocol(MercuryITC, [(f"READ:{LOOP}:HTR", f"STAT:{LOOP}:HTR:None")]) as inst:
        with pytest.raises(InstrumentError, match="drives no heater"):
            inst.set_heater_range("high")


def test_set_heater_range_off():
    with expected_protocol(MercuryITC, HEATER_OFF) as inst:
        inst.set_heater_range("off")


def test_heater_voltage_limit_out_of_range():
    with pytest.raises(ParameterError, match="heater voltage limit"):
        MercuryITC("unused", heater_voltage_limits_V={"high": 80.0})


def test_set_heater_percent():
    pairs = [set_pair(f"{LOOP}:ENAB", "OFF"), set_pair(f"{LOOP}:HSET", "12.5")]
    with expected_protocol(MercuryITC, pairs) as inst:
        inst.set_heater_percent(12.5)


def test_heater_output_percent_is_measured_on_the_loops_heater():
    with expected_protocol(MercuryITC, [LOOP_HEATER,
                                        ("READ:DEV:MB0.H1:HTR:SIG:VOLT", "STAT:DEV:MB0.H1:HTR:SIG:VOLT:10.0000V"),
                                        ("READ:DEV:MB0.H1:HTR:VLIM", "STAT:DEV:MB0.H1:HTR:VLIM:25")]) as inst:
        assert inst.heater_output_percent() == 40.0


def test_heater_power():
    with expected_protocol(MercuryITC, [LOOP_HEATER, ("READ:DEV:MB0.H1:HTR:SIG:POWR",
                                                      "STAT:DEV:MB0.H1:HTR:SIG:POWR:0.2500W")]) as inst:
        assert inst.heater_power_W() == 0.25


def test_permission_denied_raises():
    with expected_protocol(MercuryITC, [(f"SET:{LOOP}:HSET:50", f"STAT:SET:{LOOP}:HSET:DENIED")]) as inst:
        with pytest.raises(InstrumentError, match="DENIED"):
            inst.set_noun(f"{LOOP}:HSET", "50")


def test_set_pid():
    with expected_protocol(MercuryITC, [set_pair(f"{LOOP}:P", "10"), set_pair(f"{LOOP}:I", "2"),
                                        set_pair(f"{LOOP}:D", "0")]) as inst:
        inst.set_pid(10, 2, 0)


# --- wait_until_stable -------------------------------------------------------------------------------------
def test_wait_until_stable():
    readings = ["79.500K", "80.010K", "79.995K", "80.000K"]
    pairs = [("READ:DEV:MB1.T1:TEMP:SIG:TEMP", f"STAT:DEV:MB1.T1:TEMP:SIG:TEMP:{r}") for r in readings]
    with expected_protocol(MercuryITC, pairs, clock=VirtualClock()) as inst:
        assert inst.wait_until_stable(80.0, 0.02, window_s=1.0, timeout_s=30.0, poll_s=0.5)


# --- snapshot, safe state, replay ---------------------------------------------------------------------------
def test_settings_snapshot():
    with expected_protocol(MercuryITC, [LOOP_HEATER,
                                        (f"READ:{LOOP}:TSET", f"STAT:{LOOP}:TSET:80.0000K"),
                                        (f"READ:{LOOP}:RENA", f"STAT:{LOOP}:RENA:ON"),
                                        (f"READ:{LOOP}:RSET", f"STAT:{LOOP}:RSET:2.0000K/m"),
                                        (f"READ:{LOOP}:ENAB", f"STAT:{LOOP}:ENAB:ON"),
                                        LOOP_HEATER,
                                        ("READ:DEV:MB0.H1:HTR:SIG:VOLT", "STAT:DEV:MB0.H1:HTR:SIG:VOLT:9.2400V"),
                                        ("READ:DEV:MB0.H1:HTR:VLIM", "STAT:DEV:MB0.H1:HTR:VLIM:40")]) as inst:
        assert inst.settings_snapshot() == {"sensor": "MB1.T1", "heater": "MB0.H1", "setpoint_K": 80.0,
                                            "ramp_enabled": True, "ramp_rate_K_min": 2.0, "heater_auto": True,
                                            "heater_percent": pytest.approx(23.1)}


def test_safe_state():
    with expected_protocol(MercuryITC, HEATER_OFF) as inst:
        inst.safe_state()


def test_safe_state_tries_every_step_when_one_fails():
    with expected_protocol(MercuryITC, [set_pair(f"{LOOP}:ENAB", "OFF", "INVALID"),
                                        set_pair(f"{LOOP}:HSET", "0")]) as inst:
        with pytest.raises(InstrumentError, match="automatic heater control off"):
            inst.safe_state()


def test_reapply_configuration_sends_the_loop_settings_again():
    with expected_protocol(MercuryITC, [set_pair(f"{LOOP}:TSET", "80"), set_pair(f"{LOOP}:TSET", "90"),
                                        set_pair(f"{LOOP}:TSET", "90")]) as inst:
        inst.set_setpoint_K(80)
        inst.set_setpoint_K(90)
        inst.reapply_configuration()
