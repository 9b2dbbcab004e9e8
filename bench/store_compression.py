"""Which filter for compacted blocks: bytes per value and write speed of the filters every HDF5 reads.

    .venv/bin/python bench/store_compression.py [--hours 100]

One MPPT-like channel (bench/mppt_like.py: the simulated cell at its maximum power point, the 2450's noise
and 8-digit readings), 5 float64 columns at 1 Hz, written by bare h5py in 4096-row chunks with each
candidate: gzip (deflate) at levels 1, 4, 6, 9, with and without byte shuffle, and none. Only filters
built into every HDF5 library are candidates (HDFView, MATLAB, silx and h5web read them without plugins);
lzf (h5py only), Blosc, Zstandard, LZ4 and bitshuffle need plugins that MATLAB and a plain HDFView lack.
Lossy filters (scale-offset on floats) are not considered. The "f32" candidates store the measured and
derived columns as float32 (time stays float64), as labctl stores an aging channel's trace.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mppt_like

CANDIDATES: list[tuple[str, dict]] = [
    ("none", {}),
    ("gzip 1", {"compression": "gzip", "compression_opts": 1}),
    ("gzip 4", {"compression": "gzip", "compression_opts": 4}),
    ("gzip 1 + shuffle", {"compression": "gzip", "compression_opts": 1, "shuffle": True}),
    ("gzip 4 + shuffle", {"compression": "gzip", "compression_opts": 4, "shuffle": True}),
    ("gzip 6 + shuffle", {"compression": "gzip", "compression_opts": 6, "shuffle": True}),
    ("gzip 9 + shuffle", {"compression": "gzip", "compression_opts": 9, "shuffle": True}),
    ("f32 + none", {"single": True}),
    ("f32 + gzip 4", {"single": True, "compression": "gzip", "compression_opts": 4}),
    ("f32 + gzip 4 + shuffle (labctl)", {"single": True, "compression": "gzip", "compression_opts": 4,
                                         "shuffle": True}),
    ("f32 + gzip 9 + shuffle", {"single": True, "compression": "gzip", "compression_opts": 9, "shuffle": True}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=int, default=100)
    args = parser.parse_args()
    n = args.hours * 3600
    traj = mppt_like.trajectory("wbg_5avai", args.hours + 1)
    data = mppt_like.rows(traj, 0, n, np.random.default_rng(5))
    print(f"compression of one MPPT-like channel, {n:,} rows x 5 columns (h5py {h5py.__version__}, "
          f"HDF5 {h5py.version.hdf5_version}); bytes per value (raw float64: 8) and write speed")
    with tempfile.TemporaryDirectory(prefix="labctl-compression-") as tmp:
        for name, opts in CANDIDATES:
            path = Path(tmp) / "c.h5"
            t0 = time.perf_counter()
            filters = {k: v for k, v in opts.items() if k != "single"}
            with h5py.File(path, "w") as f:
                for col, values in data.items():
                    single = opts.get("single") and col in mppt_like.SINGLE_PRECISION
                    f.create_dataset(col, data=values.astype(np.float32) if single else values, chunks=(4096,),
                                     **filters)
            dt = time.perf_counter() - t0
            with h5py.File(path, "r") as f:
                per_col = {c: f[c].id.get_storage_size() / n for c in data}
            total = sum(per_col.values()) / len(per_col)
            cols = ", ".join(f"{c.split('_')[0]} {b:.2f}" for c, b in per_col.items())
            print(f"  {name:32s} {total:5.2f} B/value ({cols}); {n * 5 * 8 / dt / 1e6:6.0f} MB/s raw")
            path.unlink()


if __name__ == "__main__":
    main()
