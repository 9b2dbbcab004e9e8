"""The Keithley 2600B's status model as clients touch it (Series 2600BS-901-01, section 12 "Status model", and
appendix "Common commands"): the IEEE 488.2 common commands in TSP (*CLS, *ESE, *ESE?, *ESR?, *SRE, *SRE?,
*STB?, *OPC, *OPC?, *WAI, *TRG, *TST?, *IDN?, *RST) and the ``status`` object: ``status.condition`` (the
status byte), ``status.request_enable``, ``status.reset()``, ``status.standard`` (condition, event, enable) and
``status.operation`` (condition, event, enable) with ``status.operation.sweeping`` (bit 1 smua, bit 2 smub
sweeping, as independent drivers poll it to wait for a sweep).

Status byte bits used: 2 EAV (an error is queued), 5 ESB (an enabled standard event), 6 MSS (an enabled
summary bit), 7 OSB (an enabled operation event). Standard event bits: 0 OPC, 2 QYE, 3 DDE, 4 EXE, 5 CME,
set by the error that is queued (-1xx command, -2xx execution, -4xx query, others device-dependent). The
operation register's bit 3 (SWE) is set while a channel sweeps. Not simulated: the measurement and
questionable registers and the node/TSP-Link summary bits (they read 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mock_instruments.scpi_errors import ESR_OPC, esr_bit
from mock_instruments.tsp import Node, ParameterRangeError, checked

SWEEPING_BIT = 8  # status.operation bit 3


class TspStatus:
    """Status registers of a TSP instrument; the instrument supplies ``sweeping()`` (which channels sweep),
    its error queue and ``wait_pending()``."""

    errors: list[tuple[int, str, int]]
    idn: str

    def wait_pending(self) -> Any:
        raise NotImplementedError

    def sweeping(self) -> int:
        """Bit 1 (smua) and bit 2 (smub) of the channels whose trigger model runs."""
        raise NotImplementedError

    def fire_command_trigger(self) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def reset_status(self) -> None:
        self.esr = self.ese = self.sre = 0
        self.operation_event = self.operation_enable = 0
        self.sweeping_event = self.sweeping_enable = 0

    def note_error(self, code: int) -> None:
        """The standard event bit an error sets."""
        self.esr |= esr_bit(code)

    # ---------------------------------------------------------------------------------- registers
    def operation_condition(self) -> int:
        return SWEEPING_BIT if self.sweeping() else 0

    def status_byte(self) -> int:
        self.operation_event |= self.operation_condition()
        self.sweeping_event |= self.sweeping()
        stb = (4 if self.errors else 0) | (32 if self.esr & self.ese else 0)
        stb |= 128 if self.operation_event & self.operation_enable else 0
        return stb | (64 if stb & self.sre else 0)

    def _read_clear(self, name: str) -> Callable[[], float]:
        def read() -> float:
            self.status_byte()  # latch the present conditions into the event registers
            value = getattr(self, name)
            setattr(self, name, 0)
            return float(value)
        return read

    def _register(self, name: str) -> tuple[Callable[[], float], Callable[[Any], None]]:
        def set_(value: Any) -> None:
            setattr(self, name, int(checked(value, 0, 65535, name)))
        return (lambda: float(getattr(self, name))), set_

    def status_node(self) -> Node:
        sweeping = Node("status.operation.sweeping", {
            "condition": (lambda: float(self.sweeping()), None), "event": (self._read_clear("sweeping_event"), None),
            "enable": self._register("sweeping_enable")})
        operation = Node("status.operation", {
            "condition": (lambda: float(self.operation_condition()), None),
            "event": (self._read_clear("operation_event"), None), "enable": self._register("operation_enable")},
            {"sweeping": sweeping})
        standard = Node("status.standard", {
            "condition": (lambda: float(self.esr), None), "event": (self._read_clear("esr"), None),
            "enable": self._register("ese")})
        return Node("status", {"condition": (lambda: float(self.status_byte()), None),
                               "request_enable": self._register("sre")},
                    {"standard": standard, "operation": operation, "reset": lambda _a: self.reset_status()})

    # ------------------------------------------------------------------------------ common commands
    def common_command(self, command: str) -> str | bool | None:
        """An IEEE 488.2 common command (upper case): its reply, None for none, False if it is none."""
        name, _, argument = command.partition(" ")
        setting = {"*ESE": "ese", "*SRE": "sre"}.get(name)
        if setting is not None:
            try:
                setattr(self, setting, int(checked(float(argument), 0, 255, name)))
            except (ValueError, ParameterRangeError):
                self.errors.append((-224, "Illegal parameter value", 20))
                self.note_error(-224)
            return None
        queries: dict[str, Callable[[], str]] = {
            "*IDN?": lambda: self.idn, "*ESE?": lambda: str(self.ese), "*SRE?": lambda: str(self.sre),
            "*STB?": lambda: str(self.status_byte()), "*ESR?": lambda: str(int(self._read_clear("esr")())),
            "*TST?": lambda: "0", "*OPC?": self._opc_query}
        if name in queries:
            return queries[name]()
        actions: dict[str, Callable[[], Any]] = {
            "*RST": self.reset, "*CLS": self._clear, "*WAI": self.wait_pending, "*OPC": self._opc,
            "*TRG": self.fire_command_trigger}
        if name in actions:
            actions[name]()
            return None
        return False

    def _clear(self) -> None:
        self.errors.clear()
        self.esr = self.operation_event = self.sweeping_event = 0

    def _opc(self) -> None:
        self.wait_pending()
        self.esr |= ESR_OPC

    def _opc_query(self) -> str:
        self.wait_pending()
        return "1"
