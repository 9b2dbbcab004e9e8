"""Time for everything in labctl.

Every wait and every timestamp goes through a :class:`Clock`, so the same procedure runs against real
hardware (:class:`RealClock`) or the simulated bench (:class:`VirtualClock`), where a 1000 h aging run
finishes in seconds. Nothing outside this module calls ``time.sleep`` or ``time.time``.

Three rules every clock keeps:

- ``now()`` is seconds since the Unix epoch and never goes backwards. On a :class:`RealClock` it is the wall
  time at start plus monotonic elapsed time, so an NTP step or a daylight-saving change during a six-week run
  never shortens a dwell or reorders data; :meth:`Clock.wall_time` gives the system's wall time, which the
  run file records alongside.
- ``sleep()`` is a cancellation point: inside a :func:`labctl.cancel.cancel_scope` it returns as soon as the
  run is cancelled and raises :class:`~labctl.errors.RunAborted`.
- ``lock()`` makes the lock an instrument (or anything held across a wait) must use: a plain re-entrant lock
  on real time; on virtual time one that the scheduler knows about (see :mod:`labctl.virtual_time`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

from labctl.cancel import current_token
from labctl.virtual_time import ClockLock, Participant, Scheduler

# 2026-01-01T00:00:00Z: a fixed, deterministic epoch for virtual runs, so simulated data files carry
# plausible absolute timestamps and two runs with the same seed produce identical files.
VIRTUAL_EPOCH_S = 1_767_225_600.0


@runtime_checkable
class Clock(Protocol):
    """The only source of time (see the module docstring for the rules)."""

    virtual: bool

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def monotonic(self) -> float: ...

    def wall_time(self) -> float: ...

    def lock(self) -> Any: ...


def _check_seconds(seconds: float) -> float:
    seconds = float(seconds)
    if not seconds >= 0 or math.isinf(seconds):
        raise ValueError(f"seconds must be >= 0 and finite, got {seconds!r}")
    return seconds


class RealClock:
    """Real time for real instruments; ``speed`` > 1 runs a simulated world faster than real time.

    ``now()`` starts at the wall time of construction (or ``start_s``) and then advances with the monotonic
    clock times ``speed``.
    """

    virtual = False

    def __init__(self, speed: float = 1.0, start_s: float | None = None) -> None:
        if not speed > 0 or math.isinf(speed):
            raise ValueError(f"speed must be a positive number, got {speed!r}")
        self.speed = float(speed)
        self._mono0 = time.monotonic()
        self._start_s = time.time() if start_s is None else float(start_s)

    def now(self) -> float:
        return self._start_s + (time.monotonic() - self._mono0) * self.speed

    def monotonic(self) -> float:
        """Seconds that never jump (the same scale as :meth:`now`)."""
        return self.now()

    def wall_time(self) -> float:
        """The system's wall-clock time (may step: NTP, daylight saving, a user changing the clock)."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        seconds = _check_seconds(seconds)
        token = current_token()
        if token is None:
            if seconds > 0:
                time.sleep(seconds / self.speed)
            return
        if token.wait(seconds / self.speed) if seconds > 0 else token.cancelled:
            raise token.exception()

    def lock(self) -> Any:
        return threading.RLock()


class VirtualClock:
    """Simulated time: waiting costs nothing, and many threads share one time exactly.

    Threads that take part in a simulated run register with :meth:`participant` (or :meth:`reserve` +
    :meth:`attach`); the clock then runs them one at a time as a discrete-event simulation: a participant
    that sleeps, or waits for a lock another participant holds, hands over to the next one, and time jumps to
    the earliest wake-up only when every participant is waiting. Results do not depend on thread timing, and
    one participant's waits never move another's time. A thread that is not a participant (a test, a TCP
    server thread) advances the time by what it sleeps, as long as no participant is registered.
    """

    virtual = True

    def __init__(self, start_s: float = VIRTUAL_EPOCH_S) -> None:
        self._scheduler = Scheduler(float(start_s))

    def now(self) -> float:
        return self._scheduler.now_s

    def monotonic(self) -> float:
        return self.now()

    def wall_time(self) -> float:
        return self.now()

    def sleep(self, seconds: float) -> None:
        self._scheduler.sleep(_check_seconds(seconds), current_token())

    advance = sleep

    def lock(self) -> ClockLock:
        return ClockLock(self._scheduler)

    # ------------------------------------------------------------------------------ participants
    def reserve(self, name: str) -> Participant:
        """A place in the schedule for a thread about to start (reserve in a fixed order for reproducible
        runs; the thread then calls :meth:`attach`)."""
        return self._scheduler.reserve(name)

    @contextmanager
    def attach(self, participant: Participant) -> Iterator[Participant]:
        """Run the calling thread as ``participant`` for the block (it waits for its turn first)."""
        self._scheduler.attach(participant)
        try:
            yield participant
        finally:
            self._scheduler.leave(participant)

    @contextmanager
    def participant(self, name: str = "") -> Iterator[Participant]:
        with self.attach(self.reserve(name)) as participant:
            yield participant

    @contextmanager
    def stepped_out(self) -> Iterator[None]:
        """Let the calling participant block on something outside the simulation (a real event, a join)
        without stopping the others; it waits for its turn again afterwards."""
        with self._scheduler.stepped_out():
            yield

    @property
    def participants(self) -> int:
        return self._scheduler.participant_count


@contextmanager
def stepped_out(clock: Clock) -> Iterator[None]:
    """:meth:`VirtualClock.stepped_out` for any clock (a no-op on real time)."""
    if isinstance(clock, VirtualClock):
        with clock.stepped_out():
            yield
    else:
        yield


@contextmanager
def released(lock: Any) -> Iterator[None]:
    """Fully release a re-entrant lock the calling thread holds (however deeply) for the block, then take it
    back: a reconnect back-off must not keep an instrument locked for minutes."""
    owned = getattr(lock, "_is_owned", None)
    if owned is None or not owned():
        yield
        return
    state = lock._release_save()
    try:
        yield
    finally:
        lock._acquire_restore(state)


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
