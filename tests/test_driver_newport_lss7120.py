"""Protocol tests for the Newport/Oriel VeraSol LSS-7120 driver.

Exchanges follow the LSS-7120 user manual's computer-interface commands as quoted by public lab code
(*IDN?, OUTPut, AMPLitude, STATUS? bit table "manual p. 30", ERROR?, USERCAL:SELECT/PERFORM,
SPECTRUM:RECALL/ACTIVE?).
"""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.base import SCPILabInstrument
from drivers.newport_lss7120 import NewportLSS7120
from labctl.errors import InstrumentError
from labctl.roles import LightSource

NO_ERROR = ("ERROR?", "0,No error")
#: The zero-byte USBTMC message that acknowledges every command (read as an empty string).
ACK = (None, "")


def test_is_a_light_source():
    with expected_protocol(NewportLSS7120, []) as inst:
        assert isinstance(inst, LightSource)
        assert isinstance(inst, SCPILabInstrument)
        assert inst.name == "Newport LSS-7120"


def test_constructor_keywords_reach_lab_instrument():
    with expected_protocol(NewportLSS7120, [], address="USB0::0x1FDE::0x000A::123::INSTR") as inst:
        assert inst.address == "USB0::0x1FDE::0x000A::123::INSTR"


def test_identify():
    with expected_protocol(NewportLSS7120, [("*IDN?", "Newport Corporation,LSS-7120,71201234,1.01")]) as inst:
        assert inst.identify() == "Newport Corporation,LSS-7120,71201234,1.01"


def test_identify_rejects_other_instrument():
    with expected_protocol(NewportLSS7120, [("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1,C30")]) as inst:
        with pytest.raises(InstrumentError, match="not a Newport LSS-7120"):
            inst.identify()


def test_amplitude_setter():
    with expected_protocol(NewportLSS7120, [("AMPL 0.750", None), ACK, NO_ERROR]) as inst:
        inst.amplitude_suns = 0.75


def test_a_command_is_followed_by_reading_its_acknowledgement():
    with expected_protocol(NewportLSS7120, [("OUTP OFF", None), ACK, NO_ERROR]) as inst:
        inst.output_enabled = False


def test_behind_a_tcp_bridge_no_acknowledgement_is_read():
    from drivers.link_settings import resolve

    with expected_protocol(NewportLSS7120, [("OUTP OFF", None), NO_ERROR]) as inst:
        inst.adapter.link_settings = resolve(NewportLSS7120, "TCPIP::10.0.0.5::5025::SOCKET")
        inst.output_enabled = False


def test_a_reply_in_place_of_the_acknowledgement_means_the_link_is_out_of_step():
    from labctl.errors import ConnectionLost

    with expected_protocol(NewportLSS7120, [("OUTP OFF", None), (None, "0")]) as inst:
        with pytest.raises(ConnectionLost, match="OUTP OFF"):
            inst.output_enabled = False


def test_amplitude_getter():
    with expected_protocol(NewportLSS7120, [("AMPL?", "1.000")]) as inst:
        assert inst.amplitude_suns == 1.0


def test_amplitude_out_of_range_is_rejected_before_sending():
    with expected_protocol(NewportLSS7120, []) as inst:
        with pytest.raises(ValueError):
            inst.amplitude_suns = 1.2


def test_set_intensity_suns():
    with expected_protocol(NewportLSS7120, [("AMPL 0.500", None), ACK, NO_ERROR]) as inst:
        inst.set_intensity_suns(0.5)


def test_setting_error_raises_with_message():
    with expected_protocol(NewportLSS7120, [
        ("AMPL 0.500", None), ACK,
        ("ERROR?", '-222,"Data out of range"'),
        NO_ERROR,
    ]) as inst:
        with pytest.raises(InstrumentError, match="-222, Data out of range"):
            inst.set_intensity_suns(0.5)


def test_error_queue_with_code_only_entries():
    with expected_protocol(NewportLSS7120, [("ERROR?", "-113 Undefined header"), ("ERROR?", "0")]) as inst:
        assert inst.check_errors() == [(-113, "Undefined header")]


