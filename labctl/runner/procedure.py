"""The base class of every measurement procedure.

A procedure declares its parameters (see :mod:`labctl.runner.parameters`), says which instruments of a
station it needs, checks its parameters against the station's limits without talking to any instrument, and
then runs through ``startup`` → ``execute`` → ``shutdown`` with a :class:`~labctl.runner.context.RunContext`.
It never sees a concrete driver or a file path: it gets role objects, a clock and a data sink.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ValidationError

from labctl.errors import ParameterError
from labctl.runner.parameters import (
    ChannelTable,
    Parameter,
    ParameterModel,
    declared_parameters,
    parameter_model,
    validation_message,
)

if TYPE_CHECKING:
    from labctl.runner.channels import ChannelContext, ChannelSpec
    from labctl.runner.context import RunContext
    from labctl.station import Station


class Procedure:
    """Subclass, declare parameters as class attributes, implement :meth:`execute`.

    A procedure in the ``procedures`` package, or in a package that names it in the ``labctl.procedures``
    entry point group, is found by its :attr:`name` (`labctl procedures` lists them). Its analysis and
    report come with it: override :meth:`analyze`, :meth:`print_analysis` and :meth:`report`.
    """

    #: The name used on the command line (``labctl run <name>``) and stored in the run file.
    name: ClassVar[str] = ""
    #: One line for people.
    title: ClassVar[str] = ""
    #: Named sets of parameter values (an ISOS protocol): ``preset = "..."`` fills them in; values given
    #: explicitly win. A procedure with presets declares a ``preset`` parameter whose choices are these keys.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, **values: Any) -> None:
        declared = self.parameters()
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise ParameterError(
                f"unknown parameter(s) {', '.join(repr(u) for u in unknown)} for procedure "
                f"'{self.name}'; known: {', '.join(declared)}"
            )
        preset = values.get("preset")
        self.preset_filled: list[str] = []
        if preset and isinstance(preset, str) and preset in self.PRESETS:
            filled = {k: v for k, v in self.PRESETS[preset].items() if k not in values}
            self.preset_filled = sorted(filled)
            values = {**filled, **values}
        try:
            validated = self.parameter_model().model_validate(values)
        except ValidationError as exc:
            raise validation_message(declared, exc, self.name) from None
        self._values: dict[str, Any] = validated.model_dump(mode="json", exclude_none=False)
        for key, param in declared.items():
            if isinstance(param, ChannelTable):  # a channel's unset overrides are not values
                self._values[key] = {channel: {k: v for k, v in table.items() if v is not None}
                                     for channel, table in self._values[key].items()}
        self.check_consistency()

    # ------------------------------------------------------------------------------ declarations
    @classmethod
    def parameters(cls) -> dict[str, Parameter[Any]]:
        """Every declared parameter, base classes first, in declaration order."""
        return declared_parameters(cls)

    @classmethod
    def parameter_model(cls) -> type[ParameterModel]:
        """The pydantic model of the declared parameters (built once per class)."""
        model: type[ParameterModel] | None = cls.__dict__.get("_parameter_model")
        if model is None:
            model = parameter_model(f"{cls.__name__}Parameters", cls.parameters())
            setattr(cls, "_parameter_model", model)  # noqa: B010 - a per-class cache, not a declared attribute
        return model

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON Schema of the parameters (types, units, ranges, choices, help): what a form is built from."""
        schema = cls.parameter_model().model_json_schema()
        if cls.PRESETS:
            schema["presets"] = {name: dict(values) for name, values in cls.PRESETS.items()}
        return schema

    @classmethod
    def class_path(cls) -> str:
        return f"{cls.__module__}:{cls.__qualname__}"

    @classmethod
    def from_strings(
        cls, pairs: Iterable[str] = (), params_file: Path | None = None, **values: Any
    ) -> Procedure:
        """Build from ``--params FILE.toml`` (first) and ``--param name=value`` pairs (override it).

        A parameter given twice on the command line is refused (which one was meant?); a dotted name sets
        one entry of a per-channel table: ``channels.ch03.hold_V=0.9``."""
        merged: dict[str, Any] = {}
        if params_file is not None:
            merged.update(read_params_file(params_file))
        declared = cls.parameters()
        given: dict[str, str] = {}
        for pair in pairs:
            key, sep, text = pair.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ParameterError(f"--param {pair!r} is not of the form name=value")
            if key in given:
                raise ParameterError(f"parameter {key!r} is given twice (--param {key}={given[key]} and "
                                     f"--param {key}={text.strip()}); give it once")
            given[key] = text.strip()
            _assign(merged, declared, key, text.strip(), cls.name)
        merged.update(values)
        return cls(**merged)

    # ------------------------------------------------------------------------------------ values
    @property
    def values(self) -> dict[str, Any]:
        """The validated parameter values (JSON-able), as saved in the run file."""
        return dict(self._values)

    def check_consistency(self) -> None:
        """Cross-parameter checks that need no station (e.g. start < stop). Raise ParameterError."""

    def check_station(self, station: Station) -> None:
        """Checks against the station's samples and instrument limits, before anything is connected."""

    def instruments_needed(self, station: Station) -> list[str]:
        """Names of the station's instruments this run uses (they are connected, then made safe)."""
        return []

    def sample_metadata(self, station: Station | None) -> dict[str, Any]:
        """What the run file records about the sample(s)."""
        return {}

    def conditions(self) -> dict[str, Any]:
        """Stress conditions (ISOS metadata): light, temperature, atmosphere, bias."""
        return {}

    def file_stem(self) -> str:
        """The data file's name stem (the runner adds a timestamp and never overwrites)."""
        return self.name or type(self).__name__.lower()

    # ---------------------------------------------------------------------------------- lifecycle
    def startup(self, ctx: RunContext) -> None:
        """Configure instruments. Called after connecting, also on resume."""

    def execute(self, ctx: RunContext) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")

    def shutdown(self, ctx: RunContext) -> None:
        """Procedure-specific wind-down (the runner then puts every instrument in its safe state)."""

    # ----------------------------------------------------------------------------------- channels
    def channels(self, station: Station) -> list[ChannelSpec]:
        """The channels ``ctx.run_channels`` runs: by default one per sample of a ``sample`` parameter."""
        from labctl.runner.channels import channels_for_samples

        samples = self._values.get("sample")
        if samples is None:
            return []
        return channels_for_samples(station, [samples] if isinstance(samples, str) else list(samples))

    def hold(self, ctx: RunContext | ChannelContext, why: str) -> None:
        """The safe hold of a paused run or a suspended channel (``why`` says which).

        The default does nothing: a procedure that leaves a bias on defines its hold (for example, cells at
        open circuit with the light as set). It must be harmless to call twice and on an instrument that is
        not answering (errors are logged, not raised, by the engine)."""

    def release(self, ctx: RunContext | ChannelContext) -> None:
        """Come out of :meth:`hold` (the procedure's loop then sets its own levels again)."""

    def channel_values(self, channel: str) -> dict[str, Any]:
        """The run-wide values with this channel's overrides from every per-channel table applied."""
        merged = dict(self._values)
        for key, param in self.parameters().items():
            if isinstance(param, ChannelTable):
                merged.update(self._values[key].get(channel, {}))
        return merged

    # ----------------------------------------------------------------------------------- analysis
    @classmethod
    def analyze(cls, reader: Any) -> dict[str, Any] | None:
        """The procedure's metrics from a run file (a :class:`labctl.store.RunReader`); None: none defined.
        `labctl analyze` and the runner, after a completed run, store them in the file's ``/analysis``."""
        return None

    @classmethod
    def defines_analysis(cls) -> bool:
        """Whether this procedure has an analysis of its own (overrides :meth:`analyze`)."""
        return any("analyze" in vars(klass) for klass in cls.__mro__ if klass is not Procedure)

    @classmethod
    def print_analysis(cls, result: dict[str, Any], console: Any) -> None:
        """Print :meth:`analyze`'s result for people (a rich console)."""

    @classmethod
    def report(cls, path: Path, out_dir: Path) -> list[Path]:
        """PNG figures of a run file into ``out_dir``; the paths written."""
        from labctl.errors import DataFileError

        raise DataFileError(f"{path}: no report is defined for procedure {cls.name!r} yet")


