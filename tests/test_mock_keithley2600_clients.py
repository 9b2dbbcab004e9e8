"""pymeasure's Keithley2600 driver (written by other people, not by labctl) on the simulated 2636B over TCP,
as ``labctl sim serve`` serves it: identification, the TSP error queue, source and measure configuration,
readings, ramping and the output, on both channels. pymeasure waits with real sleeps only in its ramp (kept
to a few steps here), so the tests pass whether the served world runs on virtual or real time.
"""

from __future__ import annotations

import pytest
from instrument_helpers import cell_world, pymeasure_client, served
from pymeasure.instruments.keithley import Keithley2600

from mock_instruments.keithley2600 import MockKeithley2600

# pymeasure 0.16 warns that it does not know whether the 2600 "supports SCPI" (SCPIUnknownMixin)
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture()
def mock() -> MockKeithley2600:
    world = cell_world(8, dark_cell=True)
    world.wire("smu:a", "cell")
    world.wire("smu:b", "dark")
    return MockKeithley2600(world, "smu")


def test_identification_and_the_error_queue(mock: MockKeithley2600) -> None:
    with served(mock) as resource, pymeasure_client(Keithley2600, resource) as smu:
        assert smu.id.startswith("Keithley Instruments Inc., Model 2636B,")
        assert smu.check_errors() == []
        smu.write("smua.source.levelv = 1000")  # 1101 "Parameter too big"
        code, message = smu.next_error
        assert (code, message) == (1101, "Parameter too big")
        assert smu.next_error[0] == 0


def test_apply_voltage_measure_current_and_ramp_on_channel_a(mock: MockKeithley2600) -> None:
    with served(mock) as resource, pymeasure_client(Keithley2600, resource) as smu:
        smu.ChA.apply_voltage(compliance_current=0.01)
        smu.ChA.measure_current(nplc=0.1)
        smu.ChA.source_voltage = 0.0
        smu.ChA.source_output = "ON"
        assert smu.ChA.source_output == "ON"
        assert smu.ChA.current == pytest.approx(-1.726e-3, rel=0.05)  # lit cell at 0 V, SMU sign
        smu.ChA.ramp_to_voltage(0.6, steps=3, pause=0.01)
        assert smu.ChA.source_voltage == pytest.approx(0.6)
        assert smu.ChA.voltage == pytest.approx(0.6, abs=1e-3)
        smu.ChA.source_output = "OFF"
        assert smu.check_errors() == []


def test_apply_current_measure_voltage_on_channel_b(mock: MockKeithley2600) -> None:
    with served(mock) as resource, pymeasure_client(Keithley2600, resource) as smu:
        smu.ChB.apply_current(compliance_voltage=2.0)
        smu.ChB.measure_voltage(nplc=0.1)
        smu.ChB.source_current = 1e-6
        smu.ChB.wires = 4
        smu.ChB.source_output = "ON"
        voltage = smu.ChB.voltage  # 1 µA forward into the dark cell: its shunt, some tens of mV
        assert 0.005 < voltage < 0.2
        assert smu.ChB.resistance == pytest.approx(voltage / 1e-6, rel=0.05)
        smu.ChB.source_output = "OFF"
        assert smu.check_errors() == []
