"""A small interpreter for the Lua statements Keithley TSP instruments accept, and a TSP instrument base.

TSP (Test Script Processor) instruments run each program message as a Lua 5.0 chunk (Series 2600B Reference
Manual, section 6 "Instrument programming" / "Fundamentals of scripting for TSP"). What is interpreted here:
assignments (``smua.source.levelv = 1``, ``a, b = f()``, ``local x = 2``), function calls
(``smua.measure.iv()``, ``print(a, b)``, ``t:m()``), expressions (numbers, strings, ``nil``/``true``/
``false``, table constructors ``{0.1, 0.2}``, field and index access, arithmetic ``+ - * / % ^``, unary
``-``/``not``/``#``, comparisons, ``and``/``or``, ``..``) and ``--`` comments; several statements per message.

Errors go to the instrument's error queue as the instrument reports them, and a failing message prints
nothing: a chunk that does not parse is not run at all (-285 "TSP Syntax error at line 1: ..."); a runtime
error stops the chunk where it happens (-286 "TSP Runtime error at line 1: attempt to index field `x' (a nil
value)", "attempt to call global `f' (a nil value)", ...). Control structures (``if``, ``for``, ``while``,
``function``, ...) are valid TSP but not simulated: they are reported as -285 naming the keyword.

Instrument objects are Python objects implementing :class:`TspObject` (``tsp_get``/``tsp_set``); functions are
Python callables taking the argument list and returning a tuple of results.

Layout: the syntax is :mod:`mock_instruments.tsp_parser`, evaluation :mod:`mock_instruments.tsp_interpreter`;
this module is the instrument side (:class:`TspInstrument`, :class:`Node`, :func:`arg`) and re-exports the
names instrument mocks use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mock_instruments.base import MockInstrument
from mock_instruments.tsp_interpreter import (
    Interpreter,
    LuaRuntimeError,
    Table,
    TspObject,
    describe,
    type_name,
)
from mock_instruments.tsp_parser import LuaSyntaxError, Parser, tokenize

__all__ = [
    "Builtin", "Interpreter", "LuaRuntimeError", "LuaSyntaxError", "Node", "ParameterRangeError", "Parser",
    "Table", "TspInstrument", "TspObject", "arg", "checked", "describe", "tokenize", "type_name",
]


class ParameterRangeError(Exception):
    """An attribute set outside its range: 1101 "Parameter too big" / 1102 "Parameter too small" (the
    attribute keeps its value)."""

    def __init__(self, too_big: bool) -> None:
        super().__init__("Parameter too big" if too_big else "Parameter too small")
        self.code = 1101 if too_big else 1102


def checked(value: Any, low: float, high: float, name: str) -> float:
    """``value`` as a float if it is a number in [low, high]; a Lua error or :class:`ParameterRangeError`."""
    if isinstance(value, bool) or not isinstance(value, float | int):
        raise LuaRuntimeError(f"bad argument to `{name}' (number expected, got {type(value).__name__})")
    if not low <= value <= high:
        raise ParameterRangeError(value > high)
    return float(value)


class Node(TspObject):
    """A TSP object from parts: ``attrs`` name -> (getter, setter or None), ``members`` name -> value
    (functions, child objects, constants)."""

    def __init__(self, name: str, attrs: dict[str, tuple[Callable[[], Any], Callable[[Any], None] | None]]
                 | None = None, members: dict[str, Any] | None = None) -> None:
        self.tsp_name = name
        self.attrs = attrs or {}
        self.members = members or {}

    def tsp_get(self, key: str) -> Any:
        if key in self.attrs:
            return self.attrs[key][0]()
        return self.members[key]

    def tsp_set(self, key: str, value: Any) -> None:
        setter = self.attrs[key][1] if key in self.attrs else None
        if setter is None:
            what = "read-only attribute" if key in self.attrs or key in self.members else "field"
            raise LuaRuntimeError(f"attempt to set {what} `{key}' of {self.tsp_name}")
        setter(value)


Builtin = Callable[[list[Any]], Any]


def arg(args: list[Any], k: int, name: str, kind: type | tuple[type, ...] = float, optional: bool = False
        ) -> Any:
    """Argument ``k`` (0-based) of a builtin, type-checked the way Lua reports bad arguments."""
    value = args[k] if k < len(args) else None
    if value is None and optional:
        return None
    if kind is float and isinstance(value, float | int) and not isinstance(value, bool):
        return float(value)
    if kind is not float and isinstance(value, kind):
        return value
    expected = "number" if kind is float else getattr(kind, "__name__", "value")
    raise LuaRuntimeError(f"bad argument #{k + 1} to `{name}' ({expected} expected, got {type_name(value)})")


class TspInstrument(MockInstrument):
    """Base of TSP mocks: runs each message as a chunk, an error queue, ``print``-style output.

    Subclasses fill :attr:`globals` with their objects and functions and may override
    :meth:`common_command` for the IEEE 488.2 commands (``*IDN?``, ``*RST``, ...) TSP accepts.
    """

    error_queue_size = 1000
    ascii_precision = 6

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        super().__init__(world, name, **options)
        self.errors: list[tuple[int, str, int]] = []
        self.output_lines: list[str] = []
        self.globals: dict[str, Any] = {}
        self.interpreter = Interpreter(self.globals)

    def is_query(self, message: str) -> bool:
        text = message.strip()
        return "print" in text or (text.startswith("*") and text.endswith("?"))

    def push_error(self, code: int, message: str, severity: int = 20) -> None:
        if len(self.errors) >= self.error_queue_size:
            self.errors[-1] = (-350, "Queue overflow", 20)
            return
        self.errors.append((code, message, severity))

    def handle(self, message: str) -> str | None:
        text = message.strip()
        self.output_lines = []
        if text.startswith("*"):
            reply = self.common_command(text.upper())
            if reply is not False:
                return reply if isinstance(reply, str) else None
        try:
            self.interpreter.run(text)
        except LuaSyntaxError as exc:
            self.push_error(-285, f"TSP Syntax error at line 1: {exc}")
        except LuaRuntimeError as exc:  # what was printed before the error has been sent
            self.push_error(-286, f"TSP Runtime error at line 1: {exc}")
        return "\n".join(self.output_lines) if self.output_lines else None

    def common_command(self, command: str) -> str | bool | None:
        """An IEEE 488.2 common command: its reply, None for none, False if it is not one (run as TSP)."""
        return False

    def tostring(self, value: Any) -> str:
        """How ``print`` shows a value (numbers with ``format.asciiprecision`` significant digits)."""
        if value is None:
            return "nil"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float | int):
            return f"{float(value):.{self.ascii_precision - 1}e}"
        if isinstance(value, str):
            return value
        return f"{type_name(value)}: 0x{id(value) & 0xffffff:06x}"

    def print_(self, args: list[Any]) -> tuple[()]:
        self.output_lines.append("\t".join(self.tostring(a) for a in args))
        return ()
