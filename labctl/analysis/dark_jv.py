"""Dark J–V: ideality factor, saturation current density, series and shunt resistance.

Model (single diode, no light): the forward current density
``J = J0·(exp((V − J·Rs)/(n·kT/q)) − 1) + (V − J·Rs)/Rsh``. Conventions: ``voltage_V`` as applied, ``J`` in
mA/cm² with the *forward* (injection) current positive — the opposite sign of a lit cell's photocurrent;
:func:`dark_jv_metrics` accepts either and says which it found. Resistances in Ω·cm².

Method (each step on the points the previous one leaves credible):

1. Rsh: a straight line through the points with |V| ≤ 0.1 V (at least 3 nearest 0 V): ``Rsh = dV/dJ``.
2. Exponential region: the diode current ``J − V/Rsh``; the local ideality ``n(V) = (q/kT)·dV/d ln J_d`` over
   the points where the diode current exceeds ten times the shunt current; the region is the contiguous run
   of points around the smallest local ideality (3-point running mean) whose local ideality is within 10 % of
   it (below the region the shunt dominates, above it the series resistance). A straight line of
   ``ln J_d`` against V there gives n and J0.
3. Rs: at the highest currents the voltage exceeds the diode's ``n·kT/q·ln(J_d/J0 + 1)`` by ``J·Rs``: the median
   of that excess over J across the top quarter of the points above the exponential region.
4. Two refinements: steps 2–3 again on the junction voltage ``V − J·Rs``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

K_B_EV = 8.617333262e-5  # Boltzmann constant, eV/K
#: The exponential region: the points around the smallest local ideality within this factor of it.
REGION_SPREAD = 1.1


class DarkJVError(ValueError):
    """The curve cannot give the dark metrics (too few points, no exponential region)."""


def _forward_positive(v: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, str]:
    """The density with injection positive: in forward bias the current goes with the voltage."""
    forward = v > 0.3 * v.max()
    if forward.sum() >= 2 and np.median(j[forward]) < 0:
        return -j, "photocurrent-positive (flipped)"
    return j, "forward-positive"


def _shunt(v: np.ndarray, j: np.ndarray) -> float:
    near = np.abs(v) <= 0.1
    if near.sum() < 3:
        near = np.argsort(np.abs(v))[:3]
    slope = np.polyfit(v[near], j[near], 1)[0] * 1e-3  # A/cm² per V
    return math.inf if slope <= 0 else 1.0 / slope


def _exponential_fit(vj: np.ndarray, jd: np.ndarray, vt: float) -> tuple[float, float, np.ndarray]:
    """(n, J0, mask of the exponential region) from the diode current along the junction voltage."""
    order = np.argsort(vj)
    vj, jd = vj[order], jd[order]
    usable = jd > 0
    if usable.sum() < 4:
        raise DarkJVError("fewer than 4 points with a forward diode current")
    x, y = vj[usable], np.log(jd[usable])
    local_n = np.gradient(x, y) / vt
    valid = np.isfinite(local_n) & (local_n > 0.5)
    if valid.sum() < 3:
        raise DarkJVError("no exponential region in the forward branch")
    smoothed = np.convolve(np.where(valid, local_n, np.inf), np.ones(3) / 3, mode="same")
    centre = int(np.argmin(np.where(np.isfinite(smoothed), smoothed, np.inf)))
    n_min = float(local_n[centre])
    region = np.zeros_like(valid)
    region[centre] = True
    for step in (-1, 1):  # the contiguous run around the minimum within REGION_SPREAD of it
        k = centre + step
        while 0 <= k < local_n.size and valid[k] and local_n[k] <= REGION_SPREAD * n_min:
            region[k] = True
            k += step
    if region.sum() < 3:
        best = np.argsort(np.abs(np.arange(local_n.size) - centre))[:3]
        region = np.zeros_like(valid)
        region[best] = True
    slope, intercept = np.polyfit(x[region], y[region], 1)
    n = 1.0 / (slope * vt)
    mask = np.zeros(order.size, dtype=bool)
    mask[order[np.flatnonzero(usable)[region]]] = True
    return float(n), float(math.exp(intercept)), mask


def dark_jv_metrics(voltage_V: npt.ArrayLike, current_density_mA_cm2: npt.ArrayLike,
                    temperature_K: float = 298.15) -> dict[str, Any]:
    """``{"ideality": n, "j0_mA_cm2", "rs_ohm_cm2", "rsh_ohm_cm2", "fit_window_V": [lo, hi], "sign"}`` (see
    the module docstring); raises :class:`DarkJVError` for a curve that cannot give them."""
    v = np.asarray(voltage_V, dtype=float)
    j = np.asarray(current_density_mA_cm2, dtype=float)
    keep = np.isfinite(v) & np.isfinite(j)
    v, j = v[keep], j[keep]
    if v.size < 8:
        raise DarkJVError(f"a dark J–V needs at least 8 points, got {v.size}")
    if not math.isfinite(temperature_K) or temperature_K <= 0:
        temperature_K = 298.15
    vt = K_B_EV * temperature_K
    j, sign = _forward_positive(v, j)
    rsh = _shunt(v, j)
    rs = 0.0
    n = j0 = math.nan
    window = np.zeros(v.size, dtype=bool)
    for _ in range(3):
        vj = v - j * 1e-3 * rs
        jd = j - (vj / rsh * 1e3 if math.isfinite(rsh) else 0.0)
        shunt_current = np.abs(vj / rsh * 1e3) if math.isfinite(rsh) else np.zeros_like(vj)
        credible = (vj > 0) & (jd > 10.0 * shunt_current)
        if credible.sum() < 4:
            raise DarkJVError("the diode current never rises ten times above the shunt current")
        idx = np.flatnonzero(credible)
        n, j0, region = _exponential_fit(vj[idx], jd[idx], vt)
        window = np.zeros(v.size, dtype=bool)
        window[idx[region]] = True
        above = (v > v[window].max()) & (j > 0)
        if above.sum() >= 2:
            top = np.argsort(j[above])[-max(2, above.sum() // 4):]
            vv, jj = v[above][top], j[above][top]
            jdd = jj - (vv / rsh * 1e3 if math.isfinite(rsh) else 0.0)
            excess = vv - n * vt * np.log(np.maximum(jdd, 1e-300) / j0 + 1.0)
            rs = max(0.0, float(np.median(excess / (jj * 1e-3))))
    return {"ideality": n, "j0_mA_cm2": j0, "rs_ohm_cm2": rs, "rsh_ohm_cm2": rsh,
            "fit_window_V": [float(v[window].min()), float(v[window].max())], "sign": sign,
            "temperature_K": temperature_K}
