"""The TID sweep procedure end to end, as `labctl run tid` runs it: the runner, the store, the E4980A and Lake
Shore 336 drivers and mocks on virtual time, the analysis a completed run gets; the default protocol (300 → 200 K
in 10 K steps, 5 K/min ramps, ±0.1 K for 60 s, 60 s for the sample, +1 V for 5 s, 10 s captures, 3 repeats, a
reference C–V for N_A). Prints the wall-clock time, the virtual time and the species found against the model's.

    .venv/bin/python bench/tid_sweep.py [--station sim|cryostat] [--light]

``sim`` is the built-in station (eight simulated cells: the runner's snapshots of the simulated world at its
checkpoints evolve all of them); ``cryostat`` a one-cell cryostat station file (tests/cryostat_bench.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from cryostat_bench import station_text

from labctl.runner import Runner
from labctl.station import Station
from labctl.store import RunReader
from mock_instruments.presets import preset
from procedures.tid_sweep import TIDSweep


def one(station_kind: str, preset_name: str, suns: float) -> None:
    if station_kind == "sim":
        station, sample = Station.load("sim"), preset_name
    else:
        station, sample = Station.from_text(station_text(preset_name), source="<cryostat>"), "cell"
    cell = preset(preset_name)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = Runner(TIDSweep(sample=sample, suns=suns), station=station, directory=Path(tmp)).run()
        wall = time.perf_counter() - start
        with RunReader(result.path) as reader:
            events = reader.events()
            virtual_h = (events[-1].time_s - events[0].time_s) / 3600
    assert result.status == "completed", result.reason
    assert result.analysis is not None
    light = "dark" if not suns else f"{suns:g} sun"
    model = {"anion": (cell.ea_anion_eV, cell.n_ion_anion_cm3), "cation": (cell.ea_cation_eV, None)}
    for s in result.analysis["species"]:
        ea, n_ion = model[s["sign"]]
        n_text = f"{s['n_ion_cm3']:.3g} ({s['n_ion_cm3'] / n_ion - 1:+.1%})" if n_ion else f"{s['n_ion_cm3']:.3g}"
        print(f"| {station_kind} | {preset_name} | {light} | {s['sign']} | {s['ea_eV']:.4f} ± {s['ea_err_eV']:.4f} | "
              f"{ea:.3f} | {n_text} | {len(s['temperatures_K'])}/11 | {wall:.1f} | {virtual_h:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--station", choices=["sim", "cryostat"], default=None, help="only this station")
    parser.add_argument("--light", action="store_true", help="also the runs under 1 sun")
    args = parser.parse_args()
    print("| station | preset | light | species | Ea found (eV) | model | N_ion found (cm⁻³) | temperatures | "
          "wall s | virtual h |")
    for kind in [args.station] if args.station else ["sim", "cryostat"]:
        for name in ("fapbi3", "fapbibr_2p5"):
            one(kind, name, 0.0)
        if args.light:
            for name in ("fapbi3", "fapbibr_2p5"):
                one(kind, name, 1.0)


if __name__ == "__main__":
    main()
