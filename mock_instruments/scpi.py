"""A SCPI command engine for instrument mocks: declare a model's command tree once, get the grammar free.

Declaring a model
-----------------
Subclass :class:`ScpiInstrument` and declare each header once, in the notation of the programming manual:
upper-case letters are the short form, ``[...]`` marks an optional node, ``#`` after a node accepts a numeric
suffix (``SOURce#`` accepts ``SOUR`` = ``SOUR1``; ``OUTPut#2`` accepts suffixes 1..2, anything else is
-114), a trailing ``?`` declares the query form::

    class MockSupply(ScpiInstrument):
        model = "acme_psu"
        idn = "ACME,PSU-1,0001,1.0"

        # a setting = command + query (+ MIN/MAX/DEF, *RST default, range check -> -222) in one line
        level_V = Setting("SOURce#:VOLTage[:LEVel][:IMMediate][:AMPLitude]", Num(-20, 20, units="V"), 0.0)
        output_on = Setting("OUTPut#[:STATe]", Bool(), False, on_change="_output_changed")
        function = Setting("SOURce#:FUNCtion[:MODE]", Choice("VOLTage", "CURRent"), "VOLTage")

        @scpi("MEASure:CURRent[:DC]?")                     # a query: return str | float | int | bool
        def _measure_current(self) -> float:
            return self.world.current_A(self.name)

        @scpi("SOURce#:LIST:VOLTage", Rest(Num(-20, 20, units="V")))   # typed parameters, converted
        def _list(self, levels: list[float]) -> None:                  # before the handler runs
            self.levels = levels

        def _output_changed(self, on: bool) -> None:
            self.world.apply_voltage(self.name, self.level_V if on else None)

Parameter types: :class:`Num` (NRf, MIN/MAX/DEF, SI multipliers with the declared unit: ``10 mV``,
``1KHZ``; -222 outside [min, max]), :class:`Bool` (ON/OFF/1/0), :class:`Choice` (mnemonics, short or long;
returns the declared spelling), :class:`Str` (quoted string), :class:`ChannelList` (``(@1,3:5)``),
:class:`Raw`; wrap in :class:`Opt` for an optional parameter and :class:`Rest` for a variadic tail.
``self.call`` holds the numeric suffixes and the matched node names while a handler runs. Raise
:class:`ScpiError` with a SCPI code from a handler; the engine queues it (with its ESR bit) and sends no
reply to a query that failed.

Stack several ``@scpi`` on one handler for symmetric commands (``self.call.nodes`` tells ``VOLTAGE`` from
``CURRENT``); where two declarations match a header, the subclass's and then the first declared wins.
Hooks to override: ``reset()`` (``*RST``; call super), ``pending_until_s()`` (when a running operation ends,
for ``*WAI``/``*OPC?``/``*OPC``), ``trigger()`` (``*TRG``), ``format_error()``, ``error_queue_size``;
``Setting(..., check="_method")`` validates before a value is stored. See keithley2450.py for a full model.

The engine implements the IEEE 488.2 / SCPI-99 message rules: ``;``-chained units, a unit without a leading
``:`` is relative to the previous unit's path, common commands (``*IDN?``, ``*RST``, ``*CLS``, ``*ESR?``,
``*ESE``, ``*SRE``, ``*STB?``, ``*OPC``, ``*OPC?``, ``*WAI``, ``*TRG``) anywhere in a chain, the error queue
(``SYSTem:ERRor[:NEXT]?``, ``0,"No error"`` when empty, -350 on overflow), and ESR bits. A command error
(-1xx) discards the rest of the message; an execution error (-2xx) does not. Replies to several queries in
one message are joined with ``;``. Resolution of a header is cached, so a repeated command costs a dict
lookup.

Layout: this module is the engine (message handling, header resolution, status model, common commands) and
the public face: everything a model declares with is importable from here. The parts live in
:mod:`mock_instruments.scpi_params` (parameter types and parsing), :mod:`mock_instruments.scpi_commands`
(patterns, ``@scpi``, :class:`Setting`) and :mod:`mock_instruments.scpi_errors` (error codes, ESR bits).
"""

from __future__ import annotations

import math
import re
from collections import deque
from typing import Any, ClassVar

from mock_instruments.base import MockInstrument
from mock_instruments.scpi_commands import (
    Call,
    Command,
    Node,
    Resolved,
    Setting,
    match_nodes,
    parse_pattern,
    scpi,
    stack,
)
from mock_instruments.scpi_errors import (
    ERRORS,
    ESR_CME,
    ESR_DDE,
    ESR_EXE,
    ESR_OPC,
    ESR_QYE,
    ScpiError,
    esr_bit,
)
from mock_instruments.scpi_params import (
    Bool,
    ChannelList,
    Choice,
    Num,
    Opt,
    Param,
    Raw,
    Rest,
    Str,
    convert_params,
    short_form,
    split_params,
    unquote,
)

