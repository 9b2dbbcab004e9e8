"""Keithley 2450 SourceMeter in its native SCPI mode: the :class:`~labctl.roles.SourceMeter` role.

Written in pymeasure's style on :class:`~drivers.base.SCPILabInstrument` rather than by subclassing
pymeasure's ``Keithley2450``, which is not correct for this model in native SCPI mode: its buffer methods
(inherited ``KeithleyBuffer``: ``:STAT:MEAS:ENAB``, ``:TRAC:FEED``, ``:TRAC:FEED:CONT``) are 2400 commands
the 2450 only accepts in "SCPI 2400" emulation (in SCPI mode they are -113), its statistics properties expect
three values where ``:TRACe:STATistics:AVERage?`` returns one, its beeper documents the 2400's 65 Hz–2 MHz
where the 2450 takes 20 Hz–8 kHz, ``reset()`` sends ``:*CLS``, its validators truncate instead of rejecting
and some settings (NPLC) have none, and ``voltage``/``current``/``resistance`` all read the same ``:READ?``.

Commands follow the *Model 2450 Interactive SourceMeter Reference Manual* (2450-901-01 Rev. B), section 6
"SCPI command reference"; page numbers below refer to it.

Coverage
    Voltage and current sourcing with limits (``:SOUR:VOLT:ILIM`` / ``:SOUR:CURR:VLIM``), the measure function,
    NPLC, current range / auto range, 2/4-wire sensing, terminals, source readback (6-77), output on/off, single
    readings (``:READ? "defbuffer1", SOUR, READ``), the instrument-timed list sweep (``:SOUR:LIST:VOLT`` +
    ``:SOUR:SWE:VOLT:LIST``, 6-78/6-79/6-85) read back from ``defbuffer1``, the instrument-timed dwell at one
    voltage or current (the SimpleLoop trigger-model template, :meth:`Keithley2450.dwell_voltage`), the error
    queue, a settings snapshot and the safe state. The sweep's timing rests on what section 3 ("Sweep
    operation", "Instrument settings stored in a source configuration list") and the command entries say: the
    configuration list keeps the source delay, auto delay and readback active when the list is sent, and the
    sweep's delay block adds to the source delay; the manual gives no figure for the trigger-model overhead (0.2
    ms is our estimate) or for source readback (switched off during sweeps for that reason). The minimum point
    period of a sweep or a dwell is NPLC / line frequency + 0.2 ms (0.40 / 2.20 / 20.2 ms at 0.01 / 0.1 / 1 PLC,
    50 Hz). Not covered: TSP mode, user buffers, the trigger-model builder (``:TRIG:BLOC``), digital I/O, limit
    tests, linear/log sweep commands (a list sweep covers them).
"""

from __future__ import annotations

from typing import Any

from pymeasure.instruments import Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from drivers.base import SCPILabInstrument
from drivers.smu_common import (
    IntegrationTiming,
    SafeSteps,
    SourceMeterMixin,
    SweepPlan,
    check_point_period,
    check_range,
    format_number,
    list_commands,
    parse_numbers,
    snapshot_fields,
    split_fields,
)
from labctl.roles import FloatArray, SweepResult

BUFFER = '"defbuffer1"'
_NOT_REPLAYED = {":SOUR:LIST:VOLT", ":SOUR:LIST:VOLT:APP", ":SOUR:LIST:CURR", ":SOUR:LIST:CURR:APP",
                 ":SOUR:SWE:VOLT:LIST", ":TRAC:CLE", ":SYST:BEEP"}
_BOOL = {True: 1, False: 0}
#: Time per sweep point beyond the delay block and the integration (trigger-model blocks, source update,
#: A/D transfer). The 2450 reference manual gives no figure; 0.2 ms is our estimate, and what the
#: simulated 2450 charges.
POINT_OVERHEAD_S = 2e-4


