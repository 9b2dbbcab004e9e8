"""Protocol tests for the labctl serial relay multiplexer.

The protocol is labctl's own, specified in the ``drivers.serial_mux`` module docstring (sections Framing,
Commands, Errors); every exchange below is an example from that specification.
"""

from __future__ import annotations

import socket
import threading

import pytest
from pymeasure.test import expected_protocol

from drivers.serial_mux import SerialMux
from labctl.errors import InstrumentError, InstrumentTimeout, ParameterError
from labctl.roles import Switch

IDN = "labctl,serial-mux,SN0042,1.2.0"


def test_is_a_switch():
    with expected_protocol(SerialMux, []) as inst:
        assert isinstance(inst, Switch)
        assert inst.name == "Serial mux"


def test_constructor_keywords():
    with expected_protocol(SerialMux, [], address="socket://127.0.0.1:5025", channel_count=8) as inst:
        assert inst.address == "socket://127.0.0.1:5025"
        assert inst.channel_count == 8


def test_constructor_rejects_bad_channel_count():
    with pytest.raises(ParameterError, match="channel count"):
        with expected_protocol(SerialMux, [], channel_count=0):
            pass


def test_identify():
    with expected_protocol(SerialMux, [("*IDN?", IDN)]) as inst:
        assert inst.identify() == IDN


def test_identify_rejects_other_device():
    with expected_protocol(SerialMux, [("*IDN?", "Arduino relay v1")]) as inst:
        with pytest.raises(InstrumentError, match="not a labctl serial mux"):
            inst.identify()


def test_reported_channel_count():
    with expected_protocol(SerialMux, [("CHAN?", "16")]) as inst:
        assert inst.reported_channel_count == 16


def test_refresh_channel_count():
    with expected_protocol(SerialMux, [("CHAN?", "6")]) as inst:
        assert inst.refresh_channel_count() == 6
        assert inst.channel_count == 6


def test_select_channel():
    with expected_protocol(SerialMux, [("SEL 3", "OK")]) as inst:
        inst.select_channel(3)
        assert inst.selected == 3


def test_select_channel_out_of_range_sends_nothing():
    with expected_protocol(SerialMux, [], channel_count=8) as inst:
        with pytest.raises(ParameterError, match=r"1\.\.8"):
            inst.select_channel(9)


def test_select_channel_error_reply_raises():
    with expected_protocol(SerialMux, [("SEL 12", "ERR 3 channel out of range")], channel_count=16) as inst:
        with pytest.raises(InstrumentError, match="error 3 channel out of range"):
            inst.select_channel(12)
        assert inst.selected is None


def test_selected_channel_readback():
    with expected_protocol(SerialMux, [("SEL?", "5")]) as inst:
        assert inst.selected_channel == 5


def test_selected_channel_zero_when_open():
    with expected_protocol(SerialMux, [("SEL?", "0")]) as inst:
        assert inst.selected_channel == 0


def test_open_all():
    with expected_protocol(SerialMux, [("OPEN", "OK")]) as inst:
        inst.open_all()
        assert inst.selected is None


def test_hardware_fault_raises():
    with expected_protocol(SerialMux, [("OPEN", "ERR 5 relay driver fault")]) as inst:
        with pytest.raises(InstrumentError, match="error 5 relay driver fault"):
            inst.open_all()


def test_unknown_command_reply_raises():
    with expected_protocol(SerialMux, [("FOO", "ERR 1 unknown command")]) as inst:
        with pytest.raises(InstrumentError, match="error 1 unknown command"):
            inst.ask("FOO")


def test_timeout_empty_reply_is_retried():
    with expected_protocol(SerialMux, [("SEL?", ""), ("SEL?", "2")]) as inst:
        assert inst.selected_channel == 2
        assert inst.retry_count == 1


def test_unexpected_reply_is_retried_then_raises():
    with expected_protocol(SerialMux, [("SEL 1", "O"), ("SEL 1", "O"), ("SEL 1", "O")]) as inst:
        with pytest.raises(InstrumentTimeout):
            inst.select_channel(1)


def test_crlf_terminated_reply_accepted():
    with expected_protocol(SerialMux, [("SEL 2", "OK\r")]) as inst:
        inst.select_channel(2)


def test_settings_snapshot():
    with expected_protocol(SerialMux, [("SEL?", "4")], channel_count=8) as inst:
        assert inst.settings_snapshot() == {"channel_count": 8, "selected_channel": 4}


def test_safe_state_opens_all():
    with expected_protocol(SerialMux, [("OPEN", "OK")]) as inst:
        inst.safe_state()


def test_safe_state_reports_failure():
    with expected_protocol(SerialMux, [("OPEN", "ERR 5 relay driver fault")]) as inst:
        with pytest.raises(InstrumentError, match="could not reach safe state: open all relays"):
            inst.safe_state()


def test_reconnect_reselects_channel():
    with expected_protocol(SerialMux, [("SEL 7", "OK")]) as inst:
        inst.selected = 7
        inst.reapply_configuration()


def test_reconnect_opens_all_when_nothing_selected():
    with expected_protocol(SerialMux, [("OPEN", "OK")]) as inst:
        inst.reapply_configuration()


def test_open_reaches_a_pyserial_socket_url():
    """``SerialMux.open`` goes through drivers.transport.open_serial, so socket:// URLs work."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn, conn.makefile("rwb") as stream:
            for line in stream:
                reply = IDN if line.strip() == b"*IDN?" else "ERR 1 unknown command"
                stream.write(reply.encode() + b"\r\n")
                stream.flush()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    inst = SerialMux.open(f"socket://127.0.0.1:{port}")
    try:
        assert inst.identify() == IDN
        assert inst.address == f"socket://127.0.0.1:{port}"
    finally:
        inst.adapter.close()
        server.close()
        thread.join(timeout=5)


def test_sync_marker_is_the_identification_once_known():
    idn = "labctl,serial-mux,SN0042,1.2.0"
    with expected_protocol(SerialMux, [("*IDN?", idn)]) as inst:
        assert inst.sync_marker(5) is None
        inst.identify()
        assert inst.sync_marker(5) == ("*IDN?", idn)
