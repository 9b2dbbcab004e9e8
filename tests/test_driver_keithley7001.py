"""Protocol tests for the Keithley 7001 switch system driver.

Exchanges follow the Model 7001 Operator's Manual, SCPI command reference, ROUTe subsystem
(:CLOSe <list>, :CLOSe:STATe?, :CLOSe? <list>, :OPEN <list>|ALL, :CONFigure:SLOTn:CTYPe?) with
channel lists in ``(@slot!channel)`` notation for multiplexer cards (7011) and ``(@slot!row!column)`` for
the 7012 4×10 matrix, and the SYSTem:ERRor? queue.
"""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.keithley7001 import Keithley7001, parse_channel_list
from labctl.errors import InstrumentError, ParameterError
from labctl.roles import Switch

NO_ERROR = ("SYST:ERR?", '0,"No error"')
MUX = {"cards": ("7011",)}
MATRIX = {"cards": ("7012",)}


def test_is_a_switch():
    with expected_protocol(Keithley7001, [], **MUX) as inst:
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
    with expected_protocol(Keithley7001, [("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 7001,0,B02")], **MUX) as inst:
        assert inst.identify() == "KEITHLEY INSTRUMENTS INC.,MODEL 7001,0,B02"


def test_select_channel_opens_all_closes_one_and_verifies():
    with expected_protocol(Keithley7001, [
        (":ROUT:OPEN ALL", None), (":ROUT:CLOS (@1!3)", None), NO_ERROR, (":ROUT:CLOS:STAT?", "(@1!3)"),
    ], **MUX) as inst:
        inst.select_channel(3)
        assert inst.selected == 3


def test_select_channel_on_second_card():
    with expected_protocol(Keithley7001, [
        (":ROUT:OPEN ALL", None), (":ROUT:CLOS (@2!2)", None), NO_ERROR, (":ROUT:CLOS:STAT?", "(@2!2)"),
    ], cards=("7011", "7011")) as inst:
        inst.select_channel(42)


def test_select_channel_out_of_range_sends_nothing():
    with expected_protocol(Keithley7001, [], **MUX) as inst:
        with pytest.raises(ParameterError, match=r"1\.\.40"):
            inst.select_channel(41)


def test_select_channel_error_queue_raises():
    with expected_protocol(Keithley7001, [
        (":ROUT:OPEN ALL", None), (":ROUT:CLOS (@1!3)", None),
        ("SYST:ERR?", '-221,"Settings conflict"'), NO_ERROR,
    ], **MUX) as inst:
        with pytest.raises(InstrumentError, match="-221, Settings conflict"):
            inst.select_channel(3)
        assert inst.selected is None


def test_select_channel_verification_failure():
    with expected_protocol(Keithley7001, [
        (":ROUT:OPEN ALL", None), (":ROUT:CLOS (@1!3)", None), NO_ERROR, (":ROUT:CLOS:STAT?", "(@)"),
    ], **MUX) as inst:
        with pytest.raises(InstrumentError, match="closed channels are"):
            inst.select_channel(3)


def test_open_all():
    with expected_protocol(Keithley7001, [(":ROUT:OPEN ALL", None), NO_ERROR], **MUX) as inst:
        inst.open_all()


def test_close_channel():
    with expected_protocol(Keithley7001, [(":ROUT:CLOS (@1!12)", None), NO_ERROR], **MUX) as inst:
        inst.close_channel(12)


def test_open_channel():
    with expected_protocol(Keithley7001, [(":ROUT:OPEN (@1!12)", None), NO_ERROR], **MUX) as inst:
        inst.open_channel(12)


@pytest.mark.parametrize("reply, state", [("1", True), ("0", False)])
def test_is_closed(reply, state):
    with expected_protocol(Keithley7001, [(":ROUT:CLOS? (@1!5)", reply)], **MUX) as inst:
        assert inst.is_closed(5) is state


def test_closed_channels_readback():
    with expected_protocol(Keithley7001, [(":ROUT:CLOS:STAT?", "(@1!1,1!3:1!4,2!10)")], **MUX) as inst:
        assert inst.closed_channels() == ["1!1", "1!3", "1!4", "2!10"]


def test_closed_channels_unreadable_raises():
    with expected_protocol(Keithley7001, [(":ROUT:CLOS:STAT?", "1!1")], **MUX) as inst:
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
    ], **MUX) as inst:
        assert inst.detect_cards() == ("7011", "7013")
        assert inst.channel_count == 60


def test_settings_snapshot():
    with expected_protocol(Keithley7001, [(":ROUT:CLOS:STAT?", "(@1!7)")], **MUX) as inst:
        assert inst.settings_snapshot() == {"cards": "7011", "channel_count": 40, "matrix_row": 1,
                                            "closed_channels": "1!7"}


