"""The clock is the only source of time; virtual time makes hours of waiting cost nothing and is shared
exactly by many threads; every wait is a cancellation point."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from labctl.cancel import CancelToken, cancel_scope
from labctl.clock import VIRTUAL_EPOCH_S, Clock, RealClock, VirtualClock, released, stepped_out
from labctl.errors import RunAborted


def test_virtual_clock_sleep_advances_now_exactly() -> None:
    clock = VirtualClock()
    assert clock.now() == VIRTUAL_EPOCH_S
    clock.sleep(1.5)
    clock.sleep(3600.0)
    assert clock.now() == pytest.approx(VIRTUAL_EPOCH_S + 3601.5, abs=1e-9)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_clocks_refuse_negative_or_undefined_sleep(bad: float) -> None:
    for clock in (VirtualClock(), RealClock()):
        with pytest.raises(ValueError, match="seconds must be >= 0"):
            clock.sleep(bad)


def test_threads_outside_the_schedule_add_their_waits() -> None:
    """Without registered participants the clock keeps its simple meaning (tests, single scripts)."""
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


def _run_participants(clock: VirtualClock, plans: list[list[float]]) -> list[tuple[str, float]]:
    """Start one participant per plan (its sleeps), reserved in order; record (name, time) after each sleep."""
    log: list[tuple[str, float]] = []
    slots = [clock.reserve(f"w{i}") for i in range(len(plans))]

    def worker(i: int) -> None:
        with clock.attach(slots[i]):
            for seconds in plans[i]:
                clock.sleep(seconds)
                log.append((f"w{i}", clock.now()))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(plans))]
    for t in reversed(threads):  # start order must not matter
        t.start()
    for t in threads:
        t.join(timeout=10)
        assert not t.is_alive()
    return log


def test_sixteen_participants_sleeping_ten_seconds_move_time_by_ten_seconds() -> None:
    clock = VirtualClock(start_s=0.0)
    log = _run_participants(clock, [[10.0] for _ in range(16)])
    assert clock.now() == pytest.approx(10.0)
    assert sorted(t for _, t in log) == [pytest.approx(10.0)] * 16


def test_one_participants_long_waits_do_not_move_anothers_time() -> None:
    """A channel waiting out 30 s timeouts leaves the other channel's 1 s rhythm intact."""
    clock = VirtualClock(start_s=0.0)
    log = _run_participants(clock, [[30.0] * 4, [1.0] * 120])
    fast = [t for name, t in log if name == "w1"]
    assert fast == pytest.approx([float(k) for k in range(1, 121)])
    slow = [t for name, t in log if name == "w0"]
    assert slow == pytest.approx([30.0, 60.0, 90.0, 120.0])


def test_interleaving_is_reproducible() -> None:
    plans = [[0.3, 0.7, 0.1, 2.0], [0.5, 0.5, 0.5, 0.5], [0.1] * 12, [1.0, 0.0, 1.0]]
    first = _run_participants(VirtualClock(start_s=0.0), plans)
    for _ in range(5):
        assert _run_participants(VirtualClock(start_s=0.0), plans) == first


def test_a_participant_waiting_for_a_held_lock_lets_time_run() -> None:
    """Channel b waits for the switch channel a holds during its 5 s measurement; b gets it at t = 5 s."""
    clock = VirtualClock(start_s=0.0)
    switch = clock.lock()
    got: dict[str, float] = {}
    slots = [clock.reserve("a"), clock.reserve("b")]

    def a() -> None:
        with clock.attach(slots[0]), switch:
            clock.sleep(5.0)

    def b() -> None:
        with clock.attach(slots[1]):
            clock.sleep(1.0)
            with switch:
                got["b"] = clock.now()
                clock.sleep(2.0)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert got["b"] == pytest.approx(5.0)
    assert clock.now() == pytest.approx(7.0)


