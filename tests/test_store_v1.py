"""Files written by format version 1 (labctl before the journal) open, analyse and export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from labctl.analyze import analyze_file
from labctl.errors import DataFileError
from labctl.runner.registry import procedure_of_file
from labctl.store import RunReader, RunWriter, export_csv

#: A J–V run (wbg_ref, RS+FS at 0.1 and 1 V/s, SPO 10 s) written by the format-1 store; see make_v1_fixture.py.
FIXTURE = Path(__file__).parent / "data" / "v1_jv_wbg_ref.h5"


@pytest.fixture
def v1_file(tmp_path: Path) -> Path:
    path = tmp_path / FIXTURE.name
    shutil.copy(FIXTURE, path)
    return path


def test_a_version_1_file_opens_with_its_blocks_events_and_metadata(v1_file: Path) -> None:
    with h5py.File(v1_file, "r") as f:
        assert f.attrs["format_version"] == 1 and "journal" not in f
        raw = f["blocks/scan_000/voltage_V"][:]
    with RunReader(v1_file) as r:
        assert r.format_version == 1 and r.procedure == "jv" and r.status == "completed"
        assert r.parameters["scan_rates_V_s"] == [0.1, 1.0]  # a root attribute in version 1
        assert r.block_names() == ["scan_000", "scan_001", "scan_002", "scan_003", "spo_wbg_ref"]
        np.testing.assert_array_equal(r.block("scan_000")["voltage_V"], raw)
        info = r.info("scan_000")
        assert (info.signal, info.axes, info.n_rows) == ("current_density_mA_cm2", "voltage_V", 71)
        assert [e.kind for e in r.events()][:1] == ["start"] and r.events()[0].channel == ""
        spo = r.decimate("spo_wbg_ref", 20)  # a version-1 block has no pyramid: read from its rows
        assert int(spo.count.sum()) == 200
        np.testing.assert_allclose(np.nanmax(spo.max["power_mW_cm2"]), r.block("spo_wbg_ref")["power_mW_cm2"].max())


def test_a_version_1_file_analyses_and_exports(v1_file: Path, tmp_path: Path) -> None:
    result = analyze_file(v1_file, procedure_of_file(v1_file))  # the file names its procedure: jv
    assert "note" not in result, result.get("note")
    assert len(result["scans"]) == 4 and len(result["hysteresis"]) == 2
    assert 10 < result["scans"][0]["pce_pct"] < 25
    with RunReader(v1_file) as r:  # stored in the file's /analysis, which stays version 1
        assert r.format_version == 1 and len(r.analysis()["jv"]["scans"]) == 4
    written = export_csv(v1_file, tmp_path / "csv")
    assert len(written) == 5
    lines = written[0].read_text().splitlines()
    assert "# format_version: 1" in lines and lines[-1].count(",") == 3
    assert json.loads(next(x for x in lines if x.startswith("# parameters: "))[14:])["scan_rates_V_s"] == [0.1, 1.0]


def test_a_version_1_file_takes_events_but_no_rows(v1_file: Path) -> None:
    with RunWriter.open_existing(v1_file) as w:
        w.event("note", "looked at again", channel="A1")
        with pytest.raises(DataFileError, match="format version 1"):
            w.block("scan_000").append_row(voltage_V=0, current_A=0, current_density_mA_cm2=0, time_s=0)
        with pytest.raises(DataFileError, match="format version 1"):
            w.create_block("more", {"x": ""})
    with RunReader(v1_file) as r:
        assert r.events()[-1].message == "looked at again" and r.block("scan_000").n_rows == 71
