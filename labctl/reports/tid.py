"""TID sweep files: mobile-ion species (Ea, D0, N_ion) from the transients, and the PNG report.

Each ``tid_*`` block is one temperature's averaged transient; the analysis uses the *measured* temperature
(the block's ``temperature_K``, mean of the readings around the capture), the meter's integration window and
the pulse length (``labctl.analysis.tid``). N_A is the run's parameter when given, else the Mott–Schottky
result of its ``cv_reference`` block; ε_r is the run's parameter. A temperature measured twice (a resumed run
that redid it) counts once, with its newest block.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from labctl.analysis.arrhenius import EPS0_F_M, K_B_EV_K, K_B_J_K, Q_C
from labctl.analysis.cv import CVAnalysisError
from labctl.analysis.tid import TIDAnalysisError, TIDResult, TIDTransient, TransientFit, analyze_tid
from labctl.reports.cv import clean, cv_block, mott_schottky_of_block, plot_reference_cv
from labctl.store import BlockData, RunReader


def tid_blocks(reader: RunReader) -> list[BlockData]:
    """One block per setpoint (the newest), in the order measured."""
    newest: dict[float, BlockData] = {}
    for name in reader.block_names():
        if name.startswith("tid_"):
            block = reader.block(name)
            if block["time_s"].size:
                newest[float(block.attrs["setpoint_K"])] = block
    return list(newest.values())


def space_charge(reader: RunReader) -> dict[str, Any]:
    """N_A and V_bi: the run's parameters when given, else the reference C–V's (with where they came from)."""
    params = reader.parameters
    eps_r = float(params.get("eps_r", 35.0))
    out: dict[str, Any] = {"eps_r": eps_r, "n_a_cm3": float(params.get("n_a_cm3") or math.nan),
                           "v_bi_V": float(params.get("v_bi_V") or math.nan), "n_a_source": "given"}
    block = cv_block(reader, "cv_reference")
    if block is not None:
        try:
            ms = mott_schottky_of_block(block, eps_r=eps_r)
        except CVAnalysisError as exc:
            out["cv_note"] = str(exc)
        else:
            out["reference_cv"] = {**ms.as_dict(), "temperature_K": float(block.attrs["temperature_K"]),
                                   "frequency_Hz": float(block.attrs["frequency_Hz"])}
            if not math.isfinite(out["n_a_cm3"]):
                out["n_a_cm3"], out["n_a_source"] = ms.n_a_cm3, f"C–V at {block.attrs['temperature_K']:.1f} K"
            if not math.isfinite(out["v_bi_V"]):
                out["v_bi_V"] = ms.v_bi_V
    return out


def tid_result(reader: RunReader) -> tuple[TIDResult | None, dict[str, Any], list[BlockData]]:
    blocks = tid_blocks(reader)
    charge = space_charge(reader)
    if not blocks or not math.isfinite(charge["n_a_cm3"]):
        return None, charge, blocks
    transients = [TIDTransient(float(b.attrs["temperature_K"]), b["time_s"], b["capacitance_F"],
                               float(b.attrs.get("integration_s", 0.0)), pulse_s=float(b.attrs["pulse_s"]))
                  for b in blocks]
    return analyze_tid(transients, n_a_cm3=charge["n_a_cm3"], eps_r=charge["eps_r"]), charge, blocks


def analyze_tid_file(reader: RunReader) -> dict[str, Any]:
    """``{"species": [{"sign", "ea_eV", "ea_err_eV", "d0_cm2_s", "n_ion_cm3", "temperatures_K", ...}],
    "excluded": [...], "transients": [...], "n_a_cm3", "n_a_source", "v_bi_V", "light", "frequency_Hz"}``."""
    try:
        result, charge, blocks = tid_result(reader)
    except TIDAnalysisError as exc:
        return {"species": [], "note": str(exc)}
    out: dict[str, Any] = {"n_a_source": charge["n_a_source"], "v_bi_V": charge["v_bi_V"],
                           "eps_r": charge["eps_r"]}
    if blocks:
        out["light"] = str(blocks[0].attrs.get("light", ""))
        out["frequency_Hz"] = float(blocks[0].attrs.get("frequency_Hz", math.nan))
    if "reference_cv" in charge:
        out["reference_cv"] = charge["reference_cv"]
    if result is None:
        out["species"], out["n_a_cm3"] = [], charge["n_a_cm3"]
        out["note"] = ("no TID transient in this file" if not blocks else
                       "no N_A: give n_a_cm3 or measure the reference C–V")
        return clean(out)
    return clean({**result.as_dict(), **out})


def print_tid(result: dict[str, Any], console: Console) -> None:
    if "note" in result and not result.get("species"):
        console.print(f"TID: {result['note']}")
        return
    console.print(f"TID ({result.get('light', '')}, {result.get('frequency_Hz', math.nan):g} Hz): N_A = "
                  f"{result['n_a_cm3']:.3g} cm⁻³ ({result['n_a_source']}), ε_r = {result['eps_r']:g}")
    table = Table(title="mobile-ion species (Ea from ln(T/τ) vs 1/T)")
    for column in ("species", "Ea (eV)", "D0 (cm²/s)", "N_ion (cm⁻³)", "temperatures (K)"):
        table.add_column(column, justify="right")
    for s in result["species"]:
        err = "n/a" if s["ea_err_eV"] is None else f"{s['ea_err_eV']:.4f}"
        temps = s["temperatures_K"]
        table.add_row(f"{s['sign']} ({'decaying' if s['sign'] == 'anion' else 'rising'})",
                      f"{s['ea_eV']:.4f} ± {err}", f"{s['d0_cm2_s']:.3g}", f"{s['n_ion_cm3']:.3g}",
                      f"{len(temps)}: {max(temps):.0f} … {min(temps):.0f}")
    console.print(table)
    for row in result.get("excluded", []):
        console.print(f"  not used: {row['temperature_K']:.1f} K {row['sign']}: {row['reason']}")


def fitted_curve(fit: TransientFit, time_s: np.ndarray, integration_s: float) -> np.ndarray:
    """The chosen model C(t) = C∞·√(1 + Σ aᵢ·e^(−t/τᵢ)·sinh(xᵢ)/xᵢ), xᵢ = w/(2τᵢ) (labctl.analysis.tid)."""
    total = np.ones_like(time_s)
    for comp in fit.components:
        x = integration_s / (2 * comp.tau_s)
        window = math.sinh(min(x, 300.0)) / x if x > 1e-6 else 1.0
        total = total + comp.amplitude * np.exp(-time_s / comp.tau_s) * window
    return np.asarray(fit.c_inf_F * np.sqrt(np.clip(total, 0.0, None)))


def plot_tid_report(path: Path, out_dir: Path) -> list[Path]:
    """Transients per temperature on a log time axis with their fits; the Arrhenius plot with each species'
    line; the reference C–V's Mott–Schottky plot when the run measured one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with RunReader(path) as reader:
        result, charge, blocks = tid_result(reader)
        sample = str(reader.parameters.get("sample", ""))
        written += plot_reference_cv(reader, charge["eps_r"], out_dir, path.stem, sample)
        if blocks:
            written.append(_plot_transients(plt, blocks, result, out_dir / f"{path.stem}_transients.png", sample))
        if result is not None:
            written.append(_plot_arrhenius(plt, result, charge["eps_r"], out_dir / f"{path.stem}_arrhenius.png",
                                           sample))
    return written


