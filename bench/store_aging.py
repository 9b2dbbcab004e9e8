"""The run file at aging scale: 64 channels x 5 columns x 1 Hz, in simulated time up to 1000 h.

    .venv/bin/python bench/store_aging.py [--hours 1000] [--channels 64] [--keep FILE]

Writer: the file is filled in simulated time (4-hour array appends per channel, which go straight to
compressed chunks) and, when it holds 0, 100 and 1000 h, driven as a real run drives it: every 0.5 s of
the run, 32 channels append one row each (64 rows/s) and a flush cycle runs. Over 8,200 such cycles
(every channel crosses a chunk boundary once) it prints the cycle's real time (median, p99, max) and the
process CPU per row, and what that CPU is at a real 64 rows/s.

Size: stored bytes per value of the finished file (MPPT-like data of bench/mppt_like.py: the simulated
bench's cell model at its maximum power point with the 2450's noise and 8-digit readings), against 8 for
raw float64, and the compressed column data alone.

Reads on the finished file (medians, with the machine's idle baseline: a fixed numpy sort):
a 1 h window of one channel, one whole channel decimated to 2,000 bins, all channels decimated.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import mppt_like

from labctl.clock import VirtualClock
from labctl.store import RunReader, RunWriter

PRESETS = ("wbg_5avai", "wbg_ref", "fapbi3", "tandem")
FEED_HOURS = 4
SAMPLE_CYCLES = 8200
TARGET_CPU_PCT = 5.0


def make_channels(writer: RunWriter, n: int) -> list:
    return [writer.create_block(f"mpp_{c:02d}", mppt_like.COLUMNS, {"channel": c, "pixel": f"P{c:02d}"},
                                expected_rows=3_600_000, single_precision=mppt_like.SINGLE_PRECISION)
            for c in range(n)]


def feed(blocks: list, trajs: list[np.ndarray], from_s: int, to_s: int, rng: np.random.Generator,
         writer: RunWriter) -> None:
    step = FEED_HOURS * 3600
    for a in range(from_s, to_s, step):
        n = min(step, to_s - a)
        for c, blk in enumerate(blocks):
            blk.append_columns(mppt_like.rows(trajs[c % len(trajs)], a, n, rng, scale=1.0 + 0.002 * c))
        writer.flush()


def sample(writer: RunWriter, blocks: list, trajs: list[np.ndarray], at_s: int, rng: np.random.Generator
           ) -> tuple[list[float], float, int]:
    """Real-run cycles: each cycle, half the channels append one row; returns (cycle times, CPU s, rows)."""
    half = len(blocks) // 2
    n_s = SAMPLE_CYCLES // 2 + 1
    # the rows are made before the clock starts: only the writer's work is timed
    ready = []
    for blk in blocks:
        c = blk.index
        cols = mppt_like.rows(trajs[c % len(trajs)], at_s, n_s, rng, scale=1.0 + 0.002 * c)
        names, lists = list(cols), [v.tolist() for v in cols.values()]
        ready.append([dict(zip(names, values, strict=True)) for values in zip(*lists, strict=True)])
    times: list[float] = []
    cpu0 = time.process_time()
    n_rows = 0
    for k in range(SAMPLE_CYCLES):
        group = blocks[:half] if k % 2 == 0 else blocks[half:]
        for blk in group:
            blk.append_row(ready[blk.index][k // 2])
        n_rows += len(group)
        writer.cycle_times_s.clear()
        writer.flush()
        times.append(writer.cycle_times_s[-1])
    return times, time.process_time() - cpu0, n_rows


LIVE_READER = """
import statistics, sys, time
from labctl.store import RunReader
path, name = sys.argv[1], sys.argv[2]
runs = []
for _ in range(7):
    t0 = time.perf_counter()
    with RunReader(path) as r:  # what a GUI does every second: reopen, read the newest hour
        n = r.info(name).n_rows
        last = r.rows(name, n - 1, n, ["time_s"])["time_s"][0]
        w = r.window(name, last - 3600.0, last + 1.0)
    runs.append(time.perf_counter() - t0)
