"""Trigger events of a TSP instrument (Series 2600B Reference Manual, 2600BS-901-01, section 3 "Triggering"):
event IDs that objects generate, event detectors that wait on a ``stimulus`` (an event ID; 0 = none), the
command-interface trigger (``*TRG``, ``trigger.EVENT_ID``) and the eight timers ``trigger.timer[N]``.

A timer (3-43 "Timers") is triggered by its ``stimulus`` event; with ``passthrough`` it generates its event
at once, and then one more each time a delay expires, ``count`` delays in all (0 = without end), the delays
taken from ``delaylist`` in turn. ``reset()`` puts every attribute back to its default (count 1, delay 10 µs,
pass-through off, no stimulus) and stops a running timer. Events are delivered the moment they happen
(world time), to every detector whose stimulus is that event; a detector that is not waiting remembers one
event (the next wait is satisfied at once), and a second one while it remembers is an overrun.

Event IDs are numbers the mock assigns (the manual names them only by attribute: ``trigger.EVENT_ID``,
``trigger.timer[N].EVENT_ID``, ``smuX.trigger.ARMED_EVENT_ID`` ...); clients use the attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mock_instruments.smu_channel import SweepEvents
from mock_instruments.tsp import LuaRuntimeError, Node, Table, TspObject, arg, checked

#: ``trigger.EVENT_ID``: the command-interface trigger (*TRG, GET).
COMMAND_EVENT_ID = 1
TIMER_EVENT_BASE = 10  # trigger.timer[N].EVENT_ID = 10 + N


class Detector:
    """An event detector: ``stimulus`` (an event ID, 0 = none); ``on_event`` is called when the detector
    is armed (``arm(callback)``) and its event comes, else the event is latched."""

    def __init__(self) -> None:
        self.stimulus = 0
        self.latched = False
        self.overrun = False
        self._waiting: Callable[[float], None] | None = None

    def clear(self) -> None:
        self.latched = self.overrun = False
        self._waiting = None

    def wait(self, t_s: float, then: Callable[[float], None]) -> None:
        """Continue with ``then(t)`` when the stimulus event comes (at once if it came already or there is
        no stimulus)."""
        if not self.stimulus:
            then(t_s)
        elif self.latched:
            self.latched = False
            then(t_s)
        else:
            self._waiting = then

    def deliver(self, event_id: int, t_s: float) -> None:
        if not self.stimulus or event_id != self.stimulus:
            return
        if self._waiting is not None:
            then, self._waiting = self._waiting, None
            then(t_s)
        elif self.latched:
            self.overrun = True
        else:
            self.latched = True


class EventBus:
    """Every detector of the instrument; ``emit`` delivers an event to those whose stimulus it is."""

    def __init__(self) -> None:
        self.detectors: list[Detector] = []

    def detector(self) -> Detector:
        detector = Detector()
        self.detectors.append(detector)
        return detector

    def emit(self, event_id: int, t_s: float) -> None:
        for detector in list(self.detectors):
            detector.deliver(event_id, t_s)


class Timer(TspObject):
    """``trigger.timer[N]``."""

    def __init__(self, number: int, bus: EventBus, world: Any) -> None:
        self.tsp_name = f"trigger.timer[{number}]"
        self.event_id = TIMER_EVENT_BASE + number
        self.bus, self.world = bus, world
        self.detector = bus.detector()
        self.events = SweepEvents(world)
        self.reset()

    def reset(self) -> None:
        self.events.cancel()
        self.detector.clear()
        self.detector.stimulus = 0
        self.count, self.delays, self.passthrough = 1, [10e-6], False
        self._arm()

    def _arm(self) -> None:
        if self.detector.stimulus:
            self.detector.wait(self.world.time_s, self._triggered)

    def _triggered(self, t_s: float) -> None:
        if self.passthrough:
            self.bus.emit(self.event_id, t_s)
        self._next(t_s, 0)
        self._arm()  # ready for the next stimulus

    def _next(self, t_s: float, done: int) -> None:
        if self.count and done >= self.count:
            return
        due = t_s + self.delays[done % len(self.delays)]

        def expire(t: float) -> None:
            self.bus.emit(self.event_id, t)
            self._next(t, done + 1)

        self.events.at(due, expire)

    def next_s(self) -> float | None:
        return self.events.next_s()

    def ticks_s(self, t_s: float) -> np.ndarray:
        """The times of every event the timer gives if its stimulus comes at ``t_s`` (one at once with
        pass-through, then one as each of ``count`` delays expires); empty for an endless timer."""
        if not self.count:
            return np.empty(0)
        delays = np.array([self.delays[k % len(self.delays)] for k in range(self.count)])
        ticks = t_s + np.cumsum(delays)
        return np.concatenate(([t_s], ticks)) if self.passthrough else ticks

    def tsp_get(self, key: str) -> Any:
        values = {"count": float(self.count), "delay": self.delays[0], "passthrough": self.passthrough,
                  "stimulus": float(self.detector.stimulus), "EVENT_ID": float(self.event_id),
                  "overrun": self.detector.overrun, "delaylist": Table(dict(enumerate(self.delays, 1)))}
        if key in values:
            return values[key]
        methods: dict[str, Callable[[list[Any]], Any]] = {
            "reset": lambda _a: self.reset(), "clear": lambda _a: self.detector.clear(), "wait": self._wait}
        return methods[key]

    def tsp_set(self, key: str, value: Any) -> None:
        if key == "count":
            self.count = int(_number(value, 0, 1_048_575, key))
        elif key == "delay":
            self.delays = [_number(value, 0.5e-6, 1e5, key)]
        elif key == "delaylist":
            if not isinstance(value, Table) or not value.array():
                raise LuaRuntimeError("bad argument to `delaylist' (table of delays expected)")
            self.delays = [_number(v, 0.5e-6, 1e5, key) for v in value.array()]
        elif key == "passthrough":
            if not isinstance(value, bool):
                raise LuaRuntimeError("bad argument to `passthrough' (boolean expected)")
            self.passthrough = value
        elif key == "stimulus":
            self.detector.stimulus = int(_number(value, 0, 1e9, key))
            self.detector.clear()
            self._arm()
        else:
            raise LuaRuntimeError(f"attempt to set read-only attribute `{key}' of {self.tsp_name}")

    def _wait(self, args: list[Any]) -> tuple[bool]:
        """``trigger.timer[N].wait(timeout)``: whether the timer's own event detector saw an event."""
        timeout = arg(args, 0, "wait")
        self.world.clock.sleep(timeout)
        self.world.sync()
        seen, self.detector.latched = self.detector.latched, False
        return (seen,)


