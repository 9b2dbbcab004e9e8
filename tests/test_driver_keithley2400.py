"""Protocol tests for drivers.keithley2400 (and the shared SMU helpers in drivers.smu_common).

Exchanges follow the Model 2400 Series SourceMeter User's Manual (2400S-900-01), section 18 "SCPI Command
Reference" (sections cited per test). Every exchange starts with the data format pymeasure sets on
construction (FORMat subsystem, ":FORMat:ELEMents"). Page numbers are those of the
manual's section 18 where checked; otherwise the subsystem is named.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from instrument_helpers import failing_instrument
from pymeasure.test import expected_protocol

from drivers import smu_common
from drivers.keithley2400 import Keithley2400, sdm_cycle_s
from labctl.clock import VirtualClock
from labctl.errors import ConnectionLost, InstrumentError, InstrumentTimeout, ParameterError
from labctl.roles import SourceMeter

FORMAT = (":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS", None)
NO_ERROR = ("SYST:ERR?", '0,"No error"')
IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,4108527,C30   Mar 17 2006 09:29:29/A02  /K/J"


def protocol(*pairs):
    return expected_protocol(Keithley2400, [FORMAT, *pairs], clock=VirtualClock())


def test_satisfies_the_source_meter_role():
    with protocol() as inst:
        assert isinstance(inst, SourceMeter)


def test_limits_are_class_constants_usable_before_connecting():
    assert Keithley2400.voltage_range_V == (-210.0, 210.0)
    assert Keithley2400.current_range_A == (-1.05, 1.05)
    assert Keithley2400.nplc_range == (0.01, 10.0)


def test_identify():  # IEEE 488.2 *IDN? (section 17, common commands)
    with protocol(("*IDN?", IDN)) as inst:
        assert inst.identify() == IDN


def test_source_voltage():  # SOURce subsystem :FUNC, :VOLT:MODE, :VOLT; SENSe1 :FUNC
    with protocol((":SOUR:FUNC VOLT", None), (":SOUR:VOLT:MODE FIX", None), (':SENS:FUNC "CURR"', None),
                  (":SOUR:VOLT 0.55", None), NO_ERROR) as inst:
        inst.source_voltage(0.55)


def test_source_voltage_out_of_range_sends_nothing():
    with protocol() as inst, pytest.raises(ParameterError, match="outside"):
        inst.source_voltage(250)


def test_source_current():
    with protocol((":SOUR:FUNC CURR", None), (":SOUR:CURR:MODE FIX", None), (':SENS:FUNC "VOLT"', None),
                  (":SOUR:CURR -0.001", None), NO_ERROR) as inst:
        inst.source_current(-1e-3)


def test_source_voltage_rejected_by_instrument_raises_with_message():  # SYSTem subsystem :ERRor?
    with protocol((":SOUR:FUNC VOLT", None), (":SOUR:VOLT:MODE FIX", None), (':SENS:FUNC "CURR"', None),
                  (":SOUR:VOLT 20", None), ("SYST:ERR?", '-221,"Settings conflict"'), NO_ERROR) as inst:
        with pytest.raises(InstrumentError, match="-221, Settings conflict"):
            inst.source_voltage(20)


def test_set_compliance_current():  # SENSe1 subsystem :CURR:PROT
    with protocol((":SENSE:CURRENT:PROTECTION 0.025", None), NO_ERROR) as inst:
        inst.set_compliance_current(0.025)


@pytest.mark.parametrize("bad", [0.0, -0.01, 1.5])
def test_set_compliance_current_rejects_bad_values(bad):
    with protocol() as inst, pytest.raises(ParameterError):
        inst.set_compliance_current(bad)


def test_set_compliance_voltage():  # SENSe1 subsystem :VOLT:PROT
    with protocol((":SENSE:VOLTAGE:PROTECTION 2", None), NO_ERROR) as inst:
        inst.set_compliance_voltage(2)


def test_set_nplc():  # SENSe1 subsystem :CURR:NPLCycles (global)
    with protocol((":SENSE:CURRENT:NPLCYCLES 0.1", None), NO_ERROR) as inst:
        inst.set_nplc(0.1)


def test_set_nplc_out_of_range():
    with protocol() as inst, pytest.raises(ParameterError):
        inst.set_nplc(20)


def test_output_on():  # OUTPut subsystem
    with protocol(("OUTPUT 1", None), NO_ERROR) as inst:
        inst.output_on()


def test_output_off():
    with protocol(("OUTPUT 0", None), NO_ERROR) as inst:
        inst.output_off()


def test_measure():  # :READ?; elements V, I, R, time, status; 9.91e37 = not measured
    reading = "+5.500000E-01,-1.234500E-02,+9.910000E+37,+1.234560E+02,+2.150800E+04"
    with protocol((":READ?", reading)) as inst:
        assert inst.measure() == (0.55, -0.012345)


def test_source_voltage_level_property():
    with protocol((":SOUR:VOLT?", "1.5"), (":SOUR:VOLT 0.2", None), NO_ERROR) as inst:
        assert inst.source_voltage_level == 1.5
        inst.source_voltage_level = 0.2


def test_source_voltage_level_is_strict():
    with protocol() as inst, pytest.raises(ValueError):
        inst.source_voltage_level = 211


#: What the sweep reads first to size the source delay: NPLC 0.1 at 60 Hz with auto-zero on, i.e. an SDM
#: cycle of 225 + 50 + 3 x (1666.7 + 185) + 1800 µs = 7.63 ms (appendix A, case I); then the source delay
#: and current autorange it puts back, and the compliance whose range the sweep fixes.
TIMING = [(":SENS:CURR:NPLC?", "+1.000000E-01"), (":SYST:LFR?", "60"), (":SYST:AZER?", "1"),
          (":SOUR:DEL:AUTO?", "1"), (":SOUR:DEL?", "+0.000000E+00"), (":SENS:CURR:RANG:AUTO?", "1"),
          (":SENS:CURR:PROT?", "+1.050000E-01")]


def sweep_setup(voltages: list[str], n: int, delay: str = "0.04237", timing=TIMING
                ) -> list[tuple[str | None, str | None]]:
    """A list sweep up to :INIT (section 10 "Sweep Operation", 18-91 list, 18-115 TRACe); ``delay`` is the
    source delay that makes the point period the requested dwell (0.05 s - 7.63 ms by default). The current
    range is fixed at the compliance's for the sweep; the bias level (18-78) is the last list value."""
    values = ",".join(voltages).split(",")
    return [
        *timing, FORMAT, (":SOUR:FUNC VOLT", None), (":SENS:FUNC:OFF:ALL", None), (':SENS:FUNC "CURR"', None),
        (":SENS:CURR:RANG 0.105", None), (":SOUR:VOLT:MODE FIX", None), (f":SOUR:VOLT {values[0]}", None),
        (f":SOUR:LIST:VOLT {voltages[0]}", None),
        *[(f":SOUR:LIST:VOLT:APP {chunk}", None) for chunk in voltages[1:]],
        (":SOUR:VOLT:MODE LIST", None), (f":SOUR:DEL {delay}", None), (":TRIG:DEL 0", None),
        (":ARM:COUN 1", None),
        (f":TRIG:COUN {n}", None), (":TRAC:FEED:CONT NEV", None), (":TRAC:CLE", None),
        (f":TRAC:POIN {n}", None), (":TRAC:FEED SENS", None), (":TRAC:TST:FORM ABS", None),
        (":TRAC:FEED:CONT NEXT", None), NO_ERROR, ("OUTPUT 1", None), (f":SOUR:VOLT {values[-1]}", None),
        (":INIT", None),
    ]


