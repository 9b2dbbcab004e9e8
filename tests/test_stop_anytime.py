"""A run stops at any moment: SIGTERM or abort in the middle of a 30 s instrument-timed sweep reaches the safe
state within a second, the process is gone within two, the SMU's output is off (asked of the instrument), and
the file says why the run stopped. Against `labctl sim serve` (real transports, real time) and in-process on
real time; plus `labctl run jv` against served instruments completes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvisa

from labctl.cli import SIGTERM_REASON
from labctl.clock import RealClock
from labctl.runner import Runner
from labctl.station import Station
from labctl.store import RunReader
from procedures.jv_hysteresis import JVHysteresis

pytestmark = pytest.mark.slow

#: A dark forward scan 0 → 0.3 V at 0.01 V/s: 31 points one second apart, timed by the SMU.
SLOW_SWEEP = ["--param", "sample=wbg_ref", "--param", "v_min_V=0", "--param", "v_max_V=0.3", "--param",
              "step_V=0.01", "--param", "scan_rates_V_s=0.01", "--param", "suns=0", "--param", "direction=FS"]
ENV = dict(os.environ, COLUMNS="200")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _labctl(*args: str, cwd: Path, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "labctl.cli", *args], cwd=cwd, text=True, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)  # type: ignore[call-overload]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """`labctl sim serve` of the built-in station on free ports; the station file it wrote, the endpoints."""
    server = subprocess.Popen([sys.executable, "-m", "labctl.cli", "sim", "serve", "--port-base", "0", "--dial",
                               f"sun=127.0.0.1:{_free_port()}", "--write-station", "served.toml"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        endpoints: dict[str, str] = {}
        assert server.stdout is not None
        deadline = time.monotonic() + 60
        while len(endpoints) < 12 and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            name, _model, address = line.split()
            endpoints[name] = address
        assert len(endpoints) == 12, server.stderr.read() if server.stderr else ""
        yield tmp_path / "served.toml", endpoints
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def _smu_output_on(resource: str) -> bool:
    rm = pyvisa.ResourceManager("@py")
    smu = rm.open_resource(resource, read_termination="\n", write_termination="\n", timeout=5000)
    try:
        return bool(int(smu.query(":OUTP?")))
    finally:
        smu.close()


def _wait_until(predicate: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"not true within {timeout_s} s")


def _terminate_and_time(process: subprocess.Popen[str]) -> float:
    start = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    return time.monotonic() - start


def _only_file(directory: Path) -> Path:
    files = list(directory.glob("*.h5"))
    assert len(files) == 1, files
    return files[0]


def test_sigterm_mid_sweep_against_served_instruments_stops_within_two_seconds(
        served: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    station_file, endpoints = served
    run = _labctl("run", "jv", "--station", str(station_file), *SLOW_SWEEP, "--out", "data", cwd=tmp_path)
    try:
        _wait_until(lambda: _smu_output_on(endpoints["smu"]), 60)  # the sweep has begun
        time.sleep(4.0)
        took = _terminate_and_time(run)
    finally:
        if run.poll() is None:
            run.kill()
    output = run.stdout.read() if run.stdout else ""
    assert took < 2.0, output
    assert run.returncode == 1
    assert not _smu_output_on(endpoints["smu"])
    with RunReader(_only_file(tmp_path / "data")) as reader:
        assert reader.status == "interrupted"
        assert "SIGTERM" in str(reader.attrs.get("end_reason", ""))
        kinds = [event.kind for event in reader.events()]
    assert "safe_state" in kinds


def test_jv_against_served_instruments_completes(served: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    station_file, endpoints = served
    run = _labctl("run", "jv", "--station", str(station_file), "--param", "sample=wbg_ref", "--param",
                  "v_min_V=0", "--param", "v_max_V=1.3", "--param", "step_V=0.02", "--param", "scan_rates_V_s=1",
                  "--out", "data", cwd=tmp_path)
    output, _ = run.communicate(timeout=180)
    assert run.returncode == 0, output
    with RunReader(_only_file(tmp_path / "data")) as reader:
        assert reader.status == "completed"
        scans = [name for name in reader.block_names() if name.startswith("scan_")]
        assert len(scans) == 2
        for name in scans:
            block = reader.block(name)
            assert len(block["voltage_V"]) == 66
            assert float(block["current_density_mA_cm2"].max()) > 15.0  # lit: the SINUS-70 was on
    assert not _smu_output_on(endpoints["smu"])


def test_sigterm_mid_sweep_on_real_time_in_a_subprocess(tmp_path: Path) -> None:
    run = _labctl("run", "jv", "--station", "sim", "--clock", "real", *SLOW_SWEEP, "--out", "data", cwd=tmp_path)
    try:
        time.sleep(8.0)  # imports and connecting take a few seconds; the sweep runs 30 s
        assert run.poll() is None
        took = _terminate_and_time(run)
    finally:
        if run.poll() is None:
            run.kill()
    assert took < 2.0
    with RunReader(_only_file(tmp_path / "data")) as reader:
        assert reader.status == "interrupted" and reader.attrs.get("end_reason") == SIGTERM_REASON


def test_abort_mid_sweep_in_process_turns_the_output_off_within_a_second(tmp_path: Path) -> None:
    """The same stop in-process, where the mock can be asked directly, and timed to the safe state."""
    station = Station.load("sim")
    proc = JVHysteresis(sample=["wbg_ref"], v_min_V=0.0, v_max_V=0.3, step_V=0.01, scan_rates_V_s=[0.01],
                        suns=0.0, direction="FS")
    runner = Runner(proc, station=station, directory=tmp_path, clock=RealClock())
    stopped: dict[str, float] = {}

    def stop_four_seconds_into_the_sweep() -> None:
        _wait_until(lambda: runner.bench is not None and runner.status == "running", 60)
        assert runner.bench is not None and runner.bench.simulation is not None
        mock = runner.bench.simulation.mocks["smu"]
        session = mock.connect()

        def output_on() -> bool:
            session.write(":OUTP?")
            return session.read() == "1"

        _wait_until(output_on, 60)
        time.sleep(4.0)
        stopped["at"] = time.monotonic()
        runner.abort(SIGTERM_REASON, status="interrupted")
        _wait_until(lambda: not output_on(), 5)
        stopped["output_off"] = time.monotonic()

    controller = threading.Thread(target=stop_four_seconds_into_the_sweep)
    controller.start()
    result = runner.run()
    returned = time.monotonic()
    controller.join(10)
    assert result.status == "interrupted" and result.reason == SIGTERM_REASON
    assert stopped["output_off"] - stopped["at"] < 1.0
    assert returned - stopped["at"] < 2.0
