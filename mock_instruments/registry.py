"""Station driver keys to instrument-mock classes, imported only when a simulated station uses them.

The keys are the same as :data:`drivers.registry.DRIVERS`: a ``sim://<model>`` address opens the mock
registered here. A model without a mock yet is listed with an empty target.
"""

from __future__ import annotations

import importlib
from typing import Any

from labctl.errors import StationError

MOCKS: dict[str, str] = {
    "keithley2400": "mock_instruments.keithley2400:MockKeithley2400",
    "keithley2450": "mock_instruments.keithley2450:MockKeithley2450",
    "keithley2600": "mock_instruments.keithley2600:MockKeithley2600",
    "keysight_b2900": "mock_instruments.keysight_b2900:MockKeysightB2900",
    "keysight_e4980a": "mock_instruments.keysight_e4980a:MockKeysightE4980A",
    "lakeshore336": "mock_instruments.lakeshore336:MockLakeShore336",
    "lakeshore335": "mock_instruments.lakeshore335:MockLakeShore335",
    "mercury_itc": "mock_instruments.mercury_itc:MockMercuryITC",
    "wavelabs_sinus70": "mock_instruments.wavelabs_sinus70:MockWavelabsSinus70",
    "newport_lss7120": "mock_instruments.newport_lss7120:MockNewportLSS7120",
    "keithley7001": "mock_instruments.keithley7001:MockKeithley7001",
    "serial_mux": "mock_instruments.serial_mux:MockSerialMux",
}


def mock_class(model: str) -> Any:
    """The mock class for a model key (``"keithley2450"``); StationError if there is none."""
    target = MOCKS.get(model)
    if target is None:
        raise StationError(f"no simulated instrument for model {model!r}; known: {', '.join(sorted(MOCKS))}")
    if not target:
        raise StationError(f"model {model!r} has no simulated instrument yet")
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
