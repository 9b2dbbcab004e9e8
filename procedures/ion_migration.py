"""Measurement sequences for ion-migration and defect studies in a cryostat: TID transients, C(f)/G(f)
spectra for TAS, C–V profiles, and the temperature steps between them (SCIENCE.md, TID/TAS/C–V).

These are the building blocks of the ``tid_sweep``, ``tas_sweep`` and ``cv_profile`` procedures: plain
functions of role objects (:mod:`labctl.roles`) and a :class:`~labctl.clock.Clock`, with no runner, store or
file I/O, so a procedure stores each result as it comes and a test or bench script can drive them on the
simulated bench. Every wait goes through the clock (virtual time on the simulated bench). Bad parameters
raise :class:`~labctl.errors.ParameterError` naming the parameter, the value and the allowed range before
any instrument is touched.

- :func:`hold_present_temperature`: ramping off and the setpoint at the present reading, so that the
  first ramp starts from the stage's temperature and not from a stale working setpoint.
- :func:`settle_temperature`: ramp the controller's setpoint, wait until the reading stays within a
  tolerance for a window (``wait_until_stable``), then let the sample follow the sensor; a step that never
  stabilises returns ``stable=False`` (the caller decides: skip, measure anyway, stop).
- :func:`capture_tid`: the seed's protocol with the LCR meter's own DC bias: the pulse level for the pulse
  time, then the meter steps the bias back and captures C(t) in the same message (the dead time after the
  step is recorded), repeats averaged on one time axis.
- :func:`capture_tid_smu`: the same with the pulse from an SMU; the time axis counts from its output-off, so
  the meter's set-up before its trigger comes first (a longer dead time, recorded).
- :func:`capacitance_spectrum`: spot C–G readings over a frequency list at a DC bias, each the meter's own
  average of ``averages`` measurements (:func:`set_averaging`).
- :func:`plateau_frequency`: the centre of the flat part of C(f) (where TID and Mott–Schottky measure).
- :func:`cv_sweep`: spot C–G readings over a bias list, each after a settling time, forward then back.
- :func:`tid_sweep`, :func:`tas_sweep`: the above at each temperature of a list, yielding one point per
  temperature as soon as it is measured.
- :func:`tid_protocol_warnings`: a pulse below V_bi (the region is not refilled) or shorter than 3τ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from labctl.clock import Clock
from labctl.errors import ParameterError
from labctl.roles import LCRMeter, LightSource, SourceMeter, TemperatureController, TransientResult

ON_UNSTABLE = ("skip", "measure", "stop")
#: The pulse should exceed V_bi by this much for the forward bias to collapse the depletion region.
PULSE_MARGIN_V = 0.1
#: A pulse shorter than this many τ leaves the region partly unfilled (1 − e⁻³ = 95 %).
PULSE_TAUS = 3.0


class TransientLCRMeter(LCRMeter, Protocol):
    """An LCR meter whose transient capture can make the bias step itself (E4980A driver):
    ``capture_transient(duration_s, n_points, bias_V=...)`` steps the DC bias to ``bias_V`` and triggers in
    one message, ``time_s`` then counts from the step and ``dead_time_s`` is set."""

    def capture_transient(self, duration_s: float, n_points: int, *, bias_V: float | None = None
                          ) -> TransientResult: ...


def _check(name: str, value: float, low: float, high: float, unit: str = "") -> float:
    if not (isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high):
        raise ParameterError(f"{name} = {value!r}{' ' + unit if unit else ''} is outside the allowed range "
                             f"{low:g}–{high:g}{' ' + unit if unit else ''}")
    return float(value)


# ------------------------------------------------------------------------------------------ temperature
@dataclass(frozen=True)
class Settling:
    """How a temperature step is made: ramp rate, stability band and window, timeout, and the extra time the
    sample (on its plate, behind the sensor) gets after the sensor is stable."""

    ramp_K_min: float = 5.0
    tolerance_K: float = 0.1
    window_s: float = 60.0
    timeout_s: float = 1800.0
    sample_settle_s: float = 60.0

    def __post_init__(self) -> None:
        _check("ramp_K_min", self.ramp_K_min, 0.0, 100.0, "K/min")
        _check("tolerance_K", self.tolerance_K, 1e-3, 10.0, "K")
        _check("window_s", self.window_s, 0.0, 3600.0, "s")
        _check("timeout_s", self.timeout_s, 1.0, 86400.0, "s")
        _check("sample_settle_s", self.sample_settle_s, 0.0, 3600.0, "s")


@dataclass(frozen=True)
class TemperatureStep:
    setpoint_K: float
    stable: bool
    waited_s: float
    reading_K: float


def hold_present_temperature(controller: TemperatureController) -> float:
    """Ramping off and the setpoint at the present reading: a setpoint ramp starts from the controller's
    working setpoint (Lake Shore 336 ``RAMP``), which after power-up or another user's run may be anywhere;
    from here the first ramp starts at the stage's temperature. Returns that temperature (K)."""
    controller.set_ramp_rate_K_min(0.0)
    present = controller.read_temperature_K()
    controller.set_setpoint_K(present)
    return present


