"""What the engine does for each request of the protocol (one method per ``op``; see docs/engine.md).

Everything a request can check is checked before it changes anything: a procedure and its parameters are
validated against the station (as ``labctl run`` does before touching an instrument), so a queued run does
not fail hours later on a typing mistake.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import labctl
from labctl.engine.alarm_log import rules_from_tables, save_rules
from labctl.engine.errors import EngineError
from labctl.engine.queue import check_policy
from labctl.engine.session import build_procedure, check_on_station, read_resumable

if TYPE_CHECKING:
    from labctl.engine.queue import RunQueue
    from labctl.engine.server import Engine
    from labctl.engine.worker import Worker


class Requests:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._identify_lock = threading.Lock()

    @property
    def _queue(self) -> RunQueue:
        assert self.engine.queue is not None
        return self.engine.queue

    @property
    def _worker(self) -> Worker:
        assert self.engine.worker is not None
        return self.engine.worker

    def _changed(self) -> None:
        self._worker.wake()
        self.engine.hub.publish(self._worker.queue_event())

    # ------------------------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        engine = self.engine
        worker, queue = engine.worker, engine.queue
        current = worker.current if worker is not None else None
        run = None
        if current is not None:
            item, runner = current
            snapshot = engine.hub.snapshot(item.uid)
            run = {"item": item.uid, "procedure": item.procedure, "file": str(runner.path), "status": runner.status,
                   "progress": snapshot[0]["progress"] if snapshot else None}
        return {"station": engine.station.name, "station_source": engine.station.source, "pid": os.getpid(),
                "version": labctl.__version__, "since": engine.since, "address": engine.address,
                "state_dir": str(engine.state_dir), "data_dir": str(engine.data_dir), "clock": engine.clock_name,
                "speed": engine.speed, "resume_interrupted": engine.config.resume_interrupted,
                "session": engine.session.describe(), "run": run, "watchers": engine.hub.watcher_count,
                "alarms": [rule.name for rule in engine.alarms.rules],
                "queue": None if queue is None else {"active": queue.active, "on_failure": queue.on_failure,
                                                     "waiting": sum(i.state != "running" for i in queue.items())}}

    # ------------------------------------------------------------------------------------- queue
    def _out_dir(self, out_dir: str | None) -> str:
        if not out_dir:
            return str(self.engine.data_dir)
        path = Path(out_dir)
        return str(path if path.is_absolute() else self.engine.data_dir / path)

    def _new_run(self, procedure: str, parameters: dict[str, Any] | None, pairs: list[str] | None,
                 file: str | None) -> dict[str, Any]:
        proc = build_procedure(procedure, parameters, pairs or ())
        check_on_station(proc, self.engine.station)
        if file is not None:
            path = Path(file)
            if not path.is_absolute():
                raise EngineError(f"file = {file!r}: give the data file as an absolute path (the engine's working "
                                  "folder is not yours)")
            if path.exists():
                raise EngineError(f"{file} exists; labctl never overwrites a data file")
        return proc.values

    def queue_add(self, procedure: str = "", parameters: dict[str, Any] | None = None,
                  pairs: list[str] | None = None, out_dir: str | None = None, file: str | None = None,
                  operator: str = "", on_failure: str | None = None, position: int | None = None,
                  resume: str | None = None) -> dict[str, Any]:
        """A new item (a run, or with ``resume`` the continuation of an interrupted run file)."""
        check_policy(on_failure)
        if resume:
            path = Path(resume)
            if not path.is_absolute():
                raise EngineError(f"resume = {resume!r}: give the run file as an absolute path")
            proc, _world = read_resumable(path, self.engine.station)
            item = self._queue.add(proc.class_path(), proc.values, str(path.parent), file=str(path),
                                   operator=operator, on_failure=on_failure, position=position, resume=True)
        else:
            if not procedure:
                raise EngineError("procedure is missing (a registered name such as 'jv', or 'module:Class')")
            values = self._new_run(procedure, parameters, pairs, file)
            item = self._queue.add(procedure, values, self._out_dir(out_dir), file=file, operator=operator,
                                   on_failure=on_failure, position=position)
        self._changed()
        return item.as_dict()

    def submit(self, procedure: str = "", parameters: dict[str, Any] | None = None, pairs: list[str] | None = None,
               out_dir: str | None = None, file: str | None = None, operator: str = "",
               on_failure: str | None = None) -> dict[str, Any]:
        """Run this next (``labctl run`` through the engine): first among the waiting items, and run even if
        the queue is stopped."""
        item = self.queue_add(procedure, parameters, pairs, out_dir, file, operator, on_failure, position=0)
        self._worker.run_next(item["uid"])
        return item

    def queue_list(self) -> dict[str, Any]:
        queue = self._queue
        return {"active": queue.active, "on_failure": queue.on_failure,
                "items": [item.as_dict() for item in queue.items()]}

    def queue_edit(self, uid: str = "", parameters: dict[str, Any] | None = None, pairs: list[str] | None = None,
                   on_failure: str | None = None, operator: str | None = None) -> dict[str, Any]:
        """Change a queued item's parameters (validated again), its failure policy (``"queue"``: the queue's)
        or its operator."""
        item = self._queue.get(uid)
        values = None
        if parameters or pairs:
            if item.resume:
                raise EngineError(f"item {item.uid} continues {item.file}; its parameters are the file's")
            proc = build_procedure(item.procedure, {**item.parameters, **(parameters or {})}, pairs or ())
            check_on_station(proc, self.engine.station)
            values = proc.values
        clear = on_failure == "queue"
        edited = self._queue.edit(item.uid, parameters=values, on_failure=None if clear else on_failure,
                                  clear_on_failure=clear, operator=operator)
        self._changed()
        return edited.as_dict()

    def queue_move(self, uid: str = "", position: int = 0) -> dict[str, Any]:
        if isinstance(position, bool) or not isinstance(position, int):
            raise EngineError(f"position = {position!r}; allowed: a whole number (0 = next)")
        moved = self._queue.move(uid, position)
        self._changed()
        return moved.as_dict()

    def queue_remove(self, uid: str = "") -> dict[str, Any]:
        removed = self._queue.remove(uid, session=self.engine.session.id)
        self._changed()
        return removed.as_dict()

    def queue_start(self) -> dict[str, Any]:
        self._queue.set_active(True)
        self._changed()
        return self.queue_list()

    def queue_stop(self) -> dict[str, Any]:
        """Stop after the running run (which goes on; ``abort`` stops it)."""
        self._queue.set_active(False)
        self._changed()
        return self.queue_list()

    def queue_policy(self, on_failure: str = "") -> dict[str, Any]:
        self._queue.set_on_failure(on_failure)
        self._changed()
        return self.queue_list()

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise EngineError(f"limit = {limit!r}; allowed: 1 … 100000")
        return [entry.as_dict() for entry in self._queue.history(limit)]

    # -------------------------------------------------------------------------------------- runs
    def pause(self, uid: str | None = None) -> dict[str, Any]:
        return {"item": self._worker.pause(uid)}

    def resume(self, uid: str | None = None) -> dict[str, Any]:
        return {"item": self._worker.resume(uid)}

    def abort(self, uid: str | None = None, reason: str = "") -> dict[str, Any]:
        return {"item": self._worker.abort(uid, reason or "aborted by the user (through the engine)")}

    # ---------------------------------------------------------------------------------- instruments
    def identify(self, names: list[str] | None = None) -> dict[str, Any]:
        """Connect the named instruments (all of the station's by default) in the session, as a run would,
        and ask each who it is: ``{name: {"identity", "status", "settings"}}``. An instrument a run is using
        answers between that run's exchanges (its lock), so this never disturbs a measurement."""
        from labctl.bench import connection_description

        station = self.engine.station
        wanted = list(station.instruments) if names is None else list(names)
        unknown = [n for n in wanted if n not in station.instruments]
        if unknown:
            raise EngineError(f"names = {unknown!r}: not instruments of station {station.name}; allowed: "
                              f"{', '.join(station.instruments)}")
        with self._identify_lock:
            bench = self.engine.session.open()
            rows: dict[str, Any] = {}
            for name in wanted:
                row: dict[str, Any] = {"identity": "", "status": "", "settings": {}}
                try:
                    bench.ensure_connected([name])
                    driver = bench.drivers[name]
                    with getattr(driver, "lock", threading.RLock()):
                        row["identity"] = driver.identify()
                    row["settings"] = connection_description(driver)
                    row["status"] = "ok"
                except Exception as exc:  # one dead instrument is a row, never a failed request
                    row["status"] = f"failed: {exc}"
                rows[name] = row
        return rows

    # ---------------------------------------------------------------------------------- alarms
    def alarms(self) -> dict[str, Any]:
        """The alarm rules as tables (what a front end edits) and the newest firings."""
        return {"rules": [dict(rule.table) for rule in self.engine.alarms.rules],
                "fired": self.engine.alarm_log.entries()}

    def alarms_set(self, rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Replace the alarm rules (each checked as in the station file; nothing changes if one is wrong);
        kept in the state folder so a restarted engine uses them."""
        checked = rules_from_tables(rules if rules is not None else [], "alarm rules")
        self.engine.alarms.replace_rules(checked)
        save_rules(self.engine.state_dir, [dict(rule.table) for rule in checked])
        self.engine.hub.publish({"event": "alarm_rules", "rules": [dict(rule.table) for rule in checked]})
        return {"rules": [dict(rule.table) for rule in checked]}

    def alarm_ack(self, ids: list[int] | None = None, by: str = "") -> dict[str, Any]:
        """Mark fired alarms as dealt with (``ids`` omitted: every open one)."""
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, int) for i in ids)):
            raise EngineError(f"ids = {ids!r}; allowed: a list of alarm ids (whole numbers), or none for all")
        done = self.engine.alarm_log.acknowledge(ids, by)
        if done:
            self.engine.hub.publish({"event": "alarm_ack", "ids": done, "by": by})
        return {"acknowledged": done}

    def shutdown(self, reason: str = "") -> dict[str, Any]:
        why = reason or "stopped on request (labctl engine stop)"
        threading.Thread(target=self.engine.stop, args=(why,), name="labctl-stop", daemon=True).start()
        return {"stopping": True, "pid": os.getpid()}
