"""Keysight (Agilent) E4980A precision LCR meter, after the E4980A/AL User's Guide: chapter "SCPI Command
Reference" and chapter 8 "Overview of Remote Control" (trigger system, data buffer memory, data formats).

Simulated: ``:FREQuency[:CW]`` (20 Hz–2 MHz), ``:VOLTage[:LEVel]`` and ``:CURRent[:LEVel]`` (test signal
level; above 2 Vrms / 20 mA only with option 001), ``:BIAS:VOLTage[:LEVel]`` and ``:BIAS:STATe`` (internal
DC bias, ±40 V with option 001, 0/1.5/2 V without), ``:FUNCtion:IMPedance[:TYPE]`` (all 23 functions),
``:APERture {SHORt|MEDium|LONG}[,<averages 1-256>]``, ``:TRIGger:SOURce {INT|EXT|BUS|HOLD}``,
``:TRIGger[:IMMediate]``, ``*TRG`` (bus trigger that returns the result), ``:TRIGger:DELay`` and
``:TRIGger:TDELay`` (0–999 s), ``:INITiate[:IMMediate]``, ``:INITiate:CONTinuous``, ``:ABORt``,
``:FETCh[:IMPedance][:FORMatted]?``, ``:FETCh:IMPedance:CORRected?`` (R, X), list sweep (``:LIST:FREQuency``,
``:LIST:VOLTage``, ``:LIST:BIAS:VOLTage`` with up to 201 points, ``:LIST:CLEar:ALL``, ``:LIST:MODE
{SEQ|STEP}``, run on ``:DISPlay:PAGE LIST``), the data buffer memory (``:MEMory:DIMension DBUF,<1-201>``,
``:MEMory:FILL DBUF``, ``:MEMory:READ? DBUF``, ``:MEMory:CLEar DBUF``), ``:FORMat[:DATA] ASCii``,
``:FORMat:ASCii:LONG``, ``*OPT?``, ``:SYSTem:PRESet``, the SCPI error queue (-211 Trigger ignored, -213 Init
ignored, -223 more than 201 list points, -230 a fetch without data). Numeric settings are answered in the
meter's NR3 form with sign and six digits (``+1.00000E+03``, as labctl's and pymeasure's drivers read them).

Trigger system: Idle -> (``:INIT`` or ``:INIT:CONT ON``) -> Wait For Trigger -> (trigger: INT at once,
``:TRIG:IMM`` whatever the source, ``*TRG`` with source BUS) -> Measurement -> back to waiting
(continuous) or idle. A measurement cycle is the spot measurement (MEAS, BNUM, BCO, MLAR pages) or, on the
LIST page, the whole list (SEQ) or its next point (STEP): trigger delay, then each point takes the
measurement time, points separated by the step delay. A point *averages* the device over its integration
window, as the meter's detector does: the world's admittance of the device at the LCR terminal
(``world.admittance``) is taken at the 3 Gauss–Legendre nodes of the window (world events at those instants)
and averaged, so a bias step's capacitance transient is seen with the meter's timing and window; list bias
levels are applied at the start of their point. The result is available (``:FETC?``, buffer record status 0)
at the end of the point's integration; ``:FETC?`` and ``*TRG`` wait (on the clock) for a triggered cycle to finish.

Measurement time (charged to the clock by those waits): averages × max(base, cycles / f) with base 5.6 ms
(SHORT), 88 ms (MED), 220 ms (LONG) and 5.6 / 8 / 12 test-signal periods at low frequencies.

Command time: every program message costs the meter's interface turnaround (``message_time_s``, 3 ms), every
unit in it its processing (``unit_time_s``, 1 ms) before it takes effect, each value of a list sweep table
``list_value_time_s`` (20 µs) to parse, and a change of display page the redraw (``page_time_s``, 20 ms).
Keysight specifies none of these; they are estimates of the order a GPIB/USB/LAN exchange with the E4980A
takes (a display redraw and a 201-value table being the slow ones), options of the mock. They make a
configuration sent after a bias step cost what it costs on the bench (about 0.1 s for a dozen commands and
their error check), so a capture that starts late shows its dead time. Every bias change is recorded with its
world time (``bias_changes``: (time, level or None for off)).

DC bias: while ``:BIAS:STAT`` is ON the device sees the bias level through the world, OFF leaves it open.
Free run (source INT) is lazy: a fetch measures the present state, and cycles are world events only while
the data buffer fills, so a meter left free-running costs nothing (a free-run fetch reads the device at the
moment of the fetch). Noise: the data sheet's basic accuracy for the aperture, frequency band and AC level,
read as a 3σ bound, over √averages (:mod:`mock_instruments.keysight_e4980a_accuracy`): e.g. 6.7e-4 of |Y| at
SHORT, 10 kHz, 50 mV; 1.7e-4 at MED, 1 V. No device at the terminal reads a fixture stray (5 fF, 0.1 nS).
Not simulated: correction (open/short/load), comparator and bins (bin number 0), DCR beyond the functions
that report it, ALC, impedance range hold, binary data transfer, the external bias options.
"""

