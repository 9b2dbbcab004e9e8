"""Oxford Instruments Mercury iTC, SCPI-style command set, after the Mercury iTC Handbook, chapter "Command
reference guide" (SCPI protocol conventions, verbs, nouns, addressing sensors, heaters and control loops,
invalid responses).

Grammar: one command per ``\\n``-terminated line, case-sensitive, ``<VERB>:<NOUN>:...:<value>``. Two verbs,
both answered with a ``STAT`` line::

    READ:DEV:MB1.T1:TEMP:SIG:TEMP                ->  STAT:DEV:MB1.T1:TEMP:SIG:TEMP:77.1234K
    SET:DEV:MB1.T1:TEMP:LOOP:TSET:80             ->  STAT:SET:DEV:MB1.T1:TEMP:LOOP:TSET:80:VALID

Invalid responses: an unknown verb answers ``<VERB>:INVALID``; an unknown noun ``STAT:...:<noun>:INVALID``
(INVALID right after the term that cannot be interpreted, keywords longer than four characters included);
a UID that is not in the system ``STAT:<path>:NOT_FOUND``; a board of the wrong kind (``TEMP`` nouns on a
heater) ``STAT:<path>:N/A``; a value out of range, or a SET of a read-only noun,
``STAT:SET:<path>:<value>:INVALID``. A READ may end in ``?`` (the handbook's examples do). Only ``*IDN?`` of
the IEEE 488.2 commands is supported (``IDN:OXFORD INSTRUMENTS:MERCURY ITC:<serial>:<firmware>``).

Boards (options ``sensor`` = ``MB1.T1``, ``heater`` = ``MB1.H1``): a diode sensor on the stage block
(``TEMP``: NICK, TYPE, CAL:HOTL/COLD, SIG:TEMP/VOLT/CURR/POWR; ``open_sensor`` fault: the reading is
``inf``) and a heater (``HTR``: NICK, VLIM 0–40 V, RES 20–100 Ω, PMAX, SIG:VOLT/CURR/POWR). The sensor's
loop (``TEMP:LOOP``): HTR (linked heater, ``None``/``0`` unsets), ENAB (automatic PID), HSET (heater %,
set in manual, the PID's output in auto), TSET (cold to hot limit), RSET (K/min) and RENA (ramp), P
(proportional band, K), I and D (action times, min), PIDT (PID tables: not simulated, OFF only). Firmware
2.x noun names: the 2011 handbook's PSET/ISET/DSET are INVALID.

Control: every 0.5 s in auto the PID (``HSET = 100·(e/P + ∫e dt/(P·I) − D·dT/dt/P)``, integrator held at
zero outside the proportional band) sets the heater output; the heater voltage is HSET % of VLIM and the
power V²/RES heats the world's stage (option ``stage``). RES defaults to 40²/heater_max_W (clamped to
20–100 Ω), so full output is the stage's full heater power. An open sensor stops the heater.
Simplifications: no gas flow, level meters, PID/heater target tables, sweeps; no time charged per command.
"""

from __future__ import annotations

import math
import re
import zlib
from datetime import UTC, datetime
from typing import Any

from mock_instruments.temperature_loop import (
    DIODE_LIMITS_K,
    Pid,
    SetpointRamp,
    StageController,
    diode_voltage_V,
)

