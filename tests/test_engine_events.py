"""Events across the process boundary: the wire format, per-client outboxes that keep every status and
coalesce data, and a hub that a slow or dead client cannot hold up."""

from __future__ import annotations

import json
import threading

import numpy as np

from labctl.engine.hub import Hub, Watcher
from labctl.engine.outbox import Outbox
from labctl.engine.protocol import decode_run_event, dumps, encode_run_event, loads
from labctl.runner.context import RecordedEvent
from labctl.runner.events import DataRows, LogLine, Progress, StatusChanged


def _rows(block: str, start: int, n: int) -> DataRows:
    index = np.arange(start, start + n, dtype=float)
    return DataRows(block, {"index": index, "time_s": index * 0.1}, {"time_s": "s"})


def test_run_events_survive_the_wire_and_nan_becomes_null() -> None:
    events = [StatusChanged("running", "go"), Progress(0.25, None, "scan 1/4"), LogLine("warning", "lamp drifts"),
              RecordedEvent("info", "channel_lost: smu gone", kind="channel_lost", data={"channel": "a"}),
              DataRows("scan_000", {"v": np.array([0.0, np.nan, 1.0])}, {"v": "V"})]
    for event in events:
        line = dumps(encode_run_event("abc", event))
        assert b"NaN" not in line
        decoded = decode_run_event(loads(line))
        if isinstance(event, DataRows):
            assert isinstance(decoded, DataRows)
            np.testing.assert_array_equal(decoded.columns["v"], event.columns["v"])
            assert decoded.units == {"v": "V"}
        else:
            assert decoded == event
    assert json.loads(dumps(encode_run_event("abc", events[-1])))["columns"]["v"] == [0.0, None, 1.0]


def test_rows_of_one_block_are_joined_while_the_client_is_busy_and_keep_their_place() -> None:
    outbox = Outbox()
    outbox.put({"event": "status", "status": "running"})
    for start in range(0, 1000, 10):
        outbox.put_rows("i", _rows("scan_000", start, 10))
        outbox.put_progress("i", {"event": "progress", "fraction": start / 1000})
    outbox.put({"event": "status", "status": "completed"})
    batch = outbox.take(0)
    assert batch is not None
    assert [m["event"] for m in batch] == ["status", "data", "progress", "status"]
    assert batch[1]["columns"]["index"] == list(map(float, range(1000)))
    assert batch[2]["fraction"] == 0.99  # only the newest progress
    assert batch[-1]["status"] == "completed"  # after every row that came before it


def test_rows_beyond_the_limit_keep_the_newest_and_say_how_many_were_dropped() -> None:
    outbox = Outbox()
    outbox.max_rows_per_block = 100
    for start in range(0, 1000, 10):
        outbox.put_rows("i", _rows("b", start, 10))
    (message,) = outbox.take(0) or []
    assert message["columns"]["index"] == list(map(float, range(900, 1000)))
    assert message["dropped_rows"] == 900


def test_a_client_that_falls_too_far_behind_is_cut_off_not_silently_thinned() -> None:
    outbox = Outbox()
    outbox.max_messages = 50
    accepted = [outbox.put({"event": "log", "n": n}) for n in range(60)]
    assert accepted == [True] * 50 + [False] * 10
    assert outbox.overflowed and outbox.closed


def test_publishing_never_waits_for_a_client_that_does_not_read() -> None:
    """A watcher whose writer never takes anything: publishing 20 000 data events and 2 000 status events
    returns, the data arrive as one coalesced message, and every status is there, in order."""
    hub = Hub()
    stuck = Watcher(Outbox())
    hub.attach(stuck)
    hub.run_started("i", "counting", "/data/x.h5")
    done = threading.Event()

    def produce() -> None:
        for n in range(20_000):
            hub.publish_run("i", _rows("counts", n, 1))
            if n % 10 == 0:
                hub.publish_run("i", StatusChanged("running", f"step {n}"))
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert done.wait(60), "publishing blocked on a client that does not read"
    producer.join()
    batch = stuck.outbox.take(0) or []
    statuses = [m["reason"] for m in batch if m["event"] == "status"]
    data = [m for m in batch if m["event"] == "data"]
    assert statuses == [f"step {n}" for n in range(0, 20_000, 10)]
    assert len(data) == 1 and len(data[0]["columns"]["index"]) == 20_000


def test_a_late_front_end_gets_the_runs_status_progress_and_recent_messages() -> None:
    hub = Hub()
    hub.run_started("i", "jv", "/data/jv.h5")
    hub.publish_run("i", StatusChanged("running"))
    hub.publish_run("i", LogLine("info", "scan 1"))
    hub.publish_run("i", Progress(0.5, 10.0, "half"))
    (snapshot,) = hub.snapshot("i")
    assert snapshot["status"] == "running" and snapshot["file"] == "/data/jv.h5"
    assert snapshot["progress"]["fraction"] == 0.5
    assert [m["event"] for m in snapshot["recent"]] == ["status", "log"]


def test_the_hub_remembers_only_the_last_runs() -> None:
    hub = Hub()
    hub.kept_runs = 3
    for n in range(5):
        hub.run_started(f"i{n}", "jv", f"/data/{n}.h5")
    assert [s["item"] for s in hub.snapshot()] == ["i2", "i3", "i4"]
