"""labctl serial relay multiplexer: an open, firmware-friendly ASCII protocol and its driver.

This is labctl's own protocol for a pixel multiplexer built from a microcontroller (e.g. an Arduino) and a
relay board. It is specified here completely; firmware that follows this text works with this driver.

Link
----
- UART, 9600 baud, 8 data bits, no parity, 1 stop bit (8N1), no flow control. USB-serial bridges are fine.
- ASCII only. Commands are case-insensitive; the device answers in the case shown below.

Framing
-------
- The host sends one command per line, terminated by LF (0x0A). The device ignores CR (0x0D) and
  leading/trailing spaces. Arguments are separated from the keyword by one or more spaces.
- A command line is at most 32 characters before the LF. A longer line is discarded up to its LF and
  answered with ``ERR 4 line too long``.
- The device answers every command line with exactly one reply line, terminated by LF (CR LF is also
  accepted by the host), and sends nothing unsolicited: no start-up banner, no echo, no prompts. An
  empty command line (just LF) is ignored and gets no reply.
- The host sends the next command only after the reply. The device must reply within 500 ms, relay
  settling included.

Commands
--------
``*IDN?``
    -> ``labctl,serial-mux,<serial>,<firmware>`` where ``<serial>`` and ``<firmware>`` contain no
    commas, e.g. ``labctl,serial-mux,SN0042,1.2.0``.
``CHAN?``
    -> ``<N>``: the number of relay channels, an integer 1–99 without leading zeros (e.g. ``16``).
``SEL <n>``
    Select channel ``n`` (1 ≤ n ≤ N, decimal): open every relay, wait at least 5 ms (break before
    make), close relay ``n``, wait for it to settle (at least 5 ms, or the relay's datasheet bounce
    time), then reply ``OK``. Selecting the channel that is already selected leaves the relays alone
    and replies ``OK``.
``SEL?``
    -> ``<n>``: the selected channel, or ``0`` when all relays are open.
``OPEN``
    Open every relay, then reply ``OK``.

Errors
------
A command that cannot be carried out is answered with ``ERR <code> <text>`` (one space after ``ERR``
and after the code; ``<text>`` is free, human-readable ASCII) and changes no relay, except code 5:

===  ==========================================================================================
1    unknown command (``ERR 1 unknown command``)
2    missing or malformed argument, e.g. ``SEL`` or ``SEL x`` (``ERR 2 bad argument``)
3    channel out of range, e.g. ``SEL 0`` or ``SEL 17`` on a 16-channel board
     (``ERR 3 channel out of range``)
4    line longer than 32 characters (``ERR 4 line too long``)
5    hardware fault (relay driver fault, read-back mismatch); the firmware opens every relay before
     replying, so ``SEL?`` afterwards answers ``0``
===  ==========================================================================================

Power-up and reset
------------------
All relays are open at power-up and after any reset (an Arduino resets when the port is opened; the host
tolerates up to 2 s until the first reply). A firmware watchdog reset must also leave every relay open.

Driver coverage: identification check, channel count (``CHAN?``), select/open/read-back, inline error
replies raised as :class:`~labctl.errors.InstrumentError`, timeouts (an empty reply) retried, garbled or
unexpected replies retried, the selected channel restored after a reconnect. Channel numbering is the
station's pixel numbering directly (relay n is pixel n), as a multiplexer card is on the Keithley 7001.

Resynchronising after a timeout (:meth:`SerialMux.sync_marker`): the protocol has no command that echoes a
number, so the marker is ``*IDN?`` with the identification the board gave before: a late reply to the query
that timed out is read and discarded until the board's identification arrives. Before the first
:meth:`~SerialMux.identify` there is nothing to compare with, and the link is reopened instead (the board
opens every relay when it resets, and the driver selects its channel again).
"""

from __future__ import annotations

import logging
import re
from numbers import Integral
from typing import Any

from pymeasure.adapters import Adapter
from pymeasure.instruments import Instrument

from drivers.base import AdapterFactory, GarbledReply, LabInstrument, attempt_all
from drivers.transport import open_serial
from labctl.clock import Clock
from labctl.errors import InstrumentError, ParameterError

log = logging.getLogger(__name__)

BAUD_RATE = 9600

_ERROR = re.compile(r"^ERR (\d+) ?(.*)$")
_IDN = re.compile(r"^labctl,serial-mux,[^,]*,[^,]*$")
_ANY = re.compile(r"^.+$")
_INTEGER = re.compile(r"^\d{1,2}$")


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _expected_reply(command: str) -> re.Pattern[str]:
    keyword = command.strip().split(" ", 1)[0].upper()
    if keyword == "*IDN?":
        return _ANY
    if keyword in {"SEL?", "CHAN?"}:
        return _INTEGER
    return re.compile(r"^OK$")


