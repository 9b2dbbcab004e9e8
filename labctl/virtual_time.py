"""The discrete-event scheduler behind :class:`labctl.clock.VirtualClock`.

Many threads of a simulated run (one per measurement channel) share one virtual time. They run one at a
time: the running participant holds the *baton* until it sleeps, waits for a :class:`ClockLock` another
participant holds, or steps out to wait for something outside the simulation; the baton then goes to the
next participant that is ready (in the order they became ready), and when none is, time jumps to the
earliest wake-up (ties in the order the participants were reserved). Nothing depends on how the operating
system schedules threads, so two runs with the same seed produce the same data, and a channel waiting out
an instrument timeout moves only its own time.

Rules for code that runs on virtual time:

- hold only :class:`ClockLock` locks (``clock.lock()``) across a sleep; a plain lock held across a sleep
  stops every participant that wants it;
- block on nothing real (an Event, a join, a socket) without :meth:`Scheduler.stepped_out`.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labctl.cancel import CancelToken

READY, RUNNING, SLEEPING, BLOCKED, DONE = "ready", "running", "sleeping", "blocked", "done"


class Participant:
    """One thread's place in the schedule."""

    __slots__ = ("go", "ident", "name", "order", "seq", "state", "want")

    def __init__(self, name: str, order: int) -> None:
        self.name = name
        self.order = order
        self.ident: int | None = None
        self.state = READY
        self.seq = 0
        self.want = 1  # lock recursion count to restore when a ClockLock is handed over
        self.go = threading.Lock()  # held while parked; released to hand over the baton
        self.go.acquire()

    def park(self) -> None:
        self.go.acquire()

    def __repr__(self) -> str:
        return f"Participant({self.name!r}, {self.state})"


class _Foreign:
    """A thread outside the schedule waiting for a ClockLock (a GUI, a TCP server thread, a test)."""

    __slots__ = ("go", "ident", "want")

    def __init__(self, ident: int, want: int) -> None:
        self.ident = ident
        self.want = want
        self.go = threading.Lock()
        self.go.acquire()

    def park(self) -> None:
        self.go.acquire()


class Scheduler:
    """See the module docstring. All bookkeeping happens under one mutex; waiting happens outside it."""

    def __init__(self, start_s: float) -> None:
        self.now_s = float(start_s)
        self.mutex = threading.Lock()
        self._orders = itertools.count()
        self._all: set[Participant] = set()
        self._by_thread: dict[int, Participant] = {}
        self._running: Participant | None = None
        self._ready: deque[Participant] = deque()
        self._sleepers: list[tuple[float, int, int, Participant]] = []

    @property
    def participant_count(self) -> int:
        return len(self._all)

    def current(self) -> Participant | None:
        return self._by_thread.get(threading.get_ident())

    # ---------------------------------------------------------------------------- membership
    def reserve(self, name: str) -> Participant:
        with self.mutex:
            participant = Participant(name, next(self._orders))
            self._all.add(participant)
            self._ready.append(participant)
            self._dispatch_locked()
            return participant

    def attach(self, participant: Participant) -> None:
        ident = threading.get_ident()
        with self.mutex:
            if participant.state == DONE:
                raise RuntimeError(f"{participant!r} has left the schedule")
            if ident in self._by_thread:
                raise RuntimeError("this thread is a participant already")
            participant.ident = ident
            self._by_thread[ident] = participant
        participant.park()

    def leave(self, participant: Participant) -> None:
        with self.mutex:
            self._all.discard(participant)
            if participant.ident is not None:
                self._by_thread.pop(participant.ident, None)
            if participant.state == READY and participant in self._ready:
                self._ready.remove(participant)
            participant.state = DONE
            if self._running is participant:
                self._running = None
            self._dispatch_locked()

    # ---------------------------------------------------------------------------------- waiting
    def sleep(self, seconds: float, token: CancelToken | None) -> None:
        if token is not None:
            token.raise_if_cancelled()
        participant = self.current()
        if participant is None:
            with self.mutex:
                if not self._all:
                    # Nobody shares this time: the calling thread's waits are the only ones that count.
                    self.now_s += seconds
                    return
            temporary = self.reserve("(outside)")
            self.attach(temporary)
            try:
                self._sleep(temporary, seconds, token)
            finally:
                self.leave(temporary)
            return
        self._sleep(participant, seconds, token)

    def _sleep(self, participant: Participant, seconds: float, token: CancelToken | None) -> None:
        with self.mutex:
            participant.state = SLEEPING
            participant.seq += 1
            seq = participant.seq
            heapq.heappush(self._sleepers, (self.now_s + seconds, participant.order, seq, participant))
            if self._running is participant:
                self._running = None
            self._dispatch_locked()
        key = token.add_waker(lambda: self._wake_early(participant, seq)) if token is not None else None
        try:
            participant.park()
        finally:
            if token is not None and key is not None:
                token.remove_waker(key)
        if token is not None:
            token.raise_if_cancelled()

    def _wake_early(self, participant: Participant, seq: int) -> None:
        """A cancelled sleeper wakes at the present time."""
        with self.mutex:
            if participant.state == SLEEPING and participant.seq == seq:
                participant.seq += 1
                participant.state = READY
                self._ready.append(participant)
                self._dispatch_locked()

    @contextmanager
    def stepped_out(self) -> Iterator[None]:
        participant = self.current()
        if participant is None:
            yield
            return
        with self.mutex:
            self._block_locked(participant)
        try:
            yield
        finally:
            with self.mutex:
                self._make_ready_locked(participant)
            participant.park()

    # ------------------------------------------------------------------------------- internals
    def _block_locked(self, participant: Participant) -> None:
        participant.state = BLOCKED
        if self._running is participant:
            self._running = None
        self._dispatch_locked()

    def _make_ready_locked(self, participant: Participant) -> None:
        participant.state = READY
        self._ready.append(participant)
        self._dispatch_locked()

    def _dispatch_locked(self) -> None:
        """Hand the baton on if nobody holds it: to the first ready participant, else to the earliest
        sleeper (moving time forward)."""
        if self._running is not None:
            return
        if self._ready:
            chosen = self._ready.popleft()
        else:
            while self._sleepers:
                wake_s, _order, seq, chosen = heapq.heappop(self._sleepers)
                if chosen.state == SLEEPING and chosen.seq == seq:
                    break
            else:
                return
            if wake_s > self.now_s:
                self.now_s = wake_s
        chosen.state = RUNNING
        self._running = chosen
        chosen.go.release()


