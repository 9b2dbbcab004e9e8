"""Alarm rules fire once per episode, are rate-limited, and notify through a command run without a shell,
with a timeout, its failures logged; a bad rule is refused when the engine starts."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from labctl.clock import VirtualClock
from labctl.engine.alarms import Alarm, Alarms, Notifier, make_rule
from labctl.engine.config import EngineConfig, NotifyConfig
from labctl.engine.errors import EngineError
from labctl.runner.context import RecordedEvent
from labctl.runner.events import DataRows, LogLine, StatusChanged


def _book(*tables: dict[str, object], clock: VirtualClock | None = None) -> tuple[Alarms, list[Alarm]]:
    fired: list[Alarm] = []
    rules = [make_rule(dict(t), f"rule {i}") for i, t in enumerate(tables)]
    return Alarms(rules, fired.append, clock=clock or VirtualClock()), fired


def _power(block: str, t0_s: float, slope_per_h: float, n: int = 30, step_s: float = 60.0) -> DataRows:
    t = t0_s + step_s * np.arange(n)
    return DataRows(block, {"time_s": t, "power_mW_cm2": 15.0 + slope_per_h * t / 3600.0}, {"power_mW_cm2": "mW/cm2"})


def test_power_dropping_faster_than_the_limit_fires_once_and_rearms_when_it_steadies() -> None:
    alarms, fired = _book({"kind": "power_drop", "max_drop_per_h": 0.5, "window_s": 600, "min_interval_s": 0})
    feed = alarms.subscriber("item1")
    feed(_power("spo", 0, -0.2))  # within the limit
    assert fired == []
    feed(_power("spo", 1800, -2.0))  # 2 mW/cm² per hour: too fast
    feed(_power("spo", 3600, -2.0))  # still falling: the same episode
    assert len(fired) == 1
    assert fired[0].subject == "spo" and fired[0].item == "item1"
    assert "falls by 2 mW/cm2/h" in fired[0].message and "limit 0.5 mW/cm2/h" in fired[0].message
    feed(_power("spo", 7200, 0.0))  # steady again: re-armed
    feed(_power("spo", 9000, -3.0))
    assert len(fired) == 2


def test_firings_of_one_rule_are_rate_limited_and_the_held_back_ones_counted() -> None:
    clock = VirtualClock(start_s=0.0)
    alarms, fired = _book({"kind": "channel", "min_interval_s": 3600}, clock=clock)
    feed = alarms.subscriber("i")
    for channel in ("a", "b", "c"):
        feed(RecordedEvent("info", "channel_lost: gone", kind="channel_lost", data={"channel": channel}))
    assert [a.subject for a in fired] == ["a"]
    clock.advance(3601)
    feed(RecordedEvent("info", "channel_suspended: irradiance", kind="channel_suspended", data={"channel": "d"}))
    assert [a.subject for a in fired] == ["a", "d"] and fired[1].held_back == 2


def test_out_of_band_fires_on_the_worst_value_and_clears_back_in_band() -> None:
    alarms, fired = _book({"kind": "out_of_band", "column": "temperature_K", "low": 290, "high": 330,
                           "min_interval_s": 0})
    feed = alarms.subscriber("i")
    feed(DataRows("ch_a", {"temperature_K": np.array([300.0, 335.0, 341.0])}, {"temperature_K": "K"}))
    feed(DataRows("ch_a", {"temperature_K": np.array([342.0])}, {"temperature_K": "K"}))
    feed(DataRows("ch_a", {"temperature_K": np.array([300.0])}, {"temperature_K": "K"}))
    feed(DataRows("ch_a", {"temperature_K": np.array([280.0])}, {"temperature_K": "K"}))
    assert [a.message for a in fired] == ["temperature_K of ch_a is 341 K, outside 290 … 330 K",
                                          "temperature_K of ch_a is 280 K, outside 290 … 330 K"]


def test_the_engines_own_alarm_entries_do_not_feed_back_into_the_rules() -> None:
    alarms, fired = _book({"kind": "channel", "events": ["alarm"], "min_interval_s": 0})
    alarms.subscriber("i")(RecordedEvent("info", "alarm: x", kind="alarm", data={"channel": "a"}))
    assert fired == []


def test_disk_low_and_run_ended(tmp_path: Path) -> None:
    alarms, fired = _book({"kind": "disk_low", "min_free_GB": 1e9}, {"kind": "run_ended"})
    alarms.check_disks([tmp_path])
    alarms.subscriber("i")(StatusChanged("completed", "fine"))
    alarms.subscriber("i")(StatusChanged("failed", "RuntimeError: boom"))
    assert [a.kind for a in fired] == ["disk_low", "run_ended"]
    assert "GB free on the disk of" in fired[0].message
    assert fired[1].message == "the run ended failed: RuntimeError: boom"


def test_log_lines_of_a_level_fire_each_time_within_the_rate_limit() -> None:
    clock = VirtualClock(start_s=0.0)
    alarms, fired = _book({"kind": "log", "levels": ["error"], "contains": "compliance", "min_interval_s": 600},
                          clock=clock)
    feed = alarms.subscriber("i")
    feed(LogLine("warning", "compliance reached"))  # not the level
    feed(LogLine("error", "lamp off"))  # not the text
    feed(LogLine("error", "a: compliance reached at 1.2 V"))
    feed(LogLine("error", "b: compliance reached at 1.1 V"))  # within the rate limit: held back
    clock.advance(601)
    feed(LogLine("error", "c: compliance reached at 1.0 V"))
    assert [(a.message, a.held_back) for a in fired] == [("error: a: compliance reached at 1.2 V", 0),
                                                         ("error: c: compliance reached at 1.0 V", 1)]


@pytest.mark.parametrize(("table", "error"), [
    ({"kind": "power"}, "kind = 'power'; allowed: power_drop, out_of_band, channel, disk_low, run_ended, log"),
    ({"kind": "power_drop"}, "kind 'power_drop' needs 'max_drop_per_h'"),
    ({"kind": "power_drop", "max_drop_per_h": -1}, "max_drop_per_h = -1; allowed: a number > 0"),
    ({"kind": "out_of_band", "column": "temperature_K"}, "needs low, high or both"),
    ({"kind": "out_of_band", "column": "t", "low": 5, "high": 1}, "low = 5 must be below high = 1"),
    ({"kind": "disk_low", "min_free_GB": 1, "colour": "red"}, "(kind 'disk_low') has unknown key(s) colour"),
])
def test_a_bad_rule_is_refused_naming_the_key_and_the_allowed_values(table: dict[str, object], error: str) -> None:
    with pytest.raises(EngineError) as refused:
        make_rule(table, "station.toml: [engine].alarms[0]")
    assert error in str(refused.value) and "alarms[0]" in str(refused.value)


def test_the_engine_table_of_a_station_file_is_checked_whole() -> None:
    config = EngineConfig.from_text('name = "x"\n[engine]\nresume_interrupted = "ask"\n[[engine.alarms]]\n'
                                    'kind = "disk_low"\nmin_free_GB = 5\n[engine.notify]\n'
                                    'command = ["notify-send", "{message}"]\n', "bench.toml")
    assert config.resume_interrupted == "ask" and config.alarms == [{"kind": "disk_low", "min_free_GB": 5}]
    assert config.notify is not None and config.notify.command == ["notify-send", "{message}"]
    with pytest.raises(EngineError, match="resume_interrupted = 'sometimes'; allowed: always, ask, never"):
        EngineConfig.from_text('[engine]\nresume_interrupted = "sometimes"\n', "bench.toml")
    with pytest.raises(EngineError, match="run without a shell"):
        EngineConfig.from_text('[engine.notify]\ncommand = "mail me"\n', "bench.toml")
    with pytest.raises(EngineError, match=r"unknown key\(s\) resume"):
        EngineConfig.from_text('[engine]\nresume = "always"\n', "bench.toml")


ALARM = Alarm("power_drop:power_mW_cm2", "power_drop", "spo_a", "power falls; rm -rf /tmp/x", "item1")


def test_the_notification_command_gets_the_alarm_without_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "notified.txt"
    script = ("import os, sys; open(sys.argv[1], 'w').write('|'.join(sys.argv[2:]) + '|' "
              "+ os.environ['LABCTL_ALARM_RULE'])")
    notifier = Notifier(NotifyConfig([sys.executable, "-c", script, str(out), "{station}", "{message}", "{file}"]),
                        "glovebox")
    thread = notifier.notify(ALARM, file="/data/run.h5")
    assert thread is not None
    thread.join(30)
    assert out.read_text() == "glovebox|power falls; rm -rf /tmp/x|/data/run.h5|power_drop:power_mW_cm2"


def test_a_hanging_or_failing_command_is_killed_or_reported_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    failures: list[str] = []
    hanging = Notifier(NotifyConfig([sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=0.5),
                       "glovebox", lambda alarm, why: failures.append(why))
    failing = Notifier(NotifyConfig([sys.executable, "-c", "import sys; sys.exit('smtp refused')"]), "glovebox",
                       lambda alarm, why: failures.append(why))
    missing = Notifier(NotifyConfig(["/nonexistent/lab-alert"]), "glovebox", lambda alarm, why: failures.append(why))
    with caplog.at_level(logging.ERROR, logger="labctl.engine.alarm"):
        for notifier in (hanging, failing, missing):
            thread = notifier.notify(ALARM)
            assert thread is not None
            thread.join(30)
    assert failures[0] == "the notification command did not finish within 0.5 s and was killed"
    assert failures[1] == "the notification command exited with status 1: smtp refused"
    assert failures[2].startswith("the notification command could not be started")
    assert len([r for r in caplog.records if "power_drop" in r.getMessage()]) == 3
