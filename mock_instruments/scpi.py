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
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from mock_instruments.base import MockInstrument

ERRORS: dict[int, str] = {
    0: "No error", -100: "Command error", -101: "Invalid character", -102: "Syntax error",
    -104: "Data type error", -108: "Parameter not allowed", -109: "Missing parameter",
    -113: "Undefined header", -114: "Header suffix out of range", -131: "Invalid suffix",
    -138: "Suffix not allowed", -200: "Execution error", -221: "Settings conflict",
    -222: "Data out of range", -224: "Illegal parameter value", -350: "Queue overflow",
    -410: "Query INTERRUPTED", -420: "Query UNTERMINATED",
}
ESR_OPC, ESR_QYE, ESR_DDE, ESR_EXE, ESR_CME = 1, 4, 8, 16, 32


class ScpiError(Exception):
    """Raised by a handler (or the parser): ``code`` from :data:`ERRORS`, optional device detail."""

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(f"{code},{ERRORS.get(code, 'Error')}{'; ' + detail if detail else ''}")
        self.code = code
        self.detail = detail


def esr_bit(code: int) -> int:
    """The standard-event-register bit an error code sets."""
    if -199 <= code <= -100:
        return ESR_CME
    if -299 <= code <= -200:
        return ESR_EXE
    if -499 <= code <= -400:
        return ESR_QYE
    return ESR_DDE


def fmt(value: Any) -> str:
    """Reply formatting: bool -> 1/0, int -> NR1, float -> NR3, str as is."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6E}" if math.isfinite(value) else ("9.9E+37" if value > 0 else "-9.9E+37")
    return str(value)


def short_form(mnemonic: str) -> str:
    return "".join(c for c in mnemonic if c.isupper() or c.isdigit() or c == "*")


def unquote(token: str) -> str | None:
    """The content of a quoted string token, or None if the token is not quoted."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return token[1:-1].replace(token[0] * 2, token[0])
    return None


# --------------------------------------------------------------------------------------- parameters
_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)$")
_MULTIPLIERS = {"EX": 1e18, "PE": 1e15, "T": 1e12, "G": 1e9, "MA": 1e6, "K": 1e3, "M": 1e-3,
                "U": 1e-6, "N": 1e-9, "P": 1e-12, "F": 1e-15, "A": 1e-18, "": 1.0}


class Param:
    """A parameter type: ``convert(token)`` returns the value or raises :class:`ScpiError`."""

    def convert(self, token: str) -> Any:
        return token


class Raw(Param):
    """The token exactly as sent."""


@dataclass(frozen=True)
class Num(Param):
    """NRf with MIN/MAX/DEF and SI multipliers on ``units`` (e.g. "V", "A", "HZ", "S", "OHM")."""

    min_value: float = -math.inf
    max_value: float = math.inf
    default: float | None = None
    units: str = ""
    integer: bool = False

    def convert(self, token: str) -> float | int:
        word = token.upper()
        if word in ("MIN", "MINIMUM"):
            value = self.min_value
        elif word in ("MAX", "MAXIMUM"):
            value = self.max_value
        elif word in ("DEF", "DEFAULT") and self.default is not None:
            value = self.default
        else:
            m = _NUMBER.match(token)
            if m is None:
                raise ScpiError(-104, f"expected a number, got {token!r}")
            value = float(m.group(1)) * self._multiplier(m.group(2).upper())
            if not self.min_value <= value <= self.max_value:
                raise ScpiError(-222, f"{value:g} not in [{self.min_value:g}, {self.max_value:g}]")
        return round(value) if self.integer else float(value)

    def _multiplier(self, suffix: str) -> float:
        if not suffix:
            return 1.0
        unit = self.units.upper()
        if not unit:
            raise ScpiError(-138)
        if not suffix.endswith(unit):
            raise ScpiError(-131, suffix)
        prefix = suffix[: -len(unit)]
        if prefix == "M" and unit in ("HZ", "OHM"):  # MHZ and MOHM mean mega (SCPI-99 7.7.3)
            return 1e6
        if prefix not in _MULTIPLIERS:
            raise ScpiError(-131, suffix)
        return _MULTIPLIERS[prefix]


class Bool(Param):
    """ON/OFF/1/0 (any number: non-zero is ON)."""

    def convert(self, token: str) -> bool:
        word = token.upper()
        if word in ("ON", "1"):
            return True
        if word in ("OFF", "0"):
            return False
        if unquote(token) is not None:
            raise ScpiError(-104, "expected ON|OFF")
        try:
            return round(float(token)) != 0
        except ValueError:
            raise ScpiError(-224, f"expected ON|OFF, got {token!r}") from None


