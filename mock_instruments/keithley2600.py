"""Keithley Series 2600B System SourceMeter (2601B ... 2636B) in TSP, after the Series 2600B Reference Manual
(2600BS-901-01): section 9 "TSP command reference", section 3 "Reading buffers" and "Sweep operation"
(triggering), section 8 "Troubleshooting" (error summary). The Lua subset is interpreted by
:mod:`mock_instruments.tsp`; each channel is the world terminal ``"<name>:a"`` / ``"<name>:b"``.

Objects: ``smuX.source.`` func, levelv, leveli, limitv, limiti, rangev, rangei, autorangev, autorangei, delay,
output, offmode, highc, compliance (read-only); ``smuX.measure.`` nplc, rangev, rangei, autorangev,
autorangei, autozero, count, delay, interval, i(), v(), iv(), r(), p(); ``smuX.sense``; ``smuX.nvbuffer1/2``
(n, clear(), appendmode, collecttimestamps, collectsourcevalues, capacity, basetimestamp, readings,
timestamps, sourcevalues, statuses, and ``buffer[i]``); ``smuX.trigger.`` source.listv/listi/linearv/
lineari/logv/logi, source.action, source.limitv/limiti, measure.action, measure.i/v/iv/r/p,
endpulse.action, endsweep.action, count, arm.count, initiate(); ``smuX.abort()``, ``smuX.reset()``, the
``smuX.*`` constants; globals ``print``, ``printbuffer``, ``reset()``, ``delay()``, ``waitcomplete()``,
``errorqueue`` (count, next(), clear()), ``localnode`` (linefreq, model, serialno, revision, prompts,
showerrors), ``format`` (asciiprecision, data), ``timer`` (reset(), measure.t()), ``beeper``, ``tostring``,
``tonumber``; ``trigger`` (EVENT_ID, ``timer[1..8]``, clear(), wait(); :mod:`mock_instruments.tsp_trigger`)
and the channels' trigger stimuli and event IDs (:mod:`mock_instruments.keithley2600_trigger`); the status
model and the IEEE 488.2 common commands (:mod:`mock_instruments.keithley2600_status`).

A command message longer than 1000 characters is refused whole (-363 "Input buffer overrun") and nothing of
it runs: Tektronix's own TSP library notes that "TSP devices have a max write of 1000 characters before a
write_termination must exist" (tm_devices issue 500); the reference manual states no figure.

Errors: what does not parse or run is -285/-286 (see tsp.py); a value outside an attribute's range is
1101 "Parameter too big" / 1102 "Parameter too small" and the attribute keeps its value.

Timing: a command-level measurement charges measure delay + count x (NPLC / line frequency + 0.5 ms). A
trigger-model point charges source delay + measure delay + count x NPLC / line frequency + 0.1 ms, the
per-point overhead implied by the 2602B datasheet's "source measure to memory (sweep API)" rates
(560/s at 0.1 NPLC, 4200/s at 0.01 NPLC, 60 Hz); points are world events, so the sweep's scan rate and the
device's hysteresis follow. The channels (``smuX``, their buffers and trigger models) are
:mod:`mock_instruments.keithley2600_channel`; this module is the instrument and its globals.

Not simulated: TSP-Link, scripts and control structures, pulse mode, contact check, digital I/O, display,
event blenders, the measurement and questionable status registers, binary formats, filters (accepted, no
effect), autozero time (AUTOZERO_AUTO refreshes in the background).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

from mock_instruments.keithley2600_channel import Buffer, Channel, Column
from mock_instruments.keithley2600_status import TspStatus
from mock_instruments.smu_channel import BufferedDwell, ServesDwells
from mock_instruments.tsp import LuaRuntimeError, Node, ParameterRangeError, TspInstrument, arg, checked
from mock_instruments.tsp_trigger import TriggerSystem

# model -> (channels, voltage ranges, current ranges)
_LOW_V = (0.1, 1.0, 6.0, 40.0)
_HIGH_V = (0.2, 2.0, 20.0, 200.0)
_I_3A = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 3.0)
_I_15 = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 1.5)
_I_LOW = (1e-9, 1e-8, *_I_15)
MODELS = {"2601B": ("a", _LOW_V, _I_3A), "2602B": ("ab", _LOW_V, _I_3A), "2604B": ("ab", _LOW_V, _I_3A),
          "2611B": ("a", _HIGH_V, _I_15), "2612B": ("ab", _HIGH_V, _I_15), "2614B": ("ab", _HIGH_V, _I_15),
          "2634B": ("ab", _HIGH_V, _I_LOW), "2635B": ("a", _HIGH_V, _I_LOW), "2636B": ("ab", _HIGH_V, _I_LOW)}


#: The longest command message the instrument takes (see the module docstring).
MAX_MESSAGE_CHARS = 1000


class MockKeithley2600(ServesDwells, TspStatus, TspInstrument):
    """The simulated 2600B (options: ``model`` "2636B" (default) or another 2600B, ``serial``,
    ``line_frequency_Hz``, ``buffered_dwells``, and the base options)."""

    model = "keithley2600"

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        self.model_number = str(options.pop("model", "2636B")).upper()
        if self.model_number not in MODELS:
            raise ValueError(f"unknown 2600B model {self.model_number!r}; known: {', '.join(MODELS)}")
        self.serial = str(options.pop("serial", f"{zlib.crc32(name.encode()) % 10000000:07d}"))
        self.line_frequency = float(options.pop("line_frequency_Hz", 60.0))
        self.idn = f"Keithley Instruments Inc., Model {self.model_number}, {self.serial}, 4.0.4"
        super().__init__(world, name, **options)
        self.trigger = TriggerSystem(world)
        self.reset_status()
        letters, v_ranges, i_ranges = MODELS[self.model_number]
        self.channels = {letter: Channel(self, letter, v_ranges, i_ranges) for letter in letters}
        self.timer_origin_s = world.clock.now()
        self._install_globals()

    def _install_globals(self) -> None:
        g = self.globals
        g.clear()
        for letter, channel in self.channels.items():
            g[f"smu{letter}"] = channel.tsp
        g.update(print=self.print_, printbuffer=self._printbuffer, reset=lambda _a: self.reset(),
                 delay=self._delay, waitcomplete=lambda _a: self.wait_pending(),
                 tostring=lambda a: self.tostring(a[0] if a else None),
                 tonumber=lambda a: self._tonumber(a))
        g["errorqueue"] = Node("errorqueue", {"count": (lambda: float(len(self.errors)), None)},
                               {"next": self._error_next, "clear": lambda _a: self.errors.clear()})
        g["localnode"] = Node("localnode", {
            "linefreq": (lambda: self.line_frequency, self._set_line_frequency),
            "model": (lambda: self.model_number, None), "serialno": (lambda: self.serial, None),
            "revision": (lambda: "4.0.4", None), "prompts": (lambda: 0.0, self._accept_flag),
            "showerrors": (lambda: 0.0, self._accept_flag)})
        g["format"] = Node("format", {
            "asciiprecision": (lambda: float(self.ascii_precision), self._set_precision),
            "data": (lambda: 1.0, self._set_data_format)}, {"ASCII": 1.0, "REAL32": 4.0, "REAL64": 5.0})
        g["timer"] = Node("timer", {}, {"reset": self._timer_reset, "measure": Node("timer.measure", {}, {
            "t": lambda _a: self.world.clock.now() - self.timer_origin_s})})
        g["beeper"] = Node("beeper", {"enable": (lambda: 1.0, self._accept_flag)}, {"beep": lambda _a: ()})
        g["trigger"] = self.trigger.node()
        g["status"] = self.status_node()

    def buffered_dwells(self) -> Iterable[BufferedDwell]:
        return [c.sweep.dwell for c in self.channels.values() if c.sweep is not None and c.sweep.dwell is not None]

    # ------------------------------------------------------------------------------------ globals
    def handle(self, message: str) -> str | None:
        if len(message.rstrip("\r\n")) > MAX_MESSAGE_CHARS:
            self.push_error(-363, "Input buffer overrun")
            return None
        try:
            return super().handle(message)
        except ParameterRangeError as exc:
            self.push_error(exc.code, str(exc))
            return "\n".join(self.output_lines) if self.output_lines else None

    def _error_next(self, _args: list[Any]) -> tuple[Any, ...]:
        if not self.errors:
            return 0.0, "Queue Is Empty", 0.0, 0.0
        code, message, severity = self.errors.pop(0)
        return float(code), message, float(severity), 0.0

    def _printbuffer(self, args: list[Any]) -> tuple[()]:
        start, end = int(arg(args, 0, "printbuffer")), int(arg(args, 1, "printbuffer"))
        columns = []
        for k, item in enumerate(args[2:], start=3):
            if isinstance(item, Buffer):
                item = Column(item, "reading")
            if not isinstance(item, Column):
                raise LuaRuntimeError(f"bad argument #{k} to `printbuffer' (reading buffer expected)")
            columns.append(item.values())
        if not columns or start < 1 or any(end > len(c) for c in columns) or end < start:
            raise LuaRuntimeError("bad argument to `printbuffer' (index out of range)")
        values = [self.tostring(c[i]) for i in range(start - 1, end) for c in columns]
        self.output_lines.append(", ".join(values))
        return ()

    def _delay(self, args: list[Any]) -> tuple[()]:
        seconds = arg(args, 0, "delay")
        if seconds < 0:
            raise ParameterRangeError(False)
        self.world.clock.sleep(seconds)
        self.world.sync()
        return ()

    def _tonumber(self, args: list[Any]) -> Any:
        value = args[0] if args else None
        try:
            return float(value) if isinstance(value, str | float) else None
        except ValueError:
            return None

    def _timer_reset(self, _args: list[Any]) -> tuple[()]:
        self.timer_origin_s = self.world.clock.now()
        return ()

    def _set_line_frequency(self, value: Any) -> None:
        if value not in (50, 60):
            raise ParameterRangeError(checked(value, 0, 1e9, "linefreq") > 60)
        self.line_frequency = float(value)

    def _set_precision(self, value: Any) -> None:
        self.ascii_precision = int(checked(value, 1, 16, "asciiprecision"))

    def _set_data_format(self, value: Any) -> None:
        if checked(value, 1, 5, "format.data") != 1:
            raise LuaRuntimeError("binary data formats are not simulated")

    def _accept_flag(self, value: Any) -> None:
        checked(value, 0, 1, "flag")

    # ---------------------------------------------------------------------------------- timing
    def reset(self) -> None:
        self.trigger.reset()
        for channel in self.channels.values():
            channel.reset()
        self.ascii_precision = 6

    def push_error(self, code: int, message: str, severity: int = 20) -> None:
        super().push_error(code, message, severity)
        self.note_error(code)

    def sweeping(self) -> int:
        return sum(2 << k for k, channel in enumerate(self.channels.values()) if channel.sweep is not None)

    def fire_command_trigger(self) -> None:
        self.trigger.fire_command_trigger()

    def pending_until_s(self) -> float | None:
        """The next event of a running finite sweep: its own, or a timer's it may be waiting for."""
        if not any(c.sweep is not None and c.sweep.total for c in self.channels.values()):
            return None
        times = [t for c in self.channels.values() if (t := c.next_s()) is not None]
        if (timer := self.trigger.next_s()) is not None:
            times.append(timer)
        return min(times) if times else None

    def wait_pending(self) -> tuple[()]:
        """``waitcomplete()`` / ``*OPC?``: let the clock run until every finite sweep has finished."""
        while (until := self.pending_until_s()) is not None:
            self.world.clock.sleep(max(0.0, until - self.world.clock.now()))
            self.world.advance_to(max(until, self.world.clock.now()))
        return ()
