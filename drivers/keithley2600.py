"""Keithley 2600B System SourceMeter (2602B, 2636B; TSP): one SourceMeter role object per SMU channel.

Written in pymeasure's style (``Instrument.control`` on a pymeasure ``Channel``) on
:class:`~drivers.base.LabInstrument`, not by subclassing pymeasure's ``Keithley2600``, which is not correct
enough to build on: it checks errors with the SCPI ``SYST:ERR?`` the TSP instrument does not understand
(its ``next_error`` exists but ``check_errors`` never uses it), its validators truncate instead of rejecting,
``measure_nplc`` maps a range as if it were a dictionary, and its channels are not pymeasure channels.

Commands follow the *Series 2600B System SourceMeter Instrument Reference Manual* (2600BS-901-01),
section 7/9 "TSP command reference" and section 3 "Reading buffers" / "Sweep operation".
Queries are ``print(...)``; the instrument prints numbers as ``1.00000e+00`` and several values
separated by tabs; ``printbuffer`` separates values with ``", "``.

Coverage
    Per channel (``channel("a")`` / ``channel("b")``): voltage/current sourcing, limits, NPLC, current range /
    auto range, 2/4-wire sense, source delay, output on/off, ``measure.iv()`` readings, the instrument-timed
    list sweep (``trigger.source.listv`` + ``trigger.measure.iv`` into ``nvbuffer1``/ ``nvbuffer2`` with
    timestamps, each point started by ``trigger.timer[T]``; section 3 "Triggering", "Timers"), the
    instrument-timed dwell at one voltage or current (the same timer, measure action only,
    :meth:`Keithley2600Channel.dwell_voltage`), settings snapshot and safe state. Instrument: ``*IDN?`` (the
    model in it narrows the voltage/current limits), the TSP error queue (``errorqueue.count`` /
    ``errorqueue.next()``), the link resynchronisation marker (:meth:`Keithley2600.sync_marker`), safe state of
    both channels. The point period is the timer's; the manual gives no per-point overhead (0.1 ms is taken from
    the 2602B datasheet's sweep rates) and no command-line limit (1000 characters, from Tektronix's own TSP
    library, see :data:`LINE_CHARS`). Minimum point period: NPLC / line frequency + 0.1 ms (0.30 / 2.10 / 20.1
    ms at 0.01 / 0.1 / 1 PLC, 50 Hz), for a sweep and a dwell alike. ``printbuffer`` timestamps have
    ``format.asciiprecision`` (6) significant digits: 1 µs resolution below 1 s, 10 µs up to 10 s. Not covered:
    TSP-Link, scripts, pulse mode, contact check, digital I/O, high-capacitance mode, the display.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from drivers.base import LabInstrument
from drivers.smu_common import (
    IntegrationTiming,
    LabChannel,
    MultiChannelSMU,
    SafeSteps,
    SweepPlan,
    check_point_period,
    check_range,
    format_number,
    parse_count,
    parse_numbers,
    snapshot_fields,
    split_fields,
)
from labctl.roles import FloatArray, SweepResult

#: Per-model maximum |V| and |I| (DC), from the 2600B datasheet.
MODEL_LIMITS: dict[str, tuple[float, float]] = {
    "2601B": (40.4, 3.03), "2602B": (40.4, 3.03), "2604B": (40.4, 3.03),
    "2611B": (202.0, 1.515), "2612B": (202.0, 1.515), "2614B": (202.0, 1.515),
    "2634B": (202.0, 1.515), "2635B": (202.0, 1.515), "2636B": (202.0, 1.515),
}
#: Time per trigger-model point beyond source delay and integration, from the 2602B datasheet's "source
#: measure to memory (sweep API)" rates: 1/560 s - 0.1 PLC at 60 Hz = 0.12 ms, 1/4200 s - 0.01 PLC = 0.07 ms.
POINT_OVERHEAD_S = 1e-4
#: At most this many values per command line when a sweep list is sent (independent TSP drivers use 50, e.g.
#: OE-FET/keithley2600's ``CHUNK_SIZE``) ...
LIST_CHUNK = 50
#: ... and at most this many characters: TSP instruments take at most 1000 characters before a line ends
#: (Tektronix's tm_devices, issue 500: "a max write of 1000 characters"; the reference manual gives no figure).
LINE_CHARS = 900
#: The Lua global a sweep list is built in (set to nil once the trigger model has it).
LIST_VARIABLE = "labctl_list"
_REPLAYED = re.compile(r"^SMU[AB]\.(SOURCE|MEASURE)\.[A-Z]+$|^SMU[AB]\.SENSE$")
_BOOL = {True: 1, False: 0}


def tsp_list(name: str, values: FloatArray, size: int = LIST_CHUNK, max_chars: int = LINE_CHARS) -> list[str]:
    """Command lines that build the Lua table ``name`` from ``values``: ``name = {}``, then assignments
    ``name[1] = v1 name[2] = v2 ...``, at most ``size`` of them and ``max_chars`` characters a line."""
    lines, line = [f"{name} = {{}}"], ""
    for k, value in enumerate(values, start=1):
        statement = f"{name}[{k}] = {format_number(value)}"
        if line and (line.count("=") >= size or len(line) + 1 + len(statement) > max_chars):
            lines.append(line)
            line = ""
        line = f"{line} {statement}" if line else statement
    return [*lines, line]


class Keithley2600Channel(LabChannel):
    """One SMU channel (``smua`` / ``smub``) in the SourceMeter role; it shares the instrument's lock."""

    prefix = "smu"

    # The union of the 2602B and 2636B limits; the instrument's identified model narrows them.
    voltage_range_V = (-202.0, 202.0)
    current_range_A = (-3.03, 3.03)
    nplc_range = (0.001, 25.0)
    dwell_range_s = (0.0, 10_000.0)
    #: What one ``nvbuffer`` sweep holds here (the list goes in :data:`LIST_CHUNK`-value lines).
    max_sweep_points = 2500
    #: The readings one dwell stores in ``nvbuffer1`` (with timestamps) and ``nvbuffer2``. The manual gives
    #: the capacity only as the buffers' ``capacity`` attribute, which shrinks when timestamps are stored;
    #: 60 000 is what the simulated 2600B holds (inferred, not a manual figure).
    max_dwell_points = 60_000
    snapshot_fields = snapshot_fields(("source_delay_s", "source_delay", float))

    source_mode = Channel.control(
        "print(smu{ch}.source.func)", "smu{ch}.source.func = %d",
        """Control the source function (str, strictly 'voltage' (OUTPUT_DCVOLTS = 1) or 'current'
        (OUTPUT_DCAMPS = 0)).""",
        validator=strict_discrete_set, values={"voltage": 1, "current": 0}, map_values=True,
    )
    source_voltage_level = Channel.control(
        "print(smu{ch}.source.levelv)", "smu{ch}.source.levelv = %g",
        """Control the source voltage level in volts (float, strictly -202 to 202; 2602B: ±40.4).""",
        validator=strict_range, values=voltage_range_V,
    )
    source_current_level = Channel.control(
        "print(smu{ch}.source.leveli)", "smu{ch}.source.leveli = %g",
        """Control the source current level in amperes (float, strictly -3.03 to 3.03; 2636B: ±1.515).""",
        validator=strict_range, values=current_range_A,
    )
    compliance_current = Channel.control(
        "print(smu{ch}.source.limiti)", "smu{ch}.source.limiti = %g",
        """Control the current limit in amperes (float, strictly 1e-10 to 3.03).""",
        validator=strict_range, values=(1e-10, 3.03), check_set_errors=True,
    )
    compliance_voltage = Channel.control(
        "print(smu{ch}.source.limitv)", "smu{ch}.source.limitv = %g",
        """Control the voltage limit in volts (float, strictly 0.01 to 202).""",
        validator=strict_range, values=(0.01, 202.0), check_set_errors=True,
    )
    nplc = Channel.control(
        "print(smu{ch}.measure.nplc)", "smu{ch}.measure.nplc = %g",
        """Control the integration time in power-line cycles (float, strictly 0.001 to 25).""",
        validator=strict_range, values=nplc_range, check_set_errors=True,
    )
    current_range_auto_enabled = Channel.control(
        "print(smu{ch}.measure.autorangei)", "smu{ch}.measure.autorangei = %d",
        """Control automatic current-measure ranging (bool, AUTORANGE_ON = 1).""",
        validator=strict_discrete_set, values=_BOOL, map_values=True, check_set_errors=True,
    )
    current_range = Channel.control(
        "print(smu{ch}.measure.rangei)", "smu{ch}.measure.rangei = %g",
        """Control the current measure range in amperes (float, strictly -3.03 to 3.03).""",
        validator=strict_range, values=current_range_A, check_set_errors=True,
    )
    four_wire_enabled = Channel.control(
        "print(smu{ch}.sense)", "smu{ch}.sense = %d",
        """Control remote (4-wire) sensing (bool, SENSE_REMOTE = 1, SENSE_LOCAL = 0).""",
        validator=strict_discrete_set, values=_BOOL, map_values=True, check_set_errors=True,
    )
    source_delay = Channel.control(
        "print(smu{ch}.source.delay)", "smu{ch}.source.delay = %g",
        """Control the extra settling time after each source step in seconds (float, -1 = DELAY_AUTO,
        0 = DELAY_OFF, up to 10000).""",
        validator=strict_range, values=(-1.0, 10_000.0), check_set_errors=True,
    )
    source_enabled = Channel.control(
        "print(smu{ch}.source.output)", "smu{ch}.source.output = %d",
        """Control the output (bool, OUTPUT_ON = 1, OUTPUT_OFF = 0).""",
        validator=strict_discrete_set, values=_BOOL, map_values=True,
    )

    def _limits(self) -> tuple[tuple[float, float], tuple[float, float]]:
        return self.parent.voltage_range_V, self.parent.current_range_A

    @property
    def compliance_current_range_A(self) -> tuple[float, float]:
        """1e-10 A up to the model's maximum current."""
        return 1e-10, self._limits()[1][1]

    @property
    def compliance_voltage_range_V(self) -> tuple[float, float]:
        """0.01 V up to the model's maximum voltage."""
        return 0.01, self._limits()[0][1]

    # ------------------------------------------------------------------------------ SourceMeter role
    def source_voltage(self, voltage_V: float) -> None:
        level = check_range("source voltage", voltage_V, self._limits()[0], "V")
        with self.lock:
            self.source_mode = "voltage"
            self.source_voltage_level = level
            self.raise_if_error("source_voltage")

    def source_current(self, current_A: float) -> None:
        level = check_range("source current", current_A, self._limits()[1], "A")
        with self.lock:
            self.source_mode = "current"
            self.source_current_level = level
            self.raise_if_error("source_current")

    # smuX.source.output does not read the error queue itself (no check_set_errors): these do.
    def output_on(self) -> None:
        self.set_checked("source_enabled", True, "output_on")

    def output_off(self) -> None:
        self.set_checked("source_enabled", False, "output_off")

    def measure(self) -> tuple[float, float]:
        """One ``smuX.measure.iv()`` (current and voltage at once): (voltage_V, current_A)."""
        values = parse_numbers(self.ask("print(smu{ch}.measure.iv())"), separator="\t")
        if values.size != 2:
            raise ValueError(f"{self.name}: measure.iv() printed {values.size} values, expected 2")
        return float(values[1]), float(values[0])

    def sweep_voltage(self, voltages_V: FloatArray, dwell_s: float) -> SweepResult:
        """Run ``voltages_V`` as the channel's own trigger-model list sweep (section "Sweep operation"), each
        point started by a trigger timer.

        The levels go to ``smuX.trigger.source.listv`` through a Lua table built a few dozen values per
        command line (:func:`tsp_list`: at most :data:`LIST_CHUNK` values and :data:`LINE_CHARS` characters),
        not one ``listv({...})`` of up to 2500 values: TSP instruments take at most 1000 characters per line
        (independent TSP drivers send lists in chunks of 50 for the same reason).

        Points are timed by the instrument's ``trigger.timer[T]`` (T = 1 for smua, 2 for smub): triggered by
        the channel's ARMED event, with pass-through on it gives the first point at once and one more every
        ``dwell_s`` (``count`` = n − 1), and the channel's source stimulus is that timer, so the point
        period is the timer's however long the source/measure actions take (as long as they fit). Within each
        period the source delay ``dwell_s`` − integration − :data:`POINT_OVERHEAD_S` places the measurement
        at the end of the dwell. Every stimulus of the channel's trigger model (arm, source, measure,
        endpulse) and the timer are reset first, and a running trigger model is aborted, so nothing a
        previous client configured leaks into the sweep; after it the stimuli and the timer are reset again.

        Each point sources the level, waits the source delay, then ``trigger.measure.iv`` into ``nvbuffer1``
        (current, with timestamps) and ``nvbuffer2`` (measured voltage); ``endsweep.action = SOURCE_HOLD``
        keeps the last level on. The driver waits on its clock, polls ``nvbuffer1.n`` and reads everything
        with one ``printbuffer``. A period shorter than integration + overhead raises
        :class:`~labctl.errors.ParameterError`. Afterwards the source delay is what it was. While the
        instrument sweeps, the driver waits with its lock released (see
        :func:`~drivers.smu_common.wait_for_points`): ``safe_state()`` from another thread aborts the sweep,
        which then raises :class:`~labctl.errors.InstrumentError`.
        """
        return self.run_list_sweep(voltages_V, dwell_s)

    def dwell_voltage(self, voltage_V: float, n_points: int, interval_s: float) -> SweepResult:
        """Hold ``voltage_V`` and take ``n_points`` readings ``interval_s`` apart into ``nvbuffer1`` (current,
        with timestamps) and ``nvbuffer2`` (voltage), timed by the channel's trigger model as a sweep is
        (section 3 "Triggering", "Timers"): ``trigger.timer[T]`` (T = 1 for smua, 2 for smub), triggered by
        the channel's ARMED event, gives the first point at once and one more every ``interval_s``
        (pass-through on, ``count`` = n − 1). The source action is disabled (``trigger.source.action =
        smuX.DISABLE``): the level set before the run stays, and no source delay is inserted (the source delay
        is "additional delay (settling time) after an output step", 9-241; it is set to DELAY_OFF anyway and put
        back). The measure action's delay (``smuX.measure.delay``, "additional delay (settling time) before
        making a measurement", 9-221, inserted "when the measure action is being performed in a sweep") is
        ``interval_s`` − integration − :data:`POINT_OVERHEAD_S`, so each reading ends at the end of its
        interval; it is put back afterwards.

        The minimum interval is integration + 0.1 ms (as a sweep's); ``n_points`` is 1 to
        :attr:`max_dwell_points`. The driver waits on its clock, polls ``nvbuffer1.n`` and reads current,
        voltage and timestamps with one ``printbuffer``. The output stays on at the level afterwards; a
        cancelled run or ``safe_state()`` from another thread stops the wait within one poll.
        """
        return super().dwell_voltage(voltage_V, n_points, interval_s)

    def dwell_current(self, current_A: float, n_points: int, interval_s: float) -> SweepResult:
        """Hold ``current_A`` (galvanostatic) and take ``n_points`` readings ``interval_s`` apart, as
        :meth:`dwell_voltage` does with ``smuX.source.func = smuX.OUTPUT_DCAMPS`` (the voltage is measured into
        ``nvbuffer2`` the same way)."""
        return super().dwell_current(current_A, n_points, interval_s)

    def source_range(self, function: str) -> tuple[float, float]:
        """The identified model's voltage or current range."""
        voltage, current = self._limits()
        return voltage if function == "voltage" else current

    def plan_writer(self) -> Callable[[str], None]:
        """Plans go through the instrument's ``write``: a Lua table's braces must not go through the
        channel's ``insert_id`` (``str.format``)."""
        return self.parent.write

    def recovery_commands(self) -> tuple[str, ...]:
        smu = f"smu{self.id}"
        return (f"{smu}.abort()", f"{smu}.source.delay = {smu}.DELAY_OFF", f"{smu}.trigger.source.stimulus = 0",
                f"trigger.timer[{self.timer}].reset()")

    @property
    def timer(self) -> int:
        """The trigger timer this channel's sweeps use (1 for smua, 2 for smub)."""
        return "ab".index(self.id) + 1

    def timing_state(self, period_s: float, dwell: bool = False) -> dict[str, float]:
        """NPLC, line frequency and the delays to put back (``restore_*``: the source delay, and for a
        ``dwell`` the measure delay too), read from the instrument; :class:`~labctl.errors.ParameterError` if
        ``period_s`` is shorter than integration + overhead. ``settle_s`` is what is left of the period for a
        delay before each measurement."""
        with self.lock:
            nplc = float(self.ask("print(smu{ch}.measure.nplc)"))
            line_frequency = float(self.parent.ask("print(localnode.linefreq)"))
            source_delay = float(self.ask("print(smu{ch}.source.delay)"))
            measure_delay = float(self.ask("print(smu{ch}.measure.delay)")) if dwell else 0.0
        minimum = self.parent.min_point_period_s(nplc, line_frequency)
        check_point_period(period_s, minimum, f"{self.name}{' (dwell)' if dwell else ''}", nplc, line_frequency,
                           name="interval_s" if dwell else "dwell_s")
        self._nplc = nplc
        return {"timer_period_s": period_s, "settle_s": period_s - minimum, "nplc": nplc,
                "line_frequency_Hz": line_frequency, "restore_source_delay_s": source_delay,
                "restore_measure_delay_s": measure_delay}

    def _fetch(self, count: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(time_s, voltage_V, current_A) of ``count`` points: one ``printbuffer`` of both buffers."""
        smu = f"smu{self.id}"
        data = parse_numbers(self.ask(f"printbuffer(1, {count}, {smu}.nvbuffer1.readings, "
                                      f"{smu}.nvbuffer2.readings, {smu}.nvbuffer1.timestamps)"))
        current, voltage, times = split_fields(data, 3, count, f"{self.name} printbuffer")
        return times, voltage, current

    def _trigger_model(self, n: int, period_s: float) -> tuple[list[str], list[str], list[str], list[str]]:
        """What a timed run of ``n`` points shares, sweep or dwell: the channel's stimuli and its timer reset
        (nothing a previous client set leaks in); buffers cleared, current with timestamps into ``nvbuffer1``,
        voltage into ``nvbuffer2``; one arm, ``n`` points, the timer started by the channel's ARMED event with
        pass-through (a point at once, then one every ``period_s``) as the source stimulus; and the resets
        that follow the run."""
        smu, timer = f"smu{self.id}", f"trigger.timer[{self.timer}]"
        reset = [f"{smu}.abort()", f"{smu}.trigger.arm.stimulus = 0", f"{smu}.trigger.measure.stimulus = 0",
                 f"{smu}.trigger.endpulse.stimulus = 0", f"{timer}.reset()"]
        buffers = [f"{smu}.nvbuffer1.clear()", f"{smu}.nvbuffer1.appendmode = 0",
                   f"{smu}.nvbuffer1.collecttimestamps = 1", f"{smu}.nvbuffer2.clear()",
                   f"{smu}.nvbuffer2.appendmode = 0"]
        run = [f"{smu}.trigger.measure.action = {smu}.ENABLE",
               f"{smu}.trigger.measure.iv({smu}.nvbuffer1, {smu}.nvbuffer2)",
               f"{smu}.trigger.endpulse.action = {smu}.SOURCE_HOLD",
               f"{smu}.trigger.endsweep.action = {smu}.SOURCE_HOLD", f"{smu}.trigger.arm.count = 1",
               f"{smu}.trigger.count = {n}", f"{timer}.delay = {format_number(period_s)}",
               f"{timer}.count = {max(n - 1, 1)}", f"{timer}.passthrough = true",
               f"{timer}.stimulus = {smu}.trigger.ARMED_EVENT_ID",
               f"{smu}.trigger.source.stimulus = {timer}.EVENT_ID"]
        after = [f"{smu}.trigger.source.stimulus = 0", f"{timer}.reset()"]
        return reset, buffers, run, after

    def sweep_plan(self, values: FloatArray, dwell_s: float) -> SweepPlan:
        smu = f"smu{self.id}"
        timing = self.timing_state(dwell_s)
        restore_delay = timing.pop("restore_source_delay_s")
        del timing["restore_measure_delay_s"]
        timing["source_delay_s"] = timing.pop("settle_s")
        reset, buffers, run, after = self._trigger_model(values.size, dwell_s)
        return SweepPlan(
            setup=[*reset, f"{smu}.source.func = {smu}.OUTPUT_DCVOLTS",
                   f"{smu}.source.levelv = {format_number(values[0])}", f"{smu}.measure.count = 1",
                   f"{smu}.measure.delay = {smu}.DELAY_OFF",
                   f"{smu}.source.delay = {format_number(timing['source_delay_s'])}", *buffers,
                   *tsp_list(LIST_VARIABLE, values), f"{smu}.trigger.source.listv({LIST_VARIABLE})",
                   f"{LIST_VARIABLE} = nil", f"{smu}.trigger.source.action = {smu}.ENABLE", *run],
            start=[f"{smu}.source.output = {smu}.OUTPUT_ON", f"{smu}.trigger.initiate()"],
            count_query=f"print({smu}.nvbuffer1.n)",
            fetch=self._fetch,
            # waitcomplete(): the last reading is in the buffer a moment before the trigger model is idle
            # (end pulse, SWEEP_COMPLETE); a source-function change in that moment is refused (-286)
            finish=["waitcomplete()", f"{smu}.source.levelv = {format_number(values[-1])}",
                    f"{smu}.source.delay = {format_number(restore_delay)}", *after],
            settings={**timing, "list_line_chars": float(LINE_CHARS)},
            timing=f"instrument trigger-model list sweep, each point started by trigger.timer[{self.timer}] "
                   "(period = dwell), source delay = period - integration - overhead",
            time_reference=f"{smu}.nvbuffer1.timestamps, first reading = 0")

    def dwell_plan(self, function: str, level: float, n_points: int, interval_s: float) -> SweepPlan:
        smu = f"smu{self.id}"
        timing = self.timing_state(interval_s, dwell=True)
        restore = {key: timing.pop(key) for key in list(timing) if key.startswith("restore_")}
        timing["measure_delay_s"] = timing.pop("settle_s")
        func, attribute = ("OUTPUT_DCVOLTS", "levelv") if function == "voltage" else ("OUTPUT_DCAMPS", "leveli")
        reset, buffers, run, after = self._trigger_model(n_points, interval_s)
        return SweepPlan(
            setup=[*reset, f"{smu}.source.func = {smu}.{func}",
                   f"{smu}.source.{attribute} = {format_number(level)}", f"{smu}.measure.count = 1",
                   f"{smu}.measure.delay = {format_number(timing['measure_delay_s'])}",
                   f"{smu}.source.delay = {smu}.DELAY_OFF", *buffers,
                   f"{smu}.trigger.source.action = {smu}.DISABLE", *run],
            start=[f"{smu}.source.output = {smu}.OUTPUT_ON", f"{smu}.trigger.initiate()"],
            count_query=f"print({smu}.nvbuffer1.n)",
            fetch=self._fetch,
            finish=["waitcomplete()", f"{smu}.source.delay = {format_number(restore['restore_source_delay_s'])}",
                    f"{smu}.measure.delay = {format_number(restore['restore_measure_delay_s'])}", *after],
            settings={**timing, "function": function, "level": level},
            timing=f"instrument dwell, each reading started by trigger.timer[{self.timer}] (period = interval), "
                   "source action disabled, measure delay = interval - integration - overhead",
            time_reference=f"{smu}.nvbuffer1.timestamps, first reading = 0",
            kind="dwell")

    # -------------------------------------------------------------------------- Instrument role
    def safe_steps(self) -> SafeSteps:
        smu = f"smu{self.id}"
        return [
            (f"{smu} abort", lambda: self.parent.write(f"{smu}.abort()")),
            (f"{smu} output off", lambda: self.parent.write(f"{smu}.source.output = 0")),
            (f"{smu} voltage level 0 V", lambda: self.parent.write(f"{smu}.source.levelv = 0")),
            (f"{smu} current level 0 A", lambda: self.parent.write(f"{smu}.source.leveli = 0")),
        ]


class Keithley2600(IntegrationTiming, MultiChannelSMU, LabInstrument):
    """Keithley 2600B SourceMeter (2602B: ±40.4 V / ±3.03 A; 2636B: ±202 V / ±1.515 A per channel), TSP.

    Procedures get one channel: ``smu.channel("a")`` or ``smu.channel("b")`` (``"smua"``/``"smub"`` also work).
    """

    #: The role this driver plays (labctl.roles); its limits below become the role's capabilities.
    role = "source_meter"

    default_name = "Keithley 2600B"
    point_overhead_s = POINT_OVERHEAD_S
    model = ""  # set by identify()
    # The union of both models (used before connecting); identify() narrows them to the model's.
    voltage_range_V = Keithley2600Channel.voltage_range_V
    current_range_A = Keithley2600Channel.current_range_A
    nplc_range = Keithley2600Channel.nplc_range
    channel_names = ("a", "b")
    channel_prefix = "smu"

    smua = Instrument.ChannelCreator(Keithley2600Channel, "a")
    smub = Instrument.ChannelCreator(Keithley2600Channel, "b")

    def replayable(self, header: str) -> bool:
        """Only source/measure attributes are replayed after a reconnect, no functions or trigger set-up."""
        return bool(_REPLAYED.match(header.upper()))

    def is_output_setting(self, key: str) -> bool:
        """``smuX.source.output`` is replayed after the channels' other attributes."""
        return key.upper() in {"SMUA.SOURCE.OUTPUT", "SMUB.SOURCE.OUTPUT"}

    def sync_marker(self, n: int) -> tuple[str, str] | None:
        """What puts the link back in step after a timeout: ``print("labctl-sync-<n>")`` and its exact reply.

        The SCPI marker ``*ESE n;*ESE?`` does not apply: a TSP message is one Lua chunk, and a printed string
        no other query of this driver prints proves that every older reply has been read."""
        return f'print("labctl-sync-{n}")', f"labctl-sync-{n}"

    def identify(self) -> str:
        """``*IDN?`` (IEEE 488.2 common command, accepted in TSP mode); narrows the limits to the model."""
        idn = super().identify()
        match = re.search(r"MODEL\s*(26\d\dB)", idn.upper())
        if match and match.group(1) in MODEL_LIMITS:
            self.model = match.group(1)
            v_max, i_max = MODEL_LIMITS[self.model]
            self.voltage_range_V = (-v_max, v_max)
            self.current_range_A = (-i_max, i_max)
        return idn

    def check_errors(self) -> list[tuple[int, str]]:
        """Read the TSP error queue: ``errorqueue.count``, then ``errorqueue.next()`` per entry (printed as
        code, message, severity, node separated by tabs)."""
        count = parse_count(self.ask("print(errorqueue.count)"))
        errors: list[tuple[int, str]] = []
        for _ in range(min(count, 32)):
            reply = self.ask_entry("print(errorqueue.next())")
            fields = reply.strip().split("\t")
            code = self.error_code(fields[0], reply)
            errors.append((code, fields[1].strip() if len(fields) > 1 else ""))
        return errors
