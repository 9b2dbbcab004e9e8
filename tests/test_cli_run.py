"""The CLI as a user meets it: version, bad input, SIGTERM, and resume after a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from conftest import TESTS_DIR

from labctl.errors import DataFileError
from labctl.store import RunReader

EMPTY_STATION = 'name = "bench-without-instruments"\n'


def labctl(*args: str, cwd: Path, **kwargs: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(TESTS_DIR), COLUMNS="120")
    return subprocess.Popen([sys.executable, "-m", "labctl.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # type: ignore[call-overload]


def run_labctl(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = labctl(*args, cwd=cwd)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_version(tmp_path: Path) -> None:
    import labctl as package

    result = run_labctl("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert package.__version__ in result.stdout


def test_out_of_range_parameter_exits_nonzero_and_creates_no_file(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text(EMPTY_STATION)
    result = run_labctl("run", "helpers_procedures:CountingProcedure", "--station", "empty.toml",
                        "--param", "interval_s=-3", "--out", "data", cwd=tmp_path)
    assert result.returncode == 2
    assert "'interval_s' = -3 s" in result.stderr and "0 … 3.6e+06 s" in result.stderr
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_unknown_procedure_is_named(tmp_path: Path) -> None:
    result = run_labctl("run", "nosuch", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown procedure 'nosuch'" in result.stderr


def _wait_for_rows(path: Path, n: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            try:  # the reader merges the journal, where a running file's newest rows are
                with RunReader(path) as r:
                    if "counts" in r.block_names() and r.info("counts").n_rows >= n:
                        return
            except (OSError, DataFileError):
                pass
        time.sleep(0.1)
    raise AssertionError(f"{path} never reached {n} rows")


@pytest.mark.slow
def test_sigterm_ends_the_run_safely(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text(EMPTY_STATION)
    data = tmp_path / "term.h5"
    proc = labctl("run", "helpers_procedures:CountingProcedure", "--station", "empty.toml", "--file", str(data),
                  "--param", "n_points=100000", "--param", "interval_s=0.02", cwd=tmp_path)
    _wait_for_rows(data, 5)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    with RunReader(data) as reader:
        assert reader.status == "interrupted"  # not the user's decision: resumable
        assert reader.attrs["end_reason"].startswith("SIGTERM")
        kinds = [e.kind for e in reader.events()]
    assert "test_shutdown" in kinds and kinds[-1] == "end"


@pytest.mark.slow
def test_resume_after_sigkill_appends_to_the_same_file(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text(EMPTY_STATION)
    data = tmp_path / "killed.h5"
    proc = labctl("run", "helpers_procedures:CountingProcedure", "--station", "empty.toml", "--file", str(data),
                  "--param", "n_points=60", "--param", "interval_s=0.05", "--param", "checkpoint_every=5",
                  cwd=tmp_path)
    _wait_for_rows(data, 15)
    time.sleep(1.2)  # rows appended more than ~1 s before the kill must be on disk
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    with h5py.File(data, "r") as f:  # plain h5py opens what a killed writer left
        assert "counts" in f["blocks"]
    with RunReader(data) as r:  # its newest rows are in the journal
        assert r.info("counts").n_rows >= 15
    result = run_labctl("resume", str(data), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    with RunReader(data) as reader:
        assert reader.status == "completed"
        index = reader.block("counts")["index"]
        square = reader.block("counts")["square"]
    assert sorted(set(index.astype(int))) == list(range(60))
    assert all(s == i * i for i, s in zip(index, square, strict=True))
