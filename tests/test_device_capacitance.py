"""Capacitance: Mott–Schottky recovers N_A and V_bi, TID recovers the halide Ea and N_ion, TAS recovers Et.
Each analysis is done here the way SCIENCE.md describes it, on data read from the cell like an LCR meter."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import curve_fit

from mock_instruments import capacitance, ions
from mock_instruments.presets import preset

Q = 1.602176634e-19
EPS0 = 8.8541878128e-12
K_B = 8.617333262e-5


@pytest.mark.parametrize("name", ["fapbi3", "wbg_ref"])
def test_mott_schottky_recovers_doping_and_built_in_voltage(name: str) -> None:
    cell = preset(name)
    temp, freq = 298.15, 2e4
    volts = np.linspace(-0.8, 0.3, 12)
    caps = []
    for v in volts:
        cell.advance(30.0, float(v), 0.0, temp)  # slow C–V sweep in the dark: ions settle at each bias
        caps.append(cell.capacitance_F(float(v), freq, temp))
    area_m2 = cell.area_cm2 * 1e-4
    slope, intercept = np.polyfit(volts, 1 / np.array(caps) ** 2, 1)
    n_a = -2 / (Q * cell.eps_r * EPS0 * area_m2**2 * slope) * 1e-6
    v_bi = -intercept / slope + K_B * temp
    assert n_a == pytest.approx(cell.n_a_cm3, rel=0.05)
    assert v_bi == pytest.approx(cell.v_bi_V, rel=0.05)


def test_fully_depleted_absorber_gives_geometric_capacitance() -> None:
    cell = preset("fapbi3", n_a_cm3=1e15)
    geo = cell.eps_r * EPS0 * cell.area_cm2 * 1e-4 / (cell.thickness_nm * 1e-9)
    assert cell.capacitance_F(-1.0, 2e4, 298.15) == pytest.approx(geo, rel=0.01)


def tid_transient(cell, temp: float, suns: float = 0.0, freq: float = 1e4):  # type: ignore[no-untyped-def]
    """Seed protocol: settle at 0 V, +1 V for 5 s, back to 0 V, C(t) from 0.1 ms to 20 s (log-spaced)."""
    cell.advance(600.0, 0.0, suns, temp)
    cell.advance(5.0, 1.0, suns, temp)
    t = np.geomspace(1e-4, 20.0, 100)
    c, prev = [], 0.0
    for ti in t:
        cell.advance(ti - prev, 0.0, suns, temp)
        prev = ti
        c.append(cell.capacitance_F(0.0, freq, temp, suns))
    return t, np.array(c)


def _single_exp(t, c_inf, dc, log_tau):  # type: ignore[no-untyped-def]
    return c_inf + dc * np.exp(-t / np.exp(log_tau))


@pytest.mark.parametrize(("name", "ea_paper"), [("fapbi3", 0.131), ("fapbibr_2p5", 0.074)])
def test_tid_recovers_halide_ea_and_ion_density(name: str, ea_paper: float) -> None:
    cell = preset(name)
    temps = np.arange(300.0, 199.0, -20.0)  # the seed's 300 K -> 200 K
    taus, dens = [], []
    for temp in temps:
        t, c = tid_transient(cell, float(temp))
        p, _ = curve_fit(_single_exp, t, c, p0=[c[-1], c[0] - c[-1], np.log(0.01)])
        c_inf, dc, tau = p[0], p[1], float(np.exp(p[2]))
        assert dc < 0  # dark halide migration in p-i-n: negative ΔC
        assert tau == pytest.approx(cell.ion_tau_s("anion", float(temp)), rel=0.02)  # the hysteresis τ
        taus.append(tau)
        dens.append(2 * cell.n_a_cm3 * abs(dc) / c_inf)  # N_ion ≈ 2·N_A·|ΔC|/C∞
    d = [ions.diffusion_from_tau_cm2_s(tau, tt, cell.eps_r, cell.n_a_cm3)
         for tau, tt in zip(taus, temps, strict=True)]
    ea = -np.polyfit(1 / temps, np.log(d), 1)[0] * K_B
    assert ea == pytest.approx(ea_paper, rel=0.05)
    ea_t_tau = -np.polyfit(1 / temps, np.log(temps / np.array(taus)), 1)[0] * K_B
    assert ea_t_tau == pytest.approx(ea_paper, rel=0.05)
    np.testing.assert_allclose(dens, cell.n_ion_anion_cm3, rtol=0.10)


def _double_exp(t, c_inf, dc1, log_tau1, dc2, log_tau2):  # type: ignore[no-untyped-def]
    return c_inf + dc1 * np.exp(-t / np.exp(log_tau1)) + dc2 * np.exp(-t / np.exp(log_tau2))


def test_tid_under_light_shows_cations_with_opposite_sign() -> None:
    cell = preset("fapbi3")
    temp, suns = 280.0, 1.0
    t, c = tid_transient(cell, temp, suns)
    tau_a, tau_c = cell.ion_tau_s("anion", temp), cell.ion_tau_s("cation", temp)
    p, _ = curve_fit(_double_exp, t, c, p0=[c[-1], -1e-10, np.log(tau_a), 1e-10, np.log(tau_c)])
    comps = sorted([(float(np.exp(p[2])), p[1]), (float(np.exp(p[4])), p[3])])
    (t_fast, dc_fast), (t_slow, dc_slow) = comps
    assert t_fast == pytest.approx(tau_a, rel=0.05) and dc_fast < 0  # halide: negative
    assert t_slow == pytest.approx(tau_c, rel=0.05) and dc_slow > 0  # light-activated FA⁺: positive
    # no cation signal at x = 0.025: a single negative component fits
    t, c = tid_transient(preset("fapbibr_2p5"), temp, suns)
    p1, _ = curve_fit(_single_exp, t, c, p0=[c[-1], c[0] - c[-1], np.log(0.003)])
    assert p1[1] < 0
    assert np.max(np.abs(_single_exp(t, *p1) - c)) < 1e-4 * c[-1]


def test_tas_arrhenius_recovers_trap_depth_and_conductance_peaks_at_omega0() -> None:
    cell = preset("fapbi3")
    trap = cell.traps[0]
    temps = np.arange(260.0, 311.0, 10.0)
    freqs = np.geomspace(10.0, 1e6, 801)
    omega = 2 * np.pi * freqs
    w0s = []
    for temp in temps:
        c = np.array([cell.capacitance_F(0.0, f, float(temp)) for f in freqs])
        signal = -omega * np.gradient(c, omega)  # peak of −ω·dC/dω is the inflection frequency
        # the trap band: the local maximum between the ionic (low-f) and Rs·C (high-f) features
        window = (omega > 1e3) & (omega < 3e5)
        w0s.append(omega[np.argmax(np.where(window, signal, -np.inf))])
    w0s_arr = np.array(w0s)
    slope, intercept = np.polyfit(1 / temps, np.log(w0s_arr / temps**2), 1)
    assert -slope * K_B == pytest.approx(trap.depth_eV, rel=0.05)
    assert np.exp(intercept) / 2 == pytest.approx(trap.xi0_s_K2, rel=0.5)
    # G/ω peaks at the same ω0 (series resistance de-embedded and dc leakage subtracted, as usual)
    temp = 280.0
    y_meas = np.array([complex(cell.conductance_S(0.0, f, temp),
                               2 * np.pi * f * cell.capacitance_F(0.0, f, temp)) for f in freqs])
    rs_ohm = cell.rs_ohm_cm2 / cell.area_cm2
    g = (1 / (1 / y_meas - rs_ohm)).real
    g_over_w = (g - g[0]) / omega
    window = (omega > 1e3) & (omega < 3e5)
    w_peak = omega[np.argmax(np.where(window, g_over_w, -np.inf))]
    assert w_peak == pytest.approx(capacitance.trap_omega0_rad_s(trap, temp), rel=0.1)
