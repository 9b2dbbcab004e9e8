"""Small-signal admittance of the cell: what an LCR meter in Cp–G mode reads.

Parts, in parallel at the junction voltage V_j = V + J·Rs (the voltage across the junction once the series
resistance has taken its share of the dc current: equal to V in the dark at 0 V, Jsc·Rs above it at short
circuit under light), then in series with Rs:
- space charge: C_sc = ε·ε0·A/W with the depletion width W = min(d, W_dep),
  W_dep² = (2·ε·ε0/(q·N_eff))·kT/q·ln(1 + exp((V_bi − V − kT/q)/(kT/q))). In the depletion regime the
  softplus is exactly V_bi − V − kT/q, so 1/C² = 2(V_bi − V − kT/q)/(q·ε·ε0·N_A·A²) (Mott–Schottky); a fully
  depleted absorber gives the geometric ε·ε0·A/d; beyond flat band W saturates at the Debye length
  (+ L_D²·exp(−W²/L_D²), negligible in depletion). N_eff carries the ionic TID transient (see ions.py).
- traps (Walter et al. 1996): each level i answers below ω0,i(T) = 2·ξ0,i·T²·exp(−Et,i/kT) as a Debye
  relaxation of height ΔC_i = q·W·N_t,i·A/V_bi, so Walter's DOS formula integrates back to N_t,i:
  C(ω) = ΔC_i/(1 + (ω/ω0)²), G(ω)/ω = ΔC_i·(ω/ω0)/(1 + (ω/ω0)²) (peak at ω0). A trap band may follow a
  mobile species (:class:`Trap` ``follows``/``per_ion``): its density is then set by that species' density.
- ions (low-frequency): a Debye relaxation at ω = 1/τ_s of height C_sc·N_s/(2·N_A) per mobile species.
- chemical capacitance of the electrons and holes: C_n = q²·d·n/kT and C_p = q²·d·p/kT in *series* (the
  small-signal voltage splits between the two quasi-Fermi levels), n = p = n_i·exp(qV_j/2kT) in the
  near-intrinsic absorber: C_μ = q²·d·n·p/(kT·(n + p)) = q²·d·n/(2kT). Light enters through V_j (the quasi-
  Fermi level splitting the diode's recombination sees): negligible at short circuit, where the carriers are
  extracted, large near Voc.
- dc conductance: the diode's differential conductance at V_j (recombination and shunt, Rs excluded: it is
  the series element).

The same C_sc + C_chem is charged through Rs whenever the terminal voltage steps (device.py): the charging
current after a step ΔV carries ∫C dV and decays with τ = Rs·C/(1 + Rs·G_dc).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from mock_instruments.diode import BOLTZMANN_EV_K
from mock_instruments.ions import EPS0_F_M, Q_C

# Effective density of states (conduction = valence band), a generic lead-halide value (fill-in).
N_EFFECTIVE_CM3 = 2e18


TRAP_FOLLOWS = ("", "anion", "cation")


class Trap(NamedTuple):
    """A discrete trap level (or narrow band) seen by admittance spectroscopy.

    ``follows`` links the band to a mobile species where the defect chemistry links them (Xiang et al.: trap
    band II is the halide interstitial that migrates in the dark, band III the FA-related defect behind FA⁺
    migration under light): its density is then ``density_cm3 + per_ion × N`` with N the species' density
    (``n_ion_anion_cm3``, or ``n_ion_cation_cm3``: the light-activatable set, present in the dark too)."""

    depth_eV: float  # Et, energy distance to the band edge that emits
    density_cm3: float  # N_t (the part that does not follow a species)
    xi0_s_K2: float  # ξ0 in ω0 = 2·ξ0·T²·exp(−Et/kT), s⁻¹·K⁻²
    follows: str = ""  # "", "anion" or "cation"
    per_ion: float = 0.0  # traps per mobile ion of the followed species


def trap_density_cm3(trap: Trap, n_anion_cm3: float, n_cation_cm3: float) -> float:
    """The trap's density with its followed species' share."""
    linked = {"anion": n_anion_cm3, "cation": n_cation_cm3}.get(trap.follows, 0.0)
    return trap.density_cm3 + trap.per_ion * linked


def trap_omega0_rad_s(trap: Trap, temperature_K: float) -> float:
    """ω0(T) = 2·ξ0·T²·exp(−Et/kT)."""
    kt = BOLTZMANN_EV_K * temperature_K
    return 2.0 * trap.xi0_s_K2 * temperature_K**2 * math.exp(-trap.depth_eV / kt)


def depletion_width_m(voltage_V: float, temperature_K: float, v_bi_V: float, n_eff_cm3: float, eps_r: float,
                      thickness_nm: float, debye_floor: bool = True) -> float:
    """W(V) with the Mott–Schottky kT/q correction, softened beyond flat band and capped at d."""
    vt = BOLTZMANN_EV_K * temperature_K
    x = (v_bi_V - voltage_V - vt) / vt
    softplus = x if x > 35.0 else math.log1p(math.exp(x))
    w2 = 2.0 * eps_r * EPS0_F_M * vt * softplus / (Q_C * n_eff_cm3 * 1e6)
    # Beyond flat band the width saturates at the Debye length L_D (the term vanishes in depletion).
    if debye_floor:
        ld2 = eps_r * EPS0_F_M * vt / (Q_C * n_eff_cm3 * 1e6)
        w2 += ld2 * math.exp(-w2 / ld2)
    return min(math.sqrt(w2), thickness_nm * 1e-9)


def fill_fraction_eq(voltage_V: float, temperature_K: float, v_bi_V: float, n_a_cm3: float, eps_r: float,
                     thickness_nm: float) -> float:
    """Heiser–Mesli equilibrium: fraction of the zero-bias depletion region that holds mobile ions at V,
    1 − W(V)/W(0) (→ 1 beyond flat band, 0 at 0 V, negative in reverse bias; no Debye floor: ions refill
    the region completely once it has collapsed)."""
    w_v = depletion_width_m(voltage_V, temperature_K, v_bi_V, n_a_cm3, eps_r, thickness_nm, debye_floor=False)
    w_0 = depletion_width_m(0.0, temperature_K, v_bi_V, n_a_cm3, eps_r, thickness_nm, debye_floor=False)
    return 1.0 - w_v / w_0


def junction_capacitance_F(*, voltage_V: float, temperature_K: float, area_cm2: float, thickness_nm: float,
                           eps_r: float, n_eff_cm3: float, v_bi_V: float, bandgap_eV: float
                           ) -> tuple[float, float, float]:
    """(C_sc, C_chem, W): the space-charge (→ geometric when fully depleted) and chemical capacitance in F,
    and the depletion width in m. Their sum is what the LCR meter reads above the trap and ion responses,
    and what a voltage step charges through Rs."""
    w = depletion_width_m(voltage_V, temperature_K, v_bi_V, n_eff_cm3, eps_r, thickness_nm)
    c_sc = eps_r * EPS0_F_M * area_cm2 * 1e-4 / w
    vt = BOLTZMANN_EV_K * temperature_K
    n = N_EFFECTIVE_CM3 * math.exp(-bandgap_eV / (2.0 * vt)) * math.exp(min(voltage_V / (2.0 * vt), 300.0))
    return c_sc, chemical_capacitance_F_cm2(n, n, thickness_nm, temperature_K) * area_cm2, w


def chemical_capacitance_F_cm2(n_cm3: float, p_cm3: float, thickness_nm: float, temperature_K: float) -> float:
    """Electron and hole chemical capacitances (q²·d·n/kT, q²·d·p/kT per cm²) in series."""
    vt = BOLTZMANN_EV_K * temperature_K
    if n_cm3 <= 0.0 or p_cm3 <= 0.0:
        return 0.0
    return Q_C * (thickness_nm * 1e-7) / vt * n_cm3 * p_cm3 / (n_cm3 + p_cm3)


def admittance_S(*, voltage_V: float, frequency_Hz: float, temperature_K: float, area_cm2: float,
                 thickness_nm: float, eps_r: float, n_a_cm3: float, v_bi_V: float, bandgap_eV: float,
                 ionic_sigma: float, traps: Sequence[tuple[Trap, float]], ion_steps: Sequence[tuple[float, float]],
                 g_dc_S: float, rs_ohm: float) -> complex:
    """Terminal admittance Y = 1/(Rs + 1/Y_device) in siemens, the device part at the junction voltage
    ``voltage_V`` (V_j).

    ionic_sigma: relative change of the space-charge density from out-of-equilibrium ions.
    traps: (trap, its density in cm⁻³) pairs (:func:`trap_density_cm3`).
    ion_steps: (relative height ΔC/C_sc, τ in s) of each mobile species' low-frequency response."""
    omega = 2.0 * math.pi * frequency_Hz
    area_m2 = area_cm2 * 1e-4
    c_sc, c_chem, w = junction_capacitance_F(
        voltage_V=voltage_V, temperature_K=temperature_K, area_cm2=area_cm2, thickness_nm=thickness_nm,
        eps_r=eps_r, n_eff_cm3=n_a_cm3 * max(1.0 + ionic_sigma, 1e-3), v_bi_V=v_bi_V, bandgap_eV=bandgap_eV)
    y = complex(g_dc_S, omega * (c_sc + c_chem))
    for trap, density_cm3 in traps:
        dc = Q_C * w * density_cm3 * 1e6 * area_m2 / v_bi_V
        y += _debye(dc, 1.0 / trap_omega0_rad_s(trap, temperature_K), omega)
    for rel_height, tau in ion_steps:
        if rel_height > 0.0:
            y += _debye(rel_height * c_sc, tau, omega)
    if rs_ohm > 0.0:
        y = 1.0 / (rs_ohm + 1.0 / y)
    return y


def _debye(delta_c_F: float, tau_s: float, omega: float) -> complex:
    """Admittance of a capacitance step ΔC relaxing with τ: jω·ΔC/(1 + jωτ)."""
    x = omega * tau_s
    return complex(delta_c_F * omega * x / (1.0 + x * x), delta_c_F * omega / (1.0 + x * x))
