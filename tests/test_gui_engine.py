"""The window on a real engine process: it starts the station's engine when none runs, edits the queue,
starts, pauses, resumes and aborts a run on the simulated bench, and a window closed in the middle of a run
leaves the run going — a new window shows it, and the browser reads its file while it is being written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.engine import EngineClient
from labctl.gui.bridge import Target
from labctl.gui.main_window import MainWindow
from labctl.gui.settings import GuiSettings

pytestmark = pytest.mark.slow

SPEED = 20  # real time on the simulated station, sped up: runs take real seconds
#: 2 × 140 s of scanning at 0.01 V/s: about 14 s of real time, progress reported point by point
LONG_RUN = {"sample": ["wbg_ref"], "scan_rates_V_s": [0.01], "v_max_V": 1.3, "step_V": 0.01}
SHORT_RUN = {"sample": ["wbg_5avai"], "scan_rates_V_s": [1.0], "v_max_V": 1.3, "step_V": 0.02}


@pytest.fixture(scope="module")
def engine_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The engine the first window starts (detached, as `labctl engine start` does); stopped at the end."""
    root = tmp_path_factory.mktemp("gui-engine")
    target = Target("sim", root / "data", root / "state", ("--clock", "real", "--speed", str(SPEED)))
    yield target
    try:
        with EngineClient.open(root / "state", client="test") as client:
            client.shutdown("tests done")
    except Exception:
        pass


def _window(qtbot: Any, target: Target, tmp_path: Path) -> MainWindow:
    window = MainWindow(GuiSettings(tmp_path / "gui.ini"))
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.bridge.attached, timeout=90_000):
        window.attach(target)
    qtbot.waitUntil(lambda: window.queue_panel.queue_state.text() != "", timeout=10_000)
    return window


def _client(target: Target) -> EngineClient:
    assert target.state_dir is not None
    return EngineClient.open(target.state_dir, client="test")


def _queue(window: MainWindow, qtbot: Any, values: dict[str, Any], op: str = "queue_add") -> dict[str, Any]:
    panel = window.procedure_panel
    panel.select("jv")
    panel.form.set_values(values)
    added: list[dict[str, Any]] = []
    panel.submit(op, on_done=added.append)
    qtbot.waitUntil(lambda: bool(added), timeout=10_000)
    qtbot.waitUntil(lambda: any(i["uid"] == added[0]["uid"] for i in window.queue_panel.items), timeout=10_000)
    return added[0]


def test_queue_edits_from_the_window(qtbot: Any, engine_target: Target, tmp_path: Path) -> None:
    window = _window(qtbot, engine_target, tmp_path)  # no engine runs yet: the window starts one
    assert "engine pid" in window.station_panel.engine.text()
    assert window.settings.qsettings.value("station/last") == "sim"  # opened next time without --station
    first = _queue(window, qtbot, SHORT_RUN)
    second = _queue(window, qtbot, {**SHORT_RUN, "scan_rates_V_s": [0.5]})
    panel = window.queue_panel
    assert [i["uid"] for i in panel.items] == [first["uid"], second["uid"]]
    assert "scan_rates_V_s=0.5" in (panel.table.item(1, 6).text())  # type: ignore[union-attr]

    # edit: the form takes the item, a change goes back to the engine, checked there again
    panel.select_uid(first["uid"])
    panel.edit_selected()
    assert window.procedure_panel.editing_uid == first["uid"]
    window.procedure_panel.form.set_values({"scan_rates_V_s": [0.2, 2.0], "repeats": 2})
    window.procedure_panel.update_button.click()
    with _client(engine_target) as client:
        qtbot.waitUntil(lambda: client.queue_list()["items"][0]["parameters"]["scan_rates_V_s"] == [0.2, 2.0],
                        timeout=10_000)
        assert client.queue_list()["items"][0]["parameters"]["repeats"] == 2
    qtbot.waitUntil(lambda: window.procedure_panel.editing_uid is None, timeout=10_000)

    # reorder, then remove both
    panel.select_uid(second["uid"])
    panel.move_selected(-1)
    qtbot.waitUntil(lambda: [i["uid"] for i in panel.items] == [second["uid"], first["uid"]], timeout=10_000)
    for uid in (second["uid"], first["uid"]):
        panel.select_uid(uid)
        panel.remove_selected()
    qtbot.waitUntil(lambda: panel.items == [], timeout=10_000)
    window.close()