_NUMBER = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)([A-Za-z/%]*)$")
_UID = re.compile(r"^[A-Z]+\d+(\.[A-Z]+\d+)?$")
EXCITATION_A = 10e-6
# (board kind, noun path) -> (settable, range or None)
_NOUNS: dict[tuple[str, tuple[str, ...]], tuple[bool, tuple[float, float] | None]] = {
    ("TEMP", ("NICK",)): (True, None), ("TEMP", ("TYPE",)): (True, None),
    ("TEMP", ("CAL", "HOTL")): (False, None), ("TEMP", ("CAL", "COLD")): (False, None),
    ("TEMP", ("SIG", "TEMP")): (False, None), ("TEMP", ("SIG", "VOLT")): (False, None),
    ("TEMP", ("SIG", "CURR")): (False, None), ("TEMP", ("SIG", "POWR")): (False, None),
    ("TEMP", ("LOOP", "HTR")): (True, None), ("TEMP", ("LOOP", "ENAB")): (True, None),
    ("TEMP", ("LOOP", "HSET")): (True, (0.0, 100.0)), ("TEMP", ("LOOP", "TSET")): (True, DIODE_LIMITS_K),
    ("TEMP", ("LOOP", "RSET")): (True, (0.0, 100.0)), ("TEMP", ("LOOP", "RENA")): (True, None),
    ("TEMP", ("LOOP", "P")): (True, (0.0, 199.9)), ("TEMP", ("LOOP", "I")): (True, (0.0, 199.9)),
    ("TEMP", ("LOOP", "D")): (True, (0.0, 299.9)), ("TEMP", ("LOOP", "PIDT")): (True, None),
    ("HTR", ("NICK",)): (True, None), ("HTR", ("VLIM",)): (True, (0.0, 40.0)),
    ("HTR", ("RES",)): (True, (20.0, 100.0)), ("HTR", ("PMAX",)): (False, None),
    ("HTR", ("SIG", "VOLT")): (True, None), ("HTR", ("SIG", "CURR")): (False, None),
    ("HTR", ("SIG", "POWR")): (True, None),
}
_GROUPS = {(kind, path[:1]) for kind, path in _NOUNS if len(path) > 1}


