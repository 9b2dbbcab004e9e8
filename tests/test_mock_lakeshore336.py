"""The Lake Shore 336 mock, driven by raw commands from the Model 336 User's Manual (chapter 6), and the real
driver against it: the controller's own PID loop on the world's cryostat stage brings the stage and a device
on it to temperature; faults and the TCP server as on hardware.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from instrument_helpers import RawBench, check_permanent_drop, driver_over_tcp, sim_driver

from drivers.keysight_e4980a import KeysightE4980A
from drivers.lakeshore336 import LakeShore336
from drivers.transport import SimAdapter
from labctl.errors import InstrumentError
from labctl.roles import TemperatureController
from mock_instruments.keysight_e4980a import MockKeysightE4980A
from mock_instruments.lakeshore336 import SERIAL_QUIET_S, MockLakeShore336
from mock_instruments.presets import preset
from mock_instruments.registry import mock_class
from mock_instruments.temperature_loop import diode_voltage_V
from mock_instruments.world import World

ADDRESS = "sim://lakeshore336/cryo"


class Bench(RawBench):
    """A fapbi3 cell on the LN2 cryostat stage, the 336 on the stage, an E4980A on the cell."""

    def __init__(self, seed: int = 4, **options: object) -> None:
        self.world = World(seed=seed)
        self.stage = self.world.stage
        self.cell = self.world.add_device("cell", preset("fapbi3"), location="stage")
        self.world.wire("lcr", "cell")
        self.cryo = MockLakeShore336(self.world, "cryo", **options)
        self.conn = self.cryo.connect()

    def write(self, *messages: str) -> None:
        for message in messages:
            self.pause()
            self.conn.write(message)

    def ask(self, message: str) -> str:
        self.pause()
        self.conn.write(message)
        return self.conn.read()

    def pause(self) -> None:
        """The manual's 50 ms between a command (or a reply) and the next message on the serial port."""
        self.world.clock.sleep(SERIAL_QUIET_S)

    def esr(self) -> int:
        return int(self.ask("*ESR?"))

    def driver(self, reconnect: bool = False, **options: Any) -> LakeShore336:
        return sim_driver(LakeShore336, self.cryo, ADDRESS, self.world.clock, reconnect=reconnect, **options)


# ------------------------------------------------------------------------------------------- protocol
def test_identification_and_power_up_settings(bench: Bench) -> None:
    assert bench.ask("*IDN?").startswith("LSCI,MODEL336,")
    bench.write("*RST")
    assert bench.ask("PID? 1") == "+0050.0,+0020.0,+0000.0"
    assert bench.ask("RAMP? 1") == "0,+10.0"
    assert bench.ask("RANGE? 1") == "0"
    assert bench.ask("OUTMODE? 1") == "1,1,0"
    assert bench.ask("OUTMODE? 2") == "1,2,0"
    assert bench.ask("OUTMODE? 3") == "0,0,0"
    assert bench.ask("INTYPE? A") == "1,0,0,0,1"
    assert bench.ask("INTYPE? D") == "0,0,0,0,1"
    assert bench.ask("HTRST? 1") == "0"
    assert bench.ask("*OPC?") == "1"
    assert bench.esr() == 0


def test_readings_of_every_input(bench: Bench) -> None:
    assert float(bench.ask("KRDG? A")) == pytest.approx(298.15, abs=0.05)
    assert float(bench.ask("KRDG?B")) == pytest.approx(298.15, abs=0.05)  # sample plate sensor
    assert float(bench.ask("CRDG? A")) == pytest.approx(25.0, abs=0.05)
    assert float(bench.ask("SRDG? A")) == pytest.approx(diode_voltage_V(298.15), abs=5e-4)
    assert bench.ask("RDGST? A") == "000" and bench.ask("RDGST? C") == "001"  # C, D disabled
    all_inputs = bench.ask("KRDG? 0").split(",")
    assert len(all_inputs) == 4 and float(all_inputs[2]) == 0.0
    reply = bench.ask("KRDG? A;KRDG? B")  # several queries in one line: replies joined by ';'
    assert len(reply.split(";")) == 2
    assert bench.ask("SETP 1,100.5;SETP? 1") == "+100.500"


