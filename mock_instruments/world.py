"""The simulated bench's one physical world: devices, lights, the cryostat stage, wiring and the clock.

Every instrument mock holds the same :class:`World` and acts on it through its terminal(s): a terminal is
``"<instrument name>"`` or ``"<instrument name>:<channel>"`` (``"smu"``, ``"smu2:a"``, ``"lcr"``). The world
routes a terminal to a device by a direct wire (:meth:`World.wire`) or through a multiplexer
(:meth:`World.add_switch` / :meth:`World.select_switch`).

Time is lazy and exact. :attr:`World.time_s` is the world's clock time: stages and scheduled events are
brought up to it whenever anyone reads or changes something (:meth:`World.sync`). Each device keeps its
*own* time and is advanced only when something reads it or changes what it sees — its terminal's drive, a
switch or wire that routes to it, its bench temperature — and then in one go over the whole gap: between
those moments its drive is constant, and its light and stage temperature are known piecewise from their
histories (the light records every change of its settings, a stage every step it takes while a device sits
on it). So a reading costs the same whether the world holds one device or a hundred, and a device read
after a long gap is where an eagerly stepped one would be (cut at the same light and stage pieces; within
the stepper's tolerance otherwise, see stepping.py). Events scheduled by instruments
(:meth:`World.schedule`, e.g. each point of an SMU's timed sweep) fire at their time, with the devices they
touch brought exactly to that instant. :meth:`World.readings_at` gives many readings of one device over a
stretch of past time in one pass (a buffered dwell).

Noise everywhere comes from :meth:`World.rng_for`: one ``numpy`` generator per instrument, seeded from the
world's seed and the instrument's name, so runs are reproducible whatever the creation order.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any

import numpy as np

from labctl.clock import Clock, VirtualClock
from mock_instruments.cryostat import CryostatStage
from mock_instruments.light import LightField
from mock_instruments.world_parts import AMBIENT_K, DeviceSlot, Drive, Event, EventCallback, StageHistory, Switch

HISTORY_PRUNE_LENGTH = 256  # prune a light's or stage's history once it is this long


#: How long a device on its idle load is held at one operating point before it is solved again (s).
LOAD_STEP_S = 600.0


def load_voltage_V(cell: Any, load_ohm_cm2: float, suns: float, temperature_K: float) -> float:
    """The voltage at which a lit cell delivers J = V / R into a load of ``load_ohm_cm2`` (0 in the dark)."""
    def excess(v: float) -> float:
        return float(cell.current_density_mA_cm2(v, suns, temperature_K)) - 1e3 * v / load_ohm_cm2

    high = 3.0
    if excess(0.0) <= 0.0:
        return 0.0
    low = 0.0
    for _ in range(60):  # bisection: J(V) − V/R falls monotonically
        mid = 0.5 * (low + high)
        if excess(mid) > 0:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


class World:
    """Shared state of the simulated bench (see the module docstring)."""

    def __init__(self, clock: Clock | None = None, seed: int = 0, ambient_K: float = AMBIENT_K) -> None:
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.seed = int(seed)
        self.ambient_K = float(ambient_K)
        self.lock = threading.RLock()
        #: Instruments whose buffered dwells must be served before a device is moved to the clock by
        #: anything but its own reading (a snapshot): see :meth:`add_dwell_server`.
        self._dwell_servers: list[Callable[[], None]] = []
        self.time_s = self.clock.now()
        self.devices: dict[str, DeviceSlot] = {}
        self.lights: dict[str, LightField] = {}
        self.switches: dict[str, Switch] = {}
        self.wires: dict[str, str] = {}
        self._drives: dict[str, Drive] = {}
        self._routes: dict[str, str | None] = {}  # terminal -> device it reaches now (None: none)
        self._reaching: dict[str, set[str]] = {}  # device -> terminals that reach it now
        self._switch_of: dict[str, Switch] = {}  # common terminal -> its switch
        self._occupancy: Counter[str] = Counter()  # location -> devices there
        self._stage_history: dict[str, StageHistory] = {}
        self._seq = itertools.count(1)
        self._events: list[Event] = []
        self._busy = False
        self.stages: dict[str, CryostatStage] = {}
        self.add_stage("stage")

    # ---------------------------------------------------------------------------------- building
    def rng_for(self, name: str) -> np.random.Generator:
        """A reproducible generator for one named noise source (an instrument, a light, the stage)."""
        return np.random.default_rng([self.seed, zlib.crc32(name.encode())])

    def add_device(self, name: str, cell: Any, location: str = "bench", light: str | None = "light",
                   temperature_K: float = AMBIENT_K, idle_load_ohm_cm2: float | None = None) -> Any:
        """Put ``cell`` (a device.py cell) on a stage (by name) or the ``"bench"``, lit by light ``light``;
        ``idle_load_ohm_cm2``: the load across it while no instrument drives it (None: open circuit)."""
        if location != "bench" and location not in self.stages:
            raise ValueError(f"device {name!r}: location must be 'bench' or a stage "
                             f"({', '.join(self.stages)}), not {location!r}")
        with self.lock:
            self.sync()
            if name in self.devices:
                raise ValueError(f"device {name!r} exists already")
            if idle_load_ohm_cm2 is not None and not idle_load_ohm_cm2 > 0:
                raise ValueError(f"device {name!r}: idle_load_ohm_cm2 must be > 0, got {idle_load_ohm_cm2!r}")
            self.devices[name] = DeviceSlot(name, cell, location, light, float(temperature_K), self.time_s,
                                            idle_load_ohm_cm2)
            self._reaching[name] = set()
            self._occupancy[location] += 1
            return cell

    def add_light(self, name: str = "light", **options: Any) -> LightField:
        """A light source (options: see :class:`LightField`); replaces one of the same name."""
        with self.lock:
            self.sync()
            self._bring_up_all(lambda slot: slot.light == name)  # their past light is the old one's
            light = LightField(name, rng=self.rng_for(f"light:{name}"), now=lambda: self.time_s, **options)
            light.before_change = self.sync
            self.lights[name] = light
            return light

    def add_stage(self, name: str = "stage", **options: Any) -> CryostatStage:
        """Add or reconfigure a temperature stage (options: see :class:`CryostatStage`).

        ``"stage"`` is the cryostat every world has; a station may add more, e.g. a hot stage whose
        reservoir is the room (``reservoir_K=298.15``) for aging at 65 °C.
        """
        with self.lock:
            if self.stages:
                self.sync()
                self._bring_up_all(lambda slot: slot.location == name)
            options.setdefault("ambient_K", self.ambient_K)
            options.setdefault("temperature_K", self.ambient_K)
            stage = CryostatStage(rng=self.rng_for(name), now_s=self.time_s, **options)
            stage.before_change = self.sync
            self.stages[name] = stage
            self._stage_history[name] = StageHistory()
            return stage

    @property
    def stage(self) -> CryostatStage:
        """The default cryostat stage (named ``"stage"``)."""
        return self.stages["stage"]

    def stage_named(self, name: str) -> CryostatStage:
        try:
            return self.stages[name]
        except KeyError:
            raise KeyError(f"no stage {name!r}; stages: {', '.join(self.stages)}") from None

    def light(self, name: str = "light") -> LightField:
        try:
            return self.lights[name]
        except KeyError:
            raise KeyError(f"no light {name!r}; lights: {', '.join(self.lights) or 'none'}") from None

    def device(self, name: str) -> Any:
        """The cell of device ``name``, brought up to the clock."""
        with self.lock:
            self.sync()
            self._bring_up(name)
            return self.devices[name].cell

    def device_time_s(self, name: str) -> float:
        """The clock time device ``name``'s state is exact at (it lags the world until something reads it)."""
        return self.devices[name].time_s

    def set_device_temperature(self, name: str, temperature_K: float) -> None:
        """Hot-plate temperature of a bench device."""
        with self.lock:
            self.sync()
            slot = self.devices[name]
            if slot.location != "bench":
                raise ValueError(f"device {name!r} is on the stage: its temperature is the stage's")
            self._bring_up(name)
            slot.temperature_K = float(temperature_K)

    # ------------------------------------------------------------------------------------ wiring
    def wire(self, terminal: str, device: str) -> None:
        """Connect an instrument terminal straight to a device."""
        with self.lock:
            self.sync()
            if device not in self.devices:
                raise KeyError(f"cannot wire {terminal!r}: no device {device!r}")
            if terminal in self._switch_of:
                raise ValueError(f"terminal {terminal!r} is a switch's common terminal")
            self._reroute(terminal, device)
            self.wires[terminal] = device

    def unwire(self, terminal: str) -> None:
        with self.lock:
            self.sync()
            if terminal in self.wires:
                self._reroute(terminal, None)
                del self.wires[terminal]

    def add_switch(self, name: str, common_terminal: str | tuple[str, ...],
                   channels: Mapping[Hashable, str]) -> Switch:
        """A multiplexer: the common terminal(s) reach ``channels[selected]`` (all open at first)."""
        with self.lock:
            self.sync()
            missing = [d for d in channels.values() if d not in self.devices]
            if missing:
                raise KeyError(f"switch {name!r}: no device(s) {', '.join(missing)}")
            terminals = (common_terminal,) if isinstance(common_terminal, str) else tuple(common_terminal)
            for terminal in terminals:
                if terminal in self.wires:
                    raise ValueError(f"terminal {terminal!r} is wired to a device already")
            old = self.switches.get(name)
            if old is not None:
                for terminal in old.common_terminals:
                    self._reroute(terminal, None)
                    del self._switch_of[terminal]
            switch = Switch(name, terminals[0], dict(channels), also_terminals=terminals[1:])
            self.switches[name] = switch
            for terminal in terminals:
                self._reroute(terminal, None)
                self._switch_of[terminal] = switch
            return switch

    def select_switch(self, name: str, channel: Hashable | None) -> None:
        """Route the switch's common terminal to ``channel`` (None: all paths open)."""
        with self.lock:
            self.sync()
            switch = self.switches[name]
            if channel is not None and channel not in switch.channels:
                raise KeyError(f"switch {name!r} has no channel {channel!r}")
            target = None if channel is None else switch.channels[channel]
            for terminal in switch.common_terminals:
                self._reroute(terminal, target)
            switch.selected = channel

    def _reroute(self, terminal: str, device: str | None) -> None:
        """``terminal`` reaches ``device`` from now on; the devices whose drive this may change are brought up
        to now first."""
        old = self._routes.get(terminal)
        if old == device:
            return
        for name in (old, device):
            if name is not None:
                self._bring_up(name)
        if old is not None:
            self._reaching[old].discard(terminal)
        if device is not None:
            self._reaching[device].add(terminal)
        self._routes[terminal] = device

    def device_at(self, terminal: str) -> tuple[str, Any] | None:
        """The device a terminal reaches now, as (name, cell), or None."""
        name = self._routes.get(terminal)
        return None if name is None else (name, self.devices[name].cell)

    # ------------------------------------------------------------------------------ applying
    def apply_voltage(self, terminal: str, voltage_V: float | None) -> None:
        """The terminal sources ``voltage_V`` (None: open circuit, output off)."""
        self._set_drive(terminal, "open" if voltage_V is None else "voltage", voltage_V)

    def apply_current(self, terminal: str, current_A: float | None) -> None:
        """The terminal sources ``current_A`` out of HI into the device (None: open circuit)."""
        self._set_drive(terminal, "open" if current_A is None else "current", current_A)

    def _set_drive(self, terminal: str, kind: str, value: float | None) -> None:
        with self.lock:
            self.sync()
            name = self._routes.get(terminal)
            if name is not None:
                self._bring_up(name)
            self._drives[terminal] = Drive(kind, float(value or 0.0), next(self._seq))

    def _device_drive(self, device: str) -> Drive:
        """The drive a device sees: the most recently applied non-open drive of the terminals reaching it."""
        best = Drive()
        for terminal in self._reaching.get(device, ()):
            drive = self._drives.get(terminal)
            if drive is not None and drive.kind != "open" and drive.seq > best.seq:
                best = drive
        if best.kind == "open":
            load = self.devices[device].idle_load_ohm_cm2
            if load is not None:
                return Drive("load", float(load))
        return best

    # ------------------------------------------------------------------------------ observing
    def conditions(self, device: str) -> tuple[float, float]:
        """(suns, temperature_K) the device sees now."""
        with self.lock:
            self.sync()
            return self._now(self.devices[device])

    def _routed(self, terminal: str) -> tuple[str, Any] | None:
        """The device the terminal reaches, brought up to now (call with the lock held, after sync)."""
        name = self._routes.get(terminal)
        if name is None:
            return None
        self._bring_up(name)
        return name, self.devices[name].cell

    def current_A(self, terminal: str) -> float:
        """Current out of the terminal's HI into its device (SMU sign) under the present drive."""
        with self.lock:
            self.sync()
            routed = self._routed(terminal)
            drive = self._drives.get(terminal)
            if routed is None or drive is None or drive.kind == "open":
                return 0.0
            if drive.kind == "current" and self._device_drive(routed[0]) is drive:
                return drive.value
            voltage = self.voltage_V(terminal)
            assert voltage is not None
            return self.current_at_voltage_A(terminal, voltage)

    def voltage_V(self, terminal: str) -> float | None:
        """Voltage across the device the terminal reaches (open circuit: its Voc); None if none."""
        with self.lock:
            self.sync()
            routed = self._routed(terminal)
            if routed is None:
                return None
            drive = self._device_drive(routed[0])
            if drive.kind == "voltage":
                return drive.value
            if drive.kind == "load":
                return load_voltage_V(routed[1], drive.value, *self._now(self.devices[routed[0]]))
            return self.voltage_at_current_V(terminal, drive.value if drive.kind == "current" else 0.0)

    def current_at_voltage_A(self, terminal: str, voltage_V: float) -> float:
        """The current (SMU sign) that would flow at ``voltage_V`` now, without changing anything."""
        with self.lock:
            self.sync()
            routed = self._routed(terminal)
            if routed is None:
                return 0.0
            name, cell = routed
            suns, temperature = self._now(self.devices[name])
            return -cell.current_density_mA_cm2(voltage_V, suns, temperature) * cell.area_cm2 * 1e-3

    def voltage_at_current_V(self, terminal: str, current_A: float) -> float | None:
        """The voltage at which the device carries ``current_A`` (SMU sign) now; None if no device."""
        with self.lock:
            self.sync()
            routed = self._routed(terminal)
            if routed is None:
                return None
            name, cell = routed
            j = -current_A * 1e3 / cell.area_cm2
            return float(cell.voltage_at_current_density(j, *self._now(self.devices[name])))

    def admittance(self, terminal: str, frequency_Hz: float) -> tuple[float, float] | None:
        """(C_F, G_S) of the device the terminal reaches at its present voltage, or None."""
        with self.lock:
            self.sync()
            routed = self._routed(terminal)
            if routed is None:
                return None
            name, cell = routed
            voltage = self.voltage_V(terminal)
            suns, temperature = self._now(self.devices[name])
            return (float(cell.capacitance_F(voltage, frequency_Hz, temperature, suns=suns)),
                    float(cell.conductance_S(voltage, frequency_Hz, temperature, suns=suns)))

    def readings_at(self, terminal: str, times_s: Any) -> tuple[np.ndarray, np.ndarray]:
        """(voltage_V, current_A) arrays of the device the terminal reaches at clock times ``times_s`` under
        the drive it sees now: a buffered dwell in one pass.

        ``times_s`` must be non-decreasing, from the device's own time (:meth:`device_time_s`) up to the
        world's time: an instrument calls this when its dwell is over (e.g. from a world event scheduled at
        the last reading), and gets what the device did at each instant — through every change of light or
        stage temperature in between — for far less than one call per reading. Current is in SMU sign (out
        of HI into the device); with no device reached the voltage is the sourced level (0 when not sourcing
        a voltage) and the current 0. The device ends at the last time."""
        t = np.asarray(times_s, dtype=float).ravel()
        with self.lock:
            self.sync()
            if t.size and (not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0.0)):
                raise ValueError(f"times_s = {times_s!r}: times must be finite and non-decreasing")
            name = self._routes.get(terminal)
            drive = self._drives.get(terminal, Drive())
            if name is None:
                level = drive.value if drive.kind == "voltage" else 0.0
                return np.full(t.size, level), np.zeros(t.size)
            slot = self.devices[name]
            if t.size and (t[0] < slot.time_s - 1e-9 or t[-1] > self.time_s + 1e-9):
                raise ValueError(f"times_s = {t[0]:.9g} … {t[-1]:.9g} s must lie within the device's time "
                                 f"{slot.time_s:.9g} s and the world's time {self.time_s:.9g} s")
            drive = self._device_drive(name)
            cell = slot.cell
            values = np.empty(t.size)
            i = 0
            t_end = float(t[-1]) if t.size else slot.time_s
            pieces = list(self._pieces(slot, t_end)) or [(slot.time_s, slot.time_s, *self._conditions_at(slot))]
            for t0, t1, suns, temperature in pieces:
                k = int(np.searchsorted(t, t1, side="right")) if t1 < t_end else t.size
                offsets = np.maximum(t[i:k] - t0, 0.0)
                if drive.kind == "voltage":
                    values[i:k] = cell.dwell_at_voltage(offsets, drive.value, suns, temperature)
                else:
                    j = -drive.value * 1e3 / cell.area_cm2 if drive.kind == "current" else 0.0
                    values[i:k] = cell.dwell_at_current(offsets, j, suns, temperature)
                self._advance_cell(cell, drive, t1 - t0 - (float(offsets[-1]) if k > i else 0.0), suns,
                                   temperature)
                slot.time_s = t1
                i = k
            if drive.kind == "voltage":
                return np.full(t.size, drive.value), -values * cell.area_cm2 * 1e-3
            return values, np.full(t.size, drive.value if drive.kind == "current" else 0.0)

    def _conditions_at(self, slot: DeviceSlot) -> tuple[float, float]:
        """(suns, temperature_K) at the device's own time."""
        history = self._stage_history.get(slot.location)
        piece = history.piece(slot.time_s) if history is not None else None
        temperature = piece[0] if piece is not None else self._temperature(slot)
        return self._suns(slot, slot.time_s), temperature

    def _suns(self, slot: DeviceSlot, t_s: float) -> float:
        light = self.lights.get(slot.light) if slot.light is not None else None
        return 0.0 if light is None else light.suns_at(t_s)

    def _now(self, slot: DeviceSlot) -> tuple[float, float]:
        return self._suns(slot, self.time_s), self._temperature(slot)

    def _temperature(self, slot: DeviceSlot) -> float:
        stage = self.stages.get(slot.location)
        return stage.sample_temperature_K if stage is not None else slot.temperature_K

    # ------------------------------------------------------------------------------ devices' time
    def _pieces(self, slot: DeviceSlot, t_end: float) -> Iterator[tuple[float, float, float, float]]:
        """(t0, t1, suns, temperature_K) pieces of constant conditions from the device's time to t_end."""
        light = self.lights.get(slot.light) if slot.light is not None else None
        history = self._stage_history.get(slot.location)
        t = slot.time_s
        while t < t_end:
            t1 = t_end
            if history is not None:
                piece = history.piece(t)
                if piece is None:
                    temperature = self.stages[slot.location].sample_temperature_K
                else:
                    temperature, t1 = piece[0], min(t1, piece[1])
            else:
                temperature = slot.temperature_K
            suns = 0.0
            if light is not None:
                t1 = min(t1, light.next_change_after(t), t + light.max_step_s(t))
                suns = light.suns_at(0.5 * (t + t1))
            yield t, t1, suns, temperature
            t = t1

    @staticmethod
    def _advance_cell(cell: Any, drive: Drive, dt_s: float, suns: float, temperature_K: float) -> None:
        if dt_s <= 0.0:
            return
        if drive.kind == "load":
            # The operating point on the load line J = V/R, re-solved every LOAD_STEP_S: the cell's aging
            # moves it slowly, and within a step it is held (the error is the drift within one step).
            done = 0.0
            while done < dt_s:
                step = min(LOAD_STEP_S, dt_s - done)
                cell.advance(step, load_voltage_V(cell, drive.value, suns, temperature_K), suns, temperature_K)
                done += step
            return
        if drive.kind == "current":
            cell.advance_at_current(dt_s, -drive.value * 1e3 / cell.area_cm2, suns, temperature_K)
        else:
            cell.advance(dt_s, drive.value if drive.kind == "voltage" else None, suns, temperature_K)

    def _bring_up(self, name: str) -> None:
        """Advance device ``name`` from its own time to the world's, through its pieces of constant
        conditions (its drive is constant over the gap: any change of it brings the device up first)."""
        slot = self.devices[name]
        if slot.time_s >= self.time_s:
            return
        drive = self._device_drive(name)
        for t0, t1, suns, temperature in self._pieces(slot, self.time_s):
            self._advance_cell(slot.cell, drive, t1 - t0, suns, temperature)
            slot.time_s = t1
        slot.time_s = self.time_s

    def _bring_up_all(self, which: Callable[[DeviceSlot], bool] = lambda slot: True) -> None:
        for name, slot in self.devices.items():
            if which(slot):
                self._bring_up(name)

    def _prune_histories(self) -> None:
        """Forget light settings and stage temperatures older than every device that may still need them."""
        oldest: dict[str, float] = {}
        for slot in self.devices.values():
            for key in (f"light:{slot.light}", f"stage:{slot.location}"):
                oldest[key] = min(oldest.get(key, math.inf), slot.time_s)
        for name, light in self.lights.items():
            light.forget_before(oldest.get(f"light:{name}", self.time_s))
        for name, history in self._stage_history.items():
            history.forget_before(oldest.get(f"stage:{name}", self.time_s))

    # ---------------------------------------------------------------------------------- faults
    def set_fault(self, kind: str, on: bool = True, target: str | None = None) -> None:
        """Physical faults: ``lamp_failure`` (of light ``target``), ``heater_runaway`` and ``open_sensor``
        (of stage ``target``, default ``"stage"``)."""
        with self.lock:
            if kind == "lamp_failure":
                self.light(target or "light").set_failed(on)
            elif kind in ("heater_runaway", "open_sensor"):
                self.stage_named(target or "stage").set_fault(kind, on)
            else:
                raise ValueError(f"unknown physical fault {kind!r}")

    # ------------------------------------------------------------------------------------- time
    def schedule(self, time_s: float, callback: EventCallback) -> Event:
        """Call ``callback(time_s)`` when the world reaches ``time_s`` (devices exact at that instant)."""
        with self.lock:
            event = Event(float(time_s), next(self._seq), callback)
            heapq.heappush(self._events, event)
            return event

    def cancel(self, event: Event) -> None:
        event.cancelled = True

    def next_event_s(self) -> float | None:
        with self.lock:
            while self._events and self._events[0].cancelled:
                heapq.heappop(self._events)
            return self._events[0].time_s if self._events else None

    def sync(self) -> None:
        """Catch up with the clock (no-op while the world is already stepping or dispatching)."""
        now = self.clock.now()
        with self.lock:
            if not self._busy and (now > self.time_s or (self._events and self._events[0].time_s <= now)):
                self.advance_to(now)

    def advance_to(self, t_s: float) -> None:
        """Bring the stages and due events up to clock time ``t_s`` (devices follow when they are read)."""
        with self.lock:
            if self._busy:
                return
            self._busy = True
            try:
                while True:
                    due = self.next_event_s()
                    if due is None or due > t_s:
                        self._evolve(t_s)
                        return
                    self._evolve(due)
                    event = heapq.heappop(self._events)
                    event.callback(max(event.time_s, self.time_s))
            finally:
                self._busy = False

    def _evolve(self, t_end: float) -> None:
        """The stages step exactly to t_end; an occupied stage records its steps for its devices."""
        for name, stage in self.stages.items():
            history = self._stage_history[name] if self._occupancy[name] else None
            while stage.time_s < t_end:
                t0, before_K = stage.time_s, stage.sample_temperature_K
                stage.evolve_to(stage.prepare_step(t_end, resolve=history is not None))
                if history is not None and stage.time_s > t0:
                    history.record(t0, stage.time_s, 0.5 * (before_K + stage.sample_temperature_K))
            if history is not None and len(history.starts) > HISTORY_PRUNE_LENGTH:
                self._prune_histories()
        self.time_s = max(self.time_s, t_end)
        if any(len(light._history_times) > HISTORY_PRUNE_LENGTH for light in self.lights.values()):
            self._prune_histories()

    # ------------------------------------------------------------------------------- snapshots
    def add_dwell_server(self, serve_due: Callable[[], None]) -> None:
        """``serve_due()`` serves an instrument's buffered readings due by the world's time; the world calls
        it before a snapshot brings every device up to the clock, so a dwell under way on another channel
        reads each instant as it happened instead of the device's state at the snapshot."""
        with self.lock:
            self._dwell_servers.append(serve_due)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue a simulated run later (checkpoint / resume); every device is
        brought up to the clock first (the readings of the dwells under way served before)."""
        with self.lock:
            self.sync()
            for serve_due in list(self._dwell_servers):
                serve_due()
            self._bring_up_all()
            return {"time_s": self.time_s,
                    "devices": {n: s.cell.state_dict() for n, s in self.devices.items()},
                    "stages": {n: s.state_dict() for n, s in self.stages.items()},
                    "lights": {n: x.state_dict() for n, x in self.lights.items()},
                    "switches": {n: s.selected for n, s in self.switches.items()}}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` into a world built the same way on a clock at the saved time
        (instruments re-apply their drives when they reconnect)."""
        with self.lock:
            self.time_s = float(state.get("time_s", self.time_s))
            for name, cell_state in state.get("devices", {}).items():
                self.devices[name].cell.load_state(cell_state)
            for slot in self.devices.values():
                slot.time_s = self.time_s
            for name, stage_state in state.get("stages", {}).items():
                self.stage_named(name).load_state(stage_state)
            for stage in self.stages.values():
                stage.time_s = self.time_s
            for history in self._stage_history.values():
                history.clear()
            for name, light_state in state.get("lights", {}).items():
                self.light(name).load_state(light_state)
            for name, selected in state.get("switches", {}).items():
                switch = self.switches[name]
                target = None if selected is None else switch.channels[selected]
                for terminal in switch.common_terminals:
                    self._reroute(terminal, target)
                switch.selected = selected
