"""A solar simulator's light at the sample plane: intensity, shutter, lamp warm-up, drift, failure.

The light is a pure function of time between changes, so the world can ask for it at any instant without
stepping: ``suns_at(t)`` = setpoint × warm-up(t − lamp on) × (1 + drift(t)), zero with the shutter closed,
the lamp off or failed. Drift is a sum of slow sinusoids with seeded phases (smooth, reproducible, about
``drift_fraction`` peak); warm-up is an exponential approach from ``warmup_start_fraction`` with time
constant ``warmup_tau_s`` (xenon arc: ~0.7 and minutes; an LED simulator: ``warmup_tau_s=0``).

The calibrated reference cell reads the *incident* irradiance in mW/cm² (100 mW/cm² = 1 sun AM1.5G) with
seeded noise; devices see it times ``spectrum_factor`` (the spectral mismatch of the cell under test).

The light keeps the history of its settings (intensity, shutter, lamp, failure), so ``suns_at(t)`` is right
for any past instant too: the world advances a device that lags behind the clock through the light it had
(``next_change_after`` tells where a piece of constant settings ends). The world drops what no device needs
any more (``forget_before``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


def _no_op() -> None:
    return None


@dataclass(frozen=True)
class LightSettings:
    """What a light is set to from some instant on."""

    intensity_suns: float
    shutter_open: bool
    lamp_on: bool
    lamp_on_since_s: float
    failed: bool


class LightField:
    """One light source. Mutators call ``before_change`` (the world's sync) so the past stays exact."""

    def __init__(
        self,
        name: str = "light",
        *,
        rng: np.random.Generator | None = None,
        now: Callable[[], float] = lambda: 0.0,
        intensity_suns: float = 1.0,
        shutter_open: bool = False,
        lamp_on: bool = True,
        warmup_tau_s: float = 90.0,
        warmup_start_fraction: float = 0.7,
        drift_fraction: float = 0.003,
        drift_period_s: float = 4 * 3600.0,
        noise_fraction: float = 0.002,
        spectrum_factor: float = 1.0,
        max_suns: float = 2.0,
    ) -> None:
        self.name = name
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.now = now
        self.before_change: Callable[[], None] = _no_op
        self.intensity_suns = float(intensity_suns)
        self.shutter_open = bool(shutter_open)
        self.lamp_on = bool(lamp_on)
        self.lamp_on_since_s = -math.inf  # a lamp that is on at construction is warm
        self.failed = False
        self.warmup_tau_s = float(warmup_tau_s)
        self.warmup_start_fraction = float(warmup_start_fraction)
        self.drift_fraction = float(drift_fraction)
        self.noise_fraction = float(noise_fraction)
        self.spectrum_factor = float(spectrum_factor)
        self.max_suns = float(max_suns)
        phases = self.rng.uniform(0.0, 2 * math.pi, 3)
        periods = drift_period_s * np.array([1.0, 0.37, 0.13])
        weights = np.array([0.6, 0.3, 0.1])
        self._drift_terms = [(float(w), 2 * math.pi / float(p), float(ph))
                             for w, p, ph in zip(weights, periods, phases, strict=True)]
        self._fastest_drift = max(k for _, k, _ in self._drift_terms)
        self._history: list[tuple[float, LightSettings]] = []
        self._history_times: list[float] = []
        self._record()

    # ----------------------------------------------------------------------------------- history
    @property
    def settings(self) -> LightSettings:
        return LightSettings(self.intensity_suns, self.shutter_open, self.lamp_on, self.lamp_on_since_s,
                             self.failed)

    def _record(self) -> None:
        """The present settings hold from now on."""
        now = self.now()
        if self._history_times and self._history_times[-1] >= now:
            del self._history[-1], self._history_times[-1]
        self._history.append((now, self.settings))
        self._history_times.append(now)

    def settings_at(self, t_s: float) -> LightSettings:
        """The settings in force at clock time ``t_s`` (the earliest kept ones before the history starts)."""
        times = self._history_times
        if t_s >= times[-1]:
            return self._history[-1][1]  # the present settings (every change is recorded)
        i = max(bisect.bisect_right(times, t_s) - 1, 0)
        return self._history[i][1]

    def next_change_after(self, t_s: float) -> float:
        """When the settings in force at ``t_s`` were next changed (inf: they still hold)."""
        times = self._history_times
        i = bisect.bisect_right(times, t_s)
        return times[i] if i < len(times) else math.inf

    def forget_before(self, t_s: float) -> None:
        """Drop the settings no instant at or after ``t_s`` needs."""
        i = bisect.bisect_right(self._history_times, t_s) - 1
        if i > 0:
            del self._history[:i], self._history_times[:i]

    # ----------------------------------------------------------------------------------- changes
    def set_intensity_suns(self, suns: float) -> None:
        if not 0.0 <= suns <= self.max_suns:
            raise ValueError(f"{self.name}: intensity {suns} suns outside [0, {self.max_suns}]")
        self.before_change()
        self.intensity_suns = float(suns)
        self._record()

    def set_shutter(self, is_open: bool) -> None:
        self.before_change()
        self.shutter_open = bool(is_open)
        self._record()

    def open_shutter(self) -> None:
        self.set_shutter(True)

    def close_shutter(self) -> None:
        self.set_shutter(False)

    def switch_lamp(self, on: bool, warm_since_s: float | None = None) -> None:
        """Lamp power; switching on starts the warm-up (``warm_since_s``: as if it had started then — an LED
        engine that was dark only briefly keeps most of its warm-up)."""
        self.before_change()
        if on and not self.lamp_on:
            self.lamp_on_since_s = self.now() if warm_since_s is None else float(warm_since_s)
        self.lamp_on = bool(on)
        self._record()

    def set_failed(self, failed: bool = True) -> None:
        """Lamp failure (a fault): no light whatever the shutter and setpoint say."""
        self.before_change()
        self.failed = bool(failed)
        self._record()

    # ----------------------------------------------------------------------------------- queries
    def incident_suns_at(self, t_s: float) -> float:
        """Irradiance at the sample plane in suns at clock time ``t_s`` (what the reference cell sees)."""
        st = self.settings_at(t_s)
        if not (st.shutter_open and st.lamp_on) or st.failed:
            return 0.0
        return st.intensity_suns * self._warmup(st, t_s) * (1.0 + self.drift(t_s))

    def suns_at(self, t_s: float) -> float:
        """What a device under this light absorbs, in suns (incident × spectrum factor)."""
        return self.incident_suns_at(t_s) * self.spectrum_factor

    def warmup_fraction(self, t_s: float) -> float:
        return self._warmup(self.settings_at(t_s), t_s)

    def _warmup(self, st: LightSettings, t_s: float) -> float:
        age = t_s - st.lamp_on_since_s
        if self.warmup_tau_s <= 0 or age == math.inf:
            return 1.0
        start = self.warmup_start_fraction
        return 1.0 - (1.0 - start) * math.exp(-max(age, 0.0) / self.warmup_tau_s)

    def drift(self, t_s: float) -> float:
        if self.drift_fraction == 0:
            return 0.0
        total = 0.0
        for w, k, ph in self._drift_terms:
            total += w * math.sin(k * t_s + ph)
        return self.drift_fraction * total

    def reference_mW_cm2(self) -> float:
        """The calibrated reference cell's reading now, with seeded noise (never negative)."""
        self.before_change()
        value = 100.0 * self.incident_suns_at(self.now())
        return max(0.0, value * (1.0 + self.noise_fraction * float(self.rng.standard_normal())))

    def max_step_s(self, t_s: float) -> float:
        """How long the light may be treated as constant from ``t_s`` (for stepping the devices); a change of
        settings is a separate limit (:meth:`next_change_after`)."""
        st = self.settings_at(t_s)
        if not (st.shutter_open and st.lamp_on) or st.failed:
            return math.inf
        step = math.inf
        age = t_s - st.lamp_on_since_s
        if self.warmup_tau_s > 0 and age < 6 * self.warmup_tau_s:
            step = self.warmup_tau_s / 8
        if self.drift_fraction > 0:
            step = min(step, 0.5 / self._fastest_drift)
        return step

    def state_dict(self) -> dict[str, Any]:
        return {"intensity_suns": self.intensity_suns, "shutter_open": self.shutter_open,
                "lamp_on": self.lamp_on, "lamp_on_since_s": self.lamp_on_since_s, "failed": self.failed}

    def load_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self._history.clear()
        self._history_times.clear()
        self._record()
