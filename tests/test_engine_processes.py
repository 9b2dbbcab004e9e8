"""The engine as a process, with front ends as processes: a run outlives the front end that started it, a
queue of simulated runs shares one session (the second run measures the cell the first one light-soaked) and
survives a restart, an engine killed with SIGKILL resumes its run without losing what was recorded, and a
second process is refused the instruments the engine holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labctl.clock import real_elapsed_s, real_pause
from labctl.engine import EngineClient
from labctl.runner import Runner
from labctl.station import Station
from labctl.store import RunReader
from procedures.jv_hysteresis import JVHysteresis

pytestmark = pytest.mark.slow

TESTS_DIR = Path(__file__).resolve().parent
COUNTING = "helpers_procedures:CountingProcedure"
JV = ["--param", "sample=wbg_ref", "--param", "scan_rates_V_s=1", "--param", "step_V=0.02", "--param", "v_min_V=0",
      "--param", "v_max_V=1.3"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Engines and locks of this test in its own state home, for the test and for the processes it starts."""
    monkeypatch.setenv("LABCTL_HOME", str(tmp_path / "home"))
    path = os.pathsep.join(p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, COLUMNS="200", PYTHONPATH=path)


def labctl(*args: str, cwd: Path, env: dict[str, str], **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "labctl.cli", *args], cwd=cwd, env=env, text=True,
                            **popen)


def labctl_done(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl.cli", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=120)


class EngineProcess:
    """``labctl engine start --foreground`` in a process of its own."""

    def __init__(self, cwd: Path, env: dict[str, str], *options: str) -> None:
        self.log = open(cwd / "engine-stderr.txt", "a")  # closed in stop()
        self.process = labctl("engine", "start", "--foreground", "--station", "sim", "--data-dir", "data",
                              *options, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=self.log)
        assert self.process.stdout is not None
        self.lines: list[str] = []
        while True:
            line = self.process.stdout.readline()
            assert line, f"the engine exited: {(cwd / 'engine-stderr.txt').read_text()}"
            self.lines.append(line)
            if line.startswith("engine of station"):
                break

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)
        self.log.close()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.log.close()


@pytest.fixture
def engines() -> Iterator[list[EngineProcess]]:
    started: list[EngineProcess] = []
    yield started
    for engine in started:
        if engine.process.poll() is None:
            engine.process.kill()
            engine.process.wait(30)


def _client() -> EngineClient:
    return EngineClient.for_station(Station.load("sim"), client="test")


