"""Keithley 7001 switch system (two card slots), after the Model 7001 Operator's Manual (SCPI, ROUTe).

Channels are written ``slot!channel`` inside a channel list, ``(@1!1,1!3,2!5)``, with ranges within a slot
``(@1!1:1!10)``. ``ROUTe`` is an optional root node (``:CLOSe (@1!2)`` is ``:ROUTe:CLOSe (@1!2)``):

- ``[:ROUTe]:CLOSe <list>`` close the listed channels (the others stay as they are);
- ``[:ROUTe]:CLOSe:STATe?`` -> the closed channels, ``(@1!3)``; ``(@)`` when none;
- ``[:ROUTe]:CLOSe? <list>`` -> ``1`` (closed) or ``0`` per listed channel, comma-separated;
- ``[:ROUTe]:OPEN <list>|ALL`` open the listed (or all) channels; ``[:ROUTe]:OPEN? <list>`` -> ``1`` = open;
- ``[:ROUTe]:CONFigure:SLOT<n>:CTYPe <name>`` / ``?`` the card type of slot n (``C7011``, ``C7012``,
  ``C7013``, ``C7015``, ``NONE``; setting it opens that slot's channels);
- ``[:ROUTe]:CONFigure:SLOT<n>:STIMe <s>`` / ``?`` the slot's settling time, 0–99999.999 s;
- ``:SYSTem:PRESet``, ``*RST``: every channel open; the SCPI engine's ``SYSTem:ERRor?`` queue and common
  commands.

Errors: a channel beyond its card or on an empty slot is -222 (the command changes nothing), a malformed
entry -224, a missing list -109, an unknown header -113. Not simulated: scan lists and triggering
(``:ROUTe:SCAN``, ``:INITiate``, ``:TRIGger``), memory patterns, ``:ROUTe:CONFigure:BBMake``, interlocks.

Physics: the world switch named by the mock (if the world has one) follows the relays. Pixel numbering is
the driver's: slot 1's channels first, then slot 2's (with a 7011 in slot 1, ``2!3`` is pixel 43); closing
channel n of slot 1 selects world switch channel n. The world's switch has one common terminal, so with
several channels closed the lowest-numbered closed pixel is routed (the mock records all of them); a pixel
the world switch has no channel for routes nothing. Time: each command that moves relays charges the card's
relay operate/settle time plus the slot's STIMe to the clock (open and close phases counted separately).
"""

from __future__ import annotations

import re
import zlib
from typing import Any

from mock_instruments.scpi import Choice, Num, Raw, ScpiError, ScpiInstrument, scpi

#: card -> (channels, relay operate + settle time in s), from the card data sheets.
CARDS: dict[str, tuple[int, float]] = {"C7011": (40, 3e-3), "C7012": (40, 3e-3), "C7013": (20, 5e-3),
                                       "C7015": (40, 0.5e-3), "NONE": (0, 0.0)}
_ITEM = re.compile(r"^(\d+)!(\d+)(?::(\d+)!(\d+))?$")
Channel = tuple[int, int]


