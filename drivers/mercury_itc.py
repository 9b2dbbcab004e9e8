"""Oxford Instruments Mercury iTC cryogenic environment controller, SCPI-style command set.

Protocol (Mercury iTC Handbook 2011, chapter "Command reference guide", and MercuryiTC Operator's Manual
Issue 05 (2015), section 8.3: verbs, nouns, UIDs, signal scales, invalid responses): case-sensitive
``<VERB>:<NOUN>:...`` lines terminated by ``\n``. There are two verbs, and the instrument answers both with a
``STAT`` line that echoes the request::

    READ:DEV:MB1.T1:TEMP:SIG:TEMP           ->  STAT:DEV:MB1.T1:TEMP:SIG:TEMP:77.1234K
    SET:DEV:MB1.T1:TEMP:LOOP:TSET:80        ->  STAT:SET:DEV:MB1.T1:TEMP:LOOP:TSET:80:VALID

A refused set ends in ``:INVALID``; a bad noun answers ``...:INVALID``, an unknown board ``NOT_FOUND``,
a function that does not apply ``N/A``, a locked parameter ``DENIED``. Every one of them raises
:class:`~labctl.errors.InstrumentError` naming the command and the reply: the iTC has no error queue, so
each reply is validated instead. Because every reply echoes its request, the driver also checks that each
reply belongs to the query it sent (:func:`reply_belongs`): a late reply to an earlier query that timed out
is recognised, skipped and the right one read, so the link cannot fall out of step unnoticed. ``*IDN?``
answers ``IDN:OXFORD INSTRUMENTS:MERCURY ITC:<serial>:<firmware>``.

Boards are addressed by UID. Firmware 2.x (the catalogue ``READ:SYS:CAT`` answers
``STAT:SYS:CAT:DEV:MB0.H1:HTR:DEV:MB1.T1:TEMP`` on a unit without daughter boards; pymeasure's driver and
exchanges recorded from a real iTC in its tests use the same UIDs) names the motherboard's sensor ``MB1.T1``
and its heater ``MB0.H1``; daughter boards are ``DB<slot>.T1``/``DB<slot>.H1``. Which heater a sensor's control
loop drives is a setting of the iTC (``DEV:<sensor>:TEMP:LOOP:HTR``, "heater associated with the loop",
``None`` when unassigned), so this driver does not guess a heater UID: it asks the loop (:meth:`loop_heater`)
and raises a clear error when the loop drives none. A station may name a heater (``heater = "DB1.H1"``); the
driver then assigns it to the loop when heating is switched on.

Control loop nouns used (``DEV:<sensor>:TEMP:LOOP:``): ``TSET`` setpoint (K), ``RSET`` ramp rate (K/min),
``RENA`` ramp enable ON/OFF, ``ENAB`` automatic heater control ON/OFF, ``HSET`` the heater percentage set in
manual (2015 manual: "Sets the Heater percentage (in Manual)": it is not the output while the PID runs),
``HTR`` the heater the loop drives, ``P``/``I``/``D`` gains. Heater nouns (``DEV:<heater>:HTR:``): ``VLIM``
voltage limit (V), ``SIG:VOLT`` the heater's present voltage, ``SIG:POWR`` its present power (W).

Heater output: the iTC's heater percentage is a fraction of the heater's voltage limit (the handbook gives
HSET as "percentage heater output" 0–100 and the heater voltage as 0 to VLIM); the manuals document no
percentage signal on the heater board, so :meth:`MercuryITC.heater_output_percent` measures it as
``100 · SIG:VOLT / VLIM`` of the heater the loop drives. That is an inference from the manuals' noun tables,
stated here because a firmware that scales the percentage otherwise would read differently.

Heater ranges: the iTC has no heater ranges like a Lake Shore. ``"off"`` switches automatic control off
and the heater output to 0 %. ``"low"``/``"medium"``/``"high"`` switch automatic control on for the loop's
heater; if the station gives ``heater_voltage_limits_V`` (e.g. ``{"low": 4, "medium": 12.6, "high": 40}``:
power decades, since P = V²/R) the heater's ``VLIM`` is set too, otherwise the limit configured on the
instrument is kept.

Coverage: temperature reading, setpoint, ramp rate/enable, automatic heater control, manual heater
percent, heater output (measured) and power, the loop's heater assignment, the board catalogue, PID gains,
identification, settings snapshot, safe state (automatic control off, heater 0 %), re-applying the loop
settings after a reconnect, replies checked against their requests. Not covered: gas flow (AUX/needle
valve), level meters, pressure boards, PID tables and zones, sensor calibration. Uncertain: firmware before
2.x names the gains ``PSET``/``ISET``/``DSET`` (the 2011 handbook) where newer firmware uses ``P``/``I``/``D``
(pymeasure's recorded exchanges); this driver sends the newer names and raises on ``INVALID``.

Safe state: automatic heater control off and heater output 0 %: no power into the stage, so a runaway
loop or a detached sensor cannot overheat the sample; the cryostat settles at its bath temperature.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any, ClassVar

from pymeasure.adapters import Adapter
from pymeasure.instruments import Instrument

from drivers.base import AdapterFactory, GarbledReply, LabInstrument, attempt_all
from drivers.limits import check_range
from drivers.temperature_common import (
    HEATER_RANGE_NAMES,
    StabilityWaitMixin,
    heater_range_index,
)
from labctl.clock import Clock
from labctl.errors import InstrumentError, ParameterError

log = logging.getLogger(__name__)

FAILURE_WORDS = ("INVALID", "NOT_FOUND", "N/A", "DENIED")
#: What ``LOOP:HTR`` reads when the loop drives no heater ("put 0 to unset").
NO_HEATER = ("None", "NONE", "0", "")
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf)\s*:?\s*(.*?)\s*$",
                     re.IGNORECASE)
_UID = re.compile(r"[A-Z]+\d+\.[A-Z]+\d+")
#: Signal scale prefixes (Operator's Manual 8.3.5: "SIG is returned as a value, followed by the scale").
SCALES = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6}


def parse_quantity(text: str) -> tuple[float, str]:
    """``"77.1234K"`` -> (77.1234, "K"); also ``"12.3:mV"``, ``"infK/m"``. ValueError if not a number."""
    match = _NUMBER.match(text)
    if not match:
        raise ValueError(f"not a number with a unit: {text!r}")
    return float(match.group(1)), match.group(2)


def si_value(text: str, unit: str) -> float:
    """A signal in its base unit: ``"174.3112mV"`` with unit ``"V"`` -> 0.1743112; a bare number is taken as
    already in ``unit``. ValueError for another unit."""
    value, found = parse_quantity(text)
    if not found:
        return value
    if not found.endswith(unit) or found[: -len(unit)] not in SCALES:
        raise ValueError(f"{text!r} is not in {unit}")
    return value * SCALES[found[: -len(unit)]]


def reply_belongs(command: str, reply: str) -> bool:
    """Whether ``reply`` answers ``command`` (and is not a late reply to an earlier one).

    ``READ:<path>`` is answered ``STAT:<path>:<value>``, ``SET:<path>:<value>`` ``STAT:SET:<path>:<value>:…``;
    a refusal echoes the request up to the term that failed and ends in a failure word
    (``STAT:DEV:MB1.T1:FOO:INVALID``, ``STAT:DEV:DB9.T1:TEMP:SIG:TEMP:NOT_FOUND``); a verb the iTC does not
    know is answered ``<VERB>:INVALID``; ``*IDN?`` is answered ``IDN:…``.
    """
    if command == "*IDN?":
        return reply.startswith("IDN:")
    verb, _, rest = command.partition(":")
    if reply == f"{verb}:INVALID":
        return True
    head = "STAT:SET:" if verb == "SET" else "STAT:"
    if not reply.startswith(head):
        return False
    asked, answered = rest.removesuffix("?").split(":"), reply[len(head):].split(":")
    if answered[: len(asked)] == asked and len(answered) > len(asked):
        return True
    return answered[-1] in FAILURE_WORDS and 0 < len(answered) - 1 <= len(asked) and \
        answered[:-2] == asked[: len(answered) - 2]


class MercuryITC(StabilityWaitMixin, LabInstrument):
    """Mercury iTC as a :class:`~labctl.roles.TemperatureController` for one sensor's control loop.

    :param sensor: UID of the temperature sensor whose loop is controlled and read (``MB1.T1``, the
        motherboard's sensor; ``DB6.T1`` for a daughter board in slot 6).
    :param heater: UID of a heater to assign to the loop when heating is switched on; None (the default)
        uses the heater the loop is already assigned to on the iTC (:meth:`loop_heater`).
    :param heater_voltage_limits_V: optional heater voltage limit per range name (low/medium/high).
    """

    #: The role this driver plays (labctl.roles); its limits below become the role's capabilities.
    role = "temperature_controller"

    temperature_range_K = (0.0, 2000.0)  # TSET; the sensor calibration's cold/hot limit applies on top
    ramp_rate_range_K_min = (0.0, 100.0)  # RSET; 0 = ramping off (RENA OFF)
    heater_percent_range = (0.0, 100.0)  # HSET
    heater_voltage_range_V = (0.0, 40.0)  # VLIM
    pid_ranges: ClassVar[dict[str, tuple[float, float]]] = {
        "P": (0.0, 199.9), "I": (0.0, 199.9), "D": (0.0, 299.9)}
    heater_range_names = HEATER_RANGE_NAMES
    # How to open the link (for the station/transport): LF-terminated lines; Ethernet is TCP port 7020.
    connection_defaults: ClassVar[dict[str, Any]] = {"read_termination": "\n", "write_termination": "\n"}
    tcp_port = 7020
    default_name = "Mercury iTC"
    #: How many late replies to earlier (timed-out) queries are skipped before a reply counts as garbled.
    stale_replies_max = 2

    def __init__(
        self,
        adapter: Adapter | str,
        name: str = "Mercury iTC",
        *,
        address: str = "",
        adapter_factory: AdapterFactory | None = None,
        clock: Clock | None = None,
        sensor: str = "MB1.T1",
        heater: str | None = None,
        heater_voltage_limits_V: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        for label, uid in (("sensor", sensor), ("heater", heater)):
            if uid is not None and not _UID.fullmatch(uid):
                raise ParameterError(f"{label} must be a board UID like MB1.T1 or DB6.T1; got {uid!r}")
        limits = dict(heater_voltage_limits_V or {})
        for key, volts in limits.items():
            if key not in self.heater_range_names[1:]:
                raise ParameterError(f"heater_voltage_limits_V keys must be low/medium/high; got {key!r}")
            low, high = self.heater_voltage_range_V
            if not low <= volts <= high:
                raise ParameterError(f"heater voltage limit {key} = {volts!r} V outside {low:g}–{high:g} V")
        super().__init__(adapter, name, address=address, adapter_factory=adapter_factory, clock=clock,
                         **kwargs)
        self.sensor = sensor
        self.heater = heater
        self.heater_voltage_limits_V = limits
        self._loop = f"DEV:{sensor}:TEMP:LOOP"
        self._set_log: dict[str, str] = {}
        self._identity: str | None = None

    # ------------------------------------------------------------------------------- the grammar
    def _error(self, message: str) -> InstrumentError:
        return InstrumentError(message, instrument=self.name, address=self.address)

    def _ask_once(self, command: str, query_delay: float | None) -> str:
        """Ask once; read past late replies to earlier queries (each is checked with :func:`reply_belongs`).

        A reply that still does not belong after :attr:`stale_replies_max` further reads raises
        :class:`GarbledReply`, which the recovery layer treats like a garbled line (drain, ask again)."""
        reply = super()._ask_once(command, query_delay).strip()
        for _ in range(self.stale_replies_max):
            if reply_belongs(command, reply):
                return reply
            log.warning("%s: skipped %r, a late reply to an earlier query (asked %r)", self.name, reply, command)
            reply = Instrument.read(self).strip()
        if reply_belongs(command, reply):
            return reply
        raise GarbledReply(f"reply {reply!r} does not answer {command!r}")

    def sync_marker(self, n: int) -> tuple[str, str] | None:
        """Resynchronising the link after a timeout: ``*IDN?`` and the identification read before.

        ``n`` is not needed: every reply echoes its request, so :meth:`_ask_once` recognises and skips a
        late reply whatever it is; the marker only has to prove that the iTC answers. Before the first
        :meth:`identify` there is no known reply, and None asks for the link to be reopened instead."""
        return None if self._identity is None else ("*IDN?", self._identity)

    def identify(self) -> str:
        self._identity = self.ask("*IDN?").strip()
        return self._identity

    def read_noun(self, path: str) -> str:
        """``READ:<path>`` and return the value after ``STAT:<path>:``; raises on an invalid reply."""
        command = f"READ:{path}"
        reply = self.ask(command).strip()
        prefix = f"STAT:{path}:"
        value = reply[len(prefix):] if reply.startswith(prefix) else ""
        if not value or value in FAILURE_WORDS or reply.endswith(":INVALID"):
            raise self._error(f"{command!r} was answered {reply!r}")
        return value

    def set_noun(self, path: str, value: str) -> str:
        """``SET:<path>:<value>``; the reply must be ``STAT:SET:<path>:<value>:VALID``. Returns the value the
        instrument echoes. A refused setting raises naming the command and the reply."""
        command = f"SET:{path}:{value}"
        reply = self.ask(command).strip()
        prefix = f"STAT:SET:{path}:"
        if not (reply.startswith(prefix) and reply.endswith(":VALID")):
            raise self._error(f"the controller refused {command!r}: {reply!r}")
        self._set_log[path] = value
        return reply[len(prefix):-len(":VALID")]

    def _quantity(self, path: str, unit: str = "") -> float:
        value = self.read_noun(path)
        try:
            if unit in ("V", "W", "A"):
                return si_value(value, unit)
            number, found_unit = parse_quantity(value)
        except ValueError:
            raise self._error(f"unreadable value {value!r} for {path}") from None
        if unit and found_unit and found_unit != unit:
            raise self._error(f"{path} reads {value!r}, expected a value in {unit}")
        return number

    def _on_off(self, path: str) -> bool:
        value = self.read_noun(path)
        if value not in ("ON", "OFF"):
            raise self._error(f"{path} reads {value!r}, expected ON or OFF")
        return value == "ON"

    def reapply_configuration(self) -> None:
        """After a reconnect, send every loop setting made through this driver again (each is a query on
        the iTC: its STAT reply is read and must be VALID)."""
        for path, value in list(self._set_log.items()):
            reply = self._ask_once(f"SET:{path}:{value}", None).strip()
            if not reply.endswith(":VALID"):
                raise self._error(f"re-applying SET:{path}:{value} after a reconnect failed: {reply!r}")

    # ------------------------------------------------------------------------------------- boards
    def catalogue(self) -> dict[str, str]:
        """The boards of the iTC as {UID: kind} (``READ:SYS:CAT``: ``{"MB0.H1": "HTR", "MB1.T1": "TEMP"}``)."""
        fields = self.read_noun("SYS:CAT").split(":")
        if len(fields) % 3 or any(word != "DEV" for word in fields[::3]):
            raise self._error(f"unreadable catalogue {':'.join(fields)!r}")
        return dict(zip(fields[1::3], fields[2::3], strict=True))

    def _assigned_heater(self) -> str | None:
        value = self.read_noun(f"{self._loop}:HTR")
        return None if value in NO_HEATER else value

    def loop_heater(self) -> str:
        """The UID of the heater the sensor's control loop drives (``LOOP:HTR``); raises
        :class:`InstrumentError` when the loop drives none."""
        heater = self._assigned_heater()
        if heater is None:
            raise self._error(f"the control loop of sensor {self.sensor} drives no heater (LOOP:HTR reads None): "
                              "assign one on the iTC, or name it in the station (heater = \"<UID>\")")
        return heater

    # -------------------------------------------------------------------------------- temperature
    def read_temperature_K(self) -> float:
        """The sensor's temperature in kelvin (``READ:DEV:<sensor>:TEMP:SIG:TEMP``)."""
        value = self._quantity(f"DEV:{self.sensor}:TEMP:SIG:TEMP", "K")
        if not math.isfinite(value):
            raise self._error(f"sensor {self.sensor} reads {value!r} K")
        return value

    def set_setpoint_K(self, temperature_K: float) -> None:
        """Loop setpoint in kelvin (``LOOP:TSET``); the iTC refuses values beyond the sensor's limits."""
        value = check_range("setpoint", temperature_K, self.temperature_range_K, "K")
        self.set_noun(f"{self._loop}:TSET", f"{value:g}")

    def setpoint_K(self) -> float:
        return self._quantity(f"{self._loop}:TSET", "K")

    def set_ramp_rate_K_min(self, rate_K_min: float) -> None:
        """Setpoint ramp rate in K/min (``LOOP:RSET``, then ``LOOP:RENA:ON``); 0 sends ``LOOP:RENA:OFF``."""
        rate = check_range("ramp rate", rate_K_min, self.ramp_rate_range_K_min, "K/min")
        with self.lock:
            if rate == 0:
                self.set_noun(f"{self._loop}:RENA", "OFF")
            else:
                self.set_noun(f"{self._loop}:RSET", f"{rate:g}")
                self.set_noun(f"{self._loop}:RENA", "ON")

    def set_heater_range(self, heater_range: str) -> None:
        """``"off"``: heater off. Otherwise: with a station ``heater``, assign it to the loop
        (``LOOP:HTR``), else ask which heater the loop drives (raises if none); set that heater's voltage
        limit if the station configured one for this range (``HTR:VLIM``), and switch automatic control on
        (``LOOP:ENAB:ON``)."""
        index = heater_range_index(heater_range, self.heater_range_names)
        name = self.heater_range_names[index]
        if index == 0:
            self.heater_off()
            return
        with self.lock:
            if self.heater is not None:
                self.set_noun(f"{self._loop}:HTR", self.heater)
                heater = self.heater
            else:
                heater = self.loop_heater()
            if name in self.heater_voltage_limits_V:
                self.set_noun(f"DEV:{heater}:HTR:VLIM", f"{self.heater_voltage_limits_V[name]:g}")
            self.set_noun(f"{self._loop}:ENAB", "ON")

    def heater_off(self) -> None:
        """Automatic control off (``LOOP:ENAB:OFF``), then heater output 0 % (``LOOP:HSET:0``)."""
        with self.lock:
            self.set_noun(f"{self._loop}:ENAB", "OFF")
            self.set_noun(f"{self._loop}:HSET", "0")

    def set_heater_percent(self, percent: float) -> None:
        """Manual heater output in percent (automatic control off, then ``LOOP:HSET``)."""
        value = check_range("heater output", percent, self.heater_percent_range, "%")
        with self.lock:
            self.set_noun(f"{self._loop}:ENAB", "OFF")
            self.set_noun(f"{self._loop}:HSET", f"{value:g}")

    def heater_output_percent(self) -> float:
        """The heater's present output in percent of its voltage limit, measured on the heater the loop
        drives: ``100 · HTR:SIG:VOLT / HTR:VLIM`` (0 with a zero limit). See the module docstring."""
        with self.lock:
            heater = self.loop_heater()
            volts = self._quantity(f"DEV:{heater}:HTR:SIG:VOLT", "V")
            limit = self._quantity(f"DEV:{heater}:HTR:VLIM", "V")
        return 100.0 * volts / limit if limit > 0 else 0.0

    def heater_power_W(self) -> float:
        """The present power of the heater the loop drives, in watts (``HTR:SIG:POWR``)."""
        with self.lock:
            return self._quantity(f"DEV:{self.loop_heater()}:HTR:SIG:POWR", "W")

    def set_pid(self, p: float, i: float, d: float) -> None:
        """Loop gains (``LOOP:P``, ``LOOP:I``, ``LOOP:D``); P, I 0–199.9, D 0–299.9."""
        values = {key: check_range(key, value, self.pid_ranges[key], "")
                  for key, value in (("P", p), ("I", i), ("D", d))}
        with self.lock:
            for key, value in values.items():
                self.set_noun(f"{self._loop}:{key}", f"{value:g}")

    # -------------------------------------------------------------------------------------- roles
    def settings_snapshot(self) -> dict[str, float | str | bool]:
        """Sensor, the loop's heater (``"None"`` if unassigned), setpoint, ramp, automatic control and,
        with a heater, its measured output."""
        with self.lock:
            heater = self._assigned_heater()
            snapshot: dict[str, float | str | bool] = {
                "sensor": self.sensor,
                "heater": heater or "None",
                "setpoint_K": self.setpoint_K(),
                "ramp_enabled": self._on_off(f"{self._loop}:RENA"),
                "ramp_rate_K_min": self._quantity(f"{self._loop}:RSET", "K/m"),
                "heater_auto": self._on_off(f"{self._loop}:ENAB"),
            }
            if heater is not None:
                snapshot["heater_percent"] = self.heater_output_percent()
            return snapshot

    def safe_state(self) -> None:
        """Automatic heater control off and heater output 0 %, each step tried."""
        with self.lock:
            attempt_all(self.name, self.address, [
                ("automatic heater control off", lambda: self.set_noun(f"{self._loop}:ENAB", "OFF")),
                ("heater output 0 %", lambda: self.set_noun(f"{self._loop}:HSET", "0")),
            ])
