"""The J–V report's figures: J–V and P–V per pixel, hysteresis against scan rate, the stabilised power hold.

Choices a group meeting would otherwise question:
- one colour per scan rate from viridis cut at 0.8, so the fastest rate is a green that prints, not a pale
  yellow; reverse scans solid, forward scans dashed; later repeats thinner and lighter, so repeats stay
  distinguishable while the legend keeps one entry per rate and one per direction;
- points only where repeats share a scan rate, with the mean over repeats drawn through them: a line
  joining repeats measured at the same rate would draw a vertical stroke that is not a trend;
- the power-hold axis never spans less than ±2 % of the stabilised value, so a 0.04 % drift is not drawn as a
  cliff; the settling band and time drawn are the ones the analysis used;
- every figure carries the conditions it was measured under (irradiance, temperature, area, integration).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labctl.store import BlockData

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The top of viridis is too pale to print; 0.8 is a saturated green.
COLOURMAP_TOP = 0.8
#: The smallest half-span of the power-hold axis, relative to the stabilised value.
SPO_MIN_HALF_SPAN = 0.02
#: Names as the printed hysteresis table has them.
HI_LABELS = {"hi_pce": "HI_PCE", "hi_j08": "HI_J0.8Voc", "hi_area": "HI_area"}


def rate_colours(rates: list[float]) -> dict[float, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    top = max(1, len(rates) - 1)
    return {rate: cmap(COLOURMAP_TOP * i / top) for i, rate in enumerate(sorted(rates))}


def conditions_line(blocks: list[BlockData]) -> str:
    """Irradiance, temperature, area and integration of these blocks, as one line for a figure."""
    def values(key: str) -> np.ndarray:
        found = [float(b.attrs[key]) for b in blocks if key in b.attrs]
        return np.array([v for v in found if math.isfinite(v)])

    parts = []
    irradiance = values("irradiance_mW_cm2")
    if irradiance.size:
        parts.append("dark" if np.max(irradiance) <= 0 else f"{np.mean(irradiance):.1f} mW/cm²")
    temperature = values("temperature_K")
    if temperature.size:
        spread = float(np.ptp(temperature))
        parts.append(f"{np.mean(temperature):.1f} K" + (f" (range {spread:.1f} K)" if spread >= 0.1 else ""))
    else:
        parts.append("temperature not measured")
    area = values("area_cm2")
    if area.size:
        parts.append(f"area {area[0]:g} cm²")
    nplc = values("nplc")
    if nplc.size:
        parts.append(f"{nplc[0]:g} PLC")
    return " · ".join(parts)


def save(fig: Figure, out: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def figure_pixel_jv(pixel: str, scans: list[dict[str, Any]], blocks: dict[str, BlockData], title: str) -> Figure:
    """J–V and P–V of one pixel: one legend entry per rate, directions and repeats by line style."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    rows = [s for s in scans if s["pixel"] == pixel]
    colour = rate_colours(sorted({s["scan_rate_V_s"] for s in rows}))
    repeats = sorted({s["repeat"] for s in rows})
    fig, (ax_jv, ax_pv) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    for s in rows:
        block = blocks[s["block"]]
        later = repeats.index(s["repeat"])
        style = {"linestyle": "-" if s["direction"] == "RS" else "--", "color": colour[s["scan_rate_V_s"]],
                 "linewidth": max(0.8, 1.8 - 0.4 * later), "alpha": max(0.45, 1.0 - 0.2 * later)}
        v, j = block["voltage_V"], block["current_density_mA_cm2"]
        ax_jv.plot(v, j, **style)
        ax_pv.plot(v, v * j, **style)
    ax_jv.axhline(0, color="0.6", lw=0.8)
    jsc = [s["jsc_mA_cm2"] for s in rows if s["jsc_mA_cm2"] is not None]
    if jsc and max(jsc) > 0:
        ax_jv.set_ylim(-0.3 * max(jsc), 1.25 * max(jsc))
    ax_jv.set(xlabel="voltage (V)", ylabel="current density (mA/cm²)", title="J–V")
    ax_pv.set(xlabel="voltage (V)", ylabel="power density (mW/cm²)", title="P–V")
    ax_pv.set_ylim(bottom=0)
    handles = [Line2D([], [], color=colour[rate], lw=2, label=f"{rate:g} V/s") for rate in sorted(colour)]
    handles += [Line2D([], [], color="0.3", ls="-", label="reverse (RS)"),
                Line2D([], [], color="0.3", ls="--", label="forward (FS)")]
    if len(repeats) > 1:
        handles.append(Line2D([], [], color="0.3", lw=0.8, alpha=0.5,
                              label=("repeat 2" if len(repeats) == 2 else f"repeats 2–{len(repeats)}")
                              + ": thinner, lighter"))
    ax_pv.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.suptitle(title, fontsize=10)
    return fig


