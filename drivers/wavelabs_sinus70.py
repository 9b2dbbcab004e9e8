"""Wavelabs SINUS-70 LED solar simulator, remote-controlled with WLRC XML messages through SinusGUI.

Connection
----------
SinusGUI, the Wavelabs control software, does its remote control ("WLRC") as a TCP *client*: it connects to
the control PC, which listens. The station names where labctl listens, ``address = "wavelabs://HOST:PORT"``
(``wavelabs://`` alone: 127.0.0.1:3334, the port lab code uses; ``0.0.0.0`` to accept SinusGUI from another
computer), or a relay SinusGUI is connected to, ``address = "wavelabs-relay://HOST[:3335]"``. Opening the
link waits ``connect_timeout_s`` (10 s) for SinusGUI; a reconnect listens again. The transport is
:mod:`drivers.wlrc_link`; on the simulated bench the simulated SinusGUI dials labctl's ``listen`` setting.

Evidence: SinusGUI's WLRC reference is not public. The connection roles, the framing and the command use
follow greyltc/centralcontrol (``wavelabs.py``: ``server_connect``/``awaitConnection`` listen on 3334 and
accept one connection, ``relay_connect`` dials 3335; requests are written without a trailing newline; each
reply is read as one message — one line in older versions, up to ``</WLRC>`` in newer ones; -4001 is in its
list of codes that mean success; ``get_spectrum`` reads results only after ``WaitForRunFinished`` and
``WaitForResultAvailable``) and the IVLab Sinus70 driver.

Protocol
--------
Each message is one XML document::

    request  <WLRC><ActivateRecipe iSeq="3" sRecipe="AM1.5G"/></WLRC>
    reply    <WLRC><ActivateRecipe iSeq="3" iEC="0"/></WLRC>

- ``iSeq`` numbers the requests; the driver increments it per message and accepts only the reply that
  echoes it (a reply with an older number is the late answer to a retried request and is skipped);
- ``iEC`` is the error code (``iCode`` is accepted as a synonym): 0 is success, anything else raises
  :class:`~labctl.errors.InstrumentError` with the code and the reply's ``sError`` text — except -4001 ("no
  run in progress") in answer to CancelRecipe, which means the light is already off;
- results come back as attributes: ``sRunID`` (StartRecipe), ``sVal`` (GetRecipeParam, GetResult),
  ``sStatus`` (GetRunStatus); GetDataSeries nests ``<DataSeries sName=".." sUnit="..">v;v;v</DataSeries>``.

Commands used: ``ActivateRecipe sRecipe``; ``SetRecipeParam``/``GetRecipeParam sRecipe iStep sDevice sParam
[sVal]`` (``sDevice="Light"``, ``sParam="Intensity"`` in percent, ``"Duration"`` in ms); ``StartRecipe``;
``CancelRecipe``; ``GetRunStatus``; ``WaitForRunFinished``/``WaitForResultAvailable fTimeout sRunID``;
``GetResult sParam sRunID``; ``GetDataSeries iStep sDevice sCurveName sAttributes sRunID``.

Light model: an LED simulator has no mechanical shutter. :meth:`open_shutter` starts the active recipe
(the LEDs light up; with a run already in progress it does nothing), :meth:`close_shutter` cancels it (the
LEDs go dark). SinusGUI refuses ActivateRecipe and StartRecipe while a run is in progress, and recipe
changes apply when a run starts, so changing the intensity or duration of a lit source cancels the run,
changes the recipe and starts it again. The recipe's ``Duration`` must cover the measurement: a run ends by
itself when it elapses (see :attr:`duration_s`).

Measured irradiance: SinusGUI evaluates a run (reference irradiance, spectrum, LED temperatures) once it has
ended. :meth:`read_irradiance_mW_cm2` and :meth:`read_spectrum` therefore make a *measurement run*: cancel
the present run, run the recipe for :attr:`measurement_run_ms`, wait for it to finish and for its result,
read it, restore the recipe's Duration and, if the light was on, start it again. The LEDs are dark for the
few messages between the runs (tens of milliseconds); a read costs about a second. Once two successive
measurements agree (the LEDs have warmed up), that value is returned for :attr:`irradiance_max_age_s` (60 s;
station ``driver_options``) while the recipe and intensity stay the same, instead of interrupting the light
before every scan.

Coverage: recipe activation, intensity in suns (recipe parameter ``Intensity``, 100 % = 1 sun for a recipe
calibrated to AM1.5G), light on/off, run status, the calibrated irradiance of a measurement run (``GetResult
totalirradiance_300_1200`` in W/m², converted to mW/cm²), its spectrum (``GetDataSeries
Irradiance-Wavelength``), recipe duration. Not covered: recipe editing beyond Intensity/Duration, FreeFloat
per-channel LED control, LED temperatures, ExitProgram.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, ClassVar
from xml.sax.saxutils import escape

import numpy as np
from pymeasure.adapters import Adapter
from pymeasure.instruments.validators import strict_range

from drivers.base import AdapterFactory, GarbledReply, LabInstrument, attempt_all
from labctl.clock import Clock
from labctl.errors import InstrumentError
from labctl.roles import FloatArray

log = logging.getLogger(__name__)

_SEQUENCE = re.compile(r'\biSeq="(\d+)"')
_COMMAND = re.compile(r"<WLRC>\s*<(\w+)")


@dataclass(frozen=True)
class WLRCReply:
    """One parsed WLRC reply: the command it answers, its sequence number, error code and results."""

    command: str
    sequence: int | None
    code: int
    error: str
    attributes: dict[str, str]
    series: dict[str, FloatArray] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Spectrum:
    """A spectrum measured by the simulator's built-in spectrometer during a run."""

    wavelength_nm: FloatArray
    irradiance: FloatArray
    unit: str


