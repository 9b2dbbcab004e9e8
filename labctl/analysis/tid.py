"""Transient ion drift (TID): capacitance transients after a bias pulse → mobile-ion species, their
activation energies, diffusion coefficients and densities.

Conventions (SCIENCE.md, "TID"):

- ΔC = C(∞) − C(0⁺) after the bias is removed. A *decaying* transient (C falls to C∞, ΔC < 0) is assigned
  to anions, a *rising* one (ΔC > 0) to cations — the seed's assignment for p-i-n cells (Xiang et al.: dark
  negative ΔC = halide; under light the rising edge = FA⁺). It holds when the ions that *add* to the depletion
  region's space charge are anions (a p-type absorber side); ``decaying="cation"`` swaps it for the opposite
  polarity.
- Fit model. In the depletion approximation C = εε0A/W with W ∝ 1/√N_eff, so C² is *linear* in the ionic
  charge and the species add: C(t)² = C∞²·(1 + Σᵢ aᵢ·exp(−t/τᵢ)), aᵢ = ±N_i·f_i/N_A (f_i the fraction of the
  zero-bias depletion region the pulse refilled). Fitting C² instead of C removes the second-order
  C ∝ √N_eff term (an exp(−2t/τ) component, i.e. a τ/2 "species" that a multi-exponential fit of C(t) would
  otherwise report beside each real one). Each point is the meter's average over its integration window w
  (the E4980A mock and the real meter integrate; the driver places the point at the window's centre), so
  each exponential is multiplied by sinh(x)/x, x = w/(2τ).
- Number of components: 0–``max_components`` exponentials, chosen by the Bayesian information criterion
  BIC = N·ln(RSS/N) + k·ln N (k = 1 + 2n parameters): a model with more components is taken only when it
  lowers the BIC by more than 10 below every smaller one ("very strong" evidence, Kass & Raftery 1995), and
  its components must be distinct (τ ratio > 1.3 to the neighbour) with a finite covariance.
- A component *contributes* to the Arrhenius plot when its τ lies in the window the capture resolves:
  τ ≥ max(first point time, 2 × first point spacing) (the first point comes a dead time after the step, and the
  transient must span at least two points), τ ≤ last point time / 3 (it has relaxed by the end, so C∞ is
  measured), and its relative standard error is ≤ 15 %. The other temperatures are listed with the reason.
- Arrhenius: ln(T/τ) vs 1/T (weighted by the fitted τ's standard errors), slope −Ea/k. Because
  τ = kTεε0/(q²N_A·D) and D = D0·exp(−Ea/kT), T/τ ∝ D: its slope is exactly −Ea/k. (A fit of ln(τ·T), as
  sometimes used, has slope (Ea − 2kT̄)/k over the range and biases Ea by ≈ −2kT̄ ≈ −40 meV at 200–300 K.)
  D0 = exp(intercept)·k·ε·ε0/(q²·N_A); D(T) = k·T·ε·ε0/(q²·N_A·τ) (Heiser–Mesli, Futscher et al. 2019).
- Density: N_ion = N_A·|a|/f with f = 1 − exp(−t_pulse/τ) when the pulse length is given (the ions refill the
  region with the same τ they leave it with — an assumption, exact in the simulated cells), else f = 1. To
  first order this is SCIENCE.md's N_ion ≈ 2·N_A·|ΔC|/C∞, valid for N_ion ≪ N_A.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labctl.analysis.arrhenius import EPS0_F_M, K_B_J_K, Q_C, ArrheniusError, fit_arrhenius
from labctl.analysis.relaxation_fit import Shape, SumFit, choose, fit_sums

MIN_POINTS = 8
DISTINCT_TAU_RATIO = 1.3
MIN_BIC_GAIN = 10.0  # an extra component must lower the BIC by more than this ("very strong" evidence)
MAX_RELATIVE_TAU_ERROR = 0.15
RELAXED_BY_END = 3.0  # τ ≤ last point time / this
_GRID_POINTS = 60


class TIDAnalysisError(ValueError):
    """The data cannot be analysed (too few points, bad parameters)."""


@dataclass(frozen=True)
class Component:
    """One exponential of a transient. ``amplitude`` a is the relative change of C² at t = 0 (the ionic
    space charge over N_A); ``delta_c_F`` = C(∞) − C(0⁺) of this component alone: < 0 decaying, > 0 rising."""

    tau_s: float
    tau_err_s: float
    amplitude: float
    amplitude_err: float
    delta_c_F: float
    species: str
    resolved: bool
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"tau_s": self.tau_s, "tau_err_s": self.tau_err_s, "amplitude": self.amplitude,
                "amplitude_err": self.amplitude_err, "delta_c_F": self.delta_c_F, "sign": self.species,
                "resolved": self.resolved, "reason": self.reason}


@dataclass(frozen=True)
class TransientFit:
    """The chosen fit of one transient: C∞, its components (fastest first) and the criterion's values."""

    c_inf_F: float
    components: tuple[Component, ...]
    bic: tuple[float, ...]  # by number of components, 0..max
    residual_rms_F: float
    window_s: tuple[float, float]  # (shortest, longest) τ the capture resolves

    @property
    def n_components(self) -> int:
        return len(self.components)


