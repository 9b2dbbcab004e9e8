"""`labctl engine ...`: start, stop, watch and control a station's engine; the path `labctl run` takes when an
engine runs for its station; the station lock of in-process commands; helpers shared with `labctl queue`
(:mod:`labctl.cli_queue`).

Every command finds the station's engine through the station's instrument locks (or ``--state-dir``) and
talks to it with :class:`labctl.engine.EngineClient`. Exit codes as for the rest of labctl: 0 done, 1 a run
that did not complete or no engine, 2 bad input.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from labctl.errors import LabctlError

console = Console()
err_console = Console(stderr=True)

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_DETACHED = 130


@contextmanager
def user_errors(exit_code: int = EXIT_BAD_INPUT) -> Iterator[None]:
    from labctl.engine.errors import EngineUnavailable

    try:
        yield
    except EngineUnavailable as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(EXIT_FAILED)
    except LabctlError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exit_code)


def station_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
                           help="The engine's state directory (default: found from the station).")(command)
    return click.option("--station", "station_name", default="sim", show_default=True,
                        help="Station file (TOML) or a built-in station name.")(command)


def connect(station_name: str, state_dir: Path | None, name: str) -> Any:
    from labctl.engine import EngineClient
    from labctl.station import Station

    if state_dir is not None:
        return EngineClient.open(state_dir, client=name)
    return EngineClient.for_station(Station.load(station_name), client=name)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, allow_nan=False))


def local_time(seconds: float | None) -> str:
    if seconds is None:
        return ""
    from datetime import datetime

    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------------------- engine
@click.group()
def engine() -> None:
    """The station's engine: a process that owns the instruments and runs the queue, surviving its front
    ends (docs/engine.md)."""


@engine.command("start")
@station_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Where to listen; 127.0.0.1 keeps the engine to this computer.")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
@click.option("--socket", "socket_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Listen on a local (Unix) socket at this path instead of TCP.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="A TOML file with an [engine] table (default: the station file's).")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("labctl-data"),
              show_default=True, help="Where runs without --out write their files.")
@click.option("--clock", "clock_name", type=click.Choice(["virtual", "real"]), default=None,
              help="Simulated stations: the session's clock (default virtual).")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(min=1e-3, max=1e6),
              help="With --clock real on a simulated station: how many times faster than real time.")
@click.option("--foreground", is_flag=True,
              help="Run in this process (for systemd, a Windows service wrapper, or a terminal) instead of "
                   "detaching.")
@click.option("--detached-child", is_flag=True, hidden=True,
              help="Set by the detaching start: log to engine.log only, not to stderr as well.")
def engine_start(station_name: str, state_dir: Path | None, host: str, port: int, socket_path: Path | None,
                 config_path: Path | None, data_dir: Path, clock_name: str | None, speed: float,
                 foreground: bool, detached_child: bool) -> None:
    """Start the engine of a station."""
    from labctl.engine.config import EngineConfig
    from labctl.engine.paths import default_state_dir
    from labctl.station import Station

    with user_errors():
        station = Station.load(station_name)
        _check_clock(station, clock_name, speed)
        config = EngineConfig.load(config_path) if config_path else EngineConfig.from_text(station.text,
                                                                                            station.source)
        directory = (state_dir or default_state_dir(station)).resolve()
        if not foreground:
            options = ["--station", station_name, "--state-dir", str(directory), "--host", host, "--port",
                       str(port), "--data-dir", str(data_dir.resolve()), "--speed", repr(speed)]
            options += ["--socket", str(socket_path.resolve())] if socket_path else []
            options += ["--config", str(config_path.resolve())] if config_path else []
            options += ["--clock", clock_name] if clock_name else []
            _start_detached(station, directory, options)
            return
        from labctl.engine.paths import make_private_dir
        from labctl.engine.server import Engine, run_engine, setup_logging

        setup_logging(make_private_dir(directory), to_stderr=not detached_child)
        engine = Engine(station, directory, config=config, clock_name=clock_name, speed=speed,
                        data_dir=data_dir.resolve(), host=host, port=port,
                        socket_path=socket_path.resolve() if socket_path else None)
        code = run_engine(engine, on_started=lambda notes: _started(engine, notes))
    sys.exit(code)


def _check_clock(station: Any, clock_name: str | None, speed: float) -> None:
    from labctl.errors import ParameterError

    if not station.simulated and (clock_name == "virtual" or speed != 1.0):
        raise ParameterError(f"--clock/--speed: {station.source} has real instruments, which run on real time "
                             "(allowed: --clock real, --speed 1)")
    if station.simulated and speed != 1.0 and clock_name != "real":
        raise ParameterError(f"--speed {speed:g} applies to --clock real; virtual time is as fast as it gets")


def _started(engine: Any, notes: list[str]) -> None:
    import os

    for note in notes:
        console.print(f"[yellow]{escape(note)}[/]")
    console.print(f"engine of station {escape(engine.station.name)} (pid {os.getpid()}) at {engine.address}; "
                  f"state in {escape(str(engine.state_dir))}", highlight=False)
    sys.stdout.flush()


def _start_detached(station: Any, state_dir: Path, options: list[str]) -> None:
    """Start ``labctl engine start --foreground`` as a process of its own (a new session: closing this
    terminal does not stop it) and wait until it answers."""
    from labctl.clock import real_elapsed_s, real_pause
    from labctl.engine import EngineClient, find_engine
    from labctl.engine.paths import make_private_dir

    if find_engine(station, state_dir) is not None:
        raise LabctlError(f"an engine is already running for station {station.name} (labctl engine status)")
    make_private_dir(state_dir)
    errors = state_dir / "engine.stderr"
    popen: dict[str, Any] = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL}
    if sys.platform == "win32":
        popen["creationflags"] = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    else:
        popen["start_new_session"] = True
    with open(errors, "wb") as stderr:
        child = subprocess.Popen([sys.executable, "-m", "labctl.cli", "engine", "start", "--foreground", *options,
                                  "--detached-child"], stderr=stderr, **popen)
    deadline = real_elapsed_s() + 60
    while real_elapsed_s() < deadline:
        if child.poll() is not None:
            tail = errors.read_text("utf-8", errors="replace").strip().splitlines()[-5:]
            raise LabctlError("the engine did not start: " + (" | ".join(tail) or f"exit status {child.returncode}"))
        try:
            with EngineClient.open(state_dir, client="labctl engine start", timeout_s=5) as client:
                info = client.info
            console.print(f"engine of station {escape(station.name)} started (pid {info['pid']}) at "
                          f"{info['address']}; log: {escape(str(state_dir / 'engine.log'))}", highlight=False)
            return
        except LabctlError:
            real_pause(0.2)
    raise LabctlError(f"the engine (pid {child.pid}) did not answer within 60 s; see {state_dir / 'engine.log'}")


@engine.command("stop")
@station_options
@click.option("--timeout", "timeout_s", default=300.0, show_default=True, type=click.FloatRange(min=1),
              help="How long to wait for the running run to reach its safe state, s.")
def engine_stop(station_name: str, state_dir: Path | None, timeout_s: float) -> None:
    """Stop the engine; a running run is interrupted (resumably) and resumed when the engine starts again."""
    from labctl.clock import real_elapsed_s, real_pause
    from labctl.engine.paths import pid_alive

    with user_errors():
        with connect(station_name, state_dir, "labctl engine stop") as client:
            pid = int(client.shutdown()["pid"])
        deadline = real_elapsed_s() + timeout_s
        while pid_alive(pid) and real_elapsed_s() < deadline:
            real_pause(0.1)
    if pid_alive(pid):
        err_console.print(f"[red]the engine (pid {pid}) has not stopped within {timeout_s:g} s[/]")
        sys.exit(EXIT_FAILED)
    console.print(f"engine stopped (pid {pid})")


@engine.command("status")
@station_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def engine_status(station_name: str, state_dir: Path | None, as_json: bool) -> None:
    """Is an engine running for the station, what is it doing."""
    with user_errors(), connect(station_name, state_dir, "labctl engine status") as client:
        status = client.status()
    if as_json:
        print_json(status)
        return
    session = status["session"]
    queue = status["queue"] or {}
    console.print(f"engine of station [bold]{escape(status['station'])}[/] (pid {status['pid']}, since "
                  f"{status['since']}) at {status['address']}", highlight=False)
    console.print(f"session {session['id']}: {session['runs']} run(s), clock {status['clock']}"
                  + (f" ×{status['speed']:g}" if status["speed"] != 1 else "")
                  + (f", restored from {escape(session['restored_from'])}" if session["restored_from"] else ""),
                  highlight=False)
    console.print(f"queue {'started' if queue.get('active') else 'stopped'}, {queue.get('waiting', 0)} waiting, "
                  f"on failure: {queue.get('on_failure')}; resume_interrupted = {status['resume_interrupted']}")
    run = status["run"]
    if run is None:
        console.print("no run is on")
    else:
        progress = run.get("progress") or {}
        fraction = progress.get("fraction")
        console.print(f"running item {run['item']}: {escape(run['procedure'])} {run['status']}"
                      + (f" {fraction:.0%}" if fraction is not None else "")
                      + (f" — {escape(progress.get('message', ''))}" if progress.get("message") else ""))
        console.print(f"data: {escape(run['file'])}")


def _run_control(name: str, help_text: str) -> None:
    @engine.command(name, help=help_text)
    @station_options
    @click.option("--item", "uid", default=None, help="The running queue item (default: whichever runs).")
    @click.option("--reason", default="", help="Why (abort only; recorded in the file).")
    def command(station_name: str, state_dir: Path | None, uid: str | None, reason: str) -> None:
        with user_errors(), connect(station_name, state_dir, f"labctl engine {name}") as client:
            if name == "abort":
                result = client.abort(uid, reason=reason or "aborted by the user (labctl engine abort)")
            else:
                result = getattr(client, name)(uid)
        console.print(f"{name}: item {result['item']}")


_run_control("pause", "Pause the running run (its channels go into the procedure's hold).")
_run_control("resume", "Resume a paused run.")
_run_control("abort", "Abort the running run (safe state; the file says aborted).")


@engine.command("watch")
@station_options
@click.option("--item", "uid", default=None, help="Follow only this queue item.")
@click.option("--until-end", is_flag=True, help="Exit when the followed run (or the running one) ends.")
@click.option("--json", "as_json", is_flag=True, help="Print every event as one JSON line.")
def engine_watch(station_name: str, state_dir: Path | None, uid: str | None, until_end: bool,
                 as_json: bool) -> None:
    """Attach to the engine and follow its runs (Ctrl-C detaches; the runs go on)."""
    with user_errors(), connect(station_name, state_dir, "labctl engine watch") as client:
        snapshot = client.watch(uid)
        target = uid or ((snapshot["status"].get("run") or {}).get("item") if until_end else None)
        if as_json:
            click.echo(json.dumps({"event": "snapshot", **snapshot}, allow_nan=False), nl=True)
        else:
            _print_snapshot(snapshot)
        try:
            code = _watch_events(client, target, until_end, as_json)
        except KeyboardInterrupt:
            console.print("stopped watching; the engine and its runs go on")
            code = 0
    sys.exit(code)


def _print_snapshot(snapshot: dict[str, Any]) -> None:
    run = snapshot["status"].get("run")
    if run is None:
        console.print("no run is on")
        return
    for known in snapshot["runs"]:
        if known["item"] != run["item"]:
            continue
        for message in known["recent"][-10:]:
            console.print(escape(_describe(message)), highlight=False)
        progress = known.get("progress") or {}
        if progress:
            console.print(f"{run['item']}: {progress.get('fraction', 0):.0%} {escape(progress.get('message', ''))}")


def _describe(message: dict[str, Any]) -> str:
    kind = message.get("event")
    item = message.get("item") or "-"
    if kind == "status":
        return f"{item} status {message['status']}" + (f": {message['reason']}" if message.get("reason") else "")
    if kind == "log":
        return f"{item} {message['level']}: {message['message']}"
    if kind == "record":
        return f"{item} {message['kind']}: {message['message']}"
    if kind == "progress":
        fraction = message.get("fraction") or 0.0
        return f"{item} {fraction:.0%} {message.get('message', '')}"
    if kind == "alarm":
        return f"ALARM {message['rule']} ({message['subject']}): {message['message']}"
    if kind == "run_started":
        return f"{item} started: {message['procedure']} -> {message['file']}"
    if kind == "run_ended":
        return f"{item} ended {message['status']}: {message['reason']} ({message['file']})"
    if kind == "queue":
        return f"queue {'started' if message['active'] else 'stopped'}, {len(message['items'])} item(s)"
    if kind == "engine":
        return f"engine {message['state']}: {message.get('reason', '')}"
    return json.dumps(message)


def _watch_events(client: Any, target: str | None, until_end: bool, as_json: bool) -> int:
    for message in client.events():
        kind = message.get("event")
        if as_json:
            click.echo(json.dumps(message, allow_nan=False))
        elif kind not in ("data",):
            console.print(escape(_describe(message)), highlight=False)
        if until_end and kind == "run_ended" and (target is None or message.get("item") == target):
            return 0 if message["status"] == "completed" else EXIT_FAILED
        if kind == "engine" and message.get("state") == "stopping":
            return EXIT_FAILED if until_end else 0
    return EXIT_FAILED if until_end else 0


# ---------------------------------------------------------------------------- labctl run, engine path
def run_with_engine(client: Any, station: Any, procedure: str, values: dict[str, Any], *, out_dir: Path,
                    file_path: Path | None, operator: str, title: str) -> None:
    """Submit a run to the station's engine and follow it like a run in this process; Ctrl-C stops following,
    not the run. Exits with the run's exit code."""
    from labctl.engine.protocol import decode_run_event
    from labctl.progress import RunProgressView

    client.watch()
    item = client.submit(procedure, parameters=values, out_dir=str(out_dir.resolve()),
                         file=str(file_path.resolve()) if file_path else None, operator=operator)
    uid = item["uid"]
    console.print(f"submitted to the engine of station {escape(station.name)} (pid {client.info['pid']}) as "
                  f"queue item {uid}; following it — Ctrl-C stops following, not the run "
                  f"(labctl engine abort --item {uid} stops it)", highlight=False)
    running = client.status()["run"]
    if running is not None and running["item"] != uid:
        console.print(f"waiting for the running item {running['item']} ({escape(running['procedure'])}) to end")
    view = RunProgressView(title, console)
    ended: dict[str, Any] | None = None
    try:
        with view.progress:
            for message in client.events():
                if message.get("event") == "engine" and message.get("state") == "stopping":
                    break
                if message.get("item") != uid:
                    continue
                if message["event"] == "run_ended":
                    ended = message
                    break
                if message["event"] == "run_started":
                    view.progress.console.print(f"data: {escape(message['file'])}")
                elif message["event"] == "alarm":
                    view.progress.console.print(f"[red]alarm[/] {escape(_describe(message))}")
                event = decode_run_event(message)
                if event is not None:
                    view(event)
    except KeyboardInterrupt:
        console.print(f"stopped following; item {uid} goes on in the engine (labctl engine watch --item {uid})")
        sys.exit(EXIT_DETACHED)
    if ended is None:
        err_console.print("[red]the engine stopped before the run ended[/]: the run is interrupted and resumes when "
                          "the engine starts again")
        sys.exit(EXIT_FAILED)
    colour = "green" if ended["status"] == "completed" else "red"
    console.print(f"[{colour}]{ended['status']}[/]: {escape(ended['reason'])}")
    console.print(f"data: {escape(ended['file'])}")
    if ended.get("analysis"):
        from labctl.analyze import print_analysis

        print_analysis(ended["analysis"], console)
    if ended["status"] != "completed":
        if ended["status"] == "interrupted":
            console.print(f"continue with: labctl queue add --resume {escape(ended['file'])}")
        sys.exit(EXIT_FAILED)


def engine_client_for(station: Any) -> Any:
    """A client of the engine running for ``station``, or None when none runs."""
    from labctl.engine import EngineClient, find_engine

    directory = find_engine(station)
    return None if directory is None else EngineClient.open(directory, client="labctl run")


@contextmanager
def station_lock(station: Any | None) -> Iterator[None]:
    """Hold the station's instrument locks in this process (``labctl run --local``, ``resume``,
    ``instruments``); InstrumentBusy names who holds them. No station: nothing to lock."""
    from labctl.engine.locks import StationLock

    if station is None:
        yield
        return
    with StationLock(station):
        yield
