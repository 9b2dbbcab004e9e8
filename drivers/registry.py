"""Station driver keys to driver classes: labctl's own, and any installed package's through the
``labctl.drivers`` entry point group (``key = "package.module:Class"``), imported only when used.

A lab adds its own instrument by publishing, in its package's metadata::

    [project.entry-points."labctl.drivers"]
    acme_smu = "acme_lab.smu:AcmeSMU"

and naming ``driver = "acme_smu"`` in a station file; `labctl drivers` lists it with where it came from.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from labctl.errors import StationError

ENTRY_POINT_GROUP = "labctl.drivers"

DRIVERS: dict[str, str] = {
    "keithley2400": "drivers.keithley2400:Keithley2400",
    "keithley2450": "drivers.keithley2450:Keithley2450",
    "keithley2600": "drivers.keithley2600:Keithley2600",
    "keysight_b2900": "drivers.keysight_b2900:KeysightB2900",
    "keysight_e4980a": "drivers.keysight_e4980a:KeysightE4980A",
    "lakeshore336": "drivers.lakeshore336:LakeShore336",
    "lakeshore335": "drivers.lakeshore335:LakeShore335",
    "mercury_itc": "drivers.mercury_itc:MercuryITC",
    "wavelabs_sinus70": "drivers.wavelabs_sinus70:WavelabsSinus70",
    "newport_lss7120": "drivers.newport_lss7120:NewportLSS7120",
    "keithley7001": "drivers.keithley7001:Keithley7001",
    "serial_mux": "drivers.serial_mux:SerialMux",
}


@dataclass(frozen=True)
class DriverEntry:
    key: str
    target: str
    origin: str  # "labctl" or the distribution that registered it


def known_drivers() -> dict[str, DriverEntry]:
    """Every driver key: labctl's own first; an installed package cannot replace one of them."""
    found = {key: DriverEntry(key, target, "labctl") for key, target in DRIVERS.items()}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in found:
            continue
        origin = point.dist.name if point.dist is not None else "(unknown package)"
        found[point.name] = DriverEntry(point.name, point.value, origin)
    return found


def driver_class(key: str) -> Any:
    """The driver class for a station ``driver = "..."`` key."""
    entry = known_drivers().get(key)
    if entry is None:
        raise StationError(f"unknown driver {key!r}; known drivers: {', '.join(sorted(known_drivers()))}")
    module_name, _, class_name = entry.target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise StationError(f"driver {key!r} ({entry.target}, from {entry.origin}) cannot be loaded: {exc}") from exc
