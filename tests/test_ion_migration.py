"""Ion-migration physics through the instruments: the E4980A (its DC bias pulses the cell, its capture
records the transient) and the Lake Shore 336 (ramps and stabilises the LN2 stage) driven through their
drivers by procedures/ion_migration.py, analysed by labctl/analysis; on virtual time. The full 300 → 200 K
sweeps are in bench/ion_migration.py; here reduced sweeps (4 TID temperatures, 6 TAS temperatures).

Tolerances are the issue's: dark Ea ± 5 meV and N_ion ± 15 % of the model's; a station-given cell and the
light cation ± 10 meV; trap depths ± 10 meV; N_A ± 10 % and V_bi ± 50 mV.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from cryostat_bench import CryostatBench, cryostat_bench

from labctl.analysis.cv import mott_schottky
from labctl.analysis.tas import Spectrum, analyze_tas
from labctl.analysis.tid import TIDResult, TIDTransient, analyze_tid
from labctl.errors import ParameterError
from mock_instruments import ions
from procedures.ion_migration import (
    Readings,
    Settling,
    SweepPoint,
    TIDCapture,
    TIDProtocol,
    cv_sweep,
    hold_present_temperature,
    settle_temperature,
    tas_sweep,
    tid_protocol_warnings,
    tid_sweep,
)

TID_TEMPERATURES = [300.0, 265.0, 230.0, 200.0]
TAS_TEMPERATURES = [280.0, 294.0, 308.0, 322.0, 336.0, 350.0]


@pytest.fixture
def opened() -> Any:
    benches: list[CryostatBench] = []

    def make(preset: str, **overrides: float) -> CryostatBench:
        bench = cryostat_bench(preset, **overrides)
        benches.append(bench)
        return bench

    yield make
    for bench in benches:
        bench.close()


def run_tid(bench: CryostatBench, suns: float = 0.0) -> tuple[list[SweepPoint], TIDResult]:
    points = list(tid_sweep(bench.lcr, bench.cryo, bench.clock, TID_TEMPERATURES, protocol=TIDProtocol(),
                            light=bench.light, suns=suns))
    transients = []
    for p in points:
        assert isinstance(p.result, TIDCapture)
        transients.append(TIDTransient(p.temperature_mean_K, p.result.time_s, p.result.capacitance_F,
                                       p.result.integration_s, pulse_s=p.result.protocol.pulse_s))
    cell = bench.cell  # the model's N_A and ε: in a lab they come from C–V and the literature
    return points, analyze_tid(transients, n_a_cm3=cell.n_a_cm3, eps_r=cell.eps_r)


@pytest.mark.parametrize(("preset", "ea_eV"), [("fapbi3", 0.131), ("fapbibr_2p5", 0.074)])
def test_dark_tid_gives_the_seed_halide_activation_energy_and_density(opened: Any, preset: str,
                                                                      ea_eV: float) -> None:
    bench = opened(preset)
    points, result = run_tid(bench)
    for p in points:
        assert p.step.stable and abs(p.temperature_mean_K - p.step.setpoint_K) < 0.1
        assert isinstance(p.result, TIDCapture)
        assert 3e-3 < p.result.dead_time_s < 5e-3 and p.result.repeats_done == 3
    (anion,) = result.species
    assert anion.sign == "anion" and len(anion.temperatures_K) == 4
    assert anion.ea_eV == pytest.approx(ea_eV, abs=0.005)
    assert anion.n_ion_cm3 == pytest.approx(bench.cell.n_ion_anion_cm3, rel=0.15)
    assert anion.d0_cm2_s == pytest.approx(bench.cell.d0_anion_cm2_s, rel=0.3)
    assert result.excluded == ()


def test_a_cell_given_other_ions_in_the_station_file_is_recovered(opened: Any) -> None:
    """[sim.devices.cell] with ea_anion_eV = 0.2 and a D0 that puts τ at 30 ms (300 K) … 0.96 s (200 K)."""
    tau_300 = 0.03
    d_300 = ions.diffusion_from_tau_cm2_s(tau_300, 300.0, 35.0, 3e16)
    d0 = d_300 * math.exp(0.2 / (8.617333262e-5 * 300.0))
    bench = opened("fapbi3", ea_anion_eV=0.2, d0_anion_cm2_s=d0)
    assert bench.cell.ea_anion_eV == 0.2 and bench.cell.ion_tau_s("anion", 300.0) == pytest.approx(tau_300)
    _, result = run_tid(bench)
    (anion,) = result.species
    assert anion.ea_eV == pytest.approx(0.2, abs=0.01)


def test_under_light_fapbi3_shows_a_rising_cation_and_fapbibr_2p5_none(opened: Any) -> None:
    bench = opened("fapbi3")
    _, result = run_tid(bench, suns=1.0)
    by_sign = {s.sign: s for s in result.species}
    assert set(by_sign) == {"anion", "cation"}
    assert by_sign["cation"].ea_eV == pytest.approx(bench.cell.ea_cation_eV, abs=0.01)
    assert by_sign["anion"].ea_eV == pytest.approx(bench.cell.ea_anion_eV, abs=0.01)
    for fit in result.fits.values():
        rising = [c for c in fit.components if c.species == "cation"]
        assert len(rising) == 1 and rising[0].delta_c_F > 0
    assert bench.light.read_irradiance_mW_cm2() == 0.0  # the light is off after the sweep

    bench = opened("fapbibr_2p5")
    _, result = run_tid(bench, suns=1.0)
    assert [s.sign for s in result.species] == ["anion"]
    assert all(c.species == "anion" for fit in result.fits.values() for c in fit.components)


@pytest.mark.parametrize("preset", ["fapbi3", "fapbibr_2p5", "wbg_ref"])
def test_tas_gives_each_trap_depth(opened: Any, preset: str) -> None:
    bench = opened(preset)
    points = list(tas_sweep(bench.lcr, bench.cryo, bench.clock, TAS_TEMPERATURES, points_per_decade=15,
                            ac_level_V=0.05))
    spectra = []
    for p in points:
        assert isinstance(p.result, Readings)
        spectra.append(Spectrum(p.temperature_mean_K, p.result.x, p.result.capacitance_F, p.result.conductance_S))
    cell = bench.cell
    result = analyze_tas(spectra, area_cm2=cell.area_cm2, eps_r=cell.eps_r, v_bi_V=cell.v_bi_V)
    expected = sorted(trap.depth_eV for trap, _ in cell.trap_levels())
    assert [t.et_eV for t in result.traps] == pytest.approx(expected, abs=0.01)
    densities = [d for _, d in sorted(cell.trap_levels(), key=lambda td: td[0].depth_eV)]
    assert [t.n_t_cm3 for t in result.traps] == pytest.approx(densities, rel=0.15)


@pytest.mark.parametrize("preset", ["fapbi3", "fapbibr_2p5"])
def test_cv_gives_the_doping_and_built_in_voltage(opened: Any, preset: str) -> None:
    bench = opened(preset)
    hold_present_temperature(bench.cryo)
    assert settle_temperature(bench.cryo, bench.clock, 300.0).stable
    volts = np.round(np.arange(-1.0, 0.601, 0.05), 3)
    readings = cv_sweep(bench.lcr, bench.clock, volts, frequency_Hz=1e4, settle_s=2.0)
    assert not bench.lcr.settings_snapshot()["dc_bias_on"]
    cell = bench.cell
    result = mott_schottky(readings.x, readings.capacitance_F, area_cm2=cell.area_cm2, eps_r=cell.eps_r,
                           temperature_K=bench.cryo.read_temperature_K())
    assert result.n_a_cm3 == pytest.approx(cell.n_a_cm3, rel=0.10)
    assert result.v_bi_V == pytest.approx(cell.v_bi_V, abs=0.05)
    assert result.hysteresis < 5e-3  # 2 s a point ≫ τ: forward and back agree


@pytest.mark.parametrize(("policy", "measured", "steps"), [("skip", 1, 2), ("stop", 0, 1), ("measure", 2, 2)])
def test_a_temperature_that_never_stabilises(opened: Any, policy: str, measured: int, steps: int) -> None:
    """With the heater on its medium range (10 W) the LN2 stage cannot rise above ≈ 120 K: 300 K is never
    reached, the step ends after its timeout with stable=False and a warning, and the sweep skips it, stops,
    or measures anyway, as asked. The second temperature, 110 K, is reachable."""
    bench = opened("fapbi3")
    bench.cryo.set_heater_range("medium")
    settling = Settling(ramp_K_min=20.0, timeout_s=1200.0, window_s=30.0)
    points = list(tid_sweep(bench.lcr, bench.cryo, bench.clock, [300.0, 110.0], settling=settling,
                            protocol=TIDProtocol(repeats=1, duration_s=1.0), on_unstable=policy))
    assert len(points) == steps
    assert not points[0].step.stable and points[0].step.waited_s >= 1200.0
    assert "not stable" in points[0].warnings[0] or policy == "measure"
    assert sum(p.result is not None for p in points) == measured
    if steps == 2:
        assert points[1].step.stable


def test_parameters_are_refused_before_any_instrument_is_touched(opened: Any) -> None:
    bench = opened("fapbi3")
    writes_before = bench.bench.simulation.mocks["lcr"].bias_changes[:]
    with pytest.raises(ParameterError, match="pulse_s = -1"):
        TIDProtocol(pulse_s=-1)
    with pytest.raises(ParameterError, match="on_unstable"):
        next(tid_sweep(bench.lcr, bench.cryo, bench.clock, [300.0], on_unstable="maybe"))
    with pytest.raises(ParameterError, match="suns = 1 needs a light"):
        next(tid_sweep(bench.lcr, bench.cryo, bench.clock, [300.0], suns=1.0))
    with pytest.raises(ParameterError, match="temperature_K = 2000"):
        next(tas_sweep(bench.lcr, bench.cryo, bench.clock, [300.0, 2000.0]))
    assert bench.bench.simulation.mocks["lcr"].bias_changes == writes_before


def test_protocol_warnings_name_a_short_pulse() -> None:
    (warning,) = tid_protocol_warnings(TIDProtocol(pulse_s=1.0), tau_s=[0.5])
    assert "pulse_s = 1 s" in warning and "86%" in warning
    assert tid_protocol_warnings(TIDProtocol(), tau_s=[0.42]) == []
    # the seed's 5 s pulse refills the simulated FAPbI3's FA⁺ (τ 1.9 s at 200 K) to 93 % only: it says so
    (warning,) = tid_protocol_warnings(TIDProtocol(), tau_s=[1.9])
    assert "93%" in warning
