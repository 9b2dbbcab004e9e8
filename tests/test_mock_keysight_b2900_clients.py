"""A client written from the Keysight B2900 SCPI Command Reference alone (pymeasure ships no B2900 driver) on
the simulated B2902A over TCP, as ``labctl sim serve`` serves it, through plain pyvisa-py: identification,
status registers and the link-resynchronisation marker, spot measurements, a staircase sweep waited for with
*OPC?, wait-time settings and the error queue. *OPC? waits keep the tests independent of whether the served
world runs on virtual or real time.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import pyvisa
from instrument_helpers import cell_world, served

from mock_instruments.keysight_b2900 import MockKeysightB2900


@pytest.fixture()
def b2902a() -> Iterator[pyvisa.resources.MessageBasedResource]:
    world = cell_world(9)
    world.wire("smu:1", "cell")
    rm = pyvisa.ResourceManager("@py")
    with served(MockKeysightB2900(world, "smu")) as resource:
        link = rm.open_resource(resource, read_termination="\n", write_termination="\n", timeout=5000)
        try:
            yield link  # type: ignore[misc]
        finally:
            link.close()
            rm.close()


def test_identification_reset_and_status_registers(b2902a) -> None:
    assert b2902a.query("*IDN?").startswith("Keysight Technologies,B2902A,")
    b2902a.write("*RST;*CLS")
    assert b2902a.query("*ESE 37;*ESE?") == "37"  # the marker a driver resynchronises a link with
    b2902a.write(":SOUR:VOLT 300")  # -222: an execution error sets ESR bit 4
    assert int(b2902a.query("*ESR?")) & 16
    assert int(b2902a.query("*STB?")) & 4  # error/event queue not empty
    assert b2902a.query(":SYST:ERR?").startswith("-222,")
    assert b2902a.query(":SYST:ERR?") == '+0,"No error"'


def test_spot_current_at_0_V_is_the_photocurrent(b2902a) -> None:
    b2902a.write(":SOUR1:FUNC:MODE VOLT;:SOUR1:VOLT 0;:SENS1:CURR:PROT 0.01;:OUTP1 ON")
    assert float(b2902a.query(":MEAS:CURR? (@1)")) == pytest.approx(-1.726e-3, rel=0.05)
    b2902a.write(":OUTP1 OFF")


def test_staircase_sweep_waited_for_with_opc(b2902a) -> None:
    b2902a.write(":SOUR1:FUNC:MODE VOLT;:SENS1:CURR:PROT 0.01;:SENS1:CURR:NPLC 0.1")
    b2902a.write(":SOUR1:VOLT:MODE SWE;:SOUR1:VOLT:STAR 0;:SOUR1:VOLT:STOP 0.5;:SOUR1:SWE:POIN 6")
    b2902a.write(":TRIG1:SOUR AINT;:TRIG1:COUN 6;:OUTP1 ON;:INIT (@1)")
    assert b2902a.query("*OPC?") == "1"
    currents = np.array(b2902a.query(":FETC:ARR:CURR? (@1)").split(","), float)
    sources = np.array(b2902a.query(":FETC:ARR:SOUR? (@1)").split(","), float)
    np.testing.assert_allclose(sources, np.linspace(0, 0.5, 6), atol=1e-9)
    assert currents.size == 6 and currents[0] < 0 and np.all(np.diff(currents) > 0)
    assert b2902a.query(":SYST:ERR?") == '+0,"No error"'


def test_wait_time_settings_read_back(b2902a) -> None:  # :SENSe:WAIT, :SOURce:WAIT
    assert b2902a.query(":SENS1:WAIT?") == "1" and b2902a.query(":SOUR1:WAIT:AUTO?") == "1"
    b2902a.write(":SENS1:WAIT:GAIN 2;:SENS1:WAIT:OFFS 1E-3;:SOUR1:WAIT OFF")
    assert float(b2902a.query(":SENS1:WAIT:GAIN?")) == 2.0
    assert float(b2902a.query(":SENS1:WAIT:OFFS?")) == pytest.approx(1e-3)
    assert b2902a.query(":SOUR1:WAIT?") == "0"
    b2902a.write(":SENS1:WAIT:GAIN 200")
    assert b2902a.query(":SYST:ERR?").startswith("-222,")
