"""After a crash, a power cut or a stop: what a restarted engine does with the run that was cut off, under
each ``resume_interrupted`` policy, and what resuming means in a new session and inside one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labctl.clock import VirtualClock
from labctl.engine import EngineClient
from labctl.engine.config import EngineConfig
from labctl.engine.queue import RunQueue
from labctl.engine.server import Engine
from labctl.engine.session import Session
from labctl.runner import DataRows, Runner
from labctl.station import Station
from labctl.store import RunReader, RunWriter
from procedures.jv_hysteresis import JVHysteresis

COUNTING = "helpers_procedures:CountingProcedure"


def _killed_run(path: Path, rows: int, n_points: int = 10) -> None:
    """A counting run cut off after ``rows`` rows, as a killed process leaves it (status still running)."""
    writer = RunWriter.create(path, procedure="counting", procedure_class=COUNTING,
                              parameters={"n_points": n_points, "interval_s": 1.0}, station="sim",
                              clock=VirtualClock())
    block = writer.create_block("counts", {"index": "", "square": "", "time_s": "s"})
    for i in range(rows):
        block.append_row(index=i, square=i * i, time_s=float(i))
    writer.checkpoint({"next_index": rows})
    writer.close()


def _left_running(tmp_path: Path, file: Path | None) -> str:
    queue = RunQueue(tmp_path / "state" / "queue.sqlite")
    item = queue.add(COUNTING, {"n_points": 10, "interval_s": 1.0}, str(tmp_path / "data"))
    queue.mark_running(item.uid, str(file) if file else str(tmp_path / "data" / "never-made.h5"), resume=False)
    queue.set_active(True)
    queue.close()
    return item.uid


@pytest.fixture
def cut_off(tmp_path: Path, start: Any) -> Any:
    """A counting run killed after 4 of its 10 rows, its item left running; the engine started with a policy:
    returns (file, uid, engine)."""

    def make(policy: str) -> tuple[Path, str, Engine]:
        file = tmp_path / "data" / "killed.h5"
        _killed_run(file, rows=4)
        uid = _left_running(tmp_path, file)
        return file, uid, start(policy)

    return make


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    engines: list[Engine] = []

    def make(policy: str) -> Engine:
        config = EngineConfig.from_table({"resume_interrupted": policy}, "test")
        engine = Engine(Station.load("sim"), tmp_path / "state", config=config, data_dir=tmp_path / "data")
        engines.append(engine)
        engine.notes = engine.start()  # type: ignore[attr-defined]
        return engine

    (tmp_path / "state").mkdir()
    yield make
    for engine in engines:
        engine.stop()


def _wait_history(client: EngineClient, n: int) -> list[dict[str, Any]]:
    client.watch()
    history = client.history()
    events = client.events(timeout_s=30)
    while len(history) < n:
        next(events)
        history = client.history()
    return history


def test_always_resumes_the_killed_run_into_its_file(cut_off: Any) -> None:
    file, uid, engine = cut_off("always")
    assert any("resuming it (resume_interrupted = always)" in note for note in engine.notes)
    with EngineClient.open(engine.state_dir) as client:
        (entry,) = _wait_history(client, 1)
    assert (entry["uid"], entry["status"], entry["resumed"]) == (uid, "completed", True)
    with RunReader(file) as reader:
        np.testing.assert_array_equal(reader.block("counts")["index"], np.arange(10))
        assert "resume" in [e.kind for e in reader.events()]


def test_ask_waits_for_a_decision_and_queue_start_resumes(cut_off: Any) -> None:
    file, uid, engine = cut_off("ask")
    with EngineClient.open(engine.state_dir) as client:
        listing = client.queue_list()
        assert not listing["active"] and [(i["uid"], i["state"]) for i in listing["items"]] == [(uid, "interrupted")]
        assert client.history() == [] and client.status()["run"] is None
        client.queue_start()
        (entry,) = _wait_history(client, 1)
    assert entry["status"] == "completed"
    with RunReader(file) as reader:
        assert reader.block("counts").n_rows == 10


def test_never_files_the_run_as_interrupted_and_leaves_the_file_alone(cut_off: Any) -> None:
    file, uid, engine = cut_off("never")
    with EngineClient.open(engine.state_dir) as client:
        (entry,) = client.history()
        assert not client.queue_list()["active"]
    assert (entry["uid"], entry["status"]) == (uid, "interrupted")
    assert "killed (crash or power cut); not resumed (resume_interrupted = never)" in entry["reason"]
    with RunReader(file) as reader:
        assert reader.status == "running" and reader.block("counts").n_rows == 4


def test_an_item_whose_file_was_never_made_is_queued_again(tmp_path: Path, start: Any) -> None:
    uid = _left_running(tmp_path, None)
    engine = start("always")
    with EngineClient.open(engine.state_dir) as client:
        (entry,) = _wait_history(client, 1)
    assert (entry["uid"], entry["status"]) == (uid, "completed")
    assert any("had not started its file" in note for note in engine.notes)


def _interrupted_jv(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A J–V run on the simulated station interrupted after its first scan; its checkpointed world."""
    proc = JVHysteresis(sample=["wbg_ref"], scan_rates_V_s=[1.0, 0.5], step_V=0.05, v_min_V=0.0, v_max_V=1.3,
                        light_soak_s=600.0)
    runner = Runner(proc, station=Station.load("sim"), directory=tmp_path / "jv")

    def stop_after_first_scan(event: Any) -> None:
        if isinstance(event, DataRows):
            runner.abort("power cut", status="interrupted")

    runner.subscribe(stop_after_first_scan)
    assert runner.run().status == "interrupted"
    assert runner.path is not None
    with RunReader(runner.path) as reader:
        return runner.path, reader.attrs["simulated_world"]


def test_a_new_session_restores_the_checkpointed_world_and_one_in_use_is_never_rewound(tmp_path: Path) -> None:
    path, world = _interrupted_jv(tmp_path)
    queue = RunQueue(tmp_path / "queue.sqlite")
    item = queue.add("jv", {}, str(path.parent), file=str(path), resume=True)
    session = Session(Station.load("sim"))
    try:
        runner = session.runner(item, [])
        assert session.clock is not None and session.clock.now() == world["time_s"]
        assert session.restored_from == path
        assert session.bench is not None and session.bench.simulation is not None
        assert session.bench.simulation.world.state_dict()["devices"]["wbg_ref"] == world["devices"]["wbg_ref"]
        result = runner.run()
        assert result.status == "completed"
        with RunReader(path) as reader:
            assert [n for n in reader.block_names() if n.startswith("scan_")][-2:] == ["scan_002", "scan_003"]
        later = session.clock.now()
        assert later > world["time_s"]
        # Inside the session, resuming a file does not bring its world back: the session's time goes on.
        path_2, _ = _interrupted_jv(tmp_path / "second")
        again = queue.add("jv", {}, str(path_2.parent), file=str(path_2), resume=True)
        session.runner(again, [])
        assert session.clock.now() == later and session.restored_from == path
    finally:
        session.close()
