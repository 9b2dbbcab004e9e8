"""Streaming writer of a run file: rows are buffered in memory and written in batches by a flush cycle.

Crash safety (docs/data-format.md, "Crash safety") rests on three rules kept by this module:

1. HDF5 is touched only inside a *cycle*, under one lock: write what is buffered, apply at most one
   metadata change, then ``H5Fflush``. Between cycles the file on disk is complete and consistent, so a
   SIGKILL loses at most the rows buffered since the last cycle (one ``flush_interval_s`` of real time).
2. File space is never reused (``fs_strategy="none"``): a cycle cannot overwrite anything that the
   metadata already on disk still points to.
3. An *end-of-file reserve*: at the end of every cycle an anonymous, unwritten dataset is allocated just
   before the flush and freed right after it. The superblock on disk therefore always claims more file
   than is in use, so the next cycle's new chunks and index nodes land inside the claimed region; a kill in
   the middle of that cycle's flush cannot leave metadata that points past the end of the file ("addr
   overflow"), and the file never shrinks below what the superblock claims ("truncated file").
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

import labctl
from labctl.clock import Clock, RealClock
from labctl.errors import DataFileError
from labctl.store import schema
from labctl.store.blocks import MAX_BUFFER_ROWS as MAX_BUFFER_ROWS  # re-exported (old import path)
from labctl.store.blocks import BlockWriter, Table, attrs_bytes
from labctl.store.blocks import ColumnError as ColumnError  # re-exported (old import path)

#: Smallest end-of-file reserve. It costs no disk (the file is extended sparsely) and is cut off at close.
MIN_RESERVE_BYTES = 4 << 20
#: Metadata a cycle may allocate besides raw data (index nodes, object headers, heap collections).
METADATA_SLACK_BYTES = 256 << 10


#: Files open for writing in this process. HDF5's own lock only keeps *other* processes out: a second
#: open of the same file in this process would silently share the first one's state.
_OPEN_PATHS: set[Path] = set()
_OPEN_PATHS_LOCK = threading.Lock()


def _claim(path: Path) -> Path:
    key = path.resolve()
    with _OPEN_PATHS_LOCK:
        if key in _OPEN_PATHS:
            raise DataFileError(f"{path}: already open for writing in this process")
        _OPEN_PATHS.add(key)
    return key


def _release(key: Path) -> None:
    with _OPEN_PATHS_LOCK:
        _OPEN_PATHS.discard(key)


def _open_h5(path: Path, mode: str) -> h5py.File:
    extra: dict[str, Any] = {"fs_strategy": "none"} if mode == "x" else {}
    # rdcc_nbytes=0: no chunk cache, so a chunk is allocated and written during the dataset write itself,
    # before the reserve is placed; with a cache HDF5 would allocate it during H5Fflush, after the reserve.
    return h5py.File(path, mode, rdcc_nbytes=0, **extra)


class RunWriter:
    """One run file being written. Make one with :meth:`create` or :meth:`open_existing`."""

    def __init__(self, h5: h5py.File, path: Path, clock: Clock, flush_interval_s: float, key: Path) -> None:
        self._h5 = h5
        self._key = key
        self.path = path
        self.clock = clock
        self.flush_interval_s = float(flush_interval_s)
        # RLock: a cycle started by a full row buffer runs inside append_row, which already holds it.
        self._lock = threading.RLock()
        self._closed = False
        self._failure: BaseException | None = None
        self._blocks: dict[str, BlockWriter] = {}
        self._events = Table(h5[schema.EVENTS], schema.EVENT_FIELDS)
        self._checkpoints = Table(h5[schema.CHECKPOINTS], schema.CHECKPOINT_FIELDS)
        self._reserve_bytes = MIN_RESERVE_BYTES
        self._free_start = -1  # where the last reserve started, i.e. the end of the space in use
        self._covered_end = 0  # end of file claimed by the superblock on disk
        self._reserve_dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        self._reserve_dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        self._reserve_dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
        # Diagnostics for tests and the benchmark: cycles that allocated more than the reserve covered, and
        # reserves left behind as holes. Both stay 0 with this module's layout.
        self.uncovered_cycles = 0
        self.reserve_holes = 0
        for name in schema.block_order(h5[schema.BLOCKS]):
            self._blocks[name] = BlockWriter.attach(self, h5[schema.BLOCKS][name])
        self._stop = threading.Event()
        with self._lock:
            self._run_cycle(0, None)  # places the first reserve
        self._thread = threading.Thread(target=_flusher, args=(weakref.ref(self), self._stop),
                                        name=f"labctl-flush-{path.name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------- construction
    @classmethod
    def create(cls, path: str | Path, *, procedure: str, parameters: Mapping[str, Any], operator: str = "",
               station: str = "", sample: Mapping[str, Any] | None = None,
               conditions: Mapping[str, Any] | None = None, procedure_class: str = "",
               clock: Clock | None = None, flush_interval_s: float = 0.5) -> RunWriter:
        """A new run file; never overwrites (DataFileError if ``path`` exists). Creates the parent folder."""
        path = Path(path)
        clock = clock or RealClock()
        _check_interval(flush_interval_s)
        if path.exists():
            raise DataFileError(f"{path}: a file of that name exists already; labctl never overwrites data")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            h5 = _open_h5(path, "x")  # "x": exclusive create, so a file appearing meanwhile is not clobbered
        except OSError as exc:
            raise DataFileError(f"{path}: cannot create the data file: {exc}") from exc
        key = _claim(path)
        try:
            now_s = clock.now()
            h5.attrs["format_version"] = schema.FORMAT_VERSION
            h5.attrs["labctl_version"] = labctl.__version__
            h5.attrs["created"] = schema.iso_utc(now_s)
            h5.attrs["created_time_s"] = now_s
            schema.write_attrs(h5.attrs, {
                "operator": operator, "station": station, "procedure": procedure,
                "procedure_class": procedure_class, "parameters": dict(parameters),
                "sample": dict(sample or {}), "conditions": dict(conditions or {}),
                "status": schema.STATUS_RUNNING, "end_reason": "",
            })
            h5.create_group(schema.BLOCKS)
            h5.create_group(schema.INSTRUMENTS)
            h5.create_group(schema.ANALYSIS)
            Table.create(h5.create_group(schema.EVENTS), schema.EVENT_FIELDS)
            Table.create(h5.create_group(schema.CHECKPOINTS), schema.CHECKPOINT_FIELDS)
            return cls(h5, path, clock, flush_interval_s, key)
        except BaseException:
            h5.close()
            _release(key)
            raise

    @classmethod
    def open_existing(cls, path: str | Path, *, clock: Clock | None = None,
                      flush_interval_s: float = 0.5) -> RunWriter:
        """Append to a labctl run file (``labctl resume``, ``labctl analyze``)."""
        path = Path(path)
        _check_interval(flush_interval_s)
        if not path.is_file():
            raise DataFileError(f"{path}: no such data file")
        key = _claim(path)
        try:
            try:
                h5 = _open_h5(path, "r+")
            except OSError as exc:
                raise DataFileError(f"{path}: cannot open for appending (is another labctl process still "
                                    f"writing it?): {exc}") from exc
            try:
                schema.check_labctl_file(h5, path)
                return cls(h5, path, clock or RealClock(), flush_interval_s, key)
            except BaseException:
                h5.close()
                raise
        except BaseException:
            _release(key)
            raise

    # ---------------------------------------------------------------------------------- metadata
    def set_status(self, status: str, reason: str = "") -> None:
        """Root attributes ``status`` and ``end_reason`` (written to disk at once)."""
        self.set_root_attrs(status=str(status), end_reason=str(reason))

    def set_root_attrs(self, **attrs: Any) -> None:
        """Root attributes; dict/list/None values are stored as JSON text (listed in ``json_attrs``)."""
        if "format_version" in attrs:
            raise DataFileError("format_version is set by labctl and cannot be changed")
        self._mutate(attrs_bytes(attrs), lambda: schema.write_attrs(self._h5.attrs, attrs))

    def add_instrument(self, name: str, *, idn: str, address: str, driver: str,
                       settings: Mapping[str, Any] | None = None, **extra: Any) -> None:
        """``/instruments/<name>``: IDN, address, driver and a settings snapshot (JSON); re-adding updates."""
        schema.check_name(name, "instrument")
        values = {"idn": str(idn), "address": str(address), "driver": str(driver),
                  "settings": dict(settings or {}), **extra}
        schema.check_attrs(values)

        def apply() -> None:
            group = self._h5[schema.INSTRUMENTS].require_group(name)
            schema.write_attrs(group.attrs, values)

        self._mutate(attrs_bytes(values) + (16 << 10), apply)

    # ------------------------------------------------------------------------------------ blocks
    def create_block(self, name: str, columns: Mapping[str, str],
                     attrs: Mapping[str, Any] | None = None) -> BlockWriter:
        """A new block ``/blocks/<name>``, one float64 column per entry of ``columns`` (name -> unit)."""
        schema.check_name(name, "block")
        if not columns:
            raise DataFileError(f"block {name!r}: give at least one column (name -> unit)")
        for col, unit in columns.items():
            schema.check_name(col, f"column (block {name!r})")
            if not isinstance(unit, str):
                raise DataFileError(f"block {name!r}, column {col!r}: unit must be a string, got {unit!r}")
        schema.check_attrs(attrs or {})  # a bad attribute must not leave half a block behind
        with self._lock:
            if name in self._blocks:
                raise DataFileError(f"{self.path}: block {name!r} exists already")
            created: list[BlockWriter] = []

            def apply() -> None:
                # Creation order is stored, not tracked by HDF5: a creation-ordered group keeps more than
                # 8 links in a fractal heap, which gets file space only during the flush (see the reserve).
                meta = {schema.BLOCK_INDEX_ATTR: len(self._blocks), "created_time_s": self.clock.now()}
                created.append(BlockWriter.create(self, self._h5[schema.BLOCKS], name, dict(columns),
                                                  {**meta, **(attrs or {})}))

            self._mutate((64 << 10) + len(columns) * (16 << 10) + attrs_bytes(attrs or {}), apply)
            self._blocks[name] = created[0]
            return created[0]

    def block(self, name: str) -> BlockWriter:
        """An existing block, to append to (after :meth:`open_existing`)."""
        try:
            return self._blocks[name]
        except KeyError:
            raise DataFileError(f"{self.path}: no block {name!r}; blocks: {sorted(self._blocks)}") from None

    def block_names(self) -> list[str]:
        """Block names in creation order."""
        return list(self._blocks)

    # ------------------------------------------------------------------------------ events etc.
    def event(self, kind: str, message: str, /, **data: Any) -> None:
        """A row of ``/events`` (time from the clock, kind, message, ``data`` as JSON); flushed at once."""
        row = (self.clock.now(), str(kind), str(message), _json(data, f"event {kind!r} data"))
        with self._lock:
            self._check_usable()
            self._events.append(row)
            self._run_cycle(0, None)

    def checkpoint(self, state: Mapping[str, Any]) -> None:
        """Save ``state`` (JSON) with the row count of every block; what ``labctl resume`` starts from.

        Every buffered row is flushed first, in its own cycle, so a checkpoint never claims rows that are
        not on disk even if the process dies while the checkpoint itself is being written.
        """
        state_json = _json(dict(state), "checkpoint state")
        with self._lock:
            self._check_usable()
            self._run_cycle(0, None)
            rows = {name: blk.n_rows for name, blk in self._blocks.items()}
            self._checkpoints.append((self.clock.now(), state_json, schema.to_json(rows)))
            self._run_cycle(0, None)

    def write_analysis(self, name: str, results: Mapping[str, Any],
                       attrs: Mapping[str, Any] | None = None) -> None:
        """``/analysis/<name>``: scalars as attributes, arrays as datasets, dicts as subgroups (replaces)."""
        schema.check_name(name, "analysis")
        schema.check_tree(results)  # a bad value must not leave half an analysis behind
        schema.check_attrs(attrs or {})

        def apply() -> None:
            parent = self._h5[schema.ANALYSIS]
            if name in parent:
                del parent[name]  # derived data: recomputing it replaces the old result
            group = parent.create_group(name)
            schema.write_tree(group, results)
            schema.write_attrs(group.attrs, dict(attrs or {}))

        self._mutate(schema.tree_bytes(results) + attrs_bytes(attrs or {}), apply)

    # ---------------------------------------------------------------------------- flush / close
    def flush(self) -> None:
        """Write every buffered row and event to disk now."""
        with self._lock:
            self._check_usable()
            self._run_cycle(0, None)

    def close(self) -> None:
        """Flush and close; safe to call twice. Raises DataFileError if writing failed."""
        with self._lock:
            if self._closed:
                return
            self._stop.set()
            error = self._failure
            try:
                if error is None:
                    self._write_pending()
            except Exception as exc:
                error = exc
            finally:
                self._closed = True
                try:
                    self._h5.close()  # flushes what _write_pending wrote
                except Exception as exc:
                    error = error or exc
                finally:
                    _release(self._key)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)
        if error is not None:
            raise DataFileError(f"{self.path}: writing failed: {error}") from error

    def __del__(self) -> None:
        # A writer dropped without close(): keep its buffered rows (best effort; close() is the API).
        try:
            if not self._closed:
                self.close()
        except Exception:
            pass

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunWriter({str(self.path)!r}, blocks={self.block_names()})"

    # ---------------------------------------------------------------------------------- internals
    def _check_usable(self) -> None:
        if self._closed:
            raise DataFileError(f"{self.path}: the writer is closed")
        if self._failure is not None:
            raise DataFileError(f"{self.path}: writing failed: {self._failure}") from self._failure

    def _mutate(self, nbytes: int, apply: Callable[[], None]) -> None:
        with self._lock:
            self._check_usable()
            self._run_cycle(nbytes, apply)

    def _pending_bytes(self) -> int:
        return sum(b.pending_bytes() for b in self._blocks.values()) + self._events.pending_bytes() \
            + self._checkpoints.pending_bytes()

    def _write_pending(self) -> None:
        for blk in self._blocks.values():
            blk.write_pending()
        self._events.write_pending()
        self._checkpoints.write_pending()

    def _run_cycle(self, extra_bytes: int, apply: Callable[[], None] | None,
                   direct: tuple[BlockWriter, list[np.ndarray]] | None = None) -> None:
        """One cycle (lock held): buffered rows, then ``direct`` arrays, then ``apply``; then the flush."""
        try:
            need = self._pending_bytes() + extra_bytes + METADATA_SLACK_BYTES
            if direct is not None:
                need += direct[0].direct_bytes(direct[1])
            if self._free_start >= 0 and need > self._covered_end - self._free_start:
                # Claim enough file in a flush of its own before allocating anything big.
                self._reserve_bytes = max(self._reserve_bytes, _round_up(2 * need))
                self._flush_with_reserve()
            self._write_pending()
            if direct is not None:
                direct[0].write_arrays(direct[1])
            if apply is not None:
                apply()
            self._flush_with_reserve()
        except (OSError, RuntimeError) as exc:
            # I/O failed (disk full, file gone): the writer stops; the file keeps what the last cycle wrote.
            self._failure = exc
            raise DataFileError(f"{self.path}: writing failed: {exc}") from exc

    def _make_reserve(self, nbytes: int) -> h5py.h5d.DatasetID:
        space = h5py.h5s.create_simple((nbytes,))
        return h5py.h5d.create(self._h5.id, None, h5py.h5t.NATIVE_UINT8, space, dcpl=self._reserve_dcpl)

    def _flush_with_reserve(self) -> None:
        size = self._reserve_bytes
        reserve = self._make_reserve(size)
        offset = reserve.get_offset()
        if offset + size < self._covered_end:
            # Space was freed at the end of the file (an analysis replaced): keep claiming at least as much
            # as before, because a flush that shrinks the file writes the superblock only afterwards.
            reserve.close()
            size = _round_up(self._covered_end - offset + MIN_RESERVE_BYTES)
            reserve = self._make_reserve(size)
            offset = reserve.get_offset()
        if self._free_start >= 0:
            used = offset - self._free_start
            if used > self._covered_end - self._free_start:
                self.uncovered_cycles += 1
            # Grow the reserve with the data rate so a cycle's allocations stay well inside it.
            self._reserve_bytes = max(self._reserve_bytes, _round_up(4 * used))
        self._h5.flush()
        if os.path.getsize(self.path) > offset + size:
            # HDF5 gave some metadata its address only during the flush, behind the reserve (fractal heaps
            # do; the layout avoids them). Freeing the reserve would not move the end of the file back,
            # so claim again behind that metadata; the first reserve stays an unused, sparse hole.
            self.reserve_holes += 1
            first, reserve = reserve, self._make_reserve(size)
            offset = reserve.get_offset()
            self._h5.flush()
            first.close()
        reserve.close()  # freed: the next allocations start at ``offset`` again, inside the claimed file
        self._free_start = offset
        self._covered_end = offset + size



def _flusher(ref: weakref.ref[RunWriter], stop: threading.Event) -> None:
    """Background thread: a cycle every ``flush_interval_s`` of *real* time while rows are buffered."""
    while True:
        writer = ref()
        if writer is None:
            return
        interval_s = writer.flush_interval_s
        del writer  # hold no reference while waiting, so an abandoned writer can be collected
        # Event.wait rather than labctl.clock: this timer must run on real time even on a virtual clock,
        # and must wake at once when the writer closes.
        if stop.wait(interval_s):
            return
        writer = ref()
        if writer is None:
            return
        with writer._lock:
            if writer._closed or writer._failure is not None:
                return
            if writer._pending_bytes() > 0:
                try:
                    writer._run_cycle(0, None)
                except Exception as exc:
                    # Recorded for the acquisition thread, whose next call raises it.
                    writer._failure = writer._failure or exc
                    return
        del writer


def _check_interval(flush_interval_s: float) -> None:
    if not flush_interval_s > 0:
        raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s!r}")


def _round_up(nbytes: int, step: int = 1 << 20) -> int:
    return max(MIN_RESERVE_BYTES, -(-int(nbytes) // step) * step)


def _json(value: Any, what: str) -> str:
    try:
        return schema.to_json(value)
    except (TypeError, ValueError) as exc:
        raise DataFileError(f"{what} cannot be stored as JSON: {exc}") from None
