"""Rows for live plots, from whichever thread receives them to the GUI thread, coalesced.

The engine link delivers rows as they come — for 64 channels that can be hundreds of small batches a second.
Posting each one to the GUI thread as a Qt signal would queue work faster than a loaded machine can draw it
(and every queued batch delays the next repaint). Instead the receiving thread only appends to a per-block
list under a lock (:meth:`LiveFeed.put`); a timer on the GUI thread takes everything that gathered since
its last tick, joins each block's rows once, and emits :attr:`LiveFeed.delivered` — for many blocks in
slices of :data:`SLICE_BLOCKS`, one per turn of the event loop, so 64 channels' ingest is never one long
stretch of the GUI thread. However fast rows arrive, the GUI thread does one ingest per tick, and nothing
piles up behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

#: Blocks delivered per turn of the event loop by the timer's drain.
SLICE_BLOCKS = 16


class LiveFeed(QObject):
    """See the module docstring. Create it on the GUI thread; call :meth:`put` from any thread."""

    delivered = pyqtSignal(object)  # {block: {column: ndarray}}, in arrival order per block

    def __init__(self, interval_ms: int = 250, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: dict[str, list[Mapping[str, Any]]] = {}
        self._taken: list[tuple[str, list[Mapping[str, Any]]]] = []  # taken by the timer, not delivered yet
        self.rows_in = 0
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(interval_ms)

    def put(self, block: str, columns: Mapping[str, Any]) -> None:
        """Rows of one block (columns of equal length, or one number per column); never waits for the GUI."""
        with self._lock:
            self._pending.setdefault(block, []).append(columns)

    def drain(self) -> None:
        """Deliver everything gathered, at once (the end of a run, tests)."""
        self._take()
        taken, self._taken = self._taken, []
        self._deliver(taken)

    def _take(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        self._taken.extend(pending.items())

    def _tick(self) -> None:
        if self._taken:  # the last tick's slices are still being delivered
            return
        self._take()
        self._next_slice()

    def _next_slice(self) -> None:
        part, self._taken = self._taken[:SLICE_BLOCKS], self._taken[SLICE_BLOCKS:]
        self._deliver(part)
        if self._taken:
            QTimer.singleShot(0, self._next_slice)

    def _deliver(self, taken: list[tuple[str, list[Mapping[str, Any]]]]) -> None:
        if not taken:
            return
        joined: dict[str, dict[str, np.ndarray]] = {}
        for block, parts in taken:
            names = list(dict.fromkeys(name for part in parts for name in part))
            rows = {name: np.concatenate([np.atleast_1d(np.asarray(part[name], dtype=float))
                                          for part in parts if name in part]) for name in names}
            self.rows_in += len(next(iter(rows.values()), ()))
            if block in joined:  # the same block taken twice (a drain between two ticks): keep arrival order
                rows = {name: np.concatenate([joined[block][name], rows[name]]) if name in joined[block] else
                        rows[name] for name in names}
            joined[block] = rows
        self.delivered.emit(joined)
