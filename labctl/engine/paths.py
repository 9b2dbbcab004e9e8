"""Where an engine keeps its state, and the files in it.

::

    <state home>/                      $LABCTL_HOME, else %LOCALAPPDATA%\\labctl (Windows),
                                       else $XDG_STATE_HOME/labctl or ~/.local/state/labctl
      locks/<key>.lock, <key>.json     instrument locks and who holds them (labctl.engine.locks)
      engines/<station key>/           an engine's state directory (the default for --state-dir)
        engine.json                    pid, address, token, station, clock, since — readable by the user only
        queue.sqlite                   the queue and the history (labctl.engine.queue)
        engine.log                     the engine's log (rotated at 10 MB, 5 files kept)

The state home and every state directory are created readable by their owner only (0700): the token in
``engine.json`` is what lets a front end drive the instruments.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labctl.station import Station

ENGINE_FILE = "engine.json"
QUEUE_FILE = "queue.sqlite"
LOG_FILE = "engine.log"


def state_home() -> Path:
    """The per-user directory for engines and locks (see the module docstring)."""
    explicit = os.environ.get("LABCTL_HOME")
    if explicit:
        return Path(explicit)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "labctl"
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "labctl"


def slug(text: str) -> str:
    """A file-name-safe version of ``text`` (letters, digits, ``.``, ``_``, ``-``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "x"


def station_key(station: Station) -> str:
    """One name per station: a built-in station's name, or the file's name and a hash of its full path (two
    station files called ``bench.toml`` in different folders are different stations)."""
    from labctl.station import BUILTIN_STATIONS

    if station.source in BUILTIN_STATIONS:
        return station.source
    resolved = str(Path(station.source).expanduser().resolve())
    digest = hashlib.sha256(resolved.encode("utf-8")).hexdigest()[:10]
    return f"{slug(station.name)}-{digest}"


def default_state_dir(station: Station) -> Path:
    return state_home() / "engines" / station_key(station)


def lock_dir() -> Path:
    return Path(os.environ.get("LABCTL_LOCK_DIR") or state_home() / "locks")


def shared_locks() -> bool:
    """Whether the locks live in a directory several users share (``LABCTL_LOCK_DIR``)."""
    return bool(os.environ.get("LABCTL_LOCK_DIR"))


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the owner only; an existing directory is tightened."""
    for folder in [*reversed(path.parents), path]:
        if not folder.exists():
            folder.mkdir(mode=0o700, exist_ok=True)  # each new parent too: mkdir(parents=True) would not
    if sys.platform != "win32":
        os.chmod(path, 0o700)
    return path


def write_private_json(path: Path, data: Any, mode: int = 0o600) -> None:
    """Write ``data`` as JSON, readable by the owner only (unless ``mode`` says otherwise), replacing the file
    in one step."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    if sys.platform != "win32":
        os.fchmod(fd, mode)  # exactly ``mode``, whatever the umask
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on POSIX: signal 0; on Windows: OpenProcess)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # type: ignore[attr-defined]
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)  # type: ignore[attr-defined]
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