def sweep_finish(last: str = "") -> list[tuple[str | None, str | None]]:
    """Back to fixed mode (at the bias, i.e. the last value), one trigger, source delay and autorange back."""
    return [(":TRAC:FEED:CONT NEV", None), (":SOUR:VOLT:MODE FIX", None), (":TRIG:COUN 1", None),
            (":SOUR:DEL:AUTO ON", None), (":SENS:CURR:RANG:AUTO ON", None), NO_ERROR]


SAFE = [(":ABOR", None), ("OUTPUT 0", None), (":SOUR:VOLT:MODE FIX", None), (":SOUR:VOLT 0", None),
        (":SOUR:CURR 0", None)]
#: After a failed sweep or dwell: abort, buffer off, fixed mode, one trigger without delay, an immediate arm
#: layer of one pass, auto source delay (best effort).
RECOVERY = [(":ABOR", None), (":TRAC:FEED:CONT NEV", None), (":SOUR:VOLT:MODE FIX", None),
            (":TRIG:COUN 1", None), (":TRIG:DEL 0", None), (":ARM:SOUR IMM", None), (":ARM:COUN 1", None),
            (":SOUR:DEL:AUTO ON", None)]
BUFFER_3 = ("0,-2.0E-02,9.91E37,0,21504,"  # V, I, R (not measured), buffer time (ABS), status
            "0.1,-1.9E-02,9.91E37,0.105,21504,"
            "0.2,-1.7E-02,9.91E37,0.21,21504")


