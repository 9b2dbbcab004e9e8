"""Run events to subscribers (CLI progress, GUI plots, the engine's clients) off the acquisition threads.

Acquisition threads only put events on a bounded queue; one dispatcher thread hands them to the subscribers.
Status changes and log lines are never dropped. Data rows for display are coalesced per block when the
subscribers fall behind: rows of one block are joined into one event, keeping at most
:attr:`EventBus.max_rows_per_block` of the newest rows (the file has them all). A slow or failing subscriber
therefore never slows a measurement, and the data file never depends on a subscriber.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable

import numpy as np

from labctl.runner.events import DataRows, Progress, RunEvent, Subscriber, notify


class EventBus:
    """A bounded hand-over from acquisition threads to subscribers (see the module docstring)."""

    max_rows_per_block = 100_000

    def __init__(self, subscribers: Iterable[Subscriber] = ()) -> None:
        self.subscribers: list[Subscriber] = list(subscribers)
        self._lock = threading.Condition()
        self._ordered: deque[RunEvent] = deque()  # status, log lines: all of them, in order
        self._data: OrderedDict[str, DataRows] = OrderedDict()  # per block, coalesced
        self._progress: Progress | None = None  # only the newest matters
        self._closed = False
        self.coalesced_rows = 0
        self._thread: threading.Thread | None = None

    # --------------------------------------------------------------------------------- producers
    def emit(self, event: RunEvent) -> None:
        """Never blocks on a subscriber (only, briefly, on this bus's own lock)."""
        if not self.subscribers:
            return
        with self._lock:
            if isinstance(event, DataRows):
                self._add_rows(event)
            elif isinstance(event, Progress):
                self._progress = event
            else:
                self._ordered.append(event)
            self._lock.notify()
        self._ensure_thread()

    def _add_rows(self, event: DataRows) -> None:
        waiting = self._data.get(event.block)
        if waiting is None:
            self._data[event.block] = event
            return
        joined: dict[str, np.ndarray] = {}
        for name in waiting.columns.keys() | event.columns.keys():
            parts = [np.atleast_1d(np.asarray(e.columns[name], float)) for e in (waiting, event)
                     if name in e.columns]
            column = np.concatenate(parts)
            if column.size > self.max_rows_per_block:
                self.coalesced_rows += column.size - self.max_rows_per_block
                column = column[-self.max_rows_per_block:]
            joined[name] = column
        self._data[event.block] = DataRows(event.block, joined, {**waiting.units, **event.units})

    # --------------------------------------------------------------------------------- consumer
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if (self._thread is None or not self._thread.is_alive()) and not self._closed:
                    self._thread = threading.Thread(target=self._dispatch, name="labctl-events", daemon=True)
                    self._thread.start()

    def _take(self) -> list[RunEvent]:
        batch: list[RunEvent] = list(self._ordered)
        self._ordered.clear()
        batch += list(self._data.values())
        self._data.clear()
        if self._progress is not None:
            batch.append(self._progress)
            self._progress = None
        return batch

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                while not (self._ordered or self._data or self._progress) and not self._closed:
                    self._lock.wait(0.5)
                batch = self._take()
                if not batch and self._closed:
                    return
            for event in batch:
                notify(self.subscribers, event)

    def flush(self, timeout_s: float = 5.0) -> None:
        """Deliver everything emitted so far (the end of a run: the last status must reach the front end)."""
        self.close(timeout_s)
        with self._lock:
            batch = self._take()
            self._closed = False
        for event in batch:
            notify(self.subscribers, event)

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

