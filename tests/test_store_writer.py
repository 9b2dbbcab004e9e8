"""RunWriter: what a user of the run file relies on (layout, metadata, errors, resume)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import labctl
from labctl.clock import VirtualClock
from labctl.errors import DataFileError
from labctl.store import FORMAT_VERSION, BlockWriter, ColumnError, RunReader, RunWriter
from labctl.store import journal as journal_module
from labctl.store import reserve as reserve_module
from labctl.store import writer as writer_module

COLUMNS = {"voltage_V": "V", "current_A": "A", "current_density_mA_cm2": "mA/cm2", "index": ""}


def make(path: Path, **kw: object) -> RunWriter:
    args: dict[str, object] = {"procedure": "jv", "parameters": {"v_max_V": 1.2, "rates_V_s": [0.1, 1.0]},
                               "clock": VirtualClock()}
    args.update(kw)
    return RunWriter.create(path, **args)  # type: ignore[arg-type]


def rows(n: int, start: int = 0) -> list[dict[str, float]]:
    return [{"voltage_V": 0.01 * i, "current_A": -1e-3 + 1e-6 * i, "current_density_mA_cm2": 20.0 - i,
             "index": float(i)} for i in range(start, start + n)]


# ------------------------------------------------------------------------------------ creating files
def test_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path) as w:
        w.create_block("scan", COLUMNS).append_row(rows(1)[0])
    before = path.read_bytes()
    with pytest.raises(DataFileError, match=str(path).replace("\\", "\\\\") + ".*never overwrites"):
        make(path)
    assert path.read_bytes() == before
    other = tmp_path / "notes.h5"
    other.write_text("not mine")
    with pytest.raises(DataFileError, match="exists already"):
        make(other)
    assert other.read_text() == "not mine"


def test_creates_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "2026" / "01" / "run.h5"
    make(path).close()
    assert path.is_file()


def test_root_metadata_readable_with_plain_h5py(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    sample = {"id": "PSC-17", "area_cm2": 0.105, "stack": ["ITO", "SAM", "perovskite", "C60", "Ag"]}
    conditions = {"light": "1 sun AM1.5G", "temperature": "65 C", "atmosphere": "N2", "bias": "MPP"}
    with make(path, operator="ada", station="sim.toml", sample=sample, conditions=conditions,
              procedure_class="procedures.jv:JV") as w:
        w.set_root_attrs(notes={"batch": 3}, comment="first light")
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["format_version"] == FORMAT_VERSION
        assert a["labctl_version"] == labctl.__version__
        assert a["created"] == "2026-01-01T00:00:00.000Z"  # the VirtualClock epoch, in UTC
        assert (a["operator"], a["station"], a["procedure"]) == ("ada", "sim.toml", "jv")
        assert a["procedure_class"] == "procedures.jv:JV"
        # the parameters (like the station definition) are a dataset: no attribute size limit
        assert json.loads(f["metadata/parameters"].asstr()[()]) == {"v_max_V": 1.2, "rates_V_s": [0.1, 1.0]}
        assert "parameters" not in a
        assert json.loads(a["sample"]) == sample
        assert json.loads(a["conditions"]) == conditions
        assert json.loads(a["notes"]) == {"batch": 3} and a["comment"] == "first light"
        assert a["status"] == "running"
    with RunReader(path) as r:
        assert r.parameters == {"v_max_V": 1.2, "rates_V_s": [0.1, 1.0]}
        assert r.attrs["sample"] == sample and r.attrs["conditions"] == conditions
        assert r.attrs["notes"] == {"batch": 3} and r.attrs["comment"] == "first light"


def test_status_and_end_reason(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path) as w:
        w.set_status("aborted", "interlock: stage over temperature")
        with RunReader(path) as r:  # written at once, not at close
            assert r.status == "aborted"
            assert r.attrs["end_reason"] == "interlock: stage over temperature"
        with pytest.raises(DataFileError, match="format_version"):
            w.set_root_attrs(format_version=99)


def test_column_layout_units_and_chunking(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path) as w:
        blk = w.create_block("scan_000", COLUMNS, {"direction": "RS", "scan_rate_V_s": 0.1})
        assert isinstance(blk, BlockWriter) and blk.columns == COLUMNS and blk.name == "scan_000"
        for row in rows(10):
            blk.append_row(row)
    with h5py.File(path, "r") as f:
        group = f["blocks/scan_000"]
        assert group.attrs["direction"] == "RS" and group.attrs["scan_rate_V_s"] == 0.1
        assert list(group.attrs["columns"]) == list(COLUMNS)
        for col, unit in COLUMNS.items():
            ds = group[col]
            assert ds.attrs["units"] == unit
            assert ds.dtype == np.float64 and ds.maxshape == (None,) and ds.shape == (10,)
            assert ds.chunks is not None and 1024 <= ds.chunks[0] <= 8192
        np.testing.assert_array_equal(group["index"][:], np.arange(10.0))


def test_create_block_refuses_a_duplicate_and_bad_names(tmp_path: Path) -> None:
    with make(tmp_path / "run.h5") as w:
        w.create_block("scan", COLUMNS)
        with pytest.raises(DataFileError, match="block 'scan' exists already"):
            w.create_block("scan", COLUMNS)
        with pytest.raises(DataFileError, match="invalid block name"):
            w.create_block("a/b", COLUMNS)
        with pytest.raises(DataFileError, match="at least one column"):
            w.create_block("empty", {})
        with pytest.raises(DataFileError, match="unit must be a string"):
            w.create_block("bad_unit", {"v": 1})  # type: ignore[dict-item]
        with pytest.raises(DataFileError, match="no block 'nope'"):
            w.block("nope")
        assert w.block_names() == ["scan"]


# ---------------------------------------------------------------------------------- appending rows
def test_row_errors_name_the_columns_and_append_nothing(tmp_path: Path) -> None:
    with make(tmp_path / "run.h5") as w:
        blk = w.create_block("scan", COLUMNS)
        good = rows(1)[0]
        with pytest.raises(ColumnError, match=r"missing column\(s\) \['index'\]"):
            blk.append_row({k: v for k, v in good.items() if k != "index"})
        with pytest.raises(ColumnError, match=r"unknown column\(s\) \['voltage'\]"):
            blk.append_row(good, voltage=1.0)
        with pytest.raises(ColumnError, match=r"column 'current_A' = 'high' is not a number"):
            blk.append_row(good | {"current_A": "high"})
        with pytest.raises(ColumnError, match="different lengths"):
            blk.append_columns(voltage_V=[1, 2], current_A=[1], current_density_mA_cm2=[1, 2], index=[0, 1])
        with pytest.raises(ColumnError, match="must be 1-D"):
            blk.append_columns({c: np.zeros((2, 2)) for c in COLUMNS})
        with pytest.raises(ColumnError, match=r"missing column\(s\) \['index'\]"):
            blk.append_columns(voltage_V=[1], current_A=[1], current_density_mA_cm2=[1])
        assert isinstance(ColumnError("x"), ValueError)  # catchable as a plain ValueError too
        assert blk.n_rows == 0
        blk.append_row(good)
        assert blk.n_rows == 1


def test_rows_and_arrays_give_the_same_file(tmp_path: Path) -> None:
    data = rows(5000)
    with make(tmp_path / "run.h5") as w:
        by_row = w.create_block("by_row", COLUMNS)
        by_array = w.create_block("by_array", COLUMNS)
        for row in data:
            by_row.append_row(**row)
        for start in (0, 1, 1001, 3000):  # uneven batches, crossing chunk boundaries
            stop = {0: 1, 1: 1001, 1001: 3000, 3000: 5000}[start]
            by_array.append_columns({c: [r[c] for r in data[start:stop]] for c in COLUMNS})
        assert by_row.n_rows == by_array.n_rows == 5000
    with RunReader(tmp_path / "run.h5") as r:
        a, b = r.block("by_row"), r.block("by_array")
        for col in COLUMNS:
            np.testing.assert_array_equal(a[col], b[col])
            np.testing.assert_array_equal(a[col], [row[col] for row in data])


def test_large_arrays_and_buffered_rows_keep_their_order(tmp_path: Path) -> None:
    n_big = writer_module.MAX_BUFFER_ROWS + 123
    with make(tmp_path / "run.h5") as w:
        blk = w.create_block("trace", {"t_s": "s"})
        blk.append_row(t_s=-2.0)
        blk.append_row(t_s=-1.0)
        blk.append_columns(t_s=np.arange(n_big, dtype=float))  # goes straight to the file
        for i in range(3):
            blk.append_row(t_s=n_big + i)
        for _ in range(2 * writer_module.MAX_BUFFER_ROWS // 1000 + 1):  # fills the buffer twice
            start = blk.n_rows - 2
            blk.append_columns(t_s=np.arange(start, start + 1000, dtype=float))
        total = blk.n_rows
        assert w.uncovered_cycles == 0 and w.reserve_holes == 0
    with RunReader(tmp_path / "run.h5") as r:
        np.testing.assert_array_equal(r.block("trace")["t_s"], np.arange(-2, total - 2, dtype=float))


# ---------------------------------------------------------------------- events, checkpoints, analysis
def test_events_keep_order_and_contents(tmp_path: Path) -> None:
    clock = VirtualClock()
    with make(tmp_path / "run.h5", clock=clock) as w:
        w.event("start", "procedure jv starting", instruments=["smu", "lamp"])
        clock.sleep(12.5)
        w.event("fault", "smu: no reply", kind="timeout", message="retry 3/3", retries=3)
        clock.sleep(0.5)
        w.event("end", "procedure finished", status="completed", pce=np.float64(20.1))
    with RunReader(tmp_path / "run.h5") as r:
        events = r.events()
    t0 = clock.now() - 13.0
    assert [(e.kind, e.message) for e in events] == [
        ("start", "procedure jv starting"), ("fault", "smu: no reply"), ("end", "procedure finished")]
    assert [e.time_s - t0 for e in events] == [0.0, 12.5, 13.0]
    assert events[0].data == {"instruments": ["smu", "lamp"]}
    assert events[1].data == {"kind": "timeout", "message": "retry 3/3", "retries": 3}
    assert events[2].data == {"status": "completed", "pce": 20.1}


def test_checkpoint_records_state_and_rows_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path) as w:
        assert RunReader(path).last_checkpoint() is None
        a = w.create_block("a", {"x": ""})
        b = w.create_block("b", {"y": "K"})
        for i in range(7):
            a.append_row(x=i)
        w.checkpoint({"step": 1, "pixel": "A1", "setpoints_K": [300.0, 310.0]})
        for i in range(5):
            b.append_row(y=i)
        w.checkpoint({"step": 2})
        w.flush()  # a checkpoint is queued like an event; flush() (or the next cycle) writes it
        with RunReader(path) as r:  # read while the writer is still open: the checkpoint is on disk
            last = r.last_checkpoint()
            assert last is not None and last["state"] == {"step": 2}
            assert last["block_rows"] == {"a": 7, "b": 5}
            assert len(r.block("a")["x"]) >= 7 and len(r.block("b")["y"]) >= 5
            first = r.checkpoints()[0]
            assert first["state"] == {"step": 1, "pixel": "A1", "setpoints_K": [300.0, 310.0]}
            assert first["block_rows"] == {"a": 7, "b": 0}
            assert first["time_s"] == pytest.approx(VirtualClock().now())
        with pytest.raises(DataFileError, match="checkpoint state cannot be stored as JSON"):
            w.checkpoint({"bad": object()})


def test_analysis_round_trip_and_replacement(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    results = {"voc_V": 1.12, "n_scans": 4, "ok": True, "label": "champion", "missing": None,
               "pce_pct": np.array([19.8, 20.1]), "directions": ["FS", "RS"], "empty": [],
               "scans": {"0": {"block": "scan_000", "ff": 0.81}, "1": {"block": "scan_001", "ff": None}}}
    with make(path) as w:
        w.write_analysis("jv", {"voc_V": 0.5})
        w.write_analysis("jv", results, {"analysis_version": "1"})
    with RunReader(path) as r:
        got = r.analysis()["jv"]
    assert got["voc_V"] == 1.12 and got["n_scans"] == 4 and got["ok"] is True
    assert got["label"] == "champion" and got["missing"] is None and got["analysis_version"] == "1"
    np.testing.assert_array_equal(got["pce_pct"], [19.8, 20.1])
    assert got["directions"] == ["FS", "RS"] and len(got["empty"]) == 0
    assert got["scans"] == {"0": {"block": "scan_000", "ff": 0.81}, "1": {"block": "scan_001", "ff": None}}
    with h5py.File(path, "r") as f:  # plain HDF5: scalars are attributes, arrays datasets
        assert f["analysis/jv"].attrs["voc_V"] == 1.12
        np.testing.assert_array_equal(f["analysis/jv/pce_pct"][:], [19.8, 20.1])


def test_instruments_are_recorded_and_updated_on_re_add(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path) as w:
        w.add_instrument("smu", idn="KEITHLEY,2450,04", address="sim://keithley2450", driver="keithley2450",
                         settings={"nplc": 1.0, "range_A": 0.1})
        w.add_instrument("smu", idn="KEITHLEY,2450,04", address="GPIB0::18::INSTR", driver="keithley2450")
        w.add_instrument("lamp", idn="WAVELABS", address="tcp", driver="sinus70", settings={"suns": 1})
    with RunReader(path) as r:
        instruments = r.instruments()
    assert instruments["smu"] == {"idn": "KEITHLEY,2450,04", "address": "GPIB0::18::INSTR",
                                  "driver": "keithley2450", "settings": {}}
    assert instruments["lamp"]["settings"] == {"suns": 1}


def test_metadata_of_any_size_is_stored_as_datasets(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    station = "[instruments]\n" + "".join(f"smu{i} = {{ driver = 'keithley2450' }}\n" for i in range(5000))
    big = {"pixels": [f"P{i}" for i in range(20_000)]}
    with make(path) as w:
        w.set_root_attrs(station_definition=station, layout=big, fine="x" * 1000)
        with pytest.raises(DataFileError, match="attribute 'when'"):
            w.set_root_attrs(when=object())
    assert len(station) > 100_000
    with h5py.File(path, "r") as f:  # plain h5py: large texts are string datasets under /metadata
        assert f["metadata/station_definition"].asstr()[()] == station
        assert json.loads(f["metadata/layout"].asstr()[()]) == big
        assert f.attrs["fine"] == "x" * 1000
    with RunReader(path) as r:
        assert r.attrs["station_definition"] == station and r.attrs["layout"] == big
        assert r.attrs["fine"] == "x" * 1000


# ------------------------------------------------------------------------------------ lifecycle
def test_close_is_idempotent_and_a_closed_writer_refuses_work(tmp_path: Path) -> None:
    w = make(tmp_path / "run.h5")
    blk = w.create_block("a", {"x": ""})
    w.close()
    w.close()
    with pytest.raises(DataFileError, match="closed"):
        blk.append_row(x=1.0)
    with pytest.raises(DataFileError, match="closed"):
        w.event("late", "too late")


def test_context_manager_closes_and_keeps_rows_on_exception(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with pytest.raises(RuntimeError, match="instrument exploded"), make(path) as w:
        blk = w.create_block("a", {"x": ""})
        for i in range(100):
            blk.append_row(x=i)
        raise RuntimeError("instrument exploded")
    with h5py.File(path, "r") as f:  # closed: a normal (locking) open works, all rows are there
        np.testing.assert_array_equal(f["blocks/a/x"][:], np.arange(100.0))


def test_closed_file_carries_no_reserve(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path) as w:
        blk = w.create_block("a", {"x": ""})
        for i in range(100):
            blk.append_row(x=i)
        w.flush()
        assert path.stat().st_size > writer_module.MIN_RESERVE_BYTES  # claimed (sparse) while open
    assert path.stat().st_size < 1_000_000  # the reserve (>= 4 MiB) is cut off


def test_a_failed_background_flush_is_reported_to_the_acquisition_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = make(tmp_path / "run.h5", flush_interval_s=0.05)
    blk = w.create_block("a", {"x": ""})

    def broken(self: object, records: np.ndarray) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(journal_module.JournalWriter, "append", broken)
    blk.append_row(x=1.0)
    w._thread.join(timeout=5)  # the flusher stops after recording the failure
    with pytest.raises(DataFileError, match="No space left on device"):
        blk.append_row(x=2.0)
    with pytest.raises(DataFileError, match="No space left on device"):
        w.close()


# ---------------------------------------------------------------------------------------- resume
def test_open_existing_appends_to_blocks_and_keeps_order(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path) as w:
        for name in ("zeta", "alpha", "mid"):
            w.create_block(name, COLUMNS)
        for row in rows(10):
            w.block("zeta").append_row(row)
        w.checkpoint({"done": 10})
    with RunWriter.open_existing(path, clock=VirtualClock()) as w:
        assert w.block_names() == ["zeta", "alpha", "mid"]
        blk = w.block("zeta")
        assert blk.n_rows == 10 and blk.columns == COLUMNS
        for row in rows(5, start=10):
            blk.append_row(row)
        w.create_block("after_resume", {"x": ""}).append_row(x=1)
        w.event("resume", "continued")
    with RunReader(path) as r:
        assert r.block_names() == ["zeta", "alpha", "mid", "after_resume"]
        np.testing.assert_array_equal(r.block("zeta")["index"], np.arange(15.0))
        assert r.block("zeta").units == COLUMNS
        assert [e.kind for e in r.events()] == ["resume"]
        assert r.last_checkpoint() == {"state": {"done": 10}, "time_s": VirtualClock().now(),
                                       "block_rows": {"zeta": 10, "alpha": 0, "mid": 0}}


def test_open_existing_refuses_what_it_cannot_append_to(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such data file"):
        RunWriter.open_existing(tmp_path / "missing.h5")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = [1, 2, 3]
    with pytest.raises(DataFileError, match="not a labctl data file"):
        RunWriter.open_existing(plain)
    future = tmp_path / "future.h5"
    make(future).close()
    with h5py.File(future, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(DataFileError, match="newer than this labctl reads"):
        RunWriter.open_existing(future)
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(DataFileError, match="cannot open"):
        RunWriter.open_existing(text)


def test_a_second_writer_on_an_open_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path):
        with pytest.raises(DataFileError, match="already open for writing"):
            RunWriter.open_existing(path)
    RunWriter.open_existing(path).close()  # closing the first writer released the file


def test_a_bad_attribute_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path) as w:
        blk = w.create_block("a", {"x": ""}, {"direction": "FS"})
        with pytest.raises(DataFileError, match="attribute 'when'"):
            blk.set_attrs(direction="RS", when=object())
    with RunReader(path) as r:
        assert r.block("a").attrs["direction"] == "FS"


def test_a_writer_dropped_without_close_keeps_its_rows(tmp_path: Path) -> None:
    import gc

    path = tmp_path / "run.h5"
    w = make(path, flush_interval_s=3600.0)
    blk = w.create_block("a", {"x": ""})
    for i in range(10):
        blk.append_row(x=i)
    del w, blk
    gc.collect()
    with h5py.File(path, "r") as f:  # closed (a locking open works) with every row
        np.testing.assert_array_equal(f["blocks/a/x"][:], np.arange(10.0))


def test_metadata_placed_during_a_flush_does_not_break_the_reserve(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # HDF5 gives fractal-heap metadata its address only while flushing, behind the reserve. The layout
    # avoids fractal heaps; should one appear (a file edited by hand), the writer claims again behind it.
    path = tmp_path / "run.h5"
    real_getsize = reserve_module.os.path.getsize
    calls = {"n": 0}

    def getsize_with_one_tail(p: object) -> int:
        calls["n"] += 1
        return int(real_getsize(p)) + (1 if calls["n"] == 3 else 0)  # type: ignore[arg-type]

    with make(path) as w:
        blk = w.create_block("a", {"x": ""})
        monkeypatch.setattr(reserve_module.os.path, "getsize", getsize_with_one_tail)
        for i in range(3):
            blk.append_row(x=i)
            w.flush()
        monkeypatch.undo()
        assert w.reserve_holes == 1 and w.uncovered_cycles == 0
        blk.append_columns(x=np.arange(3.0, 10_000.0))
        w.flush()
        assert w.uncovered_cycles == 0
    with RunReader(path) as r:
        np.testing.assert_array_equal(r.block("a")["x"], np.arange(10_000.0))


def test_bad_values_leave_no_half_written_block_or_analysis(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path) as w:
        with pytest.raises(DataFileError, match="attribute 'when'"):
            w.create_block("scan", {"x": ""}, {"when": object()})
        with pytest.raises(DataFileError, match="attribute 'fit'"):
            w.write_analysis("jv", {"voc_V": 1.1, "nested": {"fit": object()}})
        w.write_analysis("mixed", {"labels": ["a", 1]})  # not silently turned into strings
        assert w.block_names() == []
    with RunReader(path) as r:
        assert r.block_names() == [] and list(r.analysis()) == ["mixed"]
        assert r.analysis()["mixed"]["labels"] == ["a", 1]


def test_single_precision_columns_hold_the_same_values_live_and_compacted(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    t = 1_767_225_600.0 + np.arange(300, dtype=float)
    v = 1.05 + 1e-4 * np.sin(np.arange(300))
    with RunWriter.create(path, procedure="mppt", parameters={}) as w:
        block = w.create_block("mppt_a", {"time_s": "s", "voltage_V": "V"}, single_precision=["voltage_V"])
        block.append_columns(time_s=t, voltage_V=v)
        w.flush()
        with RunReader(path) as r:  # rows still in the journal (float64 there) read as float32 values
            live = r.block("mppt_a")
            assert r.info("mppt_a").single_precision == {"voltage_V"}
    np.testing.assert_array_equal(live["voltage_V"], v.astype(np.float32))
    np.testing.assert_array_equal(live["time_s"], t)  # times stay float64, to the microsecond
    with h5py.File(path, "r") as f:
        assert f["blocks/mppt_a/voltage_V"].dtype == np.float32 and f["blocks/mppt_a/time_s"].dtype == np.float64
        np.testing.assert_array_equal(f["blocks/mppt_a/voltage_V"][:], v.astype(np.float32))
    with RunReader(path) as r:
        np.testing.assert_array_equal(r.block("mppt_a")["voltage_V"], live["voltage_V"])


def test_single_precision_refuses_times_and_unknown_columns(tmp_path: Path) -> None:
    with RunWriter.create(tmp_path / "run.h5", procedure="mppt", parameters={}) as w:
        with pytest.raises(DataFileError, match=r"'time_s' holds times .*stay float64"):
            w.create_block("a", {"time_s": "s", "power_W": "W"}, single_precision=["time_s", "power_W"])
        with pytest.raises(DataFileError, match=r"single_precision names columns \['pce'\]"):
            w.create_block("a", {"time_s": "s", "power_W": "W"}, single_precision=["pce"])
        assert w.block_names() == []
