"""Buffered readings in one pass (dwell_at_voltage / dwell_at_current) and the charging current after a
voltage step (junction capacitance through Rs, the capacitance the LCR meter reads)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mock_instruments.device import PerovskiteCell
from mock_instruments.presets import preset

T = 298.15
EPS0, Q, K_B = 8.8541878128e-12, 1.602176634e-19, 8.617333262e-5
PLC_S = 1 / 60


def _reading_by_reading(cell: Any, times: np.ndarray, mode: str, value: float) -> np.ndarray:
    """What 60 separate readings give: advance to each instant, then read (J at V, or V at J)."""
    out, now = [], 0.0
    for t in times:
        if mode == "V":
            cell.advance(float(t) - now, value, 1.0, T)
            out.append(cell.current_density_mA_cm2(value, 1.0, T))
        else:
            cell.advance_at_current(float(t) - now, value, 1.0, T)
            out.append(cell.voltage_at_current_density(value, 1.0, T))
        now = float(t)
    return np.array(out)


@pytest.mark.parametrize(("name", "step_to"), [("wbg_ref", 1.05), ("fapbi3", 0.9), ("tandem", 1.9)])
def test_a_dwell_at_a_voltage_reads_what_reading_by_reading_gives(name: str, step_to: float) -> None:
    """After a step the ions relax (wbg_ref τ ≈ 3 s; fapbi3 ≈ 5 ms: many τ inside the dwell): 60 readings in
    one call equal 60 advance + read pairs, and the cells end in the same state."""
    one, many = preset(name), preset(name)
    for cell in (one, many):
        cell.advance(60.0, None, 1.0, T)
    times = PLC_S * np.arange(1, 61)
    dwell = one.dwell_at_voltage(times, step_to, 1.0, T)
    stepped = _reading_by_reading(many, times, "V", step_to)
    np.testing.assert_allclose(dwell, stepped, rtol=1e-7, atol=1e-9)
    assert abs(dwell[-1] - dwell[0]) > 1e-4  # the ions did move during the dwell
    assert one.current_density_mA_cm2(step_to, 1.0, T) == pytest.approx(stepped[-1], rel=1e-7)


@pytest.mark.parametrize("name", ["wbg_ref", "tandem"])
def test_a_dwell_at_a_current_reads_the_voltage_reading_by_reading_gives(name: str) -> None:
    one, many = preset(name), preset(name)
    for cell in (one, many):
        cell.advance(60.0, 0.8, 1.0, T)
    j = 12.0
    times = PLC_S * np.arange(1, 61) + 0.5 * PLC_S * np.arange(60) ** 1.5  # uneven spacing is fine too
    dwell = one.dwell_at_current(times, j, 1.0, T)
    stepped = _reading_by_reading(many, times, "J", j)
    np.testing.assert_allclose(dwell, stepped, atol=2e-4)
    assert dwell[-1] - dwell[0] > 1e-3  # the voltage rose as the ions followed the new operating point


def test_a_dwell_takes_far_fewer_operating_points_than_separate_readings(monkeypatch: pytest.MonkeyPatch
                                                                        ) -> None:
    """Work, not wall clock: each operating point is a J(V) or V(J) solve; a 60-reading dwell needs a few."""
    calls = {"n": 0}
    original = PerovskiteCell._operating_point

    def counting(self: PerovskiteCell, *args: Any) -> Any:
        calls["n"] += 1
        return original(self, *args)

    monkeypatch.setattr(PerovskiteCell, "_operating_point", counting)
    cell = preset("wbg_ref")
    cell.advance(60.0, 1.1, 1.0, T)
    calls["n"] = 0
    cell.dwell_at_voltage(PLC_S * np.arange(1, 61), 1.1, 1.0, T)
    assert calls["n"] <= 3
    with pytest.raises(ValueError, match="times_s"):
        cell.dwell_at_voltage([0.2, 0.1], 1.1, 1.0, T)


def depletion_capacitance_F_cm2(cell: PerovskiteCell, voltage_V: float) -> float:
    """ε·ε0/W with the Mott–Schottky width (capped at the absorber thickness), per cm²."""
    kt = K_B * T
    w = math.sqrt(2 * cell.eps_r * EPS0 * (cell.v_bi_V - voltage_V - kt) / (Q * cell.n_a_cm3 * 1e6))
    return cell.eps_r * EPS0 / min(w, cell.thickness_nm * 1e-9) * 1e-4


def test_a_voltage_step_charges_the_junction_capacitance_through_rs() -> None:
    """A dark step from −0.6 to −0.5 V (depletion: C from Mott–Schottky, G ≈ 1/Rsh): the extra current
    carries ∫C dV = C·ΔV into the cell and decays with τ = Rs·C/(1 + Rs·G) ≈ Rs·C, with the same C the LCR
    meter reads at 20 kHz, where traps and ions no longer follow."""
    cell = preset("wbg_ref")
    cell.advance(600.0, -0.6, 0.0, T)
    times = np.concatenate(([0.0], np.geomspace(1e-10, 1e-4, 400)))
    j = cell.dwell_at_voltage(times, -0.5, 0.0, T)
    j_dc = j[-1]
    charge_mC_cm2 = np.trapezoid(j - j_dc, times)
    c_mid = depletion_capacitance_F_cm2(cell, -0.55)
    assert -charge_mC_cm2 * 1e-3 == pytest.approx(c_mid * 0.1, rel=0.01)  # into the cell: negative current
    lcr_F_cm2 = cell.capacitance_F(-0.5, 2e4, T) / cell.area_cm2
    assert depletion_capacitance_F_cm2(cell, -0.5) == pytest.approx(lcr_F_cm2, rel=0.02)
    rs = cell.rs_ohm_cm2
    late = times > 5 * rs * c_mid
    slope = np.polyfit(times[late & (times < 30 * rs * c_mid)],
                       np.log(-(j - j_dc)[late & (times < 30 * rs * c_mid)]), 1)[0]
    assert -1 / slope == pytest.approx(rs * depletion_capacitance_F_cm2(cell, -0.5), rel=0.02)
    assert cell.charging_current_mA_cm2() == pytest.approx(0.0, abs=1e-30)  # gone by the end of the dwell


def test_charging_current_shows_in_very_fast_scans_only() -> None:
    """Staircase scans at 1e5 V/s read the charging current (capacitive hysteresis); at 1 V/s it is gone."""
    from mock_instruments.transient_scan import transient_scan

    cell = preset("wbg_5avai", burnin_fraction=0.0, longterm_rate_per_h=0.0)
    cell.advance(600.0, 1.0, 1.0, T)
    v = np.linspace(1.0, 0.9, 11)
    fast = transient_scan(cell.copy(), v, 1e5)
    slow = transient_scan(cell.copy(), v, 1.0)
    reference = cell.copy()
    dc = [reference.current_density_mA_cm2(float(x) + 1e-12, 1.0, T) for x in v]  # off the driven voltage
    assert np.all(fast[1:] > np.array(dc[1:]) + 1e-3)  # discharging while the voltage falls: extra current
    np.testing.assert_allclose(slow, dc, atol=0.02)
