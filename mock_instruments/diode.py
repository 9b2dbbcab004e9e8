"""The single-diode equation with series and shunt resistance, solved exactly with Lambert W.

    J = Jph − J0·(exp((V + J·Rs)/a) − 1) − (V + J·Rs)/Rsh,     a = n·k·T/q

Units: J, Jph, J0 in mA/cm² (photocurrent positive), V in volts, Rs and Rsh in V per (mA/cm²), i.e. the
Ω·cm² value × 1e-3. The explicit solutions are Jain & Kapoor (2004), the same as
``pvlib.pvsystem.i_from_v``/``v_from_i`` (the tests check agreement). Lambert W is evaluated from the
logarithm of its argument so that the exponentials never overflow, in pure Python for the scalar path the
instrument mocks call per reading (a few µs) and vectorised for arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

BOLTZMANN_EV_K = 8.617333262e-5  # k/q in V/K
# Newton on W stops at this relative step: 1e-15 can stall on rounding (the step never gets below ~4e-15
# for arguments near e^-30), while after a step of 1e-14 the error is ~1e-28.
W_TOLERANCE = 1e-14


def thermal_voltage(temperature_K: float) -> float:
    return BOLTZMANN_EV_K * temperature_K


def lambertw_exp(log_x: float, guess: float = 0.0) -> float:
    """W(exp(log_x)) for the principal branch, real log_x of any size (no overflow). ``guess`` > 0 starts
    Newton there (a W computed for a nearby argument converges in one or two steps)."""
    if log_x < -30.0:
        x = math.exp(log_x)
        return x * (1.0 - x)
    if guess > 0.0:
        w = guess
    elif log_x > 1.5:
        w = log_x - math.log(log_x)
    else:
        w = 0.6 * math.exp(log_x) if log_x < -1.0 else 0.5 + 0.3 * log_x
    if w <= 0.0:
        w = 1e-3
    for _ in range(40):
        # Newton on w + ln w = log_x (monotone, concave): quadratic convergence from any w > 0.
        w_new = w * (1.0 + log_x - math.log(w)) / (1.0 + w)
        if w_new <= 0.0:
            w_new = 0.5 * w
        if abs(w_new - w) <= W_TOLERANCE * w_new:
            return w_new
        w = w_new
    return w


def lambertw_exp_array(log_x: np.ndarray) -> np.ndarray:
    """Vectorised :func:`lambertw_exp`."""
    log_x = np.asarray(log_x, dtype=float)
    small = log_x < -30.0
    safe = np.where(log_x > 1.5, log_x, 1.5)
    w = np.where(log_x > 1.5, safe - np.log(safe),
                 np.where(log_x < -1.0, 0.6 * np.exp(np.minimum(log_x, 0.0)), 0.5 + 0.3 * log_x))
    w = np.maximum(w, 1e-300)
    for _ in range(40):
        w_new = w * (1.0 + log_x - np.log(w)) / (1.0 + w)
        w_new = np.where(w_new <= 0.0, 0.5 * w, w_new)
        done = bool(np.all((np.abs(w_new - w) <= W_TOLERANCE * w_new) | small))
        w = w_new
        if done:
            break
    x_small = np.exp(np.minimum(log_x, -30.0))
    return np.where(small, x_small * (1.0 - x_small), w)


def current_from_voltage(v: float, jph: float, j0: float, rs: float, rsh: float, a: float) -> float:
    """J(V), scalar. rs, rsh in V/(mA/cm²)."""
    return current_and_w(v, jph, j0, rs, rsh, a)[0]


def current_and_w(v: float, jph: float, j0: float, rs: float, rsh: float, a: float, w_guess: float = 0.0
                  ) -> tuple[float, float]:
    """(J(V), W): :func:`current_from_voltage` that also returns the Lambert W it solved, to warm-start the
    next evaluation near the same point (``w_guess``)."""
    if rs <= 1e-12:
        return jph - j0 * math.expm1(v / a) - v / rsh, 0.0
    g = rs + rsh
    log_theta = math.log(rs * rsh * j0 / (a * g)) + rsh * (rs * (jph + j0) + v) / (a * g)
    w = lambertw_exp(log_theta, w_guess)
    return (rsh * (jph + j0) - v) / g - (a / rs) * w, w


def current_from_voltage_array(v: npt.ArrayLike, jph: npt.ArrayLike, j0: npt.ArrayLike, rs: npt.ArrayLike,
                               rsh: npt.ArrayLike, a: npt.ArrayLike) -> np.ndarray:
    """J(V) for arrays; every argument may be an array (broadcast), e.g. one diode per reading time."""
    v, jph, j0, rs, rsh, a = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (v, jph, j0, rs, rsh, a)))
    if np.all(rs > 1e-12):
        g = rs + rsh
        log_theta = np.log(rs * rsh * j0 / (a * g)) + rsh * (rs * (jph + j0) + v) / (a * g)
        return np.asarray((rsh * (jph + j0) - v) / g - (a / rs) * lambertw_exp_array(log_theta))
    out = np.asarray(jph - j0 * np.expm1(v / a) - v / rsh)
    finite = rs > 1e-12
    if np.any(finite):
        out[finite] = current_from_voltage_array(v[finite], jph[finite], j0[finite], rs[finite], rsh[finite],
                                                 a[finite])
    return out


def voltage_from_current(j: float, jph: float, j0: float, rs: float, rsh: float, a: float) -> float:
    """V(J), scalar (the inverse of :func:`current_from_voltage`)."""
    log_psi = math.log(j0 * rsh / a) + rsh * (jph + j0 - j) / a
    return (jph + j0 - j) * rsh - j * rs - a * lambertw_exp(log_psi)


def voltage_from_current_array(j: np.ndarray, jph: float, j0: float, rs: float, rsh: float, a: float
                               ) -> np.ndarray:
    j = np.asarray(j, dtype=float)
    log_psi = math.log(j0 * rsh / a) + rsh * (jph + j0 - j) / a
    return np.asarray((jph + j0 - j) * rsh - j * rs - a * lambertw_exp_array(log_psi))


def diode_slope(v: float, j: float, j0: float, rs: float, rsh: float, a: float) -> float:
    """−dJ/dV at fixed Jph (in (mA/cm²)/V): the small-signal conductance seen at the terminals."""
    gd = (j0 / a) * math.exp(min((v + j * rs) / a, 700.0)) + 1.0 / rsh
    return gd / (1.0 + rs * gd)


def solve_decreasing(f: Callable[[float], tuple[float, float]], target: float, x0: float,
                     tol: float = 1e-12) -> float:
    """Root of f(x) = target for a strictly decreasing f (returning value and slope): a bracket is grown
    from x0 in the Newton direction, then Newton steps safeguarded by bisection (always converges)."""
    x = x0
    for _ in range(8):  # plain Newton first: from a good guess it converges in two or three steps
        y, dy = f(x)
        if not dy < 0.0:
            break
        step = (y - target) / dy
        if abs(step) > 0.1:
            break
        x -= step
        if abs(step) <= tol:
            return x
    y, dy = f(x0)
    r = y - target
    if r == 0.0:
        return x0
    direction = 1.0 if r > 0.0 else -1.0  # decreasing f: too high a value means x is too small
    step = min(max(abs(r / dy) if dy < 0.0 else 0.01, 1e-9), 1.0) * 1.5
    a, x = x0, x0 + direction * step
    for _ in range(200):
        yx, _ = f(x)
        if (yx - target) * direction <= 0.0:
            break
        a, step = x, step * 2.0
        x = x0 + direction * step
    lo, hi = (a, x) if direction > 0 else (x, a)
    x = 0.5 * (lo + hi)
    for _ in range(200):
        y, dy = f(x)
        r = y - target
        if r == 0.0:
            return x
        if r > 0.0:
            lo = x
        else:
            hi = x
        x_new = x - r / dy if dy < 0.0 else 0.5 * (lo + hi)
        if not lo < x_new < hi:
            x_new = 0.5 * (lo + hi)
        if abs(x_new - x) <= tol or hi - lo <= tol:
            return x_new
        x = x_new
    return x
