"""The run file's schema: group and attribute names, the format version, and how metadata is encoded.

Everything that decides what a labctl HDF5 file looks like on disk lives here, so the writer, the reader,
the CSV export and docs/data-format.md agree. Storage never imports procedures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

import h5py
import numpy as np

from labctl.errors import DataFileError

#: Major version of the layout. Readers refuse a file with a newer major version; additions that old readers
#: can ignore (new attributes, new groups) do not bump it. Version 2 (journal, compressed NeXus blocks, summary
#: pyramid, metadata datasets) reads version-1 files as well.
FORMAT_VERSION = 2
#: Every version this labctl reads.
READABLE_VERSIONS = (1, 2)

BLOCKS = "blocks"
EVENTS = "events"
INSTRUMENTS = "instruments"
ANALYSIS = "analysis"
CHECKPOINTS = "checkpoints"
#: Version 2: the journal of recent rows, the min/max/mean pyramid (a subgroup of each block), large
#: metadata as datasets.
JOURNAL = "journal"
SUMMARY = "summary"
METADATA = "metadata"

STATUS_RUNNING = "running"

#: Name of the attribute, on any object, that lists which of its attributes hold JSON text. An explicit
#: list (instead of guessing from a leading "{") keeps a user's string that merely looks like JSON a string.
JSON_ATTRS = "json_attrs"
UNITS_ATTR = "units"
#: Block attributes that record order (HDF5 lists links by name): creation index, and the column names.
BLOCK_INDEX_ATTR = "block_index"
COLUMNS_ATTR = "columns"
#: HDF5 keeps attributes in the object header, whose messages are limited to 64 KiB.
MAX_ATTR_BYTES = 60_000

#: Rows per chunk of a column dataset: 4096 float64 = 32 KiB, big enough that a 1000-hour aging trace is a
#: few thousand chunks, small enough that a 150-point J–V scan wastes little.
CHUNK_ROWS = 4096
#: Rows per chunk of the event and checkpoint tables (variable-length strings: 16-byte references each).
TABLE_CHUNK_ROWS = 1024

EVENT_FIELDS_V1 = ("time_s", "kind", "message", "data")
#: Version 2 adds the channel an event belongs to ("" for the run as a whole).
EVENT_FIELDS = ("time_s", "kind", "message", "data", "channel")
CHECKPOINT_FIELDS = ("time_s", "state", "block_rows")

STR_DTYPE = h5py.string_dtype("utf-8")


def check_name(name: str, what: str) -> str:
    """An HDF5 link name that is safe to use as a block, column, instrument or analysis name."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise DataFileError(f"invalid {what} name {name!r}: use a non-empty name without '/'")
    return name


def iso_utc(time_s: float) -> str:
    """ISO 8601 in UTC with millisecond resolution, e.g. ``2026-01-01T00:00:00.000Z``."""
    stamp = datetime.fromtimestamp(time_s, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, PurePath | datetime):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def to_json(value: Any) -> str:
    """Compact JSON; numpy scalars/arrays, paths and datetimes are converted, NaN stays NaN (JSON5-ish)."""
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def from_json(text: str | bytes) -> Any:
    return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)


def _is_plain_scalar(value: Any) -> bool:
    return isinstance(value, str | bool | int | float | np.generic) and not isinstance(value, np.void)


def encode_attr(key: str, value: Any) -> tuple[Any, bool]:
    """(value as stored, whether it is JSON text); DataFileError for a bad name, type or size."""
    check_name(key, "attribute")
    if key == JSON_ATTRS:
        raise DataFileError(f"attribute name {JSON_ATTRS!r} is reserved by labctl")
    stored: Any = value
    is_json = False
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        nbytes = value.nbytes
    elif _is_plain_scalar(value):
        nbytes = len(value.encode("utf-8")) if isinstance(value, str) else 8
    else:
        try:
            text = to_json(value)
        except (TypeError, ValueError) as exc:
            raise DataFileError(f"attribute {key!r}: {exc}") from None
        stored, is_json, nbytes = text, True, len(text.encode("utf-8"))
    if nbytes > MAX_ATTR_BYTES:
        raise DataFileError(f"attribute {key!r} is {nbytes} bytes; HDF5 attributes hold at most "
                            f"{MAX_ATTR_BYTES}: store large data as a block or with write_analysis")
    return stored, is_json


