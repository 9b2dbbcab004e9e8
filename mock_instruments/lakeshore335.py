"""Lake Shore Model 335 temperature controller, after the Model 335 User's Manual, chapter 6.

The 335 speaks the 336's language (see :mod:`mock_instruments.lakeshore336`, whose grammar, status registers,
setpoint units and serial pacing this mock inherits). What the 335 does differently:

- inputs A and B only (``KRDG? 0`` answers two readings; C and D are unknown: ignored, execution error);
- outputs 1 and 2 only, both heater outputs (``RANGE 3,...`` is an execution error); output 2 can be set to
  voltage mode (``HTRSET 2,1,...``), a 0–10 V output whose range is only 0 (off) or 1 (on);
- ``HTRSET <output>,<output type>,<heater resistance>,<max current>,<max user current>,<current/power>``:
  an output-type field first (0 current, 1 voltage; output 1 is always current), and ``HTRSET?`` answers in
  that form;
- ``*IDN?`` names ``MODEL335``; ``EMUL``/``EMUL?`` (Model 331/332 emulation, off here: the mock does not
  emulate other models, so ``EMUL 1`` is refused as an execution error).

Heater power: output 1 heats the stage (option ``heater_output``); its high range is the stage's
``heater_max_W``, as for the 336.
"""

from __future__ import annotations

from typing import Any

from mock_instruments.lakeshore336 import (
    ESR_EXE,
    IgnoredError,
    MockLakeShore336,
    Output,
    integer,
    number,
)

OUTPUT_TYPE_CURRENT, OUTPUT_TYPE_VOLTAGE = 0, 1


class MockLakeShore335(MockLakeShore336):
    """The simulated Lake Shore 335 (options: ``serial``, ``heater_output``, and the base options)."""

    model = "lakeshore335"
    idn_model = "MODEL335"
    inputs = ("A", "B")
    output_numbers = (1, 2)

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        self.output_type = {1: OUTPUT_TYPE_CURRENT, 2: OUTPUT_TYPE_CURRENT}
        super().__init__(world, name, **options)
        self._commands[("EMUL", True)] = self._get_emul
        self._commands[("EMUL", False)] = self._set_emul

    def _get_emul(self, args: list[str]) -> str:
        return "0"

    def _set_emul(self, args: list[str]) -> None:
        if integer(self._args(args, 1)[0], (0, 1)) != 0:
            raise IgnoredError(ESR_EXE)

    def _ranges(self, output: Output) -> range:
        return range(2) if output.number == 2 and self.output_type[2] == OUTPUT_TYPE_VOLTAGE else range(4)

    def _set_range(self, args: list[str]) -> None:
        number_, value = self._args(args, 2)
        output = self._output(number_)
        output.range = integer(value, self._ranges(output))
        self.wake()

    def _set_outmode(self, args: list[str]) -> None:
        number_, mode, control_input, powerup = self._args(args, 4)
        output = self._output(number_)
        voltage = output.number == 2 and self.output_type[2] == OUTPUT_TYPE_VOLTAGE
        modes = (0, 1, 2, 3, 4, 5) if voltage else (0, 1, 2, 3)
        values = integer(mode, modes), integer(control_input, range(3)), integer(powerup, (0, 1))
        if values[0] != output.mode:
            output.pid.reset()
        output.mode, output.control_input, output.powerup = values
        self.wake()

    def _set_htrset(self, args: list[str]) -> None:
        number_, kind, resistance, max_current, user_max, display = self._args(args, 6)
        output = self._output(number_, (1, 2))
        output_type = integer(kind, (0, 1) if output.number == 2 else (0,))
        heater = (integer(resistance, (1, 2)), integer(max_current, range(5)), number(user_max, 0.0, 2.0),
                  integer(display, (1, 2)))
        self.output_type[output.number] = output_type
        output.heater = heater
        if output_type == OUTPUT_TYPE_VOLTAGE and output.range > 1:
            output.range = 1

    def _get_htrset(self, args: list[str]) -> str:
        output = self._output(self._args(args, 1)[0], (1, 2))
        resistance, max_current, user_max, display = output.heater
        return f"{self.output_type[output.number]},{resistance},{max_current},{user_max:+.3f},{display}"
