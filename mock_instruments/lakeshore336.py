"""Lake Shore Model 336 temperature controller, after the Model 336 User's Manual, chapter 6 (6.6 command
summary and descriptions).

Grammar: ``HEADER <p1>,<p2>,...`` commands and ``HEADER? <p>`` queries, case-insensitive, several per line
separated by ``;`` (the replies of several queries come back joined by ``;``), replies without units in the
manual's fixed formats. The 336 has no error queue: a command it does not know, a missing or malformed
parameter or a value out of range is ignored (nothing changes, a query gets no reply, so the client times
out) and only sets a bit of the standard event status register (``*ESR?``: 32 command error, 16 execution
error, 4 query error).

Simulated: ``*IDN? *RST *CLS *ESR? *ESE *ESE? *SRE *SRE? *STB? *OPC *OPC? *TST? *WAI``, ``KRDG? CRDG? SRDG?
RDGST? INTYPE INTYPE?`` (inputs A–D, 0 = all for the readings), ``SETP RAMP RAMPST? RANGE PID MOUT OUTMODE
HTRSET`` and their queries (outputs 1–4; ranges 0–3 on heater outputs 1/2, 0–1 on analog outputs 3/4),
``HTR? HTRST?`` (outputs 1/2), the operation event register ``OPST? OPSTR? OPSTE OPSTE?`` (bit 4 new sensor
reading, 3/2 loop 1/2 ramp done, 1 sensor overload). Input A is the diode on the stage block (the stage's
sensor, ``open_sensor`` fault: ``RDGST?`` 144 = sensor units over range + temperature under range, reading 0),
input B a diode on the sample plate, C and D are disabled (``RDGST?`` 1 = invalid reading). ``SRDG?`` follows
a DT-670-like curve. Replies end in CR LF (``reply_terminator``, for ``labctl sim serve``).

Setpoint units: ``SETP``/``SETP?`` are in the preferred units of the output's control input (the ``<units>``
field of ``INTYPE``: 1 kelvin, 2 Celsius, 3 sensor units — volts on the diode curve), as the manual's SETP
says; the loop itself runs in kelvin. ``INTYPE`` may change an input's units and the other fields.

Serial pacing: an in-process session is the USB port, a serial port at 57600 7O1 (:class:`SerialSession`).
The manual's message flow control asks for 50 ms of quiet after a command, or after a reply, before the next
communication; a message that arrives sooner is lost (counted in ``lost_messages``; a query gets no reply).
A TCP session (``labctl sim serve``, :meth:`MockLakeShore336.connect_tcp`) is the Ethernet port: no pacing.

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

import numpy as np

from mock_instruments.base import MockConnection
from mock_instruments.temperature_loop import DIODE_CURVE, Pid, SetpointRamp, StageController, diode_voltage_V

INPUTS = ("A", "B", "C", "D")
#: The manual's quiet time after a command or a reply on the serial (USB) port, s.
SERIAL_QUIET_S = 0.05
ZERO_CELSIUS_K = 273.15
# OPST bits: new sensor reading, loop 1 / loop 2 ramp done, sensor overload
OPST_NRDG, OPST_RAMP1, OPST_RAMP2, OPST_OVLD = 16, 8, 4, 2
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


class SerialSession(MockConnection):
    """A session on the serial (USB) port: a message sent less than :data:`SERIAL_QUIET_S` after the end of
    the last exchange is lost, as the manual warns (intermittent failures)."""

    instrument: MockLakeShore336

    def write(self, message: str) -> None:
        inst = self.instrument
        now = inst.world.clock.now()
        last = getattr(self, "_last_end_s", None)
        if last is not None and now < last + SERIAL_QUIET_S - 1e-9:
            with inst.lock:
                inst.lost_messages += 1
                self._awaiting_reply = inst.is_query(message)
                self.output.clear()
            self._last_end_s = now
            return
        super().write(message)
        self._last_end_s = inst.world.clock.now()

    def read(self) -> str:
        try:
            return super().read()
        finally:
            self._last_end_s = self.instrument.world.clock.now()


class MockLakeShore336(StageController):
    """The simulated Lake Shore 336 (options: ``serial``, ``heater_output``, and the base options)."""

    model = "lakeshore336"
    idn_model = "MODEL336"
    reply_terminator = "\r\n"
    inputs: tuple[str, ...] = INPUTS
    output_numbers: tuple[int, ...] = (1, 2, 3, 4)

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        serial = options.pop("serial", f"LSA{zlib.crc32(name.encode()) % 100000:05d}")
        self.idn = f"LSCI,{self.idn_model},{serial}/#######,2.9"
        self.heater_output = int(options.pop("heater_output", 1))
        if self.heater_output not in (1, 2):
            raise ValueError(f"heater_output must be 1 or 2, got {self.heater_output}")
        self.esr = self.ese = self.sre = 0
        self.opst = self.opste = 0
        self.lost_messages = 0
        # INTYPE per input: sensor type, autorange, range, compensation, units (diodes in kelvin on A and B)
        self.intype = {index: [1, 0, 0, 0, 1] if index <= 2 else [0, 0, 0, 0, 1]
                       for index in range(1, len(self.inputs) + 1)}
        self.outputs = self._power_up_outputs(world.time_s)
        self._commands: dict[tuple[str, bool], Callable[[list[str]], str | None]] = {
            (header, query): getattr(self, method) for header, query, method in _COMMANDS}
        super().__init__(world, name, **options)

    def connect(self, timeout_s: float | None = None) -> MockConnection:
        """An in-process session: the USB port, a serial port with the manual's pacing rule."""
        if self.faults.drop_permanent:
            raise ConnectionRefusedError(f"{self.name}: connection refused")
        return SerialSession(self, self.timeout_s if timeout_s is None else timeout_s)

    def connect_tcp(self) -> MockConnection:
        """A session on the Ethernet port (TCP 7777): TCP paces the messages."""
        return super().connect()

    def _power_up_outputs(self, t_s: float) -> dict[int, Output]:
        """The power-up settings: outputs 1/2 closed loop on inputs A/B, heaters off, ramp off at 10 K/min."""
        outputs = {n: Output(n, mode=1 if n < 3 else 0, control_input=n if n < 3 else 0,
                             ramp=SetpointRamp(rate_K_min=10.0, start_s=t_s)) for n in self.output_numbers}
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

    def _output(self, text: str, allowed: tuple[int, ...] | None = None) -> Output:
        return self.outputs[integer(text, self.output_numbers if allowed is None else allowed)]

    def _input(self, text: str) -> int:
        key = text.upper()
        if key not in self.inputs:
            raise IgnoredError(ESR_EXE)
        return self.inputs.index(key) + 1

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
        """Status byte: bit 5 event summary (ESR & ESE), bit 7 operation summary (OPST condition & OPSTE)."""
        value = (32 if self.esr & self.ese else 0) | (128 if self._operation_condition() & self.opste else 0)
        return f"{value:03d}"

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
        indices = range(1, len(self.inputs) + 1) if key == "0" else [self._input(key)]
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
        return ",".join(str(v) for v in self.intype[index])

    def _set_intype(self, args: list[str]) -> None:
        """``INTYPE <input>,<type>,<autorange>,<range>,<compensation>,<units>``: the units matter here."""
        key, sensor, autorange, range_, compensation, units = self._args(args, 6)
        index = self._input(key)
        self.intype[index] = [integer(sensor, range(6)), integer(autorange, (0, 1)), integer(range_, range(9)),
                              integer(compensation, (0, 1, 2)), integer(units, (1, 2, 3))]

    # ---------------------------------------------------------------------------- setpoint units
    def _setpoint_units(self, output: Output) -> int:
        """The preferred units of the output's control input (kelvin when it has none)."""
        return self.intype[output.control_input][4] if output.control_input else 1

    def _to_kelvin(self, value: float, units: int) -> float:
        if units == 2:
            return value + ZERO_CELSIUS_K
        if units == 3:  # diode volts: the curve falls with temperature
            return float(np.interp(value, _CURVE_V_ASC, _CURVE_K_DESC))
        return value

    def _from_kelvin(self, kelvin: float, units: int) -> float:
        if units == 2:
            return kelvin - ZERO_CELSIUS_K
        if units == 3:
            return diode_voltage_V(kelvin)
        return kelvin

    # ------------------------------------------------------------------------------------- outputs
    def _set_setp(self, args: list[str]) -> None:
        number_, value = self._args(args, 2)
        output = self._output(number_)
        kelvin = self._to_kelvin(number(value, -ZERO_CELSIUS_K, 1500.0), self._setpoint_units(output))
        if not 0.0 <= kelvin <= 1500.0:
            raise IgnoredError(ESR_EXE)
        output.ramp.set_target(kelvin, self.world.time_s)
        self.wake()

    def _get_setp(self, args: list[str]) -> str:
        output = self._output(self._args(args, 1)[0])
        return reading(self._from_kelvin(output.ramp.value(self.world.time_s), self._setpoint_units(output)))

    # ------------------------------------------------------------------------- operation events
    def _operation_condition(self) -> int:
        """OPSTR?: what holds now (a reading is always new: the 336 updates ten times a second)."""
        condition = OPST_NRDG
        for number_, bit in ((1, OPST_RAMP1), (2, OPST_RAMP2)):
            ramp = self.outputs[number_].ramp
            if ramp.enabled and not ramp.ramping(self.world.time_s):
                condition |= bit
        if any(self._input_values(i)[1] & 128 for i in range(1, len(self.inputs) + 1)):
            condition |= OPST_OVLD
        return condition

    def _opst(self, args: list[str]) -> str:
        value = (self.opst | self._operation_condition())
        self.opst = 0
        return f"{value:03d}"

    def _opstr(self, args: list[str]) -> str:
        return f"{self._operation_condition():03d}"

    def _set_opste(self, args: list[str]) -> None:
        self.opste = integer(self._args(args, 1)[0], range(256))

    def _get_opste(self, args: list[str]) -> str:
        return f"{self.opste:03d}"

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
    ("INTYPE", True, "_intype"), ("INTYPE", False, "_set_intype"), ("SETP", False, "_set_setp"),
    ("SETP", True, "_get_setp"),
    ("RAMP", False, "_set_ramp"), ("RAMP", True, "_get_ramp"), ("RAMPST", True, "_rampst"),
    ("RANGE", False, "_set_range"), ("RANGE", True, "_get_range"), ("PID", False, "_set_pid"),
    ("PID", True, "_get_pid"), ("MOUT", False, "_set_mout"), ("MOUT", True, "_get_mout"),
    ("OUTMODE", False, "_set_outmode"), ("OUTMODE", True, "_get_outmode"), ("HTRSET", False, "_set_htrset"),
    ("HTRSET", True, "_get_htrset"), ("HTR", True, "_htr"), ("HTRST", True, "_htrst"),
    ("OPST", True, "_opst"), ("OPSTR", True, "_opstr"), ("OPSTE", False, "_set_opste"),
    ("OPSTE", True, "_get_opste"),
)
# The diode curve for interpolating volts to kelvin: volts rising, kelvin falling.
_CURVE_V_ASC = np.array([v for _, v in reversed(DIODE_CURVE)])
_CURVE_K_DESC = np.array([k for k, _ in reversed(DIODE_CURVE)])
