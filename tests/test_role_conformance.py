"""Every driver does what its role and its capabilities promise, checked at run time on its mock — not by
name: procedures validate against the capabilities, so a capability that the driver does not honour (a range
it refuses, a sweep length it cannot take, a point period it cannot keep) would pass validation and fail on
the bench."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from labctl.bench import Bench
from labctl.clock import VirtualClock
from labctl.errors import LabctlError
from labctl.roles import (
    LCRMeter,
    LCRMeterCapabilities,
    LightSource,
    LightSourceCapabilities,
    SourceMeter,
    SourceMeterCapabilities,
    Switch,
    SwitchCapabilities,
    TemperatureController,
    TemperatureControllerCapabilities,
)
from labctl.station import Station

STATION = Station.load("sim")
BY_ROLE: dict[str, list[str]] = {}
for _name in STATION.instruments:
    BY_ROLE.setdefault(type(STATION.capabilities(_name)).__name__, []).append(_name)


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    connected = Bench.connect(STATION, list(STATION.instruments), clock=VirtualClock())
    yield connected
    connected.close()


def _smu_roles(bench: Bench, name: str, caps: SourceMeterCapabilities) -> list[Any]:
    driver = bench.instrument(name)
    return [driver.channel(c) for c in caps.channels] if caps.channels else [driver]


def test_every_instrument_of_the_station_has_a_role() -> None:
    assert sum(len(v) for v in BY_ROLE.values()) == len(STATION.instruments)


@pytest.mark.parametrize("name", BY_ROLE["SourceMeterCapabilities"])
def test_source_meters_honour_their_capabilities(bench: Bench, name: str) -> None:
    caps = STATION.capabilities(name)
    assert isinstance(caps, SourceMeterCapabilities)
    for smu in _smu_roles(bench, name, caps):
        assert isinstance(smu, SourceMeter)
        for nplc in caps.nplc_range:
            smu.set_nplc(nplc)
        with pytest.raises((LabctlError, ValueError)):
            smu.set_nplc(caps.nplc_range[1] * 2)
        smu.set_nplc(0.1)
        smu.set_compliance_current(1e-3)
        smu.source_voltage(0.5)
        smu.output_on()
        voltage, current = smu.measure()
        assert isinstance(voltage, float) and isinstance(current, float)
        # the shortest point period the capabilities promise (with a margin for the model's own rounding) is
        # kept by the instrument's own timing
        period = 1.05 * caps.min_point_period_s(0.1)
        result = smu.sweep_voltage(np.linspace(0.0, 0.2, 21), period)
        assert len(result.time_s) == 21 and np.all(np.diff(result.time_s) > 0)
        assert result.achieved_rate_V_s == pytest.approx(0.01 / period, rel=0.03)
        with pytest.raises(LabctlError, match="point"):
            smu.sweep_voltage(np.linspace(0.0, 0.2, caps.max_sweep_points + 1), period)
        smu.output_off()
        smu.safe_state()


@pytest.mark.parametrize("name", BY_ROLE["LCRMeterCapabilities"])
def test_lcr_meters_honour_their_capabilities(bench: Bench, name: str) -> None:
    caps = STATION.capabilities(name)
    lcr = bench.instrument(name)
    assert isinstance(caps, LCRMeterCapabilities) and isinstance(lcr, LCRMeter)
    bench.select("fapbi3")
    for frequency in caps.frequency_range_Hz:
        lcr.set_frequency(frequency)
    with pytest.raises((LabctlError, ValueError)):
        lcr.set_frequency(caps.frequency_range_Hz[1] * 2)
    lcr.set_frequency(1e4)
    capacitance, _conductance = lcr.measure()
    assert capacitance > 0
    captured = lcr.capture_transient(1.0, caps.max_transient_points)
    assert 2 <= len(captured.time_s) <= caps.max_transient_points
    assert np.min(np.diff(captured.time_s)) >= 0.95 * caps.min_transient_interval_s
    lcr.safe_state()


@pytest.mark.parametrize("name", BY_ROLE["TemperatureControllerCapabilities"])
def test_temperature_controllers_honour_their_capabilities(bench: Bench, name: str) -> None:
    caps = STATION.capabilities(name)
    controller = bench.instrument(name)
    assert isinstance(caps, TemperatureControllerCapabilities) and isinstance(controller, TemperatureController)
    reading = controller.read_temperature_K()
    assert caps.temperature_range_K[0] <= reading <= caps.temperature_range_K[1]
    controller.set_setpoint_K(300.0)
    for heater_range in caps.heater_ranges:
        controller.set_heater_range(heater_range)
    controller.set_ramp_rate_K_min(caps.ramp_rate_range_K_min[1])
    controller.heater_off()
    controller.safe_state()


@pytest.mark.parametrize("name", BY_ROLE["LightSourceCapabilities"])
def test_light_sources_honour_their_capabilities(bench: Bench, name: str) -> None:
    caps = STATION.capabilities(name)
    light = bench.instrument(name)
    assert isinstance(caps, LightSourceCapabilities) and isinstance(light, LightSource)
    for suns in caps.intensity_range_suns:
        if suns > 0:
            light.set_intensity_suns(suns)
    with pytest.raises((LabctlError, ValueError)):
        light.set_intensity_suns(caps.intensity_range_suns[1] * 2)
    light.set_intensity_suns(caps.intensity_range_suns[1])
    light.open_shutter()
    bench.clock.sleep(30.0)
    assert light.read_irradiance_mW_cm2() == pytest.approx(100.0 * caps.intensity_range_suns[1], rel=0.1)
    light.safe_state()


@pytest.mark.parametrize("name", BY_ROLE["SwitchCapabilities"])
def test_switches_honour_their_capabilities(bench: Bench, name: str) -> None:
    caps = STATION.capabilities(name)
    switch = bench.instrument(name)
    assert isinstance(caps, SwitchCapabilities) and isinstance(switch, Switch)
    switch.select_channel(1)
    switch.select_channel(caps.channel_count)
    with pytest.raises((LabctlError, ValueError)):
        switch.select_channel(caps.channel_count + 1)
    switch.open_all()
    switch.safe_state()
