"""Run files open as plots in generic NeXus viewers (silx, h5web) without labctl."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from silx.io.nxdata import get_default

from labctl.clock import VirtualClock
from labctl.errors import DataFileError
from labctl.store import RunReader, RunWriter


@pytest.mark.slow
def test_silx_finds_a_default_plot_with_data_in_every_file_the_demo_writes(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "labctl.cli", "demo", "--out", str(tmp_path)], capture_output=True,
                         text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr + out.stdout
    files = sorted(tmp_path.glob("*.h5"))
    assert len(files) == 4  # J–V on two cells, the TID sweep, the ISOS-L-1 aging
    for path in files:
        with h5py.File(path, "r") as f:
            nxdata = get_default(f)  # follows @default from the root, validates the NXdata group
            assert nxdata is not None and nxdata.is_valid, path
            assert nxdata.signal.size > 10 and np.isfinite(nxdata.signal[()]).all()
            assert len(nxdata.axes) == 1 and nxdata.axes[0].shape == nxdata.signal.shape
            for name in f["blocks"]:  # every block is NXdata (NXlog: a log block), not only the default one
                block = f["blocks"][name]
                assert block.attrs["NX_class"] == ("NXlog" if block.attrs.get("kind") == "log" else "NXdata")
                assert block[block.attrs["signal"]].attrs["long_name"]


def test_signal_and_axes_default_and_can_be_chosen(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with RunWriter.create(path, procedure="mixed", parameters={}, clock=VirtualClock()) as w:
        jv = w.create_block("scan", {"voltage_V": "V", "current_A": "A", "current_density_mA_cm2": "mA/cm2",
                                     "time_s": "s"}, expected_rows=151)
        mpp = w.create_block("mpp", {"time_s": "s", "voltage_V": "V", "power_mW_cm2": "mW/cm2"})
        cv = w.create_block("cv", {"voltage_V": "V", "capacitance_F": "F"}, signal="capacitance_F", axes="voltage_V")
        log = w.create_block("stage", {"time_s": "s", "temperature_K": "K"}, kind="log")
        for blk in (jv, mpp, cv, log):
            blk.append_columns({c: np.arange(5.0) + i for i, c in enumerate(blk.columns)})
        with pytest.raises(DataFileError, match="signal 'nope' is not a column"):
            w.create_block("bad", {"x": ""}, signal="nope")
        with pytest.raises(DataFileError, match="block kind 'table'"):
            w.create_block("bad", {"x": ""}, kind="table")
    with h5py.File(path, "r") as f:
        b = f["blocks"]
        assert (b["scan"].attrs["signal"], b["scan"].attrs["axes"]) == ("current_density_mA_cm2", "voltage_V")
        assert (b["mpp"].attrs["signal"], b["mpp"].attrs["axes"]) == ("power_mW_cm2", "time_s")
        assert (b["cv"].attrs["signal"], b["cv"].attrs["axes"]) == ("capacitance_F", "voltage_V")
        assert b["scan/current_density_mA_cm2"].attrs["long_name"] == "current density (mA/cm2)"
        assert b["scan/voltage_V"].attrs["long_name"] == "voltage (V)"
        assert b["scan/voltage_V"].chunks == (256,)  # from expected_rows
        assert b["scan/voltage_V"].compression == "gzip" and b["scan/voltage_V"].shuffle
        # a temperature log is an NXlog whose time and value are its columns
        assert b["stage"].attrs["NX_class"] == "NXlog"
        np.testing.assert_array_equal(b["stage/value"][:], b["stage/temperature_K"][:])
        np.testing.assert_array_equal(b["stage/time"][:], np.arange(5.0))
        assert f.attrs["NX_class"] == "NXroot" and f.attrs["default"] == "blocks"
        assert b.attrs["NX_class"] == "NXentry" and b.attrs["default"] == "scan"
        assert get_default(f).signal.name == "/blocks/scan/current_density_mA_cm2"
    with RunReader(path) as r:
        assert r.info("stage").kind == "log" and r.block("stage").columns == ["time_s", "temperature_K"]
