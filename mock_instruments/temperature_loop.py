"""What the temperature-controller mocks share: a setpoint ramp, a PID with anti-windup, a diode curve, and
the plumbing that lets a controller drive a cryostat stage of the world.

Both the Lake Shore 336 and the Mercury iTC write their PID as ``output % = Kp·(e + ∫e dt / Ti + Td·de/dt)``
with ``e = setpoint − T``; they only name the parameters differently (Lake Shore: P in %/K, I = 1000/Ti in
"repeats per 1000 s", D in % of Ti/4; Mercury: proportional band P in K (Kp = 100/P), I and D action times
in minutes). The derivative acts on the measurement (no kick when the setpoint jumps), the output is clipped
to 0–100 % and the integral stops winding up while the output is saturated in the direction of the error
and is kept within 0–100 %. Mercury's integrator is also held at zero outside the proportional band.

:class:`StageController` attaches ``control(t) -> heater power W`` to the stage (``stage.attach_controller``)
and ticks it every control period. The loop controls on the noise-free ``stage.temperature_K`` (so the
stage's quiescent fast path can skip ticks once power and temperature are steady) and reports noisy
readings; while a setpoint ramp runs it schedules a world event now and then, so a quiescent stage still
notices the moving setpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mock_instruments.base import MockInstrument

# A silicon diode curve shaped like Lake Shore's DT-670 (K, V): approximate, monotonic, 1.4–500 K.
DIODE_CURVE = ((1.4, 1.64429), (4.2, 1.57848), (10.0, 1.38373), (20.0, 1.19775), (30.0, 1.10263),
               (50.0, 1.07340), (77.35, 1.02443), (100.0, 0.97716), (150.0, 0.87281), (200.0, 0.76846),
               (250.0, 0.66411), (300.0, 0.55975), (400.0, 0.32519), (500.0, 0.09062))
DIODE_LIMITS_K = (DIODE_CURVE[0][0], DIODE_CURVE[-1][0])
_CURVE_K = np.array([k for k, _ in DIODE_CURVE])
_CURVE_V = np.array([v for _, v in DIODE_CURVE])
RAMP_NUDGE_S = 10.0  # how often a running ramp wakes a quiescent stage


def diode_voltage_V(temperature_K: float) -> float:
    """The sensor voltage of the diode curve at ``temperature_K`` (clamped to the curve's ends)."""
    return float(np.interp(temperature_K, _CURVE_K, _CURVE_V))


@dataclass
class SetpointRamp:
    """A setpoint that moves towards ``target_K`` at ``rate_K_min`` when enabled (rate 0: a step)."""

    target_K: float = 0.0
    rate_K_min: float = 0.0
    enabled: bool = False
    start_K: float = 0.0
    start_s: float = 0.0

    def _moving(self) -> bool:
        return self.enabled and self.rate_K_min > 0

    def value(self, t_s: float) -> float:
        """The working setpoint at clock time ``t_s``."""
        if not self._moving():
            return self.target_K
        step = self.rate_K_min / 60.0 * max(0.0, t_s - self.start_s)
        if abs(self.target_K - self.start_K) <= step:
            return self.target_K
        return self.start_K + math.copysign(step, self.target_K - self.start_K)

    def end_s(self) -> float:
        """When the working setpoint reaches the target."""
        if not self._moving():
            return self.start_s
        return self.start_s + abs(self.target_K - self.start_K) / (self.rate_K_min / 60.0)

    def ramping(self, t_s: float) -> bool:
        return self._moving() and t_s < self.end_s()

    def set_target(self, target_K: float, t_s: float) -> None:
        """A new target: the ramp starts from the present working setpoint."""
        self.start_K, self.start_s = self.value(t_s), t_s
        self.target_K = float(target_K)

    def set_rate(self, enabled: bool, rate_K_min: float, t_s: float) -> None:
        """Change the ramp; a ramp in progress continues from where it is at the new rate."""
        self.start_K, self.start_s = self.value(t_s), t_s
        self.enabled, self.rate_K_min = bool(enabled), float(rate_K_min)


@dataclass
class Pid:
    """A PID in the form of the module docstring; ``update`` returns the output in percent (0–100)."""

    kp: float  # % per K
    ti_s: float | None  # integral time (None: no integral action)
    td_s: float = 0.0  # derivative time
    integral_band_K: float | None = None  # integral held at zero while |e| exceeds this
    integral: float = field(default=0.0, init=False)  # ∫e dt in K·s
    last_s: float | None = field(default=None, init=False)
    last_K: float | None = field(default=None, init=False)

    def reset(self) -> None:
        self.integral, self.last_s, self.last_K = 0.0, None, None

    def update(self, t_s: float, setpoint_K: float, measured_K: float, bias_percent: float = 0.0) -> float:
        dt = 0.0 if self.last_s is None else max(0.0, t_s - self.last_s)
        slope = 0.0 if (dt <= 0 or self.last_K is None) else (measured_K - self.last_K) / dt
        self.last_s, self.last_K = t_s, measured_K
        error = setpoint_K - measured_K
        base = bias_percent + self.kp * (error - self.td_s * slope)
        if self.ti_s is None or self.ti_s <= 0:
            self.integral = 0.0
            return min(100.0, max(0.0, base))
        if self.integral_band_K is not None and abs(error) > self.integral_band_K:
            self.integral = 0.0
        else:
            candidate = self.integral + error * dt
            total = base + self.kp * candidate / self.ti_s
            if not ((total > 100.0 and error > 0) or (total < 0.0 and error < 0)):
                self.integral = candidate
            if self.kp > 0:
                self.integral = min(max(self.integral, 0.0), 100.0 * self.ti_s / self.kp)
        return min(100.0, max(0.0, base + self.kp * self.integral / self.ti_s))


class StageController(MockInstrument):
    """Base of a temperature-controller mock: owns a stage of the world and drives its heater.

    Subclasses implement :meth:`control` (the heater power in W at ``t_s``, computed from the noise-free
    stage temperatures) and :meth:`ramping` (whether a setpoint ramp is running).
    """

    control_period_s = 0.5

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        super().__init__(world, name, **options)
        self.stage = world.stage_named(self.stage_name)
        self._nudge: Any = None
        self.stage.attach_controller(self._tick, self.control_period_s)

    def control(self, t_s: float) -> float:
        raise NotImplementedError

    def ramping(self, t_s: float) -> bool:
        return False

    def _tick(self, t_s: float) -> None:
        self.stage.set_heater_power_W(self.control(t_s))
        if self.ramping(t_s) and (self._nudge is None or self._nudge.cancelled or self._nudge.time_s <= t_s):
            self._nudge = self.world.schedule(t_s + RAMP_NUDGE_S, lambda _t: None)

    def wake(self) -> None:
        """A setting changed: let the stage tick the loop now instead of coasting."""
        self.stage.wake()

    def stage_temperature_K(self, node: str = "stage") -> float:
        """The noise-free temperature the loop controls on: the stage block or the sample plate."""
        return self.stage.temperature_K if node == "stage" else self.stage.sample_temperature_K

    def sample_reading_K(self) -> float:
        """A noisy reading of the sample plate (a second sensor on the sample holder)."""
        return self.stage.sample_temperature_K + self.stage.sensor_noise_K * float(self.rng.standard_normal())
