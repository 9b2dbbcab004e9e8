"""A simulated cryostat bench for ion-migration tests and bench scripts: one cell on the LN2 stage, wired to
an E4980A and watched by a Lake Shore 336 (both through their drivers), an LSS-7120 LED through the window.

The station is written as a station file (``[sim.devices.cell]`` carries the preset and any parameter
override), so the cell is built the way ``labctl`` builds it from a user's station.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labctl.bench import Bench
from labctl.clock import VIRTUAL_EPOCH_S, VirtualClock
from labctl.station import Station

STATION = """
name = "cryostat"

[instruments.lcr]
driver = "keysight_e4980a"
address = "sim://keysight_e4980a"

[instruments.cryo]
driver = "lakeshore336"
address = "sim://lakeshore336"
stage = "stage"

[instruments.led]
driver = "newport_lss7120"
address = "sim://newport_lss7120"
head_warmup_s = 0

[samples.cell]
area_cm2 = 0.1
lcr = "lcr"
light = "led"
temperature = "cryo"

[sim]
seed = {seed}

[sim.lights.led]
warmup_tau_s = 1.0
warmup_start_fraction = 0.97

[sim.devices.cell]
preset = "{preset}"
{overrides}
"""


def station_text(preset: str, seed: int = 1, **overrides: float) -> str:
    lines = "\n".join(f"{k} = {v!r}" for k, v in overrides.items())
    return STATION.format(preset=preset, seed=seed, overrides=lines)


@dataclass
class CryostatBench:
    bench: Bench
    clock: VirtualClock

    @property
    def lcr(self) -> Any:
        return self.bench.lcr("cell")

    @property
    def cryo(self) -> Any:
        return self.bench.temperature_controller("cell")

    @property
    def light(self) -> Any:
        return self.bench.light("cell")

    @property
    def cell(self) -> Any:
        """The simulated device (for the model's own parameters only: measurements go through the drivers)."""
        return self.bench.simulation.world.device("cell")

    def close(self) -> None:
        self.bench.close()


def cryostat_bench(preset: str, seed: int = 1, **overrides: float) -> CryostatBench:
    clock = VirtualClock(VIRTUAL_EPOCH_S)
    station = Station.from_text(station_text(preset, seed, **overrides), source="<cryostat bench>")
    bench = Bench.connect(station, ["lcr", "cryo", "led"], clock=clock)
    bench.temperature_controller("cell").set_heater_range("high")
    return CryostatBench(bench, clock)