class SerialMux(LabInstrument):
    """labctl serial relay multiplexer (Switch role); protocol in the module docstring.

    :param channel_count: the board's channel count if known; :meth:`refresh_channel_count` reads it.
    """

    #: The role this driver plays (labctl.roles); its limits below become the role's capabilities.
    role = "switch"

    #: Channels assumed until the board is asked (``CHAN?``) or the station says otherwise.
    channel_count = 16
    #: What the protocol allows a board to have.
    max_channel_count = 99
    baud_rate = BAUD_RATE

    selected_channel = Instrument.measurement(
        "SEL?", """Get the selected channel (int, 1..N; 0 when every relay is open).""", cast=int,
    )

    reported_channel_count = Instrument.measurement(
        "CHAN?", """Get the number of relay channels the board reports (int, 1..99).""", cast=int,
    )

    def __init__(
        self,
        adapter: Adapter | str,
        name: str = "Serial mux",
        *,
        channel_count: int | None = None,
        address: str = "",
        adapter_factory: AdapterFactory | None = None,
        clock: Clock | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(adapter, name, address=address, adapter_factory=adapter_factory, clock=clock,
                         **kwargs)
        if channel_count is not None:
            self.channel_count = self._checked_count(channel_count)
        self.selected: int | None = None
        self._identity: str | None = None

    @classmethod
    def open(cls, address: str, name: str = "Serial mux", **kwargs: Any) -> SerialMux:
        """Open ``address`` (a serial port or a pyserial URL such as ``socket://127.0.0.1:5025``) at
        9600 8N1, with a factory that reopens it after a dropped link."""

        def factory() -> Adapter:
            return open_serial(address, baudrate=BAUD_RATE)

        return cls(factory(), name, address=address, adapter_factory=factory, **kwargs)

    def _checked_count(self, count: int) -> int:
        if not _is_int(count) or not 1 <= count <= self.max_channel_count:
            raise ParameterError(f"channel count must be 1..{self.max_channel_count}, got {count!r}")
        return int(count)

    # ------------------------------------------------------------------------- message layer
    def _ask_once(self, command: str, query_delay: float | None) -> str:
        reply = super()._ask_once(command, query_delay).strip()
        if not reply:
            raise TimeoutError(f"no reply to {command!r}")
        if not (_ERROR.match(reply) or _expected_reply(command).match(reply)):
            raise GarbledReply(f"unexpected reply {reply!r} to {command!r}")
        return reply

    def ask(self, command: str, query_delay: float | None = None) -> str:
        """Send one command line, return its reply; an ``ERR <code> <text>`` reply raises."""
        reply = super().ask(command, query_delay)
        error = _ERROR.match(reply)
        if error:
            raise InstrumentError(f"{command!r} refused: error {error.group(1)} {error.group(2)}".rstrip(),
                                  instrument=self.name, address=self.address)
        return reply

    def write(self, command: str, **kwargs: Any) -> None:
        """Every command is answered: a write is an ask that must be answered ``OK``."""
        self.ask(command)

    def check_errors(self) -> list[tuple[int, str]]:
        """No error queue: errors are the ``ERR`` replies, raised by :meth:`ask`."""
        return []

    def reapply_configuration(self) -> None:
        """After a reconnect (the board may have reset): select the channel that was selected again."""
        command = f"SEL {self.selected}" if self.selected is not None else "OPEN"
        reply = self._ask_once(command, None)
        if reply != "OK":
            raise InstrumentError(f"{command!r} refused after reconnect: {reply}", instrument=self.name,
                                  address=self.address)

    # ------------------------------------------------------------------------- board description
    def refresh_channel_count(self) -> int:
        """Ask the board how many channels it has (``CHAN?``) and use that from now on."""
        self.channel_count = self._checked_count(self.reported_channel_count)
        return self.channel_count

    def identify(self) -> str:
        """``*IDN?``; raises when the device on the port is not a labctl serial mux."""
        idn = self.ask("*IDN?")
        if not _IDN.match(idn):
            raise InstrumentError(f"not a labctl serial mux: {idn!r}", instrument=self.name,
                                  address=self.address)
        self._identity = idn
        return idn

    def sync_marker(self, n: int) -> tuple[str, str] | None:
        """``("*IDN?", <the identification read before>)``, or None (reopen the link) before the first
        :meth:`identify`; ``n`` is not used: no command of the protocol echoes a number."""
        return None if self._identity is None else ("*IDN?", self._identity)

    # ------------------------------------------------------------------------- Switch role
    def select_channel(self, channel: int) -> None:
        """Connect ``channel`` (1-based); the board opens every other relay first (break before make)."""
        if not _is_int(channel) or not 1 <= channel <= self.channel_count:
            raise ParameterError(f"channel must be an integer 1..{self.channel_count}, got {channel!r}")
        with self.lock:
            self.selected = None
            self.write(f"SEL {int(channel)}")
            self.selected = int(channel)

    def open_all(self) -> None:
        with self.lock:
            self.write("OPEN")
            self.selected = None

    def settings_snapshot(self) -> dict[str, float | str | bool]:
        return {"channel_count": self.channel_count, "selected_channel": self.selected_channel}

    def safe_state(self) -> None:
        """Open every relay. Idempotent."""
        attempt_all(self.name, self.address, [("open all relays", self.open_all)])
