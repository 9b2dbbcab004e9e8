"""The simulated bench's world: wiring and switches, light, cryostat stage, lazy time, reproducible noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labctl.clock import VirtualClock
from mock_instruments.cryostat import CryostatStage
from mock_instruments.presets import preset
from mock_instruments.world import World

JSC_WBG_REF_MA_CM2 = 17.26  # SCIENCE.md


@pytest.fixture
def world() -> World:
    w = World(seed=3)
    w.add_light("light", warmup_tau_s=0.0, drift_fraction=0.0)
    w.add_device("pix1", preset("wbg_ref"))
    w.add_device("pix2", preset("wbg_5avai"))
    return w


class PID:
    """A plain PID with anti-windup, the kind a temperature controller's mock runs on the stage."""

    def __init__(self, stage: CryostatStage, setpoint_K: float, kp: float, ki: float, period_s: float
                 ) -> None:
        self.stage, self.setpoint_K, self.kp, self.ki, self.period_s = stage, setpoint_K, kp, ki, period_s
        self.integral = 0.0
        self.calls = 0

    def __call__(self, t_s: float) -> None:
        self.calls += 1
        error = self.setpoint_K - self.stage.temperature_K
        limit = self.stage.heater_max_W / self.ki
        self.integral = min(max(self.integral + error * self.period_s, 0.0), limit)
        self.stage.set_heater_power_W(self.kp * error + self.ki * self.integral)


def test_wires_and_a_switch_route_terminals_to_devices(world: World) -> None:
    world.add_switch("mux", "smu", {1: "pix1", 2: "pix2"})
    world.wire("probe", "pix1")
    assert world.device_at("smu") is None  # all paths open at first
    world.select_switch("mux", 1)
    assert world.device_at("smu") == ("pix1", world.device("pix1"))
    world.apply_voltage("smu", 0.3)
    assert world.voltage_V("probe") == pytest.approx(0.3)  # pix1 is held at 0.3 V by the SMU
    world.select_switch("mux", 2)
    assert world.device_at("smu")[0] == "pix2"  # type: ignore[index]
    assert world.voltage_V("smu") == pytest.approx(0.3)
    assert world.voltage_V("probe") != pytest.approx(0.3)  # pix1 is now open circuit
    world.select_switch("mux", None)
    assert world.device_at("smu") is None and world.current_A("smu") == 0.0
    with pytest.raises(KeyError):
        world.select_switch("mux", 3)
    with pytest.raises(KeyError):
        world.wire("lcr", "nonexistent")
    with pytest.raises(ValueError):
        world.wire("smu", "pix1")  # the switch's common terminal


def test_opening_the_shutter_raises_the_photocurrent(world: World) -> None:
    world.wire("smu", "pix1")
    world.apply_voltage("smu", 0.0)
    area = world.device("pix1").area_cm2
    assert abs(world.current_A("smu")) < 1e-9  # dark, 0 V
    world.light().open_shutter()
    lit = world.current_A("smu")
    assert lit < 0  # SMU sign: current flows out of the cell
    assert -lit / (area * 1e-3) == pytest.approx(JSC_WBG_REF_MA_CM2, rel=0.1)
    world.light().set_intensity_suns(0.5)
    assert world.current_A("smu") == pytest.approx(0.5 * lit, rel=0.05)
    world.light().close_shutter()
    assert abs(world.current_A("smu")) < 1e-9


def test_current_sourcing_sets_the_voltage_the_device_develops(world: World) -> None:
    world.wire("smu", "pix1")
    world.light().open_shutter()
    world.apply_current("smu", 0.0)
    voc = world.voltage_V("smu")
    assert voc is not None and 1.0 < voc < 1.4
    area = world.device("pix1").area_cm2
    world.apply_current("smu", -0.5 * JSC_WBG_REF_MA_CM2 * area * 1e-3)
    v_half = world.voltage_V("smu")
    assert v_half is not None and 0.5 < v_half < voc
    world.clock.sleep(30.0)  # sub-stepped at constant current: the voltage stays sane
    v_later = world.voltage_V("smu")
    assert v_later is not None and 0.0 < v_later < voc + 0.1


def test_lamp_warm_up_drift_failure_and_reference_cell() -> None:
    world = World(seed=1)
    light = world.add_light("sun", warmup_tau_s=60.0, drift_fraction=0.01, lamp_on=False, shutter_open=True)
    assert light.reference_mW_cm2() == 0.0
    light.switch_lamp(True)
    cold = light.reference_mW_cm2()
    assert 60 < cold < 80  # a xenon arc starts at ~70 %
    world.clock.sleep(600.0)
    warm = np.array([light.reference_mW_cm2() for _ in range(50)])
    assert warm.mean() == pytest.approx(100.0, abs=2.0)  # warm, within the drift
    assert 0 < warm.std() < 1.0  # seeded noise
    light.set_failed(True)
    assert light.reference_mW_cm2() == 0.0


def test_the_stage_follows_its_thermal_limits_exactly() -> None:
    world = World(seed=0)
    stage = world.stage
    world.clock.sleep(1e5)
    world.sync()
    assert stage.temperature_K == pytest.approx(80.05, abs=0.1)  # LN2 link, heater off
    stage.set_heater_power_W(stage.heater_max_W)
    split = CryostatStage(temperature_K=stage.temperature_K)
    split.set_heater_power_W(split.heater_max_W)
    world.clock.sleep(900.0)
    world.sync()  # one exact step ...
    for _ in range(900):
        split.advance_to(split.time_s + 1.0)  # ... equals 900 small ones
    assert stage.temperature_K == pytest.approx(split.temperature_K, abs=1e-9)
    world.clock.sleep(1e5)
    world.sync()
    assert stage.temperature_K > 400.0


