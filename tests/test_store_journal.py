"""The journal ring: what a reader finds in it after any cycle, torn records, relocation and overrun.

A copy of the file taken between two cycles is what a kill at that moment leaves on disk (the writer only
writes inside cycles), so these tests read such copies.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np

from labctl.clock import VirtualClock
from labctl.store import RunReader, RunWriter
from labctl.store import journal as jr


def _writer(path: Path, records: int = 1024) -> RunWriter:
    return RunWriter.create(path, procedure="mppt", parameters={}, clock=VirtualClock(), flush_interval_s=3600.0,
                            journal_records=records)


def _snapshot(path: Path, name: str) -> Path:
    copy = path.with_name(name)
    shutil.copyfile(path, copy)
    return copy


def _values(i: np.ndarray, k: int) -> np.ndarray:
    return 1000.0 * k + i


def test_the_ring_wraps_and_moves_slow_blocks_without_losing_a_row(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    w = _writer(path)
    fast = w.create_block("fast", {"i": "", "v": "V"}, expected_rows=100)  # 128-row chunks
    # 8 columns: two records per row; 128-row chunks, so its tail fits the ring, but ages in it
    slow = w.create_block("slow", {"i": "", "v": "V", "a": "", "b": "", "c": "", "d": "", "e": "", "f": ""},
                          expected_rows=100)
    for step in range(400):  # ~8,800 records: eight laps of a 1024-record ring
        i = np.arange(20 * step, 20 * step + 20, dtype=float)
        fast.append_columns(i=i, v=_values(i, 1))
        slow.append_row({c: float(step) for c in slow.columns})  # 8 columns: two records per row
        w.flush()
        if step in (37, 201, 399):
            with RunReader(_snapshot(path, f"at_{step}.h5")) as r:
                np.testing.assert_array_equal(r.block("fast")["v"], _values(np.arange(20.0 * step + 20), 1))
                np.testing.assert_array_equal(r.block("slow")["f"], np.arange(step + 1.0))
    assert w.forced_compactions == 0 and w._journal is not None and w._journal.head > 8 * 1024
    assert w.relocations > 5  # the slow block's tail was journaled again before the ring reached it
    assert slow.n_compacted == 384 and slow.n_tail == 16
    w.close()
    with h5py.File(path, "r") as f:  # closed: everything compacted, plain h5py reads it all
        np.testing.assert_array_equal(f["blocks/slow/f"][:], np.arange(400.0))
        header = f["journal/ring"][0]
        assert header[2] == header[1]  # and the journal header needs no record: readers skip the ring


def test_torn_records_and_a_torn_header_are_recognised(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with _writer(path) as w:
        blk = w.create_block("trace", {"i": "", "v": "V"})
        blk.append_columns(i=np.arange(50.0), v=_values(np.arange(50.0), 2))
        w.flush()
        copy = _snapshot(path, "copy.h5")
    with h5py.File(copy, "r+") as f:
        ring = f["journal/ring"]
        head = int(ring[0, 1])
        last = ring[head]  # record head - 1 lives at row 1 + (head - 1) % capacity = head
        last[-1] = -1.0  # a kill tore it: its two sequence numbers differ
        ring[head] = last
    with RunReader(copy) as r:
        np.testing.assert_array_equal(r.block("trace")["i"], np.arange(49.0))
    with h5py.File(copy, "r+") as f:
        header = f["journal/ring"][0]
        header[-1] += 1.0  # a torn header: readers scan the whole ring
        f["journal/ring"][0] = header
    with RunReader(copy) as r:
        np.testing.assert_array_equal(r.block("trace")["i"], np.arange(49.0))
    with RunWriter.open_existing(copy) as w:  # resume continues after the whole rows
        assert w.block("trace").n_rows == 49
        w.block("trace").append_row(i=49.0, v=-1.0)
    with h5py.File(copy, "r") as f:
        np.testing.assert_array_equal(f["blocks/trace/i"][:], np.arange(50.0))
        assert f["blocks/trace/v"][-1] == -1.0


def test_a_checkpoint_claiming_rows_that_never_landed_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with _writer(path) as w:
        blk = w.create_block("trace", {"i": ""})
        blk.append_columns(i=np.arange(10.0))
        w.checkpoint({"step": 1})
        w.flush()
        copy = _snapshot(path, "copy.h5")
    # what a kill in the middle of the next cycle can leave: its checkpoint landed, its 10 rows did not
    with h5py.File(copy, "r+") as f:
        table = f["checkpoints"]
        for field, value in (("time_s", 1.0), ("state", '{"step": 2}'), ("block_rows", '{"trace": 20}')):
            table[field].resize((2,))
            table[field][1] = value
    with RunReader(copy) as r:
        assert r.block("trace").n_rows == 10
        assert [c["state"] for c in r.checkpoints()] == [{"step": 1}]
        assert r.last_checkpoint() is not None and r.last_checkpoint()["block_rows"] == {"trace": 10}


def test_more_rows_than_the_ring_holds_are_compressed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with _writer(path) as w:
        blocks = [w.create_block(f"ch{k}", {"i": "", "v": ""}) for k in range(10)]
        for step in range(3):
            for k, blk in enumerate(blocks):  # 10 x 200 rows: more records than the 1024-record ring
                i = np.arange(200 * step, 200 * step + 200, dtype=float)
                blk.append_columns(i=i, v=_values(i, k))
            w.flush()
        assert w.forced_compactions == 3
    with RunReader(path) as r:
        for k in range(10):
            np.testing.assert_array_equal(r.block(f"ch{k}")["v"], _values(np.arange(600.0), k))


def test_records_encode_and_decode_rows_of_any_width() -> None:
    values = np.arange(30.0).reshape(10, 3)  # 10 columns: two records per row
    records = jr.encode(4, 7, values, 100)
    assert records.shape == (6, jr.RECORD_WIDTH)
    assert list(records[:, 0]) == list(range(100, 106)) and list(records[:, 2]) == [7, 7, 8, 8, 9, 9]
    segment = jr._segments(records, {4: 10})[0]
    assert list(segment.rows) == [7, 8, 9] and list(segment.seqs) == [100, 102, 104]
    np.testing.assert_array_equal(segment.values, values)
    got, _ = segment.run_from(8)
    np.testing.assert_array_equal(got, values[:, 1:])
