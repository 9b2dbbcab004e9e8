"""What a running procedure tells its front ends (CLI progress bar, GUI plots, scripts)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Progress:
    """``fraction`` of the whole run done (0–1), the estimated real seconds left, and what is going on."""

    fraction: float
    eta_s: float | None
    message: str = ""


@dataclass(frozen=True)
class DataRows:
    """Rows just appended to a block: column name → 1-D array (one element for a single row). Subscribers
    always get arrays; inside the engine a single row may travel as plain numbers until it is delivered."""

    block: str
    columns: Mapping[str, np.ndarray] | Mapping[str, float]
    units: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusChanged:
    """``status`` is one of: validating, connecting, running, paused, shutting down, completed,
    aborted, failed, interrupted."""

    status: str
    reason: str = ""


@dataclass(frozen=True)
class LogLine:
    level: str
    message: str


RunEvent = Progress | DataRows | StatusChanged | LogLine
Subscriber = Callable[[RunEvent], Any]


def notify(subscribers: Iterable[Subscriber], event: RunEvent) -> None:
    """Hand ``event`` to every subscriber; a broken front end must never stop a measurement."""
    for subscriber in list(subscribers):
        try:
            subscriber(event)
        except Exception:
            logging.getLogger("labctl.run").exception("a run subscriber failed on %r", type(event).__name__)
