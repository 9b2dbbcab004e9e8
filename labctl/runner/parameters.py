"""Procedure parameters, declared once, validated by pydantic.

A declaration (name, type, unit, default, range or choices, help) drives everything: validation before any
instrument is touched, the CLI's ``--param name=value`` and ``--params FILE.toml``, the metadata saved in the
run file, the JSON Schema the GUI builds its forms from. Declare parameters as class attributes of a
procedure and read them as plain attributes (``self.scan_rates_V_s``) once the procedure is constructed::

    class JVHysteresis(Procedure):
        scan_rates_V_s = FloatListParameter("scan rates", unit="V/s", default=[0.1], minimum=1e-4, maximum=1e3)

Each declaration becomes a field of a pydantic model (:func:`parameter_model`), which does the type coercion
(text from the command line, numbers from TOML) and the range checks; labctl turns pydantic's errors into
one line naming the parameter, the value with its unit, and what is allowed — for a per-channel table, the
channel too::

    channel 'ch03': parameter 'hold_V' = 5 V is invalid; allowed: -1 … 2 V

A per-channel table (:class:`ChannelTable`) holds overrides, one table per channel, of the parameters of a
:class:`ChannelParameters` group; a channel that sets nothing takes the run-wide value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from pydantic_core import PydanticCustomError

from labctl.errors import ParameterError

T = TypeVar("T")

_REQUIRED = object()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _no_bool(value: Any) -> Any:
    # pydantic would read True as 1.0: a yes/no is never a number of volts.
    if isinstance(value, bool):
        raise PydanticCustomError("bool_not_number", "expected a number, got a yes/no value")
    return value


#: Why a value was refused, by pydantic error type (the allowed range is added where it helps).
_WHY = {
    "float_parsing": "not a number", "float_type": "not a number",
    "int_parsing": "expected a whole number", "int_type": "expected a whole number",
    "int_from_float": "expected a whole number", "bool_not_number": "expected a number, not yes/no",
    "bool_parsing": "expected yes or no (true/false, on/off, 1/0)", "bool_type": "expected yes or no",
    "string_type": "expected text", "list_type": "expected a list", "dict_type": "expected a table",
}


class Parameter(Generic[T]):
    """One declared parameter. Subclasses say which Python type it is (:meth:`value_type`) and how
    command-line text becomes a value (:meth:`parse`).

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

    def parse(self, text: str) -> Any:
        """Command-line text as the value to validate (pydantic converts ``"0.5"`` to 0.5 and so on)."""
        return text

    # ----------------------------------------------------------------------------- the model
    def scalar_type(self) -> Any:
        """The type of one value, with its range."""
        raise NotImplementedError

    def value_type(self) -> Any:
        return self.scalar_type()

    def _ranged(self, base: type) -> Any:
        if self.choices is not None:
            return Literal[tuple(self.choices)]
        return Annotated[base, Field(ge=self.minimum, le=self.maximum, allow_inf_nan=False),
                         BeforeValidator(_no_bool)]

    def field(self) -> Any:
        extra: dict[str, Any] = {"unit": self.unit, "kind": self.kind, "label": self.label}
        default = ... if self.required else self.default
        return Field(default, title=self.label, description=self.help or None,
                     json_schema_extra=extra)

    def why(self, error_type: str) -> str:
        why = _WHY.get(error_type, "")
        if error_type == "finite_number":
            return f"must be a finite number; allowed: {self.allowed()}"
        if why and error_type in {"float_parsing", "int_parsing", "int_from_float"} and (
                self.minimum is not None or self.maximum is not None):
            return f"{why}; allowed: {self.allowed()}"
        return why

    def describe(self) -> dict[str, Any]:
        """A JSON-able description, for `labctl run PROCEDURE --list-params` and GUI forms."""
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

    def scalar_type(self) -> Any:
        return self._ranged(float)


class IntParameter(Parameter[int]):
    kind = "whole number"

    def scalar_type(self) -> Any:
        return self._ranged(int)


class BoolParameter(Parameter[bool]):
    """yes/no; on the command line ``yes``, ``no``, ``true``, ``false``, ``on``, ``off``, ``1``, ``0``."""

    kind = "yes/no"

    def scalar_type(self) -> Any:
        return bool

    def allowed(self) -> str:
        return "yes or no"


class TextParameter(Parameter[str]):
    kind = "text"

    def scalar_type(self) -> Any:
        if self.choices is not None:
            return Literal[tuple(self.choices)]
        return str


class FloatListParameter(Parameter[list[float]]):
    """A list of numbers; on the command line comma-separated: ``scan_rates_V_s=0.01,0.1,1``.

    ``minimum``/``maximum`` apply to every element; ``min_length`` to the list.
    """

    kind = "number list"

    def __init__(self, label: str, *, min_length: int = 1, **kwargs: Any) -> None:
        super().__init__(label, **kwargs)
        self.min_length = min_length

    def parse(self, text: str) -> Any:
        return [t for t in (s.strip() for s in text.split(",")) if t]

    def scalar_type(self) -> Any:
        return self._ranged(float)

    def value_type(self) -> Any:
        return Annotated[list[self.scalar_type()], BeforeValidator(_as_list),  # type: ignore[misc]
                         Field(min_length=self.min_length)]

    def why(self, error_type: str) -> str:
        if error_type == "too_short":
            return f"needs at least {self.min_length} value(s), each {self.allowed()}"
        if error_type == "list_type":
            return f"expected a list of numbers, each {self.allowed()}"
        return super().why(error_type)


