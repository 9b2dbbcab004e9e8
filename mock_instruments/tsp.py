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
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from mock_instruments.base import MockInstrument

_TOKEN = re.compile(r"""
    (?P<space>\s+|--[^\n]*) |
    (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?) |
    (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*') |
    (?P<name>[A-Za-z_][A-Za-z0-9_]*) |
    (?P<op>\.\.\.|\.\.|==|~=|<=|>=|[-+*/%^#<>=(){}\[\];:,.])
""", re.VERBOSE)
_KEYWORDS = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in", "local",
             "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}
_UNSUPPORTED = {"break", "do", "for", "function", "if", "repeat", "return", "while"}
_BINARY = {"or": 1, "and": 2, "<": 3, ">": 3, "<=": 3, ">=": 3, "~=": 3, "==": 3, "..": 4, "+": 5, "-": 5,
           "*": 6, "/": 6, "%": 6, "^": 8}
_UNARY_PRIORITY = 7


class LuaSyntaxError(Exception):
    pass


class LuaRuntimeError(Exception):
    pass


class TspObject:
    """An instrument object seen from TSP: named attributes and functions."""

    tsp_name = "object"

    def tsp_get(self, key: str) -> Any:
        """The attribute's value; KeyError if there is none (TSP sees nil)."""
        raise KeyError(key)

    def tsp_set(self, key: str, value: Any) -> None:
        raise LuaRuntimeError(f"attempt to set unknown attribute `{key}'")


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


class Table:
    """A Lua table (array part in ``items`` as a dict 1..n, other keys too)."""

    def __init__(self, items: dict[Any, Any] | None = None) -> None:
        self.items = items or {}

    def array(self) -> list[Any]:
        out, k = [], 1
        while k in self.items:
            out.append(self.items[k])
            k += 1
        return out


def tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise LuaSyntaxError(f"unexpected symbol near `{text[pos]}'")
        pos = m.end()
        kind = m.lastgroup
        value = m.group()
        if kind == "space":
            continue
        if kind == "number":
            tokens.append(("num", float(int(value, 16)) if value[:2].lower() == "0x" else float(value)))
        elif kind == "string":
            tokens.append(("str", bytes(value[1:-1], "utf-8").decode("unicode_escape")))
        elif kind == "name" and value in _KEYWORDS:
            tokens.append(("kw", value))
        else:
            tokens.append((kind or "op", value))
    tokens.append(("eof", "<eof>"))
    return tokens