def _until(predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = real_elapsed_s() + timeout_s
    while real_elapsed_s() < deadline:
        value = predicate()
        if value:
            return value
        real_pause(0.1)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def test_a_run_outlives_its_front_end_and_a_new_one_attaches(tmp_path: Path, env: dict[str, str],
                                                               engines: list[EngineProcess]) -> None:
    engines.append(engine := EngineProcess(tmp_path, env, "--clock", "real"))
    front = labctl("run", COUNTING, "--station", "sim", "--param", "n_points=100", "--param", "interval_s=0.08",
                   "--out", "data", cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with _client() as client:
        def progress() -> float:
            run = client.status()["run"]
            return float(((run or {}).get("progress") or {}).get("fraction") or 0.0)

        _until(lambda: progress() > 0.05, 30, "the run makes progress")
        front.send_signal(signal.SIGKILL)  # the terminal that started the run is gone
        front.wait(10)
        before = progress()
        real_pause(1.5)
        assert progress() > before + 0.05  # the run goes on without its front end
        item = client.status()["run"]["item"]
    watch = labctl("engine", "watch", "--until-end", "--json", cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE)
    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    messages = [json.loads(line) for line in out.splitlines()]
    snapshot = messages[0]
    assert snapshot["event"] == "snapshot" and snapshot["status"]["run"]["item"] == item
    assert snapshot["status"]["run"]["progress"]["fraction"] > 0.1  # where the run stood when it attached
    fractions = [m["fraction"] for m in messages if m["event"] == "progress" and m["item"] == item]
    assert len(fractions) >= 3 and fractions == sorted(fractions)
    assert messages[-1]["event"] == "run_ended" and messages[-1]["status"] == "completed"
    with RunReader(Path(messages[-1]["file"])) as reader:
        assert reader.status == "completed" and reader.block("counts").n_rows == 100
    engine.stop()


def _voc_rs(analysis: dict[str, Any]) -> float:
    """Voc of the reverse scan, from a run's analysis (the file stores its list of scans as numbered groups)."""
    scans = analysis["scans"]
    rows = scans.values() if isinstance(scans, dict) else scans
    return float(next(s["voc_V"] for s in rows if s["direction"] == "RS"))


def test_queued_runs_share_one_session_and_the_queue_survives_a_restart(tmp_path: Path, env: dict[str, str],
                                                                          engines: list[EngineProcess]) -> None:
    # The reference: the same J–V on a fresh simulated cell (Voc ≈ 1.275 V).
    fresh = Runner(JVHysteresis(sample=["wbg_ref"], scan_rates_V_s=[1.0], step_V=0.02, v_min_V=0.0, v_max_V=1.3),
                   station=Station.load("sim"), directory=tmp_path / "fresh").run()
    assert fresh.analysis is not None
    fresh_voc = _voc_rs(fresh.analysis)

    engines.append(engine := EngineProcess(tmp_path, env))
    uids = []
    for extra in (["--param", "light_soak_s=36000"], [], []):  # 10 h at open circuit under 1 sun, then two J–Vs
        added = labctl_done("queue", "add", "jv", *JV, *extra, "--json", cwd=tmp_path, env=env)
        assert added.returncode == 0, added.stderr
        uids.append(json.loads(added.stdout)["uid"])
    engine.stop()

    engines.append(engine := EngineProcess(tmp_path, env))
    listed = json.loads(labctl_done("queue", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert [i["uid"] for i in listed["items"]] == uids
    assert listed["items"][0]["parameters"]["light_soak_s"] == 36000.0 and not listed["active"]
    assert labctl_done("queue", "start", cwd=tmp_path, env=env).returncode == 0
    with _client() as client:
        client.watch()
        events = client.events(timeout_s=60)
        while len(client.history()) < 3:
            next(events)
        history = client.history()
        assert client.status()["session"]["runs"] == 3
    engine.stop()

    assert [(e["uid"], e["status"]) for e in history] == [(uid, "completed") for uid in uids]
    readers = [RunReader(Path(e["file"])) for e in history]
    try:
        vocs = [_voc_rs(r.analysis()["jv"]) for r in readers]
        doses = [r.attrs["simulated_world"]["devices"]["wbg_ref"]["degradation"]["dose_h"] for r in readers]
        ends = [r.events()[-1].time_s for r in readers]
        starts = [r.attrs["created_time_s"] for r in readers]
    finally:
        for reader in readers:
            reader.close()
    # The second run measures the cell the first one soaked: its Voc is ~30 mV below a fresh cell's, and the
    # cell's accumulated stress dose in its file includes the 10 h soak.
    assert vocs[1] < fresh_voc - 0.02, (vocs, fresh_voc)
    assert abs(vocs[2] - vocs[1]) < 0.005
    assert doses[1] > 10.0 and doses[2] >= doses[1]
    assert starts[1] >= ends[0] and starts[2] >= ends[1]  # one clock, never rewound


def test_an_engine_killed_mid_run_resumes_it_and_loses_nothing_recorded(tmp_path: Path, env: dict[str, str],
                                                                          engines: list[EngineProcess]) -> None:
    engines.append(engine := EngineProcess(tmp_path, env, "--clock", "real"))
    seen: dict[int, tuple[float, float]] = {}  # index -> (time_s, when it reached the client)
    with _client() as client:
        client.watch()
        item = client.submit(COUNTING, parameters={"n_points": 60, "interval_s": 0.1})
        for message in client.events(timeout_s=30):
            if message.get("event") == "data" and message.get("item") == item["uid"]:
                for index, time_s in zip(message["columns"]["index"], message["columns"]["time_s"], strict=True):
                    seen[int(index)] = (time_s, real_elapsed_s())
            if len(seen) >= 25:
                break
        killed_at = real_elapsed_s()
        engine.kill()
    early = {index: time_s for index, (time_s, when) in seen.items() if when <= killed_at - 1.0}
    assert len(early) >= 10

    engines.append(engine := EngineProcess(tmp_path, env, "--clock", "real"))
    assert any("resuming it (resume_interrupted = always)" in line for line in engine.lines)
    with _client() as client:
        entry = _until(lambda: next((e for e in client.history() if e["uid"] == item["uid"]), None), 60,
                       "the resumed run ends")
    engine.stop()
    assert entry["status"] == "completed" and entry["resumed"]
    with RunReader(Path(entry["file"])) as reader:
        assert reader.status == "completed"
        counts = reader.block("counts")
        index, time_s = counts["index"].astype(int), counts["time_s"]
        assert "resume" in [e.kind for e in reader.events()]
    np.testing.assert_array_equal(np.unique(index), np.arange(60))
    recorded = dict(zip(index.tolist(), time_s.tolist(), strict=True))
    assert {i: recorded[i] for i in early} == early  # the very rows recorded before the kill, not measured again


def test_a_second_process_is_refused_the_instruments_the_engine_holds(tmp_path: Path, env: dict[str, str]) -> None:
    assert labctl_done("engine", "status", cwd=tmp_path, env=env).returncode == 1
    started = labctl_done("engine", "start", "--station", "sim", cwd=tmp_path, env=env)  # detached
    assert started.returncode == 0, started.stderr
    try:
        pid = json.loads(labctl_done("engine", "status", "--json", cwd=tmp_path, env=env).stdout)["pid"]
        local = labctl_done("run", "jv", "--local", *JV, cwd=tmp_path, env=env)
        assert local.returncode == 2
        refusal = " ".join(local.stderr.split())
        assert f"simulated station sim is in use by pid {pid}" in refusal
        assert "(`labctl engine start --foreground --station sim" in refusal and " since " in refusal
        assert "the labctl engine of station sim owns it" in refusal
        probe = labctl_done("instruments", "--station", "sim", cwd=tmp_path, env=env)
        assert probe.returncode == 2 and f"in use by pid {pid}" in " ".join(probe.stderr.split())
        second = labctl_done("engine", "start", "--foreground", "--station", "sim", "--state-dir", "other",
                             cwd=tmp_path, env=env)
        assert second.returncode == 2 and f"in use by pid {pid}" in " ".join(second.stderr.split())
        assert not list((tmp_path / "labctl-data").glob("*.h5"))  # nothing was measured by the refused ones
    finally:
        stopped = labctl_done("engine", "stop", cwd=tmp_path, env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert labctl_done("engine", "status", cwd=tmp_path, env=env).returncode == 1
