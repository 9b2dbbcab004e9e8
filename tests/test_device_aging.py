"""Aging under light, heat and bias: the seed MPPT retentions, burn-in shape, dark recovery, Arrhenius
acceleration and halide segregation above ~20 % Br."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mock_instruments import degradation as deg
from mock_instruments.presets import preset

K_B = 8.617333262e-5


def mpp(cell, suns: float = 1.0, temp: float = 298.15) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(Pmax in mW/cm², Vmpp) of the steady-state curve (what a settled MPP tracker holds)."""
    voc = cell.steady_voc_V(suns, temp)
    v = np.linspace(0.6 * voc, voc, 241)
    p = v * cell.steady_state_jv(v, suns, temp)
    i = int(np.argmax(p))
    v2 = np.linspace(v[max(i - 1, 0)], v[min(i + 1, v.size - 1)], 41)
    p2 = v2 * cell.steady_state_jv(v2, suns, temp)
    k = int(np.argmax(p2))
    return float(p2[k]), float(v2[k])


def mppt_retention(cell, hours: float, step_h: float = 8.0, temp: float = 298.15  # type: ignore[no-untyped-def]
                   ) -> list[tuple[float, float]]:
    """Continuous 1 sun at the (re-tracked) MPP; returns (t_h, P/P0)."""
    p0, _ = mpp(cell, 1.0, temp)
    out, t = [(0.0, 1.0)], 0.0
    while t < hours - 1e-9:
        dt = min(step_h, hours - t)
        cell.advance(dt * 3600.0, mpp(cell, 1.0, temp)[1], 1.0, temp)
        t += dt
        out.append((t, mpp(cell, 1.0, temp)[0] / p0))
    return out


@pytest.mark.parametrize(("name", "hours", "low", "high"), [
    ("wbg_ref", 400.0, 0.30, 0.50),  # lost more than half
    ("wbg_5avai", 600.0, 0.864 - 0.03, 0.864 + 0.03),
    ("tandem", 800.0, 0.873 - 0.03, 0.873 + 0.03),
])
def test_seed_mppt_retention(name: str, hours: float, low: float, high: float) -> None:
    final = mppt_retention(preset(name), hours, step_h=20.0)[-1][1]
    assert low <= final <= high, (name, final)


def test_burn_in_then_slow_decay() -> None:
    tr = dict(mppt_retention(preset("wbg_5avai"), 600.0, step_h=10.0))
    early_rate = (1.0 - tr[20.0]) / 20.0
    late_rate = (tr[400.0] - tr[600.0]) / 200.0
    assert early_rate > 4 * late_rate > 0


def test_reversible_part_recovers_in_the_dark() -> None:
    cell = preset("wbg_ref")
    p0 = mpp(cell)[0]
    cell.advance(100 * 3600.0, mpp(cell)[1], 1.0, 298.15)
    d_lit = cell.damage()
    p_lit = mpp(cell)[0] / p0
    cell.advance(100 * 3600.0, 0.0, 0.0, 298.15)  # 100 h dark at short circuit ≫ recovery time
    p_dark = mpp(cell)[0] / p0
    assert p_dark > p_lit + 0.01
    # closed form: the reversible pool has decayed; what remains is the irreversible part (+ dark stress)
    irreversible = (1 - cell.reversible_fraction) * deg.damage_shape(cell, cell._deg.dose_h)
    assert cell.damage() == pytest.approx(irreversible, abs=2e-3)
    assert cell.damage() < d_lit


def test_heat_accelerates_aging_with_arrhenius_factor() -> None:
    cold, hot = preset("wbg_5avai"), preset("wbg_5avai")
    for cell, temp in ((cold, 298.15), (hot, 338.15)):
        cell.advance(50 * 3600.0, cell._vmpp_ref, 1.0, temp)
    factor = math.exp(-cold.degradation_ea_eV / K_B * (1 / 338.15 - 1 / 298.15))
    assert hot._deg.dose_h / cold._deg.dose_h == pytest.approx(factor, rel=1e-9)
    assert hot.damage() > cold.damage()


def test_open_circuit_and_light_stress_more_than_dark() -> None:
    oc, mp, dark = preset("wbg_ref"), preset("wbg_ref"), preset("wbg_ref")
    oc.advance(3600.0 * 50, None, 1.0, 298.15)
    mp.advance(3600.0 * 50, mp._vmpp_ref, 1.0, 298.15)
    dark.advance(3600.0 * 50, 0.0, 0.0, 298.15)
    assert oc.damage() > mp.damage() > 5 * dark.damage() > 0


def _segregation_run(name: str, hours: float = 12.0, step_h: float = 0.25):  # type: ignore[no-untyped-def]
    cell = preset(name)
    eg0, voc0 = cell.bandgap_eff_eV(), cell.steady_voc_V(1.0, 298.15)
    eg = [eg0]
    for _ in range(round(hours / step_h)):
        cell.advance(step_h * 3600.0, None, 1.0, 298.15)
        eg.append(cell.bandgap_eff_eV())
    return cell, np.array(eg), eg0, voc0


def test_halide_segregation_above_20_percent_bromide() -> None:
    cell, eg, eg0, voc0 = _segregation_run("fapbibr_25")
    drop = eg0 - eg  # every 15 min
    assert drop[-1] > 0.9 * cell.seg_dEg_eV  # segregated after the 12 h light soak
    first_hour = drop[4]
    third_hour = drop[12] - drop[8]
    assert first_hour < 0.1 * cell.seg_dEg_eV  # slow for ~1 h ...
    assert third_hour > 5 * first_hour  # ... then fast (nucleation and growth)
    voc_loss = voc0 - cell.fresh_voc_V(1.0, 298.15) + (cell.fresh_voc_V(1.0, 298.15)
                                                         - cell.steady_voc_V(1.0, 298.15))
    assert voc_loss > 0.5 * cell.seg_voc_coupling * cell.seg_dEg_eV
    # the dark halide Ea drops markedly once segregated
    temps = np.array([220.0, 250.0, 280.0, 300.0])
    d = [cell.ion_diffusion_cm2_s("anion", t) for t in temps]
    ea = -np.polyfit(1 / temps, np.log(d), 1)[0] * K_B
    assert ea == pytest.approx(cell.ea_anion_eV - cell.seg_dea_anion_eV, rel=0.02)


def test_no_segregation_at_15_percent_bromide() -> None:
    cell, eg, eg0, _ = _segregation_run("fapbibr_15")
    assert eg0 - eg[-1] < 1e-4
    assert cell.segregated_fraction() < 1e-3


def test_segregation_remixes_in_the_dark() -> None:
    cell = _segregation_run("fapbibr_25")[0]
    cell.advance(48 * 3600.0, 0.0, 0.0, 298.15)
    assert cell.segregated_fraction() < 0.05
