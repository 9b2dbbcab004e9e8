"""What the source-measure-unit drivers share: parameter checks, list formatting, buffer parsing, timing.

Every SMU driver runs :meth:`~labctl.roles.SourceMeter.sweep_voltage` on the instrument's own list sweep and
buffer. The model-specific part is the command sequence; the rest lives here so the four drivers agree on

- how a voltage list and a dwell are validated (before anything is sent),
- how a list is cut into the 100-value chunks the SCPI list commands accept,
- how a buffer reply is parsed (``9.91e37`` is "not a number" on Keithley and Keysight SMUs),
- how the driver waits for the instrument to finish (through the instrument's clock, polling its buffer
  count, never blocking a query past the VISA timeout),
- how ``time_s`` (relative to the first reading) and the achieved scan rate are computed,
- the sweep state every SMU (or SMU channel) keeps, and its safe state (:class:`SourceMeterMixin`),
- the minimum point period of SMUs that add a fixed overhead to the integration (:class:`IntegrationTiming`),
- how a list sweep runs once the model has said which commands make it (:class:`SweepPlan`,
  :meth:`SourceMeterMixin.run_plan`): set-up, error check, start, wait, read-back, restore, error check,
- how an instrument-timed dwell (:meth:`SourceMeterMixin.dwell_voltage` / :meth:`~SourceMeterMixin.dwell_current`:
  one level, many readings in the instrument's buffer) is validated and run through the same
  :meth:`~SourceMeterMixin.run_plan` once the model has built its :class:`SweepPlan`,
- which settings a snapshot reads (:func:`snapshot_fields`),
- how a channelled SMU hands out its channels (:class:`MultiChannelSMU`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from drivers import base
from drivers.base import attempt_all
from drivers.limits import check_count, check_range
from labctl.cancel import StopFlag, watching
from labctl.clock import Clock
from labctl.errors import ConnectionLost, InstrumentError, InstrumentTimeout, ParameterError, RunAborted
from labctl.roles import FloatArray, SweepResult

log = logging.getLogger(__name__)

#: Keithley and Keysight SMUs report a missing or overflowed value as 9.91e37 ("not a number").
NOT_A_NUMBER = 9.9e37
#: SCPI list commands (``:SOUR:LIST:VOLT`` and ``:APPend``) take at most 100 values each.
LIST_CHUNK = 100
#: Integration-time guess per point for timeouts, as NPLC at the slower 50 Hz line.
LINE_PERIOD_S = 1 / 50


SafeSteps = list[tuple[str, Callable[[], Any]]]


class _Timed(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def clock(self) -> Clock: ...


class _SourceMeter(_Timed, Protocol):
    """What :class:`SourceMeterMixin` needs from the instrument or channel it is mixed into."""

    _nplc: float
    sweep_cancel: StopFlag
    dwell_range_s: tuple[float, float]
    max_sweep_points: int
    compliance_current_range_A: tuple[float, float]
    compliance_voltage_range_V: tuple[float, float]
    compliance_current: Any
    compliance_voltage: Any
    source_enabled: Any

    @property
    def lock(self) -> Any: ...
    def ask(self, command: str, query_delay: float | None = None) -> str: ...
    def write(self, command: str, **kwargs: Any) -> None: ...
    def raise_if_error(self, context: str = "") -> None: ...
    def check_sweep_cancelled(self) -> None: ...
    def wait_for_readings(self, count_query: str, n_points: int, dwell_s: float) -> None: ...
    def safe_steps(self) -> SafeSteps: ...
    def sweep_plan(self, values: FloatArray, dwell_s: float) -> SweepPlan: ...
    def dwell_plan(self, function: str, level: float, n_points: int, interval_s: float) -> SweepPlan: ...
    def run_plan(self, plan: SweepPlan, n_points: int, dwell_s: float) -> SweepResult: ...
    def run_dwell(self, function: str, level: float, n_points: int, interval_s: float) -> SweepResult: ...
    def source_range(self, function: str) -> tuple[float, float]: ...
    def recovery_commands(self) -> Sequence[str]: ...
    def plan_writer(self) -> Callable[[str], None]: ...
    max_dwell_points: int


def validate_sweep(
    voltages_V: Sequence[float] | FloatArray,
    dwell_s: float,
    *,
    voltage_range_V: tuple[float, float],
    dwell_range_s: tuple[float, float],
    max_points: int,
) -> tuple[FloatArray, float]:
    """The voltage list as a 1-D float array and the dwell as a float, or :class:`ParameterError`."""
    values = np.asarray(voltages_V, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ParameterError("a sweep needs a non-empty 1-D list of voltages")
    if values.size > max_points:
        raise ParameterError(f"a sweep holds at most {max_points} points on this instrument, "
                             f"got {values.size}")
    if not np.all(np.isfinite(values)):
        raise ParameterError("sweep voltages must be finite numbers")
    low, high = voltage_range_V
    if values.min() < low or values.max() > high:
        raise ParameterError(f"sweep voltages span [{values.min():g}, {values.max():g}] V, outside "
                             f"the instrument's [{low:g}, {high:g}] V")
    dwell = check_range("dwell_s (point period)", dwell_s, dwell_range_s, "s")
    return values, dwell


def format_number(value: float) -> str:
    """A compact NRf number with 7 significant digits (µV resolution up to 10 V)."""
    return f"{float(value):.7g}"


def format_list(values: Sequence[float] | FloatArray, separator: str = ",") -> str:
    return separator.join(format_number(v) for v in values)


def chunks(values: FloatArray, size: int = LIST_CHUNK) -> list[FloatArray]:
    """``values`` cut into consecutive pieces of at most ``size`` (the first for the list command,
    the others for ``:APPend``)."""
    return [values[i:i + size] for i in range(0, len(values), size)]


def list_commands(header: str, values: FloatArray) -> list[str]:
    """The SCPI list command ``header`` with the first 100 values, then ``header:APP`` with each further 100
    (``:SOUR:LIST:VOLT 0,0.01,...``, ``:SOUR:LIST:VOLT:APP 1,1.01,...``)."""
    return [(f"{header} " if k == 0 else f"{header}:APP ") + format_list(chunk)
            for k, chunk in enumerate(chunks(values))]


def parse_numbers(reply: str, separator: str = ",") -> FloatArray:
    """A reply of separated numbers as floats; 9.91e37 ("not a number") becomes NaN."""
    text = reply.strip()
    if not text:
        return np.empty(0, dtype=np.float64)
    try:
        values = np.array([float(token) for token in text.split(separator)], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"unreadable numeric reply {reply[:80]!r}") from exc
    values[np.abs(values) >= NOT_A_NUMBER] = np.nan
    return values


def split_fields(values: FloatArray, n_fields: int, n_points: int, what: str) -> list[FloatArray]:
    """Interleaved ``a1,b1,c1,a2,b2,c2,...`` into ``[a, b, c]``, checking the count."""
    if values.size != n_fields * n_points:
        raise ValueError(f"{what}: expected {n_points} points x {n_fields} values, got {values.size} values")
    table = values.reshape(n_points, n_fields)
    return [np.ascontiguousarray(table[:, k]) for k in range(n_fields)]


def relative_times(time_s: FloatArray) -> FloatArray:
    """Timestamps relative to the first reading (every driver's ``time_s[0]`` is 0)."""
    times = np.asarray(time_s, dtype=np.float64)
    return times - times[0] if times.size else times


def achieved_rate_V_s(time_s: FloatArray, voltage_V: FloatArray) -> float:
    """The scan rate the instrument produced: total |ΔV| over the elapsed instrument time, in V/s.

    For a monotonic sweep this is |V_last - V_first| / (t_last - t_first); for a sweep that turns around it
    is the mean scan speed. NaN with fewer than two points or no elapsed time.
    """
    t = np.asarray(time_s, dtype=np.float64)
    v = np.asarray(voltage_V, dtype=np.float64)
    if t.size < 2 or v.size != t.size:
        return float("nan")
    elapsed = float(t[-1] - t[0])
    if not np.isfinite(elapsed) or elapsed <= 0:
        return float("nan")
    return float(np.nansum(np.abs(np.diff(v))) / elapsed)


def sweep_result(time_s: FloatArray, voltage_V: FloatArray, current_A: FloatArray,
                 settings: dict[str, float | str], scan: bool = True) -> SweepResult:
    """The arrays with times from the first reading; the achieved scan rate for a sweep (``scan``), NaN for
    a dwell at one level (a rate there would be noise over time)."""
    times = relative_times(time_s)
    rate = achieved_rate_V_s(times, voltage_V) if scan else float("nan")
    return SweepResult(time_s=times, voltage_V=np.asarray(voltage_V, dtype=np.float64),
                       current_A=np.asarray(current_A, dtype=np.float64), achieved_rate_V_s=rate,
                       settings=dict(settings))


def integration_period_s(nplc: float, line_frequency_Hz: float, overhead_s: float) -> float:
    """The shortest point period of an SMU that adds ``overhead_s`` to the integration (NPLC / line frequency)."""
    return nplc / line_frequency_Hz + overhead_s


def check_point_period(dwell_s: float, minimum_s: float, where: str, nplc: float, line_frequency_Hz: float,
                       condition: str = "", name: str = "dwell_s") -> None:
    """:class:`ParameterError` when ``dwell_s`` (the parameter ``name``) is shorter than the minimum point
    period ``minimum_s`` of the instrument ``where`` at this NPLC and line frequency (``condition``: any further
    state the minimum depends on, ``", auto-zero on"``)."""
    if dwell_s < minimum_s:
        raise ParameterError(
            f"{name} = {dwell_s:g} s is shorter than the minimum point period {minimum_s:.6g} s of "
            f"{where} at NPLC {nplc:g}, {line_frequency_Hz:g} Hz{condition}; lengthen {name} or lower the NPLC")


def point_time_s(dwell_s: float, nplc: float) -> float:
    """A generous estimate of one source-delay-measure cycle (dwell + integration at 50 Hz + overhead)."""
    return dwell_s + 3 * nplc * LINE_PERIOD_S + 5e-3


def wait_for_points(instrument: _Timed, count: Callable[[], int], n_points: int, *, dwell_s: float,
                    nplc: float, cancel: threading.Event | StopFlag | None = None) -> None:
    """Wait on the instrument's clock until ``count()`` reports ``n_points`` readings.

    Call it *without* holding the instrument's lock: ``count()`` takes the lock for each query only, so
    :meth:`safe_state` from another thread (an interlock, the abort button) gets through while the
    instrument sweeps on its own; it sets ``cancel``, and the wait stops within one poll interval.

    Sleeps the certain minimum (``n_points * dwell_s``) first, in slices of at most 0.5 s, then polls the
    buffer count. Raises :class:`InstrumentTimeout` when the sweep does not finish within twice a generous
    estimate + 10 s, and :class:`InstrumentError` when it was cancelled.
    """
    clock = instrument.clock
    start = clock.now()
    earliest_end = start + n_points * dwell_s
    timeout = 2 * n_points * point_time_s(dwell_s, nplc) + 10.0
    poll = min(max(point_time_s(dwell_s, nplc), 0.05), 0.5)
    # On virtual time the certain minimum is slept in one go — an abort or a safe state wakes the sleep through
    # the cancel tokens — so a 10-minute dwell of an aging channel is one wait in the simulation's schedule,
    # not 1200.
    first_wait = n_points * dwell_s if getattr(clock, "virtual", False) and isinstance(cancel, StopFlag) else poll
    done = 0
    while True:
        if cancel is not None and cancel.is_set():
            raise InstrumentError(f"sweep stopped after {done} of {n_points} points: the instrument was "
                                  "put in its safe state", instrument=instrument.name,
                                  address=instrument.address)
        now = clock.now()
        if now < earliest_end:
            if isinstance(cancel, StopFlag):
                try:
                    with watching(cancel):
                        clock.sleep(min(first_wait, earliest_end - now))
                except RunAborted:
                    if not cancel.is_set():
                        raise
            else:
                clock.sleep(min(first_wait, earliest_end - now))
            continue
        done = count()
        if done >= n_points:
            return
        if clock.now() - start > timeout:
            raise InstrumentTimeout(
                f"sweep did not finish: {done} of {n_points} points after {timeout:.1f} s",
                instrument=instrument.name, address=instrument.address)
        clock.sleep(poll)


def with_recovery(run: Callable[[], SweepResult], write: Callable[[str], None], recovery: Sequence[str],
                  name: str) -> SweepResult:
    """Run a sweep; if it fails (except for a lost connection or a bad parameter), send ``recovery`` best
    effort, then re-raise.

    The recovery commands abort the trigger model and put the sweep-only settings (list mode, trigger
    count, source delay) back, so the next ``measure()`` is a single reading again. They do not switch the
    output off: that is :meth:`safe_state`'s job, which the runner calls after a failure.
    """
    try:
        return run()
    except (ConnectionLost, ParameterError):
        raise
    except Exception:
        for command in recovery:
            try:
                write(command)
            except Exception as exc:  # best effort: the original error is what matters
                log.warning("%s: recovery command %r after a failed sweep failed: %s", name, command, exc)
        raise


def parse_count(reply: Any) -> int:
    """A buffer count reply (``"12"``, ``"1.20000e+01"``) as an int."""
    return round(float(str(reply).strip()))


@dataclass
class SweepPlan:
    """One instrument-timed run (a list sweep or a dwell) as a model builds it; :meth:`SourceMeterMixin.run_plan`
    runs it.

    ``setup`` configures everything (the error queue is read after it, before anything moves), ``start``
    switches the output on and starts the trigger model, ``count_query`` asks the buffer count while the
    instrument sweeps on its own, ``fetch(n)`` reads (time_s, voltage_V, current_A) of the ``n`` points, and
    ``finish`` puts the sweep-only settings back (its errors are read too). ``settings`` (the model's timing
    figures), ``timing`` and ``time_reference`` are recorded with the result (the commands go through the
    driver's :meth:`SourceMeterMixin.plan_writer`). ``kind`` is ``"sweep"`` (a list of levels: the result has
    the achieved scan rate, the point period is recorded as ``dwell_s``) or ``"dwell"`` (one level held: no scan
    rate, the period is recorded as ``interval_s``)."""

    setup: Sequence[str]
    start: Sequence[str]
    count_query: str
    fetch: Callable[[int], tuple[FloatArray, FloatArray, FloatArray]]
    finish: Sequence[str]
    timing: str
    time_reference: str
    settings: Mapping[str, float | str] = field(default_factory=dict)
    kind: str = "sweep"


SnapshotField = tuple[str, str, Callable[[Any], float | str | bool]]
#: What every SMU snapshot reads: (key, driver attribute, cast), ``output_on`` last.
COMMON_SNAPSHOT: tuple[SnapshotField, ...] = (
    ("source_function", "source_mode", str), ("compliance_current_A", "compliance_current", float),
    ("compliance_voltage_V", "compliance_voltage", float), ("nplc", "nplc", float),
    ("current_range_auto", "current_range_auto_enabled", bool), ("current_range_A", "current_range", float),
    ("four_wire", "four_wire_enabled", bool), ("output_on", "source_enabled", bool),
)


def snapshot_fields(*extra: SnapshotField, **renamed: str | tuple[str, Callable[[Any], Any]]
                    ) -> tuple[SnapshotField, ...]:
    """:data:`COMMON_SNAPSHOT` with a model's attribute names (``nplc="current_nplc"``, or (attribute,
    cast)) and its own ``extra`` fields, which go before ``output_on``."""
    fields: list[SnapshotField] = []
    for key, attribute, cast in COMMON_SNAPSHOT:
        spec = renamed.get(key, attribute)
        fields.append((key, spec, cast) if isinstance(spec, str) else (key, spec[0], spec[1]))
    return (*fields[:-1], *extra, fields[-1])


class IntegrationTiming:
    """The minimum point period of an SMU whose sweep point is the integration plus a fixed overhead."""

    #: Time per sweep point beyond the integration and any delay (the model's figure).
    point_overhead_s: ClassVar[float]

    @classmethod
    def min_point_period_s(cls, nplc: float, line_frequency_Hz: float = 50.0) -> float:
        """The shortest sweep point period at this NPLC: integration plus the per-point overhead.

        Procedures check scan rates with it before connecting; 50 Hz mains is the worst case."""
        return integration_period_s(nplc, line_frequency_Hz, cls.point_overhead_s)


class SourceMeterMixin:
    """What every SMU driver (a single-channel instrument or one channel) does the same way.

    It keeps the NPLC last set (``_nplc``, only used to estimate how long a sweep takes) and the event
    (``sweep_cancel``) that :meth:`safe_state` sets to stop a sweep waiting in another thread; it runs a list
    sweep (:meth:`run_list_sweep`: validation, the model's :meth:`sweep_plan` run by :meth:`run_plan`,
    recovery) and an instrument-timed dwell (:meth:`dwell_voltage`, :meth:`dwell_current`: validation, the
    model's :meth:`dwell_plan` run by the same :meth:`run_plan`, the same recovery), and reads the settings
    named in :attr:`snapshot_fields`. Subclasses implement :meth:`sweep_plan`, :meth:`dwell_plan`,
    :meth:`recovery_commands` and :meth:`safe_steps`, and set :attr:`max_dwell_points`.

    The compliance and output role methods set the properties ``compliance_current``, ``compliance_voltage``
    and ``source_enabled``, which read the error queue themselves (``check_set_errors``); drivers whose
    properties do not override them with :meth:`set_checked`. Every sequence of commands that ends in an
    error-queue check holds the instrument's lock, so no other thread's command gets between them.
    """

    #: What :meth:`settings_snapshot` reads (see :func:`snapshot_fields`).
    snapshot_fields: ClassVar[tuple[SnapshotField, ...]] = COMMON_SNAPSHOT
    #: The most readings one dwell takes: what the model's buffer for it holds.
    max_dwell_points: int = 1
    voltage_range_V: tuple[float, float]
    current_range_A: tuple[float, float]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._nplc = 1.0  # *RST default; only used to estimate how long a sweep takes
        self.sweep_cancel = StopFlag()  # set by safe_state() to stop waiting for a sweep

    def set_compliance_current(self: _SourceMeter, current_A: float) -> None:
        self.compliance_current = check_range("compliance current", current_A,
                                              self.compliance_current_range_A, "A")

    def set_compliance_voltage(self: _SourceMeter, voltage_V: float) -> None:
        self.compliance_voltage = check_range("compliance voltage", voltage_V,
                                              self.compliance_voltage_range_V, "V")

    def output_on(self: _SourceMeter) -> None:
        self.source_enabled = True

    def output_off(self: _SourceMeter) -> None:
        self.source_enabled = False

    def configure(self: _SourceMeter, commands: Sequence[str], context: str) -> None:
        """Send ``commands`` in order as one locked step, then read the error queue (raising with ``context``)."""
        with self.lock:
            for command in commands:
                self.write(command)
            self.raise_if_error(context)

    def set_checked(self: _SourceMeter, attribute: str, value: Any, context: str) -> None:
        """Set a property that does not read the error queue itself, then read it, as one locked step."""
        with self.lock:
            setattr(self, attribute, value)
            self.raise_if_error(context)

    def run_list_sweep(self: _SourceMeter, voltages_V: Sequence[float] | FloatArray, dwell_s: float) -> SweepResult:
        """Validate the list and the dwell (nothing is sent for bad ones), then run the model's
        :meth:`sweep_plan`; if it fails, send the model's :meth:`recovery_commands` best effort and re-raise
        (:func:`with_recovery`)."""
        self.sweep_cancel.clear()  # from here on, a safe_state() (another thread) stops this sweep
        values, dwell = validate_sweep(voltages_V, dwell_s, voltage_range_V=self.source_range("voltage"),
                                       dwell_range_s=self.dwell_range_s, max_points=self.max_sweep_points)
        return with_recovery(lambda: self.run_plan(self.sweep_plan(values, dwell), values.size, dwell),
                             self.plan_writer(), self.recovery_commands(), self.name)

    def dwell_voltage(self: _SourceMeter, voltage_V: float, n_points: int, interval_s: float) -> SweepResult:
        """Source ``voltage_V`` and take ``n_points`` current readings ``interval_s`` apart, timed by the
        instrument (the model's :meth:`dwell_plan`); the output stays on at the level afterwards. Bad
        parameters raise :class:`ParameterError` before anything is sent; an interval shorter than the
        model's minimum point period at the instrument's NPLC after the timing queries, before any setting."""
        level = check_range("voltage_V", voltage_V, self.source_range("voltage"), "V")
        return self.run_dwell("voltage", level, n_points, interval_s)

    def dwell_current(self: _SourceMeter, current_A: float, n_points: int, interval_s: float) -> SweepResult:
        """Source ``current_A`` (galvanostatic) and take ``n_points`` voltage readings ``interval_s`` apart,
        timed by the instrument; as :meth:`dwell_voltage` otherwise."""
        level = check_range("current_A", current_A, self.source_range("current"), "A")
        return self.run_dwell("current", level, n_points, interval_s)

    def run_dwell(self: _SourceMeter, function: str, level: float, n_points: int, interval_s: float
                  ) -> SweepResult:
        """Check ``n_points`` (1 to :attr:`max_dwell_points`) and ``interval_s`` (> 0, at most the model's
        longest point period), then run the model's :meth:`dwell_plan`, recovering as a sweep does."""
        n = check_count("n_points", n_points, (1, self.max_dwell_points))
        interval = check_range("interval_s", interval_s, (1e-6, self.dwell_range_s[1]), "s")
        self.sweep_cancel.clear()  # from here on, a safe_state() (another thread) stops this dwell
        return with_recovery(lambda: self.run_plan(self.dwell_plan(function, level, n, interval), n, interval),
                             self.plan_writer(), self.recovery_commands(), self.name)

    def plan_writer(self: _SourceMeter) -> Callable[[str], None]:
        """How a plan's commands and the recovery are sent: the driver's own ``write`` unless a model says
        otherwise (a TSP channel sends through its instrument)."""
        return self.write

    def source_range(self, function: str) -> tuple[float, float]:
        """The levels the source takes for ``function`` (``"voltage"`` or ``"current"``)."""
        return self.voltage_range_V if function == "voltage" else self.current_range_A

    def sweep_plan(self, values: FloatArray, dwell_s: float) -> SweepPlan:
        """The model's commands for a list sweep of ``values``, ``dwell_s`` apart (may query the instrument)."""
        raise NotImplementedError

    def dwell_plan(self, function: str, level: float, n_points: int, interval_s: float) -> SweepPlan:
        """The model's commands for a dwell: source ``level`` of ``function`` (``"voltage"``/``"current"``)
        and take ``n_points`` readings ``interval_s`` apart into its buffer (may query the instrument)."""
        raise NotImplementedError

    def recovery_commands(self) -> Sequence[str]:
        """Sent best effort when a sweep or dwell fails (:func:`with_recovery`): abort the trigger model and
        put the sweep-only settings back."""
        raise NotImplementedError

    def run_plan(self: _SourceMeter, plan: SweepPlan, n_points: int, dwell_s: float) -> SweepResult:
        """Run a :class:`SweepPlan`: set-up and its error check, then start, as one locked step (after
        checking that no :meth:`safe_state` came in meanwhile); wait for ``n_points`` readings with the lock
        released; then read the data and restore, as one locked step ending in an error check."""
        write = self.plan_writer()
        with self.lock:
            self.check_sweep_cancelled()
            for command in plan.setup:
                write(command)
            self.raise_if_error("sweep set-up")
            for command in plan.start:
                write(command)
        self.wait_for_readings(plan.count_query, n_points, dwell_s)
        with self.lock:
            time_s, voltage_V, current_A = plan.fetch(n_points)
            for command in plan.finish:
                write(command)
            self.raise_if_error(plan.kind)
        period = "dwell_s" if plan.kind == "sweep" else "interval_s"
        return sweep_result(time_s, voltage_V, current_A, {
            period: dwell_s, "points": float(n_points), **plan.settings, "timing": plan.timing,
            "time_reference": plan.time_reference}, scan=plan.kind == "sweep")

    def check_sweep_cancelled(self: _SourceMeter) -> None:
        """Raise :class:`InstrumentError` if :meth:`safe_state` ran since this sweep started: :meth:`run_plan`
        calls it with the lock held, before it sends anything, so a safe state that got in while the sweep
        was being prepared is not undone by switching the output on again."""
        if self.sweep_cancel.is_set():
            raise InstrumentError("sweep not started: the instrument was put in its safe state",
                                  instrument=self.name, address=self.address)

    def wait_for_readings(self: _SourceMeter, count_query: str, n_points: int, dwell_s: float) -> None:
        """Wait with the lock released until the buffer count ``count_query`` reports ``n_points`` readings
        (:func:`wait_for_points`; :meth:`safe_state` from another thread stops it)."""
        wait_for_points(self, lambda: parse_count(self.ask(count_query)), n_points, dwell_s=dwell_s,
                        nplc=self._nplc, cancel=self.sweep_cancel)

    def settings_snapshot(self: Any) -> dict[str, float | str | bool]:
        """The settings named in :attr:`snapshot_fields`, read as one locked step (``output_on`` last)."""
        with self.lock:
            return {key: cast(getattr(self, attribute)) for key, attribute, cast in self.snapshot_fields}

    def safe_steps(self) -> SafeSteps:
        raise NotImplementedError

    def safe_state(self: _SourceMeter) -> None:
        """Stop waiting for a sweep, then every safe-state step, all tried; failures are listed afterwards."""
        self.sweep_cancel.set()
        attempt_all(self.name, self.address, self.safe_steps())


class LabChannel(SourceMeterMixin, base.LabChannel):
    """A pymeasure channel of a :class:`~drivers.base.LabInstrument` that can be handed to a procedure.

    Queries go through the parent's :meth:`~drivers.base.LabInstrument.ask` (its lock, retries and
    reconnects); the channel shares the parent's lock and clock. Subclasses implement the role methods,
    :meth:`sweep_plan` and :meth:`safe_steps`.
    """

    prefix = "ch"

    @property
    def lock(self) -> Any:
        return self.parent.lock

    @property
    def clock(self) -> Clock:
        return self.parent.clock

    @property
    def name(self) -> str:
        return f"{self.parent.name} {self.prefix}{self.id}"

    @property
    def address(self) -> str:
        return str(self.parent.address)

    def identify(self) -> str:
        """The instrument's identification (one ``*IDN?`` for all its channels)."""
        return str(self.parent.identify())

    def raise_if_error(self, context: str = "") -> None:
        self.parent.raise_if_error(f"{self.prefix}{self.id} {context}".strip())

    def set_nplc(self, nplc: float) -> None:
        """Integration time in power-line cycles (the channel's ``nplc`` property)."""
        self.nplc = check_range("NPLC", nplc, self.nplc_range)
        self._nplc = float(nplc)


def channels_snapshot(channels: Sequence[LabChannel]) -> dict[str, float | str | bool]:
    """Every channel's settings snapshot, keys prefixed with the channel (``smua.nplc``, ``ch1.nplc``)."""
    snapshot: dict[str, float | str | bool] = {}
    for chan in channels:
        for key, value in chan.settings_snapshot().items():
            snapshot[f"{chan.prefix}{chan.id}.{key}"] = value
    return snapshot


def channels_safe_state(name: str, address: str, channels: Sequence[LabChannel]) -> None:
    """The safe-state steps of every channel, all tried, one error listing the failures."""
    steps: SafeSteps = []
    for chan in channels:
        chan.sweep_cancel.set()
        steps += chan.safe_steps()
    attempt_all(name, address, steps)


class MultiChannelSMU:
    """An SMU with several :class:`LabChannel` channels: attributes ``<channel_prefix><name>`` for each name
    in :attr:`channel_names` (``smua``/``smub``, ``ch1``/``ch2``)."""

    channel_names: ClassVar[tuple[str, ...]]
    channel_prefix: ClassVar[str]
    name: str
    address: str
    lock: Any

    def channel(self, name: str | int) -> Any:
        """The SourceMeter role object of one channel, by its name with or without the prefix
        (``"a"``, ``"smua"``; ``"1"``, ``1``, ``"ch1"``)."""
        key = str(name).lower().removeprefix(self.channel_prefix)
        if key not in self.channel_names:
            listed = " and ".join(f"'{c}'" for c in self.channel_names)
            raise ValueError(f"{self.name} has channels {listed}, not {name!r}")
        return getattr(self, f"{self.channel_prefix}{key}")

    def all_channels(self) -> list[LabChannel]:
        return [getattr(self, f"{self.channel_prefix}{key}") for key in self.channel_names]

    def settings_snapshot(self) -> dict[str, float | str | bool]:
        """Every channel's settings, keys prefixed with the channel (``smua.``, ``ch1.``)."""
        with self.lock:
            return channels_snapshot(self.all_channels())

    def safe_state(self) -> None:
        """Every channel's safe-state steps (abort, output off, levels 0); every step is tried."""
        channels_safe_state(self.name, self.address, self.all_channels())
