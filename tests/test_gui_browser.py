"""The run browser on a J–V file: metadata, events and blocks; the scans plotted with their units; the
procedure's analysis with the same figures as `labctl analyze`; CSV export. And the window's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labctl.analyze import analyze_file
from labctl.gui.browser import RunBrowser
from labctl.gui.main_window import MainWindow
from labctl.gui.settings import GuiSettings
from labctl.runner import Runner
from labctl.station import Station
from labctl.store import RunReader
from procedures.jv_hysteresis import JVHysteresis


@pytest.fixture(scope="module")
def jv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("jv")
    result = Runner(JVHysteresis(sample=["wbg_ref"], scan_rates_V_s=[0.1, 1.0], step_V=0.02, v_max_V=1.3),
                    station=Station.load("sim"), directory=directory).run()
    assert result.status == "completed"
    return Path(result.path)


def test_the_browser_shows_plots_analyses_and_exports_a_run(qtbot: Any, jv_file: Path, tmp_path: Path) -> None:
    browser = RunBrowser()
    qtbot.addWidget(browser)
    with qtbot.waitSignal(browser.plotted, timeout=20_000):
        browser.open(jv_file)
    summary = browser.summary
    assert summary is not None and summary.status == "completed" and summary.procedure == "jv"
    with RunReader(jv_file) as reader:
        names = reader.block_names()
        n_rows = [reader.info(n).n_rows for n in names]
        n_events = reader.n_events()
    assert [b.name for b in summary.blocks] == names
    assert browser.blocks.count() == len(names) == 4
    assert browser.events.rowCount() == n_events
    assert browser.metadata.findItems("procedure", pytest.importorskip("PyQt6.QtCore").Qt.MatchFlag.MatchExactly)

    # all four scans (RS/FS at two rates) on one J–V plot, labelled with their units
    plot = browser.plot
    assert [len(b.columns["voltage_V"]) for b in plot.blocks] == n_rows
    assert (plot.x_choice.currentText(), plot.y_choice.currentText()) == ("voltage_V", "current_density_mA_cm2")
    assert plot.plot.getAxis("left").labelText == "current_density_mA_cm2 (mA/cm2)"
    assert "FS 1 V/s" in plot.blocks[3].label
    browser.blocks.clearSelection()
    browser.blocks.item(2).setSelected(True)  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: [b.name for b in plot.blocks] == [names[2]], timeout=10_000)

    # the analysis: the same Voc per scan as labctl analyze, in the table
    with qtbot.waitSignal(browser.analysed, timeout=30_000):
        browser.analyse()
    expected = analyze_file(jv_file, JVHysteresis)["scans"]
    table = browser.metrics.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]  # type: ignore[union-attr]
    voc = headers.index("voc_V")
    assert table.rowCount() == len(expected) == 4
    for row, scan in enumerate(expected):
        assert float(table.item(row, voc).text()) == pytest.approx(scan["voc_V"], rel=1e-3)  # type: ignore[union-attr]

    with qtbot.waitSignal(browser.exported, timeout=20_000) as exported:
        browser.export(tmp_path / "csv")
    written = [Path(p) for p in exported.args[0]]
    assert len(written) == 4
    data_lines = [ln for ln in written[0].read_text().splitlines() if ln and not ln.startswith("#")]
    assert data_lines[0].startswith("voltage_V [V]") and len(data_lines) == 1 + n_rows[0]


def test_a_file_that_is_not_a_run_file_is_refused_with_its_reason(qtbot: Any, tmp_path: Path) -> None:
    browser = RunBrowser()
    qtbot.addWidget(browser)
    bogus = tmp_path / "notes.h5"
    bogus.write_text("not HDF5")
    with qtbot.waitSignal(browser.failed, timeout=10_000) as failed:
        browser.open(bogus)
    assert str(bogus) in failed.args[0] and "HDF5" in failed.args[0]
    assert "notes.h5" in browser.heading.text()


def test_the_window_remembers_its_geometry(qtbot: Any, tmp_path: Path) -> None:
    settings = GuiSettings(tmp_path / "gui.ini")
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    window.main.setSizes([300, 1000])
    window.right.setSizes([200, 600, 100])
    window.save_settings()
    settings.last_station = "sim-aging"
    again = MainWindow(GuiSettings(tmp_path / "gui.ini"))
    qtbot.addWidget(again)
    # the geometry is what Qt saved (restoring it clamps to the screen: the offscreen one is small); the panes
    # are as they were left
    assert settings.bytes("window/geometry") == window.saveGeometry()
    assert again.main.saveState() == window.main.saveState()
    assert again.right.saveState() == window.right.saveState()
    assert GuiSettings(tmp_path / "gui.ini").last_station == "sim-aging"
    window.bridge.close()
    again.bridge.close()


def test_a_format_1_file_opens_and_plots(qtbot: Any) -> None:
    path = Path(__file__).resolve().parent / "data" / "v1_jv_wbg_ref.h5"
    browser = RunBrowser()
    qtbot.addWidget(browser)
    with qtbot.waitSignal(browser.plotted, timeout=20_000):
        browser.open(path)
    assert browser.summary is not None and browser.summary.format_version == 1
    assert "format 1" in browser.heading.text()
    with RunReader(path) as reader:
        scans = [n for n in reader.block_names() if reader.info(n).kind == "data"]
        assert [b.name for b in browser.plot.blocks] == scans
        assert browser.plot.blocks[0].columns["voltage_V"].tolist() == reader.block(scans[0])["voltage_V"].tolist()
