"""Mobile ions: Arrhenius diffusion, the Heiser–Mesli time constant, ionic screening and its effect on
photocurrent collection.

Two mobile species per cell: halide vacancies/interstitials ("anion", mobile in the dark) and a
light-activated cation set (FA⁺/MA⁺, mobile only under illumination). Each species carries two state
variables, both relaxing exponentially with the *same* time constant τ(T):

``v`` (volts)
    The bias to which the species' spatial distribution is equilibrated ("the voltage the ions remember").
    It relaxes towards the applied voltage (towards the device's own Voc at open circuit). The ions screen
    the built-in field; while ``v`` lags the terminal voltage V, a non-equilibrium field
    ``δ = Σ w_s·(v_s − V)`` remains across the absorber bulk. δ > 0 (reverse scan from Voc: ions still
    arranged for a high voltage) helps extraction; δ < 0 (forward scan from 0 V) pushes carriers towards the
    wrong contacts and photocurrent is lost to interface recombination — normal hysteresis, RS above FS.
``m`` (dimensionless)
    The fraction of the zero-bias depletion region filled with mobile ions (the Heiser–Mesli picture used by
    TID): equilibrium ``m_eq(V) = 1 − W(V)/W(0)``. Out of equilibrium the ionic charge changes the net
    space charge of the region, ``N_eff = N_A·(1 + Σ s_s·(N_s/N_A)·(m_s − m_eq(V)))``, so
    ``|ΔC|/C ≈ N_s/(2·N_A)`` after a bias pulse that filled the region: N_ion ≈ 2·N_A·|ΔC|/C∞.

Sign of the TID transient, from the electrostatics (:func:`space_charge_share`): s_s = +1 when the ion's
charge has the sign of the fixed space charge of the depletion region (ionised acceptors, negative, in a
p-type absorber), −1 when it is opposite. Ions of the same sign *add* to the space charge while they sit in
the region, so right after the pulse W is narrower and C higher than at equilibrium; the built-in field then
sweeps them out of the region (towards the junction interface) and C *decays*: ΔC = C(∞) − C(0⁺) < 0. Ions
of the opposite sign *compensate* the space charge (Heiser & Mesli's Cu⁺ in p-Si): W wider, C lower, and C
*rises* as the field pushes them into the neutral bulk: ΔC > 0. In the p-i-n cells of the TID seed (Xiang et
al.), whose absorber behaves as p-type towards the electron-transport side, halide anions (dark) therefore
give the negative ΔC the seed reports and FA⁺ cations (under light) the positive one; an n-type absorber
(``doping_type="n"``) reverses both.

Time constant (Heiser & Mesli 1993, as used by Futscher et al. 2019):
    D(T) = D0·exp(−Ea/kT),   τ(T) = k·T·ε·ε0 / (q²·N_A·D(T))
so a TID analysis that fits τ and computes D = kTεε0/(q²N_Aτ) recovers D(T) and Ea exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mock_instruments.diode import BOLTZMANN_EV_K

Q_C = 1.602176634e-19
EPS0_F_M = 8.8541878128e-12
K_B_J_K = 1.380649e-23

# Parameter name -> (low, high, low inclusive, high inclusive, unit) for PerovskiteCell validation.
ION_PARAMETER_RANGES: dict[str, tuple[float, float, bool, bool, str]] = {
    "ea_anion_eV": (0.0, 2.0, False, True, "eV"),
    "d0_anion_cm2_s": (0.0, 1.0, False, True, "cm²/s"),
    "n_ion_anion_cm3": (0.0, 1e21, True, True, "cm⁻³"),
    "ea_cation_eV": (0.0, 2.0, False, True, "eV"),
    "d0_cation_cm2_s": (0.0, 1.0, False, True, "cm²/s"),
    "n_ion_cation_cm3": (0.0, 1e21, True, True, "cm⁻³"),
    "cation_activation_suns": (0.0, 100.0, False, True, "suns"),
    "ion_loss_ratio": (0.0, 10.0, True, True, ""),
    "ion_field_scale_V": (0.0, 10.0, False, True, "V"),
}

SPECIES = ("anion", "cation")
ION_CHARGE = {"anion": -1.0, "cation": +1.0}
# Sign of the fixed space charge in the depletion region: ionised acceptors (p) or donors (n).
SPACE_CHARGE_SIGN = {"p": -1.0, "n": +1.0}
DOPING_TYPES = tuple(SPACE_CHARGE_SIGN)


def space_charge_share(species: str, doping_type: str) -> float:
    """s = +1 if the species' charge has the sign of the depletion region's fixed charge (the ions add to the
    space charge: C decays after the pulse, ΔC < 0), −1 if opposite (they compensate it: C rises, ΔC > 0)."""
    return ION_CHARGE[species] * SPACE_CHARGE_SIGN[doping_type]


@dataclass
class IonState:
    """Per-species relaxation state (see module docstring)."""

    v_anion_V: float = 0.0
    v_cation_V: float = 0.0
    m_anion: float = 0.0
    m_cation: float = 0.0


def diffusion_cm2_s(d0_cm2_s: float, ea_eV: float, temperature_K: float) -> float:
    """D(T) = D0·exp(−Ea/kT)."""
    return d0_cm2_s * math.exp(-ea_eV / (BOLTZMANN_EV_K * temperature_K))


def heiser_mesli_tau_s(d_cm2_s: float, temperature_K: float, eps_r: float, n_a_cm3: float) -> float:
    """τ = k·T·ε·ε0 / (q²·N_A·D)."""
    return (K_B_J_K * temperature_K * eps_r * EPS0_F_M) / (Q_C**2 * n_a_cm3 * 1e6 * d_cm2_s * 1e-4)


def diffusion_from_tau_cm2_s(tau_s: float, temperature_K: float, eps_r: float, n_a_cm3: float) -> float:
    """The TID analysis' inversion: D = k·T·ε·ε0 / (q²·N_A·τ), in cm²/s."""
    return (K_B_J_K * temperature_K * eps_r * EPS0_F_M) / (Q_C**2 * n_a_cm3 * 1e6 * tau_s) * 1e4


