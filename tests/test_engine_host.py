"""The engine and its host: systemd's notification protocol (ready, watchdog pings only while healthy,
stopping) and the sleep inhibitor, which lives exactly as long as the run — or the engine."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.clock import real_elapsed_s, real_pause
from labctl.engine.power import SleepInhibitor
from labctl.engine.systemd import SystemdNotifier


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> socket.socket:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5.0)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    return sock


def _messages(sock: socket.socket, seconds: float) -> list[str]:
    found: list[str] = []
    deadline = real_elapsed_s() + seconds
    sock.settimeout(0.05)
    while real_elapsed_s() < deadline:
        try:
            found.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
    return found


def test_ready_then_watchdog_pings_while_healthy_then_stopping(notify_socket: socket.socket) -> None:
    healthy = [True]
    notifier = SystemdNotifier()
    assert notifier.watchdog_s == pytest.approx(0.2)
    notifier.ready(lambda: healthy[0], "engine of station sim at tcp://127.0.0.1:1")
    assert notify_socket.recv(4096).decode() == "READY=1\nSTATUS=engine of station sim at tcp://127.0.0.1:1"
    assert _messages(notify_socket, 0.6).count("WATCHDOG=1") >= 2
    healthy[0] = False  # a hung engine stops pinging: systemd kills and restarts it
    real_pause(0.15)
    assert "WATCHDOG=1" not in _messages(notify_socket, 0.5)
    notifier.stopping()
    assert _messages(notify_socket, 0.3) == ["STOPPING=1"]


def test_outside_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert SystemdNotifier().send("READY=1") is False


FAKE_INHIBIT = """#!{python}
import os, sys
args = sys.argv[1:]
with open(os.environ["INHIBIT_RECORD"], "w") as fh:
    fh.write(" ".join(args))
command = [a for a in args if not a.startswith("--")]
os.execv(command[0], command)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="systemd-inhibit is the Linux mechanism")
def test_the_inhibitor_blocks_sleep_for_the_run_and_goes_with_the_engine(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """With a stand-in for systemd-inhibit on PATH: it is asked to block sleep and idle, its child ends when the
    run ends, and — the engine killed — when the engine's end of the pipe closes."""
    fake = tmp_path / "bin" / "systemd-inhibit"
    fake.parent.mkdir()
    fake.write_text(FAKE_INHIBIT.format(python=sys.executable))
    fake.chmod(0o755)
    record = tmp_path / "inhibit.txt"
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("INHIBIT_RECORD", str(record))
    monkeypatch.setattr(sys, "platform", "linux")

    inhibitor = SleepInhibitor()
    assert inhibitor.acquire("labctl run jv_x.h5")
    child = inhibitor._child
    assert child is not None
    deadline = real_elapsed_s() + 10
    while not record.exists() and real_elapsed_s() < deadline:
        real_pause(0.05)
    assert record.read_text().startswith("--what=sleep:idle --who=labctl engine --why=labctl run jv_x.h5 --mode=block")
    assert inhibitor.held
    inhibitor.release()
    assert child.poll() is not None and not inhibitor.held

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys; from labctl.engine.power import SleepInhibitor; s = SleepInhibitor(); s.acquire('run'); "
        "print(s._child.pid, flush=True); sys.stdin.read()")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env=dict(os.environ))
    assert holder.stdout is not None
    inhibit_pid = int(holder.stdout.readline())
    holder.kill()  # the engine dies without releasing anything
    holder.wait(10)
    deadline = real_elapsed_s() + 10
    while _alive(inhibit_pid) and real_elapsed_s() < deadline:
        real_pause(0.05)
    assert not _alive(inhibit_pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
