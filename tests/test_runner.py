"""The run lifecycle: shutdown whatever ends a run, events, pause/abort from another thread, resume."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from helpers_procedures import CountingProcedure

from labctl.clock import VirtualClock
from labctl.errors import DataFileError
from labctl.runner import LogLine, Progress, Runner, StatusChanged, resume_runner
from labctl.runner.context import RecordedEvent
from labctl.store import RunReader


def _events(path: Path) -> list[tuple[str, str]]:
    with RunReader(path) as reader:
        return [(e.kind, e.message) for e in reader.events()]


def test_successful_run_records_everything(tmp_path: Path) -> None:
    proc = CountingProcedure(n_points=5, interval_s=2.0)
    seen: list[object] = []
    runner = Runner(proc, path=tmp_path / "run.h5", clock=VirtualClock(), subscribers=[seen.append],
                    operator="ada")
    result = runner.run()
    assert result.status == "completed"
    assert proc.calls == ["startup", "execute", "shutdown"]
    with RunReader(result.path) as reader:
        assert reader.status == "completed"
        assert reader.attrs["operator"] == "ada"
        assert reader.parameters["n_points"] == 5
        block = reader.block("counts")
        assert list(block["index"]) == [0, 1, 2, 3, 4]
        assert list(block["time_s"]) == pytest.approx([2.0, 4.0, 6.0, 8.0, 10.0])
        kinds = [e.kind for e in reader.events()]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert "test_shutdown" in kinds
    fractions = [e.fraction for e in seen if isinstance(e, Progress)]
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    statuses = [e.status for e in seen if isinstance(e, StatusChanged)]
    assert statuses[0] == "validating" and statuses[-1] == "completed"
    # a front end sees every entry of the file's /events, the run's own included, in the file's order
    assert [e.kind for e in seen if isinstance(e, RecordedEvent)] == kinds


def test_thousand_hours_of_virtual_waiting_take_no_real_time(tmp_path: Path) -> None:
    clock = VirtualClock()
    proc = CountingProcedure(n_points=1000, interval_s=3600.0, checkpoint_every=100)
    started = time.perf_counter()
    result = Runner(proc, path=tmp_path / "aging.h5", clock=clock).run()
    elapsed = time.perf_counter() - started
    assert result.status == "completed"
    with RunReader(result.path) as reader:
        assert reader.block("counts")["time_s"][-1] == pytest.approx(1000 * 3600.0)
    # 1000 h of simulated waiting: generous bound for a noisy 2-core machine, still 1e6 times faster.
    assert elapsed < 3.0


def test_exception_still_shuts_down_and_records_reason(tmp_path: Path) -> None:
    proc = CountingProcedure(n_points=5, interval_s=1.0, fail_at=3)
    result = Runner(proc, path=tmp_path / "fail.h5", clock=VirtualClock()).run()
    assert result.status == "failed"
    assert "injected failure at 3" in result.reason
    assert proc.calls[-1] == "shutdown"
    events = _events(result.path)
    assert ("test_shutdown", "counting procedure shut down") in events
    assert events[-1][0] == "end" and "injected failure" in events[-1][1]
    with RunReader(result.path) as reader:
        assert reader.status == "failed"
        assert list(reader.block("counts")["index"]) == [0, 1, 2]


def test_instrument_fault_interrupts_resumably(tmp_path: Path) -> None:
    proc = CountingProcedure(n_points=6, interval_s=1.0, fail_at=4, fail_kind="instrument")
    result = Runner(proc, path=tmp_path / "int.h5", clock=VirtualClock()).run()
    assert result.status == "interrupted"
    assert "smu" in result.reason and "no reply" in result.reason


def test_abort_from_another_thread(tmp_path: Path) -> None:
    from labctl.clock import RealClock

    proc = CountingProcedure(n_points=1000, interval_s=0.01)
    runner = Runner(proc, path=tmp_path / "abort.h5", clock=RealClock())
    timer = threading.Timer(0.3, runner.abort, args=("stop button",))
    timer.start()
    result = runner.run()
    timer.join()
    assert result.status == "aborted"
    assert result.reason == "stop button"
    assert proc.calls[-1] == "shutdown"
    with RunReader(result.path) as reader:
        assert 0 < len(reader.block("counts")["index"]) < 1000


def test_pause_and_resume_from_another_thread(tmp_path: Path) -> None:
    from labctl.clock import RealClock

    proc = CountingProcedure(n_points=30, interval_s=0.01)
    runner = Runner(proc, path=tmp_path / "pause.h5", clock=RealClock())
    log: list[str] = []
    runner.subscribe(lambda e: log.append(e.status) if isinstance(e, StatusChanged) else None)

    def controller() -> None:
        time.sleep(0.1)
        runner.pause()
        time.sleep(0.4)
        runner.resume()

    thread = threading.Thread(target=controller)
    thread.start()
    result = runner.run()
    thread.join()
    assert result.status == "completed"
    kinds = [k for k, _ in _events(result.path)]
    assert "paused" in kinds and "resumed" in kinds
    assert kinds.index("paused") < kinds.index("resumed")
    assert "paused" in log


def test_resume_continues_into_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "resume.h5"
    first = Runner(CountingProcedure(n_points=8, interval_s=1.0, fail_at=5, fail_kind="instrument"),
                   path=path, clock=VirtualClock()).run()
    assert first.status == "interrupted"
    runner = resume_runner(path, clock=VirtualClock())
    assert runner.procedure.values["n_points"] == 8
    second = runner.run()
    assert second.status == "completed"
    with RunReader(path) as reader:
        assert list(reader.block("counts")["index"]) == list(range(8))
        assert list(reader.block("counts")["square"]) == [i * i for i in range(8)]
        kinds = [e.kind for e in reader.events()]
        assert kinds.count("start") == 2 and "resume" in kinds
        assert reader.status == "completed"


def test_completed_run_cannot_be_resumed(tmp_path: Path) -> None:
    path = tmp_path / "done.h5"
    Runner(CountingProcedure(n_points=2, interval_s=0.0), path=path, clock=VirtualClock()).run()
    with pytest.raises(DataFileError, match="nothing to resume"):
        resume_runner(path)


def test_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "exists.h5"
    Runner(CountingProcedure(n_points=2, interval_s=0.0), path=path, clock=VirtualClock()).run()
    before = path.read_bytes()
    with pytest.raises(DataFileError):
        Runner(CountingProcedure(n_points=3, interval_s=0.0), path=path, clock=VirtualClock()).run()
    assert path.read_bytes() == before


def test_new_files_get_unique_names(tmp_path: Path) -> None:
    paths = {
        Runner(CountingProcedure(n_points=1, interval_s=0.0), directory=tmp_path, clock=VirtualClock()).run().path
        for _ in range(3)
    }
    assert len(paths) == 3 and all(p.parent == tmp_path for p in paths)


def test_a_failing_subscriber_does_not_stop_the_run(tmp_path: Path) -> None:
    def broken(event: object) -> None:
        if isinstance(event, Progress | LogLine):
            raise RuntimeError("GUI crashed")

    result = Runner(CountingProcedure(n_points=3, interval_s=0.0), path=tmp_path / "s.h5",
                    clock=VirtualClock(), subscribers=[broken]).run()
    assert result.status == "completed"
