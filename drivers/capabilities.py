"""The capabilities of a driver's role (labctl.roles), from what the driver class declares about its model.

The station calls :func:`capabilities_of` for each instrument of a station file before anything is connected;
procedures validate against the result and never see the driver class. Every driver declares ``role`` (a key
of :data:`labctl.roles.ROLE_CAPABILITIES`) and the class-level limits its role needs (``voltage_range_V``,
``nplc_range``, ``frequency_range_Hz``, ``temperature_range_K``, ``intensity_range_suns``, ``channel_count``,
...); the conformance tests check that each driver does what its capabilities say on its mock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labctl.errors import StationError
from labctl.roles import (
    Capabilities,
    LCRMeterCapabilities,
    LightSourceCapabilities,
    SourceMeterCapabilities,
    SwitchCapabilities,
    TemperatureControllerCapabilities,
)


def _channels(driver_cls: Any) -> tuple[str, ...]:
    """The channel ids of a multi-channel instrument (pymeasure ChannelCreators), () for a single channel."""
    ids: list[str] = []
    for klass in driver_cls.__mro__:
        for member in vars(klass).values():
            for _channel_cls, channel_id in getattr(member, "pairs", ()):
                if str(channel_id) not in ids:
                    ids.append(str(channel_id))
    return tuple(ids)


def _channel_class(driver_cls: Any) -> Any:
    for klass in driver_cls.__mro__:
        for member in vars(klass).values():
            for channel_cls, _channel_id in getattr(member, "pairs", ()):
                return channel_cls
    return driver_cls


def _limits(owner: Any, name: str, default: tuple[float, float] | None = None) -> tuple[float, float]:
    value = getattr(owner, name, default)
    if value is None:
        raise StationError(f"driver {getattr(owner, '__name__', owner)} does not declare {name}")
    low, high = value
    return float(low), float(high)


def capabilities_of(driver_cls: Any, options: Mapping[str, Any] | None = None) -> Capabilities:
    """The capabilities of ``driver_cls``'s role; ``options``: the station's ``driver_options`` (a 7001's
    cards, a serial mux's channel count)."""
    role = getattr(driver_cls, "role", None)
    model = getattr(driver_cls, "default_name", driver_cls.__name__)
    options = dict(options or {})
    if role == "source_meter":
        channel_cls = _channel_class(driver_cls)
        timing = getattr(driver_cls, "min_point_period_s", None) or channel_cls.min_point_period_s
        return SourceMeterCapabilities(
            model=model,
            voltage_range_V=_limits(channel_cls, "voltage_range_V"),
            current_range_A=_limits(channel_cls, "current_range_A"),
            nplc_range=_limits(channel_cls, "nplc_range"),
            dwell_range_s=_limits(channel_cls, "dwell_range_s"),
            max_sweep_points=int(channel_cls.max_sweep_points),
            min_point_period=timing,
            channels=_channels(driver_cls),
        )
    if role == "lcr_meter":
        return LCRMeterCapabilities(
            model=model,
            frequency_range_Hz=_limits(driver_cls, "frequency_range_Hz"),
            ac_level_range_V=_limits(driver_cls, "ac_level_range_V"),
            dc_bias_range_V=_limits(driver_cls, "dc_bias_range_V"),
            max_transient_points=int(driver_cls.buffer_size),
            min_transient_interval_s=float(driver_cls.short_measurement_time_s),
        )
    if role == "temperature_controller":
        return TemperatureControllerCapabilities(
            model=model,
            temperature_range_K=_limits(driver_cls, "temperature_range_K"),
            ramp_rate_range_K_min=_limits(driver_cls, "ramp_rate_range_K_min"),
            heater_ranges=tuple(driver_cls.heater_range_names),
        )
    if role == "light_source":
        return LightSourceCapabilities(model=model, intensity_range_suns=_limits(driver_cls, "intensity_range_suns"))
    if role == "switch":
        count = options.get("channel_count")
        if count is None and hasattr(driver_cls, "channel_count_for"):
            count = driver_cls.channel_count_for(options)
        if count is None:
            count = driver_cls.channel_count
        return SwitchCapabilities(model=model, channel_count=int(count))
    raise StationError(f"driver {driver_cls.__name__} declares no role (role = {role!r}); drivers declare one of "
                       "source_meter, lcr_meter, temperature_controller, light_source, switch")