@dataclass(frozen=True, init=False)
class Choice(Param):
    """One of several mnemonics in manual notation (``"VOLTage"``); returns the declared spelling.

    ``quoted``: False = bare mnemonic only, True = quoted string only, None = either."""

    options: tuple[str, ...]
    quoted: bool | None

    def __init__(self, *options: str, quoted: bool | None = False) -> None:
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "quoted", quoted)

    def convert(self, token: str) -> str:
        inner = unquote(token)
        if (inner is None and self.quoted is True) or (inner is not None and self.quoted is False):
            raise ScpiError(-104, f"expected {'a string' if self.quoted else 'a mnemonic'}, got {token}")
        word = (token if inner is None else inner).upper()
        for option in self.options:
            if word in (option.upper(), short_form(option)):
                return option
        raise ScpiError(-224, f"{token} not one of {', '.join(self.options)}")


@dataclass(frozen=True)
class Str(Param):
    """A quoted string (``quoted=False`` also accepts a bare word)."""

    quoted: bool = True

    def convert(self, token: str) -> str:
        inner = unquote(token)
        if inner is None and self.quoted:
            raise ScpiError(-104, f"expected a quoted string, got {token}")
        return token if inner is None else inner


@dataclass(frozen=True)
class Opt(Param):
    """An optional parameter: ``absent`` is passed when it is not sent."""

    param: Param
    absent: Any = None

    def convert(self, token: str) -> Any:
        return self.param.convert(token)


@dataclass(frozen=True)
class Rest(Param):
    """Every remaining parameter (at least ``min_count``), each converted by ``param``; a list."""

    param: Param
    min_count: int = 1

    def convert(self, token: str) -> Any:
        return self.param.convert(token)


@dataclass(frozen=True)
class ChannelList(Param):
    """A SCPI channel list ``(@1,3,5:8)`` -> ``["1", "3", "5", "6", "7", "8"]`` (items as strings; a
    numeric range ``a:b`` is expanded, anything else such as ``1!2`` is kept as written)."""

    def convert(self, token: str) -> list[str]:
        text = token.replace(" ", "")
        if not (text.startswith("(@") and text.endswith(")")):
            raise ScpiError(-104, f"expected a channel list (@...), got {token}")
        items: list[str] = []
        for item in filter(None, text[2:-1].split(",")):
            first, _, last = item.partition(":")
            if last and first.isdigit() and last.isdigit():
                step = 1 if int(last) >= int(first) else -1
                items.extend(str(k) for k in range(int(first), int(last) + step, step))
            else:
                items.append(item)
        return items


def convert_params(params: tuple[Param, ...], tokens: list[str]) -> list[Any]:
    values: list[Any] = []
    for i, param in enumerate(params):
        if isinstance(param, Rest):
            if max(len(tokens) - i, 0) < param.min_count:
                raise ScpiError(-109)
            values.append([param.convert(t) for t in tokens[i:]])
            return values
        if i >= len(tokens):
            if not isinstance(param, Opt):
                raise ScpiError(-109)
            values.append(param.absent)
        else:
            values.append(param.convert(tokens[i]))
    if len(tokens) > len(params):
        raise ScpiError(-108)
    return values


# ----------------------------------------------------------------------------------- command tree
@dataclass(frozen=True)
class Node:
    long: str
    short: str
    optional: bool
    max_suffix: int  # 0: no numeric suffix


_NODE = re.compile(r"([A-Za-z_]+)(#(\d*))?$")


def parse_pattern(pattern: str) -> tuple[tuple[Node, ...], bool]:
    """``"[:SENSe#]:CURRent[:DC]:NPLCycles?"`` -> nodes and whether it is the query form."""
    query = pattern.endswith("?")
    text = pattern[:-1] if query else pattern
    if text.startswith("*"):
        return (Node(text.upper(), text.upper(), False, 0),), query
    nodes = []
    for optional, name in re.findall(r"(\[?):?([A-Za-z_]+#?\d*)\]?", text):
        m = _NODE.match(name)
        if m is None:
            raise ValueError(f"bad SCPI pattern {pattern!r}")
        max_suffix = 0 if m.group(2) is None else int(m.group(3) or 1)
        nodes.append(Node(m.group(1).upper(), short_form(m.group(1)), bool(optional), max_suffix))
    return tuple(nodes), query


