"""Keithley 2450 SourceMeter in SCPI mode, after the 2450 Reference Manual (2450-901-01), section 6.

What is simulated: source V or I with limits (±210 V, ±1.05 A; -222 beyond), fixed or auto ranges, sense
current or voltage with NPLC 0.01–10, output on/off, ``:READ?``/``:MEASure:<func>?``/``:FETCh?``, reading
buffers (``:TRACe:MAKE/CLEar/DELete/POINts/ACTual?/DATA?/TRIGger``, elements READ, SOUR, REL, SEC, FRAC,
TST, DATE, TIME, UNIT, SOURUNIT, STAT, SOURSTAT, FORM), the sweep trigger models
(``:SOURce:SWEep:<func>:LINear``, ``:LINear:STEP``, ``:LOG``, ``:LIST`` with ``:SOURce:LIST:<func>``) and
``:TRIGger:LOAD "SimpleLoop"``, run by ``:INITiate`` and waited for with ``*WAI``/``*OPC?``, ``:ABORt``,
``:TRIGger:STATe?``.

Physics: the instrument's terminal (its station name) is wired in the world. With the output on, the device
sees the sourced voltage (or, sourcing current, the voltage it develops); off is an open circuit. Current is
reported with the SMU sign (out of HI into the device), so a lit cell at 0 V reads −Jsc·area. A limit that
is reached turns the source into the other kind (compliance): the reading sits at the limit and the device
sees the voltage that carries it. Noise is seeded and scales with the range and 1/√NPLC.

Timing: every reading charges NPLC/line frequency (twice with source readback on, the *RST state) plus an
overhead to the world's clock; a sweep point takes the source delay stored in its configuration-list point
(auto delay by current range) + the sweep's delay block + integration + overhead, and the world advances the
device between points, so a timed sweep's scan rate and its hysteresis come from the instrument's timing
(readings and trigger-model runs are :mod:`mock_instruments.keithley2450_trigger`; *LANG, statistics,
display and status registers :mod:`mock_instruments.keithley2450_system`; this module is the rest of the
command set). Simplifications: ``*WAI``/``*OPC?`` return at once for an endless trigger model (count 0)
instead of hanging; reading status is 0, source status 1 when the source limit was reached; binary formats
are not simulated.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mock_instruments.keithley2450_system import Keithley2450System
from mock_instruments.keithley2450_trigger import (
    CURRENT_RANGES_A,
    VOLTAGE_RANGES_V,
    Keithley2450Trigger,
    Reading,
    SourcePoint,
)
from mock_instruments.scpi import Bool, Choice, Num, Opt, Rest, ScpiError, Setting, Str, scpi
from mock_instruments.smu_channel import ReadingBuffer
from mock_instruments.smu_scpi import SourceSenseRanges

READ_OVERHEAD_S = 0.5e-3  # bus command + conversion of a single :READ?
_UNITS = {"CURRent": "Amp DC", "VOLTage": "Volt DC", "RESistance": "Ohm"}
_ELEMENTS = ("READing", "SOURce", "RELative", "SEConds", "FRACtional", "TSTamp", "DATE", "TIME", "UNIT",
             "SOURUNIT", "STATus", "SOURSTATus", "FORMatted", "SOURFORMatted")


class MockKeithley2450(SourceSenseRanges, Keithley2450System, Keithley2450Trigger):
    """The simulated Keithley 2450 (options: ``serial``, ``line_frequency_Hz``,
    ``buffered_dwells``, and the base options)."""

    model = "keithley2450"
    VOLTAGE_RANGES_V = VOLTAGE_RANGES_V
    CURRENT_RANGES_A = CURRENT_RANGES_A

    source_function = Setting("SOURce#:FUNCtion[:MODE]", Choice("VOLTage", "CURRent"), "VOLTage",
                              on_change="_source_changed", check="_idle")
    source_voltage_V = Setting("SOURce#:VOLTage[:LEVel][:IMMediate][:AMPLitude]", Num(-210, 210, units="V"),
                               0.0, on_change="_source_changed", check="_check_level")
    source_current_A = Setting("SOURce#:CURRent[:LEVel][:IMMediate][:AMPLitude]", Num(-1.05, 1.05, units="A"),
                               0.0, on_change="_source_changed", check="_check_level")
    current_limit_A = Setting("SOURce#:VOLTage:ILIMit[:LEVel]", Num(1e-9, 1.05, units="A"), 1.05e-4,
                              on_change="_source_changed")
    voltage_limit_V = Setting("SOURce#:CURRent:VLIMit[:LEVel]", Num(0.02, 210, units="V"), 21.0,
                              on_change="_source_changed")
    output = Setting("OUTPut#[:STATe]", Bool(), False, on_change="_source_changed")
    sense_function = Setting("[SENSe#]:FUNCtion[:ON]", Choice("CURRent", "VOLTage", "RESistance", quoted=None),
                             "CURRent",
                             query=False, check="_idle")
    sense_count = Setting("[SENSe#]:COUNt", Num(1, 300000, integer=True), 1)
    autozero = Setting("[SENSe#]:AZERo[:STATe]", Bool(), True)
    terminals = Setting("ROUTe:TERMinals", Choice("FRONt", "REAR"), "FRONt")
    data_format = Setting("FORMat[:DATA]", Choice("ASCii", "REAL", "SReal"), "ASCii", check="_ascii_only")

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        self.line_frequency_Hz = float(options.pop("line_frequency_Hz", 60.0))
        serial = options.pop("serial", f"04{zlib.crc32(name.encode()) % 1000000:06d}")
        self.idn = f"KEITHLEY INSTRUMENTS,MODEL 2450,{serial},1.7.3c"
        super().__init__(world, name, **options)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.ranges = {"SV": 2.0, "SI": 1e-4, "MV": 2.0, "MI": 1e-4}
        self.autorange = dict.fromkeys(self.ranges, True)
        self.nplc = {"CURRENT": 1.0, "VOLTAGE": 1.0, "RESISTANCE": 1.0}
        self.delays = {"VOLTAGE": 0.0, "CURRENT": 0.0}
        self.auto_delay = {"VOLTAGE": True, "CURRENT": True}
        self.readback = {"VOLTAGE": True, "CURRENT": True}
        self.sense_flags: dict[tuple[str, str], bool] = {}  # (RSENSE|AZERO, function): 4-wire, autozero
        self.source_lists: dict[str, list[SourcePoint]] = {"VOLTAGE": [], "CURRENT": []}
        self.buffers = {"defbuffer1": ReadingBuffer(100000), "defbuffer2": ReadingBuffer(100000)}
        self.world.apply_voltage(self.name, None)

    # ------------------------------------------------------------------------------ checks, hooks
    def _check_level(self, level: float) -> None:
        key = "SV" if "VOLTAGE" in self.call.nodes else "SI"
        if not self.autorange[key] and abs(level) > 1.05 * self.ranges[key]:
            raise ScpiError(-222, f"{level:g} above the fixed {self.ranges[key]:g} source range")

    def _ascii_only(self, value: str) -> None:
        if value != "ASCii":
            raise ScpiError(-221, "binary data formats are not simulated")

    def _source_changed(self, _value: Any = None) -> None:
        self._apply_source()

    def _source_level(self, voltage: bool) -> float:
        return self.source_voltage_V if voltage else self.source_current_A

    # ---------------------------------------------------------------------------- measurement
    def _read_into(self, buffer_name: str) -> Reading:
        self._idle()
        buffer = self._buffer(buffer_name)
        reading = None
        for _ in range(self.sense_count):
            self.world.clock.sleep(self.reading_s() + READ_OVERHEAD_S)
            self.world.sync()
            reading = self._measure(self.world.time_s)
            buffer.add(reading)
        assert reading is not None
        return reading

    def _buffer(self, name: str | None) -> ReadingBuffer[Reading]:
        try:
            return self.buffers[name or "defbuffer1"]
        except KeyError:
            raise ScpiError(-224, f"no reading buffer {name!r}") from None

    @scpi("READ?", Opt(Str(), "defbuffer1"), Rest(Choice(*_ELEMENTS), 0))
    @scpi("MEASure[:CURRent][:DC]?", Opt(Str(), "defbuffer1"), Rest(Choice(*_ELEMENTS), 0))
    @scpi("MEASure:VOLTage[:DC]?", Opt(Str(), "defbuffer1"), Rest(Choice(*_ELEMENTS), 0))
    def _read(self, buffer_name: str, elements: list[str]) -> str:
        for function in ("CURRent", "VOLTage"):
            if function.upper() in self.call.nodes:
                self._idle()
                self.sense_function = function
        buffer = self._buffer(buffer_name)
        reading = self._read_into(buffer_name)
        return self._format(buffer, reading, elements or ["READing"])

    @scpi("FETCh?", Opt(Str(), "defbuffer1"), Rest(Choice(*_ELEMENTS), 0))
    def _fetch(self, buffer_name: str, elements: list[str]) -> str:
        buffer = self._buffer(buffer_name)
        if not buffer.readings:
            raise ScpiError(-221, "buffer empty")
        return self._format(buffer, buffer.readings[-1], elements or ["READing"])

    def _format(self, buffer: ReadingBuffer[Reading], reading: Reading, elements: list[str]) -> str:
        if elements == ["READing"]:
            return f"{reading.value:.7E}"
        first = buffer.readings[0].time_s if buffer.readings else reading.time_s
        stamp = datetime.fromtimestamp(reading.time_s, UTC)
        units = _UNITS[reading.sense], _UNITS[reading.source_function]
        values: dict[str, Callable[[], str]] = {
            "READing": lambda: f"{reading.value:.7E}", "SOURce": lambda: f"{reading.source:.7E}",
            "RELative": lambda: f"{reading.time_s - first:.9E}",
            "SEConds": lambda: f"{math.floor(reading.time_s):d}",
            "FRACtional": lambda: f"{reading.time_s % 1.0:.9f}", "DATE": lambda: stamp.strftime("%m/%d/%Y"),
            "TIME": lambda: stamp.strftime("%H:%M:%S.%f"),
            "TSTamp": lambda: stamp.strftime("%m/%d/%Y %H:%M:%S.%f"),
            "UNIT": lambda: units[0], "SOURUNIT": lambda: units[1], "STATus": lambda: "0",
            "SOURSTATus": lambda: str(reading.source_status),
            "FORMatted": lambda: f"{reading.value:+.6E} {units[0].split()[0]}",
            "SOURFORMatted": lambda: f"{reading.source:+.6E} {units[1].split()[0]}",
        }
        return ",".join(values[e]() for e in elements)

    @scpi("[SENSe#]:FUNCtion[:ON]?")
    def _sense_function_query(self) -> str:
        return {"CURRent": '"CURR:DC"', "VOLTage": '"VOLT:DC"', "RESistance": '"RES"'}[self.sense_function]

    @scpi("SYSTem:LFRequency?")
    def _line_frequency(self) -> int:
        return int(self.line_frequency_Hz)

    # ---------------------------------------------------------- grouped source/sense settings
    def _function(self) -> str:
        nodes = self.call.nodes
        return "VOLTAGE" if "VOLTAGE" in nodes else "RESISTANCE" if "RESISTANCE" in nodes else "CURRENT"

    @scpi("[SENSe#]:VOLTage[:DC]:NPLCycles", Num(0.01, 10, default=1.0))
    @scpi("[SENSe#]:CURRent[:DC]:NPLCycles", Num(0.01, 10, default=1.0))
    @scpi("[SENSe#]:RESistance:NPLCycles", Num(0.01, 10, default=1.0))
    def _set_nplc(self, nplc: float) -> None:
        self.nplc[self._function()] = nplc

    @scpi("[SENSe#]:VOLTage[:DC]:NPLCycles?")
    @scpi("[SENSe#]:CURRent[:DC]:NPLCycles?")
    @scpi("[SENSe#]:RESistance:NPLCycles?")
    def _get_nplc(self) -> float:
        return self.nplc[self._function()]

    @scpi("SOURce#:VOLTage:DELay", Num(0, 1e4, units="S"))
    @scpi("SOURce#:CURRent:DELay", Num(0, 1e4, units="S"))
    def _set_delay(self, delay_s: float) -> None:
        function = self._function()
        self.delays[function], self.auto_delay[function] = delay_s, False

    @scpi("SOURce#:VOLTage:DELay?")
    @scpi("SOURce#:CURRent:DELay?")
    def _get_delay(self) -> float:
        return self.delays[self._function()]

    @scpi("SOURce#:VOLTage:DELay:AUTO", Bool())
    @scpi("SOURce#:CURRent:DELay:AUTO", Bool())
    @scpi("SOURce#:VOLTage:READ:BACK", Bool())
    @scpi("SOURce#:CURRent:READ:BACK", Bool())
    def _set_source_flag(self, on: bool) -> None:
        (self.readback if "BACK" in self.call.nodes else self.auto_delay)[self._function()] = on

    @scpi("SOURce#:VOLTage:DELay:AUTO?")
    @scpi("SOURce#:CURRent:DELay:AUTO?")
    @scpi("SOURce#:VOLTage:READ:BACK?")
    @scpi("SOURce#:CURRent:READ:BACK?")
    def _get_source_flag(self) -> bool:
        return (self.readback if "BACK" in self.call.nodes else self.auto_delay)[self._function()]

    @scpi("[SENSe#]:VOLTage[:DC]:RSENse", Bool())
    @scpi("[SENSe#]:CURRent[:DC]:RSENse", Bool())
    @scpi("[SENSe#]:RESistance:RSENse", Bool())
    @scpi("[SENSe#]:VOLTage[:DC]:AZERo[:STATe]", Bool())
    @scpi("[SENSe#]:CURRent[:DC]:AZERo[:STATe]", Bool())
    def _set_sense_flag(self, on: bool) -> None:
        self.sense_flags[self._flag_key()] = on

    @scpi("[SENSe#]:VOLTage[:DC]:RSENse?")
    @scpi("[SENSe#]:CURRent[:DC]:RSENse?")
    @scpi("[SENSe#]:RESistance:RSENse?")
    @scpi("[SENSe#]:VOLTage[:DC]:AZERo[:STATe]?")
    @scpi("[SENSe#]:CURRent[:DC]:AZERo[:STATe]?")
    def _get_sense_flag(self) -> bool:
        key = self._flag_key()
        return self.sense_flags.get(key, key[0] == "AZERO")

    def _flag_key(self) -> tuple[str, str]:
        return "RSENSE" if "RSENSE" in self.call.nodes else "AZERO", self._function()

    @scpi("SYSTem:BEEPer[:IMMediate]", Num(20, 8000, units="HZ"), Num(0.001, 100, units="S"))
    @scpi("STATus:PRESet")
    @scpi("STATus:CLEar")
    @scpi("SYSTem:CLEar")
    def _accepted(self, *_args: Any) -> None:
        """Accepted and without effect on the simulation."""

    # ------------------------------------------------------------------------------- buffers
    @scpi("TRACe:MAKE", Str(), Num(10, 1e7, integer=True))
    def _make(self, name: str, size: int) -> None:
        if name in self.buffers:
            raise ScpiError(-221, f"buffer {name!r} exists")
        self.buffers[name] = ReadingBuffer(size)

    @scpi("TRACe:DELete", Str())
    def _delete(self, name: str) -> None:
        if name.startswith("defbuffer"):
            raise ScpiError(-221, "default buffers cannot be deleted")
        self._buffer(name)
        del self.buffers[name]

    @scpi("TRACe:CLEar", Opt(Str(), "defbuffer1"))
    def _clear(self, name: str) -> None:
        self._buffer(name).readings.clear()

    @scpi("TRACe:POINts", Num(1, 1e7, integer=True), Opt(Str(), "defbuffer1"))
    def _resize(self, size: int, name: str) -> None:
        buffer = self._buffer(name)
        self.buffers[name] = ReadingBuffer(size, buffer.fill)

    @scpi("TRACe:POINts?", Opt(Str(), "defbuffer1"))
    def _capacity(self, name: str) -> int:
        return self._buffer(name).capacity

    @scpi("TRACe:FILL:MODE", Choice("CONTinuous", "ONCE"), Opt(Str(), "defbuffer1"))
    def _fill_mode(self, mode: str, name: str) -> None:
        self._buffer(name).fill = mode

    @scpi("TRACe:ACTual?", Opt(Str(), "defbuffer1"))
    @scpi("TRACe:ACTual:END?", Opt(Str(), "defbuffer1"))
    def _actual(self, name: str) -> int:
        return len(self._buffer(name).readings)

    @scpi("TRACe:ACTual:STARt?", Opt(Str(), "defbuffer1"))
    def _actual_start(self, name: str) -> int:
        return 1 if self._buffer(name).readings else 0

    @scpi("TRACe:TRIGger", Opt(Str(), "defbuffer1"))
    def _trace_trigger(self, name: str) -> None:
        self._read_into(name)

    @scpi("TRACe:DATA?", Num(1, 1e7, integer=True), Num(1, 1e7, integer=True), Opt(Str(), "defbuffer1"),
          Rest(Choice(*_ELEMENTS), 0))
    def _data(self, start: int, end: int, name: str, elements: list[str]) -> str:
        buffer = self._buffer(name)
        if not start <= end <= len(buffer.readings):
            raise ScpiError(-222, f"indices {start}..{end} outside 1..{len(buffer.readings)}")
        readings = list(buffer.readings)[start - 1 : end]
        return ",".join(self._format(buffer, r, elements or ["READing"]) for r in readings)

    # ------------------------------------------------------------------------- trigger models
    _SWEEP = (Opt(Num(-1, 1e4, units="S"), -1.0), Opt(Num(0, 268435455, integer=True), 1),
              Opt(Choice("AUTO", "BEST", "FIXed"), "BEST"), Opt(Bool(), True), Opt(Bool(), False),
              Opt(Str(), "defbuffer1"))

    @scpi("SOURce#:SWEep:VOLTage:LINear", Num(-210, 210, units="V"), Num(-210, 210, units="V"),
          Num(2, 1e6, integer=True), *_SWEEP)
    @scpi("SOURce#:SWEep:CURRent:LINear", Num(-1.05, 1.05, units="A"), Num(-1.05, 1.05, units="A"),
          Num(2, 1e6, integer=True), *_SWEEP)
    @scpi("SOURce#:SWEep:VOLTage:LINear:STEP", Num(-210, 210, units="V"), Num(-210, 210, units="V"),
          Num(1e-12, 420, units="V"), *_SWEEP)
    @scpi("SOURce#:SWEep:CURRent:LINear:STEP", Num(-1.05, 1.05, units="A"), Num(-1.05, 1.05, units="A"),
          Num(1e-15, 2.1, units="A"), *_SWEEP)
    @scpi("SOURce#:SWEep:VOLTage:LOG", Num(1e-12, 210, units="V"), Num(1e-12, 210, units="V"),
          Num(2, 1e6, integer=True), *_SWEEP)
    @scpi("SOURce#:SWEep:CURRent:LOG", Num(1e-15, 1.05, units="A"), Num(1e-15, 1.05, units="A"),
          Num(2, 1e6, integer=True), *_SWEEP)
    def _sweep(self, start: float, stop: float, n: float, delay_s: float, count: int, _range_type: str,
               fail_abort: bool, dual: bool, buffer: str) -> None:
        self._idle()
        self._buffer(buffer)
        nodes = self.call.nodes
        if "STEP" in nodes:
            steps = math.floor(abs(stop - start) / n + 1e-9)
            levels = [start + math.copysign(n, stop - start) * k for k in range(steps + 1)]
        elif "LOG" in nodes:
            levels = [float(x) for x in np.geomspace(start, stop, int(n))]
        else:
            levels = [float(x) for x in np.linspace(start, stop, int(n))]
        levels = levels + levels[::-1] if dual else levels
        function = "VOLTage" if "VOLTAGE" in nodes else "CURRent"
        # the sweep command makes the configuration list from the active source settings; delay -1 is
        # auto delay in every point and no delay block (6-81)
        points = [self.source_point(function, level) for level in levels]
        if delay_s < 0:
            points = [SourcePoint(p.level, p.delay_s, True, p.readback) for p in points]
        self._load(function, points, count, max(delay_s, 0.0), fail_abort, buffer)

    @scpi("SOURce#:SWEep:VOLTage:LIST", Opt(Num(1, 1e6, integer=True), 1), Opt(Num(0, 1e4, units="S"), 0.0),
          Opt(Num(0, 268435455, integer=True), 1), Opt(Bool(), True), Opt(Str(), "defbuffer1"))
    @scpi("SOURce#:SWEep:CURRent:LIST", Opt(Num(1, 1e6, integer=True), 1), Opt(Num(0, 1e4, units="S"), 0.0),
          Opt(Num(0, 268435455, integer=True), 1), Opt(Bool(), True), Opt(Str(), "defbuffer1"))
    def _sweep_list(self, start_index: int, delay_s: float, count: int, fail_abort: bool, buffer: str
                    ) -> None:
        self._idle()
        self._buffer(buffer)
        points = self.source_lists[self._function()][start_index - 1 :]
        if not points:
            raise ScpiError(-221, "the source list is empty")
        function = "VOLTage" if "VOLTAGE" in self.call.nodes else "CURRent"
        self._load(function, points, count, delay_s, fail_abort, buffer)

    @scpi("SOURce#:LIST:VOLTage", Rest(Num(-210, 210, units="V")))
    @scpi("SOURce#:LIST:CURRent", Rest(Num(-1.05, 1.05, units="A")))
    @scpi("SOURce#:LIST:VOLTage:APPend", Rest(Num(-210, 210, units="V")))
    @scpi("SOURce#:LIST:CURRent:APPend", Rest(Num(-1.05, 1.05, units="A")))
    def _source_list(self, values: list[float]) -> None:
        """The source configuration list Volt/CurrCustomSweepList: each value becomes a point that keeps the
        source settings active now (delay, auto delay, readback), 6-78."""
        function = self._function()
        if "APPEND" not in self.call.nodes:
            self.source_lists[function] = []
        if len(self.source_lists[function]) + len(values) > 2500 or len(values) > 100:
            raise ScpiError(-222, "a source list holds 2500 values, set at most 100 at a time")
        self.source_lists[function].extend(self.source_point(function, v) for v in values)

    @scpi("SOURce#:LIST:VOLTage?")
    @scpi("SOURce#:LIST:CURRent?")
    def _source_list_query(self) -> str:
        return ",".join(f"{p.level:.6E}" for p in self.source_lists[self._function()])

    @scpi("SOURce#:LIST:VOLTage:POINts?")
    @scpi("SOURce#:LIST:CURRent:POINts?")
    def _source_list_points(self) -> int:
        return len(self.source_lists[self._function()])

    @scpi("TRIGger:LOAD", Str(quoted=False), Opt(Num(0, 268435455, integer=True), 1),
          Opt(Num(0, 1e4, units="S"), 0.0), Opt(Str(), "defbuffer1"))
    def _trigger_load(self, name: str, count: int, delay_s: float, buffer: str) -> None:
        self._idle()
        if name.upper() == "EMPTY":
            self.trigger_model = None
        elif name.upper() == "SIMPLELOOP":  # no source block: the source stays as it is
            self._buffer(buffer)
            self._load(self.source_function, [], count, delay_s, False, buffer)
        else:
            raise ScpiError(-224, f"trigger model template {name!r} is not simulated")
