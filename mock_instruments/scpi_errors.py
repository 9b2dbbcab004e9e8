"""SCPI error codes (IEEE 488.2 / SCPI-99 chapter 21), the exception that carries one, and the
standard-event-register bit each sets."""

from __future__ import annotations

ERRORS: dict[int, str] = {
    0: "No error", -100: "Command error", -101: "Invalid character", -102: "Syntax error",
    -104: "Data type error", -108: "Parameter not allowed", -109: "Missing parameter",
    -113: "Undefined header", -114: "Header suffix out of range", -131: "Invalid suffix",
    -138: "Suffix not allowed", -200: "Execution error", -221: "Settings conflict",
    -222: "Data out of range", -224: "Illegal parameter value", -350: "Queue overflow",
    -410: "Query INTERRUPTED", -420: "Query UNTERMINATED",
}
ESR_OPC, ESR_QYE, ESR_DDE, ESR_EXE, ESR_CME = 1, 4, 8, 16, 32


class ScpiError(Exception):
    """Raised by a handler (or the parser): ``code`` from :data:`ERRORS`, optional device detail."""

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(f"{code},{ERRORS.get(code, 'Error')}{'; ' + detail if detail else ''}")
        self.code = code
        self.detail = detail


def esr_bit(code: int) -> int:
    """The standard-event-register bit an error code sets."""
    if -199 <= code <= -100:
        return ESR_CME
    if -299 <= code <= -200:
        return ESR_EXE
    if -499 <= code <= -400:
        return ESR_QYE
    return ESR_DDE
