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
from labctl.store import BlockData, RunReader


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
                               "irradiance_mW_cm2": irradiance}
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
            result = stabilised_power(t, p, irradiance if irradiance > 0 else 100.0)
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
    columns = ("pixel", "dir", "rate V/s", "Voc V", "Jsc mA/cm²", "FF", "PCE %", "Rs Ω·cm²", "Rsh Ω·cm²")
    for column in columns:
        table.add_column(column, justify="right")

    def fmt(value: Any, spec: str) -> str:
        return "—" if value is None else format(value, spec)

    for s in result["scans"]:
        table.add_row(s["pixel"], s["direction"], f"{s['scan_rate_V_s']:g}", fmt(s["voc_V"], ".4f"),
                      fmt(s["jsc_mA_cm2"], ".2f"), fmt(s["ff"], ".3f"), fmt(s["pce_pct"], ".2f"),
                      fmt(s["rs_ohm_cm2"], ".2f"), fmt(s["rsh_ohm_cm2"], ".0f"))
    console.print(table)
    if result["hysteresis"]:
        hys = Table(title="hysteresis indices (RS − FS)/RS")
        for column in ("pixel", "rate V/s", "HI_PCE", "HI_J0.8Voc", "HI_area"):
            hys.add_column(column, justify="right")
        for h in result["hysteresis"]:
            hys.add_row(h["pixel"], f"{h['scan_rate_V_s']:g}", fmt(h["hi_pce"], ".3f"), fmt(h["hi_j08"], ".3f"),
                        fmt(h["hi_area"], ".3f"))
        console.print(hys)
    for pixel, s in result["spo"].items():
        console.print(f"SPO {pixel}: {fmt(s['spo_pce_pct'], '.2f')} % at {fmt(s['vmpp_V'], '.3f')} V, "
                      f"settled after {fmt(s['settling_s'], '.1f')} s")


def plot_jv_report(path: Path, out_dir: Path) -> list[Path]:
    """PNG figures: J–V (RS solid, FS dashed, one colour per rate), P–V, HI vs rate, SPO trace."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with RunReader(path) as reader:
        result = analyze_jv(reader)
        blocks = {b.name: b for prefix in ("scan_", "spo_") for b in _blocks(reader, prefix)}
    stem = path.stem
    pixels = sorted({s["pixel"] for s in result["scans"]})
    rates = sorted({s["scan_rate_V_s"] for s in result["scans"]})
    cmap = plt.get_cmap("viridis")
    colour = {rate: cmap(i / max(1, len(rates) - 1) * 0.9) for i, rate in enumerate(rates)}
    for pixel in pixels:
        fig, (ax_jv, ax_pv) = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
        for s in result["scans"]:
            if s["pixel"] != pixel:
                continue
            b = blocks[s["block"]]
            style = "-" if s["direction"] == "RS" else "--"
            label = f"{s['direction']} {s['scan_rate_V_s']:g} V/s"
            v, j = b["voltage_V"], b["current_density_mA_cm2"]
            ax_jv.plot(v, j, style, color=colour[s["scan_rate_V_s"]], label=label)
            ax_pv.plot(v, v * j, style, color=colour[s["scan_rate_V_s"]], label=label)
        ax_jv.axhline(0, color="0.6", lw=0.8)
        ax_jv.set(xlabel="voltage (V)", ylabel="current density (mA/cm²)", title=f"{pixel}: J–V")
        top = max((s["jsc_mA_cm2"] or 0) for s in result["scans"] if s["pixel"] == pixel)
        if top > 0:
            ax_jv.set_ylim(-0.3 * top, 1.25 * top)
        ax_pv.set(xlabel="voltage (V)", ylabel="power density (mW/cm²)", title=f"{pixel}: P–V")
        ax_pv.set_ylim(bottom=0)
        ax_jv.legend(fontsize=8)
        out = out_dir / f"{stem}_{pixel}_jv.png"
        fig.savefig(out, dpi=120)
        plt.close(fig)
        written.append(out)
    if len(rates) > 1 and result["hysteresis"]:
        fig, ax = plt.subplots(figsize=(6, 4.5), constrained_layout=True)
        for pixel in pixels:
            rows = sorted((h for h in result["hysteresis"] if h["pixel"] == pixel),
                          key=lambda h: h["scan_rate_V_s"])
            x = [h["scan_rate_V_s"] for h in rows]
            for key, marker in (("hi_pce", "o"), ("hi_j08", "s"), ("hi_area", "^")):
                ax.plot(x, [np.nan if h[key] is None else h[key] for h in rows], marker=marker,
                        label=f"{pixel} {key}")
        ax.set_xscale("log")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set(xlabel="scan rate (V/s)", ylabel="hysteresis index (RS − FS)/RS", title="hysteresis vs scan rate")
        ax.legend(fontsize=8)
        out = out_dir / f"{stem}_hysteresis.png"
        fig.savefig(out, dpi=120)
        plt.close(fig)
        written.append(out)
    for name, block in blocks.items():
        if name.startswith("spo_") and block["time_s"].size:
            fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
            pixel = str(block.attrs.get("pixel", name[4:]))  # a hold redone after a resume is spo_<pixel>_2
            irradiance = float(block.attrs.get("irradiance_mW_cm2", 100.0)) or 100.0
            ax.plot(block["time_s"], 100 * block["power_mW_cm2"] / irradiance)
            spo = result["spo"].get(pixel, {})
            if spo.get("spo_pce_pct") is not None:
                ax.axhline(spo["spo_pce_pct"], color="C3", ls=":", label=f"SPO {spo['spo_pce_pct']:.2f} %")
                ax.legend()
            ax.set(xlabel="time at Vmpp (s)", ylabel="PCE (%)", title=f"{pixel}: stabilised power output")
            out = out_dir / f"{stem}_{name}.png"
            fig.savefig(out, dpi=120)
            plt.close(fig)
            written.append(out)
    return written
