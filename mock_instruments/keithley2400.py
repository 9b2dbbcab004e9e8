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
``DISPlay:ENABle/DIGits``; ``*OPT?``, ``*SAV``/``*RCL``, trigger-link lines and output triggers, resistance
settings, ``CALCulate3`` buffer statistics and the operation/questionable registers are
:mod:`mock_instruments.keithley2400_lines`.

Timing (appendix A) and the trigger model are :mod:`mock_instruments.keithley2400_sdm`: every source-delay-
measure cycle is a world event, so a list sweep's scan rate and the device's hysteresis come from the
manual's cycle times. This module is the command set.

Not simulated: source memory sweeps, pulse mode, limit tests (CALC2), math (CALC1), binary data formats,
filters (accepted, status bit only), digital I/O; TLINk/MANual/test-start triggers never arrive (a
``READ?`` that would wait for them reports -214 Trigger deadlock).
"""

from __future__ import annotations

import math
import zlib
from typing import Any

from mock_instruments.keithley2400_lines import Keithley2400Lines
from mock_instruments.keithley2400_sdm import (
    AD_OVERHEAD_S,
    BAV,
    BFL,
    CMPL,
    CURRENT_RANGES_A,
    VOLTAGE_RANGES_V,
    Keithley2400Sdm,
    Reading,
)
from mock_instruments.scpi import Bool, Choice, Num, Raw, Rest, ScpiError, Setting, Str, scpi, short_form
from mock_instruments.smu_channel import Trace
from mock_instruments.smu_scpi import SourceSenseRanges

FUNCTIONS = {"VOLT": "VOLT", "VOLTAGE": "VOLT", "CURR": "CURR", "CURRENT": "CURR", "RES": "RES",
             "RESISTANCE": "RES"}
ELEMENTS = ("VOLTage", "CURRent", "RESistance", "TIME", "STATus")
#: Appendix B "Status and Error Messages": the 2400's own texts; an entry carries no device detail (a
#: client that splits ``SYST:ERR?`` at commas, as pymeasure's does, reads exactly code and text).
ERROR_TEXTS = {-100: "Command error", -101: "Invalid character", -102: "Syntax error", -104: "Data type error",
               -108: "Parameter not allowed", -109: "Missing parameter", -113: "Undefined header",
               -114: "Header suffix out of range", -131: "Invalid suffix", -138: "Suffix not allowed",
               -200: "Execution error", -213: "Init ignored", -214: "Trigger deadlock",
               -221: "Settings conflict", -222: "Parameter data out of range", -223: "Too much data",
               -224: "Illegal parameter value", -230: "Data corrupt or stale", -350: "Queue overflow",
               -410: "Query interrupted", -420: "Query unterminated", 800: "Illegal with storage active",
               803: "Not permitted with OUTPUT off", 830: "Invalid with INF ARM:COUNT"}


class MockKeithley2400(SourceSenseRanges, Keithley2400Lines, Keithley2400Sdm):
    """The simulated Keithley 2400 (options: ``serial``, ``line_frequency_Hz``,
    ``buffered_dwells``, and the base options)."""

    model = "keithley2400"
    VOLTAGE_RANGES_V = VOLTAGE_RANGES_V
    CURRENT_RANGES_A = CURRENT_RANGES_A

    # the ARM and TRIGger layer settings are declared with the trigger model (keithley2400_sdm.py)
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
    # 18-82: 0 to 999.9999 s (section 10's "9999.999" is not what the command takes)
    delay_s = Setting("SOURce#:DELay", Num(0, 999.9999, units="S"), 0.0, on_change="_manual_delay")
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
    data_format = Setting("FORMat[:DATA]", Choice("ASCii", "REAL", "SREal"), "ASCii", check="_ascii_only")
    register_format = Setting("FORMat:SREGister", Choice("ASCii", "HEXadecimal", "OCTal", "BINary"), "ASCii")
    trace_feed = Setting("TRACe:FEED", Choice("SENSe", "CALCulate", "CALCulate2"), "SENSe")
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
        super().reset()
        self.line_frequency = self.lfr_option
        self.functions = {"CURR"}
        self.elements = list(ELEMENTS)
        self.autozero = True
        self.ranges = {"SV": 2.0, "SI": 1e-4, "MV": 20.0, "MI": 1e-4}
        self.autorange = {"SV": True, "SI": True, "MV": True, "MI": True}
        self.nplc = 1.0
        self.lists: dict[str, list[float]] = {"VOLTage": [], "CURRent": []}
        self.sweep: dict[str, dict[str, float]] = {"VOLTage": {"STAR": 0.0, "STOP": 0.0},
                                                   "CURRent": {"STAR": 0.0, "STOP": 0.0}}
        self.trace = Trace(100)
        self.meas_event = self.meas_enable = 0
        self.compliance = False
        self.fresh_level = True
        self.world.apply_voltage(self.name, None)

    def _source_level(self, voltage: bool) -> float:
        return self.voltage_V if voltage else self.current_A

    # ----------------------------------------------------------------------------- checks, hooks
    def format_error(self, code: int, detail: str) -> str:
        if code == 0:
            return '0,"No error"'
        return f'{code:+d},"{ERROR_TEXTS.get(code, "Device-specific error")}"'


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
        """18-78: the amplitude command updates a *fixed* source immediately; in list or sweep mode it only
        programs the bias level the output returns to after the sweep (section 10)."""
        self.fresh_level = True
        if self.output and not self._running() and ("FUNCTION" in self.call.nodes or self._mode() == "FIXed"):
            self._apply(self._fixed_level())

    def _manual_delay(self, _value: float) -> None:
        self.auto_delay = False

    def _output_changed(self, on: bool) -> None:
        self.fresh_level = True
        if not on and self.run is not None:  # the output relay opening ends a running sweep
            self._abort()
        self._apply(self._fixed_level() if on else None)

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

    @scpi("TRACe:FEED:CONTrol", Choice("NEXT", "NEVer"))
    def _trace_control(self, control: str) -> None:
        self.trace.control = control

    @scpi("TRACe:FEED:CONTrol?")
    def _trace_control_query(self) -> str:
        return short_form(self.trace.control)

    @scpi("TRACe:POINts", Num(1, 2500, integer=True))
    def _trace_points(self, n: int) -> None:
        if self.trace.control == "NEXT":
            raise ScpiError(800)
        self.trace.points = n

    @scpi("TRACe:POINts?")
    def _trace_points_query(self) -> int:
        return self.trace.points

    @scpi("TRACe:POINts:ACTual?")
    def _trace_actual(self) -> int:
        return len(self.trace.readings)

    @scpi("TRACe:CLEar")
    def _trace_clear(self) -> None:
        if self.trace.control == "NEXT" and self._running():
            raise ScpiError(800)
        self.trace.readings.clear()
        self.meas_event &= ~(BFL | BAV)

    @scpi("TRACe:FREE?")
    def _trace_free(self) -> str:
        used = len(self.trace.readings) * 48
        return f"{2500 * 48 - used},{used}"

    @scpi("TRACe:DATA?")
    def _trace_data(self) -> str:
        return self._format(self.trace.readings, buffer=True)

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
        full = BFL if self.trace.control == "NEVer" and self.trace.full else 0
        return full | (BAV if self.trace.readings else 0) | (CMPL if self.compliance else 0)

    @scpi("STATus:MEASurement:ENABle", Num(0, 65535, integer=True))
    def _set_meas_enable(self, value: int) -> None:
        self.meas_enable = value

    @scpi("STATus:MEASurement:ENABle?")
    def _get_meas_enable(self) -> int:
        return self.meas_enable

    def status_byte(self) -> int:
        """Section 15: MSB (bit 0, an enabled measurement event), EAV, ESB; MSS (bit 6) summarises the bits
        the service request enable register selects, MSB included."""
        stb = (super().status_byte() & ~64) | (1 if self.meas_event & self.meas_enable else 0)
        return stb | (64 if stb & self.sre else 0)
