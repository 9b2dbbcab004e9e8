"""The syntax of the Lua 5.0 subset TSP instruments accept (see :mod:`mock_instruments.tsp`): a lexer
(:func:`tokenize`) and a recursive-descent :class:`Parser` that turns a chunk into statements as nested
tuples, for :class:`mock_instruments.tsp_interpreter.Interpreter` to run. Control structures parse as an
error naming the keyword (they are not simulated); what does not parse raises :class:`LuaSyntaxError`."""

from __future__ import annotations

import re
from typing import Any

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
