"""Aging under light, heat and bias: the stress law (open circuit, MPP, reverse bias, injection in the dark),
burn-in shape, dark recovery, Arrhenius acceleration, and halide segregation driven by carriers above ~20 % Br.
Seed retentions under MPP tracking are in test_device_seed_figures.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_device_seed_figures import mpp, tracked_retention

from mock_instruments import degradation as deg
from mock_instruments.presets import preset

K_B = 8.617333262e-5
T = 298.15
NO_AGING = dict(burnin_fraction=0.0, longterm_rate_per_h=0.0, dark_stress_fraction=0.0)


def dose_rate(cell, hours: float, voltage_V: float | None, suns: float = 1.0,  # type: ignore[no-untyped-def]
              temperature_K: float = T) -> float:
    """Reference hours of stress per hour over a hold (after 10 min for the ions to settle)."""
    cell.advance(600.0, voltage_V, suns, temperature_K)
    before = cell._deg.dose_h
    cell.advance(hours * 3600.0, voltage_V, suns, temperature_K)
    return (cell._deg.dose_h - before) / hours


def test_burn_in_then_slow_decay() -> None:
    cell = preset("wbg_5avai")
    p0, retention = mpp(cell)[0], {0.0: 1.0}
    for t in np.arange(10.0, 601.0, 10.0):
        cell.advance(36000.0, mpp(cell)[1], 1.0, T)
        retention[float(t)] = mpp(cell)[0] / p0
    early_rate = (1.0 - retention[20.0]) / 20.0
    late_rate = (retention[400.0] - retention[600.0]) / 200.0
    assert early_rate > 4 * late_rate > 0


def test_reversible_part_recovers_in_the_dark() -> None:
    cell = preset("wbg_ref")
    p0 = mpp(cell)[0]
    cell.advance(100 * 3600.0, mpp(cell)[1], 1.0, T)
    d_lit = cell.damage()
    p_lit = mpp(cell)[0] / p0
    cell.advance(100 * 3600.0, 0.0, 0.0, T)  # 100 h dark at short circuit ≫ recovery time
    p_dark = mpp(cell)[0] / p0
    assert p_dark > p_lit + 0.01
    # closed form: the reversible pool has decayed; what remains is the irreversible part (+ dark stress)
    irreversible = (1 - cell.reversible_fraction) * deg.damage_shape(cell, cell._deg.dose_h)
    assert cell.damage() == pytest.approx(irreversible, abs=2e-3)
    assert cell.damage() < d_lit


def test_heat_accelerates_aging_with_arrhenius_factor() -> None:
    factor = math.exp(-0.5 / K_B * (1 / 338.15 - 1 / T))
    cold, hot = preset("wbg_5avai"), preset("wbg_5avai")  # ISOS-D-1 vs D-2: dark storage, open leads
    for cell, temp in ((cold, T), (hot, 338.15)):
        cell.advance(500 * 3600.0, 0.0, 0.0, temp)
    assert hot._deg.dose_h / cold._deg.dose_h == pytest.approx(factor, rel=1e-9)
    # at open circuit under light the carrier density is set by the light at any temperature: the same factor
    # (up to the 3 % the hotter gap costs in photocurrent)
    ratio = dose_rate(preset("wbg_5avai"), 5.0, None, 1.0, 338.15) / dose_rate(preset("wbg_5avai"), 5.0, None)
    assert ratio == pytest.approx(factor, rel=0.03)


def test_open_circuit_and_light_stress_more_than_dark() -> None:
    oc, mp, dark = preset("wbg_ref"), preset("wbg_ref"), preset("wbg_ref")
    oc.advance(3600.0 * 50, None, 1.0, T)
    mp.advance(3600.0 * 50, mp._vmpp_ref, 1.0, T)
    dark.advance(3600.0 * 50, 0.0, 0.0, T)
    assert oc.damage() > mp.damage() > 5 * dark.damage() > 0


@pytest.mark.parametrize("aged_h", [0.0, 250.0])
def test_open_circuit_stress_follows_the_photocurrent_not_the_voltage(aged_h: float) -> None:
    """At open circuit every carrier the light makes recombines: ρ = (Jph − Voc/Rsh)/Jph,ref whatever the Voc.
    A cell that has lost half its power (Voc ~0.15 V lower) stresses as its photocurrent says, with c_L, c_ρ
    from the set ratio (oc_stress_ratio) read off the fresh curve; nothing depends on the voltage itself."""
    fresh = preset("wbg_ref")
    rsh, rs = fresh.rsh_ohm_cm2 * 1e-3, fresh.rs_ohm_cm2 * 1e-3
    jph_ref = fresh.jsc_mA_cm2 * (1 + fresh.rs_ohm_cm2 / fresh.rsh_ohm_cm2)
    p, v = mpp(fresh)
    rho_mpp = (jph_ref - p / v - (v + p / v * rs) / rsh) / jph_ref
    rho_oc_ref = (jph_ref - fresh.voc_V / rsh) / jph_ref
    c_rho = (fresh.oc_stress_ratio - 1.0) / (rho_oc_ref - rho_mpp)
    c_light = 1.0 - c_rho * rho_mpp
    cell = preset("wbg_ref")
    if aged_h:
        cell.advance(aged_h * 3600.0, cell._vmpp_ref - 0.1, 1.0, T)
        assert cell.damage() > 0.3
    rate = dose_rate(cell, 0.05, None)
    voc = cell.steady_voc_V(1.0, T)
    rs_now = rs * (1 + cell.damage_rs_growth * cell.damage() / (1 - cell.damage()))
    jph = float(cell.steady_state_jv([0.0], 1.0, T)[0]) * (1 + rs_now / rsh)
    rho = (jph - voc / rsh) / jph_ref
    assert rate == pytest.approx(c_light + c_rho * rho + cell.dark_stress_fraction, rel=0.01)


def test_voltage_near_the_mpp_changes_the_stress_only_a_little() -> None:
    """A tracker dithering ±20 mV around the MPP, or sitting a little off it, ages the cell alike."""
    v = mpp(preset("wbg_ref"))[1]
    centre = dose_rate(preset("wbg_ref"), 1.0, v)
    for dv in (-0.02, 0.02):
        assert dose_rate(preset("wbg_ref"), 1.0, v + dv) == pytest.approx(centre, rel=0.05)


def test_holding_the_fresh_mpp_ages_through_the_rising_carrier_density_only() -> None:
    """Held at its fresh Vmpp, wbg_5avai's Voc falls towards the held voltage and its carrier density rises:
    it ages a little faster than when tracked, but only by that; over 600 h the two differ by ~1 %."""
    tracked = tracked_retention("wbg_5avai", 600.0, step_h=6.0)
    held = preset("wbg_5avai")
    p0, v0 = mpp(held)
    for _ in range(100):
        held.advance(6 * 3600.0, v0, 1.0, T)
    assert mpp(held)[0] / p0 == pytest.approx(tracked, abs=0.02)
    assert mpp(held)[0] / p0 < tracked


def test_reverse_bias_damages() -> None:
    """Reverse bias drives ions and holes into the contacts: stress k_rev·(exp(−V_j/V_rev) − 1) on top of the
    light and dark terms. A cell forced to −0.8 V (a shaded cell in a string) ages several times faster than
    at its MPP, with or without light, and the law is the closed form."""
    at_mpp = dose_rate(preset("wbg_ref"), 5.0, mpp(preset("wbg_ref"))[1])
    lit = preset("wbg_ref")
    reverse_lit = dose_rate(lit, 5.0, -0.8)
    reverse_dark = dose_rate(preset("wbg_ref"), 5.0, -0.8, suns=0.0)
    assert reverse_lit > 3 * at_mpp and reverse_dark > 3 * at_mpp
    assert reverse_dark > 100 * dose_rate(preset("wbg_ref"), 5.0, 0.0, suns=0.0)
    # closed form, dark: s = s_dark + k_rev·(exp(0.8 V/V_rev) − 1) (V_j = V − J·Rs ≈ V: leakage only)
    cell = preset("wbg_ref")
    j_leak = -cell.steady_state_jv([-0.8], 0.0, T)[0]
    vj = -0.8 - j_leak * cell.rs_ohm_cm2 * 1e-3
    expected = cell.dark_stress_fraction + cell.reverse_stress_factor * math.expm1(-vj / cell.reverse_stress_scale_V)
    assert reverse_dark == pytest.approx(expected, rel=1e-3)


def test_a_current_that_drives_the_cell_into_reverse_bias_damages_it() -> None:
    """A constant current above the photocurrent (a shaded cell in a string) pushes the cell below 0 V; it
    ages faster than at its MPP, and faster still as its photocurrent falls and the voltage goes deeper."""
    cell = preset("wbg_ref")
    cell.advance(600.0, None, 1.0, T)
    j = cell.current_density_mA_cm2(-0.8, 1.0, T)  # the current that holds −0.8 V now
    at_mpp = dose_rate(preset("wbg_ref"), 1.0, mpp(preset("wbg_ref"))[1])
    before = cell._deg.dose_h
    cell.advance_at_current(3600.0, j, 1.0, T)
    assert (cell._deg.dose_h - before) > 3 * at_mpp
    assert cell.voltage_at_current_density(j, 1.0, T) < -0.8


def test_forward_injection_in_the_dark_damages_like_open_circuit_carriers() -> None:
    """ISOS-V: a dark cell injected with its 1-sun photocurrent holds about the carriers of 1-sun open circuit
    and takes the carrier part of the open-circuit stress, c_ρ·ρ, without the light part. c_ρ follows from
    the set ratio: c_ρ = (oc_stress_ratio − 1)/(ρ_oc − ρ_mpp), both ρ read off the fresh 1-sun curve."""
    cell = preset("wbg_ref")
    jph = cell.jsc_mA_cm2 * (1 + cell.rs_ohm_cm2 / cell.rsh_ohm_cm2)
    rsh, rs = cell.rsh_ohm_cm2 * 1e-3, cell.rs_ohm_cm2 * 1e-3
    p, v = mpp(cell)
    rho_mpp = (jph - p / v - (v + p / v * rs) / rsh) / jph
    rho_oc = (jph - cell.voc_V / rsh) / jph
    c_rho = (cell.oc_stress_ratio - 1.0) / (rho_oc - rho_mpp)
    j_inj = -cell.jsc_mA_cm2  # photocurrent sign: negative = injected
    cell.advance_at_current(600.0, j_inj, 0.0, T)
    before = cell._deg.dose_h
    cell.advance_at_current(5 * 3600.0, j_inj, 0.0, T)
    rate = (cell._deg.dose_h - before) / 5.0
    voltage = cell.voltage_at_current_density(j_inj, 0.0, T)
    rho = (-j_inj - (voltage + j_inj * rs) / rsh) / jph
    assert rate > 20 * cell.dark_stress_fraction
    assert rate == pytest.approx(cell.dark_stress_fraction + c_rho * rho, rel=0.01)


def _soak(name: str, hours: float = 12.0, step_h: float = 0.25, voltage_V: float | None = None, **overrides):  # type: ignore[no-untyped-def]
    cell = preset(name, **overrides)
    eg = [cell.bandgap_eff_eV()]
    for _ in range(round(hours / step_h)):
        cell.advance(step_h * 3600.0, voltage_V, 1.0, T)
        eg.append(cell.bandgap_eff_eV())
    return cell, np.array(eg)


def test_halide_segregation_above_20_percent_bromide() -> None:
    voc0 = preset("fapbibr_25").steady_voc_V(1.0, T)
    cell, eg = _soak("fapbibr_25")
    drop = eg[0] - eg  # every 15 min
    assert drop[-1] > 0.9 * cell.seg_dEg_eV  # segregated after the 12 h light soak
    first_hour = drop[4]
    third_hour = drop[12] - drop[8]
    assert first_hour < 0.1 * cell.seg_dEg_eV  # slow for ~1 h ...
    assert third_hour > 5 * first_hour  # ... then fast (nucleation and growth)
    assert voc0 - cell.steady_voc_V(1.0, T) > 0.5 * cell.seg_voc_coupling * cell.seg_dEg_eV
    # the dark halide Ea drops markedly once segregated
    temps = np.array([220.0, 250.0, 280.0, 300.0])
    d = [cell.ion_diffusion_cm2_s("anion", t) for t in temps]
    ea = -np.polyfit(1 / temps, np.log(d), 1)[0] * K_B
    assert ea == pytest.approx(cell.ea_anion_eV - cell.seg_dea_anion_eV, rel=0.02)


def test_no_segregation_at_15_percent_bromide() -> None:
    cell, eg = _soak("fapbibr_15")
    assert eg[0] - eg[-1] < 1e-4
    assert cell.segregated_fraction() < 1e-3


def test_segregation_remixes_in_the_dark() -> None:
    cell = _soak("fapbibr_25")[0]
    cell.advance(48 * 3600.0, 0.0, 0.0, T)
    assert cell.segregated_fraction() < 0.05


def test_segregation_is_driven_by_carriers_open_circuit_faster_than_mpp() -> None:
    """The drive scales as the carrier density, (ρ/ρ_oc)^(n/2) with ρ the recombining share of the photo-
    current: at the MPP most carriers are extracted, so segregation is ~10× slower than at open circuit. The
    recombining share is read here from the steady J–V: ρ = (Jph − J_mpp − V_j/Rsh)/Jph."""
    cell = preset("fapbibr_25", **NO_AGING)
    p, v = mpp(cell)
    jph = cell.jsc_mA_cm2 * (1 + cell.rs_ohm_cm2 / cell.rsh_ohm_cm2)  # Jph from Jsc at 0 V
    j = p / v
    vj = v + j * cell.rs_ohm_cm2 * 1e-3
    rho_mpp = (jph - j - vj / (cell.rsh_ohm_cm2 * 1e-3)) / jph
    rho_oc = (jph - cell.voc_V / (cell.rsh_ohm_cm2 * 1e-3)) / jph
    expected = (rho_oc / rho_mpp) ** (cell.ideality / 2)
    at_oc, at_mpp = preset("fapbibr_25", **NO_AGING), preset("fapbibr_25", **NO_AGING)
    at_oc.advance(1800.0, None, 1.0, T)
    at_mpp.advance(1800.0, v, 1.0, T)
    assert at_oc._deg.seg_theta_h / at_mpp._deg.seg_theta_h == pytest.approx(expected, rel=0.05)
    assert expected > 5
    # and a whole light soak at the MPP leaves the 25 % Br cell almost unsegregated
    assert _soak("fapbibr_25", voltage_V=v)[0].segregated_fraction() < 0.05


def test_segregation_shows_in_voc_and_jsc() -> None:
    """With aging switched off, a fully segregated 25 % Br cell has lost seg_voc_coupling·ΔEg of Voc (J0 ×
    exp(ΔVoc/a)) and gained the photons its I-rich share absorbs below the old edge."""
    fresh = preset("fapbibr_25", **NO_AGING)
    cell = _soak("fapbibr_25", **NO_AGING)[0]
    f = cell.segregated_fraction()
    assert f > 0.99
    shift = f * cell.seg_dEg_eV
    assert cell.bandgap_eff_eV() == pytest.approx(fresh.bandgap_eV - shift, abs=1e-9)
    assert fresh.steady_voc_V(1.0, T) - cell.steady_voc_V(1.0, T) == pytest.approx(
        cell.seg_voc_coupling * shift, rel=0.01)
    from test_device_steady_state import _j_sq_pvlib

    edge = cell.bandgap_eV - shift * cell.seg_absorption_share
    gain = _j_sq_pvlib(edge) / _j_sq_pvlib(cell.bandgap_eV)
    jsc_ratio = cell.steady_state_jv([0.0], 1.0, T)[0] / fresh.steady_state_jv([0.0], 1.0, T)[0]
    assert jsc_ratio == pytest.approx(gain, rel=2e-3)
    assert jsc_ratio > 1.0
