"""Reference devices for the simulated bench (SCIENCE.md table) and :func:`preset`.

Each entry says which values come from the papers (marked "paper") and which are plausible fill-ins
("fill-in"); fill-ins were chosen to be typical of the literature and, where marked "fitted", tuned so the
model reproduces a paper figure (docs/simulation.md has the full table and the reasoning).

Sources: Xiang et al., J. Mater. Chem. A 14, 16493 (2026) (TID/TAS on FAPb(I1−xBrx)3); Fu et al. (1.79 eV
5-AVAI wide-gap cells and all-perovskite tandems: J–V, MPPT); Futscher et al., Mater. Horiz. 6, 1497 (2019).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Literal, overload

from mock_instruments.capacitance import Trap
from mock_instruments.device import PerovskiteCell
from mock_instruments.tandem import TandemCell

# Shared fill-ins for the p-i-n FAPb(I1−xBrx)3 series of the TID/TAS seed. Device J–V values are typical
# of such cells (fill-in); N_A, V_bi, ε_r, thickness are typical Mott–Schottky/TID values (fill-in): V_bi is
# below the seed's +1 V TID pulse so the pulse refills the whole zero-bias depletion region (m_eq(1 V) =
# 0.994), and every mobile-ion density stays ≤ 0.12·N_A (the TID formula N_ion ≈ 2·N_A·|ΔC|/C∞ needs N_ion ≪
# N_A). The absorber is p-type towards the electron-transport side (doping_type "p"): dark halide anions
# then give the seed's negative ΔC, FA⁺ under light a positive one (ions.py).
#
# Time constants (fill-in D0 with the paper's Ea): the seed records C(t) from milliseconds to seconds after
# the pulse; D0 is chosen so that every τ of the series lies in ≈ 20 ms – 2 s over 300 → 200 K, where an
# E4980A (5.6 ms a point, ≈ 4 ms dead time after the step, 10 s window) resolves it: τ_anion(300 K) 25–50 ms
# rising to 70–420 ms at 200 K, τ_FA⁺(300 K) = 0.5 s rising to 1.6–1.9 s.
#
# Traps (fill-in depths and ξ0; the links are the paper's): band II is the halide interstitial (Xiang et al.:
# its tDOS tracks the dark halide Ea and mobile-ion density; 5 % FAI raises it), so its density follows the
# mobile anions (0.5 per ion); band III is the deeper FA-related defect that governs FA⁺ migration under light,
# so its density follows the light-activatable FA⁺ set (1 per ion). ξ0 places both responses at ≤ 1.5 kHz at
# 300 K (band II 1.5 kHz, band III 250 Hz): C(f) is flat at the seed's 10 kHz over 200–300 K (Fig. S3), and
# each inflection stays inside 20 Hz – 2 MHz (≥ 50 Hz, ≤ 25 kHz) over the TAS range 280–350 K, a decade below
# the Rs·C roll-off (≈ 0.3–1 MHz).
_FAPBI_BASE: dict[str, Any] = dict(
    ideality=1.5, rs_ohm_cm2=2.0, rsh_ohm_cm2=3000.0, area_cm2=0.1, thickness_nm=600.0, eps_r=35.0,
    n_a_cm3=3e16, v_bi_V=0.85, doping_type="p", ion_loss_ratio=0.05, ion_field_scale_V=0.2,
    burnin_fraction=0.08, burnin_time_h=10.0, longterm_rate_per_h=4e-4, degradation_ea_eV=0.5,
    reversible_fraction=0.3, recovery_time_h=8.0,
)
BAND_II_PER_ANION = 0.5  # halide-interstitial trap band II per mobile halide (fill-in)
BAND_III_PER_CATION = 1.0  # FA-related trap band III per light-activatable FA⁺ (fill-in)


def _band_ii(depth_eV: float, xi0_s_K2: float) -> Trap:
    return Trap(depth_eV, 0.0, xi0_s_K2, follows="anion", per_ion=BAND_II_PER_ANION)


def _band_iii(depth_eV: float, xi0_s_K2: float) -> Trap:
    return Trap(depth_eV, 0.0, xi0_s_K2, follows="cation", per_ion=BAND_III_PER_CATION)


# The 1.79 eV wide-gap cells of Fu et al.: FA/Cs Pb(I0.6Br0.4)3 (Br fraction: fill-in from the usual 1.79 eV
# composition). Electrostatics, ions and traps are fill-ins. V_bi 1.15 V suits a 1.37 V-Voc wide-gap cell;
# it is above the seed's +1 V TID pulse, so a TID of these cells needs a pulse of ≥ V_bi + 0.15 V (1.3 V).
_WBG_BASE: dict[str, Any] = dict(
    bandgap_eV=1.79, area_cm2=0.1, thickness_nm=550.0, eps_r=25.0, n_a_cm3=5e16, v_bi_V=1.15,
    ion_loss_ratio=0.05, ion_field_scale_V=0.2, br_fraction=0.4, seg_time_h=6.0, seg_remix_h=12.0,
    seg_dea_anion_eV=0.0, light_exponent=1.0, degradation_ea_eV=0.5, dark_stress_fraction=0.02,
)

_TABLE: dict[str, dict[str, Any]] = {
    # p-i-n FAPbI3. paper: dark halide Ea 0.131 eV, FA⁺ Ea under light lower than the halide's.
    # fill-in: J–V (Eg 1.53, Voc 1.08, Jsc 25.0), N_ion 1.5e15 cm⁻³ (0.05·N_A), D0 5.3e-8 cm²/s
    # (τ_anion 50 ms at 300 K, 0.42 s at 200 K), FA⁺ set 1e15 cm⁻³ with Ea 0.09 eV and D0 1.08e-9 cm²/s
    # (τ 0.5 s at 300 K, 1.9 s at 200 K), band II 0.36 eV (ξ0 5.8e4), band III 0.46 eV (ξ0 4.7e5).
    "fapbi3": dict(_FAPBI_BASE, bandgap_eV=1.53, jsc_mA_cm2=25.0, voc_V=1.08,
                   ea_anion_eV=0.131, d0_anion_cm2_s=5.29e-8, n_ion_anion_cm3=1.5e15,
                   ea_cation_eV=0.09, d0_cation_cm2_s=1.08e-9, n_ion_cation_cm3=1e15,
                   traps=(_band_ii(0.36, 5.8e4), _band_iii(0.46, 4.7e5)), br_fraction=0.0),
    # FAPbI3 + 5 % FAI. paper: more iodine-interstitial (band II) states and a halide Ea of 0.063 eV (Fig. S7).
    # fill-in: N_ion 3.6e15 cm⁻³ (more interstitials: 0.12·N_A, band II follows), D0 6.35e-9 cm²/s (τ_anion
    # 30 ms at 300 K, 68 ms at 200 K); the rest as fapbi3.
    "fapbi3_fai5": dict(_FAPBI_BASE, bandgap_eV=1.53, jsc_mA_cm2=25.0, voc_V=1.08,
                        ea_anion_eV=0.063, d0_anion_cm2_s=6.35e-9, n_ion_anion_cm3=3.6e15,
                        ea_cation_eV=0.09, d0_cation_cm2_s=1.08e-9, n_ion_cation_cm3=1e15,
                        traps=(_band_ii(0.36, 5.8e4), _band_iii(0.46, 4.7e5)), br_fraction=0.0),
    # x = 0.025. paper: Ea 0.074 eV (the minimum), the highest mobile-ion density and band II tDOS of the
    # series, band III lower than at x = 0, no cation signal under light (n_ion_cation = 0: halide
    # interstitials block the FA⁺ pathways, the paper's explanation; band III is then not linked to FA⁺).
    # fill-in: N_ion 3.5e15 cm⁻³ (0.117·N_A), D0 1.17e-8 cm²/s (τ_anion 25 ms at 300 K, 70 ms at 200 K),
    # band II 0.30 eV (ξ0 5.7e3), band III 0.44 eV, 6e14 cm⁻³ (ξ0 2.2e5).
    "fapbibr_2p5": dict(_FAPBI_BASE, bandgap_eV=1.55, jsc_mA_cm2=24.6, voc_V=1.09,
                        ea_anion_eV=0.074, d0_anion_cm2_s=1.17e-8, n_ion_anion_cm3=3.5e15,
                        ea_cation_eV=0.09, d0_cation_cm2_s=1.08e-9, n_ion_cation_cm3=0.0,
                        traps=(_band_ii(0.30, 5.7e3), Trap(0.44, 6e14, 2.2e5)), br_fraction=0.025),
    # x = 0.15. paper: does not segregate (below the ~20 % Br threshold); Ea rises again with x while the
    # mobile-ion density falls; band III rises again above 5 % Br and the FA⁺ Ea falls with it.
    # fill-in: Ea 0.10 eV, N_ion 2e15, D0 1.99e-8 (τ 40 ms → 0.18 s), FA⁺ 1.2e15 cm⁻³ with Ea 0.085 eV
    # (τ 0.5 s → 1.7 s), band II 0.33 eV (ξ0 1.8e4), band III 0.45 eV (ξ0 3.2e5).
    "fapbibr_15": dict(_FAPBI_BASE, bandgap_eV=1.62, jsc_mA_cm2=22.4, voc_V=1.13,
                       ea_anion_eV=0.10, d0_anion_cm2_s=1.99e-8, n_ion_anion_cm3=2e15,
                       ea_cation_eV=0.085, d0_cation_cm2_s=8.93e-10, n_ion_cation_cm3=1.2e15,
                       traps=(_band_ii(0.33, 1.8e4), _band_iii(0.45, 3.2e5)), br_fraction=0.15,
                       seg_dEg_eV=0.10, seg_dea_anion_eV=0.05),
    # x = 0.25. paper: segregates under light (bandgap drops slowly for ~1 h, then fast; done within the
    # 12 h light soak) and its dark halide Ea drops markedly. fill-in: Ea 0.12 eV, N_ion 1.7e15, D0 3.84e-8
    # (τ 45 ms → 0.31 s), FA⁺ 1.5e15 cm⁻³ with Ea 0.08 eV (τ 0.5 s → 1.6 s), band II 0.35 eV (ξ0 4e4), band
    # III 0.47 eV (ξ0 6.9e5), ΔEg 0.12 eV (towards the FAPbI3-like I-rich phase), Ea drop 0.05 eV, Avrami
    # n = 3 with θc = 2.5 h.
    "fapbibr_25": dict(_FAPBI_BASE, bandgap_eV=1.68, jsc_mA_cm2=20.8, voc_V=1.16,
                       ea_anion_eV=0.12, d0_anion_cm2_s=3.84e-8, n_ion_anion_cm3=1.7e15,
                       ea_cation_eV=0.08, d0_cation_cm2_s=7.36e-10, n_ion_cation_cm3=1.5e15,
                       traps=(_band_ii(0.35, 4e4), _band_iii(0.47, 6.9e5)), br_fraction=0.25,
                       seg_dEg_eV=0.12, seg_time_h=2.5, seg_dea_anion_eV=0.05),
    # 1.79 eV reference. paper: Eg 1.79 eV, Voc 1.285 V (deficit 0.505 V), EQE Jsc 17.26 mA/cm², PCE 17.5 %
    # (reverse scan), notable hysteresis, < 50 % of initial PCE after 400 h MPPT. fitted: steady Jsc/Voc/Rs so
    # that the reverse scan of docs/simulation.md §9 gives Voc 1.285 V, Jsc 17.50 (EQE + 1.4 %), PCE 17.50 %
    # (steady state = SPO 17.14 %); the long-term rate for 0.453 after 400 h of ideal tracking. fill-in: ions
    # (Ea 0.35 eV, τ(298 K) ≈ 3 s, N 2e16 cm⁻³) with N_A 1.7e17 cm⁻³ (N_ion ≤ 0.12·N_A; D0 scaled with N_A
    # so that τ stays 3 s), traps (ξ0: 1.5 kHz at 300 K), segregation. The anions leave the TID window below
    # ≈ 290 K (τ(250 K) ≈ 36 s).
    "wbg_ref": dict(_WBG_BASE, jsc_mA_cm2=16.901, voc_V=1.28505, ideality=1.6, rs_ohm_cm2=3.879,
                    rsh_ohm_cm2=2000.0, n_a_cm3=1.7e17, ea_anion_eV=0.35, d0_anion_cm2_s=5.588e-7,
                    n_ion_anion_cm3=2e16, ea_cation_eV=0.30, d0_cation_cm2_s=2.941e-8, n_ion_cation_cm3=5e15,
                    traps=(Trap(0.40, 2e15, 2.7e5),), seg_dEg_eV=0.04, seg_voc_coupling=0.3,
                    burnin_fraction=0.12, burnin_time_h=50.0, longterm_rate_per_h=1.111e-3,
                    reversible_fraction=0.2, recovery_time_h=10.0),
    # 1.79 eV with 5-AVAI. paper: Voc 1.372 V, Jsc 17.50 mA/cm², FF ≈ 0.84, PCE 20.23 % (SPO 20.05 %),
    # 86.4 % of initial PCE after 600 h MPPT, negligible hysteresis. fitted: steady Jsc/Voc/Rs so that the
    # reverse scan gives Voc 1.372 V, Jsc 17.50 and RS + SPO centred on the seed's (20.17 / 20.12 %), the
    # light-activated cation density (1e15 cm⁻³: the RS/SPO gap at |HI| ≈ 1 %), the long-term rate for 0.864
    # after 600 h. fill-in: few and slow halide ions (passivation: N 3e14 cm⁻³, Ea 0.45 eV), weak segregation.
    "wbg_5avai": dict(_WBG_BASE, jsc_mA_cm2=17.161, voc_V=1.3722, ideality=1.3, rs_ohm_cm2=2.151,
                      rsh_ohm_cm2=8000.0, ea_anion_eV=0.45, d0_anion_cm2_s=3e-5, n_ion_anion_cm3=3e14,
                      ea_cation_eV=0.40, d0_cation_cm2_s=1e-6, n_ion_cation_cm3=1e15,
                      traps=(Trap(0.42, 1e15, 6e5),), seg_dEg_eV=0.02, seg_voc_coupling=0.5,
                      burnin_fraction=0.05, burnin_time_h=20.0, longterm_rate_per_h=1.933e-4,
                      reversible_fraction=0.3, recovery_time_h=10.0),
}

# All-perovskite tandem: top = 1.79 eV 5-AVAI cell as built into the tandem, bottom = 1.25 eV Sn–Pb.
# paper: Voc 2.183 V, FF ≈ 0.836, PCE 28.9 %, 87.3 % after 800 h MPPT in ambient. fitted: common scale
# factors of the subcell Jsc (current-matched) and Voc (split 1.325 : 0.858) and Rs, so that the reverse scan
# gives Voc 2.183 V, FF 0.836, PCE 28.90 %; the long-term rate for 0.873 after 800 h. fill-in: the rest.
_TANDEM_TOP: dict[str, Any] = dict(
    _TABLE["wbg_5avai"], jsc_mA_cm2=15.494, voc_V=1.32513, ideality=1.3, rs_ohm_cm2=0.822, rsh_ohm_cm2=8000.0,
    area_cm2=0.1, burnin_fraction=0.04, longterm_rate_per_h=1.491e-4)
_TANDEM_BOTTOM: dict[str, Any] = dict(
    bandgap_eV=1.25, jsc_mA_cm2=15.641, voc_V=0.85809, ideality=1.3, rs_ohm_cm2=0.822, rsh_ohm_cm2=5000.0,
    area_cm2=0.1, thickness_nm=900.0, eps_r=30.0, n_a_cm3=3e16, v_bi_V=0.65,
    ea_anion_eV=0.40, d0_anion_cm2_s=1e-5, n_ion_anion_cm3=1e15, ea_cation_eV=0.35, d0_cation_cm2_s=1e-6,
    n_ion_cation_cm3=3e14, traps=(Trap(0.30, 1e15, 5.7e3),), br_fraction=0.0,
    burnin_fraction=0.04, burnin_time_h=20.0, longterm_rate_per_h=1.491e-4, degradation_ea_eV=0.5,
    reversible_fraction=0.3, recovery_time_h=10.0)

PRESETS: tuple[str, ...] = ("fapbi3", "fapbi3_fai5", "fapbibr_2p5", "fapbibr_15", "fapbibr_25", "wbg_ref",
                            "wbg_5avai", "tandem")
PARAMETER_NAMES: tuple[str, ...] = tuple(f.name for f in fields(PerovskiteCell)
                                         if f.init and f.name != "name")


def _check_names(overrides: dict[str, Any], allowed: set[str], name: str) -> None:
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"preset {name!r}: unknown parameter(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(allowed))}")


SingleName = Literal["fapbi3", "fapbi3_fai5", "fapbibr_2p5", "fapbibr_15", "fapbibr_25", "wbg_ref", "wbg_5avai"]


@overload
def preset(name: Literal["tandem"], **overrides: Any) -> TandemCell: ...
@overload
def preset(name: SingleName, **overrides: Any) -> PerovskiteCell: ...
@overload
def preset(name: str, **overrides: Any) -> PerovskiteCell | TandemCell: ...


def preset(name: str, **overrides: Any) -> PerovskiteCell | TandemCell:
    """A fresh cell (ions at equilibrium for 0 V in the dark) of the named reference device.

    Any parameter can be overridden by keyword: ``preset("fapbi3", ea_anion_eV=0.29)``. For the tandem an
    unprefixed parameter applies to both subcells, ``top_…``/``bottom_…`` to one (area_cm2 is shared).
    Raises ValueError for an unknown preset, an unknown parameter or a non-physical value."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    allowed = set(PARAMETER_NAMES)
    if name != "tandem":
        _check_names(overrides, allowed, name)
        return PerovskiteCell(name=name, **{**_TABLE[name], **overrides})
    allowed_t = allowed | {f"top_{p}" for p in allowed} | {f"bottom_{p}" for p in allowed}
    _check_names(overrides, allowed_t, name)
    common = {k: v for k, v in overrides.items() if k in allowed}
    top = {**_TANDEM_TOP, **common, **{k[4:]: v for k, v in overrides.items() if k.startswith("top_")}}
    bot = {**_TANDEM_BOTTOM, **common, **{k[7:]: v for k, v in overrides.items() if k.startswith("bottom_")}}
    return TandemCell(PerovskiteCell(name="tandem/top", **top), PerovskiteCell(name="tandem/bottom", **bot),
                      name="tandem")
