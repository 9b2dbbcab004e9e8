"""What the run browser reads from a run file, done in a worker thread and handed over as plain data (the
GUI thread never touches HDF5). Works on a finished file, on one a run is still writing (the reader opens
what has been flushed) and on format-1 files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Above this many rows a block is plotted from its min/max/mean per time bin, not row by row.
MAX_PLOTTED_ROWS = 200_000
DECIMATE_BINS = 4000
#: Block attributes that tell curves apart in a legend (a J–V's pixel, direction and scan rate).
LEGEND_ATTRS = ("pixel", "channel", "direction", "scan_rate_V_s")


@dataclass
class BlockSummary:
    name: str
    n_rows: int
    kind: str
    units: dict[str, str]
    signal: str
    axes: str
    label: str


@dataclass
class FileSummary:
    path: Path
    format_version: int
    procedure: str
    status: str
    metadata: dict[str, Any]
    blocks: list[BlockSummary]
    events: list[tuple[float, str, str, str]]  # time_s, kind, channel, message
    analysis: dict[str, Any] = field(default_factory=dict)


@dataclass
class BlockRows:
    name: str
    label: str
    columns: dict[str, np.ndarray]
    units: dict[str, str]
    decimated: bool


def _legend(name: str, attrs: dict[str, Any]) -> str:
    parts = [name]
    for key in LEGEND_ATTRS:
        value = attrs.get(key)
        if value is None or value == "":
            continue
        parts.append(f"{value:g} V/s" if key == "scan_rate_V_s" and isinstance(value, int | float) else str(value))
    return " ".join(parts)


def read_summary(path: str | Path) -> FileSummary:
    """Metadata, events, blocks (without their rows) and the stored analysis of a run file."""
    from labctl.store import RunReader

    with RunReader(path) as reader:
        blocks = []
        for name in reader.block_names():
            info = reader.info(name)
            blocks.append(BlockSummary(name, info.n_rows, info.kind, dict(info.units), info.signal, info.axes,
                                       _legend(name, info.attrs)))
        events = [(e.time_s, e.kind, e.channel, e.message) for e in reader.events()]
        hidden = {"station_definition", "simulated_world"}  # large texts: in the file, not in the overview
        metadata = {k: v for k, v in reader.attrs.items() if k not in hidden}
        return FileSummary(reader.path, reader.format_version, reader.procedure, reader.status, metadata, blocks,
                           events, reader.analysis())


def read_blocks(path: str | Path, names: list[str]) -> list[BlockRows]:
    """The rows of some blocks; a block longer than :data:`MAX_PLOTTED_ROWS` as the mean per time bin of its
    multi-resolution summary (a 1000-hour block costs what a short one does)."""
    from labctl.store import RunReader

    result = []
    with RunReader(path) as reader:
        for name in names:
            info = reader.info(name)
            label = _legend(name, info.attrs)
            if info.n_rows > MAX_PLOTTED_ROWS and info.time_column:
                # the mean per time bin; its time column is the bin centre
                data = reader.decimate(name, bins=DECIMATE_BINS)
                columns = {c: np.asarray(v) for c, v in data.mean.items()}
                columns[info.time_column] = data.centers_s
                result.append(BlockRows(name, label, columns, dict(info.units), True))
            else:
                block = reader.block(name)
                result.append(BlockRows(name, label, {c: block[c] for c in block.columns}, dict(block.units),
                                        False))
    return result


def analyze(path: str | Path) -> dict[str, Any]:
    """The procedure's analysis of the file, as `labctl analyze` gives it (stored in /analysis when the file
    can be written)."""
    from labctl.analyze import analyze_file
    from labctl.runner.registry import procedure_of_file

    return analyze_file(Path(path), procedure_of_file(path))


def export_csv(path: str | Path, out_dir: str | Path) -> list[Path]:
    from labctl.store import export_csv as export

    return export(path, out_dir)