class Parser:
    """Lua 5.0 statements and expressions (no control structures) -> nested tuples."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, Any]:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def near(self) -> str:
        kind, value = self.peek()
        return f"`{value if kind != 'num' else format(value, 'g')}'"

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, Any]:
        token = self.peek()
        if (value is not None and token[1] != value) or (kind is not None and token[0] != kind):
            expected = f"`{value}' expected" if value else f"<{kind}> expected"
            raise LuaSyntaxError(f"{expected} near {self.near()}")
        self.i += 1
        return token

    def accept(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] in ("op", "kw"):
            self.i += 1
            return True
        return False

    def chunk(self) -> list[tuple[Any, ...]]:
        statements = []
        while self.peek()[0] != "eof":
            statements.append(self.statement())
            self.accept(";")
        return statements

    def statement(self) -> tuple[Any, ...]:
        kind, value = self.peek()
        if kind == "kw" and value in _UNSUPPORTED:
            raise LuaSyntaxError(f"`{value}' blocks are not simulated")
        if self.accept("local"):
            names = [self.take(kind="name")[1]]
            while self.accept(","):
                names.append(self.take(kind="name")[1])
            values = self.explist() if self.accept("=") else []
            return ("local", names, values)
        target = self.suffixed()
        if self.peek()[1] in ("=", ","):
            targets = [target]
            while self.accept(","):
                targets.append(self.suffixed())
            self.take("=")
            for t in targets:
                if t[0] not in ("global", "index"):
                    raise LuaSyntaxError("syntax error near `='")
            return ("assign", targets, self.explist())
        if target[0] not in ("call", "method"):
            raise LuaSyntaxError(f"syntax error near {self.near()}")
        return ("expr", target)

    def explist(self) -> list[tuple[Any, ...]]:
        values = [self.expression()]
        while self.accept(","):
            values.append(self.expression())
        return values

    def expression(self, limit: int = 0) -> tuple[Any, ...]:
        kind, value = self.peek()
        if (kind == "op" and value in ("-", "#")) or (kind == "kw" and value == "not"):
            self.i += 1
            left: tuple[Any, ...] = ("unary", value, self.expression(_UNARY_PRIORITY))
        else:
            left = self.simple()
        while True:
            kind, op = self.peek()
            priority = _BINARY.get(op) if kind in ("op", "kw") else None
            if priority is None or priority <= limit:
                return left
            self.i += 1
            right_limit = priority - 1 if op in ("..", "^") else priority  # right associative
            left = ("binary", op, left, self.expression(right_limit))

    def simple(self) -> tuple[Any, ...]:
        kind, value = self.peek()
        if kind in ("num", "str"):
            self.i += 1
            return ("const", value)
        if kind == "kw" and value in ("nil", "true", "false"):
            self.i += 1
            return ("const", {"nil": None, "true": True, "false": False}[value])
        if value == "{" and kind == "op":
            return self.table()
        return self.suffixed()

    def table(self) -> tuple[Any, ...]:
        self.take("{")
        fields: list[tuple[Any, ...]] = []
        while not self.accept("}"):
            if self.peek()[0] == "name" and self.peek(1)[1] == "=":
                key = self.take(kind="name")[1]
                self.take("=")
                fields.append((("const", key), self.expression()))
            elif self.accept("["):
                key_expr = self.expression()
                self.take("]")
                self.take("=")
                fields.append((key_expr, self.expression()))
            else:
                fields.append((None, self.expression()))
            if not (self.accept(",") or self.accept(";")):
                self.take("}")
                break
        return ("table", fields)

    def suffixed(self) -> tuple[Any, ...]:
        kind, value = self.peek()
        if kind == "name":
            self.i += 1
            node: tuple[Any, ...] = ("global", value)
        elif self.accept("("):
            node = ("paren", self.expression())
            self.take(")")
        else:
            raise LuaSyntaxError(f"unexpected symbol near {self.near()}")
        while True:
            kind, value = self.peek()
            if kind != "op" and kind != "str":
                return node
            if value == "." and kind == "op":
                self.i += 1
                node = ("index", node, ("const", self.take(kind="name")[1]))
            elif value == "[" and kind == "op":
                self.i += 1
                key = self.expression()
                self.take("]")
                node = ("index", node, key)
            elif value == ":" and kind == "op":
                self.i += 1
                name = self.take(kind="name")[1]
                node = ("method", node, name, self.arguments())
            elif (value in ("(", "{") and kind == "op") or kind == "str":
                node = ("call", node, self.arguments())
            else:
                return node

    def arguments(self) -> list[tuple[Any, ...]]:
        kind, value = self.peek()
        if kind == "str":
            self.i += 1
            return [("const", value)]
        if value == "{":
            return [self.table()]
        self.take("(")
        if self.accept(")"):
            return []
        args = self.explist()
        self.take(")")
        return args


def describe(node: tuple[Any, ...]) -> str:
    """How Lua names an expression in an error: "global `x'", "field `y'", "local `z'"."""
    if node[0] == "global":
        return f"global `{node[1]}'"
    if node[0] == "index" and node[2][0] == "const" and isinstance(node[2][1], str):
        return f"field `{node[2][1]}'"
    return "a value"


def type_name(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, float | int):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Table):
        return "table"
    return "function" if callable(value) else "userdata"


class Interpreter:
    """Runs parsed chunks against ``globals`` (instrument objects, functions, user variables)."""

    def __init__(self, globals_: dict[str, Any]) -> None:
        self.globals = globals_
        self.locals: dict[str, Any] = {}

    def run(self, text: str) -> None:
        statements = Parser(text).chunk()  # a syntax error runs nothing
        self.locals = {}
        for statement in statements:
            self.execute(statement)

    def execute(self, statement: tuple[Any, ...]) -> None:
        kind = statement[0]
        if kind == "expr":
            self.evaluate(statement[1], many=True)
        elif kind == "local":
            values = self.values(statement[2], len(statement[1]))
            self.locals.update(zip(statement[1], values, strict=True))
        else:
            values = self.values(statement[2], len(statement[1]))
            for target, value in zip(statement[1], values, strict=True):
                self.store(target, value)

    def values(self, expressions: list[tuple[Any, ...]], n: int) -> list[Any]:
        out: list[Any] = []
        for k, expression in enumerate(expressions):
            result = self.evaluate(expression, many=k == len(expressions) - 1)
            out.extend(result if isinstance(result, tuple) else (result,))
        return (out + [None] * n)[:n]

    def store(self, target: tuple[Any, ...], value: Any) -> None:
        if target[0] == "global":
            (self.locals if target[1] in self.locals else self.globals)[target[1]] = value
            return
        container = self.evaluate(target[1])
        key = self.evaluate(target[2])
        if isinstance(container, Table):
            container.items[key] = value
        elif isinstance(container, TspObject):
            container.tsp_set(str(key), value)
        else:
            raise LuaRuntimeError(f"attempt to index {describe(target[1])} (a {type_name(container)} value)")

    def evaluate(self, node: tuple[Any, ...], many: bool = False) -> Any:
        kind = node[0]
        if kind == "const":
            return node[1]
        if kind == "global":
            return self.locals[node[1]] if node[1] in self.locals else self.globals.get(node[1])
        if kind == "paren":
            return self.evaluate(node[1])
        if kind == "index":
            return self.index(node)
        if kind == "table":
            items: dict[Any, Any] = {}
            position = 1
            for key_expr, value_expr in node[1]:
                if key_expr is None:
                    items[position] = self.evaluate(value_expr)
                    position += 1
                else:
                    items[self.evaluate(key_expr)] = self.evaluate(value_expr)
            return Table(items)
        if kind in ("call", "method"):
            result = self.call(node)
            return result if many else (result[0] if result else None)
        if kind == "unary":
            value = self.evaluate(node[2])
            if node[1] == "not":
                return value is None or value is False
            if node[1] == "#":
                if isinstance(value, str):
                    return float(len(value))
                if isinstance(value, Table):
                    return float(len(value.array()))
                raise LuaRuntimeError(f"attempt to get length of {describe(node[2])}")
            return -self.number(value, node[2])
        return self.binary(node)

    def index(self, node: tuple[Any, ...]) -> Any:
        container = self.evaluate(node[1])
        key = self.evaluate(node[2])
        if isinstance(container, Table):
            return container.items.get(key)
        if isinstance(container, TspObject):
            try:
                return container.tsp_get(key if isinstance(key, str) else str(key))
            except KeyError:
                return None
        raise LuaRuntimeError(f"attempt to index {describe(node[1])} (a {type_name(container)} value)")

    def call(self, node: tuple[Any, ...]) -> tuple[Any, ...]:
        if node[0] == "method":
            receiver = self.evaluate(node[1])
            function = self.index(("index", ("const", receiver), ("const", node[2])))
            args = [receiver, *self.values(node[3], len(node[3]))]
            name = f"method `{node[2]}'"
        else:
            function = self.evaluate(node[1])
            args = self.all_values(node[2])
            name = describe(node[1])
        if not callable(function):
            raise LuaRuntimeError(f"attempt to call {name} (a {type_name(function)} value)")
        result = function(args)
        return result if isinstance(result, tuple) else (result,)

    def all_values(self, expressions: list[tuple[Any, ...]]) -> list[Any]:
        out: list[Any] = []
        for k, expression in enumerate(expressions):
            result = self.evaluate(expression, many=k == len(expressions) - 1)
            out.extend(result if isinstance(result, tuple) else (result,))
        return out

    def number(self, value: Any, node: tuple[Any, ...]) -> float:
        if isinstance(value, float | int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise LuaRuntimeError(f"attempt to perform arithmetic on {describe(node)} "
                              f"(a {type_name(value)} value)")

    def binary(self, node: tuple[Any, ...]) -> Any:
        op = node[1]
        left = self.evaluate(node[2])
        if op == "and":
            return self.evaluate(node[3]) if left not in (None, False) else left
        if op == "or":
            return left if left not in (None, False) else self.evaluate(node[3])
        right = self.evaluate(node[3])
        if op == "==":
            return left == right and type_name(left) == type_name(right)
        if op == "~=":
            return not (left == right and type_name(left) == type_name(right))
        if op == "..":
            parts = []
            for value, sub in ((left, node[2]), (right, node[3])):
                if isinstance(value, str):
                    parts.append(value)
                elif isinstance(value, float) and not isinstance(value, bool):
                    parts.append(f"{value:.14g}")
                else:
                    raise LuaRuntimeError(f"attempt to concatenate {describe(sub)} "
                                          f"(a {type_name(value)} value)")
            return parts[0] + parts[1]
        if op in ("<", ">", "<=", ">="):
            if not (isinstance(left, str) and isinstance(right, str)):
                left, right = self.number(left, node[2]), self.number(right, node[3])
            return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
        a, b = self.number(left, node[2]), self.number(right, node[3])
        if op in ("/", "%") and b == 0:
            return math.nan if op == "%" or a == 0 else math.copysign(math.inf, a)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        return a - math.floor(a / b) * b if op == "%" else a ** b


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
