"""Steady-state J–V of the simulated cells: temperature (Voc, Jsc, Rs) and intensity trends, the AM1.5G
photocurrent table, the single-diode solution against pvlib, the tandem, parameter validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pvlib import pvsystem
from pvlib.spectrum import get_reference_spectra

from mock_instruments import spectrum
from mock_instruments.device import PerovskiteCell, TandemCell
from mock_instruments.presets import PRESETS, preset

K_B = 8.617333262e-5
H, C, Q = 6.62607015e-34, 299792458.0, 1.602176634e-19
SINGLE = [p for p in PRESETS if p != "tandem"]


@pytest.mark.parametrize("name", PRESETS)
def test_sign_convention_and_monotonic(name: str) -> None:
    cell = preset(name)
    v = np.linspace(-0.2, cell.steady_voc_V(1.0, 298.15) + 0.1, 301)
    j = cell.steady_state_jv(v)
    assert float(np.interp(0.0, v, j)) > 0.0  # photocurrent positive
    assert np.all(np.diff(j) < 0.0)  # J falls with V under light
    dark = cell.steady_state_jv(np.array([0.0, 0.5]), suns=0.0)
    assert abs(dark[0]) < 1e-12 and dark[1] < 0.0  # no photocurrent, forward injection negative


def _dln_jsq_deg(eg_eV: float) -> float:
    """d ln J_SQ/dEg of the AM1.5G photon current above the gap, from pvlib's ASTM G173 spectrum."""
    return (math.log(_j_sq_pvlib(eg_eV + 0.005)) - math.log(_j_sq_pvlib(eg_eV - 0.005))) / 0.01


def _j_sq_pvlib(eg_eV: float) -> float:
    spectrum = get_reference_spectra(standard="ASTM G173-03")
    wl_nm, flux = spectrum.index.values, spectrum["global"].values * spectrum.index.values * 1e-9 / (H * C)
    edge_nm = H * C / (eg_eV * Q) * 1e9
    inside = wl_nm <= edge_nm
    w = np.append(wl_nm[inside], edge_nm)
    f = np.append(flux[inside], np.interp(edge_nm, wl_nm, flux))
    return Q * float(np.trapezoid(f, w)) / 10.0  # A/m² → mA/cm²


@pytest.mark.parametrize("eg", [1.25, 1.53, 1.62, 1.79, 2.0])
def test_photocurrent_limit_table_is_the_am15g_spectrum(eg: float) -> None:
    assert spectrum.photocurrent_limit_mA_cm2(eg) == pytest.approx(_j_sq_pvlib(eg), rel=2e-3)


@pytest.mark.parametrize("name", SINGLE)
def test_voc_temperature_coefficient(name: str) -> None:
    """Closed form for J0 ∝ T³·exp(−Eg/(n·k·T)) with the linear Eg(T) = E0 + α·T (perovskites widen their gap
    on heating) and Jph following the absorption edge: dVoc/dT = (Voc − E0)/T − 3·n·k/q + (n·kT/q)·dlnJph/dT,
    with E0 = Eg(298 K) − α·298 K and dlnJph/dT = α·dlnJ_SQ/dEg (shunt neglected)."""
    cell = preset(name)
    t1, t2 = 288.15, 308.15
    slope = (cell.steady_voc_V(1.0, t2) - cell.steady_voc_V(1.0, t1)) / (t2 - t1)
    assert -3e-3 <= slope <= -1e-3
    voc, alpha, n = cell.steady_voc_V(1.0, 298.15), cell.bandgap_tc_eV_K, cell.ideality
    e0 = cell.bandgap_eV - alpha * 298.15
    expected = (voc - e0) / 298.15 - 3 * n * K_B + n * K_B * 298.15 * alpha * _dln_jsq_deg(cell.bandgap_eV)
    assert slope == pytest.approx(expected, rel=0.01)
    # the gap widening makes Voc(T) flatter by α·(1 − …) than a fixed gap would: about +0.3 mV/K
    assert slope - ((voc - cell.bandgap_eV) / 298.15 - 3 * n * K_B) == pytest.approx(alpha, rel=0.1)


