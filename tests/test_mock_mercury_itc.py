"""The Mercury iTC mock, driven by raw READ/SET lines from the Mercury iTC Handbook ("Command reference
guide"), and the real driver against it: the iTC's PID on the world's stages (a room-temperature hot stage
and the LN2 cryostat), faults and the TCP server as on hardware.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from instrument_helpers import RawBench, check_permanent_drop, driver_over_tcp, sim_driver

from drivers.mercury_itc import MercuryITC
from labctl.errors import InstrumentError
from labctl.roles import TemperatureController
from mock_instruments.mercury_itc import MockMercuryITC
from mock_instruments.presets import preset
from mock_instruments.registry import mock_class
from mock_instruments.world import World

ADDRESS = "sim://mercury_itc/hotstage"
LOOP = "DEV:MB1.T1:TEMP:LOOP"


class Bench(RawBench):
    """A wide-gap cell on a hot stage in room air (20 W heater), driven by a Mercury iTC."""

    def __init__(self, seed: int = 6, stage: str = "hotstage", **options: object) -> None:
        self.world = World(seed=seed)
        if stage != "stage":
            self.world.add_stage(stage, reservoir_K=298.15, heater_max_W=20.0)
        self.stage = self.world.stage_named(stage)
        self.cell = self.world.add_device("cell", preset("wbg_ref"), location=stage)
        self.itc = MockMercuryITC(self.world, "hotstage", stage=stage, **options)
        self.conn = self.itc.connect()

    def driver(self, reconnect: bool = False, **options: Any) -> MercuryITC:
        return sim_driver(MercuryITC, self.itc, ADDRESS, self.world.clock, reconnect=reconnect, **options)


# ------------------------------------------------------------------------------------------- protocol
def test_identification_catalogue_and_readings(bench: Bench) -> None:
    assert bench.ask("*IDN?").startswith("IDN:OXFORD INSTRUMENTS:MERCURY ITC:")
    assert bench.ask("READ:SYS:CAT") == "STAT:SYS:CAT:DEV:MB0.H1:HTR:DEV:MB1.T1:TEMP"
    reply = bench.ask("READ:DEV:MB1.T1:TEMP:SIG:TEMP")
    assert reply.startswith("STAT:DEV:MB1.T1:TEMP:SIG:TEMP:") and reply.endswith("K")
    assert float(reply.split(":")[-1][:-1]) == pytest.approx(298.15, abs=0.05)
    assert bench.ask("READ:DEV:MB1.T1:TEMP:SIG:TEMP?").startswith("STAT:DEV:MB1.T1:TEMP:SIG:TEMP:2")
    assert bench.ask("READ:DEV:MB1.T1:TEMP:TYPE") == "STAT:DEV:MB1.T1:TEMP:TYPE:DDE"
    assert bench.ask("READ:DEV:MB1.T1:TEMP:CAL:HOTL") == "STAT:DEV:MB1.T1:TEMP:CAL:HOTL:500.0000K"
    assert bench.ask(f"READ:{LOOP}:HTR") == f"STAT:{LOOP}:HTR:MB0.H1"
    assert bench.ask(f"READ:{LOOP}:ENAB") == f"STAT:{LOOP}:ENAB:OFF"
    assert bench.ask(f"READ:{LOOP}:P") == f"STAT:{LOOP}:P:5.0"
    assert bench.ask(f"READ:{LOOP}:P:I:D") == f"STAT:{LOOP}:P:5.0:I:1.0:D:0.0"
    assert bench.ask("READ:DEV:MB1.T1:TEMP:SIG:VOLT").endswith("mV")  # a diode near 0.56 V, in mV
    assert bench.ask("READ:DEV:MB1.T1:TEMP:SIG:CURR") == "STAT:DEV:MB1.T1:TEMP:SIG:CURR:10.0000uA"
    assert bench.ask("READ:DEV:MB0.H1:HTR:VLIM") == "STAT:DEV:MB0.H1:HTR:VLIM:40"
    assert bench.ask("READ:DEV:MB0.H1:HTR:RES") == "STAT:DEV:MB0.H1:HTR:RES:80"
    assert bench.ask("READ:DEV:MB0.H1:HTR:PMAX") == "STAT:DEV:MB0.H1:HTR:PMAX:20.0000"  # = the stage's heater
    assert bench.ask("READ:SYS:TIME").startswith("STAT:SYS:TIME:")


@pytest.mark.parametrize(
    ("command", "reply"),
    [("READ:DEV:MB1.T1:TEMP:SIG:FOO", "STAT:DEV:MB1.T1:TEMP:SIG:FOO:INVALID"),
     ("READ:DEV:MB1.T1:TEMPERATURE:SIG:TEMP", "STAT:DEV:MB1.T1:TEMPERATURE:INVALID"),  # > 4 characters
     ("READ:DEV:DB9.T1:TEMP:SIG:TEMP", "STAT:DEV:DB9.T1:TEMP:SIG:TEMP:NOT_FOUND"),
     ("READ:DEV:MB0.H1:TEMP:SIG:TEMP", "STAT:DEV:MB0.H1:TEMP:SIG:TEMP:N/A"),
     ("READ:DEV:MB1.T1:HTR:VLIM", "STAT:DEV:MB1.T1:HTR:VLIM:N/A"),
     ("READ:DEV:MB1.H1:HTR:SIG:POWR", "STAT:DEV:MB1.H1:HTR:SIG:POWR:NOT_FOUND"),  # no such heater
     ("GET:DEV:MB1.T1:TEMP:SIG:TEMP", "GET:INVALID"),
     ("read:DEV:MB1.T1:TEMP:SIG:TEMP", "read:INVALID"),  # case-sensitive
     ("*RST", "*RST:INVALID"),
     (f"SET:{LOOP}:TSET:5000", f"STAT:SET:{LOOP}:TSET:5000:INVALID"),  # above the hot limit
     (f"SET:{LOOP}:TSET:abc", f"STAT:SET:{LOOP}:TSET:abc:INVALID"),
     (f"SET:{LOOP}:HSET:150", f"STAT:SET:{LOOP}:HSET:150:INVALID"),
     (f"SET:{LOOP}:ENAB:YES", f"STAT:SET:{LOOP}:ENAB:YES:INVALID"),
     (f"SET:{LOOP}:PSET:5", f"STAT:SET:{LOOP}:PSET:INVALID"),  # 2011 firmware names
     (f"SET:{LOOP}:TSET", f"STAT:SET:{LOOP}:TSET:INVALID"),  # no value
     ("SET:DEV:MB0.H1:HTR:PMAX:4", "STAT:SET:DEV:MB0.H1:HTR:PMAX:4:INVALID"),  # read-only
     ("SET:DEV:MB1.T1:TEMP:SIG:TEMP:300", "STAT:SET:DEV:MB1.T1:TEMP:SIG:TEMP:300:INVALID"),
     (f"SET:{LOOP}:HTR:DB3.H1", f"STAT:SET:{LOOP}:HTR:DB3.H1:INVALID"),  # not installed
     (f"SET:{LOOP}:HTR:MB1.H1", f"STAT:SET:{LOOP}:HTR:MB1.H1:INVALID"),
     ("SET:DEV:MB0.H1:HTR:RES:5", "STAT:SET:DEV:MB0.H1:HTR:RES:5:INVALID")],
)
def test_invalid_responses(bench: Bench, command: str, reply: str) -> None:
    assert bench.ask(command) == reply
    assert bench.ask(f"READ:{LOOP}:TSET") == f"STAT:{LOOP}:TSET:298.1000K"  # nothing changed


def test_settings_are_echoed_and_read_back(bench: Bench) -> None:
    for noun, value, read in [("TSET", "310.5", "310.5000K"), ("RSET", "2.5", "2.5000K/m"),
                              ("RENA", "ON", "ON"), ("P", "8", "8.0"), ("I", "2", "2.0"),
                              ("D", "0.5", "0.5"), ("HSET", "12.5", "12.5"), ("HTR", "None", "None"),
                              ("HTR", "MB0.H1", "MB0.H1"), ("PIDT", "OFF", "OFF")]:
        assert bench.ask(f"SET:{LOOP}:{noun}:{value}") == f"STAT:SET:{LOOP}:{noun}:{value}:VALID"
        assert bench.ask(f"READ:{LOOP}:{noun}") == f"STAT:{LOOP}:{noun}:{read}"
    assert bench.ask("SET:DEV:MB0.H1:HTR:VLIM:20") == "STAT:SET:DEV:MB0.H1:HTR:VLIM:20:VALID"
    assert bench.ask("READ:DEV:MB0.H1:HTR:PMAX") == "STAT:DEV:MB0.H1:HTR:PMAX:5.0000"  # V²/R
    # several nouns of one group in one line, each with its verdict
    assert bench.ask(f"SET:{LOOP}:P:6:I:3:D:999") == f"STAT:SET:{LOOP}:P:6:VALID:I:3:VALID:D:999:INVALID"
    assert bench.ask(f"READ:{LOOP}:P:I:D") == f"STAT:{LOOP}:P:6.0:I:3.0:D:0.5"


def test_manual_heater_output_heats_the_stage(bench: Bench) -> None:
    bench.ask(f"SET:{LOOP}:HSET:50")  # manual (ENAB OFF): 50 % of 40 V into 80 Ω = 5 W
    bench.settle(1.0)
    assert bench.stage.heater_power_W == pytest.approx(5.0)
    assert bench.ask("READ:DEV:MB0.H1:HTR:SIG:POWR") == "STAT:DEV:MB0.H1:HTR:SIG:POWR:5.0000W"
    assert bench.ask("READ:DEV:MB0.H1:HTR:SIG:VOLT") == "STAT:DEV:MB0.H1:HTR:SIG:VOLT:20.0000V"
    assert bench.ask("SET:DEV:MB0.H1:HTR:SIG:POWR:10") == "STAT:SET:DEV:MB0.H1:HTR:SIG:POWR:10:VALID"
    bench.settle(1.0)
    assert bench.stage.heater_power_W == pytest.approx(10.0)
    assert bench.ask(f"READ:{LOOP}:HSET") == f"STAT:{LOOP}:HSET:50"  # the manual setting, not the output
    bench.settle(600.0)
    assert bench.stage.temperature_K > 315.0


def test_ramped_setpoint_and_automatic_control(bench: Bench) -> None:
    for noun in ("RSET:2", "RENA:ON", "TSET:320", "ENAB:ON"):
        assert bench.ask(f"SET:{LOOP}:{noun}").endswith(":VALID")
    temperatures = []
    for _ in range(40):
        bench.settle(30.0)
        temperatures.append(float(bench.ask("READ:DEV:MB1.T1:TEMP:SIG:TEMP").split(":")[-1][:-1]))
    ramp = np.array(temperatures[:16])
    assert np.all(np.diff(ramp) > 0.5) and np.all(np.diff(ramp) < 1.5)  # follows 2 K/min = 1 K per 30 s
    assert temperatures[-1] == pytest.approx(320.0, abs=0.1)
    assert max(temperatures) < 321.0


def test_board_layout_and_hard_wired_loops() -> None:
    bench = Bench(daughter_boards=["DB6.T1", "DB1.H1", "DB5.T1"])
    assert bench.ask("READ:SYS:CAT") == ("STAT:SYS:CAT:DEV:MB0.H1:HTR:DEV:MB1.T1:TEMP:DEV:DB1.H1:HTR:"
                                         "DEV:DB5.T1:TEMP:DEV:DB6.T1:TEMP")
    assert bench.ask(f"READ:{LOOP}:HTR") == f"STAT:{LOOP}:HTR:MB0.H1"
    assert bench.ask("READ:DEV:DB6.T1:TEMP:LOOP:HTR") == "STAT:DEV:DB6.T1:TEMP:LOOP:HTR:DB1.H1"
    assert bench.ask("READ:DEV:DB5.T1:TEMP:LOOP:HTR") == "STAT:DEV:DB5.T1:TEMP:LOOP:HTR:None"  # no heater wired
    assert bench.ask("READ:DEV:DB1.H1:HTR:RES") == "STAT:DEV:DB1.H1:HTR:RES:50"
    with pytest.raises(ValueError, match=r"DB4\.G1"):
        Bench(daughter_boards=["DB4.G1"])  # gas-flow boards are not simulated
    with pytest.raises(ValueError, match="not installed"):
        Bench(loop_heaters={"MB1.T1": "DB2.H1"})


def test_hset_is_the_manual_setting_not_the_pid_output(bench: Bench) -> None:
    for noun in ("TSET:320", "ENAB:ON"):
        assert bench.ask(f"SET:{LOOP}:{noun}").endswith(":VALID")
    bench.settle(60.0)
    assert bench.stage.heater_power_W > 10.0  # the PID heats at full power towards 320 K
    assert bench.ask(f"READ:{LOOP}:HSET") == f"STAT:{LOOP}:HSET:0"
    volts = float(bench.ask("READ:DEV:MB0.H1:HTR:SIG:VOLT").split(":")[-1][:-1])
    assert volts == pytest.approx(np.sqrt(bench.stage.heater_power_W * 80.0), rel=1e-4)
    assert bench.ask("SET:DEV:MB0.H1:HTR:SIG:VOLT:5") == "STAT:SET:DEV:MB0.H1:HTR:SIG:VOLT:5:DENIED"


def test_the_registry_finds_the_mock() -> None:
    assert mock_class("mercury_itc") is MockMercuryITC


# ---------------------------------------------------------------------------------- driver, in process
def test_driver_brings_the_hot_stage_and_device_to_330K(bench: Bench) -> None:
    itc = bench.driver()
    assert isinstance(itc, TemperatureController)
    assert itc.identify().startswith("IDN:OXFORD INSTRUMENTS:MERCURY ITC")
    itc.set_pid(5.0, 1.0, 0.0)
    itc.set_setpoint_K(330.0)
    itc.set_heater_range("high")
    readings = []
    for _ in range(90):  # half an hour of virtual time
        bench.world.clock.sleep(20.0)
        readings.append(itc.read_temperature_K())
    assert max(readings) - 330.0 < 1.0  # bounded overshoot
    assert itc.wait_until_stable(330.0, tolerance_K=0.1, window_s=120.0, timeout_s=1800.0)
    assert bench.stage.sample_temperature_K == pytest.approx(330.0, abs=0.05)
    power = itc.heater_power_W()
    assert power == pytest.approx((330.0 - 298.15) * 0.2535, rel=0.02)  # what the stage loses at 330 K
    assert itc.heater_output_percent() == pytest.approx(100 * np.sqrt(power / 20.0), rel=1e-3)
    snapshot = itc.settings_snapshot()
    assert snapshot["setpoint_K"] == 330.0 and snapshot["heater_auto"] is True
    itc.safe_state()
    assert bench.ask(f"READ:{LOOP}:ENAB") == f"STAT:{LOOP}:ENAB:OFF"
    bench.settle(1.0)
    assert bench.stage.heater_power_W == 0.0


def test_driver_cools_the_cryostat_to_250K_with_a_ramp() -> None:
    bench = Bench(stage="stage")
    itc = bench.driver(heater_voltage_limits_V={"low": 4.0, "medium": 12.6, "high": 40.0})
    itc.set_setpoint_K(298.0)
    itc.set_heater_range("high")
    assert itc.wait_until_stable(298.0, 0.2, 60.0, 1800.0)
    itc.set_ramp_rate_K_min(10.0)
    itc.set_setpoint_K(250.0)
    readings = []
    for _ in range(60):
        bench.world.clock.sleep(20.0)
        readings.append(itc.read_temperature_K())
    assert 250.0 - min(readings) < 1.5
    assert itc.wait_until_stable(250.0, tolerance_K=0.1, window_s=60.0, timeout_s=1800.0)
    assert bench.stage.sample_temperature_K == pytest.approx(250.0, abs=0.05)
    assert bench.ask("READ:DEV:MB0.H1:HTR:VLIM") == "STAT:DEV:MB0.H1:HTR:VLIM:40"
    itc.set_heater_range("low")  # 4 V into 16 Ω: 1 W is not enough to hold 250 K
    bench.settle(1800.0)
    assert bench.stage.temperature_K < 200.0


def test_driver_heats_with_the_heater_of_a_daughter_board_loop() -> None:
    bench = Bench(daughter_boards=["DB6.T1", "DB1.H1"], sensor="DB6.T1")
    itc = bench.driver(sensor="DB6.T1")
    assert itc.catalogue() == {"MB0.H1": "HTR", "MB1.T1": "TEMP", "DB1.H1": "HTR", "DB6.T1": "TEMP"}
    assert itc.loop_heater() == "DB1.H1"
    itc.set_setpoint_K(320.0)
    itc.set_heater_range("high")
    assert itc.wait_until_stable(320.0, tolerance_K=0.1, window_s=60.0, timeout_s=3600.0)
    power = itc.heater_power_W()
    assert power == pytest.approx(bench.stage.heater_power_W, rel=1e-3) and power > 1.0
    assert bench.ask("READ:DEV:MB0.H1:HTR:SIG:POWR") == "STAT:DEV:MB0.H1:HTR:SIG:POWR:0.0000W"
    assert itc.settings_snapshot()["heater"] == "DB1.H1"


def test_driver_refuses_to_heat_a_loop_without_a_heater() -> None:
    bench = Bench(loop_heaters={"MB1.T1": None})
    itc = bench.driver()
    itc.set_setpoint_K(330.0)
    with pytest.raises(InstrumentError, match=r"MB1\.T1 drives no heater"):
        itc.set_heater_range("high")
    assert bench.ask(f"READ:{LOOP}:ENAB") == f"STAT:{LOOP}:ENAB:OFF"
    assert itc.settings_snapshot()["heater"] == "None"
    station_heater = bench.driver(heater="MB0.H1")  # a station that names the heater assigns it
    station_heater.set_heater_range("high")
    bench.settle(30.0)
    assert bench.ask(f"READ:{LOOP}:HTR") == f"STAT:{LOOP}:HTR:MB0.H1" and bench.stage.heater_power_W > 1.0


def test_open_sensor_raises_instrument_error(bench: Bench) -> None:
    itc = bench.driver()
    itc.set_setpoint_K(320.0)
    itc.set_heater_range("high")
    bench.settle(30.0)
    bench.itc.set_faults(open_sensor=True)
    with pytest.raises(InstrumentError, match=r"MB1\.T1"):
        itc.read_temperature_K()
    with pytest.raises(InstrumentError):
        itc.wait_until_stable(320.0, 0.1, 10.0, 100.0)
    bench.settle(1.0)
    assert bench.stage.heater_power_W == 0.0  # the loop stops heating on a failed sensor


# ---------------------------------------------------------------------------------------------- faults
def test_timeouts_and_drops_are_recovered_and_a_permanent_drop_is_reported(bench: Bench) -> None:
    itc = bench.driver(reconnect=True)
    itc.set_setpoint_K(310.0)
    bench.itc.set_faults(timeout=1)
    assert itc.read_temperature_K() == pytest.approx(298.15, abs=0.1)
    assert itc.retry_count == 1
    bench.itc.set_faults(drop=1)
    assert itc.setpoint_K() == 310.0
    assert itc.reconnect_count >= 1  # (the timeout above may have reopened the link already)
    check_permanent_drop(bench.itc, itc.read_temperature_K, "hotstage", ADDRESS)


# ------------------------------------------------------------------------------------------------- TCP
@pytest.mark.slow
def test_driver_over_tcp(bench: Bench) -> None:
    with driver_over_tcp(MercuryITC, bench.itc, bench.world.clock) as itc:
        assert itc.identify().startswith("IDN:OXFORD INSTRUMENTS:MERCURY ITC")
        assert itc.read_temperature_K() == pytest.approx(298.15, abs=0.1)
        itc.set_setpoint_K(310.0)
        itc.set_heater_range("high")
        assert itc.wait_until_stable(310.0, 0.2, 60.0, 3600.0, poll_s=30.0)
        itc.safe_state()
        assert itc.settings_snapshot()["heater_auto"] is False
        itc.adapter.write(f"READ:{LOOP}:TSET")  # a query whose reply nobody reads: it arrives late
        assert itc.read_temperature_K() == pytest.approx(310.0, abs=0.5)  # the late reply is skipped
