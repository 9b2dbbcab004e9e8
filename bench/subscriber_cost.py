"""Acquisition rate with and without a subscriber that takes 50 ms per event (target: ratio ≥ 0.95).

Two workloads run on the acquisition thread of one long run each:

- *SMU readings* (the target): the Keithley 2450 of the built-in simulated station reads the wbg_ref cell
  at 1.0 V as fast as it answers (driver, SCPI, the cell's physics: what a reading costs on the simulated
  bench), one ``append_row`` per reading, a progress report every 100;
- *bare appends* (the worst case, for information): ``append_row`` alone, as fast as the run file takes rows
  — every microsecond spent handing an event over shows here.

While the run goes on, the subscriber is switched every ``--period`` seconds through three states: *none*,
*fast* (returns at once: what handing events over costs) and *slow* (sleeps 50 ms per event). The machine
this runs on is shared and its load changes from minute to minute; comparing adjacent periods of one run
keeps that out of the ratios far better than comparing separate runs.

- *in-process*: the run's own subscribers (``runner.bus.subscribers``; the EventBus hands events over on its
  own thread and coalesces data);
- *engine*: the run submitted to a ``labctl engine`` process, and a client **process** that attaches
  (``watch``) and detaches: none = no client attached, fast = a client reading its events as they come,
  slow = a client reading one event every 50 ms (the engine's per-client outbox coalesces for it and the
  socket's back-pressure stops at that client's writer thread).

With each row the procedure records the real time (``labctl.clock.real_elapsed_s``, the system's monotonic
clock, common to both processes) and the CPU time of the process that acquires (``time.process_time``: every
thread of it — acquisition, event hand-over, file flushing, the engine's encoding for its clients; not the
client process). Rows are assigned to the state of their period (the first 0.1 s after a switch left out);
per period, the **CPU rate** = rows / CPU seconds is the figure compared — the threads share one
interpreter lock, so it is the rate the acquisition gets on a core of its own, and waiting for a core on a
loaded machine does not count; the wall-clock rate is printed beside it. Each slow (fast) period is compared
with the mean of the none periods on either side of it, and the median of these ratios is reported with its
quartiles; the ratio of the median rates is printed too.

    .venv/bin/python bench/subscriber_cost.py [--seconds 45] [--period 1.5] [--only in-process|engine]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from labctl.clock import RealClock, real_elapsed_s
from labctl.runner import FloatParameter, Procedure, RunContext, Runner, TextParameter
from labctl.station import Station
from labctl.store import RunReader

BENCH_DIR = Path(__file__).resolve().parent
SLEEP_S = 0.05
STATES = ("none", "fast", "slow")
SETTLE_S = 0.1


class Acquire(Procedure):
    """Readings as fast as they come for ``seconds`` of real time: of the sample's SMU, or bare appends."""

    name = "acquire"
    title = "bench: readings as fast as possible"
    seconds = FloatParameter("how long", unit="s", default=30.0, minimum=0.1, maximum=3600.0)
    sample = TextParameter("sample whose SMU is read ('': bare appends)", default="")

    def instruments_needed(self, station: Any) -> list[str]:
        if not self.sample:
            return []
        spec = station.sample(self.sample)
        return [name for name in (spec.smu, spec.switch) if name]

    def execute(self, ctx: RunContext) -> None:
        block = ctx.create_block("readings", {"index": "", "real_s": "s", "cpu_s": "s", "voltage_V": "V",
                                              "current_A": "A"})
        smu = None
        if self.sample:
            assert ctx.bench is not None
            ctx.bench.select(self.sample)
            smu = ctx.bench.source_meter(self.sample)
            smu.set_compliance_current(0.01)
            smu.source_voltage(1.0)
            smu.output_on()
        end = real_elapsed_s() + self.seconds
        i = 0
        while (now := real_elapsed_s()) < end:
            voltage, current = smu.measure() if smu is not None else (0.0, 0.0)
            block.append_row(index=float(i), real_s=now, cpu_s=time.process_time(), voltage_V=voltage,
                             current_A=current)
            if i % 100 == 0:
                ctx.progress(1.0 - (end - now) / self.seconds, f"reading {i}")
            i += 1
        if smu is not None:
            smu.output_off()


def analyse(path: Path, switches: list[tuple[float, str]]) -> dict[str, list[float]]:
    """Per-period rates from the file; the ratios slow/none and fast/none against the preceding none period."""
    with RunReader(path) as reader:
        assert reader.status == "completed", reader.attrs.get("end_reason")
        block = reader.block("readings")
        real, cpu = block["real_s"], block["cpu_s"]
    periods: list[tuple[str, float, float]] = []  # state, CPU rate, wall rate
    for (start, state), (end, _next) in zip(switches, [*switches[1:], (np.inf, "")], strict=True):
        inside = (real >= start + SETTLE_S) & (real < end)
        if inside.sum() < 20:
            continue
        r, c = real[inside], cpu[inside]
        periods.append((state, (r.size - 1) / float(c[-1] - c[0]), (r.size - 1) / float(r[-1] - r[0])))
    out: dict[str, list[float]] = {f"{s} cpu": [] for s in STATES} | {f"{s} wall": [] for s in STATES}
    out |= {"slow/none": [], "fast/none": []}
    for n, (state, cpu_rate, wall_rate) in enumerate(periods):
        out[f"{state} cpu"].append(cpu_rate)
        out[f"{state} wall"].append(wall_rate)
        if state == "none":
            continue
        # Against the none periods on either side of it: load that drifts during the cycle cancels out.
        before = next((p[1] for p in reversed(periods[:n]) if p[0] == "none"), None)
        after = next((p[1] for p in periods[n + 1:] if p[0] == "none"), None)
        if before is not None and after is not None:
            out[f"{state}/none"].append(cpu_rate / (0.5 * (before + after)))
    return out


