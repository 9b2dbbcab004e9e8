"""Instrument-timed dwells (``dwell_voltage`` / ``dwell_current``) of every SMU driver against its simulated
instrument: the buffered readings the mock serves in one pass equal the reading-by-reading path, the
timestamps are the interval apart, the output stays at the level, progress is visible while the instrument
runs, and a cancelled run or a safe state from another thread stops the wait within one poll.

Tolerances: with the same noise draws on both paths, a held voltage's current agrees to 2e-5 relative (the
2600B prints 6 significant digits, the others 7; the device's buffered dwell equals per-reading stepping to
1e-7) and a held current's voltage to 2e-4 V (the device model's stated bound for a dwell at a constant
current). Timestamps: 1 µs, except the 2600B's printbuffer (6 significant digits: 10 µs above 1 s); the
per-reading path adds its times one by one near 1.8e9 s of virtual time, so the two paths drift apart by up
to 0.25 µs a reading.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import pytest
from instrument_helpers import cell_world, sim_driver, source_and_switch_on

from drivers.keithley2400 import Keithley2400
from drivers.keithley2450 import Keithley2450
from drivers.keithley2600 import Keithley2600
from drivers.keysight_b2900 import KeysightB2900
from drivers.smu_common import parse_count
from labctl.cancel import CancelToken, cancel_scope
from labctl.errors import InstrumentError, RunAborted
from mock_instruments.keithley2400 import MockKeithley2400
from mock_instruments.keithley2450 import MockKeithley2450
from mock_instruments.keithley2600 import MockKeithley2600
from mock_instruments.keysight_b2900 import MockKeysightB2900

#: model -> (mock, driver, the world terminal of the channel used, channel name or None)
MODELS: dict[str, tuple[Any, Any, str, str | None]] = {
    "keithley2400": (MockKeithley2400, Keithley2400, "smu", None),
    "keithley2450": (MockKeithley2450, Keithley2450, "smu", None),
    "keithley2600": (MockKeithley2600, Keithley2600, "smu:a", "a"),
    "keysight_b2900": (MockKeysightB2900, KeysightB2900, "smu:1", "1"),
}
TIME_TOLERANCE_S = {"keithley2400": 1e-6, "keithley2450": 1e-6, "keithley2600": 1e-5, "keysight_b2900": 1e-6}


def bench(model: str, seed: int = 3, **options: Any) -> tuple[Any, Any, Any]:
    """(world, mock, SourceMeter role object) on the lit wbg_ref cell of :func:`cell_world`, NPLC 0.5,
    compliance 10 mA and 2 V, output on at 1.0 V."""
    mock_class, driver_class, terminal, channel = MODELS[model]
    world = cell_world(seed)
    world.wire(terminal, "cell")
    mock = mock_class(world, "smu", **options)
    driver = sim_driver(driver_class, mock, f"sim://{model}", world.clock)
    smu = driver.channel(channel) if channel else driver
    smu.set_compliance_voltage(2.0)
    source_and_switch_on(smu, 1.0, nplc=0.5, compliance_A=0.01)
    return world, mock, smu


def passes(world: Any) -> list[int]:
    """How many readings each ``World.readings_at`` call of ``world`` serves, from now on (wrapped)."""
    calls: list[int] = []
    readings_at = world.readings_at

    def counting(terminal: str, times_s: Any) -> Any:
        calls.append(int(np.size(times_s)))
        return readings_at(terminal, times_s)

    world.readings_at = counting
    return calls


def dwell_both_ways(model: str, run: Any) -> tuple[Any, Any]:
    """``run(smu)`` on a buffered bench (asserting its readings came in one pass) and on a reading-by-reading
    one (asserting none did)."""
    results = []
    for buffered in (True, False):
        world, _, smu = bench(model, buffered_dwells=buffered)
        calls = passes(world)
        results.append(run(smu))
        assert calls == ([results[-1].time_s.size] if buffered else [])
    return results[0], results[1]


@pytest.mark.parametrize("model", MODELS)
def test_buffered_voltage_dwell_equals_the_reading_by_reading_path(model: str) -> None:
    """A 1.0 -> 1.05 V step on wbg_ref: the ionic transient moves the current by several % over 3 s, and the
    readings served in one pass follow it as the cycle-by-cycle path does."""
    fast, slow = dwell_both_ways(model, lambda smu: smu.dwell_voltage(1.05, 60, 0.05))
    assert abs(slow.current_A[-1] - slow.current_A[0]) > 0.02 * abs(slow.current_A[0])
    np.testing.assert_allclose(fast.current_A, slow.current_A, rtol=2e-5)
    np.testing.assert_allclose(fast.voltage_V, slow.voltage_V, rtol=2e-5)
    np.testing.assert_allclose(fast.time_s, slow.time_s, atol=TIME_TOLERANCE_S[model] + 60 * 0.25e-6)


@pytest.mark.parametrize("model", MODELS)
def test_buffered_current_dwell_equals_the_reading_by_reading_path(model: str) -> None:
    fast, slow = dwell_both_ways(model, lambda smu: smu.dwell_current(-1.2e-3, 40, 0.05))
    assert abs(slow.voltage_V[-1] - slow.voltage_V[0]) > 2e-3  # the voltage follows the ions
    np.testing.assert_allclose(fast.voltage_V, slow.voltage_V, atol=2e-4)
    np.testing.assert_allclose(fast.current_A, slow.current_A, rtol=2e-5)


@pytest.mark.parametrize("model", MODELS)
def test_dwell_timestamps_are_the_interval_apart_and_the_output_stays_at_the_level(model: str) -> None:
    _, _, smu = bench(model)
    result = smu.dwell_voltage(0.9, 30, 0.1)
    gaps = np.diff(result.time_s)
    if model == "keithley2400":  # the first cycle is a changed source (appendix A case I): 225 µs sooner
        assert gaps[0] == pytest.approx(0.1 + 225e-6, abs=TIME_TOLERANCE_S[model])
        gaps = gaps[1:]
    np.testing.assert_allclose(gaps, 0.1, atol=TIME_TOLERANCE_S[model])
    assert result.time_s[0] == 0 and np.all(result.current_A < 0)  # lit cell below its Voc: SMU sign
    assert result.settings["interval_s"] == 0.1 and np.isnan(result.achieved_rate_V_s)
    assert smu.measure()[0] == pytest.approx(0.9, abs=1e-3)


@pytest.mark.parametrize("model", MODELS)
def test_a_buffer_count_while_the_dwell_runs_sees_the_readings_taken_so_far(model: str) -> None:
    """The dwell's own commands sent by hand: 1.05 s into a 20-reading dwell 0.1 s apart, 10 readings are in
    the buffer (the buffered run catches up with the world before each message); at the end all 20."""
    world, _, smu = bench(model)
    plan = smu.dwell_plan("voltage", 0.95, 20, 0.1)
    write = smu.plan_writer()
    for command in [*plan.setup, *plan.start]:
        write(command)
    world.clock.sleep(1.05)
    assert parse_count(smu.ask(plan.count_query)) == 10
    world.clock.sleep(1.0)
    assert parse_count(smu.ask(plan.count_query)) == 20
    times, _, current = plan.fetch(20)
    assert times.size == 20 and np.all(current < 0)


@pytest.mark.parametrize("model", MODELS)
def test_cancelling_the_run_stops_the_dwell_at_once(model: str) -> None:
    """The dwell runs in a channel's thread on virtual time; the operator cancels the run 12.3 s into a 60 s
    dwell: the wait raises RunAborted at that virtual time (the clock's sleep is a cancellation point)."""
    world, _, smu = bench(model)
    clock = world.clock
    token = CancelToken()
    outcome: dict[str, float] = {}
    slots = [clock.reserve("dwell"), clock.reserve("operator")]

    def dwell() -> None:
        with clock.attach(slots[0]), cancel_scope(token):
            try:
                smu.dwell_voltage(1.0, 600, 0.1)
            except RunAborted:
                outcome["stopped"] = clock.now()

    def operator() -> None:
        with clock.attach(slots[1]):
            clock.sleep(12.3)
            outcome["cancelled"] = clock.now()
            token.cancel("abort button")

    run_threads(dwell, operator)
    assert 0.0 <= outcome["stopped"] - outcome["cancelled"] <= 0.5
    assert smu.source_enabled is True  # a cancelled wait leaves the instrument to the safe state that follows
    smu.safe_state()
    assert smu.source_enabled is False


@pytest.mark.parametrize("model", MODELS)
def test_safe_state_from_another_thread_stops_the_dwell_within_one_poll(model: str) -> None:
    world, _, smu = bench(model)
    clock = world.clock
    outcome: dict[str, Any] = {}
    slots = [clock.reserve("dwell"), clock.reserve("interlock")]

    def dwell() -> None:
        with clock.attach(slots[0]):
            try:
                smu.dwell_voltage(1.0, 600, 0.1)
            except InstrumentError as exc:
                outcome["stopped"], outcome["error"] = clock.now(), str(exc)

    def interlock() -> None:
        with clock.attach(slots[1]):
            clock.sleep(7.7)
            outcome["safe"] = clock.now()
            smu.safe_state()

    run_threads(dwell, interlock)
    assert 0.0 <= outcome["stopped"] - outcome["safe"] <= 0.5  # one poll of the buffer wait
    assert "the instrument was put in its safe state" in outcome["error"]
    assert smu.source_enabled is False


def run_threads(*targets: Any) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)