from __future__ import annotations

import cmath
import math
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mock_instruments import keysight_e4980a_accuracy as accuracy
from mock_instruments import scpi as engine
from mock_instruments.scpi import Bool, Choice, Num, Opt, Rest, ScpiError, ScpiInstrument, Setting, scpi

FUNCTIONS = ("CPD", "CPQ", "CPG", "CPRP", "CSD", "CSQ", "CSRS", "LPD", "LPQ", "LPG", "LPRP", "LPRD", "LSD",
             "LSQ", "LSRS", "LSRD", "RX", "ZTD", "ZTR", "GB", "YTD", "YTR", "VDID")
APERTURE = {"SHORt": (5.6e-3, 5.6), "MEDium": (88e-3, 8.0), "LONG": (220e-3, 12.0)}  # base time, test periods
# A point's window is averaged at 3 Gauss–Legendre nodes: exact for C(t) polynomial up to degree 5 over the
# window; for an exponential with τ ≥ window/4 the error is below 1.5e-3 of its amplitude.
GL_NODES, GL_WEIGHTS = (tuple(float(v) for v in a) for a in np.polynomial.legendre.leggauss(3))
PAGES = ("MEASurement", "BNUMber", "BCOunt", "LIST", "MSETup", "CSETup", "LTABle", "LSETup", "CATalog",
         "SYSTem", "SELF", "MLARge", "SCONfig", "SERVice")
SPOT_PAGES = ("MEASurement", "BNUMber", "BCOunt", "MLARge")
LIST_POINTS = 201
OVERFLOW = 9.9e37
STRAY = (5e-15, 1e-10)  # open fixture: C (F), G (S)
_ENGINE_REAL = re.compile(r"^-?\d\.\d{6}E[+-]\d+$")  # a real as the SCPI engine formats it
EXTRA_ERRORS = {-211: "Trigger ignored", -213: "Init ignored", -223: "Too much data",
                -230: "Data corrupt or stale"}


