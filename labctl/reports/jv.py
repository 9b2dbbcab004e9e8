"""J–V hysteresis files: metrics per scan, hysteresis per rate and pixel, SPO; PNG report."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from labctl.analysis.dark_jv import DarkJVError, dark_jv_metrics
from labctl.analysis.jv import METRIC_KEYS, JVAnalysisError, hysteresis_indices, jv_metrics, stabilised_power
from labctl.reports.jv_figures import (
    HI_LABELS,
    conditions_line,
    figure_dark_jv,
    figure_hysteresis,
    figure_pixel_jv,
    figure_spo,
    save,
)
from labctl.store import BlockData, RunReader

#: The stabilised power output has settled when it stays within this fraction of its final level.
SPO_TOLERANCE = 0.01


def _blocks(reader: RunReader, prefix: str) -> list[BlockData]:
    """The J–V procedure's blocks of one kind (``scan_``, ``spo_``); other blocks are never read."""
    return [reader.block(name) for name in reader.block_names() if name.startswith(prefix)]


def _clean(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return value


def analyze_jv(reader: RunReader, *, pair_across_resume: bool = False) -> dict[str, Any]:
    """``{"scans": [...], "hysteresis": [...], "spo": {pixel: {...}}}`` as documented for `labctl analyze`.

    A forward and a reverse scan are a hysteresis pair only when measured in the same run segment (between
    interruptions), unless ``pair_across_resume``: a cell that sat through a crash and a restart is not the
    cell of the scan before it."""
    scans: list[dict[str, Any]] = []
    # (pixel, rate, repeat, position of the rate in the list, segment): a rate listed twice is two pairs
    curves: dict[tuple[str, float, int, int, int], dict[str, tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    irradiances: dict[tuple[str, float, int, int, int], float] = {}
    for block in _blocks(reader, "scan_"):
        attrs = block.attrs
        irradiance = float(attrs.get("irradiance_mW_cm2", 100.0))
        v, j = block["voltage_V"], block["current_density_mA_cm2"]
        row: dict[str, Any] = {"block": block.name, "direction": str(attrs.get("direction", "")),
                               "scan_rate_V_s": float(attrs.get("scan_rate_V_s", math.nan)),
                               "achieved_rate_V_s": float(attrs.get("achieved_rate_V_s", math.nan)),
                               "pixel": str(attrs.get("pixel", "")), "repeat": int(attrs.get("repeat", 0)),
                               "irradiance_mW_cm2": irradiance,
                               "temperature_K": _clean(float(attrs.get("temperature_K", math.nan))),
                               "temperature_spread_K": _clean(float(attrs.get("temperature_spread_K", math.nan)))}
        try:
            metrics = jv_metrics(v, j, irradiance if irradiance > 0 else 100.0, photocurrent_sign="positive")
        except JVAnalysisError as exc:
            metrics = {key: math.nan for key in METRIC_KEYS}
            metrics["note"] = str(exc)
        if irradiance <= 0:
            metrics["pce_pct"] = math.nan
        row.update({k: _clean(v) for k, v in metrics.items()})
        scans.append(row)
        segment = 0 if pair_across_resume else int(attrs.get("segment", 0))
        row["segment"] = int(attrs.get("segment", 0))
        key = (row["pixel"], row["scan_rate_V_s"], row["repeat"], int(attrs.get("rate_index", 0)), segment)
        curves[key][row["direction"]] = (v, j)
        irradiances[key] = irradiance
    dark = _dark_rows(reader)
    hysteresis = []
    for key, pair in sorted(curves.items()):
        pixel, rate, repeat, _, segment = key
        if "RS" in pair and "FS" in pair:
            try:
                hi = hysteresis_indices(pair["RS"], pair["FS"], irradiances[key],
                                        photocurrent_sign="positive")
            except JVAnalysisError:
                continue
            hysteresis.append({"scan_rate_V_s": rate, "pixel": pixel, "repeat": repeat, "segment": segment,
                               **{k: _clean(v) for k, v in hi.items()}})
    spo: dict[str, Any] = {}
    for block in _blocks(reader, "spo_"):
        irradiance = float(block.attrs.get("irradiance_mW_cm2", 100.0))
        t, p = block["time_s"], block["power_mW_cm2"]
        if t.size >= 3:
            result = stabilised_power(t, p, irradiance if irradiance > 0 else 100.0, tolerance=SPO_TOLERANCE)
            result["settling_tolerance"] = SPO_TOLERANCE
            result["vmpp_V"] = float(block.attrs.get("vmpp_V", math.nan))
            spo[str(block.attrs.get("pixel", block.name[4:]))] = {k: _clean(v) for k, v in result.items()}
    return {"scans": scans, "hysteresis": hysteresis, "spo": spo, "dark": dark}


def _dark_rows(reader: RunReader) -> list[dict[str, Any]]:
    """Ideality factor, J0, Rs and Rsh of every scan measured in the dark."""
    rows: list[dict[str, Any]] = []
    for block in _blocks(reader, "scan_"):
        attrs = block.attrs
        if float(attrs.get("irradiance_mW_cm2", 100.0)) > 0:
            continue
        temperature = float(attrs.get("temperature_K", math.nan))
        row: dict[str, Any] = {"block": block.name, "pixel": str(attrs.get("pixel", "")),
                               "direction": str(attrs.get("direction", "")),
                               "scan_rate_V_s": float(attrs.get("scan_rate_V_s", math.nan))}
        try:
            metrics = dark_jv_metrics(block["voltage_V"], block["current_density_mA_cm2"],
                                      temperature if math.isfinite(temperature) else 298.15)
        except DarkJVError as exc:
            row["note"] = str(exc)
        else:
            row.update({k: _clean(v) for k, v in metrics.items() if k != "sign"})
        rows.append(row)
    return rows


def print_jv(result: dict[str, Any], console: Console) -> None:
    table = Table(title="J–V metrics")
    columns = ("pixel", "dir", "rate V/s", "T K", "Voc V", "Jsc mA/cm²", "FF", "PCE %", "Rs Ω·cm²", "Rsh Ω·cm²")
    for column in columns:
        table.add_column(column, justify="right")

    def fmt(value: Any, spec: str) -> str:
        return "—" if value is None else format(value, spec)

    notes: list[str] = []
    lit = [s for s in result["scans"] if s["irradiance_mW_cm2"] > 0]
    for s in lit:
        mark = ""
        if s.get("note"):
            notes.append(f"{s['block']} ({s['pixel']} {s['direction']} {s['scan_rate_V_s']:g} V/s): {s['note']}")
            mark = f" [{len(notes)}]"
        table.add_row(s["pixel"], s["direction"] + mark, f"{s['scan_rate_V_s']:g}", fmt(s.get("temperature_K"), ".1f"),
                      fmt(s["voc_V"], ".4f"), fmt(s["jsc_mA_cm2"], ".2f"), fmt(s["ff"], ".3f"),
                      fmt(s["pce_pct"], ".2f"), fmt(s["rs_ohm_cm2"], ".2f"), fmt(s["rsh_ohm_cm2"], ".0f"))
    if lit:
        console.print(table)
    for number, note in enumerate(notes, 1):
        console.print(f"  [{number}] {note}")
    if result.get("dark"):
        print_dark_jv(result["dark"], console)
    measured = [h for h in result["hysteresis"] if any(h[key] is not None for key in HI_LABELS)]
    if measured:
        hys = Table(title="hysteresis indices (RS − FS)/RS")
        for column in ("pixel", "rate V/s", "repeat", *HI_LABELS.values()):
            hys.add_column(column, justify="right")
        for h in measured:
            hys.add_row(h["pixel"], f"{h['scan_rate_V_s']:g}", str(h["repeat"] + 1),
                        *(fmt(h[key], ".3f") for key in HI_LABELS))
        console.print(hys)
    for pixel, s in result["spo"].items():
        band = 100 * s.get("settling_tolerance", SPO_TOLERANCE)
        settled = (f"within ±{band:g} % of its final level from {s['settling_s']:.1f} s"
                   if s["settling_s"] is not None else f"never settled within ±{band:g} %")
        console.print(f"SPO {pixel}: {fmt(s['spo_pce_pct'], '.2f')} % at {fmt(s['vmpp_V'], '.3f')} V, {settled}")


def print_dark_jv(rows: list[dict[str, Any]], console: Console) -> None:
    """The dark scans: ideality factor and J0 from the exponential region, Rs and Rsh."""
    table = Table(title="dark J–V (single diode)")
    for column in ("pixel", "dir", "rate V/s", "T K", "n", "J0 mA/cm²", "Rs Ω·cm²", "Rsh Ω·cm²", "fit window V"):
        table.add_column(column, justify="right")
    notes = []
    for row in rows:
        if "note" in row:
            notes.append(f"{row['block']}: {row['note']}")
            table.add_row(row["pixel"], row["direction"], f"{row['scan_rate_V_s']:g}", "—", "—", "—", "—", "—",
                          f"[{len(notes)}]")
            continue
        low, high = row["fit_window_V"]
        table.add_row(row["pixel"], row["direction"], f"{row['scan_rate_V_s']:g}", f"{row['temperature_K']:.1f}",
                      f"{row['ideality']:.2f}", f"{row['j0_mA_cm2']:.3g}", f"{row['rs_ohm_cm2']:.2f}",
                      f"{row['rsh_ohm_cm2']:.0f}", f"{low:.2f}–{high:.2f}")
    console.print(table)
    for number, note in enumerate(notes, 1):
        console.print(f"  [{number}] {note}")


def plot_jv_report(path: Path, out_dir: Path) -> list[Path]:
    """PNG figures: J–V and P–V per pixel, hysteresis against scan rate, every stabilised power hold."""
    import matplotlib

    matplotlib.use("Agg")

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with RunReader(path) as reader:
        result = analyze_jv(reader)
        blocks = {b.name: b for prefix in ("scan_", "spo_") for b in _blocks(reader, prefix)}
    stem = path.stem
    pixels = sorted({s["pixel"] for s in result["scans"]})
    for pixel in pixels:
        pixel_blocks = [blocks[s["block"]] for s in result["scans"] if s["pixel"] == pixel]
        title = f"{pixel} — {conditions_line(pixel_blocks)} — {path.name}"
        if any(r["pixel"] == pixel for r in result["dark"]):
            figure = figure_dark_jv(pixel, result["dark"], blocks, title)
            written.append(save(figure, out_dir / f"{stem}_{pixel}_dark_jv.png"))
        if not any(s["pixel"] == pixel and s["irradiance_mW_cm2"] > 0 for s in result["scans"]):
            continue
        written.append(save(figure_pixel_jv(pixel, result["scans"], blocks, title), out_dir / f"{stem}_{pixel}_jv.png"))
    if len({s["scan_rate_V_s"] for s in result["scans"]}) > 1 and result["hysteresis"]:
        scan_blocks = [b for name, b in blocks.items() if name.startswith("scan_")]
        title = f"{', '.join(pixels)} — {conditions_line(scan_blocks)} — {path.name}"
        written.append(save(figure_hysteresis(result["hysteresis"], title), out_dir / f"{stem}_hysteresis.png"))
    for name, block in blocks.items():
        if name.startswith("spo_") and block["time_s"].size:
            pixel = str(block.attrs.get("pixel", name[4:]))  # a hold redone after a resume is spo_<pixel>_2
            title = f"{pixel} — {conditions_line([block])} — {path.name}"
            figure = figure_spo(block, result["spo"].get(pixel, {}), SPO_TOLERANCE, title)
            written.append(save(figure, out_dir / f"{stem}_{name}.png"))
    return written
