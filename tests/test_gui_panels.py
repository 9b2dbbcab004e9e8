"""The station panel and the events pane fed with engine events: a lost instrument turns red with what the
engine does about it, alarms are counted and coloured, data rows and progress stay out of the pane."""

from __future__ import annotations

from typing import Any

from labctl.gui.events_pane import EventsPane, describe
from labctl.gui.station_panel import STATES, StationPanel
from labctl.station import Station


def _record(kind: str, instrument: str) -> dict[str, Any]:
    return {"event": "record", "item": "abc", "kind": kind, "message": f"{instrument}: {kind}",
            "data": {"instrument": instrument}}


def _state(panel: StationPanel, name: str) -> tuple[str, str]:
    row = list(panel.station.instruments).index(name)  # type: ignore[union-attr]
    cell = panel.table.item(row, 3)
    assert cell is not None
    return cell.text(), cell.background().color().name()


def test_an_instrument_lost_turns_red_with_what_the_engine_does(qtbot: Any) -> None:
    panel = StationPanel()
    qtbot.addWidget(panel)
    panel.set_station(Station.load("sim"))
    panel.show_status({"station": "sim", "pid": 42, "address": "tcp://127.0.0.1:1", "clock": "virtual",
                       "session": {"id": "s1", "runs": 1, "connected": ["smu", "sun"], "clock": "virtual"}})
    assert _state(panel, "smu")[0] == "connected" and _state(panel, "lcr")[0] == "not connected"
    assert "engine pid 42" in panel.engine.text()
    panel.on_events([_record("link_lost", "smu")])
    assert _state(panel, "smu") == ("LOST — retrying", STATES["lost"][1])
    panel.on_events([{**_record("channel_suspended", "smu"), "data": {"channel": "ch01", "instrument": "smu"}}])
    assert _state(panel, "smu")[0] == "LOST — retrying, its channels suspended"
    panel.on_events([_record("link_given_up", "smu")])
    assert _state(panel, "smu") == ("LOST — given up", STATES["given_up"][1])
    # the session still lists it connected: a status poll does not hide the loss
    panel.show_status({"session": {"connected": ["smu", "sun"]}})
    assert _state(panel, "smu")[0] == "LOST — given up"
    panel.on_events([_record("link_restored", "smu")])
    assert _state(panel, "smu")[0] == "connected"
    panel.on_events([{"event": "record", "kind": "start", "data": {"instruments": ["lcr"]}}])
    assert _state(panel, "lcr")[0] == "connected"


def test_the_events_pane_shows_alarms_and_leaves_out_data_and_progress(qtbot: Any) -> None:
    pane = EventsPane()
    qtbot.addWidget(pane)
    pane.on_events([
        {"event": "data", "item": "abc", "block": "mpp", "columns": {"power_mW_cm2": [1.0]}},
        {"event": "progress", "item": "abc", "fraction": 0.5, "eta_s": 10, "message": ""},
        {"event": "status", "item": "abc", "status": "running", "reason": ""},
        {"event": "alarm", "item": "abc", "rule": "power_drop", "kind": "power_drop", "subject": "mpp_ch01",
         "message": "power falling 0.8 mW/cm2 per hour", "held_back": 2},
        {"event": "log", "item": "abc", "level": "warning", "message": "temperature drifted 1.2 K"},
    ])
    assert pane.table.rowCount() == 3
    kinds = [pane.table.item(r, 2).text() for r in range(3)]  # type: ignore[union-attr]
    assert kinds == ["status", "ALARM power_drop", "log warning"]
    alarm = pane.table.item(1, 3)
    assert alarm is not None and alarm.text() == "mpp_ch01: power falling 0.8 mW/cm2 per hour (2 held back)"
    assert alarm.background().color().name() == "#ffcdd2"
    assert pane.alarms == 1 and "1 alarm" in pane.alarm_label.text()
    assert describe({"event": "run_ended", "status": "failed", "reason": "smu lost"}) == \
        ("run ended", "failed: smu lost", "error")


def test_identified_instruments_show_their_answer_and_silent_ones_stand_out(qtbot: Any) -> None:
    from labctl.gui.station_panel import StationPanel
    from labctl.station import Station

    panel = StationPanel()
    qtbot.addWidget(panel)
    panel.set_station(Station.load("sim"))
    panel.show_identified({"smu": {"status": "ok", "identity": "KEITHLEY INSTRUMENTS,MODEL 2450,04412345,1.7.12b"},
                           "lcr": {"status": "failed: timeout after 2 s", "identity": ""}})
    rows = {panel.table.item(r, 0).text(): r for r in range(panel.table.rowCount())}
    assert panel.table.item(rows["smu"], 3).text() == "connected"
    assert panel.table.item(rows["smu"], 4).text().startswith("KEITHLEY INSTRUMENTS,MODEL 2450")
    assert panel.table.item(rows["lcr"], 3).text() == "NO ANSWER to identify"
    assert "timeout after 2 s" in panel.table.item(rows["lcr"], 4).text()
    assert panel.identify_button.isEnabled()
