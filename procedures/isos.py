"""ISOS stability protocols (Khenkin et al., Nat. Energy 5, 35 (2020)) as parameter presets, and the schedule of
an aging run: when the light is on, what the stage temperature should be, when a J–V check-up is due.

| preset | light | temperature | load | what it stresses |
|---|---|---|---|---|
| ISOS-L-1 | 1 sun, continuous | room (as it is) | MPP | light |
| ISOS-L-2 | 1 sun, continuous | 65 °C | MPP | light + heat |
| ISOS-L-2-85 | 1 sun, continuous | 85 °C | MPP | light + more heat |
| ISOS-LC-1 | 12 h on / 12 h off | room | MPP (open circuit in the dark) | reversible loss and recovery |
| ISOS-LC-2 | 12 h on / 12 h off | 65 °C | MPP (open circuit in the dark) | cycling + heat |
| ISOS-D-1 | dark storage | room | open circuit | shelf life (J–V check-ups under light) |
| ISOS-D-2 | dark storage | 65 °C | open circuit | heat alone |
| ISOS-V-1 | dark | room | forward bias at Voc | bias alone (ion migration, no light) |
| ISOS-T-1 | dark | cycling room ↔ 65 °C, 6 h each | open circuit | thermal cycling within the hot stage's range |

Humidity and outdoor protocols (L-3, D-3, O) need an atmosphere labctl does not control; the run records
the atmosphere as the station states it. A dark protocol's periodic J–V check-ups switch the light on for
``checkup_window_s`` around them, as a lab carries the samples to the solar simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "ISOS-L-1": {"suns": 1.0, "temperature_C": 0.0, "light_on_h": 0.0, "light_off_h": 0.0, "dark_bias": "open"},
    "ISOS-L-2": {"suns": 1.0, "temperature_C": 65.0, "light_on_h": 0.0, "light_off_h": 0.0, "dark_bias": "open"},
    "ISOS-L-2-85": {"suns": 1.0, "temperature_C": 85.0, "light_on_h": 0.0, "light_off_h": 0.0,
                    "dark_bias": "open"},
    "ISOS-LC-1": {"suns": 1.0, "temperature_C": 0.0, "light_on_h": 12.0, "light_off_h": 12.0, "dark_bias": "open"},
    "ISOS-LC-2": {"suns": 1.0, "temperature_C": 65.0, "light_on_h": 12.0, "light_off_h": 12.0,
                  "dark_bias": "open"},
    "ISOS-D-1": {"suns": 0.0, "temperature_C": 0.0, "dark_bias": "open", "jv_every_h": 24.0},
    "ISOS-D-2": {"suns": 0.0, "temperature_C": 65.0, "dark_bias": "open", "jv_every_h": 24.0},
    "ISOS-V-1": {"suns": 0.0, "temperature_C": 0.0, "dark_bias": "voc", "jv_every_h": 24.0},
    "ISOS-T-1": {"suns": 0.0, "temperature_C": 65.0, "temperature_low_C": 25.0, "temperature_period_h": 12.0,
                 "dark_bias": "open", "jv_every_h": 24.0},
}

#: What each preset stands for, recorded in the run file's conditions.
DESCRIPTIONS = {
    "ISOS-L-1": "light soaking at the MPP, room temperature",
    "ISOS-L-2": "light soaking at the MPP, 65 °C",
    "ISOS-L-2-85": "light soaking at the MPP, 85 °C",
    "ISOS-LC-1": "light/dark cycling 12 h/12 h, room temperature",
    "ISOS-LC-2": "light/dark cycling 12 h/12 h, 65 °C",
    "ISOS-D-1": "dark storage, room temperature, open circuit",
    "ISOS-D-2": "dark storage, 65 °C, open circuit",
    "ISOS-V-1": "forward bias (Voc) in the dark, room temperature",
    "ISOS-T-1": "thermal cycling room ↔ 65 °C in the dark",
}


@dataclass(frozen=True)
class Schedule:
    """The run's environment as a function of time since its start (hours)."""

    suns: float
    light_on_h: float
    light_off_h: float
    jv_every_h: float
    checkup_window_h: float
    temperature_C: float
    temperature_low_C: float
    temperature_period_h: float

    def light_on(self, hours: float) -> bool:
        if self.suns <= 0:
            return self.in_checkup(hours)
        if self.light_on_h <= 0 or self.light_off_h <= 0:
            return True
        return (hours % (self.light_on_h + self.light_off_h)) < self.light_on_h

    def in_checkup(self, hours: float) -> bool:
        """Inside the light window of a dark protocol's J–V check-up (at each multiple of ``jv_every_h``)."""
        if self.jv_every_h <= 0:
            return False
        return (hours % self.jv_every_h) < self.checkup_window_h

    def setpoint_C(self, hours: float) -> float:
        """The stage setpoint (°C; 0: as it is)."""
        if self.temperature_period_h > 0 and self.temperature_low_C > 0:
            half = self.temperature_period_h / 2
            return self.temperature_C if (hours % self.temperature_period_h) < half else self.temperature_low_C
        return self.temperature_C

    def next_change_h(self, hours: float) -> float:
        """The next time (h) the light or the setpoint changes (inf: never)."""
        candidates = [math.inf]
        if self.suns > 0 and self.light_on_h > 0 and self.light_off_h > 0:
            cycle = self.light_on_h + self.light_off_h
            base = hours - hours % cycle
            candidates += [t for t in (base + self.light_on_h, base + cycle) if t > hours + 1e-9]
        if self.suns <= 0 and self.jv_every_h > 0:
            base = hours - hours % self.jv_every_h
            candidates += [t for t in (base + self.checkup_window_h, base + self.jv_every_h) if t > hours + 1e-9]
        if self.temperature_period_h > 0 and self.temperature_low_C > 0:
            half = self.temperature_period_h / 2
            base = hours - hours % half
            candidates.append(base + half)
        return min(candidates)
