"""What the driver protocol tests and the mock tests share.

- :class:`FailingAdapter` / :func:`failing_instrument`: a protocol adapter whose link drops on one command;
- the simulated benches' worlds (:func:`cell_world`, :func:`pixel_world`, :func:`lamp_world`);
- :class:`SimBench` / :class:`RawBench`: a world with a mock in it, spoken to in raw messages;
- :func:`sim_driver` / :func:`driver_over_tcp`: the real driver on a mock, in-process or over TCP;
- the checks several SMU mock tests make alike (:func:`check_isc_then_voc`, :func:`check_short_sweep`) and
  the fault-recovery checks (:func:`check_smu_recovers`, :func:`check_permanent_drop`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import pytest
from pymeasure.adapters import ProtocolAdapter

from drivers.link_settings import resolve
from drivers.transport import SimAdapter, open_sim, open_visa
from labctl.clock import Clock, VirtualClock
from labctl.errors import ConnectionLost
from mock_instruments.base import MockConnection
from mock_instruments.light import LightField
from mock_instruments.presets import preset
from mock_instruments.server import serve
from mock_instruments.world import World

#: The area of every simulated test cell, cm².
AREA_CM2 = 0.1

Driver = TypeVar("Driver")


# ------------------------------------------------------------------------------------ protocol tests
class FailingAdapter(ProtocolAdapter):
    """A protocol adapter whose link drops when one given command is written."""

    def __init__(self, comm_pairs, fail_on: str) -> None:
        super().__init__(comm_pairs)
        self.fail_on = fail_on

    def _write(self, command: str, **kwargs) -> None:
        if command == self.fail_on:
            raise ConnectionResetError("link dropped")
        super()._write(command, **kwargs)


def failing_instrument(driver_class: type[Driver], comm_pairs: Sequence[tuple[str | None, str | None]],
                       fail_on: str) -> tuple[FailingAdapter, Driver]:
    """A driver (on a virtual clock) on a :class:`FailingAdapter` that expects ``comm_pairs`` and drops the
    link when ``fail_on`` is written; the adapter too, to see how far the exchange got."""
    adapter = FailingAdapter(list(comm_pairs), fail_on=fail_on)
    return adapter, driver_class(adapter, clock=VirtualClock())


# ------------------------------------------------------------------------------------------- worlds
def steady_light(world: World, name: str = "light", **options: Any) -> LightField:
    """A light in ``world`` with no warm-up and no drift, so readings can be compared with fixed numbers."""
    return world.add_light(name, warmup_tau_s=0.0, drift_fraction=0.0, **options)


def cell_world(seed: int, *, lit: bool = True, dark_cell: bool = False) -> World:
    """A wbg_ref cell (``"cell"``, :data:`AREA_CM2`) under a steady light (``"light"``, shutter open if ``lit``);
    with ``dark_cell`` a second one (``"dark"``) that no light reaches. Wiring is the caller's."""
    world = World(seed=seed)
    steady_light(world, shutter_open=lit)
    world.add_device("cell", preset("wbg_ref", area_cm2=AREA_CM2))
    if dark_cell:
        world.add_device("dark", preset("wbg_ref", area_cm2=AREA_CM2), light=None)
    return world


def pixel_world(seed: int, switch: str, presets: Sequence[str]) -> World:
    """Pixels ``pix1``, ``pix2``, ... (one per preset, :data:`AREA_CM2`) under an open steady light, routed by
    the switch ``switch`` (channels 1, 2, ...) to the SMU terminal ``"smu"``, which holds 0 V."""
    world = World(seed=seed)
    steady_light(world, shutter_open=True)
    for channel, name in enumerate(presets, start=1):
        world.add_device(f"pix{channel}", preset(name, area_cm2=AREA_CM2))
    world.add_switch(switch, "smu", {channel: f"pix{channel}" for channel in range(1, len(presets) + 1)})
    world.apply_voltage("smu", 0.0)
    return world