@pytest.mark.parametrize(
    ("command", "bit"),
    [("FOO 1", 32), ("RANGE 1,7", 16), ("RANGE 3,2", 16), ("PID 1,50,20", 32), ("SETP 1,abc", 32),
     ("SETP 5,100", 16), ("RAMP 1,1,0.05", 16), ("OUTMODE 1,4,1,0", 16), ("PID 1,50,20,300", 16)],
)
def test_invalid_commands_are_ignored_and_flagged_in_the_status_register(bench: Bench, command: str,
                                                                         bit: int) -> None:
    before = [bench.ask(q) for q in ("RANGE? 1", "RANGE? 3", "PID? 1", "SETP? 1", "RAMP? 1", "OUTMODE? 1")]
    bench.write(command)
    assert bench.esr() == bit
    after = [bench.ask(q) for q in ("RANGE? 1", "RANGE? 3", "PID? 1", "SETP? 1", "RAMP? 1", "OUTMODE? 1")]
    assert after == before


def test_an_invalid_query_gets_no_reply(bench: Bench) -> None:
    bench.conn.write("KRDG? E")
    with pytest.raises(TimeoutError):
        bench.conn.read()
    assert bench.esr() == 16
    with pytest.raises(TimeoutError):
        bench.conn.read()  # a read with nothing asked: query error
    assert bench.esr() == 4


def test_setpoint_ramp(bench: Bench) -> None:
    bench.write("SETP 1,298", "RAMP 1,1,10", "SETP 1,250")
    assert bench.ask("RAMPST? 1") == "1"
    bench.world.clock.sleep(60.0)
    assert float(bench.ask("SETP? 1")) == pytest.approx(288.0, abs=0.05)  # the working setpoint (+ pauses)
    bench.world.clock.sleep(240.0)
    assert float(bench.ask("SETP? 1")) == 250.0 and bench.ask("RAMPST? 1") == "0"
    bench.write("RAMP 1,0,10", "SETP 1,300")
    assert float(bench.ask("SETP? 1")) == 300.0  # ramping off: a step


def test_heater_power_is_the_output_percent_of_the_range(bench: Bench) -> None:
    bench.write("OUTMODE 1,3,1,0", "MOUT 1,20", "RANGE 1,2")  # open loop, 20 % of the 10 W range
    bench.settle(1.0)
    assert float(bench.ask("HTR? 1")) == 20.0 and float(bench.ask("MOUT? 1")) == 20.0
    assert bench.stage.heater_power_W == pytest.approx(2.0)
    bench.write("RANGE 1,3")
    bench.settle(1.0)
    assert bench.stage.heater_power_W == pytest.approx(20.0)
    bench.write("RANGE 1,0")
    bench.settle(1.0)
    assert bench.stage.heater_power_W == 0.0 and float(bench.ask("HTR? 1")) == 0.0
    bench.write("HTRSET 1,2,3,0,1")
    assert bench.ask("HTRSET? 1") == "2,3,+0.000,1"


def test_open_sensor_fault(bench: Bench) -> None:
    bench.write("SETP 1,350", "RANGE 1,3")
    bench.settle(10.0)
    assert bench.stage.heater_power_W > 50.0
    bench.cryo.set_faults(open_sensor=True)
    bench.settle(1.0)
    assert bench.ask("RDGST? A") == "144" and float(bench.ask("KRDG? A")) == 0.0
    assert bench.stage.heater_power_W == 0.0  # a control input in error stops the output
    bench.cryo.set_faults(open_sensor=False)
    assert bench.ask("RDGST? A") == "000"


def test_the_registry_finds_the_mock() -> None:
    assert mock_class("lakeshore336") is MockLakeShore336


# ---------------------------------------------------------------------------------- driver, in process
def _track(cryo: LakeShore336, clock: object, duration_s: float, step_s: float = 10.0) -> np.ndarray:
    readings = []
    for _ in range(int(duration_s / step_s)):
        clock.sleep(step_s)  # type: ignore[attr-defined]
        readings.append(cryo.read_temperature_K())
    return np.array(readings)


