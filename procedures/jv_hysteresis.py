"""J–V hysteresis: forward and reverse scans at several rates, with preconditioning and an SPO hold.

The scan rate is the instrument's: each scan is one timed sweep (``SourceMeter.sweep_voltage``) with a point
period of step / rate, and the rate the instrument really achieved is recorded next to the requested one.
Each scan is one block (``scan_000``, ``scan_001``, ...) with ``voltage_V``, ``current_A``,
``current_density_mA_cm2`` (photocurrent positive) and ``time_s``; the stabilised-power hold is a block
``spo_<pixel>``. A block that a resumed run redoes (a scan or hold cut short by the interruption) gets a
suffix: ``scan_003_2``, ``spo_<pixel>_2``. Metrics come from :mod:`labctl.analysis.jv` (``labctl analyze FILE``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labctl.analysis.jv import JVAnalysisError, jv_metrics
from labctl.errors import InterlockTripped, ParameterError
from labctl.reports.jv import analyze_jv, plot_jv_report, print_jv
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

if TYPE_CHECKING:
    from labctl.station import Station

DIRECTIONS = {"RS": ["RS"], "FS": ["FS"], "RS+FS": ["RS", "FS"], "FS+RS": ["FS", "RS"]}
# Worst-case line frequency for converting NPLC into seconds (50 Hz mains gives the longest integration).
LINE_FREQUENCY_HZ = 50.0
# Per-point overhead of a source-measure cycle besides integration (settling, A/D, buffer store).
POINT_OVERHEAD_S = 2e-4
# How many readings the SPO hold records (evenly spaced over the hold).
SPO_READINGS = 200
# The light counts as stable when successive reference-cell readings 1 s apart agree within this fraction.
LIGHT_STABLE_FRACTION = 0.003
LIGHT_STABLE_TIMEOUT_S = 300.0
# A lamp that has not reached half its intensity this long after switching on has failed: stop waiting.
LIGHT_DEAD_AFTER_S = 15.0
# The reference cell must read the requested intensity within this fraction, or the run stops (lamp failure,
# a closed shutter, a wrong calibration): PCE from a wrong irradiance is worse than no PCE.
LIGHT_TOLERANCE_FRACTION = 0.10


def _smu_limit(smu_cls: Any, name: str) -> Any:
    """A class attribute of an SMU driver; for a multi-channel SMU, of its channel class."""
    value = getattr(smu_cls, name, None)
    if value is None:
        for klass in getattr(smu_cls, "__mro__", ()):
            for member in vars(klass).values():
                for channel_cls, _ in getattr(member, "pairs", ()):
                    value = getattr(channel_cls, name, None)
                    if value is not None:
                        return value
    return value


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
                            help="0: derive from step_V.")
    scan_rates_V_s = FloatListParameter("scan rates", unit="V/s", default=[0.1], minimum=1e-4, maximum=1e3)
    direction = TextParameter("direction order", default="RS+FS", choices=list(DIRECTIONS))
    nplc = FloatParameter("integration time", unit="PLC", default=0.1, minimum=0.01, maximum=10.0)
    compliance_mA_cm2 = FloatParameter("current compliance", unit="mA/cm2", default=40.0, minimum=0.01,
                                       maximum=2000.0)
    suns = FloatParameter("light intensity", unit="suns", default=1.0, minimum=0.0, maximum=2.0,
                          help="0 measures in the dark (shutter closed).")
    light_soak_s = FloatParameter("light soak before the first scan", unit="s", default=0.0, minimum=0.0,
                                  maximum=36000.0)
    prebias_V = FloatParameter("pre-bias voltage", unit="V", default=0.0, minimum=-20.0, maximum=20.0)
    prebias_s = FloatParameter("pre-bias time before each rate", unit="s", default=0.0, minimum=0.0,
                               maximum=3600.0)
    repeats = IntParameter("repeats", default=1, minimum=1, maximum=100)
    spo_s = FloatParameter("stabilised power hold at Vmpp", unit="s", default=0.0, minimum=0.0, maximum=3600.0)
    shutter_only_while_measuring = BoolParameter("open the shutter only during scans", default=False)

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        # Per pixel, the Vmpp of its last reverse scan ("RS") and of its last scan ("last"), for the SPO hold;
        # saved with every checkpoint so a resumed run holds at the same Vmpp.
        self._vmpp: dict[str, dict[str, float]] = {}

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
        for rate in self.scan_rates_V_s:
            if self.point_period_s(rate) < self.min_point_period_s():
                max_rate = self.actual_step_V() / self.min_point_period_s()
                raise ParameterError(
                    f"parameter 'scan_rates_V_s' = {rate:g} V/s is too fast for a {self.actual_step_V() * 1e3:g} mV "
                    f"step at {self.nplc:g} PLC (each point needs ≥ {self.min_point_period_s() * 1e3:.2f} ms); "
                    f"allowed: ≤ {max_rate:.3g} V/s — use a larger step_V or a smaller nplc"
                )

    def check_station(self, station: Station) -> None:
        for name in self.sample:
            spec = station.sample(name)
            if spec.smu is None:
                raise ParameterError(f"parameter 'sample' = {name!r}: the sample has no smu in the station")
            for key in ("v_min_V", "v_max_V", "prebias_V"):
                value = getattr(self, key)
                if key == "prebias_V" and self.prebias_s == 0:
                    continue
                if not spec.voltage_min_V <= value <= spec.voltage_max_V:
                    raise ParameterError(
                        f"parameter '{key}' = {value:g} V is outside the limits of sample '{name}'; allowed: "
                        f"{spec.voltage_min_V:g} … {spec.voltage_max_V:g} V"
                    )
            compliance_mA = self.compliance_mA_cm2 * spec.area_cm2
            limit_mA = spec.current_max_mA
            smu_cls = station.driver_class(spec.smu)
            smu_max_mA = 1e3 * max(abs(x) for x in getattr(smu_cls, "current_range_A", (-math.inf, math.inf)))
            allowed_mA = min(limit_mA, smu_max_mA)
            if compliance_mA > allowed_mA:
                raise ParameterError(
                    f"parameter 'compliance_mA_cm2' = {self.compliance_mA_cm2:g} mA/cm2 is "
                    f"{compliance_mA:g} mA on the {spec.area_cm2:g} cm2 of sample '{name}'; allowed: ≤ "
                    f"{allowed_mA / spec.area_cm2:g} mA/cm2 (sample limit {limit_mA:g} mA, "
                    f"{spec.smu} range {smu_max_mA:g} mA)"
                )
            min_period = getattr(smu_cls, "min_point_period_s", None)
            if min_period is not None:
                needed_s = float(min_period(self.nplc))
                for rate in self.scan_rates_V_s:
                    if self.point_period_s(rate) < needed_s:
                        raise ParameterError(
                            f"parameter 'scan_rates_V_s' = {rate:g} V/s is too fast for {spec.smu} with a "
                            f"{self.actual_step_V() * 1e3:g} mV step at {self.nplc:g} PLC (each point needs ≥ "
                            f"{needed_s * 1e3:.2f} ms); allowed: ≤ {self.actual_step_V() / needed_s:.3g} V/s — "
                            "use a larger step_V or a smaller nplc"
                        )
            max_points = _smu_limit(smu_cls, "max_sweep_points")
            n_points = len(self.voltages("FS"))
            if max_points is not None and n_points > max_points:
                given = (f"'n_points' = {self.n_points} is" if self.n_points > 1 else
                         f"'step_V' = {self.step_V:g} V gives {n_points} points over "
                         f"{self.v_min_V:g} … {self.v_max_V:g} V,")
                raise ParameterError(
                    f"parameter {given} more than {spec.smu} sweeps at once; allowed: at most "
                    f"{max_points} points per scan — use a larger step_V or fewer n_points"
                )
            nplc_range = getattr(smu_cls, "nplc_range", None)
            if nplc_range and not nplc_range[0] <= self.nplc <= nplc_range[1]:
                raise ParameterError(
                    f"parameter 'nplc' = {self.nplc:g} PLC is outside the range of {spec.smu}; allowed: "
                    f"{nplc_range[0]:g} … {nplc_range[1]:g} PLC"
                )
            if self.suns > 0:
                if spec.light is None:
                    raise ParameterError(
                        f"parameter 'suns' = {self.suns:g} suns but sample '{name}' has no light source; "
                        "allowed: 0 (dark)"
                    )
                light_range = getattr(station.driver_class(spec.light), "intensity_range_suns", None)
                if light_range and not light_range[0] <= self.suns <= light_range[1]:
                    raise ParameterError(
                        f"parameter 'suns' = {self.suns:g} suns is outside the range of {spec.light}; allowed: "
                        f"{light_range[0]:g} … {light_range[1]:g} suns"
                    )

    def instruments_needed(self, station: Station) -> list[str]:
        names: list[str] = []
        for sample in self.sample:
            spec = station.sample(sample)
            names += [n for n in (spec.smu, spec.switch, spec.light, spec.temperature) if n]
        return list(dict.fromkeys(names))

    def sample_metadata(self, station: Station | None) -> dict[str, Any]:
        if station is None:
            return {"samples": self.sample}
        return {name: station.sample(name).as_metadata() for name in self.sample}

    def conditions(self) -> dict[str, Any]:
        return {"light_suns": self.suns, "atmosphere": "as in the station", "bias": "J–V scans",
                "preconditioning": self.preconditioning()}

    def file_stem(self) -> str:
        return "jv_" + "_".join(self.sample)

    # --------------------------------------------------------------------------------- helpers
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

    def min_point_period_s(self) -> float:
        return self.nplc / LINE_FREQUENCY_HZ + POINT_OVERHEAD_S

    def preconditioning(self) -> dict[str, float]:
        return {"light_soak_s": self.light_soak_s, "prebias_V": self.prebias_V, "prebias_s": self.prebias_s}

    def scan_plan(self) -> list[tuple[str, int, float, str]]:
        """Every scan in order: (pixel, repeat, rate, direction)."""
        return [(pixel, repeat, rate, direction)
                for pixel in self.sample
                for repeat in range(self.repeats)
                for rate in self.scan_rates_V_s
                for direction in DIRECTIONS[self.direction]]

    # ------------------------------------------------------------------------------- lifecycle
    def execute(self, ctx: RunContext) -> None:
        assert ctx.bench is not None, "the J–V procedure needs a station"
        bench = ctx.bench
        plan = self.scan_plan()
        state = ctx.resume_state or {}
        next_scan = int(state.get("next_scan", 0))
        spo_done: list[str] = list(state.get("spo_done", []))
        self._vmpp = {pixel: dict(entry) for pixel, entry in dict(state.get("vmpp_V", {})).items()}
        first_direction = DIRECTIONS[self.direction][0]

        def scan_s(rate: float, direction: str) -> float:
            """Time a scan takes, with its pre-bias (once per rate, before the first direction)."""
            prebias = self.prebias_s if direction == first_direction else 0.0
            return prebias + self.point_period_s(rate) * len(self.voltages(direction))

        # Progress counts the measurement's own time: scans, pre-bias, light soak and SPO holds.
        total_s = sum(scan_s(rate, d) for _, _, rate, d in plan)
        total_s += (self.spo_s + self.light_soak_s) * len(self.sample)
        done_s = 0.0
        current_pixel = None
        if self.spo_s > 0 and next_scan > 0:
            # Resumed: a pixel whose scans were all done before the interruption may still lack its SPO hold.
            remaining = {pixel for pixel, *_ in plan[next_scan:]}
            for pixel in dict.fromkeys(p for p, *_ in plan[:next_scan]):
                if pixel not in remaining and pixel not in spo_done:
                    self._prepare_pixel(ctx, pixel)
                    self._finish_pixel(ctx, pixel, spo_done, next_scan)
        for index, (pixel, repeat, rate, direction) in enumerate(plan):
            if index < next_scan:
                done_s += scan_s(rate, direction)
                continue
            if pixel != current_pixel:
                if current_pixel is not None:
                    self._finish_pixel(ctx, current_pixel, spo_done, index)
                    done_s += self.spo_s
                current_pixel = pixel
                self._prepare_pixel(ctx, pixel)
                done_s += self.light_soak_s
            ctx.check()
            if self.prebias_s > 0 and direction == first_direction:
                self._prebias(ctx, pixel)
            self._scan(ctx, index, pixel, repeat, rate, direction)
            done_s += scan_s(rate, direction)
            ctx.checkpoint({"next_scan": index + 1, "spo_done": spo_done, "vmpp_V": self._vmpp})
            ctx.progress(done_s / total_s if total_s else 1.0,
                         f"{pixel} {direction} {rate:g} V/s ({index + 1}/{len(plan)})")
        if current_pixel is not None:
            if self.spo_s > 0:
                ctx.progress(done_s / total_s if total_s else 1.0, f"{current_pixel} SPO hold {self.spo_s:g} s")
            self._finish_pixel(ctx, current_pixel, spo_done, len(plan))
        bench.source_meter(self.sample[-1]).output_off()
        ctx.progress(1.0, f"{len(plan)} scans done")

    def _prepare_pixel(self, ctx: RunContext, pixel: str) -> None:
        bench = ctx.bench
        assert bench is not None
        spec = bench.station.sample(pixel)
        smu = bench.source_meter(pixel)
        smu.output_off()
        bench.select(pixel)
        smu.set_nplc(self.nplc)
        smu.set_compliance_current(self.compliance_mA_cm2 * spec.area_cm2 * 1e-3)
        light = bench.light(pixel) if spec.light else None
        if light is not None:
            if self.suns > 0:
                light.set_intensity_suns(self.suns)
                light.open_shutter()
                self._wait_for_stable_light(ctx, pixel, light)
            else:
                light.close_shutter()
        if self.light_soak_s > 0:
            ctx.event("light_soak", f"{pixel}: light soak {self.light_soak_s:g} s at open circuit",
                      pixel=pixel, seconds=self.light_soak_s)
            ctx.sleep(self.light_soak_s)
        if light is not None and self.shutter_only_while_measuring:
            light.close_shutter()

    def _wait_for_stable_light(self, ctx: RunContext, pixel: str, light: Any) -> None:
        """Lamps warm up: wait until the reference cell stops changing before the first scan."""
        previous = light.read_irradiance_mW_cm2()
        waited = 0.0
        while waited < LIGHT_STABLE_TIMEOUT_S:
            ctx.sleep(1.0)
            waited += 1.0
            reading = light.read_irradiance_mW_cm2()
            if waited >= LIGHT_DEAD_AFTER_S and reading < 0.5 * 100.0 * self.suns:
                self._verify_light(pixel, reading)
            if previous > 0 and abs(reading - previous) <= LIGHT_STABLE_FRACTION * previous:
                ctx.event("light_stable", f"{pixel}: light stable at {reading:.1f} mW/cm2 after {waited:g} s",
                          pixel=pixel, irradiance_mW_cm2=reading, waited_s=waited)
                self._verify_light(pixel, reading)
                return
            previous = reading
        ctx.event("light_unstable", f"{pixel}: light still changing after {waited:g} s; measuring anyway",
                  pixel=pixel, irradiance_mW_cm2=previous)
        self._verify_light(pixel, previous)

    def _verify_light(self, pixel: str, irradiance_mW_cm2: float) -> None:
        target = 100.0 * self.suns
        if abs(irradiance_mW_cm2 - target) > LIGHT_TOLERANCE_FRACTION * target:
            raise InterlockTripped(
                f"{pixel}: the reference cell reads {irradiance_mW_cm2:.1f} mW/cm2 for {self.suns:g} sun(s) "
                f"requested ({target:.0f} mW/cm2 ± {LIGHT_TOLERANCE_FRACTION:.0%}); lamp failure or wrong calibration"
            )

    def _prebias(self, ctx: RunContext, pixel: str) -> None:
        assert ctx.bench is not None
        smu = ctx.bench.source_meter(pixel)
        smu.source_voltage(self.prebias_V)
        smu.output_on()
        ctx.sleep(self.prebias_s)

    def _light_for_scan(self, ctx: RunContext, pixel: str) -> tuple[float, Any]:
        assert ctx.bench is not None
        spec = ctx.bench.station.sample(pixel)
        if spec.light is None:
            return 0.0, None
        light = ctx.bench.light(pixel)
        if self.suns > 0 and self.shutter_only_while_measuring:
            light.open_shutter()
        irradiance = light.read_irradiance_mW_cm2() if self.suns > 0 else 0.0
        if self.suns > 0:
            self._verify_light(pixel, irradiance)
        return irradiance, light

    def _temperature(self, ctx: RunContext, pixel: str) -> float:
        assert ctx.bench is not None
        spec = ctx.bench.station.sample(pixel)
        if spec.temperature is None:
            return float("nan")
        return ctx.bench.temperature_controller(pixel).read_temperature_K()

    def _scan(self, ctx: RunContext, index: int, pixel: str, repeat: int, rate: float, direction: str) -> None:
        assert ctx.bench is not None
        spec = ctx.bench.station.sample(pixel)
        smu = ctx.bench.source_meter(pixel)
        irradiance, light = self._light_for_scan(ctx, pixel)
        voltages = self.voltages(direction)
        smu.source_voltage(float(voltages[0]))
        smu.output_on()
        result = smu.sweep_voltage(voltages, self.point_period_s(rate))
        if light is not None and self.shutter_only_while_measuring:
            light.close_shutter()
        density = -np.asarray(result.current_A) / spec.area_cm2 * 1e3  # SMU sign → photocurrent positive
        block = ctx.create_block(
            _free_block_name(ctx, f"scan_{index:03d}"),
            {"voltage_V": "V", "current_A": "A", "current_density_mA_cm2": "mA/cm2", "time_s": "s"},
            {
                "direction": direction, "scan_rate_V_s": rate, "achieved_rate_V_s": result.achieved_rate_V_s,
                "pixel": pixel, "repeat": repeat, "irradiance_mW_cm2": irradiance, "suns": self.suns,
                # position in scan_rates_V_s: a rate listed twice gives two forward/reverse pairs
                "rate_index": (index // len(DIRECTIONS[self.direction])) % len(self.scan_rates_V_s),
                "temperature_K": self._temperature(ctx, pixel), "area_cm2": spec.area_cm2,
                "step_V": self.actual_step_V(), "point_period_s": self.point_period_s(rate), "nplc": self.nplc,
                "preconditioning": json.dumps(self.preconditioning()),
            },
        )
        block.append_columns(voltage_V=result.voltage_V, current_A=result.current_A,
                             current_density_mA_cm2=density, time_s=result.time_s)
        vmpp = _vmpp_of(np.asarray(result.voltage_V), density)
        entry = self._vmpp.setdefault(pixel, {})
        entry["last"] = vmpp
        if direction == "RS":
            entry["RS"] = vmpp

    def _finish_pixel(self, ctx: RunContext, pixel: str, spo_done: list[str], next_scan: int) -> None:
        if self.spo_s > 0 and pixel not in spo_done:
            self._spo(ctx, pixel)
            spo_done.append(pixel)
            ctx.checkpoint({"next_scan": next_scan, "spo_done": spo_done, "vmpp_V": self._vmpp})
        assert ctx.bench is not None
        ctx.bench.source_meter(pixel).output_off()

    def _spo(self, ctx: RunContext, pixel: str) -> None:
        """Hold at the Vmpp of the pixel's last reverse scan (or last scan) and record the power."""
        assert ctx.bench is not None
        spec = ctx.bench.station.sample(pixel)
        vmpp = self._last_vmpp(pixel)
        if math.isnan(vmpp):
            ctx.event("spo_skipped", f"{pixel}: no maximum power point in the scans; SPO hold skipped",
                      pixel=pixel)
            return
        smu = ctx.bench.source_meter(pixel)
        irradiance, light = self._light_for_scan(ctx, pixel)
        block = ctx.create_block(
            _free_block_name(ctx, f"spo_{pixel}"),
            {"time_s": "s", "voltage_V": "V", "current_A": "A", "current_density_mA_cm2": "mA/cm2",
             "power_mW_cm2": "mW/cm2"},
            {"pixel": pixel, "vmpp_V": vmpp, "hold_s": self.spo_s, "irradiance_mW_cm2": irradiance,
             "area_cm2": spec.area_cm2},
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
        if light is not None and self.shutter_only_while_measuring:
            light.close_shutter()

    def _last_vmpp(self, pixel: str) -> float:
        entry = self._vmpp.get(pixel, {})
        return float(entry.get("RS", entry.get("last", math.nan)))


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
