"""J–V hysteresis: forward and reverse scans at several rates, with preconditioning and an SPO hold.

The protocol, per pixel: bring the sample to its temperature (or take it as it is) and the light to its
intensity, light-soak; for each repeat and each rate, pre-bias, then scan in each direction; finally hold at
the Vmpp of the last reverse scan (stabilised power output). ``execute`` walks that plan; the engine
(:meth:`RunContext.steps`) does the resume bookkeeping, progress and checkpoints.

The scan rate is the instrument's: each scan is one timed sweep (``SourceMeter.sweep_voltage``) with a point
period of step / rate, and the rate the instrument really achieved is recorded next to the requested one.
Each scan is one block (``scan_000``, ``scan_001``, ...) with ``voltage_V``, ``current_A``,
``current_density_mA_cm2`` (photocurrent positive) and ``time_s``; its attributes say what was measured as the
scan had it: direction, rates, irradiance, temperature (mean and spread of the readings before and after the
scan), the SMU's settings and the sweep's timing, and the run segment (0 before any interruption; a block
measured after a resume says so, and the analysis never pairs a forward and a reverse scan across a resume).
The stabilised-power hold is a block ``spo_<pixel>``. A block that a resumed run redoes gets a suffix
(``scan_003_2``). Metrics come from :mod:`labctl.analysis.jv` (``labctl analyze FILE``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labctl.analysis.jv import JVAnalysisError, jv_metrics
from labctl.errors import ParameterError
from labctl.reports.jv import analyze_jv, plot_jv_report, print_jv
from labctl.roles import LightSourceCapabilities, SourceMeterCapabilities, TemperatureControllerCapabilities
from labctl.runner import (
    BoolParameter,
    FloatListParameter,
    FloatParameter,
    IntParameter,
    Procedure,
    RunContext,
    TextListParameter,
    TextParameter,
)
from procedures.conditions import reach_temperature, read_irradiance, read_temperature, settle_light

if TYPE_CHECKING:
    from labctl.station import Station

DIRECTIONS = {"RS": ["RS"], "FS": ["FS"], "RS+FS": ["RS", "FS"], "FS+RS": ["FS", "RS"]}
# Worst-case line frequency for converting NPLC into seconds (50 Hz mains gives the longest integration).
LINE_FREQUENCY_HZ = 50.0
# The smallest per-point cost of any SMU besides integration, for the check that needs no station.
POINT_OVERHEAD_S = 1e-4
# How many readings the SPO hold records (evenly spaced over the hold).
SPO_READINGS = 200


@dataclass(frozen=True)
class Prepare:
    """Bring a pixel to its conditions (temperature, light, light soak): repeated when a run resumes."""

    pixel: str
    duration_s: float
    setup = True

    def __str__(self) -> str:
        return f"{self.pixel}: conditions"


@dataclass(frozen=True)
class Scan:
    index: int
    pixel: str
    repeat: int
    rate_V_s: float
    rate_index: int
    direction: str
    prebias: bool
    duration_s: float
    #: A run resumed at this scan restarts at this plan step (the pair's first scan), so a forward and a
    #: reverse scan measured across an interruption are never taken as a pair.
    resume_from: int | None = None

    def __str__(self) -> str:
        return f"{self.pixel} {self.direction} {self.rate_V_s:g} V/s (scan {self.index + 1})"


@dataclass(frozen=True)
class Hold:
    """The stabilised-power hold at the pixel's Vmpp."""

    pixel: str
    duration_s: float

    def __str__(self) -> str:
        return f"{self.pixel}: SPO hold {self.duration_s:g} s"