def _window_factor(tau: np.ndarray, integration_s: float) -> np.ndarray:
    x = integration_s / (2.0 * tau)
    safe = np.where(x > 1e-6, x, 1.0)
    return np.where(x > 1e-6, np.sinh(np.minimum(x, 300.0)) / safe, 1.0)


def _shapes(integration_s: float) -> tuple[Shape, Shape]:
    """exp(−t/τ)·sinh(x)/x, x = w/2τ, and its derivative with respect to ln τ."""

    def shape(t: np.ndarray, log_tau: np.ndarray) -> np.ndarray:
        tau = np.exp(log_tau)
        return np.asarray(np.exp(-t[:, None] / tau[None, :]) * _window_factor(tau, integration_s)[None, :])

    def dshape(t: np.ndarray, log_tau: np.ndarray) -> np.ndarray:
        tau = np.exp(log_tau)
        x = integration_s / (2.0 * tau)
        safe = np.where(x > 1e-6, x, 1.0)
        xc = np.minimum(x, 300.0)
        ds = np.where(x > 1e-6, (x * np.cosh(xc) - np.sinh(xc)) / safe**2, x / 3.0)
        e = np.exp(-t[:, None] / tau[None, :])
        s = _window_factor(tau, integration_s)
        return np.asarray(e * ((t[:, None] / tau[None, :]) * s[None, :] - x[None, :] * ds[None, :]))

    return shape, dshape


def fit_transient(time_s: npt.ArrayLike, capacitance_F: npt.ArrayLike, *, integration_s: float = 0.0,
                  max_components: int = 3, decaying: str = "anion") -> TransientFit:
    """Fit C(t) after the bias step with 0..``max_components`` exponentials (module docstring).

    ``time_s`` counts from the bias step (the first point lies a dead time after it); ``integration_s`` is the
    meter's integration window per point. ``decaying`` names the species of a decaying component. Raises
    :class:`TIDAnalysisError` for unusable input."""
    t = np.asarray(time_s, dtype=float).ravel()
    c = np.asarray(capacitance_F, dtype=float).ravel()
    if t.shape != c.shape:
        raise TIDAnalysisError(f"time_s has {t.size} points but capacitance_F has {c.size}")
    if decaying not in ("anion", "cation"):
        raise TIDAnalysisError(f"decaying = {decaying!r}; allowed: 'anion', 'cation'")
    if not (isinstance(max_components, int) and 0 <= max_components <= 4):
        raise TIDAnalysisError(f"max_components = {max_components!r}; allowed: 0–4")
    if not (integration_s >= 0 and math.isfinite(integration_s)):
        raise TIDAnalysisError(f"integration_s = {integration_s!r}; allowed: ≥ 0 s")
    keep = np.isfinite(t) & np.isfinite(c)
    t, c = t[keep], c[keep]
    order = np.argsort(t)
    t, c = t[order], c[order]
    if t.size < MIN_POINTS:
        raise TIDAnalysisError(f"need at least {MIN_POINTS} finite points, got {t.size}")
    if t[0] < 0 or not np.all(c > 0):
        raise TIDAnalysisError("times must be ≥ 0 s (from the bias step) and capacitances > 0 F")
    c_ref = float(np.median(c))
    y = (c / c_ref) ** 2
    t_first, t_last = float(t[0]), float(t[-1])
    shortest = max(t_first, 2.0 * float(t[1] - t[0]), 1e-9)
    window = (shortest, t_last / RELAXED_BY_END)
    bounds = (math.log(max(shortest / 20.0, 1e-9)), math.log(t_last * 20.0))
    grid = np.linspace(bounds[0] + 0.01, bounds[1] - 0.01, _GRID_POINTS)
    shape, dshape = _shapes(integration_s)
    fits = fit_sums(t, y, shape, dshape, grid, bounds, max_components)
    best = choose(fits, DISTINCT_TAU_RATIO, MIN_BIC_GAIN)
    return TransientFit(c_inf_F=c_ref * math.sqrt(max(best.offset, 0.0)),
                        components=_components(best, c_ref, window, decaying), bic=tuple(f.bic for f in fits),
                        residual_rms_F=c_ref * math.sqrt(best.rss / t.size) / 2.0, window_s=window)


