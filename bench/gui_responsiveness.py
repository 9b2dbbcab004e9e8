"""GUI responsiveness under a 1000 h, 64-channel aging run: stalls of the GUI thread, full-view redraw,
memory at 10 h and at 1000 h of data.

A writer in a second process feeds 64 channels — a tracked cell's PCE with its noise, one point per 10 s of
simulated time — in batches every 0.1 s through a pipe (as the engine's client link brings them): first as fast
as ``--catch-up-rate`` until every channel holds ``--hours`` of data, then for ``--live-s`` seconds at the live
rate ``--live-rate`` points per second per channel (10: a tracking point per 0.1 s, ten times what a
one-second tracker sends). The GUI process holds a 1920×1080 window (offscreen) with the
live MPPT plot of all 64 channels and the aging dashboard's 64 tiles, fed through a Qt signal from a reader
thread through a :class:`labctl.gui.live_feed.LiveFeed` that hands the GUI thread everything gathered four
times a second, as the desktop GUI is fed.

Measured in the GUI process:
- **stalls**: a 10 ms timer on the GUI thread records how late each tick fires; the lateness during the live
  phase, with 1000 h in every channel, is compared with an idle baseline taken in the same run before the
  writer starts (p99 and max); the lateness while catching up is printed for information;
- **redraw**: the time to redraw the full 0–1000 h view of 64 channels (median of 9), and of the dashboard;
- **memory**: resident set size when the data reach 10 h and when they reach 1000 h.

    .venv/bin/python bench/gui_responsiveness.py [--live-rate 10] [--channels 64] [--hours 1000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

STEP_S = 10.0  # simulated seconds between tracking points
TICK_S = 0.1  # real seconds between batches
T0 = 1.8e9
HOUR_S = 3600.0


def writer(conn: Connection, channels: int, catch_up_rate: float, hours: float, live_rate: float,
           live_s: float) -> None:
    """Every channel's batches every TICK_S of real time: at ``catch_up_rate`` points/s per channel until
    ``hours`` of simulated data are sent, then a "live" marker and ``live_s`` seconds at ``live_rate``."""
    rng = np.random.default_rng(7)
    loss_per_h = rng.uniform(1e-4, 6e-4, channels)
    total = int(hours * HOUR_S / STEP_S)
    sent = 0

    def send(n: int) -> None:
        nonlocal sent
        t = T0 + (sent + np.arange(n)) * STEP_S
        hours_now = (t - T0) / HOUR_S
        conn.send({f"px{c:02d}": (t, 18.0 * np.exp(-loss_per_h[c] * hours_now) + rng.normal(0, 0.02, n))
                   for c in range(channels)})
        sent += n

    next_tick = time.monotonic()
    while sent < total:
        send(min(max(1, round(catch_up_rate * TICK_S)), total - sent))
        next_tick += TICK_S
        time.sleep(max(0.0, next_tick - time.monotonic()))
    conn.send("live")
    carry = 0.0
    end = time.monotonic() + live_s
    next_tick = time.monotonic()
    while time.monotonic() < end:
        carry += live_rate * TICK_S
        if carry >= 1:
            send(int(carry))
            carry -= int(carry)
        next_tick += TICK_S
        time.sleep(max(0.0, next_tick - time.monotonic()))
    conn.send(None)
    conn.close()


def rss_MB() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live-rate", type=float, default=10.0,
                        help="points per second per channel while stalls are measured (real time)")
    parser.add_argument("--live-s", type=float, default=30.0, help="seconds of the live phase")
    parser.add_argument("--catch-up-rate", type=float, default=6000.0,
                        help="points per second per channel until the data reach --hours")
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--hours", type=float, default=1000.0)
    parser.add_argument("--baseline-s", type=float, default=5.0)
    args = parser.parse_args()

    from PyQt6.QtCore import QObject, QThread, QTimer, pyqtSignal
    from PyQt6.QtWidgets import QApplication, QSplitter

    from labctl.gui.dashboard import AgingDashboard
    from labctl.gui.live_feed import LiveFeed
    from labctl.gui.live_plot import LivePlot

    app = QApplication(sys.argv[:1])
    names = [f"px{c:02d}" for c in range(args.channels)]
    window = QSplitter()
    plot = LivePlot("MPPT: PCE of every channel", "PCE", "%")
    dashboard = AgingDashboard(names)
    window.addWidget(plot)
    window.addWidget(dashboard)
    window.resize(1920, 1080)
    window.setSizes([1100, 820])
    window.show()

    feed = LiveFeed()

    class Reader(QObject):
        done = pyqtSignal()

        def __init__(self, conn: Connection) -> None:
            super().__init__()
            self.conn = conn

        def run(self) -> None:
            while True:
                item = self.conn.recv()
                if item is None:
                    self.done.emit()
                    return
                if item == "live":
                    state["live_start"] = time.perf_counter()
                    state["rss_end_catch_up"] = rss_MB()
                    continue
                for name, (t, pce) in item.items():  # as the engine bridge does with each DataRows
                    feed.put(name, {"time_s": t, "pce_pct": pce})

    lateness: list[tuple[float, float]] = []  # (real time, ms late)
    probe_interval_ms = 10
    last = [time.perf_counter()]

    def probe() -> None:
        now = time.perf_counter()
        lateness.append((now, max(0.0, (now - last[0]) * 1e3 - probe_interval_ms)))
        last[0] = now

    probe_timer = QTimer()
    probe_timer.timeout.connect(probe)
    probe_timer.start(probe_interval_ms)

    state: dict[str, Any] = {"hours": 0.0, "rss_10h": None, "feed_start": None, "feed_end": None,
                             "live_start": None, "rss_end_catch_up": None}

    def on_batch(batch: dict[str, dict[str, np.ndarray]]) -> None:
        for name, columns in batch.items():
            plot.add_points(name, columns["time_s"], columns["pce_pct"])
            dashboard.add_points(name, columns["time_s"], columns["pce_pct"])
        state["hours"] = float((next(iter(batch.values()))["time_s"][-1] - T0) / HOUR_S)
        if state["rss_10h"] is None and state["hours"] >= 10.0:
            state["rss_10h"] = rss_MB()

    parent, child = mp.Pipe(duplex=False)
    reader = Reader(parent)
    thread = QThread()
    reader.moveToThread(thread)
    thread.started.connect(reader.run)
    feed.delivered.connect(on_batch)
    reader.done.connect(lambda: (feed.drain(), app.quit()))

    def start_feed() -> None:
        state["feed_start"] = time.perf_counter()
        process.start()
        child.close()
        thread.start()

    process = mp.Process(target=writer, args=(child, args.channels, args.catch_up_rate, args.hours, args.live_rate,
                                              args.live_s), daemon=True)
    QTimer.singleShot(int(args.baseline_s * 1000), start_feed)
    began = time.perf_counter()
    app.exec()
    state["feed_end"] = time.perf_counter()
    rss_end = rss_MB()
    process.join(5)
    thread.quit()
    thread.wait(2000)

    baseline = [ms for t, ms in lateness if began + 0.5 < t < state["feed_start"]]
    live_start = state["live_start"] or state["feed_end"]
    catching_up = [ms for t, ms in lateness if state["feed_start"] < t <= live_start]
    during = [ms for t, ms in lateness if live_start + 1.0 < t <= state["feed_end"]]
    plot.plot.enableAutoRange()
    redraws = []
    for _ in range(9):
        redraws.append(plot.redraw() * 1e3)
        app.processEvents()
    tiles = []
    for _ in range(3):
        start = time.perf_counter()
        for tile in dashboard.tiles.values():
            tile.refresh()
        app.processEvents()
        tiles.append((time.perf_counter() - start) * 1e3)
    catch_up_s = live_start - state["feed_start"]
    points = int(args.hours * HOUR_S / STEP_S)

    def p99(values: list[float]) -> float:
        return float(np.percentile(values, 99)) if values else float("nan")

    def worst(values: list[float]) -> float:
        return max(values, default=float("nan"))

    print(f"{args.channels} channels, one point per {STEP_S:g} s of simulated time, window 1920×1080 offscreen")
    print(f"catch-up: {args.hours:g} h = {points:,} points per channel at {args.catch_up_rate:g} points/s per "
          f"channel in {catch_up_s:.1f} s real ({args.hours / catch_up_s:.1f} simulated h per real s); GUI thread "
          f"lateness meanwhile p99 {p99(catching_up):.0f} ms, max {worst(catching_up):.0f} ms")
    print(f"live, with {args.hours:g} h in every channel: {args.live_rate:g} points/s per channel "
          f"({args.live_rate * args.channels:g} rows/s) for {args.live_s:g} s")
    print(f"  lateness of a {probe_interval_ms} ms timer on the GUI thread, ms: idle baseline p99 {p99(baseline):.1f} "
          f"max {worst(baseline):.1f} ({len(baseline)} ticks); live p99 {p99(during):.1f} max {worst(during):.1f} "
          f"({len(during)} ticks)")
    print(f"  above baseline: p99 {p99(during) - p99(baseline):.1f} ms (target ≤ 50), max "
          f"{worst(during) - worst(baseline):.1f} ms (target ≤ 100)")
    print(f"full 0–{args.hours:g} h view of {args.channels} channels redrawn in {statistics.median(redraws):.1f} ms "
          f"(median of 9; target ≤ 50); dashboard refresh of {args.channels} tiles "
          f"{statistics.median(tiles):.0f} ms (median of 3, every 1 s; T80 so far on a worker thread)")
    print(f"resident memory: at 10 h {state['rss_10h']:.0f} MB, at {args.hours:g} h "
          f"{state['rss_end_catch_up']:.0f} MB (ratio {state['rss_end_catch_up'] / state['rss_10h']:.2f}, target ≤ "
          f"1.5), after the live phase {rss_end:.0f} MB")


if __name__ == "__main__":
    main()
