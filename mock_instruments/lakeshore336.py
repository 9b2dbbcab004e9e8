"""Lake Shore Model 336 temperature controller, after the Model 336 User's Manual, chapter 6 (6.6 command
summary and descriptions).

Grammar: ``HEADER <p1>,<p2>,...`` commands and ``HEADER? <p>`` queries, case-insensitive, several per line
separated by ``;`` (the replies of several queries come back joined by ``;``), replies without units in the
manual's fixed formats. The 336 has no error queue: a command it does not know, a missing or malformed
parameter or a value out of range is ignored (nothing changes, a query gets no reply, so the client times
out) and only sets a bit of the standard event status register (``*ESR?``: 32 command error, 16 execution
error, 4 query error).

Simulated: ``*IDN? *RST *CLS *ESR? *ESE *ESE? *SRE *SRE? *STB? *OPC *OPC? *TST? *WAI``, ``KRDG? CRDG? SRDG?
RDGST? INTYPE?`` (inputs A–D, 0 = all for the readings), ``SETP RAMP RAMPST? RANGE PID MOUT OUTMODE HTRSET``
and their queries (outputs 1–4; ranges 0–3 on heater outputs 1/2, 0–1 on analog outputs 3/4), ``HTR?
HTRST?`` (outputs 1/2). Input A is the diode on the stage block (the stage's sensor, ``open_sensor`` fault:
``RDGST?`` 144 = sensor units over range + temperature under range, reading 0), input B a diode on the
sample plate, C and D are disabled (``RDGST?`` 1 = invalid reading). ``SRDG?`` follows a DT-670-like curve.

Control: heater output 1 (option ``heater_output``) heats the world's stage named by the ``stage`` option.
Each output's loop runs every 0.5 s on its control input's noise-free temperature: Off (0 %), Closed Loop
PID and Zone (both the manual's PID, ``Output = P·[e + I∫e dt + D·de/dt]`` with I in 1000/s and D in % of a
quarter of the integral time, plus the manual output MOUT), Open Loop (MOUT). The output is in percent of the
range's maximum power: range 1/2/3 = 1 %/10 %/100 % of the stage's ``heater_max_W``. Setpoint ramping at
the RAMP rate (0.1–100 K/min) starts from the present working setpoint; ``SETP?`` returns the working
(ramping) setpoint. A control input in error (open sensor) forces the output to 0 %.

Simplifications: no zones table, autotune, curves, alarms, relays, filters or display commands (all
ignored as unknown); outputs 2–4 run their loops but heat nothing; no time is charged per command (the 336
updates its readings 10 times a second, a query returns the present value).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mock_instruments.temperature_loop import Pid, SetpointRamp, StageController, diode_voltage_V

INPUTS = ("A", "B", "C", "D")
ESR_QYE, ESR_EXE, ESR_CME, ESR_OPC = 4, 16, 32, 1
RANGE_FRACTION = {0: 0.0, 1: 0.01, 2: 0.1, 3: 1.0}
OPEN_DIODE_STATUS = 144  # sensor units over range (128) + temperature under range (16)


class IgnoredError(Exception):
    """The 336 ignores the unit; ``bit`` is the ESR bit it sets."""

    def __init__(self, bit: int = ESR_CME) -> None:
        super().__init__(bit)
        self.bit = bit


@dataclass
class Output:
    number: int
    mode: int = 1  # 0 off, 1 closed loop, 2 zone, 3 open loop, 4 monitor out, 5 warm-up supply
    control_input: int = 1  # 0 none, 1..4 = A..D
    powerup: int = 0
    range: int = 0
    manual_percent: float = 0.0
    p: float = 50.0
    i: float = 20.0
    d: float = 0.0
    ramp: SetpointRamp = field(default_factory=SetpointRamp)
    heater: tuple[int, int, float, int] = (1, 2, 0.0, 1)  # HTRSET: resistance, max current, user max, display
    percent: float = 0.0
    pid: Pid = field(default_factory=lambda: Pid(50.0, 50.0))

    def tune(self) -> None:
        ti = 1000.0 / self.i if self.i > 0 else None
        self.pid.kp, self.pid.ti_s = self.p, ti
        self.pid.td_s = 0.0 if ti is None else self.d / 100.0 * ti / 4.0


def number(text: str, low: float, high: float) -> float:
    """A numeric parameter in [low, high]; a malformed one is a command error, out of range an execution
    error (either way the 336 ignores the command)."""
    try:
        value = float(text)
    except ValueError:
        raise IgnoredError(ESR_CME) from None
    if not math.isfinite(value):
        raise IgnoredError(ESR_CME)
    if not low <= value <= high:
        raise IgnoredError(ESR_EXE)
    return value


def integer(text: str, choices: range | tuple[int, ...]) -> int:
    value = number(text, -1e9, 1e9)
    if value != int(value) or int(value) not in choices:
        raise IgnoredError(ESR_EXE)
    return int(value)


def reading(value: float) -> str:
    """The manual's ``±nnnnnn`` reading format: six significant digits with a sign."""
    if value == 0 or not math.isfinite(value):
        return "+0.00000"
    digits = max(0, 5 - math.floor(math.log10(abs(value))))
    return f"{value:+.{digits}f}"


