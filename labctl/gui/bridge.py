"""The window's link to the station's engine, kept off the GUI thread.

A :class:`EngineBridge` lives in the GUI thread; its worker lives in a QThread of its own and does everything
that waits: finding the engine (and starting one when none runs, as ``labctl engine start`` does), the
requests (each answered through a signal to the caller's callback), and a pump thread that reads the
engine's events and hands them over in batches (about ten per second at most, so a fast run cannot flood the
event loop; the live plots will draw from the same batches).

Closing the window closes the link only: the engine, and the run it is doing, go on.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from labctl.clock import real_elapsed_s
from labctl.engine.errors import EngineError, EngineUnavailable

#: Events are handed to the GUI thread at most this often (s); status and log lines lose nothing by it.
BATCH_PERIOD_S = 0.1
START_TIMEOUT_S = 120.0

Callback = Callable[[Any], None]
#: Link threads of closed windows that were still busy (an engine starting) when their window closed.
_finishing: list[tuple[QThread, QObject]] = []


@dataclass(frozen=True)
class Target:
    """Which engine to attach to, and how to start it when none runs."""

    station: str
    data_dir: Path
    state_dir: Path | None = None
    start_options: tuple[str, ...] = ()  # e.g. ("--clock", "real", "--speed", "20") for a demonstration


def start_engine(target: Target) -> str:
    """Start the station's engine as ``labctl engine start`` does (a detached process of its own, which
    outlives the window); returns what it printed. Raises EngineError with its message when it cannot."""
    command = [sys.executable, "-m", "labctl.cli", "engine", "start", "--station", target.station,
               "--data-dir", str(target.data_dir), *target.start_options]
    if target.state_dir is not None:
        command += ["--state-dir", str(target.state_dir)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise EngineError(f"the engine of station {target.station} did not start within {START_TIMEOUT_S:g} s"
                          ) from exc
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise EngineError(" ".join(lines[-3:]).removeprefix("error: ") or
                          f"labctl engine start exited with status {done.returncode}")
    return " ".join(done.stdout.split())


class _LinkWorker(QObject):
    """Runs in the bridge's thread; owns the EngineClient."""

    attached = pyqtSignal(object, object)  # the Station, the watch snapshot {status, runs}
    attach_failed = pyqtSignal(object)  # the exception
    progress = pyqtSignal(str)          # what attaching is doing
    replied = pyqtSignal(int, bool, object)  # request id, ok, result or exception
    events = pyqtSignal(list)           # a batch of engine events, in order
    detached = pyqtSignal(str)

    def __init__(self) -> None:
        super().__init__()
        self.client: Any = None
        self._pump: threading.Thread | None = None
        self._closing = False

    @pyqtSlot(object)
    def attach(self, target: Target) -> None:
        from labctl.engine import EngineClient, find_engine
        from labctl.station import Station

        self.close()
        self._closing = False
        try:
            station = Station.load(target.station)
            if find_engine(station, target.state_dir) is None:
                self.progress.emit(f"no engine runs for station {station.name}: starting one")
                self.progress.emit(start_engine(target))
            if target.state_dir is not None:
                client = EngineClient.open(target.state_dir, client="labctl gui")
            else:
                client = EngineClient.for_station(station, client="labctl gui")
            snapshot = client.watch()
        except Exception as exc:
            self.attach_failed.emit(exc)
            return
        if self._closing:  # the window closed while the engine was starting: it runs on, unwatched
            client.close()
            return
        self.client = client
        self._pump = threading.Thread(target=self._pump_events, args=(client,), name="labctl-gui-events",
                                      daemon=True)
        self._pump.start()
        self.attached.emit(station, snapshot)

    def _pump_events(self, client: Any) -> None:
        batch: list[dict[str, Any]] = []
        last = real_elapsed_s()
        while True:
            for message in client.events(timeout_s=BATCH_PERIOD_S):
                batch.append(message)
                if real_elapsed_s() - last >= BATCH_PERIOD_S:
                    self.events.emit(batch)
                    batch, last = [], real_elapsed_s()
            if batch:
                self.events.emit(batch)
                batch, last = [], real_elapsed_s()
            if client.closed:
                break
        if not self._closing:
            self.detached.emit(f"the engine at {client.address} closed the connection")

    @pyqtSlot(int, str, object)
    def request(self, request_id: int, op: str, arguments: dict[str, Any]) -> None:
        if self.client is None or self.client.closed:
            self.replied.emit(request_id, False, EngineUnavailable("not attached to an engine"))
            return
        try:
            result = self.client.request(op, **arguments)
        except Exception as exc:
            self.replied.emit(request_id, False, exc)
        else:
            self.replied.emit(request_id, True, result)

    @pyqtSlot()
    def close(self) -> None:
        self._closing = True
        client, self.client = self.client, None
        if client is not None:
            client.close()
        if self._pump is not None:
            self._pump.join(2.0)
            self._pump = None


