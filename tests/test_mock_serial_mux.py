"""The serial relay multiplexer mock against its specification (the ``drivers.serial_mux`` docstring), and
the real driver on it, in-process and over pyserial's ``socket://`` URL."""

from __future__ import annotations

import pytest
from instrument_helpers import AREA_CM2, RawBench, check_permanent_drop, pixel_world, sim_driver

from drivers.serial_mux import SerialMux
from labctl.errors import InstrumentError
from labctl.roles import Switch
from mock_instruments.registry import mock_class
from mock_instruments.serial_mux import MockSerialMux
from mock_instruments.server import serve

JSC_A = {1: 25.0e-3 * AREA_CM2, 2: 20.8e-3 * AREA_CM2}  # fapbi3 and fapbibr_25 at 1 sun
ADDRESS = "sim://serial_mux/mux"


class Bench(RawBench):
    """Lines to the board: every line is answered (``ask``)."""

    def __init__(self, **options: object) -> None:
        self.world = pixel_world(6, "mux", ["fapbi3", "fapbibr_25"])
        self.mock = MockSerialMux(self.world, "mux", timeout_s=0.5, **options)
        self.conn = self.mock.connect()

    def routed(self) -> object:
        return self.world.switches["mux"].selected

    def driver(self) -> SerialMux:
        return sim_driver(SerialMux, self.mock, ADDRESS, self.world.clock)


# ------------------------------------------------------------------------------------ protocol
def test_the_specified_commands(bench: Bench) -> None:
    assert bench.ask("*IDN?").startswith("labctl,serial-mux,SN")
    assert len(bench.ask("*IDN?").split(",")) == 4
    assert bench.ask("CHAN?") == "16"
    assert bench.ask("SEL?") == "0" and bench.routed() is None
    assert bench.ask("SEL 1") == "OK"
    assert bench.ask("SEL?") == "1"
    assert bench.photocurrent_A() == pytest.approx(JSC_A[1], rel=0.03)
    assert bench.ask("  sel   2\r") == "OK"  # case-insensitive, spaces and CR ignored
    assert bench.photocurrent_A() == pytest.approx(JSC_A[2], rel=0.03)
    assert bench.ask("SEL 16") == "OK" and bench.routed() is None  # no device on channel 16 in this world
    assert bench.ask("open") == "OK"
    assert bench.ask("SEL?") == "0" and bench.photocurrent_A() == 0.0
    assert mock_class("serial_mux") is MockSerialMux


@pytest.mark.parametrize(("line", "reply"), [
    ("FOO", "ERR 1 unknown command"), ("SELECT 1", "ERR 1 unknown command"),
    ("SEL", "ERR 2 bad argument"), ("SEL x", "ERR 2 bad argument"), ("SEL -1", "ERR 2 bad argument"),
    ("SEL 1 2", "ERR 2 bad argument"), ("SEL 1.0", "ERR 2 bad argument"), ("OPEN 1", "ERR 2 bad argument"),
    ("CHAN? 3", "ERR 2 bad argument"), ("SEL 0", "ERR 3 channel out of range"),
    ("SEL 17", "ERR 3 channel out of range"), ("SEL " + "0" * 28 + "1", "ERR 4 line too long"),
    (" " * 33, "ERR 4 line too long"),
])
def test_errors_change_no_relay(bench: Bench, line: str, reply: str) -> None:
    assert bench.ask("SEL 2") == "OK"
    assert bench.ask(line) == reply
    assert bench.ask("SEL?") == "2" and bench.routed() == 2


def test_empty_lines_get_no_reply_and_32_characters_are_fine(bench: Bench) -> None:
    bench.conn.write("")
    bench.conn.write("\r")
    with pytest.raises(TimeoutError):
        bench.conn.read()
    assert bench.ask("SEL " + "0" * 27 + "1") == "OK"  # exactly 32 characters
    assert bench.ask("SEL?") == "1"


