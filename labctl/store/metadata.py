"""Run metadata without size limits: small values as root attributes, large texts as ``/metadata`` datasets.

HDF5 keeps attributes in the object header, whose messages hold at most 64 KiB; a station definition with
many instruments, a long parameter list or the simulated world's state can exceed that. Format 2 stores
those (and any value over :data:`INLINE_BYTES`) as scalar string datasets ``/metadata/<name>``; a reader
merges them with the root attributes (datasets win), so version-1 files, which kept everything in
attributes, read the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import h5py

from labctl.errors import DataFileError
from labctl.store import schema

#: Always datasets in format 2: they grow with the station, the procedure and the simulated bench.
DATASET_KEYS = frozenset({"station_definition", "parameters", "simulated_world"})
#: Any other value whose stored text is longer than this becomes a dataset as well.
INLINE_BYTES = 8192
#: Attribute of a ``/metadata`` dataset: 1 if its text is JSON (decoded by readers), 0 for plain text.
JSON_FLAG = "json"


def _as_dataset(key: str, stored: Any) -> bool:
    return key in DATASET_KEYS or (isinstance(stored, str) and len(stored.encode("utf-8")) > INLINE_BYTES)


def encode(key: str, value: Any) -> tuple[Any, bool, bool]:
    """(value as stored, is JSON, goes to a dataset); DataFileError for a bad name or type, never for size."""
    schema.check_name(key, "attribute")
    if key == schema.JSON_ATTRS:
        raise DataFileError(f"attribute name {schema.JSON_ATTRS!r} is reserved by labctl")
    try:
        stored, is_json = schema.encode_attr(key, value)
        return stored, is_json, _as_dataset(key, stored)
    except DataFileError:
        # Too big for an attribute: text (a string, or JSON for anything else) in a dataset.
        if isinstance(value, str):
            return value, False, True
        return schema.to_json(value), True, True


def check(values: Mapping[str, Any]) -> None:
    """DataFileError now for a value :func:`write_root` would refuse."""
    for key, value in values.items():
        try:
            encode(key, value)
        except (TypeError, ValueError) as exc:
            raise DataFileError(f"attribute {key!r}: {exc}") from None


def write_root(h5: h5py.File, values: Mapping[str, Any],
               link: Any = None) -> None:
    """Root metadata: attributes for small values, ``/metadata/<key>`` datasets for large ones.

    A value that moves from one to the other (a parameter list that grew) leaves no stale copy behind.
    """
    encoded = {key: encode(key, value) for key, value in values.items()}
    attrs = {key: value for key, (value, _, to_ds) in encoded.items() if not to_ds}
    # write_attrs re-encodes (same result) and keeps json_attrs up to date
    schema.write_attrs(h5.attrs, {key: values[key] for key in attrs})
    group = h5.require_group(schema.METADATA) if any(to_ds for *_, to_ds in encoded.values()) else \
        h5.get(schema.METADATA)
    for key, (stored, is_json, to_ds) in encoded.items():
        if to_ds:
            assert isinstance(group, h5py.Group)
            ds = group.create_dataset(None if link else key, data=stored, dtype=schema.STR_DTYPE)
            ds.attrs[JSON_FLAG] = int(is_json)
            if link:  # linked (replacing the old text) by the writer's next cycle, once it is on disk
                link(group, key, ds)
            _drop_attr(h5.attrs, key)
        elif isinstance(group, h5py.Group) and key in group:
            del group[key]


def _drop_attr(attrs: h5py.AttributeManager, key: str) -> None:
    if key not in attrs:
        return
    del attrs[key]
    listed = attrs.get(schema.JSON_ATTRS)
    if listed is not None:
        names = [n for n in schema.from_json(listed) if n != key]
        if names:
            attrs[schema.JSON_ATTRS] = schema.to_json(names)
        else:
            del attrs[schema.JSON_ATTRS]


def read_root(h5: h5py.File) -> dict[str, Any]:
    """Root attributes merged with ``/metadata`` datasets, JSON decoded; unreadable entries left out."""
    out = schema.read_attrs(h5.attrs)
    group = h5.get(schema.METADATA)
    if isinstance(group, h5py.Group):
        for key, ds in group.items():
            if not isinstance(ds, h5py.Dataset):
                continue
            try:
                text = ds.asstr()[()]
                out[key] = schema.from_json(text) if int(ds.attrs.get(JSON_FLAG, 0)) else text
            except (OSError, ValueError):  # a kill before its heap entry reached the disk: skip it
                continue
    return out


def value_bytes(values: Mapping[str, Any]) -> int:
    """Generous estimate of the file space writing ``values`` allocates (for the writer's reserve)."""
    return sum(len(repr(v)) * 4 + 8192 for v in values.values())
