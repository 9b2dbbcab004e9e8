"""Running parsed TSP chunks: the Lua values (numbers, strings, booleans, nil, :class:`Table`), the
protocol instrument objects implement (:class:`TspObject`), and the :class:`Interpreter` that evaluates
statements against the globals; a failing operation raises :class:`LuaRuntimeError` with Lua's wording."""

from __future__ import annotations

import math
from typing import Any

from mock_instruments.tsp_parser import Parser


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
        """Exactly ``n`` values (Lua adjusts an expression list: nil-padded or cut)."""
        return (self.all_values(expressions) + [None] * n)[:n]

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
        """Every value of an expression list (the last expression's results all count)."""
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
