"""`labctl queue ...` and `labctl engine status` against an engine: the queue edited from the command line,
JSON for scripts, and one clear line with exit code 2 for bad input (1 when no engine runs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from labctl.cli import cli
from labctl.engine.server import Engine
from labctl.station import Station


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = Engine(Station.load("sim"), tmp_path / "state", data_dir=tmp_path / "data")
    engine.start()
    yield engine
    engine.stop()


def labctl(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, terminal_width=200)


def _uids() -> list[str]:
    return [item["uid"] for item in json.loads(labctl("queue", "list", "--json").output)["items"]]


def test_the_queue_is_edited_from_the_command_line(engine: Engine) -> None:
    added = [json.loads(labctl("queue", "add", "jv", "--param", f"sample={s}", "--json").output)["uid"]
             for s in ("wbg_ref", "wbg_5avai", "tandem")]
    assert _uids() == added
    moved = labctl("queue", "move", added[2], "0")
    assert moved.exit_code == 0 and "position 0" in moved.output
    assert _uids() == [added[2], added[0], added[1]]
    edited = labctl("queue", "edit", added[0], "--param", "scan_rates_V_s=0.1,1", "--on-failure", "continue")
    assert edited.exit_code == 0
    item = next(i for i in json.loads(labctl("queue", "list", "--json").output)["items"] if i["uid"] == added[0])
    assert item["parameters"]["scan_rates_V_s"] == [0.1, 1.0] and item["on_failure"] == "continue"
    assert labctl("queue", "remove", added[1][:4]).exit_code == 0
    assert _uids() == [added[2], added[0]]
    table = labctl("queue", "list").output
    assert "queue stopped; on failure: stop" in table and added[0] in table
    assert "n_points" not in table  # only what differs from the procedure's defaults is shown
    assert labctl("queue", "policy", "continue").exit_code == 0
    assert json.loads(labctl("queue", "list", "--json").output)["on_failure"] == "continue"


def test_bad_input_is_one_line_and_exit_code_2(engine: Engine) -> None:
    bad = labctl("queue", "add", "jv", "--param", "sample=wbg_ref", "--param", "v_max_V=9")
    assert bad.exit_code == 2
    assert "'v_max_V' = 9 V is outside the limits of sample 'wbg_ref'" in " ".join(bad.output.split())
    assert labctl("queue", "add").exit_code == 2  # neither a procedure nor --resume
    missing = labctl("queue", "edit", "nothere", "--param", "suns=0")
    assert missing.exit_code == 2 and "no queued item 'nothere'" in missing.output
    assert _uids() == []


def test_status_and_history_for_scripts(engine: Engine, tmp_path: Path) -> None:
    status = json.loads(labctl("engine", "status", "--json").output)
    assert status["station"] == "sim" and status["run"] is None and status["clock"] == "virtual"
    assert status["state_dir"] == str(tmp_path / "state")
    assert json.loads(labctl("queue", "history", "--json").output) == []


def test_without_an_engine_the_commands_say_so_and_exit_1() -> None:
    result = labctl("queue", "list")
    assert result.exit_code == 1 and "no engine is running for station sim" in result.output


def test_labctl_run_goes_to_the_engine_and_reports_like_a_local_run(engine: Engine, tmp_path: Path) -> None:
    result = labctl("run", "helpers_procedures:CountingProcedure", "--station", "sim", "--param", "n_points=5",
                    "--out", str(tmp_path / "mine"))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "submitted to the engine of station sim" in text and "completed: procedure finished" in text
    (file,) = (tmp_path / "mine").glob("*.h5")  # where this command said, not the engine's data folder
    assert file.name in "".join(result.output.split())
    failing = labctl("run", "helpers_procedures:CountingProcedure", "--station", "sim", "--param", "n_points=5",
                     "--param", "fail_at=1", "--out", str(tmp_path / "mine"))
    assert failing.exit_code == 1 and "failed: RuntimeError: injected failure at 1" in " ".join(failing.output.split())
    refused = labctl("run", "helpers_procedures:CountingProcedure", "--station", "sim", "--local")
    assert refused.exit_code == 2 and "the labctl engine of station sim owns it" in " ".join(refused.output.split())
