"""The clock is the only source of time; virtual time makes hours of waiting cost nothing."""

from __future__ import annotations

import threading

import pytest

from labctl.clock import VIRTUAL_EPOCH_S, Clock, RealClock, VirtualClock


def test_virtual_clock_sleep_advances_now_exactly() -> None:
    clock = VirtualClock()
    assert clock.now() == VIRTUAL_EPOCH_S
    clock.sleep(1.5)
    clock.sleep(3600.0)
    assert clock.now() == pytest.approx(VIRTUAL_EPOCH_S + 3601.5, abs=1e-9)


def test_virtual_clock_refuses_negative_sleep() -> None:
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        VirtualClock().sleep(-1.0)


def test_virtual_clock_is_consistent_across_threads() -> None:
    clock = VirtualClock(start_s=0.0)

    def worker() -> None:
        for _ in range(1000):
            clock.sleep(0.001)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == pytest.approx(4.0, abs=1e-9)


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(VirtualClock(), Clock)
    assert isinstance(RealClock(), Clock)


def test_real_clock_sleep_takes_real_time() -> None:
    clock = RealClock()
    before = clock.monotonic()
    clock.sleep(0.05)
    assert clock.monotonic() - before >= 0.045