def settle_temperature(controller: TemperatureController, clock: Clock, setpoint_K: float,
                       settling: Settling = Settling()) -> TemperatureStep:
    """Ramp to ``setpoint_K`` and wait until stable (module docstring). Returns how it went; never raises
    for a temperature that does not stabilise (``stable=False`` after ``settling.timeout_s``)."""
    _check("setpoint_K", setpoint_K, 1.0, 1000.0, "K")
    start = clock.now()
    controller.set_ramp_rate_K_min(settling.ramp_K_min)
    controller.set_setpoint_K(setpoint_K)
    stable = controller.wait_until_stable(setpoint_K, settling.tolerance_K, settling.window_s, settling.timeout_s)
    if stable and settling.sample_settle_s:
        clock.sleep(settling.sample_settle_s)
    return TemperatureStep(setpoint_K=float(setpoint_K), stable=bool(stable), waited_s=clock.now() - start,
                           reading_K=controller.read_temperature_K())


# -------------------------------------------------------------------------------------------------- TID
@dataclass(frozen=True)
class TIDProtocol:
    """The seed's TID protocol (defaults): +1 V for 5 s by the LCR's DC bias, back to 0 V, C(t) for 10 s at
    10 kHz (the C(f) plateau), 201 points, repeats averaged. ``ac_level_V`` is the test signal (rms)."""

    pulse_V: float = 1.0
    pulse_s: float = 5.0
    rest_V: float = 0.0
    duration_s: float = 10.0
    n_points: int = 201
    repeats: int = 3
    frequency_Hz: float = 1e4
    ac_level_V: float = 0.05

    def __post_init__(self) -> None:
        _check("pulse_V", self.pulse_V, -40.0, 40.0, "V")
        _check("pulse_s", self.pulse_s, 0.0, 3600.0, "s")
        _check("rest_V", self.rest_V, -40.0, 40.0, "V")
        _check("duration_s", self.duration_s, 1e-3, 3600.0, "s")
        _check("n_points", self.n_points, 2, 201)
        _check("repeats", self.repeats, 1, 1000)
        _check("frequency_Hz", self.frequency_Hz, 20.0, 2e6, "Hz")
        _check("ac_level_V", self.ac_level_V, 1e-3, 20.0, "V")


@dataclass(frozen=True)
class TIDCapture:
    """An averaged transient: ``time_s`` from the bias step, C and G, and how it was taken."""

    time_s: np.ndarray
    capacitance_F: np.ndarray
    conductance_S: np.ndarray
    dead_time_s: float
    integration_s: float
    protocol: TIDProtocol
    repeats_done: int

    def attributes(self) -> dict[str, Any]:
        p = self.protocol
        return {"pulse_V": p.pulse_V, "pulse_s": p.pulse_s, "rest_V": p.rest_V, "frequency_Hz": p.frequency_Hz,
                "ac_level_V": p.ac_level_V, "repeats": self.repeats_done, "dead_time_s": self.dead_time_s,
                "integration_s": self.integration_s, "duration_s": p.duration_s}