def test_cool_down_to_250K_and_the_device_follows(bench: Bench) -> None:
    cryo = bench.driver()
    assert isinstance(cryo, TemperatureController)
    cryo.configure_control_loop("closed_loop", "A")
    cryo.set_setpoint_K(250.0)
    cryo.set_heater_range("high")
    readings = _track(cryo, bench.world.clock, 30 * 60.0)  # half an hour of virtual time
    assert readings[5] < 285.0  # the first minute: free cooling at ~20 K/min, heater at 0 %
    assert 250.0 - readings.min() < 1.5  # bounded undershoot
    assert cryo.wait_until_stable(250.0, tolerance_K=0.1, window_s=60.0, timeout_s=600.0)
    assert bench.stage.sample_temperature_K == pytest.approx(250.0, abs=0.05)
    assert cryo.heater_output_percent() == pytest.approx(100 * bench.stage.heater_power_W / 100.0, abs=0.1)
    lcr = KeysightE4980A(SimAdapter(MockKeysightE4980A(bench.world, "lcr")), "lcr", clock=bench.world.clock)
    lcr.set_frequency(1e4)
    capacitance = lcr.measure()[0]
    assert capacitance == pytest.approx(bench.cell.capacitance_F(0.0, 1e4, bench.stage.sample_temperature_K),
                                        rel=3e-4)


def test_ramp_up_to_330K_with_bounded_overshoot(bench: Bench) -> None:
    cryo = bench.driver()
    cryo.set_pid(50, 20, 0)
    cryo.set_setpoint_K(298.0)
    cryo.set_heater_range("high")
    assert cryo.wait_until_stable(298.0, 0.2, 60.0, 1800.0)
    cryo.set_ramp_rate_K_min(5.0)
    cryo.set_setpoint_K(330.0)
    assert cryo.ramp_settings() == (True, 5.0)
    readings = _track(cryo, bench.world.clock, 20 * 60.0)
    assert readings.max() - 330.0 < 1.0
    assert cryo.wait_until_stable(330.0, tolerance_K=0.1, window_s=120.0, timeout_s=1800.0)
    assert cryo.setpoint_K() == 330.0
    assert 40.0 < cryo.heater_output_percent() < 90.0
    snapshot = cryo.settings_snapshot()
    assert snapshot["setpoint_K"] == 330.0 and snapshot["heater_range"] == "high"
    assert snapshot["ramp_rate_K_min"] == 5.0 and snapshot["P"] == 50.0
    cryo.safe_state()
    assert bench.ask("RANGE? 1") == "0" and bench.ask("RANGE? 2") == "0"
    bench.settle(1.0)
    assert bench.stage.heater_power_W == 0.0
    assert _track(cryo, bench.world.clock, 120.0)[-1] < 325.0  # no power: the stage cools to its bath


def test_open_sensor_raises_instrument_error(bench: Bench) -> None:
    cryo = bench.driver()
    assert cryo.read_temperature_K() == pytest.approx(298.15, abs=0.05)
    bench.cryo.set_faults(open_sensor=True)
    with pytest.raises(InstrumentError, match="sensor units over range"):
        cryo.read_temperature_K()
    with pytest.raises(InstrumentError, match="cryo"):
        cryo.wait_until_stable(250.0, 0.1, 10.0, 100.0)


def test_set_heater_range_in_off_mode_is_refused(bench: Bench) -> None:
    cryo = bench.driver()
    cryo.configure_control_loop("off")
    with pytest.raises(InstrumentError, match="Off mode"):
        cryo.set_heater_range("low")


# ---------------------------------------------------------------------------------------------- faults
def test_timeouts_and_drops_are_recovered_and_a_permanent_drop_is_reported(bench: Bench) -> None:
    cryo = bench.driver(reconnect=True)
    cryo.set_setpoint_K(280.0)
    bench.cryo.set_faults(timeout=2)
    assert 290.0 < cryo.read_temperature_K() < 298.2  # the heater is off: the stage cools meanwhile
    # the query timed out, then the resynchronisation marker: the link was reopened, the query asked again
    assert cryo.retry_count == 1 and cryo.resync_count == 1 and cryo.reconnect_count == 1
    bench.cryo.set_faults(drop=1)
    assert cryo.setpoint_K() == 280.0
    assert cryo.reconnect_count == 2
    check_permanent_drop(bench.cryo, cryo.read_temperature_K, "cryo", ADDRESS)


