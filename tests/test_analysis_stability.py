"""labctl.analysis.stability on synthetic aging curves with known answers.

Curves are normalised PCE η(t) in % of the initial value, tracked every 0.02 h (72 s) for 1000 h, with seeded
multiplicative Gaussian noise of σ = 0.1 % where stated. Expected values are closed forms (exponential:
T_x = τ·ln(100/x); bi-exponential and burn-in + linear: roots of the closed-form curve, found numerically).

Tolerances. Without noise: 0.01 h on T_x of the exponential (linear interpolation between points 0.02 h
apart), 0.05 %-points on the stabilised PCE. With noise, the error is dominated by the reference PCE₀: a
Theil–Sen line through the n = 26 points of the first 0.5 h, read at the first point, has a standard error of
about 2σ/√n = 0.04 %, which moves T_x by that over the curve's slope there; the tests allow four times that
(:func:`tolerance_h`), plus 0.05 h.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy.optimize import brentq

from labctl.analysis.stability import (
    StabilityAnalysisError,
    cycle_average_t_x,
    mean_abs_dv,
    recovery_corrected_t_x,
    stability_metrics,
    t_x,
    tracking_efficiency,
)

TIME_H = np.arange(0.0, 1000.0 + 1e-9, 0.02)
SIGMA = 0.001
#: The standard error of the reference, in % (module docstring).
REFERENCE_SIGMA_PCT = 2 * 100 * SIGMA / math.sqrt(26)


def curve(f: Callable[[np.ndarray], np.ndarray], noise: float = SIGMA, seed: int = 4, time_h: np.ndarray = TIME_H
          ) -> np.ndarray:
    """18.5 % PCE times η(t)/100, with multiplicative noise."""
    rng = np.random.default_rng(seed)
    return 18.5 * f(time_h) / 100 * (1 + noise * rng.standard_normal(time_h.size))


def root(f: Callable[[float], float], level: float, upper: float = 1e5) -> float:
    return float(brentq(lambda t: f(t) - level, 0.0, upper))


def tolerance_h(f: Callable[[float], float], at_h: float) -> float:
    """Four reference standard errors over the curve's slope at ``at_h``, plus 0.05 h."""
    slope = abs(f(at_h + 0.01) - f(at_h - 0.01)) / 0.02
    return 4 * REFERENCE_SIGMA_PCT / slope + 0.05


def exponential(tau_h: float) -> Callable[..., np.ndarray]:
    return lambda t: 100 * np.exp(-np.asarray(t) / tau_h)


def bi_exponential(t: np.ndarray | float) -> np.ndarray:  # 10 % fast (10 h), 90 % slow (3000 h)
    t = np.asarray(t)
    return 100 * (0.1 * np.exp(-t / 10) + 0.9 * np.exp(-t / 3000))


def burn_in_linear(t: np.ndarray | float) -> np.ndarray:  # 12 % burn-in (50 h) on 0.02 %/h
    t = np.asarray(t)
    return 100 - 12 * (1 - np.exp(-t / 50)) - 0.02 * t


# ------------------------------------------------------------------------------------- exponential
@pytest.mark.parametrize("x", [80.0, 87.0, 95.0, 99.0, 99.98])
def test_t_x_of_an_exponential_is_tau_ln_100_over_x(x: float) -> None:
    lifetime = t_x(TIME_H, curve(exponential(400), noise=0), x)
    assert not lifetime.censored and lifetime.resolved
    assert lifetime.time_h == pytest.approx(400 * math.log(100 / x), abs=0.01)


def test_noisy_exponential_t80_t95_and_no_burn_in() -> None:
    f = exponential(400)
    metrics = stability_metrics(TIME_H, curve(f))
    for value, x in ((metrics.t80_h, 80), (metrics.t95_h, 95)):
        expected = 400 * math.log(100 / x)
        assert value == pytest.approx(expected, abs=tolerance_h(lambda t: float(f(t)), expected))
    assert metrics.stabilised_reference == "initial" and metrics.burn_in_loss_pct == 0
    assert metrics.ts80_h == metrics.t80_h  # no burn-in: Ts80 is T80
    assert metrics.eta1000_pct is None  # T80 was reached
    # σ of one point: 0.1 % of η, whose median over the run is η(500 h) = 28.7 %
    assert metrics.noise_pct == pytest.approx(100 * SIGMA * 0.287, rel=0.2)