class TextListParameter(Parameter[list[str]]):
    """A list of names (e.g. samples); comma-separated on the command line."""

    kind = "text list"

    def parse(self, text: str) -> Any:
        return [t for t in (s.strip() for s in text.split(",")) if t]

    def scalar_type(self) -> Any:
        if self.choices is not None:
            return Literal[tuple(self.choices)]
        return str

    def value_type(self) -> Any:
        return Annotated[list[self.scalar_type()], BeforeValidator(_as_names),  # type: ignore[misc]
                         Field(min_length=1)]

    def why(self, error_type: str) -> str:
        if error_type == "too_short":
            return "needs at least one name"
        if error_type == "list_type":
            return "expected a list of names"
        return super().why(error_type)


def _as_list(value: Any) -> Any:
    """A single number is a list of one; text is comma-separated."""
    if isinstance(value, str):
        return [t for t in (s.strip() for s in value.split(",")) if t]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [value]
    return value


def _as_names(value: Any) -> Any:
    if isinstance(value, str):
        return [t for t in (s.strip() for s in value.split(",")) if t]
    return value


class ChannelParameters:
    """A group of parameter declarations that a :class:`ChannelTable` lets each channel override."""

    @classmethod
    def parameters(cls) -> dict[str, Parameter[Any]]:
        return declared_parameters(cls)


class ChannelTable(Parameter[dict[str, dict[str, Any]]]):
    """Per-channel overrides: ``{channel: {parameter: value}}`` of the parameters of ``group``; in TOML a
    table per channel (``[parameters.channels.ch03]``), on the command line ``channels.ch03.hold_V=0.9``."""

    kind = "per-channel table"

    def __init__(self, group: type[ChannelParameters], label: str = "per-channel settings", **kwargs: Any
                 ) -> None:
        kwargs.setdefault("default", {})
        super().__init__(label, **kwargs)
        self.group = group

    def value_type(self) -> Any:
        return dict[str, _channel_model(self.group)]  # type: ignore[misc]

    def allowed(self) -> str:
        return "a table per channel of: " + ", ".join(self.group.parameters())


_CHANNEL_MODELS: dict[type[ChannelParameters], type[BaseModel]] = {}


def _channel_model(group: type[ChannelParameters]) -> type[BaseModel]:
    if group in _CHANNEL_MODELS:
        return _CHANNEL_MODELS[group]
    fields: dict[str, Any] = {}
    for key, param in group.parameters().items():
        fields[key] = (param.value_type() | None, Field(None, title=param.label, description=param.help or None,
                                                        json_schema_extra={"unit": param.unit}))
    model: type[BaseModel] = create_model(f"{group.__name__}Model", __config__=ConfigDict(extra="forbid"),
                                          **fields)
    _CHANNEL_MODELS[group] = model
    return model


_RANGE_ERRORS = frozenset({"greater_than_equal", "less_than_equal", "greater_than", "less_than"})


def _number_or_text(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def _not_finite(value: Any) -> bool:
    """NaN or an infinity, as a number or as text (TOML and the command line both have them)."""
    if isinstance(value, str):
        return value.strip().lower().lstrip("+-") in {"nan", "inf", "infinity"}
    return isinstance(value, float) and not math.isfinite(value)


def declared_parameters(cls: type) -> dict[str, Parameter[Any]]:
    """Every parameter declared on ``cls`` and its bases, base classes first, in declaration order."""
    found: dict[str, Parameter[Any]] = {}
    for klass in reversed(cls.__mro__):
        for key, value in vars(klass).items():
            if isinstance(value, Parameter):
                found[key] = value
    return found


class ParameterModel(BaseModel):
    """Base of the pydantic model built from a procedure's declarations."""

    model_config = ConfigDict(extra="forbid")
    declarations: ClassVar[dict[str, Parameter[Any]]] = {}


def parameter_model(name: str, declarations: Mapping[str, Parameter[Any]]) -> type[ParameterModel]:
    fields: dict[str, Any] = {key: (param.value_type(), param.field()) for key, param in declarations.items()}
    model: type[ParameterModel] = create_model(name, __base__=ParameterModel, **fields)
    model.declarations = dict(declarations)
    return model


def validation_message(declarations: Mapping[str, Parameter[Any]], exc: ValidationError,
                       procedure: str) -> ParameterError:
    """pydantic's first error as labctl's one line (parameter, value with unit, what is allowed)."""
    error = exc.errors()[0]
    loc = tuple(error.get("loc", ()))
    kind = str(error.get("type", ""))
    value = error.get("input")
    if not loc:
        return ParameterError(str(error.get("msg", "invalid parameters")).removeprefix("Value error, "))
    param = declarations.get(str(loc[0]))
    if param is None:
        return ParameterError(f"unknown parameter {loc[0]!r} for procedure '{procedure}'; known: "
                              f"{', '.join(declarations)}")
    if kind == "missing" and len(loc) == 1:
        return ParameterError(f"parameter '{param.key}' is required for procedure '{procedure}'; allowed: "
                              f"{param.allowed()}")
    prefix = ""
    if isinstance(param, ChannelTable) and len(loc) >= 3:
        prefix = f"channel {loc[1]!r}: "
        sub = param.group.parameters().get(str(loc[2]))
        if sub is None:
            return ParameterError(f"{prefix}unknown parameter {loc[2]!r}; per-channel parameters: "
                                  f"{', '.join(param.group.parameters())}")
        param = sub
    why = param.why(kind)
    if isinstance(value, str) and kind in _RANGE_ERRORS:
        value = _number_or_text(value)  # "-3" from the command line is shown as the number it is
    if _not_finite(value):
        why = f"must be a finite number; allowed: {param.allowed()}"
    message = str(param.error(value, why))
    return ParameterError(prefix + message)

