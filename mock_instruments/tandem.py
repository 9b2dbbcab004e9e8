"""Two-terminal tandem: two PerovskiteCell subcells in series (same current, voltages add).

J(V) solves J_top(V_top) = J_bot(V − V_top) for the subcell voltage split with Newton steps in V_top from the
last split (a reading usually comes near the previous one, so one step of two subcell evaluations is the
common case: the tandem costs about twice a single cell); a bracketed solver takes over if Newton does not
settle. The subcells keep their own ions, degradation and segregation; the bottom cell only gets the photons
the top cell lets through (its photocurrent follows both absorption edges as they move with temperature).
At a constant current the subcells are independent (each carries that current); at a constant voltage the
stepper (stepping.py) re-solves the split at each sub-step's start and midpoint. Capacitance and conductance
are the series combination of the subcell admittances. The charging current of the series junction
capacitances after a voltage step is not modelled for the tandem.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mock_instruments import diode, stepping
from mock_instruments.stepping import OperatingPoint, check_conditions, check_step

if TYPE_CHECKING:
    from mock_instruments.device import PerovskiteCell

NEWTON_DONE_V = 1e-6  # a Newton step this small leaves an error ≈ step²/a ≈ 1e-11 V: stop after it
# A chord step (slopes of the last split) this small leaves an error ≈ step × (relative change of the slope since
# then), < 1e-9 V for a split solved moments ago.
CHORD_DONE_V = 1e-7


class TandemCell:
    """All-perovskite two-terminal tandem (top = wide gap, bottom = narrow gap)."""

    def __init__(self, top: PerovskiteCell, bottom: PerovskiteCell, name: str = "tandem") -> None:
        if abs(top.area_cm2 - bottom.area_cm2) > 1e-12 * top.area_cm2:
            raise ValueError(f"{name}: subcell areas differ ({top.area_cm2} vs {bottom.area_cm2} cm²)")
        self.name = name
        self.top = top
        self.bottom = bottom
        bottom._filter = (top.bandgap_eV, top.bandgap_tc_eV_K)
        bottom._changed()
        # the last split solved (see _remember)
        self._last_split: list[Any] | None = None
        self._step_history: tuple[Any, ...] | None = None  # stepping.py's record of the last step

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
        last = self._last_split
        if last is not None and last[0] == suns and last[1] == temperature_K and last[2] == steady:
            if last[9] == voltage_V and last[10] == top._version and last[11] == bot._version:
                return last[12]  # nothing changed since
            x = last[4] + last[5] * (voltage_V - last[3])
            if not steady:  # a chord step with the last slopes: two current evaluations, no derivatives
                jt = top._j(x, top._constants(suns, temperature_K), False)[0]
                jb = bot._j(voltage_V - x, bot._constants(suns, temperature_K), False)[0]
                step = (jt - jb) / (last[6] + last[7])
                if -CHORD_DONE_V < step < CHORD_DONE_V:
                    x -= step
                    result = (jt - last[6] * step, x, voltage_V - x)
                    last[3], last[4], last[9:] = voltage_V, x, (voltage_V, top._version, bot._version, result)
                    return result
        else:
            voc_t = max(top.steady_voc_V(suns, temperature_K), 1e-3)
            voc_b = max(bot.steady_voc_V(suns, temperature_K), 1e-3)
            x = voltage_V * voc_t / (voc_t + voc_b)
        for _ in range(8):
            jt, st = top.current_and_slope(x, suns, temperature_K, steady)
            jb, sb = bot.current_and_slope(voltage_V - x, suns, temperature_K, steady)
            slope = st + sb
            if not slope < 0.0:
                break
            step = (jt - jb) / slope
            x -= step
            if abs(step) < NEWTON_DONE_V:
                result = (jt - st * step, x, voltage_V - x)  # J_top moved along its slope by −step
                self._remember(suns, temperature_K, steady, voltage_V, x, sb / slope, st, sb, result)
                return result
            if abs(step) > 0.2:
                break
        return self._bracketed_split(voltage_V, suns, temperature_K, steady)

    def _remember(self, suns: float, temperature_K: float, steady: bool, voltage_V: float, v_top: float,
                  ratio: float, slope_top: float, slope_bottom: float, result: tuple[float, float, float]) -> None:
        """Keep a solved split: the next one starts from it (and returns it if nothing changed)."""
        self._last_split = [suns, temperature_K, steady, voltage_V, v_top, ratio, slope_top, slope_bottom, None,
                            voltage_V, self.top._version, self.bottom._version, result]

    def _bracketed_split(self, voltage_V: float, suns: float, temperature_K: float, steady: bool
                         ) -> tuple[float, float, float]:
        top, bot = self.top, self.bottom

        def residual(v_top: float) -> tuple[float, float]:
            jt, dt = top.current_and_slope(v_top, suns, temperature_K, steady)
            jb, db = bot.current_and_slope(voltage_V - v_top, suns, temperature_K, steady)
            return jt - jb, dt + db

        voc_t = max(top.steady_voc_V(suns, temperature_K), 1e-3)
        voc_b = max(bot.steady_voc_V(suns, temperature_K), 1e-3)
        v_top = diode.solve_decreasing(residual, 0.0, voltage_V * voc_t / (voc_t + voc_b))
        jt, st = top.current_and_slope(v_top, suns, temperature_K, steady)
        sb = bot.current_and_slope(voltage_V - v_top, suns, temperature_K, steady)[1]
        result = (jt, v_top, voltage_V - v_top)
        self._remember(suns, temperature_K, steady, voltage_V, v_top, sb / (st + sb), st, sb, result)
        return result

    def current_density_mA_cm2(self, voltage_V: float, suns: float, temperature_K: float) -> float:
        check_conditions(suns, temperature_K)
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
        grid = np.linspace(j_lo, j_hi, 1001)
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
        """Evolve over dt_s at a constant terminal voltage (None = open circuit: each subcell at its own
        Voc, carrying no current)."""
        if voltage_V is None:
            self.advance_at_current(dt_s, 0.0, suns, temperature_K)
            return
        _check(dt_s, suns, temperature_K)
        if dt_s > 0.0:
            stepping.integrate(self, dt_s, "V", float(voltage_V), suns, temperature_K)

    def advance_at_current(self, dt_s: float, j_mA_cm2: float, suns: float, temperature_K: float) -> None:
        """Both subcells carry j: each evolves on its own (exactly as a single cell would)."""
        self.top.advance_at_current(dt_s, j_mA_cm2, suns, temperature_K)
        self.bottom.advance_at_current(dt_s, j_mA_cm2, suns, temperature_K)

    def dwell_at_voltage(self, times_s: npt.ArrayLike, voltage_V: float, suns: float, temperature_K: float
                         ) -> np.ndarray:
        """J (mA/cm²) at each offset of ``times_s`` while held at ``voltage_V`` (see PerovskiteCell)."""
        _check(0.0, suns, temperature_K)
        t = stepping.check_times(times_s)
        v = float(voltage_V)
        return stepping.dwell(self, t, "V", v, suns, temperature_K,
                              lambda dt: stepping.integrate(self, dt, "V", v, suns, temperature_K))

    def dwell_at_current(self, times_s: npt.ArrayLike, j_mA_cm2: float, suns: float, temperature_K: float
                         ) -> np.ndarray:
        """Terminal voltage at each offset while carrying ``j_mA_cm2``: the subcells' voltages add."""
        return (self.top.dwell_at_current(times_s, j_mA_cm2, suns, temperature_K)
                + self.bottom.dwell_at_current(times_s, j_mA_cm2, suns, temperature_K))

    # --- stepping hooks (stepping.Model, constant terminal voltage) ----------------------------------
    def _rate_tolerances(self) -> tuple[float, ...]:
        return self.top._rate_tolerances() + self.bottom._rate_tolerances()

    def _state_version(self) -> Any:
        return self.top._version, self.bottom._version

    def _snapshot(self) -> tuple[Any, Any]:
        return self.top._snapshot(), self.bottom._snapshot()

    def _restore(self, snapshot: tuple[Any, Any]) -> None:
        self.top._restore(snapshot[0])
        self.bottom._restore(snapshot[1])

    def _operating_point(self, mode: str, value: float, suns: float, temperature_K: float) -> OperatingPoint:
        j, vt, vb = self.split_voltage(value, suns, temperature_K)
        rates = self.top.slow_rates(vt, j, suns, temperature_K) + self.bottom.slow_rates(vb, j, suns,
                                                                                         temperature_K)
        return OperatingPoint((vt, vb), rates, j)

    def _reading(self, mode: str, value: float, suns: float, temperature_K: float) -> float:
        return self.current_density_mA_cm2(value, suns, temperature_K)

    def _apply(self, h_s: float, op0: OperatingPoint, opm: OperatingPoint, suns: float,
               temperature_K: float) -> None:
        for i, cell in enumerate(self.subcells):
            v0 = op0.voltages[i]
            cell._apply_junction(h_s, v0, 2.0 * opm.voltages[i] - v0, opm.rates[2 * i:2 * i + 2], suns,
                                 temperature_K)

    def _path_readings(self, t_s: np.ndarray, h_s: float, op0: OperatingPoint, opm: OperatingPoint, mode: str,
                       value: float, suns: float, temperature_K: float) -> np.ndarray:
        paths = []
        for i, cell in enumerate(self.subcells):
            v0 = op0.voltages[i]
            paths.append(cell._path(t_s, h_s, v0, 2.0 * opm.voltages[i] - v0, opm.rates[2 * i:2 * i + 2], suns,
                                    temperature_K))
        vt0, vt1 = op0.voltages[0], 2.0 * opm.voltages[0] - op0.voltages[0]
        x = vt0 + (vt1 - vt0) * t_s / h_s
        j = np.zeros_like(t_s)
        for _ in range(30):
            jt, st = paths[0].current_and_slope(x)
            jb, sb = paths[1].current_and_slope(value - x)
            step = (jt - jb) / (st + sb)
            x = x - step
            j = jt - st * step
            if np.all(np.abs(step) < NEWTON_DONE_V):
                break
        return np.asarray(j)

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


def _check(dt_s: float, suns: float, temperature_K: float) -> None:
    check_conditions(suns, temperature_K)
    check_step(dt_s)
