"""The records the simulated world keeps: where a device sits and how far its time has gone, a multiplexer,
a terminal's drive, a scheduled event, and a stage's temperature history (world.py uses them)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

AMBIENT_K = 298.15
EventCallback = Callable[[float], None]


@dataclass
class DeviceSlot:
    """A device under test and where it sits: on a temperature stage (its name, ``"stage"`` by default)
    or on the ``"bench"`` at a fixed temperature. ``time_s`` is the clock time its state is exact at."""

    name: str
    cell: Any
    location: str = "bench"
    light: str | None = "light"
    temperature_K: float = AMBIENT_K  # bench (hot-plate) temperature; the stage sets its own
    time_s: float = 0.0
    #: A resistive load (Ω·cm²) across the device whenever no instrument drives it (a multiplexed pixel's load
    #: board); None: open circuit.
    idle_load_ohm_cm2: float | None = None


@dataclass
class StageHistory:
    """The sample temperature of one stage, piecewise constant (the mean over each exact step), from the
    oldest device time on the stage to the world's time."""

    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    temperatures_K: list[float] = field(default_factory=list)

    def record(self, t0: float, t1: float, temperature_K: float) -> None:
        if self.ends and self.ends[-1] == t0 and self.temperatures_K[-1] == temperature_K:
            self.ends[-1] = t1  # a settled stage: one piece however long
            return
        self.starts.append(t0)
        self.ends.append(t1)
        self.temperatures_K.append(temperature_K)

    def piece(self, t_s: float) -> tuple[float, float] | None:
        """(temperature, end of its piece) at ``t_s``, or None if the history does not reach ``t_s``."""
        i = bisect.bisect_right(self.starts, t_s) - 1
        if i < 0 or t_s >= self.ends[i]:
            return None
        return self.temperatures_K[i], self.ends[i]

    def forget_before(self, t_s: float) -> None:
        i = bisect.bisect_right(self.ends, t_s)
        if i:
            del self.starts[:i], self.ends[:i], self.temperatures_K[:i]

    def clear(self) -> None:
        self.starts.clear()
        self.ends.clear()
        self.temperatures_K.clear()


@dataclass
class Switch:
    """A multiplexer. Several instruments may share it (an SMU and an LCR meter on one pixel matrix):
    every terminal in ``common_terminals`` reaches the selected channel's device."""

    name: str
    common_terminal: str
    channels: dict[Hashable, str]
    selected: Hashable | None = None
    also_terminals: tuple[str, ...] = ()

    @property
    def common_terminals(self) -> tuple[str, ...]:
        return (self.common_terminal, *self.also_terminals)


@dataclass
class Drive:
    """What one terminal applies: ``"open"``, ``"voltage"`` (V) or ``"current"`` (A, out of HI)."""

    kind: str = "open"
    value: float = 0.0
    seq: int = 0


@dataclass(order=True)
class Event:
    time_s: float
    seq: int
    callback: EventCallback = field(compare=False)
    cancelled: bool = field(default=False, compare=False)
