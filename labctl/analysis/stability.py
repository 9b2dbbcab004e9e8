"""Stability figures of merit of a maximum-power-point-tracked aging run, and the tracker's efficiency.

Pure functions on arrays (no I/O). The definitions follow the ISOS consensus for perovskite cells (Khenkin
et al., Nat. Energy 5, 35 (2020), Table 5 "Possible figures of merit for evaluating PSC stability" and
Fig. 2e,f); docs/analysis-stability.md states them in full. In short, with t in hours from the start of the
stress (the time axis as given):

- **Normalised PCE** η(t) = 100 · PCE(t) / PCE₀ (%), PCE₀ = the tracked PCE at the first tracked point t_first,
  read from a robust straight line (Theil–Sen) through the tracked points of the first ``reference_h`` hours
  (t ≤ t_first + ``reference_h``; at least the first five points): a line, so a curve already falling
  gives its value at t_first, not at the window's middle; robust, so a tracker's first settling points do
  not move it.
- **Smoothing**: η_s(t) = the median of the points within ±``smooth_h``/2 of t, the window shrunk
  symmetrically near either end so that it stays centred (the running median of a monotone curve sampled
  evenly is the curve's value at the window's centre: smoothing adds no bias to a monotone decay; a few
  outliers, such as readings lost to a suspended channel, do not move it). Within half a window of either
  end the window is smaller and η_s noisier; a value reported *at* a time there (η at the end, η1000 at the
  end of a 1000 h run) is read instead from a Theil–Sen line through the points of the window that exist.
- **T_x** (any x, T80, T95, T87, T99.98, ...): the first time η_s falls to x %, interpolated linearly between
  the two neighbouring points; if it never does, T_x is *censored*: "T_x > the run's last time", reported as
  such (``censored=True``), never extrapolated silently. A T_x whose drop (100 − x) is below three standard
  errors of η_s at the crossing (one point's scatter over the root of the points in its window there, combined
  with PCE₀'s own, 2σ/√n for the n reference points) is marked ``resolved=False``: its first crossing may be
  the noise's, as a T99.98 that the first noisy point already "reaches".
- **Burn-in** (Fig. 2e): η_s is fitted (least squares) with E − k·t + B·exp(−t/τ): a fast initial loss B on
  a linear decay, the post-burn-in decay fitted together with the burn-in it follows. A burn-in is accepted
  when its amplitude B is at least δ = max(3σ_s, 0.5 %), it loses at most half the PCE (E ≥ 50 %) and it is
  over by the middle of the run; it ends at t_b = τ·ln(B/δ), when what is left of it falls to δ, the curve's
  resolution. The post-burn-in line E − k·t back-extrapolated to t = 0 is the stabilised PCE E_s = E;
  ``burn_in_loss_pct`` = 100 − E_s. Without an accepted burn-in E_s = 100 % (Ts80 = T80). A cell whose PCE
  first rises (η_s above 100 % + δ where its window is complete) is referred to its maximum instead (Table 5:
  "for cells with an increase in PCE ... 80 % of the maximum").
- **Ts80**: the first time η_s falls to 80 % of E_s, counted from t = 0 like T80.
- **η1000**: η_s at 1000 h, reported when T80 is not reached and the run lasted 1000 h.
- **Extrapolations**, only on request of the reader and labelled as such: ``t80_extrapolated_h`` and
  ``ts80_extrapolated_h`` from the post-burn-in line, when the figure itself is censored.
- **Recovery-corrected T_x** (Table 5, option 4, "T80 analogue, corrected for the recovery processes"), for
  light-cycled runs: the same first-crossing rule applied to the PCE recovered after each dark period (the
  reference rule at the start of each light phase), i.e. the irreversible loss; and the cycle-average T_x
  (option 6: "average PCE value during the cycle").
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.integrate import trapezoid
from scipy.optimize import curve_fit
from scipy.stats import theilslopes

ArrayLike = npt.ArrayLike

#: Default reference window and smoothing window (see the module docstring).
REFERENCE_H = 0.5
REFERENCE_MIN_POINTS = 5
#: A Theil–Sen line is fitted to at most this many points (evenly picked): its cost grows as the square.
THEIL_SEN_POINTS = 300
SMOOTH_FRACTION = 0.01  # of the run's duration ...
SMOOTH_MIN_POINTS = 5  # ... and at least this many sampling intervals
#: η_s is evaluated on at least this many times (and no further apart than a quarter window) when a
#: crossing is searched, then refined at every point in between.
GRID_POINTS = 1000
#: The smallest burn-in amplitude, and burn-in end level, in % of PCE₀ (or 3σ of η_s if larger).
MIN_RESOLUTION_PCT = 0.5
#: A crossing needs a drop of more than this many standard deviations of η_s to count as resolved.
RESOLVED_SIGMAS = 3.0
#: η1000: the time of the ISOS figure.
ETA_TIME_H = 1000.0


class StabilityAnalysisError(ValueError):
    """The data cannot give stability figures (too few points, times not increasing, ...)."""


@dataclass(frozen=True)
class Lifetime:
    """T_x: ``time_h`` is the first time the smoothed normalised PCE reached ``x_pct``; when ``censored`` it
    never did and ``time_h`` is the run's last time (a lower bound: T_x > time_h). ``resolved`` is False when
    the drop 100 − x is within three standard deviations of the smoothed curve."""

    x_pct: float
    time_h: float
    censored: bool
    resolved: bool = True

    @property
    def value_h(self) -> float | None:
        """The lifetime, or None when censored."""
        return None if self.censored else self.time_h


@dataclass(frozen=True)
class StabilityMetrics:
    """What :func:`stability_metrics` returns (module docstring for every definition). Times in hours on the
    run's axis; percentages of the reference PCE (``reference_pce``, in the unit of the input)."""

    reference_pce: float
    t80_h: float | None
    t80_censored: bool
    t95_h: float | None
    t95_censored: bool
    ts80_h: float | None
    ts80_censored: bool
    eta1000_pct: float | None
    eta_end_pct: float
    burn_in_loss_pct: float
    burn_in_end_h: float
    stabilised_pct: float
    stabilised_reference: str  # "post-burn-in", "maximum" or "initial"
    post_burn_in_slope_pct_h: float
    t80_extrapolated_h: float | None
    ts80_extrapolated_h: float | None
    last_time_h: float
    smooth_h: float
    noise_pct: float
    smoothed_noise_pct: float
    t80_recovery_corrected_h: float | None = None
    t80_recovery_corrected_censored: bool | None = None
    t80_cycle_average_h: float | None = None
    t80_cycle_average_censored: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------ inputs
def _series(time_h: ArrayLike, pce: ArrayLike, name: str = "pce") -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time_h, dtype=float).ravel()
    y = np.asarray(pce, dtype=float).ravel()
    if t.shape != y.shape:
        raise StabilityAnalysisError(f"time_h has {t.size} points but {name} has {y.size}")
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    if t.size < 3:
        raise StabilityAnalysisError(f"need at least 3 finite points, got {t.size}")
    if np.any(np.diff(t) < 0):
        raise StabilityAnalysisError("time_h must be non-decreasing")
    if t[-1] <= t[0]:
        raise StabilityAnalysisError(f"time_h spans no time ({t[0]:g} to {t[-1]:g} h)")
    return t, y


def _positive(name: str, value: float | None, default: float) -> float:
    if value is None:
        return default
    number = float(value)
    if not number > 0 or not math.isfinite(number):
        raise StabilityAnalysisError(f"{name} = {value!r} is outside the allowed range (0, inf) h")
    return number


def _check_x(x: float) -> float:
    number = float(x)
    if not 0.0 < number < 100.0:
        raise StabilityAnalysisError(f"x = {x!r} is outside the allowed range (0, 100) %")
    return number


def robust_value(t: np.ndarray, y: np.ndarray, at_h: float) -> float:
    """The value at ``at_h`` of a Theil–Sen line through (t, y) (at most :data:`THEIL_SEN_POINTS` of them,
    evenly picked); the median of y when the times do not vary."""
    pick = np.unique(np.linspace(0, t.size - 1, min(t.size, THEIL_SEN_POINTS)).astype(int))
    t, y = t[pick], y[pick]
    if t.size < 2 or t[-1] == t[0]:
        return float(np.median(y))
    _slope, intercept, _, _ = theilslopes(y, t - at_h)
    return float(intercept)


