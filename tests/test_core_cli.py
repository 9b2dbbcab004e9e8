"""CLI contracts: strict JSON for scripts, exit codes, analysing a file that is still being written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from labctl.clock import VirtualClock
from labctl.store import RunWriter

COLUMNS = {"voltage_V": "V", "current_A": "A", "current_density_mA_cm2": "mA/cm2", "time_s": "s"}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl.cli", *args], cwd=cwd, capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, COLUMNS="200"))


def _write_scan(writer: RunWriter, density: np.ndarray, voltage: np.ndarray) -> None:
    block = writer.create_block("scan_000", COLUMNS, {"direction": "RS", "scan_rate_V_s": 0.1, "pixel": "p1",
                                                      "repeat": 0, "irradiance_mW_cm2": 100.0})
    block.append_columns(voltage_V=voltage, current_A=-density * 1e-4, current_density_mA_cm2=density,
                         time_s=np.arange(voltage.size, dtype=float))


def _no_shunt_cell() -> tuple[np.ndarray, np.ndarray]:
    # No measurable shunt: J is flat (here rising by a hair, as noise makes it) around 0 V, so Rsh is infinite.
    v = np.linspace(-0.1, 1.3, 141)
    return v, 20.0 + 1e-4 * v - 1e-14 * np.expm1(v / 0.035)


def _strict(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def test_analyze_json_is_strict_json_even_for_an_infinite_shunt_resistance(tmp_path: Path) -> None:
    path = tmp_path / "noshunt.h5"
    v, j = _no_shunt_cell()
    with RunWriter.create(path, procedure="jv", parameters={}, clock=VirtualClock()) as writer:
        _write_scan(writer, j, v)
    result = cli("analyze", str(path), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout, parse_constant=_strict)  # what jq, JavaScript, ... accept
    assert parsed["scans"][0]["voc_V"] > 1.0


def test_analyze_works_on_a_run_that_is_still_being_written(tmp_path: Path) -> None:
    path = tmp_path / "live.h5"
    v, j = _no_shunt_cell()
    with RunWriter.create(path, procedure="jv", parameters={}, clock=VirtualClock()) as writer:
        _write_scan(writer, j, v)
        writer.flush()
        result = cli("analyze", str(path), "--json", cwd=tmp_path)  # another process holds the file
        assert result.returncode == 0, result.stderr
        parsed = json.loads(result.stdout)
        assert parsed["scans"][0]["voc_V"] > 1.0
        assert "not written" in parsed["note"]


def test_demo_exits_1_when_a_run_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labctl.cli import cli as labctl_cli
    from labctl.runner import Runner, RunResult

    def failing_run(self: Runner) -> RunResult:
        return RunResult(tmp_path / "x.h5", "interrupted", "instrument fault: smu: no reply")

    monkeypatch.setattr(Runner, "run", failing_run)
    result = CliRunner().invoke(labctl_cli, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 1, result.output  # the run failed; 2 means bad input
    assert "interrupted" in result.output


def test_error_messages_keep_their_square_brackets(tmp_path: Path) -> None:
    # Rich markup must not eat "[instruments.smu]", the part of the message that says where to look.
    (tmp_path / "bad.toml").write_text('[instruments.smu]\ndriver = "keithley2450"\n')
    result = cli("run", "jv", "--station", "bad.toml", "--param", "sample=a", cwd=tmp_path)
    assert result.returncode == 2
    assert "[instruments.smu] needs 'driver' and 'address'" in " ".join(result.stderr.split())
