"""The engine's wire protocol: JSON objects, one per line (UTF-8, ``\\n``-terminated), both ways.

A front end opens the engine's address (``tcp://127.0.0.1:PORT`` or ``unix:PATH``, from ``engine.json``) and
first sends ``{"id": 0, "op": "hello", "token": "...", "client": "labctl run"}``; the engine closes any
connection whose first message is not a hello with the right token. After that:

- requests ``{"id": N, "op": "...", ...arguments}``; each gets one reply ``{"id": N, "ok": true, "result":
  ...}`` or ``{"id": N, "ok": false, "error": "one line", "type": "ParameterError"}``;
- events ``{"event": "...", ...}``, sent after a ``watch`` request, interleaved with replies.

Numbers that JSON cannot carry (NaN, infinities) are sent as ``null``. docs/engine.md lists every request and
event; :data:`OPS` and :func:`encode_run_event` are the reference.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from labctl.runner.context import RecordedEvent
from labctl.runner.events import DataRows, LogLine, Progress, RunEvent, StatusChanged

PROTOCOL_VERSION = 1
#: Longest line either side accepts (a data event of 100 000 rows of a few columns fits).
MAX_LINE_BYTES = 64 * 2**20

#: Requests and their arguments (docs/engine.md describes each).
OPS: dict[str, tuple[str, ...]] = {
    "hello": ("token", "client"),
    "status": (),
    "submit": ("procedure", "parameters", "pairs", "out_dir", "file", "operator", "on_failure"),
    "queue_add": ("procedure", "parameters", "pairs", "out_dir", "file", "operator", "on_failure", "position",
                  "resume"),
    "queue_list": (),
    "queue_edit": ("uid", "parameters", "pairs", "on_failure", "operator"),
    "queue_move": ("uid", "position"),
    "queue_remove": ("uid",),
    "queue_start": (),
    "queue_stop": (),
    "queue_policy": ("on_failure",),
    "history": ("limit",),
    "pause": ("uid",),
    "resume": ("uid",),
    "abort": ("uid", "reason"),
    "watch": ("uid",),
    "shutdown": ("reason",),
    "identify": ("names",),
    "alarms": (),
    "alarms_set": ("rules",),
    "alarm_ack": ("ids", "by"),
}


def jsonable(value: Any) -> Any:
    """``value`` with numpy types as Python ones and NaN/infinities as None (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return column(value)
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def column(values: Any) -> list[float | None]:
    """A data column as a list of floats, None where not finite."""
    array = np.asarray(values, dtype=float).ravel()
    finite = np.isfinite(array)
    if finite.all():
        return list(array.tolist())
    return [x if ok else None for x, ok in zip(array.tolist(), finite.tolist(), strict=True)]


def dumps(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, allow_nan=False, separators=(",", ":")).encode("utf-8") + b"\n"


def loads(line: bytes) -> dict[str, Any]:
    message = json.loads(line.decode("utf-8"))
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message


def encode_run_event(item: str, event: RunEvent, *, dropped_rows: int = 0) -> dict[str, Any]:
    """One run event as a message (``item``: the queue item the run belongs to)."""
    if isinstance(event, StatusChanged):
        return {"event": "status", "item": item, "status": event.status, "reason": event.reason}
    if isinstance(event, Progress):
        return {"event": "progress", "item": item, "fraction": jsonable(event.fraction),
                "eta_s": jsonable(event.eta_s), "message": event.message}
    if isinstance(event, RecordedEvent):
        return {"event": "record", "item": item, "kind": event.kind,
                "message": event.message.removeprefix(f"{event.kind}: "), "data": jsonable(dict(event.data))}
    if isinstance(event, LogLine):
        return {"event": "log", "item": item, "level": event.level, "message": event.message}
    if isinstance(event, DataRows):
        return {"event": "data", "item": item, "block": event.block,
                "columns": {name: column(values) for name, values in event.columns.items()},
                "units": dict(event.units), "dropped_rows": dropped_rows}
    raise TypeError(f"not a run event: {event!r}")


def decode_run_event(message: Mapping[str, Any]) -> RunEvent | None:
    """The run event a message carries (None for engine events: queue, run_started, alarm, ...)."""
    kind = message.get("event")
    if kind == "status":
        return StatusChanged(str(message["status"]), str(message.get("reason", "")))
    if kind == "progress":
        fraction = message.get("fraction")
        return Progress(float(fraction) if fraction is not None else 0.0, message.get("eta_s"),
                        str(message.get("message", "")))
    if kind == "record":
        text = str(message.get("message", ""))
        return RecordedEvent("info", f"{message.get('kind', '')}: {text}", kind=str(message.get("kind", "")),
                             data=dict(message.get("data") or {}))
    if kind == "log":
        return LogLine(str(message.get("level", "info")), str(message.get("message", "")))
    if kind == "data":
        columns = {name: np.array([np.nan if v is None else v for v in values], dtype=float)
                   for name, values in dict(message.get("columns") or {}).items()}
        return DataRows(str(message["block"]), columns, dict(message.get("units") or {}))
    return None
