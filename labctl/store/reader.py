"""Reading run files: finished, still being written (by this or another process), or left by a killed writer.

Version 2 keeps a block's rows in two places: its compressed column datasets (compacted rows) and the
journal (recent rows); :class:`RunReader` merges them. Version-1 files have only the column datasets.

Live reading: the reader opens with HDF5's file locking off (the writer's lock is on ``<file>-wal``, see
:mod:`labctl.store.write_ahead`) and sees the file as it was on disk when it opened it (HDF5 caches what it
read; reopen to see more: :meth:`RunReader.refresh`).
A reader may open the file while a flush cycle is writing it; what it then meets half-written (an HDF5
error, or journal rows that no longer follow the compacted ones because a compaction landed in between)
makes it reopen and read again, a few times, before it gives up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import h5py
import numpy as np

from labctl.clock import real_pause
from labctl.errors import DataFileError
from labctl.store import journal as jr
from labctl.store import metadata, nexus, schema, write_ahead
from labctl.store.query import BlockSource, Decimated
from labctl.store.tables import read_copies

#: Reopen attempts when a file being written is met half-way through a flush.
RETRIES = 8
#: HDF5 chunk cache per open dataset for readers: a few decompressed chunks (a window's bisection reads
#: each chunk once). Small, so that a reader that went through every block of a long file (an export)
#: holds at most this much per column, whatever the file's length.
READER_CACHE_BYTES = 256 << 10


_T = TypeVar("_T")


def _live(method: Callable[..., _T]) -> Callable[..., _T]:
    """Run a public read again after reopening the file when it met a file being written half-way through
    a flush (only the outermost call retries, so no HDF5 object outlives a reopen)."""
    @functools.wraps(method)
    def wrapper(self: RunReader, *args: Any, **kwargs: Any) -> _T:
        if self._depth:
            return method(self, *args, **kwargs)
        self._depth += 1
        try:
            for attempt in range(RETRIES):
                self._strict = attempt < RETRIES - 1
                try:
                    return method(self, *args, **kwargs)
                except (_Stale, OSError, ValueError) as exc:
                    if isinstance(exc, ValueError) and "id" not in str(exc):
                        raise  # not an HDF5 identifier closed by a reopen: a real error
                    if attempt == RETRIES - 1:
                        raise DataFileError(f"{self.path}: changed while being read, {RETRIES} times: "
                                            f"{exc}") from exc
                    real_pause(0.02 * (attempt + 1))
                    self.refresh()
            raise AssertionError("unreachable")
        finally:
            self._depth -= 1

    return wrapper


@dataclass(frozen=True)
class Event:
    """One row of ``/events``: time (s since the Unix epoch, on the run's clock) and what happened."""

    time_s: float
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    channel: str = ""


@dataclass(frozen=True)
class BlockInfo:
    """What a block is, without its rows: columns and units, rows, NeXus plot, kind, attributes."""

    name: str
    attrs: dict[str, Any]
    units: dict[str, str]
    n_rows: int
    signal: str
    axes: str
    kind: str
    time_column: str | None
    #: Columns stored as float32 (read back as float64 arrays holding the float32 values).
    single_precision: frozenset[str] = frozenset()

    @property
    def columns(self) -> list[str]:
        return list(self.units)


class BlockData:
    """One block (or a part of it) in memory: ``block["voltage_V"]`` is a float64 array; units, attributes."""

    def __init__(self, name: str, attrs: dict[str, Any], data: dict[str, np.ndarray],
                 units: dict[str, str], first_row: int = 0) -> None:
        self.name = name
        self.attrs = attrs
        self._data = data
        self.units = units
        #: Row number of the first row here within the block (a window or a slice starts later).
        self.first_row = first_row

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

    ``block(name)`` loads a whole block; for long blocks use ``window`` (a time range), ``decimate``
    (min/max/mean per time bin, in time independent of the block's length) or ``iter_block`` (slices).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataFileError(f"{self.path}: no such data file")
        self._h5: h5py.File | None = None
        self._depth = 0
        self._strict = True
        self._open()

    def _open(self) -> None:
        # A writer killed while copying a flush into the file left the flush in its write-ahead log: finish it
        # (only when no writer holds the file; see labctl.store.write_ahead). Once per open, not per retry.
        write_ahead.recover(self.path)
        for attempt in range(RETRIES):
            last = attempt == RETRIES - 1
            try:
                self._h5 = _open_read_only(self.path)
            except OSError as exc:
                # A writer's flush extends the file after it wrote the superblock that claims the new end:
                # met in between, the file looks truncated for a moment.
                if "truncated" not in str(exc) or last:
                    raise DataFileError(f"{self.path}: cannot be read as an HDF5 file: {exc}") from exc
                real_pause(0.01 * (attempt + 1))
                continue
            h5 = self._h5
            try:
                self.format_version = schema.check_labctl_file(h5, self.path)
                self.attrs: dict[str, Any] = metadata.read_root(h5)
                break
            except (KeyError, RuntimeError, OSError) as exc:
                # the root's header met while its writer creates or flushes it (it opened, so it is HDF5)
                h5.close()
                if last:
                    raise DataFileError(f"{self.path}: cannot be read: {exc}") from exc
                real_pause(0.01 * (attempt + 1))
            except BaseException:
                h5.close()
                raise
        self._sources: dict[str, BlockSource] = {}
        self._ring: jr.RingView | None = None
        self._text_copies: dict[str, dict[int, dict[str, Any]]] | None = None
        self._infos: dict[str, BlockInfo] = {}

    def refresh(self) -> None:
        """Reopen the file to see what a running writer added since this reader opened it."""
        self.close()
        self._open()

    @property
    def h5(self) -> h5py.File:
        assert self._h5 is not None
        return self._h5

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

    @_live
    def instruments(self) -> dict[str, dict[str, Any]]:
        """Instrument name -> {idn, address, driver, settings (dict), ...}."""
        group = self.h5.get(schema.INSTRUMENTS)
        return {} if group is None else {name: schema.read_attrs(g.attrs) for name, g in group.items()}

    @_live
    def analysis(self) -> dict[str, dict[str, Any]]:
        """Analysis name -> {key: scalar, ndarray, list of str or nested dict}."""
        group = self.h5.get(schema.ANALYSIS)
        return {} if group is None else {name: schema.read_tree(g) for name, g in group.items()}

    # ----------------------------------------------------------------------------------- blocks
    @_live
    def block_names(self) -> list[str]:
        """Block names in creation order."""
        return schema.block_order(self.h5[schema.BLOCKS])

    def _group(self, name: str) -> h5py.Group:
        group = self.h5[schema.BLOCKS].get(name)
        if not isinstance(group, h5py.Group):
            raise DataFileError(f"{self.path}: no block {name!r}; blocks: {self.block_names()}")
        return group

    @_live
    def info(self, name: str) -> BlockInfo:
        """A block's columns, units, rows, plot and attributes, without reading its rows."""
        if name in self._infos:
            return self._infos[name]
        src = self._source(name)
        group = self._group(name)
        attrs = schema.read_attrs(group.attrs)
        units = {c: str(schema.read_attrs(ds.attrs).get(schema.UNITS_ATTR, "")) for c, ds in
                 zip(src.columns, src.dsets, strict=True)}
        signal, axes = (str(attrs.get("signal", "")), str(attrs.get("axes", ""))) if "signal" in attrs else \
            nexus.choose_plot(src.columns, None, None, "data")
        time_col = attrs.get(nexus.TIME_COLUMN_ATTR, nexus.time_column(src.columns, axes))
        single = frozenset(c for c, ds in zip(src.columns, src.dsets, strict=True) if ds.dtype == np.float32)
        info = self._infos[name] = BlockInfo(name, attrs, units, src.n_rows, signal, axes,
                                             str(attrs.get(nexus.KIND_ATTR, "data")),
                                             None if time_col is None else str(time_col), single)
        return info

    @_live
    def block(self, name: str) -> BlockData:
        """The whole block in memory."""
        return self.rows(name)

    @_live
    def blocks(self) -> list[BlockData]:
        """Every block in memory; for big files iterate ``block_names()`` and read what you need."""
        return [self.block(name) for name in self.block_names()]

    @_live
    def rows(self, name: str, start: int = 0, stop: int | None = None,
             columns: Sequence[str] | None = None) -> BlockData:
        """Rows ``start:stop`` of a block (all columns unless ``columns`` is given)."""
        info = self.info(name)
        src = self._source(name)
        cols = list(info.columns if columns is None else columns)
        idx = [src.index(c) for c in cols]
        stop = src.n_rows if stop is None else min(stop, src.n_rows)
        values = src.rows(start, stop, idx)
        return BlockData(name, info.attrs, {c: values[i] for i, c in enumerate(cols)},
                         {c: info.units[c] for c in cols}, max(0, start))

    def iter_block(self, name: str, rows_per_slice: int = 1 << 16,
                   columns: Sequence[str] | None = None) -> Iterator[BlockData]:
        """A block in consecutive slices of at most ``rows_per_slice`` rows: memory bounded by the slice."""
        info = self.info(name)
        src = self._source(name)
        cols = list(info.columns if columns is None else columns)
        idx = [src.index(c) for c in cols]
        for first, values in src.iter_rows(step=rows_per_slice, cols=idx):
            yield BlockData(name, info.attrs, {c: values[i] for i, c in enumerate(cols)},
                            {c: info.units[c] for c in cols}, first)

    @_live
    def window(self, name: str, start_s: float | None, stop_s: float | None,
               columns: Sequence[str] | None = None, time_column: str | None = None) -> BlockData:
        """Rows whose time is in ``[start_s, stop_s)`` (on the block's time column, which must not decrease).

        Cost: a bisection over chunk boundaries plus the rows returned, whatever the block's length.
        """
        src = self._source(name)
        a, b = src.window_rows(src.index(self._time_column(name, time_column)), start_s, stop_s)
        return self.rows(name, a, b, columns)

    @_live
    def decimate(self, name: str, bins: int = 2000, start_s: float | None = None, stop_s: float | None = None,
                 columns: Sequence[str] | None = None, time_column: str | None = None) -> Decimated:
        """Min, max and mean of each column per time bin, ``bins`` equal bins over ``[start_s, stop_s)``
        (default: the whole block). Reads the block's pyramid where the window is long, so a 1000-hour
        channel costs about what a 1-hour one does."""
        info = self.info(name)
        src = self._source(name)
        tcol = self._time_column(name, time_column)
        cols = [c for c in info.columns if c != tcol] if columns is None else list(columns)
        edges, count, vmin, vmax, vmean = src.decimate(src.index(tcol), [src.index(c) for c in cols], bins,
                                                       start_s, stop_s)
        return Decimated(edges, count, {c: vmin[i] for i, c in enumerate(cols)},
                         {c: vmax[i] for i, c in enumerate(cols)}, {c: vmean[i] for i, c in enumerate(cols)})

    def _time_column(self, name: str, given: str | None) -> str:
        if given is not None:
            return given
        info = self.info(name)
        if info.time_column is None or info.time_column not in info.units:
            raise DataFileError(f"block {name!r} has no time column; name one with time_column=")
        return info.time_column

    def _source(self, name: str) -> BlockSource:
        src = self._sources.get(name)
        if src is None:
            src = self._sources[name] = self._make_source(name, self._strict)
        return src

    def _make_source(self, name: str, strict: bool = True) -> BlockSource:
        group = self._group(name)
        columns = schema.column_order(group)
        dsets = [group[c] for c in columns]
        n = min((schema.stored_rows(ds) for ds in dsets), default=0)
        levels: list[h5py.Dataset] = []
        tail = np.empty((len(columns), 0))
        if self.format_version >= 2:
            summary = group.get(schema.SUMMARY)
            k = 1
            while isinstance(summary, h5py.Group) and f"L{k}" in summary:
                levels.append(summary[f"L{k}"])
                k += 1
            seg = self._journal().segment(int(group.attrs.get(schema.BLOCK_INDEX_ATTR, -1)), len(columns))
            if seg is not None and seg.values.shape[0] >= len(columns):
                values, _ = seg.run_from(n)
                if strict and not values.shape[1] and bool((seg.rows > n).any()):
                    # journal rows beyond the compacted ones but none right after them: the compaction that
                    # moved the rows in between landed after this reader read the block's length (in a
                    # killed file, the interrupted cycle's rows: then the last attempt takes what follows on)
                    raise _Stale(f"block {name!r}: journal rows start at {seg.rows[0]}, compacted rows end at {n}")
                tail = np.array(values[:len(columns)])
        return BlockSource(columns, dsets, n, tail, levels)

    def _journal(self) -> jr.RingView:
        if self._ring is None:
            ring = self.h5.get(f"{schema.JOURNAL}/{jr.RING}")
            self._ring = jr.read_ring_view(ring)[2] if isinstance(ring, h5py.Dataset) else \
                jr.RingView(np.empty((0, jr.RECORD_WIDTH)))
        return self._ring

    # ----------------------------------------------------------------------- events, checkpoints
    def _table(self, name: str, fields: tuple[str, ...]) -> list[list[Any]]:
        """Columns of a table: the rows every field can read, then those only the text copy still holds."""
        group = self.h5.get(name)
        if group is None:
            return [[] for _ in fields]
        present = [f for f in fields if f in group]
        dsets = [group[f] for f in present]
        total = min(ds.shape[0] for ds in dsets)
        n = total
        for ds in dsets:
            n = schema.readable_rows(ds, n)
        columns = {f: ds[:n].tolist() if ds.dtype.kind == "f" else ds.asstr()[:n].tolist()
                   for f, ds in zip(present, dsets, strict=True)}
        if n < total or self.format_version >= 2:
            copies = self._copies().get(name, {})
            while n in copies:  # strings a kill made unreadable, or rows whose fields did not all land
                for f in present:
                    columns[f].append(copies[n].get(f, ""))
                n += 1
        return [columns.get(f, [""] * n) for f in fields]

    def _copies(self) -> dict[str, dict[int, dict[str, Any]]]:
        if self._text_copies is None:
            self._text_copies = read_copies(self.h5.get(schema.JOURNAL))
        return self._text_copies

    @_live
    def events(self) -> list[Event]:
        """Every event, oldest first."""
        times, kinds, messages, data, channels = self._table(schema.EVENTS, schema.EVENT_FIELDS)
        return [Event(float(t), k, m, _loads(d), c)
                for t, k, m, d, c in zip(times, kinds, messages, data, channels, strict=True)]

    @_live
    def n_events(self) -> int:
        group = self.h5.get(schema.EVENTS)
        return 0 if group is None else min(group[f].shape[0] for f in group)

    @_live
    def checkpoints(self) -> list[dict[str, Any]]:
        """Every checkpoint, oldest first: ``{"state", "time_s", "block_rows"}``.

        A checkpoint that counts rows the file does not hold was written by a flush that a kill
        interrupted (its rows did not all land): it is left out.
        """
        times, states, rows = self._table(schema.CHECKPOINTS, schema.CHECKPOINT_FIELDS)
        out = []
        for t, s, r in zip(times, states, rows, strict=True):
            claims = _loads(r)
            if all(self._n_rows_or_zero(b) >= int(n) for b, n in claims.items()):
                out.append({"state": _loads(s), "time_s": float(t), "block_rows": claims})
        return out

    def _n_rows_or_zero(self, name: str) -> int:
        try:
            return self._source(name).n_rows
        except DataFileError:
            return 0

    @_live
    def last_checkpoint(self) -> dict[str, Any] | None:
        """The newest checkpoint, or None when the run never checkpointed."""
        checkpoints = self.checkpoints()
        return checkpoints[-1] if checkpoints else None

    # -------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self) -> RunReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunReader({str(self.path)!r}, procedure={self.procedure!r}, status={self.status!r})"


class _Stale(Exception):
    """What this reader saw of a file being written no longer fits together: reopen."""


def _open_read_only(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r", locking=False, rdcc_nbytes=READER_CACHE_BYTES)
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
