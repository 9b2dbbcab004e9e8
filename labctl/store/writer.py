"""Streaming writer of a run file: any thread appends, a flush cycle writes everything at once.

Crash safety (docs/data-format.md, "Crash safety") rests on these rules, kept by this module:

1. HDF5 is touched only inside a *cycle*, under one I/O lock: journal the buffered rows, compact what is
   due, write queued events and checkpoints, apply at most one metadata change, write the journal header,
   then ``H5Fflush`` with the end-of-file reserve (:mod:`labctl.store.reserve`). Between cycles the file on
   disk is complete and consistent, so a SIGKILL loses at most what was appended since the last cycle
   (one ``flush_interval_s`` of real time).
2. File space is never reused (``fs_strategy="none"``) and compressed chunks are written once, so a cycle
   cannot overwrite anything that the metadata on disk still points to. The one exception, the journal
   ring, overwrites only records that the header of a completed cycle no longer needs
   (:mod:`labctl.store.journal`).
3. Readers trust nothing younger than the last cycle: a checkpoint claiming rows that are not in the file
   came from the interrupted cycle and is ignored, so checkpoints need no cycle of their own.

Threads: appending (``append_row``/``append_columns``), ``event`` and ``checkpoint`` only take a short
buffer lock and never wait for the disk; everything else (creating blocks, attributes, analyses, flush,
close) runs a cycle under the I/O lock. Every public method may be called from any thread.
"""

from __future__ import annotations

import collections
import os
import threading
import time
import weakref
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

import labctl
from labctl.clock import Clock, RealClock, real_elapsed_s
from labctl.errors import DataFileError
from labctl.store import hdf5_hints, metadata, nexus, scheduling, schema, write_ahead
from labctl.store import journal as jr
from labctl.store.blocks import MAX_BUFFER_ROWS as MAX_BUFFER_ROWS  # re-exported (old import path)
from labctl.store.blocks import BlockWriter, chunk_rows_for
from labctl.store.blocks import ColumnError as ColumnError  # re-exported (old import path)
from labctl.store.reserve import MIN_RESERVE_BYTES as MIN_RESERVE_BYTES  # re-exported
from labctl.store.reserve import EndOfFileReserve
from labctl.store.tables import Table, TextLog, read_copies
from labctl.store.write_ahead import WriteAheadFile

#: Metadata a cycle may allocate besides raw data (index nodes, object headers, heap collections).
METADATA_SLACK_BYTES = 256 << 10
#: A block with no new rows for this long (real seconds) has its partial chunk compressed, so plain h5py
#: sees a finished J–V scan while the run goes on (see BlockWriter for why not sooner).
IDLE_COMPACT_S = 10.0

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


def _single_precision_columns(block: str, columns: Mapping[str, str], names: Collection[str],
                               axis: str) -> frozenset[str]:
    if isinstance(names, str):
        raise DataFileError(f"block {block!r}: single_precision takes a list of column names, got {names!r}")
    chosen = frozenset(names)
    unknown = sorted(chosen - set(columns))
    if unknown:
        raise DataFileError(f"block {block!r}: single_precision names columns {unknown} the block does not have; "
                            f"columns: {list(columns)}")
    for col in sorted(chosen):
        if columns[col] == "s" or col == nexus.time_column(list(columns), axis):
            raise DataFileError(f"block {block!r}: column {col!r} holds times (unit {columns[col]!r}); times "
                                f"stay float64 (float32 resolves only ~2 min at epoch seconds)")
    return chosen