# ------------------------------------------------------------------------------------------------- TCP
@pytest.mark.slow
def test_driver_over_tcp(bench: Bench) -> None:
    with driver_over_tcp(LakeShore336, bench.cryo, bench.world.clock) as cryo:
        assert cryo.identify().startswith("LSCI,MODEL336")
        assert cryo.read_temperature_K() == pytest.approx(298.15, abs=0.1)
        cryo.set_setpoint_K(260.0)
        cryo.set_heater_range("high")
        assert cryo.wait_until_stable(260.0, 0.2, 30.0, 3600.0, poll_s=30.0)
        cryo.safe_state()
        assert cryo.heater_range() == "off"


# -------------------------------------------------------------------------------------- serial pacing
def test_a_message_sooner_than_50ms_after_the_last_exchange_is_lost_on_the_serial_port(bench: Bench) -> None:
    bench.write("SETP 1,200")
    bench.conn.write("SETP 1,250")  # no pause: the manual's message flow rule broken
    assert bench.cryo.lost_messages == 1
    assert float(bench.ask("SETP? 1")) == 200.0
    bench.ask("*IDN?")
    bench.conn.write("KRDG? A")  # straight after a reply: lost too, and the query is never answered
    with pytest.raises(TimeoutError):
        bench.conn.read()
    assert bench.cryo.lost_messages == 2


def test_the_driver_keeps_50ms_between_exchanges_so_nothing_is_lost(bench: Bench) -> None:
    cryo = bench.driver()
    start = bench.world.clock.now()
    cryo.set_ramp_rate_K_min(0.0)  # RAMP, then RAMP? 50 ms later
    cryo.set_setpoint_K(250.0)  # OUTMODE?, INTYPE?, SETP
    assert cryo.setpoint_K() == 250.0
    assert bench.cryo.lost_messages == 0 and cryo.retry_count == 0
    assert bench.world.clock.now() - start == pytest.approx(7 * 0.05, abs=0.01)


def test_without_the_pause_the_old_transport_loses_commands(bench: Bench) -> None:
    """A bare in-process session (how labctl opened a Lake Shore before: no pause) loses messages."""
    cryo = LakeShore336(SimAdapter(bench.cryo), "cryo", address=ADDRESS, clock=bench.world.clock)
    with pytest.raises(InstrumentError):
        cryo.set_heater_range("high")  # OUTMODE?, then RANGE lost, RANGE? lost ...
    assert bench.cryo.lost_messages > 0


def test_a_tcp_session_is_the_ethernet_port_without_pacing(bench: Bench) -> None:
    session = bench.cryo.connect_tcp()
    session.write("SETP 1,200")
    session.write("SETP? 1")
    assert session.take_replies() == ["+200.000"] and bench.cryo.lost_messages == 0


# ------------------------------------------------------------------------------------- setpoint units
def test_setpoints_follow_the_control_sensor_preferred_units(bench: Bench) -> None:
    bench.write("INTYPE A,1,0,0,0,2")  # input A: diode, preferred units Celsius
    assert bench.ask("INTYPE? A") == "1,0,0,0,2"
    bench.write("SETP 1,-73.15")
    assert bench.cryo.outputs[1].ramp.target_K == pytest.approx(200.0)
    assert bench.ask("SETP? 1") == "-73.1500"
    bench.write("INTYPE A,1,0,0,0,3")  # sensor units: volts on the diode curve
    assert float(bench.ask("SETP? 1")) == pytest.approx(diode_voltage_V(200.0), abs=1e-5)
    bench.write(f"SETP 1,{diode_voltage_V(150.0):.5f}")
    assert bench.cryo.outputs[1].ramp.target_K == pytest.approx(150.0, abs=0.01)


