"""Addresses to pymeasure adapters, set up with each link's settings (:mod:`drivers.link_settings`).

- ``sim://<model>`` (:func:`open_sim`): the in-process simulated bench, no sockets, no threads. It keeps each
  model's framing: a USBTMC instrument's zero-byte acknowledgements, a Lake Shore's need for a pause between
  commands, and a Wavelabs SINUS-70 that connects to labctl rather than the reverse;
- VISA resources (``GPIB0::24::INSTR``, ``USB0::...::INSTR``, ``TCPIP::host::INSTR``,
  ``TCPIP::host::port::SOCKET``, ``ASRL...::INSTR``): pyvisa with the station's ``visa_library`` — by
  default the system's VISA (NI-VISA or Keysight IO Libraries where installed, pyvisa-py otherwise);
- serial ports (``/dev/ttyUSB0``, ``COM3``) and pyserial URLs (``socket://host:port``): pyserial;
- ``wavelabs://host:port`` / ``wavelabs-relay://host:port``: :mod:`drivers.wlrc_link`.

Every adapter carries the :class:`~drivers.link_settings.LinkSettings` it was opened with
(``adapter.link_settings``) and, where ``command_interval_s`` asks for it, waits that long after the end of
one exchange before the next command. Each opener is also the factory a driver uses to reconnect.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pymeasure.adapters import Adapter, SerialAdapter, VISAAdapter

from drivers.link_settings import PARITIES, LinkSettings, interface_of, resolve
from labctl.errors import StationError


class MockEndpoint:
    """What the in-process adapter needs from a mock instrument (see mock_instruments.base)."""

    def connect(self, timeout_s: float | None = None) -> Any:  # pragma: no cover - structural description
        raise NotImplementedError


class Pacing:
    """Keeps ``interval_s`` between the end of one exchange (a command sent, a reply read) and the next
    command, on the given clock (the simulated bench's virtual one, or wall-clock time)."""

    def __init__(self, interval_s: float, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval_s = float(interval_s)
        self.now, self.sleep = now, sleep
        self._last_end: float | None = None

    def before_command(self) -> None:
        if self._last_end is not None and self.interval_s > 0:
            wait = self._last_end + self.interval_s - self.now()
            if wait > 0:
                self.sleep(wait)

    def exchange_ended(self) -> None:
        self._last_end = self.now()


class PacedAdapter(Adapter):
    """An adapter mix-in: :class:`Pacing` around every write and read, and the link's settings."""

    link_settings: LinkSettings | None = None
    pacing: Pacing | None = None

    def write(self, command: str, **kwargs: Any) -> None:
        if self.pacing is not None:
            self.pacing.before_command()
        try:
            super().write(command, **kwargs)
        finally:
            if self.pacing is not None:
                self.pacing.exchange_ended()

    def write_bytes(self, content: bytes, **kwargs: Any) -> None:
        if self.pacing is not None:
            self.pacing.before_command()
        try:
            super().write_bytes(content, **kwargs)
        finally:
            if self.pacing is not None:
                self.pacing.exchange_ended()

    def read(self, **kwargs: Any) -> str:
        try:
            return super().read(**kwargs)
        finally:
            if self.pacing is not None:
                self.pacing.exchange_ended()

    def read_bytes(self, count: int = -1, break_on_termchar: bool = False, **kwargs: Any) -> bytes:
        try:
            return super().read_bytes(count, break_on_termchar, **kwargs)
        finally:
            if self.pacing is not None:
                self.pacing.exchange_ended()


def _paced(adapter: PacedAdapter, settings: LinkSettings | None, clock: Any = None) -> None:
    adapter.link_settings = settings
    interval = settings.get("command_interval_s", 0.0) if settings is not None else 0.0
    if interval:
        adapter.pacing = Pacing(interval, clock.now, clock.sleep) if clock is not None else Pacing(interval)


# ------------------------------------------------------------------------------------- simulated
class SimAdapter(PacedAdapter):
    """A pymeasure adapter that hands each message straight to a mock instrument's session.

    The mock raises ``TimeoutError`` where a real instrument would not answer and ``ConnectionError`` where the
    link drops, so drivers meet the same failures as on hardware. Messages carry no terminators: each
    ``read`` is one whole message, an empty one included (USBTMC acknowledgements). With ``settings``, a
    ``timeout_ms`` the station set becomes the session's read timeout, and ``command_interval_s`` is kept on
    ``clock`` (the simulated world's).
    """

    def __init__(self, endpoint: Any, settings: LinkSettings | None = None, clock: Any = None,
                 connection: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        if connection is None:
            if settings is not None and "timeout_ms" in settings.explicit:
                connection = endpoint.connect(settings["timeout_ms"] / 1000.0)
            else:
                connection = endpoint.connect()
        self.connection = connection
        timeout_s = getattr(connection, "timeout_s", None)
        if settings is not None and timeout_s is not None:  # what the session really waits for a reply
            settings = settings.with_values(timeout_ms=round(float(timeout_s) * 1000))
        _paced(self, settings, clock)

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

    def close(self) -> None:
        connection = getattr(self, "connection", None)  # None when connecting was refused
        if connection is not None:
            connection.close()


def open_sim(mock: Any, settings: LinkSettings | None = None, clock: Any = None) -> SimAdapter:
    """An in-process session with a simulated instrument, in the connection role the model has.

    Most instruments are dialled by labctl. A mock whose real counterpart connects to labctl instead (the
    SINUS-70's SinusGUI: ``mock.dials_in``) is *waited for*: labctl listens at the ``listen`` setting and the
    simulated SinusGUI connects when it is set to dial that address; otherwise nothing connects, the wait
    (``connect_timeout_s``) is charged to the clock and ``TimeoutError`` is raised, as on a real bench.
    """
    if clock is None:
        clock = getattr(getattr(mock, "world", None), "clock", None)
    if not getattr(mock, "dials_in", False):
        return SimAdapter(mock, settings, clock)
    listen = settings.get("listen", "127.0.0.1:3334") if settings is not None else "127.0.0.1:3334"
    connection = mock.dial_in(listen)
    if connection is None:
        wait_s = float(settings.get("connect_timeout_s", 10.0)) if settings is not None else 10.0
        if clock is not None:
            clock.sleep(wait_s)
        raise TimeoutError(f"nothing connected to {listen} within {wait_s:g} s (is SinusGUI running, with its "
                           f"remote control set to connect to {listen}?)")
    return SimAdapter(mock, settings, clock, connection=connection)


# ------------------------------------------------------------------------------------------ VISA
class PacedVISAAdapter(PacedAdapter, VISAAdapter):
    """pymeasure's VISA adapter with pacing and its link settings."""

    def visa_library_in_use(self) -> str:
        """Which VISA library the resource manager loaded (``@py`` for pyvisa-py, else the library path)."""
        visalib = self.manager.visalib
        if type(visalib).__module__.startswith("pyvisa_py"):
            return "@py (pyvisa-py)"
        return str(getattr(visalib, "library_path", "") or type(visalib).__name__)


def _visa_serial_options(settings: LinkSettings) -> dict[str, Any]:
    from pyvisa import constants

    parity = {"none": constants.Parity.none, "odd": constants.Parity.odd, "even": constants.Parity.even,
              "mark": constants.Parity.mark, "space": constants.Parity.space}[settings["parity"]]
    stop = {1: constants.StopBits.one, 1.5: constants.StopBits.one_and_a_half,
            2: constants.StopBits.two}[settings["stopbits"]]
    flow = constants.ControlFlow.none
    if settings["xonxoff"]:
        flow = constants.ControlFlow.xon_xoff
    elif settings["rtscts"]:
        flow = constants.ControlFlow.rts_cts
    return {"baud_rate": settings["baudrate"], "data_bits": settings["bytesize"], "parity": parity,
            "stop_bits": stop, "flow_control": flow}


def open_visa(address: str, *, timeout_ms: int | None = None, settings: LinkSettings | None = None,
              **kwargs: Any) -> PacedVISAAdapter:
    """A VISA session. ``settings`` (resolved for a driver) give terminations, timeout, serial parameters of
    ``ASRL`` resources and ``visa_library``; without them, newline-terminated with keyword overrides
    (``visa_library="@py"`` selects pyvisa-py, which is what the simulated bench's TCP tests use)."""
    if settings is None:
        overrides: dict[str, Any] = {k: kwargs.pop(k) for k in ("read_termination", "write_termination",
                                                                "visa_library") if k in kwargs}
        if timeout_ms is not None:
            overrides["timeout_ms"] = timeout_ms
        settings = resolve(None, address, overrides)
    options = {"read_termination": settings["read_termination"],
               "write_termination": settings["write_termination"], "timeout": settings["timeout_ms"], **kwargs}
    if address.upper().startswith("ASRL"):
        options.update(_visa_serial_options(settings))
    adapter = PacedVISAAdapter(address, visa_library=settings["visa_library"], **options)
    _paced(adapter, settings)
    return adapter


# ---------------------------------------------------------------------------------------- serial
class LineSerialAdapter(PacedAdapter, SerialAdapter):
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


def open_serial(address: str, *, timeout_s: float | None = None, settings: LinkSettings | None = None,
                **kwargs: Any) -> LineSerialAdapter:
    """A pyserial port: a device path, a COM port or any pyserial URL (``socket://host:port``).

    ``settings`` (resolved for a driver) give baud rate, data bits, parity, stop bits, flow control,
    terminations, timeout and pacing; without them, 9600 8N1 newline-terminated with keyword overrides
    (``baudrate=...``)."""
    import serial

    if settings is None:
        if timeout_s is not None:
            kwargs["timeout_ms"] = round(timeout_s * 1000)
        settings = resolve(None, address, kwargs)
    connection = serial.serial_for_url(
        address, timeout=settings["timeout_ms"] / 1000.0, baudrate=settings["baudrate"],
        bytesize=settings["bytesize"], parity=PARITIES[settings["parity"]], stopbits=settings["stopbits"],
        xonxoff=settings["xonxoff"], rtscts=settings["rtscts"])
    adapter = LineSerialAdapter(connection, read_termination=settings["read_termination"],
                                write_termination=settings["write_termination"])
    _paced(adapter, settings)
    return adapter


# ---------------------------------------------------------------------------------------- any link
def is_sim_address(address: str) -> bool:
    return address.startswith("sim://")


def open_link(settings: LinkSettings) -> Adapter:
    """Open a real (non-simulated) link with resolved settings."""
    interface = settings.interface
    if interface == "sim":
        raise StationError(f"{settings.address!r} is a simulated address: open it through the station's world")
    if interface == "wlrc":
        from drivers.wlrc_link import open_wlrc

        return open_wlrc(settings)
    if interface == "serial" and not settings.address.upper().startswith("ASRL"):
        return open_serial(settings.address, settings=settings)
    return open_visa(settings.address, settings=settings)


def open_address(address: str, driver_cls: Any = None, **options: Any) -> Adapter:
    """Open any non-simulated address with the driver class's defaults and the given station keys."""
    interface_of(address)  # a clear error for an address labctl cannot open
    return open_link(resolve(driver_cls, address, options))


def link_settings_of(adapter: Any, driver_cls: Any) -> LinkSettings:
    """The settings an adapter was opened with; for an adapter opened without them (a protocol test, a
    bare :class:`SimAdapter`), the driver's defaults for the interface the adapter stands for."""
    settings = getattr(adapter, "link_settings", None)
    if isinstance(settings, LinkSettings):
        return settings
    address = "sim://" if isinstance(adapter, SimAdapter) else str(getattr(adapter, "resource_name", "") or "")
    try:
        return resolve(driver_cls, address or "sim://")
    except StationError:
        return resolve(driver_cls, "sim://")
