"""The TCP link to a Wavelabs SINUS-70's SinusGUI, in the roles lab code uses with it.

SinusGUI's remote control ("WLRC") is a TCP *client*: it connects to the control PC, which listens (port
3334 by default). Where several programs share one SinusGUI, a relay listens for SinusGUI on 3334 and for
controllers on 3335, and a controller connects to the relay. This follows greyltc/centralcontrol
(``wavelabs.py``: ``server_connect``/``awaitConnection`` listen and accept one connection, then close the
listening socket; ``relay_connect`` dials the relay; ``wavelabs_relay_server.py`` passes bytes both ways).

Framing, from the same source: a request is one XML document ``<WLRC>...</WLRC>`` written *without* a
trailing newline; a reply is one document, read up to its ``</WLRC>`` (older centralcontrol read it as one
line, so SinusGUI's replies end in a newline, which is skipped here).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from typing import Any

from drivers.link_settings import LinkSettings, parse_host_port
from drivers.transport import PacedAdapter

log = logging.getLogger(__name__)
END_TAG = b"</WLRC>"
#: How often a blocked accept looks at the clock (seconds).
_ACCEPT_POLL_S = 0.2


class WLRCSocketAdapter(PacedAdapter):
    """One WLRC session on a connected socket: write a request as is, read replies up to ``</WLRC>``."""

    def __init__(self, sock: socket.socket, settings: LinkSettings, peer: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connection = sock
        self.peer = peer
        self.link_settings = settings
        self.timeout_s = settings["timeout_ms"] / 1000.0
        sock.settimeout(self.timeout_s)
        self._buffer = b""

    def _write(self, command: str, **kwargs: Any) -> None:
        self.connection.sendall(command.encode("utf-8"))

    def _write_bytes(self, content: bytes, **kwargs: Any) -> None:
        self.connection.sendall(content)

    def _read(self, **kwargs: Any) -> str:
        return self._read_message().decode("utf-8", errors="replace")

    def _read_bytes(self, count: int, break_on_termchar: bool, **kwargs: Any) -> bytes:
        return self._read_message()

    def _read_message(self) -> bytes:
        deadline = time.monotonic() + self.timeout_s
        while END_TAG not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete WLRC reply from {self.peer} within {self.timeout_s:g} s")
            self.connection.settimeout(remaining)
            try:
                chunk = self.connection.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise ConnectionResetError(f"SinusGUI at {self.peer} closed the connection")
            self._buffer += chunk
        cut = self._buffer.index(END_TAG) + len(END_TAG)
        message, self._buffer = self._buffer[:cut], self._buffer[cut:].lstrip(b"\r\n")
        return message.strip()

    def flush_read_buffer(self) -> None:
        """Drop what is buffered or already waiting on the socket (a late reply)."""
        self._buffer = b""
        self.connection.setblocking(False)
        try:
            while self.connection.recv(65536):
                pass
        except (BlockingIOError, OSError):
            pass
        finally:
            self.connection.settimeout(self.timeout_s)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()


def await_sinusgui(settings: LinkSettings) -> WLRCSocketAdapter:
    """Listen at ``settings["listen"]`` until SinusGUI connects (``connect_timeout_s``), then stop listening."""
    host, port = parse_host_port(settings["listen"], 3334, what="listen")
    wait_s = float(settings.get("connect_timeout_s", 10.0))
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1)
        deadline = time.monotonic() + wait_s
        log.info("waiting up to %g s for SinusGUI to connect to %s:%d", wait_s, host, port)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"SinusGUI did not connect to {host}:{port} within {wait_s:g} s (set its remote "
                                   f"control to connect to this computer, port {port}, and check the firewall)")
            listener.settimeout(min(remaining, _ACCEPT_POLL_S))
            try:
                client, peer = listener.accept()
            except TimeoutError:
                continue
            log.info("SinusGUI connected from %s:%d", peer[0], peer[1])
            return WLRCSocketAdapter(client, settings, f"{peer[0]}:{peer[1]}")
    finally:
        listener.close()  # one SinusGUI per listener: a reconnect listens afresh


def dial_relay(settings: LinkSettings) -> WLRCSocketAdapter:
    """Connect to a relay that SinusGUI is connected to (``settings["relay"]``)."""
    host, port = parse_host_port(settings["relay"], 3335, what="relay")
    sock = socket.create_connection((host, port), timeout=float(settings.get("connect_timeout_s", 10.0)))
    return WLRCSocketAdapter(sock, settings, f"{host}:{port}")


def open_wlrc(settings: LinkSettings) -> WLRCSocketAdapter:
    """The WLRC link a station names: listen for SinusGUI, or dial a relay."""
    return dial_relay(settings) if "relay" in settings.values else await_sinusgui(settings)
