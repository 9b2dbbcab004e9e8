"""The ``labctl`` command line.

Exit codes: 0 success; 1 the run failed, was interrupted or aborted; 2 bad input (parameter, station,
file) — reported before any instrument is touched.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import labctl
from labctl.errors import LabctlError
from labctl.progress import RunProgressView

console = Console()
err_console = Console(stderr=True)

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _fail(exc: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    sys.exit(EXIT_BAD_INPUT)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn labctl's own errors into one clear line and exit code 2 (no traceback)."""
    try:
        yield
    except LabctlError as exc:
        _fail(exc)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(labctl.__version__, prog_name="labctl")
def cli() -> None:
    """labctl: instrument control and HDF5 acquisition for perovskite solar-cell labs."""


# ------------------------------------------------------------------------------------- running
def _clock_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--speed", default=1.0, show_default=True, type=click.FloatRange(min=1e-3, max=1e6),
        help="With --clock real on a simulated station: how many times faster than real time.")(command)
    return click.option(
        "--clock", "clock_name", type=click.Choice(["virtual", "real"]), default=None,
        help="Simulated stations: virtual time (the default: hours take seconds) or real time "
             "(as on hardware, optionally --speed times faster). Real instruments always run on real time.")(command)


def run_clock(station: Any, clock_name: str | None, speed: float) -> Any:
    """The clock a run uses: None (the station's own: virtual when simulated, real otherwise), or the one
    asked for; a bad combination is one clear error."""
    from labctl.clock import RealClock
    from labctl.errors import ParameterError

    if not station.simulated:
        if clock_name == "virtual":
            raise ParameterError(f"--clock virtual needs a simulated station; {station.source} has real "
                                 "instruments, which run on real time")
        if speed != 1.0:
            raise ParameterError(f"--speed {speed:g}: real instruments run at real speed (allowed: 1)")
        return None
    if clock_name == "real":
        return RealClock(speed=speed)
    if speed != 1.0:
        raise ParameterError(f"--speed {speed:g} applies to --clock real; virtual time is as fast as it gets")
    return None


#: What a run stopped by SIGTERM says: it was not the user's decision, and the run stays resumable.
SIGTERM_REASON = "SIGTERM: stopped by the system (a service manager or a shutdown); resumable"


def _execute(runner: Any, title: str) -> None:
    """Run with a progress bar. Ctrl-C aborts the run; SIGTERM interrupts it (resumable); either way it ends
    through its safe shutdown."""
    view = RunProgressView(title, console)
    runner.subscribe(view)

    def on_sigterm(signum: int, frame: Any) -> None:
        runner.abort(SIGTERM_REASON, status="interrupted")

    previous: Callable[..., Any] | int | None = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with view.progress:
            result = runner.run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    colour = "green" if result.status == "completed" else "red"
    console.print(f"[{colour}]{result.status}[/]: {escape(result.reason)}")
    console.print(f"data: {escape(str(result.path))}")
    if result.analysis is not None:
        from labctl.analyze import print_analysis

        print_analysis(result.analysis, console, type(runner.procedure))
    if result.status != "completed":
        if result.status == "interrupted":
            console.print(f"continue with: labctl resume {escape(str(result.path))}")
        sys.exit(EXIT_FAILED)


@cli.command()
@click.argument("procedure")
@click.option("--station", "station_name", default="sim", show_default=True,
              help="Station file (TOML) or a built-in station name.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A procedure parameter; repeat for several. Lists: comma-separated.")
@click.option("--params", "params_file", type=click.Path(path_type=Path, dir_okay=False),
              help="A TOML file of parameters (--param overrides it).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("labctl-data"),
              show_default=True, help="Directory for the data file.")
@click.option("--file", "file_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Exact data file path (must not exist).")
@click.option("--operator", default="", help="Who runs the measurement (saved in the file).")
@click.option("--list-params", is_flag=True, help="Show the procedure's parameters and exit.")
@click.option("--local", is_flag=True,
              help="Run in this process even when an engine runs for the station (it then refuses: the engine "
                   "holds the instruments).")
@_clock_options
def run(procedure: str, station_name: str, params: tuple[str, ...], params_file: Path | None,
        out_dir: Path, file_path: Path | None, operator: str, list_params: bool, local: bool,
        clock_name: str | None, speed: float) -> None:
    """Run PROCEDURE (see `labctl procedures`) on a station.

    When an engine runs for the station (labctl engine start), the run is submitted to it and followed here;
    closing this terminal then does not stop the run."""
    from labctl.cli_engine import engine_client_for, run_with_engine, station_lock
    from labctl.runner import Runner, procedure_class
    from labctl.station import Station

    with _user_errors():
        cls = procedure_class(procedure)
        if list_params:
            _print_params(cls)
            return
        proc = cls.from_strings(params, params_file)
        station = Station.load(station_name)
        if file_path is not None and file_path.exists():
            from labctl.errors import DataFileError

            raise DataFileError(f"{file_path} exists; labctl never overwrites a data file")
        client = None if local else engine_client_for(station)
        if client is not None:
            if clock_name is not None or speed != 1.0:
                from labctl.errors import ParameterError

                raise ParameterError("--clock/--speed: the engine of this station runs its session on the clock it "
                                     "was started with (labctl engine start --clock ...); use --local to run here")
            with client:
                run_with_engine(client, station, procedure, proc.values, out_dir=out_dir, file_path=file_path,
                                operator=operator, title=cls.title or cls.name)
            return
        clock = run_clock(station, clock_name, speed)
        runner = Runner(proc, station=station, path=file_path, directory=out_dir, operator=operator, clock=clock)
        runner.validate()  # before the progress bar, any file or any instrument
    with _user_errors(), station_lock(station):
        _execute(runner, cls.title or cls.name)