def _sense_function(reply: str) -> str:
    """``"CURR:DC"`` -> ``CURR``."""
    return str(reply).strip().strip('"').split(":")[0]


class Keithley2450(IntegrationTiming, SourceMeterMixin, SCPILabInstrument):
    """Keithley 2450 SourceMeter (±210 V, ±1.05 A) in SCPI mode, one source-measure channel.

    Sign convention: current out of FORCE HI is positive, as the role requires.
    """

    #: The role this driver plays (labctl.roles); its limits below become the role's capabilities.
    role = "source_meter"

    default_name = "Keithley 2450"
    point_overhead_s = POINT_OVERHEAD_S
    voltage_range_V = (-210.0, 210.0)
    current_range_A = (-1.05, 1.05)
    nplc_range = (0.01, 10.0)
    #: Limits: ":SOURce[1]:VOLTage:ILIMit" (1 nA to 1.05 A), ":SOURce[1]:CURRent:VLIMit" (0.02-210 V).
    compliance_current_range_A = (1e-9, 1.05)
    compliance_voltage_range_V = (0.02, 210.0)
    #: Sweep point period: integration + overhead + a delay of 0, or 50 µs to 10 ks (6-85).
    dwell_range_s = (0.0, 10_000.0)
    min_nonzero_dwell_s = 50e-6
    #: A source list holds 2500 values: one list of 100 plus appends of 100 (6-78, 6-79).
    max_sweep_points = 2500
    #: A dwell fills ``defbuffer1``, which holds 100 000 readings unless resized (section 3 "Reading
    #: buffers": the default buffers' capacity).
    max_dwell_points = 100_000
    _sourcing: str | None = None  # "voltage"/"current" once set by this driver
    snapshot_fields = snapshot_fields(
        ("sense_function", "sense_mode", str), ("source_delay_auto", "source_delay_auto_enabled", bool),
        ("source_readback", "source_readback_enabled", bool),
        ("front_terminals", "front_terminals_enabled", bool), nplc="current_nplc")

    source_mode = Instrument.control(
        ":SOUR:FUNC?", ":SOUR:FUNC %s",
        """Control the source function (str, strictly 'voltage' or 'current'), 6-72.""",
        validator=strict_discrete_set, values={"voltage": "VOLT", "current": "CURR"}, map_values=True,
        check_set_errors=True,
    )
    sense_mode = Instrument.control(
        ":SENS:FUNC?", ':SENS:FUNC "%s"',
        """Control the measure function (str, strictly 'current' or 'voltage'), ":SENSe[1]:FUNCtion".""",
        validator=strict_discrete_set, values={"current": "CURR", "voltage": "VOLT"}, map_values=True,
        get_process=_sense_function, cast=str, check_set_errors=True,
    )
    source_voltage_level = Instrument.control(
        ":SOUR:VOLT?", ":SOUR:VOLT %g",
        """Control the source voltage level in volts (float, strictly -210 to 210).""",
        validator=strict_range, values=voltage_range_V, check_set_errors=True,
    )
    source_current_level = Instrument.control(
        ":SOUR:CURR?", ":SOUR:CURR %g",
        """Control the source current level in amperes (float, strictly -1.05 to 1.05).""",
        validator=strict_range, values=current_range_A, check_set_errors=True,
    )
    compliance_current = Instrument.control(
        ":SOUR:VOLT:ILIM?", ":SOUR:VOLT:ILIM %g",
        """Control the current limit while sourcing voltage, in amperes (float, strictly 1e-9 to 1.05).""",
        validator=strict_range, values=compliance_current_range_A, check_set_errors=True,
    )
    compliance_voltage = Instrument.control(
        ":SOUR:CURR:VLIM?", ":SOUR:CURR:VLIM %g",
        """Control the voltage limit while sourcing current, in volts (float, strictly 0.02 to 210).""",
        validator=strict_range, values=compliance_voltage_range_V, check_set_errors=True,
    )
    current_nplc = Instrument.control(
        ":SENS:CURR:NPLC?", ":SENS:CURR:NPLC %g",
        """Control the current-measurement integration time in power-line cycles (float, strictly 0.01
        to 10), ":SENSe[1]:<function>:NPLCycles".""",
        validator=strict_range, values=nplc_range, check_set_errors=True,
    )
    voltage_nplc = Instrument.control(
        ":SENS:VOLT:NPLC?", ":SENS:VOLT:NPLC %g",
        """Control the voltage-measurement integration time in power-line cycles (float, strictly 0.01
        to 10).""",
        validator=strict_range, values=nplc_range, check_set_errors=True,
    )
    current_range = Instrument.control(
        ":SENS:CURR:RANG?", ":SENS:CURR:RANG %g",
        """Control the current measure range in amperes (float, strictly -1.05 to 1.05); setting it
        switches auto range off, ":SENSe[1]:<function>:RANGe".""",
        validator=strict_range, values=current_range_A, check_set_errors=True,
    )
    current_range_auto_enabled = Instrument.control(
        ":SENS:CURR:RANG:AUTO?", ":SENS:CURR:RANG:AUTO %d",
        """Control whether the current measure range is automatic (bool).""",
        validator=strict_discrete_set, values=_BOOL, map_values=True,
    )
    four_wire_enabled = Instrument.control(
        ":SENS:CURR:RSEN?", ":SENS:CURR:RSEN %d",
        """Control remote (4-wire) sensing for the current function (bool), ":SENSe[1]:<function>:RSENse".""",
        validator=strict_discrete_set, values=_BOOL, map_values=True,
    )
    source_delay_auto_enabled = Instrument.control(
        ":SOUR:VOLT:DEL:AUTO?", ":SOUR:VOLT:DEL:AUTO %d",
        """Control the voltage source's automatic delay (bool), 6-67.""",
        validator=strict_discrete_set, values=_BOOL, map_values=True,
    )
    source_readback_enabled = Instrument.control(
        ":SOUR:VOLT:READ:BACK?", ":SOUR:VOLT:READ:BACK %d",
        """Control whether the voltage source records its measured value (True, *RST) or the programmed one
        (bool), 6-77.""",
        validator=strict_discrete_set, values=_BOOL, map_values=True,
    )
    source_enabled = Instrument.control(
        ":OUTP?", ":OUTP %d",
        """Control the output state (bool), ":OUTPut[1][:STATe]".""",
        validator=strict_discrete_set, values=_BOOL, map_values=True, check_set_errors=True,
    )
    front_terminals_enabled = Instrument.control(
        ":ROUT:TERM?", ":ROUT:TERM %s",
        """Control whether the front (True) or rear (False) terminals are used (bool), ":ROUTe:TERMinals".""",
        validator=strict_discrete_set, values={True: "FRON", False: "REAR"}, map_values=True,
        cast=str,
    )

    def replayable(self, header: str) -> bool:
        return header.upper() not in _NOT_REPLAYED

    def write(self, command: str, **kwargs: Any) -> None:
        super().write(command, **kwargs)
        header = command.strip().split(" ", 1)[0].upper().lstrip(":")
        if header.startswith(("SOUR:FUNC", "SOURCE:FUNC", "SOUR1:FUNC", "*RST", "SYST:PRES")):
            # The source function changed behind measure()'s back: ask the instrument next time.
            self._sourcing = None

    # ------------------------------------------------------------------------------ SourceMeter role
    def source_voltage(self, voltage_V: float) -> None:
        level = check_range("source voltage", voltage_V, self.voltage_range_V, "V")
        with self.lock:
            self.configure([":SOUR:FUNC VOLT", ':SENS:FUNC "CURR"', f":SOUR:VOLT {format_number(level)}"],
                           "source_voltage")
            self._sourcing = "voltage"

    def source_current(self, current_A: float) -> None:
        level = check_range("source current", current_A, self.current_range_A, "A")
        with self.lock:
            self.configure([":SOUR:FUNC CURR", ':SENS:FUNC "VOLT"', f":SOUR:CURR {format_number(level)}"],
                           "source_current")
            self._sourcing = "current"

    def set_nplc(self, nplc: float) -> None:
        """Integration time of the current (and voltage) measurement, 0.01 to 10 PLC."""
        value = check_range("NPLC", nplc, self.nplc_range)
        with self.lock:
            self.current_nplc = value
            self.voltage_nplc = value
            self._nplc = value

    def measure(self) -> tuple[float, float]:
        """One reading with its source value (``:READ? "defbuffer1", SOUR, READ``, ":READ?"): (V, I).

        With source readback on (the default) the SOUR element is the measured source value.
        """
        with self.lock:
            if self._sourcing is None:
                self._sourcing = str(self.source_mode)
            values = parse_numbers(self.ask(f":READ? {BUFFER}, SOUR, READ"))
        if values.size != 2:
            raise ValueError(f"{self.name}: reading with {values.size} values, expected 2")
        source, reading = float(values[0]), float(values[1])
        return (source, reading) if self._sourcing == "voltage" else (reading, source)

    def sweep_voltage(self, voltages_V: FloatArray, dwell_s: float) -> SweepResult:
        """Run ``voltages_V`` as the 2450's own list sweep (section 3 "Sweep operation").

        ``:SOUR:LIST:VOLT`` / ``:APP`` (6-78/6-79) create the source configuration list
        ``VoltCustomSweepList``: each point stores the source settings active *when the list is sent* (level,
        source delay, auto delay, source readback; 3-38 "Instrument settings stored in a source configuration
        list", 6-66/6-67/6-77 "Where saved: Source configuration list"), and the sweep recalls them point by
        point. So auto delay is switched off, the source delay set to 0 and source readback switched off
        *before* the list is sent; otherwise every point recalls auto delay (1 ms, 3 ms on 1 µA, more on the
        lowest ranges) or the readback measurement. ``:SOUR:SWE:VOLT:LIST 1, <delay>, 1, OFF, "defbuffer1"``
        (6-85) then builds the sweep trigger model with a delay block, which is *added* to the source delay.

        ``dwell_s`` is the point period: the delay block is ``dwell_s`` minus the integration time (NPLC /
        line frequency, both read from the instrument) and :data:`POINT_OVERHEAD_S`; a shorter period raises
        :class:`~labctl.errors.ParameterError`. Source readback is off during the sweep because it measures
        the source before every reading ("a reduction in measurement speed", 6-77) and the manual gives no
        figure for it: ``voltage_V`` is therefore the programmed list value, and the settings record
        ``source_readback = 0``. ``:INIT`` runs it; the driver waits on its clock, polls ``:TRAC:ACT?`` and
        reads source value, reading and relative time per point with ``:TRAC:DATA?``. Afterwards the output
        stays on at the last voltage, and source readback, auto delay and the source delay are what they were
        before the sweep. While the instrument sweeps, the driver waits with its lock released (see
        :func:`~drivers.smu_common.wait_for_points`): ``safe_state()`` from another thread aborts the sweep,
        which then raises :class:`~labctl.errors.InstrumentError`.
        """
        return self.run_list_sweep(voltages_V, dwell_s)

    def dwell_voltage(self, voltage_V: float, n_points: int, interval_s: float) -> SweepResult:
        """Hold ``voltage_V`` and take ``n_points`` current readings ``interval_s`` apart into ``defbuffer1``,
        timed by the 2450's trigger model: the Simple Loop template ("Predefined trigger models", 3-104: "makes
        a specified number of readings"; Rev. B's SCPI entries for the templates sit at 6-163 ff.,
        ``:TRIGger:LOAD:LOOP:DURation`` at 6-163; what is sent is the template form ``:TRIGger:LOAD
        "SimpleLoop", <count>, <delay>, <readingBuffer>`` of later firmware, inferred from those entries and
        from client code that loads it so). The template repeats a constant-delay block and a measure block
        ``count`` times with no source block (unlike Duration Loop, which "turns the output on"), so the level
        set before it stays. The delay block is ``interval_s`` minus the integration (NPLC / line frequency,
        read from the instrument) and :data:`POINT_OVERHEAD_S`, rounded to 0 or >= 50 µs as the sweep's; each
        reading therefore ends at the end of its interval. Source readback is off during the dwell (the manual
        gives no figure for the extra measurement it makes: 6-77), so the source value recorded is the
        programmed level; it is put back afterwards.

        The minimum interval is the sweep's minimum point period (0.40 / 2.20 / 20.2 ms at 0.01 / 0.1 / 1
        PLC, 50 Hz); ``n_points`` is 1 to 100 000 (``defbuffer1``). The driver waits on its clock, polls
        ``:TRAC:ACT?`` and reads source value, reading and relative time with ``:TRAC:DATA?`` (6-107). The
        output stays on at the level afterwards; a cancelled run or ``safe_state()`` from another thread stops
        the wait within one poll (:func:`~drivers.smu_common.wait_for_points`).
        """
        return super().dwell_voltage(voltage_V, n_points, interval_s)

    def dwell_current(self, current_A: float, n_points: int, interval_s: float) -> SweepResult:
        """Hold ``current_A`` (galvanostatic) and take ``n_points`` voltage readings ``interval_s`` apart, as
        :meth:`dwell_voltage` does with the roles swapped (sense voltage, NPLC of the voltage function)."""
        return super().dwell_current(current_A, n_points, interval_s)

    def recovery_commands(self) -> tuple[str, ...]:
        return (":ABOR",)

    def delay_block(self, period_s: float, sense: str, source: str, what: str) -> dict[str, float]:
        """The delay block that makes each point last ``period_s`` (0 or >= 50 µs, rounded to the nearer), from
        the NPLC of the ``sense`` function and the line frequency, or :class:`~labctl.errors.ParameterError`
        when the period is shorter than integration + overhead; also the ``source`` function's readback state
        to put back afterwards (``restore_readback``)."""
        with self.lock:
            nplc = float(self.ask(f":SENS:{sense}:NPLC?"))
            line_frequency = float(self.ask(":SYST:LFR?"))
            readback = float(self.ask(f":SOUR:{source}:READ:BACK?"))
        minimum = self.min_point_period_s(nplc, line_frequency)
        check_point_period(period_s, minimum, f"the {self.name}{what}", nplc, line_frequency,
                           ", source readback off", "interval_s" if what else "dwell_s")
        delay = period_s - minimum
        if 0 < delay < self.min_nonzero_dwell_s:
            delay = 0.0 if delay < self.min_nonzero_dwell_s / 2 else self.min_nonzero_dwell_s
        self._nplc = nplc
        return {"delay_s": delay, "source_readback": 0.0, "nplc": nplc, "line_frequency_Hz": line_frequency,
                "restore_readback": readback}

    def sweep_timing(self, dwell_s: float) -> dict[str, float]:
        """The delay block that makes each point last ``dwell_s`` (:meth:`delay_block`) and the readback and
        source-delay states to put back afterwards (keys ``restore_*``)."""
        timing = self.delay_block(dwell_s, "CURR", "VOLT", "")
        with self.lock:
            auto_delay = float(self.ask(":SOUR:VOLT:DEL:AUTO?"))
            source_delay = float(self.ask(":SOUR:VOLT:DEL?"))
        return {**timing, "source_delay_s": 0.0, "restore_auto_delay": auto_delay,
                "restore_source_delay_s": source_delay}

    def _fetch(self, count: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(time_s, source value, reading) of the first ``count`` readings of ``defbuffer1``."""
        data = parse_numbers(self.ask(f":TRAC:DATA? 1, {count}, {BUFFER}, SOUR, READ, REL"))
        source, reading, times = split_fields(data, 3, count, f"{self.name} defbuffer1")
        return times, source, reading

    def sweep_plan(self, values: FloatArray, dwell_s: float) -> SweepPlan:
        timing = self.sweep_timing(dwell_s)
        restore = {key: timing.pop(key) for key in list(timing) if key.startswith("restore_")}

        delay_setting = (":SOUR:VOLT:DEL:AUTO ON" if restore["restore_auto_delay"]
                         else f":SOUR:VOLT:DEL {format_number(restore['restore_source_delay_s'])}")
        return SweepPlan(
            setup=[":SOUR:FUNC VOLT", ':SENS:FUNC "CURR"', ":SOUR:VOLT:DEL:AUTO OFF", ":SOUR:VOLT:DEL 0",
                   ":SOUR:VOLT:READ:BACK OFF", f":SOUR:VOLT {format_number(values[0])}",
                   *list_commands(":SOUR:LIST:VOLT", values), f":TRAC:CLE {BUFFER}",
                   f":SOUR:SWE:VOLT:LIST 1, {format_number(timing['delay_s'])}, 1, OFF, {BUFFER}"],
            start=[":OUTP ON", ":INIT"],
            count_query=f":TRAC:ACT? {BUFFER}",
            fetch=self._fetch,
            finish=[f":SOUR:VOLT {format_number(values[-1])}",
                    f":SOUR:VOLT:READ:BACK {round(restore['restore_readback'])}", delay_setting],
            settings=timing,
            timing="instrument list sweep, delay block = point period - integration - overhead; "
                   "source delay 0 and readback off in every configuration-list point",
            time_reference="2450 defbuffer1 relative timestamps, first reading = 0")

    def dwell_plan(self, function: str, level: float, n_points: int, interval_s: float) -> SweepPlan:
        source, sense = ("VOLT", "CURR") if function == "voltage" else ("CURR", "VOLT")
        timing = self.delay_block(interval_s, sense, source, " (dwell)")
        readback = round(timing.pop("restore_readback"))

        def fetch(count: int) -> tuple[FloatArray, FloatArray, FloatArray]:
            times, source_values, readings = self._fetch(count)
            return (times, source_values, readings) if function == "voltage" else (times, readings, source_values)

        return SweepPlan(
            setup=[f":SOUR:FUNC {source}", f':SENS:FUNC "{sense}"', f":SOUR:{source}:READ:BACK OFF",
                   f":SOUR:{source} {format_number(level)}", f":TRAC:CLE {BUFFER}",
                   f':TRIG:LOAD "SimpleLoop", {n_points}, {format_number(timing["delay_s"])}, {BUFFER}'],
            start=[":OUTP ON", ":INIT"],
            count_query=f":TRAC:ACT? {BUFFER}",
            fetch=fetch,
            finish=[f":SOUR:{source}:READ:BACK {readback}"],
            settings={**timing, "function": function, "level": level},
            timing="instrument dwell, SimpleLoop trigger model: delay block = interval - integration - overhead",
            time_reference="2450 defbuffer1 relative timestamps, first reading = 0",
            kind="dwell")

    # -------------------------------------------------------------------------- Instrument role
    def safe_steps(self) -> SafeSteps:
        """Abort the trigger model, output off, levels to 0 V / 0 A (:meth:`safe_state` tries every step)."""
        return [
            ("abort trigger model", lambda: self.write(":ABOR")),
            ("output off", lambda: self.write(":OUTP 0")),
            ("voltage level 0 V", lambda: self.write(":SOUR:VOLT 0")),
            ("current level 0 A", lambda: self.write(":SOUR:CURR 0")),
        ]
