"""MPPT-like rows from the simulated bench's cell model, for the store benchmarks (not random numbers).

A cell (``mock_instruments.presets``) is aged at its maximum power point, 1 sun, 65 °C, in steps of
``step_s``: at each step the tracker's voltage is the maximum of the cell's steady-state P(V), and the
rows of that step follow a perturb-and-observe dither (Vmpp - dV, Vmpp, Vmpp + dV, Vmpp, ...) with the
current of the cell at that voltage. Readings get the Keithley 2450 mock's noise (1e-5 of the range for
current, 5e-6 for voltage, NPLC 1) and its reply format (8 significant digits, ``.7E``); current density
and power are computed from the readings, as the J–V procedure does; time is the run's clock in s since
the Unix epoch with a millisecond of scheduling jitter. The columns are those of an aging channel:
time_s, voltage_V, current_A, current_density_mA_cm2, power_mW_cm2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mock_instruments.presets import preset

COLUMNS = {"time_s": "s", "voltage_V": "V", "current_A": "A", "current_density_mA_cm2": "mA/cm2",
           "power_mW_cm2": "mW/cm2"}
#: Stored as float32, as an aging channel's trace is (labctl.store: ``single_precision``); time stays float64.
SINGLE_PRECISION = ("voltage_V", "current_A", "current_density_mA_cm2", "power_mW_cm2")
START_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z, the virtual clock's epoch
TEMPERATURE_K = 338.15
DITHER_V = 0.005
CURRENT_RANGE_A = 0.01
VOLTAGE_RANGE_V = 2.0


def trajectory(name: str, hours: float, step_s: float = 600.0) -> np.ndarray:
    """(steps, 4): Vmpp and J at Vmpp - dV, Vmpp, Vmpp + dV (mA/cm2, photocurrent positive) per step."""
    cell = preset(name)
    n = int(np.ceil(hours * 3600.0 / step_s)) + 1
    out = np.empty((n, 4))
    v_guess = 0.9 * cell.steady_voc_V(1.0, TEMPERATURE_K)
    for k in range(n):
        grid = v_guess + np.linspace(-0.06, 0.06, 25)
        j = np.abs(cell.steady_state_jv(grid, 1.0, TEMPERATURE_K))
        v_guess = float(grid[int(np.argmax(grid * j))])
        out[k, 0] = v_guess
        out[k, 1:] = np.abs(cell.steady_state_jv(v_guess + np.array([-DITHER_V, 0.0, DITHER_V]), 1.0,
                                                 TEMPERATURE_K))
        cell.advance(step_s, v_guess, 1.0, TEMPERATURE_K)
    return out


def _readback(x: np.ndarray) -> np.ndarray:
    """``float(f"{x:.7E}")`` for an array: the 8 significant digits the instrument sends."""
    with np.errstate(divide="ignore"):
        exp = np.floor(np.log10(np.abs(np.where(x == 0, 1.0, x))))
    scale = 10.0 ** (7 - exp)
    return np.round(x * scale) / scale


def rows(traj: np.ndarray, first_s: int, n: int, rng: np.random.Generator, area_cm2: float = 0.1,
         step_s: float = 600.0, scale: float = 1.0) -> dict[str, np.ndarray]:
    """``n`` rows at 1 Hz from second ``first_s`` of the run."""
    t = np.arange(first_s, first_s + n, dtype=np.float64)
    k = np.minimum((t // step_s).astype(np.int64), len(traj) - 1)
    phase = np.array([0, 1, 2, 1])[(t.astype(np.int64)) % 4]  # P&O dither around Vmpp
    v = traj[k, 0] + (phase - 1) * DITHER_V
    j = traj[k, 1 + phase] * scale
    current = -j * area_cm2 * 1e-3 + 1e-5 * CURRENT_RANGE_A * rng.standard_normal(n)
    voltage = v + 5e-6 * VOLTAGE_RANGE_V * rng.standard_normal(n)
    current, voltage = _readback(current), _readback(voltage)
    density = -current / area_cm2 * 1e3
    time_s = np.round(START_S + t + 1e-3 * rng.standard_normal(n), 6)
    return {"time_s": time_s, "voltage_V": voltage, "current_A": current, "current_density_mA_cm2": density,
            "power_mW_cm2": voltage * density}
