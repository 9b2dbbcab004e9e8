"""Keysight (Agilent) B2900 Precision SMU, B2902A (two channels): one SourceMeter role object per channel.

pymeasure has no B2900 driver, so this one is written in pymeasure's style (``Channel.control`` with strict
validators) on :class:`~drivers.base.SCPILabInstrument`. Channel suffixes select the channel
(``:SOUR2:VOLT``, ``:OUTP2``, ``(@2)``). Commands follow the *Agilent/Keysight B2900 SCPI Command
Reference* (B2910-90030), chapter 4 "Subsystem Commands", and the trigger system of the *B2900 User's
Guide*, chapter 6 ("ARM-TRIGger model": transient and acquire actions, AINT/TIMer sources).

Coverage
    Per channel (``channel("1")`` / ``channel("2")``): voltage/current sourcing (fixed mode), compliance
    (``:SENS:CURR:PROT`` / ``:SENS:VOLT:PROT``), NPLC, current range / auto range, 4-wire (``:SENS:REM``),
    output on/off, spot readings (``:MEAS? (@n)`` with ``:FORM:ELEM:SENS VOLT,CURR``), the timer-driven
    list sweep with trace-buffer progress and ``:FETC:ARR`` read-back (source and measurement waits off,
    ``:SENSe:WAIT`` / ``:SOURce:WAIT``; output after sweep END, ``:SOUR:FUNC:TRIG:CONT ON``, the SCPI
    setting behind the User's Guide's "Output after Sweep" field as independent B2900 drivers set it, an
    inferred mapping), the timer-driven dwell at one voltage or current (:meth:`KeysightB2900Channel.dwell_voltage`),
    settings snapshot and safe state. Minimum point period: aperture + 0.2 ms (our
    estimate of the acquisition overhead; 0.40 / 2.20 / 20.2 ms at 0.01 / 0.1 / 1 PLC, 50 Hz), for a sweep
    and a dwell alike.
    Instrument: ``*IDN?``, the SCPI error queue, safe state of both channels. Not covered: pulse mode,
    staircase sweep commands (a list covers them), math/limit tests, digital I/O, LXI events, output filter,
    high-capacitance mode, the B2910 series' extra ranges.
"""

from __future__ import annotations

import re

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from drivers.base import SCPILabInstrument
from drivers.smu_common import (
    IntegrationTiming,
    LabChannel,
    MultiChannelSMU,
    SafeSteps,
    SweepPlan,
    check_range,
    format_number,
    list_commands,
    parse_numbers,
)
from labctl.errors import ParameterError
from labctl.roles import FloatArray, SweepResult

_BOOL = {True: 1, False: 0}
#: Time the acquisition needs beyond the aperture before the next timer tick (range change, transfer).
ACQUIRE_OVERHEAD_S = 2e-4
_NOT_REPLAYED = re.compile(r"^:(INIT|ABOR|SOUR\d:LIST:)")
#: Sent (best effort) when a sweep or dwell fails: back to fixed mode and single, automatically triggered
#: readings.
_RECOVERY = (":ABOR (@{ch})", ":TRAC{ch}:FEED:CONT NEV", ":SOUR{ch}:VOLT:MODE FIX",
             ":TRIG{ch}:SOUR AINT", ":TRIG{ch}:COUN 1", ":TRIG{ch}:ACQ:DEL 0")


