"""Protocol tests for drivers.keithley2600 (TSP, channels smua/smub).

Exchanges follow the Series 2600B System SourceMeter Instrument Reference Manual (2600BS-901-01): the TSP
command reference entries named in each test, section 3 "Reading buffers" (printbuffer output "r1, t1, s1,
r2, ..." for several buffers) and the sweep examples of section "Sweep operation". TSP prints numbers as
"1.00000e+00" and separates several printed values with a tab.
"""

from __future__ import annotations

import numpy as np
import pytest
from instrument_helpers import failing_instrument
from pymeasure.test import expected_protocol

from drivers.keithley2600 import Keithley2600, Keithley2600Channel, tsp_list
from labctl.clock import VirtualClock
from labctl.errors import InstrumentError, ParameterError
from labctl.roles import Instrument, SourceMeter

NO_ERROR = ("print(errorqueue.count)", "0.00000e+00")
IDN_2602B = "Keithley Instruments Inc., Model 2602B, 4084812, 3.2.2"
IDN_2636B = "Keithley Instruments Inc., Model 2636B, 4326551, 4.0.4"


def protocol(*pairs):
    return expected_protocol(Keithley2600, list(pairs), clock=VirtualClock())


def test_channels_satisfy_the_source_meter_role():
    with protocol() as inst:
        assert isinstance(inst, Instrument)
        assert isinstance(inst.channel("a"), SourceMeter)
        assert inst.channel("b") is inst.smub
        assert inst.channel("SMUA") is inst.smua
        assert inst.channel("a").lock is inst.lock


def test_unknown_channel():
    with protocol() as inst, pytest.raises(ValueError, match="'c'"):
        inst.channel("c")


def test_identify_narrows_the_limits_to_the_model():  # *IDN? (IEEE common commands in TSP)
    with protocol(("*IDN?", IDN_2602B)) as inst:
        assert inst.channel("a").identify() == IDN_2602B
        assert inst.model == "2602B"
        assert inst.voltage_range_V == (-40.4, 40.4)
        with pytest.raises(ParameterError, match="outside"):
            inst.channel("a").source_voltage(100)


def test_2636b_limits():
    with protocol(("*IDN?", IDN_2636B)) as inst:
        inst.identify()
        assert inst.current_range_A == (-1.515, 1.515)


def test_source_voltage():  # smuX.source.func (OUTPUT_DCVOLTS = 1), smuX.source.levelv
    with protocol(("smua.source.func = 1", None), ("smua.source.levelv = 0.5", None), NO_ERROR) as inst:
        inst.channel("a").source_voltage(0.5)


def test_source_current_on_channel_b():  # OUTPUT_DCAMPS = 0, smuX.source.leveli
    with protocol(("smub.source.func = 0", None), ("smub.source.leveli = -1e-05", None), NO_ERROR) as inst:
        inst.channel("b").source_current(-1e-5)


def test_source_voltage_out_of_range():
    with protocol() as inst, pytest.raises(ParameterError):
        inst.channel("a").source_voltage(203)


def test_set_compliance_current():  # smuX.source.limiti
    with protocol(("smua.source.limiti = 0.01", None), NO_ERROR) as inst:
        inst.channel("a").set_compliance_current(0.01)


@pytest.mark.parametrize("bad", [0.0, -0.01, 5.0])
def test_set_compliance_current_rejects_bad_values(bad):
    with protocol() as inst, pytest.raises(ParameterError):
        inst.channel("a").set_compliance_current(bad)


def test_set_compliance_voltage():  # smuX.source.limitv
    with protocol(("smub.source.limitv = 2", None), NO_ERROR) as inst:
        inst.channel("b").set_compliance_voltage(2)


def test_set_nplc():  # smuX.measure.nplc, 0.001 to 25
    with protocol(("smua.measure.nplc = 0.1", None), NO_ERROR) as inst:
        inst.channel("a").set_nplc(0.1)


def test_set_nplc_out_of_range():
    with protocol() as inst, pytest.raises(ParameterError):
        inst.channel("a").set_nplc(30)


def test_output_on():  # smuX.source.output (OUTPUT_ON = 1)
    with protocol(("smua.source.output = 1", None), NO_ERROR) as inst:
        inst.channel("a").output_on()


def test_output_off():
    with protocol(("smua.source.output = 0", None), NO_ERROR) as inst:
        inst.channel("a").output_off()