def screening_density_cm3(eps_r: float, v_bi_V: float, thickness_nm: float) -> float:
    """Ion density whose full separation to the interfaces screens V_bi across the absorber:
    N_scr = 2·ε·ε0·V_bi/(q·d²)."""
    d_m = thickness_nm * 1e-9
    return 2.0 * eps_r * EPS0_F_M * v_bi_V / (Q_C * d_m**2) * 1e-6


def cation_activity(suns: float, activation_suns: float) -> float:
    """Fraction of the light-activated cation set that is mobile at this irradiance (0 in the dark)."""
    return suns / (suns + activation_suns) if suns > 0.0 else 0.0


def screening_weights(n_anion_cm3: float, n_cation_cm3: float, n_screen_cm3: float) -> tuple[float, float]:
    """Share of the built-in field screened by each species: w_s = N_s/(ΣN + N_scr).

    Few ions (ΣN ≪ N_scr) screen little and give little hysteresis; many ions screen nearly all of it."""
    total = n_anion_cm3 + n_cation_cm3 + n_screen_cm3
    return n_anion_cm3 / total, n_cation_cm3 / total


def collection_efficiency(delta_V: float, loss_ratio: float, field_scale_V: float) -> float:
    """Photocurrent collection relative to the ion-equilibrated steady state.

    Extraction competes with interface recombination; the non-equilibrium bulk field δ tilts the balance:
    η(δ) = (1 + r)/(1 + r·exp(−δ/V_c)). η(0) = 1 (steady state), η → 1 + r for a strongly assisting field,
    η → 0 for a strongly opposing one."""
    if loss_ratio == 0.0:
        return 1.0
    x = -delta_V / field_scale_V
    if x > 700.0:
        return 0.0
    return (1.0 + loss_ratio) / (1.0 + loss_ratio * math.exp(x))


def relax(value: float, target: float, decay_exponent: float) -> float:
    """Exact solution of dx/dt = (target − x)/τ after dt: decay_exponent = ∫dt/τ."""
    return target + (value - target) * math.exp(-decay_exponent)


def lag_fraction(k: float) -> float:
    """φ(k) = 1 − (1 − e^−k)/k: how much of a ramp's rise the relaxing variable has picked up."""
    if k < 1e-4:
        return k / 2.0 - k * k / 6.0 + k**3 / 24.0
    return 1.0 + math.expm1(-k) / k


def relax_ramp(value: float, start: float, end: float, decay_exponent: float) -> float:
    """Exact solution of dx/dt = (target(t) − x)/τ after dt for a target rising linearly from ``start`` to
    ``end`` over the step (decay_exponent = dt/τ)."""
    k = decay_exponent
    decay = math.exp(-k)
    return value * decay + start * (1.0 - decay) + (end - start) * lag_fraction(k)


def relax_ramp_array(value: float, start: float, end: np.ndarray, decay_exponent: np.ndarray) -> np.ndarray:
    """:func:`relax_ramp` at several times into one ramp (``end`` = the target reached at each time)."""
    k = np.asarray(decay_exponent, dtype=float)
    decay = np.exp(-k)
    with np.errstate(divide="ignore", invalid="ignore"):
        lag = np.where(k < 1e-4, k / 2.0 - k * k / 6.0 + k**3 / 24.0, 1.0 + np.expm1(-k) / np.where(k > 0, k, 1.0))
    return np.asarray(value * decay + start * (1.0 - decay) + (end - start) * lag)


def collection_efficiency_array(delta_V: np.ndarray, loss_ratio: float, field_scale_V: float) -> np.ndarray:
    """Vectorised :func:`collection_efficiency`."""
    if loss_ratio == 0.0:
        return np.ones_like(np.asarray(delta_V, dtype=float))
    x = np.minimum(-np.asarray(delta_V, dtype=float) / field_scale_V, 700.0)
    return np.asarray((1.0 + loss_ratio) / (1.0 + loss_ratio * np.exp(x)))
