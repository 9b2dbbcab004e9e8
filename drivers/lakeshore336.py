"""Lake Shore Model 336 cryogenic temperature controller (the Model 335 is :mod:`drivers.lakeshore335`).

Protocol (Model 336 User's Manual, chapter 6 "Computer Interface Operation", command summary 6.6): plain
text commands ``HEADER <channel>,<value>,...`` and queries ``HEADER? <channel>``, terminated by CR LF; the
reply to a query is one line of comma-separated fields.

Link (:attr:`LakeShore336.connection_defaults`, used unless the station overrides them): the USB port is a
virtual serial port at 57 600 baud, 7 data bits, odd parity, 1 stop bit, CR LF (manual, USB interface
section; Lake Shore's own Python driver opens it with the same parameters). The manual's message flow
control for that port asks the program to start no other communication for 50 ms after a command's last
character, or after a reply has been received, and not more than 20 times a second: the link keeps
``command_interval_s = 0.05`` between exchanges. On Ethernet (TCP port 7777, ``TCPIP::host::7777::SOCKET``)
and GPIB, TCP and the bus handshake pace the messages, so no pause is added (:attr:`interface_defaults`).

Setpoint units: ``SETP`` takes, and ``SETP?`` returns, the setpoint in the *preferred units of the control
loop's sensor* — the ``<units>`` field of ``INTYPE`` for the loop's control input (1 kelvin, 2 Celsius,
3 sensor units). The driver reads them (``OUTMODE?`` for the control input, ``INTYPE?`` for its units)
before it writes or reads a setpoint and converts from and to kelvin; a control sensor set to sensor units
(volts, ohms) raises, since converting needs the sensor's curve, instead of sending kelvin as volts.

The Lake Shore has no error queue: a command it cannot parse or a value it refuses is ignored silently.
This driver therefore checks its own inputs before sending (class-level limits below), reads back every
setting whose read-back is unambiguous (``RANGE?``, ``RAMP?``, ``OUTMODE?``) and raises
:class:`~labctl.errors.InstrumentError` when the instrument did not take it, parses every reply strictly,
and checks the input status (``RDGST?``) with every temperature reading, so an open or shorted sensor
raises instead of feeding a procedure a bogus temperature.

Built on pymeasure's ``LakeShore3xx`` (its channel interfaces ``input_A``.. and ``output_1``.. stay
available, re-created here so their queries take this driver's lock and retries).

Coverage: kelvin reading with sensor status check, control setpoint, setpoint ramp (on/off and rate),
heater range off/low/medium/high on heater outputs 1 and 2, heater output percent and heater status
(``HTRST?``), PID, output (control) mode and its input, input sensor type (read only), identification,
settings snapshot, safe state. Not covered: zones, autotune, curves (``CRVHDR``/``CRVPT``), alarms, relays,
analog outputs 3/4 as heaters, manual output (``MOUT``) beyond pymeasure's channel property, sensor setup
(``INTYPE`` is read, never written: a wrong sensor type can damage a sensor).

Safe state: heater range off (``RANGE <n>,0``) on both heater outputs, each read back. That is the safe
state of a cryostat because no power then reaches the stage: the sample can neither overheat nor be driven
by a runaway loop (a detached or open control sensor reads cold and makes the PID demand full power), and
the stage relaxes towards its bath (LN2/He) or room temperature, which is what the cryostat is built to
hold. Readings keep working, the setpoint is kept, and the run can resume by setting a range again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from pymeasure.adapters import Adapter
from pymeasure.instruments import Instrument
from pymeasure.instruments.lakeshore.lakeshore3xx import LakeShore3xx
from pymeasure.instruments.lakeshore.lakeshore_base import (
    LakeShoreHeaterChannel,
    LakeShoreTemperatureChannel,
)

from drivers.base import AdapterFactory, LabInstrument, attempt_all
from drivers.limits import check_range
from drivers.temperature_common import (
    HEATER_RANGE_NAMES,
    StabilityWaitMixin,
    heater_range_index,
)
from labctl.clock import Clock
from labctl.errors import InstrumentError, ParameterError

log = logging.getLogger(__name__)

# RDGST? bit weights (manual: RDGST? "Input Reading Status Query")
READING_STATUS_BITS = {
    1: "invalid reading",
    16: "temperature under range",
    32: "temperature over range",
    64: "sensor units zero",
    128: "sensor units over range",
}
# HTRST? codes (manual: HTRST? "Heater Status Query")
HEATER_STATUS = {1: "heater open load", 2: "heater short"}
# OUTMODE <mode> values
OUTPUT_MODES = {0: "off", 1: "closed_loop", 2: "zone", 3: "open_loop", 4: "monitor_out", 5: "warmup_supply"}
INPUTS = ("A", "B", "C", "D")
# INTYPE <units> codes (manual: INTYPE "preferred units parameter for sensor readings and for the control
# setpoint")
UNITS = {1: "kelvin", 2: "celsius", 3: "sensor units"}
ZERO_CELSIUS_K = 273.15


class _LockedChannelMixin:
    """Route a pymeasure channel's queries through the parent's ``ask`` (lock, retries, reconnect).

    pymeasure's ``Channel.ask`` writes and reads separately through the parent, which would bypass the
    recovery in :meth:`drivers.base.LabInstrument.ask` and record queries as settings.
    """

    parent: Any
    insert_id: Callable[[str], str]  # provided by pymeasure's Channel

    def ask(self, command: str, query_delay: float | None = None) -> str:
        return str(self.parent.ask(self.insert_id(command), query_delay))


class LakeShore336Input(_LockedChannelMixin, LakeShoreTemperatureChannel):
    """pymeasure's temperature input channel (``kelvin``, ``celsius``, ``sensor``) on our lock."""