def test_measure():  # smuX.measure.iv() returns current, voltage
    with protocol(("print(smua.measure.iv())", "-1.23400e-02\t5.00000e-01")) as inst:
        assert inst.channel("a").measure() == (0.5, -0.01234)


def test_property_reads_tsp_numbers():
    with protocol(("print(smua.source.func)", "1.00000e+00"),
                  ("print(smua.measure.autorangei)", "1.00000e+00"),
                  ("print(smua.source.levelv)", "2.50000e-01")) as inst:
        chan = inst.channel("a")
        assert chan.source_mode == "voltage"
        assert chan.current_range_auto_enabled is True
        assert chan.source_voltage_level == 0.25


def timing(smu: str, nplc: str = "1.00000e-01") -> list[tuple[str, str]]:
    """What the sweep reads first: smuX.measure.nplc and localnode.linefreq (60 Hz), then the source delay
    it puts back afterwards."""
    return [(f"print({smu}.measure.nplc)", nplc), ("print(localnode.linefreq)", "6.00000e+01"),
            (f"print({smu}.source.delay)", "0.00000e+00")]


def list_lines(values: list[str]) -> list[str]:
    """How the sweep list reaches the instrument: a Lua table, a few dozen values a line."""
    return ["labctl_list = {}", " ".join(f"labctl_list[{k}] = {v}" for k, v in enumerate(values, 1))]