@pytest.mark.parametrize("model", MODELS)
def test_a_dwell_in_compliance_reads_the_limit(model: str) -> None:
    """At 0 V the lit cell would deliver 1.73 mA; with a 1 mA limit every reading sits at the limit."""
    _, _, smu = bench(model)
    smu.set_compliance_current(1e-3)
    result = smu.dwell_voltage(0.0, 20, 0.05)
    np.testing.assert_allclose(result.current_A, -1e-3, rtol=1e-3)


@pytest.mark.parametrize("model", MODELS)
def test_a_limit_reached_during_a_dwell_clamps_the_readings(model: str) -> None:
    """0 V, 2 mA limit: about 1.7 mA at 1 sun; the light goes to 1.5 suns 1 s into a 2 s dwell (2.6 mA
    wanted): the readings from then on sit at the limit, and the world drives the device at it afterwards."""
    world, _, smu = bench(model)
    smu.set_compliance_current(2e-3)
    plan = smu.dwell_plan("voltage", 0.0, 20, 0.1)
    for command in [*plan.setup, *plan.start]:
        smu.plan_writer()(command)
    world.clock.sleep(1.0)
    world.light("light").set_intensity_suns(1.5)
    world.clock.sleep(1.1)
    assert parse_count(smu.ask(plan.count_query)) == 20
    _, _, current = plan.fetch(20)
    assert np.all((-1.9e-3 < current[:10]) & (current[:10] < -1.5e-3))
    np.testing.assert_allclose(current[11:], -2e-3, rtol=1e-3)
    # held at the voltage that carried the limit when the run ended, not at 0 V (2.6 mA)
    assert 2e-3 <= -world.current_A(MODELS[model][2]) < 2.1e-3


