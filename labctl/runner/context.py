"""What a procedure gets while it runs: a clock, the station's role objects and a data sink.

The context is also where abort, pause and suspension take effect. Every wait (:meth:`RunContext.sleep`, and
every wait inside a driver) is a cancellation point; :meth:`RunContext.check` and :meth:`RunContext.sleep`
put the procedure into its hold while the run is paused (``Procedure.hold`` / ``Procedure.release``) and
raise :class:`~labctl.errors.RunAborted` once the run is aborted. Procedures with several channels run them
with :meth:`RunContext.run_channels` (see :mod:`labctl.runner.channels`).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from labctl.cancel import cancel_scope
from labctl.clock import Clock, real_elapsed_s
from labctl.runner.control import RunControl
from labctl.runner.dispatch import EventBus
from labctl.runner.events import DataRows, LogLine, Progress, RunEvent, Subscriber

if TYPE_CHECKING:
    from labctl.bench import Bench
    from labctl.runner.channels import ChannelContext, ChannelSpec
    from labctl.runner.procedure import Procedure
    from labctl.runner.suspenders import Suspender
    from labctl.store import BlockWriter, RunWriter

log = logging.getLogger("labctl.run")
T = TypeVar("T")

#: Free space a multi-channel run keeps on the data disk; below it the channels hold until space is freed.
DISK_RESERVE_BYTES = 256 * 2**20

#: A channel's checkpoints reach the file at most this often (s of the run's clock).
CHANNEL_CHECKPOINT_S = 60.0
#: The simulated world's state (every cell) is saved with a checkpoint at most this often (s of the run's clock).
WORLD_SNAPSHOT_S = 600.0

#: Root attribute holding the simulated world's state at the last checkpoint (simulated stations only).
SIMULATED_WORLD_ATTR = "simulated_world"


@dataclass(frozen=True)
class RecordedEvent(LogLine):
    """An entry just written to the run's ``/events`` (``kind``, ``message`` and its ``data``), for subscribers
    that act on it; shown as a log line ``"kind: message"`` by those that only print log lines."""

    kind: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


class BlockSink:
    """A block of the run file as a procedure sees it: append rows or arrays, set attributes."""

    def __init__(self, writer: BlockWriter, ctx: RunContext) -> None:
        self._writer = writer
        self._ctx = ctx

    @property
    def name(self) -> str:
        return self._writer.name

    @property
    def n_rows(self) -> int:
        return self._writer.n_rows

    def append_row(self, values: Mapping[str, float] | None = None, **kw: float) -> None:
        row = dict(values or {}, **kw)
        self._writer.append_row(row)
        if self._ctx.bus.subscribers:  # plain numbers: the bus turns the rows it delivers into arrays at once
            self._ctx.emit(DataRows(self.name, row, self._writer.columns))

    def append_columns(self, values: Mapping[str, Any] | None = None, **kw: Any) -> None:
        cols = dict(values or {}, **kw)
        self._writer.append_columns(cols)
        if self._ctx.bus.subscribers:
            self._ctx.emit(DataRows(self.name, {k: np.asarray(v, float) for k, v in cols.items()},
                                    self._writer.columns))

    def finish(self) -> None:
        """The block is complete (a scan measured): the file compresses it and may plot it by default."""
        self._writer.finish()

    def set_attrs(self, **attrs: Any) -> None:
        self._writer.set_attrs(**attrs)


class RunContext:
    """Handed to ``startup``, ``execute`` and ``shutdown``."""

    def __init__(
        self,
        *,
        clock: Clock,
        writer: RunWriter,
        bench: Bench | None,
        control: RunControl,
        subscribers: list[Subscriber] | None = None,
        bus: EventBus | None = None,
        resume_state: dict[str, Any] | None = None,
        procedure: Procedure | None = None,
        segment: int = 0,
    ) -> None:
        self.clock = clock
        self._bench = bench
        self.resume_state = resume_state
        self.procedure = procedure
        self.control = control
        self._writer = writer
        self.bus = bus if bus is not None else EventBus(subscribers or [])
        self._started_real_s = real_elapsed_s()
        self._start_fraction: float | None = None
        self._checkpoint_lock = threading.Lock()
        self._channel_states: dict[str, Any] = dict((resume_state or {}).get("channels", {}))
        self._run_state: dict[str, Any] = {k: v for k, v in (resume_state or {}).items() if k != "channels"}
        #: How the channels of the last :meth:`run_channels` ended, by channel name.
        self.channel_outcomes: dict[str, str] = {}
        #: What the procedure keeps across a resume (saved with every checkpoint :meth:`steps` makes).
        self.state: dict[str, Any] = {}
        #: How many times this run was resumed: 0 for data measured before any interruption.
        self.segment = int(segment)
        self._status: dict[str, dict[str, Any]] = {}
        self._checkpoint_written_s = -math.inf
        self._world_written_s = -math.inf
        self._status_written_real_s = -math.inf

    @property
    def bench(self) -> Bench:
        """The connected instruments; a clear error for a procedure that needs a station run without one."""
        if self._bench is None:
            from labctl.errors import StationError

            raise StationError("this procedure needs a station (its instruments), and the run has none")
        return self._bench

    @property
    def has_bench(self) -> bool:
        return self._bench is not None

    # --------------------------------------------------------------------------------- data
    def create_block(self, name: str, columns: Mapping[str, str], attrs: Mapping[str, Any] | None = None, *,
                     signal: str | None = None, axes: str | None = None, kind: str = "data",
                     expected_rows: int | None = None, single_precision: Collection[str] = ()) -> BlockSink:
        """A new block (group) with one column per entry of ``columns`` (name → unit). ``signal``/``axes``: what
        a generic viewer plots against what; ``kind="log"`` for a temperature or irradiance log;
        ``expected_rows`` sizes the file's chunks (a 150-point scan wants 150); ``single_precision`` names
        columns stored as float32 (long traces; never times)."""
        return BlockSink(self._writer.create_block(name, dict(columns), dict(attrs or {}), signal=signal, axes=axes,
                                                   kind=kind, expected_rows=expected_rows,
                                                   single_precision=single_precision), self)

    def block(self, name: str) -> BlockSink:
        """An existing block, to append to after a resume."""
        return BlockSink(self._writer.block(name), self)

    def block_names(self) -> list[str]:
        return self._writer.block_names()

    def event(self, kind: str, message: str, **data: Any) -> None:
        """An entry of the run file's ``/events``; subscribers (the engine's alarms, front ends) get it as a
        :class:`RecordedEvent`, which is also a log line. On real time it carries the system's wall time too
        (``wall_time_s``): the event's own time follows the monotonic clock, so an NTP step or a daylight-saving
        change shows as a difference between the two, never as a jump in the data."""
        if not getattr(self.clock, "virtual", False):
            data.setdefault("wall_time_s", self.clock.wall_time())
        self._writer.event(kind, message, **data)
        log.info("%s: %s", kind, message)
        self.emit(RecordedEvent("info", f"{kind}: {message}", kind=kind, data=dict(data)))

    def checkpoint(self, state: Mapping[str, Any]) -> None:
        """Save a small JSON-able state dict; `labctl resume` hands the last one back as ``resume_state``.

        With channels, each channel's own checkpoints are kept under ``"channels"`` beside it. On a simulated
        station the state of the simulated devices is saved with it, so a resumed run continues with the same
        (aged, light-soaked, ...) cells rather than fresh ones.
        """
        with self._checkpoint_lock:
            self._run_state = dict(state)
            self._write_checkpoint()

    def checkpoint_channel(self, channel: str, state: Mapping[str, Any]) -> None:
        """A channel's state. Kept at once (a channel restarted after a fault takes it up), written to the
        file at most every :data:`CHANNEL_CHECKPOINT_S` of the run's time: a channel saving after every
        reading of a 1000 h run must not make the file's checkpoints its biggest table."""
        with self._checkpoint_lock:
            self._channel_states[channel] = dict(state)
            if self.clock.now() - self._checkpoint_written_s >= CHANNEL_CHECKPOINT_S:
                self._write_checkpoint()

    def channel_resume_state(self, channel: str) -> dict[str, Any] | None:
        state = self._channel_states.get(channel)
        return dict(state) if state is not None else None

    def _write_checkpoint(self) -> None:
        merged = dict(self._run_state)
        if self._channel_states:
            merged["channels"] = dict(self._channel_states)
        self._writer.checkpoint(merged)
        now = self.clock.now()
        self._checkpoint_written_s = now
        simulation = getattr(self._bench, "simulation", None)
        if simulation is not None and now - self._world_written_s >= WORLD_SNAPSHOT_S:
            self._writer.set_root_attrs(**{SIMULATED_WORLD_ATTR: simulation.world.state_dict()})
            self._world_written_s = now

    def write_analysis(self, name: str, results: Mapping[str, Any], attrs: Mapping[str, Any] | None = None
                       ) -> None:
        self._writer.write_analysis(name, results, dict(attrs or {}))

    # ------------------------------------------------------------------------------- status
    @property
    def status_path(self) -> Path | None:
        """The status file beside the data file (``<file>.status.json``)."""
        path = getattr(self._writer, "path", None)
        return None if path is None else Path(str(path) + ".status.json")

    def publish_status(self, channel: str, **fields: Any) -> None:
        """What a channel is doing now, for people and scripts that look at a long run: merged into the status
        file beside the data file, rewritten (atomically) at most once a second of real time."""
        with self._checkpoint_lock:
            entry = self._status.setdefault(channel, {})
            entry.update({k: v for k, v in fields.items() if v is not None})
            entry["updated_s"] = self.clock.now()
            due = real_elapsed_s() - self._status_written_real_s >= 1.0
        if due:
            self.write_status()

    def write_status(self, run_status: str | None = None) -> None:
        path = self.status_path
        if path is None:
            return
        with self._checkpoint_lock:
            document = {"time_s": self.clock.now(), "run_status": run_status or "running",
                        "channels": {name: dict(entry) for name, entry in self._status.items()}}
            self._status_written_real_s = real_elapsed_s()
        try:
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
            temporary.replace(path)
        except OSError as exc:  # a status file never stops a measurement
            log.warning("status file %s not written: %s", path, exc)

    # ---------------------------------------------------------------------------- reporting
    def emit(self, event: RunEvent) -> None:
        self.bus.emit(event)

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress; the ETA is estimated from real elapsed time since the first report."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        now = real_elapsed_s()
        if self._start_fraction is None:
            self._start_fraction = fraction
            self._started_real_s = now
        done = fraction - self._start_fraction
        eta = (now - self._started_real_s) * (1.0 - fraction) / done if done > 1e-9 else None
        self.emit(Progress(fraction, eta, message))

    def log(self, message: str, level: str = "info") -> None:
        log.log(logging.getLevelName(level.upper()), message)
        self.emit(LogLine(level, message))

    # ---------------------------------------------------------------------- pause and abort
    def check(self) -> None:
        """A cancellation point; while the run is paused, hold (the procedure's hold) until resumed."""
        self.control.token.raise_if_cancelled()
        if self.control.paused:
            self._pause_hold(None)
        self.control.token.raise_if_cancelled()

    def _pause_hold(self, channel: ChannelContext | None) -> None:
        where = {"channel": channel.name} if channel is not None else {}
        started = self.clock.now()
        self.event("paused", "run paused: holding", **where)
        if self.procedure is not None:
            self.procedure.hold(channel if channel is not None else self, "paused")
        self.control.wait_while_paused(self.clock)
        self.control.token.raise_if_cancelled()
        if self.procedure is not None:
            self.procedure.release(channel if channel is not None else self)
        self.event("resumed", f"run resumed after a pause of {self.clock.now() - started:.3g} s",
                   paused_s=self.clock.now() - started, **where)

    def sleep(self, seconds: float) -> None:
        """Wait on the run's clock; an abort ends the wait at once, a pause holds."""
        self.check()
        with cancel_scope(self.control.token):
            self.clock.sleep(seconds)
        self.check()

    @property
    def resumed_run(self) -> bool:
        """True when this run continues an interrupted one (its blocks should say so)."""
        return self.segment > 0

    def steps(self, plan: Sequence[T]) -> Iterator[T]:
        """Walk a procedure's plan with resume bookkeeping, progress and checkpoints done by the engine (see
        :mod:`labctl.runner.steps`)."""
        from labctl.runner.steps import walk

        return walk(self, plan)

    # ------------------------------------------------------------------------------ channels
    def run_channels(self, body: Callable[[ChannelContext], None],
                     channels: Sequence[ChannelSpec] | None = None,
                     suspenders: Sequence[Suspender] = (),
                     background: Sequence[Callable[[RunContext], None]] = ()) -> dict[str, str]:
        """Run ``body`` once per channel, concurrently (see :mod:`labctl.runner.channels`); returns how each
        ended (``completed``, ``lost``, ``failed``, ``aborted``). ``background`` tasks run beside the channels
        (e.g. the light schedule) until they return or the last channel ends."""
        from labctl.runner.channels import ChannelGroup
        from labctl.runner.suspenders import DiskSpace

        if channels is None:
            if self.procedure is None or self._bench is None:
                raise RuntimeError("run_channels needs the channels when the run has no procedure or bench")
            channels = self.procedure.channels(self.bench.station)
        suspenders = list(suspenders)
        path = getattr(self._writer, "path", None)
        if path is not None and not any(isinstance(s, DiskSpace) for s in suspenders):
            # Nothing recorded may be lost to a full disk: hold the channels before it fills.
            suspenders.append(DiskSpace(Path(path).parent, min_free_bytes=DISK_RESERVE_BYTES))
        group = ChannelGroup(self, list(channels), suspenders, background)
        self.channel_outcomes = group.run(body)
        return dict(self.channel_outcomes)
