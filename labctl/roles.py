"""Hardware contracts: what procedures may call.

Procedures program against these roles, never against a concrete driver, so one J–V procedure runs on a
Keithley 2400, a 2450, one channel of a 2636B or a Keysight B2902A, and on the simulated bench. A driver
satisfies a role structurally (``typing.Protocol``); a multi-channel instrument hands out one role object
per channel. Units are SI unless the name says otherwise; temperatures in kelvin.

Sign conventions: a source-measure unit reports the current flowing *out of* its HI terminal into the
device as positive. A solar cell under light at 0 V therefore reads a *negative* current; procedures turn it
into a positive photocurrent density when they store ``current_density_mA_cm2``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SweepResult:
    """Arrays from an instrument-timed sweep, one entry per point.

    ``time_s`` is the instrument's own timestamp of each reading, counted from the first reading.
    ``achieved_rate_V_s`` is the scan rate the instrument really produced (|ΔV| / Δt over the sweep).
    """

    time_s: FloatArray
    voltage_V: FloatArray
    current_A: FloatArray
    achieved_rate_V_s: float = float("nan")
    settings: dict[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class TransientResult:
    """A capacitance transient captured by the LCR meter: C and G at ``time_s``.

    When the capture made the bias step itself, ``time_s`` counts from the step and ``dead_time_s`` is the
    time from the step to the first point (the part of the transient no point sees); otherwise ``time_s``
    counts from the trigger and ``dead_time_s`` is NaN (the step, if any, happened before and is unknown).
    """

    time_s: FloatArray
    capacitance_F: FloatArray
    conductance_S: FloatArray
    frequency_Hz: float = float("nan")
    dead_time_s: float = float("nan")


# ------------------------------------------------------------------------------------ capabilities
# What each role can do, known before anything is connected: the station hands these out from the driver a
# station file names, so procedures validate their parameters against them without touching an instrument or
# importing a driver.


def _within(value: float, limits: tuple[float, float]) -> bool:
    return limits[0] <= value <= limits[1]


@dataclass(frozen=True)
class SourceMeterCapabilities:
    """Limits of one source-measure model (each of its channels has the same).

    ``min_point_period`` is the model's shortest sweep point period, ``(nplc, line_frequency_Hz) -> s``
    (integration plus the model's fixed per-point cost; the 2400 integrates three times with auto-zero).
    ``timestamps``: sweeps and dwells return the instrument's own time of each reading.
    """

    model: str
    voltage_range_V: tuple[float, float]
    current_range_A: tuple[float, float]
    nplc_range: tuple[float, float]
    dwell_range_s: tuple[float, float]
    max_sweep_points: int
    min_point_period: Callable[[float, float], float]
    channels: tuple[str, ...] = ()
    timestamps: bool = True

    def min_point_period_s(self, nplc: float, line_frequency_Hz: float = 50.0) -> float:
        """The shortest point period at this NPLC (50 Hz mains, the longest integration, by default)."""
        return float(self.min_point_period(nplc, line_frequency_Hz))

    @property
    def max_current_A(self) -> float:
        return max(abs(x) for x in self.current_range_A)

    def accepts_nplc(self, nplc: float) -> bool:
        return _within(nplc, self.nplc_range)


@dataclass(frozen=True)
class LCRMeterCapabilities:
    """Limits of an LCR meter; ``max_transient_points`` per capture, ``min_transient_interval_s`` between
    its points (the fastest measurement time)."""

    model: str
    frequency_range_Hz: tuple[float, float]
    ac_level_range_V: tuple[float, float]
    dc_bias_range_V: tuple[float, float]
    max_transient_points: int
    min_transient_interval_s: float
    timestamps: bool = False


@dataclass(frozen=True)
class TemperatureControllerCapabilities:
    """Limits of a temperature controller's loop (the sensor's curve may narrow the temperature range)."""

    model: str
    temperature_range_K: tuple[float, float]
    ramp_rate_range_K_min: tuple[float, float]
    heater_ranges: tuple[str, ...]


@dataclass(frozen=True)
class LightSourceCapabilities:
    """A light source's intensity range and whether it reports an irradiance of its own."""

    model: str
    intensity_range_suns: tuple[float, float]
    reads_irradiance: bool = True


@dataclass(frozen=True)
class SwitchCapabilities:
    """A multiplexer's pixel channels (1 … ``channel_count``)."""

    model: str
    channel_count: int


Capabilities = (SourceMeterCapabilities | LCRMeterCapabilities | TemperatureControllerCapabilities
                | LightSourceCapabilities | SwitchCapabilities)

#: The role names a driver may declare (its ``role`` class attribute) and their capability types.
ROLE_CAPABILITIES: dict[str, type] = {
    "source_meter": SourceMeterCapabilities,
    "lcr_meter": LCRMeterCapabilities,
    "temperature_controller": TemperatureControllerCapabilities,
    "light_source": LightSourceCapabilities,
    "switch": SwitchCapabilities,
}


@runtime_checkable
class Instrument(Protocol):
    """What every role object has: an identity and a safe state."""

    def identify(self) -> str:
        """The instrument's identification string (``*IDN?`` or the model's equivalent)."""
        ...

    def settings_snapshot(self) -> dict[str, float | str | bool]:
        """The settings that matter for the data (ranges, NPLC, frequency, ...), stored with each run."""
        ...

    def safe_state(self) -> None:
        """Outputs off, bias off, shutter closed, heater to a safe setpoint.

        Idempotent and usable on a half-configured instrument: every step is tried even when an earlier
        one fails; afterwards an :class:`~labctl.errors.InstrumentError` lists the steps that failed."""
        ...