def tid_protocol_warnings(protocol: TIDProtocol, *, v_bi_V: float | None = None,
                          tau_s: Sequence[float] = ()) -> list[str]:
    """Why a TID protocol may under-fill the depletion region: a pulse not above V_bi (+0.1 V), a pulse
    shorter than 3τ of a species (τ from a previous analysis), a window too short to see it relax (3τ)."""
    out = []
    if v_bi_V is not None and protocol.pulse_V < v_bi_V + PULSE_MARGIN_V:
        out.append(f"pulse_V = {protocol.pulse_V:g} V is not above V_bi = {v_bi_V:g} V by {PULSE_MARGIN_V:g} V: "
                   "the forward pulse does not collapse the depletion region, N_ion is underestimated")
    for tau in tau_s:
        if protocol.pulse_s < PULSE_TAUS * tau:
            out.append(f"pulse_s = {protocol.pulse_s:g} s is shorter than {PULSE_TAUS:g}τ (τ = {tau:.3g} s): "
                       f"the region is refilled to {-math.expm1(-protocol.pulse_s / tau):.0%}")
        if protocol.duration_s < PULSE_TAUS * tau:
            out.append(f"duration_s = {protocol.duration_s:g} s is shorter than {PULSE_TAUS:g}τ (τ = {tau:.3g} s)")
    return out


def capture_tid(lcr: TransientLCRMeter, clock: Clock, protocol: TIDProtocol = TIDProtocol()) -> TIDCapture:
    """Pulse, step back and capture, ``protocol.repeats`` times, averaged. The capture window is also the rest at
    ``rest_V`` before the next pulse: make it ≥ 5τ of the slowest species."""
    lcr.set_frequency(protocol.frequency_Hz)
    lcr.set_ac_level(protocol.ac_level_V)
    captures: list[TIDCapture] = []
    for _ in range(protocol.repeats):
        lcr.set_dc_bias(protocol.pulse_V)
        lcr.dc_bias_on()
        clock.sleep(protocol.pulse_s)
        r = lcr.capture_transient(protocol.duration_s, protocol.n_points, bias_V=protocol.rest_V)
        captures.append(TIDCapture(np.asarray(r.time_s, dtype=float), np.asarray(r.capacitance_F, dtype=float),
                                   np.asarray(r.conductance_S, dtype=float), float(r.dead_time_s), 0.0, protocol, 1))
    return _averaged(lcr, captures, protocol)


def capture_tid_smu(lcr: LCRMeter, smu: SourceMeter, clock: Clock, protocol: TIDProtocol = TIDProtocol(), *,
                    compliance_A: float = 0.01) -> TIDCapture:
    """The same protocol with the pulse from an SMU across the cell: the meter holds the cell at ``rest_V``
    through its own DC bias, the SMU sources ``pulse_V`` for ``pulse_s`` (it drives the cell over the meter's
    bias) and switches its output off (high impedance), then the meter is set up and captures. ``time_s``
    counts from the SMU's output-off (host-timed: the driver reports when it triggered, ``last_capture``
    ``trigger_clock_s``; a meter that does not is taken to trigger at once) and ``dead_time_s`` is the first
    point's time: the meter's set-up — a dozen commands, ≈ 0.1 s for an E4980A on the simulated link — comes
    first, so transients faster than that are lost (the analysis lists them as outside the window). Use it
    where the meter's bias cannot make the pulse (a level above its range, a current-limited pulse)."""
    lcr.set_frequency(protocol.frequency_Hz)
    lcr.set_ac_level(protocol.ac_level_V)
    smu.set_compliance_current(compliance_A)
    captures: list[TIDCapture] = []
    for _ in range(protocol.repeats):
        lcr.set_dc_bias(protocol.rest_V)
        lcr.dc_bias_on()
        smu.source_voltage(protocol.pulse_V)
        smu.output_on()
        clock.sleep(protocol.pulse_s)
        smu.output_off()
        off_s = clock.now()
        result = lcr.capture_transient(protocol.duration_s, protocol.n_points)
        # the meter's set-up between the SMU's output-off and its trigger (tens of ms over a real link)
        trigger_s = float(getattr(lcr, "last_capture", {}).get("trigger_clock_s", math.nan))
        t = np.asarray(result.time_s, dtype=float) + (trigger_s - off_s if math.isfinite(trigger_s) else 0.0)
        captures.append(TIDCapture(t, np.asarray(result.capacitance_F, dtype=float),
                                   np.asarray(result.conductance_S, dtype=float), float(t[0]), 0.0, protocol, 1))
    return _averaged(lcr, captures, protocol)


