"""Addresses to pymeasure adapters.

- ``sim://<model>[/<name>]``: the in-process simulated bench (no sockets, no threads);
- ``TCPIP::host::port::SOCKET`` and every other VISA resource: pyvisa with the pyvisa-py backend;
- ``socket://host:port`` and serial ports (``/dev/ttyUSB0``, ``COM3``): pyserial.

Each opener is also the factory a driver uses to reconnect after a dropped link.
"""

from __future__ import annotations

from typing import Any

from pymeasure.adapters import Adapter, SerialAdapter, VISAAdapter

from labctl.errors import StationError


class MockEndpoint:
    """What the in-process adapter needs from a mock instrument (see mock_instruments.base)."""

    def write(self, message: str) -> None:  # pragma: no cover - structural description
        raise NotImplementedError

    def read(self) -> str:  # pragma: no cover - structural description
        raise NotImplementedError


class SimAdapter(Adapter):
    """A pymeasure adapter that hands each message straight to a mock instrument object.

    The mock raises ``TimeoutError`` where a real instrument would not answer and ``ConnectionError``
    where the link drops, so drivers meet the same failures as on hardware.
    """

    def __init__(self, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.connection = endpoint.connect()

    def _write(self, command: str, **kwargs: Any) -> None:
        self.connection.write(command)

    def _read(self, **kwargs: Any) -> str:
        return str(self.connection.read())

    def _write_bytes(self, content: bytes, **kwargs: Any) -> None:
        self.connection.write(content.decode("latin-1").rstrip("\r\n"))

    def _read_bytes(self, count: int, break_on_termchar: bool, **kwargs: Any) -> bytes:
        return (self.connection.read() + "\n").encode("latin-1")

    def flush_read_buffer(self) -> None:
        self.connection.clear_output()


def open_visa(address: str, *, timeout_ms: int = 5000, **kwargs: Any) -> Adapter:
    """A pyvisa-py adapter for TCPIP/USB/GPIB/ASRL resources, newline-terminated by default."""
    kwargs.setdefault("read_termination", "\n")
    kwargs.setdefault("write_termination", "\n")
    return VISAAdapter(address, visa_library="@py", timeout=timeout_ms, **kwargs)


class LineSerialAdapter(SerialAdapter):
    """pyserial adapter that raises ``TimeoutError`` when a line does not end in time.

    pyserial returns whatever arrived when its timeout expires; a reply without its terminator is a
    timeout (or a line cut short), which our drivers retry like any other timeout.
    """

    def _read(self, **kwargs: Any) -> str:
        raw = self._read_bytes(-1, break_on_termchar=True, **kwargs).decode("latin-1")
        if self.read_termination and not raw.endswith(self.read_termination):
            self._cut_short = bool(raw)
            raise TimeoutError(f"no complete reply within the serial timeout (got {raw!r})")
        return raw.removesuffix(self.read_termination) if self.read_termination else raw

    def flush_read_buffer(self) -> None:
        """Before a query is asked again: drop what is buffered, and the rest of a line cut short.

        A slow instrument may still be sending the remainder of the line that timed out ("23" now,
        "4.5" a moment later); without waiting for it, the remainder would be read as the answer to the
        retried query (a Lake Shore reading 4.5 K instead of 234.5 K).
        """
        if getattr(self, "_cut_short", False) and self.read_termination:
            self.connection.read_until(self.read_termination.encode())
        self._cut_short = False
        self.connection.reset_input_buffer()


def open_serial(address: str, *, timeout_s: float = 2.0, **kwargs: Any) -> Adapter:
    """A pyserial adapter: a device path, a COM port or any pyserial URL (``socket://host:port``)."""
    import serial

    kwargs.setdefault("read_termination", "\n")
    kwargs.setdefault("write_termination", "\n")
    port_settings = {key: kwargs.pop(key) for key in ("baudrate", "bytesize", "parity", "stopbits", "xonxoff",
                                                      "rtscts") if key in kwargs}
    port_settings.setdefault("baudrate", 9600)
    connection = serial.serial_for_url(address, timeout=timeout_s, **port_settings)
    return LineSerialAdapter(connection, **kwargs)


def is_sim_address(address: str) -> bool:
    return address.startswith("sim://")


def open_address(address: str, **kwargs: Any) -> Adapter:
    """Open any non-simulated address; ``sim://`` addresses are opened by the station with its world."""
    if is_sim_address(address):
        raise StationError(f"{address!r} is a simulated address: open it through the station's world")
    if address.startswith("socket://") or address.startswith("/dev/") or address.upper().startswith("COM"):
        return open_serial(address, **kwargs)
    return open_visa(address, **kwargs)
