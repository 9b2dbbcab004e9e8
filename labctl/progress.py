"""A rich progress bar fed by run events, for the command line and the demo."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from labctl.runner.events import LogLine, StatusChanged
from labctl.runner.events import Progress as ProgressEvent


class RunProgressView:
    """Rich progress bar fed by runner events (runs in the run thread; rich is thread-safe)."""

    def __init__(self, title: str, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[message]}"),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(title, total=1.0, message="")

    def __call__(self, event: Any) -> None:
        if isinstance(event, ProgressEvent):
            self.progress.update(self.task, completed=event.fraction, message=event.message)
        elif isinstance(event, StatusChanged):
            self.progress.update(self.task, message=event.status)
        elif isinstance(event, LogLine) and event.level in {"warning", "error"}:
            self.progress.console.print(f"[yellow]{event.level}:[/] {escape(event.message)}")
