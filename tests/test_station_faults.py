"""Station-level behaviour: the built-in simulated station, `labctl instruments`, and what an
unrecoverable instrument fault does to a run (the others are left safe, the run is resumable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from labctl.errors import StationError
from labctl.runner import Progress, Runner
from labctl.station import Station
from labctl.store import RunReader
from procedures.jv_hysteresis import JVHysteresis

SIM_MODELS = {"keithley2400", "keithley2450", "keithley2600", "keysight_b2900", "keysight_e4980a", "lakeshore336",
              "lakeshore335", "mercury_itc", "wavelabs_sinus70", "newport_lss7120", "keithley7001", "serial_mux"}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, COLUMNS="200"))


def test_builtin_station_has_every_model_and_one_sample_per_preset() -> None:
    from mock_instruments.presets import PRESETS

    station = Station.load("sim")
    assert {spec.driver for spec in station.instruments.values()} == SIM_MODELS
    assert set(station.samples) == set(PRESETS)
    assert station.simulated


def test_instruments_command_reaches_every_simulated_instrument(tmp_path: Path) -> None:
    result = cli("instruments", "--station", "sim", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(result.stdout)
    assert {row["driver"] for row in rows} == SIM_MODELS
    assert all(row["status"] == "ok" and row["identity"] for row in rows)
    identities = {row["driver"]: row["identity"] for row in rows}
    assert "2450" in identities["keithley2450"] and "E4980A" in identities["keysight_e4980a"]


def test_instruments_command_fails_when_one_does_not_answer(tmp_path: Path) -> None:
    text = Station.load("sim").text.replace(
        'address = "sim://keithley7001"', 'address = "sim://keithley7001"\nfaults = {drop_permanent = true}')
    (tmp_path / "broken.toml").write_text(text)
    result = cli("instruments", "--station", "broken.toml", "--json", cwd=tmp_path)
    assert result.returncode == 1
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["matrix"]["status"].startswith("failed")
    assert rows["smu"]["status"] == "ok"


def test_station_errors_name_the_problem() -> None:
    with pytest.raises(StationError, match="unknown driver 'keithley9999'"):
        Station.from_text('[instruments.x]\ndriver = "keithley9999"\naddress = "sim://x"\n')
    with pytest.raises(StationError, match="names smu = 'nosuch'"):
        Station.from_text('[samples.a]\narea_cm2 = 0.1\nsmu = "nosuch"\n')
    with pytest.raises(StationError, match="mixes sim:// and real addresses"):
        Station.from_text('[instruments.a]\ndriver = "keithley2450"\naddress = "sim://keithley2450"\n'
                          '[instruments.b]\ndriver = "keithley2400"\naddress = "GPIB0::24::INSTR"\n')


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('area_cm2 = "abc"', "sample 'a': area_cm2 = 'abc' is not a number"),
        ('area_cm2 = "0.1"', "sample 'a': area_cm2 = '0.1' is not a number"),
        ("area_cm2 = inf", "sample 'a' needs area_cm2 > 0"),
        ('area_cm2 = 0.1\nvoltage_max_V = "1.5"', "sample 'a': voltage_max_V = '1.5' is not a number"),
        ('area_cm2 = 0.1\ncurrent_max_mA = "5"', "sample 'a': current_max_mA = '5' is not a number"),
        ("area_cm2 = 0.1\nvoltage_min_V = nan", "sample 'a': voltage_min_V = nan is not a finite number"),
        ("area_cm2 = 0.1\ncurrent_max_mA = -5", "sample 'a' needs current_max_mA > 0"),
        ("area_cm2 = true", "sample 'a': area_cm2 = True is not a number"),
    ],
)
def test_sample_limits_of_the_wrong_type_are_refused_by_name(line: str, fragment: str) -> None:
    text = '[instruments.smu]\ndriver = "keithley2450"\naddress = "sim://keithley2450"\n' \
           f'[samples.a]\nsmu = "smu"\n{line}\n'
    with pytest.raises(StationError) as info:
        Station.from_text(text)
    assert fragment in str(info.value)


def test_unrecoverable_smu_fault_interrupts_the_run_and_leaves_the_rest_safe(tmp_path: Path) -> None:
    station = Station.load("sim")
    proc = JVHysteresis(sample=["wbg_ref"], step_V=0.05, nplc=0.01, scan_rates_V_s=[0.1, 1.0],
                        direction="RS+FS")
    runner = Runner(proc, station=station, directory=tmp_path)
    mocks: dict[str, object] = {}
    measure_scan = proc.scan

    def scan_then_break_the_smu(ctx: Any, step: Any) -> None:
        measure_scan(ctx, step)
        if not mocks:  # the SMU dies for good right after the first scan
            mocks.update(ctx.bench.simulation.mocks)
            ctx.bench.simulation.mocks["smu"].set_faults(drop_permanent=True)

    proc.scan = scan_then_break_the_smu  # type: ignore[method-assign]
    result = runner.run()
    assert result.status == "interrupted"
    assert "smu" in result.reason and "sim://keithley2450" in result.reason
    world = mocks["smu"].world  # type: ignore[attr-defined]
    assert world.light("sun").suns_at(world.time_s) == 0.0  # the LED engine was switched off
    assert world.switches["matrix"].selected is None  # the matrix opened every relay
    with RunReader(result.path) as reader:
        assert reader.status == "interrupted"
        kinds = [(e.kind, e.data.get("instrument")) for e in reader.events()]
        assert ("safe_state_failed", "smu") in kinds
        assert reader.last_checkpoint() is not None
        assert reader.block_names() == ["scan_000"]

    # Once the SMU answers again, `labctl resume` continues into the same file from the next scan.
    from labctl.runner import resume_runner

    with RunReader(result.path) as reader:
        saved = reader.attrs["simulated_world"]
    saved_dose_h = saved["devices"]["wbg_ref"]["degradation"]["dose_h"]
    assert saved_dose_h > 0  # the cell aged under light during the first scan
    runner2 = resume_runner(result.path)
    restored: list[float] = []

    def record_restored_dose(event: object) -> None:
        if isinstance(event, Progress) and runner2.bench is not None and not restored:
            cell = runner2.bench.simulation.world.device("wbg_ref")
            restored.append(cell.state_dict()["degradation"]["dose_h"])

    runner2.subscribe(record_restored_dose)
    resumed = runner2.run()
    assert resumed.status == "completed", resumed.reason
    assert restored and restored[0] >= saved_dose_h  # the same cell carries on aging, not a fresh one
    with RunReader(result.path) as reader:
        # the interruption came between the 0.1 V/s reverse scan and its forward scan: the pair is measured
        # again after the resume, so no pair straddles the interruption
        assert reader.block_names() == ["scan_000", "scan_000_2", "scan_001", "scan_002", "scan_003"]
        directions = [reader.block(n).attrs["direction"] for n in reader.block_names()]
        assert directions == ["RS", "RS", "FS", "RS", "FS"]
        assert [reader.block(n).attrs["segment"] for n in reader.block_names()] == [0, 1, 1, 1, 1]
        assert reader.attrs["station"] == "sim"


@pytest.mark.parametrize("channel", ['"3"', "0", "1.5", "true"])
def test_switch_channel_must_be_a_whole_number(channel: str) -> None:
    text = ('[instruments.mux]\ndriver = "serial_mux"\naddress = "sim://serial_mux"\n'
            f'[samples.a]\narea_cm2 = 0.1\nswitch = "mux"\nswitch_channel = {channel}\n')
    with pytest.raises(StationError, match=r"switch_channel = .* must be a whole number ≥ 1"):
        Station.from_text(text)
