"""What waits to be sent to one client: a bounded queue that never blocks the engine.

The engine hands every run event to every watching client's outbox; a writer thread per client takes them
out and sends them. Putting never blocks, so a slow or dead client costs the acquisition nothing:

- status changes, log lines, ``/events`` entries and engine events are kept, all of them, in order — up to
  :attr:`Outbox.max_messages`; a client that falls that far behind is disconnected (its outbox says
  ``overflowed``) rather than silently missing a status: while connected, a client loses none;
- data rows are coalesced per (run, block): rows that arrive while the client is busy join the rows already
  waiting, keeping at most :attr:`Outbox.max_rows_per_block` of the newest (the run file has them all), and
  are sent at the place of the first of them — never after a status that came later;
- progress keeps only the newest report per run.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labctl.engine.protocol import encode_run_event
from labctl.runner.events import DataRows


@dataclass
class _Rows:
    """Rows of one block waiting for one client: the events as they came (joining waits for the send)."""

    item: str
    block: str
    events: list[DataRows] = field(default_factory=list)
    n_rows: int = 0
    dropped: int = 0

    def add(self, event: DataRows, max_rows: int) -> None:
        self.events.append(event)
        first = next(iter(event.columns.values()), None)
        self.n_rows += len(first) if isinstance(first, np.ndarray) and first.ndim else 1
        if self.n_rows > 2 * max_rows:  # join now and then, not at every event: no quadratic cost
            self.events = [self._joined(max_rows)]

    def _joined(self, max_rows: int) -> DataRows:
        names = list(dict.fromkeys(name for event in self.events for name in event.columns))
        units: dict[str, str] = {}
        for event in self.events:
            units.update(event.units)
        columns = {}
        for name in names:
            parts = [np.atleast_1d(np.asarray(e.columns[name], dtype=float)) for e in self.events if name in e.columns]
            columns[name] = np.concatenate(parts)[-max_rows:]
        if self.n_rows > max_rows:
            self.dropped += self.n_rows - max_rows
            self.n_rows = max_rows
        return DataRows(self.block, columns, units)

    def message(self, max_rows: int) -> dict[str, Any]:
        return encode_run_event(self.item, self._joined(max_rows), dropped_rows=self.dropped)


class Outbox:
    """Events for one client (see the module docstring). ``put*`` never block; :meth:`take` does."""

    max_messages = 10_000
    max_rows_per_block = 100_000

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # A slot is a message, a key of waiting rows, or a key of waiting progress.
        self._slots: deque[tuple[str, Any]] = deque()
        self._rows: dict[tuple[str, str], _Rows] = {}
        self._progress: dict[str, dict[str, Any]] = {}
        self._messages = 0
        self.overflowed = False
        self.closed = False

    def put(self, message: dict[str, Any]) -> bool:
        """Queue an ordered message; False (and the outbox closes) when the client is too far behind."""
        with self._cond:
            if self.closed:
                return False
            if self._messages >= self.max_messages:
                self.overflowed = True
                self.closed = True
                self._cond.notify_all()
                return False
            self._append(("message", message))
            self._messages += 1
            return True

    def _append(self, slot: tuple[str, Any]) -> None:
        """A new slot (lock held); the writer only ever waits for an empty outbox, so only then is it woken."""
        if not self._slots:
            self._cond.notify()
        self._slots.append(slot)

    def put_rows(self, item: str, event: DataRows) -> None:
        key = (item, event.block)
        with self._cond:
            if self.closed:
                return
            waiting = self._rows.get(key)
            if waiting is None:
                waiting = self._rows[key] = _Rows(item, event.block)
                self._append(("rows", key))
            waiting.add(event, self.max_rows_per_block)

    def put_progress(self, item: str, message: dict[str, Any]) -> None:
        with self._cond:
            if self.closed:
                return
            if item not in self._progress:
                self._append(("progress", item))
            self._progress[item] = message

    def take(self, timeout_s: float = 1.0) -> list[dict[str, Any]] | None:
        """Everything waiting, as messages ready to send ([] after ``timeout_s`` with nothing); None once
        closed and empty."""
        with self._cond:
            if not self._slots and not self.closed:
                self._cond.wait(timeout_s)
            if not self._slots:
                return None if self.closed else []
            slots, self._slots = self._slots, deque()
            rows, self._rows = self._rows, {}
            progress, self._progress = self._progress, {}
            self._messages = 0
        batch: list[dict[str, Any]] = []
        for kind, value in slots:  # the arrays are joined outside the lock: put never waits for it
            if kind == "message":
                batch.append(value)
            elif kind == "rows":
                batch.append(rows[value].message(self.max_rows_per_block))
            else:
                batch.append(progress[value])
        return batch

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    @property
    def waiting(self) -> int:
        """Slots waiting (messages, blocks with rows, progress reports)."""
        with self._cond:
            return len(self._slots)
