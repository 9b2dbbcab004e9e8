"""Writer process for tests/test_store_crash.py: appends rows until it is killed.

    python tests/store_crash_child.py write FILE [--flush-interval-s 0.5] [--pause-s 0.002]
        Creates FILE and appends forever: single rows to "fast" and "slow", an array J–V-like "scan_<k>"
        block now and then, events and checkpoints. After every step it prints one JSON line,
        {"t": <real monotonic s>, "rows": {block: rows appended}}, so the parent knows what was appended when.

    python tests/store_crash_child.py read FILE [--seconds 4]
        A reader in its own process, as the GUI or a user's script is: reopens FILE every ~50 ms while the
        writer runs, reads the newest rows of "fast" (a time window by index), the whole block decimated and
        the events, checks every value, and prints one JSON line per read: {"t", "rows", "events"}; any
        error ends it with a non-zero exit.

    python tests/store_crash_child.py soak DIR [--kills 200] [--rows-per-step 20]
        Kill-anywhere soak test (not part of pytest; ~1.5 s per kill): writers that call flush() after
        every step, so HDF5 is writing most of the time, are SIGKILLed at random moments; plain h5py must
        open what is left, and every row, event and checkpoint reported (i.e. flushed) before the kill
        must be there. Prints the number of damaged files.

Values are a pure function of (block, row) so the parent can check every number that survived.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np

# Runs as a script: make the repository importable without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labctl.clock import VirtualClock, real_elapsed_s, real_pause
from labctl.store import RunReader, RunWriter, write_ahead

SCAN_ROWS = 151
JOURNAL_RECORDS = 4096
EVENT_EVERY = 25  # steps
CHECKPOINT_EVERY = 100


def expected(block: str, n: int, start: int = 0) -> dict[str, np.ndarray]:
    """Rows ``start:n`` of what the writer appends to ``block``: row i is a known function of i."""
    i = np.arange(start, n, dtype=float)
    if block == "fast":
        return {"index": i, "voltage_V": 0.5 + 1e-3 * i, "current_A": -1e-6 * i * i}
    if block == "slow":
        return {"index": i, "temperature_K": 300.0 + 0.01 * i}
    k = int(block.rsplit("_", 1)[1])
    return {"voltage_V": np.linspace(-0.1, 1.2, SCAN_ROWS)[start:n], "current_A": k + 1e-4 * i}


def write(path: Path, flush_interval_s: float, pause_s: float, flush_every_step: bool = False,
          rows_per_step: int = 20) -> None:
    clock = VirtualClock()
    # A small journal, so that it wraps within seconds: the kills land on overwrites and relocations too.
    writer = RunWriter.create(path, procedure="crash_test", parameters={"pause_s": pause_s},
                              sample={"id": "cell-1", "area_cm2": 0.1},
                              conditions={"light": "1 sun", "temperature": "25 C", "atmosphere": "N2"},
                              clock=clock, flush_interval_s=flush_interval_s, journal_records=JOURNAL_RECORDS)
    writer.idle_compact_s = 0.3  # and idle blocks get their partial chunks compressed during the run
    # 256-row chunks: compaction (compressed chunks, pyramid) happens every few steps
    fast = writer.create_block("fast", {"index": "", "voltage_V": "V", "current_A": "A"}, {"kind": "mpp"},
                               expected_rows=256)
    slow = writer.create_block("slow", {"index": "", "temperature_K": "K"})
    rows = {"fast": 0, "slow": 0}
    n_events = n_checkpoints = 0
    step = 0
    while True:
        step += 1
        if rows_per_step > 100:  # many rows: one array append, so HDF5 work dominates the step
            n = rows["fast"]
            fast.append_columns(expected("fast", n + rows_per_step, start=n))
            rows["fast"] += rows_per_step
        for _ in range(rows_per_step if rows_per_step <= 100 else 0):
            n = float(rows["fast"])  # same arithmetic as expected(), so the numbers match exactly
            fast.append_row({"index": n, "voltage_V": 0.5 + 1e-3 * n, "current_A": -1e-6 * n * n})
            rows["fast"] += 1
        slow.append_row(index=rows["slow"], temperature_K=300.0 + 0.01 * rows["slow"])
        rows["slow"] += 1
        if step % 50 == 0:
            k = step // 50
            scan = writer.create_block(f"scan_{k}", {"voltage_V": "V", "current_A": "A"}, {"direction": "RS"})
            scan.append_columns(expected(f"scan_{k}", SCAN_ROWS))
            scan.finish()
            rows[f"scan_{k}"] = SCAN_ROWS
        if step % EVENT_EVERY == 0:
            writer.event("progress", f"step {step}", rows=dict(rows))
            n_events += 1
        if step % CHECKPOINT_EVERY == 0:
            writer.checkpoint({"step": step})
            n_checkpoints += 1
        clock.sleep(1.0)
        if flush_every_step:
            writer.flush()
        print(json.dumps({"t": real_elapsed_s(), "rows": rows, "events": n_events,
                          "checkpoints": n_checkpoints}), flush=True)
        real_pause(pause_s)


def _readable(ds: h5py.Dataset) -> int:
    """Rows of a string dataset that plain h5py can read (a prefix; bisection)."""
    lo, hi = 0, ds.shape[0] + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            ds[:mid]
            lo = mid
        except OSError:
            hi = mid
    return lo


def _read_everything(f: h5py.File) -> None:
    """Plain h5py reads every dataset whole (damage shows as an OSError: addr overflow, bad B-tree...)."""
    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind != "O":
            obj[()]

    f.visititems(visit)


def _plain_h5py_reads(path: Path) -> bool:
    try:
        with h5py.File(path, "r", locking=False) as f:
            dict(f.attrs)
            _read_everything(f)
        return True
    except Exception:
        return False


def check_file(path: Path, done: dict[str, Any]) -> list[str]:
    """Plain h5py (no labctl) opens the file and reads every numeric dataset whole; labctl's reader, which
    merges the journal, holds what ``done`` says was appended, values exact.

    ``done`` is a progress line: {"rows": {block: n}, "events": n, "checkpoints": n}. Returns notes on
    tables whose strings plain h5py cannot read whole (a kill tore a global heap collection; the reader
    takes those rows from their copy, and ``open_existing`` writes them again).
    """
    notes = []
    with h5py.File(path, "r") as f:
        dict(f.attrs)
        _read_everything(f)
        for table in ("events", "checkpoints"):
            group = f[table]
            n = min(_readable(group[field]) for field in group)
            if n < max(group[field].shape[0] for field in group):
                notes.append(f"{table}: strings of row {n} on unreadable with plain h5py")
    with RunReader(path) as r:  # which takes rows it cannot read from their copy in /journal/text
        events = [e for e in r.events() if e.kind == "progress"]  # (a test may add others after a resume)
        assert len(events) >= done.get("events", 0), \
            f"events: {len(events)} readable, {done.get('events', 0)} appended before"
        assert [int(e.message.split()[1]) for e in events] == [EVENT_EVERY * (i + 1) for i in range(len(events))]
        steps = [c["state"]["step"] for c in r.checkpoints()]
        assert steps == [CHECKPOINT_EVERY * (i + 1) for i in range(len(steps))], "checkpoint contents"
    with RunReader(path) as r:
        for name, n in done.get("rows", {}).items():
            block = r.block(name)
            want = expected(name, block.n_rows)
            assert block.n_rows >= n, f"{name}: {block.n_rows} rows readable, {n} appended before"
            for col, values in want.items():
                # every row is exact, the younger ones from the interrupted flush included
                np.testing.assert_array_equal(block[col], values, err_msg=f"{name}/{col}")
        checkpoints = r.checkpoints()  # only those whose rows are all in the file
        assert len(checkpoints) >= done.get("checkpoints", 0), "a checkpoint older than the kill is missing"
        for checkpoint in checkpoints:
            for name, rows in checkpoint["block_rows"].items():
                assert r.block(name).n_rows >= rows, f"checkpoint claims {rows} rows of {name}"
    return notes


def read(path: Path, seconds: float) -> None:
    deadline = real_elapsed_s() + seconds
    while real_elapsed_s() < deadline:
        with RunReader(path) as r:
            if "fast" in r.block_names():
                n = r.info("fast").n_rows
                # the newest 500 rows (the column "index" is a time-like, increasing column)
                got = r.window("fast", n - 500.0, None, time_column="index")
                want = expected("fast", n, start=max(0, n - 500))
                for col, values in want.items():
                    np.testing.assert_array_equal(got[col], values, err_msg=col)
                d = r.decimate("fast", 100, time_column="index")
                assert int(d.count.sum()) == n, (d.count.sum(), n)
                assert np.nanmax(d.max["current_A"]) == 0.0 and np.nanmin(d.min["voltage_V"]) == 0.5
                print(json.dumps({"t": real_elapsed_s(), "rows": n, "events": len(r.events())}), flush=True)
        real_pause(0.05)


def start(path: Path, flush_interval_s: float = 0.5, pause_s: float = 0.002,
          flush_every_step: bool = False, rows_per_step: int = 20) -> subprocess.Popen[str]:
    extra = ["--flush-every-step"] if flush_every_step else []
    extra += ["--rows-per-step", str(rows_per_step)]
    return subprocess.Popen([sys.executable, __file__, "write", str(path), "--flush-interval-s",
                             str(flush_interval_s), "--pause-s", str(pause_s), *extra],
                            stdout=subprocess.PIPE, text=True)


class Progress:
    """The child's progress lines, read in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(json.loads(line))

    def before(self, t: float) -> dict[str, Any]:
        """The last progress line printed at or before real time ``t`` (empty before the first)."""
        done = [line for line in list(self.lines) if line["t"] <= t]
        return done[-1] if done else {}

    def join(self) -> None:
        self._thread.join(timeout=10)


