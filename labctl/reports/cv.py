"""C–V files (and the reference C–V of a TID or TAS sweep): Mott–Schottky metrics and the PNG report.

A C–V block has ``voltage_V``, ``capacitance_F``, ``conductance_S`` and ``direction`` (+1 forward, −1 back);
its attributes give the area, ε_r, the temperature and the frequency. :func:`mott_schottky_of_block` fits it
(``labctl.analysis.cv``), the fit window automatic unless one is given.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from labctl.analysis.cv import CVAnalysisError, MottSchottky, mott_schottky
from labctl.store import BlockData, RunReader

CV_BLOCKS = ("cv", "cv_reference")


def clean(value: Any) -> Any:
    """JSON-able: numpy numbers as floats, NaN as None, containers walked."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def cv_block(reader: RunReader, prefix: str) -> BlockData | None:
    """The last block named ``prefix`` or ``prefix_<n>`` (a resumed run that redid it): the newest."""
    names = [n for n in reader.block_names() if n == prefix or n.startswith(prefix + "_")]
    return reader.block(names[-1]) if names else None


def mott_schottky_of_block(block: BlockData, *, eps_r: float | None = None,
                           fit_window_V: tuple[float, float] | None = None) -> MottSchottky:
    attrs = block.attrs
    return mott_schottky(block["voltage_V"], block["capacitance_F"], area_cm2=float(attrs["area_cm2"]),
                         eps_r=float(eps_r if eps_r is not None else attrs["eps_r"]),
                         temperature_K=float(attrs["temperature_K"]), fit_window_V=fit_window_V)


def analyze_cv(reader: RunReader) -> dict[str, Any]:
    """``{"v_bi_V", "n_a_cm3", "fit_window_V", ...}`` of the run's ``cv`` block (module docstring)."""
    block = cv_block(reader, "cv")
    if block is None:
        return {"note": "no C–V block in this file"}
    params = reader.parameters
    window = params.get("fit_window_V") or None
    try:
        result = mott_schottky_of_block(block, fit_window_V=tuple(window) if window else None)
    except CVAnalysisError as exc:
        return {"v_bi_V": None, "n_a_cm3": None, "fit_window_V": None, "note": str(exc)}
    return clean({**result.as_dict(), "temperature_K": float(block.attrs["temperature_K"]),
                  "frequency_Hz": float(block.attrs["frequency_Hz"]), "block": block.name})


def print_cv(result: dict[str, Any], console: Console) -> None:
    if result.get("n_a_cm3") is None:
        console.print(f"Mott–Schottky: {result.get('note', 'no result')}")
        return
    window = result["fit_window_V"]
    console.print(f"Mott–Schottky ({result['temperature_K']:.1f} K, {result['frequency_Hz']:g} Hz): "
                  f"N_A = {result['n_a_cm3']:.3g} cm⁻³, V_bi = {result['v_bi_V']:.3f} V, fit window "
                  f"{window[0]:g} … {window[1]:g} V ({result['n_points']} voltages, "
                  f"{'automatic' if result['automatic_window'] else 'given'}); forward/back differ by up to "
                  f"{100 * result['hysteresis']:.2g} %")


def plot_cv(block: BlockData, result: MottSchottky | None, out: Path, title: str) -> Path:
    """C–V (forward and back) and the Mott–Schottky plot with its fit line and window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v, c = np.asarray(block["voltage_V"]), np.asarray(block["capacitance_F"])
    direction = np.asarray(block["direction"])
    fig, (ax_c, ax_ms) = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    for sign, label, style in ((1.0, "forward", "o-"), (-1.0, "back", "s--")):
        pick = direction == sign
        if pick.any():
            ax_c.plot(v[pick], c[pick] * 1e9, style, ms=3, label=label)
            ax_ms.plot(v[pick], 1 / c[pick] ** 2, style, ms=3, label=label)
    temperature, frequency = (float(block.attrs.get(k, math.nan)) for k in ("temperature_K", "frequency_Hz"))
    where = f"{temperature:.1f} K, {frequency:g} Hz"
    ax_c.set(xlabel="bias (V)", ylabel="C (nF)", title=f"{title}: C–V in the dark, {where}")
    ax_c.legend(fontsize=8)
    ax_ms.set(xlabel="bias (V)", ylabel="1/C² (F⁻²)", title="Mott–Schottky")
    if result is not None:
        lo, hi = result.fit_window_V
        ax_ms.axvspan(lo, hi, color="0.9", zorder=0, label=f"fit window {lo:g} … {hi:g} V")
        line_v = np.linspace(min(float(v.min()), lo), result.intercept_V, 50)
        ax_ms.plot(line_v, result.slope_per_F2_V * (line_v - result.intercept_V), "k:",
                   label=f"N_A = {result.n_a_cm3:.3g} cm⁻³, V_bi = {result.v_bi_V:.3f} V")
        ax_ms.set_ylim(bottom=0)
    ax_ms.legend(fontsize=8)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_reference_cv(reader: RunReader, eps_r: float, out_dir: Path, stem: str, sample: str) -> list[Path]:
    """The Mott–Schottky figure of a sweep's ``cv_reference`` block ([] when the run measured none)."""
    reference = cv_block(reader, "cv_reference")
    if reference is None:
        return []
    try:
        result: MottSchottky | None = mott_schottky_of_block(reference, eps_r=eps_r)
    except CVAnalysisError:
        result = None
    return [plot_cv(reference, result, out_dir / f"{stem}_reference_cv.png", f"{sample} reference")]


def plot_cv_report(path: Path, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with RunReader(path) as reader:
        block = cv_block(reader, "cv")
        if block is None:
            return []
        window = reader.parameters.get("fit_window_V") or None
        try:
            result: MottSchottky | None = mott_schottky_of_block(block, fit_window_V=tuple(window) if window else None)
        except CVAnalysisError:
            result = None
        sample = str(block.attrs.get("pixel", ""))
        return [plot_cv(block, result, out_dir / f"{path.stem}_mott_schottky.png", sample or "C–V")]
