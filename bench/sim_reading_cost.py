"""Cost of one simulated SMU reading (``:READ?`` on the Keithley 2450 mock), in-process and over TCP.

In-process: pymeasure's ``SimAdapter`` hands the message to the mock (parse, world sync, device physics,
noise, reply). TCP: the same mock behind ``mock_instruments.server`` and a pyvisa-py socket client, so the
difference is the cost of sockets, threads and pyvisa. Real (wall-clock) microseconds per reading; the
virtual clock meanwhile advances by the reading's integration time.

    .venv/bin/python bench/sim_reading_cost.py [--readings N]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import pyvisa

from drivers.transport import SimAdapter
from labctl.clock import real_elapsed_s
from mock_instruments.keithley2450 import MockKeithley2450
from mock_instruments.presets import preset
from mock_instruments.server import serve
from mock_instruments.world import World

SETUP = ':SOUR:FUNC VOLT;:SOUR:VOLT 0.9;:SOUR:VOLT:ILIM 0.01;:SENS:FUNC "CURR";:SENS:CURR:NPLC 1;:OUTP ON'


def make_bench() -> tuple[World, MockKeithley2450]:
    world = World(seed=0)
    world.add_light("light", shutter_open=True)
    world.add_device("cell", preset("wbg_ref"))
    world.wire("smu", "cell")
    return world, MockKeithley2450(world, "smu")


def per_reading_us(ask: Callable[[str], str], readings: int, repeats: int = 5) -> float:
    """Median over ``repeats`` batches of the mean real time of one ``:READ?``, in µs."""
    for _ in range(20):
        ask(":READ?")  # warm the header cache, sockets and allocator
    batches = []
    for _ in range(repeats):
        start = real_elapsed_s()
        for _ in range(readings):
            float(ask(":READ?"))
        batches.append((real_elapsed_s() - start) / readings * 1e6)
    return statistics.median(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=2000, help="readings per batch (default 2000)")
    args = parser.parse_args()

    _, smu = make_bench()
    adapter = SimAdapter(smu)
    adapter.write(SETUP)

    def ask(message: str) -> str:
        adapter.write(message)
        return str(adapter.read())

    in_process = per_reading_us(ask, args.readings)

    _, smu = make_bench()
    rm = pyvisa.ResourceManager("@py")
    with serve({"smu": smu}, port_base=0) as server:
        inst = rm.open_resource(server.endpoints[0][2], read_termination="\n", write_termination="\n")
        inst.write(SETUP)
        tcp = per_reading_us(inst.query, args.readings)
        inst.close()
    rm.close()

    print(f"simulated SMU reading (:READ?, Keithley 2450 mock, wbg_ref cell, NPLC 1), {args.readings} x 5")
    print(f"  in-process (SimAdapter):        {in_process:8.1f} µs/reading")
    print(f"  TCP (pyvisa-py, 127.0.0.1):     {tcp:8.1f} µs/reading")
    print(f"  ratio TCP / in-process:         {tcp / in_process:8.1f}")
    print(f"  virtual time per reading:       {1e6 * (1 / 60 + 0.5e-3):8.1f} µs (1 PLC at 60 Hz + overhead)")


if __name__ == "__main__":
    main()