def test_stepping_out_lets_the_others_run() -> None:
    """A coordinator that joins its workers steps out of the schedule instead of blocking it."""
    clock = VirtualClock(start_s=0.0)
    with clock.participant("coordinator"):
        worker_slot = clock.reserve("worker")

        def worker() -> None:
            with clock.attach(worker_slot):
                clock.sleep(100.0)

        thread = threading.Thread(target=worker)
        thread.start()
        with stepped_out(clock):
            thread.join(timeout=10)
        assert not thread.is_alive()
        assert clock.now() == pytest.approx(100.0)


def test_cancelling_wakes_a_virtual_sleeper_without_moving_time() -> None:
    """Channel ch sleeps an hour while channel busy computes (holding the baton, so time cannot jump); the
    abort wakes ch at the present virtual time, not an hour later."""
    clock = VirtualClock(start_s=0.0)
    token = CancelToken()
    outcome: dict[str, Any] = {}
    busy_running, busy_may_go = threading.Event(), threading.Event()
    slots = [clock.reserve("ch"), clock.reserve("busy")]

    def channel() -> None:
        with clock.attach(slots[0]), cancel_scope(token):
            try:
                clock.sleep(3600.0)
            except RunAborted as exc:
                outcome["error"] = str(exc)
            outcome["t"] = clock.now()

    def busy() -> None:
        with clock.attach(slots[1]):
            busy_running.set()
            busy_may_go.wait(5)  # real work while holding the baton
            clock.sleep(1.0)

    threads = [threading.Thread(target=channel), threading.Thread(target=busy)]
    for t in threads:
        t.start()
    assert busy_running.wait(5)
    token.cancel("abort button")
    busy_may_go.set()
    for t in threads:
        t.join(timeout=5)
    assert outcome == {"error": "abort button", "t": 0.0}


def test_real_sleep_is_cut_short_by_cancellation() -> None:
    clock = RealClock()
    token = CancelToken()
    threading.Timer(0.05, token.cancel, args=("SIGTERM",), kwargs={"status": "interrupted"}).start()
    start = time.monotonic()
    with cancel_scope(token), pytest.raises(RunAborted, match="SIGTERM"):
        clock.sleep(30.0)
    assert time.monotonic() - start < 5.0
    assert token.status == "interrupted"


def test_no_cancellation_outside_the_scope() -> None:
    """The safe state runs outside the run's scope: its waits must complete even after an abort."""
    clock = VirtualClock(start_s=0.0)
    token = CancelToken()
    token.cancel()
    with cancel_scope(token), cancel_scope(None):
        clock.sleep(1.0)
    assert clock.now() == 1.0


def test_real_clock_speed_scales_waits_and_time() -> None:
    clock = RealClock(speed=100.0, start_s=0.0)
    before = time.monotonic()
    clock.sleep(5.0)  # 50 ms of real time
    elapsed = time.monotonic() - before
    assert 0.045 <= elapsed < 2.0
    assert clock.now() >= 5.0


def test_real_clock_now_does_not_follow_wall_clock_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """An NTP step of an hour must not make a dwell end early: now() follows the monotonic clock."""
    clock = RealClock()
    before = clock.now()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3600.0)
    assert clock.now() - before < 60.0
    assert clock.wall_time() - before > 3500.0


@pytest.mark.parametrize("make", [lambda: threading.RLock(), lambda: VirtualClock().lock()])
def test_released_gives_a_deeply_held_lock_to_others(make: Any) -> None:
    lock = make()
    seen = threading.Event()

    def other() -> None:
        with lock:
            seen.set()

    with lock, lock:
        with released(lock):
            thread = threading.Thread(target=other)
            thread.start()
            assert seen.wait(5)
            thread.join(5)
        assert lock._is_owned()
    assert not lock._is_owned()


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(VirtualClock(), Clock)
    assert isinstance(RealClock(), Clock)


def test_real_clock_sleep_takes_real_time() -> None:
    clock = RealClock()
    before = clock.monotonic()
    clock.sleep(0.05)
    assert clock.monotonic() - before >= 0.045
