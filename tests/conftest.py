"""Shared test set-up: the tests folder is importable (test procedures, helpers), Qt runs offscreen, and a
mock test module's ``Bench`` is its ``bench`` fixture."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))
# The shared test helpers assert too: let pytest explain their failures as it does a test's.
pytest.register_assert_rewrite("instrument_helpers")

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Engines' state and the instrument locks of the tests (and of the labctl processes they start) stay out of
# the user's own state home, where a real engine may hold the built-in simulated station.
os.environ["LABCTL_HOME"] = tempfile.mkdtemp(prefix="labctl-tests-")
atexit.register(shutil.rmtree, os.environ["LABCTL_HOME"], True)


@pytest.fixture
def bench(request: pytest.FixtureRequest) -> Any:
    """A fresh simulated bench of the test module: its ``Bench()`` with the default options."""
    return request.module.Bench()
