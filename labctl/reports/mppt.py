"""MPPT aging files: stability figures per channel, tracking quality on simulated runs, check-up J–V metrics
over time; the PNG report.

The stability series of a channel is every reading of its tracker's holds under light (phase dwell: the
voltage it judged the MPP; the explorations and settling measurements around it are off the MPP on purpose);
its time axis is hours from the run's first reading. Stability figures come from
:func:`labctl.analysis.stability.stability_metrics`: the normalised PCE is relative to PCE₀, the value at the
first hold reading of a Theil–Sen line through the hold readings of the first half hour of tracking.

On a simulated station the file also holds the model's true MPP (``truth_<ch>``), interpolated to each
reading: tracking efficiency is the tracked energy over the true MPP's over every tracked reading (explore,
dwell, settle; gaps longer than ten tracking intervals excluded), and the mean |V − Vmpp,true| is taken over
the readings of the holds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from labctl.analysis.jv import JVAnalysisError, jv_metrics
from labctl.analysis.stability import (
    StabilityAnalysisError,
    mean_abs_dv,
    stability_metrics,
    tracking_efficiency,
)
from labctl.store import RunReader

TRACKED_PHASES = (0.0, 1.0, 4.0)  # explore, dwell, settle
DWELL = 1.0


def _clean(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(value) else float(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _channels(reader: RunReader) -> list[str]:
    return [name.removeprefix("mppt_") for name in reader.block_names() if name.startswith("mppt_")]


def channel_series(reader: RunReader, channel: str) -> dict[str, np.ndarray]:
    block = reader.block(f"mppt_{channel}")
    columns = {name: np.asarray(block[name], dtype=float) for name in ("time_s", "voltage_V", "power_mW_cm2",
                                                                         "pce_pct", "phase")}
    order = np.argsort(columns["time_s"], kind="stable")
    return {name: values[order] for name, values in columns.items()}


def _checkups(reader: RunReader, channel: str) -> list[dict[str, Any]]:
    rows = []
    for name in reader.block_names():
        if not name.startswith(f"jv_{channel}_"):
            continue
        block = reader.block(name)
        row: dict[str, Any] = {"block": name, "direction": str(block.attrs.get("direction", "")),
                               "elapsed_h": float(block.attrs.get("elapsed_h", math.nan))}
        try:
            metrics = jv_metrics(block["voltage_V"], block["current_density_mA_cm2"],
                                 float(block.attrs.get("irradiance_mW_cm2", 100.0)), photocurrent_sign="positive")
            row.update({k: metrics[k] for k in ("voc_V", "jsc_mA_cm2", "ff", "pce_pct")})
        except JVAnalysisError as exc:
            row["note"] = str(exc)
        rows.append(row)
    return rows


def analyze_mppt(reader: RunReader) -> dict[str, Any]:
    """``{"channels": [{"sample", "pce0_pct", <stability_metrics keys>, "tracking_efficiency",
    "mean_abs_dv_mpp_V", "duty_cycle", "checkups": [...]}]}`` (the last ones only where they apply)."""
    rows = []
    starts = [float(np.min(np.asarray(reader.block(f"mppt_{c}")["time_s"]))) for c in _channels(reader)
              if len(reader.block(f"mppt_{c}")["time_s"])]
    t0 = min(starts) if starts else 0.0
    for channel in _channels(reader):
        series = channel_series(reader, channel)
        tracked = (series["phase"] == DWELL) & (series["power_mW_cm2"] > 0)
        block = reader.block(f"mppt_{channel}")
        row: dict[str, Any] = {"channel": channel, "sample": str(block.attrs.get("sample", channel)),
                               "tracker": str(block.attrs.get("tracker", "")), "readings": int(tracked.sum())}
        time_h = (series["time_s"][tracked] - t0) / 3600.0
        pce = series["pce_pct"][tracked]
        if pce.size >= 10:
            try:
                metrics = stability_metrics(time_h, pce).as_dict()
                row.update(metrics)
            except StabilityAnalysisError as exc:
                row["note"] = str(exc)
        row["pce0_pct"] = row.get("reference_pce", float(np.median(pce[:10])) if pce.size else math.nan)
        truth_name = f"truth_{channel}"
        if truth_name in reader.block_names() and tracked.any():
            truth = reader.block(truth_name)
            tt = np.asarray(truth["time_s"], dtype=float)
            order = np.argsort(tt, kind="stable")
            tt = tt[order]
            p_true = np.interp(series["time_s"], tt, np.asarray(truth["pmpp_true_mW_cm2"], dtype=float)[order])
            v_true = np.interp(series["time_s"], tt, np.asarray(truth["vmpp_true_V"], dtype=float)[order])
            lit = p_true > 0
            use = lit & np.isin(series["phase"], TRACKED_PHASES)
            if use.sum() >= 2:
                interval = float(np.median(np.diff(series["time_s"][use]))) if use.sum() > 2 else 10.0
                row["tracking_efficiency"] = tracking_efficiency(series["time_s"][use], series["power_mW_cm2"][use],
                                                                 p_true[use], max_gap_s=10 * interval)
            held = lit & (series["phase"] == DWELL)
            if held.any():
                row["mean_abs_dv_mpp_V"] = mean_abs_dv(series["voltage_V"][held], v_true[held])
        bias_name = f"bias_{channel}"
        if bias_name in reader.block_names() and bool(block.attrs.get("multiplexed", False)):
            row["duty_cycle"] = _duty_cycle(reader.block(bias_name))
        row["checkups"] = _checkups(reader, channel)
        rows.append(row)
    return {"channels": [_clean(r) for r in rows]}


def _duty_cycle(block: Any) -> float:
    """Fraction of the time a multiplexed pixel was held by its SMU (state 1) between the first and the last
    change of its bias."""
    t = np.asarray(block["time_s"], dtype=float)
    state = np.asarray(block["state"], dtype=float)
    if t.size < 2:
        return math.nan
    order = np.argsort(t, kind="stable")
    t, state = t[order], state[order]
    spans = np.diff(t)
    held = float(np.sum(spans[state[:-1] == 1.0]))
    total = float(t[-1] - t[0])
    return held / total if total > 0 else math.nan


def _fmt(value: Any, spec: str = ".1f") -> str:
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def _lifetime_text(row: dict[str, Any], key: str) -> str:
    """A lifetime in hours, or "> last hour" when the run ended before it (censored, not extrapolated)."""
    value = row.get(f"{key}_h")
    if value is None and row.get(f"{key}_censored"):
        return f"> {_fmt(row.get('last_time_h'), '.3g')}"
    return _fmt(value)


def print_mppt(result: dict[str, Any], console: Console) -> None:
    table = Table(title="MPPT aging per channel (times in h)")
    for column in ("channel", "sample", "PCE0 %", "T95", "T80", "Ts80", "burn-in %", "η(end) %", "track. eff.",
                   "|ΔV| mV", "duty"):
        table.add_column(column, justify="right")
    for row in result["channels"]:
        eff = row.get("tracking_efficiency")
        dv = row.get("mean_abs_dv_mpp_V")
        table.add_row(row["channel"], row["sample"], _fmt(row.get("pce0_pct"), ".2f"), _lifetime_text(row, "t95"),
                      _lifetime_text(row, "t80"), _lifetime_text(row, "ts80"),
                      _fmt(row.get("burn_in_loss_pct")), _fmt(row.get("eta_end_pct")),
                      "—" if eff is None else f"{100 * eff:.2f} %", "—" if dv is None else f"{1e3 * dv:.1f}",
                      "—" if row.get("duty_cycle") is None else f"{row['duty_cycle']:.2f}")
    console.print(table)


def plot_mppt_report(path: Path, out_dir: Path) -> list[Path]:
    """PNG figures: normalised PCE against time for every channel (T80, Ts80 marked), the check-up J–V
    metrics over time, irradiance and temperature."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with RunReader(path) as reader:
        result = analyze_mppt(reader)
        series = {row["channel"]: channel_series(reader, row["channel"]) for row in result["channels"]}
        environment = ({k: np.asarray(reader.block("environment")[k], dtype=float)
                        for k in ("time_s", "irradiance_mW_cm2", "temperature_K")}
                       if "environment" in reader.block_names() else None)
        conditions = reader.attrs.get("conditions", {})
    starts = [float(s["time_s"].min()) for s in series.values() if s["time_s"].size]
    t0 = min(starts) if starts else 0.0
    stem = path.stem
    protocol = conditions.get("isos_protocol", "") if isinstance(conditions, dict) else ""
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(series), 1)))

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for colour, row in zip(colours, result["channels"], strict=False):
        s = series[row["channel"]]
        tracked = (s["phase"] == DWELL) & (s["power_mW_cm2"] > 0)
        reference = row.get("pce0_pct") or math.nan
        if not tracked.any() or not math.isfinite(reference) or reference <= 0:
            continue
        hours, norm = _binned((s["time_s"][tracked] - t0) / 3600.0, 100.0 * s["pce_pct"][tracked] / reference)
        name = row["channel"] if row["channel"] == row["sample"] else f"{row['channel']} ({row['sample']})"
        ax.plot(hours, norm, color=colour, lw=1.2, label=name)
        for key, marker in (("t80_h", "o"), ("ts80_h", "s")):
            value = row.get(key)
            if isinstance(value, float) and math.isfinite(value):  # None when censored
                ax.plot(value, 80.0 if key == "t80_h" else 0.8 * (row.get("stabilised_pct") or 100.0), marker,
                        color=colour, ms=8, mfc="none", mew=1.5)
    ax.axhline(80.0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("time under stress (h)")
    ax.set_ylabel("PCE / initial tracked PCE (%)")
    ax.set_title(f"MPPT aging {protocol}: normalised PCE (○ T80, □ Ts80)")
    ax.set_ylim(0, max(110.0, ax.get_ylim()[1]))
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    ax.grid(alpha=0.3)
    written.append(_save(fig, out_dir / f"{stem}_pce.png"))

    checkups = [(row, c) for row in result["channels"] for c in row.get("checkups", []) if c.get("pce_pct")]
    if checkups:
        fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
        for (key, label), axis in zip((("pce_pct", "PCE (%)"), ("voc_V", "Voc (V)"), ("jsc_mA_cm2", "Jsc (mA/cm²)"),
                                       ("ff", "FF")), axes.flat, strict=True):
            for colour, row in zip(colours, result["channels"], strict=False):
                points = [(c["elapsed_h"], c[key]) for c in row.get("checkups", [])
                          if c.get("direction") == "RS" and c.get(key) is not None]
                if points:
                    axis.plot(*zip(*points, strict=True), "o-", color=colour, ms=3, lw=0.8)
            axis.set_ylabel(label)
            axis.grid(alpha=0.3)
        for axis in axes[1]:
            axis.set_xlabel("time under stress (h)")
        fig.suptitle("check-up J–V (reverse scans) over time")
        written.append(_save(fig, out_dir / f"{stem}_checkups.png"))

    if environment is not None and environment["time_s"].size:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
        hours = (environment["time_s"] - t0) / 3600.0
        top.plot(hours, environment["irradiance_mW_cm2"], color="C0")
        top.set_ylabel("irradiance (mW/cm²)")
        bottom.plot(hours, environment["temperature_K"] - 273.15, color="C3")
        bottom.set_ylabel("temperature (°C)")
        bottom.set_xlabel("time under stress (h)")
        for axis in (top, bottom):
            axis.grid(alpha=0.3)
        # honest axes: a ±0.3 % lamp ripple or a ±0.02 K sensor noise is not drawn across the whole height
        _at_least(top, environment["irradiance_mW_cm2"], 5.0)
        _at_least(bottom, environment["temperature_K"] - 273.15, 2.0)
        fig.suptitle("conditions (reference cell, stage sensor)")
        written.append(_save(fig, out_dir / f"{stem}_conditions.png"))
    return written


def _binned(hours: np.ndarray, values: np.ndarray, bins: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most ``bins`` points (bin means) for a curve of any length: a figure cannot show more."""
    if hours.size <= bins:
        return hours, values
    edges = np.linspace(hours.min(), hours.max(), bins + 1)
    index = np.clip(np.searchsorted(edges, hours, side="right") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    keep = counts > 0
    return (np.bincount(index, hours, bins)[keep] / counts[keep],
            np.bincount(index, values, bins)[keep] / counts[keep])


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path



def _at_least(axis: Any, values: np.ndarray, span: float) -> None:
    """Give ``axis`` a y range of at least ``span`` (in the data's unit) around the data's middle."""
    finite = values[np.isfinite(values)]
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        if high - low < span:
            middle = 0.5 * (low + high)
            axis.set_ylim(middle - span / 2, middle + span / 2)
