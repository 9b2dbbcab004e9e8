"""Newport (Oriel) VeraSol LSS-7120 LED solar simulator over USBTMC.

Link
----
The LSS-7120 is a USBTMC device (``USB0::0x1FDE::0x000A::<serial>::INSTR``). Evidence: the VeraSol control
library (Python, built on pyvisa), whose transport notes say that the instrument acknowledges every command
with a zero-byte USBTMC message (END set, no data) that must be read — NI-VISA hands it over as an empty
string — and that its replies do not end in ``"\n"``: reads end on USBTMC's END, so its read termination is
empty. An acknowledgement left unread is what the next read returns, so every later reply would belong to
the command before. :meth:`NewportLSS7120.write` therefore reads one acknowledgement after each command
when the link's ``acknowledged_writes`` setting is on (the default, from :attr:`connection_defaults`).
Behind a USBTMC-to-TCP bridge (``TCPIP::host::port::SOCKET``, also what ``labctl sim serve`` offers) the
bridge consumes the acknowledgements and ends each reply with ``"\n"``: :attr:`interface_defaults`.

Command set
-----------
Newport's LSS-7120 user manual (its "computer interface" chapter) is not publicly mirrored; the commands
below are the ones the manual documents as quoted by public lab code that drives the instrument (the
VeraSol library citing the manual's STATUS? bit table, "manual p. 30"; centralcontrol ``usbtmclight.py``;
the IVLab Oriel LSS-7120 driver). SCPI-style headers, short forms accepted:

- ``*IDN?`` -> ``Newport Corporation,LSS-7120,<serial>,<firmware>``
- ``OUTPut ON|OFF`` (also ``1|0``), ``OUTPut?`` -> ``ON``/``OFF`` (some firmware answers ``1``/``0``)
- ``AMPLitude <suns>`` 0.1–1.0 sun (1 sun = 100 mW/cm² on the calibrated scale), ``AMPLitude?``
- ``STATUS?`` -> decimal bit field: bit 0 output on, bit 2 head disconnected, bit 3 head warming up,
  bit 4 head over temperature
- ``ERROR?`` -> next error queue entry, ``0...`` when empty (the instrument's error queue; it is read here
  instead of ``SYST:ERR?``)
- ``USERCAL:SELECT 0|1`` (factory / user calibration), ``USERCAL:SELECT?``, ``USERCAL:PERFORM``
  (rescale the intensity so that the present output reads 1.00 sun on the user's reference cell)
- ``SPECTRUM:RECALL <0..10>`` (0 = factory AM1.5G), ``SPECTRUM:ACTIVE?``

Light model: an LED simulator has no mechanical shutter; :meth:`open_shutter`/:meth:`close_shutter`
switch the LED output on and off (``OUTPut``). The head needs ~15 min to warm up before the calibration
holds; opening the "shutter" while it warms up is allowed but logged.

Coverage: output on/off with read-back, intensity in suns, calibration mode and user calibration against a
reference cell, spectrum slot recall, head status, error queue. The LSS-7120 reports no measured
irradiance over its interface: :meth:`read_irradiance_mW_cm2` returns the calibrated set point (amplitude ×
100 mW/cm² while the output is on), not a sensor reading. Not covered: per-LED power (LEDPOWER),
storing spectra, the LED self-test.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pymeasure.instruments import Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from drivers.base import GarbledReply, SCPILabInstrument, attempt_all
from drivers.transport import link_settings_of
from labctl.errors import InstrumentError

log = logging.getLogger(__name__)

STATUS_OUTPUT_ON = 1 << 0
STATUS_HEAD_DISCONNECTED = 1 << 2
STATUS_WARMING_UP = 1 << 3
STATUS_OVER_TEMPERATURE = 1 << 4


def _on_off(reply: Any) -> str:
    text = str(reply).strip().upper()
    if text in {"ON", "1", "1.0"}:
        return "ON"
    if text in {"OFF", "0", "0.0"}:
        return "OFF"
    raise ValueError(f"unexpected output state {reply!r}")


class NewportLSS7120(SCPILabInstrument):
    """Newport/Oriel VeraSol LSS-7120 LED solar simulator (LightSource role)."""

    #: The role this driver plays (labctl.roles); its limits below become the role's capabilities.
    role = "light_source"

    default_name = "Newport LSS-7120"
    #: USBTMC: commands acknowledged by a zero-byte message, replies end at USBTMC's END (no "\n").
    connection_defaults: ClassVar[dict[str, Any]] = {
        "read_termination": "", "write_termination": "\n", "acknowledged_writes": True}
    #: Behind a USBTMC-to-TCP bridge the acknowledgements stay on the USB side and replies end in "\n".
    interface_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "socket": {"read_termination": "\n", "acknowledged_writes": False}}
    primary_interface = "usb"
    #: What an acknowledgement may read as: nothing (NI-VISA, pyvisa-py), or "Ready" (the Windows USBTMC
    #: class driver's rendering, per the VeraSol library).
    acknowledgements = frozenset({"", "ready"})
    #: The error queue is drained with ``ERROR?`` (entries ``<code>,<text>``; ``0`` means empty).
    error_query = "ERROR?"
    #: Settable intensity, suns (AMPLitude range of the LSS-7120).
    intensity_range_suns = (0.1, 1.0)
    #: Spectrum memory slots: 0 factory AM1.5G, 1 front-panel custom, 2–10 user.
    spectrum_slots = range(0, 11)

    amplitude_suns = Instrument.control(
        "AMPL?", "AMPL %.3f",
        """Control the output intensity in suns (float, 0.1–1.0; 1 sun = 100 mW/cm² on the calibrated
        scale).""",
        validator=strict_range, values=intensity_range_suns, check_set_errors=True,
    )

    output_enabled = Instrument.control(
        "OUTP?", "OUTP %s",
        """Control whether the LED output is on (bool).""",
        validator=strict_discrete_set, values={True: "ON", False: "OFF"}, map_values=True,
        get_process=_on_off, cast=str, check_set_errors=True,
    )

    calibration_mode = Instrument.control(
        "USERCAL:SELECT?", "USERCAL:SELECT %d",
        """Control which intensity calibration is used: ``"factory"`` or ``"user"`` (the one made with
        :meth:`calibrate_to_reference`).""",
        validator=strict_discrete_set, values={"factory": 0, "user": 1}, map_values=True,
        get_process=lambda v: int(v), check_set_errors=True,
    )

    active_spectrum = Instrument.control(
        "SPECTRUM:ACTIVE?", "SPECTRUM:RECALL %d",
        """Control the active spectrum memory slot (int, 0–10; setting recalls the slot, 0 = factory
        AM1.5G).""",
        validator=strict_discrete_set, values=spectrum_slots, get_process=lambda v: int(v),
        check_set_errors=True,
    )

    status_code = Instrument.measurement(
        "STATUS?",
        """Get the status bit field (int): bit 0 output on, bit 2 head disconnected, bit 3 head warming up,
        bit 4 head over temperature.""",
        cast=int,
    )

    # ------------------------------------------------------------------------- message layer
    def acknowledged_writes(self) -> bool:
        """Whether this link delivers the zero-byte acknowledgement of each command (USB) or not (a bridge)."""
        adapter = self.adapter
        cached = getattr(self, "_ack_for", None)
        if cached is None or cached[0] is not adapter:
            cached = (adapter, bool(link_settings_of(adapter, type(self)).get("acknowledged_writes")))
            self._ack_for = cached
        return cached[1]

    def write(self, command: str, **kwargs: Any) -> None:
        """Send a command and, on a USBTMC link, read its acknowledgement (see the module docstring)."""
        if not self.acknowledged_writes():
            super().write(command, **kwargs)
            return
        with self.lock:
            self._recovering(lambda: self._write_acknowledged(command), command, False)
            self._remember_setting(command)

    def _write_acknowledged(self, command: str) -> None:
        Instrument.write(self, command)
        ack = Instrument.read(self)
        if ack.strip().lower() not in self.acknowledgements:
            raise GarbledReply(f"{command!r} was acknowledged with {ack!r} instead of an empty message")

    def reapply_configuration(self) -> None:
        """Replay the settings after a reconnect, reading each acknowledgement (outputs last, as the base)."""
        if not self.acknowledged_writes():
            super().reapply_configuration()
            return
        settings = list(self._settings_log.items())
        ordered = [c for k, c in settings if not self.is_output_setting(k)]
        ordered += [c for k, c in settings if self.is_output_setting(k)]
        for command in ordered:
            self._write_acknowledged(command)

    def sync_marker(self, n: int) -> tuple[str, str] | None:
        """None: reopen the link after a timeout. The LSS-7120 has no settable register that a query reads
        back verbatim (no ``*ESE`` in the documented command set), and reopening a USBTMC session clears the
        device's output queue, which is what resynchronises it."""
        return None

    def identify(self) -> str:
        """``*IDN?``; raises when the instrument at the address is not an LSS-7120."""
        idn = self.ask("*IDN?").strip()
        if "LSS-7120" not in idn:
            raise InstrumentError(f"not a Newport LSS-7120: *IDN? answered {idn!r}", instrument=self.name,
                                  address=self.address)
        return idn

    # ------------------------------------------------------------------------- errors and status
    def split_error_entry(self, reply: str) -> tuple[str, str]:
        """``<code>,<text>``, or ``<code> <text>`` as some firmware answers."""
        head, sep, message = reply.partition(",")
        if not sep:
            head, _, message = reply.partition(" ")
        return head, message

    def head_status(self) -> dict[str, bool]:
        """Decoded ``STATUS?``."""
        code = self.status_code
        return {
            "output_on": bool(code & STATUS_OUTPUT_ON),
            "head_disconnected": bool(code & STATUS_HEAD_DISCONNECTED),
            "warming_up": bool(code & STATUS_WARMING_UP),
            "over_temperature": bool(code & STATUS_OVER_TEMPERATURE),
        }

    # ------------------------------------------------------------------------- calibration
    def calibrate_to_reference(self) -> None:
        """Store a user calibration: the present output becomes 1.00 sun (``USERCAL:PERFORM``).

        Put the reference cell under the head and adjust :attr:`amplitude_suns` until it reads 1 sun
        first; afterwards select ``calibration_mode = "user"`` to use it."""
        with self.lock:
            self.write("USERCAL:PERFORM")
            self.raise_if_error("USERCAL:PERFORM")

    # ------------------------------------------------------------------------- LightSource role
    def set_intensity_suns(self, suns: float) -> None:
        """Set the output intensity, suns (0.1–1.0)."""
        self.amplitude_suns = suns

    def open_shutter(self) -> None:
        """Light on (OUTPut ON; LED source, no mechanical shutter). Refuses a disconnected or overheated
        head and verifies that the output really switched on."""
        with self.lock:
            status = self.head_status()
            if status["head_disconnected"] or status["over_temperature"]:
                problem = "head disconnected" if status["head_disconnected"] else "head over temperature"
                raise InstrumentError(f"cannot switch the light on: {problem}", instrument=self.name,
                                      address=self.address)
            if status["warming_up"]:
                log.warning("%s: the LED head is still warming up; the intensity calibration does not "
                            "hold yet", self.name)
            self.output_enabled = True
            if not self.output_enabled:
                raise InstrumentError("output did not switch on", instrument=self.name, address=self.address)

    def close_shutter(self) -> None:
        """Light off (OUTPut OFF)."""
        self.output_enabled = False

    def read_irradiance_mW_cm2(self) -> float:
        """Calibrated irradiance set point, mW/cm²: amplitude × 100 while the output is on, else 0.

        The LSS-7120 has no irradiance sensor read-back; this is the value its (factory or user)
        calibration guarantees, not a measurement."""
        with self.lock:
            if not self.output_enabled:
                return 0.0
            return float(self.amplitude_suns) * 100.0

    # ------------------------------------------------------------------------- Instrument role
    def settings_snapshot(self) -> dict[str, float | str | bool]:
        with self.lock:
            status = self.head_status()
            return {
                "amplitude_suns": float(self.amplitude_suns),
                "output_on": bool(self.output_enabled),
                "calibration_mode": str(self.calibration_mode),
                "active_spectrum": int(self.active_spectrum),
                "warming_up": status["warming_up"],
                "over_temperature": status["over_temperature"],
            }

    def safe_state(self) -> None:
        """Light off. Idempotent."""
        attempt_all(self.name, self.address, [("output off", self.close_shutter)])
