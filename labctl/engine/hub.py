"""Run events from the engine's runs to every watching client, and what a client attaching late sees.

The hub is a subscriber of each run's :class:`~labctl.runner.dispatch.EventBus`, so it is called on the bus's
dispatcher thread, never on an acquisition thread; it only puts events into the clients' outboxes
(:mod:`labctl.engine.outbox`), which never block. For each run it keeps a snapshot — status, last progress,
the last :attr:`Hub.recent_messages` status/log/``/events`` messages, the data file — so a front end that
attaches in the middle of a run (after the one that started it was closed) sees where the run stands at once
and reads the data recorded so far from the file.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labctl.engine.outbox import Outbox
from labctl.engine.protocol import encode_run_event
from labctl.runner.events import DataRows, Progress, RunEvent

log = logging.getLogger("labctl.engine")


@dataclass
class Watcher:
    """A client that asked for events: its outbox, and the one queue item it follows (None: all)."""

    outbox: Outbox
    uid: str | None = None
    on_overflow: Callable[[], None] | None = None

    def wants(self, item: str | None) -> bool:
        return self.uid is None or item is None or item == self.uid


@dataclass
class RunSnapshot:
    item: str
    status: str = "queued"
    reason: str = ""
    progress: dict[str, Any] | None = None
    file: str = ""
    procedure: str = ""
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=Hub.recent_messages))

    def as_dict(self) -> dict[str, Any]:
        return {"item": self.item, "status": self.status, "reason": self.reason, "progress": self.progress,
                "file": self.file, "procedure": self.procedure, "recent": list(self.recent)}


class Hub:
    """Fan-out of run and engine events to watchers, with per-run snapshots."""

    recent_messages = 200
    kept_runs = 20

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Replaced, never changed in place: publishing reads it without taking the lock.
        self._watchers: tuple[Watcher, ...] = ()
        self._runs: OrderedDict[str, RunSnapshot] = OrderedDict()

    # ------------------------------------------------------------------------------- watchers
    def attach(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers = (*self._watchers, watcher)

    def detach(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers = tuple(w for w in self._watchers if w is not watcher)

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)

    # --------------------------------------------------------------------------------- runs
    def run_started(self, item: str, procedure: str, file: str) -> None:
        with self._lock:
            snapshot = self._runs.pop(item, None) or RunSnapshot(item)
            snapshot.procedure, snapshot.file, snapshot.status = procedure, file, "starting"
            self._runs[item] = snapshot
            while len(self._runs) > self.kept_runs:
                self._runs.popitem(last=False)
        self.publish({"event": "run_started", "item": item, "procedure": procedure, "file": file})

    def subscriber(self, item: str) -> Callable[[RunEvent], None]:
        """The run subscriber that forwards one queue item's run events."""

        def forward(event: RunEvent) -> None:
            self.publish_run(item, event)

        return forward

    def publish_run(self, item: str, event: RunEvent) -> None:
        if isinstance(event, DataRows):
            for watcher in self._watching(item):
                watcher.outbox.put_rows(item, event)
            return
        message = encode_run_event(item, event)
        with self._lock:
            snapshot = self._runs.get(item)
            if snapshot is not None:
                if isinstance(event, Progress):
                    snapshot.progress = message
                else:
                    if message["event"] == "status":
                        snapshot.status, snapshot.reason = message["status"], message["reason"]
                    snapshot.recent.append(message)
        for watcher in self._watching(item):
            if isinstance(event, Progress):
                watcher.outbox.put_progress(item, message)
            else:
                self._put(watcher, message)

    def publish(self, message: dict[str, Any], item: str | None = None) -> None:
        """An engine event (queue changed, run started or ended, alarm, engine stopping)."""
        if item is not None:
            with self._lock:
                snapshot = self._runs.get(item)
                if snapshot is not None:
                    snapshot.recent.append(message)
        for watcher in self._watching(item):
            self._put(watcher, message)

    def _watching(self, item: str | None) -> list[Watcher]:
        return [w for w in self._watchers if w.wants(item)]

    def _put(self, watcher: Watcher, message: dict[str, Any]) -> None:
        if not watcher.outbox.put(message) and watcher.outbox.overflowed:
            log.warning("a client fell %d messages behind and is disconnected", watcher.outbox.max_messages)
            self.detach(watcher)
            if watcher.on_overflow is not None:
                watcher.on_overflow()

    # ------------------------------------------------------------------------------ snapshots
    def snapshot(self, item: str | None = None) -> list[dict[str, Any]]:
        """What is known of one run (or of the runs still remembered, newest last)."""
        with self._lock:
            runs = [self._runs[item]] if item is not None and item in self._runs else (
                [] if item is not None else list(self._runs.values()))
            return [run.as_dict() for run in runs]
