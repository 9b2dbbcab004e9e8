"""`labctl demo`: the main jobs on the simulated bench, start to finish in a few minutes.

J–V hysteresis at three scan rates on the wide-bandgap reference cell (strong hysteresis) and the
5-AVAI-passivated cell (almost none), each with a stabilised-power hold; then a dark TID sweep of the FAPbI3 cell
in the cryostat (300 → 200 K in 10 K steps, the seed's +1 V / 5 s pulse, a reference C–V for N_A) with its
halide activation energy and Arrhenius plot; then 200 h of ISOS-L-1 aging (1 sun, MPP tracked) of the reference
cell, the passivated cell and the all-perovskite tandem side by side, in virtual time. HDF5 files,
metrics and PNG reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from labctl.errors import LabctlError

DEMO_RATES_V_S = [0.01, 0.1, 1.0]
DEMO_SAMPLES = ["wbg_ref", "wbg_5avai"]
DEMO_TID_SAMPLE = "fapbi3"
DEMO_AGING_SAMPLES = ["wbg_ref", "wbg_5avai", "tandem"]
DEMO_AGING_H = 200.0
#: One tracking point a minute, and turns of 15 min for the two cells that share an SMU through the switch,
#: keep the 200 h rehearsal near a minute of real time.
DEMO_AGING_INTERVAL_S = 60.0
DEMO_SWITCHED_HOLD_S = 900.0


class DemoRunFailed(LabctlError):
    """A demo run ended other than completed (the CLI exits 1, as for `labctl run`; 2 is bad input)."""


def run_demo(out_dir: Path, console: Console) -> list[Path]:
    """Run the demo into ``out_dir``; returns the data files and figures written."""
    from labctl.station import Station
    from procedures.jv_hysteresis import JVHysteresis
    from procedures.tid_sweep import TIDSweep

    out_dir.mkdir(parents=True, exist_ok=True)
    station = Station.load("sim")
    written: list[Path] = []
    console.print(f"[bold]labctl demo[/] on the simulated station: J–V hysteresis at "
                  f"{', '.join(f'{r:g}' for r in DEMO_RATES_V_S)} V/s on {', '.join(DEMO_SAMPLES)}")
    for sample in DEMO_SAMPLES:
        proc = JVHysteresis(sample=[sample], v_min_V=-0.1, v_max_V=1.45, step_V=0.01,
                            scan_rates_V_s=DEMO_RATES_V_S, direction="RS+FS", nplc=0.1, suns=1.0,
                            prebias_V=1.5, prebias_s=5.0, spo_s=60.0)
        written += _run(proc, f"J–V {sample}", station, out_dir, console)
    console.print(f"[bold]TID[/] on {DEMO_TID_SAMPLE} in the cryostat, dark, 300 → 200 K in 10 K steps")
    written += _run(TIDSweep(sample=DEMO_TID_SAMPLE), f"TID {DEMO_TID_SAMPLE}", station, out_dir, console)
    written += run_aging_demo(out_dir, console)
    console.print("[bold]files:[/]")
    for path in written:
        console.print(f"  {path}")
    return written


def run_aging_demo(out_dir: Path, console: Console) -> list[Path]:
    """200 h of ISOS-L-1 on several cells (virtual time), its analysis and report."""
    from labctl.station import Station
    from procedures.mppt_aging import MPPTAging

    console.print(f"[bold]ISOS-L-1 aging[/], {DEMO_AGING_H:g} h at the maximum power point (virtual time): "
                  f"{', '.join(DEMO_AGING_SAMPLES)}")
    proc = MPPTAging(samples=DEMO_AGING_SAMPLES, preset="ISOS-L-1", duration_h=DEMO_AGING_H,
                     interval_s=DEMO_AGING_INTERVAL_S, switched_hold_s=DEMO_SWITCHED_HOLD_S)
    return _run(proc, "MPPT aging ISOS-L-1", Station.load("sim"), out_dir, console)


def _run(proc: Any, title: str, station: Any, out_dir: Path, console: Console) -> list[Path]:
    """One run with a progress bar, its analysis printed and its report written: the file and the figures."""
    from labctl.analyze import print_analysis, report_file
    from labctl.progress import RunProgressView
    from labctl.runner import Runner

    view = RunProgressView(title, console)
    runner = Runner(proc, station=station, directory=out_dir, operator="labctl demo", subscribers=[view])
    with view.progress:
        result = runner.run()
    if result.status != "completed":
        raise DemoRunFailed(f"demo run {title} ended {result.status}: {result.reason}")
    assert result.analysis is not None
    print_analysis(result.analysis, console, type(proc), blocks=False)
    return [result.path, *report_file(result.path, out_dir, type(proc))]
