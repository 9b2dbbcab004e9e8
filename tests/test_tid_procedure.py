"""The TID sweep procedure through the runner, the E4980A and Lake Shore 336 drivers and mocks, and the store;
virtual time. On the built-in simulated station (`sim`) for fapbi3, elsewhere on a one-cell cryostat station
file (tests/cryostat_bench.py: the same instruments, one cell, so the runner's snapshots of the simulated world
at its checkpoints do not also evolve the station's other cells). Reduced temperature lists (4 of the default
11: the full sweep is in bench/ion_migration.py and docs/benchmarks.md).

Tolerances are the issue's: dark Ea ± 5 meV and N_ion ± 15 % of the model's; the cation under light and a cell
given other ion parameters in a station file ± 10 meV.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from cryostat_bench import station_text

from labctl.analyze import analyze_file, report_file
from labctl.errors import ParameterError
from labctl.runner import Runner
from labctl.station import Station
from labctl.store import RunReader
from mock_instruments import ions
from mock_instruments.presets import preset
from procedures.tid_sweep import TIDSweep

TEMPERATURES = [300.0, 265.0, 230.0, 200.0]


@pytest.fixture(scope="module")
def station() -> Station:
    return Station.load("sim")


def cryostat(preset_name: str, **overrides: float) -> Station:
    """A one-cell cryostat station; its cell is sample ``cell`` and ``[sim.devices.cell]`` carries the preset
    and the overrides."""
    return Station.from_text(station_text(preset_name, **overrides), source=f"<cryostat {preset_name}>")


def run_tid(directory: Path, station: Station, **params: object) -> tuple[Path, str, str]:
    result = Runner(TIDSweep(**{"temperatures_K": TEMPERATURES, **params}), station=station,
                    directory=directory).run()
    return result.path, result.status, result.reason


@pytest.fixture(scope="module")
def dark_fapbi3(tmp_path_factory: pytest.TempPathFactory, station: Station) -> Path:
    path, status, reason = run_tid(tmp_path_factory.mktemp("tid"), station, sample="fapbi3")
    assert status == "completed", reason
    return path


def species(path: Path) -> dict[str, dict[str, object]]:
    return {s["sign"]: s for s in analyze_file(path, TIDSweep)["species"]}


def test_dark_fapbi3_gives_the_seed_halide_activation_energy_and_density(dark_fapbi3: Path) -> None:
    cell = preset("fapbi3")
    result = analyze_file(dark_fapbi3, TIDSweep)
    (anion,) = result["species"]
    assert anion["sign"] == "anion" and len(anion["temperatures_K"]) == 4
    assert anion["ea_eV"] == pytest.approx(0.131, abs=0.005)
    assert anion["n_ion_cm3"] == pytest.approx(cell.n_ion_anion_cm3, rel=0.15)
    # N_A came from the run's own reference C–V, not from the model
    assert result["n_a_source"].startswith("C–V at 300")
    assert result["n_a_cm3"] == pytest.approx(cell.n_a_cm3, rel=0.05)


def test_dark_fapbibr_2p5(tmp_path: Path) -> None:
    path, status, reason = run_tid(tmp_path, cryostat("fapbibr_2p5"), sample="cell", n_a_cm3=3e16, v_bi_V=0.85)
    assert status == "completed", reason
    (anion,) = analyze_file(path, TIDSweep)["species"]
    assert anion["sign"] == "anion"
    assert anion["ea_eV"] == pytest.approx(0.074, abs=0.005)
    assert anion["n_ion_cm3"] == pytest.approx(preset("fapbibr_2p5").n_ion_anion_cm3, rel=0.15)


def test_one_block_per_temperature_with_what_was_measured(dark_fapbi3: Path) -> None:
    with RunReader(dark_fapbi3) as reader:
        names = reader.block_names()
        assert names == ["cv_reference", "tid_00_300K", "tid_01_265K", "tid_02_230K", "tid_03_200K"]
        block = reader.block("tid_03_200K")
        assert block.units == {"time_s": "s", "capacitance_F": "F", "conductance_S": "S"}
        attrs = block.attrs
        assert attrs["setpoint_K"] == 200.0 and attrs["stable"]
        assert attrs["temperature_K"] == pytest.approx(200.0, abs=0.1) and 0 <= attrs["temperature_spread_K"] < 0.2
        assert attrs["frequency_Hz"] == 1e4 and attrs["pulse_V"] == 1.0 and attrs["pulse_s"] == 5.0
        assert attrs["light"] == "dark" and attrs["suns"] == 0.0 and attrs["repeats"] == 3
        assert 3e-3 < attrs["dead_time_s"] < 5e-3 and block["time_s"][0] == pytest.approx(attrs["dead_time_s"])
        assert block["time_s"].size == 201 and block["time_s"][-1] == pytest.approx(10.0, rel=0.02)
        kinds = [e.kind for e in reader.events()]
        assert kinds.count("temperature_stable") == 5 and "reference_cv" in kinds


def test_report_and_json(dark_fapbi3: Path, tmp_path: Path) -> None:
    figures = report_file(dark_fapbi3, tmp_path / "figs", TIDSweep)
    assert sorted(p.name.rsplit("_", 1)[-1] for p in figures) == ["arrhenius.png", "cv.png", "transients.png"]
    assert all(p.stat().st_size > 20_000 for p in figures)
    proc = subprocess.run([sys.executable, "-m", "labctl.cli", "analyze", str(dark_fapbi3), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (anion,) = json.loads(proc.stdout)["species"]
    assert {"sign", "ea_eV", "ea_err_eV", "d0_cm2_s", "n_ion_cm3", "temperatures_K"} <= set(anion)


def test_under_light_fapbi3_shows_a_rising_cation_and_fapbibr_2p5_none(tmp_path: Path) -> None:
    cell = preset("fapbi3")
    path, status, reason = run_tid(tmp_path, cryostat("fapbi3"), sample="cell", suns=1.0, n_a_cm3=3e16,
                                   v_bi_V=0.85)
    assert status == "completed", reason
    found = species(path)
    assert set(found) == {"anion", "cation"}
    assert found["cation"]["ea_eV"] == pytest.approx(cell.ea_cation_eV, abs=0.01)
    assert found["anion"]["ea_eV"] == pytest.approx(cell.ea_anion_eV, abs=0.01)
    with RunReader(path) as reader:
        attrs = reader.block("tid_00_300K").attrs
        assert attrs["light"] == "1 sun" and attrs["irradiance_mW_cm2"] == pytest.approx(100.0, rel=0.05)

    path, status, reason = run_tid(tmp_path, cryostat("fapbibr_2p5"), sample="cell", suns=1.0, n_a_cm3=3e16,
                                   v_bi_V=0.85)
    assert status == "completed", reason
    assert set(species(path)) == {"anion"}


def test_a_cell_given_other_ions_in_the_station_file_is_recovered(tmp_path: Path) -> None:
    """[sim.devices.cell] with Ea 0.2 eV and a D0 that puts τ at 30 ms at 300 K (0.96 s at 200 K)."""
    d_300 = ions.diffusion_from_tau_cm2_s(0.03, 300.0, 35.0, 3e16)
    d0 = d_300 * math.exp(0.2 / (8.617333262e-5 * 300.0))
    station_file = tmp_path / "cryostat.toml"
    station_file.write_text(station_text("fapbi3", ea_anion_eV=0.2, d0_anion_cm2_s=d0), encoding="utf-8")
    assert "ea_anion_eV = 0.2" in station_file.read_text(encoding="utf-8")
    path, status, reason = run_tid(tmp_path, Station.load(station_file), sample="cell", n_a_cm3=3e16,
                                   v_bi_V=0.85, repeats=2)
    assert status == "completed", reason
    assert species(path)["anion"]["ea_eV"] == pytest.approx(0.2, abs=0.01)


@pytest.mark.parametrize(("policy", "status", "blocks"), [
    ("skip", "completed", ["tid_00_110K", "tid_02_105K"]),
    ("measure", "completed", ["tid_00_110K", "tid_01_300K", "tid_02_105K"]),
    ("stop", "aborted", ["tid_00_110K"]),
])
def test_a_temperature_that_never_stabilises(tmp_path: Path, policy: str, status: str, blocks: list[str]) -> None:
    """On its medium heater range (10 W) the LN2 stage cannot rise above ≈ 120 K: 300 K is never reached."""
    path, got, reason = run_tid(tmp_path, cryostat("fapbi3"), sample="cell", temperatures_K=[110.0, 300.0, 105.0],
                                heater_range="medium", timeout_s=1500.0, window_s=30.0, ramp_K_min=20.0,
                                sample_settle_s=0.0, on_unstable=policy, repeats=1, pulse_s=0.5, duration_s=0.5,
                                n_a_cm3=3e16, v_bi_V=0.85)
    assert got == status, reason
    with RunReader(path) as reader:
        assert [n for n in reader.block_names() if n.startswith("tid_")] == blocks
        (event,) = [e for e in reader.events() if e.kind == "temperature_not_stable"]
        assert "not stable at 300 K ± 0.1 K within 1500 s" in event.message and policy in event.data["on_unstable"]
        if policy == "measure":
            assert not reader.block("tid_01_300K").attrs["stable"]
    if policy == "stop":
        assert "did not settle at 300 K" in reason
        assert analyze_file(path, TIDSweep)["transients"]  # what was measured is there and analysable


def test_the_frequency_can_be_chosen_from_a_c_f_pre_sweep(tmp_path: Path) -> None:
    path, status, reason = run_tid(tmp_path, cryostat("fapbi3"), sample="cell", temperatures_K=[300.0, 280.0],
                                   frequency_mode="plateau", repeats=1, n_a_cm3=3e16, v_bi_V=0.85)
    assert status == "completed", reason
    with RunReader(path) as reader:
        pre = reader.block("cf_presweep").attrs
        low, high = pre["plateau_Hz"]
        assert 2e3 < low < pre["chosen_frequency_Hz"] < high < 2e5
        assert reader.block("tid_01_280K").attrs["frequency_Hz"] == pre["chosen_frequency_Hz"]


@pytest.mark.parametrize(("params", "fragment"), [
    ({"ramp_K_min": 200.0}, "'ramp_K_min' = 200 K/min is invalid; allowed: 0.1 … 100 K/min"),
    ({"temperatures_K": [300.0, 600.0]}, "'temperatures_K' = 600 K is invalid; allowed: 4 … 500 K"),
    ({"pulse_V": 2.0}, "'pulse_V' = 2 V is outside the range of sample 'fapbi3'; allowed: -1 … 1.3 V"),
    ({"n_points": 500}, "'n_points' = 500 points is outside the range of lcr; allowed: 8 … 201 points"),
    ({"frequency_Hz": 5e6}, "'frequency_Hz' = 5e+06 Hz is invalid; allowed: 20 … 2e+06 Hz"),
    ({"suns": 20.0}, "'suns' = 20 suns is invalid; allowed: 0 … 10 suns"),
    ({"on_unstable": "wait"}, "'on_unstable' = 'wait' is invalid"),
])
def test_bad_input_is_refused_before_any_instrument(tmp_path: Path, station: Station, params: dict[str, object],
                                                   fragment: str) -> None:
    with pytest.raises(ParameterError) as caught:
        Runner(TIDSweep(sample="fapbi3", **params), station=station, directory=tmp_path / "data").validate()
    assert fragment in str(caught.value)
    assert not (tmp_path / "data").exists()


def test_the_pulse_can_come_from_the_sample_smu(tmp_path: Path, station: Station) -> None:
    """fapbi3's B2902A channel makes the pulse, then its output goes off and the meter is set up and captures:
    the time axis counts from the output-off, so the first point comes after the meter's set-up (≈ 0.09 s on
    the simulated link) and only τ above it is resolved — here 240 → 200 K (τ 0.14–0.43 s)."""
    path, status, reason = run_tid(tmp_path, station, sample="fapbi3", temperatures_K=[240.0, 220.0, 200.0],
                                   pulse_source="smu", n_a_cm3=3e16, v_bi_V=0.85, repeats=2)
    assert status == "completed", reason
    with RunReader(path) as reader:
        attrs = reader.block("tid_00_240K").attrs
        assert attrs["pulse_source"] == "smu" and 0.05 < attrs["dead_time_s"] < 0.2
        assert "smu_b2900" in reader.instruments()
    (anion,) = analyze_file(path, TIDSweep)["species"]
    assert anion["ea_eV"] == pytest.approx(0.131, abs=0.01) and len(anion["temperatures_K"]) == 3
    assert anion["n_ion_cm3"] == pytest.approx(preset("fapbi3").n_ion_anion_cm3, rel=0.15)


def test_a_sweep_cut_off_by_a_lost_meter_resumes_at_its_temperature(tmp_path: Path) -> None:
    """The LCR meter's link drops during the third temperature's capture: the run is interrupted with two
    temperatures stored; `labctl resume` repeats the conditions and goes on from the third, with the N_A the
    reference C–V measured before the interruption."""
    from labctl.runner import DataRows, resume_runner

    runner = Runner(TIDSweep(sample="cell", temperatures_K=TEMPERATURES, repeats=1), station=cryostat("fapbi3"),
                    directory=tmp_path)

    def drop_the_meter(event: object) -> None:
        if isinstance(event, DataRows) and event.block == "tid_01_265K" and runner.bench is not None:
            runner.bench.simulation.mocks["lcr"].set_faults(drop_permanent=True)

    runner.subscribe(drop_the_meter)
    first = runner.run()
    assert first.status == "interrupted", first.reason
    resumed = resume_runner(first.path).run()
    assert resumed.status == "completed", resumed.reason
    with RunReader(first.path) as reader:
        assert [n for n in reader.block_names() if n.startswith("tid_")] == [
            "tid_00_300K", "tid_01_265K", "tid_02_230K", "tid_03_200K"]
        assert reader.block("tid_03_200K").attrs["segment"] == 1
    assert resumed.analysis is not None
    (anion,) = resumed.analysis["species"]
    assert len(anion["temperatures_K"]) == 4 and anion["ea_eV"] == pytest.approx(0.131, abs=0.005)
    assert resumed.analysis["n_a_source"].startswith("C–V")
