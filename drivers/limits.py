"""The one range check every driver uses before it sends a setting."""

from __future__ import annotations

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
