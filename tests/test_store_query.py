"""Time windows and decimated views: the same numbers as computing on every row, without reading them."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from labctl.clock import VirtualClock
from labctl.store import RunReader, RunWriter

N = 300_000  # enough for three pyramid levels (128, 512, 2048 rows per entry) and a journal tail
T0 = 1_767_225_600.0


def _trace(n: int) -> dict[str, np.ndarray]:
    i = np.arange(n, dtype=float)
    power = 18.0 - 1e-5 * i + 0.01 * np.sin(i / 7.0)
    power[123_457] = 40.0  # a spike that any view of the whole trace must still show
    return {"time_s": T0 + i, "power_mW_cm2": power}


@pytest.fixture(scope="module")
def live_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file whose writer is still open: compacted rows, pyramid and 1000 rows only in the journal."""
    path = tmp_path_factory.mktemp("query") / "aging.h5"
    w = RunWriter.create(path, procedure="mppt", parameters={}, clock=VirtualClock(), flush_interval_s=3600.0)
    blk = w.create_block("mpp", {"time_s": "s", "power_mW_cm2": "mW/cm2"}, expected_rows=N)
    data = _trace(N + 1000)
    blk.append_columns({c: v[:N] for c, v in data.items()})
    for k in range(N, N + 1000):
        blk.append_row(time_s=data["time_s"][k], power_mW_cm2=data["power_mW_cm2"][k])
    w.flush()
    yield path
    w.close()


def test_window_returns_exactly_the_rows_in_the_time_range(live_file: Path) -> None:
    data = _trace(N + 1000)
    with RunReader(live_file) as r:
        assert r.info("mpp").n_rows == N + 1000
        for start, stop in ((T0 + 1000.5, T0 + 4600.5), (T0 + N - 200, T0 + N + 300), (T0 - 10, T0 + 3)):
            got = r.window("mpp", start, stop)
            mask = (data["time_s"] >= start) & (data["time_s"] < stop)
            np.testing.assert_array_equal(got["time_s"], data["time_s"][mask])
            np.testing.assert_array_equal(got["power_mW_cm2"], data["power_mW_cm2"][mask])
            assert got.first_row == int(np.argmax(mask))


@pytest.mark.parametrize(("start", "stop", "bins"), [(None, None, 2000), (T0 + 5000.0, T0 + 250_000.0, 300),
                                                     (T0 + 299_500.0, T0 + 300_900.0, 50)])
def test_decimation_matches_every_row(live_file: Path, start: float | None, stop: float | None,
                                      bins: int) -> None:
    data = _trace(N + 1000)
    with RunReader(live_file) as r:
        d = r.decimate("mpp", bins, start, stop)
    t, p = data["time_s"], data["power_mW_cm2"]
    inside = (t >= d.edges_s[0]) & (t < d.edges_s[-1])
    assert d.count.sum() == inside.sum()
    # these windows are read from level 1 (128 rows per entry), binned by the middle of each entry's
    # time span: a bin may gain or lose part of one entry at each edge, so compare with bins widened by it
    slack = 128.0
    for k in range(0, bins, max(1, bins // 40)):
        lo, hi = d.edges_s[k] - slack, d.edges_s[k + 1] + slack
        m = (t >= lo) & (t < hi) & inside
        core = (t >= d.edges_s[k] + slack) & (t < d.edges_s[k + 1] - slack)
        assert p[m].min() <= d.min["power_mW_cm2"][k] <= (p[core].min() if core.any() else np.inf)
        assert (p[core].max() if core.any() else -np.inf) <= d.max["power_mW_cm2"][k] <= p[m].max()
        assert p[m].min() <= d.mean["power_mW_cm2"][k] <= p[m].max()
    if start is None:
        assert np.nanmax(d.max["power_mW_cm2"]) == 40.0  # the spike survives 2000 bins
        np.testing.assert_allclose(np.nansum(d.mean["power_mW_cm2"] * d.count), p.sum(), rtol=1e-9)


def test_many_threads_append_and_log_events_at_once(tmp_path: Path) -> None:
    path = tmp_path / "threads.h5"
    with RunWriter.create(path, procedure="mppt", parameters={}, clock=VirtualClock(), flush_interval_s=0.01) as w:
        blocks = [w.create_block(f"ch{c}", {"index": "", "value": ""}) for c in range(8)]

        def channel(c: int) -> None:
            for i in range(3000):
                blocks[c].append_row(index=i, value=c * 1e6 + i)
                if i % 500 == 0:
                    w.event("progress", f"ch{c} at {i}", channel=f"ch{c}")
                    assert blocks[(c + 1) % 8].n_rows >= 0  # another channel's block, read while written
            w.checkpoint({"channel": c})

        threads = [threading.Thread(target=channel, args=(c,)) for c in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with RunReader(path) as r:
        for c in range(8):
            b = r.block(f"ch{c}")
            np.testing.assert_array_equal(b["index"], np.arange(3000.0))
            np.testing.assert_array_equal(b["value"], c * 1e6 + np.arange(3000.0))
        events = r.events()
        assert len(events) == 48 and {e.channel for e in events} == {f"ch{c}" for c in range(8)}
        assert len(r.checkpoints()) == 8
