"""A calibrated reference cell read by a source-measure channel (the :class:`~labctl.roles.ReferenceCell` role).

A reference cell (a filtered silicon cell, or an encapsulated cell of the same technology, calibrated at
AM1.5G) is held at 0 V; its short-circuit current is proportional to the irradiance:
``E = 100 mW/cm² × I_sc / I_sc(1 sun)``, corrected for its temperature when a coefficient is given. Procedures
and suspenders read the light from it, not from the lamp's setpoint, so a lamp whose output drifts or a
shutter that sticks is seen.

Station file::

    [reference_cells.ref]
    smu = "smu7"            # the SMU (and smu_channel) it is wired to
    smu_channel = "b"
    light = "sun"           # the light it sees
    isc_A_per_sun = 0.0122  # calibration: short-circuit current at 100 mW/cm², 25 °C
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labctl.errors import InstrumentError

#: Compliance while reading the short-circuit current: generous for a 2×2 cm² silicon cell under 2 suns.
COMPLIANCE_A = 0.1


@dataclass(frozen=True)
class ReferenceCellSpec:
    """A reference cell in the station file (see the module docstring)."""

    name: str
    smu: str
    isc_A_per_sun: float
    light: str | None = None
    smu_channel: str | None = None
    area_cm2: float = 4.0
    nplc: float = 1.0


class ReferenceCellReader:
    """The :class:`~labctl.roles.ReferenceCell` role on one SMU channel."""

    def __init__(self, spec: ReferenceCellSpec, smu: Any) -> None:
        self.spec = spec
        self.name = spec.name
        self.smu = smu
        self._configured = False

    def read_irradiance_mW_cm2(self) -> float:
        with self._lock():
            if not self._configured:
                self.smu.set_compliance_current(COMPLIANCE_A)
                self.smu.set_nplc(self.spec.nplc)
                self.smu.source_voltage(0.0)
                self.smu.output_on()
                self._configured = True
            _voltage, current_A = self.smu.measure()
        if current_A > 0.0 and abs(current_A) > 1e-3 * self.spec.isc_A_per_sun:
            raise InstrumentError(f"reference cell {self.name!r} reads {current_A:.3g} A into the cell: check its "
                                  "wiring (a lit cell at 0 V delivers current)", instrument=self.spec.smu)
        return 100.0 * max(-current_A, 0.0) / self.spec.isc_A_per_sun

    def _lock(self) -> Any:
        owner = getattr(self.smu, "parent", self.smu)
        return owner.lock

    def identify(self) -> str:
        owner = getattr(self.smu, "parent", self.smu)
        return f"reference cell {self.name} on {owner.identify()}"

    def settings_snapshot(self) -> dict[str, float | str | bool]:
        return {"isc_A_per_sun": self.spec.isc_A_per_sun, "smu": self.spec.smu,
                "smu_channel": self.spec.smu_channel or "", "light": self.spec.light or ""}

    def safe_state(self) -> None:
        self._configured = False
        self.smu.output_off()
