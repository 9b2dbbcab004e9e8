"""RunReader: reading finished files, files still being written, and files a killed writer left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl.clock import VirtualClock, real_elapsed_s, real_pause
from labctl.errors import DataFileError
from labctl.store import FORMAT_VERSION, BlockData, Event, RunReader, RunWriter


def make(path: Path, **kw: object) -> RunWriter:
    return RunWriter.create(path, procedure="mppt", parameters={"duration_h": 1000.0},
                            clock=VirtualClock(), **kw)  # type: ignore[arg-type]


def test_block_data_api(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path) as w:
        blk = w.create_block("mpp_A1", {"time_s": "s", "power_mW_cm2": "mW/cm2", "temperature_K": "K"},
                             {"pixel": "A1", "tracking": {"algorithm": "P&O", "step_V": 0.005}})
        blk.append_columns(time_s=[0.0, 60.0], power_mW_cm2=[20.0, 19.9], temperature_K=[338.0, 338.1])
    with RunReader(path) as r:
        b = r.block("mpp_A1")
        assert isinstance(b, BlockData) and b.name == "mpp_A1" and b.n_rows == 2
        assert b.columns == ["time_s", "power_mW_cm2", "temperature_K"]  # creation order, not sorted
        assert b.units == {"time_s": "s", "power_mW_cm2": "mW/cm2", "temperature_K": "K"}
        assert b.unit("power_mW_cm2") == "mW/cm2"
        assert b.attrs["pixel"] == "A1"
        assert b.attrs["tracking"] == {"algorithm": "P&O", "step_V": 0.005}
        np.testing.assert_array_equal(b["power_mW_cm2"], [20.0, 19.9])
        assert b["time_s"].dtype == np.float64 and "time_s" in b and "nope" not in b
        with pytest.raises(KeyError, match="no column 'voltage_V'; columns: \\['time_s'"):
            b["voltage_V"]
        with pytest.raises(KeyError, match="no column"):
            b.unit("voltage_V")
        with pytest.raises(DataFileError, match="no block 'mpp_B2'; blocks: \\['mpp_A1'\\]"):
            r.block("mpp_B2")
        assert [x.name for x in r.blocks()] == ["mpp_A1"]


def test_blocks_come_back_in_creation_order(tmp_path: Path) -> None:
    names = ["scan_010", "scan_002", "dark", "Zeta", "a", "scan_001", "spo", "b", "c", "d", "e", "f"]
    with make(tmp_path / "run.h5") as w:
        for name in names:
            w.create_block(name, {"x": ""})
    with RunReader(tmp_path / "run.h5") as r:
        assert r.block_names() == names


def test_string_attributes_that_look_like_json_stay_strings(tmp_path: Path) -> None:
    with make(tmp_path / "run.h5") as w:
        w.create_block("s", {"x": ""}, {"preconditioning": '{"light_soak_s": 10.0}', "list": [1, 2]})
        w.set_root_attrs(label="[not json]")
    with RunReader(tmp_path / "run.h5") as r:
        attrs = r.block("s").attrs
        assert attrs["preconditioning"] == '{"light_soak_s": 10.0}' and attrs["list"] == [1, 2]
        assert r.attrs["label"] == "[not json]"
        assert r.procedure == "mppt" and r.parameters == {"duration_h": 1000.0} and r.status == "running"
        assert r.procedure_class == "" and r.format_version == FORMAT_VERSION


def test_reading_a_file_still_open_for_writing_sees_flushed_rows(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path, flush_interval_s=60.0) as w:  # no background flush during this test
        blk = w.create_block("trace", {"t_s": "s"})
        for i in range(1000):
            blk.append_row(t_s=i)
        w.flush()
        for i in range(1000, 1500):
            blk.append_row(t_s=i)  # buffered, not flushed yet
        with RunReader(path) as r:  # same process (GUI next to the runner)
            np.testing.assert_array_equal(r.block("trace")["t_s"], np.arange(1000.0))
        # Another process reads the disk: RunReader merges the journal; plain h5py (file locking off)
        # sees the compressed rows only, none yet: a 1000-row block fills no 4096-row chunk.
        script = ("import sys, h5py; from labctl.store import RunReader\n"
                  "r = RunReader(sys.argv[1]); b = r.block('trace')\n"
                  "f = h5py.File(sys.argv[1], 'r', locking=False)\n"
                  "print(b.n_rows, b['t_s'].sum(), f['blocks/trace/t_s'].shape[0])")
        out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                             timeout=60, cwd=Path(__file__).resolve().parents[1])
        assert out.stdout.split() == ["1000", str(float(sum(range(1000)))), "0"], out.stderr
        w.event("mark", "after 1500 rows")  # queued with the rows: one cycle writes both
        w.flush()
        with RunReader(path) as r:
            assert r.block("trace").n_rows == 1500 and r.events()[-1].kind == "mark"


def test_background_flush_makes_rows_visible_within_a_second(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path, flush_interval_s=0.2) as w:
        blk = w.create_block("trace", {"t_s": "s"})
        for i in range(300):
            blk.append_row(t_s=i)
        started = real_elapsed_s()
        seen = 0
        while seen < 300 and real_elapsed_s() - started < 5.0:
            real_pause(0.05)
            with RunReader(path) as r:
                seen = r.block("trace").n_rows
        assert seen == 300
        assert real_elapsed_s() - started < 1.0


def test_columns_of_unequal_length_are_cut_to_the_common_rows(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path) as w:
        blk = w.create_block("iv", {"v_V": "V", "i_A": "A"})
        blk.append_columns(v_V=np.arange(10.0), i_A=np.arange(10.0) * 2)
    with h5py.File(path, "r+") as f:  # what a kill in the middle of a flush can leave: one column longer
        f["blocks/iv/v_V"].resize((13,))
        f["blocks/iv/v_V"][10:] = [10, 11, 12]
        f["events/time_s"].resize((1,))
    with RunReader(path) as r:
        assert r.block("iv").n_rows == 10 and r.events() == []
        np.testing.assert_array_equal(r.block("iv")["v_V"], np.arange(10.0))
    with RunWriter.open_existing(path) as w:  # resume appends after the common rows
        assert w.block("iv").n_rows == 10
        w.block("iv").append_row(v_V=-1.0, i_A=-2.0)
    with RunReader(path) as r:
        np.testing.assert_array_equal(r.block("iv")["v_V"], [*range(10), -1.0])
        np.testing.assert_array_equal(r.block("iv")["i_A"], [*range(0, 20, 2), -2.0])


def test_reader_refuses_what_is_not_a_labctl_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such data file"):
        RunReader(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(DataFileError, match="cannot be read as an HDF5 file"):
        RunReader(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_group("blocks")
    with pytest.raises(DataFileError, match="not a labctl data file"):
        RunReader(tmp_path / "other.h5")


def test_events_are_event_records(tmp_path: Path) -> None:
    with make(tmp_path / "run.h5") as w:
        w.event("interlock", "stage over temperature", temperature_K=371.2, limit_K=370.0)
    with RunReader(tmp_path / "run.h5") as r:
        assert r.events() == [Event(VirtualClock().now(), "interlock", "stage over temperature",
                                    {"temperature_K": 371.2, "limit_K": 370.0})]
        assert r.last_checkpoint() is None and r.instruments() == {} and r.analysis() == {}


# One append: ("row", values) or ("cols", list of rows appended with one append_columns call).
FINITE = st.floats(allow_nan=False, width=64)
ANY_FLOAT = st.one_of(FINITE, st.just(float("nan")), st.just(float("inf")), st.just(-0.0))
APPEND = st.one_of(
    st.tuples(st.just("row"), st.tuples(ANY_FLOAT, ANY_FLOAT)),
    st.tuples(st.just("cols"), st.lists(st.tuples(ANY_FLOAT, ANY_FLOAT), max_size=300)),
    st.tuples(st.just("flush"), st.just(())),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.sampled_from(["a", "b"]), APPEND), max_size=30))
def test_any_mix_of_rows_and_arrays_reads_back_identically(tmp_path: Path, plan: list) -> None:
    path = tmp_path / f"prop_{abs(hash(str(plan)))}.h5"
    expected: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}
    with make(path) as w:
        blocks = {name: w.create_block(name, {"x_V": "V", "y_A": "A"}) for name in expected}
        for name, (kind, payload) in plan:
            if kind == "row":
                blocks[name].append_row(x_V=payload[0], y_A=payload[1])
                expected[name].append(payload)
            elif kind == "cols":
                blocks[name].append_columns(x_V=[p[0] for p in payload], y_A=[p[1] for p in payload])
                expected[name].extend(payload)
            else:
                w.flush()
            assert blocks[name].n_rows == len(expected[name])
    with RunReader(path) as r:
        for name, rows in expected.items():
            block = r.block(name)
            want = np.array(rows, dtype=float).reshape(-1, 2)
            np.testing.assert_array_equal(block["x_V"], want[:, 0])
            np.testing.assert_array_equal(block["y_A"], want[:, 1])
            # bit-identical, including the sign of zero
            assert block["x_V"].tobytes() == want[:, 0].copy().tobytes()
    path.unlink()


def _break_heap_entry(path: Path, text: bytes) -> None:
    """Make the heap entry holding ``text`` unfindable, as when a kill beat its flush to the disk (or tore a
    rewrite of its global heap collection)."""
    data = bytearray(path.read_bytes())
    # the heap entry, not the JSON-line copy of an event in /journal/text (which follows a quote)
    found = [i for i in range(len(data)) if data.startswith(text, i) and data[i - 1] != ord('"')]
    assert len(found) == 1
    pos = found[0]
    data[pos - 16:pos - 14] = b"\xff\x7f"  # the entry's index in its global heap collection
    path.write_bytes(bytes(data))


def test_an_unreadable_event_string_is_recovered_and_resume_repairs_the_table(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path) as w:
        w.set_root_attrs(note="NOTE-MARKER-1")
        w.event("start", "first")
        w.checkpoint({"step": 1})
        w.event("fault", "EVENT-MARKER-2", channel="A1")
    _break_heap_entry(path, b"EVENT-MARKER-2")
    _break_heap_entry(path, b"NOTE-MARKER-1")
    with h5py.File(path, "r") as f, pytest.raises(OSError, match="heap"):
        f["events/message"][:]  # what plain h5py meets
    with RunReader(path) as r:
        # the event's copy in /journal/text stands in for its unreadable strings
        assert [(e.message, e.channel) for e in r.events()] == [("first", ""), ("EVENT-MARKER-2", "A1")]
        assert "note" not in r.attrs and r.procedure == "mppt"  # the rest of the metadata is there
        assert r.last_checkpoint() is not None
    with RunWriter.open_existing(path) as w:
        w.set_root_attrs(note="rewritten")
    with h5py.File(path, "r") as f:  # the table is written again from the copy: plain h5py reads it whole
        assert list(f["events/message"].asstr()[:]) == ["first", "EVENT-MARKER-2"]
        assert all(f["events"][k].shape == (2,) for k in ("time_s", "kind", "message", "data", "channel"))
        assert f.attrs["note"] == "rewritten"


def test_rows_whose_chunk_never_reached_the_disk_are_not_returned(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with make(path) as w:
        w.create_block("trace", {"t_s": "s", "v_V": "V"}).append_columns(t_s=np.arange(8192.0),
                                                                       v_V=np.ones(8192))
    with h5py.File(path, "r+") as f:  # a kill can leave the new length on disk but not the newest chunk
        for col in ("t_s", "v_V"):
            f["blocks/trace"][col].resize((9000,))
    with h5py.File(path, "r") as f:
        assert np.isnan(f["blocks/trace/t_s"][8192:]).all()  # what plain h5py shows: NaN, never 0.0
    with RunReader(path) as r:
        assert r.block("trace").n_rows == 8192  # rows up to the last chunk on disk
        np.testing.assert_array_equal(r.block("trace")["t_s"], np.arange(8192.0))
    with RunWriter.open_existing(path) as w:
        assert w.block("trace").n_rows == 8192
    with h5py.File(path, "r") as f:  # resume cut the rows that were never stored
        assert f["blocks/trace/t_s"].shape == (8192,)