class LakeShore336Output(_LockedChannelMixin, LakeShoreHeaterChannel):
    """pymeasure's heater output channel (``output``, ``mout``, ``range``, ``setpoint``) on our lock."""


class LakeShore336(StabilityWaitMixin, LabInstrument, LakeShore3xx):
    """Lake Shore 336 (or 335) as a :class:`~labctl.roles.TemperatureController` for one control loop.

    :param output: the heater output whose control loop this driver runs (1 or 2).
    :param input_channel: the input read by :meth:`read_temperature_K` ("A".."D"; usually the loop's
        control input, see :meth:`configure_control_loop`).
    """

    #: The role this driver plays (labctl.roles); its limits below become the role's capabilities.
    role = "temperature_controller"

    # Class-level limits, checked before anything is sent (procedures check them before connecting).
    temperature_range_K = (0.0, 1500.0)  # setpoint field; the control sensor's curve limits it further
    ramp_rate_range_K_min = (0.0, 100.0)  # RAMP: 0.1–100 K/min, 0 = ramping off
    min_ramp_rate_K_min = 0.1
    pid_ranges: ClassVar[dict[str, tuple[float, float]]] = {
        "P": (0.1, 1000.0), "I": (0.1, 1000.0), "D": (0.0, 200.0)}  # PID command ranges
    heater_outputs = (1, 2)
    heater_range_names = HEATER_RANGE_NAMES  # RANGE 0..3 on outputs 1 and 2
    #: The usual link: the USB port, a serial port at 57600 baud 7O1, CR LF, 50 ms between exchanges.
    connection_defaults: ClassVar[dict[str, Any]] = {
        "baudrate": 57600, "bytesize": 7, "parity": "odd", "stopbits": 1,
        "read_termination": "\r\n", "write_termination": "\r\n", "command_interval_s": 0.05}
    #: Ethernet (raw socket on TCP port 7777) and GPIB need no pause between messages.
    interface_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "socket": {"command_interval_s": 0.0}, "tcpip": {"command_interval_s": 0.0},
        "gpib": {"command_interval_s": 0.0}}
    primary_interface = "serial"
    tcp_port = 7777
    #: Inputs this model has (the 336: A–D; option cards add more, not driven here).
    inputs: tuple[str, ...] = INPUTS
    #: What ``*IDN?`` names as the model.
    idn_model = "MODEL336"

    input_A = Instrument.ChannelCreator(LakeShore336Input, "A")
    input_B = Instrument.ChannelCreator(LakeShore336Input, "B")
    input_C = Instrument.ChannelCreator(LakeShore336Input, "C")
    input_D = Instrument.ChannelCreator(LakeShore336Input, "D")
    input_C1 = Instrument.ChannelCreator(LakeShore336Input, "C1")
    input_C2 = Instrument.ChannelCreator(LakeShore336Input, "C2")
    input_C3 = Instrument.ChannelCreator(LakeShore336Input, "C3")
    input_C4 = Instrument.ChannelCreator(LakeShore336Input, "C4")
    input_D1 = Instrument.ChannelCreator(LakeShore336Input, "D1")
    input_D2 = Instrument.ChannelCreator(LakeShore336Input, "D2")
    input_D3 = Instrument.ChannelCreator(LakeShore336Input, "D3")
    input_D4 = Instrument.ChannelCreator(LakeShore336Input, "D4")
    input_D5 = Instrument.ChannelCreator(LakeShore336Input, "D5")
    output_1 = Instrument.ChannelCreator(LakeShore336Output, 1)
    output_2 = Instrument.ChannelCreator(LakeShore336Output, 2)
    output_3 = Instrument.ChannelCreator(LakeShore336Output, 3)
    output_4 = Instrument.ChannelCreator(LakeShore336Output, 4)

    def __init__(
        self,
        adapter: Adapter | str,
        name: str = "Lake Shore 336",
        *,
        address: str = "",
        adapter_factory: AdapterFactory | None = None,
        clock: Clock | None = None,
        output: int = 1,
        input_channel: str = "A",
        **kwargs: Any,
    ) -> None:
        if output not in self.heater_outputs:
            raise ParameterError(f"output must be a heater output {self.heater_outputs}; got {output!r}")
        channel = str(input_channel).upper()
        if channel not in self.inputs:
            raise ParameterError(f"input_channel must be one of {', '.join(self.inputs)}; got {input_channel!r}")
        super().__init__(adapter, name, address=address, adapter_factory=adapter_factory, clock=clock,
                         **kwargs)
        self.output = output
        self.input_channel = channel

    # ------------------------------------------------------------------------------ reply parsing
    def _number(self, command: str) -> float:
        reply = self.ask(command).strip()
        try:
            return float(reply)
        except ValueError:
            raise InstrumentError(f"unreadable reply {reply!r} to {command!r}",
                                  instrument=self.name, address=self.address) from None

    def _fields(self, command: str, count: int) -> list[float]:
        reply = self.ask(command).strip()
        parts = reply.split(",")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != count:
            raise InstrumentError(f"unreadable reply {reply!r} to {command!r} (expected {count} numbers)",
                                  instrument=self.name, address=self.address)
        return values

    def _refused(self, what: str, reply: Any) -> InstrumentError:
        return InstrumentError(f"the controller did not accept {what} (it reads back {reply!r}); "
                               "the Lake Shore ignores commands it refuses", instrument=self.name,
                               address=self.address)

    # ---------------------------------------------------------------------------- configuration replay
    def _remember_setting(self, command: str) -> None:
        """Key settings by header *and* channel: ``RANGE 1,..`` and ``RANGE 2,..`` are two settings."""
        header, _, argument = command.strip().partition(" ")
        if header.upper() == "*RST":
            self._settings_log.clear()
        elif argument and not header.endswith("?"):
            channel = argument.split(",", 1)[0].strip()
            self._settings_log[f"{header.upper()} {channel}"] = command

    # ---------------------------------------------------------------------------------- temperature
    def read_temperature_K(self) -> float:
        """The input's reading in kelvin (``KRDG? <input>``); its status (``RDGST?``) is checked next."""
        with self.lock:
            value = self._number(f"KRDG? {self.input_channel}")
            self.check_sensor()
        return value

    def check_sensor(self, input_channel: str | None = None) -> None:
        """Raise :class:`InstrumentError` if ``RDGST?`` flags the input (open/shorted sensor, off curve)."""
        channel = (input_channel or self.input_channel).upper()
        status = int(self._number(f"RDGST? {channel}"))
        if status:
            flags = [text for bit, text in READING_STATUS_BITS.items() if status & bit]
            flags = flags or [f"status {status}"]
            raise InstrumentError(
                f"input {channel} reports {', '.join(flags)} (RDGST? = {status}): the sensor is open, "
                "shorted, disconnected or outside its curve", instrument=self.name, address=self.address)

    # ------------------------------------------------------------------------------ control loop
    def setpoint_units(self, control_input: str | None = None) -> tuple[str, str]:
        """(control input, its preferred units) of the loop: the units ``SETP`` is written and read in.
        ``control_input`` saves the ``OUTMODE?`` query when the caller has just read it ("" for none)."""
        if control_input is None:
            _, control_input, _ = self.control_loop()
        channel = control_input or self.input_channel
        code = self.sensor_type(channel)[4]
        if code not in UNITS:
            raise InstrumentError(f"input {channel} reports unknown preferred units {code} (INTYPE?)",
                                  instrument=self.name, address=self.address)
        return channel, UNITS[code]

    def _setpoint_units(self, control_input: str | None = None) -> str:
        channel, units = self.setpoint_units(control_input)
        if units == "sensor units":
            raise InstrumentError(
                f"output {self.output} controls on input {channel}, whose preferred units are sensor units "
                "(INTYPE): its setpoint would be in volts or ohms, which labctl cannot convert from kelvin "
                "without the sensor's curve; set the input's units to kelvin or Celsius (front panel: Input "
                "Setup, Preferred Units)", instrument=self.name, address=self.address)
        return units

    def set_setpoint_K(self, temperature_K: float) -> None:
        """Control setpoint of the loop, in kelvin; sent in the control sensor's preferred units
        (``SETP <output>,<value>``, see the module docstring). With ramping on, the controller ramps its
        working setpoint to this target."""
        value = check_range("setpoint", temperature_K, self.temperature_range_K, "K")
        with self.lock:
            if self._setpoint_units() == "celsius":
                self.write(f"SETP {self.output},{value - ZERO_CELSIUS_K:.4f}")
            else:
                self.write(f"SETP {self.output},{value:g}")

    def setpoint_K(self) -> float:
        """The loop's present setpoint in kelvin (``SETP? <output>``, converted from the control sensor's
        preferred units)."""
        with self.lock:
            return self._setpoint_in_K(self._setpoint_units())

    def _setpoint_in_K(self, units: str) -> float:
        value = self._number(f"SETP? {self.output}")
        return value + ZERO_CELSIUS_K if units == "celsius" else value

    def set_ramp_rate_K_min(self, rate_K_min: float) -> None:
        """Setpoint ramp rate in K/min (``RAMP <output>,<on>,<rate>``), 0.1–100; 0 turns ramping off."""
        rate = check_range("ramp rate", rate_K_min, self.ramp_rate_range_K_min, "K/min")
        if 0 < rate < self.min_ramp_rate_K_min:
            raise ParameterError(f"ramp rate = {rate:g} K/min is below the controller's minimum of "
                                 f"{self.min_ramp_rate_K_min:g} K/min (use 0 to turn ramping off)")
        enabled = 1 if rate > 0 else 0
        with self.lock:
            self.write(f"RAMP {self.output},{enabled},{rate:g}")
            on, read_rate = self._fields(f"RAMP? {self.output}", 2)
            if int(on) != enabled or (enabled and abs(read_rate - rate) > 0.05 + 1e-3 * rate):
                raise self._refused(f"ramp {'on' if enabled else 'off'} at {rate:g} K/min",
                                    f"{int(on)},{read_rate:g}")

    def ramp_settings(self) -> tuple[bool, float]:
        """(ramping on, rate in K/min) from ``RAMP? <output>``."""
        on, rate = self._fields(f"RAMP? {self.output}", 2)
        return bool(int(on)), rate

    def set_heater_range(self, heater_range: str) -> None:
        """Heater range ``"off"``, ``"low"``, ``"medium"`` or ``"high"`` (``RANGE <output>,0..3``), read back.

        A range other than off needs the output in a control mode (``OUTMODE``); in Off mode the range has
        no effect, so that raises instead of leaving the stage unheated without notice.
        """
        index = heater_range_index(heater_range, self.heater_range_names)
        with self.lock:
            if index:
                mode, control_input, _ = self.control_loop()
                if mode == "off":
                    raise InstrumentError(
                        f"output {self.output} is in Off mode, so heater range {heater_range!r} would have "
                        "no effect; set a control mode first (configure_control_loop)",
                        instrument=self.name, address=self.address)
                if control_input and control_input != self.input_channel:
                    log.warning("%s: output %d controls on input %s but readings come from input %s",
                                self.name, self.output, control_input, self.input_channel)
            self._set_range(self.output, index)

    def _set_range(self, output: int, index: int) -> None:
        with self.lock:
            self.write(f"RANGE {output},{index}")
            read = int(self._number(f"RANGE? {output}"))
            if read != index:
                name = self.heater_range_names[index]
                raise self._refused(f"heater range {name!r} on output {output}", read)

    def heater_range(self) -> str:
        """The loop's heater range name from ``RANGE? <output>``."""
        index = int(self._number(f"RANGE? {self.output}"))
        if not 0 <= index < len(self.heater_range_names):
            raise InstrumentError(f"unknown heater range {index} on output {self.output}",
                                  instrument=self.name, address=self.address)
        return self.heater_range_names[index]

    def heater_off(self) -> None:
        """Heater range off on the loop's output."""
        self._set_range(self.output, 0)

    def heater_output_percent(self) -> float:
        """Heater output in percent of the present range (``HTR? <output>``); raises on a heater fault."""
        with self.lock:
            self.check_heater()
            return self._number(f"HTR? {self.output}")

    def check_heater(self) -> None:
        """Raise :class:`InstrumentError` if ``HTRST?`` reports an open or shorted heater."""
        code = int(self._number(f"HTRST? {self.output}"))
        if code:
            raise InstrumentError(f"output {self.output}: {HEATER_STATUS.get(code, f'heater error {code}')} "
                                  f"(HTRST? = {code})", instrument=self.name, address=self.address)

    def set_pid(self, p: float, i: float, d: float) -> None:
        """Loop gains (``PID <output>,<P>,<I>,<D>``): P 0.1–1000, I 0.1–1000 (repeats/s), D 0–200 %."""
        values = [check_range(key, value, self.pid_ranges[key], "")
                  for key, value in (("P", p), ("I", i), ("D", d))]
        self.write(f"PID {self.output},{values[0]:g},{values[1]:g},{values[2]:g}")

    def pid(self) -> tuple[float, float, float]:
        """(P, I, D) from ``PID? <output>``."""
        p, i, d = self._fields(f"PID? {self.output}", 3)
        return p, i, d

    def configure_control_loop(self, mode: str = "closed_loop", input_channel: str | None = None,
                               powerup_enable: bool = False) -> None:
        """Output mode and control input (``OUTMODE <output>,<mode>,<input>,<powerup enable>``), read back.

        ``mode`` is one of off, closed_loop, zone, open_loop, monitor_out, warmup_supply; the control input
        defaults to :attr:`input_channel`. ``powerup_enable`` False keeps the output off after a power
        failure (the safe choice for unattended runs).
        """
        codes = {v: k for k, v in OUTPUT_MODES.items()}
        if mode not in codes:
            raise ParameterError(f"mode must be one of {', '.join(codes)}; got {mode!r}")
        channel = (input_channel or self.input_channel).upper()
        if channel not in self.inputs:
            raise ParameterError(f"input_channel must be one of {', '.join(self.inputs)}; got {input_channel!r}")
        expected = (mode, channel, bool(powerup_enable))
        with self.lock:
            input_code = self.inputs.index(channel) + 1
            self.write(f"OUTMODE {self.output},{codes[mode]},{input_code},{int(powerup_enable)}")
            read = self.control_loop()
            if read != expected:
                raise self._refused(f"output mode {expected}", read)

    def control_loop(self) -> tuple[str, str, bool]:
        """(mode name, control input or "" for none, power-up enable) from ``OUTMODE? <output>``."""
        mode, control_input, powerup = (int(v) for v in self._fields(f"OUTMODE? {self.output}", 3))
        if mode not in OUTPUT_MODES or not 0 <= control_input <= len(self.inputs):
            raise InstrumentError(f"unknown output mode {mode},{control_input} on output {self.output}",
                                  instrument=self.name, address=self.address)
        return OUTPUT_MODES[mode], (self.inputs[control_input - 1] if control_input else ""), bool(powerup)

    def sensor_type(self, input_channel: str | None = None) -> list[int]:
        """The ``INTYPE? <input>`` fields: sensor type, autorange, range, compensation, units."""
        channel = (input_channel or self.input_channel).upper()
        return [int(v) for v in self._fields(f"INTYPE? {channel}", 5)]

    def sync_marker(self, n: int) -> tuple[str, str] | None:
        """``*ESE v;*ESE?`` answered by ``v``: the 336 has the IEEE 488.2 standard event status enable
        register (manual: ``*ESE``, ``*ESE?`` "Format nnn") and answers chained queries in one reply.
        ``v`` is kept in 100–255 (three digits) so that the reply reads the same whether or not the
        instrument pads it to the manual's ``nnn``; consecutive markers differ."""
        value = 100 + (int(n) - 1) % 156
        return f"*ESE {value};*ESE?", str(value)

    def identify(self) -> str:
        """``*IDN?``; raises when the instrument at the address is another model."""
        idn = self.ask("*IDN?").strip()
        fields = idn.split(",")
        if len(fields) < 2 or fields[0] != "LSCI" or fields[1] != self.idn_model:
            raise InstrumentError(f"not a Lake Shore {self.idn_model.removeprefix('MODEL')}: *IDN? answered "
                                  f"{idn!r}", instrument=self.name, address=self.address)
        return idn

    # ------------------------------------------------------------------------------------ roles
    def settings_snapshot(self) -> dict[str, float | str | bool]:
        """Loop and input settings: setpoint, ramp, heater range, PID, output mode, control input."""
        with self.lock:
            ramp_on, ramp_rate = self.ramp_settings()
            mode, control_input, powerup = self.control_loop()
            p, i, d = self.pid()
            units = self.setpoint_units(control_input)[1]
            return {
                "output": float(self.output),
                "input_channel": self.input_channel,
                "setpoint_units": units,
                "setpoint_K": self._setpoint_in_K(units) if units != "sensor units" else float("nan"),
                "ramp_enabled": ramp_on,
                "ramp_rate_K_min": ramp_rate,
                "heater_range": self.heater_range(),
                "output_mode": mode,
                "control_input": control_input,
                "powerup_enable": powerup,
                "P": p,
                "I": i,
                "D": d,
            }

    def safe_state(self) -> None:
        """Heater range off on outputs 1 and 2, each read back (see the module docstring for why)."""
        with self.lock:
            attempt_all(self.name, self.address, [
                (f"heater output {n} off", partial(self._set_range, n, 0)) for n in self.heater_outputs
            ])
