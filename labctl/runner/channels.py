"""Channels: many samples measured side by side, each failing alone.

A procedure that measures several samples at once (MPPT aging of 16–64 cells) declares one
:class:`ChannelSpec` per sample and runs its per-channel body with ``ctx.run_channels(body)``. The engine then
runs one worker thread per channel:

- **side by side**: on real time the workers run concurrently; on virtual time they are participants of the
  clock's discrete-event schedule, so they share one simulated time exactly and the data do not depend on
  thread timing;
- **shared hardware is serialised**: a channel's measurement (``with ch.measuring():``) holds the locks of
  what it shares with other channels — the switch and the SMU channel behind it — for the whole
  measurement, so one SMU reaches its pixels in turn;
- **failure stays in its channel**: a lost instrument suspends the channels that use it while the driver
  reconnects under the station's link policy, and they carry on when it is back (``/events`` has
  ``channel_suspended`` / ``channel_resumed`` with the channel); an instrument error puts the channel in its
  hold and restarts its body from its last checkpoint a few times; a link given up for good ends that channel
  as *lost* while the others keep their schedule;
- **suspenders** (:mod:`labctl.runner.suspenders`): conditions such as irradiance or temperature out of band
  or a nearly full disk suspend the affected channels into the procedure's hold, and resume them once the
  condition has stayed clear for a set time;
- **pause** puts every channel into the procedure's hold at its next wait.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labctl.cancel import CancelToken, cancel_scope, check_cancelled, watching
from labctl.clock import VirtualClock, stepped_out
from labctl.errors import ConnectionLost, InstrumentError, RunAborted

if TYPE_CHECKING:
    from labctl.roles import SourceMeter
    from labctl.runner.context import BlockSink, RunContext
    from labctl.runner.suspenders import Suspender
    from labctl.station import SampleSpec, Station

log = logging.getLogger("labctl.run")


@contextmanager
def watching_both(run: CancelToken, other: CancelToken) -> Iterator[None]:
    """Waits in the block end when the run is cancelled or ``other`` is."""
    with cancel_scope(run), watching(other):
        yield


@dataclass(frozen=True)
class ChannelSpec:
    """One channel: a sample, the instruments it uses, and the hardware it shares with other channels
    (lock keys held for a whole measurement)."""

    name: str
    sample: str
    instruments: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()


def channels_for_samples(station: Station, samples: Iterable[str]) -> list[ChannelSpec]:
    """A channel per sample; samples behind one switch share it and the SMU channel behind it, and samples
    on one SMU channel without a switch share that channel."""
    samples = list(samples)
    terminals: dict[str, list[str]] = {}
    for name in samples:
        sample = station.sample(name)
        if sample.smu is not None:
            key = f"smu:{sample.smu}:{sample.smu_channel or ''}"
            terminals.setdefault(key, []).append(name)
    specs = []
    for name in samples:
        sample = station.sample(name)
        instruments = tuple(dict.fromkeys(i for i in (sample.smu, sample.switch, sample.lcr) if i))
        shared: list[str] = []
        if sample.smu is not None:
            key = f"smu:{sample.smu}:{sample.smu_channel or ''}"
            if len(terminals[key]) > 1 or sample.switch is not None:
                shared.append(key)
        if sample.switch is not None:
            shared.append(f"switch:{sample.switch}")
        specs.append(ChannelSpec(name, name, instruments, tuple(sorted(shared))))
    return specs


class ChannelContext:
    """What one channel's body sees: its sample, its roles, its blocks, waits that hold when suspended."""

    def __init__(self, group: ChannelGroup, spec: ChannelSpec) -> None:
        self._group = group
        self.spec = spec
        self.name = spec.name
        self.run: RunContext = group.ctx
        self.clock = group.ctx.clock
        self.bench = group.ctx._bench
        #: When the channel's schedule ends (run clock, s), if the procedure says: a suspension still on then
        #: ends the hold, so a lamp that never comes back cannot keep a run waiting past its end.
        self.ends_at_s: float | None = None

    @property
    def sample(self) -> SampleSpec:
        assert self.bench is not None
        return self.bench.station.sample(self.spec.sample)

    @property
    def smu(self) -> SourceMeter:
        assert self.bench is not None
        return self.bench.source_meter(self.spec.sample)

    @property
    def resume_state(self) -> dict[str, Any] | None:
        """The channel's last checkpoint (after a crash, or when its body is restarted after a fault)."""
        return self.run.channel_resume_state(self.name)

    @contextmanager
    def measuring(self) -> Iterator[None]:
        """Hold the hardware this channel shares (switch, SMU channel) and route the switch to its pixel."""
        with ExitStack() as stack:
            for key in self.spec.shared:
                stack.enter_context(self._group.lock(key))
            if self.bench is not None:
                self.bench.select(self.spec.sample)
            yield

    # ------------------------------------------------------------------------------- waiting
    def check(self) -> None:
        """A cancellation point; holds while the run is paused or this channel is suspended."""
        token = self.run.control.token
        token.raise_if_cancelled()
        if self.run.control.paused:
            self.run._pause_hold(self)
        if self._group.suspensions(self.name):
            self._group.hold_while_suspended(self)
        token.raise_if_cancelled()

    def sleep(self, seconds: float) -> None:
        self.check()
        self.clock.sleep(seconds)
        self.check()

    # --------------------------------------------------------------------------------- data
    def create_block(self, name: str, columns: dict[str, str], attrs: dict[str, Any] | None = None) -> BlockSink:
        return self.run.create_block(name, columns, {"channel": self.name, **(attrs or {})})

    def block(self, name: str) -> BlockSink:
        return self.run.block(name)

    def block_names(self) -> list[str]:
        return self.run.block_names()

    def event(self, kind: str, message: str, **data: Any) -> None:
        self.run.event(kind, message, channel=self.name, **data)

    def checkpoint(self, state: dict[str, Any]) -> None:
        self.run.checkpoint_channel(self.name, state)

    def progress(self, fraction: float, message: str = "") -> None:
        self._group.progress(self.name, fraction, message)

    def log(self, message: str, level: str = "info") -> None:
        self.run.log(f"{self.name}: {message}", level)


