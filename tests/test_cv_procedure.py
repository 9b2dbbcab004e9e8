"""The C–V profile procedure on the built-in simulated station, through the runner, the E4980A and Lake Shore
336 drivers and mocks; virtual time. Tolerances are the issue's: N_A within 10 %, V_bi within 50 mV of the
model's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.analyze import analyze_file, report_file
from labctl.errors import ParameterError
from labctl.runner import Runner
from labctl.station import Station
from labctl.store import RunReader
from mock_instruments.presets import preset
from procedures.cv_profile import CVProfile


@pytest.fixture(scope="module")
def station() -> Station:
    return Station.load("sim")


@pytest.mark.parametrize("sample", ["fapbi3", "fapbibr_2p5"])
def test_mott_schottky_gives_the_doping_and_built_in_voltage(tmp_path: Path, station: Station, sample: str) -> None:
    cell = preset(sample)
    result = Runner(CVProfile(sample=sample, temperature_K=300.0), station=station, directory=tmp_path).run()
    assert result.status == "completed", result.reason
    metrics = analyze_file(result.path, CVProfile)
    assert metrics["n_a_cm3"] == pytest.approx(cell.n_a_cm3, rel=0.10)
    assert metrics["v_bi_V"] == pytest.approx(cell.v_bi_V, abs=0.05)
    assert metrics["automatic_window"] and metrics["fit_window_V"][1] > metrics["fit_window_V"][0]
    assert metrics["hysteresis"] < 5e-3  # 2 s a point ≫ τ: forward and back agree
    with RunReader(result.path) as reader:
        block = reader.block("cv")
        assert list(block["direction"][:2]) == [1.0, 1.0] and block["direction"][-1] == -1.0
        assert block.attrs["temperature_K"] == pytest.approx(300.0, abs=0.1)
    if sample == "fapbi3":
        (figure,) = report_file(result.path, tmp_path / "figs", CVProfile)
        assert figure.name.endswith("_mott_schottky.png") and figure.stat().st_size > 20_000
        # a window given by the user is used as given
        rerun = Runner(CVProfile(sample=sample, fit_window_V=[-0.5, 0.0]), station=station, directory=tmp_path).run()
        given = analyze_file(rerun.path, CVProfile)
        assert given["fit_window_V"] == [-0.5, 0.0] and not given["automatic_window"]
        assert given["n_a_cm3"] == pytest.approx(cell.n_a_cm3, rel=0.10)


def test_a_temperature_that_never_stabilises_stops_with_a_clear_event(tmp_path: Path, station: Station) -> None:
    """On its medium heater range the LN2 stage cannot reach 300 K: the run stops before the C–V."""
    result = Runner(CVProfile(sample="fapbi3", temperature_K=300.0, heater_range="medium", timeout_s=600.0),
                    station=station, directory=tmp_path).run()
    assert result.status == "aborted" and "not stable at 300 K" in result.reason
    with RunReader(result.path) as reader:
        assert [e.kind for e in reader.events() if e.kind.startswith("temperature")] == ["temperature_not_stable"]
        assert "cv" not in reader.block_names()


@pytest.mark.parametrize(("params", "fragment"), [
    ({"v_max_V": 1.5}, "'v_max_V' = 1.5 V is outside the range of sample 'fapbi3'; allowed: -1 … 1.3 V"),
    ({"v_min_V": 0.5, "v_max_V": 0.2}, "'v_min_V' = 0.5 V must be below v_max_V = 0.2 V"),
    ({"fit_window_V": [0.2]}, "'fit_window_V' = [0.2] is invalid"),
    ({"temperature_K": 2.0}, "'temperature_K' = 2 K is invalid; allowed: 0 (as it is) or 4 … 500 K"),
    ({"frequency_Hz": 10.0}, "'frequency_Hz' = 10 Hz is invalid; allowed: 20 … 2e+06 Hz"),
])
def test_bad_input_is_refused_before_any_instrument(tmp_path: Path, station: Station, params: dict[str, object],
                                                   fragment: str) -> None:
    with pytest.raises(ParameterError) as caught:
        Runner(CVProfile(sample="fapbi3", **params), station=station, directory=tmp_path / "d").validate()
    assert fragment in str(caught.value)
    assert not (tmp_path / "d").exists()
