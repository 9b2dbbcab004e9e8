"""labctl's serial relay multiplexer, exactly as specified in the ``drivers.serial_mux`` module docstring.

One command per line (CR ignored, surrounding spaces ignored, case-insensitive), exactly one reply line per
non-empty command line, nothing unsolicited:

- ``*IDN?`` -> ``labctl,serial-mux,<serial>,<firmware>``; ``CHAN?`` -> the channel count N (1–99);
- ``SEL <n>``: open every relay, wait (break before make), close relay n, wait for it to settle, ``OK``;
  the channel already selected is left alone; ``SEL?`` -> n, or 0 with every relay open;
- ``OPEN``: open every relay, ``OK``;
- errors ``ERR <code> <text>``, changing no relay: 1 unknown command, 2 missing or malformed argument
  (also an argument to a command that takes none), 3 channel out of range, 4 line longer than 32
  characters (CR not counted), 5 hardware fault (every relay is opened first).

Over TCP the mock is reached with pyserial's ``socket://127.0.0.1:<port>`` URL (the sim server is line
based, like the UART). Options: ``channel_count`` (default 16), ``serial``, ``firmware``, ``relay_settle_s``
(default 5 ms, for both the break-before-make and the settle wait), ``reset_on_connect`` (an Arduino resets
when its port is opened: every relay opens; default False, as with the DTR reset disabled). The attribute
``relay_fault`` simulates a relay driver fault: while it is set, ``SEL`` and ``OPEN`` answer ``ERR 5``.

Physics: the world switch named by the mock (if the world has one) routes the selected channel (a channel
the switch does not know routes nothing). Time: each exchange charges its bytes at 9600 baud 8N1 (10 bits
per character) plus the relay waits of a ``SEL`` that moves relays.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

from mock_instruments.base import MockConnection, MockInstrument

BAUD = 9600
BITS_PER_CHAR = 10
MAX_LINE = 32
_DECIMAL = re.compile(r"^\d+$")


class MockSerialMux(MockInstrument):
    """The simulated serial relay multiplexer (options: see the module docstring)."""

    model = "serial_mux"

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        count = int(options.pop("channel_count", 16))
        if not 1 <= count <= 99:
            raise ValueError(f"channel_count must be 1..99, got {count}")
        self.channel_count = count
        serial = options.pop("serial", f"SN{zlib.crc32(name.encode()) % 10000:04d}")
        firmware = options.pop("firmware", "1.2.0")
        self.idn = f"labctl,serial-mux,{serial},{firmware}"
        self.relay_settle_s = float(options.pop("relay_settle_s", 5e-3))
        self.reset_on_connect = bool(options.pop("reset_on_connect", False))
        super().__init__(world, name, **options)
        self.selected = 0
        self.relay_fault = False
        self._route()

    def connect(self, timeout_s: float | None = None) -> MockConnection:
        connection = super().connect(timeout_s)
        if self.reset_on_connect:
            with self.lock, self.world.lock:
                self.power_up()
        return connection

    def power_up(self) -> None:
        """Power-up or reset: every relay open."""
        self.selected = 0
        self._route()

    def is_query(self, message: str) -> bool:
        line = message.replace("\r", "")
        return bool(line.strip()) or len(line) > MAX_LINE

    # ------------------------------------------------------------------------------ messages
    def handle(self, message: str) -> str | None:
        line = message.replace("\r", "")
        if not line.strip() and len(line) <= MAX_LINE:
            return None
        reply = "ERR 4 line too long" if len(line) > MAX_LINE else self._execute(line.split())
        self.world.clock.sleep((len(line) + 1 + len(reply) + 1) * BITS_PER_CHAR / BAUD)
        return reply

    def _execute(self, words: list[str]) -> str:
        keyword, args = words[0].upper(), words[1:]
        if keyword not in ("*IDN?", "CHAN?", "SEL?", "OPEN", "SEL"):
            return "ERR 1 unknown command"
        if keyword != "SEL" and args:
            return "ERR 2 bad argument"
        if keyword == "*IDN?":
            return self.idn
        if keyword == "CHAN?":
            return str(self.channel_count)
        if keyword == "SEL?":
            return str(self.selected)
        if keyword == "SEL" and (len(args) != 1 or not _DECIMAL.match(args[0])):
            return "ERR 2 bad argument"
        channel = int(args[0]) if keyword == "SEL" else 0
        if keyword == "SEL" and not 1 <= channel <= self.channel_count:
            return "ERR 3 channel out of range"
        if self.relay_fault:
            self._switch(0)
            return "ERR 5 relay driver fault"
        self._switch(channel)
        return "OK"

    def _switch(self, channel: int) -> None:
        if channel == self.selected:
            return
        self.selected = 0
        self._route()
        if channel:
            self.world.clock.sleep(self.relay_settle_s)  # break before make
            self.selected = channel
            self._route()
            self.world.clock.sleep(self.relay_settle_s)  # contact bounce / settling

    def _route(self) -> None:
        switch = self.world.switches.get(self.name)
        if switch is None:
            return
        routed = self.selected if self.selected in switch.channels else None
        if switch.selected != routed:
            self.world.select_switch(self.name, routed)
