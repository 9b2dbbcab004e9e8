"""The SCPI engine every SCPI mock is declared on: grammar, parameters, error queue, status registers."""

from __future__ import annotations

import pytest

from mock_instruments.base import MockConnection
from mock_instruments.scpi import (
    Bool,
    ChannelList,
    Choice,
    Num,
    Opt,
    Rest,
    ScpiError,
    ScpiInstrument,
    Setting,
    Str,
    scpi,
)
from mock_instruments.world import World


class MockSupply(ScpiInstrument):
    """A two-output supply declared the way the module docstring tells driver engineers to."""

    model = "acme_psu"
    idn = "ACME,PSU-2,0001,1.0"

    level_V = Setting("SOURce#2:VOLTage[:LEVel][:IMMediate][:AMPLitude]", Num(-20, 20, units="V"), 0.0)
    frequency_Hz = Setting("SOURce#2:FREQuency", Num(1, 1e6, units="HZ"), 1e3)
    output_on = Setting("OUTPut#[:STATe]", Bool(), False, on_change="_output_changed")
    function = Setting("SOURce#2:FUNCtion[:MODE]", Choice("VOLTage", "CURRent"), "VOLTage")
    label = Setting("SYSTem:LABel", Str(), "none")

    def __init__(self, world: World, name: str) -> None:
        super().__init__(world, name)
        self.changes: list[bool] = []
        self.lists: list[list[float]] = []
        self.routes: list[list[str]] = []

    def _output_changed(self, on: bool) -> None:
        self.changes.append(on)

    @scpi("SOURce#2:LIST:VOLTage", Rest(Num(-20, 20, units="V")))
    def _list(self, levels: list[float]) -> None:
        self.lists.append(levels)

    @scpi("MEASure:CURRent[:DC]?", Opt(Choice("FAST", "SLOW"), "FAST"))
    def _measure(self, speed: str) -> float:
        return -1.5e-3 if speed == "FAST" else -1.25e-3

    @scpi("ROUTe:CLOSe", ChannelList())
    def _close(self, channels: list[str]) -> None:
        self.routes.append(channels)

    @scpi("SOURce#2:CHANnel?")
    def _channel(self) -> int:
        return self.call.suffix

    @scpi("SYSTem:LOCK")
    def _lock(self) -> None:
        raise ScpiError(-221, "front panel in use")


@pytest.fixture
def psu() -> MockSupply:
    return MockSupply(World(seed=0), "psu")


@pytest.fixture
def conn(psu: MockSupply) -> MockConnection:
    return psu.connect()


def ask(conn: MockConnection, message: str) -> str:
    conn.write(message)
    return conn.read()


def error(conn: MockConnection) -> int:
    return int(ask(conn, "SYST:ERR?").split(",")[0])


def test_long_short_case_optional_nodes_and_root_colon(conn: MockConnection) -> None:
    for command in ("SOURce:VOLTage:LEVel:IMMediate:AMPLitude 1.5", ":sour:volt 1.5", "sour1:VOLT:lev 1.5",
                    "Source:Voltage:Level 1.5"):
        conn.write("SOUR:VOLT 0")
        conn.write(command)
        assert float(ask(conn, "SOUR:VOLT?")) == 1.5, command
    assert error(conn) == 0


def test_chained_commands_are_relative_to_the_previous_path(psu: MockSupply, conn: MockConnection) -> None:
    reply = ask(conn, "SOUR:VOLT 2;FREQ 50;FUNC CURR;:OUTP ON;:SOUR:VOLT?;FREQ?")
    assert reply == "2.000000E+00;5.000000E+01"
    assert psu.function == "CURRent" and psu.output_on
    # relative to SOUR: "OUTP" is SOUR:OUTP, which does not exist
    conn.write("SOUR:VOLT 1;OUTP OFF")
    assert error(conn) == -113
    assert psu.output_on
    # common commands do not change the path
    assert ask(conn, "SOUR:VOLT 3;*IDN?;FREQ?") == "ACME,PSU-2,0001,1.0;5.000000E+01"


def test_numeric_suffixes_and_header_suffix_out_of_range(psu: MockSupply, conn: MockConnection) -> None:
    assert ask(conn, "SOUR2:CHAN?") == "2"
    assert ask(conn, "SOUR:CHAN?") == "1"
    conn.write("SOUR3:VOLT 1")
    assert error(conn) == -114
    conn.write("OUTP2 ON")  # OUTPut# takes only suffix 1
    assert error(conn) == -114
    assert not psu.output_on


def test_numeric_parameters_min_max_def_and_si_suffixes(psu: MockSupply, conn: MockConnection) -> None:
    conn.write("SOUR:VOLT 250 mV")
    assert psu.level_V == pytest.approx(0.25)
    conn.write("SOUR:FREQ 10KHZ")
    assert psu.frequency_Hz == pytest.approx(1e4)
    conn.write("SOUR:FREQ 1MHZ")  # MHZ is mega
    assert psu.frequency_Hz == pytest.approx(1e6)
    conn.write("SOUR:VOLT MAX")
    assert psu.level_V == 20
    assert float(ask(conn, "SOUR:VOLT? MIN")) == -20
    conn.write("SOUR:VOLT DEF")
    assert psu.level_V == 0.0
    conn.write("SOUR:VOLT 1.5E+1")
    assert psu.level_V == 15.0
    assert error(conn) == 0


