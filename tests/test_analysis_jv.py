"""J–V metrics against pvlib's independent single-diode solution, hysteresis indices, SPO."""

from __future__ import annotations

import math

import numpy as np
import pvlib
import pytest
from scipy.integrate import quad

from labctl.analysis.jv import METRIC_KEYS, JVAnalysisError, hysteresis_indices, jv_metrics, stabilised_power

KT_Q_298 = 0.025693

# (photocurrent A/cm², saturation current A/cm², Rs Ω·cm², Rsh Ω·cm², n·Ns·Vth V): a 1.79 eV WBG-like cell,
# an all-perovskite tandem (two junctions: Ns = 2), and a poor cell with low shunt resistance.
CELLS = {
    "wbg": (0.0175, 1e-22, 2.0, 5000.0, 1.3 * KT_Q_298),
    "tandem": (0.0162, 1e-21, 4.0, 8000.0, 2 * 1.4 * KT_Q_298),
    "leaky": (0.021, 1e-14, 6.0, 300.0, 1.8 * KT_Q_298),
}


def reference(cell: tuple[float, ...]) -> dict[str, float]:
    ref = pvlib.pvsystem.singlediode(*cell)
    return {"voc_V": float(ref["v_oc"]), "jsc_mA_cm2": 1000 * float(ref["i_sc"]),
            "pmax_mW_cm2": 1000 * float(ref["p_mp"])}


def curve(cell: tuple[float, ...], step_V: float, noise_mA_cm2: float = 0.0, seed: int = 0
          ) -> tuple[np.ndarray, np.ndarray]:
    voc = reference(cell)["voc_V"]
    v = np.arange(-0.1, voc + 0.15, step_V)
    j = 1000 * pvlib.pvsystem.i_from_v(v, *cell)
    j = j + np.random.default_rng(seed).normal(0.0, noise_mA_cm2, v.size)
    return v, np.asarray(j, dtype=float)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_fine_grid_agrees_with_pvlib_within_0p1_percent(name: str) -> None:
    cell = CELLS[name]
    v, j = curve(cell, 0.001)
    metrics = jv_metrics(v, j)
    for key, expected in reference(cell).items():
        assert metrics[key] == pytest.approx(expected, rel=1e-3), key


@pytest.mark.parametrize("name", sorted(CELLS))
def test_coarse_noisy_grid_agrees_with_pvlib_within_0p5_percent(name: str) -> None:
    cell = CELLS[name]
    # 20 mV steps; noise of 0.01 mA/cm² rms (≈ 0.05 % of Jsc: a 2450 on its 10 mA range at NPLC 1).
    v, j = curve(cell, 0.020, noise_mA_cm2=0.01, seed=3)
    metrics = jv_metrics(v, j)
    for key, expected in reference(cell).items():
        assert metrics[key] == pytest.approx(expected, rel=5e-3), key


def test_fill_factor_and_pce_follow_their_definitions() -> None:
    cell = CELLS["wbg"]
    v, j = curve(cell, 0.001)
    m = jv_metrics(v, j, irradiance_mW_cm2=100.0)
    assert m["ff"] == pytest.approx(m["pmax_mW_cm2"] / (m["voc_V"] * m["jsc_mA_cm2"]), rel=1e-12)
    assert m["pce_pct"] == pytest.approx(m["pmax_mW_cm2"], rel=1e-12)  # 100 mW/cm²: PCE % = Pmax in mW/cm²
    half_sun = jv_metrics(v, j, irradiance_mW_cm2=50.0)
    assert half_sun["pce_pct"] == pytest.approx(2 * m["pce_pct"], rel=1e-12)
    assert m["vmpp_V"] * m["jmpp_mA_cm2"] == pytest.approx(m["pmax_mW_cm2"], rel=1e-9)


