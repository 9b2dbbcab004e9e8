"""Time stepping with a stated error bound, for one cell or a tandem, at a constant voltage or current.

Within a step of length h the conditions (terminal voltage *or* current, light, temperature) are constant,
but what the cell does with them is not: the slow rates (stress, segregation drive) depend on the cell's
own state — its carrier density falls as it degrades, its Voc drifts — and at a constant current the
voltage follows the ions. A step is therefore taken as a **midpoint step**:

1. the operating point op₀ (junction voltages and slow rates) is evaluated at the start;
2. a trial half step with op₀ gives the midpoint operating point opₘ;
3. the step is *accepted* if, across the half step, every junction voltage moved by at most ``TOL_V`` and
   every slow rate by at most ``TOL_RATE`` of itself (or by so little that its increment changes by less than
   the model's absolute tolerance); otherwise h is quartered and the trial repeated;
4. the accepted step applies the closed forms (degradation.py, ions.py) with the *midpoint* rates, and the
   ions relax towards a target that ramps linearly from the start voltage through the midpoint voltage (exact
   for a linear drift of the voltage).

The midpoint rule is second order: the error of one step is ≈ (rate curvature)·h³/24, i.e. below
TOL_RATE²/6 ≈ 7e-5 of the step's increment, and the ion voltages are within ≈ TOL_V·(h/τ)²/12 of a
self-consistent trajectory (they forget errors with τ). Steps grow ×4 after each acceptance, so a long hold
costs a number of steps that grows with how much the rates change (the damage accrued), not with time.
At a constant voltage with rates that do not change (a dark cell at 0 V) a gap of any length is one step
and exact.

:func:`dwell` gives readings at many instants in one pass: each accepted step covers as many readings as
it can, and the readings inside it are evaluated together (numpy) from the same closed forms the step
applies (``Model._path_readings``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

TOL_V = 5e-3  # V: largest change of a junction voltage across a half step
TOL_RATE = 0.01  # largest relative change of a slow rate across a half step
MIN_STEP_S = 1e-9
# A secant step may follow one under a slightly different light (a drifting lamp): the rates' jump, at most
# this fraction, enters the extrapolated midpoint with half its size.
SECANT_SUNS_CHANGE = 1e-3


@dataclass(frozen=True)
class OperatingPoint:
    """Where a model sits now: its junction voltage(s), its slow rates (per junction: stress in reference
    hours per hour, segregation drive in θ-hours per hour), and the reading (J in mA/cm² at a fixed voltage,
    V at a fixed current)."""

    voltages: tuple[float, ...]
    rates: tuple[float, ...]
    reading: float


class Model(Protocol):
    """What a cell offers the stepper (PerovskiteCell and TandemCell)."""

    _step_history: tuple[Any, ...] | None  # (conditions, state version, op₀, h, suns) of the last step

    def _rate_tolerances(self) -> tuple[float, ...]: ...
    def _state_version(self) -> Any: ...
    def _snapshot(self) -> Any: ...
    def _restore(self, snapshot: Any) -> None: ...
    def _operating_point(self, mode: str, value: float, suns: float, temperature_K: float
                         ) -> OperatingPoint: ...
    def _apply(self, h_s: float, op0: OperatingPoint, opm: OperatingPoint, suns: float,
               temperature_K: float) -> None: ...
    def _path_readings(self, t_s: np.ndarray, h_s: float, op0: OperatingPoint, opm: OperatingPoint,
                       mode: str, value: float, suns: float, temperature_K: float) -> np.ndarray: ...
    def _reading(self, mode: str, value: float, suns: float, temperature_K: float) -> float: ...


def acceptable(op0: OperatingPoint, opm: OperatingPoint, h_s: float, tolerances: tuple[float, ...]) -> bool:
    """Whether a step of h_s whose half-step trial moved op₀ to opₘ meets the tolerances."""
    for v0, vm in zip(op0.voltages, opm.voltages, strict=True):
        if abs(vm - v0) > TOL_V:
            return False
    h_h = h_s / 3600.0
    for r0, rm, tol in zip(op0.rates, opm.rates, tolerances, strict=True):
        change = abs(rm - r0) * h_h
        if change > tol and change > TOL_RATE * abs(r0) * h_h:
            return False
    return True


def _trial(model: Model, h_s: float, op0: OperatingPoint, mode: str, value: float, suns: float,
           temperature_K: float) -> OperatingPoint:
    snapshot = model._snapshot()
    model._apply(0.5 * h_s, op0, op0, suns, temperature_K)
    opm = model._operating_point(mode, value, suns, temperature_K)
    model._restore(snapshot)
    return opm


def _extrapolated(op0: OperatingPoint, previous: OperatingPoint, h_previous_s: float, h_s: float
                  ) -> OperatingPoint:
    """The midpoint operating point of a step of h_s, extrapolated from the previous step's start and this
    step's start (consecutive steps under the same conditions: the secant slope is second-order accurate)."""
    f = 0.5 * h_s / h_previous_s
    if len(op0.voltages) == 1:  # a single junction: spelt out, this is the per-reading path
        return OperatingPoint((op0.voltages[0] + f * (op0.voltages[0] - previous.voltages[0]),),
                              (op0.rates[0] + f * (op0.rates[0] - previous.rates[0]),
                               op0.rates[1] + f * (op0.rates[1] - previous.rates[1])), op0.reading)
    return OperatingPoint(tuple(v + f * (v - p) for v, p in zip(op0.voltages, previous.voltages, strict=True)),
                          tuple(r + f * (r - p) for r, p in zip(op0.rates, previous.rates, strict=True)),
                          op0.reading)


