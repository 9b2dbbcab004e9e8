"""Keithley 2400 SourceMeter (SCPI): the :class:`~labctl.roles.SourceMeter` role on pymeasure's driver.

pymeasure's ``Keithley2400`` is correct for this model, so this class subclasses it together with
:class:`~drivers.base.SCPILabInstrument` (whose ``write``/``ask`` come first in the MRO and add the lock,
retries and reconnects). Commands follow the *Model 2400 Series SourceMeter User's Manual* (2400S-900-01),
section 18 "SCPI Command Reference"; section numbers below refer to it.

Coverage
    Voltage and current sourcing, compliance, NPLC (global on the 2400), output on/off, single readings
    (``:READ?``), the instrument-timed list sweep with buffer read-back, the instrument-timed dwell at one
    voltage or current (arm-layer timer, :meth:`Keithley2400.dwell_voltage`), the SCPI error queue, a settings
    snapshot and the safe state. The sweep's point period is appendix A's source-delay-measure cycle plus the
    source delay (0 to 999.9999 s, 18-82), on a fixed current range (appendix A leaves autorange changes out),
    and the sweep's bias level is its last value (section 10: the output returns to the bias after a sweep;
    18-78: in list mode ``:SOUR:VOLT`` programs it without moving the output; this last reading of 18-78
    ("not valid for the list or sweep mode") is inferred). Minimum point period (auto-zero on, 50 Hz): 3.23 /
    8.63 / 62.6 ms at 0.01 / 0.1 / 1 PLC; minimum dwell interval (the same conditions, sourcing V): 4.46 /
    9.86 / 63.9 ms. Everything else pymeasure offers (ranges, filters, trigger layer, buffer
    statistics, terminals, beeper) stays available under pymeasure's names. Not covered: pulse mode (2430),
    source-memory sweeps, limit tests (CALC2), math (CALC1), digital I/O.

Name changes against pymeasure
    The role needs methods ``source_voltage(V)`` and ``source_current(A)``, which pymeasure uses as
    properties; the properties are therefore :attr:`source_voltage_level` and :attr:`source_current_level`
    here, and pymeasure's ``ramp_to_*`` and ``shutdown`` are re-implemented on them (and on the clock).

Data format
    pymeasure sets ``:FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS`` on construction; every
    reading (``:READ?`` and ``:TRAC:DATA?``) therefore has five values in that fixed order (FORMat subsystem,
    ":FORMat:ELEMents"). Values that were not measured come back as 9.91e37 and become NaN.
"""

from __future__ import annotations

import numpy as np
from pymeasure.instruments import Instrument
from pymeasure.instruments.keithley import Keithley2400 as _PymeasureKeithley2400
from pymeasure.instruments.validators import strict_range

