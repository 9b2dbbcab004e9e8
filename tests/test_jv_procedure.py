"""J–V hysteresis on the built-in simulated station, through drivers, mocks and the device physics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.analyze import analyze_file, report_file
from labctl.errors import ParameterError
from labctl.runner import Runner
from labctl.station import Station
from labctl.store import RunReader
from procedures.jv_hysteresis import JVHysteresis


@pytest.fixture(scope="module")
def station() -> Station:
    return Station.load("sim")


def run_jv(tmp_path: Path, station: Station, **params: object) -> Path:
    result = Runner(JVHysteresis(**params), station=station, directory=tmp_path).run()
    assert result.status == "completed", result.reason
    # a completed run is analysed straight away: metrics in the result and in the file's /analysis
    assert result.analysis is not None and len(result.analysis["scans"]) == len(JVHysteresis(**params).scan_plan())
    with RunReader(result.path) as reader:
        assert "jv" in reader.analysis()
    return result.path


def test_slow_reverse_scan_of_wbg_5avai_matches_the_paper(tmp_path: Path, station: Station) -> None:
    path = run_jv(tmp_path, station, sample=["wbg_5avai"], v_min_V=-0.05, v_max_V=1.45, step_V=0.01,
                  scan_rates_V_s=[0.01], direction="RS", nplc=1.0)
    metrics = analyze_file(path, JVHysteresis)["scans"][0]
    assert metrics["direction"] == "RS"
    assert metrics["pce_pct"] == pytest.approx(20.2, abs=0.5)
    assert metrics["voc_V"] == pytest.approx(1.372, abs=0.015)
    assert metrics["jsc_mA_cm2"] == pytest.approx(17.50, abs=0.4)


def test_tandem_voc(tmp_path: Path, station: Station) -> None:
    path = run_jv(tmp_path, station, sample=["tandem"], v_min_V=-0.05, v_max_V=2.3, step_V=0.01,
                  scan_rates_V_s=[0.02], direction="RS", nplc=1.0)
    assert analyze_file(path, JVHysteresis)["scans"][0]["voc_V"] == pytest.approx(2.183, abs=0.02)


def test_wbg_ref_hysteresis_rises_then_falls_with_scan_rate(tmp_path: Path, station: Station) -> None:
    rates = [1e-3, 1e-2, 1e-1, 1.0, 1e2]
    path = run_jv(tmp_path, station, sample=["wbg_ref"], v_min_V=-0.05, v_max_V=1.4, step_V=0.05,
                  scan_rates_V_s=rates, direction="RS+FS", nplc=0.01, prebias_V=1.5, prebias_s=5.0)
    result = analyze_file(path, JVHysteresis)
    by_rate = {h["scan_rate_V_s"]: h["hi_pce"] for h in result["hysteresis"]}
    assert sorted(by_rate) == rates
    assert by_rate[0.1] >= 0.05
    peak = max(by_rate.values())
    assert by_rate[1e-3] < 0.5 * peak and by_rate[1e2] < 0.5 * peak
    # the instrument timed the scans: achieved rates within 2 % of the requested ones
    for scan in result["scans"]:
        assert scan["achieved_rate_V_s"] == pytest.approx(scan["scan_rate_V_s"], rel=0.02)


def test_blocks_record_what_a_physicist_needs(tmp_path: Path, station: Station) -> None:
    path = run_jv(tmp_path, station, sample=["wbg_5avai"], v_min_V=-0.1, v_max_V=1.45, step_V=0.02,
                  scan_rates_V_s=[0.1], direction="FS+RS", spo_s=30.0, light_soak_s=10.0)
    with RunReader(path) as reader:
        names = reader.block_names()
        assert names[:2] == ["scan_000", "scan_001"] and "spo_wbg_5avai" in names
        scan = reader.block("scan_000")
        assert scan.attrs["direction"] == "FS" and scan.attrs["pixel"] == "wbg_5avai"
        assert scan.units == {"voltage_V": "V", "current_A": "A", "current_density_mA_cm2": "mA/cm2",
                              "time_s": "s"}
        assert scan.attrs["irradiance_mW_cm2"] == pytest.approx(100.0, rel=0.03)
        assert json.loads(scan.attrs["preconditioning"])["light_soak_s"] == 10.0
        assert scan["voltage_V"][0] == pytest.approx(-0.1) and scan["voltage_V"][-1] == pytest.approx(1.45)
        # SMU convention in current_A, photocurrent positive in the density
        assert scan["current_A"][0] < 0 < scan["current_density_mA_cm2"][0]
        assert "smu" in reader.instruments() and "matrix" in reader.instruments()
        kinds = [e.kind for e in reader.events()]
        assert "safe_state" in kinds and kinds[-1] == "end"
    spo = analyze_file(path, JVHysteresis)["spo"]["wbg_5avai"]
    assert spo["spo_pce_pct"] == pytest.approx(20.05, abs=0.6)


def test_report_writes_the_figures(tmp_path: Path, station: Station) -> None:
    path = run_jv(tmp_path, station, sample=["wbg_ref"], step_V=0.05, nplc=0.01, scan_rates_V_s=[0.1, 1.0],
                  spo_s=20.0)
    figures = report_file(path, tmp_path / "figs", JVHysteresis)
    names = sorted(p.name for p in figures)
    assert any(n.endswith("_wbg_ref_jv.png") for n in names)
    assert any(n.endswith("_hysteresis.png") for n in names)
    assert any(n.endswith("_spo_wbg_ref.png") for n in names)
    assert all(p.stat().st_size > 10_000 for p in figures)


@pytest.mark.parametrize(
    ("param", "fragment"),
    [
        ("v_max_V=1.9", "'v_max_V' = 1.9 V is outside the limits of sample 'wbg_ref'; allowed: -0.5 … 1.6 V"),
        ("scan_rates_V_s=0.1,-1", "'scan_rates_V_s' = -1 V/s"),
        ("compliance_mA_cm2=150", "'compliance_mA_cm2' = 150 mA/cm2"),
        ("scan_rates_V_s=500", "too fast"),
    ],
)
def test_bad_input_is_refused_before_any_instrument(tmp_path: Path, station: Station, param: str,
                                                   fragment: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "labctl.cli", "run", "jv", "--station", "sim", "--param", "sample=wbg_ref",
         "--param", param, "--out", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert fragment in " ".join(proc.stderr.split())
    assert not (tmp_path / "data").exists()


def test_compliance_above_the_smu_range_names_the_range() -> None:
    big_pixel = Station.from_text("""
