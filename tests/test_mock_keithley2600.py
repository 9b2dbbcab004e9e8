"""The Keithley 2600B mock driven by raw TSP as in the Series 2600B Reference Manual (2600BS-901-01: TSP
command reference, "Reading buffers", the sweep examples of "Sweep operation"; voltages scaled to a solar
cell), then by the real driver in-process and over TCP, with injected faults."""

from __future__ import annotations

import numpy as np
import pytest
from instrument_helpers import (
    RawBench,
    cell_world,
    check_isc_then_voc,
    check_short_sweep,
    check_smu_recovers,
    driver_over_tcp,
    sim_driver,
    source_and_switch_on,
)

from drivers.keithley2600 import Keithley2600
from mock_instruments.keithley2600 import MockKeithley2600
from mock_instruments.registry import mock_class
from mock_instruments.tsp import LuaSyntaxError, Parser

ADDRESS = "sim://keithley2600/smu"


class Bench(RawBench):
    def __init__(self, model: str = "2636B", lit: bool = True) -> None:
        self.world = cell_world(4, lit=lit, dark_cell=True)
        self.world.wire("smu:a", "cell")
        if model[3] != "1" and model != "2635B":
            self.world.wire("smu:b", "dark")
        self.smu = MockKeithley2600(self.world, "smu", model=model)
        self.conn = self.smu.connect()

    def errors(self) -> list[tuple[int, str]]:
        out = []
        for _ in range(int(float(self.ask("print(errorqueue.count)")))):
            code, message, _severity, _node = self.ask("print(errorqueue.next())").split("\t")
            out.append((int(float(code)), message))
        return out

    def driver(self) -> Keithley2600:
        return sim_driver(Keithley2600, self.smu, ADDRESS, self.world.clock)


# ------------------------------------------------------------------------------------- raw TSP
def test_identity_print_formats_and_the_error_queue(bench: Bench) -> None:
    assert bench.ask("*IDN?").startswith("Keithley Instruments Inc., Model 2636B, ")
    assert bench.ask("print(smua.source.func, smua.OUTPUT_DCAMPS, smua.source.output)") == \
        "1.00000e+00\t0.00000e+00\t0.00000e+00"
    assert bench.ask("print(localnode.model, localnode.linefreq)") == "2636B\t6.00000e+01"
    bench.write("format.asciiprecision = 3")
    assert bench.ask("x = 2 local y = x ^ 3 print(y, x .. 'V', #{1, 2, 3}, x == 2, nil)") == \
        "8.00e+00\t2V\t3.00e+00\ttrue\tnil"
    assert bench.ask("print(errorqueue.next())") == "0.00e+00\tQueue Is Empty\t0.00e+00\t0.00e+00"
    bench.write("errorqueue.clear()")
    assert bench.ask("code, message = errorqueue.next() print(code, message)") == "0.00e+00\tQueue Is Empty"


@pytest.mark.parametrize(("message", "code", "text"), [
    ("smua.source.levelv = = 1", -285, "TSP Syntax error at line 1: unexpected symbol near `='"),
    ("smuc.source.levelv = 1", -286, "attempt to index global `smuc' (a nil value)"),
    ("smua.sourse.levelv = 1", -286, "attempt to index field `sourse' (a nil value)"),
    ("smua.measure.ivv()", -286, "attempt to call field `ivv' (a nil value)"),
    ("smua.source.levelv = 'abc'", -286, "number expected"),
    ("for i = 1, 3 do smua.source.levelv = i end", -285, "`for' blocks are not simulated"),
    ("smua.source.levelv = 250", 1101, "Parameter too big"),
    ("smua.measure.nplc = 0.0001", 1102, "Parameter too small"),
    ("smua.nvbuffer1.n = 5", -286, "read-only attribute `n'"),
])
def test_errors_are_queued_with_no_reply(bench: Bench, message: str, code: int, text: str) -> None:
    bench.write(message)
    [(got_code, got_text)] = bench.errors()
    assert got_code == code and text in got_text
    assert bench.ask("print(smua.source.levelv, smua.measure.nplc)") == "0.00000e+00\t1.00000e+00"


def test_a_query_that_fails_gets_no_reply(bench: Bench) -> None:
    with pytest.raises(TimeoutError):
        bench.ask("print(smua.measure.nosuch())")
    assert bench.errors()[0][0] == -286


def test_parser_keeps_lua_precedence() -> None:
    assert Parser("x = -2 ^ 2 + 1 .. 'a'").chunk() == [("assign", [("global", "x")], [(
        "binary", "..", ("binary", "+", ("unary", "-", ("binary", "^", ("const", 2.0), ("const", 2.0))),
                         ("const", 1.0)), ("const", "a"))])]
    with pytest.raises(LuaSyntaxError):
        Parser("print(1").chunk()


def test_measure_iv_sees_the_photocurrent_and_the_voltage(bench: Bench) -> None:
    bench.write("smua.source.func = smua.OUTPUT_DCVOLTS smua.source.levelv = 0 smua.source.limiti = 0.01",
                "smua.measure.nplc = 1", "smua.source.output = smua.OUTPUT_ON")
    start = bench.world.clock.now()
    current, voltage = (float(x) for x in bench.ask("print(smua.measure.iv())").split("\t"))
    assert bench.world.clock.now() - start == pytest.approx(1 / 60 + 5e-4, abs=1e-6)
    assert current == pytest.approx(-1.726e-3, rel=0.05) and abs(voltage) < 1e-4
    bench.write("smua.source.limiti = 1e-3")
    assert float(bench.ask("print(smua.measure.i())")) == pytest.approx(-1e-3, rel=1e-3)
    assert bench.ask("print(smua.source.compliance)") == "true"
    bench.write("smua.source.func = smua.OUTPUT_DCAMPS smua.source.leveli = 0 smua.source.limitv = 2")
    assert 1.0 < float(bench.ask("print(smua.measure.v())")) < 1.4  # Voc
    bench.write("smub.source.output = smub.OUTPUT_ON")  # channel b reaches the dark cell
    assert abs(float(bench.ask("print(smub.measure.i())"))) < 1e-6


