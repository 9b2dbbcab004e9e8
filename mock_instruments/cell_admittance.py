"""What a PerovskiteCell gives an LCR meter: its small-signal admittance with the present ions and light.

- :func:`ionic_sigma`: the relative change of the depletion region's space charge from ions out of
  equilibrium, N_eff/N_A − 1 = Σ s_s·(N_s/N_A)·(m_s − m_eq(V)), with s_s from the ion's charge against the
  space charge's (ions.space_charge_share): this sets the sign of the TID transient.
- :func:`trap_levels`: the cell's trap bands with their densities (a band that follows a mobile species
  takes its density from it).
- :func:`admittance_S`: Y = 1/(Rs + 1/Y_dev) with Y_dev evaluated at the junction voltage V_j = V + J·Rs
  (capacitance.py lists the parts): light enters through V_j (chemical capacitance, G_dc, the depletion
  width) and through the light-activated cations (their TID transient and low-frequency step).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mock_instruments import capacitance as cap
from mock_instruments import diode, ions
from mock_instruments.stepping import check_conditions

if TYPE_CHECKING:
    from mock_instruments.device import PerovskiteCell


def ionic_sigma(cell: PerovskiteCell, voltage_V: float, suns: float, temperature_K: float) -> float:
    """N_eff/N_A − 1 from the mobile ions out of equilibrium at terminal voltage ``voltage_V``."""
    na, nc = cell._n_ion_eff(suns)
    m_eq = cell._m_eq(voltage_V, temperature_K)
    io = cell._ions
    return (ions.space_charge_share("anion", cell.doping_type) * na * (io.m_anion - m_eq)
            + ions.space_charge_share("cation", cell.doping_type) * nc * (io.m_cation - m_eq)) / cell.n_a_cm3


def trap_levels(cell: PerovskiteCell) -> list[tuple[cap.Trap, float]]:
    """(trap, density in cm⁻³) for each trap band of the cell."""
    return [(t, cap.trap_density_cm3(t, cell.n_ion_anion_cm3, cell.n_ion_cation_cm3)) for t in cell.traps]


def junction_voltage_V(cell: PerovskiteCell, voltage_V: float, suns: float, temperature_K: float) -> float:
    """V_j = V + J·Rs: the voltage across the junction at terminal voltage V (J photocurrent-positive)."""
    j = cell.current_and_slope(voltage_V, suns, temperature_K)[0]
    return voltage_V + j * cell._diode(suns, temperature_K).rs


def admittance_S(cell: PerovskiteCell, voltage_V: float, frequency_Hz: float, temperature_K: float,
                 suns: float) -> complex:
    """Terminal admittance (S) at terminal voltage ``voltage_V``, with the present ion state."""
    check_conditions(suns, temperature_K)
    if not frequency_Hz > 0.0 or not math.isfinite(frequency_Hz):
        raise ValueError(f"frequency_Hz = {frequency_Hz!r} is outside the allowed range (0, inf) Hz")
    na, nc = cell._n_ion_eff(suns)
    steps = [(na / (2 * cell.n_a_cm3), cell.ion_tau_s("anion", temperature_K)),
             (nc / (2 * cell.n_a_cm3), cell.ion_tau_s("cation", temperature_K))]
    _, j0, rs, rsh, a = cell._diode(suns, temperature_K)
    v_j = junction_voltage_V(cell, voltage_V, suns, temperature_K)
    # the junction's own slope (recombination + shunt) at V_j; Rs is the series element of the admittance
    g_dc = diode.diode_slope(v_j, 0.0, j0, 0.0, rsh, a) * 1e-3 * cell.area_cm2
    return cap.admittance_S(voltage_V=v_j, frequency_Hz=frequency_Hz, temperature_K=temperature_K,
                            area_cm2=cell.area_cm2, thickness_nm=cell.thickness_nm, eps_r=cell.eps_r,
                            n_a_cm3=cell.n_a_cm3, v_bi_V=cell.v_bi_V, bandgap_eV=cell.bandgap_at_eV(temperature_K),
                            ionic_sigma=ionic_sigma(cell, voltage_V, suns, temperature_K),
                            traps=trap_levels(cell), ion_steps=steps, g_dc_S=g_dc,
                            rs_ohm=rs * 1e3 / cell.area_cm2)
