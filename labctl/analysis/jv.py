"""J–V metrics, hysteresis indices and stabilised power output.

Conventions (SCIENCE.md): current density in mA/cm² with the photocurrent positive (J(0 V) = Jsc > 0),
voltage in V, irradiance in mW/cm² (100 mW/cm² = 1 sun AM1.5G). Data in the source-meter convention (a lit
cell reads negative current at 0 V) is accepted: ``photocurrent_sign="auto"`` detects it from the slope.

Methods, chosen to interpolate rather than snap to grid points and to average noise over a few points:
- Jsc: a straight-line fit of J(V) over |V| ≤ 0.15·Voc (at least the 5 points nearest 0 V, but none above
  Voc/2); the curve is straight there, with slope −1/Rsh.
- Voc: the root of a quadratic fitted to the points nearest the zero crossing of J (those within 50 mV of
  it, at least 3).
- Pmax: the vertex of a quadratic fitted to P(V) = V·J around the largest measured power when 5 points lie
  within 50 mV of it; on a coarser grid P(V) is far from a parabola over 5 points (it falls steeply past
  Vmpp), so the maximum of V·J along a monotone cubic (PCHIP) interpolation of J(V) is used instead.
- Rs: −dV/dJ at Voc from the local fit ("Rs,oc", which includes the diode's dynamic resistance there).
- Rsh: −dV/dJ at 0 V from the straight-line fit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
NAN = float("nan")

METRIC_KEYS = ("voc_V", "jsc_mA_cm2", "ff", "pce_pct", "vmpp_V", "jmpp_mA_cm2", "pmax_mW_cm2",
               "rs_ohm_cm2", "rsh_ohm_cm2")

# Points used by the local fits: enough to average noise, few enough to stay local on coarse grids.
_JSC_FIT_POINTS = 5
_VOC_FIT_POINTS = 5
_PMAX_FIT_POINTS = 5
_RSH_WINDOW_FRACTION = 0.15
# Local fits use points within this distance of the point of interest: on a coarse grid, 5 points span a
# region where J(V) and P(V) bend too much for a quadratic (FF > 1, Jmpp > Jsc on a 0.1 V grid).
_LOCAL_WINDOW_V = 0.05
# Jsc counts as photocurrent only above this many times the scatter of J about the line fitted near 0 V.
_PHOTOCURRENT_NOISE_FACTOR = 3.0
# Above this fraction of Voc the diode current bends J(V): the Jsc line fit stays below it.
_JSC_STRAIGHT_FRACTION = 0.5


class JVAnalysisError(ValueError):
    """The data cannot give J–V metrics (too few points, voltage not varying, ...)."""


def _prepare(voltage_V: ArrayLike, current_density_mA_cm2: ArrayLike, photocurrent_sign: str
             ) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(voltage_V, dtype=float).ravel()
    j = np.asarray(current_density_mA_cm2, dtype=float).ravel()
    if v.shape != j.shape:
        raise JVAnalysisError(f"voltage has {v.size} points but current density has {j.size}")
    keep = np.isfinite(v) & np.isfinite(j)
    v, j = v[keep], j[keep]
    if v.size < 4:
        raise JVAnalysisError(f"need at least 4 finite points, got {v.size}")
    order = np.argsort(v, kind="stable")
    v, j = v[order], j[order]
    if v[-1] - v[0] <= 0:
        raise JVAnalysisError("voltage does not vary")
    if photocurrent_sign == "auto":
        # In the photovoltaic convention J falls with V (light or dark); the SMU convention rises.
        slope = np.polyfit(v, j, 1)[0]
        sign = -1.0 if slope > 0 else 1.0
    elif photocurrent_sign in ("positive", "pv"):
        sign = 1.0
    elif photocurrent_sign in ("negative", "smu"):
        sign = -1.0
    else:
        raise JVAnalysisError(
            f"photocurrent_sign = {photocurrent_sign!r}; allowed: 'auto', 'positive', 'negative'"
        )
    return v, sign * j


def _nearest(v: np.ndarray, x: float, n: int) -> np.ndarray:
    """Indices of the n points nearest x in voltage, in ascending order."""
    n = min(n, v.size)
    return np.sort(np.argsort(np.abs(v - x), kind="stable")[:n])


def _local(v: np.ndarray, x: float, n: int) -> np.ndarray:
    """Of the n points nearest x, those within _LOCAL_WINDOW_V of it; at least the 3 nearest."""
    idx = _nearest(v, x, n)
    near = idx[np.abs(v[idx] - x) <= _LOCAL_WINDOW_V + 1e-12]
    return near if near.size >= 3 else _nearest(v, x, 3)


def _pmax_interpolated(v: np.ndarray, j: np.ndarray, k: int, voc: float) -> tuple[float, float, float]:
    """Maximum of V·J between the neighbours of the best grid point k, J interpolated by PCHIP (monotone
    between points, so it never overshoots the measured currents as a parabola through a knee does)."""
    from scipy.interpolate import PchipInterpolator

    lo, hi = max(k - 2, 0), min(k + 3, v.size)
    vv, inverse = np.unique(v[lo:hi], return_inverse=True)
    jj = np.bincount(inverse, weights=j[lo:hi]) / np.bincount(inverse)  # repeated voltages: mean current
    start, stop = max(float(v[max(k - 1, 0)]), 0.0), min(float(v[min(k + 1, v.size - 1)]), voc)
    if vv.size < 2 or not stop > start:
        return float(v[k] * j[k]), float(v[k]), float(j[k])
    grid = np.linspace(start, stop, 2001)
    power = grid * PchipInterpolator(vv, jj)(grid)
    best = int(np.argmax(power))
    if not grid[best] > 0 or not power[best] >= v[k] * j[k]:
        return float(v[k] * j[k]), float(v[k]), float(j[k])
    return float(power[best]), float(grid[best]), float(power[best] / grid[best])


def _jsc_and_rsh(v: np.ndarray, j: np.ndarray, voc: float) -> tuple[float, float, float]:
    """Jsc, Rsh and the rms scatter of the points about the fitted line (the noise on J near 0 V)."""
    if v[0] > 0 or v[-1] < 0:
        return NAN, NAN, NAN
    idx = _nearest(v, 0.0, _JSC_FIT_POINTS)
    if not math.isnan(voc):
        straight = idx[v[idx] <= _JSC_STRAIGHT_FRACTION * voc]
        idx = straight if straight.size >= 2 else _nearest(v, 0.0, 2)
        # The curve is straight well below Voc: a wider window averages the noise out of the slope.
        window = np.nonzero(np.abs(v) <= _RSH_WINDOW_FRACTION * voc)[0]
        if window.size > idx.size:
            idx = window
    slope, intercept = np.polyfit(v[idx], j[idx], 1)
    rsh = -1000.0 / slope if slope < 0 else math.inf  # V / (mA/cm²) → Ω·cm²
    residuals = j[idx] - (slope * v[idx] + intercept)
    noise = float(np.sqrt(np.sum(residuals**2) / (idx.size - 2))) if idx.size > 2 else 0.0
    return float(intercept), float(rsh), noise


def _voc_and_rs(v: np.ndarray, j: np.ndarray) -> tuple[float, float]:
    crossings = np.nonzero((j[:-1] > 0) & (j[1:] <= 0))[0]
    if crossings.size == 0:
        return NAN, NAN
    k = int(crossings[-1])
    # Bracket first (linear), then refine with a local quadratic around the bracket.
    v_lin = v[k] + j[k] * (v[k + 1] - v[k]) / (j[k] - j[k + 1])
    idx = _local(v, v_lin, _VOC_FIT_POINTS)
    coeffs = np.polyfit(v[idx] - v_lin, j[idx], 2 if idx.size >= 3 else 1)
    roots = np.roots(coeffs)
    real = roots[np.isreal(roots)].real
    near = real[np.abs(real) <= (v[k + 1] - v[k]) * 1.5]
    dv = float(near[np.argmin(np.abs(near))]) if near.size else 0.0
    voc = v_lin + dv
    slope = float(np.polyval(np.polyder(coeffs), dv))
    rs = -1000.0 / slope if slope < 0 else NAN
    return voc, rs


def _pmax(v: np.ndarray, j: np.ndarray, voc: float) -> tuple[float, float, float]:
    inside = (v >= 0) & (v <= voc)
    if inside.sum() < 3:
        return NAN, NAN, NAN
    p = v * j
    k = int(np.argmax(np.where(inside, p, -np.inf)))
    idx = _local(v, v[k], _PMAX_FIT_POINTS)
    if idx.size < _PMAX_FIT_POINTS:
        return _pmax_interpolated(v, j, k, voc)
    a, b, c = np.polyfit(v[idx] - v[k], p[idx], 2)
    if a < 0:
        dv = -b / (2 * a)
        span = (v[idx].max() - v[idx].min()) / 2
        if abs(dv) <= span:
            vmpp = v[k] + dv
            pmax = c - b * b / (4 * a)
            return float(pmax), float(vmpp), float(pmax / vmpp)
    return float(p[k]), float(v[k]), float(j[k])


def jv_metrics(voltage_V: ArrayLike, current_density_mA_cm2: ArrayLike, irradiance_mW_cm2: float = 100.0,
               photocurrent_sign: str = "auto") -> dict[str, Any]:
    """Voc, Jsc, FF, PCE, Vmpp, Jmpp, Pmax, Rs and Rsh of one scan (either direction).

    Returns every key of :data:`METRIC_KEYS`; when a quantity is undefined (a curve that never crosses zero,
    a dark curve) it is NaN and ``"note"`` says why. ``irradiance_mW_cm2`` ≤ 0 (dark) gives NaN PCE.
    """
    v, j = _prepare(voltage_V, current_density_mA_cm2, photocurrent_sign)
    notes: list[str] = []
    voc, rs = _voc_and_rs(v, j)
    jsc, rsh, noise = _jsc_and_rsh(v, j, voc)
    # No photocurrent distinguishable from zero (a dark curve): a "Voc" would be a noise crossing near 0 V,
    # and FF and Pmax from it meaningless (FF > 1).
    dark = not math.isnan(jsc) and jsc <= max(_PHOTOCURRENT_NOISE_FACTOR * noise, 1e-6 * float(np.max(np.abs(j))))
    if dark:
        voc = rs = NAN
    if math.isnan(jsc):
        notes.append("the scan does not include 0 V, so Jsc and Rsh are undefined")
    if math.isnan(voc) and not dark:
        notes.append("the current never crosses zero inside the scanned range, so Voc, FF and PCE are undefined")
    if dark:
        notes.append("no photocurrent at 0 V (dark or reversed contacts)")
    pmax = vmpp = jmpp = NAN
    if not math.isnan(voc) and not math.isnan(jsc) and jsc > 0:
        pmax, vmpp, jmpp = _pmax(v, j, voc)
    ff = pmax / (voc * jsc) if jsc > 0 and voc > 0 and not math.isnan(pmax) else NAN
    pce = 100.0 * pmax / irradiance_mW_cm2 if irradiance_mW_cm2 > 0 else NAN
    result: dict[str, Any] = {
        "voc_V": voc, "jsc_mA_cm2": jsc, "ff": ff, "pce_pct": pce, "vmpp_V": vmpp, "jmpp_mA_cm2": jmpp,
        "pmax_mW_cm2": pmax, "rs_ohm_cm2": rs, "rsh_ohm_cm2": rsh,
    }
    if notes:
        result["note"] = "; ".join(notes)
    return result


def _j_at(v: np.ndarray, j: np.ndarray, x: float) -> float:
    return float(np.interp(x, v, j)) if v[0] <= x <= v[-1] else NAN


def _area_to_voc(v: np.ndarray, j: np.ndarray, voc: float) -> float:
    if math.isnan(voc) or v[0] > 0:
        return NAN
    grid = np.concatenate(([0.0], v[(v > 0) & (v < voc)], [voc]))
    values = np.interp(grid, v, j)
    values[-1] = 0.0
    return float(np.trapezoid(values, grid))


def hysteresis_indices(reverse: tuple[ArrayLike, ArrayLike], forward: tuple[ArrayLike, ArrayLike],
                       irradiance_mW_cm2: float = 100.0, photocurrent_sign: str = "auto") -> dict[str, float]:
    """Three hysteresis indices side by side (none is canonical), each (RS − FS)/RS, so that normal
    hysteresis (reverse scan better) is positive and inverted hysteresis negative.

    ``reverse`` and ``forward`` are (voltage_V, current_density_mA_cm2) pairs.
    - ``hi_pce``: from the PCEs;
    - ``hi_j08``: from J at 0.8·Voc of the reverse scan;
    - ``hi_area``: from A = ∫₀^Voc J dV, each scan to its own Voc.
    """
    rv, rj = _prepare(*reverse, photocurrent_sign)
    fv, fj = _prepare(*forward, photocurrent_sign)
    rm = jv_metrics(rv, rj, irradiance_mW_cm2, "positive")
    fm = jv_metrics(fv, fj, irradiance_mW_cm2, "positive")

    def index(a: float, b: float) -> float:
        return (a - b) / a if a and not (math.isnan(a) or math.isnan(b)) else NAN

    v08 = 0.8 * rm["voc_V"]
    return {
        "hi_pce": index(rm["pce_pct"], fm["pce_pct"]) if irradiance_mW_cm2 > 0
        else index(rm["pmax_mW_cm2"], fm["pmax_mW_cm2"]),
        "hi_j08": index(_j_at(rv, rj, v08), _j_at(fv, fj, v08)) if not math.isnan(v08) else NAN,
        "hi_area": index(_area_to_voc(rv, rj, rm["voc_V"]), _area_to_voc(fv, fj, fm["voc_V"])),
    }


def stabilised_power(time_s: ArrayLike, power_mW_cm2: ArrayLike, irradiance_mW_cm2: float = 100.0,
                     tolerance: float = 0.01, final_fraction: float = 0.2) -> dict[str, float]:
    """Stabilised power output from a hold at Vmpp.

    The final level is the mean over the last ``final_fraction`` of the hold; the settling time is when the
    power last left a band of ± ``tolerance`` (relative) around it; the stabilised value is the mean from
    settling to the end (at least the final part). Returns ``spo_mW_cm2``, ``spo_pce_pct``, ``settling_s``
    (NaN when the trace never settles) and ``drift_pct_per_min`` (slope over the averaged part).
    """
    t = np.asarray(time_s, dtype=float).ravel()
    p = np.asarray(power_mW_cm2, dtype=float).ravel()
    if t.size != p.size or t.size < 3:
        raise JVAnalysisError(f"need matching time and power arrays of at least 3 points, got {t.size}/{p.size}")
    if not 0 < final_fraction <= 1:
        raise JVAnalysisError(f"final_fraction = {final_fraction}; allowed: 0 < final_fraction ≤ 1")
    n_final = max(2, math.ceil(final_fraction * t.size))
    final = float(np.mean(p[-n_final:]))
    outside = np.nonzero(np.abs(p - final) > tolerance * abs(final))[0]
    if outside.size and outside[-1] >= t.size - n_final:
        settling, start = NAN, t.size - n_final
    else:
        start = int(outside[-1]) + 1 if outside.size else 0
        settling = float(t[start] - t[0])
    window = slice(min(start, t.size - n_final), None)
    spo = float(np.mean(p[window]))
    drift = NAN
    if np.ptp(t[window]) > 0 and spo != 0:
        drift = float(np.polyfit(t[window], p[window], 1)[0]) * 60.0 / spo * 100.0
    return {
        "spo_mW_cm2": spo,
        "spo_pce_pct": 100.0 * spo / irradiance_mW_cm2 if irradiance_mW_cm2 > 0 else NAN,
        "settling_s": settling,
        "drift_pct_per_min": drift,
    }
