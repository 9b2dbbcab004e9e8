"""The simulated bench behind a station whose addresses are ``sim://<model>``.

From the station's ``[samples]`` and ``[sim]`` sections this builds one :class:`~mock_instruments.world.World`
(devices from presets, lights, temperature stages, wiring through switches) and one mock per instrument,
then hands drivers in-process adapters to those mocks, or serves the mocks over TCP (`labctl sim serve`).

``[sim]`` keys::

    seed = 0                                   # noise is reproducible
    [sim.stages.hotstage]                      # extra temperature stages (the cryostat "stage" always exists)
    reservoir_K = 298.15
    [sim.lights.sun]                           # options of a light source's light field
    warmup_s = 2.0
    [sim.devices.<sample>]                     # one device per sample
    preset = "wbg_ref"                         # mock_instruments.presets, plus any parameter override
    temperature_K = 298.15                     # bench temperature of a sample without a controller

Instrument options of a ``sim://`` instrument go to its mock (e.g. ``stage = "hotstage"`` for a temperature
controller); ``faults = {timeout = 2}`` injects faults (see :class:`mock_instruments.base.Faults`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from labctl.clock import Clock, RealClock
from labctl.errors import StationError
from labctl.station import Station

LIGHT_DRIVERS = {"wavelabs_sinus70", "newport_lss7120"}
TEMPERATURE_DRIVERS = {"lakeshore336", "mercury_itc"}
_DEVICE_KEYS = {"preset", "temperature_K"}


@dataclass
class Simulation:
    """A built world and the mock of each station instrument, by instrument name."""

    world: Any
    mocks: dict[str, Any] = field(default_factory=dict)


def _terminal(instrument: str, channel: str | None) -> str:
    return f"{instrument}:{channel}" if channel else instrument


def build_world(station: Station, clock: Clock) -> Simulation:
    """The simulated world for a station (see the module docstring for the ``[sim]`` keys)."""
    from mock_instruments.base import Faults
    from mock_instruments.presets import preset
    from mock_instruments.registry import mock_class
    from mock_instruments.world import World

    sim = station.sim
    world = World(clock=clock, seed=int(sim.get("seed", 0)))
    for name, options in dict(sim.get("stages", {})).items():
        world.add_stage(name, **options)
    lights = dict(sim.get("lights", {}))
    for name, spec in station.instruments.items():
        if spec.driver in LIGHT_DRIVERS:
            # A station that says nothing about its light gets the model's own (an LED engine warms up in
            # seconds, a xenon arc in minutes); [sim.lights.<name>] overrides it.
            defaults = dict(getattr(mock_class(spec.driver), "LIGHT_DEFAULTS", {}))
            world.add_light(name, **{**defaults, **lights.get(name, {})})

    devices = dict(sim.get("devices", {}))
    for sample_name, device in devices.items():
        sample = station.sample(sample_name)
        device = dict(device)
        if "preset" not in device:
            raise StationError(f"station {station.source}: [sim.devices.{sample_name}] needs a preset")
        overrides = {k: v for k, v in device.items() if k not in _DEVICE_KEYS}
        overrides.setdefault("area_cm2", sample.area_cm2)
        try:
            cell = preset(device["preset"], **overrides)
        except ValueError as exc:
            raise StationError(f"station {station.source}: [sim.devices.{sample_name}]: {exc}") from exc
        location = "bench"
        if sample.temperature is not None:
            location = str(station.instrument(sample.temperature).options.get("stage", "stage"))
            if location not in world.stages:
                raise StationError(f"station {station.source}: instrument {sample.temperature!r} names stage "
                                   f"{location!r}; stages: {', '.join(world.stages)}")
        world.add_device(sample_name, cell, location=location, light=sample.light,
                         temperature_K=float(device.get("temperature_K", world.ambient_K)),
                         idle_load_ohm_cm2=sample.idle_load_ohm_cm2)

    for ref in station.reference_cells.values():
        # A reference cell sits on the bench at room temperature under its light, wired to its SMU channel.
        from mock_instruments.reference_device import ReferenceDevice

        device_name = f"reference:{ref.name}"
        world.add_device(device_name, ReferenceDevice(ref.isc_A_per_sun, area_cm2=ref.area_cm2),
                         location="bench", light=ref.light, temperature_K=world.ambient_K)
        world.wire(_terminal(ref.smu, ref.smu_channel), device_name)

    # Wiring: samples behind a switch share its common terminals; the others are wired directly.
    switch_terminals: dict[str, list[str]] = {}
    switch_channels: dict[str, dict[Hashable, str]] = {}
    direct: dict[str, str] = {}
    for sample in station.samples.values():
        if sample.name not in devices:
            continue
        terminals = [t for t in (sample.smu and _terminal(sample.smu, sample.smu_channel), sample.lcr) if t]
        if sample.switch is not None and sample.switch_channel is not None:
            for terminal in terminals:
                if terminal not in switch_terminals.setdefault(sample.switch, []):
                    switch_terminals[sample.switch].append(terminal)
            switch_channels.setdefault(sample.switch, {})[sample.switch_channel] = sample.name
            continue
        for terminal in terminals:
            if terminal in direct:
                raise StationError(
                    f"station {station.source}: {terminal} is wired directly to samples {direct[terminal]!r} "
                    f"and {sample.name!r}; route them through a switch"
                )
            direct[terminal] = sample.name
            world.wire(terminal, sample.name)
    for switch, terminals in switch_terminals.items():
        world.add_switch(switch, tuple(terminals), switch_channels[switch])

    simulation = Simulation(world)
    for name, spec in station.instruments.items():
        if not spec.simulated:
            continue
        options = {k: v for k, v in spec.options.items() if k not in {"faults", "driver_options"}}
        if spec.driver in LIGHT_DRIVERS:
            options.setdefault("light", name)
        model = spec.address.removeprefix("sim://").split("/")[0] or spec.driver
        if model != spec.driver:
            raise StationError(f"station {station.source}: instrument {name!r} has driver {spec.driver!r} but "
                               f"address {spec.address!r}; a sim:// address names the same model")
        mock = mock_class(model)(world, name, **options)
        if "faults" in spec.options:
            try:
                mock.set_faults(Faults.from_dict(spec.options["faults"]))
            except ValueError as exc:
                raise StationError(f"station {station.source}: instrument {name!r}: {exc}") from exc
        simulation.mocks[name] = mock
    return simulation


def check_simulation(station: Station) -> None:
    """Build the station's simulated world once, on a throwaway clock, to refuse a bad ``[sim]`` section (a
    misspelt preset, an unknown parameter, a stage that does not exist) before anything is created."""
    from labctl.clock import VirtualClock

    try:
        build_world(station, VirtualClock())
    except StationError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise StationError(f"station {station.source}: the simulated world cannot be built: {exc}") from None


def sim_adapter_factory(simulation: Simulation, name: str) -> Callable[[], Any]:
    """Opens a fresh in-process session with the instrument's mock (also used to reconnect)."""
    from drivers.transport import SimAdapter

    try:
        mock = simulation.mocks[name]
    except KeyError:
        raise StationError(f"instrument {name!r} is not part of the simulated world") from None

    def factory() -> Any:
        return SimAdapter(mock)

    return factory


