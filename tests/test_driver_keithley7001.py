"""Protocol tests for the Keithley 7001 switch system driver.

Exchanges follow the Model 7001 Operator's Manual, SCPI command reference, ROUTe subsystem
(:CLOSe <list>, :CLOSe:STATe?, :CLOSe? <list>, :OPEN <list>|ALL, :CONFigure:SLOTn:CTYPe?) with
channel lists in ``(@slot!channel)`` notation, and the SYSTem:ERRor? queue.
"""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.keithley7001 import Keithley7001, parse_channel_list
from labctl.errors import InstrumentError, ParameterError
from labctl.roles import Switch

NO_ERROR = ("SYST:ERR?", '0,"No error"')


def test_is_a_switch():
    with expected_protocol(Keithley7001, []) as inst:
        assert isinstance(inst, Switch)
        assert inst.name == "Keithley 7001"


def test_constructor_keywords():
    with expected_protocol(Keithley7001, [], address="GPIB0::7::INSTR", cards=("7011", "7013")) as inst:
        assert inst.address == "GPIB0::7::INSTR"
        assert inst.channel_count == 60


def test_default_channel_count_is_one_7011():
    assert Keithley7001.channel_count == 40


def test_unknown_card_is_rejected():
    with pytest.raises(ParameterError, match="unknown switch card"):
        with expected_protocol(Keithley7001, [], cards=("7999",)):
            pass


def test_identify():
    with expected_protocol(Keithley7001, [("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 7001,0,B02")]) as inst:
        assert inst.identify() == "KEITHLEY INSTRUMENTS INC.,MODEL 7001,0,B02"


def test_select_channel_opens_all_closes_one_and_verifies():
    with expected_protocol(Keithley7001, [
        (":ROUT:OPEN ALL", None), (":ROUT:CLOS (@1!3)", None), NO_ERROR, (":ROUT:CLOS:STAT?", "(@1!3)"),
    ]) as inst:
        inst.select_channel(3)
        assert inst.selected == 3


def test_select_channel_on_second_card():
    with expected_protocol(Keithley7001, [
        (":ROUT:OPEN ALL", None), (":ROUT:CLOS (@2!2)", None), NO_ERROR, (":ROUT:CLOS:STAT?", "(@2!2)"),
    ], cards=("7011", "7011")) as inst:
        inst.select_channel(42)


def test_select_channel_out_of_range_sends_nothing():
    with expected_protocol(Keithley7001, []) as inst:
        with pytest.raises(ParameterError, match=r"1\.\.40"):
            inst.select_channel(41)


def test_select_channel_error_queue_raises():
    with expected_protocol(Keithley7001, [
        (":ROUT:OPEN ALL", None), (":ROUT:CLOS (@1!3)", None),
        ("SYST:ERR?", '-221,"Settings conflict"'), NO_ERROR,
    ]) as inst:
        with pytest.raises(InstrumentError, match="-221, Settings conflict"):
            inst.select_channel(3)
        assert inst.selected is None


def test_select_channel_verification_failure():
    with expected_protocol(Keithley7001, [
        (":ROUT:OPEN ALL", None), (":ROUT:CLOS (@1!3)", None), NO_ERROR, (":ROUT:CLOS:STAT?", "(@)"),
    ]) as inst:
        with pytest.raises(InstrumentError, match="closed channels are"):
            inst.select_channel(3)


def test_open_all():
    with expected_protocol(Keithley7001, [(":ROUT:OPEN ALL", None), NO_ERROR]) as inst:
        inst.open_all()


def test_close_channel():
    with expected_protocol(Keithley7001, [(":ROUT:CLOS (@1!12)", None), NO_ERROR]) as inst:
        inst.close_channel(12)


def test_open_channel():
    with expected_protocol(Keithley7001, [(":ROUT:OPEN (@1!12)", None), NO_ERROR]) as inst:
        inst.open_channel(12)


@pytest.mark.parametrize("reply, state", [("1", True), ("0", False)])
def test_is_closed(reply, state):
    with expected_protocol(Keithley7001, [(":ROUT:CLOS? (@1!5)", reply)]) as inst:
        assert inst.is_closed(5) is state


def test_closed_channels_readback():
    with expected_protocol(Keithley7001, [(":ROUT:CLOS:STAT?", "(@1!1,1!3:1!4,2!10)")]) as inst:
        assert inst.closed_channels() == ["1!1", "1!3", "1!4", "2!10"]


def test_closed_channels_unreadable_raises():
    with expected_protocol(Keithley7001, [(":ROUT:CLOS:STAT?", "1!1")]) as inst:
        with pytest.raises(InstrumentError, match="not a channel list"):
            inst.closed_channels()


def test_detect_cards():
    with expected_protocol(Keithley7001, [
        (":ROUT:CONF:SLOT1:CTYP?", "C7011"), (":ROUT:CONF:SLOT2:CTYP?", "NONE"),
    ], cards=()) as inst:
        assert inst.detect_cards() == ("7011",)
        assert inst.channel_count == 40


def test_detect_cards_two_slots():
    with expected_protocol(Keithley7001, [
        (":ROUT:CONF:SLOT1:CTYP?", "C7011"), (":ROUT:CONF:SLOT2:CTYP?", "C7013"),
    ]) as inst:
        assert inst.detect_cards() == ("7011", "7013")
        assert inst.channel_count == 60


def test_settings_snapshot():
    with expected_protocol(Keithley7001, [(":ROUT:CLOS:STAT?", "(@1!7)")]) as inst:
        assert inst.settings_snapshot() == {"cards": "7011", "channel_count": 40, "closed_channels": "1!7"}


def test_safe_state_opens_all():
    with expected_protocol(Keithley7001, [(":ROUT:OPEN ALL", None), NO_ERROR]) as inst:
        inst.safe_state()


def test_safe_state_reports_failure():
    with expected_protocol(Keithley7001, [
        (":ROUT:OPEN ALL", None), ("SYST:ERR?", '-350,"Queue overflow"'), NO_ERROR,
    ]) as inst:
        with pytest.raises(InstrumentError, match="could not reach safe state: open all relays"):
            inst.safe_state()


def test_reconnect_restores_selected_channel():
    with expected_protocol(Keithley7001, [(":ROUT:OPEN ALL", None), (":ROUT:CLOS (@1!9)", None)]) as inst:
        inst.selected = 9
        inst.reapply_configuration()


def test_parse_empty_channel_list():
    assert parse_channel_list("(@)") == []
