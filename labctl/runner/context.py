"""What a procedure gets while it runs: a clock, the station's role objects and a data sink.

The context is also where pause and abort take effect: :meth:`RunContext.check` and
:meth:`RunContext.sleep` block while the run is paused and raise :class:`~labctl.errors.RunAborted` once an
abort was asked for, from any thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from labctl.clock import Clock, real_elapsed_s
from labctl.errors import RunAborted
from labctl.runner.events import DataRows, LogLine, Progress, RunEvent, Subscriber, notify

if TYPE_CHECKING:
    from labctl.bench import Bench
    from labctl.store import BlockWriter, RunWriter

log = logging.getLogger("labctl.run")

# Real seconds between abort checks while sleeping on a real clock.
_REAL_SLEEP_SLICE_S = 0.2


class RunControl:
    """Pause / resume / abort flags shared between the run thread and whoever controls it."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._abort = threading.Event()
        self.abort_reason = ""

    def pause(self) -> None:
        if not self._abort.is_set():  # an abort wins: a run that is stopping must not wait for a resume
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def abort(self, reason: str = "aborted by the user") -> None:
        if not self._abort.is_set():
            self.abort_reason = reason
        self._abort.set()
        self._running.set()  # a paused run must wake up to shut down

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    def wait_while_paused(self) -> None:
        while not self._running.wait(timeout=0.5) and not self._abort.is_set():
            pass


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
        self._ctx.emit(DataRows(self.name, {k: np.atleast_1d(np.asarray(v, float)) for k, v in row.items()},
                                self._writer.columns))

    def append_columns(self, values: Mapping[str, Any] | None = None, **kw: Any) -> None:
        cols = dict(values or {}, **kw)
        self._writer.append_columns(cols)
        self._ctx.emit(DataRows(self.name, {k: np.asarray(v, float) for k, v in cols.items()},
                                self._writer.columns))

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
        subscribers: list[Subscriber],
        resume_state: dict[str, Any] | None = None,
    ) -> None:
        self.clock = clock
        self.bench = bench
        self.resume_state = resume_state
        self._writer = writer
        self._control = control
        self._subscribers = subscribers
        self._started_real_s = real_elapsed_s()
        self._start_fraction: float | None = None

    # --------------------------------------------------------------------------------- data
    def create_block(self, name: str, columns: Mapping[str, str], attrs: Mapping[str, Any] | None = None
                     ) -> BlockSink:
        """A new block (group) with one column per entry of ``columns`` (name → unit)."""
        return BlockSink(self._writer.create_block(name, dict(columns), dict(attrs or {})), self)

    def block(self, name: str) -> BlockSink:
        """An existing block, to append to after a resume."""
        return BlockSink(self._writer.block(name), self)

    def block_names(self) -> list[str]:
        return self._writer.block_names()

    def event(self, kind: str, message: str, **data: Any) -> None:
        self._writer.event(kind, message, **data)
        self.log(f"{kind}: {message}")

    def checkpoint(self, state: Mapping[str, Any]) -> None:
        """Save a small JSON-able state dict; `labctl resume` hands the last one back as ``resume_state``.

        On a simulated station the state of the simulated devices is saved with it, so a resumed run
        continues with the same (aged, light-soaked, ...) cells rather than fresh ones.
        """
        self._writer.checkpoint(dict(state))
        simulation = getattr(self.bench, "simulation", None)
        if simulation is not None:
            from labctl.runner.runner import SIMULATED_WORLD_ATTR

            self._writer.set_root_attrs(**{SIMULATED_WORLD_ATTR: simulation.world.state_dict()})

    def write_analysis(self, name: str, results: Mapping[str, Any], attrs: Mapping[str, Any] | None = None
                       ) -> None:
        self._writer.write_analysis(name, results, dict(attrs or {}))

    # ---------------------------------------------------------------------------- reporting
    def emit(self, event: RunEvent) -> None:
        notify(self._subscribers, event)

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
        """Block while paused; raise RunAborted when an abort was asked for."""
        if self._control.paused:
            self._writer.event("paused", "run paused")
            self._control.wait_while_paused()
            if not self._control.aborted:
                self._writer.event("resumed", "run resumed after pause")
        if self._control.aborted:
            raise RunAborted(self._control.abort_reason)

    def sleep(self, seconds: float) -> None:
        """Wait on the run's clock, staying responsive to pause and abort."""
        self.check()
        if getattr(self.clock, "virtual", False):
            self.clock.sleep(seconds)
            self.check()
            return
        remaining = float(seconds)
        while remaining > 0:
            step = min(remaining, _REAL_SLEEP_SLICE_S)
            self.clock.sleep(step)
            remaining -= step
            self.check()
