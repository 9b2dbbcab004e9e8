"""CSV export: one file per block, for spreadsheets and colleagues without HDF5."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from labctl.store import schema
from labctl.store.reader import RunReader

#: File metadata repeated in every CSV header, in this order.
_FILE_KEYS = ("procedure", "procedure_class", "created", "operator", "station", "status", "parameters",
              "sample", "conditions")


def _comment_value(value: Any) -> str:
    # Plain strings stay readable; anything else (or a string with a line break) is JSON on one line.
    if isinstance(value, str) and "\n" not in value and "\r" not in value:
        return value
    return schema.to_json(value)


def _safe_filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._") or "block"


def _header_cell(column: str, unit: str) -> str:
    cell = f"{column} [{unit}]"
    return '"' + cell.replace('"', '""') + '"' if any(ch in cell for ch in ',"\n') else cell


def write_block_csv(reader: RunReader, name: str, path: Path, rows_per_slice: int = 8192) -> None:
    """One block as CSV: ``#`` comment lines (file and block metadata), ``col [unit]`` header, rows.

    The block is read and written in slices of ``rows_per_slice`` rows: memory stays flat for a
    1000-hour channel.
    """
    info = reader.info(name)
    lines = [f"# labctl run file: {reader.path.name}", f"# format_version: {reader.format_version}"]
    lines += [f"# {key}: {_comment_value(reader.attrs[key])}" for key in _FILE_KEYS if key in reader.attrs]
    lines.append(f"# block: {name}")
    lines += [f"# block.{key}: {_comment_value(value)}" for key, value in info.attrs.items()]
    lines.append(",".join(_header_cell(c, info.units[c]) for c in info.columns))
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write("\n".join(lines) + "\n")
        for part in reader.iter_block(name, rows_per_slice):
            # The shortest text that reads back to the same stored value: repr of a Python float for
            # float64 columns, of a numpy float32 for float32 ones (1.05, not 1.0499999523162842).
            columns = [[repr(v) for v in part[c].tolist()] if c not in info.single_precision else
                       [str(v) for v in part[c].astype(np.float32)] for c in info.columns]
            out.writelines(",".join(row) + "\n" for row in zip(*columns, strict=True))


def export_csv(h5_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write ``<file stem>_<block>.csv`` for every block of a run file into ``out_dir`` (created).

    Re-exporting replaces earlier CSVs of the same run (they are derived data; the HDF5 file is the
    record). Returns the paths written, in block order.
    """
    out = Path(out_dir)
    written: list[Path] = []
    with RunReader(h5_path) as reader:  # a file that is not a run file is refused before anything is created
        out.mkdir(parents=True, exist_ok=True)
        stem = _safe_filename(reader.path.stem)
        used: set[str] = set()
        for block in reader.block_names():
            name = f"{stem}_{_safe_filename(block)}"
            base, i = name, 1
            while name in used:  # two block names that sanitise to the same file name
                i += 1
                name = f"{base}_{i}"
            used.add(name)
            path = out / f"{name}.csv"
            write_block_csv(reader, block, path)
            written.append(path)
    return written