def test_sweep_voltage_reads_the_buffer():  # 18-115 :TRAC:POIN:ACT?, :TRAC:DATA?
    pairs = [*sweep_setup(["0,0.1,0.2"], 3), (":TRAC:POIN:ACT?", "3"), (":TRAC:DATA?", BUFFER_3),
             *sweep_finish("0.2")]
    with protocol(*pairs) as inst:
        result = inst.sweep_voltage(np.array([0.0, 0.1, 0.2]), 0.05)
    np.testing.assert_allclose(result.time_s, [0, 0.105, 0.21])
    np.testing.assert_allclose(result.voltage_V, [0, 0.1, 0.2])
    np.testing.assert_allclose(result.current_A, [-0.02, -0.019, -0.017])
    assert result.achieved_rate_V_s == pytest.approx(0.2 / 0.21)
    assert result.settings["dwell_s"] == 0.05
    assert result.settings["source_delay_s"] == pytest.approx(0.05 - 7.63e-3)


def test_sweep_voltage_polls_until_the_buffer_is_full():
    pairs = [*sweep_setup(["0,0.1,0.2"], 3), (":TRAC:POIN:ACT?", "1"), (":TRAC:POIN:ACT?", "3"),
             (":TRAC:DATA?", BUFFER_3), *sweep_finish("0.2")]
    with protocol(*pairs) as inst:
        result = inst.sweep_voltage(np.array([0.0, 0.1, 0.2]), 0.05)
    assert result.voltage_V.size == 3


def test_sweep_after_safe_state_runs_again():  # safe_state cancels a running sweep; a new one re-arms
    pairs = [*SAFE, *sweep_setup(["0,0.1,0.2"], 3), (":TRAC:POIN:ACT?", "3"), (":TRAC:DATA?", BUFFER_3),
             *sweep_finish("0.2")]
    with protocol(*pairs) as inst:
        inst.safe_state()
        assert inst.sweep_cancel.is_set()
        inst.sweep_voltage(np.array([0.0, 0.1, 0.2]), 0.05)
        assert not inst.sweep_cancel.is_set()


def test_sweep_voltage_appends_lists_longer_than_100_points():  # 18-92 :SOUR:LIST:VOLT:APP
    voltages = np.round(np.linspace(0, 1.49, 150), 2)
    first = ",".join(f"{v:.7g}" for v in voltages[:100])
    rest = ",".join(f"{v:.7g}" for v in voltages[100:])
    buffer = ",".join(f"{v:.7g},-1e-3,9.91e37,{k * 0.06:.3f},21504" for k, v in enumerate(voltages))
    pairs = [*sweep_setup([first, rest], 150, delay="0.00237"), (":TRAC:POIN:ACT?", "150"),
             (":TRAC:DATA?", buffer), *sweep_finish("1.49")]
    with protocol(*pairs) as inst:
        result = inst.sweep_voltage(voltages, 0.01)
    assert result.voltage_V.size == 150
    assert result.achieved_rate_V_s == pytest.approx(1.49 / (149 * 0.06))


def test_sweep_voltage_set_up_error_raises_before_the_sweep_starts():
    setup = sweep_setup(["0,300"], 2)
    error_at = setup.index(NO_ERROR)
    pairs = [*setup[:error_at], ("SYST:ERR?", '-222,"Parameter data out of range"'), NO_ERROR, *RECOVERY]
    with protocol(*pairs) as inst:
        inst.voltage_range_V = (-500.0, 500.0)  # pretend the host-side check let it through
        with pytest.raises(InstrumentError, match="Parameter data out of range"):
            inst.sweep_voltage(np.array([0.0, 300.0]), 0.05)


