"""Cost of an instrument-timed dwell on each simulated SMU, per reading, against single readings.

For each SMU model (Keithley 2400, 2450, 2600B channel, Keysight B2900 channel), driver and mock in-process
(``SimAdapter``), on a lit ``wbg_ref`` cell held at 1.0 V, NPLC 1 at 60 Hz:

- *dwell 60*: ``dwell_voltage(1.0, 60, 0.1)``, the whole call (set-up commands, the wait, the buffer read and
  the restore) divided by 60;
- *single 60*: 60 ``measure()`` calls (``:READ?``, ``print(smua.measure.iv())``, ``:MEAS?``), per reading;
- *marginal*: (dwell of 600 - dwell of 60) / 540, what one more reading of a dwell costs;
- *per-reading mock*: the 60-reading dwell on a mock made with ``buffered_dwells=False`` (every reading its own
  world event and device step), per reading: what serving the dwell in one pass saves inside the simulation.

``--current`` adds ``dwell_current`` figures: settled (the cell has carried the current for 10 s and goes on
carrying it) and right after 10 s held at 1.0 V (only the current dwell timed), where the device model's
buffered path at a constant current is slower than stepping reading by reading; and the same at the world
(no instrument): a fresh cell (its ions at 0 V in the dark) driven at -1.2 mA under light, 60 readings 50 ms
apart from 1 s after the step, as one ``World.readings_at`` and as 60 world syncs and ``voltage_V`` reads.

CPU microseconds of this process (``time.process_time``), median of ``--repeats`` batches; the batches of one
model are interleaved so a busy machine slows them alike, and ratios compare figures of the same run.

    .venv/bin/python bench/dwell_cost.py [--repeats R] [--current]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from instrument_helpers import cell_world, sim_driver, source_and_switch_on
from sim_reading_cost import interleaved_us

from drivers.keithley2400 import Keithley2400
from drivers.keithley2450 import Keithley2450
from drivers.keithley2600 import Keithley2600
from drivers.keysight_b2900 import KeysightB2900
from mock_instruments.keithley2400 import MockKeithley2400
from mock_instruments.keithley2450 import MockKeithley2450
from mock_instruments.keithley2600 import MockKeithley2600
from mock_instruments.keysight_b2900 import MockKeysightB2900

MODELS: dict[str, tuple[Any, Any, str, str | None]] = {
    "keithley2400": (MockKeithley2400, Keithley2400, "smu", None),
    "keithley2450": (MockKeithley2450, Keithley2450, "smu", None),
    "keithley2600": (MockKeithley2600, Keithley2600, "smu:a", "a"),
    "keysight_b2900": (MockKeysightB2900, KeysightB2900, "smu:1", "1"),
}
LEVEL_V, INTERVAL_S, SHORT, LONG = 1.0, 0.1, 60, 600


def smu_on_cell(model: str, **options: Any) -> Any:
    """The model's SourceMeter role object on a lit wbg_ref cell, NPLC 1, output on at 1.0 V."""
    mock_class, driver_class, terminal, channel = MODELS[model]
    world = cell_world(7)
    world.wire(terminal, "cell")
    driver = sim_driver(driver_class, mock_class(world, "smu", **options), f"sim://{model}", world.clock)
    smu = driver.channel(channel) if channel else driver
    smu.set_compliance_voltage(2.0)
    source_and_switch_on(smu, LEVEL_V, nplc=1.0, compliance_A=0.01)
    return smu


def voltage_costs(model: str, repeats: int) -> dict[str, float]:
    smu, stepped = smu_on_cell(model), smu_on_cell(model, buffered_dwells=False)

    def dwell(n: int, on: Any = smu) -> Callable[[], None]:
        return lambda: on.dwell_voltage(LEVEL_V, n, INTERVAL_S)

    def single() -> None:
        for _ in range(SHORT):
            smu.measure()

    short, single_us, long_, per_reading = interleaved_us(
        [dwell(SHORT), single, dwell(LONG), dwell(SHORT, stepped)], SHORT, repeats)
    marginal = (long_ * SHORT - short * SHORT) / (LONG - SHORT)
    return {"dwell": short, "single": single_us, "marginal": marginal, "per-reading mock": per_reading}


def current_costs(model: str, repeats: int) -> dict[str, float]:
    settled, stepped = smu_on_cell(model), smu_on_cell(model)
    settled.dwell_current(-1.2e-3, 100, INTERVAL_S)  # 10 s at the current first
    steady = interleaved_us([lambda: settled.dwell_current(-1.2e-3, SHORT, INTERVAL_S)], SHORT, repeats)[0]
    after_step = []
    for _ in range(repeats):
        stepped.dwell_voltage(LEVEL_V, 10, 1.0)  # 10 s at 1.0 V, not timed
        start = time.process_time()
        stepped.dwell_current(-1.2e-3, SHORT, INTERVAL_S)
        after_step.append((time.process_time() - start) / SHORT * 1e6)
    return {"current settled": steady, "current after a step": statistics.median(after_step)}


def world_current_step(repeats: int) -> tuple[float, float]:
    """(one pass, reading by reading) µs per reading of a current dwell 1 s after a step (module docstring)."""
    def world_after_step() -> Any:
        world = cell_world(7)
        world.wire("smu", "cell")
        world.apply_current("smu", -1.2e-3)
        world.clock.sleep(1.0)
        world.sync()
        world.voltage_V("smu")
        return world

    one_pass, stepped = [], []
    for _ in range(repeats):
        world = world_after_step()
        t0 = world.time_s
        world.clock.sleep(SHORT * 0.05)
        world.sync()
        start = time.process_time()
        world.readings_at("smu", t0 + 0.05 * np.arange(1, SHORT + 1))
        one_pass.append((time.process_time() - start) / SHORT * 1e6)
        world = world_after_step()
        start = time.process_time()
        for _ in range(SHORT):
            world.clock.sleep(0.05)
            world.sync()
            world.voltage_V("smu")
        stepped.append((time.process_time() - start) / SHORT * 1e6)
    return statistics.median(one_pass), statistics.median(stepped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="batches per figure (default 5)")
    parser.add_argument("--current", action="store_true", help="also dwell_current, settled and after a step")
    args = parser.parse_args()
    print(f"SMU dwell cost, CPU µs per reading, median of {args.repeats} batches "
          f"(wbg_ref at {LEVEL_V} V, NPLC 1, {INTERVAL_S} s apart)")
    print(f"{'model':16s} {'dwell 60':>9s} {'single 60':>10s} {'ratio':>6s} {'marginal':>9s} "
          f"{'per-reading mock':>17s} {'saving':>7s}")
    for model in MODELS:
        c = voltage_costs(model, args.repeats)
        print(f"{model:16s} {c['dwell']:9.1f} {c['single']:10.1f} {c['single'] / c['dwell']:6.2f} "
              f"{c['marginal']:9.1f} {c['per-reading mock']:17.1f} {c['per-reading mock'] / c['dwell']:7.2f}")
    if args.current:
        print("dwell_current (-1.2 mA, 60 readings), CPU µs per reading:")
        for model in MODELS:
            c = current_costs(model, args.repeats)
            print(f"  {model:16s} settled {c['current settled']:8.1f}   right after a step "
                  f"{c['current after a step']:8.1f}")
        one_pass, stepped = world_current_step(args.repeats)
        print(f"world, fresh cell 1 s after a step to -1.2 mA: World.readings_at {one_pass:8.1f}   reading by reading "
              f"{stepped:8.1f}")


if __name__ == "__main__":
    main()
