"""Thermal admittance spectroscopy (TAS): C(f), G(f) at several temperatures → trap depths Et, attempt-to-
escape prefactors ξ0 and the trap density of states (Walter et al., J. Appl. Phys. 80, 4411 (1996)).

Method:

1. **Series resistance removed.** The meter's parallel C–G is Y = G + jωC of Rs in series with the device:
   Y_dev = 1/(1/Y − Rs). Rs is given, or taken as Re(1/Y) at the three highest frequencies (where the
   junction is a near-short of ωC ≫ G_dev; the error is G_dev/(ωC)², ~mΩ for nF-scale cells at MHz).
2. **Window.** Trap responses are looked for between the lowest frequency (the ionic step lies below it; a
   higher ``f_min_Hz`` excludes it when it is not) and the de-embedding limit f_RC/3, f_RC = 1/(2π·Rs·C), above
   which removing Rs amplifies the noise.
3. **Inflection frequencies.** C_dev(ω) and G_dev(ω)/ω in the window are fitted together with Walter's
   response of trap levels, C = C_hf + Σᵢ ΔCᵢ/(1 + uᵢ²) and G/ω = G_dc/ω + Σᵢ ΔCᵢ·uᵢ/(1 + uᵢ²), uᵢ = ω/ω0,i
   (−ω·dC/dω and G/ω both peak at ω0; fitting both separates neighbouring bands that merge in either
   alone), plus, when the BIC asks for it, the Debye tail of a response below the window (the ionic step).
   Each point is weighted by ω/|Y| (the meter's error is a fraction of |Y|, so C and G/ω scatter as |Y|/ω:
   most at low frequency, where the dc leakage dominates). The number of trap terms (0–3) is chosen by the
   Bayesian information criterion (relaxation_fit.py: an extra term must lower it by more than 10); a term
   counts as a trap when its ω0 lies inside the window by a factor 1.5 on either side and its ΔC exceeds
   three standard errors and 1e-4 of C_hf.
4. **Traps across temperature.** Inflections are followed from one temperature to the next by the nearest
   predicted ln ω0 (extrapolated along the track's own Arrhenius line, or at Et = 0.4 eV for a track of one
   point), a jump of more than ×4 starting a new track. Each track with ≥ 3 temperatures gives
   ln(ω0/T²) = ln(2ξ0) − Et/(kT): Et ± standard error and ξ0 (s⁻¹K⁻²).
5. **Trap DOS.** N_t(E_ω) = −(V_bi/(q·W))·(dC/dω)·(ω/kT) with C per area, on the energy axis
   E_ω = kT·ln(2ξ0·T²/ω) common to all temperatures (one ξ0: given, or the geometric mean of the fitted
   traps'); W = ε·ε0/C_hf per area (the depletion width at the high-frequency plateau). Each trap's density
   is N_t = ΔC·V_bi/(q·W·A), the integral of its DOS peak.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from labctl.analysis.arrhenius import EPS0_F_M, K_B_EV_K, Q_C, ArrheniusError, fit_arrhenius
from labctl.analysis.relaxation_fit import SumFit, Term, choose, fit_sums

MAX_TRAPS = 3
INSIDE_FACTOR = 1.5  # an inflection this far inside the window's edges counts as a trap
SIGNIFICANCE = 3.0  # ΔC / its standard error
MIN_RELATIVE_STEP = 1e-4  # ΔC / C_hf
RC_MARGIN = 3.0
DISTINCT_RATIO = 1.5
MIN_BIC_GAIN = 10.0  # an extra term must lower the BIC by more than this ("very strong" evidence)
TRACK_JUMP = math.log(4.0)
NOMINAL_ET_EV = 0.4
MIN_TEMPERATURES = 3
_GRID_POINTS = 80


class TASAnalysisError(ValueError):
    """The spectra cannot be analysed (too few points, bad parameters)."""


@dataclass(frozen=True)
class Spectrum:
    """One temperature's parallel-model C(f) and G(f) as the LCR meter reports them."""

    temperature_K: float
    frequency_Hz: npt.ArrayLike
    capacitance_F: npt.ArrayLike
    conductance_S: npt.ArrayLike