def integrate(model: Model, dt_s: float, mode: str, value: float, suns: float, temperature_K: float) -> int:
    """Advance ``model`` by dt_s at a constant ``mode`` ("V": voltage, "J": current density) ``value``;
    returns the number of accepted steps.

    A step that follows the model's previous one under the same conditions and is at most 4× as long takes
    its midpoint from the secant through the two steps' starting points instead of a trial half step (the
    common case of an instrument reading every few ms: one operating point and one closed-form update per
    reading); it is still accepted only within the tolerances."""
    tolerances = model._rate_tolerances()
    key = (mode, value, temperature_K)
    op0 = model._operating_point(mode, value, suns, temperature_K)
    history = model._step_history
    if (history is not None and history[0] == key and history[1] == model._state_version()
            and 0.0 < dt_s <= 4.0 * history[3] and abs(suns - history[4]) <= SECANT_SUNS_CHANGE * history[4]):
        opm = _extrapolated(op0, history[2], history[3], dt_s)
        if acceptable(op0, opm, dt_s, tolerances):
            model._apply(dt_s, op0, opm, suns, temperature_K)
            model._step_history = (key, model._state_version(), op0, dt_s, suns)
            return 1
    remaining, h, steps = dt_s, dt_s, 0
    while remaining > 1e-12 * dt_s:
        h = min(h, remaining)
        opm = _trial(model, h, op0, mode, value, suns, temperature_K)
        if h > MIN_STEP_S and not acceptable(op0, opm, h, tolerances):
            h *= 0.25
            continue
        model._apply(h, op0, opm, suns, temperature_K)
        model._step_history = (key, model._state_version(), op0, h, suns)
        remaining -= h
        steps += 1
        if remaining > 1e-12 * dt_s:
            op0 = model._operating_point(mode, value, suns, temperature_K)
        h *= 4.0
    return steps


def check_conditions(suns: float, temperature_K: float) -> None:
    """ValueError naming the parameter unless suns ≥ 0 and temperature_K > 0 (both finite)."""
    if not temperature_K > 0.0 or not math.isfinite(temperature_K):
        raise ValueError(f"temperature_K = {temperature_K!r} is outside the allowed range (0, inf) K")
    if not suns >= 0.0 or not math.isfinite(suns):
        raise ValueError(f"suns = {suns!r} is outside the allowed range [0, inf)")


def check_step(dt_s: float) -> None:
    if not dt_s >= 0.0 or not math.isfinite(dt_s):
        raise ValueError(f"dt_s = {dt_s!r} is outside the allowed range [0, inf) s")


def check_times(times_s: Any) -> np.ndarray:
    """Offsets from now (s) as a float array: finite, ≥ 0 and non-decreasing, else ValueError."""
    t = np.asarray(times_s, dtype=float).ravel()
    if t.size and (not np.all(np.isfinite(t)) or t[0] < 0.0 or np.any(np.diff(t) < 0.0)):
        raise ValueError(f"times_s = {times_s!r}: offsets must be finite, >= 0 s and non-decreasing")
    return t


def dwell(model: Model, times_s: np.ndarray, mode: str, value: float, suns: float, temperature_K: float,
          integrate_fn: Callable[[float], Any]) -> np.ndarray:
    """Readings at offsets ``times_s`` (checked by :func:`check_times`) while the model is held at ``mode``
    ``value``; the model ends at the last offset. ``integrate_fn(dt)`` advances it the ordinary way (used for
    a reading whose own gap needs several steps)."""
    n = times_s.size
    out = np.empty(n)
    tolerances = model._rate_tolerances()
    now, i = 0.0, 0
    op0 = model._operating_point(mode, value, suns, temperature_K)
    while i < n:
        k = n
        while True:
            span = float(times_s[k - 1]) - now
            if span <= 0.0:
                out[i:k] = model._reading(mode, value, suns, temperature_K)
                i = k
                break
            opm = _trial(model, span, op0, mode, value, suns, temperature_K)
            if span <= MIN_STEP_S or acceptable(op0, opm, span, tolerances):
                out[i:k] = model._path_readings(times_s[i:k] - now, span, op0, opm, mode, value, suns,
                                                temperature_K)
                model._apply(span, op0, opm, suns, temperature_K)
                now, i = float(times_s[k - 1]), k
                op0 = model._operating_point(mode, value, suns, temperature_K)
                break
            if k - i > 1:
                k = i + (k - i + 1) // 2
                continue
            integrate_fn(span)  # one reading whose gap needs several steps
            now = float(times_s[i])
            out[i] = model._reading(mode, value, suns, temperature_K)
            op0 = model._operating_point(mode, value, suns, temperature_K)
            i += 1
            break
    return out
