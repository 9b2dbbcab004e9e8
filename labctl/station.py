"""Station files: which instruments a lab has, how to reach them, and which samples are wired where.

A station is a TOML file::

    name = "cryo-lab"

    [instruments.smu]
    driver = "keithley2450"                      # a key of drivers.registry.DRIVERS
    address = "TCPIP::192.168.1.20::5025::SOCKET" # or sim://keithley2450 for the simulated bench
    timeout_ms = 5000                            # connection keys (drivers.link_settings); the driver's
                                                 # defaults apply to the rest
    driver_options = {}                          # keyword arguments of the driver (e.g. output = 2)

    [samples.pixel1]
    area_cm2 = 0.0825
    smu = "smu"            # instrument names from [instruments]
    smu_channel = "a"      # for two-channel SMUs
    switch = "matrix"      # optional multiplexer ...
    switch_channel = 1     # ... and its channel for this pixel
    light = "sun"
    lcr = "lcr"
    temperature = "cryo"
    voltage_min_V = -0.5   # limits no procedure may exceed
    voltage_max_V = 1.6
    current_max_mA = 50.0

    [sim]                  # only for sim:// addresses: the simulated world
    seed = 0
    [sim.devices.pixel1]
    preset = "wbg_ref"     # any device-model parameter may follow, e.g. rs_ohm_cm2 = 3.0

``Station.load("sim")`` is the built-in simulated station with every supported model.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from labctl.clock import Clock, RealClock, VirtualClock
from labctl.errors import StationError
from labctl.reference_cell import ReferenceCellSpec
from labctl.roles import Capabilities

C = TypeVar("C")

BUILTIN_STATIONS = ("sim", "sim-aging")


@dataclass(frozen=True)
class InstrumentSpec:
    name: str
    driver: str
    address: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def simulated(self) -> bool:
        return self.address.startswith("sim://")


@dataclass(frozen=True)
class SampleSpec:
    """A device under test and its wiring. Limits bound every procedure parameter that touches it."""

    name: str
    area_cm2: float
    smu: str | None = None
    smu_channel: str | None = None
    switch: str | None = None
    switch_channel: int | None = None
    light: str | None = None
    lcr: str | None = None
    temperature: str | None = None
    voltage_min_V: float = -2.0
    voltage_max_V: float = 2.0
    current_max_mA: float = 100.0
    #: What the pixel sees while its switch connects another one: None for open circuit, or the resistance of
    #: a load across it (Ω·cm², a load board sized near its MPP).
    idle_load_ohm_cm2: float | None = None
    notes: str = ""

    def as_metadata(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and v != ""}


_SAMPLE_KEYS = set(SampleSpec.__dataclass_fields__)
#: Sample keys that are numbers (limits and area); a quoted "0.1" in the TOML is a string, and refused.
_NUMBER_KEYS = {"area_cm2", "voltage_min_V", "voltage_max_V", "current_max_mA", "idle_load_ohm_cm2"}


class Station:
    """A parsed station file. Connecting is :class:`labctl.bench.Bench`'s job; this only describes."""

    def __init__(self, data: dict[str, Any], *, source: str, text: str) -> None:
        self.source = source
        self.text = text
        self.name = str(data.get("name", source))
        self.instruments: dict[str, InstrumentSpec] = {}
        for name, spec in dict(data.get("instruments", {})).items():
            self.instruments[name] = self._parse_instrument(name, spec)
        self.samples: dict[str, SampleSpec] = {}
        for name, spec in dict(data.get("samples", {})).items():
            self.samples[name] = self._parse_sample(name, spec)
        self.reference_cells: dict[str, ReferenceCellSpec] = {}
        for name, spec in dict(data.get("reference_cells", {})).items():
            self.reference_cells[name] = self._parse_reference_cell(name, spec)
        self.holder_rows = self._parse_holder(data.get("holder"))
        self.sim: dict[str, Any] = dict(data.get("sim", {}))
        self.reconnect = self._parse_reconnect(data.get("reconnect", {}), "[reconnect]")
        self._check_wiring()

    # ----------------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, name_or_path: str | Path) -> Station:
        """A built-in station by name (``sim``) or a TOML file."""
        key = str(name_or_path)
        if key in BUILTIN_STATIONS:
            text = resources.files("labctl.stations").joinpath(f"{key}.toml").read_text("utf-8")
            return cls.from_text(text, source=key)
        path = Path(name_or_path)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise StationError(
                f"cannot read station file {path}: {exc.strerror or exc}; built-in stations: "
                f"{', '.join(BUILTIN_STATIONS)}"
            ) from exc
        return cls.from_text(text, source=str(path))

    @classmethod
    def from_text(cls, text: str, *, source: str = "<text>") -> Station:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise StationError(f"station {source}: not valid TOML: {exc}") from exc
        return cls(data, source=source, text=text)

    def describe(self) -> str:
        """What the run file stores: the source and the full text, so a resume rebuilds the same station."""
        return json.dumps({"source": self.source, "text": self.text})

    @classmethod
    def from_description(cls, description: str) -> Station:
        try:
            data = json.loads(description)
            return cls.from_text(data["text"], source=data["source"])
        except (ValueError, KeyError, TypeError):
            return cls.load(description)

    # ----------------------------------------------------------------------------------- parsing
    def _parse_instrument(self, name: str, spec: Any) -> InstrumentSpec:
        if not isinstance(spec, dict) or "driver" not in spec or "address" not in spec:
            raise StationError(f"station {self.source}: [instruments.{name}] needs 'driver' and 'address'")
        from drivers.registry import known_drivers

        drivers = known_drivers()
        if spec["driver"] not in drivers:
            raise StationError(
                f"station {self.source}: instrument '{name}' has unknown driver {spec['driver']!r}; "
                f"known drivers: {', '.join(sorted(drivers))}"
            )
        options = {k: v for k, v in spec.items() if k not in {"driver", "address"}}
        if not isinstance(options.get("driver_options", {}), dict):
            raise StationError(f"station {self.source}: instrument '{name}': driver_options must be a table")
        self._check_connection_keys(name, str(spec["driver"]), str(spec["address"]), options)
        if "reconnect" in options:
            self._parse_reconnect(options["reconnect"], f"instrument '{name}'")
        return InstrumentSpec(name, str(spec["driver"]), str(spec["address"]), options)

    def _parse_reconnect(self, table: Any, where: str) -> Any:
        from drivers.base import LinkPolicy

        if not isinstance(table, dict):
            raise StationError(f"station {self.source}: {where}: reconnect must be a table, e.g. "
                               "{give_up_after_s = 3600, max_interval_s = 300}")
        try:
            return LinkPolicy.from_options(table)
        except StationError as exc:
            raise StationError(f"station {self.source}: {where}: {exc}") from None

    def link_policy(self, name: str) -> Any:
        """The reconnect policy of one instrument: its own ``reconnect`` table over the station's."""
        from drivers.base import LinkPolicy

        return LinkPolicy.from_options(self.instrument(name).options.get("reconnect"), base=self.reconnect)

    def _check_connection_keys(self, name: str, driver: str, address: str, options: dict[str, Any]) -> None:
        """Refuse unknown keys and impossible connection settings before anything is connected."""
        from drivers.link_settings import resolve
        from drivers.registry import driver_class

        try:
            resolve(driver_class(driver), address, options)
        except StationError as exc:
            raise StationError(f"station {self.source}: instrument '{name}': {exc}") from None

    def _parse_sample(self, name: str, spec: Any) -> SampleSpec:
        if not isinstance(spec, dict):
            raise StationError(f"station {self.source}: [samples.{name}] must be a table")
        unknown = set(spec) - _SAMPLE_KEYS
        if unknown:
            raise StationError(
                f"station {self.source}: sample '{name}' has unknown key(s) {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(sorted(_SAMPLE_KEYS - {'name'}))}"
            )
        values = dict(spec)
        for key in _NUMBER_KEYS & set(values):
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise StationError(f"station {self.source}: sample '{name}': {key} = {value!r} is not a number")
            if not math.isfinite(value) and key != "area_cm2":
                raise StationError(
                    f"station {self.source}: sample '{name}': {key} = {value} is not a finite number")
            values[key] = float(value)
        if "area_cm2" not in values or not 0 < values["area_cm2"] < math.inf:
            raise StationError(f"station {self.source}: sample '{name}' needs area_cm2 > 0")
        if values.get("idle_load_ohm_cm2", 1.0) <= 0:
            raise StationError(f"station {self.source}: sample '{name}' needs idle_load_ohm_cm2 > 0 (or none: open "
                               "circuit)")
        if values.get("current_max_mA", 1.0) <= 0:
            raise StationError(f"station {self.source}: sample '{name}' needs current_max_mA > 0")
        if "smu_channel" in values:
            values["smu_channel"] = str(values["smu_channel"])
        channel = values.get("switch_channel")
        if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int) or channel < 1):
            raise StationError(
                f"station {self.source}: sample '{name}': switch_channel = {channel!r} must be a whole number ≥ 1"
            )
        return SampleSpec(name=name, **values)

    def _parse_holder(self, table: Any) -> list[list[str]]:
        """``[holder] rows``: the sample holder as seen from the front, one list of sample names per row
        ("" leaves a slot empty); the aging dashboard lays its tiles out the same way."""
        where = f"station {self.source}: [holder]"
        if table is None:
            return []
        if not isinstance(table, dict) or set(table) - {"rows"}:
            raise StationError(f"{where} takes one key, rows = [[\"ch01\", \"ch02\"], [\"ch03\", \"\"]]; "
                               f"got {table!r}")
        rows = table.get("rows", [])
        if not isinstance(rows, list) or not all(isinstance(r, list) and all(isinstance(n, str) for n in r)
                                                 for r in rows):
            raise StationError(f"{where}: rows = {rows!r} must be a list of rows, each a list of sample names")
        seen: set[str] = set()
        for row in rows:
            for name in row:
                if not name:
                    continue
                if name not in self.samples:
                    raise StationError(f"{where}: rows names {name!r}, which is not in [samples] "
                                       f"({', '.join(self.samples) or 'none'})")
                if name in seen:
                    raise StationError(f"{where}: rows places {name!r} twice")
                seen.add(name)
        return [list(r) for r in rows]

    def _parse_reference_cell(self, name: str, spec: Any) -> ReferenceCellSpec:
        known = set(ReferenceCellSpec.__dataclass_fields__) - {"name"}
        where = f"station {self.source}: [reference_cells.{name}]"
        if not isinstance(spec, dict):
            raise StationError(f"{where} must be a table")
        unknown = set(spec) - known
        if unknown:
            raise StationError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}; allowed: "
                               f"{', '.join(sorted(known))}")
        for key in ("smu", "isc_A_per_sun"):
            if key not in spec:
                raise StationError(f"{where} needs {key!r}")
        for key in ("isc_A_per_sun", "area_cm2", "nplc"):
            value = spec.get(key, 1.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise StationError(f"{where}: {key} = {value!r} must be a positive number")
        for key in ("smu", "light"):
            if key in spec and spec[key] not in self.instruments:
                raise StationError(f"{where} names {key} = {spec[key]!r}, which is not in [instruments] "
                                   f"({', '.join(self.instruments) or 'none'})")
        values = dict(spec)
        if "smu_channel" in values:
            values["smu_channel"] = str(values["smu_channel"])
        return ReferenceCellSpec(name=name, **values)

    def reference_cell_for(self, light: str | None) -> ReferenceCellSpec | None:
        """The reference cell that sees ``light`` (None: the station has none there)."""
        for cell in self.reference_cells.values():
            if cell.light == light or (cell.light is None and len(self.reference_cells) == 1):
                return cell
        return None

    def _check_wiring(self) -> None:
        for sample in self.samples.values():
            for role in ("smu", "switch", "light", "lcr", "temperature"):
                instrument = getattr(sample, role)
                if instrument is not None and instrument not in self.instruments:
                    raise StationError(
                        f"station {self.source}: sample '{sample.name}' names {role} = {instrument!r}, "
                        f"which is not in [instruments] ({', '.join(self.instruments) or 'none'})"
                    )
            if (sample.switch is None) != (sample.switch_channel is None):
                raise StationError(
                    f"station {self.source}: sample '{sample.name}' needs both switch and switch_channel"
                )
            if sample.voltage_min_V >= sample.voltage_max_V:
                raise StationError(
                    f"station {self.source}: sample '{sample.name}' has voltage_min_V >= voltage_max_V"
                )
        simulated = {spec.simulated for spec in self.instruments.values()}
        if len(simulated) > 1:
            raise StationError(
                f"station {self.source}: mixes sim:// and real addresses; a simulated world runs on virtual "
                "time and cannot share a run with real instruments"
            )

    # ------------------------------------------------------------------------------------ access
    @property
    def simulated(self) -> bool:
        return bool(self.instruments) and all(s.simulated for s in self.instruments.values())

    def sample(self, name: str) -> SampleSpec:
        try:
            return self.samples[name]
        except KeyError:
            raise StationError(
                f"station {self.source} has no sample {name!r}; samples: {', '.join(self.samples) or 'none'}"
            ) from None

    def instrument(self, name: str) -> InstrumentSpec:
        try:
            return self.instruments[name]
        except KeyError:
            raise StationError(
                f"station {self.source} has no instrument {name!r}; instruments: "
                f"{', '.join(self.instruments) or 'none'}"
            ) from None

    def check_instruments(self, names: list[str]) -> None:
        for name in names:
            self.instrument(name)

    def capabilities(self, name: str) -> Capabilities:
        """What instrument ``name`` can do (its role's limits), known without connecting to it."""
        from drivers.capabilities import capabilities_of

        spec = self.instrument(name)
        options = {**{k: v for k, v in spec.options.items() if k == "cards"}, **spec.options.get("driver_options", {})}
        return capabilities_of(self.driver_class(name), options)

    def role_capabilities(self, sample: str, role: str, kind: type[C]) -> C:
        """The capabilities of the instrument a sample uses in ``role`` (``smu``, ``lcr``, ``light``,
        ``temperature``, ``switch``), checked to be of ``kind``; a clear error if the sample has none."""
        spec = self.sample(sample)
        name = getattr(spec, role)
        if name is None:
            raise StationError(f"station {self.source}: sample '{sample}' has no {role}")
        found = self.capabilities(name)
        if not isinstance(found, kind):
            raise StationError(f"station {self.source}: sample '{sample}' has {role} = {name!r}, a "
                               f"{type(found).__name__.removesuffix('Capabilities')}, not a "
                               f"{kind.__name__.removesuffix('Capabilities')}")
        return found

    def driver_class(self, name: str) -> Any:
        from drivers.registry import driver_class

        return driver_class(self.instrument(name).driver)

    def make_clock(self) -> Clock:
        """Virtual time for a simulated station, wall-clock time for real instruments.

        Virtual time starts at the present (whole seconds), so simulated data files carry real dates.
        """
        if self.simulated:
            return VirtualClock(start_s=float(int(RealClock().now())))
        return RealClock()