@dataclass(frozen=True)
class Inflection:
    omega0_rad_s: float
    omega0_err_rad_s: float
    delta_c_F: float


@dataclass(frozen=True)
class SpectrumFit:
    temperature_K: float
    rs_ohm: float
    window_Hz: tuple[float, float]
    c_hf_F: float
    inflections: tuple[Inflection, ...]
    frequency_Hz: np.ndarray
    device_capacitance_F: np.ndarray


def series_resistance_ohm(frequency_Hz: npt.ArrayLike, capacitance_F: npt.ArrayLike, conductance_S: npt.ArrayLike,
                          top_points: int = 3) -> float:
    """Rs ≈ Re(1/Y) averaged over the ``top_points`` highest frequencies."""
    f, c, g = _arrays(frequency_Hz, capacitance_F, conductance_S)
    order = np.argsort(f)[-top_points:]
    z = 1.0 / (g[order] + 2j * np.pi * f[order] * c[order])
    return float(np.mean(z.real))


def device_admittance(frequency_Hz: npt.ArrayLike, capacitance_F: npt.ArrayLike, conductance_S: npt.ArrayLike,
                      rs_ohm: float) -> tuple[np.ndarray, np.ndarray]:
    """(C, G) of the device with the series resistance removed: Y_dev = 1/(1/Y − Rs)."""
    f, c, g = _arrays(frequency_Hz, capacitance_F, conductance_S)
    omega = 2 * np.pi * f
    y_dev = 1.0 / (1.0 / (g + 1j * omega * c) - rs_ohm)
    return y_dev.imag / omega, y_dev.real


def _arrays(*values: npt.ArrayLike) -> tuple[np.ndarray, ...]:
    arrays = tuple(np.asarray(v, dtype=float).ravel() for v in values)
    if len({a.size for a in arrays}) != 1:
        raise TASAnalysisError(f"frequency, capacitance and conductance differ in length: {[a.size for a in arrays]}")
    return arrays


def _shapes(n: int) -> tuple[Any, Any]:
    """Debye responses on the stacked axis (ω for C, then ω for G/ω) and their derivatives in ln ω0."""

    def shape(omega: np.ndarray, log_w0: np.ndarray) -> np.ndarray:
        u = omega[:, None] / np.exp(log_w0)[None, :]
        out = 1.0 / (1.0 + u**2)
        out[n:] *= u[n:]
        return np.asarray(out)

    def dshape(omega: np.ndarray, log_w0: np.ndarray) -> np.ndarray:
        u = omega[:, None] / np.exp(log_w0)[None, :]
        d = 1.0 / (1.0 + u**2) ** 2
        out = 2.0 * u**2 * d
        out[n:] = -u[n:] * (1.0 - u[n:] ** 2) * d[n:]
        return np.asarray(out)

    return shape, dshape


