"""Suspenders: conditions that put channels into their safe hold until the condition has stayed clear.

Modelled on bluesky's suspenders: each one reads one quantity, trips when it leaves its band (or cannot be
read: a sensor that does not answer is not a sensor that says all is well), and clears only after it has
been back in band for ``clear_for_s`` — a flickering lamp must not make the cells jump between tracking and
hold. The engine reads them every few seconds of the run's clock (see :mod:`labctl.runner.channels`).

A suspender affects every channel unless it is given ``channels`` (names) or ``samples_on`` (a predicate on
the channel, e.g. the channels under one light or on one stage).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labctl.runner.channels import ChannelSpec


class Suspender:
    """Base class: subclasses implement :meth:`read`, returning (in band, what was read)."""

    def __init__(self, name: str, *, clear_for_s: float = 60.0, channels: Iterable[str] | None = None,
                 samples_on: Callable[[ChannelSpec], bool] | None = None) -> None:
        if not clear_for_s >= 0:
            raise ValueError(f"clear_for_s must be >= 0, got {clear_for_s!r}")
        self.name = name
        self.key = f"suspender:{name}"
        self.clear_for_s = float(clear_for_s)
        self._channels = set(channels) if channels is not None else None
        self._samples_on = samples_on
        self.active = False
        self.reason = ""
        self._clear_since: float | None = None

    def read(self) -> tuple[bool, str]:
        raise NotImplementedError

    def affects(self, channel: ChannelSpec) -> bool:
        if self._channels is not None and channel.name not in self._channels:
            return False
        return self._samples_on is None or self._samples_on(channel)

    def update(self, now_s: float) -> str:
        """Read once: ``"tripped"`` when it just tripped, ``"cleared"`` when it just cleared, else ``""``."""
        try:
            in_band, what = self.read()
        except Exception as exc:
            in_band, what = False, f"cannot be read ({type(exc).__name__}: {exc})"
        if not in_band:
            self._clear_since = None
            self.reason = what
            if not self.active:
                self.active = True
                return "tripped"
            return ""
        if not self.active:
            return ""
        if self._clear_since is None:
            self._clear_since = now_s
        if now_s - self._clear_since >= self.clear_for_s:
            self.active = False
            self._clear_since = None
            return "cleared"
        return ""


class InBand(Suspender):
    """A reading that must stay within [low, high] (``unit`` for the messages)."""

    def __init__(self, name: str, read: Callable[[], float], low: float, high: float, unit: str = "",
                 **options: object) -> None:
        if not low < high:
            raise ValueError(f"{name}: the band needs low < high, got {low!r} … {high!r}")
        super().__init__(name, **options)  # type: ignore[arg-type]
        self._read = read
        self.low = float(low)
        self.high = float(high)
        self.unit = unit

    def read(self) -> tuple[bool, str]:
        value = float(self._read())
        unit = f" {self.unit}" if self.unit else ""
        ok = self.low <= value <= self.high
        return ok, f"{value:.4g}{unit} (band {self.low:g} … {self.high:g}{unit})"


class IrradianceInBand(InBand):
    """Irradiance from a reference cell, in mW/cm², within a band around the requested intensity."""

    def __init__(self, read_mW_cm2: Callable[[], float], low_mW_cm2: float, high_mW_cm2: float,
                 name: str = "irradiance", **options: object) -> None:
        super().__init__(name, read_mW_cm2, low_mW_cm2, high_mW_cm2, "mW/cm2", **options)


class TemperatureInBand(InBand):
    """A stage or hot-plate temperature, in kelvin, within a band around its setpoint."""

    def __init__(self, read_K: Callable[[], float], low_K: float, high_K: float, name: str = "temperature",
                 **options: object) -> None:
        super().__init__(name, read_K, low_K, high_K, "K", **options)


class DiskSpace(Suspender):
    """The disk that holds the data file must keep ``min_free_bytes`` free (so nothing recorded is lost)."""

    def __init__(self, path: Path, min_free_bytes: int = 1 << 30, name: str = "disk space",
                 **options: object) -> None:
        super().__init__(name, **options)  # type: ignore[arg-type]
        self.path = Path(path)
        self.min_free_bytes = int(min_free_bytes)

    def read(self) -> tuple[bool, str]:
        free = shutil.disk_usage(self.path).free
        return free >= self.min_free_bytes, (f"{free / 2**30:.2f} GiB free on the data disk "
                                             f"(needs {self.min_free_bytes / 2**30:.2f} GiB)")
