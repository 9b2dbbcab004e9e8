"""What every labctl driver shares: one lock per instrument, links that never lie, long-run reconnects.

Drivers subclass :class:`LabInstrument` (or :class:`SCPILabInstrument`) and declare their settings with
pymeasure's ``Instrument.control/measurement/setting``. Everything a property or a role method sends goes
through :meth:`LabInstrument.write` and :meth:`LabInstrument.ask`, which is where recovery lives:

- **atomic steps**: every property get/set (the command *and* the error-queue check pymeasure runs after it)
  holds the instrument's lock, so one thread's rejected setting is never reported in another thread, and an
  error-queue read of several queries (TSP) is never interleaved; role methods hold ``with self.lock:``
  around their own command sequences;
- **in step after a timeout**: a reply that does not arrive (timeout) marks the link out of step; before the
  next command the driver resynchronises (:meth:`LabInstrument.resync`: drop what is buffered, send the model's
  :meth:`~LabInstrument.sync_marker` query and discard every reply until the marker's own answer arrives — an
  instrument answers in order, so a late reply to an earlier query can only come before it), or reopens the
  link when the model has no marker. No query is ever answered with another query's reply;
- a timed-out or garbled query is asked again, ``max_retries`` times;
- a dropped connection is reopened under the :class:`LinkPolicy` (exponential back-off with a cap and a
  give-up time, sized for 1000 h runs; the station file can set it); the back-off waits without holding the
  instrument and is cut short by cancelling the run; the configuration is replayed
  (:meth:`reapply_configuration`) with the instrument's error check, and the command repeated;
- what cannot be recovered raises :class:`~labctl.errors.InstrumentTimeout` or
  :class:`~labctl.errors.ConnectionLost` naming the instrument and its address;
- errors the instrument reports in its error queue raise :class:`~labctl.errors.InstrumentError`;
- link events (lost, reconnect attempt, restored, given up, resynchronised) go to :attr:`link_listener`, so
  the run engine can record them and suspend the channels that use the instrument.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

import pyvisa.constants
import pyvisa.errors
from pymeasure.adapters import Adapter
from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.common_base import DynamicProperty
from pymeasure.instruments.generic_types import SCPIMixin

from labctl.clock import Clock, RealClock, released
from labctl.errors import ConnectionLost, InstrumentError, InstrumentTimeout, StationError

log = logging.getLogger(__name__)

AdapterFactory = Callable[[], Adapter]
#: ``listener(kind, message, data)`` with kind one of link_lost, reconnect_failed, link_restored,
#: link_given_up, resynchronised.
LinkListener = Callable[[str, str, dict[str, Any]], None]

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


def _is_link_failure(exc: BaseException) -> bool:
    return is_connection_lost(exc) or is_timeout(exc)


#: SCPI output on/off headers (``OUTP``, ``:OUTPut2:STATe``, ``OUTPUT``), as :meth:`LabInstrument.setting_key`
#: gives them.
_OUTPUT_SETTING = re.compile(r"^:?OUTP(UT)?\d*(:STAT(E)?)?$")


def _looks_garbled(reply: str) -> bool:
    return any((ord(c) < 32 and c not in "\t\r\n") or ord(c) > 126 for c in reply)


@dataclass(frozen=True)
class LinkPolicy:
    """How long and how often a lost instrument is reconnected.

    The first reopening is tried at once; then the waits grow from ``first_interval_s`` by ``factor`` up to
    ``max_interval_s``; after ``give_up_after_s`` (on the run's clock) the driver raises
    :class:`~labctl.errors.ConnectionLost`. The defaults keep trying for an hour with waits capped at five
    minutes: a network blip, a rebooted controller or a power-cycled SMU does not end a 1000 h run.
    Station files set it per instrument (``reconnect = {give_up_after_s = 600}``) or for every instrument
    (a top-level ``[reconnect]`` table).
    """

    first_interval_s: float = 1.0
    max_interval_s: float = 300.0
    give_up_after_s: float = 3600.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise StationError(f"reconnect.{item.name} = {value!r} must be a finite number >= 0")
        if self.factor < 1:
            raise StationError(f"reconnect.factor = {self.factor!r} must be >= 1")

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None, base: LinkPolicy | None = None) -> LinkPolicy:
        """A policy from a station table, over ``base`` (unknown keys are refused, naming the allowed ones)."""
        known = {item.name for item in fields(cls)}
        values = {item.name: getattr(base or cls(), item.name) for item in fields(cls)}
        for key, value in dict(options or {}).items():
            if key not in known:
                raise StationError(f"reconnect: unknown key {key!r}; allowed: {', '.join(sorted(known))}")
            if isinstance(value, bool):
                raise StationError(f"reconnect.{key} = {value!r} must be a number")
            values[key] = value
        return cls(**values)

    def waits_s(self) -> Iterator[float]:
        """0 (the first attempt), then the growing back-off waits, forever."""
        yield 0.0
        wait = self.first_interval_s
        while True:
            yield min(wait, self.max_interval_s)
            wait = min(wait * self.factor, self.max_interval_s) if wait > 0 else self.max_interval_s


#: What a safe state at the end of a run tolerates: one quick reopening, no hour of back-off.
QUICK_LINK_POLICY = LinkPolicy(first_interval_s=0.5, max_interval_s=0.5, give_up_after_s=1.0)


def _instrument_lock(obj: Any) -> Any:
    """The lock an instrument's property access holds (a channel's is its parent's)."""
    owner = obj
    while isinstance(owner, Channel):
        owner = owner.parent
    return owner.__dict__.get("lock")


def _locked(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        lock = _instrument_lock(self)
        if lock is None:  # during construction, before the lock exists
            return function(self, *args, **kwargs)
        with lock:
            return function(self, *args, **kwargs)

    call.__wrapped__ = function  # type: ignore[attr-defined]
    call._labctl_locked = True  # type: ignore[attr-defined]
    return call


def _locked_property(prop: property) -> property:
    """``prop`` with its getter and setter run under the instrument's lock: pymeasure's command and its
    error-queue check become one step no other thread can come between."""
    fget = _locked(prop.fget) if prop.fget is not None else None
    fset = _locked(prop.fset) if prop.fset is not None else None
    if isinstance(prop, DynamicProperty):
        wrapped: property = DynamicProperty(fget, fset, prop.fdel, prop.__doc__,
                                            fget_params_list=prop.fget_params_list,
                                            fset_params_list=prop.fset_params_list, prefix=prop.prefix)
        wrapped.name = prop.name  # type: ignore[attr-defined]
        return wrapped
    return property(fget, fset, prop.fdel, prop.__doc__)


def lock_properties(cls: type) -> None:
    """Wrap every property ``cls`` has (its own and inherited from pymeasure drivers) in the instrument lock."""
    for klass in cls.__mro__:
        if klass in (object, Instrument, Channel):
            continue
        for name, member in list(vars(klass).items()):
            if not isinstance(member, property) or name in _UNLOCKED_PROPERTIES:
                continue
            if getattr(member.fget, "_labctl_locked", False) or getattr(member.fset, "_labctl_locked", False):
                continue
            prop: property = member
            if getattr(cls, name, None) is prop:  # not overridden further down the MRO
                setattr(cls, name, _locked_property(prop))


#: Properties that talk to no instrument (and must stay usable while another thread holds the lock).
_UNLOCKED_PROPERTIES = frozenset({"name", "adapter", "id"})


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
    :param link_policy: how long and how often a dropped connection is reopened (:class:`LinkPolicy`).
    :param max_reconnects: an extra cap on reopening attempts (None: the policy alone decides).
    """

    max_retries = 2
    max_reconnects: int | None = None
    link_policy = LinkPolicy()
    #: How many replies a resynchronisation reads (and discards) while looking for the marker's answer.
    max_sync_reads = 16
    #: The name an instrument gets when none is given (drivers set their model's name).
    default_name = "instrument"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        lock_properties(cls)

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
        link_policy: LinkPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("includeSCPI", False)
        clock = clock if clock is not None else RealClock()
        make_lock = getattr(clock, "lock", None)
        self.lock = make_lock() if callable(make_lock) else threading.RLock()
        super().__init__(adapter, self.default_name if name is None else name, **kwargs)
        self.address = address
        self.clock: Clock = clock
        self._adapter_factory = adapter_factory
        if max_retries is not None:
            self.max_retries = max_retries
        if max_reconnects is not None:
            self.max_reconnects = max_reconnects
        if link_policy is not None:
            self.link_policy = link_policy
        self.link_listener: LinkListener | None = None
        self._settings_log: dict[str, str] = {}
        self.reconnect_count = 0
        self.retry_count = 0
        self.resync_count = 0
        self._in_step = True
        self._sync_counter = 0
        self._reconnecting = False
        self._reconnector: int | None = None
        self._link_generation = 0  # +1 each time a reconnect cycle ends (restored or given up)
        self._link_gave_up: ConnectionLost | None = None
        self._replaying = False
        self._quick = 0

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
        while True:
            try:
                self._await_link(command)
                if not self._in_step:
                    self.resync()
                return operation()
            except Exception as exc:
                if self._replaying:  # a failure while replaying is the reconnect's to count
                    raise
                if is_query and isinstance(exc, GarbledReply) and not repeat_garbled:
                    self._drain()
                    raise InstrumentError(
                        f"the error queue entry read by {command!r} was lost to a garbled reply ({exc}); "
                        "an instrument error may have gone unreported",
                        instrument=self.name,
                        address=self.address,
                    ) from exc
                if is_query and is_timeout(exc):
                    if not isinstance(exc, GarbledReply):
                        # The reply may still come: the link is out of step until resynchronised.
                        self._in_step = False
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
                    # Repeat the command only on a link that was reopened and configured again.
                    self._restore_link(command, exc)
                    continue
                raise

    def _drain(self) -> None:
        """Discard what the transport has buffered (a late or partial reply that arrived already)."""
        clear = getattr(self.adapter, "flush_read_buffer", None)
        if callable(clear):
            try:
                clear()
            except Exception:  # a drain is best effort: the resynchronisation itself will tell
                log.debug("%s: could not flush the read buffer", self.name, exc_info=True)

    # ----------------------------------------------------------------------------- in step
    def sync_marker(self, n: int) -> tuple[str, str] | None:
        """A query whose answer proves the link is in step: (command, the exact reply), ``n`` in 1…255
        changing every time. None: the model has none, and a resynchronisation reopens the link."""
        return None

    def resync(self) -> None:
        """Bring the link back in step after a timeout (see the module docstring).

        Replies read while looking for the marker's answer belong to earlier queries and are discarded.
        Without a marker, or when the marker's answer does not come, the link is reopened.
        """
        self._drain()
        self._sync_counter = self._sync_counter % 255 + 1
        marker = self.sync_marker(self._sync_counter)
        discarded: list[str] = []
        if marker is not None:
            command, expected = marker
            try:
                super().write(command)
                for _ in range(self.max_sync_reads):
                    reply = super().read()
                    if reply.strip() == expected:
                        self._in_step = True
                        self.resync_count += 1
                        self._link_event("resynchronised", f"link back in step after discarding "
                                         f"{len(discarded)} stale repl{'y' if len(discarded) == 1 else 'ies'}",
                                         discarded=discarded)
                        return
                    discarded.append(reply)
                    log.warning("%s: discarded a stale reply %r while resynchronising", self.name, reply)
            except Exception as exc:
                if not _is_link_failure(exc):
                    raise
                log.warning("%s: no answer to the resynchronisation marker (%s); reopening the link",
                            self.name, exc)
        if self._adapter_factory is None:
            # Nothing better is possible: the drain above dropped what had arrived (for a serial line, the
            # rest of a line cut short too).
            log.warning("%s: link out of step, no marker and no way to reopen it: relying on the drain", self.name)
            self._in_step = True
            return
        # Reopened like a reconnect, configuration replayed: some instruments reset when their port is
        # opened (a serial relay box on an Arduino restarts on DTR).
        try:
            self._reconnect_once()
        except Exception as exc:
            if _is_link_failure(exc):
                raise ConnectionError(f"reopening to resynchronise failed: {exc}") from exc
            raise
        self.resync_count += 1
        self._link_event("resynchronised", "link reopened to get back in step", discarded=discarded)

    # ---------------------------------------------------------------------------- reconnecting
    def _link_event(self, kind: str, message: str, **data: Any) -> None:
        listener = self.link_listener
        if listener is None:
            return
        try:
            listener(kind, message, {"instrument": self.name, **data})
        except Exception:  # a broken listener must not break the link
            log.exception("%s: link listener failed on %s", self.name, kind)

    @contextmanager
    def quick_link(self) -> Iterator[None]:
        """Within the block a lost link gets one quick reopening, not the run's long policy (a safe state at
        the end of a run must not wait an hour for a dead instrument)."""
        with self.lock:
            self._quick += 1
        try:
            yield
        finally:
            with self.lock:
                self._quick -= 1

    def _await_link(self, command: str) -> None:
        """Called with the lock held: while another thread reconnects, wait (lock released) for the outcome."""
        generation = self._link_generation
        waited = False
        while self._reconnecting and self._reconnector != threading.get_ident():
            waited = True
            with released(self.lock):
                self.clock.sleep(0.2)
        if waited and self._link_gave_up is not None and self._link_generation != generation:
            raise ConnectionLost(f"{command!r} not sent: {self._link_gave_up}",
                                 instrument=self.name, address=self.address)

    def _restore_link(self, command: str, cause: BaseException) -> None:
        """Reopen the link under the link policy and replay the configuration; raise ConnectionLost when the
        policy gives up. Called with the lock held; every back-off wait releases it."""
        if self._adapter_factory is None:
            raise ConnectionLost(f"connection lost during {command!r} and no way to reconnect ({cause})",
                                 instrument=self.name, address=self.address) from cause
        policy = QUICK_LINK_POLICY if self._quick else self.link_policy
        self._reconnecting = True
        self._reconnector = threading.get_ident()
        self._link_gave_up = None
        self._link_event("link_lost", f"connection lost during {command!r}: {cause}", command=command)
        start = self.clock.monotonic()
        attempts = 0
        last: BaseException = cause
        try:
            for wait_s in policy.waits_s():
                elapsed = self.clock.monotonic() - start
                capped = self.max_reconnects is not None and attempts >= self.max_reconnects
                if capped or (attempts and elapsed + wait_s > policy.give_up_after_s):
                    error = ConnectionLost(
                        f"connection lost during {command!r} and not restored after {attempts} reconnect "
                        f"attempt(s) over {elapsed:.0f} s ({last})",
                        instrument=self.name, address=self.address)
                    self._link_gave_up = error
                    self._link_event("link_given_up", str(error), attempts=attempts, elapsed_s=elapsed)
                    raise error from cause
                if wait_s:
                    log.warning("%s: reopening in %.1f s (attempt %d)", self.name, wait_s, attempts + 1)
                    with released(self.lock):
                        self.clock.sleep(wait_s)
                attempts += 1
                try:
                    self._reconnect_once()
                except InstrumentError:
                    raise  # the instrument answered and refused the replayed settings: not a link fault
                except Exception as exc:
                    if not _is_link_failure(exc):
                        raise
                    last = exc
                    log.warning("%s: reconnect attempt %d failed: %s", self.name, attempts, exc)
                    self._link_event("reconnect_failed", f"attempt {attempts} failed: {exc}", attempt=attempts)
                    continue
                self._link_event("link_restored", f"reconnected after {attempts} attempt(s)",
                                 attempts=attempts, elapsed_s=self.clock.monotonic() - start)
                return
        finally:
            self._reconnecting = False
            self._link_generation += 1

    def _reconnect_once(self) -> None:
        self._close_adapter()
        assert self._adapter_factory is not None
        try:
            self.adapter = self._adapter_factory()
        except Exception as exc:
            raise ConnectionError(f"reopening failed: {exc}") from exc
        self.reconnect_count += 1
        self._in_step = True
        self._replaying = True
        try:
            self.reapply_configuration()
        finally:
            self._replaying = False

    def _close_adapter(self) -> None:
        old_adapter: Adapter | None = getattr(self, "adapter", None)
        try:
            if old_adapter is not None:
                old_adapter.close()
        except Exception:  # the old link is gone anyway
            log.debug("%s: closing the old link failed", self.name, exc_info=True)

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
        errors = self.check_errors() if settings else []
        if errors:
            listed = "; ".join(f"{code}, {msg}" for code, msg in errors)
            raise InstrumentError(f"refused settings replayed after a reconnect: {listed}",
                                  instrument=self.name, address=self.address)

    # --------------------------------------------------------------------------------- errors
    def raise_if_error(self, context: str = "") -> None:
        """Read the error queue; raise :class:`InstrumentError` listing every entry if any.

        Holds the lock for the whole read: an error queue read in several queries is one step."""
        with self.lock:
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        lock_properties(cls)

    def ask(self, command: str, query_delay: float | None = None) -> str:
        return str(self.parent.ask(self.insert_id(command), query_delay))


class SCPILabInstrument(SCPIMixin, LabInstrument):
    """A :class:`LabInstrument` that speaks IEEE 488.2 / SCPI (``*IDN?``, ``SYST:ERR?``)."""

    #: The query that reads (and removes) the oldest error-queue entry.
    error_query = "SYST:ERR?"

    def sync_marker(self, n: int) -> tuple[str, str] | None:
        """IEEE 488.2 common commands in one message: set the event status enable register to ``n``, read it,
        set it back to its power-on 0, read it: the answer ``"n;0"`` is one no other query just returned, and
        labctl relies on nothing in that register."""
        return f"*ESE {n};*ESE?;*ESE 0;*ESE?", f"{n};0"

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
