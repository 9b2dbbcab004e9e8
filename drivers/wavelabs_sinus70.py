"""Wavelabs SINUS-70 LED solar simulator, remote-controlled with WLRC XML messages over TCP.

Protocol
--------
SinusGUI, the Wavelabs control software, accepts remote control ("WLRC") over a TCP socket (labctl stations
use port 55555 by default; the port is chosen in SinusGUI). Each message is one XML document on one line,
newline-terminated, in both directions::

    request  <WLRC><ActivateRecipe iSeq="3" sRecipe="AM1.5G"/></WLRC>
    reply    <WLRC><ActivateRecipe iSeq="3" iEC="0"/></WLRC>

- ``iSeq`` numbers the requests; the driver increments it per message and accepts only the reply that
  echoes it (a reply with an older number is the late answer to a retried request and is skipped);
- ``iEC`` is the error code (``iCode`` is accepted as a synonym): 0 is success, anything else raises
  :class:`~labctl.errors.InstrumentError` with the code and the reply's ``sError`` text;
- results come back as attributes: ``sRunID`` (StartRecipe), ``sVal`` (GetRecipeParam, GetResult),
  ``sStatus`` (GetRunStatus); GetDataSeries nests ``<DataSeries sName=".." sUnit="..">v;v;v</DataSeries>``.

Commands used (the set public lab code drives SinusGUI with: greyltc/centralcontrol ``wavelabs.py`` and the
IVLab Sinus70 driver; Wavelabs' own WLRC reference is not public, so those are the documents followed):
``ActivateRecipe sRecipe``; ``SetRecipeParam``/``GetRecipeParam sRecipe iStep sDevice sParam [sVal]``
(``sDevice="Light"``, ``sParam="Intensity"`` in percent, ``"Duration"`` in ms); ``StartRecipe``;
``CancelRecipe``; ``GetRunStatus``; ``GetResult sParam [sRunID]``;
``GetDataSeries iStep sDevice sCurveName sAttributes [sRunID]``.

Light model: an LED simulator has no mechanical shutter. :meth:`open_shutter` starts the active recipe
(the LEDs light up; with a run already in progress it does nothing), :meth:`close_shutter` cancels it (the
LEDs go dark). SinusGUI refuses ActivateRecipe and StartRecipe while a run is in progress, and recipe
changes apply when a run starts, so changing the intensity or duration of a lit source cancels the run,
changes the recipe and starts it again. The recipe's ``Duration`` must cover the measurement: a run ends by
itself when it elapses (see :attr:`duration_s`).

Coverage: recipe activation, intensity in suns (recipe parameter ``Intensity``, 100 % = 1 sun for a recipe
calibrated to AM1.5G), light on/off, run status, the calibrated irradiance read-back (``GetResult
totalirradiance_300_1200`` in W/m², converted to mW/cm²), the measured spectrum (``GetDataSeries
Irradiance-Wavelength``), recipe duration. Not covered: recipe editing beyond Intensity/Duration,
FreeFloat per-channel LED control, LED temperatures, ExitProgram. The meaning of error code -4001
(which lab code treats as harmless) is not documented publicly; it is logged, not raised.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
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

    #: Settable intensity, suns (recipe Intensity 0–120 %; SinusGUI rejects what the LED engine can't reach).
    intensity_range_suns = (0.0, 1.2)
    #: Recipe duration that can be set, seconds (Duration is stored in ms; capped at a 32-bit ms count).
    duration_range_s = (1.0, 2_147_483.0)
    default_port = 55555
    #: GetResult parameter holding the calibrated irradiance of a run, W/m².
    irradiance_result = "totalirradiance_300_1200"
    #: Error codes that lab code treats as harmless; logged, not raised.
    benign_codes = frozenset({-4001})
    #: How many replies to older sequence numbers are skipped before the link counts as out of step.
    max_stale_replies = 4

    def __init__(
        self,
        adapter: Adapter | str,
        name: str = "Wavelabs SINUS-70",
        *,
        recipe: str = "AM1.5G",
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

    # ------------------------------------------------------------------------- message layer
    def frame(self, command: str, **attributes: str | int | float) -> str:
        """The next request message: ``<WLRC><command iSeq="n" .../></WLRC>`` (increments iSeq)."""
        self._sequence += 1
        parts = [f'iSeq="{self._sequence}"'] + [f'{k}="{_xml_value(v)}"' for k, v in attributes.items()]
        return f"<WLRC><{command} {' '.join(parts)}/></WLRC>"

    def ask(self, command: str, query_delay: float | None = None) -> str:
        """Send one WLRC message, return its reply line; raise InstrumentError when iEC is not 0."""
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

    def _raise_for(self, reply: WLRCReply) -> None:
        if reply.code == 0:
            return
        if reply.code in self.benign_codes:
            log.warning("%s: %s answered code %d (%s)", self.name, reply.command, reply.code, reply.error)
            return
        raise InstrumentError(f"{reply.command} failed with error {reply.code}: {reply.error or 'no text'}",
                              instrument=self.name, address=self.address)

    def request(self, command: str, **attributes: str | int | float) -> WLRCReply:
        """Send ``command`` with ``attributes`` and return the parsed, error-checked reply."""
        with self.lock:
            return parse_reply(self.ask(self.frame(command, **attributes)))

    def check_errors(self) -> list[tuple[int, str]]:
        """WLRC has no error queue: every reply carries its own error code, checked in :meth:`ask`."""
        return []

    def _remember_setting(self, command: str) -> None:
        """Settings are replayed from the driver's own state (see :meth:`reapply_configuration`)."""

    def reapply_configuration(self) -> None:
        """After a reconnect: set the intensity again and re-activate the recipe (the light is not
        restarted; SinusGUI keeps or ends a run on its own). A run still in progress keeps its recipe:
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
        if (self._recipe_active or self._intensity_percent is not None) and not running:
            messages.append(self.frame("ActivateRecipe", sRecipe=self.recipe))
        for message in messages:
            self._raise_for(parse_reply(self._ask_once(message, None)))

    # ------------------------------------------------------------------------- recipe commands
    def activate_recipe(self, recipe: str | None = None) -> None:
        """Make ``recipe`` (default: the station's recipe) the one StartRecipe runs."""
        with self.lock:
            recipe = recipe or self.recipe
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
        self._change_recipe("Duration", round(seconds * 1000))

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
        retry of a start whose reply was lost) counts as success; the run's ID is then unknown and results
        are read from the latest run."""
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
        """Light off: cancel the running recipe. Cancelling when no run is active is not an error."""
        with self.lock:
            try:
                self.request("CancelRecipe")
            except InstrumentError:
                if self.run_status().strip().lower() == "running":
                    raise
                log.info("%s: CancelRecipe refused but no run is active", self.name)
            self.light_on = False

    def read_irradiance_mW_cm2(self) -> float:
        """Calibrated irradiance of the present run (GetResult, W/m² → mW/cm²); 0 while the light is off."""
        with self.lock:
            if not self.light_on:
                return 0.0
            attributes = {"sParam": self.irradiance_result}
            if self.run_id:
                attributes["sRunID"] = self.run_id
            value = self._attribute(self.request("GetResult", **attributes), "sVal")
            try:
                return float(value) / 10.0
            except ValueError as exc:
                raise InstrumentError(f"unreadable irradiance {value!r}", instrument=self.name,
                                      address=self.address) from exc

    def read_spectrum(self) -> Spectrum:
        """Spectrum of the present (or last) run from the built-in spectrometer (GetDataSeries)."""
        attributes: dict[str, str | int] = {
            "iStep": 1, "sDevice": "LE", "sCurveName": "Irradiance-Wavelength", "sAttributes": "raw"}
        if self.run_id:
            attributes["sRunID"] = self.run_id
        reply = self.request("GetDataSeries", **attributes)
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
