"""Lifecycle holes: a failing data file, Ctrl-C while connecting or during the safe state, abort vs pause."""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Any

import h5py
import pytest

from labctl.bench import Bench
from labctl.clock import VirtualClock
from labctl.errors import RunAborted
from labctl.runner import Procedure, RunContext, RunControl, Runner, StatusChanged
from labctl.station import Station
from labctl.store import RunReader, RunWriter

REAL_STATION = """
[instruments.smu]
driver = "keithley2450"
address = "GPIB0::24::INSTR"
[instruments.sun]
driver = "wavelabs_sinus70"
address = "wavelabs://0.0.0.0:3334"
"""


class LightOnThenDiskFull(Procedure):
    """Opens the shutter with the SMU output on, then the disk fills up under the run file."""

    name = "disk_full"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__()
        self.monkeypatch = monkeypatch
        self.world: Any = None

    def instruments_needed(self, station: Station) -> list[str]:
        return ["smu", "matrix", "sun"]

    def execute(self, ctx: RunContext) -> None:
        assert ctx.bench is not None and ctx.bench.simulation is not None
        self.world = ctx.bench.simulation.world
        ctx.bench.select("wbg_ref")
        light = ctx.bench.light("wbg_ref")
        light.set_intensity_suns(1.0)
        light.open_shutter()
        smu = ctx.bench.source_meter("wbg_ref")
        smu.source_voltage(0.5)
        smu.output_on()

        def disk_full(self: h5py.File) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        self.monkeypatch.setattr(h5py.File, "flush", disk_full)
        ctx.checkpoint({"step": 1})

    def shutdown(self, ctx: RunContext) -> None:
        ctx.event("wind_down", "procedure shutdown writes an event")  # fails too: the writer is broken


def test_a_full_disk_still_leaves_the_instruments_safe_and_the_file_closed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = LightOnThenDiskFull(monkeypatch)
    path = tmp_path / "full.h5"
    result = Runner(proc, station=Station.load("sim"), path=path).run()
    monkeypatch.undo()
    assert result.status == "failed"
    assert "No space left on device" in result.reason
    world = proc.world
    assert world.light("sun").suns_at(world.time_s) == 0.0  # the lamp went off despite the broken file
    assert world.switches["matrix"].selected is None
    RunWriter.open_existing(path).close()  # the run released its file
    with RunReader(path) as reader:
        assert reader.status == "running"  # what the last good flush left: resumable, never "completed"


class _FakeDriver:
    def __init__(self, name: str, log: list[str], fail_with: BaseException | None = None) -> None:
        self.name = name
        self.log = log
        self.fail_with = fail_with
        self.adapter = self

    def safe_state(self) -> None:
        self.log.append(f"safe {self.name}")
        if self.fail_with is not None:
            raise self.fail_with

    def close(self) -> None:
        self.log.append(f"close {self.name}")


def test_ctrl_c_during_the_safe_state_still_makes_the_other_instruments_safe() -> None:
    log: list[str] = []
    drivers = {"smu": _FakeDriver("smu", log, KeyboardInterrupt()), "sun": _FakeDriver("sun", log)}
    bench = Bench(Station.from_text(REAL_STATION), VirtualClock(), drivers)
    try:
        problems = bench.safe_state_all()
    except KeyboardInterrupt:  # a real one would end the test session: fail this test instead
        pytest.fail(f"Ctrl-C escaped from the safe state after {log}")
    assert log == ["safe smu", "safe sun"]
    assert set(problems) == {"smu"}


def test_ctrl_c_while_connecting_closes_what_was_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []

    def open_driver(station: Station, name: str, clock: Any, simulation: Any = None) -> _FakeDriver:
        if name == "sun":
            raise KeyboardInterrupt
        return _FakeDriver(name, log)

    monkeypatch.setattr("labctl.bench.open_driver", open_driver)
    with pytest.raises(KeyboardInterrupt):
        Bench.connect(Station.from_text(REAL_STATION), ["smu", "sun"], clock=VirtualClock())
    assert log == ["close smu"]


def test_a_pause_after_an_abort_does_not_block_the_shutdown(tmp_path: Path) -> None:
    control = RunControl()
    with RunWriter.create(tmp_path / "p.h5", procedure="t", parameters={}, clock=VirtualClock()) as writer:
        ctx = RunContext(clock=VirtualClock(), writer=writer, bench=None, control=control, subscribers=[])
        control.abort("stop button")
        control.pause()  # pressed just after the stop button: the abort must still win
        outcome: list[BaseException] = []

        def procedure_checks() -> None:
            try:
                ctx.check()
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=procedure_checks, daemon=True)
        thread.start()
        thread.join(timeout=3.0)
        stuck = thread.is_alive()
        control.resume()  # let a stuck thread go before failing
        thread.join(timeout=3.0)
    assert not stuck, "ctx.check() blocked on a pause requested after the abort"
    assert len(outcome) == 1 and isinstance(outcome[0], RunAborted)


class _Quick(Procedure):
    name = "quick"

    def execute(self, ctx: RunContext) -> None:
        ctx.check()


def test_pause_or_resume_after_the_run_ended_does_not_change_its_status(tmp_path: Path) -> None:
    seen: list[str] = []
    runner = Runner(_Quick(), path=tmp_path / "q.h5", clock=VirtualClock(),
                    subscribers=[lambda e: seen.append(e.status) if isinstance(e, StatusChanged) else None])
    assert runner.run().status == "completed"
    runner.pause()
    runner.resume()
    assert runner.status == "completed"
    assert seen[-1] == "completed"


def test_a_station_of_any_size_is_recorded(tmp_path: Path) -> None:
    # Format 1 saved the station's definition as a root attribute (at most 60 kB), so a station file with a
    # long comment header failed the run; format 2 stores it as a dataset.
    text = "# " + "lab notes " * 7000 + "\n" + Station.load("sim").text
    station = Station.from_text(text, source="big.toml")
    path = tmp_path / "big.h5"
    result = Runner(_Quick(), station=station, path=path, clock=VirtualClock()).run()
    assert result.status == "completed", result.reason
    RunWriter.open_existing(path).close()  # the run released its file
    with RunReader(path) as reader:
        assert reader.status == "completed"
        assert Station.from_description(reader.attrs["station_definition"]).text == text


class _DiskFillsAtTheEnd(Procedure):
    name = "fills_at_the_end"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__()
        self.monkeypatch = monkeypatch

    def execute(self, ctx: RunContext) -> None:
        block = ctx.create_block("counts", {"index": ""})
        for i in range(10):
            block.append_row(index=i)

        def disk_full(self: h5py.File) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        self.monkeypatch.setattr(h5py.File, "flush", disk_full)  # the buffered rows never reach the disk


def test_a_run_whose_last_rows_cannot_be_written_is_not_reported_completed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "end.h5"
    result = Runner(_DiskFillsAtTheEnd(monkeypatch), path=path, clock=VirtualClock()).run()
    monkeypatch.undo()
    assert result.status == "failed"
    assert "No space left on device" in result.reason
    RunWriter.open_existing(path).close()
