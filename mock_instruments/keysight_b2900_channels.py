"""The channels of the Keysight B2900 mock and what they do in time (B2900 User's Guide, chapter 6 "Trigger
system"; SCPI Command Reference B2910-90030, ARM/TRIGger/INITiate/ABORt subsystems): what a channel holds,
how a command addresses it (numeric suffix or channel list), what it sources and measures, and the
ARM-TRIGger runs with independent transient (source) and acquire (measure) actions that step it as world
events. The rest of the command set is :mod:`mock_instruments.keysight_b2900`.

Each transient trigger sets the next list level after the transient delay and each acquire trigger starts a
measurement after the acquire delay; with TIMer both triggers come every ``TRIGger:TIMer`` seconds, so the
point period is exactly the timer period; with AINT the acquisition follows the transient (0.1 ms settling)
and points run back to back. A measurement not finished when the next acquire trigger comes delays that
acquisition (the trigger is not lost). Readings are stamped at the start of the aperture. BUS runs start on
``*TRG``; LAN/EXT/INT triggers never arrive.

Wait times (SCPI reference, ``:SENSe:WAIT`` and ``:SOURce:WAIT``, both ON with AUTO at *RST): an acquisition
cannot start before the measurement wait has passed since the last output change, and the output cannot
change before the source wait has passed since the last one; each is gain × initial wait + offset (offset
only with AUTO off, 0 with the state off). The instrument chooses the initial wait and the documentation gives
no figure: the mock assumes the settling a source-measure unit needs on its current range (1 ms, 3 ms on
1 µA, 50 ms on 100 nA and below, the figures of Keithley's auto delays), so a client that leaves the waits on
gets later readings on low currents than its acquire delay says.

After a list or sweep run the output returns to the DC level programmed before it, unless
``:SOURce:FUNCtion:TRIGgered:CONTinuous`` is ON, which keeps the last sweep value (User's Guide, Sweep dialog
box, "Output after Sweep": START VALUE / END VALUE). A kept value stays until a level, function or output
command changes the output.

A finite run that holds one level (fixed mode, or a list of one value) with timing known at its start (one
arm, acquire and transient counts equal, TIMer or AINT triggers, and no wait that follows an autoranged
current range) is served as a :class:`~mock_instruments.smu_channel.BufferedDwell`: the acquisitions start
and end when the trigger-by-trigger path would have them, and the readings come from the world in one pass.
A compliance limit reached during it clamps the readings at the limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mock_instruments.scpi import ChannelList, Choice, Num, Opt, Raw, ScpiError, ScpiInstrument, scpi, stack
from mock_instruments.smu_channel import (
    NAN,
    BufferedDwell,
    ServesDwells,
    SweepEvents,
    Trace,
    autoranged_reading,
    source_into_world,
    within_limit,
)

VOLTAGE_RANGES_V = (0.2, 2.0, 20.0, 200.0)
CURRENT_RANGES_A = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 1.5, 3.0)
AINT_SETTLING_S = 1e-4


def initial_wait_s(current_range_A: float) -> float:
    """The initial wait the mock assumes for a current range (see the module docstring)."""
    return 0.05 if current_range_A <= 1e-7 else 3e-3 if current_range_A <= 1e-6 else 1e-3


@dataclass
class Wait:
    """A measurement or source wait: state, automatic (gain × initial + offset) or offset only."""

    state: bool = True
    auto: bool = True
    gain: float = 1.0
    offset_s: float = 0.0

    def time_s(self, current_range_A: float) -> float:
        if not self.state:
            return 0.0
        return self.gain * initial_wait_s(current_range_A) + self.offset_s if self.auto else self.offset_s
TRIGGER_SOURCES = ("AINT", "BUS", "TIMer", "INT1", "INT2", "LAN", "EXT1", "EXT2", "EXT3", "EXT4", "EXT5",
                   "EXT6", "EXT7", "EXT8", "EXT9", "EXT10", "EXT11", "EXT12", "EXT13", "EXT14")
CH = Opt(ChannelList(), None)  # an optional (@1,2) channel list
_LAYERS = [f"{layer}#2{action}" for layer in ("ARM", "TRIGger")
           for action in ("[:ALL]", ":ACQuire", ":TRANsient")]


@dataclass
class Reading:
    time_s: float
    voltage: float
    current: float
    status: int
    source: float

    def value(self, element: str, origin_s: float) -> float:
        if element == "RESistance":
            return self.voltage / self.current if self.current else NAN
        if element == "TIME":
            return self.time_s - origin_s
        return float({"VOLTage": self.voltage, "CURRent": self.current, "STATus": self.status,
                      "SOURce": self.source}[element])


@dataclass
class Layer:
    """Trigger settings of one action (transient or acquire)."""

    source: str = "AINT"
    timer_s: float = 1e-3
    count: int = 1
    delay_s: float = 0.0


@dataclass
class Run:
    """A triggered sequence of one channel: ``total`` points (0 = until ABORt) through ``levels``."""

    total: int
    levels: list[float]
    events: SweepEvents  # the transient, acquire and next-trigger events it has scheduled
    tran_index: int = 0
    acq_index: int = 0
    acq_free_s: float = 0.0
    dwell: BufferedDwell | None = None  # set when the run is served as a buffered dwell
    starts_s: np.ndarray | None = None  # a buffered dwell's aperture starts (the readings' stamps)


@dataclass
class Channel:
    """Everything one channel holds; *RST values."""

    output: bool = False
    off_mode: str = "ZERO"
    function: str = "VOLTage"
    level: dict[str, float] = field(default_factory=lambda: {"VOLTage": 0.0, "CURRent": 0.0})
    mode: dict[str, str] = field(default_factory=lambda: {"VOLTage": "FIXed", "CURRent": "FIXed"})
    lists: dict[str, list[float]] = field(default_factory=lambda: {"VOLTage": [], "CURRent": []})
    sweep: dict[str, float] = field(default_factory=lambda: {"STAR": 0.0, "STOP": 0.0, "POIN": 1})
    protection: dict[str, float] = field(default_factory=lambda: {"CURRent": 1e-4, "VOLTage": 2.0})
    ranges: dict[str, float] = field(default_factory=lambda: {"SV": 2.0, "SI": 1e-4, "MV": 2.0, "MI": 1e-4})
    auto: dict[str, bool] = field(default_factory=lambda: {"SV": True, "SI": True, "MV": True, "MI": True})
    functions: set[str] = field(default_factory=lambda: {"VOLT", "CURR"})
    nplc: float = 1.0
    remote: bool = False
    compliance: bool = False
    arm: dict[str, Layer] = field(default_factory=lambda: {"ACQ": Layer(), "TRAN": Layer()})
    trigger: dict[str, Layer] = field(default_factory=lambda: {"ACQ": Layer(), "TRAN": Layer()})
    acquired: list[Reading] = field(default_factory=list)
    trace: Trace[Reading] = field(default_factory=lambda: Trace(100000))
    trace_feed: str = "SENSe"
    trace_stamp: str = "ABSolute"
    waits: dict[str, Wait] = field(default_factory=lambda: {"SENSE": Wait(), "SOURCE": Wait()})
    keep_after_sweep: bool = False  # :SOURce:FUNCtion:TRIGgered:CONTinuous (END VALUE)
    held: float | None = None  # the last sweep value kept after a run
    last_change_s: float = -1e9  # when the output last changed (for the waits)
    run: Run | None = None  # the running triggered sequence


class KeysightB2900Channels(ServesDwells, ScpiInstrument):
    """Channels and triggered runs of :class:`mock_instruments.keysight_b2900.MockKeysightB2900`."""

    n_channels: int
    line_frequency: float

    def reset(self) -> None:
        for channel in getattr(self, "channels", {}).values():
            self._abort_channel(channel)
        super().reset()
        self.channels = {c: Channel() for c in range(1, self.n_channels + 1)}

    # ------------------------------------------------------------------------- addressing, drive
    def _ch(self, channels: list[str] | None = None) -> list[int]:
        """The channels a command addresses: its channel list, else its suffix (-114 / -224 outside)."""
        if channels is None:
            numbers = [self.call.suffixes[0] if self.call.suffixes else 1]
        else:
            try:
                numbers = [int(c) for c in channels]
            except ValueError:
                raise ScpiError(-224, f"bad channel list {channels}") from None
        if any(n not in self.channels for n in numbers):
            raise ScpiError(-114 if channels is None else -224, f"channel {numbers}")
        return numbers

    def _one(self) -> Channel:
        return self.channels[self._ch()[0]]

    def _function(self) -> str:
        return "VOLTage" if "VOLTAGE" in self.call.nodes else "CURRent"

    def _idle(self, channel: Channel) -> None:
        if channel.run is not None:
            raise ScpiError(-221, "not permitted while the channel runs a triggered sequence")

    def _apply(self, c: int, level: float | None = None) -> tuple[float, float]:
        channel = self.channels[c]
        function = channel.function
        if level is None:
            level = channel.held if channel.held is not None and channel.run is None else channel.level[function]
        limit = channel.protection["CURRent" if function == "VOLTage" else "VOLTage"]
        voltage, current, channel.compliance = source_into_world(
            self.world, self.terminal(c), "V" if function == "VOLTage" else "I", level, limit, channel.output)
        return voltage, current

    def aperture_s(self, channel: Channel) -> float:
        return channel.nplc / self.line_frequency

    def _measure(self, c: int, t_s: float, level: float | None = None) -> Reading:
        voltage, current = self._apply(c, level)
        return self._reading(c, t_s, level, voltage, current)

    def _reading(self, c: int, t_s: float, level: float | None, voltage: float, current: float) -> Reading:
        """The reading stamped ``t_s`` of channel ``c`` sourcing ``level`` with the device at (voltage,
        current): ranges, noise, source value, status (compliance as the channel's)."""
        channel = self.channels[c]
        values = []
        for value, key, ranges, kind in ((voltage, "MV", VOLTAGE_RANGES_V, "V"),
                                         (current, "MI", CURRENT_RANGES_A, "I")):
            reading, channel.ranges[key] = autoranged_reading(value, kind, ranges, channel.ranges[key],
                                                              channel.auto[key], channel.nplc, self.rng)
            values.append(reading)
        source = channel.level[channel.function] if level is None else level
        status = (8 if channel.compliance else 0) | (1 if channel.output else 0)
        return Reading(t_s, values[0], values[1], status, source)

    def _levels(self, channel: Channel) -> list[float]:
        function = channel.function
        mode = channel.mode[function]
        if mode == "LIST":
            if not channel.lists[function]:
                raise ScpiError(-221, "the source list is empty")
            return list(channel.lists[function])
        if mode == "SWEep":
            start, stop, n = channel.sweep["STAR"], channel.sweep["STOP"], int(channel.sweep["POIN"])
            return [start + (stop - start) * k / max(n - 1, 1) for k in range(n)]
        return [channel.level[function]]

    # ------------------------------------------------------------------------------- triggers
    def _layers(self, layer_name: str) -> list[Layer]:
        channel = self._one()
        table = channel.arm if layer_name == "ARM" else channel.trigger
        nodes = self.call.nodes
        keys = ["ACQ"] if "ACQUIRE" in nodes else ["TRAN"] if "TRANSIENT" in nodes else ["ACQ", "TRAN"]
        return [table[k] for k in keys]

    @stack([f"{layer}:COUNt" for layer in _LAYERS], Raw())
    def _count(self, token: str) -> None:
        self._idle(self._one())
        infinite = token.upper() in ("INF", "INFINITY")
        count = 0 if infinite else int(Num(1, 100000, integer=True).convert(token))
        for layer in self._layers(self.call.nodes[0]):
            layer.count = count

    @stack([f"{layer}:SOURce[:SIGNal]" for layer in _LAYERS], Choice(*TRIGGER_SOURCES))
    def _source(self, source: str) -> None:
        self._idle(self._one())
        for layer in self._layers(self.call.nodes[0]):
            layer.source = source

    @stack([f"{layer}:TIMer" for layer in _LAYERS], Num(1e-5, 1e5, units="S"))
    def _timer(self, seconds: float) -> None:
        for layer in self._layers(self.call.nodes[0]):
            layer.timer_s = seconds

    @stack([f"{layer}:DELay" for layer in _LAYERS], Num(0, 1e5, units="S"))
    def _delay(self, seconds: float) -> None:
        for layer in self._layers(self.call.nodes[0]):
            layer.delay_s = seconds

    @stack([f"{layer}:{node}?" for layer in _LAYERS[3:]
            for node in ("SOURce[:SIGNal]", "TIMer", "COUNt", "DELay")])
    def _trigger_query(self) -> Any:
        layer = self._layers("TRIGGER")[0]
        nodes = self.call.nodes
        if "SOURCE" in nodes:
            return layer.source.upper()[:4] if layer.source != "AINT" else "AINT"
        if "TIMER" in nodes:
            return layer.timer_s
        return layer.count if "COUNT" in nodes else layer.delay_s

    @scpi("INITiate[:IMMediate][:ALL]", CH)
    @scpi("INITiate[:IMMediate]:ACQuire", CH)
    @scpi("INITiate[:IMMediate]:TRANsient", CH)
    def _initiate(self, channels: list[str] | None) -> None:
        for c in self._ch(channels if channels is not None else ["1"]):
            self._start(c)

    @scpi("ABORt[:ALL]", CH)
    @scpi("ABORt:ACQuire", CH)
    @scpi("ABORt:TRANsient", CH)
    def _abort(self, channels: list[str] | None) -> None:
        for c in self._ch(channels if channels is not None else ["1"]):
            self._abort_channel(self.channels[c])

    def _abort_channel(self, channel: Channel) -> None:
        run, channel.run = channel.run, None
        if run is not None:
            run.events.cancel()

    def _start(self, c: int) -> None:
        channel = self.channels[c]
        if channel.run is not None:
            raise ScpiError(-213)
        acq, tran = channel.trigger["ACQ"], channel.trigger["TRAN"]
        arms = channel.arm["ACQ"].count
        total = max(acq.count, tran.count) * arms if acq.count and tran.count and arms else 0
        levels = self._levels(channel)
        channel.acquired = []
        run = Run(total, levels, SweepEvents(self.world), acq_free_s=self.world.time_s)
        channel.run = run
        if channel.arm["ACQ"].source not in ("AINT", "TIMer") or acq.source not in ("AINT", "TIMer"):
            return  # waits for a BUS/LAN/EXT trigger: *TRG starts BUS runs, the others never come
        if self.serve_dwells and self._start_dwell(c):
            return
        self._fire(c, self.world.time_s + channel.arm["ACQ"].delay_s)

    # ------------------------------------------------------------------------------ buffered dwell
    def _start_dwell(self, c: int) -> bool:
        """Serve the run starting now on channel ``c`` as a buffered dwell if it holds one level and its
        timing is known now (see the module docstring): the trigger-by-trigger recurrence of :meth:`_fire`
        without its events; False (nothing done) otherwise."""
        channel, run = self.channels[c], self.channels[c].run
        assert run is not None
        acq, tran, arm = channel.trigger["ACQ"], channel.trigger["TRAN"], channel.arm["ACQ"]
        waits_on = channel.waits["SENSE"].state or channel.waits["SOURCE"].state
        if (not run.total or arm.count != 1 or acq.count != tran.count or len(set(run.levels)) != 1
                or not channel.output or (waits_on and channel.auto["MI"])):
            return False
        current_range = channel.ranges["MI"]
        source_wait = channel.waits["SOURCE"].time_s(current_range)
        sense_wait = channel.waits["SENSE"].time_s(current_range)
        aperture = self.aperture_s(channel)
        fire, acq_free = self.world.time_s + arm.delay_s, self.world.time_s
        starts, ends = np.empty(run.total), np.empty(run.total)
        for k in range(run.total):
            step = max(fire + tran.delay_s, channel.last_change_s + source_wait)
            channel.last_change_s = step
            start = fire + acq.delay_s + (tran.delay_s + AINT_SETTLING_S if acq.source == "AINT" else 0.0)
            start = max(start, acq_free, step + sense_wait)
            acq_free = start + aperture
            starts[k], ends[k] = start, acq_free
            fire = fire + acq.timer_s if acq.source == "TIMer" else acq_free
        level = run.levels[0]
        run.tran_index, run.starts_s = run.total, starts
        self._apply(c, level)
        run.dwell = BufferedDwell(self.world, self.terminal(c), ends, lambda first, _t, v, i: self._take_dwell(
            c, first, v, i), float(ends[-1]), lambda _t: None, run.events)
        return True

    def _take_dwell(self, c: int, first: int, voltage_V: np.ndarray, current_A: np.ndarray) -> None:
        channel, run = self.channels[c], self.channels[c].run
        assert run is not None and run.starts_s is not None
        level = run.levels[0]
        v_source = channel.function == "VOLTage"
        limit = channel.protection["CURRent" if v_source else "VOLTage"]
        reached = False
        for k, (voltage, current) in enumerate(zip(voltage_V, current_A, strict=True), start=first):
            voltage, current, channel.compliance = within_limit(float(voltage), float(current),
                                                                "V" if v_source else "I", limit)
            reached |= channel.compliance
            self._acquired(c, self._reading(c, float(run.starts_s[k]), level, voltage, current))
        if reached and channel.run is not None:  # the world now drives the device at its limit
            self._apply(c, level)

    def buffered_dwells(self) -> Iterable[BufferedDwell]:
        return [ch.run.dwell for ch in self.channels.values() if ch.run is not None and ch.run.dwell is not None]

    def trigger(self) -> None:
        for c, channel in self.channels.items():
            run = channel.run
            if run is not None and run.events.idle and (channel.trigger["ACQ"].source == "BUS" or
                                                       channel.arm["ACQ"].source == "BUS"):
                self._fire(c, self.world.time_s)

    def _fire(self, c: int, t_s: float) -> None:
        """One trigger of both actions at ``t_s``: the source steps, the acquisition follows."""
        channel, run = self.channels[c], self.channels[c].run
        if run is None:
            return
        acq, tran = channel.trigger["ACQ"], channel.trigger["TRAN"]
        k = run.tran_index
        level = run.levels[k % len(run.levels)]
        run.tran_index += 1
        current_range = channel.ranges["MI"]
        step_at = max(t_s + tran.delay_s, channel.last_change_s + channel.waits["SOURCE"].time_s(current_range))
        channel.last_change_s = step_at
        run.events.at(step_at, lambda _t: self._step(c, level))
        start = t_s + acq.delay_s + (tran.delay_s + AINT_SETTLING_S if acq.source == "AINT" else 0.0)
        start = max(start, run.acq_free_s, step_at + channel.waits["SENSE"].time_s(current_range))
        run.acq_free_s = start + self.aperture_s(channel)
        run.events.at(run.acq_free_s, lambda _t: self._acquire(c, start, level))
        if run.total and run.tran_index >= run.total:
            return
        if acq.source == "TIMer":
            run.events.at(t_s + acq.timer_s, lambda t: self._fire(c, t))
        elif acq.source == "AINT":
            run.events.at(run.acq_free_s, lambda t: self._fire(c, t))

    def _step(self, c: int, level: float) -> None:
        self._apply(c, level)

    def _acquire(self, c: int, start_s: float, level: float) -> None:
        if self.channels[c].run is not None:
            self._acquired(c, self._measure(c, start_s, level))

    def _acquired(self, c: int, reading: Reading) -> None:
        """A finished acquisition of the running sequence: stored, and the run ends with its last one."""
        channel, run = self.channels[c], self.channels[c].run
        assert run is not None
        channel.acquired.append(reading)
        run.acq_index += 1
        if channel.trace_feed == "SENSe":
            channel.trace.store(reading)
        if run.total and run.acq_index >= run.total:
            channel.run = None
            run.events.cancel()
            # output after sweep: END keeps the last value, START goes back to the DC level
            channel.held = run.levels[(run.tran_index - 1) % len(run.levels)] if channel.keep_after_sweep else None
            self._apply(c)

    def pending_until_s(self) -> float | None:
        times = [t for ch in self.channels.values()
                 if ch.run is not None and ch.run.total and (t := ch.run.events.next_s()) is not None]
        return min(times) if times else None
