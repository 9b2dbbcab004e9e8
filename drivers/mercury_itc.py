"""Oxford Instruments Mercury iTC cryogenic environment controller, SCPI-style command set.

Protocol (Mercury iTC Handbook, chapter "Command reference guide": SCPI command messages, nouns,
"Addressing a temperature sensor", "Addressing a heater controller", "Addressing a control loop",
"Invalid responses"): case-sensitive ``<VERB>:<NOUN>:...`` lines terminated by ``\\n``. There are two
verbs, and the instrument answers both with a ``STAT`` line::

    READ:DEV:MB1.T1:TEMP:SIG:TEMP           ->  STAT:DEV:MB1.T1:TEMP:SIG:TEMP:77.1234K
    SET:DEV:MB1.T1:TEMP:LOOP:TSET:80        ->  STAT:SET:DEV:MB1.T1:TEMP:LOOP:TSET:80:VALID

A refused set ends in ``:INVALID``; a bad noun answers ``...:INVALID``, an unknown board ``NOT_FOUND``,
a function that does not apply ``N/A``, a locked parameter ``DENIED``. Every one of them raises
:class:`~labctl.errors.InstrumentError` naming the command and the reply: the iTC has no error queue, so
each reply is validated instead. Boards are addressed by UID (``MB1.T1`` = temperature sensor 1 on the
motherboard, ``MB1.H1`` its heater; both configurable). ``*IDN?`` answers
``IDN:OXFORD INSTRUMENTS:MERCURY ITC:<serial>:<firmware>``.

Control loop nouns used (``DEV:<sensor>:TEMP:LOOP:``): ``TSET`` setpoint (K), ``RSET`` ramp rate (K/min),
``RENA`` ramp enable ON/OFF, ``ENAB`` automatic heater control ON/OFF, ``HSET`` heater output in percent
(manual when ENAB is OFF), ``HTR`` the heater UID the loop drives, ``P``/``I``/``D`` gains. Heater nouns
(``DEV:<heater>:HTR:``): ``VLIM`` voltage limit (V), ``SIG:POWR`` power (W).

Heater ranges: the iTC has no heater ranges like a Lake Shore. ``"off"`` switches automatic control off
and the heater output to 0 %. ``"low"``/``"medium"``/``"high"`` link the loop to the heater and switch
automatic control on; if the station gives ``heater_voltage_limits_V`` (e.g. ``{"low": 4, "medium": 12.6,
"high": 40}``: power decades, since P = V²/R) the heater's ``VLIM`` is set too, otherwise the limit
configured on the instrument is kept.

Coverage: temperature reading, setpoint, ramp rate/enable, automatic heater control, manual heater
percent, heater output read-back and power, PID gains, identification, settings snapshot, safe state
(automatic control off, heater 0 %), re-applying the loop settings after a reconnect. Not covered: gas
flow (AUX/needle valve), level meters, pressure boards, PID tables and zones, sensor calibration.
Uncertain: firmware before 2.x names the gains ``PSET``/``ISET``/``DSET`` (the 2011 handbook) where newer
firmware uses ``P``/``I``/``D``; this driver sends the newer names and raises on ``INVALID``.

Safe state: automatic heater control off and heater output 0 %: no power into the stage, so a runaway
loop or a detached sensor cannot overheat the sample; the cryostat settles at its bath temperature.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any, ClassVar

from pymeasure.adapters import Adapter

from drivers.base import AdapterFactory, LabInstrument, attempt_all
from drivers.temperature_common import (
    HEATER_RANGE_NAMES,
    StabilityWaitMixin,
    check_range,
    heater_range_index,
)
from labctl.clock import Clock
from labctl.errors import InstrumentError, ParameterError

log = logging.getLogger(__name__)

FAILURE_WORDS = ("INVALID", "NOT_FOUND", "N/A", "DENIED")
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf)\s*:?\s*(.*?)\s*$",
                     re.IGNORECASE)


def parse_quantity(text: str) -> tuple[float, str]:
    """``"77.1234K"`` -> (77.1234, "K"); also ``"12.3:mV"``, ``"infK/m"``. ValueError if not a number."""
    match = _NUMBER.match(text)
    if not match:
        raise ValueError(f"not a number with a unit: {text!r}")
    return float(match.group(1)), match.group(2)


class MercuryITC(StabilityWaitMixin, LabInstrument):
    """Mercury iTC as a :class:`~labctl.roles.TemperatureController` for one sensor's control loop.

    :param sensor: UID of the temperature sensor whose loop is controlled and read (``MB1.T1``).
    :param heater: UID of the heater the loop drives (``MB1.H1``).
    :param heater_voltage_limits_V: optional heater voltage limit per range name (low/medium/high).
    """

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

    def __init__(
        self,
        adapter: Adapter | str,
        name: str = "Mercury iTC",
        *,
        address: str = "",
        adapter_factory: AdapterFactory | None = None,
        clock: Clock | None = None,
        sensor: str = "MB1.T1",
        heater: str = "MB1.H1",
        heater_voltage_limits_V: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        for label, uid in (("sensor", sensor), ("heater", heater)):
            if not re.fullmatch(r"[A-Z]+\d+\.[A-Z]+\d+", uid):
                raise ParameterError(f"{label} must be a board UID like MB1.T1 or DB6.H1; got {uid!r}")
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

    # ------------------------------------------------------------------------------- the grammar
    def _error(self, message: str) -> InstrumentError:
        return InstrumentError(message, instrument=self.name, address=self.address)

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
        """``"off"``: heater off. Otherwise link the loop to :attr:`heater` (``LOOP:HTR``), set the heater
        voltage limit if the station configured one for this range (``HTR:VLIM``), and switch automatic
        control on (``LOOP:ENAB:ON``)."""
        index = heater_range_index(heater_range, self.heater_range_names)
        name = self.heater_range_names[index]
        if index == 0:
            self.heater_off()
            return
        with self.lock:
            self.set_noun(f"{self._loop}:HTR", self.heater)
            if name in self.heater_voltage_limits_V:
                self.set_noun(f"DEV:{self.heater}:HTR:VLIM", f"{self.heater_voltage_limits_V[name]:g}")
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
        """The loop's heater output in percent (``LOOP:HSET``)."""
        return self._quantity(f"{self._loop}:HSET", "%")

    def heater_power_W(self) -> float:
        """The heater's present power in watts (``READ:DEV:<heater>:HTR:SIG:POWR``)."""
        return self._quantity(f"DEV:{self.heater}:HTR:SIG:POWR", "W")

    def set_pid(self, p: float, i: float, d: float) -> None:
        """Loop gains (``LOOP:P``, ``LOOP:I``, ``LOOP:D``); P, I 0–199.9, D 0–299.9."""
        values = {key: check_range(key, value, self.pid_ranges[key], "")
                  for key, value in (("P", p), ("I", i), ("D", d))}
        with self.lock:
            for key, value in values.items():
                self.set_noun(f"{self._loop}:{key}", f"{value:g}")

    # -------------------------------------------------------------------------------------- roles
    def settings_snapshot(self) -> dict[str, float | str | bool]:
        """Sensor and heater UIDs, setpoint, ramp, automatic control and heater output."""
        with self.lock:
            return {
                "sensor": self.sensor,
                "heater": self.heater,
                "setpoint_K": self.setpoint_K(),
                "ramp_enabled": self._on_off(f"{self._loop}:RENA"),
                "ramp_rate_K_min": self._quantity(f"{self._loop}:RSET", "K/m"),
                "heater_auto": self._on_off(f"{self._loop}:ENAB"),
                "heater_percent": self.heater_output_percent(),
            }

    def safe_state(self) -> None:
        """Automatic heater control off and heater output 0 %, each step tried."""
        with self.lock:
            attempt_all(self.name, self.address, [
                ("automatic heater control off", lambda: self.set_noun(f"{self._loop}:ENAB", "OFF")),
                ("heater output 0 %", lambda: self.set_noun(f"{self._loop}:HSET", "0")),
            ])

