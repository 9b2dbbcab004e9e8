"""Keithley 7001 switch system (two card slots), as the pixel multiplexer of a substrate.

Command set (Model 7001 Operator's Manual, SCPI reference, ROUTe subsystem, and its channel-list rules; the
card instruction manuals for their channel layouts): a channel is written as the card in its slot defines it,
``slot!channel`` for a multiplexer or switch card and ``slot!row!column`` for a matrix card, inside a
channel list ``(@...)``:

- ``:ROUT:CLOS (@1!1!3)`` close row 1 / column 3 of the matrix card in slot 1; ``:ROUT:OPEN (@...)`` open;
  ``:ROUT:OPEN ALL`` open every channel of both slots;
- ``:ROUT:CLOS:STAT?`` -> the list of closed channels, e.g. ``(@1!1!3)``, ``(@)`` when none;
- ``:ROUT:CLOS? (@1!1!3)`` -> ``1`` closed / ``0`` open;
- ``:ROUT:CONF:SLOT1:CTYP?`` -> the card type of slot 1 (``C7011``, ``C7012``, ``NONE``...);
- ``SYST:ERR?`` error queue (an invalid channel: ``-222,"Data out of range"``; the wrong notation for the
  card: ``-224,"Illegal parameter value"``), ``*IDN?``.

Cards: 7011 quad 1×10 multiplexer (``s!1``–``s!40``, banks of ten), 7012 4×10 matrix (``s!r!c``, rows 1–4,
columns 1–10; each crosspoint switches HI and LO), 7013 20 isolated switches, 7015 40-channel solid-state
multiplexer. Without ``cards`` the driver asks the instrument for them (``:ROUT:CONF:SLOTn:CTYP?``) before the
first channel is addressed, so a matrix is never addressed as a multiplexer.

Station channel numbering (the Switch role's ``select_channel(n)``): pixels are numbered across the slots
in order, slot 1 first. A multiplexer or switch card contributes its channels (a 7011: pixels 1–40 are
``1!1``–``1!40``); a matrix card contributes its columns on the row the measuring instrument is wired to
(``matrix_row``, default 1): with a 7012 in slot 1, pixel n (1–10) is the crosspoint ``1!<matrix_row>!n``,
i.e. the instrument on row ``matrix_row`` and pixel n's HI/LO pair on column n. A station whose wiring
differs gives the mapping itself, ``channel_map = {1 = "1!2!1", 2 = "1!2!2"}``: pixel -> channel, each
checked against the card in its slot. :meth:`Keithley7001.pixel_map` returns the mapping in use.

Coverage: select one pixel (open all, close one, verify), open all, per-channel close/open/state, closed-
channel read-back, card detection, error queue. Relay settling and break-before-make are the 7001's own
(card settling time, ``:ROUT:CONF:BBM``); the driver leaves them at their settings. Not covered: scan lists
and triggering (``:ROUT:SCAN``, ``:INIT``), memory patterns, interlocks, 4-pole configurations. Inferred
rather than read: the card-type reply format (``C7011``, the manual's CTYPe parameter names; any reply
containing a four-digit card number is understood) and which SCPI code the 7001 gives a channel of the wrong
notation (-224 assumed; the driver raises on any error the queue reports).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral
from typing import Any

from pymeasure.adapters import Adapter
from pymeasure.instruments import Instrument

from drivers.base import AdapterFactory, SCPILabInstrument, attempt_all
from labctl.clock import Clock
from labctl.errors import InstrumentError, ParameterError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Card:
    """A switch card: a matrix of ``rows`` × ``columns`` crosspoints, or (rows 0) ``columns`` channels."""

    rows: int
    columns: int

    @property
    def pixels(self) -> int:
        """How many station pixels the card gives: its channels, or a matrix's columns on one row."""
        return self.columns


#: Card models and their channel layouts (Keithley card instruction manuals).
CARDS: dict[str, Card] = {
    "7011": Card(0, 40),  # quad 1x10 multiplexer
    "7012": Card(4, 10),  # 4x10 matrix
    "7013": Card(0, 20),  # 20 isolated relay switches
    "7015": Card(0, 40),  # 40-channel solid-state multiplexer
}

_CARD_NUMBER = re.compile(r"(\d{4})")
_CHANNEL = re.compile(r"^\d+(!\d+){1,2}$")


def _channel(text: str) -> tuple[int, ...]:
    if not _CHANNEL.match(text):
        raise ValueError(f"bad channel {text!r}")
    return tuple(int(part) for part in text.split("!"))


