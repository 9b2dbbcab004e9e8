"""TAS sweep files: trap depths Et, ξ0, densities and the trap DOS (``labctl.analysis.tas``), and the PNG report.

Each ``tas_*`` block is one temperature's C(f), G(f); the analysis uses the *measured* temperature (the block's
``temperature_K``), the block's area, the run's ε_r and V_bi (the parameter when given, else the Mott–Schottky
result of the run's ``cv_reference`` block). A temperature measured twice (a resumed run) counts once, with
its newest block.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from labctl.analysis.arrhenius import K_B_EV_K
from labctl.analysis.tas import Spectrum, TASAnalysisError, TASResult, analyze_tas
from labctl.reports.cv import clean, plot_reference_cv
from labctl.reports.tid import space_charge
from labctl.store import BlockData, RunReader


def tas_blocks(reader: RunReader) -> list[BlockData]:
    newest: dict[float, BlockData] = {}
    for name in reader.block_names():
        if name.startswith("tas_"):
            block = reader.block(name)
            if block["frequency_Hz"].size:
                newest[float(block.attrs["setpoint_K"])] = block
    return list(newest.values())


def tas_result(reader: RunReader) -> tuple[TASResult | None, dict[str, Any], list[BlockData]]:
    blocks = tas_blocks(reader)
    charge = space_charge(reader)
    if len(blocks) < 1 or not math.isfinite(charge["v_bi_V"]):
        return None, charge, blocks
    spectra = [Spectrum(float(b.attrs["temperature_K"]), b["frequency_Hz"], b["capacitance_F"], b["conductance_S"])
               for b in blocks]
    result = analyze_tas(spectra, area_cm2=float(blocks[0].attrs["area_cm2"]), eps_r=charge["eps_r"],
                         v_bi_V=charge["v_bi_V"])
    return result, charge, blocks


def analyze_tas_file(reader: RunReader) -> dict[str, Any]:
    """``{"traps": [{"et_eV", "et_err_eV", "xi0", "temperatures_K", "omega0_rad_s", "n_t_cm3"}], "tdos": {...},
    "unassigned": [...], "spectra": [...], "v_bi_V", "v_bi_source", "eps_r"}``."""
    try:
        result, charge, blocks = tas_result(reader)
    except TASAnalysisError as exc:
        return {"traps": [], "tdos": {}, "note": str(exc)}
    out: dict[str, Any] = {"v_bi_V": charge["v_bi_V"], "eps_r": charge["eps_r"],
                           "v_bi_source": "given" if reader.parameters.get("v_bi_V") else "reference C–V"}
    if "reference_cv" in charge:
        out["reference_cv"] = charge["reference_cv"]
    if result is None:
        out.update(traps=[], tdos={}, note="no TAS spectrum in this file" if not blocks else
                   "no V_bi: give v_bi_V or measure the reference C–V")
        return clean(out)
    return clean({**result.as_dict(), **out})


def print_tas(result: dict[str, Any], console: Console) -> None:
    if "note" in result and not result.get("traps"):
        console.print(f"TAS: {result['note']}")
        return
    table = Table(title=f"traps (Arrhenius of ln(ω0/T²); V_bi = {result['v_bi_V']:.3f} V, {result['v_bi_source']})")
    for column in ("Et (eV)", "ξ0 (s⁻¹K⁻²)", "N_t (cm⁻³)", "temperatures (K)"):
        table.add_column(column, justify="right")
    for trap in result["traps"]:
        err = "n/a" if trap["et_err_eV"] is None else f"{trap['et_err_eV']:.4f}"
        temps = trap["temperatures_K"]
        table.add_row(f"{trap['et_eV']:.4f} ± {err}", f"{trap['xi0']:.3g}", f"{trap['n_t_cm3']:.3g}",
                      f"{len(temps)}: {min(temps):.0f} … {max(temps):.0f}")
    console.print(table)
    for row in result.get("unassigned", []):
        console.print(f"  not assigned: {row['temperature_K']:.1f} K, ω0 = {row['omega0_rad_s']:.3g} rad/s: "
                      f"{row['reason']}")


def plot_tas_report(path: Path, out_dir: Path) -> list[Path]:
    """C(f) and −f·dC/df per temperature with the fitted inflections; the Arrhenius plot of the traps; the trap
    DOS on its common energy axis; the reference C–V when the run measured one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with RunReader(path) as reader:
        result, charge, blocks = tas_result(reader)
        sample = str(reader.parameters.get("sample", ""))
        written += plot_reference_cv(reader, charge["eps_r"], out_dir, path.stem, sample)
        if blocks:
            written.append(_plot_spectra(plt, blocks, result, out_dir / f"{path.stem}_spectra.png", sample))
    if result is not None and result.traps:
        written.append(_plot_arrhenius(plt, result, out_dir / f"{path.stem}_arrhenius.png", sample))
    if result is not None and result.tdos.get("curves"):
        written.append(_plot_dos(plt, result, out_dir / f"{path.stem}_trap_dos.png", sample))
    return written