def reference_value(time_h: ArrayLike, pce: ArrayLike, reference_h: float = REFERENCE_H) -> float:
    """PCE₀: the value at the first point of a Theil–Sen line through the points with t ≤ t_first +
    ``reference_h`` (at least the first five)."""
    t, y = _series(time_h, pce)
    reference_h = _positive("reference_h", reference_h, REFERENCE_H)
    count = max(int(np.searchsorted(t, t[0] + reference_h, side="right")), REFERENCE_MIN_POINTS)
    value = robust_value(t[:count], y[:count], float(t[0]))
    if not value > 0:
        raise StabilityAnalysisError(f"the reference PCE (at the first point, from the first {min(count, t.size)} "
                                     f"points) is {value:g}; it must be > 0")
    return value


def normalised_pce(time_h: ArrayLike, pce: ArrayLike, reference_h: float = REFERENCE_H
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """(time_h, 100 · pce / PCE₀, PCE₀) of the finite points (:func:`reference_value`)."""
    t, y = _series(time_h, pce)
    reference = reference_value(t, y, reference_h)
    return t, 100.0 * y / reference, reference


# --------------------------------------------------------------------------------------- smoothing
def _median(values: np.ndarray) -> float:
    """The median by partition (np.median's overhead dominates on the short windows it is called on)."""
    n = values.size
    middle = n // 2
    if n % 2:
        return float(np.partition(values, middle)[middle])
    part = np.partition(values, (middle - 1, middle))
    return float(0.5 * (part[middle - 1] + part[middle]))


class RunningMedian:
    """η_s: the median of the points within ±half of each time, the window shrunk symmetrically near the
    ends (module docstring)."""

    def __init__(self, t: np.ndarray, y: np.ndarray, smooth_h: float | None = None) -> None:
        self.t, self.y = t, y
        spacing = float(np.median(np.diff(t))) if t.size > 1 else 0.0
        default = max(SMOOTH_FRACTION * (t[-1] - t[0]), SMOOTH_MIN_POINTS * spacing)
        self.width_h = _positive("smooth_h", smooth_h, default)
        self.half = 0.5 * self.width_h
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def at(self, times: np.ndarray) -> np.ndarray:
        t, y = self.t, self.y
        times = np.asarray(times, dtype=float)
        half = np.minimum(self.half, np.minimum(times - t[0], t[-1] - times))
        lo = np.searchsorted(t, times - half, side="left")
        hi = np.searchsorted(t, times + half, side="right")
        out = np.empty(times.size)
        for k, (a, b) in enumerate(zip(lo, hi, strict=True)):
            out[k] = _median(y[a:b]) if b > a else y[min(a, y.size - 1)]
        return out

    def on_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(:meth:`grid`, η_s on it), computed once."""
        if self._grid is None:
            grid = self.grid()
            self._grid = (grid, self.at(grid))
        return self._grid

    def value_at(self, time_h: float) -> float:
        """η_s at ``time_h`` where its window is complete; within half a window of an end, the value of a
        Theil–Sen line through the points of the window that exist (module docstring)."""
        t = self.t
        if t[0] + self.half <= time_h <= t[-1] - self.half:
            return float(self.at(np.array([time_h]))[0])
        inside = (t >= time_h - self.half) & (t <= time_h + self.half)
        return robust_value(t[inside], self.y[inside], time_h)

    def complete(self) -> np.ndarray:
        """η_s on the grid times whose window is complete (for a maximum: η_s is noisier near the ends)."""
        grid, values = self.on_grid()
        return values[(grid >= self.t[0] + self.half) & (grid <= self.t[-1] - self.half)]

    def grid(self) -> np.ndarray:
        """The times η_s is evaluated on to search crossings: every point, or an even grid of at most
        :data:`GRID_POINTS` times no further apart than a quarter window."""
        t = self.t
        n = min(t.size, max(GRID_POINTS, math.ceil(4 * (t[-1] - t[0]) / self.width_h)))
        return t if n >= t.size else np.linspace(t[0], t[-1], n)

    def points_in_window(self, time_h: float) -> int:
        """How many points the (possibly shrunk) window at ``time_h`` holds."""
        t = self.t
        half = min(self.half, time_h - t[0], t[-1] - time_h)
        return max(int(np.searchsorted(t, time_h + half, side="right") - np.searchsorted(t, time_h - half)), 1)

    def noise(self) -> tuple[float, float]:
        """(σ of one point, σ of η_s) in %: 1.4826 × the median absolute deviation of the points about η_s
        (on at most 2000 of them), and that over the square root of the points in a window (× 1.2533 for
        a median)."""
        t, y = self.t, self.y
        pick = np.unique(np.linspace(0, t.size - 1, min(t.size, 2000)).astype(int))
        residual = y[pick] - self.at(t[pick])
        sigma = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
        per_window = max(self.width_h / max(float(np.median(np.diff(t))), 1e-12), 1.0)
        return sigma, 1.2533 * sigma / math.sqrt(per_window)


def first_crossing(smooth: RunningMedian, level: float) -> float | None:
    """The first time η_s ≤ ``level``, interpolated between the neighbouring points; None if never."""
    grid, values = smooth.on_grid()
    below = np.flatnonzero(values <= level)
    if below.size == 0:
        return None
    k = int(below[0])
    if k == 0:
        return float(grid[0])
    if grid is not smooth.t:  # refine between the two grid times, at every point
        t = smooth.t
        inside = t[(t > grid[k - 1]) & (t < grid[k])]
        times = np.concatenate(([grid[k - 1]], inside, [grid[k]]))
        fine = smooth.at(times)
        fine[-1] = values[k]
        j = int(np.flatnonzero(fine <= level)[0])
        grid, values, k = times, fine, j
    t0, t1, v0, v1 = grid[k - 1], grid[k], values[k - 1], values[k]
    return float(t1 if v0 == v1 else t0 + (v0 - level) / (v0 - v1) * (t1 - t0))


def _lifetime(smooth: RunningMedian, x: float, reference_pct: float, sigma: float, sigma_ref: float) -> Lifetime:
    """T_x against ``reference_pct``; ``sigma``: one point's scatter, ``sigma_ref``: PCE₀'s standard error."""
    level = x / 100.0 * reference_pct
    crossing = first_crossing(smooth, level)
    if crossing is None:
        return Lifetime(x, float(smooth.t[-1]), True)
    sigma_s = 1.2533 * sigma / math.sqrt(smooth.points_in_window(crossing))
    resolved = (reference_pct - level) > RESOLVED_SIGMAS * math.hypot(sigma_s, sigma_ref)
    return Lifetime(x, crossing, False, resolved)


def _reference_sigma(t: np.ndarray, sigma: float, reference_h: float) -> float:
    """PCE₀'s standard error in %: 2σ/√n (a line's value at the end of its window) for the n points it used."""
    n = max(int(np.searchsorted(t, t[0] + reference_h, side="right")), REFERENCE_MIN_POINTS)
    return 2.0 * sigma / math.sqrt(min(n, t.size))


def t_x(time_h: ArrayLike, pce: ArrayLike, x: float, *, reference_h: float = REFERENCE_H,
        smooth_h: float | None = None) -> Lifetime:
    """T_x for any x in (0, 100) %: the first time the smoothed normalised PCE falls to x % (module
    docstring); censored if it never does within the data."""
    x = _check_x(x)
    t, eta, _ = normalised_pce(time_h, pce, reference_h)
    smooth = RunningMedian(t, eta, smooth_h)
    sigma = smooth.noise()[0]
    return _lifetime(smooth, x, 100.0, sigma, _reference_sigma(t, sigma, reference_h))


# ----------------------------------------------------------------------------------------- burn-in
@dataclass(frozen=True)
class BurnIn:
    """The post-burn-in decay: where the burn-in ends (the first time if none was found), the straight line
    fitted after it (η = line_pct + slope·t, %, %/h; E_s = line_pct when ``found``), and whether a burn-in
    was found."""

    end_h: float
    line_pct: float
    slope_pct_h: float
    found: bool


def _line(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(intercept at t = 0, slope) of the least-squares line."""
    slope, intercept = np.polyfit(t, y, 1)
    return float(intercept), float(slope)


