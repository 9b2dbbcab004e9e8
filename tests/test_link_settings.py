"""Link settings: the driver's defaults, the station's overrides, checks before anything is opened, and the
transports that use them (VISA library choice, serial parameters, pacing, the WLRC socket framing)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from drivers.keithley2400 import Keithley2400
from drivers.lakeshore336 import LakeShore336
from drivers.link_settings import interface_of, resolve
from drivers.newport_lss7120 import NewportLSS7120
from drivers.transport import Pacing, open_visa
from drivers.wavelabs_sinus70 import WavelabsSinus70
from drivers.wlrc_link import WLRCSocketAdapter
from labctl.errors import StationError


@pytest.mark.parametrize(("address", "interface"), [
    ("GPIB0::24::INSTR", "gpib"), ("USB0::0x1FDE::0x000A::7120::INSTR", "usb"),
    ("TCPIP::10.0.0.2::INSTR", "tcpip"), ("TCPIP::10.0.0.2::5025::SOCKET", "socket"),
    ("ASRL/dev/ttyUSB0::INSTR", "serial"), ("/dev/ttyUSB0", "serial"), ("COM3", "serial"),
    ("socket://10.0.0.2:4001", "serial"), ("wavelabs://", "wlrc"), ("sim://lakeshore336", "sim"),
])
def test_the_interface_follows_from_the_address(address: str, interface: str) -> None:
    assert interface_of(address) == interface


def test_an_address_labctl_cannot_open_is_refused() -> None:
    with pytest.raises(StationError, match="not one labctl can open"):
        interface_of("http://10.0.0.2")


def test_the_station_overrides_the_driver_which_overrides_the_generic_defaults() -> None:
    generic = resolve(Keithley2400, "/dev/ttyUSB0")
    assert (generic["baudrate"], generic["bytesize"], generic["parity"]) == (9600, 8, "none")
    lakeshore = resolve(LakeShore336, "/dev/ttyUSB0", {"parity": "E", "timeout_ms": 800})
    assert (lakeshore["baudrate"], lakeshore["parity"], lakeshore["timeout_ms"]) == (57600, "even", 800)
    assert lakeshore.explicit == {"parity", "timeout_ms"}


@pytest.mark.parametrize(("options", "message"), [
    ({"baud": 9600}, "unknown key 'baud'"),
    ({"baudrate": 12345}, "baudrate = 12345 must be one of"),
    ({"timeout_ms": 0}, "timeout_ms = 0 must be a whole number in 1"),
    ({"timeout_ms": 1.5}, "timeout_ms = 1.5 must be a whole number"),
    ({"stopbits": 3}, "stopbits = 3 must be one of 1, 1.5, 2"),
    ({"rtscts": "yes"}, "rtscts = 'yes' must be true or false"),
    ({"visa_library": "@py"}, "'visa_library' applies to VISA resources"),
    ({"faults": {"timeout": 1}}, "'faults' applies to simulated"),
    ({"listen": "0.0.0.0:3334"}, "'listen' does not apply"),
])
def test_bad_keys_and_values_are_refused_naming_key_value_and_what_is_allowed(options: dict, message: str
                                                                             ) -> None:
    with pytest.raises(StationError, match=message):
        resolve(LakeShore336, "/dev/ttyUSB0", options)


def test_serial_keys_do_not_apply_to_a_network_address() -> None:
    with pytest.raises(StationError, match=r"'baudrate' does not apply .* it applies to: serial"):
        resolve(LakeShore336, "TCPIP::10.0.0.7::7777::SOCKET", {"baudrate": 57600})


def test_a_sim_address_leaves_unknown_keys_to_the_simulated_instrument() -> None:
    settings = resolve(LakeShore336, "sim://lakeshore336", {"stage": "hotstage", "timeout_ms": 100})
    assert settings["timeout_ms"] == 100 and "stage" not in settings.values


def test_wavelabs_listen_and_relay_addresses() -> None:
    assert resolve(WavelabsSinus70, "wavelabs://:4000")["listen"] == "127.0.0.1:4000"
    with pytest.raises(StationError, match="port 1–65535"):
        resolve(WavelabsSinus70, "wavelabs://127.0.0.1:70000")
    with pytest.raises(StationError, match="needs its host"):
        resolve(WavelabsSinus70, "wavelabs-relay://")


def test_lss7120_acknowledgements_on_usb_but_not_behind_a_tcp_bridge() -> None:
    usb = resolve(NewportLSS7120, "USB0::0x1FDE::0x000A::7120::INSTR")
    bridge = resolve(NewportLSS7120, "TCPIP::10.0.0.9::5025::SOCKET")
    assert (usb["acknowledged_writes"], usb["read_termination"]) == (True, "")
    assert (bridge["acknowledged_writes"], bridge["read_termination"]) == (False, "\n")


# ------------------------------------------------------------------------------------------------ VISA
class _Captured(Exception):
    pass


def test_visa_uses_the_system_library_unless_the_station_names_one(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, dict]] = []

    def fake_init(self, resource_name, visa_library="", **kwargs):  # type: ignore[no-untyped-def]
        seen.append((visa_library, kwargs))
        raise _Captured

    monkeypatch.setattr("pymeasure.adapters.VISAAdapter.__init__", fake_init)
    for options in ({}, {"visa_library": "@py"}):
        with pytest.raises(_Captured):
            open_visa("GPIB0::24::INSTR", settings=resolve(Keithley2400, "GPIB0::24::INSTR", options))
    assert [library for library, _ in seen] == ["", "@py"]
    with pytest.raises(_Captured):
        open_visa("ASRL/dev/ttyUSB0::INSTR", settings=resolve(LakeShore336, "ASRL/dev/ttyUSB0::INSTR"))
    serial = seen[-1][1]
    assert (serial["baud_rate"], serial["data_bits"], int(serial["parity"])) == (57600, 7, 1)  # Parity.odd
    assert serial["read_termination"] == "\r\n" and serial["timeout"] == 5000


# ---------------------------------------------------------------------------------------------- pacing
def test_pacing_waits_only_for_what_is_left_of_the_interval() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacing = Pacing(0.05, lambda: now[0], sleep)
    pacing.before_command()  # nothing exchanged yet
    pacing.exchange_ended()
    now[0] += 0.02
    pacing.before_command()
    pacing.exchange_ended()
    now[0] += 0.2
    pacing.before_command()
    assert slept == [pytest.approx(0.03)]


# ---------------------------------------------------------------------------------------- WLRC framing
def _wlrc_pair(timeout_ms: int = 500) -> tuple[WLRCSocketAdapter, socket.socket]:
    ours, theirs = socket.socketpair()
    settings = resolve(WavelabsSinus70, "wavelabs://", {"timeout_ms": timeout_ms})
    return WLRCSocketAdapter(ours, settings, "sinusgui"), theirs


def test_a_reply_arriving_in_pieces_is_read_up_to_its_end_tag_and_the_newline_skipped() -> None:
    adapter, sinusgui = _wlrc_pair()
    with sinusgui:
        adapter.write('<WLRC><GetRunStatus iSeq="1"/></WLRC>')
        assert sinusgui.recv(100) == b'<WLRC><GetRunStatus iSeq="1"/></WLRC>'  # no newline after it

        def reply_late() -> None:
            sinusgui.sendall(b'<WLRC><GetRunStatus iSeq="1" ')
            time.sleep(0.1)
            sinusgui.sendall(b'iEC="0" sStatus="idle"/></WLRC>\n<WLRC><Next iSeq="2" iEC="0"/></WLRC>\n')

        thread = threading.Thread(target=reply_late)
        thread.start()
        assert adapter.read() == '<WLRC><GetRunStatus iSeq="1" iEC="0" sStatus="idle"/></WLRC>'
        assert adapter.read() == '<WLRC><Next iSeq="2" iEC="0"/></WLRC>'
        thread.join()
    adapter.close()


def test_no_reply_is_a_timeout_and_a_closed_peer_a_dropped_link() -> None:
    adapter, sinusgui = _wlrc_pair(timeout_ms=200)
    sinusgui.sendall(b"<WLRC><GetRunSt")  # a reply cut short
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="no complete WLRC reply"):
        adapter.read()
    assert 0.15 < time.monotonic() - start < 2.0
    adapter.flush_read_buffer()
    sinusgui.close()
    with pytest.raises(ConnectionResetError, match="closed the connection"):
        adapter.read()
    adapter.close()
