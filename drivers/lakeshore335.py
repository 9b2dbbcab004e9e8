"""Lake Shore Model 335 cryogenic temperature controller.

The 335 speaks the 336's command language (Model 335 User's Manual, chapter 6, "Computer Interface
Operation"), on the same links: USB as a virtual serial port at 57 600 baud 7O1 CR LF with the same 50 ms
message flow rule, IEEE-488, no Ethernet port. What differs, and what this driver changes:

- two inputs, A and B (``OUTMODE`` control input 0 none, 1 A, 2 B), two outputs, both heater outputs;
  there are no analog outputs 3 and 4;
- output 2 can be switched to voltage mode (``HTRSET 2,<output type = 1>,...``: a 0–10 V output driving an
  external supply); its range is then only off or on (``RANGE 2,0|1``), so a range name other than off and
  low (= on) is refused before anything is sent;
- ``HTRSET`` and ``HTRSET?`` have an extra first field, the output type (0 current, 1 voltage), where the 336
  has none;
- ``*IDN?`` answers ``LSCI,MODEL335,<serial>/<option serial>,<firmware>``;
- the 335 can emulate a Model 331/332 (``EMUL 1``), which changes its command set; Lake Shore's own Python
  driver switches emulation off when it connects (``EMUL 0``), and :meth:`LakeShore335.check_not_emulating`
  refuses a controller left in emulation instead.
"""

from __future__ import annotations

from typing import Any

from drivers.lakeshore336 import LakeShore336
from labctl.errors import InstrumentError, ParameterError

#: HTRSET <output type> codes (output 2 only).
OUTPUT_TYPES = {0: "current", 1: "voltage"}


class LakeShore335(LakeShore336):
    """Lake Shore 335 as a :class:`~labctl.roles.TemperatureController` for one control loop.

    :param output: the heater output whose control loop this driver runs (1 or 2).
    :param input_channel: the input read by :meth:`read_temperature_K` ("A" or "B").
    """

    inputs = ("A", "B")
    idn_model = "MODEL335"
    heater_outputs = (1, 2)
    # pymeasure's 3xx channels that the 335 does not have
    input_C = input_D = input_C1 = input_C2 = input_C3 = input_C4 = None
    input_D1 = input_D2 = input_D3 = input_D4 = input_D5 = None
    output_3 = output_4 = None

    def __init__(self, adapter: Any, name: str = "Lake Shore 335", **kwargs: Any) -> None:
        super().__init__(adapter, name, **kwargs)

    def output_type(self, output: int | None = None) -> str:
        """``"current"`` or ``"voltage"`` from the first field of ``HTRSET? <output>``."""
        output = self.output if output is None else output
        reply = self.ask(f"HTRSET? {output}").strip()
        first = reply.split(",", 1)[0].strip()
        try:
            return OUTPUT_TYPES[int(first)]
        except (ValueError, KeyError):
            raise InstrumentError(f"unreadable reply {reply!r} to 'HTRSET? {output}'", instrument=self.name,
                                  address=self.address) from None

    def set_heater_range(self, heater_range: str) -> None:
        """As the 336, except that output 2 in voltage mode has only off and on (``"low"``)."""
        with self.lock:
            if self.output == 2 and heater_range.strip().lower() in ("medium", "high") and \
                    self.output_type(2) == "voltage":
                raise ParameterError(f"heater_range = {heater_range!r}: output 2 is in voltage mode, whose range "
                                     "is only off or on (use 'low' for on)")
            super().set_heater_range(heater_range)

    def check_not_emulating(self) -> None:
        """Raise :class:`InstrumentError` if the controller emulates a 331/332 (``EMUL?`` answers 1)."""
        reply = self.ask("EMUL?").strip()
        if reply != "0":
            raise InstrumentError(f"the 335 is in Model 331/332 emulation (EMUL? = {reply!r}): switch it off "
                                  "(EMUL 0, or the front panel's interface menu)", instrument=self.name,
                                  address=self.address)

    def identify(self) -> str:
        """``*IDN?`` (must name a Model 335), and the controller must not emulate another model."""
        with self.lock:
            idn = super().identify()
            self.check_not_emulating()
            return idn
