"""Reading run files: finished, still being written, or left behind by a killed writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from labctl.errors import DataFileError
from labctl.store import schema


@dataclass(frozen=True)
class Event:
    """One row of ``/events``: time (s since the Unix epoch, on the run's clock) and what happened."""

    time_s: float
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


class BlockData:
    """One block read into memory: ``block["voltage_V"]`` is a float64 array; units and attributes."""

    def __init__(self, name: str, attrs: dict[str, Any], data: dict[str, np.ndarray],
                 units: dict[str, str]) -> None:
        self.name = name
        self.attrs = attrs
        self._data = data
        self.units = units

    @property
    def columns(self) -> list[str]:
        """Column names in creation order."""
        return list(self._data)

    @property
    def n_rows(self) -> int:
        return len(next(iter(self._data.values()))) if self._data else 0

    def __getitem__(self, column: str) -> np.ndarray:
        self._check(column)
        return self._data[column]

    def _check(self, column: str) -> None:
        if column not in self._data:
            raise KeyError(f"block {self.name!r} has no column {column!r}; columns: {self.columns}")

    def __contains__(self, column: object) -> bool:
        return column in self._data

    def unit(self, column: str) -> str:
        self._check(column)
        return self.units[column]

    def __repr__(self) -> str:
        return f"BlockData({self.name!r}, rows={self.n_rows}, units={self.units})"


class RunReader:
    """Read-only view of a run file. Use as a context manager.

    Opens with HDF5 file locking off, so a file that a running labctl is still writing can be read (it sees
    what was flushed when it was opened). After a kill, what the one unfinished flush left half-written is
    not returned: columns and table fields are cut to the rows that are complete on disk.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataFileError(f"{self.path}: no such data file")
        try:
            self._h5 = _open_read_only(self.path)
        except OSError as exc:
            raise DataFileError(f"{self.path}: cannot be read as an HDF5 file: {exc}") from exc
        try:
            self.format_version = schema.check_labctl_file(self._h5, self.path)
            self.attrs: dict[str, Any] = schema.read_attrs(self._h5.attrs)
        except BaseException:
            self._h5.close()
            raise

    # --------------------------------------------------------------------------------- metadata
    @property
    def procedure(self) -> str:
        return str(self.attrs.get("procedure", ""))

    @property
    def procedure_class(self) -> str:
        return str(self.attrs.get("procedure_class", ""))

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.attrs.get("parameters") or {})

    @property
    def status(self) -> str:
        return str(self.attrs.get("status", ""))

    def instruments(self) -> dict[str, dict[str, Any]]:
        """Instrument name -> {idn, address, driver, settings (dict), ...}."""
        group = self._h5.get(schema.INSTRUMENTS)
        return {} if group is None else {name: schema.read_attrs(g.attrs) for name, g in group.items()}

    def analysis(self) -> dict[str, dict[str, Any]]:
        """Analysis name -> {key: scalar, ndarray, list of str or nested dict}."""
        group = self._h5.get(schema.ANALYSIS)
        return {} if group is None else {name: schema.read_tree(g) for name, g in group.items()}

    # ----------------------------------------------------------------------------------- blocks
    def block_names(self) -> list[str]:
        """Block names in creation order."""
        return schema.block_order(self._h5[schema.BLOCKS])

    def block(self, name: str) -> BlockData:
        group = self._h5[schema.BLOCKS].get(name)
        if not isinstance(group, h5py.Group):
            raise DataFileError(f"{self.path}: no block {name!r}; blocks: {self.block_names()}")
        dsets = {c: group[c] for c in schema.column_order(group)}
        n = min((schema.stored_rows(ds) for ds in dsets.values()), default=0)
        data = {c: np.asarray(ds[:n], dtype=np.float64) for c, ds in dsets.items()}
        units = {c: str(schema.read_attrs(ds.attrs).get(schema.UNITS_ATTR, "")) for c, ds in dsets.items()}
        return BlockData(name, schema.read_attrs(group.attrs), data, units)

    def blocks(self) -> list[BlockData]:
        return [self.block(name) for name in self.block_names()]

    # ----------------------------------------------------------------------- events, checkpoints
    def _table(self, name: str, fields: tuple[str, ...]) -> list[list[Any]]:
        group = self._h5.get(name)
        if group is None:
            return [[] for _ in fields]
        dsets = [group[f] for f in fields]
        n = min(ds.shape[0] for ds in dsets)
        for ds in dsets:
            n = schema.readable_rows(ds, n)
        return [ds[:n].tolist() if ds.dtype.kind == "f" else ds.asstr()[:n].tolist() for ds in dsets]

    def events(self) -> list[Event]:
        """Every event, oldest first."""
        times, kinds, messages, data = self._table(schema.EVENTS, schema.EVENT_FIELDS)
        return [Event(float(t), k, m, _loads(d))
                for t, k, m, d in zip(times, kinds, messages, data, strict=True)]

    def checkpoints(self) -> list[dict[str, Any]]:
        """Every checkpoint, oldest first: ``{"state", "time_s", "block_rows"}``."""
        times, states, rows = self._table(schema.CHECKPOINTS, schema.CHECKPOINT_FIELDS)
        return [{"state": _loads(s), "time_s": float(t), "block_rows": _loads(r)}
                for t, s, r in zip(times, states, rows, strict=True)]

    def last_checkpoint(self) -> dict[str, Any] | None:
        """The newest checkpoint, or None when the run never checkpointed."""
        checkpoints = self.checkpoints()
        return checkpoints[-1] if checkpoints else None

    # -------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> RunReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunReader({str(self.path)!r}, procedure={self.procedure!r}, status={self.status!r})"


def _open_read_only(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as exc:
        # A writer in this same process (GUI and runner) holds the file with HDF5 locking on, and HDF5
        # shares an already-open file only when the locking flags match.
        if "locking" not in str(exc):
            raise
        return h5py.File(path, "r")


def _loads(text: str) -> dict[str, Any]:
    try:
        value = schema.from_json(text) if text else {}
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}
