"""Rows for live plots, from whichever thread receives them to the GUI thread, coalesced.

The engine link delivers rows as they come — for 64 channels that can be hundreds of small batches a second.
Posting each one to the GUI thread as a Qt signal would queue work faster than a loaded machine can draw it
(and every queued batch delays the next repaint). Instead the receiving thread only appends to a per-block
list under a lock (:meth:`LiveFeed.put`); a timer on the GUI thread takes everything that gathered since
its last tick, joins each block's rows once, and emits one :attr:`LiveFeed.delivered` signal. However fast
rows arrive, the GUI thread does one ingest per tick, and nothing piles up behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal


class LiveFeed(QObject):
    """See the module docstring. Create it on the GUI thread; call :meth:`put` from any thread."""

    delivered = pyqtSignal(object)  # {block: {column: ndarray}}, in arrival order per block

    def __init__(self, interval_ms: int = 250, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: dict[str, list[Mapping[str, Any]]] = {}
        self.rows_in = 0
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.drain)
        self._timer.start(interval_ms)

    def put(self, block: str, columns: Mapping[str, Any]) -> None:
        """Rows of one block (columns of equal length, or one number per column); never waits for the GUI."""
        with self._lock:
            self._pending.setdefault(block, []).append(columns)

    def drain(self) -> None:
        """Deliver what gathered (the timer calls this; tests may too)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        joined: dict[str, dict[str, np.ndarray]] = {}
        for block, parts in pending.items():
            names = list(dict.fromkeys(name for part in parts for name in part))
            joined[block] = {name: np.concatenate([np.atleast_1d(np.asarray(part[name], dtype=float))
                                                   for part in parts if name in part]) for name in names}
            self.rows_in += len(next(iter(joined[block].values()), ()))
        self.delivered.emit(joined)
