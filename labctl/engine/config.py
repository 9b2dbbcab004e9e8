"""The engine's settings: an ``[engine]`` table in the station file, or in a file given with
``labctl engine start --config FILE`` (which replaces the station's). Every key is checked when the engine
starts; a bad one stops it with a message naming the key, the value and what is allowed. ::

    [engine]
    resume_interrupted = "always"     # always | ask | never: what a restarted engine does with the run a
                                      # crash, a power cut or a stop cut off (see docs/engine.md)
    inhibit_sleep = true              # keep the computer awake while a run is on (where the OS allows)
    disk_check_interval_s = 60        # how often the disk_low rule looks at the data disk

    [engine.notify]                   # what an alarm runs (after the engine log and the run's /events)
    command = ["/usr/local/bin/lab-alert", "{station}", "{rule}", "{message}"]
    timeout_s = 30                    # the command is killed after this; its failure is logged
    shell = false                     # true: command is one string run by the shell (only if you need one)

    [[engine.alarms]]                 # one table per rule; the kinds and their keys are in labctl.engine.alarms
    kind = "power_drop"
    column = "power_mW_cm2"
    max_drop_per_h = 0.5
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.engine.errors import EngineError

RESUME_POLICIES = ("always", "ask", "never")
_ENGINE_KEYS = {"resume_interrupted", "inhibit_sleep", "disk_check_interval_s", "notify", "alarms"}
_NOTIFY_KEYS = {"command", "timeout_s", "shell"}


@dataclass(frozen=True)
class NotifyConfig:
    command: list[str] | str
    timeout_s: float = 30.0
    shell: bool = False


@dataclass(frozen=True)
class EngineConfig:
    resume_interrupted: str = "always"
    inhibit_sleep: bool = True
    disk_check_interval_s: float = 60.0
    notify: NotifyConfig | None = None
    alarms: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""

    @classmethod
    def from_text(cls, text: str, source: str) -> EngineConfig:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise EngineError(f"{source}: not valid TOML: {exc}") from exc
        return cls.from_table(data.get("engine", {}), source)

    @classmethod
    def load(cls, path: Path) -> EngineConfig:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise EngineError(f"cannot read engine config {path}: {exc.strerror or exc}") from exc
        return cls.from_text(text, str(path))

    @classmethod
    def from_table(cls, table: Any, source: str) -> EngineConfig:
        where = f"{source}: [engine]"
        check_keys(table, _ENGINE_KEYS, where)
        policy = table.get("resume_interrupted", "always")
        if policy not in RESUME_POLICIES:
            raise EngineError(f"{where}: resume_interrupted = {policy!r}; allowed: {', '.join(RESUME_POLICIES)}")
        inhibit = table.get("inhibit_sleep", True)
        if not isinstance(inhibit, bool):
            raise EngineError(f"{where}: inhibit_sleep = {inhibit!r}; allowed: true, false")
        interval = _number(table.get("disk_check_interval_s", 60.0), f"{where}: disk_check_interval_s", 1.0, 86400.0)
        alarms = table.get("alarms", [])
        if not isinstance(alarms, list) or not all(isinstance(rule, dict) for rule in alarms):
            raise EngineError(f"{where}: alarms must be an array of tables ([[engine.alarms]])")
        from labctl.engine.alarms import make_rule

        for index, rule in enumerate(alarms):
            make_rule(rule, f"{where}.alarms[{index}]")  # refuse a bad rule now, before anything is touched
        return cls(resume_interrupted=policy, inhibit_sleep=inhibit, disk_check_interval_s=interval,
                   notify=_notify(table.get("notify"), f"{where}.notify"), alarms=list(alarms), source=source)


def check_keys(table: Any, allowed: set[str], where: str) -> None:
    """``table`` is a TOML table with no key outside ``allowed``."""
    if not isinstance(table, dict):
        raise EngineError(f"{where} must be a table")
    unknown = set(table) - allowed
    if unknown:
        raise EngineError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}; allowed: "
                          f"{', '.join(sorted(allowed))}")


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise EngineError(f"{name} = {value!r}; allowed: a number {low:g} … {high:g}")
    return float(value)


def _notify(table: Any, where: str) -> NotifyConfig | None:
    if table is None:
        return None
    check_keys(table, _NOTIFY_KEYS, where)
    shell = table.get("shell", False)
    if not isinstance(shell, bool):
        raise EngineError(f"{where}: shell = {shell!r}; allowed: true, false")
    command = table.get("command")
    if shell:
        if not isinstance(command, str) or not command.strip():
            raise EngineError(f"{where}: with shell = true, command must be one string, got {command!r}")
    elif (not isinstance(command, list) or not command
          or not all(isinstance(part, str) for part in command)):
        raise EngineError(f"{where}: command = {command!r}; allowed: a list of strings, the program first "
                          "(e.g. [\"/usr/local/bin/lab-alert\", \"{message}\"]), run without a shell")
    timeout = _number(table.get("timeout_s", 30.0), f"{where}: timeout_s", 0.1, 3600.0)
    return NotifyConfig(command=command, timeout_s=timeout, shell=shell)
