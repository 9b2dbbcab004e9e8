"""Keysight (Agilent) B2902A Precision SMU, after the B2900 SCPI Command Reference (B2910-90030), chapter 4
"Subsystem Commands", and the B2900 User's Guide, chapter 6 "Trigger system" (ARM-TRIGger model with
independent transient (source) and acquire (measure) actions). Channel ``c`` is the numeric suffix (1 or 2;
-114 otherwise) or the ``(@1,2)`` channel list; channel ``c`` is the world terminal ``"<name>:<c>"``.

Commands: ``OUTPut[c][:STATe]``, ``OUTPut[c]:OFF:MODE``; ``SOURce[c]:FUNCtion:MODE``,
``SOURce[c]:VOLTage|CURRent[:LEVel][:IMMediate][:AMPLitude]``, ``:MODE FIXed|LIST|SWEep``, ``:RANGe[:AUTO]``,
``:STARt/STOP/POINts``, ``SOURce[c]:LIST:VOLTage|CURRent[:APPend|:POINts?]``; ``[SENSe[c]]:FUNCtion[:ON]/
:OFF/:ALL``, ``[SENSe[c]]:CURRent|VOLTage[:DC]:PROTection[:LEVel][:TRIPped?]``, ``:NPLCycles``, ``:APERture``
(shared by all functions), ``:RANGe[:UPPer][:AUTO]``, ``[SENSe[c]]:REMote``; ``ARM[c][:ALL|:ACQ|:TRAN]:COUNt/
SOURce/TIMer/DELay``, ``TRIGger[c][:ALL|:ACQ|:TRAN]:COUNt/SOURce/TIMer/DELay`` (sources AINT, BUS, TIMer),
``INITiate[:IMMediate][:ALL|:ACQuire|:TRANsient] [(@list)]``, ``ABORt[...]``, ``*TRG``; ``MEASure[:<func>]?``,
``READ[:SCALar]?``, ``READ:ARRay?``, ``FETCh[:SCALar][:<func>]?``, ``FETCh:ARRay[:<func>]?`` (func VOLTage,
CURRent, RESistance, TIME, STATus, SOURce); ``FORMat:ELEMents:SENSe``, ``FORMat[:DATA]``; ``TRACe[c]:FEED``,
``:FEED:CONTrol``, ``:POINts[:ACTual?]``, ``:CLEar``, ``:DATA?``, ``:TSTamp:FORMat``; ``SYSTem:LFRequency``,
``SYSTem:TIME:TIMer:COUNt[:RESet]``, the error queue (``+0,"No error"``); ``[SENSe[c]]:WAIT`` and
``SOURce[c]:WAIT`` (``[:STATe]``, ``:AUTO``, ``:GAIN``, ``:OFFSet``), ``SOURce[c]:FUNCtion:TRIGgered:CONTinuous``
(output after sweep).

Timing: a spot measurement charges aperture (NPLC / line frequency) + 0.5 ms. In a triggered run each
transient trigger sets the next list level after the transient delay and each acquire trigger starts a
measurement after the acquire delay (:mod:`mock_instruments.keysight_b2900_channels`: the channels and their
triggered runs; this module is the rest of the command set). Readings are world events stamped at the start
of the aperture. Not simulated: pulse mode, math, limit tests, digital I/O, LAN/EXT/INT triggers (they never
arrive; a query that would wait for them reports -214), binary formats, output filter, high-capacitance mode.
"""

from __future__ import annotations

import zlib
from typing import Any

from mock_instruments.keysight_b2900_channels import (
    CH,
    CURRENT_RANGES_A,
    VOLTAGE_RANGES_V,
    KeysightB2900Channels,
    Reading,
    Wait,
)
from mock_instruments.scpi import Bool, Choice, Num, Opt, Rest, ScpiError, Str, scpi, stack
from mock_instruments.smu_channel import NAN, fit_range
from mock_instruments.smu_scpi import range_key

SPOT_OVERHEAD_S = 5e-4
APERTURE_RANGE_S = (8e-6, 2.0)
ELEMENTS = ("VOLTage", "CURRent", "RESistance", "TIME", "STATus", "SOURce")


