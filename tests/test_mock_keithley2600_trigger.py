"""The Keithley 2600B mock's trigger system, command-line limit and status model (Series 2600B Reference
Manual, 2600BS-901-01: "Triggering" (event detectors, timers), the smuX.trigger entries, "Status model"),
and what the driver does with them: timer-paced sweeps, lists sent in short lines, stimuli reset first."""

from __future__ import annotations

import numpy as np
import pytest
from test_mock_keithley2600 import Bench

from labctl.errors import InstrumentTimeout

TIMED_SWEEP = [
    "smua.source.func = smua.OUTPUT_DCVOLTS", "smua.source.limiti = 0.01", "smua.measure.nplc = 0.01",
    "smua.nvbuffer1.clear()", "smua.nvbuffer1.collecttimestamps = 1",
    "smua.trigger.source.listv({0, 0.1, 0.2, 0.3, 0.4})", "smua.trigger.source.action = smua.ENABLE",
    "smua.trigger.measure.action = smua.ENABLE", "smua.trigger.measure.i(smua.nvbuffer1)",
    "smua.trigger.count = 5", "trigger.timer[1].delay = 0.05", "trigger.timer[1].count = 4",
    "trigger.timer[1].passthrough = true", "trigger.timer[1].stimulus = smua.trigger.ARMED_EVENT_ID",
    "smua.trigger.source.stimulus = trigger.timer[1].EVENT_ID", "smua.source.output = smua.OUTPUT_ON",
]


def stamps(bench: Bench, n: int = 5) -> np.ndarray:
    return np.array(bench.ask(f"printbuffer(1, {n}, smua.nvbuffer1.timestamps)").split(", "), float)


def test_a_timer_paces_the_source_actions(bench: Bench) -> None:
    """Timer 1, triggered by the ARMED event, pass-through on: the first point at once, then one per 50 ms
    however short the source delay and the measurement (0.01 PLC) are."""
    bench.write(*TIMED_SWEEP, "smua.trigger.initiate()", "waitcomplete()")
    np.testing.assert_allclose(np.diff(stamps(bench)), 0.05, atol=2e-7)  # printed with 6 digits
    assert bench.ask("print(trigger.timer[1].count, trigger.timer[1].passthrough)") == "4.00000e+00\ttrue"
    assert bench.errors() == []


def test_timer_reset_restores_the_defaults(bench: Bench) -> None:  # trigger.timer[N].reset()
    bench.write("trigger.timer[3].delay = 1", "trigger.timer[3].count = 7", "trigger.timer[3].reset()")
    reply = bench.ask("print(trigger.timer[3].delay, trigger.timer[3].count, trigger.timer[3].passthrough)")
    assert reply == "1.00000e-05\t1.00000e+00\tfalse"


def test_a_stimulus_that_never_comes_keeps_the_sweep_waiting(bench: Bench) -> None:
    """arm.stimulus = trigger.EVENT_ID waits for *TRG; until then no point is made (the detector latches
    the event, so *TRG then starts the sweep)."""
    bench.write(*TIMED_SWEEP, "smua.trigger.arm.stimulus = trigger.EVENT_ID", "smua.trigger.initiate()")
    bench.world.clock.sleep(1.0)
    bench.world.sync()
    assert bench.ask("print(smua.nvbuffer1.n)") == "0.00000e+00"
    assert int(float(bench.ask("print(status.operation.sweeping.condition)"))) == 2  # smua sweeping
    bench.write("*TRG", "waitcomplete()")
    assert bench.ask("print(smua.nvbuffer1.n)") == "5.00000e+00"
    assert bench.ask("print(status.operation.sweeping.condition)") == "0.00000e+00"


def test_a_command_line_over_1000_characters_is_refused_whole(bench: Bench) -> None:
    values = ", ".join(f"{v:.4f}" for v in np.linspace(0, 1, 200))
    bench.write(f"smua.source.levelv = 0.5 smua.trigger.source.listv({{{values}}})")
    assert bench.errors() == [(-363, "Input buffer overrun")]
    assert bench.ask("print(smua.source.levelv)") == "0.00000e+00"  # nothing of the line ran


