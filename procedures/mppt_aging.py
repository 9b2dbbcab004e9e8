"""MPPT aging: many cells at their maximum power point for hundreds of hours, under an ISOS protocol.

The protocol: bring the stage to its temperature and the light to its intensity, then track every channel at
its maximum power point — each with its own tracker on its own SMU channel, or in turn through a switch —
while a schedule beside the channels switches the light (light/dark cycling, the light windows of a dark
protocol's check-ups) and the stage setpoint (thermal cycling); every ``jv_every_h`` a forward and a reverse
J–V scan re-anchor each tracker. Irradiance (the reference cell) and temperature out of band suspend the
channels into their hold; a lost instrument suspends only the channels that use it.

Data, per channel ``<ch>``: ``mppt_<ch>`` (every reading: time, voltage, current, power, PCE, what the
tracker was doing, the voltage it set), ``tracker_<ch>`` (every decision, so a tracking step can be explained
afterwards), ``bias_<ch>`` (what the pixel saw and when: held by its SMU, idle at open circuit or on its load,
dark), ``jv_<ch>_<k>_<RS|FS>`` (the check-up scans) and, on a simulated station, ``truth_<ch>`` (the model's
true steady-state MPP at the same moments). ``environment`` logs the irradiance and temperature. A status
file beside the data file says what each channel is doing now.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.errors import ParameterError
from labctl.reports.mppt import analyze_mppt, plot_mppt_report, print_mppt
from labctl.roles import LightSourceCapabilities, SourceMeterCapabilities, TemperatureControllerCapabilities
from labctl.runner import (
    ChannelContext,
    FloatParameter,
    Procedure,
    RunContext,
    TextListParameter,
    TextParameter,
    channels_for_samples,
)
from labctl.runner.parameters import ChannelParameters, ChannelTable
from labctl.runner.suspenders import IrradianceInBand, Suspender, TemperatureInBand
from procedures import isos
from procedures.conditions import read_irradiance, read_temperature, settle_light
from procedures.mppt_channel import ChannelIO
from procedures.trackers import DARK, TRACKERS

if TYPE_CHECKING:
    from labctl.runner.channels import ChannelSpec
    from labctl.station import Station

KELVIN = 273.15
#: How often the environment log records irradiance and temperature (s of the run's clock).
ENVIRONMENT_LOG_S = 300.0
#: Below this fraction of the set irradiance, with the light scheduled on, the light is switched on again.
LIGHT_OUT_FRACTION = 0.5


class ChannelTracking(ChannelParameters):
    """What one channel may do differently from the others."""

    tracker = TextParameter("tracker", default="explore_dwell", choices=list(TRACKERS))
    step_fraction = FloatParameter("perturbation step", unit="× Voc", default=0.01, minimum=0.001, maximum=0.1)
    hold_V = FloatParameter("constant voltage (0: the first MPP found)", unit="V", default=0.0, minimum=0.0,
                            maximum=5.0)
    dwell_s = FloatParameter("hold between explorations", unit="s", default=1800.0, minimum=1.0, maximum=86400.0)


class MPPTAging(Procedure):
    name = "mppt"
    title = "MPPT aging: many cells at their MPP for hundreds of hours, ISOS protocols, periodic J–V"
    PRESETS = isos.PRESETS

    samples = TextListParameter("samples", help="Sample names, or 'all': every sample of the station with an SMU.")
    preset = TextParameter("ISOS protocol", default="", choices=["", *isos.PRESETS],
                           help="Fills in the light, temperature, cycling and bias of an ISOS protocol; "
                                "parameters given explicitly win.")
    duration_h = FloatParameter("duration", unit="h", default=100.0, minimum=0.001, maximum=100000.0)
    interval_s = FloatParameter("tracking-point interval", unit="s", default=10.0, minimum=0.05, maximum=3600.0,
                                help="One reading of every channel this often, from the SMU's own buffer.")
    tracker = ChannelTracking.tracker
    step_fraction = ChannelTracking.step_fraction
    hold_V = ChannelTracking.hold_V
    dwell_s = ChannelTracking.dwell_s
    settle_s = FloatParameter("settling time after a step (0: measured on each cell)", unit="s", default=0.0,
                              minimum=0.0, maximum=600.0)
    max_settle_s = FloatParameter("longest settling time considered", unit="s", default=60.0, minimum=1.0,
                                  maximum=600.0)
    reexplore_fraction = FloatParameter("power drop that ends a hold early", default=0.02, minimum=0.001,
                                        maximum=0.5)
    switched_hold_s = FloatParameter("longest hold of a multiplexed pixel before the next one's turn", unit="s",
                                     default=60.0, minimum=1.0, maximum=86400.0)
    suns = FloatParameter("light intensity", unit="suns", default=1.0, minimum=0.0, maximum=2.0)
    light_on_h = FloatParameter("light phase (cycling; 0: continuous)", unit="h", default=0.0, minimum=0.0,
                                maximum=1000.0)
    light_off_h = FloatParameter("dark phase (cycling)", unit="h", default=0.0, minimum=0.0, maximum=1000.0)
    temperature_C = FloatParameter("stage temperature (0: as it is)", unit="°C", default=0.0, minimum=0.0,
                                   maximum=150.0)
    temperature_low_C = FloatParameter("thermal cycling: low setpoint (0: no cycling)", unit="°C", default=0.0,
                                       minimum=0.0, maximum=150.0)
    temperature_period_h = FloatParameter("thermal cycling period", unit="h", default=0.0, minimum=0.0,
                                          maximum=1000.0)
    dark_bias = TextParameter("what the cells see in the dark", default="open", choices=["open", "voc"],
                              help="open: open circuit; voc: held at their last light Voc (ISOS-V).")
    jv_every_h = FloatParameter("J–V check-up every (0: none)", unit="h", default=0.0, minimum=0.0,
                                maximum=10000.0)
    jv_rate_V_s = FloatParameter("check-up scan rate", unit="V/s", default=0.1, minimum=1e-3, maximum=10.0)
    jv_step_V = FloatParameter("check-up voltage step", unit="V", default=0.02, minimum=1e-3, maximum=0.2)
    checkup_window_s = FloatParameter("light window of a dark protocol's check-up", unit="s", default=900.0,
                                      minimum=60.0, maximum=86400.0)
    nplc = FloatParameter("integration time", unit="PLC", default=1.0, minimum=0.001, maximum=25.0)
    compliance_mA_cm2 = FloatParameter("current compliance", unit="mA/cm2", default=40.0, minimum=0.1,
                                       maximum=2000.0)
    irradiance_band = FloatParameter("irradiance band (fraction of the set intensity)", default=0.1,
                                     minimum=0.01, maximum=0.5)
    temperature_band_K = FloatParameter("temperature band", unit="K", default=3.0, minimum=0.1, maximum=50.0)
    channels = ChannelTable(ChannelTracking)

    # ------------------------------------------------------------------------------- analysis
    @classmethod
    def analyze(cls, reader: Any) -> dict[str, Any]:
        return analyze_mppt(reader)

    @classmethod
    def print_analysis(cls, result: dict[str, Any], console: Any) -> None:
        print_mppt(result, console)

    @classmethod
    def report(cls, path: Path, out_dir: Path) -> list[Path]:
        return plot_mppt_report(path, out_dir)

    # ---------------------------------------------------------------------------------- checks
    def check_consistency(self) -> None:
        if (self.light_on_h > 0) != (self.light_off_h > 0):
            raise ParameterError(f"parameters 'light_on_h' = {self.light_on_h:g} h and 'light_off_h' = "
                                 f"{self.light_off_h:g} h: light cycling needs both (or neither)")
        if self.temperature_low_C > 0 and (self.temperature_period_h <= 0 or self.temperature_C <= 0):
            raise ParameterError("parameter 'temperature_low_C' > 0 (thermal cycling) needs temperature_C and "
                                 "temperature_period_h")
        if self.suns <= 0 and self.jv_every_h <= 0 and self.dark_bias == "open":
            raise ParameterError("parameter 'suns' = 0 (dark storage) needs check-ups: set jv_every_h > 0")

    def resolved_samples(self, station: Station) -> list[str]:
        if list(self.samples) == ["all"]:
            return [name for name, spec in station.samples.items() if spec.smu is not None]
        return list(self.samples)

    def check_station(self, station: Station) -> None:
        samples = self.resolved_samples(station)
        if not samples:
            raise ParameterError("parameter 'samples' = 'all': the station has no sample with an SMU")
        lights = {station.sample(s).light for s in samples}
        stages = {station.sample(s).temperature for s in samples}
        if self.needs_light and (None in lights or len(lights) > 1):
            raise ParameterError(f"parameter 'samples' = {', '.join(samples)}: every sample must be under one "
                                 f"light for one schedule (lights: {', '.join(map(str, sorted(lights, key=str)))})")
        if self.temperature_C > 0 and (None in stages or len(stages) > 1):
            raise ParameterError(f"parameter 'temperature_C' = {self.temperature_C:g} °C needs every sample on one "
                                 "temperature controller")
        for name in samples:
            spec = station.sample(name)
            smu = station.role_capabilities(name, "smu", SourceMeterCapabilities)
            if not smu.accepts_nplc(self.nplc):
                raise ParameterError(f"parameter 'nplc' = {self.nplc:g} PLC is outside the range of {spec.smu}; "
                                     f"allowed: {smu.nplc_range[0]:g} … {smu.nplc_range[1]:g} PLC")
            needed = smu.min_point_period_s(self.nplc)
            if self.interval_s < needed:
                raise ParameterError(f"parameter 'interval_s' = {self.interval_s:g} s is shorter than {spec.smu} "
                                     f"takes for a reading at {self.nplc:g} PLC; allowed: ≥ {needed:.3g} s")
            limit_mA = min(spec.current_max_mA, 1e3 * smu.max_current_A)
            if self.compliance_mA_cm2 * spec.area_cm2 > limit_mA:
                raise ParameterError(
                    f"parameter 'compliance_mA_cm2' = {self.compliance_mA_cm2:g} mA/cm2 is "
                    f"{self.compliance_mA_cm2 * spec.area_cm2:g} mA on sample '{name}'; allowed: ≤ "
                    f"{limit_mA / spec.area_cm2:g} mA/cm2")
            for channel, values in self.channels.items():
                if channel not in samples:
                    raise ParameterError(f"channel {channel!r}: not one of the samples ({', '.join(samples)})")
                if values.get("hold_V", 0.0) > spec.voltage_max_V and channel == name:
                    raise ParameterError(f"channel {channel!r}: parameter 'hold_V' = {values['hold_V']:g} V is "
                                         f"above the limit of sample '{name}'; allowed: ≤ {spec.voltage_max_V:g} V")
        if self.needs_light:
            light = station.role_capabilities(samples[0], "light", LightSourceCapabilities)
            if self.suns > 0 and not light.intensity_range_suns[0] <= self.suns <= light.intensity_range_suns[1]:
                raise ParameterError(f"parameter 'suns' = {self.suns:g} suns is outside the range of the light; "
                                     f"allowed: {light.intensity_range_suns[0]:g} … "
                                     f"{light.intensity_range_suns[1]:g} suns")
        if self.temperature_C > 0:
            controller = station.role_capabilities(samples[0], "temperature", TemperatureControllerCapabilities)
            for key in ("temperature_C", "temperature_low_C"):
                value = getattr(self, key)
                if value > 0 and not controller.temperature_range_K[0] <= value + KELVIN <= \
                        controller.temperature_range_K[1]:
                    raise ParameterError(f"parameter '{key}' = {value:g} °C is outside the controller's range")

    @property
    def needs_light(self) -> bool:
        return self.suns > 0 or self.jv_every_h > 0

    def instruments_needed(self, station: Station) -> list[str]:
        names: list[str] = []
        for sample in self.resolved_samples(station):
            spec = station.sample(sample)
            names += [n for n in (spec.smu, spec.switch, spec.light, spec.temperature) if n]
            reference = station.reference_cell_for(spec.light) if spec.light else None
            if reference is not None:
                names.append(reference.smu)
        return list(dict.fromkeys(names))

    def channels_of(self, station: Station) -> list[ChannelSpec]:
        return channels_for_samples(station, self.resolved_samples(station))

    def conditions(self) -> dict[str, Any]:
        protocol = self.preset or "custom"
        return {"isos_protocol": protocol, "isos_description": isos.DESCRIPTIONS.get(protocol, "as parametrised"),
                "light_suns": self.suns,
                "light_cycling_h": [self.light_on_h, self.light_off_h] if self.light_on_h > 0 else "continuous",
                "temperature_C": self.temperature_C if self.temperature_C > 0 else "as it is (logged)",
                "thermal_cycling_C": ([self.temperature_low_C, self.temperature_C, self.temperature_period_h]
                                      if self.temperature_low_C > 0 else "none"),
                "load": "maximum power point (tracked)", "dark": self.dark_bias,
                "atmosphere": "as in the station", "jv_every_h": self.jv_every_h}

    def file_stem(self) -> str:
        return f"mppt_{self.preset or 'custom'}"

    def schedule(self) -> isos.Schedule:
        return isos.Schedule(self.suns, self.light_on_h, self.light_off_h, self.jv_every_h,
                             self.checkup_window_s / 3600.0, self.temperature_C, self.temperature_low_C,
                             self.temperature_period_h)

    # ----------------------------------------------------------------------------- the protocol
    def execute(self, ctx: RunContext) -> None:
        station = ctx.bench.station
        samples = self.resolved_samples(station)
        first = samples[0]
        state = ctx.resume_state or {}
        self.t0 = float(state.get("t0", ctx.clock.now()))
        self.save_run_state(ctx)
        self.apply_environment(ctx, first, (ctx.clock.now() - self.t0) / 3600.0, settle=True)
        ctx.run_channels(self.run_channel, channels=self.channels_of(station),
                         suspenders=self.suspenders(ctx, first), background=[self.environment])

    def save_run_state(self, ctx: RunContext) -> None:
        """The run's own state (its start) to the file's checkpoint, with every channel's latest."""
        ctx.checkpoint({"t0": self.t0})

    def apply_environment(self, ctx: RunContext, sample: str, hours: float, settle: bool = False) -> None:
        """The light and the stage as the schedule has them at ``hours``."""
        schedule = self.schedule()
        spec = ctx.bench.station.sample(sample)
        setpoint = schedule.setpoint_C(hours)
        if setpoint > 0 and spec.temperature is not None:
            controller = ctx.bench.temperature_controller(sample)
            controller.set_setpoint_K(setpoint + KELVIN)
            controller.set_heater_range("high")
        if spec.light is None:
            return
        if schedule.light_on(hours):
            suns = self.suns if self.suns > 0 else 1.0
            if settle:
                settle_light(ctx, sample, suns)
            else:
                light = ctx.bench.light(sample)
                light.set_intensity_suns(suns)
                light.open_shutter()
        else:
            ctx.bench.light(sample).close_shutter()

    def environment(self, ctx: RunContext) -> None:
        """Beside the channels: switch the light and the setpoint when the schedule says, and log the
        irradiance and the temperature."""
        sample = self.resolved_samples(ctx.bench.station)[0]
        schedule = self.schedule()
        log = ctx.block("environment") if "environment" in ctx.block_names() else ctx.create_block(
            "environment", {"time_s": "s", "irradiance_mW_cm2": "mW/cm2", "temperature_K": "K", "light_on": ""},
            signal="irradiance_mW_cm2", axes="time_s", kind="log",
            expected_rows=int(self.duration_h * 3600.0 / ENVIRONMENT_LOG_S) + 2)
        end = self.t0 + self.duration_h * 3600.0
        while ctx.clock.now() < end:
            hours = (ctx.clock.now() - self.t0) / 3600.0
            irradiance = read_irradiance(ctx, sample)
            log.append_row(time_s=ctx.clock.now(), irradiance_mW_cm2=irradiance,
                           temperature_K=read_temperature(ctx, sample), light_on=float(schedule.light_on(hours)))
            if schedule.light_on(hours) and self.suns > 0 and irradiance < LIGHT_OUT_FRACTION * 100.0 * self.suns:
                # A solar simulator's run ends by itself (a SINUS-70 recipe lasts at most 596.5 h) or the lamp
                # went out: the irradiance suspender holds the channels; switch the light on again.
                ctx.event("light_restarted", f"irradiance {irradiance:.3g} mW/cm2 with the light scheduled on at "
                          f"{hours:.2f} h: switching it on again", hours=hours, irradiance_mW_cm2=irradiance)
                self.apply_environment(ctx, sample, hours)
            change = self.t0 + schedule.next_change_h(hours) * 3600.0
            wake = min(change, ctx.clock.now() + ENVIRONMENT_LOG_S, end)
            ctx.clock.sleep(max(wake - ctx.clock.now(), 0.0))
            if ctx.clock.now() >= change - 1e-6:
                now_h = (ctx.clock.now() - self.t0) / 3600.0
                self.apply_environment(ctx, sample, now_h)
                ctx.event("schedule", f"light {'on' if schedule.light_on(now_h) else 'off'}, setpoint "
                          f"{schedule.setpoint_C(now_h):g} °C at {now_h:.2f} h", hours=now_h)

    def suspenders(self, ctx: RunContext, sample: str) -> list[Suspender]:
        """Irradiance (from the reference cell, in the light phases only) and stage temperature in band."""
        found: list[Suspender] = []
        schedule = self.schedule()
        spec = ctx.bench.station.sample(sample)
        if self.suns > 0 and spec.light is not None:
            target = 100.0 * self.suns

            def irradiance() -> float:
                hours = (ctx.clock.now() - self.t0) / 3600.0
                return read_irradiance(ctx, sample) if schedule.light_on(hours) else target

            found.append(IrradianceInBand(irradiance, target * (1 - self.irradiance_band),
                                          target * (1 + self.irradiance_band), clear_for_s=120.0))
        if self.temperature_C > 0 and self.temperature_low_C <= 0 and spec.temperature is not None:
            setpoint = self.temperature_C + KELVIN
            found.append(TemperatureInBand(lambda: read_temperature(ctx, sample), setpoint - self.temperature_band_K,
                                           setpoint + self.temperature_band_K, clear_for_s=300.0))
        return found

    def run_channel(self, ch: ChannelContext) -> None:
        values = self.channel_values(ch.name)
        io = ChannelIO(ch, self, values)
        schedule = self.schedule()
        end = self.t0 + self.duration_h * 3600.0
        ch.ends_at_s = end
        io.restore(ch.resume_state or {})
        while ch.clock.now() < end - 1e-6:
            ch.check()
            hours = (ch.clock.now() - self.t0) / 3600.0
            if io.checkup_due(hours) and schedule.light_on(hours):
                io.checkup()
            elif not schedule.light_on(hours):
                until = min(end, self.t0 + schedule.next_change_h(hours) * 3600.0, io.next_checkup_s())
                io.dark(until, DARK)
            else:
                until = min(end, self.t0 + schedule.next_change_h(hours) * 3600.0, io.next_checkup_s())
                before = ch.clock.now()
                io.track(until)
                if ch.clock.now() <= before:  # less than a reading left before the next change: wait for it
                    ch.sleep(max(until - ch.clock.now(), 1e-3))
            io.save()
            ch.progress((ch.clock.now() - self.t0) / (end - self.t0),
                        f"{(ch.clock.now() - self.t0) / 3600:.1f} of {self.duration_h:g} h")
        io.finish()

    def hold(self, ctx: Any, why: str) -> None:
        """A suspended or paused channel holds at open circuit (its SMU output off)."""
        if isinstance(ctx, ChannelContext):
            ctx.smu.output_off()

