"""Runs the queue in the session, one run at a time, and picks up after a crash.

The worker thread takes the next item — the running one first (a run a restart resumes), then, while the
queue is started, the first waiting one; a run submitted with ``labctl run`` is run next even when the queue
is stopped — runs it on the session's bench, and files its end state in the history. A run that does not
complete stops the queue or lets it go on, by the item's ``on_failure`` or else the queue's.

When the engine stops (``labctl engine stop``, SIGTERM from a service manager) the running run is
interrupted — resumably, through its safe state — and its item stays *running* in the queue, exactly as
after a crash: the next start deals with it under ``resume_interrupted`` (:meth:`Worker.recover`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labctl.engine.alarms import Alarms
from labctl.engine.errors import EngineError
from labctl.engine.hub import Hub
from labctl.engine.power import SleepInhibitor
from labctl.engine.protocol import jsonable
from labctl.engine.queue import Item, RunQueue
from labctl.engine.session import Session
from labctl.errors import DataFileError, LabctlError
from labctl.runner import Runner, RunResult

log = logging.getLogger("labctl.engine")

Recorder = Callable[..., None]


class Worker:
    """See the module docstring."""

    def __init__(self, queue: RunQueue, session: Session, hub: Hub, alarms: Alarms, *,
                 resume_interrupted: str = "always", inhibitor: SleepInhibitor | None = None) -> None:
        self.queue = queue
        self.session = session
        self.hub = hub
        self.alarms = alarms
        self.resume_interrupted = resume_interrupted
        self.inhibitor = inhibitor
        self._wake = threading.Condition()
        self._stopping = False
        self._run_next: set[str] = set()
        self._thread: threading.Thread | None = None
        self._current: tuple[Item, Runner] | None = None
        self._recorder: Recorder | None = None

    # ---------------------------------------------------------------------------------- control
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="labctl-queue", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """The queue changed: look at it again."""
        with self._wake:
            self._wake.notify_all()

    def run_next(self, uid: str) -> None:
        """Run this item next, even if the queue is stopped (``labctl run`` through the engine)."""
        with self._wake:
            self._run_next.add(uid)
            self._wake.notify_all()

    def stop(self, reason: str, timeout_s: float = 120.0) -> None:
        """Interrupt the running run (resumably) and end the worker once the instruments are safe."""
        with self._wake:
            self._stopping = True
            current = self._current
            self._wake.notify_all()
        if current is not None:
            current[1].abort(reason, status="interrupted")
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def current(self) -> tuple[Item, Runner] | None:
        return self._current

    @property
    def recorder(self) -> Recorder | None:
        """Writes an entry into the running run's ``/events`` (None between runs)."""
        return self._recorder

    def _runner_for(self, uid: str | None) -> tuple[Item, Runner]:
        current = self._current
        if current is None:
            raise EngineError("no run is on")
        if uid and not current[0].uid.startswith(uid):
            raise EngineError(f"item {uid} is not running; the running item is {current[0].uid}")
        return current

    def pause(self, uid: str | None = None) -> str:
        item, runner = self._runner_for(uid)
        runner.pause()
        return item.uid

    def resume(self, uid: str | None = None) -> str:
        item, runner = self._runner_for(uid)
        runner.resume()
        return item.uid

    def abort(self, uid: str | None, reason: str) -> str:
        item, runner = self._runner_for(uid)
        runner.abort(reason, status="aborted")
        return item.uid

    # ---------------------------------------------------------------------------------- recovery
    def recover(self) -> list[str]:
        """At start: the items a crash, a power cut or a stop left running, under ``resume_interrupted``."""
        from labctl.store import RunReader

        notes: list[str] = []
        for item in self.queue.items():
            if item.state != "running":
                continue
            file = Path(item.file) if item.file else None
            if file is None or not file.exists():
                self.queue.set_state(item.uid, "queued", resume=False)
                notes.append(f"item {item.uid} had not started its file; it is queued again")
                continue
            try:
                with RunReader(file) as reader:
                    status, reason = reader.status, str(reader.attrs.get("end_reason", ""))
            except DataFileError as exc:
                self.queue.finish(item.uid, "failed", f"after a restart the data file could not be read: {exc}")
                notes.append(f"item {item.uid}: {file} cannot be read; filed as failed")
                continue
            if status not in ("running", "interrupted"):
                # It ended before the engine could file it.
                self.queue.finish(item.uid, status, reason, session=self.session.id)
                notes.append(f"item {item.uid} had ended {status}; filed in the history")
                continue
            cut = "killed (crash or power cut)" if status == "running" else f"interrupted ({reason})"
            if self.resume_interrupted == "always":
                self.queue.set_state(item.uid, "running", resume=True)
                notes.append(f"item {item.uid}: run {file} was {cut}; resuming it (resume_interrupted = always)")
            elif self.resume_interrupted == "ask":
                self.queue.set_state(item.uid, "interrupted", resume=True)
                self.queue.set_active(False)
                notes.append(f"item {item.uid}: run {file} was {cut}; waiting for a decision "
                             "(resume_interrupted = ask): labctl queue start resumes it, labctl queue remove "
                             f"{item.uid} files it as interrupted")
            else:
                self.queue.finish(item.uid, "interrupted", f"{cut}; not resumed (resume_interrupted = never)",
                                  session=self.session.id)
                self.queue.set_active(False)
                notes.append(f"item {item.uid}: run {file} was {cut}; not resumed (resume_interrupted = never); "
                             f"labctl queue add --resume {file} continues it")
        for note in notes:
            log.warning("%s", note)
        return notes

    # ----------------------------------------------------------------------------------- the loop
    def _next(self) -> Item | None:
        active = self.queue.active
        for item in self.queue.items():
            if item.state == "running":
                return item
            if item.state in ("queued", "interrupted") and (active or item.uid in self._run_next):
                return item
        return None

    def _loop(self) -> None:
        while True:
            with self._wake:
                item = None
                while not self._stopping:
                    item = self._next()
                    if item is not None:
                        break
                    self._wake.wait(1.0)
                if self._stopping or item is None:
                    return
                self._run_next.discard(item.uid)
            try:
                self._run(item)
            except Exception:  # the worker must outlive any one run's bookkeeping failure
                log.exception("queue item %s: unexpected failure", item.uid)
                self._file(item, RunResult(Path(item.file or ""), "failed", "engine failure: see the engine log"))

    def _run(self, item: Item) -> None:
        hub_feed = self.hub.subscriber(item.uid)
        try:
            runner = self.session.runner(item, [hub_feed, self.alarms.subscriber(item.uid)])
        except (LabctlError, OSError) as exc:
            log.error("queue item %s could not start: %s", item.uid, exc)
            self._file(item, RunResult(Path(item.file or ""), "failed", f"could not start: {exc}"))
            return
        assert runner.path is not None
        with self._wake:
            if self._stopping:  # stopped while the session was connecting: the item waits for the next start
                return
            item = self.queue.mark_running(item.uid, str(runner.path), resume=item.resume)
            self._take_context(runner)
            self._current = (item, runner)
        self.hub.run_started(item.uid, runner.procedure.name, str(runner.path))
        self.hub.publish(self.queue_event())
        held = self.inhibitor.acquire(f"labctl run {runner.path.name}") if self.inhibitor else False
        try:
            result = runner.run()
        except LabctlError as exc:  # refused before it started (the station changed since it was queued)
            result = RunResult(runner.path, "failed", str(exc))
        except Exception as exc:
            log.exception("queue item %s failed", item.uid)
            result = RunResult(runner.path, "failed", f"{type(exc).__name__}: {exc}")
        finally:
            if held and self.inhibitor is not None:
                self.inhibitor.release()
            with self._wake:
                self._current = None
                self._recorder = None
        if self._stopping and result.status == "interrupted":
            # Stopped with the engine: the item stays running; the next start resumes it.
            self.queue.set_state(item.uid, "running", resume=True)
            self.hub.publish(_ended(item.uid, result, kept=True), item=item.uid)
            return
        self._file(item, result)

    def _take_context(self, runner: Runner) -> None:
        """Hold on to the run's context when the procedure starts up, so that alarms can write into the run's
        ``/events``: the procedure instance's ``startup`` is wrapped (the class and the file's record of it
        are unchanged)."""
        procedure = runner.procedure
        original = procedure.startup

        def startup(ctx: Any) -> None:
            self._recorder = ctx.event
            original(ctx)

        setattr(procedure, "startup", startup)  # noqa: B010  (an instance attribute, deliberately)

    def _file(self, item: Item, result: RunResult) -> None:
        try:
            self.queue.finish(item.uid, result.status, result.reason, session=self.session.id)
        except EngineError:
            log.warning("queue item %s was no longer in the queue when its run ended", item.uid)
        if result.status != "completed" and self.queue.policy_for(item) == "stop" and self.queue.active:
            self.queue.set_active(False)
            log.warning("queue stopped: item %s ended %s (on_failure = stop)", item.uid, result.status)
        # Announced once the queue is in its new state: a front end reacting to the end sees it.
        self.hub.publish(_ended(item.uid, result), item=item.uid)
        self.hub.publish(self.queue_event())

    def queue_event(self) -> dict[str, Any]:
        return {"event": "queue", "active": self.queue.active, "on_failure": self.queue.on_failure,
                "items": [item.as_dict() for item in self.queue.items()]}


def _ended(uid: str, result: RunResult, kept: bool = False) -> dict[str, Any]:
    return {"event": "run_ended", "item": uid, "status": result.status, "reason": result.reason,
            "file": str(result.path), "analysis": jsonable(result.analysis) if result.analysis else None,
            "kept_for_resume": kept}
