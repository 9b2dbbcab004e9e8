"""Fired alarms kept for the front ends, with acknowledgement, and the alarm rules as people edit them.

The engine's alarms (:mod:`labctl.engine.alarms`) notify once per condition; a lab also needs to see, in the
window, which alarms fired, when and on which channel, and to mark the ones somebody has dealt with. The log
keeps the newest :data:`KEPT` firings in ``alarms.json`` in the engine's state folder, so a restarted engine
and a reopened window show the same list. Rules edited from a front end are checked exactly as the station
file's ``[engine]`` table is, replace the running rules at once and are kept in ``alarm_rules.json`` beside
it: they override the station file's rules until that file is removed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from labctl.engine.alarms import Alarm, Rule, make_rule
from labctl.engine.errors import EngineError
from labctl.engine.paths import write_private_json

log = logging.getLogger("labctl.engine")

#: Firings kept (the oldest are forgotten; the run files and the engine log keep every one).
KEPT = 500
LOG_FILE = "alarms.json"
RULES_FILE = "alarm_rules.json"


def rules_from_tables(tables: Any, where: str) -> list[Rule]:
    """Rules from a list of tables (as in ``[[engine.alarms]]``), every one checked; names must differ."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise EngineError(f"{where}: the alarm rules must be a list of tables, got {type(tables).__name__}")
    rules = [make_rule(dict(table), f"{where}[{i}]") for i, table in enumerate(tables)]
    names = [rule.name for rule in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise EngineError(f"{where}: two rules named {', '.join(duplicates)}; give each its own 'name'")
    return rules


def saved_rules(state_dir: Path) -> list[dict[str, Any]] | None:
    """Rules edited from a front end and kept in the state folder, or None."""
    path = state_dir / RULES_FILE
    if not path.exists():
        return None
    try:
        tables = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        log.error("ignoring %s: %s (the station file's alarm rules apply)", path, exc)
        return None
    return tables if isinstance(tables, list) else None


def save_rules(state_dir: Path, tables: list[dict[str, Any]]) -> None:
    _write_json(state_dir / RULES_FILE, tables)


class AlarmLog:
    """The newest firings with an id, wall-clock time and acknowledgement (see the module docstring)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOG_FILE
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=KEPT)
        self._next_id = 1
        try:
            stored = json.loads(self.path.read_text("utf-8")) if self.path.exists() else []
        except (OSError, ValueError) as exc:
            log.error("alarm log %s unreadable (%s): starting a new one", self.path, exc)
            stored = []
        for entry in stored if isinstance(stored, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), int):
                self._entries.append(entry)
                self._next_id = max(self._next_id, entry["id"] + 1)

    def add(self, alarm: Alarm) -> dict[str, Any]:
        with self._lock:
            entry = {**alarm.as_dict(), "id": self._next_id, "time_s": time.time(), "acknowledged": False,
                     "acknowledged_by": ""}
            entry.pop("event", None)
            self._next_id += 1
            self._entries.append(entry)
            self._save()
        return dict(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]

    def acknowledge(self, ids: list[int] | None, by: str = "") -> list[int]:
        """Mark firings as dealt with (``ids`` None: every open one); returns the ids newly acknowledged."""
        with self._lock:
            known = {e["id"] for e in self._entries}
            unknown = sorted(set(ids or []) - known)
            if unknown:
                raise EngineError(f"no alarm with id {', '.join(map(str, unknown))}; the log holds ids "
                                  f"{min(known, default=0)}–{max(known, default=0)}")
            done = []
            for entry in self._entries:
                if not entry["acknowledged"] and (ids is None or entry["id"] in ids):
                    entry["acknowledged"], entry["acknowledged_by"] = True, by
                    done.append(entry["id"])
            if done:
                self._save()
        return done

    def _save(self) -> None:
        _write_json(self.path, list(self._entries))


def _write_json(path: Path, value: Any) -> None:
    try:
        write_private_json(path, value)
    except OSError as exc:  # the alarm itself has gone out; its log is a convenience
        log.error("cannot write %s: %s", path, exc)