class MockLakeShore336(StageController):
    """The simulated Lake Shore 336 (options: ``serial``, ``heater_output``, and the base options)."""

    model = "lakeshore336"

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        serial = options.pop("serial", f"LSA{zlib.crc32(name.encode()) % 100000:05d}")
        self.idn = f"LSCI,MODEL336,{serial}/#######,2.9"
        self.heater_output = int(options.pop("heater_output", 1))
        if self.heater_output not in (1, 2):
            raise ValueError(f"heater_output must be 1 or 2, got {self.heater_output}")
        self.esr = self.ese = self.sre = 0
        self.outputs = self._power_up_outputs(world.time_s)
        self._commands: dict[tuple[str, bool], Callable[[list[str]], str | None]] = {
            (header, query): getattr(self, method) for header, query, method in _COMMANDS}
        super().__init__(world, name, **options)

    @staticmethod
    def _power_up_outputs(t_s: float) -> dict[int, Output]:
        """The power-up settings: outputs 1/2 closed loop on inputs A/B, heaters off, ramp off at 10 K/min."""
        outputs = {n: Output(n, mode=1 if n < 3 else 0, control_input=n if n < 3 else 0,
                             ramp=SetpointRamp(rate_K_min=10.0, start_s=t_s)) for n in range(1, 5)}
        for output in outputs.values():
            output.tune()
        return outputs

    def reset(self) -> None:
        """``*RST``: back to the power-up settings."""
        self.outputs = self._power_up_outputs(self.world.time_s)
        self.wake()

    def on_query_unterminated(self) -> None:
        self.esr |= ESR_QYE

    # ------------------------------------------------------------------------------------ messages
    def handle(self, message: str) -> str | None:
        replies: list[str] = []
        for unit in message.strip().split(";"):
            unit = unit.strip()
            if not unit:
                continue
            header, _, rest = unit.partition(" ")
            header = header.upper()
            query = header.endswith("?")
            if not query and "?" in header:  # "KRDG?A": the parameter may follow the '?' directly
                header, _, first = header.partition("?")
                header, rest, query = header + "?", first + " " + rest, True
            handler = self._commands.get((header.rstrip("?"), query))
            args = [a.strip() for a in rest.split(",")] if rest.strip() else []
            try:
                if handler is None:
                    raise IgnoredError(ESR_CME)
                reply = handler(args)
            except IgnoredError as exc:
                self.esr |= exc.bit
                continue
            if reply is not None:
                replies.append(reply)
        return ";".join(replies) if replies else None

    @staticmethod
    def _args(args: list[str], count: int) -> list[str]:
        if len(args) != count:
            raise IgnoredError(ESR_CME)
        return args

    def _output(self, text: str, allowed: tuple[int, ...] = (1, 2, 3, 4)) -> Output:
        return self.outputs[integer(text, allowed)]

    def _input(self, text: str) -> int:
        key = text.upper()
        if key not in INPUTS:
            raise IgnoredError(ESR_EXE)
        return INPUTS.index(key) + 1

    # -------------------------------------------------------------------------------- common commands
    def _idn(self, args: list[str]) -> str:
        return self.idn

    def _rst(self, args: list[str]) -> None:
        self.reset()

    def _cls(self, args: list[str]) -> None:
        self.esr = 0

    def _esr(self, args: list[str]) -> str:
        value, self.esr = self.esr, 0
        return str(value)

    def _set_ese(self, args: list[str]) -> None:
        self.ese = integer(self._args(args, 1)[0], range(256))

    def _get_ese(self, args: list[str]) -> str:
        return str(self.ese)

    def _set_sre(self, args: list[str]) -> None:
        self.sre = integer(self._args(args, 1)[0], range(256))

    def _get_sre(self, args: list[str]) -> str:
        return str(self.sre)

    def _stb(self, args: list[str]) -> str:
        return str(32 if self.esr & self.ese else 0)

    def _opc(self, args: list[str]) -> None:
        self.esr |= ESR_OPC

    def _one(self, args: list[str]) -> str:
        return "1"

    def _zero(self, args: list[str]) -> str:
        return "0"

    def _nothing(self, args: list[str]) -> None:
        return None

    # -------------------------------------------------------------------------------------- inputs
    def _input_values(self, index: int) -> tuple[float, int]:
        """(kelvin reading, RDGST? status) of input 1..4."""
        if index == 1:
            value = self.stage.read_sensor_K()
            return (0.0, OPEN_DIODE_STATUS) if math.isnan(value) else (value, 0)
        if index == 2:
            return self.sample_reading_K(), 0
        return 0.0, 1

    def _readings(self, args: list[str], convert: Callable[[float], float]) -> str:
        key = self._args(args, 1)[0].upper()
        indices = range(1, 5) if key == "0" else [self._input(key)]
        values = []
        for index in indices:
            kelvin, status = self._input_values(index)
            values.append(reading(0.0 if status else convert(kelvin)))
        return ",".join(values)

    def _krdg(self, args: list[str]) -> str:
        return self._readings(args, lambda k: k)

    def _crdg(self, args: list[str]) -> str:
        return self._readings(args, lambda k: k - 273.15)

    def _srdg(self, args: list[str]) -> str:
        return self._readings(args, diode_voltage_V)

    def _rdgst(self, args: list[str]) -> str:
        return f"{self._input_values(self._input(self._args(args, 1)[0]))[1]:03d}"

    def _intype(self, args: list[str]) -> str:
        index = self._input(self._args(args, 1)[0])
        return "1,0,0,0,1" if index <= 2 else "0,0,0,0,1"

    # ------------------------------------------------------------------------------------- outputs
    def _set_setp(self, args: list[str]) -> None:
        number_, value = self._args(args, 2)
        output = self._output(number_)
        output.ramp.set_target(number(value, 0.0, 1500.0), self.world.time_s)
        self.wake()

    def _get_setp(self, args: list[str]) -> str:
        return reading(self._output(self._args(args, 1)[0]).ramp.value(self.world.time_s))

    def _set_ramp(self, args: list[str]) -> None:
        number_, on, rate = self._args(args, 3)
        output = self._output(number_)
        enabled = integer(on, (0, 1))
        value = number(rate, 0.0, 100.0)
        if 0 < value < 0.1:
            raise IgnoredError(ESR_EXE)
        output.ramp.set_rate(bool(enabled), value, self.world.time_s)
        self.wake()

    def _get_ramp(self, args: list[str]) -> str:
        ramp = self._output(self._args(args, 1)[0]).ramp
        return f"{int(ramp.enabled)},{ramp.rate_K_min:+.1f}"

    def _rampst(self, args: list[str]) -> str:
        return str(int(self._output(self._args(args, 1)[0]).ramp.ramping(self.world.time_s)))

    def _set_range(self, args: list[str]) -> None:
        number_, value = self._args(args, 2)
        output = self._output(number_)
        output.range = integer(value, range(4) if output.number < 3 else range(2))
        self.wake()

    def _get_range(self, args: list[str]) -> str:
        return str(self._output(self._args(args, 1)[0]).range)

    def _set_pid(self, args: list[str]) -> None:
        number_, p, i, d = self._args(args, 4)
        output = self._output(number_)
        output.p, output.i, output.d = number(p, 0.1, 1000.0), number(i, 0.1, 1000.0), number(d, 0.0, 200.0)
        output.tune()
        self.wake()

    def _get_pid(self, args: list[str]) -> str:
        output = self._output(self._args(args, 1)[0])
        return f"{output.p:+07.1f},{output.i:+07.1f},{output.d:+07.1f}"

    def _set_mout(self, args: list[str]) -> None:
        number_, value = self._args(args, 2)
        self._output(number_).manual_percent = number(value, 0.0, 100.0)
        self.wake()

    def _get_mout(self, args: list[str]) -> str:
        return f"{self._output(self._args(args, 1)[0]).manual_percent:+07.2f}"

    def _set_outmode(self, args: list[str]) -> None:
        number_, mode, control_input, powerup = self._args(args, 4)
        output = self._output(number_)
        modes = (0, 1, 2, 3) if output.number < 3 else (0, 1, 2, 3, 4, 5)
        values = integer(mode, modes), integer(control_input, range(5)), integer(powerup, (0, 1))
        if values[0] != output.mode:
            output.pid.reset()
        output.mode, output.control_input, output.powerup = values
        self.wake()

    def _get_outmode(self, args: list[str]) -> str:
        output = self._output(self._args(args, 1)[0])
        return f"{output.mode},{output.control_input},{output.powerup}"

    def _set_htrset(self, args: list[str]) -> None:
        number_, resistance, max_current, user_max, display = self._args(args, 5)
        output = self._output(number_, (1, 2))
        output.heater = (integer(resistance, (1, 2)), integer(max_current, range(5)),
                         number(user_max, 0.0, 2.0), integer(display, (1, 2)))

    def _get_htrset(self, args: list[str]) -> str:
        resistance, max_current, user_max, display = self._output(self._args(args, 1)[0], (1, 2)).heater
        return f"{resistance},{max_current},{user_max:+.3f},{display}"

    def _htr(self, args: list[str]) -> str:
        return f"{self._output(self._args(args, 1)[0], (1, 2)).percent:+06.1f}"

    def _htrst(self, args: list[str]) -> str:
        self._output(self._args(args, 1)[0], (1, 2))
        return "0"

    # ------------------------------------------------------------------------------------- control
    def control(self, t_s: float) -> float:
        """One tick of every output's loop; the heater output's power goes to the stage."""
        for output in self.outputs.values():
            output.percent = self._loop_percent(output, t_s)
        heater = self.outputs[self.heater_output]
        return heater.percent / 100.0 * RANGE_FRACTION[heater.range] * self.stage.heater_max_W

    def _loop_percent(self, output: Output, t_s: float) -> float:
        if output.mode == 3:
            return output.manual_percent if output.range else 0.0
        if output.mode not in (1, 2) or not output.range or output.control_input not in (1, 2):
            output.pid.reset()
            return 0.0
        if output.control_input == 1 and self.stage.open_sensor:
            output.pid.reset()
            return 0.0
        measured = self.stage_temperature_K("stage" if output.control_input == 1 else "sample")
        return output.pid.update(t_s, output.ramp.value(t_s), measured, output.manual_percent)

    def ramping(self, t_s: float) -> bool:
        return any(o.ramp.ramping(t_s) for o in self.outputs.values())


