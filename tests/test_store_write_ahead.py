"""The write-ahead log under the run file: a flush reaches the file whole or not at all."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from labctl.errors import DataFileError
from labctl.store import RunReader, RunWriter, write_ahead
from labctl.store.write_ahead import WriteAheadFile, wal_path

pytestmark = pytest.mark.skipif(not write_ahead.SUPPORTED, reason="the write-ahead log is POSIX only")


def _rows(w: RunWriter, start: int, n: int) -> None:
    i = np.arange(start, start + n, dtype=float)
    w.block("mpp").append_columns(time_s=i, power_W=1e-3 * i)


def test_pending_writes_are_read_back_before_they_are_committed(tmp_path: Path) -> None:
    log = WriteAheadFile(tmp_path / "f.bin", create=True)
    log.seek(10)
    log.write(b"abcdef")
    log.seek(12)
    log.write(b"XY")  # overwrites inside the pending extent
    log.seek(16)
    log.write(b"gh")  # touches its end: merged
    buf = bytearray(12)
    log.seek(8)
    log.readinto(buf)
    assert bytes(buf) == b"\0\0abXYefgh\0\0"
    assert (tmp_path / "f.bin").stat().st_size == 0  # nothing reached the file yet
    log.flush()
    assert (tmp_path / "f.bin").read_bytes() == b"\0" * 10 + b"abXYefgh"
    log.truncate(12)
    log.close()
    assert (tmp_path / "f.bin").read_bytes() == b"\0" * 10 + b"ab"
    assert not wal_path(tmp_path / "f.bin").exists()  # a clean close leaves no log


def test_a_record_cut_short_leaves_the_previous_flush(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    log = WriteAheadFile(path, create=True)
    log.write(b"first")
    log.flush()
    log.seek(0)
    log.write(b"SECOND")
    log.flush()  # record of the second flush is in the log (its magic zeroed after the copy)
    record = wal_path(path).read_bytes()
    log.close(remove_log=False)
    path.write_bytes(b"first")  # the file as the first flush left it ...
    # ... and the log as a kill in the middle of writing the second record leaves it
    wal_path(path).write_bytes(write_ahead.MAGIC + record[8:-3])
    assert not write_ahead.has_record(path)
    assert not write_ahead.recover(path)
    assert path.read_bytes() == b"first"
    assert not wal_path(path).exists()


def test_a_half_copied_flush_is_finished_by_the_next_reader(tmp_path: Path) -> None:
    # A writer process dies (os._exit, no clean-up) after logging its flush and copying only part of it
    # into the file: the file is torn; the reader finishes the copy from the log and finds every row.
    path = tmp_path / "run.h5"
    script = textwrap.dedent(f"""
        import os, numpy as np
        from labctl.store import RunWriter, write_ahead
        w = RunWriter.create({str(path)!r}, procedure="mppt", parameters={{}}, flush_interval_s=30.0)
        w.create_block("mpp", {{"time_s": "s", "power_W": "W"}})
        i = np.arange(0, 3000, dtype=float)
        w.block("mpp").append_columns(time_s=i, power_W=1e-3 * i)
        w.flush()
        def half(fd, size, extents, durable):
            for start, data in extents[: max(1, len(extents) // 2)]:
                os.pwrite(fd, data[: len(data) // 2], start)
            os._exit(9)
        write_ahead._apply = half
        i = np.arange(3000, 9000, dtype=float)
        w.block("mpp").append_columns(time_s=i, power_W=1e-3 * i)
        w.event("note", "after the first flush")
        w.flush()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    assert write_ahead.has_record(path)
    with RunReader(path) as r:  # replays the log, then reads
        assert r.block("mpp").n_rows == 9000
        np.testing.assert_array_equal(r.block("mpp")["time_s"], np.arange(9000, dtype=float))
        assert [e.message for e in r.events()] == ["after the first flush"]
    assert not wal_path(path).exists()
    with h5py.File(path, "r") as f:  # and plain h5py reads every dataset whole again
        f.visititems(lambda name, obj: obj[()] if isinstance(obj, h5py.Dataset) and obj.dtype.kind != "O" else None)


def test_a_reader_leaves_a_living_writers_log_alone(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with RunWriter.create(path, procedure="mppt", parameters={}) as w:
        w.create_block("mpp", {"time_s": "s", "power_W": "W"})
        _rows(w, 0, 100)
        w.flush()
        assert wal_path(path).exists()
        assert not write_ahead.recover(path)  # the writer holds the log's lock
        with pytest.raises(DataFileError, match="another labctl process is writing"):
            WriteAheadFile(path, create=False)
        with RunReader(path) as r:
            assert r.block("mpp").n_rows == 100
    assert not wal_path(path).exists()
