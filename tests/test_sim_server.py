"""The simulated bench over TCP: real pyvisa clients talk to the mocks as raw socket instruments."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import pyvisa
import pyvisa.errors

from mock_instruments.keithley2450 import MockKeithley2450
from mock_instruments.presets import preset
from mock_instruments.server import SimServer, serve
from mock_instruments.world import World

pytestmark = pytest.mark.slow


@pytest.fixture
def world() -> World:
    w = World(seed=2)
    w.add_light("light", warmup_tau_s=0.0)
    w.add_device("cell", preset("wbg_ref"))
    w.wire("smu", "cell")
    return w


@pytest.fixture
def rm() -> Iterator[pyvisa.ResourceManager]:
    manager = pyvisa.ResourceManager("@py")
    yield manager
    manager.close()


def open_socket(rm: pyvisa.ResourceManager, resource: str, timeout_ms: int = 2000
                ) -> pyvisa.resources.MessageBasedResource:
    inst = rm.open_resource(resource, read_termination="\n", write_termination="\n", timeout=timeout_ms)
    assert isinstance(inst, pyvisa.resources.MessageBasedResource)
    return inst


def test_pyvisa_over_tcp_sees_the_photocurrent_change_when_the_light_is_switched(
    world: World, rm: pyvisa.ResourceManager
) -> None:
    """Starts the sim server, opens the Keithley 2450 through pyvisa over TCP, and sees the photocurrent
    change when the light is switched in the world."""
    smu = MockKeithley2450(world, "smu")
    with serve({"smu": smu}, port_base=0) as server:
        [(name, model, resource)] = server.endpoints
        assert (name, model) == ("smu", "keithley2450")
        assert resource.startswith("TCPIP::127.0.0.1::") and resource.endswith("::SOCKET")
        inst = open_socket(rm, resource)
        assert inst.query("*IDN?").startswith("KEITHLEY INSTRUMENTS,MODEL 2450")
        inst.write(':SOUR:FUNC VOLT;:SOUR:VOLT 0;:SOUR:VOLT:ILIM 0.01;:SENS:FUNC "CURR";:OUTP ON')
        dark = float(inst.query(":READ?"))
        world.light().open_shutter()
        lit = float(inst.query(":READ?"))
        world.light().close_shutter()
        dark_again = float(inst.query(":READ?"))
        assert abs(dark) < 1e-8 and abs(dark_again) < 1e-8
        assert lit < -1e-3  # ≈ −Jsc·area
        inst.write(":SOUR:SWE:VOLT:LIN 0, 1, 5, 0.01;:INIT")
        assert inst.query("*OPC?") == "1"
        assert inst.query(":TRAC:ACT?") == "8"  # 3 READ? + 5 sweep points
        assert inst.query(":SYST:ERR?") == '0,"No error"'
        inst.close()


def test_ports_follow_mapping_order_and_clients_do_not_interleave(
    world: World, rm: pyvisa.ResourceManager
) -> None:
    serials = {"smu": "04000001", "smu2": "04000002"}
    mocks = {name: MockKeithley2450(world, name, serial=serial) for name, serial in serials.items()}
    with SimServer(mocks, port_base=0) as server:
        names = [e[0] for e in server.endpoints]
        ports = [int(e[2].split("::")[2]) for e in server.endpoints]
        assert names == ["smu", "smu2"] and len(set(ports)) == 2
        failures: list[str] = []

        def hammer(name: str, resource: str) -> None:
            inst = open_socket(rm, resource)
            inst.write(":SOUR:VOLT:ILIM 0.01;:OUTP ON")
            for k in range(40):
                volts = f"{(k % 10) / 10:.1f}"
                reply = inst.query(f":SOUR:VOLT {volts};:SOUR:VOLT?;*IDN?")
                level, idn = reply.split(";")
                if float(level) != float(volts) or idn.split(",")[2] != serials[name]:  # one message, atomic
                    failures.append(reply)
            inst.close()

        threads = [threading.Thread(target=hammer, args=server.endpoints[i % 2][::2]) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []


def test_faults_over_tcp(world: World, rm: pyvisa.ResourceManager) -> None:
    smu = MockKeithley2450(world, "smu")
    with serve({"smu": smu}, port_base=0) as server:
        resource = server.endpoints[0][2]
        inst = open_socket(rm, resource, timeout_ms=300)
        smu.set_faults(timeout=1)
        with pytest.raises(pyvisa.errors.VisaIOError):
            inst.query("*IDN?")  # no reply is sent
        assert inst.query("*IDN?").startswith("KEITHLEY")
        smu.set_faults(garble=1)
        assert any(ord(c) < 32 for c in inst.query("*IDN?"))
        smu.set_faults(drop=1)
        with pytest.raises(pyvisa.errors.VisaIOError):
            inst.query("*IDN?")  # the server closed the socket
        inst.close()
        assert open_socket(rm, resource).query("*IDN?").startswith("KEITHLEY")  # reconnecting works
        smu.set_faults(drop_permanent=True)
        refused = open_socket(rm, resource, timeout_ms=300)
        with pytest.raises(pyvisa.errors.VisaIOError):
            refused.query("*IDN?")