from drivers.base import LabInstrument, SCPILabInstrument
from drivers.smu_common import (
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

#: Headers that are actions or whole lists: never re-sent after a reconnect.
_NOT_REPLAYED = {":SOUR:LIST:VOLT", ":SOUR:LIST:VOLT:APP", ":SOUR:LIST:CURR", ":SOUR:LIST:CURR:APP",
                 ":SYST:BEEP", ":TRAC:CLE"}
#: Sent (best effort) when a sweep or dwell fails: back to a single, immediately triggered fixed-level
#: source-measure cycle.
_RECOVERY = (":ABOR", ":TRAC:FEED:CONT NEV", ":SOUR:VOLT:MODE FIX", ":TRIG:COUN 1", ":TRIG:DEL 0",
             ":ARM:SOUR IMM", ":ARM:COUN 1", ":SOUR:DEL:AUTO ON")
#: The reading elements pymeasure's driver sets on construction (FORMat subsystem), re-sent before a sweep.
_DATA_FORMAT = ":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS"

# Source-Delay-Measure cycle timing, appendix A (one measurement function).
TRIGGER_LATENCY_S = 225e-6  # cases I-IV: the source changes every cycle
STATIC_LATENCY_S = {True: 500e-6, False: 100e-6}  # cases V/VI: an unchanged fixed source, auto-zero on / off
SOURCE_CONFIG_S = 50e-6
AD_OVERHEAD_S = 185e-6  # each A/D phase takes NPLC / line frequency + 185 µs
#: Firmware overhead by (auto-zero, source function): cases I (on) and III (off), source V / source I.
FIRMWARE_OVERHEAD_S = {(True, "voltage"): 1.8e-3, (False, "voltage"): 0.3e-3,
                       (True, "current"): 2.15e-3, (False, "current"): 0.64e-3}
#: What a dwell leaves free in each arm-timer interval beyond the modelled cycle, so an instrument whose
#: firmware takes a little longer than appendix A says still keeps the timer's period (our choice).
DWELL_GUARD_S = 1e-3


def sdm_cycle_s(nplc: float, line_frequency_Hz: float, autozero: bool) -> float:
    """One source-delay-measure cycle of a voltage sweep measuring current, without the source delay.

    Auto-zero on measures three A/D phases per reading (signal, reference, reference zero), off only the
    signal phase (appendix A, "A/D conversion"); trigger latency, source configuration and firmware overhead
    are the appendix's figures.
    """
    phases = 3 if autozero else 1
    return (TRIGGER_LATENCY_S + SOURCE_CONFIG_S + phases * (nplc / line_frequency_Hz + AD_OVERHEAD_S)
            + FIRMWARE_OVERHEAD_S[(autozero, "voltage")])


def static_cycle_s(nplc: float, line_frequency_Hz: float, autozero: bool, function: str = "voltage") -> float:
    """One cycle of an unchanged fixed source measuring one function (appendix A, cases V and VI: "the
    Source-Delay portion of the SDM cycle is omitted"; trigger latency 500 µs with auto-zero on, 100 µs off),
    with the A/D phases of cases I/III and their firmware overhead for the source ``function`` (cases V/VI
    give no overhead figure; the same firmware runs, so the cases I/III figure is taken: inferred)."""
    phases = 3 if autozero else 1
    return (STATIC_LATENCY_S[autozero] + phases * (nplc / line_frequency_Hz + AD_OVERHEAD_S)
            + FIRMWARE_OVERHEAD_S[(autozero, function)])


class Keithley2400(SourceMeterMixin, SCPILabInstrument, _PymeasureKeithley2400):
    """Keithley 2400 SourceMeter (±210 V, ±1.05 A), one source-measure channel.

    Sign convention: the 2400 reports current flowing out of HI as positive, as the role requires.
    """

    #: The role this driver plays (labctl.roles); its limits below become the role's capabilities.
    role = "source_meter"

    default_name = "Keithley 2400"
    voltage_range_V = (-210.0, 210.0)

    @classmethod
    def min_point_period_s(cls, nplc: float, line_frequency_Hz: float = 50.0) -> float:
        """The shortest sweep point period at this NPLC:
        the appendix A source-delay-measure cycle with auto-zero on.

        Procedures check scan rates with it before connecting; 50 Hz mains is the worst case."""
        return sdm_cycle_s(nplc, line_frequency_Hz, autozero=True)
    current_range_A = (-1.05, 1.05)
    nplc_range = (0.01, 10.0)
    #: Compliance limits (SENSe1 subsystem, ":SENSe:CURRent:PROTection", ":SENSe:VOLTage:PROTection").
    compliance_current_range_A = (1e-9, 1.05)
    compliance_voltage_range_V = (2e-4, 210.0)
    #: Point period of a list sweep: the SDM cycle plus a source delay of 0 to 999.9999 s (":SOURce[1]:DELay",
    #: 18-82; section 10's "9999.999" is not what the command accepts).
    dwell_range_s = (0.0, 999.9999)
    snapshot_fields = snapshot_fields(("source_delay_auto", "source_delay_auto_enabled", bool),
                                      nplc="current_nplc", four_wire=("wires", lambda wires: wires == 4))
    #: A source list holds 2500 points, sent as one list of 100 and appends of 100 (18-91, 18-92).
    max_sweep_points = 2500
    #: The buffer holds 2500 readings (section 9 "Data Store", ``:TRACe:POINts`` 1 to 2500), and arm count x
    #: trigger count is at most 2500 (18-120 ``:ARM:COUNt``).
    max_dwell_points = 2500

    source_voltage_level = Instrument.control(
        ":SOUR:VOLT?", ":SOUR:VOLT %g",
        """Control the fixed-mode source voltage level in volts (float, strictly -210 to 210).""",
        validator=strict_range, values=voltage_range_V, check_set_errors=True,
    )
    source_current_level = Instrument.control(
        ":SOUR:CURR?", ":SOUR:CURR %g",
        """Control the fixed-mode source current level in amperes (float, strictly -1.05 to 1.05).""",
        validator=strict_range, values=current_range_A, check_set_errors=True,
    )

    def replayable(self, header: str) -> bool:
        return header.upper() not in _NOT_REPLAYED

    # ------------------------------------------------------------------------------ SourceMeter role
    def source_voltage(self, voltage_V: float) -> None:
        """Source voltage (fixed mode), measure current, and set the level in volts (SOURce subsystem)."""
        level = check_range("source voltage", voltage_V, self.voltage_range_V, "V")
        self.configure([":SOUR:FUNC VOLT", ":SOUR:VOLT:MODE FIX", ':SENS:FUNC "CURR"',
                        f":SOUR:VOLT {format_number(level)}"], "source_voltage")

    def source_current(self, current_A: float) -> None:
        """Source current (fixed mode), measure voltage, and set the level in amperes."""
        level = check_range("source current", current_A, self.current_range_A, "A")
        self.configure([":SOUR:FUNC CURR", ":SOUR:CURR:MODE FIX", ':SENS:FUNC "VOLT"',
                        f":SOUR:CURR {format_number(level)}"], "source_current")

    # pymeasure's properties do not read the error queue: every setting below does, as one locked step.
    def set_compliance_current(self, current_A: float) -> None:
        limit = check_range("compliance current", current_A, self.compliance_current_range_A, "A")
        self.set_checked("compliance_current", limit, "set_compliance_current")

    def set_compliance_voltage(self, voltage_V: float) -> None:
        limit = check_range("compliance voltage", voltage_V, self.compliance_voltage_range_V, "V")
        self.set_checked("compliance_voltage", limit, "set_compliance_voltage")

    def set_nplc(self, nplc: float) -> None:
        """Integration time in power-line cycles, 0.01 to 10 (global for V, I and R on the 2400)."""
        value = check_range("NPLC", nplc, self.nplc_range)
        self.set_checked("current_nplc", value, "set_nplc")
        self._nplc = value

    def output_on(self) -> None:
        self.set_checked("source_enabled", True, "output_on")

    def output_off(self) -> None:
        self.set_checked("source_enabled", False, "output_off")

    def measure(self) -> tuple[float, float]:
        """One source-measure cycle (``:READ?``): (voltage_V, current_A). The output must be on."""
        values = parse_numbers(self.ask(":READ?"))
        if values.size < 2:
            raise ValueError(f"{self.name}: reading with {values.size} values, expected 5")
        return float(values[0]), float(values[1])

    def sweep_voltage(self, voltages_V: FloatArray, dwell_s: float) -> SweepResult:
        """Run ``voltages_V`` as the 2400's own list sweep (section 10 "Sweep Operation").

        Each point is one source-delay-measure cycle (appendix A): the list value is applied, the source delay
        elapses, then the current is integrated for the present NPLC (three A/D phases with auto-zero on).
        ``dwell_s`` is the point period: the source delay is set to ``dwell_s`` minus the rest of the cycle
        (:func:`sdm_cycle_s`, from the NPLC, line frequency and auto-zero state read from the instrument),
        so the scan rate is the requested one; a period shorter than the cycle raises
        :class:`~labctl.errors.ParameterError`. Only the current function is measured (``:SENS:FUNC:OFF:ALL``
        first) and the trigger delay is 0, as the cycle time assumes. Current autorange would add range
        changes the cycle time leaves out (each one repeats the conversion), so a sweep made with autorange on
        runs on the fixed range that holds the compliance (``:SENS:CURR:RANG <compliance>``) and autorange is
        switched on again afterwards; the settings record the range.

        After a sweep the 2400 returns to its bias level, the fixed-mode level programmed before the sweep
        (section 10: "The source level you set becomes the bias level for the sweep"); the list starts from
        that level and ends at the last list value. The bias is therefore set to the *last* list value once
        the list mode is selected (18-78: in list mode ``:SOUR:VOLT`` does not change the output), so the
        output stays at the last voltage after the sweep instead of stepping back to the first one while the
        buffer is read. The points follow each other with no host involvement; ``time_s`` is the buffer
        timestamp of each reading relative to the first (``:TRAC:TST:FORM ABS``, 18-116). ``voltage_V`` is
        the programmed source value (the 2400 does not measure V while sourcing V unless asked to).
        Afterwards the output stays on at the last voltage in fixed mode, the trigger count is 1 again and the
        source delay is what it was. While the instrument sweeps, the driver waits with its lock released
        (see :func:`~drivers.smu_common.wait_for_points`): ``safe_state()`` from another thread aborts the
        sweep, which then raises :class:`~labctl.errors.InstrumentError`.
        """
        return self.run_list_sweep(voltages_V, dwell_s)

    def recovery_commands(self) -> tuple[str, ...]:
        return _RECOVERY

    def dwell_voltage(self, voltage_V: float, n_points: int, interval_s: float) -> SweepResult:
        """Hold ``voltage_V`` and take ``n_points`` current readings ``interval_s`` apart into the buffer, timed
        by the 2400's arm-layer timer (section 11 "Triggering": with the arm event TIMER "initially, event
        detection is satisfied immediately; subsequent event detection occurs after the timer interval
        elapses"; ``:ARM:SOURce TIMer``, ``:ARM:TIMer`` 0.001 to 99999.99 s, ``:ARM:COUNt n``, one trigger per
        arm pass). Each pass is one cycle of an unchanged fixed source (appendix A cases V/VI,
        :func:`static_cycle_s`); its trigger delay (``:TRIGger:DELay``) is the interval minus the cycle minus
        :data:`DWELL_GUARD_S`, so each reading is taken at the end of its interval while the timer alone sets
        the period: a cycle that runs a little longer than appendix A says does not move the next reading.
        The minimum interval is that cycle + 1 ms (:meth:`min_dwell_interval_s`; 4.46 / 9.86 / 63.9 ms at
        0.01 / 0.1 / 1 PLC, 50 Hz, auto-zero on, sourcing V); shorter raises
        :class:`~labctl.errors.ParameterError`, as does ``n_points`` outside 1 to 2500 (the buffer).

        The level is set in fixed mode during the set-up (the output, if on, moves then); the buffer stores
        every reading (``:TRACe:FEED:CONTrol NEXT``, timestamps ``:TRAC:TST:FORM ABS``); only the current is
        measured, on the fixed range that holds the compliance if autorange was on (range changes would add
        conversions the cycle time leaves out), and ``voltage_V`` is the programmed level. The first cycle
        is a changed source (cases I/III, 0.2 ms shorter with auto-zero on), so the first gap is that much
        longer than ``interval_s``. Afterwards the output stays on at the level, the arm layer is immediate
        with count 1 again, the trigger delay 0, and the source delay and autorange as they were. While the
        instrument runs, the driver waits with its lock released (:func:`~drivers.smu_common.wait_for_points`:
        a cancelled run or ``safe_state()`` from another thread stops the wait within one poll).
        """
        return super().dwell_voltage(voltage_V, n_points, interval_s)

    def dwell_current(self, current_A: float, n_points: int, interval_s: float) -> SweepResult:
        """Hold ``current_A`` (galvanostatic) and take ``n_points`` voltage readings ``interval_s`` apart, as
        :meth:`dwell_voltage` does with the roles swapped: only the voltage is measured (on the fixed range
        that holds the voltage compliance if autorange was on), ``current_A`` is the programmed level, and the
        firmware overhead is appendix A's for source I (2.15 / 0.64 ms with auto-zero on / off)."""
        return super().dwell_current(current_A, n_points, interval_s)

    @classmethod
    def min_dwell_interval_s(cls, nplc: float, line_frequency_Hz: float = 50.0, function: str = "voltage"
                             ) -> float:
        """The shortest dwell interval at this NPLC (auto-zero on): :func:`static_cycle_s` + the guard."""
        return static_cycle_s(nplc, line_frequency_Hz, True, function) + DWELL_GUARD_S

    def timing_state(self, sense: str) -> dict[str, float]:
        """What a sweep or dwell reads first: NPLC (global), line frequency, auto-zero, the source delay to put
        back, and autorange and compliance of the measured function ``sense`` (``"CURR"`` or ``"VOLT"``)."""
        with self.lock:
            return {"nplc": float(self.ask(f":SENS:{sense}:NPLC?")),
                    "line_frequency_Hz": float(self.ask(":SYST:LFR?")),
                    "autozero": float(bool(round(float(self.ask(":SYST:AZER?"))))),
                    "restore_auto_delay": float(self.ask(":SOUR:DEL:AUTO?")),
                    "restore_source_delay_s": float(self.ask(":SOUR:DEL?")),
                    "restore_autorange": float(self.ask(f":SENS:{sense}:RANG:AUTO?")),
                    "compliance": abs(float(self.ask(f":SENS:{sense}:PROT?")))}

    def sweep_timing(self, dwell_s: float) -> dict[str, float]:
        """The source delay that makes each point last ``dwell_s``, from the instrument's NPLC, line frequency
        and auto-zero state; :class:`~labctl.errors.ParameterError` if ``dwell_s`` is shorter than a cycle.
        Also the current range of the sweep and the settings to put back afterwards (keys ``restore_*``)."""
        state = self.timing_state("CURR")
        nplc, line_frequency, autozero = state["nplc"], state["line_frequency_Hz"], bool(state["autozero"])
        cycle = sdm_cycle_s(nplc, line_frequency, autozero)
        check_point_period(dwell_s, cycle, f"the {self.name}", nplc, line_frequency,
                           f", auto-zero {'on' if autozero else 'off'}")
        self._nplc = nplc
        compliance = state.pop("compliance")
        return {"source_delay_s": dwell_s - cycle, **state, "current_autorange": 0.0,
                "current_range_holds_A": compliance if state["restore_autorange"] else float("nan")}

    def _restore(self, timing: dict[str, float], sense: str) -> tuple[dict[str, float], list[str], list[str]]:
        """Split ``timing`` into the settings to record and the ``restore_*`` values; the commands that fix the
        ``sense`` range for the run (if autorange was on) and put the source delay and autorange back."""
        restore = {key: timing.pop(key) for key in list(timing) if key.startswith("restore_")}
        holds = "current_range_holds_A" if sense == "CURR" else "voltage_range_holds_V"
        fixed_range = ([f":SENS:{sense}:RANG {format_number(timing[holds])}"] if restore["restore_autorange"]
                       else [])
        put_back = (([":SOUR:DEL:AUTO ON"] if restore["restore_auto_delay"]
                     else [f":SOUR:DEL {format_number(restore['restore_source_delay_s'])}"])
                    + ([f":SENS:{sense}:RANG:AUTO ON"] if restore["restore_autorange"] else []))
        return timing, fixed_range, put_back

    def _fetch(self, count: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(time_s, voltage_V, current_A) of the ``count`` buffer readings (five elements each)."""
        data = parse_numbers(self.ask(":TRAC:DATA?"))
        voltage, current, _resistance, times, _status = split_fields(data, 5, count, f"{self.name} buffer")
        return times, voltage, current

    @staticmethod
    def _buffer_setup(n: int) -> list[str]:
        """Store the next ``n`` readings in the buffer (section 9 "Data Store"; 18-115), times from the first."""
        return [":TRAC:FEED:CONT NEV", ":TRAC:CLE", f":TRAC:POIN {n}", ":TRAC:FEED SENS", ":TRAC:TST:FORM ABS",
                ":TRAC:FEED:CONT NEXT"]

    def sweep_plan(self, values: FloatArray, dwell_s: float) -> SweepPlan:
        n = values.size
        timing, fixed_range, put_back = self._restore(self.sweep_timing(dwell_s), "CURR")
        return SweepPlan(
            setup=[_DATA_FORMAT, ":SOUR:FUNC VOLT", ":SENS:FUNC:OFF:ALL", ':SENS:FUNC "CURR"', *fixed_range,
                   ":SOUR:VOLT:MODE FIX", f":SOUR:VOLT {format_number(values[0])}",
                   *list_commands(":SOUR:LIST:VOLT", values), ":SOUR:VOLT:MODE LIST",
                   f":SOUR:DEL {format_number(timing['source_delay_s'])}", ":TRIG:DEL 0", ":ARM:COUN 1",
                   f":TRIG:COUN {n}", *self._buffer_setup(n)],
            # same header as output_on/off, so a reconnect replays the last one; then the bias level the
            # output returns to after the sweep: the last list value
            start=["OUTPUT 1", f":SOUR:VOLT {format_number(values[-1])}", ":INIT"],
            count_query=":TRAC:POIN:ACT?",
            fetch=self._fetch,
            finish=[":TRAC:FEED:CONT NEV", ":SOUR:VOLT:MODE FIX", ":TRIG:COUN 1", *put_back],
            settings=timing,
            timing="instrument list sweep, source delay = point period - SDM cycle (appendix A), "
                   "fixed current range, bias = last list value",
            time_reference="2400 buffer timestamps, first reading = 0")

    def dwell_plan(self, function: str, level: float, n_points: int, interval_s: float) -> SweepPlan:
        source, sense = ("VOLT", "CURR") if function == "voltage" else ("CURR", "VOLT")
        state = self.timing_state(sense)
        nplc, line_frequency, autozero = state["nplc"], state["line_frequency_Hz"], bool(state["autozero"])
        cycle = static_cycle_s(nplc, line_frequency, autozero, function)
        check_point_period(interval_s, cycle + DWELL_GUARD_S, f"the {self.name} (dwell)", nplc, line_frequency,
                           f", auto-zero {'on' if autozero else 'off'}, sourcing {function}", "interval_s")
        self._nplc = nplc
        holds = "current_range_holds_A" if sense == "CURR" else "voltage_range_holds_V"
        compliance = state.pop("compliance")
        timing = {"arm_timer_s": interval_s, "trigger_delay_s": interval_s - cycle - DWELL_GUARD_S, **state,
                  holds: compliance if state["restore_autorange"] else float("nan")}
        timing, fixed_range, put_back = self._restore(timing, sense)
        return SweepPlan(
            setup=[_DATA_FORMAT, f":SOUR:FUNC {source}", f":SOUR:{source}:MODE FIX", ":SENS:FUNC:OFF:ALL",
                   f':SENS:FUNC "{sense}"', *fixed_range, f":SOUR:{source} {format_number(level)}",
                   ":SOUR:DEL 0", f":TRIG:DEL {format_number(timing['trigger_delay_s'])}", ":TRIG:COUN 1",
                   ":ARM:SOUR TIM", f":ARM:TIM {format_number(interval_s)}", f":ARM:COUN {n_points}",
                   *self._buffer_setup(n_points)],
            start=["OUTPUT 1", ":INIT"],
            count_query=":TRAC:POIN:ACT?",
            fetch=self._fetch,
            finish=[":TRAC:FEED:CONT NEV", ":ARM:SOUR IMM", ":ARM:COUN 1", ":TRIG:DEL 0", *put_back],
            settings={**timing, "function": function, "level": level},
            timing="instrument dwell, arm-layer timer period = interval, trigger delay = interval - static "
                   "cycle (appendix A cases V/VI) - 1 ms guard",
            time_reference="2400 buffer timestamps, first reading = 0",
            kind="dwell")

    # -------------------------------------------------------------------------- Instrument role
    def safe_steps(self) -> SafeSteps:
        """Abort any sweep, output off, fixed mode, levels to 0 V / 0 A (:meth:`safe_state` tries every step)."""
        return [
            ("abort trigger model", lambda: self.write(":ABOR")),
            ("output off", lambda: self.write("OUTPUT 0")),
            ("fixed source mode", lambda: self.write(":SOUR:VOLT:MODE FIX")),
            ("voltage level 0 V", lambda: self.write(":SOUR:VOLT 0")),
            ("current level 0 A", lambda: self.write(":SOUR:CURR 0")),
        ]

    def shutdown(self) -> None:
        """Safe state, then close the connection (pymeasure's ramping shutdown is replaced)."""
        LabInstrument.shutdown(self)

    # ------------------------------------------------------------------ pymeasure helpers, re-based
    def ramp_to_voltage(self, target_voltage: float, steps: int = 30, pause: float = 20e-3) -> None:
        """Ramp the source voltage linearly to ``target_voltage`` in ``steps`` steps, ``pause`` s apart."""
        for level in np.linspace(float(self.source_voltage_level), target_voltage, steps):
            self.source_voltage_level = float(level)
            self.clock.sleep(pause)

    def ramp_to_current(self, target_current: float, steps: int = 30, pause: float = 20e-3) -> None:
        """Ramp the source current linearly to ``target_current`` in ``steps`` steps, ``pause`` s apart."""
        for level in np.linspace(float(self.source_current_level), target_current, steps):
            self.source_current_level = float(level)
            self.clock.sleep(pause)