def test_pid_on_the_stage_ramps_overshoots_and_settles() -> None:
    world = World(seed=0)
    world.add_device("cell", preset("fapbi3"), location="stage", light=None)
    stage = world.add_stage(temperature_K=80.05)
    pid = PID(stage, 300.0, kp=10.0, ki=0.05, period_s=0.5)
    stage.attach_controller(pid, period_s=0.5)
    times, sensor, sample = [], [], []
    for _ in range(1500):
        world.clock.sleep(2.0)
        world.sync()
        times.append(world.time_s)
        sensor.append(stage.temperature_K)
        sample.append(world.conditions("cell")[1])
    t, T, Td = np.array(times) - times[0], np.array(sensor), np.array(sample)
    rising = T < 290
    assert np.all(Td[rising][5:] < T[rising][5:])  # the sample lags the sensor while heating
    rate_K_min = 60 * (T[60] - T[30]) / (t[60] - t[30])
    assert 10 < rate_K_min < 60  # a realistic LN2-cryostat ramp
    overshoot = T.max() - 300.0
    assert 0.5 < overshoot < 15.0
    assert abs(T[-1] - 300.0) < 0.05 and abs(Td[-1] - 300.0) < 0.05
    assert world.conditions("cell")[1] == stage.sample_temperature_K
    calls_before = pid.calls
    world.clock.sleep(1000 * 3600.0)  # a settled loop coasts: 1000 h costs next to nothing
    world.sync()
    # 1000 h of 0.5 s control periods would be 7.2 million controller calls; a settled loop skips them.
    assert pid.calls - calls_before < 100
    assert stage.temperature_K == pytest.approx(300.0, abs=0.01)


def test_device_state_advances_with_the_clock_not_with_reads(world: World) -> None:
    world.wire("smu", "pix1")
    world.light().open_shutter()
    world.apply_voltage("smu", 1.4)  # pre-bias beyond Voc: ions pile up
    world.clock.sleep(60.0)
    world.apply_voltage("smu", 0.9)
    right_after = world.current_A("smu")
    assert [world.current_A("smu") for _ in range(20)] == [right_after] * 20  # reads do not move time
    world.clock.sleep(120.0)
    assert world.current_A("smu") != pytest.approx(right_after, rel=1e-3)  # ions relaxed


def test_scheduled_events_fire_at_their_time_with_devices_exact(world: World) -> None:
    world.wire("smu", "pix1")
    world.light().open_shutter()
    t0 = world.time_s
    seen: list[tuple[float, float]] = []

    def step(t_s: float) -> None:
        seen.append((t_s - t0, world.time_s - t0))
        world.apply_voltage("smu", 0.5)

    world.schedule(t0 + 0.25, step)
    cancelled = world.schedule(t0 + 0.5, step)
    world.cancel(cancelled)
    world.clock.sleep(1.0)
    assert world.current_A("smu") == world.current_at_voltage_A("smu", 0.5)
    assert seen == [(pytest.approx(0.25), pytest.approx(0.25))]


def test_noise_is_seeded_and_reproducible() -> None:
    def run(seed: int) -> list[float]:
        world = World(seed=seed)
        light = world.add_light("light", shutter_open=True)
        values = [light.reference_mW_cm2() for _ in range(5)]
        values += [world.stage.read_sensor_K() for _ in range(5)]
        values += list(world.rng_for("smu").standard_normal(3))
        return values

    assert run(7) == run(7)
    assert run(7) != run(8)
    world = World(seed=7)
    assert world.rng_for("a").random() != world.rng_for("b").random()


def test_physical_faults_reach_the_stage_and_lights() -> None:
    world = World(seed=0)
    world.add_light("light", shutter_open=True)
    world.set_fault("open_sensor", True)
    assert math.isnan(world.stage.read_sensor_K())
    world.set_fault("heater_runaway", True)
    world.clock.sleep(1e4)
    world.sync()
    assert world.stage.temperature_K > 400  # full power whatever was asked
    world.set_fault("lamp_failure", True, target="light")
    assert world.light().reference_mW_cm2() == 0.0
    with pytest.raises(ValueError):
        world.set_fault("meteor_strike")


def test_a_saved_world_resumes_where_it_was(world: World) -> None:
    world.wire("smu", "pix1")
    world.light().open_shutter()
    world.apply_voltage("smu", 1.2)
    world.clock.sleep(10.0)
    state = world.state_dict()
    current = world.current_A("smu")
    world.clock.sleep(100.0)
    resumed = World(clock=VirtualClock(state["time_s"]), seed=3)
    resumed.add_light("light", warmup_tau_s=0.0, drift_fraction=0.0)
    resumed.add_device("pix1", preset("wbg_ref"))
    resumed.add_device("pix2", preset("wbg_5avai"))
    resumed.wire("smu", "pix1")
    resumed.load_state(state)
    resumed.apply_voltage("smu", 1.2)
    assert resumed.current_A("smu") == pytest.approx(current, rel=1e-9)
