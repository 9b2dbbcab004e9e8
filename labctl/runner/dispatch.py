"""Run events to subscribers (CLI progress, GUI plots, the engine's clients) off the acquisition threads.

Acquisition threads only put events on a queue; one dispatcher thread hands them to the subscribers, in the
order they were emitted. Status changes, log lines and recorded events are never dropped. Data rows for
display are coalesced while they wait: rows of one block that follow each other in the queue become one
event (joined once, when delivered), keeping at most :attr:`EventBus.max_rows_per_block` of the newest rows
(the file has them all); a progress report replaces the one before it. Rows alone do not wake the dispatcher
at once: it lets them gather for :attr:`EventBus.row_batch_s` (a display needs no more than ~50 deliveries a
second), so a fast acquisition pays one thread switch per batch rather than one per row; anything else
(status, events, log lines, progress) wakes it immediately. When the queue holds more than
:attr:`EventBus.max_pending` events, a block's new rows join its waiting rows wherever they are. A slow or
failing subscriber therefore never slows a measurement, and the data file never depends on a subscriber.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labctl.runner.events import DataRows, Progress, RunEvent, Subscriber, notify


@dataclass
class _PendingRows:
    """Rows of one block waiting for delivery: kept as the chunks emitted, joined once on delivery."""

    block: str
    chunks: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)

    def add(self, event: DataRows) -> None:
        self.chunks.append(dict(event.columns))  # single rows stay plain numbers until delivery
        if event.units:
            self.units.update(event.units)

    def joined(self, limit: int) -> tuple[DataRows, int]:
        names = list(dict.fromkeys(k for chunk in self.chunks for k in chunk))
        columns = {}
        dropped = 0
        for name in names:
            parts = [chunk[name] for chunk in self.chunks if name in chunk]
            if all(isinstance(part, int | float) for part in parts):
                column = np.asarray(parts, dtype=float)
            else:
                column = np.concatenate([np.atleast_1d(np.asarray(part, dtype=float)) for part in parts])
            if column.size > limit:
                dropped = max(dropped, column.size - limit)
                column = column[-limit:]
            columns[name] = column
        return DataRows(self.block, columns, dict(self.units)), dropped


class EventBus:
    """A hand-over from acquisition threads to subscribers (see the module docstring)."""

    max_rows_per_block = 100_000
    max_pending = 10_000
    row_batch_s = 0.02

    def __init__(self, subscribers: Iterable[Subscriber] = ()) -> None:
        self.subscribers: list[Subscriber] = list(subscribers)
        self._lock = threading.Condition()
        self._queue: deque[RunEvent | _PendingRows] = deque()
        self._pending_rows: dict[str, _PendingRows] = {}
        self._closed = False
        self.coalesced_rows = 0
        self._thread: threading.Thread | None = None
        self._dispatching = False
        self._urgent = False  # something other than rows waits: deliver without gathering

    # --------------------------------------------------------------------------------- producers
    def emit(self, event: RunEvent) -> None:
        """Never waits for a subscriber (only, briefly, for this bus's own lock)."""
        if not self.subscribers:
            return
        with self._lock:
            was_empty = not self._queue
            last = self._queue[-1] if self._queue else None
            if isinstance(event, DataRows):
                waiting = self._pending_rows.get(event.block)
                if waiting is not None and (last is waiting or len(self._queue) > self.max_pending):
                    waiting.add(event)
                else:
                    pending = _PendingRows(event.block)
                    pending.add(event)
                    self._pending_rows[event.block] = pending
                    self._queue.append(pending)
            else:
                if isinstance(event, Progress) and isinstance(last, Progress):
                    self._queue[-1] = event
                else:
                    self._queue.append(event)
                if not self._urgent:
                    self._urgent = True
                    self._lock.notify()
            if was_empty:
                self._lock.notify()
        self._ensure_thread()

    # --------------------------------------------------------------------------------- consumer
    def _ensure_thread(self) -> None:
        if self._dispatching:
            return
        with self._lock:
            if not self._dispatching and not self._closed:
                self._dispatching = True
                self._thread = threading.Thread(target=self._dispatch, name="labctl-events", daemon=True)
                self._thread.start()

    def _take(self) -> list[RunEvent | _PendingRows]:
        batch = list(self._queue)
        self._queue.clear()
        self._pending_rows.clear()
        return batch

    def _deliver(self, batch: list[RunEvent | _PendingRows]) -> None:
        for item in batch:
            if isinstance(item, _PendingRows):
                event, dropped = item.joined(self.max_rows_per_block)
                self.coalesced_rows += dropped
                notify(self.subscribers, event)
            else:
                notify(self.subscribers, item)

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._lock.wait(0.5)
                if not self._urgent and not self._closed:
                    self._lock.wait(self.row_batch_s)  # only rows so far: let more gather
                self._urgent = False
                batch = self._take()
                if not batch and self._closed:
                    self._dispatching = False
                    return
            self._deliver(batch)

    def flush(self, timeout_s: float = 5.0) -> None:
        """Deliver everything emitted so far (the end of a run: the last status must reach the front end)."""
        self.close(timeout_s)
        with self._lock:
            batch = self._take()
            self._urgent = False
            self._closed = False
        self._deliver(batch)

    def close(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def __repr__(self) -> str:
        return f"EventBus({len(self.subscribers)} subscribers)"