@dataclass
class Command:
    pattern: str
    nodes: tuple[Node, ...]
    query: bool
    params: tuple[Param, ...]
    handler: Callable[..., Any]


Resolved = tuple[Command, tuple[int, ...], tuple[str, ...]]


@dataclass
class Call:
    """What a running handler may ask about its invocation."""

    suffixes: tuple[int, ...] = ()
    nodes: tuple[str, ...] = ()
    query: bool = False

    @property
    def suffix(self) -> int:
        return self.suffixes[0] if self.suffixes else 1


def _match(nodes: tuple[Node, ...], typed: list[tuple[str, int | None]], i: int = 0, j: int = 0,
           ) -> tuple[int, tuple[int, ...], tuple[str, ...]] | None:
    """(status, suffixes, matched names); status 0 = match, 1 = match but suffix out of range."""
    if j == len(typed):
        if all(n.optional for n in nodes[i:]):
            rest = nodes[i:]
            return 0, tuple(1 for n in rest if n.max_suffix), ()
        return None
    if i == len(nodes):
        return None
    node = nodes[i]
    name, suffix = typed[j]
    if name in (node.long, node.short):
        sub = _match(nodes, typed, i + 1, j + 1)
        if sub is not None:
            bad = suffix is not None and not 1 <= suffix <= node.max_suffix
            own = (suffix or 1,) if node.max_suffix else ()
            return max(sub[0], int(bad)), own + sub[1], (node.long, *sub[2])
    if node.optional:
        sub = _match(nodes, typed, i + 1, j)
        if sub is not None:
            return sub[0], ((1,) if node.max_suffix else ()) + sub[1], sub[2]
    return None


def scpi(pattern: str, *params: Param) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a handler for ``pattern`` (stack several to share a handler)."""

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        function.__dict__.setdefault("_scpi", []).append((pattern, params))
        return function

    return mark


class Setting:
    """A class attribute declaring a setting's command and query, its *RST default and a change hook.

    Reads and writes of the attribute on an instance use the current value; ``check`` names a method
    called with the new value first (it may raise :class:`ScpiError`), ``on_change`` one called after the
    command set it.
    """

    def __init__(self, pattern: str, param: Param, default: Any, *, on_change: str | None = None,
                 check: str | None = None, query: bool = True, command: bool = True) -> None:
        if isinstance(param, Num) and param.default is None:
            param = replace(param, default=default)
        self.pattern, self.param, self.default = pattern, param, default
        self.on_change, self.check, self.query, self.command = on_change, check, query, command
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance._values.get(self.name, self.default)

    def __set__(self, instance: Any, value: Any) -> None:
        instance._values[self.name] = value

    def commands(self) -> list[Command]:
        out = []
        if self.command:
            def setter(instrument: Any, value: Any) -> None:
                if self.check:
                    getattr(instrument, self.check)(value)
                setattr(instrument, self.name, value)
                if self.on_change:
                    getattr(instrument, self.on_change)(value)

            nodes, _ = parse_pattern(self.pattern)
            out.append(Command(self.pattern, nodes, False, (self.param,), setter))
        if self.query:
            def getter(instrument: Any, limit: str | None = None) -> Any:
                if limit is not None and isinstance(self.param, Num):
                    return self.param.convert(limit)
                return self.format(getattr(instrument, self.name))

            nodes, _ = parse_pattern(self.pattern)
            limit = Opt(Choice("MINimum", "MAXimum", "DEFault")) if isinstance(self.param, Num) else None
            out.append(Command(self.pattern + "?", nodes, True, (limit,) if limit else (), getter))
        return out

    def format(self, value: Any) -> Any:
        if isinstance(self.param, Choice) and isinstance(value, str):
            text = short_form(value)
            return f'"{text}"' if self.param.quoted else text
        if isinstance(self.param, Str):
            return f'"{value}"'
        return value


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


def split_params(text: str) -> list[str]:
    """Split a parameter list on commas outside quotes and parentheses (channel lists stay whole)."""
    if not text.strip():
        return []
    tokens, start, quote, depth = [], 0, "", 0
    for i, c in enumerate(text):
        if quote:
            quote = "" if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            tokens.append(text[start:i].strip())
            start = i + 1
    tokens.append(text[start:].strip())
    if any(t == "" for t in tokens):
        raise ScpiError(-102, "empty parameter")
    return tokens


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
            found = _match(command.nodes, parts)
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
