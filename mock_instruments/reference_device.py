"""A simulated silicon reference cell: what a calibrated reference cell is to the world.

An ideal single-diode silicon cell whose photocurrent is exactly proportional to the irradiance: at 1 sun and
25 °C its short-circuit current is ``isc_A_per_sun``; the photocurrent rises with temperature by
``alpha_per_K`` (crystalline silicon: +0.05 %/K, a typical datasheet value; fill-in). It does not age, hold
ions or drift: a reference must not. It answers the calls the world and the instrument mocks make of a cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np

K_B_EV = 8.617333262e-5
T_REF_K = 298.15


class ReferenceDevice:
    """See the module docstring. Sign convention as for every cell: J > 0 is photocurrent (generation)."""

    def __init__(self, isc_A_per_sun: float, area_cm2: float = 4.0, j0_mA_cm2: float = 1e-9,
                 ideality: float = 1.1, rsh_ohm_cm2: float = 1e5, alpha_per_K: float = 5e-4,
                 capacitance_F_cm2: float = 5e-8) -> None:
        if not isc_A_per_sun > 0:
            raise ValueError(f"isc_A_per_sun must be > 0, got {isc_A_per_sun!r}")
        self.isc_A_per_sun = float(isc_A_per_sun)
        self.area_cm2 = float(area_cm2)
        self.j0_mA_cm2 = float(j0_mA_cm2)
        self.ideality = float(ideality)
        self.rsh_ohm_cm2 = float(rsh_ohm_cm2)
        self.alpha_per_K = float(alpha_per_K)
        self.capacitance_F_cm2 = float(capacitance_F_cm2)

    def photocurrent_mA_cm2(self, suns: float, temperature_K: float) -> float:
        jsc = self.isc_A_per_sun * 1e3 / self.area_cm2
        return jsc * suns * (1.0 + self.alpha_per_K * (temperature_K - T_REF_K))

    def current_density_mA_cm2(self, voltage_V: Any, suns: float, temperature_K: float) -> Any:
        v = np.asarray(voltage_V, dtype=float)
        vt = self.ideality * K_B_EV * temperature_K
        j = (self.photocurrent_mA_cm2(suns, temperature_K) - self.j0_mA_cm2 * np.expm1(np.minimum(v / vt, 200.0))
             - v / self.rsh_ohm_cm2 * 1e3)
        return float(j) if np.ndim(j) == 0 else j

    def voltage_at_current_density(self, j_mA_cm2: float, suns: float, temperature_K: float) -> float:
        """Solve J(V) = j by bisection (J falls monotonically with V)."""
        low, high = -5.0, 2.0
        for _ in range(80):
            mid = 0.5 * (low + high)
            if self.current_density_mA_cm2(mid, suns, temperature_K) > j_mA_cm2:
                low = mid
            else:
                high = mid
        return 0.5 * (low + high)

    def advance(self, dt_s: float, voltage_V: float | None, suns: float, temperature_K: float) -> None:
        """A reference keeps no state that changes with time."""

    def advance_at_current(self, dt_s: float, j_mA_cm2: float, suns: float, temperature_K: float) -> None:
        """Nothing to advance (see :meth:`advance`)."""

    def dwell_at_voltage(self, times_s: Any, voltage_V: float, suns: float, temperature_K: float) -> np.ndarray:
        j = self.current_density_mA_cm2(float(voltage_V), suns, temperature_K)
        return np.full(np.shape(np.asarray(times_s, dtype=float)), j)

    def dwell_at_current(self, times_s: Any, j_mA_cm2: float, suns: float, temperature_K: float) -> np.ndarray:
        v = self.voltage_at_current_density(float(j_mA_cm2), suns, temperature_K)
        return np.full(np.shape(np.asarray(times_s, dtype=float)), v)

    def steady_state_jv(self, voltage_V: Any, suns: float = 1.0, temperature_K: float = T_REF_K) -> np.ndarray:
        return np.asarray(self.current_density_mA_cm2(np.asarray(voltage_V, dtype=float), suns, temperature_K))

    def steady_voc_V(self, suns: float, temperature_K: float) -> float:
        return self.voltage_at_current_density(0.0, suns, temperature_K)

    def capacitance_F(self, voltage_V: float | None, frequency_Hz: float, temperature_K: float,
                      suns: float = 0.0) -> float:
        return self.capacitance_F_cm2 * self.area_cm2

    def conductance_S(self, voltage_V: float | None, frequency_Hz: float, temperature_K: float,
                      suns: float = 0.0) -> float:
        return self.area_cm2 / self.rsh_ohm_cm2

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "reference"}

    def load_state(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""

    def __repr__(self) -> str:
        return f"ReferenceDevice(isc_A_per_sun={self.isc_A_per_sun:g}, area_cm2={self.area_cm2:g})"

