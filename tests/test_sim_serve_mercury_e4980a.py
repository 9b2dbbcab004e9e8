"""Drivers written by other people — pymeasure's ``MercuryiTC`` and ``AgilentE4980`` — on the simulated bench
served by ``labctl sim serve``: the mocks must answer them as the instruments would.

pymeasure's drivers parse replies their own way (the iTC's sensor voltage in mV, the heater on ``MB0.H1``,
the E4980A's ``:FETC?`` triples and list sweeps), so a mock that only agrees with labctl's driver fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvisa
from pymeasure.instruments.agilent.agilentE4980 import AgilentE4980
from pymeasure.instruments.oxfordinstruments.mercuryitc import MercuryiTC

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``labctl sim serve`` of the built-in station: instrument name -> VISA resource."""
    server = subprocess.Popen([sys.executable, "-m", "labctl.cli", "sim", "serve", "--port-base", "0"],
                              cwd=Path(tmp_path_factory.mktemp("serve")), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=dict(os.environ, COLUMNS="200"))
    try:
        found: dict[str, str] = {}
        deadline = time.monotonic() + 60
        assert server.stdout is not None
        while not {"hotstage", "lcr", "mux"} <= set(found):
            line = server.stdout.readline()
            if not line or time.monotonic() > deadline:
                pytest.fail(f"sim serve did not list its instruments: {server.stderr.read() if server.stderr else ''}")
            name, _model, resource = line.split()
            found[name] = resource
        yield found
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_pymeasure_mercury_itc_reads_and_sets_the_hot_stage(endpoints: dict[str, str]) -> None:
    itc = MercuryiTC(endpoints["hotstage"], visa_library="@py", timeout=5000)
    try:
        assert itc.identity.startswith("IDN:OXFORD INSTRUMENTS:MERCURY ITC:")
        sensor, heater = itc.TS["MB1.T1"], itc.HTR["MB0.H1"]
        assert sensor.temperature == pytest.approx(298.15, abs=0.1)
        assert 0.5 < sensor.voltage < 0.6  # a silicon diode at room temperature, sent in mV
        sensor.control_loop_temperature_setpoint = 310.0
        assert sensor.control_loop_temperature_setpoint == 310.0
        sensor.control_loop_ramp_rate = 2.0
        sensor.control_loop_ramp_enabled = True
        assert sensor.control_loop_ramp_rate == 2.0 and sensor.control_loop_ramp_enabled is True
        sensor.control_loop_P = 8.0
        assert (sensor.control_loop_P, sensor.control_loop_I, sensor.control_loop_D) == (8.0, 1.0, 0.0)
        sensor.control_loop_PID_enabled = False
        sensor.control_loop_heater_percent = 25.0
        assert sensor.control_loop_PID_enabled is False and sensor.control_loop_heater_percent == 25.0
        assert heater.voltage_limit == 40.0 and heater.resistance == 80.0 and heater.max_power == 20.0
        assert heater.voltage == pytest.approx(10.0)  # 25 % of the 40 V limit, in manual
        assert heater.current == pytest.approx(10.0 / 80.0, abs=1e-4)
        assert heater.power == pytest.approx(1.25, abs=1e-3)
        heater.voltage_limit = 20.0
        assert heater.max_power == 5.0
        sensor.control_loop_heater_percent = 0.0
    finally:
        itc.adapter.close()


def test_pymeasure_e4980_measures_and_sweeps_the_cryostat_cell(endpoints: dict[str, str]) -> None:
    manager = pyvisa.ResourceManager("@py")
    mux = manager.open_resource(endpoints["mux"], read_termination="\n", write_termination="\n", timeout=5000)
    assert mux.query("SEL 1") == "OK"  # the fapbi3 cell in the cryostat (sim station, mux channel 1)
    mux.close()
    # a raw-socket VISA resource needs its terminations named (pymeasure leaves them to the caller)
    lcr = AgilentE4980(endpoints["lcr"], visa_library="@py", read_termination="\n", write_termination="\n")
    try:
        assert lcr.id.startswith("Keysight Technologies,E4980A,")
        lcr.mode = "CPG"
        lcr.frequency = 1e4
        lcr.ac_voltage = 0.02
        lcr.aperture("SHORT", 2)
        assert lcr.aperture() == ("SHOR", 2)
        assert (lcr.mode, lcr.frequency, lcr.ac_voltage) == ("CPG", 1e4, 0.02)
        capacitance, conductance = lcr.impedance
        assert 1e-9 < capacitance < 1e-6 and conductance > 0
        lcr.trigger_source = "BUS"
        assert lcr.trigger_source == "BUS"
        frequencies = [1e3, 1e4, 1e5]
        a, _b, read_back = lcr.freq_sweep(frequencies, return_freq=True)
        assert read_back == frequencies
        assert len(a) == 3 and a[0] > a[1] > a[2] > 0  # ionic and trap capacitance falls with frequency
        assert lcr.ask(":SYST:ERR?").strip() == '+0,"No error"'
    finally:
        lcr.adapter.close()
