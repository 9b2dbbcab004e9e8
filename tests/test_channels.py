"""Channels run side by side on one virtual time and fail alone: a lost SMU suspends only its channel, the
others keep their rhythm; an irradiance excursion suspends and resumes the channels; two identical virtual
runs write identical data."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers_procedures import ChannelMonitor

from labctl.bench import Bench
from labctl.clock import VIRTUAL_EPOCH_S, VirtualClock
from labctl.runner import Runner
from labctl.station import Station
from labctl.store import RunReader

SIXTEEN = [f"ch{k:02d}" for k in range(1, 17)]


def run_monitor(tmp_path: Path, samples: list[str], *, duration_s: float, interval_s: float = 60.0,
                prepare: Any = None, name: str = "run.h5", **params: Any) -> tuple[Any, Path]:
    station = Station.load("sim-aging")
    proc = ChannelMonitor(sample=samples, duration_s=duration_s, interval_s=interval_s, **params)
    bench = Bench.connect(station, proc.instruments_needed(station), clock=VirtualClock(VIRTUAL_EPOCH_S))
    try:
        if prepare is not None:
            prepare(bench)
        result = Runner(proc, bench=bench, path=tmp_path / name).run()
    finally:
        bench.close()
    return result, tmp_path / name


def events(path: Path) -> list[Any]:
    with RunReader(path) as reader:
        return list(reader.events())


def times(path: Path, channel: str) -> np.ndarray:
    with RunReader(path) as reader:
        return np.asarray(reader.block(f"ch_{channel}")["time_s"])


def test_one_unreachable_smu_suspends_its_channel_only(tmp_path: Path) -> None:
    """ch01's 2450 is unreachable from 1 h to 1.5 h: ch01 is suspended, reconnected and resumed; the other 15
    channels keep reading every minute."""
    t0 = VIRTUAL_EPOCH_S

    def prepare(bench: Bench) -> None:
        world = bench.simulation.world
        mock = bench.simulation.mocks["smu1"]
        world.schedule(t0 + 3600.0, lambda _t: mock.set_faults(drop_permanent=True))
        world.schedule(t0 + 5400.0, lambda _t: mock.set_faults(drop_permanent=False))

    result, path = run_monitor(tmp_path, SIXTEEN, duration_s=3 * 3600.0, prepare=prepare)
    assert result.status == "completed", result.reason
    for channel in SIXTEEN[1:]:
        steps = np.diff(times(path, channel))
        assert steps.max() <= 1.5 * 60.0, (channel, steps.max())
    lost = times(path, "ch01")
    gap = np.diff(lost)
    assert 1800.0 <= gap.max() <= 1800.0 + 400.0  # back within one capped back-off interval
    assert lost[-1] > t0 + 3 * 3600.0 - 120.0  # and it carried on to the end
    story = [(e.kind, e.channel or None, e.data.get("instrument")) for e in events(path)]
    assert ("link_lost", None, "smu1") in story
    assert ("channel_suspended", "ch01", "smu1") in story
    assert ("link_restored", None, "smu1") in story
    assert ("channel_resumed", "ch01", "smu1") in story
    assert story.index(("channel_suspended", "ch01", "smu1")) < story.index(("channel_resumed", "ch01", "smu1"))
    suspended = {channel for kind, channel, _ in story if kind == "channel_suspended"}
    assert suspended == {"ch01"}


def test_two_identical_virtual_runs_write_identical_data(tmp_path: Path) -> None:
    """Own channels, two 2636B channels and matrix pixels sharing one 2450: the same data to the bit."""
    samples = ["ch01", "ch04", "ch05", "ch08", "ch09", "ch10"]
    first, first_path = run_monitor(tmp_path, samples, duration_s=1800.0, interval_s=30.0, name="a.h5")
    second, second_path = run_monitor(tmp_path, samples, duration_s=1800.0, interval_s=30.0, name="b.h5")
    assert first.status == second.status == "completed"
    with RunReader(first_path) as a, RunReader(second_path) as b:
        assert a.block_names() == b.block_names()
        for name in a.block_names():
            block_a, block_b = a.block(name), b.block(name)
            for column in ("time_s", "voltage_V", "current_A"):
                assert np.array_equal(block_a[column], block_b[column]), (name, column)

    def story(path: Path) -> list[tuple[Any, ...]]:
        return [(e.time_s, e.kind, e.message, e.channel) for e in events(path)]

    assert story(first_path) == story(second_path)


def test_shared_pixels_take_turns_on_their_smu(tmp_path: Path) -> None:
    samples = ["ch08", "ch09", "ch10"]
    result, path = run_monitor(tmp_path, samples, duration_s=600.0, interval_s=10.0)
    assert result.status == "completed"
    instants = list(itertools.chain.from_iterable(times(path, c) for c in samples))
    assert len(set(instants)) == len(instants)  # never two pixels measured at the same instant
    for channel in samples:
        assert np.diff(times(path, channel)).max() <= 1.5 * 10.0


def test_an_irradiance_excursion_suspends_and_resumes_the_channels(tmp_path: Path) -> None:
    """The lamp falls to 60 % from 20 to 30 min: the reference cell trips the suspender, the channels go to
    their hold (no readings), and come back once the light has been good for the clear time."""
    t0 = VIRTUAL_EPOCH_S
    samples = ["ch01", "ch02", "ch08"]

    def prepare(bench: Bench) -> None:
        world = bench.simulation.world
        sun = world.light("sun")
        world.schedule(t0 + 1200.0, lambda _t: sun.set_intensity_suns(0.6 * sun.intensity_suns))
        world.schedule(t0 + 1800.0, lambda _t: sun.set_intensity_suns(sun.intensity_suns / 0.6))

    result, path = run_monitor(tmp_path, samples, duration_s=3600.0, interval_s=30.0, prepare=prepare,
                               clear_for_s=120.0)
    assert result.status == "completed", result.reason
    story = events(path)
    tripped = next(e for e in story if e.kind == "suspended")
    cleared = next(e for e in story if e.kind == "suspension_cleared")
    assert t0 + 1200.0 <= tripped.time_s <= t0 + 1200.0 + 15.0
    assert t0 + 1800.0 + 120.0 <= cleared.time_s <= t0 + 1800.0 + 120.0 + 15.0
    assert sorted(tripped.data["channels"]) == samples
    for channel in samples:
        kinds = [e.kind for e in story if e.channel == channel]
        assert "channel_suspended" in kinds and "channel_resumed" in kinds
        during = times(path, channel)
        during = during[(during > tripped.time_s + 31.0) & (during < cleared.time_s)]
        assert during.size == 0, (channel, during - t0)
        assert times(path, channel)[-1] > t0 + 3600.0 - 90.0


@pytest.mark.parametrize("bad", [{"band_mW_cm2": 0.0}])
def test_the_monitor_refuses_a_zero_band(bad: dict[str, float]) -> None:
    from labctl.errors import ParameterError

    with pytest.raises(ParameterError, match="band_mW_cm2"):
        ChannelMonitor(sample=["ch01"], **bad)


def test_pause_holds_every_channel_and_records_the_paused_time(tmp_path: Path) -> None:
    """Paused after the tenth reading: every channel goes to its hold (output off) and stays there, simulated
    time stands still, and the events say how long the pause was."""
    import threading

    from labctl.runner.events import DataRows

    samples = ["ch01", "ch02", "ch08"]
    station = Station.load("sim-aging")
    proc = ChannelMonitor(sample=samples, duration_s=1800.0, interval_s=30.0)
    bench = Bench.connect(station, proc.instruments_needed(station), clock=VirtualClock(VIRTUAL_EPOCH_S))
    runner = Runner(proc, bench=bench, path=tmp_path / "pause.h5")
    rows = [0]
    seen: dict[str, Any] = {}

    def on_event(event: Any) -> None:
        if isinstance(event, DataRows):
            rows[0] += 1
            if rows[0] == 10:
                runner.pause()
                threading.Timer(0.5, check_and_resume).start()

    def check_and_resume() -> None:
        seen["time"] = bench.clock.now()
        mock = bench.simulation.mocks["smu1"]
        session = mock.connect()
        session.write(":OUTP?")
        seen["smu1_output"] = session.read()
        threading.Timer(0.3, resume).start()

    def resume() -> None:
        seen["later"] = bench.clock.now()
        runner.resume()

    runner.subscribe(on_event)
    try:
        result = runner.run()
    finally:
        bench.close()
    assert result.status == "completed"
    assert seen["smu1_output"] == "0"  # held: output off
    assert seen["later"] == seen["time"]  # simulated time stood still while paused
    story = events(tmp_path / "pause.h5")
    paused = [e for e in story if e.kind == "paused"]
    resumed = [e for e in story if e.kind == "resumed"]
    assert {e.channel for e in paused} == set(samples)
    assert {e.channel for e in resumed} == set(samples)
    assert all("paused_s" in e.data for e in resumed)


def test_a_lamp_that_never_comes_back_ends_the_channels_at_their_schedule_end(tmp_path: Path) -> None:
    """The lamp fails for good 20 min into a 1 h run: the channels are suspended and stay held, and at the end
    of their schedule they end suspended (an event says so) instead of waiting forever in virtual time."""
    t0 = VIRTUAL_EPOCH_S
    samples = ["ch01", "ch02"]

    def prepare(bench: Bench) -> None:
        world = bench.simulation.world
        sun = world.light("sun")
        world.schedule(t0 + 1200.0, lambda _t: sun.set_intensity_suns(0.3 * sun.intensity_suns))

    result, path = run_monitor(tmp_path, samples, duration_s=3600.0, interval_s=30.0, prepare=prepare,
                               clear_for_s=120.0)
    assert result.status == "completed", result.reason
    story = events(path)
    for channel in samples:
        ended = [e for e in story if e.channel == channel and e.kind == "channel_ended_suspended"]
        assert len(ended) == 1 and ended[0].time_s == pytest.approx(t0 + 3600.0, abs=60.0)
        assert "channel_resumed" not in [e.kind for e in story if e.channel == channel]
        assert times(path, channel)[-1] < t0 + 1200.0 + 60.0  # no readings while the lamp was out
