"""Cost of simulated readings: the device model alone, a buffered dwell, and a ``:READ?`` through the
Keithley 2450 mock with 1 and with 64 devices in the world.

- device: one reading of a lit cell held at its MPP = advance over one NPLC-1 integration (16.7 ms of
  virtual time) + J(V); for ``wbg_ref`` and the ``tandem``, and J(V) alone at a changed state.
- dwell: 60 readings 16.7 ms apart at the MPP, as one ``dwell_at_voltage`` call (and through
  ``World.readings_at``) against 60 separate advance + J(V) pairs; cost per reading.
- world: ``:READ?`` on the 2450 mock wired to a lit ``wbg_ref`` cell, in-process (pymeasure-style
  ``SimAdapter``) and over TCP (pyvisa-py), and the in-process ``:READ?`` with 63 more cells in the world
  (each on its own SMU terminal, holding a voltage, 16 of them on a hot stage): the lazy world advances only
  the device it reads, so the ratio should stay near 1.

CPU microseconds of this process (``time.process_time``: on a busy machine the time spent waiting for a core
does not count), median of ``--repeats`` batches; batches that are compared are interleaved, and the ratios
compare figures of the same run. The TCP figure is wall-clock (the server's threads do part of the work).

    .venv/bin/python bench/sim_reading_cost.py [--readings N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyvisa

from drivers.transport import SimAdapter
from labctl.clock import real_elapsed_s
from mock_instruments.keithley2450 import MockKeithley2450
from mock_instruments.presets import preset
from mock_instruments.server import serve
from mock_instruments.world import World

SETUP = ':SOUR:FUNC VOLT;:SOUR:VOLT 1.1;:SOUR:VOLT:ILIM 0.01;:SENS:FUNC "CURR";:SENS:CURR:NPLC 1;:OUTP ON'
PLC_S = 1 / 60
DWELL_READINGS = 60


def median_us(run: Callable[[], None], per_call: int, repeats: int) -> float:
    """Median over ``repeats`` batches of the CPU time of ``run()`` divided by ``per_call``, in µs."""
    return interleaved_us([run], per_call, repeats)[0]


def interleaved_us(runs: list[Callable[[], None]], per_call: int, repeats: int) -> list[float]:
    """Median CPU time per call (µs) of each of ``runs``, their batches interleaved so that a busy machine
    slows them alike (CPU time of this process: time spent waiting for the other cores does not count)."""
    for run in runs:
        run()  # warm caches and the allocator
    batches: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, out in zip(runs, batches, strict=True):
            start = time.process_time()
            run()
            out.append((time.process_time() - start) / per_call * 1e6)
    return [statistics.median(b) for b in batches]


def mpp_V(cell: Any) -> float:
    v = np.linspace(0.5, cell.steady_voc_V(1.0, 298.15), 2001)
    return float(v[int(np.argmax(v * cell.steady_state_jv(v)))])


def device_costs(readings: int, repeats: int) -> dict[str, float]:
    """Per-reading costs of wbg_ref and the tandem, each figure's batches interleaved between the two."""
    kinds: dict[str, list[Callable[[], None]]] = {"reading": [], "J(V)": [], "dwell": [], "separate": []}
    for name in ("wbg_ref", "tandem"):
        cell = preset(name)
        v = mpp_V(cell)
        cell.advance(600.0, v, 1.0, 298.15)
        times = PLC_S * np.arange(1, DWELL_READINGS + 1)

        def reading(cell: Any = cell, v: float = v, n: int = readings) -> None:
            for _ in range(n):
                cell.advance(PLC_S, v, 1.0, 298.15)
                cell.current_density_mA_cm2(v, 1.0, 298.15)

        def jv_only(cell: Any = cell, v: float = v) -> None:
            for i in range(readings):
                cell.current_density_mA_cm2(v + 1e-7 * (i % 2), 1.0, 298.15)  # a new voltage each time

        def dwell(cell: Any = cell, v: float = v, times: np.ndarray = times) -> None:
            cell.dwell_at_voltage(times, v, 1.0, 298.15)

        kinds["reading"].append(reading)
        kinds["J(V)"].append(jv_only)
        kinds["dwell"].append(dwell)
        kinds["separate"].append(lambda reading=reading: reading(n=DWELL_READINGS))
    out: dict[str, float] = {}
    for kind, runs in kinds.items():
        per_call = DWELL_READINGS if kind in ("dwell", "separate") else readings
        single, tandem = interleaved_us(runs, per_call, repeats)
        out[f"wbg_ref {kind}"], out[f"tandem {kind}"] = single, tandem
    return out


