"""Keep the computer awake while a run is on, without extra dependencies.

- **Linux**: ``systemd-inhibit --what=sleep:idle --mode=block`` holding a child that waits on a pipe from the
  engine; when the run ends the pipe is closed and the inhibitor goes with its child — and if the engine is
  killed, the pipe closes all the same, so a lock is never left behind. Needs systemd (logind) and the
  ``systemd-inhibit`` program; without them the engine logs that it cannot inhibit sleep.
- **Windows**: ``SetThreadExecutionState(ES_CONTINUOUS | ES_SYSTEM_REQUIRED)`` from the thread that runs the
  queue, cleared at the end of the run (Windows also clears it when the thread or the process ends).
- **macOS**: ``caffeinate -i -w <engine pid>`` (ends by itself if the engine dies).

Whether the user's session is allowed to block sleep is up to the OS policy (polkit on Linux); a refusal is
logged and the run goes on.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys

log = logging.getLogger("labctl.engine")

ES_CONTINUOUS = 0x80000000
ES_SYSTEM_REQUIRED = 0x00000001
_WAIT_FOR_PIPE = "import sys; sys.stdin.buffer.read()"


class SleepInhibitor:
    """``acquire()`` at the start of a run, ``release()`` at its end (from the same thread on Windows)."""

    def __init__(self, who: str = "labctl engine") -> None:
        self.who = who
        self._child: subprocess.Popen[bytes] | None = None
        self._windows_set = False
        self.method = ""

    @property
    def held(self) -> bool:
        return self._windows_set or (self._child is not None and self._child.poll() is None)

    def acquire(self, why: str) -> bool:
        """Block sleep; False (and a log line) where the OS offers no way this engine can use."""
        if self.held:
            return True
        if sys.platform == "win32":
            import ctypes

            result = ctypes.windll.kernel32.SetThreadExecutionState(  # type: ignore[attr-defined]
                ES_CONTINUOUS | ES_SYSTEM_REQUIRED)
            self._windows_set = bool(result)
            self.method = "SetThreadExecutionState"
            return self._windows_set
        if sys.platform == "darwin":
            command = ["caffeinate", "-i", "-w", str(os.getpid())]
            self.method = "caffeinate"
        else:
            program = shutil.which("systemd-inhibit")
            if program is None:
                log.warning("cannot keep the computer awake during the run: systemd-inhibit not found "
                            "(see docs/engine.md, 'Keeping the lab PC awake')")
                return False
            command = [program, "--what=sleep:idle", f"--who={self.who}", f"--why={why}", "--mode=block",
                       sys.executable, "-c", _WAIT_FOR_PIPE]
            self.method = "systemd-inhibit"
        try:
            self._child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
        except OSError as exc:
            log.warning("cannot keep the computer awake during the run: %s", exc)
            return False
        return True

    def release(self) -> None:
        if self._windows_set:
            import ctypes

            ctypes.windll.kernel32.SetThreadExecutionState(ES_CONTINUOUS)  # type: ignore[attr-defined]
            self._windows_set = False
        child, self._child = self._child, None
        if child is None:
            return
        if self.method == "caffeinate":
            child.terminate()  # caffeinate does not read its stdin
        elif child.stdin is not None:
            child.stdin.close()  # the waiting child ends; systemd-inhibit releases the lock
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)