def test_the_driver_sets_kelvin_whatever_units_the_sensor_prefers(bench: Bench) -> None:
    bench.write("INTYPE A,1,0,0,0,2")
    cryo = bench.driver()
    cryo.set_setpoint_K(250.0)
    assert bench.cryo.outputs[1].ramp.target_K == pytest.approx(250.0)  # not 250 °C
    assert cryo.setpoint_K() == pytest.approx(250.0)
    assert cryo.settings_snapshot()["setpoint_units"] == "celsius"
    bench.write("INTYPE A,1,0,0,0,3")
    with pytest.raises(InstrumentError, match="sensor units"):
        cryo.set_setpoint_K(250.0)
    assert bench.cryo.outputs[1].ramp.target_K == pytest.approx(250.0)  # nothing was sent


# ------------------------------------------------------------------------------------- status registers
def test_operation_event_register_and_status_byte(bench: Bench) -> None:
    assert int(bench.ask("OPSTR?")) & 16  # a new reading is always there
    bench.write("SETP 1,297", "RAMP 1,1,100", "SETP 1,290")
    assert not int(bench.ask("OPSTR?")) & 8  # loop 1 still ramping
    bench.world.clock.sleep(60.0)
    assert int(bench.ask("OPST?")) & 8  # loop 1 ramp done
    bench.write("OPSTE 8")
    assert bench.ask("OPSTE?") == "008"
    assert int(bench.ask("*STB?")) & 128  # operation summary
    bench.write("*ESE 32", "FOO")
    assert int(bench.ask("*STB?")) & 32  # event summary: a command error is enabled


# ------------------------------------------------------------------- another client: pymeasure's driver
@pytest.mark.slow
def test_pymeasure_lakeshore3xx_drives_the_served_mock(bench: Bench) -> None:
    """pymeasure's LakeShore3xx (not written with this mock) over ``labctl sim serve``'s TCP port, with the
    336's CR LF replies."""
    from pymeasure.instruments.lakeshore import LakeShore3xx

    from mock_instruments.server import serve

    with serve({"cryo": bench.cryo}, port_base=0) as server:
        # pymeasure opens the resource itself, with its own termination (CR LF); pyvisa-py, never a system VISA
        controller = LakeShore3xx(server.endpoints[0][2], visa_library="@py", timeout=3000)
        adapter = controller.adapter
        try:
            assert controller.id.startswith("LSCI,MODEL336,")
            assert controller.input_A.kelvin == pytest.approx(298.15, abs=0.1)
            assert controller.input_A.celsius == pytest.approx(25.0, abs=0.1)
            assert controller.input_A.sensor == pytest.approx(diode_voltage_V(298.15), abs=1e-3)
            controller.output_1.setpoint = 250
            assert controller.output_1.setpoint == 250.0
            controller.output_1.range = "medium"
            assert controller.output_1.range == "medium"
            controller.output_1.mout = 12.5
            assert controller.output_1.mout == 12.5
            assert 0.0 <= controller.output_1.output <= 100.0
            assert controller.complete == "1"
            controller.output_1.range = "off"
            assert controller.output_1.range == "off"
        finally:
            adapter.close()


@pytest.mark.slow
def test_a_serial_station_that_names_only_the_port_connects_at_57600_7O1(bench: Bench) -> None:
    from labctl.bench import open_driver
    from labctl.station import Station
    from mock_instruments.server import serve

    with serve({"cryo": bench.cryo}, port_base=0) as server:
        port = server.endpoints[0][2].split("::")[2]
        station = Station.from_text(f'[instruments.cryo]\ndriver = "lakeshore336"\n'
                                    f'address = "socket://127.0.0.1:{port}"\n')
        cryo = open_driver(station, "cryo", bench.world.clock)
        try:
            serial = cryo.adapter.connection
            assert (serial.baudrate, serial.bytesize, serial.parity, serial.stopbits) == (57600, 7, "O", 1)
            assert cryo.adapter.link_settings["command_interval_s"] == 0.05
            assert cryo.identify().startswith("LSCI,MODEL336")
            assert cryo.read_temperature_K() == pytest.approx(298.15, abs=0.1)
        finally:
            cryo.adapter.close()