def parse_reply(text: str) -> WLRCReply:
    """Parse one reply line; ``ValueError`` if it is not a well-formed WLRC reply."""
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise ValueError(f"not a WLRC XML message: {text!r}") from exc
    if root.tag != "WLRC" or len(root) != 1:
        raise ValueError(f"expected <WLRC> around exactly one element: {text!r}")
    element = root[0]
    attributes = dict(element.attrib)
    code_text = attributes.get("iEC", attributes.get("iCode"))
    if code_text is None:
        raise ValueError(f"reply without an error code (iEC): {text!r}")
    series: dict[str, FloatArray] = {}
    units: dict[str, str] = {}
    for child in element.iter("DataSeries"):
        name = child.get("sName", "")
        series[name] = np.asarray([float(v) for v in (child.text or "").split(";") if v.strip()], dtype=float)
        units[name] = child.get("sUnit", "")
    sequence = attributes.get("iSeq")
    return WLRCReply(
        command=element.tag,
        sequence=int(sequence) if sequence is not None else None,
        code=int(code_text),
        error=attributes.get("sError", ""),
        attributes=attributes,
        series=series,
        units=units,
    )


def _xml_value(value: str | int | float) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return escape(text, {'"': "&quot;"})


class WavelabsSinus70(LabInstrument):
    """Wavelabs SINUS-70 LED solar simulator (LightSource role) through SinusGUI's WLRC interface.

    :param recipe: the SinusGUI recipe to run (calibrated AM1.5G recipe, e.g. ``"AM1.5G"``).
    """

    #: The role this driver plays (labctl.roles); its limits below become the role's capabilities.
    role = "light_source"

    #: Settable intensity, suns (recipe Intensity 0–120 %; SinusGUI rejects what the LED engine can't reach).
    intensity_range_suns = (0.0, 1.2)
    #: Recipe duration that can be set, seconds (Duration is stored in ms; capped at a 32-bit ms count).
    duration_range_s = (1.0, 2_147_483.0)
    #: The link: labctl listens for SinusGUI (see the module docstring); replies are read up to </WLRC>.
    connection_defaults: ClassVar[dict[str, Any]] = {"listen": "127.0.0.1:3334", "connect_timeout_s": 10.0}
    primary_interface = "wlrc"
    #: GetResult parameter holding the calibrated irradiance of a run, W/m².
    irradiance_result = "totalirradiance_300_1200"
    #: CancelRecipe's answer when no run is in progress: the light is off, which is what was asked.
    nothing_to_cancel = -4001
    #: How long a measurement run lights the LEDs, ms (centralcontrol's spectrum run: 1002 ms).
    measurement_run_ms = 1000
    #: Extra time SinusGUI is given to end and evaluate a measurement run, ms.
    measurement_margin_ms = 2000
    #: How long a settled irradiance stands for the light, s: within it, with the recipe unchanged, a read
    #: returns the last measurement instead of interrupting the light again (0: measure on every read).
    irradiance_max_age_s = 60.0
    #: Two successive measurements this close (relative) mean the light has settled after switching on.
    irradiance_settled_fraction = 0.005
    #: How many replies to older sequence numbers are skipped before the link counts as out of step.
    max_stale_replies = 4

    def __init__(
        self,
        adapter: Adapter | str,
        name: str = "Wavelabs SINUS-70",
        *,
        recipe: str = "AM1.5G",
        irradiance_max_age_s: float | None = None,
        address: str = "",
        adapter_factory: AdapterFactory | None = None,
        clock: Clock | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(adapter, name, address=address, adapter_factory=adapter_factory, clock=clock,
                         **kwargs)
        self.recipe = recipe
        self.light_on = False
        self.run_id = ""
        self._sequence = 0
        self._recipe_active = False
        self._intensity_percent: float | None = None
        self._duration_ms: int | None = None
        if irradiance_max_age_s is not None:
            self.irradiance_max_age_s = strict_range(irradiance_max_age_s, (0.0, 86400.0))
        self._measured: tuple[float, str, float] | None = None  # settled: (clock time, recipe, mW/cm²)
        self._previous: tuple[str, float] | None = None  # the last measurement: (recipe, mW/cm²)

    # ------------------------------------------------------------------------- message layer
    def frame(self, command: str, **attributes: str | int | float) -> str:
        """The next request message: ``<WLRC><command iSeq="n" .../></WLRC>`` (increments iSeq)."""
        self._sequence += 1
        parts = [f'iSeq="{self._sequence}"'] + [f'{k}="{_xml_value(v)}"' for k, v in attributes.items()]
        return f"<WLRC><{command} {' '.join(parts)}/></WLRC>"

    def ask(self, command: str, query_delay: float | None = None) -> str:
        """Send one WLRC message, return its reply; raise InstrumentError when iEC is not 0."""
        text = super().ask(command, query_delay)
        self._raise_for(parse_reply(text))
        return text

    def write(self, command: str, **kwargs: Any) -> None:
        """Every WLRC message is answered: a write is an ask whose reply is checked and dropped."""
        self.ask(command)

    def _ask_once(self, command: str, query_delay: float | None) -> str:
        match = _SEQUENCE.search(command)
        expected = int(match.group(1)) if match else None
        name_match = _COMMAND.match(command)
        name = name_match.group(1) if name_match else ""
        super(LabInstrument, self).write(command)
        self.wait_for(query_delay)
        for _ in range(self.max_stale_replies + 1):
            text = super(LabInstrument, self).read().strip()
            if not text:
                raise TimeoutError(f"no reply to {name}")
            try:
                reply = parse_reply(text)
            except ValueError as exc:
                raise GarbledReply(str(exc)) from exc
            if reply.command == name and (reply.sequence is None or reply.sequence == expected):
                return text
            if reply.sequence is not None and expected is not None and reply.sequence < expected:
                log.warning("%s: skipping a late reply %r", self.name, text)
                continue
            raise GarbledReply(f"reply {text!r} does not answer {command!r}")
        raise GarbledReply(f"only late replies while waiting for the answer to {command!r}")

    def _raise_for(self, reply: WLRCReply, accept: tuple[int, ...] = ()) -> None:
        if reply.code == 0 or reply.code in accept:
            return
        raise InstrumentError(f"{reply.command} failed with error {reply.code}: {reply.error or 'no text'}",
                              instrument=self.name, address=self.address)

    def request(self, command: str, *, accept: tuple[int, ...] = (), **attributes: str | int | float
                ) -> WLRCReply:
        """Send ``command`` with ``attributes`` and return the parsed reply; an error code other than 0 (and
        those in ``accept``) raises :class:`InstrumentError`."""
        with self.lock:
            message = self.frame(command, **attributes)
            text = LabInstrument.ask(self, message)
            reply = parse_reply(text)
            self._raise_for(reply, accept)
            return reply

    def check_errors(self) -> list[tuple[int, str]]:
        """WLRC has no error queue: every reply carries its own error code, checked in :meth:`ask`."""
        return []

    def sync_marker(self, n: int) -> tuple[str, str] | None:
        """None: after a timeout the link is reopened rather than probed with a marker.

        No WLRC request has a reply whose full text is known in advance (every reply carries state such as the
        run status), so no exact marker exists; stale replies are recognised by their ``iSeq`` and skipped
        anyway (:meth:`_ask_once`). Reopening is also what centralcontrol does after a timeout (disconnect,
        listen, wait for SinusGUI)."""
        return None

    def _remember_setting(self, command: str) -> None:
        """Settings are replayed from the driver's own state (see :meth:`reapply_configuration`)."""

    def reapply_configuration(self) -> None:
        """After a reconnect: set the intensity (and duration) again and re-activate the recipe (the light is
        not restarted; SinusGUI keeps or ends a run on its own). A run still in progress keeps its recipe:
        SinusGUI refuses ActivateRecipe during a run, so the recipe is re-activated only when none runs
        (the intensity, stored in the recipe, applies from the next run either way)."""
        running = False
        if self.light_on:
            status = parse_reply(self._ask_once(self.frame("GetRunStatus"), None))
            self._raise_for(status)
            running = status.attributes.get("sStatus", "").strip().lower() == "running"
        messages = []
        if self._intensity_percent is not None:
            messages.append(self.frame("SetRecipeParam", sRecipe=self.recipe, iStep=1, sDevice="Light",
                                       sParam="Intensity", sVal=self._intensity_percent))
        if self._duration_ms is not None:
            messages.append(self.frame("SetRecipeParam", sRecipe=self.recipe, iStep=1, sDevice="Light",
                                       sParam="Duration", sVal=self._duration_ms))
        if (self._recipe_active or messages) and not running:
            messages.append(self.frame("ActivateRecipe", sRecipe=self.recipe))
        for message in messages:
            self._raise_for(parse_reply(self._ask_once(message, None)))

    # ------------------------------------------------------------------------- recipe commands
    def activate_recipe(self, recipe: str | None = None) -> None:
        """Make ``recipe`` (default: the station's recipe) the one StartRecipe runs."""
        with self.lock:
            recipe = recipe or self.recipe
            if recipe != self.recipe:
                self._measured = self._previous = None
            self.request("ActivateRecipe", sRecipe=recipe)
            self.recipe = recipe
            self._recipe_active = True

    def set_recipe_param(self, param: str, value: str | int | float, *, device: str = "Light",
                         step: int = 1) -> None:
        """Set a parameter of the station recipe (e.g. ``Intensity`` in %, ``Duration`` in ms)."""
        self.request("SetRecipeParam", sRecipe=self.recipe, iStep=step, sDevice=device, sParam=param,
                     sVal=value)

    def get_recipe_param(self, param: str, *, device: str = "Light", step: int = 1) -> str:
        """A parameter of the station recipe, as SinusGUI reports it (``sVal``)."""
        reply = self.request("GetRecipeParam", sRecipe=self.recipe, iStep=step, sDevice=device, sParam=param)
        return self._attribute(reply, "sVal")

    def _attribute(self, reply: WLRCReply, key: str) -> str:
        if key not in reply.attributes:
            raise InstrumentError(f"{reply.command} reply lacks {key}", instrument=self.name,
                                  address=self.address)
        return reply.attributes[key]

    def _number(self, reply: WLRCReply, key: str) -> float:
        value = self._attribute(reply, key)
        try:
            return float(value)
        except ValueError as exc:
            raise InstrumentError(f"unreadable {key} {value!r} in the {reply.command} reply",
                                  instrument=self.name, address=self.address) from exc

    @property
    def intensity_percent(self) -> float:
        """Recipe intensity, percent of the calibrated level (100 % = 1 sun)."""
        return float(self.get_recipe_param("Intensity"))

    @property
    def duration_s(self) -> float:
        """Recipe duration in seconds: a run ends by itself after it (SinusGUI stores ms)."""
        return float(self.get_recipe_param("Duration")) / 1000.0

    @duration_s.setter
    def duration_s(self, seconds: float) -> None:
        """Set the recipe duration; a running light is restarted with it (see :meth:`set_intensity_suns`)."""
        seconds = strict_range(seconds, self.duration_range_s)
        milliseconds = round(seconds * 1000)
        self._change_recipe("Duration", milliseconds)
        self._duration_ms = milliseconds

    def run_status(self) -> str:
        """SinusGUI's run status (``sStatus``, e.g. ``running``, ``finished``)."""
        return self._attribute(self.request("GetRunStatus"), "sStatus")

    # ------------------------------------------------------------------------- LightSource role
    def set_intensity_suns(self, suns: float) -> None:
        """Set the recipe intensity to ``suns`` × 100 %. SinusGUI applies recipe changes when a run
        starts, so a running light is cancelled, re-parametrised and started again."""
        suns = strict_range(suns, self.intensity_range_suns)
        percent = round(suns * 100.0, 3)
        self._change_recipe("Intensity", percent)
        self._intensity_percent = percent

    def _change_recipe(self, param: str, value: int | float) -> None:
        """Set a recipe parameter and re-activate the recipe; SinusGUI refuses ActivateRecipe during a run,
        so a running light is cancelled first and started again afterwards."""
        with self.lock:
            was_on = self.light_on
            self._measured = self._previous = None
            if was_on:
                self.close_shutter()
            self.set_recipe_param(param, value)
            self.activate_recipe()
            if was_on:
                self.open_shutter()

    def open_shutter(self) -> None:
        """Light on: start the active recipe (an LED simulator has no mechanical shutter). Idempotent: with
        the light already on and its run still in progress, nothing is sent but the status query
        (SinusGUI refuses StartRecipe during a run). A refused StartRecipe with a run in progress (the
        retry of a start whose reply was lost) counts as success; the run's ID is then unknown."""
        with self.lock:
            if self.light_on and self.run_status().strip().lower() == "running":
                return
            if not self._recipe_active:
                self.activate_recipe()
            try:
                reply = self.request("StartRecipe")
            except InstrumentError:
                if self.run_status().strip().lower() != "running":
                    raise
                log.info("%s: StartRecipe refused but a run is in progress: the light is on", self.name)
                self.run_id = ""
            else:
                self.run_id = reply.attributes.get("sRunID", "")
            self.light_on = True

    def close_shutter(self) -> None:
        """Light off: cancel the running recipe. With no run in progress SinusGUI answers -4001, which
        means the light is already off (not an error, not worth a warning)."""
        with self.lock:
            try:
                reply = self.request("CancelRecipe", accept=(self.nothing_to_cancel,))
            except InstrumentError:
                if self.run_status().strip().lower() == "running":
                    raise
                log.info("%s: CancelRecipe refused but no run is active", self.name)
            else:
                if reply.code == self.nothing_to_cancel:
                    log.debug("%s: no run in progress: the light was already off", self.name)
            self.light_on = False

    def measurement_run(self) -> str:
        """Run the recipe for :attr:`measurement_run_ms` and wait until SinusGUI has evaluated it; returns its
        run ID. The present run is cancelled first and, if the light was on, started again afterwards; the
        recipe's Duration is restored either way."""
        with self.lock:
            was_on = self.light_on
            self.close_shutter()
            if self._duration_ms is None:
                self._duration_ms = round(float(self.get_recipe_param("Duration")))
            self.set_recipe_param("Duration", self.measurement_run_ms)
            try:
                self.activate_recipe()
                run_id = self._attribute(self.request("StartRecipe"), "sRunID")
                wait_ms = self.measurement_run_ms + self.measurement_margin_ms
                self.request("WaitForRunFinished", fTimeout=wait_ms, sRunID=run_id)
                self.request("WaitForResultAvailable", fTimeout=wait_ms, sRunID=run_id)
            finally:
                self.set_recipe_param("Duration", self._duration_ms)
                self.activate_recipe()
                if was_on:
                    self.open_shutter()
            return run_id

    def read_irradiance_mW_cm2(self) -> float:
        """The calibrated irradiance (GetResult ``totalirradiance_300_1200``, W/m² → mW/cm²) of a
        :meth:`measurement_run`; 0 while the light is off (nothing is switched on to read it).

        A measurement interrupts the light and takes about a second. Readings are fresh measurements until
        two successive ones agree within :attr:`irradiance_settled_fraction` (the LEDs have warmed up); from
        then on, for :attr:`irradiance_max_age_s` and with the same recipe and intensity, that settled value
        is returned instead of interrupting the light again."""
        with self.lock:
            if not self.light_on:
                return 0.0
            if self._measured is not None:
                taken_s, recipe, value = self._measured
                if recipe == self.recipe and self.clock.now() - taken_s < self.irradiance_max_age_s:
                    return value
            run_id = self.measurement_run()
            reply = self.request("GetResult", sParam=self.irradiance_result, sRunID=run_id)
            value = self._number(reply, "sVal") / 10.0
            previous, self._previous = self._previous, (self.recipe, value)
            if previous is not None and previous[0] == self.recipe and \
                    abs(value - previous[1]) <= self.irradiance_settled_fraction * max(abs(value), 1e-9):
                self._measured = (self.clock.now(), self.recipe, value)
            return value

    def read_spectrum(self) -> Spectrum:
        """The spectrum of a :meth:`measurement_run` from the built-in spectrometer (GetDataSeries)."""
        with self.lock:
            run_id = self.measurement_run()
            reply = self.request("GetDataSeries", iStep=1, sDevice="LE", sCurveName="Irradiance-Wavelength",
                                 sAttributes="raw", sRunID=run_id)
        # SinusGUI spells the abscissa "Wavelenght"; accept the corrected spelling too.
        wavelength = reply.series.get("Wavelenght", reply.series.get("Wavelength"))
        irradiance = reply.series.get("Irradiance")
        if wavelength is None or irradiance is None or len(wavelength) != len(irradiance):
            raise InstrumentError(f"GetDataSeries returned no usable spectrum ({sorted(reply.series)})",
                                  instrument=self.name, address=self.address)
        return Spectrum(wavelength, irradiance, reply.units.get("Irradiance", ""))

    # ------------------------------------------------------------------------- Instrument role
    def identify(self) -> str:
        """WLRC has no identification query: probe the link (GetRunStatus) and describe the source."""
        self.run_status()
        return f"Wavelabs,SINUS-70,WLRC,recipe={self.recipe}"

    def settings_snapshot(self) -> dict[str, float | str | bool]:
        with self.lock:
            percent = self.intensity_percent
            return {
                "recipe": self.recipe,
                "intensity_percent": percent,
                "intensity_suns": percent / 100.0,
                "duration_s": self.duration_s,
                "light_on": self.light_on,
                "run_status": self.run_status(),
            }

    def safe_state(self) -> None:
        """Light off (cancel the recipe). Idempotent."""
        attempt_all(self.name, self.address, [("cancel recipe (light off)", self.close_shutter)])
