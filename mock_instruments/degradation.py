"""Degradation, reversible loss and halide segregation: the rate laws and their closed-form solutions.

Damage d is a fractional loss of power-conversion capability (d = 0.1 ≈ 10 % PCE loss); device.py maps it
onto the diode (Jph, J0, Rs). Three state variables, each driven by a rate that depends on how the cell is
operated *now* (device.py evaluates the rates; stepping.py holds them constant over sub-steps short enough
that they change little, and these closed forms are exact for a constant rate):

``dose_h``
    Accumulated stress in equivalent hours at the reference condition (fresh cell at its MPP, 1 sun,
    298.15 K). The stress rate, in reference hours per hour, is

        s = A_T·[c_L·suns^γ + c_ρ·ρ + s_dark + k_rev·(exp(−V_j/V_rev) − 1)⁺]

    - A_T = exp(−Ea_deg/k·(1/T − 1/T_ref)) (heat);
    - c_L·suns^γ: light itself (photo-chemistry that does not depend on where the carriers go);
    - c_ρ·ρ: the carriers that recombine inside the cell. ρ = J_rec/Jph,ref is the diode's recombination
      current at the internal junction voltage V_j = V + J·Rs, relative to the fresh 1-sun photocurrent:
      ≈ 1 at open circuit under 1 sun, a few % at the MPP, ≈ 0 at short circuit, > 1 above Voc or under
      forward injection in the dark. So open circuit ages faster than MPP, an electrically injected cell ages
      without light (ISOS-V), and a cell held at a fixed voltage ages faster as its Voc falls towards that
      voltage — because its carrier density really rises, not because of a voltage law. c_L and c_ρ follow
      from ``oc_stress_ratio`` (stress at 1-sun open circuit ÷ stress at the 1-sun MPP, fresh cell) and the
      normalisation s(MPP) = 1 (see :func:`stress_weights`). Evidence: excess carriers at open circuit drive
      the light-induced degradation (Domanski et al., Nat. Energy 3, 61 (2018); Khenkin et al., Nat. Energy
      5, 35 (2020)); the ratio itself is a fill-in.
    - reverse bias: k_rev·(exp(−V_j/V_rev) − 1) for V_j < 0. The damage rate under reverse bias follows the
      reverse current, which rises steeply towards breakdown (Henzel et al., ACS Appl. Energy Mater. 6, 11429
      (2023); Razera et al., J. Mater. Chem. A 8 (2020)); the diode here has no breakdown branch, so the
      steep rise is written on V_j directly and stops at the breakdown voltage V_bd (−1 to −5 V in perovskite
      cells, Razera et al.): beyond it a real cell's breakdown current would hold the voltage. k_rev, V_rev and
      V_bd are fill-ins.
    - s_dark: thermal (ISOS-D) stress, present with or without light.

    Damage shape d(D) = b·(1 − exp(−D/τ_b)) + d_L(D): a burn-in (fast initial drop) then d_L = k·D (linear) or
    (1 − b)·(1 − exp(−k·D)) (exponential).
``reversible``
    A fraction ρ_rev of the damage generated is reversible: dR/dt = ρ_rev·s·d'(D) − k_off·R with
    k_off = A_T/(τ_rec·(1 + 100·suns)) (recovery in the dark, 100× slower at 1 sun). For a constant s, d'(D(t))
    is a sum of exponentials in t, so R(t) has a closed form. Total damage = (1 − ρ_rev)·d(D) + R.
``seg_theta_h``
    Halide segregation in the extended-time (Avrami) picture: dθ/dt = A_seg·g(x)·χ − θ/τ_mix. χ is the
    carrier density relative to 1-sun open circuit, χ = (ρ/ρ_oc)^(n/2) (with ideality n the recombination
    current scales as (carrier density)^(2/n)): segregation is driven by photo- or electrically injected
    carriers (Draguta et al., Nat. Commun. 8, 200 (2017); Duong et al., ACS Appl. Mater. Interfaces 9, 26859
    (2017) for injection in the dark), so extraction at the MPP slows it and open circuit is fastest.
    g(x) = 1/(1 + exp(−(x − x_th)/0.01)) switches it on above the Br threshold; τ_mix = τ_remix/A_seg (entropic
    remixing, visible in the dark). The segregated fraction is f = 1 − exp(−(θ/θ_c)^n_A): slow for the first
    ~θ_c/2 of illumination, then fast (nucleation and growth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mock_instruments.diode import BOLTZMANN_EV_K

T_REF_K = 298.15
RECOVERY_LIGHT_SUPPRESSION = 100.0  # recovery rate ÷ (1 + this·suns)
SEG_THRESHOLD_WIDTH = 0.01

DEGRADATION_PARAMETER_RANGES: dict[str, tuple[float, float, bool, bool, str]] = {
    "burnin_fraction": (0.0, 1.0, True, False, ""),
    "burnin_time_h": (0.0, 1e6, False, True, "h"),
    "longterm_rate_per_h": (0.0, 1.0, True, True, "1/h"),
    "degradation_ea_eV": (0.0, 3.0, True, True, "eV"),
    "light_exponent": (0.0, 5.0, True, True, ""),
    "dark_stress_fraction": (0.0, 10.0, True, True, ""),
    "oc_stress_ratio": (1.0, 20.0, True, True, ""),
    "reverse_stress_factor": (0.0, 1e3, True, True, ""),
    "reverse_stress_scale_V": (0.01, 10.0, True, True, "V"),
    "reverse_breakdown_V": (-100.0, 0.0, True, False, "V"),
    "reversible_fraction": (0.0, 1.0, True, True, ""),
    "recovery_time_h": (0.0, 1e6, False, True, "h"),
    "damage_share_jsc": (0.0, 1.0, True, True, ""),
    "damage_share_voc": (0.0, 1.0, True, True, ""),
    "damage_rs_growth": (0.0, 100.0, True, True, ""),
    "br_fraction": (0.0, 1.0, True, True, ""),
    "seg_threshold_br": (0.0, 1.0, True, True, ""),
    "seg_time_h": (0.0, 1e6, False, True, "h"),
    "seg_avrami_n": (1.0, 6.0, True, True, ""),
    "seg_remix_h": (0.0, 1e6, False, True, "h"),
    "seg_ea_eV": (0.0, 3.0, True, True, "eV"),
    "seg_dEg_eV": (0.0, 1.0, True, True, "eV"),
    "seg_voc_coupling": (0.0, 1.0, True, True, ""),
    "seg_dea_anion_eV": (0.0, 1.0, True, True, "eV"),
    "seg_absorption_share": (0.0, 1.0, True, True, ""),
}
LONGTERM_MODES = ("linear", "exponential")


class DegradationParams(Protocol):
    burnin_fraction: float
    burnin_time_h: float
    longterm_rate_per_h: float
    longterm_mode: str
    degradation_ea_eV: float
    light_exponent: float
    dark_stress_fraction: float
    oc_stress_ratio: float
    reverse_stress_factor: float
    reverse_stress_scale_V: float
    reverse_breakdown_V: float
    reversible_fraction: float
    recovery_time_h: float
    br_fraction: float
    seg_threshold_br: float
    seg_time_h: float
    seg_avrami_n: float
    seg_remix_h: float
    seg_ea_eV: float


@dataclass
class DegradationState:
    dose_h: float = 0.0
    reversible: float = 0.0
    seg_theta_h: float = 0.0


@dataclass(frozen=True)
class StressWeights:
    """c_L and c_ρ of the stress law, and ρ at the fresh cell's 1-sun open circuit (the χ = 1 reference)."""

    light: float
    carrier: float
    rho_oc: float


