"""The parts of the Keithley 2450's SCPI command set a client may touch although labctl's driver does not
(Model 2450 Reference Manual, 2450-901-01): the command-set selection ``*LANG`` (appendix B; a new language
takes effect after a power cycle, so the mock goes on speaking SCPI), reading-buffer statistics
(``:TRACe:STATistics`` AVERage, MAXimum, MINimum, STDDev; PK2Pk is not simulated), the resistance
function's range settings, the front-panel display
(``:DISPlay:LIGHt:STATe``, ``:DISPlay:CLEar``, ``:DISPlay:USER<n>:TEXT``) and the operation / questionable
status registers (``:STATus``, section 6; nothing in the simulation sets their bits). The 2450 has no
``*OPT?`` and no measurement event register (``:STATus:MEASurement`` is a 2400 command): both are -113.
The rest of the command set is :mod:`mock_instruments.keithley2450`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mock_instruments.scpi import Bool, Choice, Num, Opt, ScpiError, Setting, Str, scpi
from mock_instruments.smu_scpi import QuietStatusRegisters

LANGUAGES = ("SCPI", "TSP", "SCPI2400")


class Keithley2450System(QuietStatusRegisters):
    """*LANG, buffer statistics, resistance ranges, display, operation/questionable registers."""

    display_light = Setting("DISPlay:LIGHt:STATe", Choice("ON100", "ON75", "ON50", "ON25", "OFF", "BLACkout"),
                            "ON50")
    resistance_range_ohm = Setting("[SENSe#]:RESistance:RANGe[:UPPer]", Num(2, 2e8, units="OHM"), 2e5)
    resistance_autorange = Setting("[SENSe#]:RESistance:RANGe:AUTO", Bool(), True)
    offset_compensation = Setting("[SENSe#]:RESistance:OCOMpensated", Bool(), False)

    buffers: dict[str, Any]

    def reset(self) -> None:
        super().reset()
        self.user_text = {1: "", 2: ""}
        self.operation_enable = self.questionable_enable = 0  # :STATus:PRESet values
        if not hasattr(self, "language"):
            self.language = "SCPI"  # nonvolatile: *RST keeps it

    @scpi("*LANG", Choice(*LANGUAGES))
    def _set_language(self, language: str) -> None:
        self.language = language

    @scpi("*LANG?")
    def _language(self) -> str:
        return self.language

    @scpi("TRACe:STATistics:AVERage?", Opt(Str(), "defbuffer1"))
    @scpi("TRACe:STATistics:MAXimum?", Opt(Str(), "defbuffer1"))
    @scpi("TRACe:STATistics:MINimum?", Opt(Str(), "defbuffer1"))
    @scpi("TRACe:STATistics:STDDev?", Opt(Str(), "defbuffer1"))
    def _statistic(self, name: str) -> str:
        """One statistic of the readings in the buffer (the measured values, not source values)."""
        if name not in self.buffers:
            raise ScpiError(-224, f"no reading buffer {name!r}")
        values = np.array([r.value for r in self.buffers[name].readings], dtype=float)
        if values.size == 0:
            return "9.9100000E+37"
        node = self.call.nodes[-1]
        compute: dict[str, Any] = {"AVERAGE": np.mean, "MAXIMUM": np.max, "MINIMUM": np.min,
                                   "STDDEV": lambda a: np.std(a, ddof=1) if a.size > 1 else 0.0}
        return f"{float(compute[node](values)):.7E}"

    @scpi("DISPlay:CLEar")
    def _display_clear(self) -> None:
        self.user_text = {1: "", 2: ""}

    @scpi("DISPlay:USER#2:TEXT[:DATA]", Str())
    def _user_text(self, text: str) -> None:
        limit = 20 if self.call.suffix == 1 else 32
        if len(text) > limit:
            raise ScpiError(-223, f"at most {limit} characters on line {self.call.suffix}")
        self.user_text[self.call.suffix] = text