class KeysightB2900Channel(LabChannel):
    """One B2902A channel (1 or 2) in the SourceMeter role; it shares the instrument's lock."""

    prefix = "ch"
    voltage_range_V = (-210.0, 210.0)
    current_range_A = (-3.03, 3.03)
    #: NPLC 4e-4..100 at 50 Hz, 4.8e-4..120 at 60 Hz: the range valid at both line frequencies.
    nplc_range = (4.8e-4, 100.0)
    compliance_current_range_A = (1e-9, 3.03)
    compliance_voltage_range_V = (2e-4, 210.0)
    #: Timer period (= dwell) up to 1e5 s; 0 means "as fast as possible" (AINT trigger source).
    dwell_range_s = (0.0, 1e5)
    max_sweep_points = 2500
    #: A dwell fills the trace buffer, 100 000 readings (SCPI reference, ``:TRACe:POINts`` and
    #: ``:TRIGger:COUNt`` 1 to 100000).
    max_dwell_points = 100_000

    source_mode = Channel.control(
        ":SOUR{ch}:FUNC:MODE?", ":SOUR{ch}:FUNC:MODE %s",
        """Control the source function (str, strictly 'voltage' or 'current').""",
        validator=strict_discrete_set, values={"voltage": "VOLT", "current": "CURR"}, map_values=True,
        cast=str, check_set_errors=True,
    )
    source_voltage_level = Channel.control(
        ":SOUR{ch}:VOLT?", ":SOUR{ch}:VOLT %g",
        """Control the fixed-mode voltage level in volts (float, strictly -210 to 210).""",
        validator=strict_range, values=voltage_range_V, check_set_errors=True,
    )
    source_current_level = Channel.control(
        ":SOUR{ch}:CURR?", ":SOUR{ch}:CURR %g",
        """Control the fixed-mode current level in amperes (float, strictly -3.03 to 3.03).""",
        validator=strict_range, values=current_range_A, check_set_errors=True,
    )
    compliance_current = Channel.control(
        ":SENS{ch}:CURR:PROT?", ":SENS{ch}:CURR:PROT %g",
        """Control the current compliance while sourcing voltage, in amperes (float, strictly 1e-9 to
        3.03; the usable maximum depends on the voltage range).""",
        validator=strict_range, values=compliance_current_range_A, check_set_errors=True,
    )
    compliance_voltage = Channel.control(
        ":SENS{ch}:VOLT:PROT?", ":SENS{ch}:VOLT:PROT %g",
        """Control the voltage compliance while sourcing current, in volts (float, strictly 2e-4 to 210).""",
        validator=strict_range, values=compliance_voltage_range_V, check_set_errors=True,
    )
    nplc = Channel.control(
        ":SENS{ch}:CURR:NPLC?", ":SENS{ch}:CURR:NPLC %g",
        """Control the integration time in power-line cycles (float, strictly 4.8e-4 to 100); it sets the
        aperture shared by the voltage and current measurements.""",
        validator=strict_range, values=nplc_range, check_set_errors=True,
    )
    aperture_s = Channel.measurement(
        ":SENS{ch}:CURR:APER?",
        """Get the measurement aperture (integration) time in seconds (float).""",
    )
    current_range_auto_enabled = Channel.control(
        ":SENS{ch}:CURR:RANG:AUTO?", ":SENS{ch}:CURR:RANG:AUTO %d",
        """Control automatic current-measure ranging (bool).""",
        validator=strict_discrete_set, values=_BOOL, map_values=True, check_set_errors=True,
    )
    current_range = Channel.control(
        ":SENS{ch}:CURR:RANG?", ":SENS{ch}:CURR:RANG %g",
        """Control the current measure range in amperes (float, strictly -3.03 to 3.03); setting it
        switches auto range off.""",
        validator=strict_range, values=current_range_A, check_set_errors=True,
    )
    four_wire_enabled = Channel.control(
        ":SENS{ch}:REM?", ":SENS{ch}:REM %d",
        """Control remote (4-wire) sensing (bool).""",
        validator=strict_discrete_set, values=_BOOL, map_values=True, check_set_errors=True,
    )
    source_enabled = Channel.control(
        ":OUTP{ch}?", ":OUTP{ch} %d",
        """Control the channel output (bool).""",
        validator=strict_discrete_set, values=_BOOL, map_values=True, check_set_errors=True,
    )

    # ------------------------------------------------------------------------------ SourceMeter role
    def source_voltage(self, voltage_V: float) -> None:
        level = check_range("source voltage", voltage_V, self.voltage_range_V, "V")
        self.configure([":SOUR{ch}:FUNC:MODE VOLT", ":SOUR{ch}:VOLT:MODE FIX", ':SENS{ch}:FUNC "VOLT","CURR"',
                        f":SOUR{{ch}}:VOLT {format_number(level)}"], "source_voltage")

    def source_current(self, current_A: float) -> None:
        level = check_range("source current", current_A, self.current_range_A, "A")
        self.configure([":SOUR{ch}:FUNC:MODE CURR", ":SOUR{ch}:CURR:MODE FIX", ':SENS{ch}:FUNC "VOLT","CURR"',
                        f":SOUR{{ch}}:CURR {format_number(level)}"], "source_current")

    def measure(self) -> tuple[float, float]:
        """One spot measurement of voltage and current (``:MEAS? (@n)``): (voltage_V, current_A)."""
        with self.lock:
            self.write(":FORM:ELEM:SENS VOLT,CURR")
            values = parse_numbers(self.ask(":MEAS? (@{ch})"))
        if values.size != 2:
            raise ValueError(f"{self.name}: spot measurement with {values.size} values, expected 2")
        return float(values[0]), float(values[1])

    def sweep_voltage(self, voltages_V: FloatArray, dwell_s: float) -> SweepResult:
        """Run ``voltages_V`` as the channel's list sweep, paced by the B2900's trigger timer.

        Transient and acquire triggers both come from the timer (``:TRIG:SOUR TIM``, ``:TRIG:TIM dwell``,
        ``:TRIG:COUN n``): the output steps every ``dwell_s`` exactly, and each acquisition is delayed
        (``:TRIG:ACQ:DEL``) so that its aperture ends just before the next step, i.e. the current is
        measured at the end of each dwell. ``dwell_s == 0`` runs the points back to back (``AINT``).

        Two automatic settings would move these times (SCPI reference, ``:SENSe:WAIT`` / ``:SOURce:WAIT``,
        both ON with AUTO at *RST): the measurement wait ("the time the measurement channel cannot start
        measurement after the start of a DC output") and the source wait ("the time the source channel cannot
        change the output"), each gain × an initial wait the instrument chooses + offset, with no figure in
        the documentation. Both are switched off for the sweep (wait time 0), so the acquire delay alone places
        the measurement; their earlier states are put back afterwards. After a list sweep the output either
        returns to the DC level programmed before it ("Output after Sweep: START VALUE", the default) or keeps
        the last sweep value ("END VALUE"; User's Guide, Sweep dialog box). END is chosen with
        ``:SOUR:FUNC:TRIG:CONT ON`` (the SCPI setting behind that dialog field, as independent B2900 drivers
        set it), so the output stays at the last voltage while the data are read instead of stepping back
        to the first one.

        Progress is read from the trace buffer count; the data come from ``:FETC:ARR:VOLT?``,
        ``:FETC:ARR:CURR?`` and ``:FETC:ARR:TIME?`` (measured voltage, current, timestamps). Afterwards the
        output stays on at the last voltage in fixed mode and the trigger is AINT with count 1 again. While
        the instrument sweeps, the driver waits with its lock released (see
        :func:`~drivers.smu_common.wait_for_points`): ``safe_state()`` from another thread aborts the sweep,
        which then raises :class:`~labctl.errors.InstrumentError`.
        """
        return self.run_list_sweep(voltages_V, dwell_s)

    def dwell_voltage(self, voltage_V: float, n_points: int, interval_s: float) -> SweepResult:
        """Hold ``voltage_V`` and take ``n_points`` readings of voltage and current ``interval_s`` apart, paced
        by the trigger timer as a sweep is (User's Guide chapter 6, ARM-TRIGger model; SCPI reference
        ``:TRIGger:SOURce TIMer``, ``:TRIGger:TIMer``, ``:TRIGger:COUNt`` 1 to 100000): the source is in
        fixed mode at the level, so each transient trigger re-applies the same value and the output does not
        move; each acquisition is delayed (``:TRIGger:ACQuire:DELay``) so that its aperture ends just before
        the next timer event, i.e. at the end of its interval. The measurement and source waits are off during
        the dwell (their times have no documented figure: see :meth:`sweep_voltage`) and put back afterwards.

        The minimum interval is the aperture + 0.2 ms (as a sweep's point period); ``n_points`` is 1 to
        100 000. Progress is the trace-buffer count; the data come from ``:FETC:ARR:VOLT?``,
        ``:FETC:ARR:CURR?`` and ``:FETC:ARR:TIME?``. The output stays on at the level afterwards (fixed mode:
        the DC level is the dwell's); a cancelled run or ``safe_state()`` from another thread stops the wait
        within one poll.
        """
        return super().dwell_voltage(voltage_V, n_points, interval_s)

    def dwell_current(self, current_A: float, n_points: int, interval_s: float) -> SweepResult:
        """Hold ``current_A`` (galvanostatic) and take ``n_points`` readings ``interval_s`` apart, as
        :meth:`dwell_voltage` does with the current source (``:SOUR:FUNC:MODE CURR``)."""
        return super().dwell_current(current_A, n_points, interval_s)

    def recovery_commands(self) -> tuple[str, ...]:
        return _RECOVERY

    def timed_run(self, period_s: float, what: str) -> dict[str, float]:
        """The acquire delay that ends each aperture just before the next timer event of period ``period_s``
        (0 for back-to-back points, ``period_s`` 0), and the measurement and source wait states to put back;
        :class:`~labctl.errors.ParameterError` when the period is shorter than aperture + overhead."""
        with self.lock:
            aperture = float(self.aperture_s) if period_s > 0 else 0.0
            measure_wait = round(float(self.ask(":SENS{ch}:WAIT?")))
            source_wait = round(float(self.ask(":SOUR{ch}:WAIT?")))
        acquire_delay = 0.0
        if period_s > 0:
            acquire_delay = period_s - aperture - ACQUIRE_OVERHEAD_S
            if acquire_delay < 0:
                raise ParameterError(
                    f"{what} = {period_s:g} s is shorter than the measurement ({aperture:g} s aperture + "
                    f"{ACQUIRE_OVERHEAD_S:g} s); lower the NPLC or lengthen {what}")
        return {"acquire_delay_s": acquire_delay, "aperture_s": aperture, "measure_wait": measure_wait,
                "source_wait": source_wait}

    def _fetch(self, count: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(time_s, voltage_V, current_A) of the ``count`` acquired points."""
        voltage = parse_numbers(self.ask(":FETC:ARR:VOLT? (@{ch})"))
        current = parse_numbers(self.ask(":FETC:ARR:CURR? (@{ch})"))
        times = parse_numbers(self.ask(":FETC:ARR:TIME? (@{ch})"))
        if not voltage.size == current.size == times.size == count:
            raise ValueError(f"{self.name}: fetched {voltage.size} V, {current.size} I, {times.size} "
                             f"time values for a {count}-point run")
        return times, voltage, current

    @staticmethod
    def _trace_and_pacing(n: int, period_s: float, acquire_delay_s: float) -> list[str]:
        """Timer (or back-to-back) pacing of ``n`` points, transient delay 0, the acquire delay, and the trace
        buffer collecting the next ``n`` readings."""
        pacing = ([":TRIG{ch}:SOUR TIM", f":TRIG{{ch}}:TIM {format_number(period_s)}"] if period_s > 0
                  else [":TRIG{ch}:SOUR AINT"])
        return [*pacing, f":TRIG{{ch}}:COUN {n}", ":TRIG{ch}:TRAN:DEL 0",
                f":TRIG{{ch}}:ACQ:DEL {format_number(acquire_delay_s)}", ":TRAC{ch}:FEED:CONT NEV",
                ":TRAC{ch}:CLE", f":TRAC{{ch}}:POIN {n}", ":TRAC{ch}:FEED SENS", ":TRAC{ch}:FEED:CONT NEXT"]

    @staticmethod
    def _after_run(measure_wait: int, source_wait: int) -> list[str]:
        return [":TRIG{ch}:SOUR AINT", ":TRIG{ch}:COUN 1", ":TRIG{ch}:ACQ:DEL 0", f":SENS{{ch}}:WAIT {measure_wait}",
                f":SOUR{{ch}}:WAIT {source_wait}"]

    def sweep_plan(self, values: FloatArray, dwell_s: float) -> SweepPlan:
        n = values.size
        run = self.timed_run(dwell_s, "dwell_s")
        acquire_delay, aperture = run["acquire_delay_s"], run["aperture_s"]
        measure_wait, source_wait = int(run["measure_wait"]), int(run["source_wait"])
        return SweepPlan(
            setup=[":SOUR{ch}:FUNC:MODE VOLT", ':SENS{ch}:FUNC "VOLT","CURR"', ":SENS{ch}:WAIT OFF",
                   ":SOUR{ch}:WAIT OFF", ":SOUR{ch}:FUNC:TRIG:CONT ON", ":SOUR{ch}:VOLT:MODE FIX",
                   f":SOUR{{ch}}:VOLT {format_number(values[0])}", *list_commands(":SOUR{ch}:LIST:VOLT", values),
                   ":SOUR{ch}:VOLT:MODE LIST", *self._trace_and_pacing(n, dwell_s, acquire_delay)],
            start=[":OUTP{ch} 1", ":INIT (@{ch})"],
            count_query=":TRAC{ch}:POIN:ACT?",
            fetch=self._fetch,
            finish=[":TRAC{ch}:FEED:CONT NEV", ":SOUR{ch}:VOLT:MODE FIX",
                    f":SOUR{{ch}}:VOLT {format_number(values[-1])}", *self._after_run(measure_wait, source_wait)],
            settings={"acquire_delay_s": acquire_delay, "aperture_s": aperture, "measure_wait_s": 0.0,
                      "source_wait_s": 0.0, "output_after_sweep": "END"},
            timing="instrument list sweep, trigger timer period = dwell, source and measurement waits off"
            if dwell_s > 0 else "instrument list sweep, automatic internal trigger (back to back)",
            time_reference="B2900 :FETC:ARR:TIME?, first reading = 0")

    def dwell_plan(self, function: str, level: float, n_points: int, interval_s: float) -> SweepPlan:
        source = "VOLT" if function == "voltage" else "CURR"
        run = self.timed_run(interval_s, "interval_s")
        return SweepPlan(
            setup=[f":SOUR{{ch}}:FUNC:MODE {source}", ':SENS{ch}:FUNC "VOLT","CURR"', ":SENS{ch}:WAIT OFF",
                   ":SOUR{ch}:WAIT OFF", f":SOUR{{ch}}:{source}:MODE FIX",
                   f":SOUR{{ch}}:{source} {format_number(level)}",
                   *self._trace_and_pacing(n_points, interval_s, run["acquire_delay_s"])],
            start=[":OUTP{ch} 1", ":INIT (@{ch})"],
            count_query=":TRAC{ch}:POIN:ACT?",
            fetch=self._fetch,
            finish=[":TRAC{ch}:FEED:CONT NEV", *self._after_run(int(run["measure_wait"]), int(run["source_wait"]))],
            settings={"acquire_delay_s": run["acquire_delay_s"], "aperture_s": run["aperture_s"],
                      "measure_wait_s": 0.0, "source_wait_s": 0.0, "function": function, "level": level},
            timing="instrument dwell, trigger timer period = interval, fixed source, acquisition at the end of "
                   "each interval, source and measurement waits off",
            time_reference="B2900 :FETC:ARR:TIME?, first reading = 0",
            kind="dwell")

    # -------------------------------------------------------------------------- Instrument role
    def safe_steps(self) -> SafeSteps:
        ch = f"ch{self.id}"
        return [
            (f"{ch} abort", lambda: self.write(":ABOR (@{ch})")),
            (f"{ch} output off", lambda: self.write(":OUTP{ch} 0")),
            (f"{ch} fixed source mode", lambda: self.write(":SOUR{ch}:VOLT:MODE FIX")),
            (f"{ch} voltage level 0 V", lambda: self.write(":SOUR{ch}:VOLT 0")),
            (f"{ch} current level 0 A", lambda: self.write(":SOUR{ch}:CURR 0")),
        ]


class KeysightB2900(IntegrationTiming, MultiChannelSMU, SCPILabInstrument):
    """Keysight B2902A Precision SMU (±210 V, ±3.03 A DC per channel), two channels.

    Procedures get one channel: ``smu.channel("1")`` or ``smu.channel("2")`` (``1``, ``"ch2"`` also work).
    The minimum point period is the aperture plus the acquire overhead.
    """

    #: The role this driver plays (labctl.roles); its limits below become the role's capabilities.
    role = "source_meter"

    default_name = "Keysight B2902A"
    point_overhead_s = ACQUIRE_OVERHEAD_S
    voltage_range_V = KeysightB2900Channel.voltage_range_V
    current_range_A = KeysightB2900Channel.current_range_A
    nplc_range = KeysightB2900Channel.nplc_range
    channel_names = ("1", "2")
    channel_prefix = "ch"

    ch1 = Instrument.ChannelCreator(KeysightB2900Channel, "1")
    ch2 = Instrument.ChannelCreator(KeysightB2900Channel, "2")

    def replayable(self, header: str) -> bool:
        """Lists and actions that take a channel list (``:INIT (@1)``) are never re-sent."""
        return not _NOT_REPLAYED.match(header.upper())
