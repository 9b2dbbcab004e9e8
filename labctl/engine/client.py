"""What front ends use to talk to an engine: the CLI, the GUI and scripts alike.

::

    from labctl.engine import EngineClient
    from labctl.station import Station

    with EngineClient.for_station(Station.load("sim"), client="my script") as engine:
        engine.watch()                                  # events from now on (and a snapshot of the runs)
        item = engine.submit("jv", pairs=["sample=wbg_ref", "scan_rates_V_s=1"])
        for message in engine.events():                 # dicts; decode_run_event() gives RunEvent objects
            if message.get("event") == "run_ended" and message["item"] == item["uid"]:
                break

Requests are answered on the caller's thread; events arrive on a reader thread and wait in
:meth:`EngineClient.events` (a slow caller loses nothing on its side; the engine coalesces data for it).
Errors come back as the exception the engine raised (ParameterError, StationError, DataFileError,
EngineError), with its one-line message.
"""

from __future__ import annotations

import itertools
import queue
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from labctl import errors
from labctl.engine import paths
from labctl.engine.errors import EngineError, EngineUnavailable, InstrumentBusy
from labctl.engine.protocol import MAX_LINE_BYTES, dumps, loads

if TYPE_CHECKING:
    from labctl.station import Station

_ERRORS: dict[str, type[Exception]] = {
    "ParameterError": errors.ParameterError, "StationError": errors.StationError,
    "DataFileError": errors.DataFileError, "InstrumentError": errors.InstrumentError,
    "InstrumentBusy": InstrumentBusy, "EngineUnavailable": EngineUnavailable,
}
_CLOSED = object()


def find_engine(station: Station, state_dir: Path | None = None) -> Path | None:
    """The state directory of the engine running for ``station`` (the one holding its instrument locks, else
    the default state directory), or None when no engine runs for it."""
    from labctl.engine.locks import engine_holding

    candidates = [Path(state_dir)] if state_dir is not None else [
        d for d in (engine_holding(station), paths.default_state_dir(station)) if d is not None]
    for directory in candidates:
        info = paths.read_json(directory / paths.ENGINE_FILE)
        if info is not None and paths.pid_alive(int(info.get("pid", 0))):
            return directory
    return None


def _connect(address: str, timeout_s: float) -> socket.socket:
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        sock.connect(address[5:])
        return sock
    if not address.startswith("tcp://"):
        raise EngineError(f"unknown engine address {address!r}")
    host, _, port = address[6:].rpartition(":")
    return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s)


