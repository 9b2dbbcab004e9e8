"""Steady-state J–V of the simulated cells: the seed figures, temperature and intensity trends, the
single-diode solution against pvlib, parameter validation and the cost of one current evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pvlib import pvsystem

from mock_instruments.device import PerovskiteCell, TandemCell
from mock_instruments.presets import PRESETS, preset

K_B = 8.617333262e-5
SINGLE = [p for p in PRESETS if p != "tandem"]


def jv_metrics(v: np.ndarray, j: np.ndarray) -> dict[str, float]:
    """Voc, Jsc by linear interpolation, Pmax from a dense grid (photocurrent positive)."""
    order = np.argsort(v)
    v, j = v[order], j[order]
    voc = float(np.interp(0.0, -j, v))
    jsc = float(np.interp(0.0, v, j))
    p = v * j
    pmax = float(np.max(p[(v >= 0) & (v <= voc)]))
    return {"voc": voc, "jsc": jsc, "ff": pmax / (voc * jsc), "pce": pmax}  # 1 sun = 100 mW/cm²


@pytest.mark.parametrize(("name", "targets"), [
    ("wbg_5avai", {"voc": (1.372, 0.010), "jsc": (17.50, 0.20), "ff": (0.84, 0.01), "pce": (20.2, 0.3)}),
    ("wbg_ref", {"voc": (1.285, 0.010), "jsc": (17.26, 0.20), "pce": (17.5, 0.3)}),
    ("tandem", {"voc": (2.183, 0.015), "ff": (0.836, 0.015), "pce": (28.9, 0.4)}),
])
def test_seed_jv_figures(name: str, targets: dict[str, tuple[float, float]]) -> None:
    cell = preset(name)
    v = np.linspace(-0.05, cell.steady_voc_V(1.0, 298.15) + 0.05, 4001)
    m = jv_metrics(v, cell.steady_state_jv(v, 1.0, 298.15))
    for key, (value, tol) in targets.items():
        assert abs(m[key] - value) <= tol, (name, key, m[key], value)


@pytest.mark.parametrize("name", PRESETS)
def test_sign_convention_and_monotonic(name: str) -> None:
    cell = preset(name)
    v = np.linspace(-0.2, cell.steady_voc_V(1.0, 298.15) + 0.1, 301)
    j = cell.steady_state_jv(v)
    assert float(np.interp(0.0, v, j)) > 0.0  # photocurrent positive
    assert np.all(np.diff(j) < 0.0)  # J falls with V under light
    dark = cell.steady_state_jv(np.array([0.0, 0.5]), suns=0.0)
    assert abs(dark[0]) < 1e-12 and dark[1] < 0.0  # no photocurrent, forward injection negative


@pytest.mark.parametrize("name", SINGLE)
def test_voc_temperature_coefficient(name: str) -> None:
    cell = preset(name)
    t1, t2 = 288.15, 308.15
    slope = (cell.steady_voc_V(1.0, t2) - cell.steady_voc_V(1.0, t1)) / (t2 - t1)
    assert -3e-3 <= slope <= -1e-3
    # closed form for J0 ∝ T³·exp(−Eg/(n·k·T)) with negligible shunt: dVoc/dT = (Voc − Eg)/T − 3·n·k/q
    voc = cell.steady_voc_V(1.0, 298.15)
    expected = (voc - cell.bandgap_eV) / 298.15 - 3 * cell.ideality * K_B
    assert slope == pytest.approx(expected, rel=0.05)


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
    assert set(PRESETS) == {"fapbi3", "fapbibr_2p5", "fapbibr_15", "fapbibr_25", "wbg_ref", "wbg_5avai",
                            "tandem"}
    cell = preset("fapbi3", ea_anion_eV=0.29)
    assert isinstance(cell, PerovskiteCell) and cell.ea_anion_eV == 0.29 and cell.name == "fapbi3"
    assert preset("fapbi3").ea_anion_eV == pytest.approx(0.131)
    t = preset("tandem", top_voc_V=1.30, rs_ohm_cm2=2.0)
    assert isinstance(t, TandemCell)
    assert t.top.voc_V == 1.30 and t.top.rs_ohm_cm2 == 2.0 and t.bottom.rs_ohm_cm2 == 2.0
    assert preset("wbg_ref").describe()["voc_V"] == 1.285


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
