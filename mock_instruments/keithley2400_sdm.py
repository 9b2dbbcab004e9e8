"""The Keithley 2400's source-delay-measure (SDM) cycle and the trigger model that runs it (2400 Series
SourceMeter User's Manual, 2400S-900-01 Rev. K: section 10 "Sweep Operation", section 11 "Triggering",
appendix A "Source-Delay-Measure (SDM) cycle timing"). The command set is
:mod:`mock_instruments.keithley2400`.

A cycle sources the fixed, list or sweep level of its index, measures the enabled functions (ranges, noise,
the status word) and costs trigger latency (225 µs) + trigger delay + source configuration (50 µs) + source
delay + A/D phases × (NPLC / line frequency + 185 µs) + firmware overhead (1.8 ms sourcing V, 2.15 ms sourcing
I with auto-zero on; 0.3 / 0.64 ms with auto-zero off). Each enabled measurement function is one signal phase;
auto-zero adds the reference and reference-zero phases. A repeated reading of an unchanged fixed source skips
configuration and delay (cases V/VI: latency 500 µs / 100 µs). Auto source delay is 1 ms (3 ms / 2 ms on the
1 µA / 10 µA ranges sourcing current), table 3-4. With measurement autorange on, a reading whose value needs
another range repeats the conversion on it: one more set of A/D phases per range change (appendix A gives no
range-change time; the repeated conversion is the inferred minimum, section 7 "auto range"). The arm layer
runs ``ARM:COUNt`` x ``TRIGger:COUNt`` cycles, each a world event, so a list sweep's scan rate and the
device's hysteresis come from these numbers.

A run whose cycles are all known when it starts (a fixed source with no measurement autorange, immediate or
arm-timer arm events, immediate triggers, no output auto-off, no compliance abort: a dwell at one level) is
served as a :class:`~mock_instruments.smu_channel.BufferedDwell`: the same cycle times, computed at the start,
and the readings from the world in one pass. A compliance limit reached during such a run clamps the readings
at the limit (the device stays at the programmed level until the next batch).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mock_instruments.scpi import Choice, Num, Raw, ScpiError, ScpiInstrument, Setting, scpi
from mock_instruments.smu_channel import (
    NAN,
    OVERFLOW,
    BufferedDwell,
    ServesDwells,
    SweepEvents,
    Trace,
    autoranged_reading,
    source_into_world,
    within_limit,
)

VOLTAGE_RANGES_V = (0.2, 2.0, 20.0, 200.0)
CURRENT_RANGES_A = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
TRIGGER_LATENCY_S, SOURCE_CONFIG_S, AD_OVERHEAD_S = 225e-6, 50e-6, 185e-6
FIRMWARE_S = {(True, "VOLTage"): 1.8e-3, (True, "CURRent"): 2.15e-3,
              (False, "VOLTage"): 0.3e-3, (False, "CURRent"): 0.64e-3}
STATIC_LATENCY_S = {True: 500e-6, False: 100e-6}
BFL, BAV, RAV, CMPL = 512, 256, 64, 16384  # measurement event register bits used here


@dataclass
class Reading:
    time_s: float
    voltage: float
    current: float
    resistance: float
    status: int


@dataclass
class Run:
    """A trigger-model run: ``arms`` x ``per_arm`` SDM cycles (``arms`` 0 = INFinite)."""

    arms: int
    per_arm: int
    events: SweepEvents  # the next scheduled cycle phase; none while waiting for a trigger
    index: int = 0
    readings: list[Reading] = field(default_factory=list)
    arm_started_s: float = 0.0
    dwell: BufferedDwell | None = None  # set when the run is served as a buffered dwell


class Keithley2400Sdm(ServesDwells, ScpiInstrument):
    """The SDM cycle and the arm/trigger layers of :class:`mock_instruments.keithley2400.MockKeithley2400`."""

    arm_source = Setting("ARM[:SEQuence#][:LAYer#]:SOURce", Choice(
        "IMMediate", "TLINk", "TIMer", "MANual", "BUS", "NSTest", "PSTest", "BSTest"), "IMMediate",
        check="_idle")
    arm_timer_s = Setting("ARM[:SEQuence#][:LAYer#]:TIMer", Num(0.001, 99999.99, units="S"), 0.1)
    trigger_count = Setting("TRIGger[:SEQuence#]:COUNt", Num(1, 2500, integer=True), 1, check="_idle")
    trigger_delay_s = Setting("TRIGger[:SEQuence#]:DELay", Num(0, 999.9999, units="S"), 0.0)
    trigger_source = Setting("TRIGger[:SEQuence#]:SOURce", Choice("IMMediate", "TLINk"), "IMMediate")

    # Settings and state the model declares (see keithley2400.py).
    output: bool
    source_function: str
    voltage_V: float
    current_A: float
    voltage_mode: str
    current_mode: str
    sweep_points: int
    sweep_spacing: str
    sweep_direction: str
    sweep_abort: str
    delay_s: float
    auto_delay: bool
    auto_clear: bool
    current_limit_A: float
    voltage_limit_V: float
    filter_on: bool
    four_wire: bool
    line_frequency: int
    terminals: str
    functions: set[str]
    autozero: bool
    ranges: dict[str, float]
    autorange: dict[str, bool]
    nplc: float
    lists: dict[str, list[float]]
    sweep: dict[str, dict[str, float]]
    meas_event: int
    compliance: bool
    fresh_level: bool  # the next SDM cycle configures the source and waits its delay
    trace: Trace[Reading]

    def reset(self) -> None:
        run = getattr(self, "run", None)
        if run is not None:
            run.events.cancel()
        super().reset()
        self.run: Run | None = None
        self.last: list[Reading] = []
        self.arm_count = 1

    def _running(self) -> bool:
        run = self.run
        return run is not None and not (run.arms and run.index >= run.arms * run.per_arm)

    def _idle(self, _value: Any = None) -> None:
        if self._running():
            raise ScpiError(-221, "not permitted while the trigger model runs")

    # ---------------------------------------------------------------------------------- physics
    def _fixed_level(self) -> float:
        return self.voltage_V if self.source_function == "VOLTage" else self.current_A

    def _apply(self, level: float | None) -> tuple[float, float]:
        v_source = self.source_function == "VOLTage"
        limit = abs(self.current_limit_A if v_source else self.voltage_limit_V)
        voltage, current, self.compliance = source_into_world(
            self.world, self.name, "V" if v_source else "I", level or 0.0, limit, level is not None)
        return voltage, current

    def _mode(self) -> str:
        return self.voltage_mode if self.source_function == "VOLTage" else self.current_mode

    def _level_at(self, index: int) -> float:
        mode, function = self._mode(), self.source_function
        if mode == "LIST":
            values = self.lists[function]
            if not values:
                raise ScpiError(-221, "the source list is empty")
            return values[index % len(values)]
        if mode == "SWEep":
            start, stop, n = self.sweep[function]["STAR"], self.sweep[function]["STOP"], self.sweep_points
            if self.sweep_direction == "DOWn":
                start, stop = stop, start
            k = index % n
            if self.sweep_spacing == "LOGarithmic":
                if start <= 0 or stop <= 0:
                    raise ScpiError(-221, "log sweep needs positive start and stop")
                return float(start * (stop / start) ** (k / (n - 1)))
            return start + (stop - start) * k / (n - 1)
        return self._fixed_level()

    def _measure(self, t_s: float) -> Reading:
        level = self.run_level if self._running() else self._fixed_level()
        voltage, current = self._apply(level)
        return self._reading(t_s, level, voltage, current)

    def _reading(self, t_s: float, level: float, voltage: float, current: float) -> Reading:
        """The reading of a cycle at ``t_s`` that sourced ``level`` and found the device at (voltage,
        current): enabled functions, ranges, noise, the status word (compliance as ``self.compliance``)."""
        v_source = self.source_function == "VOLTage"
        status = (1 << 14 if v_source else 1 << 15) | (4 if self.terminals == "FRONt" else 0)
        status |= (2 if self.filter_on else 0) | (1 << 22 if self.four_wire else 0)
        status |= 8 if self.compliance else 0
        for function, bit in (("VOLT", 11), ("CURR", 12), ("RES", 13)):
            status |= (1 << bit) if function in self.functions else 0
        v_out = level if v_source else NAN  # the programmed source value unless measured
        i_out = NAN if v_source else level
        for key, kind in (("MV", "V"), ("MI", "I")):
            measured = "VOLT" if kind == "V" else "CURR"
            if measured not in self.functions:
                continue
            value = voltage if kind == "V" else current
            reading, self.ranges[key] = autoranged_reading(
                value, kind, VOLTAGE_RANGES_V if kind == "V" else CURRENT_RANGES_A, self.ranges[key],
                self.autorange[key], self.nplc, self.rng, above_all=self.ranges[key])
            status |= 1 if abs(reading) >= OVERFLOW else 0
            if kind == "V":
                v_out = reading
            else:
                i_out = reading
        resistance = NAN
        if "RES" in self.functions and abs(i_out) < OVERFLOW and abs(v_out) < OVERFLOW and i_out != 0:
            resistance = v_out / i_out
        return Reading(t_s, v_out, i_out, resistance, status)

    # ----------------------------------------------------------------------------------- timing
    def _phases(self) -> int:
        signal = len(self.functions)
        return signal + (2 if self.autozero and signal else 0)

    def _source_delay_s(self) -> float:
        if not self.auto_delay:
            return self.delay_s
        if self.source_function == "CURRent" and self.ranges["SI"] <= 1e-5:
            return 3e-3 if self.ranges["SI"] <= 1e-6 else 2e-3
        return 1e-3

    def cycle_s(self, fresh: bool = True) -> tuple[float, float]:
        """(source on to measurement, firmware overhead after it) of one SDM cycle, appendix A."""
        conversion = self._phases() * (self.nplc / self.line_frequency + AD_OVERHEAD_S)
        if fresh:
            before = (TRIGGER_LATENCY_S + self.trigger_delay_s + SOURCE_CONFIG_S + self._source_delay_s()
                      + conversion)
        else:
            before = STATIC_LATENCY_S[self.autozero] + self.trigger_delay_s + conversion
        return before, FIRMWARE_S[(self.autozero, self.source_function)]

    def _range_change_s(self, voltage: float, current: float) -> float:
        """The extra conversion a measurement autorange costs when the value needs another range."""
        extra = 0.0
        for key, value, ranges, function in (("MI", current, CURRENT_RANGES_A, "CURR"),
                                             ("MV", voltage, VOLTAGE_RANGES_V, "VOLT")):
            if function in self.functions and self.autorange[key]:
                needed = next((r for r in ranges if abs(value) <= r), ranges[-1])
                if needed != self.ranges[key]:
                    extra += self._phases() * (self.nplc / self.line_frequency + AD_OVERHEAD_S)
        return extra

    # ------------------------------------------------------------------------------ trigger model
    run_level = 0.0

    def start_run(self) -> None:
        """``:INITiate``: leave idle and run arm count x trigger count SDM cycles."""
        if self._running():
            raise ScpiError(-213)
        if self.run is not None:  # the previous run is only finishing its last cycle
            self._abort()
        if not self.output and not self.auto_clear:
            raise ScpiError(803)
        if self.source_function == "MEMory":
            raise ScpiError(-221)
        self._level_at(0)  # an empty list or a bad log sweep is refused before the run starts
        self.run = Run(self.arm_count, self.trigger_count, SweepEvents(self.world))
        schedule = self._dwell_schedule() if self.serve_dwells else None
        if schedule is None:
            self._arm(self.world.time_s)
        else:
            self._start_dwell(*schedule)

    def _dwell_schedule(self) -> tuple[np.ndarray, float] | None:
        """When every reading of the run starting now is taken and when the run ends, if all of it is known
        now: a fixed level, a finite run of immediate or arm-timer arm events and immediate triggers, no output
        auto-off or compliance abort, and no measurement autorange (a range change costs a conversion);
        None otherwise. The times follow the cycle-by-cycle path: the first cycle may be a changed source,
        the others repeat an unchanged one (cases V/VI); arm-timer passes start a timer interval apart."""
        run = self.run
        assert run is not None
        autoranged = any(self.autorange[key] for key, function in (("MI", "CURR"), ("MV", "VOLT"))
                         if function in self.functions)
        if (not run.arms or self._mode() != "FIXed" or self.auto_clear or self.sweep_abort != "NEVer"
                or self.trigger_source != "IMMediate" or self.arm_source not in ("IMMediate", "TIMer")
                or not self.output or autoranged):
            return None
        fresh = self.fresh_level or self._fixed_level() != self.run_level
        t = arm_started = self.world.time_s
        times = []
        for arm in range(run.arms):
            if arm:
                arm_started = t if self.arm_source == "IMMediate" else max(t, arm_started + self.arm_timer_s)
                t = arm_started
            for _ in range(run.per_arm):
                before, firmware = self.cycle_s(fresh)
                fresh = False
                times.append(t + before)
                t = times[-1] + firmware
        return np.array(times), t

    def _start_dwell(self, times_s: np.ndarray, done_s: float) -> None:
        run = self.run
        assert run is not None
        level = self._fixed_level()
        self.run_level, self.fresh_level = level, False
        self._apply(level)
        run.dwell = BufferedDwell(self.world, self.name, times_s, self._take_dwell, done_s,
                                  lambda _t: self._finish(), run.events)

    def _take_dwell(self, _first: int, times_s: np.ndarray, voltage_V: np.ndarray, current_A: np.ndarray
                    ) -> None:
        v_source = self.source_function == "VOLTage"
        limit = abs(self.current_limit_A if v_source else self.voltage_limit_V)
        reached = False
        for t_s, voltage, current in zip(times_s, voltage_V, current_A, strict=True):
            voltage, current, self.compliance = within_limit(float(voltage), float(current),
                                                             "V" if v_source else "I", limit)
            reached |= self.compliance
            self._store(self._reading(float(t_s), self.run_level, voltage, current))
        if reached:  # from here on the world drives the device at its limit, as the cycle-by-cycle path would
            self._apply(self.run_level)

    def _store(self, reading: Reading) -> None:
        """A cycle's reading goes to the run, the buffer and the measurement event register."""
        run = self.run
        assert run is not None
        run.readings.append(reading)
        if self.trace.store(reading):
            self.meas_event |= BAV | (BFL if self.trace.full else 0)
        self.meas_event |= RAV | (CMPL if self.compliance else 0)
        run.index += 1

    def buffered_dwells(self) -> Iterable[BufferedDwell]:
        run = self.run
        return (run.dwell,) if run is not None and run.dwell is not None else ()

    def _arm(self, t_s: float) -> None:
        run = self.run
        assert run is not None
        source = self.arm_source
        if source in ("IMMediate", "TIMer") and self.trigger_source == "IMMediate":
            start = t_s
            if source == "TIMer" and run.index:
                start = max(t_s, run.arm_started_s + self.arm_timer_s)
            run.arm_started_s = start
            run.events.at(start, self._cycle_start)
        # else: waits for *TRG (BUS) or for a trigger that never comes

    def trigger(self) -> None:
        run = self.run
        if run is not None and run.events.idle and self.arm_source == "BUS":
            run.arm_started_s = self.world.time_s
            run.events.at(self.world.time_s, self._cycle_start)

    def _cycle_start(self, t_s: float) -> None:
        run = self.run
        if run is None:
            return
        level = self._level_at(run.index)
        fresh = self.fresh_level or self._mode() != "FIXed" or self.auto_clear or level != self.run_level
        self.run_level, self.fresh_level = level, False
        self.output = self.output or self.auto_clear
        voltage, current = self._apply(level)
        before, _ = self.cycle_s(fresh)
        run.events.at(t_s + before + self._range_change_s(voltage, current), self._cycle_end)

    def _cycle_end(self, t_s: float) -> None:
        run = self.run
        if run is None:
            return
        self._store(self._measure(t_s))
        _, firmware = self.cycle_s()
        if self.auto_clear:
            self.output = False
            self._apply(None)
        if self.sweep_abort != "NEVer" and self.compliance:
            self._finish()
            return
        if run.arms and run.index >= run.arms * run.per_arm:  # idle again once the firmware is done; settings
            run.events.at(t_s + firmware, lambda _t: self._finish())  # are accepted from the last reading on
        elif run.index % run.per_arm == 0:
            self._arm(t_s + firmware)
        else:
            run.events.at(t_s + firmware, self._cycle_start)

    def _finish(self) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        self.last = run.readings
        if self.output and self._mode() != "FIXed":  # back to the bias (fixed) level, section 10
            self.fresh_level = True
            self._apply(self._fixed_level())

    def pending_until_s(self) -> float | None:
        run = self.run
        return run.events.next_s() if run is not None and run.arms else None

    @scpi("INITiate[:IMMediate]")
    def _initiate(self) -> None:
        self.start_run()

    @scpi("ABORt")
    def _abort(self) -> None:
        if self.run is not None:
            self.run.events.cancel()
        self._finish()

    @scpi("TRIGger:CLEar")
    def _trigger_clear(self) -> None:
        """Clears pending input triggers; none are latched in the simulation."""

    @scpi("ARM[:SEQuence#][:LAYer#]:COUNt", Raw())
    def _set_arm_count(self, token: str) -> None:
        self._idle()
        infinite = token.upper() in ("INF", "INFINITE")
        self.arm_count = 0 if infinite else int(Num(1, 2500, integer=True).convert(token))
        if self.arm_count * self.trigger_count > 2500:
            raise ScpiError(-221, "arm count x trigger count > 2500")

    @scpi("ARM[:SEQuence#][:LAYer#]:COUNt?")
    def _get_arm_count(self) -> str:
        return "9.9e37" if self.arm_count == 0 else str(self.arm_count)
