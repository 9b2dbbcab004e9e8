"""Declaring an SCPI command tree: header patterns in manual notation (:func:`parse_pattern`), the
:func:`scpi` handler decorator (:func:`stack` for a list of patterns), :class:`Setting` (a command and its
query in one declaration), and matching a typed header against a pattern (:func:`match_nodes`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from mock_instruments.scpi_params import Choice, Num, Opt, Param, Str, short_form


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


def match_nodes(nodes: tuple[Node, ...], typed: list[tuple[str, int | None]], i: int = 0, j: int = 0,
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
        sub = match_nodes(nodes, typed, i + 1, j + 1)
        if sub is not None:
            bad = suffix is not None and not 1 <= suffix <= node.max_suffix
            own = (suffix or 1,) if node.max_suffix else ()
            return max(sub[0], int(bad)), own + sub[1], (node.long, *sub[2])
    if node.optional:
        sub = match_nodes(nodes, typed, i + 1, j)
        if sub is not None:
            return sub[0], ((1,) if node.max_suffix else ()) + sub[1], sub[2]
    return None


def scpi(pattern: str, *params: Param) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a handler for ``pattern`` (stack several to share a handler)."""

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        function.__dict__.setdefault("_scpi", []).append((pattern, params))
        return function

    return mark


def stack(patterns: list[str], *params: Param) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare one handler for several patterns sharing their parameters (``@scpi`` for each)."""

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        for pattern in patterns:
            scpi(pattern, *params)(function)
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

