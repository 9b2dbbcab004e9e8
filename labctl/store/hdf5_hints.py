"""HDF5 settings h5py does not expose, set through the HDF5 library h5py itself loaded.

Both make HDF5 rewrite existing group metadata in place less often (a kill in the middle of such a rewrite
is the crash risk the run file cannot rule out; docs/data-format.md, "Crash safety"):

- ``H5Pset_sym_k``: 64 links per symbol-table node instead of 8, so a group's B-tree splits 8 times less
  often (the soak found a torn split: a node pointing at a new node that never reached the disk);
- ``H5Pset_local_heap_size_hint``: ``/blocks`` starts with room for ~3,000 block names, so its name heap is
  not moved (reallocated and re-pointed) while blocks are added.

Larger chunk-index nodes (``H5Pset_istore_k``) were tried against the torn chunk-index split the soak met
once in 1000 kills: they made it worse (a torn in-place rewrite of a 32 KiB node left NaN rows in 2 files
in ~300 kills) and are not used.

If h5py was built against an HDF5 that cannot be found this way, the file is written with HDF5's defaults:
still valid, just without the hardening (``available()`` says which).
"""

from __future__ import annotations

import ctypes
import glob
import os
from functools import cache

import h5py
from h5py._objects import phil  # h5py's lock around every HDF5 call: HDF5 itself is not thread-safe

#: Internal and leaf "K" of the group B-trees: 2K children per internal node, 2K links per leaf node.
SYMBOL_K = (16, 32)
BLOCKS_NAME_HEAP_BYTES = 64 << 10


@cache
def _library() -> ctypes.CDLL | None:
    folder = os.path.join(os.path.dirname(h5py.__file__), os.pardir, "h5py.libs")
    found = sorted(glob.glob(os.path.join(folder, "libhdf5-*.so*")))
    if not found:
        return None
    try:
        lib = ctypes.CDLL(found[0])  # the copy h5py's extensions already loaded: same identifiers
        lib.H5Pset_sym_k.argtypes = [ctypes.c_int64, ctypes.c_uint, ctypes.c_uint]
        lib.H5Pset_local_heap_size_hint.argtypes = [ctypes.c_int64, ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return lib


def available() -> bool:
    return _library() is not None


def file_create_plist() -> h5py.h5p.PropFCID:
    """File creation properties: no reuse of freed space (crash safety) and large symbol-table nodes."""
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_file_space_strategy(h5py.h5f.FSPACE_STRATEGY_NONE, False, 1)
    lib = _library()
    if lib is not None:
        with phil:  # another thread's flush may be inside HDF5 right now
            lib.H5Pset_sym_k(fcpl.id, *SYMBOL_K)
    return fcpl


def create_big_group(parent: h5py.Group, name: str, heap_bytes: int = BLOCKS_NAME_HEAP_BYTES) -> h5py.Group:
    """``parent[name]``, a group expected to hold many links, with its name heap sized up front."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    lib = _library()
    if lib is not None:
        with phil:
            lib.H5Pset_local_heap_size_hint(gcpl.id, heap_bytes)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), None, gcpl))