def test_sweep_voltage_buffer_with_wrong_length_raises():
    pairs = [*sweep_setup(["0,0.1,0.2"], 3), (":TRAC:POIN:ACT?", "3"), (":TRAC:DATA?", "0,1,2,3,4"),
             *RECOVERY]
    with protocol(*pairs) as inst, \
            pytest.raises(ValueError, match="expected 3 points"):
        inst.sweep_voltage(np.array([0.0, 0.1, 0.2]), 0.05)


@pytest.mark.parametrize(("voltages", "dwell"), [
    ([], 0.1), ([0.0, 300.0], 0.1), ([0.0, 0.1], -1.0), ([0.0, 0.1], 1000.0), (np.zeros(2501), 0.1),
    ([0.0, float("nan")], 0.1),
])
def test_sweep_voltage_rejects_bad_parameters_before_sending(voltages, dwell):
    with protocol() as inst, pytest.raises(ParameterError):
        inst.sweep_voltage(np.asarray(voltages, dtype=float), dwell)


def test_sdm_cycle_follows_appendix_a():  # case I (auto-zero on) and case III (off), source V
    assert sdm_cycle_s(0.1, 60, True) == pytest.approx(225e-6 + 50e-6 + 3 * (0.1 / 60 + 185e-6) + 1.8e-3)
    assert sdm_cycle_s(0.1, 60, False) == pytest.approx(225e-6 + 50e-6 + (0.1 / 60 + 185e-6) + 0.3e-3)
    assert sdm_cycle_s(1, 50, True) == pytest.approx(0.0627, abs=1e-4)


def test_source_delay_above_999_9999_s_is_refused_before_sending():  # 18-82 :SOURce[1]:DELay 0 to 999.9999
    with protocol() as inst, pytest.raises(ParameterError, match=r"999\.9999"):
        inst.sweep_voltage(np.array([0.0, 0.1]), 1000.0)


def test_source_delay_property_is_strict():  # pymeasure's validator, the same range
    with protocol() as inst, pytest.raises(ValueError):
        inst.source_delay = 1000.0


def test_sweep_keeps_a_fixed_current_range_and_a_manual_source_delay():
    timing = [*TIMING[:3], (":SOUR:DEL:AUTO?", "0"), (":SOUR:DEL?", "+2.000000E-03"),
              (":SENS:CURR:RANG:AUTO?", "0"), (":SENS:CURR:PROT?", "+1.050000E-01")]
    setup = sweep_setup(["0,0.1"], 2, timing=timing)
    setup.remove((":SENS:CURR:RANG 0.105", None))
    buffer = "0,-2.0E-02,9.91E37,0,21504,0.1,-1.9E-02,9.91E37,0.05,21504"
    pairs = [*setup, (":TRAC:POIN:ACT?", "2"), (":TRAC:DATA?", buffer), (":TRAC:FEED:CONT NEV", None),
             (":SOUR:VOLT:MODE FIX", None), (":TRIG:COUN 1", None), (":SOUR:DEL 0.002", None), NO_ERROR]
    with protocol(*pairs) as inst:
        result = inst.sweep_voltage(np.array([0.0, 0.1]), 0.05)
    assert np.isnan(result.settings["current_range_holds_A"])


def test_sweep_period_shorter_than_the_cycle_is_refused_before_any_setting():
    with protocol(*TIMING) as inst, pytest.raises(ParameterError, match=r"dwell_s = 0.005 s .* 0.00763 s"):
        inst.sweep_voltage(np.array([0.0, 0.1]), 0.005)


def test_sweep_with_auto_zero_off_uses_the_shorter_cycle():
    timing = [(":SENS:CURR:NPLC?", "+1.000000E-01"), (":SYST:LFR?", "50"), (":SYST:AZER?", "0"), *TIMING[3:]]
    setup = sweep_setup(["0,0.1"], 2, delay="0.00724", timing=timing)  # 10 ms - (275 + 2185 + 300) µs
    buffer = "0,-2.0E-02,9.91E37,0,21504,0.1,-1.9E-02,9.91E37,0.01,21504"
    pairs = [*setup, (":TRAC:POIN:ACT?", "2"), (":TRAC:DATA?", buffer), *sweep_finish("0.1")]
    with protocol(*pairs) as inst:
        result = inst.sweep_voltage(np.array([0.0, 0.1]), 0.01)
    assert result.settings["line_frequency_Hz"] == 50.0 and result.settings["autozero"] == 0.0


