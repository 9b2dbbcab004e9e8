"""Maximum power point trackers for aging runs.

A tracker talks to its channel through :class:`TrackerIO` (buffered dwells at a voltage or a current, timed by
the SMU, and the record of what it decided) and keeps its state in a JSON-able dict, so a resumed run carries
on with the same voltage, step and settling time. Every decision is logged (``TrackerIO.decide``), so a
tracking decision can be explained afterwards.

Hysteretic perovskite cells punish naive perturb-and-observe: every voltage step starts a capacitive and an
ionic current transient (milliseconds to minutes), and power read during it is not the power of the new
voltage. So the default, :class:`ExploreThenDwell`, steps by a fraction of Voc, waits the settling time it
measured on the cell itself (the step response, not a guess), compares settled powers, and then holds the
best voltage for a long dwell read from the instrument's own buffer.

Power convention: a lit cell delivers power when the SMU current is negative at a positive voltage;
``power_mW_cm2 = −V·I / area`` is positive then.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

#: Phase codes in the data: what the channel was doing when a reading was taken.
EXPLORE, DWELL, DARK, SCAN, SETTLE = 0, 1, 2, 3, 4
#: A hold is read back and judged this often (s of the run's clock), or every :data:`HOLD_CHECK_READINGS`
#: readings if that is longer: a light step or a sudden loss ends it within minutes, not at the end of a
#: 30-minute dwell.
HOLD_CHECK_S = 300.0
HOLD_CHECK_READINGS = 30
#: The most steps an exploration follows the slope before it gives up bracketing the maximum (and explores
#: again at once from where it got to).
MAX_EXPLORE_MOVES = 25


@dataclass(frozen=True)
class Readings:
    """A buffered dwell: absolute time (s since the epoch), voltage (V), current (A), power (mW/cm²)."""

    time_s: np.ndarray
    voltage_V: np.ndarray
    current_A: np.ndarray
    power_mW_cm2: np.ndarray

    def settled_power(self) -> float:
        """The mean power of the last third of the readings (the transient has decayed by then)."""
        tail = self.power_mW_cm2[-max(1, self.power_mW_cm2.size // 3):]
        return float(np.mean(tail))


class TrackerIO(Protocol):
    """What a tracker needs from its channel."""

    area_cm2: float
    interval_s: float

    def now(self) -> float: ...

    def dwell_voltage(self, voltage_V: float, n: int, interval_s: float, phase: int) -> Readings: ...

    def dwell_current(self, current_A: float, n: int, interval_s: float, phase: int) -> Readings: ...

    def decide(self, decision: str, **values: float) -> None: ...

    def longest_hold_s(self) -> float: ...


class Tracker:
    """Base: ``start`` finds the first operating point, ``step`` runs one decision cycle until at most
    ``until_s``. ``state`` is all a resumed run needs."""

    name: ClassVar[str] = ""

    def __init__(self, settings: dict[str, Any], state: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.state: dict[str, Any] = dict(state or {})

    @property
    def started(self) -> bool:
        return "v_set_V" in self.state

    def start(self, io: TrackerIO, voc_V: float) -> None:
        """First operating point: 80 % of Voc, and the settling time measured on the cell's step response."""
        step = max(self.settings["step_fraction"] * voc_V, 1e-3)
        v = 0.8 * voc_V
        settle = self.settings["settle_s"] or measure_settling_s(io, v, self.settings["max_settle_s"])
        self.state.update({"v_set_V": v, "step_V": step, "settle_s": settle, "voc_V": voc_V,
                           "direction": 1.0, "explored_at_s": -math.inf})
        io.decide("start", v_set_V=v, step_V=step, settle_s=settle, voc_V=voc_V)

    def step(self, io: TrackerIO, until_s: float) -> None:
        raise NotImplementedError

    def settled(self, io: TrackerIO, voltage_V: float, phase: int = EXPLORE) -> float:
        """Hold ``voltage_V`` for the settling time (readings recorded) and return the settled power."""
        n, interval = _readings_for(self.state["settle_s"], io.interval_s)
        return io.dwell_voltage(voltage_V, n, interval, phase).settled_power()

    def hold(self, io: TrackerIO, voltage_V: float, seconds: float) -> Readings | None:
        seconds = min(seconds, io.longest_hold_s())
        n = max(1, int(seconds // io.interval_s))
        return io.dwell_voltage(voltage_V, n, io.interval_s, DWELL)


def _readings_for(seconds: float, interval_s: float) -> tuple[int, float]:
    """Readings and their spacing for a hold of ``seconds``: the run's interval, or finer for a short hold
    (at least 5 readings, so the settled tail is a mean, not one point)."""
    n = max(5, round(seconds / interval_s))
    return n, max(seconds / n, 1e-3)


def measure_settling_s(io: TrackerIO, voltage_V: float, longest_s: float) -> float:
    """The cell's own settling time: step to ``voltage_V`` from where it was, read the current for
    ``longest_s``, and find when the power last left a band of 0.2 % (at least 0.02 % of the final power
    plus noise) around its final value. Between 1 s and ``longest_s``."""
    n = 60
    readings = io.dwell_voltage(voltage_V, n, longest_s / n, SETTLE)
    power = readings.power_mW_cm2
    final = float(np.mean(power[-10:]))
    noise = float(np.std(power[-10:]))
    band = max(0.002 * abs(final), 3.0 * noise, 1e-9)
    outside = np.flatnonzero(np.abs(power - final) > band)
    t = readings.time_s - readings.time_s[0] + longest_s / n
    settle = float(t[outside[-1]]) if outside.size else float(t[0])
    return float(min(max(1.5 * settle, 1.0), longest_s))


class ExploreThenDwell(Tracker):
    """Explore around the voltage (three settled points a step apart, moving while the best is an edge,
    then the vertex of the parabola through them), then hold it for ``dwell_s`` in the instrument's buffer,
    judged every :data:`HOLD_CHECK_S` (or 30 readings): a hold whose power falls more than
    ``reexplore_fraction`` below the explored power ends early. An exploration that did not bracket the maximum within
    :data:`MAX_EXPLORE_MOVES` steps is followed at once by another, never by a long hold off the MPP."""

    name = "explore_dwell"

    def step(self, io: TrackerIO, until_s: float) -> None:
        s = self.state
        # Explore when the hold is (all but) over: a remainder shorter than one reading is not a hold.
        if io.now() + io.interval_s - s["explored_at_s"] > self.settings["dwell_s"] or s.get("reexplore"):
            self.explore(io)
        remaining = min(s["explored_at_s"] + self.settings["dwell_s"], until_s) - io.now()
        if remaining < io.interval_s:
            return
        check_s = max(HOLD_CHECK_S, HOLD_CHECK_READINGS * io.interval_s)
        readings = self.hold(io, s["v_set_V"], min(remaining, check_s))
        if readings is not None and readings.power_mW_cm2.size:
            drop = 1.0 - float(np.mean(readings.power_mW_cm2[-3:])) / max(s.get("p_explored", 1e-12), 1e-12)
            if drop > self.settings["reexplore_fraction"]:
                s["reexplore"] = True
                io.decide("power_fell", v_set_V=s["v_set_V"], drop_fraction=drop)

    def explore(self, io: TrackerIO) -> None:
        s = self.state
        step, centre = s["step_V"], s["v_set_V"]
        powers = {v: self.settled(io, v) for v in (centre - step, centre, centre + step)}
        bracketed = False
        for _ in range(MAX_EXPLORE_MOVES):  # follow the slope while the best point is an edge
            best = max(powers, key=lambda v: powers[v])
            if best == centre:
                bracketed = True
                break
            centre = best
            for v in (centre - step, centre + step):
                if v not in powers:
                    powers[v] = self.settled(io, v)
        vs = sorted(v for v in powers if abs(v - centre) <= step * 1.001)
        v_star = _vertex(vs, [powers[v] for v in vs], centre, step)
        s.update({"v_set_V": v_star, "explored_at_s": io.now(), "p_explored": max(powers.values()),
                  "reexplore": not bracketed})
        io.decide("explored", v_set_V=v_star, p_best_mW_cm2=max(powers.values()), points=len(powers),
                  bracketed=float(bracketed))


def _vertex(vs: list[float], ps: list[float], centre: float, step: float) -> float:
    """The vertex of the parabola through three points, kept within half a step of the best one."""
    if len(vs) == 3:
        a, b, _c = np.polyfit(vs, ps, 2)
        if a < 0:
            return float(np.clip(-b / (2 * a), centre - 0.5 * step, centre + 0.5 * step))
    return centre


class PerturbObserve(Tracker):
    """Classic perturb-and-observe, but with the measured settling time: step by ``step_V``, wait until the
    transient has settled, keep the direction while the settled power rises, reverse it when it falls."""

    name = "perturb_observe"

    def step(self, io: TrackerIO, until_s: float) -> None:
        s = self.state
        if "p_last" not in s:
            s["p_last"] = self.settled(io, s["v_set_V"], DWELL)
        v = s["v_set_V"] + s["direction"] * s["step_V"]
        p = self.settled(io, v, DWELL)
        if p < s["p_last"]:
            s["direction"] = -s["direction"]
        s.update({"v_set_V": v, "p_last": p})
        io.decide("perturbed", v_set_V=v, p_mW_cm2=p, direction=s["direction"])


class GradientAscent(Tracker):
    """Estimate dP/dV from settled powers half a step either side, and move by a step proportional to the
    slope (one step for a 2 % power difference across it, at most two steps)."""

    name = "gradient"

    def step(self, io: TrackerIO, until_s: float) -> None:
        s = self.state
        step = s["step_V"]
        low, high = self.settled(io, s["v_set_V"] - step / 2), self.settled(io, s["v_set_V"] + step / 2)
        mean = max(0.5 * (low + high), 1e-12)
        move = float(np.clip((high - low) / (0.02 * mean) * step, -2 * step, 2 * step))
        s["v_set_V"] = s["v_set_V"] + move
        io.decide("gradient", v_set_V=s["v_set_V"], slope_mW_cm2_V=(high - low) / step, move_V=move)
        self.hold(io, s["v_set_V"], min(self.settings["dwell_s"], max(until_s - io.now(), io.interval_s)))


class Galvanostatic(Tracker):
    """Hold a current and adjust it: perturb-and-observe on the current (a step of ``step_fraction`` of the
    short-circuit current estimate), the voltage read back; no voltage transient is forced on the cell."""

    name = "galvanostatic"

    def start(self, io: TrackerIO, voc_V: float) -> None:
        super().start(io, voc_V)
        self.anchor(io)

    def anchor(self, io: TrackerIO) -> None:
        """The current the cell gives at 80 % of its Voc, the step a fraction of it."""
        readings = io.dwell_voltage(0.8 * self.state["voc_V"], 5, io.interval_s, SETTLE)
        current = float(np.mean(readings.current_A[-3:]))
        self.state.update({"i_set_A": current, "i_step_A": abs(current) * self.settings["step_fraction"] * 2,
                           "v_set_V": 0.8 * self.state["voc_V"]})
        self.state.pop("p_last", None)

    def step(self, io: TrackerIO, until_s: float) -> None:
        s = self.state
        n, interval = _readings_for(s["settle_s"], io.interval_s)
        if "p_last" not in s:
            s["p_last"] = io.dwell_current(s["i_set_A"], n, interval, DWELL).settled_power()
        current = s["i_set_A"] + s["direction"] * s["i_step_A"]
        readings = io.dwell_current(current, n, interval, DWELL)
        p = readings.settled_power()
        if p <= 0 or float(readings.voltage_V[-1]) < 0.5 * s["voc_V"]:
            # The light fell (or the cell lost current): the held current is beyond the new short-circuit
            # current and the voltage collapsed. Start again from the current at 80 % of Voc.
            self.anchor(io)
            io.decide("reanchored", i_set_A=s["i_set_A"], p_mW_cm2=p)
            return
        if p < s["p_last"]:
            s["direction"] = -s["direction"]
        s.update({"i_set_A": current, "p_last": p, "v_set_V": float(readings.voltage_V[-1])})
        io.decide("perturbed_current", i_set_A=current, p_mW_cm2=p, direction=s["direction"])


class ConstantVoltage(Tracker):
    """Hold one voltage: ``hold_V``, or (0) the maximum power point one exploration finds at the start."""

    name = "constant_voltage"

    def start(self, io: TrackerIO, voc_V: float) -> None:
        super().start(io, voc_V)
        if self.settings["hold_V"] > 0:
            self.state["v_set_V"] = self.settings["hold_V"]
        else:
            ExploreThenDwell(self.settings, self.state).explore(io)
        io.decide("hold", v_set_V=self.state["v_set_V"])

    def step(self, io: TrackerIO, until_s: float) -> None:
        self.hold(io, self.state["v_set_V"], max(until_s - io.now(), io.interval_s))


TRACKERS: dict[str, Callable[..., Tracker]] = {
    cls.name: cls for cls in (ExploreThenDwell, PerturbObserve, GradientAscent, Galvanostatic, ConstantVoltage)
}
