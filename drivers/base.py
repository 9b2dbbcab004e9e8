"""What every labctl driver shares: one lock per instrument, bounded retries, reconnect, raised errors.

Drivers subclass :class:`LabInstrument` (or :class:`SCPILabInstrument`) and declare their settings with
pymeasure's ``Instrument.control/measurement/setting``. Everything a property or a role method sends goes
through :meth:`LabInstrument.write` and :meth:`LabInstrument.ask`, which is where recovery lives:

- a reply that does not arrive (timeout) or arrives garbled is asked again, ``max_retries`` times;
- a dropped connection is reopened with bounded exponential back-off (``max_reconnects`` attempts), the
  instrument's configuration is re-applied (:meth:`reapply_configuration`), and the command is repeated;
- what cannot be recovered raises :class:`~labctl.errors.InstrumentTimeout` or
  :class:`~labctl.errors.ConnectionLost` naming the instrument and its address;
- errors the instrument reports in its error queue raise :class:`~labctl.errors.InstrumentError`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import pyvisa.constants
import pyvisa.errors
from pymeasure.adapters import Adapter
from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.generic_types import SCPIMixin

from labctl.clock import Clock, RealClock
from labctl.errors import ConnectionLost, InstrumentError, InstrumentTimeout

log = logging.getLogger(__name__)

AdapterFactory = Callable[[], Adapter]

_TIMEOUT_CODES = {pyvisa.constants.StatusCode.error_timeout}
_CONNECTION_CODES = {
    pyvisa.constants.StatusCode.error_connection_lost,
    pyvisa.constants.StatusCode.error_invalid_object,
    pyvisa.constants.StatusCode.error_io,
    pyvisa.constants.StatusCode.error_resource_not_found,
}


class GarbledReply(Exception):
    """A reply with bytes no instrument sends in a text reply (line noise, a baud-rate mismatch)."""


def is_timeout(exc: BaseException) -> bool:
    """True for the exceptions our transports raise when a reply does not come in time."""
    if isinstance(exc, pyvisa.errors.VisaIOError):
        return exc.error_code in _TIMEOUT_CODES
    return isinstance(exc, TimeoutError | GarbledReply)


def is_connection_lost(exc: BaseException) -> bool:
    """True for a dropped link (socket reset, unplugged USB, serial port gone)."""
    if isinstance(exc, pyvisa.errors.VisaIOError):
        return exc.error_code in _CONNECTION_CODES
    if isinstance(exc, TimeoutError):
        return False
    try:
        import serial

        if isinstance(exc, serial.SerialException):
            return True
    except ImportError:  # pragma: no cover - pyserial is a dependency
        pass
    return isinstance(exc, ConnectionError | EOFError | OSError)


#: SCPI output on/off headers (``OUTP``, ``:OUTPut2:STATe``, ``OUTPUT``), as :meth:`LabInstrument.setting_key`
#: gives them.
_OUTPUT_SETTING = re.compile(r"^:?OUTP(UT)?\d*(:STAT(E)?)?$")


def _looks_garbled(reply: str) -> bool:
    return any((ord(c) < 32 and c not in "\t\r\n") or ord(c) > 126 for c in reply)


class LabInstrument(Instrument):
    """A pymeasure instrument with labctl's recovery and safety rules.

    :param adapter: a pymeasure adapter, or a VISA resource string.
    :param name: the instrument's name in the station (used in every error message); without one,
        :attr:`default_name`.
    :param address: the address it was opened with (for messages and reconnects).
    :param adapter_factory: how to open a fresh connection after a drop; without one a dropped
        connection is final.
    :param clock: waits (back-off, settling) go through it; the simulated bench passes its virtual clock.
    :param max_retries: how often a timed-out or garbled query is asked again.
    :param max_reconnects: how often a dropped connection is reopened before giving up.
    :param backoff_s: the first back-off delay; it doubles with each attempt, capped at ``max_backoff_s``.
    """

    max_retries = 2
    max_reconnects = 3
    backoff_s = 0.2
    max_backoff_s = 5.0
    #: The name an instrument gets when none is given (drivers set their model's name).
    default_name = "instrument"

    def __init__(
        self,
        adapter: Adapter | str,
        name: str | None = None,
        *,
        address: str = "",
        adapter_factory: AdapterFactory | None = None,
        clock: Clock | None = None,
        max_retries: int | None = None,
        max_reconnects: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("includeSCPI", False)
        super().__init__(adapter, self.default_name if name is None else name, **kwargs)
        self.lock = threading.RLock()
        self.address = address
        self.clock: Clock = clock if clock is not None else RealClock()
        self._adapter_factory = adapter_factory
        if max_retries is not None:
            self.max_retries = max_retries
        if max_reconnects is not None:
            self.max_reconnects = max_reconnects
        self._settings_log: dict[str, str] = {}
        self.reconnect_count = 0
        self.retry_count = 0

    # ----------------------------------------------------------------- communication with recovery
    def write(self, command: str, **kwargs: Any) -> None:
        with self.lock:
            self._recovering(lambda: super(LabInstrument, self).write(command, **kwargs), command, False)
            self._remember_setting(command)

    def ask(self, command: str, query_delay: float | None = None) -> str:
        with self.lock:
            return self._recovering(lambda: self._ask_once(command, query_delay), command, True)

    def ask_entry(self, command: str) -> str:
        """Ask a query that takes what it reports off the instrument (an error-queue entry).

        A timeout is asked again as by :meth:`ask`, but a garbled reply is not: the instrument has handed out
        the entry, and asking again would read the next one as if the lost one had never been there. It
        raises :class:`InstrumentError` instead.
        """
        with self.lock:
            return self._recovering(lambda: self._ask_once(command, None), command, True, repeat_garbled=False)

    def _ask_once(self, command: str, query_delay: float | None) -> str:
        super().write(command)
        self.wait_for(query_delay)
        reply = super().read()
        if _looks_garbled(reply):
            raise GarbledReply(f"garbled reply to {command!r}: {reply!r}")
        return reply

    def wait_for(self, query_delay: float | None = None) -> None:
        if query_delay:
            self.clock.sleep(query_delay)

    def _recovering(self, operation: Callable[[], Any], command: str, is_query: bool, *,
                    repeat_garbled: bool = True) -> Any:
        retries = 0
        reconnects = 0
        while True:
            try:
                return operation()
            except Exception as exc:
                if is_query and isinstance(exc, GarbledReply) and not repeat_garbled:
                    self._drain()
                    raise InstrumentError(
                        f"the error queue entry read by {command!r} was lost to a garbled reply ({exc}); "
                        "an instrument error may have gone unreported",
                        instrument=self.name,
                        address=self.address,
                    ) from exc
                if is_query and is_timeout(exc):
                    if retries >= self.max_retries:
                        raise InstrumentTimeout(
                            f"no valid reply to {command!r} after {retries + 1} attempts ({exc})",
                            instrument=self.name,
                            address=self.address,
                        ) from exc
                    retries += 1
                    self.retry_count += 1
                    log.warning("%s: %s; asking again (%d/%d)", self.name, exc, retries, self.max_retries)
                    self._drain()
                    continue
                if is_connection_lost(exc) or (not is_query and is_timeout(exc)):
                    # Repeat the command only on a link that was reopened and configured again: a failed
                    # reopening or replay is one attempt used up, not a reason to use the closed link.
                    while True:
                        if reconnects >= self.max_reconnects or self._adapter_factory is None:
                            raise ConnectionLost(
                                f"connection lost during {command!r} and not restored after "
                                f"{reconnects} reconnect attempt(s) ({exc})",
                                instrument=self.name,
                                address=self.address,
                            ) from exc
                        reconnects += 1
                        if self._reconnect(reconnects, exc):
                            break
                    continue
                raise

    def _drain(self) -> None:
        """Discard a late or partial reply so the next query is not answered with a stale one."""
        clear = getattr(self.adapter, "flush_read_buffer", None)
        if callable(clear):
            try:
                clear()
            except Exception:  # a drain is best effort: the retry itself will tell
                log.debug("%s: could not flush the read buffer", self.name, exc_info=True)

    def _reconnect(self, attempt: int, cause: BaseException) -> bool:
        """Reopen the link and re-apply the configuration; False when either failed on the link."""
        delay = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
        log.warning("%s: connection lost (%s); reopening in %.1f s (attempt %d/%d)",
                    self.name, cause, delay, attempt, self.max_reconnects)
        old_adapter: Adapter | None = getattr(self, "adapter", None)
        try:
            if old_adapter is not None:
                old_adapter.close()
        except Exception:  # the old link is gone anyway
            log.debug("%s: closing the lost connection failed", self.name, exc_info=True)
        self.clock.sleep(delay)
        assert self._adapter_factory is not None
        try:
            new_adapter: Adapter = self._adapter_factory()
        except Exception as exc:
            log.warning("%s: reopening failed: %s", self.name, exc)
            return False
        self.adapter = new_adapter
        self.reconnect_count += 1
        try:
            self.reapply_configuration()
        except Exception as exc:
            if not (is_connection_lost(exc) or is_timeout(exc)):
                raise
            log.warning("%s: re-applying the configuration failed: %s", self.name, exc)
            return False
        return True

    # ---------------------------------------------------------------------- configuration replay
    def _remember_setting(self, command: str) -> None:
        header, _, argument = command.strip().partition(" ")
        if header.upper() in {"*RST", "SYST:PRES", ":SYST:PRES"}:
            self._settings_log.clear()
        elif argument and self.replayable(header):
            key = self.setting_key(command)
            # Re-insert so replay follows the order in which the settings were last made.
            self._settings_log.pop(key, None)
            self._settings_log[key] = command

    def setting_key(self, command: str) -> str:
        """Which earlier setting a command replaces: by default its header (``SOUR:VOLT``).

        Models whose settings are addressed by a leading argument (``RANGE 1,3`` vs ``RANGE 2,0``) override
        this to include that argument.
        """
        return command.strip().partition(" ")[0].upper()

    def replayable(self, header: str) -> bool:
        """Whether a command with this header sets state that must be re-applied after a reconnect.

        Commands with an argument are settings; commands without one are actions (INIT, *TRG) and are
        never replayed. Drivers override this to exclude setting-like actions.
        """
        return True

    def is_output_setting(self, key: str) -> bool:
        """Whether the setting :meth:`setting_key` ``key`` switches an output (``OUTP``, ``OUTP2:STAT``).

        A replay sends these after every other setting: an instrument that lost its configuration (power
        cycle) must not switch its output on while its function, level and limit are still the defaults or a
        stale level of the other source function. Drivers whose outputs have other commands override this.
        """
        return bool(_OUTPUT_SETTING.match(key))

    def reapply_configuration(self) -> None:
        """Send the last value of every setting again, in the order they were last made, output switches
        last (:meth:`is_output_setting`)."""
        settings = list(self._settings_log.items())
        outputs = [command for key, command in settings if self.is_output_setting(key)]
        for command in [command for key, command in settings if not self.is_output_setting(key)] + outputs:
            super().write(command)

    # --------------------------------------------------------------------------------- errors
    def raise_if_error(self, context: str = "") -> None:
        """Read the error queue; raise :class:`InstrumentError` listing every entry if any."""
        errors = self.check_errors()
        if errors:
            listed = "; ".join(f"{code}, {msg}" for code, msg in errors)
            where = f" after {context!r}" if context else ""
            raise InstrumentError(f"instrument reported{where}: {listed}",
                                  instrument=self.name, address=self.address)

    def check_errors(self) -> list[tuple[int, str]]:
        """Subclasses read their model's error queue; instruments without one return []."""
        return []

    def error_code(self, text: str, reply: str) -> int:
        """The code of an error-queue entry ``reply`` from its code field ``text``; an unreadable one raises
        :class:`InstrumentError`."""
        try:
            return int(float(text))
        except ValueError as exc:
            raise InstrumentError(f"unreadable error queue entry {reply!r}",
                                  instrument=self.name, address=self.address) from exc

    def check_set_errors(self) -> list[tuple[int, str]]:
        self.raise_if_error("setting")
        return []

    def check_get_errors(self) -> list[tuple[int, str]]:
        self.raise_if_error("query")
        return []

    # ------------------------------------------------------------------------------ role basics
    def identify(self) -> str:
        return self.ask("*IDN?").strip()

    def safe_state(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define safe_state()")

    def shutdown(self) -> None:
        try:
            self.safe_state()
        finally:
            super().shutdown()


class LabChannel(Channel):
    """A pymeasure channel whose queries go through the parent's :meth:`LabInstrument.ask`.

    pymeasure's own channel writes and reads separately, which would bypass the parent's lock and its
    retry of timed-out queries.
    """

    def ask(self, command: str, query_delay: float | None = None) -> str:
        return str(self.parent.ask(self.insert_id(command), query_delay))


class SCPILabInstrument(SCPIMixin, LabInstrument):
    """A :class:`LabInstrument` that speaks IEEE 488.2 / SCPI (``*IDN?``, ``SYST:ERR?``)."""

    #: The query that reads (and removes) the oldest error-queue entry.
    error_query = "SYST:ERR?"

    def check_errors(self) -> list[tuple[int, str]]:
        """Ask :attr:`error_query` until it answers code 0 (``0,"No error"``)."""
        errors: list[tuple[int, str]] = []
        for _ in range(32):  # an error queue holds at most a few dozen entries; never loop forever
            reply = self.ask_entry(self.error_query).strip()
            code_text, message = self.split_error_entry(reply)
            code = self.error_code(code_text, reply)
            if code == 0:
                break
            errors.append((code, message.strip().strip('"')))
        return errors

    def split_error_entry(self, reply: str) -> tuple[str, str]:
        """An error-queue entry ``<code>,"<message>"`` as its code field and its message."""
        code_text, _, message = reply.partition(",")
        return code_text, message


def attempt_all(name: str, address: str, steps: list[tuple[str, Callable[[], Any]]]) -> None:
    """Run every step of a safe-state sequence even if some fail, then raise one error listing failures.

    A half-configured or half-broken instrument must still get as safe as it can: a failed "output off"
    must not stop us from trying "bias off".
    """
    failures: list[str] = []
    for label, step in steps:
        try:
            step()
        except Exception as exc:
            log.error("%s: safe-state step %r failed: %s", name, label, exc)
            failures.append(f"{label}: {exc}")
    if failures:
        raise InstrumentError("could not reach safe state: " + "; ".join(failures),
                              instrument=name, address=address)
