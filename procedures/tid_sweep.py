"""TID temperature sweep: the seed's transient-ion-drift protocol at each temperature of a list.

At each temperature (default 300 → 200 K in 10 K steps; ramp, stabilisation and timeout as in
:mod:`procedures.cryostat_sweep`), in the dark or under ``suns``: the LCR meter's DC bias pulses the cell
(+1 V for 5 s), then one message steps the bias back to 0 V and starts the capture, so C(t) and G(t) are
recorded from the first point the meter allows (one dead time after the step) to ``duration_s``; repeats are
averaged. With ``pulse_source = smu`` the sample's SMU makes the pulse instead (its output then off, the meter
set up and triggered: a longer dead time, recorded). The measurement frequency is fixed (10 kHz) or chosen
from a C–f pre-sweep at the first temperature as the centre of its plateau (``frequency_mode = plateau``).
Before the sweep, unless N_A and V_bi are given, a dark C–V at the first temperature measures them (block
``cv_reference``).

Data: one block per temperature, ``tid_<k>_<T>K``, with ``time_s`` (from the bias step), ``capacitance_F``
and ``conductance_S``; its attributes: the setpoint, the measured temperature (mean of the readings before and
after the capture) and its spread, the frequency and AC level, the pulse, the light, the dead time and the
meter's integration window, the repeats, whether the temperature was stable. ``cf_presweep`` holds the
pre-sweep. Events say when a temperature is stable or not, and when the protocol may under-fill the depletion
region (a pulse not above V_bi, or shorter than 3τ of a species the capture shows).

Analysis (`labctl analyze`): :mod:`labctl.reports.tid` — species with Ea, D0 and N_ion from ln(T/τ).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.analysis.tid import TIDAnalysisError, fit_transient
from labctl.errors import ParameterError
from labctl.roles import LCRMeterCapabilities, SourceMeterCapabilities
from labctl.runner import FloatListParameter, FloatParameter, IntParameter, RunContext, TextParameter
from procedures.cryostat_sweep import TEMPERATURE_RANGE_K, CryostatSweep, TemperaturePoint, temperature_tag
from procedures.ion_migration import (
    TIDCapture,
    TIDProtocol,
    capacitance_spectrum,
    capture_tid,
    capture_tid_smu,
    log_frequencies,
    plateau_frequency,
    tid_protocol_warnings,
)
from procedures.jv_hysteresis import _free_block_name

if TYPE_CHECKING:
    from labctl.station import Station

TID_COLUMNS = {"time_s": "s", "capacitance_F": "F", "conductance_S": "S"}
PRESWEEP_POINTS_PER_DECADE = 10


@dataclass(frozen=True)
class FrequencyChoice:
    """The C–f pre-sweep at the first temperature that chooses the measurement frequency."""

    setpoint_K: float
    duration_s: float = 120.0

    def __str__(self) -> str:
        return f"C–f pre-sweep at {self.setpoint_K:g} K"


class TIDSweep(CryostatSweep):
    name = "tid"
    title = "TID: capacitance transients after a bias pulse over a temperature sweep (mobile ions, Ea, D, N_ion)"

    temperatures_K = FloatListParameter("temperatures, in order", unit="K", minimum=TEMPERATURE_RANGE_K[0],
                                        maximum=TEMPERATURE_RANGE_K[1],
                                        default=[float(t) for t in range(300, 199, -10)])
    n_a_cm3 = FloatParameter("space-charge density N_A", unit="cm-3", default=0.0, minimum=0.0, maximum=1e21,
                             help="0: measured by a dark C–V (Mott–Schottky) at the first temperature.")
    frequency_mode = TextParameter("measurement frequency", default="fixed", choices=["fixed", "plateau"],
                                   help="fixed: frequency_Hz; plateau: the centre of the C(f) plateau of a "
                                        "pre-sweep (20 Hz – 2 MHz) at the first temperature.")
    frequency_Hz = FloatParameter("frequency (fixed)", unit="Hz", default=1e4, minimum=20.0, maximum=2e6)
    ac_level_V = FloatParameter("AC test level", unit="V", default=0.05, minimum=0.001, maximum=20.0)
    pulse_V = FloatParameter("filling pulse", unit="V", default=1.0, minimum=-40.0, maximum=40.0)
    pulse_source = TextParameter("what makes the pulse", default="lcr", choices=["lcr", "smu"],
                                 help="lcr: the LCR meter's DC bias, stepped back in the capture's own message "
                                      "(dead time ≈ 4 ms); smu: the sample's SMU, its output then off and the "
                                      "meter set up and triggered (dead time ≈ 0.1 s: faster transients are lost). "
                                      "Either dead time is recorded.")
    pulse_s = FloatParameter("filling pulse length", unit="s", default=5.0, minimum=0.0, maximum=3600.0)
    duration_s = FloatParameter("transient length", unit="s", default=10.0, minimum=0.01, maximum=3600.0,
                                help="The capture after the bias is back at 0 V; also the rest before the next "
                                     "pulse (make it ≥ 5τ of the slowest species).")
    n_points = IntParameter("points per transient", default=201, minimum=8, maximum=100000,
                            help="At most what the LCR meter captures at once.")
    repeats = IntParameter("pulses averaged per temperature", default=3, minimum=1, maximum=1000)
    suns = FloatParameter("light intensity", unit="suns", default=0.0, minimum=0.0, maximum=10.0,
                          help="0: dark. Under light both anion (decaying) and cation (rising) transients show.")

    # ------------------------------------------------------------------------------- analysis
    @classmethod
    def analyze(cls, reader: Any) -> dict[str, Any]:
        from labctl.reports.tid import analyze_tid_file

        return analyze_tid_file(reader)

    @classmethod
    def print_analysis(cls, result: dict[str, Any], console: Any) -> None:
        from labctl.reports.tid import print_tid

        print_tid(result, console)

    @classmethod
    def report(cls, path: Path, out_dir: Path) -> list[Path]:
        from labctl.reports.tid import plot_tid_report

        return plot_tid_report(path, out_dir)

    # --------------------------------------------------------------------------------- checks
    @property
    def measures_cv(self) -> bool:
        return self.n_a_cm3 == 0 or self.v_bi_V == 0

    def check_lcr(self, station: Station, spec: Any, lcr: LCRMeterCapabilities) -> None:
        who = spec.lcr
        self.check_in("frequency_Hz", self.frequency_Hz, lcr.frequency_range_Hz, "Hz", who)
        self.check_in("ac_level_V", self.ac_level_V, lcr.ac_level_range_V, "V", who)
        self.check_in("pulse_V", self.pulse_V, lcr.dc_bias_range_V, "V", who)
        limits = (spec.voltage_min_V, spec.voltage_max_V)
        self.check_in("pulse_V", self.pulse_V, limits, "V", f"sample '{self.sample}'")
        self.check_in("n_points", self.n_points, (8, lcr.max_transient_points), "points", who)
        if self.duration_s < 8 * lcr.min_transient_interval_s:
            self.check_in("duration_s", self.duration_s, (8 * lcr.min_transient_interval_s, 3600.0), "s",
                          f"{who} (8 points of {lcr.min_transient_interval_s * 1e3:g} ms)")

    def check_station(self, station: Station) -> None:
        super().check_station(station)
        if self.pulse_source == "smu":
            spec = station.sample(self.sample)
            if spec.smu is None:
                raise ParameterError(f"parameter 'pulse_source' = 'smu' but sample '{self.sample}' has no SMU; "
                                     "allowed: lcr")
            smu = station.role_capabilities(self.sample, "smu", SourceMeterCapabilities)
            self.check_in("pulse_V", self.pulse_V, smu.voltage_range_V, "V", spec.smu)

    def instruments_needed(self, station: Station) -> list[str]:
        names = super().instruments_needed(station)
        smu = station.sample(self.sample).smu
        return [*names, smu] if self.pulse_source == "smu" and smu else names

    def hold(self, ctx: Any, why: str) -> None:
        super().hold(ctx, why)
        if self.pulse_source == "smu":
            ctx.bench.source_meter(self.sample).output_off()

    def protocol(self, frequency_Hz: float) -> TIDProtocol:
        return TIDProtocol(pulse_V=self.pulse_V, pulse_s=self.pulse_s, rest_V=0.0, duration_s=self.duration_s,
                           n_points=self.n_points, repeats=self.repeats, frequency_Hz=frequency_Hz,
                           ac_level_V=self.ac_level_V)

    def conditions(self) -> dict[str, Any]:
        return {"light_suns": self.suns, "temperature_K": list(self.temperatures_K), "atmosphere": "cryostat",
                "bias": f"{self.pulse_V:g} V pulses of {self.pulse_s:g} s, 0 V between"}

    # ----------------------------------------------------------------------------------- plan
    def measurement_s(self) -> float:
        return self.repeats * (self.pulse_s + self.duration_s)

    def preparation(self) -> list[Any]:
        return [FrequencyChoice(self.temperatures_K[0])] if self.frequency_mode == "plateau" else []

    def frequency(self, ctx: RunContext) -> float:
        return float(ctx.state.get("frequency_Hz", self.frequency_Hz))

    def reference_frequency_Hz(self, ctx: RunContext) -> float:
        return self.frequency(ctx)

    def prepare_step(self, ctx: RunContext, step: Any) -> None:
        assert isinstance(step, FrequencyChoice)
        self.settle(ctx, step.setpoint_K)
        lcr = ctx.bench.lcr(self.sample)
        freqs = log_frequencies(20.0, 2e6, PRESWEEP_POINTS_PER_DECADE)
        readings = capacitance_spectrum(lcr, freqs, bias_V=0.0, ac_level_V=self.ac_level_V)
        chosen, (low, high) = plateau_frequency(readings.x, readings.capacitance_F)
        chosen = round(chosen, -1) if chosen >= 100 else chosen  # the meter's resolution is finer; 10 Hz is plenty
        block = ctx.create_block(_free_block_name(ctx, "cf_presweep"),
                                 {"frequency_Hz": "Hz", "capacitance_F": "F", "conductance_S": "S"},
                                 {"setpoint_K": step.setpoint_K, "ac_level_V": self.ac_level_V, "bias_V": 0.0,
                                  "plateau_Hz": [low, high], "chosen_frequency_Hz": chosen},
                                 signal="capacitance_F", axes="frequency_Hz", expected_rows=len(freqs))
        block.append_columns(frequency_Hz=readings.x, capacitance_F=readings.capacitance_F,
                             conductance_S=readings.conductance_S)
        block.finish()
        ctx.state["frequency_Hz"] = chosen
        ctx.event("frequency_chosen", f"{self.sample}: C(f) is flat from {low:.3g} to {high:.3g} Hz at "
                  f"{step.setpoint_K:g} K; transients at {chosen:.4g} Hz", pixel=self.sample, frequency_Hz=chosen,
                  plateau_Hz=[low, high])

    # ---------------------------------------------------------------------------------- measure
    def measure(self, ctx: RunContext, step: TemperaturePoint) -> TIDCapture:
        if "protocol_checked" not in ctx.state:  # once per run: the pulse against V_bi
            self._warn(ctx, tid_protocol_warnings(self.protocol(self.frequency(ctx)),
                                                  v_bi_V=self.n_a_and_v_bi(ctx)[1]))
            ctx.state["protocol_checked"] = True
        lcr = ctx.bench.lcr(self.sample)
        if self.pulse_source == "smu":
            smu = ctx.bench.source_meter(self.sample)
            compliance_A = ctx.bench.station.sample(self.sample).current_max_mA * 1e-3
            return capture_tid_smu(lcr, smu, ctx.clock, self.protocol(self.frequency(ctx)), compliance_A=compliance_A)
        return capture_tid(lcr, ctx.clock, self.protocol(self.frequency(ctx)))

    def store(self, ctx: RunContext, step: TemperaturePoint, result: Any, attrs: dict[str, Any]) -> None:
        assert isinstance(result, TIDCapture)
        name = _free_block_name(ctx, f"tid_{step.index:02d}_{temperature_tag(step.setpoint_K)}")
        block = ctx.create_block(name, TID_COLUMNS, {**attrs, **result.attributes(), **self.light_attrs(ctx),
                                                     "frequency_mode": self.frequency_mode,
                                                     "pulse_source": self.pulse_source},
                                 signal="capacitance_F", axes="time_s", expected_rows=len(result.time_s))
        block.append_columns(time_s=result.time_s, capacitance_F=result.capacitance_F,
                             conductance_S=result.conductance_S)
        block.finish()
        self._check_pulse_against_tau(ctx, result, step)

    def _check_pulse_against_tau(self, ctx: RunContext, capture: TIDCapture, step: TemperaturePoint) -> None:
        """A quick fit of this capture: a species slower than the pulse can refill gets an event."""
        try:
            fit = fit_transient(capture.time_s, capture.capacitance_F, integration_s=capture.integration_s)
        except TIDAnalysisError:
            return
        taus = [c.tau_s for c in fit.components if c.resolved]
        self._warn(ctx, [f"{step.setpoint_K:g} K: {w}" for w in
                         tid_protocol_warnings(capture.protocol, tau_s=taus)])

    def _warn(self, ctx: RunContext, warnings: list[str]) -> None:
        for warning in warnings:
            ctx.event("protocol_warning", f"{self.sample}: {warning}", pixel=self.sample)
            ctx.log(f"{self.sample}: {warning}", "warning")
