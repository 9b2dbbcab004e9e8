"""A perovskite solar cell the simulated instruments measure: single diode + mobile ions + capacitance +
degradation + halide segregation. The model and its equations are documented in docs/simulation.md.

Conventions: voltage in V, current density in mA/cm² with the photocurrent positive (J(0 V) = Jsc > 0 under
light; a current *into* the cell's positive terminal, as under forward injection, is negative), irradiance in
suns (1 sun = 100 mW/cm² AM1.5G), temperature in K, time in s (degradation parameters in hours, as papers
quote them).

The steady state (ions equilibrated at every voltage) is exactly the single-diode equation, calibrated so
that the fresh cell gives ``jsc_mA_cm2`` and ``voc_V`` at 1 sun, 298.15 K. Out of equilibrium the ions leave
a bulk field δ that scales the collected photocurrent (ions.py). Time evolution at a constant voltage or
current goes through stepping.py: closed-form solutions over midpoint sub-steps with a stated error bound.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from mock_instruments import capacitance as cap
from mock_instruments import cell_admittance, diode, ions, spectrum, stepping
from mock_instruments import cell_dynamics as dyn
from mock_instruments import degradation as deg
from mock_instruments.capacitance import Trap
from mock_instruments.cell_dynamics import DAMAGE_MAX, ChargeState, DiodeParams, Path
from mock_instruments.stepping import OperatingPoint, check_conditions, check_step

T_REF_K = 298.15

# name -> (low, high, low inclusive, high inclusive, unit)
ELECTRICAL_PARAMETER_RANGES: dict[str, tuple[float, float, bool, bool, str]] = {
    "bandgap_eV": (0.5, 4.0, True, True, "eV"),
    "bandgap_tc_eV_K": (-2e-3, 2e-3, True, True, "eV/K"),
    "jsc_mA_cm2": (0.0, 100.0, False, True, "mA/cm²"),
    "voc_V": (0.0, 4.0, False, True, "V"),
    "ideality": (1.0, 5.0, True, True, ""),
    "rs_ohm_cm2": (0.0, 1e4, True, True, "Ω·cm²"),
    "rs_activation_eV": (-1.0, 1.0, True, True, "eV"),
    "rsh_ohm_cm2": (1.0, 1e12, False, True, "Ω·cm²"),
    "area_cm2": (0.0, 1e4, False, True, "cm²"),
    "thickness_nm": (1.0, 1e5, True, True, "nm"),
    "eps_r": (1.0, 1e4, True, True, ""),
    "n_a_cm3": (1e10, 1e21, True, True, "cm⁻³"),
    "v_bi_V": (0.0, 4.0, False, True, "V"),
}
PARAMETER_RANGES = {**ELECTRICAL_PARAMETER_RANGES, **ions.ION_PARAMETER_RANGES,
                    **deg.DEGRADATION_PARAMETER_RANGES}
# Absolute tolerances of the stepper for (dose, θ): a rate change that moves its increment by less than this
# is accepted whatever its relative size (reference hours; θ in units of the Avrami θc).
DOSE_TOLERANCE_H = 1e-7
THETA_TOLERANCE = 1e-6
M_EQ_LINEAR_V = 1e-4  # the equilibrium ion fill fraction is linearised this close to its cached voltage
RATES_SUNS_TOLERANCE = 1e-6  # the slow rates may use a current read under a light this much different


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


class SolarCellModel(Protocol):
    """What the simulated instruments may call; PerovskiteCell and TandemCell both satisfy it."""

    name: str

    @property
    def area_cm2(self) -> float: ...

    def advance(self, dt_s: float, voltage_V: float | None, suns: float, temperature_K: float) -> None: ...
    def advance_at_current(self, dt_s: float, j_mA_cm2: float, suns: float, temperature_K: float) -> None: ...
    def dwell_at_voltage(self, times_s: npt.ArrayLike, voltage_V: float, suns: float, temperature_K: float
                         ) -> np.ndarray: ...
    def dwell_at_current(self, times_s: npt.ArrayLike, j_mA_cm2: float, suns: float, temperature_K: float
                         ) -> np.ndarray: ...
    def current_density_mA_cm2(self, voltage_V: float, suns: float, temperature_K: float) -> float: ...
    def voltage_at_current_density(self, j_mA_cm2: float, suns: float, temperature_K: float) -> float: ...
    def capacitance_F(self, voltage_V: float, frequency_Hz: float, temperature_K: float,
                      suns: float = 0.0) -> float: ...
    def conductance_S(self, voltage_V: float, frequency_Hz: float, temperature_K: float,
                      suns: float = 0.0) -> float: ...
    def steady_state_jv(self, voltage_V: npt.ArrayLike, suns: float = 1.0,
                        temperature_K: float = 298.15) -> np.ndarray: ...
    def steady_voc_V(self, suns: float, temperature_K: float) -> float: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state(self, d: dict[str, Any]) -> None: ...
    def describe(self) -> dict[str, Any]: ...


class Thermal(NamedTuple):
    """What depends on temperature only (cached per temperature)."""

    a: float  # n·kT/q, V
    j0: float  # J0 of the fresh cell, mA/cm²
    rs: float  # Rs of the fresh cell, V per mA/cm²
    edge_eV: float  # absorption edge of the unsegregated absorber
    edge_factor: float  # Jph/Jph(298.15 K) of the fresh cell at that edge
    field_scale_V: float  # V_c of the ion collection factor
    deg_arrhenius: float  # A_T of the stress rate
    seg_source_per_h: float  # A_seg·g(x)
    tau_mix_h: float
    tau_cation_s: float
    tau_anion_s: float  # unsegregated


class Effects(NamedTuple):
    """What the present degradation and segregation do to the diode (cached per state)."""

    damage: float
    f_seg: float
    jph_scale: float
    dvoc_V: float  # Voc loss, applied through J0·exp(ΔVoc/a)
    rs_scale: float
    edge_shift_eV: float


@dataclass(kw_only=True)
class PerovskiteCell:
    """One perovskite junction. Parameters carry their unit in the name; the reference condition of
    ``jsc_mA_cm2`` and ``voc_V`` is the fresh cell at 1 sun, 298.15 K, ions equilibrated (steady state)."""

    name: str = "custom"
    # --- single diode ------------------------------------------------------------------------------
    bandgap_eV: float = 1.55  # at 298.15 K; sets dVoc/dT through J0(T) and Jph through the absorption edge
    bandgap_tc_eV_K: float = 3e-4  # dEg/dT (perovskites widen their gap when hot)
    jsc_mA_cm2: float = 24.0
    voc_V: float = 1.10  # J0 is calibrated to give this
    ideality: float = 1.5
    rs_ohm_cm2: float = 3.0  # at 298.15 K
    rs_activation_eV: float = 0.05  # Rs(T) = Rs·exp(Ea/k·(1/T − 1/298.15 K)): transport layers conduct better hot
    rsh_ohm_cm2: float = 5000.0
    area_cm2: float = 0.1
    # --- electrostatics (capacitance, Heiser–Mesli) ------------------------------------------------
    thickness_nm: float = 500.0
    eps_r: float = 30.0
    n_a_cm3: float = 1e17  # space-charge (Mott–Schottky) doping density
    v_bi_V: float = 0.9
    doping_type: str = "p"  # majority dopant of the absorber's depletion region: sets the sign of TID transients
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
    oc_stress_ratio: float = 2.0  # stress at 1-sun open circuit ÷ at the 1-sun MPP (fresh cell)
    reverse_stress_factor: float = 1.0  # reverse-bias stress k_rev·(exp(−V_j/V_rev) − 1), in MPP units
    reverse_stress_scale_V: float = 0.5  # V_rev
    reverse_breakdown_V: float = -3.0  # V_bd: the reverse-bias stress stops rising here (no breakdown branch)
    reversible_fraction: float = 0.2
    recovery_time_h: float = 10.0  # dark recovery time constant of the reversible part
    damage_share_jsc: float = 0.5
    damage_share_voc: float = 0.3
    damage_rs_growth: float = 1.0
    # --- halide segregation ------------------------------------------------------------------------
    br_fraction: float = 0.0
    seg_threshold_br: float = 0.2
    seg_time_h: float = 2.5  # Avrami θ_c at 1-sun open circuit, 298.15 K
    seg_avrami_n: float = 3.0
    seg_remix_h: float = 5.0
    seg_ea_eV: float = 0.3
    seg_dEg_eV: float = 0.0  # bandgap red-shift of the I-rich domains when fully segregated
    seg_voc_coupling: float = 0.7  # fraction of that shift lost from Voc
    seg_dea_anion_eV: float = 0.0  # drop of the halide migration Ea when fully segregated
    seg_absorption_share: float = 0.1  # volume share of the I-rich domains (they absorb below the edge)

    _ions: ions.IonState = field(init=False, repr=False, compare=False)
    _deg: deg.DegradationState = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, bounds in PARAMETER_RANGES.items():
            check_range(name, getattr(self, name), bounds, owner=self.name)
        if self.longterm_mode not in deg.LONGTERM_MODES:
            raise ValueError(f"{self.name}: longterm_mode = {self.longterm_mode!r}, "
                             f"allowed: {deg.LONGTERM_MODES}")
        if self.doping_type not in ions.DOPING_TYPES:
            raise ValueError(f"{self.name}: doping_type = {self.doping_type!r}, allowed: {ions.DOPING_TYPES}")
        self.traps = tuple(_as_trap(t, self.name) for t in self.traps)
        self._ions = ions.IonState()
        self._deg = deg.DegradationState()
        self._charge = ChargeState()
        self._cache: dict[tuple[float, float], DiodeParams] = {}
        self._consts: dict[tuple[float, float], tuple[float, ...]] = {}
        self._thermal_cache: dict[float, Thermal] = {}
        self._effects_cache: tuple[int, Effects] | None = None
        self._terms = deg.shape_terms(self)
        self._step_history: tuple[Any, ...] | None = None  # stepping.py's record of the last step
        self._weights_cache: dict[float, tuple[float, float, float]] = {}
        self._m_eq_cache: dict[float, tuple[float, float, float]] = {}
        self._memo: tuple[float, float, float, float] | None = None  # (V, suns, T, J) at the present state
        self._w_hint = 0.0  # the last Lambert W solved: a warm start for the next J(V) nearby
        self._filter: tuple[float, float] | None = None  # (Eg, dEg/dT) of a junction in front (tandem)
        self._fresh = False
        self._version = 0  # counts state changes (a tandem's memo of its split depends on both subcells')
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
        self._eg0 = self.bandgap_eV - self.bandgap_tc_eV_K * T_REF_K  # 0 K intercept of the linear Eg(T)
        self._jsq_ref = spectrum.photocurrent_limit_mA_cm2(self.bandgap_eV)
        self._n_screen = ions.screening_density_cm3(self.eps_r, self.v_bi_V, self.thickness_nm)
        self._cache.clear()
        with self.fresh():
            v = np.linspace(0.0, voc, 2001)
            j = self.steady_state_jv(v)
            i = int(np.argmax(v * j))
            d = self._diode(1.0, T_REF_K)
            rho_mpp = d.j0 * math.expm1((v[i] + j[i] * d.rs) / d.a) / jph
            rho_oc = d.j0 * math.expm1(voc / d.a) / jph
        self._vmpp_ref = float(v[i])
        self._weights = deg.stress_weights(self, rho_mpp, rho_oc)

    def _edge_factor(self, edge_eV: float, temperature_K: float) -> float:
        """Jph relative to the reference: the AM1.5G photons between the absorption edge and, in a tandem's
        bottom cell, the edge of the junction in front (which moves with temperature too)."""
        jsq = spectrum.photocurrent_limit_mA_cm2(edge_eV)
        if self._filter is None:
            return jsq / self._jsq_ref
        eg_front, tc_front = self._filter
        front = spectrum.photocurrent_limit_mA_cm2(eg_front + tc_front * (temperature_K - T_REF_K))
        return (jsq - front) / (self._jsq_ref - spectrum.photocurrent_limit_mA_cm2(eg_front))

    def _edge_factor_array(self, edge_eV: np.ndarray, temperature_K: float) -> np.ndarray:
        """:meth:`_edge_factor` for several edges."""
        jsq = spectrum.photocurrent_limit_array(edge_eV)
        if self._filter is None:
            return np.asarray(jsq / self._jsq_ref)
        eg_front, tc_front = self._filter
        front = spectrum.photocurrent_limit_mA_cm2(eg_front + tc_front * (temperature_K - T_REF_K))
        ref = spectrum.photocurrent_limit_mA_cm2(self.bandgap_eV) - spectrum.photocurrent_limit_mA_cm2(eg_front)
        return np.asarray((jsq - front) / ref)

    def _thermal(self, temperature_K: float) -> Thermal:
        th = self._thermal_cache.get(temperature_K)
        if th is not None:
            return th
        t = temperature_K
        inv = 1.0 / t - 1.0 / T_REF_K
        n_k = self.ideality * diode.BOLTZMANN_EV_K
        edge = self.bandgap_at_eV(t)
        tau = [ions.heiser_mesli_tau_s(ions.diffusion_cm2_s(d0, ea, t), t, self.eps_r, self.n_a_cm3)
               for d0, ea in ((self.d0_cation_cm2_s, self.ea_cation_eV), (self.d0_anion_cm2_s, self.ea_anion_eV))]
        th = Thermal(a=n_k * t, j0=self._j0_ref * (t / T_REF_K) ** 3 * math.exp(-self._eg0 / n_k * inv),
                     rs=self.rs_ohm_cm2 * 1e-3 * math.exp(self.rs_activation_eV / diode.BOLTZMANN_EV_K * inv),
                     edge_eV=edge, edge_factor=self._edge_factor(edge, t),
                     field_scale_V=self.ion_field_scale_V * t / T_REF_K,
                     deg_arrhenius=deg.arrhenius_factor(self.degradation_ea_eV, t),
                     seg_source_per_h=deg.segregation_source_per_h(self, t), tau_mix_h=deg.remix_time_h(self, t),
                     tau_cation_s=tau[0], tau_anion_s=tau[1])
        if len(self._thermal_cache) > 256:
            self._thermal_cache.clear()
        self._thermal_cache[temperature_K] = th
        return th

    def _effects(self) -> Effects:
        hit = self._effects_cache
        if hit is not None and hit[0] == self._version:
            return hit[1]
        d = min(deg.total_damage(self, self._deg), DAMAGE_MAX)
        f = deg.segregated_fraction(self, self._deg.seg_theta_h)
        jph_scale, dvoc, rs_scale, shift = self._damage_effects(d, f, math)
        out = Effects(d, f, jph_scale, dvoc, rs_scale, shift)
        self._effects_cache = (self._version, out)
        return out

    def _diode(self, suns: float, temperature_K: float) -> DiodeParams:
        """The diode at these conditions with the present degradation and segregation (cached per state)."""
        key = (suns, temperature_K)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        th = self._thermal(temperature_K)
        if self._fresh:
            j0, rs, factor, jph_scale = th.j0, th.rs, th.edge_factor, 1.0
        else:
            e = self._effects()
            j0, rs, jph_scale = th.j0 * math.exp(e.dvoc_V / th.a), th.rs * e.rs_scale, e.jph_scale
            factor = th.edge_factor if e.edge_shift_eV == 0.0 else self._edge_factor(
                th.edge_eV - e.edge_shift_eV, temperature_K)
        jph = self._jph_ref * suns * factor * jph_scale if suns > 0.0 else 0.0
        out = DiodeParams(jph, j0, rs, self.rsh_ohm_cm2 * 1e-3, th.a)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = out
        return out

    def _damage_effects(self, d: Any, f_seg: Any, xp: Any) -> tuple[Any, Any, Any, Any]:
        """(Jph factor, Voc loss in V, Rs factor, absorption-edge shift in eV) of damage d and segregated
        fraction f; ``xp`` is ``math`` for floats or ``numpy`` for arrays."""
        dvoc = -self.damage_share_voc * self.voc_V * xp.log1p(-d) + f_seg * self.seg_dEg_eV * self.seg_voc_coupling
        # A cell that has lost all its Voc is dead: J0 stops at ≈ Jph instead of growing without bound (which
        # would also leave the explicit diode solution without significant digits).
        dvoc = np.minimum(dvoc, self.voc_V) if xp is np else min(dvoc, self.voc_V)
        return ((1.0 - d) ** self.damage_share_jsc, dvoc, 1.0 + self.damage_rs_growth * d / (1.0 - d),
                f_seg * self.seg_dEg_eV * self.seg_absorption_share)

    def _changed(self) -> None:
        self._cache.clear()
        self._consts.clear()
        self._memo = None
        self._version += 1

    # --- ions --------------------------------------------------------------------------------------
    def _n_ion_eff(self, suns: float) -> tuple[float, float]:
        act = ions.cation_activity(suns, self.cation_activation_suns)
        return self.n_ion_anion_cm3, self.n_ion_cation_cm3 * act

    def _ion_weights(self, suns: float) -> tuple[float, float, float]:
        """(w_anion, w_cation, Σw) at this irradiance."""
        hit = self._weights_cache.get(suns)
        if hit is None:
            wa, wc = ions.screening_weights(*self._n_ion_eff(suns), self._n_screen)
            hit = (wa, wc, wa + wc)
            if len(self._weights_cache) > 64:
                self._weights_cache.clear()
            self._weights_cache[suns] = hit
        return hit

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

    def _field_scale_V(self, temperature_K: float) -> float:
        return self._thermal(temperature_K).field_scale_V

    def _eta(self, voltage_V: float, suns: float, temperature_K: float) -> float:
        wa, wc, wsum = self._ion_weights(suns)
        io = self._ions
        delta = wa * io.v_anion_V + wc * io.v_cation_V - wsum * voltage_V
        return ions.collection_efficiency(delta, self.ion_loss_ratio, self._field_scale_V(temperature_K))

    def _m_eq(self, voltage_V: float, temperature_K: float) -> float:
        """Heiser–Mesli equilibrium fill fraction at V. Cached with its slope: within M_EQ_LINEAR_V of the
        cached voltage the tangent is used (error ≈ m''·ΔV²/2 < 1e-8), since a tandem's subcell voltages
        drift a little at every reading."""
        hit = self._m_eq_cache.get(temperature_K)
        if hit is not None and abs(voltage_V - hit[0]) < M_EQ_LINEAR_V:
            return hit[1] + hit[2] * (voltage_V - hit[0])
        m = cap.fill_fraction_eq(voltage_V, temperature_K, self.v_bi_V, self.n_a_cm3, self.eps_r,
                                 self.thickness_nm)
        dv = 1e-6
        slope = (cap.fill_fraction_eq(voltage_V + dv, temperature_K, self.v_bi_V, self.n_a_cm3, self.eps_r,
                                      self.thickness_nm) - m) / dv
        if len(self._m_eq_cache) > 64:
            self._m_eq_cache.clear()
        self._m_eq_cache[temperature_K] = (voltage_V, m, slope)
        return m

    # --- public API: electrical --------------------------------------------------------------------
    def _constants(self, suns: float, temperature_K: float) -> tuple[float, ...]:
        """What J(V) needs at the present state, precomputed (cached until the state changes): Jph, J0, Rs,
        Rsh, a, Σ w_s·v_s, Σ w_s, r, V_c, and the Lambert-W constants ln(Rs·Rsh·J0/(a·g)), Rsh/(a·g), g."""
        key = (suns, temperature_K)
        hit = self._consts.get(key)
        if hit is not None:
            return hit
        jph, j0, rs, rsh, a = self._diode(suns, temperature_K)
        wa, wc, wsum = self._ion_weights(suns)
        io = self._ions
        g = rs + rsh
        out = (jph, j0, rs, rsh, a, wa * io.v_anion_V + wc * io.v_cation_V, wsum, self.ion_loss_ratio,
               self._thermal(temperature_K).field_scale_V,
               math.log(rs * rsh * j0 / (a * g)) if rs > 1e-12 else 0.0, rsh / (a * g), g)
        self._consts[key] = out
        return out

    def _j(self, voltage_V: float, c: tuple[float, ...], slope: bool) -> tuple[float, float]:
        """(J, dJ/dV) from :meth:`_constants` (dJ/dV only with ``slope``): the inner loop of every reading
        and of the tandem's voltage split, hence spelt out."""
        jph, j0, rs, rsh, a, ion_sum, wsum, r, vc, log_c, k1, g = c
        eta, deta_dv = 1.0, 0.0
        if jph > 0.0 and r > 0.0:
            x = (wsum * voltage_V - ion_sum) / vc
            eta = 0.0 if x > 700.0 else (1.0 + r) / (1.0 + r * math.exp(x))
            deta_dv = -wsum * eta * (1.0 - eta / (1.0 + r)) / vc
        jph *= eta
        if rs <= 1e-12:
            j = jph - j0 * math.expm1(voltage_V / a) - voltage_V / rsh
        else:
            w = self._w_hint = diode.lambertw_exp(log_c + k1 * (rs * (jph + j0) + voltage_V), self._w_hint)
            j = (rsh * (jph + j0) - voltage_V) / g - (a / rs) * w
        if not slope:
            return j, 0.0
        gd = (j0 / a) * math.exp(min((voltage_V + j * rs) / a, 700.0)) + 1.0 / rsh
        return j, (jph / eta * deta_dv - gd) / (1.0 + rs * gd) if eta > 0.0 else -gd / (1.0 + rs * gd)

    def _dc_current(self, voltage_V: float, suns: float, temperature_K: float) -> float:
        memo = self._memo
        if memo is not None and memo[0] == voltage_V and memo[1] == suns and memo[2] == temperature_K:
            return memo[3]
        j = self._j(voltage_V, self._constants(suns, temperature_K), False)[0]
        self._memo = (voltage_V, suns, temperature_K, j)
        return j

    def current_density_mA_cm2(self, voltage_V: float, suns: float, temperature_K: float) -> float:
        """Instantaneous J(V) with the present ion, degradation and charging state (photocurrent positive).
        At the voltage the cell was last driven to it includes what is left of the charging current."""
        check_conditions(suns, temperature_K)
        voltage_V = float(voltage_V)
        j = self._dc_current(voltage_V, suns, temperature_K)
        ch = self._charge
        if ch.q_mC_cm2 != 0.0 and ch.tau_s > 0.0 and voltage_V == ch.voltage_V:
            j -= ch.q_mC_cm2 / ch.tau_s
        return j

    def charging_current_mA_cm2(self) -> float:
        """The part of the present current that charges the junction capacitance (negative after a step up)."""
        ch = self._charge
        return -ch.q_mC_cm2 / ch.tau_s if ch.tau_s > 0.0 else 0.0

    def current_and_slope(self, voltage_V: float, suns: float, temperature_K: float, steady: bool = False
                          ) -> tuple[float, float]:
        """(J, dJ/dV) at the present state (steady: ions equilibrated at voltage_V)."""
        c = self._constants(suns, temperature_K)
        if steady:
            c = (*c[:7], 0.0, *c[8:])  # no ionic field: η = 1
        return self._j(voltage_V, c, True)

    def voltage_at_current_density(self, j_mA_cm2: float, suns: float, temperature_K: float) -> float:
        """The terminal voltage at which the cell carries j (j = 0: open circuit), present state."""
        check_conditions(suns, temperature_K)
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
        check_conditions(suns, temperature_K)
        jph, j0, rs, rsh, a = self._diode(suns, temperature_K)
        return diode.current_from_voltage_array(np.asarray(voltage_V, dtype=float), jph, j0, rs, rsh, a)

    # --- time evolution ----------------------------------------------------------------------------
    def advance(self, dt_s: float, voltage_V: float | None, suns: float, temperature_K: float) -> None:
        """Evolve the cell over dt_s at a constant terminal voltage (None = open circuit), light and
        temperature (stepping.py: midpoint sub-steps with a stated error bound)."""
        if voltage_V is None:
            self.advance_at_current(dt_s, 0.0, suns, temperature_K)
            return
        check_conditions(suns, temperature_K)
        check_step(dt_s)
        dyn.charge_to(self, float(voltage_V), suns, temperature_K)
        if dt_s > 0.0:
            stepping.integrate(self, dt_s, "V", float(voltage_V), suns, temperature_K)

    def advance_at_current(self, dt_s: float, j_mA_cm2: float, suns: float, temperature_K: float) -> None:
        """Evolve the cell over dt_s while it carries the constant current density j (photocurrent sign:
        j = 0 is open circuit, j < 0 is forward injection); the voltage follows the ions and the aging."""
        check_conditions(suns, temperature_K)
        check_step(dt_s)
        if dt_s > 0.0:
            stepping.integrate(self, dt_s, "J", float(j_mA_cm2), suns, temperature_K)

    def dwell_at_voltage(self, times_s: npt.ArrayLike, voltage_V: float, suns: float, temperature_K: float
                         ) -> np.ndarray:
        """J (mA/cm²) at each offset of ``times_s`` (s from now, non-decreasing) while the cell is held at
        ``voltage_V``; the cell ends at the last offset. Equals advancing reading by reading, within the
        stepper's tolerance, at a fraction of the cost."""
        check_conditions(suns, temperature_K)
        t = stepping.check_times(times_s)
        v = float(voltage_V)
        dyn.charge_to(self, v, suns, temperature_K)
        return stepping.dwell(self, t, "V", v, suns, temperature_K,
                              lambda dt: stepping.integrate(self, dt, "V", v, suns, temperature_K))

    def dwell_at_current(self, times_s: npt.ArrayLike, j_mA_cm2: float, suns: float, temperature_K: float
                         ) -> np.ndarray:
        """Terminal voltage at each offset of ``times_s`` while the cell carries ``j_mA_cm2``."""
        check_conditions(suns, temperature_K)
        t = stepping.check_times(times_s)
        j = float(j_mA_cm2)
        return stepping.dwell(self, t, "J", j, suns, temperature_K,
                              lambda dt: stepping.integrate(self, dt, "J", j, suns, temperature_K))

    # --- stepping hooks (stepping.Model) -----------------------------------------------------------
    def _rate_tolerances(self) -> tuple[float, float]:
        return DOSE_TOLERANCE_H, THETA_TOLERANCE * self.seg_time_h

    def _snapshot(self) -> tuple[ions.IonState, deg.DegradationState, ChargeState]:
        io, st, ch = self._ions, self._deg, self._charge
        return (ions.IonState(io.v_anion_V, io.v_cation_V, io.m_anion, io.m_cation),
                deg.DegradationState(st.dose_h, st.reversible, st.seg_theta_h),
                ChargeState(ch.q_mC_cm2, ch.tau_s, ch.voltage_V))

    def _restore(self, snapshot: tuple[ions.IonState, deg.DegradationState, ChargeState]) -> None:
        self._ions, self._deg, self._charge = snapshot
        self._changed()

    def slow_rates(self, voltage_V: float, j_mA_cm2: float, suns: float, temperature_K: float
                   ) -> tuple[float, float]:
        """(stress in reference hours per hour, segregation drive in θ-hours per hour) while the cell sits at
        ``voltage_V`` carrying ``j_mA_cm2`` (degradation.py)."""
        return dyn.slow_rates(self, voltage_V, j_mA_cm2, suns, temperature_K)

    def _operating_point(self, mode: str, value: float, suns: float, temperature_K: float) -> OperatingPoint:
        if mode == "V":
            memo = self._memo
            if (memo is not None and memo[0] == value and memo[2] == temperature_K
                    and abs(memo[1] - suns) <= RATES_SUNS_TOLERANCE * suns):
                j = memo[3]  # the last reading, under a lamp that drifted by < 1e-6: the rates cannot tell
            else:
                j = self._dc_current(value, suns, temperature_K)
            v, reading = value, j
        else:
            j, v = value, self.voltage_at_current_density(value, suns, temperature_K)
            reading = v
        return OperatingPoint((v,), dyn.slow_rates(self, v, j, suns, temperature_K), reading)

    def _state_version(self) -> Any:
        return self._version

    def _reading(self, mode: str, value: float, suns: float, temperature_K: float) -> float:
        if mode == "V":
            return self.current_density_mA_cm2(value, suns, temperature_K)
        return self.voltage_at_current_density(value, suns, temperature_K)

    def _apply(self, h_s: float, op0: OperatingPoint, opm: OperatingPoint, suns: float,
               temperature_K: float) -> None:
        v0 = op0.voltages[0]
        dyn.apply_junction(self, h_s, v0, 2.0 * opm.voltages[0] - v0, opm.rates, suns, temperature_K)

    def _apply_junction(self, h_s: float, v0: float, v1: float, rates: tuple[float, ...], suns: float,
                        temperature_K: float) -> None:
        dyn.apply_junction(self, h_s, v0, v1, rates, suns, temperature_K)

    def _path(self, t_s: np.ndarray, h_s: float, v0: float, v1: float, rates: tuple[float, ...], suns: float,
              temperature_K: float) -> Path:
        return dyn.path(self, t_s, h_s, v0, v1, rates, suns, temperature_K)

    def _path_readings(self, t_s: np.ndarray, h_s: float, op0: OperatingPoint, opm: OperatingPoint, mode: str,
                       value: float, suns: float, temperature_K: float) -> np.ndarray:
        return dyn.path_readings(self, t_s, h_s, op0, opm, mode, value, suns, temperature_K)

    # --- charging current --------------------------------------------------------------------------
    def junction_capacitance_F_cm2(self, voltage_V: float, temperature_K: float, suns: float = 0.0) -> float:
        """C_sc + C_chem per cm² at V with the present ions: the capacitance the LCR meter reads above the
        trap and ion responses, and the one a voltage step charges."""
        return dyn.junction_capacitance_F_cm2(self, voltage_V, temperature_K, suns)

    # --- admittance (cell_admittance.py) ----------------------------------------------------------------
    def _ionic_sigma(self, voltage_V: float, suns: float, temperature_K: float) -> float:
        return cell_admittance.ionic_sigma(self, voltage_V, suns, temperature_K)

    def _admittance(self, voltage_V: float, frequency_Hz: float, temperature_K: float, suns: float
                    ) -> complex:
        return cell_admittance.admittance_S(self, voltage_V, frequency_Hz, temperature_K, suns)

    def trap_levels(self) -> list[tuple[Trap, float]]:
        """(trap, density in cm⁻³) of each trap band, a band that follows a mobile species included."""
        return cell_admittance.trap_levels(self)

    def capacitance_F(self, voltage_V: float, frequency_Hz: float, temperature_K: float,
                      suns: float = 0.0) -> float:
        """Parallel-model capacitance Cp (F) an LCR meter reads, including the present ionic transient."""
        y = self._admittance(voltage_V, frequency_Hz, temperature_K, suns)
        return y.imag / (2 * math.pi * frequency_Hz)

    def conductance_S(self, voltage_V: float, frequency_Hz: float, temperature_K: float,
                      suns: float = 0.0) -> float:
        """Parallel-model conductance Gp (S)."""
        return self._admittance(voltage_V, frequency_Hz, temperature_K, suns).real

    # --- state -------------------------------------------------------------------------------------
    def bandgap_at_eV(self, temperature_K: float) -> float:
        """Band gap of the (unsegregated) absorber at this temperature: Eg + dEg/dT·(T − 298.15 K)."""
        return self.bandgap_eV + self.bandgap_tc_eV_K * (temperature_K - T_REF_K)

    def bandgap_eff_eV(self, temperature_K: float = T_REF_K) -> float:
        """Optical (emission) gap: the I-rich domains' gap once segregated, at this temperature."""
        return self.bandgap_at_eV(temperature_K) - self.segregated_fraction() * self.seg_dEg_eV

    def segregated_fraction(self) -> float:
        return deg.segregated_fraction(self, self._deg.seg_theta_h)

    def damage(self) -> float:
        """Present fractional damage (≈ relative PCE loss), reversible part included."""
        return deg.total_damage(self, self._deg)

    @contextlib.contextmanager
    def fresh(self) -> Iterator[None]:
        """Within the block the diode parameters are those of the undegraded, unsegregated cell."""
        saved, self._fresh = self._fresh, True
        self._changed()
        try:
            yield
        finally:
            self._fresh = saved
            self._changed()

    # --- bookkeeping -------------------------------------------------------------------------------
    def copy(self) -> PerovskiteCell:
        return copy.deepcopy(self)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ions": asdict(self._ions), "degradation": asdict(self._deg),
                "charge": asdict(self._charge)}

    def load_state(self, d: dict[str, Any]) -> None:
        self._ions = ions.IonState(**{k: float(v) for k, v in d["ions"].items()})
        self._deg = deg.DegradationState(**{k: float(v) for k, v in d["degradation"].items()})
        self._charge = ChargeState(**{k: float(v) for k, v in d.get("charge", {}).items()})
        self._changed()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.init:
                v = getattr(self, f.name)
                out[f.name] = [t._asdict() for t in v] if f.name == "traps" else v
        out["derived"] = {
            "jph_ref_mA_cm2": self._jph_ref, "j0_ref_mA_cm2": self._j0_ref, "vmpp_ref_V": self._vmpp_ref,
            "n_screen_cm3": self._n_screen, "stress_weights": asdict(self._weights),
            "tau_anion_298K_s": self.ion_tau_s("anion", T_REF_K),
            "tau_cation_298K_s": self.ion_tau_s("cation", T_REF_K),
        }
        return out


def _as_trap(t: Any, owner: str) -> Trap:
    trap = Trap(**t) if isinstance(t, dict) else Trap(*t)
    check_range("trap depth_eV", trap.depth_eV, (0.0, 3.0, False, True, "eV"), owner)
    check_range("trap density_cm3", trap.density_cm3, (0.0, 1e21, True, True, "cm⁻³"), owner)
    check_range("trap xi0_s_K2", trap.xi0_s_K2, (0.0, 1e20, False, True, "s⁻¹K⁻²"), owner)
    check_range("trap per_ion", trap.per_ion, (0.0, 1e3, True, True, ""), owner)
    if trap.follows not in cap.TRAP_FOLLOWS:
        raise ValueError(f"{owner}: trap follows = {trap.follows!r}, allowed: {cap.TRAP_FOLLOWS}")
    if trap.per_ion and not trap.follows:
        raise ValueError(f"{owner}: trap per_ion = {trap.per_ion!r} needs follows = 'anion' or 'cation'")
    return trap


from mock_instruments.tandem import TandemCell  # noqa: E402  (re-exported: the public device API)

__all__ = ["PerovskiteCell", "SolarCellModel", "TandemCell", "Trap", "check_range"]