class ChannelGroup:
    """Runs the channels of one ``run_channels`` call (see the module docstring)."""

    #: How often an instrument error may restart a channel's body before the channel is given up as failed.
    max_restarts = 3
    #: How long a channel rests in its hold after an instrument error before its body is restarted.
    restart_after_s = 30.0
    #: How often the suspenders are read.
    monitor_interval_s = 10.0

    def __init__(self, run: RunContext, specs: list[ChannelSpec], suspenders: list[Suspender],
                 background: Sequence[Callable[[RunContext], None]] = ()) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique: {names}")
        self.ctx = run
        self.specs = specs
        self.suspenders = suspenders
        self.background = list(background)
        self._locks: dict[str, Any] = {}
        self._state_lock = threading.Lock()
        self._reasons: dict[str, dict[str, str]] = {spec.name: {} for spec in specs}
        self._progress: dict[str, float] = {spec.name: 0.0 for spec in specs}
        self._finished = CancelToken()  # wakes the suspender monitor when the last channel ends

    # ------------------------------------------------------------------------------ sharing
    def lock(self, key: str) -> Any:
        with self._state_lock:
            if key not in self._locks:
                self._locks[key] = self.ctx.clock.lock()
            return self._locks[key]

    # --------------------------------------------------------------------------- suspension
    def suspensions(self, channel: str) -> dict[str, str]:
        with self._state_lock:
            return dict(self._reasons[channel])

    def suspend(self, channels: Iterable[str], key: str, reason: str) -> None:
        with self._state_lock:
            for channel in channels:
                self._reasons[channel][key] = reason

    def clear(self, channels: Iterable[str], key: str) -> None:
        with self._state_lock:
            for channel in channels:
                self._reasons[channel].pop(key, None)

    def hold_while_suspended(self, ch: ChannelContext) -> None:
        reasons = self.suspensions(ch.name)
        started = self.ctx.clock.now()
        ch.event("channel_suspended", "; ".join(reasons.values()), reasons=sorted(reasons))
        procedure = self.ctx.procedure
        if procedure is not None:
            procedure.hold(ch, "; ".join(reasons.values()))
        poll_s = min(self.monitor_interval_s, 1.0)
        while self.suspensions(ch.name):
            left_s = math.inf if ch.ends_at_s is None else ch.ends_at_s - self.ctx.clock.now()
            if left_s <= 0:
                ch.event("channel_ended_suspended", f"the channel's schedule ended while it was suspended "
                         f"({'; '.join(self.suspensions(ch.name).values())}); suspended for "
                         f"{self.ctx.clock.now() - started:.0f} s", suspended_s=self.ctx.clock.now() - started)
                return  # still held: its outputs stay as the hold left them
            self.ctx.clock.sleep(min(poll_s, left_s))
        if procedure is not None:
            procedure.release(ch)
        ch.event("channel_resumed", f"conditions clear; suspended for {self.ctx.clock.now() - started:.0f} s",
                 suspended_s=self.ctx.clock.now() - started)

    def progress(self, channel: str, fraction: float, message: str) -> None:
        with self._state_lock:
            self._progress[channel] = min(max(float(fraction), 0.0), 1.0)
            overall = sum(self._progress.values()) / len(self._progress)
        self.ctx.progress(overall, message)

    # ---------------------------------------------------------------------------- instruments
    def _instrument_channels(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        for spec in self.specs:
            for instrument in spec.instruments:
                users.setdefault(instrument, []).append(spec.name)
        return users

    def _listen_to_links(self) -> dict[str, Any]:
        """Record each instrument's link events against the channels that use it; returns what was there."""
        previous: dict[str, Any] = {}
        bench = self.ctx._bench
        if bench is None:
            return previous
        for instrument, channels in self._instrument_channels().items():
            driver = bench.drivers.get(instrument)
            if driver is None or not hasattr(driver, "link_listener"):
                continue
            previous[instrument] = driver.link_listener
            driver.link_listener = self._link_listener(instrument, channels, previous[instrument])
        return previous

    def _link_listener(self, instrument: str, channels: list[str], chained: Any) -> Callable[..., None]:
        def on_link(kind: str, message: str, data: dict[str, Any]) -> None:
            self.ctx.event(kind, message, instrument=instrument)
            if kind in ("link_lost", "link_restored"):
                what = "channel_suspended" if kind == "link_lost" else "channel_resumed"
                for channel in channels:
                    self.ctx.event(what, f"{instrument}: {message}", channel=channel, instrument=instrument)
            if chained is not None:
                chained(kind, message, data)

        return on_link

    def _hold_quietly(self, ch: ChannelContext, why: str) -> None:
        procedure = self.ctx.procedure
        if procedure is None:
            return
        bench = self.ctx._bench
        try:
            with ExitStack() as stack, cancel_scope(None):
                for instrument in ch.spec.instruments:
                    driver = bench.drivers.get(instrument) if bench is not None else None
                    if driver is not None and hasattr(driver, "quick_link"):
                        stack.enter_context(driver.quick_link())
                procedure.hold(ch, why)
        except Exception as exc:
            log.warning("%s: could not hold the channel (%s): %s", ch.name, why, exc)

    # ------------------------------------------------------------------------------- running
    def run(self, body: Callable[[ChannelContext], None]) -> dict[str, str]:
        clock = self.ctx.clock
        virtual = clock if isinstance(clock, VirtualClock) else None
        outcomes: dict[str, str] = {}
        previous = self._listen_to_links()
        slots = [virtual.reserve(spec.name) if virtual else None for spec in self.specs]
        monitor_slot = virtual.reserve("suspenders") if virtual and self.suspenders else None
        remaining = [len(self.specs)]
        remaining_lock = threading.Lock()

        def worker(spec: ChannelSpec, slot: Any) -> None:
            with ExitStack() as stack:
                if virtual is not None and slot is not None:
                    stack.enter_context(virtual.attach(slot))
                stack.enter_context(cancel_scope(self.ctx.control.token))
                try:
                    outcomes[spec.name] = self._supervise(ChannelContext(self, spec), body)
                finally:
                    with remaining_lock:
                        remaining[0] -= 1
                        if remaining[0] == 0:
                            self._finished.cancel("all channels ended")

        threads = [threading.Thread(target=worker, args=(spec, slot), name=f"channel-{spec.name}", daemon=True)
                   for spec, slot in zip(self.specs, slots, strict=True)]
        if self.suspenders:
            threads.append(threading.Thread(target=self._monitor, args=(monitor_slot,), name="suspenders",
                                            daemon=True))
        for task in self.background:
            slot = virtual.reserve(getattr(task, "__name__", "background")) if virtual else None
            threads.append(threading.Thread(target=self._background, args=(task, slot), daemon=True,
                                            name=f"background-{getattr(task, '__name__', 'task')}"))
        try:
            for thread in threads:
                thread.start()
            with stepped_out(clock):
                for thread in threads:
                    thread.join()
        finally:
            bench = self.ctx._bench
            if bench is not None:
                for instrument, listener in previous.items():
                    bench.drivers[instrument].link_listener = listener
        check_cancelled()
        return outcomes

    def _supervise(self, ch: ChannelContext, body: Callable[[ChannelContext], None]) -> str:
        restarts = 0
        token = self.ctx.control.token
        while True:
            try:
                ch.check()
                body(ch)
                ch.event("channel_completed", "channel finished its schedule")
                return "completed"
            except RunAborted:
                return "aborted"
            except ConnectionLost as exc:
                if token.cancelled:
                    return "aborted"
                ch.event("channel_lost", f"{exc}; the other channels go on", reason=str(exc))
                self._hold_quietly(ch, "instrument lost")
                return "lost"
            except InstrumentError as exc:
                if token.cancelled:
                    return "aborted"
                restarts += 1
                if restarts > self.max_restarts:
                    ch.event("channel_failed", f"{exc} (after {self.max_restarts} restarts)", reason=str(exc))
                    self._hold_quietly(ch, "instrument error")
                    return "failed"
                ch.event("channel_suspended", f"instrument error: {exc}; restarting in "
                         f"{self.restart_after_s:g} s ({restarts}/{self.max_restarts})", reason=str(exc))
                self._hold_quietly(ch, "instrument error")
                try:
                    self.ctx.clock.sleep(self.restart_after_s)
                except RunAborted:
                    return "aborted"
                ch.event("channel_resumed", "restarting the channel from its last checkpoint")
            except Exception as exc:
                log.exception("channel %s failed", ch.name)
                ch.event("channel_failed", f"{type(exc).__name__}: {exc}", reason=str(exc))
                self._hold_quietly(ch, "failure")
                return "failed"

    def _background(self, task: Callable[[RunContext], None], slot: Any) -> None:
        """A task beside the channels (the light and temperature schedule of an aging run): it runs until it
        returns or the last channel ends (its waits end then), on the run's time."""
        clock = self.ctx.clock
        with ExitStack() as stack:
            if isinstance(clock, VirtualClock) and slot is not None:
                stack.enter_context(clock.attach(slot))
            stack.enter_context(watching_both(self.ctx.control.token, self._finished))
            try:
                task(self.ctx)
            except RunAborted:
                return
            except Exception as exc:
                log.exception("background task failed")
                self.ctx.event("background_failed", f"{getattr(task, '__name__', 'task')}: {exc}")

    def _monitor(self, slot: Any) -> None:
        clock = self.ctx.clock
        with ExitStack() as stack:
            if isinstance(clock, VirtualClock) and slot is not None:
                stack.enter_context(clock.attach(slot))
            stack.enter_context(cancel_scope(self._finished))
            specs = {spec.name: spec for spec in self.specs}
            try:
                while not self.ctx.control.token.cancelled:
                    if self.ctx.control.paused:  # a paused run's simulated time stands still
                        self.ctx.control.wait_while_paused(clock)
                        continue
                    now = clock.now()
                    for suspender in self.suspenders:
                        affected = [name for name, spec in specs.items() if suspender.affects(spec)]
                        change = suspender.update(now)
                        if change == "tripped":
                            self.suspend(affected, suspender.key, suspender.reason)
                            self.ctx.event("suspended", f"{suspender.name}: {suspender.reason}",
                                           suspender=suspender.name, channels=affected)
                        elif change == "cleared":
                            self.clear(affected, suspender.key)
                            self.ctx.event("suspension_cleared",
                                           f"{suspender.name}: clear for {suspender.clear_for_s:g} s",
                                           suspender=suspender.name, channels=affected)
                    clock.sleep(self.monitor_interval_s)
            except RunAborted:
                return
