"""What every source-measure unit driver does alike when the link or the lab misbehaves, checked on each model's
mock: the configuration a reconnect re-applies to an instrument that lost it (power-cycled) never switches the
output on before its source settings are back; an error-queue entry whose reply arrives garbled is reported,
not skipped; a safe state that lands while a sweep is being set up is not undone by the sweep."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from instrument_helpers import cell_world, source_and_switch_on

from drivers import smu_common
from drivers.keithley2400 import Keithley2400
from drivers.keithley2450 import Keithley2450
from drivers.keithley2600 import Keithley2600
from drivers.keysight_b2900 import KeysightB2900
from drivers.transport import SimAdapter
from labctl.errors import InstrumentError
from mock_instruments.keithley2400 import MockKeithley2400
from mock_instruments.keithley2450 import MockKeithley2450
from mock_instruments.keithley2600 import MockKeithley2600
from mock_instruments.keysight_b2900 import MockKeysightB2900
from mock_instruments.world import World

# model: driver, mock, the terminal wired to the cell, the channel used (None: the instrument itself), a
# setting the instrument refuses (it queues an error)
SMUS: dict[str, tuple[Any, Any, str, str | None, str]] = {
    "keithley2400": (Keithley2400, MockKeithley2400, "smu", None, ":SOUR:VOLT 500"),
    "keithley2450": (Keithley2450, MockKeithley2450, "smu", None, ":SOUR:VOLT 500"),
    "keithley2600": (Keithley2600, MockKeithley2600, "smu:a", "a", "smua.source.levelv = 500"),
    "keysight_b2900": (KeysightB2900, MockKeysightB2900, "smu:1", "1", ":SOUR1:VOLT 500"),
}


def make(model: str, *, power_cycle: bool = False) -> tuple[World, Any, Any, Any]:
    """(world, mock, driver, SourceMeter role object) on a lit cell; with ``power_cycle`` the instrument loses
    its settings (``*RST`` state) whenever the link is reopened."""
    driver_class, mock_class, terminal, channel, _ = SMUS[model]
    world = cell_world(21)
    world.wire(terminal, "cell")
    mock = mock_class(world, "smu")

    def reopen() -> SimAdapter:
        if power_cycle:
            mock.reset()
        return SimAdapter(mock)

    instrument = driver_class(SimAdapter(mock), "smu", address=f"sim://{model}/smu", clock=world.clock,
                              adapter_factory=reopen)
    return world, mock, instrument, instrument if channel is None else instrument.channel(channel)


@pytest.mark.parametrize("model", SMUS)
def test_a_power_cycled_smu_gets_its_source_settings_back_before_its_output(model: str,
                                                                             monkeypatch: Any) -> None:
    world, mock, instrument, smu = make(model, power_cycle=True)
    smu.set_compliance_current(0.1)
    smu.set_compliance_voltage(2.0)
    smu.source_voltage(1.3)  # forward bias first, then the cell is held at open circuit by a 0 A source
    smu.output_on()
    smu.source_current(0.0)
    voltages: list[float] = []
    apply_voltage = world.apply_voltage

    def spy(terminal: str, voltage_V: float | None) -> None:
        if voltage_V is not None:
            voltages.append(voltage_V)
        apply_voltage(terminal, voltage_V)

    monkeypatch.setattr(world, "apply_voltage", spy)
    mock.set_faults(drop=1)
    voltage, current = smu.measure()
    assert instrument.reconnect_count == 1
    assert voltages == []  # the cell never saw the stale 1.3 V level of the voltage source
    assert 1.0 < voltage < 1.4 and abs(current) < 1e-6


@pytest.mark.parametrize("model", SMUS)
def test_an_error_queue_entry_lost_to_a_garbled_reply_is_reported(model: str) -> None:
    _, mock, instrument, _ = make(model)
    instrument.write(SMUS[model][4])  # refused: out of range
    handle = mock.handle

    def garble_error_entries(message: str) -> str | None:
        if "SYST:ERR?" in message or "errorqueue.next" in message:
            mock.faults.garble = 1  # the entry is taken off the queue, its reply is line noise
        return handle(message)

    mock.handle = garble_error_entries
    with pytest.raises(InstrumentError, match="error queue"):
        instrument.raise_if_error()


@pytest.mark.parametrize("model", SMUS)
def test_a_safe_state_while_a_sweep_is_set_up_leaves_the_output_off(model: str, monkeypatch: Any) -> None:
    _, _, instrument, smu = make(model)
    source_and_switch_on(smu, 0.0)
    validate = smu_common.validate_sweep

    def validate_then_safe_state(*args: Any, **kwargs: Any) -> Any:
        checked = validate(*args, **kwargs)
        instrument.safe_state()  # another thread (an interlock, the abort button) gets in first
        return checked

    monkeypatch.setattr(smu_common, "validate_sweep", validate_then_safe_state)
    with pytest.raises(InstrumentError, match="safe state"):
        smu.sweep_voltage(np.linspace(0.0, 0.5, 6), 0.05)
    assert not smu.source_enabled
    monkeypatch.setattr(smu_common, "validate_sweep", validate)
    smu.output_on()
    assert smu.sweep_voltage(np.linspace(0.0, 0.5, 6), 0.05).voltage_V.size == 6  # the next sweep runs


class _SlowSerial:
    """A serial port whose instrument answers "234.5 K" in two parts; the second part arrives late."""

    def __init__(self) -> None:
        self.available: list[bytes] = []
        self.late: list[bytes] = []
        self.queries = 0
        self.reads = 0

    def write(self, data: bytes) -> int:
        self.queries += 1
        if self.queries == 1:
            self.available, self.late = [b"+23"], [b"4.5\r\n"]
        else:
            self.available.append(b"+234.6\r\n")
        return len(data)

    def read_until(self, expected: bytes = b"\n", size: int | None = None) -> bytes:
        if self.late and self.reads:  # after the first part, the rest comes before anything sent later
            self.available, self.late = self.late + self.available, []
        self.reads += 1
        return self.available.pop(0) if self.available else b""

    def reset_input_buffer(self) -> None:
        self.available.clear()

    def close(self) -> None:
        pass


def test_the_rest_of_a_serial_line_cut_short_is_not_read_as_the_next_answer() -> None:
    import serial

    from drivers.base import LabInstrument
    from drivers.transport import LineSerialAdapter
    from labctl.clock import VirtualClock

    adapter = LineSerialAdapter(serial.serial_for_url("loop://", timeout=0.1), read_termination="\r\n",
                                write_termination="\r\n")
    adapter.connection = _SlowSerial()  # type: ignore[assignment]
    instrument = LabInstrument(adapter, "cryo", address="/dev/ttyUSB0", clock=VirtualClock())
    assert float(instrument.ask("KRDG? A")) == 234.6


def test_2450_measure_follows_a_source_function_changed_through_the_property() -> None:
    """measure() returns (V, I) whichever way the source function was last set."""
    from pymeasure.test import expected_protocol

    from drivers.keithley2450 import Keithley2450

    with expected_protocol(
        Keithley2450,
        [(":SOUR:FUNC VOLT", None), (':SENS:FUNC "CURR"', None), (":SOUR:VOLT 0.5", None),
         ("SYST:ERR?", '0,"No error"'),
         (":SOUR:FUNC CURR", None), ("SYST:ERR?", '0,"No error"'),
         (":SOUR:FUNC?", "CURR"),
         (':READ? "defbuffer1", SOUR, READ', "0.001,0.73")],
    ) as smu:
        smu.source_voltage(0.5)
        smu.source_mode = "current"
        assert smu.measure() == (0.73, 0.001)
