"""Mott–Schottky analysis on synthetic C(V) with a known N_A and V_bi, built here from the depletion
approximation (not from the simulated cell): W = √(2εε0(V_bi − V − kT/q)/(qN_A)) capped at the thickness d
(full depletion in reverse bias), plus a chemical capacitance growing as exp(qV/2kT) in forward bias; noise of a
stated fraction of C."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labctl.analysis.cv import CVAnalysisError, mott_schottky

Q = 1.602176634e-19
EPS0 = 8.8541878128e-12
K_EV = 8.617333262e-5
AREA, EPS_R, N_A, V_BI, T = 0.1, 35.0, 3e16, 0.85, 300.0


def cv(volts: np.ndarray, noise: float, seed: int, thickness_nm: float = 600.0) -> np.ndarray:
    vt = K_EV * T
    w = np.sqrt(2 * EPS_R * EPS0 * np.maximum(V_BI - volts - vt, 1e-3) / (Q * N_A * 1e6))
    w = np.minimum(w, thickness_nm * 1e-9)
    c = EPS_R * EPS0 * AREA * 1e-4 / w + 2e-15 * np.exp(volts / (2 * vt))  # chemical capacitance, forward
    rng = np.random.default_rng(seed)
    return np.asarray(c * (1 + noise * rng.standard_normal(c.size)))


VOLTS = np.round(np.arange(-2.5, 0.801, 0.05), 3)


def test_automatic_window_finds_the_depletion_regime() -> None:
    """From −2.5 V (fully depleted below −1.97 V) to +0.8 V (chemical capacitance above ≈ 0.6 V), noise
    2e-4: N_A within 1 %, V_bi within 10 mV; the window stays inside −1.95 … +0.65 V."""
    result = mott_schottky(VOLTS, cv(VOLTS, 2e-4, 1), area_cm2=AREA, eps_r=EPS_R, temperature_K=T)
    assert result.n_a_cm3 == pytest.approx(N_A, rel=0.01)
    assert result.v_bi_V == pytest.approx(V_BI, abs=0.01)
    lo, hi = result.fit_window_V
    assert lo >= -1.95 and hi <= 0.65 and hi - lo > 1.5
    assert result.automatic and result.max_relative_residual <= 0.01
    assert set(result.as_dict()) >= {"v_bi_V", "n_a_cm3", "fit_window_V"}


def test_the_kt_over_q_correction_is_applied() -> None:
    """The intercept of 1/C² is V_bi − kT/q (26 mV at 300 K); V_bi adds it back."""
    result = mott_schottky(VOLTS, cv(VOLTS, 0.0, 2), area_cm2=AREA, eps_r=EPS_R, temperature_K=T)
    assert result.intercept_V == pytest.approx(V_BI - K_EV * T, abs=1e-3)
    assert result.v_bi_V == pytest.approx(V_BI, abs=1e-3)


def test_a_window_given_by_the_user_is_used() -> None:
    result = mott_schottky(VOLTS, cv(VOLTS, 0.0, 3), area_cm2=AREA, eps_r=EPS_R, temperature_K=T,
                           fit_window_V=(-1.0, 0.0))
    assert result.fit_window_V == (-1.0, 0.0) and not result.automatic and result.n_points == 21
    # a window reaching into full depletion bends the line: N_A comes out wrong, as it would for the user
    bent = mott_schottky(VOLTS, cv(VOLTS, 0.0, 3), area_cm2=AREA, eps_r=EPS_R, temperature_K=T,
                         fit_window_V=(-2.5, 0.0))
    assert abs(bent.n_a_cm3 / N_A - 1) > 0.1


def test_forward_and_back_sweeps_are_averaged_and_their_difference_reported() -> None:
    back = cv(VOLTS, 0.0, 4) * 1.002
    result = mott_schottky(np.concatenate([VOLTS, VOLTS[::-1]]), np.concatenate([cv(VOLTS, 0.0, 4), back[::-1]]),
                           area_cm2=AREA, eps_r=EPS_R, temperature_K=T)
    assert result.hysteresis == pytest.approx(0.002, rel=0.01)
    assert result.n_a_cm3 == pytest.approx(N_A / 1.002**2, rel=0.01)


def test_a_fully_depleted_device_has_no_mott_schottky_line() -> None:
    """A 150 nm absorber is fully depleted everywhere in reverse bias: C is flat, no line changes by 10 %."""
    volts = np.round(np.arange(-2.0, 0.0, 0.1), 3)
    with pytest.raises(CVAnalysisError, match="no run"):
        mott_schottky(volts, cv(volts, 1e-4, 5, thickness_nm=150.0), area_cm2=AREA, eps_r=EPS_R, temperature_K=T)


@pytest.mark.parametrize(("kwargs", "name"), [({"area_cm2": 0.0}, "area_cm2"), ({"eps_r": math.nan}, "eps_r"),
                                              ({"min_points": 2}, "min_points")])
def test_bad_parameters_are_named(kwargs: dict[str, float], name: str) -> None:
    args = {"area_cm2": AREA, "eps_r": EPS_R, "temperature_K": T, **kwargs}
    with pytest.raises(CVAnalysisError, match=name):
        mott_schottky(VOLTS, cv(VOLTS, 0.0, 6), **args)
