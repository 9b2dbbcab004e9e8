"""NeXus annotations, so HDFView, silx and h5web open a run file straight on a plot without labctl.

Every block is an ``NXdata`` group (``@signal``, ``@axes``, ``long_name`` and ``units`` on its columns); a
block of kind ``log`` (a temperature or irradiance log) is an ``NXlog`` with ``time`` and ``value`` soft
links to its columns. The root is an ``NXroot`` whose ``@default`` names ``/blocks`` (an ``NXentry``), whose
``@default`` names a block with data: the ``@default`` chain that viewers follow.

Conventions from the NeXus manual (NXdata, NXlog, NXentry base classes; "Find the plottable data").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import h5py

from labctl.errors import DataFileError
from labctl.store import schema

KINDS = ("data", "log")
NX_CLASS = "NX_class"
DEFAULT = "default"
#: Block attribute naming the column a time window is taken on (monotonic, non-decreasing).
TIME_COLUMN_ATTR = "time_column"
KIND_ATTR = "kind"

#: What a column name says about its quantity, for ``long_name`` ("current density (mA/cm2)").
_QUANTITIES = {
    "time": "time", "voltage": "voltage", "current_density": "current density", "current": "current",
    "power": "power density", "temperature": "temperature", "irradiance": "irradiance",
    "capacitance": "capacitance", "conductance": "conductance", "frequency": "frequency", "index": "index",
}
#: Preferred (signal, axis) pairs, first match wins: an MPPT or SPO trace is power against time, a J–V
#: scan current density against voltage, a log its value against time.
_PREFERRED = (
    ("power_mW_cm2", "time_s"),
    ("current_density_mA_cm2", "voltage_V"),
    ("current_A", "voltage_V"),
    ("capacitance_F", "time_s"),
    ("capacitance_F", "frequency_Hz"),
    ("capacitance_F", "voltage_V"),
)


def long_name(column: str, unit: str) -> str:
    """A label for a plot axis: the quantity in words and the unit, e.g. ``voltage (V)``."""
    base = column
    for suffix in ("_" + unit.replace("/", "_"), "_" + unit):
        if unit and base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    words = _QUANTITIES.get(base, base.replace("_", " "))
    return f"{words} ({unit})" if unit else words


def choose_plot(columns: Sequence[str], signal: str | None, axes: str | None, kind: str) -> tuple[str, str]:
    """(signal, axis) of a block: the creator's choice, else the preferred pairs, else time or the first
    column as the axis and the next column as the signal."""
    if kind not in KINDS:
        raise DataFileError(f"block kind {kind!r}: use one of {', '.join(KINDS)}")
    for what, name in (("signal", signal), ("axes", axes)):
        if name is not None and name not in columns:
            raise DataFileError(f"{what} {name!r} is not a column; columns: {list(columns)}")
    if signal is not None and axes is not None:
        return signal, axes
    for sig, axis in _PREFERRED:
        if (signal in (None, sig)) and (axes in (None, axis)) and sig in columns and axis in columns:
            return sig, axis
    axis = axes or next((c for c in columns if c.startswith("time")), columns[0])
    sig = signal or next((c for c in columns if c != axis), axis)
    return sig, axis


def annotate_block(group: h5py.Group, units: Mapping[str, str], signal: str, axis: str, kind: str,
                   time_column: str | None, path: str) -> None:
    """NeXus attributes on a new block group and its columns (the columns exist already)."""
    group.attrs[NX_CLASS] = "NXlog" if kind == "log" else "NXdata"
    group.attrs["signal"] = signal
    group.attrs["axes"] = axis
    group.attrs[KIND_ATTR] = kind
    if time_column is not None:
        group.attrs[TIME_COLUMN_ATTR] = time_column
    for column, unit in units.items():
        group[column].attrs["long_name"] = long_name(column, unit)
    if kind == "log":
        # NXlog names its fields time and value; soft links keep the columns under their own names too.
        # (``path`` is where the group will be linked: it is created unlinked)
        group["time"] = h5py.SoftLink(f"{path}/{time_column or axis}")
        group["value"] = h5py.SoftLink(f"{path}/{signal}")


def annotate_root(h5: h5py.File) -> None:
    h5.attrs[NX_CLASS] = "NXroot"
    h5.attrs[DEFAULT] = schema.BLOCKS
    h5[schema.BLOCKS].attrs[NX_CLASS] = "NXentry"


def set_default_block(h5: h5py.File, name: str) -> None:
    blocks = h5[schema.BLOCKS]
    if blocks.attrs.get(DEFAULT) != name:
        blocks.attrs[DEFAULT] = name


def time_column(columns: Sequence[str], axis: str) -> str | None:
    """The column a time window is taken on: the axis if it is a time, else ``time_s``, else none."""
    if axis.startswith("time"):
        return axis
    return "time_s" if "time_s" in columns else None
