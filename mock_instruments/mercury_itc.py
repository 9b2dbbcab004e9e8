"""Oxford Instruments Mercury iTC, SCPI-style command set, after the Mercury iTC Handbook (2011, chapter
"Command reference guide") and the MercuryiTC Operator's Manual (Issue 05, 2015, section 8.3: verbs, nouns,
UIDs, signal scales, invalid responses; section 2: daughter-board slots).

Grammar: one command per ``\\n``-terminated line, case-sensitive, ``<VERB>:<NOUN>:...:<value>``. Two verbs,
both answered with a ``STAT`` line that echoes the request path::

    READ:DEV:MB1.T1:TEMP:SIG:TEMP                ->  STAT:DEV:MB1.T1:TEMP:SIG:TEMP:77.1234K
    SET:DEV:MB1.T1:TEMP:LOOP:TSET:80             ->  STAT:SET:DEV:MB1.T1:TEMP:LOOP:TSET:80:VALID
    READ:DEV:MB1.T1:TEMP:LOOP:P:I:D              ->  STAT:DEV:MB1.T1:TEMP:LOOP:P:5.0:I:1.0:D:0.0
    SET:DEV:MB1.T1:TEMP:LOOP:P:5:I:2             ->  STAT:SET:DEV:MB1.T1:TEMP:LOOP:P:5:VALID:I:2:VALID

Several leaf nouns of one group (``LOOP``, ``SIG``, ...) may be read or set in one line, as above (the
handbook's sensor-configuration example; clients such as Frappy use it). Invalid responses: an unknown verb
answers ``<VERB>:INVALID``; an unknown noun ``STAT:...:<noun>:INVALID`` (INVALID right after the term that
cannot be interpreted, keywords longer than four characters included); a UID that is not in the system
``STAT:<path>:NOT_FOUND``; a board of the wrong kind (``TEMP`` nouns on a heater) ``STAT:<path>:N/A``; a value
out of range, or a SET of a read-only noun, ``STAT:SET:<path>:<value>:INVALID``. A READ may end in ``?`` (the
handbook's examples do). Only ``*IDN?`` of the IEEE 488.2 commands is supported
(``IDN:OXFORD INSTRUMENTS:MERCURY ITC:<serial>:<firmware>``); anything else starting with ``*`` is an
unknown verb.

Board layout (Operator's Manual section 2, "Layout of MercuryiTC expansion slots"; UIDs as firmware 2.x
reports them in ``READ:SYS:CAT``, e.g. ``STAT:SYS:CAT:DEV:MB0.H1:HTR:DEV:MB1.T1:TEMP``, and as pymeasure's
driver addresses them): the motherboard carries one heater ``MB0.H1`` and one temperature sensor ``MB1.T1``;
daughter boards sit in slots 1–8 (``DB<slot>``): heaters in slots 1–3 (``DB1.H1``...), the temperature
boards that control them in slots 6–8 (``DB6.T1``...), other sensors anywhere. A heater board's output is
hard-wired to the 9-way connector of its temperature board (manual: "a heater board is always associated with
a temperature sensor board"): MB0.H1–MB1.T1, DB1.H1–DB6.T1, DB2.H1–DB7.T1, DB3.H1–DB8.T1; at power-up each
sensor's control loop drives the heater wired to it (``LOOP:HTR`` reads ``None`` for a sensor without one).
Options: ``daughter_boards`` (UIDs such as ``["DB6.T1", "DB1.H1"]``; only ``T`` sensors and ``H`` heaters are
simulated), ``loop_heaters`` ({sensor UID: heater UID or None}, the loop assignment as configured on the
front panel), ``sensor`` (the sensor on the world's stage block, default ``MB1.T1``; the others read the
sample plate), ``heater`` (the heater that heats the stage, default the one wired to ``sensor``), ``serial``.

Nouns: sensor (``TEMP``): NICK, TYPE (DDE), CAL:HOTL/COLD, SIG:TEMP (K), SIG:VOLT (mV), SIG:CURR (uA),
SIG:POWR (uW); its loop (``TEMP:LOOP``): HTR (UID of the heater the loop drives; ``None``/``0`` unsets), ENAB
(automatic PID), HSET (the heater percentage *in manual*: 2015 manual, "Sets the Heater percentage (in
Manual)"; the PID's output is not written into it), TSET, RSET (K/min) and RENA, P (proportional band, K),
I and D (action times, min), PIDT (PID tables: not simulated, OFF only). Heater (``HTR``): NICK, VLIM
(0–40 V), RES (10–2000 Ω, the range of firmware 2.x as pymeasure's driver has it; the 2011 handbook lists
20–100), PMAX (read only), SIG:VOLT (set it in manual to drive an unassigned heater), SIG:CURR, SIG:POWR.
Signals are a value followed by its scale and unit (manual 8.3.5: ``n``/``u``/``m``/``k``/``M``); reply
formats follow replies recorded from a real iTC (pymeasure's tests): ``SIG:VOLT:174.3112mV`` for a sensor,
``SIG:VOLT:-0.0481V`` for a heater, ``VLIM:25``, ``RES:50``, ``PMAX:12.5000``, ``LOOP:P:3.5``,
``LOOP:HSET:0``, ``LOOP:TSET:61.0000K``, ``LOOP:RSET:5.0000K/m``.

Control: every 0.5 s each loop with ENAB ON runs its PID (``out = 100·(e/P + ∫e dt/(P·I) − D·dT/dt/P)``,
integrator held at zero outside the proportional band) on its sensor and drives its heater at out % of VLIM.
With ENAB OFF the heater stays where it was put: at HSET % of VLIM when HSET or ENAB is set, or at a voltage
set directly with ``HTR:SIG:VOLT``/``SIG:POWR`` (refused with ``DENIED`` while a loop in auto drives that
heater: a simulation choice, the manuals do not say). The stage's heater power V²/RES heats the world's
stage (option ``stage``); RES defaults to 40²/heater_max_W, so full output is the stage's full heater power.
An open sensor stops its loop's heater. Simplifications: no gas flow, level meters, PID/heater target tables,
sweeps; no time charged per command.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field
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
_UID = re.compile(r"^(MB|DB)(\d)\.([A-Z])(\d)$")
EXCITATION_A = 10e-6
#: Heater board -> the temperature board its output is wired to (Operator's Manual, section 2).
WIRED_PAIRS = {"MB0.H1": "MB1.T1", "DB1.H1": "DB6.T1", "DB2.H1": "DB7.T1", "DB3.H1": "DB8.T1"}
FAILURES = ("INVALID", "NOT_FOUND", "N/A", "DENIED")
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
    ("HTR", ("RES",)): (True, (10.0, 2000.0)), ("HTR", ("PMAX",)): (False, None),
    ("HTR", ("SIG", "VOLT")): (True, None), ("HTR", ("SIG", "CURR")): (False, None),
    ("HTR", ("SIG", "POWR")): (True, None),
}
_GROUPS = {(kind, path[:1]) for kind, path in _NOUNS if len(path) > 1}
_UNITS = {"LOOP:TSET": "K", "LOOP:RSET": "K/m", "VLIM": "V", "RES": "O", "SIG:VOLT": "V", "SIG:POWR": "W"}


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


def scaled(value: float, unit: str) -> str:
    """A signal as the iTC writes it: value, scale prefix and unit (``174.3112mV``, ``10.0000uA``)."""
    if not math.isfinite(value):
        return f"inf{unit}"
    for factor, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n")):
        if abs(value) >= factor or factor == 1e-9:
            return f"{value / factor:.4f}{prefix}{unit}"
    return f"{value:.4f}{unit}"  # pragma: no cover - the loop always returns


@dataclass
class Loop:
    """The control loop of one temperature sensor."""

    heater: str | None
    target_K: float
    start_s: float
    auto: bool = False
    manual_percent: float = 0.0  # HSET
    gains: list[float] = field(default_factory=lambda: [5.0, 1.0, 0.0])  # P (K), I (min), D (min)
    ramp: SetpointRamp = field(init=False)
    pid: Pid = field(default_factory=lambda: Pid(0.0, None))

    def __post_init__(self) -> None:
        self.ramp = SetpointRamp(target_K=self.target_K, start_s=self.start_s)
        self.tune()

    def tune(self) -> None:
        band, integral_min, derivative_min = self.gains
        self.pid.kp = 100.0 / band if band > 0 else 1e6  # P = 0: on/off control
        self.pid.ti_s = integral_min * 60.0 if integral_min > 0 else None
        self.pid.td_s = derivative_min * 60.0
        self.pid.integral_band_K = band if band > 0 else None


@dataclass
class Heater:
    nick: str
    resistance_ohm: float
    voltage_limit_V: float = 40.0
    volts: float = 0.0

    def max_power_W(self) -> float:
        return self.voltage_limit_V**2 / self.resistance_ohm


class MockMercuryITC(StageController):
    """The simulated Mercury iTC (options: see the module docstring, and the base options)."""

    model = "mercury_itc"

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        uids = ["MB0.H1", "MB1.T1", *[str(u) for u in options.pop("daughter_boards", ())]]
        for uid in uids:
            match = _UID.match(uid)
            if match is None or match.group(3) not in "TH" or (match.group(1) == "DB" and
                                                                not 1 <= int(match.group(2)) <= 8):
                raise ValueError(f"board UID {uid!r}: simulated boards are MB0.H1, MB1.T1 and daughter-board "
                                 "sensors DB<1-8>.T1 or heaters DB<1-8>.H1")
        if len(set(uids)) != len(uids):
            raise ValueError(f"a board UID appears twice in {uids}")
        self.sensor = str(options.pop("sensor", "MB1.T1"))
        sensors = sorted(u for u in uids if ".T" in u)
        heaters = sorted(u for u in uids if ".H" in u)
        wired = {t: h for h, t in WIRED_PAIRS.items() if h in heaters}
        self.heater = str(options.pop("heater", wired.get(self.sensor, "")))
        if self.sensor not in sensors or self.heater not in heaters:
            raise ValueError(f"sensor {self.sensor!r} / heater {self.heater!r} must be installed boards "
                             f"({', '.join(uids)})")
        assignment: dict[str, str | None] = {s: wired.get(s) for s in sensors}
        for sensor, heater in dict(options.pop("loop_heaters", {})).items():
            if sensor not in sensors or (heater is not None and heater not in heaters):
                raise ValueError(f"loop_heaters: {sensor!r} -> {heater!r} names a board that is not installed")
            assignment[sensor] = heater
        serial = options.pop("serial", f"{zlib.crc32(name.encode()) % 1000000000:09d}")
        self.idn = f"IDN:OXFORD INSTRUMENTS:MERCURY ITC:{serial}:2.6.04.000"
        stage = world.stage_named(str(options.get("stage", "stage")))
        self.kinds = {u: ("TEMP" if ".T" in u else "HTR") for u in uids}
        self.nick = {u: u for u in uids}
        start = round(stage.temperature_K, 1)
        self.loops = {s: Loop(assignment[s], start, world.time_s) for s in sensors}
        stage_ohm = min(2000.0, max(10.0, 40.0**2 / stage.heater_max_W))
        self.heaters = {h: Heater(h, stage_ohm if h == self.heater else 50.0) for h in heaters}
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
            if kind == "SYS":
                return f"STAT:{path}:{self._system(noun[0])}"
            self._board(tokens[1], kind)
            if verb == "READ":
                return f"STAT:{path}:" + self._read_all(tokens[1], kind, noun, tokens[path_length:])
        except RefusedError as exc:
            return f"{prefix}{':'.join(tokens)}:{exc}" if verb == "SET" else f"{prefix}{path}:{exc}"
        return "STAT:SET:" + ":".join(tokens[: path_length - 1]) + ":" + self._set_all(
            tokens[1], kind, noun, tokens[path_length - 1:])

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
                if setting and index == len(tokens) - 1:
                    raise InvalidError(index)  # a SET without a value
                return index + 1, tokens[2], candidate
            if (tokens[2], candidate) not in _GROUPS:
                raise InvalidError(index)
            noun = candidate
        raise InvalidError(len(tokens) - 1)

    def _board(self, uid: str, kind: str) -> None:
        if uid not in self.kinds:
            raise RefusedError("NOT_FOUND")
        if self.kinds[uid] != kind:
            raise RefusedError("N/A")

    def _system(self, noun: str) -> str:
        now = datetime.fromtimestamp(self.world.time_s, UTC)
        if noun == "CAT":
            order = sorted(self.kinds, key=lambda uid: (not uid.startswith("MB"), uid))
            return ":".join(f"DEV:{uid}:{self.kinds[uid]}" for uid in order)
        return now.strftime("%H:%M:%S") if noun == "TIME" else now.strftime("%Y:%m:%d")

    # -------------------------------------------------------------------------------------- READ
    def _read_all(self, uid: str, kind: str, noun: tuple[str, ...], more: list[str]) -> str:
        """The first noun's value, then ``<leaf>:<value>`` for further leaves of the same group."""
        parts = [self._read(uid, kind, noun)]
        for leaf in more:
            sibling = (*noun[:-1], leaf)
            if (kind, sibling) not in _NOUNS:
                parts += [leaf, "INVALID"]
                continue
            parts += [leaf, self._read(uid, kind, sibling)]
        return ":".join(parts)

    def _read(self, uid: str, kind: str, noun: tuple[str, ...]) -> str:
        key = ":".join(noun)
        if kind == "HTR":
            heater = self.heaters[uid]
            current = heater.volts / heater.resistance_ohm
            return {"NICK": self.nick[uid], "VLIM": f"{heater.voltage_limit_V:g}",
                    "RES": f"{heater.resistance_ohm:g}", "PMAX": f"{heater.max_power_W():.4f}",
                    "SIG:VOLT": f"{heater.volts:.4f}V", "SIG:CURR": f"{current:.4f}A",
                    "SIG:POWR": f"{heater.volts * current:.4f}W"}[key]
        loop = self.loops[uid]
        if noun[0] == "SIG":
            reading = self._reading_K(uid)
            volts = math.inf if math.isnan(reading) else diode_voltage_V(reading)
            return {"SIG:TEMP": "infK" if math.isnan(reading) else f"{reading:.4f}K",
                    "SIG:VOLT": scaled(volts, "V"), "SIG:CURR": scaled(EXCITATION_A, "A"),
                    "SIG:POWR": scaled(volts * EXCITATION_A, "W")}[key]
        return {"NICK": self.nick[uid], "TYPE": "DDE", "CAL:HOTL": f"{DIODE_LIMITS_K[1]:.4f}K",
                "CAL:COLD": f"{DIODE_LIMITS_K[0]:.4f}K", "LOOP:HTR": loop.heater or "None",
                "LOOP:ENAB": "ON" if loop.auto else "OFF", "LOOP:HSET": f"{loop.manual_percent:g}",
                "LOOP:TSET": f"{loop.ramp.target_K:.4f}K", "LOOP:RSET": f"{loop.ramp.rate_K_min:.4f}K/m",
                "LOOP:RENA": "ON" if loop.ramp.enabled else "OFF", "LOOP:P": f"{loop.gains[0]:.1f}",
                "LOOP:I": f"{loop.gains[1]:.1f}", "LOOP:D": f"{loop.gains[2]:.1f}", "LOOP:PIDT": "OFF"}[key]

    def _reading_K(self, uid: str) -> float:
        """A noisy reading: the stage block for :attr:`sensor`, the sample plate for the others."""
        if self.stage.open_sensor and uid == self.sensor:
            return math.nan
        return self.stage.read_sensor_K() if uid == self.sensor else self.sample_reading_K()

    # --------------------------------------------------------------------------------------- SET
    def _set_all(self, uid: str, kind: str, noun: tuple[str, ...], pairs: list[str]) -> str:
        """Set ``<leaf>:<value>`` pairs of one group; each gets its own VALID/INVALID verdict."""
        if noun[-1] == "NICK" or len(pairs) == 2:
            pairs = [noun[-1], ":".join(pairs[1:])]  # a nickname may contain colons
        elif len(pairs) % 2:
            raise RefusedError("INVALID")
        out = []
        for leaf, value in zip(pairs[::2], pairs[1::2], strict=True):
            sibling = (*noun[:-1], leaf)
            try:
                if (kind, sibling) not in _NOUNS:
                    raise RefusedError("INVALID")
                self._set(uid, kind, sibling, value)
                verdict = "VALID"
            except RefusedError as exc:
                verdict = str(exc)
            out += [leaf, value, verdict]
        return ":".join(out)

    def _set(self, uid: str, kind: str, noun: tuple[str, ...], value: str) -> None:
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
            loop = self.loops[uid]
            if key == "LOOP:ENAB":
                loop.auto = value == "ON"
                loop.pid.reset()
                self._manual_output(loop)
            else:
                loop.ramp.set_rate(value == "ON", loop.ramp.rate_K_min, t)
        elif key == "LOOP:HTR":
            if value not in (*self.heaters, "None", "0"):
                raise RefusedError("INVALID")
            self.loops[uid].heater = value if value in self.heaters else None
        else:
            try:
                number = parse_value(value, _UNITS.get(key, ""))
            except ValueError:
                raise RefusedError("INVALID") from None
            if limits is not None and not limits[0] <= number <= limits[1]:
                raise RefusedError("INVALID")
            self._set_number(uid, key, number, t)
        self.wake()

    def _set_number(self, uid: str, key: str, number: float, t: float) -> None:
        if uid in self.heaters:
            self._set_heater(uid, key, number)
            return
        loop = self.loops[uid]
        if key == "LOOP:TSET":
            loop.ramp.set_target(number, t)
        elif key == "LOOP:RSET":
            loop.ramp.set_rate(loop.ramp.enabled, number, t)
        elif key == "LOOP:HSET":
            loop.manual_percent = number
            self._manual_output(loop)
        else:
            loop.gains["PID".index(key[-1])] = number
            loop.tune()

    def _set_heater(self, uid: str, key: str, number: float) -> None:
        heater = self.heaters[uid]
        if key == "VLIM":
            heater.voltage_limit_V = number
            heater.volts = min(heater.volts, number)
        elif key == "RES":
            heater.resistance_ohm = number
        else:  # SIG:VOLT / SIG:POWR: drive the heater directly (manual)
            volts = number if key == "SIG:VOLT" else math.sqrt(max(number, 0.0) * heater.resistance_ohm)
            if any(loop.heater == uid and loop.auto for loop in self.loops.values()):
                raise RefusedError("DENIED")  # the loop's PID sets it
            if volts > heater.voltage_limit_V + 1e-9 or (key == "SIG:POWR" and number > heater.max_power_W()):
                raise RefusedError("INVALID")
            heater.volts = volts

    def _manual_output(self, loop: Loop) -> None:
        """In manual the loop's heater runs at HSET % of its voltage limit (set when HSET or ENAB changes)."""
        if not loop.auto and loop.heater is not None:
            heater = self.heaters[loop.heater]
            heater.volts = loop.manual_percent / 100.0 * heater.voltage_limit_V

    # ------------------------------------------------------------------------------------- control
    def control(self, t_s: float) -> float:
        for uid, loop in self.loops.items():
            if not loop.auto:
                continue
            if self.stage.open_sensor and uid == self.sensor:
                loop.pid.reset()
                percent = 0.0
            else:
                measured = self.stage_temperature_K("stage" if uid == self.sensor else "sample")
                percent = loop.pid.update(t_s, loop.ramp.value(t_s), measured)
            if loop.heater is not None:
                heater = self.heaters[loop.heater]
                heater.volts = percent / 100.0 * heater.voltage_limit_V
        stage_heater = self.heaters[self.heater]
        return stage_heater.volts**2 / stage_heater.resistance_ohm

    def ramping(self, t_s: float) -> bool:
        return any(loop.ramp.ramping(t_s) for loop in self.loops.values())
