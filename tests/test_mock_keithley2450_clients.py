"""pymeasure's Keithley2450 driver (written by other people, not by labctl) on the simulated 2450 over TCP, as
``labctl sim serve`` serves it: identification, reset, source and measure configuration, readings,
resistance, ramping, the beeper and the buffer statistics behave as the 2450 Reference Manual describes.
Where pymeasure sends what a 2450 refuses, the mock refuses it too: its buffer set-up is the 2400's
(``:STAT:MEAS:ENAB``, ``:TRAC:FEED``), which the 2450 answers with -113, and its statistics properties expect
three values where the 2450 returns one. Waits use *OPC?, so the tests pass whether the served world runs on
virtual or real time.
"""

from __future__ import annotations

import pytest
from instrument_helpers import pymeasure_client, served, wired_mock
from pymeasure.instruments.keithley import Keithley2450

from mock_instruments.keithley2450 import MockKeithley2450

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture()
def mock() -> MockKeithley2450:
    return wired_mock(MockKeithley2450, 12)


def codes(smu: Keithley2450) -> list[int]:
    return [int(float(error[0])) for error in smu.check_errors()]


def test_identification_reset_language_and_no_options_query(mock: MockKeithley2450) -> None:
    with served(mock) as resource, pymeasure_client(Keithley2450, resource) as smu:
        assert smu.id.startswith("KEITHLEY INSTRUMENTS,MODEL 2450,")
        smu.reset()  # *RST;:stat:pres;:*CLS;
        assert smu.ask("*LANG?").strip() == "SCPI"
        assert smu.ask("*ESE 12;*ESE?").strip() == "12"  # the marker a driver resynchronises a link with
        smu.write("*OPT?")  # appendix B lists no *OPT? for the 2450
        assert codes(smu) == [-113]


def test_apply_voltage_measure_current_and_ramp(mock: MockKeithley2450) -> None:
    with served(mock) as resource, pymeasure_client(Keithley2450, resource) as smu:
        smu.apply_voltage(compliance_current=0.01)
        smu.measure_current(nplc=0.1, current=0.01, auto_range=True)
        smu.source_voltage = 0.0
        smu.enable_source()
        assert smu.source_enabled is True
        assert smu.current == pytest.approx(-1.726e-3, rel=0.05)  # lit cell at 0 V, SMU sign
        smu.ramp_to_voltage(0.6, steps=3, pause=0.01)
        assert smu.source_voltage == pytest.approx(0.6)
        smu.disable_source()
        assert codes(smu) == []


def test_apply_current_measure_voltage_and_resistance(mock: MockKeithley2450) -> None:
    with served(mock) as resource, pymeasure_client(Keithley2450, resource) as smu:
        smu.apply_current(compliance_voltage=2.0)
        smu.measure_voltage(nplc=0.1, voltage=2.0)
        smu.source_current = 0.0
        smu.enable_source()
        assert 1.0 < smu.voltage < 1.4  # open circuit of the lit cell
        smu.source_current = -1e-3
        smu.measure_resistance(nplc=0.1)
        resistance = smu.resistance
        assert resistance < 0  # the lit cell delivers power: V > 0, I < 0
        smu.disable_source()
        assert codes(smu) == []


def test_beeper_range_is_the_2450s(mock: MockKeithley2450) -> None:  # :SYSTem:BEEPer 20 Hz to 8 kHz
    with served(mock) as resource, pymeasure_client(Keithley2450, resource) as smu:
        smu.beep(1000, 0.1)
        assert codes(smu) == []
        smu.beep(100000, 0.1)  # pymeasure's docstring allows up to 2 MHz (the 2400's range)
        assert codes(smu) == [-222]


def test_pymeasures_2400_style_buffer_set_up_is_refused(mock: MockKeithley2450) -> None:
    """pymeasure's config_buffer sends the 2400's :STAT:MEAS:ENAB and :TRAC:FEED, which the 2450 does not
    have (section 6 has no MEASurement register and no FEED): -113, as on the instrument."""
    with served(mock) as resource, pymeasure_client(Keithley2450, resource) as smu:
        smu.write(":STAT:PRES;*CLS;*SRE 1;:STAT:MEAS:ENAB 512;")
        smu.write(":TRAC:FEED SENSE;:TRAC:FEED:CONT NEXT;")
        assert codes(smu) == [-113, -113]


def test_buffer_statistics_of_a_counted_reading(mock: MockKeithley2450) -> None:
    with served(mock) as resource, pymeasure_client(Keithley2450, resource) as smu:
        smu.apply_voltage(compliance_current=0.01)
        smu.measure_current(nplc=0.1)
        smu.source_voltage = 0.0
        smu.enable_source()
        smu.write(":TRAC:CLE;:COUN 5")
        smu.ask(":READ?")
        assert smu.ask("*OPC?").strip() == "1"
        mean = smu.means  # one value on the 2450: the mean of the readings (pymeasure expects three)
        assert mean == pytest.approx(-1.726e-3, rel=0.05)
        assert smu.minimums <= mean <= smu.maximums
        smu.disable_source()
