"""Shared test set-up: the tests folder is importable (test procedures), Qt runs offscreen."""

from __future__ import annotations

import os
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
