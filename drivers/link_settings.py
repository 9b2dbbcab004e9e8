"""How a link to an instrument is set up: the connection keys of a station file, their defaults, and checks.

A station names an instrument's ``address``; everything else about the link comes from the driver unless
the station overrides it. The settings of one link are resolved in this order, later ones winning:

1. :data:`GENERIC_DEFAULTS` (newline-terminated messages, 5 s timeout, 9600 8N1 on a serial port, the
   system's VISA library);
2. the driver class's ``connection_defaults`` (how the model talks on the interface it is usually wired to,
   e.g. a Lake Shore 336's USB port: 57 600 baud, 7 data bits, odd parity, CR LF, 50 ms between commands);
3. the driver class's ``interface_defaults[<interface>]`` (what differs on another interface, e.g. the same
   Lake Shore on Ethernet needs no pause between commands);
4. the station's own keys for that instrument.

The interface follows from the address (:func:`interface_of`): ``sim`` (the in-process simulated bench,
which reproduces the model's usual interface), ``serial`` (a device path, ``COM3``, a pyserial URL such as
``socket://host:port``, or a VISA ``ASRL`` resource), ``usb``, ``gpib``, ``tcpip`` (VXI-11/HiSLIP
``TCPIP::host::INSTR``), ``socket`` (``TCPIP::host::port::SOCKET``) and ``wlrc`` (the Wavelabs SINUS-70,
which connects to labctl: ``wavelabs://[host][:port]`` to listen, ``wavelabs-relay://host[:port]`` to
reach it through a relay).

Keys a station may set (:data:`CONNECTION_KEYS`; each says where it applies) are checked here by name and
value, so a typo (``baud = 57600``) or an impossible value is refused before any instrument is touched.
This module has no dependencies beyond labctl's errors so that station files can be checked cheaply.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from labctl.errors import StationError

INTERFACES = ("sim", "serial", "usb", "gpib", "tcpip", "socket", "wlrc")
VISA_INTERFACES = frozenset({"usb", "gpib", "tcpip", "socket"})
MESSAGE_INTERFACES = frozenset({"sim", "serial", "usb", "gpib", "tcpip", "socket"})
BAUD_RATES = (300, 600, 1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
PARITIES = {"none": "N", "odd": "O", "even": "E", "mark": "M", "space": "S"}
#: Keys of a station's instrument table that are not connection settings.
OTHER_KEYS = frozenset({"driver", "address", "driver_options", "faults", "reconnect"})
WLRC_LISTEN_PORT = 3334
WLRC_RELAY_PORT = 3335
_COM_PORT = re.compile(r"^COM\d+$", re.IGNORECASE)
_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9.\-]*|\[[0-9A-Fa-f:]+\])(:(?P<port>\d{1,5}))?$")


def interface_of(address: str) -> str:
    """The interface an address names (see the module docstring); StationError for an unknown form."""
    upper = address.upper()
    if address.startswith("sim://"):
        return "sim"
    if address.startswith(("wavelabs://", "wavelabs-relay://")):
        return "wlrc"
    if address.startswith(("socket://", "rfc2217://", "/dev/")) or _COM_PORT.match(address) or \
            upper.startswith("ASRL"):
        return "serial"
    if upper.startswith("USB"):
        return "usb"
    if upper.startswith("GPIB"):
        return "gpib"
    if upper.startswith("TCPIP"):
        return "socket" if upper.endswith("::SOCKET") else "tcpip"
    raise StationError(
        f"address {address!r} is not one labctl can open: use a VISA resource (GPIB0::24::INSTR, "
        "USB0::0x05E6::0x2450::04096331::INSTR, TCPIP::192.168.1.20::INSTR, TCPIP::192.168.1.20::5025::SOCKET, "
        "ASRL/dev/ttyUSB0::INSTR), a serial port (/dev/ttyUSB0, COM3, socket://host:port), "
        "wavelabs://host:port, or sim://<model>")


def uses_visa(address: str) -> bool:
    """Whether the address is opened through a VISA library (every VISA resource, ASRL ones included)."""
    return interface_of(address) in VISA_INTERFACES or address.upper().startswith("ASRL")


def parse_host_port(text: str, default_port: int, *, what: str) -> tuple[str, int]:
    """``host:port``, ``host`` or ``:port`` (host 127.0.0.1) as (host, port); StationError when malformed."""
    match = _HOST_PORT.match(text.strip())
    port = int(match.group("port")) if match and match.group("port") else default_port
    if match is None or not 1 <= port <= 65535:
        raise StationError(f"{what} = {text!r} is not HOST:PORT (port 1–65535), e.g. \"127.0.0.1:{default_port}\"")
    return (match.group("host") or "127.0.0.1").strip("[]"), port


# --------------------------------------------------------------------------------------- key checks
def _number(low: float, high: float, *, integer: bool = False) -> Callable[[str, Any], Any]:
    def check(key: str, value: Any) -> Any:
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type or not (math.isfinite(value) and low <= value <= high):
            kind = "a whole number" if integer else "a number"
            raise StationError(f"{key} = {value!r} must be {kind} in {low:g}–{high:g}")
        return int(value) if integer else float(value)
    return check


def _choice(choices: tuple[Any, ...]) -> Callable[[str, Any], Any]:
    def check(key: str, value: Any) -> Any:
        if isinstance(value, bool) or value not in choices:
            raise StationError(f"{key} = {value!r} must be one of {', '.join(map(str, choices))}")
        return value
    return check


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise StationError(f"{key} = {value!r} must be true or false")
    return value


def _termination(key: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > 4:
        raise StationError(f"{key} = {value!r} must be a string of at most 4 characters, e.g. \"\\r\\n\" or \"\"")
    return value


def _parity(key: str, value: Any) -> str:
    text = str(value).strip().lower() if isinstance(value, str) else ""
    for name, letter in PARITIES.items():
        if text in (name, letter.lower()):
            return name
    raise StationError(f"{key} = {value!r} must be one of {', '.join(PARITIES)}")


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise StationError(f"{key} = {value!r} must be a string")
    return value


def _listen(key: str, value: Any) -> str:
    host, port = parse_host_port(_text(key, value), WLRC_LISTEN_PORT, what=key)
    return f"{host}:{port}"


@dataclass(frozen=True)
class KeySpec:
    """A connection key: how its value is checked and on which interfaces it means something."""

    check: Callable[[str, Any], Any]
    interfaces: frozenset[str]
    help: str


_ALL = frozenset(INTERFACES)
_SERIAL = frozenset({"serial"})
CONNECTION_KEYS: dict[str, KeySpec] = {
    "timeout_ms": KeySpec(_number(1, 3_600_000, integer=True), _ALL,
                          "how long to wait for a reply, ms"),
    "read_termination": KeySpec(_termination, MESSAGE_INTERFACES, "what ends a reply (\"\" = the transport's "
                                "end-of-message, e.g. USBTMC's END)"),
    "write_termination": KeySpec(_termination, MESSAGE_INTERFACES, "what labctl appends to each command"),
    "command_interval_s": KeySpec(_number(0.0, 10.0), MESSAGE_INTERFACES,
                                  "least time from the end of one exchange to the next command, s"),
    "acknowledged_writes": KeySpec(_flag, MESSAGE_INTERFACES,
                                   "the instrument answers every command with an empty message to be read"),
    "visa_library": KeySpec(_text, frozenset({"serial"}) | VISA_INTERFACES,
                            "VISA library: \"\" = the system's (NI-VISA/Keysight IO Libraries, else pyvisa-py), "
                            "\"@py\" = pyvisa-py, \"@ivi\" or a library path"),
    "baudrate": KeySpec(_choice(BAUD_RATES), _SERIAL, "serial line speed, baud"),
    "bytesize": KeySpec(_choice((5, 6, 7, 8)), _SERIAL, "data bits"),
    "parity": KeySpec(_parity, _SERIAL, "parity: none, odd, even, mark, space"),
    "stopbits": KeySpec(_choice((1, 1.5, 2)), _SERIAL, "stop bits"),
    "xonxoff": KeySpec(_flag, _SERIAL, "software flow control"),
    "rtscts": KeySpec(_flag, _SERIAL, "hardware (RTS/CTS) flow control"),
    "listen": KeySpec(_listen, frozenset({"sim"}),
                      "simulated SINUS-70: where labctl listens for SinusGUI (HOST:PORT)"),
    "connect_timeout_s": KeySpec(_number(0.1, 3600.0), frozenset({"sim", "wlrc"}),
                                 "how long to wait for SinusGUI to connect, s"),
}

GENERIC_DEFAULTS: dict[str, Any] = {
    "timeout_ms": 5000, "read_termination": "\n", "write_termination": "\n", "command_interval_s": 0.0,
    "acknowledged_writes": False, "visa_library": "", "baudrate": 9600, "bytesize": 8, "parity": "none",
    "stopbits": 1, "xonxoff": False, "rtscts": False,
}


@dataclass(frozen=True)
class LinkSettings:
    """The resolved settings of one link. ``explicit`` names the keys the station set itself."""

    address: str
    interface: str
    values: dict[str, Any] = field(default_factory=dict)
    explicit: frozenset[str] = frozenset()

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def with_values(self, **values: Any) -> LinkSettings:
        return replace(self, values={**self.values, **values})

    def describe(self, primary_interface: str | None = None) -> dict[str, Any]:
        """The settings that apply on this link, for ``labctl instruments`` and the run file.

        On the simulated bench the link reproduces the model's usual interface (``primary_interface``), so
        that interface's settings are shown."""
        shown = self.interface if self.interface != "sim" else (primary_interface or "sim")
        described: dict[str, Any] = {"interface": self.interface if self.interface != "sim"
                                     else f"sim (as {shown})" if primary_interface else "sim"}
        if shown == "serial":
            parity = PARITIES[str(self.values["parity"])]
            stop = self.values["stopbits"]
            described["serial"] = f"{self.values['baudrate']} baud {self.values['bytesize']}{parity}{stop:g}"
            flow = [name for name in ("xonxoff", "rtscts") if self.values.get(name)]
            described["flow_control"] = ",".join(flow) or "none"
        if self.interface != "wlrc" and shown != "wlrc":
            described["read_termination"] = self.values["read_termination"]
            described["write_termination"] = self.values["write_termination"]
        described["timeout_ms"] = self.values["timeout_ms"]
        if self.values.get("command_interval_s"):
            described["command_interval_s"] = self.values["command_interval_s"]
        if self.values.get("acknowledged_writes"):
            described["acknowledged_writes"] = True
        if self.interface in VISA_INTERFACES or self.address.upper().startswith("ASRL"):
            described["visa_library"] = self.values["visa_library"] or "system default"
        for key in ("listen", "relay", "connect_timeout_s"):
            if key in self.values:
                described[key] = self.values[key]
        return described


