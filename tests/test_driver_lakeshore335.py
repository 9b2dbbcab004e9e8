"""Protocol tests for the Lake Shore 335 driver: where the Model 335 User's Manual (chapter 6) differs from the
336 — two inputs (A, B), two heater outputs, output 2's voltage mode (range off/on only), HTRSET with an
output-type field, *IDN? naming MODEL335, 331/332 emulation (EMUL?)."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.lakeshore335 import LakeShore335
from drivers.registry import driver_class
from labctl.errors import InstrumentError, ParameterError
from labctl.roles import TemperatureController


def test_is_a_temperature_controller_registered_as_lakeshore335():
    with expected_protocol(LakeShore335, []) as inst:
        assert isinstance(inst, TemperatureController)
        assert inst.name == "Lake Shore 335"
    assert driver_class("lakeshore335") is LakeShore335


def test_identify_checks_the_model_and_that_it_does_not_emulate_a_331():
    with expected_protocol(LakeShore335, [("*IDN?", "LSCI,MODEL335,1234567/1234567,1.0"), ("EMUL?", "0")]) as inst:
        assert inst.identify() == "LSCI,MODEL335,1234567/1234567,1.0"


def test_identify_refuses_a_336_at_the_address():
    with expected_protocol(LakeShore335, [("*IDN?", "LSCI,MODEL336,LSA12AB/#######,2.9")]) as inst:
        with pytest.raises(InstrumentError, match="not a Lake Shore 335"):
            inst.identify()


def test_identify_refuses_a_controller_in_331_emulation():
    with expected_protocol(LakeShore335, [("*IDN?", "LSCI,MODEL335,1234567/1234567,1.0"), ("EMUL?", "1")]) as inst:
        with pytest.raises(InstrumentError, match="emulation"):
            inst.identify()


def test_inputs_c_and_d_do_not_exist():
    with pytest.raises(ParameterError, match="A, B"):
        LakeShore335("unused", input_channel="C")
    with expected_protocol(LakeShore335, []) as inst:
        assert not hasattr(inst, "input_C") or inst.input_C is None
        assert not hasattr(inst, "output_3") or inst.output_3 is None


def test_control_input_codes_are_a_and_b():
    with expected_protocol(LakeShore335, [("OUTMODE 1,1,2,0", None), ("OUTMODE? 1", "1,2,0")]) as inst:
        inst.configure_control_loop("closed_loop", "B")


def test_control_loop_with_an_input_code_beyond_b_is_unreadable():
    with expected_protocol(LakeShore335, [("OUTMODE? 1", "1,3,0")]) as inst:
        with pytest.raises(InstrumentError, match="unknown output mode"):
            inst.control_loop()


def test_setpoint_in_celsius_on_input_b():
    with expected_protocol(LakeShore335, [("OUTMODE? 2", "1,2,0"), ("INTYPE? B", "2,1,0,0,2"),
                                          ("SETP 2,26.8500", None)], output=2) as inst:
        inst.set_setpoint_K(300.0)


def test_output_2_in_voltage_mode_has_only_off_and_on():
    with expected_protocol(LakeShore335, [("HTRSET? 2", "1,1,2,+0.000,1")], output=2) as inst:
        with pytest.raises(ParameterError, match="voltage mode"):
            inst.set_heater_range("high")


def test_output_2_in_voltage_mode_is_switched_on_with_low():
    with expected_protocol(LakeShore335, [("OUTMODE? 2", "1,2,0"), ("RANGE 2,1", None), ("RANGE? 2", "1")],
                           output=2) as inst:
        inst.set_heater_range("low")


def test_output_2_in_current_mode_takes_every_range():
    with expected_protocol(LakeShore335, [("HTRSET? 2", "0,1,2,+0.000,1"), ("OUTMODE? 2", "1,2,0"),
                                          ("RANGE 2,3", None), ("RANGE? 2", "3")], output=2) as inst:
        inst.set_heater_range("high")


def test_output_type_reads_the_first_htrset_field():
    with expected_protocol(LakeShore335, [("HTRSET? 1", "0,2,1,+0.000,2")]) as inst:
        assert inst.output_type() == "current"


def test_safe_state_turns_both_outputs_off():
    with expected_protocol(LakeShore335, [("RANGE 1,0", None), ("RANGE? 1", "0"), ("RANGE 2,0", None),
                                          ("RANGE? 2", "0")]) as inst:
        inst.safe_state()