def _number(value: Any, low: float, high: float, name: str) -> float:
    return checked(value, low, high, name)


class TriggerSystem:
    """The ``trigger`` global: the command-interface trigger and eight timers on one event bus."""

    def __init__(self, world: Any) -> None:
        self.bus = EventBus()
        self.world = world
        self.command_detector = self.bus.detector()  # what trigger.wait() sees
        self.command_detector.stimulus = COMMAND_EVENT_ID
        self.timers = {n: Timer(n, self.bus, world) for n in range(1, 9)}

    def reset(self) -> None:
        for timer in self.timers.values():
            timer.reset()
        self.command_detector.clear()

    def fire_command_trigger(self) -> None:
        """``*TRG``: the command-interface trigger event."""
        self.bus.emit(COMMAND_EVENT_ID, self.world.time_s)

    def next_s(self) -> float | None:
        times = [t for timer in self.timers.values() if (t := timer.next_s()) is not None]
        return min(times) if times else None

    def node(self) -> Node:
        timers = Table(dict(self.timers.items()))
        return Node("trigger", {}, {"EVENT_ID": float(COMMAND_EVENT_ID), "timer": timers,
                                    "clear": lambda _a: self.command_detector.clear(), "wait": self._wait})

    def _wait(self, args: list[Any]) -> tuple[bool]:
        """``trigger.wait(timeout)``: whether a command-interface trigger came (within the timeout)."""
        if not self.command_detector.latched:
            self.world.clock.sleep(arg(args, 0, "trigger.wait"))
            self.world.sync()
        seen, self.command_detector.latched = self.command_detector.latched, False
        return (seen,)