class InvalidError(Exception):
    """The command cannot be interpreted at ``index`` (INVALID follows that term)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class RefusedError(Exception):
    """The whole path is understood but the reply is a failure word (NOT_FOUND, N/A, or INVALID value)."""


def parse_value(text: str, unit: str = "") -> float:
    """``80``, ``80.5K``, ``2.5K/m``: the number; ValueError for anything else or a different unit."""
    match = _NUMBER.match(text)
    if match is None or (match.group(2) and match.group(2) != unit):
        raise ValueError(text)
    value = float(match.group(1))
    if not math.isfinite(value):
        raise ValueError(text)
    return value


class MockMercuryITC(StageController):
    """The simulated Mercury iTC (options: ``sensor``, ``heater``, ``serial``, and the base options)."""

    model = "mercury_itc"

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        self.sensor = str(options.pop("sensor", "MB1.T1"))
        self.heater = str(options.pop("heater", "MB1.H1"))
        for uid in (self.sensor, self.heater):
            if not _UID.match(uid):
                raise ValueError(f"board UID {uid!r} must look like MB1.T1")
        serial = options.pop("serial", f"{zlib.crc32(name.encode()) % 1000000:06d}")
        self.idn = f"IDN:OXFORD INSTRUMENTS:MERCURY ITC:{serial}:2.5.09.000"
        stage = world.stage_named(str(options.get("stage", "stage")))
        self.nick = {self.sensor: self.sensor, self.heater: self.heater}
        self.resistance_ohm = min(100.0, max(20.0, 40.0**2 / stage.heater_max_W))
        self.voltage_limit_V = 40.0
        self.heater_V = 0.0
        self.linked: str | None = self.heater
        self.auto = False
        self.heater_percent = 0.0
        self.ramp = SetpointRamp(target_K=round(stage.temperature_K, 1), start_s=world.time_s)
        self.gains = [5.0, 1.0, 0.0]  # P (K), I (min), D (min)
        self.pid = Pid(0.0, None)
        self._tune()
        super().__init__(world, name, **options)

    def is_query(self, message: str) -> bool:
        return bool(message.strip())  # the iTC answers every line, SET included

    # ------------------------------------------------------------------------------------ messages
    def handle(self, message: str) -> str | None:
        line = message.strip()
        if not line:
            return None
        if line == "*IDN?":
            return self.idn
        verb, _, rest = line.partition(":")
        if verb not in ("READ", "SET") or not rest:
            return f"{verb}:INVALID"
        tokens = rest.split(":")
        if verb == "READ" and tokens[-1].endswith("?"):
            tokens[-1] = tokens[-1][:-1]
        prefix = "STAT:" if verb == "READ" else "STAT:SET:"
        try:
            path_length, kind, noun = self._resolve(tokens, verb == "SET")
        except InvalidError as exc:
            return prefix + ":".join(tokens[: exc.index + 1]) + ":INVALID"
        path = ":".join(tokens[:path_length])
        try:
            if verb == "READ":
                return f"STAT:{path}:{self._read(tokens[1], kind, noun)}"
            value = ":".join(tokens[path_length:])
            self._set(tokens[1], kind, noun, value)
        except RefusedError as exc:
            return f"{prefix}{path}:{exc}" if verb == "READ" else f"STAT:SET:{':'.join(tokens)}:{exc}"
        return f"STAT:SET:{path}:{value}:VALID"

    def _resolve(self, tokens: list[str], setting: bool) -> tuple[int, str, tuple[str, ...]]:
        """(length of the noun path, board kind, noun) of ``DEV:<uid>:<kind>:<noun...>`` or ``SYS:<noun>``."""
        if tokens[0] == "SYS":
            if len(tokens) != 2 or tokens[1] not in ("CAT", "TIME", "DATE") or setting:
                raise InvalidError(min(1, len(tokens) - 1))
            return 2, "SYS", (tokens[1],)
        if tokens[0] != "DEV" or len(tokens) < 3:
            raise InvalidError(0 if tokens[0] != "DEV" else len(tokens) - 1)
        if tokens[2] not in ("TEMP", "HTR"):
            raise InvalidError(2)
        noun: tuple[str, ...] = ()
        for index in range(3, len(tokens)):
            candidate = (*noun, tokens[index])
            if (tokens[2], candidate) in _NOUNS:
                if not setting and index != len(tokens) - 1:
                    raise InvalidError(index + 1)
                if setting and index == len(tokens) - 1:
                    raise InvalidError(index)  # a SET without a value
                return index + 1, tokens[2], candidate
            if (tokens[2], candidate) not in _GROUPS:
                raise InvalidError(index)
            noun = candidate
        raise InvalidError(len(tokens) - 1)

    def _board(self, uid: str, kind: str) -> None:
        if uid not in (self.sensor, self.heater):
            raise RefusedError("NOT_FOUND")
        if (kind == "TEMP") != (uid == self.sensor):
            raise RefusedError("N/A")

    # -------------------------------------------------------------------------------------- READ
    def _read(self, uid: str, kind: str, noun: tuple[str, ...]) -> str:
        if kind == "SYS":
            now = datetime.fromtimestamp(self.world.time_s, UTC)
            return {"CAT": f"DEV:{self.sensor}:TEMP:DEV:{self.heater}:HTR", "TIME": now.strftime("%H:%M:%S"),
                    "DATE": now.strftime("%Y:%m:%d")}[noun[0]]
        self._board(uid, kind)
        key = ":".join(noun)
        if kind == "HTR":
            current = self.heater_V / self.resistance_ohm
            values = {"NICK": self.nick[self.heater], "VLIM": f"{self.voltage_limit_V:.4f}",
                      "RES": f"{self.resistance_ohm:.4f}", "PMAX": f"{self._max_power_W():.4f}",
                      "SIG:VOLT": f"{self.heater_V:.4f}V", "SIG:CURR": f"{current:.4f}A",
                      "SIG:POWR": f"{self.heater_V * current:.4f}W"}
            return values[key]
        if noun[0] == "SIG":
            reading = self.stage.read_sensor_K()
            volts = math.inf if math.isnan(reading) else diode_voltage_V(reading)
            return {"SIG:TEMP": "infK" if math.isnan(reading) else f"{reading:.4f}K",
                    "SIG:VOLT": f"{volts:.6f}V", "SIG:CURR": f"{EXCITATION_A:.4E}A",
                    "SIG:POWR": f"{volts * EXCITATION_A:.4E}W"}[key]
        values = {"NICK": self.nick[self.sensor], "TYPE": "DDE", "CAL:HOTL": f"{DIODE_LIMITS_K[1]:.4f}K",
                  "CAL:COLD": f"{DIODE_LIMITS_K[0]:.4f}K", "LOOP:HTR": self.linked or "None",
                  "LOOP:ENAB": "ON" if self.auto else "OFF", "LOOP:HSET": f"{self.heater_percent:.4f}",
                  "LOOP:TSET": f"{self.ramp.target_K:.4f}K", "LOOP:RSET": f"{self.ramp.rate_K_min:.4f}K/m",
                  "LOOP:RENA": "ON" if self.ramp.enabled else "OFF", "LOOP:P": f"{self.gains[0]:.4f}",
                  "LOOP:I": f"{self.gains[1]:.4f}", "LOOP:D": f"{self.gains[2]:.4f}", "LOOP:PIDT": "OFF"}
        return values[key]

    # --------------------------------------------------------------------------------------- SET
    def _set(self, uid: str, kind: str, noun: tuple[str, ...], value: str) -> None:
        self._board(uid, kind)
        settable, limits = _NOUNS[(kind, noun)]
        if not settable or not value:
            raise RefusedError("INVALID")
        key, t = ":".join(noun), self.world.time_s
        if key == "NICK":
            self.nick[uid] = value
        elif key in ("TYPE", "LOOP:PIDT"):
            if value != ("DDE" if key == "TYPE" else "OFF"):
                raise RefusedError("INVALID")
        elif key in ("LOOP:ENAB", "LOOP:RENA"):
            if value not in ("ON", "OFF"):
                raise RefusedError("INVALID")
            if key == "LOOP:ENAB":
                self.auto = value == "ON"
                self.pid.reset()
            else:
                self.ramp.set_rate(value == "ON", self.ramp.rate_K_min, t)
        elif key == "LOOP:HTR":
            if value not in (self.heater, "None", "0"):
                raise RefusedError("INVALID")
            self.linked = value if value == self.heater else None
        else:
            number = self._number(value, {"LOOP:TSET": "K", "LOOP:RSET": "K/m", "VLIM": "V", "RES": "O",
                                          "SIG:VOLT": "V", "SIG:POWR": "W"}.get(key, ""), limits)
            self._set_number(key, number, t)
        self.wake()

    def _number(self, text: str, unit: str, limits: tuple[float, float] | None) -> float:
        try:
            number = parse_value(text, unit)
        except ValueError:
            raise RefusedError("INVALID") from None
        if limits is not None and not limits[0] <= number <= limits[1]:
            raise RefusedError("INVALID")
        return number

    def _set_number(self, key: str, number: float, t: float) -> None:
        if key == "LOOP:TSET":
            self.ramp.set_target(number, t)
        elif key == "LOOP:RSET":
            self.ramp.set_rate(self.ramp.enabled, number, t)
        elif key == "LOOP:HSET":
            self.heater_percent = number
        elif key in ("LOOP:P", "LOOP:I", "LOOP:D"):
            self.gains["PID".index(key[-1])] = number
            self._tune()
        elif key == "VLIM":
            self.voltage_limit_V = number
        elif key == "RES":
            self.resistance_ohm = number
        else:  # heater SIG:VOLT / SIG:POWR: set the heater directly (as a manual heater percentage)
            volts = number if key == "SIG:VOLT" else math.sqrt(max(number, 0.0) * self.resistance_ohm)
            if volts > self.voltage_limit_V + 1e-9 or (key == "SIG:POWR" and number > self._max_power_W()):
                raise RefusedError("INVALID")
            self.heater_V = volts
            if self.linked == self.heater and self.voltage_limit_V > 0:
                self.heater_percent = 100.0 * volts / self.voltage_limit_V

    def _max_power_W(self) -> float:
        return self.voltage_limit_V**2 / self.resistance_ohm

    def _tune(self) -> None:
        band, integral_min, derivative_min = self.gains
        self.pid.kp = 100.0 / band if band > 0 else 1e6  # P = 0: on/off control
        self.pid.ti_s = integral_min * 60.0 if integral_min > 0 else None
        self.pid.td_s = derivative_min * 60.0
        self.pid.integral_band_K = band if band > 0 else None

    # ------------------------------------------------------------------------------------- control
    def control(self, t_s: float) -> float:
        if self.auto:
            if self.stage.open_sensor:
                self.pid.reset()
                self.heater_percent = 0.0
            else:
                measured = self.stage_temperature_K()
                self.heater_percent = self.pid.update(t_s, self.ramp.value(t_s), measured)
        if self.linked == self.heater:
            self.heater_V = self.heater_percent / 100.0 * self.voltage_limit_V
        return self.heater_V**2 / self.resistance_ohm

    def ramping(self, t_s: float) -> bool:
        return self.ramp.ramping(t_s)