def _plot_transients(plt: Any, blocks: list[BlockData], result: TIDResult | None, out: Path, sample: str) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5.5), constrained_layout=True)
    temps = [float(b.attrs["temperature_K"]) for b in blocks]
    lo, hi = min(temps), max(temps)
    cmap = plt.get_cmap("coolwarm")
    norm = plt.Normalize(lo - 1e-9, hi + 1e-9)
    for block, temperature in zip(blocks, temps, strict=True):
        t, c = np.asarray(block["time_s"]), np.asarray(block["capacitance_F"])
        fit = result.fits.get(temperature) if result is not None else None
        c_inf = fit.c_inf_F if fit is not None else float(np.median(c[-10:]))
        colour = cmap(norm(temperature))
        ax.plot(t, 100 * (c / c_inf - 1), ".", ms=2.5, color=colour)
        if fit is not None:
            ax.plot(t, 100 * (fitted_curve(fit, t, float(block.attrs.get("integration_s", 0.0))) / c_inf - 1),
                    "-", lw=1.0, color=colour)
    ax.set_xscale("log")
    ax.axhline(0, color="0.5", lw=0.8)
    light = str(blocks[0].attrs.get("light", ""))
    freq = float(blocks[0].attrs.get("frequency_Hz", math.nan))
    ax.set(xlabel="time after the bias step (s)", ylabel="(C − C∞)/C∞ (%)",
           title=f"{sample}: TID transients, {light}, {freq:g} Hz (points: data, lines: fit)")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=norm)
    fig.colorbar(sm, ax=ax, label="measured temperature (K)")
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _inverse_milli(x: Any) -> Any:
    """1000/x both ways (1000/T ↔ T) for a secondary axis; 0 stays out of the way."""
    x = np.asarray(x, dtype=float)
    return np.divide(1000.0, x, out=np.full_like(x, np.inf), where=x != 0)


def _plot_arrhenius(plt: Any, result: TIDResult, eps_r: float, out: Path, sample: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 5), constrained_layout=True)
    markers = {"anion": ("o", "C0"), "cation": ("s", "C3")}
    for s in result.species:
        marker, colour = markers.get(s.sign, ("^", "C2"))
        temps = np.asarray(s.temperatures_K)
        y = np.log(temps / np.asarray(s.tau_s))
        ax.plot(1000 / temps, y, marker, color=colour, ls="none",
                label=f"{s.sign} ({'decaying' if s.sign == 'anion' else 'rising'}): {len(temps)} temperatures")
        x_line = np.linspace(1000 / temps.max(), 1000 / temps.min(), 50)
        # the fitted line itself: ln(T/τ) = ln(q²·N_A·D0/(k·ε·ε0)) − Ea/(kT)
        intercept = math.log(s.d0_cm2_s * 1e-4 * Q_C**2 * result.n_a_cm3 * 1e6 / (K_B_J_K * eps_r * EPS0_F_M))
        err = "" if not math.isfinite(s.ea_err_eV) else f" ± {s.ea_err_eV:.4f}"
        ax.plot(x_line, intercept - s.ea_eV / K_B_EV_K * x_line / 1000, "-", color=colour,
                label=f"fit: Ea = {s.ea_eV:.4f}{err} eV, D0 = {s.d0_cm2_s:.2g} cm²/s")
    excluded = [e for e in result.excluded if math.isfinite(e.get("tau_s", math.nan))]
    if excluded:
        t_ex = np.array([e["temperature_K"] for e in excluded])
        ax.plot(1000 / t_ex, np.log(t_ex / np.array([e["tau_s"] for e in excluded])), "x", color="0.5",
                label="not used (τ outside the window or uncertain)")
    ax.set(xlabel="1000/T (1/K)", ylabel="ln(T/τ)  (K/s)", title=f"{sample}: Arrhenius of the TID time constants")
    top = ax.secondary_xaxis("top", functions=(_inverse_milli, _inverse_milli))
    top.set_xlabel("T (K)")
    ax.legend(fontsize=8)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
