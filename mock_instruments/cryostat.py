"""A liquid-nitrogen cryostat stage: heater, thermal mass, cold link, sample plate, sensor.

Two thermal nodes, linear, so constant heater power has an exact closed-form solution over any step:

    C_s·dT_s/dt = P + G_c·(T_c − T_s) + G_a·(T_a − T_s) + G_sd·(T_d − T_s)     stage block (heater, sensor)
    C_d·dT_d/dt = G_sd·(T_s − T_d)                                             sample plate (the device)

T_c is the cold reservoir (LN2, 77 K), T_a the room (radiation and wiring leak). With the defaults the
stage reaches ~80 K with the heater off and 400 K at ~81 W of the 100 W heater; the block (150 J/K, a
copper cold finger) has a ~10 min time constant, so full power heats at ~40 K/min and free cooling starts at
~20 K/min; the sample lags the sensor by ~10 s. A PID controller on the sensor ramps, overshoots and settles
like on a real stage, and the sample needs extra time after the sensor is stable.

A temperature controller mock attaches with ``attach_controller(update, period_s)``: ``update(t_s)`` is
called every control period with the stage at ``t_s``; it reads :attr:`temperature_K` (the sensor's true
value; add noise to what the controller *reports* via :meth:`read_sensor_K`) and calls
:meth:`set_heater_power_W`. Between ticks the power is constant, so each step is exact; once the loop is
quiescent (power unchanged and at equilibrium) the stage jumps to the target time in one step.

Faults: ``heater_runaway`` (full power whatever is asked), ``open_sensor`` (the reading is NaN).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

ControllerUpdate = Callable[[float], None]


def _no_op() -> None:
    return None


class CryostatStage:
    """The shared cryostat stage of a world. Times are clock seconds."""

    def __init__(
        self,
        *,
        rng: np.random.Generator | None = None,
        now_s: float = 0.0,
        temperature_K: float = 298.15,
        reservoir_K: float = 77.0,
        ambient_K: float = 298.15,
        stage_heat_capacity_J_K: float = 150.0,
        sample_heat_capacity_J_K: float = 4.0,
        link_W_K: float = 0.25,
        ambient_link_W_K: float = 0.0035,
        sample_link_W_K: float = 0.4,
        heater_max_W: float = 100.0,
        sensor_noise_K: float = 0.01,
    ) -> None:
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.time_s = float(now_s)
        self.temperature_K = float(temperature_K)  # stage block, where the sensor sits
        self.sample_temperature_K = float(temperature_K)
        self.reservoir_K, self.ambient_K = float(reservoir_K), float(ambient_K)
        self.heater_max_W = float(heater_max_W)
        self.sensor_noise_K = float(sensor_noise_K)
        self.heater_power_W = 0.0
        self.heater_runaway = False
        self.open_sensor = False
        self.before_change: Callable[[], None] = _no_op
        self._controller: ControllerUpdate | None = None
        self._period_s = 1.0
        self._next_tick_s = math.inf
        self._quiescent = False
        cs, cd = stage_heat_capacity_J_K, sample_heat_capacity_J_K
        self._g_out = link_W_K + ambient_link_W_K
        self._leak_W = link_W_K * self.reservoir_K + ambient_link_W_K * self.ambient_K
        self._cs = cs
        # dx/dt = A x + b(P); diagonalise A once (real, negative, distinct eigenvalues).
        a = np.array([[-(self._g_out + sample_link_W_K) / cs, sample_link_W_K / cs],
                      [sample_link_W_K / cd, -sample_link_W_K / cd]])
        eigenvalues, vectors = np.linalg.eig(a)
        self._lambdas = [float(v) for v in eigenvalues.real]
        self._v = [[float(x) for x in row] for row in vectors.real]
        self._v_inv = [[float(x) for x in row] for row in np.linalg.inv(vectors.real)]
        self.time_constants_s = sorted(-1.0 / lam for lam in self._lambdas)

    # ---------------------------------------------------------------------------------- physics
    @property
    def effective_power_W(self) -> float:
        return self.heater_max_W if self.heater_runaway else self.heater_power_W

    def equilibrium_K(self, power_W: float | None = None) -> float:
        """Where both nodes settle at constant heater power."""
        power = self.effective_power_W if power_W is None else power_W
        return (power + self._leak_W) / self._g_out

    def _evolve(self, dt_s: float) -> None:
        if dt_s <= 0:
            return
        t_inf = self.equilibrium_K()
        d0, d1 = self.temperature_K - t_inf, self.sample_temperature_K - t_inf
        (a, b), (c, d) = self._v_inv
        e0, e1 = (math.exp(lam * dt_s) for lam in self._lambdas)
        c0, c1 = e0 * (a * d0 + b * d1), e1 * (c * d0 + d * d1)  # modal amplitudes after dt
        (p, q), (r, s) = self._v
        self.temperature_K, self.sample_temperature_K = t_inf + p * c0 + q * c1, t_inf + r * c0 + s * c1
        self.time_s += dt_s

    def heater_power_for_K(self, temperature_K: float) -> float:
        """The constant heater power at which both nodes settle at ``temperature_K``."""
        return self._g_out * temperature_K - self._leak_W

    def at_equilibrium(self, tolerance_K: float = 1e-4) -> bool:
        t_inf = self.equilibrium_K()
        return max(abs(self.temperature_K - t_inf), abs(self.sample_temperature_K - t_inf)) < tolerance_K

    # ------------------------------------------------------------------------------- stepping
    def prepare_step(self, t_target_s: float, *, resolve: bool = False) -> float:
        """Run the controller if a tick is due now and return how far the next constant-power step goes.

        ``resolve``: devices sit on the stage, so a free (uncontrolled) transient is cut into steps short
        enough for them to see the temperature change.
        """
        if self._controller is not None and self.time_s >= self._next_tick_s - 1e-12:
            before = self.effective_power_W
            self._controller(self.time_s)
            self._next_tick_s = self.time_s + self._period_s
            self._quiescent = abs(self.effective_power_W - before) < 1e-6 and self.at_equilibrium()
        if self._controller is not None and not self._quiescent:
            return min(t_target_s, self._next_tick_s)
        if resolve and not self.at_equilibrium(0.01):
            return min(t_target_s, self.time_s + 0.25 * self.time_constants_s[0])
        return t_target_s

    def evolve_to(self, t_s: float) -> None:
        """Constant-power exact step to ``t_s`` (the caller got ``t_s`` from :meth:`prepare_step`)."""
        self._evolve(t_s - self.time_s)
        if self._quiescent and self._controller is not None and self.time_s > self._next_tick_s:
            self._next_tick_s = self.time_s  # tick again on the next call: it re-checks quiescence

    def advance_to(self, t_s: float) -> None:
        """Bring the stage to clock time ``t_s`` (controller ticks included)."""
        while self.time_s < t_s:
            self.evolve_to(self.prepare_step(t_s))

    # ------------------------------------------------------------------------------- controls
    def set_heater_power_W(self, power_W: float) -> None:
        """Heater power, clipped to [0, heater_max_W] (a controller's output stage)."""
        self.before_change()  # a no-op inside a controller tick: the world is stepping already
        self.heater_power_W = min(max(float(power_W), 0.0), self.heater_max_W)

    def attach_controller(self, update: ControllerUpdate, period_s: float = 0.5) -> None:
        """Let ``update(t_s)`` drive the heater every ``period_s`` seconds from now."""
        self.before_change()
        self._controller, self._period_s = update, float(period_s)
        self._next_tick_s = self.time_s
        self._quiescent = False

    def detach_controller(self) -> None:
        self.before_change()
        self._controller, self._next_tick_s = None, math.inf

    def wake(self) -> None:
        """A controller's setpoint or gains changed: tick at once instead of coasting."""
        self.before_change()
        self._quiescent = False
        self._next_tick_s = min(self._next_tick_s, self.time_s)

    def set_fault(self, kind: str, on: bool = True) -> None:
        self.before_change()
        if kind == "heater_runaway":
            self.heater_runaway = bool(on)
        elif kind == "open_sensor":
            self.open_sensor = bool(on)
        else:
            raise ValueError(f"unknown cryostat fault {kind!r}")
        self._quiescent = False

    def read_sensor_K(self) -> float:
        """The sensor reading with seeded noise, NaN with an open sensor (controllers map it to their own
        error display)."""
        self.before_change()
        if self.open_sensor:
            return math.nan
        return self.temperature_K + self.sensor_noise_K * float(self.rng.standard_normal())

    def state_dict(self) -> dict[str, Any]:
        return {"temperature_K": self.temperature_K, "sample_temperature_K": self.sample_temperature_K,
                "heater_power_W": self.heater_power_W, "heater_runaway": self.heater_runaway,
                "open_sensor": self.open_sensor}

    def load_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self._quiescent = False