[instruments.smu]
driver = "keithley2450"
address = "sim://keithley2450"
[samples.big]
area_cm2 = 1.0
smu = "smu"
current_max_mA = 5000.0
""")
    with pytest.raises(ParameterError, match=r"'compliance_mA_cm2' = 2000 .*smu range 1050 mA"):
        JVHysteresis(sample=["big"], compliance_mA_cm2=2000.0, suns=0.0).check_station(big_pixel)


def test_lamp_failure_stops_the_run_before_a_wrong_pce_is_recorded(tmp_path: Path) -> None:
    text = Station.load("sim").text.replace('address = "sim://wavelabs_sinus70"',
                                            'address = "sim://wavelabs_sinus70"\nfaults = {lamp_failure = true}')
    station = Station.from_text(text)
    result = Runner(JVHysteresis(sample=["wbg_ref"], step_V=0.05, nplc=0.01), station=station,
                    directory=tmp_path).run()
    # The SINUS-70 itself reports the light-engine fault when the recipe starts.
    assert result.status == "interrupted"
    assert "sun" in result.reason and "light engine fault" in result.reason
    with RunReader(result.path) as reader:
        assert reader.block_names() == []
        assert "safe_state" in [e.kind for e in reader.events()]


def test_wrong_irradiance_trips_the_light_interlock() -> None:
    from labctl.errors import InterlockTripped
    from procedures.conditions import check_irradiance

    check_irradiance("wbg_ref", 96.0, 1.0, "reference cell ref")  # within 10 %: fine
    with pytest.raises(InterlockTripped, match=r"reads 40\.0 mW/cm2 for 1 sun\(s\) requested"):
        check_irradiance("wbg_ref", 40.0, 1.0, "reference cell ref")


def test_more_points_than_the_smu_can_sweep_are_refused_before_any_instrument(tmp_path: Path,
                                                                              station: Station) -> None:
    # The 2450 holds 2500 points per sweep: a 0.5 mV step over -0.1 … 1.5 V would fail only at the first
    # sweep, after the light was switched on and the cell soaked.
    runner = Runner(JVHysteresis(sample=["wbg_ref"], step_V=0.0005, nplc=0.01, scan_rates_V_s=[1.0]),
                    station=station, directory=tmp_path)
    with pytest.raises(ParameterError, match=r"'step_V' = 0\.0005 V gives 3201 points .* allowed: at most 2500"):
        runner.validate()
    # Two-channel SMUs (the B2902A of the cryostat pixels) have the same limit per channel.
    with pytest.raises(ParameterError, match=r"'n_points' = 3000 .* allowed: at most 2500"):
        JVHysteresis(sample=["fapbi3"], v_max_V=1.2, n_points=3000, nplc=0.01, suns=0.0,
                     scan_rates_V_s=[1.0]).check_station(station)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_an_spo_after_scans_with_too_few_points_is_skipped_not_fatal(tmp_path: Path, station: Station) -> None:
    result = Runner(JVHysteresis(sample=["wbg_ref"], n_points=3, nplc=0.01, spo_s=10.0), station=station,
                    directory=tmp_path).run()
    assert result.status == "completed", result.reason
    with RunReader(result.path) as reader:
        assert "spo_skipped" in [e.kind for e in reader.events()]


def _interrupt_during_spo(tmp_path: Path, station: Station) -> Path:
    from labctl.runner import DataRows

    runner = Runner(JVHysteresis(sample=["wbg_ref"], step_V=0.05, nplc=0.01, spo_s=20.0), station=station,
                    directory=tmp_path)

    def drop_the_smu(event: object) -> None:
        if isinstance(event, DataRows) and event.block.startswith("spo_") and runner.bench is not None:
            runner.bench.simulation.mocks["smu"].set_faults(drop_permanent=True)

    runner.subscribe(drop_the_smu)
    result = runner.run()
    assert result.status == "interrupted", result.reason
    return result.path


def test_resume_after_a_fault_during_the_spo_hold_redoes_the_hold(tmp_path: Path, station: Station) -> None:
    from labctl.runner import resume_runner

    path = _interrupt_during_spo(tmp_path, station)
    resumed = resume_runner(path).run()
    assert resumed.status == "completed", resumed.reason
    assert resumed.analysis is not None
    spo = resumed.analysis["spo"]["wbg_ref"]
    assert spo["spo_pce_pct"] == pytest.approx(17.5, abs=1.0)
    with RunReader(path) as reader:
        holds = [b for b in reader.blocks() if b.name.startswith("spo_")]
        assert holds[-1].n_rows == 200 and holds[-1].attrs["pixel"] == "wbg_ref"
        assert holds[-1].attrs["vmpp_V"] == pytest.approx(holds[0].attrs["vmpp_V"])  # the same Vmpp as before
        assert [b for b in reader.block_names() if b.startswith("scan_")] == ["scan_000", "scan_001"]


def test_resume_after_a_kill_between_a_scan_and_its_checkpoint(tmp_path: Path, station: Station) -> None:
    from labctl.runner import Progress, resume_runner
    from labctl.store import RunWriter

    proc = JVHysteresis(sample=["wbg_ref"], step_V=0.05, nplc=0.01, scan_rates_V_s=[0.1, 1.0])
    runner = Runner(proc, station=station, directory=tmp_path)

    def drop_the_smu(event: object) -> None:
        if isinstance(event, Progress) and runner.bench is not None:
            runner.bench.simulation.mocks["smu"].set_faults(drop_permanent=True)

    runner.subscribe(drop_the_smu)
    first = runner.run()
    assert first.status == "interrupted"
    # What a kill -9 right after scan_001 reached the disk, before its checkpoint, leaves behind.
    with RunWriter.open_existing(first.path) as writer:
        writer.create_block("scan_001", {"voltage_V": "V", "current_A": "A", "current_density_mA_cm2": "mA/cm2",
                                         "time_s": "s"}, {"direction": "FS", "pixel": "wbg_ref"})
    resumed = resume_runner(first.path).run()
    assert resumed.status == "completed", resumed.reason
    with RunReader(first.path) as reader:
        scans = [b for b in reader.blocks() if b.name.startswith("scan_")]
    assert len(scans) == 5  # scan_000, the orphan scan_001, and the three scans redone after it
    assert [b.attrs["direction"] for b in scans[2:]] == ["FS", "RS", "FS"]
    assert all(b.n_rows == 33 for b in scans[2:])


def test_a_rate_measured_twice_gives_two_hysteresis_rows(tmp_path: Path, station: Station) -> None:
    # 0.1 V/s again at the end, to see whether the fast scan changed the cell: both pairs count.
    path = run_jv(tmp_path, station, sample=["wbg_ref"], step_V=0.05, nplc=0.01, scan_rates_V_s=[0.1, 10.0, 0.1],
                  prebias_V=1.5, prebias_s=5.0)
    hysteresis = analyze_file(path, JVHysteresis)["hysteresis"]
    assert sorted(h["scan_rate_V_s"] for h in hysteresis) == [0.1, 0.1, 10.0]
    with RunReader(path) as reader:
        assert [reader.block(f"scan_{i:03d}").attrs["rate_index"] for i in range(6)] == [0, 0, 1, 1, 2, 2]


def test_a_dark_reference_cell_trips_the_interlock_without_waiting_for_the_warm_up_timeout() -> None:
    from labctl.clock import VirtualClock
    from labctl.errors import InterlockTripped
    from procedures.conditions import LIGHT_DEAD_AFTER_S, LIGHT_STABLE_TIMEOUT_S, wait_for_stable_light

    class DeadLamp:
        def read_irradiance_mW_cm2(self) -> float:
            return 0.0

    class Ctx:
        clock = VirtualClock(start_s=0.0)

        def sleep(self, seconds: float) -> None:
            self.clock.sleep(seconds)

    ctx = Ctx()
    with pytest.raises(InterlockTripped, match=r"reads 0\.0 mW/cm2"):
        wait_for_stable_light(ctx, "wbg_ref", DeadLamp(), "reference cell", 1.0)
    assert LIGHT_DEAD_AFTER_S <= ctx.clock.now() < LIGHT_STABLE_TIMEOUT_S


def test_progress_rises_steadily_to_one_through_soak_prebias_and_spo(tmp_path: Path, station: Station) -> None:
    from labctl.runner import Progress

    fractions: list[float] = []
    runner = Runner(JVHysteresis(sample=["wbg_ref", "wbg_5avai"], step_V=0.05, nplc=0.01,
                                 scan_rates_V_s=[0.1, 1.0], light_soak_s=20.0, prebias_V=1.5, prebias_s=5.0,
                                 spo_s=30.0),
                    station=station, directory=tmp_path,
                    subscribers=[lambda e: fractions.append(e.fraction) if isinstance(e, Progress) else None])
    assert runner.run().status == "completed"
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # the first pixel's share (its scans, soak and pre-bias) is reported before the second pixel starts
    assert 0.3 < fractions[3] < 0.6
