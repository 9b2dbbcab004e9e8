"""Pure functions on arrays: no I/O, no instruments, no h5py."""
