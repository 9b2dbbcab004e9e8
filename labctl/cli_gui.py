"""`labctl gui`: the desktop window (docs/gui.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("gui")
@click.option("--station", "station_name", default=None,
              help="Station file (TOML) or a built-in station name (default: the last one used).")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where an engine the window starts writes its runs (default: ~/labctl-data).")
@click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The engine's state directory (default: found from the station).")
@click.option("--demo", is_flag=True,
              help="Drive the window through two simulated J–V runs on an engine of its own.")
@click.option("--screenshot", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Draw offscreen, save a PNG of the window there and exit (with --demo: once the runs show).")
def gui(station_name: str | None, data_dir: Path | None, state_dir: Path | None, demo: bool,
        screenshot: Path | None) -> None:
    """The desktop window: station, procedure forms, the engine's queue, the run browser. Closing it never
    stops a run; opening it again shows where the engine stands."""
    from labctl.gui.app import run_gui

    sys.exit(run_gui(station_name, data_dir=data_dir, state_dir=state_dir, demo=demo, screenshot=screenshot))
