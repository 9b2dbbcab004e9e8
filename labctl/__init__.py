"""labctl: instrument control and HDF5 acquisition for perovskite solar-cell labs."""

__version__ = "0.1.0"
