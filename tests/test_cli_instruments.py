"""`labctl instruments`: every instrument of a station, what it answered, and the link settings it used."""

from __future__ import annotations

import json
import socket

from click.testing import CliRunner

from drivers.registry import DRIVERS
from labctl.cli import cli


def test_every_model_of_the_simulated_station_answers_with_its_link_settings() -> None:
    result = CliRunner().invoke(cli, ["instruments", "--station", "sim", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert {row["driver"] for row in rows.values()} == set(DRIVERS)  # every supported model
    assert all(row["status"] == "ok" and row["identity"] for row in rows.values())
    cryo = rows["cryo"]["settings"]
    assert cryo["interface"] == "sim (as serial)" and cryo["serial"] == "57600 baud 7O1"
    assert cryo["read_termination"] == cryo["write_termination"] == "\r\n"
    assert cryo["command_interval_s"] == 0.05
    assert rows["cryo335"]["identity"].startswith("LSCI,MODEL335")
    led = rows["led"]["settings"]
    assert led["acknowledged_writes"] is True and led["read_termination"] == ""
    sun = rows["sun"]["settings"]
    assert sun["listen"] == "127.0.0.1:3334" and sun["connect_timeout_s"] == 10.0
    assert rows["smu"]["settings"]["timeout_ms"] == 2000  # the simulated session's reply timeout


def test_the_table_shows_the_settings() -> None:
    result = CliRunner().invoke(cli, ["instruments", "--station", "sim"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "57600 baud 7O1" in result.output and "listens at 127.0.0.1:3334" in result.output
    assert "50 ms between commands" in result.output


def test_a_station_key_that_does_not_exist_is_refused_before_connecting(tmp_path) -> None:
    station = tmp_path / "bench.toml"
    station.write_text('[instruments.cryo]\ndriver = "lakeshore336"\naddress = "/dev/ttyUSB0"\nbaud = 57600\n')
    result = CliRunner().invoke(cli, ["instruments", "--station", str(station)])
    assert result.exit_code == 2
    assert "unknown key 'baud'" in result.output and "baudrate" in result.output


def test_an_impossible_setting_names_the_key_the_value_and_what_is_allowed(tmp_path) -> None:
    station = tmp_path / "bench.toml"
    station.write_text('[instruments.cryo]\ndriver = "lakeshore336"\naddress = "COM3"\nparity = "weird"\n')
    result = CliRunner().invoke(cli, ["instruments", "--station", str(station)])
    assert result.exit_code == 2
    assert "parity = 'weird' must be one of none, odd, even, mark, space" in " ".join(result.output.split())


def test_an_instrument_that_does_not_answer_is_reported_not_raised(tmp_path) -> None:
    with socket.socket() as probe:  # a port nothing uses: labctl listens there, no SinusGUI connects
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    station = tmp_path / "bench.toml"
    station.write_text(f'[instruments.sun]\ndriver = "wavelabs_sinus70"\naddress = "wavelabs://127.0.0.1:{port}"\n'
                       'connect_timeout_s = 0.2\n')
    result = CliRunner().invoke(cli, ["instruments", "--station", str(station), "--json"])
    assert result.exit_code == 1
    [row] = json.loads(result.output)
    assert row["status"].startswith("failed:") and "SinusGUI did not connect" in row["status"]
