"""The run lifecycle: validate → create file → connect → startup → execute → shutdown.

The procedure runs in a run thread of its own (on virtual time, a participant of the clock's schedule); the
thread that called :meth:`Runner.run` only waits, so Ctrl-C there is turned into an abort instead of tearing
through an instrument exchange. Every wait of the run watches one :class:`~labctl.cancel.CancelToken`:
abort, Ctrl-C and SIGTERM reach the safe state within a second whatever the procedure is waiting for.

Whatever ends a run — success, an exception, an abort, Ctrl-C, SIGTERM, an interlock — the procedure's own
``shutdown`` runs, then every connected instrument is put in its safe state (outside the cancelled scope, so
its waits complete; a dead instrument gets one quick reopening, not the run's hour of back-off), and the end
state with its reason is written to the run file's ``/events`` and root ``status``:

- ``completed``: the procedure finished (every channel, for a procedure with channels);
- ``aborted``: a person stopped it (abort button, Ctrl-C) or an interlock did;
- ``interrupted``: stopped by something that was not the user's decision — SIGTERM (a service manager, a
  shutdown), an instrument that could not be recovered, a channel lost — with its last checkpoint intact,
  so ``labctl resume FILE`` (or the engine, after a restart) continues it into the same file;
- ``failed``: a bug or a data file that could not be written.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.cancel import cancel_scope
from labctl.clock import Clock, RealClock, VirtualClock
from labctl.errors import ConnectionLost, InstrumentError, InterlockTripped, RunAborted
from labctl.runner.context import SIMULATED_WORLD_ATTR, RecordedEvent, RunContext
from labctl.runner.control import RunControl
from labctl.runner.dispatch import EventBus
from labctl.runner.events import StatusChanged, Subscriber
from labctl.runner.procedure import Procedure, resolve_values
from labctl.runner.registry import procedure_class

if TYPE_CHECKING:
    from labctl.bench import Bench
    from labctl.station import Station
    from labctl.store import RunWriter

log = logging.getLogger("labctl.run")

#: Statuses after which pause and resume no longer change what a run reports.
_ENDING = frozenset({"shutting down", "completed", "aborted", "failed", "interrupted"})

__all__ = ["SIMULATED_WORLD_ATTR", "RunResult", "Runner", "new_data_path", "resume_runner"]


@dataclass(frozen=True)
class RunResult:
    """How a run ended, where its data are, and its metrics (when the procedure has an analysis)."""

    path: Path
    status: str
    reason: str = ""
    analysis: dict[str, Any] | None = None


def new_data_path(directory: Path, stem: str, clock: Clock) -> Path:
    """``<dir>/<stem>_<YYYYmmdd-HHMMSS>.h5``; never an existing file (a counter is added if needed)."""
    stamp = datetime.fromtimestamp(clock.now(), tz=UTC).strftime("%Y%m%d-%H%M%S")
    safe_stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or "run"
    candidate = directory / f"{safe_stem}_{stamp}.h5"
    counter = 1
    while candidate.exists():
        candidate = directory / f"{safe_stem}_{stamp}_{counter}.h5"
        counter += 1
    return candidate


@contextmanager
def _participant(clock: Clock, name: str) -> Iterator[None]:
    if isinstance(clock, VirtualClock):
        with clock.participant(name):
            yield
    else:
        yield


class Runner:
    """Runs one procedure into one HDF5 file. ``pause``/``resume``/``abort`` are safe from any thread.

    ``bench``: a bench connected by a session (the engine) that outlives this run: the run uses it and puts it
    in its safe state at the end, but neither connects nor closes it.
    """

    def __init__(
        self,
        procedure: Procedure,
        *,
        station: Station | None = None,
        path: Path | None = None,
        directory: Path | str = Path("labctl-data"),
        operator: str = "",
        clock: Clock | None = None,
        subscribers: list[Subscriber] | None = None,
        append: bool = False,
        bench: Bench | None = None,
    ) -> None:
        self.procedure = procedure
        self.station = station if station is not None or bench is None else bench.station
        self.operator = operator or _user_name()
        self.control = RunControl()
        self.bus = EventBus(subscribers or [])
        self._append = append
        self._explicit_clock = clock if clock is not None or bench is None else bench.clock
        self._session_bench = bench
        self._directory = Path(directory)
        self.path = path
        self.status = "created"
        #: The connected instruments while the run is on (None before connecting and after closing).
        self.bench: Bench | None = None
        self._instrument_names: list[str] | None = None
        self._result: RunResult | None = None
        self._segment = 0

    # ------------------------------------------------------------------------------- controls
    @property
    def subscribers(self) -> list[Subscriber]:
        return self.bus.subscribers

    def subscribe(self, subscriber: Subscriber) -> None:
        self.bus.subscribe(subscriber)

    def pause(self) -> None:
        self.control.pause()
        if self.control.paused and self.status not in _ENDING:
            self._set_status("paused", "pause requested")

    def resume(self) -> None:
        self.control.resume()
        if self.status == "paused":
            self._set_status("running", "resumed")

    def abort(self, reason: str = "aborted by the user", status: str = "aborted") -> None:
        """Stop the run from any thread: its waits end at once and it goes to the safe state. ``status``
        ``"interrupted"`` keeps it resumable (SIGTERM)."""
        self.control.abort(reason, status)

    def _record(self, writer: RunWriter, kind: str, message: str, **data: Any) -> None:
        """An event of the run's own (resume, end, safe state) in the file and to the subscribers, as the
        procedure's events go (:meth:`RunContext.event`)."""
        writer.event(kind, message, **data)
        self.bus.emit(RecordedEvent("info", f"{kind}: {message}", kind=kind, data=dict(data)))

    def _set_status(self, status: str, reason: str = "") -> None:
        self.status = status
        self.bus.emit(StatusChanged(status, reason))

    # ------------------------------------------------------------------------------- lifecycle
    def validate(self) -> list[str]:
        """Everything that can be checked without touching an instrument, before any file exists:
        the procedure against the station's samples and instrument limits. Returns the instruments the run
        will connect. Raises :class:`~labctl.errors.ParameterError` or :class:`~labctl.errors.StationError`.
        """
        if self._instrument_names is None:
            self._set_status("validating")
            names: list[str] = []
            if self.station is not None:
                self.procedure.check_station(self.station)
                names = self.procedure.instruments_needed(self.station)
                self.station.check_instruments(names)
                if self.station.simulated and self._session_bench is None:
                    from labctl.sim_bench import check_simulation

                    check_simulation(self.station)  # a misspelt preset is refused here, not after the file exists
            self._check_destination()
            self._instrument_names = names
        return self._instrument_names

    def _check_destination(self) -> None:
        """The data file can be written where it is asked for (before a progress bar, a file or an instrument)."""
        from labctl.errors import DataFileError

        if self._append:
            return
        if self.path is not None and self.path.exists():
            raise DataFileError(f"{self.path} exists; labctl never overwrites a data file")
        directory = self.path.parent if self.path is not None else self._directory
        existing = next((p for p in (directory, *directory.parents) if p.exists()), None)
        if existing is not None and (not existing.is_dir() or not _can_create_files_in(existing)):
            what = str(self.path) if self.path is not None else f"data files to {directory}"
            raise DataFileError(f"cannot write {what}: files cannot be created in {existing}")

    def run(self) -> RunResult:
        """Run to the end and return how it ended. Ctrl-C in the calling thread aborts the run (a second
        Ctrl-C is ignored until the instruments are safe)."""
        names = self.validate()
        checkpoint, world_state = self._saved_state()
        clock = self._choose_clock(world_state)
        writer = self._open_file(clock)
        thread = threading.Thread(target=self._run_thread, args=(names, clock, writer, checkpoint, world_state),
                                  name=f"run-{self.procedure.name}", daemon=True)
        thread.start()
        while thread.is_alive():
            try:
                thread.join(0.2)
            except KeyboardInterrupt:
                self.abort("Ctrl-C")
        self.bus.flush()
        assert self._result is not None
        return self._result

    # ---------------------------------------------------------------------------------- pieces
    def _saved_state(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if not self._append:
            return None, None
        from labctl.store import RunReader

        assert self.path is not None
        with RunReader(self.path) as reader:
            checkpoint = reader.last_checkpoint()
            saved_world = reader.attrs.get(SIMULATED_WORLD_ATTR)
            self._segment = 1 + sum(1 for event in reader.events() if event.kind == "resume")
        return checkpoint, saved_world if isinstance(saved_world, dict) else None

    def _choose_clock(self, world_state: dict[str, Any] | None) -> Clock:
        clock = self._explicit_clock
        if clock is None and world_state is not None and self.station is not None and self.station.simulated:
            # A simulated run continues in its own virtual time, with its devices as they were.
            clock = VirtualClock(start_s=float(world_state["time_s"]))
        if clock is None:
            clock = self.station.make_clock() if self.station else RealClock()
        return clock

    def _open_file(self, clock: Clock) -> RunWriter:
        from labctl.store import RunWriter

        if self._append:
            assert self.path is not None
            return RunWriter.open_existing(self.path, clock=clock)
        if self.path is None:
            self._directory.mkdir(parents=True, exist_ok=True)
            self.path = new_data_path(self._directory, self.procedure.file_stem(), clock)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        return RunWriter.create(
            self.path,
            procedure=self.procedure.name,
            procedure_class=self.procedure.class_path(),
            parameters=self.procedure.values,
            operator=self.operator,
            station=self.station.name if self.station else "",
            sample=self.procedure.sample_metadata(self.station),
            conditions=self.procedure.conditions(),
            clock=clock,
        )

    def _run_thread(self, names: list[str], clock: Clock, writer: RunWriter,
                    checkpoint: dict[str, Any] | None, world_state: dict[str, Any] | None) -> None:
        assert self.path is not None
        bench: Bench | None = None
        ctx: RunContext | None = None
        status, reason = "failed", ""
        token = self.control.token
        with _participant(clock, "run"):
            try:  # from here on, whatever happens, the file is closed with the run's end state
                with cancel_scope(token):
                    if not self._append and self.station is not None:
                        # The station's whole definition, so `labctl resume` rebuilds the same bench.
                        writer.set_root_attrs(station_definition=self.station.describe())
                    if self._append:
                        self._record(writer, "resume", "run resumed from its last checkpoint",
                                     checkpoint=bool(checkpoint))
                    writer.set_status("running")
                    bench = self._connect(names, clock, writer, world_state)
                    ctx = RunContext(clock=clock, writer=writer, bench=bench, control=self.control, bus=self.bus,
                                     resume_state=checkpoint["state"] if checkpoint else None,
                                     procedure=self.procedure, segment=self._segment)
                    ctx.event("start", f"procedure {self.procedure.name} starting", resumed=self._append,
                              instruments=names)
                    self._set_status("running")
                    self.procedure.startup(ctx)
                    self.procedure.execute(ctx)
                status, reason = _channel_status(ctx.channel_outcomes)
            except RunAborted as exc:
                status, reason = token.status if token.cancelled else "aborted", str(exc) or "aborted"
            except InterlockTripped as exc:
                status, reason = "aborted", f"interlock: {exc}"
            except (ConnectionLost, InstrumentError) as exc:
                # The data and the last checkpoint are safe; the run can be resumed once the fault is fixed.
                status, reason = "interrupted", f"instrument fault: {exc}"
            except BaseException as exc:
                log.exception("run failed")
                status, reason = "failed", f"{type(exc).__name__}: {exc}"
            finally:
                self._set_status("shutting down", reason)
                with cancel_scope(None):
                    self._shutdown(ctx, bench, writer)
                if ctx is not None and ctx._status:
                    ctx.write_status(status)
                self._finish(status, reason, writer, bench)

    def _connect(self, names: list[str], clock: Clock, writer: RunWriter,
                 world_state: dict[str, Any] | None) -> Bench | None:
        if self.station is None or not names:
            return None
        self._set_status("connecting")
        if self._session_bench is not None:
            bench = self._session_bench
            bench.ensure_connected(names)
        else:
            from labctl.bench import Bench

            bench = Bench.connect(self.station, names, clock=clock)
            if world_state is not None and bench.simulation is not None:
                bench.simulation.world.load_state(world_state)
                self._record(writer, "simulation_restored", "simulated devices restored from the last checkpoint")
        self.bench = bench
        for name, info in bench.describe_instruments(names).items():
            writer.add_instrument(name, **info)
        return bench

    def _finish(self, status: str, reason: str, writer: RunWriter, bench: Bench | None) -> None:
        # A broken data file (disk full, file gone) must not keep the instruments connected or the file
        # open: each bookkeeping step is tried on its own.
        # Subscribers see every event while the file is still open (the instruments are already safe): an
        # alarm raised by the run's last events is written into its /events, not lost to a closed file.
        _quietly(self.bus.flush)
        wall = {} if getattr(writer.clock, "virtual", True) else {"wall_time_s": writer.clock.wall_time()}
        problems = [_quietly(self._record, writer, "end", reason, status=status, **wall),
                    _quietly(writer.set_status, status, reason), _quietly(writer.close)]
        problem = next((p for p in problems if p is not None), None)
        if problem is not None and status == "completed":
            # The procedure finished but its last data may not be on disk: not a completed run.
            status, reason = "failed", f"the data file could not be finished: {problem}"
        if bench is not None and bench is not self._session_bench:
            bench.close()
        self.bench = None
        analysis = self._analyze() if status == "completed" else None
        assert self.path is not None
        self._result = RunResult(self.path, status, reason, analysis)
        self._set_status(status, reason)

    def _analyze(self) -> dict[str, Any] | None:
        """The procedure's metrics, also written to the file's /analysis; None if it has no analysis.

        A failing analysis never fails a completed measurement: the data are on disk, and
        `labctl analyze FILE` can be run again once the problem is fixed.
        """
        from labctl.analyze import analyze_file

        if not type(self.procedure).defines_analysis() or self.path is None:
            return None
        try:
            return analyze_file(self.path, type(self.procedure))
        except Exception:
            log.exception("analysis of %s failed", self.path)
            return None

    def _shutdown(self, ctx: RunContext | None, bench: Bench | None, writer: Any) -> None:
        if ctx is not None:
            try:
                self.procedure.shutdown(ctx)
            except BaseException as exc:  # Ctrl-C twice must still leave the instruments safe
                log.exception("procedure shutdown failed")
                _quietly(self._record, writer, "shutdown_failed", f"procedure shutdown: {type(exc).__name__}: {exc}")
        if bench is not None:
            with ExitStack() as stack:
                for driver in bench.drivers.values():
                    if hasattr(driver, "quick_link"):
                        stack.enter_context(driver.quick_link())
                problems = bench.safe_state_all()
            for name, problem in problems.items():
                _quietly(self._record, writer, "safe_state_failed", problem, instrument=name)
            _quietly(self._record, writer, "safe_state", "instruments in safe state", instruments=sorted(bench.names))


def _can_create_files_in(directory: Path) -> bool:
    """Try it (permissions alone do not say: /proc looks writable to root)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def _user_name() -> str:
    """Who runs the measurement when nobody said: the account running labctl."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name (a container, a service without a user database)
        return ""


def _channel_status(outcomes: dict[str, str]) -> tuple[str, str]:
    """The run's end state from its channels' (completed when it had none)."""
    if not outcomes:
        return "completed", "procedure finished"
    by_outcome: dict[str, list[str]] = {}
    for channel, outcome in outcomes.items():
        by_outcome.setdefault(outcome, []).append(channel)
    if "failed" in by_outcome:
        return "failed", f"channel(s) failed: {', '.join(by_outcome['failed'])}"
    if "lost" in by_outcome:
        return "interrupted", (f"channel(s) lost their instrument: {', '.join(by_outcome['lost'])}; the others "
                               "completed")
    if "aborted" in by_outcome:
        return "aborted", f"channel(s) aborted: {', '.join(by_outcome['aborted'])}"
    return "completed", f"procedure finished ({len(outcomes)} channels)"


def _quietly(action: Callable[..., Any], *args: Any, **kwargs: Any) -> Exception | None:
    """Run one end-of-run bookkeeping step; a failure is logged and returned, never allowed to skip the
    next step."""
    try:
        action(*args, **kwargs)
    except Exception as exc:
        log.exception("end of run: %s failed", getattr(action, "__name__", action))
        return exc
    return None


def resume_runner(path: Path, *, station: Station | None = None, subscribers: list[Subscriber] | None = None,
                  clock: Clock | None = None) -> Runner:
    """A runner that continues the run in ``path`` from its last checkpoint, appending to the same file.

    The procedure is rebuilt from the parameters saved in the file; the station is the one named in the file
    unless another is given.
    """
    from labctl.station import Station
    from labctl.store import RunReader

    with RunReader(path) as reader:
        cls_path = reader.procedure_class or reader.procedure
        values = reader.parameters
        station_desc = reader.attrs.get("station_definition", "") or reader.attrs.get("station", "")
        status = reader.status
    if status == "completed":
        from labctl.errors import DataFileError

        raise DataFileError(f"{path}: the run completed; there is nothing to resume")
    procedure = resolve_values(procedure_class(cls_path), values)
    if station is None and station_desc:
        station = Station.from_description(station_desc)
    return Runner(procedure, station=station, path=path, append=True, subscribers=subscribers, clock=clock)
