"""The engine in this process, driven through its client as a front end would: submitting and following a
run, a queue whose runs are checked before they are queued, the failure policy, pause and abort, alarms in
the run's /events and in a notification, and a token that keeps strangers out."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.clock import real_elapsed_s
from labctl.engine import EngineClient
from labctl.engine.config import EngineConfig
from labctl.engine.errors import EngineError
from labctl.engine.server import Engine
from labctl.errors import ParameterError
from labctl.station import Station
from labctl.store import RunReader

COUNTING = "helpers_procedures:CountingProcedure"


def _engine(tmp_path: Path, config: EngineConfig | None = None, clock_name: str | None = None) -> Engine:
    engine = Engine(Station.load("sim"), tmp_path / "state", config=config, clock_name=clock_name,
                    data_dir=tmp_path / "data")
    engine.start()
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = _engine(tmp_path)
    yield engine
    engine.stop("test over")


@pytest.fixture
def client(engine: Engine) -> Iterator[EngineClient]:
    with EngineClient.open(engine.state_dir, client="test") as client:
        yield client


def _until_ended(client: EngineClient, uid: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    for message in client.events(timeout_s=60):
        seen.append(message)
        if message.get("event") == "run_ended" and message.get("item") == uid:
            return message, seen
    raise AssertionError(f"no end of item {uid}; saw {[m.get('event') for m in seen]}")


def test_a_submitted_run_is_followed_to_its_end_and_filed(client: EngineClient, tmp_path: Path) -> None:
    client.watch()
    item = client.submit(COUNTING, parameters={"n_points": 20, "interval_s": 60.0})
    ended, seen = _until_ended(client, item["uid"])
    assert ended["status"] == "completed"
    mine = [m for m in seen if m.get("item") == item["uid"]]
    kinds = [m["event"] for m in mine]
    assert kinds[0] == "run_started" and "data" in kinds and "progress" in kinds
    assert [m["status"] for m in mine if m["event"] == "status"][-1] == "completed"
    rows = [v for m in mine if m["event"] == "data" for v in m["columns"]["index"]]
    assert rows == list(map(float, range(20)))  # coalesced or not, every row reached the client, in order
    with RunReader(Path(ended["file"])) as reader:
        assert reader.status == "completed" and reader.block("counts").n_rows == 20
    assert Path(ended["file"]).parent == tmp_path / "data"
    (entry,) = client.history()
    assert (entry["uid"], entry["status"], entry["file"]) == (item["uid"], "completed", ended["file"])


def test_parameters_are_checked_against_the_station_before_queueing(client: EngineClient) -> None:
    with pytest.raises(ParameterError, match="'v_max_V' = 5 V is outside the limits of sample 'wbg_ref'"):
        client.queue_add("jv", parameters={"sample": ["wbg_ref"], "v_max_V": 5.0})
    with pytest.raises(ParameterError, match="unknown procedure 'ivcurve'"):
        client.queue_add("ivcurve")
    item = client.queue_add("jv", parameters={"sample": ["wbg_ref"]})
    with pytest.raises(ParameterError, match=r"'v_max_V' = 1\.9 V is outside the limits"):
        client.queue_edit(item["uid"], pairs=["v_max_V=1.9"])
    edited = client.queue_edit(item["uid"], pairs=["scan_rates_V_s=0.5,1"], on_failure="continue")
    assert edited["parameters"]["scan_rates_V_s"] == [0.5, 1.0] and edited["parameters"]["sample"] == ["wbg_ref"]
    assert edited["on_failure"] == "continue"
    assert [i["uid"] for i in client.queue_list()["items"]] == [item["uid"]]
    with pytest.raises(EngineError, match="no queued item 'nothere'"):
        client.queue_remove("nothere")


def test_a_failed_run_stops_the_queue_unless_its_policy_says_go_on(client: EngineClient) -> None:
    client.watch()
    failing = client.queue_add(COUNTING, parameters={"n_points": 5, "fail_at": 2})
    after = client.queue_add(COUNTING, parameters={"n_points": 3})
    client.queue_start()
    ended, _ = _until_ended(client, failing["uid"])
    assert ended["status"] == "failed" and "injected failure at 2" in ended["reason"]
    listing = client.queue_list()
    assert not listing["active"] and [i["uid"] for i in listing["items"]] == [after["uid"]]

    going_on = client.queue_add(COUNTING, parameters={"n_points": 5, "fail_at": 1}, on_failure="continue",
                                position=0)
    client.queue_start()
    assert _until_ended(client, going_on["uid"])[0]["status"] == "failed"
    assert _until_ended(client, after["uid"])[0]["status"] == "completed"
    assert [(e["uid"], e["status"]) for e in client.history()] == [
        (failing["uid"], "failed"), (going_on["uid"], "failed"), (after["uid"], "completed")]


def _collect(client: EngineClient, seconds: float) -> list[dict[str, Any]]:
    """Every event that arrives within ``seconds``."""
    found: list[dict[str, Any]] = []
    deadline = real_elapsed_s() + seconds
    while (left := deadline - real_elapsed_s()) > 0:
        found += _next_events(client, left)
    return found


def _next_events(client: EngineClient, seconds: float) -> list[dict[str, Any]]:
    for message in client.events(timeout_s=seconds):
        return [message]
    return []


def _first(client: EngineClient, predicate: Any) -> dict[str, Any]:
    for message in client.events(timeout_s=30):
        if predicate(message):
            return message
    raise AssertionError("the event did not come")


def test_pause_resume_and_abort_reach_the_running_run(tmp_path: Path) -> None:
    engine = _engine(tmp_path, clock_name="real")
    try:
        with EngineClient.open(engine.state_dir) as client:
            client.watch()
            item = client.submit(COUNTING, parameters={"n_points": 400, "interval_s": 0.05})
            _first(client, lambda m: m.get("event") == "data")
            client.pause()
            _first(client, lambda m: m.get("status") == "paused")
            _collect(client, 0.5)  # the run reaches its hold at its next wait
            assert not [m for m in _collect(client, 1.0) if m.get("event") == "data"]  # and holds
            client.resume(item["uid"])
            _first(client, lambda m: m.get("event") == "data")  # readings again
            client.abort(reason="the sample cracked")
            ended = _first(client, lambda m: m.get("event") == "run_ended")
            assert ended["status"] == "aborted" and ended["reason"] == "the sample cracked"
            with pytest.raises(EngineError, match="no run is on"):
                client.pause()
        with RunReader(Path(ended["file"])) as reader:
            kinds = [e.kind for e in reader.events()]
            assert reader.status == "aborted" and kinds.index("paused") < kinds.index("resumed")
            assert 0 < reader.block("counts").n_rows < 400
    finally:
        engine.stop()


def test_alarms_reach_the_runs_events_the_front_ends_and_the_notification_command(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notified = tmp_path / "notified.jsonl"
    script = "import json, sys; open(sys.argv[1], 'a').write(json.dumps(sys.argv[2:]) + '\\n')"
    config = EngineConfig.from_table({
        "alarms": [{"kind": "power_drop", "max_drop_per_h": 1.0, "window_s": 1800},
                   {"kind": "channel"}],
        "notify": {"command": [sys.executable, "-c", script, str(notified), "{rule}", "{subject}", "{file}"]},
    }, "test")
    engine = _engine(tmp_path, config)
    try:
        with EngineClient.open(engine.state_dir) as client:
            client.watch()
            item = client.submit("engine_procedures:Fading", parameters={"n_points": 90, "suspend_at": 40})
            ended, seen = _until_ended(client, item["uid"])
        assert engine.notifier is not None
        for thread in engine.notifier.threads:
            thread.join(30)
    finally:
        engine.stop()
    alarms = [(m["rule"], m["subject"]) for m in seen if m["event"] == "alarm"]
    assert sorted(alarms) == [("channel", "a"), ("power_drop:power_mW_cm2", "spo_a")]
    with RunReader(Path(ended["file"])) as reader:
        recorded = [(e.data["rule"], e.data["subject"]) for e in reader.events() if e.kind == "alarm"]
    assert recorded == alarms
    lines = [json.loads(line) for line in notified.read_text().splitlines()]
    assert sorted(lines) == sorted([[rule, subject, ended["file"]] for rule, subject in alarms])
    logged = [r.getMessage() for r in caplog.records if r.name == "labctl.engine"]
    assert any(m.startswith("ALARM power_drop:power_mW_cm2 (spo_a): power_mW_cm2 of spo_a falls by 3") for m in logged)
    assert any(m.startswith("ALARM channel (a): channel_suspended: smu: link lost") for m in logged)


def test_the_session_keeps_instruments_and_time_across_runs(engine: Engine, client: EngineClient) -> None:
    client.watch()
    jv = {"sample": ["wbg_ref"], "scan_rates_V_s": [1.0], "step_V": 0.05, "v_min_V": 0.0, "v_max_V": 1.3}
    first = client.submit("jv", parameters=jv)
    ended_first, _ = _until_ended(client, first["uid"])
    bench = engine.session.bench
    assert bench is not None
    smu = bench.drivers["smu"]
    second = client.submit("jv", parameters=jv)
    ended_second, _ = _until_ended(client, second["uid"])
    assert engine.session.bench is bench and bench.drivers["smu"] is smu  # not reconnected
    # The first run's safe state switched the reference cell's SMU off; the second must still see the light.
    assert (ended_first["status"], ended_second["status"]) == ("completed", "completed"), ended_second["reason"]
    with RunReader(Path(ended_first["file"])) as one, RunReader(Path(ended_second["file"])) as two:
        first_end = one.events()[-1].time_s
        assert two.attrs["created_time_s"] >= first_end  # the session's clock went on, never back
    assert client.status()["session"]["runs"] == 2


def test_a_wrong_token_is_refused(engine: Engine) -> None:
    info = json.loads((engine.state_dir / "engine.json").read_text())
    with pytest.raises(EngineError, match="not authorised: the token does not match this engine's"):
        EngineClient(info["address"], "not-the-token")
    assert oct((engine.state_dir / "engine.json").stat().st_mode & 0o777) == oct(0o600)


def test_alarm_rules_edited_from_a_front_end_apply_at_once_and_survive_a_restart(tmp_path: Path) -> None:
    engine = _engine(tmp_path)  # the station file has no alarm rules
    try:
        with EngineClient.open(engine.state_dir) as client:
            with pytest.raises(EngineError, match=r"alarm rules\[0\]: kind = 'power_dorp'; allowed: power_drop"):
                client.alarms_set([{"kind": "power_dorp", "max_drop_per_h": 1.0}])
            assert client.alarms()["rules"] == []  # nothing changed by the refused edit
            client.alarms_set([{"kind": "channel", "name": "lost or suspended"}])
            client.watch()
            item = client.submit("engine_procedures:Fading", parameters={"n_points": 90, "suspend_at": 40})
            _, seen = _until_ended(client, item["uid"])
            fired = client.alarms()["fired"]
            assert [(f["rule"], f["subject"], f["acknowledged"]) for f in fired] == [("lost or suspended", "a", False)]
            assert [m["id"] for m in seen if m["event"] == "alarm"] == [fired[0]["id"]]
            assert client.alarm_ack([fired[0]["id"]], by="ada") == {"acknowledged": [fired[0]["id"]]}
            with pytest.raises(EngineError, match="no alarm with id 999"):
                client.alarm_ack([999])
    finally:
        engine.stop()
    engine = _engine(tmp_path)  # the same state folder: the edited rules and the acknowledged firing are back
    try:
        with EngineClient.open(engine.state_dir) as client:
            listed = client.alarms()
        assert listed["rules"] == [{"kind": "channel", "name": "lost or suspended"}]
        assert [(f["acknowledged"], f["acknowledged_by"]) for f in listed["fired"]] == [(True, "ada")]
    finally:
        engine.stop()


def test_instruments_are_connected_and_identified_on_request(engine: Engine, client: EngineClient) -> None:
    with pytest.raises(EngineError, match=r"names = \['smu9'\]: not instruments of station sim"):
        client.identify(["smu9"])
    rows = client.identify()
    assert set(rows) == set(Station.load("sim").instruments)
    assert all(row["status"] == "ok" for row in rows.values()), rows
    assert "KEITHLEY" in rows["smu"]["identity"].upper() and "2450" in rows["smu"]["identity"]
    assert "E4980A" in rows["lcr"]["identity"]
    # the session keeps them connected for the runs to come
    assert set(client.status()["session"]["connected"]) == set(rows)