# (header, is query, handler) of every command the mock knows
_COMMANDS: tuple[tuple[str, bool, str], ...] = (
    ("*IDN", True, "_idn"), ("*RST", False, "_rst"), ("*CLS", False, "_cls"), ("*ESR", True, "_esr"),
    ("*ESE", False, "_set_ese"), ("*ESE", True, "_get_ese"), ("*SRE", False, "_set_sre"),
    ("*SRE", True, "_get_sre"), ("*STB", True, "_stb"), ("*OPC", False, "_opc"), ("*OPC", True, "_one"),
    ("*TST", True, "_zero"), ("*WAI", False, "_nothing"),
    ("KRDG", True, "_krdg"), ("CRDG", True, "_crdg"), ("SRDG", True, "_srdg"), ("RDGST", True, "_rdgst"),
    ("INTYPE", True, "_intype"), ("SETP", False, "_set_setp"), ("SETP", True, "_get_setp"),
    ("RAMP", False, "_set_ramp"), ("RAMP", True, "_get_ramp"), ("RAMPST", True, "_rampst"),
    ("RANGE", False, "_set_range"), ("RANGE", True, "_get_range"), ("PID", False, "_set_pid"),
    ("PID", True, "_get_pid"), ("MOUT", False, "_set_mout"), ("MOUT", True, "_get_mout"),
    ("OUTMODE", False, "_set_outmode"), ("OUTMODE", True, "_get_outmode"), ("HTRSET", False, "_set_htrset"),
    ("HTRSET", True, "_get_htrset"), ("HTR", True, "_htr"), ("HTRST", True, "_htrst"),
)
