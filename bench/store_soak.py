"""SIGKILL soak of the run-file writer: kill writers at random moments, check every file they leave.

    .venv/bin/python bench/store_soak.py [--kills 1000] [--folder DIR]

Each writer (tests/store_crash_child.py) appends to a 256-row-chunk MPPT-like block ("fast"), a slow
1-row-per-step log, a J–V-like block every 50 steps (finished at once), events and checkpoints, with a
4096-record journal that wraps within seconds, and calls flush() after every step, so most kills land inside
a flush cycle: journal writes and overwrites, compactions into compressed chunks and the pyramid, table
appends. Half the kills use 20 rows per step (journal only), half 2000 (every step compacts chunks).

For each killed file: plain h5py opens it and reads every numeric dataset whole; labctl's reader returns
every row the writer had reported flushed before the kill, value for value, every event and checkpoint
reported before it, and no checkpoint claiming rows that are missing. Prints kills, damaged files (any of
that failing) and files whose newest string entry needed open_existing's repair.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import store_crash_child as child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="labctl-soak-"))
    half = args.kills // 2
    damaged = child.soak(folder / "rows20", half, 20) + child.soak(folder / "rows2000", args.kills - half, 2000)
    print(f"soak total: {args.kills} kills, {damaged} damaged files")
    sys.exit(1 if damaged else 0)


if __name__ == "__main__":
    main()