def parse_channel_list(reply: str, columns: Mapping[int, int] | None = None) -> list[tuple[int, ...]]:
    """``(@1!1,1!3:1!5)`` -> [(1, 1), (1, 3), (1, 4), (1, 5)]; ``(@1!1!2)`` -> [(1, 1, 2)]; ``(@)`` -> [].

    A matrix range (``1!1!9:1!2!2``) runs row by row and needs the card's column count: ``columns``
    maps slot -> columns (ranges of single crosspoints and multiplexer ranges need none)."""
    text = reply.strip()
    if not (text.startswith("(@") and text.endswith(")")):
        raise ValueError(f"not a channel list: {reply!r}")
    channels: list[tuple[int, ...]] = []
    for item in (part.strip() for part in text[2:-1].split(",")):
        if not item:
            continue
        first_text, _, last_text = item.partition(":")
        first = _channel(first_text.strip())
        last = _channel(last_text.strip()) if last_text else first
        if len(first) != len(last) or first[0] != last[0]:
            raise ValueError(f"bad range {item!r} in {reply!r}")
        if len(first) == 2:
            channels.extend((first[0], ch) for ch in range(first[1], last[1] + 1))
            continue
        width = (columns or {}).get(first[0])
        if width is None:
            if first != last:
                raise ValueError(f"cannot expand the matrix range {item!r} without the card's columns")
            channels.append(first)
            continue
        for k in range((first[1] - 1) * width + first[2] - 1, (last[1] - 1) * width + last[2]):
            channels.append((first[0], k // width + 1, k % width + 1))
    return channels


def format_channel(channel: tuple[int, ...]) -> str:
    return "!".join(str(part) for part in channel)


class Keithley7001(SCPILabInstrument):
    """Keithley 7001 switch system (Switch role).

    :param cards: card model per slot, slot 1 first (``("7012",)`` for one 7012 in slot 1; ``""`` for an
        empty slot); None (the default) reads them from the instrument (:meth:`detect_cards`) before the
        first channel is addressed.
    :param matrix_row: the row of a matrix card the measuring instrument is wired to (1–4).
    :param channel_map: pixel -> channel (``{1: "1!2!1"}``) where the wiring differs from the numbering in
        the module docstring.
    """

    #: The role this driver plays (labctl.roles); its limits below become the role's capabilities.
    role = "switch"

    #: Pixels selectable with one 7011 or 7015 (a 7012 gives 10 per row); the instance knows its cards'.
    channel_count = 40
    slot_count = 2
    default_name = "Keithley 7001"

    closed_channel_list = Instrument.measurement(
        ":ROUT:CLOS:STAT?",
        """Get the closed channels as the instrument reports them (str channel list, e.g. ``(@1!1!3)``).""",
        cast=str, maxsplit=0,
    )

    def __init__(
        self,
        adapter: Adapter | str,
        name: str = "Keithley 7001",
        *,
        cards: tuple[str, ...] | None = None,
        matrix_row: int = 1,
        channel_map: Mapping[int, str] | None = None,
        address: str = "",
        adapter_factory: AdapterFactory | None = None,
        clock: Clock | None = None,
        **kwargs: Any,
    ) -> None:
        if not _is_int(matrix_row) or not 1 <= matrix_row <= 4:
            raise ParameterError(f"matrix_row must be an integer 1..4 (a 7012 has 4 rows), got {matrix_row!r}")
        for pixel, spec in dict(channel_map or {}).items():
            if not _is_int(pixel) or int(pixel) < 1 or not _CHANNEL.match(str(spec)):
                raise ParameterError(f"channel_map entries must be pixel (>= 1) -> \"slot!channel\" or "
                                     f"\"slot!row!column\"; got {pixel!r} -> {spec!r}")
        super().__init__(adapter, name, address=address, adapter_factory=adapter_factory, clock=clock,
                         **kwargs)
        self.selected: int | None = None
        self.matrix_row = int(matrix_row)
        self.channel_map = {int(pixel): str(spec) for pixel, spec in dict(channel_map or {}).items()}
        self.cards: tuple[str, ...] | None = None
        if cards is not None:
            self._set_cards(tuple(cards))

    # ------------------------------------------------------------------------- cards and channels
    @classmethod
    def channel_count_for(cls, options: Mapping[str, Any]) -> int | None:
        """Pixels the named ``cards`` give (None when the cards are only known once connected)."""
        cards = options.get("cards")
        if not cards:
            return None
        return sum(CARDS[c].pixels for c in cards if c in CARDS)

    def _set_cards(self, cards: tuple[str, ...]) -> None:
        if len(cards) > self.slot_count:
            raise ParameterError(f"the 7001 has {self.slot_count} slots, got cards {cards!r}")
        unknown = [c for c in cards if c and c not in CARDS]
        if unknown:
            raise ParameterError(f"unknown switch card(s) {unknown}; known: {', '.join(CARDS)}")
        mapping = self._numbering(cards)
        for pixel, spec in self.channel_map.items():
            self._check_channel(cards, spec, f"channel_map[{pixel}]")
            mapping[pixel] = spec
        self.cards = cards
        self._pixels = mapping
        self.channel_count = max(mapping, default=0)

    def _numbering(self, cards: tuple[str, ...]) -> dict[int, str]:
        mapping: dict[int, str] = {}
        for slot, model in enumerate(cards, start=1):
            card = CARDS.get(model)
            if card is None:
                continue
            for k in range(1, card.pixels + 1):
                pixel = len(mapping) + 1
                mapping[pixel] = f"{slot}!{self.matrix_row}!{k}" if card.rows else f"{slot}!{k}"
        return mapping

    def _check_channel(self, cards: tuple[str, ...], spec: str, label: str) -> None:
        channel = _channel(spec)
        slot = channel[0]
        card = CARDS.get(cards[slot - 1]) if 1 <= slot <= len(cards) else None
        if card is None:
            raise ParameterError(f"{label} = {spec!r}: no card in slot {slot} (cards {cards!r})")
        if (len(channel) == 3) != (card.rows > 0):
            notation = "slot!row!column" if card.rows else "slot!channel"
            raise ParameterError(f"{label} = {spec!r}: the {cards[slot - 1]} in slot {slot} takes {notation}")
        limits = (card.rows, card.columns) if card.rows else (card.columns,)
        if not all(1 <= v <= limit for v, limit in zip(channel[1:], limits, strict=True)):
            raise ParameterError(f"{label} = {spec!r} is beyond the {cards[slot - 1]} in slot {slot}")

    def detect_cards(self) -> tuple[str, ...]:
        """Read the card type of each slot (``:ROUT:CONF:SLOTn:CTYP?``) and number the pixels from them."""
        found: list[str] = []
        with self.lock:
            for slot in range(1, self.slot_count + 1):
                reply = self.ask(f":ROUT:CONF:SLOT{slot}:CTYP?").strip()
                match = _CARD_NUMBER.search(reply)
                found.append(match.group(1) if match and match.group(1) in CARDS else "")
                if match and match.group(1) not in CARDS:
                    log.warning("%s: slot %d holds an unsupported card %r", self.name, slot, reply)
            while found and not found[-1]:
                found.pop()
            self._set_cards(tuple(found))
        return tuple(found)

    def _known_cards(self) -> tuple[str, ...]:
        if self.cards is None:
            self.detect_cards()
        assert self.cards is not None
        return self.cards

    def pixel_map(self) -> dict[int, str]:
        """Pixel number -> channel (``{1: "1!1!1", 2: "1!1!2", ...}`` for a 7012 in slot 1)."""
        self._known_cards()
        return dict(self._pixels)

    def channel_spec(self, channel: int) -> str:
        """Pixel number (1-based) -> its channel, ``slot!channel`` or ``slot!row!column``."""
        if not _is_int(channel) or channel < 1:
            raise ParameterError(f"channel must be an integer >= 1, got {channel!r}")
        with self.lock:
            self._known_cards()
            if int(channel) not in self._pixels:
                raise ParameterError(f"channel must be one of the pixels 1..{self.channel_count} of cards "
                                     f"{self.cards!r}, got {channel!r}")
            return self._pixels[int(channel)]

    def _columns(self) -> dict[int, int]:
        cards = self.cards or ()
        return {slot: CARDS[m].columns for slot, m in enumerate(cards, start=1) if m in CARDS and CARDS[m].rows}

    def closed_channels(self) -> list[str]:
        """The closed channels, as ``slot!channel`` / ``slot!row!column`` strings."""
        reply = self.closed_channel_list
        try:
            return [format_channel(c) for c in parse_channel_list(reply, self._columns())]
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
        """Whether the pixel's relay is closed (``:ROUT:CLOS? (@...)``)."""
        with self.lock:
            reply = self.ask(f":ROUT:CLOS? (@{self.channel_spec(channel)})").strip()
        if reply not in {"0", "1"}:
            raise InstrumentError(f"unexpected channel state {reply!r}", instrument=self.name,
                                  address=self.address)
        return reply == "1"

    # ------------------------------------------------------------------------- Switch role
    def select_channel(self, channel: int) -> None:
        """Open every relay, close ``channel`` (1-based) and verify that it is the only one closed."""
        with self.lock:
            spec = self.channel_spec(channel)
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
        with self.lock:
            cards = self._known_cards()
            return {
                "cards": ",".join(c or "none" for c in cards),
                "channel_count": self.channel_count,
                "matrix_row": self.matrix_row,
                "closed_channels": ",".join(self.closed_channels()),
            }

    def safe_state(self) -> None:
        """Open every relay. Idempotent."""
        attempt_all(self.name, self.address, [("open all relays", self.open_all)])


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)
