"""The simulated bench's one physical world: devices, lights, the cryostat stage, wiring and the clock.

Every instrument mock holds the same :class:`World` and acts on it through its terminal(s): a terminal is
``"<instrument name>"`` or ``"<instrument name>:<channel>"`` (``"smu"``, ``"smu2:a"``, ``"lcr"``). The world
routes a terminal to a device by a direct wire (:meth:`World.wire`) or through a multiplexer
(:meth:`World.add_switch` / :meth:`World.select_switch`).

Time: device states are exact at :attr:`World.time_s`. Whenever anyone reads or changes something the
world first catches up with its clock (:meth:`World.sync`): between changes the conditions of each device
(applied voltage or current, light, temperature) are piecewise constant, so the world calls
``cell.advance(dt, V, suns, T)`` once per interval, cut only where the light warms up or drifts, the
stage temperature moves under a controller, or an instrument scheduled an event
(:meth:`World.schedule`, e.g. each point of an SMU's timed sweep). A current-sourced device is stepped with
geometrically growing sub-steps so its voltage follows the ions. If nothing changed, a sync costs one
clock read.

Noise everywhere comes from :meth:`World.rng_for`: one ``numpy`` generator per instrument, seeded from the
world's seed and the instrument's name, so runs are reproducible whatever the creation order.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import zlib
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labctl.clock import Clock, VirtualClock
from mock_instruments.cryostat import CryostatStage
from mock_instruments.light import LightField

AMBIENT_K = 298.15
EventCallback = Callable[[float], None]


@dataclass
class DeviceSlot:
    """A device under test and where it sits: on a temperature stage (its name, ``"stage"`` by default)
    or on the ``"bench"`` at a fixed temperature."""

    name: str
    cell: Any
    location: str = "bench"
    light: str | None = "light"
    temperature_K: float = AMBIENT_K  # bench (hot-plate) temperature; the stage sets its own


@dataclass
class Switch:
    """A multiplexer. Several instruments may share it (an SMU and an LCR meter on one pixel matrix):
    every terminal in ``common_terminals`` reaches the selected channel's device."""

    name: str
    common_terminal: str
    channels: dict[Hashable, str]
    selected: Hashable | None = None
    also_terminals: tuple[str, ...] = ()

    @property
    def common_terminals(self) -> tuple[str, ...]:
        return (self.common_terminal, *self.also_terminals)


@dataclass
class Drive:
    """What one terminal applies: ``"open"``, ``"voltage"`` (V) or ``"current"`` (A, out of HI)."""

    kind: str = "open"
    value: float = 0.0
    seq: int = 0


