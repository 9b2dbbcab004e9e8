"""Suspenders trip when their reading leaves the band (or cannot be read) and clear only after the reading
has stayed in band for the clear time, so a flickering lamp does not toggle the cells."""

from __future__ import annotations

import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from labctl.runner.channels import ChannelSpec
from labctl.runner.suspenders import DiskSpace, IrradianceInBand, TemperatureInBand


def test_a_band_trips_at_once_and_clears_after_the_clear_time() -> None:
    readings = iter([100.0, 80.0, 95.0, 85.0, 95.0, 96.0, 97.0, 98.0])
    band = IrradianceInBand(lambda: next(readings), 90.0, 110.0, clear_for_s=20.0)
    changes = [band.update(t) for t in (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0)]
    # in band; out (trips); back in at 20 s; out again at 30 s (the clear time restarts); in from 40 s
    assert changes == ["", "tripped", "", "", "", "", "cleared", ""]
    assert not band.active
    assert band.reason == "85 mW/cm2 (band 90 … 110 mW/cm2)"  # the last reading out of band


def test_a_sensor_that_cannot_be_read_trips_the_suspender() -> None:
    def broken() -> float:
        raise TimeoutError("no reply")

    band = TemperatureInBand(broken, 335.0, 341.0, clear_for_s=0.0)
    assert band.update(0.0) == "tripped"
    assert "cannot be read" in band.reason and "no reply" in band.reason


def test_a_suspender_affects_the_channels_it_is_given() -> None:
    band = TemperatureInBand(lambda: 338.0, 335.0, 341.0, channels=["a"])
    on_light = TemperatureInBand(lambda: 338.0, 335.0, 341.0, samples_on=lambda spec: spec.sample.startswith("x"))
    assert band.affects(ChannelSpec("a", "a")) and not band.affects(ChannelSpec("b", "b"))
    assert on_light.affects(ChannelSpec("x1", "x1")) and not on_light.affects(ChannelSpec("y", "y"))


def test_a_band_needs_low_below_high() -> None:
    with pytest.raises(ValueError, match="low < high"):
        IrradianceInBand(lambda: 100.0, 110.0, 90.0)


def test_disk_space_trips_below_its_reserve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    usage = namedtuple("usage", "total used free")
    free = [10 * 2**30]
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100 * 2**30, 0, free[0]))
    disk = DiskSpace(tmp_path, min_free_bytes=2**30, clear_for_s=0.0)
    assert disk.update(0.0) == ""
    free[0] = 2**29
    assert disk.update(1.0) == "tripped"
    assert "0.50 GiB free" in disk.reason
    free[0] = 5 * 2**30
    assert disk.update(2.0) == "cleared"
