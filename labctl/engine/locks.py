"""One owner per instrument: OS file locks that a second process cannot take while the first holds them.

A real station is locked per instrument *address* (two station files that name the same SMU share its lock);
a simulated station is locked as a whole (its world lives in one process). Each lock is a file
``<lock dir>/<key>.lock`` held with an exclusive, non-blocking OS lock — ``fcntl.flock`` on POSIX, ``msvcrt``
byte-range locking on Windows — which the operating system releases when the holder exits, even after
``kill -9`` or a power cut, so a lock is never left stale. Beside it, ``<key>.json`` says who holds it::

    {"key": "...", "what": "instrument smu at TCPIP::192.168.1.20::5025::SOCKET", "pid": 4242,
     "command": "labctl engine start --station bench.toml", "since": "2026-05-01T10:22:03Z",
     "host": "lab-pc", "user": "ana", "station": "glovebox-jv", "engine": "/home/ana/.local/state/..."}

``engine`` is the holder's engine state directory when the holder is an engine (front ends find the engine of
a station through it), else null. The holder file is separate from the locked file because Windows locks
are mandatory: a locked byte cannot be read by another process.

The stdlib is enough here: the ``filelock`` package offers the same OS locks but neither a non-blocking
"who holds it" nor the holder's details, which are the point of the refusal message.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import socket
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from labctl.engine.errors import InstrumentBusy
from labctl.engine.paths import (
    lock_dir,
    make_private_dir,
    pid_alive,
    read_json,
    shared_locks,
    slug,
    station_key,
    write_private_json,
)

if TYPE_CHECKING:
    from labctl.station import Station


@dataclass(frozen=True)
class LockKey:
    """A lock's file stem and what it protects, in words."""

    key: str
    what: str


def _normalise_address(address: str) -> str:
    """One spelling per instrument: VISA resources are case-insensitive and board 0 may be omitted."""
    text = address.strip().lower()
    return re.sub(r"^(tcpip|gpib|usb|asrl|visa)0::", r"\1::", text)


def lock_keys(station: Station) -> list[LockKey]:
    """The locks a process must hold to drive ``station``."""
    if station.simulated or not station.instruments:
        return [LockKey(f"station-{station_key(station)}", f"simulated station {station.name}")]
    keys: dict[str, LockKey] = {}
    for name, spec in station.instruments.items():
        address = _normalise_address(spec.address)
        digest = hashlib.sha256(address.encode("utf-8")).hexdigest()[:10]
        key = f"address-{slug(address)[:60]}-{digest}"
        keys.setdefault(key, LockKey(key, f"instrument {name} at {spec.address}"))
    return list(keys.values())


@dataclass(frozen=True)
class Holder:
    """Who holds a lock (from its holder file)."""

    pid: int
    command: str
    since: str
    host: str = ""
    user: str = ""
    station: str = ""
    engine: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Holder:
        return cls(pid=int(data.get("pid", 0)), command=str(data.get("command", "")),
                   since=str(data.get("since", "")), host=str(data.get("host", "")), user=str(data.get("user", "")),
                   station=str(data.get("station", "")), engine=data.get("engine") or None)

    def describe(self) -> str:
        since = self.since.replace("T", " ").replace("Z", " UTC")
        who = f"pid {self.pid}" + (f" of {self.user}" if self.user else "")
        return f"{who} (`{self.command}`) since {since}"


class _OsLock:
    """An exclusive, non-blocking OS lock on one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 if shared_locks() else 0o600)
        except PermissionError:  # another user's lock file in a shared lock directory: flock needs no write
            fd = os.open(self.path, os.O_RDONLY)
        try:
            if sys.platform == "win32":
                import msvcrt

                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if sys.platform == "win32":
                import msvcrt

                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _holder_of(directory: Path, key: LockKey) -> Holder | None:
    """The holder of one lock, or None when nobody holds it."""
    probe = _OsLock(directory / f"{key.key}.lock")
    if probe.try_acquire():
        probe.release()
        return None
    data = read_json(directory / f"{key.key}.json")
    if data is None:
        return Holder(pid=0, command="a process that has not said who it is (starting?)", since="")
    return Holder.from_json(data)


def holders(station: Station) -> dict[str, tuple[LockKey, Holder]]:
    """Every lock of ``station`` someone holds, by key."""
    directory = lock_dir()
    if not directory.is_dir():
        return {}
    found = {}
    for key in lock_keys(station):
        holder = _holder_of(directory, key)
        if holder is not None:
            found[key.key] = (key, holder)
    return found


def engine_holding(station: Station) -> Path | None:
    """The state directory of the engine that holds ``station``, if one does."""
    for _key, holder in holders(station).values():
        if holder.engine and pid_alive(holder.pid):
            return Path(holder.engine)
    return None


def command_line() -> str:
    """This process's command as a person typed it (``labctl run jv ...``)."""
    argv = list(sys.argv) or ["python"]
    head = Path(argv[0]).name
    if head in {"__main__.py", "cli.py"} or head.endswith("-c"):
        head = "labctl"
    return " ".join([head, *argv[1:]])


class StationLock:
    """Hold every lock of a station for as long as this object is acquired (a context manager).

    ``engine``: this holder's engine state directory (set by the engine only)."""

    def __init__(self, station: Station, *, engine: Path | None = None, command: str | None = None) -> None:
        self.station = station
        self.engine = engine
        self.command = command or command_line()
        self._held: list[tuple[LockKey, _OsLock]] = []

    @property
    def held(self) -> bool:
        return bool(self._held)

    def acquire(self) -> StationLock:
        """Take every lock, or none: raises :class:`InstrumentBusy` naming the holder."""
        directory = lock_dir()
        if shared_locks():
            directory.mkdir(parents=True, exist_ok=True)  # its permissions are the lab's (docs/engine.md)
        else:
            make_private_dir(directory)
        info = {"pid": os.getpid(), "command": self.command,
                "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "host": socket.gethostname(),
                "user": _user(), "station": self.station.name,
                "engine": str(self.engine) if self.engine is not None else None}
        for key in lock_keys(self.station):
            lock = _OsLock(directory / f"{key.key}.lock")
            if not lock.try_acquire():
                holder = _holder_of(directory, key) or Holder(0, "a process that has just let go", "")
                self.release()
                raise InstrumentBusy(_refusal(self.station, key, holder))
            self._held.append((key, lock))
            write_private_json(directory / f"{key.key}.json", {"key": key.key, "what": key.what, **info},
                               mode=0o644 if shared_locks() else 0o600)
        return self

    def release(self) -> None:
        directory = lock_dir()
        for key, lock in reversed(self._held):
            info = directory / f"{key.key}.json"
            data = read_json(info)
            if data is not None and data.get("pid") == os.getpid():
                info.unlink(missing_ok=True)
            lock.release()
        self._held = []

    def __enter__(self) -> StationLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a service account's environment
        return ""


def _refusal(station: Station, key: LockKey, holder: Holder) -> str:
    text = f"{key.what} is in use by {holder.describe()}"
    if holder.engine:
        text += (f": the labctl engine of station {holder.station or station.name} owns it; submit runs to it "
                 f"(labctl run without --local, labctl queue add) or stop it (labctl engine stop)")
    else:
        text += "; wait for it to finish or stop that process"
    return text