def soak(folder: Path, kills: int, rows_per_step: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    damaged = repaired = lost = replayed = torn_for_plain_h5py = 0
    for i in range(kills):
        path = folder / f"soak_{i}.h5"
        path.unlink(missing_ok=True)
        proc = start(path, pause_s=0.0, flush_every_step=True, rows_per_step=rows_per_step)
        progress = Progress(proc)
        deadline = real_elapsed_s() + 60.0
        while not progress.lines and proc.poll() is None and real_elapsed_s() < deadline:
            real_pause(0.01)  # a loaded machine takes a while to start Python: kill a writer, not a start-up
        real_pause(random.uniform(0.0, 1.2))
        lines = list(progress.lines)  # read before the kill: each line was printed after its flush
        done = lines[-1] if lines else {}
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        progress.join()
        try:
            if write_ahead.has_record(path):
                # killed while copying a flush into the file (or just after): until a labctl open replays
                # the record, plain h5py may meet a torn file
                replayed += 1
                torn_for_plain_h5py += not _plain_h5py_reads(path)
                assert write_ahead.recover(path)
            if check_file(path, done):
                RunWriter.open_existing(path).close()  # repairs the table ...
                assert not check_file(path, done)  # ... for plain h5py
                repaired += 1
            path.unlink()
        except Exception as exc:
            damaged += 1
            lost += "appended before" in str(exc) or "older than the kill" in str(exc)
            print(f"kill {i}: {type(exc).__name__}: {exc} (file kept)", flush=True)
    print(f"{damaged} damaged files in {kills} kills ({lost} of them missing rows, events or checkpoints "
          f"flushed before the kill); {repaired} more had event or checkpoint strings plain h5py could not "
          f"read (labctl's reader returned them from their copy), repaired by open_existing; {replayed} were "
          f"killed while copying a flush into the file and had it replayed from the write-ahead log "
          f"({torn_for_plain_h5py} of them unreadable for plain h5py before that)", flush=True)
    return damaged


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("path", type=Path)
    w.add_argument("--flush-interval-s", type=float, default=0.5)
    w.add_argument("--pause-s", type=float, default=0.002)
    w.add_argument("--flush-every-step", action="store_true")
    w.add_argument("--rows-per-step", type=int, default=20)
    rd = sub.add_parser("read")
    rd.add_argument("path", type=Path)
    rd.add_argument("--seconds", type=float, default=4.0)
    s = sub.add_parser("soak")
    s.add_argument("folder", type=Path)
    s.add_argument("--kills", type=int, default=200)
    s.add_argument("--rows-per-step", type=int, default=20,
                   help="rows appended to 'fast' per step; 2000 makes every flush allocate new chunks")
    args = parser.parse_args()
    if args.cmd == "write":
        write(args.path, args.flush_interval_s, args.pause_s, args.flush_every_step, args.rows_per_step)
    elif args.cmd == "read":
        read(args.path, args.seconds)
    else:
        sys.exit(1 if soak(args.folder, args.kills, args.rows_per_step) else 0)


if __name__ == "__main__":
    main()