def _averaged(lcr: LCRMeter, captures: Sequence[TIDCapture], protocol: TIDProtocol) -> TIDCapture:
    """The captures averaged on the first one's time axis (later ones interpolated onto it if the host-timed
    second sweep of a capture started a little differently)."""
    first = captures[0]
    t = first.time_s
    c = np.mean([_on_axis(t, r.time_s, r.capacitance_F) for r in captures], axis=0)
    g = np.mean([_on_axis(t, r.time_s, r.conductance_S) for r in captures], axis=0)
    # back-to-back points integrate over their spacing; the driver may say what it used
    integration = float(getattr(lcr, "last_capture", {}).get("measurement_time_s", t[1] - t[0]))
    return TIDCapture(time_s=t, capacitance_F=c, conductance_S=g, dead_time_s=first.dead_time_s,
                      integration_s=integration, protocol=protocol, repeats_done=len(captures))


def _on_axis(axis: np.ndarray, t: Any, y: Any) -> np.ndarray:
    t, y = np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    if t.shape == axis.shape and np.allclose(t, axis, rtol=0, atol=1e-9):
        return y
    return np.interp(axis, t, y)


# ------------------------------------------------------------------------------------------ C(f), C(V)
@dataclass(frozen=True)
class Readings:
    """Spot C–G readings over a swept quantity (frequency or bias)."""

    x: np.ndarray
    capacitance_F: np.ndarray
    conductance_S: np.ndarray


def has_averaging(lcr_class: Any) -> bool:
    """Whether an LCR meter driver sets its own averaging rate (E4980A: ``:APER <mode>,<n>``)."""
    return hasattr(lcr_class, "aperture")


def set_averaging(lcr: LCRMeter, averages: int) -> tuple[str, int] | None:
    """The meter's averaging rate for spot readings, its measurement-time mode kept; returns the previous
    (mode, averages) to restore, None when nothing was changed (``averages`` = 1 on a meter without the
    control). The meter's noise falls as 1/√averages."""
    _check("averages", averages, 1, 256)
    if not has_averaging(type(lcr)):
        if averages == 1:
            return None
        raise ParameterError(f"averages = {averages} but {type(lcr).__name__} has no averaging control; allowed: 1")
    meter: Any = lcr
    mode, previous = meter.aperture
    meter.aperture = (mode, int(averages))
    return str(mode), int(previous)


def capacitance_spectrum(lcr: LCRMeter, frequencies_Hz: Sequence[float] | np.ndarray, *, bias_V: float = 0.0,
                         ac_level_V: float = 0.03, averages: int = 1) -> Readings:
    """C and G at each frequency (spot readings, parallel model) with the DC bias on at ``bias_V``, each the
    meter's average of ``averages`` measurements (the previous averaging is restored afterwards)."""
    freqs = [_check("frequency_Hz", float(f), 20.0, 2e6, "Hz") for f in frequencies_Hz]
    _check("bias_V", bias_V, -40.0, 40.0, "V")
    _check("ac_level_V", ac_level_V, 1e-3, 20.0, "V")
    _check("averages", averages, 1, 256)
    lcr.set_ac_level(ac_level_V)
    lcr.set_dc_bias(bias_V)  # on, also at 0 V: the cell is held at the bias, not left open
    lcr.dc_bias_on()
    previous = set_averaging(lcr, averages)
    c, g = [], []
    try:
        for f in freqs:
            lcr.set_frequency(f)
            ci, gi = lcr.measure()
            c.append(ci)
            g.append(gi)
    finally:
        if previous is not None:
            meter: Any = lcr
            meter.aperture = previous
    return Readings(np.asarray(freqs), np.asarray(c), np.asarray(g))


