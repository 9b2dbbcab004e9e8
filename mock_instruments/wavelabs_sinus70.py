"""Wavelabs SINUS-70 LED solar simulator, remote-controlled through SinusGUI's WLRC XML interface.

Wavelabs' WLRC reference is not public. This mock follows the public lab code that drives SinusGUI,
greyltc/centralcontrol (``wavelabs.py``, ``wavelabs_relay_server.py``), which shows:

- **Connection role.** SinusGUI is the TCP *client*: it connects to the control PC, which listens (port
  3334), or to a relay that listens for it (3334) and for controllers (3335). This mock therefore dials out:
  in-process, :meth:`MockWavelabsSinus70.dial_in` connects when labctl listens at the address SinusGUI is set
  to (option ``dial``, default ``127.0.0.1:3334``); under ``labctl sim serve`` the server connects to that
  address and keeps trying every second while nothing listens, and again after a session ends.
- **Framing.** A request is one document ``<WLRC><Command iSeq="n" attribute="..."/></WLRC>`` sent without a
  newline (a message ends at ``</WLRC>``; a newline after it is tolerated); each reply is one document on one
  line. The reply echoes the element name and ``iSeq`` and carries ``iEC`` (0 = success) and, on failure,
  ``sError``. Attribute names carry their type (``i`` integer, ``f`` float, ``s`` string).
- **Results after the run.** centralcontrol reads ``GetResult``/``GetDataSeries`` for a run only after
  ``WaitForRunFinished`` and ``WaitForResultAvailable``: results exist once a run has ended and SinusGUI has
  evaluated it (:data:`RESULT_DELAY_S` later); before that they are refused with code 7.
- **Cancelling nothing** answers -4001, which centralcontrol counts as success.

Commands (a recipe has one step, ``iStep="1"``, device ``sDevice="Light"``):

- ``ActivateRecipe sRecipe``: the recipe StartRecipe runs (refused while a run is in progress);
- ``SetRecipeParam``/``GetRecipeParam sRecipe iStep sDevice sParam [sVal]``: ``Intensity`` in percent of the
  calibrated level (0–120), ``Duration`` in ms (100 to 2^31−1); a change applies from the next run;
- ``StartRecipe [sAutomationID]`` -> ``sRunID``: the LEDs light up for the recipe's Duration;
- ``CancelRecipe``: the LEDs go dark; with no run in progress: code -4001;
- ``GetRunStatus`` -> ``sStatus`` ``idle`` (no run yet), ``running`` or ``finished``;
- ``WaitForRunFinished``/``WaitForResultAvailable fTimeout [sRunID]`` (ms): the reply comes when the run has
  ended / its results exist (the time is charged to the clock), or with code 9 after the timeout;
- ``GetResult sParam [sRunID]`` -> ``sVal`` of a finished, evaluated run (without sRunID: the latest):
  ``totalirradiance_300_1200`` (W/m², the calibrated reference reading of the world's light at the end of
  the run), ``Temperature_LedBox_Vis`` and ``Temperature_LedBox_IR`` (°C);
- ``GetDataSeries iStep sDevice="LE" sCurveName="Irradiance-Wavelength" sAttributes [sRunID]``: nested
  ``<DataSeries sName="Wavelenght" sUnit="nm" sType="x">`` (SinusGUI's spelling) and ``sName="Irradiance"``
  (W/m^2/nm), an AM1.5G-like spectrum 300–1200 nm whose integral is the irradiance result;
- ``ExitProgram``: SinusGUI closes: the session drops and it connects no more.

Errors (simulated codes, since the real numbering is not public): 1 unknown command, 2 malformed request
(no ``<WLRC>`` around exactly one command, missing or mistyped attribute), 3 unknown recipe / none
activated, 4 unknown step, device, parameter or curve, 5 value out of range, 6 run in progress, 7 no such
run / no result (yet), 8 light engine fault (lamp failure), 9 wait timed out, 10 not simulated
(``StartFreeFloat``), -4001 nothing to cancel. A message that is not well-formed XML gets no reply (SinusGUI
keeps waiting for the end of the document). Unknown extra attributes are ignored.

Physics: the mock drives the world's light named by its ``light`` option (default: its own name), creating
it if missing with LED-like warm-up. An LED engine has no shutter: the light's shutter stays open and the
lamp switch is the LEDs (on during a run). The LEDs' warm-up is thermal: a short dark gap between two runs
costs only the warm-up lost while they cooled (same time constant), not a fresh warm-up. Lamp failure
(``faults={"lamp_failure": True}``) darkens the LEDs and makes StartRecipe fail with code 8. Time charged:
10 ms per message, 150 ms to start a run, 50 ms for a data series; a run ends by a world event at its
Duration.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from xml.sax.saxutils import quoteattr

import numpy as np

from mock_instruments.base import MockConnection, MockInstrument

MESSAGE_S = 0.01
START_S = 0.15
SERIES_S = 0.05
MAX_DURATION_MS = 2**31 - 1
MAX_RUNS_KEPT = 1000
DEFAULT_DURATION_MS = 2_147_483_000  # a recipe set up for continuous illumination (~24.8 days)
INTENSITY_RANGE = (0.0, 120.0)
DURATION_RANGE_MS = (100, MAX_DURATION_MS)
LED_LIGHT: dict[str, Any] = {"warmup_tau_s": 2.0, "warmup_start_fraction": 0.97}
AMBIENT_C = 25.0
E_UNKNOWN, E_MALFORMED, E_RECIPE, E_PARAM, E_RANGE, E_BUSY, E_NO_RUN, E_FAULT, E_TIMEOUT, E_NOT_SIMULATED = (
    range(1, 11))
E_NOTHING_TO_CANCEL = -4001
RESULTS = ("totalirradiance_300_1200", "Temperature_LedBox_Vis", "Temperature_LedBox_IR")
#: How long after a run ends SinusGUI has evaluated it (its results become available), s.
RESULT_DELAY_S = 0.2
#: Where SinusGUI connects by default (the control PC listening on WLRC's usual port).
DEFAULT_DIAL = "127.0.0.1:3334"
#: How long the simulated SinusGUI waits between connection attempts (real seconds, under ``sim serve``).
REDIAL_S = 1.0
WAVELENGTH_NM = np.arange(300.0, 1201.0, 1.0)


def am15g_like_W_m2_nm(wavelength_nm: np.ndarray, total_W_m2: float) -> np.ndarray:
    """A smooth AM1.5G-like spectral irradiance (a 5778 K sun, UV cut-off, O2/H2O bands) whose integral over
    ``wavelength_nm`` is ``total_W_m2``."""
    lam = np.asarray(wavelength_nm, dtype=float) * 1e-9
    planck = 1.0 / (lam**5 * np.expm1(0.014388 / (lam * 5778.0)))
    uv = 1.0 / (1.0 + np.exp(-(wavelength_nm - 340.0) / 12.0))
    bands = np.ones_like(lam)
    for centre, width, depth in ((760.0, 4.0, 0.6), (820.0, 12.0, 0.15), (940.0, 25.0, 0.7),
                                 (1130.0, 30.0, 0.8)):
        bands = bands * (1.0 - depth * np.exp(-0.5 * ((wavelength_nm - centre) / width) ** 2))
    shape = planck * uv * bands
    area = float(np.sum(0.5 * (shape[1:] + shape[:-1]) * np.diff(wavelength_nm)))
    return np.asarray(shape * (total_W_m2 / area if area > 0 else 0.0), dtype=float)


class WlrcError(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


@dataclass
class Recipe:
    intensity_percent: float = 100.0
    duration_ms: int = DEFAULT_DURATION_MS


@dataclass
class Run:
    run_id: str
    intensity_percent: float
    start_s: float
    end_s: float
    event: Any = None
    active: bool = True
    ended_s: float = math.nan
    irradiance_mW_cm2: float = 0.0  # the reference reading when the run ended
    led_heat_C: float = 0.0

    @property
    def result_s(self) -> float:
        """When SinusGUI has evaluated the run (inf while it runs)."""
        return math.inf if self.active else self.ended_s + RESULT_DELAY_S


class MockWavelabsSinus70(MockInstrument):
    """The simulated SINUS-70 + SinusGUI (options: ``recipes`` {name: {"Intensity": %, "Duration": ms}},
    ``dial`` (where SinusGUI connects, HOST:PORT, default 127.0.0.1:3334), ``light``, and the base options)."""

    #: The light a station without a [sim.lights] entry for this instrument gets.
    LIGHT_DEFAULTS = LED_LIGHT

    model = "wavelabs_sinus70"
    #: SinusGUI connects to labctl, not the reverse (see :func:`drivers.transport.open_sim`).
    dials_in = True
    _COMMANDS: ClassVar[dict[str, str]] = {
        "ActivateRecipe": "_activate", "SetRecipeParam": "_set_param", "GetRecipeParam": "_get_param",
        "StartRecipe": "_start", "CancelRecipe": "_cancel", "GetRunStatus": "_status",
        "GetResult": "_result", "GetDataSeries": "_series", "WaitForRunFinished": "_wait_finished",
        "WaitForResultAvailable": "_wait_result", "ExitProgram": "_exit", "StartFreeFloat": "_free_float",
    }

    def split_messages(self, pending: bytes) -> tuple[list[bytes], bytes]:
        """SinusGUI ends a message at ``</WLRC>``: clients written for it send no newline after it."""
        messages: list[bytes] = []
        while True:
            end_tag, newline = pending.find(b"</WLRC>"), pending.find(b"\n")
            if end_tag < 0 and newline < 0:
                return messages, pending
            if end_tag >= 0 and (newline < 0 or end_tag < newline):
                cut = end_tag + len(b"</WLRC>")
                messages.append(pending[:cut])
                pending = pending[cut:].removeprefix(b"\r\n").removeprefix(b"\n")
            else:
                messages.append(pending[:newline])
                pending = pending[newline + 1:]

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        options.setdefault("light", name)
        recipes = options.pop("recipes", None) or {"AM1.5G": {}}
        self.dial_target = _host_port(str(options.pop("dial", DEFAULT_DIAL)))
        light_name = str(options["light"])
        if light_name not in world.lights:
            world.add_light(light_name, **LED_LIGHT)
        super().__init__(world, name, **options)
        self.light = world.light(self.light_name)
        self.light.set_shutter(True)  # an LED engine has no shutter: the LEDs are the switch
        self.light.switch_lamp(False)
        self.recipes = {str(k): Recipe(float(v.get("Intensity", 100.0)),
                                       int(v.get("Duration", DEFAULT_DURATION_MS)))
                        for k, v in recipes.items()}
        self.active_recipe: str | None = None
        self.run: Run | None = None
        self.runs: dict[str, Run] = {}
        self.run_count = 0
        self.exited = False
        self._dark_since_s: float | None = None  # when the LEDs last went dark (their warm-up memory)

    # ----------------------------------------------------------------------------- sessions
    def connect(self, timeout_s: float | None = None) -> MockConnection:
        """A session (SinusGUI's side of a connection it made); refused once SinusGUI has exited."""
        if self.exited:
            raise ConnectionRefusedError(f"{self.name}: SinusGUI is not running")
        return super().connect(timeout_s)

    def dial_in(self, listen: str, timeout_s: float | None = None) -> MockConnection | None:
        """SinusGUI connecting to a program that listens at ``listen`` (HOST:PORT): a session if SinusGUI is
        running and set to dial that address, else None (nothing connects there)."""
        if self.exited or self.faults.drop_permanent or _host_port(listen) != self.dial_target:
            return None
        self.world.clock.sleep(MESSAGE_S)  # SinusGUI notices the listener on its next attempt
        return super().connect(timeout_s)

    def is_query(self, message: str) -> bool:
        return bool(message.strip())  # every WLRC message is answered

    def process(self, message: str) -> str | None:
        if self.exited:
            raise ConnectionResetError(f"{self.name}: SinusGUI has exited")
        return super().process(message)

    # ----------------------------------------------------------------------------- messages
    def handle(self, message: str) -> str | None:
        self.world.clock.sleep(MESSAGE_S)
        self.world.sync()
        try:
            root = ET.fromstring(message.strip())
        except ET.ParseError:
            return None
        if root.tag != "WLRC" or len(root) != 1:
            tag = root[0].tag if root.tag == "WLRC" and len(root) else root.tag
            return reply(tag, None, E_MALFORMED, "expected <WLRC> around exactly one command")
        element = root[0]
        try:
            seq = _int(element, "iSeq")
        except WlrcError as exc:
            return reply(element.tag, None, exc.code, exc.text)
        method = self._COMMANDS.get(element.tag)
        if method is None:
            return reply(element.tag, seq, E_UNKNOWN, f"unknown command {element.tag}")
        try:
            attributes, body = getattr(self, method)(element)
        except WlrcError as exc:
            return reply(element.tag, seq, exc.code, exc.text)
        return reply(element.tag, seq, 0, "", attributes, body)

    # ----------------------------------------------------------------------------- recipes
    def _recipe(self, element: ET.Element) -> tuple[str, Recipe]:
        name = _str(element, "sRecipe")
        if name not in self.recipes:
            raise WlrcError(E_RECIPE, f"recipe {name} not found")
        return name, self.recipes[name]

    def _param(self, element: ET.Element) -> tuple[Recipe, str]:
        _, recipe = self._recipe(element)
        step = _int(element, "iStep")
        if step != 1:
            raise WlrcError(E_PARAM, f"recipe has no step {step}")
        device = _str(element, "sDevice")
        if device != "Light":
            raise WlrcError(E_PARAM, f"recipe step has no device {device}")
        param = _str(element, "sParam")
        if param not in ("Intensity", "Duration"):
            raise WlrcError(E_PARAM, f"device Light has no parameter {param}")
        return recipe, param

    def _activate(self, element: ET.Element) -> tuple[dict[str, str], str]:
        name, _ = self._recipe(element)
        self._idle()
        self.active_recipe = name
        return {}, ""

    def _set_param(self, element: ET.Element) -> tuple[dict[str, str], str]:
        recipe, param = self._param(element)
        value = _float(element, "sVal")
        low, high = INTENSITY_RANGE if param == "Intensity" else DURATION_RANGE_MS
        if not low <= value <= high:
            raise WlrcError(E_RANGE, f"{param} {value:g} outside [{low:g}, {high:g}]")
        if param == "Intensity":
            recipe.intensity_percent = value
        else:
            recipe.duration_ms = round(value)
        return {}, ""

    def _get_param(self, element: ET.Element) -> tuple[dict[str, str], str]:
        recipe, param = self._param(element)
        value = f"{recipe.intensity_percent:g}" if param == "Intensity" else str(recipe.duration_ms)
        return {"sVal": value}, ""

    # ----------------------------------------------------------------------------- runs
    def _idle(self) -> None:
        if self.run is not None and self.run.active:
            raise WlrcError(E_BUSY, f"run {self.run.run_id} in progress")

    def _start(self, element: ET.Element) -> tuple[dict[str, str], str]:
        if self.active_recipe is None:
            raise WlrcError(E_RECIPE, "no recipe activated")
        self._idle()
        if self.light.failed:
            raise WlrcError(E_FAULT, "light engine fault: LEDs do not respond")
        recipe = self.recipes[self.active_recipe]
        suns = recipe.intensity_percent / 100.0
        if suns > self.light.max_suns:
            raise WlrcError(E_RANGE, f"intensity {recipe.intensity_percent:g} % beyond the light engine")
        self.world.clock.sleep(START_S)
        self.world.sync()
        now = self.world.time_s
        stamp = datetime.fromtimestamp(now, UTC)
        self.run_count += 1
        run = Run(f"{stamp:%Y%m%d_%H%M%S}_{self.run_count:04d}", recipe.intensity_percent, now,
                  now + recipe.duration_ms / 1000.0)
        self.light.set_intensity_suns(suns)
        self._light_up(now)
        run.event = self.world.schedule(run.end_s, lambda t: self._finish(run, t))
        self.run = self.runs[run.run_id] = run
        while len(self.runs) > MAX_RUNS_KEPT:  # SinusGUI's result list is finite too
            del self.runs[next(iter(self.runs))]
        return {"sRunID": run.run_id}, ""

    def _finish(self, run: Run, t_s: float) -> None:
        if not run.active:
            return
        run.irradiance_mW_cm2 = self.light.reference_mW_cm2()
        run.led_heat_C = self._led_heat_C(run, t_s)
        run.active, run.ended_s = False, t_s
        self.light.switch_lamp(False)
        self._dark_since_s = t_s

    def _light_up(self, now: float) -> None:
        """Switch the LEDs on, keeping the warm-up they still have from a run that ended a moment ago.

        The warm-up deficit (1 − fraction of full output) grows back towards its cold value with the warm-up
        time constant while the LEDs are dark, so a gap of a few messages between two runs costs almost
        nothing, while an engine left dark for minutes starts cold again."""
        light = self.light
        memory = None
        if self._dark_since_s is not None and light.warmup_tau_s > 0 and light.warmup_start_fraction < 1:
            cold = 1.0 - light.warmup_start_fraction
            deficit_then = 1.0 - light.warmup_fraction(self._dark_since_s)
            dark_s = max(0.0, now - self._dark_since_s)
            deficit = cold - (cold - deficit_then) * math.exp(-dark_s / light.warmup_tau_s)
            memory = -light.warmup_tau_s * math.log(max(deficit, 1e-300) / cold)
        light.switch_lamp(True, warm_since_s=None if memory is None else now - memory)

    def _cancel(self, element: ET.Element) -> tuple[dict[str, str], str]:
        run = self.run
        if run is None or not run.active:
            raise WlrcError(E_NOTHING_TO_CANCEL, "no run in progress")
        self.world.cancel(run.event)
        self._finish(run, self.world.time_s)
        return {}, ""

    def _status(self, element: ET.Element) -> tuple[dict[str, str], str]:
        status = "idle" if self.run is None else "running" if self.run.active else "finished"
        return {"sStatus": status}, ""

    def _run_for(self, element: ET.Element) -> Run:
        run_id = element.get("sRunID")
        run = self.run if run_id is None else self.runs.get(run_id)
        if run is None:
            raise WlrcError(E_NO_RUN, "no result available" if run_id is None else f"no run {run_id}")
        return run

    def _evaluated_run(self, element: ET.Element) -> Run:
        """The run whose results are asked for; refused until SinusGUI has evaluated it."""
        run = self._run_for(element)
        if self.world.time_s < run.result_s:
            state = "still running" if run.active else "not evaluated yet"
            raise WlrcError(E_NO_RUN, f"no result for run {run.run_id}: {state} (WaitForResultAvailable first)")
        return run

    def _led_heat_C(self, run: Run, t_s: float) -> float:
        if not run.active:
            return run.led_heat_C * math.exp(-(t_s - run.ended_s) / 300.0)
        return 12.0 * run.intensity_percent / 100.0 * (1.0 - math.exp(-(t_s - run.start_s) / 300.0))

    def _result(self, element: ET.Element) -> tuple[dict[str, str], str]:
        param = _str(element, "sParam")
        if param not in RESULTS:
            raise WlrcError(E_PARAM, f"no result {param}")
        run = self._evaluated_run(element)
        if param == "totalirradiance_300_1200":
            return {"sVal": f"{10.0 * run.irradiance_mW_cm2:.2f}"}, ""
        heat = self._led_heat_C(run, self.world.time_s) * (0.8 if param.endswith("IR") else 1.0)
        return {"sVal": f"{AMBIENT_C + heat:.2f}"}, ""

    def _series(self, element: ET.Element) -> tuple[dict[str, str], str]:
        step, device, curve = _int(element, "iStep"), _str(element, "sDevice"), _str(element, "sCurveName")
        _str(element, "sAttributes")
        if step != 1 or device != "LE" or curve != "Irradiance-Wavelength":
            raise WlrcError(E_PARAM, f"no curve {curve} of device {device} in step {step}")
        run = self._evaluated_run(element)
        self.world.clock.sleep(SERIES_S)
        irradiance = am15g_like_W_m2_nm(WAVELENGTH_NM, 10.0 * run.irradiance_mW_cm2)
        x = ";".join(f"{v:g}" for v in WAVELENGTH_NM)
        y = ";".join(f"{v:.5g}" for v in irradiance)
        body = (f'<DataSeries sName="Wavelenght" sUnit="nm" sType="x">{x}</DataSeries>'
                f'<DataSeries sName="Irradiance" sUnit="W/m^2/nm" sType="y">{y}</DataSeries>')
        return {}, body

    def _wait_finished(self, element: ET.Element) -> tuple[dict[str, str], str]:
        """WaitForRunFinished: until the run (given or latest) has ended, at most fTimeout ms."""
        return self._wait(element, lambda run: run.end_s if run.active else run.ended_s, "still running")

    def _wait_result(self, element: ET.Element) -> tuple[dict[str, str], str]:
        """WaitForResultAvailable: until SinusGUI has evaluated the run, at most fTimeout ms."""
        return self._wait(element, lambda run: run.end_s + RESULT_DELAY_S if run.active else run.result_s,
                          "has no result")

    def _wait(self, element: ET.Element, ready_s: Any, what: str) -> tuple[dict[str, str], str]:
        timeout_s = _float(element, "fTimeout") / 1000.0
        if timeout_s < 0:
            raise WlrcError(E_RANGE, "fTimeout must be >= 0")
        run = self._run_for(element) if element.get("sRunID") is not None else self.run
        if run is None:
            return {}, ""
        wait_s = ready_s(run) - self.world.time_s
        if wait_s > 0:
            self._let_time_pass(min(wait_s, timeout_s))
        if self.world.time_s < ready_s(run) - 1e-9:
            raise WlrcError(E_TIMEOUT, f"run {run.run_id} {what} after {timeout_s * 1000:g} ms")
        return {}, ""

    def _let_time_pass(self, seconds: float) -> None:
        clock = self.world.clock
        target = clock.now() + max(0.0, seconds)
        clock.sleep(max(0.0, seconds))
        self.world.advance_to(max(target, clock.now()))

    def _exit(self, element: ET.Element) -> tuple[dict[str, str], str]:
        if self.run is not None and self.run.active:
            self.world.cancel(self.run.event)
            self._finish(self.run, self.world.time_s)
        self.exited = True
        return {}, ""

    def _free_float(self, element: ET.Element) -> tuple[dict[str, str], str]:
        raise WlrcError(E_NOT_SIMULATED, "StartFreeFloat (per-channel LED control) is not simulated")


# --------------------------------------------------------------------------------------- helpers
def reply(tag: str, seq: int | None, code: int, error: str = "", attributes: dict[str, str] | None = None,
          body: str = "") -> str:
    """One WLRC reply line: ``<WLRC><tag iSeq=".." iEC=".." [sError=".."] ...[/]>[body</tag>]</WLRC>``."""
    parts = ([] if seq is None else [f'iSeq="{seq}"']) + [f'iEC="{code}"']
    if error:
        parts.append(f"sError={quoteattr(error)}")
    parts.extend(f"{key}={quoteattr(value)}" for key, value in (attributes or {}).items())
    head = f"<{tag} {' '.join(parts)}"
    return f"<WLRC>{head}>{body}</{tag}></WLRC>" if body else f"<WLRC>{head}/></WLRC>"


def _host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as (host, port), ``localhost`` as 127.0.0.1, so two spellings of one address compare."""
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"dial = {text!r} must be HOST:PORT, e.g. {DEFAULT_DIAL!r}")
    host = host.strip("[]")
    return ("127.0.0.1" if host == "localhost" else host), int(port)


def _str(element: ET.Element, key: str) -> str:
    value = element.get(key)
    if value is None:
        raise WlrcError(E_MALFORMED, f"{element.tag} needs attribute {key}")
    return value


def _int(element: ET.Element, key: str) -> int:
    text = _str(element, key).strip()
    try:
        return int(text)
    except ValueError:
        raise WlrcError(E_MALFORMED, f"attribute {key} must be an integer, got {text!r}") from None


def _float(element: ET.Element, key: str) -> float:
    text = _str(element, key).strip()
    try:
        value = float(text)
    except ValueError:
        raise WlrcError(E_MALFORMED, f"attribute {key} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise WlrcError(E_MALFORMED, f"attribute {key} must be finite, got {text!r}")
    return value
