"""The Wavelabs SINUS-70 mock: raw WLRC XML as public SinusGUI clients send it, and the real driver on it.

Message syntax follows the WLRC use in public lab code (greyltc/centralcontrol ``wavelabs.py``: requests
built with ElementTree, ``iSeq`` from 0, ``StartRecipe sAutomationID``, one reply per line).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from instrument_helpers import AREA_CM2, SimBench, check_permanent_drop, driver_over_tcp, lamp_world, sim_driver

from drivers.keithley2450 import Keithley2450
from drivers.transport import SimAdapter
from drivers.wavelabs_sinus70 import WavelabsSinus70, parse_reply
from labctl.errors import InstrumentError
from labctl.roles import LightSource
from mock_instruments.keithley2450 import MockKeithley2450
from mock_instruments.registry import mock_class
from mock_instruments.wavelabs_sinus70 import MockWavelabsSinus70

JSC_A = 17.26e-3 * AREA_CM2  # wbg_ref at 1 sun
ADDRESS = "sim://wavelabs_sinus70/sun"


class Bench(SimBench):
    """WLRC XML messages to SinusGUI over the in-process connection."""

    def __init__(self, create_light: bool = True, **options: object) -> None:
        self.world = lamp_world(3, "sun", "wbg_ref", create_light=create_light)
        self.mock = MockWavelabsSinus70(self.world, "sun", timeout_s=1.0, **options)
        self.conn = self.mock.connect()
        self.seq = 0

    def ask(self, command: str, **attributes: object) -> ET.Element:
        """Send a request the way centralcontrol builds it; return the parsed reply element."""
        root = ET.Element("WLRC")
        ET.SubElement(root, command, iSeq=str(self.seq), **{k: str(v) for k, v in attributes.items()})
        self.seq += 1
        return self.raw(ET.tostring(root, encoding="unicode"))

    def raw(self, message: str) -> ET.Element:
        self.conn.write(message)
        root = ET.fromstring(self.conn.read())
        assert root.tag == "WLRC" and len(root) == 1
        return root[0]

    def driver(self) -> WavelabsSinus70:
        return sim_driver(WavelabsSinus70, self.mock, ADDRESS, self.world.clock)


def code(reply: ET.Element) -> int:
    return int(reply.get("iEC", "nan"))


# ------------------------------------------------------------------------------------ protocol
def test_recipe_run_cycle_with_centralcontrol_style_messages(bench: Bench) -> None:
    assert bench.ask("GetRunStatus").get("sStatus") == "idle"
    reply = bench.ask("ActivateRecipe", sRecipe="AM1.5G")
    assert (reply.tag, reply.get("iSeq"), code(reply)) == ("ActivateRecipe", "1", 0)
    assert code(bench.ask("SetRecipeParam", sRecipe="AM1.5G", iStep=1, sDevice="Light", sParam="Intensity",
                          sVal=80.0)) == 0
    assert code(bench.ask("SetRecipeParam", sRecipe="AM1.5G", iStep=1, sDevice="Light", sParam="Duration",
                          sVal=900500.0)) == 0
    param = bench.ask("GetRecipeParam", sRecipe="AM1.5G", iStep=1, sDevice="Light", sParam="Intensity")
    assert param.get("sVal") == "80"
    assert bench.ask("GetRecipeParam", sRecipe="AM1.5G", iStep=1, sDevice="Light",
                     sParam="Duration").get("sVal") == "900500"
    assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)
    start = bench.ask("StartRecipe", sAutomationID="justtext")
    run_id = start.get("sRunID")
    assert code(start) == 0 and run_id
    assert bench.ask("GetRunStatus").get("sStatus") == "running"
    assert bench.photocurrent_A() == pytest.approx(0.8 * JSC_A, rel=0.03)
    result = bench.ask("GetResult", sParam="totalirradiance_300_1200", sRunID=run_id)
    assert float(result.get("sVal", "nan")) == pytest.approx(800.0, rel=1e-3)
    cold = float(bench.ask("GetResult", sParam="Temperature_LedBox_Vis").get("sVal", "0"))
    bench.world.clock.sleep(600.0)
    warm = float(bench.ask("GetResult", sParam="Temperature_LedBox_Vis").get("sVal", "0"))
    assert cold == pytest.approx(25.0, abs=0.1) and 30.0 < warm < 40.0  # the LED box heats while lit
    assert code(bench.ask("CancelRecipe")) == 0
    assert bench.ask("GetRunStatus").get("sStatus") == "finished"
    assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)
    again = bench.ask("CancelRecipe")
    assert code(again) == -4001 and again.get("sError")  # nothing to cancel: lab code treats it as benign
    kept = bench.ask("GetResult", sParam="totalirradiance_300_1200", sRunID=run_id)  # the run's final value
    assert float(kept.get("sVal", "nan")) == pytest.approx(800.0, rel=1e-3)


def test_a_run_ends_by_itself_and_wait_for_run_finished_charges_the_time(bench: Bench) -> None:
    bench.ask("ActivateRecipe", sRecipe="AM1.5G")
    bench.ask("SetRecipeParam", sRecipe="AM1.5G", iStep=1, sDevice="Light", sParam="Duration", sVal=3000)
    run_id = bench.ask("StartRecipe").get("sRunID")
    clock = bench.world.clock
    start = clock.now()
    late = bench.ask("WaitForRunFinished", fTimeout=1000, sRunID=run_id)
    assert code(late) == 9 and clock.now() - start == pytest.approx(1.0, abs=0.05)
    assert bench.photocurrent_A() > 0.9 * JSC_A
    assert code(bench.ask("WaitForRunFinished", fTimeout=10000, sRunID=run_id)) == 0
    assert clock.now() - start == pytest.approx(3.0, abs=0.1)
    assert code(bench.ask("WaitForResultAvailable", fTimeout=10000, sRunID=run_id)) == 0
    assert bench.ask("GetRunStatus").get("sStatus") == "finished"
    assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)
    clock.sleep(100.0)
    assert bench.ask("GetRunStatus").get("sStatus") == "finished"


def test_data_series_is_an_am15g_like_spectrum_matching_the_irradiance(bench: Bench) -> None:
    assert code(bench.ask("GetDataSeries", iStep=1, sDevice="LE", sCurveName="Irradiance-Wavelength",
                          sAttributes="raw")) == 7  # no run yet: no result
    bench.ask("ActivateRecipe", sRecipe="AM1.5G")
    run_id = bench.ask("StartRecipe").get("sRunID")
    bench.conn.write(f'<WLRC><GetDataSeries iSeq="9" iStep="1" sDevice="LE" '
                     f'sCurveName="Irradiance-Wavelength" sAttributes="raw" sRunID="{run_id}"/></WLRC>')
    parsed = parse_reply(bench.conn.read())
    assert parsed.code == 0 and parsed.sequence == 9
    x, y = parsed.series["Wavelenght"], parsed.series["Irradiance"]
    assert (x[0], x[-1], parsed.units["Irradiance"]) == (300.0, 1200.0, "W/m^2/nm")
    assert np.trapezoid(y, x) == pytest.approx(1000.0, rel=0.01)
    assert 400 < x[np.argmax(y)] < 700 and np.all(y >= 0)
    assert y[x == 940.0][0] < 0.6 * y[x == 880.0][0]  # water absorption band
    bad = bench.ask("GetDataSeries", iStep=1, sDevice="LE", sCurveName="Voltage-Time", sAttributes="raw")
    assert code(bad) == 4


@pytest.mark.parametrize(("message", "expected_code"), [
    ('<WLRC><Frobnicate iSeq="5"/></WLRC>', 1),
    ('<WLRC><StartFreeFloat iSeq="5" fTime="0"/></WLRC>', 10),
    ('<WLRC><ActivateRecipe iSeq="5" sRecipe="nope"/></WLRC>', 3),
    ('<WLRC><ActivateRecipe iSeq="5"/></WLRC>', 2),
    ('<WLRC><SetRecipeParam iSeq="5" sRecipe="AM1.5G" iStep="2" sDevice="Light" sParam="Intensity" '
     'sVal="50"/></WLRC>', 4),
    ('<WLRC><SetRecipeParam iSeq="5" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="Colour" '
     'sVal="50"/></WLRC>', 4),
    ('<WLRC><SetRecipeParam iSeq="5" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="Intensity" '
     'sVal="150"/></WLRC>', 5),
    ('<WLRC><SetRecipeParam iSeq="5" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="Intensity" '
     'sVal="bright"/></WLRC>', 2),
    ('<WLRC><GetRecipeParam iSeq="5" sRecipe="AM1.5G" iStep="x" sDevice="Light" '
     'sParam="Intensity"/></WLRC>', 2),
    ('<WLRC><StartRecipe iSeq="5"/></WLRC>', 3),  # no recipe activated
    ('<WLRC><GetResult iSeq="5" sParam="totalirradiance_300_1200" sRunID="r9"/></WLRC>', 7),
    ('<WLRC><GetResult iSeq="5" sParam="Humidity"/></WLRC>', 4),
])
def test_errors_come_back_in_iec_with_the_sequence_number(bench: Bench, message: str,
                                                           expected_code: int) -> None:
    reply = bench.raw(message)
    assert (code(reply), reply.get("iSeq")) == (expected_code, "5")
    assert reply.get("sError")


def test_malformed_messages(bench: Bench) -> None:
    no_seq = bench.raw('<WLRC><GetRunStatus/></WLRC>')
    assert code(no_seq) == 2 and no_seq.get("iSeq") is None
    two = bench.raw('<WLRC><GetRunStatus iSeq="1"/><GetRunStatus iSeq="2"/></WLRC>')
    assert code(two) == 2
    bench.conn.write('<WLRC><GetRunStatus iSeq="3"/>')  # not a complete document: SinusGUI keeps waiting
    start = bench.world.clock.now()
    with pytest.raises(TimeoutError):
        bench.conn.read()
    assert bench.world.clock.now() - start == pytest.approx(1.0, abs=0.05)
    assert bench.ask("GetRunStatus").get("sStatus") == "idle"


def test_start_while_running_is_refused_and_activate_too(bench: Bench) -> None:
    bench.ask("ActivateRecipe", sRecipe="AM1.5G")
    bench.ask("StartRecipe")
    assert code(bench.ask("StartRecipe")) == 6
    assert code(bench.ask("ActivateRecipe", sRecipe="AM1.5G")) == 6
    assert code(bench.ask("SetRecipeParam", sRecipe="AM1.5G", iStep=1, sDevice="Light", sParam="Intensity",
                          sVal=50)) == 0  # stored for the next run
    assert bench.photocurrent_A() == pytest.approx(JSC_A, rel=0.03)
    bench.ask("CancelRecipe")
    bench.ask("StartRecipe")
    assert bench.photocurrent_A() == pytest.approx(0.5 * JSC_A, rel=0.03)


def test_lamp_failure_darkens_the_leds_and_refuses_a_start(bench: Bench) -> None:
    bench.ask("ActivateRecipe", sRecipe="AM1.5G")
    run_id = bench.ask("StartRecipe").get("sRunID")
    bench.mock.set_faults(lamp_failure=True)
    assert bench.world.light("sun").failed
    assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)
    value = bench.ask("GetResult", sParam="totalirradiance_300_1200", sRunID=run_id).get("sVal", "nan")
    assert float(value) == 0.0
    bench.ask("CancelRecipe")
    assert code(bench.ask("StartRecipe")) == 8


def test_the_mock_creates_its_led_light_and_exit_program_closes_the_port() -> None:
    bench = Bench(create_light=False, recipes={"AM1.5G_half": {"Intensity": 50, "Duration": 60000}})
    light = bench.world.light("sun")
    assert light.shutter_open and not light.lamp_on
    assert code(bench.ask("ActivateRecipe", sRecipe="AM1.5G")) == 3
    bench.ask("ActivateRecipe", sRecipe="AM1.5G_half")
    bench.ask("StartRecipe")
    first = bench.photocurrent_A()
    bench.world.clock.sleep(30.0)  # LED warm-up: a few per cent within seconds
    assert first < bench.photocurrent_A() == pytest.approx(0.5 * JSC_A, rel=0.05)
    assert code(bench.ask("ExitProgram")) == 0
    assert not light.lamp_on
    with pytest.raises(ConnectionResetError):
        bench.conn.write('<WLRC><GetRunStatus iSeq="99"/></WLRC>')
    with pytest.raises(ConnectionRefusedError):
        bench.mock.connect()
    assert mock_class("wavelabs_sinus70") is MockWavelabsSinus70


# ------------------------------------------------------------------------------------ the driver
def test_driver_role_methods_follow_the_world(bench: Bench) -> None:
    light = bench.driver()
    assert isinstance(light, LightSource)
    assert light.identify() == "Wavelabs,SINUS-70,WLRC,recipe=AM1.5G"
    light.set_intensity_suns(0.5)
    assert light.intensity_percent == 50.0
    assert light.read_irradiance_mW_cm2() == 0.0 and bench.photocurrent_A() == pytest.approx(0, abs=1e-9)
    light.open_shutter()
    light.open_shutter()  # idempotent while the run lasts
    assert light.read_irradiance_mW_cm2() == pytest.approx(50.0, rel=1e-3)
    assert bench.photocurrent_A() == pytest.approx(0.5 * JSC_A, rel=0.03)
    light.set_intensity_suns(1.0)  # restarts the run with the new intensity
    assert light.read_irradiance_mW_cm2() == pytest.approx(100.0, rel=1e-3)
    assert bench.photocurrent_A() == pytest.approx(JSC_A, rel=0.03)
    spectrum = light.read_spectrum()
    assert np.trapezoid(spectrum.irradiance, spectrum.wavelength_nm) == pytest.approx(1000.0, rel=0.01)
    light.duration_s = 7200
    assert light.duration_s == 7200.0
    snapshot = light.settings_snapshot()
    assert snapshot["intensity_suns"] == 1.0 and snapshot["run_status"] == "running"
    light.close_shutter()
    assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)
    light.close_shutter()  # nothing runs: -4001 is benign
    light.open_shutter()
    light.safe_state()
    assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)
    assert light.run_status() == "finished"
    with pytest.raises(InstrumentError, match="error 3"):
        light.activate_recipe("no_such_recipe")


def test_a_keithley2450_measures_the_photocurrent_the_driver_switches(bench: Bench) -> None:
    bench.world.unwire("smu")
    bench.world.wire("k2450", "cell")
    smu = Keithley2450(SimAdapter(MockKeithley2450(bench.world, "k2450")), "k2450", clock=bench.world.clock)
    smu.set_compliance_current(0.01)
    smu.source_voltage(0.0)
    smu.output_on()
    light = bench.driver()
    readings = []
    for suns in (0.25, 0.5, 1.0):
        light.set_intensity_suns(suns)
        light.open_shutter()
        readings.append(-smu.measure()[1])
    light.close_shutter()
    dark = -smu.measure()[1]
    assert abs(dark) < 1e-7
    np.testing.assert_allclose(readings, np.array([0.25, 0.5, 1.0]) * JSC_A, rtol=0.03)


def test_driver_recovers_from_timeouts_and_a_dropped_connection(bench: Bench) -> None:
    light = bench.driver()
    light.set_intensity_suns(0.8)
    light.open_shutter()
    bench.mock.set_faults(timeout=2)
    assert light.read_irradiance_mW_cm2() == pytest.approx(80.0, rel=1e-3)
    assert light.retry_count == 2
    bench.mock.set_faults(drop=1)
    assert light.read_irradiance_mW_cm2() == pytest.approx(80.0, rel=1e-3)  # reconnect during the run
    assert light.reconnect_count == 1 and light.run_status() == "running"
    light.close_shutter()
    bench.mock.set_faults(drop=1)
    light.set_intensity_suns(0.4)  # reconnect with no run: the recipe is re-activated
    bench.mock.set_faults(garble=1)  # the start happens, its reply is lost; the retry is refused (run busy)
    light.open_shutter()
    assert light.light_on and light.run_id == ""
    assert light.read_irradiance_mW_cm2() == pytest.approx(40.0, rel=1e-3)  # the latest run's result
    assert bench.photocurrent_A() == pytest.approx(0.4 * JSC_A, rel=0.03)
    check_permanent_drop(bench.mock, light.run_status, "sun", ADDRESS)


@pytest.mark.slow
def test_driver_over_tcp(bench: Bench) -> None:
    with driver_over_tcp(WavelabsSinus70, bench.mock, bench.world.clock) as light:
        light.set_intensity_suns(0.6)
        light.open_shutter()
        assert light.read_irradiance_mW_cm2() == pytest.approx(60.0, rel=1e-3)
        assert bench.photocurrent_A() == pytest.approx(0.6 * JSC_A, rel=0.03)
        assert light.read_spectrum().wavelength_nm.size == 901
        light.close_shutter()
        assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)


def test_tcp_client_without_newline_is_answered() -> None:
    """Clients written for SinusGUI end a message at </WLRC> and send no newline."""
    import socket

    from mock_instruments.server import serve
    from mock_instruments.wavelabs_sinus70 import MockWavelabsSinus70
    from mock_instruments.world import World

    world = World(seed=3)
    with serve({"sun": MockWavelabsSinus70(world, "sun", light="sun")}, port_base=0) as server:
        port = int(server.endpoints[0][2].split("::")[2])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b'<WLRC><ActivateRecipe iSeq="1" sRecipe="AM1.5G"/></WLRC>'
                           b'<WLRC><GetRunStatus iSeq="2"/></WLRC>')
            received = b""
            while received.count(b"\n") < 2:
                received += client.recv(4096)
    first, second = received.decode().splitlines()[:2]
    assert 'ActivateRecipe iSeq="1" iEC="0"' in first
    assert 'iSeq="2"' in second and 'sStatus="idle"' in second