def cv_sweep(lcr: LCRMeter, clock: Clock, voltages_V: Sequence[float], *, frequency_Hz: float = 1e4,
             ac_level_V: float = 0.03, settle_s: float = 2.0, both_directions: bool = True) -> Readings:
    """C and G at each bias after ``settle_s`` there (the ions follow the bias when settle_s ≫ τ), the list
    forward then backward when ``both_directions``; the bias is switched off at the end."""
    volts = [_check("voltage_V", float(v), -40.0, 40.0, "V") for v in voltages_V]
    _check("settle_s", settle_s, 0.0, 3600.0, "s")
    _check("ac_level_V", ac_level_V, 1e-3, 20.0, "V")
    sweep = volts + volts[::-1] if both_directions else volts
    lcr.set_frequency(_check("frequency_Hz", frequency_Hz, 20.0, 2e6, "Hz"))
    lcr.set_ac_level(ac_level_V)
    c, g = [], []
    lcr.set_dc_bias(sweep[0])
    lcr.dc_bias_on()
    try:
        for v in sweep:
            lcr.set_dc_bias(v)
            clock.sleep(settle_s)
            ci, gi = lcr.measure()
            c.append(ci)
            g.append(gi)
    finally:
        lcr.set_dc_bias(0.0)
        lcr.dc_bias_off()
    return Readings(np.asarray(sweep), np.asarray(c), np.asarray(g))


# ------------------------------------------------------------------------------------------------ sweeps
@dataclass(frozen=True)
class SweepPoint:
    """One temperature of a sweep: the step, what was measured (None if skipped), the controller's readings
    around the measurement (mean and spread) and any warning."""

    step: TemperatureStep
    result: TIDCapture | Readings | None
    temperature_mean_K: float
    temperature_spread_K: float
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _light(light: LightSource | None, suns: float) -> None:
    if light is None:
        return
    if suns > 0:
        light.set_intensity_suns(suns)
        light.open_shutter()
    else:
        light.close_shutter()


def _checked_temperatures(temperatures_K: Sequence[float], on_unstable: str) -> list[float]:
    if on_unstable not in ON_UNSTABLE:
        raise ParameterError(f"on_unstable = {on_unstable!r}; allowed: {', '.join(ON_UNSTABLE)}")
    temps = [_check("temperature_K", float(t), 1.0, 1000.0, "K") for t in temperatures_K]
    if not temps:
        raise ParameterError("temperatures_K is empty; give at least one temperature")
    return temps


def unstable_message(step: TemperatureStep, settling: Settling) -> str:
    """What a step that did not stabilise says (events, warnings, block attributes)."""
    return (f"not stable at {step.setpoint_K:g} K ± {settling.tolerance_K:g} K within {settling.timeout_s:g} s "
            f"(last reading {step.reading_K:.3f} K)")


def measure_between_readings(controller: TemperatureController, measure: Callable[[], Any]
                             ) -> tuple[Any, float, float]:
    """``measure()`` with a temperature reading before and after: (result, mean K, spread K)."""
    before = controller.read_temperature_K()
    result = measure()
    after = controller.read_temperature_K()
    return result, 0.5 * (before + after), abs(after - before)


def _sweep(controller: TemperatureController, clock: Clock, temps: list[float], settling: Settling,
           on_unstable: str, measure: Callable[[], Any]) -> Iterator[SweepPoint]:
    hold_present_temperature(controller)
    for setpoint in temps:
        step = settle_temperature(controller, clock, setpoint, settling)
        if not step.stable and on_unstable != "measure":
            yield SweepPoint(step, None, step.reading_K, 0.0, (unstable_message(step, settling),))
            if on_unstable == "stop":
                return
            continue
        result, mean, spread = measure_between_readings(controller, measure)
        warnings = () if step.stable else (f"measured at {setpoint:g} K although not stable",)
        yield SweepPoint(step, result, mean, spread, warnings)


def tid_sweep(lcr: TransientLCRMeter, controller: TemperatureController, clock: Clock,
              temperatures_K: Sequence[float] = tuple(range(300, 199, -10)), *,
              protocol: TIDProtocol = TIDProtocol(), settling: Settling = Settling(), light: LightSource | None = None,
              suns: float = 0.0, on_unstable: str = "skip") -> Iterator[SweepPoint]:
    """A TID transient at each temperature (default 300 → 200 K in 10 K steps), dark or under ``suns``.
    Parameters are checked before any instrument is touched."""
    temps = _checked_temperatures(temperatures_K, on_unstable)
    _check("suns", suns, 0.0, 10.0, "suns")
    if suns and light is None:
        raise ParameterError(f"suns = {suns:g} needs a light source")
    _light(light, suns)
    try:
        yield from _sweep(controller, clock, temps, settling, on_unstable, lambda: capture_tid(lcr, clock, protocol))
    finally:
        if light is not None and suns > 0:
            light.close_shutter()