def test_safe_state_opens_all():
    with expected_protocol(Keithley7001, [(":ROUT:OPEN ALL", None), NO_ERROR], **MUX) as inst:
        inst.safe_state()


def test_safe_state_reports_failure():
    with expected_protocol(Keithley7001, [
        (":ROUT:OPEN ALL", None), ("SYST:ERR?", '-350,"Queue overflow"'), NO_ERROR,
    ], **MUX) as inst:
        with pytest.raises(InstrumentError, match="could not reach safe state: open all relays"):
            inst.safe_state()


def test_reconnect_restores_selected_channel():
    with expected_protocol(Keithley7001, [(":ROUT:OPEN ALL", None), (":ROUT:CLOS (@1!9)", None)], **MUX) as inst:
        inst.selected = 9
        inst.reapply_configuration()


def test_parse_empty_channel_list():
    assert parse_channel_list("(@)") == []


def test_parse_matrix_channel_list():
    assert parse_channel_list("(@1!1!3,1!4!10)") == [(1, 1, 3), (1, 4, 10)]
    assert parse_channel_list("(@1!1!9:1!2!2)", {1: 10}) == [(1, 1, 9), (1, 1, 10), (1, 2, 1), (1, 2, 2)]
    with pytest.raises(ValueError, match="columns"):
        parse_channel_list("(@1!1!9:1!2!2)")


# --- the 7012 matrix: pixel n is the crosspoint (matrix_row, n) -----------------------------------------------
def test_matrix_select_closes_the_crosspoint_on_the_instrument_row():
    with expected_protocol(Keithley7001, [
        (":ROUT:OPEN ALL", None), (":ROUT:CLOS (@1!1!3)", None), NO_ERROR, (":ROUT:CLOS:STAT?", "(@1!1!3)"),
    ], **MATRIX) as inst:
        inst.select_channel(3)
        assert inst.selected == 3


def test_matrix_row_is_the_stations_wiring():
    with expected_protocol(Keithley7001, [(":ROUT:CLOS (@1!2!10)", None), NO_ERROR], matrix_row=2,
                           **MATRIX) as inst:
        inst.close_channel(10)


def test_matrix_card_has_ten_pixels():
    with expected_protocol(Keithley7001, [], **MATRIX) as inst:
        assert inst.channel_count == 10
        with pytest.raises(ParameterError, match=r"1\.\.10"):
            inst.select_channel(11)


def test_pixel_map_across_a_multiplexer_and_a_matrix():
    with expected_protocol(Keithley7001, [], cards=("7011", "7012")) as inst:
        pixels = inst.pixel_map()
    assert len(pixels) == 50
    assert (pixels[1], pixels[40], pixels[41], pixels[50]) == ("1!1", "1!40", "2!1!1", "2!1!10")


def test_cards_are_read_before_the_first_channel_is_addressed():
    with expected_protocol(Keithley7001, [
        (":ROUT:CONF:SLOT1:CTYP?", "C7012"), (":ROUT:CONF:SLOT2:CTYP?", "NONE"),
        (":ROUT:OPEN ALL", None), (":ROUT:CLOS (@1!1!2)", None), NO_ERROR, (":ROUT:CLOS:STAT?", "(@1!1!2)"),
    ]) as inst:
        inst.select_channel(2)
        assert inst.cards == ("7012",)


def test_channel_map_overrides_the_numbering():
    with expected_protocol(Keithley7001, [(":ROUT:CLOS (@1!3!1)", None), NO_ERROR],
                           channel_map={1: "1!3!1"}, **MATRIX) as inst:
        inst.close_channel(1)
        assert inst.pixel_map()[2] == "1!1!2"


@pytest.mark.parametrize(("options", "message"), [
    ({"channel_map": {1: "1!5"}, **MATRIX}, "takes slot!row!column"),
    ({"channel_map": {1: "1!1!5"}, **MUX}, "takes slot!channel"),
    ({"channel_map": {1: "1!5!1"}, **MATRIX}, "beyond the 7012"),
    ({"channel_map": {1: "2!1"}, **MUX}, "no card in slot 2"),
    ({"channel_map": {0: "1!1"}, **MUX}, "channel_map entries"),
    ({"matrix_row": 5, **MATRIX}, "matrix_row must be an integer 1..4"),
])
def test_bad_wiring_options_are_refused_before_anything_is_sent(options, message):
    with pytest.raises(ParameterError, match=message):
        with expected_protocol(Keithley7001, [], **options):
            pass