__all__ = [
    "ERRORS", "ESR_CME", "ESR_DDE", "ESR_EXE", "ESR_OPC", "ESR_QYE", "Bool", "Call", "ChannelList", "Choice",
    "Command", "Node", "Num", "Opt", "Param", "Raw", "Resolved", "Rest", "ScpiError", "ScpiInstrument",
    "Setting", "Str", "convert_params", "esr_bit", "fmt", "parse_pattern", "scpi", "short_form",
    "split_params", "split_units", "stack", "unquote",
]


def fmt(value: Any) -> str:
    """Reply formatting: bool -> 1/0, int -> NR1, float -> NR3, str as is."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6E}" if math.isfinite(value) else ("9.9E+37" if value > 0 else "-9.9E+37")
    return str(value)


# ------------------------------------------------------------------------------------ the engine
def split_units(message: str) -> list[str]:
    """Split a program message on ``;`` outside quoted strings."""
    units, start, quote = [], 0, ""
    for i, c in enumerate(message):
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == ";":
            units.append(message[start:i])
            start = i + 1
    if quote:
        raise ScpiError(-102, "unterminated string")
    units.append(message[start:])
    return units


_HEADER = re.compile(r"^:?(\*?[A-Za-z][A-Za-z0-9_]*)(:[A-Za-z][A-Za-z0-9_]*)*\??$")
_UNIT = re.compile(r"(\S+)\s*(.*)$", re.S)
_TYPED_NODE = re.compile(r"^([A-Za-z][A-Za-z_]*?)(\d*)$")


class ScpiInstrument(MockInstrument):
    """A mock that speaks SCPI; subclasses declare their commands (see the module docstring)."""

    error_queue_size: ClassVar[int] = 10
    _commands: ClassVar[list[Command]] = []
    _common: ClassVar[dict[tuple[str, bool], Command]] = {}
    _resolved: ClassVar[dict[tuple[tuple[str, ...], bool], Resolved | int]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        commands: list[Command] = []
        seen: set[str] = set()
        for klass in cls.__mro__:
            for attr, value in vars(klass).items():
                if attr in seen:
                    continue
                seen.add(attr)
                if isinstance(value, Setting):
                    commands.extend(value.commands())
                for pattern, params in getattr(value, "_scpi", ()):
                    nodes, query = parse_pattern(pattern)
                    commands.append(Command(pattern, nodes, query, params, value))
        cls._commands = [c for c in commands if not c.nodes[0].long.startswith("*")]
        cls._common = {(c.nodes[0].long, c.query): c for c in commands if c.nodes[0].long.startswith("*")}
        cls._resolved = {}

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        self._values: dict[str, Any] = {}
        self.errors: deque[tuple[int, str]] = deque()
        self.esr = self.ese = self.sre = 0
        self.call = Call()
        super().__init__(world, name, **options)

    # ---------------------------------------------------------------------------- message handling
    def handle(self, message: str) -> str | None:
        replies: list[str] = []
        path: list[str] = []
        try:
            units = split_units(message.strip())
        except ScpiError as exc:
            self.push_error(exc.code, exc.detail)
            return None
        for unit in units:
            unit = unit.strip()
            if not unit:
                continue
            try:
                path = self._execute(unit, path, replies)
            except ScpiError as exc:
                self.push_error(exc.code, exc.detail)
                if esr_bit(exc.code) == ESR_CME:
                    break
        return ";".join(replies) if replies else None

    def _execute(self, unit: str, path: list[str], replies: list[str]) -> list[str]:
        header, argument = _UNIT.match(unit).groups()  # type: ignore[union-attr]
        if not _HEADER.match(header):
            raise ScpiError(-102 if re.fullmatch(r"[\w:*?]+", header) else -101, header)
        query = header.endswith("?")
        bare = header.rstrip("?")
        if bare.lstrip(":").startswith("*"):
            command = self._common.get((bare.lstrip(":").upper(), query))
            if command is None:
                raise ScpiError(-113, header)
            suffixes: tuple[int, ...] = ()
            nodes: tuple[str, ...] = (command.nodes[0].long,)
            new_path = path
        else:
            typed = bare.lstrip(":").upper().split(":")
            full = typed if bare.startswith(":") else path + typed
            command, suffixes, nodes = self._resolve(tuple(full), query)
            new_path = full[:-1]
        values = convert_params(command.params, split_params(argument))
        self.call = Call(suffixes, nodes, query)
        result = command.handler(self, *values)
        if query:
            if result is None:
                raise ScpiError(-200, "query without a reply")
            replies.append(fmt(result))
        return new_path

    def _resolve(self, typed: tuple[str, ...], query: bool) -> Resolved:
        key = (typed, query)
        hit = self._resolved.get(key)
        if hit is None:
            hit = self._lookup(typed, query)
            if len(self._resolved) < 4096:
                self._resolved[key] = hit
        if isinstance(hit, int):
            raise ScpiError(hit, ":".join(typed) + ("?" if query else ""))
        return hit

    def _lookup(self, typed: tuple[str, ...], query: bool) -> Resolved | int:
        parts: list[tuple[str, int | None]] = []
        for token in typed:
            m = _TYPED_NODE.match(token)
            if m is None:
                return -102
            parts.append((m.group(1), int(m.group(2)) if m.group(2) else None))
        error = -113
        for command in self._commands:
            if command.query != query:
                continue
            found = match_nodes(command.nodes, parts)
            if found is not None:
                if found[0] == 0:
                    return command, found[1], found[2]
                error = -114
        return error

    # ------------------------------------------------------------------------------- status model
    def push_error(self, code: int, detail: str = "") -> None:
        """Queue an error (the last slot becomes -350 when the queue is full) and set its ESR bit."""
        self.esr |= esr_bit(code)
        if len(self.errors) >= self.error_queue_size:
            self.errors[-1] = (-350, "")
            return
        self.errors.append((code, detail))

    def on_query_interrupted(self) -> None:
        self.push_error(-410)

    def on_query_unterminated(self) -> None:
        self.push_error(-420)

    def format_error(self, code: int, detail: str) -> str:
        text = ERRORS.get(code, "Device-specific error")
        return f'{code},"{text};{detail}"' if detail else f'{code},"{text}"'

    def status_byte(self) -> int:
        stb = (4 if self.errors else 0) | (32 if self.esr & self.ese else 0)
        return stb | (64 if stb & self.sre else 0)

    def pending_until_s(self) -> float | None:
        """When the operations now running (a sweep) finish, in clock seconds; None if idle."""
        return None

    def wait_pending(self) -> None:
        """Let the clock run until pending operations complete (``*WAI``, ``*OPC?``)."""
        while (until := self.pending_until_s()) is not None:
            self.world.clock.sleep(max(0.0, until - self.world.clock.now()))
            self.world.advance_to(max(until, self.world.clock.now()))  # float rounding must not stall

    def reset(self) -> None:
        """``*RST``: every :class:`Setting` back to its default; subclasses extend."""
        self._values.clear()

    # ---------------------------------------------------------------------------- common commands
    @scpi("*IDN?")
    def _idn(self) -> str:
        return self.idn

    @scpi("*RST")
    def _rst(self) -> None:
        self.reset()

    @scpi("*CLS")
    def _cls(self) -> None:
        self.errors.clear()
        self.esr = 0

    @scpi("*ESR?")
    def _esr_query(self) -> int:
        if self.pending_until_s() is None and self._opc_armed:
            self.esr |= ESR_OPC
            self._opc_armed = False
        value, self.esr = self.esr, 0
        return value

    _opc_armed = False

    @scpi("*ESE", Num(0, 255, integer=True))
    def _ese(self, value: int) -> None:
        self.ese = value

    @scpi("*ESE?")
    def _ese_query(self) -> int:
        return self.ese

    @scpi("*SRE", Num(0, 255, integer=True))
    def _sre(self, value: int) -> None:
        self.sre = value

    @scpi("*SRE?")
    def _sre_query(self) -> int:
        return self.sre

    @scpi("*STB?")
    def _stb(self) -> int:
        return self.status_byte()

    @scpi("*OPC")
    def _opc(self) -> None:
        if self.pending_until_s() is None:
            self.esr |= ESR_OPC
        else:
            self._opc_armed = True

    @scpi("*OPC?")
    def _opc_query(self) -> int:
        self.wait_pending()
        return 1

    @scpi("*WAI")
    def _wai(self) -> None:
        self.wait_pending()

    @scpi("*TRG")
    def _trg(self) -> None:
        self.trigger()

    def trigger(self) -> None:
        """``*TRG``: models with a bus trigger override this."""

    @scpi("*TST?")
    def _tst(self) -> int:
        return 0

    @scpi("SYSTem:ERRor[:NEXT]?")
    def _error_next(self) -> str:
        code, detail = self.errors.popleft() if self.errors else (0, "")
        return self.format_error(code, detail)

    @scpi("SYSTem:ERRor:COUNt?")
    def _error_count(self) -> int:
        return len(self.errors)

    @scpi("SYSTem:ERRor:ALL?")
    def _error_all(self) -> str:
        entries = [self.format_error(*e) for e in self.errors] or [self.format_error(0, "")]
        self.errors.clear()
        return ",".join(entries)
