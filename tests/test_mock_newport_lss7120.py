"""The Newport LSS-7120 mock: raw commands as public LSS-7120 clients send them, and the real driver on it.

Command spellings come from the manual as quoted by public lab code: the VeraSol library (``OUTPUT ON``,
``AMPLITUDE 0.500``, ``STATUS?`` bit table, ``ERROR?``, ``USERCAL:*``, ``SPECTRUM:*``), centralcontrol
``usbtmclight.py`` (``output 1``, ``output?``, ``status?``) and the IVLab driver (``AMPL``, ``OUTP ON``).
"""

from __future__ import annotations

import pytest
from instrument_helpers import AREA_CM2, RawBench, check_permanent_drop, driver_over_tcp, lamp_world, sim_driver

from drivers.newport_lss7120 import NewportLSS7120
from labctl.errors import InstrumentError
from labctl.roles import LightSource
from mock_instruments.newport_lss7120 import MockNewportLSS7120
from mock_instruments.registry import mock_class

JSC_A = 25.0e-3 * AREA_CM2  # fapbi3 at 1 sun
ADDRESS = "sim://newport_lss7120/led"


class Bench(RawBench):
    error_query = "ERROR?"

    def __init__(self, create_light: bool = True, **options: object) -> None:
        self.world = lamp_world(4, "led", "fapbi3", create_light=create_light)
        options.setdefault("head_warmup_s", 0.0)
        self.mock = MockNewportLSS7120(self.world, "led", timeout_s=1.0, **options)
        self.conn = self.mock.connect()

    def write(self, *messages: str) -> None:
        """Send commands as a USBTMC client must: each one, then its zero-byte acknowledgement."""
        for message in messages:
            self.conn.write(message)
            if "?" not in message:  # a query is answered (or not), never acknowledged
                assert self.conn.read() == ""

    def driver(self) -> NewportLSS7120:
        return sim_driver(NewportLSS7120, self.mock, ADDRESS, self.world.clock)


# ------------------------------------------------------------------------------------ USBTMC framing
def test_every_command_is_acknowledged_by_an_empty_message_that_waits_until_read(bench: Bench) -> None:
    bench.conn.write("AMPL 0.5")
    bench.conn.write("AMPL?")  # the acknowledgement is not read first ...
    assert bench.conn.read() == ""  # ... so the next read returns it,
    assert bench.conn.read() == "0.500"  # and the reply comes one read late
    bench.conn.write("ERROR?")
    assert bench.conn.read() == '0,"No error"'  # a query has no acknowledgement, only its reply


def test_the_driver_reads_each_acknowledgement_so_error_checks_stay_in_step(bench: Bench) -> None:
    light = bench.driver()
    light.set_intensity_suns(0.5)  # AMPL, its acknowledgement, then ERROR? until 0
    light.calibration_mode = "user"
    light.open_shutter()
    assert light.amplitude_suns == 0.5 and light.output_enabled
    assert list(bench.mock.connect().output) == []  # nothing left unread in a fresh session either
    assert light.retry_count == 0 and light.reconnect_count == 0


def test_a_tcp_session_is_a_usbtmc_bridge_without_acknowledgements(bench: Bench) -> None:
    session = bench.mock.connect_tcp()
    session.write("AMPL 0.5")
    assert session.take_replies() == []
    session.write("AMPL?")
    assert session.take_replies() == ["0.500"]


# ------------------------------------------------------------------------------------ protocol
def test_output_and_amplitude_drive_the_light(bench: Bench) -> None:
    assert bench.ask("*IDN?").startswith("Newport Corporation,LSS-7120,7120")
    assert bench.ask("OUTP?") == "0" and bench.ask("STATUS?") == "0"
    assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)
    bench.write("AMPLITUDE 0.500", "OUTPUT ON")
    assert bench.ask("AMPLITUDE?") == "0.500" and bench.ask("output?") == "1"
    assert bench.ask("STATUS?") == "1"
    assert bench.photocurrent_A() == pytest.approx(0.5 * JSC_A, rel=0.03)
    bench.write("AMPL 1")
    assert bench.photocurrent_A() == pytest.approx(JSC_A, rel=0.03)
    bench.write("output 0")
    assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)
    bench.write("OUTP 1", "*RST")
    assert (bench.ask("OUTP?"), bench.ask("AMPL?")) == ("0", "1.000")
    assert bench.errors() == []


def test_word_replies_for_firmware_that_answers_on_off() -> None:
    bench = Bench(output_reply="word")
    bench.write("OUTP ON")
    assert bench.ask("OUTP?") == "ON"
    bench.write("OUTP OFF")
    assert bench.ask("OUTP?") == "OFF"


@pytest.mark.parametrize(("command", "code"), [
    ("AMPL 1.2", -222), ("AMPL 0.05", -222), ("AMPL bright", -104), ("AMPL", -109),
    ("SYST:ERR?", -113), ("LEDPOWER 3,0.1", -113), ("OUTP:STAT ON", -113), ("USERCAL:SELECT 2", -222),
    ("SPECTRUM:RECALL 11", -222), ("SPECTRUM:RECALL 4", -224), ("SPECTRUM:STORE 0", -222),
    ("USERCAL:PERFORM", -221), ("STAT?", -113),
])
def test_errors_are_queued_and_read_with_error_query(bench: Bench, command: str, code: int) -> None:
    bench.write(command)
    assert bench.errors() == [code]
    assert bench.ask("ERROR?") == '0,"No error"'
    assert bench.ask("AMPL?") == "1.000"


