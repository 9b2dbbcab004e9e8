"""`labctl sim serve`: the simulated bench as TCP socket instruments that plain pyvisa clients can use."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pyvisa

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_sim_serve_photocurrent_follows_the_light_over_tcp(tmp_path: Path) -> None:
    sun_port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "labctl.cli", "sim", "serve", "--port-base", "0",
                               "--dial", f"sun=127.0.0.1:{sun_port}"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, COLUMNS="200"))
    try:
        endpoints: dict[str, tuple[str, str]] = {}
        deadline = time.monotonic() + 60
        assert server.stdout is not None
        while len(endpoints) < 12 and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            name, model, resource = line.split()
            endpoints[name] = (model, resource)
        assert len(endpoints) == 12, server.stderr.read() if server.stderr else ""
        # SinusGUI connects to its controller: the served SINUS-70 dials the address it was given
        assert endpoints.pop("sun") == ("wavelabs_sinus70", f"wavelabs://127.0.0.1:{sun_port}")
        assert all(r.startswith("TCPIP::127.0.0.1::") and r.endswith("::SOCKET") for _, r in endpoints.values())
        assert endpoints["smu"][0] == "keithley2450"

        rm = pyvisa.ResourceManager("@py")  # the tests never depend on a system VISA library
        opened = []
        with socket.create_server(("127.0.0.1", sun_port)) as listener:
            listener.settimeout(10)
            sun, _ = listener.accept()
        sun.settimeout(5)

        def ask_sun(request: bytes) -> str:
            sun.sendall(request)  # no newline: a request ends at </WLRC>
            reply = b""
            while not reply.endswith(b"\n"):
                reply += sun.recv(4096)
            return reply.decode()

        try:
            def open_(name: str) -> pyvisa.resources.MessageBasedResource:
                resource = rm.open_resource(endpoints[name][1], read_termination="\n", write_termination="\n",
                                            timeout=5000)
                opened.append(resource)
                return resource  # type: ignore[return-value]

            smu, matrix = open_("smu"), open_("matrix")
            assert "MODEL 2450" in smu.query("*IDN?")
            matrix.write(":ROUT:CLOS (@1!1!1)")  # 7012 row 1 (the SMU) to column 1: the wbg_ref cell
            smu.write(":SOUR:FUNC VOLT")
            smu.write(":SOUR:VOLT 0")
            smu.write(':SENS:FUNC "CURR"')
            smu.write(":SOUR:VOLT:ILIM 0.01")
            smu.write(":OUTP ON")
            dark_A = float(smu.query(":READ?"))
            assert 'iEC="0"' in ask_sun(b'<WLRC><ActivateRecipe iSeq="1" sRecipe="AM1.5G"/></WLRC>')
            assert 'iEC="0"' in ask_sun(b'<WLRC><StartRecipe iSeq="2"/></WLRC>')
            lit_A = float(smu.query(":READ?"))
            smu.write(":OUTP OFF")
            assert smu.query(":SYST:ERR?").startswith("0,")
        finally:
            sun.close()
            for resource in opened:
                resource.close()
            rm.close()
        # 0.1 cm² wbg_ref at 1 sun: about -17 mA/cm² × 0.1 cm² = -1.7 mA (SMU sign), dark: ~0
        assert abs(dark_A) < 1e-5
        assert lit_A == pytest.approx(-1.7e-3, rel=0.1)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert server.returncode in (0, -15)


def test_sim_serve_refuses_a_dial_target_for_an_instrument_that_does_not_dial(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "labctl.cli", "sim", "serve", "--port-base", "0",
                           "--dial", "smu=127.0.0.1:3334"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "smu is not an instrument that connects out" in done.stderr
