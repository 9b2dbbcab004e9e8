"""A 201-point J–V scan through the whole stack on the simulated bench, against the same driver calls alone.

Whole stack: `Runner` + `JVHysteresis` (validation, connecting the station, light set-up, one timed reverse
sweep, HDF5 block, safe state, file closed). Bare loop: the same station connected once, then the same
driver calls (select pixel, NPLC, compliance, light on, one `sweep_voltage` of 201 points, output off).
Both on the simulated bench in virtual time, so the figures are the software's own cost.

Run: .venv/bin/python bench/jv_stack.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labctl.bench import Bench
from labctl.runner import Runner
from labctl.station import Station
from procedures.jv_hysteresis import JVHysteresis

POINTS = 201
REPEATS = 5
SAMPLE = "wbg_5avai"


def whole_stack(station: Station, directory: Path) -> float:
    proc = JVHysteresis(sample=[SAMPLE], v_min_V=-0.1, v_max_V=1.45, n_points=POINTS, scan_rates_V_s=[1.0],
                        direction="RS", nplc=0.01)
    started = time.perf_counter()
    result = Runner(proc, station=station, directory=directory).run()
    elapsed = time.perf_counter() - started
    assert result.status == "completed", result.reason
    return elapsed


def bare_driver_calls(station: Station) -> float:
    started = time.perf_counter()
    bench = Bench.connect(station, ["smu", "matrix", "sun", "hotstage"])
    try:
        smu, light = bench.source_meter(SAMPLE), bench.light(SAMPLE)
        bench.select(SAMPLE)
        smu.set_nplc(0.01)
        smu.set_compliance_current(0.004)
        light.set_intensity_suns(1.0)
        light.open_shutter()
        voltages = np.linspace(1.45, -0.1, POINTS)
        smu.source_voltage(float(voltages[0]))
        smu.output_on()
        result = smu.sweep_voltage(voltages, (1.45 + 0.1) / (POINTS - 1) / 1.0)
        assert result.voltage_V.size == POINTS
        smu.output_off()
        bench.safe_state_all()
    finally:
        bench.close()
    return time.perf_counter() - started


def software_stepped(station: Station) -> float:
    """For comparison: the same 201 points stepped from Python (set level, read), one exchange per point."""
    bench = Bench.connect(station, ["smu", "matrix", "sun", "hotstage"])
    try:
        smu, light = bench.source_meter(SAMPLE), bench.light(SAMPLE)
        bench.select(SAMPLE)
        smu.set_nplc(0.01)
        smu.set_compliance_current(0.004)
        light.open_shutter()
        smu.output_on()
        started = time.perf_counter()
        for voltage in np.linspace(1.45, -0.1, POINTS):
            smu.source_voltage(float(voltage))
            smu.measure()
        elapsed = time.perf_counter() - started
        smu.output_off()
    finally:
        bench.close()
    return elapsed


def main() -> None:
    station = Station.load("sim")
    with tempfile.TemporaryDirectory() as tmp:
        whole_stack(station, Path(tmp))  # warm imports and caches
        bare_driver_calls(station)
        stack = [whole_stack(station, Path(tmp)) for _ in range(REPEATS)]
        bare = [bare_driver_calls(station) for _ in range(REPEATS)]
        stepped = [software_stepped(station) for _ in range(REPEATS)]
    best_stack, best_bare = min(stack), min(bare)
    print(f"201-point J–V on the simulated bench ({REPEATS} runs each, best and median)")
    print(f"  whole stack (runner, procedure, HDF5):  best {best_stack * 1e3:7.1f} ms   "
          f"median {statistics.median(stack) * 1e3:7.1f} ms")
    print(f"  bare driver calls, same instruments:    best {best_bare * 1e3:7.1f} ms   "
          f"median {statistics.median(bare) * 1e3:7.1f} ms")
    print(f"  ratio whole stack / bare (best):        {best_stack / best_bare:5.2f}")
    print(f"  software-stepped loop, 201 × (set, read): best {min(stepped) * 1e3:7.1f} ms  "
          f"({min(stepped) / POINTS * 1e6:.0f} µs per point; the sweep itself is instrument-timed)")


if __name__ == "__main__":
    main()
