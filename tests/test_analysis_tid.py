"""TID analysis on synthetic transients with known answers, made here from the Heiser–Mesli formulas (not
from the simulated cell): C(t) = C∞·√(1 + Σ aᵢ·exp(−t/τᵢ)), τ = kTεε0/(q²N_A·D), D = D0·exp(−Ea/kT), with
Gaussian noise of a stated fraction of C, sampled like the E4980A capture (100 points 5.6 ms apart from a
3.8 ms dead time, then 101 points to 10 s)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labctl.analysis.tid import TIDAnalysisError, TIDTransient, analyze_tid, fit_transient

K_EV = 8.617333262e-5
K_J = 1.380649e-23
Q = 1.602176634e-19
EPS0 = 8.8541878128e-12
N_A = 3e16
EPS_R = 35.0
C_INF = 9.5e-9
TIME_S = np.concatenate([3.8e-3 + 5.6e-3 * np.arange(100), 0.5638 + 0.0944 * np.arange(101)])


def tau_s(ea_eV: float, d0_cm2_s: float, temperature_K: float) -> float:
    d = d0_cm2_s * math.exp(-ea_eV / (K_EV * temperature_K)) * 1e-4
    return K_J * temperature_K * EPS_R * EPS0 / (Q**2 * N_A * 1e6 * d)


def transient(components: list[tuple[float, float]], noise: float, seed: int, integration_s: float = 0.0
              ) -> np.ndarray:
    """C(t) with components (τ, a); each point averaged over ``integration_s`` around its time."""
    rng = np.random.default_rng(seed)
    offsets = np.linspace(-0.5, 0.5, 41) * integration_s
    y = np.ones((TIME_S.size, offsets.size))
    for tau, a in components:
        y += a * np.exp(-(TIME_S[:, None] + offsets[None, :]) / tau)
    c = C_INF * np.sqrt(y).mean(axis=1)
    return np.asarray(c * (1 + noise * rng.standard_normal(c.size)))


def test_one_decaying_component_is_an_anion_with_its_tau_and_density() -> None:
    """a = 0.05 (N_ion = 0.05·N_A), noise 3e-4 of C: τ within 2 %, a within 3 % (≈ 5 standard errors)."""
    fit = fit_transient(TIME_S, transient([(0.08, 0.05)], 3e-4, 1))
    assert fit.n_components == 1
    (comp,) = fit.components
    assert comp.species == "anion" and comp.delta_c_F < 0 and comp.resolved
    assert comp.tau_s == pytest.approx(0.08, rel=0.02)
    assert comp.amplitude == pytest.approx(0.05, rel=0.03)
    assert abs(comp.tau_s - 0.08) < 4 * comp.tau_err_s  # the stated error is honest
    assert fit.c_inf_F == pytest.approx(C_INF, rel=1e-4)


def test_a_rising_component_is_a_cation() -> None:
    fit = fit_transient(TIME_S, transient([(0.6, -0.03)], 3e-4, 2))
    (comp,) = fit.components
    assert comp.species == "cation" and comp.delta_c_F > 0
    assert comp.tau_s == pytest.approx(0.6, rel=0.03)
    flipped = fit_transient(TIME_S, transient([(0.6, -0.03)], 3e-4, 2), decaying="cation")
    assert flipped.components[0].species == "anion"  # an n-type absorber side: the assignment swaps


def test_the_square_root_term_is_not_a_second_species() -> None:
    """A large single species (a = 0.24: N_ion = 0.24·N_A) makes C = C∞√(1 + a·e^(−t/τ)) visibly non-
    exponential: in C its expansion holds an e^(−2t/τ) term of −a²/8 = −0.7 % of C, 14× the noise. One
    component is found, with the exact density; the linear formula 2·N_A·|ΔC|/C∞ would give 5 % less."""
    c = transient([(0.1, 0.24)], 5e-4, 3)
    fit = fit_transient(TIME_S, c)
    assert fit.n_components == 1
    assert fit.components[0].amplitude == pytest.approx(0.24, rel=0.02)
    linear = 2 * abs(fit.components[0].delta_c_F) / fit.c_inf_F
    assert linear == pytest.approx(0.24 * 0.947, rel=0.02)
    # in C itself the τ/2 term is there: a linear fit with exponentials at τ and τ/2 finds it at −a²/8·C∞
    design = np.column_stack([np.ones_like(TIME_S), np.exp(-TIME_S / 0.1), np.exp(-TIME_S / 0.05)])
    coef, *_ = np.linalg.lstsq(design, c, rcond=None)
    assert coef[2] / C_INF == pytest.approx(-(0.24**2) / 8, rel=0.25)


def test_overlapping_components_of_opposite_sign_are_separated() -> None:
    """Anion τ 0.3 s and cation τ 1.5 s (ratio 5, the simulated fapbi3 under light at 210 K), noise 5e-4."""
    fit = fit_transient(TIME_S, transient([(0.3, 0.05), (1.5, -0.025)], 5e-4, 4))
    assert [c.species for c in fit.components] == ["anion", "cation"]
    assert fit.components[0].tau_s == pytest.approx(0.3, rel=0.05)
    assert fit.components[1].tau_s == pytest.approx(1.5, rel=0.1)
    assert fit.components[1].amplitude == pytest.approx(-0.025, rel=0.1)


def test_two_same_sign_components_a_decade_apart() -> None:
    fit = fit_transient(TIME_S, transient([(0.03, 0.04), (0.8, 0.03)], 3e-4, 5))
    assert fit.n_components == 2 and all(c.species == "anion" for c in fit.components)
    assert [c.tau_s for c in fit.components] == pytest.approx([0.03, 0.8], rel=0.08)


def test_pure_noise_has_no_component() -> None:
    fit = fit_transient(TIME_S, transient([], 5e-4, 6))
    assert fit.n_components == 0
    assert fit.bic[0] == min(fit.bic)


@pytest.mark.parametrize(("tau", "why"), [(30.0, "not relaxed"), (0.002, "below the first resolved time")])
def test_transients_partly_outside_the_window_are_not_resolved(tau: float, why: str) -> None:
    """τ = 30 s (the window ends at 10 s: a third of it relaxed) or 2 ms (mostly gone before the first point
    at 3.8 ms): found, but not used for the Arrhenius plot, with the reason."""
    fit = fit_transient(TIME_S, transient([(tau, 0.05)], 3e-4, 7))
    assert fit.n_components == 1
    assert not fit.components[0].resolved and why in fit.components[0].reason


def test_the_integration_window_is_accounted_for() -> None:
    """5.6 ms windows on a τ = 10 ms transient raise each point by sinh(x)/x = 1.05 (x = w/2τ = 0.28): with
    the window given, the amplitude is exact; without, it comes out ≈ 5 % too high."""
    c = transient([(0.01, 0.08)], 1e-4, 8, integration_s=5.6e-3)
    with_window = fit_transient(TIME_S, c, integration_s=5.6e-3).components[0]
    without = fit_transient(TIME_S, c).components[0]
    assert with_window.amplitude == pytest.approx(0.08, rel=0.01)
    assert without.amplitude == pytest.approx(0.08 * math.sinh(0.28) / 0.28, rel=0.01)
    assert with_window.tau_s == pytest.approx(0.01, rel=0.02)


def sweep(species: list[tuple[float, float, float]], temperatures: list[float], noise: float,
          pulse_s: float | None = None) -> list[TIDTransient]:
    """(Ea, D0, N/N_A with sign) per species; the refill after ``pulse_s`` at the same τ."""
    out = []
    for k, temp in enumerate(temperatures):
        comps = []
        for ea, d0, a in species:
            tau = tau_s(ea, d0, temp)
            fill = 1.0 if pulse_s is None else -math.expm1(-pulse_s / tau)
            comps.append((tau, a * fill))
        out.append(TIDTransient(temp, TIME_S, transient(comps, noise, 100 + k), pulse_s=pulse_s))
    return out


def test_arrhenius_recovers_ea_d0_and_density_with_stated_errors() -> None:
    """Ea 0.131 eV, D0 5.29e-8 cm²/s (τ 50 ms at 300 K, 0.42 s at 200 K), N = 0.05·N_A; 300 → 200 K in 20 K
    steps; noise 5e-4 of C: Ea within 3 meV and within 3 standard errors, D0 within 20 %, N within 3 %."""
    result = analyze_tid(sweep([(0.131, 5.29e-8, 0.05)], [300, 280, 260, 240, 220, 200], 5e-4),
                         n_a_cm3=N_A, eps_r=EPS_R)
    (sp,) = result.species
    assert sp.sign == "anion" and len(sp.temperatures_K) == 6
    assert sp.ea_eV == pytest.approx(0.131, abs=3e-3)
    assert abs(sp.ea_eV - 0.131) < 3 * sp.ea_err_eV + 1e-4 and sp.ea_err_eV < 3e-3
    assert sp.d0_cm2_s == pytest.approx(5.29e-8, rel=0.2)
    assert sp.n_ion_cm3 == pytest.approx(0.05 * N_A, rel=0.03)
    d_300 = 5.29e-8 * math.exp(-0.131 / (K_EV * 300))
    assert sp.d_cm2_s[-1] == pytest.approx(d_300, rel=0.05)  # D(T) at the warmest point
    as_json = result.as_dict()["species"][0]
    assert set(as_json) >= {"sign", "ea_eV", "ea_err_eV", "d0_cm2_s", "n_ion_cm3", "temperatures_K"}


def test_ln_t_over_tau_not_ln_tau_t() -> None:
    """The analysis uses ln(T/τ); ln(τ·T) on the same τ would give Ea − ≈2kT̄ (≈ 42 meV at 245 K)."""
    temps = np.array([300.0, 275.0, 250.0, 225.0, 200.0])
    tau = np.array([tau_s(0.131, 5.29e-8, t) for t in temps])
    biased = np.polyfit(1 / temps, np.log(tau * temps), 1)[0] * K_EV
    assert biased - 0.131 == pytest.approx(-2 * K_EV * 245, rel=0.1)
    result = analyze_tid([TIDTransient(t, TIME_S, transient([(tt, 0.05)], 2e-4, 9))
                          for t, tt in zip(temps, tau, strict=True)], n_a_cm3=N_A, eps_r=EPS_R)
    assert result.species[0].ea_eV == pytest.approx(0.131, abs=2e-3)


def test_temperatures_outside_the_window_are_listed_not_used() -> None:
    """A slow species (Ea 0.35 eV, τ 0.3 s at 300 K, 2.1 s at 260 K, 7 s at 240 K, 30 s at 220 K): only the
    temperatures where τ ≤ 10 s / 3 contribute; the others are listed with the reason."""
    assert tau_s(0.35, 4.2e-5, 300) == pytest.approx(0.3, rel=0.05)
    result = analyze_tid(sweep([(0.35, 4.2e-5, 0.05)], [300, 280, 260, 240, 220], 3e-4), n_a_cm3=N_A,
                         eps_r=EPS_R)
    (sp,) = result.species
    assert set(sp.temperatures_K) == {300.0, 280.0, 260.0}
    excluded = {e["temperature_K"] for e in result.excluded}
    assert excluded == {240.0, 220.0}
    assert all("relaxed" in e["reason"] for e in result.excluded)
    assert sp.ea_eV == pytest.approx(0.35, abs=0.01)


def test_anions_and_cations_under_light_each_get_their_arrhenius() -> None:
    """Anion Ea 0.131 eV (τ 50 → 420 ms) and cation Ea 0.09 eV (τ 0.5 → 1.9 s) with a = +0.05 / −0.03, a 5 s
    pulse that refills the slow cations only partly at 200 K (fill 93 %): both Ea within 5 meV, the cation
    density within 5 % once the refill is accounted for."""
    result = analyze_tid(sweep([(0.131, 5.29e-8, 0.05), (0.09, 1.08e-9, -0.03)], [300, 270, 240, 210], 3e-4,
                               pulse_s=5.0), n_a_cm3=N_A, eps_r=EPS_R)
    by_sign = {s.sign: s for s in result.species}
    assert by_sign["anion"].ea_eV == pytest.approx(0.131, abs=5e-3)
    assert by_sign["cation"].ea_eV == pytest.approx(0.09, abs=5e-3)
    assert by_sign["cation"].n_ion_cm3 == pytest.approx(0.03 * N_A, rel=0.05)


def test_bad_input_is_refused_with_the_parameter_named() -> None:
    with pytest.raises(TIDAnalysisError, match="n_a_cm3"):
        analyze_tid([], n_a_cm3=-1.0, eps_r=EPS_R)
    with pytest.raises(TIDAnalysisError, match="decaying"):
        fit_transient(TIME_S, transient([], 1e-4, 1), decaying="proton")
    with pytest.raises(TIDAnalysisError, match="points"):
        fit_transient(TIME_S[:5], np.ones(5))
    with pytest.raises(TIDAnalysisError, match="one transient per temperature"):
        analyze_tid([TIDTransient(300, TIME_S, transient([], 1e-4, 1))] * 2, n_a_cm3=N_A, eps_r=EPS_R)
