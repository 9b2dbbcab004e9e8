"""The live plots and the aging dashboard offscreen: a plot receiving batches draws what fits its width
whatever the run's length, an old hour zoomed into is read from the run file, and the dashboard shows a
suspended channel as such."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from labctl.clock import VirtualClock
from labctl.gui.dashboard import STATE_COLOURS, AgingDashboard
from labctl.gui.live_plot import HOUR_S, LivePlot
from labctl.store import RunWriter

T0 = 1.8e9


def _aging(hours: float, step_s: float = 10.0, loss_per_h: float = 3e-4) -> tuple[np.ndarray, np.ndarray]:
    t = T0 + np.arange(0.0, hours * HOUR_S, step_s)
    pce = 18.0 * (1.0 - loss_per_h * (t - T0) / HOUR_S) + np.random.default_rng(3).normal(0, 0.02, t.size)
    return t, pce


def test_a_live_plot_draws_no_more_than_its_width_after_a_thousand_hours(qtbot) -> None:
    plot = LivePlot("MPPT", "PCE", "%")
    qtbot.addWidget(plot)
    plot.resize(1200, 600)
    t, pce = _aging(1000)
    for channel in ("a", "b", "c"):
        for k in range(0, t.size, 5000):
            plot.add_points(channel, t[k:k + 5000], pce[k:k + 5000] - ord(channel) * 0.01)
    with qtbot.waitSignal(plot.redrawn, timeout=3000):
        pass  # the timer redraws on its own: nothing was drawn while the batches came in
    x, y = plot.drawn("a")
    strokes = x.size // 2  # one min-to-max stroke per pixel column
    assert strokes <= 1200 and x[0] >= 0
    assert x[-1] == pytest.approx(1000, abs=1000 / strokes)  # hours since start, to within one stroke
    assert y.max() == pytest.approx(pce.max() - ord("a") * 0.01)  # extremes kept
    assert plot.stored_points() < 3 * 60_000  # bounded per channel (overview + tail), not 3 × 360,000 points


def test_the_image_on_screen_shows_each_channel_in_its_colour_where_its_data_are(qtbot) -> None:
    # Two flat channels, one at 10 % and one at 20 %, drawn into the raster: the pixel rows of their values
    # carry their colours, rows between them nothing.
    plot = LivePlot("MPPT", "PCE", "%")
    qtbot.addWidget(plot)
    plot.resize(800, 400)
    t = T0 + np.arange(0.0, 10 * HOUR_S, 60.0)
    plot.add_points("low", t, np.full(t.size, 10.0))
    plot.add_points("high", t, np.full(t.size, 20.0))
    plot.redraw()
    image, frame = plot.image, plot.raster.frame
    assert image is not None and frame is not None
    (y0, y1), height = frame.y_range, image.height()

    def row_colours(value: float) -> set[str]:
        row = int((y1 - value) / (y1 - y0) * height)
        colours = set()
        for dy in (-1, 0, 1):
            r = min(max(row + dy, 0), height - 1)
            colours |= {image.pixelColor(x, r).name() for x in range(0, image.width(), 7)
                        if image.pixelColor(x, r).alpha() == 255}
        return colours

    low, high = (plot._colours[c].name() for c in ("low", "high"))
    assert low in row_colours(10.0) and high not in row_colours(10.0)
    assert high in row_colours(20.0) and low not in row_colours(20.0)
    assert row_colours(15.0) == set()


def test_a_timed_redraw_renders_off_the_gui_thread_and_shows_the_newest_frame(qtbot) -> None:
    plot = LivePlot("MPPT", "PCE", "%")
    qtbot.addWidget(plot)
    t, pce = _aging(10)
    plot.add_points("a", t, pce)
    with qtbot.waitSignal(plot.redrawn, timeout=3000):
        pass
    qtbot.waitUntil(lambda: plot.image is not None, timeout=3000)
    first = plot.raster.frame
    plot.add_points("a", t + 10 * HOUR_S, pce)
    with qtbot.waitSignal(plot.redrawn, timeout=3000):
        pass
    qtbot.waitUntil(lambda: plot.raster.frame is not first, timeout=3000)
    assert plot.raster.frame is not None and plot.raster.frame.x_range[1] == pytest.approx(20.0, abs=0.05)


def test_zoomed_into_the_newest_hour_the_plot_shows_the_raw_points(qtbot) -> None:
    plot = LivePlot("MPPT", "PCE", "%")
    qtbot.addWidget(plot)
    t, pce = _aging(100)
    plot.add_points("a", t, pce)
    plot.plot.setXRange(99.0, 100.0, padding=0)
    plot.redraw()
    x, y = plot.drawn("a")
    newest = t >= T0 + 99 * HOUR_S
    assert x.size == int(newest.sum())
    np.testing.assert_allclose(y, pce[newest])


def test_an_old_hour_is_read_from_the_run_file(qtbot, tmp_path: Path) -> None:
    t, pce = _aging(1000, step_s=30.0)
    path = tmp_path / "aging.h5"
    with RunWriter.create(path, procedure="mppt", parameters={}, clock=VirtualClock(T0)) as writer:
        block = writer.create_block("mppt_a", {"time_s": "s", "pce_pct": "%"})
        block.append_columns({"time_s": t, "pce_pct": pce})
    plot = LivePlot("MPPT", "PCE", "%")
    qtbot.addWidget(plot)
    plot.resize(1000, 500)
    plot.use_run_file(path, lambda channel: f"mppt_{channel}", "pce_pct")
    plot.add_points("a", t, pce)
    plot.plot.setXRange(100.0, 101.0, padding=0)
    plot.redraw()  # memory holds only an overview of hour 100: the file is asked on a worker thread
    qtbot.waitUntil(lambda: "a" in plot._file_views, timeout=5000)
    plot.redraw()
    x, y = plot.drawn("a")
    inside = (t >= T0 + 100 * HOUR_S) & (t < T0 + 101 * HOUR_S)
    assert x.min() >= 99.99 and x.max() <= 101.01
    assert y.min() == pytest.approx(pce[inside].min()) and y.max() == pytest.approx(pce[inside].max())


def test_the_dashboard_shows_a_suspended_channel_and_its_retention(qtbot) -> None:
    dashboard = AgingDashboard([f"px{i}" for i in range(16)])
    qtbot.addWidget(dashboard)
    t, pce = _aging(300, step_s=60.0, loss_per_h=1e-3)
    dashboard.add_points("px3", t, pce)
    dashboard.on_event("channel_suspended", "px3", "irradiance 62 mW/cm2 below 90")
    tile = dashboard.tiles["px3"]
    for other in dashboard.tiles.values():
        other.update_metrics()
        other.refresh()
    assert tile.state == "suspended" and STATE_COLOURS["suspended"] in tile.styleSheet()
    assert "suspended" in tile.badge.text() and "62 mW/cm2" in tile.badge.toolTip()
    assert tile.retention.text() == f"retention {100 * pce[-1] / tile.pce0_pct:.1f} %"
    assert tile.pce0_pct == pytest.approx(18.0, abs=0.05)
    assert tile.t80.text() == "T80 200 h"  # 0.1 %/h of the start: 80 % of PCE₀ at 200 h
    dashboard.on_event("channel_resumed", "px3")
    assert tile.state == "tracking"
    with qtbot.waitSignal(dashboard.channel_clicked) as clicked:
        qtbot.mouseClick(tile, Qt.MouseButton.LeftButton)
    assert clicked.args == ["px3"]


def test_t80_so_far_is_computed_off_the_gui_thread_and_shown(qtbot) -> None:
    dashboard = AgingDashboard(["px0", "px1"])
    qtbot.addWidget(dashboard)
    t, pce = _aging(300, step_s=60.0, loss_per_h=1e-3)
    dashboard.add_points("px0", t, pce)
    dashboard._since_metrics_s = 1e9  # the next tick is due for metrics
    dashboard._tick()
    assert dashboard._metrics_running  # handed to the worker process; the GUI thread went on
    qtbot.waitUntil(lambda: dashboard.tiles["px0"].t80.text() == "T80 200 h", timeout=60_000)
    assert dashboard.tiles["px1"].t80.text() == "T80 —"  # no data, no figure
    dashboard.close_pool()


def test_the_live_pane_routes_engine_messages_to_its_plots(qtbot) -> None:
    from labctl.gui.live_pane import LivePane

    pane = LivePane()
    qtbot.addWidget(pane)
    pane.on_engine_events([{"event": "run_started", "item": "i1", "procedure": "mppt", "file": None}])
    assert pane.currentIndex() == 1  # the MPPT tab for an MPPT run
    t, pce = _aging(2, step_s=10.0)
    messages = [{"event": "data", "item": "i1", "block": "mppt_px7",
                 "columns": {"time_s": t[k:k + 60].tolist(), "pce_pct": pce[k:k + 60].tolist()}}
                for k in range(0, t.size, 60)]
    messages.append({"event": "record", "item": "i1", "kind": "channel_lost", "message": "smu3 gone",
                     "data": {"channel": "px7"}})
    messages.append({"event": "data", "item": "other", "block": "mppt_px8",  # another item's rows: not ours
                     "columns": {"time_s": [T0], "pce_pct": [1.0]}})
    pane.on_engine_events(messages)
    pane.feed.drain()  # what the feed's timer does four times a second
    assert pane.mppt.series["px7"].n_points == t.size and "px8" not in pane.mppt.series
    tile = pane.dashboard.tiles["px7"]
    assert tile.state == "lost" and tile.series.n_points == t.size
    pane.on_engine_events([{"event": "run_started", "item": "i2", "procedure": "jv", "file": None},
                           {"event": "data", "item": "i2", "block": "scan_000",
                            "columns": {"voltage_V": [0.0, 0.5], "current_density_mA_cm2": [17.0, 16.0]}},
                           {"event": "data", "item": "i2", "block": "scan_000",
                            "columns": {"voltage_V": [1.0], "current_density_mA_cm2": [10.0]}}])
    pane.feed.drain()
    assert pane.currentIndex() == 0
    x, y = pane._scan_curves["scan_000"].getData()
    assert list(x) == [0.0, 0.5, 1.0] and list(y) == [17.0, 16.0, 10.0]


def test_tiles_keep_the_station_order_whichever_channel_speaks_first(qtbot) -> None:
    dashboard = AgingDashboard([])
    qtbot.addWidget(dashboard)
    dashboard.set_order([f"ch{i:02d}" for i in range(1, 20)])
    for name in ("ch16", "ch01", "ch08", "stray"):
        dashboard.add_points(name, [T0], [18.0])

    def place(name: str) -> tuple[int, int]:
        row, column, _, _ = dashboard._grid.getItemPosition(dashboard._grid.indexOf(dashboard.tiles[name]))
        return row, column

    assert place("ch01") == (0, 0) and place("ch08") == (1, 1) and place("ch16") == (2, 3)
    assert place("stray") == (3, 1)  # after the station's 19 samples


def test_a_live_scan_is_named_by_pixel_direction_and_rate_from_the_run_file(qtbot, tmp_path: Path) -> None:
    from labctl.gui.live_pane import LivePane

    path = tmp_path / "jv.h5"
    with RunWriter.create(path, procedure="jv", parameters={}, clock=VirtualClock(T0)) as writer:
        writer.create_block("scan_001", {"voltage_V": "V", "current_density_mA_cm2": "mA/cm2"},
                            {"direction": "FS", "scan_rate_V_s": 0.1, "pixel": "A3", "rate_index": 1})
    pane = LivePane()
    qtbot.addWidget(pane)
    pane.on_engine_events([{"event": "run_started", "item": "i1", "procedure": "jv", "file": str(path)},
                           {"event": "data", "item": "i1", "block": "scan_001",
                            "columns": {"voltage_V": [0.0, 1.0], "current_density_mA_cm2": [17.0, 10.0]}}])
    pane.feed.drain()
    curve = pane._scan_curves["scan_001"]
    label = pane.jv.getPlotItem().legend.getLabel(curve)
    qtbot.waitUntil(lambda: "A3 FS 0.1 V/s" in label.text, timeout=5000)
    assert curve.opts["pen"].style() == Qt.PenStyle.DashLine  # forward scans dashed, as in the report


def test_the_feed_delivers_many_blocks_in_slices_in_arrival_order(qtbot) -> None:
    from labctl.gui.live_feed import SLICE_BLOCKS, LiveFeed

    feed = LiveFeed(interval_ms=50)
    got: list[dict[str, dict[str, np.ndarray]]] = []
    feed.delivered.connect(got.append)
    for k in range(3):
        for c in range(40):
            feed.put(f"ch{c:02d}", {"time_s": [float(k)], "pce_pct": [float(c)]})
    qtbot.waitUntil(lambda: sum(len(batch) for batch in got) >= 40, timeout=3000)
    assert max(len(batch) for batch in got) <= SLICE_BLOCKS and len(got) >= 3  # never all 40 in one turn
    merged = {block: rows for batch in got for block, rows in batch.items()}
    assert merged["ch07"]["time_s"].tolist() == [0.0, 1.0, 2.0] and feed.rows_in == 120
