"""The Keithley 7001 mock: raw SCPI from the 7001 manual's ROUTe subsystem, and the real driver on it.

Commands as the manual writes them (``:ROUTe:CLOSe (@1!3)``, ``:CLOSe:STATe?``, ``:OPEN ALL``,
``:ROUTe:CONFigure:SLOT1:CTYPe?``) and as public client code sends them (``:CLOSE (@1!2)``, ``:open all``
without the optional ROUTe root); a 7012 matrix card in ``slot!row!column`` notation.
"""

from __future__ import annotations

import pytest
from instrument_helpers import AREA_CM2, RawBench, check_permanent_drop, driver_over_tcp, pixel_world, sim_driver

from drivers.keithley7001 import Keithley7001
from drivers.transport import SimAdapter
from labctl.errors import InstrumentError, ParameterError
from labctl.roles import Switch
from mock_instruments.keithley7001 import MockKeithley7001
from mock_instruments.registry import mock_class

JSC_A = {1: 17.26e-3 * AREA_CM2, 2: 25.0e-3 * AREA_CM2}  # pixel 1 wbg_ref, pixel 2 fapbi3, at 1 sun
ADDRESS = "sim://keithley7001/matrix"


class Bench(RawBench):
    def __init__(self, **options: object) -> None:
        self.world = pixel_world(5, "matrix", ["wbg_ref", "fapbi3"])
        self.mock = MockKeithley7001(self.world, "matrix", timeout_s=1.0, **options)
        self.conn = self.mock.connect()

    def routed(self) -> object:
        return self.world.switches["matrix"].selected

    def driver(self, **options: object) -> Keithley7001:
        return sim_driver(Keithley7001, self.mock, ADDRESS, self.world.clock, **options)


# ------------------------------------------------------------------------------------ protocol
def test_close_and_open_route_different_cells(bench: Bench) -> None:
    assert bench.ask("*IDN?").startswith("KEITHLEY INSTRUMENTS INC.,MODEL 7001,")
    assert bench.ask(":ROUTe:CLOSe:STATe?") == "(@)" and bench.photocurrent_A() == 0.0
    bench.write(":ROUTe:CLOSe (@1!1)")
    assert bench.routed() == 1
    assert bench.photocurrent_A() == pytest.approx(JSC_A[1], rel=0.03)
    assert bench.ask(":ROUT:CLOS:STAT?") == "(@1!1)"
    assert bench.ask(":ROUT:CLOS? (@1!1,1!2)") == "1,0"
    assert bench.ask(":ROUT:OPEN? (@1!1,1!2)") == "0,1"
    bench.write(":ROUT:OPEN ALL", ":CLOSE (@1!2)")  # ROUTe is optional
    assert bench.photocurrent_A() == pytest.approx(JSC_A[2], rel=0.03)
    bench.write(":open all")
    assert bench.routed() is None and bench.photocurrent_A() == 0.0
    assert bench.errors() == []


def test_several_closed_channels_route_the_lowest_and_are_all_recorded(bench: Bench) -> None:
    bench.write(":CLOS (@1!2,1!1)")
    assert bench.ask(":CLOS:STAT?") == "(@1!1,1!2)"
    assert bench.routed() == 1
    bench.write(":OPEN (@1!1)")
    assert bench.routed() == 2
    bench.write(":CLOS (@1!3:1!5)")
    assert bench.ask(":CLOS:STAT?") == "(@1!2,1!3,1!4,1!5)"
    bench.write(":OPEN (@1!2)")  # pixel 3 is the lowest now and leads to no device in the world
    assert bench.routed() is None and bench.photocurrent_A() == 0.0
    bench.write("*RST")
    assert bench.ask(":CLOS:STAT?") == "(@)"
    bench.write(":CLOS (@1!2)", ":SYST:PRES")
    assert bench.ask(":CLOS:STAT?") == "(@)"