class MockKeithley7001(ScpiInstrument):
    """The simulated 7001 (options: ``cards`` per slot, e.g. ``("7011",)`` or ``("7011", "7013")``,
    ``serial``, and the base options)."""

    model = "keithley7001"
    slot_count = 2

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        cards = tuple(options.pop("cards", ("7011",)))
        serial = options.pop("serial", f"{zlib.crc32(name.encode()) % 1000000:06d}")
        self.idn = f"KEITHLEY INSTRUMENTS INC.,MODEL 7001,{serial},B06  /A02"
        if len(cards) > self.slot_count:
            raise ValueError(f"the 7001 has {self.slot_count} slots, got cards {cards!r}")
        self.cards = [self._card_name(c) for c in cards] + ["NONE"] * (self.slot_count - len(cards))
        self.settling_s = [0.0] * self.slot_count
        self.closed: list[Channel] = []  # in the order they were closed
        super().__init__(world, name, **options)
        self.reset()

    @staticmethod
    def _card_name(card: str) -> str:
        text = str(card).upper() or "NONE"
        name = text if text.startswith("C") or text == "NONE" else f"C{text}"
        if name not in CARDS:
            raise ValueError(f"unknown switch card {card!r}; known: {', '.join(CARDS)}")
        return name

    def reset(self) -> None:
        super().reset()
        self._move(opened=list(self.closed), closed=[])

    # ------------------------------------------------------------------------------ channels
    def parse_list(self, text: str) -> list[Channel]:
        """``(@1!1,1!3:1!5)`` -> [(1, 1), (1, 3), (1, 4), (1, 5)], checked against the installed cards."""
        body = text.replace(" ", "")
        if not (body.startswith("(@") and body.endswith(")")):
            raise ScpiError(-224, f"expected a channel list (@...), got {text}")
        channels: list[Channel] = []
        for item in filter(None, body[2:-1].split(",")):
            m = _ITEM.match(item)
            if m is None or (m.group(3) is not None and m.group(3) != m.group(1)):
                raise ScpiError(-224, f"bad channel {item!r}")
            slot, first = int(m.group(1)), int(m.group(2))
            last = int(m.group(4)) if m.group(4) is not None else first
            for ch in range(min(first, last), max(first, last) + 1):
                channels.append(self._check(slot, ch))
        if not channels:
            raise ScpiError(-224, "empty channel list")
        return channels

    def _check(self, slot: int, channel: int) -> Channel:
        if not 1 <= slot <= self.slot_count:
            raise ScpiError(-222, f"no slot {slot}")
        count = CARDS[self.cards[slot - 1]][0]
        if not 1 <= channel <= count:
            card = self.cards[slot - 1]
            raise ScpiError(-222, f"{slot}!{channel}: slot {slot} ({card}) has {count} channels")
        return slot, channel

    def pixel(self, channel: Channel) -> int:
        """The driver's pixel number of a channel: slot 1's channels first, then slot 2's."""
        slot, ch = channel
        return sum(CARDS[c][0] for c in self.cards[: slot - 1]) + ch

    def _move(self, opened: list[Channel], closed: list[Channel]) -> None:
        """Actuate relays (charging their time) and route the world's switch."""
        opened = [c for c in opened if c in self.closed]
        closed = [c for c in closed if c not in self.closed]
        for phase in (opened, closed):
            if phase:
                slots = {slot for slot, _ in phase}
                self.world.clock.sleep(max(CARDS[self.cards[s - 1]][1] + self.settling_s[s - 1]
                                           for s in slots))
        self.closed = [c for c in self.closed if c not in opened] + closed
        switch = self.world.switches.get(self.name)
        if switch is None:
            return
        pixels = sorted(self.pixel(c) for c in self.closed)
        routed = pixels[0] if pixels and pixels[0] in switch.channels else None
        if switch.selected != routed:
            self.world.select_switch(self.name, routed)

    @staticmethod
    def format_list(channels: list[Channel]) -> str:
        return "(@" + ",".join(f"{s}!{c}" for s, c in sorted(channels)) + ")"

    # ------------------------------------------------------------------------------ commands
    @scpi("[ROUTe]:CLOSe", Raw())
    def _close(self, text: str) -> None:
        self._move(opened=[], closed=self.parse_list(text))

    @scpi("[ROUTe]:CLOSe:STATe?")
    def _close_state(self) -> str:
        return self.format_list(self.closed)

    @scpi("[ROUTe]:CLOSe?", Raw())
    def _close_query(self, text: str) -> str:
        return ",".join("1" if c in self.closed else "0" for c in self.parse_list(text))

    @scpi("[ROUTe]:OPEN", Raw())
    def _open(self, text: str) -> None:
        channels = list(self.closed) if text.strip().upper() == "ALL" else self.parse_list(text)
        self._move(opened=channels, closed=[])

    @scpi("[ROUTe]:OPEN?", Raw())
    def _open_query(self, text: str) -> str:
        return ",".join("0" if c in self.closed else "1" for c in self.parse_list(text))

    @scpi("[ROUTe]:CONFigure:SLOT#2:CTYPe", Choice(*CARDS))
    def _card_type(self, name: str) -> None:
        slot = self.call.suffix
        self._move(opened=[c for c in self.closed if c[0] == slot], closed=[])
        self.cards[slot - 1] = name

    @scpi("[ROUTe]:CONFigure:SLOT#2:CTYPe?")
    def _card_type_query(self) -> str:
        return self.cards[self.call.suffix - 1]

    @scpi("[ROUTe]:CONFigure:SLOT#2:STIMe", Num(0.0, 99999.999, units="S"))
    def _settling(self, seconds: float) -> None:
        self.settling_s[self.call.suffix - 1] = seconds

    @scpi("[ROUTe]:CONFigure:SLOT#2:STIMe?")
    def _settling_query(self) -> float:
        return self.settling_s[self.call.suffix - 1]

    @scpi("SYSTem:PRESet")
    def _preset(self) -> None:
        self.reset()
