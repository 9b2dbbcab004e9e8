"""SCPI parameter types and their parsing: how a program message's parameter list is split into tokens and
each token is converted (NRf with MIN/MAX/DEF and SI multipliers, booleans, mnemonics, strings, channel
lists; optional and variadic parameters). Every refusal is a :class:`ScpiError` with its SCPI code."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from mock_instruments.scpi_errors import ScpiError


def short_form(mnemonic: str) -> str:
    return "".join(c for c in mnemonic if c.isupper() or c.isdigit() or c == "*")


def unquote(token: str) -> str | None:
    """The content of a quoted string token, or None if the token is not quoted."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return token[1:-1].replace(token[0] * 2, token[0])
    return None



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
                raise ScpiError(-222, f"{value:.10g} not in [{self.min_value:.10g}, {self.max_value:.10g}]")
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
