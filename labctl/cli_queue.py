"""`labctl queue ...`: the engine's persistent queue from the command line (add, list, edit, move, remove,
start, stop, policy, history). Rich tables for people, ``--json`` for scripts; exit codes as for the rest of
labctl (see :mod:`labctl.cli_engine`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from labctl.cli_engine import connect, console, local_time, print_json, station_options, user_errors
from labctl.errors import LabctlError


@click.group()
def queue() -> None:
    """The engine's queue of runs: add, edit, reorder, remove, start, stop, history."""


def _item_rows(items: list[dict[str, Any]]) -> Table:
    table = Table()
    for column in ("#", "uid", "state", "procedure", "parameters", "on failure", "file"):
        table.add_column(column)
    for item in items:
        params = ", ".join(f"{k}={v}" for k, v in _set_parameters(item["procedure"], item["parameters"]).items())
        if item["resume"]:
            params = f"(continues its file) {params}"
        table.add_row(str(item["position"]), item["uid"], item["state"], escape(item["procedure"]),
                      escape(params if len(params) < 120 else params[:117] + "..."),
                      item["on_failure"] or "(queue)", escape(item["file"] or item["out_dir"] + "/"))
    return table


def _set_parameters(procedure: str, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters that differ from the procedure's defaults (all of them if it cannot be loaded here)."""
    from labctl.runner import procedure_class

    try:
        declared = procedure_class(procedure).parameters()
    except LabctlError:
        return values
    shown = {}
    for key, value in values.items():
        param = declared.get(key)
        if param is None or param.required or value != param.default:
            shown[key] = value
    return shown


@queue.command("add")
@click.argument("procedure", required=False, default="")
@station_options
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A procedure parameter; repeat.")
@click.option("--params", "params_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="A TOML file of parameters (--param overrides it).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Directory for the data file (default: the engine's data folder).")
@click.option("--file", "file_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Exact data file path (must not exist).")
@click.option("--operator", default="", help="Who runs the measurement.")
@click.option("--on-failure", type=click.Choice(["stop", "continue"]), default=None,
              help="If this run does not complete: stop the queue or go on (default: the queue's policy).")
@click.option("--position", type=click.IntRange(min=0), default=None, help="0 = next; default: last.")
@click.option("--resume", "resume_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="Continue this interrupted run file (no PROCEDURE then).")
@click.option("--json", "as_json", is_flag=True)
def queue_add(procedure: str, station_name: str, state_dir: Path | None, params: tuple[str, ...],
              params_file: Path | None, out_dir: Path | None, file_path: Path | None, operator: str,
              on_failure: str | None, position: int | None, resume_file: Path | None, as_json: bool) -> None:
    """Add a run of PROCEDURE (or, with --resume, the continuation of a run file) to the queue."""
    with user_errors():
        if bool(procedure) == bool(resume_file):
            raise LabctlError("give either PROCEDURE or --resume FILE")
        values = None
        if procedure:
            from labctl.runner import procedure_class

            values = procedure_class(procedure).from_strings(params, params_file).values
        with connect(station_name, state_dir, "labctl queue add") as client:
            item = client.queue_add(procedure, parameters=values,
                                    out_dir=str(out_dir.resolve()) if out_dir else None,
                                    file=str(file_path.resolve()) if file_path else None, operator=operator,
                                    on_failure=on_failure, position=position,
                                    resume=str(resume_file.resolve()) if resume_file else None)
    if as_json:
        print_json(item)
    else:
        console.print(f"queued item {item['uid']} at position {item['position']}")


@queue.command("list")
@station_options
@click.option("--json", "as_json", is_flag=True)
def queue_list(station_name: str, state_dir: Path | None, as_json: bool) -> None:
    """The queue, in run order."""
    with user_errors(), connect(station_name, state_dir, "labctl queue list") as client:
        listing = client.queue_list()
    if as_json:
        print_json(listing)
        return
    console.print(f"queue {'started' if listing['active'] else 'stopped'}; on failure: {listing['on_failure']}")
    console.print(_item_rows(listing["items"]))


@queue.command("edit")
@click.argument("uid")
@station_options
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A parameter to change; repeat.")
@click.option("--on-failure", type=click.Choice(["stop", "continue", "queue"]), default=None,
              help="This item's failure policy ('queue': follow the queue's).")
@click.option("--operator", default=None)
@click.option("--json", "as_json", is_flag=True)
def queue_edit(uid: str, station_name: str, state_dir: Path | None, params: tuple[str, ...],
               on_failure: str | None, operator: str | None, as_json: bool) -> None:
    """Change a queued item's parameters (checked again against the station) or its failure policy."""
    with user_errors(), connect(station_name, state_dir, "labctl queue edit") as client:
        item = client.queue_edit(uid, pairs=list(params) or None, on_failure=on_failure, operator=operator)
    if as_json:
        print_json(item)
    else:
        console.print(f"item {item['uid']} edited")


@queue.command("move")
@click.argument("uid")
@click.argument("position", type=click.IntRange(min=0))
@station_options
def queue_move(uid: str, position: int, station_name: str, state_dir: Path | None) -> None:
    """Move a waiting item to POSITION (0 = next)."""
    with user_errors(), connect(station_name, state_dir, "labctl queue move") as client:
        item = client.queue_move(uid, position)
    console.print(f"item {item['uid']} at position {item['position']}")


@queue.command("remove")
@click.argument("uid")
@station_options
def queue_remove(uid: str, station_name: str, state_dir: Path | None) -> None:
    """Take a waiting item off the queue."""
    with user_errors(), connect(station_name, state_dir, "labctl queue remove") as client:
        item = client.queue_remove(uid)
    console.print(f"item {item['uid']} removed")


@queue.command("start")
@station_options
def queue_start(station_name: str, state_dir: Path | None) -> None:
    """Run the queue's items in order (kept across engine restarts)."""
    with user_errors(), connect(station_name, state_dir, "labctl queue start") as client:
        listing = client.queue_start()
    console.print(f"queue started; {len(listing['items'])} item(s)")


@queue.command("stop")
@station_options
def queue_stop(station_name: str, state_dir: Path | None) -> None:
    """Stop after the running run (which goes on; labctl engine abort stops it)."""
    with user_errors(), connect(station_name, state_dir, "labctl queue stop") as client:
        client.queue_stop()
    console.print("queue stopped (a running run goes on)")


@queue.command("policy")
@click.argument("on_failure", type=click.Choice(["stop", "continue"]))
@station_options
def queue_policy(on_failure: str, station_name: str, state_dir: Path | None) -> None:
    """What the queue does when a run does not complete: stop, or continue with the next item."""
    with user_errors(), connect(station_name, state_dir, "labctl queue policy") as client:
        client.queue_policy(on_failure)
    console.print(f"on failure: {on_failure}")


@queue.command("history")
@station_options
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True)
def queue_history(station_name: str, state_dir: Path | None, limit: int, as_json: bool) -> None:
    """Runs that ended: how (the file's end state), why, and where their data are."""
    with user_errors(), connect(station_name, state_dir, "labctl queue history") as client:
        entries = client.history(limit)
    if as_json:
        print_json(entries)
        return
    table = Table()
    for column in ("ended", "uid", "procedure", "status", "reason", "file"):
        table.add_column(column)
    for entry in entries:
        colour = "green" if entry["status"] == "completed" else "red"
        table.add_row(local_time(entry["ended_s"]), entry["uid"], escape(entry["procedure"]),
                      f"[{colour}]{entry['status']}[/]", escape(entry["reason"]), escape(entry["file"] or ""))
    console.print(table)