def serve_station(station: Station, *, host: str = "127.0.0.1", port_base: int = 5025,
                  dial: dict[str, str] | None = None, clock: Clock | None = None) -> Any:
    """Serve every mock of a simulated station over TCP (see :func:`mock_instruments.server.serve`);
    ``dial`` tells instruments that connect out (the SINUS-70) where to connect, by instrument name.

    The served world runs on real time (``clock``, by default a :class:`~labctl.clock.RealClock`; pass one
    with ``speed`` > 1 to run faster): a client that waits, as every client of real hardware does, sees a
    sweep progress and a stage cool while it waits."""
    if not station.simulated:
        raise StationError(f"station {station.source} has no simulated (sim://) instruments to serve")
    simulation = build_world(station, clock if clock is not None else RealClock())
    from mock_instruments.server import serve

    try:
        return serve(simulation.mocks, host=host, port_base=port_base, dial=dial)
    except ValueError as exc:
        raise StationError(f"station {station.source}: {exc}") from None


def served_station_text(station: Station, endpoints: list[tuple[str, str, str]]) -> str:
    """A station file (TOML) that reaches the served instruments at ``endpoints`` (name, model, address) with
    the real transports: the same samples and link policy, each instrument's driver and driver options, the
    served address, and nothing of the simulated world."""
    import tomllib

    import tomli_w

    data = tomllib.loads(station.text)
    served = {name: address for name, _model, address in endpoints}
    instruments = {}
    for name, spec in station.instruments.items():
        if name not in served:
            continue
        table: dict[str, Any] = {"driver": spec.driver, "address": served[name]}
        for key in ("driver_options", "reconnect"):
            if key in spec.options:
                table[key] = spec.options[key]
        instruments[name] = table
    out: dict[str, Any] = {"name": f"{station.name} (served)", "instruments": instruments,
                           "samples": data.get("samples", {})}
    if "reconnect" in data:
        out["reconnect"] = data["reconnect"]
    header = (f"# The instruments of station {station.source!r} as served by `labctl sim serve`: real transports "
              "to the simulated bench.\n")
    return header + tomli_w.dumps(out)


def true_mpp(simulation: Simulation, sample: str) -> tuple[float, float]:
    """The simulated cell's true steady-state maximum power point now — for that moment's light, temperature
    and state of aging — as (Vmpp in V, Pmpp in mW/cm²); a tracker's result is judged against it. (0, 0) in the
    dark."""
    import numpy as np

    world = simulation.world
    # The whole computation under the world's lock: another thread advancing the world meanwhile (the
    # environment log, another channel) would change the cell's state between the two grids, and the
    # "truth" would mix two moments (seen as a spurious dip of the true PCE in a loaded test run).
    with world.lock:
        world.sync()
        cell = world.device(sample)
        suns, temperature = world.conditions(sample)
        if suns <= 0:
            return 0.0, 0.0
        voc = float(cell.steady_voc_V(suns, temperature))
        grid = np.linspace(0.0, voc, 64)
        power = grid * np.asarray(cell.steady_state_jv(grid, suns, temperature))
        k = int(np.clip(np.argmax(power), 1, grid.size - 2))
        fine = np.linspace(grid[k - 1], grid[k + 1], 41)
        fine_power = fine * np.asarray(cell.steady_state_jv(fine, suns, temperature))
    best = int(np.argmax(fine_power))
    return float(fine[best]), float(fine_power[best])