def test_status_registers_and_common_commands(bench: Bench) -> None:  # "Status model", common commands
    bench.write("*ESE 37")
    assert bench.ask("*ESE?") == "37"
    assert bench.ask("*STB?") == "0"
    bench.write("smua.source.levelv = 1000")  # 1101 Parameter too big: device-dependent error
    assert int(bench.ask("*STB?")) & 4  # EAV: an error is queued
    assert int(bench.ask("*ESR?")) & 8 and bench.ask("*ESR?") == "0"  # read clears it
    bench.write("*SRE 4")
    assert int(float(bench.ask("print(status.condition)"))) & 64  # MSS: an enabled summary bit
    bench.write("*CLS")
    assert bench.errors() == [] and bench.ask("*STB?") == "0"
    assert bench.ask("print(status.request_enable)") == "4.00000e+00"
    bench.write("status.reset()")
    assert bench.ask("*SRE?") == "0" and bench.ask("*TST?") == "0"


def test_the_driver_resets_a_stimulus_left_by_another_client(bench: Bench) -> None:
    """A previous client left the arm layer waiting for *TRG: the driver resets every stimulus and the timer
    before it configures its sweep, so the sweep runs (and puts them back to 0 afterwards)."""
    bench.write("smua.trigger.arm.stimulus = trigger.EVENT_ID", "smua.trigger.measure.stimulus = 999",
                "trigger.timer[1].count = 0")
    smu = bench.driver().channel("a")
    smu.set_nplc(0.01)
    result = smu.sweep_voltage(np.linspace(0.0, 0.2, 5), 0.02)
    np.testing.assert_allclose(np.diff(result.time_s), 0.02, atol=2e-7)
    assert bench.ask("print(smua.trigger.arm.stimulus, smua.trigger.source.stimulus)") == \
        "0.00000e+00\t0.00000e+00"


def test_the_driver_sends_a_2500_point_list_in_short_lines(bench: Bench) -> None:
    smu = bench.driver().channel("a")
    smu.set_nplc(0.001)
    voltages = np.round(np.linspace(-0.1, 1.2, 2500), 6)
    result = smu.sweep_voltage(voltages, 1e-3)
    np.testing.assert_allclose(result.voltage_V, voltages, atol=3e-3)  # measured V, 0.001 PLC noise
    np.testing.assert_allclose(np.diff(result.time_s), 1e-3, atol=1e-5)  # timer period; 6 printed digits
    assert bench.errors() == []


def test_a_sweep_left_waiting_for_a_trigger_times_out_on_the_instrument_clock(bench: Bench) -> None:
    """What a driver that leaves the stimuli alone meets when another client set one: the trigger model waits
    for *TRG, and the driver's wait for the buffer ends in InstrumentTimeout (virtual time, no real wait)."""
    bench.write(*TIMED_SWEEP, "smua.trigger.arm.stimulus = trigger.EVENT_ID", "smua.trigger.initiate()")
    smu = bench.driver().channel("a")
    with pytest.raises(InstrumentTimeout, match="0 of 5 points"):
        smu.wait_for_readings("print(smua.nvbuffer1.n)", 5, 0.05)


@pytest.mark.parametrize(("action", "period"), [("ENABLE", 0.05 + 0.01 / 60 + 1e-4), ("DISABLE", 0.01 / 60 + 1e-4)])
def test_the_source_delay_follows_the_source_action(bench: Bench, action: str, period: float) -> None:
    """smuX.source.delay is "additional delay (settling time) after an output step" (9-241): points back to
    back take source delay + integration + 0.1 ms with the source action, and no source delay without it."""
    bench.write(*TIMED_SWEEP[:6], f"smua.trigger.source.action = smua.{action}", *TIMED_SWEEP[7:10],
                "smua.source.delay = 0.05", "smua.source.output = smua.OUTPUT_ON", "smua.trigger.initiate()",
                "waitcomplete()")
    np.testing.assert_allclose(np.diff(stamps(bench)), period, atol=1e-6)  # 6 digits of up to 0.2 s