class ClockLock:
    """A re-entrant lock that virtual time knows about.

    A participant that finds it taken hands the baton on until the lock is handed to it (in request order),
    so a channel waiting for a switch another channel holds does not stop virtual time. Works with
    :class:`threading.Condition` and :func:`labctl.clock.released` (it has the private methods RLock has).
    """

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._owner: int | None = None
        self._count = 0
        self._waiters: deque[Participant | _Foreign] = deque()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._acquire(1, blocking)

    def _acquire(self, count: int, blocking: bool = True) -> bool:
        me = threading.get_ident()
        scheduler = self._scheduler
        with scheduler.mutex:
            if self._owner == me:
                self._count += count
                return True
            if self._owner is None:
                self._owner, self._count = me, count
                return True
            if not blocking:
                return False
            participant = scheduler._by_thread.get(me)
            waiter: Participant | _Foreign
            if participant is not None and participant.state == RUNNING:
                participant.want = count
                waiter = participant
                self._waiters.append(waiter)
                scheduler._block_locked(participant)
            else:
                waiter = _Foreign(me, count)
                self._waiters.append(waiter)
        waiter.park()  # woken as the owner (see _hand_over_locked)
        return True

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        with self._scheduler.mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("cannot release un-acquired lock")
            self._count -= 1
            if self._count == 0:
                self._hand_over_locked()

    def _hand_over_locked(self) -> None:
        if not self._waiters:
            self._owner = None
            return
        waiter = self._waiters.popleft()
        self._owner, self._count = waiter.ident, waiter.want
        if isinstance(waiter, Participant):
            self._scheduler._make_ready_locked(waiter)
        else:
            waiter.go.release()

    # What threading.Condition and labctl.clock.released use (as for threading.RLock).
    def _is_owned(self) -> bool:
        return self._owner == threading.get_ident()

    def _release_save(self) -> tuple[int | None, int]:
        with self._scheduler.mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("cannot release un-acquired lock")
            state = (self._owner, self._count)
            self._count = 0
            self._hand_over_locked()
            return state

    def _acquire_restore(self, state: tuple[int | None, int]) -> None:
        self._acquire(state[1])

    def locked(self) -> bool:
        return self._owner is not None