def test_booleans_choices_strings_lists_and_channel_lists(psu: MockSupply, conn: MockConnection) -> None:
    for text, expected in (("ON", True), ("0", False), ("1", True), ("OFF", False)):
        conn.write(f"OUTP {text}")
        assert psu.output_on is expected
    assert psu.changes == [True, False, True, False]
    assert ask(conn, "OUTP?") == "0"
    conn.write("SOUR:FUNC current")
    assert ask(conn, "SOUR:FUNC?") == "CURR"
    conn.write('SYST:LAB "cell A, pixel 3"')
    assert ask(conn, "SYST:LAB?") == '"cell A, pixel 3"'
    conn.write("SOUR:LIST:VOLT 0, 0.5,1")
    assert psu.lists == [[0.0, 0.5, 1.0]]
    conn.write("ROUT:CLOS (@1,3:5,2!1)")
    assert psu.routes == [["1", "3", "4", "5", "2!1"]]
    assert ask(conn, "MEAS:CURR? SLOW") == "-1.250000E-03"
    assert error(conn) == 0


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("SOUR:VOLX 1", -113),  # undefined header
        ("SOUR:VOLT:LEV:IMM:AMPL:FOO 1", -113),
        ("SOUR:VOLT", -109),  # missing parameter
        ("OUTP ON,OFF", -108),  # parameter not allowed
        ("*IDN? 1", -108),
        ("SOUR:VOLT ABC", -104),  # data type error
        ('OUTP "ON"', -104),
        ("SOUR:VOLT 30", -222),  # data out of range
        ("SOUR:FUNC RESistance", -224),  # illegal parameter value
        ("OUTP MAYBE", -224),
        ("SYST:LOCK", -221),  # settings conflict raised by a handler
        ("SOUR:VOLT 1 XYZ", -131),  # invalid suffix
        ("SOUR:VOLT=1", -101),  # invalid character
        ("SOUR::VOLT 1", -102),  # syntax error
        ('SYST:LAB "unterminated', -102),
        ("SOUR:VOLT 1,,2", -102),
    ],
)
def test_malformed_input_queues_the_real_scpi_error(conn: MockConnection, message: str, code: int) -> None:
    conn.write(message)
    assert error(conn) == code
    assert error(conn) == 0


def test_error_queue_texts_fifo_and_no_reply_to_a_failed_query(conn: MockConnection) -> None:
    conn.write("FOO?")
    conn.write("SOUR:VOLT 99")
    assert ask(conn, "SYST:ERR?") == '-113,"Undefined header;FOO?"'
    assert ask(conn, "SYSTem:ERRor:NEXT?").startswith('-222,"Data out of range')
    assert ask(conn, "SYST:ERR?") == '0,"No error"'
    conn.write("SOUR:VOLX?")
    with pytest.raises(TimeoutError):
        conn.read()  # an erroring query sends nothing


def test_a_command_error_discards_the_rest_of_the_message(psu: MockSupply, conn: MockConnection) -> None:
    conn.write("SOUR:VOLT 1;BOGUS 2;:OUTP ON")
    assert psu.level_V == 1 and not psu.output_on
    assert error(conn) == -113
    conn.write("SOUR:VOLT 50;:OUTP ON")  # an execution error does not
    assert psu.output_on


def test_queue_overflow_interrupted_and_unterminated(psu: MockSupply, conn: MockConnection) -> None:
    for _ in range(psu.error_queue_size + 3):
        conn.write("BOGUS")
    assert ask(conn, "SYST:ERR:COUN?") == str(psu.error_queue_size)
    codes = [error(conn) for _ in range(psu.error_queue_size)]
    assert codes[-1] == -350 and set(codes[:-1]) == {-113}
    conn.write("*IDN?")
    conn.write("SOUR:VOLT 1")  # the unread reply is discarded
    assert error(conn) == -410
    with pytest.raises(TimeoutError):
        conn.read()  # nothing was asked
    assert error(conn) == -420


def test_status_registers_and_common_commands(psu: MockSupply, conn: MockConnection) -> None:
    conn.write("*ESE 60;*SRE 32")
    conn.write("BOGUS")  # command error: ESR bit 5
    conn.write("SOUR:VOLT 99")  # execution error: ESR bit 4
    stb = int(ask(conn, "*STB?"))
    assert stb & 4 and stb & 32 and stb & 64  # error queue, ESB summary, MSS
    assert int(ask(conn, "*ESR?")) == 32 | 16
    assert int(ask(conn, "*ESR?")) == 0  # reading clears it
    conn.write("*CLS")
    assert error(conn) == 0
    assert ask(conn, "*OPC?") == "1"
    conn.write("*OPC")
    assert int(ask(conn, "*ESR?")) & 1
    assert ask(conn, "*ESE?;*SRE?") == "60;32"
    conn.write("SOUR:VOLT 5;:OUTP ON;*RST")
    assert psu.level_V == 0.0 and psu.output_on is False
    assert ask(conn, "*TST?") == "0"


def test_a_repeated_header_is_resolved_once(psu: MockSupply, conn: MockConnection) -> None:
    conn.write("SOUR:VOLT 1")
    cached = len(type(psu)._resolved)
    for _ in range(50):
        conn.write("SOUR:VOLT 1")
    assert len(type(psu)._resolved) == cached
