"""The run lifecycle: validate → create file → connect → startup → execute → shutdown.

Whatever ends a run — success, an exception, an abort from another thread, Ctrl-C, SIGTERM, an interlock —
the procedure's own ``shutdown`` runs, then every connected instrument is put in its safe state, and the end
state with its reason is written to the run file's ``/events`` and root ``status``. A run stopped by an
instrument that could not be recovered ends as ``interrupted`` with its last checkpoint intact, so
``labctl resume FILE`` can continue it into the same file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.clock import Clock, RealClock, VirtualClock
from labctl.errors import ConnectionLost, InstrumentError, InterlockTripped, RunAborted
from labctl.runner.context import RunContext, RunControl
from labctl.runner.events import StatusChanged, Subscriber, notify
from labctl.runner.procedure import Procedure, resolve_values
from labctl.runner.registry import procedure_class

if TYPE_CHECKING:
    from labctl.bench import Bench
    from labctl.station import Station

log = logging.getLogger("labctl.run")

#: Statuses after which pause and resume no longer change what a run reports.
_ENDING = frozenset({"shutting down", "completed", "aborted", "failed", "interrupted"})

#: Root attribute holding the simulated world's state at the last checkpoint (simulated stations only).
SIMULATED_WORLD_ATTR = "simulated_world"


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


class Runner:
    """Runs one procedure into one HDF5 file. ``pause``/``resume``/``abort`` are safe from any thread."""

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
    ) -> None:
        self.procedure = procedure
        self.station = station
        self.operator = operator
        self.control = RunControl()
        self.subscribers: list[Subscriber] = list(subscribers or [])
        self._append = append
        self._explicit_clock = clock
        self._directory = Path(directory)
        self.path = path
        self.status = "created"
        #: The connected instruments while the run is on (None before connecting and after closing).
        self.bench: Bench | None = None
        self._instrument_names: list[str] | None = None

    # ------------------------------------------------------------------------------- controls
    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def pause(self) -> None:
        self.control.pause()
        if self.control.paused and self.status not in _ENDING:
            self._set_status("paused", "pause requested")

    def resume(self) -> None:
        self.control.resume()
        if self.status == "paused":
            self._set_status("running", "resumed")

    def abort(self, reason: str = "aborted by the user") -> None:
        self.control.abort(reason)

    def _set_status(self, status: str, reason: str = "") -> None:
        self.status = status
        notify(self.subscribers, StatusChanged(status, reason))

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
            self._instrument_names = names
        return self._instrument_names

    def run(self) -> RunResult:
        from labctl.store import RunWriter

        names = self.validate()
        resume_state: dict[str, Any] | None = None
        checkpoint: dict[str, Any] | None = None
        world_state: dict[str, Any] | None = None
        if self._append:
            from labctl.store import RunReader

            assert self.path is not None
            with RunReader(self.path) as reader:
                checkpoint = reader.last_checkpoint()
                saved_world = reader.attrs.get(SIMULATED_WORLD_ATTR)
            resume_state = checkpoint["state"] if checkpoint else None
            world_state = saved_world if isinstance(saved_world, dict) else None
        clock = self._explicit_clock
        if clock is None and world_state is not None and self.station is not None and self.station.simulated:
            # A simulated run continues in its own virtual time, with its devices as they were.
            clock = VirtualClock(start_s=float(world_state["time_s"]))
        if clock is None:
            clock = self.station.make_clock() if self.station else RealClock()

        if self._append:
            assert self.path is not None
            writer = RunWriter.open_existing(self.path, clock=clock)
        else:
            if self.path is None:
                self._directory.mkdir(parents=True, exist_ok=True)
                self.path = new_data_path(self._directory, self.procedure.file_stem(), clock)
            writer = RunWriter.create(
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
        assert self.path is not None

        bench: Bench | None = None
        ctx: RunContext | None = None
        status, reason = "failed", ""
        try:  # from here on, whatever happens, the file is closed with the run's end state
            if not self._append and self.station is not None:
                # The station's whole definition, so `labctl resume` rebuilds the same bench.
                writer.set_root_attrs(station_definition=self.station.describe())
            if self._append:
                writer.event("resume", "run resumed from its last checkpoint",
                             checkpoint=bool(checkpoint))
            writer.set_status("running")
            if self.station is not None and names:
                self._set_status("connecting")
                from labctl.bench import Bench

                bench = Bench.connect(self.station, names, clock=clock)
                self.bench = bench
                if world_state is not None and bench.simulation is not None:
                    bench.simulation.world.load_state(world_state)
                    writer.event("simulation_restored", "simulated devices restored from the last checkpoint")
                for name, info in bench.describe_instruments().items():
                    writer.add_instrument(name, **info)
            ctx = RunContext(clock=clock, writer=writer, bench=bench, control=self.control,
                             subscribers=self.subscribers, resume_state=resume_state)
            writer.event("start", f"procedure {self.procedure.name} starting",
                         resumed=self._append, instruments=names)
            self._set_status("running")
            self.procedure.startup(ctx)
            self.procedure.execute(ctx)
            status, reason = "completed", "procedure finished"
        except RunAborted as exc:
            status, reason = "aborted", str(exc) or "aborted"
        except KeyboardInterrupt:
            status, reason = "aborted", "Ctrl-C"
        except InterlockTripped as exc:
            status, reason = "aborted", f"interlock: {exc}"
        except (ConnectionLost, InstrumentError) as exc:
            # The data and the last checkpoint are safe; the run can be resumed once the fault is fixed.
            status, reason = "interrupted", f"instrument fault: {exc}"
        except Exception as exc:
            log.exception("run failed")
            status, reason = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self._set_status("shutting down", reason)
            self._shutdown(ctx, bench, writer)
            # A broken data file (disk full, file gone) must not keep the instruments connected or the file
            # open: each bookkeeping step is tried on its own.
            problems = [_quietly(writer.event, "end", reason, status=status),
                        _quietly(writer.set_status, status, reason), _quietly(writer.close)]
            problem = next((p for p in problems if p is not None), None)
            if problem is not None and status == "completed":
                # The procedure finished but its last data may not be on disk: not a completed run.
                status, reason = "failed", f"the data file could not be finished: {problem}"
            if bench is not None:
                bench.close()
            self.bench = None
            analysis = self._analyze() if status == "completed" else None
            self._set_status(status, reason)
        return RunResult(self.path, status, reason, analysis)

    def _analyze(self) -> dict[str, Any] | None:
        """The procedure's metrics, also written to the file's /analysis; None if it has no analysis.

        A failing analysis never fails a completed measurement: the data are on disk, and
        `labctl analyze FILE` can be run again once the problem is fixed.
        """
        from labctl.analyze import ANALYZERS, analyze_file

        if self.procedure.name not in ANALYZERS or self.path is None:
            return None
        try:
            return analyze_file(self.path)
        except Exception:
            log.exception("analysis of %s failed", self.path)
            return None

    def _shutdown(self, ctx: RunContext | None, bench: Bench | None, writer: Any) -> None:
        if ctx is not None:
            try:
                self.procedure.shutdown(ctx)
            except BaseException as exc:  # Ctrl-C twice must still leave the instruments safe
                log.exception("procedure shutdown failed")
                _quietly(writer.event, "shutdown_failed", f"procedure shutdown: {type(exc).__name__}: {exc}")
        if bench is not None:
            for name, problem in bench.safe_state_all().items():
                _quietly(writer.event, "safe_state_failed", problem, instrument=name)
            _quietly(writer.event, "safe_state", "instruments in safe state", instruments=sorted(bench.names))


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
