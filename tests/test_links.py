"""Links that never lie: every query gets its own answer or an error, never another's; an instrument error is
raised in the thread whose command caused it; a lost link is reconnected for as long as the policy says,
without holding the instrument, and a cancelled run stops waiting at once."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from instrument_helpers import cell_world, sim_driver
from pymeasure.instruments import Channel, Instrument

from drivers.base import LinkPolicy, SCPILabInstrument
from drivers.keithley2600 import Keithley2600, Keithley2600Channel
from drivers.transport import SimAdapter, open_visa
from labctl.cancel import CancelToken, cancel_scope
from labctl.clock import RealClock, VirtualClock
from labctl.errors import ConnectionLost, InstrumentError, RunAborted
from mock_instruments.keithley2450 import MockKeithley2450
from mock_instruments.keithley2600 import MockKeithley2600
from mock_instruments.server import serve

ADDRESS = "sim://keithley2450/smu"


class Probe(SCPILabInstrument):
    """Two settings with error checks, no validators: what the instrument refuses is for it to say."""

    current_limit_A = Instrument.control(":SOUR:VOLT:ILIM?", ":SOUR:VOLT:ILIM %g", "Current limit (A).",
                                         check_set_errors=True)
    nplc = Instrument.control(":SENS:CURR:NPLC?", ":SENS:CURR:NPLC %g", "Integration time (PLC).",
                              check_set_errors=True)
    level_V = Instrument.control(":SOUR:VOLT?", ":SOUR:VOLT %g", "Source level (V).", check_set_errors=True)

    def safe_state(self) -> None:
        self.write(":OUTP OFF")


def make_probe(**faults: Any) -> tuple[MockKeithley2450, Probe]:
    world = cell_world(3)
    world.wire("smu", "cell")
    mock = MockKeithley2450(world, "smu", faults=dict(faults), timeout_s=1.0)
    return mock, sim_driver(Probe, mock, ADDRESS, world.clock)


# --------------------------------------------------------------------------------- late replies
def test_a_late_reply_desynchronises_a_client_that_does_not_resynchronise() -> None:
    """The fault is real: a plain session reads the late answer to NPLC? as the answer to ILIM?."""
    mock, _ = make_probe()
    session = mock.connect()
    session.write(":SENS:CURR:NPLC 2")
    session.write(":SOUR:VOLT:ILIM 0.05")
    mock.set_faults(late=1)
    session.write(":SENS:CURR:NPLC?")
    with pytest.raises(TimeoutError):
        session.read()
    session.write(":SOUR:VOLT:ILIM?")
    assert float(session.read()) == 2.0  # the NPLC, answering the limit query


def test_after_a_late_reply_every_query_gets_its_own_answer() -> None:
    mock, probe = make_probe()
    events: list[tuple[str, dict[str, Any]]] = []
    probe.link_listener = lambda kind, message, data: events.append((kind, data))
    probe.nplc = 2
    probe.current_limit_A = 0.05
    mock.set_faults(late=1)
    assert probe.nplc == 2.0  # timed out, resynchronised, asked again
    assert probe.current_limit_A == 0.05
    assert probe.nplc == 2.0
    assert probe.resync_count == 1
    kinds = [kind for kind, _ in events]
    assert kinds == ["resynchronised"]
    assert [float(r) for r in events[0][1]["discarded"]] == [2.0]


def test_late_replies_over_tcp_never_answer_another_query() -> None:
    """Over a real socket the late reply is sent 0.6 s late, after the client's 0.3 s timeout."""
    world = cell_world(4)
    world.wire("smu", "cell")
    mock = MockKeithley2450(world, "smu")
    with serve({"smu": mock}, port_base=0) as server:
        resource = server.endpoints[0][2]
        probe = Probe(open_visa(resource, timeout_ms=300), "smu", address=resource, clock=RealClock(),
                      adapter_factory=lambda: open_visa(resource, timeout_ms=300))
        probe.nplc = 3
        probe.current_limit_A = 0.02
        mock.set_faults(late=1, late_s=0.6)
        assert probe.nplc == 3.0
        assert probe.current_limit_A == 0.02
        assert probe.nplc == 3.0
        assert probe.resync_count == 1
        probe.adapter.close()