def _burn_in_model(t: np.ndarray, e: float, k: float, b: float, tau: float) -> np.ndarray:
    return e - k * t + b * np.exp(-t / tau)


def find_burn_in(smooth: RunningMedian, resolution_pct: float) -> BurnIn:
    """The burn-in of η_s (module docstring): a fit of E − k·t + B·exp(−t/τ), accepted when B ≥ δ, E ≥ 50 %
    and t_b = τ·ln(B/δ) ≤ half the run; then a straight line over [t_b, end]."""
    grid, values = smooth.on_grid()
    t_first, t_last = float(grid[0]), float(grid[-1])
    duration = t_last - t_first
    half = grid >= t_first + 0.5 * duration
    e0, slope0 = _line(grid[half], values[half])
    b0 = max(float(values[0]) - e0, resolution_pct)
    try:
        (e, k, b, tau), _ = curve_fit(
            _burn_in_model, grid, values, p0=(e0, -slope0, b0, duration / 20.0),
            bounds=([0.0, -np.inf, 0.0, max(duration * 1e-6, 1e-9)], [1e3, np.inf, 1e3, duration]), maxfev=4000)
    except (RuntimeError, ValueError):  # no convergence: no burn-in is claimed
        b = 0.0
    if b >= resolution_pct and e >= 50.0:
        end = max(t_first, float(tau * math.log(b / resolution_pct)))
        if end <= t_first + 0.5 * duration:
            return BurnIn(end, float(e), -float(k), True)
    intercept, slope = _line(grid, values)
    return BurnIn(t_first, intercept, slope, False)


