"""What the engine and its clients raise on purpose."""

from __future__ import annotations

from labctl.errors import LabctlError


class EngineError(LabctlError):
    """The engine refused a request (an unknown queue item, an edit of a running item, a bad value, ...)."""


class EngineUnavailable(EngineError):
    """No engine answers for the station (not started, stopped, or its state file is stale)."""


class InstrumentBusy(LabctlError):
    """Another process holds an instrument (or a simulated station) this process wants to drive."""