LIMITS_A = [0.011, 0.012, 0.013, 0.014, 0.015]
NPLCS = [1.1, 1.2, 1.3, 1.4, 1.5]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    timeout=st.floats(0.0, 0.25),
    late=st.floats(0.0, 0.25),
    garble=st.floats(0.0, 0.2),
    drop=st.floats(0.0, 0.05),
)
def test_every_query_gets_its_own_answer_or_an_error_under_random_faults(
        seed: int, timeout: float, late: float, garble: float, drop: float) -> None:
    """Two threads, each with its own setting and disjoint values, under random timeouts, late and garbled
    replies and drops: a value read back is always the one that thread set (or the read raises)."""
    mock, probe = make_probe()
    mock.rng.bit_generator.state = type(mock.rng.bit_generator)(seed).state
    probe.link_policy = LinkPolicy(first_interval_s=0.1, max_interval_s=0.5, give_up_after_s=5.0)
    mock.set_faults(timeout=timeout, late=late, garble=garble, drop=drop)
    wrong: list[str] = []
    answered = [0, 0]

    def worker(index: int, name: str, values: list[float]) -> None:
        for k in range(24):
            value = values[k % len(values)]
            try:
                setattr(probe, name, value)
                got = float(getattr(probe, name))
            except (InstrumentError, ValueError):
                continue  # an error is an honest answer
            answered[index] += 1
            if got != pytest.approx(value):
                wrong.append(f"{name}: set {value}, read {got}")

    threads = [threading.Thread(target=worker, args=(0, "current_limit_A", LIMITS_A)),
               threading.Thread(target=worker, args=(1, "nplc", NPLCS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    assert wrong == []
    if max(timeout, late, garble, drop) < 0.1:
        assert min(answered) > 0  # with few faults most exchanges get through


# ---------------------------------------------------------------------- errors stay in their thread
@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter can, so two threads really interleave their commands (over
    a network they would anyway: every read waits for the instrument)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_a_rejected_setting_raises_in_the_thread_that_made_it_only(busy_switching: None) -> None:
    _, probe = make_probe()
    errors: dict[str, list[str]] = {"bad": [], "good": []}
    rejected = 0

    def bad() -> None:
        nonlocal rejected
        for _ in range(150):
            try:
                probe.level_V = 500  # beyond the 2450's 210 V: the instrument queues an error
            except InstrumentError as exc:
                rejected += 1
                errors["bad"].append(str(exc))

    def good() -> None:
        for k in range(150):
            try:
                probe.nplc = NPLCS[k % len(NPLCS)]
            except InstrumentError as exc:
                errors["good"].append(str(exc))

    threads = [threading.Thread(target=bad), threading.Thread(target=good)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors["good"] == []
    assert rejected == 150


class _UncheckedChannel(Keithley2600Channel):
    level_unchecked_V = Channel.control("print(smu{ch}.source.levelv)", "smu{ch}.source.levelv = %g",
                                        "Source level without a validator (V).", check_set_errors=True)


class _Unchecked2600(Keithley2600):
    smua = Instrument.ChannelCreator(_UncheckedChannel, "a")
    smub = Instrument.ChannelCreator(_UncheckedChannel, "b")


def test_two_threads_on_the_two_channels_of_a_2636b_see_only_their_own_errors(busy_switching: None) -> None:
    """The TSP error queue is read in several queries (count, then each entry): that read is one step too."""
    world = cell_world(5)
    world.wire("smu:a", "cell")
    mock = MockKeithley2600(world, "smu")
    smu = _Unchecked2600(SimAdapter(mock), "smu", address="sim://keithley2600/smu", clock=world.clock)
    a, b = smu.channel("a"), smu.channel("b")
    raised = {"a": 0, "b": 0}
    silent_rejections = 0

    def channel_a() -> None:
        nonlocal silent_rejections
        for _ in range(120):
            try:
                a.level_unchecked_V = 500  # beyond the 2636B's 202 V
                silent_rejections += 1
            except InstrumentError:
                raised["a"] += 1

    def channel_b() -> None:
        for k in range(120):
            try:
                b.nplc = NPLCS[k % len(NPLCS)]
            except InstrumentError:
                raised["b"] += 1

    threads = [threading.Thread(target=channel_a), threading.Thread(target=channel_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert raised == {"a": 120, "b": 0}
    assert silent_rejections == 0


# -------------------------------------------------------------------------------- reconnecting
def test_reconnect_back_off_grows_to_its_cap_and_gives_up_after_the_policy_time() -> None:
    mock, probe = make_probe()
    clock = probe.clock
    probe.link_policy = LinkPolicy(first_interval_s=2.0, max_interval_s=60.0, give_up_after_s=600.0)
    events: list[tuple[str, float]] = []
    probe.link_listener = lambda kind, message, data: events.append((kind, clock.now()))
    probe.identify()
    mock.set_faults(drop_permanent=True)
    start = clock.now()
    with pytest.raises(ConnectionLost, match="not restored"):
        probe.identify()
    failed_at = [t - start for kind, t in events if kind == "reconnect_failed"]
    # 0, 2, 6, 14, 30, 62, then every 60 s up to 600 s
    assert failed_at[:6] == pytest.approx([0.0, 2.0, 6.0, 14.0, 30.0, 62.0])
    assert all(b - a == pytest.approx(60.0) for a, b in itertools.pairwise(failed_at[5:]))
    assert failed_at[-1] <= 600.0 < failed_at[-1] + 60.0
    assert events[0][0] == "link_lost" and events[-1][0] == "link_given_up"


def test_an_instrument_back_within_the_policy_time_is_reconnected_and_reconfigured() -> None:
    """A ten-minute network outage in a 1000 h run: the default policy rides it out."""
    mock, probe = make_probe()
    clock = mock.world.clock
    back_at = clock.now() + 600.0

    def reopen() -> SimAdapter:
        if clock.now() < back_at:
            raise ConnectionRefusedError("no route to host")
        mock.set_faults(drop_permanent=False)
        return SimAdapter(mock)

    probe._adapter_factory = reopen
    probe.nplc = 1.3
    mock.set_faults(drop_permanent=True)
    assert probe.nplc == 1.3  # replayed on the new link, then read back
    assert probe.reconnect_count == 1
    assert back_at <= clock.now() < back_at + 300.0


def test_the_back_off_waits_without_holding_the_instrument() -> None:
    """While one thread waits to reconnect, another can take the instrument's lock (to ask for a safe state,
    to read another channel)."""
    world = cell_world(6)
    world.wire("smu", "cell")
    mock = MockKeithley2450(world, "smu")
    probe = Probe(SimAdapter(mock), "smu", address=ADDRESS, clock=RealClock(),
                  adapter_factory=lambda: SimAdapter(mock),
                  link_policy=LinkPolicy(first_interval_s=0.5, max_interval_s=0.5, give_up_after_s=1.2))
    mock.set_faults(drop_permanent=True)
    failure: list[BaseException] = []

    def lose() -> None:
        try:
            probe.identify()
        except ConnectionLost as exc:
            failure.append(exc)

    thread = threading.Thread(target=lose)
    thread.start()
    time.sleep(0.2)
    took = time.monotonic()
    assert probe.lock.acquire(timeout=0.3)
    probe.lock.release()
    assert time.monotonic() - took < 0.3
    thread.join(5)
    assert failure and "not restored" in str(failure[0])


def test_cancelling_the_run_ends_a_reconnect_wait_at_once() -> None:
    world = cell_world(7)
    world.wire("smu", "cell")
    mock = MockKeithley2450(world, "smu")
    probe = Probe(SimAdapter(mock), "smu", address=ADDRESS, clock=RealClock(),
                  adapter_factory=lambda: SimAdapter(mock))  # the default policy: an hour
    mock.set_faults(drop_permanent=True)
    token = CancelToken()
    threading.Timer(0.3, token.cancel, args=("abort button",)).start()
    start = time.monotonic()
    with cancel_scope(token), pytest.raises(RunAborted, match="abort button"):
        probe.identify()
    assert time.monotonic() - start < 2.0
    assert not probe._reconnecting


def test_a_safe_state_outside_the_run_tries_a_dead_instrument_once_quickly() -> None:
    mock, probe = make_probe()
    mock.set_faults(drop_permanent=True)
    start = probe.clock.now()
    with probe.quick_link(), pytest.raises(ConnectionLost):
        probe.safe_state()
    assert probe.clock.now() - start <= 1.0


def test_the_station_sets_the_policy_and_refuses_unknown_keys() -> None:
    policy = LinkPolicy.from_options({"give_up_after_s": 600, "max_interval_s": 30})
    assert policy == LinkPolicy(first_interval_s=1.0, max_interval_s=30.0, give_up_after_s=600.0)
    from labctl.errors import StationError

    with pytest.raises(StationError, match="unknown key 'give_up'"):
        LinkPolicy.from_options({"give_up": 5})
    with pytest.raises(StationError, match="first_interval_s = -1"):
        LinkPolicy.from_options({"first_interval_s": -1})


def test_virtual_clock_participants_share_one_instrument_without_stopping_time() -> None:
    """Two simulated channels on one 2636B, each a participant: integration waits under the instrument's
    lock hand over to the other channel instead of blocking the simulation."""
    world = cell_world(8)
    clock = world.clock
    assert isinstance(clock, VirtualClock)
    world.wire("smu:a", "cell")
    mock = MockKeithley2600(world, "smu")
    smu = Keithley2600(SimAdapter(mock), "smu", address="sim://keithley2600/smu", clock=clock)
    slots = [clock.reserve("a"), clock.reserve("b")]
    readings: dict[str, int] = {"a": 0, "b": 0}

    def run(name: str, slot: Any) -> None:
        channel = smu.channel(name)
        with clock.attach(slot):
            for _ in range(20):
                channel.measure()
                readings[name] += 1

    threads = [threading.Thread(target=run, args=(n, s)) for n, s in zip("ab", slots, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    assert readings == {"a": 20, "b": 20}
