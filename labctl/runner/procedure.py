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

from labctl.errors import ParameterError
from labctl.runner.parameters import Parameter

if TYPE_CHECKING:
    from labctl.runner.channels import ChannelContext, ChannelSpec
    from labctl.runner.context import RunContext
    from labctl.station import Station


class Procedure:
    """Subclass, declare parameters as class attributes, implement :meth:`execute`."""

    #: The name used on the command line (``labctl run <name>``) and stored in the run file.
    name: ClassVar[str] = ""
    #: One line for people.
    title: ClassVar[str] = ""

    def __init__(self, **values: Any) -> None:
        declared = self.parameters()
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise ParameterError(
                f"unknown parameter(s) {', '.join(repr(u) for u in unknown)} for procedure "
                f"'{self.name}'; known: {', '.join(declared)}"
            )
        self._values: dict[str, Any] = {}
        for key, param in declared.items():
            if key in values:
                self._values[key] = param.validate(values[key])
            elif param.required:
                raise ParameterError(
                    f"parameter '{key}' is required for procedure '{self.name}'; allowed: {param.allowed()}"
                )
            else:
                self._values[key] = param.validate(param.default)
        self.check_consistency()

    # ------------------------------------------------------------------------------ declarations
    @classmethod
    def parameters(cls) -> dict[str, Parameter[Any]]:
        """Every declared parameter, base classes first, in declaration order."""
        found: dict[str, Parameter[Any]] = {}
        for klass in reversed(cls.__mro__):
            for key, value in vars(klass).items():
                if isinstance(value, Parameter):
                    found[key] = value
        return found

    @classmethod
    def class_path(cls) -> str:
        return f"{cls.__module__}:{cls.__qualname__}"

    @classmethod
    def from_strings(
        cls, pairs: Iterable[str] = (), params_file: Path | None = None, **values: Any
    ) -> Procedure:
        """Build from ``--params FILE.toml`` (first) and ``--param name=value`` pairs (override it)."""
        merged: dict[str, Any] = {}
        if params_file is not None:
            try:
                with open(params_file, "rb") as fh:
                    loaded = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ParameterError(f"cannot read parameter file {params_file}: {exc}") from exc
            merged.update(loaded.get("parameters", loaded))
        declared = cls.parameters()
        for pair in pairs:
            key, sep, text = pair.partition("=")
            key = key.strip()
            if not sep:
                raise ParameterError(f"--param {pair!r} is not of the form name=value")
            if key not in declared:
                raise ParameterError(
                    f"unknown parameter {key!r} for procedure '{cls.name}'; known: {', '.join(declared)}"
                )
            merged[key] = declared[key].parse(text.strip())
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


def resolve_values(procedure_cls: type[Procedure], values: Mapping[str, Any]) -> Procedure:
    """Rebuild a procedure from values saved in a run file (ignores parameters that no longer exist)."""
    declared = procedure_cls.parameters()
    return procedure_cls(**{k: v for k, v in values.items() if k in declared})
