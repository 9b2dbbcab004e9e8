"""GUI responsiveness under a 1000 h, 64-channel aging run: stalls of the GUI thread, full-view redraw,
memory at 10 h and at 1000 h of data.

A writer in a second process feeds 64 channels — a tracked cell's PCE with its noise, one point per 10 s of
simulated time — at ``--rate`` points per second per channel of real time, in batches every 0.1 s, through a
pipe (as the engine's client link brings them). The GUI process holds a 1920×1080 window (offscreen) with the
live MPPT plot of all 64 channels and the aging dashboard's 64 tiles, fed through a Qt signal from a reader
thread through a :class:`labctl.gui.live_feed.LiveFeed` that hands the GUI thread everything gathered four
times a second, as the desktop GUI is fed.

Measured in the GUI process:
- **stalls**: a 10 ms timer on the GUI thread records how late each tick fires; the lateness during the feed
  is compared with an idle baseline taken in the same run, before the writer starts (p99 and max);
- **redraw**: the time to redraw the full 0–1000 h view of 64 channels (median of 9), and of the dashboard;
- **memory**: resident set size when the data reach 10 h and when they reach 1000 h.

    .venv/bin/python bench/gui_responsiveness.py [--rate 3000] [--channels 64] [--hours 1000]
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


def writer(conn: Connection, channels: int, rate: float, hours: float) -> None:
    """Batches of every channel every TICK_S of real time until ``hours`` of simulated data are sent."""
    per_tick = max(1, round(rate * TICK_S))
    total = int(hours * HOUR_S / STEP_S)
    rng = np.random.default_rng(7)
    loss_per_h = rng.uniform(1e-4, 6e-4, channels)
    sent = 0
    next_tick = time.monotonic()
    while sent < total:
        n = min(per_tick, total - sent)
        t = T0 + (sent + np.arange(n)) * STEP_S
        hours_now = (t - T0) / HOUR_S
        batch = {f"px{c:02d}": (t, 18.0 * np.exp(-loss_per_h[c] * hours_now) + rng.normal(0, 0.02, n))
                 for c in range(channels)}
        conn.send(batch)
        sent += n
        next_tick += TICK_S
        time.sleep(max(0.0, next_tick - time.monotonic()))
    conn.send(None)
    conn.close()


def rss_MB() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=3000.0, help="points per second per channel (real time)")
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

    state: dict[str, Any] = {"hours": 0.0, "rss_10h": None, "feed_start": None, "feed_end": None}

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

    process = mp.Process(target=writer, args=(child, args.channels, args.rate, args.hours), daemon=True)
    QTimer.singleShot(int(args.baseline_s * 1000), start_feed)
    began = time.perf_counter()
    app.exec()
    state["feed_end"] = time.perf_counter()
    rss_end = rss_MB()
    process.join(5)
    thread.quit()
    thread.wait(2000)

    baseline = [ms for t, ms in lateness if began + 0.5 < t < state["feed_start"]]
    during = [ms for t, ms in lateness if state["feed_start"] < t <= state["feed_end"]]
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
    feed_s = state["feed_end"] - state["feed_start"]
    points = int(args.hours * HOUR_S / STEP_S)

    def p99(values: list[float]) -> float:
        return float(np.percentile(values, 99)) if values else float("nan")

    print(f"channels {args.channels}, {args.rate:g} points/s per channel, one point per {STEP_S:g} s simulated: "
          f"{args.hours:g} h = {points:,} points per channel in {feed_s:.1f} s real "
          f"({args.hours / feed_s * 1:.1f} simulated h per real s); window 1920×1080 offscreen")
    print(f"GUI thread lateness of a {probe_interval_ms} ms timer, ms: idle baseline p99 {p99(baseline):.1f} "
          f"max {max(baseline, default=float('nan')):.1f} ({len(baseline)} ticks); during the feed p99 "
          f"{p99(during):.1f} max {max(during, default=float('nan')):.1f} ({len(during)} ticks)")
    print(f"  above baseline: p99 {p99(during) - p99(baseline):.1f} ms (target ≤ 50), max "
          f"{max(during, default=0) - max(baseline, default=0):.1f} ms (target ≤ 100)")
    print(f"full 0–{args.hours:g} h view of {args.channels} channels redrawn in {statistics.median(redraws):.1f} ms "
          f"(median of 9; target ≤ 50); dashboard metrics + refresh of {args.channels} tiles "
          f"{statistics.median(tiles):.0f} ms (median of 3, every 5 s in the GUI)")
    print(f"resident memory: at 10 h {state['rss_10h']:.0f} MB, at {args.hours:g} h {rss_end:.0f} MB, ratio "
          f"{rss_end / state['rss_10h']:.2f} (target ≤ 1.5)")


if __name__ == "__main__":
    main()
