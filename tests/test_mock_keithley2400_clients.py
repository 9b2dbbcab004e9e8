"""pymeasure's Keithley2400 driver (written by other people, not by labctl) on the simulated 2400 over TCP, as
``labctl sim serve`` serves it: identification, source and measure configuration, readings, ramping, the
buffer with its service request, buffer statistics, trigger-link lines and the output switch behave as the
2400 Series User's Manual describes. Waits use *OPC? (section 16: sent after :INITiate it answers once the
operation is complete), so the tests pass whether the served world runs on virtual or real time.
"""

from __future__ import annotations

import numpy as np
import pytest
from instrument_helpers import pymeasure_client, served, wired_mock
from pymeasure.instruments.keithley import Keithley2400

from mock_instruments.keithley2400 import MockKeithley2400

# pymeasure 0.16 marks some of its own helpers deprecated; they still send what they always sent
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture()
def mock() -> MockKeithley2400:
    return wired_mock(MockKeithley2400, 5)


def test_identification_reset_and_options(mock: MockKeithley2400) -> None:
    with served(mock) as resource, pymeasure_client(Keithley2400, resource) as smu:
        assert smu.id.startswith("KEITHLEY INSTRUMENTS INC.,MODEL 2400,")
        smu.reset()  # *RST; :STAT:PRES; *CLS
        assert smu.ask("*OPT?").strip() == "0"  # section 16: no option installed
        assert smu.check_errors() == []


def source_0_V(smu: Keithley2400, voltage_V: float = 0.0, auto_range: bool = True) -> None:
    """pymeasure's way to source 0 V (or ``voltage_V``) with a 10 mA compliance, measure current at 0.1 PLC
    (on the 10 mA range, auto range or not), output on."""
    smu.source_mode = "voltage"
    smu.compliance_current = 0.01
    smu.measure_current(nplc=0.1, current=0.01, auto_range=auto_range)
    smu.source_voltage = voltage_V
    smu.enable_source()


def test_source_voltage_measure_current_and_ramp(mock: MockKeithley2400) -> None:
    with served(mock) as resource, pymeasure_client(Keithley2400, resource) as smu:
        source_0_V(smu)
        assert smu.source_enabled is True
        assert smu.current == pytest.approx(-1.726e-3, rel=0.05)  # lit cell at 0 V, SMU sign
        smu.ramp_to_voltage(0.6, steps=3, pause=0.01)
        assert smu.source_voltage == pytest.approx(0.6)
        assert smu.current < 0
        smu.disable_source()
        assert smu.check_errors() == []


def test_source_current_measure_voltage_finds_voc(mock: MockKeithley2400) -> None:
    with served(mock) as resource, pymeasure_client(Keithley2400, resource) as smu:
        smu.source_mode = "current"
        smu.compliance_voltage = 2.0
        smu.measure_voltage(nplc=0.1, voltage=2.0, auto_range=True)
        smu.source_current = 0.0
        smu.enable_source()
        assert 1.0 < smu.voltage < 1.4
        smu.disable_source()


def test_buffer_fills_and_raises_its_service_request(mock: MockKeithley2400) -> None:
    """config_buffer enables the buffer-full bit (STAT:MEAS:ENAB 512, *SRE 1); *STB? then shows MSB and MSS."""
    with served(mock) as resource, pymeasure_client(Keithley2400, resource) as smu:
        source_0_V(smu)
        smu.config_buffer(points=5)
        assert not smu.is_buffer_full()
        smu.start_buffer()
        assert smu.ask("*OPC?").strip() == "1"
        assert smu.is_buffer_full()
        data = smu.buffer_data.reshape(-1, 5)
        assert data.shape == (5, 5) and np.all(data[:, 1] < 0)
        means = smu.means  # CALCulate3 statistics of V, I, R
        assert means[1] == pytest.approx(np.mean(data[:, 1]))
        assert smu.check_errors() == []


def test_trigger_link_lines_and_output_triggers_are_kept(mock: MockKeithley2400) -> None:  # section 11
    with served(mock) as resource, pymeasure_client(Keithley2400, resource) as smu:
        smu.trigger_on_external(line=3)
        assert smu.arm_source == "trigger_link" and smu.trigger_input_line == 3
        smu.output_trigger_on_external(line=2, after="SENS")
        assert smu.trigger_output_line == 2 and smu.trigger_output_event == "sense"
        smu.trigger_immediately()
        assert smu.check_errors() == []


def test_resistance_mode_and_source_delay_limit(mock: MockKeithley2400) -> None:
    with served(mock) as resource, pymeasure_client(Keithley2400, resource) as smu:
        smu.measure_resistance(nplc=0.1, resistance=2e5, auto_range=True)
        assert smu.ask(":SENS:RES:MODE?").strip() == "MAN"
        smu.write(":SOUR:DEL 1000")  # 18-82: 0 to 999.9999 s; pymeasure's validator agrees
        (code, text), = smu.check_errors()
        assert int(code) == -222 and text.strip('"') == "Parameter data out of range"  # appendix B
        with pytest.raises(ValueError):
            smu.source_delay = 1000


def buffered_readings(mock: MockKeithley2400) -> np.ndarray:
    """pymeasure's buffer at one fixed level: 0.9 V on the 10 mA range (no autorange), 0.1 PLC, 20 readings with
    a 50 ms trigger delay (its config_buffer: :TRAC:POIN, :TRIG:COUN, :TRIG:DEL), rows of V, I, R, t, status."""
    with served(mock) as resource, pymeasure_client(Keithley2400, resource) as smu:
        source_0_V(smu, 0.9, auto_range=False)
        smu.config_buffer(points=20, delay=0.05)
        smu.start_buffer()
        assert smu.ask("*OPC?").strip() == "1"
        data = smu.buffer_data.reshape(-1, 5)
        assert smu.check_errors() == []
    return data


def test_a_buffer_at_one_level_is_served_in_one_pass_as_cycle_by_cycle() -> None:
    """The same buffered run on a mock that serves it from the world in one pass and on one that steps every
    cycle: equal readings (7 digits), and after the first (a changed source, appendix A case I) the cycles of an
    unchanged source (case V): 500 µs latency + 3 x (0.1 PLC / 60 Hz + 185 µs) + 1.8 ms + the 50 ms delay."""
    mock = wired_mock(MockKeithley2400, 5)
    served_in_one_pass: list[int] = []
    readings_at = mock.world.readings_at
    mock.world.readings_at = lambda terminal, times: served_in_one_pass.append(len(times)) or readings_at(
        terminal, times)
    buffered = buffered_readings(mock)
    assert sum(served_in_one_pass) == 20
    stepped = buffered_readings(wired_mock(MockKeithley2400, 5, buffered_dwells=False))
    np.testing.assert_allclose(buffered[:, 1], stepped[:, 1], rtol=2e-6)
    np.testing.assert_allclose(buffered[:, 3], stepped[:, 3], atol=2e-6)
    np.testing.assert_allclose(np.diff(buffered[1:, 3]), 0.05 + 500e-6 + 3 * (0.1 / 60 + 185e-6) + 1.8e-3,
                               atol=2e-6)
    assert np.all(buffered[:, 1] < 0) and np.ptp(buffered[:, 1]) > 0