@pytest.mark.parametrize(("command", "code"), [
    (":ROUT:CLOS (@1!41)", -222), (":ROUT:CLOS (@2!1)", -222), (":ROUT:CLOS (@3!1)", -222),
    (":ROUT:CLOS (@5)", -224), (":ROUT:CLOS 1!5", -224), (":ROUT:CLOS", -109), (":ROUT:OPEN", -109),
    (":ROUT:CLOS (@1!2,1!99)", -222), (":ROUT:SCAN (@1!1)", -113), (":ROUT:CONF:SLOT3:CTYP?", -114),
    (":ROUT:CONF:SLOT1:CTYP C7999", -224), (":ROUT:CONF:SLOT1:STIM -1", -222),
])
def test_bad_commands_change_nothing_and_queue_errors(bench: Bench, command: str, code: int) -> None:
    bench.write(":CLOS (@1!1)", command)
    assert bench.errors() == [code]
    assert bench.ask(":CLOS:STAT?") == "(@1!1)" and bench.routed() == 1


def test_card_types_and_pixels_on_the_second_slot() -> None:
    bench = Bench(cards=("7011", "7013"))
    assert bench.ask(":ROUT:CONF:SLOT1:CTYP?") == "C7011"
    assert bench.ask(":ROUT:CONF:SLOT2:CTYP?") == "C7013"
    assert bench.mock.pixel((2, 3)) == 43
    bench.write(":CLOS (@2!20)")
    assert bench.errors() == [] and bench.routed() is None  # pixel 60: no device on it in this world
    bench.write(":CLOS (@2!21)")
    assert bench.errors() == [-222]
    bench.write(":ROUT:CONF:SLOT2:CTYP NONE")
    assert bench.ask(":CLOS:STAT?") == "(@)" and bench.ask(":ROUT:CONF:SLOT2:CTYP?") == "NONE"
    assert mock_class("keithley7001") is MockKeithley7001


def test_relay_time_is_charged_with_the_slot_settling_time(bench: Bench) -> None:
    clock = bench.world.clock
    start = clock.now()
    bench.write(":CLOS (@1!1)")
    assert clock.now() - start == pytest.approx(3e-3, abs=1e-6)
    bench.write(":ROUT:CONF:SLOT1:STIM 0.1")
    assert float(bench.ask(":ROUT:CONF:SLOT1:STIM?")) == pytest.approx(0.1)
    start = clock.now()
    bench.write(":OPEN ALL;:CLOS (@1!2)")  # open phase and close phase
    assert clock.now() - start == pytest.approx(2 * 0.103, abs=1e-6)
    start = clock.now()
    bench.write(":CLOS (@1!2)")  # already closed: no relay moves
    assert clock.now() - start == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------------------------ the driver
def test_driver_role_methods_route_the_world(bench: Bench) -> None:
    switch = bench.driver()
    assert isinstance(switch, Switch)
    assert switch.identify().startswith("KEITHLEY INSTRUMENTS INC.,MODEL 7001")
    assert switch.detect_cards() == ("7011",) and switch.channel_count == 40
    switch.select_channel(1)
    one = bench.photocurrent_A()
    switch.select_channel(2)
    two = bench.photocurrent_A()
    assert one == pytest.approx(JSC_A[1], rel=0.03) and two == pytest.approx(JSC_A[2], rel=0.03)
    assert switch.closed_channels() == ["1!2"] and switch.is_closed(2) and not switch.is_closed(1)
    switch.close_channel(1)
    assert switch.closed_channels() == ["1!1", "1!2"] and bench.routed() == 1
    switch.open_channel(1)
    assert bench.routed() == 2
    assert switch.settings_snapshot() == {"cards": "7011", "channel_count": 40, "matrix_row": 1,
                                          "closed_channels": "1!2"}
    switch.open_all()
    assert bench.photocurrent_A() == 0.0
    switch.select_channel(1)
    switch.safe_state()
    assert bench.routed() is None and switch.closed_channels() == []


def test_driver_recovers_from_timeouts_and_a_dropped_connection(bench: Bench) -> None:
    switch = bench.driver()
    switch.select_channel(2)
    bench.mock.set_faults(timeout=2)
    assert switch.closed_channels() == ["1!2"]
    # the query timed out, then the resynchronisation marker: the link was reopened, the query asked again
    assert switch.retry_count == 1 and switch.resync_count == 1 and switch.reconnect_count == 1
    bench.write("*RST")  # the relays open behind the driver's back (a power cycle) ...
    bench.mock.set_faults(drop=1)
    assert switch.closed_channels() == ["1!2"]  # ... and the reconnect restores the selected channel
    assert switch.reconnect_count == 2 and bench.routed() == 2
    check_permanent_drop(bench.mock, lambda: switch.select_channel(1), "matrix", ADDRESS)