def _print_params(cls: Any) -> None:
    table = Table(title=f"{cls.name}: {cls.title}")
    for column in ("parameter", "unit", "default", "allowed", "help"):
        table.add_column(column)
    for key, param in cls.parameters().items():
        default = "(required)" if param.required else str(param.default)
        table.add_row(key, param.unit, default, param.allowed(), param.help)
    console.print(table)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--station", "station_name", default=None,
              help="Use this station instead of the one saved in the file.")
@_clock_options
def resume(file: Path, station_name: str | None, clock_name: str | None, speed: float) -> None:
    """Continue an interrupted run from its last checkpoint, appending to FILE."""
    from labctl.cli_engine import station_lock
    from labctl.runner import resume_runner
    from labctl.station import Station

    with _user_errors():
        station = Station.load(station_name) if station_name else None
        runner = resume_runner(file, station=station)
        if clock_name is not None or speed != 1.0:
            assert runner.station is not None
            runner._explicit_clock = run_clock(runner.station, clock_name, speed)
        with station_lock(runner.station):
            _execute(runner, f"resume {runner.procedure.name}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def procedures(as_json: bool) -> None:
    """List the procedures `labctl run` knows, and where each came from."""
    from labctl.runner import known_procedures

    entries = sorted(known_procedures().values(), key=lambda e: e.name)
    if as_json:
        click.echo(json.dumps([{"name": e.name, "title": e.cls.title if e.cls else "", "origin": e.origin,
                                "class": e.target, "problem": e.problem} for e in entries], indent=2))
        return
    table = Table()
    for column in ("name", "what it measures", "from", "class"):
        table.add_column(column)
    for e in entries:
        title = e.cls.title if e.cls is not None else f"[red]{escape(e.problem)}[/]"
        table.add_row(e.name, title, e.origin, e.target)
    console.print(table)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def drivers(as_json: bool) -> None:
    """List the instrument drivers a station file may name, their role, and where each came from."""
    from drivers.registry import driver_class, known_drivers
    from labctl.errors import StationError

    rows = []
    for entry in sorted(known_drivers().values(), key=lambda e: e.key):
        try:
            role = str(getattr(driver_class(entry.key), "role", "?"))
        except StationError as exc:
            role = f"cannot be loaded: {exc}"
        rows.append({"driver": entry.key, "role": role, "origin": entry.origin, "class": entry.target})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table()
    for column in ("driver", "role", "from", "class"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["driver"], escape(row["role"]), row["origin"], row["class"])
    console.print(table)


# ------------------------------------------------------------------------------------ data files
@cli.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def analyze(file: Path, as_json: bool) -> None:
    """Derived metrics of a run (also written to the file's /analysis)."""
    from labctl.analyze import analyze_file
    from labctl.runner.registry import procedure_of_file

    with _user_errors():
        procedure_cls = procedure_of_file(file)
        result = analyze_file(file, procedure_cls)
    if as_json:
        click.echo(json.dumps(_strict_json(result), indent=2, allow_nan=False))
        return
    from labctl.analyze import print_analysis

    print_analysis(result, console, procedure_cls)


def _strict_json(value: Any) -> Any:
    """``value`` with NaN and infinities (an undefined metric, an unmeasurably large Rsh) as null: JSON has
    no such numbers, and strict parsers (jq, JavaScript) reject Python's ``NaN``/``Infinity``."""
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(item) for item in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _strict_json(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Directory for the PNG figures (default: next to FILE).")
def report(file: Path, out_dir: Path | None) -> None:
    """PNG figures of a run (J–V curves, P–V, hysteresis vs rate, SPO trace, ...)."""
    from labctl.analyze import report_file
    from labctl.runner.registry import procedure_of_file

    with _user_errors():
        written = report_file(file, out_dir or file.parent, procedure_of_file(file))
    for path in written:
        console.print(str(path))


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--csv", "csv_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory for one CSV per block.")
def export(file: Path, csv_dir: Path) -> None:
    """Export every block of FILE to CSV (units and metadata in the header)."""
    from labctl.store import export_csv

    with _user_errors():
        written = export_csv(file, csv_dir)
    for path in written:
        console.print(str(path))


# ------------------------------------------------------------------------------------ instruments
@cli.command()
@click.option("--station", "station_name", default="sim", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def instruments(station_name: str, as_json: bool) -> None:
    """Connect to every instrument of a station and show what answered, and with which link settings."""
    from labctl.bench import probe_station
    from labctl.cli_engine import station_lock
    from labctl.station import Station

    with _user_errors():
        station = Station.load(station_name)
        with station_lock(station):
            rows = probe_station(station)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        table = Table(title=f"station {station.name}")
        for column in ("name", "model", "address", "connected with", "identity", "status"):
            table.add_column(column)
        for row in rows:
            style = "green" if row["status"] == "ok" else "red"
            table.add_row(escape(row["name"]), escape(row["driver"]), escape(row["address"]),
                          escape(_link_summary(row.get("settings", {}))), escape(row["identity"]),
                          f"[{style}]{escape(row['status'])}[/]")
        console.print(table)
    if any(row["status"] != "ok" for row in rows):
        sys.exit(EXIT_FAILED)


def _link_summary(settings: dict[str, Any]) -> str:
    """One readable line per setting: ``serial 57600 baud 7O1``, ``term CR LF / CR LF``, ``timeout 5000 ms``."""
    if not settings:
        return ""
    names = {"\r": "CR", "\n": "LF"}

    def term(text: str) -> str:
        return " ".join(names.get(c, repr(c)) for c in text) or "END"

    lines = [str(settings.get("interface", ""))]
    if "serial" in settings:
        lines.append(f"{settings['serial']}, flow {settings.get('flow_control', 'none')}")
    if "read_termination" in settings:
        lines.append(f"read {term(settings['read_termination'])}, write {term(settings['write_termination'])}")
    lines.append(f"timeout {settings.get('timeout_ms')} ms")
    if "command_interval_s" in settings:
        lines.append(f"{settings['command_interval_s'] * 1000:g} ms between commands")
    if settings.get("acknowledged_writes"):
        lines.append("commands acknowledged")
    for key, label in (("visa_library", "VISA"), ("listen", "listens at"), ("relay", "relay"),
                       ("connect_timeout_s", "waits for connection (s)")):
        if key in settings:
            lines.append(f"{label} {settings[key]}")
    return "\n".join(lines)


@cli.group()
def sim() -> None:
    """The simulated bench."""


@sim.command("serve")
@click.option("--station", "station_name", default="sim", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; 127.0.0.1 keeps the simulated bench on this machine.")
@click.option("--port-base", default=5025, show_default=True, type=click.IntRange(0, 65535),
              help="First TCP port; instruments get consecutive ports (0: any free ports).")
@click.option("--dial", multiple=True, metavar="NAME=HOST:PORT",
              help="Where an instrument that connects out (the SINUS-70's SinusGUI) connects.")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(min=1e-3, max=1e6),
              help="Run the simulated world this many times faster than real time.")
@click.option("--write-station", "station_out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write a station file (TOML) that reaches the served instruments.")
def sim_serve(station_name: str, host: str, port_base: int, dial: tuple[str, ...], speed: float,
              station_out: Path | None) -> None:
    """Serve every simulated instrument as a TCP socket instrument until interrupted.

    The simulated world runs on real time (or --speed times faster), so any client — labctl's own drivers
    included — waits for a sweep or a stage as it would on hardware. Prints one line per instrument: name,
    model, and the address a station file uses for it (a VISA resource; for the SINUS-70, the wavelabs://
    address to listen at, which the served SinusGUI dials)."""
    from labctl.clock import RealClock
    from labctl.errors import StationError
    from labctl.sim_bench import serve_station, served_station_text
    from labctl.station import Station

    with _user_errors():
        targets: dict[str, str] = {}
        for item in dial:
            name, sep, target = item.partition("=")
            if not sep or not name or not target:
                raise StationError(f"--dial {item!r}: expected NAME=HOST:PORT, e.g. sun=127.0.0.1:3334")
            targets[name] = target
        station = Station.load(station_name)
        server = serve_station(station, host=host, port_base=port_base, dial=targets, clock=RealClock(speed))
    with server:
        if station_out is not None:
            station_out.write_text(served_station_text(station, server.endpoints), "utf-8")
        for name, model, resource in server.endpoints:
            click.echo(f"{name} {model} {resource}", nl=True)
        sys.stdout.flush()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


# ------------------------------------------------------------------------------------------- demo
@cli.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("demo-output"),
              show_default=True)
def demo(out_dir: Path) -> None:
    """The main job on the simulated bench: measure, analyse and plot."""
    from labctl.demo import DemoRunFailed, run_demo

    with _user_errors():
        try:
            run_demo(out_dir, console)
        except DemoRunFailed as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            sys.exit(EXIT_FAILED)


def _register_engine_commands() -> None:
    from labctl.cli_engine import engine
    from labctl.cli_gui import gui
    from labctl.cli_queue import queue

    cli.add_command(engine)
    cli.add_command(queue)
    cli.add_command(gui)


_register_engine_commands()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