def stress_weights(p: DegradationParams, rho_mpp: float, rho_oc: float) -> StressWeights:
    """c_L, c_ρ such that the fresh 1-sun MPP gives s = 1 and 1-sun open circuit s = ``oc_stress_ratio``
    (both at 298.15 K, dark stress apart)."""
    carrier = (p.oc_stress_ratio - 1.0) / max(rho_oc - rho_mpp, 1e-9)
    return StressWeights(max(1.0 - carrier * rho_mpp, 0.0), carrier, rho_oc)


def arrhenius_factor(ea_eV: float, temperature_K: float) -> float:
    return math.exp(-ea_eV / BOLTZMANN_EV_K * (1.0 / temperature_K - 1.0 / T_REF_K))


def stress_rate(p: DegradationParams, w: StressWeights, suns: float, arrhenius: float, rho: float,
                junction_V: float) -> float:
    """Equivalent reference hours per hour (see the module docstring); ``arrhenius`` = A_T."""
    s = p.dark_stress_fraction + w.carrier * max(rho, 0.0)
    if suns > 0.0:
        s += w.light * suns**p.light_exponent
    if junction_V < 0.0 and p.reverse_stress_factor > 0.0:
        s += p.reverse_stress_factor * math.expm1(min(-junction_V, -p.reverse_breakdown_V) / p.reverse_stress_scale_V)
    return arrhenius * s