class EngineBridge(QObject):
    """The GUI thread's handle on the engine link; see the module docstring."""

    attached = pyqtSignal(object, object)  # the Station, the watch snapshot {status, runs}
    attach_failed = pyqtSignal(str)
    progress = pyqtSignal(str)
    events = pyqtSignal(list)
    detached = pyqtSignal(str)
    request_failed = pyqtSignal(str, str)  # op, message: a refused request nobody else handled
    _attach = pyqtSignal(object)
    _request = pyqtSignal(int, str, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.target: Target | None = None
        self.status: dict[str, Any] = {}
        self.is_attached = False
        self._ids = itertools.count(1)
        self._callbacks: dict[int, tuple[str, Callback | None, Callback | None]] = {}
        self._thread = QThread()
        self._thread.setObjectName("labctl-gui-engine-link")
        self._worker = _LinkWorker()
        self._worker.moveToThread(self._thread)
        self._attach.connect(self._worker.attach)
        self._request.connect(self._worker.request)
        self._worker.attached.connect(self._on_attached)
        self._worker.attach_failed.connect(lambda exc: self.attach_failed.emit(str(exc)))
        self._worker.progress.connect(self.progress)
        self._worker.replied.connect(self._on_reply)
        self._worker.events.connect(self._on_events)
        self._worker.detached.connect(self._on_detached)
        self._thread.start()

    # --------------------------------------------------------------------------------- linking
    def attach(self, target: Target) -> None:
        """Attach to the target's engine (starting it if none runs); ``attached`` or ``attach_failed``."""
        self.target = target
        self.is_attached = False
        self._attach.emit(target)

    def _on_attached(self, station: Any, snapshot: dict[str, Any]) -> None:
        self.status = dict(snapshot.get("status") or {})
        self.is_attached = True
        self.attached.emit(station, snapshot)

    def _on_detached(self, reason: str) -> None:
        self.is_attached = False
        self.detached.emit(reason)

    def _on_events(self, batch: list[dict[str, Any]]) -> None:
        self.events.emit(batch)

    def close(self) -> None:
        """Let go of the engine (which goes on) and stop the link's thread."""
        # Closed from here, not through the worker's queue: a queued close would be dropped by quit(), and
        # closing the socket also ends a request the worker may be waiting on. Only at the window's close
        # does the GUI thread wait, for the event reader to end (a fraction of a second).
        self._worker.close()
        if self._thread.isRunning():
            self._thread.quit()
            if not self._thread.wait(5000):
                # still starting an engine (up to START_TIMEOUT_S): kept until it ends rather than destroyed
                # while running, which would abort the program
                _finishing.append((self._thread, self._worker))
        self.is_attached = False

    # -------------------------------------------------------------------------------- requests
    def call(self, op: str, on_done: Callback | None = None, on_error: Callback | None = None,
             **arguments: Any) -> None:
        """Send a request; ``on_done(result)`` or ``on_error(exception)`` runs in the GUI thread."""
        request_id = next(self._ids)
        self._callbacks[request_id] = (op, on_done, on_error)
        self._request.emit(request_id, op, {k: v for k, v in arguments.items() if v is not None})

    def _on_reply(self, request_id: int, ok: bool, value: Any) -> None:
        op, on_done, on_error = self._callbacks.pop(request_id, ("", None, None))
        if ok and on_done is not None:
            on_done(value)
        elif not ok and on_error is not None:
            on_error(value)
        elif not ok:
            self.request_failed.emit(op, str(value))