def test_resistances_match_the_diode_model() -> None:
    _il, i0, rs, rsh, nvth = CELLS["wbg"]
    v, j = curve(CELLS["wbg"], 0.001)
    m = jv_metrics(v, j)
    # Near Jsc the slope is -1/(Rs + Rsh) (diode off); at Voc, dV/dJ = Rs + nVth/(I0 exp(Voc/nVth) + ...).
    assert m["rsh_ohm_cm2"] == pytest.approx(rs + rsh, rel=0.01)
    voc = m["voc_V"]
    g_diode = i0 / nvth * math.exp(voc / nvth) + 1 / rsh
    assert m["rs_ohm_cm2"] == pytest.approx(rs + 1 / g_diode, rel=0.01)


def test_scan_order_and_smu_sign_do_not_matter() -> None:
    v, j = curve(CELLS["wbg"], 0.005)
    forward = jv_metrics(v, j)
    reverse_smu = jv_metrics(v[::-1], -j[::-1])
    explicit = jv_metrics(v, -j, photocurrent_sign="negative")
    for key in METRIC_KEYS:
        assert reverse_smu[key] == pytest.approx(forward[key], rel=1e-12)
        assert explicit[key] == pytest.approx(forward[key], rel=1e-12)


def test_curve_that_never_crosses_zero_gives_nan_with_a_reason() -> None:
    v, j = curve(CELLS["wbg"], 0.01)
    inside = v < 1.0
    m = jv_metrics(v[inside], j[inside])
    assert math.isnan(m["voc_V"]) and math.isnan(m["pce_pct"]) and math.isnan(m["ff"])
    assert m["jsc_mA_cm2"] == pytest.approx(reference(CELLS["wbg"])["jsc_mA_cm2"], rel=1e-3)
    assert "never crosses zero" in m["note"]


def test_bad_input_is_rejected_clearly() -> None:
    with pytest.raises(JVAnalysisError, match="3 points but current density has 2"):
        jv_metrics([0, 1, 2], [1, 2])
    with pytest.raises(JVAnalysisError, match="photocurrent_sign = 'up'"):
        jv_metrics([0, 0.5, 1, 1.5], [1, 1, 0, -1], photocurrent_sign="up")


def test_hysteresis_indices_against_closed_forms() -> None:
    rs_cell = CELLS["wbg"]
    fs_cell = (0.0168, 1e-22, 6.0, 3000.0, 1.3 * KT_Q_298)  # worse forward scan: normal hysteresis
    rv, rj = curve(rs_cell, 0.001)
    fv, fj = curve(fs_cell, 0.001)
    hi = hysteresis_indices((rv, rj), (fv, fj))
    ref_r, ref_f = reference(rs_cell), reference(fs_cell)
    assert hi["hi_pce"] == pytest.approx(1 - ref_f["pmax_mW_cm2"] / ref_r["pmax_mW_cm2"], rel=2e-3)
    v08 = 0.8 * ref_r["voc_V"]
    j_r = 1000 * pvlib.pvsystem.i_from_v(v08, *rs_cell)
    j_f = 1000 * pvlib.pvsystem.i_from_v(v08, *fs_cell)
    assert hi["hi_j08"] == pytest.approx((j_r - j_f) / j_r, rel=2e-3)

    def area(cell: tuple[float, ...]) -> float:
        return quad(lambda x: 1000 * float(pvlib.pvsystem.i_from_v(x, *cell)), 0, reference(cell)["voc_V"])[0]

    assert hi["hi_area"] == pytest.approx((area(rs_cell) - area(fs_cell)) / area(rs_cell), rel=5e-3)
    assert hi["hi_pce"] > 0 and hi["hi_j08"] > 0 and hi["hi_area"] > 0


