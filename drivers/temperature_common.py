"""What the temperature-controller drivers share: waiting for a stable temperature on the labctl clock.

``wait_until_stable`` is the one way a procedure waits for a cryostat: the reading must stay within a
tolerance of the setpoint for a whole window, not just touch it once, and every wait goes through the
instrument's :class:`~labctl.clock.Clock` so the simulated bench jumps over the hours a real cool-down
takes. Drivers mix in :class:`StabilityWaitMixin`; the loop itself is :func:`wait_until_stable` so it can
be tested without an instrument.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from labctl.clock import Clock
from labctl.errors import ParameterError

log = logging.getLogger(__name__)

HEATER_RANGE_NAMES = ("off", "low", "medium", "high")


def default_poll_s(window_s: float) -> float:
    """A poll interval that samples a stability window about ten times, between 0.2 s and 5 s."""
    return min(5.0, max(0.2, window_s / 10.0))


def wait_until_stable(
    read_K: Callable[[], float],
    clock: Clock,
    setpoint_K: float,
    tolerance_K: float,
    window_s: float,
    timeout_s: float,
    poll_s: float | None = None,
) -> bool:
    """Poll ``read_K`` until it stays within ``tolerance_K`` of ``setpoint_K`` for ``window_s``.

    The window restarts whenever a reading falls outside the band. Returns True as soon as the readings
    have been inside the band for ``window_s`` (a reading at the start of the window and one at its end,
    with every poll in between inside), False once ``timeout_s`` has passed since the call without that.
    Errors from ``read_K`` (an open sensor, a lost connection) propagate: a wait never hides a fault.
    """
    for name, value in (("tolerance_K", tolerance_K), ("window_s", window_s), ("timeout_s", timeout_s)):
        if not value >= 0:  # also rejects NaN
            raise ParameterError(f"{name} must be >= 0, got {value!r}")
    if tolerance_K == 0:
        raise ParameterError("tolerance_K must be > 0 (no sensor reads exactly the setpoint)")
    interval = default_poll_s(window_s) if poll_s is None else poll_s
    if not interval > 0:
        raise ParameterError(f"poll_s must be > 0, got {poll_s!r}")
    start = clock.now()
    inside_since: float | None = None
    while True:
        now = clock.now()
        reading = read_K()
        if abs(reading - setpoint_K) <= tolerance_K:
            if inside_since is None:
                inside_since = now
            if now - inside_since >= window_s:
                return True
        else:
            inside_since = None
        elapsed = now - start
        if elapsed >= timeout_s:
            log.info("not stable at %.3f K ± %.3f K after %.0f s (last reading %.3f K)",
                     setpoint_K, tolerance_K, elapsed, reading)
            return False
        clock.sleep(min(interval, timeout_s - elapsed))


class StabilityWaitMixin:
    """Adds the role's ``wait_until_stable`` to a driver that has ``read_temperature_K`` and ``clock``."""

    clock: Clock

    def read_temperature_K(self) -> float:  # pragma: no cover - provided by the driver
        raise NotImplementedError

    def wait_until_stable(
        self,
        setpoint_K: float,
        tolerance_K: float,
        window_s: float,
        timeout_s: float,
        poll_s: float | None = None,
    ) -> bool:
        """Block until the reading stays within ``tolerance_K`` of ``setpoint_K`` for ``window_s``
        seconds; False if ``timeout_s`` passes first. Waits go through ``self.clock``; ``poll_s`` is the
        time between readings (default: a tenth of the window, 0.2–5 s)."""
        return wait_until_stable(self.read_temperature_K, self.clock, setpoint_K, tolerance_K,
                                 window_s, timeout_s, poll_s)


def heater_range_index(heater_range: str, names: tuple[str, ...] = HEATER_RANGE_NAMES) -> int:
    """The index of a heater range name (``"off"`` = 0 ...); a clear error for anything else."""
    key = heater_range.strip().lower()
    if key not in names:
        raise ParameterError(f"heater_range must be one of {', '.join(names)}; got {heater_range!r}")
    return names.index(key)
