"""Keithley 7001 switch system (two card slots), after the Model 7001 Operator's Manual (SCPI command
reference, ROUTe subsystem; channel lists) and the instruction manuals of the cards it holds.

Channel notation depends on the card, as on the instrument: a multiplexer or switch card's channel is
``slot!channel`` (``1!3``), a matrix card's crosspoint ``slot!row!column`` (``1!2!7``: slot 1, row 2, column
7). Channels are written inside a channel list ``(@1!1,1!3,2!5)``, with ranges within a slot ``(@1!1:1!10)``
(a matrix range ``1!1!1:1!2!3`` runs row by row through the crosspoints between). ``ROUTe`` is an optional
root node (``:CLOSe (@1!2)`` is ``:ROUTe:CLOSe (@1!2)``):

- ``[:ROUTe]:CLOSe <list>`` close the listed channels (the others stay as they are);
- ``[:ROUTe]:CLOSe:STATe?`` -> the closed channels, ``(@1!3)``; ``(@)`` when none;
- ``[:ROUTe]:CLOSe? <list>`` -> ``1`` (closed) or ``0`` per listed channel, comma-separated;
- ``[:ROUTe]:OPEN <list>|ALL`` open the listed (or all) channels; ``[:ROUTe]:OPEN? <list>`` -> ``1`` = open;
- ``[:ROUTe]:CONFigure:SLOT<n>:CTYPe <name>`` / ``?`` the card type of slot n (``C7011``, ``C7012``,
  ``C7013``, ``C7015``, ``NONE``; setting it opens that slot's channels);
- ``[:ROUTe]:CONFigure:SLOT<n>:STIMe <s>`` / ``?`` the slot's settling time, 0–99999.999 s;
- ``*OPT?`` -> the card model of each slot, ``7012,NONE``;
- ``:SYSTem:PRESet``, ``*RST``: every channel open; the SCPI engine's ``SYSTem:ERRor?`` queue and common
  commands (``*ESE``/``*ESE?``, ``*ESR?``, ``*STB?``, ``*OPC?``...).

Cards (model: notation, size, relay operate + settle time from the card data sheets): 7011 quad 1×10
multiplexer (``s!1``–``s!40``; banks of ten), 7012 4×10 matrix (``s!1!1``–``s!4!10``), 7013 20 isolated
switches (``s!1``–``s!20``), 7015 40-channel solid-state multiplexer (``s!1``–``s!40``).

Errors: a channel beyond its card or on an empty slot is -222 (Data out of range), an entry in the wrong
notation for its card (``1!5`` on a matrix, ``1!1!5`` on a multiplexer) or malformed -224 (Illegal parameter
value), a missing list -109, an unknown header -113; the command changes nothing. The 7001 manual groups
channel-list errors under these SCPI codes; the split between -222 and -224 is this mock's reading of them.
The ``*OPT?`` reply form (models separated by commas, ``NONE`` for an empty slot) follows what Keithley's
switch mainframes of the same family answer (the 2700's manual: ``7700, NONE``). Not simulated: scan lists
and triggering (``:ROUTe:SCAN``, ``:INITiate``, ``:TRIGger``), memory patterns, ``:ROUTe:CONFigure:BBMake``,
interlocks.

Physics: the world switch named by the mock (if the world has one) follows the relays. Pixel numbering is the
driver's: the slots in order; a multiplexer card's channels are pixels, a matrix card's columns on the row
wired to the instrument (option ``row``, default 1) are (with a 7012 in slot 1, crosspoint ``1!1!n`` is
pixel n; with a 7011 in slot 1 and a 7012 in slot 2, ``2!1!3`` is pixel 43). Closing pixel n selects world
switch channel n. The world's switch has one common terminal, so with several pixels closed the
lowest-numbered is routed (the mock records every closed channel); a crosspoint on another row, or a pixel
the world switch has no channel for, routes nothing. Time: each command that moves relays charges the
card's relay operate/settle time plus the slot's STIMe to the clock (open and close phases counted
separately).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

from mock_instruments.scpi import Choice, Num, Raw, ScpiError, ScpiInstrument, scpi


@dataclass(frozen=True)
class CardType:
    """A 7001 card: a matrix of ``rows`` × ``size`` crosspoints, or (rows 0) ``size`` channels."""

    rows: int
    size: int
    relay_s: float

    def count(self) -> int:
        return self.rows * self.size if self.rows else self.size


CARDS: dict[str, CardType] = {"C7011": CardType(0, 40, 3e-3), "C7012": CardType(4, 10, 3e-3),
                              "C7013": CardType(0, 20, 5e-3), "C7015": CardType(0, 40, 0.5e-3),
                              "NONE": CardType(0, 0, 0.0)}
_ITEM = re.compile(r"^\d+(!\d+){1,2}$")
Channel = tuple[int, ...]  # (slot, channel) or (slot, row, column)


class MockKeithley7001(ScpiInstrument):
    """The simulated 7001 (options: ``cards`` per slot, e.g. ``("7012",)`` or ``("7011", "7012")``, ``row``
    (the matrix row wired to the instrument), ``serial``, and the base options)."""

    model = "keithley7001"
    slot_count = 2

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        cards = tuple(options.pop("cards", ("7011",)))
        self.row = int(options.pop("row", 1))
        serial = options.pop("serial", f"{zlib.crc32(name.encode()) % 1000000:06d}")
        self.idn = f"KEITHLEY INSTRUMENTS INC.,MODEL 7001,{serial},B06  /A02"
        if len(cards) > self.slot_count:
            raise ValueError(f"the 7001 has {self.slot_count} slots, got cards {cards!r}")
        self.cards = [self._card_name(c) for c in cards] + ["NONE"] * (self.slot_count - len(cards))
        if not 1 <= self.row <= 4:
            raise ValueError(f"row = {self.row}: a matrix card has rows 1..4")
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
    def _card(self, slot: int) -> CardType:
        if not 1 <= slot <= self.slot_count:
            raise ScpiError(-222, f"no slot {slot}")
        return CARDS[self.cards[slot - 1]]

    def _entry(self, text: str) -> Channel:
        """One ``s!c`` / ``s!r!c`` entry, checked against the card in its slot."""
        if not _ITEM.match(text):
            raise ScpiError(-224, f"bad channel {text!r}")
        channel = tuple(int(part) for part in text.split("!"))
        card = self._card(channel[0])
        if card.count() == 0:
            raise ScpiError(-222, f"{text}: slot {channel[0]} is empty")
        if (len(channel) == 3) != (card.rows > 0):
            notation = "slot!row!column" if card.rows else "slot!channel"
            raise ScpiError(-224, f"{text}: slot {channel[0]} ({self.cards[channel[0] - 1]}) takes {notation}")
        limits = (card.rows, card.size) if card.rows else (card.size,)
        if not all(1 <= value <= limit for value, limit in zip(channel[1:], limits, strict=True)):
            raise ScpiError(-222, f"{text}: beyond {self.cards[channel[0] - 1]}")
        return channel

    def parse_list(self, text: str) -> list[Channel]:
        """``(@1!1,1!3:1!5)`` -> [(1, 1), (1, 3), (1, 4), (1, 5)], checked against the installed cards."""
        body = text.replace(" ", "")
        if not (body.startswith("(@") and body.endswith(")")):
            raise ScpiError(-224, f"expected a channel list (@...), got {text}")
        channels: list[Channel] = []
        for item in filter(None, body[2:-1].split(",")):
            first_text, _, last_text = item.partition(":")
            first = self._entry(first_text)
            last = self._entry(last_text) if last_text else first
            if last[0] != first[0]:
                raise ScpiError(-224, f"the range {item!r} spans two slots")
            channels.extend(self._between(first, last))
        if not channels:
            raise ScpiError(-224, "empty channel list")
        return channels

    def _between(self, first: Channel, last: Channel) -> list[Channel]:
        """The channels of a range, row by row for a matrix."""
        card = self._card(first[0])
        width = card.size if card.rows else 1
        index = [(c[1] - 1) * width + c[-1] - 1 if card.rows else c[1] - 1 for c in (first, last)]
        out: list[Channel] = []
        for k in range(min(index), max(index) + 1):
            out.append((first[0], k // width + 1, k % width + 1) if card.rows else (first[0], k + 1))
        return out

    def pixel(self, channel: Channel) -> int | None:
        """The driver's pixel number of a channel (see the module docstring); None off the instrument row."""
        offset = sum(CARDS[c].size for c in self.cards[: channel[0] - 1])
        if len(channel) == 3:
            return offset + channel[2] if channel[1] == self.row else None
        return offset + channel[1]

    def _move(self, opened: list[Channel], closed: list[Channel]) -> None:
        """Actuate relays (charging their time) and route the world's switch."""
        opened = [c for c in opened if c in self.closed]
        closed = [c for c in dict.fromkeys(closed) if c not in self.closed]
        for phase in (opened, closed):
            if phase:
                slots = {c[0] for c in phase}
                self.world.clock.sleep(max(CARDS[self.cards[s - 1]].relay_s + self.settling_s[s - 1]
                                           for s in slots))
        self.closed = [c for c in self.closed if c not in opened] + closed
        switch = self.world.switches.get(self.name)
        if switch is None:
            return
        pixels = sorted(p for p in map(self.pixel, self.closed) if p is not None)
        routed = pixels[0] if pixels and pixels[0] in switch.channels else None
        if switch.selected != routed:
            self.world.select_switch(self.name, routed)

    @staticmethod
    def format_list(channels: list[Channel]) -> str:
        return "(@" + ",".join("!".join(map(str, c)) for c in sorted(channels)) + ")"

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

    @scpi("*OPT?")
    def _options(self) -> str:
        return ",".join(card.removeprefix("C") for card in self.cards)

    @scpi("SYSTem:PRESet")
    def _preset(self) -> None:
        self.reset()
