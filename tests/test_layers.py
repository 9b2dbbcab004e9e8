"""The import contract in pyproject.toml keeps the layers: imports point down, clock/cancel/roles/errors are
shared contracts. `make lint` runs it; here it is shown to catch an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is a dev dependency")


def _copy(tmp_path: Path) -> Path:
    for package in ("labctl", "drivers", "procedures", "mock_instruments"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(root)))


def test_the_contract_holds_and_an_upward_import_breaks_it(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    kept = _lint(root)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    reader = root / "labctl" / "store" / "reader.py"
    reader.write_text(reader.read_text() + "\nimport procedures.jv_hysteresis  # the store reaching up\n")
    broken = _lint(root)
    assert broken.returncode != 0
    assert "labctl.store.reader -> procedures.jv_hysteresis" in broken.stdout
