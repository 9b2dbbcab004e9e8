"""One channel of an MPPT aging run: its tracker's link to the SMU, its blocks, its check-ups and its state.

:class:`ChannelIO` is the :class:`procedures.trackers.TrackerIO` a tracker drives. Every dwell holds the
hardware the channel shares (``ch.measuring()``: the switch and the SMU behind it) for at most one turn, so
pixels behind one switch take turns; while it waits for its turn a pixel sits idle — at open circuit, or on
its load when the station gives it one — and ``bias_<ch>`` records each change, so a file labelled "at MPP"
shows which pixels really were and for how long.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from procedures.trackers import DARK, SCAN, TRACKERS, Readings, Tracker

if TYPE_CHECKING:
    from labctl.runner import ChannelContext

#: bias_<ch> states
HELD, IDLE_OPEN, IDLE_LOAD, DARK_OPEN, DARK_BIAS = 1, 0, 2, 3, 4
#: On real time, the longest dwell read back in one piece (s): what a crash may lose before the store's flush.
REAL_TIME_PIECE_S = 0.5
#: Columns of a channel's MPPT trace stored as float32 (all but time): relative resolution 6e-8 against a
#: cell's noise of ~1e-4, and half the bytes; the 2450's own binary reading format is 32-bit too.
MEASURED_SINGLE = ("voltage_V", "current_A", "power_mW_cm2", "pce_pct", "phase", "v_set_V")
DECISIONS = {"start": 0, "explored": 1, "power_fell": 2, "perturbed": 3, "gradient": 4, "perturbed_current": 5,
             "hold": 6, "reanchored": 7, "compliance": 8, "resumed": 9}


class ChannelIO:
    """See the module docstring."""

    def __init__(self, ch: ChannelContext, procedure: Any, values: dict[str, Any]) -> None:
        self.ch = ch
        self.procedure = procedure
        self.values = values
        sample = ch.sample
        self.area_cm2 = float(sample.area_cm2)
        self.interval_s = float(procedure.interval_s)
        self.shared = bool(ch.spec.shared)
        self.idle = IDLE_LOAD if sample.idle_load_ohm_cm2 is not None else IDLE_OPEN
        self.compliance_A = procedure.compliance_mA_cm2 * self.area_cm2 * 1e-3
        self.tracker: Tracker = TRACKERS[values["tracker"]](
            {**values, "settle_s": procedure.settle_s, "max_settle_s": procedure.max_settle_s,
             "reexplore_fraction": procedure.reexplore_fraction})
        self.next_jv_h = procedure.jv_every_h if procedure.jv_every_h > 0 else math.inf
        self.jv_count = 0
        self.configured = False
        self.saved_once = False
        self.simulated = ch.bench is not None and ch.bench.simulation is not None
        name = ch.name
        self.data = self._block(f"mppt_{name}", {"time_s": "s", "voltage_V": "V", "current_A": "A",
                                                  "power_mW_cm2": "mW/cm2", "pce_pct": "%", "phase": "",
                                                  "v_set_V": "V"},
                                {"idle": "load" if self.idle == IDLE_LOAD else "open circuit",
                                 "multiplexed": self.shared, "tracker": values["tracker"],
                                 "area_cm2": self.area_cm2, "sample": ch.spec.sample,
                                 "phase_codes": json.dumps({"explore": 0, "dwell": 1, "dark": 2, "scan": 3,
                                                            "settle": 4})},
                                signal="power_mW_cm2",
                                expected_rows=int(procedure.duration_h * 3600.0 / self.interval_s) + 1,
                                single_precision=MEASURED_SINGLE)
        self.decisions = self._block(f"tracker_{name}", {"time_s": "s", "decision": "", "v_set_V": "V",
                                                         "p_mW_cm2": "mW/cm2", "step_V": "V", "settle_s": "s"},
                                     {"decision_codes": json.dumps(DECISIONS)}, signal="v_set_V")
        self.bias = self._block(f"bias_{name}", {"time_s": "s", "state": "", "voltage_V": "V"},
                                {"state_codes": json.dumps({"held": HELD, "idle_open": IDLE_OPEN,
                                                            "idle_load": IDLE_LOAD, "dark_open": DARK_OPEN,
                                                            "dark_bias": DARK_BIAS})}, signal="state")
        self.truth = (self._block(f"truth_{name}", {"time_s": "s", "vmpp_true_V": "V",
                                                    "pmpp_true_mW_cm2": "mW/cm2"}, {},
                                       signal="pmpp_true_mW_cm2")
                      if self.simulated else None)

    def _block(self, name: str, columns: dict[str, str], attrs: dict[str, Any], *, signal: str | None = None,
               axes: str = "time_s", expected_rows: int | None = None, single_precision: tuple[str, ...] = ()) -> Any:
        if name in self.ch.block_names():
            return self.ch.block(name)
        return self.ch.run.create_block(name, columns, {"channel": self.ch.name, **attrs}, signal=signal, axes=axes,
                                        expected_rows=expected_rows, single_precision=single_precision)

    # --------------------------------------------------------------------------------- state
    def restore(self, state: dict[str, Any]) -> None:
        """Take up a resumed channel's tracker where its last checkpoint left it, and mark the gap: a
        ``resumed`` decision and a ``channel_gap`` event (its length from the channel's last checkpoint; NaN
        when the run was cut off before the channel's first one, when it starts afresh)."""
        if not state and self.ch.run.segment == 0:
            return
        self.tracker.state = dict(state.get("tracker", {}))
        self.next_jv_h = float(state.get("next_jv_h", self.next_jv_h))
        self.jv_count = int(state.get("jv_count", 0))
        gap_s = self.now() - float(state["saved_at_s"]) if "saved_at_s" in state else math.nan
        if self.tracker.started:
            self.tracker.state["explored_at_s"] = -math.inf  # a resumed cell is explored again first
        self.decide("resumed", gap_s=gap_s)
        self.ch.event("channel_gap", f"resumed after a gap of {gap_s:.0f} s since the channel's last checkpoint"
                      if math.isfinite(gap_s) else "resumed with no checkpoint of this channel: started afresh",
                      gap_s=gap_s)

    def save(self) -> None:
        self.ch.checkpoint({"tracker": self.tracker.state, "next_jv_h": self.next_jv_h, "jv_count": self.jv_count,
                            "saved_at_s": self.now()})
        if not self.saved_once and self.tracker.started:
            # The engine writes channel checkpoints once a minute; the first one goes to the file at once, so
            # a run cut off in its first minute still resumes its trackers where they were.
            self.procedure.save_run_state(self.ch.run)
            self.saved_once = True
        self.ch.run.publish_status(self.ch.name, state="tracking", v_set_V=self.tracker.state.get("v_set_V"),
                                   hours=(self.now() - self.procedure.t0) / 3600.0, jv_count=self.jv_count)

    def finish(self) -> None:
        self.ch.smu.output_off()
        self.bias.append_row(time_s=self.now(), state=float(IDLE_OPEN), voltage_V=math.nan)
        self.ch.run.publish_status(self.ch.name, state="done")

    # ------------------------------------------------------------------------- TrackerIO
    def now(self) -> float:
        return self.ch.clock.now()

    def longest_hold_s(self) -> float:
        return self.procedure.switched_hold_s if self.shared else math.inf

    def decide(self, decision: str, **values: float) -> None:
        s = self.tracker.state
        self.decisions.append_row(time_s=self.now(), decision=float(DECISIONS.get(decision, -1)),
                                  v_set_V=float(values.get("v_set_V", s.get("v_set_V", math.nan))),
                                  p_mW_cm2=float(values.get("p_mW_cm2", values.get("p_best_mW_cm2", math.nan))),
                                  step_V=float(s.get("step_V", math.nan)), settle_s=float(s.get("settle_s", math.nan)))

    def dwell_voltage(self, voltage_V: float, n: int, interval_s: float, phase: int) -> Readings:
        return self._dwell("voltage", voltage_V, n, interval_s, phase)

    def dwell_current(self, current_A: float, n: int, interval_s: float, phase: int) -> Readings:
        return self._dwell("current", current_A, n, interval_s, phase)

    def _dwell(self, function: str, level: float, n: int, interval_s: float, phase: int) -> Readings:
        ch = self.ch
        parts: list[Readings] = []
        with ch.measuring():
            self._configure()
            start = self.now()
            self._truth()
            smu = ch.smu
            for count in self._pieces(n, interval_s):
                piece_start = self.now()
                result = (smu.dwell_voltage(level, count, interval_s) if function == "voltage"
                          else smu.dwell_current(level, count, interval_s))
                parts.append(self._record(result, piece_start, interval_s, phase,
                                          level if function == "voltage" else math.nan))
            if self.shared or phase == DARK:
                self.bias.append_row(time_s=start, state=float(HELD if phase != DARK else DARK_BIAS),
                                     voltage_V=float(level) if function == "voltage" else math.nan)
            self._truth()
            if self.shared:
                smu.output_off()  # the switch moves on: this pixel is idle until its next turn
                self.bias.append_row(time_s=self.now(), state=float(self.idle), voltage_V=math.nan)
        readings = parts[0] if len(parts) == 1 else Readings(*(np.concatenate(columns) for columns in zip(
            *((r.time_s, r.voltage_V, r.current_A, r.power_mW_cm2) for r in parts), strict=True)))
        self._check_compliance(readings)
        return readings

    def _pieces(self, n: int, interval_s: float) -> list[int]:
        """Readings per instrument command: the whole dwell at once on virtual time (one command, many
        readings); on real time pieces of at most :data:`REAL_TIME_PIECE_S` (at least one reading), so a
        crash or a power cut loses at most the readings of the piece under way, not a 30-minute hold."""
        if getattr(self.ch.clock, "virtual", False):
            return [n]
        per_piece = max(1, int(REAL_TIME_PIECE_S // interval_s))
        return [min(per_piece, n - k) for k in range(0, n, per_piece)]

    def _configure(self) -> None:
        if not self.configured:
            smu = self.ch.smu
            smu.set_nplc(self.procedure.nplc)
            smu.set_compliance_current(self.compliance_A)
            smu.set_compliance_voltage(max(self.ch.sample.voltage_max_V, 0.1))
            self.configured = True
            if not self.shared:
                self.bias.append_row(time_s=self.now(), state=float(HELD), voltage_V=math.nan)

    def _record(self, result: Any, start: float, interval_s: float, phase: int, v_set: float) -> Readings:
        t = start + interval_s + np.asarray(result.time_s, dtype=float) - float(result.time_s[0])
        v = np.asarray(result.voltage_V, dtype=float)
        i = np.asarray(result.current_A, dtype=float)
        power = -v * i / self.area_cm2 * 1e3
        irradiance = 100.0 * self.procedure.suns if self.procedure.suns > 0 else 100.0
        self.data.append_columns(time_s=t, voltage_V=v, current_A=i, power_mW_cm2=power,
                                 pce_pct=power / irradiance * 100.0, phase=np.full(t.size, float(phase)),
                                 v_set_V=np.full(t.size, float(v_set)))
        return Readings(t, v, i, power)

    def _truth(self) -> None:
        if self.truth is None or self.ch.bench is None:
            return
        found = self.ch.bench.simulated_mpp(self.ch.spec.sample)
        if found is not None:
            self.truth.append_row(time_s=self.now(), vmpp_true_V=found[0], pmpp_true_mW_cm2=found[1])

    def _check_compliance(self, readings: Readings) -> None:
        if readings.current_A.size and float(np.max(np.abs(readings.current_A))) >= 0.99 * self.compliance_A:
            self.ch.event("compliance", f"the current reached the compliance ({self.compliance_A * 1e3:.3g} mA): "
                          "exploring again from 80 % of Voc", compliance_A=self.compliance_A)
            self.decide("compliance")
            self.tracker.state.pop("v_set_V", None)

    # --------------------------------------------------------------------------- phases
    def track(self, until_s: float) -> None:
        if not self.tracker.started:
            self.tracker.start(self, self.measure_voc())
        self.tracker.step(self, until_s)

    def measure_voc(self) -> float:
        readings = self.dwell_current(0.0, 5, max(self.interval_s / 5, 0.05), SCAN)
        return float(np.mean(readings.voltage_V[-3:]))

    def dark(self, until_s: float, phase: int) -> None:
        """A dark phase: open circuit (output off) or held at the last light Voc, until ``until_s``."""
        voc = self.tracker.state.get("voc_V")
        if self.procedure.dark_bias == "voc" and voc:
            remaining = until_s - self.now()
            chunk = min(remaining, self.longest_hold_s(), 600.0)
            n = max(1, int(chunk // self.interval_s))
            self.dwell_voltage(float(voc), n, self.interval_s, phase)
            return
        self.ch.smu.output_off()
        self.configured = False
        self.bias.append_row(time_s=self.now(), state=float(DARK_OPEN), voltage_V=math.nan)
        self.ch.sleep(max(until_s - self.now(), 0.0))

    def checkup_due(self, hours: float) -> bool:
        return hours >= self.next_jv_h - 1e-9

    def next_checkup_s(self) -> float:
        return self.procedure.t0 + self.next_jv_h * 3600.0 if math.isfinite(self.next_jv_h) else math.inf

    def checkup(self) -> None:
        """A reverse and a forward J–V scan; the tracker starts again from the reverse scan's MPP."""
        p = self.procedure
        voc = float(self.tracker.state.get("voc_V") or self.ch.sample.voltage_max_V)
        v_max = min(self.ch.sample.voltage_max_V, 1.1 * voc)
        grid = np.arange(-0.05, v_max + 1e-9, p.jv_step_V)
        hours = (self.now() - p.t0) / 3600.0
        best_v = math.nan
        with self.ch.measuring():
            self._configure()
            smu = self.ch.smu
            for direction, voltages in (("RS", grid[::-1]), ("FS", grid)):
                smu.source_voltage(float(voltages[0]))
                smu.output_on()
                result = smu.sweep_voltage(voltages, p.jv_step_V / p.jv_rate_V_s)
                density = -np.asarray(result.current_A) / self.area_cm2 * 1e3
                name = f"jv_{self.ch.name}_{self.jv_count:03d}_{direction}"
                if name in self.ch.block_names():  # cut off after this scan, before the checkpoint: a new block
                    name = f"{name}_seg{self.ch.run.segment}"
                block = self._block(
                    name,
                    {"voltage_V": "V", "current_A": "A", "current_density_mA_cm2": "mA/cm2", "time_s": "s"},
                    {"direction": direction, "scan_rate_V_s": p.jv_rate_V_s, "elapsed_h": hours,
                     "irradiance_mW_cm2": 100.0 * (p.suns if p.suns > 0 else 1.0), "area_cm2": self.area_cm2,
                     "pixel": self.ch.spec.sample, "segment": self.ch.run.segment},
                    signal="current_density_mA_cm2", axes="voltage_V", expected_rows=int(voltages.size))
                block.append_columns(voltage_V=result.voltage_V, current_A=result.current_A,
                                     current_density_mA_cm2=density, time_s=result.time_s)
                if direction == "RS":
                    power = np.asarray(result.voltage_V) * density
                    best_v = float(np.asarray(result.voltage_V)[int(np.argmax(power))])
                    voc_found = _zero_crossing(np.asarray(result.voltage_V), density)
                    if math.isfinite(voc_found):
                        self.tracker.state["voc_V"] = voc_found
            if self.shared:
                smu.output_off()
        self.jv_count += 1
        self.next_jv_h += p.jv_every_h
        if math.isfinite(best_v) and best_v > 0 and self.tracker.started:
            self.tracker.state.update({"v_set_V": best_v, "explored_at_s": -math.inf})
            self.decide("reanchored", v_set_V=best_v)


def _zero_crossing(voltage: np.ndarray, density: np.ndarray) -> float:
    order = np.argsort(voltage)
    v, j = voltage[order], density[order]
    below = np.flatnonzero((j[:-1] > 0) & (j[1:] <= 0))
    if below.size == 0:
        return math.nan
    k = int(below[0])
    return float(v[k] + (v[k + 1] - v[k]) * j[k] / (j[k] - j[k + 1]))