def wired_mock(mock_class: type[Driver], seed: int, terminal: str = "smu", **options: Any) -> Driver:
    """A mock of ``mock_class`` named ``terminal`` in a :func:`cell_world` whose lit cell it is wired to."""
    world = cell_world(seed)
    world.wire(terminal, "cell")
    return mock_class(world, terminal, **options)  # type: ignore[call-arg]


def lamp_world(seed: int, light: str, cell_preset: str, *, create_light: bool = True) -> World:
    """A cell (``cell_preset``, :data:`AREA_CM2`) lit only by the light ``light`` (steady, noiseless; left for
    the light source's mock to create unless ``create_light``), on the SMU terminal ``"smu"`` at 0 V."""
    world = World(seed=seed)
    if create_light:
        steady_light(world, light, noise_fraction=0.0)
    world.add_device("cell", preset(cell_preset, area_cm2=AREA_CM2), light=light)
    world.wire("smu", "cell")
    world.apply_voltage("smu", 0.0)
    return world


# ------------------------------------------------------------------------------------------ benches
class SimBench:
    """A simulated bench: ``self.world`` with the mock(s) under test in it."""

    world: World

    def photocurrent_A(self) -> float:
        """The current the cells deliver into the SMU terminal ``"smu"`` (positive under light)."""
        return -self.world.current_A("smu")

    def settle(self, seconds: float) -> None:
        """Let virtual time pass and bring the world up to it (as any query would)."""
        self.world.clock.sleep(seconds)
        self.world.sync()


class RawBench(SimBench):
    """A bench whose mock is spoken to in raw messages over its in-process connection ``self.conn``."""

    conn: MockConnection
    #: The query that reads one error-queue entry ``<code>,<message>`` (code 0: empty).
    error_query = ":SYST:ERR?"

    def write(self, *messages: str) -> None:
        for message in messages:
            self.conn.write(message)

    def ask(self, message: str) -> str:
        self.conn.write(message)
        return self.conn.read()

    def values(self, message: str) -> np.ndarray:
        """A comma-separated numeric reply as an array."""
        return np.array(self.ask(message).split(","), float)

    def errors(self) -> list[int]:
        """Every code in the error queue, oldest first (the queue is empty afterwards)."""
        codes = []
        while (code := int(self.ask(self.error_query).split(",")[0])) != 0:
            codes.append(code)
        return codes


# ------------------------------------------------------------------------------------------ drivers
def sim_driver(driver_class: type[Driver], mock: Any, address: str, clock: Clock, *, reconnect: bool = True,
               **options: Any) -> Driver:
    """The real driver on ``mock`` in-process, named like the mock, its link set up from the driver's
    connection defaults (e.g. a Lake Shore's pause between commands); with ``reconnect`` a dropped link is
    reopened (``adapter_factory``)."""
    settings = resolve(driver_class, address)

    def factory() -> SimAdapter:
        return open_sim(mock, settings, clock)

    if reconnect:
        options["adapter_factory"] = factory
    return driver_class(factory(), mock.name, address=address, clock=clock, **options)


@contextmanager
def driver_over_tcp(driver_class: type[Driver], mock: Any, clock: Clock) -> Iterator[Driver]:
    """The real driver on ``mock`` served by the simulation's TCP server, through pyvisa (named like the mock,
    its address the TCP resource); the link is closed afterwards."""
    with serve({mock.name: mock}, port_base=0) as server:
        resource = server.endpoints[0][2]
        adapter = open_visa(resource, timeout_ms=2000, visa_library="@py")  # never the system's VISA
        try:
            yield driver_class(adapter, mock.name, address=resource, clock=clock)
        finally:
            adapter.close()


@contextmanager
def served(mock: Any) -> Iterator[str]:
    """``mock`` on the simulation's TCP server (what ``labctl sim serve`` runs); yields its VISA resource."""
    with serve({mock.name: mock}, port_base=0) as server:
        yield server.endpoints[0][2]


@contextmanager
def pymeasure_client(driver_class: type[Driver], resource: str, **options: Any) -> Iterator[Driver]:
    """A client driver written by other people (pymeasure's) on ``resource`` through pyvisa-py, the way its
    users open it; the link is closed afterwards."""
    client = driver_class(resource, visa_library="@py", read_termination="\n", write_termination="\n",
                          timeout=5000, **options)
    try:
        yield client
    finally:
        client.adapter.close()


