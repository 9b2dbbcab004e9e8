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
    Per channel (``channel("a")`` / ``channel("b")``): voltage/current sourcing, limits, NPLC, current
    range / auto range, 2/4-wire sense, source delay, output on/off, ``measure.iv()`` readings, the
    instrument-timed list sweep (``trigger.source.listv`` + ``trigger.measure.iv`` into ``nvbuffer1``/
    ``nvbuffer2`` with timestamps), settings snapshot and safe state. Instrument: ``*IDN?`` (the model in
    it narrows the voltage/current limits), the TSP error queue (``errorqueue.count`` /
    ``errorqueue.next()``), safe state of both channels. Not covered: TSP-Link, scripts, pulse mode,
    contact check, digital I/O, high-capacitance mode, the display.
"""

from __future__ import annotations

import re

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from drivers.base import LabInstrument
from drivers.smu_common import (
    IntegrationTiming,
    LabChannel,
    MultiChannelSMU,
    SafeSteps,
    check_point_period,
    check_range,
    format_list,
    format_number,
    list_sweep_result,
    parse_count,
    parse_numbers,
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
_REPLAYED = re.compile(r"^SMU[AB]\.(SOURCE|MEASURE)\.[A-Z]+$|^SMU[AB]\.SENSE$")
_BOOL = {True: 1, False: 0}


class Keithley2600Channel(LabChannel):
    """One SMU channel (``smua`` / ``smub``) in the SourceMeter role; it shares the instrument's lock."""

    prefix = "smu"

    # The union of the 2602B and 2636B limits; the instrument's identified model narrows them.
    voltage_range_V = (-202.0, 202.0)
    current_range_A = (-3.03, 3.03)
    nplc_range = (0.001, 25.0)
    dwell_range_s = (0.0, 10_000.0)
    #: Kept to 2500 so the ``listv({...})`` line stays a few tens of kB.
    max_sweep_points = 2500

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
        level = check_range(voltage_V, self._limits()[0], "source voltage", " V")
        with self.lock:
            self.source_mode = "voltage"
            self.source_voltage_level = level
            self.raise_if_error("source_voltage")

    def source_current(self, current_A: float) -> None:
        level = check_range(current_A, self._limits()[1], "source current", " A")
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
        """Run ``voltages_V`` as the channel's own trigger-model list sweep (section "Sweep operation").

        ``smuX.trigger.source.listv`` holds the levels; each point is a source action, the source delay
        ("additional settling time after an output step"), then ``trigger.measure.iv`` into
        ``nvbuffer1`` (current, with timestamps) and ``nvbuffer2`` (measured voltage). ``endsweep.action =
        SOURCE_HOLD`` keeps the last level on; the driver waits on its clock, polls ``nvbuffer1.n`` and
        reads everything with one ``printbuffer``. ``dwell_s`` is the point period: the source delay is
        ``dwell_s`` minus the integration time (``smuX.measure.nplc`` / ``localnode.linefreq``, read from the
        instrument) and :data:`POINT_OVERHEAD_S`, with the measure delay off, so the scan rate is the
        requested one; a shorter period raises :class:`~labctl.errors.ParameterError`. Afterwards the
        source delay is DELAY_OFF (the default).
        While the instrument sweeps, the driver waits with its lock released (see
        :func:`~drivers.smu_common.wait_for_points`): ``safe_state()`` from another thread aborts the sweep,
        which then raises :class:`~labctl.errors.InstrumentError`.
        """
        smu = f"smu{self.id}"
        recovery = (f"{smu}.abort()", f"{smu}.source.delay = {smu}.DELAY_OFF")
        return self.run_list_sweep(voltages_V, dwell_s, recovery, self._limits()[0], write=self.parent.write)

    def sweep_timing(self, dwell_s: float) -> dict[str, float]:
        """The source delay that makes each point last ``dwell_s``; ParameterError if it cannot."""
        with self.lock:
            nplc = float(self.ask("print(smu{ch}.measure.nplc)"))
            line_frequency = float(self.parent.ask("print(localnode.linefreq)"))
        minimum = self.parent.min_point_period_s(nplc, line_frequency)
        check_point_period(dwell_s, minimum, self.name, nplc, line_frequency)
        self._nplc = nplc
        return {"source_delay_s": dwell_s - minimum, "nplc": nplc, "line_frequency_Hz": line_frequency}

    def _sweep(self, values: FloatArray, dwell: float) -> SweepResult:
        n = values.size
        smu = f"smu{self.id}"
        timing = self.sweep_timing(dwell)
        write = self.parent.write  # listv's braces must not go through insert_id's str.format
        with self.lock:
            self.check_sweep_cancelled()
            for statement in (
                f"{smu}.source.func = {smu}.OUTPUT_DCVOLTS",
                f"{smu}.source.levelv = {format_number(values[0])}",
                f"{smu}.measure.count = 1",
                f"{smu}.measure.delay = {smu}.DELAY_OFF",
                f"{smu}.nvbuffer1.clear()",
                f"{smu}.nvbuffer1.appendmode = 0",
                f"{smu}.nvbuffer1.collecttimestamps = 1",
                f"{smu}.nvbuffer2.clear()",
                f"{smu}.nvbuffer2.appendmode = 0",
                f"{smu}.trigger.source.listv({{{format_list(values)}}})",
                f"{smu}.trigger.source.action = {smu}.ENABLE",
                f"{smu}.trigger.measure.action = {smu}.ENABLE",
                f"{smu}.trigger.measure.iv({smu}.nvbuffer1, {smu}.nvbuffer2)",
                f"{smu}.trigger.endsweep.action = {smu}.SOURCE_HOLD",
                f"{smu}.trigger.arm.count = 1",
                f"{smu}.trigger.count = {n}",
                f"{smu}.source.delay = {format_number(timing['source_delay_s'])}",
            ):
                write(statement)
            self.raise_if_error("sweep set-up")
            write(f"{smu}.source.output = {smu}.OUTPUT_ON")
            write(f"{smu}.trigger.initiate()")
        self.wait_for_readings(f"print({smu}.nvbuffer1.n)", n, dwell)
        with self.lock:
            data = parse_numbers(self.ask(f"printbuffer(1, {n}, {smu}.nvbuffer1.readings, "
                                          f"{smu}.nvbuffer2.readings, {smu}.nvbuffer1.timestamps)"))
            current, voltage, times = split_fields(data, 3, n, f"{self.name} printbuffer")
            write(f"{smu}.source.levelv = {format_number(values[-1])}")
            write(f"{smu}.source.delay = {smu}.DELAY_OFF")
            self.raise_if_error("sweep")
        return list_sweep_result(
            times, voltage, current, dwell, n, **timing,
            timing="instrument trigger-model list sweep, source delay = period - integration - overhead",
            time_reference=f"{smu}.nvbuffer1.timestamps, first reading = 0")

    # -------------------------------------------------------------------------- Instrument role
    def model_settings(self) -> dict[str, float | str | bool]:
        return {"source_delay_s": float(self.source_delay)}

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