@pytest.mark.parametrize("reply, state", [("ON", True), ("OFF", False), ("1", True), ("0", False)])
def test_output_getter(reply, state):
    with expected_protocol(NewportLSS7120, [("OUTP?", reply)]) as inst:
        assert inst.output_enabled is state


@pytest.mark.parametrize("state, command", [(True, "OUTP ON"), (False, "OUTP OFF")])
def test_output_setter(state, command):
    with expected_protocol(NewportLSS7120, [(command, None), ACK, NO_ERROR]) as inst:
        inst.output_enabled = state


def test_status_bits():
    with expected_protocol(NewportLSS7120, [("STATUS?", "9")]) as inst:
        assert inst.head_status() == {"output_on": True, "head_disconnected": False, "warming_up": True,
                                      "over_temperature": False}


def test_calibration_mode_getter():
    with expected_protocol(NewportLSS7120, [("USERCAL:SELECT?", "1")]) as inst:
        assert inst.calibration_mode == "user"


def test_calibration_mode_setter():
    with expected_protocol(NewportLSS7120, [("USERCAL:SELECT 0", None), ACK, NO_ERROR]) as inst:
        inst.calibration_mode = "factory"


def test_calibrate_to_reference():
    with expected_protocol(NewportLSS7120, [("USERCAL:PERFORM", None), ACK, NO_ERROR]) as inst:
        inst.calibrate_to_reference()


def test_active_spectrum_recall():
    with expected_protocol(NewportLSS7120, [("SPECTRUM:RECALL 0", None), ACK, NO_ERROR]) as inst:
        inst.active_spectrum = 0


def test_active_spectrum_query():
    with expected_protocol(NewportLSS7120, [("SPECTRUM:ACTIVE?", "2")]) as inst:
        assert inst.active_spectrum == 2


def test_open_shutter_checks_head_and_verifies_output():
    with expected_protocol(NewportLSS7120, [
        ("STATUS?", "0"), ("OUTP ON", None), ACK, NO_ERROR, ("OUTP?", "ON"),
    ]) as inst:
        inst.open_shutter()


def test_open_shutter_refuses_disconnected_head():
    with expected_protocol(NewportLSS7120, [("STATUS?", "4")]) as inst:
        with pytest.raises(InstrumentError, match="head disconnected"):
            inst.open_shutter()


def test_open_shutter_raises_when_output_stays_off():
    with expected_protocol(NewportLSS7120, [
        ("STATUS?", "8"), ("OUTP ON", None), ACK, NO_ERROR, ("OUTP?", "OFF"),
    ]) as inst:
        with pytest.raises(InstrumentError, match="did not switch on"):
            inst.open_shutter()


def test_close_shutter():
    with expected_protocol(NewportLSS7120, [("OUTP OFF", None), ACK, NO_ERROR]) as inst:
        inst.close_shutter()


def test_read_irradiance_is_calibrated_set_point():
    with expected_protocol(NewportLSS7120, [("OUTP?", "ON"), ("AMPL?", "0.800")]) as inst:
        assert inst.read_irradiance_mW_cm2() == pytest.approx(80.0)


def test_read_irradiance_zero_when_off():
    with expected_protocol(NewportLSS7120, [("OUTP?", "OFF")]) as inst:
        assert inst.read_irradiance_mW_cm2() == 0.0


def test_settings_snapshot():
    with expected_protocol(NewportLSS7120, [
        ("STATUS?", "1"), ("AMPL?", "1.000"), ("OUTP?", "ON"), ("USERCAL:SELECT?", "0"),
        ("SPECTRUM:ACTIVE?", "0"),
    ]) as inst:
        assert inst.settings_snapshot() == {
            "amplitude_suns": 1.0, "output_on": True, "calibration_mode": "factory", "active_spectrum": 0,
            "warming_up": False, "over_temperature": False}


def test_safe_state_switches_output_off():
    with expected_protocol(NewportLSS7120, [("OUTP OFF", None), ACK, NO_ERROR]) as inst:
        inst.safe_state()


def test_safe_state_reports_failure():
    with expected_protocol(NewportLSS7120, [
        ("OUTP OFF", None), ACK, ("ERROR?", '-200,"Execution error"'), NO_ERROR,
    ]) as inst:
        with pytest.raises(InstrumentError, match="could not reach safe state: output off"):
            inst.safe_state()
