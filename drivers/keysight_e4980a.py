"""Keysight (Agilent) E4980A precision LCR meter, 20 Hz – 2 MHz, SCPI over GPIB/USB/LAN.

Commands follow the E4980A/AL User's Guide, chapter "SCPI Command Reference" (subsystems FREQuency,
VOLTage, BIAS, FUNCtion, APERture, TRIGger, INITiate, FETCh, LIST, DISPlay, MEMory, FORMat, SYSTem:ERRor)
and chapter 8 "Overview of Remote Control" (data buffer memory, data formats). Errors are read from the
SCPI error queue after every configuration sequence and raised as :class:`~labctl.errors.InstrumentError`.

Why not pymeasure's ``AgilentE4980``: its ``__init__`` writes ``FORM ASC`` before our lock and clock exist,
its AC-level limit (0–20 V) is right only with option 001, its ``freq_sweep`` polls forever on a VISA
error, and it has no bias state, buffer or error handling. The command strings it uses are the same.

Measurement model: :meth:`KeysightE4980A.measure` uses the Cp–G function (``:FUNC:IMP:TYPE CPG``), so the
meter itself reports the parallel capacitance C (F) and parallel conductance G (S); nothing is converted.
One reading is a bus trigger (``:TRIG:SOUR BUS``, ``:INIT:CONT ON``, ``:TRIG:IMM``) and ``:FETC?``, which
returns ``<C>,<G>,<status>``: status 0 = valid, +1 = overload (data 9.9E37: raises), +3 = signal source
over its limit, +4 = ALC unable to regulate (data kept, warning logged), -1 = no data.

Transients (:meth:`KeysightE4980A.capture_transient`): the capture is instrument-timed with a list sweep of
N identical points at the present frequency, one trigger, sequential mode, the points spaced by the meter's
own step delay (``:TRIG:TDEL``) and each result stored in the data buffer memory (``:MEM:DIM DBUF,N`` /
``:MEM:FILL DBUF``, at most 201 records), read back with ``:MEM:READ? DBUF`` (4 values per record: data A,
data B, status, bin number). Aperture SHORT with averaging 1 is the fastest setting; one measurement then
takes about 5.6 ms at or above 1 kHz (the data sheet's measurement time; :meth:`measurement_time_s` is the
model used, ~5.6 test periods below 1 kHz).

TID needs the transient right after the bias step (time constants from ~20 ms up), so a capture with
``bias_V`` makes the step itself, last: every set-up command and its error check go out while the bias still
holds its filling level, then one program message ``:BIAS:VOLT:LEV <V>;:TRIG:IMM`` steps the bias and
triggers the sweep. The meter executes the two units back to back, so the first point starts one command
execution (:attr:`unit_processing_s`, an estimate: Keysight does not specify it) after the step and its
reading is taken at the middle of its integration: the dead time ``unit_processing_s + t_meas / 2`` (about
3.8 ms at SHORT, ≥ 1 kHz) is returned as ``TransientResult.dead_time_s`` and ``time_s`` counts from the step.
Setting the bias first and configuring afterwards (what this driver did before) leaves a dozen commands and
an error-queue query between the step and the trigger: 0.1–0.5 s of the transient unseen and unrecorded.

Time stamps: the E4980A returns none (a data-buffer record holds data A, data B, status and bin number, User's
Guide chapter 8 "Data Transfer"; no time-stamp query for measurements or list sweeps was found in the SCPI
command reference), so point i is placed at ``first + i · (t_meas + step_delay)`` from the
instrument's own trigger timing: trigger delay 0, the programmed step delay and the measurement time of the
aperture at that frequency. The time axis therefore carries the uncertainty of the data sheet's measurement
time (typical values); only the start of a second sweep (below) is timed by the host. The achievable spacing
is t_meas (5.6 ms at ≥ 1 kHz) for captures shorter than 200 × t_meas (≈1.1 s). A longer capture keeps that
resolution where a TID transient needs it, at the start: a first sweep of 100 points back to back, then (once
it is done, ``*OPC?``) a second sweep of 101 points spread over the rest of the duration by the step delay,
set and triggered in one message (:meth:`KeysightE4980A.capture_plan`). The second sweep's start is timed by
this driver's clock between the two trigger messages (the link's latency is alike for both and cancels); its
points then follow the instrument's timing again. The driver waits out the first sweep's own duration before
``*OPC?`` (which is taken to answer once the triggered sweep is complete, IEEE 488.2 operation-complete
semantics); a second trigger the meter ignores (-211) is reported as an error of the capture. When more points
are captured than asked for, a log-spaced subset is kept (early points dense), always including the first and
the last.

Coverage: frequency, AC level, internal DC bias level and on/off, impedance function, aperture and
averaging, trigger source/delay, step delay, continuous initiation, list mode, display page, single Cp–G
readings, buffered transients, option check (``*OPT?``: option 001 gives 0–20 Vrms and ±40 V bias; the
standard unit 0–2 Vrms and bias 0/1.5/2 V only), error queue, settings snapshot, safe state (DC bias off,
bias level 0 V, data buffer off). Not covered: current-mode test signal, ALC, impedance range hold,
compensation (open/short/load), comparator/bins, DCR, binary transfer, the external bias options.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from pymeasure.adapters import Adapter
from pymeasure.instruments import Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from drivers.base import AdapterFactory, SCPILabInstrument, attempt_all, is_connection_lost, is_timeout
from drivers.limits import check_range
from labctl.clock import Clock
from labctl.errors import ConnectionLost, InstrumentError, ParameterError
from labctl.roles import TransientResult

log = logging.getLogger(__name__)

FUNCTIONS = ("CPD", "CPQ", "CPG", "CPRP", "CSD", "CSQ", "CSRS", "LPD", "LPQ", "LPG", "LPRP", "LPRD",
             "LSD", "LSQ", "LSRS", "LSRD", "RX", "ZTD", "ZTR", "GB", "YTD", "YTR", "VDID")
APERTURE_MODES = {"SHORT": "SHOR", "SHOR": "SHOR", "MEDIUM": "MED", "MED": "MED", "LONG": "LONG"}
STATUS_TEXT = {1: "overload", 3: "signal source over its limit", 4: "ALC unable to regulate"}
VALID_STATUS = (0, 3, 4)  # 3 and 4 flag the signal source, the data are still measured
NO_DATA = -1


def _aperture(value: Any, values: Any) -> tuple[str, int]:
    """Validate ``(mode, averaging)``: mode SHORT/MEDium/LONG, averaging 1–256."""
    mode, averages = value
    key = str(mode).upper()
    if key not in APERTURE_MODES:
        raise ValueError(f"aperture mode must be SHORT, MEDIUM or LONG; got {mode!r}")
    count = int(averages)
    if count != averages or not 1 <= count <= 256:
        raise ValueError(f"averaging rate must be an integer 1–256; got {averages!r}")
    return APERTURE_MODES[key], count


def log_spaced_indices(available: int, wanted: int) -> np.ndarray:
    """``wanted`` distinct indices into ``range(available)``, logarithmically spaced, first and last kept."""
    if wanted >= available:
        return np.arange(available)
    if wanted <= 1:
        return np.array([0])
    chosen = [1.0]  # 1-based positions
    ratio = available ** (1.0 / (wanted - 1))
    while len(chosen) < wanted:
        proposal = chosen[-1] * ratio
        if proposal - chosen[-1] >= 1.0:
            chosen.append(proposal)
        else:  # the log step is below one sample: take the next sample, re-spread the rest
            chosen.append(chosen[-1] + 1.0)
            remaining = wanted - len(chosen)
            if remaining:
                ratio = (available / chosen[-1]) ** (1.0 / remaining)
    indices = np.floor(np.asarray(chosen) + 0.5).astype(int) - 1
    indices[-1] = available - 1
    return indices


class KeysightE4980A(SCPILabInstrument):
    """E4980A as a :class:`~labctl.roles.LCRMeter` (parallel C–G model)."""

    #: The role this driver plays (labctl.roles); its limits below become the role's capabilities.
    role = "lcr_meter"

    # Class-level limits, checked before anything is sent (procedures check them before connecting).
    frequency_range_Hz = (20.0, 2.0e6)
    ac_level_range_V = (0.0, 20.0)  # with option 001; a standard unit stops at 2 Vrms
    standard_ac_level_max_V = 2.0
    dc_bias_range_V = (-40.0, 40.0)  # with option 001; a standard unit has 0, 1.5 and 2 V only
    standard_dc_bias_levels_V = (0.0, 1.5, 2.0)
    delay_range_s = (0.0, 999.0)  # :TRIG:DEL and :TRIG:TDEL
    buffer_size = 201  # data buffer memory records (= list sweep points)
    short_measurement_time_s = 5.6e-3  # SHORT, averaging 1, >= 1 kHz (typical)
    #: Time the meter takes to execute one program message unit: Keysight specifies none; an estimate of
    #: 1 ms (the dead time of a capture that steps the bias counts it once, between the bias and trigger).
    unit_processing_s = 1e-3

    frequency = Instrument.control(
        ":FREQ:CW?", ":FREQ:CW %.10g",
        """Test signal frequency in Hz, 20 Hz – 2 MHz (the meter rounds to its frequency resolution).""",
        validator=strict_range, values=frequency_range_Hz, check_set_errors=True)
    ac_voltage = Instrument.control(
        ":VOLT:LEV?", ":VOLT:LEV %g",
        """Test signal level in Vrms, 0–20 V with option 001, 0–2 V without (the meter rejects more).""",
        validator=strict_range, values=ac_level_range_V, check_set_errors=True)
    dc_bias_voltage = Instrument.control(
        ":BIAS:VOLT:LEV?", ":BIAS:VOLT:LEV %g",
        """Internal DC bias level in V, ±40 V with option 001 (standard: 0, 1.5, 2 V). Setting the level
        does not switch the bias on (:attr:`dc_bias_enabled`).""",
        validator=strict_range, values=dc_bias_range_V, check_set_errors=True)
    dc_bias_enabled = Instrument.control(
        ":BIAS:STAT?", ":BIAS:STAT %d", """Internal DC bias on (True) or off (False).""",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True, check_set_errors=True)
    impedance_function = Instrument.control(
        ":FUNC:IMP:TYPE?", ":FUNC:IMP:TYPE %s",
        """Measurement function, e.g. CPG (Cp [F], G [S]), CPD (Cp, D), CSRS (Cs, Rs), ZTD (|Z|, θ°).""",
        validator=strict_discrete_set, values=FUNCTIONS, cast=str, check_set_errors=True)
    aperture = Instrument.control(
        ":APER?", ":APER %s,%d",
        """Measurement time mode and averaging rate as ``(mode, averages)``: mode SHORt/MEDium/LONG,
        averages 1–256. Reads back e.g. ``("SHOR", 1)``.""",
        validator=_aperture, get_process_list=lambda v: (str(v[0]), int(v[1])), check_set_errors=True)
    trigger_source = Instrument.control(
        ":TRIG:SOUR?", ":TRIG:SOUR %s", """Trigger source: INT (free run), EXT, BUS or HOLD.""",
        validator=strict_discrete_set, values=("INT", "EXT", "BUS", "HOLD"), cast=str, check_set_errors=True)
    continuous_initiation = Instrument.control(
        ":INIT:CONT?", ":INIT:CONT %d",
        """True: the trigger system re-arms after each measurement (needed for bus triggers).""",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True, check_set_errors=True)
    trigger_delay = Instrument.control(
        ":TRIG:DEL?", ":TRIG:DEL %g", """Delay from trigger to measurement start in s, 0–999 s.""",
        validator=strict_range, values=delay_range_s, check_set_errors=True)
    step_delay = Instrument.control(
        ":TRIG:TDEL?", ":TRIG:TDEL %g", """Step delay between list sweep points in s, 0–999 s.""",
        validator=strict_range, values=delay_range_s, check_set_errors=True)
    list_mode = Instrument.control(
        ":LIST:MODE?", ":LIST:MODE %s", """List sweep mode: SEQ (one trigger, all points) or STEP.""",
        validator=strict_discrete_set, values=("SEQ", "STEP"), cast=str, check_set_errors=True)
    display_page = Instrument.setting(
        ":DISP:PAGE %s", """Displayed page; MEAS for spot readings, LIST to run list sweeps.""",
        validator=strict_discrete_set, values=("MEAS", "LIST"), check_set_errors=True)

    def __init__(
        self,
        adapter: Adapter | str,
        name: str = "Keysight E4980A",
        *,
        address: str = "",
        adapter_factory: AdapterFactory | None = None,
        clock: Clock | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(adapter, name, address=address, adapter_factory=adapter_factory, clock=clock,
                         **kwargs)
        self._option_001: bool | None = None
        self._spot_ready = False
        self.last_capture: dict[str, float] = {}
        self._trigger_clock_s = float("nan")

    def replayable(self, header: str) -> bool:
        """Data-buffer commands are actions of one capture, not settings to restore after a reconnect."""
        return not header.upper().startswith(":MEM")

    # ------------------------------------------------------------------------------------ helpers
    def _numbers(self, command: str, multiple_of: int = 1, at_least: int = 1) -> list[float]:
        reply = self.ask(command).strip()
        try:
            values = [float(v) for v in reply.split(",")]
        except ValueError:
            values = []
        if len(values) < at_least or len(values) % multiple_of:
            raise InstrumentError(f"unreadable reply {reply[:120]!r} to {command!r}",
                                  instrument=self.name, address=self.address)
        return values

    def has_option_001(self) -> bool:
        """Whether option 001 (0–20 Vrms, ±40 V internal bias) is installed (``*OPT?``, asked once)."""
        if self._option_001 is None:
            options = [o.strip().strip('"') for o in self.ask("*OPT?").split(",")]
            self._option_001 = "001" in options
        return self._option_001

    @classmethod
    def measurement_time_s(cls, frequency_Hz: float) -> float:
        """Model of one SHORT measurement (averaging 1): 5.6 ms at ≥ 1 kHz, ~5.6 test periods below."""
        return max(cls.short_measurement_time_s, 5.6 / frequency_Hz)

    # ------------------------------------------------------------------------------ role: settings
    def set_frequency(self, frequency_Hz: float) -> None:
        """Test signal frequency in Hz (20 Hz – 2 MHz)."""
        self.frequency = check_range("frequency", frequency_Hz, self.frequency_range_Hz, "Hz")

    def set_ac_level(self, voltage_V: float) -> None:
        """Test signal level in Vrms (above 2 V only with option 001)."""
        value = check_range("AC level", voltage_V, self.ac_level_range_V, "V")
        if value > self.standard_ac_level_max_V and not self.has_option_001():
            raise ParameterError(f"AC level = {value:g} V needs option 001; this E4980A allows 0–2 Vrms")
        self.ac_voltage = value

    def _checked_bias(self, name: str, voltage_V: float) -> float:
        value = check_range(name, voltage_V, self.dc_bias_range_V, "V")
        if value not in self.standard_dc_bias_levels_V and not self.has_option_001():
            raise ParameterError(f"{name} = {value:g} V needs option 001; without it the E4980A biases at "
                                 "0, 1.5 or 2 V only")
        return value

    def set_dc_bias(self, voltage_V: float) -> None:
        """Internal DC bias level in V (does not switch the bias on); ±40 V with option 001."""
        self.dc_bias_voltage = self._checked_bias("DC bias", voltage_V)

    def dc_bias_on(self) -> None:
        self.dc_bias_enabled = True

    def dc_bias_off(self) -> None:
        self.dc_bias_enabled = False

    # ------------------------------------------------------------------------ role: measurements
    def _prepare_spot(self) -> None:
        if self._spot_ready:
            return
        for command in (":FORM:DATA ASC", ":FUNC:IMP:TYPE CPG", ":DISP:PAGE MEAS", ":TRIG:SOUR BUS",
                        ":INIT:CONT ON"):
            self.write(command)
        self.raise_if_error("measurement set-up")
        self._spot_ready = True

    def measure(self) -> tuple[float, float]:
        """One bus-triggered Cp–G reading: (capacitance_F, conductance_S). Configures the meter for it on
        first use and after a transient capture; an overload raises :class:`InstrumentError`."""
        with self.lock:
            self._prepare_spot()
            self.write(":TRIG:IMM")
            values = self._numbers(":FETC?", at_least=3)
        capacitance, conductance, status = values[0], values[1], int(values[2])
        if status not in VALID_STATUS:
            raise InstrumentError(f"measurement status {status} ({STATUS_TEXT.get(status, 'no valid data')})",
                                  instrument=self.name, address=self.address)
        if status:
            log.warning("%s: measurement status %d: %s", self.name, status, STATUS_TEXT[status])
        return capacitance, conductance

    def capture_transient(self, duration_s: float, n_points: int, *, bias_V: float | None = None
                          ) -> TransientResult:
        """Capacitance transient at the present frequency, instrument-timed (see the module docstring): a
        list sweep of identical points into the data buffer memory, read with ``:MEM:READ? DBUF``.

        With ``bias_V`` the capture makes the bias step itself, as late as the instrument allows: everything
        is configured first, with the bias still at its present (filling) level, then one program message
        ``:BIAS:VOLT:LEV <bias_V>;:TRIG:IMM`` (``:BIAS:STAT 1`` in between if the bias was off) steps the bias
        and triggers; ``time_s`` then counts from the step and ``dead_time_s`` is the time from the step to
        the first point. Without ``bias_V`` the capture runs at the present bias, ``time_s`` counts from the
        trigger and ``dead_time_s`` is NaN. Returns at most ``n_points`` samples (a log-spaced subset if more
        were captured); overloaded points are NaN."""
        if not duration_s > 0:
            raise ParameterError(f"duration_s must be > 0, got {duration_s!r}")
        if not isinstance(n_points, int | np.integer) or n_points < 1:
            raise ParameterError(f"n_points must be a positive integer, got {n_points!r}")
        if bias_V is not None:
            bias_V = self._checked_bias("bias_V", bias_V)
        with self.lock:
            frequency = float(self.frequency)
            t_meas = self.measurement_time_s(frequency)
            segments = self.capture_plan(duration_s, t_meas)
            count = sum(n for n, _ in segments)
            previous_mode, previous_averages = self.aperture
            step_units = self._bias_step_units(bias_V)
            self._spot_ready = False
            try:
                for command in (":FORM:DATA ASC", ":FUNC:IMP:TYPE CPG", ":APER SHOR,1", ":TRIG:SOUR BUS",
                                ":INIT:CONT ON", ":TRIG:DEL 0", f":TRIG:TDEL {segments[0][1]:g}",
                                ":LIST:MODE SEQ", self._frequency_list(frequency, segments[0][0]),
                                ":DISP:PAGE LIST", f":MEM:DIM DBUF,{count}", ":MEM:FILL DBUF"):
                    self.write(command)
                self.raise_if_error("transient set-up")
                starts = self._run_segments(step_units, segments, frequency, t_meas)
                last_n, last_step = segments[-1]
                records = self._read_buffer(count, last_n * (t_meas + last_step))
            finally:
                restore = f":APER {previous_mode},{previous_averages}"
                for command in (":MEM:CLE DBUF", ":DISP:PAGE MEAS", restore):
                    self.write(command)
            self.raise_if_error("transient capture")
        # The first point's integration starts with the trigger (trigger delay 0); its reading is taken at
        # the middle of the integration. With a step, the trigger unit follows the bias unit by one unit.
        first_s = t_meas / 2 + (self.unit_processing_s if step_units[:-1] else 0.0)
        dead_time = first_s if step_units[:-1] else float("nan")
        time_s = np.concatenate([first_s + start + np.arange(n) * (t_meas + step)
                                 for start, (n, step) in zip(starts, segments, strict=True)])
        self.last_capture = {"points": float(count), "segments": float(len(segments)),
                             "step_delay_s": segments[-1][1], "measurement_time_s": t_meas,
                             "dead_time_s": dead_time, "second_segment_start_s": starts[-1],
                             "trigger_clock_s": self._trigger_clock_s}
        status = records[:, 2].astype(int)
        bad = ~np.isin(status, VALID_STATUS)
        if bad.any():
            log.warning("%s: %d of %d transient points overloaded or invalid (set to NaN)",
                        self.name, int(bad.sum()), count)
        capacitance = np.where(bad, np.nan, records[:, 0])
        conductance = np.where(bad, np.nan, records[:, 1])
        keep = log_spaced_indices(count, int(n_points))
        return TransientResult(time_s=time_s[keep], capacitance_F=capacitance[keep],
                               conductance_S=conductance[keep], frequency_Hz=frequency, dead_time_s=dead_time)

    @classmethod
    def capture_plan(cls, duration_s: float, t_meas: float) -> list[tuple[int, float]]:
        """The list sweeps of a capture as (points, step delay s): one sweep of back-to-back points when
        ``duration_s`` fits in the 201-record buffer at ``t_meas`` a point; otherwise half the buffer back to
        back (the early transient at full resolution) and a second sweep spreading the other half over the
        rest of the duration with the step delay (0.1 ms resolution)."""
        size = cls.buffer_size
        if duration_s < (size - 1) * t_meas:
            return [(min(size, int(duration_s / t_meas) + 1), 0.0)]
        dense = size // 2
        rest = size - dense
        step = round((duration_s - dense * t_meas) / rest - t_meas, 4)
        return [(size, 0.0)] if step <= 0 else [(dense, 0.0), (rest, step)]

    @staticmethod
    def _frequency_list(frequency: float, count: int) -> str:
        return ":LIST:FREQ " + ",".join([f"{frequency:.10g}"] * count)

    def _run_segments(self, step_units: list[str], segments: list[tuple[int, float]], frequency: float,
                      t_meas: float) -> list[float]:
        """Step and trigger the first sweep; for a second sweep wait until the first has finished
        (``*OPC?``), then set its step delay and list and trigger it in one message. Returns when each sweep
        was triggered, on this driver's clock, counted from the first trigger: the second sweep's start is
        timed by the host (both triggers are timed alike, so the link's latency cancels)."""
        self._step_and_trigger(step_units)
        first = self.clock.now()
        self._trigger_clock_s = first  # when the capture started, on this driver's clock (last_capture)
        starts = [0.0]
        if len(segments) == 2:
            self.clock.sleep(segments[0][0] * t_meas)
            self.ask("*OPC?")
            n, step = segments[1]
            self._send_once(f":TRIG:TDEL {step:g};{self._frequency_list(frequency, n)};:TRIG:IMM")
            starts.append(self.clock.now() - first)
        return starts

    def _bias_step_units(self, bias_V: float | None) -> list[str]:
        """The units of the message that steps the bias (if asked) and triggers; the trigger is last."""
        if bias_V is None:
            return [":TRIG:IMM"]
        units = [f":BIAS:VOLT:LEV {bias_V:g}"]
        if not self.dc_bias_enabled:
            units.append(":BIAS:STAT 1")
        return [*units, ":TRIG:IMM"]

    def _step_and_trigger(self, units: list[str]) -> None:
        """Send the step-and-trigger message once, outside the recovery layer: after a dropped link it must
        not be repeated (a second step or trigger is not the capture that was asked for); the bias settings
        it makes are remembered for a later reconnect like any setting."""
        self._send_once(";".join(units))
        for unit in units[:-1]:
            self._remember_setting(unit)

    def _send_once(self, message: str) -> None:
        """Write ``message`` without the recovery layer's repeat; a lost link raises
        :class:`~labctl.errors.ConnectionLost` saying the message was not repeated."""
        try:
            Instrument.write(self, message)
        except Exception as exc:
            if not (is_connection_lost(exc) or is_timeout(exc)):
                raise
            raise ConnectionLost(f"the link failed while sending {message[:60]!r} ({exc}); a capture's trigger "
                                 "is not repeated on a new link", instrument=self.name,
                                 address=self.address) from exc

    def _read_buffer(self, count: int, expected_s: float) -> np.ndarray:
        """Wait (on the clock) for the sweep, then read the buffer; re-read a few times while records are
        still empty (status -1: the real measurement time was longer than the model)."""
        self.clock.sleep(expected_s)
        for attempt in range(6):
            values = self._numbers(":MEM:READ? DBUF", multiple_of=4, at_least=4 * count)
            records = np.asarray(values, dtype=float).reshape(-1, 4)[:count]
            if not np.any(records[:, 2].astype(int) == NO_DATA):
                return records
            if attempt < 5:
                self.clock.sleep(max(0.05, 0.2 * expected_s))
        empty = int(np.sum(records[:, 2] == NO_DATA))
        raise InstrumentError(f"the transient capture did not complete: {empty} of {count} buffer records "
                              "still empty", instrument=self.name, address=self.address)

    # --------------------------------------------------------------------------------- role: basics
    def settings_snapshot(self) -> dict[str, float | str | bool]:
        """Frequency, AC level, DC bias level and state, function, aperture mode and averaging."""
        with self.lock:
            mode, averages = self.aperture
            snapshot: dict[str, float | str | bool] = {
                "frequency_Hz": float(self.frequency),
                "ac_level_V": float(self.ac_voltage),
                "dc_bias_V": float(self.dc_bias_voltage),
                "dc_bias_on": bool(self.dc_bias_enabled),
                "function": str(self.impedance_function),
                "aperture": mode,
                "averaging": float(averages),
            }
            if self._option_001 is not None:
                snapshot["option_001"] = self._option_001
            return snapshot

    def safe_state(self) -> None:
        """DC bias off, bias level 0 V, data buffer off; each step checked against the error queue and
        tried even if an earlier one failed. The AC test signal is left at its level (the meter has no
        signal on/off; procedures set the level before each use)."""

        def step(command: str) -> None:
            self.write(command)
            self.raise_if_error(command)

        with self.lock:
            attempt_all(self.name, self.address, [
                ("DC bias off", lambda: step(":BIAS:STAT 0")),
                ("DC bias level 0 V", lambda: step(":BIAS:VOLT:LEV 0")),
                ("data buffer off", lambda: step(":MEM:CLE DBUF")),
            ])
