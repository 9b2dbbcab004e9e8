"""Where procedures come from: labctl's own ``procedures`` package and any installed package's.

A procedure registers itself by being defined: every :class:`~labctl.runner.procedure.Procedure` subclass with
a ``name`` in a module of the ``procedures`` package is found, and so is every one a package names in the
``labctl.procedures`` entry point group (a class, ``"acme_lab.aging:SolarAging"``, or a module,
``"acme_lab.procedures"``, whose procedures are all taken)::

    [project.entry-points."labctl.procedures"]
    acme = "acme_lab.procedures"

Its analysis and report are its own methods (``analyze``, ``print_analysis``, ``report``), so adding a
procedure is adding its files. labctl's own procedures win a name clash; a package whose procedures cannot
be imported is listed with the reason instead of breaking `labctl procedures`.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

from labctl.errors import ParameterError

if TYPE_CHECKING:
    from labctl.runner.procedure import Procedure

ENTRY_POINT_GROUP = "labctl.procedures"
BUILTIN_PACKAGE = "procedures"


@dataclass(frozen=True)
class ProcedureEntry:
    """A known procedure: its name, class (None when it failed to load), where it came from, and why not."""

    name: str
    cls: type[Procedure] | None
    origin: str
    target: str
    problem: str = ""


_discovered: dict[str, ProcedureEntry] | None = None


def _procedures_in(module: ModuleType) -> list[type[Procedure]]:
    from labctl.runner.procedure import Procedure

    return [obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, Procedure) and obj is not Procedure and obj.name and obj.__module__ == module.__name__]


def _add(found: dict[str, ProcedureEntry], cls: type[Procedure], origin: str) -> None:
    if cls.name not in found:
        found[cls.name] = ProcedureEntry(cls.name, cls, origin, f"{cls.__module__}:{cls.__qualname__}")


def known_procedures(refresh: bool = False) -> dict[str, ProcedureEntry]:
    """Every procedure labctl can run, by name (discovered once; ``refresh`` looks again)."""
    global _discovered
    if _discovered is not None and not refresh:
        return _discovered
    found: dict[str, ProcedureEntry] = {}
    try:
        package = importlib.import_module(BUILTIN_PACKAGE)
    except ImportError:  # pragma: no cover - labctl ships the package
        package = None
    if package is not None:
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{BUILTIN_PACKAGE}.{info.name}")
            for cls in _procedures_in(module):
                _add(found, cls, "labctl")
    for point in entry_points(group=ENTRY_POINT_GROUP):
        origin = point.dist.name if point.dist is not None else "(unknown package)"
        try:
            loaded: Any = point.load()
        except Exception as exc:
            key = f"{point.name} ({origin})"
            found.setdefault(key, ProcedureEntry(key, None, origin, point.value,
                                                 f"cannot be loaded: {type(exc).__name__}: {exc}"))
            continue
        classes = _procedures_in(loaded) if isinstance(loaded, ModuleType) else [loaded]
        for cls in classes:
            _add(found, cls, origin)
    _discovered = found
    return found


def procedure_class(name: str) -> type[Procedure]:
    """A known procedure's name (``jv``) or an importable ``module:Class`` path."""
    from labctl.runner.procedure import Procedure

    entry = known_procedures().get(name)
    if entry is not None and entry.cls is not None:
        return entry.cls
    if ":" not in name:
        known = ", ".join(sorted(n for n, e in known_procedures().items() if e.cls is not None)) or "none"
        raise ParameterError(f"unknown procedure {name!r}; known procedures: {known}")
    module_name, _, class_name = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ParameterError(f"cannot load procedure {name!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Procedure)):
        raise ParameterError(f"{name} is not a labctl Procedure")
    return cls


def procedure_of_file(path: Any) -> type[Procedure] | None:
    """The procedure class that wrote a run file, by its recorded name or class path (None if it is not
    known here: an old name, a lab's package that is not installed)."""
    from labctl.store import RunReader

    with RunReader(path) as reader:
        names = [reader.procedure, reader.procedure_class]
    for name in names:
        if not name:
            continue
        try:
            return procedure_class(name)
        except ParameterError:
            continue
    return None