def figure_hysteresis(hysteresis: list[dict[str, Any]], title: str) -> Figure:
    """Hysteresis indices against scan rate: every repeat as a point, the mean over repeats as a line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8), constrained_layout=True)
    pixels = sorted({h["pixel"] for h in hysteresis})
    markers = {"hi_pce": "o", "hi_j08": "s", "hi_area": "^"}
    for p_index, pixel in enumerate(pixels):
        rows = [h for h in hysteresis if h["pixel"] == pixel]
        rates = sorted({h["scan_rate_V_s"] for h in rows})
        for k_index, (key, marker) in enumerate(markers.items()):
            colour = f"C{(p_index * len(markers) + k_index) % 10}"
            x = [h["scan_rate_V_s"] for h in rows]
            y = [np.nan if h[key] is None else h[key] for h in rows]
            ax.plot(x, y, marker, color=colour, ls="none", alpha=0.7)
            means = [np.nanmean([yy for xx, yy in zip(x, y, strict=True) if xx == rate] or [np.nan])
                     for rate in rates]
            label = HI_LABELS[key] if len(pixels) == 1 else f"{pixel} {HI_LABELS[key]}"
            ax.plot(rates, means, "-", color=colour, marker=marker, markerfacecolor="none", label=label)
    ax.set_xscale("log")
    ax.axhline(0, color="0.6", lw=0.8)
    repeats = max((h["repeat"] for h in hysteresis), default=0) + 1
    note = f" (points: {repeats} repeats; line: their mean)" if repeats > 1 else ""
    ax.set(xlabel="scan rate (V/s)", ylabel="hysteresis index (RS − FS)/RS",
           title=f"hysteresis vs scan rate{note}")
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def figure_spo(block: BlockData, spo: dict[str, Any], tolerance: float, title: str) -> Figure:
    """The hold at Vmpp as PCE over time, with the settling band and time the analysis found."""
    import matplotlib.pyplot as plt

    irradiance = float(block.attrs.get("irradiance_mW_cm2", 100.0)) or 100.0
    t = block["time_s"]
    pce = 100.0 * block["power_mW_cm2"] / irradiance
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    ax.plot(t, pce, color="C0", lw=1.2, label="PCE at Vmpp")
    level = spo.get("spo_pce_pct")
    if level is not None:
        ax.axhline(level, color="C3", ls=":", label=f"SPO {level:.2f} %")
        ax.axhspan(level * (1 - tolerance), level * (1 + tolerance), color="C3", alpha=0.08,
                   label=f"±{100 * tolerance:g} % band")
        settling = spo.get("settling_s")
        if settling is not None:
            ax.axvline(float(t[0]) + settling, color="0.4", ls="--", lw=0.8,
                       label=f"within the band from {settling:.1f} s")
        else:
            ax.text(0.02, 0.04, "never settled within the band", transform=ax.transAxes, color="C3")
        half = max(SPO_MIN_HALF_SPAN * abs(level), 0.6 * float(np.ptp(pce)))
        centre = 0.5 * (float(np.min(pce)) + float(np.max(pce)))
        ax.set_ylim(min(centre - half, level - half), max(centre + half, level + half))
    vmpp = block.attrs.get("vmpp_V")
    at = f" at {float(vmpp):.3f} V" if vmpp is not None and math.isfinite(float(vmpp)) else ""
    ax.set(xlabel="time at Vmpp (s)", ylabel="PCE (%)", title=f"stabilised power output{at}")
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    return fig


def figure_dark_jv(pixel: str, dark_rows: list[dict[str, Any]], blocks: dict[str, BlockData], title: str) -> Figure:
    """Dark scans of one pixel as |J| on a log axis, with the exponential region the diode fit used."""
    import matplotlib.pyplot as plt

    rows = [r for r in dark_rows if r["pixel"] == pixel]
    colour = rate_colours(sorted({r["scan_rate_V_s"] for r in rows}))
    fig, ax = plt.subplots(figsize=(7, 4.8), constrained_layout=True)
    for row in rows:
        block = blocks[row["block"]]
        v, j = block["voltage_V"], np.abs(block["current_density_mA_cm2"])
        shown = j > 0
        label = f"{row['direction']} {row['scan_rate_V_s']:g} V/s"
        if "ideality" in row:
            label += f": n = {row['ideality']:.2f}, J0 = {row['j0_mA_cm2']:.2g} mA/cm²"
        ax.semilogy(v[shown], j[shown], "-" if row["direction"] == "RS" else "--",
                    color=colour[row["scan_rate_V_s"]], label=label)
    top = max((float(np.max(np.abs(blocks[r["block"]]["current_density_mA_cm2"]))) for r in rows), default=0.0)
    if top > 0:  # the zero crossing near 0 V dips to the noise floor: not a feature worth six decades
        ax.set_ylim(bottom=1e-6 * top)
    windows = [r["fit_window_V"] for r in rows if "fit_window_V" in r]
    if windows:
        ax.axvspan(min(w[0] for w in windows), max(w[1] for w in windows), color="0.85", zorder=0,
                   label="exponential region fitted")
    ax.set(xlabel="voltage (V)", ylabel="|current density| (mA/cm²)", title="dark J–V")
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig
