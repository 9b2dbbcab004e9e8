"""The Lake Shore 335 mock (Model 335 User's Manual, chapter 6) and the 335 driver on it: what differs from
the 336, and the shared behaviour (setpoint units, serial pacing, PID on the cryostat stage)."""

from __future__ import annotations

import pytest
from instrument_helpers import RawBench, sim_driver

from drivers.lakeshore335 import LakeShore335
from labctl.errors import InstrumentError
from mock_instruments.lakeshore335 import MockLakeShore335
from mock_instruments.lakeshore336 import SERIAL_QUIET_S
from mock_instruments.registry import mock_class
from mock_instruments.world import World

ADDRESS = "sim://lakeshore335/cryo"


class Bench(RawBench):
    """The 335 on the world's cryostat stage, spoken to as a serial client must (50 ms between messages)."""

    def __init__(self) -> None:
        self.world = World(seed=5)
        self.stage = self.world.stage
        self.cryo = MockLakeShore335(self.world, "cryo")
        self.conn = self.cryo.connect()

    def write(self, *messages: str) -> None:
        for message in messages:
            self.world.clock.sleep(SERIAL_QUIET_S)
            self.conn.write(message)

    def ask(self, message: str) -> str:
        self.write(message)
        return self.conn.read()

    def esr(self) -> int:
        return int(self.ask("*ESR?"))

    def driver(self, **options: object) -> LakeShore335:
        return sim_driver(LakeShore335, self.cryo, ADDRESS, self.world.clock, **options)


@pytest.fixture
def bench() -> Bench:
    return Bench()


def test_identification_inputs_and_outputs(bench: Bench) -> None:
    assert bench.ask("*IDN?").startswith("LSCI,MODEL335,")
    assert mock_class("lakeshore335") is MockLakeShore335
    assert len(bench.ask("KRDG? 0").split(",")) == 2  # two inputs
    bench.write("KRDG? C")
    with pytest.raises(TimeoutError):
        bench.conn.read()
    assert bench.esr() == 16  # no input C: execution error
    bench.write("RANGE 3,1")
    assert bench.esr() == 16  # no output 3
    assert bench.ask("OUTMODE? 2") == "1,2,0" and bench.ask("EMUL?") == "0"


def test_htrset_has_an_output_type_and_voltage_mode_limits_the_range(bench: Bench) -> None:
    assert bench.ask("HTRSET? 2") == "0,1,2,+0.000,1"
    bench.write("HTRSET 1,1,1,2,0,1")  # output 1 has no voltage mode
    assert bench.esr() == 16
    bench.write("RANGE 2,3", "HTRSET 2,1,1,2,0,1")
    assert bench.ask("HTRSET? 2") == "1,1,2,+0.000,1" and bench.ask("RANGE? 2") == "1"
    bench.write("RANGE 2,2")
    assert bench.esr() == 16 and bench.ask("RANGE? 2") == "1"
    bench.write("HTRSET 2,1,1,2")  # the 336's four-field form is a command error on the 335
    assert bench.esr() == 32


def test_the_driver_runs_the_loop_and_refuses_what_the_335_cannot_do(bench: Bench) -> None:
    cryo = bench.driver()
    assert cryo.identify().startswith("LSCI,MODEL335")
    cryo.configure_control_loop("closed_loop", "A")
    bench.write("INTYPE A,1,0,0,0,2")  # the user prefers Celsius on the front panel
    cryo.set_setpoint_K(280.0)
    assert bench.cryo.outputs[1].ramp.target_K == pytest.approx(280.0)
    cryo.set_heater_range("high")
    assert cryo.wait_until_stable(280.0, tolerance_K=0.2, window_s=60.0, timeout_s=3600.0)
    assert bench.cryo.lost_messages == 0
    out2 = bench.driver(output=2, input_channel="B")
    bench.write("HTRSET 2,1,1,2,0,1")
    with pytest.raises(Exception, match="voltage mode"):
        out2.set_heater_range("medium")
    cryo.safe_state()
    assert bench.ask("RANGE? 1") == "0" and bench.ask("RANGE? 2") == "0"
    with pytest.raises(InstrumentError, match="Off mode"):
        cryo.configure_control_loop("off")
        cryo.set_heater_range("low")