def test_start_pause_resume_abort_on_the_simulated_bench(qtbot: Any, engine_target: Target,
                                                         tmp_path: Path) -> None:
    window = _window(qtbot, engine_target, tmp_path)
    item = _queue(window, qtbot, LONG_RUN)
    panel = window.queue_panel
    panel.start_button.click()
    current = panel.current
    qtbot.waitUntil(lambda: current.uid == item["uid"] and current.state.text() == "running", timeout=30_000)
    assert panel.active
    current.pause_button.click()
    qtbot.waitUntil(lambda: current.state.text() == "paused", timeout=30_000)
    assert current.resume_button.isEnabled() and not current.pause_button.isEnabled()
    current.resume_button.click()
    qtbot.waitUntil(lambda: current.state.text() == "running", timeout=30_000)
    current.abort("enough for this test")
    qtbot.waitUntil(lambda: any(e["uid"] == item["uid"] for e in panel.history), timeout=30_000)
    entry = next(e for e in panel.history if e["uid"] == item["uid"])
    assert entry["status"] == "aborted" and "enough for this test" in entry["reason"]
    assert current.uid is None
    # the queue stops after a run that did not complete (policy: stop), and the window shows it
    qtbot.waitUntil(lambda: not panel.active and panel.start_button.isEnabled(), timeout=10_000)
    texts = [window.events_pane.table.item(r, 3).text()  # type: ignore[union-attr]
             for r in range(window.events_pane.table.rowCount())]
    assert any(t.startswith("paused") for t in texts) and any(t.startswith("aborted") for t in texts)
    window.close()


def test_closing_the_window_leaves_the_run_going_and_a_new_window_shows_it(
        qtbot: Any, engine_target: Target, tmp_path: Path) -> None:
    window = _window(qtbot, engine_target, tmp_path)
    item = _queue(window, qtbot, LONG_RUN, op="submit")
    qtbot.waitUntil(lambda: window.queue_panel.current.uid == item["uid"]
                    and window.queue_panel.current.bar.value() > 0, timeout=30_000)
    window.close()
    assert not window.bridge.is_attached

    with _client(engine_target) as client:  # the engine goes on with the run
        # the window let go of it (this client does not watch)
        qtbot.waitUntil(lambda: client.status()["watchers"] == 0, timeout=10_000)
        run = client.status()["run"]
        assert run is not None and run["item"] == item["uid"]
        fraction = float(run["progress"]["fraction"])
        qtbot.waitUntil(lambda: float(client.status()["run"]["progress"]["fraction"]) > fraction, timeout=30_000)

    reopened = _window(qtbot, engine_target, tmp_path / "again")
    current = reopened.queue_panel.current
    assert current.uid == item["uid"] and current.state.text() in {"running", "starting"}
    assert current.bar.value() >= int(1000 * fraction)
    qtbot.waitUntil(lambda: current.eta.text().startswith("ETA ") and "s" in current.eta.text(), timeout=10_000)
    assert item["uid"] in current.what.text()
    # the browser reads the file the run is still writing
    with _client(engine_target) as client:
        path = Path(client.status()["run"]["file"])
    assert path.name in current.what.text()
    reopened.browser.open(path)
    qtbot.waitUntil(lambda: reopened.browser.summary is not None and reopened.browser.summary.path == path,
                    timeout=30_000)
    assert reopened.browser.summary is not None and reopened.browser.summary.status == "running"
    qtbot.waitUntil(lambda: bool(reopened.browser.plot.blocks), timeout=30_000)  # the rows recorded so far
    # and the new window follows the run to its end
    current.abort("the test has seen enough")
    qtbot.waitUntil(lambda: any(e["uid"] == item["uid"] for e in reopened.queue_panel.history), timeout=30_000)
    reopened.close()


def test_the_window_shows_the_engine_gone_and_reconnecting_starts_it_again(
        qtbot: Any, engine_target: Target, tmp_path: Path) -> None:
    window = _window(qtbot, engine_target, tmp_path)
    with _client(engine_target) as client:
        pid = int(client.info["pid"])
        with qtbot.waitSignal(window.bridge.detached, timeout=60_000):
            client.shutdown("the test stops the engine")
    assert "engine link lost" in window.link.text() and "#c62828" in window.link.text()
    assert window.reconnect_button.isVisibleTo(window)
    with qtbot.waitSignal(window.bridge.attached, timeout=90_000):
        window.reconnect_button.click()
    assert f"engine pid {pid} " not in window.station_panel.engine.text()
    assert not window.reconnect_button.isVisibleTo(window)
    window.close()
