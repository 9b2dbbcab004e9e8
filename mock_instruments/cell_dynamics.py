"""How a PerovskiteCell evolves over one step of the stepper (stepping.py), and its charging current.

- :func:`slow_rates`: the stress and segregation drive at an operating point (degradation.py's laws with the
  cell's own carriers: ρ = J_rec/Jph,ref from the current balance).
- :func:`apply_junction`: the closed forms over a step with constant rates, the ions relaxing towards a
  voltage that ramps linearly from v0 to v1 (exact for a constant or linearly drifting voltage).
- :func:`path`: the same step's state at several instants at once (numpy), for buffered dwells.
- :func:`charge_to`: a voltage step charges the junction capacitance (C_sc + C_chem, the one the LCR meter
  reads above the trap and ion responses) through Rs; the charge decays with τ = Rs·C/(1 + Rs·G).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from mock_instruments import capacitance as cap
from mock_instruments import degradation as deg
from mock_instruments import diode, ions
from mock_instruments.stepping import OperatingPoint

if TYPE_CHECKING:
    from mock_instruments.device import PerovskiteCell, Thermal

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)
SIMPSON_ABOVE_V = 0.05  # voltage steps larger than this integrate C(V) with Simpson's rule
DAMAGE_MAX = 0.999  # the diode stops changing beyond this damage (the cell is dead)


@dataclass
class ChargeState:
    """Charge still to flow into the junction capacitance after the last voltage step (mC/cm², positive
    after a step up), its time constant and the terminal voltage it was charged to."""

    q_mC_cm2: float = 0.0
    tau_s: float = 0.0
    voltage_V: float = 0.0


class DiodeParams(NamedTuple):
    """The single diode at given conditions: Jph (mA/cm², before ionic collection), J0 (mA/cm²), Rs and Rsh
    (V per mA/cm²), a = n·kT/q (V). Fields may be arrays (one diode per instant of a dwell)."""

    jph: Any
    j0: Any
    rs: Any
    rsh: float
    a: float


@dataclass
class Path:
    """One junction at several instants of an accepted step: J(V) and dJ/dV at each instant (vectorised)."""

    d: DiodeParams
    ion_sum: np.ndarray  # Σ w_s·v_s(t)
    w_total: float
    loss_ratio: float
    field_scale_V: float

    def current_and_slope(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        jph, j0, rs, rsh, a = self.d
        eta: Any = 1.0
        deta_dv: Any = 0.0
        if self.loss_ratio > 0.0 and np.any(jph > 0.0):
            eta = ions.collection_efficiency_array(self.ion_sum - self.w_total * v, self.loss_ratio,
                                                   self.field_scale_V)
            deta_dv = -self.w_total * eta * (1.0 - eta / (1.0 + self.loss_ratio)) / self.field_scale_V
        j = diode.current_from_voltage_array(v, jph * eta, j0, rs, rsh, a)
        gd = (j0 / a) * np.exp(np.minimum((v + j * rs) / a, 700.0)) + 1.0 / rsh
        return j, (jph * deta_dv - gd) / (1.0 + rs * gd)

    def voltage_at(self, j_mA_cm2: float, guess: np.ndarray) -> np.ndarray:
        """V at each instant where the junction carries j (Newton from ``guess``, a few steps)."""
        v = np.array(guess, dtype=float)
        for _ in range(30):
            j, slope = self.current_and_slope(v)
            step = (j - j_mA_cm2) / slope
            v -= step
            if np.all(np.abs(step) < 1e-12):
                break
        return v


def slow_rates(cell: PerovskiteCell, voltage_V: float, j_mA_cm2: float, suns: float, temperature_K: float
               ) -> tuple[float, float]:
    """(stress in reference hours per hour, segregation drive in θ-hours per hour) at V carrying j."""
    d = cell._diode(suns, temperature_K)
    th = cell._thermal(temperature_K)
    vj = voltage_V + j_mA_cm2 * d.rs
    # J_rec = J0·(exp(V_j/a) − 1), taken from the current balance: it stays accurate when J0 is huge (a dead
    # cell driven above its Voc), where V_j is a small difference of large numbers.
    jph = d.jph * cell._eta(voltage_V, suns, temperature_K) if d.jph > 0.0 else 0.0
    rho = (jph - j_mA_cm2 - vj / d.rsh) / cell._jph_ref
    stress = deg.stress_rate(cell, cell._weights, suns, th.deg_arrhenius, rho, vj)
    if rho <= 0.0 or th.seg_source_per_h == 0.0:
        return stress, 0.0
    return stress, th.seg_source_per_h * (rho / cell._weights.rho_oc) ** (0.5 * cell.ideality)


def recovery_rate(cell: PerovskiteCell, suns: float, th: Thermal) -> float:
    return th.deg_arrhenius / (cell.recovery_time_h * (1.0 + deg.RECOVERY_LIGHT_SUPPRESSION * suns))


def apply_junction(cell: PerovskiteCell, h_s: float, v0: float, v1: float, rates: tuple[float, ...], suns: float,
                   temperature_K: float) -> None:
    """Closed forms over h_s: slow states at constant ``rates``, ions towards a voltage ramping v0 → v1."""
    th = cell._thermal(temperature_K)
    h_h = h_s / 3600.0
    st = cell._deg
    theta_start = st.seg_theta_h
    deg.advance_damage(cell, st, h_h, rates[0], recovery_rate(cell, suns, th), cell._terms)
    theta_inf = rates[1] * th.tau_mix_h
    deg.advance_segregation(st, h_h, theta_inf, th.tau_mix_h)
    if cell.seg_dea_anion_eV == 0.0:
        k_anion = h_s / th.tau_anion_s
    else:
        k_anion = anion_decay_exponent(cell, h_s, temperature_K, theta_start, theta_inf, th.tau_mix_h)
    k_cation = h_s / th.tau_cation_s
    m0 = cell._m_eq(v0, temperature_K)
    io = cell._ions
    if v1 == v0:  # a constant target (a constant voltage): plain exponential relaxation
        a = math.exp(-k_anion)
        c = math.exp(-k_cation)
        io.v_anion_V = v0 + (io.v_anion_V - v0) * a
        io.m_anion = m0 + (io.m_anion - m0) * a
        io.v_cation_V = v0 + (io.v_cation_V - v0) * c
        io.m_cation = m0 + (io.m_cation - m0) * c
    else:  # a target ramping from v0 to v1 (ions.relax_ramp, with the factors shared by v and m)
        m1 = cell._m_eq(v1, temperature_K)
        a, lag_a = math.exp(-k_anion), ions.lag_fraction(k_anion)
        c, lag_c = math.exp(-k_cation), ions.lag_fraction(k_cation)
        io.v_anion_V = io.v_anion_V * a + v0 * (1.0 - a) + (v1 - v0) * lag_a
        io.m_anion = io.m_anion * a + m0 * (1.0 - a) + (m1 - m0) * lag_a
        io.v_cation_V = io.v_cation_V * c + v0 * (1.0 - c) + (v1 - v0) * lag_c
        io.m_cation = io.m_cation * c + m0 * (1.0 - c) + (m1 - m0) * lag_c
    ch = cell._charge
    if ch.q_mC_cm2 != 0.0:
        ch.q_mC_cm2 = ch.q_mC_cm2 * math.exp(-h_s / ch.tau_s) if ch.tau_s > 0.0 else 0.0
    ch.voltage_V = v1
    cell._changed()


def anion_decay_exponent(cell: PerovskiteCell, dt_s: float, temperature_K: float, theta_start: float,
                         theta_inf: float, tau_mix_h: float) -> float:
    """∫dt/τ_anion over a step that starts at θ; τ changes while segregation (which lowers Ea) evolves, so
    the integral is taken with 16-point Gauss–Legendre quadrature."""
    f_start = deg.segregated_fraction(cell, theta_start)
    d_start = ions.diffusion_cm2_s(cell.d0_anion_cm2_s, cell._ea_anion(f_start), temperature_K)
    tau0 = ions.heiser_mesli_tau_s(d_start, temperature_K, cell.eps_r, cell.n_a_cm3)
    if theta_inf == theta_start or dt_s / tau0 > 800.0:
        return dt_s / tau0
    times = [0.5 * dt_s * (1.0 + float(x)) / 3600.0 for x in _GL_NODES]
    fs = deg.segregation_trajectory(cell, theta_start, theta_inf, tau_mix_h, times)
    if abs(fs[-1] - f_start) < 1e-13:
        return dt_s / tau0
    kt = diode.BOLTZMANN_EV_K * temperature_K
    rates = [math.exp((f - f_start) * cell.seg_dea_anion_eV / kt) for f in fs]  # lower Ea: faster
    return dt_s / tau0 * 0.5 * sum(float(w) * r for w, r in zip(_GL_WEIGHTS, rates, strict=True))


def path(cell: PerovskiteCell, t_s: np.ndarray, h_s: float, v0: float, v1: float, rates: tuple[float, ...],
         suns: float, temperature_K: float) -> Path:
    """The junction at offsets t_s (≤ h_s) into a step that :func:`apply_junction` would take."""
    th = cell._thermal(temperature_K)
    st = cell._deg
    t_h = t_s / 3600.0
    dmg = np.minimum(deg.damage_path(cell, st, t_h, rates[0], recovery_rate(cell, suns, th), cell._terms),
                     DAMAGE_MAX)
    theta_inf = rates[1] * th.tau_mix_h
    f_seg = deg.segregated_fraction_array(cell, deg.theta_path(st.seg_theta_h, t_h, theta_inf, th.tau_mix_h))
    jph_scale, dvoc, rs_scale, edge_shift = cell._damage_effects(dmg, f_seg, np)
    jph = np.zeros_like(t_s)
    if suns > 0.0:
        edge = th.edge_eV - np.broadcast_to(edge_shift, t_s.shape)
        jph = cell._jph_ref * suns * jph_scale * cell._edge_factor_array(edge, temperature_K)
    if cell.seg_dea_anion_eV == 0.0:
        k_anion = t_s / th.tau_anion_s
    else:
        k_anion = np.array([anion_decay_exponent(cell, float(t), temperature_K, st.seg_theta_h, theta_inf,
                                                 th.tau_mix_h) for t in t_s])
    ramp_end = v0 + (v1 - v0) * t_s / h_s
    io = cell._ions
    wa, wc, wsum = cell._ion_weights(suns)
    ion_sum = (wa * ions.relax_ramp_array(io.v_anion_V, v0, ramp_end, k_anion)
               + wc * ions.relax_ramp_array(io.v_cation_V, v0, ramp_end, t_s / th.tau_cation_s))
    diode_t = DiodeParams(jph, th.j0 * np.exp(dvoc / th.a), th.rs * rs_scale, cell.rsh_ohm_cm2 * 1e-3, th.a)
    return Path(diode_t, ion_sum, wsum, cell.ion_loss_ratio, th.field_scale_V)


def path_readings(cell: PerovskiteCell, t_s: np.ndarray, h_s: float, op0: OperatingPoint, opm: OperatingPoint,
                  mode: str, value: float, suns: float, temperature_K: float) -> np.ndarray:
    """Readings (J at a held voltage, V at a held current) at offsets t_s into an accepted step."""
    v0 = op0.voltages[0]
    v1 = 2.0 * opm.voltages[0] - v0
    junction = path(cell, t_s, h_s, v0, v1, opm.rates, suns, temperature_K)
    if mode == "J":
        return junction.voltage_at(value, v0 + (v1 - v0) * t_s / h_s)
    j = junction.current_and_slope(np.full_like(t_s, value))[0]
    ch = cell._charge
    if ch.q_mC_cm2 != 0.0 and ch.tau_s > 0.0 and value == ch.voltage_V:
        j = j - ch.q_mC_cm2 * np.exp(-t_s / ch.tau_s) / ch.tau_s
    return np.asarray(j)


def junction_capacitance_F_cm2(cell: PerovskiteCell, voltage_V: float, temperature_K: float, suns: float = 0.0
                               ) -> float:
    """C_sc + C_chem per cm² at V with the present ions (capacitance.junction_capacitance_F)."""
    n_eff = cell.n_a_cm3 * max(1.0 + cell._ionic_sigma(voltage_V, suns, temperature_K), 1e-3)
    c_sc, c_chem, _ = cap.junction_capacitance_F(
        voltage_V=voltage_V, temperature_K=temperature_K, area_cm2=1.0, thickness_nm=cell.thickness_nm,
        eps_r=cell.eps_r, n_eff_cm3=n_eff, v_bi_V=cell.v_bi_V, bandgap_eV=cell.bandgap_at_eV(temperature_K))
    return c_sc + c_chem


def charge_to(cell: PerovskiteCell, voltage_V: float, suns: float, temperature_K: float) -> None:
    """A step from the last terminal voltage: the junction capacitance takes ∫C dV (midpoint rule, Simpson's
    above SIMPSON_ABOVE_V) through Rs with τ = Rs·C/(1 + Rs·G), G the diode's small-signal conductance."""
    ch = cell._charge
    v_prev = ch.voltage_V
    if voltage_V == v_prev:
        return
    c1 = junction_capacitance_F_cm2(cell, voltage_V, temperature_K, suns)
    cm = junction_capacitance_F_cm2(cell, 0.5 * (v_prev + voltage_V), temperature_K, suns)
    if abs(voltage_V - v_prev) > SIMPSON_ABOVE_V:
        c0 = junction_capacitance_F_cm2(cell, v_prev, temperature_K, suns)
        cm = (c0 + 4.0 * cm + c1) / 6.0
    dq_mC = (voltage_V - v_prev) * cm * 1e3
    rs_ohm_cm2 = cell._diode(suns, temperature_K).rs * 1e3
    g_S_cm2 = -cell.current_and_slope(voltage_V, suns, temperature_K)[1] * 1e-3
    tau = rs_ohm_cm2 * c1 / (1.0 + rs_ohm_cm2 * max(g_S_cm2, 0.0))
    remaining = ch.q_mC_cm2 if ch.tau_s > 0.0 else 0.0
    cell._charge = ChargeState(remaining + dq_mC if tau > 0.0 else 0.0, tau, voltage_V)
    cell._memo = None