def function_values(function: str, y: complex, frequency_Hz: float, rdc_ohm: float,
                    dc: tuple[float, float]) -> tuple[float, float]:
    """Data A and B of an impedance function from the admittance Y = G + jωC (parallel model)."""
    w = 2 * math.pi * frequency_Hz
    z = 1 / y if y else complex(math.inf, 0)
    g, b, r, x = y.real, y.imag, z.real, z.imag

    def div(a: float, c: float) -> float:
        return a / c if c else math.inf

    d_c, d_l = div(g, b), div(-g, b)
    primary = {"CP": b / w, "CS": div(-1.0, w * x), "LP": div(-1.0, w * b), "LS": x / w}
    secondary = {"D": None, "Q": None, "G": g, "RP": div(1.0, g), "RS": r, "RD": rdc_ohm}
    if function[:2] in primary:
        kind = function[2:]
        dissipation = d_c if function[0] == "C" else d_l
        value = secondary[kind]
        if kind in ("D", "Q"):
            value = dissipation if kind == "D" else div(1.0, dissipation)
        return primary[function[:2]], float(value)  # type: ignore[arg-type]
    others = {"RX": (r, x), "ZTD": (abs(z), math.degrees(cmath.phase(z))), "ZTR": (abs(z), cmath.phase(z)),
              "GB": (g, b), "YTD": (abs(y), math.degrees(cmath.phase(y))), "YTR": (abs(y), cmath.phase(y)),
              "VDID": dc}
    return others[function]


@dataclass
class Point:
    frequency_Hz: float
    bias_V: float | None  # a list bias level, None: the :BIAS setting
    start_s: float
    duration_s: float
    result: tuple[float, float, int] | None = None
    y: complex = 0j


@dataclass
class Cycle:
    points: list[Point]
    triggered: bool  # by a trigger command (waited for by *OPC?/*WAI), not free run
    events: list[Any] = field(default_factory=list)

    @property
    def end_s(self) -> float:
        return self.points[-1].start_s + self.points[-1].duration_s