@pytest.mark.parametrize("name", ["fapbi3", "wbg_5avai"])
def test_jsc_follows_the_absorption_edge_with_temperature(name: str) -> None:
    """Jsc(T)/Jsc(298 K) = J_SQ(Eg(T))/J_SQ(Eg): the gap widens by α per K, the cell loses the photons in
    between (−0.04 %/K here), independently computed from the AM1.5G spectrum."""
    cell = preset(name)
    for temp in (258.15, 338.15, 358.15):
        ratio = cell.steady_state_jv([0.0], 1.0, temp)[0] / cell.steady_state_jv([0.0], 1.0, 298.15)[0]
        eg_t = cell.bandgap_eV + cell.bandgap_tc_eV_K * (temp - 298.15)
        assert ratio == pytest.approx(_j_sq_pvlib(eg_t) / _j_sq_pvlib(cell.bandgap_eV), rel=2e-3)
    assert cell.steady_state_jv([0.0], 1.0, 358.15)[0] < cell.steady_state_jv([0.0], 1.0, 298.15)[0]


def test_tandem_bottom_cell_absorbs_what_the_top_cell_lets_through() -> None:
    """The bottom cell absorbs the photons between its own edge and the top cell's, and both edges move up
    when hot: the bottom loses photons at its own edge and gains those the top no longer absorbs."""
    cell = preset("tandem")
    top, bottom = cell.top, cell.bottom

    def window(temp: float) -> float:
        e_top = top.bandgap_eV + top.bandgap_tc_eV_K * (temp - 298.15)
        e_bot = bottom.bandgap_eV + bottom.bandgap_tc_eV_K * (temp - 298.15)
        return _j_sq_pvlib(e_bot) - _j_sq_pvlib(e_top)

    hot = 348.15
    ratio_bottom = bottom.steady_state_jv([0.0], 1.0, hot)[0] / bottom.steady_state_jv([0.0], 1.0, 298.15)[0]
    ratio_top = top.steady_state_jv([0.0], 1.0, hot)[0] / top.steady_state_jv([0.0], 1.0, 298.15)[0]
    assert ratio_bottom == pytest.approx(window(hot) / window(298.15), rel=3e-3)
    lone = _j_sq_pvlib(bottom.bandgap_eV + bottom.bandgap_tc_eV_K * 50.0) / _j_sq_pvlib(bottom.bandgap_eV)
    assert ratio_top < 1.0 and lone < ratio_bottom < 1.0  # what the top lets through makes up part of the loss


@pytest.mark.parametrize("name", ["wbg_ref", "fapbi3"])
def test_series_resistance_falls_with_temperature(name: str) -> None:
    """Rs(T) = Rs·exp(Ea/k·(1/T − 1/298.15 K)), read back from the dark J–V at high injection, where
    dV/dJ = Rs + n·kT/(q·|J|) (a diode in series with Rs; shunt negligible)."""
    cell = preset(name)
    for temp in (298.15, 358.15):
        v = np.array([1.9, 1.9005])
        j = -cell.steady_state_jv(v, 0.0, temp)  # injected current, positive
        dv_dj = (v[1] - v[0]) / (j[1] - j[0]) * 1e3  # V per (A/cm²) = Ω·cm²
        rs = dv_dj - cell.ideality * K_B * temp / (j.mean() * 1e-3)
        expected = cell.rs_ohm_cm2 * math.exp(cell.rs_activation_eV / K_B * (1 / temp - 1 / 298.15))
        assert rs == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("name", SINGLE)
def test_voc_rises_logarithmically_with_intensity(name: str) -> None:
    cell = preset(name)
    d_voc = cell.steady_voc_V(10.0, 298.15) - cell.steady_voc_V(1.0, 298.15)
    assert d_voc == pytest.approx(cell.ideality * K_B * 298.15 * math.log(10.0), abs=2e-3)


@pytest.mark.parametrize("name", SINGLE)
def test_matches_pvlib_single_diode(name: str) -> None:
    cell = preset(name)
    frozen = preset(name, ion_loss_ratio=0.0)  # no ionic field effect: the instantaneous curve is the diode
    for suns, temp in [(1.0, 298.15), (0.3, 320.0), (2.0, 260.0)]:
        jph, j0, rs, rsh, a = cell._diode(suns, temp)
        v = np.linspace(-0.3, cell.steady_voc_V(suns, temp) + 0.15, 97)
        ref = pvsystem.i_from_v(v, jph, j0, rs, rsh, a, method="lambertw")
        np.testing.assert_allclose(cell.steady_state_jv(v, suns, temp), ref, rtol=1e-9, atol=1e-9)
        j = np.linspace(-5.0, 0.99 * jph, 50)
        v_ref = pvsystem.v_from_i(j, jph, j0, rs, rsh, a, method="lambertw")
        got = [frozen.voltage_at_current_density(float(x), suns, temp) for x in j]
        np.testing.assert_allclose(got, v_ref, atol=1e-9)
        got_j = [frozen.current_density_mA_cm2(float(x), suns, temp) for x in v]
        np.testing.assert_allclose(got_j, ref, rtol=1e-9, atol=1e-9)