def test_error_queue_lists_every_entry():  # SYSTem subsystem :ERRor? until 0
    with protocol(("SYST:ERR?", '-113,"Undefined header"'), ("SYST:ERR?", '+803,"Output disabled"'),
                  NO_ERROR) as inst, pytest.raises(InstrumentError) as info:
        inst.raise_if_error()
    assert "-113, Undefined header" in str(info.value)
    assert "803, Output disabled" in str(info.value)


def test_settings_snapshot():
    with protocol((":SOURCE:FUNCTION?", "VOLT"), (":SENSE:CURRENT:PROTECTION?", "0.1"),
                  (":SENSE:VOLTAGE:PROTECTION?", "21"), (":SENSE:CURRENT:NPLCYCLES?", "1"),
                  (":SENSE:CURRENT:RANGE:AUTO?", "1"), (":SENSE:CURRENT:RANGE?", "1.05E-4"),
                  (":SYSTEM:RSENSE?", "1"), (":SOURCE:DELAY:AUTO?", "0"), ("OUTPUT?", "1")) as inst:
        assert inst.settings_snapshot() == {
            "source_function": "voltage", "compliance_current_A": 0.1, "compliance_voltage_V": 21.0,
            "nplc": 1.0, "current_range_auto": True, "current_range_A": 1.05e-4, "four_wire": True,
            "source_delay_auto": False, "output_on": True,
        }


def test_safe_state():  # :ABORt, OUTPut subsystem
    with protocol(*SAFE) as inst:
        inst.safe_state()


def test_safe_state_tries_every_step_when_one_fails():
    adapter, inst = failing_instrument(Keithley2400, [FORMAT, SAFE[0], *SAFE[2:]], fail_on="OUTPUT 0")
    with pytest.raises(InstrumentError, match="output off"):
        inst.safe_state()
    assert adapter._index == 5  # every other step was still sent


def test_shutdown_reaches_the_safe_state():
    with protocol(*SAFE) as inst:
        inst.shutdown()


def test_ramp_to_voltage_uses_the_clock():
    clock = VirtualClock()
    pairs = [FORMAT, (":SOUR:VOLT?", "0"), (":SOUR:VOLT 0", None), NO_ERROR, (":SOUR:VOLT 0.5", None),
             NO_ERROR, (":SOUR:VOLT 1", None), NO_ERROR]
    with expected_protocol(Keithley2400, pairs, clock=clock) as inst:
        start = clock.now()
        inst.ramp_to_voltage(1.0, steps=3, pause=0.1)
        assert clock.now() - start == pytest.approx(0.3)


def test_lists_and_actions_are_not_replayed_after_a_reconnect():
    with protocol() as inst:
        assert not inst.replayable(":SOUR:LIST:VOLT:APP")
        assert inst.replayable(":SOUR:DEL")


# ------------------------------------------------------------------ drivers.smu_common (shared helpers)
class _FakeInstrument:
    name = "smu"
    address = "sim://x"

    def __init__(self) -> None:
        self.clock = VirtualClock()


def test_wait_for_points_times_out_on_the_instrument_clock():
    fake = _FakeInstrument()
    with pytest.raises(InstrumentTimeout, match="1 of 3 points"):
        smu_common.wait_for_points(fake, lambda: 1, 3, dwell_s=0.1, nplc=1)


def test_wait_for_points_sleeps_the_dwell_first():
    fake = _FakeInstrument()
    start = fake.clock.now()
    smu_common.wait_for_points(fake, lambda: 10, 10, dwell_s=0.5, nplc=1)
    assert fake.clock.now() - start == pytest.approx(5.0)


def test_wait_for_points_stops_when_the_safe_state_cancels_it():
    fake = _FakeInstrument()
    cancel = threading.Event()

    def count() -> int:
        cancel.set()  # another thread called safe_state() while the instrument sweeps
        return 1

    with pytest.raises(InstrumentError, match="1 of 3 points: the instrument was put in its safe state"):
        smu_common.wait_for_points(fake, count, 3, dwell_s=0.1, nplc=1, cancel=cancel)


def test_with_recovery_sends_every_command_and_reraises_the_original_error():
    sent: list[str] = []

    def write(command: str) -> None:
        sent.append(command)
        if command == "B":
            raise TimeoutError("no link")

    def failing_sweep():
        raise InstrumentTimeout("sweep did not finish")

    with pytest.raises(InstrumentTimeout, match="did not finish"):
        smu_common.with_recovery(failing_sweep, write, ["A", "B", "C"], "smu")
    assert sent == ["A", "B", "C"]