def test_status_bits_warm_up_head_faults(bench: Bench) -> None:
    cold = Bench(head_warmup_s=900.0)
    assert int(cold.ask("STATUS?")) == 8  # head warming up after power-up
    cold.world.clock.sleep(901.0)
    assert int(cold.ask("STATUS?")) == 0
    bench.mock.set_faults(lamp_failure=True)
    assert int(bench.ask("STATUS?")) == 4  # the head shows as disconnected
    bench.write("OUTP ON")
    assert bench.errors() == [-200] and bench.ask("OUTP?") == "0"
    bench.mock.set_faults(lamp_failure=False)
    bench.mock.head_over_temperature = True
    assert int(bench.ask("STATUS?")) == 16
    bench.write("OUTP ON")
    assert bench.errors() == [-200]
    bench.mock.head_over_temperature = False
    bench.write("OUTP ON")
    assert int(bench.ask("STATUS?")) == 1


def test_user_calibration_corrects_a_bright_factory_calibration() -> None:
    bench = Bench(factory_scale=1.05)
    bench.write("OUTP ON")
    assert bench.photocurrent_A() == pytest.approx(1.05 * JSC_A, rel=0.03)
    bench.write("AMPL 0.952", "USERCAL:PERFORM")  # the reference cell reads 1 sun now
    assert bench.ask("USERCAL:SELECT?") == "0"
    bench.write("USERCAL:SELECT 1", "AMPL 1.0")
    assert bench.photocurrent_A() == pytest.approx(JSC_A, rel=0.03)
    bench.write("AMPL 0.5")
    assert bench.photocurrent_A() == pytest.approx(0.5 * JSC_A, rel=0.03)
    bench.write("USERCAL:SELECT 0")
    assert bench.photocurrent_A() == pytest.approx(0.525 * JSC_A, rel=0.03)
    assert bench.errors() == []


def test_spectrum_slots(bench: Bench) -> None:
    assert bench.ask("SPECTRUM:ACTIVE?") == "0"
    bench.write("SPECTRUM:RECALL 1", "SPECTRUM:STORE 5", "SPECTRUM:RECALL 5")
    assert bench.ask("SPECTRUM:ACTIVE?") == "5"
    assert bench.errors() == []


def test_the_mock_creates_its_led_light_and_time_is_charged() -> None:
    bench = Bench(create_light=False)
    light = bench.world.light("led")
    assert light.shutter_open and not light.lamp_on
    clock = bench.world.clock
    start = clock.now()
    bench.ask("*IDN?")
    assert clock.now() - start == pytest.approx(2e-3, abs=1e-6)
    bench.write("OUTP ON")
    first = bench.photocurrent_A()
    clock.sleep(60.0)
    assert first < bench.photocurrent_A() == pytest.approx(JSC_A, rel=0.03)  # LED warm-up
    assert mock_class("newport_lss7120") is MockNewportLSS7120


# ------------------------------------------------------------------------------------ the driver
def test_driver_role_methods_follow_the_world(bench: Bench) -> None:
    light = bench.driver()
    assert isinstance(light, LightSource)
    assert "LSS-7120" in light.identify()
    light.set_intensity_suns(0.4)
    assert light.read_irradiance_mW_cm2() == 0.0
    light.open_shutter()
    assert light.read_irradiance_mW_cm2() == pytest.approx(40.0)
    assert bench.photocurrent_A() == pytest.approx(0.4 * JSC_A, rel=0.03)
    light.set_intensity_suns(0.8)
    assert bench.photocurrent_A() == pytest.approx(0.8 * JSC_A, rel=0.03)
    light.calibration_mode = "user"
    light.active_spectrum = 0
    assert light.settings_snapshot() == {"amplitude_suns": 0.8, "output_on": True, "calibration_mode": "user",
                                         "active_spectrum": 0, "warming_up": False, "over_temperature": False}
    light.close_shutter()
    assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(InstrumentError, match="-221"):
        light.calibrate_to_reference()  # output off
    with pytest.raises(InstrumentError, match="-224"):
        light.active_spectrum = 7
    bench.mock.set_faults(lamp_failure=True)
    with pytest.raises(InstrumentError, match="head disconnected"):
        light.open_shutter()
    bench.mock.set_faults(lamp_failure=False)
    light.open_shutter()
    light.safe_state()
    assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)


def test_driver_recovers_from_timeouts_and_a_dropped_connection(bench: Bench) -> None:
    light = bench.driver()
    light.set_intensity_suns(0.6)
    light.open_shutter()
    bench.mock.set_faults(timeout=2)
    assert light.read_irradiance_mW_cm2() == pytest.approx(60.0)
    assert light.retry_count == 2
    bench.mock.set_faults(drop=1)
    light.set_intensity_suns(0.3)
    assert light.reconnect_count == 1 + light.resync_count  # the LSS resynchronises by reopening
    assert bench.photocurrent_A() == pytest.approx(0.3 * JSC_A, rel=0.03)
    check_permanent_drop(bench.mock, light.read_irradiance_mW_cm2, "led", ADDRESS)


@pytest.mark.slow
def test_driver_over_tcp(bench: Bench) -> None:
    with driver_over_tcp(NewportLSS7120, bench.mock, bench.world.clock) as light:
        assert "LSS-7120" in light.identify()
        light.set_intensity_suns(0.7)
        light.open_shutter()
        assert light.read_irradiance_mW_cm2() == pytest.approx(70.0)
        assert bench.photocurrent_A() == pytest.approx(0.7 * JSC_A, rel=0.03)
        light.close_shutter()
        assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)
