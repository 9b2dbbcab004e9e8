"""Pause, resume and abort of one run, from any thread (a GUI button, Ctrl-C, SIGTERM, the engine).

Abort cancels the run's :class:`~labctl.cancel.CancelToken`: every wait of the run's threads returns at once.
Pause is a state the procedure defines: its channels go into their hold (for example cells at open circuit,
light as set) at their next wait, and come out of it on resume; the paused time is recorded.
"""

from __future__ import annotations

import threading

from labctl.cancel import CancelToken
from labctl.clock import Clock, stepped_out


class RunControl:
    """Pause / resume / abort flags shared between the run's threads and whoever controls it."""

    def __init__(self) -> None:
        self.token = CancelToken()
        self._running = threading.Event()
        self._running.set()

    def pause(self) -> None:
        if not self.token.cancelled:  # an abort wins: a run that is stopping must not wait for a resume
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def abort(self, reason: str = "aborted by the user", status: str = "aborted") -> None:
        """Stop the run: ``status`` ``"aborted"`` (a person decided) or ``"interrupted"`` (SIGTERM, a shutdown:
        the run stays resumable and an engine restarting resumes it)."""
        self.token.cancel(reason, status)
        self._running.set()  # a paused run must wake up to shut down

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def aborted(self) -> bool:
        return self.token.cancelled

    @property
    def abort_reason(self) -> str:
        return self.token.reason

    def wait_while_paused(self, clock: Clock | None = None) -> None:
        """Block until resumed or aborted. On virtual time the waiting thread steps out of the schedule: a
        pause stops simulated time for the paused channels instead of letting it run."""
        if clock is None:
            while not self._running.wait(timeout=0.5) and not self.token.cancelled:
                pass
            return
        with stepped_out(clock):
            while not self._running.wait(timeout=0.5) and not self.token.cancelled:
                pass
