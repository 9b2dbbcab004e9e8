"""One channel of the Keithley 2600B mock as TSP sees it (Series 2600B Reference Manual, 2600BS-901-01:
section 9 "TSP command reference", section 3 "Reading buffers" and "Sweep operation"): the ``smuX`` tree and
its attributes with their *RST values and ranges, the dedicated reading buffers ``smuX.nvbuffer1/2``, the
source drive and measurements of the channel's world terminal. Its trigger model (stimuli, events, a list,
linear or log sweep run point by point as world events) is :mod:`mock_instruments.keithley2600_trigger`; the
instrument is :mod:`mock_instruments.keithley2600`.

Timing: a command-level measurement charges measure delay + count x (NPLC / line frequency + 0.5 ms); a
trigger-model point takes source delay + measure delay + count x NPLC / line frequency + 0.1 ms, or longer
when a stimulus (a timer) starts it later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from mock_instruments.keithley2600_trigger import ChannelTrigger
from mock_instruments.smu_channel import ReadingBuffer, autoranged_reading, source_into_world
from mock_instruments.tsp import LuaRuntimeError, Node, ParameterRangeError, TspObject, checked

if TYPE_CHECKING:
    from mock_instruments.keithley2600 import MockKeithley2600

MEASURE_OVERHEAD_S = 5e-4
CONSTANTS = {"OUTPUT_DCAMPS": 0, "OUTPUT_DCVOLTS": 1, "OUTPUT_OFF": 0, "OUTPUT_ON": 1, "OUTPUT_HIGH_Z": 2,
             "OUTPUT_NORMAL": 0, "OUTPUT_ZERO": 2, "ENABLE": 1, "DISABLE": 0, "SOURCE_IDLE": 0,
             "SOURCE_HOLD": 1,
             "DELAY_OFF": 0, "DELAY_AUTO": -1, "AUTORANGE_OFF": 0, "AUTORANGE_ON": 1,
             "AUTORANGE_FOLLOW_LIMIT": 2, "AUTOZERO_OFF": 0, "AUTOZERO_ONCE": 1, "AUTOZERO_AUTO": 2,
             "SENSE_LOCAL": 0, "SENSE_REMOTE": 1, "SENSE_CALA": 3, "FILTER_MOVING_AVG": 0,
             "FILTER_REPEAT_AVG": 1, "FILTER_MEDIAN": 2}


@dataclass
class Record:
    reading: float
    time_s: float
    source: float
    status: float
    function: str


class Buffer(ReadingBuffer[Record], TspObject):
    """A dedicated reading buffer (``smuX.nvbuffer1``): 3 ``readings``-like columns and ``buffer[i]``."""

    COLUMNS: ClassVar[dict[str, str]] = {
        "readings": "reading", "timestamps": "time_s", "sourcevalues": "source", "statuses": "status",
        "measurefunctions": "function"}

    def __init__(self, name: str) -> None:
        super().__init__(60000, fill="ONCE")
        self.tsp_name = name
        self.settings = {"appendmode": 0.0, "collecttimestamps": 1.0, "collectsourcevalues": 0.0,
                         "fillmode": 0.0, "timestampresolution": 1e-6}

    def start(self) -> None:
        """A measurement into this buffer begins: append mode off overwrites it."""
        if not self.settings["appendmode"]:
            self.readings.clear()

    def tsp_get(self, key: str) -> Any:
        if key == "n":
            return float(len(self.readings))
        if key in ("capacity", "fillcount"):
            return float(self.capacity)
        if key == "basetimestamp":
            return self.readings[0].time_s if self.readings else 0.0
        if key == "clear":
            return lambda _args: self.readings.clear()
        if key in self.settings:
            return self.settings[key]
        if key in self.COLUMNS:
            if (key == "timestamps" and not self.settings["collecttimestamps"]) or (
                    key == "sourcevalues" and not self.settings["collectsourcevalues"]):
                raise KeyError(key)
            return Column(self, self.COLUMNS[key])
        return Column(self, "reading").tsp_get(key)

    def tsp_set(self, key: str, value: Any) -> None:
        if key not in self.settings:
            raise LuaRuntimeError(f"attempt to set read-only attribute `{key}' of {self.tsp_name}")
        collecting = key in ("collecttimestamps", "collectsourcevalues")
        if collecting and self.readings and value != self.settings[key]:
            raise ParameterRangeError(True)  # 5032 in the manual; the attribute keeps its value
        low = 1e-6 if key == "timestampresolution" else 0.0
        self.settings[key] = checked(value, low, 1.0, key)


class Column(TspObject):
    """``buffer.readings`` etc.: indexable 1..n, what printbuffer prints."""

    def __init__(self, buffer: Buffer, attribute: str) -> None:
        self.buffer, self.attribute = buffer, attribute

    def values(self) -> list[Any]:
        records = self.buffer.readings
        if self.attribute == "time_s":
            return [r.time_s - records[0].time_s for r in records]
        return [getattr(r, self.attribute) for r in records]

    def tsp_get(self, key: str) -> Any:
        try:
            index = int(float(key))
        except ValueError:
            raise KeyError(key) from None
        values = self.values()
        if not 1 <= index <= len(values):
            raise KeyError(key)
        return values[index - 1]


@dataclass
class State:
    """Every channel attribute with its *RST value (section 9, per attribute)."""

    values: dict[str, float] = field(default_factory=lambda: {
        "source.func": 1.0, "source.levelv": 0.0, "source.leveli": 0.0, "source.limitv": 20.0,
        "source.limiti": 0.1, "source.rangev": 1.0, "source.rangei": 1e-3, "source.autorangev": 1.0,
        "source.autorangei": 1.0, "source.delay": 0.0, "source.output": 0.0, "source.offmode": 0.0,
        "source.highc": 0.0, "measure.nplc": 1.0, "measure.rangev": 1.0, "measure.rangei": 1e-3,
        "measure.autorangev": 1.0, "measure.autorangei": 1.0, "measure.autozero": 2.0, "measure.count": 1.0,
        "measure.delay": 0.0, "measure.interval": 0.0, "measure.filter.enable": 0.0,
        "measure.filter.count": 1.0, "measure.filter.type": 1.0, "sense": 0.0,
        "trigger.source.action": 0.0, "trigger.source.limitv": 0.0, "trigger.source.limiti": 0.0,
        "trigger.measure.action": 0.0, "trigger.endpulse.action": 1.0,
        "trigger.endsweep.action": 0.0, "trigger.count": 1.0, "trigger.arm.count": 1.0})


class Channel(ChannelTrigger):
    """One SMU channel: its state, buffers, trigger model (:class:`ChannelTrigger`) and the ``smuX`` tree."""

    def __init__(self, inst: MockKeithley2600, letter: str, v_ranges: tuple[float, ...],
                 i_ranges: tuple[float, ...]) -> None:
        self.inst, self.letter = inst, letter
        self.terminal = inst.terminal(letter)
        self.v_ranges, self.i_ranges = v_ranges, i_ranges
        self.buffers = (Buffer(f"smu{letter}.nvbuffer1"), Buffer(f"smu{letter}.nvbuffer2"))
        self.init_trigger(inst.trigger.bus)
        self.reset()
        self.tsp = self._build()

    def reset(self) -> None:
        self.reset_trigger()
        self.state = State()
        for buffer in self.buffers:
            buffer.readings.clear()
            buffer.settings.update(appendmode=0.0, collecttimestamps=1.0, collectsourcevalues=0.0)
        self.held: float | None = None  # the level SOURCE_HOLD keeps after a sweep
        self.compliance = False
        self.inst.world.apply_voltage(self.terminal, None)

    def __getitem__(self, key: str) -> float:
        return self.state.values[key]

    # --------------------------------------------------------------------------------- tsp tree
    def _limits(self, key: str) -> tuple[float, float]:
        vmax, imax = 1.01 * self.v_ranges[-1], 1.01 * self.i_ranges[-1]
        table = {"source.levelv": (-vmax, vmax), "source.leveli": (-imax, imax),
                 "source.limitv": (0.01, vmax), "source.limiti": (1e-10, imax),
                 "source.rangev": (-vmax, vmax), "source.rangei": (-imax, imax),
                 "measure.rangev": (-vmax, vmax), "measure.rangei": (-imax, imax), "source.delay": (-1, 1e4),
                 "measure.delay": (-1, 1e4), "measure.nplc": (0.001, 25), "measure.count": (1, 60000),
                 "measure.interval": (0, 1), "trigger.count": (0, 2 ** 31 - 1), "source.func": (0, 1),
                 "trigger.arm.count": (0, 2 ** 31 - 1), "source.output": (0, 2), "sense": (0, 3),
                 "measure.autozero": (0, 2), "measure.filter.count": (1, 100), "measure.filter.type": (0, 2),
                 "source.autorangev": (0, 2), "source.autorangei": (0, 2), "measure.autorangev": (0, 2),
                 "measure.autorangei": (0, 2), "trigger.source.limitv": (0, vmax),
                 "trigger.source.limiti": (0, imax)}
        return table.get(key, (0, 1))

    def _attr(self, key: str) -> tuple[Callable[[], Any], Callable[[Any], None] | None]:
        def set_(value: Any) -> None:
            low, high = self._limits(key)
            new = checked(value, low, high, f"smu{self.letter}.{key}")
            if key == "source.func" and self.sweep is not None:
                raise LuaRuntimeError("cannot change the source function while the trigger model runs")
            if key in ("source.func", "source.levelv", "source.leveli"):
                self.held = None
            if key.endswith(("rangev", "rangei")) and not key.split(".")[1].startswith("auto"):
                ranges = self.v_ranges if key.endswith("v") else self.i_ranges
                new = next(r for r in ranges if abs(new) <= 1.01 * r)
                self.state.values[key.replace(".range", ".autorange")] = 0.0
            self.state.values[key] = new
            if key == "source.output" and not new and self.sweep is not None:
                self.abort()
            if key.startswith("source.") and self.sweep is None:
                self.apply()
        return (lambda: self.state.values[key]), set_

    def _build(self) -> Node:
        def attrs(prefix: str, names: str) -> dict[str, Any]:
            return {n: self._attr(f"{prefix}{n}") for n in names.split()}

        smu = f"smu{self.letter}"
        source = Node(f"{smu}.source", attrs("source.", "func levelv leveli limitv limiti rangev rangei "
                                                        "autorangev autorangei delay output offmode highc"))
        source.attrs["compliance"] = (lambda: self.compliance, None)
        measure = Node(f"{smu}.measure", attrs("measure.", "nplc rangev rangei autorangev autorangei "
                                                          "autozero count delay interval"),
                       {k: self._measure_function(k) for k in ("i", "v", "iv", "r", "p")})
        measure.members["filter"] = Node(f"{smu}.measure.filter",
                                         attrs("measure.filter.", "enable count type"))
        trigger = self.trigger_node(attrs)
        members: dict[str, Any] = {k: float(v) for k, v in CONSTANTS.items()}
        members.update(source=source, measure=measure, trigger=trigger, nvbuffer1=self.buffers[0],
                       nvbuffer2=self.buffers[1], abort=lambda _a: self.abort(),
                       reset=lambda _a: self.reset())
        return Node(smu, {"sense": self._attr("sense")}, members)

    # ------------------------------------------------------------------------------ source/measure
    def apply(self, level: float | None = None) -> tuple[float, float]:
        """Drive the world from the source attributes (``level`` overrides the idle level)."""
        voltage_source = self["source.func"] == 1
        if level is None:
            level = self.held if self.held is not None else (
                self["source.levelv"] if voltage_source else self["source.leveli"])
        limit = self["source.limiti"] if voltage_source else self["source.limitv"]
        if self.sweep is not None:  # a sweep's own limit, when set (0: the normal limit)
            limit = self["trigger.source.limiti" if voltage_source else "trigger.source.limitv"] or limit
        voltage, current, self.compliance = source_into_world(
            self.inst.world, self.terminal, "V" if voltage_source else "I", level, limit,
            self["source.output"] == 1)
        return voltage, current

    def read(self, level: float | None = None) -> tuple[float, float]:
        """One (current, voltage) reading of the world now, with range selection and noise."""
        voltage, current = self.apply(level)
        return self.readings_of(voltage, current)

    def readings_of(self, voltage: float, current: float) -> tuple[float, float]:
        """The (current, voltage) readings of a device found at (voltage, current): range, noise."""
        out = []
        for value, key, ranges, kind in ((current, "measure.rangei", self.i_ranges, "I"),
                                         (voltage, "measure.rangev", self.v_ranges, "V")):
            reading, self.state.values[key] = autoranged_reading(
                value, kind, ranges, self[key], self[key.replace(".range", ".autorange")] != 0,
                self["measure.nplc"], self.inst.rng)
            out.append(reading)
        return out[0], out[1]

    def aperture_s(self) -> float:
        return self["measure.nplc"] / self.inst.line_frequency

    def _measure_function(self, kind: str) -> Callable[[list[Any]], tuple[Any, ...]]:
        def run(args: list[Any]) -> tuple[Any, ...]:
            buffers = [a for a in args if isinstance(a, Buffer)]
            if len(buffers) != len(args):
                raise LuaRuntimeError(f"bad argument to `measure.{kind}' (reading buffer expected)")
            for buffer in buffers:
                buffer.start()
            clock = self.inst.world.clock
            delay = max(self["measure.delay"], 0.0)
            result: tuple[float, ...] = ()
            for _ in range(int(self["measure.count"])):
                clock.sleep(delay + self.aperture_s() + MEASURE_OVERHEAD_S)
                self.inst.world.sync()
                i, v = self.read()
                result = self.store(kind, i, v, buffers, self.inst.world.time_s)
            return result
        return run

    def store(self, kind: str, i: float, v: float, buffers: Sequence[Buffer | None], t_s: float,
              source: float | None = None) -> tuple[float, ...]:
        values = {"i": (i,), "v": (v,), "iv": (i, v), "r": (v / i if i else math.inf,), "p": (v * i,)}[kind]
        if source is None:
            source = self.held if self.held is not None else (
                self["source.levelv"] if self["source.func"] == 1 else self["source.leveli"])
        for buffer, value, function in zip(buffers, values, ("Current", "Voltage") if kind == "iv" else
                                           (kind,), strict=False):
            if buffer is not None:
                buffer.add(Record(value, t_s, source, 2.0 if self.compliance else 0.0, function))
        return values
