"""CSV export: one file per block, for spreadsheets and colleagues without HDF5."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from labctl.store import schema
from labctl.store.reader import BlockData, RunReader

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


def write_block_csv(reader: RunReader, block: BlockData, path: Path) -> None:
    """One block as CSV: ``#`` comment lines (file and block metadata), ``col [unit]`` header, rows."""
    lines = [f"# labctl run file: {reader.path.name}", f"# format_version: {reader.format_version}"]
    lines += [f"# {key}: {_comment_value(reader.attrs[key])}" for key in _FILE_KEYS if key in reader.attrs]
    lines.append(f"# block: {block.name}")
    lines += [f"# block.{key}: {_comment_value(value)}" for key, value in block.attrs.items()]
    lines.append(",".join(_header_cell(c, block.units[c]) for c in block.columns))
    columns = [block[c].tolist() for c in block.columns]
    # repr of a Python float is the shortest text that reads back to the same float64.
    lines += [",".join(map(repr, row)) for row in zip(*columns, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def export_csv(h5_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write ``<file stem>_<block>.csv`` for every block of a run file into ``out_dir`` (created).

    Re-exporting replaces earlier CSVs of the same run (they are derived data; the HDF5 file is the
    record). Returns the paths written, in block order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with RunReader(h5_path) as reader:
        stem = _safe_filename(reader.path.stem)
        used: set[str] = set()
        for block in reader.blocks():
            name = f"{stem}_{_safe_filename(block.name)}"
            base, i = name, 1
            while name in used:  # two block names that sanitise to the same file name
                i += 1
                name = f"{base}_{i}"
            used.add(name)
            path = out / f"{name}.csv"
            write_block_csv(reader, block, path)
            written.append(path)
    return written
