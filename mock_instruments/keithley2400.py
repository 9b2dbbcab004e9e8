"""Keithley 2400 SourceMeter (SCPI), after the 2400 Series SourceMeter User's Manual (2400S-900-01 Rev. K):
section 18 "SCPI Command Reference", section 10 "Sweep Operation", section 9 "Data Store", section 11
"Triggering", appendix A "Source-Delay-Measure (SDM) cycle timing" and appendix B "Status and Error Messages".

Commands: ``OUTPut[:STATe]``, ``OUTPut:SMODe``; ``SOURce:FUNCtion``, ``SOURce:VOLTage|CURRent[:LEVel]``,
``:MODE FIXed|LIST|SWEep``, ``:RANGe[:AUTO]``, ``:STARt/STOP/STEP``, ``SOURce:SWEep:POINts/SPACing/
DIRection/RANGing``, ``SOURce:LIST:VOLTage|CURRent[:APPend|:POINts?]``, ``SOURce:DELay[:AUTO]``,
``SOURce:CLEar[:AUTO]``; ``[SENSe]:FUNCtion[:ON]/OFF/[:ON]:ALL/OFF:ALL/CONCurrent/STATe?``,
``[SENSe]:CURRent|VOLTage:PROTection[:TRIPped?]``, ``:RANGe[:AUTO]``, ``:NPLCycles`` (global);
``FORMat[:DATA]``, ``FORMat:ELEMents`` (VOLT, CURR, RES, TIME, STAT in that fixed order);
``ARM:COUNt/SOURce/TIMer``, ``TRIGger:COUNt/DELay/SOURce/CLEar``, ``INITiate``, ``ABORt``, ``*TRG``;
``READ?``, ``FETCh?``, ``MEASure[:<function>]?``, ``CONFigure:<function>``; ``TRACe|DATA:POINts[:ACTual?]``,
``:FEED[:CONTrol]``, ``:CLEar``, ``:DATA?``, ``:FREE?``, ``:TSTamp:FORMat``; ``CALCulate3:FORMat/DATA?``
(buffer statistics); ``SYSTem:AZERo``, ``:RSENse``, ``:LFRequency``, ``:TIME:RESet``, ``:ERRor``,
``:VERSion?``, ``:BEEPer``, ``:PRESet``; ``STATus:MEASurement|OPERation|QUEStionable``, ``STATus:PRESet``;
``DISPlay:ENABle/DIGits``.

Timing (appendix A): an SDM cycle is trigger latency (225 µs) + trigger delay + source configuration
(50 µs) + source delay + A/D phases × (NPLC / line frequency + 185 µs) + firmware overhead (1.8 ms sourcing V,
2.15 ms sourcing I with auto-zero on; 0.3 / 0.64 ms with auto-zero off). Each enabled measurement function is
one signal phase; auto-zero adds the reference and reference-zero phases. A repeated reading of an unchanged
fixed source skips configuration and delay (cases V/VI: latency 500 µs / 100 µs). Every cycle is a world
event, so a list sweep's scan rate and the device's hysteresis come from these numbers. Auto source delay is
1 ms (3 ms / 2 ms on the 1 µA / 10 µA ranges sourcing current), table 3-4.

Not simulated: source memory sweeps, pulse mode, limit tests (CALC2), math (CALC1), binary data formats,
filters (accepted, status bit only), digital I/O; TLINk/MANual/test-start triggers never arrive (a
``READ?`` that would wait for them reports -214 Trigger deadlock).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mock_instruments.scpi import Bool, Choice, Num, Raw, Rest, ScpiError, ScpiInstrument, Setting, Str, scpi

VOLTAGE_RANGES_V = (0.2, 2.0, 20.0, 200.0)
CURRENT_RANGES_A = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
NAN, OVERFLOW = 9.91e37, 9.9e37
TRIGGER_LATENCY_S, SOURCE_CONFIG_S, AD_OVERHEAD_S = 225e-6, 50e-6, 185e-6
FIRMWARE_S = {(True, "VOLTage"): 1.8e-3, (True, "CURRent"): 2.15e-3,
              (False, "VOLTage"): 0.3e-3, (False, "CURRent"): 0.64e-3}
STATIC_LATENCY_S = {True: 500e-6, False: 100e-6}
FUNCTIONS = {"VOLT": "VOLT", "VOLTAGE": "VOLT", "CURR": "CURR", "CURRENT": "CURR", "RES": "RES",
             "RESISTANCE": "RES"}
ELEMENTS = ("VOLTage", "CURRent", "RESistance", "TIME", "STATus")
EXTRA_ERRORS = {-213: "Init ignored", -214: "Trigger deadlock", 800: "Illegal with storage active",
                803: "Not permitted with OUTPUT off", 830: "Invalid with INF ARM:COUNT"}
BFL, BAV, RAV, CMPL = 512, 256, 64, 16384  # measurement event register bits used here


def fit_range(value: float, ranges: tuple[float, ...]) -> float:
    """The smallest range holding ``value`` (-222 above the top range's 105 %)."""
    for r in ranges:
        if abs(value) <= 1.05 * r:
            return r
    raise ScpiError(-222, f"{value:g} above the {ranges[-1]:g} range")


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


def noisy(value: float, range_: float, nplc: float, rng: np.random.Generator, kind: str) -> float:
    """A reading with seeded noise scaling with the range and 1/sqrt(NPLC); overflow above 105 %."""
    value += (1e-5 if kind == "I" else 5e-6) * range_ / math.sqrt(nplc) * float(rng.standard_normal())
    return math.copysign(OVERFLOW, value) if abs(value) > 1.05 * range_ else value


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
    index: int = 0
    readings: list[Reading] = field(default_factory=list)
    next_s: float | None = None  # next scheduled event; None while waiting for a trigger
    event: Any = None
    arm_started_s: float = 0.0


class MockKeithley2400(ScpiInstrument):
    """The simulated Keithley 2400 (options: ``serial``, ``line_frequency_Hz``, and the base options)."""

    model = "keithley2400"

    output = Setting("OUTPut#[:STATe]", Bool(), False, on_change="_output_changed")
    off_mode = Setting("OUTPut#:SMODe", Choice("HIMPedance", "NORMal", "ZERO", "GUARd"), "NORMal")
    source_function = Setting("SOURce#:FUNCtion[:MODE]", Choice("VOLTage", "CURRent", "MEMory"), "VOLTage",
                              check="_check_source_function", on_change="_level_changed")
    voltage_V = Setting("SOURce#:VOLTage[:LEVel][:IMMediate][:AMPLitude]", Num(-210, 210, units="V"), 0.0,
                        check="_check_level", on_change="_level_changed")
    current_A = Setting("SOURce#:CURRent[:LEVel][:IMMediate][:AMPLitude]", Num(-1.05, 1.05, units="A"), 0.0,
                        check="_check_level", on_change="_level_changed")
    voltage_mode = Setting("SOURce#:VOLTage:MODE", Choice("FIXed", "LIST", "SWEep"), "FIXed", check="_idle")
    current_mode = Setting("SOURce#:CURRent:MODE", Choice("FIXed", "LIST", "SWEep"), "FIXed", check="_idle")
    sweep_points = Setting("SOURce#:SWEep:POINts", Num(2, 2500, integer=True), 2500)
    sweep_spacing = Setting("SOURce#:SWEep:SPACing", Choice("LINear", "LOGarithmic"), "LINear")
    sweep_direction = Setting("SOURce#:SWEep:DIRection", Choice("UP", "DOWn"), "UP")
    sweep_ranging = Setting("SOURce#:SWEep:RANGing", Choice("BEST", "AUTO", "FIXed"), "BEST")
    sweep_abort = Setting("SOURce#:SWEep:CABort", Choice("NEVer", "EARLy", "LATE"), "NEVer")
    delay_s = Setting("SOURce#:DELay", Num(0, 9999.999, units="S"), 0.0, on_change="_manual_delay")
    auto_delay = Setting("SOURce#:DELay:AUTO", Bool(), True)
    auto_clear = Setting("SOURce#:CLEar:AUTO", Bool(), False)
    auto_clear_mode = Setting("SOURce#:CLEar:AUTO:MODE", Choice("ALWays", "TCOunt"), "ALWays")
    current_limit_A = Setting("[SENSe#]:CURRent[:DC]:PROTection[:LEVel]", Num(-1.05, 1.05, units="A"),
                              1.05e-4)
    voltage_limit_V = Setting("[SENSe#]:VOLTage[:DC]:PROTection[:LEVel]", Num(-210, 210, units="V"), 21.0)
    concurrent = Setting("[SENSe#]:FUNCtion:CONCurrent", Bool(), True)
    filter_on = Setting("[SENSe#]:AVERage[:STATe]", Bool(), False)
    filter_count = Setting("[SENSe#]:AVERage:COUNt", Num(1, 100, integer=True), 10)
    filter_type = Setting("[SENSe#]:AVERage:TCONtrol", Choice("REPeat", "MOVing"), "REPeat")
    four_wire = Setting("SYSTem:RSENse", Bool(), False)
    line_frequency = Setting("SYSTem:LFRequency", Num(50, 60, integer=True), 60, check="_check_lfr")
    line_frequency_auto = Setting("SYSTem:LFRequency:AUTO", Bool(), False)
    arm_source = Setting("ARM[:SEQuence#][:LAYer#]:SOURce", Choice(
        "IMMediate", "TLINk", "TIMer", "MANual", "BUS", "NSTest", "PSTest", "BSTest"), "IMMediate",
        check="_idle")
    arm_timer_s = Setting("ARM[:SEQuence#][:LAYer#]:TIMer", Num(0.001, 99999.99, units="S"), 0.1)
    trigger_count = Setting("TRIGger[:SEQuence#]:COUNt", Num(1, 2500, integer=True), 1, check="_idle")
    trigger_delay_s = Setting("TRIGger[:SEQuence#]:DELay", Num(0, 999.9999, units="S"), 0.0)
    trigger_source = Setting("TRIGger[:SEQuence#]:SOURce", Choice("IMMediate", "TLINk"), "IMMediate")
    data_format = Setting("FORMat[:DATA]", Choice("ASCii", "REAL", "SREal"), "ASCii", check="_ascii_only")
    register_format = Setting("FORMat:SREGister", Choice("ASCii", "HEXadecimal", "OCTal", "BINary"), "ASCii")
    trace_feed = Setting("TRACe:FEED", Choice("SENSe", "CALCulate", "CALCulate2"), "SENSe")
    trace_control = Setting("TRACe:FEED:CONTrol", Choice("NEXT", "NEVer"), "NEVer", on_change="_trace_armed")
    trace_stamp = Setting("TRACe:TSTamp:FORMat", Choice("ABSolute", "DELTa"), "ABSolute")
    display_on = Setting("DISPlay:ENABle", Bool(), True)
    display_digits = Setting("DISPlay:DIGits", Num(4, 7, integer=True), 6)
    terminals = Setting("ROUTe:TERMinals", Choice("FRONt", "REAR"), "FRONt")

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        self.lfr_option = int(options.pop("line_frequency_Hz", 60))
        serial = options.pop("serial", f"{zlib.crc32(name.encode()) % 10000000:07d}")
        self.idn = f"KEITHLEY INSTRUMENTS INC.,MODEL 2400,{serial},C30   Mar 17 2006 09:29:29/A02  /K/J"
        super().__init__(world, name, **options)
        self.time_origin_s = world.clock.now()
        self.reset()

    def reset(self) -> None:
        run = getattr(self, "run", None)
        if run is not None and run.event is not None:
            self.world.cancel(run.event)
        super().reset()
        self.line_frequency = self.lfr_option
        self.run: Run | None = None
        self.last: list[Reading] = []
        self.functions = {"CURR"}
        self.elements = list(ELEMENTS)
        self.autozero = True
        self.ranges = {"SV": 2.0, "SI": 1e-4, "MV": 20.0, "MI": 1e-4}
        self.autorange = {"SV": True, "SI": True, "MV": True, "MI": True}
        self.nplc = 1.0
        self.lists: dict[str, list[float]] = {"VOLTage": [], "CURRent": []}
        self.sweep: dict[str, dict[str, float]] = {"VOLTage": {"STAR": 0.0, "STOP": 0.0},
                                                   "CURRent": {"STAR": 0.0, "STOP": 0.0}}
        self.arm_count = 1
        self.buffer: list[Reading] = []
        self.trace_points = 100
        self.meas_event = self.meas_enable = 0
        self.compliance = False
        self.fresh_level = True  # the next SDM cycle configures the source and waits its delay
        self.world.apply_voltage(self.name, None)

    # ----------------------------------------------------------------------------- checks, hooks
    def format_error(self, code: int, detail: str) -> str:
        if code in EXTRA_ERRORS:
            return f'{code:+d},"{EXTRA_ERRORS[code]}"'
        return super().format_error(code, detail)

    def _running(self) -> bool:
        run = self.run
        return run is not None and not (run.arms and run.index >= run.arms * run.per_arm)

    def _idle(self, _value: Any = None) -> None:
        if self._running():
            raise ScpiError(-221, "not permitted while the trigger model runs")

    def _check_source_function(self, value: str) -> None:
        self._idle()
        if value == "MEMory":
            raise ScpiError(-221, "source memory sweeps are not simulated")

    def _check_level(self, level: float) -> None:
        key = "SV" if "VOLTAGE" in self.call.nodes else "SI"
        if not self.autorange[key] and abs(level) > 1.05 * self.ranges[key]:
            raise ScpiError(-222, f"{level:g} above the fixed {self.ranges[key]:g} source range")

    def _check_lfr(self, value: int) -> None:
        if value not in (50, 60):
            raise ScpiError(-222, "line frequency is 50 or 60 Hz")

    def _ascii_only(self, value: str) -> None:
        if value != "ASCii":
            raise ScpiError(-221, "binary data formats are not simulated")

    def _level_changed(self, _value: Any = None) -> None:
        self.fresh_level = True
        if self.output and not self._running():
            self._apply(self._fixed_level())

    def _manual_delay(self, _value: float) -> None:
        self.auto_delay = False

    def _output_changed(self, on: bool) -> None:
        self.fresh_level = True
        if not on and self.run is not None:  # the output relay opening ends a running sweep
            self._abort()
        self._apply(self._fixed_level() if on else None)

    def _trace_armed(self, value: str) -> None:
        if value == "NEXT" and self.trace_points < 1:
            raise ScpiError(-221, "buffer size")

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
            if self.autorange[key]:
                self.ranges[key] = next((r for r in (VOLTAGE_RANGES_V if kind == "V" else CURRENT_RANGES_A)
                                         if abs(value) <= r), self.ranges[key])
            reading = noisy(value, self.ranges[key], self.nplc, self.rng, kind)
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
        self.run = Run(self.arm_count, self.trigger_count)
        self._arm(self.world.time_s)

    def _arm(self, t_s: float) -> None:
        run = self.run
        assert run is not None
        source = self.arm_source
        if source in ("IMMediate", "TIMer") and self.trigger_source == "IMMediate":
            start = t_s
            if source == "TIMer" and run.index:
                start = max(t_s, run.arm_started_s + self.arm_timer_s)
            run.arm_started_s = start
            self._schedule(start, self._cycle_start)
        else:
            run.next_s, run.event = None, None  # waits for *TRG (BUS) or for a trigger that never comes

    def trigger(self) -> None:
        run = self.run
        if run is not None and run.next_s is None and self.arm_source == "BUS":
            run.arm_started_s = self.world.time_s
            self._schedule(self.world.time_s, self._cycle_start)

    def _schedule(self, t_s: float, callback: Any) -> None:
        assert self.run is not None
        self.run.next_s = t_s
        self.run.event = self.world.schedule(t_s, callback)

    def _cycle_start(self, t_s: float) -> None:
        run = self.run
        if run is None:
            return
        level = self._level_at(run.index)
        fresh = self.fresh_level or self._mode() != "FIXed" or self.auto_clear or level != self.run_level
        self.run_level, self.fresh_level = level, False
        self.output = self.output or self.auto_clear
        self._apply(level)
        before, _ = self.cycle_s(fresh)
        self._schedule(t_s + before, self._cycle_end)

    def _cycle_end(self, t_s: float) -> None:
        run = self.run
        if run is None:
            return
        reading = self._measure(t_s)
        run.readings.append(reading)
        self._store(reading)
        self.meas_event |= RAV | (CMPL if self.compliance else 0)
        run.index += 1
        _, firmware = self.cycle_s()
        if self.auto_clear:
            self.output = False
            self._apply(None)
        if self.sweep_abort != "NEVer" and self.compliance:
            self._finish()
            return
        if run.arms and run.index >= run.arms * run.per_arm:  # idle again once the firmware is done; settings
            self._schedule(t_s + firmware, lambda _t: self._finish())  # are accepted from the last reading on
        elif run.index % run.per_arm == 0:
            self._arm(t_s + firmware)
        else:
            self._schedule(t_s + firmware, self._cycle_start)

    def _finish(self) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        self.last = run.readings
        if self.output and self._mode() != "FIXed":  # back to the bias (fixed) level, section 10
            self.fresh_level = True
            self._apply(self._fixed_level())

    def _store(self, reading: Reading) -> None:
        if self.trace_control != "NEXT":
            return
        self.buffer.append(reading)
        self.meas_event |= BAV
        if len(self.buffer) >= self.trace_points:
            self.trace_control = "NEVer"
            self.meas_event |= BFL

    def pending_until_s(self) -> float | None:
        run = self.run
        return run.next_s if run is not None and run.arms else None

    @scpi("INITiate[:IMMediate]")
    def _initiate(self) -> None:
        self.start_run()

    @scpi("ABORt")
    def _abort(self) -> None:
        if self.run is not None and self.run.event is not None:
            self.world.cancel(self.run.event)
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

    # ------------------------------------------------------------------------------- readings
    def _read_all(self) -> list[Reading]:
        if self.arm_count == 0:
            raise ScpiError(830)
        if self.arm_source not in ("IMMediate", "TIMer") or self.trigger_source != "IMMediate":
            raise ScpiError(-214, "the reading waits for a trigger that cannot come")
        self.start_run()
        self.wait_pending()
        return self.last

    def _format(self, readings: list[Reading], buffer: bool = False) -> str:
        out = []
        for k, r in enumerate(readings):
            values = {"VOLTage": r.voltage, "CURRent": r.current, "RESistance": r.resistance,
                      "STATus": float(r.status)}
            if buffer:
                ref = readings[0 if self.trace_stamp == "ABSolute" else max(k - 1, 0)].time_s
                values["TIME"] = r.time_s - ref
            else:
                values["TIME"] = (r.time_s - self.time_origin_s) % 100000.0
            out += [f"{values[e]:+.6E}" for e in ELEMENTS if e in self.elements]
        return ",".join(out)

    @scpi("READ?")
    def _read(self) -> str:
        return self._format(self._read_all())

    @scpi("FETCh?")
    def _fetch(self) -> str:
        if not self.last:
            raise ScpiError(-230, "no fresh readings")
        return self._format(self.last)

    @scpi("MEASure?")
    @scpi("MEASure:VOLTage[:DC]?")
    @scpi("MEASure:CURRent[:DC]?")
    @scpi("MEASure:RESistance?")
    def _measure_query(self) -> str:
        self._configure()
        return self._format(self._read_all())

    @scpi("CONFigure:VOLTage[:DC]")
    @scpi("CONFigure:CURRent[:DC]")
    @scpi("CONFigure:RESistance")
    def _configure(self) -> None:
        """Only the named function on, output on (CONFigure subsystem)."""
        self._idle()
        named = [FUNCTIONS[n] for n in self.call.nodes if n in FUNCTIONS]
        if named:
            self.functions = {named[0]}
        if not self.output:
            self.output = True
            self._output_changed(True)

    @scpi("CONFigure?")
    def _configure_query(self) -> str:
        return ",".join(f'"{f}:DC"' if f != "RES" else '"RES"' for f in sorted(self.functions))

    # ---------------------------------------------------------------------- sense functions
    def _function_names(self, names: list[str]) -> list[str]:
        out = []
        for name in names:
            key = name.upper().removesuffix(":DC")
            if key not in FUNCTIONS:
                raise ScpiError(-224, f"no measurement function {name!r}")
            out.append(FUNCTIONS[key])
        return out

    @scpi("[SENSe#]:FUNCtion[:ON]", Rest(Str()))
    def _functions_on(self, names: list[str]) -> None:
        self._idle()
        wanted = self._function_names(names)
        self.functions = self.functions | set(wanted) if self.concurrent else {wanted[-1]}

    @scpi("[SENSe#]:FUNCtion:OFF", Rest(Str()))
    def _functions_off(self, names: list[str]) -> None:
        self._idle()
        self.functions -= set(self._function_names(names))

    @scpi("[SENSe#]:FUNCtion[:ON]:ALL")
    @scpi("[SENSe#]:FUNCtion:OFF:ALL")
    def _functions_all(self) -> None:
        self._idle()
        self.functions = set() if "OFF" in self.call.nodes else {"VOLT", "CURR", "RES"}

    @scpi("[SENSe#]:FUNCtion[:ON]?")
    def _functions_query(self) -> str:
        on = [f for f in ("VOLT", "CURR", "RES") if f in self.functions]
        return ",".join(f'"{f}:DC"' if f != "RES" else '"RES"' for f in on) or '""'

    def _key(self) -> str:
        nodes = self.call.nodes
        return ("S" if "SOURCE" in nodes else "M") + ("V" if "VOLTAGE" in nodes else "I")

    @scpi("SOURce#:VOLTage:RANGe", Num(-210, 210, units="V"))
    @scpi("SOURce#:CURRent:RANGe", Num(-1.05, 1.05, units="A"))
    @scpi("[SENSe#]:VOLTage[:DC]:RANGe[:UPPer]", Num(-210, 210, units="V"))
    @scpi("[SENSe#]:CURRent[:DC]:RANGe[:UPPer]", Num(-1.05, 1.05, units="A"))
    def _set_range(self, value: float) -> None:
        key = self._key()
        self.ranges[key] = fit_range(value, VOLTAGE_RANGES_V if key[1] == "V" else CURRENT_RANGES_A)
        self.autorange[key] = False

    @scpi("SOURce#:VOLTage:RANGe?")
    @scpi("SOURce#:CURRent:RANGe?")
    @scpi("[SENSe#]:VOLTage[:DC]:RANGe[:UPPer]?")
    @scpi("[SENSe#]:CURRent[:DC]:RANGe[:UPPer]?")
    def _get_range(self) -> float:
        key = self._key()
        if key[0] == "S" and self.autorange[key]:
            level = self.voltage_V if key == "SV" else self.current_A
            return fit_range(level, VOLTAGE_RANGES_V if key == "SV" else CURRENT_RANGES_A)
        return self.ranges[key]

    @scpi("SOURce#:VOLTage:RANGe:AUTO", Bool())
    @scpi("SOURce#:CURRent:RANGe:AUTO", Bool())
    @scpi("[SENSe#]:VOLTage[:DC]:RANGe:AUTO", Bool())
    @scpi("[SENSe#]:CURRent[:DC]:RANGe:AUTO", Bool())
    def _set_autorange(self, on: bool) -> None:
        self.autorange[self._key()] = on

    @scpi("SOURce#:VOLTage:RANGe:AUTO?")
    @scpi("SOURce#:CURRent:RANGe:AUTO?")
    @scpi("[SENSe#]:VOLTage[:DC]:RANGe:AUTO?")
    @scpi("[SENSe#]:CURRent[:DC]:RANGe:AUTO?")
    def _get_autorange(self) -> bool:
        return self.autorange[self._key()]

    @scpi("[SENSe#]:VOLTage[:DC]:NPLCycles", Num(0.01, 10, default=1.0))
    @scpi("[SENSe#]:CURRent[:DC]:NPLCycles", Num(0.01, 10, default=1.0))
    @scpi("[SENSe#]:RESistance:NPLCycles", Num(0.01, 10, default=1.0))
    def _set_nplc(self, nplc: float) -> None:
        self.nplc = nplc  # global for all functions (section 18, SENSe1 subsystem)

    @scpi("[SENSe#]:VOLTage[:DC]:NPLCycles?")
    @scpi("[SENSe#]:CURRent[:DC]:NPLCycles?")
    @scpi("[SENSe#]:RESistance:NPLCycles?")
    def _get_nplc(self) -> float:
        return self.nplc

    @scpi("[SENSe#]:CURRent[:DC]:PROTection:TRIPped?")
    @scpi("[SENSe#]:VOLTage[:DC]:PROTection:TRIPped?")
    def _tripped(self) -> bool:
        return self.compliance and (self.source_function == "VOLTage") == ("CURRENT" in self.call.nodes)

    # -------------------------------------------------------------------------- source lists
    @scpi("SOURce#:LIST:VOLTage", Rest(Num(-210, 210, units="V")))
    @scpi("SOURce#:LIST:CURRent", Rest(Num(-1.05, 1.05, units="A")))
    @scpi("SOURce#:LIST:VOLTage:APPend", Rest(Num(-210, 210, units="V")))
    @scpi("SOURce#:LIST:CURRent:APPend", Rest(Num(-1.05, 1.05, units="A")))
    def _source_list(self, values: list[float]) -> None:
        self._idle()
        function = "VOLTage" if "VOLTAGE" in self.call.nodes else "CURRent"
        current = self.lists[function] if "APPEND" in self.call.nodes else []
        if len(values) > 100 or len(current) + len(values) > 2500:
            raise ScpiError(-223, "a list holds 2500 values, sent at most 100 at a time")
        self.lists[function] = current + values

    @scpi("SOURce#:LIST:VOLTage?")
    @scpi("SOURce#:LIST:CURRent?")
    def _source_list_query(self) -> str:
        values = self.lists["VOLTage" if "VOLTAGE" in self.call.nodes else "CURRent"]
        return ",".join(f"{v:+.6E}" for v in values)

    @scpi("SOURce#:LIST:VOLTage:POINts?")
    @scpi("SOURce#:LIST:CURRent:POINts?")
    def _source_list_points(self) -> int:
        return len(self.lists["VOLTage" if "VOLTAGE" in self.call.nodes else "CURRent"])

    @scpi("SOURce#:VOLTage:STARt", Num(-210, 210, units="V"))
    @scpi("SOURce#:VOLTage:STOP", Num(-210, 210, units="V"))
    @scpi("SOURce#:CURRent:STARt", Num(-1.05, 1.05, units="A"))
    @scpi("SOURce#:CURRent:STOP", Num(-1.05, 1.05, units="A"))
    def _set_sweep_end(self, value: float) -> None:
        function = "VOLTage" if "VOLTAGE" in self.call.nodes else "CURRent"
        self.sweep[function]["STAR" if "START" in self.call.nodes else "STOP"] = value

    @scpi("SOURce#:VOLTage:STARt?")
    @scpi("SOURce#:VOLTage:STOP?")
    @scpi("SOURce#:CURRent:STARt?")
    @scpi("SOURce#:CURRent:STOP?")
    def _get_sweep_end(self) -> float:
        function = "VOLTage" if "VOLTAGE" in self.call.nodes else "CURRent"
        return self.sweep[function]["STAR" if "START" in self.call.nodes else "STOP"]

    @scpi("SOURce#:VOLTage:STEP", Num(-420, 420, units="V"))
    @scpi("SOURce#:CURRent:STEP", Num(-2.1, 2.1, units="A"))
    def _set_sweep_step(self, step: float) -> None:
        ends = self.sweep["VOLTage" if "VOLTAGE" in self.call.nodes else "CURRent"]
        if step == 0:
            raise ScpiError(-222, "step 0")
        points = math.floor(abs(ends["STOP"] - ends["STAR"]) / abs(step) + 1e-9) + 1
        self.sweep_points = max(2, min(2500, points))

    @scpi("SOURce#:CLEar[:IMMediate]")
    def _source_clear(self) -> None:
        self._idle()
        self.output = False
        self._output_changed(False)

    # ------------------------------------------------------------------------- data and buffer
    @scpi("FORMat:ELEMents[:SENSe#]", Rest(Choice(*ELEMENTS)))
    def _set_elements(self, elements: list[str]) -> None:
        self.elements = [e for e in ELEMENTS if e in elements]  # always sent in this fixed order

    @scpi("FORMat:ELEMents[:SENSe#]?")
    def _get_elements(self) -> str:
        return ",".join(e.upper()[:4] if e != "RESistance" else "RES" for e in self.elements)

    @scpi("TRACe:POINts", Num(1, 2500, integer=True))
    def _trace_points(self, n: int) -> None:
        if self.trace_control == "NEXT":
            raise ScpiError(800)
        self.trace_points = n

    @scpi("TRACe:POINts?")
    def _trace_points_query(self) -> int:
        return self.trace_points

    @scpi("TRACe:POINts:ACTual?")
    def _trace_actual(self) -> int:
        return len(self.buffer)

    @scpi("TRACe:CLEar")
    def _trace_clear(self) -> None:
        if self.trace_control == "NEXT" and self._running():
            raise ScpiError(800)
        self.buffer.clear()
        self.meas_event &= ~(BFL | BAV)

    @scpi("TRACe:FREE?")
    def _trace_free(self) -> str:
        used = len(self.buffer) * 48
        return f"{2500 * 48 - used},{used}"

    @scpi("TRACe:DATA?")
    def _trace_data(self) -> str:
        return self._format(self.buffer, buffer=True)

    # ---------------------------------------------------------------------------------- system
    @scpi("SYSTem:AZERo[:STATe]", Raw())
    def _set_autozero(self, token: str) -> None:
        word = token.upper()
        if word == "ONCE":
            self.world.clock.sleep(2 * (self.nplc / self.line_frequency + AD_OVERHEAD_S))
            return
        self.autozero = Bool().convert(token)

    @scpi("SYSTem:AZERo[:STATe]?")
    def _get_autozero(self) -> bool:
        return self.autozero

    @scpi("SYSTem:TIME:RESet")
    def _time_reset(self) -> None:
        self.time_origin_s = self.world.time_s

    @scpi("SYSTem:VERSion?")
    def _version(self) -> str:
        return "1996.0"

    @scpi("SYSTem:PRESet")
    def _preset(self) -> None:
        self.reset()

    @scpi("SYSTem:BEEPer[:IMMediate]", Num(65, 2e6, units="HZ"), Num(0, 7.9, units="S"))
    @scpi("SYSTem:BEEPer:STATe", Bool())
    @scpi("SYSTem:KEY", Num(1, 31, integer=True))
    @scpi("STATus:PRESet")
    def _accepted(self, *_args: Any) -> None:
        """Accepted; no effect on the simulation."""

    @scpi("STATus:QUEue[:NEXT]?")
    def _status_queue(self) -> str:
        return self._error_next()

    @scpi("STATus:MEASurement[:EVENt]?")
    def _meas_event(self) -> int:
        value, self.meas_event = self.meas_event, 0
        return value

    @scpi("STATus:MEASurement:CONDition?")
    def _meas_condition(self) -> int:
        full = BFL if self.trace_control == "NEVer" and len(self.buffer) >= self.trace_points else 0
        return full | (BAV if self.buffer else 0) | (CMPL if self.compliance else 0)

    @scpi("STATus:MEASurement:ENABle", Num(0, 65535, integer=True))
    def _set_meas_enable(self, value: int) -> None:
        self.meas_enable = value

    @scpi("STATus:MEASurement:ENABle?")
    def _get_meas_enable(self) -> int:
        return self.meas_enable

    def status_byte(self) -> int:
        return super().status_byte() | (1 if self.meas_event & self.meas_enable else 0)
