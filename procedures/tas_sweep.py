"""TAS temperature sweep: C(f) and G(f) at each temperature of a list, in the dark at a DC bias.

At each temperature (ramp, stabilisation and timeout as in :mod:`procedures.cryostat_sweep`): spot C–G
readings (parallel model) from ``f_min_Hz`` to ``f_max_Hz`` (default 20 Hz – 2 MHz), log-spaced at
``points_per_decade``, with the LCR meter's DC bias on at ``bias_V`` (default 0 V). The light is off. Unless
V_bi is given, a dark C–V at the first temperature measures it (block ``cv_reference``; V_bi scales the trap
densities and the DOS, not the trap depths).

Data: one block per temperature, ``tas_<k>_<T>K``, with ``frequency_Hz``, ``capacitance_F``,
``conductance_S``; its attributes: the setpoint, the measured temperature (mean of the readings before and
after the spectrum) and its spread, the bias, the AC level, the sample area, whether the temperature was stable.

Analysis (`labctl analyze`): :mod:`labctl.reports.tas` — trap depths Et, ξ0 and the trap DOS.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.errors import ParameterError
from labctl.roles import LCRMeterCapabilities
from labctl.runner import FloatListParameter, FloatParameter, IntParameter, RunContext
from procedures.cryostat_sweep import TEMPERATURE_RANGE_K, CryostatSweep, TemperaturePoint, temperature_tag
from procedures.ion_migration import Readings, capacitance_spectrum, has_averaging, log_frequencies
from procedures.jv_hysteresis import _free_block_name

if TYPE_CHECKING:
    from labctl.station import Station

TAS_COLUMNS = {"frequency_Hz": "Hz", "capacitance_F": "F", "conductance_S": "S"}
#: Virtual time one spot measurement costs on an E4980A at MED, link included (progress weights only).
SPOT_READING_S = 0.1



class TASSweep(CryostatSweep):
    name = "tas"
    title = "TAS: C(f) and G(f) over a temperature sweep (trap depths, ξ0, trap density of states)"

    temperatures_K = FloatListParameter("temperatures, in order", unit="K", minimum=TEMPERATURE_RANGE_K[0],
                                        maximum=TEMPERATURE_RANGE_K[1],
                                        default=[float(t) for t in range(280, 351, 10)])
    f_min_Hz = FloatParameter("lowest frequency", unit="Hz", default=20.0, minimum=1e-3, maximum=1e9)
    f_max_Hz = FloatParameter("highest frequency", unit="Hz", default=2e6, minimum=1e-3, maximum=1e9)
    points_per_decade = IntParameter("points per decade", default=10, minimum=1, maximum=100)
    bias_V = FloatParameter("DC bias", unit="V", default=0.0, minimum=-40.0, maximum=40.0)
    ac_level_V = FloatParameter("AC test level", unit="V", default=0.05, minimum=0.001, maximum=20.0)
    averages = IntParameter("readings averaged by the meter per point", default=8, minimum=1, maximum=256,
                            help="The meter's own averaging (E4980A :APER MED,n): its noise falls as 1/√n. A shallow "
                                 "band near the low-frequency edge, where the leakage dominates, needs it.")

    # ------------------------------------------------------------------------------- analysis
    @classmethod
    def analyze(cls, reader: Any) -> dict[str, Any]:
        from labctl.reports.tas import analyze_tas_file

        return analyze_tas_file(reader)

    @classmethod
    def print_analysis(cls, result: dict[str, Any], console: Any) -> None:
        from labctl.reports.tas import print_tas

        print_tas(result, console)

    @classmethod
    def report(cls, path: Path, out_dir: Path) -> list[Path]:
        from labctl.reports.tas import plot_tas_report

        return plot_tas_report(path, out_dir)

    # --------------------------------------------------------------------------------- checks
    def check_consistency(self) -> None:
        super().check_consistency()
        if self.f_min_Hz >= self.f_max_Hz:
            raise ParameterError(f"parameter 'f_min_Hz' = {self.f_min_Hz:g} Hz must be below f_max_Hz = "
                                 f"{self.f_max_Hz:g} Hz")

    def check_lcr(self, station: Station, spec: Any, lcr: LCRMeterCapabilities) -> None:
        who = spec.lcr
        self.check_in("f_min_Hz", self.f_min_Hz, lcr.frequency_range_Hz, "Hz", who)
        self.check_in("f_max_Hz", self.f_max_Hz, lcr.frequency_range_Hz, "Hz", who)
        self.check_in("ac_level_V", self.ac_level_V, lcr.ac_level_range_V, "V", who)
        self.check_in("bias_V", self.bias_V, lcr.dc_bias_range_V, "V", who)
        self.check_in("bias_V", self.bias_V, (spec.voltage_min_V, spec.voltage_max_V), "V", f"sample '{self.sample}'")
        if self.averages > 1 and not has_averaging(station.driver_class(who)):
            raise ParameterError(f"parameter 'averages' = {self.averages} but {who} has no averaging control; "
                                 "allowed: 1")

    def conditions(self) -> dict[str, Any]:
        return {"light_suns": 0.0, "temperature_K": list(self.temperatures_K), "atmosphere": "cryostat",
                "bias": f"{self.bias_V:g} V"}

    # ----------------------------------------------------------------------------------- plan
    def frequencies(self) -> list[float]:
        return [float(f) for f in log_frequencies(self.f_min_Hz, self.f_max_Hz, self.points_per_decade)]

    def measurement_s(self) -> float:
        return SPOT_READING_S * self.averages * len(self.frequencies())

    def measure(self, ctx: RunContext, step: TemperaturePoint) -> Readings:
        return capacitance_spectrum(ctx.bench.lcr(self.sample), self.frequencies(), bias_V=self.bias_V,
                                    ac_level_V=self.ac_level_V, averages=self.averages)

    def store(self, ctx: RunContext, step: TemperaturePoint, result: Any, attrs: dict[str, Any]) -> None:
        assert isinstance(result, Readings)
        spec = ctx.bench.station.sample(self.sample)
        name = _free_block_name(ctx, f"tas_{step.index:02d}_{temperature_tag(step.setpoint_K)}")
        block = ctx.create_block(name, TAS_COLUMNS,
                                 {**attrs, "bias_V": self.bias_V, "ac_level_V": self.ac_level_V,
                                  "averages": self.averages,
                                  "area_cm2": spec.area_cm2, "points_per_decade": self.points_per_decade,
                                  "light": "dark"},
                                 signal="capacitance_F", axes="frequency_Hz", expected_rows=len(result.x))
        block.append_columns(frequency_Hz=result.x, capacitance_F=result.capacitance_F,
                             conductance_S=result.conductance_S)
        block.finish()
