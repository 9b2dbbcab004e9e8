"""The engine process: one per station, owning its instruments, its session and its queue.

Start it with ``labctl engine start`` (detached) or ``labctl engine start --foreground`` (under a service
manager). At start it takes the station's instrument locks (a second engine, ``labctl run --local`` or
``labctl instruments`` on the same instruments is refused), opens its queue, deals with the run a crash or a
stop left behind (:meth:`Worker.recover`), listens on 127.0.0.1 (or a local socket; another address only if
the user names it), and writes ``engine.json`` with its address and a fresh random token.

Threads: one accepting connections, two per client (reading its requests; writing its replies and events
from its :class:`~labctl.engine.outbox.Outbox`), the queue worker (which runs the runs), a disk watcher when a
``disk_low`` alarm is configured, and the systemd watchdog ping when systemd asks for one.

SIGTERM, SIGINT (Ctrl-C, a Windows service wrapper's stop) and ``labctl engine stop`` end it the same way:
the running run is interrupted resumably through its safe state, its queue item stays running so the next
start resumes it, the bench is closed and the locks released. SIGHUP is ignored: a terminal closing does not
stop the engine.
"""

from __future__ import annotations

import hmac
import logging
import logging.handlers
import os
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import labctl
from labctl.clock import real_pause
from labctl.engine import paths
from labctl.engine.alarm_log import AlarmLog, rules_from_tables, saved_rules
from labctl.engine.alarms import Alarm, Alarms, Notifier, make_rule
from labctl.engine.config import EngineConfig
from labctl.engine.errors import EngineError
from labctl.engine.hub import Hub, Watcher
from labctl.engine.locks import StationLock
from labctl.engine.outbox import Outbox
from labctl.engine.power import SleepInhibitor
from labctl.engine.protocol import MAX_LINE_BYTES, OPS, PROTOCOL_VERSION, dumps, loads
from labctl.engine.queue import RunQueue
from labctl.engine.requests import Requests
from labctl.engine.session import Session, clock_factory
from labctl.engine.systemd import SystemdNotifier
from labctl.engine.worker import Worker
from labctl.errors import LabctlError

