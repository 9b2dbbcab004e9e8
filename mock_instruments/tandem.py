"""Two-terminal tandem: two PerovskiteCell subcells in series (same current, voltages add).

J(V) solves J_top(V_top) = J_bot(V − V_top) for the subcell voltage split (both sides strictly monotone, so a
bracketed Newton in V_top always converges). The subcells keep their own ions, degradation and segregation.
Capacitance and conductance are the series combination of the subcell admittances.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mock_instruments import diode

if TYPE_CHECKING:
    from mock_instruments.device import PerovskiteCell


class TandemCell:
    """All-perovskite two-terminal tandem (top = wide gap, bottom = narrow gap)."""

    def __init__(self, top: PerovskiteCell, bottom: PerovskiteCell, name: str = "tandem") -> None:
        if abs(top.area_cm2 - bottom.area_cm2) > 1e-12 * top.area_cm2:
            raise ValueError(f"{name}: subcell areas differ ({top.area_cm2} vs {bottom.area_cm2} cm²)")
        self.name = name
        self.top = top
        self.bottom = bottom
        self._last_split: tuple[tuple[float, float, bool], float, float] | None = None
        self._fresh_splits: dict[tuple[float, float, float], tuple[float, float]] = {}

    @property
    def area_cm2(self) -> float:
        return self.top.area_cm2

    @property
    def subcells(self) -> tuple[PerovskiteCell, PerovskiteCell]:
        return self.top, self.bottom

    # --- electrical --------------------------------------------------------------------------------
    def split_voltage(self, voltage_V: float, suns: float, temperature_K: float, steady: bool = False
                      ) -> tuple[float, float, float]:
        """(J, V_top, V_bot) at terminal voltage V (steady: each subcell's ions equilibrated)."""
        top, bot = self.top, self.bottom

        def residual(v_top: float) -> tuple[float, float]:
            jt, dt = top.current_and_slope(v_top, suns, temperature_K, steady)
            jb, db = bot.current_and_slope(voltage_V - v_top, suns, temperature_K, steady)
            return jt - jb, dt + db

        last = self._last_split
        if last is not None and last[0] == (suns, temperature_K, steady) and abs(voltage_V - last[1]) < 0.05:
            guess = last[2] + 0.6 * (voltage_V - last[1])  # the SMU reads near the last point
        else:
            voc_t = max(top.steady_voc_V(suns, temperature_K), 1e-3)
            voc_b = max(bot.steady_voc_V(suns, temperature_K), 1e-3)
            guess = voltage_V * voc_t / (voc_t + voc_b)
        v_top = diode.solve_decreasing(residual, 0.0, guess)
        self._last_split = ((suns, temperature_K, steady), voltage_V, v_top)
        j = top.current_and_slope(v_top, suns, temperature_K, steady)[0]
        return j, v_top, voltage_V - v_top

    def current_density_mA_cm2(self, voltage_V: float, suns: float, temperature_K: float) -> float:
        return self.split_voltage(float(voltage_V), suns, temperature_K)[0]

    def voltage_at_current_density(self, j_mA_cm2: float, suns: float, temperature_K: float) -> float:
        return (self.top.voltage_at_current_density(j_mA_cm2, suns, temperature_K)
                + self.bottom.voltage_at_current_density(j_mA_cm2, suns, temperature_K))

    def steady_voc_V(self, suns: float, temperature_K: float) -> float:
        return self.top.steady_voc_V(suns, temperature_K) + self.bottom.steady_voc_V(suns, temperature_K)

    def steady_state_jv(self, voltage_V: npt.ArrayLike, suns: float = 1.0,
                        temperature_K: float = 298.15) -> np.ndarray:
        """Ions equilibrated in both subcells: V(J) = V_top(J) + V_bot(J) is explicit, J(V) follows from a
        dense-grid interpolation polished by vectorised Newton steps (dV/dJ = −Σ(1/g_d + R_s))."""
        v = np.asarray(voltage_V, dtype=float)
        flat = v.ravel()
        if flat.size == 0:
            return np.empty(v.shape)
        pars = [c._diode(suns, temperature_K) for c in self.subcells]

        def v_of_j(j: np.ndarray) -> np.ndarray:
            return sum((diode.voltage_from_current_array(j, *p) for p in pars), start=np.zeros_like(j))

        def dv_dj(j: np.ndarray, vs: list[np.ndarray]) -> np.ndarray:
            out = np.zeros_like(j)
            for (_, j0, rs, rsh, a), vi in zip(pars, vs, strict=True):
                gd = (j0 / a) * np.exp(np.minimum((vi + j * rs) / a, 700.0)) + 1.0 / rsh
                out -= 1.0 / gd + rs
            return out

        j_lo, j_hi = -1.0, max(p[0] for p in pars) + 1.0
        while v_of_j(np.array([j_lo]))[0] < flat.max():
            j_lo *= 2.0
        while v_of_j(np.array([j_hi]))[0] > flat.min():
            j_hi = 2.0 * j_hi + 1.0
        grid = np.linspace(j_lo, j_hi, 4001)
        v_grid = v_of_j(grid)
        j = np.interp(flat, v_grid[::-1], grid[::-1])
        for _ in range(8):
            vs = [diode.voltage_from_current_array(j, *p) for p in pars]
            step = (vs[0] + vs[1] - flat) / dv_dj(j, vs)
            j = j - step
            if np.all(np.abs(step) <= 1e-12 * (1.0 + np.abs(j))):
                break
        return j.reshape(v.shape)

    # --- time evolution ----------------------------------------------------------------------------
    def advance(self, dt_s: float, voltage_V: float | None, suns: float, temperature_K: float) -> None:
        """Exact over dt at constant conditions. At open circuit both subcells sit at their own Voc; at a
        fixed terminal voltage the stress bias is the fresh cell's steady split and the ions relax towards
        the end-of-step steady split."""
        if not dt_s >= 0.0 or not math.isfinite(dt_s):
            raise ValueError(f"dt_s = {dt_s!r} is outside the allowed range [0, inf) s")
        if voltage_V is None:
            self.top.advance(dt_s, None, suns, temperature_K)
            self.bottom.advance(dt_s, None, suns, temperature_K)
            return
        if dt_s == 0.0:
            return
        v = float(voltage_V)
        key = (v, suns, temperature_K)
        fresh_split = self._fresh_splits.get(key)
        if fresh_split is None:
            with self.top.fresh(), self.bottom.fresh():
                fresh_split = self.split_voltage(v, suns, temperature_K, steady=True)[1:]
            if len(self._fresh_splits) > 256:
                self._fresh_splits.clear()
            self._fresh_splits[key] = fresh_split
        vt_fresh, vb_fresh = fresh_split
        seg_t = self.top._advance_slow(dt_s, vt_fresh, suns, temperature_K)
        seg_b = self.bottom._advance_slow(dt_s, vb_fresh, suns, temperature_K)
        _, vt, vb = self.split_voltage(v, suns, temperature_K, steady=True)
        self.top._advance_ions(dt_s, vt, suns, temperature_K, seg_t)
        self.bottom._advance_ions(dt_s, vb, suns, temperature_K, seg_b)

    # --- small signal ------------------------------------------------------------------------------
    def _admittance(self, voltage_V: float, frequency_Hz: float, temperature_K: float, suns: float
                    ) -> complex:
        _, vt, vb = self.split_voltage(float(voltage_V), suns, temperature_K)
        yt = self.top._admittance(vt, frequency_Hz, temperature_K, suns)
        yb = self.bottom._admittance(vb, frequency_Hz, temperature_K, suns)
        return 1.0 / (1.0 / yt + 1.0 / yb)

    def capacitance_F(self, voltage_V: float, frequency_Hz: float, temperature_K: float,
                      suns: float = 0.0) -> float:
        y = self._admittance(voltage_V, frequency_Hz, temperature_K, suns)
        return y.imag / (2 * math.pi * frequency_Hz)

    def conductance_S(self, voltage_V: float, frequency_Hz: float, temperature_K: float,
                      suns: float = 0.0) -> float:
        return self._admittance(voltage_V, frequency_Hz, temperature_K, suns).real

    def damage(self) -> float:
        return max(self.top.damage(), self.bottom.damage())

    # --- bookkeeping -------------------------------------------------------------------------------
    def copy(self) -> TandemCell:
        return copy.deepcopy(self)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "top": self.top.state_dict(), "bottom": self.bottom.state_dict()}

    def load_state(self, d: dict[str, Any]) -> None:
        self.top.load_state(d["top"])
        self.bottom.load_state(d["bottom"])

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "area_cm2": self.area_cm2, "top": self.top.describe(),
                "bottom": self.bottom.describe()}