@pytest.mark.parametrize("model", MODELS)
def test_a_single_reading_dwell(model: str) -> None:
    _, _, smu = bench(model)
    result = smu.dwell_voltage(1.0, 1, 0.05)
    assert result.time_s.tolist() == [0.0] and result.current_A[0] < 0


def test_a_checkpoint_while_a_dwell_runs_does_not_break_it(caplog: pytest.LogCaptureFixture) -> None:
    """A checkpoint brings every device up to the clock: the world first serves the readings the dwell has
    not served yet, so they are the device's state at their own instants, the same as without the checkpoint."""
    currents = []
    for snapshot in (False, True):
        world, _, smu = bench("keithley2450")
        plan = smu.dwell_plan("voltage", 0.95, 20, 0.1)
        for command in [*plan.setup, *plan.start]:
            smu.plan_writer()(command)
        world.clock.sleep(1.05)
        with caplog.at_level(logging.WARNING):
            if snapshot:
                world.state_dict()  # what a checkpoint of a simulated run saves
            world.clock.sleep(1.0)
            assert parse_count(smu.ask(plan.count_query)) == 20
        _, _, current = plan.fetch(20)
        assert np.all(np.isfinite(current)) and np.all(current < 0)
        currents.append(current)
    assert "buffered reading(s) not yet served" not in caplog.text
    np.testing.assert_allclose(currents[1], currents[0], rtol=1e-9)
