"""Capacitance–voltage: Mott–Schottky analysis → built-in voltage V_bi and space-charge density N_A.

In the depletion regime 1/C² = 2·(V_bi − V − kT/q)/(q·ε·ε0·N_A·A²) (SCIENCE.md): a straight line in V whose
slope gives N_A = −2/(q·ε·ε0·A²·slope) and whose intercept V0 (1/C² = 0) gives V_bi = V0 + kT/q.

Automatic fit window (the depletion regime of a thin, near-intrinsic absorber is bounded by full depletion
in reverse bias, where C stops changing, and by flat band in forward bias, where the chemical capacitance and
the Debye-length limit take over): of every contiguous run of at least ``min_points`` voltages, the one with
the most points is taken whose straight-line fit has

- a negative slope,
- every point within ``tolerance`` (default 1 %) of the line, relative to 1/C² there,
- 1/C² changing by at least 10 % across the run (a flat, fully depleted stretch is not a Mott–Schottky line);

ties go to the smallest residual. ``fit_window_V`` overrides the choice. Repeated voltages (a forward and a
backward sweep) are averaged first; their largest relative difference is reported as ``hysteresis``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from labctl.analysis.arrhenius import EPS0_F_M, K_B_EV_K, Q_C

MIN_CHANGE = 0.10
DEFAULT_TOLERANCE = 0.01
DEFAULT_MIN_POINTS = 5


class CVAnalysisError(ValueError):
    """The data cannot give a Mott–Schottky fit."""


@dataclass(frozen=True)
class MottSchottky:
    v_bi_V: float
    n_a_cm3: float
    fit_window_V: tuple[float, float]
    n_points: int
    slope_per_F2_V: float
    intercept_V: float
    max_relative_residual: float
    hysteresis: float
    automatic: bool

    def as_dict(self) -> dict[str, Any]:
        return {"v_bi_V": self.v_bi_V, "n_a_cm3": self.n_a_cm3, "fit_window_V": list(self.fit_window_V),
                "n_points": self.n_points, "max_relative_residual": self.max_relative_residual,
                "hysteresis": self.hysteresis, "automatic_window": self.automatic}


def _merge(v: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Sorted unique voltages with the mean capacitance at each, and the largest relative spread."""
    keys = np.round(v, 9)
    unique = np.unique(keys)
    mean = np.array([np.mean(c[keys == u]) for u in unique])
    spread = max((float(np.ptp(c[keys == u]) / m) for u, m in zip(unique, mean, strict=True)), default=0.0)
    return unique, mean, spread


def _line(v: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    slope, intercept = np.polyfit(v, y, 1)
    worst = float(np.max(np.abs(y - (slope * v + intercept)) / y))
    return float(slope), float(intercept), worst


def mott_schottky(voltage_V: npt.ArrayLike, capacitance_F: npt.ArrayLike, *, area_cm2: float, eps_r: float,
                  temperature_K: float, fit_window_V: tuple[float, float] | None = None,
                  tolerance: float = DEFAULT_TOLERANCE, min_points: int = DEFAULT_MIN_POINTS) -> MottSchottky:
    """V_bi and N_A from C(V) in the dark (module docstring). Capacitance in F for the whole device of
    ``area_cm2``; ``eps_r`` the absorber's relative permittivity."""
    for name, value in (("area_cm2", area_cm2), ("eps_r", eps_r), ("temperature_K", temperature_K),
                        ("tolerance", tolerance)):
        if not (value > 0 and math.isfinite(value)):
            raise CVAnalysisError(f"{name} = {value!r}; allowed: > 0")
    if min_points < 3:
        raise CVAnalysisError(f"min_points = {min_points!r}; allowed: ≥ 3")
    v = np.asarray(voltage_V, dtype=float).ravel()
    c = np.asarray(capacitance_F, dtype=float).ravel()
    if v.shape != c.shape:
        raise CVAnalysisError(f"voltage has {v.size} points but capacitance has {c.size}")
    keep = np.isfinite(v) & np.isfinite(c) & (c > 0)
    v, c, hysteresis = _merge(v[keep], c[keep])
    y = 1.0 / c**2
    automatic = fit_window_V is None
    if fit_window_V is not None:
        lo, hi = sorted(float(x) for x in fit_window_V)
        chosen = np.nonzero((v >= lo - 1e-12) & (v <= hi + 1e-12))[0]
        if chosen.size < 3:
            raise CVAnalysisError(f"fit_window_V = {fit_window_V!r} holds {chosen.size} voltages; need ≥ 3")
        i, j = int(chosen[0]), int(chosen[-1]) + 1
    else:
        i, j = _auto_window(v, y, tolerance, min_points)
    slope, intercept, worst = _line(v[i:j], y[i:j])
    if not slope < 0:
        raise CVAnalysisError(f"1/C² does not fall with V over {v[i]:.3g}–{v[j - 1]:.3g} V (slope {slope:.3g})")
    area_m2 = area_cm2 * 1e-4
    n_a = -2.0 / (Q_C * eps_r * EPS0_F_M * area_m2**2 * slope) * 1e-6
    v0 = -intercept / slope
    return MottSchottky(v_bi_V=v0 + K_B_EV_K * temperature_K, n_a_cm3=n_a,
                        fit_window_V=(float(v[i]), float(v[j - 1])), n_points=j - i, slope_per_F2_V=slope,
                        intercept_V=v0, max_relative_residual=worst, hysteresis=hysteresis, automatic=automatic)


def _auto_window(v: np.ndarray, y: np.ndarray, tolerance: float, min_points: int) -> tuple[int, int]:
    best: tuple[int, float, int, int] | None = None
    n = v.size
    for i in range(n):
        for j in range(i + min_points, n + 1):
            slope, _, worst = _line(v[i:j], y[i:j])
            if slope >= 0 or worst > tolerance:
                continue
            if np.ptp(y[i:j]) < MIN_CHANGE * float(np.max(y[i:j])):
                continue
            key = (j - i, -worst, i, j)
            if best is None or key[:2] > best[:2]:
                best = key
    if best is None:
        raise CVAnalysisError(f"no run of ≥ {min_points} voltages where 1/C² falls linearly within "
                              f"{tolerance:.1%} and changes by ≥ {MIN_CHANGE:.0%}")
    return best[2], best[3]