class EngineClient:
    """A connection to one engine (see the module docstring). Thread-safe; use as a context manager."""

    def __init__(self, address: str, token: str, *, client: str = "", timeout_s: float = 30.0) -> None:
        self.address = address
        self.timeout_s = timeout_s
        try:
            self._sock = _connect(address, timeout_s)
        except OSError as exc:
            raise EngineUnavailable(f"the engine at {address} does not answer: {exc}") from exc
        self._sock.settimeout(None)
        self._file = self._sock.makefile("rb")
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._pending_lock = threading.Lock()
        self._events: queue.Queue[Any] = queue.Queue()
        self.closed = False
        self._reader = threading.Thread(target=self._read_loop, name="labctl-engine-client", daemon=True)
        self._reader.start()
        try:
            self.info: dict[str, Any] = self.request("hello", token=token, client=client)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------------------ opening
    @classmethod
    def open(cls, state_dir: Path, *, client: str = "", timeout_s: float = 30.0) -> EngineClient:
        """Connect to the engine whose state directory is ``state_dir``."""
        engine_file = Path(state_dir) / paths.ENGINE_FILE
        info = paths.read_json(engine_file)
        if info is None:
            if engine_file.exists():
                raise EngineUnavailable(f"{engine_file} cannot be read (it belongs to another user?)")
            raise EngineUnavailable(f"no engine is running with state directory {state_dir}")
        if not paths.pid_alive(int(info.get("pid", 0))):
            raise EngineUnavailable(f"the engine of {state_dir} (pid {info.get('pid')}) is not running any more")
        return cls(str(info["address"]), str(info["token"]), client=client, timeout_s=timeout_s)

    @classmethod
    def for_station(cls, station: Station, *, state_dir: Path | None = None, client: str = "",
                    timeout_s: float = 30.0) -> EngineClient:
        """Connect to the engine running for ``station``; EngineUnavailable when there is none."""
        directory = find_engine(station, state_dir)
        if directory is None:
            raise EngineUnavailable(f"no engine is running for station {station.name} "
                                    "(labctl engine start --station ... starts one)")
        return cls.open(directory, client=client, timeout_s=timeout_s)

    # ---------------------------------------------------------------------------- transport
    def _read_loop(self) -> None:
        try:
            while True:
                line = self._file.readline(MAX_LINE_BYTES + 1)
                if not line:
                    break
                message = loads(line)
                if "event" in message:
                    self._events.put(message)
                    continue
                with self._pending_lock:
                    waiting = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
                if waiting is not None:
                    waiting.put(message)
        except (OSError, ValueError):
            pass
        finally:
            self.closed = True
            self._events.put(_CLOSED)
            with self._pending_lock:
                pending, self._pending = self._pending, {}
            for waiting in pending.values():
                waiting.put({"ok": False, "type": "EngineUnavailable", "error": "the engine closed the connection"})

    def request(self, op: str, **arguments: Any) -> Any:
        """Send one request and wait for its reply; raises the engine's error."""
        if self.closed:
            raise EngineUnavailable("the connection to the engine is closed")
        request_id = next(self._ids)
        reply_box: queue.Queue[dict[str, Any]] = queue.Queue(1)
        with self._pending_lock:
            self._pending[request_id] = reply_box
        message = {"id": request_id, "op": op, **{k: v for k, v in arguments.items() if v is not None}}
        try:
            with self._send_lock:
                self._sock.sendall(dumps(message))
        except OSError as exc:
            raise EngineUnavailable(f"the engine at {self.address} went away: {exc}") from exc
        try:
            reply = reply_box.get(timeout=self.timeout_s)
        except queue.Empty:
            raise EngineUnavailable(f"the engine did not answer {op!r} within {self.timeout_s:g} s") from None
        if not reply.get("ok"):
            kind = _ERRORS.get(str(reply.get("type")), EngineError)
            raise kind(str(reply.get("error", "the engine refused the request")))
        return reply.get("result")

    def events(self, timeout_s: float | None = None) -> Iterator[dict[str, Any]]:
        """Events as they arrive (after :meth:`watch`); ends when the connection closes, or after
        ``timeout_s`` without an event."""
        while True:
            try:
                message = self._events.get(timeout=timeout_s)
            except queue.Empty:
                return
            if message is _CLOSED:
                self._events.put(_CLOSED)  # the next caller learns it too
                return
            yield message

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._reader.join(2.0)

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------------------- requests
    def status(self) -> dict[str, Any]:
        return dict(self.request("status"))

    def watch(self, uid: str | None = None) -> dict[str, Any]:
        """Start the event stream (only one queue item's with ``uid``); returns the engine's status and what is
        known of recent runs (status, progress, recent messages, file)."""
        return dict(self.request("watch", uid=uid))

    def submit(self, procedure: str, *, parameters: dict[str, Any] | None = None, pairs: list[str] | None = None,
               out_dir: str | None = None, file: str | None = None, operator: str = "",
               on_failure: str | None = None) -> dict[str, Any]:
        """Run next (even while the queue is stopped); returns the queue item."""
        return dict(self.request("submit", procedure=procedure, parameters=parameters, pairs=pairs,
                                 out_dir=out_dir, file=file, operator=operator, on_failure=on_failure))

    def queue_add(self, procedure: str = "", *, parameters: dict[str, Any] | None = None,
                  pairs: list[str] | None = None, out_dir: str | None = None, file: str | None = None,
                  operator: str = "", on_failure: str | None = None, position: int | None = None,
                  resume: str | None = None) -> dict[str, Any]:
        return dict(self.request("queue_add", procedure=procedure, parameters=parameters, pairs=pairs,
                                 out_dir=out_dir, file=file, operator=operator, on_failure=on_failure,
                                 position=position, resume=resume))

    def queue_list(self) -> dict[str, Any]:
        return dict(self.request("queue_list"))

    def queue_edit(self, uid: str, *, parameters: dict[str, Any] | None = None, pairs: list[str] | None = None,
                   on_failure: str | None = None, operator: str | None = None) -> dict[str, Any]:
        return dict(self.request("queue_edit", uid=uid, parameters=parameters, pairs=pairs, on_failure=on_failure,
                                 operator=operator))

    def queue_move(self, uid: str, position: int) -> dict[str, Any]:
        return dict(self.request("queue_move", uid=uid, position=position))

    def queue_remove(self, uid: str) -> dict[str, Any]:
        return dict(self.request("queue_remove", uid=uid))

    def queue_start(self) -> dict[str, Any]:
        return dict(self.request("queue_start"))

    def queue_stop(self) -> dict[str, Any]:
        return dict(self.request("queue_stop"))

    def queue_policy(self, on_failure: str) -> dict[str, Any]:
        return dict(self.request("queue_policy", on_failure=on_failure))

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        return list(self.request("history", limit=limit))

    def pause(self, uid: str | None = None) -> dict[str, Any]:
        return dict(self.request("pause", uid=uid))

    def resume(self, uid: str | None = None) -> dict[str, Any]:
        return dict(self.request("resume", uid=uid))

    def abort(self, uid: str | None = None, reason: str = "") -> dict[str, Any]:
        return dict(self.request("abort", uid=uid, reason=reason or None))

    def identify(self, names: list[str] | None = None) -> dict[str, Any]:
        """Connect instruments in the engine's session and ask who they are (all by default)."""
        return dict(self.request("identify", names=names))

    def alarms(self) -> dict[str, Any]:
        """``{"rules": [tables], "fired": [{id, time_s, rule, kind, subject, message, item, acknowledged}]}``."""
        return dict(self.request("alarms"))

    def alarms_set(self, rules: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(self.request("alarms_set", rules=rules))

    def alarm_ack(self, ids: list[int] | None = None, by: str = "") -> dict[str, Any]:
        return dict(self.request("alarm_ack", ids=ids, by=by))

    def shutdown(self, reason: str = "") -> dict[str, Any]:
        """Stop the engine: the running run is interrupted resumably and resumed at the next start."""
        return dict(self.request("shutdown", reason=reason or None))

    def wait_for_end(self, uid: str, timeout_s: float | None = None) -> dict[str, Any] | None:
        """The ``run_ended`` event of queue item ``uid`` (after :meth:`watch`); None on timeout or close."""
        for message in self.events(timeout_s):
            if message.get("event") == "run_ended" and message.get("item") == uid:
                return message
        return None