print(statistics.median(runs), w.n_rows, n)
"""


def live_edge_read(path: Path, name: str) -> tuple[float, int]:
    """Median seconds for another process to open the running file and read its newest hour (journal
    included), and the rows that hour had."""
    out = subprocess.run([sys.executable, "-c", LIVE_READER, str(path), name], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1]).stdout.split()
    return float(out[0]), int(out[1])


def baseline_s() -> float:
    data = np.random.default_rng(0).standard_normal(1_000_000)
    runs = []
    for _ in range(7):
        t0 = time.perf_counter()
        np.sort(data)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def median_time(fn, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--keep", type=Path, default=None, help="write the file here and keep it")
    args = parser.parse_args()
    print(f"store at aging scale: {args.channels} channels x 5 columns, {args.hours} h at 1 Hz; Python "
          f"{platform.python_version()}, h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}, "
          f"numpy {np.__version__}, {os.cpu_count()} cores")
    rng = np.random.default_rng(7)
    trajs = [mppt_like.trajectory(name, args.hours + 3) for name in PRESETS]
    folder = Path(tempfile.mkdtemp(prefix="labctl-aging-"))
    path = args.keep or folder / "aging.h5"
    marks = [h for h in (0, 100, 1000) if h <= args.hours]
    writer = RunWriter.create(path, procedure="mppt", parameters={"channels": args.channels},
                              clock=VirtualClock(), flush_interval_s=3600.0)
    blocks = make_channels(writer, args.channels)
    done_s = 0
    sampled_rows = 0
    print("writer (cycle = 32 rows, one per channel of half the channels, then a flush):")
    for mark in marks:
        feed_start = time.perf_counter()
        feed(blocks, trajs, done_s, mark * 3600, rng, writer)
        fed = time.perf_counter() - feed_start
        done_s = mark * 3600
        times, cpu_s, n = sample(writer, blocks, trajs, done_s, rng)
        sampled_rows += n
        done_s += SAMPLE_CYCLES // 2 + 1
        ms = np.array(times) * 1e3
        per_row_us = cpu_s / n * 1e6
        # at a real 64 rows/s: the CPU of 64 rows and their 2 cycles per second of the run
        pct = cpu_s / (SAMPLE_CYCLES / 2) * 100
        print(f"  at {mark:5d} h: cycle median {np.median(ms):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, "
              f"max {ms.max():.1f} ms; CPU {per_row_us:.1f} us per row, {pct:.2f} % of a core at 64 rows/s "
              f"(target <= {TARGET_CPU_PCT} %); feeding {mark} h took {fed:.0f} s")
    live = live_edge_read(path, blocks[5].name)
    writer.close()
    with RunReader(path) as r:
        total_rows = sum(r.info(b).n_rows for b in r.block_names())
        data_bytes = sum(r.h5["blocks"][b][c].id.get_storage_size() for b in r.block_names()
                         for c in mppt_like.COLUMNS)
        summary_bytes = sum(r.h5["blocks"][b]["summary"][lvl].id.get_storage_size() for b in r.block_names()
                            for lvl in r.h5["blocks"][b]["summary"])
        journal_bytes = r.h5["journal/ring"].id.get_storage_size()
    size = path.stat().st_size
    values = total_rows * len(mppt_like.COLUMNS)
    print(f"size: {total_rows:,} rows, file {size / 1e9:.2f} GB = {size / values:.2f} bytes per value "
          f"(raw float64: 8; target <= 4); compressed columns {data_bytes / values:.2f} B/value, pyramid "
          f"{summary_bytes / values:.3f} B/value, journal ring {journal_bytes / 1e6:.0f} MB")
    for col in mppt_like.COLUMNS:
        with RunReader(path) as r:
            b = sum(r.h5["blocks"][name][col].id.get_storage_size() for name in r.block_names())
        print(f"  {col:24s} {b / total_rows:.2f} bytes per value")
    base = baseline_s()
    print(f"reads (idle baseline: sorting 1e6 float64 takes {base * 1e3:.1f} ms; load {os.getloadavg()[0]:.2f}):")
    with RunReader(path) as r:
        names = r.block_names()
        t_end = mppt_like.START_S + done_s
        starts = np.random.default_rng(3).uniform(mppt_like.START_S, t_end - 3600, 21)
        it = iter(starts)
        win = median_time(lambda: r.window(names[5], (s := next(it)), s + 3600.0), 21)
        n_win = r.window(names[5], starts[0], starts[0] + 3600.0).n_rows
        dec = median_time(lambda: r.decimate(names[5], 2000), 7)
        dec_all = median_time(lambda: [r.decimate(n, 2000) for n in names], 3)
    t_open = median_time(lambda: RunReader(path).close(), 5)
    print(f"  1 h window of one {args.hours} h channel ({n_win} rows): {win * 1e3:.2f} ms (target <= 50 ms)")
    print(f"  one whole channel decimated to 2,000 bins: {dec * 1e3:.2f} ms (target <= 100 ms)")
    print(f"  all {len(names)} channels decimated to 2,000 bins: {dec_all * 1e3:.0f} ms (target <= 1000 ms)")
    print(f"  opening the file: {t_open * 1e3:.1f} ms")
    print(f"  while the writer runs (another process; open, then the newest hour, {live[1]} rows, journal "
          f"included): {live[0] * 1e3:.1f} ms")
    if args.keep is None:
        path.unlink()


if __name__ == "__main__":
    main()