def segregation_source_per_h(p: DegradationParams, temperature_K: float) -> float:
    """A_seg·g(x): the segregation drive at 1-sun open-circuit carrier density (θ-hours per hour)."""
    return arrhenius_factor(p.seg_ea_eV, temperature_K) * segregation_gate(p)


def shape_terms(p: DegradationParams) -> tuple[tuple[float, float], ...]:
    """d'(D) = Σ c·exp(−λ·D) as (c, λ) pairs (λ = 0: constant)."""
    b, k = p.burnin_fraction, p.longterm_rate_per_h
    longterm = (k, 0.0) if p.longterm_mode == "linear" else ((1.0 - b) * k, k)
    return (b / p.burnin_time_h, 1.0 / p.burnin_time_h), longterm


def damage_shape(p: DegradationParams, dose_h: float) -> float:
    """d(D): total damage generated by a dose, before splitting into reversible/irreversible."""
    b, k = p.burnin_fraction, p.longterm_rate_per_h
    burn = -b * math.expm1(-dose_h / p.burnin_time_h)
    if p.longterm_mode == "linear":
        return burn + k * dose_h
    return burn - (1.0 - b) * math.expm1(-k * dose_h)


def damage_shape_array(p: DegradationParams, dose_h: np.ndarray) -> np.ndarray:
    b, k = p.burnin_fraction, p.longterm_rate_per_h
    burn = -b * np.expm1(-dose_h / p.burnin_time_h)
    if p.longterm_mode == "linear":
        return np.asarray(burn + k * dose_h)
    return np.asarray(burn - (1.0 - b) * np.expm1(-k * dose_h))


def _conv(k: float, c: float, t: float) -> float:
    """∫0^t exp(−k(t−u))·exp(−c·u) du, stable for k ≈ c and k or c = 0."""
    x = (k - c) * t
    if abs(x) < 1e-4:
        series = 1.0 - x / 2.0 + x * x / 6.0 - x**3 / 24.0
        return math.exp(-c * t) * t * series
    return (math.exp(-c * t) - math.exp(-k * t)) / (k - c)


def _conv_array(k: float, c: float, t: np.ndarray) -> np.ndarray:
    x = (k - c) * t
    series = np.exp(-c * t) * t * (1.0 - x / 2.0 + x * x / 6.0 - x**3 / 24.0)
    if k == c:
        return np.asarray(series)
    return np.asarray(np.where(np.abs(x) < 1e-4, series, (np.exp(-c * t) - np.exp(-k * t)) / (k - c)))


