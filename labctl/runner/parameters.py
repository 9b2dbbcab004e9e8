"""Procedure parameters, declared once.

A declaration (name, type, unit, default, range or choices, help) drives everything: validation before any
instrument is touched, the CLI's ``--param name=value`` and ``--params FILE.toml``, the metadata saved in
the run file, and the GUI's forms. Declare parameters as class attributes of a procedure::

    class JVHysteresis(Procedure):
        scan_rates_V_s = FloatListParameter("scan rates", unit="V/s", default=[0.1], minimum=1e-4, maximum=1e3)

and read them as plain attributes (``self.scan_rates_V_s``) once the procedure is constructed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from labctl.errors import ParameterError

T = TypeVar("T")

_REQUIRED = object()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


class Parameter(Generic[T]):
    """One declared parameter. Subclasses define ``kind`` and how text becomes a value.

    The attribute name the parameter is assigned to is its key (``self.key``); ``label`` is for people.
    """

    kind = "value"

    def __init__(
        self,
        label: str,
        *,
        unit: str = "",
        default: Any = _REQUIRED,
        minimum: float | None = None,
        maximum: float | None = None,
        choices: Sequence[Any] | None = None,
        help: str = "",
    ) -> None:
        self.label = label
        self.unit = unit
        self.default = default
        self.minimum = minimum
        self.maximum = maximum
        self.choices = list(choices) if choices is not None else None
        self.help = help
        self.key = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance._values[self.key]

    # ----------------------------------------------------------------------------------- pieces
    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def allowed(self) -> str:
        """The allowed values in words, with the unit: ``0.0001 … 1000 V/s`` or ``one of 'RS', 'FS'``."""
        unit = f" {self.unit}" if self.unit else ""
        if self.choices is not None:
            return "one of " + ", ".join(_fmt(c) for c in self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{_fmt(self.minimum)} … {_fmt(self.maximum)}{unit}"
        if self.minimum is not None:
            return f">= {_fmt(self.minimum)}{unit}"
        if self.maximum is not None:
            return f"<= {_fmt(self.maximum)}{unit}"
        return f"any {self.kind}"

    def error(self, value: Any, why: str = "") -> ParameterError:
        unit = f" {self.unit}" if self.unit and not isinstance(value, str) else ""
        reason = why or f"allowed: {self.allowed()}"
        return ParameterError(f"parameter '{self.key}' = {_fmt(value)}{unit} is invalid; {reason}")

    def parse(self, text: str) -> T:
        """Turn command-line text into a value (then :meth:`validate` checks it)."""
        raise NotImplementedError

    def coerce(self, value: Any) -> T:
        """Accept a value from Python or TOML (int for float, list for tuple, text for anything)."""
        if isinstance(value, str) and self.kind != "text":
            return self.parse(value)
        return self.convert(value)

    def convert(self, value: Any) -> T:
        raise NotImplementedError

    def check_scalar(self, value: Any, shown: Any = None) -> None:
        shown = value if shown is None else shown
        if self.choices is not None and value not in self.choices:
            raise self.error(shown)
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(shown, f"must be a finite number; allowed: {self.allowed()}")
        if self.minimum is not None and value < self.minimum:
            raise self.error(shown)
        if self.maximum is not None and value > self.maximum:
            raise self.error(shown)

    def validate(self, value: Any) -> T:
        converted = self.coerce(value)
        self.check_scalar(converted)
        return converted

    def describe(self) -> dict[str, Any]:
        """A JSON-able description, for `labctl run PROCEDURE --help-params` and GUI forms."""
        return {
            "key": self.key,
            "label": self.label,
            "kind": self.kind,
            "unit": self.unit,
            "default": None if self.required else self.default,
            "required": self.required,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": self.choices,
            "help": self.help,
        }


class FloatParameter(Parameter[float]):
    kind = "number"

    def parse(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise self.error(text, f"not a number; allowed: {self.allowed()}") from None

    def convert(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(value, f"expected a number; allowed: {self.allowed()}")
        return float(value)


class IntParameter(Parameter[int]):
    kind = "integer"

    def parse(self, text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise self.error(text, f"not a whole number; allowed: {self.allowed()}") from None

    def convert(self, value: Any) -> int:
        if isinstance(value, float) and not math.isfinite(value):  # TOML has inf and nan
            raise self.error(value, f"must be a finite whole number; allowed: {self.allowed()}")
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise self.error(value, f"expected a whole number; allowed: {self.allowed()}")
        return int(value)


class BoolParameter(Parameter[bool]):
    kind = "boolean"

    def parse(self, text: str) -> bool:
        lowered = text.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise self.error(text, "expected true/false (or yes/no, on/off, 1/0)")

    def convert(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(value, "expected true or false")
        return value

    def allowed(self) -> str:
        return "true or false"


class TextParameter(Parameter[str]):
    kind = "text"

    def parse(self, text: str) -> str:
        return text

    def convert(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self.error(value, f"expected text; allowed: {self.allowed()}")
        return value


class FloatListParameter(Parameter[list[float]]):
    """A list of numbers; on the command line comma-separated: ``scan_rates_V_s=0.01,0.1,1``.

    ``minimum``/``maximum`` apply to every element; ``min_length`` to the list.
    """

    kind = "number list"

    def __init__(self, label: str, *, min_length: int = 1, **kwargs: Any) -> None:
        super().__init__(label, **kwargs)
        self.min_length = min_length

    def parse(self, text: str) -> list[float]:
        items = [t for t in (s.strip() for s in text.split(",")) if t]
        try:
            return [float(t) for t in items]
        except ValueError:
            raise self.error(text, f"expected comma-separated numbers, each {self.allowed()}") from None

    def convert(self, value: Any) -> list[float]:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return [float(value)]
        if not isinstance(value, list | tuple) or any(
            isinstance(v, bool) or not isinstance(v, int | float) for v in value
        ):
            raise self.error(value, f"expected a list of numbers, each {self.allowed()}")
        return [float(v) for v in value]

    def validate(self, value: Any) -> list[float]:
        values = self.coerce(value)
        if len(values) < self.min_length:
            raise self.error(values, f"needs at least {self.min_length} value(s), each {self.allowed()}")
        for v in values:
            self.check_scalar(v, shown=v)
        return values


class TextListParameter(Parameter[list[str]]):
    """A list of names (e.g. samples); comma-separated on the command line."""

    kind = "text list"

    def parse(self, text: str) -> list[str]:
        return [t for t in (s.strip() for s in text.split(",")) if t]

    def convert(self, value: Any) -> list[str]:
        if isinstance(value, str):
            return self.parse(value)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self.error(value, "expected a list of names")
        return list(value)

    def coerce(self, value: Any) -> list[str]:
        return self.convert(value)

    def validate(self, value: Any) -> list[str]:
        values = self.coerce(value)
        if not values:
            raise self.error(values, "needs at least one name")
        for v in values:
            if self.choices is not None and v not in self.choices:
                raise self.error(v)
        return values
