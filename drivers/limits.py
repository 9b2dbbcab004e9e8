"""The range checks every driver uses before it sends a setting."""

from __future__ import annotations

import numpy as np

from labctl.errors import ParameterError


def check_range(name: str, value: float, limits: tuple[float, float], unit: str = "") -> float:
    """``value`` as a float if ``limits[0] <= value <= limits[1]``, else a :class:`ParameterError` naming the
    parameter, the value and the allowed range (NaN and non-numbers are always refused)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    low, high = limits
    if not low <= number <= high:
        suffix = f" {unit}" if unit else ""
        raise ParameterError(
            f"{name} = {value!r}{suffix} is outside the allowed range {low:.10g}–{high:.10g}{suffix}")
    return number


def check_count(name: str, value: int, limits: tuple[int, int]) -> int:
    """``value`` as an int if it is a whole number within ``limits``, else a :class:`ParameterError` naming the
    parameter, the value and the allowed range (booleans and fractions are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"{name} must be a whole number, got {value!r}")
    low, high = limits
    if not low <= int(value) <= high:
        raise ParameterError(f"{name} = {value!r} is outside the allowed range {low}–{high}")
    return int(value)