def read_params_file(path: Path) -> dict[str, Any]:
    """A ``--params`` TOML file: its ``[parameters]`` table (or the whole file); one clear error for a file
    that cannot be read or is not TOML (random bytes included)."""
    try:
        with open(path, "rb") as fh:
            loaded = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ParameterError(f"cannot read parameter file {path}: {exc}") from None
    table = loaded.get("parameters", loaded)
    if not isinstance(table, dict):
        raise ParameterError(f"parameter file {path}: [parameters] must be a table")
    return dict(table)


def _assign(merged: dict[str, Any], declared: Mapping[str, Parameter[Any]], key: str, text: str,
            procedure: str) -> None:
    """Put one ``--param`` into ``merged``: ``name=text`` or ``table.channel.name=text``."""
    head, _, rest = key.partition(".")
    param = declared.get(head)
    if param is None:
        raise ParameterError(f"unknown parameter {head!r} for procedure '{procedure}'; known: {', '.join(declared)}")
    if not rest:
        merged[head] = param.parse(text)
        return
    channel, _, sub_key = rest.partition(".")
    if not isinstance(param, ChannelTable) or not channel or not sub_key:
        raise ParameterError(f"--param {key}: only a per-channel table takes a dotted name "
                             f"(table.channel.parameter=value)")
    sub = param.group.parameters().get(sub_key)
    if sub is None:
        raise ParameterError(f"channel {channel!r}: unknown parameter {sub_key!r}; per-channel parameters: "
                             f"{', '.join(param.group.parameters())}")
    table = merged.setdefault(head, {})
    table.setdefault(channel, {})[sub_key] = sub.parse(text)


def resolve_values(procedure_cls: type[Procedure], values: Mapping[str, Any]) -> Procedure:
    """Rebuild a procedure from values saved in a run file (ignores parameters that no longer exist)."""
    declared = procedure_cls.parameters()
    return procedure_cls(**{k: v for k, v in values.items() if k in declared})
