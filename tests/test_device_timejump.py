"""Closed-form time evolution: one 100 h step equals 3600 steps of 100 s, costs O(1), and snapshots work."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from mock_instruments.presets import preset


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, float):
            out[f"{prefix}{k}"] = v
    return out


def _assert_states_close(a: dict[str, Any], b: dict[str, Any], rel: float) -> None:
    fa, fb = _flat(a), _flat(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        assert fa[k] == pytest.approx(fb[k], rel=rel, abs=1e-12), k


@pytest.mark.parametrize(("name", "voltage", "suns", "temp"), [
    ("wbg_ref", 1.05, 1.0, 318.15),  # light + heat + bias, segregating 40 % Br
    ("fapbibr_25", 0.9, 1.0, 298.15),  # segregation that lowers the ion Ea during the step
    ("wbg_ref", None, 1.0, 298.15),  # open circuit
    ("wbg_5avai", 0.0, 0.0, 338.15),  # dark, hot: recovery + dark stress
])
def test_one_long_step_equals_many_small(name: str, voltage: float | None, suns: float, temp: float) -> None:
    one, many = preset(name), preset(name)
    for c in (one, many):  # start from a non-trivial state
        c.advance(7200.0, None, 1.0, 298.15)
        c.advance(3.0, 0.2, 0.0, 298.15)
    one.advance(100 * 3600.0, voltage, suns, temp)
    for _ in range(3600):
        many.advance(100.0, voltage, suns, temp)
    _assert_states_close(one.state_dict(), many.state_dict(), rel=1e-9)
    j1 = one.current_density_mA_cm2(0.5, 1.0, 298.15)
    j2 = many.current_density_mA_cm2(0.5, 1.0, 298.15)
    assert j1 == pytest.approx(j2, rel=1e-9)


def test_exponential_long_term_mode_is_exact_too() -> None:
    one = preset("wbg_ref", longterm_mode="exponential", longterm_rate_per_h=2e-3)
    many = one.copy()
    one.advance(100 * 3600.0, 1.0, 1.0, 318.15)
    for _ in range(3600):
        many.advance(100.0, 1.0, 1.0, 318.15)
    _assert_states_close(one.state_dict(), many.state_dict(), rel=1e-9)
    b, k, dose = one.burnin_fraction, one.longterm_rate_per_h, one._deg.dose_h
    shape = b * (1 - math.exp(-dose / one.burnin_time_h)) + (1 - b) * (1 - math.exp(-k * dose))
    expected = (1 - one.reversible_fraction) * shape + one._deg.reversible
    assert one.damage() == pytest.approx(expected, rel=1e-12)
    # under light the reversible pool recovers only slowly (rate ÷ 101 at 1 sun)
    assert 0.5 * one.reversible_fraction * shape < one._deg.reversible < one.reversible_fraction * shape


def test_tandem_long_step_equals_many_small() -> None:
    """Degradation and segregation are exact. The subcell ions chase the steady voltage split, which drifts
    as the subcells age; a long step relaxes them to the end-of-step split, fine steps leave them lagging by
    (drift rate)·τ, here < 1e-7 V (the documented limit of exactness for drifting targets)."""
    one, many = preset("tandem"), preset("tandem")
    one.advance(100 * 3600.0, 1.9, 1.0, 308.15)
    for _ in range(3600):
        many.advance(100.0, 1.9, 1.0, 308.15)
    a, b = one.state_dict(), many.state_dict()
    for sub in ("top", "bottom"):
        _assert_states_close(a[sub]["degradation"], b[sub]["degradation"], rel=1e-9)
        for k, v in a[sub]["ions"].items():
            assert v == pytest.approx(b[sub]["ions"][k], abs=1e-7), (sub, k)


def test_ion_relaxation_composes_exactly_on_short_steps() -> None:
    one, many = preset("fapbi3"), preset("fapbi3")
    one.advance(0.05, 1.0, 0.0, 250.0)
    for _ in range(50):
        many.advance(0.001, 1.0, 0.0, 250.0)
    _assert_states_close(one.state_dict(), many.state_dict(), rel=1e-9)


def test_long_jump_costs_the_same_as_a_short_one() -> None:
    cell = preset("wbg_ref")

    def best(dt: float) -> float:
        t_best = math.inf
        for _ in range(5):
            c = cell.copy()
            t0 = time.perf_counter()
            for _ in range(200):
                c.advance(dt, 1.0, 1.0, 318.15)
            t_best = min(t_best, time.perf_counter() - t0)
        return t_best / 200

    assert best(100 * 3600.0) < 3 * best(1.0) + 20e-6


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
    _assert_states_close(cell.state_dict()["ions"], before["ions"], rel=1e-12)


def test_ion_step_is_exact_while_segregation_lowers_the_ion_ea() -> None:
    """Segregation changes τ_anion within a step; the step integrates ∫dt/τ (Gauss–Legendre), so one step
    of ≈ 3τ equals 1000 small ones. Exaggerated kinetics so the effect shows: θc = 36 s, Ea drop 0.1 eV."""
    one = preset("fapbibr_25", seg_time_h=0.01, seg_ea_eV=0.0, seg_dea_anion_eV=0.1)
    one.advance(30.0, None, 1.0, 150.0)
    many = one.copy()
    tau0 = one.ion_tau_s("anion", 150.0)
    one.advance(0.025, 0.5, 1.0, 150.0)
    for _ in range(1000):
        many.advance(2.5e-5, 0.5, 1.0, 150.0)
    assert 1 - one.ion_tau_s("anion", 150.0) / tau0 > 5e-3  # τ changed noticeably during the step
    assert 1.0 < 0.025 / tau0 < 10.0  # ... and the ions were caught mid-relaxation
    _assert_states_close(one.state_dict(), many.state_dict(), rel=1e-9)
