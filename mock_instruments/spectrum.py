"""The AM1.5G photon current above a band gap, and the band gap's temperature shift.

``photocurrent_limit_mA_cm2(Eg)`` is q times the AM1.5G (ASTM G173-03, global tilt, 1000 W/m²) photon flux
with energy above ``Eg``: the Shockley–Queisser short-circuit current. The table below was integrated from the
standard spectrum (the tests recompute it with pvlib's copy of ASTM G173-03 and agree to < 0.2 %); between
the 10 meV nodes ln J is interpolated linearly.

A cell's photocurrent follows its absorption edge: when the edge moves from Eg to Eg', Jph scales by
J_SQ(Eg')/J_SQ(Eg) (the cell's average EQE above the edge is unchanged). Two things move the edge:

- temperature: lead-halide perovskites *widen* their gap on heating, dEg/dT ≈ +0.2 … +0.35 meV/K
  (Yu et al., J. Appl. Phys. 110, 063526 (2011), CsSnI3 0.35 meV/K; Francisco-López et al., J. Phys. Chem.
  Lett. 10, 2971 (2019), lead iodides and bromides) — the opposite sign to Si or GaAs, so Jsc falls slightly
  and dVoc/dT is less negative than with a fixed gap;
- halide segregation: iodide-rich domains absorb below the mixed phase's edge (device.py weights that by
  their volume share).
"""

from __future__ import annotations

import math

import numpy as np

EG_TABLE_START_EV = 1.00
EG_TABLE_STEP_EV = 0.01
# J_SQ(Eg) in mA/cm² for Eg = 1.00, 1.01, …, 2.40 eV (ASTM G173-03 global tilt, trapezoidal integration).
_J_SQ_MA_CM2 = (
    48.2202, 47.6522, 47.1130, 46.6126, 46.1220, 45.6618, 45.1971, 44.8021, 44.5596, 44.3645, 44.2299,
    44.1111, 43.8108, 43.3917, 42.9223, 42.4385, 41.9499, 41.4607, 40.9686, 40.4764, 39.9851, 39.4960,
    39.0133, 38.5291, 38.0531, 37.5749, 37.1131, 36.7115, 36.3321, 36.0338, 35.8171, 35.6275, 35.4397,
    35.3214, 35.0324, 34.6596, 34.3370, 34.0015, 33.6699, 33.3017, 32.8812, 32.4653, 32.0516, 31.6421,
    31.2409, 30.8375, 30.4623, 30.0682, 29.6800, 29.3127, 28.9726, 28.6444, 28.3336, 27.9931, 27.6249,
    27.2635, 26.9039, 26.5494, 26.1875, 25.8260, 25.4671, 25.1150, 24.8165, 24.6733, 24.3960, 24.0525,
    23.7142, 23.3796, 23.0597, 22.7446, 22.4554, 22.1896, 21.9137, 21.6683, 21.3663, 21.0603, 20.7593,
    20.4708, 20.1813, 19.9056, 19.6460, 19.3986, 19.1116, 18.8265, 18.5448, 18.2667, 17.9906, 17.7213,
    17.4599, 17.2161, 16.9672, 16.7172, 16.4708, 16.2191, 15.9728, 15.7277, 15.4894, 15.2613, 15.0353,
    14.8122, 14.5857, 14.3613, 14.1433, 13.9247, 13.7077, 13.4921, 13.2820, 13.0762, 12.8723, 12.6742,
    12.4791, 12.2950, 12.0965, 11.8972, 11.7049, 11.5194, 11.3358, 11.1514, 10.9745, 10.7953, 10.6197,
    10.4439, 10.2744, 10.1038, 9.9313, 9.7618, 9.5950, 9.4318, 9.2686, 9.1091, 8.9578, 8.8018, 8.6446,
    8.4967, 8.3412, 8.1911, 8.0525, 7.9058, 7.7638, 7.6282, 7.5046,
)
_LOG_J = tuple(math.log(x) for x in _J_SQ_MA_CM2)
EG_TABLE_STOP_EV = EG_TABLE_START_EV + EG_TABLE_STEP_EV * (len(_J_SQ_MA_CM2) - 1)


def photocurrent_limit_mA_cm2(bandgap_eV: float) -> float:
    """AM1.5G photon current above ``bandgap_eV`` (1.00 … 2.40 eV; clamped outside), in mA/cm²."""
    x = (min(max(bandgap_eV, EG_TABLE_START_EV), EG_TABLE_STOP_EV) - EG_TABLE_START_EV) / EG_TABLE_STEP_EV
    i = min(int(x), len(_LOG_J) - 2)
    frac = x - i
    return math.exp(_LOG_J[i] + frac * (_LOG_J[i + 1] - _LOG_J[i]))


def photocurrent_limit_array(bandgap_eV: np.ndarray) -> np.ndarray:
    """Vectorised :func:`photocurrent_limit_mA_cm2`."""
    grid = EG_TABLE_START_EV + EG_TABLE_STEP_EV * np.arange(len(_LOG_J))
    return np.exp(np.interp(np.asarray(bandgap_eV, dtype=float), grid, np.array(_LOG_J)))


def edge_factor(bandgap_eV: float, reference_eV: float) -> float:
    """Jph(edge at ``bandgap_eV``)/Jph(edge at ``reference_eV``) for a cell whose EQE does not change."""
    if bandgap_eV == reference_eV:
        return 1.0
    return photocurrent_limit_mA_cm2(bandgap_eV) / photocurrent_limit_mA_cm2(reference_eV)