def fit_spectrum(spectrum: Spectrum, *, rs_ohm: float | None = None, f_min_Hz: float | None = None,
                 f_max_Hz: float | None = None, max_traps: int = MAX_TRAPS) -> SpectrumFit:
    """Rs removed, the window chosen, the trap inflections of one spectrum (module docstring, steps 1–3)."""
    f, c, g = _arrays(spectrum.frequency_Hz, spectrum.capacitance_F, spectrum.conductance_S)
    keep = np.isfinite(f) & np.isfinite(c) & np.isfinite(g) & (f > 0)
    order = np.argsort(f[keep])
    f, c, g = f[keep][order], c[keep][order], g[keep][order]
    if f.size < 10:
        raise TASAnalysisError(f"need at least 10 frequencies, got {f.size}")
    rs = series_resistance_ohm(f, c, g) if rs_ohm is None else float(rs_ohm)
    if not (rs >= 0 and math.isfinite(rs)):
        raise TASAnalysisError(f"rs_ohm = {rs!r}; allowed: ≥ 0 Ω")
    c_dev, g_dev = device_admittance(f, c, g, rs)
    lo = float(f[0]) if f_min_Hz is None else max(float(f_min_Hz), float(f[0]))
    f_rc = 1.0 / (2 * np.pi * rs * float(c_dev[-1])) if rs > 0 else math.inf
    hi = min(float(f[-1]), f_rc / RC_MARGIN) if f_max_Hz is None else min(float(f_max_Hz), float(f[-1]))
    inside = (f >= lo) & (f <= hi)
    if np.count_nonzero(inside) < 10 or hi <= lo * 4:
        raise TASAnalysisError(f"the window {lo:.3g}–{hi:.3g} Hz holds {np.count_nonzero(inside)} frequencies; "
                               "need ≥ 10 over more than a factor 4")
    omega = 2 * np.pi * f[inside]
    n = omega.size
    scale = float(np.median(c_dev[inside]))
    y = np.concatenate([c_dev[inside], g_dev[inside] / omega]) / scale
    x = np.concatenate([omega, omega])
    baseline = np.zeros((2 * n, 2))
    baseline[:n, 0] = 1.0  # C_hf
    baseline[n:, 1] = omega[0] / omega  # G_dc/ω
    bounds = (math.log(omega[0]), math.log(omega[-1]))
    grid = np.linspace(bounds[0], bounds[1], _GRID_POINTS)
    tail = Term(start=bounds[0] - 1.0, low=bounds[0] - 8.0, high=bounds[0] - 0.05)
    # An LCR meter's error is a fraction of |Y| (its C accuracy grows with (1 + D)): C and G/ω carry an error
    # ∝ |Y|/ω, large where the dc leakage dominates at low frequency. Weight accordingly.
    weight = np.tile(omega / np.abs(g[inside] + 1j * omega * c[inside]), 2) * scale
    shape, dshape = _shapes(n)
    candidates = fit_sums(x, y, shape, dshape, grid, bounds, max_traps, baseline=baseline, weights=weight)
    candidates += fit_sums(x, y, shape, dshape, grid, bounds, max_traps, always=(tail,), baseline=baseline,
                           weights=weight)
    best = choose(sorted(candidates, key=lambda fit: fit.log_rates.size), DISTINCT_RATIO, MIN_BIC_GAIN)
    return SpectrumFit(temperature_K=float(spectrum.temperature_K), rs_ohm=rs, window_Hz=(lo, hi),
                       c_hf_F=scale * best.offset, inflections=_inflections(best, scale, bounds),
                       frequency_Hz=f, device_capacitance_F=c_dev)


def _inflections(fit: SumFit, scale: float, bounds: tuple[float, float]) -> tuple[Inflection, ...]:
    out = []
    margin = math.log(INSIDE_FACTOR)
    for i in range(fit.n_always, fit.log_rates.size):
        p = float(fit.log_rates[i])
        amplitude = float(fit.amplitudes[i])
        if not bounds[0] + margin <= p <= bounds[1] - margin:
            continue
        if not amplitude > max(SIGNIFICANCE * fit.amplitude_err(i), MIN_RELATIVE_STEP * fit.offset):
            continue
        w0 = math.exp(p)
        out.append(Inflection(omega0_rad_s=w0, omega0_err_rad_s=w0 * fit.log_rate_err(i),
                              delta_c_F=scale * float(fit.amplitudes[i])))
    return tuple(sorted(out, key=lambda inf: inf.omega0_rad_s))


