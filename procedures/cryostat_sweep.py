"""What the TID and TAS sweeps share: one cell in a cryostat, stepped through a list of temperatures, each step
ramped, stabilised and then measured by the LCR meter; a dark C–V at the first temperature for N_A and V_bi
when they are not given.

The plan (walked by the engine, so a resumed run continues at the temperature it stopped at):

1. *conditions* (a set-up step, repeated after a resume): the sample routed through its switch, the heater
   range, ramping off with the setpoint at the present reading (a ramp then starts from the stage, not from
   a stale working setpoint), the light off;
2. the procedure's own preparation (TID: a C–f pre-sweep that chooses the frequency) and, unless N_A and
   V_bi are given, a dark C–V (Mott–Schottky) at the first temperature, stored as block ``cv_reference``;
3. under light, *light on* (a set-up step);
4. one step per temperature: ramp (``ramp_K_min``), wait until the reading stays within ``tolerance_K`` for
   ``window_s`` (``wait_until_stable``), then ``sample_settle_s`` more for the sample behind the sensor;
   measure, with a temperature reading before and after (their mean and spread go in the block).

A temperature that is not stable within ``timeout_s`` ends its step with a ``temperature_not_stable`` event;
``on_unstable`` says what then: ``skip`` (on to the next temperature), ``measure`` (measure anyway, the block
says ``stable = False``), ``stop`` (the run stops, status aborted, with the blocks measured so far kept and
analysable). Every check of the parameters against the station (the controller's temperature and ramp ranges,
the LCR meter's frequency, level and bias ranges, the light) is made before any instrument is touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labctl.analysis.cv import CVAnalysisError, mott_schottky
from labctl.errors import InterlockTripped, ParameterError
from labctl.roles import LCRMeterCapabilities, LightSourceCapabilities, TemperatureControllerCapabilities
from labctl.runner import FloatListParameter, FloatParameter, Procedure, RunContext, TextParameter
from procedures.conditions import read_irradiance, settle_light
from procedures.ion_migration import (
    ON_UNSTABLE,
    Readings,
    Settling,
    TemperatureStep,
    cv_sweep,
    hold_present_temperature,
    measure_between_readings,
    settle_temperature,
    unstable_message,
)
from procedures.jv_hysteresis import _free_block_name

if TYPE_CHECKING:
    from labctl.station import Station

#: A cryostat sweep's temperatures lie in this range whatever the controller's setpoint field allows.
TEMPERATURE_RANGE_K = (4.0, 500.0)
HEATER_RANGES = ["low", "medium", "high"]
CV_COLUMNS = {"voltage_V": "V", "capacitance_F": "F", "conductance_S": "S", "direction": ""}


@dataclass(frozen=True)
class Conditions:
    """Route, heater, setpoint at the present reading; light on (``light``) or off."""

    light: bool
    duration_s: float = 10.0
    setup = True

    def __str__(self) -> str:
        return "light on" if self.light else "conditions"


@dataclass(frozen=True)
class ReferenceCV:
    """The dark C–V at the first temperature (N_A and V_bi for the analysis)."""

    setpoint_K: float
    duration_s: float

    def __str__(self) -> str:
        return f"C–V at {self.setpoint_K:g} K (N_A, V_bi)"


@dataclass(frozen=True)
class TemperaturePoint:
    index: int
    setpoint_K: float
    duration_s: float

    def __str__(self) -> str:
        return f"{self.setpoint_K:g} K ({self.index + 1})"


def temperature_tag(setpoint_K: float) -> str:
    """``300K``, ``297p5K``: a block-name-safe temperature."""
    return f"{setpoint_K:g}K".replace(".", "p").replace("-", "m")


class OneCell(Procedure):
    """Base of a procedure on one sample with an LCR meter (no name of its own: not a procedure to run)."""

    sample = TextParameter("sample", help="The station's sample (with an LCR meter; in a cryostat, with its "
                                          "temperature controller).")

    def instruments_needed(self, station: Station) -> list[str]:
        spec = station.sample(self.sample)
        return [n for n in (spec.lcr, spec.temperature, spec.switch, spec.light) if n]

    def sample_metadata(self, station: Station | None) -> dict[str, Any]:
        if station is None:
            return {"samples": [self.sample]}
        return {self.sample: station.sample(self.sample).as_metadata()}

    def file_stem(self) -> str:
        return f"{self.name}_{self.sample}"

    @staticmethod
    def check_in(key: str, value: float, limits: tuple[float, float], unit: str, who: str) -> None:
        low, high = limits
        if not low <= value <= high:
            raise ParameterError(f"parameter '{key}' = {value:g} {unit} is outside the range of {who}; allowed: "
                                 f"{low:g} … {high:g} {unit}")


class CryostatSweep(OneCell):
    """Base of the temperature-sweep procedures (no name of its own: not a procedure to run)."""

    #: Each sweep redeclares it with its own default list (the position among the parameters stays).
    temperatures_K = FloatListParameter("temperatures, in order", unit="K", minimum=TEMPERATURE_RANGE_K[0],
                                        maximum=TEMPERATURE_RANGE_K[1])
    ramp_K_min = FloatParameter("ramp rate between temperatures", unit="K/min", default=5.0, minimum=0.1,
                                maximum=100.0)
    tolerance_K = FloatParameter("stability band", unit="K", default=0.1, minimum=0.001, maximum=10.0,
                                 help="Stable = the reading stays within this of the setpoint ...")
    window_s = FloatParameter("stability window", unit="s", default=60.0, minimum=0.0, maximum=3600.0,
                              help="... for this long.")
    timeout_s = FloatParameter("stabilisation timeout", unit="s", default=1800.0, minimum=1.0, maximum=86400.0,
                               help="A temperature not stable by then ends its step (see on_unstable).")
    sample_settle_s = FloatParameter("extra wait for the sample", unit="s", default=60.0, minimum=0.0,
                                     maximum=3600.0, help="After the sensor is stable, for the sample on its "
                                     "plate behind the sensor.")
    on_unstable = TextParameter("a temperature that does not stabilise", default="skip", choices=list(ON_UNSTABLE),
                                help="skip it, measure anyway (the block says stable = false), or stop the run "
                                     "(the temperatures measured so far are kept).")
    heater_range = TextParameter("heater range", default="high", choices=HEATER_RANGES)
    eps_r = FloatParameter("relative permittivity of the absorber", default=35.0, minimum=1.0, maximum=1000.0,
                           help="From the literature (FAPbI3 ≈ 35); sets N_A, W, D and the densities.")
    v_bi_V = FloatParameter("built-in voltage V_bi", unit="V", default=0.0, minimum=0.0, maximum=5.0,
                            help="0: measured by a dark C–V (Mott–Schottky) at the first temperature.")
    cv_v_min_V = FloatParameter("C–V from", unit="V", default=-1.0, minimum=-40.0, maximum=40.0)
    cv_v_max_V = FloatParameter("C–V to", unit="V", default=0.6, minimum=-40.0, maximum=40.0)
    cv_step_V = FloatParameter("C–V step", unit="V", default=0.05, minimum=0.001, maximum=1.0)
    cv_settle_s = FloatParameter("C–V settling time per point", unit="s", default=2.0, minimum=0.0, maximum=600.0,
                                 help="The ions follow the bias when this is ≫ their τ.")

    # ------------------------------------------------------------------------------- checks
    @property
    def settling(self) -> Settling:
        return Settling(ramp_K_min=self.ramp_K_min, tolerance_K=self.tolerance_K, window_s=self.window_s,
                        timeout_s=self.timeout_s, sample_settle_s=self.sample_settle_s)

    @property
    def measures_cv(self) -> bool:
        """Whether the run measures the reference C–V (something it needs was not given)."""
        return self.v_bi_V == 0

    def cv_voltages(self) -> list[float]:
        n = math.floor((self.cv_v_max_V - self.cv_v_min_V) / self.cv_step_V + 1e-9) + 1
        return [round(self.cv_v_min_V + k * self.cv_step_V, 9) for k in range(n)]

    def check_consistency(self) -> None:
        if self.measures_cv:
            if self.cv_v_min_V >= self.cv_v_max_V:
                raise ParameterError(f"parameter 'cv_v_min_V' = {self.cv_v_min_V:g} V must be below cv_v_max_V = "
                                     f"{self.cv_v_max_V:g} V")
            if len(self.cv_voltages()) < 5:
                raise ParameterError(f"parameter 'cv_step_V' = {self.cv_step_V:g} V gives "
                                     f"{len(self.cv_voltages())} C–V points; allowed: a step giving ≥ 5 "
                                     f"between {self.cv_v_min_V:g} and {self.cv_v_max_V:g} V")

    def check_station(self, station: Station) -> None:
        name = self.sample
        spec = station.sample(name)
        controller = station.role_capabilities(name, "temperature", TemperatureControllerCapabilities)
        low, high = controller.temperature_range_K
        for value in self.temperatures_K:
            if not low < value <= high:
                raise ParameterError(f"parameter 'temperatures_K' = {value:g} K is outside the range of "
                                     f"{spec.temperature}; allowed: {low:g} … {high:g} K")
        ramp_low, ramp_high = controller.ramp_rate_range_K_min
        if not ramp_low <= self.ramp_K_min <= ramp_high:
            raise ParameterError(f"parameter 'ramp_K_min' = {self.ramp_K_min:g} K/min is outside the range of "
                                 f"{spec.temperature}; allowed: {ramp_low:g} … {ramp_high:g} K/min")
        if self.heater_range not in controller.heater_ranges:
            raise ParameterError(f"parameter 'heater_range' = {self.heater_range!r} is not a range of "
                                 f"{spec.temperature}; allowed: {', '.join(controller.heater_ranges)}")
        lcr = station.role_capabilities(name, "lcr", LCRMeterCapabilities)
        self.check_lcr(station, spec, lcr)
        if self.measures_cv:
            for key in ("cv_v_min_V", "cv_v_max_V"):
                value = getattr(self, key)
                bias_low, bias_high = max(lcr.dc_bias_range_V[0], spec.voltage_min_V), \
                    min(lcr.dc_bias_range_V[1], spec.voltage_max_V)
                if not bias_low <= value <= bias_high:
                    raise ParameterError(f"parameter '{key}' = {value:g} V is outside the limits of sample "
                                         f"'{name}' and {spec.lcr}; allowed: {bias_low:g} … {bias_high:g} V")
        suns = float(getattr(self, "suns", 0.0))
        if suns > 0:
            if spec.light is None:
                raise ParameterError(f"parameter 'suns' = {suns:g} suns but sample '{name}' has no light source; "
                                     "allowed: 0 (dark)")
            light = station.role_capabilities(name, "light", LightSourceCapabilities)
            s_low, s_high = light.intensity_range_suns
            if not s_low <= suns <= s_high:
                raise ParameterError(f"parameter 'suns' = {suns:g} suns is outside the range of {spec.light}; "
                                     f"allowed: {s_low:g} … {s_high:g} suns")

    def check_lcr(self, station: Station, spec: Any, lcr: LCRMeterCapabilities) -> None:
        """The procedure's own checks against the LCR meter's limits."""


    # -------------------------------------------------------------------------------- plan
    def measurement_s(self) -> float:
        """Virtual time one temperature's measurement takes (progress weights)."""
        return 60.0

    def preparation(self) -> list[Any]:
        """Steps between the conditions and the reference C–V (TID: the C–f pre-sweep)."""
        return []

    def plan(self) -> list[Any]:
        temps = list(self.temperatures_K)
        steps: list[Any] = [Conditions(light=False), *self.preparation()]
        if self.measures_cv:
            steps.append(ReferenceCV(temps[0], 2 * len(self.cv_voltages()) * self.cv_settle_s))
        if float(getattr(self, "suns", 0.0)) > 0:
            steps.append(Conditions(light=True, duration_s=30.0))
        previous = None
        for index, setpoint in enumerate(temps):
            ramp_s = 0.0 if previous is None else abs(setpoint - previous) / self.ramp_K_min * 60.0
            settle = ramp_s + self.window_s + self.sample_settle_s
            steps.append(TemperaturePoint(index, setpoint, settle + self.measurement_s()))
            previous = setpoint
        return steps

    def execute(self, ctx: RunContext) -> None:
        for step in ctx.steps(self.plan()):
            if isinstance(step, Conditions):
                self.conditions_step(ctx, step)
            elif isinstance(step, ReferenceCV):
                self.reference_cv(ctx, step)
            elif isinstance(step, TemperaturePoint):
                self.temperature_step(ctx, step)
            else:
                self.prepare_step(ctx, step)
        self.finish(ctx)

    def prepare_step(self, ctx: RunContext, step: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no step {step!r}")

    def finish(self, ctx: RunContext) -> None:
        """After the last temperature: bias off, light off."""
        bench = ctx.bench
        lcr = bench.lcr(self.sample)
        lcr.set_dc_bias(0.0)
        lcr.dc_bias_off()
        if bench.station.sample(self.sample).light is not None:
            bench.light(self.sample).close_shutter()

    def hold(self, ctx: Any, why: str) -> None:
        """A paused sweep holds the cell at 0 V bias (the meter's bias off); temperature and light as set."""
        ctx.bench.lcr(self.sample).dc_bias_off()

    # ------------------------------------------------------------------------------- steps
    def conditions_step(self, ctx: RunContext, step: Conditions) -> None:
        bench = ctx.bench
        bench.select(self.sample)
        controller = bench.temperature_controller(self.sample)
        controller.set_heater_range(self.heater_range)
        if not step.light:
            hold_present_temperature(controller)
        if bench.station.sample(self.sample).light is not None:
            settle_light(ctx, self.sample, float(getattr(self, "suns", 0.0)) if step.light else 0.0)

    def settle(self, ctx: RunContext, setpoint_K: float) -> TemperatureStep:
        """Ramp and stabilise, with an event either way; ``stop`` raises after its event."""
        controller = ctx.bench.temperature_controller(self.sample)
        step = settle_temperature(controller, ctx.clock, setpoint_K, self.settling)
        if step.stable:
            ctx.event("temperature_stable", f"{self.sample}: {step.reading_K:.3f} K, within {self.tolerance_K:g} K "
                      f"of {setpoint_K:g} K for {self.window_s:g} s after {step.waited_s:.0f} s",
                      pixel=self.sample, setpoint_K=setpoint_K, temperature_K=step.reading_K,
                      waited_s=step.waited_s)
            return step
        action = {"skip": "skipped", "measure": "measured anyway", "stop": "the run stops"}[self.on_unstable]
        ctx.event("temperature_not_stable", f"{self.sample}: {unstable_message(step, self.settling)}; {action}",
                  pixel=self.sample, setpoint_K=setpoint_K, temperature_K=step.reading_K,
                  waited_s=step.waited_s, on_unstable=self.on_unstable)
        ctx.log(f"{self.sample}: {unstable_message(step, self.settling)}; {action}", "warning")
        if self.on_unstable == "stop":
            raise InterlockTripped(f"{self.sample}: the temperature did not settle at {setpoint_K:g} K "
                                   f"± {self.tolerance_K:g} K within {self.timeout_s:g} s (last reading "
                                   f"{step.reading_K:.2f} K); on_unstable = stop")
        return step

    def temperature_step(self, ctx: RunContext, step: TemperaturePoint) -> None:
        settled = self.settle(ctx, step.setpoint_K)
        if not settled.stable and self.on_unstable == "skip":
            return
        result, mean_K, spread_K = measure_between_readings(ctx.bench.temperature_controller(self.sample),
                                                            lambda: self.measure(ctx, step))
        attrs = {"setpoint_K": step.setpoint_K, "temperature_K": mean_K, "temperature_spread_K": spread_K,
                 "stable": settled.stable, "settle_s": settled.waited_s, "segment": ctx.segment,
                 "after_resume": ctx.resumed_run, "eps_r": self.eps_r}
        self.store(ctx, step, result, attrs)

    def measure(self, ctx: RunContext, step: TemperaturePoint) -> Any:
        raise NotImplementedError

    def store(self, ctx: RunContext, step: TemperaturePoint, result: Any, attrs: dict[str, Any]) -> None:
        raise NotImplementedError

    def light_attrs(self, ctx: RunContext) -> dict[str, Any]:
        suns = float(getattr(self, "suns", 0.0))
        return {"suns": suns, "irradiance_mW_cm2": read_irradiance(ctx, self.sample) if suns > 0 else 0.0,
                "light": "dark" if suns <= 0 else f"{suns:g} sun"}

    def reference_frequency_Hz(self, ctx: RunContext) -> float:
        """The frequency of the reference C–V (on the C(f) plateau)."""
        return 1e4

    def reference_cv(self, ctx: RunContext, step: ReferenceCV) -> None:
        """Dark C–V at the first temperature, stored and analysed at once (N_A, V_bi for what follows)."""
        self.settle(ctx, step.setpoint_K)
        lcr = ctx.bench.lcr(self.sample)
        frequency = self.reference_frequency_Hz(ctx)
        spec = ctx.bench.station.sample(self.sample)
        readings, mean_K, spread_K = measure_between_readings(
            ctx.bench.temperature_controller(self.sample),
            lambda: cv_sweep(lcr, ctx.clock, self.cv_voltages(), frequency_Hz=frequency, ac_level_V=0.03,
                             settle_s=self.cv_settle_s))
        store_cv_block(ctx, "cv_reference", readings, {
            "setpoint_K": step.setpoint_K, "temperature_K": mean_K, "temperature_spread_K": spread_K,
            "frequency_Hz": frequency, "ac_level_V": 0.03, "settle_s": self.cv_settle_s, "area_cm2": spec.area_cm2,
            "eps_r": self.eps_r, "light": "dark", "segment": ctx.segment})
        try:
            ms = mott_schottky(readings.x, readings.capacitance_F, area_cm2=spec.area_cm2, eps_r=self.eps_r,
                               temperature_K=mean_K)
        except CVAnalysisError as exc:
            ctx.event("reference_cv_failed", f"{self.sample}: no Mott–Schottky line in the reference C–V ({exc}); "
                      "give n_a_cm3 and v_bi_V", pixel=self.sample)
            raise ParameterError(f"the reference C–V gives no Mott–Schottky line ({exc}); give n_a_cm3 and "
                                 "v_bi_V") from exc
        ctx.state["n_a_cm3"], ctx.state["v_bi_V"] = ms.n_a_cm3, ms.v_bi_V
        ctx.event("reference_cv", f"{self.sample}: Mott–Schottky at {mean_K:.1f} K, {frequency:g} Hz: N_A = "
                  f"{ms.n_a_cm3:.3g} cm⁻³, V_bi = {ms.v_bi_V:.3f} V (window {ms.fit_window_V[0]:g} … "
                  f"{ms.fit_window_V[1]:g} V)", pixel=self.sample, n_a_cm3=ms.n_a_cm3, v_bi_V=ms.v_bi_V)

    def n_a_and_v_bi(self, ctx: RunContext) -> tuple[float, float]:
        """The given values, else the reference C–V's (NaN when neither)."""
        n_a = float(getattr(self, "n_a_cm3", 0.0)) or float(ctx.state.get("n_a_cm3", math.nan))
        v_bi = self.v_bi_V or float(ctx.state.get("v_bi_V", math.nan))
        return n_a, v_bi


def store_cv_block(ctx: RunContext, name: str, readings: Readings, attrs: dict[str, Any]) -> None:
    """C–V readings as a block: voltage, C, G and the sweep direction (+1 forward, −1 back)."""
    n = len(readings.x)
    half = n // 2 if n % 2 == 0 and n > 1 and readings.x[0] == readings.x[-1] else n
    direction = [1.0] * half + [-1.0] * (n - half)
    block = ctx.create_block(_free_block_name(ctx, name), CV_COLUMNS, attrs, signal="capacitance_F",
                             axes="voltage_V", expected_rows=n)
    block.append_columns(voltage_V=readings.x, capacitance_F=readings.capacitance_F,
                         conductance_S=readings.conductance_S, direction=direction)
    block.finish()