def write_attrs(attrs: h5py.AttributeManager, values: Mapping[str, Any]) -> None:
    """Store ``values`` as HDF5 attributes: scalars and numeric arrays natively, everything else as JSON.

    dict, list, tuple and None become JSON text and their names are recorded in ``json_attrs`` so a reader
    can decode exactly those. Strings are UTF-8 variable-length (h5py's default for ``str``). Every value is
    checked before the first is written, so a bad one changes nothing.
    """
    encoded = {key: encode_attr(key, value) for key, value in values.items()}
    existing = attrs.get(JSON_ATTRS)
    json_names = set(from_json(existing)) if existing is not None else set()
    for key, (stored, is_json) in encoded.items():
        attrs[key] = stored
        if is_json:
            json_names.add(key)
        else:
            json_names.discard(key)
    if json_names:
        attrs[JSON_ATTRS] = to_json(sorted(json_names))
    elif existing is not None:
        del attrs[JSON_ATTRS]


def block_order(blocks: h5py.Group) -> list[str]:
    """Block names in creation order (``block_index`` attribute; name order for blocks without one)."""
    names = list(blocks)
    index = {n: blocks[n].attrs.get(BLOCK_INDEX_ATTR) for n in names}
    return sorted(names, key=lambda n: (index[n] is None, int(index[n]) if index[n] is not None else 0, n))


def column_order(group: h5py.Group) -> list[str]:
    """Column names of a block in creation order (``columns`` attribute, else every 1-D dataset by name).

    Only hard-linked datasets count: an NXlog block's ``time`` and ``value`` are soft links to columns.
    """
    listed = group.attrs.get(COLUMNS_ATTR)
    if listed is not None:
        return [c for c in (_plain(x) for x in listed) if c in group]
    return [c for c in group if isinstance(group.get(c, getlink=True), h5py.HardLink)
            and isinstance(group[c], h5py.Dataset) and group[c].ndim == 1]


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [_plain(v) for v in value.tolist()]
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_attrs(attrs: h5py.AttributeManager) -> dict[str, Any]:
    """The attributes as Python values, JSON ones decoded (``json_attrs`` itself is not returned).

    An attribute that cannot be read is left out: a string whose heap entry a killed writer did not get
    to write must not hide the rest of the metadata.
    """
    out: dict[str, Any] = {}
    for key in attrs:
        try:
            out[key] = _plain(attrs[key])
        except OSError:
            continue
    names = out.pop(JSON_ATTRS, None)
    for key in from_json(names) if names else ():
        if isinstance(out.get(key), str):
            try:
                out[key] = from_json(out[key])
            except ValueError:  # hand-edited file: keep the text rather than fail the whole read
                pass
    return out


def _as_dataset_array(value: Any) -> np.ndarray | None:
    """``value`` as an array HDF5 stores natively (numbers, booleans, strings), else None (-> JSON attr)."""
    if not isinstance(value, np.ndarray | list | tuple):
        return None
    try:
        arr = np.asarray(value)
    except ValueError:  # ragged
        return None
    if arr.dtype.kind in "biuf":
        return arr
    if arr.dtype.kind == "U" and (isinstance(value, np.ndarray) or all(isinstance(v, str) for v in value)):
        return arr.astype(object)
    return None  # mixed types (numpy would turn [1, "a"] into strings): a JSON attribute instead


def check_attrs(values: Mapping[str, Any]) -> None:
    """DataFileError now for what :func:`write_attrs` would refuse, before anything is created."""
    for key, value in values.items():
        encode_attr(key, value)


