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
- Buffered dwells: :class:`BufferedDwell` serves a run whose reading instants and drive are fixed when it
  starts (one level held, the instrument's own timing) from ``World.readings_at`` in one pass instead of one
  world event and one device step per reading; :class:`ServesDwells` brings a mock's dwells up to the world's
  time before each message, so whatever the client asks meanwhile (a buffer count, an abort) sees exactly the
  readings taken by then.
- Reading buffers: :class:`ReadingBuffer` (a capacity, filled continuously or once) and :class:`Trace`
  (the SCPI-99 ``TRACe`` data store that collects while its feed control is NEXT).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from mock_instruments.scpi_errors import ScpiError

log = logging.getLogger(__name__)

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


def within_limit(voltage_V: float, current_A: float, function: str, limit: float) -> tuple[float, float, bool]:
    """A reading of a source that was not re-checked against its compliance while it ran (a buffered dwell):
    the measured quantity clamped to ``limit`` (the instrument reads its limit in compliance) and whether it
    was. ``function`` is what is sourced, "V" or "I"."""
    if function == "V" and abs(current_A) > limit:
        return voltage_V, math.copysign(limit, current_A), True
    if function == "I" and abs(voltage_V) > limit:
        return math.copysign(limit, voltage_V), current_A, True
    return voltage_V, current_A, False


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


# ------------------------------------------------------------------------------ buffered dwells
#: ``take(first_index, times_s, voltage_V, current_A)``: turn world readings into the model's readings.
TakeReadings = Callable[[int, np.ndarray, np.ndarray, np.ndarray], None]


class BufferedDwell:
    """A run of ``times_s.size`` readings of ``terminal`` at the instants the instrument's timing fixed when
    the run started, under a drive that stays the same throughout (one level held; docs/simulation.md §7).

    One world event at ``done_s`` (the end of the run, in ``events`` so an abort cancels it with the rest)
    serves every reading still due from :meth:`World.readings_at` in one pass and then calls ``finish(t)``;
    :meth:`catch_up` serves the readings due by the world's time earlier, when the client asks (a buffer count,
    an abort, any message: :class:`ServesDwells`). ``take`` turns the world's (voltage, current) into the
    model's readings (ranges, noise, compliance, storage) in order, as the per-reading path would.

    Simplifications (stated in each model's docstring): a compliance limit reached during the dwell clamps
    the readings at the limit (:func:`within_limit`) while the device is held at the sourced level until the
    model re-applies its source after the batch. A world snapshot (a checkpoint bringing every device up to the
    clock) serves the readings due first (:meth:`World.add_dwell_server`); should anything else move the device
    past instants not yet served, those readings are the device's values at the time it was moved to, and a
    warning is logged.
    """

    def __init__(self, world: Any, terminal: str, times_s: np.ndarray, take: TakeReadings, done_s: float,
                 finish: Callable[[float], None], events: SweepEvents) -> None:
        self.world, self.terminal = world, terminal
        self.times_s = np.asarray(times_s, dtype=float)
        self.taken = 0
        self.take, self.finish = take, finish
        events.at(done_s, self._done)

    def catch_up(self) -> None:
        """Serve the readings due by the world's time that are not served yet (under the world's lock: the
        instrument's own message and a world snapshot may both ask)."""
        with self.world.lock:
            self._catch_up()

    def _catch_up(self) -> None:
        due = int(np.searchsorted(self.times_s, self.world.time_s + 1e-12, side="right"))
        if due <= self.taken:
            return
        times = self.times_s[self.taken:due]
        routed = self.world.device_at(self.terminal)
        if routed is not None:
            device_s = self.world.device_time_s(routed[0])
            if times[0] < device_s - 1e-9:
                log.warning("%s: device %s was moved to %.6f s, past %d buffered reading(s) not yet served; "
                            "they read its state at that time", self.terminal, routed[0], device_s,
                            int(np.sum(times < device_s - 1e-9)))
                times = np.maximum(times, device_s)
        voltage, current = self.world.readings_at(self.terminal, times)
        first, self.taken = self.taken, due
        self.take(first, self.times_s[first:due], voltage, current)

    def _done(self, t_s: float) -> None:
        self.catch_up()
        self.finish(t_s)


class ServesDwells:
    """Mix-in for an SMU mock with :class:`BufferedDwell` runs: option ``buffered_dwells`` (default True;
    False serves every reading as its own world event, the per-reading path the buffered one is tested
    against), and before each message every active dwell catches up with the world's time."""

    serve_dwells = True

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        self.serve_dwells = bool(options.pop("buffered_dwells", True))
        super().__init__(world, name, **options)  # type: ignore[call-arg]
        world.add_dwell_server(self.serve_due_dwells)

    def serve_due_dwells(self) -> None:
        """Every running dwell caught up with the world's time."""
        for dwell in list(self.buffered_dwells()):
            dwell.catch_up()

    def buffered_dwells(self) -> Iterable[BufferedDwell]:
        """The dwells running now (the model's)."""
        return ()

    def handle(self, message: str) -> str | None:
        self.serve_due_dwells()
        return super().handle(message)  # type: ignore[misc]


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
