"""Scale of an MPPT aging run: every channel of ``sim-aging`` (19 cells: 7 on their own SMU channels, 12
time-shared through a matrix and a relay multiplexer) at one tracking point per ``--interval`` s, virtual time.

Prints the wall time, simulated hours per real second, tracking points written, peak resident memory
(``resource.getrusage``) and the resident memory at every tenth of the run (flat memory: a 1000 h run must
not grow with its length). With ``--profile`` every thread runs under cProfile and the own time of every
function is summed by where it lives — tracker (procedures/), driver (drivers/), mock instruments
(mock_instruments/ except the cell physics), physics (the cell models: device, diode, ions, degradation,
cell_dynamics, tandem, light, world, stepping), store (labctl/store/), runner (labctl/runner/ and the rest of
labctl), numpy/h5py and other C code — and divided by the tracking points. Waiting (lock acquires: the
channels' threads taking turns on the virtual clock) is left out of the breakdown. Profiling slows the run
several times: its wall time is not the run's.

    .venv/bin/python bench/mppt_scale.py --hours 100            # the figures in docs/benchmarks.md
    .venv/bin/python bench/mppt_scale.py --hours 10 --profile   # the per-point breakdown
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

from labctl.runner import Progress, Runner
from labctl.station import Station
from labctl.store import RunReader
from procedures.mppt_aging import MPPTAging

PHYSICS = ("device.py", "diode.py", "ions.py", "degradation.py", "cell_dynamics.py", "tandem.py", "light.py",
           "world.py", "world_parts.py", "stepping.py", "reference_device.py", "cryostat.py",
           "temperature_loop.py", "spectrum.py", "capacitance.py", "cell_admittance.py")


def rss_MB() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def category(filename: str, function: str) -> str | None:
    if "acquire" in function or function.endswith("wait") or "sleep" in function:
        return None  # waiting for a turn, not work
    path = filename.replace("\\", "/")
    if "/procedures/" in path:
        return "tracker (procedures)"
    if "/drivers/" in path:
        return "driver"
    if "/mock_instruments/" in path:
        return "physics" if path.rsplit("/", 1)[-1] in PHYSICS else "mock instrument"
    if "/labctl/store/" in path:
        return "store"
    if "/labctl/" in path:
        return "runner and the rest of labctl"
    if "numpy" in path or "scipy" in path:
        return "numpy/scipy (python side)"
    if "h5py" in path:
        return "h5py (python side)"
    if path == "~":
        return "C code (numpy, h5py, builtins)"
    return "python stdlib and other"


class ThreadProfiles:
    """cProfile in every thread started while it is active (the channels, the background tasks, the store's
    flusher), merged at the end."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._original = threading.Thread.run

    def __enter__(self) -> ThreadProfiles:
        profiles, original = self.profiles, self._original

        def run(thread: threading.Thread) -> None:
            profile = cProfile.Profile()
            profiles.append(profile)
            profile.runcall(original, thread)

        threading.Thread.run = run  # type: ignore[method-assign]
        main = cProfile.Profile()
        self.profiles.append(main)
        main.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        self.profiles[0].disable()
        threading.Thread.run = self._original  # type: ignore[method-assign]

    def by_category(self) -> dict[str, float]:
        stats = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            try:
                stats.add(profile)
            except TypeError:  # a thread that never ran
                continue
        totals: dict[str, float] = defaultdict(float)
        for (filename, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
            found = category(filename, function)
            if found is not None:
                totals[found] += row[2]  # own time
        return dict(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=10.0, help="tracking-point interval per channel (s)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(mkdtemp(prefix="mppt_scale_"))
    proc = MPPTAging(samples=["all"], preset="ISOS-L-1", duration_h=args.hours, interval_s=args.interval)
    runner = Runner(proc, station=Station.load("sim-aging"), directory=out)
    memory: list[tuple[float, float]] = [(0.0, rss_MB())]
    started = time.perf_counter()

    def sample(event: Any) -> None:
        if isinstance(event, Progress) and event.fraction >= 0.1 * len(memory) - 1e-9:
            memory.append((event.fraction, rss_MB()))
            print(f"  {100 * event.fraction:3.0f} %  {time.perf_counter() - started:7.0f} s  "
                  f"RSS {memory[-1][1]:.0f} MB", file=sys.stderr, flush=True)

    runner.subscribe(sample)
    profiles = ThreadProfiles() if args.profile else None
    if profiles is not None:
        with profiles:
            result = runner.run()
    else:
        result = runner.run()
    wall = time.perf_counter() - started
    peak_MB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    with RunReader(result.path) as reader:
        channels = [n for n in reader.block_names() if n.startswith("mppt_")]
        points = sum(reader.info(n).n_rows for n in channels)
    size_MB = result.path.stat().st_size / 1e6
    print(f"{len(channels)} channels × {args.hours:g} h at one point per {args.interval:g} s per channel "
          f"({'profiled' if profiles else 'not profiled'}): {result.status}")
    print(f"  wall time {wall:.1f} s, {args.hours / wall:.2f} simulated h per real s, "
          f"{points} tracking points ({points / wall:.0f} per real s, {1e6 * wall / points:.0f} µs per point)")
    print(f"  peak RSS {peak_MB:.0f} MB; RSS at each tenth: " + ", ".join(f"{m:.0f}" for _, m in memory) + " MB")
    print(f"  file {size_MB:.1f} MB ({1e3 * size_MB / max(points, 1):.2f} kB per point): {result.path}")
    if args.hours < 1000:
        scale = 1000.0 / args.hours
        print(f"  1000 h extrapolated linearly: {wall * scale / 60:.1f} min wall time")
    if profiles is not None:
        totals = profiles.by_category()
        work = sum(totals.values())
        print("  own CPU time per tracking point by where it is spent (waiting excluded):")
        for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
            print(f"    {name:34} {1e6 * seconds / points:8.1f} µs  {100 * seconds / work:5.1f} %")


if __name__ == "__main__":
    main()
