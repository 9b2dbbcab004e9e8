"""Station driver keys to driver classes, imported only when a station uses them."""

from __future__ import annotations

import importlib
from typing import Any

from labctl.errors import StationError

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


def driver_class(key: str) -> Any:
    """The driver class for a station ``driver = "..."`` key."""
    try:
        target = DRIVERS[key]
    except KeyError:
        raise StationError(
            f"unknown driver {key!r}; known drivers: {', '.join(sorted(DRIVERS))}"
        ) from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
