"""Time stepping with a stated error bound (stepping.py): one long advance equals many short ones, at a
constant voltage and at a constant current; how much work a long gap costs; snapshots and copies.

The bounds tested here are the ones docs/simulation.md §5 states: over a 100 h hold one call equals 3600
calls of 100 s to 5e-4 relative in the dose and the reversible pool, 3e-3 in the segregation variable θ and
1e-4 V in the ions (3e-4 in their fill fractions); with rates that do not change (dark, constant voltage)
any gap is one exact step."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mock_instruments import stepping
from mock_instruments.presets import preset
from mock_instruments.world import World

SLOW_REL, THETA_REL, IONS_ABS_V = 5e-4, 3e-3, 1e-4


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, float):
            out[f"{prefix}{k}"] = v
    return out


def _assert_states_close(a: dict[str, Any], b: dict[str, Any], slow: float = SLOW_REL, theta: float = THETA_REL,
                         ions_V: float = IONS_ABS_V) -> None:
    fa, fb = _flat(a), _flat(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        if k.endswith("seg_theta_h"):  # θ matters against θc (hours): tiny values need no relative accuracy
            assert fa[k] == pytest.approx(fb[k], rel=theta, abs=theta * 1e-3), k
        elif "ions.v_" in k:
            assert fa[k] == pytest.approx(fb[k], abs=ions_V), k
        elif "ions.m_" in k:  # fill fractions, dimensionless: ~3 × the voltage bound per volt
            assert fa[k] == pytest.approx(fb[k], abs=3 * ions_V), k
        elif "charge." not in k:
            assert fa[k] == pytest.approx(fb[k], rel=slow, abs=1e-12), k


def _prepared(name: str, **overrides: Any) -> Any:
    cell = preset(name, **overrides)
    cell.advance(7200.0, None, 1.0, 298.15)  # a non-trivial start: aged, ions at an open-circuit
    cell.advance(3.0, 0.2, 0.0, 298.15)  # distribution, then half-way to 0.2 V in the dark
    return cell


@pytest.mark.parametrize(("name", "voltage", "suns", "temp"), [
    ("wbg_ref", 0.95, 1.0, 318.15),  # light + heat + bias, segregating 40 % Br
    ("fapbibr_25", 0.9, 1.0, 298.15),  # segregation that lowers the ion Ea during the step
    ("wbg_ref", None, 1.0, 298.15),  # open circuit: the voltage follows the ions and the aging
    ("wbg_5avai", 0.0, 0.0, 338.15),  # dark, hot: recovery + dark stress
])
def test_one_long_step_equals_many_small(name: str, voltage: float | None, suns: float, temp: float) -> None:
    one, many = _prepared(name), _prepared(name)
    one.advance(100 * 3600.0, voltage, suns, temp)
    for _ in range(3600):
        many.advance(100.0, voltage, suns, temp)
    _assert_states_close(one.state_dict(), many.state_dict())
    j1 = one.current_density_mA_cm2(0.5, 1.0, 298.15)
    j2 = many.current_density_mA_cm2(0.5, 1.0, 298.15)
    assert j1 == pytest.approx(j2, rel=SLOW_REL)


def test_exponential_long_term_mode_is_bounded_too() -> None:
    one = preset("wbg_ref", longterm_mode="exponential", longterm_rate_per_h=2e-3)
    many = one.copy()
    one.advance(100 * 3600.0, 1.0, 1.0, 318.15)
    for _ in range(3600):
        many.advance(100.0, 1.0, 1.0, 318.15)
    _assert_states_close(one.state_dict(), many.state_dict())
    b, k, dose = one.burnin_fraction, one.longterm_rate_per_h, one._deg.dose_h
    shape = b * (1 - math.exp(-dose / one.burnin_time_h)) + (1 - b) * (1 - math.exp(-k * dose))
    expected = (1 - one.reversible_fraction) * shape + one._deg.reversible
    assert one.damage() == pytest.approx(expected, rel=1e-12)
    # under light the reversible pool recovers only slowly (rate ÷ 101 at 1 sun)
    assert 0.5 * one.reversible_fraction * shape < one._deg.reversible < one.reversible_fraction * shape


def test_tandem_long_step_equals_many_small() -> None:
    one, many = preset("tandem"), preset("tandem")
    one.advance(100 * 3600.0, 1.9, 1.0, 308.15)
    for _ in range(3600):
        many.advance(100.0, 1.9, 1.0, 308.15)
    a, b = one.state_dict(), many.state_dict()
    for sub in ("top", "bottom"):
        _assert_states_close(a[sub], b[sub])


@pytest.mark.parametrize("j_mA_cm2", [0.0, 10.0])
def test_constant_current_long_step_equals_many_small(j_mA_cm2: float) -> None:
    one, many = _prepared("wbg_ref"), _prepared("wbg_ref")
    one.advance_at_current(100 * 3600.0, j_mA_cm2, 1.0, 298.15)
    for _ in range(3600):
        many.advance_at_current(100.0, j_mA_cm2, 1.0, 298.15)
    _assert_states_close(one.state_dict(), many.state_dict())
    assert one.voltage_at_current_density(j_mA_cm2, 1.0, 298.15) == pytest.approx(
        many.voltage_at_current_density(j_mA_cm2, 1.0, 298.15), abs=IONS_ABS_V)


def test_a_current_sourcing_world_ages_the_cell_like_fine_steps() -> None:
    """400 h at a constant current on a steady lamp through the world: the voltage follows the aging cell
    (the world used to freeze it over doubling sub-steps and got the dose 57 % wrong)."""
    world = World(seed=0)
    world.add_light("light", shutter_open=True, warmup_tau_s=0.0, drift_fraction=0.0)
    cell = world.add_device("cell", preset("wbg_5avai"))
    world.wire("smu", "cell")
    j = 15.0  # mA/cm², a little below the MPP current
    world.apply_current("smu", -j * 1e-3 * cell.area_cm2)
    reference = preset("wbg_5avai")
    world.clock.sleep(400 * 3600.0)
    world.sync()
    for _ in range(400):
        reference.advance_at_current(3600.0, j, 1.0, 298.15)
    aged = world.device("cell")
    assert aged._deg.dose_h == pytest.approx(reference._deg.dose_h, rel=2e-3)
    assert world.voltage_V("smu") == pytest.approx(reference.voltage_at_current_density(j, 1.0, 298.15), abs=1e-3)


def test_ion_relaxation_composes_exactly_on_short_steps() -> None:
    one, many = preset("fapbi3"), preset("fapbi3")
    one.advance(0.05, 1.0, 0.0, 250.0)
    for _ in range(50):
        many.advance(0.001, 1.0, 0.0, 250.0)
    _assert_states_close(one.state_dict(), many.state_dict(), slow=1e-9, theta=1e-9, ions_V=1e-12)


def test_a_long_gap_costs_steps_in_proportion_to_the_change_not_the_time() -> None:
    """Work, not wall-clock: a dark cell at 0 V does not change its rates, so 1000 h is one exact step; a lit
    cell held at its fresh MPP needs tens of steps for 100 h, and for 1000 h (ten times longer, but its rates
    change more as its Voc falls towards the held voltage) a few times that."""
    dark = preset("wbg_5avai")
    assert stepping.integrate(dark, 1000 * 3600.0, "V", 0.0, 0.0, 298.15) == 1
    lit_100, lit_1000 = preset("wbg_5avai"), preset("wbg_5avai")
    n_100 = stepping.integrate(lit_100, 100 * 3600.0, "V", lit_100._vmpp_ref, 1.0, 298.15)
    n_1000 = stepping.integrate(lit_1000, 1000 * 3600.0, "V", lit_1000._vmpp_ref, 1.0, 298.15)
    assert n_100 <= 100
    assert n_1000 < 5 * n_100
    # readings every 16.7 ms at a held voltage are one step each, taken without a trial step
    reading = preset("wbg_5avai")
    reading.advance(1.0, 1.2, 1.0, 298.15)
    assert [stepping.integrate(reading, 1 / 60, "V", 1.2, 1.0, 298.15) for _ in range(5)] == [1] * 5


def test_snapshots_and_copies_are_independent() -> None:
    a = preset("wbg_ref")
    a.advance(3600.0, 1.0, 1.0, 298.15)
    snap = a.state_dict()
    b = a.copy()
    a.advance(3600.0, None, 1.0, 330.0)
    assert b.state_dict() == snap
    assert a.state_dict() != snap
    a.load_state(snap)
    assert a.state_dict() == snap
    assert a.current_density_mA_cm2(1.0, 1.0, 298.15) == b.current_density_mA_cm2(1.0, 1.0, 298.15)
    t = preset("tandem")
    t.advance(60.0, 2.0, 1.0, 298.15)
    ts = t.state_dict()
    t2 = t.copy()
    t.advance(60.0, None, 1.0, 298.15)
    t.load_state(ts)
    assert t.state_dict() == t2.state_dict()


def test_fresh_preset_starts_in_dark_zero_bias_equilibrium() -> None:
    cell = preset("fapbi3")
    before = cell.state_dict()
    cell.advance(1000.0, 0.0, 0.0, 298.15)
    _assert_states_close(cell.state_dict()["ions"], before["ions"], ions_V=1e-12)


def test_ion_step_is_exact_while_segregation_lowers_the_ion_ea() -> None:
    """Segregation changes τ_anion within a step; the step integrates ∫dt/τ (Gauss–Legendre), so one step
    of ≈ 3τ equals 1000 small ones. Exaggerated kinetics so the effect shows: θc = 36 s, Ea drop 0.1 eV, and
    the cell held just below its Voc, where the carriers drive segregation."""
    one = preset("fapbibr_25", seg_time_h=0.01, seg_ea_eV=0.0, seg_dea_anion_eV=0.1)
    v = one.steady_voc_V(1.0, 150.0) - 0.02
    one.advance(30.0, v, 1.0, 150.0)
    many = one.copy()
    tau0 = one.ion_tau_s("anion", 150.0)
    step = 3.0 * tau0
    one.advance(step, v, 1.0, 150.0)
    for _ in range(1000):
        many.advance(step / 1000, v, 1.0, 150.0)
    assert 1 - one.ion_tau_s("anion", 150.0) / tau0 > 5e-3  # τ changed noticeably during the step
    _assert_states_close(one.state_dict(), many.state_dict(), slow=1e-6, theta=1e-6, ions_V=1e-9)
    assert np.isfinite(one.current_density_mA_cm2(v, 1.0, 150.0))
