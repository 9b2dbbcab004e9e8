"""SCPI commands the SCPI source-measure unit mocks declare alike: which range a command addresses, the
Keithley 2400/2450 source and sense range commands, and the operation / questionable status registers
(``:STATus:OPERation`` / ``:STATus:QUEStionable``; nothing the simulation does sets their bits)."""

from __future__ import annotations

from typing import ClassVar

from mock_instruments.scpi import Bool, Num, ScpiInstrument, scpi
from mock_instruments.smu_channel import fit_range


def range_key(nodes: tuple[str, ...]) -> str:
    """The range a command's matched nodes address: "S"ource or "M"easure, "V"oltage or "I" (current)."""
    return ("S" if "SOURCE" in nodes else "M") + ("V" if "VOLTAGE" in nodes else "I")


class SourceSenseRanges(ScpiInstrument):
    """``SOURce:VOLTage|CURRent:RANGe[:AUTO]`` and ``[SENSe]:VOLTage|CURRent[:DC]:RANGe[:UPPer|:AUTO]`` as the
    Keithley 2400 and 2450 declare them: a fixed range is the smallest holding the value (-222 above 105 % of
    the top one) and turns autorange off; a source range on auto reads back the range the level needs.

    A model sets :attr:`VOLTAGE_RANGES_V` and :attr:`CURRENT_RANGES_A`, keeps ``ranges`` and ``autorange``
    keyed by :func:`range_key` and implements :meth:`_source_level`.
    """

    VOLTAGE_RANGES_V: ClassVar[tuple[float, ...]] = ()
    CURRENT_RANGES_A: ClassVar[tuple[float, ...]] = ()
    ranges: dict[str, float]
    autorange: dict[str, bool]

    def _source_level(self, voltage: bool) -> float:
        """The programmed (fixed) source level of the voltage or current function."""
        raise NotImplementedError

    def _range_table(self, key: str) -> tuple[float, ...]:
        return self.VOLTAGE_RANGES_V if key[1] == "V" else self.CURRENT_RANGES_A

    @scpi("SOURce#:VOLTage:RANGe", Num(-210, 210, units="V"))
    @scpi("SOURce#:CURRent:RANGe", Num(-1.05, 1.05, units="A"))
    @scpi("[SENSe#]:VOLTage[:DC]:RANGe[:UPPer]", Num(-210, 210, units="V"))
    @scpi("[SENSe#]:CURRent[:DC]:RANGe[:UPPer]", Num(-1.05, 1.05, units="A"))
    def _set_range(self, value: float) -> None:
        key = range_key(self.call.nodes)
        self.ranges[key] = fit_range(value, self._range_table(key))
        self.autorange[key] = False

    @scpi("SOURce#:VOLTage:RANGe?")
    @scpi("SOURce#:CURRent:RANGe?")
    @scpi("[SENSe#]:VOLTage[:DC]:RANGe[:UPPer]?")
    @scpi("[SENSe#]:CURRent[:DC]:RANGe[:UPPer]?")
    def _get_range(self) -> float:
        key = range_key(self.call.nodes)
        if key[0] == "S" and self.autorange[key]:
            return fit_range(self._source_level(key == "SV"), self._range_table(key))
        return self.ranges[key]

    @scpi("SOURce#:VOLTage:RANGe:AUTO", Bool())
    @scpi("SOURce#:CURRent:RANGe:AUTO", Bool())
    @scpi("[SENSe#]:VOLTage[:DC]:RANGe:AUTO", Bool())
    @scpi("[SENSe#]:CURRent[:DC]:RANGe:AUTO", Bool())
    def _set_autorange(self, on: bool) -> None:
        self.autorange[range_key(self.call.nodes)] = on

    @scpi("SOURce#:VOLTage:RANGe:AUTO?")
    @scpi("SOURce#:CURRent:RANGe:AUTO?")
    @scpi("[SENSe#]:VOLTage[:DC]:RANGe:AUTO?")
    @scpi("[SENSe#]:CURRent[:DC]:RANGe:AUTO?")
    def _get_autorange(self) -> bool:
        return self.autorange[range_key(self.call.nodes)]


class QuietStatusRegisters(ScpiInstrument):
    """``:STATus:OPERation`` and ``:STATus:QUEStionable`` event, condition (both 0: no calibration, no
    overtemperature in the simulation) and enable registers."""

    operation_enable = 0
    questionable_enable = 0

    @scpi("STATus:OPERation[:EVENt]?")
    @scpi("STATus:OPERation:CONDition?")
    @scpi("STATus:QUEStionable[:EVENt]?")
    @scpi("STATus:QUEStionable:CONDition?")
    def _quiet_register(self) -> int:
        return 0

    @scpi("STATus:OPERation:ENABle", Num(0, 65535, integer=True))
    @scpi("STATus:QUEStionable:ENABle", Num(0, 65535, integer=True))
    def _set_register_enable(self, value: int) -> None:
        setattr(self, "operation_enable" if "OPERATION" in self.call.nodes else "questionable_enable", value)

    @scpi("STATus:OPERation:ENABle?")
    @scpi("STATus:QUEStionable:ENABle?")
    def _register_enable(self) -> int:
        return self.operation_enable if "OPERATION" in self.call.nodes else self.questionable_enable