def test_linear_sweep_example_with_buffers_and_timestamps(bench: Bench) -> None:  # "Sweep operation"
    bench.write("reset()", "smua.measure.nplc = 1", "smua.nvbuffer1.clear()", "smua.nvbuffer2.clear()",
                "smua.nvbuffer1.collectsourcevalues = 1",
                "smua.trigger.source.linearv(0, 1, 11)", "smua.trigger.source.limiti = 0.1",
                "smua.trigger.measure.action = smua.ENABLE",
                "smua.trigger.measure.iv(smua.nvbuffer1, smua.nvbuffer2)",
                "smua.trigger.endpulse.action = smua.SOURCE_HOLD",
                "smua.trigger.endsweep.action = smua.SOURCE_IDLE", "smua.trigger.count = 11",
                "smua.source.delay = 0.05", "smua.trigger.source.action = smua.ENABLE",
                "smua.source.output = smua.OUTPUT_ON")
    start = bench.world.clock.now()
    bench.write("smua.trigger.initiate()")
    assert bench.ask("print(smua.nvbuffer1.n)") == "0.00000e+00"
    bench.write("waitcomplete()")
    period = 0.05 + 1 / 60 + 1e-4
    assert bench.world.clock.now() - start == pytest.approx(11 * period, rel=1e-3)
    assert bench.ask("print(smua.nvbuffer1.n, smua.nvbuffer2.n)") == "1.10000e+01\t1.10000e+01"
    data = np.array(bench.ask("printbuffer(1, 11, smua.nvbuffer1.readings, smua.nvbuffer2.readings, "
                              "smua.nvbuffer1.timestamps, smua.nvbuffer1.sourcevalues)").split(", "), float)
    current, voltage, stamp, source = data.reshape(-1, 4).T
    np.testing.assert_allclose(voltage, np.linspace(0, 1, 11), atol=1e-3)
    np.testing.assert_allclose(source, np.linspace(0, 1, 11))
    np.testing.assert_allclose(np.diff(stamp), period, rtol=1e-4)
    assert np.all(current[:8] < 0)  # photocurrent below the maximum power point
    assert float(bench.ask("print(smua.nvbuffer1[11])")) == current[-1]
    assert abs(bench.world.voltage_V("smu:a")) < 1e-9  # SOURCE_IDLE: back to the idle level (0 V)
    assert bench.errors() == []


def test_only_the_models_channels_exist() -> None:
    single = Bench(model="2601B")
    single.write("smub.source.output = 1")
    assert single.errors() == [(-286, "TSP Runtime error at line 1: attempt to index global `smub' "
                                      "(a nil value)")]
    single.write("smua.source.levelv = 41")  # the 2601B's top range is 40 V
    assert single.errors()[0][0] == 1101


# ------------------------------------------------------------------------- the driver in-process
def test_driver_role_methods_against_the_mock(bench: Bench) -> None:
    inst = bench.driver()
    assert "Model 2636B" in inst.identify() and inst.voltage_range_V == (-202.0, 202.0)
    check_isc_then_voc(inst.channel("a"))
    snapshot = inst.settings_snapshot()
    assert snapshot["smua.nplc"] == 0.1 and snapshot["smua.source_function"] == "current"
    assert snapshot["smub.output_on"] is False
    inst.safe_state()
    assert bench.ask("print(smua.source.output)") == "0.00000e+00" and bench.errors() == []


def test_driver_sweep_hits_the_requested_scan_rate(bench: Bench) -> None:
    smu = bench.driver().channel("a")
    source_and_switch_on(smu, 1.3)
    bench.world.clock.sleep(10.0)
    voltages = np.round(np.arange(1.3, -0.1 - 1e-9, -0.01), 4)  # 0.1 V/s with 10 mV steps
    result = smu.sweep_voltage(voltages, 0.1)
    assert result.achieved_rate_V_s == pytest.approx(0.1, rel=0.02)
    assert result.settings["source_delay_s"] == pytest.approx(0.1 - 0.1 / 60 - 1e-4)
    assert result.current_A[-1] < -1e-3 < 0 < result.current_A[0]  # from forward injection to Jsc
    assert float(bench.ask("print(smua.source.levelv)")) == pytest.approx(-0.1)
    assert bench.world.voltage_V("smu:a") == pytest.approx(-0.1)  # held at the last level
    assert bench.errors() == []


def test_driver_recovers_from_a_timeout_and_a_dropped_connection(bench: Bench) -> None:
    smu = bench.driver().channel("a")
    check_smu_recovers(smu, bench.smu, smu.parent, ADDRESS)


def test_driver_over_tcp(bench: Bench) -> None:
    with driver_over_tcp(Keithley2600, bench.smu, bench.world.clock) as inst:
        assert "2636B" in inst.identify()
        smu = inst.channel("a")
        source_and_switch_on(smu, 0.0, compliance_A=None)
        check_short_sweep(smu)
        inst.safe_state()


def test_registry_names_the_mock() -> None:
    assert mock_class("keithley2600") is MockKeithley2600