@dataclass(frozen=True)
class Trap:
    et_eV: float
    et_err_eV: float
    xi0_s_K2: float
    temperatures_K: tuple[float, ...]
    omega0_rad_s: tuple[float, ...]
    n_t_cm3: float

    def as_dict(self) -> dict[str, Any]:
        return {"et_eV": self.et_eV, "et_err_eV": self.et_err_eV, "xi0": self.xi0_s_K2,
                "temperatures_K": list(self.temperatures_K), "omega0_rad_s": list(self.omega0_rad_s),
                "n_t_cm3": self.n_t_cm3}


@dataclass(frozen=True)
class TASResult:
    traps: tuple[Trap, ...]
    tdos: dict[str, Any]
    fits: tuple[SpectrumFit, ...]
    unassigned: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {"traps": [t.as_dict() for t in self.traps], "tdos": self.tdos, "unassigned": list(self.unassigned),
                "spectra": [{"temperature_K": f.temperature_K, "rs_ohm": f.rs_ohm, "window_Hz": list(f.window_Hz),
                             "c_hf_F": f.c_hf_F, "omega0_rad_s": [i.omega0_rad_s for i in f.inflections]}
                            for f in self.fits]}


def _tracks(fits: Sequence[SpectrumFit]) -> list[list[tuple[float, Inflection]]]:
    tracks: list[list[tuple[float, Inflection]]] = []
    for fit in sorted(fits, key=lambda f: f.temperature_K):
        t = fit.temperature_K
        found = list(fit.inflections)
        if not found:
            continue
        cost = np.full((len(tracks), len(found)), 1e9)
        for k, track in enumerate(tracks):
            predicted = _predict(track, t)
            for j, inf in enumerate(found):
                jump = abs(math.log(inf.omega0_rad_s) - predicted)
                if jump <= TRACK_JUMP:
                    cost[k, j] = jump
        taken = set()
        if tracks:
            rows, cols = linear_sum_assignment(cost)
            for k, j in zip(rows, cols, strict=True):
                if cost[k, j] < 1e9:
                    tracks[k].append((t, found[j]))
                    taken.add(j)
        tracks += [[(t, inf)] for j, inf in enumerate(found) if j not in taken]
    return tracks


def _predict(track: list[tuple[float, Inflection]], temperature_K: float) -> float:
    """ln ω0 expected at ``temperature_K`` from the track's Arrhenius line (or a nominal Et)."""
    temps = np.array([p[0] for p in track])
    logs = np.array([math.log(p[1].omega0_rad_s / p[0] ** 2) for p in track])
    if temps.size >= 2 and np.unique(temps).size >= 2:
        slope, intercept = np.polyfit(1 / temps, logs, 1)
    else:
        slope = -NOMINAL_ET_EV / K_B_EV_K
        intercept = logs[-1] - slope / temps[-1]
    return float(intercept + slope / temperature_K + 2 * math.log(temperature_K))


