"""Shared test set-up: the tests folder is importable (test procedures, helpers), Qt runs offscreen, and a
mock test module's ``Bench`` is its ``bench`` fixture."""

from __future__ import annotations

import os
import sys
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


@pytest.fixture
def bench(request: pytest.FixtureRequest) -> Any:
    """A fresh simulated bench of the test module: its ``Bench()`` with the default options."""
    return request.module.Bench()
