"""The Keysight E4980A mock, driven by raw SCPI as in the E4980A/AL User's Guide (SCPI command reference,
chapter 8 "Overview of Remote Control"), and the real driver against it: in process, over TCP, with faults.

Physics: the meter reads the world's admittance of the device at its terminal; its DC bias drives the device
through the world, so the ionic capacitance transient of a bias step (TID) appears in a timed capture.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from instrument_helpers import RawBench, check_permanent_drop, driver_over_tcp, sim_driver
from scipy.optimize import curve_fit

from drivers.keysight_e4980a import KeysightE4980A
from labctl.roles import LCRMeter
from mock_instruments.keysight_e4980a import MockKeysightE4980A, function_values
from mock_instruments.keysight_e4980a_accuracy import basic_accuracy_percent, noise_fraction
from mock_instruments.presets import preset
from mock_instruments.registry import mock_class
from mock_instruments.world import World

ADDRESS = "sim://keysight_e4980a/lcr"


class Bench(RawBench):
    """A fapbi3 cell in the dark at a fixed (hot-plate) temperature, wired to the LCR meter."""

    def __init__(self, temperature_K: float = 250.0, seed: int = 3, cell: Any = None, **options: object) -> None:
        self.world = World(seed=seed)
        self.temperature_K = temperature_K
        self.cell = self.world.add_device("cell", preset("fapbi3") if cell is None else cell,
                                          temperature_K=temperature_K)
        self.world.wire("lcr", "cell")
        self.lcr = MockKeysightE4980A(self.world, "lcr", **options)
        self.conn = self.lcr.connect()

    def elapsed(self, *messages: str) -> float:
        start = self.world.clock.now()
        self.write(*messages)
        return self.world.clock.now() - start

    def driver(self, reconnect: bool = False, **options: Any) -> KeysightE4980A:
        return sim_driver(KeysightE4980A, self.lcr, ADDRESS, self.world.clock, reconnect=reconnect, **options)


def numbers(reply: str) -> np.ndarray:
    return np.array(reply.split(","), dtype=float)


# ------------------------------------------------------------------------------------------- protocol
def test_identification_and_reset_state(bench: Bench) -> None:
    assert bench.ask("*IDN?").startswith("Keysight Technologies,E4980A,MY")
    assert bench.ask("*OPT?") == "001"
    bench.write("*RST")
    assert float(bench.ask(":FREQ?")) == 1000.0
    assert float(bench.ask(":VOLT?")) == 1.0
    assert bench.ask(":FUNC:IMP?") == "CPD"
    assert bench.ask(":APER?") == "MED,1"
    assert bench.ask(":TRIG:SOUR?") == "INT"
    assert bench.ask(":INIT:CONT?") == "0"
    assert bench.ask(":BIAS:STAT?") == "0"
    assert bench.ask(":DISP:PAGE?") == "MEAS"
    assert bench.ask(":LIST:MODE?") == "SEQ"
    assert bench.ask(":FORM:DATA?") == "ASC"
    assert bench.ask(":SYST:ERR?") == '+0,"No error"'


def test_status_registers_and_the_link_check(bench: Bench) -> None:
    assert bench.ask("*ESE 37;*ESE?") == "37"  # what a driver uses to prove the link is in step
    assert bench.ask("*ESR?") == "0" and bench.ask("*STB?") == "0"
    bench.write(":FREQ 5MHZ")  # above 2 MHz: execution error
    assert bench.ask("*STB?") == "4"  # error queue not empty; EXE (16) is not enabled by *ESE 37
    bench.write("*ESE 16")
    assert bench.ask("*STB?") == "36"  # ... now it is: ESB (32)
    assert bench.ask("*ESR?") == "16" and bench.ask("*ESR?") == "0"  # EXE, cleared by reading
    bench.write("*ESE 256")
    assert bench.errors() == [-222, -222]
    assert float(bench.ask(":FREQ?")) == 1000.0  # nothing changed


def test_settings_with_units_and_long_forms(bench: Bench) -> None:
    bench.write(":FREQuency:CW 10KHZ", ":VOLTage:LEVel 20MV", ":FUNCtion:IMPedance:TYPE CPG", ":APER LONG,4",
                ":TRIGger:SOURce BUS", ":TRIG:DEL 0.5", ":TRIG:TDEL 10MS", ":BIAS:VOLTage:LEVel -0.5")
    assert float(bench.ask(":FREQ:CW?")) == 1e4
    assert float(bench.ask(":FREQ 1MHZ;:FREQ?")) == 1e6  # MHZ is mega (SCPI)
    assert float(bench.ask(":VOLT:LEV?")) == pytest.approx(0.02)
    assert bench.ask(":FUNC:IMP:TYPE?") == "CPG"
    assert bench.ask(":APER?") == "LONG,4"
    assert bench.ask(":APER SHOR;:APER?") == "SHOR,4"  # the averaging rate is kept when omitted
    assert float(bench.ask(":TRIG:TDEL?")) == pytest.approx(0.01)
    assert float(bench.ask(":BIAS:VOLT?")) == -0.5
    assert bench.errors() == []


@pytest.mark.parametrize(
    ("command", "code"),
    [(":FREQ 3MHZ", -222), (":FREQ 10", -222), (":VOLT 25", -222), (":APER SHOR,300", -222),
     (":APER FAST", -224), (":BIAS:VOLT 41", -222), (":TRIG:DEL 1000", -222), (":FUNC:IMP XYZ", -224),
     (":FREQ:FOO 1", -113), (":SENS:CURR:NPLC 1", -113), (":FORM REAL", -221), (":MEM:DIM DBUF,0", -222),
     (":MEM:DIM XBUF,5", -224), (":MEM:FILL DBUF", -221), (":TRIG:IMM", -211), (":FREQ", -109)],
)
def test_wrong_commands_and_values_are_reported(bench: Bench, command: str, code: int) -> None:
    bench.write("*RST", command)
    assert bench.errors() == [code]


def test_without_option_001_the_level_and_bias_are_limited() -> None:
    bench = Bench(option_001=False)
    assert bench.ask("*OPT?") == "0"
    bench.write(":VOLT 2", ":BIAS:VOLT 1.5")
    assert bench.errors() == []
    bench.write(":VOLT 5", ":BIAS:VOLT 0.5", ":LIST:BIAS:VOLT 0,1")
    assert bench.errors() == [-222, -222, -222]
    assert float(bench.ask(":BIAS:VOLT?")) == 1.5


def test_trigger_system_states(bench: Bench) -> None:
    bench.write("*RST", ":TRIG:SOUR BUS")
    bench.write(":FETC?")  # nothing measured yet: no reply, -230
    assert bench.errors() == [-230]
    bench.write(":TRIG:IMM")
    assert bench.errors() == [-211]  # idle: not waiting for a trigger
    bench.write(":INIT", ":INIT")
    assert bench.errors() == [-213]
    bench.write(":TRIG:IMM", ":TRIG:IMM")
    assert bench.errors() == [-211]  # measuring: the second trigger is ignored
    first = bench.ask(":FETC?")
    assert bench.ask(":FETC?") == first  # single initiation: back to idle, the result stays
    bench.write(":TRIG:IMM")
    assert bench.errors() == [-211]
    bench.write(":INIT:CONT ON", ":TRIG:IMM")
    bench.ask(":FETC?")
    bench.write(":TRIG:IMM")
    assert bench.errors() == []  # continuous: re-armed after each measurement
    bench.write(":ABOR", ":TRIG:SOUR INT", "*TRG")
    assert bench.errors() == [-211]  # *TRG needs trigger source BUS


@pytest.mark.parametrize(
    ("aperture", "frequency", "expected_s"),
    [("SHOR", 1e4, 5.6e-3), ("SHOR", 100, 56e-3), ("MED", 1e4, 88e-3), ("LONG", 1e4, 0.22),
     ("LONG,4", 1e4, 0.88), ("MED", 20, 0.4)],
)
def test_measurement_time_is_charged_to_the_clock(bench: Bench, aperture: str, frequency: float,
                                                  expected_s: float) -> None:
    bench.write(f":FREQ {frequency}", f":APER {aperture}", ":TRIG:SOUR BUS", ":INIT:CONT ON")
    start = bench.world.clock.now()
    reply = bench.ask("*TRG")  # the E4980A answers a bus trigger with the result
    command = bench.lcr.message_time_s + bench.lcr.unit_time_s  # handling one message of one command
    assert bench.world.clock.now() - start == pytest.approx(command + expected_s, abs=1e-6)
    assert len(reply.split(",")) == 3
    assert bench.elapsed(":TRIG:DEL 0.5", ":TRIG:IMM", ":FETC?") == pytest.approx(2 * command + 0.5 + expected_s,
                                                                                 abs=1e-6)


def expected_pair(bench: Bench, function: str, frequency: float) -> tuple[float, float]:
    cell, temperature = bench.cell, bench.temperature_K
    y = complex(cell.conductance_S(0.0, frequency, temperature),
                2 * math.pi * frequency * cell.capacitance_F(0.0, frequency, temperature))
    return function_values(function, y, frequency, math.inf, (0.0, 0.0))


@pytest.mark.parametrize("function", ["CPD", "CPQ", "CPG", "CPRP", "CSD", "CSRS", "LPG", "LSRS", "RX", "ZTD",
                                      "ZTR", "GB", "YTD"])
def test_every_function_is_computed_from_the_device_admittance(bench: Bench, function: str) -> None:
    bench.write(":FREQ 20KHZ", f":FUNC:IMP {function}", ":APER LONG,8", ":TRIG:SOUR BUS", ":INIT:CONT ON")
    a, b, status = numbers(bench.ask("*TRG"))
    want_a, want_b = expected_pair(bench, function, 2e4)
    assert status == 0
    assert a == pytest.approx(want_a, rel=2e-4)
    assert b == pytest.approx(want_b, rel=2e-3, abs=2e-3 if function.endswith(("TD", "TR")) else 0)


def test_cp_and_cs_of_a_lossy_capacitor_agree_with_the_circuit_formulas() -> None:
    c, g, f = 10e-9, 1e-4, 1e4
    y = complex(g, 2 * math.pi * f * c)
    cs, rs = function_values("CSRS", y, f, 0.0, (0.0, 0.0))
    d = g / (2 * math.pi * f * c)
    assert cs == pytest.approx(c * (1 + d**2)) and rs == pytest.approx(d**2 / (1 + d**2) / g)
    assert function_values("CPD", y, f, 0.0, (0.0, 0.0)) == pytest.approx((c, d))
    assert function_values("ZTD", y, f, 0.0, (0.0, 0.0))[1] == pytest.approx(-math.degrees(math.atan(1 / d)))


def test_dc_bias_drives_the_device_through_the_world(bench: Bench) -> None:
    bench.write(":FREQ 10KHZ", ":FUNC:IMP CPG", ":TRIG:SOUR BUS", ":INIT:CONT ON", ":BIAS:VOLT -0.5")
    assert bench.world.voltage_V("lcr") == pytest.approx(0.0, abs=1e-9)  # bias off: open, dark: 0 V
    bench.write(":BIAS:STAT ON")
    assert bench.world.voltage_V("lcr") == -0.5
    bench.world.clock.sleep(60.0)  # the ions settle at the bias
    c_reverse = numbers(bench.ask("*TRG"))[0]
    assert c_reverse == pytest.approx(bench.cell.capacitance_F(-0.5, 1e4, 250.0), rel=5e-4)
    bench.write(":BIAS:VOLT 0.3")
    bench.world.clock.sleep(60.0)
    assert numbers(bench.ask("*TRG"))[0] > c_reverse  # forward bias: narrower depletion, larger C
    bench.write(":BIAS:STAT OFF")
    assert bench.lcr.world._drives["lcr"].kind == "open"


def test_list_sweep_of_bias_levels_is_a_c_v_sweep(bench: Bench) -> None:
    levels = [-0.8, -0.4, 0.0, 0.3]
    bench.write(":FREQ 10KHZ", ":FUNC:IMP CPG", ":APER SHOR", ":TRIG:SOUR BUS", ":INIT:CONT ON",
                ":LIST:BIAS:VOLT " + ",".join(map(str, levels)), ":LIST:MODE SEQ", ":DISP:PAGE LIST",
                ":BIAS:STAT ON", ":TRIG:TDEL 0.1")
    assert numbers(bench.ask(":LIST:BIAS:VOLT?")) == pytest.approx(levels)
    elapsed = bench.elapsed(":TRIG:IMM", "*WAI")
    command = bench.lcr.message_time_s + bench.lcr.unit_time_s
    assert elapsed == pytest.approx(command + 4 * 5.6e-3 + 3 * 0.1, abs=1e-6)
    records = numbers(bench.ask(":FETC?")).reshape(-1, 4)  # A, B, status, IN/OUT per point
    assert np.all(np.diff(records[:, 0]) > 0)  # C rises towards forward bias
    assert np.all(records[:, 2] == 0)
    assert bench.world.voltage_V("lcr") == 0.0  # back at the :BIAS level after the sweep
    bench.write(":LIST:MODE STEP", ":TRIG:IMM")
    assert len(numbers(bench.ask(":FETC?"))) == 4  # one point per trigger in STEP mode
    bench.write(":LIST:FREQ " + ",".join(["1E4"] * 202))
    assert bench.errors() == [-223]
    bench.write(":LIST:FREQ 1E3,1E4,1E5")
    bench.write(":LIST:BIAS:VOLT?")  # one list parameter at a time: the bias list is gone
    assert bench.errors() == [-221]


def test_data_buffer_memory_fills_and_reads_back(bench: Bench) -> None:
    bench.write(":MEM:READ? DBUF")
    assert bench.errors() == [-221]
    bench.write(":FUNC:IMP CPG", ":APER SHOR", ":MEM:DIM DBUF,5", ":MEM:FILL DBUF", ":TRIG:SOUR BUS",
                ":INIT:CONT ON")
    for _ in range(3):
        bench.ask("*TRG")
    records = numbers(bench.ask(":MEM:READ? DBUF")).reshape(-1, 4)
    assert records.shape == (5, 4)
    assert np.all(records[:3, 2] == 0) and np.all(records[3:, 2] == -1)
    assert np.all(records[3:, :2] == 9.9e37)
    assert records[0, 0] == pytest.approx(bench.cell.capacitance_F(0.0, 1000.0, 250.0), rel=1e-3)
    bench.write(":MEM:CLE DBUF")
    assert np.all(numbers(bench.ask(":MEM:READ? DBUF")).reshape(-1, 4)[:, 2] == -1)
    bench.ask("*TRG")  # cleared buffers do not fill until :MEM:FILL again
    assert np.all(numbers(bench.ask(":MEM:READ? DBUF")).reshape(-1, 4)[:, 2] == -1)
    assert bench.errors() == []


def test_free_run_is_lazy_until_the_buffer_fills(bench: Bench) -> None:
    bench.write(":FUNC:IMP CPG", ":APER SHOR")  # power-on: source INT, continuous: free running
    bench.world.clock.sleep(3600.0)
    assert bench.world.next_event_s() is None  # no event per free-run measurement
    c = numbers(bench.ask(":FETC?"))[0]
    assert c == pytest.approx(bench.cell.capacitance_F(0.0, 1000.0, 250.0), rel=1e-3)
    bench.write(":MEM:DIM DBUF,10", ":MEM:FILL DBUF")
    bench.world.clock.sleep(0.03 - bench.lcr.message_time_s - bench.lcr.unit_time_s)
    status = numbers(bench.ask(":MEM:READ? DBUF")).reshape(-1, 4)[:, 2]
    assert list(status).count(0) == 5  # 5.6 ms per measurement: 5 done 30 ms after the fill began
    bench.world.clock.sleep(1.0)
    assert np.all(numbers(bench.ask(":MEM:READ? DBUF")).reshape(-1, 4)[:, 2] == 0)
    assert bench.world.next_event_s() is None  # full: back to lazy free run


@pytest.mark.parametrize(("aperture", "averages", "level_V", "percent"),
                         [("SHORt", 1, 2.0, 0.15), ("SHORt", 1, 0.02, 0.5), ("MEDium", 4, 0.5, 0.05),
                          ("LONG", 1, 0.1, 0.10)])
def test_reading_noise_is_the_data_sheets_accuracy_over_three(aperture: str, averages: int, level_V: float,
                                                              percent: float) -> None:
    """Ab at 10 kHz from the data sheet's tables 12/13 (0.15 % at SHORT 1–10 V; 0.2 % × 50 mV/20 mV at SHORT
    20 mV; ...), read as 3σ: the scatter of 150 buffered readings of a settled cell is Ab/3/√averages within
    20 % (the χ² spread of 150 samples is ±12 % at 2σ)."""
    assert basic_accuracy_percent(aperture, 1e4, level_V) == pytest.approx(percent)
    bench = Bench(temperature_K=250.0)
    bench.write(":FREQ 10KHZ", f":VOLT {level_V}", ":FUNC:IMP CPG", f":APER {aperture},{averages}",
                ":TRIG:SOUR BUS", ":INIT:CONT ON", ":MEM:DIM DBUF,150", ":MEM:FILL DBUF")
    for _ in range(150):
        bench.ask("*TRG")
    c = numbers(bench.ask(":MEM:READ? DBUF")).reshape(-1, 4)[:, 0]
    expected = percent / 100 / 3 / math.sqrt(averages)
    assert np.std(c) / np.mean(c) == pytest.approx(expected, rel=0.2)
    assert np.mean(c) == pytest.approx(bench.cell.capacitance_F(0.0, 1e4, 250.0), rel=3 * expected / math.sqrt(150))


def test_a_point_is_the_average_of_its_integration_window() -> None:
    """A 2 ms transient (fast ions: D0 × 25, 0.12·N_A of them, at 300 K) seen through 5.6 ms windows: each
    point equals the device's capacitance averaged over its window (computed here on a copy of the cell
    stepped through the window at 0.1 ms), not the value at the middle of the window."""
    bench = Bench(temperature_K=300.0, seed=5,
                  cell=preset("fapbi3", d0_anion_cm2_s=1.32e-6, n_ion_anion_cm3=3.6e15))
    world, lcr, cell = bench.world, bench.lcr, bench.cell
    bench.write(":FREQ 10KHZ", ":VOLT 1", ":FUNC:IMP CPG", ":APER SHOR", ":TRIG:SOUR BUS", ":INIT:CONT ON",
                ":TRIG:DEL 0", ":TRIG:TDEL 0", ":LIST:MODE SEQ", ":LIST:FREQ " + ",".join(["1E4"] * 4),
                ":DISP:PAGE LIST", ":MEM:DIM DBUF,4", ":MEM:FILL DBUF", ":BIAS:VOLT 1", ":BIAS:STAT ON")
    bench.settle(5.0)
    world.sync()
    filled = world.device("cell").copy()  # equilibrated at +1 V: the state at the step
    bench.write(":BIAS:VOLT:LEV 0;:TRIG:IMM", "*WAI")
    step_s = lcr.bias_changes[-1][0]
    measured = numbers(bench.ask(":MEM:READ? DBUF")).reshape(-1, 4)[:, 0]
    tau = cell.ion_tau_s("anion", 300.0)
    assert 1.5e-3 < tau < 2.5e-3
    averaged, middle = [], []
    for point in lcr.last:
        ref, t = filled.copy(), 0.0
        grid = point.start_s - step_s + point.duration_s * (np.arange(56) + 0.5) / 56
        values = []
        for when in grid:
            ref.advance(when - t, 0.0, 0.0, 300.0)
            t = when
            values.append(ref.capacitance_F(0.0, 1e4, 300.0))
        averaged.append(np.mean(values))
        middle.append(0.5 * (values[27] + values[28]))
    sigma = noise_fraction("SHORt", 1, 1e4, 1.0) * measured[0]
    np.testing.assert_allclose(measured, averaged, atol=4 * sigma)
    assert abs(averaged[0] - middle[0]) > 8 * sigma  # the window average is not the mid-window sample


def test_a_meter_without_a_device_reads_the_fixture_stray() -> None:
    world = World(seed=1)
    lcr = MockKeysightE4980A(world, "lcr")
    connection = lcr.connect()
    connection.write(":FUNC:IMP CPG;:FETC?")
    c, g, status = numbers(connection.read())
    assert abs(c) < 1e-13 and abs(g) < 1e-8 and status == 0


def test_the_registry_finds_the_mock() -> None:
    assert mock_class("keysight_e4980a") is MockKeysightE4980A


# ---------------------------------------------------------------------------------- driver, in process
def test_driver_measure_gives_the_device_capacitance(bench: Bench) -> None:
    lcr = bench.driver()
    assert isinstance(lcr, LCRMeter)
    assert lcr.identify().startswith("Keysight Technologies,E4980A")
    lcr.set_frequency(1e4)
    lcr.set_ac_level(0.02)
    tolerance = 5 * noise_fraction("MEDium", 1, 1e4, 0.02)  # 5σ of the data sheet's noise at MED, 20 mV
    capacitance, conductance = lcr.measure()
    c_model = bench.cell.capacitance_F(0.0, 1e4, 250.0)
    assert capacitance == pytest.approx(c_model, rel=tolerance)
    # G is small beside ωC (D ≈ 5e-4): the noise on the admittance is a fraction of |Y| ≈ ωC
    assert conductance == pytest.approx(bench.cell.conductance_S(0.0, 1e4, 250.0), abs=tolerance * 2e4 * math.pi
                                        * c_model)
    lcr.set_dc_bias(-0.5)
    lcr.dc_bias_on()
    bench.world.clock.sleep(60.0)
    assert lcr.measure()[0] == pytest.approx(bench.cell.capacitance_F(-0.5, 1e4, 250.0), rel=tolerance)
    snapshot = lcr.settings_snapshot()
    assert snapshot["frequency_Hz"] == 1e4 and snapshot["dc_bias_on"] is True
    assert snapshot["dc_bias_V"] == -0.5 and snapshot["function"] == "CPG"
    lcr.safe_state()
    assert not bench.lcr.bias_on and bench.lcr.bias_V == 0.0
    assert bench.world._drives["lcr"].kind == "open"


def _exponential(t: np.ndarray, c_inf: float, delta: float, log_tau: float) -> np.ndarray:
    return c_inf + delta * np.exp(-t / np.exp(log_tau))


@pytest.mark.parametrize(("temperature_K", "duration_s"), [(250.0, 1.0), (230.0, 2.0)])
def test_capture_transient_after_a_bias_pulse_shows_the_ionic_transient(temperature_K: float,
                                                                         duration_s: float) -> None:
    bench = Bench(temperature_K=temperature_K)
    lcr = bench.driver()
    lcr.set_frequency(1e4)
    lcr.set_ac_level(0.5)  # SHORT at 0.5 V: 0.033 % noise a point, so that one capture resolves τ to ~1 %
    lcr.set_dc_bias(1.0)  # the TID filling pulse: +1 V for 5 s in the dark, then back to 0 V
    lcr.dc_bias_on()
    bench.world.clock.sleep(5.0)
    lcr.set_dc_bias(0.0)
    result = lcr.capture_transient(duration_s, 201)
    t, c = result.time_s, result.capacitance_F
    assert result.frequency_Hz == 1e4 and np.all(np.diff(t) > 0) and not np.isnan(c).any()
    params, _ = curve_fit(_exponential, t, c, p0=[c[-1], c[0] - c[-1], math.log(duration_s / 10)])
    tau = math.exp(params[2])
    assert params[1] > 0  # dark halide migration in p-i-n FAPbI3: C decays, ΔC = C(∞) − C(0⁺) < 0
    assert tau == pytest.approx(bench.cell.ion_tau_s("anion", temperature_K), rel=0.05)
    assert params[0] == pytest.approx(bench.cell.capacitance_F(0.0, 1e4, temperature_K), rel=1e-3)
    lcr.measure()  # back to spot measurements after the capture
    assert bench.ask(":DISP:PAGE?") == "MEAS" and bench.ask(":APER?") == "MED,1"


def _true_dead_time_s(bench: Bench) -> float:
    """From the last bias change to the middle of the first point of the last sweep, in world time."""
    first = bench.lcr.last[0]
    return first.start_s + first.duration_s / 2 - bench.lcr.bias_changes[-1][0]


FILL_PULSE = (":FREQ 10KHZ", ":VOLT 0.02", ":BIAS:VOLT 1", ":BIAS:STAT ON")
CAPTURE_SET_UP = (":FORM:DATA ASC", ":FUNC:IMP:TYPE CPG", ":APER SHOR,1", ":TRIG:SOUR BUS", ":INIT:CONT ON",
                  ":TRIG:DEL 0", ":TRIG:TDEL 0", ":LIST:MODE SEQ", ":LIST:FREQ " + ",".join(["1E4"] * 50),
                  ":DISP:PAGE LIST", ":MEM:DIM DBUF,50", ":MEM:FILL DBUF")


def test_a_capture_configured_after_the_bias_step_starts_a_tenth_of_a_second_late(bench: Bench) -> None:
    bench.write(*FILL_PULSE)
    bench.settle(5.0)
    # what a driver that removes the bias first and then configures the capture sends (with its checks)
    bench.write(":BIAS:VOLT:LEV 0")
    bench.errors()
    bench.ask(":FREQ:CW?")
    bench.ask(":APER?")
    bench.write(*CAPTURE_SET_UP)
    bench.errors()
    bench.write(":TRIG:IMM", "*WAI")
    assert _true_dead_time_s(bench) > 0.09  # 4 half-lives of a 20 ms transient, gone unseen
    # configured first, the step and the trigger in one message: one command and half a point
    bench.write(":BIAS:VOLT:LEV 1", *CAPTURE_SET_UP)
    bench.errors()
    bench.write(":BIAS:VOLT:LEV 0;:TRIG:IMM", "*WAI")
    assert _true_dead_time_s(bench) == pytest.approx(bench.lcr.unit_time_s + 5.6e-3 / 2, abs=1e-6)
    assert bench.errors() == []


def filled_at(temperature_K: float) -> tuple[Bench, KeysightE4980A, float]:
    """TID (dark halide migration in FAPbI3: tau 50 ms at 300 K, 0.11 s at 250 K): the meter at 10 kHz,
    0.5 V (low noise: 0.033 % a point at SHORT), after the filling pulse (+1 V for 5 s); with the anion time
    constant of the model."""
    bench = Bench(temperature_K=temperature_K)
    lcr = bench.driver()
    lcr.set_frequency(1e4)
    lcr.set_ac_level(0.5)
    lcr.set_dc_bias(1.0)
    lcr.dc_bias_on()
    bench.world.clock.sleep(5.0)
    return bench, lcr, bench.cell.ion_tau_s("anion", temperature_K)


def test_driver_captures_a_50_ms_transient_from_the_bias_step() -> None:
    bench, lcr, tau_s = filled_at(300.0)
    result = lcr.capture_transient(0.5, 201, bias_V=0.0)
    assert result.dead_time_s == pytest.approx(_true_dead_time_s(bench), abs=1e-6)
    assert result.dead_time_s < 5e-3 and result.time_s[0] == result.dead_time_s
    t, c = result.time_s, result.capacitance_F
    params, _ = curve_fit(_exponential, t, c, p0=[c[-1], c[0] - c[-1], math.log(0.05)])
    assert math.exp(params[2]) == pytest.approx(tau_s, rel=0.05)
    assert params[0] == pytest.approx(bench.cell.capacitance_F(0.0, 1e4, 300.0), rel=1e-3)
    assert abs(c[0] - c[-1]) > 0.7 * abs(params[1])  # the first point still holds most of the transient
    assert bench.world.voltage_V("lcr") == 0.0 and bench.ask(":BIAS:VOLT?") == "+0.00000E+00"
    # the old way (bias removed, then the capture configured and triggered) misses it and cannot say so
    lcr.set_dc_bias(1.0)
    bench.world.clock.sleep(5.0)
    lcr.set_dc_bias(0.0)
    late = lcr.capture_transient(0.5, 201)
    assert math.isnan(late.dead_time_s) and _true_dead_time_s(bench) > 0.09
    t_late = late.time_s + _true_dead_time_s(bench)  # what it did see is the transient's tail
    params, _ = curve_fit(_exponential, late.time_s, late.capacitance_F, p0=[c[-1], c[0] - c[-1], math.log(0.05)])
    seen = params[1] * math.exp(-late.time_s[0] / math.exp(params[2]))
    assert abs(seen) < 0.25 * abs(c[0] - c[-1]) and t_late[0] > 0.09


def test_a_long_capture_keeps_the_early_transient_at_full_resolution() -> None:
    bench, lcr, tau_s = filled_at(250.0)
    result = lcr.capture_transient(20.0, 201, bias_V=0.0)
    t, c = result.time_s, result.capacitance_F
    assert len(t) == 201 and np.all(np.diff(t) > 0) and t[-1] == pytest.approx(20.0, rel=0.01)
    assert np.diff(t[:100]) == pytest.approx(5.6e-3)  # 100 points 5.6 ms apart cover the first 0.56 s
    second = bench.lcr.last[0]  # the second sweep's first point, in world time from the bias step
    step_s = bench.lcr.bias_changes[-1][0]
    assert t[100] == pytest.approx(second.start_s + second.duration_s / 2 - step_s, abs=1e-6)
    params, _ = curve_fit(_exponential, t, c, p0=[c[-1], c[0] - c[-1], math.log(0.1)])
    assert math.exp(params[2]) == pytest.approx(tau_s, rel=0.05)


# ---------------------------------------------------------------------------------------------- faults
def test_timeouts_and_drops_are_recovered_and_a_permanent_drop_is_reported(bench: Bench) -> None:
    lcr = bench.driver(reconnect=True)
    lcr.set_frequency(1e4)
    reference = lcr.measure()[0]
    bench.lcr.set_faults(timeout=1)
    assert lcr.measure()[0] == pytest.approx(reference, rel=1e-3)
    assert lcr.retry_count == 1
    bench.lcr.set_faults(drop=1)
    assert lcr.measure()[0] == pytest.approx(reference, rel=1e-3)
    assert lcr.reconnect_count == 1
    check_permanent_drop(bench.lcr, lcr.measure, "lcr", ADDRESS)


# ------------------------------------------------------------------------------------------------- TCP
@pytest.mark.slow
def test_driver_over_tcp(bench: Bench) -> None:
    with driver_over_tcp(KeysightE4980A, bench.lcr, bench.world.clock) as lcr:
        assert lcr.identify().startswith("Keysight Technologies,E4980A")
        lcr.set_frequency(1e4)
        assert lcr.measure()[0] == pytest.approx(bench.cell.capacitance_F(0.0, 1e4, 250.0),
                                                 rel=5 * noise_fraction("MEDium", 1, 1e4, 1.0))
        result = lcr.capture_transient(0.05, 5)
        assert len(result.time_s) == 5 and not np.isnan(result.capacitance_F).any()
