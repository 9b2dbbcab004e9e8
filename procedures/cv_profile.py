"""C–V profile: capacitance against DC bias at a fixed frequency and temperature, in the dark, forward and back.

The protocol: the sample routed through its switch, the light off; the temperature reached and stable when one
is given (``temperature_K`` > 0; stabilisation as in the sweeps, and a temperature that does not stabilise
stops the run with a clear event: a Mott–Schottky fit at an unknown temperature is not wanted); then the LCR
meter's DC bias steps through ``v_min_V`` … ``v_max_V`` and back, ``settle_s`` at each point before the C–G
reading (slow enough for the mobile ions to follow: forward and back agree when ``settle_s`` ≫ their τ).

Data: block ``cv`` with ``voltage_V``, ``capacitance_F``, ``conductance_S`` and ``direction`` (+1 forward,
−1 back); attributes: the measured temperature (mean of the readings before and after) and its spread, the
setpoint, frequency, AC level, settling time, area and ε_r.

Analysis (`labctl analyze`): Mott–Schottky (:mod:`labctl.analysis.cv`) → ``v_bi_V``, ``n_a_cm3`` and
``fit_window_V`` (automatic, or ``fit_window_V`` given as two voltages).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.errors import InterlockTripped, ParameterError
from labctl.roles import LCRMeterCapabilities, TemperatureControllerCapabilities
from labctl.runner import BoolParameter, FloatListParameter, FloatParameter, RunContext, TextParameter
from procedures.conditions import read_temperature, settle_light
from procedures.cryostat_sweep import HEATER_RANGES, TEMPERATURE_RANGE_K, CryostatSweep, OneCell, store_cv_block
from procedures.ion_migration import Settling, cv_sweep, hold_present_temperature, settle_temperature

if TYPE_CHECKING:
    from labctl.station import Station


class CVProfile(OneCell):
    name = "cv"
    title = "C–V: capacitance against bias in the dark, forward and back (Mott–Schottky: V_bi, N_A)"

    v_min_V = FloatParameter("lowest bias", unit="V", default=-1.0, minimum=-40.0, maximum=40.0)
    v_max_V = FloatParameter("highest bias", unit="V", default=0.6, minimum=-40.0, maximum=40.0)
    step_V = FloatParameter("bias step", unit="V", default=0.05, minimum=0.001, maximum=1.0)
    both_directions = BoolParameter("forward then back", default=True)
    settle_s = FloatParameter("settling time per point", unit="s", default=2.0, minimum=0.0, maximum=600.0,
                              help="The ions follow the bias when this is ≫ their τ.")
    frequency_Hz = FloatParameter("frequency", unit="Hz", default=1e4, minimum=20.0, maximum=2e6,
                                  help="On the plateau of C(f): above the ionic and trap responses.")
    ac_level_V = FloatParameter("AC test level", unit="V", default=0.03, minimum=0.001, maximum=20.0)
    temperature_K = FloatParameter("temperature", unit="K", default=0.0, minimum=0.0,
                                   maximum=TEMPERATURE_RANGE_K[1],
                                   help="0: as it is (read and recorded). Otherwise reached and stable first.")
    ramp_K_min = FloatParameter("ramp rate", unit="K/min", default=5.0, minimum=0.1, maximum=100.0)
    tolerance_K = CryostatSweep.tolerance_K
    window_s = CryostatSweep.window_s
    timeout_s = FloatParameter("stabilisation timeout", unit="s", default=1800.0, minimum=1.0, maximum=86400.0,
                               help="The run stops with a clear event when the temperature is not stable by then.")
    heater_range = TextParameter("heater range", default="high", choices=HEATER_RANGES)
    eps_r = CryostatSweep.eps_r
    fit_window_V = FloatListParameter("Mott–Schottky fit window", unit="V", default=[], min_length=0,
                                      minimum=-40.0, maximum=40.0,
                                      help="Empty: chosen automatically. Otherwise two voltages (low, high).")

    # ------------------------------------------------------------------------------- analysis
    @classmethod
    def analyze(cls, reader: Any) -> dict[str, Any]:
        from labctl.reports.cv import analyze_cv

        return analyze_cv(reader)

    @classmethod
    def print_analysis(cls, result: dict[str, Any], console: Any) -> None:
        from labctl.reports.cv import print_cv

        print_cv(result, console)

    @classmethod
    def report(cls, path: Path, out_dir: Path) -> list[Path]:
        from labctl.reports.cv import plot_cv_report

        return plot_cv_report(path, out_dir)

    # --------------------------------------------------------------------------------- checks
    def voltages(self) -> list[float]:
        n = math.floor((self.v_max_V - self.v_min_V) / self.step_V + 1e-9) + 1
        return [round(self.v_min_V + k * self.step_V, 9) for k in range(n)]

    def check_consistency(self) -> None:
        if self.v_min_V >= self.v_max_V:
            raise ParameterError(f"parameter 'v_min_V' = {self.v_min_V:g} V must be below v_max_V = "
                                 f"{self.v_max_V:g} V")
        if len(self.voltages()) < 5:
            raise ParameterError(f"parameter 'step_V' = {self.step_V:g} V gives {len(self.voltages())} points; "
                                 f"allowed: a step giving ≥ 5 between {self.v_min_V:g} and {self.v_max_V:g} V")
        if self.fit_window_V and (len(self.fit_window_V) != 2 or self.fit_window_V[0] >= self.fit_window_V[1]):
            raise ParameterError(f"parameter 'fit_window_V' = {self.fit_window_V} is invalid; allowed: empty "
                                 "(automatic) or two voltages, low then high")
        if self.temperature_K and self.temperature_K < TEMPERATURE_RANGE_K[0]:
            raise ParameterError(f"parameter 'temperature_K' = {self.temperature_K:g} K is invalid; allowed: 0 (as "
                                 f"it is) or {TEMPERATURE_RANGE_K[0]:g} … {TEMPERATURE_RANGE_K[1]:g} K")

    def check_station(self, station: Station) -> None:
        spec = station.sample(self.sample)
        lcr = station.role_capabilities(self.sample, "lcr", LCRMeterCapabilities)
        check = self.check_in
        meter = str(spec.lcr)
        check("frequency_Hz", self.frequency_Hz, lcr.frequency_range_Hz, "Hz", meter)
        check("ac_level_V", self.ac_level_V, lcr.ac_level_range_V, "V", meter)
        for key in ("v_min_V", "v_max_V"):
            check(key, getattr(self, key), lcr.dc_bias_range_V, "V", meter)
            check(key, getattr(self, key), (spec.voltage_min_V, spec.voltage_max_V), "V", f"sample '{self.sample}'")
        if self.temperature_K > 0:
            if spec.temperature is None:
                raise ParameterError(f"parameter 'temperature_K' = {self.temperature_K:g} K but sample "
                                     f"'{self.sample}' has no temperature controller; allowed: 0 (as it is)")
            controller = station.role_capabilities(self.sample, "temperature", TemperatureControllerCapabilities)
            check("temperature_K", self.temperature_K, controller.temperature_range_K, "K", spec.temperature)
            check("ramp_K_min", self.ramp_K_min, controller.ramp_rate_range_K_min, "K/min", spec.temperature)

    def conditions(self) -> dict[str, Any]:
        return {"light_suns": 0.0, "temperature_K": self.temperature_K or "as it is (recorded)",
                "bias": f"{self.v_min_V:g} … {self.v_max_V:g} V"}

    # ----------------------------------------------------------------------------- the protocol
    def execute(self, ctx: RunContext) -> None:
        bench = ctx.bench
        spec = bench.station.sample(self.sample)
        bench.select(self.sample)
        if spec.light is not None:
            settle_light(ctx, self.sample, 0.0)
        ctx.progress(0.0, "temperature" if self.temperature_K else "C–V")
        if self.temperature_K > 0:
            self._reach_temperature(ctx)
        ctx.progress(0.1, "C–V")
        before = read_temperature(ctx, self.sample)
        readings = cv_sweep(bench.lcr(self.sample), ctx.clock, self.voltages(), frequency_Hz=self.frequency_Hz,
                            ac_level_V=self.ac_level_V, settle_s=self.settle_s,
                            both_directions=self.both_directions)
        after = read_temperature(ctx, self.sample)
        mean = 0.5 * (before + after) if math.isfinite(before) else math.nan
        store_cv_block(ctx, "cv", readings, {
            "pixel": self.sample, "temperature_K": mean, "temperature_spread_K": abs(after - before),
            "setpoint_K": self.temperature_K or math.nan, "frequency_Hz": self.frequency_Hz,
            "ac_level_V": self.ac_level_V, "settle_s": self.settle_s, "area_cm2": spec.area_cm2,
            "eps_r": self.eps_r, "light": "dark", "segment": ctx.segment})
        ctx.progress(1.0, "done")

    def _reach_temperature(self, ctx: RunContext) -> None:
        controller = ctx.bench.temperature_controller(self.sample)
        controller.set_heater_range(self.heater_range)
        hold_present_temperature(controller)
        settling = Settling(ramp_K_min=self.ramp_K_min, tolerance_K=self.tolerance_K, window_s=self.window_s,
                            timeout_s=self.timeout_s, sample_settle_s=0.0)
        step = settle_temperature(controller, ctx.clock, self.temperature_K, settling)
        if not step.stable:
            message = (f"{self.sample}: not stable at {self.temperature_K:g} K ± {self.tolerance_K:g} K within "
                       f"{self.timeout_s:g} s (last reading {step.reading_K:.2f} K)")
            ctx.event("temperature_not_stable", message, pixel=self.sample, setpoint_K=self.temperature_K,
                      temperature_K=step.reading_K)
            raise InterlockTripped(message)
        ctx.event("temperature_stable", f"{self.sample}: {step.reading_K:.3f} K after {step.waited_s:.0f} s",
                  pixel=self.sample, setpoint_K=self.temperature_K, temperature_K=step.reading_K)
