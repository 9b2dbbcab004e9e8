"""`labctl analyze FILE`: a run's summary plus its procedure's derived metrics.

A procedure's analysis is its own ``analyze(reader) -> dict`` (see :class:`labctl.runner.procedure.Procedure`);
its result is written to the file's ``/analysis/<procedure>`` and returned. Every file also gets a summary of
its blocks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labctl.errors import DataFileError
from labctl.store import RunReader, RunWriter


def report_file(path: Path, out_dir: Path, procedure_cls: Any) -> list[Path]:
    """PNG figures for a run by its procedure (None: the procedure is not known here)."""
    if procedure_cls is None:
        with RunReader(path) as reader:
            procedure = reader.procedure
        raise DataFileError(f"{path}: procedure {procedure!r} is not known here (is the package that provides it "
                            "installed?); no report")
    return list(procedure_cls.report(path, out_dir))


def summarize(reader: RunReader) -> dict[str, Any]:
    """File, procedure, status and every block's rows and columns, read from the blocks' metadata: the
    memory it takes does not grow with the rows (a 1000-hour, 64-channel file costs what a J–V does)."""
    blocks = []
    for name in reader.block_names():
        info = reader.info(name)
        blocks.append({"name": name, "rows": info.n_rows, "columns": dict(info.units)})
    return {
        "file": str(reader.path),
        "procedure": reader.procedure,
        "status": reader.status,
        "created": reader.attrs.get("created", ""),
        "blocks": blocks,
        "events": reader.n_events(),
    }


def analyze_file(path: Path, procedure_cls: Any) -> dict[str, Any]:
    """Summary and the metrics of the file's procedure (``procedure_cls``, None when it is not known here);
    the metrics are stored in the file's /analysis as well."""
    cls = procedure_cls
    with RunReader(path) as reader:
        result: dict[str, Any] = {"summary": summarize(reader)}
        metrics = cls.analyze(reader) if cls is not None else None
    if metrics is not None:
        result.update(metrics)
        try:
            with RunWriter.open_existing(path) as writer:
                writer.write_analysis(result["summary"]["procedure"], _flatten_for_storage(metrics))
        except DataFileError as exc:
            # A run still being written (the writer holds the file) or a read-only copy: the metrics are
            # still worth showing; `labctl analyze` stores them once the file can be written.
            result["note"] = f"metrics not written to the file's /analysis: {exc}"
    else:
        name = result["summary"]["procedure"]
        result["note"] = (f"no analysis is defined for procedure {name!r} yet" if cls is not None else
                          f"procedure {name!r} is not known here (is the package that provides it installed?); "
                          "no analysis")
    return result


def _flatten_for_storage(metrics: dict[str, Any]) -> dict[str, Any]:
    """Lists of row dicts become one group per list, one dataset per key (numbers) or attribute."""
    stored: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            stored[key] = {str(i): row for i, row in enumerate(value)}
        else:
            stored[key] = value
    return stored


def print_analysis(result: dict[str, Any], console: Console, procedure_cls: Any = None, *,
                   blocks: bool = True) -> None:
    """The run's summary (with a table of its blocks unless ``blocks=False``) and its metrics."""
    summary = result["summary"]
    console.print(f"[bold]{escape(summary['file'])}[/]  procedure {summary['procedure']}, "
                  f"status {summary['status']}, created {summary['created']}")
    if blocks:
        _print_blocks(summary, console)
    if procedure_cls is not None:
        procedure_cls.print_analysis(result, console)
    if "note" in result:
        console.print(escape(result["note"]))


def _print_blocks(summary: dict[str, Any], console: Console) -> None:
    table = Table(title="blocks")
    for column in ("block", "rows", "columns [unit]"):
        table.add_column(column)
    for block in summary["blocks"]:
        cols = escape(", ".join(f"{c} [{u}]" if u else c for c, u in block["columns"].items()))
        table.add_row(block["name"], str(block["rows"]), cols)
    console.print(table)