def _extrapolated(line_pct: float, slope: float, level: float, after_h: float) -> float | None:
    """When the line E + slope·t reaches ``level``, if it falls and does so after ``after_h``."""
    if slope >= 0:
        return None
    time = (level - line_pct) / slope
    return float(time) if time > after_h else None


# ----------------------------------------------------------------------------------------- metrics
def stability_metrics(time_h: ArrayLike, pce: ArrayLike, *, reference_h: float = REFERENCE_H,
                      smooth_h: float | None = None, light_starts_h: ArrayLike | None = None
                      ) -> StabilityMetrics:
    """T80, T95, Ts80, η1000, burn-in loss and the rest of :class:`StabilityMetrics` for tracked PCE (any unit)
    at ``time_h`` (hours from the start of the stress). ``light_starts_h``, for light-cycled runs, adds the
    recovery-corrected and cycle-average T80 (:func:`recovery_corrected_t_x`, :func:`cycle_average_t_x`);
    pass the points under light only."""
    t, eta, reference = normalised_pce(time_h, pce, reference_h)
    smooth = RunningMedian(t, eta, smooth_h)
    sigma, sigma_s = smooth.noise()
    sigma_ref = _reference_sigma(t, sigma, reference_h)
    resolution = max(RESOLVED_SIGMAS * sigma_s, MIN_RESOLUTION_PCT)
    t80 = _lifetime(smooth, 80.0, 100.0, sigma, sigma_ref)
    t95 = _lifetime(smooth, 95.0, 100.0, sigma, sigma_ref)
    burn_in = find_burn_in(smooth, resolution)
    inner = smooth.complete()
    peak = float(inner.max()) if inner.size else 100.0
    if peak > 100.0 + resolution:  # a rising cell: Ts80 refers to its maximum (Table 5)
        stabilised, kind, loss = peak, "maximum", 0.0
    elif burn_in.found:
        stabilised, kind, loss = burn_in.line_pct, "post-burn-in", 100.0 - burn_in.line_pct
    else:
        stabilised, kind, loss = 100.0, "initial", 0.0
    ts80 = _lifetime(smooth, 80.0, stabilised, sigma, sigma_ref)
    last = float(t[-1])
    eta_end = smooth.value_at(last)
    eta1000 = smooth.value_at(ETA_TIME_H) if t80.censored and last >= ETA_TIME_H else None
    line_at_0 = burn_in.line_pct
    extras: dict[str, Any] = {}
    if light_starts_h is not None:
        recovered = recovery_corrected_t_x(t, eta, light_starts_h, 80.0, reference_h=reference_h)
        average = cycle_average_t_x(t, eta, light_starts_h, 80.0)
        extras = {"t80_recovery_corrected_h": recovered.value_h,
                  "t80_recovery_corrected_censored": recovered.censored,
                  "t80_cycle_average_h": average.value_h, "t80_cycle_average_censored": average.censored}
    return StabilityMetrics(
        reference_pce=reference, t80_h=t80.value_h, t80_censored=t80.censored, t95_h=t95.value_h,
        t95_censored=t95.censored, ts80_h=ts80.value_h, ts80_censored=ts80.censored, eta1000_pct=eta1000,
        eta_end_pct=eta_end, burn_in_loss_pct=loss, burn_in_end_h=burn_in.end_h, stabilised_pct=stabilised,
        stabilised_reference=kind, post_burn_in_slope_pct_h=burn_in.slope_pct_h,
        t80_extrapolated_h=_extrapolated(line_at_0, burn_in.slope_pct_h, 80.0, last) if t80.censored else None,
        ts80_extrapolated_h=(_extrapolated(line_at_0, burn_in.slope_pct_h, 0.8 * stabilised, last)
                             if ts80.censored else None),
        last_time_h=last, smooth_h=smooth.width_h, noise_pct=sigma, smoothed_noise_pct=sigma_s, **extras)


