"""Latency from abort to safe state, at random moments of an instrument-timed sweep, in-process and over TCP.

Each trial runs the J–V procedure on real time: a dark 0 → 0.3 V forward scan at 0.01 V/s (31 points, one
per second, timed by the Keithley 2450 itself) on a one-SMU simulated station. A random moment 0.2–5 s after
the SMU's output came on, the run is aborted (as the abort button, Ctrl-C and SIGTERM do); a watcher polls
the mock's output state every 2 ms. Reported: abort → output off (the safe state the cell sees) and abort →
``Runner.run()`` returned (safe state, events, file closed), median and max over the trials.

- in-process: the driver talks to the mock through the in-process adapter;
- TCP: the same mock behind ``mock_instruments.server`` (what `labctl sim serve` runs, on real time), the
  driver through pyvisa-py sockets.

    .venv/bin/python bench/abort_latency.py [--trials N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from labctl.bench import Bench
from labctl.clock import RealClock
from labctl.runner import Runner
from labctl.sim_bench import build_world, served_station_text
from labctl.station import Station
from mock_instruments.server import serve
from procedures.jv_hysteresis import JVHysteresis

STATION = """
name = "abort-bench"
[instruments.smu]
driver = "keithley2450"
address = "sim://keithley2450"
[samples.cell]
area_cm2 = 0.1
smu = "smu"
voltage_min_V = -0.5
voltage_max_V = 1.6
current_max_mA = 10.0
[sim]
seed = 3
[sim.devices.cell]
preset = "wbg_ref"
"""


def procedure() -> JVHysteresis:
    return JVHysteresis(sample=["cell"], v_min_V=0.0, v_max_V=0.3, step_V=0.01, scan_rates_V_s=[0.01],
                        suns=0.0, direction="FS")


def output_on(mock: Any) -> bool:
    session = mock.connect()
    session.write(":OUTP?")
    return session.read() == "1"


def trial(runner: Runner, mock: Any, delay_s: float) -> tuple[float, float]:
    marks: dict[str, float] = {}

    def controller() -> None:
        while not output_on(mock):
            time.sleep(0.005)
        time.sleep(delay_s)
        marks["abort"] = time.monotonic()
        runner.abort("benchmark abort")
        while output_on(mock):
            time.sleep(0.002)
        marks["off"] = time.monotonic()

    thread = threading.Thread(target=controller, daemon=True)
    thread.start()
    result = runner.run()
    returned = time.monotonic()
    thread.join(10)
    assert result.status == "aborted", result
    return marks["off"] - marks["abort"], returned - marks["abort"]


def in_process(directory: Path, delay_s: float) -> tuple[float, float]:
    station = Station.from_text(STATION, source="abort-bench")
    bench = Bench.connect(station, ["smu"], clock=RealClock())
    try:
        runner = Runner(procedure(), bench=bench, directory=directory)
        return trial(runner, bench.simulation.mocks["smu"], delay_s)
    finally:
        bench.close()


def over_tcp(directory: Path, delay_s: float) -> tuple[float, float]:
    station = Station.from_text(STATION, source="abort-bench")
    simulation = build_world(station, RealClock())
    with serve(simulation.mocks, port_base=0) as server:
        served = Station.from_text(served_station_text(station, server.endpoints), source="served")
        runner = Runner(procedure(), station=served, directory=directory, clock=RealClock())
        return trial(runner, simulation.mocks["smu"], delay_s)


def summary(name: str, values: list[float]) -> str:
    ms = [v * 1e3 for v in values]
    return f"{name:34s} median {statistics.median(ms):7.1f} ms   max {max(ms):7.1f} ms   (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    results: dict[str, list[tuple[float, float]]] = {"in-process": [], "TCP (sim serve)": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.trials):
            for name, path in (("in-process", in_process), ("TCP (sim serve)", over_tcp)):
                results[name].append(path(Path(tmp), rng.uniform(0.2, 5.0)))
            print(f"trial {k + 1}/{args.trials} done", flush=True)
    print(f"abort at a random moment 0.2–5 s into a 30 s instrument-timed sweep, {args.trials} trials each")
    for name, pairs in results.items():
        print(summary(f"{name}: abort → output off", [p[0] for p in pairs]))
        print(summary(f"{name}: abort → run() returned", [p[1] for p in pairs]))


if __name__ == "__main__":
    main()
