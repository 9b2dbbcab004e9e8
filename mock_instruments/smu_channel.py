"""What every simulated source-measure unit (Keithley 2400, 2450, 2600B; Keysight B2900) does alike with one
channel, whatever its command language.

- Drive: :func:`source_into_world` wires the channel's terminal to the world as a voltage or current source
  with its compliance limit; a limit that is reached turns the source into the other kind (the reading sits
  at the limit, the device sees the voltage that carries it). Off is an open circuit.
- Ranges and noise: :func:`fit_range` picks the range a programmed value needs (-222 above the top range's
  105 %); :func:`autoranged_reading` picks the range a measured value falls in and adds seeded noise scaling
  with the range and 1/sqrt(NPLC) (:func:`noisy`; overflow above 105 % of the range).
- Time: :class:`SweepEvents` holds the world events a running sweep or trigger model has scheduled (when the
  next is due, for ``*OPC?``/``waitcomplete()``; cancel them all on abort).
- Reading buffers: :class:`ReadingBuffer` (a capacity, filled continuously or once) and :class:`Trace`
  (the SCPI-99 ``TRACe`` data store that collects while its feed control is NEXT).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from mock_instruments.scpi_errors import ScpiError

OVERFLOW = 9.9e37  # an overflowed reading (SCPI +-9.9E37)
NAN = 9.91e37  # a value that was not measured (SCPI NaN, 9.91E37)

R = TypeVar("R")


# ------------------------------------------------------------------------------------------ drive
def source_into_world(world: Any, terminal: str, function: str, level: float, limit: float, on: bool
                      ) -> tuple[float, float, bool]:
    """Drive ``terminal`` with a V (``function`` "V") or I source and its compliance; returns (device
    voltage, SMU current out of HI, in compliance). Off is an open circuit (the device floats to Voc)."""
    if not on:
        world.apply_voltage(terminal, None)
        voltage = world.voltage_V(terminal)
        return (0.0 if voltage is None else voltage), 0.0, False
    if function == "V":
        current = world.current_at_voltage_A(terminal, level)
        if abs(current) > limit:
            current = math.copysign(limit, current)
            voltage = world.voltage_at_current_V(terminal, current)
            world.apply_voltage(terminal, voltage)
            return voltage, current, True
        world.apply_voltage(terminal, level)
        return level, current, False
    voltage = world.voltage_at_current_V(terminal, level)
    if voltage is None or abs(voltage) > limit:
        voltage = math.copysign(limit, level if voltage is None else voltage)
        world.apply_voltage(terminal, voltage)
        return voltage, world.current_at_voltage_A(terminal, voltage), True
    world.apply_current(terminal, level)
    return voltage, level, False


# --------------------------------------------------------------------------------- ranges, noise
def fit_range(value: float, ranges: tuple[float, ...]) -> float:
    """The smallest range holding ``value`` (-222 above the top range's 105 %)."""
    for r in ranges:
        if abs(value) <= 1.05 * r:
            return r
    raise ScpiError(-222, f"{value:g} above the {ranges[-1]:g} range")


def noisy(value: float, range_: float, nplc: float, rng: np.random.Generator, kind: str) -> float:
    """A reading with seeded noise scaling with the range and 1/sqrt(NPLC); overflow above 105 %."""
    value += (1e-5 if kind == "I" else 5e-6) * range_ / math.sqrt(nplc) * float(rng.standard_normal())
    return math.copysign(OVERFLOW, value) if abs(value) > 1.05 * range_ else value


def autoranged_reading(value: float, kind: str, ranges: tuple[float, ...], range_: float, autorange: bool,
                       nplc: float, rng: np.random.Generator, above_all: float | None = None
                       ) -> tuple[float, float]:
    """(reading, range used) of ``value`` (``kind`` "V" or "I"): with ``autorange`` the smallest range holding
    it (``above_all`` when none does, by default the top range), then :func:`noisy` on that range."""
    if autorange:
        fallback = ranges[-1] if above_all is None else above_all
        range_ = next((r for r in ranges if abs(value) <= r), fallback)
    return noisy(value, range_, nplc, rng, kind), range_


# ------------------------------------------------------------------------------------------- time
class SweepEvents:
    """The world events one running operation (a sweep, a trigger model) has scheduled and not yet seen."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self._keys = itertools.count()
        self._due: dict[int, tuple[Any, float]] = {}  # key -> (world event, time)

    def at(self, t_s: float, callback: Callable[[float], None]) -> None:
        """Call ``callback(t_s)`` when the world reaches ``t_s``."""
        key = next(self._keys)
        event = self.world.schedule(t_s, lambda t: self._fire(key, callback, t))
        self._due[key] = (event, t_s)

    def _fire(self, key: int, callback: Callable[[float], None], t_s: float) -> None:
        if self._due.pop(key, None) is not None:
            callback(t_s)

    @property
    def idle(self) -> bool:
        """Nothing is scheduled (a run waiting for a trigger, or done)."""
        return not self._due

    def next_s(self) -> float | None:
        """When the earliest scheduled event is due; None if none is."""
        return min(t for _, t in self._due.values()) if self._due else None

    def cancel(self) -> None:
        """Cancel every scheduled event."""
        for event, _ in self._due.values():
            self.world.cancel(event)
        self._due.clear()


# -------------------------------------------------------------------------------- reading buffers
class ReadingBuffer(Generic[R]):
    """``capacity`` readings, oldest first; when full, fill ``"CONTinuous"`` drops the oldest for the new one,
    ``"ONCE"`` keeps what it holds."""

    def __init__(self, capacity: int, fill: str = "CONTinuous") -> None:
        self.fill = fill
        self.readings: deque[R] = deque(maxlen=capacity)

    @property
    def capacity(self) -> int:
        return self.readings.maxlen or 0

    def add(self, reading: R) -> None:
        if self.fill == "ONCE" and len(self.readings) == self.readings.maxlen:
            return
        self.readings.append(reading)


@dataclass
class Trace(Generic[R]):
    """The SCPI-99 ``TRACe`` data store: while the feed control is NEXT each reading is stored, and once it
    holds ``points`` readings the control returns to NEVer."""

    points: int
    control: str = "NEVer"
    readings: list[R] = field(default_factory=list)

    @property
    def full(self) -> bool:
        return len(self.readings) >= self.points

    def store(self, reading: R) -> bool:
        """Store ``reading`` if the feed control is NEXT (then it may fill the trace); whether it was."""
        if self.control != "NEXT":
            return False
        self.readings.append(reading)
        if self.full:
            self.control = "NEVer"
        return True