def test_instantaneous_current_equals_steady_state_when_ions_equilibrated() -> None:
    cell = preset("wbg_ref")
    for v in (0.0, 0.8, 1.1, 1.25):
        cell.advance(600.0, v, 1.0, 298.15)
        assert cell.current_density_mA_cm2(v, 1.0, 298.15) == pytest.approx(
            float(cell.steady_state_jv(np.array([v]))[0]), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("name", PRESETS)
def test_voltage_at_current_density_inverts_current(name: str) -> None:
    cell = preset(name)
    cell.advance(2.0, 0.3, 1.0, 298.15)  # ions out of equilibrium for the voltages below
    for v in (-0.1, 0.5, 0.9, 1.2):
        j = cell.current_density_mA_cm2(v, 1.0, 298.15)
        assert cell.voltage_at_current_density(j, 1.0, 298.15) == pytest.approx(v, abs=1e-9)
    voc = cell.voltage_at_current_density(0.0, 1.0, 298.15)
    assert abs(cell.current_density_mA_cm2(voc, 1.0, 298.15)) < 1e-9


def test_tandem_is_two_subcells_in_series() -> None:
    cell = preset("tandem")
    assert isinstance(cell, TandemCell)
    for v in (0.0, 1.0, 2.0, 2.15):
        j, vt, vb = cell.split_voltage(v, 1.0, 298.15)
        assert vt + vb == pytest.approx(v, abs=1e-12)
        assert cell.top.current_density_mA_cm2(vt, 1.0, 298.15) == pytest.approx(j, abs=1e-9)
        assert cell.bottom.current_density_mA_cm2(vb, 1.0, 298.15) == pytest.approx(j, abs=1e-9)
    assert cell.steady_voc_V(1.0, 298.15) == pytest.approx(
        cell.top.steady_voc_V(1.0, 298.15) + cell.bottom.steady_voc_V(1.0, 298.15))


def test_presets_listing_and_overrides() -> None:
    assert set(PRESETS) == {"fapbi3", "fapbi3_fai5", "fapbibr_2p5", "fapbibr_15", "fapbibr_25", "wbg_ref",
                            "wbg_5avai", "tandem"}
    cell = preset("fapbi3", ea_anion_eV=0.29)
    assert isinstance(cell, PerovskiteCell) and cell.ea_anion_eV == 0.29 and cell.name == "fapbi3"
    assert preset("fapbi3").ea_anion_eV == pytest.approx(0.131)
    t = preset("tandem", top_voc_V=1.30, rs_ohm_cm2=2.0)
    assert isinstance(t, TandemCell)
    assert t.top.voc_V == 1.30 and t.top.rs_ohm_cm2 == 2.0 and t.bottom.rs_ohm_cm2 == 2.0
    assert preset("wbg_ref").describe()["voc_V"] == pytest.approx(1.285, abs=1e-3)


@pytest.mark.parametrize(("call", "words"), [
    (lambda: preset("nope"), ["nope", "fapbi3"]),
    (lambda: preset("fapbi3", colour="blue"), ["colour"]),
    (lambda: preset("fapbi3", area_cm2=-0.1), ["area_cm2", "-0.1", "(0"]),
    (lambda: preset("wbg_ref", ideality=0.9), ["ideality", "0.9", "[1"]),
    (lambda: preset("wbg_ref", rs_ohm_cm2=-1.0), ["rs_ohm_cm2", "-1.0"]),
    (lambda: preset("tandem", bottom_thickness_nm=0.0), ["thickness_nm", "0.0"]),
    (lambda: preset("wbg_ref").steady_state_jv([0.0], temperature_K=0.0), ["temperature_K", "0.0"]),
    (lambda: preset("wbg_ref").advance(1.0, 0.0, 1.0, -5.0), ["temperature_K", "-5.0"]),
    (lambda: preset("wbg_ref").advance(-1.0, 0.0, 1.0, 300.0), ["dt_s"]),
    (lambda: preset("wbg_ref").capacitance_F(0.0, 0.0, 300.0), ["frequency_Hz"]),
])
def test_invalid_values_raise_clear_errors(call, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as err:
        call()
    for w in words:
        assert w in str(err.value)
