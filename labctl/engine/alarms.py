"""Alarms in the engine: rules on what a run reports, which notify once when their condition begins.

Rules act on the events the engine sees from its runs — data rows of named columns, status changes, the
entries of the run's ``/events`` (channel suspended or lost, link given up) — and on the free space of the
data disk, which the engine looks at every ``disk_check_interval_s``. Each rule watches one condition per
*subject* (a data block, a channel, a disk): it **fires once** when the condition begins and is re-armed when
the condition ends (``channel_resumed``, a value back in band, ...). Firings of one rule are **rate-limited**
to one per ``min_interval_s`` (real seconds, default 3600); the ones held back are counted in the next.

A firing goes to the engine's log, to the running run's ``/events`` (kind ``alarm``), to every watching front
end, and to the command in ``[engine.notify]`` (see :mod:`labctl.engine.config` and :class:`Notifier`).

Rules (``[[engine.alarms]]`` tables; every rule also takes ``name`` and ``min_interval_s``):

========================  ===================================================================================
``kind = "power_drop"``   ``max_drop_per_h`` (required; the column's unit per hour), ``column``
                          (``"power_mW_cm2"``), ``time_column`` (``"time_s"``), ``window_s`` (600 s of run
                          time): the least-squares slope of the column over the last window, per block
``kind = "out_of_band"``  ``column`` (required), ``low`` and/or ``high``: a temperature or irradiance column
                          (``temperature_K``, ``irradiance_mW_cm2``) outside its band, per block
``kind = "channel"``      ``events`` (``channel_suspended``, ``suspended``, ``channel_lost``, ``channel_failed``,
                          ``link_lost``, ``link_given_up``), ``clear_events`` (``channel_resumed``,
                          ``suspension_cleared``, ``link_restored``), per channel (or instrument)
``kind = "disk_low"``     ``min_free_GB`` (required): the disk of the data folder
``kind = "run_ended"``    ``statuses`` (``failed``, ``interrupted``, ``aborted``): a run ending other than
                          completed
``kind = "log"``          ``levels`` (``["error"]``), ``contains`` (``""``): a log line of the run at one of
                          the levels containing the text; every such line is an episode of its own
========================  ===================================================================================
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from labctl.clock import Clock, RealClock
from labctl.engine.config import NotifyConfig, check_keys
from labctl.engine.errors import EngineError
from labctl.runner.context import RecordedEvent
from labctl.runner.events import DataRows, LogLine, RunEvent, StatusChanged

log = logging.getLogger("labctl.engine.alarm")


@dataclass(frozen=True)
class Condition:
    """What a rule found about one subject: whether its condition holds, and in words."""

    subject: str
    active: bool
    message: str = ""


@dataclass(frozen=True)
class Alarm:
    rule: str
    kind: str
    subject: str
    message: str
    item: str | None = None
    held_back: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"event": "alarm", "rule": self.rule, "kind": self.kind, "subject": self.subject,
                "message": self.message, "item": self.item, "held_back": self.held_back}


Options = dict[str, tuple[bool, Any]]


class Rule:
    kind: ClassVar[str] = ""
    #: Keys a rule of this kind takes besides kind, name and min_interval_s: key -> (required, default).
    options: ClassVar[Options] = {}

    def __init__(self, table: dict[str, Any], where: str) -> None:
        check_keys(table, {"kind", "name", "min_interval_s", *self.options}, f"{where} (kind {self.kind!r})")
        for key, (required, _default) in self.options.items():
            if required and key not in table:
                raise EngineError(f"{where}: kind {self.kind!r} needs {key!r}")
        self.where = where
        self.table = {key: value for key, value in table.items()}  # as written: what a front end edits
        self.values = {key: table.get(key, default) for key, (_required, default) in self.options.items()}
        self.min_interval_s = _positive(table.get("min_interval_s", 3600.0), f"{where}: min_interval_s", zero=True)
        self.name = str(table.get("name") or self.default_name())

    def default_name(self) -> str:
        return self.kind

    def on_event(self, item: str, event: RunEvent) -> list[Condition]:
        return []

    def on_disk(self, path: Path, free_bytes: int) -> list[Condition]:
        return []


class PowerDrop(Rule):
    kind = "power_drop"
    options: ClassVar[Options] = {"max_drop_per_h": (True, None), "column": (False, "power_mW_cm2"),
                                  "time_column": (False, "time_s"), "window_s": (False, 600.0)}

    def __init__(self, table: dict[str, Any], where: str) -> None:
        super().__init__(table, where)
        self.limit_per_s = _positive(self.values["max_drop_per_h"], f"{where}: max_drop_per_h") / 3600.0
        self.window_s = _positive(self.values["window_s"], f"{where}: window_s")
        self.column = _text(self.values["column"], f"{where}: column")
        self.time_column = _text(self.values["time_column"], f"{where}: time_column")
        self._points: dict[str, deque[tuple[float, float]]] = {}

    def default_name(self) -> str:
        return f"power_drop:{self.values['column']}"

    def on_event(self, item: str, event: RunEvent) -> list[Condition]:
        if not isinstance(event, DataRows) or self.column not in event.columns:
            return []
        if self.time_column not in event.columns:
            return []
        points = self._points.setdefault(event.block, deque())
        times = np.atleast_1d(np.asarray(event.columns[self.time_column], float))
        values = np.atleast_1d(np.asarray(event.columns[self.column], float))
        for t, v in zip(times.tolist(), values.tolist(), strict=False):
            if np.isfinite(t) and np.isfinite(v):
                points.append((t, v))
        if not points:
            return []
        newest = points[-1][0]
        while points and points[0][0] < newest - self.window_s:
            points.popleft()
        if len(points) < 3 or newest - points[0][0] < 0.5 * self.window_s:
            return []
        t, v = np.array(points).T
        slope = float(np.polyfit(t - t[0], v, 1)[0])
        unit = event.units.get(self.column, "")
        return [Condition(event.block, slope < -self.limit_per_s,
                          f"{self.column} of {event.block} falls by {-slope * 3600:.3g} {unit}/h over the last "
                          f"{newest - t[0]:.0f} s (limit {self.limit_per_s * 3600:g} {unit}/h)")]


class OutOfBand(Rule):
    kind = "out_of_band"
    options: ClassVar[Options] = {"column": (True, None), "low": (False, None), "high": (False, None)}

    def __init__(self, table: dict[str, Any], where: str) -> None:
        super().__init__(table, where)
        self.column = _text(self.values["column"], f"{where}: column")
        low, high = self.values["low"], self.values["high"]
        if low is None and high is None:
            raise EngineError(f"{where}: kind 'out_of_band' needs low, high or both")
        self.low = -np.inf if low is None else _finite(low, f"{where}: low")
        self.high = np.inf if high is None else _finite(high, f"{where}: high")
        if not self.low < self.high:
            raise EngineError(f"{where}: low = {low!r} must be below high = {high!r}")

    def default_name(self) -> str:
        return f"out_of_band:{self.values['column']}"

    def on_event(self, item: str, event: RunEvent) -> list[Condition]:
        if not isinstance(event, DataRows) or self.column not in event.columns:
            return []
        values = np.atleast_1d(np.asarray(event.columns[self.column], float))
        values = values[np.isfinite(values)]
        if values.size == 0:
            return []
        outside = values[(values < self.low) | (values > self.high)]
        unit = event.units.get(self.column, "")
        if outside.size:
            worst = float(outside[np.argmax(np.abs(outside - np.clip(outside, self.low, self.high)))])
            return [Condition(event.block, True, f"{self.column} of {event.block} is {worst:.4g} {unit}, outside "
                                                 f"{self.low:g} … {self.high:g} {unit}")]
        return [Condition(event.block, False)]


class ChannelTrouble(Rule):
    kind = "channel"
    options: ClassVar[Options] = {
        "events": (False, ["channel_suspended", "suspended", "channel_lost", "channel_failed", "link_lost",
                           "link_given_up"]),
        "clear_events": (False, ["channel_resumed", "suspension_cleared", "link_restored"])}

    def __init__(self, table: dict[str, Any], where: str) -> None:
        super().__init__(table, where)
        self.events = set(_texts(self.values["events"], f"{where}: events"))
        self.clear_events = set(_texts(self.values["clear_events"], f"{where}: clear_events"))

    def on_event(self, item: str, event: RunEvent) -> list[Condition]:
        if not isinstance(event, RecordedEvent) or event.kind not in self.events | self.clear_events:
            return []
        data = event.data
        subject = str(data.get("channel") or data.get("instrument") or data.get("suspender") or "run")
        return [Condition(subject, event.kind in self.events, event.message)]


class DiskLow(Rule):
    kind = "disk_low"
    options: ClassVar[Options] = {"min_free_GB": (True, None)}

    def __init__(self, table: dict[str, Any], where: str) -> None:
        super().__init__(table, where)
        self.min_free_bytes = _positive(self.values["min_free_GB"], f"{where}: min_free_GB") * 1e9

    def on_disk(self, path: Path, free_bytes: int) -> list[Condition]:
        return [Condition(str(path), free_bytes < self.min_free_bytes,
                          f"{free_bytes / 1e9:.2f} GB free on the disk of {path} (alarm below "
                          f"{self.min_free_bytes / 1e9:g} GB)")]


class RunEnded(Rule):
    kind = "run_ended"
    options: ClassVar[Options] = {"statuses": (False, ["failed", "interrupted", "aborted"])}

    def __init__(self, table: dict[str, Any], where: str) -> None:
        super().__init__(table, where)
        self.statuses = set(_texts(self.values["statuses"], f"{where}: statuses"))

    def on_event(self, item: str, event: RunEvent) -> list[Condition]:
        if not isinstance(event, StatusChanged) or event.status not in {"completed", "failed", "interrupted",
                                                                        "aborted"}:
            return []
        return [Condition(item, event.status in self.statuses, f"the run ended {event.status}: {event.reason}")]


class LogLineRule(Rule):
    kind = "log"
    options: ClassVar[Options] = {"levels": (False, ["error"]), "contains": (False, "")}

    def __init__(self, table: dict[str, Any], where: str) -> None:
        super().__init__(table, where)
        self.levels = set(_texts(self.values["levels"], f"{where}: levels"))
        contains = self.values["contains"]
        if not isinstance(contains, str):
            raise EngineError(f"{where}: contains = {contains!r}; allowed: a piece of text")
        self.contains = contains

    def on_event(self, item: str, event: RunEvent) -> list[Condition]:
        if not isinstance(event, LogLine) or isinstance(event, RecordedEvent) or event.level not in self.levels:
            return []
        if self.contains not in event.message:
            return []
        # Each matching line is an episode of its own: it fires, and the rule is armed again at once (the rate
        # limit keeps a flood of lines to one notification per min_interval_s).
        return [Condition(event.level, True, f"{event.level}: {event.message}"), Condition(event.level, False)]


RULES: dict[str, type[Rule]] = {cls.kind: cls for cls in (PowerDrop, OutOfBand, ChannelTrouble, DiskLow, RunEnded,
                                                          LogLineRule)}


def make_rule(table: dict[str, Any], where: str) -> Rule:
    kind = table.get("kind")
    if kind not in RULES:
        raise EngineError(f"{where}: kind = {kind!r}; allowed: {', '.join(RULES)}")
    return RULES[kind](table, where)


@dataclass
class _State:
    active: set[str] = field(default_factory=set)
    last_fired_s: float | None = None
    held_back: int = 0


class Alarms:
    """Evaluates the rules and hands each firing to ``sink`` (see the module docstring)."""

    def __init__(self, rules: Iterable[Rule], sink: Callable[[Alarm], None], clock: Clock | None = None) -> None:
        self.rules = list(rules)
        self._sink = sink
        self._clock = clock or RealClock()
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {rule.name: _State() for rule in self.rules}

    def replace_rules(self, rules: Iterable[Rule]) -> None:
        """New rules from now on; a rule that keeps its name keeps what it knew (conditions already active
        do not fire again)."""
        rules = list(rules)
        with self._lock:
            self._states = {rule.name: self._states.get(rule.name, _State()) for rule in rules}
            self.rules = rules

    def subscriber(self, item: str) -> Callable[[RunEvent], None]:
        def on_event(event: RunEvent) -> None:
            if isinstance(event, RecordedEvent) and event.kind == "alarm":
                return  # our own firing, written back to /events
            for rule in self.rules:
                self._apply(rule, item, rule.on_event(item, event))

        return on_event

    def check_disks(self, paths: Iterable[Path], item: str | None = None) -> None:
        for path in dict.fromkeys(paths):
            try:
                free = shutil.disk_usage(path).free
            except OSError as exc:
                log.warning("cannot read the free space of %s: %s", path, exc)
                continue
            for rule in self.rules:
                self._apply(rule, item, rule.on_disk(path, free))

    def _apply(self, rule: Rule, item: str | None, conditions: list[Condition]) -> None:
        fired: list[Alarm] = []
        with self._lock:
            state = self._states.get(rule.name)
            if state is None:  # the rule was replaced while this event was on its way
                return
            for condition in conditions:
                if not condition.active:
                    state.active.discard(condition.subject)
                    continue
                if condition.subject in state.active:
                    continue  # fires once per episode
                state.active.add(condition.subject)
                now = self._clock.monotonic()
                if state.last_fired_s is not None and now - state.last_fired_s < rule.min_interval_s:
                    state.held_back += 1
                    log.info("alarm %s held back (rate limit): %s", rule.name, condition.message)
                    continue
                fired.append(Alarm(rule.name, rule.kind, condition.subject, condition.message, item, state.held_back))
                state.last_fired_s, state.held_back = now, 0
        for alarm in fired:
            self._sink(alarm)


class Notifier:
    """Runs the configured command for each alarm, in its own thread, with a timeout, never through a shell
    unless ``shell = true``. Placeholders ``{rule}``, ``{kind}``, ``{subject}``, ``{message}``, ``{station}``,
    ``{item}``, ``{file}`` are filled in each argument; the same values are in the environment as
    ``LABCTL_ALARM_RULE``, ``LABCTL_ALARM_MESSAGE``, ... A failure (exit status, timeout, missing program) is
    logged, and reported to ``on_failure``."""

    max_running = 4

    def __init__(self, config: NotifyConfig, station: str,
                 on_failure: Callable[[Alarm, str], None] | None = None) -> None:
        self.config = config
        self.station = station
        self._on_failure = on_failure
        self._running = threading.BoundedSemaphore(self.max_running)
        self.threads: list[threading.Thread] = []

    def notify(self, alarm: Alarm, file: str = "") -> threading.Thread | None:
        if not self._running.acquire(blocking=False):
            self._failed(alarm, f"{self.max_running} notification commands still running; this one is skipped")
            return None
        thread = threading.Thread(target=self._run, args=(alarm, file), name="labctl-notify", daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()
        return thread

    def _run(self, alarm: Alarm, file: str) -> None:
        fields = {"rule": alarm.rule, "kind": alarm.kind, "subject": alarm.subject, "message": alarm.message,
                  "station": self.station, "item": alarm.item or "", "file": file}
        env = dict(os.environ, **{f"LABCTL_ALARM_{key.upper()}": value for key, value in fields.items()})
        command: list[str] | str
        if self.config.shell:
            command = str(self.config.command)
        else:
            command = [part.format_map(_Blank(fields)) for part in self.config.command]
        try:
            done = subprocess.run(command, shell=self.config.shell, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=self.config.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            self._failed(alarm, f"the notification command did not finish within {self.config.timeout_s:g} s "
                                "and was killed")
        except OSError as exc:
            self._failed(alarm, f"the notification command could not be started: {exc}")
        else:
            if done.returncode != 0:
                tail = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
                self._failed(alarm, f"the notification command exited with status {done.returncode}"
                                    + (f": {' | '.join(tail)}" if tail else ""))
            else:
                log.info("alarm %s notified", alarm.rule)
        finally:
            self._running.release()

    def _failed(self, alarm: Alarm, why: str) -> None:
        log.error("alarm %s: %s", alarm.rule, why)
        if self._on_failure is not None:
            self._on_failure(alarm, why)


class _Blank(dict[str, str]):
    """format_map values; an unknown placeholder stays as written instead of failing the notification."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _positive(value: Any, name: str, *, zero: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value) and (
        value >= 0 if zero else value > 0)
    if not ok:
        raise EngineError(f"{name} = {value!r}; allowed: a number {'≥' if zero else '>'} 0")
    return float(value)


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise EngineError(f"{name} = {value!r}; allowed: a finite number")
    return float(value)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise EngineError(f"{name} = {value!r}; allowed: a column name")
    return value


def _texts(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EngineError(f"{name} = {value!r}; allowed: a list of names")
    return list(value)
