"""Small text formats shared by the panels: durations, local times, parameter summaries, state colours."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

#: Colours of run and queue states (background tints readable with black text).
STATE_COLOURS = {
    "completed": "#c8e6c9", "running": "#bbdefb", "paused": "#fff3c4", "connecting": "#bbdefb",
    "validating": "#bbdefb", "shutting down": "#bbdefb", "starting": "#bbdefb", "queued": "#eeeeee",
    "aborted": "#ffe0b2", "interrupted": "#ffe0b2", "failed": "#ffcdd2",
}


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min 05 s``, ``3 h 20 min``, ``2 d 4 h``; an em dash when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def local_time(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


@cache
def _defaults(procedure: str) -> dict[str, Any]:
    from labctl.errors import LabctlError
    from labctl.runner.registry import procedure_class

    try:
        schema = procedure_class(procedure).json_schema()
    except LabctlError:
        return {}
    return {key: prop.get("default") for key, prop in schema.get("properties", {}).items()}


def changed_parameters(procedure: str, parameters: dict[str, Any]) -> str:
    """The values that differ from the procedure's defaults, as ``key=value`` (what makes this run this run)."""
    from labctl.gui.schema_fields import format_value

    defaults = _defaults(procedure)
    parts = [f"{key}={format_value(value)}" for key, value in parameters.items()
             if key not in defaults or value != defaults[key]]
    return "  ".join(parts)