def _applies(key: str, interface: str, driver_keys: set[str]) -> bool:
    spec = CONNECTION_KEYS.get(key)
    if spec is None:
        return False
    if interface == "sim" and key in {"listen", "connect_timeout_s"}:
        return key in driver_keys
    return interface in spec.interfaces


def resolve(driver_cls: Any, address: str, station_options: Mapping[str, Any] | None = None, *,
            strict: bool = True) -> LinkSettings:
    """The settings of a link to ``address`` for a driver class, with the station's ``station_options``.

    With ``strict`` (a real instrument), keys that are neither connection keys applying to this interface nor
    :data:`OTHER_KEYS` raise StationError naming the key and what is allowed; on a ``sim://`` address the
    remaining keys are the simulated instrument's options and are left to it. ``faults`` is refused on a real
    address."""
    interface = interface_of(address)
    defaults: dict[str, Any] = dict(getattr(driver_cls, "connection_defaults", {}) or {})
    per_interface = dict((getattr(driver_cls, "interface_defaults", {}) or {}).get(interface, {}))
    driver_keys = set(defaults) | set(per_interface)
    values = {**GENERIC_DEFAULTS, **{k: v for k, v in defaults.items()}, **per_interface}
    explicit: set[str] = set()
    options = dict(station_options or {})
    model = getattr(driver_cls, "__name__", "driver")
    for key, value in options.items():
        if key in OTHER_KEYS:
            if key == "faults" and interface != "sim":
                raise StationError(f"'faults' applies to simulated (sim://) instruments only, not to {address!r}")
            continue
        if key in CONNECTION_KEYS:
            if not _applies(key, interface, driver_keys):
                where = ", ".join(sorted(CONNECTION_KEYS[key].interfaces))
                raise StationError(f"{key!r} does not apply to {model} at {address!r} ({interface} interface); "
                                   f"it applies to: {where}")
            if key == "visa_library" and not uses_visa(address):
                raise StationError(f"'visa_library' applies to VISA resources, not to {address!r}, which "
                                   "labctl opens with pyserial")
            values[key] = CONNECTION_KEYS[key].check(key, value)
            explicit.add(key)
        elif strict and interface != "sim":
            allowed = sorted(k for k in CONNECTION_KEYS if _applies(k, interface, driver_keys))
            if uses_visa(address) and "visa_library" not in allowed:
                allowed.append("visa_library")
            raise StationError(f"unknown key {key!r} for {model} at {address!r}; connection keys for the "
                               f"{interface} interface: {', '.join(sorted(allowed))}; also: driver_options")
    for key in ("parity",):
        values[key] = _parity(key, values[key])
    if interface == "wlrc":
        values.pop("listen", None)
        values.update(_wlrc_endpoint(address))
    elif interface == "sim" and "listen" in values:
        values["listen"] = _listen("listen", values["listen"])
    return LinkSettings(address, interface, values, frozenset(explicit))


def _wlrc_endpoint(address: str) -> dict[str, Any]:
    """``wavelabs://[host][:port]`` (listen; 127.0.0.1:3334 by default) or ``wavelabs-relay://host[:port]``."""
    if address.startswith("wavelabs-relay://"):
        rest = address.removeprefix("wavelabs-relay://").rstrip("/")
        if not rest or rest.startswith(":"):
            raise StationError(f"{address!r}: a relay address needs its host, e.g. wavelabs-relay://relay-pc:3335")
        host, port = parse_host_port(rest, WLRC_RELAY_PORT, what="address")
        return {"relay": f"{host}:{port}"}
    host, port = parse_host_port(address.removeprefix("wavelabs://").rstrip("/"), WLRC_LISTEN_PORT,
                                 what="address")
    return {"listen": f"{host}:{port}"}
