"""ISOS-L-1 retention through the default tracker on the simulated aging station, against the model's truth.

Runs wbg_ref (ch01), wbg_5avai (ch02) and tandem (ch03) of ``sim-aging`` at their MPP under 1 sun for
``--hours`` (virtual time) and prints, per cell: the tracked PCE retention (median of the PCE of the
tracker's holds in a ±2 h window over PCE₀, the initial tracked PCE of ``stability_metrics`` as in
labctl/reports/mppt.py) at 400, 600 and 800 h; the same for the true-MPP series; and T80 from
``stability_metrics`` on the tracked and on the true-MPP series.

    .venv/bin/python bench/mppt_retention.py --hours 800 --interval 60
    .venv/bin/python bench/mppt_retention.py --file RUN.h5       # the figures of a run made before
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from tempfile import mkdtemp

import numpy as np

from labctl.analysis.stability import stability_metrics
from labctl.runner import Progress, Runner
from labctl.station import Station
from labctl.store import RunReader
from procedures.mppt_aging import MPPTAging
from procedures.trackers import DWELL

CELLS = {"ch01": "wbg_ref", "ch02": "wbg_5avai", "ch03": "tandem"}
#: What the issue asks of each cell: (hours, expected retention %, tolerance %), or an upper bound.
EXPECTED = {"wbg_ref": (400.0, "< 50 %"), "wbg_5avai": (600.0, "86.4 ± 2 %"), "tandem": (800.0, "87.3 ± 2 %")}


def retention(time_h: np.ndarray, pce: np.ndarray, reference: float, at_h: float, window_h: float = 2.0) -> float:
    near = np.abs(time_h - at_h) <= window_h
    return 100.0 * float(np.median(pce[near])) / reference if near.any() else math.nan


def series(reader: RunReader, channel: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data, truth = reader.block(f"mppt_{channel}"), reader.block(f"truth_{channel}")
    t, pce, phase = (np.asarray(data[k], dtype=float) for k in ("time_s", "pce_pct", "phase"))
    keep = (phase == DWELL) & (pce > 0)  # the holds: explorations are off the MPP on purpose
    order = np.argsort(t[keep])
    tt, pt = np.asarray(truth["time_s"], dtype=float), np.asarray(truth["pmpp_true_mW_cm2"], dtype=float)
    lit = pt > 0
    torder = np.argsort(tt[lit])
    return t[keep][order], pce[keep][order], tt[lit][torder], pt[lit][torder]  # PCE = P at 100 mW/cm2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=800.0)
    parser.add_argument("--interval", type=float, default=60.0, help="tracking-point interval (s)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--file", type=Path, default=None, help="print the figures of this run instead")
    args = parser.parse_args()
    if args.file is not None:
        print_figures(args.file)
        return
    out = args.out or Path(mkdtemp(prefix="mppt_retention_"))
    proc = MPPTAging(samples=list(CELLS), preset="ISOS-L-1", duration_h=args.hours, interval_s=args.interval)
    runner = Runner(proc, station=Station.load("sim-aging"), directory=out)
    marks = iter(np.arange(0.1, 1.01, 0.1))
    state = {"next": next(marks)}

    def show(event: object) -> None:
        if isinstance(event, Progress) and event.fraction >= state["next"]:
            print(f"  {100 * event.fraction:.0f} % ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr)
            state["next"] = next(marks, 2.0)

    runner.subscribe(show)
    t_start = time.perf_counter()
    result = runner.run()
    wall = time.perf_counter() - t_start
    print(f"ISOS-L-1, {args.hours:g} h, one tracking point per {args.interval:g} s: {result.status} in {wall:.0f} s "
          f"({args.hours / wall:.2f} simulated h per real s); file {result.path}")
    print_figures(result.path)


def print_figures(path: Path) -> None:
    with RunReader(path) as reader:
        starts = [float(np.min(np.asarray(reader.block(f"mppt_{c}")["time_s"]))) for c in CELLS]
        t0 = min(starts)
        print(f"{'cell':10} {'PCE0 %':>7} {'@400 h':>7} {'@600 h':>7} {'@800 h':>7} {'true@400':>8} "
              f"{'true@600':>8} {'true@800':>8} {'T80 trk':>8} {'T80 true':>8} {'ΔT80 %':>7}  expected")
        for channel, cell in CELLS.items():
            t, pce, tt, pt = series(reader, channel)
            hours, true_hours = (t - t0) / 3600.0, (tt - t0) / 3600.0
            tracked = stability_metrics(hours, pce)
            true = stability_metrics(true_hours, pt)
            ref, true_ref = tracked.reference_pce, true.reference_pce
            t80, t80_true = tracked.t80_h, true.t80_h
            diff = 100.0 * (t80 - t80_true) / t80_true if t80 and t80_true else math.nan
            at = EXPECTED[cell]
            cells = [retention(hours, pce, ref, h) for h in (400, 600, 800)]
            truths = [retention(true_hours, pt, true_ref, h) for h in (400, 600, 800)]
            print(f"{cell:10} {ref:7.2f} " + " ".join(f"{v:7.1f}" for v in cells) + " "
                  + " ".join(f"{v:8.1f}" for v in truths)
                  + f" {_h(t80):>8} {_h(t80_true):>8} {diff:7.2f}  {at[1]} at {at[0]:g} h")


def _h(value: float | None) -> str:
    return "censored" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    main()
