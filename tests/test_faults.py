"""Injected faults behave like broken hardware, and the driver base class recovers from them."""

from __future__ import annotations

import pytest
import pyvisa.errors
from instrument_helpers import sim_driver

from drivers.base import LabInstrument, LinkPolicy
from drivers.transport import SimAdapter
from labctl.errors import ConnectionLost, InstrumentTimeout
from mock_instruments.base import Faults
from mock_instruments.keithley2450 import MockKeithley2450
from mock_instruments.presets import preset
from mock_instruments.world import World

ADDRESS = "sim://keithley2450/smu"


class Probe(LabInstrument):
    """The smallest driver: one query, nothing else."""

    def safe_state(self) -> None:
        self.write(":OUTP OFF")

    def read_current_A(self) -> float:
        return float(self.ask(":READ?"))


def make(**faults: object) -> tuple[World, MockKeithley2450, Probe]:
    world = World(seed=5)
    world.add_light("light", shutter_open=True, warmup_tau_s=0.0)
    world.add_device("cell", preset("wbg_ref"))
    world.wire("smu", "cell")
    mock = MockKeithley2450(world, "smu", faults=dict(faults), timeout_s=1.0)
    probe = sim_driver(Probe, mock, ADDRESS, world.clock)
    return world, mock, probe


def test_faults_from_a_station_dict_are_validated() -> None:
    faults = Faults.from_dict({"timeout": 2, "garble": 0.1, "drop": True})
    assert faults == Faults(timeout=2, garble=0.1, drop=1.0)
    with pytest.raises(ValueError, match="unknown fault"):
        Faults.from_dict({"timeuot": 1})
    with pytest.raises(ValueError, match="probability"):
        Faults.from_dict({"garble": 1.5})


def test_timeouts_are_retried_and_charged_to_the_clock() -> None:
    world, mock, probe = make(timeout=2)
    start = world.clock.now()
    assert probe.identify().startswith("KEITHLEY INSTRUMENTS,MODEL 2450")
    assert probe.retry_count == 2
    assert world.clock.now() - start == pytest.approx(2 * mock.timeout_s, abs=0.01)
    mock.set_faults(timeout=3)  # more than the driver's retries
    with pytest.raises(InstrumentTimeout, match="smu"):
        probe.identify()


def test_garbled_replies_are_recognised_and_asked_again() -> None:
    _, mock, probe = make()
    connection = mock.connect()
    mock.set_faults(garble=1)
    connection.write("*IDN?")
    garbage = connection.read()
    assert garbage and all(ord(c) < 32 or ord(c) == 127 for c in garbage)
    mock.set_faults(garble=1)
    assert probe.identify().startswith("KEITHLEY")
    assert probe.retry_count == 1


def test_a_dropped_connection_is_reopened_and_the_configuration_replayed() -> None:
    _, mock, probe = make()
    probe.write(":SOUR:VOLT:ILIM 0.01")
    probe.write(":SOUR:VOLT 0")
    probe.write(":OUTP ON")
    before = probe.read_current_A()
    mock.set_faults(drop=1)
    after = probe.read_current_A()
    assert probe.reconnect_count == 1
    assert after == pytest.approx(before, rel=0.01)
    dead = mock.connect()
    mock.set_faults(drop=1)
    with pytest.raises(ConnectionResetError):
        dead.write("*IDN?")
    with pytest.raises(ConnectionResetError):
        dead.read()  # a dead session stays dead
    assert mock.connect().write("*IDN?") is None  # a new session works


def test_a_permanent_drop_raises_connection_lost_naming_instrument_and_address() -> None:
    _, mock, probe = make()
    assert probe.identify()
    mock.set_faults(drop_permanent=True)
    with pytest.raises(ConnectionRefusedError):
        mock.connect()
    with pytest.raises(ConnectionLost) as info:
        probe.identify()
    assert info.value.instrument == "smu" and info.value.address == ADDRESS
    assert "smu" in str(info.value) and ADDRESS in str(info.value)


def test_physical_faults_reach_the_world() -> None:
    world, mock, probe = make()
    probe.write(":SOUR:VOLT:ILIM 0.01")
    probe.write(":OUTP ON")
    lit = probe.read_current_A()
    assert lit < -1e-3
    mock.set_faults(lamp_failure=True)
    assert world.light().failed
    assert abs(probe.read_current_A()) < 1e-6
    mock.set_faults(lamp_failure=False)
    assert probe.read_current_A() == pytest.approx(lit, rel=0.01)
    mock.set_faults({"heater_runaway": True, "open_sensor": True})
    assert world.stage.heater_runaway and world.stage.open_sensor


def test_probabilistic_faults_are_seeded() -> None:
    def pattern() -> list[bool]:
        _, mock, _ = make(timeout=0.3)
        connection = mock.connect()
        hits = []
        for _ in range(30):
            connection.write("*IDN?")
            try:
                connection.read()
                hits.append(False)
            except TimeoutError:
                hits.append(True)
        return hits

    first = pattern()
    assert first == pattern()
    assert 3 <= sum(first) <= 18


def test_a_drop_while_the_configuration_is_replayed_is_one_more_reconnect() -> None:
    _, mock, probe = make()
    probe.write(":SOUR:VOLT:ILIM 0.01")
    probe.write(":OUTP ON")
    before = probe.read_current_A()
    mock.set_faults(drop=2)  # the query, then the first setting re-applied on the new link
    assert probe.read_current_A() == pytest.approx(before, rel=0.01)
    assert probe.reconnect_count == 2
    probe.link_policy = LinkPolicy(first_interval_s=1.0, max_interval_s=4.0, give_up_after_s=30.0)
    mock.set_faults(drop=1.0)  # and then every reopened link during the replay
    with pytest.raises(ConnectionLost, match="not restored"):
        probe.read_current_A()


class VisaLikeAdapter(SimAdapter):
    """A link that, once closed, raises what pyvisa raises on a closed session (not a connection error)."""

    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()

    def _write(self, command: str, **kwargs: object) -> None:
        if self.closed:
            raise pyvisa.errors.InvalidSession()
        super()._write(command, **kwargs)


def test_a_link_that_cannot_be_reopened_yet_is_reopened_again_before_the_command_is_repeated() -> None:
    world, mock, _ = make()
    attempts: list[int] = []

    def reopen() -> SimAdapter:
        attempts.append(len(attempts) + 1)
        if len(attempts) % 2:  # the instrument is still rebooting on every other attempt
            raise ConnectionRefusedError("connection refused")
        return VisaLikeAdapter(mock)

    probe = Probe(VisaLikeAdapter(mock), "smu", address=ADDRESS, clock=world.clock, adapter_factory=reopen)
    mock.set_faults(drop=1)
    assert probe.identify().startswith("KEITHLEY")
    assert attempts == [1, 2] and probe.reconnect_count == 1

    def never() -> SimAdapter:
        raise ConnectionRefusedError("connection refused")

    probe = Probe(VisaLikeAdapter(mock), "smu", address=ADDRESS, clock=world.clock, adapter_factory=never,
                  link_policy=LinkPolicy(first_interval_s=1.0, max_interval_s=8.0, give_up_after_s=60.0))
    mock.set_faults(drop=1)
    start = world.clock.now()
    with pytest.raises(ConnectionLost) as info:
        probe.identify()
    # Attempts at 0, 1, 3, 7, 15, 23, 31, 39, 47, 55 s; the next (63 s) is past the give-up time.
    assert info.value.address == ADDRESS and "10 reconnect attempt(s)" in str(info.value)
    assert world.clock.now() - start == pytest.approx(55.0)
