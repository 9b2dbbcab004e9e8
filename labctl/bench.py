"""A connected station: driver instances behind role accessors.

Procedures ask the bench for a role by sample (``bench.source_meter("pixel1")``) and get an object that
satisfies :mod:`labctl.roles`; the bench selects the pixel on its switch. For ``sim://`` addresses the bench
builds the simulated world (see :mod:`labctl.sim_bench`) and connects the drivers to its mocks in-process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from labctl.clock import Clock
from labctl.errors import InstrumentError, StationError
from labctl.reference_cell import ReferenceCellReader
from labctl.roles import LCRMeter, LightSource, ReferenceCell, SourceMeter, Switch, TemperatureController
from labctl.station import SampleSpec, Station

log = logging.getLogger(__name__)


class Bench:
    """Connected instruments of one station for one run. Close it to release every connection."""

    def __init__(self, station: Station, clock: Clock, drivers: dict[str, Any], simulation: Any = None) -> None:
        self.station = station
        self.clock = clock
        self.drivers = drivers
        self.simulation = simulation
        self._reference_cells: dict[str, ReferenceCellReader] = {}

    @classmethod
    def connect(cls, station: Station, names: Iterable[str], *, clock: Clock | None = None,
                simulation: Any = None) -> Bench:
        """Open each named instrument; on any failure close what was opened and raise."""
        names = list(dict.fromkeys(names))
        if clock is None:
            clock = station.make_clock()
        if station.simulated and simulation is None:
            from labctl.sim_bench import build_world

            simulation = build_world(station, clock)
        drivers: dict[str, Any] = {}
        try:
            for name in names:
                drivers[name] = open_driver(station, name, clock, simulation)
        except BaseException:  # Ctrl-C while connecting too: release every session already opened
            for driver in drivers.values():
                _close_quietly(driver)
            raise
        return cls(station, clock, drivers, simulation)

    def ensure_connected(self, names: Iterable[str]) -> None:
        """Connect the named instruments not connected yet (a session's bench grows with the runs it serves)."""
        for name in dict.fromkeys(names):
            if name not in self.drivers:
                self.drivers[name] = open_driver(self.station, name, self.clock, self.simulation)

    @property
    def names(self) -> list[str]:
        return list(self.drivers)

    def instrument(self, name: str) -> Any:
        try:
            return self.drivers[name]
        except KeyError:
            raise StationError(f"instrument {name!r} is not connected in this run") from None

    # --------------------------------------------------------------------------- role accessors
    def _sample_role(self, sample: str | SampleSpec, role: str) -> tuple[SampleSpec, Any]:
        spec = sample if isinstance(sample, SampleSpec) else self.station.sample(sample)
        name = getattr(spec, role)
        if name is None:
            raise StationError(f"sample '{spec.name}' has no {role} in station {self.station.source}")
        return spec, self.instrument(name)

    def source_meter(self, sample: str | SampleSpec) -> SourceMeter:
        spec, driver = self._sample_role(sample, "smu")
        role = driver.channel(spec.smu_channel) if spec.smu_channel else driver
        return role

    def lcr(self, sample: str | SampleSpec) -> LCRMeter:
        return self._sample_role(sample, "lcr")[1]

    def light(self, sample: str | SampleSpec) -> LightSource:
        return self._sample_role(sample, "light")[1]

    def temperature_controller(self, sample: str | SampleSpec) -> TemperatureController:
        return self._sample_role(sample, "temperature")[1]

    def reference_cell(self, light: str | None) -> ReferenceCell | None:
        """The reference cell that sees ``light`` (a light instrument's name), or None if the station has
        none there; its SMU must be connected (``Station.reference_cell_for`` tells procedures which)."""
        spec = self.station.reference_cell_for(light)
        if spec is None:
            return None
        driver = self.instrument(spec.smu)
        if spec.name not in self._reference_cells:
            smu = driver.channel(spec.smu_channel) if spec.smu_channel else driver
            self._reference_cells[spec.name] = ReferenceCellReader(spec, smu)
        return self._reference_cells[spec.name]

    def simulated_mpp(self, sample: str) -> tuple[float, float] | None:
        """On a simulated station, the sample's true steady-state (Vmpp V, Pmpp mW/cm²) now; None on hardware."""
        if self.simulation is None:
            return None
        from labctl.sim_bench import true_mpp

        return true_mpp(self.simulation, sample)

    def switch(self, sample: str | SampleSpec) -> Switch | None:
        spec = sample if isinstance(sample, SampleSpec) else self.station.sample(sample)
        return self.instrument(spec.switch) if spec.switch else None

    def select(self, sample: str | SampleSpec) -> None:
        """Route the sample's pixel through its switch (no-op for directly wired samples)."""
        spec = sample if isinstance(sample, SampleSpec) else self.station.sample(sample)
        if spec.switch is not None and spec.switch_channel is not None:
            self.instrument(spec.switch).select_channel(spec.switch_channel)

    # ------------------------------------------------------------------------------- bookkeeping
    def describe_instruments(self, names: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """IDN, address, driver and a settings snapshot per instrument (all, or the named), for the run file."""
        described: dict[str, dict[str, Any]] = {}
        for name in self.drivers if names is None else names:
            driver = self.drivers[name]
            spec = self.station.instrument(name)
            try:
                idn = driver.identify()
            except Exception as exc:
                idn = f"(identification failed: {exc})"
            try:
                settings = driver.settings_snapshot()
            except Exception as exc:
                settings = {"error": str(exc)}
            described[name] = {"idn": idn, "address": spec.address, "driver": spec.driver,
                               "settings": settings}
        return described

    def safe_state_all(self) -> dict[str, str]:
        """Every instrument to its safe state; returns the problems by instrument (empty when all went well).

        Each instrument is tried even when another failed: one dead controller must not leave a lamp on, and
        a second Ctrl-C while one instrument is being made safe must not skip the others.
        """
        problems: dict[str, str] = {}
        for name, driver in self.drivers.items():
            try:
                driver.safe_state()
            except BaseException as exc:
                log.error("%s: safe state failed: %s", name, exc)
                problems[name] = str(exc) or type(exc).__name__
        # The SMUs under the reference cells are off now: the readers must set them up again on the next
        # reading (a session kept across runs would otherwise read a dark cell on an SMU left off).
        for reader in self._reference_cells.values():
            try:
                reader.safe_state()
            except BaseException as exc:
                log.error("reference cell %s: safe state failed: %s", reader.name, exc)
                problems.setdefault(reader.spec.smu, str(exc) or type(exc).__name__)
        return problems

    def close(self) -> None:
        for driver in self.drivers.values():
            _close_quietly(driver)
        self.drivers = {}


def _close_quietly(driver: Any) -> None:
    try:
        driver.adapter.close()
    except Exception:
        log.debug("closing %s failed", getattr(driver, "name", driver), exc_info=True)


def open_driver(station: Station, name: str, clock: Clock, simulation: Any = None) -> Any:
    """One driver instance for a station instrument, with an adapter factory for reconnects.

    The link's settings are the driver's ``connection_defaults`` (and ``interface_defaults`` for the
    interface the address names) overridden by the station's connection keys (see
    :mod:`drivers.link_settings`); every adapter the factory opens carries them (``adapter.link_settings``).
    On a ``sim://`` address the in-process session keeps the model's framing and connection role."""
    from drivers.link_settings import resolve

    spec = station.instrument(name)
    cls = station.driver_class(name)
    driver_options = dict(spec.options.get("driver_options", {}))
    try:
        settings = resolve(cls, spec.address, spec.options)
    except StationError as exc:
        raise StationError(f"station {station.source}: instrument {name!r}: {exc}") from None
    if spec.simulated:
        from drivers.transport import open_sim

        if simulation is None or name not in simulation.mocks:
            raise StationError(f"instrument {name!r} is not part of the simulated world")
        mock = simulation.mocks[name]

        def factory() -> Any:
            return open_sim(mock, settings, clock)
    else:
        from drivers.transport import open_link

        def factory() -> Any:
            return open_link(settings)

    try:
        adapter = factory()
    except Exception as exc:
        raise InstrumentError(f"cannot open connection: {exc}", instrument=name, address=spec.address) from exc
    try:
        return cls(adapter, name=name, address=spec.address, adapter_factory=factory, clock=clock,
                   link_policy=station.link_policy(name), **driver_options)
    except BaseException:
        _close_adapter(adapter)
        raise


def _close_adapter(adapter: Any) -> None:
    try:
        adapter.close()
    except Exception:
        log.debug("closing an adapter failed", exc_info=True)


def connection_description(driver: Any) -> dict[str, Any]:
    """The settings a driver's link was opened with (and the VISA library it loaded), for display."""
    adapter = getattr(driver, "adapter", None)
    settings = getattr(adapter, "link_settings", None)
    if settings is None:
        return {}
    described = settings.describe(getattr(type(driver), "primary_interface", None))
    in_use = getattr(adapter, "visa_library_in_use", None)
    if callable(in_use):
        try:
            described["visa_library"] = in_use()
        except Exception:  # a description never fails the probe
            log.debug("could not tell the VISA library", exc_info=True)
    return described


def probe_station(station: Station) -> list[dict[str, Any]]:
    """Connect to each instrument in turn and ask who it is; one row per instrument, never raises.

    Each row has the instrument's name, driver, address, identity, status (``ok`` or ``failed: ...``) and
    ``settings``: what the link was opened with (interface, serial parameters, terminations, timeout, pause
    between commands, VISA library, listen address — as they apply)."""
    clock = station.make_clock()
    simulation = None
    rows: list[dict[str, Any]] = []
    if station.simulated:
        from labctl.sim_bench import build_world

        try:
            simulation = build_world(station, clock)
        except Exception as exc:
            return [{"name": name, "driver": spec.driver, "address": spec.address, "identity": "",
                     "status": f"failed: {exc}", "settings": {}} for name, spec in station.instruments.items()]
    for name, spec in station.instruments.items():
        row: dict[str, Any] = {"name": name, "driver": spec.driver, "address": spec.address, "identity": "",
                               "status": "", "settings": {}}
        try:
            driver = open_driver(station, name, clock, simulation)
            try:
                row["settings"] = connection_description(driver)
                row["identity"] = driver.identify()
                row["status"] = "ok"
            finally:
                _close_quietly(driver)
        except Exception as exc:
            row["status"] = f"failed: {exc}"
        rows.append(row)
    return rows
