"""The alarms view on a real engine: rules edited as TOML and checked by the engine, an alarm shown in red
until it is acknowledged, and the acknowledgement kept by the engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.engine import EngineClient
from labctl.engine.server import Engine
from labctl.gui.alarms_view import AlarmsView, rules_from_toml, rules_to_toml
from labctl.station import Station


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = Engine(Station.load("sim"), tmp_path / "state", data_dir=tmp_path / "data")
    engine.start()
    yield engine
    engine.stop("test over")


def _call(client: EngineClient):  # the bridge's call, answered at once (its replies come on the GUI thread)
    def call(op: str, on_done: Any = None, on_error: Any = None, **arguments: Any) -> None:
        try:
            result = client.request(op, **{k: v for k, v in arguments.items() if v is not None})
        except Exception as exc:
            if on_error is not None:
                on_error(exc)
            return
        if on_done is not None:
            on_done(result)
    return call


def test_rules_round_trip_through_toml() -> None:
    rules = [{"kind": "channel", "name": "lost"}, {"kind": "power_drop", "max_drop_per_h": 2.5, "window_s": 600}]
    assert rules_from_toml(rules_to_toml(rules)) == rules
    with pytest.raises(ValueError, match="unknown table"):
        rules_from_toml('[alarm]\nkind = "channel"')


def test_an_alarm_is_shown_until_acknowledged_and_rules_are_checked_by_the_engine(qtbot, engine: Engine) -> None:
    with EngineClient.open(engine.state_dir, client="gui-test") as client:
        view = AlarmsView(_call(client), operator="ada")
        qtbot.addWidget(view)
        view.refresh()
        view.editor.setPlainText('[[alarms]]\nkind = "chanel"')
        view.apply_rules()
        assert "kind = 'chanel'; allowed:" in view.rules_message.text()
        view.editor.setPlainText('[[alarms]]\nkind = "channel"\nname = "lost or suspended"')
        view.apply_rules()
        assert "1 rule(s) in force" in view.rules_message.text()
        client.watch()
        item = client.submit("engine_procedures:Fading", parameters={"n_points": 90, "suspend_at": 40})
        messages = []
        for message in client.events(timeout_s=60):
            messages.append(message)
            if message.get("event") == "run_ended" and message.get("item") == item["uid"]:
                break
        view.on_engine_events(messages)
        assert view.table.rowCount() == 1 and view.unacknowledged() == 1
        assert view.table.item(0, 2).text() == "a" and view.table.item(0, 4).text() == "no"
        assert view.table.item(0, 1).font().bold()
        view.table.selectRow(0)
        view._acknowledge_selected()
        acked = next(m for m in client.events(timeout_s=10) if m.get("event") == "alarm_ack")
        view.on_engine_events([acked])
        assert view.unacknowledged() == 0 and view.table.item(0, 4).text() == "yes (ada)"
        assert not view.table.item(0, 1).font().bold()
        assert [f["acknowledged"] for f in client.alarms()["fired"]] == [True]