def total_damage(p: DegradationParams, state: DegradationState) -> float:
    return (1.0 - p.reversible_fraction) * damage_shape(p, state.dose_h) + state.reversible


def recovery_rate_per_h(p: DegradationParams, suns: float, temperature_K: float) -> float:
    """k_off of the reversible pool: A_T/(τ_rec·(1 + 100·suns))."""
    return arrhenius_factor(p.degradation_ea_eV, temperature_K) / (
        p.recovery_time_h * (1.0 + RECOVERY_LIGHT_SUPPRESSION * suns))


def advance_damage(p: DegradationParams, state: DegradationState, dt_h: float, stress: float,
                   k_off_per_h: float, terms: tuple[tuple[float, float], ...]) -> None:
    """Dose and reversible pool after dt_h at a constant stress rate (exact); ``terms`` = shape_terms(p)."""
    rho = p.reversible_fraction
    r = state.reversible * math.exp(-k_off_per_h * dt_h)
    if rho > 0.0 and stress > 0.0:
        for coef, lam in terms:
            amp = rho * stress * coef * math.exp(-lam * state.dose_h)
            r += amp * _conv(k_off_per_h, lam * stress, dt_h)
    state.reversible = r
    state.dose_h += stress * dt_h


def damage_path(p: DegradationParams, state: DegradationState, t_h: np.ndarray, stress: float,
                k_off_per_h: float, terms: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Total damage at each time t_h (from now, constant stress): :func:`advance_damage` vectorised."""
    rho = p.reversible_fraction
    r = state.reversible * np.exp(-k_off_per_h * t_h)
    if rho > 0.0 and stress > 0.0:
        for coef, lam in terms:
            amp = rho * stress * coef * math.exp(-lam * state.dose_h)
            r = r + amp * _conv_array(k_off_per_h, lam * stress, t_h)
    return np.asarray((1.0 - rho) * damage_shape_array(p, state.dose_h + stress * t_h) + r)


def segregation_gate(p: DegradationParams) -> float:
    z = (p.br_fraction - p.seg_threshold_br) / SEG_THRESHOLD_WIDTH
    return 1.0 / (1.0 + math.exp(-z)) if z > -700.0 else 0.0


def remix_time_h(p: DegradationParams, temperature_K: float) -> float:
    """τ_mix = τ_remix/A_seg: θ relaxes as dθ/dt = drive − θ/τ_mix, towards θ∞ = drive·τ_mix."""
    return p.seg_remix_h / arrhenius_factor(p.seg_ea_eV, temperature_K)


def advance_segregation(state: DegradationState, dt_h: float, theta_inf_h: float, tau_mix_h: float) -> None:
    state.seg_theta_h = theta_inf_h + (state.seg_theta_h - theta_inf_h) * math.exp(-dt_h / tau_mix_h)


def theta_path(theta_h: float, t_h: np.ndarray, theta_inf_h: float, tau_mix_h: float) -> np.ndarray:
    return np.asarray(theta_inf_h + (theta_h - theta_inf_h) * np.exp(-t_h / tau_mix_h))


def segregated_fraction(p: DegradationParams, theta_h: float) -> float:
    if theta_h <= 0.0:
        return 0.0
    return -math.expm1(-((theta_h / p.seg_time_h) ** p.seg_avrami_n))


def segregated_fraction_array(p: DegradationParams, theta_h: np.ndarray) -> np.ndarray:
    x = np.maximum(theta_h, 0.0) / p.seg_time_h
    return np.asarray(-np.expm1(-(x**p.seg_avrami_n)))


def segregation_trajectory(p: DegradationParams, theta_start_h: float, theta_inf_h: float, tau_mix_h: float,
                           times_h: list[float]) -> list[float]:
    """Segregated fraction at the given times into a constant-drive step that starts at θ."""
    return [segregated_fraction(p, theta_inf_h + (theta_start_h - theta_inf_h) * math.exp(-t / tau_mix_h))
            for t in times_h]