def _components(fit: SumFit, c_ref: float, window: tuple[float, float], decaying: str) -> tuple[Component, ...]:
    out = []
    b0 = fit.offset
    rising = "cation" if decaying == "anion" else "anion"
    c_inf = c_ref * math.sqrt(max(b0, 0.0))
    for i, (b, log_tau) in enumerate(zip(fit.amplitudes, fit.log_rates, strict=True)):
        tau = math.exp(float(log_tau))
        a = float(b) / b0
        if fit.covariance is not None:  # a = b_i/b0, first-order propagation
            var_b0 = float(fit.covariance[0, 0])
            rel2 = (fit.amplitude_err(i) ** 2 / float(b) ** 2 + var_b0 / b0**2
                    - 2 * fit.offset_amplitude_cov(i) / (float(b) * b0))
            a_err = abs(a) * math.sqrt(max(rel2, 0.0))
            tau_err = tau * fit.log_rate_err(i)
        else:
            a_err = tau_err = math.nan
        reasons = []
        if tau < window[0]:
            reasons.append(f"τ = {tau:.3g} s is below the first resolved time {window[0]:.3g} s")
        if tau > window[1]:
            reasons.append(f"τ = {tau:.3g} s has not relaxed by the end (> {window[1]:.3g} s)")
        if not tau_err <= MAX_RELATIVE_TAU_ERROR * tau:
            reasons.append(f"τ uncertain ({tau_err / tau:.0%})" if math.isfinite(tau_err) else "τ undetermined")
        out.append(Component(tau_s=tau, tau_err_s=tau_err, amplitude=a, amplitude_err=a_err,
                             delta_c_F=c_inf * (1.0 - math.sqrt(max(1.0 + a, 0.0))),
                             species=decaying if a > 0 else rising, resolved=not reasons,
                             reason="; ".join(reasons)))
    return tuple(sorted(out, key=lambda comp: comp.tau_s))


def refill_fraction(tau_s: float, pulse_s: float | None) -> float:
    """Share of the zero-bias depletion region the pulse refilled, 1 − exp(−t_pulse/τ) (1 if unknown)."""
    return 1.0 if pulse_s is None else -math.expm1(-pulse_s / tau_s)


def diffusion_cm2_s(tau_s: float, temperature_K: float, eps_r: float, n_a_cm3: float) -> float:
    """D = k·T·ε·ε0/(q²·N_A·τ) in cm²/s (Heiser–Mesli)."""
    return K_B_J_K * temperature_K * eps_r * EPS0_F_M / (Q_C**2 * n_a_cm3 * 1e6 * tau_s) * 1e4


@dataclass(frozen=True)
class TIDTransient:
    """One temperature's transient: ``time_s`` from the bias step, the meter's integration window per point
    and the pulse length (for the refill correction; None: not applied)."""

    temperature_K: float
    time_s: npt.ArrayLike
    capacitance_F: npt.ArrayLike
    integration_s: float = 0.0
    pulse_s: float | None = None


@dataclass(frozen=True)
class Species:
    """One mobile species across the sweep."""

    sign: str
    ea_eV: float
    ea_err_eV: float
    d0_cm2_s: float
    n_ion_cm3: float
    temperatures_K: tuple[float, ...]
    tau_s: tuple[float, ...]
    d_cm2_s: tuple[float, ...]
    n_ion_each_cm3: tuple[float, ...]
    d0_err_factor: float = math.nan  # D0 is known to within × or ÷ this factor (1 SE of the intercept)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"sign": self.sign, "ea_eV": self.ea_eV, "ea_err_eV": self.ea_err_eV, "d0_cm2_s": self.d0_cm2_s,
                "d0_err_factor": self.d0_err_factor, "n_ion_cm3": self.n_ion_cm3,
                "temperatures_K": list(self.temperatures_K), "tau_s": list(self.tau_s),
                "d_cm2_s": list(self.d_cm2_s), "n_ion_each_cm3": list(self.n_ion_each_cm3), "note": self.note}


@dataclass(frozen=True)
class TIDResult:
    species: tuple[Species, ...]
    fits: dict[float, TransientFit]
    excluded: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    n_a_cm3: float = math.nan
    convention: str = ("ΔC = C(∞) − C(0⁺); decaying = anion, rising = cation; Ea from ln(T/τ) vs 1/T; "
                       "components chosen by BIC on C²")

    def as_dict(self) -> dict[str, Any]:
        return {"species": [s.as_dict() for s in self.species], "excluded": list(self.excluded),
                "n_a_cm3": self.n_a_cm3, "convention": self.convention,
                "transients": [{"temperature_K": t, "c_inf_F": f.c_inf_F, "n_components": f.n_components,
                                "window_s": list(f.window_s), "components": [c.as_dict() for c in f.components]}
                               for t, f in sorted(self.fits.items())]}


