"""What the Keithley 2450 does in time (2450 Reference Manual, 2450-901-01): one reading of the world through
its terminal (source drive and compliance, sense range, noise) and the loaded trigger model (a sweep or
SimpleLoop) run point by point as world events. The command set is :mod:`mock_instruments.keithley2450`.

A sweep runs through a source configuration list: each point (:class:`SourcePoint`) holds the source level,
source delay, auto-delay state and source readback that were active when the list was made (3-38, and
"Where saved: Source configuration list" at 6-66, 6-67, 6-77), and recalling it makes them the active
settings. A point takes its source delay (auto delay: :func:`auto_delay_s` of the present current range) +
the sweep's delay block, which is *added* to the source delay (6-85), + the integration (NPLC / line
frequency), once more with source readback on (the source is measured before every reading, 6-77; the
manual gives no figure, so a second integration is charged), + 0.2 ms of trigger-model overhead. The world
advances the device between points, so a timed sweep's scan rate and its hysteresis come from the
instrument's timing. Simple Loop (``:TRIGger:LOAD "SimpleLoop"``; 3-104 "Predefined trigger models": it "makes
a specified number of readings", while Duration Loop "turns the output on") has no source block: a constant
delay and a measurement, ``count`` times, with the source left as it is (no recall, no source delay, the
output not switched on). ``*WAI``/``*OPC?`` do not wait for
an endless trigger model (count 0).

A finite run that holds one level with timing known at its start (SimpleLoop, or a sweep whose points are
all the same with no range-dependent auto delay) and no abort on the source limit is served as a
:class:`~mock_instruments.smu_channel.BufferedDwell`: the same point times, the readings from the world in
one pass; a source limit reached during it clamps the readings at the limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mock_instruments.scpi import ScpiError, ScpiInstrument, scpi
from mock_instruments.smu_channel import (
    BufferedDwell,
    ReadingBuffer,
    ServesDwells,
    SweepEvents,
    autoranged_reading,
    source_into_world,
    within_limit,
)

VOLTAGE_RANGES_V = (0.02, 0.2, 2.0, 20.0, 200.0)
CURRENT_RANGES_A = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
POINT_OVERHEAD_S = 0.2e-3  # trigger-model block overhead per sweep point


def auto_delay_s(current_range_A: float) -> float:
    """Source auto delay by current range: 50 ms on the 10 nA and 100 nA ranges, 3 ms on 1 µA, 1 ms above."""
    return 0.05 if current_range_A <= 1e-7 else 3e-3 if current_range_A <= 1e-6 else 1e-3


@dataclass(frozen=True)
class SourcePoint:
    """One point of a source configuration list: the source settings it recalls."""

    level: float
    delay_s: float
    auto_delay: bool
    readback: bool


@dataclass
class Reading:
    time_s: float
    source: float
    value: float
    sense: str
    source_function: str
    source_status: int


@dataclass
class TriggerModel:
    """A loaded sweep / loop: configuration-list points in order (one pass; none for a loop without a source
    block), passes (0 = until :ABORt), and the delay block each point adds to its source delay."""

    function: str
    points: list[SourcePoint]
    count: int
    delay_s: float
    fail_abort: bool
    buffer: str
    events: SweepEvents
    index: int = 0
    running: bool = False
    dwell: BufferedDwell | None = None  # set while the run is served as a buffered dwell

    @property
    def total(self) -> int:
        """Points in all (0: until aborted)."""
        return max(len(self.points), 1) * self.count


class Keithley2450Trigger(ServesDwells, ScpiInstrument):
    """Readings and trigger-model runs of :class:`mock_instruments.keithley2450.MockKeithley2450`."""

    # Settings and state the model declares (see keithley2450.py).
    source_function: str
    source_voltage_V: float
    source_current_A: float
    current_limit_A: float
    voltage_limit_V: float
    output: bool
    sense_function: str
    line_frequency_Hz: float
    ranges: dict[str, float]
    autorange: dict[str, bool]
    nplc: dict[str, float]
    readback: dict[str, bool]
    delays: dict[str, float]
    auto_delay: dict[str, bool]
    buffers: dict[str, ReadingBuffer[Reading]]

    def reset(self) -> None:
        super().reset()
        model = getattr(self, "trigger_model", None)
        if model is not None:
            model.events.cancel()
        self.trigger_model: TriggerModel | None = None
        self.in_compliance = False

    def _idle(self, _value: Any = None) -> None:
        if self.trigger_model is not None and self.trigger_model.running:
            raise ScpiError(-221, "trigger model running")

    # ---------------------------------------------------------------------------- measurement
    def _apply_source(self) -> tuple[float, float]:
        """Drive the world from the source settings; (device voltage, SMU current), compliance included.
        Off is an open circuit, read as 0 V."""
        if not self.output:
            self.in_compliance = False
            self.world.apply_voltage(self.name, None)
            return 0.0, 0.0
        v_source = self.source_function == "VOLTage"
        voltage, current, self.in_compliance = source_into_world(
            self.world, self.name, "V" if v_source else "I",
            self.source_voltage_V if v_source else self.source_current_A,
            self.current_limit_A if v_source else self.voltage_limit_V, True)
        return voltage, current

    def aperture_s(self) -> float:
        return self.nplc[self.sense_function.upper()] / self.line_frequency_Hz

    def reading_s(self) -> float:
        """The integration of one reading, twice with source readback on (the source is measured first)."""
        return self.aperture_s() * (2 if self.readback[self.source_function.upper()] else 1)

    def source_point(self, function: str, level: float) -> SourcePoint:
        """A configuration-list point at ``level`` holding the active source settings of ``function``."""
        key = function.upper()
        return SourcePoint(level, self.delays[key], self.auto_delay[key], self.readback[key])

    def _measure(self, t_s: float) -> Reading:
        """One reading of the world as it is now (the caller charged the time)."""
        voltage, current = self._apply_source()
        return self._reading(t_s, voltage, current)

    def _reading(self, t_s: float, voltage: float, current: float) -> Reading:
        """The reading at ``t_s`` of a device found at (voltage, current): function, range, noise, source
        value (compliance as ``self.in_compliance``)."""
        sense = self.sense_function
        if sense == "RESistance":  # measured V over measured I, with the current reading's noise
            current, self.ranges["MI"] = autoranged_reading(current, "I", CURRENT_RANGES_A, self.ranges["MI"],
                                                            self.autorange["MI"], self.nplc["RESISTANCE"], self.rng)
            value = voltage / current if current else 9.9e37
            return Reading(t_s, voltage if self.source_function == "VOLTage" else current, value, sense,
                           self.source_function, int(self.in_compliance))
        key, kind = ("MI", "I") if sense == "CURRent" else ("MV", "V")
        value, self.ranges[key] = autoranged_reading(
            current if kind == "I" else voltage, kind, CURRENT_RANGES_A if kind == "I" else VOLTAGE_RANGES_V,
            self.ranges[key], self.autorange[key], self.nplc[sense.upper()], self.rng)
        source_on = self.output
        if self.source_function == "VOLTage":
            source = voltage if self.readback["VOLTAGE"] and source_on else self.source_voltage_V
        else:
            source = current if self.readback["CURRENT"] and source_on else self.source_current_A
        return Reading(t_s, source, value, sense, self.source_function, int(self.in_compliance))

    # ------------------------------------------------------------------------- trigger model
    def _load(self, function: str, points: list[SourcePoint], count: int, delay_s: float, fail_abort: bool,
              buffer: str) -> None:
        """Load a trigger model sourcing ``function`` ("VOLTage" or "CURRent") through ``points``."""
        if 0 < delay_s < 50e-6:
            raise ScpiError(-222, "a sweep delay is 0 or 50 us to 10 ks")
        self.source_function = function
        self.trigger_model = TriggerModel(function, points, count, delay_s, fail_abort, buffer,
                                          SweepEvents(self.world))

    @scpi("INITiate[:IMMediate]")
    def _initiate(self) -> None:
        model = self.trigger_model
        if model is None:
            raise ScpiError(-221, "no trigger model loaded")
        self._idle()
        model.index, model.running, model.dwell = 0, True, None
        if model.points:  # the source block: output on at the first point
            self.output = True
            self._recall(model, model.points[0])
        schedule = self._dwell_schedule(model) if self.serve_dwells else None
        if schedule is None:
            self._schedule_point(model, self.world.time_s)
            return
        self._apply_source()
        model.dwell = BufferedDwell(self.world, self.name, schedule, self._take_dwell, float(schedule[-1]),
                                    lambda _t: None, model.events)

    def _dwell_schedule(self, model: TriggerModel) -> np.ndarray | None:
        """The reading times of the run starting now if it holds one level with timing known now: finite,
        output on, no abort on the source limit, current or voltage sensed, and (with a source block) every
        point the same with no auto delay that follows the measure range; None otherwise."""
        points = model.points
        same = all(point == points[0] for point in points)
        range_dependent = bool(points) and points[0].auto_delay and self.autorange["MI"]
        if (not model.count or model.fail_abort or not self.output or self.sense_function == "RESistance"
                or not same or range_dependent):
            return None
        delay, reading = self._point_delay_s(model), self.reading_s()
        k = np.arange(model.total, dtype=float)
        return self.world.time_s + (k + 1) * (delay + reading) + k * POINT_OVERHEAD_S

    def _take_dwell(self, first: int, times_s: np.ndarray, voltage_V: np.ndarray, current_A: np.ndarray) -> None:
        model = self.trigger_model
        assert model is not None
        v_source = self.source_function == "VOLTage"
        limit = self.current_limit_A if v_source else self.voltage_limit_V
        reached = False
        for t_s, voltage, current in zip(times_s, voltage_V, current_A, strict=True):
            voltage, current, self.in_compliance = within_limit(float(voltage), float(current),
                                                                "V" if v_source else "I", limit)
            reached |= self.in_compliance
            self.buffers[model.buffer].add(self._reading(float(t_s), voltage, current))
        model.index = first + times_s.size
        if model.index >= model.total:
            model.running = False
        if reached:  # the world now drives the device at its limit, as the point-by-point path would
            self._apply_source()

    def buffered_dwells(self) -> Iterable[BufferedDwell]:
        model = self.trigger_model
        return (model.dwell,) if model is not None and model.running and model.dwell is not None else ()

    def _recall(self, model: TriggerModel, point: SourcePoint) -> None:
        """Configuration-list recall: the point's settings become the active source settings."""
        key = model.function.upper()
        self.delays[key], self.auto_delay[key], self.readback[key] = point.delay_s, point.auto_delay, point.readback
        if model.function == "VOLTage":
            self.source_voltage_V = point.level
        else:
            self.source_current_A = point.level
        self._apply_source()

    def _point_delay_s(self, model: TriggerModel) -> float:
        """Source delay of the recalled point (auto: by the present current range; none without a source
        block) + the delay block."""
        if not model.points:
            return model.delay_s
        key = model.function.upper()
        source_delay = auto_delay_s(self.ranges["MI"]) if self.auto_delay[key] else self.delays[key]
        return source_delay + model.delay_s

    def _schedule_point(self, model: TriggerModel, t_start_s: float) -> None:
        model.events.at(t_start_s + self._point_delay_s(model) + self.reading_s(), self._point_done)

    def _point_done(self, t_s: float) -> None:
        model = self.trigger_model
        if model is None or not model.running:
            return
        reading = self._measure(t_s)
        self.buffers[model.buffer].add(reading)
        model.index += 1
        if (model.fail_abort and reading.source_status) or (model.count and model.index >= model.total):
            model.running = False
            if model.fail_abort and reading.source_status:
                self.push_error(-200, "sweep aborted: source limit exceeded")
            return
        if model.points:
            self._recall(model, model.points[model.index % len(model.points)])
        self._schedule_point(model, t_s + POINT_OVERHEAD_S)

    @scpi("ABORt")
    def _abort(self) -> None:
        model = self.trigger_model
        if model is not None and model.running:
            model.events.cancel()
            model.running = False

    @scpi("TRIGger:STATe?")
    def _trigger_state(self) -> str:
        model = self.trigger_model
        state = "RUNNING" if model is not None and model.running else "IDLE"
        return f"{state};{state};{model.index if model else 0}"

    def pending_until_s(self) -> float | None:
        """The next point of a running finite trigger model (``*WAI`` does not wait for an endless one)."""
        model = self.trigger_model
        return model.events.next_s() if model is not None and model.running and model.count else None
