"""Streaming HDF5 storage of runs: one file per run, readable by plain h5py (see docs/data-format.md).

``RunWriter`` buffers rows and flushes them from a background thread so a killed process loses at most
about a second of data; ``RunReader`` reads a finished, running or killed file; ``export_csv`` writes one
CSV per block.
"""

from labctl.store.csv_export import export_csv
from labctl.store.reader import BlockData, Event, RunReader
from labctl.store.schema import FORMAT_VERSION
from labctl.store.writer import BlockWriter, ColumnError, RunWriter

__all__ = [
    "FORMAT_VERSION",
    "BlockData",
    "BlockWriter",
    "ColumnError",
    "Event",
    "RunReader",
    "RunWriter",
    "export_csv",
]
