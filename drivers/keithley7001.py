"""Keithley 7001 switch system (two card slots), as the pixel multiplexer of a substrate.

Command set (Model 7001 Operator's Manual, SCPI reference, ROUTe subsystem; channel notation
``slot!channel`` inside a channel list ``(@...)``):

- ``:ROUT:CLOS (@1!3)`` close channel 3 of the card in slot 1; ``:ROUT:OPEN (@1!3)`` open it;
  ``:ROUT:OPEN ALL`` open every channel of both slots;
- ``:ROUT:CLOS:STAT?`` -> the list of closed channels, e.g. ``(@1!3)``, ``(@)`` when none;
- ``:ROUT:CLOS? (@1!3)`` -> ``1`` closed / ``0`` open;
- ``:ROUT:CONF:SLOT1:CTYP?`` -> the card type of slot 1 (e.g. ``C7011``);
- ``SYST:ERR?`` error queue (``-221,"Settings conflict"``), ``*IDN?``.

Pixels are numbered 1..``channel_count`` across the installed cards: slot 1 first, then slot 2. With one
7011 (quad 1×10 multiplexer) pixel n is ``1!n``, n = 1..40; its four 1×10 banks are channels 1–10, 11–20,
21–30 and 31–40.

Coverage: select one pixel (open all, close one, verify), open all, per-channel close/open/state, closed-
channel read-back, card detection, error queue. Relay settling and break-before-make are the 7001's own
(card settling time, ``:ROUT:CONF:BBM``); the driver leaves them at their settings. Not covered: scan lists
and triggering (``:ROUT:SCAN``, ``:INIT``), memory patterns, interlocks. The card-type reply format
(``C7011``) is taken from the manual's CTYPe parameter names; any reply containing a four-digit card
number is understood.
"""

from __future__ import annotations

import logging
import re
from numbers import Integral
from typing import Any

from pymeasure.adapters import Adapter
from pymeasure.instruments import Instrument

from drivers.base import AdapterFactory, SCPILabInstrument, attempt_all
from labctl.clock import Clock
from labctl.errors import InstrumentError, ParameterError

log = logging.getLogger(__name__)

#: Relay channels per card model (Keithley switch-card data sheets).
CARD_CHANNELS: dict[str, int] = {
    "7011": 40,  # quad 1x10 multiplexer
    "7012": 40,  # 4x10 matrix
    "7013": 20,  # 20 isolated relay switches
    "7015": 40,  # 40-channel solid-state multiplexer
}

_CARD_NUMBER = re.compile(r"(\d{4})")
_CHANNEL = re.compile(r"^(\d+)!(\d+)$")


def parse_channel_list(reply: str) -> list[tuple[int, int]]:
    """``(@1!1,1!3:1!5)`` -> [(1, 1), (1, 3), (1, 4), (1, 5)]; ``(@)`` -> []."""
    text = reply.strip()
    if not (text.startswith("(@") and text.endswith(")")):
        raise ValueError(f"not a channel list: {reply!r}")
    channels: list[tuple[int, int]] = []
    for item in (part.strip() for part in text[2:-1].split(",")):
        if not item:
            continue
        first, _, last = item.partition(":")
        start = _CHANNEL.match(first.strip())
        stop = _CHANNEL.match(last.strip()) if last else start
        if start is None or stop is None or start.group(1) != stop.group(1):
            raise ValueError(f"bad channel {item!r} in {reply!r}")
        slot = int(start.group(1))
        channels.extend((slot, ch) for ch in range(int(start.group(2)), int(stop.group(2)) + 1))
    return channels


