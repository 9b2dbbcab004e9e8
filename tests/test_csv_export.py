"""CSV export: one file per block that a spreadsheet, pandas or numpy reads back to the same numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from labctl.clock import VirtualClock
from labctl.errors import DataFileError
from labctl.store import RunWriter, export_csv


def parse(path: Path) -> tuple[dict[str, str], list[str], np.ndarray]:
    """(comment metadata, header cells, rows) of an exported CSV."""
    meta: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    body = []
    for line in lines:
        if line.startswith("# "):
            key, _, value = line[2:].partition(": ")
            meta[key] = value
        else:
            body.append(line)
    table = list(csv.reader(body))
    values = np.array([[float(v) for v in row] for row in table[1:]], dtype=float)
    return meta, table[0], values


@pytest.fixture
def run_file(tmp_path: Path) -> Path:
    path = tmp_path / "PSC17_jv.h5"
    with RunWriter.create(path, procedure="jv", parameters={"v_max_V": 1.2, "rates_V_s": [0.1, 1.0]},
                          operator="ada", sample={"id": "PSC-17", "area_cm2": 0.105},
                          conditions={"light": "1 sun", "temperature": "25 C"}, clock=VirtualClock()) as w:
        fs = w.create_block("scan_000", {"voltage_V": "V", "current_density_mA_cm2": "mA/cm2", "index": ""},
                            {"direction": "FS", "scan_rate_V_s": 0.1, "preconditioning": {"soak_s": 10}})
        v = np.linspace(-0.1, 1.2, 131)
        fs.append_columns(voltage_V=v, current_density_mA_cm2=21.5 - np.exp(v / 0.05) * 1e-9,
                          index=np.arange(131))
        odd = w.create_block("odd: values", {"x": "", "y, z": "a.u."})
        odd.append_columns({"x": [np.nan, np.inf, -0.0, 1e-300, 0.1 + 0.2], "y, z": [0, 1, 2, 3, 4]})
        w.create_block("empty", {"t_s": "s"})
    return path


def test_one_csv_per_block_with_metadata_and_units(run_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "csv"
    written = export_csv(run_file, out)
    assert [p.name for p in written] == ["PSC17_jv_scan_000.csv", "PSC17_jv_odd_values.csv",
                                         "PSC17_jv_empty.csv"]
    assert all(p.parent == out for p in written)
    meta, header, values = parse(written[0])
    assert header == ["voltage_V [V]", "current_density_mA_cm2 [mA/cm2]", "index []"]
    assert meta["procedure"] == "jv" and meta["operator"] == "ada"
    assert meta["created"] == "2026-01-01T00:00:00.000Z"
    assert json.loads(meta["parameters"]) == {"v_max_V": 1.2, "rates_V_s": [0.1, 1.0]}
    assert json.loads(meta["sample"]) == {"id": "PSC-17", "area_cm2": 0.105}
    assert json.loads(meta["conditions"]) == {"light": "1 sun", "temperature": "25 C"}
    assert meta["block"] == "scan_000" and meta["block.direction"] == "FS"
    assert json.loads(meta["block.preconditioning"]) == {"soak_s": 10}
    v = np.linspace(-0.1, 1.2, 131)
    np.testing.assert_array_equal(values[:, 0], v)  # exact: shortest round-trip repr
    np.testing.assert_array_equal(values[:, 1], 21.5 - np.exp(v / 0.05) * 1e-9)
    np.testing.assert_array_equal(values[:, 2], np.arange(131))


def test_awkward_values_and_names_survive(run_file: Path, tmp_path: Path) -> None:
    written = export_csv(run_file, tmp_path / "out")
    meta, header, values = parse(written[1])
    assert meta["block"] == "odd: values"
    assert header == ["x []", "y, z [a.u.]"]  # quoted in the file, one cell for csv readers
    assert np.isnan(values[0, 0]) and values[1, 0] == np.inf
    assert values[2, 0] == 0.0 and np.signbit(values[2, 0])
    assert values[3, 0] == 1e-300 and values[4, 0] == 0.1 + 0.2
    # numpy reads an export as it is: comment lines skipped, the header row becomes one NaN row
    loaded = np.genfromtxt(written[0], delimiter=",", comments="#")
    assert loaded.shape == (132, 3) and np.isnan(loaded[0]).all()


def test_empty_block_gives_a_header_only_csv(run_file: Path, tmp_path: Path) -> None:
    written = export_csv(run_file, tmp_path / "out")
    _, header, values = parse(written[2])
    assert header == ["t_s [s]"] and values.size == 0


def test_re_export_replaces_and_missing_file_is_a_clear_error(run_file: Path, tmp_path: Path) -> None:
    first = export_csv(run_file, tmp_path / "out")
    second = export_csv(run_file, tmp_path / "out")
    assert first == second and first[0].read_text().count("# block: scan_000") == 1
    with pytest.raises(DataFileError, match="no such data file"):
        export_csv(tmp_path / "nope.h5", tmp_path / "out")


def test_float32_columns_are_written_as_their_shortest_text(tmp_path: Path) -> None:
    path = tmp_path / "aging.h5"
    with RunWriter.create(path, procedure="mppt", parameters={}, clock=VirtualClock()) as w:
        block = w.create_block("mppt_a", {"time_s": "s", "voltage_V": "V"}, single_precision=["voltage_V"])
        block.append_columns(time_s=[1_767_225_600.125, 1_767_225_601.0], voltage_V=[1.05, 0.1 + 0.2])
    (csv_path,) = export_csv(path, tmp_path / "csv")
    rows = csv_path.read_text(encoding="utf-8").splitlines()[-2:]
    assert rows == ["1767225600.125,1.05", "1767225601.0,0.3"]  # not 1.0499999523162842
    _, _, values = parse(csv_path)
    np.testing.assert_array_equal(values[:, 1].astype(np.float32), np.float32([1.05, 0.3]))