@pytest.mark.parametrize("error", [ConnectionLost("gone"), ParameterError("bad dwell")])
def test_with_recovery_skips_recovery_for_lost_links_and_bad_parameters(error):
    sent: list[str] = []

    def failing_sweep():
        raise error

    with pytest.raises(type(error)):
        smu_common.with_recovery(failing_sweep, sent.append, ["A"], "smu")
    assert sent == []


def test_parse_numbers_maps_not_a_number():
    values = smu_common.parse_numbers("+1.0E+00,+9.910000E+37,-9.91E37")
    assert values[0] == 1.0 and np.isnan(values[1]) and np.isnan(values[2])


def test_achieved_rate_is_total_path_over_time():
    assert smu_common.achieved_rate_V_s(np.array([0, 1, 2.0]), np.array([0, 0.1, 0])) == pytest.approx(0.1)
    assert np.isnan(smu_common.achieved_rate_V_s(np.array([0.0]), np.array([0.0])))
    assert np.isnan(smu_common.achieved_rate_V_s(np.array([1.0, 1.0]), np.array([0.0, 0.1])))


def test_sweep_result_times_start_at_zero():
    result = smu_common.sweep_result(np.array([5.0, 5.5]), np.array([0, 0.5]), np.array([0, 0.0]), {})
    np.testing.assert_allclose(result.time_s, [0, 0.5])
    assert result.achieved_rate_V_s == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ dwells
def dwell_timing(sense: str = "CURR", compliance: str = "+1.050000E-01") -> list[tuple[str, str]]:
    """What a dwell reads first: NPLC 0.1 at 60 Hz with auto-zero on, the source delay and autorange of the
    measured function it puts back, and the compliance whose range it fixes."""
    return [(f":SENS:{sense}:NPLC?", "+1.000000E-01"), (":SYST:LFR?", "60"), (":SYST:AZER?", "1"),
            (":SOUR:DEL:AUTO?", "1"), (":SOUR:DEL?", "+0.000000E+00"), (f":SENS:{sense}:RANG:AUTO?", "1"),
            (f":SENS:{sense}:PROT?", compliance)]


def dwell_setup(source: str, sense: str, level: str, range_: str, delay: str, n: int) -> list:
    """A dwell up to :INIT: fixed level, one measured function on a fixed range, no source delay, the arm-layer
    timer (section 11; :ARM:SOUR TIM, :ARM:TIM, :ARM:COUN) with one trigger per pass delayed by ``delay``."""
    return [FORMAT, *[(command, None) for command in (
        f":SOUR:FUNC {source}", f":SOUR:{source}:MODE FIX", ":SENS:FUNC:OFF:ALL", f':SENS:FUNC "{sense}"',
        f":SENS:{sense}:RANG {range_}", f":SOUR:{source} {level}", ":SOUR:DEL 0", f":TRIG:DEL {delay}",
        ":TRIG:COUN 1", ":ARM:SOUR TIM", ":ARM:TIM 0.1", f":ARM:COUN {n}", ":TRAC:FEED:CONT NEV", ":TRAC:CLE",
        f":TRAC:POIN {n}", ":TRAC:FEED SENS", ":TRAC:TST:FORM ABS", ":TRAC:FEED:CONT NEXT")],
        NO_ERROR, ("OUTPUT 1", None), (":INIT", None)]


def dwell_finish(sense: str) -> list:
    """Buffer off, immediate arm layer of one pass, no trigger delay, source delay and autorange back."""
    return [(":TRAC:FEED:CONT NEV", None), (":ARM:SOUR IMM", None), (":ARM:COUN 1", None), (":TRIG:DEL 0", None),
            (":SOUR:DEL:AUTO ON", None), (f":SENS:{sense}:RANG:AUTO ON", None), NO_ERROR]