def test_driver_raises_the_instruments_errors() -> None:
    bench = Bench(cards=())
    switch = Keithley7001(SimAdapter(bench.mock), "matrix", clock=bench.world.clock, cards=("7011",))
    with pytest.raises(InstrumentError, match="-222"):
        switch.select_channel(1)  # the station says a 7011 is installed; the slot is empty
    with pytest.raises(ParameterError, match=r"pixels 1\.\.0"):
        bench.driver().select_channel(1)  # asked, the 7001 reports no card: nothing to select


# ------------------------------------------------------------------------------------ the 7012 matrix
def test_matrix_card_takes_row_and_column() -> None:
    bench = Bench(cards=("7012",))
    assert bench.ask("*OPT?") == "7012,NONE" and bench.ask(":ROUT:CONF:SLOT1:CTYP?") == "C7012"
    bench.write(":CLOS (@1!1!2)")  # row 1 (the SMU) to column 2 (pixel 2)
    assert bench.routed() == 2 and bench.photocurrent_A() == pytest.approx(JSC_A[2], rel=0.03)
    bench.write(":OPEN ALL", ":CLOS (@1!2!1)")  # row 2 is not wired to the SMU in this world
    assert bench.routed() is None and bench.photocurrent_A() == 0.0
    bench.write(":CLOS (@1!1!9:1!2!2)")  # a matrix range runs row by row
    assert bench.ask(":CLOS:STAT?") == "(@1!1!9,1!1!10,1!2!1,1!2!2)"
    assert bench.ask(":CLOS? (@1!1!10,1!3!3)") == "1,0"
    assert bench.errors() == []
    for command, code in [(":CLOS (@1!2)", -224), (":CLOS (@1!5!1)", -222), (":CLOS (@1!1!11)", -222),
                          (":CLOS (@1!1!1:2!1!1)", -222), (":CLOS (@1!1!1!1)", -224)]:
        bench.write(command)
        assert bench.errors() == [code], command
    assert bench.ask(":CLOS:STAT?") == "(@1!1!9,1!1!10,1!2!1,1!2!2)"  # refused lists change nothing


def test_driver_addresses_the_matrix_by_row_and_column() -> None:
    bench = Bench(cards=("7012",))
    switch = bench.driver()  # the cards are read from the 7001, not assumed
    switch.select_channel(2)
    assert switch.cards == ("7012",) and switch.closed_channels() == ["1!1!2"]
    assert bench.photocurrent_A() == pytest.approx(JSC_A[2], rel=0.03)
    switch.select_channel(1)
    assert bench.photocurrent_A() == pytest.approx(JSC_A[1], rel=0.03)
    assert switch.pixel_map() == {n: f"1!1!{n}" for n in range(1, 11)}
    with pytest.raises(ParameterError, match=r"1\.\.10"):
        switch.select_channel(11)
    other_row = Bench(cards=("7012",), row=3)
    other_row.driver(matrix_row=3).select_channel(2)
    assert other_row.routed() == 2 and other_row.ask(":CLOS:STAT?") == "(@1!3!2)"


def test_status_registers_and_the_link_check(bench: Bench) -> None:
    assert bench.ask("*ESE 61;*ESE?") == "61"
    bench.write(":CLOS (@1!99)")
    assert bench.ask("*ESR?") == "16" and bench.ask("*STB?") == "4"  # EXE; the queue holds -222
    assert bench.errors() == [-222] and bench.ask("*STB?") == "0"


@pytest.mark.slow
def test_driver_over_tcp(bench: Bench) -> None:
    with driver_over_tcp(Keithley7001, bench.mock, bench.world.clock) as switch:
        assert switch.detect_cards() == ("7011",)
        switch.select_channel(2)
        assert bench.photocurrent_A() == pytest.approx(JSC_A[2], rel=0.03)
        switch.select_channel(1)
        assert bench.photocurrent_A() == pytest.approx(JSC_A[1], rel=0.03)
        switch.safe_state()
        assert bench.photocurrent_A() == 0.0