def make_world(extra_devices: int) -> tuple[World, MockKeithley2450]:
    world = World(seed=0)
    world.add_light("light", shutter_open=True)
    hot = world.add_stage("hot", reservoir_K=298.15, temperature_K=338.15)
    hot.set_heater_power_W(hot.heater_power_for_K(338.15))  # a hot stage settled at 65 °C
    world.add_device("cell", preset("wbg_ref"))
    world.wire("smu", "cell")
    for i in range(extra_devices):
        name = f"pix{i}"
        world.add_device(name, preset("wbg_5avai" if i % 2 else "wbg_ref"), location="hot" if i < 16 else "bench")
        world.wire(f"smu{i}", name)
        world.apply_voltage(f"smu{i}", 1.1)
    return world, MockKeithley2450(world, "smu")


def world_readings_us(readings: int, repeats: int) -> tuple[float, float, World]:
    """:READ? cost with 1 and with 64 devices in the world, batches interleaved."""
    worlds, runs = [], []
    for extra in (0, 63):
        world, smu = make_world(extra)
        adapter = SimAdapter(smu)
        adapter.write(SETUP)

        def run(adapter: SimAdapter = adapter) -> None:
            for _ in range(readings):
                adapter.write(":READ?")
                float(adapter.read())

        worlds.append(world)
        runs.append(run)
    one, many = interleaved_us(runs, readings, repeats)
    return one, many, worlds[1]


def world_dwell_us(repeats: int) -> float:
    world, smu = make_world(0)
    SimAdapter(smu).write(SETUP)

    def run() -> None:
        t0 = world.time_s
        world.clock.sleep(DWELL_READINGS * PLC_S)
        world.readings_at("smu", t0 + PLC_S * np.arange(1, DWELL_READINGS + 1))

    return median_us(run, DWELL_READINGS, repeats)


def tcp_reading_us(readings: int, repeats: int) -> float:
    _, smu = make_world(0)
    rm = pyvisa.ResourceManager("@py")
    with serve({"smu": smu}, port_base=0) as server:
        inst = rm.open_resource(server.endpoints[0][2], read_termination="\n", write_termination="\n")
        inst.write(SETUP)

        def run() -> None:
            for _ in range(readings):
                float(inst.query(":READ?"))

        start = real_elapsed_s()  # wall clock here: the server's threads do part of the work
        for _ in range(repeats):
            run()
        result = (real_elapsed_s() - start) / (repeats * readings) * 1e6
        inst.close()
    rm.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=2000, help="readings per batch (default 2000)")
    parser.add_argument("--repeats", type=int, default=5, help="batches per figure (default 5)")
    args = parser.parse_args()
    n, r = args.readings, args.repeats

    dev = device_costs(max(n // 4, 50), r)
    one, many, world = world_readings_us(n, r)
    lagging = sum(world.device_time_s(name) < world.time_s for name in world.devices)
    dwell_world = world_dwell_us(r)
    tcp = tcp_reading_us(n, r)

    print(f"simulated readings, median of {r} batches (CPU µs per reading)")
    print("device model (wbg_ref / tandem at the MPP, 1 sun):")
    for name in ("wbg_ref", "tandem"):
        print(f"  {name:8s} reading (advance 16.7 ms + J):   {dev[f'{name} reading']:8.1f}")
        print(f"  {name:8s} J(V) at a new voltage:          {dev[f'{name} J(V)']:8.1f}")
    print(f"  tandem / single reading:                 {dev['tandem reading'] / dev['wbg_ref reading']:8.2f}")
    print(f"  tandem / single J(V):                    {dev['tandem J(V)'] / dev['wbg_ref J(V)']:8.2f}")
    print(f"buffered dwell of {DWELL_READINGS} readings at the MPP, per reading:")
    for name in ("wbg_ref", "tandem"):
        ratio = dev[f"{name} separate"] / dev[f"{name} dwell"]
        print(f"  {name:8s} dwell_at_voltage:               {dev[f'{name} dwell']:8.1f}"
              f"   (separate readings {dev[f'{name} separate']:.1f}, {ratio:.1f}x)")
    print(f"  wbg_ref World.readings_at:               {dwell_world:8.1f}")
    print(":READ? on the Keithley 2450 mock (wbg_ref, NPLC 1):")
    print(f"  in-process, 1 device in the world:       {one:8.1f}")
    print(f"  in-process, 64 devices in the world:     {many:8.1f}   ({lagging} of 64 devices not yet advanced)")
    print(f"  ratio 64 / 1 devices:                    {many / one:8.2f}")
    print(f"  TCP (pyvisa-py, 127.0.0.1), 1 device:    {tcp:8.1f}   (wall clock)")
    print(f"  ratio TCP / in-process:                  {tcp / one:8.2f}")


if __name__ == "__main__":
    main()
