"""A lab's own package adds a procedure (with its analysis) and a driver through entry points, with no change
to labctl: listed with where it came from, validated against the station's capabilities, run, analysed.

The fixture package in tests/fixtures/acme_lab_pkg is installed the way pip installs any package: an
importable package beside its ``*.dist-info`` metadata (with ``entry_points.txt``) on the path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.runner.registry import known_procedures

FIXTURE = Path(__file__).parent / "fixtures" / "acme_lab_pkg"
ENV = dict(os.environ, PYTHONPATH=str(FIXTURE), COLUMNS="200")


def labctl(*args: str, cwd: Path, env: dict[str, str] = ENV) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture
def installed() -> Iterator[None]:
    sys.path.insert(0, str(FIXTURE))
    known_procedures(refresh=True)
    try:
        yield
    finally:
        sys.path.remove(str(FIXTURE))
        for name in [m for m in sys.modules if m == "acme_lab" or m.startswith("acme_lab.")]:
            del sys.modules[name]
        known_procedures(refresh=True)


def test_the_package_procedure_and_driver_are_found_in_process(installed: None) -> None:
    from drivers.registry import driver_class, known_drivers

    entry = known_procedures()["acme_dark_iv"]
    assert entry.origin == "acme-lab" and entry.cls is not None
    assert known_drivers()["acme_probe"].origin == "acme-lab"
    assert driver_class("acme_probe").role == "switch"
    assert known_procedures()["jv"].origin == "labctl"


def test_listed_validated_run_and_analysed_from_the_command_line(tmp_path: Path) -> None:
    listed = labctl("procedures", "--json", cwd=tmp_path)
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["acme_dark_iv"]["origin"] == "acme-lab"
    assert rows["acme_dark_iv"]["class"] == "acme_lab.procedures:DarkRectification"
    drivers = {row["driver"]: row for row in json.loads(labctl("drivers", "--json", cwd=tmp_path).stdout)}
    assert drivers["acme_probe"] == {"driver": "acme_probe", "role": "switch", "origin": "acme-lab",
                                     "class": "acme_lab.probe:AcmeProbe"}

    refused = labctl("run", "acme_dark_iv", "--param", "sample=wbg_ref", "--param", "v_forward_V=1.9",
                     cwd=tmp_path)
    assert refused.returncode == 2
    assert "parameter 'v_forward_V' = 1.9 V is outside the limits of sample 'wbg_ref'" in refused.stderr
    assert not (tmp_path / "labctl-data").exists()

    run = labctl("run", "acme_dark_iv", "--param", "sample=wbg_ref", "--file", "dark.h5", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    analysed = json.loads(labctl("analyze", "dark.h5", "--json", cwd=tmp_path).stdout)
    ratio = analysed["rectification"]["ratio"]
    assert ratio > 100.0  # a perovskite diode in the dark: forward current far above reverse leakage


def test_without_the_package_the_procedure_is_not_known(tmp_path: Path) -> None:
    plain = dict(os.environ, COLUMNS="200")
    refused = labctl("run", "acme_dark_iv", "--param", "sample=wbg_ref", cwd=tmp_path, env=plain)
    assert refused.returncode == 2 and "unknown procedure 'acme_dark_iv'" in refused.stderr