# ----------------------------------------------------------------------------------- light cycling
def _cycles(t: np.ndarray, light_starts_h: ArrayLike) -> list[np.ndarray]:
    """Index arrays of the points of each light phase (from one start to the next), empty phases dropped."""
    starts = np.asarray(light_starts_h, dtype=float).ravel()
    if starts.size < 2 or not np.all(np.isfinite(starts)) or np.any(np.diff(starts) <= 0):
        raise StabilityAnalysisError("light_starts_h must hold at least 2 increasing finite times")
    bounds = np.append(starts, np.inf)
    phases = [np.flatnonzero((t >= a) & (t < b)) for a, b in itertools.pairwise(bounds)]
    return [p for p in phases if p.size]


def _first_crossing_of_points(times: np.ndarray, values: np.ndarray, level: float) -> Lifetime:
    below = np.flatnonzero(values <= level)
    x = 100.0 * level / values[0]
    if below.size == 0:
        return Lifetime(x, float(times[-1]), True)
    k = int(below[0])
    if k == 0:
        return Lifetime(x, float(times[0]), False)
    t0, t1, v0, v1 = times[k - 1], times[k], values[k - 1], values[k]
    return Lifetime(x, float(t0 + (v0 - level) / (v0 - v1) * (t1 - t0)), False)


def recovery_corrected_t_x(time_h: ArrayLike, pce: ArrayLike, light_starts_h: ArrayLike, x: float = 80.0, *,
                           reference_h: float = REFERENCE_H) -> Lifetime:
    """Recovery-corrected T_x of a light-cycled run (ISOS consensus, Table 5 option 4): the PCE recovered
    after each dark period is the reference rule applied at the start of each light phase (the median of the
    points in its first ``reference_h``); T_x is the first time these recovered values, normalised to the
    first, fall to x % (linear between phase starts), i.e. the irreversible loss only. ``light_starts_h``: when
    each light phase began; pass the points under light only."""
    x = _check_x(x)
    t, y = _series(time_h, pce)
    times, values = [], []
    for phase in _cycles(t, light_starts_h):
        times.append(float(t[phase[0]]))
        values.append(reference_value(t[phase], y[phase], reference_h) if phase.size >= 3
                      else float(np.median(y[phase])))
    if len(values) < 2:
        raise StabilityAnalysisError("recovery correction needs points in at least 2 light phases")
    recovered = np.array(values)
    return _first_crossing_of_points(np.array(times), recovered, x / 100.0 * recovered[0])