class Keithley7001(SCPILabInstrument):
    """Keithley 7001 switch system (Switch role).

    :param cards: card model per slot, slot 1 first (``("7011",)`` for one 7011 in slot 1; ``""`` for an
        empty slot). :meth:`detect_cards` reads them from the instrument instead.
    """

    #: Pixels selectable with the default configuration (one 7011 in slot 1).
    channel_count = 40
    slot_count = 2

    closed_channel_list = Instrument.measurement(
        ":ROUT:CLOS:STAT?",
        """Get the closed channels as the instrument reports them (str channel list, e.g. ``(@1!3)``).""",
        cast=str, maxsplit=0,
    )

    def __init__(
        self,
        adapter: Adapter | str,
        name: str = "Keithley 7001",
        *,
        cards: tuple[str, ...] = ("7011",),
        address: str = "",
        adapter_factory: AdapterFactory | None = None,
        clock: Clock | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(adapter, name, address=address, adapter_factory=adapter_factory, clock=clock,
                         **kwargs)
        self.selected: int | None = None
        self._set_cards(cards)

    # ------------------------------------------------------------------------- cards and channels
    def _set_cards(self, cards: tuple[str, ...]) -> None:
        if len(cards) > self.slot_count:
            raise ParameterError(f"the 7001 has {self.slot_count} slots, got cards {cards!r}")
        unknown = [c for c in cards if c and c not in CARD_CHANNELS]
        if unknown:
            raise ParameterError(f"unknown switch card(s) {unknown}; known: {', '.join(CARD_CHANNELS)}")
        self.cards = tuple(cards)
        self.channel_count = sum(CARD_CHANNELS[c] for c in cards if c)

    def detect_cards(self) -> tuple[str, ...]:
        """Read the card type of each slot (``:ROUT:CONF:SLOTn:CTYP?``) and set :attr:`channel_count`."""
        found: list[str] = []
        with self.lock:
            for slot in range(1, self.slot_count + 1):
                reply = self.ask(f":ROUT:CONF:SLOT{slot}:CTYP?").strip()
                match = _CARD_NUMBER.search(reply)
                found.append(match.group(1) if match and match.group(1) in CARD_CHANNELS else "")
                if match and match.group(1) not in CARD_CHANNELS:
                    log.warning("%s: slot %d holds an unsupported card %r", self.name, slot, reply)
            while found and not found[-1]:
                found.pop()
            self._set_cards(tuple(found))
        return self.cards

    def channel_spec(self, channel: int) -> str:
        """Pixel number (1-based, across slots) -> ``slot!channel``."""
        valid = isinstance(channel, Integral) and not isinstance(channel, bool)
        if not valid or not 1 <= channel <= self.channel_count:
            raise ParameterError(f"channel must be an integer 1..{self.channel_count}, got {channel!r}")
        remaining = int(channel)
        for slot, card in enumerate(self.cards, start=1):
            size = CARD_CHANNELS[card] if card else 0
            if remaining <= size:
                return f"{slot}!{remaining}"
            remaining -= size
        raise ParameterError(f"channel {channel} is not on an installed card")  # pragma: no cover

    def closed_channels(self) -> list[str]:
        """The closed channels, as ``slot!channel`` strings."""
        reply = self.closed_channel_list
        try:
            return [f"{slot}!{ch}" for slot, ch in parse_channel_list(reply)]
        except ValueError as exc:
            raise InstrumentError(str(exc), instrument=self.name, address=self.address) from exc

    def close_channel(self, channel: int) -> None:
        """Close one pixel's relay without opening others (multi-channel use; see :meth:`select_channel`)."""
        with self.lock:
            self.write(f":ROUT:CLOS (@{self.channel_spec(channel)})")
            self.raise_if_error(f"close channel {channel}")

    def open_channel(self, channel: int) -> None:
        with self.lock:
            self.write(f":ROUT:OPEN (@{self.channel_spec(channel)})")
            self.raise_if_error(f"open channel {channel}")
            if self.selected == channel:
                self.selected = None

    def is_closed(self, channel: int) -> bool:
        """Whether the pixel's relay is closed (``:ROUT:CLOS? (@s!c)``)."""
        reply = self.ask(f":ROUT:CLOS? (@{self.channel_spec(channel)})").strip()
        if reply not in {"0", "1"}:
            raise InstrumentError(f"unexpected channel state {reply!r}", instrument=self.name,
                                  address=self.address)
        return reply == "1"

    # ------------------------------------------------------------------------- Switch role
    def select_channel(self, channel: int) -> None:
        """Open every relay, close ``channel`` (1-based) and verify that it is the only one closed."""
        spec = self.channel_spec(channel)
        with self.lock:
            self.write(":ROUT:OPEN ALL")
            self.selected = None
            self.write(f":ROUT:CLOS (@{spec})")
            self.raise_if_error(f"select channel {channel}")
            closed = self.closed_channels()
            if closed != [spec]:
                raise InstrumentError(f"after selecting {spec} the closed channels are {closed}",
                                      instrument=self.name, address=self.address)
            self.selected = channel

    def open_all(self) -> None:
        with self.lock:
            self.write(":ROUT:OPEN ALL")
            self.selected = None
            self.raise_if_error("open all")

    # ------------------------------------------------------------------------- recovery
    def replayable(self, header: str) -> bool:
        """Relay state is restored from :attr:`selected`, not by replaying ROUT commands in order."""
        return not header.upper().startswith((":ROUT", "ROUT"))

    def reapply_configuration(self) -> None:
        super().reapply_configuration()
        Instrument.write(self, ":ROUT:OPEN ALL")
        if self.selected is not None:
            Instrument.write(self, f":ROUT:CLOS (@{self.channel_spec(self.selected)})")

    # ------------------------------------------------------------------------- Instrument role
    def settings_snapshot(self) -> dict[str, float | str | bool]:
        return {
            "cards": ",".join(c or "none" for c in self.cards),
            "channel_count": self.channel_count,
            "closed_channels": ",".join(self.closed_channels()),
        }

    def safe_state(self) -> None:
        """Open every relay. Idempotent."""
        attempt_all(self.name, self.address, [("open all relays", self.open_all)])