def _open_h5(path: Path, mode: str) -> tuple[h5py.File, WriteAheadFile | None]:
    """The run file opened for writing ("x": create, "r+": append), through the write-ahead log on POSIX."""
    log = WriteAheadFile(path, create=mode == "x") if write_ahead.SUPPORTED else None
    try:
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        if log is not None:
            fapl.set_fileobj_driver(h5py.h5fd.fileobj_driver, log)
        # as h5py opens files: a reader in this process (which shares the open file) must use the same degree
        fapl.set_fclose_degree(h5py.h5f.CLOSE_WEAK)
        # the oldest formats HDF5 can write, as h5py asks for (HDF5's own default would make new-style groups,
        # whose fractal heaps get their addresses during the flush, behind the reserve)
        fapl.set_libver_bounds(h5py.h5f.LIBVER_EARLIEST, h5py.h5f.LIBVER_LATEST)
        # no chunk cache, so a chunk is allocated and written during the dataset write itself, before the
        # reserve is placed; with a cache HDF5 would allocate it during H5Fflush, after the reserve
        nslots, _, w0 = fapl.get_cache()[1:]
        fapl.set_cache(0, nslots, 0, w0)
        name = os.fsencode(path)
        if mode == "x":
            # "x": exclusive create (the log created the file with O_EXCL; without it HDF5 does)
            flags = h5py.h5f.ACC_TRUNC if log is not None else h5py.h5f.ACC_EXCL
            fid = h5py.h5f.create(name, flags, fcpl=hdf5_hints.file_create_plist(), fapl=fapl)
        else:
            fid = h5py.h5f.open(name, h5py.h5f.ACC_RDWR, fapl=fapl)
        return h5py.File(fid), log
    except BaseException:
        if log is not None:
            log.close(remove_log=mode == "x")
            if mode == "x":
                path.unlink(missing_ok=True)  # the empty file the log created
        raise


