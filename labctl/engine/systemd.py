"""The systemd notification protocol (sd_notify), without a library: ``READY=1`` once the engine listens,
``WATCHDOG=1`` pings while it is healthy, ``STOPPING=1`` when it stops.

systemd passes ``NOTIFY_SOCKET`` (a Unix datagram socket; ``@`` marks the abstract namespace) to a service of
``Type=notify``, and ``WATCHDOG_USEC`` when the unit sets ``WatchdogSec=``. The engine pings at half that
period, and only while :meth:`ready`'s health check passes (accept loop and queue worker alive, queue database
answering): an engine that hangs stops pinging, and systemd kills and restarts it — the role bluesky
queueserver's watchdog process plays, left to the service manager that already exists on the lab PC.
Outside systemd (no ``NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

log = logging.getLogger("labctl.engine")


class SystemdNotifier:
    def __init__(self) -> None:
        self.address = os.environ.get("NOTIFY_SOCKET", "")
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and (not pid or pid == str(os.getpid())) else 0.0
        self._stop = threading.Event()

    def send(self, message: str) -> bool:
        if not self.address or not hasattr(socket, "AF_UNIX"):
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode("utf-8"), target)
        except OSError as exc:
            log.warning("cannot notify systemd (%s): %s", self.address, exc)
            return False
        return True

    def ready(self, healthy: Callable[[], bool], status: str) -> None:
        self.send(f"READY=1\nSTATUS={status}")
        if self.watchdog_s > 0:
            threading.Thread(target=self._ping, args=(healthy,), name="labctl-watchdog", daemon=True).start()

    def _ping(self, healthy: Callable[[], bool]) -> None:
        while not self._stop.wait(self.watchdog_s / 2):
            if healthy():
                self.send("WATCHDOG=1")
            else:
                log.error("engine unhealthy: the systemd watchdog is no longer pinged")

    def stopping(self) -> None:
        self._stop.set()
        self.send("STOPPING=1")