def cycle_average_t_x(time_h: ArrayLike, pce: ArrayLike, light_starts_h: ArrayLike, x: float = 80.0) -> Lifetime:
    """Cycle-average T_x of a light-cycled run (ISOS consensus, Table 5 option 6: "average PCE value during
    the cycle"): the time-average of the PCE over each light phase (trapezoid), placed at the phase's mean
    time and normalised to the first phase; T_x is the first time it falls to x % (linear in between)."""
    x = _check_x(x)
    t, y = _series(time_h, pce)
    times, values = [], []
    for phase in _cycles(t, light_starts_h):
        tp, yp = t[phase], y[phase]
        span = tp[-1] - tp[0]
        values.append(float(trapezoid(yp, tp) / span) if span > 0 else float(np.mean(yp)))
        times.append(float(0.5 * (tp[0] + tp[-1])))
    if len(values) < 2:
        raise StabilityAnalysisError("a cycle average needs points in at least 2 light phases")
    averages = np.array(values)
    return _first_crossing_of_points(np.array(times), averages, x / 100.0 * averages[0])


# ------------------------------------------------------------------------------------------- MPPT
def tracking_efficiency(time_s: ArrayLike, p_tracked: ArrayLike, p_true: ArrayLike, *,
                        max_gap_s: float | None = None) -> float:
    """∫P_tracked dt / ∫P_mpp,true dt (a fraction), trapezoids over the common time grid. An interval is left
    out of both integrals when either power is missing (NaN) at one of its ends or when it is longer than
    ``max_gap_s`` (default: 5 × the median sampling interval): a suspended channel or a resumed run is a gap,
    not time spent at zero power."""
    t = np.asarray(time_s, dtype=float).ravel()
    tracked = np.asarray(p_tracked, dtype=float).ravel()
    true = np.asarray(p_true, dtype=float).ravel()
    if not t.size == tracked.size == true.size:
        raise StabilityAnalysisError(f"time_s, p_tracked and p_true have {t.size}, {tracked.size} and "
                                     f"{true.size} points; they must match")
    if t.size < 2 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise StabilityAnalysisError("time_s must hold at least 2 increasing finite times")
    dt = np.diff(t)
    limit = _positive("max_gap_s", max_gap_s, 5.0 * float(np.median(dt)))
    finite = np.isfinite(tracked) & np.isfinite(true)
    use = finite[:-1] & finite[1:] & (dt <= limit)
    if not np.any(use):
        raise StabilityAnalysisError("no interval with both powers and no gap to integrate")
    area_tracked = float(np.sum(0.5 * (tracked[:-1] + tracked[1:])[use] * dt[use]))
    area_true = float(np.sum(0.5 * (true[:-1] + true[1:])[use] * dt[use]))
    if not area_true > 0:
        raise StabilityAnalysisError(f"∫P_mpp,true dt = {area_true:g}: the true MPP power must be positive")
    return area_tracked / area_true


def mean_abs_dv(v_tracked: ArrayLike, v_true: ArrayLike) -> float:
    """The mean of |V_tracked − V_mpp,true| over the points where both are known, in the inputs' unit (V)."""
    a = np.asarray(v_tracked, dtype=float).ravel()
    b = np.asarray(v_true, dtype=float).ravel()
    if a.size != b.size:
        raise StabilityAnalysisError(f"v_tracked has {a.size} points but v_true has {b.size}")
    both = np.isfinite(a) & np.isfinite(b)
    if not np.any(both):
        raise StabilityAnalysisError("no point with both voltages")
    return float(np.mean(np.abs(a[both] - b[both])))