def report(name: str, figures: dict[str, list[float]]) -> float:
    rates = "  ".join(f"{s} {statistics.median(figures[s + ' cpu']):8.0f} "
                      f"({statistics.median(figures[s + ' wall']):8.0f})" for s in STATES)
    slow, fast = figures["slow/none"], figures["fast/none"]
    of_medians = statistics.median(figures["slow cpu"]) / statistics.median(figures["none cpu"])
    print(f"{name}\n  median readings per CPU second (per wall second): {rates}; slow/none of the medians "
          f"{of_medians:.3f}")
    print(f"  ratio fast/none: median {statistics.median(fast):.3f} over {len(fast)} periods "
          f"(quartiles {np.percentile(fast, 25):.3f} … {np.percentile(fast, 75):.3f})")
    print(f"  ratio slow/none: median {statistics.median(slow):.3f} over {len(slow)} periods "
          f"(quartiles {np.percentile(slow, 25):.3f} … {np.percentile(slow, 75):.3f})")
    return statistics.median(slow)


def _sleepy(event: Any) -> None:
    time.sleep(SLEEP_S)


def in_process(parameters: dict[str, Any], period_s: float, directory: Path) -> dict[str, list[float]]:
    station = Station.load("sim") if parameters.get("sample") else None
    runner = Runner(Acquire(**parameters), station=station, directory=directory,
                    clock=None if station else RealClock())
    switches: list[tuple[float, str]] = []
    done = threading.Event()

    def toggle() -> None:
        subscribers = {"none": [], "fast": [lambda event: None], "slow": [_sleepy]}
        n = 0
        while not done.is_set():
            state = STATES[n % 3]
            runner.bus.subscribers[:] = subscribers[state]
            switches.append((real_elapsed_s(), state))
            done.wait(period_s)
            n += 1

    toggler = threading.Thread(target=toggle, daemon=True)
    toggler.start()
    result = runner.run()
    done.set()
    toggler.join()
    return analyse(result.path, switches)


CLIENT = """
import sys, time
from labctl.clock import RealClock, real_elapsed_s
from labctl.engine import EngineClient
state_dir, period, total = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
end = real_elapsed_s() + total
n = 0
while real_elapsed_s() < end:
    state = ("none", "fast", "slow")[n % 3]
    n += 1
    until = real_elapsed_s() + period
    if state == "none":
        print(real_elapsed_s(), state, flush=True)
        time.sleep(max(0.0, until - real_elapsed_s()))
        continue
    with EngineClient.open(state_dir, client="bench " + state) as client:
        client.watch()
        print(real_elapsed_s(), state, flush=True)
        while real_elapsed_s() < until:
            for message in client.events(timeout_s=max(0.001, until - real_elapsed_s())):
                if state == "slow":
                    time.sleep(0.05)
                if real_elapsed_s() >= until:
                    break
"""


def through_engine(parameters: dict[str, Any], period_s: float, home: Path, env: dict[str, str]
                   ) -> dict[str, list[float]]:
    from labctl.engine import EngineClient

    state_dir = home / "state"
    engine = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "engine", "start", "--foreground", "--station", "sim", "--state-dir",
         str(state_dir), "--data-dir", str(home / "data")], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        assert engine.stdout is not None
        for line in engine.stdout:
            if line.startswith("engine of station"):
                break
        with EngineClient.open(state_dir, client="bench") as client:
            client.watch()
            uid = client.submit("subscriber_cost:Acquire", parameters=parameters)["uid"]
            for message in client.events(timeout_s=60):
                if message.get("event") == "status" and message.get("status") == "running":
                    break
            toggler = subprocess.Popen([sys.executable, "-c", CLIENT, str(state_dir), str(period_s),
                                        str(parameters["seconds"] - 2 * period_s)], env=env, stdout=subprocess.PIPE,
                                       text=True)
            out, _ = toggler.communicate()
            ended = client.wait_for_end(uid, timeout_s=600)
        assert ended is not None
        switches = [(float(t), state) for t, state in (line.split() for line in out.splitlines())]
        return analyse(Path(ended["file"]), switches)
    finally:
        engine.send_signal(signal.SIGTERM)
        engine.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=45.0, help="length of each run, s")
    parser.add_argument("--period", type=float, default=1.5, help="how long each subscriber state lasts, s")
    parser.add_argument("--only", choices=["in-process", "engine"], default=None, help="one set-up only")
    args = parser.parse_args()
    readings = {"seconds": args.seconds, "sample": "wbg_ref"}
    appends = {"seconds": args.seconds}
    targets = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["LABCTL_HOME"] = str(home / "labctl-home")  # locks and engine state of this benchmark only
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(BENCH_DIR), os.environ.get("PYTHONPATH", "")) if p))
        if args.only in (None, "in-process"):
            targets.append(report("SMU readings, in-process", in_process(readings, args.period, home / "runs")))
            report("bare appends, in-process", in_process(appends, args.period, home / "runs"))
        if args.only in (None, "engine"):
            targets.append(report("SMU readings, engine", through_engine(readings, args.period, home, env)))
            report("bare appends, engine", through_engine(appends, args.period, home, env))
    print(f"target (SMU readings): median ratio slow/none >= 0.95: "
          f"{'met' if min(targets) >= 0.95 else 'NOT met'} (lowest {min(targets):.3f})")


if __name__ == "__main__":
    main()
