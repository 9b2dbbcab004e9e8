"""Dark J–V metrics against pvlib's single-diode model: curves generated with known J0, n, Rs, Rsh (pvlib's
``i_from_v`` with no photocurrent) are analysed by labctl and the parameters recovered."""

from __future__ import annotations

import numpy as np
import pytest
from pvlib.pvsystem import i_from_v

from labctl.analysis.dark_jv import K_B_EV, DarkJVError, dark_jv_metrics

T_K = 298.15


def dark_curve(j0_mA_cm2: float, n: float, rs: float, rsh: float, v_max: float = 1.3, points: int = 131
               ) -> tuple[np.ndarray, np.ndarray]:
    """Voltage and the photocurrent-positive density a dark scan stores (1 cm² so that A = A/cm²)."""
    v = np.linspace(-0.3, v_max, points)
    current_A = i_from_v(v, 0.0, j0_mA_cm2 * 1e-3, rs, rsh, n * K_B_EV * T_K)  # pvlib: generation positive
    return v, np.asarray(current_A) * 1e3


# Dark curves with an exponential region of one to three decades between the shunt and the series
# resistance, as dark J–V curves of working perovskite cells have.
@pytest.mark.parametrize(("j0", "n", "rs", "rsh"), [
    (1e-12, 1.6, 2.0, 1e5),  # a wide-gap perovskite
    (1e-10, 1.3, 1.5, 3e5),  # a well passivated narrower-gap one
    (1e-9, 1.9, 4.0, 5e4),  # a high ideality factor (trap-assisted recombination), larger series resistance
])
def test_parameters_of_pvlib_curves_are_recovered(j0: float, n: float, rs: float, rsh: float) -> None:
    v, j = dark_curve(j0, n, rs, rsh)
    got = dark_jv_metrics(v, j, T_K)
    assert got["sign"].startswith("photocurrent-positive")
    assert got["ideality"] == pytest.approx(n, rel=0.03)
    assert np.log10(got["j0_mA_cm2"]) == pytest.approx(np.log10(j0), abs=0.25)  # within a factor 1.8
    assert got["rs_ohm_cm2"] == pytest.approx(rs, rel=0.15)
    assert got["rsh_ohm_cm2"] == pytest.approx(rsh, rel=0.05)
    low, high = got["fit_window_V"]
    assert 0.0 < low < high <= 1.3


def test_forward_positive_data_gives_the_same_answer() -> None:
    v, j = dark_curve(1e-12, 1.6, 2.0, 1e5)
    assert dark_jv_metrics(v, -j, T_K)["ideality"] == pytest.approx(dark_jv_metrics(v, j, T_K)["ideality"])


def test_noise_of_a_real_smu_leaves_the_ideality_within_five_percent() -> None:
    v, j = dark_curve(1e-12, 1.6, 2.0, 1e5)
    rng = np.random.default_rng(3)
    noisy = j * (1 + 1e-3 * rng.standard_normal(j.size)) + 1e-6 * rng.standard_normal(j.size)
    assert dark_jv_metrics(v, noisy, T_K)["ideality"] == pytest.approx(1.6, rel=0.05)


def test_a_curve_without_a_diode_is_refused() -> None:
    v = np.linspace(-0.3, 1.0, 40)
    with pytest.raises(DarkJVError):
        dark_jv_metrics(v, -v / 1e3 * 1e3, T_K)  # a resistor