log = logging.getLogger("labctl.engine")

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class Engine:
    """An engine for one station (see the module docstring). ``start()``, then ``serve()`` until stopped."""

    def __init__(self, station: Any, state_dir: Path, *, config: EngineConfig | None = None,
                 clock_name: str | None = None, speed: float = 1.0, data_dir: Path | None = None,
                 host: str = "127.0.0.1", port: int = 0, socket_path: Path | None = None) -> None:
        self.station = station
        self.state_dir = paths.make_private_dir(Path(state_dir).resolve())
        self.config = config or EngineConfig.from_text(station.text, station.source)
        self.clock_name = clock_name or ("virtual" if station.simulated else "real")
        self.speed = speed
        self.data_dir = Path(data_dir or Path.cwd() / "labctl-data").resolve()
        self.host, self.port, self.socket_path = host, port, socket_path
        self.token = secrets.token_urlsafe(32)
        self.since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.address = ""
        self.lock = StationLock(station, engine=self.state_dir)
        self.hub = Hub()
        self.queue: RunQueue | None = None
        self.worker: Worker | None = None
        self.session = Session(station, clock_factory(station, clock_name, speed))
        self.notifier = (Notifier(self.config.notify, station.name, self._notify_failed)
                         if self.config.notify else None)
        rules = [make_rule(rule, f"{self.config.source}: [engine].alarms[{i}]")
                 for i, rule in enumerate(self.config.alarms)]
        edited = saved_rules(self.state_dir)
        if edited is not None:
            try:
                rules = rules_from_tables(edited, f"{self.state_dir / 'alarm_rules.json'}")
                log.info("alarm rules as edited from a front end (%d), not the station file's", len(rules))
            except EngineError as exc:
                log.error("%s: the station file's alarm rules apply", exc)
        self.alarms = Alarms(rules, self._alarm)
        self.alarm_log = AlarmLog(self.state_dir)
        self.systemd = SystemdNotifier()
        self._server: socket.socket | None = None
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._clients: set[_Client] = set()
        self._clients_lock = threading.Lock()
        self.requests = Requests(self)

    # ---------------------------------------------------------------------------------- lifecycle
    def start(self) -> list[str]:
        """Take the locks, open the queue, recover, listen, write engine.json. Returns recovery notes."""
        self.lock.acquire()
        try:
            self.queue = RunQueue(self.state_dir / paths.QUEUE_FILE)
            inhibitor = SleepInhibitor() if self.config.inhibit_sleep else None
            self.worker = Worker(self.queue, self.session, self.hub, self.alarms,
                                 resume_interrupted=self.config.resume_interrupted, inhibitor=inhibitor)
            notes = self.worker.recover()
            self._listen()
            self._write_engine_file()
            self.worker.start()
        except BaseException:
            self._close_resources()
            raise
        self._start_thread(self._accept_loop, "labctl-accept")
        if any(rule.kind == "disk_low" for rule in self.alarms.rules):
            self._start_thread(self._disk_loop, "labctl-disk")
        self.systemd.ready(self._watchdog_ok, f"engine of station {self.station.name} at {self.address}")
        log.info("engine of station %s started (pid %d) at %s; state in %s", self.station.name, os.getpid(),
                 self.address, self.state_dir)
        return notes

    def _start_thread(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _listen(self) -> None:
        if self.socket_path is not None:
            if not hasattr(socket, "AF_UNIX"):
                raise EngineError("--socket needs a system with local (Unix) sockets; use --host 127.0.0.1")
            path = Path(self.socket_path).resolve()
            if path.exists():
                path.unlink()  # a socket left by a killed engine: we hold the station's lock, so it is ours
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(str(path))
            os.chmod(path, 0o600)
            self.address = f"unix:{path}"
        else:
            if self.host not in LOOPBACK:
                log.warning("listening on %s: any computer that reaches it and has the token can drive the "
                            "instruments", self.host)
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            server = socket.socket(family, socket.SOCK_STREAM)
            server.bind((self.host, self.port))
            host, port = server.getsockname()[:2]
            self.address = f"tcp://{'[' + host + ']' if ':' in host else host}:{port}"
        server.listen(16)
        server.settimeout(0.5)
        self._server = server

    def _write_engine_file(self) -> None:
        paths.write_private_json(self.state_dir / paths.ENGINE_FILE, {
            "pid": os.getpid(), "address": self.address, "token": self.token, "protocol": PROTOCOL_VERSION,
            "station": self.station.name, "station_source": self.station.source, "since": self.since,
            "version": labctl.__version__, "state_dir": str(self.state_dir), "data_dir": str(self.data_dir),
            "clock": self.clock_name, "speed": self.speed})

    def serve(self) -> None:
        """Block until the engine is stopped (a request, a signal, or :meth:`stop`)."""
        while not self._stopped.wait(0.5):
            pass

    def stop(self, reason: str = "engine stopped") -> None:
        """Interrupt the running run resumably, close the bench, release the locks. Safe to call twice."""
        with self._stop_lock:
            if self._stopped.is_set():
                return
            log.info("engine stopping: %s", reason)
            self.systemd.stopping()
            self.hub.publish({"event": "engine", "state": "stopping", "reason": reason})
            if self.worker is not None:
                self.worker.stop(f"{reason}; resumable (the engine resumes it when started again)")
            self._close_resources()
            self._stopped.set()
            with self._clients_lock:
                clients = list(self._clients)
            for client in clients:  # after the last events went out: the front ends see the engine go
                client.drain_and_close(self.hub)
            log.info("engine stopped")

    def _close_resources(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.address.startswith("unix:"):
            Path(self.address[5:]).unlink(missing_ok=True)
        engine_file = self.state_dir / paths.ENGINE_FILE
        data = paths.read_json(engine_file)
        if data is not None and data.get("pid") == os.getpid():
            engine_file.unlink(missing_ok=True)
        self.session.close()
        if self.queue is not None:
            self.queue.close()
        self.lock.release()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    # ------------------------------------------------------------------------------- connections
    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            server = self._server
            if server is None:
                return
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=self._serve_client, args=(conn,), name="labctl-client", daemon=True).start()

    def _serve_client(self, conn: socket.socket) -> None:
        client = _Client(conn)
        with self._clients_lock:
            self._clients.add(client)
        try:
            hello = client.read()
            token = str(hello.get("token", "")) if hello else ""
            if not hello or hello.get("op") != "hello" or not hmac.compare_digest(token, self.token):
                client.send({"id": hello.get("id") if hello else None, "ok": False, "type": "EngineError",
                             "error": "not authorised: the token does not match this engine's"})
                return
            client.name = str(hello.get("client", ""))
            client.send({"id": hello.get("id"), "ok": True, "result": self.requests.status()})
            while not self._stopped.is_set():
                message = client.read()
                if message is None:
                    return
                client.send(self._answer(client, message))
        except (OSError, ValueError) as exc:
            log.debug("client %s: %s", client.name, exc)
        finally:
            client.close(self.hub)
            with self._clients_lock:
                self._clients.discard(client)

    def _answer(self, client: _Client, message: dict[str, Any]) -> dict[str, Any]:
        request_id = message.get("id")
        op = message.get("op")
        if op not in OPS or op == "hello":
            return {"id": request_id, "ok": False, "type": "EngineError",
                    "error": f"unknown request {op!r}; known: {', '.join(o for o in OPS if o != 'hello')}"}
        arguments = {key: message[key] for key in OPS[str(op)] if key in message}
        try:
            if op == "watch":
                result = self._watch(client, arguments.get("uid"))
            else:
                result = getattr(self.requests, str(op))(**arguments)
        except LabctlError as exc:
            return {"id": request_id, "ok": False, "type": type(exc).__name__, "error": str(exc)}
        except Exception as exc:
            log.exception("request %s failed", op)
            return {"id": request_id, "ok": False, "type": type(exc).__name__, "error": f"engine failure: {exc}"}
        return {"id": request_id, "ok": True, "result": result}

    def _watch(self, client: _Client, uid: str | None) -> dict[str, Any]:
        client.watch(self.hub, uid)
        return {"status": self.requests.status(), "runs": self.hub.snapshot(uid)}

    # -------------------------------------------------------------------------------- alarms
    def _alarm(self, alarm: Alarm) -> None:
        log.warning("ALARM %s (%s): %s%s", alarm.rule, alarm.subject, alarm.message,
                    f" [{alarm.held_back} more held back]" if alarm.held_back else "")
        worker = self.worker
        current = worker.current if worker is not None else None
        recorder = worker.recorder if worker is not None else None
        file = ""
        if current is not None and (alarm.item is None or alarm.item == current[0].uid):
            file = str(current[1].path)
            if recorder is not None:
                try:
                    recorder("alarm", alarm.message, rule=alarm.rule, alarm_kind=alarm.kind, subject=alarm.subject,
                             held_back=alarm.held_back)
                except Exception as exc:  # the run is ending and its file is closed
                    log.debug("alarm not written to the run file: %s", exc)
        entry = self.alarm_log.add(alarm)
        self.hub.publish({**alarm.as_dict(), "id": entry["id"], "time_s": entry["time_s"]}, item=alarm.item)
        if self.notifier is not None:
            self.notifier.notify(alarm, file)

    def _notify_failed(self, alarm: Alarm, why: str) -> None:
        self.hub.publish({"event": "alarm_notify_failed", "rule": alarm.rule, "error": why}, item=alarm.item)

    def _disk_loop(self) -> None:
        while not self._stopped.wait(self.config.disk_check_interval_s):
            worker = self.worker
            current = worker.current if worker is not None else None
            folders = [self.data_dir if self.data_dir.exists() else self.state_dir]
            item = None
            if current is not None and current[1].path is not None:
                folders.append(Path(current[1].path).parent)
                item = current[0].uid
            self.alarms.check_disks([f for f in folders if f.exists()], item)

    def _watchdog_ok(self) -> bool:
        """What the systemd watchdog ping vouches for: the accept loop and the worker live, the queue answers."""
        worker, queue = self.worker, self.queue
        if worker is None or queue is None or not worker.alive:
            return False
        if not all(thread.is_alive() for thread in self._threads):
            return False
        try:
            queue.active  # noqa: B018  (a query: the database answers)
        except Exception:
            return False
        return True


class _Client:
    """One connection: a reader (the request thread) and, once it watches, a writer thread for its outbox."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.name = ""
        self._file = conn.makefile("rb")
        self._send_lock = threading.Lock()
        self.watcher: Watcher | None = None
        self._closed = False

    def read(self) -> dict[str, Any] | None:
        line = self._file.readline(MAX_LINE_BYTES + 1)
        if not line:
            return None
        if len(line) > MAX_LINE_BYTES:
            raise ValueError("request line too long")
        return loads(line)

    def send(self, message: dict[str, Any]) -> None:
        data = dumps(message)
        with self._send_lock:
            self.conn.sendall(data)

    def watch(self, hub: Hub, uid: str | None) -> None:
        if self.watcher is not None:
            self.watcher.uid = uid
            return
        self.watcher = Watcher(Outbox(), uid, on_overflow=self._overflowed)
        hub.attach(self.watcher)
        threading.Thread(target=self._write_events, args=(self.watcher.outbox,), name="labctl-client-out",
                         daemon=True).start()

    def _write_events(self, outbox: Outbox) -> None:
        while True:
            batch = outbox.take(1.0)
            if batch is None or outbox.overflowed:
                break
            try:
                for message in batch:
                    self.send(message)
            except OSError:
                break
        self._shutdown()

    def _overflowed(self) -> None:
        log.warning("client %r disconnected: it fell too far behind the events", self.name)
        self._shutdown()

    def _shutdown(self) -> None:
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def drain_and_close(self, hub: Hub, timeout_s: float = 2.0) -> None:
        """Let the writer send what is waiting, then close."""
        watcher = self.watcher
        if watcher is not None:
            for _ in range(int(timeout_s / 0.05)):
                if watcher.outbox.waiting == 0:
                    break
                real_pause(0.05)
        self.close(hub)

    def close(self, hub: Hub) -> None:
        if self.watcher is not None:
            hub.detach(self.watcher)
            self.watcher.outbox.close()
        self._shutdown()
        try:
            self._file.close()
            self.conn.close()
        except OSError:
            pass


def setup_logging(state_dir: Path, *, to_stderr: bool = True) -> None:
    """The engine's log: ``engine.log`` in its state directory (rotated), and stderr in the foreground."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = logging.handlers.RotatingFileHandler(state_dir / paths.LOG_FILE, maxBytes=10 * 2**20, backupCount=5,
                                                   encoding="utf-8")
    handler.setFormatter(formatter)
    root.addHandler(handler)
    if to_stderr:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(formatter)
        root.addHandler(stream)


def run_engine(engine: Engine, on_started: Callable[[list[str]], None] | None = None) -> int:
    """Start ``engine`` (``on_started`` gets the recovery notes), serve until a stop request or a signal,
    stop. Returns the process exit code."""

    def on_signal(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        threading.Thread(target=engine.stop, args=(f"{name}: stopped by the system or the user",),
                         daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGINT", "SIGBREAK"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), on_signal)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
    notes = engine.start()
    if on_started is not None:
        on_started(notes)
    try:
        engine.serve()
    finally:
        engine.stop("engine exiting")
    return 0

