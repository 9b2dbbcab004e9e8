"""Every MPPT tracker side by side on wbg_ref, wbg_5avai and tandem (simulated station ``sim``, virtual time).

Per tracker one run of the three cells at 1 sun; ``--step-h`` into it the light steps to 0.5 sun (the
irradiance suspender is left out so the channels keep tracking through the step), and the run goes on for
``--after-h``. Printed per tracker and cell:

* efficiency before the step: ∫P_tracked dt / ∫P_mpp,true dt over the readings before it (start-up included);
* mean |V − Vmpp,true| over the readings of the holds before the step;
* efficiency after the step (the transient included);
* settling: time from the step until the tracked power stays within 1 % of the true MPP power for the rest of
  the run ("never" if it does not).

The truth (``truth_<ch>``: the model's steady-state MPP at each dwell's start and end) is interpolated within
each side of the step, and the first record after the step is held back to the step itself.

    .venv/bin/python bench/mppt_trackers.py            # about a minute
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import numpy as np

from labctl.analysis.stability import tracking_efficiency
from labctl.runner import RunContext, Runner
from labctl.runner.suspenders import Suspender
from labctl.station import Station
from labctl.store import RunReader
from procedures.mppt_aging import MPPTAging
from procedures.trackers import DWELL, EXPLORE, SETTLE, TRACKERS

CELLS = ("wbg_ref", "wbg_5avai", "tandem")


class LightStep(MPPTAging):
    """MPPT aging whose light steps from 1 to ``LOW_SUNS`` sun at ``step_h``."""

    step_h = 0.75
    LOW_SUNS = 0.5

    def suspenders(self, ctx: RunContext, sample: str) -> list[Suspender]:
        return []  # 0.5 sun is out of the irradiance band on purpose

    def environment(self, ctx: RunContext) -> None:
        sample = self.resolved_samples(ctx.bench.station)[0]
        ctx.clock.sleep(max(self.t0 + self.step_h * 3600.0 - ctx.clock.now(), 0.0))
        ctx.bench.light(sample).set_intensity_suns(self.LOW_SUNS)
        ctx.event("light_step", f"light stepped to {self.LOW_SUNS:g} sun", suns=self.LOW_SUNS)
        super().environment(ctx)


def _truth(reader: RunReader, channel: str, t: np.ndarray, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    block = reader.block(f"truth_{channel}")
    tt = np.asarray(block["time_s"], dtype=float)
    order = np.argsort(tt, kind="stable")
    tt, vt, pt = tt[order], np.asarray(block["vmpp_true_V"])[order], np.asarray(block["pmpp_true_mW_cm2"])[order]
    v, p = np.empty_like(t), np.empty_like(t)
    for side, mask in ((tt < step_s, t < step_s), (tt > step_s, t >= step_s)):
        v[mask] = np.interp(t[mask], tt[side], vt[side])
        p[mask] = np.interp(t[mask], tt[side], pt[side])
    return v, p


def figures(path: Path, channel: str) -> dict[str, float]:
    with RunReader(path) as reader:
        block = reader.block(f"mppt_{channel}")
        t, v, p, phase = (np.asarray(block[k], dtype=float) for k in ("time_s", "voltage_V", "power_mW_cm2", "phase"))
        step_s = next(e.time_s for e in reader.events() if e.kind == "light_step")
        order = np.argsort(t, kind="stable")
        t, v, p, phase = t[order], v[order], p[order], phase[order]
        keep = np.isin(phase, (EXPLORE, DWELL, SETTLE))
        t, v, p, phase = t[keep], v[keep], p[keep], phase[keep]
        v_true, p_true = _truth(reader, channel, t, step_s)
    before, after = t < step_s, t >= step_s
    held = before & (phase == DWELL)
    off = np.flatnonzero(after & (p < 0.99 * p_true))
    settle = (t[off[-1]] - step_s) if off.size else 0.0
    if off.size and off[-1] >= t.size - 3:
        settle = math.inf
    return {"eff_before": tracking_efficiency(t[before], p[before], p_true[before], max_gap_s=120.0),
            "dv_mV": 1e3 * float(np.mean(np.abs(v[held] - v_true[held]))) if held.any() else math.nan,
            "eff_after": tracking_efficiency(t[after], p[after], p_true[after], max_gap_s=120.0),
            "settle_s": settle}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-h", type=float, default=0.75)
    parser.add_argument("--after-h", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(mkdtemp(prefix="mppt_trackers_"))
    station = Station.load("sim")
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for tracker in TRACKERS:
        proc = LightStep(samples=list(CELLS), tracker=tracker, duration_h=args.step_h + args.after_h, suns=1.0)
        proc.step_h = args.step_h
        started = time.perf_counter()
        result = Runner(proc, station=station, directory=out).run()
        if result.status != "completed":
            raise SystemExit(f"{tracker}: {result.status}: {result.reason}")
        print(f"{tracker}: {time.perf_counter() - started:.1f} s real", flush=True)
        rows += [(tracker, cell, figures(result.path, cell)) for cell in CELLS]
    print(f"\nLight step 1 → {LightStep.LOW_SUNS:g} sun at {args.step_h:g} h, {args.after_h:g} h after it:")
    print(f"{'tracker':17} {'cell':10} {'eff. before %':>13} {'|ΔV| mV':>8} {'eff. after %':>12} {'settling':>10}")
    for tracker, cell, f in rows:
        settle = "never" if math.isinf(f["settle_s"]) else f"{f['settle_s']:.0f} s"
        print(f"{tracker:17} {cell:10} {100 * f['eff_before']:13.3f} {f['dv_mV']:8.2f} {100 * f['eff_after']:12.3f} "
              f"{settle:>10}")


if __name__ == "__main__":
    main()
