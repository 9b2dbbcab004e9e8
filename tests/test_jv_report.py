"""The J–V report's figures and table as a group meeting would read them: one legend entry per rate, repeats
told apart, colours that print, no stroke joining repeats, an SPO axis that does not turn a drift into a
cliff, the settling the analysis found drawn where it found it, conditions on every figure, and table names
that match the figures'."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from rich.console import Console

from labctl.reports.jv import SPO_TOLERANCE, analyze_jv, plot_jv_report, print_jv
from labctl.reports.jv_figures import (
    HI_LABELS,
    conditions_line,
    figure_hysteresis,
    figure_pixel_jv,
    figure_spo,
    rate_colours,
)
from labctl.runner import Runner
from labctl.station import Station
from labctl.store import BlockData, RunReader
from procedures.jv_hysteresis import JVHysteresis

matplotlib.use("Agg")
RATES_V_S = [0.1, 1.0]


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    procedure = JVHysteresis(sample=["wbg_ref"], v_min_V=-0.1, v_max_V=1.35, step_V=0.02, scan_rates_V_s=RATES_V_S,
                             repeats=2, prebias_V=1.3, prebias_s=2.0, spo_s=20.0)
    result = Runner(procedure, station=Station.load("sim"), directory=tmp_path_factory.mktemp("jv")).run()
    assert result.status == "completed", result.reason
    return result.path


@pytest.fixture
def opened(run_file: Path) -> Iterator[tuple[dict, dict[str, BlockData]]]:
    with RunReader(run_file) as reader:
        result = analyze_jv(reader)
        blocks = {name: reader.block(name) for name in reader.block_names()}
        yield result, blocks


def _relative_luminance(rgba: tuple[float, ...]) -> float:
    r, g, b = rgba[:3]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_every_rate_colour_is_dark_enough_to_print_on_white() -> None:
    colours = rate_colours([0.01, 0.1, 1.0, 10.0])
    # viridis' top (the old fastest rate) is a pale yellow of luminance ≈ 0.87 (0.9 of the map, the old top, ≈ 0.79);
    # keep every colour below 0.75 (weights of Rec. 709 on the sRGB values: a comparison, not a colorimetry)
    assert max(_relative_luminance(c) for c in colours.values()) < 0.75
    assert len({tuple(c) for c in colours.values()}) == 4


def test_the_legend_has_one_entry_per_rate_however_many_repeats(opened) -> None:
    result, blocks = opened
    fig = figure_pixel_jv("wbg_ref", result["scans"], blocks, "title")
    texts = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert [t for t in texts if t.endswith("V/s")] == ["0.1 V/s", "1 V/s"]
    assert "reverse (RS)" in texts and "forward (FS)" in texts and any("repeat 2" in t for t in texts)


def test_repeats_are_drawn_distinguishably(opened) -> None:
    result, blocks = opened
    fig = figure_pixel_jv("wbg_ref", result["scans"], blocks, "title")
    widths = {round(line.get_linewidth(), 2) for line in fig.axes[0].get_lines() if len(line.get_xdata()) > 2}
    assert len(widths) == 2  # first repeat and second repeat


def test_no_line_joins_repeats_measured_at_the_same_rate(opened) -> None:
    result, _ = opened
    assert len(result["hysteresis"]) == len(RATES_V_S) * 2
    fig = figure_hysteresis(result["hysteresis"], "title")
    for line in fig.axes[0].get_lines():
        x = np.asarray(line.get_xdata(), dtype=float)
        if line.get_linestyle() == "-" and x.size > 2:
            assert len(set(x.tolist())) == x.size, "a joining line with two points at one rate"
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == list(HI_LABELS.values())


def test_the_table_uses_the_figure_names_and_shows_temperature_and_reasons(opened) -> None:
    result, _ = opened
    first = dict(result["scans"][0], voc_V=None, note="the current never crosses zero")
    result = {**result, "scans": [first, *result["scans"][1:]]}
    out = io.StringIO()
    print_jv(result, Console(file=out, width=200))
    text = out.getvalue()
    for name in HI_LABELS.values():
        assert name in text
    assert "T K" in text and "298." in text
    assert "[1] scan_000" in text and "never crosses zero" in text


def test_the_spo_axis_does_not_magnify_a_small_drift() -> None:
    t = np.linspace(0, 60, 121)
    p = 17.0 * (1 + 4e-4 * t / 60)  # a 0.04 % drift over the hold
    block = BlockData("spo_x", {"irradiance_mW_cm2": 100.0, "vmpp_V": 1.0}, {"time_s": t, "power_mW_cm2": p},
                      {"time_s": "s", "power_mW_cm2": "mW/cm2"})
    spo = {"spo_pce_pct": 17.0, "settling_s": 0.0}
    low, high = figure_spo(block, spo, SPO_TOLERANCE, "title").axes[0].get_ylim()
    assert high - low >= 2 * 0.02 * 17.0 * 0.999


def test_the_settling_drawn_is_the_settling_found(opened) -> None:
    result, blocks = opened
    spo = result["spo"]["wbg_ref"]
    fig = figure_spo(blocks["spo_wbg_ref"], spo, SPO_TOLERANCE, "title")
    vertical = [line for line in fig.axes[0].get_lines() if len(set(line.get_xdata())) == 1]
    assert vertical and vertical[0].get_xdata()[0] == pytest.approx(
        blocks["spo_wbg_ref"]["time_s"][0] + spo["settling_s"])
    # after the line every point is inside the band around the stabilised value
    t, p = blocks["spo_wbg_ref"]["time_s"], blocks["spo_wbg_ref"]["power_mW_cm2"]
    level = spo["spo_mW_cm2"]
    after = t >= t[0] + spo["settling_s"]
    final = np.mean(p[-max(2, int(np.ceil(0.2 * p.size))):])
    assert np.all(np.abs(p[after] - final) <= SPO_TOLERANCE * final + 1e-12)
    assert abs(level - final) <= SPO_TOLERANCE * final


def test_every_figure_says_what_it_was_measured_under(run_file: Path, opened, tmp_path: Path) -> None:
    _, blocks = opened
    line = conditions_line([b for name, b in blocks.items() if name.startswith("scan_")])
    assert "mW/cm²" in line and " K" in line and "cm²" in line and "PLC" in line
    written = plot_jv_report(run_file, tmp_path)
    assert {p.name.split("_20")[0] for p in written} == {"jv_wbg_ref"} and len(written) == 3


def test_a_dark_run_reports_the_diode_fit_and_no_empty_light_tables(tmp_path: Path) -> None:
    procedure = JVHysteresis(sample=["wbg_ref"], v_min_V=-0.1, v_max_V=1.4, step_V=0.02, scan_rates_V_s=[1.0],
                             suns=0.0)
    result = Runner(procedure, station=Station.load("sim"), directory=tmp_path).run()
    assert result.status == "completed", result.reason
    with RunReader(result.path) as reader:
        analysis = analyze_jv(reader)
    out = io.StringIO()
    print_jv(analysis, Console(file=out, width=200))
    text = out.getvalue()
    assert "dark J–V (single diode)" in text
    assert "J–V metrics" not in text and "hysteresis indices" not in text  # nothing but dashes to show
    written = plot_jv_report(result.path, tmp_path / "figures")
    assert [p.name.endswith("_dark_jv.png") for p in written] == [True]
