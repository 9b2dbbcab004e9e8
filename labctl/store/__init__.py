"""Streaming HDF5 storage of runs: one file per run, readable by plain h5py (see docs/data-format.md).

``RunWriter`` buffers rows from any thread, journals them every flush cycle so a killed process loses at
most about a second of data, and compacts them into compressed NeXus blocks with a min/max/mean pyramid;
``RunReader`` reads a finished, running or killed file (whole blocks, time windows, decimated views);
``export_csv`` writes one CSV per block.
"""

from labctl.store.csv_export import export_csv
from labctl.store.query import Decimated
from labctl.store.reader import BlockData, BlockInfo, Event, RunReader
from labctl.store.schema import FORMAT_VERSION
from labctl.store.writer import BlockWriter, ColumnError, RunWriter

__all__ = [
    "FORMAT_VERSION",
    "BlockData",
    "BlockInfo",
    "BlockWriter",
    "ColumnError",
    "Decimated",
    "Event",
    "RunReader",
    "RunWriter",
    "export_csv",
]