class JVHysteresis(Procedure):
    name = "jv"
    title = "J–V hysteresis: forward/reverse scans at several rates, preconditioning, SPO"

    sample = TextListParameter("sample(s)", help="Sample (pixel) names from the station; comma-separated for "
                               "several pixels measured in turn through the switch.")
    v_min_V = FloatParameter("lowest voltage", unit="V", default=-0.1, minimum=-20.0, maximum=20.0)
    v_max_V = FloatParameter("highest voltage", unit="V", default=1.5, minimum=-20.0, maximum=20.0)
    step_V = FloatParameter("voltage step", unit="V", default=0.01, minimum=1e-4, maximum=0.5,
                            help="Ignored when n_points > 0.")
    n_points = IntParameter("points per scan", default=0, minimum=0, maximum=10001,
                            help="0: derive from step_V. At most what the sample's SMU sweeps at once.")
    scan_rates_V_s = FloatListParameter("scan rates", unit="V/s", default=[0.1], minimum=1e-4, maximum=1e3)
    direction = TextParameter("direction order", default="RS+FS", choices=list(DIRECTIONS))
    nplc = FloatParameter("integration time", unit="PLC", default=0.1, minimum=0.001, maximum=100.0)
    compliance_mA_cm2 = FloatParameter("current compliance", unit="mA/cm2", default=40.0, minimum=0.01,
                                       maximum=2000.0)
    suns = FloatParameter("light intensity", unit="suns", default=1.0, minimum=0.0, maximum=2.0,
                          help="0 measures in the dark (shutter closed).")
    temperature_K = FloatParameter(
        "sample temperature", unit="K", default=0.0, minimum=0.0, maximum=500.0,
        help="0: as it is (read and recorded, not controlled). Otherwise the setpoint of the sample's "
             "temperature controller, reached before the first scan.")
    temperature_tolerance_K = FloatParameter("temperature tolerance", unit="K", default=0.5, minimum=0.01,
                                             maximum=20.0, help="Stable = within this of the setpoint ...")
    temperature_window_s = FloatParameter("temperature stability window", unit="s", default=60.0, minimum=0.0,
                                          maximum=3600.0, help="... for this long.")
    temperature_timeout_s = FloatParameter("temperature timeout", unit="s", default=1800.0, minimum=1.0,
                                           maximum=86400.0, help="Stop the run if not stable by then.")
    heater_range = TextParameter("heater range", default="high", choices=["low", "medium", "high"],
                                 help="The controller's heater range while it holds the setpoint.")
    temperature_drift_K = FloatParameter(
        "temperature drift warning", unit="K", default=1.0, minimum=0.01, maximum=100.0,
        help="Warn when the temperature moves more than this during a scan (a stage cooling or heating "
             "shows as hysteresis that is not the cell's).")
    light_soak_s = FloatParameter("light soak before the first scan", unit="s", default=0.0, minimum=0.0,
                                  maximum=36000.0)
    prebias_V = FloatParameter("pre-bias voltage", unit="V", default=0.0, minimum=-20.0, maximum=20.0)
    prebias_s = FloatParameter("pre-bias time before each rate", unit="s", default=0.0, minimum=0.0,
                               maximum=3600.0)
    repeats = IntParameter("repeats", default=1, minimum=1, maximum=100)
    spo_s = FloatParameter("stabilised power hold at Vmpp", unit="s", default=0.0, minimum=0.0, maximum=3600.0)
    shutter_only_while_measuring = BoolParameter("open the shutter only during scans", default=False)

    # ------------------------------------------------------------------------------- analysis
    @classmethod
    def analyze(cls, reader: Any) -> dict[str, Any]:
        return analyze_jv(reader)

    @classmethod
    def print_analysis(cls, result: dict[str, Any], console: Any) -> None:
        print_jv(result, console)

    @classmethod
    def report(cls, path: Path, out_dir: Path) -> list[Path]:
        return plot_jv_report(path, out_dir)

    # --------------------------------------------------------------------------------- checks
    def check_consistency(self) -> None:
        if self.v_min_V >= self.v_max_V:
            raise ParameterError(
                f"parameter 'v_min_V' = {self.v_min_V:g} V must be below v_max_V = {self.v_max_V:g} V"
            )
        if self.n_points == 1:
            raise ParameterError("parameter 'n_points' = 1 is invalid; allowed: 0 (use step_V) or 2 … 10001")
        if len(self.voltages("FS")) > 10001:
            raise ParameterError(
                f"parameter 'step_V' = {self.step_V:g} V gives {len(self.voltages('FS'))} points over "
                f"{self.v_min_V:g} … {self.v_max_V:g} V; allowed: at most 10001 points"
            )
        floor_s = self.nplc / LINE_FREQUENCY_HZ + POINT_OVERHEAD_S
        for rate in self.scan_rates_V_s:
            if self.point_period_s(rate) < floor_s:
                raise ParameterError(
                    f"parameter 'scan_rates_V_s' = {rate:g} V/s is too fast for a {self.actual_step_V() * 1e3:g} "
                    f"mV step at {self.nplc:g} PLC (each point needs ≥ {floor_s * 1e3:.2f} ms); allowed: ≤ "
                    f"{self.actual_step_V() / floor_s:.3g} V/s — use a larger step_V or a smaller nplc"
                )

    def check_station(self, station: Station) -> None:
        for name in self.sample:
            spec = station.sample(name)
            smu = station.role_capabilities(name, "smu", SourceMeterCapabilities)
            for key in ("v_min_V", "v_max_V", "prebias_V"):
                value = getattr(self, key)
                if key == "prebias_V" and self.prebias_s == 0:
                    continue
                if not spec.voltage_min_V <= value <= spec.voltage_max_V:
                    raise ParameterError(
                        f"parameter '{key}' = {value:g} V is outside the limits of sample '{name}'; allowed: "
                        f"{spec.voltage_min_V:g} … {spec.voltage_max_V:g} V"
                    )
            self._check_smu(name, spec, smu)
            if self.suns > 0:
                if spec.light is None:
                    raise ParameterError(
                        f"parameter 'suns' = {self.suns:g} suns but sample '{name}' has no light source; "
                        "allowed: 0 (dark)"
                    )
                light = station.role_capabilities(name, "light", LightSourceCapabilities)
                low, high = light.intensity_range_suns
                if not low <= self.suns <= high:
                    raise ParameterError(f"parameter 'suns' = {self.suns:g} suns is outside the range of "
                                         f"{spec.light}; allowed: {low:g} … {high:g} suns")
            if self.temperature_K > 0:
                if spec.temperature is None:
                    raise ParameterError(
                        f"parameter 'temperature_K' = {self.temperature_K:g} K but sample '{name}' has no "
                        "temperature controller; allowed: 0 (as it is)")
                controller = station.role_capabilities(name, "temperature", TemperatureControllerCapabilities)
                low, high = controller.temperature_range_K
                if not low < self.temperature_K <= high:
                    raise ParameterError(f"parameter 'temperature_K' = {self.temperature_K:g} K is outside the "
                                         f"range of {spec.temperature}; allowed: {low:g} … {high:g} K")

    def _check_smu(self, name: str, spec: Any, smu: SourceMeterCapabilities) -> None:
        compliance_mA = self.compliance_mA_cm2 * spec.area_cm2
        allowed_mA = min(spec.current_max_mA, 1e3 * smu.max_current_A)
        if compliance_mA > allowed_mA:
            raise ParameterError(
                f"parameter 'compliance_mA_cm2' = {self.compliance_mA_cm2:g} mA/cm2 is {compliance_mA:g} mA on the "
                f"{spec.area_cm2:g} cm2 of sample '{name}'; allowed: ≤ {allowed_mA / spec.area_cm2:g} mA/cm2 "
                f"(sample limit {spec.current_max_mA:g} mA, {spec.smu} range {1e3 * smu.max_current_A:g} mA)")
        if not smu.accepts_nplc(self.nplc):
            raise ParameterError(f"parameter 'nplc' = {self.nplc:g} PLC is outside the range of {spec.smu}; "
                                 f"allowed: {smu.nplc_range[0]:g} … {smu.nplc_range[1]:g} PLC")
        needed_s = smu.min_point_period_s(self.nplc)
        for rate in self.scan_rates_V_s:
            if self.point_period_s(rate) < needed_s:
                raise ParameterError(
                    f"parameter 'scan_rates_V_s' = {rate:g} V/s is too fast for {spec.smu} with a "
                    f"{self.actual_step_V() * 1e3:g} mV step at {self.nplc:g} PLC (each point needs ≥ "
                    f"{needed_s * 1e3:.2f} ms); allowed: ≤ {self.actual_step_V() / needed_s:.3g} V/s — "
                    "use a larger step_V or a smaller nplc")
        n_points = len(self.voltages("FS"))
        if n_points > smu.max_sweep_points:
            given = (f"'n_points' = {self.n_points} is" if self.n_points > 1 else
                     f"'step_V' = {self.step_V:g} V gives {n_points} points over "
                     f"{self.v_min_V:g} … {self.v_max_V:g} V,")
            raise ParameterError(f"parameter {given} more than {spec.smu} sweeps at once; allowed: at most "
                                 f"{smu.max_sweep_points} points per scan — use a larger step_V or fewer n_points")

    def instruments_needed(self, station: Station) -> list[str]:
        names: list[str] = []
        for sample in self.sample:
            spec = station.sample(sample)
            names += [n for n in (spec.smu, spec.switch, spec.light, spec.temperature) if n]
            reference = station.reference_cell_for(spec.light) if spec.light else None
            if reference is not None and self.suns > 0:
                names.append(reference.smu)
        return list(dict.fromkeys(names))

    def sample_metadata(self, station: Station | None) -> dict[str, Any]:
        if station is None:
            return {"samples": self.sample}
        return {name: station.sample(name).as_metadata() for name in self.sample}

    def conditions(self) -> dict[str, Any]:
        temperature = "as it is (recorded per scan)" if self.temperature_K == 0 else self.temperature_K
        return {"light_suns": self.suns, "temperature_K": temperature, "atmosphere": "as in the station",
                "bias": "J–V scans", "preconditioning": self.preconditioning()}

    def file_stem(self) -> str:
        return "jv_" + "_".join(self.sample)

    # --------------------------------------------------------------------------------- the plan
    def actual_step_V(self) -> float:
        if self.n_points > 1:
            return (self.v_max_V - self.v_min_V) / (self.n_points - 1)
        return self.step_V

    def voltages(self, direction: str) -> np.ndarray:
        if self.n_points > 1:
            grid = np.linspace(self.v_min_V, self.v_max_V, self.n_points)
        else:
            n = math.floor((self.v_max_V - self.v_min_V) / self.step_V + 1e-9) + 1
            grid = self.v_min_V + self.step_V * np.arange(n)
            if grid[-1] < self.v_max_V - 1e-12:
                grid = np.append(grid, self.v_max_V)
        return grid[::-1].copy() if direction == "RS" else grid

    def point_period_s(self, rate_V_s: float) -> float:
        return self.actual_step_V() / rate_V_s

    def preconditioning(self) -> dict[str, float]:
        return {"light_soak_s": self.light_soak_s, "prebias_V": self.prebias_V, "prebias_s": self.prebias_s}

    def plan(self) -> list[Prepare | Scan | Hold]:
        """Every step in order: per pixel its conditions, its scans (repeats × rates × directions), its hold."""
        steps: list[Prepare | Scan | Hold] = []
        directions = DIRECTIONS[self.direction]
        index = 0
        for pixel in self.sample:
            steps.append(Prepare(pixel, self.light_soak_s))
            for repeat in range(self.repeats):
                for rate_index, rate in enumerate(self.scan_rates_V_s):
                    pair_start = len(steps)
                    for direction in directions:
                        prebias = self.prebias_s > 0 and direction == directions[0]
                        duration = (self.prebias_s if prebias else 0.0) + self.point_period_s(rate) * len(
                            self.voltages(direction))
                        restart = pair_start if len(steps) > pair_start else None
                        steps.append(Scan(index, pixel, repeat, rate, rate_index, direction, prebias, duration,
                                          restart))
                        index += 1
            if self.spo_s > 0:
                steps.append(Hold(pixel, self.spo_s))
        return steps

    def scan_plan(self) -> list[tuple[str, int, float, str]]:
        """Every scan in order: (pixel, repeat, rate, direction)."""
        return [(s.pixel, s.repeat, s.rate_V_s, s.direction) for s in self.plan() if isinstance(s, Scan)]

    # ----------------------------------------------------------------------------- the protocol
    def execute(self, ctx: RunContext) -> None:
        for step in ctx.steps(self.plan()):
            if isinstance(step, Prepare):
                self.prepare(ctx, step.pixel)
            elif isinstance(step, Scan):
                if step.prebias:
                    self.prebias(ctx, step.pixel)
                self.scan(ctx, step)
            else:
                self.stabilised_power(ctx, step.pixel)
        for pixel in dict.fromkeys(self.sample):
            ctx.bench.source_meter(pixel).output_off()

    def hold(self, ctx: Any, why: str) -> None:
        """A paused J–V holds its cells at open circuit, the light as set."""
        for pixel in dict.fromkeys(self.sample):
            ctx.bench.source_meter(pixel).output_off()

    def prepare(self, ctx: RunContext, pixel: str) -> None:
        """The pixel's temperature, light and light soak; its SMU configured."""
        bench = ctx.bench
        spec = bench.station.sample(pixel)
        smu = bench.source_meter(pixel)
        smu.output_off()
        bench.select(pixel)
        smu.set_nplc(self.nplc)
        smu.set_compliance_current(self.compliance_mA_cm2 * spec.area_cm2 * 1e-3)
        if self.temperature_K > 0:
            reach_temperature(ctx, pixel, self.temperature_K, self.temperature_tolerance_K,
                              self.temperature_window_s, self.temperature_timeout_s, self.heater_range)
        settle_light(ctx, pixel, self.suns)
        if self.light_soak_s > 0:
            ctx.event("light_soak", f"{pixel}: light soak {self.light_soak_s:g} s at open circuit",
                      pixel=pixel, seconds=self.light_soak_s)
            ctx.sleep(self.light_soak_s)
        if spec.light is not None and self.shutter_only_while_measuring:
            bench.light(pixel).close_shutter()

    def prebias(self, ctx: RunContext, pixel: str) -> None:
        smu = ctx.bench.source_meter(pixel)
        smu.source_voltage(self.prebias_V)
        smu.output_on()
        ctx.sleep(self.prebias_s)

    def scan(self, ctx: RunContext, step: Scan) -> None:
        bench = ctx.bench
        spec = bench.station.sample(step.pixel)
        smu = bench.source_meter(step.pixel)
        irradiance = self._light_for_measuring(ctx, step.pixel)
        before_K = read_temperature(ctx, step.pixel)
        voltages = self.voltages(step.direction)
        smu.source_voltage(float(voltages[0]))
        smu.output_on()
        result = smu.sweep_voltage(voltages, self.point_period_s(step.rate_V_s))
        after_K = read_temperature(ctx, step.pixel)
        self._after_measuring(ctx, step.pixel)
        mean_K, spread_K = 0.5 * (before_K + after_K), abs(after_K - before_K)
        if spread_K > self.temperature_drift_K:
            ctx.event("temperature_drift", f"{step.pixel}: the temperature moved {spread_K:.2f} K during scan "
                      f"{step.index + 1} ({before_K:.2f} → {after_K:.2f} K): the scan's hysteresis includes it",
                      pixel=step.pixel, before_K=before_K, after_K=after_K)
            ctx.log(f"{step.pixel}: temperature drifted {spread_K:.2f} K during a scan", "warning")
        density = -np.asarray(result.current_A) / spec.area_cm2 * 1e3  # SMU sign → photocurrent positive
        block = ctx.create_block(
            _free_block_name(ctx, f"scan_{step.index:03d}"),
            {"voltage_V": "V", "current_A": "A", "current_density_mA_cm2": "mA/cm2", "time_s": "s"},
            {
                "direction": step.direction, "scan_rate_V_s": step.rate_V_s,
                "achieved_rate_V_s": result.achieved_rate_V_s, "pixel": step.pixel, "repeat": step.repeat,
                "irradiance_mW_cm2": irradiance, "suns": self.suns,
                # position in scan_rates_V_s: a rate listed twice gives two forward/reverse pairs
                "rate_index": step.rate_index,
                "temperature_K": mean_K, "temperature_spread_K": spread_K,
                "temperature_setpoint_K": self.temperature_K if self.temperature_K > 0 else math.nan,
                "area_cm2": spec.area_cm2, "step_V": self.actual_step_V(),
                "point_period_s": self.point_period_s(step.rate_V_s), "nplc": self.nplc,
                "preconditioning": json.dumps(self.preconditioning()),
                "segment": ctx.segment, "after_resume": ctx.resumed_run,
                "smu_settings": json.dumps(_snapshot(smu)), "sweep_settings": json.dumps(result.settings),
            },
            signal="current_density_mA_cm2", axes="voltage_V", expected_rows=len(result.voltage_V),
        )
        block.append_columns(voltage_V=result.voltage_V, current_A=result.current_A,
                             current_density_mA_cm2=density, time_s=result.time_s)
        block.finish()
        entry = ctx.state.setdefault("vmpp_V", {}).setdefault(step.pixel, {})
        entry["last"] = _vmpp_of(np.asarray(result.voltage_V), density)
        if step.direction == "RS":
            entry["RS"] = entry["last"]

    def stabilised_power(self, ctx: RunContext, pixel: str) -> None:
        """Hold at the Vmpp of the pixel's last reverse scan (or last scan) and record the power."""
        bench = ctx.bench
        spec = bench.station.sample(pixel)
        entry = ctx.state.get("vmpp_V", {}).get(pixel, {})
        vmpp = float(entry.get("RS", entry.get("last", math.nan)))
        if math.isnan(vmpp):
            ctx.event("spo_skipped", f"{pixel}: no maximum power point in the scans; SPO hold skipped", pixel=pixel)
            return
        smu = bench.source_meter(pixel)
        irradiance = self._light_for_measuring(ctx, pixel)
        block = ctx.create_block(
            _free_block_name(ctx, f"spo_{pixel}"),
            {"time_s": "s", "voltage_V": "V", "current_A": "A", "current_density_mA_cm2": "mA/cm2",
             "power_mW_cm2": "mW/cm2"},
            {"pixel": pixel, "vmpp_V": vmpp, "hold_s": self.spo_s, "irradiance_mW_cm2": irradiance,
             "area_cm2": spec.area_cm2, "temperature_K": read_temperature(ctx, pixel), "segment": ctx.segment,
             "after_resume": ctx.resumed_run},
            signal="power_mW_cm2", axes="time_s", expected_rows=SPO_READINGS,
        )
        smu.source_voltage(vmpp)
        smu.output_on()
        interval = self.spo_s / SPO_READINGS
        t0 = ctx.clock.now()
        for k in range(SPO_READINGS):
            ctx.sleep(max(0.0, t0 + (k + 1) * interval - ctx.clock.now()))
            voltage, current = smu.measure()
            density = -current / spec.area_cm2 * 1e3
            block.append_row(time_s=ctx.clock.now() - t0, voltage_V=voltage, current_A=current,
                             current_density_mA_cm2=density, power_mW_cm2=voltage * density)
        self._after_measuring(ctx, pixel)
        smu.output_off()
        block.finish()

    def _light_for_measuring(self, ctx: RunContext, pixel: str) -> float:
        """Open the shutter if it closes between measurements; the irradiance now (0 in the dark)."""
        if self.suns <= 0 or ctx.bench.station.sample(pixel).light is None:
            return 0.0
        if self.shutter_only_while_measuring:
            ctx.bench.light(pixel).open_shutter()
        return read_irradiance(ctx, pixel)

    def _after_measuring(self, ctx: RunContext, pixel: str) -> None:
        if self.suns > 0 and self.shutter_only_while_measuring and ctx.bench.station.sample(pixel).light:
            ctx.bench.light(pixel).close_shutter()


def _snapshot(smu: Any) -> dict[str, Any]:
    try:
        return dict(smu.settings_snapshot())
    except Exception as exc:  # a snapshot never stops a measurement
        return {"error": str(exc)}


def _vmpp_of(voltage: np.ndarray, density: np.ndarray) -> float:
    """Vmpp of one scan, NaN when the scan cannot give one (too few points, no photocurrent, ...)."""
    try:
        return float(jv_metrics(voltage, density, photocurrent_sign="positive")["vmpp_V"])
    except JVAnalysisError:
        return math.nan


def _free_block_name(ctx: RunContext, name: str) -> str:
    """``name``, or ``name_2``, ``name_3``, ... when a resumed run redoes a block that an interruption left."""
    existing = set(ctx.block_names())
    candidate, n = name, 1
    while candidate in existing:
        n += 1
        candidate = f"{name}_{n}"
    return candidate