@dataclass(order=True)
class Event:
    time_s: float
    seq: int
    callback: EventCallback = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class World:
    """Shared state of the simulated bench (see the module docstring)."""

    def __init__(self, clock: Clock | None = None, seed: int = 0, ambient_K: float = AMBIENT_K) -> None:
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.seed = int(seed)
        self.ambient_K = float(ambient_K)
        self.lock = threading.RLock()
        self.time_s = self.clock.now()
        self.devices: dict[str, DeviceSlot] = {}
        self.lights: dict[str, LightField] = {}
        self.switches: dict[str, Switch] = {}
        self.wires: dict[str, str] = {}
        self._drives: dict[str, Drive] = {}
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
                   temperature_K: float = AMBIENT_K) -> Any:
        """Put ``cell`` (a device.py cell) on a stage (by name) or the ``"bench"``, lit by light ``light``."""
        if location != "bench" and location not in self.stages:
            raise ValueError(f"device {name!r}: location must be 'bench' or a stage "
                             f"({', '.join(self.stages)}), not {location!r}")
        with self.lock:
            self.sync()
            if name in self.devices:
                raise ValueError(f"device {name!r} exists already")
            self.devices[name] = DeviceSlot(name, cell, location, light, float(temperature_K))
            return cell

    def add_light(self, name: str = "light", **options: Any) -> LightField:
        """A light source (options: see :class:`LightField`); replaces one of the same name."""
        with self.lock:
            self.sync()
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
            options.setdefault("ambient_K", self.ambient_K)
            options.setdefault("temperature_K", self.ambient_K)
            stage = CryostatStage(rng=self.rng_for(name), now_s=self.time_s, **options)
            stage.before_change = self.sync
            self.stages[name] = stage
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
        return self.devices[name].cell

    def set_device_temperature(self, name: str, temperature_K: float) -> None:
        """Hot-plate temperature of a bench device."""
        with self.lock:
            self.sync()
            slot = self.devices[name]
            if slot.location != "bench":
                raise ValueError(f"device {name!r} is on the stage: its temperature is the stage's")
            slot.temperature_K = float(temperature_K)

    # ------------------------------------------------------------------------------------ wiring
    def wire(self, terminal: str, device: str) -> None:
        """Connect an instrument terminal straight to a device."""
        with self.lock:
            self.sync()
            if device not in self.devices:
                raise KeyError(f"cannot wire {terminal!r}: no device {device!r}")
            if any(terminal in s.common_terminals for s in self.switches.values()):
                raise ValueError(f"terminal {terminal!r} is a switch's common terminal")
            self.wires[terminal] = device

    def unwire(self, terminal: str) -> None:
        with self.lock:
            self.sync()
            self.wires.pop(terminal, None)

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
            switch = Switch(name, terminals[0], dict(channels), also_terminals=terminals[1:])
            self.switches[name] = switch
            return switch

    def select_switch(self, name: str, channel: Hashable | None) -> None:
        """Route the switch's common terminal to ``channel`` (None: all paths open)."""
        with self.lock:
            self.sync()
            switch = self.switches[name]
            if channel is not None and channel not in switch.channels:
                raise KeyError(f"switch {name!r} has no channel {channel!r}")
            switch.selected = channel

    def device_at(self, terminal: str) -> tuple[str, Any] | None:
        """The device a terminal reaches now, as (name, cell), or None."""
        for switch in self.switches.values():
            if terminal in switch.common_terminals:
                if switch.selected is None:
                    return None
                name = switch.channels[switch.selected]
                return name, self.devices[name].cell
        name_or_none = self.wires.get(terminal)
        return None if name_or_none is None else (name_or_none, self.devices[name_or_none].cell)

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
            self._drives[terminal] = Drive(kind, float(value or 0.0), next(self._seq))

    def _device_drive(self, device: str) -> Drive:
        """The drive a device sees: the most recently applied non-open drive of the terminals reaching it."""
        best = Drive()
        for terminal, drive in self._drives.items():
            if drive.kind != "open" and drive.seq > best.seq:
                routed = self.device_at(terminal)
                if routed is not None and routed[0] == device:
                    best = drive
        return best

    # ------------------------------------------------------------------------------ observing
    def conditions(self, device: str) -> tuple[float, float]:
        """(suns, temperature_K) the device sees now."""
        with self.lock:
            self.sync()
            return self._now(self.devices[device])

    def current_A(self, terminal: str) -> float:
        """Current out of the terminal's HI into its device (SMU sign) under the present drive."""
        with self.lock:
            self.sync()
            routed = self.device_at(terminal)
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
            routed = self.device_at(terminal)
            if routed is None:
                return None
            drive = self._device_drive(routed[0])
            if drive.kind == "voltage":
                return drive.value
            return self.voltage_at_current_V(terminal, drive.value if drive.kind == "current" else 0.0)

    def current_at_voltage_A(self, terminal: str, voltage_V: float) -> float:
        """The current (SMU sign) that would flow at ``voltage_V`` now, without changing anything."""
        with self.lock:
            self.sync()
            routed = self.device_at(terminal)
            if routed is None:
                return 0.0
            name, cell = routed
            suns, temperature = self._now(self.devices[name])
            return -cell.current_density_mA_cm2(voltage_V, suns, temperature) * cell.area_cm2 * 1e-3

    def voltage_at_current_V(self, terminal: str, current_A: float) -> float | None:
        """The voltage at which the device carries ``current_A`` (SMU sign) now; None if no device."""
        with self.lock:
            self.sync()
            routed = self.device_at(terminal)
            if routed is None:
                return None
            name, cell = routed
            j = -current_A * 1e3 / cell.area_cm2
            return float(cell.voltage_at_current_density(j, *self._now(self.devices[name])))

    def admittance(self, terminal: str, frequency_Hz: float) -> tuple[float, float] | None:
        """(C_F, G_S) of the device the terminal reaches at its present voltage, or None."""
        with self.lock:
            self.sync()
            routed = self.device_at(terminal)
            if routed is None:
                return None
            name, cell = routed
            voltage = self.voltage_V(terminal)
            suns, temperature = self._now(self.devices[name])
            return (float(cell.capacitance_F(voltage, frequency_Hz, temperature, suns=suns)),
                    float(cell.conductance_S(voltage, frequency_Hz, temperature, suns=suns)))

    def _suns(self, slot: DeviceSlot, t_s: float) -> float:
        light = self.lights.get(slot.light) if slot.light is not None else None
        return 0.0 if light is None else light.suns_at(t_s)

    def _now(self, slot: DeviceSlot) -> tuple[float, float]:
        return self._suns(slot, self.time_s), self._temperature(slot)

    def _temperature(self, slot: DeviceSlot) -> float:
        stage = self.stages.get(slot.location)
        return stage.sample_temperature_K if stage is not None else slot.temperature_K

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
        """Bring every device, the stage and due events up to clock time ``t_s``."""
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
        occupied = {s.location for s in self.devices.values()}
        lit = {s.light for s in self.devices.values() if s.light in self.lights}
        while self.time_s < t_end:
            t0 = self.time_s
            t1 = t_end
            for name, stage in self.stages.items():
                t1 = min(t1, stage.prepare_step(t_end, resolve=name in occupied))
            for name in lit:
                t1 = min(t1, t0 + self.lights[name].max_step_s(t0))
            mean_K: dict[str, float] = {}
            for name, stage in self.stages.items():
                before_K = stage.sample_temperature_K
                stage.evolve_to(t1)
                mean_K[name] = 0.5 * (before_K + stage.sample_temperature_K)
            for slot in self.devices.values():
                suns = self._suns(slot, 0.5 * (t0 + t1))
                temperature = mean_K.get(slot.location, slot.temperature_K)
                self._advance_device(slot, t1 - t0, suns, temperature)
            self.time_s = t1

    def _advance_device(self, slot: DeviceSlot, dt_s: float, suns: float, temperature_K: float) -> None:
        drive = self._device_drive(slot.name)
        cell = slot.cell
        if drive.kind != "current":
            cell.advance(dt_s, drive.value if drive.kind == "voltage" else None, suns, temperature_K)
            return
        j = -drive.value * 1e3 / cell.area_cm2
        done, step = 0.0, 1e-3
        while done < dt_s:
            h = min(step, dt_s - done)
            cell.advance(h, cell.voltage_at_current_density(j, suns, temperature_K), suns, temperature_K)
            done += h
            step *= 2.0

    # ------------------------------------------------------------------------------- snapshots
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue a simulated run later (checkpoint / resume)."""
        with self.lock:
            self.sync()
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
            for name, stage_state in state.get("stages", {}).items():
                self.stage_named(name).load_state(stage_state)
            for stage in self.stages.values():
                stage.time_s = self.time_s
            for name, light_state in state.get("lights", {}).items():
                self.light(name).load_state(light_state)
            for name, selected in state.get("switches", {}).items():
                self.switches[name].selected = selected
