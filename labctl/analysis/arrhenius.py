"""Straight-line fits of Arrhenius plots with standard errors, shared by the TID and TAS analyses.

A thermally activated rate r(T) = r0·T^p·exp(−E/kT) is fitted as ln(r/T^p) = ln r0 − E/(k·T): a weighted
least-squares line in x = 1/T. Standard errors are those of the weighted fit with the weights' scale taken
from the scatter of the points (as ``scipy.optimize.curve_fit(absolute_sigma=False)``): with the per-point
uncertainties given only relative to each other (or not at all), the residuals set the absolute scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import constants

#: Boltzmann constant in eV/K.
K_B_EV_K: float = constants.value("Boltzmann constant in eV/K")
#: Elementary charge (C), Boltzmann constant (J/K), vacuum permittivity (F/m).
Q_C: float = constants.e
K_B_J_K: float = constants.k
EPS0_F_M: float = constants.epsilon_0


class ArrheniusError(ValueError):
    """Too few or unusable points for an Arrhenius fit."""


@dataclass(frozen=True)
class ArrheniusFit:
    """ln(y) = intercept − energy_eV/(k·T); ``energy_err_eV`` and ``intercept_err`` are standard errors
    (NaN with only two temperatures)."""

    energy_eV: float
    energy_err_eV: float
    intercept: float
    intercept_err: float
    temperatures_K: tuple[float, ...]
    residual_rms: float


def fit_arrhenius(temperature_K: npt.ArrayLike, log_y: npt.ArrayLike, log_y_err: npt.ArrayLike | None = None
                  ) -> ArrheniusFit:
    """Fit ln y = a − E/(kT) to ``log_y`` (already the logarithm, e.g. ln(T/τ)) at ``temperature_K``.

    ``log_y_err`` (standard errors of ``log_y``) weights the points; the absolute scale of the errors comes
    from the residuals (module docstring)."""
    t = np.asarray(temperature_K, dtype=float).ravel()
    y = np.asarray(log_y, dtype=float).ravel()
    if t.shape != y.shape:
        raise ArrheniusError(f"{t.size} temperatures but {y.size} values")
    if t.size < 2 or np.unique(t).size < 2:
        raise ArrheniusError(f"an Arrhenius fit needs at least 2 distinct temperatures, got {np.unique(t).size}")
    if np.any(~np.isfinite(t)) or np.any(t <= 0) or np.any(~np.isfinite(y)):
        raise ArrheniusError("temperatures must be finite and > 0 K, values finite")
    sigma = np.ones_like(y) if log_y_err is None else np.asarray(log_y_err, dtype=float).ravel()
    if sigma.shape != y.shape or np.any(~(sigma > 0)):
        raise ArrheniusError("log_y_err must be one positive value per point")
    x = 1.0 / t
    w = 1.0 / sigma**2
    design = np.column_stack([np.ones_like(x), x]) * np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(design, y * np.sqrt(w), rcond=None)
    residual = y - (coef[0] + coef[1] * x)
    dof = t.size - 2
    if dof > 0:
        scale = float(np.sum(w * residual**2)) / dof
        cov = np.linalg.inv(design.T @ design) * scale
        intercept_err, slope_err = math.sqrt(cov[0, 0]), math.sqrt(cov[1, 1])
    else:
        intercept_err = slope_err = math.nan
    return ArrheniusFit(energy_eV=-float(coef[1]) * K_B_EV_K, energy_err_eV=slope_err * K_B_EV_K,
                        intercept=float(coef[0]), intercept_err=intercept_err,
                        temperatures_K=tuple(float(v) for v in t),
                        residual_rms=float(np.sqrt(np.mean(residual**2))))
