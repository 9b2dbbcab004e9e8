"""Exceptions users see. Each names what went wrong in terms of the lab, not of the code."""

from __future__ import annotations


class LabctlError(Exception):
    """Base class for every error labctl raises on purpose."""


class ParameterError(LabctlError, ValueError):
    """A procedure parameter is missing, of the wrong type or out of its allowed range."""


class InstrumentError(LabctlError):
    """An instrument reported an error (its error queue) or could not be reached after retries."""

    def __init__(self, message: str, *, instrument: str = "", address: str = "") -> None:
        where = ", ".join(p for p in (instrument, address) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.instrument = instrument
        self.address = address


class InstrumentTimeout(InstrumentError):
    """No reply within the timeout (retried first; raised when the retries are used up)."""


class ConnectionLost(InstrumentError):
    """The connection to an instrument dropped and could not be reopened."""


class StationError(LabctlError):
    """A station file names an unknown driver, a bad address or inconsistent wiring."""


class InterlockTripped(LabctlError):
    """A safety interlock stopped the run (over-temperature, lamp failure, compliance)."""


class RunAborted(LabctlError):
    """The run was aborted by the user (GUI button, Ctrl-C, SIGTERM)."""


class DataFileError(LabctlError):
    """A data file cannot be created, opened or resumed (exists already, not a labctl file, ...)."""
