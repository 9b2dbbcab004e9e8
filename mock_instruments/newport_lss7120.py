"""Newport (Oriel) VeraSol LSS-7120 LED solar simulator over USBTMC.

Newport's LSS-7120 manual is not publicly mirrored; the command set is the one public lab code quotes from
it (the VeraSol control library citing the STATUS? bit table of the manual, greyltc/centralcontrol
``usbtmclight.py``, the IVLab LSS-7120 driver). SCPI-style headers, case-insensitive.

Framing (VeraSol library): the instrument is a USBTMC device. It acknowledges every command with a zero-byte
message (END set, no data) and ends replies at USBTMC's END, without ``"\n"``. An in-process session
(:class:`UsbtmcConnection`) reproduces this: each command leaves an empty message in the output queue, and
messages wait there in order — a new command does not discard them — so a client that does not read the
acknowledgement reads it later in place of a reply, and every reply after it one step late. A TCP session
(``labctl sim serve``, :meth:`MockNewportLSS7120.connect_tcp`) is what a USBTMC-to-TCP bridge offers: the
bridge reads the acknowledgements on the USB side and forwards only replies, each ending in ``"\n"``.

Commands:

- ``*IDN?`` -> ``Newport Corporation,LSS-7120,<serial>,<firmware>``;
- ``OUTPut ON|OFF|1|0``; ``OUTPut?`` -> ``1``/``0`` (centralcontrol's hardware-tested reading; the option
  ``output_reply="word"`` answers ``ON``/``OFF`` as other firmware is reported to);
- ``AMPLitude <suns>`` 0.1–1.0 sun; ``AMPLitude?`` -> e.g. ``0.750``;
- ``STATUS?`` -> decimal bit field: bit 0 output on, bit 2 head disconnected, bit 3 head warming up,
  bit 4 head over temperature;
- ``ERROR?`` -> the next entry of the error queue, ``<code>,"<text>"``; ``0,"No error"`` when empty
  (there is no ``SYSTem:ERRor?``);
- ``USERCAL:SELECT 0|1`` (factory / user intensity calibration), ``USERCAL:SELECT?``, ``USERCAL:PERFORM``
  (the present output becomes the user calibration's 1.00 sun: user scale = present scale × amplitude;
  with the user calibration selected the amplitude then reads 1.000 and the output does not change;
  refused with -221 while the output is off, since the reference cell sees nothing);
- ``SPECTRUM:RECALL <0..10>`` (0 factory AM1.5G, 1 front-panel custom, 2–10 user slots; an empty user
  slot is -224), ``SPECTRUM:STORE <1..10>``, ``SPECTRUM:ACTIVE?``;
- IEEE 488.2 common commands of the SCPI engine (``*RST`` switches the output off, amplitude 1.000).

Errors go to the queue with SCPI codes (-113 undefined header, -222 out of range, -104 data type, -200 a
head fault refuses ``OUTP ON``, -221, -224). The spectrum slots are bookkeeping: spectra other than the
factory AM1.5G are not modelled in the world's light. Not simulated: per-LED power (``LEDPOWER``,
``LEDMAXPOWER?``, ``LEDWAVELENGTH?``), the LED self-test (``LEDTEST:*``).

Physics: the world's light named by the ``light`` option (default: the mock's own name; created with
LED-like warm-up if missing) gets intensity = amplitude × calibration scale (factory scale: option
``factory_scale``, default 1.0); no shutter: its shutter stays open and ``OUTPut`` switches the LEDs (the
lamp). The head warms up for ``head_warmup_s`` (default 900 s) after power-up (STATUS bit 3); lamp failure
shows as a disconnected head (bit 2); ``head_over_temperature`` (an attribute) sets bit 4. Both faults make
``OUTP ON`` fail with -200. Each USBTMC transaction charges 2 ms to the clock.
"""

from __future__ import annotations

import zlib
from typing import Any

from mock_instruments.base import MockConnection
from mock_instruments.scpi import Bool, Num, ScpiError, ScpiInstrument, scpi

TRANSACTION_S = 2e-3
LED_LIGHT: dict[str, Any] = {"warmup_tau_s": 5.0, "warmup_start_fraction": 0.97}
STATUS_OUTPUT_ON, STATUS_HEAD_DISCONNECTED, STATUS_WARMING_UP, STATUS_OVER_TEMPERATURE = 1, 4, 8, 16


class UsbtmcConnection(MockConnection):
    """An in-process USBTMC session: every command is acknowledged by an empty message, and messages queue up
    in order until read (a new command does not clear them)."""

    def write(self, message: str) -> None:
        waiting = list(self.output)
        self.output.clear()
        try:
            super().write(message)
        finally:
            new = list(self.output)
            self.output.clear()
            self.output.extend(waiting + new)
        if not self.instrument.is_query(message):
            self.output.append("")  # the zero-byte acknowledgement