def sense_source(suffix: str, *params: Any) -> list[str]:
    return [f"{head}{suffix}" for head in ("[SENSe#2]:CURRent[:DC]", "[SENSe#2]:VOLTage[:DC]")] + [
        f"SOURce#2:{f}{suffix}" for f in ("CURRent", "VOLTage")]


class MockKeysightB2900(KeysightB2900Channels):
    """The simulated B2902A (options: ``serial``, ``line_frequency_Hz``, ``channels`` (2), ``buffered_dwells``,
    base options)."""

    model = "keysight_b2900"
    error_queue_size = 30

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        self.line_frequency = float(options.pop("line_frequency_Hz", 60.0))
        self.n_channels = int(options.pop("channels", 2))
        serial = options.pop("serial", f"MY5{zlib.crc32(name.encode()) % 10000000:07d}")
        self.idn = f"Keysight Technologies,B290{self.n_channels}A,{serial},3.4.2011.5100"
        super().__init__(world, name, **options)
        self.timer_origin_s = world.clock.now()
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.elements = list(ELEMENTS)
        for c in self.channels:
            self.world.apply_voltage(self.terminal(c), None)

    def format_error(self, code: int, detail: str) -> str:
        text = {-214: "Trigger deadlock", -213: "Init ignored"}.get(code)
        if text is None:
            return super().format_error(code, detail).replace(f"{code},", f"{code:+d},", 1)
        return f'{code:+d},"{text}"'

    # --------------------------------------------------------------------------------- source
    @scpi("OUTPut#2[:STATe]", Bool())
    def _output(self, on: bool) -> None:
        c = self._ch()[0]
        self.channels[c].output = on
        self.channels[c].held = None
        if not on:
            self._abort_channel(self.channels[c])
        self._apply(c)

    @scpi("OUTPut#2[:STATe]?")
    def _output_query(self) -> bool:
        return self._one().output

    @scpi("OUTPut#2:OFF:MODE", Choice("ZERO", "HIZ", "NORMal"))
    def _off_mode(self, mode: str) -> None:
        self._one().off_mode = mode

    @scpi("SOURce#2:FUNCtion:MODE", Choice("VOLTage", "CURRent"))
    def _source_function(self, function: str) -> None:
        channel = self._one()
        self._idle(channel)
        channel.function, channel.held = function, None
        self._apply(self._ch()[0])

    @scpi("SOURce#2:FUNCtion:MODE?")
    def _source_function_query(self) -> str:
        return self._one().function[:4].upper()

    @scpi("SOURce#2:VOLTage[:LEVel][:IMMediate][:AMPLitude]", Num(-210, 210, units="V"))
    @scpi("SOURce#2:CURRent[:LEVel][:IMMediate][:AMPLitude]", Num(-3.03, 3.03, units="A"))
    def _level(self, value: float) -> None:
        channel, function = self._one(), self._function()
        key = "SV" if function == "VOLTage" else "SI"
        if not channel.auto[key] and abs(value) > 1.05 * channel.ranges[key]:
            raise ScpiError(-222, f"{value:g} above the fixed {channel.ranges[key]:g} range")
        channel.level[function] = value
        if channel.run is None and function == channel.function:
            channel.held = None
            self._apply(self._ch()[0])

    @scpi("SOURce#2:VOLTage[:LEVel][:IMMediate][:AMPLitude]?")
    @scpi("SOURce#2:CURRent[:LEVel][:IMMediate][:AMPLitude]?")
    def _level_query(self) -> float:
        return self._one().level[self._function()]

    @scpi("SOURce#2:VOLTage:MODE", Choice("FIXed", "LIST", "SWEep"))
    @scpi("SOURce#2:CURRent:MODE", Choice("FIXed", "LIST", "SWEep"))
    def _mode(self, mode: str) -> None:
        channel = self._one()
        self._idle(channel)
        channel.mode[self._function()] = mode

    @scpi("SOURce#2:VOLTage:MODE?")
    @scpi("SOURce#2:CURRent:MODE?")
    def _mode_query(self) -> str:
        return self._one().mode[self._function()][:4].upper().rstrip("E")

    @scpi("SOURce#2:LIST:VOLTage", Rest(Num(-210, 210, units="V")))
    @scpi("SOURce#2:LIST:CURRent", Rest(Num(-3.03, 3.03, units="A")))
    @scpi("SOURce#2:LIST:VOLTage:APPend", Rest(Num(-210, 210, units="V")))
    @scpi("SOURce#2:LIST:CURRent:APPend", Rest(Num(-3.03, 3.03, units="A")))
    def _list(self, values: list[float]) -> None:
        channel, function = self._one(), self._function()
        self._idle(channel)
        current = channel.lists[function] if "APPEND" in self.call.nodes else []
        if len(current) + len(values) > 100000:
            raise ScpiError(-223, "a list holds 100000 points")
        channel.lists[function] = current + values

    @scpi("SOURce#2:LIST:VOLTage?")
    @scpi("SOURce#2:LIST:CURRent?")
    def _list_query(self) -> str:
        return ",".join(f"{v:+.6E}" for v in self._one().lists[self._function()])

    @scpi("SOURce#2:LIST:VOLTage:POINts?")
    @scpi("SOURce#2:LIST:CURRent:POINts?")
    def _list_points(self) -> int:
        return len(self._one().lists[self._function()])

    @scpi("SOURce#2:VOLTage:STARt", Num(-210, 210, units="V"))
    @scpi("SOURce#2:VOLTage:STOP", Num(-210, 210, units="V"))
    @scpi("SOURce#2:CURRent:STARt", Num(-3.03, 3.03, units="A"))
    @scpi("SOURce#2:CURRent:STOP", Num(-3.03, 3.03, units="A"))
    @scpi("SOURce#2:SWEep:POINts", Num(1, 100000, integer=True))
    def _sweep_setting(self, value: float) -> None:
        key = "STAR" if "START" in self.call.nodes else "STOP" if "STOP" in self.call.nodes else "POIN"
        self._one().sweep[key] = value

    # ------------------------------------------------------------------- waits, output after sweep
    @scpi("[SENSe#2]:WAIT[:STATe]", Bool())
    @scpi("SOURce#2:WAIT[:STATe]", Bool())
    @scpi("[SENSe#2]:WAIT:AUTO", Bool())
    @scpi("SOURce#2:WAIT:AUTO", Bool())
    def _set_wait_flag(self, on: bool) -> None:
        wait = self._wait()
        if "AUTO" in self.call.nodes:
            wait.auto = on
        else:
            wait.state = on

    @scpi("[SENSe#2]:WAIT[:STATe]?")
    @scpi("SOURce#2:WAIT[:STATe]?")
    @scpi("[SENSe#2]:WAIT:AUTO?")
    @scpi("SOURce#2:WAIT:AUTO?")
    def _wait_flag(self) -> bool:
        wait = self._wait()
        return wait.auto if "AUTO" in self.call.nodes else wait.state

    @scpi("[SENSe#2]:WAIT:GAIN", Num(0, 100, default=1.0))
    @scpi("SOURce#2:WAIT:GAIN", Num(0, 100, default=1.0))
    @scpi("[SENSe#2]:WAIT:OFFSet", Num(0, 1, default=0.0, units="S"))
    @scpi("SOURce#2:WAIT:OFFSet", Num(0, 1, default=0.0, units="S"))
    def _set_wait_value(self, value: float) -> None:
        wait = self._wait()
        if "GAIN" in self.call.nodes:
            wait.gain = value
        else:
            wait.offset_s = value

    @scpi("[SENSe#2]:WAIT:GAIN?")
    @scpi("SOURce#2:WAIT:GAIN?")
    @scpi("[SENSe#2]:WAIT:OFFSet?")
    @scpi("SOURce#2:WAIT:OFFSet?")
    def _wait_value(self) -> float:
        wait = self._wait()
        return wait.gain if "GAIN" in self.call.nodes else wait.offset_s

    def _wait(self) -> Wait:
        return self._one().waits["SOURCE" if "SOURCE" in self.call.nodes else "SENSE"]

    @scpi("SOURce#2:FUNCtion:TRIGgered:CONTinuous", Bool())
    def _set_keep_after_sweep(self, on: bool) -> None:
        self._one().keep_after_sweep = on

    @scpi("SOURce#2:FUNCtion:TRIGgered:CONTinuous?")
    def _keep_after_sweep(self) -> bool:
        return self._one().keep_after_sweep

    # ---------------------------------------------------------------------------------- sense
    def _names(self, names: list[str]) -> set[str]:
        out = set()
        for name in names:
            key = name.upper().removesuffix(":DC")
            if key not in ("VOLT", "VOLTAGE", "CURR", "CURRENT", "RES", "RESISTANCE"):
                raise ScpiError(-224, f"no measurement function {name!r}")
            out.add(key[:4] if key[:3] != "RES" else "RES")
        return out

    @scpi("[SENSe#2]:FUNCtion[:ON]", Rest(Str()))
    def _functions_on(self, names: list[str]) -> None:
        self._one().functions |= self._names(names)

    @scpi("[SENSe#2]:FUNCtion:OFF", Rest(Str()))
    def _functions_off(self, names: list[str]) -> None:
        self._one().functions -= self._names(names)

    @scpi("[SENSe#2]:FUNCtion[:ON]:ALL")
    @scpi("[SENSe#2]:FUNCtion:OFF:ALL")
    def _functions_all(self) -> None:
        self._one().functions = set() if "OFF" in self.call.nodes else {"VOLT", "CURR", "RES"}

    @scpi("[SENSe#2]:FUNCtion[:ON]?")
    def _functions_query(self) -> str:
        on = self._one().functions
        return ",".join(f'"{f}"' for f in ("VOLT", "CURR", "RES") if f in on) or '""'

    @scpi("[SENSe#2]:CURRent[:DC]:PROTection[:LEVel][:BOTH]", Num(1e-9, 3.03, units="A"))
    @scpi("[SENSe#2]:VOLTage[:DC]:PROTection[:LEVel][:BOTH]", Num(2e-4, 210, units="V"))
    def _protection(self, value: float) -> None:
        self._one().protection[self._function()] = value
        if self._one().run is None:
            self._apply(self._ch()[0])

    @scpi("[SENSe#2]:CURRent[:DC]:PROTection[:LEVel][:BOTH]?")
    @scpi("[SENSe#2]:VOLTage[:DC]:PROTection[:LEVel][:BOTH]?")
    def _protection_query(self) -> float:
        return self._one().protection[self._function()]

    @scpi("[SENSe#2]:CURRent[:DC]:PROTection:TRIPped?")
    @scpi("[SENSe#2]:VOLTage[:DC]:PROTection:TRIPped?")
    def _tripped(self) -> bool:
        channel = self._one()
        return channel.compliance and (channel.function == "VOLTage") == (self._function() == "CURRent")

    @scpi("[SENSe#2]:CURRent[:DC]:NPLCycles", Num(4e-4, 120, default=1.0))
    @scpi("[SENSe#2]:VOLTage[:DC]:NPLCycles", Num(4e-4, 120, default=1.0))
    @scpi("[SENSe#2]:RESistance:NPLCycles", Num(4e-4, 120, default=1.0))
    @scpi("[SENSe#2]:CURRent[:DC]:APERture", Num(*APERTURE_RANGE_S, units="S"))
    @scpi("[SENSe#2]:VOLTage[:DC]:APERture", Num(*APERTURE_RANGE_S, units="S"))
    @scpi("[SENSe#2]:RESistance:APERture", Num(*APERTURE_RANGE_S, units="S"))
    def _integration(self, value: float) -> None:
        nplc = value * self.line_frequency if "APERTURE" in self.call.nodes else value
        # the aperture is 8 µs to 2 s: 4e-4 to 100 PLC at 50 Hz, 4.8e-4 to 120 PLC at 60 Hz
        low, high = APERTURE_RANGE_S[0] * self.line_frequency, APERTURE_RANGE_S[1] * self.line_frequency
        if not low * (1 - 1e-9) <= nplc <= high * (1 + 1e-9):
            raise ScpiError(-222, f"{nplc:g} PLC outside the range at {self.line_frequency:g} Hz")
        self._one().nplc = nplc

    @stack([f"[SENSe#2]:{f}:{n}?" for f in ("CURRent[:DC]", "VOLTage[:DC]", "RESistance")
            for n in ("NPLCycles", "APERture")])
    def _integration_query(self) -> float:
        channel = self._one()
        return self.aperture_s(channel) if "APERTURE" in self.call.nodes else channel.nplc

    @scpi("[SENSe#2]:CURRent[:DC]:RANGe[:UPPer]", Num(-3.03, 3.03, units="A"))
    @scpi("[SENSe#2]:VOLTage[:DC]:RANGe[:UPPer]", Num(-210, 210, units="V"))
    @scpi("SOURce#2:CURRent:RANGe", Num(-3.03, 3.03, units="A"))
    @scpi("SOURce#2:VOLTage:RANGe", Num(-210, 210, units="V"))
    def _range(self, value: float) -> None:
        key, channel = range_key(self.call.nodes), self._one()
        channel.ranges[key] = fit_range(value, VOLTAGE_RANGES_V if key[1] == "V" else CURRENT_RANGES_A)
        channel.auto[key] = False

    @stack([*sense_source(":RANGe[:UPPer]?")[:2], *sense_source(":RANGe?")[2:]])
    def _range_query(self) -> float:
        return self._one().ranges[range_key(self.call.nodes)]

    @stack(sense_source(":RANGe:AUTO"), Bool())
    def _auto(self, on: bool) -> None:
        self._one().auto[range_key(self.call.nodes)] = on

    @stack(sense_source(":RANGe:AUTO?"))
    def _auto_query(self) -> bool:
        return self._one().auto[range_key(self.call.nodes)]

    @scpi("[SENSe#2]:REMote", Bool())
    def _remote(self, on: bool) -> None:
        self._one().remote = on

    @scpi("[SENSe#2]:REMote?")
    def _remote_query(self) -> bool:
        return self._one().remote

    # ------------------------------------------------------------------------------- readings
    def _spot(self, c: int) -> Reading:
        channel = self.channels[c]
        if channel.run is not None:
            raise ScpiError(-213, "the channel runs a triggered sequence")
        self.world.clock.sleep(self.aperture_s(channel) + SPOT_OVERHEAD_S)
        self.world.sync()
        reading = self._measure(c, self.world.time_s)
        channel.acquired = [reading]
        return reading

    def _elements(self) -> list[str]:
        node = next((n for n in self.call.nodes if n in ("VOLTAGE", "CURRENT", "RESISTANCE", "TIME", "STATUS",
                                                           "SOURCE")), None)
        return [e for e in ELEMENTS if e.upper() == node] if node else self.elements

    def _format(self, readings: list[Reading], elements: list[str], c: int) -> str:
        channel = self.channels[c]
        out = []
        for k, r in enumerate(readings):
            for e in elements:
                if e == "TIME" and readings is channel.trace.readings and channel.trace_stamp == "DELTa":
                    out.append(f"{r.time_s - readings[max(k - 1, 0)].time_s:+.6E}")
                else:
                    value = r.value(e, self.timer_origin_s)
                    out.append(f"{value:+.6E}" if e not in ("VOLTage", "CURRent") or self._on(c, e) else
                               f"{NAN:+.6E}")
        return ",".join(out)

    def _on(self, c: int, element: str) -> bool:
        channel = self.channels[c]
        sourced = (element == "VOLTage") == (channel.function == "VOLTage")
        return sourced or element[:4].upper() in channel.functions

    @scpi("MEASure?", CH)
    @scpi("MEASure:VOLTage[:DC]?", CH)
    @scpi("MEASure:CURRent[:DC]?", CH)
    @scpi("MEASure:RESistance?", CH)
    def _measure_query(self, channels: list[str] | None) -> str:
        elements = self._elements()
        return ",".join(self._format([self._spot(c)], elements, c) for c in self._ch(channels or ["1"]))

    @scpi("READ[:SCALar]?", CH)
    @scpi("READ:ARRay?", CH)
    @scpi("FETCh[:SCALar]?", CH)
    @scpi("FETCh:ARRay?", CH)
    @stack([f"FETCh{form}:{element}?" for form in ("[:SCALar]", ":ARRay") for element in ELEMENTS], CH)
    def _fetch(self, channels: list[str] | None) -> str:
        elements, nodes = self._elements(), self.call.nodes
        numbers = self._ch(channels or ["1"])
        if "READ" in nodes:
            for c in numbers:
                if self.channels[c].arm["ACQ"].source not in ("AINT", "TIMer") or \
                        self.channels[c].trigger["ACQ"].source not in ("AINT", "TIMer"):
                    raise ScpiError(-214)
                self._start(c)
            self.wait_pending()
        out = []
        for c in numbers:
            readings = self.channels[c].acquired
            if not readings:
                raise ScpiError(-230, "no data")
            out.append(self._format(readings if "ARRAY" in nodes else readings[-1:], elements, c))
        return ",".join(out)

    @scpi("FORMat:ELEMents:SENSe", Rest(Choice(*ELEMENTS)))
    def _set_elements(self, elements: list[str]) -> None:
        self.elements = elements

    @scpi("FORMat:ELEMents:SENSe?")
    def _elements_query(self) -> str:
        return ",".join(e.upper()[:4] if e != "RESistance" else "RES" for e in self.elements)

    @scpi("FORMat[:DATA]", Choice("ASCii", "REAL"), Opt(Num(32, 64, integer=True), 64))
    def _data_format(self, kind: str, _bits: int) -> None:
        if kind != "ASCii":
            raise ScpiError(-221, "binary data formats are not simulated")

    # ----------------------------------------------------------------------------------- trace
    @scpi("TRACe#2:FEED", Choice("SENSe", "MATH", "LIMit"))
    def _feed(self, feed: str) -> None:
        self._one().trace_feed = feed

    @scpi("TRACe#2:FEED:CONTrol", Choice("NEVer", "NEXT"))
    def _feed_control(self, control: str) -> None:
        self._one().trace.control = control

    @scpi("TRACe#2:FEED:CONTrol?")
    def _feed_control_query(self) -> str:
        return self._one().trace.control[:4].upper().rstrip("E") if self._one().trace.control == "NEVer" \
            else "NEXT"

    @scpi("TRACe#2:POINts", Num(1, 100000, integer=True))
    def _trace_points(self, n: int) -> None:
        channel = self._one()
        if channel.trace.control == "NEXT":
            raise ScpiError(-221, "the trace buffer is collecting")
        channel.trace.points = n

    @scpi("TRACe#2:POINts?")
    def _trace_points_query(self) -> int:
        return self._one().trace.points

    @scpi("TRACe#2:POINts:ACTual?")
    def _trace_actual(self) -> int:
        return len(self._one().trace.readings)

    @scpi("TRACe#2:CLEar")
    def _trace_clear(self) -> None:
        self._one().trace.readings.clear()

    @scpi("TRACe#2:TSTamp:FORMat", Choice("ABSolute", "DELTa"))
    def _trace_stamp(self, stamp: str) -> None:
        self._one().trace_stamp = stamp

    @scpi("TRACe#2:DATA?", Opt(Num(0, 99999, integer=True), 0), Opt(Num(1, 100000, integer=True), None))
    def _trace_data(self, offset: int, size: int | None) -> str:
        c = self._ch()[0]
        trace = self.channels[c].trace.readings
        if offset > len(trace):
            raise ScpiError(-222, "offset beyond the data")
        chosen = trace[offset:] if size is None else trace[offset:offset + size]
        return self._format(chosen if chosen else [], self.elements, c) if chosen else ""

    # ---------------------------------------------------------------------------------- system
    @scpi("SYSTem:LFRequency", Num(50, 60, integer=True))
    def _set_lfr(self, value: int) -> None:
        if value not in (50, 60):
            raise ScpiError(-222, "50 or 60 Hz")
        self.line_frequency = float(value)

    @scpi("SYSTem:LFRequency?")
    def _lfr(self) -> int:
        return int(self.line_frequency)

    @scpi("SYSTem:TIME:TIMer:COUNt?")
    def _timer_count(self) -> float:
        return self.world.time_s - self.timer_origin_s

    @scpi("SYSTem:TIME:TIMer:COUNt:RESet")
    def _timer_reset(self) -> None:
        self.timer_origin_s = self.world.time_s

    @scpi("SYSTem:BEEPer[:IMMediate]", Num(55, 6640, units="HZ"), Num(0.05, 12.75, units="S"))
    @scpi("SYSTem:BEEPer:STATe", Bool())
    def _accepted(self, *_args: Any) -> None:
        """Accepted; no effect on the simulation."""
