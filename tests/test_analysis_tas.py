"""TAS analysis on synthetic admittance spectra with known traps, built here from Walter's model (not from
the simulated cell): each trap a Debye relaxation jω·ΔC/(1 + jω/ω0), ω0 = 2ξ0T²·exp(−Et/kT), ΔC =
q·W·N_t·A/V_bi, beside the depletion capacitance, a dc leakage, an ionic step below the window, and Rs in
series; complex Gaussian noise of a stated fraction of |Y|, as an LCR meter's error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labctl.analysis.tas import Spectrum, TASAnalysisError, analyze_tas, fit_spectrum, series_resistance_ohm

K_EV = 8.617333262e-5
Q = 1.602176634e-19
EPS0 = 8.8541878128e-12
AREA = 0.1
EPS_R = 35.0
V_BI = 0.85
W_CM = 3.26e-5
C_DEP = EPS_R * EPS0 * AREA * 1e-4 / (W_CM * 1e-2)
FREQS = np.geomspace(20.0, 2e6, 101)
TEMPS = [280.0, 290.0, 300.0, 310.0, 320.0, 330.0, 340.0, 350.0]


def omega0(et_eV: float, xi0: float, temperature_K: float) -> float:
    return 2 * xi0 * temperature_K**2 * math.exp(-et_eV / (K_EV * temperature_K))


def spectrum(traps: list[tuple[float, float, float]], temperature_K: float, noise: float, seed: int,
             rs_ohm: float = 20.0, ion_tau_s: float = 0.05) -> Spectrum:
    """Traps as (Et, ξ0, N_t); a 2.5 % ionic step at 1/τ; 33 µS of leakage; Rs in series."""
    omega = 2 * np.pi * FREQS
    y = 3.3e-5 + 1j * omega * C_DEP
    y += 1j * omega * 0.025 * C_DEP / (1 + 1j * omega * ion_tau_s)
    for et, xi0, n_t in traps:
        dc = Q * W_CM * n_t * AREA / V_BI
        y += 1j * omega * dc / (1 + 1j * omega / omega0(et, xi0, temperature_K))
    y = 1 / (rs_ohm + 1 / y)
    rng = np.random.default_rng(seed)
    y += noise * np.abs(y) * (rng.standard_normal(y.size) + 1j * rng.standard_normal(y.size))
    return Spectrum(temperature_K, FREQS, y.imag / omega, y.real)


BAND_II = (0.36, 5.8e4, 7.5e14)
BAND_III = (0.46, 4.7e5, 1e15)


def test_series_resistance_is_read_at_the_top_frequencies() -> None:
    s = spectrum([BAND_II], 300.0, 1e-4, 1)
    assert series_resistance_ohm(s.frequency_Hz, s.capacitance_F, s.conductance_S) == pytest.approx(20.0, rel=0.01)


def test_one_trap_gives_its_depth_prefactor_and_density() -> None:
    """Noise 1e-4 of |Y|, 8 temperatures 280–350 K: Et within 3 meV, ξ0 within a factor 1.5, N_t within 3 %."""
    result = analyze_tas([spectrum([BAND_II], t, 1e-4, k) for k, t in enumerate(TEMPS)], area_cm2=AREA,
                         eps_r=EPS_R, v_bi_V=V_BI)
    (trap,) = result.traps
    assert trap.et_eV == pytest.approx(0.36, abs=3e-3)
    assert 1 / 1.5 < trap.xi0_s_K2 / 5.8e4 < 1.5
    assert trap.n_t_cm3 == pytest.approx(7.5e14, rel=0.03)
    assert len(trap.temperatures_K) == 8
    assert set(result.as_dict()["traps"][0]) >= {"et_eV", "xi0", "et_err_eV", "n_t_cm3"}


def test_two_overlapping_bands_are_separated() -> None:
    """Band II and the deeper band III, a factor 4–8 apart in frequency (the simulated FAPbI3): both depths
    within 3 meV with noise 1e-4 of |Y|. (At 3e-4 the deep band, whose inflection sits at 60 Hz at 280 K where
    the leakage makes C ten times noisier, comes out up to 5 meV deep: docs/analysis-tid-tas-cv.md.)"""
    result = analyze_tas([spectrum([BAND_II, BAND_III], t, 1e-4, 10 + k) for k, t in enumerate(TEMPS)],
                         area_cm2=AREA, eps_r=EPS_R, v_bi_V=V_BI)
    assert [t.et_eV for t in result.traps] == pytest.approx([0.36, 0.46], abs=3e-3)
    assert [t.n_t_cm3 for t in result.traps] == pytest.approx([7.5e14, 1e15], rel=0.05)


def test_the_inflection_is_found_with_rs_removed() -> None:
    """Rs = 200 Ω puts the Rs·C roll-off at 84 kHz, a decade above a trap at 10 kHz: with Rs removed the
    inflection is exact to 0.1 % and the window ends at f_RC/3; left in, the roll-off hides the trap."""
    trap = (0.30, 5.7e3 * 7, 1e15)  # ω0 ≈ 6.6e4 rad/s at 300 K
    s = spectrum([trap], 300.0, 1e-5, 2, rs_ohm=200.0)
    w0 = omega0(*trap[:2], 300.0)
    fit = fit_spectrum(s)
    assert fit.rs_ohm == pytest.approx(200.0, rel=0.01)
    assert fit.window_Hz[1] == pytest.approx(1 / (2 * np.pi * 200.0 * C_DEP) / 3, rel=0.02)
    assert fit.inflections[0].omega0_rad_s == pytest.approx(w0, rel=1e-3)
    left_in = fit_spectrum(s, rs_ohm=0.0, f_max_Hz=fit.window_Hz[1])
    assert not any(abs(i.omega0_rad_s / w0 - 1) < 0.05 for i in left_in.inflections)


def test_the_ionic_step_below_the_window_is_not_a_trap() -> None:
    fit = fit_spectrum(spectrum([], 300.0, 1e-4, 3, ion_tau_s=0.05))
    assert fit.inflections == ()


def test_a_trap_leaving_the_window_is_followed_where_it_is_inside() -> None:
    """Band III' (Et 0.5 eV) drops below 20 Hz × 1.5 at the cold end: used only where its inflection is inside
    the window; still ≥ 3 temperatures, so it is a trap, with the right depth."""
    deep = (0.50, 5e5, 1e15)
    inside = [t for t in TEMPS if omega0(deep[0], deep[1], t) > 2 * np.pi * 30]
    assert 3 <= len(inside) < len(TEMPS)
    result = analyze_tas([spectrum([BAND_II, deep], t, 1e-4, 20 + k) for k, t in enumerate(TEMPS)],
                         area_cm2=AREA, eps_r=EPS_R, v_bi_V=V_BI)
    deep_trap = max(result.traps, key=lambda t: t.et_eV)
    assert deep_trap.et_eV == pytest.approx(0.50, abs=5e-3)
    assert set(deep_trap.temperatures_K) <= set(inside)


def test_trap_dos_integrates_to_the_trap_density() -> None:
    """Walter's N_t(E_ω) on the common energy axis: its integral over a band centred in the window is N_t
    (within 3 %), and the peak sits at Et + kT·ln(ξ0/ξ0) = Et when the trap's own ξ0 is used."""
    result = analyze_tas([spectrum([BAND_II], t, 1e-5, 30 + k) for k, t in enumerate(TEMPS)], area_cm2=AREA,
                         eps_r=EPS_R, v_bi_V=V_BI, xi0_s_K2=5.8e4)
    curve = next(c for c in result.tdos["curves"] if c["temperature_K"] == 300.0)
    energy, dos = np.array(curve["energy_eV"]), np.array(curve["n_t_cm3_eV"])
    order = np.argsort(energy)
    integral = np.trapezoid(dos[order], energy[order])
    # the window cuts the band's tails: the part inside is ∫ over the fitted window of the Debye response
    assert integral == pytest.approx(7.5e14, rel=0.05)
    assert energy[np.argmax(dos)] == pytest.approx(0.36, abs=0.01)
    assert curve["w_cm"] == pytest.approx(W_CM, rel=0.01)


def test_fewer_than_three_temperatures_make_no_trap() -> None:
    result = analyze_tas([spectrum([BAND_II], t, 1e-4, 40 + k) for k, t in enumerate(TEMPS[:2])], area_cm2=AREA,
                         eps_r=EPS_R, v_bi_V=V_BI)
    assert result.traps == () and len(result.unassigned) == 2


def test_bad_input_is_refused() -> None:
    with pytest.raises(TASAnalysisError, match="v_bi_V"):
        analyze_tas([], area_cm2=AREA, eps_r=EPS_R, v_bi_V=0.0)
    with pytest.raises(TASAnalysisError, match="differ in length"):
        fit_spectrum(Spectrum(300.0, FREQS, FREQS[:-1], FREQS))