def timed_run(smu: str, n: int, period: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """What a timer-paced run shares, sweep or dwell: the stimuli and timer reset, the buffers (current with
    timestamps, voltage), the measure action and the timer (triggered by ARMED, pass-through on) as the
    source stimulus, and the initiate."""
    timer = "trigger.timer[1]" if smu == "smua" else "trigger.timer[2]"
    reset = [f"{smu}.abort()", f"{smu}.trigger.arm.stimulus = 0", f"{smu}.trigger.measure.stimulus = 0",
             f"{smu}.trigger.endpulse.stimulus = 0", f"{timer}.reset()"]
    buffers = [f"{smu}.nvbuffer1.clear()", f"{smu}.nvbuffer1.appendmode = 0",
               f"{smu}.nvbuffer1.collecttimestamps = 1", f"{smu}.nvbuffer2.clear()", f"{smu}.nvbuffer2.appendmode = 0"]
    run = [f"{smu}.trigger.measure.action = {smu}.ENABLE",
           f"{smu}.trigger.measure.iv({smu}.nvbuffer1, {smu}.nvbuffer2)",
           f"{smu}.trigger.endpulse.action = {smu}.SOURCE_HOLD", f"{smu}.trigger.endsweep.action = {smu}.SOURCE_HOLD",
           f"{smu}.trigger.arm.count = 1", f"{smu}.trigger.count = {n}", f"{timer}.delay = {period}",
           f"{timer}.count = {max(n - 1, 1)}", f"{timer}.passthrough = true",
           f"{timer}.stimulus = {smu}.trigger.ARMED_EVENT_ID", f"{smu}.trigger.source.stimulus = {timer}.EVENT_ID"]
    start = [f"{smu}.source.output = {smu}.OUTPUT_ON", f"{smu}.trigger.initiate()"]
    return reset, buffers, run, start


def sweep_setup(smu: str, values: list[str], period: str, delay: str) -> list[tuple[str | None, str | None]]:
    """Trigger-model list sweep paced by a timer ("Triggering": timers, event detectors): the channel's
    trigger model and the timer are reset first; the timer (triggered by the ARMED event, pass-through on)
    starts each source action; ``delay`` = period - NPLC 0.1 / 60 Hz - 0.1 ms places the measurement."""
    reset, buffers, run, start = timed_run(smu, len(values), period)
    return [*timing(smu)] + [(command, None) for command in (
        *reset, f"{smu}.source.func = {smu}.OUTPUT_DCVOLTS", f"{smu}.source.levelv = {values[0]}",
        f"{smu}.measure.count = 1", f"{smu}.measure.delay = {smu}.DELAY_OFF", f"{smu}.source.delay = {delay}",
        *buffers, *list_lines(values), f"{smu}.trigger.source.listv(labctl_list)", "labctl_list = nil",
        f"{smu}.trigger.source.action = {smu}.ENABLE", *run)] + [NO_ERROR, *[(c, None) for c in start]]


def sweep_finish(smu: str, last: str) -> list[tuple[str | None, str | None]]:
    """waitcomplete() (the trigger model idle), the last level, the source delay as it was, and the stimulus
    and timer reset again."""
    timer = "trigger.timer[1]" if smu == "smua" else "trigger.timer[2]"
    return [("waitcomplete()", None), (f"{smu}.source.levelv = {last}", None), (f"{smu}.source.delay = 0", None),
            (f"{smu}.trigger.source.stimulus = 0", None), (f"{timer}.reset()", None), NO_ERROR]


PRINTBUFFER_3 = ("-2.00000e-02, 1.00000e-01, 0.00000e+00, -1.80000e-02, 2.00000e-01, 2.10000e-01, "
                 "-1.50000e-02, 3.00000e-01, 4.20000e-01")


def test_sweep_voltage():  # printbuffer(1, n, rbi.readings, rbv.readings, rbi.timestamps)
    pairs = [*sweep_setup("smua", ["0.1", "0.2", "0.3"], "0.2", "0.1982333"),
             ("print(smua.nvbuffer1.n)", "1.00000e+00"), ("print(smua.nvbuffer1.n)", "3.00000e+00"),
             ("printbuffer(1, 3, smua.nvbuffer1.readings, smua.nvbuffer2.readings, "
              "smua.nvbuffer1.timestamps)", PRINTBUFFER_3), *sweep_finish("smua", "0.3")]
    with protocol(*pairs) as inst:
        result = inst.channel("a").sweep_voltage(np.array([0.1, 0.2, 0.3]), 0.2)
    np.testing.assert_allclose(result.voltage_V, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(result.current_A, [-0.02, -0.018, -0.015])
    np.testing.assert_allclose(result.time_s, [0, 0.21, 0.42])
    assert result.achieved_rate_V_s == pytest.approx(0.2 / 0.42)
    assert result.settings["source_delay_s"] == pytest.approx(0.2 - 0.1 / 60 - 1e-4)
    assert result.settings["timer_period_s"] == 0.2


def test_a_long_sweep_list_goes_in_lines_shorter_than_1000_characters():
    values = np.round(np.linspace(-1.2345678, 1.2345678, 2500), 7)
    lines = tsp_list("labctl_list", values)
    assert max(len(line) for line in lines) <= 900 and len(lines) > 50
    assert all(line.count("=") <= 50 for line in lines[1:])
    table: dict[int, float] = {}
    for line in lines[1:]:
        for statement in line.split(" labctl_list"):
            key, value = statement.removeprefix("labctl_list").split(" = ")
            table[int(key.strip("[]"))] = float(value)
    np.testing.assert_allclose([table[k] for k in range(1, 2501)], values, atol=1e-6)  # 7 digits


def test_sync_marker_is_a_printed_string():  # print() of a string (TSP, section 9)
    with protocol() as inst:
        assert inst.sync_marker(17) == ('print("labctl-sync-17")', "labctl-sync-17")


def test_sweep_period_shorter_than_integration_is_refused():
    with protocol(*timing("smua", "1.00000e+00")) as inst, \
            pytest.raises(ParameterError, match=r"dwell_s = 0.01 s .* 0.0167667 s"):
        inst.channel("a").sweep_voltage(np.array([0.0, 0.1]), 0.01)


def test_sweep_voltage_set_up_error_reports_the_tsp_message():  # errorqueue.count / errorqueue.next()
    setup = sweep_setup("smub", ["0", "0.1"], "0.1", "0.09823333")
    at = setup.index(NO_ERROR)
    pairs = [*setup[:at], ("print(errorqueue.count)", "1.00000e+00"),
             ("print(errorqueue.next())",
              "-2.85000e+02\tTSP Syntax error at line 1\t2.00000e+00\t0.00000e+00"),
             ("smub.abort()", None), ("smub.source.delay = smub.DELAY_OFF", None),  # recovery
             ("smub.trigger.source.stimulus = 0", None), ("trigger.timer[2].reset()", None)]
    with protocol(*pairs) as inst, pytest.raises(InstrumentError, match="-285, TSP Syntax error at line 1"):
        inst.channel("b").sweep_voltage(np.array([0.0, 0.1]), 0.1)


@pytest.mark.parametrize(("voltages", "dwell"), [([0.0, 300.0], 0.1), ([0.0, 0.1], -0.5),
                                                 (np.zeros(2501), 0.1), ([], 0.1)])
def test_sweep_voltage_rejects_bad_parameters(voltages, dwell):
    with protocol() as inst, pytest.raises(ParameterError):
        inst.channel("a").sweep_voltage(np.asarray(voltages, dtype=float), dwell)


def test_error_queue_lists_every_entry():
    with protocol(("print(errorqueue.count)", "2.00000e+00"),
                  ("print(errorqueue.next())", "-2.85000e+02\tTSP Syntax error\t2.00000e+00\t0.00000e+00"),
                  ("print(errorqueue.next())",
                   "5.04300e+03\tOutput blocked by interlock\t2.00000e+00\t0.00000e+00"),
                  ) as inst, pytest.raises(InstrumentError) as info:
        inst.raise_if_error()
    assert "-285, TSP Syntax error" in str(info.value)
    assert "5043, Output blocked by interlock" in str(info.value)


def test_unreadable_error_queue_entry_raises():
    with protocol(("print(errorqueue.count)", "1.00000e+00"), ("print(errorqueue.next())", "nil")) as inst, \
            pytest.raises(InstrumentError, match="unreadable"):
        inst.check_errors()


def channel_snapshot(smu: str) -> list[tuple[str, str]]:
    return [(f"print({smu}.source.func)", "1.00000e+00"), (f"print({smu}.source.limiti)", "1.00000e-01"),
            (f"print({smu}.source.limitv)", "2.00000e+01"), (f"print({smu}.measure.nplc)", "1.00000e+00"),
            (f"print({smu}.measure.autorangei)", "1.00000e+00"),
            (f"print({smu}.measure.rangei)", "1.00000e-01"),
            (f"print({smu}.sense)", "0.00000e+00"), (f"print({smu}.source.delay)", "0.00000e+00"),
            (f"print({smu}.source.output)", "0.00000e+00")]


SNAPSHOT = {"source_function": "voltage", "compliance_current_A": 0.1, "compliance_voltage_V": 20.0,
            "nplc": 1.0, "current_range_auto": True, "current_range_A": 0.1, "four_wire": False,
            "source_delay_s": 0.0, "output_on": False}


def test_channel_settings_snapshot():
    with protocol(*channel_snapshot("smub")) as inst:
        assert inst.channel("b").settings_snapshot() == SNAPSHOT


def test_instrument_settings_snapshot_has_both_channels():
    with protocol(*channel_snapshot("smua"), *channel_snapshot("smub")) as inst:
        snapshot = inst.settings_snapshot()
    assert snapshot["smua.nplc"] == 1.0 and snapshot["smub.output_on"] is False
    assert len(snapshot) == 2 * len(SNAPSHOT)


def safe(smu: str) -> list[tuple[str, None]]:
    return [(f"{smu}.abort()", None), (f"{smu}.source.output = 0", None), (f"{smu}.source.levelv = 0", None),
            (f"{smu}.source.leveli = 0", None)]


def test_safe_state_covers_both_channels():  # smuX.abort(), smuX.source.output = OUTPUT_OFF
    with protocol(*safe("smua"), *safe("smub")) as inst:
        inst.safe_state()


def test_channel_safe_state_only_touches_its_channel():
    with protocol(*safe("smub")) as inst:
        inst.channel("b").safe_state()


def test_safe_state_tries_every_step_when_one_fails():
    steps = safe("smua") + safe("smub")
    adapter, inst = failing_instrument(Keithley2600, [s for s in steps if s[0] != "smua.source.output = 0"],
                                       fail_on="smua.source.output = 0")
    with pytest.raises(InstrumentError, match="smua output off"):
        inst.safe_state()
    assert adapter._index == 7


def test_only_source_and_measure_attributes_are_replayed():
    with protocol() as inst:
        assert inst.replayable("smua.source.levelv")
        assert inst.replayable("smub.sense")
        assert not inst.replayable("smua.trigger.measure.iv(smua.nvbuffer1,")
        assert not inst.replayable("smua.trigger.count")


def test_channel_class_limits_are_usable_before_connecting():
    assert Keithley2600.voltage_range_V == (-202.0, 202.0)
    assert Keithley2600Channel.nplc_range == (0.001, 25.0)


# ------------------------------------------------------------------------------------------ dwells
def dwell_setup(smu: str, func: str, attribute: str, level: str, n: int, period: str, delay: str) -> list:
    """A dwell up to initiate(): NPLC, line frequency and both delays it puts back (9-241, 9-221), the
    stimuli and timer reset, the level, the measure delay ``delay`` = period - NPLC 0.1 / 60 Hz - 0.1 ms, no
    source delay, the source action disabled (the level stays), the timer as for a sweep."""
    reset, buffers, run, start = timed_run(smu, n, period)
    return [*timing(smu), (f"print({smu}.measure.delay)", "-1.00000e+00")] + [(command, None) for command in (
        *reset, f"{smu}.source.func = {smu}.{func}", f"{smu}.source.{attribute} = {level}",
        f"{smu}.measure.count = 1", f"{smu}.measure.delay = {delay}", f"{smu}.source.delay = {smu}.DELAY_OFF",
        *buffers, f"{smu}.trigger.source.action = {smu}.DISABLE", *run)] + [NO_ERROR, *[(c, None) for c in start]]


def dwell_finish(smu: str) -> list:
    """waitcomplete(), both delays as they were (here: source delay off, measure delay auto), stimulus and
    timer reset."""
    timer = "trigger.timer[1]" if smu == "smua" else "trigger.timer[2]"
    return [("waitcomplete()", None), (f"{smu}.source.delay = 0", None), (f"{smu}.measure.delay = -1", None),
            (f"{smu}.trigger.source.stimulus = 0", None), (f"{timer}.reset()", None), NO_ERROR]


def test_dwell_voltage_on_the_trigger_timer():  # section 3 "Timers"; source action disabled; printbuffer
    pairs = [*dwell_setup("smua", "OUTPUT_DCVOLTS", "levelv", "0.85", 3, "0.2", "0.1982333"),
             ("print(smua.nvbuffer1.n)", "3.00000e+00"),
             ("printbuffer(1, 3, smua.nvbuffer1.readings, smua.nvbuffer2.readings, smua.nvbuffer1.timestamps)",
              "-1.20000e-03, 8.50000e-01, 0.00000e+00, -1.21000e-03, 8.50000e-01, 2.00000e-01, -1.22000e-03, "
              "8.50000e-01, 4.00000e-01"), *dwell_finish("smua")]
    with protocol(*pairs) as inst:
        result = inst.channel("a").dwell_voltage(0.85, 3, 0.2)
    np.testing.assert_allclose(result.current_A, [-1.2e-3, -1.21e-3, -1.22e-3])
    np.testing.assert_allclose(result.time_s, [0, 0.2, 0.4])
    assert result.settings["measure_delay_s"] == pytest.approx(0.2 - 0.1 / 60 - 1e-4)
    assert np.isnan(result.achieved_rate_V_s)


def test_dwell_current_on_channel_b():  # OUTPUT_DCAMPS, smuX.source.leveli
    pairs = [*dwell_setup("smub", "OUTPUT_DCAMPS", "leveli", "-0.001", 2, "0.2", "0.1982333"),
             ("print(smub.nvbuffer1.n)", "2.00000e+00"),
             ("printbuffer(1, 2, smub.nvbuffer1.readings, smub.nvbuffer2.readings, smub.nvbuffer1.timestamps)",
              "-1.00000e-03, 1.15000e+00, 0.00000e+00, -1.00000e-03, 1.15100e+00, 2.00000e-01"),
             *dwell_finish("smub")]
    with protocol(*pairs) as inst:
        result = inst.channel("b").dwell_current(-1e-3, 2, 0.2)
    np.testing.assert_allclose(result.voltage_V, [1.15, 1.151])


def test_dwell_interval_shorter_than_integration_is_refused():
    with protocol(*timing("smua", "1.00000e+00"), ("print(smua.measure.delay)", "0.00000e+00")) as inst, \
            pytest.raises(ParameterError, match=r"interval_s = 0.01 s .* 0.0167667 s"):
        inst.channel("a").dwell_voltage(0.5, 10, 0.01)


@pytest.mark.parametrize(("level", "n", "interval", "named"), [
    (0.5, 60_001, 0.1, "n_points = 60001 .* 1–60000"), (0.5, -1, 0.1, "n_points = -1"),
    (0.5, 10, 0.0, "interval_s = 0.0"), (250.0, 10, 0.1, "voltage_V = 250.0")])
def test_dwell_rejects_bad_parameters(level, n, interval, named):
    with protocol() as inst, pytest.raises(ParameterError, match=named):
        inst.channel("a").dwell_voltage(level, n, interval)


def test_dwell_limits_follow_the_identified_model():  # 2602B: ±40.4 V, ±3.03 A
    with protocol(("*IDN?", "Keithley Instruments Inc., Model 2602B, 1234567, 4.0.4")) as inst:
        inst.identify()
        with pytest.raises(ParameterError, match=r"voltage_V = 50.*40.4"):
            inst.channel("a").dwell_voltage(50.0, 10, 0.1)