def analyze_tas(spectra: Sequence[Spectrum], *, area_cm2: float, eps_r: float, v_bi_V: float,
                rs_ohm: float | None = None, f_min_Hz: float | None = None, xi0_s_K2: float | None = None
                ) -> TASResult:
    """Traps (Et, ξ0, N_t) and the trap DOS from spectra at several temperatures (module docstring).
    ``area_cm2``, ``eps_r`` and ``v_bi_V`` (from C–V) set W and the DOS scale; ``xi0_s_K2`` fixes the DOS
    energy axis (default: the geometric mean of the fitted traps' ξ0)."""
    for name, value in (("area_cm2", area_cm2), ("eps_r", eps_r), ("v_bi_V", v_bi_V)):
        if not (value > 0 and math.isfinite(value)):
            raise TASAnalysisError(f"{name} = {value!r}; allowed: > 0")
    fits = tuple(fit_spectrum(s, rs_ohm=rs_ohm, f_min_Hz=f_min_Hz) for s in spectra)
    traps, unassigned = [], []
    for track in _tracks(fits):
        temps = np.array([p[0] for p in track])
        w0 = np.array([p[1].omega0_rad_s for p in track])
        if temps.size < MIN_TEMPERATURES:
            unassigned += [{"temperature_K": float(t), "omega0_rad_s": float(w),
                            "reason": f"seen at {temps.size} temperature(s), < {MIN_TEMPERATURES}"}
                           for t, w in zip(temps, w0, strict=True)]
            continue
        err = np.array([max(p[1].omega0_err_rad_s / p[1].omega0_rad_s, 1e-6) for p in track])
        try:
            fit = fit_arrhenius(temps, np.log(w0 / temps**2), err if np.all(np.isfinite(err)) else None)
        except ArrheniusError as exc:
            unassigned.append({"temperature_K": float(temps[0]), "omega0_rad_s": float(w0[0]), "reason": str(exc)})
            continue
        n_t = [_density(p[1].delta_c_F, _fit_at(fits, p[0]).c_hf_F, area_cm2, eps_r, v_bi_V) for p in track]
        traps.append(Trap(et_eV=fit.energy_eV, et_err_eV=fit.energy_err_eV, xi0_s_K2=math.exp(fit.intercept) / 2,
                          temperatures_K=tuple(float(t) for t in temps), omega0_rad_s=tuple(float(w) for w in w0),
                          n_t_cm3=float(np.mean(n_t))))
    traps.sort(key=lambda trap: trap.et_eV)
    xi0 = xi0_s_K2 if xi0_s_K2 is not None else (
        math.exp(float(np.mean([math.log(t.xi0_s_K2) for t in traps]))) if traps else math.nan)
    return TASResult(traps=tuple(traps), tdos=trap_dos(fits, area_cm2=area_cm2, eps_r=eps_r, v_bi_V=v_bi_V,
                                                      xi0_s_K2=xi0),
                     fits=fits, unassigned=tuple(unassigned))


def _fit_at(fits: Sequence[SpectrumFit], temperature_K: float) -> SpectrumFit:
    return next(f for f in fits if f.temperature_K == temperature_K)


def depletion_width_cm(c_hf_F: float, area_cm2: float, eps_r: float) -> float:
    """W = ε·ε0·A/C (cm)."""
    return eps_r * EPS0_F_M * area_cm2 * 1e-4 / c_hf_F * 1e2


def _density(delta_c_F: float, c_hf_F: float, area_cm2: float, eps_r: float, v_bi_V: float) -> float:
    w_cm = depletion_width_cm(c_hf_F, area_cm2, eps_r)
    return delta_c_F * v_bi_V / (Q_C * w_cm * area_cm2)


def trap_dos(fits: Sequence[SpectrumFit], *, area_cm2: float, eps_r: float, v_bi_V: float, xi0_s_K2: float
             ) -> dict[str, Any]:
    """Walter's N_t(E_ω) of each spectrum inside its window, on the common energy axis E_ω = kT·ln(2ξ0T²/ω)."""
    curves = []
    for fit in fits:
        lo, hi = fit.window_Hz
        inside = (fit.frequency_Hz >= lo) & (fit.frequency_Hz <= hi)
        omega = 2 * np.pi * fit.frequency_Hz[inside]
        c_area = fit.device_capacitance_F[inside] / area_cm2
        kt = K_B_EV_K * fit.temperature_K
        dc_dlnw = np.gradient(c_area, np.log(omega))
        w_cm = depletion_width_cm(fit.c_hf_F, area_cm2, eps_r)
        n_t = -(v_bi_V / (Q_C * w_cm)) * dc_dlnw / kt
        energy = kt * np.log(2 * xi0_s_K2 * fit.temperature_K**2 / omega) if math.isfinite(xi0_s_K2) else \
            np.full_like(omega, math.nan)
        curves.append({"temperature_K": fit.temperature_K, "w_cm": w_cm, "energy_eV": energy.tolist(),
                       "n_t_cm3_eV": n_t.tolist()})
    return {"xi0_s_K2": xi0_s_K2, "v_bi_V": v_bi_V, "curves": curves}
