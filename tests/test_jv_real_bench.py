"""J–V on a bench as a physicist meets it: the sample's temperature set or honestly recorded, hysteresis pairs
that never straddle an interruption, bad input refused in one line with nothing created, a minimal station
that works, metadata that says what was measured."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from labctl.errors import InstrumentError
from labctl.runner import Runner, resume_runner
from labctl.station import Station
from labctl.store import RunReader
from procedures.jv_hysteresis import JVHysteresis

ENV = dict(os.environ, COLUMNS="200")
CRYO = dict(sample=["fapbi3"], v_min_V=-0.1, v_max_V=1.2, step_V=0.05, scan_rates_V_s=[0.1], suns=1.0)


def labctl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=ENV)


def scans(path: Path) -> list[dict[str, Any]]:
    with RunReader(path) as reader:
        return [dict(reader.block(n).attrs) for n in reader.block_names() if n.startswith("scan_")]


# ------------------------------------------------------------------------------------------ temperature
def test_a_temperature_setpoint_is_reached_and_held_during_the_scans(tmp_path: Path) -> None:
    result = Runner(JVHysteresis(**CRYO, temperature_K=290.0), station=Station.load("sim"),
                    directory=tmp_path).run()
    assert result.status == "completed", result.reason
    for attrs in scans(result.path):
        assert attrs["temperature_K"] == pytest.approx(290.0, abs=0.5)
        assert attrs["temperature_spread_K"] < 0.5
        assert attrs["temperature_setpoint_K"] == 290.0
    with RunReader(result.path) as reader:
        assert reader.attrs["conditions"]["temperature_K"] == 290.0
        assert "temperature_stable" in [e.kind for e in reader.events()]


def test_an_uncontrolled_cooling_stage_is_recorded_and_warned_about(tmp_path: Path) -> None:
    """'As it is' on a cryostat whose heater is off: the stage cools during the scans; every scan says how
    much, and a drift beyond the tolerance is an event and a warning, not silent 'inverted hysteresis'."""
    proc = JVHysteresis(**{**CRYO, "scan_rates_V_s": [0.01]}, temperature_drift_K=0.2)
    result = Runner(proc, station=Station.load("sim"), directory=tmp_path).run()
    assert result.status == "completed"
    recorded = scans(result.path)
    assert all(attrs["temperature_K"] < 298.0 for attrs in recorded)
    assert any(attrs["temperature_spread_K"] > 0.2 for attrs in recorded)
    with RunReader(result.path) as reader:
        drifts = [e for e in reader.events() if e.kind == "temperature_drift"]
        assert reader.attrs["conditions"]["temperature_K"].startswith("as it is")
    assert drifts and "during scan" in drifts[0].message


def test_a_setpoint_for_a_sample_without_a_controller_is_refused_before_anything(tmp_path: Path) -> None:
    no_controller = labctl("run", "jv", "--param", "sample=tandem", "--param", "temperature_K=300", "--out", "data",
                           cwd=tmp_path)
    assert no_controller.returncode == 2
    assert "no temperature controller" in no_controller.stderr
    assert not (tmp_path / "data").exists()


# ------------------------------------------------------------------------------------ pairs and resumes
def test_a_pair_cut_by_an_interruption_is_measured_again_and_never_paired_across(tmp_path: Path) -> None:
    station = Station.load("sim")
    proc = JVHysteresis(sample=["wbg_ref"], step_V=0.05, nplc=0.01, scan_rates_V_s=[0.1, 1.0], direction="RS+FS")
    measure = proc.scan

    def fail_the_first_forward_scan(ctx: Any, step: Any) -> None:
        if step.direction == "FS" and step.rate_index == 1:
            raise InstrumentError("no reply", instrument="smu", address="sim://keithley2450")
        measure(ctx, step)

    proc.scan = fail_the_first_forward_scan  # type: ignore[method-assign]
    first = Runner(proc, station=station, directory=tmp_path).run()
    assert first.status == "interrupted"
    resumed = resume_runner(first.path).run()
    assert resumed.status == "completed", resumed.reason
    by_name = {attrs["direction"] + str(attrs["rate_index"]) + "/" + str(attrs["segment"]): attrs
               for attrs in scans(first.path)}
    # the 1 V/s reverse scan of segment 0 is measured again with its forward scan in segment 1
    assert set(by_name) == {"RS0/0", "FS0/0", "RS1/0", "RS1/1", "FS1/1"}
    assert by_name["RS1/1"]["after_resume"] and not by_name["RS1/0"]["after_resume"]
    assert resumed.analysis is not None
    pairs = sorted((h["scan_rate_V_s"], h["segment"]) for h in resumed.analysis["hysteresis"])
    assert pairs == [(0.1, 0), (1.0, 1)]


# -------------------------------------------------------------------------------------------- bad input
def test_a_parameter_file_of_random_bytes_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "noise.toml").write_bytes(os.urandom(300))
    result = labctl("run", "jv", "--params", "noise.toml", "--param", "sample=wbg_ref", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot read parameter file noise.toml")
    assert "Traceback" not in result.stderr and not (tmp_path / "labctl-data").exists()


def test_a_misspelt_preset_in_the_station_is_refused_before_any_file(tmp_path: Path) -> None:
    text = Station.load("sim").text.replace('[sim.devices.wbg_ref]\npreset = "wbg_ref"',
                                            '[sim.devices.wbg_ref]\npreset = "wbg_reff"')
    (tmp_path / "typo.toml").write_text(text)
    result = labctl("run", "jv", "--station", "typo.toml", "--param", "sample=wbg_ref", "--out", "data",
                    cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown preset 'wbg_reff'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_data_file_that_cannot_be_created_is_refused_before_the_progress_bar(tmp_path: Path) -> None:
    result = labctl("run", "jv", "--param", "sample=wbg_ref", "--file", "/proc/x.h5", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""  # no progress bar, nothing measured
    assert "cannot write /proc/x.h5" in result.stderr


def test_exporting_a_file_that_is_not_a_run_file_creates_no_directory(tmp_path: Path) -> None:
    (tmp_path / "noise.h5").write_bytes(os.urandom(3000))
    result = labctl("export", "noise.h5", "--csv", "csv", cwd=tmp_path)
    assert result.returncode == 2 and "cannot be read as an HDF5 file" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "csv").exists()


# -------------------------------------------------------------------------------------- minimal station
@pytest.mark.parametrize("light", ["wavelabs_sinus70", "newport_lss7120"])
def test_a_minimal_simulated_station_measures(tmp_path: Path, light: str) -> None:
    """One SMU, one light, nothing said about the light's warm-up: the station validates, so it must work."""
    station = Station.from_text(f"""
name = "minimal"
[instruments.smu]
driver = "keithley2450"
address = "sim://keithley2450"
[instruments.lamp]
driver = "{light}"
address = "sim://{light}"
[samples.cell]
area_cm2 = 0.1
smu = "smu"
light = "lamp"
voltage_min_V = -0.5
voltage_max_V = 1.6
current_max_mA = 10
[sim.devices.cell]
preset = "wbg_ref"
""", source="minimal")
    result = Runner(JVHysteresis(sample=["cell"], step_V=0.05, nplc=0.01), station=station,
                    directory=tmp_path).run()
    assert result.status == "completed", result.reason
    assert result.analysis is not None
    assert result.analysis["scans"][0]["pce_pct"] == pytest.approx(17.5, abs=1.5)


# --------------------------------------------------------------------------------------------- metadata
def test_the_file_says_who_measured_and_what_the_instruments_were_set_to(tmp_path: Path) -> None:
    result = Runner(JVHysteresis(sample=["wbg_ref"], step_V=0.05, nplc=0.05), station=Station.load("sim"),
                    directory=tmp_path).run()
    with RunReader(result.path) as reader:
        assert reader.attrs["operator"] == getpass.getuser()
        assert reader.attrs["conditions"]["temperature_K"].startswith("as it is")
    for attrs in scans(result.path):
        smu = json.loads(attrs["smu_settings"])
        sweep = json.loads(attrs["sweep_settings"])
        assert smu["nplc"] == pytest.approx(0.05)  # as the scan had it, not as at connection
        assert sweep["dwell_s"] == pytest.approx(attrs["point_period_s"])
