"""Procedure names on the command line to procedure classes (imported only when used)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from labctl.errors import ParameterError

if TYPE_CHECKING:
    from labctl.runner.procedure import Procedure

PROCEDURES: dict[str, str] = {}


def register(name: str, target: str) -> None:
    """Make ``labctl run <name>`` find ``module:Class``."""
    PROCEDURES[name] = target


def procedure_class(name: str) -> type[Procedure]:
    """A registered name (``jv``) or an importable ``module:Class`` path."""
    target = PROCEDURES.get(name, name if ":" in name else "")
    if not target:
        known = ", ".join(sorted(PROCEDURES)) or "none yet"
        raise ParameterError(f"unknown procedure {name!r}; known procedures: {known}")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise ParameterError(f"cannot load procedure {name!r} ({target}): {exc}") from exc
    from labctl.runner.procedure import Procedure

    if not (isinstance(cls, type) and issubclass(cls, Procedure)):
        raise ParameterError(f"{target} is not a labctl Procedure")
    return cls


register("jv", "procedures.jv_hysteresis:JVHysteresis")