class MockKeysightE4980A(ScpiInstrument):
    """The simulated E4980A (options: ``serial``, ``option_001`` (default True), and the base options)."""

    model = "keysight_e4980a"

    frequency_Hz = Setting("FREQuency[:CW]", Num(20.0, 2e6, units="HZ"), 1000.0)
    ac_level_V = Setting("VOLTage[:LEVel]", Num(0.0, 20.0, units="V"), 1.0, check="_check_level")
    ac_level_A = Setting("CURRent[:LEVel]", Num(0.0, 0.1, units="A"), 0.01, check="_check_level")
    bias_V = Setting("BIAS:VOLTage[:LEVel]", Num(-40.0, 40.0, units="V"), 0.0, check="_check_bias",
                     on_change="_apply_bias")
    bias_on = Setting("BIAS:STATe", Bool(), False, on_change="_apply_bias")
    function = Setting("FUNCtion:IMPedance[:TYPE]", Choice(*FUNCTIONS), "CPD")
    trigger_source = Setting("TRIGger:SOURce", Choice("INTernal", "EXTernal", "BUS", "HOLD"), "INTernal",
                             on_change="_source_changed")
    trigger_delay_s = Setting("TRIGger:DELay", Num(0.0, 999.0, units="S"), 0.0)
    step_delay_s = Setting("TRIGger:TDELay", Num(0.0, 999.0, units="S"), 0.0)
    continuous = Setting("INITiate:CONTinuous", Bool(), False, on_change="_continuous_changed")
    list_mode = Setting("LIST:MODE", Choice("SEQuence", "STEPped"), "SEQuence")
    page = Setting("DISPlay:PAGE", Choice(*PAGES), "MEASurement", on_change="_page_changed")
    data_format = Setting("FORMat[:DATA]", Choice("ASCii", "REAL"), "ASCii", check="_ascii_only")
    long_format = Setting("FORMat:ASCii:LONG", Bool(), False)

    message_time_s = 3e-3
    unit_time_s = 1e-3
    list_value_time_s = 20e-6
    page_time_s = 20e-3

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        self.option_001 = bool(options.pop("option_001", True))
        for key in ("message_time_s", "unit_time_s", "list_value_time_s", "page_time_s"):
            if key in options:
                setattr(self, key, float(options.pop(key)))
        self.bias_changes: list[tuple[float, float | None]] = []
        serial = options.pop("serial", f"MY{zlib.crc32(name.encode()) % 100000000:08d}")
        self.idn = f"Keysight Technologies,E4980A,{serial},B.07.05"
        self.cycle: Cycle | None = None
        super().__init__(world, name, **options)
        self.reset()
        self.continuous = True  # power-on state: free running (only *RST turns continuous initiation off)
        self._arm()

    def reset(self) -> None:
        self._stop_cycle()
        super().reset()
        self.aperture = ("MEDium", 1)
        self.state = "idle"  # idle | waiting | measuring | free (lazy free run)
        self.last: list[Point] = []
        self.list_kind, self.step_index, self.buffer_size, self.filling = "", 0, 0, False
        self.list_values: list[float] = []
        self.buffer: list[tuple[float, float, int, float]] = []  # data A, data B, status, ready time
        self._trg_reply: str | None = None
        self._apply_bias()

    # ------------------------------------------------------------------------------ checks, hooks
    def format_error(self, code: int, detail: str) -> str:
        text = engine.ERRORS.get(code) or EXTRA_ERRORS.get(code, "Device-specific error")
        return f'{code:+d},"{text}"'

    def _check_level(self, level: float) -> None:
        limit = (20.0 if self.option_001 else 2.0) if "VOLTAGE" in self.call.nodes else (
            0.1 if self.option_001 else 0.02)
        if level > limit:
            installed = "installed" if self.option_001 else "not installed"
            raise ScpiError(-222, f"{level:g} above {limit:g} (option 001 {installed})")

    def _check_bias(self, level: float) -> None:
        if not self.option_001 and level not in (0.0, 1.5, 2.0):
            raise ScpiError(-222, "without option 001 the bias is 0, 1.5 or 2 V")

    def _ascii_only(self, value: str) -> None:
        if value != "ASCii":
            raise ScpiError(-221, "binary data transfer is not simulated")

    def _apply_bias(self, _value: Any = None, level: float | None = None) -> None:
        volts = self.bias_V if level is None else level
        applied = volts if self.bias_on else None
        if not self.bias_changes or self.bias_changes[-1][1] != applied:
            self.bias_changes.append((self.world.time_s, applied))
        self.world.apply_voltage(self.name, applied)

    def _charge(self, seconds: float) -> None:
        """Let ``seconds`` of command handling pass on the clock, the world (and running sweeps) with it."""
        if seconds > 0:
            self.world.clock.sleep(seconds)
            self.world.advance_to(self.world.clock.now())

    def _page_changed(self, _page: str) -> None:
        self._charge(self.page_time_s)

    def handle(self, message: str) -> str | None:
        self._charge(self.message_time_s)
        return super().handle(message)

    def _source_changed(self, _value: Any = None) -> None:
        free_running = self.state == "free" or (self.cycle is not None and not self.cycle.triggered)
        if self.state == "waiting" and self.trigger_source == "INTernal":
            self._start_cycle(triggered=False)
        elif free_running and self.trigger_source != "INTernal":
            self._stop_cycle()  # the free-run measurement in progress is abandoned: wait for a trigger
            self.state = "waiting"

    def _continuous_changed(self, on: bool) -> None:
        if on and self.state == "idle":
            self._arm()
        elif not on and self.state in ("waiting", "free"):
            self.state = "idle"

    def is_query(self, message: str) -> bool:
        return "?" in message or "*TRG" in message.upper()

    # --------------------------------------------------------------------------------- settings
    @scpi("APERture", Choice("SHORt", "MEDium", "LONG"), Opt(Num(1, 256, integer=True)))
    def _set_aperture(self, mode: str, averages: int | None) -> None:
        self.aperture = (mode, self.aperture[1] if averages is None else averages)

    @scpi("APERture?")
    def _get_aperture(self) -> str:
        return f"{engine.short_form(self.aperture[0])},{self.aperture[1]}"

    @scpi("*OPT?")
    def _options(self) -> str:
        return "001" if self.option_001 else "0"

    @scpi("SYSTem:PRESet")
    def _preset(self) -> None:
        self.reset()
        self.continuous = True
        self._arm()

    @scpi("LIST:FREQuency", Rest(Num(20.0, 2e6, units="HZ")))
    @scpi("LIST:VOLTage", Rest(Num(0.0, 20.0, units="V")))
    @scpi("LIST:BIAS:VOLTage", Rest(Num(-40.0, 40.0, units="V")))
    def _set_list(self, values: list[float]) -> None:
        self._charge(len(values) * self.list_value_time_s)
        if len(values) > LIST_POINTS:
            raise ScpiError(-223, f"at most {LIST_POINTS} list points")
        kind = "BIAS" if "BIAS" in self.call.nodes else self.call.nodes[1]
        if kind == "BIAS":
            for value in values:
                self._check_bias(value)
        elif kind == "VOLTAGE" and max(values) > (20.0 if self.option_001 else 2.0):
            raise ScpiError(-222, "list level above the signal source's range")
        self.list_kind, self.list_values, self.step_index = kind, [float(v) for v in values], 0

    @scpi("LIST:FREQuency?")
    @scpi("LIST:VOLTage?")
    @scpi("LIST:BIAS:VOLTage?")
    def _get_list(self) -> str:
        kind = "BIAS" if "BIAS" in self.call.nodes else self.call.nodes[1]
        if kind != self.list_kind:
            raise ScpiError(-221, f"the list sweep table holds no {kind.lower()} list")
        return ",".join(f"{v:+.6E}" for v in self.list_values)

    @scpi("LIST:CLEar:ALL")
    def _clear_list(self) -> None:
        self.list_kind, self.list_values, self.step_index = "", [], 0

    # ----------------------------------------------------------------------------- trigger system
    def measurement_time_s(self, frequency_Hz: float) -> float:
        base, cycles = APERTURE[self.aperture[0]]
        return self.aperture[1] * max(base, cycles / frequency_Hz)

    def _arm(self) -> None:
        """Enter Wait For Trigger (with source INT the trigger comes at once)."""
        self.state = "waiting"
        if self.trigger_source == "INTernal":
            self._start_cycle(triggered=False)

    def _plan(self, t0: float) -> list[Point]:
        steps: list[tuple[float, float | None]]
        if self.page in SPOT_PAGES:
            steps = [(self.frequency_Hz, None)]
        elif self.page == "LIST":
            if not self.list_values:
                raise ScpiError(-221, "the list sweep table is empty")
            indices = range(len(self.list_values)) if self.list_mode == "SEQuence" else [self.step_index]
            if self.list_mode != "SEQuence":
                self.step_index = (self.step_index + 1) % len(self.list_values)
            steps = [(self.list_values[i] if self.list_kind == "FREQUENCY" else self.frequency_Hz,
                      self.list_values[i] if self.list_kind == "BIAS" else None) for i in indices]
        else:
            raise ScpiError(-221, f"no measurement on the {self.page} page")
        points, t = [], t0 + self.trigger_delay_s
        for frequency, bias in steps:
            duration = self.measurement_time_s(frequency)
            points.append(Point(frequency, bias, t, duration))
            t += duration + self.step_delay_s
        return points

    def _start_cycle(self, triggered: bool) -> None:
        try:
            points = self._plan(self.world.time_s)
        except ScpiError:
            if triggered:
                raise
            self.state = "waiting"  # free run on a page that does not measure: keep waiting
            return
        if not triggered and not self._buffer_room():
            self.state, self.cycle = "free", None  # lazy free run: nothing to record, nothing scheduled
            return
        cycle = Cycle(points, triggered)
        for point in cycle.points:
            if point.bias_V is not None:
                bias = lambda _t, p=point: self._apply_bias(level=p.bias_V)  # noqa: E731
                cycle.events.append(self.world.schedule(point.start_s, bias))
            n = len(GL_NODES)
            for k, (x, w) in enumerate(zip(GL_NODES, GL_WEIGHTS, strict=True)):
                at = point.start_s + point.duration_s * (1.0 + float(x)) / 2.0
                node = lambda t, p=point, w=float(w) / 2.0, last=k == n - 1: self._sample(p, w, last)  # noqa: E731
                cycle.events.append(self.world.schedule(at, node))
        cycle.events.append(self.world.schedule(cycle.end_s, self._cycle_done))
        self.cycle, self.state = cycle, "measuring"

    def _stop_cycle(self) -> None:
        cycle = getattr(self, "cycle", None)
        if cycle is not None:
            for event in cycle.events:
                self.world.cancel(event)
            # a point abandoned before the end of its integration stores nothing
            self.buffer = [record for record in self.buffer if record[3] <= self.world.time_s + 1e-12]
            if any(p.bias_V is not None for p in cycle.points):
                self._apply_bias()
        self.cycle = None

    def _cycle_done(self, t_s: float) -> None:
        cycle = self.cycle
        if cycle is None:
            return
        self._stop_cycle()
        self.last = cycle.points
        if self.continuous:
            self._arm()
        else:
            self.state = "idle"

    def _wait_cycle(self) -> None:
        """Let the clock run to the end of the present cycle (a bus-triggered measurement)."""
        cycle = self.cycle
        if cycle is not None:
            end = cycle.end_s
            self.world.clock.sleep(max(0.0, end - self.world.clock.now()))
            self.world.advance_to(max(end, self.world.clock.now()))

    def pending_until_s(self) -> float | None:
        cycle = self.cycle
        return cycle.end_s if cycle is not None and cycle.triggered else None

    def _trigger(self) -> None:
        if self.state != "waiting":
            raise ScpiError(-211, f"trigger system {self.state}")
        self._start_cycle(triggered=True)

    @scpi("TRIGger[:IMMediate]")
    def _trigger_immediate(self) -> None:
        self._trigger()

    def trigger(self) -> None:
        """``*TRG``: a bus trigger; the E4980A then returns the measurement result."""
        if self.trigger_source != "BUS":
            raise ScpiError(-211, "*TRG needs trigger source BUS")
        self._trigger()
        self._wait_cycle()
        self._trg_reply = self._formatted(self.last)

    def _execute(self, unit: str, path: list[str], replies: list[str]) -> list[str]:
        self._charge(self.unit_time_s)
        before = len(replies)
        new_path = super()._execute(unit, path, replies)
        if len(replies) > before and _ENGINE_REAL.match(replies[-1]):
            replies[-1] = f"{float(replies[-1]):+.5E}"  # the meter's NR3: sign and 6 digits, +1.00000E+03
        if self._trg_reply is not None:
            replies.append(self._trg_reply)
            self._trg_reply = None
        return new_path

    @scpi("INITiate[:IMMediate]")
    def _initiate(self) -> None:
        if self.state != "idle":
            raise ScpiError(-213, f"trigger system {self.state}")
        self._arm()

    @scpi("ABORt")
    def _abort(self) -> None:
        self._stop_cycle()
        self.state = "idle"
        if self.continuous:
            self._arm()

    # ------------------------------------------------------------------------------- measurement
    def _sample(self, point: Point, weight: float, last: bool) -> None:
        """One node of a point's integration window (a world event): the device's admittance now, weighted;
        the last node finishes the point (average, noise, the function's values, the buffer)."""
        measured = self.world.admittance(self.name, point.frequency_Hz)
        c, g = STRAY if measured is None else measured
        point.y += weight * complex(g, 2 * math.pi * point.frequency_Hz * c)
        if last:
            self._finish(point)

    def _finish(self, point: Point) -> None:
        y = point.y
        sigma = accuracy.noise_fraction(self.aperture[0], self.aperture[1], point.frequency_Hz,
                                        self.ac_level_V) * abs(y)
        y += complex(sigma * float(self.rng.standard_normal()), sigma * float(self.rng.standard_normal()))
        rdc, dc = math.inf, (0.0, 0.0)
        if self.function in ("LPRD", "LSRD"):
            low = self.world.admittance(self.name, 1e-2)
            rdc = 1.0 / low[1] if low and low[1] > 0 else math.inf
        if self.function == "VDID" and self.bias_on:
            volts = self.world.voltage_V(self.name)
            dc = (volts or 0.0, self.world.current_A(self.name))
        overload = not 1e-5 < abs(1 / y if y else math.inf) < 1e12
        a, b = (OVERFLOW, OVERFLOW) if overload else function_values(self.function, y, point.frequency_Hz,
                                                                     rdc, dc)
        point.result, point.y = (a, b, 1 if overload else 0), y
        if self.filling and len(self.buffer) < self.buffer_size:
            self.buffer.append((a, b, point.result[2], point.start_s + point.duration_s))

    def _buffer_room(self) -> bool:
        return self.filling and len(self.buffer) < self.buffer_size

    def _number(self, value: float) -> str:
        value = value if math.isfinite(value) else math.copysign(OVERFLOW, value)
        return f"{value:+.9E}" if self.long_format else f"{value:+.5E}"

    def _formatted(self, points: list[Point]) -> str:
        fields = []
        for point in points:
            a, b, status = point.result if point.result is not None else (OVERFLOW, OVERFLOW, -1)
            item = f"{self._number(a)},{self._number(b)},{status:+d}"
            fields.append(item + ",+0" if self.page == "LIST" else item)
        return ",".join(fields)

    def _latest(self) -> list[Point]:
        """The points a fetch returns: waits for a running triggered cycle; free run measures now."""
        if self.cycle is not None and (self.cycle.triggered or not self.last):
            self._wait_cycle()
        if self.state == "free":
            points = self._plan(self.world.time_s)
            for point in points:
                self._sample(point, 1.0, True)
            self.last = points
        if not self.last:
            raise ScpiError(-230, "no measurement data")
        return self.last

    @scpi("FETCh[:IMPedance][:FORMatted]?")
    def _fetch(self) -> str:
        return self._formatted(self._latest())

    @scpi("FETCh:IMPedance:CORRected?")
    def _fetch_corrected(self) -> str:
        values = []
        for point in self._latest():
            z = 1 / point.y if point.y else complex(OVERFLOW, OVERFLOW)
            values += [self._number(z.real), self._number(z.imag)]
        return ",".join(values)

    # -------------------------------------------------------------------------- data buffer memory
    @scpi("MEMory:DIMension", Choice("DBUF"), Num(1, LIST_POINTS, integer=True))
    def _dimension(self, _name: str, size: int) -> None:
        self.buffer_size, self.buffer, self.filling = size, [], False

    @scpi("MEMory:FILL", Choice("DBUF"))
    def _fill(self, _name: str) -> None:
        if not self.buffer_size:
            raise ScpiError(-221, "dimension the data buffer first (:MEM:DIM DBUF,<n>)")
        self.filling = True
        if self.state == "free":
            self._start_cycle(triggered=False)

    @scpi("MEMory:CLEar", Choice("DBUF"))
    def _clear_buffer(self, _name: str) -> None:
        self.buffer, self.filling = [], False

    @scpi("MEMory:READ?", Choice("DBUF"))
    def _read_buffer(self, _name: str) -> str:
        if not self.buffer_size:
            raise ScpiError(-221, "the data buffer is not dimensioned")
        now, records = self.world.time_s, []
        for k in range(self.buffer_size):
            if k < len(self.buffer) and self.buffer[k][3] <= now + 1e-12:
                a, b, status, _ = self.buffer[k]
            else:
                a, b, status = OVERFLOW, OVERFLOW, -1
            records.append(f"{self._number(a)},{self._number(b)},{status:+d},+0")
        return ",".join(records)
