"""Sums of relaxations with a number of terms chosen by the data: the fitting engine of the TID and TAS
analyses.

Model: y(x) = Σⱼ cⱼ·Bⱼ(x) + Σᵢ bᵢ·g(x, pᵢ), with B a fixed baseline (a constant by default), g a relaxation
shape (an exponential decay in time, a Debye step in frequency) and pᵢ its log-rate (ln τ, ln ω0). For fixed
pᵢ the amplitudes are linear, so a term is added by scanning its pᵢ over a grid with the amplitudes solved
exactly (variable projection), then all parameters are refined together (``scipy.optimize.least_squares``
with the analytic Jacobian). Fits for 0..max terms are returned with the Bayesian information criterion
BIC = N·ln(RSS/N) + k·ln N; :func:`choose` picks the lowest BIC whose refinement converged (within 200
evaluations), whose terms are distinct (ratio of neighbouring rates > ``distinct_ratio``) and whose covariance
is finite; a model with more terms must beat every smaller valid one by a margin (ΔBIC > 10 is "very strong"
evidence on Kass & Raftery's scale, J. Am. Stat. Assoc. 90, 773 (1995)).
Terms given as ``always`` (e.g. the tail of a response below the fitted range) are part of every model.
``weights`` (1/σ of each point, up to a common factor) make it a weighted least-squares fit; the RSS and the
BIC are then those of the weighted residuals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

Shape = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (x, p) -> (N, n) columns g(x, p_i)
MAX_EVALUATIONS = 200  # a refinement still moving after this many evaluations did not converge: not chosen


@dataclass(frozen=True)
class Term:
    """A term that is in every model: its start and bounds of p."""

    start: float
    low: float
    high: float


@dataclass(frozen=True)
class SumFit:
    """Baseline coefficients, the amplitudes and log-rates of the fitted terms (``always`` terms first), RSS,
    covariance of (baseline…, b…, p…) (None if singular) and the BIC."""

    baseline: np.ndarray
    amplitudes: np.ndarray
    log_rates: np.ndarray
    rss: float
    covariance: np.ndarray | None
    bic: float
    n_always: int
    converged: bool = True

    @property
    def offset(self) -> float:
        return float(self.baseline[0])

    def _index(self, kind: str, i: int) -> int:
        m, n = self.baseline.size, self.amplitudes.size
        return {"baseline": i, "amplitude": m + i, "rate": m + n + i}[kind]

    def _err(self, kind: str, i: int) -> float:
        if self.covariance is None:
            return math.nan
        k = self._index(kind, i)
        return math.sqrt(max(float(self.covariance[k, k]), 0.0))

    def amplitude_err(self, i: int) -> float:
        return self._err("amplitude", i)

    def log_rate_err(self, i: int) -> float:
        return self._err("rate", i)

    def offset_amplitude_cov(self, i: int) -> float:
        return float(self.covariance[0, self._index("amplitude", i)]) if self.covariance is not None else math.nan


def _design(base: np.ndarray, x: np.ndarray, shape: Shape, p: np.ndarray) -> np.ndarray:
    return np.column_stack([base, shape(x, p)]) if p.size else base


def _linear(x: np.ndarray, y: np.ndarray, w: np.ndarray, base: np.ndarray, shape: Shape, p: np.ndarray
            ) -> tuple[np.ndarray, float]:
    design = _design(base, x, shape, p) * w[:, None]
    coef, *_ = np.linalg.lstsq(design, y * w, rcond=None)
    return coef, float(np.sum((design @ coef - y * w) ** 2))


def _refine(x: np.ndarray, y: np.ndarray, w: np.ndarray, base: np.ndarray, shape: Shape, dshape: Shape,
            p: np.ndarray, low: np.ndarray, high: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None, bool]:
    n, m = p.size, base.shape[1]
    coef, _ = _linear(x, y, w, base, shape, p)
    start = np.concatenate([coef, np.clip(p, low + 1e-9, high - 1e-9)])

    def residual(q: np.ndarray) -> np.ndarray:
        return np.asarray((base @ q[:m] + shape(x, q[m + n:]) @ q[m:m + n] - y) * w)

    def jacobian(q: np.ndarray) -> np.ndarray:
        columns = np.column_stack([base, shape(x, q[m + n:]), dshape(x, q[m + n:]) * q[m:m + n][None, :]])
        return np.asarray(columns * w[:, None])

    lower = np.concatenate([np.full(n + m, -np.inf), low])
    upper = np.concatenate([np.full(n + m, np.inf), high])
    result = least_squares(residual, start, jac=jacobian, bounds=(lower, upper), x_scale="jac", method="trf",
                           max_nfev=MAX_EVALUATIONS)
    q = result.x
    rss = float(np.sum(result.fun**2))
    dof = x.size - q.size
    cov = None
    if dof > 0:
        try:
            cov = np.linalg.inv(result.jac.T @ result.jac) * rss / dof
        except np.linalg.LinAlgError:
            cov = None
    return q[:n + m], q[n + m:], rss, cov, bool(result.status > 0)


def fit_sums(x: np.ndarray, y: np.ndarray, shape: Shape, dshape: Shape, grid: np.ndarray,
             bounds: tuple[float, float], max_terms: int, always: Sequence[Term] = (),
             baseline: np.ndarray | None = None, weights: np.ndarray | None = None) -> list[SumFit]:
    """Fits with 0..``max_terms`` free terms (plus the ``always`` terms), each refined from the previous one
    with one term added at the best grid position; the additions stop after two in a row that raised the BIC.
    ``baseline`` (N × m) are the fixed columns (default: a constant)."""
    n_pts = x.size
    base = np.ones((n_pts, 1)) if baseline is None else np.asarray(baseline, dtype=float).reshape(n_pts, -1)
    m = base.shape[1]
    w = np.ones(n_pts) if weights is None else np.asarray(weights, dtype=float).ravel()
    fixed_low = np.array([t.low for t in always], dtype=float)
    fixed_high = np.array([t.high for t in always], dtype=float)
    fits: list[SumFit] = []
    p = np.array([t.start for t in always], dtype=float)
    for n in range(max_terms + 1):
        if n:
            trials = [_linear(x, y, w, base, shape, np.append(p, g))[1] for g in grid]
            p = np.append(p, grid[int(np.argmin(trials))])
        low = np.concatenate([fixed_low, np.full(n, bounds[0])])
        high = np.concatenate([fixed_high, np.full(n, bounds[1])])
        if p.size:
            coef, p, rss, cov, converged = _refine(x, y, w, base, shape, dshape, p, low, high)
        else:
            coef, rss = _linear(x, y, w, base, shape, p)
            cov, converged = None, True
        k = m + 2 * p.size
        bic = n_pts * math.log(max(rss, 1e-300) / n_pts) + k * math.log(n_pts)
        fits.append(SumFit(baseline=np.asarray(coef[:m]), amplitudes=np.asarray(coef[m:]),
                           log_rates=np.asarray(p), rss=rss, covariance=cov, bic=bic, n_always=len(always),
                           converged=converged))
        if n >= 2 and bic > fits[-2].bic > fits[-3].bic:
            break  # two additions without improvement: more terms will not be chosen
    return fits


def choose(fits: Sequence[SumFit], distinct_ratio: float, min_bic_gain: float = 0.0) -> SumFit:
    """The fit with the lowest BIC that converged, whose free terms are distinct and whose covariance is finite
    (the fit without free terms if none is); a fit with more terms must lower the BIC by more than
    ``min_bic_gain`` below every valid fit with fewer terms."""
    def valid(fit: SumFit) -> bool:
        if not fit.converged:
            return False
        free = fit.log_rates[fit.n_always:]
        if free.size == 0:
            return True
        if fit.covariance is None or not np.all(np.isfinite(np.diag(fit.covariance))):
            return False
        rates = np.sort(free)
        return bool(np.all(np.diff(rates) > math.log(distinct_ratio)))

    best = fits[0]
    for fit in fits[1:]:  # in order of the number of terms
        if valid(fit) and fit.bic < best.bic - min_bic_gain:
            best = fit
    return best
