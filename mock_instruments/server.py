"""Serve instrument mocks as raw TCP socket instruments (what ``labctl sim serve`` runs).

Each mock listens on its own port (``port_base``, ``port_base + 1``, ... in mapping order; ``port_base=0``
picks free ports), speaks newline-terminated messages (one program message per line, each reply ends with
``"\\n"``) and is reachable as the VISA resource ``TCPIP::127.0.0.1::<port>::SOCKET``, e.g. with
``pyvisa.ResourceManager("@py")`` and read/write termination ``"\\n"``. One thread per client; a mock's lock
keeps in-process and TCP clients from interleaving. Faults act as on hardware: a timeout sends no reply, a
drop closes the socket, a permanent drop also closes every new connection at once.

Two kinds of instrument are served the way their real links work:

- an instrument that connects to its controller (``mock.dials_in``: the Wavelabs SINUS-70's SinusGUI) does
  not listen: the server connects to the address it is told (``dial``, by instrument name; default the
  mock's own ``dial_target``, 127.0.0.1:3334) and tries again every second while nothing listens there and
  after each session ends; its endpoint is ``wavelabs://HOST:PORT``, the address a station uses to listen;
- a mock may open its TCP sessions differently from in-process ones (``mock.connect_tcp``): the LSS-7120
  is then served as a USBTMC-to-TCP bridge serves it (no zero-byte acknowledgements on the socket, each
  reply newline-terminated) and the Lake Shore as on its Ethernet port (no serial pacing); a mock whose
  instrument ends replies otherwise says so (``mock.reply_terminator``, the Lake Shore's CR LF).

The world's clock is virtual: a TCP client's own waiting does not advance it, only what the instruments
charge (integration time, sweeps, ``*WAI``) does.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Mapping
from types import TracebackType

from mock_instruments.base import LateReply, MockInstrument

log = logging.getLogger(__name__)
_POLL_S = 0.2  # how often blocked accept/recv calls look at the stop flag (real seconds)
REDIAL_S = 1.0  # how often an instrument that connects out tries again while nothing listens (real seconds)


class SimServer:
    """Listening sockets for a set of mocks; use as a context manager or call :meth:`close`."""

    def __init__(self, mocks: Mapping[str, MockInstrument], host: str = "127.0.0.1", port_base: int = 5025,
                 dial: Mapping[str, str] | None = None) -> None:
        self.host = host
        self._dialers: list[tuple[str, MockInstrument, tuple[str, int]]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        self._listeners: list[tuple[str, MockInstrument, socket.socket]] = []
        dial = dict(dial or {})
        unknown = sorted(set(dial) - {n for n, m in mocks.items() if getattr(m, "dials_in", False)})
        if unknown:
            raise ValueError(f"dial: {', '.join(unknown)} is not an instrument that connects out "
                             f"({', '.join(n for n, m in mocks.items() if getattr(m, 'dials_in', False)) or 'none'})")
        try:
            for index, (name, mock) in enumerate(mocks.items()):
                if getattr(mock, "dials_in", False):
                    target = _host_port(dial.get(name, ""), getattr(mock, "dial_target", ("127.0.0.1", 3334)))
                    self._dialers.append((name, mock, target))
                    continue
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((host, 0 if port_base == 0 else port_base + index))
                listener.listen(8)
                listener.settimeout(_POLL_S)
                self._listeners.append((name, mock, listener))
        except OSError:
            self.close()
            raise
        for name, mock, listener in self._listeners:
            thread = threading.Thread(target=self._accept_loop, args=(mock, listener),
                                      name=f"sim-accept-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        for name, mock, target in self._dialers:
            thread = threading.Thread(target=self._dial_loop, args=(mock, target), name=f"sim-dial-{name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def endpoints(self) -> list[tuple[str, str, str]]:
        """(instrument name, model key, address a client uses) for each served mock: the VISA resource of a
        listening mock, ``wavelabs://HOST:PORT`` (where to listen) for one that connects out."""
        listening = [(name, mock.model, f"TCPIP::{self.host}::{listener.getsockname()[1]}::SOCKET")
                     for name, mock, listener in self._listeners]
        dialing = [(name, mock.model, f"wavelabs://{host}:{port}") for name, mock, (host, port) in self._dialers]
        return listening + dialing

    def _dial_loop(self, mock: MockInstrument, target: tuple[str, int]) -> None:
        """Connect to ``target`` as the real instrument's software would, again after each session ends and
        every :data:`REDIAL_S` while nothing listens; stop when the instrument has exited (ExitProgram)."""
        while not self._stop.is_set() and not getattr(mock, "exited", False):
            try:
                client = socket.create_connection(target, timeout=REDIAL_S)
            except OSError:
                self._stop.wait(REDIAL_S)
                continue
            self._serve_client(mock, client)
            self._stop.wait(_POLL_S)

    def _accept_loop(self, mock: MockInstrument, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve_client, args=(mock, client),
                                      name=f"sim-client-{mock.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve_client(self, mock: MockInstrument, client: socket.socket) -> None:
        with self._clients_lock:
            self._clients.add(client)
        try:
            connection = getattr(mock, "connect_tcp", mock.connect)()
        except ConnectionRefusedError:
            self._drop(client)
            return
        client.settimeout(_POLL_S)
        pending = b""
        try:
            while not self._stop.is_set():
                try:
                    data = client.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                pending += data
                lines, pending = mock.split_messages(pending)
                for raw in lines:
                    line = raw.decode("latin-1").strip("\r")
                    if not line.strip():
                        continue
                    try:
                        connection.write(line)
                    except ConnectionResetError:
                        raise
                    except Exception:  # a bug in a mock must not take the server down
                        log.exception("%s: error handling %r", mock.name, line)
                    self._send(client, mock, connection.take_replies())
        except ConnectionResetError:
            log.info("%s: connection dropped (injected fault)", mock.name)
        except OSError as exc:
            log.debug("%s: client socket closed: %s", mock.name, exc)
        finally:
            connection.close()
            self._drop(client)

    def _send(self, client: socket.socket, mock: MockInstrument, replies: list[str]) -> None:
        """Send replies in order, each ended by the model's terminator; a late one (injected fault) after its
        delay, holding back what follows it as a slow instrument would."""
        ending = getattr(mock, "reply_terminator", "\n")
        batch = ""
        for reply in replies:
            if isinstance(reply, LateReply):
                if batch:
                    client.sendall(batch.encode("latin-1"))
                    batch = ""
                self._stop.wait(reply.delay_s)
            batch += reply + ending
        if batch:
            client.sendall(batch.encode("latin-1"))

    def _drop(self, client: socket.socket) -> None:
        with self._clients_lock:
            self._clients.discard(client)
        try:
            client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        client.close()

    def close(self) -> None:
        """Stop accepting, close every socket and wait for the threads."""
        self._stop.set()
        for _, _, listener in self._listeners:
            listener.close()
        with self._clients_lock:
            clients = list(self._clients)
        for client in clients:
            self._drop(client)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2 * _POLL_S + 1.0)

    def __enter__(self) -> SimServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def serve(mocks: Mapping[str, MockInstrument], host: str = "127.0.0.1", port_base: int = 5025,
          dial: Mapping[str, str] | None = None) -> SimServer:
    """Start serving ``mocks`` (name -> mock) on ``host``; ``dial`` (name -> HOST:PORT) tells instruments that
    connect out where to connect. See :class:`SimServer`."""
    return SimServer(mocks, host=host, port_base=port_base, dial=dial)


def _host_port(text: str, default: tuple[str, int]) -> tuple[str, int]:
    if not text:
        return default
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"dial address {text!r} must be HOST:PORT, e.g. 127.0.0.1:3334")
    return host.strip("[]"), int(port)
