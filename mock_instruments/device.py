"""A perovskite solar cell the simulated instruments measure: single diode + mobile ions + capacitance +
degradation + halide segregation. The model and its equations are documented in docs/simulation.md.

Conventions: voltage in V, current density in mA/cm² with the photocurrent positive (J(0 V) = Jsc > 0 under
light), irradiance in suns (1 sun = 100 mW/cm² AM1.5G), temperature in K, time in s (degradation parameters
in hours, as papers quote them).

The steady state (ions equilibrated at every voltage) is exactly the single-diode equation, calibrated so
that the fresh cell gives ``jsc_mA_cm2`` and ``voc_V`` at 1 sun, 298.15 K. Out of equilibrium the ions leave
a bulk field δ that scales the collected photocurrent (ions.py). Every state variable obeys a linear ODE at
constant conditions and :meth:`PerovskiteCell.advance` applies its closed-form solution, so a virtual-time
jump of 100 h costs the same as 1 s.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from mock_instruments import capacitance as cap
from mock_instruments import degradation as deg
from mock_instruments import diode, ions
from mock_instruments.capacitance import Trap

T_REF_K = 298.15
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)

# name -> (low, high, low inclusive, high inclusive, unit)
ELECTRICAL_PARAMETER_RANGES: dict[str, tuple[float, float, bool, bool, str]] = {
    "bandgap_eV": (0.5, 4.0, True, True, "eV"),
    "jsc_mA_cm2": (0.0, 100.0, False, True, "mA/cm²"),
    "voc_V": (0.0, 4.0, False, True, "V"),
    "ideality": (1.0, 5.0, True, True, ""),
    "rs_ohm_cm2": (0.0, 1e4, True, True, "Ω·cm²"),
    "rsh_ohm_cm2": (1.0, 1e12, False, True, "Ω·cm²"),
    "area_cm2": (0.0, 1e4, False, True, "cm²"),
    "thickness_nm": (1.0, 1e5, True, True, "nm"),
    "eps_r": (1.0, 1e4, True, True, ""),
    "n_a_cm3": (1e10, 1e21, True, True, "cm⁻³"),
    "v_bi_V": (0.0, 4.0, False, True, "V"),
}
PARAMETER_RANGES = {**ELECTRICAL_PARAMETER_RANGES, **ions.ION_PARAMETER_RANGES,
                    **deg.DEGRADATION_PARAMETER_RANGES}


def check_range(name: str, value: float, bounds: tuple[float, float, bool, bool, str],
                owner: str = "") -> None:
    """Raise ValueError naming the parameter, its value and the allowed range unless value is inside."""
    lo, hi, lo_inc, hi_inc, unit = bounds
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and (
        (value >= lo if lo_inc else value > lo) and (value <= hi if hi_inc else value < hi))
    if not ok:
        rng = f"{'[' if lo_inc else '('}{lo:g}, {hi:g}{']' if hi_inc else ')'}"
        prefix = f"{owner}: " if owner else ""
        unit_txt = f" {unit}" if unit else ""
        raise ValueError(f"{prefix}{name} = {value!r} is outside the allowed range {rng}{unit_txt}")


def _check_conditions(suns: float, temperature_K: float) -> None:
    if not temperature_K > 0.0 or not math.isfinite(temperature_K):
        raise ValueError(f"temperature_K = {temperature_K!r} is outside the allowed range (0, inf) K")
    if not suns >= 0.0 or not math.isfinite(suns):
        raise ValueError(f"suns = {suns!r} is outside the allowed range [0, inf)")


class SolarCellModel(Protocol):
    """What the simulated instruments may call; PerovskiteCell and TandemCell both satisfy it."""

    name: str

    @property
    def area_cm2(self) -> float: ...

    def advance(self, dt_s: float, voltage_V: float | None, suns: float, temperature_K: float) -> None: ...
    def current_density_mA_cm2(self, voltage_V: float, suns: float, temperature_K: float) -> float: ...
    def voltage_at_current_density(self, j_mA_cm2: float, suns: float, temperature_K: float) -> float: ...
    def capacitance_F(self, voltage_V: float, frequency_Hz: float, temperature_K: float,
                      suns: float = 0.0) -> float: ...
    def conductance_S(self, voltage_V: float, frequency_Hz: float, temperature_K: float,
                      suns: float = 0.0) -> float: ...
    def steady_state_jv(self, voltage_V: npt.ArrayLike, suns: float = 1.0,
                        temperature_K: float = 298.15) -> np.ndarray: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state(self, d: dict[str, Any]) -> None: ...
    def describe(self) -> dict[str, Any]: ...


@dataclass(kw_only=True)
class PerovskiteCell:
    """One perovskite junction. Parameters carry their unit in the name; the reference condition of
    ``jsc_mA_cm2`` and ``voc_V`` is the fresh cell at 1 sun, 298.15 K, ions equilibrated (steady state)."""

    name: str = "custom"
    # --- single diode ------------------------------------------------------------------------------
    bandgap_eV: float = 1.55  # sets dVoc/dT through J0(T) ∝ T³·exp(−Eg/(n·k·T))
    jsc_mA_cm2: float = 24.0
    voc_V: float = 1.10  # J0 is calibrated to give this
    ideality: float = 1.5
    rs_ohm_cm2: float = 3.0
    rsh_ohm_cm2: float = 5000.0
    area_cm2: float = 0.1
    # --- electrostatics (capacitance, Heiser–Mesli) ------------------------------------------------
    thickness_nm: float = 500.0
    eps_r: float = 30.0
    n_a_cm3: float = 1e17  # space-charge (Mott–Schottky) doping density
    v_bi_V: float = 0.9
    # --- mobile ions -------------------------------------------------------------------------------
    ea_anion_eV: float = 0.30
    d0_anion_cm2_s: float = 1e-6
    n_ion_anion_cm3: float = 5e15
    ea_cation_eV: float = 0.25
    d0_cation_cm2_s: float = 1e-6
    n_ion_cation_cm3: float = 0.0  # light-activated set (FA⁺/MA⁺), mobile only under illumination
    cation_activation_suns: float = 0.1  # half-activation irradiance of the cation set
    ion_loss_ratio: float = 0.05  # r in η(δ) = (1 + r)/(1 + r·exp(−δ/V_c))
    ion_field_scale_V: float = 0.2  # V_c at 298.15 K (∝ T)
    # --- traps for admittance spectroscopy ---------------------------------------------------------
    traps: tuple[Trap, ...] = ()
    # --- degradation -------------------------------------------------------------------------------
    burnin_fraction: float = 0.05
    burnin_time_h: float = 20.0
    longterm_rate_per_h: float = 1e-4
    longterm_mode: str = "linear"
    degradation_ea_eV: float = 0.5  # Arrhenius acceleration of the stress rate, T_ref = 298.15 K
    light_exponent: float = 1.0
    dark_stress_fraction: float = 0.02
    bias_accel_per_V: float = 2.0  # exp(β·(V − V_mpp,ref)): open circuit ages faster than MPP
    reversible_fraction: float = 0.2
    recovery_time_h: float = 10.0  # dark recovery time constant of the reversible part
    damage_share_jsc: float = 0.5
    damage_share_voc: float = 0.3
    damage_rs_growth: float = 1.0
    # --- halide segregation ------------------------------------------------------------------------
    br_fraction: float = 0.0
    seg_threshold_br: float = 0.2
    seg_time_h: float = 2.5  # Avrami θ_c at 1 sun, 298.15 K
    seg_avrami_n: float = 3.0
    seg_remix_h: float = 5.0
    seg_ea_eV: float = 0.3
    seg_dEg_eV: float = 0.0  # bandgap red-shift of the I-rich domains when fully segregated
    seg_voc_coupling: float = 0.7  # fraction of that shift lost from Voc
    seg_dea_anion_eV: float = 0.0  # drop of the halide migration Ea when fully segregated

    _ions: ions.IonState = field(init=False, repr=False, compare=False)
    _deg: deg.DegradationState = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, bounds in PARAMETER_RANGES.items():
            check_range(name, getattr(self, name), bounds, owner=self.name)
        if self.longterm_mode not in deg.LONGTERM_MODES:
            raise ValueError(f"{self.name}: longterm_mode = {self.longterm_mode!r}, "
                             f"allowed: {deg.LONGTERM_MODES}")
        self.traps = tuple(_as_trap(t, self.name) for t in self.traps)
        self._ions = ions.IonState()
        self._deg = deg.DegradationState()
        self._cache: dict[tuple[float, float], tuple[float, float, float, float, float]] = {}
        self._fresh_voc: dict[tuple[float, float], float] = {}
        self._calibrate()

    # --- calibration and diode parameters ----------------------------------------------------------
    def _calibrate(self) -> None:
        a = self.ideality * diode.thermal_voltage(T_REF_K)
        rs, rsh = self.rs_ohm_cm2 * 1e-3, self.rsh_ohm_cm2 * 1e-3
        jsc, voc = self.jsc_mA_cm2, self.voc_V
        jph, j0 = jsc, 0.0
        for _ in range(50):
            j0 = (jph - voc / rsh) / math.expm1(voc / a)
            if not j0 > 0.0:
                raise ValueError(f"{self.name}: rsh_ohm_cm2 = {self.rsh_ohm_cm2!r} is too small to reach "
                                 f"voc_V = {voc} at jsc_mA_cm2 = {jsc} (need rsh > voc/jsc)")
            new = jsc + j0 * math.expm1(jsc * rs / a) + jsc * rs / rsh
            if abs(new - jph) < 1e-14 * jph:
                jph = new
                break
            jph = new
        self._jph_ref, self._j0_ref = jph, j0
        self._n_screen = ions.screening_density_cm3(self.eps_r, self.v_bi_V, self.thickness_nm)
        self._fresh = True
        v = np.linspace(0.0, voc, 2001)
        p = v * self.steady_state_jv(v)
        self._vmpp_ref = float(v[int(np.argmax(p))])
        self._fresh = False

    def _diode(self, suns: float, temperature_K: float) -> tuple[float, float, float, float, float]:
        """(Jph, J0, Rs, Rsh, a) at these conditions with the present degradation and segregation."""
        key = (suns, temperature_K)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        n, t = self.ideality, temperature_K
        a = n * diode.thermal_voltage(t)
        j0 = self._j0_ref * (t / T_REF_K) ** 3 * math.exp(
            -self.bandgap_eV / (n * diode.BOLTZMANN_EV_K) * (1.0 / t - 1.0 / T_REF_K))
        jph, rs = self._jph_ref * suns, self.rs_ohm_cm2
        if not self._fresh:
            d = min(deg.total_damage(self, self._deg), 0.999)
            f_seg = deg.segregated_fraction(self, self._deg.seg_theta_h)
            jph *= (1.0 - d) ** self.damage_share_jsc
            dvoc = (-self.damage_share_voc * self.voc_V * math.log1p(-d)
                    + f_seg * self.seg_dEg_eV * self.seg_voc_coupling)
            j0 *= math.exp(dvoc / a)
            rs *= 1.0 + self.damage_rs_growth * d / (1.0 - d)
        out = (jph, j0, rs * 1e-3, self.rsh_ohm_cm2 * 1e-3, a)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = out
        return out

    # --- ions --------------------------------------------------------------------------------------
    def _n_ion_eff(self, suns: float) -> tuple[float, float]:
        act = ions.cation_activity(suns, self.cation_activation_suns)
        return self.n_ion_anion_cm3, self.n_ion_cation_cm3 * act

    def _ea_anion(self, f_seg: float) -> float:
        return self.ea_anion_eV - f_seg * self.seg_dea_anion_eV

    def ion_tau_s(self, species: str, temperature_K: float) -> float:
        """Ionic time constant τ(T) = kTεε0/(q²N_A·D(T)) of 'anion' or 'cation' (present state)."""
        return ions.heiser_mesli_tau_s(self.ion_diffusion_cm2_s(species, temperature_K), temperature_K,
                                       self.eps_r, self.n_a_cm3)

    def ion_diffusion_cm2_s(self, species: str, temperature_K: float) -> float:
        if species == "anion":
            f_seg = deg.segregated_fraction(self, self._deg.seg_theta_h)
            return ions.diffusion_cm2_s(self.d0_anion_cm2_s, self._ea_anion(f_seg), temperature_K)
        if species == "cation":
            return ions.diffusion_cm2_s(self.d0_cation_cm2_s, self.ea_cation_eV, temperature_K)
        raise ValueError(f"species = {species!r}, allowed: {ions.SPECIES}")

    def _delta_V(self, voltage_V: float, suns: float) -> float:
        na, nc = self._n_ion_eff(suns)
        wa, wc = ions.screening_weights(na, nc, self._n_screen)
        st = self._ions
        return wa * (st.v_anion_V - voltage_V) + wc * (st.v_cation_V - voltage_V)

    def _eta(self, voltage_V: float, suns: float, temperature_K: float) -> float:
        return ions.collection_efficiency(self._delta_V(voltage_V, suns), self.ion_loss_ratio,
                                          self.ion_field_scale_V * temperature_K / T_REF_K)

    # --- public API --------------------------------------------------------------------------------
    def current_density_mA_cm2(self, voltage_V: float, suns: float, temperature_K: float) -> float:
        """Instantaneous J(V) with the present ion and degradation state (photocurrent positive)."""
        _check_conditions(suns, temperature_K)
        jph, j0, rs, rsh, a = self._diode(suns, temperature_K)
        if jph > 0.0:
            jph *= self._eta(voltage_V, suns, temperature_K)
        return diode.current_from_voltage(float(voltage_V), jph, j0, rs, rsh, a)

    def current_and_slope(self, voltage_V: float, suns: float, temperature_K: float, steady: bool = False
                          ) -> tuple[float, float]:
        """(J, dJ/dV) at the present state (steady: ions equilibrated at voltage_V)."""
        jph, j0, rs, rsh, a = self._diode(suns, temperature_K)
        eta, deta_dv = 1.0, 0.0
        if jph > 0.0 and self.ion_loss_ratio > 0.0 and not steady:
            na, nc = self._n_ion_eff(suns)
            wsum = sum(ions.screening_weights(na, nc, self._n_screen))
            vc = self.ion_field_scale_V * temperature_K / T_REF_K
            eta = self._eta(voltage_V, suns, temperature_K)
            r = self.ion_loss_ratio
            # dη/dδ = η·(1 − η/(1 + r))/V_c ; dδ/dV = −Σw
            deta_dv = -wsum * eta * (1.0 - eta / (1.0 + r)) / vc
        j = diode.current_from_voltage(voltage_V, jph * eta, j0, rs, rsh, a)
        gd = (j0 / a) * math.exp(min((voltage_V + j * rs) / a, 700.0)) + 1.0 / rsh
        dj_dv = (jph * deta_dv - gd) / (1.0 + rs * gd)
        return j, dj_dv

    def voltage_at_current_density(self, j_mA_cm2: float, suns: float, temperature_K: float) -> float:
        """The terminal voltage at which the cell carries j (j = 0: open circuit), present state."""
        _check_conditions(suns, temperature_K)
        jph, j0, rs, rsh, a = self._diode(suns, temperature_K)
        v = diode.voltage_from_current(j_mA_cm2, jph, j0, rs, rsh, a)
        if jph <= 0.0 or self.ion_loss_ratio == 0.0:
            return v
        v = diode.voltage_from_current(j_mA_cm2, jph * self._eta(v, suns, temperature_K), j0, rs, rsh, a)
        return diode.solve_decreasing(lambda x: self.current_and_slope(x, suns, temperature_K), j_mA_cm2, v)

    def steady_voc_V(self, suns: float, temperature_K: float) -> float:
        """Open-circuit voltage with the ions equilibrated (present degradation state)."""
        jph, j0, rs, rsh, a = self._diode(suns, temperature_K)
        return diode.voltage_from_current(0.0, jph, j0, rs, rsh, a) if jph > 0.0 else 0.0

    def steady_state_jv(self, voltage_V: npt.ArrayLike, suns: float = 1.0,
                        temperature_K: float = 298.15) -> np.ndarray:
        """J(V) with the ions equilibrated at every point (an infinitely slow scan)."""
        _check_conditions(suns, temperature_K)
        jph, j0, rs, rsh, a = self._diode(suns, temperature_K)
        return diode.current_from_voltage_array(np.asarray(voltage_V, dtype=float), jph, j0, rs, rsh, a)

    def advance(self, dt_s: float, voltage_V: float | None, suns: float, temperature_K: float) -> None:
        """Evolve every state variable exactly over dt_s at constant conditions (None = open circuit)."""
        _check_conditions(suns, temperature_K)
        if not dt_s >= 0.0 or not math.isfinite(dt_s):
            raise ValueError(f"dt_s = {dt_s!r} is outside the allowed range [0, inf) s")
        if dt_s == 0.0:
            return
        bias = float(voltage_V) if voltage_V is not None else self.fresh_voc_V(suns, temperature_K)
        seg = self._advance_slow(dt_s, bias, suns, temperature_K)
        # Ions relax towards the applied bias, or the (end-of-step) steady-state Voc at open circuit.
        target = float(voltage_V) if voltage_V is not None else self.steady_voc_V(suns, temperature_K)
        self._advance_ions(dt_s, target, suns, temperature_K, seg)

    def _advance_slow(self, dt_s: float, stress_bias_V: float, suns: float, temperature_K: float
                      ) -> tuple[float, float, float]:
        """Degradation, recovery and segregation over the step; returns (f_seg start, end, θ start)."""
        st = self._deg
        stress = deg.stress_rate(self, suns, temperature_K, stress_bias_V, self._vmpp_ref)
        theta_start = st.seg_theta_h
        f_start = deg.segregated_fraction(self, theta_start)
        deg.advance_damage(self, st, dt_s / 3600.0, stress, suns, temperature_K)
        deg.advance_segregation(self, st, dt_s / 3600.0, suns, temperature_K)
        self._cache.clear()
        return f_start, deg.segregated_fraction(self, st.seg_theta_h), theta_start

    def _advance_ions(self, dt_s: float, target_V: float, suns: float, temperature_K: float,
                      seg: tuple[float, float, float]) -> None:
        k_anion = self._anion_decay_exponent(dt_s, temperature_K, seg[0], seg[1], seg[2], suns)
        k_cation = dt_s / self.ion_tau_s("cation", temperature_K)
        m_target = cap.fill_fraction_eq(target_V, temperature_K, self.v_bi_V, self.n_a_cm3, self.eps_r,
                                        self.thickness_nm)
        io = self._ions
        io.v_anion_V = ions.relax(io.v_anion_V, target_V, k_anion)
        io.m_anion = ions.relax(io.m_anion, m_target, k_anion)
        io.v_cation_V = ions.relax(io.v_cation_V, target_V, k_cation)
        io.m_cation = ions.relax(io.m_cation, m_target, k_cation)

    def _anion_decay_exponent(self, dt_s: float, temperature_K: float, f_start: float, f_end: float,
                              theta_start: float, suns: float) -> float:
        """∫dt/τ_anion over the step; τ changes only while segregation (which lowers Ea) evolves."""
        d_start = ions.diffusion_cm2_s(self.d0_anion_cm2_s, self._ea_anion(f_start), temperature_K)
        tau0 = ions.heiser_mesli_tau_s(d_start, temperature_K, self.eps_r, self.n_a_cm3)
        if self.seg_dea_anion_eV == 0.0 or abs(f_end - f_start) < 1e-13 or dt_s / tau0 > 800.0:
            return dt_s / tau0
        times = [0.5 * dt_s * (1.0 + float(x)) / 3600.0 for x in _GL_NODES]
        fs = deg.segregation_trajectory(self, theta_start, suns, temperature_K, times)
        kt = diode.BOLTZMANN_EV_K * temperature_K
        rates = [math.exp((f - f_start) * self.seg_dea_anion_eV / kt) for f in fs]  # lower Ea: faster
        return dt_s / tau0 * 0.5 * sum(float(w) * r for w, r in zip(_GL_WEIGHTS, rates, strict=True))

    def fresh_voc_V(self, suns: float, temperature_K: float) -> float:
        """Steady-state Voc of the undegraded cell (the open-circuit stress bias)."""
        key = (suns, temperature_K)
        voc = self._fresh_voc.get(key)
        if voc is None:
            with self.fresh():
                voc = self.steady_voc_V(suns, temperature_K)
            if len(self._fresh_voc) > 256:
                self._fresh_voc.clear()
            self._fresh_voc[key] = voc
        return voc

    @contextlib.contextmanager
    def fresh(self) -> Iterator[None]:
        """Within the block the diode parameters are those of the undegraded, unsegregated cell."""
        saved, self._fresh = self._fresh, True
        self._cache.clear()
        try:
            yield
        finally:
            self._fresh = saved
            self._cache.clear()

    def _admittance(self, voltage_V: float, frequency_Hz: float, temperature_K: float, suns: float
                    ) -> complex:
        _check_conditions(suns, temperature_K)
        if not frequency_Hz > 0.0 or not math.isfinite(frequency_Hz):
            raise ValueError(f"frequency_Hz = {frequency_Hz!r} is outside the allowed range (0, inf) Hz")
        na, nc = self._n_ion_eff(suns)
        m_eq = cap.fill_fraction_eq(voltage_V, temperature_K, self.v_bi_V, self.n_a_cm3, self.eps_r,
                                    self.thickness_nm)
        io = self._ions
        sigma = (ions.CAPACITANCE_SIGN["anion"] * na * (io.m_anion - m_eq)
                 + ions.CAPACITANCE_SIGN["cation"] * nc * (io.m_cation - m_eq)) / self.n_a_cm3
        steps = [(na / (2 * self.n_a_cm3), self.ion_tau_s("anion", temperature_K)),
                 (nc / (2 * self.n_a_cm3), self.ion_tau_s("cation", temperature_K))]
        j = self.current_and_slope(voltage_V, suns, temperature_K)[0]
        _, j0, rs, rsh, a = self._diode(suns, temperature_K)
        g_dc = diode.diode_slope(voltage_V, j, j0, 0.0, rsh, a) * 1e-3 * self.area_cm2
        return cap.admittance_S(voltage_V=voltage_V, frequency_Hz=frequency_Hz, temperature_K=temperature_K,
                                area_cm2=self.area_cm2, thickness_nm=self.thickness_nm, eps_r=self.eps_r,
                                n_a_cm3=self.n_a_cm3, v_bi_V=self.v_bi_V, bandgap_eV=self.bandgap_eV,
                                ionic_sigma=sigma, traps=self.traps, ion_steps=steps, g_dc_S=g_dc,
                                rs_ohm=rs * 1e3 / self.area_cm2)

    def capacitance_F(self, voltage_V: float, frequency_Hz: float, temperature_K: float,
                      suns: float = 0.0) -> float:
        """Parallel-model capacitance Cp (F) an LCR meter reads, including the present ionic transient."""
        y = self._admittance(voltage_V, frequency_Hz, temperature_K, suns)
        return y.imag / (2 * math.pi * frequency_Hz)

    def conductance_S(self, voltage_V: float, frequency_Hz: float, temperature_K: float,
                      suns: float = 0.0) -> float:
        """Parallel-model conductance Gp (S)."""
        return self._admittance(voltage_V, frequency_Hz, temperature_K, suns).real

    def bandgap_eff_eV(self) -> float:
        """Optical gap of the emitting phase: lowered by halide segregation."""
        return self.bandgap_eV - deg.segregated_fraction(self, self._deg.seg_theta_h) * self.seg_dEg_eV

    def segregated_fraction(self) -> float:
        return deg.segregated_fraction(self, self._deg.seg_theta_h)

    def damage(self) -> float:
        """Present fractional damage (≈ relative PCE loss), reversible part included."""
        return deg.total_damage(self, self._deg)

    # --- bookkeeping -------------------------------------------------------------------------------
    def copy(self) -> PerovskiteCell:
        return copy.deepcopy(self)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ions": asdict(self._ions), "degradation": asdict(self._deg)}

    def load_state(self, d: dict[str, Any]) -> None:
        self._ions = ions.IonState(**{k: float(v) for k, v in d["ions"].items()})
        self._deg = deg.DegradationState(**{k: float(v) for k, v in d["degradation"].items()})
        self._cache.clear()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.init:
                v = getattr(self, f.name)
                out[f.name] = [t._asdict() for t in v] if f.name == "traps" else v
        out["derived"] = {
            "jph_ref_mA_cm2": self._jph_ref, "j0_ref_mA_cm2": self._j0_ref, "vmpp_ref_V": self._vmpp_ref,
            "n_screen_cm3": self._n_screen,
            "tau_anion_298K_s": self.ion_tau_s("anion", T_REF_K),
            "tau_cation_298K_s": self.ion_tau_s("cation", T_REF_K),
        }
        return out


def _as_trap(t: Any, owner: str) -> Trap:
    trap = Trap(**t) if isinstance(t, dict) else Trap(*t)
    check_range("trap depth_eV", trap.depth_eV, (0.0, 3.0, False, True, "eV"), owner)
    check_range("trap density_cm3", trap.density_cm3, (0.0, 1e21, True, True, "cm⁻³"), owner)
    check_range("trap xi0_s_K2", trap.xi0_s_K2, (0.0, 1e20, False, True, "s⁻¹K⁻²"), owner)
    return trap


from mock_instruments.tandem import TandemCell  # noqa: E402  (re-exported: the public device API)

__all__ = ["PerovskiteCell", "SolarCellModel", "TandemCell", "Trap", "check_range"]
