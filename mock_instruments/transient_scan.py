"""A J–V scan through the same ion dynamics the instrument mocks use.

A source-meter sweep is a staircase: at each point the voltage is set, held for the step time |ΔV|/rate
(the ions and everything else evolve exactly over it through ``cell.advance``), then the current is read
(``cell.current_density_mA_cm2``). The reading includes what is left of the junction's charging current
(device.py): it decays within R_s·C (a few µs for the presets), so it shows only in scans faster than
~1e4 V/s.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from mock_instruments.device import SolarCellModel


def transient_scan(cell: SolarCellModel, voltage_V: npt.ArrayLike, scan_rate_V_s: float, suns: float = 1.0,
                   temperature_K: float = 298.15, precondition_V: float | None = None,
                   precondition_s: float = 0.0) -> np.ndarray:
    """Scan ``cell`` through ``voltage_V`` (in the order given) at ``scan_rate_V_s``; returns J in mA/cm².

    ``precondition_s`` > 0 first holds the cell at ``precondition_V`` (None = open circuit, i.e. light
    soaking at Voc) under the same light and temperature. The cell's state is changed (like a real device)."""
    v = np.asarray(voltage_V, dtype=float).ravel()
    if not scan_rate_V_s > 0.0 or not math.isfinite(scan_rate_V_s):
        raise ValueError(f"scan_rate_V_s = {scan_rate_V_s!r} is outside the allowed range (0, inf) V/s")
    if not precondition_s >= 0.0:
        raise ValueError(f"precondition_s = {precondition_s!r} is outside the allowed range [0, inf) s")
    if v.size == 0:
        return np.empty(0)
    if precondition_s > 0.0:
        cell.advance(precondition_s, precondition_V, suns, temperature_K)
    steps = np.abs(np.diff(v))
    first = float(np.median(steps)) if steps.size else 0.0
    dwell = np.concatenate(([first], steps)) / scan_rate_V_s
    out = np.empty(v.size)
    for i, (vi, dt) in enumerate(zip(v, dwell, strict=True)):
        cell.advance(float(dt), float(vi), suns, temperature_K)
        out[i] = cell.current_density_mA_cm2(float(vi), suns, temperature_K)
    return out