def test_dwell_voltage_on_the_arm_timer():  # section 11 arm layer TIMER; appendix A cases V/VI; 18-115 TRACe
    # trigger delay = 0.1 s - (500 µs + 3 x (0.1 / 60 s + 185 µs) + 1.8 ms) - 1 ms guard = 0.091145 s
    buffer = ("0.85,-1.2E-03,9.91E37,0,21504,0.85,-1.21E-03,9.91E37,0.1002,21504,"
              "0.85,-1.22E-03,9.91E37,0.2002,21504")
    pairs = [*dwell_timing(), *dwell_setup("VOLT", "CURR", "0.85", "0.105", "0.091145", 3),
             (":TRAC:POIN:ACT?", "2"), (":TRAC:POIN:ACT?", "3"), (":TRAC:DATA?", buffer), *dwell_finish("CURR")]
    with protocol(*pairs) as inst:
        result = inst.dwell_voltage(0.85, 3, 0.1)
    np.testing.assert_allclose(result.current_A, [-1.2e-3, -1.21e-3, -1.22e-3])
    np.testing.assert_allclose(result.voltage_V, 0.85)
    np.testing.assert_allclose(result.time_s, [0, 0.1002, 0.2002])
    assert np.isnan(result.achieved_rate_V_s)
    assert result.settings["interval_s"] == 0.1 and result.settings["trigger_delay_s"] == pytest.approx(0.091145)
    assert result.settings["function"] == "voltage" and result.settings["current_range_holds_A"] == 0.105


def test_dwell_current_measures_voltage_with_the_source_i_overhead():  # appendix A: 2.15 ms firmware, source I
    # trigger delay = 0.1 s - (500 µs + 3 x (0.1 / 60 s + 185 µs) + 2.15 ms) - 1 ms = 0.090795 s
    buffer = "1.15,-1E-03,9.91E37,0,21504,1.151,-1E-03,9.91E37,0.1002,21504"
    pairs = [*dwell_timing("VOLT", "+2.100000E+00"), *dwell_setup("CURR", "VOLT", "-0.001", "2.1", "0.090795", 2),
             (":TRAC:POIN:ACT?", "2"), (":TRAC:DATA?", buffer), *dwell_finish("VOLT")]
    with protocol(*pairs) as inst:
        result = inst.dwell_current(-1e-3, 2, 0.1)
    np.testing.assert_allclose(result.voltage_V, [1.15, 1.151])
    np.testing.assert_allclose(result.current_A, -1e-3)


def test_dwell_interval_shorter_than_the_static_cycle_is_refused_before_any_setting():
    with protocol(*dwell_timing()) as inst, \
            pytest.raises(ParameterError, match=r"interval_s = 0.008 s .* 0.008855 s .* sourcing voltage"):
        inst.dwell_voltage(0.5, 10, 0.008)


@pytest.mark.parametrize(("level", "n", "interval", "named"), [
    (250.0, 10, 0.1, "voltage_V = 250"), (float("inf"), 10, 0.1, "voltage_V = inf"),
    (0.5, 0, 0.1, "n_points = 0 .* 1–2500"), (0.5, 2501, 0.1, "n_points = 2501"),
    (0.5, 2.0, 0.1, "n_points must be a whole number"), (0.5, True, 0.1, "n_points must be a whole number"),
    (0.5, 10, 0.0, "interval_s = 0.0"), (0.5, 10, float("nan"), "interval_s = nan"),
    (0.5, 10, 2000.0, "interval_s = 2000.0 s is outside the allowed range 1e-06–999.9999 s"),
])
def test_dwell_rejects_bad_parameters_before_sending(level, n, interval, named):
    with protocol() as inst, pytest.raises(ParameterError, match=named):
        inst.dwell_voltage(level, n, interval)


def test_dwell_set_up_error_is_recovered_and_raised():
    setup = dwell_setup("VOLT", "CURR", "0.85", "0.105", "0.091145", 3)
    at = setup.index(NO_ERROR)
    pairs = [*dwell_timing(), *setup[:at], ("SYST:ERR?", '-221,"Settings conflict"'), NO_ERROR, *RECOVERY]
    with protocol(*pairs) as inst, pytest.raises(InstrumentError, match="Settings conflict"):
        inst.dwell_voltage(0.85, 3, 0.1)


def test_min_dwell_interval_is_the_static_cycle_plus_the_guard():
    assert Keithley2400.min_dwell_interval_s(1.0) == pytest.approx(0.0639, abs=1e-4)  # 50 Hz, auto-zero on
    assert Keithley2400.min_dwell_interval_s(0.01) == pytest.approx(0.004455)
