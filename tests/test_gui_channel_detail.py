"""The aging dashboard as the sample holder, and a tile's click opening the channel's detail window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from labctl.clock import VirtualClock
from labctl.errors import StationError
from labctl.gui.channel_detail import read_channel_detail
from labctl.gui.dashboard import AgingDashboard
from labctl.gui.live_pane import LivePane
from labctl.station import Station
from labctl.store import RunWriter

T0 = 1.8e9
HOUR_S = 3600.0


def _aging_file(path: Path) -> Path:
    """An MPPT-like file: channel b tracked 50 h (PCE 18 % falling 0.2 %/h, one 1-minute spike to 30 %),
    a J–V pair at 0 h and at 48 h, and a suspension at 20 h."""
    t = T0 + np.arange(0.0, 50 * HOUR_S, 10.0)
    pce = 18.0 * (1 - 0.002 * (t - T0) / HOUR_S)
    pce[(t >= T0 + 30 * HOUR_S) & (t < T0 + 30 * HOUR_S + 60)] = 30.0
    clock = VirtualClock(T0)
    with RunWriter.create(path, procedure="mppt", parameters={}, clock=clock) as w:
        block = w.create_block("mppt_b", {"time_s": "s", "voltage_V": "V", "current_A": "A", "power_mW_cm2": "mW/cm2",
                                          "pce_pct": "%"}, single_precision=["voltage_V", "current_A",
                                                                             "power_mW_cm2", "pce_pct"])
        block.append_columns(time_s=t, voltage_V=np.full(t.size, 1.0), current_A=np.full(t.size, -2e-3),
                             power_mW_cm2=pce, pce_pct=pce)
        for k, hours in enumerate((0.0, 48.0)):
            for direction in ("RS", "FS"):
                v = np.linspace(-0.05, 1.2, 60)
                scan = w.create_block(f"jv_b_{k:03d}_{direction}",
                                      {"voltage_V": "V", "current_density_mA_cm2": "mA/cm2"},
                                      {"direction": direction, "elapsed_h": hours})
                scan.append_columns(voltage_V=v, current_density_mA_cm2=20.0 - 1e-8 * np.exp(v / 0.05))
        clock.advance(20 * HOUR_S)
        w.event("channel_suspended", "irradiance low", channel="b")
        w.event("channel_suspended", "another channel", channel="c")
    return path


def test_the_detail_of_a_channel_has_its_history_scans_and_events(tmp_path: Path) -> None:
    data = read_channel_detail(_aging_file(tmp_path / "aging.h5"), "b", bins=500)
    assert data.start_s == pytest.approx(T0)
    assert data.hours[-1] == pytest.approx(50.0, abs=0.1)
    _, high, mean = data.columns["pce_pct"]
    assert high.max() == pytest.approx(30.0)  # a one-minute spike in 50 h survives as a maximum
    assert mean[0] == pytest.approx(18.0, abs=0.02) and mean[-1] == pytest.approx(18.0 * 0.9, abs=0.02)
    assert data.units["current_A"] == "A"
    assert [(h, d) for _, h, d, _, _ in data.scans] == [(0.0, "RS"), (0.0, "FS"), (48.0, "RS"), (48.0, "FS")]
    assert [(round(h, 3), kind) for h, kind, _ in data.events] == [(20.0, "channel_suspended")]  # b's only


def test_clicking_a_tile_opens_the_channel_detail(qtbot, tmp_path: Path) -> None:
    pane = LivePane()
    qtbot.addWidget(pane)
    pane.start_run("item-1", "mppt", str(_aging_file(tmp_path / "aging.h5")))
    tile = pane.dashboard.add_channel("b")
    qtbot.mouseClick(tile, Qt.MouseButton.LeftButton)
    window = pane.details[(tmp_path / "aging.h5", "b")]
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.data is not None, timeout=10_000)
    assert "50.0 h tracked" in window.status.text() and "4 J–V scans" in window.status.text()
    assert len(window.jv.listDataItems()) == 4
    assert pane.show_channel("b") is window  # a second click raises the same window


def test_tiles_sit_where_the_station_holder_puts_them(qtbot) -> None:
    station = Station.load("sim-aging")
    assert station.holder_rows[3] == ["ch16", "ch17", "ch18", "ch19", ""]
    dashboard = AgingDashboard([])
    qtbot.addWidget(dashboard)
    dashboard.add_channel("ch07")  # data before the holder is known: moved once it is
    dashboard.set_holder(station.holder_rows)
    for name in ("ch19", "ch01", "extra"):
        dashboard.add_channel(name)
    grid = dashboard._grid

    def place(name: str) -> tuple[int, int]:
        row, column, _, _ = grid.getItemPosition(grid.indexOf(dashboard.tiles[name]))
        return row, column

    assert place("ch01") == (0, 0) and place("ch07") == (1, 1) and place("ch19") == (3, 3)
    assert place("extra") == (4, 0)  # not on the holder: below it


@pytest.mark.parametrize(("holder", "message"), [
    ('rows = [["ch01", "chXX"]]', r"names 'chXX', which is not in \[samples\]"),
    ('rows = [["ch01"], ["ch01"]]', "places 'ch01' twice"),
    ('rows = ["ch01"]', "must be a list of rows"),
    ('columns = 3', "takes one key, rows"),
])
def test_a_bad_holder_is_refused_with_what_is_wrong(holder: str, message: str) -> None:
    text = Station.load("sim-aging").text
    text = text[:text.index("[holder]")] + "[holder]\n" + holder + "\n"
    with pytest.raises(StationError, match=message):
        Station.from_text(text, source="bad-holder")