def test_inverted_hysteresis_is_negative_and_identical_scans_zero() -> None:
    a = curve(CELLS["wbg"], 0.002)
    b = curve((0.0168, 1e-22, 6.0, 3000.0, 1.3 * KT_Q_298), 0.002)
    inverted = hysteresis_indices(b, a)
    assert inverted["hi_pce"] < 0 and inverted["hi_j08"] < 0 and inverted["hi_area"] < 0
    same = hysteresis_indices(a, a)
    assert all(abs(value) < 1e-12 for value in same.values())


def test_stabilised_power_finds_level_and_settling_time() -> None:
    tau_s = 10.0
    t = np.arange(0.0, 300.0, 0.5)
    p = 20.0 * (1 - 0.10 * np.exp(-t / tau_s))
    spo = stabilised_power(t, p, irradiance_mW_cm2=100.0, tolerance=0.01)
    # Leaves the ±1 % band at t = τ·ln(10) (closed form), to within one sample.
    assert spo["settling_s"] == pytest.approx(tau_s * math.log(10.0), abs=0.5)
    assert spo["spo_mW_cm2"] == pytest.approx(20.0, rel=2e-3)
    assert spo["spo_pce_pct"] == pytest.approx(20.0, rel=2e-3)


def test_stabilised_power_reports_a_trace_that_never_settles() -> None:
    t = np.linspace(0, 100, 201)
    p = 20.0 * (1 - 0.002 * t)  # drifts 20 % over the hold: no 1 % band holds at the end
    spo = stabilised_power(t, p)
    assert math.isnan(spo["settling_s"])
    assert spo["drift_pct_per_min"] < -10


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("step_V", [0.05, 0.1, 0.15])
def test_coarse_grids_give_physical_metrics(name: str, step_V: float) -> None:
    # A quick 0.1 V scan is common; a parabola through 5 points spanning ±0.2 V around the knee gave
    # FF > 1, Jmpp > Jsc and a PCE 19 % too high for the WBG cell.
    cell = CELLS[name]
    v, j = curve(cell, step_V)
    m = jv_metrics(v, j)
    ref = reference(cell)
    assert m["ff"] < 1 and m["jmpp_mA_cm2"] < m["jsc_mA_cm2"]
    assert m["pmax_mW_cm2"] == pytest.approx(ref["pmax_mW_cm2"], rel=0.015)
    assert m["voc_V"] == pytest.approx(ref["voc_V"], abs=0.005)
    assert m["jsc_mA_cm2"] == pytest.approx(ref["jsc_mA_cm2"], rel=1e-3)


@pytest.mark.parametrize("n_points", [4, 5, 6])
def test_a_scan_of_a_few_points_through_voc_gives_a_sane_jsc(n_points: int) -> None:
    cell = CELLS["leaky"]
    ref = reference(cell)
    v = np.linspace(-0.1, ref["voc_V"] + 0.1, n_points)
    j = 1000 * np.asarray(pvlib.pvsystem.i_from_v(v, *cell), dtype=float)
    m = jv_metrics(v, j)
    # Points past Voc carry tens of mA/cm² of forward current: they must not tilt the Jsc line fit.
    assert m["jsc_mA_cm2"] == pytest.approx(ref["jsc_mA_cm2"], rel=0.02)
    assert math.isnan(m["ff"]) or m["ff"] < 1


@pytest.mark.parametrize("seed", range(8))
def test_a_noisy_dark_curve_has_no_voc_ff_or_pmax(seed: int) -> None:
    # In the dark J(0) is zero within the noise; noise crossings near 0 V gave a Voc of tens of mV and FF 7.8.
    v = np.arange(-0.1, 1.5, 0.01)
    j = -1e-15 * np.expm1(v / 0.035) - v / 5000 * 1e3 + np.random.default_rng(seed).normal(0, 0.01, v.size)
    m = jv_metrics(v, j, photocurrent_sign="positive")
    assert math.isnan(m["voc_V"]) and math.isnan(m["ff"]) and math.isnan(m["pmax_mW_cm2"])
    assert "no photocurrent" in m["note"] and "never crosses zero" not in m["note"]
