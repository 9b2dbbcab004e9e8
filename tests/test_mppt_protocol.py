"""MPPT aging protocols on the simulated bench: ISOS presets fill in the schedule and are recorded, light
cycling really switches the light, and a lost instrument stops only the channels that use it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labctl.analyze import analyze_file
from labctl.clock import VirtualClock
from labctl.errors import ParameterError
from labctl.runner import Runner
from labctl.station import Station
from labctl.store import RunReader
from procedures import isos
from procedures.mppt_aging import MPPTAging
from procedures.trackers import DARK, DWELL


@pytest.mark.parametrize("preset", sorted(isos.PRESETS))
def test_presets_fill_in_what_is_not_given(preset: str) -> None:
    proc = MPPTAging(samples=["wbg_ref"], preset=preset)
    for key, value in isos.PRESETS[preset].items():
        assert proc.values[key] == value, key
    assert proc.conditions()["isos_protocol"] == preset
    assert proc.conditions()["isos_description"] == isos.DESCRIPTIONS[preset]
    # a value given explicitly wins over the preset's
    assert MPPTAging(samples=["wbg_ref"], preset=preset, jv_every_h=48.0).values["jv_every_h"] == 48.0


def test_unknown_preset_is_refused_by_name() -> None:
    with pytest.raises(ParameterError, match="preset"):
        MPPTAging(samples=["wbg_ref"], preset="ISOS-L-9")


def test_isos_l2_holds_65_C_and_records_the_protocol(tmp_path: Path) -> None:
    result = Runner(MPPTAging(samples=["ch01", "ch02"], preset="ISOS-L-2", duration_h=0.5, dwell_s=600.0,
                              max_settle_s=10.0),
                    station=Station.load("sim-aging"), directory=tmp_path).run()
    assert result.status == "completed", result.reason
    with RunReader(result.path) as reader:
        conditions = reader.attrs["conditions"]
        assert conditions["isos_protocol"] == "ISOS-L-2"
        assert conditions["temperature_C"] == 65.0 and conditions["light_suns"] == 1.0
        assert "65 °C" in conditions["isos_description"]
        env = reader.block("environment")
        temperature_K = np.asarray(env["temperature_K"])
        data = reader.block("mppt_ch01")
        t_first_reading = float(np.min(np.asarray(data["time_s"])))
        t_env = np.asarray(env["time_s"])
    # tracking starts only once the stage is at 65 °C (±3 K band of the suspender), and stays there
    after = t_env >= t_first_reading
    assert np.all(np.abs(temperature_K[after] - 338.15) < 3.0)


def test_light_cycling_switches_the_light_and_the_channels_rest_in_the_dark(tmp_path: Path) -> None:
    result = Runner(MPPTAging(samples=["wbg_ref"], preset="ISOS-LC-1", light_on_h=0.5, light_off_h=0.5,
                              duration_h=2.0, dwell_s=600.0, max_settle_s=10.0),
                    station=Station.load("sim"), directory=tmp_path).run()
    assert result.status == "completed", result.reason
    with RunReader(result.path) as reader:
        env = reader.block("environment")
        t0 = float(reader.block("mppt_wbg_ref")["time_s"][0])
        hours = (np.asarray(env["time_s"]) - t0) / 3600.0
        light_on = np.asarray(env["light_on"])
        irradiance = np.asarray(env["irradiance_mW_cm2"])
        data = reader.block("mppt_wbg_ref")
        reading_h = (np.asarray(data["time_s"]) - t0) / 3600.0
        phase = np.asarray(data["phase"])
        bias = reader.block("bias_wbg_ref")
        dark_open = np.asarray(bias["state"]) == 3.0
        schedule = [e for e in reader.events() if e.kind == "schedule"]
    # the reference cell sees the lamp on and off as scheduled (a margin for the lamp's switching)
    lit = light_on == 1.0
    assert lit.any() and (~lit).any()
    assert np.all(np.abs(irradiance[lit & (hours % 1.0 > 0.02) & (hours % 1.0 < 0.48)] - 100.0) < 5.0)
    assert np.all(irradiance[~lit & (hours % 1.0 > 0.52)] < 1.0)
    assert [round(e.data["hours"], 3) for e in schedule] == pytest.approx([0.5, 1.0, 1.5], abs=0.01)
    # tracking only in the light phases; open circuit (recorded in bias_) in the dark ones
    in_dark = (reading_h % 1.0 > 0.505) & (reading_h % 1.0 < 0.995)
    assert not np.any(np.isin(phase[in_dark], (DWELL,)))
    assert np.sum(phase == DWELL) > 100 and not np.any(phase == DARK)
    assert dark_open.sum() >= 2


def test_a_lost_smu_stops_only_its_own_channel(tmp_path: Path) -> None:
    proc = MPPTAging(samples=["ch01", "ch02"], duration_h=1.0, dwell_s=600.0, max_settle_s=10.0, suns=1.0)
    runner = Runner(proc, station=Station.load("sim-aging"), directory=tmp_path, clock=VirtualClock())
    run_channel = proc.run_channel
    broken: list[float] = []

    def channel_whose_smu_dies(ch: Any) -> None:
        if ch.name == "ch01" and not broken:
            broken.append(ch.clock.now())
            ch.bench.simulation.mocks["smu1"].set_faults(drop_permanent=True)
        run_channel(ch)

    # ch01's SMU stops answering for good at once; ch02 (its own SMU) must carry on to the end
    proc.run_channel = channel_whose_smu_dies  # type: ignore[method-assign]
    result = runner.run()
    with RunReader(result.path) as reader:
        t02 = np.asarray(reader.block("mppt_ch02")["time_s"])
        names = reader.block_names()
        ch01_rows = len(reader.block("mppt_ch01")["time_s"]) if "mppt_ch01" in names else 0
        events = [(e.kind, e.data) for e in reader.events()]
    # the run says which channel it lost (a resume can take it up once the SMU answers again)
    assert result.status == "interrupted"
    assert "ch01" in result.reason and "ch02" not in result.reason
    assert ch01_rows == 0
    assert (t02.max() - t02.min()) / 3600.0 == pytest.approx(1.0, abs=0.02)
    kinds = [kind for kind, _ in events]
    assert ("channel_suspended", {"instrument": "smu1"}) in events
    assert "channel_lost" in kinds and "smu1" in dict(events)["channel_lost"]["reason"]
    assert all(data.get("instrument") in (None, "smu1") for _, data in events)


def test_a_light_whose_run_ends_is_switched_on_again(tmp_path: Path) -> None:
    # A SINUS-70 recipe ends by itself when its Duration elapses (at most 596.5 h); here it lasts 30 min.
    proc = MPPTAging(samples=["wbg_ref"], preset="ISOS-L-1", duration_h=1.5, dwell_s=600.0, max_settle_s=10.0)
    run_channel = proc.run_channel

    def short_recipe_then_track(ch: Any) -> None:
        ch.bench.light("wbg_ref").duration_s = 1800.0
        run_channel(ch)

    proc.run_channel = short_recipe_then_track  # type: ignore[method-assign]
    result = Runner(proc, station=Station.load("sim"), directory=tmp_path).run()
    assert result.status == "completed", result.reason
    with RunReader(result.path) as reader:
        restarts = [e for e in reader.events() if e.kind == "light_restarted"]
        kinds = [e.kind for e in reader.events()]
        t = np.asarray(reader.block("mppt_wbg_ref")["time_s"])
        phase = np.asarray(reader.block("mppt_wbg_ref")["phase"])
    assert len(restarts) >= 2 and all(e.data["irradiance_mW_cm2"] < 50.0 for e in restarts)
    assert "suspended" in kinds and "channel_resumed" in kinds
    # tracking goes on to the end, with at most the suspension (≤ one environment period + 120 s) missing
    held = np.sort(t[phase == DWELL])
    assert (held[-1] - held[0]) / 3600.0 > 1.4
    assert float(np.max(np.diff(held))) < 300.0 + 120.0 + 60.0


def test_periodic_check_up_scans_and_the_tracker_restarts_from_them(tmp_path: Path) -> None:
    result = Runner(MPPTAging(samples=["wbg_5avai"], suns=1.0, duration_h=2.5, jv_every_h=1.0, dwell_s=600.0,
                              max_settle_s=10.0),
                    station=Station.load("sim"), directory=tmp_path).run()
    assert result.status == "completed", result.reason
    with RunReader(result.path) as reader:
        names = reader.block_names()
        decisions = np.asarray(reader.block("tracker_wbg_5avai")["decision"])
        codes = json.loads(reader.block("tracker_wbg_5avai").attrs["decision_codes"])
        info = reader.info("jv_wbg_5avai_000_RS")
    assert {"jv_wbg_5avai_000_RS", "jv_wbg_5avai_000_FS", "jv_wbg_5avai_001_RS", "jv_wbg_5avai_001_FS"} <= set(names)
    assert (info.signal, info.axes) == ("current_density_mA_cm2", "voltage_V")
    assert np.sum(decisions == codes["reanchored"]) == 2
    row = analyze_file(result.path, MPPTAging)["channels"][0]
    reverse = [c for c in row["checkups"] if c["direction"] == "RS"]
    assert [round(c["elapsed_h"], 2) for c in reverse] == pytest.approx([1.0, 2.0], abs=0.02)
    # the paper's cell: ~20 % in a 0.1 V/s reverse scan, within a few % of the tracked PCE
    for checkup in reverse:
        assert 18.0 < checkup["pce_pct"] < 21.5
        assert checkup["voc_V"] == pytest.approx(1.37, abs=0.03)
    assert abs(reverse[0]["pce_pct"] - row["pce0_pct"]) < 1.5


def test_check_up_scans_on_2600b_channels_direct_and_multiplexed(tmp_path: Path) -> None:
    # ch04 on its own 2636B channel, ch16 on a 2636B channel through the relay multiplexer: the forward scan
    # starts the moment the reverse one returns (the driver waits for the trigger model to be idle first).
    result = Runner(MPPTAging(samples=["ch04", "ch16"], duration_h=7.0, jv_every_h=6.0, interval_s=60.0),
                    station=Station.load("sim-aging"), directory=tmp_path, clock=VirtualClock()).run()
    assert result.status == "completed", result.reason
    with RunReader(result.path) as reader:
        names = set(reader.block_names())
        kinds = {e.kind for e in reader.events()}
    assert {"jv_ch04_000_RS", "jv_ch04_000_FS", "jv_ch16_000_RS", "jv_ch16_000_FS"} <= names
    assert not kinds & {"channel_failed", "channel_suspended"}
