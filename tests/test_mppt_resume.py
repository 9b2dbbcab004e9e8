"""An MPPT aging run cut off — stopped, or its process killed — continues every channel into the same file,
with the gap marked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from labctl.clock import VirtualClock
from labctl.runner import Progress, Runner, resume_runner
from labctl.station import Station
from labctl.store import RunReader
from procedures.mppt_aging import MPPTAging

CHANNELS = ("ch01", "ch03")


def _times(path: Path, channel: str) -> np.ndarray:
    with RunReader(path) as reader:
        return np.sort(np.asarray(reader.block(f"mppt_{channel}")["time_s"], dtype=float))


def test_a_stopped_run_resumes_every_channel_into_the_same_file(tmp_path: Path) -> None:
    proc = MPPTAging(samples=list(CHANNELS), duration_h=2.0, dwell_s=600.0, max_settle_s=10.0, suns=1.0)
    runner = Runner(proc, station=Station.load("sim-aging"), path=tmp_path / "aging.h5")
    runner.subscribe(lambda e: runner.abort("power cut") if isinstance(e, Progress) and e.fraction > 0.4 else None)
    first = runner.run()
    assert first.status == "aborted"
    cut = {ch: _times(first.path, ch)[-1] for ch in CHANNELS}
    start = min(_times(first.path, ch)[0] for ch in CHANNELS)
    assert all(0.6 < (t - start) / 3600.0 < 1.6 for t in cut.values()), cut

    second = resume_runner(first.path, clock=VirtualClock(start_s=max(cut.values()) + 600.0)).run()
    assert second.status == "completed", second.reason
    with RunReader(first.path) as reader:
        gaps = {e.data.get("channel") or e.message: e for e in reader.events() if e.kind == "channel_gap"}
        kinds = [e.kind for e in reader.events()]
        decisions = {ch: np.asarray(reader.block(f"tracker_{ch}")["decision"]) for ch in CHANNELS}
        codes = json.loads(reader.block(f"tracker_{CHANNELS[0]}").attrs["decision_codes"])
    assert kinds.count("start") == 2 and "resume" in kinds
    assert len(gaps) == len(CHANNELS)
    for ch in CHANNELS:
        t = _times(first.path, ch)
        after = t[t > cut[ch]]
        # every channel carries on after the gap, up to the planned end of the run
        assert after.size > 100, ch
        assert after[0] - cut[ch] >= 600.0
        assert (t[-1] - start) / 3600.0 == pytest.approx(2.0, abs=0.02)
        # the tracker logged the resumption (and re-explored): the gap is marked in the file
        assert codes["resumed"] in decisions[ch]
    for event in gaps.values():
        assert event.data["gap_s"] >= 600.0


@pytest.mark.timeout(120)
def test_a_killed_real_time_run_loses_at_most_the_last_second(tmp_path: Path) -> None:
    path = tmp_path / "killed.h5"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "labctl.cli", "run", "mppt", "--local", "--station", "sim", "--clock", "real",
               "--file", str(path), "--param", "samples=wbg_ref", "--param", "duration_h=0.01",
               "--param", "interval_s=0.2", "--param", "settle_s=1", "--param", "dwell_s=5",
               "--param", "max_settle_s=2"]
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=log, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60.0
        # kill it once the channel is tracking (its first checkpoint is in the file) and has readings
        while time.monotonic() < deadline and not (_tracking(path) and _has_readings(path, 40)):
            time.sleep(0.5)
        assert process.poll() is None, (tmp_path / "run.log").read_text()[-2000:]
        time.sleep(1.3)
        os.kill(process.pid, signal.SIGKILL)
        killed_at = time.time()
        process.wait(10)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()
    before = _times(path, "wbg_ref")
    # the real clock reads wall time: the last reading in the file is within a second of the kill
    assert killed_at - before[-1] <= 1.0

    resumed = subprocess.run([sys.executable, "-m", "labctl.cli", "resume", str(path), "--clock", "real"],
                             capture_output=True, text=True, timeout=90, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = _times(path, "wbg_ref")
    assert after.size > before.size + 10
    assert np.all(after[:before.size] == before)  # what was there stays
    with RunReader(path) as reader:
        assert reader.status == "completed"
        [gap] = [e for e in reader.events() if e.kind == "channel_gap"]
    # the channel's tracker state was in the file: the resumed tracker took it up, the gap measured
    assert np.isfinite(gap.data["gap_s"]) and gap.data["gap_s"] > 0


def _tracking(path: Path) -> bool:
    status = path.with_name(path.name + ".status.json")
    try:
        return json.loads(status.read_text())["channels"]["wbg_ref"]["state"] == "tracking"
    except (OSError, ValueError, KeyError):
        return False


def _has_readings(path: Path, n: int) -> bool:
    if not path.exists():
        return False
    try:
        return _times(path, "wbg_ref").size >= n
    except Exception:  # the writer is still creating the file or the block
        return False
