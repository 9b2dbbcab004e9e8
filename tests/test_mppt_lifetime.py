"""Lifetimes of the wide-bandgap reference cell under ISOS-L-1, from what the default tracker measured and from
the model's true MPP: a tracker that loses power must not show up as a shorter lifetime. The test runs 60 h
and compares T95 and T90 (what 60 h reach), with a tracking point every 2 min: at one every 5 min the true
series' T95 moved by ±1 % from run to run with the order in which the channel and the monitors woke at one
virtual instant, and the tracked one sat 3–4 % off; the full-length T80 comparison and the retention figures at
400–800 h on three cells are in bench/mppt_retention.py and docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labctl.analysis.stability import stability_metrics, t_x
from labctl.analyze import analyze_file
from labctl.runner import Runner
from labctl.station import Station
from labctl.store import RunReader
from procedures.mppt_aging import MPPTAging
from procedures.trackers import DWELL

#: The issue's bound on T80; applied here to T95 and T90, which 60 h reach.
TOLERANCE = 0.02


def test_lifetimes_from_the_tracked_series_are_within_2_percent_of_the_true_mpp_ones(tmp_path: Path) -> None:
    result = Runner(MPPTAging(samples=["wbg_ref"], preset="ISOS-L-1", duration_h=60.0, interval_s=120.0),
                    station=Station.load("sim"), directory=tmp_path).run()
    assert result.status == "completed", result.reason
    with RunReader(result.path) as reader:
        data, truth = reader.block("mppt_wbg_ref"), reader.block("truth_wbg_ref")
        t, pce, phase = (np.asarray(data[k], dtype=float) for k in ("time_s", "pce_pct", "phase"))
        tt, pt = np.asarray(truth["time_s"], dtype=float), np.asarray(truth["pmpp_true_mW_cm2"], dtype=float)
    t0 = float(t.min())
    held = phase == DWELL
    order, torder = np.argsort(t[held]), np.argsort(tt)
    hours, pce = (t[held][order] - t0) / 3600.0, pce[held][order]
    true_hours, true_pce = (tt[torder] - t0) / 3600.0, pt[torder]  # P at 100 mW/cm2 is the PCE in %
    for x in (95.0, 90.0):
        tracked, true = t_x(hours, pce, x), t_x(true_hours, true_pce, x)
        assert tracked.value_h is not None and true.value_h is not None, x
        print(f"T{x:g}: tracked {tracked.value_h:.2f} h, true MPP {true.value_h:.2f} h")
        assert abs(tracked.value_h - true.value_h) <= TOLERANCE * true.value_h, x
    assert 5.0 < t_x(true_hours, true_pce, 95.0).value_h < 40.0  # type: ignore[operator]
    # the tracked PCE₀ is the true MPP's within 1 % (the reference of every normalised figure)
    assert stability_metrics(hours, pce).reference_pce == pytest.approx(
        stability_metrics(true_hours, true_pce).reference_pce, rel=0.01)
    # and the report's analysis gives the same T95 from the file
    row = analyze_file(result.path, MPPTAging)["channels"][0]
    assert row["t95_h"] == pytest.approx(t_x(hours, pce, 95.0).value_h, rel=1e-9)
