"""The seed papers' figures, measured on the simulated cells the way a lab measures them, with metric code
written here (not the model's): reverse-scan PCE, stabilised power output, and MPPT retention.

Protocol (docs/simulation.md §7): 1 sun, 298.15 K; 120 s light soak at open circuit; reverse scan from
Voc + 0.1 V to −0.1 V in 10 mV steps at 0.1 V/s (each point held 0.1 s, then read); SPO = the power after
holding the reverse scan's Vmpp for 300 s. Seeds (Fu et al.): wbg_ref PCE 17.5 % (Voc 1.285 V, EQE-integrated
Jsc 17.26 mA/cm²), wbg_5avai PCE 20.23 % and SPO 20.05 % (Voc 1.372 V, Jsc 17.50 mA/cm²), tandem PCE 28.9 %
(Voc 2.183 V, FF ≈ 0.836); retention under MPP tracking: wbg_ref < 50 % after 400 h (the model is tuned to
0.453), wbg_5avai 86.4 % after 600 h, tandem 87.3 % after 800 h.
"""

from __future__ import annotations

import numpy as np
import pytest

from mock_instruments.presets import preset
from mock_instruments.transient_scan import transient_scan

T = 298.15


def metrics(v: np.ndarray, j: np.ndarray) -> dict[str, float]:
    """Voc and Jsc by linear interpolation; Pmax on the piecewise-linear curve (1 sun = 100 mW/cm²)."""
    order = np.argsort(v)
    v, j = v[order], j[order]
    voc = float(np.interp(0.0, -j, v))
    jsc = float(np.interp(0.0, v, j))
    fine = np.linspace(0.0, voc, 20001)
    p = fine * np.interp(fine, v, j)
    k = int(np.argmax(p))
    return {"voc": voc, "jsc": jsc, "pce": float(p[k]), "ff": float(p[k]) / (voc * jsc), "vmpp": float(fine[k])}


def reverse_scan_and_spo(name: str) -> tuple[dict[str, float], float, float]:
    """(reverse-scan metrics, SPO in %, steady-state Pmax in %) by the protocol above."""
    cell = preset(name)
    voc = cell.steady_voc_V(1.0, T)
    v = np.round(np.arange(round(voc + 0.1, 2), -0.1 - 1e-9, -0.01), 4)
    j = transient_scan(cell, v, 0.1, 1.0, T, precondition_V=None, precondition_s=120.0)
    rs = metrics(v, j)
    cell.advance(300.0, rs["vmpp"], 1.0, T)
    spo = rs["vmpp"] * cell.current_density_mA_cm2(rs["vmpp"], 1.0, T)
    grid = np.linspace(0.5 * voc, voc, 4001)
    steady = float(np.max(grid * cell.steady_state_jv(grid, 1.0, T)))
    return rs, spo, steady


@pytest.mark.parametrize(("name", "pce", "voc", "jsc_eqe", "ff"), [
    ("wbg_ref", 17.5, 1.285, 17.26, None),
    ("wbg_5avai", 20.23, 1.372, 17.50, None),
    ("tandem", 28.9, 2.183, None, 0.836),
])
def test_reverse_scan_gives_the_reported_efficiency(name: str, pce: float, voc: float, jsc_eqe: float | None,
                                                   ff: float | None) -> None:
    rs, spo, steady = reverse_scan_and_spo(name)
    assert abs(rs["pce"] - pce) <= 0.3, rs
    assert abs(rs["voc"] - voc) <= 0.005, rs
    if jsc_eqe is not None:  # a J–V Jsc agrees with the EQE-integrated one to ~2 %
        assert rs["jsc"] == pytest.approx(jsc_eqe, rel=0.02), rs
    if ff is not None:
        assert abs(rs["ff"] - ff) <= 0.005, rs
    # the reverse scan after a light soak at Voc reads above the stabilised power, and the SPO is the
    # steady state (the hold at the scan's Vmpp lands on the steady curve's maximum)
    assert spo < rs["pce"]
    assert spo == pytest.approx(steady, abs=0.02)


def test_spo_of_the_5avai_cell_is_the_reported_one() -> None:
    rs, spo, _ = reverse_scan_and_spo("wbg_5avai")
    assert abs(spo - 20.05) <= 0.3 and abs(rs["pce"] - 20.23) <= 0.3, (rs["pce"], spo)


def mpp(cell, temperature_K: float = T) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(Pmax in mW/cm², Vmpp) of the steady-state curve: where an ideal tracker sits."""
    voc = cell.steady_voc_V(1.0, temperature_K)
    v = np.linspace(0.5 * voc, voc, 801)
    p = v * cell.steady_state_jv(v, 1.0, temperature_K)
    k = int(np.argmax(p))
    fine = np.linspace(v[max(k - 1, 0)], v[min(k + 1, v.size - 1)], 81)
    pf = fine * cell.steady_state_jv(fine, 1.0, temperature_K)
    return float(pf.max()), float(fine[int(np.argmax(pf))])


def tracked_retention(name: str, hours: float, step_h: float) -> float:
    """Pmax(t)/Pmax(0) of a cell held at 1 sun at its own MPP, re-tracked every ``step_h``."""
    cell = preset(name)
    p0 = mpp(cell)[0]
    for _ in range(round(hours / step_h)):
        cell.advance(step_h * 3600.0, mpp(cell)[1], 1.0, T)
    return mpp(cell)[0] / p0


@pytest.mark.parametrize(("name", "hours", "target"), [
    ("wbg_ref", 400.0, 0.453),  # the seed says "< 50 %"; the model is tuned to 45.3 %
    ("wbg_5avai", 600.0, 0.864),
    ("tandem", 800.0, 0.873),
])
def test_retention_under_ideal_mpp_tracking(name: str, hours: float, target: float) -> None:
    assert tracked_retention(name, hours, step_h=4.0) == pytest.approx(target, abs=0.02)
