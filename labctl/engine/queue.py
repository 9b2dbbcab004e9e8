"""The engine's queue and history, kept in SQLite (the standard library's sqlite3): they survive a restart,
a crash and a power cut (WAL journal, ``synchronous=FULL``: a change is on disk when the call returns).

Schema (``queue.sqlite`` in the engine's state directory)::

    meta(key TEXT PRIMARY KEY, value TEXT)          schema_version, active (0/1), on_failure (stop|continue)
    items(uid TEXT PRIMARY KEY,                     8 hex digits
          position INTEGER,                         0, 1, 2, ... in run order (a running item stays first)
          state TEXT,                               queued | running | interrupted (waits for a decision)
          procedure TEXT, parameters TEXT,          the procedure's name and its validated values (JSON)
          out_dir TEXT, file TEXT,                  the data folder; the data file (given, or set at start)
          resume INTEGER,                           1: continue the run in `file` from its last checkpoint
          operator TEXT, on_failure TEXT,           NULL: the queue's policy; stop | continue
          added_s REAL, started_s REAL, attempts INTEGER)
    history(id INTEGER PRIMARY KEY, uid, procedure, parameters, file, status, reason, operator, session,
            started_s, ended_s, resumed)            one row per run that ended (status: the file's end state)

Times are Unix seconds of the wall clock.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labctl.clock import RealClock
from labctl.engine.errors import EngineError

SCHEMA_VERSION = 1
POLICIES = ("stop", "continue")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    uid TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'interrupted')),
    procedure TEXT NOT NULL,
    parameters TEXT NOT NULL,
    out_dir TEXT NOT NULL,
    file TEXT,
    resume INTEGER NOT NULL DEFAULT 0,
    operator TEXT NOT NULL DEFAULT '',
    on_failure TEXT CHECK (on_failure IS NULL OR on_failure IN ('stop', 'continue')),
    added_s REAL NOT NULL,
    started_s REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL,
    procedure TEXT NOT NULL,
    parameters TEXT NOT NULL,
    file TEXT,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    operator TEXT NOT NULL DEFAULT '',
    session TEXT NOT NULL DEFAULT '',
    started_s REAL,
    ended_s REAL NOT NULL,
    resumed INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class Item:
    uid: str
    position: int
    state: str
    procedure: str
    parameters: dict[str, Any]
    out_dir: str
    file: str | None
    resume: bool
    operator: str
    on_failure: str | None
    added_s: float
    started_s: float | None
    attempts: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    uid: str
    procedure: str
    parameters: dict[str, Any]
    file: str | None
    status: str
    reason: str
    operator: str
    session: str
    started_s: float | None
    ended_s: float
    resumed: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_policy(value: str | None, name: str = "on_failure") -> str | None:
    if value is not None and value not in POLICIES:
        raise EngineError(f"{name} = {value!r}; allowed: {', '.join(POLICIES)}")
    return value


class RunQueue:
    """The persistent queue and history of one engine. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._clock = RealClock()
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._lock:
            self._db.executescript(_SCHEMA)  # commits by itself: outside a transaction of ours
        with self._transaction() as db:
            version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if version is None:
                db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                               [("schema_version", str(SCHEMA_VERSION)), ("active", "0"), ("on_failure", "stop")])
            elif int(version[0]) > SCHEMA_VERSION:
                raise EngineError(f"{self.path}: queue schema {version[0]} is newer than this labctl understands "
                                  f"({SCHEMA_VERSION}); upgrade labctl")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ---------------------------------------------------------------------------------- settings
    def _meta(self, key: str) -> str:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @property
    def active(self) -> bool:
        """Whether the queue runs its items (``labctl queue start``/``stop``); kept across restarts."""
        return self._meta("active") == "1"

    def set_active(self, active: bool) -> None:
        self._set_meta("active", "1" if active else "0")

    @property
    def on_failure(self) -> str:
        """The queue-wide policy for a run that does not complete: ``stop`` the queue or ``continue``."""
        return self._meta("on_failure")

    def set_on_failure(self, policy: str) -> None:
        check_policy(policy)
        self._set_meta("on_failure", policy)

    def policy_for(self, item: Item) -> str:
        return item.on_failure or self.on_failure

    # ------------------------------------------------------------------------------------- items
    def items(self) -> list[Item]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM items ORDER BY position").fetchall()
        return [_item(row) for row in rows]

    def get(self, uid: str) -> Item:
        """The item whose uid is ``uid`` or starts with it (unique prefix)."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM items WHERE uid LIKE ? ORDER BY position",
                                    (uid.replace("%", "").replace("_", "") + "%",)).fetchall()
        exact = [row for row in rows if row["uid"] == uid]
        if exact:
            return _item(exact[0])
        if len(rows) == 1 and uid:
            return _item(rows[0])
        if not rows:
            raise EngineError(f"no queued item {uid!r} (labctl queue list shows the queue)")
        raise EngineError(f"{uid!r} matches {len(rows)} items; give more of the uid")

    def add(self, procedure: str, parameters: dict[str, Any], out_dir: str, *, file: str | None = None,
            operator: str = "", on_failure: str | None = None, position: int | None = None,
            resume: bool = False) -> Item:
        check_policy(on_failure)
        uid = secrets.token_hex(4)
        with self._transaction() as db:
            count = db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
            first = self._first_movable(db)
            where = count if position is None else min(max(int(position), first), count)
            db.execute("UPDATE items SET position = position + 1 WHERE position >= ?", (where,))
            db.execute("INSERT INTO items (uid, position, state, procedure, parameters, out_dir, file, resume, "
                       "operator, on_failure, added_s) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
                       (uid, where, procedure, json.dumps(parameters), out_dir, file, int(resume), operator,
                        on_failure, self._clock.wall_time()))
        return self.get(uid)

    @staticmethod
    def _first_movable(db: sqlite3.Connection) -> int:
        """Positions before this are running items, which stay first."""
        return int(db.execute("SELECT COUNT(*) FROM items WHERE state = 'running'").fetchone()[0])

    def edit(self, uid: str, *, parameters: dict[str, Any] | None = None, on_failure: str | None = None,
             clear_on_failure: bool = False, operator: str | None = None) -> Item:
        item = self.get(uid)
        if item.state != "queued":
            raise EngineError(f"item {item.uid} is {item.state}; only queued items can be edited")
        if item.resume and parameters is not None:
            raise EngineError(f"item {item.uid} continues {item.file}; its parameters are the file's")
        check_policy(on_failure)
        with self._transaction() as db:
            if parameters is not None:
                db.execute("UPDATE items SET parameters = ? WHERE uid = ?", (json.dumps(parameters), item.uid))
            if on_failure is not None or clear_on_failure:
                db.execute("UPDATE items SET on_failure = ? WHERE uid = ?", (on_failure, item.uid))
            if operator is not None:
                db.execute("UPDATE items SET operator = ? WHERE uid = ?", (operator, item.uid))
        return self.get(item.uid)

    def move(self, uid: str, position: int) -> Item:
        """Put a waiting item at ``position`` (0 = next to run; running items stay ahead of it)."""
        item = self.get(uid)
        if item.state == "running":
            raise EngineError(f"item {item.uid} is running; it cannot be moved")
        with self._transaction() as db:
            uids = [row[0] for row in db.execute("SELECT uid FROM items ORDER BY position")]
            uids.remove(item.uid)
            first = self._first_movable(db)
            uids.insert(min(max(int(position) + first, first), len(uids)), item.uid)
            self._renumber(db, uids)
        return self.get(item.uid)

    def remove(self, uid: str, *, session: str = "") -> Item:
        """Take a waiting item off the queue; an interrupted one goes to the history as interrupted."""
        item = self.get(uid)
        if item.state == "running":
            raise EngineError(f"item {item.uid} is running; abort it first (labctl engine abort)")
        with self._transaction() as db:
            db.execute("DELETE FROM items WHERE uid = ?", (item.uid,))
            if item.state == "interrupted":
                self._record(db, item, "interrupted", "removed from the queue without resuming", session)
            self._renumber(db, [row[0] for row in db.execute("SELECT uid FROM items ORDER BY position")])
        return item

    @staticmethod
    def _renumber(db: sqlite3.Connection, uids: list[str]) -> None:
        db.executemany("UPDATE items SET position = ? WHERE uid = ?", [(i, uid) for i, uid in enumerate(uids)])

    # ----------------------------------------------------------------------------------- running
    def next_item(self, *, include_interrupted: bool = False) -> Item | None:
        """The item to run next: a running one (resumed after a restart), an interrupted one when asked for,
        else the first queued."""
        states = ("running", "interrupted", "queued") if include_interrupted else ("running", "queued")
        for item in self.items():
            if item.state in states:
                return item
        return None

    def mark_running(self, uid: str, file: str, *, resume: bool) -> Item:
        with self._transaction() as db:
            db.execute("UPDATE items SET state = 'running', file = ?, resume = ?, started_s = COALESCE(started_s, ?), "
                       "attempts = attempts + 1 WHERE uid = ?", (file, int(resume), self._clock.wall_time(), uid))
            uids = [row[0] for row in db.execute("SELECT uid FROM items ORDER BY state != 'running', position")]
            self._renumber(db, uids)
        return self.get(uid)

    def set_state(self, uid: str, state: str, *, file: str | None = None, resume: bool | None = None) -> Item:
        """Change a waiting or running item's state (crash recovery: ``interrupted``, or ``queued`` again)."""
        with self._transaction() as db:
            db.execute("UPDATE items SET state = ?, file = COALESCE(?, file), resume = COALESCE(?, resume) "
                       "WHERE uid = ?", (state, file, None if resume is None else int(resume), uid))
        return self.get(uid)

    def finish(self, uid: str, status: str, reason: str, *, session: str = "") -> HistoryEntry:
        """The run of ``uid`` ended: the item leaves the queue and its end state enters the history."""
        item = self.get(uid)
        with self._transaction() as db:
            db.execute("DELETE FROM items WHERE uid = ?", (item.uid,))
            entry_id = self._record(db, item, status, reason, session)
            self._renumber(db, [row[0] for row in db.execute("SELECT uid FROM items ORDER BY position")])
        return next(e for e in self.history(limit=50) if e.id == entry_id)

    def _record(self, db: sqlite3.Connection, item: Item, status: str, reason: str, session: str) -> int:
        cursor = db.execute(
            "INSERT INTO history (uid, procedure, parameters, file, status, reason, operator, session, started_s, "
            "ended_s, resumed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (item.uid, item.procedure, json.dumps(item.parameters), item.file, status, reason, item.operator,
             session, item.started_s, self._clock.wall_time(), int(item.resume or item.attempts > 1)))
        return int(cursor.lastrowid or 0)

    def history(self, limit: int = 50) -> list[HistoryEntry]:
        """The last ``limit`` runs that ended, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM history ORDER BY id DESC LIMIT ?", (int(limit),)).fetchall()
        return [_history(row) for row in reversed(rows)]


def _item(row: sqlite3.Row) -> Item:
    return Item(uid=row["uid"], position=int(row["position"]), state=row["state"], procedure=row["procedure"],
                parameters=json.loads(row["parameters"]), out_dir=row["out_dir"], file=row["file"],
                resume=bool(row["resume"]), operator=row["operator"], on_failure=row["on_failure"],
                added_s=float(row["added_s"]), started_s=row["started_s"], attempts=int(row["attempts"]))


def _history(row: sqlite3.Row) -> HistoryEntry:
    return HistoryEntry(id=int(row["id"]), uid=row["uid"], procedure=row["procedure"],
                        parameters=json.loads(row["parameters"]), file=row["file"], status=row["status"],
                        reason=row["reason"], operator=row["operator"], session=row["session"],
                        started_s=row["started_s"], ended_s=float(row["ended_s"]), resumed=bool(row["resumed"]))
