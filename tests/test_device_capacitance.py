"""The simulated cell's admittance: the sign of TID transients from the electrostatics, in the dark and under
light; the presets' time constants, plateau, trap windows and validity for the seed protocol; chemical
capacitance and conductance at the junction voltage; trap bands that follow the ions. Read from the cell
model directly (the instrument path is tests/test_ion_migration.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mock_instruments import capacitance, cell_admittance, ions
from mock_instruments.presets import PRESETS, preset
from procedures.ion_migration import TIDProtocol, tid_protocol_warnings

Q = 1.602176634e-19
EPS0 = 8.8541878128e-12
K_B = 8.617333262e-5
FAPB = ["fapbi3", "fapbi3_fai5", "fapbibr_2p5", "fapbibr_15", "fapbibr_25"]
SINGLE = [p for p in PRESETS if p != "tandem"]


def pulse_then(cell, temperature_K: float, suns: float, times_s: list[float]) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    """Settle at 0 V, +1 V for 5 s, back to 0 V: (C∞, C at each time after the step), 10 kHz."""
    cell.advance(600.0, 0.0, suns, temperature_K)
    c_inf = cell.capacitance_F(0.0, 1e4, temperature_K, suns)
    cell.advance(5.0, 1.0, suns, temperature_K)
    out, t = [], 0.0
    for when in times_s:
        cell.advance(when - t, 0.0, suns, temperature_K)
        t = when
        out.append(cell.capacitance_F(0.0, 1e4, temperature_K, suns))
    return c_inf, out


def test_the_sign_follows_the_ion_charge_against_the_space_charge() -> None:
    assert ions.space_charge_share("anion", "p") == 1.0  # negative ions in negative (acceptor) space charge
    assert ions.space_charge_share("cation", "p") == -1.0
    assert ions.space_charge_share("anion", "n") == -1.0


@pytest.mark.parametrize(("doping", "decays"), [("p", True), ("n", False)])
def test_dark_halide_transient_decays_in_a_p_type_absorber(doping: str, decays: bool) -> None:
    """Right after the pulse C²/C∞² − 1 = s·N/N_A·m(0⁺) with m(0⁺) = m_eq(1 V) e^(−t/τ) (Heiser–Mesli in the
    depletion approximation); p-type: C decays (ΔC = C(∞) − C(0⁺) < 0, the seed's dark anion), n-type: it
    rises."""
    cell = preset("fapbi3", doping_type=doping)
    temp = 250.0
    tau = cell.ion_tau_s("anion", temp)
    c_inf, (c1,) = pulse_then(cell, temp, 0.0, [0.01])
    m_eq_pulse = capacitance.fill_fraction_eq(1.0, temp, cell.v_bi_V, cell.n_a_cm3, cell.eps_r, cell.thickness_nm)
    s = 1.0 if doping == "p" else -1.0
    expected = s * cell.n_ion_anion_cm3 / cell.n_a_cm3 * m_eq_pulse * math.exp(-0.01 / tau)
    assert (c1 / c_inf) ** 2 - 1 == pytest.approx(expected, rel=2e-3)
    assert (c_inf - c1 < 0) is decays


def test_under_light_the_cations_rise_and_the_anions_decay() -> None:
    """fapbi3 at 1 sun, 250 K: the decaying anion part (τ 0.11 s) and the rising FA⁺ part (τ 0.84 s) add in
    C²: C is above C∞ at first, dips below it, and comes back up (the seed's rising edge)."""
    cell = preset("fapbi3")
    temp = 250.0
    tau_a, tau_c = cell.ion_tau_s("anion", temp), cell.ion_tau_s("cation", temp)
    assert tau_c / tau_a > 5
    times = [0.005, 0.5, 2.0, 20.0]
    c_inf, c = pulse_then(cell, temp, 1.0, times)
    assert c[0] > c_inf > c[1] and c[1] < c[2] < c_inf
    assert c[3] == pytest.approx(c_inf, rel=1e-5)
    act = 1.0 / (1.0 + cell.cation_activation_suns)
    m_eq = capacitance.fill_fraction_eq(1.0, temp, cell.v_bi_V, cell.n_a_cm3, cell.eps_r, cell.thickness_nm)
    fill_c = -math.expm1(-5.0 / tau_c)
    for t, ci in zip(times[:3], c[:3], strict=True):
        expected = (cell.n_ion_anion_cm3 * m_eq * math.exp(-t / tau_a)
                    - cell.n_ion_cation_cm3 * act * m_eq * fill_c * math.exp(-t / tau_c)) / cell.n_a_cm3
        # light also enters through V_j = V + J·Rs: the displaced ions raise the collected photocurrent for a
        # while (η up to 1 + r), which lifts V_j by ≤ 3 mV and C² by ≤ 4e-3 with the ions' own τ
        assert (ci / c_inf) ** 2 - 1 == pytest.approx(expected, abs=4e-3)


@pytest.mark.parametrize("name", FAPB)
def test_time_constants_lie_in_the_window_the_meter_resolves(name: str) -> None:
    """Every FAPbX species has τ in 20 ms – 2 s over 300 → 200 K (E4980A: 5.6 ms a point, 10 s window)."""
    cell = preset(name)
    for species, n in (("anion", cell.n_ion_anion_cm3), ("cation", cell.n_ion_cation_cm3)):
        if n:
            taus = [cell.ion_tau_s(species, t) for t in (300.0, 250.0, 200.0)]
            assert 0.02 <= min(taus) and max(taus) <= 2.0, (species, taus)


@pytest.mark.parametrize("name", SINGLE)
def test_presets_are_valid_for_the_tid_formula(name: str) -> None:
    """N_ion ≤ 0.12·N_A for every species (the docs' bound)."""
    cell = preset(name)
    assert cell.n_ion_anion_cm3 <= 0.12 * cell.n_a_cm3 and cell.n_ion_cation_cm3 <= 0.12 * cell.n_a_cm3


@pytest.mark.parametrize("name", FAPB)
def test_the_one_volt_pulse_refills_the_depletion_region(name: str) -> None:
    """V_bi ≤ 0.9 V: +1 V fills ≥ 98 % of the zero-bias region (m_eq(1 V)), and the protocol check is quiet."""
    cell = preset(name)
    for temp in (300.0, 200.0):
        m = capacitance.fill_fraction_eq(1.0, temp, cell.v_bi_V, cell.n_a_cm3, cell.eps_r, cell.thickness_nm)
        assert m >= 0.98
    assert tid_protocol_warnings(TIDProtocol(), v_bi_V=cell.v_bi_V) == []


@pytest.mark.parametrize("name", ["wbg_ref", "wbg_5avai"])
def test_wide_gap_cells_need_a_higher_pulse_and_the_check_says_so(name: str) -> None:
    cell = preset(name)
    assert cell.v_bi_V > 1.0
    (warning,) = tid_protocol_warnings(TIDProtocol(), v_bi_V=cell.v_bi_V)
    assert "pulse_V = 1 V" in warning and "V_bi" in warning
    assert tid_protocol_warnings(TIDProtocol(pulse_V=cell.v_bi_V + 0.15), v_bi_V=cell.v_bi_V) == []


@pytest.mark.parametrize("name", FAPB)
def test_capacitance_is_flat_at_ten_kilohertz_over_the_sweep(name: str) -> None:
    """The seed's plateau (Fig. S3): at every temperature of the 300 → 200 K sweep C changes by < 1 % between
    5 and 20 kHz (traps ≤ 1.5 kHz at 300 K, Rs·C roll-off ≥ 300 kHz at 200 K), and C(10 kHz) is the junction's
    depletion (+ chemical) capacitance within 0.5 %: what TID and Mott–Schottky need."""
    cell = preset(name)
    for temp in np.arange(200.0, 301.0, 10.0):
        c5, c10, c20 = (cell.capacitance_F(0.0, f, float(temp)) for f in (5e3, 1e4, 2e4))
        junction = cell.junction_capacitance_F_cm2(0.0, float(temp)) * cell.area_cm2
        assert abs(c5 / c20 - 1) < 1e-2 and c10 == pytest.approx(junction, rel=5e-3), (temp, c5 / c20)


@pytest.mark.parametrize("name", SINGLE)
def test_trap_inflections_stay_inside_the_meter_range_over_the_tas_temperatures(name: str) -> None:
    """Over 280–350 K each trap's ω0/2π lies within 50 Hz – 25 kHz (inside 20 Hz – 2 MHz by ≥ ×2.5) and a
    decade below the Rs·C roll-off."""
    cell = preset(name)
    for temp in (280.0, 350.0):
        rs = cell._diode(0.0, temp).rs * 1e3 / cell.area_cm2
        c = cell.capacitance_F(0.0, 1e5, temp)
        f_rc = 1 / (2 * math.pi * rs * c)
        for trap, _ in cell.trap_levels():
            f0 = capacitance.trap_omega0_rad_s(trap, temp) / (2 * math.pi)
            assert 50.0 <= f0 <= 25e3 and f0 < f_rc / 10, (trap, temp, f0, f_rc)


def test_chemical_capacitances_of_electrons_and_holes_are_in_series() -> None:
    """q²d/kT·np/(n + p): with n = p it is half of either carrier's (q²dn/kT)."""
    n = 1e14
    one = Q * 600e-7 * n / (K_B * 300.0)
    assert capacitance.chemical_capacitance_F_cm2(n, n, 600.0, 300.0) == pytest.approx(one / 2, rel=1e-12)
    assert capacitance.chemical_capacitance_F_cm2(n, 1e18, 600.0, 300.0) == pytest.approx(one, rel=1e-3)


def test_light_enters_the_admittance_through_the_junction_voltage() -> None:
    """At 0 V under 1 sun the junction sits at V_j = Jsc·Rs ≈ 50 mV: the device part of the admittance is the
    dark cell's at V_j, with G_dc the junction's slope there."""
    cell = preset("fapbi3", n_ion_cation_cm3=0.0)  # cations would add their own light-activated step
    temp = 300.0
    v_j = cell_admittance.junction_voltage_V(cell, 0.0, 1.0, temp)
    j = cell.current_density_mA_cm2(0.0, 1.0, temp)
    assert v_j == pytest.approx(j * cell._diode(1.0, temp).rs, rel=1e-9) and 0.03 < v_j < 0.07
    lit = cell.capacitance_F(0.0, 1e4, temp, 1.0)
    dark_at_vj = cell.capacitance_F(v_j, 1e4, temp, 0.0)
    assert lit == pytest.approx(dark_at_vj, rel=2e-3)  # (the dark cell at V_j carries no current: Rs drops nothing)
    assert lit > 1.02 * cell.capacitance_F(0.0, 1e4, temp, 0.0)


def test_the_dc_conductance_is_the_junctions_slope_at_v_plus_j_rs() -> None:
    """Under light at 0.9 V (J ≈ 20 mA/cm², V_j = V + J·Rs ≈ 0.94 V) the recombination slope at V_j is ≈ 3×
    the one at V: at 25 Hz, where ωC ≪ G, the terminal conductance is G_dc in series with Rs."""
    cell = preset("fapbi3", n_ion_cation_cm3=0.0)
    temp, v = 300.0, 0.9
    v_j = cell_admittance.junction_voltage_V(cell, v, 1.0, temp)
    _, j0, rs, rsh, a = cell._diode(1.0, temp)
    assert v_j - v > 0.03
    g_dc = ((j0 / a) * math.exp(v_j / a) + 1 / rsh) * 1e-3 * cell.area_cm2
    rs_ohm = rs * 1e3 / cell.area_cm2
    assert cell.conductance_S(v, 25.0, temp, 1.0) == pytest.approx(g_dc / (1 + rs_ohm * g_dc), rel=0.02)
    g_at_v = ((j0 / a) * math.exp(v / a) + 1 / rsh) * 1e-3 * cell.area_cm2
    assert g_dc > 2 * g_at_v


def test_trap_band_ii_follows_the_mobile_halides_and_band_iii_the_fa_set() -> None:
    base = preset("fapbi3")
    (_, band_ii), (_, band_iii) = base.trap_levels()
    doubled = dict((t.follows, d) for t, d in preset("fapbi3", n_ion_anion_cm3=3e15).trap_levels())
    assert doubled["anion"] == pytest.approx(2 * band_ii) and doubled["cation"] == pytest.approx(band_iii)
    more_fa = dict((t.follows, d) for t, d in preset("fapbi3", n_ion_cation_cm3=2e15).trap_levels())
    assert more_fa["cation"] == pytest.approx(2 * band_iii)
    # the x = 0.025 cell has band III but no FA⁺ signal (pathways blocked): its band III does not follow them
    assert [t.follows for t, _ in preset("fapbibr_2p5").trap_levels()] == ["anion", ""]


def test_presets_follow_the_seeds_defect_correlations() -> None:
    """Xiang et al.: more band II (halide interstitials) goes with a lower dark halide Ea and more mobile
    halides (x = 0 → 0.025 → 0.15 → 0.25, and FAPbI3 + 5 % FAI at 0.063 eV); more band III with a lower FA⁺
    Ea under light."""
    cells = [preset(n) for n in FAPB]
    band_ii = [dict((t.follows, d) for t, d in c.trap_levels())["anion"] for c in cells]
    order = np.argsort(band_ii)
    assert np.all(np.diff([cells[i].ea_anion_eV for i in order]) < 0)
    assert np.all(np.diff([cells[i].n_ion_anion_cm3 for i in order]) > 0)
    assert preset("fapbi3_fai5").ea_anion_eV == pytest.approx(0.063)
    with_fa = [c for c in cells if c.n_ion_cation_cm3 > 0 and c.name != "fapbi3_fai5"]
    band_iii = [dict((t.follows, d) for t, d in c.trap_levels())["cation"] for c in with_fa]
    order = np.argsort(band_iii)
    assert np.all(np.diff([with_fa[i].ea_cation_eV for i in order]) < 0)


def test_trap_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="follows"):
        preset("fapbi3", traps=[{"depth_eV": 0.3, "density_cm3": 1e15, "xi0_s_K2": 1e4, "follows": "proton"}])
    with pytest.raises(ValueError, match="per_ion"):
        preset("fapbi3", traps=[(0.3, 1e15, 1e4, "", 0.5)])
    with pytest.raises(ValueError, match="doping_type"):
        preset("fapbi3", doping_type="x")