def test_a_crossing_within_the_noise_is_marked_unresolved() -> None:
    lifetime = t_x(TIME_H, curve(exponential(400)), 99.98)
    assert not lifetime.resolved  # a 0.02 % drop against the first points' 0.1 % and PCE₀'s 0.04 %


# --------------------------------------------------------------------------------- bi-exponential
def test_bi_exponential_t80_t95_burn_in_and_ts80() -> None:
    """T80 and T95 are roots of the closed form; the fast 10 % is the burn-in. A straight post-burn-in line
    cannot follow the slow exponential's bend, so E_s is that line's intercept: the least-squares line of the
    slow part over the run (88.9 %, not its 90 % at t = 0); Ts80 is where the curve reaches 80 % of it."""
    def f(t: float) -> float:
        return float(bi_exponential(t))

    metrics = stability_metrics(TIME_H, curve(bi_exponential))
    for value, x in ((metrics.t80_h, 80), (metrics.t95_h, 95)):
        expected = root(f, x)
        assert value == pytest.approx(expected, abs=tolerance_h(f, expected))
    slow_intercept = float(np.polyfit(TIME_H, 90 * np.exp(-TIME_H / 3000), 1)[1])
    assert metrics.stabilised_reference == "post-burn-in"
    assert metrics.stabilised_pct == pytest.approx(slow_intercept, abs=0.3)
    assert metrics.burn_in_loss_pct == pytest.approx(100 - slow_intercept, abs=0.3)
    assert 3 * 10 <= metrics.burn_in_end_h <= 5 * 10  # τ·ln(B/δ), B ≈ 10 %, δ = 0.5 %
    expected_ts80 = root(f, 0.8 * slow_intercept)
    assert metrics.ts80_h == pytest.approx(expected_ts80, rel=0.01)


# ------------------------------------------------------------------------------- burn-in + linear
def test_burn_in_then_linear_decay_without_noise() -> None:
    metrics = stability_metrics(TIME_H, curve(burn_in_linear, noise=0))
    assert metrics.stabilised_pct == pytest.approx(88.0, abs=0.05)
    assert metrics.burn_in_loss_pct == pytest.approx(12.0, abs=0.05)
    assert metrics.post_burn_in_slope_pct_h == pytest.approx(-0.02, rel=1e-3)
    assert metrics.burn_in_end_h == pytest.approx(50 * math.log(12 / 0.5), rel=0.02)  # δ = 0.5 % without noise
    assert metrics.ts80_h == pytest.approx((88 - 0.8 * 88) / 0.02, abs=0.5)  # 880 h
    assert metrics.t80_h == pytest.approx(root(lambda t: float(burn_in_linear(t)), 80.0), abs=0.01)


def test_burn_in_then_linear_decay_with_noise() -> None:
    def f(t: float) -> float:
        return float(burn_in_linear(t))

    metrics = stability_metrics(TIME_H, curve(burn_in_linear))
    assert metrics.stabilised_pct == pytest.approx(88.0, abs=4 * REFERENCE_SIGMA_PCT)
    assert metrics.ts80_h == pytest.approx(880.0, rel=0.01)
    for value, x in ((metrics.t80_h, 80), (metrics.t95_h, 95)):
        expected = root(f, x)
        assert value == pytest.approx(expected, abs=tolerance_h(f, expected))


# ---------------------------------------------------------------------------------------- censoring
def test_a_run_that_does_not_reach_t80_is_censored_and_reports_eta1000() -> None:
    metrics = stability_metrics(TIME_H, curve(lambda t: 100 - 0.004 * t))
    assert metrics.t80_h is None and metrics.t80_censored
    assert metrics.t95_h is None and metrics.t95_censored  # 96 % at 1000 h
    assert metrics.ts80_h is None and metrics.ts80_censored
    assert metrics.eta1000_pct == pytest.approx(96.0, abs=4 * REFERENCE_SIGMA_PCT)
    assert metrics.t80_extrapolated_h == pytest.approx(5000.0, rel=0.02)  # only this field extrapolates
    lifetime = t_x(TIME_H, curve(lambda t: 100 - 0.004 * t), 80)
    assert lifetime.censored and lifetime.value_h is None and lifetime.time_h == 1000.0  # T80 > 1000 h


