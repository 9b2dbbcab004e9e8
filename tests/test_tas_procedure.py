"""The TAS sweep procedure through the runner, the E4980A and Lake Shore 336 drivers and mocks, and the store;
virtual time, on a one-cell cryostat station file (tests/cryostat_bench.py). Six temperatures over 280–350 K at
the default 10 points per decade and 8 readings averaged by the meter (the default list has 8 temperatures; the
full sweeps of every preset are in bench/ion_migration.py). Tolerance: each preset's trap depths within ±10 meV
(the issue's). V_bi is given here (the reference C–V that measures it is tested with the TID sweep).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryostat_bench import station_text

from labctl.analyze import analyze_file, report_file
from labctl.errors import ParameterError
from labctl.runner import Runner
from labctl.station import Station
from labctl.store import RunReader
from mock_instruments.presets import preset
from procedures.tas_sweep import TASSweep

TEMPERATURES = [280.0, 294.0, 308.0, 322.0, 336.0, 350.0]


def run_tas(directory: Path, preset_name: str, **params: object) -> Path:
    station = Station.from_text(station_text(preset_name), source=f"<cryostat {preset_name}>")
    result = Runner(TASSweep(sample="cell", **{"temperatures_K": TEMPERATURES, "v_bi_V": 0.85, **params}),
                    station=station, directory=directory).run()
    assert result.status == "completed", result.reason
    return result.path


@pytest.mark.parametrize("preset_name", ["fapbi3", "fapbibr_2p5"])
def test_tas_gives_each_trap_depth(tmp_path: Path, preset_name: str) -> None:
    cell = preset(preset_name)
    levels = sorted(cell.trap_levels(), key=lambda level: level[0].depth_eV)
    path = run_tas(tmp_path, preset_name)
    result = analyze_file(path, TASSweep)
    assert [t["et_eV"] for t in result["traps"]] == pytest.approx([t.depth_eV for t, _ in levels], abs=0.01)
    assert [t["n_t_cm3"] for t in result["traps"]] == pytest.approx([d for _, d in levels], rel=0.15)
    assert result["v_bi_source"] == "given"
    assert len(result["tdos"]["curves"]) == len(TEMPERATURES)
    with RunReader(path) as reader:
        block = reader.block("tas_05_350K")
        assert block.units == {"frequency_Hz": "Hz", "capacitance_F": "F", "conductance_S": "S"}
        assert block["frequency_Hz"][0] == pytest.approx(20.0) and block["frequency_Hz"][-1] == pytest.approx(2e6)
        assert block["frequency_Hz"].size == 51  # 5 decades at 10 per decade, both ends
        assert block.attrs["temperature_K"] == pytest.approx(350.0, abs=0.1) and block.attrs["bias_V"] == 0.0
        assert block.attrs["averages"] == 8
    if preset_name == "fapbi3":
        figures = report_file(path, tmp_path / "figs", TASSweep)
        assert sorted(p.name.rsplit("_", 1)[-1] for p in figures) == ["arrhenius.png", "dos.png", "spectra.png"]


@pytest.mark.parametrize(("params", "fragment"), [
    ({"f_max_Hz": 5e6}, "'f_max_Hz' = 5e+06 Hz is outside the range of lcr; allowed: 20 … 2e+06 Hz"),
    ({"f_min_Hz": 1e5, "f_max_Hz": 1e4}, "'f_min_Hz' = 100000 Hz must be below f_max_Hz = 10000 Hz"),
    ({"bias_V": 1.5}, "'bias_V' = 1.5 V is outside the range of sample 'fapbi3'; allowed: -1 … 1.3 V"),
    ({"temperatures_K": [2.0]}, "'temperatures_K' = 2 K is invalid; allowed: 4 … 500 K"),
    ({"points_per_decade": 0}, "'points_per_decade' = 0 is invalid; allowed: 1 … 100"),
])
def test_bad_input_is_refused_before_any_instrument(tmp_path: Path, params: dict[str, object], fragment: str) -> None:
    with pytest.raises(ParameterError) as caught:
        Runner(TASSweep(sample="fapbi3", **params), station=Station.load("sim"), directory=tmp_path / "d").validate()
    assert fragment in str(caught.value)
    assert not (tmp_path / "d").exists()