@runtime_checkable
class SourceMeter(Instrument, Protocol):
    """One source-measure channel."""

    def source_voltage(self, voltage_V: float) -> None:
        """Switch to voltage sourcing (if needed) and set the level, in volts."""
        ...

    def source_current(self, current_A: float) -> None:
        """Switch to current sourcing (if needed) and set the level, in amperes."""
        ...

    def set_compliance_current(self, current_A: float) -> None:
        """Current limit while sourcing voltage, in amperes (> 0)."""
        ...

    def set_compliance_voltage(self, voltage_V: float) -> None:
        """Voltage limit while sourcing current, in volts (> 0)."""
        ...

    def set_nplc(self, nplc: float) -> None:
        """Integration time in power-line cycles."""
        ...

    def output_on(self) -> None: ...

    def output_off(self) -> None: ...

    def measure(self) -> tuple[float, float]:
        """One reading: (voltage_V, current_A)."""
        ...

    def sweep_voltage(self, voltages_V: FloatArray, dwell_s: float) -> SweepResult:
        """Step through ``voltages_V`` with one point every ``dwell_s`` (the point period: step / scan
        rate), measuring at the end of each point, instrument-timed where the model can, and return the
        arrays. Models whose trigger model has a source delay rather than a timer set the delay to the
        period minus the integration time, so the scan rate is the requested one; the rate achieved is
        returned. ``time_s`` counts from the first reading. The output stays on at the last level."""
        ...

    def dwell_voltage(self, voltage_V: float, n_points: int, interval_s: float) -> SweepResult:
        """Source ``voltage_V`` and take ``n_points`` readings ``interval_s`` apart, timed by the instrument
        (one command, many readings into its own buffer); reading k ends at most the model's per-point
        overhead (a few ms) before (k + 1)·``interval_s`` after the run starts. ``time_s`` is the
        instrument's timestamps from the first reading; ``achieved_rate_V_s`` is NaN. The output stays on at
        the level afterwards. ``n_points`` above the model's buffer, or ``interval_s`` below its minimum
        point period at the present NPLC, raise :class:`~labctl.errors.ParameterError` before any setting."""
        ...

    def dwell_current(self, current_A: float, n_points: int, interval_s: float) -> SweepResult:
        """Source ``current_A`` (galvanostatic) and take ``n_points`` readings of the voltage ``interval_s``
        apart, as :meth:`dwell_voltage` does."""
        ...


@runtime_checkable
class LCRMeter(Instrument, Protocol):
    """An LCR meter used for C–f, C–V, TAS and capacitance transients (TID)."""

    def set_frequency(self, frequency_Hz: float) -> None: ...

    def set_ac_level(self, voltage_V: float) -> None:
        """AC test signal amplitude (rms), in volts."""
        ...

    def set_dc_bias(self, voltage_V: float) -> None:
        """Internal DC bias level, in volts (does not switch the bias on)."""
        ...

    def dc_bias_on(self) -> None: ...

    def dc_bias_off(self) -> None: ...

    def measure(self) -> tuple[float, float]:
        """One parallel-model reading: (capacitance_F, conductance_S)."""
        ...

    def capture_transient(self, duration_s: float, n_points: int, *, bias_V: float | None = None
                          ) -> TransientResult:
        """Record C(t) at the present frequency for ``duration_s``, as fast as the instrument's buffered
        measurement allows, at most ``n_points`` samples. With ``bias_V`` the instrument steps its DC bias to
        that level as close to the first point as it can (a TID transient): ``time_s`` then counts from the
        step and ``dead_time_s`` says how long after it the first point came."""
        ...


@runtime_checkable
class TemperatureController(Instrument, Protocol):
    """A cryostat or hot-stage controller, one control loop."""

    def read_temperature_K(self) -> float: ...

    def set_setpoint_K(self, temperature_K: float) -> None: ...

    def set_ramp_rate_K_min(self, rate_K_min: float) -> None:
        """Setpoint ramp rate in K/min; 0 disables ramping."""
        ...

    def set_heater_range(self, heater_range: str) -> None:
        """Heater range by name: ``"off"``, ``"low"``, ``"medium"``, ``"high"``."""
        ...

    def heater_off(self) -> None: ...

    def wait_until_stable(
        self, setpoint_K: float, tolerance_K: float, window_s: float, timeout_s: float
    ) -> bool:
        """Block until the reading stays within ``tolerance_K`` of ``setpoint_K`` for ``window_s``;
        False if ``timeout_s`` passes first."""
        ...


@runtime_checkable
class LightSource(Instrument, Protocol):
    """A solar simulator (lamp or LED) with a shutter or an on/off switch."""

    def set_intensity_suns(self, suns: float) -> None: ...

    def open_shutter(self) -> None: ...

    def close_shutter(self) -> None: ...

    def read_irradiance_mW_cm2(self) -> float:
        """The calibrated reference cell's reading, in mW/cm² (100 mW/cm² = 1 sun AM1.5G)."""
        ...


@runtime_checkable
class Switch(Instrument, Protocol):
    """A multiplexer that connects one pixel of a substrate to the measuring instrument."""

    def select_channel(self, channel: int) -> None:
        """Close the path to ``channel`` (1-based) and open every other path."""
        ...

    def open_all(self) -> None: ...


@runtime_checkable
class ReferenceCell(Protocol):
    """A calibrated reference cell: the irradiance a light interlock or a suspender reads, measured by a
    sensor rather than taken from the lamp's setpoint."""

    name: str

    def read_irradiance_mW_cm2(self) -> float:
        """Irradiance in mW/cm² (100 mW/cm² = 1 sun AM1.5G), from the cell's short-circuit current and its
        calibration."""
        ...