def _robust_ylim(ax: Any, values: list[float]) -> None:
    """A y range that shows the bands rather than the noisy edge points (those may leave the frame: the
    low-frequency end of a spectrum, where the leakage dominates)."""
    v = np.asarray([x for x in values if math.isfinite(x)])
    if v.size < 10:
        return
    low, high = np.percentile(v, [2, 98])
    span = max(high, 0.0) - min(low, 0.0)
    if span > 0:
        ax.set_ylim(min(low, 0.0) - 0.15 * span, max(high, 0.0) + 0.3 * span)


def _colours(plt: Any, temps: list[float]) -> tuple[Any, Any]:
    cmap = plt.get_cmap("coolwarm")
    return cmap, plt.Normalize(min(temps) - 1e-9, max(temps) + 1e-9)


def _plot_spectra(plt: Any, blocks: list[BlockData], result: TASResult | None, out: Path, sample: str) -> Path:
    fig, (ax_c, ax_d) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    temps = [float(b.attrs["temperature_K"]) for b in blocks]
    cmap, norm = _colours(plt, temps)
    fits = {f.temperature_K: f for f in result.fits} if result is not None else {}
    for block, temperature in zip(blocks, temps, strict=True):
        f, c = np.asarray(block["frequency_Hz"]), np.asarray(block["capacitance_F"])
        colour = cmap(norm(temperature))
        ax_c.plot(f, c * 1e9, "-", lw=1, color=colour)
        fit = fits.get(temperature)
        if fit is not None:  # −f·dC/df of the device (Rs removed) inside the analysis window
            lo, hi = fit.window_Hz
            inside = (fit.frequency_Hz >= lo) & (fit.frequency_Hz <= hi)
            fw, cw = fit.frequency_Hz[inside], fit.device_capacitance_F[inside]
            if fw.size > 2:
                ax_d.plot(fw, -np.gradient(cw, np.log(fw)) * 1e9, "-", lw=1, color=colour)
            for inflection in fit.inflections:
                f0 = inflection.omega0_rad_s / (2 * np.pi)
                ax_d.axvline(f0, color=colour, lw=0.6, ls=":")
    _robust_ylim(ax_d, [v for line in ax_d.get_lines() for v in np.asarray(line.get_ydata(), dtype=float)])
    ax_c.set(xscale="log", xlabel="frequency (Hz)", ylabel="C (nF, as measured)", title=f"{sample}: C(f)")
    ax_d.set(xscale="log", xlabel="frequency (Hz)", ylabel="−dC/d ln f (nF)",
             title="−dC/d ln f, Rs removed, analysis window (dotted: fitted inflections)")
    fig.colorbar(plt.cm.ScalarMappable(cmap=cmap, norm=norm), ax=ax_d, label="measured temperature (K)")
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _plot_arrhenius(plt: Any, result: TASResult, out: Path, sample: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 5), constrained_layout=True)
    for k, trap in enumerate(result.traps):
        temps = np.asarray(trap.temperatures_K)
        y = np.log(np.asarray(trap.omega0_rad_s) / temps**2)
        colour = f"C{k}"
        err = "" if not math.isfinite(trap.et_err_eV) else f" ± {trap.et_err_eV:.4f}"
        ax.plot(1000 / temps, y, "o", color=colour, ls="none")
        x = np.linspace(1000 / temps.max(), 1000 / temps.min(), 50)
        ax.plot(x, math.log(2 * trap.xi0_s_K2) - trap.et_eV / K_B_EV_K * x / 1000, "-", color=colour,
                label=f"Et = {trap.et_eV:.4f}{err} eV, ξ0 = {trap.xi0_s_K2:.2g} s⁻¹K⁻²")
    ax.set(xlabel="1000/T (1/K)", ylabel="ln(ω0/T²)  (s⁻¹K⁻²)", title=f"{sample}: TAS Arrhenius")
    ax.legend(fontsize=8)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _plot_dos(plt: Any, result: TASResult, out: Path, sample: str) -> Path:
    fig, ax = plt.subplots(figsize=(7.5, 5), constrained_layout=True)
    curves = result.tdos["curves"]
    cmap, norm = _colours(plt, [c["temperature_K"] for c in curves])
    for curve in curves:
        ax.plot(curve["energy_eV"], curve["n_t_cm3_eV"], "-", lw=1, color=cmap(norm(curve["temperature_K"])))
    for trap in result.traps:
        ax.axvline(trap.et_eV, color="k", lw=0.8, ls="--")
        ax.annotate(f"{trap.et_eV:.3f} eV", (trap.et_eV, 1.0), xycoords=("data", "axes fraction"),
                    ha="left", va="top", fontsize=8, rotation=90)
    _robust_ylim(ax, [v for c in curves for v in c["n_t_cm3_eV"]])
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(xlabel="E_ω = kT·ln(2ξ0T²/ω) (eV)", ylabel="N_t (cm⁻³ eV⁻¹)",
           title=f"{sample}: trap density of states (ξ0 = {result.tdos['xi0_s_K2']:.2g} s⁻¹K⁻², "
                 f"V_bi = {result.tdos['v_bi_V']:.3f} V)")
    fig.colorbar(plt.cm.ScalarMappable(cmap=cmap, norm=norm), ax=ax, label="measured temperature (K)")
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
