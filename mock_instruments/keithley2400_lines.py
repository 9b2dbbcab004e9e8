"""The parts of the Keithley 2400's command set that a client may touch although labctl's driver does not
(2400 Series SourceMeter User's Manual, 2400S-900-01 Rev. K): the options query and the stored setups
(section 16 "Common Commands"), the trigger-link lines of the arm and trigger layers (section 11, TRIGger and
ARM subsystems), the resistance measurement's settings (section 4, SENSe1 subsystem), buffer statistics
(CALCulate3, section 9) and the operation / questionable status registers (section 15). The rest of the
command set is :mod:`mock_instruments.keithley2400`.

Trigger-link lines, output triggers and the questionable register are stored and read back; no trigger-link
signal arrives in the simulation (a reading that waits for one reports -214). ``*SAV``/``*RCL`` keep and
restore the settings declared with :class:`~mock_instruments.scpi.Setting` and the ranges, NPLC and
functions; source lists are not part of a stored setup (as on the instrument, they stay as they are).
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import numpy as np

from mock_instruments.scpi import Bool, Choice, Num, Rest, ScpiError, Setting, scpi
from mock_instruments.smu_scpi import QuietStatusRegisters

LINE = Num(1, 4, integer=True)
#: What *SAV keeps besides the declared settings (section 16: "the present setup").
_SETUP_STATE = ("ranges", "autorange", "nplc", "functions", "autozero", "elements", "arm_count")


class Keithley2400Lines(QuietStatusRegisters):
    """Options, stored setups, trigger-link lines, resistance settings, buffer statistics, status registers."""

    trigger_input_line = Setting("TRIGger[:SEQuence#]:ILINe", LINE, 1)
    trigger_output_line = Setting("TRIGger[:SEQuence#]:OLINe", LINE, 2)
    trigger_input_event = Setting("TRIGger[:SEQuence#]:INPut", Choice("SOURce", "DELay", "SENSe", "NONE"),
                                  "NONE")
    trigger_direction = Setting("TRIGger[:SEQuence#]:DIRection", Choice("SOURce", "ACCeptor"), "ACCeptor")
    arm_input_line = Setting("ARM[:SEQuence#][:LAYer#]:ILINe", LINE, 1)
    arm_output_line = Setting("ARM[:SEQuence#][:LAYer#]:OLINe", LINE, 2)
    arm_direction = Setting("ARM[:SEQuence#][:LAYer#]:DIRection", Choice("SOURce", "ACCeptor"), "ACCeptor")
    resistance_mode = Setting("[SENSe#]:RESistance:MODE", Choice("MANual", "AUTO"), "MANual")
    resistance_range_ohm = Setting("[SENSe#]:RESistance:RANGe[:UPPer]", Num(0, 2.1e8, units="OHM"), 2.1e5)
    resistance_autorange = Setting("[SENSe#]:RESistance:RANGe:AUTO", Bool(), True)
    offset_compensation = Setting("[SENSe#]:RESistance:OCOMpensated", Bool(), False)
    statistic = "MEAN"

    # state the command set declares (see keithley2400.py and keithley2400_sdm.py)
    trace: Any
    elements: list[str]

    def reset(self) -> None:
        super().reset()
        self.output_events: dict[str, list[str]] = {"TRIGGER": ["NONE"], "ARM": ["NONE"]}
        self.operation_enable = self.questionable_enable = 0  # :STATus:PRESet values
        self.statistic = "MEAN"
        if not hasattr(self, "stored_setups"):
            self.stored_setups: dict[int, dict[str, Any]] = {}

    @scpi("*OPT?")
    def _options(self) -> str:
        """Section 16: "0" when no option (such as CONTACT-CHECK) is installed."""
        return "0"

    @scpi("*SAV", Num(0, 4, integer=True))
    def _save(self, slot: int) -> None:
        self.stored_setups[slot] = copy.deepcopy(
            {"values": self._values, **{name: getattr(self, name) for name in _SETUP_STATE}})

    @scpi("*RCL", Num(0, 4, integer=True))
    def _recall_setup(self, slot: int) -> None:
        stored = self.stored_setups.get(slot)
        if stored is None:
            self.reset()
            return
        stored = copy.deepcopy(stored)
        self._values = stored.pop("values")
        for name, value in stored.items():
            setattr(self, name, value)

    @scpi("TRIGger[:SEQuence#]:OUTPut", Rest(Choice("SOURce", "DELay", "SENSe", "NONE")))
    @scpi("ARM[:SEQuence#][:LAYer#]:OUTPut", Rest(Choice("TENTer", "TEXit", "NONE")))
    def _output_events(self, events: list[str]) -> None:
        layer = self.call.nodes[0]
        self.output_events[layer] = ["NONE"] if "NONE" in events else events

    @scpi("TRIGger[:SEQuence#]:OUTPut?")
    @scpi("ARM[:SEQuence#][:LAYer#]:OUTPut?")
    def _output_events_query(self) -> str:
        return ",".join(e[:4].upper() for e in self.output_events[self.call.nodes[0]])

    def _calc3(self) -> None:
        """CALCulate1 (math) and CALCulate2 (limits) are not simulated: -113 as for an unknown header."""
        if self.call.suffixes[:1] != (3,):
            raise ScpiError(-113, f"CALC{self.call.suffix} is not simulated")

    @scpi("CALCulate#3:FORMat", Choice("MEAN", "SDEViation", "MAXimum", "MINimum", "PKPK"))
    def _set_statistic(self, name: str) -> None:
        self._calc3()
        self.statistic = name

    @scpi("CALCulate#3:FORMat?")
    def _get_statistic(self) -> str:
        self._calc3()
        return self.statistic[:4].upper()

    @scpi("CALCulate#3:DATA?")
    def _statistic(self) -> str:
        """The statistic of the buffer's voltage, current, resistance (TIME and STATus are not included)."""
        self._calc3()
        readings = self.trace.readings
        if not readings:
            raise ScpiError(-230, "buffer empty")
        columns = np.array([[r.voltage, r.current, r.resistance] for r in readings], dtype=float)
        columns[np.abs(columns) >= 9.9e37] = np.nan
        compute: Any = {"MEAN": np.nanmean, "SDEViation": np.nanstd, "MAXimum": np.nanmax, "MINimum": np.nanmin,
                   "PKPK": lambda a, axis: np.nanmax(a, axis=axis) - np.nanmin(a, axis=axis)}[self.statistic]
        with warnings.catch_warnings():  # a column that was not measured is all NaN: its statistic is NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            values = compute(columns, axis=0)
        wanted = [k for k, e in enumerate(("VOLTage", "CURRent", "RESistance")) if e in self.elements]
        return ",".join(f"{v:+.6E}" if math.isfinite(v) else "+9.910000E+37" for v in values[wanted])
