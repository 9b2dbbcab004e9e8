"""The Wavelabs SINUS-70 mock: raw WLRC XML as public SinusGUI clients send it, and the real driver on it.

Message syntax and connection roles follow the WLRC use in public lab code (greyltc/centralcontrol
``wavelabs.py``: SinusGUI connects to the control PC, which listens on 3334; requests built with ElementTree,
``iSeq`` from 0, ``StartRecipe sAutomationID``, no newline after a request, one reply per line; results read
after WaitForRunFinished and WaitForResultAvailable; -4001 for nothing to cancel).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from instrument_helpers import AREA_CM2, SimBench, check_permanent_drop, lamp_world

from drivers.keithley2450 import Keithley2450
from drivers.link_settings import resolve
from drivers.transport import SimAdapter, open_sim
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
        """The driver listening for the simulated SinusGUI (which dials 127.0.0.1:3334), in-process."""
        settings = resolve(WavelabsSinus70, ADDRESS)

        def factory() -> SimAdapter:
            return open_sim(self.mock, settings, self.world.clock)

        return WavelabsSinus70(factory(), "sun", address=ADDRESS, adapter_factory=factory,
                               clock=self.world.clock)

    def finished_run(self, duration_ms: int = 2000) -> str:
        """Run the active recipe for ``duration_ms``, wait until SinusGUI has its result; the run ID."""
        self.ask("SetRecipeParam", sRecipe="AM1.5G", iStep=1, sDevice="Light", sParam="Duration", sVal=duration_ms)
        self.ask("ActivateRecipe", sRecipe="AM1.5G")
        run_id = self.ask("StartRecipe").get("sRunID")
        assert code(self.ask("WaitForRunFinished", fTimeout=duration_ms + 1000, sRunID=run_id)) == 0
        assert code(self.ask("WaitForResultAvailable", fTimeout=1000, sRunID=run_id)) == 0
        return str(run_id)


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
    early = bench.ask("GetResult", sParam="totalirradiance_300_1200", sRunID=run_id)
    assert code(early) == 7 and "WaitForResultAvailable" in early.get("sError", "")  # not while it runs
    bench.world.clock.sleep(600.0)
    assert code(bench.ask("CancelRecipe")) == 0
    assert bench.ask("GetRunStatus").get("sStatus") == "finished"
    assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)
    assert code(bench.ask("GetResult", sParam="totalirradiance_300_1200", sRunID=run_id)) == 7  # evaluating
    clock = bench.world.clock
    before = clock.now()
    assert code(bench.ask("WaitForResultAvailable", fTimeout=5000, sRunID=run_id)) == 0
    assert clock.now() - before == pytest.approx(0.2, abs=0.02)  # SinusGUI's evaluation time, charged
    result = bench.ask("GetResult", sParam="totalirradiance_300_1200", sRunID=run_id)
    assert float(result.get("sVal", "nan")) == pytest.approx(800.0, rel=1e-3)
    warm = float(bench.ask("GetResult", sParam="Temperature_LedBox_Vis").get("sVal", "0"))
    assert 30.0 < warm < 40.0  # the LED box heated during the ten-minute run
    again = bench.ask("CancelRecipe")
    assert code(again) == -4001 and again.get("sError")  # nothing to cancel: lab code counts it a success


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
    run_id = bench.finished_run()
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
    bench.ask("CancelRecipe")
    bench.ask("WaitForResultAvailable", fTimeout=1000, sRunID=run_id)
    value = bench.ask("GetResult", sParam="totalirradiance_300_1200", sRunID=run_id).get("sVal", "nan")
    assert float(value) == 0.0
    assert code(bench.ask("StartRecipe")) == 8


def test_a_short_dark_gap_between_runs_keeps_the_leds_warm(bench: Bench) -> None:
    light = bench.world.light("sun")
    light.warmup_tau_s, light.warmup_start_fraction = 60.0, 0.97  # a slow warm-up, so its memory shows

    def output() -> float:
        return light.incident_suns_at(bench.world.time_s) / (1.0 + light.drift(bench.world.time_s))

    bench.ask("ActivateRecipe", sRecipe="AM1.5G")
    bench.ask("StartRecipe")
    assert output() == pytest.approx(0.97, abs=1e-3)  # a cold engine starts at 97 %
    bench.settle(120.0)
    warm = output()
    assert warm == pytest.approx(1.0 - 0.03 * np.exp(-2.0), rel=1e-3)
    bench.ask("CancelRecipe")
    bench.ask("StartRecipe")  # dark for two messages (20 ms)
    assert output() == pytest.approx(warm, rel=1e-4)
    bench.ask("CancelRecipe")
    bench.settle(3600.0)  # an hour dark: the engine is cold again
    bench.ask("StartRecipe")
    assert output() == pytest.approx(0.97, abs=1e-3)


def test_simulated_sinusgui_connects_only_to_the_address_it_is_set_to() -> None:
    bench = Bench(dial="127.0.0.1:4000")
    assert bench.mock.dial_in("127.0.0.1:3334") is None
    session = bench.mock.dial_in("localhost:4000")
    assert session is not None
    session.write('<WLRC><GetRunStatus iSeq="1"/></WLRC>')
    assert 'sStatus="idle"' in session.read()
    clock = bench.world.clock
    start = clock.now()
    with pytest.raises(TimeoutError, match=r"nothing connected to 127\.0\.0\.1:3334 within 10 s"):
        open_sim(bench.mock, resolve(WavelabsSinus70, ADDRESS), clock)  # labctl listens elsewhere
    assert clock.now() - start == pytest.approx(10.0)
    assert open_sim(bench.mock, resolve(WavelabsSinus70, ADDRESS, {"listen": "127.0.0.1:4000"}), clock)



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
    light.close_shutter()  # nothing runs: -4001 means the light is already off
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
    assert light.retry_count >= 1  # no marker in WLRC: the link was reopened, the configuration replayed
    bench.mock.set_faults(drop=1)
    assert light.read_irradiance_mW_cm2() == pytest.approx(80.0, rel=1e-3)  # reconnect during the run
    assert light.reconnect_count >= 1 and light.run_status() == "running"
    light.close_shutter()
    bench.mock.set_faults(drop=1)
    light.set_intensity_suns(0.4)  # reconnect with no run: the recipe is re-activated
    bench.mock.set_faults(garble=1)  # the start happens, its reply is lost; the retry is refused (run busy)
    light.open_shutter()
    assert light.light_on and light.run_id == ""
    assert light.read_irradiance_mW_cm2() == pytest.approx(40.0, rel=1e-3)  # a measurement run's result
    assert bench.photocurrent_A() == pytest.approx(0.4 * JSC_A, rel=0.03)
    check_permanent_drop(bench.mock, light.run_status, "sun", ADDRESS)


def test_old_style_reading_during_a_run_is_refused(bench: Bench) -> None:
    """Reading GetResult while the recipe runs (what labctl used to do) gets no result: code 7."""
    bench.ask("ActivateRecipe", sRecipe="AM1.5G")
    run_id = bench.ask("StartRecipe").get("sRunID")
    assert code(bench.ask("GetResult", sParam="totalirradiance_300_1200", sRunID=run_id)) == 7
    light = bench.driver()
    light.light_on, light._recipe_active = True, True
    assert light.read_irradiance_mW_cm2() == pytest.approx(100.0, rel=1e-2)  # via a measurement run
    assert bench.ask("GetRunStatus").get("sStatus") == "running"  # and lit again


def test_a_settled_irradiance_is_reused_until_it_is_a_minute_old_or_the_intensity_changes(bench: Bench) -> None:
    light = bench.driver()
    light.open_shutter()
    runs = bench.mock.run_count
    first, second = light.read_irradiance_mW_cm2(), light.read_irradiance_mW_cm2()
    assert bench.mock.run_count == runs + 2 * 2  # each read: a measurement run, then the light again
    assert second == pytest.approx(first, rel=0.005)  # steady light: settled after two readings
    assert light.read_irradiance_mW_cm2() == second and bench.mock.run_count == runs + 4  # not measured
    bench.settle(61.0)
    light.read_irradiance_mW_cm2()
    assert bench.mock.run_count == runs + 6  # a minute later: measured again
    light.set_intensity_suns(0.5)
    assert light.read_irradiance_mW_cm2() == pytest.approx(50.0, rel=1e-2)  # a new intensity: measured


def test_a_dark_jv_run_reports_no_cancel_code(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    from labctl.runner import Runner
    from labctl.station import Station
    from procedures.jv_hysteresis import JVHysteresis

    with caplog.at_level("INFO"):
        result = Runner(JVHysteresis(sample=["wbg_ref"], step_V=0.1, nplc=0.01, suns=0.0), station=Station.load("sim"),
                        directory=tmp_path).run()
    assert result.status == "completed"
    assert "-4001" not in caplog.text


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_driver_over_tcp_listens_and_the_served_sinusgui_connects(bench: Bench) -> None:
    from drivers.transport import open_link
    from mock_instruments.server import serve

    port = _free_port()
    address = f"wavelabs://127.0.0.1:{port}"
    with serve({"sun": bench.mock}, port_base=0, dial={"sun": f"127.0.0.1:{port}"}) as server:
        assert server.endpoints == [("sun", "wavelabs_sinus70", address)]
        settings = resolve(WavelabsSinus70, address, {"timeout_ms": 5000})
        adapter = open_link(settings)
        light = WavelabsSinus70(adapter, "sun", address=address, adapter_factory=lambda: open_link(settings),
                                clock=bench.world.clock)
        try:
            light.set_intensity_suns(0.6)
            light.open_shutter()
            assert light.read_irradiance_mW_cm2() == pytest.approx(60.0, rel=1e-2)
            assert bench.photocurrent_A() == pytest.approx(0.6 * JSC_A, rel=0.03)
            assert light.read_spectrum().wavelength_nm.size == 901
            adapter = light.adapter
            adapter.close()  # the link drops: the driver listens again and SinusGUI reconnects
            light.close_shutter()
            assert light.reconnect_count == 1
            assert bench.photocurrent_A() == pytest.approx(0.0, abs=1e-9)
        finally:
            light.adapter.close()


@pytest.mark.slow
def test_served_sinusgui_sends_replies_as_lines_to_requests_without_newline() -> None:
    """Clients written for SinusGUI end a request at </WLRC> and send no newline; each reply is one line."""
    import socket

    from mock_instruments.server import serve
    from mock_instruments.world import World

    port = _free_port()
    world = World(seed=3)
    with socket.create_server(("127.0.0.1", port)) as listener:
        listener.settimeout(10)
        with serve({"sun": MockWavelabsSinus70(world, "sun", light="sun")}, dial={"sun": f"127.0.0.1:{port}"}):
            client, _ = listener.accept()
            with client:
                client.settimeout(5)
                client.sendall(b'<WLRC><ActivateRecipe iSeq="1" sRecipe="AM1.5G"/></WLRC>'
                               b'<WLRC><GetRunStatus iSeq="2"/></WLRC>')
                received = b""
                while received.count(b"\n") < 2:
                    received += client.recv(4096)
    first, second = received.decode().splitlines()[:2]
    assert 'ActivateRecipe iSeq="1" iEC="0"' in first
    assert 'iSeq="2"' in second and 'sStatus="idle"' in second
