"""Store throughput: labctl.store.RunWriter against a bare h5py loop doing the same writes.

    .venv/bin/python bench/store_throughput.py [--quick]

Both sides create a file, append the same rows to a 4-column block (float64, 4096-row chunks, unlimited
length, gzip + shuffle as labctl stores blocks) and close the file, so both pay for getting the data to disk
and for compressing it. Each case is repeated and the best
run is kept (the benchmark machine is noisy); labctl and bare h5py alternate within a repeat so a ratio is
always measured under the same conditions.

Targets (docs/benchmarks.md, "Store throughput"): batched appends >= 0.8x the bare h5py loop;
>= 20,000 single-row appends per second.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from labctl.clock import real_elapsed_s
from labctl.store import RunWriter
from labctl.store.blocks import COMPRESSION

COLUMNS = {"time_s": "s", "voltage_V": "V", "current_A": "A", "current_density_mA_cm2": "mA/cm2"}
CHUNK_ROWS = 4096
BATCHED_TARGET = 0.8
SINGLE_ROW_TARGET = 20_000.0


def data(n_rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {c: rng.standard_normal(n_rows) for c in COLUMNS}


def labctl_batched(path: Path, cols: dict[str, np.ndarray], batch: int) -> None:
    with RunWriter.create(path, procedure="bench", parameters={"batch": batch}) as w:
        blk = w.create_block("trace", COLUMNS)
        n = len(cols["time_s"])
        for start in range(0, n, batch):
            blk.append_columns({c: v[start:start + batch] for c, v in cols.items()})


def h5py_batched(path: Path, cols: dict[str, np.ndarray], batch: int) -> None:
    with h5py.File(path, "w") as f:
        group = f.create_group("blocks/trace")
        dsets = {}
        for c, unit in COLUMNS.items():
            dsets[c] = group.create_dataset(c, shape=(0,), maxshape=(None,), chunks=(CHUNK_ROWS,), dtype="f8",
                                            **COMPRESSION)
            dsets[c].attrs["units"] = unit
        n = len(cols["time_s"])
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            for c, ds in dsets.items():
                ds.resize((stop,))
                ds[start:stop] = cols[c][start:stop]


def labctl_rows(path: Path, cols: dict[str, np.ndarray]) -> None:
    values = zip(*(v.tolist() for v in cols.values()), strict=True)
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in values]
    with RunWriter.create(path, procedure="bench", parameters={}) as w:
        blk = w.create_block("trace", COLUMNS)
        for row in rows:
            blk.append_row(row)


def h5py_rows(path: Path, cols: dict[str, np.ndarray]) -> None:
    """What one would write without a buffer: one resize and one write per column and row."""
    h5py_batched(path, cols, 1)


def flush_cycle_s(path: Path, cycles: int = 200) -> float:
    """Median real seconds of one explicit flush with 10 new rows: the price of crash safety per cycle."""
    times = []
    with RunWriter.create(path, procedure="bench", parameters={}, flush_interval_s=3600.0) as w:
        blk = w.create_block("trace", COLUMNS)
        for i in range(cycles):
            for j in range(10):
                blk.append_row({c: float(10 * i + j) for c in COLUMNS})
            started = real_elapsed_s()
            w.flush()
            times.append(real_elapsed_s() - started)
    return float(np.median(times))


def best_of(repeats: int, cases: dict[str, Callable[[Path], None]], folder: Path) -> dict[str, float]:
    """Best (shortest) seconds per case; the cases alternate inside every repeat."""
    best = {name: float("inf") for name in cases}
    for r in range(repeats):
        for name, case in cases.items():
            path = folder / f"{name}_{r}.h5"
            started = real_elapsed_s()
            case(path)
            best[name] = min(best[name], real_elapsed_s() - started)
            path.unlink()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n_batched = 200_000 if args.quick else 2_000_000
    n_single = 20_000 if args.quick else 200_000
    n_bare_single = 5_000 if args.quick else 20_000
    print(f"store throughput: Python {platform.python_version()}, h5py {h5py.__version__}, "
          f"HDF5 {h5py.version.hdf5_version}, numpy {np.__version__}, {platform.machine()}, "
          f"best of {args.repeats}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
        folder = Path(tmp)
        batched = data(n_batched)
        for batch in (1000, 10_000):
            t = best_of(args.repeats, {
                "labctl": lambda p, b=batch: labctl_batched(p, batched, b),
                "h5py": lambda p, b=batch: h5py_batched(p, batched, b),
            }, folder)
            mb = n_batched * len(COLUMNS) * 8 / 1e6
            ratio = t["h5py"] / t["labctl"]
            ok &= ratio >= BATCHED_TARGET
            print(f"batched appends, {batch} rows x {len(COLUMNS)} columns per call, {n_batched} rows:")
            print(f"  labctl   {n_batched / t['labctl']:12,.0f} rows/s  {mb / t['labctl']:7.1f} MB/s")
            print(f"  h5py     {n_batched / t['h5py']:12,.0f} rows/s  {mb / t['h5py']:7.1f} MB/s")
            print(f"  ratio labctl/h5py {ratio:.2f}  (target >= {BATCHED_TARGET})")
        cols = data(n_single)
        t = best_of(args.repeats, {"labctl": lambda p: labctl_rows(p, cols)}, folder)
        t_bare = best_of(max(1, args.repeats // 2), {"h5py": lambda p: h5py_rows(p, data(n_bare_single))},
                         folder)
        rate, bare_rate = n_single / t["labctl"], n_bare_single / t_bare["h5py"]
        ok &= rate >= SINGLE_ROW_TARGET
        print(f"single-row appends (append_row with a dict of {len(COLUMNS)} floats), {n_single} rows:")
        print(f"  labctl   {rate:12,.0f} rows/s  (target >= {SINGLE_ROW_TARGET:,.0f})")
        print(f"  h5py     {bare_rate:12,.0f} rows/s  (one resize + write per column and row, "
              f"{n_bare_single} rows)")
        print(f"  ratio labctl/h5py {rate / bare_rate:.1f}")
        cycle_ms = 1e3 * flush_cycle_s(folder / "cycle.h5")
        print(f"one flush cycle (10 new rows; write, H5Fflush, end-of-file reserve): {cycle_ms:.2f} ms")
    print("targets met" if ok else "TARGETS MISSED")


if __name__ == "__main__":
    main()