def test_eta1000_needs_a_run_of_1000_h() -> None:
    short = TIME_H[TIME_H <= 600]
    metrics = stability_metrics(short, curve(lambda t: 100 - 0.004 * t, time_h=short))
    assert metrics.t80_censored and metrics.eta1000_pct is None
    assert metrics.eta_end_pct == pytest.approx(97.6, abs=4 * REFERENCE_SIGMA_PCT)
    assert metrics.last_time_h == 600.0


# --------------------------------------------------------------------------------- noise, outliers
def test_a_few_lost_readings_do_not_make_a_crossing() -> None:
    """Five readings of zero power at 300 h (a suspended channel) do not move T80 (600 h): the running median
    ignores them, where a plain first crossing would report 300 h."""
    pce = curve(lambda t: 100 - t / 30)
    pce[np.searchsorted(TIME_H, 300.0):][:5] = 0.0
    assert stability_metrics(TIME_H, pce).t80_h == pytest.approx(600.0, abs=tolerance_h(lambda t: 100 - t / 30,
                                                                                         600))


def test_a_rising_cell_refers_ts80_to_its_maximum() -> None:
    """η rises by light soaking (5 %, 5 h) on a 0.04 %/h decay: maximum 104.16 % at 5·ln 25 h; T80 from the
    initial PCE at 625 h, Ts80 at 80 % of the maximum (ISOS Table 5). The running median flattens a maximum
    by its curvature over the window: 0.03 % here (tolerance 0.05 %, hence 1 h on Ts80); the reference line
    through the first 0.5 h of the bending rise reads PCE₀ high by curvature × (0.5 h)² / 6 = 0.004 %, 0.1 h
    on T80 (tolerance 0.2 h)."""
    def f(t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t)
        return 100 + 5 * (1 - np.exp(-t / 5)) - 0.04 * t

    metrics = stability_metrics(TIME_H, curve(f, noise=0))
    peak = float(f(5 * math.log(25)))
    assert metrics.stabilised_reference == "maximum"
    assert metrics.stabilised_pct == pytest.approx(peak, abs=0.05)
    assert metrics.t80_h == pytest.approx(625.0, abs=0.2)
    assert metrics.ts80_h == pytest.approx(root(lambda t: float(f(t)), 0.8 * peak, upper=2000), abs=1.0)


# ---------------------------------------------------------------------------------- light cycling
def light_cycled() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """12 h light / 12 h dark: 0.02 %/h irreversible loss (of elapsed time) and a reversible loss of
    5·(1 − exp(−t_light / 2 h)) that recovers completely in the dark; tracked points under light only."""
    starts = np.arange(0.0, 1200.0, 24.0)
    time = np.concatenate([start + np.arange(0.0, 12.0, 0.05) for start in starts])
    light_time = time - np.floor(time / 24.0) * 24.0
    eta = 100 - 0.02 * time - 5 * (1 - np.exp(-light_time / 2))
    return time, 18.5 * eta / 100, starts


def test_recovery_corrected_t80_counts_the_irreversible_loss_only() -> None:
    time, pce, starts = light_cycled()
    recovered = recovery_corrected_t_x(time, pce, starts)
    assert recovered.time_h == pytest.approx(1000.0, rel=0.002)  # 100 − 0.02·t = 80 between cycle starts
    plain = stability_metrics(time, pce, light_starts_h=starts)
    assert plain.t80_h is not None and plain.t80_h < 850  # the reversible loss counted as lost
    assert plain.t80_recovery_corrected_h == pytest.approx(recovered.time_h)
    assert plain.t80_recovery_corrected_censored is False


