"""Time for everything in labctl.

Every wait and every timestamp goes through a :class:`Clock`, so the same procedure runs against real
hardware (:class:`RealClock`) or the simulated bench (:class:`VirtualClock`), where a 1000 h aging run
finishes in seconds. Nothing outside this module calls ``time.sleep`` or ``time.time``.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

# 2026-01-01T00:00:00Z: a fixed, deterministic epoch for virtual runs, so simulated data files carry
# plausible absolute timestamps and two runs with the same seed produce identical files.
VIRTUAL_EPOCH_S = 1_767_225_600.0


@runtime_checkable
class Clock(Protocol):
    """The only source of time: ``now()`` in seconds since the Unix epoch, ``sleep(seconds)``."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock time for real instruments."""

    virtual = False

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never jumps (for timeouts and rates)."""
        return time.monotonic()


class VirtualClock:
    """Simulated time: ``sleep`` advances ``now`` instantly and deterministically.

    Thread-safe: several instrument mocks and the runner may share one clock. ``advance`` is an alias of
    ``sleep`` for code that moves time on behalf of an instrument (integration time, settling).
    """

    virtual = True

    def __init__(self, start_s: float = VIRTUAL_EPOCH_S) -> None:
        self._now_s = float(start_s)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now_s

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._now_s += float(seconds)

    advance = sleep

    def monotonic(self) -> float:
        return self.now()


def real_elapsed_s() -> float:
    """Real monotonic seconds, for measuring how long work takes (benchmarks, progress ETA, flush timers).

    Deliberately separate from :class:`Clock`: the data file flusher and the GUI refresh must run on real
    time even when the experiment runs on virtual time.
    """
    return time.monotonic()


def real_pause(seconds: float) -> None:
    """Block the calling thread for real seconds (background threads, polling a socket)."""
    if seconds > 0:
        time.sleep(seconds)