def check_tree(results: Mapping[str, Any]) -> None:
    """DataFileError now for what :func:`write_tree` would refuse, before anything is written."""
    for key, value in results.items():
        check_name(str(key), "analysis key")
        if isinstance(value, Mapping):
            check_tree(value)
        elif _as_dataset_array(value) is None:
            encode_attr(str(key), value)


def write_tree(group: h5py.Group, results: Mapping[str, Any]) -> None:
    """Derived results: dicts become subgroups, arrays and lists datasets, everything else attributes."""
    scalars: dict[str, Any] = {}
    for key, value in results.items():
        check_name(str(key), "analysis key")
        if isinstance(value, Mapping):
            write_tree(group.create_group(str(key)), value)
        elif (arr := _as_dataset_array(value)) is not None:
            group.create_dataset(str(key), data=arr, dtype=STR_DTYPE if arr.dtype == object else arr.dtype)
        else:
            scalars[str(key)] = value
    write_attrs(group.attrs, scalars)


def tree_bytes(results: Mapping[str, Any]) -> int:
    """Generous estimate of the file space :func:`write_tree` allocates (for the writer's reserve)."""
    total = 8192
    for value in results.values():
        if isinstance(value, Mapping):
            total += tree_bytes(value)
        elif isinstance(value, np.ndarray):
            total += value.nbytes + 8192
        else:
            total += 8 * len(repr(value)) + 8192
    return total


def read_tree(group: h5py.Group) -> dict[str, Any]:
    """Inverse of :func:`write_tree`: attributes, datasets (ndarray, or list of str) and subgroups."""
    out = read_attrs(group.attrs)
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = read_tree(item)
        elif isinstance(item, h5py.Dataset):
            value = item[()]
            out[key] = _plain(value) if item.dtype.kind in "OS" else value
    return out


def stored_rows(ds: h5py.Dataset) -> int:
    """Rows of a chunked column whose chunk is on disk.

    A kill in the middle of a flush can leave the new length of a column on disk but not the index entry
    of its newest chunk; those rows read as the fill value (NaN) although they were never stored. They are
    the rows from the first missing chunk at the end on.
    """
    n = ds.shape[0]
    if n == 0 or ds.chunks is None:
        return n
    chunk = ds.chunks[0]
    k = (n - 1) // chunk
    try:
        while k >= 0 and ds.id.get_chunk_info_by_coord((k * chunk,)).byte_offset is None:
            k -= 1
    except (RuntimeError, OSError):
        # The chunk index cannot be walked this way (a kill tore a B-tree split: the soak met one where a
        # sibling pointer led to a node never written, while every chunk still read by lookup). Trust the
        # length: rows whose chunk is missing then read as NaN, never as made-up numbers.
        return n
    return min(n, (k + 1) * chunk)


def readable_rows(ds: h5py.Dataset, n: int) -> int:
    """How many of the first ``n`` rows of ``ds`` can be read.

    A string (variable-length) row points into a heap; if the writer was killed while flushing, the newest
    rows can point to heap entries that never reached the disk, and reading them fails. Only the rows of
    the last flush can be affected, so the readable rows are a prefix: find its length by bisection.
    """
    def ok(k: int) -> bool:
        try:
            ds[:k]
            return True
        except OSError:
            return False

    if ds.dtype.kind != "O" or ok(n):
        return n
    lo, hi = 0, n  # ok(lo) is True, ok(hi) is False
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def check_labctl_file(h5: h5py.File, path: PurePath) -> int:
    """The file's format version; DataFileError if it is not a labctl file this version can read."""
    version = h5.attrs.get("format_version")
    if version is None or BLOCKS not in h5:
        raise DataFileError(f"{path}: not a labctl data file (no format_version attribute or /blocks)")
    if int(version) not in READABLE_VERSIONS:
        newer = "newer than" if int(version) > FORMAT_VERSION else "not one"
        raise DataFileError(f"{path}: format version {int(version)} is {newer} this labctl reads "
                            f"({', '.join(map(str, READABLE_VERSIONS))}); upgrade labctl")
    return int(version)
