"""The trigger model of one Keithley 2600B channel (Series 2600B Reference Manual, 2600BS-901-01, section 3
"Triggering" / "Sweep operation", and the ``smuX.trigger.*`` entries of section 9): the sweep's source
values, what it measures into which buffers, and its run from ``smuX.trigger.initiate()`` to idle.

The run follows the manual's remote trigger model: the arm layer waits for ``arm.stimulus``, then the
channel generates ARMED_EVENT_ID; each point's source action waits for ``source.stimulus`` (for example a
timer's event), sources the next level, waits the source delay and generates SOURCE_COMPLETE_EVENT_ID; the
measure action waits for ``measure.stimulus`` and the measure delay, integrates (NPLC / line frequency ×
count) and generates MEASURE_COMPLETE_EVENT_ID; the end-pulse action waits for ``endpulse.stimulus``, goes
back to the idle level with SOURCE_IDLE, and generates PULSE_COMPLETE_EVENT_ID. After ``trigger.count``
points SWEEP_COMPLETE_EVENT_ID, and after ``arm.count`` sweeps the channel is idle (IDLE_EVENT_ID);
``endsweep.action`` SOURCE_HOLD keeps the last level. A stimulus of 0 means "go on at once". ``initiate()``
clears the channel's event detectors (an event that came before it does not count). 0.1 ms of firmware time
separates one point from the next (the per-point overhead of the 2602B datasheet's sweep rates). The source
delay follows the source action only ("additional delay (settling time) after an output step", 9-241): with
the source action disabled no delay is inserted. The events are those of :mod:`mock_instruments.tsp_trigger`.

A run that holds one level (source action disabled, or every list value the same) with every point started
at a known time (one arm, measure count 1, points back to back or started by a timer the channel's ARMED
event starts, with as many events as points and each point done before the next event) and no other trigger
object listening to what the run would emit is served as a
:class:`~mock_instruments.smu_channel.BufferedDwell`: the point times the events would give, the readings
from the world in one pass; the timer is not run (nothing else hears it). A source limit reached during it
clamps the readings at the limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mock_instruments.smu_channel import BufferedDwell, ReadingBuffer, SweepEvents, within_limit
from mock_instruments.tsp import LuaRuntimeError, Node, ParameterRangeError, Table, arg
from mock_instruments.tsp_trigger import Detector, EventBus, Timer

if TYPE_CHECKING:
    from mock_instruments.keithley2600 import MockKeithley2600

POINT_OVERHEAD_S = 1e-4
#: The events a channel generates, numbered from 100 (smua) / 200 (smub) by the mock.
EVENTS = ("ARMED", "SOURCE_COMPLETE", "MEASURE_COMPLETE", "PULSE_COMPLETE", "SWEEP_COMPLETE", "IDLE",
          "SWEEPING")
LAYERS = ("arm", "source", "measure", "endpulse")


@dataclass
class Sweep:
    """A running trigger model of one channel."""

    levels: list[float]
    voltage: bool
    total: int  # points in all; 0 = endless
    events: SweepEvents
    buffers: tuple[Any, Any] = (None, None)
    kind: str = "iv"
    index: int = 0
    dwell: BufferedDwell | None = None  # set when the run is served as a buffered dwell


class ChannelTrigger:
    """The trigger model part of :class:`mock_instruments.keithley2600_channel.Channel`."""

    inst: MockKeithley2600
    letter: str
    terminal: str
    v_ranges: tuple[float, ...]
    i_ranges: tuple[float, ...]
    state: Any
    held: float | None

    def __getitem__(self, key: str) -> float:
        raise NotImplementedError

    def apply(self, level: float | None = None) -> tuple[float, float]:
        raise NotImplementedError

    def read(self, level: float | None = None) -> tuple[float, float]:
        raise NotImplementedError

    def readings_of(self, voltage: float, current: float) -> tuple[float, float]:
        raise NotImplementedError

    def aperture_s(self) -> float:
        raise NotImplementedError

    def store(self, kind: str, i: float, v: float, buffers: Any, t_s: float, source: float | None = None
              ) -> tuple[float, ...]:
        raise NotImplementedError

    def init_trigger(self, bus: EventBus) -> None:
        self.bus = bus
        self.event_ids = {name: ("ab".index(self.letter) + 1) * 100 + k + 1 for k, name in enumerate(EVENTS)}
        self.detectors: dict[str, Detector] = {layer: bus.detector() for layer in LAYERS}
        self.sweep: Sweep | None = None

    def reset_trigger(self) -> None:
        self.abort()
        for detector in self.detectors.values():
            detector.clear()
            detector.stimulus = 0
        self.levels: list[float] = []
        self.levels_voltage = True
        self.measure_kind: tuple[str, tuple[Any, Any]] = ("iv", (None, None))

    # ----------------------------------------------------------------------------------- tsp tree
    def trigger_node(self, attrs: Callable[[str, str], dict[str, Any]]) -> Node:
        """``smuX.trigger``: attributes from ``attrs(prefix, names)``, stimuli, functions, event IDs."""
        smu = f"smu{self.letter}"

        def layer(name: str, attributes: str, members: dict[str, Any] | None = None) -> Node:
            node = Node(f"{smu}.trigger.{name}", attrs(f"trigger.{name}.", attributes) if attributes else {},
                        members)
            if name in self.detectors:
                node.attrs["stimulus"] = self._stimulus(name)
            return node

        source = layer("source", "action limitv limiti", {
            "listv": self._list(True), "listi": self._list(False), "linearv": self._linear(True, False),
            "lineari": self._linear(False, False), "logv": self._linear(True, True),
            "logi": self._linear(False, True)})
        measure = layer("measure", "action", {k: self._trigger_measure(k) for k in ("i", "v", "iv", "r", "p")})
        members: dict[str, Any] = {f"{name}_EVENT_ID": float(eid) for name, eid in self.event_ids.items()}
        members.update(source=source, measure=measure, initiate=lambda _a: self.initiate(),
                       arm=layer("arm", "count"), endpulse=layer("endpulse", "action"),
                       endsweep=layer("endsweep", "action"))
        return Node(f"{smu}.trigger", attrs("trigger.", "count"), members)

    def _stimulus(self, layer: str) -> tuple[Callable[[], Any], Callable[[Any], None]]:
        detector = self.detectors[layer]

        def set_(value: Any) -> None:
            if isinstance(value, bool) or not isinstance(value, float | int) or value < 0:
                raise LuaRuntimeError(f"bad argument to `{layer}.stimulus' (event ID expected)")
            detector.stimulus = int(value)

        return (lambda: float(detector.stimulus)), set_

    def _list(self, voltage: bool) -> Callable[[list[Any]], tuple[()]]:
        def set_list(args: list[Any]) -> tuple[()]:
            table = arg(args, 0, "listv" if voltage else "listi", Table)
            values = table.array()
            if not values or not all(isinstance(v, float) for v in values):
                raise LuaRuntimeError("bad argument #1 to `list' (table of numbers expected)")
            limit = 1.01 * (self.v_ranges if voltage else self.i_ranges)[-1]
            if any(abs(v) > limit for v in values):
                raise ParameterRangeError(True)
            self.levels, self.levels_voltage = [float(v) for v in values], voltage
            return ()
        return set_list

    def _linear(self, voltage: bool, log: bool) -> Callable[[list[Any]], tuple[()]]:
        def set_linear(args: list[Any]) -> tuple[()]:
            name = ("log" if log else "linear") + ("v" if voltage else "i")
            start, stop = arg(args, 0, name), arg(args, 1, name)
            points = int(arg(args, 2, name))
            if points < 2:
                raise ParameterRangeError(False)
            if log:
                asymptote = arg(args, 3, name, optional=True) or 0.0
                a, b = math.log10(abs(start - asymptote)), math.log10(abs(stop - asymptote))
                sign = math.copysign(1.0, start - asymptote)
                self.levels = [asymptote + sign * 10 ** (a + (b - a) * k / (points - 1))
                               for k in range(points)]
            else:
                self.levels = [start + (stop - start) * k / (points - 1) for k in range(points)]
            self.levels_voltage = voltage
            return ()
        return set_linear

    def _trigger_measure(self, kind: str) -> Callable[[list[Any]], tuple[()]]:
        def configure(args: list[Any]) -> tuple[()]:
            buffers = tuple(a if isinstance(a, ReadingBuffer) else None for a in args)
            needed = 2 if kind == "iv" else 1
            if len(buffers) != needed or None in buffers:
                raise LuaRuntimeError(f"bad argument to `trigger.measure.{kind}' (reading buffer expected)")
            self.measure_kind = (kind, (buffers[0], buffers[1] if len(buffers) > 1 else None))
            return ()
        return configure

    # -------------------------------------------------------------------------------------- the run
    def initiate(self) -> None:
        if self.sweep is not None:
            raise LuaRuntimeError("the trigger model is already running")
        total = int(self["trigger.count"] * self["trigger.arm.count"])
        kind, buffers = self.measure_kind
        for buffer in buffers:
            if buffer is not None and self["trigger.measure.action"]:
                buffer.start()
        for detector in self.detectors.values():
            detector.clear()
        self.sweep = Sweep(list(self.levels), self.levels_voltage, total, SweepEvents(self.inst.world),
                           buffers=buffers, kind=kind)
        self._emit("SWEEPING", self.inst.world.time_s)
        schedule = self._dwell_schedule() if self.inst.serve_dwells else None
        if schedule is None:
            self._wait("arm", self.inst.world.time_s, self._armed)
        else:
            self._start_dwell(*schedule)

    # ------------------------------------------------------------------------------ buffered dwell
    def _dwell_schedule(self) -> tuple[np.ndarray, float] | None:
        """When each reading of the run starting now is taken and when the run ends, if the run holds one level
        and its timing is known now (see the module docstring); None otherwise."""
        sweep = self.sweep
        assert sweep is not None
        sourcing = self["trigger.source.action"] == 1
        layers = self.detectors
        constant = not sourcing or (bool(sweep.levels) and len(set(sweep.levels)) == 1
                                    and (self["trigger.endpulse.action"] == 1 or sweep.levels[0] == self._idle()))
        if (not sweep.total or self["trigger.arm.count"] != 1 or self["measure.count"] != 1
                or not self["trigger.measure.action"] or self["source.output"] != 1 or not constant
                or layers["arm"].stimulus or layers["measure"].stimulus or layers["endpulse"].stimulus
                or None in sweep.buffers[:1]):
            return None
        source_delay = (self["source.delay"] if self["source.delay"] >= 0 else 1e-3) if sourcing else 0.0
        work = source_delay + max(self["measure.delay"], 0.0) + self.aperture_s()
        t0 = self.inst.world.time_s
        stimulus = layers["source"].stimulus
        if not stimulus:
            starts = t0 + np.arange(sweep.total) * (work + POINT_OVERHEAD_S)
        else:
            timer = self._timer_of(stimulus)
            if timer is None:
                return None
            ticks = timer.ticks_s(t0)
            if ticks.size != sweep.total:
                return None
            # a point starts at its timer event, or when the previous one is done if that is later (the
            # event waited, latched); an event that comes while another waits latched is lost (overrun),
            # which this path does not follow
            starts = ticks.copy()
            for k in range(1, starts.size):
                starts[k] = max(ticks[k], starts[k - 1] + work + POINT_OVERHEAD_S)
                if k + 1 < starts.size and starts[k] >= ticks[k + 1]:
                    return None
        readings = starts + work
        return readings, float(readings[-1] + POINT_OVERHEAD_S)

    def _timer_of(self, stimulus: int) -> Timer | None:
        """The timer whose event ``stimulus`` is, if this channel's ARMED event starts it and nothing but this
        channel's source layer listens to it, and nothing listens to the run's point events."""
        timer = next((t for t in self.inst.trigger.timers.values() if t.event_id == stimulus), None)
        if timer is None or timer.detector.stimulus != self.event_ids["ARMED"]:
            return None
        point_events = {self.event_ids[name] for name in ("SOURCE_COMPLETE", "MEASURE_COMPLETE",
                                                          "PULSE_COMPLETE", "SWEEP_COMPLETE")}
        mine = {id(self.detectors["source"]), id(timer.detector)}
        for detector in self.bus.detectors:
            if id(detector) in mine:
                continue
            if detector.stimulus in point_events | {stimulus, self.event_ids["ARMED"]}:
                return None
        return timer

    def _idle(self) -> float:
        return self["source.levelv"] if self["source.func"] == 1 else self["source.leveli"]

    def _start_dwell(self, times_s: np.ndarray, done_s: float) -> None:
        sweep = self.sweep
        assert sweep is not None
        self._source_point()
        sweep.dwell = BufferedDwell(self.inst.world, self.terminal, times_s, self._take_dwell, done_s,
                                    lambda _t: self._finish(), sweep.events)

    def _take_dwell(self, _first: int, times_s: np.ndarray, voltage_V: np.ndarray, current_A: np.ndarray
                    ) -> None:
        sweep = self.sweep
        assert sweep is not None
        level = self._level()
        voltage_source = self["source.func"] == 1
        limit = self["source.limiti"] if voltage_source else self["source.limitv"]
        limit = self["trigger.source.limiti" if voltage_source else "trigger.source.limitv"] or limit
        reached = False
        for t_s, voltage, current in zip(times_s, voltage_V, current_A, strict=True):
            voltage, current, self.compliance = within_limit(float(voltage), float(current),
                                                             "V" if voltage_source else "I", limit)
            reached |= self.compliance
            i, v = self.readings_of(voltage, current)
            self.store(sweep.kind, i, v, list(sweep.buffers), float(t_s), level)
            sweep.index += 1
        if reached:  # the world now drives the device at its limit, as the point-by-point path would
            self.apply(level)

    def _emit(self, name: str, t_s: float) -> None:
        self.bus.emit(self.event_ids[name], t_s)

    def _wait(self, layer: str, t_s: float, then: Callable[[float], None]) -> None:
        sweep = self.sweep
        if sweep is not None:
            self.detectors[layer].wait(t_s, lambda t: self._go_on(sweep, then, t))

    def _go_on(self, sweep: Sweep, then: Callable[[float], None], t_s: float) -> None:
        if self.sweep is sweep:  # an event for an aborted run is ignored
            then(t_s)

    def _after(self, t_s: float, delay_s: float, then: Callable[[float], None]) -> None:
        """``then`` after ``delay_s`` of instrument time (at once for none)."""
        sweep = self.sweep
        if sweep is None:
            return
        if delay_s <= 0:
            then(t_s)
        else:
            sweep.events.at(t_s + delay_s, lambda t: self._go_on(sweep, then, t))

    def _armed(self, t_s: float) -> None:
        self._emit("ARMED", t_s)
        self._wait("source", t_s, self._source)

    def _level(self) -> float | None:
        sweep = self.sweep
        if sweep is None or not self["trigger.source.action"] or not sweep.levels:
            return None
        return sweep.levels[sweep.index % len(sweep.levels)]

    def _source_point(self) -> float | None:
        """The source action of the present point: its list level (and function) applied, or the idle level
        with the action disabled; returns the list level (None without the action)."""
        sweep = self.sweep
        assert sweep is not None
        level = self._level()
        if level is not None:
            self.state.values["source.func"] = 1.0 if sweep.voltage else 0.0
        self.apply(level)
        return level

    def _source(self, t_s: float) -> None:
        level = self._source_point()
        delay = 0.0  # the source delay follows an output step: none without the source action
        if level is not None:
            delay = self["source.delay"] if self["source.delay"] >= 0 else 1e-3  # DELAY_AUTO: settling by range
        self._after(t_s, delay, self._source_complete)

    def _source_complete(self, t_s: float) -> None:
        self._emit("SOURCE_COMPLETE", t_s)
        if self["trigger.measure.action"] == 1:
            self._wait("measure", t_s, lambda t: self._after(
                t, max(self["measure.delay"], 0.0) + self.aperture_s() * self["measure.count"], self._measured))
        else:
            self._wait("endpulse", t_s, self._end_pulse)

    def _measured(self, t_s: float) -> None:
        sweep = self.sweep
        assert sweep is not None
        level = self._level()
        i, v = self.read(level)
        self.store(sweep.kind, i, v, list(sweep.buffers), t_s, level)
        self._emit("MEASURE_COMPLETE", t_s)
        self._wait("endpulse", t_s, self._end_pulse)

    def _end_pulse(self, t_s: float) -> None:
        sweep = self.sweep
        assert sweep is not None
        if self["trigger.endpulse.action"] == 0:  # SOURCE_IDLE
            self.apply()
        self._emit("PULSE_COMPLETE", t_s)
        sweep.index += 1
        per_sweep = int(self["trigger.count"])
        if per_sweep and sweep.index % per_sweep == 0:
            self._emit("SWEEP_COMPLETE", t_s)
        if sweep.total and sweep.index >= sweep.total:
            self._after(t_s, POINT_OVERHEAD_S, lambda _t: self._finish())
        elif per_sweep and sweep.index % per_sweep == 0:
            self._after(t_s, POINT_OVERHEAD_S, lambda t: self._wait("arm", t, self._armed))
        else:
            self._after(t_s, POINT_OVERHEAD_S, lambda t: self._wait("source", t, self._source))

    def _finish(self) -> None:
        sweep, self.sweep = self.sweep, None
        hold = self["trigger.endsweep.action"] == 1 and self["trigger.source.action"] == 1
        if sweep is not None and sweep.levels and hold:  # SOURCE_HOLD keeps the last level on
            self.held = sweep.levels[(sweep.index - 1) % len(sweep.levels)]
        self.apply()
        self._emit("IDLE", self.inst.world.time_s)

    def abort(self) -> None:
        if self.sweep is not None:
            self.sweep.events.cancel()
        self.sweep = None
        for detector in getattr(self, "detectors", {}).values():
            detector.clear()

    def next_s(self) -> float | None:
        """When the running finite sweep's next own event is due (None if none, or idle)."""
        sweep = self.sweep
        return sweep.events.next_s() if sweep is not None and sweep.total else None
