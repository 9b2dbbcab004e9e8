"""How precise an E4980A reading is: the data sheet's basic accuracy Ab and the random noise the mock adds.

Basic accuracy Ab (% of reading), Keysight E4980A/AL data sheet, "Basic accuracy" tables 12 (measurement time
mode SHORT) and 13 (MED and LONG), by test frequency band and test signal level Vs:

    SHORT          5–50 mV              50–300 mV   0.3–1 V   1–10 V   10–20 V
    20–125 Hz      0.6 % × 50 mV/Vs     0.6 %       0.3 %     0.3 %    0.3 %
    125 Hz–1 MHz   0.2 % × 50 mV/Vs     0.2 %       0.1 %     0.15 %   0.15 %
    1–2 MHz        0.4 % × 50 mV/Vs     0.4 %       0.2 %     0.3 %    0.3 %
    MED, LONG
    20–100 Hz      0.25 % × 30 mV/Vs    0.25 %      0.10 %    0.15 %   0.15 %
    100 Hz–1 MHz   0.1 % × 30 mV/Vs     0.10 %      0.05 %    0.10 %   0.15 %
    1–2 MHz        0.2 % × 30 mV/Vs     0.2 %       0.1 %     0.2 %    0.3 %

Below 50 mV the table scales as 1/Vs; where that scaling would give less than the 50–300 mV column (MED,
30–50 mV) the larger value is used, and levels below the specified 5 mV are treated as 5 mV.

Noise model (an inference: the data sheet gives no separate repeatability figure; its relative accuracy Ae
"includes stability, temperature coefficient, linearity, repeatability, and calibration interpolation
error"): each reading carries complex Gaussian noise of standard deviation σ = Ab/3 of |Y| on G and on ωC,
i.e. Ab is read as a 3σ bound; averaging (``:APER <mode>,<n>``) divides σ by √n. The systematic parts of Ae
(and the short/open offsets Zs/|Z| and Yo·|Z|, below 1e-5 of the reading for nF-scale capacitances at kHz) are
not simulated.
"""

from __future__ import annotations

import math

# (upper frequency of the band in Hz, Ab in % for the level columns 50–300 mV, 0.3–1 V, 1–10 V, 10–20 V)
_SHORT = ((125.0, (0.6, 0.3, 0.3, 0.3)), (1e6, (0.2, 0.1, 0.15, 0.15)), (math.inf, (0.4, 0.2, 0.3, 0.3)))
_MED_LONG = ((100.0, (0.25, 0.10, 0.15, 0.15)), (1e6, (0.10, 0.05, 0.10, 0.15)), (math.inf, (0.2, 0.1, 0.2, 0.3)))
_LEVEL_EDGES_V = (0.3, 1.0, 10.0)  # column edges above 50 mV
_LOW_LEVEL_V = 0.05  # below this, Ab grows as V0/Vs
_V0_V = {"SHORt": 0.05, "MEDium": 0.03, "LONG": 0.03}
_MIN_LEVEL_V = 5e-3


def basic_accuracy_percent(aperture: str, frequency_Hz: float, level_V: float) -> float:
    """The data sheet's Ab (% of reading) for a measurement time mode (``"SHORt"``, ``"MEDium"``, ``"LONG"``),
    test frequency (Hz) and test signal level (Vrms)."""
    table = _SHORT if aperture == "SHORt" else _MED_LONG
    row = next(values for upper, values in table if frequency_Hz < upper or upper == math.inf)
    level = max(float(level_V), _MIN_LEVEL_V)
    if level < _LOW_LEVEL_V:
        return max(row[0], row[0] * _V0_V[aperture] / level)
    column = sum(level > edge for edge in _LEVEL_EDGES_V)
    return row[column]


def noise_fraction(aperture: str, averages: int, frequency_Hz: float, level_V: float) -> float:
    """σ of the simulated reading noise as a fraction of |Y|: Ab/3 over √averages (module docstring)."""
    return basic_accuracy_percent(aperture, frequency_Hz, level_V) / 100.0 / 3.0 / math.sqrt(averages)
