"""Ion migration and defects on the simulated cryostat bench, through the instruments: the full TID sweep
(300 → 200 K in 10 K steps, realistic ramps and stabilisation), TAS (280–350 K) and C–V (300 K) for the
presets, each analysed and compared with the model's own parameters; wall-clock time of each sweep.

Every measurement goes through the drivers (Keysight E4980A: DC-bias pulse, buffered capture, spot C–G;
Lake Shore 336: ramp, ``wait_until_stable``; Newport LSS-7120 for light) and the mocks, on virtual time. The
station is a one-cell cryostat station written as a station file (tests/cryostat_bench.py).

    .venv/bin/python bench/ion_migration.py [--quick] [--only tid|tas|cv]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from cryostat_bench import cryostat_bench

from labctl.analysis.cv import mott_schottky
from labctl.analysis.tas import Spectrum, analyze_tas
from labctl.analysis.tid import TIDTransient, analyze_tid
from procedures.ion_migration import (
    Readings,
    TIDCapture,
    cv_sweep,
    hold_present_temperature,
    settle_temperature,
    tas_sweep,
    tid_sweep,
)

TID_PRESETS = ["fapbi3", "fapbi3_fai5", "fapbibr_2p5", "fapbibr_15", "fapbibr_25"]
TAS_PRESETS = ["fapbi3", "fapbi3_fai5", "fapbibr_2p5", "fapbibr_15", "fapbibr_25", "wbg_ref", "wbg_5avai"]


def tid(preset: str, suns: float, temperatures: list[float]) -> None:
    start = time.perf_counter()
    bench = cryostat_bench(preset)
    try:
        virtual_start = bench.clock.now()
        points = list(tid_sweep(bench.lcr, bench.cryo, bench.clock, temperatures, light=bench.light, suns=suns))
        wall = time.perf_counter() - start
        virtual_h = (bench.clock.now() - virtual_start) / 3600
        cell = bench.cell
        transients = []
        for p in points:
            assert isinstance(p.result, TIDCapture)
            transients.append(TIDTransient(p.temperature_mean_K, p.result.time_s, p.result.capacitance_F,
                                           p.result.integration_s, pulse_s=p.result.protocol.pulse_s))
        result = analyze_tid(transients, n_a_cm3=cell.n_a_cm3, eps_r=cell.eps_r)
    finally:
        bench.close()
    model = {"anion": (cell.ea_anion_eV, cell.n_ion_anion_cm3),
             "cation": (cell.ea_cation_eV, cell.n_ion_cation_cm3 * suns / (suns + cell.cation_activation_suns))}
    for sp in result.species:
        ea, n = model[sp.sign]
        print(f"| {preset} | {'dark' if not suns else f'{suns:g} sun'} | {sp.sign} | {sp.ea_eV:.4f} ± "
              f"{sp.ea_err_eV:.4f} | {ea:.3f} | {sp.n_ion_cm3:.3g} | {n:.3g} ({sp.n_ion_cm3 / n - 1:+.1%}) | "
              f"{len(sp.temperatures_K)}/{len(points)} | {wall:.1f} | {virtual_h:.2f} |")
    if not any(sp.sign == "cation" for sp in result.species) and suns:
        print(f"| {preset} | {suns:g} sun | cation | none found | – | – | {model['cation'][1]:.3g} | – | – | – |")


def tas(preset: str, temperatures: list[float], points_per_decade: int) -> None:
    start = time.perf_counter()
    bench = cryostat_bench(preset)
    try:
        points = list(tas_sweep(bench.lcr, bench.cryo, bench.clock, temperatures,
                                points_per_decade=points_per_decade, ac_level_V=0.05))
        cell = bench.cell
        spectra = []
        for p in points:
            assert isinstance(p.result, Readings)
            spectra.append(Spectrum(p.temperature_mean_K, p.result.x, p.result.capacitance_F,
                                    p.result.conductance_S))
        result = analyze_tas(spectra, area_cm2=cell.area_cm2, eps_r=cell.eps_r, v_bi_V=cell.v_bi_V)
    finally:
        bench.close()
    wall = time.perf_counter() - start
    levels = sorted(cell.trap_levels(), key=lambda td: td[0].depth_eV)
    found = " / ".join(f"{t.et_eV:.4f} ± {t.et_err_eV:.4f}" for t in result.traps)
    given = " / ".join(f"{t.depth_eV:.2f}" for t, _ in levels)
    n_found = " / ".join(f"{t.n_t_cm3:.3g}" for t in result.traps)
    n_given = " / ".join(f"{d:.3g}" for _, d in levels)
    print(f"| {preset} | {found} | {given} | {n_found} | {n_given} | {wall:.1f} |")


def cv(preset: str) -> None:
    bench = cryostat_bench(preset)
    try:
        hold_present_temperature(bench.cryo)
        settle_temperature(bench.cryo, bench.clock, 300.0)
        readings = cv_sweep(bench.lcr, bench.clock, np.round(np.arange(-1.0, 0.601, 0.05), 3), settle_s=2.0)
        cell = bench.cell
        result = mott_schottky(readings.x, readings.capacitance_F, area_cm2=cell.area_cm2, eps_r=cell.eps_r,
                               temperature_K=bench.cryo.read_temperature_K())
    finally:
        bench.close()
    print(f"| {preset} | {result.n_a_cm3:.4g} | {cell.n_a_cm3:.3g} ({result.n_a_cm3 / cell.n_a_cm3 - 1:+.1%}) | "
          f"{result.v_bi_V:.3f} | {cell.v_bi_V:.2f} | {result.fit_window_V[0]:g} … {result.fit_window_V[1]:g} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer presets and temperatures")
    parser.add_argument("--only", choices=["tid", "tas", "cv"])
    args = parser.parse_args()
    tid_temps = [300.0, 265.0, 230.0, 200.0] if args.quick else [float(t) for t in range(300, 199, -10)]
    tas_temps = [280.0, 315.0, 350.0] if args.quick else [float(t) for t in range(280, 351, 10)]
    if args.only in (None, "tid"):
        print("TID (300 → 200 K): | preset | light | species | Ea (eV) | model | N_ion (cm⁻³) | model | "
              "temperatures used | wall s | virtual h |")
        for preset in TID_PRESETS[:2] if args.quick else TID_PRESETS:
            tid(preset, 0.0, tid_temps)
        for preset in ("fapbi3", "fapbibr_2p5"):
            tid(preset, 1.0, tid_temps)
    if args.only in (None, "tas"):
        print("TAS: | preset | Et found (eV) | model | N_t found (cm⁻³) | model | wall s |")
        for preset in TAS_PRESETS[:2] if args.quick else TAS_PRESETS:
            tas(preset, tas_temps, 10 if args.quick else 20)
    if args.only in (None, "cv"):
        print("C–V at 300 K, 10 kHz: | preset | N_A found | model | V_bi found | model | window (V) |")
        for preset in TAS_PRESETS:
            cv(preset)


if __name__ == "__main__":
    main()
