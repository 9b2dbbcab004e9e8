"""A live plot's series: bounded memory for a 1000 h channel, extremes never averaged away, raw points when
zoomed into the newest hours, and a clear 'ask the file' for an old hour."""

from __future__ import annotations

import numpy as np
import pytest

from labctl.gui.live_series import LiveSeries, envelope

HOUR_S = 3600.0


def _feed(series: LiveSeries, hours: float, step_s: float = 10.0, batch: int = 600,
          t0: float = 1.8e9) -> tuple[np.ndarray, np.ndarray]:
    t = t0 + np.arange(0.0, hours * HOUR_S, step_s)
    rng = np.random.default_rng(1)
    v = 20.0 * np.exp(-(t - t0) / (800 * HOUR_S)) + rng.normal(0, 0.05, t.size)
    for k in range(0, t.size, batch):
        series.extend(t[k:k + batch], v[k:k + batch])
    return t, v


def test_memory_is_the_same_after_ten_and_after_a_thousand_hours() -> None:
    short, long = LiveSeries(), LiveSeries()
    _feed(short, 10)
    _feed(long, 1000)
    assert short.nbytes == long.nbytes
    assert long.n_points == 360_000 and long.bin_s >= 1000 * HOUR_S / 4096


def test_every_extreme_survives_in_the_overview() -> None:
    t, v = _feed(LiveSeries(), 200)
    v[12_345] = 35.0  # one spike among 72,000 points, far back in a small overview
    series = LiveSeries(overview_bins=256, tail_points=100)
    for k in range(0, t.size, 97):
        series.extend(t[k:k + 97], v[k:k + 97])
    _, lows, highs, _ = series.overview()
    assert highs.max() == 35.0 and lows.min() == v.min()
    view = series.view(t[0], t[-1], 200)
    assert view is not None and view.high.max() == 35.0


def test_zoomed_into_the_newest_hour_the_plot_gets_the_raw_points() -> None:
    series = LiveSeries()
    t, v = _feed(series, 1000)
    view = series.view(t[-1] - HOUR_S, t[-1], 1000)
    assert view is not None and view.raw
    np.testing.assert_array_equal(view.low, v[t >= t[-1] - HOUR_S])


def test_the_whole_run_is_an_envelope_no_wider_than_the_plot() -> None:
    series = LiveSeries()
    t, v = _feed(series, 1000)
    view = series.view(t[0], t[-1], 1500)
    assert view is not None and not view.raw and view.size <= 1500
    # each drawn stroke spans the true min and max of the points under it (bins of the overview: exact)
    assert view.high.max() == pytest.approx(v.max()) and view.low.min() == pytest.approx(v.min())
    x, y = view.polyline()
    assert x.size == y.size == 2 * view.size


def test_an_old_hour_left_the_tail_so_the_file_is_asked() -> None:
    series = LiveSeries()
    t, _ = _feed(series, 1000)
    assert series.view(t[0] + 100 * HOUR_S, t[0] + 101 * HOUR_S, 1000) is None


def test_envelope_matches_a_brute_force_binning() -> None:
    rng = np.random.default_rng(2)
    t = np.sort(rng.uniform(0, 100, 5000))
    v = rng.normal(size=t.size)
    view = envelope(t, v, 0.0, 100.0, 50)
    for centre, low, high in zip(view.time_s, view.low, view.high, strict=True):
        inside = (t >= centre - 1.0) & (t < centre + 1.0)
        assert low == v[inside].min() and high == v[inside].max()


def test_bad_sizes_are_refused_with_the_allowed_range() -> None:
    with pytest.raises(ValueError, match="overview_bins = 3; allowed: an even number"):
        LiveSeries(overview_bins=3)
