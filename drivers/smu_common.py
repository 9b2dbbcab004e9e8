"""What the source-measure-unit drivers share: parameter checks, list formatting, buffer parsing, timing.

Every SMU driver runs :meth:`~labctl.roles.SourceMeter.sweep_voltage` on the instrument's own list sweep and
buffer. The model-specific part is the command sequence; the rest lives here so the four drivers agree on

- how a voltage list and a dwell are validated (before anything is sent),
- how a list is cut into the 100-value chunks the SCPI list commands accept,
- how a buffer reply is parsed (``9.91e37`` is "not a number" on Keithley and Keysight SMUs),
- how the driver waits for the instrument to finish (through the instrument's clock, polling its buffer
  count, never blocking a query past the VISA timeout),
- how ``time_s`` (relative to the first reading) and the achieved scan rate are computed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from pymeasure.instruments import Channel

from drivers.base import attempt_all
from labctl.clock import Clock
from labctl.errors import ConnectionLost, InstrumentError, InstrumentTimeout, ParameterError
from labctl.roles import FloatArray, SweepResult

log = logging.getLogger(__name__)

#: Keithley and Keysight SMUs report a missing or overflowed value as 9.91e37 ("not a number").
NOT_A_NUMBER = 9.9e37
#: SCPI list commands (``:SOUR:LIST:VOLT`` and ``:APPend``) take at most 100 values each.
LIST_CHUNK = 100
#: Integration-time guess per point for timeouts, as NPLC at the slower 50 Hz line.
LINE_PERIOD_S = 1 / 50


class _Timed(Protocol):
    name: str
    address: str
    clock: Clock


def check_range(value: float, limits: tuple[float, float], what: str, unit: str = "") -> float:
    """``value`` as a float if ``limits[0] <= value <= limits[1]``, else :class:`ParameterError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} must be a number, got {value!r}") from None
    low, high = limits
    if not np.isfinite(number) or not low <= number <= high:
        raise ParameterError(f"{what} {value!r}{unit} is outside [{low:g}, {high:g}]{unit}")
    return number


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
    dwell = check_range(dwell_s, dwell_range_s, "dwell_s (point period)", " s")
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
                 settings: dict[str, float | str]) -> SweepResult:
    times = relative_times(time_s)
    return SweepResult(time_s=times, voltage_V=np.asarray(voltage_V, dtype=np.float64),
                       current_A=np.asarray(current_A, dtype=np.float64),
                       achieved_rate_V_s=achieved_rate_V_s(times, voltage_V), settings=dict(settings))


def point_time_s(dwell_s: float, nplc: float) -> float:
    """A generous estimate of one source-delay-measure cycle (dwell + integration at 50 Hz + overhead)."""
    return dwell_s + 3 * nplc * LINE_PERIOD_S + 5e-3


def wait_for_points(instrument: _Timed, count: Callable[[], int], n_points: int, *, dwell_s: float,
                    nplc: float, cancel: threading.Event | None = None) -> None:
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
    done = 0
    while True:
        if cancel is not None and cancel.is_set():
            raise InstrumentError(f"sweep stopped after {done} of {n_points} points: the instrument was "
                                  "put in its safe state", instrument=instrument.name,
                                  address=instrument.address)
        now = clock.now()
        if now < earliest_end:
            clock.sleep(min(poll, earliest_end - now))
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


class LabChannel(Channel):
    """A pymeasure channel of a :class:`~drivers.base.LabInstrument` that can be handed to a procedure.

    Queries go through the parent's :meth:`~drivers.base.LabInstrument.ask` (its lock, retries and
    reconnects); the channel shares the parent's lock and clock. Subclasses implement the role methods
    and :meth:`safe_steps`.
    """

    prefix = "ch"

    def __init__(self, parent: Any, id: str, **kwargs: Any) -> None:
        super().__init__(parent, id, **kwargs)
        self._nplc = 1.0  # *RST default; only used to estimate how long a sweep takes
        self.sweep_cancel = threading.Event()  # set by safe_state() to stop waiting for a sweep

    def ask(self, command: str, query_delay: float | None = None) -> str:
        return str(self.parent.ask(self.insert_id(command), query_delay))

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

    def settings_snapshot(self) -> dict[str, float | str | bool]:
        raise NotImplementedError

    def safe_steps(self) -> list[tuple[str, Callable[[], Any]]]:
        raise NotImplementedError

    def safe_state(self) -> None:
        """This channel only; every step is tried, failures are listed afterwards."""
        self.sweep_cancel.set()
        attempt_all(self.name, self.address, self.safe_steps())


def channels_snapshot(channels: Sequence[LabChannel]) -> dict[str, float | str | bool]:
    """Every channel's settings snapshot, keys prefixed with the channel (``smua.nplc``, ``ch1.nplc``)."""
    snapshot: dict[str, float | str | bool] = {}
    for chan in channels:
        for key, value in chan.settings_snapshot().items():
            snapshot[f"{chan.prefix}{chan.id}.{key}"] = value
    return snapshot


def channels_safe_state(name: str, address: str, channels: Sequence[LabChannel]) -> None:
    """The safe-state steps of every channel, all tried, one error listing the failures."""
    steps: list[tuple[str, Callable[[], Any]]] = []
    for chan in channels:
        chan.sweep_cancel.set()
        steps += chan.safe_steps()
    attempt_all(name, address, steps)