def analyze_tid(transients: Sequence[TIDTransient], *, n_a_cm3: float, eps_r: float, decaying: str = "anion",
                max_components: int = 3) -> TIDResult:
    """Fit every transient, follow each species (by sign, then by τ rank among the resolved components of that
    sign) across temperature, and fit its Arrhenius plot (a species needs two temperatures; one seen at a
    single temperature is listed as excluded). ``n_a_cm3`` is the space-charge density (from C–V, given or measured),
    ``eps_r`` the absorber's relative permittivity."""
    if not (n_a_cm3 > 0 and math.isfinite(n_a_cm3)):
        raise TIDAnalysisError(f"n_a_cm3 = {n_a_cm3!r}; allowed: > 0")
    if not (eps_r > 0 and math.isfinite(eps_r)):
        raise TIDAnalysisError(f"eps_r = {eps_r!r}; allowed: > 0")
    temps = [float(tr.temperature_K) for tr in transients]
    if len(set(temps)) != len(temps):
        raise TIDAnalysisError("one transient per temperature (average repeats first)")
    fits: dict[float, TransientFit] = {}
    tracks: dict[tuple[str, int], list[tuple[float, Component, float | None]]] = {}
    excluded: list[dict[str, Any]] = []
    for tr in transients:
        temperature = float(tr.temperature_K)
        fit = fit_transient(tr.time_s, tr.capacitance_F, integration_s=tr.integration_s,
                            max_components=max_components, decaying=decaying)
        fits[temperature] = fit
        if not fit.components:
            excluded.append({"temperature_K": temperature, "sign": "", "tau_s": math.nan,
                             "reason": "no transient above the noise"})
        rank: dict[str, int] = {}
        for comp in fit.components:  # fastest first; the k-th resolved one of a sign joins track k
            if comp.resolved:
                k = rank.get(comp.species, 0)
                rank[comp.species] = k + 1
                tracks.setdefault((comp.species, k), []).append((temperature, comp, tr.pulse_s))
            else:
                excluded.append({"temperature_K": temperature, "sign": comp.species, "tau_s": comp.tau_s,
                                 "reason": comp.reason})
    species = []
    for (sign, _), points in sorted(tracks.items()):
        if len(points) < 2:
            excluded += [{"temperature_K": t, "sign": sign, "tau_s": c.tau_s,
                          "reason": "a species seen at one temperature only"} for t, c, _ in points]
        else:
            species.append(_species(sign, points, n_a_cm3, eps_r))
    return TIDResult(species=tuple(species), fits=fits, excluded=tuple(excluded), n_a_cm3=n_a_cm3)


def _species(sign: str, points: list[tuple[float, Component, float | None]], n_a_cm3: float, eps_r: float
             ) -> Species:
    points = sorted(points, key=lambda p: p[0])
    temps = np.array([p[0] for p in points])
    tau = np.array([p[1].tau_s for p in points])
    tau_err = np.array([p[1].tau_err_s for p in points])
    n_each = [n_a_cm3 * abs(p[1].amplitude) / refill_fraction(p[1].tau_s, p[2]) for p in points]
    d = [diffusion_cm2_s(float(tt), float(temp), eps_r, n_a_cm3) for tt, temp in zip(tau, temps, strict=True)]
    ea = ea_err = d0 = d0_factor = math.nan
    note = ""
    try:
        fit = fit_arrhenius(temps, np.log(temps / tau), tau_err / tau)
        ea, ea_err = fit.energy_eV, fit.energy_err_eV
        d0 = math.exp(fit.intercept) * K_B_J_K * eps_r * EPS0_F_M / (Q_C**2 * n_a_cm3 * 1e6) * 1e4
        d0_factor = math.exp(fit.intercept_err)
        if temps.size < 3:
            note = "two temperatures: no standard error"
    except ArrheniusError as exc:
        note = f"no Arrhenius fit: {exc}"
    return Species(sign=sign, ea_eV=ea, ea_err_eV=ea_err, d0_cm2_s=d0, n_ion_cm3=float(np.mean(n_each)),
                   temperatures_K=tuple(float(v) for v in temps), tau_s=tuple(float(v) for v in tau),
                   d_cm2_s=tuple(d), n_ion_each_cm3=tuple(float(v) for v in n_each), d0_err_factor=d0_factor,
                   note=note)
