"""Cancellation: one token per run that every blocking wait watches.

A run (or one channel of it) executes inside :func:`cancel_scope`; from then on every wait of that thread that
goes through a :class:`~labctl.clock.Clock` — a procedure's ``ctx.sleep``, a driver polling its sweep buffer,
a temperature or light settling loop, a reconnect back-off — returns as soon as the token is cancelled and
raises :class:`~labctl.errors.RunAborted`. Abort from a GUI button, Ctrl-C and SIGTERM all cancel the token
from another thread (or a signal handler); nothing has to poll a flag between instrument calls.

The safe state runs *outside* the scope, so a cancelled run can still wait for its instruments to switch
off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from labctl.errors import RunAborted

Waker = Callable[[], None]


class CancelToken:
    """Set once, from any thread; wakes every wait registered on it.

    ``status`` is what the run's end state becomes: ``"aborted"`` (a person stopped it) or
    ``"interrupted"`` (SIGTERM: a service manager or a shutdown stopped it, and the run stays resumable).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._wakers: dict[int, Waker] = {}
        self._next_key = 0
        self.reason = ""
        self.status = "aborted"

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self, reason: str = "aborted by the user", status: str = "aborted") -> None:
        """Cancel (the first reason and status win) and wake every registered wait."""
        with self._lock:
            if not self._event.is_set():
                self.reason = reason
                self.status = status
            self._event.set()
            wakers = list(self._wakers.values())
        for wake in wakers:
            wake()

    def exception(self) -> RunAborted:
        return RunAborted(self.reason or "aborted")

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise self.exception()

    def wait(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` real seconds; True if cancelled meanwhile (or before)."""
        return self._event.wait(timeout_s)

    def add_waker(self, wake: Waker) -> int:
        """Call ``wake()`` on cancellation (at once if cancelled already); returns a key for
        :meth:`remove_waker`."""
        with self._lock:
            key = self._next_key
            self._next_key += 1
            if not self._event.is_set():
                self._wakers[key] = wake
                return key
        wake()
        return key

    def remove_waker(self, key: int) -> None:
        with self._lock:
            self._wakers.pop(key, None)


class StopFlag(CancelToken):
    """A re-armable token with the :class:`threading.Event` methods: an instrument's "stop waiting for this
    sweep" that its safe state sets from another thread (:func:`watching` makes a wait see it)."""

    def set(self) -> None:
        self.cancel("the instrument was put in its safe state")

    def is_set(self) -> bool:
        return self.cancelled

    def clear(self) -> None:
        with self._lock:
            self._event.clear()
            self.reason = ""


@contextmanager
def watching(extra: CancelToken) -> Iterator[CancelToken]:
    """For the block, the calling thread's waits end when its run is cancelled *or* ``extra`` is; the token
    they raise from says which (``extra.cancelled``)."""
    outer = current_token()
    either = CancelToken()
    keys: list[tuple[CancelToken, int]] = []
    def relay(source: CancelToken) -> Waker:
        return lambda: either.cancel(source.reason, source.status)

    for source in (outer, extra):
        if source is not None:
            keys.append((source, source.add_waker(relay(source))))
    try:
        with cancel_scope(either):
            yield either
    finally:
        for source, key in keys:
            source.remove_waker(key)


_local = threading.local()


def current_token() -> CancelToken | None:
    """The token the calling thread's waits watch (None outside any run)."""
    stack: list[CancelToken | None] | None = getattr(_local, "stack", None)
    return stack[-1] if stack else None


@contextmanager
def cancel_scope(token: CancelToken | None) -> Iterator[CancelToken | None]:
    """Make ``token`` the calling thread's token for the block (None: waits in the block are not
    cancellable, e.g. a safe state that must finish)."""
    stack: list[CancelToken | None] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    stack.append(token)
    try:
        yield token
    finally:
        stack.pop()


def check_cancelled() -> None:
    """A cancellation point: raise :class:`RunAborted` if the calling thread's token is cancelled."""
    token = current_token()
    if token is not None:
        token.raise_if_cancelled()