def test_cycle_average_t80_of_a_light_cycled_run() -> None:
    """Mean over a 12 h phase of the reversible loss: 5·(1 − (2/12)(1 − e⁻⁶)) = 4.168 %; the first phase's
    mean is 100 − 0.12 − 4.168; T80 is where 100 − 0.02·t_mid − 4.168 is 80 % of that (t_mid: the phase's
    middle)."""
    time, pce, starts = light_cycled()
    reversible = 5 * (1 - (2 / 12) * (1 - math.exp(-6)))
    first = 100 - 0.02 * 5.975 - reversible  # points at 0 ... 11.95 h: middle 5.975 h
    expected = (100 - reversible - 0.8 * first) / 0.02
    assert cycle_average_t_x(time, pce, starts).time_h == pytest.approx(expected, rel=0.002)


# ------------------------------------------------------------------------------------------- MPPT
def test_tracking_efficiency_is_the_ratio_of_trapezoid_integrals() -> None:
    time = np.arange(0.0, 3600.0, 10.0)
    true = 1.0 + 0.1 * np.sin(time / 300)
    assert tracking_efficiency(time, 0.995 * true, true) == pytest.approx(0.995, rel=1e-12)


def test_tracking_efficiency_leaves_gaps_and_missing_powers_out() -> None:
    """Two stretches of 50 points 10 s apart with a 1010 s gap between them; the tracked power is 0.99 of the
    true one except 0.5 at both ends of the gap (a suspended channel). The gap is left out; the two 10 s
    intervals that touch the 0.5 readings count (mean 0.745): (96 × 0.99 + 2 × 0.745) / 98. Counting the gap
    would weigh 1010 s at 0.5. A missing true power (NaN) leaves its intervals out too."""
    time = np.concatenate([np.arange(0.0, 500.0, 10.0), np.arange(1500.0, 2000.0, 10.0)])
    true = np.ones(time.size)
    tracked = np.full(time.size, 0.99)
    tracked[49] = tracked[50] = 0.5
    expected = (96 * 0.99 + 2 * 0.745) / 98
    assert tracking_efficiency(time, tracked, true) == pytest.approx(expected, rel=1e-12)
    assert tracking_efficiency(time, tracked, true, max_gap_s=2000.0) == pytest.approx(
        (980 * expected + 1010 * 0.5) / 1990, rel=1e-12)
    true[10:20] = np.nan
    assert tracking_efficiency(time, np.full(time.size, 0.99), true) == pytest.approx(0.99, rel=1e-12)


def test_mean_abs_dv_skips_missing_points() -> None:
    assert mean_abs_dv([1.0, 1.02, np.nan, 0.97], [1.0, 1.0, 1.0, 1.0]) == pytest.approx(0.05 / 3)


# --------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("call", "named"), [
    (lambda: t_x([0, 1, 2], [1, 1], 80), "time_h has 3 points but pce has 2"),
    (lambda: t_x([0, 1], [1, 1], 80), "at least 3 finite points"),
    (lambda: t_x([0, 2, 1, 3], [1, 1, 1, 1], 80), "non-decreasing"),
    (lambda: t_x(TIME_H[:10], np.ones(10), 100), r"x = 100 is outside the allowed range \(0, 100\)"),
    (lambda: t_x(TIME_H[:10], np.ones(10), 0), r"x = 0 is outside"),
    (lambda: t_x(TIME_H[:10], -np.ones(10), 80), "reference PCE .* must be > 0"),
    (lambda: t_x(TIME_H[:10], np.ones(10), 80, smooth_h=-1), r"smooth_h = -1 is outside the allowed range"),
    (lambda: stability_metrics(TIME_H[:10], np.ones(10), reference_h=0), r"reference_h = 0 is outside"),
    (lambda: recovery_corrected_t_x(TIME_H[:10], np.ones(10), [0.0]), "light_starts_h must hold at least 2"),
    (lambda: tracking_efficiency([0, 1, 2], [1, 1], [1, 1, 1]), "they must match"),
    (lambda: tracking_efficiency([0, 0, 1], [1, 1, 1], [1, 1, 1]), "increasing"),
    (lambda: tracking_efficiency([0, 1, 2], [1, 1, 1], [0, 0, 0]), "must be positive"),
    (lambda: mean_abs_dv([1.0], [1.0, 2.0]), "v_tracked has 1 points but v_true has 2"),
])
def test_bad_input_is_refused_with_the_parameter_named(call: Callable[[], object], named: str) -> None:
    with pytest.raises(StabilityAnalysisError, match=named):
        call()
