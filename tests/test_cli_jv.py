"""The J–V workflow from the command line: run, analyze --json, report, export."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, COLUMNS="200"))


def test_run_analyze_report_export(tmp_path: Path) -> None:
    data = tmp_path / "jv.h5"
    run = cli("run", "jv", "--station", "sim", "--file", str(data), "--param", "sample=wbg_ref",
              "--param", "scan_rates_V_s=0.05,0.5", "--param", "step_V=0.02", "--param", "spo_s=20",
              "--operator", "tester", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "completed" in run.stdout and "J–V metrics" in run.stdout

    analyzed = cli("analyze", str(data), "--json", cwd=tmp_path)
    assert analyzed.returncode == 0, analyzed.stderr
    result = json.loads(analyzed.stdout)
    assert [(s["direction"], s["scan_rate_V_s"]) for s in result["scans"]] == [
        ("RS", 0.05), ("FS", 0.05), ("RS", 0.5), ("FS", 0.5)]
    for scan in result["scans"]:
        assert {"direction", "scan_rate_V_s", "pixel", "voc_V", "jsc_mA_cm2", "ff", "pce_pct", "vmpp_V",
                "jmpp_mA_cm2", "pmax_mW_cm2", "rs_ohm_cm2", "rsh_ohm_cm2"} <= set(scan)
        assert scan["pixel"] == "wbg_ref" and 1.2 < scan["voc_V"] < 1.35
    assert [h["scan_rate_V_s"] for h in result["hysteresis"]] == [0.05, 0.5]
    assert all(h["hi_pce"] > 0 for h in result["hysteresis"])  # normal hysteresis for the reference cell
    assert result["spo"]["wbg_ref"]["spo_pce_pct"] == pytest.approx(17.5, abs=0.7)

    import h5py

    with h5py.File(data, "r") as f:  # the metrics are in the file too
        assert "jv" in f["analysis"]

    figures = tmp_path / "figs"
    report = cli("report", str(data), "--out", str(figures), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert len(list(figures.glob("*.png"))) == 3  # J–V + P–V, hysteresis vs rate, SPO

    exported = cli("export", str(data), "--csv", str(tmp_path / "csv"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    scan_csv = sorted((tmp_path / "csv").glob("*scan_000.csv"))[0]
    lines = scan_csv.read_text().splitlines()
    assert any(line.startswith("# operator: tester") for line in lines)
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    assert rows[0] == ["voltage_V [V]", "current_A [A]", "current_density_mA_cm2 [mA/cm2]", "time_s [s]"]
    assert len(rows) - 1 == 81  # -0.1 … 1.5 V (the default range) in 20 mV steps


def test_report_of_a_procedure_without_figures_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text('name = "none"\n')
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent), COLUMNS="200")
    data = tmp_path / "count.h5"
    subprocess.run([sys.executable, "-m", "labctl.cli", "run", "helpers_procedures:CountingProcedure",
                    "--station", "empty.toml", "--file", str(data), "--param", "interval_s=0", "--param",
                    "n_points=3"], cwd=tmp_path, check=True, capture_output=True, env=env, timeout=60)
    def with_tests(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "labctl.cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env=env)

    report = with_tests("report", str(data))
    assert report.returncode == 2
    assert "no report is defined for procedure 'counting'" in report.stderr
    analyzed = with_tests("analyze", str(data), "--json")
    assert json.loads(analyzed.stdout)["note"] == "no analysis is defined for procedure 'counting' yet"
    unknown = cli("analyze", str(data), "--json", cwd=tmp_path)  # the package with the procedure is missing
    assert "procedure 'counting' is not known here" in json.loads(unknown.stdout)["note"]
