"""Peak memory of `labctl analyze` and `labctl export` on a 10 h and a 100 h aging file: it must stay flat.

    .venv/bin/python bench/store_memory.py [--channels 8] [--hours 10 100]

Each file holds ``channels`` MPPT-like channels (bench/mppt_like.py) of 5 columns at 1 Hz, closed by its
writer (every row compacted). Each command runs in a fresh process (`python -m labctl.cli analyze FILE
--json`, `python -m labctl.cli export FILE --csv DIR`), and its peak resident memory (ru_maxrss) is read
when it ends; the baseline is the same interpreter importing labctl and doing nothing. Target: the 100 h
figure at most 1.2x the 10 h one.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import mppt_like

from labctl.clock import VirtualClock
from labctl.store import RunWriter

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.2


def make_file(path: Path, hours: int, channels: int) -> None:
    rng = np.random.default_rng(11)
    traj = mppt_like.trajectory("wbg_5avai", hours + 1)
    with RunWriter.create(path, procedure="mppt", parameters={"hours": hours}, clock=VirtualClock(),
                          flush_interval_s=3600.0) as w:
        blocks = [w.create_block(f"mpp_{c:02d}", mppt_like.COLUMNS, expected_rows=hours * 3600,
                                 single_precision=mppt_like.SINGLE_PRECISION)
                  for c in range(channels)]
        for a in range(0, hours * 3600, 4 * 3600):
            n = min(4 * 3600, hours * 3600 - a)
            for c, blk in enumerate(blocks):
                blk.append_columns(mppt_like.rows(traj, a, n, rng, scale=1.0 + 0.002 * c))
            w.flush()


def peak_mb(args: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of ``python args`` run in a fresh process."""
    code = ("import resource, subprocess, sys, time\n"
            "t = time.perf_counter()\n"
            "p = subprocess.run([sys.executable, *sys.argv[1:]], stdout=subprocess.DEVNULL)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, p.returncode)")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout.split()
    if out[2] != "0":
        raise RuntimeError(f"{args} failed")
    return int(out[0]) / 1024, float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--hours", type=int, nargs="+", default=[10, 100])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="labctl-memory-"))
    base, _ = peak_mb(["-c", "import labctl.cli, labctl.store, labctl.analyze"])
    print(f"peak memory of labctl analyze / export, {args.channels} channels x 5 columns at 1 Hz; "
          f"baseline (interpreter + labctl imported) {base:.0f} MB")
    results: dict[str, list[float]] = {"analyze": [], "export": []}
    for hours in args.hours:
        path = folder / f"aging_{hours}h.h5"
        t0 = time.perf_counter()
        make_file(path, hours, args.channels)
        made = time.perf_counter() - t0
        rows = hours * 3600 * args.channels
        mb_a, t_a = peak_mb(["-m", "labctl.cli", "analyze", str(path), "--json"])
        out = folder / f"csv_{hours}"
        mb_e, t_e = peak_mb(["-m", "labctl.cli", "export", str(path), "--csv", str(out)])
        csv_mb = sum(p.stat().st_size for p in out.glob("*.csv")) / 1e6
        shutil.rmtree(out)
        results["analyze"].append(mb_a)
        results["export"].append(mb_e)
        print(f"  {hours:4d} h ({rows:,} rows, file {path.stat().st_size / 1e6:.0f} MB, written in {made:.0f} s): "
              f"analyze {mb_a:.0f} MB peak ({t_a:.1f} s), export {mb_e:.0f} MB peak ({t_e:.0f} s, "
              f"{csv_mb:.0f} MB of CSV)")
        path.unlink()
    for name, values in results.items():
        if len(values) > 1:
            ratio = values[-1] / values[0]
            print(f"  {name}: {args.hours[-1]} h / {args.hours[0]} h peak = {ratio:.2f} (target <= {TARGET_RATIO})")


if __name__ == "__main__":
    main()
