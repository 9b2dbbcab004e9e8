"""Work off the GUI thread: a function runs in Qt's thread pool and its result (or its error) comes back to
the GUI thread through a signal, so reading an HDF5 file or running an analysis never freezes the window."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6 import sip
from PyQt6.QtCore import QObject, QRunnable, QThreadPool, QTimer, pyqtSignal

_alive: set[_Carrier] = set()  # carriers of tasks still running (a Python reference keeps their signals alive)


class _Carrier(QObject):
    """Lives in the GUI thread; its signals, emitted from a pool thread, are delivered there (queued)."""

    done = pyqtSignal(object)
    failed = pyqtSignal(object)


class _Task(QRunnable):
    def __init__(self, function: Callable[[], Any], carrier: _Carrier) -> None:
        super().__init__()
        self.function = function
        self.carrier = carrier

    def run(self) -> None:
        try:
            result = self.function()
        except Exception as exc:  # handed to the GUI thread, which shows it
            self.carrier.failed.emit(exc)
        else:
            self.carrier.done.emit(result)


def run_in_thread(function: Callable[[], Any], on_done: Callable[[Any], None],
                  on_error: Callable[[Exception], None], owner: QObject | None = None) -> None:
    """Run ``function()`` in the thread pool; ``on_done(result)`` or ``on_error(exception)`` runs in the GUI
    thread afterwards — unless ``owner`` (the widget the callbacks draw on) was deleted in the meantime, as
    when its window was closed while a file was still being read."""
    carrier = _Carrier()
    _alive.add(carrier)

    def finish(callback: Callable[[Any], None], value: Any) -> None:
        _alive.discard(carrier)
        carrier.deleteLater()
        if owner is None or not sip.isdeleted(owner):
            callback(value)

    carrier.done.connect(lambda value: finish(on_done, value))
    carrier.failed.connect(lambda exc: finish(on_error, exc))
    QThreadPool.globalInstance().start(_Task(function, carrier))  # type: ignore[union-attr]


def run_in_thread_retrying(function: Callable[[], Any], on_done: Callable[[Any], None], *, tries: int,
                           delay_ms: int, wanted: Callable[[], bool], owner: QObject | None = None) -> None:
    """As :func:`run_in_thread`, asking again ``delay_ms`` later (at most ``tries`` times in all, and only while
    ``wanted()``) when ``function`` fails — e.g. a block the run file holds only after the writer's next
    flush cycle. The last failure is dropped."""
    def failed(_exc: Exception) -> None:
        if tries > 1 and wanted():
            QTimer.singleShot(delay_ms, lambda: run_in_thread_retrying(function, on_done, tries=tries - 1,
                                                                       delay_ms=delay_ms, wanted=wanted,
                                                                       owner=owner))

    run_in_thread(function, on_done, failed, owner=owner)


def wait_for_tasks(timeout_ms: int = 30000) -> bool:
    """Wait until the pool is idle (when the window closes, and in tests)."""
    return bool(QThreadPool.globalInstance().waitForDone(timeout_ms))  # type: ignore[union-attr]