def source_and_switch_on(smu: Any, voltage_V: float, *, nplc: float = 0.1, compliance_A: float | None = 0.01
                         ) -> None:
    """The usual start of an SMU test: current compliance (unless None), NPLC, a voltage level, output on."""
    if compliance_A is not None:
        smu.set_compliance_current(compliance_A)
    smu.set_nplc(nplc)
    smu.source_voltage(voltage_V)
    smu.output_on()


def check_isc_then_voc(smu: Any) -> None:
    """An SMU (channel) on the lit wbg_ref cell of :func:`cell_world`: at 0 V it measures the short-circuit
    current; sourcing 0 A with a 2 V compliance it measures the open-circuit voltage."""
    source_and_switch_on(smu, 0.0)
    voltage, current = smu.measure()
    assert abs(voltage) < 1e-3 and current == pytest.approx(-1.726e-3, rel=0.05)
    smu.set_compliance_voltage(2.0)
    smu.source_current(0.0)
    assert 1.0 < smu.measure()[0] < 1.4


def record_drive(world: World, terminal: str) -> list[float | None]:
    """Every voltage ``terminal`` applies from now on (None: open), in order (the world's ``apply_voltage`` is
    wrapped)."""
    applied: list[float | None] = []
    apply = world.apply_voltage

    def recording(name: str, voltage_V: float | None) -> None:
        if name == terminal:
            applied.append(voltage_V)
        apply(name, voltage_V)

    world.apply_voltage = recording  # type: ignore[method-assign]
    return applied


def check_no_step_back_after_sweep(smu: Any, world: World, terminal: str) -> None:
    """An SMU (channel) at 0 V on ``terminal``: a list sweep 0 -> 0.5 V in 6 points and the driver's clean-up
    afterwards never take the output back to the first level once the last one has been reached (no bias
    step between scans), and the output ends at the last level."""
    applied = record_drive(world, terminal)
    smu.sweep_voltage(np.linspace(0.0, 0.5, 6), 0.05)
    assert None not in applied  # the output never opened
    reached = next(k for k, v in enumerate(applied) if v == pytest.approx(0.5))
    assert applied[reached:] == pytest.approx([0.5] * (len(applied) - reached)), applied[reached:]


def check_short_sweep(smu: Any) -> None:
    """An SMU (channel) on the lit cell with its output on at 0 V: the reading is the photocurrent, and a
    5-point list sweep to 0.2 V, 0.05 s a point, runs at 1 V/s."""
    assert smu.measure()[1] < -1e-3
    result = smu.sweep_voltage(np.linspace(0.0, 0.2, 5), 0.05)
    assert result.achieved_rate_V_s == pytest.approx(1.0, rel=0.02)


# ------------------------------------------------------------------------------------------- faults
def check_smu_recovers(smu: Any, mock: Any, counters: Any, address: str) -> None:
    """An SMU on a lit cell, output switched on at 0 V: a timed-out reading is asked again and a dropped link
    is reopened (``counters``: the instrument that counts retries and reconnects); a link that stays down
    raises :class:`ConnectionLost` naming the SMU and its address."""
    smu.source_voltage(0.0)
    smu.output_on()
    mock.set_faults(timeout=1)
    assert smu.measure()[1] < 0 and counters.retry_count == 1
    mock.set_faults(drop=1)
    assert smu.measure()[1] < 0 and counters.reconnect_count == 1
    mock.set_faults(drop_permanent=True)
    with pytest.raises(ConnectionLost, match=f"{mock.name}, {address}"):
        smu.measure()


def check_permanent_drop(mock: Any, operation: Callable[[], object], instrument: str,
                                      address: str) -> None:
    """A link that stays down: ``operation`` raises :class:`ConnectionLost` naming the instrument and its
    address."""
    mock.set_faults(drop_permanent=True)
    with pytest.raises(ConnectionLost) as info:
        operation()
    assert info.value.instrument == instrument and info.value.address == address
