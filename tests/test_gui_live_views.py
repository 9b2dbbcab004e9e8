"""The live pane's other views: normalised PCE, temperature and irradiance logs, and the TID Arrhenius plot
growing as transients arrive (fitted from the run file)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from labctl.clock import VirtualClock
from labctl.gui.live_pane import NORMALISED, LivePane
from labctl.store import RunWriter

T0 = 1.8e9
HOUR_S = 3600.0


def test_normalised_pce_divides_each_channel_by_its_pce0(qtbot) -> None:
    pane = LivePane()
    qtbot.addWidget(pane)
    pane.start_run("i1", "mppt", None)
    t = T0 + np.arange(0.0, 40 * HOUR_S, 60.0)
    for name, pce0 in (("a", 20.0), ("b", 10.0)):
        pce = pce0 * (1 - 0.005 * (t - T0) / HOUR_S)  # both lose 0.5 %/h of their start
        pane._rows({f"mppt_{name}": {"time_s": t, "pce_pct": pce}})
        pane.dashboard.tiles[name].update_metrics()
    pane.mppt_quantity.setCurrentText(NORMALISED)
    pane.mppt.redraw()
    for name in ("a", "b"):
        _, y = pane.mppt.drawn(name)
        assert y.max() == pytest.approx(1.0, abs=2e-3) and y.min() == pytest.approx(0.80, abs=2e-3)  # 40 h at 0.5 %/h
    assert pane.mppt.plot.getPlotItem().getAxis("left").labelText == "PCE / PCE₀"
    pane.mppt_quantity.setCurrentIndex(0)
    pane.mppt.redraw()
    assert pane.mppt.drawn("a")[1].max() == pytest.approx(20.0, abs=0.05)


def test_temperature_and_irradiance_logs_are_drawn_against_hours(qtbot) -> None:
    pane = LivePane()
    qtbot.addWidget(pane)
    pane.start_run("i1", "mppt", None)
    t = T0 + np.arange(0.0, 5 * HOUR_S, 30.0)
    pane._rows({"environment": {"time_s": t, "irradiance_mW_cm2": np.full(t.size, 99.5),
                                "temperature_K": 338.15 + 0.1 * np.sin(t / 600.0), "light_on": np.ones(t.size)}})
    pane.temperature.redraw()
    pane.irradiance.redraw()
    x, y = pane.temperature.drawn("environment")
    assert x[-1] == pytest.approx(5.0, abs=0.01) and y.max() == pytest.approx(338.25, abs=1e-3)
    assert pane.irradiance.drawn("environment")[1].min() == pytest.approx(99.5)


def test_the_arrhenius_plot_grows_with_each_fitted_transient(qtbot, tmp_path: Path) -> None:
    # One anion with Ea 0.30 eV, τ ∝ T·exp(Ea/kT): the points must lie on ln(T/τ) = c − Ea/(kT).
    k_eV = 8.617333262e-5
    time_s = np.geomspace(1e-3, 20.0, 400)
    path = tmp_path / "tid.h5"
    taus, curves = {}, {}
    with RunWriter.create(path, procedure="tid", parameters={}, clock=VirtualClock(T0)) as writer:
        for i, temperature_K in enumerate((300.0, 270.0, 240.0)):
            tau = 0.02 * (temperature_K / 300.0) * math.exp(0.30 / k_eV * (1 / temperature_K - 1 / 300.0))
            taus[temperature_K] = tau
            c = curves[i] = 1e-8 * np.sqrt(1 + 0.05 * np.exp(-time_s / tau))
            block = writer.create_block(f"tid_{i:02d}", {"time_s": "s", "capacitance_F": "F"},
                                        {"temperature_K": temperature_K, "integration_s": 0.0})
            block.append_columns(time_s=time_s, capacitance_F=c)
    pane = LivePane()
    qtbot.addWidget(pane)
    pane.start_run("i1", "tid", str(path))
    for i in range(3):  # the rows as the engine relays them; temperature and fit come from the file
        pane._rows({f"tid_{i:02d}": {"time_s": time_s, "capacitance_F": curves[i]}})
    qtbot.waitUntil(lambda: len(pane.tid.points) == 3, timeout=15_000)
    points = sorted(p for block in pane.tid.points.values() for p in block)
    assert all(species == "anion" for _, _, species in points)
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    slope = np.polyfit(x / 1000.0, y, 1)[0]  # d ln(T/τ) / d(1/T) = −Ea/k
    assert -slope * k_eV == pytest.approx(0.30, rel=0.02)
    for temperature_K, tau in taus.items():
        assert any(abs(px - 1000 / temperature_K) < 1e-9 and py == pytest.approx(math.log(temperature_K / tau),
                                                                               abs=0.03) for px, py, _ in points)

