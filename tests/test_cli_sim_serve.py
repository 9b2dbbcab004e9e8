"""`labctl sim serve`: the simulated bench as TCP socket instruments that plain pyvisa clients can use."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pyvisa

pytestmark = pytest.mark.slow


def test_sim_serve_photocurrent_follows_the_light_over_tcp(tmp_path: Path) -> None:
    server = subprocess.Popen([sys.executable, "-m", "labctl.cli", "sim", "serve", "--port-base", "0"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, COLUMNS="200"))
    try:
        endpoints: dict[str, tuple[str, str]] = {}
        deadline = time.monotonic() + 60
        assert server.stdout is not None
        while len(endpoints) < 11 and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            name, model, resource = line.split()
            endpoints[name] = (model, resource)
        assert len(endpoints) == 11, server.stderr.read() if server.stderr else ""
        assert all(r.startswith("TCPIP::127.0.0.1::") and r.endswith("::SOCKET") for _, r in endpoints.values())
        assert endpoints["smu"][0] == "keithley2450"

        rm = pyvisa.ResourceManager("@py")
        opened = []
        try:
            def open_(name: str) -> pyvisa.resources.MessageBasedResource:
                resource = rm.open_resource(endpoints[name][1], read_termination="\n", write_termination="\n",
                                            timeout=5000)
                opened.append(resource)
                return resource  # type: ignore[return-value]

            smu, matrix, sun = open_("smu"), open_("matrix"), open_("sun")
            assert "MODEL 2450" in smu.query("*IDN?")
            matrix.write(":ROUT:CLOS (@1!1!1)")  # 7012 row 1 (the SMU) to column 1: the wbg_ref cell
            smu.write(":SOUR:FUNC VOLT")
            smu.write(":SOUR:VOLT 0")
            smu.write(':SENS:FUNC "CURR"')
            smu.write(":SOUR:VOLT:ILIM 0.01")
            smu.write(":OUTP ON")
            dark_A = float(smu.query(":READ?"))
            reply = sun.query('<WLRC><ActivateRecipe iSeq="1" sRecipe="AM1.5G"/></WLRC>')
            assert 'iEC="0"' in reply
            assert 'iEC="0"' in sun.query('<WLRC><StartRecipe iSeq="2"/></WLRC>')
            lit_A = float(smu.query(":READ?"))
            smu.write(":OUTP OFF")
            assert smu.query(":SYST:ERR?").startswith("0,")
        finally:
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
