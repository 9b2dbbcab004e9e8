"""Measurement conditions every procedure needs the same way: stable light, a sample temperature.

- :func:`settle_light`: switch the light on and wait until the irradiance has stopped changing — read from the
  station's reference cell for that light when it has one, else from the light source's own sensor — then
  check it is the one asked for (the light interlock: a PCE from a wrong irradiance is worse than none).
  The criterion, stated with the result: the last :data:`LIGHT_WINDOW` readings, one a second, span at most
  :data:`LIGHT_STABLE_FRACTION` of their mean. A lamp that is still warming up changes by more than that
  over the window, so it is never taken as settled half-way.
- :func:`reach_temperature`: set a controller's setpoint and wait until the sample temperature has stayed
  within a tolerance for a window; a clear error when it does not within the timeout.
- :func:`read_temperature`: one reading of a sample's temperature (NaN without a controller).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from labctl.errors import InterlockTripped

#: Readings (1 s apart) that must agree for the light to count as settled.
LIGHT_WINDOW = 5
#: … within this fraction of their mean (max − min).
LIGHT_STABLE_FRACTION = 0.003
LIGHT_STABLE_TIMEOUT_S = 300.0
#: A lamp that has not reached half its intensity this long after switching on has failed: stop waiting.
LIGHT_DEAD_AFTER_S = 15.0
#: The irradiance must be within this fraction of the requested one, or the run stops (light interlock).
LIGHT_TOLERANCE_FRACTION = 0.10


@dataclass(frozen=True)
class LightSettled:
    """How the light settled: the irradiance, how long it took, by which criterion, from which sensor."""

    irradiance_mW_cm2: float
    waited_s: float
    criterion: str
    sensor: str
    stable: bool


def irradiance_sensor(bench: Any, sample: str) -> tuple[Any, str]:
    """The sensor a sample's irradiance is read from: the station's reference cell for its light, or the light
    source's own (a simulator's built-in reference cell)."""
    spec = bench.station.sample(sample)
    reference = bench.reference_cell(spec.light)
    if reference is not None:
        return reference, f"reference cell {reference.name}"
    return bench.light(sample), f"{spec.light}'s own sensor"


def check_irradiance(sample: str, irradiance_mW_cm2: float, suns: float, sensor: str) -> None:
    target = 100.0 * suns
    if abs(irradiance_mW_cm2 - target) > LIGHT_TOLERANCE_FRACTION * target:
        raise InterlockTripped(
            f"{sample}: the {sensor} reads {irradiance_mW_cm2:.1f} mW/cm2 for {suns:g} sun(s) requested "
            f"({target:.0f} mW/cm2 ± {LIGHT_TOLERANCE_FRACTION:.0%}); lamp failure or wrong calibration")


def wait_for_stable_light(ctx: Any, sample: str, sensor: Any, sensor_name: str, suns: float) -> LightSettled:
    """Read ``sensor`` once a second until the last readings agree (see the module docstring)."""
    criterion = (f"{LIGHT_WINDOW} readings 1 s apart within {LIGHT_STABLE_FRACTION:.1%} of their mean, "
                 f"from the {sensor_name}")
    readings = [float(sensor.read_irradiance_mW_cm2())]
    waited = 0.0
    while waited < LIGHT_STABLE_TIMEOUT_S:
        ctx.sleep(1.0)
        waited += 1.0
        readings = [*readings[-(LIGHT_WINDOW - 1):], float(sensor.read_irradiance_mW_cm2())]
        if waited >= LIGHT_DEAD_AFTER_S and readings[-1] < 0.5 * 100.0 * suns:
            check_irradiance(sample, readings[-1], suns, sensor_name)
        if len(readings) == LIGHT_WINDOW:
            mean = sum(readings) / len(readings)
            if mean > 0 and max(readings) - min(readings) <= LIGHT_STABLE_FRACTION * mean:
                return LightSettled(readings[-1], waited, criterion, sensor_name, True)
    return LightSettled(readings[-1], waited, criterion, sensor_name, False)


def settle_light(ctx: Any, sample: str, suns: float) -> LightSettled | None:
    """Light on at ``suns`` (or off for 0), settled and checked; an event says how it settled. None in the
    dark."""
    bench = ctx.bench
    spec = bench.station.sample(sample)
    if spec.light is None:
        return None
    light = bench.light(sample)
    if suns <= 0:
        light.close_shutter()
        return None
    light.set_intensity_suns(suns)
    light.open_shutter()
    sensor, name = irradiance_sensor(bench, sample)
    settled = wait_for_stable_light(ctx, sample, sensor, name, suns)
    if settled.stable:
        ctx.event("light_stable", f"{sample}: light stable at {settled.irradiance_mW_cm2:.1f} mW/cm2 after "
                  f"{settled.waited_s:g} s ({settled.criterion})", pixel=sample,
                  irradiance_mW_cm2=settled.irradiance_mW_cm2, waited_s=settled.waited_s,
                  criterion=settled.criterion)
    else:
        ctx.event("light_unstable", f"{sample}: light still changing after {settled.waited_s:g} s "
                  f"({settled.criterion}); measuring anyway", pixel=sample,
                  irradiance_mW_cm2=settled.irradiance_mW_cm2, criterion=settled.criterion)
    check_irradiance(sample, settled.irradiance_mW_cm2, suns, name)
    return settled


def read_irradiance(ctx: Any, sample: str) -> float:
    """One irradiance reading for a sample (NaN without a light)."""
    bench = ctx.bench
    if bench.station.sample(sample).light is None:
        return math.nan
    sensor, _name = irradiance_sensor(bench, sample)
    return float(sensor.read_irradiance_mW_cm2())


def read_temperature(ctx: Any, sample: str) -> float:
    bench = ctx.bench
    if bench.station.sample(sample).temperature is None:
        return math.nan
    return float(bench.temperature_controller(sample).read_temperature_K())


def reach_temperature(ctx: Any, sample: str, setpoint_K: float, tolerance_K: float, window_s: float,
                      timeout_s: float, heater_range: str = "high") -> float:
    """Set the sample's controller to ``setpoint_K`` and wait until it stays within ``tolerance_K`` for
    ``window_s``; returns the temperature then. Raises :class:`InterlockTripped` (a clear, recorded stop)
    when it is not stable within ``timeout_s``."""
    bench = ctx.bench
    controller = bench.temperature_controller(sample)
    controller.set_setpoint_K(setpoint_K)
    controller.set_heater_range(heater_range)
    stable = controller.wait_until_stable(setpoint_K, tolerance_K, window_s, timeout_s)
    reading = float(controller.read_temperature_K())
    if not stable:
        ctx.event("temperature_not_stable", f"{sample}: not stable at {setpoint_K:g} K ± {tolerance_K:g} K for "
                  f"{window_s:g} s within {timeout_s:g} s (last {reading:.2f} K)", pixel=sample,
                  setpoint_K=setpoint_K, temperature_K=reading)
        raise InterlockTripped(f"{sample}: the temperature did not settle at {setpoint_K:g} K ± {tolerance_K:g} K "
                               f"within {timeout_s:g} s (last reading {reading:.2f} K)")
    ctx.event("temperature_stable", f"{sample}: {reading:.2f} K, within {tolerance_K:g} K of {setpoint_K:g} K "
              f"for {window_s:g} s", pixel=sample, setpoint_K=setpoint_K, temperature_K=reading)
    return reading