def tas_sweep(lcr: LCRMeter, controller: TemperatureController, clock: Clock, temperatures_K: Sequence[float],
              *, points_per_decade: int = 10, f_min_Hz: float = 20.0, f_max_Hz: float = 2e6, bias_V: float = 0.0,
              ac_level_V: float = 0.03, settling: Settling = Settling(), on_unstable: str = "skip"
              ) -> Iterator[SweepPoint]:
    """C(f) and G(f) from ``f_min_Hz`` to ``f_max_Hz`` (log-spaced, ``points_per_decade``) at each temperature,
    in the dark at ``bias_V``."""
    temps = _checked_temperatures(temperatures_K, on_unstable)
    _check("points_per_decade", points_per_decade, 1, 100)
    _check("bias_V", bias_V, -40.0, 40.0, "V")
    _check("ac_level_V", ac_level_V, 1e-3, 20.0, "V")
    _check("f_min_Hz", f_min_Hz, 20.0, 2e6, "Hz")
    _check("f_max_Hz", f_max_Hz, f_min_Hz, 2e6, "Hz")
    freqs = log_frequencies(f_min_Hz, f_max_Hz, points_per_decade)
    yield from _sweep(controller, clock, temps, settling, on_unstable,
                      lambda: capacitance_spectrum(lcr, freqs, bias_V=bias_V, ac_level_V=ac_level_V))


# ------------------------------------------------------------------------------------ frequency choice
def log_frequencies(f_min_Hz: float, f_max_Hz: float, points_per_decade: int) -> np.ndarray:
    """Log-spaced frequencies from ``f_min_Hz`` to ``f_max_Hz``, both included, ``points_per_decade``."""
    decades = math.log10(f_max_Hz / f_min_Hz)
    return np.geomspace(f_min_Hz, f_max_Hz, max(2, round(decades * points_per_decade) + 1))


#: |d ln C / d ln f| below this is "flat": a trap or ionic step of ΔC/C = 5 % spread over a decade has 0.05.
PLATEAU_MAX_SLOPE = 0.01


def plateau_frequency(frequency_Hz: Sequence[float] | np.ndarray, capacitance_F: Sequence[float] | np.ndarray,
                      max_slope: float = PLATEAU_MAX_SLOPE) -> tuple[float, tuple[float, float]]:
    """The centre (geometric mean) of the widest run of frequencies over which C(f) is flat —
    |d ln C/d ln f| ≤ ``max_slope`` between neighbours — and that run's (low, high) ends. This is where a
    TID or Mott–Schottky measurement sees the depletion capacitance: above the ionic and trap responses,
    below the series-resistance roll-off. Raises ParameterError when no two neighbouring points are flat."""
    f = np.asarray(frequency_Hz, dtype=float)
    c = np.asarray(capacitance_F, dtype=float)
    order = np.argsort(f)
    f, c = f[order], c[order]
    ok = np.isfinite(c) & (c > 0)
    f, c = f[ok], c[ok]
    if f.size < 3:
        raise ParameterError(f"a C–f pre-sweep needs at least 3 valid points, got {f.size}")
    slope = np.abs(np.diff(np.log(c)) / np.diff(np.log(f)))
    flat = slope <= max_slope
    best: tuple[float, int, int] | None = None  # (width in decades, first, last point index)
    start = None
    for i, is_flat in enumerate([*flat, False]):
        if is_flat and start is None:
            start = i
        elif not is_flat and start is not None:
            width = math.log10(f[i] / f[start])
            if best is None or width > best[0]:
                best = (width, start, i)
            start = None
    if best is None:
        raise ParameterError(f"C(f) has no plateau (|d ln C/d ln f| ≤ {max_slope:g} between two neighbouring "
                             f"points) between {f[0]:g} and {f[-1]:g} Hz; give frequency_Hz instead")
    low, high = float(f[best[1]]), float(f[best[2]])
    return math.sqrt(low * high), (low, high)