def test_hardware_fault_opens_every_relay(bench: Bench) -> None:
    bench.ask("SEL 1")
    bench.mock.relay_fault = True
    assert bench.ask("SEL 2") == "ERR 5 relay driver fault"
    assert bench.ask("SEL?") == "0" and bench.routed() is None
    assert bench.ask("OPEN") == "ERR 5 relay driver fault"
    bench.mock.relay_fault = False
    assert bench.ask("SEL 2") == "OK" and bench.routed() == 2


def test_time_is_charged_for_bytes_and_relay_waits(bench: Bench) -> None:
    clock = bench.world.clock
    start = clock.now()
    bench.ask("SEL?")
    assert clock.now() - start == pytest.approx((5 + 2) * 10 / 9600, abs=1e-6)
    start = clock.now()
    bench.ask("SEL 3")
    assert clock.now() - start == pytest.approx((6 + 3) * 10 / 9600 + 0.010, abs=1e-6)
    start = clock.now()
    bench.ask("SEL 3")  # already selected: the relays are left alone
    assert clock.now() - start == pytest.approx((6 + 3) * 10 / 9600, abs=1e-6)


def test_a_board_that_resets_when_its_port_opens() -> None:
    bench = Bench(reset_on_connect=True, channel_count=4)
    assert bench.ask("CHAN?") == "4"
    bench.ask("SEL 2")
    bench.mock.connect()
    assert bench.ask("SEL?") == "0" and bench.routed() is None


# ------------------------------------------------------------------------------------ the driver
def test_driver_role_methods_route_the_world(bench: Bench) -> None:
    mux = bench.driver()
    assert isinstance(mux, Switch)
    assert mux.identify().startswith("labctl,serial-mux,")
    assert mux.refresh_channel_count() == 16
    mux.select_channel(1)
    one = bench.photocurrent_A()
    mux.select_channel(2)
    two = bench.photocurrent_A()
    assert one == pytest.approx(JSC_A[1], rel=0.03) and two == pytest.approx(JSC_A[2], rel=0.03)
    assert mux.selected_channel == 2
    assert mux.settings_snapshot() == {"channel_count": 16, "selected_channel": 2}
    mux.open_all()
    assert bench.photocurrent_A() == 0.0
    mux.select_channel(1)
    mux.safe_state()
    assert bench.routed() is None and mux.selected is None
    bench.mock.relay_fault = True
    with pytest.raises(InstrumentError, match="error 5"):
        mux.select_channel(2)


def test_driver_recovers_from_timeouts_and_a_reset_on_reconnect() -> None:
    bench = Bench(reset_on_connect=True)
    mux = bench.driver()
    mux.select_channel(2)
    bench.mock.set_faults(timeout=2)
    assert mux.selected_channel == 2  # the marker timed out too: the port reopened, the board reset, and
    assert mux.retry_count >= 1  # the driver re-selected before asking again
    bench.mock.set_faults(drop=1)
    assert mux.selected_channel == 2  # the board reset when the port reopened; the driver re-selected
    assert mux.reconnect_count >= 2 and bench.routed() == 2
    check_permanent_drop(bench.mock, lambda: mux.select_channel(1), "mux", ADDRESS)


@pytest.mark.slow
def test_driver_over_a_pyserial_socket_url(bench: Bench) -> None:
    with serve({"mux": bench.mock}, port_base=0) as server:
        port = int(server.endpoints[0][2].split("::")[2])
        mux = SerialMux.open(f"socket://127.0.0.1:{port}", "mux", clock=bench.world.clock)
        assert mux.identify().startswith("labctl,serial-mux,")
        mux.select_channel(1)
        assert bench.photocurrent_A() == pytest.approx(JSC_A[1], rel=0.03)
        mux.select_channel(2)
        assert bench.photocurrent_A() == pytest.approx(JSC_A[2], rel=0.03)
        with pytest.raises(InstrumentError, match="error 1 unknown command"):
            mux.ask("FOO")
        mux.safe_state()
        assert bench.photocurrent_A() == 0.0
        mux.adapter.close()