class MockNewportLSS7120(ScpiInstrument):
    """The simulated LSS-7120 (options: ``serial``, ``output_reply`` "numeric"|"word", ``factory_scale``,
    ``head_warmup_s``, ``light``, and the base options)."""

    #: The light a station without a [sim.lights] entry for this instrument gets.
    LIGHT_DEFAULTS = LED_LIGHT

    model = "newport_lss7120"
    # The LSS-7120's error queue is read with ERROR?, not SYSTem:ERRor? (shadowing drops the engine's).
    _error_next = None  # type: ignore[assignment]
    _error_count = None  # type: ignore[assignment]
    _error_all = None  # type: ignore[assignment]

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        options.setdefault("light", name)
        serial = options.pop("serial", f"7120{zlib.crc32(name.encode()) % 10000:04d}")
        self.idn = f"Newport Corporation,LSS-7120,{serial},1.01"
        self.output_reply = str(options.pop("output_reply", "numeric"))
        if self.output_reply not in ("numeric", "word"):
            raise ValueError(f"output_reply must be 'numeric' or 'word', not {self.output_reply!r}")
        self.factory_scale = float(options.pop("factory_scale", 1.0))
        self.head_warmup_s = float(options.pop("head_warmup_s", 900.0))
        light_name = str(options["light"])
        if light_name not in world.lights:
            world.add_light(light_name, **LED_LIGHT)
        super().__init__(world, name, **options)
        self.light = world.light(self.light_name)
        self.light.set_shutter(True)  # an LED head has no shutter: OUTPut switches the LEDs
        self.power_on_s = world.time_s
        self.head_over_temperature = False
        self.user_scale = self.factory_scale
        self.user_calibration = False
        self.spectra: dict[int, str] = {0: "AM1.5G", 1: "custom"}
        self.active_slot = 0
        self.reset()

    def connect(self, timeout_s: float | None = None) -> MockConnection:
        """An in-process USBTMC session (acknowledged commands; see the module docstring)."""
        if self.faults.drop_permanent:
            raise ConnectionRefusedError(f"{self.name}: connection refused")
        return UsbtmcConnection(self, self.timeout_s if timeout_s is None else timeout_s)

    def connect_tcp(self) -> MockConnection:
        """A session through a USBTMC-to-TCP bridge: acknowledgements stay on the USB side."""
        return super().connect()

    def reset(self) -> None:
        super().reset()
        self.amplitude = 1.0
        self.output = False
        self._apply()

    def handle(self, message: str) -> str | None:
        self.world.clock.sleep(TRANSACTION_S)
        self.world.sync()
        return super().handle(message)

    # ------------------------------------------------------------------------------- the light
    def scale(self) -> float:
        return self.user_scale if self.user_calibration else self.factory_scale

    def _apply(self) -> None:
        self.light.set_intensity_suns(min(self.amplitude * self.scale(), self.light.max_suns))
        self.light.switch_lamp(self.output)

    def status(self) -> int:
        code = STATUS_OUTPUT_ON if self.output else 0
        if self.light.failed:
            code |= STATUS_HEAD_DISCONNECTED
        if self.world.time_s - self.power_on_s < self.head_warmup_s:
            code |= STATUS_WARMING_UP
        if self.head_over_temperature:
            code |= STATUS_OVER_TEMPERATURE
        return code

    # ------------------------------------------------------------------------------- commands
    @scpi("OUTPut", Bool())
    def _output(self, on: bool) -> None:
        if on and self.light.failed:
            raise ScpiError(-200, "head disconnected")
        if on and self.head_over_temperature:
            raise ScpiError(-200, "head over temperature")
        self.output = on
        self._apply()

    @scpi("OUTPut?")
    def _output_query(self) -> str:
        if self.output_reply == "word":
            return "ON" if self.output else "OFF"
        return "1" if self.output else "0"

    @scpi("AMPLitude", Num(0.1, 1.0))
    def _amplitude(self, suns: float) -> None:
        self.amplitude = suns
        self._apply()

    @scpi("AMPLitude?")
    def _amplitude_query(self) -> str:
        return f"{self.amplitude:.3f}"

    @scpi("STATUS?")
    def _status(self) -> int:
        return self.status()

    @scpi("ERROR?")
    def _error(self) -> str:
        code, detail = self.errors.popleft() if self.errors else (0, "")
        return self.format_error(code, detail)

    @scpi("USERCAL:SELECT", Num(0, 1, integer=True))
    def _usercal_select(self, mode: int) -> None:
        self.user_calibration = bool(mode)
        self._apply()

    @scpi("USERCAL:SELECT?")
    def _usercal_select_query(self) -> int:
        return int(self.user_calibration)

    @scpi("USERCAL:PERFORM")
    def _usercal_perform(self) -> None:
        if not self.output:
            raise ScpiError(-221, "output off: nothing to calibrate against")
        self.user_scale = self.scale() * self.amplitude
        if self.user_calibration:
            self.amplitude = 1.0
        self._apply()

    @scpi("SPECTRUM:RECALL", Num(0, 10, integer=True))
    def _spectrum_recall(self, slot: int) -> None:
        if slot not in self.spectra:
            raise ScpiError(-224, f"spectrum slot {slot} is empty")
        self.active_slot = slot

    @scpi("SPECTRUM:STORE", Num(1, 10, integer=True))
    def _spectrum_store(self, slot: int) -> None:
        self.spectra[slot] = self.spectra[self.active_slot]

    @scpi("SPECTRUM:ACTIVE?")
    def _spectrum_active(self) -> int:
        return self.active_slot
