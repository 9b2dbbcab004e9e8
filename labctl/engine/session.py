"""A session: the connected bench — and on a simulated station its world, cells and clock — kept across the
engine's runs, from the engine's start to its stop.

Queued runs therefore do not reconnect, re-warm lamps or measure fresh simulated cells: the second run of a
session measures the cell as the first one left it (light-soaked, aged), at the session time the first one
ended. Virtual time never goes back within a session.

Resuming an interrupted run (``labctl queue add --resume FILE``, or the engine after a restart):

- **inside a session** (the session has served a run already): the run continues with the session's world,
  cells and clock as they are now — they are never rewound to the file's checkpoint, because the session's
  other runs have moved them on since;
- **in a new session** (the first run after the engine started, such as the run a crash or a power cut cut
  off): on a simulated station the session is built from the file's last checkpoint — the world (cells,
  stages, lights) as checkpointed and the clock at the checkpoint's time — which is what ``labctl resume``
  does in-process; a real station has nothing to restore: its instruments are reconnected as they are.

Either way the procedure continues from its last checkpoint into the same file.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.clock import Clock, RealClock, VirtualClock
from labctl.engine.errors import EngineError
from labctl.runner import Runner, procedure_class
from labctl.runner.context import SIMULATED_WORLD_ATTR
from labctl.runner.events import Subscriber
from labctl.runner.procedure import Procedure, resolve_values
from labctl.runner.runner import new_data_path

if TYPE_CHECKING:
    from labctl.bench import Bench
    from labctl.engine.queue import Item
    from labctl.station import Station

log = logging.getLogger("labctl.engine")


def build_procedure(name: str, values: Mapping[str, Any] | None = None, pairs: Sequence[str] = ()) -> Procedure:
    """The one place the engine builds a procedure: its name, validated values (as stored in the queue or a
    run file) and ``--param name=value`` text that overrides them. Raises ParameterError."""
    cls = procedure_class(name)
    named = {pair.partition("=")[0].strip() for pair in pairs}
    return cls.from_strings(pairs, None, **{k: v for k, v in (values or {}).items() if k not in named})


def check_on_station(procedure: Procedure, station: Station) -> None:
    """Everything that can be checked before a run touches an instrument (Runner.validate)."""
    Runner(procedure, station=station).validate()


def read_resumable(path: Path, station: Station) -> tuple[Procedure, dict[str, Any] | None]:
    """The procedure of an interrupted run file and its checkpointed simulated world (if any); refuses a
    completed run and a run of another station."""
    from labctl.store import RunReader

    with RunReader(path) as reader:
        status = reader.status
        recorded_on = str(reader.attrs.get("station", ""))
        procedure = resolve_values(procedure_class(reader.procedure_class or reader.procedure), reader.parameters)
        world = reader.attrs.get(SIMULATED_WORLD_ATTR)
    if status == "completed":
        raise EngineError(f"{path}: the run completed; there is nothing to resume")
    if recorded_on and recorded_on != station.name:
        raise EngineError(f"{path} was recorded on station {recorded_on!r}; this engine drives {station.name!r}")
    return procedure, world if isinstance(world, dict) else None


ClockFactory = Callable[[float | None], Clock]


def clock_factory(station: Station, clock_name: str | None = None, speed: float = 1.0) -> ClockFactory:
    """How a session makes its clock (``start_s``: the time of a restored world, or None for now): the
    station's own (virtual for a simulated station), or real time ``speed`` times faster."""

    def make(start_s: float | None) -> Clock:
        if station.simulated and clock_name == "real":
            return RealClock(speed=speed, start_s=start_s)
        if station.simulated:
            return VirtualClock(start_s=start_s) if start_s is not None else station.make_clock()
        return RealClock()

    return make


class Session:
    """The bench and clock of one engine run (see the module docstring)."""

    def __init__(self, station: Station, make_clock: ClockFactory | None = None) -> None:
        self.station = station
        self.id = uuid.uuid4().hex[:12]
        self._make_clock = make_clock or clock_factory(station)
        self.bench: Bench | None = None
        self.runs = 0
        self.restored_from: Path | None = None

    @property
    def clock(self) -> Clock | None:
        return self.bench.clock if self.bench is not None else None

    def open(self, world_state: dict[str, Any] | None = None, restored_from: Path | None = None) -> Bench:
        """The session's bench, created on first use (from ``world_state`` when that is a new session's
        first run resuming a simulated run)."""
        if self.bench is not None:
            return self.bench
        from labctl.bench import Bench

        restore = world_state if self.station.simulated else None
        clock = self._make_clock(float(restore["time_s"]) if restore else None)
        bench = Bench.connect(self.station, [], clock=clock)
        if restore is not None and bench.simulation is not None:
            bench.simulation.world.load_state(restore)
            self.restored_from = restored_from
            log.info("session %s: simulated world restored from %s", self.id, restored_from)
        self.bench = bench
        return bench

    def runner(self, item: Item, subscribers: list[Subscriber]) -> Runner:
        """A runner for a queue item on this session's bench, with its data file decided (``runner.path``)."""
        fresh = self.bench is None
        if item.resume:
            if not item.file:
                raise EngineError(f"item {item.uid} has no file to resume")
            path = Path(item.file)
            procedure, world = read_resumable(path, self.station)
            bench = self.open(world if fresh else None, path)
            runner = Runner(procedure, bench=bench, path=path, append=True, subscribers=subscribers,
                            operator=item.operator)
        else:
            procedure = build_procedure(item.procedure, item.parameters)
            bench = self.open()
            path = Path(item.file) if item.file else new_data_path(Path(item.out_dir), procedure.file_stem(),
                                                                    bench.clock)
            runner = Runner(procedure, bench=bench, path=path, subscribers=subscribers, operator=item.operator)
        self.runs += 1
        return runner

    def describe(self) -> dict[str, Any]:
        clock = self.clock
        return {"id": self.id, "runs": self.runs, "connected": sorted(self.bench.names) if self.bench else [],
                "clock": None if clock is None else ("virtual" if clock.virtual else "real"),
                "time_s": None if clock is None else clock.now(),
                "restored_from": str(self.restored_from) if self.restored_from else None}

    def close(self) -> None:
        bench, self.bench = self.bench, None
        if bench is not None:
            bench.close()
