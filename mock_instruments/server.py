"""Serve instrument mocks as raw TCP socket instruments (what ``labctl sim serve`` runs).

Each mock listens on its own port (``port_base``, ``port_base + 1``, ... in mapping order; ``port_base=0``
picks free ports), speaks newline-terminated messages (one program message per line, each reply ends with
``"\\n"``) and is reachable as the VISA resource ``TCPIP::127.0.0.1::<port>::SOCKET``, e.g. with
``pyvisa.ResourceManager("@py")`` and read/write termination ``"\\n"``. One thread per client; a mock's lock
keeps in-process and TCP clients from interleaving. Faults act as on hardware: a timeout sends no reply, a
drop closes the socket, a permanent drop also closes every new connection at once.

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


class SimServer:
    """Listening sockets for a set of mocks; use as a context manager or call :meth:`close`."""

    def __init__(self, mocks: Mapping[str, MockInstrument], host: str = "127.0.0.1", port_base: int = 5025
                 ) -> None:
        self.host = host
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        self._listeners: list[tuple[str, MockInstrument, socket.socket]] = []
        try:
            for index, (name, mock) in enumerate(mocks.items()):
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

    @property
    def endpoints(self) -> list[tuple[str, str, str]]:
        """(instrument name, model key, VISA resource) for each served mock."""
        return [(name, mock.model, f"TCPIP::{self.host}::{listener.getsockname()[1]}::SOCKET")
                for name, mock, listener in self._listeners]

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
            connection = mock.connect()
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
                    self._send(client, connection.take_replies())
        except ConnectionResetError:
            log.info("%s: connection dropped (injected fault)", mock.name)
        except OSError as exc:
            log.debug("%s: client socket closed: %s", mock.name, exc)
        finally:
            connection.close()
            self._drop(client)

    def _send(self, client: socket.socket, replies: list[str]) -> None:
        """Send replies in order; a late one (injected fault) after its delay, holding back what follows it
        as a slow instrument would."""
        batch = ""
        for reply in replies:
            if isinstance(reply, LateReply):
                if batch:
                    client.sendall(batch.encode("latin-1"))
                    batch = ""
                self._stop.wait(reply.delay_s)
            batch += reply + "\n"
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


def serve(mocks: Mapping[str, MockInstrument], host: str = "127.0.0.1", port_base: int = 5025) -> SimServer:
    """Start serving ``mocks`` (name -> mock) on ``host``; see :class:`SimServer`."""
    return SimServer(mocks, host=host, port_base=port_base)