class RunWriter:
    """One run file being written. Make one with :meth:`create` or :meth:`open_existing`."""

    def __init__(self, h5: h5py.File, path: Path, clock: Clock, flush_interval_s: float, key: Path,
                 version: int, log: WriteAheadFile | None = None) -> None:
        self._h5 = h5
        self._log = log
        self._key = key
        self.path = path
        self.clock = clock
        self.flush_interval_s = float(flush_interval_s)
        self.format_version = version
        self.idle_compact_s = IDLE_COMPACT_S
        # I/O lock, reentrant: a cycle started by a full buffer may run inside another cycle's caller.
        self._io_lock = threading.RLock()
        self._buf_lock = threading.Lock()
        self._closed = False
        self._failure: BaseException | None = None
        self._reserve = EndOfFileReserve(h5, path)
        self._blocks: dict[str, BlockWriter] = {}
        events_fields = schema.EVENT_FIELDS if version >= 2 else schema.EVENT_FIELDS_V1
        journal_group = h5.get(schema.JOURNAL)
        copies = read_copies(journal_group)
        self._events = Table(h5[schema.EVENTS], events_fields, copies.get(schema.EVENTS))
        self._checkpoints = Table(h5[schema.CHECKPOINTS], schema.CHECKPOINT_FIELDS, copies.get(schema.CHECKPOINTS))
        self._text = TextLog(journal_group["text"]) if journal_group is not None and "text" in journal_group \
            else None
        #: Real seconds of each recent cycle, cycles that had to compress partial chunks because the journal
        #: was full, tails moved ahead in the ring (diagnostics for the benchmark and tests).
        self.cycle_times_s: collections.deque[float] = collections.deque(maxlen=1 << 16)
        self.forced_compactions = 0
        self.relocations = 0  # tails journaled again because the ring was about to reach them
        self._links: list[tuple[h5py.Group, str, h5py.HLObject]] = []
        self._journal: jr.JournalWriter | None = None
        for name in schema.block_order(h5[schema.BLOCKS]):
            self._blocks[name] = BlockWriter.attach(self, h5, h5[schema.BLOCKS][name], version)
        if version >= 2:
            widths = {b.index: len(b.columns) for b in self._blocks.values()}
            self._journal, segments = jr.JournalWriter.attach(h5[schema.JOURNAL], widths)
            self._restore_tails(segments)
        self._stop = threading.Event()
        with self._io_lock:
            self._run_cycle(0, None)  # places the first reserve, cuts what a kill left half-written
        self._thread = threading.Thread(target=_flusher, args=(weakref.ref(self), self._stop),
                                        name=f"labctl-flush-{path.name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------- construction
    @classmethod
    def create(cls, path: str | Path, *, procedure: str, parameters: Mapping[str, Any], operator: str = "",
               station: str = "", sample: Mapping[str, Any] | None = None,
               conditions: Mapping[str, Any] | None = None, procedure_class: str = "",
               clock: Clock | None = None, flush_interval_s: float = 0.5,
               journal_records: int = jr.DEFAULT_CAPACITY) -> RunWriter:
        """A new run file; never overwrites (DataFileError if ``path`` exists). Creates the parent folder.

        ``journal_records``: capacity of the journal ring (96 bytes each, written only as used); the
        default holds 64 channels' uncompacted rows with room to spare.
        """
        path = Path(path)
        clock = clock or RealClock()
        _check_interval(flush_interval_s)
        if not isinstance(journal_records, int) or journal_records < 1024:
            raise ValueError(f"journal_records must be a whole number >= 1024, got {journal_records!r}")
        if path.exists():
            raise DataFileError(f"{path}: a file of that name exists already; labctl never overwrites data")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            h5, log = _open_h5(path, "x")  # "x": exclusive create, so a file appearing meanwhile is not clobbered
        except OSError as exc:
            raise DataFileError(f"{path}: cannot create the data file: {exc}") from exc
        key = _claim(path)
        try:
            now_s = clock.now()
            h5.attrs["format_version"] = schema.FORMAT_VERSION
            h5.attrs["labctl_version"] = labctl.__version__
            h5.attrs["created"] = schema.iso_utc(now_s)
            h5.attrs["created_time_s"] = now_s
            metadata.write_root(h5, {
                "operator": operator, "station": station, "procedure": procedure,
                "procedure_class": procedure_class, "parameters": dict(parameters),
                "sample": dict(sample or {}), "conditions": dict(conditions or {}),
                "status": schema.STATUS_RUNNING, "end_reason": "",
            })
            hdf5_hints.create_big_group(h5, schema.BLOCKS)
            for group in (schema.INSTRUMENTS, schema.ANALYSIS):
                h5.create_group(group)
            nexus.annotate_root(h5)
            Table.create(h5.create_group(schema.EVENTS), schema.EVENT_FIELDS)
            Table.create(h5.create_group(schema.CHECKPOINTS), schema.CHECKPOINT_FIELDS)
            journal_group = h5.create_group(schema.JOURNAL)
            jr.JournalWriter.create(journal_group, journal_records)
            TextLog.create(journal_group)
            return cls(h5, path, clock, flush_interval_s, key, schema.FORMAT_VERSION, log)
        except BaseException:
            h5.close()
            if log is not None:
                log.close()
            _release(key)
            raise

    @classmethod
    def open_existing(cls, path: str | Path, *, clock: Clock | None = None,
                      flush_interval_s: float = 0.5) -> RunWriter:
        """Append to a labctl run file (``labctl resume``, ``labctl analyze``).

        A version-1 file takes events, attributes and analyses, but no rows (its blocks are read-only).
        """
        path = Path(path)
        _check_interval(flush_interval_s)
        if not path.is_file():
            raise DataFileError(f"{path}: no such data file")
        key = _claim(path)
        try:
            try:
                h5, log = _open_h5(path, "r+")
            except OSError as exc:
                raise DataFileError(f"{path}: cannot open for appending (is another labctl process still "
                                    f"writing it?): {exc}") from exc
            try:
                version = schema.check_labctl_file(h5, path)
                return cls(h5, path, clock or RealClock(), flush_interval_s, key, version, log)
            except BaseException:
                h5.close()
                if log is not None:
                    log.close()
                raise
        except BaseException:
            _release(key)
            raise

    def _restore_tails(self, segments: list[jr.Segment]) -> None:
        if self._journal is None:
            return
        by_index = {blk.index: blk for blk in self._blocks.values()}
        for seg in segments:
            blk = by_index.get(seg.block_index)
            if blk is not None:
                blk.restore_tail(seg)

    # ---------------------------------------------------------------------------------- metadata
    def set_status(self, status: str, reason: str = "") -> None:
        """Root attributes ``status`` and ``end_reason`` (written to disk at once)."""
        self.set_root_attrs(status=str(status), end_reason=str(reason))

    def set_root_attrs(self, **attrs: Any) -> None:
        """Root metadata; dict/list/None values as JSON text. Large values (the station definition, the
        parameters, anything over 8 kB) go to ``/metadata/<name>`` datasets: there is no size limit."""
        if "format_version" in attrs:
            raise DataFileError("format_version is set by labctl and cannot be changed")
        if self.format_version >= 2:
            metadata.check(attrs)
            self._mutate(metadata.value_bytes(attrs), lambda: metadata.write_root(self._h5, attrs, self._link_later))
            if self._links:
                self._mutate(0, None)
        else:
            schema.check_attrs(attrs)
            self._mutate(metadata.value_bytes(attrs), lambda: schema.write_attrs(self._h5.attrs, attrs))

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

        self._mutate(metadata.value_bytes(values) + (16 << 10), apply)

    # ------------------------------------------------------------------------------------ blocks
    def create_block(self, name: str, columns: Mapping[str, str], attrs: Mapping[str, Any] | None = None, *,
                     signal: str | None = None, axes: str | None = None, kind: str = "data",
                     expected_rows: int | None = None, single_precision: Collection[str] = ()) -> BlockWriter:
        """A new block ``/blocks/<name>``, one float64 column per entry of ``columns`` (name -> unit).

        ``signal``/``axes``: the column a viewer plots and the one it plots against (default: power against
        time, else current density against voltage, else the first non-time column against time).
        ``kind="log"`` makes a temperature or irradiance log an NXlog. ``expected_rows`` sizes the
        compressed chunks (default 4096 rows, right for long traces; a 150-point scan wants 150).
        ``single_precision``: columns stored as float32 (relative resolution 6e-8, finer than a 6½-digit
        reading and far below a cell's noise; half the bytes of float64 before compression): for the
        measured and derived columns of long traces. Never a time column (float32 resolves ~2 min at epoch
        seconds).
        """
        schema.check_name(name, "block")
        if not columns:
            raise DataFileError(f"block {name!r}: give at least one column (name -> unit)")
        for col, unit in columns.items():
            schema.check_name(col, f"column (block {name!r})")
            if col in ("time", "value") and kind == "log":
                raise DataFileError(f"block {name!r}: an NXlog names its links 'time' and 'value'; "
                                    f"give column {col!r} a name with its unit")
            if not isinstance(unit, str):
                raise DataFileError(f"block {name!r}, column {col!r}: unit must be a string, got {unit!r}")
        sig, axis = nexus.choose_plot(list(columns), signal, axes, kind)
        single = _single_precision_columns(name, columns, single_precision, axis)
        chunk_rows = chunk_rows_for(expected_rows)
        schema.check_attrs(attrs or {})  # a bad attribute must not leave half a block behind
        if self.format_version < 2:
            raise DataFileError(f"{self.path}: written in format version 1; labctl {schema.FORMAT_VERSION} "
                                f"reads it but adds no blocks to it")
        with self._io_lock:
            if name in self._blocks:
                raise DataFileError(f"{self.path}: block {name!r} exists already")
            created: list[BlockWriter] = []

            def apply() -> None:
                # Creation order is stored, not tracked by HDF5: a creation-ordered group keeps more than
                # 8 links in a fractal heap, which gets file space only during the flush (see the reserve).
                index = len(self._blocks)
                meta = {schema.BLOCK_INDEX_ATTR: index, "created_time_s": self.clock.now()}
                created.append(BlockWriter.create(self, self._h5, name, dict(columns), {**meta, **(attrs or {})},
                                                  index=index, chunk_rows=chunk_rows, signal=sig, axis=axis,
                                                  kind=kind, single_precision=single))

            def link() -> None:  # the block was linked at the start of this cycle
                if nexus.DEFAULT not in self._h5[schema.BLOCKS].attrs:
                    nexus.set_default_block(self._h5, name)

            self._mutate((64 << 10) + len(columns) * (24 << 10) + metadata.value_bytes(attrs or {}), apply)
            with self._buf_lock:
                self._blocks[name] = created[0]
            self._mutate(0, link)  # links the block, whole on disk since the cycle before
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
    def event(self, kind: str, message: str, /, *, channel: str = "", **data: Any) -> None:
        """A row of ``/events`` (time from the clock, kind, message, ``data`` as JSON, the channel it
        concerns or ""). Queued: the next flush cycle writes it (within ``flush_interval_s``)."""
        row = {"time_s": self.clock.now(), "kind": str(kind), "message": str(message),
               "data": _json(data, f"event {kind!r} data"), "channel": str(channel)}
        with self._buf_lock:
            self._check_usable()
            self._events.queue(row)

    def checkpoint(self, state: Mapping[str, Any]) -> None:
        """Save ``state`` (JSON) with the row count of every block; what ``labctl resume`` starts from.

        Queued like an event. The rows it counts are written in the same cycle or before; if a kill
        interrupts that cycle, readers see that the checkpoint claims rows that are not in the file and
        ignore it (the previous checkpoint is the last one).
        """
        state_json = _json(dict(state), "checkpoint state")
        now_s = self.clock.now()
        with self._buf_lock:
            self._check_usable()
            rows = {name: blk.n_rows for name, blk in self._blocks.items()}
            self._checkpoints.queue({"time_s": now_s, "state": state_json, "block_rows": schema.to_json(rows)})

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

        self._mutate(schema.tree_bytes(results) + metadata.value_bytes(attrs or {}), apply)

    # ---------------------------------------------------------------------------- flush / close
    def flush(self) -> None:
        """Write every buffered row, event and checkpoint to disk now."""
        with self._io_lock:
            self._check_usable()
            self._run_cycle(0, None)

    def close(self) -> None:
        """Compress every block's remaining rows, flush and close; safe to call twice. Raises
        DataFileError if writing failed."""
        with self._io_lock:
            if self._closed:
                return
            self._stop.set()
            error = self._failure
            try:
                if error is None:
                    self._run_cycle(0, None, finish_all=True, final=True)
                    # Every row is compacted now: one more cycle links what the last one created and
                    # writes a journal header that needs no record, so readers skip the ring.
                    self._run_cycle(0, None)
            except Exception as exc:
                error = exc
            finally:
                self._closed = True
                try:
                    self._h5.close()  # flushes what the last cycle wrote
                except Exception as exc:
                    error = error or exc
                finally:
                    try:
                        if self._log is not None:
                            # a writer that failed keeps its log: the last flush may still need replaying
                            self._log.close(remove_log=error is None)
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

    @property
    def uncovered_cycles(self) -> int:
        return self._reserve.uncovered_cycles

    @property
    def reserve_holes(self) -> int:
        return self._reserve.reserve_holes

    # ---------------------------------------------------------------------------------- internals
    def _check_usable(self) -> None:
        if self._closed:
            raise DataFileError(f"{self.path}: the writer is closed")
        if self._failure is not None:
            raise DataFileError(f"{self.path}: writing failed: {self._failure}") from self._failure

    def _mutate(self, nbytes: int, apply: Callable[[], None] | None) -> None:
        with self._io_lock:
            self._check_usable()
            self._run_cycle(nbytes, apply)

    def _link_later(self, parent: h5py.Group, name: str, obj: h5py.HLObject) -> None:
        """Link ``obj`` (created unlinked in this cycle) as ``parent[name]`` at the start of the next cycle.

        A kill in the middle of a flush may leave a new link on disk but not the object it points to (HDF5
        does not order its metadata writes); an object linked a cycle after it was created is whole.
        """
        self._links.append((parent, name, obj))

    def _apply_links(self) -> None:
        links, self._links = self._links, []
        for parent, name, obj in links:
            if name in parent:
                del parent[name]  # a replaced metadata text
            parent[name] = obj

    def _has_work(self) -> bool:
        """Anything for a background cycle: buffered rows, queued rows of a table, compaction due, links."""
        if self._links:
            return True
        with self._buf_lock:
            if self._events.pending() or self._checkpoints.pending() or \
                    any(b._n_pend or b.finish_requested for b in self._blocks.values()):
                return True
        now = real_elapsed_s()
        return any(b.whole_chunk_rows() or (b.n_tail and now - b.last_append_s >= self.idle_compact_s
                                            and b.may_write_partial()) for b in self._blocks.values())

    def _run_cycle(self, extra_bytes: int, apply: Callable[[], None] | None, *, finish_all: bool = False,
                   final: bool = False) -> None:
        """One cycle (I/O lock held): journal, compaction, tables, ``apply``, header, flush."""
        started = time.perf_counter()
        try:
            with self._buf_lock:
                pending = [(b, rows) for b in self._blocks.values() if (rows := b.take_pending()) is not None]
                events, checkpoints = self._events.take(), self._checkpoints.take()
                finishing = {b.name for b in self._blocks.values() if b.finish_requested or finish_all}
                for b in self._blocks.values():
                    b.finish_requested = False
            oldest = self._oldest_live()
            need = extra_bytes + METADATA_SLACK_BYTES + Table.alloc_bytes(events) + \
                Table.alloc_bytes(checkpoints)
            new_rows = {b.name: rows.shape[1] for b, rows in pending}
            for b in self._blocks.values():
                k = new_rows.get(b.name, 0)
                if k or b.n_tail:
                    need += b.alloc_bytes(k)
            self._reserve.ensure(need)
            self._apply_links()
            for b in self._blocks.values():
                b.prepare()
            self._journal_rows(pending)
            self._compact(finishing)
            for table, table_rows in ((self._events, events), (self._checkpoints, checkpoints)):
                if self._text is not None:
                    self._text.append(table.name, table.next_row(), table_rows)  # the rows it is about to get
                table.write(table_rows)
            if finishing or final:
                self._update_default()
            if apply is not None:
                apply()
            if self._journal is not None:
                self._journal.write_header(oldest)
            self._reserve.flush()
            if self._journal is not None:
                self._journal.committed(oldest)
        except (OSError, RuntimeError, ValueError) as exc:
            # I/O failed (disk full, file gone): the writer stops; the file keeps what the last cycle wrote.
            self._failure = exc
            raise DataFileError(f"{self.path}: writing failed: {exc}") from exc
        finally:
            self.cycle_times_s.append(time.perf_counter() - started)

    def _oldest_live(self) -> int:
        """The oldest journal record still needed, as the cycle starts (what its header will say)."""
        if self._journal is None:
            return 0
        seqs = [s for b in self._blocks.values() if (s := b.oldest_seq()) is not None]
        return min(seqs, default=self._journal.head)

    def _journal_rows(self, pending: list[tuple[BlockWriter, np.ndarray]]) -> None:
        relocated, forced = scheduling.journal_rows(list(self._blocks.values()), self._journal, pending)
        self.relocations += relocated
        self.forced_compactions += forced

    def _compact(self, finishing: set[str]) -> None:
        scheduling.compact(list(self._blocks.values()), finishing, self.idle_compact_s)

    def _update_default(self) -> None:
        """Point ``/blocks@default`` at a block with rows if the current one has none."""
        blocks = self._h5[schema.BLOCKS]
        current = blocks.attrs.get(nexus.DEFAULT)
        current_block = self._blocks.get(str(current)) if current is not None else None
        if current_block is not None and current_block.n_compacted > 0:
            return
        first = next((b for b in self._blocks.values() if b.n_compacted > 0), None)
        if first is not None:
            nexus.set_default_block(self._h5, first.name)


def _flusher(ref: weakref.ref[RunWriter], stop: threading.Event) -> None:
    """Background thread: a cycle every ``flush_interval_s`` of *real* time while there is work."""
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
        with writer._io_lock:
            if writer._closed or writer._failure is not None:
                return
            if writer._has_work():
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


def _json(value: Any, what: str) -> str:
    try:
        return schema.to_json(value)
    except (TypeError, ValueError) as exc:
        raise DataFileError(f"{what} cannot be stored as JSON: {exc}") from None
